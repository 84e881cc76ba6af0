/* SPDX-License-Identifier: MIT */
/*
 * The scheduling of one thread of the process being built, set from ckpt
 * itself on the thread id, no remote call: policy, realtime priority,
 * reset-on-fork and deadline parameters with sched_setattr(2), nice with
 * setpriority(2), the timer slack through /proc/TID/timerslack_ns.
 *
 * In that order: the kernel sets the timer slack when a thread moves
 * between a realtime or deadline policy and a normal one (0, then the
 * default), and keeps it 0 for the former, so the slack comes last and only
 * for a thread with a normal policy. The nice value is set for every policy:
 * a realtime thread has one too, which counts again if it returns to a
 * normal policy.
 *
 * Errors and warnings. What was saved comes back, or the restore fails with
 * an error naming the thread, the attribute, the value and why: a realtime
 * or deadline thread restored as an ordinary one, or with another nice
 * value, runs with another latency or share of the CPU than its program was
 * written for, and would do so silently. As root only a few things can
 * fail: deadline admission (EBUSY, no bandwidth left, e.g. while the dumped
 * process still holds its own), realtime in a cgroup without realtime
 * runtime (EPERM), a policy this kernel lacks (EINVAL). One warning:
 * SCHED_EXT on a kernel without sched_ext leaves the thread SCHED_OTHER,
 * which is what a SCHED_EXT thread is anyway whenever no sched_ext
 * scheduler is loaded. An attribute absent from the image (made before ckpt
 * saved it) is left as it is.
 *
 * Call it once the process has all its threads: a SCHED_DEADLINE thread
 * cannot make threads (clone fails with EAGAIN), and those a realtime one
 * makes start realtime too.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <ckpt/proc.h>

#include "compat/syscalls.h"
#include "restore/restore-internal.h"
#include "util/err.h"
#include "util/log.h"

static const char *policy_name(int policy)
{
	return ckpt_state_sched_policy_name(policy) ?: "unknown";
}

static bool normal_policy(int policy)
{
	return policy != SCHED_FIFO && policy != SCHED_RR && policy != SCHED_DEADLINE;
}

/* Why the kernel may have said no, for the error message. */
static const char *hint(int e, int policy)
{
	if ((e == -EPERM || e == -EACCES) && policy == SCHED_DEADLINE)
		return " (needs CAP_SYS_NICE, and the thread allowed on every CPU of its root domain)";
	if (e == -EPERM || e == -EACCES)
		return normal_policy(policy) ? " (needs CAP_SYS_NICE or RLIMIT_NICE)"
					     : " (needs CAP_SYS_NICE or RLIMIT_RTPRIO, and realtime "
					       "runtime in the thread's cgroup)";
	if (e == -EBUSY)
		return " (deadline admission control: not enough bandwidth left on its CPUs)";
	if (e == -EINVAL)
		return " (not supported by this kernel)";
	return "";
}

static int setattr(pid_t tid, const struct ckpt_state_sched *s, int policy)
{
	struct ckpt_sched_attr a = {
		.sched_policy = (uint32_t)policy,
		.sched_flags = (s->reset_on_fork ? SCHED_FLAG_RESET_ON_FORK : 0) | s->dl_flags,
		.sched_nice = s->nice,
		.sched_priority = (uint32_t)s->priority,
		.sched_runtime = s->dl_runtime,
		.sched_deadline = s->dl_deadline,
		.sched_period = s->dl_period,
	};

	return sys_sched_setattr(tid, &a, 0) < 0 ? neg_errno() : 0;
}

static int set_policy(struct rst *r, pid_t tid, const struct ckpt_state_sched *s)
{
	int e;

	e = setattr(tid, s, s->policy);

	if (e == -EINVAL && s->policy == SCHED_EXT) {
		pr_warn("thread %d of pid %d: this kernel has no sched_ext, the thread runs as "
			"SCHED_OTHER, as it would with no sched_ext scheduler loaded", tid, r->pid);
		e = setattr(tid, s, SCHED_OTHER);
	}
	if (e < 0)
		pr_err("cannot give thread %d of pid %d its scheduling policy %s (priority %d%s): %s%s",
		       tid, r->pid, policy_name(s->policy), s->priority,
		       s->reset_on_fork ? ", reset on fork" : "", errstr(e), hint(e, s->policy));
	return e;
}

static int set_nice(struct rst *r, pid_t tid, const struct ckpt_state_sched *s)
{
	int e = setpriority(PRIO_PROCESS, (id_t)tid, s->nice) < 0 ? neg_errno() : 0;

	if (e < 0)
		pr_err("cannot give thread %d of pid %d its nice value %d: %s%s", tid, r->pid, s->nice,
		       errstr(e), hint(e, SCHED_OTHER));
	return e;
}

static int set_timerslack(struct rst *r, pid_t tid, uint64_t ns)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	int e = ckpt_proc_open(NULL, tid, &p);

	if (e == 0)
		e = ckpt_proc_write_timerslack(p, ns);
	if (e < 0)
		pr_err("cannot give thread %d of pid %d its timer slack of %" PRIu64 " ns: %s%s", tid,
		       r->pid, ns, errstr(e), hint(e, SCHED_OTHER));
	return e;
}

int rst_thread_sched(struct rst *r, pid_t tid, const struct ckpt_state_thread *t)
{
	int e;

	if (t->has_sched && ((e = set_policy(r, tid, &t->sched)) < 0 ||
			     (e = set_nice(r, tid, &t->sched)) < 0))
		return e;
	/*
	 * 0: a realtime or deadline thread's, which the kernel keeps; writing 0
	 * means "default". ckpt's own: what the thread has already (inherited
	 * from ckpt at the fork, and given back by a normal policy), and no
	 * CAP_SYS_NICE needed for it.
	 */
	if (t->has_timerslack && t->timerslack_ns &&
	    t->timerslack_ns != (uint64_t)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) &&
	    (!t->has_sched || normal_policy(t->sched.policy)))
		return set_timerslack(r, tid, t->timerslack_ns);
	return 0;
}

/*
 * Every thread's, once all exist and the process is no longer pinned to
 * ckpt's CPU (a deadline thread must be allowed on every CPU of its root
 * domain; a realtime or deadline leader would hand its policy to the
 * threads cloned from it, or refuse the clones).
 */
int rst_sched(struct rst *r)
{
	for (size_t i = 0; i < r->s->nr_threads; i++) {
		int e = rst_thread_sched(r, ckpt_inject_thread(r->inj, i)->tid, &r->s->threads[i]);

		if (e < 0)
			return e;
	}
	return 0;
}
