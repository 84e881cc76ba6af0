/* SPDX-License-Identifier: MIT */
/* Threads: what lib/inject saved, plus registrations, signals and scheduling of each. */
#define LOG_AREA "dump"
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/syscalls.h"
#include "dump/collect-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

/* The thread's name, its pending set (signals without a queued siginfo too) and nice value. */
static int thread_proc(struct collect *c, struct ckpt_state_thread *t, int *ret_nice)
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
	*ret_nice = (int)st.nice;
	return 0;
}

/*
 * /proc/TID/timerslack_ns: another task's needs CAP_SYS_NICE; without it,
 * the thread itself says (prctl(PR_GET_TIMERSLACK), a query), and only if
 * that fails too is the slack not saved.
 */
static int thread_timerslack(struct collect *c, size_t idx, struct ckpt_state_thread *t)
{
	_cleanup_proc_ struct ckpt_proc *tp = NULL;
	int r = ckpt_proc_open(NULL, t->tid, &tp);

	if (r == 0)
		r = ckpt_proc_read_timerslack(tp, &t->timerslack_ns);
	if (r == -EPERM || r == -EACCES) {
		int64_t slack = -1;

		if (ckpt_inject_syscall(c->inj, idx, SYS_prctl, COLLECT_ARGS(PR_GET_TIMERSLACK), &slack) == 0 &&
		    slack >= 0) {
			t->timerslack_ns = (uint64_t)slack;
			t->has_timerslack = true;
			return 0;
		}
		if (!c->timerslack_warned)
			pr_warn("cannot read the timer slack of the threads of pid %d (%s; /proc/TID/timerslack_ns "
				"needs CAP_SYS_NICE): not saved, restore leaves it at its default", c->pid, errstr(r));
		c->timerslack_warned = true;
		return 0;
	}
	if (r < 0) {
		pr_err("cannot read the timer slack of thread %d of pid %d: %s", t->tid, c->pid, errstr(r));
		return r;
	}
	t->has_timerslack = true;
	return 0;
}

/*
 * Policy, priority and flags with sched_getattr(2) from here on the thread
 * id (no remote call); the nice value comes from stat, since sched_getattr
 * gives none for a realtime thread.
 */
static int thread_sched(struct collect *c, size_t idx, struct ckpt_state_thread *t, int nice)
{
	struct ckpt_state_sched *s = &t->sched;
	struct ckpt_sched_attr a = { 0 };

	if (sys_sched_getattr(t->tid, &a, 0) < 0) {
		int r = neg_errno();

		pr_err("cannot read the scheduling policy of thread %d of pid %d: %s", t->tid, c->pid,
		       errstr(r));
		return r;
	}
	if (a.sched_policy > INT32_MAX || !ckpt_state_sched_policy_name((int)a.sched_policy)) {
		pr_warn("thread %d of pid %d has scheduling policy %u, unknown to ckpt: not saved, "
			"restore leaves the thread as it is made", t->tid, c->pid, a.sched_policy);
		return thread_timerslack(c, idx, t);
	}
	s->policy = (int)a.sched_policy;
	s->reset_on_fork = a.sched_flags & SCHED_FLAG_RESET_ON_FORK;
	s->priority = (int)a.sched_priority;
	s->nice = nice;
	if (s->policy == SCHED_DEADLINE) {
		s->dl_runtime = a.sched_runtime;
		s->dl_deadline = a.sched_deadline;
		s->dl_period = a.sched_period;
		s->dl_flags = (unsigned int)(a.sched_flags & (SCHED_FLAG_RECLAIM | SCHED_FLAG_DL_OVERRUN));
	}
	t->has_sched = true;
	return thread_timerslack(c, idx, t);
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
	int r, nice;

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
	if ((r = thread_proc(c, t, &nice)) < 0 || (r = thread_sched(c, idx, t, nice)) < 0 ||
	    (r = thread_robust_list(c, t)) < 0 || (r = thread_queries(c, idx, t)) < 0)
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
