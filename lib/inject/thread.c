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
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "compat/syscalls.h"
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

int ckpt_inject_exitkill(struct ckpt_inject *inj)
{
	for (size_t i = 0; i < inj->nr_threads; i++)
		if (!inj->threads[i].dead &&
		    ptrace(PTRACE_SETOPTIONS, inj->threads[i].st.tid, 0, (void *)(trace_options(inj) | PTRACE_O_EXITKILL)) < 0 &&
		    errno != ESRCH)
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

/*
 * Processes made the same way: a remote clone3 without CLONE_VM in a
 * thread of a process being built, with PTRACE_O_TRACEFORK/CLONE/VFORK for
 * that call, so the child is attached before it runs. It is a copy of its
 * creator (its memory, its fds), stopped in a PTRACE_EVENT_STOP, every
 * signal blocked: a process of its own context from then on.
 */
static int new_context(const struct ckpt_inject *parent, pid_t pid, struct ckpt_inject **ret)
{
	struct ckpt_inject *c = calloc(1, sizeof(*c));
	struct inj_thread *t;
	int r;

	if (!c)
		return -ENOMEM;
	c->pid = c->mm_tid = pid;
	c->thread_pidfd = c->mem_fd = -1;
	c->call_cpu = parent->call_cpu;
	c->flags = parent->flags;
	c->timeout_ms = parent->timeout_ms;
	c->no_stub = true;
	/* Nested in the parent's: ckpt's own termination signals stay deferred. */
	if (pthread_sigmask(SIG_BLOCK, NULL, &c->saved_sigmask) < 0)
		sigemptyset(&c->saved_sigmask);
	c->pidfd = sys_pidfd_open(pid, 0);
	if (c->pidfd < 0 || ckpt_proc_open(NULL, pid, &c->proc) < 0 ||
	    ckpt_proc_open(NULL, pid, &c->task_proc) < 0) {
		r = c->pidfd < 0 ? neg_errno() : -ESRCH;
		goto fail;
	}
	if (GROW(c->threads, c->cap_threads, 1) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	t = &c->threads[0];
	memset(t, 0, sizeof(*t));
	t->st.tid = pid;
	if ((r = wait_new_thread(pid)) < 0)
		goto fail;
	c->nr_threads = 1;
	if (ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)trace_options(c)) < 0) {
		r = neg_errno();
		goto fail;
	}
	if ((r = inj_save_state(c, t)) < 0)
		goto fail;
	t->saved = true;
	t->blocked = true;
	*ret = c;
	return 0;
fail:
	ckpt_inject_release(c);
	return r;
}

int ckpt_inject_clone_process(struct ckpt_inject *inj, uint64_t args, size_t args_len, int64_t *ret_result,
			      struct ckpt_inject **ret_child)
{
	pid_t tid;
	int64_t res;
	int r, e;

	if (!(inj->flags & CKPT_INJECT_EXITKILL) || !inj->nr_threads)
		return -EINVAL;
	tid = inj->threads[0].st.tid;
	if (ptrace(PTRACE_SETOPTIONS, tid, 0,
		   (void *)(trace_options(inj) | PTRACE_O_TRACEFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEVFORK)) < 0)
		return neg_errno();
	r = ckpt_inject_syscall(inj, 0, SYS_clone3, (const uint64_t[6]){ args, args_len }, &res);
	e = ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)trace_options(inj)) < 0 ? neg_errno() : 0;
	if (r < 0 || (r = e) < 0)
		return r;
	*ret_child = NULL;
	if (res > 0) {
		r = new_context(inj, (pid_t)res, ret_child);
		if (r < 0) {
			pr_err("cannot take hold of process %lld, made by pid %d: %s", (long long)res, inj->pid,
			       errstr(r));
			kill((pid_t)res, SIGKILL);
			return r;
		}
	}
	*ret_result = res;
	return 0;
}

/*
 * End the process of @inj (made by ckpt_inject_clone_process, one thread)
 * so that its parent finds it a zombie with @wait_status: exit_group(code)
 * or death by the signal, run in it; ckpt, its tracer, collects the exit
 * first, which hands the zombie to its parent. Frees @inj.
 */
int ckpt_inject_end(struct ckpt_inject *inj, int wait_status)
{
	pid_t pid = inj->pid;
	int sig = wait_status & 0x7f, status, r = 0;
	int64_t res;

	if (!(inj->flags & CKPT_INJECT_EXITKILL) || inj->nr_threads != 1)
		return -EINVAL;
	if (sig) {
		/* No core file, whatever the signal: what it would hold is not its own anyway. */
		struct rlimit rl = { 0, 0 };
		uint64_t act = 0;
		static const uint64_t dfl[4] = { 0 }; /* SIG_DFL, no flags, no mask */

		(void)prlimit(pid, RLIMIT_CORE, &rl, NULL);
		/* Not dumpable either: a core_pattern pipe (systemd-coredump) would take one regardless. */
		r = ckpt_inject_syscall(inj, 0, SYS_prctl, (const uint64_t[6]){ PR_SET_DUMPABLE, 0 }, &res);
		if (r == 0)
			r = ckpt_inject_scratch(inj, sizeof(dfl), &act);
		if (r == 0)
			r = ckpt_inject_write(inj, act, dfl, sizeof(dfl));
		if (r == 0)
			r = ckpt_inject_syscall(inj, 0, SYS_rt_sigaction, (const uint64_t[6]){ (uint64_t)sig, act, 0, 8 },
						&res);
		if (r == 0 && res < 0)
			r = (int)res;
		if (r == 0 && ptrace(PTRACE_SETSIGMASK, pid, sizeof(uint64_t), &(uint64_t){ 0 }) < 0)
			r = neg_errno();
		if (r == 0 && kill(pid, sig) < 0)
			r = neg_errno();
		if (r == 0 && ptrace(PTRACE_CONT, pid, 0, 0) < 0)
			r = neg_errno();
		/* Its signal-delivery stop: let the signal through. */
		while (r == 0 && waitpid(pid, &status, __WALL) == pid && WIFSTOPPED(status))
			if (ptrace(PTRACE_CONT, pid, 0, (status >> 16) ? 0 : WSTOPSIG(status)) < 0)
				break;
	} else {
		/* Never returns: the call sees the process end (-ESRCH), and collects it. */
		int e = ckpt_inject_syscall(inj, 0, SYS_exit_group,
					    (const uint64_t[6]){ (uint64_t)((wait_status >> 8) & 0xff) }, &res);

		if (e != -ESRCH)
			r = e < 0 ? e : -EIO;
	}
	inj->threads[0].dead = true;
	inj->nr_scratch = 0; /* gone with it */
	(void)ckpt_inject_release(inj);
	if (r < 0)
		pr_err("cannot end pid %d as it had ended (wait status %#x): %s", pid, wait_status, errstr(r));
	return r;
}
