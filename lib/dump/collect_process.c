/* SPDX-License-Identifier: MIT */
/*
 * The process: identity, credentials, limits, signal handlers, timers; and
 * the attributes Linux keeps per thread that belong with them: io
 * priority, parent-death signal, seccomp mode and filters.
 */
#define LOG_AREA "dump"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "dump/collect-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

/* struct kernel_sigaction of x86_64: what rt_sigaction(2) writes. */
struct ksigaction {
	uint64_t handler, flags, restorer, mask;
};

/* pid, ppid, pgid, sid, start time and name: the leader's, zombie or not. */
static int process_stat(struct collect *c, struct ckpt_state_process *p)
{
	struct ckpt_proc_stat st;
	int r = ckpt_proc_read_stat(c->proc, &st);

	if (r < 0) {
		pr_err("cannot read /proc/%d/stat: %s", c->pid, errstr(r));
		return r;
	}
	p->pid = st.pid;
	p->ppid = st.ppid;
	p->pgid = st.pgrp;
	p->sid = st.session;
	p->start_time = st.start_time;
	memcpy(p->comm, st.comm, sizeof(st.comm));
	p->job_stopped = ckpt_inject_job_stopped(c->inj);
	return 0;
}

static int process_status(struct collect *c, struct ckpt_state_process *p)
{
	struct ckpt_state_creds *cr = &p->creds;
	struct ckpt_proc_status st;
	int r = ckpt_proc_read_status(c->task, &st);

	if (r < 0) {
		pr_err("cannot read the status of pid %d: %s", c->pid, errstr(r));
		return r;
	}
	if (!st.has_umask) {
		ckpt_proc_status_done(&st);
		pr_err("the kernel does not report the umask of pid %d (Linux 4.7)", c->pid);
		return -EOPNOTSUPP;
	}
	p->umask = st.umask;
	memcpy(cr->uid, st.uid, sizeof(cr->uid));
	memcpy(cr->gid, st.gid, sizeof(cr->gid));
	cr->groups = TAKE_PTR(st.groups);
	cr->nr_groups = st.ngroups;
	cr->cap_inh = st.cap_inh;
	cr->cap_prm = st.cap_prm;
	cr->cap_eff = st.cap_eff;
	cr->cap_bnd = st.cap_bnd;
	cr->cap_amb = st.cap_amb;
	p->no_new_privs = st.no_new_privs;
	p->seccomp = st.seccomp;
	p->shared_sigpending = st.shd_pnd;
	ckpt_proc_status_done(&st);
	return 0;
}

static int process_files(struct collect *c, struct ckpt_state_process *p)
{
	_cleanup_free_ char *exe = NULL;
	unsigned long pers;
	struct stat st;
	int r;

	if ((r = ckpt_proc_read_exe(c->task, &exe)) < 0 ||
	    (r = collect_path(exe, &p->exe, &p->exe_deleted)) < 0) {
		pr_err("cannot read the executable of pid %d: %s", c->pid, errstr(r));
		return r;
	}
	if ((r = ckpt_proc_stat_exe(c->task, &st)) < 0) {
		pr_err("cannot stat the executable '%s' of pid %d: %s", p->exe, c->pid, errstr(r));
		return r;
	}
	collect_identity(&st, &p->exe_id);
	if ((r = ckpt_proc_read_cwd(c->task, &p->cwd)) < 0 ||
	    (r = ckpt_proc_read_root(c->task, &p->root)) < 0) {
		pr_err("cannot read the working or root directory of pid %d: %s", c->pid, errstr(r));
		return r;
	}
	if ((r = ckpt_proc_read_personality(c->task, &pers)) < 0) {
		pr_err("cannot read the personality of pid %d: %s", c->pid, errstr(r));
		return r;
	}
	p->personality = (uint32_t)pers;
	return 0;
}

/*
 * prlimit(2) from outside; a process of another user needs CAP_SYS_RESOURCE
 * for that (missing here), so then ask the target itself.
 */
static int process_rlimits(struct collect *c, struct ckpt_state_process *p)
{
	for (int i = 0; i < CKPT_STATE_NR_RLIMITS; i++) {
		struct rlimit rl;
		int64_t res;
		int r;

		if (prlimit(c->pid, (enum __rlimit_resource)i, NULL, &rl) < 0) {
			if (errno != EPERM) {
				r = neg_errno();
				pr_err("cannot read RLIMIT_%s of pid %d: %s", ckpt_state_rlimit_name(i),
				       c->pid, errstr(r));
				return r;
			}
			r = collect_query(c, 0, SYS_prlimit64, COLLECT_ARGS(0, (uint64_t)i, 0, c->scratch),
					  &res, "read the limit '%s'", ckpt_state_rlimit_name(i));
			if (r < 0 || (r = collect_read_scratch(c, &rl, sizeof(rl))) < 0)
				return r;
		}
		p->rlimits[i].cur = rl.rlim_cur;
		p->rlimits[i].max = rl.rlim_max;
	}
	return 0;
}

static int process_prctl(struct collect *c, struct ckpt_state_process *p)
{
	int sub = 0;
	int64_t res;
	int r;

	r = collect_query(c, 0, SYS_prctl, COLLECT_ARGS(PR_GET_DUMPABLE), &res,
			  "read the dumpable flag");
	if (r < 0)
		return r;
	p->dumpable = (int)res;
	r = collect_query(c, 0, SYS_prctl, COLLECT_ARGS(PR_GET_SECUREBITS), &res,
			  "read the securebits");
	if (r < 0)
		return r;
	p->creds.securebits = (uint32_t)res;
	r = collect_query(c, 0, SYS_prctl, COLLECT_ARGS(PR_GET_CHILD_SUBREAPER, c->scratch), &res,
			  "read the child subreaper flag");
	if (r < 0 || (r = collect_read_scratch(c, &sub, sizeof(sub))) < 0)
		return r;
	p->child_subreaper = sub != 0;
	return 0;
}

/* rt_sigaction(sig, NULL, &old): SIGKILL and SIGSTOP answer too (always SIG_DFL). */
static int process_sigactions(struct collect *c, struct ckpt_state_process *p)
{
	for (int sig = 1; sig <= CKPT_STATE_NSIG; sig++) {
		struct ksigaction ka;
		int64_t res;
		int r;

		r = collect_query(c, 0, SYS_rt_sigaction, COLLECT_ARGS((uint64_t)sig, 0, c->scratch, 8),
				  &res, "read the action of signal %d", sig);
		if (r < 0 || (r = collect_read_scratch(c, &ka, sizeof(ka))) < 0)
			return r;
		p->sigactions[sig - 1].handler = ka.handler;
		p->sigactions[sig - 1].flags = ka.flags;
		p->sigactions[sig - 1].restorer = ka.restorer;
		p->sigactions[sig - 1].mask = ka.mask;
	}
	return 0;
}

static int process_itimers(struct collect *c, struct ckpt_state_process *p)
{
	static const int which[CKPT_STATE_NR_ITIMERS] = {
		[CKPT_STATE_ITIMER_REAL] = ITIMER_REAL,
		[CKPT_STATE_ITIMER_VIRTUAL] = ITIMER_VIRTUAL,
		[CKPT_STATE_ITIMER_PROF] = ITIMER_PROF,
	};

	for (int i = 0; i < CKPT_STATE_NR_ITIMERS; i++) {
		struct itimerval it;
		int64_t res;
		int r;

		r = collect_query(c, 0, SYS_getitimer, COLLECT_ARGS((uint64_t)which[i], c->scratch),
				  &res, "read interval timer %d", which[i]);
		if (r < 0 || (r = collect_read_scratch(c, &it, sizeof(it))) < 0)
			return r;
		p->itimers[i].interval_sec = it.it_interval.tv_sec;
		p->itimers[i].interval_usec = it.it_interval.tv_usec;
		p->itimers[i].value_sec = it.it_value.tv_sec;
		p->itimers[i].value_usec = it.it_value.tv_usec;
	}
	return 0;
}

/* PTRACE_SECCOMP_GET_METADATA's argument (Linux 4.16). */
struct seccomp_md {
	uint64_t filter_off, flags;
};

/*
 * The filters of a thread in filter mode, the oldest first. The kernel
 * numbers them from the newest (0) and says ENOENT past the oldest. Filters
 * that threads share (installed before a clone, or with TSYNC) are read in
 * each: restore tells them by their content and place.
 */
static int thread_seccomp_filters(struct collect *c, struct ckpt_state_thread *t)
{
	size_t n = 0;

	for (;; n++) {
		long len = ptrace(PTRACE_SECCOMP_GET_FILTER, t->tid, (void *)n, NULL);

		if (len < 0 && errno == ENOENT)
			break;
		if (len < 0) {
			int r = neg_errno();

			pr_err("cannot read seccomp filter %zu of thread %d of pid %d: %s%s", n, t->tid,
			       c->pid, errstr(r),
			       r == -EINVAL ? " (needs CONFIG_CHECKPOINT_RESTORE, Linux 4.4)"
			       : r == -EACCES || r == -EPERM ? " (PTRACE_SECCOMP_GET_FILTER needs CAP_SYS_ADMIN: a "
							       "process with a seccomp filter is dumped by root)"
			       : "");
			return r;
		}
		if (n >= 512) {
			pr_err("thread %d of pid %d has more than 512 seccomp filters", t->tid, c->pid);
			return -E2BIG;
		}
	}
	t->seccomp_filters = n ? calloc(n, sizeof(*t->seccomp_filters)) : NULL;
	if (n && !t->seccomp_filters)
		return -ENOMEM;
	t->nr_seccomp_filters = n;
	for (size_t i = 0; i < n; i++) {
		struct ckpt_state_seccomp_filter *f = &t->seccomp_filters[n - 1 - i];
		struct seccomp_md md = { .filter_off = i };
		long len = ptrace(PTRACE_SECCOMP_GET_FILTER, t->tid, (void *)i, NULL);

		if (len <= 0 || len > 4096)
			return len < 0 ? neg_errno() : -EPROTO;
		f->insns = calloc((size_t)len, 8);
		if (!f->insns)
			return -ENOMEM;
		if (ptrace(PTRACE_SECCOMP_GET_FILTER, t->tid, (void *)i, f->insns) != len)
			return -EPROTO; /* it cannot change while the thread is stopped */
		f->len = (size_t)len;
		if (ptrace(PTRACE_SECCOMP_GET_METADATA, t->tid, (void *)sizeof(md), &md) == 0)
			f->flags = (uint32_t)md.flags;
	}
	return 0;
}

/*
 * A thread stopped in restart_syscall(2) continues a call whose number the
 * kernel no longer shows (rax became __NR_restart_syscall when the call
 * was first interrupted); its restart block, which says what to continue,
 * dies with the process. The call's number is in the code: glibc (and
 * any inline `syscall`) loads it with `mov $NR, %eax` right before the
 * instruction. Not found: restore says so.
 */
static void restart_nr(struct collect *c, struct ckpt_state_thread *t)
{
	uint8_t code[7];
	uint32_t nr;

	if (t->regs.orig_rax != SYS_restart_syscall || t->regs.rip < sizeof(code) ||
	    ckpt_inject_read(c->inj, t->regs.rip - sizeof(code), code, sizeof(code)) < 0)
		return;
	if (code[0] != 0xb8 || code[5] != 0x0f || code[6] != 0x05)
		return;
	memcpy(&nr, code + 1, sizeof(nr));
	if (nr >= 1024 || nr == SYS_restart_syscall)
		return;
	t->restart_nr = (int)nr;
	t->has_restart_nr = true;
}

/*
 * Per thread: io priority (from here: ioprio_get on the thread id), the
 * parent-death signal (only the thread can ask for its own) and seccomp.
 */
static int thread_attrs(struct collect *c, size_t idx, struct ckpt_state_thread *t)
{
	_cleanup_proc_ struct ckpt_proc *tp = NULL;
	struct ckpt_proc_status st;
	int64_t res;
	long prio;
	int sig = 0, r;

	prio = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, t->tid);
	if (prio < 0) {
		r = neg_errno();
		pr_err("cannot read the io priority of thread %d of pid %d: %s", t->tid, c->pid, errstr(r));
		return r;
	}
	t->ioprio = (int)prio;
	t->has_ioprio = true;
	r = collect_query(c, idx, SYS_prctl, COLLECT_ARGS(PR_GET_PDEATHSIG, c->scratch), &res,
			  "read the parent-death signal");
	if (r < 0 || (r = collect_read_scratch(c, &sig, sizeof(sig))) < 0)
		return r;
	t->pdeathsig = sig;
	t->has_pdeathsig = true;
	restart_nr(c, t);
	r = ckpt_proc_open_task(c->proc, t->tid, &tp);
	if (r == 0)
		r = ckpt_proc_read_status(tp, &st);
	if (r < 0) {
		pr_err("cannot read the status of thread %d of pid %d: %s", t->tid, c->pid, errstr(r));
		return r;
	}
	t->seccomp_mode = st.seccomp;
	ckpt_proc_status_done(&st);
	if (t->seccomp_mode == CKPT_STATE_SECCOMP_FILTER && (r = thread_seccomp_filters(c, t)) < 0)
		return r;
	t->has_seccomp = true;
	return 0;
}

int collect_process(struct collect *c)
{
	struct ckpt_state_process *p = &c->s->process;
	const struct ckpt_thread_state *t0 = ckpt_inject_thread(c->inj, 0);
	int r;

	if ((r = process_stat(c, p)) < 0 || (r = process_status(c, p)) < 0 ||
	    (r = process_files(c, p)) < 0 || (r = process_rlimits(c, p)) < 0 ||
	    (r = process_prctl(c, p)) < 0 || (r = process_sigactions(c, p)) < 0 ||
	    (r = process_itimers(c, p)) < 0)
		return r;
	for (size_t i = 0; i < c->s->nr_threads; i++)
		if ((r = thread_attrs(c, i, &c->s->threads[i])) < 0)
			return r;
	return collect_peek_siginfo(c, t0->tid, true, &p->shared_pending, &p->nr_shared_pending);
}
