/* SPDX-License-Identifier: MIT */
/*
 * The process and thread state of the restored process, set from inside it:
 * of the process (umask, personality, rlimits, signal handlers, shared
 * pending signals, itimers), of each thread in the thread itself (name,
 * altstack, its pending signals, rseq, robust futex list, clear-child-tid,
 * credentials), and finally every thread's registers and signal mask,
 * handed to release.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "restore/restore-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define ERESTARTSYS_ 512
#define ERESTART_RESTARTBLOCK_ 516
#define NR_RESTART_SYSCALL 219

struct kernel_sigaction_ {
	uint64_t handler, flags, restorer, mask;
};

struct stack_ {
	uint64_t sp;
	int32_t flags;
	int32_t pad;
	uint64_t size;
};

static int warn_call(int64_t res, const char *what)
{
	if (res < 0)
		pr_warn("%s: %s", what, errstr((int)res));
	return 0;
}

/* A remote call that must succeed; with threads, the message names the one it ran in. */
static int must(struct rst *r, int64_t res, const char *what)
{
	if (res >= 0)
		return 0;
	if (r->s->nr_threads > 1)
		pr_err("%s in thread %d: %s", what, r->s->threads[r->thread].tid, errstr((int)res));
	else
		pr_err("%s: %s", what, errstr((int)res));
	return (int)res;
}

static int sigactions(struct rst *r)
{
	const struct ckpt_state_process *p = &r->s->process;

	for (int sig = 1; sig <= CKPT_STATE_NSIG; sig++) {
		const struct ckpt_state_sigaction *a = &p->sigactions[sig - 1];
		struct kernel_sigaction_ ka = { a->handler, a->flags, a->restorer, a->mask };
		char what[64];
		int e;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		rst_reset(r);
		snprintf(what, sizeof(what), "rt_sigaction(%d)", sig);
		e = must(r, RCALL(r, SYS_rt_sigaction, (uint64_t)sig, rst_put(r, &ka, sizeof(ka)), 0, 8), what);
		if (e < 0)
			return e;
	}
	return 0;
}

/*
 * Signals queued with their siginfo; those pending without one get SI_USER.
 * @thread: to the thread the calls run in (rt_tgsigqueueinfo), which must
 * be the caller itself for si_code >= 0; else to the process.
 */
static int queue_signals(struct rst *r, const uint64_t set, const struct ckpt_state_siginfo *q, size_t nr,
			 bool thread)
{
	uint64_t seen = 0;
	int64_t pid, tid;

	if (!set && !nr)
		return 0;
	pid = RCALL(r, SYS_getpid);
	tid = RCALL(r, SYS_gettid);
	if (pid < 0 || tid < 0)
		return (int)(pid < 0 ? pid : tid);
	for (size_t i = 0; i < nr; i++) {
		uint64_t at;
		int64_t res;

		rst_reset(r);
		at = rst_put(r, q[i].raw, sizeof(q[i].raw));
		res = thread ? RCALL(r, SYS_rt_tgsigqueueinfo, (uint64_t)pid, (uint64_t)tid, (uint64_t)q[i].signo, at)
			  : RCALL(r, SYS_rt_sigqueueinfo, (uint64_t)pid, (uint64_t)q[i].signo, at);
		if (res < 0) {
			pr_err("cannot queue signal %d again: %s", q[i].signo, errstr((int)res));
			return (int)res;
		}
		seen |= 1ULL << (q[i].signo - 1);
	}
	for (int sig = 1; sig <= 64; sig++) {
		siginfo_t si;
		int64_t res;

		if (!(set & (1ULL << (sig - 1))) || (seen & (1ULL << (sig - 1))))
			continue;
		memset(&si, 0, sizeof(si));
		si.si_signo = sig;
		si.si_code = SI_USER;
		rst_reset(r);
		res = thread ? RCALL(r, SYS_rt_tgsigqueueinfo, (uint64_t)pid, (uint64_t)tid, (uint64_t)sig,
				  rst_put(r, &si, sizeof(si)))
			  : RCALL(r, SYS_rt_sigqueueinfo, (uint64_t)pid, (uint64_t)sig, rst_put(r, &si, sizeof(si)));
		if (res < 0) {
			pr_err("cannot make signal %d pending again: %s", sig, errstr((int)res));
			return (int)res;
		}
	}
	return 0;
}

static int itimers(struct rst *r)
{
	static const int which[] = { ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF };

	for (int i = 0; i < CKPT_STATE_NR_ITIMERS; i++) {
		const struct ckpt_state_itimer *t = &r->s->process.itimers[i];
		struct itimerval v = {
			.it_interval = { t->interval_sec, t->interval_usec },
			.it_value = { t->value_sec, t->value_usec },
		};
		int e;

		if (!t->value_sec && !t->value_usec && !t->interval_sec && !t->interval_usec)
			continue;
		/* A timer that was about to fire fires at once, not never. */
		if (!v.it_value.tv_sec && !v.it_value.tv_usec)
			v.it_value.tv_usec = 1;
		rst_reset(r);
		e = must(r, RCALL(r, SYS_setitimer, (uint64_t)which[i], rst_put(r, &v, sizeof(v)), 0), "setitimer");
		if (e < 0)
			return e;
	}
	return 0;
}

static int rlimits(struct rst *r)
{
	for (int i = 0; i < CKPT_STATE_NR_RLIMITS; i++) {
		const struct ckpt_state_rlimit *l = &r->s->process.rlimits[i];
		struct rlimit rl = { l->cur, l->max };
		int64_t res;

		rst_reset(r);
		res = RCALL(r, SYS_prlimit64, 0, (uint64_t)i, rst_put(r, &rl, sizeof(rl)), 0);
		if (res < 0)
			pr_warn("cannot set RLIMIT_%s to %#" PRIx64 "/%#" PRIx64 ": %s",
				ckpt_state_rlimit_name(i) ?: "?", l->cur, l->max, errstr((int)res));
	}
	return 0;
}

int rst_task(struct rst *r)
{
	const struct ckpt_state_process *p = &r->s->process;
	int e;

	rst_use_thread(r, 0);
	RCALL(r, SYS_umask, p->umask);
	/* Per task, inherited by the threads made after it. */
	warn_call(RCALL(r, SYS_personality, p->personality), "personality");
	if ((e = rlimits(r)) < 0 || (e = sigactions(r)) < 0 || (e = itimers(r)) < 0)
		return e;
	/* All signals are blocked in every thread while ckpt drives it: they stay pending. */
	if ((e = queue_signals(r, p->shared_sigpending, p->shared_pending, p->nr_shared_pending, false)) < 0)
		return e;
	warn_call(RCALL(r, SYS_prctl, PR_SET_PDEATHSIG, 0, 0, 0, 0), "PR_SET_PDEATHSIG");
	return 0;
}

int rst_thread(struct rst *r, size_t idx)
{
	const struct ckpt_state_thread *t = &r->s->threads[idx];
	struct stack_ ss = { t->altstack_sp, t->altstack_flags & ~SS_ONSTACK, 0, t->altstack_size };
	int e = 0;

	rst_use_thread(r, idx);
	rst_reset(r);
	warn_call(RCALL(r, SYS_prctl, PR_SET_NAME,
			rst_put_str(r, t->comm[0] ? t->comm : r->s->process.comm), 0, 0, 0),
		  "PR_SET_NAME");
	if (!(ss.flags & SS_DISABLE) || ss.sp) {
		rst_reset(r);
		if ((e = must(r, RCALL(r, SYS_sigaltstack, rst_put(r, &ss, sizeof(ss)), 0), "sigaltstack")) < 0)
			goto out;
	}
	if ((e = queue_signals(r, t->sigpending, t->pending, t->nr_pending, true)) < 0)
		goto out;
	if (t->rseq.ptr &&
	    (e = must(r, RCALL(r, SYS_rseq, t->rseq.ptr, t->rseq.len, 0, t->rseq.sig), "rseq registration")) < 0)
		goto out;
	/* Always: the leader inherited ckpt's own values from fork. */
	if ((e = must(r, RCALL(r, SYS_set_robust_list, t->robust_list_head, t->robust_list_len ?: 24),
			 "set_robust_list")) < 0)
		goto out;
	RCALL(r, SYS_set_tid_address, t->clear_child_tid);
out:
	rst_use_thread(r, 0);
	return e;
}

static int creds(struct rst *r)
{
	const struct ckpt_state_creds *c = &r->s->process.creds;
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)c->cap_eff, (uint32_t)c->cap_prm, (uint32_t)c->cap_inh },
		{ (uint32_t)(c->cap_eff >> 32), (uint32_t)(c->cap_prm >> 32), (uint32_t)(c->cap_inh >> 32) },
	};
	uint64_t hp;
	int e;

	rst_reset(r);
	if ((e = must(r, RCALL(r, SYS_setgroups, c->nr_groups, c->nr_groups ? rst_put(r, c->groups, c->nr_groups * sizeof(gid_t)) : 0),
		      "setgroups")) < 0)
		return e;
	if ((e = must(r, RCALL(r, SYS_setresgid, c->gid[0], c->gid[1], c->gid[2]), "setresgid")) < 0)
		return e;
	RCALL(r, SYS_setfsgid, c->gid[3]);
	/* Keep the capabilities across the uid change; they are set right after. */
	warn_call(RCALL(r, SYS_prctl, PR_SET_SECUREBITS, (uint64_t)(c->securebits | (1 << 4)), 0, 0, 0),
		  "PR_SET_SECUREBITS");
	if ((e = must(r, RCALL(r, SYS_setresuid, c->uid[0], c->uid[1], c->uid[2]), "setresuid")) < 0)
		return e;
	RCALL(r, SYS_setfsuid, c->uid[3]);
	rst_reset(r);
	hp = rst_put(r, &h, sizeof(h));
	if ((e = must(r, RCALL(r, SYS_capset, hp, rst_put(r, d, sizeof(d))), "capset")) < 0)
		return e;
	warn_call(RCALL(r, SYS_prctl, PR_SET_SECUREBITS, c->securebits, 0, 0, 0), "PR_SET_SECUREBITS");
	for (int cap = 0; cap < 64; cap++)
		if ((c->cap_amb >> cap) & 1)
			warn_call(RCALL(r, SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (uint64_t)cap, 0, 0),
				  "PR_CAP_AMBIENT");
	/*
	 * The process was forked from ckpt: its bounding set is ckpt's, read
	 * here, without a remote call per capability (and per thread).
	 */
	for (int cap = 0; cap < 64; cap++)
		if (!((c->cap_bnd >> cap) & 1) && prctl(PR_CAPBSET_READ, (unsigned long)cap, 0, 0, 0) == 1)
			warn_call(RCALL(r, SYS_prctl, PR_CAPBSET_DROP, (uint64_t)cap, 0, 0, 0), "PR_CAPBSET_DROP");
	if (r->s->process.no_new_privs)
		warn_call(RCALL(r, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS");
	return 0;
}

/*
 * Credentials are per thread (glibc's setuid() makes every thread call it):
 * each thread sets its own, after all are made (clone3 set_tid needs
 * CAP_SYS_ADMIN, which the target may not have).
 */
int rst_creds(struct rst *r)
{
	int e = 0;

	for (size_t i = r->s->nr_threads; i-- > 0 && e == 0;) {
		rst_use_thread(r, i);
		e = creds(r);
	}
	rst_use_thread(r, 0);
	/* After them: a change of uid makes the mm non-dumpable (suid_dumpable). */
	if (e == 0)
		warn_call(RCALL(r, SYS_prctl, PR_SET_DUMPABLE, (uint64_t)r->s->process.dumpable, 0, 0, 0),
			  "PR_SET_DUMPABLE");
	return e;
}

static int thread_regs(struct rst *r, size_t idx)
{
	const struct ckpt_state_thread *t = &r->s->threads[idx];
	struct user_regs_struct regs = t->regs;

	/*
	 * Inside a system call: -ERESTARTSYS and its kin are restarted by the
	 * kernel when the thread is released (same path as any interruption).
	 * -ERESTART_RESTARTBLOCK needs the kernel's restart block, which died
	 * with the old process: run the original call again instead (a sleep
	 * starts over with its full duration rather than failing with EINTR).
	 * A thread stopped in restart_syscall itself (a sleep interrupted
	 * before, by an earlier checkpoint) runs the call it continued, with
	 * its arguments, still in their registers, when dump could tell which
	 * (restart_nr); else restart_syscall would fail with EINTR in the new
	 * process, and so the call returns EINTR, as CRIU's restore does.
	 */
	if ((int64_t)regs.orig_rax >= 0 && (int64_t)regs.rax == -ERESTART_RESTARTBLOCK_) {
		if ((int64_t)regs.orig_rax == NR_RESTART_SYSCALL && t->restart_nr) {
			regs.rax = (unsigned long long)t->restart_nr;
			regs.rip -= 2;
		} else if ((int64_t)regs.orig_rax == NR_RESTART_SYSCALL) {
			regs.rax = (unsigned long long)-EINTR;
		} else {
			regs.rax = regs.orig_rax;
			regs.rip -= 2;
		}
		regs.orig_rax = (unsigned long long)-1;
	}
	return ckpt_inject_set_thread_state(r->inj, idx, &regs, t->xstate, t->xstate_len, &t->sigmask);
}

int rst_regs(struct rst *r)
{
	for (size_t i = 0; i < r->s->nr_threads; i++) {
		int e = thread_regs(r, i);

		if (e < 0) {
			pr_err("cannot set the registers of thread %d: %s", r->s->threads[i].tid, errstr(e));
			return e;
		}
	}
	return 0;
}
