/* SPDX-License-Identifier: MIT */
/* Threads: what lib/inject saved, plus registrations and signals of each. */
#define LOG_AREA "dump"
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dump/collect-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

/* The thread's name and its pending set (signals without a queued siginfo too). */
static int thread_proc(struct collect *c, struct ckpt_state_thread *t)
{
	_cleanup_proc_ struct ckpt_proc *tp = NULL;
	struct ckpt_proc_stat st;
	struct ckpt_proc_status ss;
	int r;

	r = ckpt_proc_open_task(c->proc, t->tid, &tp);
	if (r == 0)
		r = ckpt_proc_read_stat(tp, &st);
	if (r == 0)
		r = ckpt_proc_read_status(tp, &ss);
	if (r < 0) {
		pr_err("cannot read /proc/%d/task/%d: %s", c->pid, t->tid, errstr(r));
		return r;
	}
	_Static_assert(sizeof(st.comm) <= sizeof(t->comm), "comm fits");
	memcpy(t->comm, st.comm, sizeof(st.comm));
	t->sigpending = ss.sig_pnd;
	ckpt_proc_status_done(&ss);
	return 0;
}

static int thread_robust_list(struct collect *c, struct ckpt_state_thread *t)
{
	unsigned long head = 0;
	size_t len = 0;

	if (syscall(SYS_get_robust_list, t->tid, &head, &len) < 0) {
		int r = neg_errno();

		pr_err("cannot read the robust futex list of thread %d of pid %d: %s", t->tid, c->pid,
		       errstr(r));
		return r;
	}
	t->robust_list_head = head;
	t->robust_list_len = len;
	return 0;
}

/*
 * In the thread itself, in one batch: prctl(PR_GET_TID_ADDRESS) and
 * sigaltstack(NULL, &old), into the scratch page.
 */
static int thread_queries(struct collect *c, size_t idx, struct ckpt_state_thread *t)
{
	struct {
		uint64_t tid_address;
		uint64_t pad;
		stack_t ss;
	} out;
	const struct ckpt_inject_call calls[] = {
		{ SYS_prctl, { PR_GET_TID_ADDRESS, c->scratch } },
		{ SYS_sigaltstack, { 0, c->scratch + offsetof(__typeof__(out), ss) } },
	};
	static const char *const what[] = { "read the clear-child-tid address", "read the signal stack" };
	int64_t res[2];
	int r = ckpt_inject_syscalls(c->inj, idx, calls, 2, res);

	for (size_t i = 0; i < 2; i++) {
		int e = r < 0 ? r : res[i] < 0 && res[i] > -4096 ? (int)res[i] : 0;

		if (e < 0) {
			pr_err("cannot %s of pid %d (thread %d): %s", what[i], c->pid, t->tid, errstr(e));
			return e;
		}
	}
	if ((r = collect_read_scratch(c, &out, sizeof(out))) < 0)
		return r;
	t->clear_child_tid = out.tid_address;
	t->altstack_sp = (uint64_t)(uintptr_t)out.ss.ss_sp;
	t->altstack_size = out.ss.ss_size;
	t->altstack_flags = out.ss.ss_flags;
	return 0;
}

static int collect_thread(struct collect *c, size_t idx, struct ckpt_state_thread *t)
{
	const struct ckpt_thread_state *in = ckpt_inject_thread(c->inj, idx);
	struct ckpt_rseq rs;
	int r;

	t->tid = in->tid;
	t->regs = in->regs;
	t->sigmask = in->sigmask;
	t->in_syscall = in->in_syscall;
	if (in->xstate) {
		t->xstate = malloc(in->xstate_len);
		if (!t->xstate)
			return -ENOMEM;
		memcpy(t->xstate, in->xstate, in->xstate_len);
		t->xstate_len = in->xstate_len;
	}
	r = ckpt_inject_get_rseq(c->inj, idx, &rs);
	if (r < 0) {
		pr_err("cannot read the rseq registration of thread %d of pid %d: %s", t->tid, c->pid,
		       errstr(r));
		return r;
	}
	t->rseq.ptr = rs.ptr;
	t->rseq.len = rs.len;
	t->rseq.sig = rs.sig;
	t->rseq.flags = rs.flags;
	if ((r = thread_proc(c, t)) < 0 || (r = thread_robust_list(c, t)) < 0 ||
	    (r = thread_queries(c, idx, t)) < 0)
		return r;
	return collect_peek_siginfo(c, t->tid, false, &t->pending, &t->nr_pending);
}

int collect_threads(struct collect *c)
{
	size_t n = ckpt_inject_nr_threads(c->inj);

	c->s->threads = calloc(n, sizeof(*c->s->threads));
	if (!c->s->threads)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r;

		c->s->nr_threads = i + 1;
		r = collect_thread(c, i, &c->s->threads[i]);
		if (r < 0)
			return r;
	}
	return 0;
}
