/* SPDX-License-Identifier: MIT */
/*
 * The process and thread state of the restored process, set from inside it:
 * its session and process group (first), of the process (umask,
 * personality, rlimits, signal handlers, shared pending signals, itimers,
 * child subreaper), of each thread in the thread itself (name, altstack,
 * its pending signals, rseq, robust futex list, clear-child-tid, io
 * priority; then seccomp, credentials, parent-death signal), and finally
 * every thread's registers and signal mask, handed to release.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "restore/restore-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define ERESTARTSYS_ 512
#define ERESTART_RESTARTBLOCK_ 516
#define IOPRIO_WHO_PROCESS_ 1

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
	if ((e = must(r, RCALL(r, SYS_personality, p->personality), "personality")) < 0 ||
	    (e = rlimits(r)) < 0 || (e = sigactions(r)) < 0 || (e = itimers(r)) < 0)
		return e;
	/* All signals are blocked in every thread while ckpt drives it: they stay pending. */
	if ((e = queue_signals(r, p->shared_sigpending, p->shared_pending, p->nr_shared_pending, false)) < 0)
		return e;
	/* Until the credentials: child_wait's SIGKILL (ckpt's death) is EXITKILL's job. */
	warn_call(RCALL(r, SYS_prctl, PR_SET_PDEATHSIG, 0, 0, 0, 0), "PR_SET_PDEATHSIG");
	if (p->child_subreaper &&
	    (e = must(r, RCALL(r, SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "PR_SET_CHILD_SUBREAPER")) < 0)
		return e;
	return 0;
}

/*
 * Session and process group, in the leader, before anything that depends
 * on them (a terminal opened by a session leader becomes its controlling
 * terminal when it has none). A session leader leads a session of its own
 * again, a process group leader a group of its own (in ckpt's session);
 * any other process stays in ckpt's group: joining a group or session of
 * another process is the process tree's business. --detach: a session of
 * its own always. The controlling terminal is not taken back: the
 * terminal belongs to ckpt's session, and taking it (TIOCSCTTY with force)
 * would steal it from the shell that ran ckpt; the process keeps its tty
 * fds, without job control from that terminal, and is told so.
 */
int rst_session(struct rst *r)
{
	const struct ckpt_state_process *p = &r->s->process;
	bool leader = p->sid == p->pid, ctty = false;
	/* Another user's process stays out of ckpt's session, and so off its terminal (TIOCSTI). */
	bool other = p->creds.uid[1] != geteuid() && r->o->stdio != CKPT_STDIO_INHERIT;
	int64_t res;

	rst_use_thread(r, 0);
	if (leader || r->o->detach || other) {
		res = RCALL(r, SYS_setsid);
		if (res < 0) {
			pr_err("cannot give the restored process a session of its own: %s", errstr((int)res));
			return (int)res;
		}
		for (size_t i = 0; i < r->s->nr_fds; i++)
			ctty |= r->s->fds[i].kind == CKPT_STATE_FD_TTY && r->s->fds[i].ctty;
		if (leader && ctty)
			pr_warn("pid %d led its session with a controlling terminal: the restored process "
				"leads a session of its own without one (its terminal is ckpt's session's)",
				p->pid);
	} else if (p->pgid == p->pid) {
		res = RCALL(r, SYS_setpgid, 0, 0);
		if (res < 0) {
			pr_err("cannot give the restored process a process group of its own: %s",
			       errstr((int)res));
			return (int)res;
		}
	}
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
	/* Only when it differs: class "none" follows the nice value, a set class does not. */
	if (t->has_ioprio && RCALL(r, SYS_ioprio_get, IOPRIO_WHO_PROCESS_, 0) != t->ioprio &&
	    (e = must(r, RCALL(r, SYS_ioprio_set, IOPRIO_WHO_PROCESS_, 0, (uint64_t)t->ioprio), "ioprio_set")) < 0)
		goto out;
out:
	rst_use_thread(r, 0);
	return e;
}

static int capset_remote(struct rst *r, uint64_t eff, uint64_t prm, uint64_t inh, const char *what)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32) },
	};
	uint64_t hp;

	rst_reset(r);
	hp = rst_put(r, &h, sizeof(h));
	return must(r, RCALL(r, SYS_capset, hp, rst_put(r, d, sizeof(d))), what);
}

/* ckpt's own permitted set and bounding set: the new process's until creds() changes them. */
static void own_caps(uint64_t *ret_prm, uint64_t *ret_bnd)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };

	*ret_prm = 0;
	if (syscall(SYS_capget, &h, d) == 0)
		*ret_prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*ret_bnd = 0;
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_READ, (unsigned long)cap, 0, 0, 0) == 1)
			*ret_bnd |= 1ULL << cap;
}

/*
 * The thread's credentials, in an order that needs no privilege the
 * thread no longer has (the new process starts with ckpt's: root, every
 * capability but what ckpt lacks, no securebits):
 *   groups, gids;
 *   inheritable set (capset, before the bounding set: an inheritable
 *   capability outside the bounding set can only be kept, not added);
 *   bounding set drops (CAP_SETPCAP);
 *   securebits NO_SETUID_FIXUP added to ckpt's own: the uid change keeps every
 *   capability (KEEP_CAPS would lose the effective set, and a process may
 *   lock KEEP_CAPS off);
 *   uids;
 *   ambient set: cleared (ckpt's), raised (in permitted and inheritable);
 *   the process's securebits, locks included (CAP_SETPCAP, still held);
 *   capset to the process's sets, which drops the rest;
 *   no_new_privs.
 * Every failure is an error: one that leaves more privilege obviously, one
 * that leaves less as well (the program would fail where it worked). The
 * only exception is a bounding-set capability ckpt lacks itself (here:
 * CAP_SYS_RESOURCE): that one cannot come back and is a warning.
 */
/* Has the new process (ckpt's credentials, its groups the owner's when confined) these groups? */
static bool same_groups(const struct rst *r, const struct ckpt_state_creds *c)
{
	const struct rst_owner *o = &r->tree->owner;
	gid_t own[256];
	const gid_t *cur = own;
	int n;

	if (o->confined) {
		cur = o->groups;
		n = (int)o->nr_groups;
	} else if ((n = getgroups(256, own)) < 0) {
		return false;
	}
	if ((size_t)n != c->nr_groups)
		return false;
	for (size_t i = 0; i < c->nr_groups; i++) {
		bool found = false;

		for (int k = 0; k < n && !found; k++)
			found = cur[k] == c->groups[i];
		if (!found)
			return false;
	}
	return true;
}

/*
 * Each step that would change nothing is skipped: a user restoring their
 * own process (with CAP_CHECKPOINT_RESTORE, no CAP_SETGID or CAP_SETPCAP)
 * needs none of them.
 */
static int creds(struct rst *r, uint64_t own_prm, uint64_t own_bnd, uint64_t own_bits)
{
	const struct ckpt_state_creds *c = &r->s->process.creds;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	bool uid_change, gid_change;
	char what[64];
	int e;

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	uid_change = c->uid[0] != ru || c->uid[1] != eu || c->uid[2] != su;
	gid_change = c->gid[0] != rg || c->gid[1] != eg || c->gid[2] != sg;
	rst_reset(r);
	if (!same_groups(r, c) &&
	    (e = must(r, RCALL(r, SYS_setgroups, c->nr_groups, c->nr_groups ? rst_put(r, c->groups, c->nr_groups * sizeof(gid_t)) : 0),
		      "setgroups")) < 0)
		return e;
	if (gid_change && (e = must(r, RCALL(r, SYS_setresgid, c->gid[0], c->gid[1], c->gid[2]), "setresgid")) < 0)
		return e;
	RCALL(r, SYS_setfsgid, c->gid[3]);
	if ((e = capset_remote(r, own_prm, own_prm, c->cap_inh, "capset (inheritable set)")) < 0)
		return e;
	for (int cap = 0; cap < 64; cap++) {
		if ((c->cap_bnd >> cap) & 1 || !((own_bnd >> cap) & 1))
			continue;
		snprintf(what, sizeof(what), "PR_CAPBSET_DROP(%d)", cap);
		if ((e = must(r, RCALL(r, SYS_prctl, PR_CAPBSET_DROP, (uint64_t)cap, 0, 0, 0), what)) < 0)
			return e;
	}
	if (uid_change &&
	    (e = must(r, RCALL(r, SYS_prctl, PR_SET_SECUREBITS, own_bits | SECBIT_NO_SETUID_FIXUP, 0, 0, 0),
		      "PR_SET_SECUREBITS (keep the capabilities across the uid change)")) < 0)
		return e;
	if (uid_change && (e = must(r, RCALL(r, SYS_setresuid, c->uid[0], c->uid[1], c->uid[2]), "setresuid")) < 0)
		return e;
	if (uid_change)
		own_bits |= SECBIT_NO_SETUID_FIXUP;
	RCALL(r, SYS_setfsuid, c->uid[3]);
	if ((e = must(r, RCALL(r, SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
		      "PR_CAP_AMBIENT_CLEAR_ALL")) < 0)
		return e;
	for (int cap = 0; cap < 64; cap++) {
		if (!((c->cap_amb >> cap) & 1))
			continue;
		snprintf(what, sizeof(what), "PR_CAP_AMBIENT_RAISE(%d)", cap);
		if ((e = must(r, RCALL(r, SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (uint64_t)cap, 0, 0),
			      what)) < 0)
			return e;
	}
	snprintf(what, sizeof(what), "PR_SET_SECUREBITS(%#x)", c->securebits);
	if (c->securebits != own_bits &&
	    (e = must(r, RCALL(r, SYS_prctl, PR_SET_SECUREBITS, c->securebits, 0, 0, 0), what)) < 0)
		return e;
	if ((e = capset_remote(r, c->cap_eff, c->cap_prm, c->cap_inh, "capset")) < 0)
		return e;
	if (r->s->process.no_new_privs &&
	    (e = must(r, RCALL(r, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")) < 0)
		return e;
	return 0;
}

/*
 * The parent-death signal, per thread, after the credentials (a uid
 * change clears it). It is sent when the parent thread exits: the
 * restored root's parent is ckpt, which waits for it (and forwards
 * signals) as long as it runs, so the signal comes when ckpt ends first:
 * killed, or the lazy server's parent gone. The root's original parent is
 * not brought back (the other processes of a tree have theirs). With
 * --detach, ckpt exits at once after the restore: the root's signal would
 * come right away, so it is left unset, with a warning.
 */
static int pdeathsig(struct rst *r, size_t idx)
{
	const struct ckpt_state_thread *t = &r->s->threads[idx];

	if (!t->has_pdeathsig || !t->pdeathsig)
		return 0;
	/* The other processes of a tree have their own parent again (made by it). */
	if (r->o->detach && r->node == 0) {
		pr_warn("thread %d had parent-death signal %d: not set, since the parent of a detached "
			"process (ckpt) exits at once", t->tid, t->pdeathsig);
		return 0;
	}
	return must(r, RCALL(r, SYS_prctl, PR_SET_PDEATHSIG, (uint64_t)t->pdeathsig, 0, 0, 0), "PR_SET_PDEATHSIG");
}

/*
 * Credentials are per thread (glibc's setuid() makes every thread call it):
 * each thread sets its own, after all are made (clone3 set_tid needs
 * CAP_SYS_ADMIN, which the target may not have).
 */
int rst_creds(struct rst *r)
{
	uint64_t own_prm, own_bnd, own_bits = (uint64_t)MAX(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), 0);
	int dumpable = r->s->process.dumpable;
	int e = 0;

	own_caps(&own_prm, &own_bnd);
	for (int cap = 0; cap < 64; cap++)
		if (((r->s->process.creds.cap_bnd & ~own_bnd) >> cap) & 1)
			pr_warn("capability %d of the bounding set of pid %d cannot come back: ckpt's own "
				"bounding set lacks it", cap, r->s->process.pid);
	for (size_t i = r->s->nr_threads; i-- > 0 && e == 0;) {
		rst_use_thread(r, i);
		if ((e = creds(r, own_prm, own_bnd, own_bits)) == 0)
			e = pdeathsig(r, i);
	}
	rst_use_thread(r, 0);
	/*
	 * After them: a change of uid makes the mm non-dumpable, or what
	 * fs.suid_dumpable says. 2 (root-only core dumps) is only ever set by
	 * the kernel that way, never by prctl: kept if the uid change gave it.
	 */
	if (e == 0 && dumpable == 2) {
		if (RCALL(r, SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0) != 2)
			pr_warn("pid %d was dumpable 2 (suid_dumpable): prctl cannot set that, the "
				"restored process has what this machine's fs.suid_dumpable gives it",
				r->s->process.pid);
	} else if (e == 0) {
		e = must(r, RCALL(r, SYS_prctl, PR_SET_DUMPABLE, (uint64_t)dumpable, 0, 0, 0), "PR_SET_DUMPABLE");
	}
	return e;
}

/* struct sock_fprog of x86_64 */
struct fprog_ {
	uint16_t len;
	uint16_t pad[3];
	uint64_t filter;
};

static bool same_filter(const struct ckpt_state_seccomp_filter *a, const struct ckpt_state_seccomp_filter *b)
{
	return a->len == b->len && a->flags == b->flags && !memcmp(a->insns, b->insns, a->len * 8);
}

static int install_filter(struct rst *r, const struct ckpt_state_seccomp_filter *f, bool tsync)
{
	struct fprog_ prog = { .len = (uint16_t)f->len };
	uint64_t flags = (f->flags & SECCOMP_FILTER_FLAG_LOG) | (tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0);
	int64_t res;

	rst_reset(r);
	prog.filter = rst_put(r, f->insns, f->len * 8);
	res = RCALL(r, SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, rst_put(r, &prog, sizeof(prog)));
	if (res > 0) /* TSYNC: the thread that could not be synchronised */
		res = -ESRCH;
	return must(r, res, "seccomp(SECCOMP_SET_MODE_FILTER)");
}

/*
 * Seccomp, per thread, once every thread exists and before the
 * credentials (installing a filter needs no_new_privs or CAP_SYS_ADMIN,
 * which the process may not have): PTRACE_O_SUSPEND_SECCOMP keeps the
 * filters from applying to ckpt's remote calls until release. Filters are
 * inherited, so threads share the older part of their chains: the longest
 * common prefix (the oldest filters, alike in content and place) is
 * installed once in the leader with TSYNC, so the threads share it as
 * before (a later TSYNC of the program needs that); each thread installs
 * the rest of its own. Strict mode last, per thread.
 */
int rst_seccomp(struct rst *r)
{
	const struct ckpt_state_thread *t0 = &r->s->threads[0];
	size_t common = t0->nr_seccomp_filters;
	bool any = false;
	int e;

	for (size_t i = 0; i < r->s->nr_threads; i++) {
		const struct ckpt_state_thread *t = &r->s->threads[i];
		size_t n = 0;

		any |= t->has_seccomp && t->seccomp_mode != CKPT_STATE_SECCOMP_NONE;
		while (n < common && n < t->nr_seccomp_filters && same_filter(&t->seccomp_filters[n], &t0->seccomp_filters[n]))
			n++;
		common = n;
	}
	if (!any)
		return 0;
	e = ckpt_inject_suspend_seccomp(r->inj);
	if (e < 0) {
		pr_err("cannot suspend seccomp in pid %d while it is restored: %s%s", r->pid, errstr(e),
		       e == -EINVAL ? " (needs CONFIG_CHECKPOINT_RESTORE, Linux 4.3)" : "");
		return e;
	}
	rst_use_thread(r, 0);
	for (size_t k = 0; k < common && e == 0; k++)
		e = install_filter(r, &t0->seccomp_filters[k], r->s->nr_threads > 1);
	for (size_t i = 0; i < r->s->nr_threads && e == 0; i++) {
		const struct ckpt_state_thread *t = &r->s->threads[i];

		rst_use_thread(r, i);
		for (size_t k = common; k < t->nr_seccomp_filters && e == 0; k++)
			e = install_filter(r, &t->seccomp_filters[k], false);
		if (e == 0 && t->has_seccomp && t->seccomp_mode == CKPT_STATE_SECCOMP_STRICT)
			e = must(r, RCALL(r, SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, 0), "seccomp(SECCOMP_SET_MODE_STRICT)");
	}
	rst_use_thread(r, 0);
	return e;
}

/*
 * A relative nanosleep or clock_nanosleep interrupted by the dump
 * (-ERESTART_RESTARTBLOCK) continues with the time it had left, not its
 * whole duration. The kernel keeps the deadline in the thread's restart
 * block, which no interface reads and which died with the old process; but
 * when the call has a remaining-time argument, the kernel wrote the time
 * left there at the interruption, and that memory is in the checkpoint. The
 * call runs again with that as its request (the register that held the
 * request points to the remaining time then). Without one (a NULL rem, as
 * usleep(3) passes), the call runs again with its whole duration. An
 * absolute sleep is restarted as it was (-ERESTARTNOHAND) and keeps its
 * deadline.
 */
static void sleep_resume(struct rst *r, size_t idx, uint64_t nr, struct user_regs_struct *regs)
{
	bool rel_clock = nr == SYS_clock_nanosleep && !(regs->rsi & TIMER_ABSTIME);

	if (nr == SYS_nanosleep && regs->rsi)
		regs->rdi = regs->rsi;
	else if (rel_clock && regs->r10)
		regs->rdx = regs->r10;
	else if (nr == SYS_nanosleep || rel_clock)
		pr_info("thread %d slept in %s without a remaining-time argument: it sleeps its whole "
			"duration again", r->s->threads[idx].tid,
			rel_clock ? "clock_nanosleep" : "nanosleep");
}

static int thread_regs(struct rst *r, size_t idx)
{
	const struct ckpt_state_thread *t = &r->s->threads[idx];
	struct user_regs_struct regs = t->regs;

	/*
	 * Inside a system call: -ERESTARTSYS and its kin are restarted by the
	 * kernel when the thread is released (same path as any interruption).
	 * -ERESTART_RESTARTBLOCK needs the kernel's restart block, which died
	 * with the old process: run the call again instead (a sleep with the
	 * time it had left when the kernel told it, else from the start rather
	 * than failing with EINTR).
	 */
	if ((int64_t)regs.orig_rax >= 0 && (int64_t)regs.rax == -ERESTART_RESTARTBLOCK_) {
		uint64_t nr = regs.orig_rax;

		/*
		 * restart_syscall(2) itself (the sleep was interrupted before):
		 * in the new process it has no restart block and fails with
		 * EINTR, so the call it continued runs again, its arguments
		 * still in the registers.
		 */
		if (nr == SYS_restart_syscall && t->has_restart_nr)
			nr = (uint64_t)t->restart_nr;
		else if (nr == SYS_restart_syscall)
			pr_warn("thread %d was in restart_syscall(2) and the call it continued is not known: "
				"it fails with EINTR", t->tid);
		sleep_resume(r, idx, nr, &regs);
		regs.rax = nr;
		regs.rip -= 2;
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
