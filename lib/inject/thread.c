/* SPDX-License-Identifier: MIT */
/*
 * Threads made in a process ckpt is building (restore): a remote clone3
 * in a seized thread, with PTRACE_O_TRACECLONE for just that call, so that
 * the kernel attaches the new thread to ckpt before it runs one
 * instruction of its own. It starts in a PTRACE_EVENT_STOP with the
 * creator's registers (rax 0, rip after the `syscall`) and the creator's
 * signal mask, which during a remote call blocks everything; from then on
 * it is a thread of the context like any seized one: remote calls run in
 * it, set_thread_state says what release puts back.
 */
#define LOG_AREA "inject"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "inject/inject-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

static long trace_options(const struct ckpt_inject *inj)
{
	return PTRACE_O_TRACESYSGOOD | (inj->flags & CKPT_INJECT_EXITKILL ? PTRACE_O_EXITKILL : 0) |
	       (inj->flags & CKPT_INJECT_SUSPEND_SECCOMP ? PTRACE_O_SUSPEND_SECCOMP : 0);
}

int ckpt_inject_suspend_seccomp(struct ckpt_inject *inj)
{
	if (!(inj->flags & CKPT_INJECT_EXITKILL))
		return -EINVAL;
	inj->flags |= CKPT_INJECT_SUSPEND_SECCOMP;
	for (size_t i = 0; i < inj->nr_threads; i++)
		if (ptrace(PTRACE_SETOPTIONS, inj->threads[i].st.tid, 0, (void *)trace_options(inj)) < 0)
			return neg_errno();
	return 0;
}

/* The new thread's first stop: the PTRACE_EVENT_STOP of an auto-attached task. */
static int wait_new_thread(pid_t tid)
{
	for (;;) {
		int status;

		if (waitpid(tid, &status, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			return neg_errno();
		}
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return -ESRCH;
		if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP)
			return 0;
		/* Nothing else can come first: no signal reaches a thread that blocks all. */
		pr_debug("new thread %d: stop %#x before its first", tid, status);
		if (ptrace(PTRACE_CONT, tid, 0, 0) < 0)
			return neg_errno();
	}
}

/* Take new thread @tid into the context, stopped, its state saved. */
static int adopt(struct ckpt_inject *inj, pid_t tid, size_t *ret_idx)
{
	struct inj_thread *n;
	int r;

	if (GROW(inj->threads, inj->cap_threads, inj->nr_threads + 1) < 0)
		return -ENOMEM;
	n = &inj->threads[inj->nr_threads];
	memset(n, 0, sizeof(*n));
	n->st.tid = tid;
	if ((r = wait_new_thread(tid)) < 0)
		return r;
	inj->nr_threads++;
	/* It inherited TRACECLONE from its creator: only that call needed it. */
	if (ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)trace_options(inj)) < 0)
		return neg_errno();
	if ((r = inj_save_state(inj, n)) < 0)
		return r;
	n->saved = true;
	/* Its mask is the creator's during the call: all blocked, until release. */
	n->blocked = true;
	*ret_idx = inj->nr_threads - 1;
	return 0;
}

int ckpt_inject_clone_thread(struct ckpt_inject *inj, size_t thread, uint64_t args, size_t args_len,
			     int64_t *ret_result, size_t *ret_idx)
{
	pid_t tid;
	int64_t res;
	int r, e;

	if (!(inj->flags & CKPT_INJECT_EXITKILL) || thread >= inj->nr_threads)
		return -EINVAL;
	tid = inj->threads[thread].st.tid;
	if (ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)(trace_options(inj) | PTRACE_O_TRACECLONE)) < 0)
		return neg_errno();
	r = ckpt_inject_syscall(inj, thread, SYS_clone3, (const uint64_t[6]){ args, args_len }, &res);
	e = ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)trace_options(inj)) < 0 ? neg_errno() : 0;
	if (r < 0 || (r = e) < 0)
		return r;
	if (res > 0) {
		r = adopt(inj, (pid_t)res, ret_idx);
		if (r < 0) {
			pr_err("cannot take hold of thread %lld, made in pid %d: %s", (long long)res, inj->pid,
			       errstr(r));
			return r;
		}
	}
	*ret_result = res;
	return 0;
}
