/* SPDX-License-Identifier: MIT */
/*
 * Seize, freeze and release a process. All threads are seized with
 * PTRACE_SEIZE and stopped with PTRACE_INTERRUPT; the task list is re-read
 * until no new thread appears after every known one has stopped (only a
 * running thread can create another). The stops are polled, never waited
 * for: a thread in uninterruptible sleep does not stop, and the seize
 * gives up at its deadline, naming it.
 */
#define LOG_AREA "inject"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat/syscalls.h"
#include "inject/inject-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define NT_X86_XSTATE_ 0x202
#define XSTATE_MAX (64 * 1024)
#define USER_CS_64 0x33
#define PIDFD_THREAD_ O_EXCL /* Linux 6.9 */
/* Release waits this long for threads still on their way to their stop. */
#define LET_GO_NS (20 * 1000000ULL)
/* Polls for stops yield the CPU this long before they sleep. */
#define YIELD_NS (2 * 1000000ULL)

static bool is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* ckpt's own termination signals wait until the target runs again. */
static void defer_signals(struct ckpt_inject *inj)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGHUP);
	sigaddset(&s, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &s, &inj->saved_sigmask);
}

static void undefer_signals(struct ckpt_inject *inj)
{
	pthread_sigmask(SIG_SETMASK, &inj->saved_sigmask, NULL);
}

static struct inj_thread *find_thread(struct ckpt_inject *inj, pid_t tid)
{
	for (size_t i = 0; i < inj->nr_threads; i++)
		if (inj->threads[i].st.tid == tid)
			return &inj->threads[i];
	return NULL;
}

/* Seen stopped (seized), or made stopped (ckpt_inject_clone_thread()). */
static bool held(const struct inj_thread *t)
{
	return t->stopped || t->saved;
}

static bool is_zombie(struct ckpt_inject *inj, pid_t tid)
{
	for (size_t i = 0; i < inj->nr_zombies; i++)
		if (inj->zombies[i] == tid)
			return true;
	return false;
}

/*
 * Explain an EPERM from PTRACE_SEIZE: another tracer, or no permission.
 * 1: the thread is already ours, this very thread's: an earlier seize timed
 * out before it stopped (see leave_attached()), and this one takes it over.
 */
static int seize_refused(struct ckpt_inject *inj, pid_t tid)
{
	_cleanup_proc_ struct ckpt_proc *t = NULL;
	struct ckpt_proc_status st;

	if (ckpt_proc_open_task(inj->proc, tid, &t) == 0 && ckpt_proc_read_status(t, &st) == 0) {
		pid_t tracer = st.tracer_pid;

		ckpt_proc_status_done(&st);
		if (tracer == gettid()) {
			pr_debug("thread %d of pid %d is still attached from an earlier seize: taken over",
				 tid, inj->pid);
			return 1;
		}
		if (tracer > 0) {
			_cleanup_proc_ struct ckpt_proc *tp = NULL;
			struct ckpt_proc_stat ts = { .comm = "?" };

			if (ckpt_proc_open(NULL, tracer, &tp) < 0 || ckpt_proc_read_stat(tp, &ts) < 0)
				strcpy(ts.comm, "?");
			pr_err("pid %d is already traced by pid %d (%s)", inj->pid, tracer, ts.comm);
			return -EBUSY;
		}
	}
	pr_err("cannot seize pid %d (thread %d): %s", inj->pid, tid, strerror(EPERM));
	return -EPERM;
}

static char task_state(struct ckpt_inject *inj, pid_t tid)
{
	_cleanup_proc_ struct ckpt_proc *tp = NULL;
	struct ckpt_proc_stat st;

	if (ckpt_proc_open_task(inj->proc, tid, &tp) < 0 || ckpt_proc_read_stat(tp, &st) < 0)
		return 'X';
	return st.state;
}

/* Nothing to wait for yet: 0, unless the leader has exited (1). */
static int still_running(struct ckpt_inject *inj, struct inj_thread *t, bool leader)
{
	char st = leader ? task_state(inj, t->st.tid) : 0;

	if (st == 'Z' || st == 'X') {
		t->dead = true;
		t->reap = true;
		return 1;
	}
	return 0;
}

/*
 * Has a freshly seized thread reached its first stop? 1: yes, or it died
 * (t->dead); 0: not yet; -errno. Never blocks: a thread in uninterruptible
 * sleep (D) does not stop until it wakes, which may be never. The leader is
 * also looked at in /proc: if it exits now, waitpid() would report it only
 * once every other thread has exited, and those are stopped by us.
 */
static int poll_first_stop(struct ckpt_inject *inj, struct inj_thread *t)
{
	bool leader = t->st.tid == inj->pid;

	for (;;) {
		int status, sig, event, opts = WSTOPPED | WEXITED | __WALL | WNOWAIT | WNOHANG;
		siginfo_t si = { 0 };
		pid_t w;

		/*
		 * A signal was on its way when we came: deliver it now, as it
		 * would have been, and wait for the INTERRUPT trap, which stays
		 * pending. Looked at without being taken (WNOWAIT): a wait
		 * clears the signal the stop holds, and a ckpt killed before
		 * PTRACE_CONT would then have dropped it.
		 */
		if (waitid(P_PID, (id_t)t->st.tid, &si, opts) == 0) {
			if (!si.si_pid)
				return still_running(inj, t, leader);
			if (si.si_code == CLD_TRAPPED && !(si.si_status >> 8) && si.si_status != SIGTRAP) {
				pr_debug("thread %d: signal %d at seize, delivered", t->st.tid, si.si_status);
				if (ptrace(PTRACE_CONT, t->st.tid, 0, (void *)(long)si.si_status) < 0 &&
				    errno != ESRCH)
					return neg_errno();
				continue; /* ESRCH: died, the next wait says so */
			}
		}
		w = waitpid(t->st.tid, &status, __WALL | WNOHANG);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD) {
				t->dead = true;
				return 1;
			}
			return neg_errno();
		}
		if (w == 0)
			return still_running(inj, t, leader);
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			t->dead = true;
			return 1;
		}
		if (!WIFSTOPPED(status))
			continue;
		sig = WSTOPSIG(status);
		event = status >> 16;
		if (event == PTRACE_EVENT_STOP) {
			if (is_stop_signal(sig))
				inj->job_stopped = true;
			t->stopped = true;
			return 1;
		}
		/* A signal the look above missed (it came in between). */
		pr_debug("thread %d: signal %d at seize, delivered", t->st.tid, sig);
		if (ptrace(PTRACE_CONT, t->st.tid, 0, (void *)(long)sig) < 0) {
			if (errno == ESRCH)
				continue; /* died: the next waitpid says so */
			return neg_errno();
		}
	}
}

int inj_save_state(struct ckpt_inject *inj, struct inj_thread *t)
{
	pid_t tid = t->st.tid;

	if (ptrace(PTRACE_GETREGS, tid, 0, &t->st.regs) < 0)
		return neg_errno();
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(uint64_t), &t->st.sigmask) < 0)
		return neg_errno();
	t->st.in_syscall = (int64_t)t->st.regs.orig_rax >= 0;
	if (!(inj->flags & CKPT_INJECT_NO_XSTATE)) {
		struct iovec iov;
		void *buf = malloc(XSTATE_MAX);

		if (!buf)
			return -ENOMEM;
		iov.iov_base = buf;
		iov.iov_len = XSTATE_MAX;
		if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE_, &iov) < 0) {
			int r = neg_errno();

			free(buf);
			return r;
		}
		t->xstate = realloc(buf, iov.iov_len) ?: buf;
		t->st.xstate = t->xstate;
		t->st.xstate_len = iov.iov_len;
	}
	return 0;
}

/*
 * Syscall stops say so (SIGTRAP | 0x80); EXITKILL when asked; and seccomp
 * suspended when ckpt may (CAP_SYS_ADMIN, itself not under seccomp): the
 * remote calls are system calls of the target, which its filters would
 * judge and strict mode would answer with SIGKILL of the thread. The
 * kernel ends the suspension at detach, also when ckpt is killed.
 */
static long seize_options(const struct ckpt_inject *inj)
{
	return PTRACE_O_TRACESYSGOOD | (inj->flags & CKPT_INJECT_EXITKILL ? PTRACE_O_EXITKILL : 0) |
	       (inj->flags & CKPT_INJECT_SUSPEND_SECCOMP ? PTRACE_O_SUSPEND_SECCOMP : 0);
}

static bool may_suspend_seccomp(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };

	return syscall(SYS_capget, &h, d) == 0 && (d[0].effective & (1u << CAP_SYS_ADMIN)) &&
	       prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 0;
}

/* The thread stopped: save what release puts back. */
static int first_stop(struct ckpt_inject *inj, struct inj_thread *t)
{
	int r;

	if (t->taken_over && ptrace(PTRACE_SETOPTIONS, t->st.tid, 0, (void *)seize_options(inj)) < 0 &&
	    errno != ESRCH) {
		r = neg_errno();
		pr_err("cannot set the ptrace options of thread %d of pid %d: %s", t->st.tid, inj->pid,
		       errstr(r));
		return r;
	}
	r = inj_save_state(inj, t);
	if (r == -ESRCH) {
		t->dead = true;
		return 0;
	}
	if (r < 0) {
		pr_err("cannot save the state of thread %d of pid %d: %s", t->st.tid, inj->pid,
		       errstr(r));
		return r;
	}
	t->saved = true;
	if (t->st.regs.cs != USER_CS_64) {
		pr_err("pid %d runs 32-bit code (cs %#llx): only x86_64 processes are supported", inj->pid,
		       (unsigned long long)t->st.regs.cs);
		return -EOPNOTSUPP;
	}
	return 0;
}

static const char *state_name(char state)
{
	switch (state) {
	case 'R':
		return "running";
	case 'S':
		return "sleeping";
	case 'D':
		return "uninterruptible sleep";
	case 'T':
		return "stopped";
	case 't':
		return "in a tracing stop";
	case 'Z':
		return "a zombie";
	case 'X':
		return "dead";
	default:
		return "in state";
	}
}

/*
 * Why thread @tid has not stopped, as far as /proc tells: "uninterruptible
 * sleep (D) in fuse_wait_answer, system call 0". Its name into @comm.
 */
static void why_not_stopped(struct ckpt_inject *inj, pid_t tid, char *comm, size_t comm_len,
			    char *buf, size_t len)
{
	_cleanup_proc_ struct ckpt_proc *tp = NULL;
	struct ckpt_proc_stat st = { .state = '?' };
	char wchan[128] = "";
	long nr = -1;
	int n;

	snprintf(comm, comm_len, "?");
	if (ckpt_proc_open_task(inj->proc, tid, &tp) < 0) {
		snprintf(buf, len, "gone");
		return;
	}
	if (ckpt_proc_read_stat(tp, &st) == 0)
		snprintf(comm, comm_len, "%s", st.comm);
	if (ckpt_proc_read_wchan(tp, wchan, sizeof(wchan)) < 0)
		wchan[0] = '\0';
	n = snprintf(buf, len, "%s (%c)", state_name(st.state), st.state);
	if (wchan[0] && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " in %s", wchan);
	if (ckpt_proc_read_syscall(tp, &nr) == 0 && nr >= 0 && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ", system call %ld", nr);
}

/* The seize ran out of time: name every thread that did not stop. */
static int timed_out(struct ckpt_inject *inj)
{
	for (size_t i = 0; i < inj->nr_threads; i++) {
		struct inj_thread *t = &inj->threads[i];
		char comm[64], why[256];

		if (t->dead || held(t))
			continue;
		why_not_stopped(inj, t->st.tid, comm, sizeof(comm), why, sizeof(why));
		pr_err("thread %d of pid %d (%s) did not stop within %g s: %s", t->st.tid, inj->pid, comm,
		       (double)inj->timeout_ms / 1e3, why);
	}
	return -ETIMEDOUT;
}

/*
 * Between two polls of threads on their way to stop. A blocking wait could
 * not end at a deadline, so this polls: yielding at first (a thread on our
 * CPU stops as soon as it gets to run; one on another CPU within tens of
 * microseconds), then sleeping with a backoff up to 1 ms.
 */
static void pause_poll(uint64_t since, useconds_t *backoff)
{
	if (now_ns() - since < YIELD_NS) {
		sched_yield();
		return;
	}
	usleep(*backoff);
	if (*backoff < 1000)
		*backoff *= 2;
}

/*
 * Wait for the first stop of every thread seized but not stopped yet and
 * save the state of each. They were interrupted in list order and stop in
 * about that order: a round looks at them up to the first that has not
 * stopped yet. At @deadline, a last round looks at all of them, so each
 * has had the whole time whatever its place in the list.
 */
static int wait_stops(struct ckpt_inject *inj, uint64_t deadline)
{
	uint64_t since = now_ns();
	useconds_t backoff = 20;

	for (;;) {
		bool last = now_ns() >= deadline, moved = false;
		size_t waiting = 0;

		for (size_t i = 0; i < inj->nr_threads && (last || !waiting); i++) {
			struct inj_thread *t = &inj->threads[i];
			int r;

			if (t->dead || held(t))
				continue;
			r = poll_first_stop(inj, t);
			if (r < 0) {
				pr_err("waiting for thread %d of pid %d to stop: %s", t->st.tid, inj->pid,
				       errstr(r));
				return r;
			}
			if (!r) {
				waiting++;
				continue;
			}
			moved = true;
			if (!t->dead && (r = first_stop(inj, t)) < 0)
				return r;
		}
		if (!waiting)
			return 0;
		if (last)
			return timed_out(inj);
		if (!moved)
			pause_poll(since, &backoff);
	}
}

int inj_add_zombie(struct ckpt_inject *inj, pid_t tid)
{
	if (GROW(inj->zombies, inj->cap_zombies, inj->nr_zombies + 1) < 0)
		return -ENOMEM;
	inj->zombies[inj->nr_zombies++] = tid;
	return 0;
}

/* Seize every thread of the current task list we do not hold yet. */
static int seize_new(struct ckpt_inject *inj, size_t *ret_new)
{
	_cleanup_free_ pid_t *tids = NULL;
	size_t n = 0, added = 0;
	int r;

	r = ckpt_proc_list_tasks(inj->proc, &tids, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct inj_thread *t;
		bool take_over = false;
		long rc;

		if (find_thread(inj, tids[i]) || is_zombie(inj, tids[i]))
			continue;
		/*
		 * Syscall stops say so (SIGTRAP | 0x80). No PTRACE_O_EXITKILL
		 * unless asked: a target must outlive ckpt. No look at the
		 * thread's state first (a /proc read per thread, in the
		 * freeze): a zombie refuses with EPERM, and only then is it
		 * told from a tracer.
		 */
		rc = ptrace(PTRACE_SEIZE, tids[i], 0, (void *)seize_options(inj));
		if (rc < 0 && errno == EINVAL && (inj->flags & CKPT_INJECT_SUSPEND_SECCOMP)) {
			/* No CONFIG_CHECKPOINT_RESTORE: without the suspension. */
			inj->flags &= ~CKPT_INJECT_SUSPEND_SECCOMP;
			rc = ptrace(PTRACE_SEIZE, tids[i], 0, (void *)seize_options(inj));
		}
		if (rc < 0) {
			char st;

			if (errno == ESRCH)
				continue; /* exited meanwhile */
			if (errno == EPERM) {
				st = task_state(inj, tids[i]);
				if (st == 'X')
					continue; /* gone meanwhile */
				if (st == 'Z') {
					pr_debug("thread %d is a zombie, not seized", tids[i]);
					if ((r = inj_add_zombie(inj, tids[i])) < 0)
						return r;
					continue;
				}
				r = seize_refused(inj, tids[i]);
				if (r < 0)
					return r;
				take_over = true;
			} else {
				r = neg_errno();
				pr_err("cannot seize thread %d of pid %d: %s", tids[i], inj->pid, errstr(r));
				return r;
			}
		}
		if (GROW(inj->threads, inj->cap_threads, inj->nr_threads + 1) < 0) {
			if (!take_over)
				ptrace(PTRACE_DETACH, tids[i], 0, 0);
			return -ENOMEM;
		}
		t = &inj->threads[inj->nr_threads++];
		memset(t, 0, sizeof(*t));
		t->st.tid = tids[i];
		t->taken_over = take_over;
		if (ptrace(PTRACE_INTERRUPT, tids[i], 0, 0) < 0 && errno != ESRCH)
			return neg_errno();
		added++;
	}
	*ret_new = added;
	return 0;
}

/* A leader that has exited and no thread left: a zombie (not a process whose main thread exited). */
static bool process_is_zombie(const struct ckpt_proc *p, const struct ckpt_proc_stat *st)
{
	_cleanup_free_ pid_t *tids = NULL;
	size_t n = 0;

	if (st->state != 'Z' && st->state != 'X')
		return false;
	return ckpt_proc_list_tasks(p, &tids, &n) < 0 || n <= 1;
}

/*
 * What no checkpoint can be made of, said as what it is: a kernel thread
 * (no user memory), a zombie (an exit status only). -EINVAL, -ESRCH.
 */
static int unfit(pid_t pid, const struct ckpt_proc *p, const struct ckpt_proc_stat *st, unsigned int flags)
{
	if (st->flags & CKPT_PF_KTHREAD) {
		pr_err("pid %d (%s) is a kernel thread: it has no user memory to checkpoint", pid, st->comm);
		return -EINVAL;
	}
	if (process_is_zombie(p, st)) {
		if (flags & CKPT_INJECT_GONE_OK)
			pr_debug("pid %d is a zombie", pid);
		else
			pr_err("pid %d (%s) is a zombie: it has exited and only its exit status remains "
			       "(its parent, pid %d, has not collected it)", pid, st->comm, st->ppid);
		return -ESRCH;
	}
	return 0;
}

int ckpt_inject_check_pid(pid_t pid)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	struct ckpt_proc_stat st;
	int r;

	if (pid == getpid()) {
		pr_err("pid %d is ckpt itself: refusing to seize it", pid);
		return -EINVAL;
	}
	r = ckpt_proc_open(NULL, pid, &p);
	if (r == 0)
		r = ckpt_proc_read_stat(p, &st);
	if (r < 0) {
		pr_err("pid %d: %s", pid, r == -ESRCH ? "no such process" : errstr(r));
		return r;
	}
	return unfit(pid, p, &st, 0);
}

static int check_target(struct ckpt_inject *inj)
{
	struct ckpt_proc_stat st;
	int r;

	if (inj->pid == getpid()) {
		pr_err("pid %d is ckpt itself: refusing to seize it", inj->pid);
		return -EINVAL;
	}
	r = ckpt_proc_open(NULL, inj->pid, &inj->proc);
	if (r < 0) {
		if (r == -ESRCH && (inj->flags & CKPT_INJECT_GONE_OK))
			pr_debug("pid %d is gone", inj->pid);
		else
			pr_err("cannot open /proc/%d: %s", inj->pid, r == -ESRCH ? "no such process" : errstr(r));
		return r;
	}
	r = ckpt_proc_read_stat(inj->proc, &st);
	if (r < 0) {
		pr_err("cannot read /proc/%d/stat: %s", inj->pid, errstr(r));
		return r;
	}
	r = unfit(inj->pid, inj->proc, &st, inj->flags);
	if (r < 0)
		return r;
	if (st.state == 'T')
		inj->job_stopped = true;
	return 0;
}

/* Put the leader (tid == pid) first: it is the default thread for syscalls. */
static void leader_first(struct ckpt_inject *inj)
{
	for (size_t i = 1; i < inj->nr_threads; i++) {
		if (inj->threads[i].st.tid == inj->pid) {
			struct inj_thread tmp = inj->threads[0];

			inj->threads[0] = inj->threads[i];
			inj->threads[i] = tmp;
			return;
		}
	}
}

/*
 * Forget threads that died while being seized; those still traced as
 * zombies are remembered so release can reap them.
 */
static int drop_dead(struct ckpt_inject *inj)
{
	size_t o = 0;

	for (size_t i = 0; i < inj->nr_threads; i++) {
		struct inj_thread *t = &inj->threads[i];

		if (t->dead) {
			free(t->xstate);
			if (t->reap) {
				int r = inj_add_zombie(inj, t->st.tid);

				if (r < 0)
					return r;
			}
			continue;
		}
		inj->threads[o++] = *t;
	}
	inj->nr_threads = o;
	return 0;
}

/* Has the process of @pidfd ended (within @ms)? */
static bool process_ended_within(int pidfd, int ms)
{
	struct pollfd p = { pidfd, POLLIN, 0 };

	return poll(&p, 1, ms) > 0 && (p.revents & POLLIN);
}

/* Has the process of @pidfd ended (within 50 ms: it may be on its way out)? */
static bool process_ended(int pidfd)
{
	return process_ended_within(pidfd, 50);
}

/* A process that ended while being seized, with how if known ("killed by SIGKILL"). */
static void say_gone(const struct ckpt_inject *inj)
{
	char how[64] = "";
	int status = -1;

	if (inj->flags & CKPT_INJECT_GONE_OK) {
		pr_debug("pid %d exited while being seized", inj->pid);
		return;
	}
	if (ckpt_inject_ended(inj, 50, &status) > 0 && status >= 0)
		describe_wait_status(status, how, sizeof(how));
	pr_err("pid %d ended while being seized%s%s", inj->pid, *how ? ": " : "", how);
}

int ckpt_inject_seize(pid_t pid, unsigned int flags, struct ckpt_inject **ret)
{
	return ckpt_inject_seize_timeout(pid, flags, 0, ret);
}

int ckpt_inject_seize_timeout(pid_t pid, unsigned int flags, unsigned int timeout_ms,
			      struct ckpt_inject **ret)
{
	struct ckpt_inject *inj;
	uint64_t deadline;
	int r;

	if (pid <= 0) {
		pr_err("invalid pid %d", pid);
		return -EINVAL;
	}
	inj = calloc(1, sizeof(*inj));
	if (!inj)
		return -ENOMEM;
	inj->pid = pid;
	inj->pidfd = -1;
	inj->thread_pidfd = -1;
	inj->mem_fd = -1;
	inj->call_cpu = -1;
	inj->flags = flags | (may_suspend_seccomp() ? CKPT_INJECT_SUSPEND_SECCOMP : 0);
	inj->timeout_ms = timeout_ms ?: CKPT_INJECT_TIMEOUT_MS;
	deadline = now_ns() + (uint64_t)inj->timeout_ms * 1000000ULL;
	defer_signals(inj);

	r = check_target(inj);
	if (r < 0)
		goto fail;
	inj->pidfd = sys_pidfd_open(pid, 0);
	if (inj->pidfd < 0) {
		r = neg_errno();
		pr_err("cannot open a pidfd of pid %d: %s", pid, errstr(r));
		goto fail;
	}
	for (;;) {
		size_t added = 0;

		r = seize_new(inj, &added);
		if (r < 0)
			goto fail;
		if (!added)
			break;
		r = wait_stops(inj, deadline);
		if (r < 0)
			goto fail;
	}
	r = drop_dead(inj);
	if (r < 0)
		goto fail;
	if (!inj->nr_threads) {
		say_gone(inj);
		r = -ESRCH;
		goto fail;
	}
	leader_first(inj);
	inj->mm_tid = inj->threads[0].st.tid;
	/*
	 * /proc/TID rather than /proc/PID/task/TID: the latter has no
	 * map_files, and /proc/PID has no maps when the leader is a zombie.
	 */
	r = ckpt_proc_open(NULL, inj->mm_tid, &inj->task_proc);
	if (r < 0) {
		pr_err("cannot open /proc/%d: %s", inj->mm_tid, errstr(r));
		goto fail;
	}
	if (inj->mm_tid != pid) {
		/* A zombie leader has no files: pidfd_getfd needs a live thread. */
		inj->thread_pidfd = sys_pidfd_open(inj->mm_tid, PIDFD_THREAD_);
		if (inj->thread_pidfd < 0) {
			r = neg_errno();
			pr_err("cannot open a pidfd of thread %d: %s", inj->mm_tid, errstr(r));
			goto fail;
		}
	}
	pr_debug("seized pid %d: %zu threads, %zu zombies%s", pid, inj->nr_threads, inj->nr_zombies,
		 inj->job_stopped ? ", job-stopped" : "");
	*ret = inj;
	return 0;
fail:
	/*
	 * A process that ends while it is seized makes any step fail its own
	 * way (PTRACE_SEIZE says EPERM to a task that just became a zombie):
	 * if it has ended, that is the cause.
	 */
	if (r != -ESRCH && inj->pidfd >= 0 && process_ended(inj->pidfd)) {
		say_gone(inj);
		r = -ESRCH;
	}
	ckpt_inject_release(inj);
	return r;
}

int inj_resume_wait(struct ckpt_inject *inj, struct inj_thread *t, bool step)
{
	return inj_resume_wait_req(inj, t, step ? PTRACE_SINGLESTEP : PTRACE_SYSCALL);
}

int inj_resume_wait_req(struct ckpt_inject *inj, struct inj_thread *t, int req)
{
	bool step = req != PTRACE_SYSCALL; /* a step, or an int3: a plain SIGTRAP */
	int pass_sig = 0;

	for (;;) {
		int status, sig, event;

		if (ptrace(req, t->st.tid, 0, (void *)(long)pass_sig) < 0) {
			if (errno == ESRCH)
				t->dead = true;
			return neg_errno();
		}
		pass_sig = 0;
		while (waitpid(t->st.tid, &status, __WALL) < 0) {
			if (errno != EINTR)
				return neg_errno();
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			t->dead = true;
			return -ESRCH;
		}
		sig = WSTOPSIG(status);
		event = status >> 16;
		if (event == PTRACE_EVENT_STOP) {
			/* An interrupt trap or group stop: just go on. */
			if (is_stop_signal(sig))
				inj->job_stopped = true;
			continue;
		}
		if (event)
			continue;
		if (sig == (step ? SIGTRAP : (SIGTRAP | 0x80)))
			return 0;
		if (is_stop_signal(sig)) {
			/* Let job control happen; release leaves it stopped. */
			pass_sig = sig;
			continue;
		}
		/* A fault caused by what we ran: report it, drop the signal. */
		pr_debug("thread %d: signal %d during a remote syscall", t->st.tid, sig);
		return -EFAULT;
	}
}

/*
 * Threads seized and interrupted but not seen stopped (the seize failed or
 * timed out first) cannot be detached: PTRACE_DETACH wants a stopped
 * thread (ESRCH). Give them a moment to reach their stop (one that merely
 * ran on another CPU is there in microseconds), all at once.
 */
static void wait_unstopped(struct ckpt_inject *inj)
{
	uint64_t since = now_ns(), end = since + LET_GO_NS;
	useconds_t backoff = 20;

	for (;;) {
		size_t waiting = 0;

		for (size_t i = 0; i < inj->nr_threads; i++) {
			struct inj_thread *t = &inj->threads[i];

			if (!t->dead && !held(t) && poll_first_stop(inj, t) == 0)
				waiting++;
		}
		if (!waiting || now_ns() >= end)
			return;
		pause_poll(since, &backoff);
	}
}

/*
 * A thread that still has not stopped (uninterruptible sleep) stays
 * attached to the calling thread with the interrupt pending. When it
 * wakes, it stops for us; the next seize of the process from this thread
 * takes it over and so lets it go (seize_refused()). When the calling
 * thread exits, the kernel detaches it and drops the pending interrupt:
 * it runs on as if nothing had happened. ckpt's commands exit right after
 * a failed seize.
 */
static void leave_attached(struct ckpt_inject *inj, struct inj_thread *t)
{
	pr_info("thread %d of pid %d has not stopped: it stays attached to ckpt (pid %d) until it "
		"stops or ckpt exits, and runs on then", t->st.tid, inj->pid, getpid());
}

static int restore_thread(struct ckpt_inject *inj, struct inj_thread *t)
{
	pid_t tid = t->st.tid;
	int r = 0;

	if (t->xstate_dirty && t->xstate) {
		struct iovec iov = { t->xstate, t->st.xstate_len };

		if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE_, &iov) < 0)
			r = neg_errno();
	}
	if (t->regs_dirty && ptrace(PTRACE_SETREGS, tid, 0, &t->st.regs) < 0 && !r)
		r = neg_errno();
	if (t->mask_dirty &&
	    ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(uint64_t), &t->st.sigmask) < 0 && !r)
		r = neg_errno();
	if (ptrace(PTRACE_DETACH, tid, 0, 0) < 0)
		r = neg_errno(); /* ESRCH: it is exiting, the caller reaps it */
	if (r < 0 && r != -ESRCH)
		pr_err("cannot restore thread %d of pid %d: %s", tid, inj->pid, errstr(r));
	return r;
}

/*
 * Threads that died while we traced them stay zombies until their tracer
 * waits for them. Wait for the others' (never the real parent's business);
 * the leader only when we are not its parent, since then our wait just hands
 * it back to the parent.
 */
static void reap_zombies(struct ckpt_inject *inj)
{
	struct ckpt_proc_stat st;
	bool our_child;

	if (!inj->nr_zombies || !inj->proc)
		return;
	our_child = ckpt_proc_read_stat(inj->proc, &st) == 0 && st.ppid == getpid();

	for (size_t i = 0; i < inj->nr_zombies; i++) {
		pid_t tid = inj->zombies[i];
		int status;

		if (tid == inj->pid && our_child)
			continue;
		for (int tries = 0; tries < 200; tries++) {
			pid_t w = waitpid(tid, &status, __WALL | WNOHANG);

			if (w != 0 && !(w < 0 && errno == EINTR))
				break;
			usleep(500);
		}
	}
}

int ckpt_inject_release(struct ckpt_inject *inj)
{
	int r = 0, e;

	if (!inj)
		return 0;
	/* Killed, by ckpt or by anyone else (then it is no longer in its stop). */
	if (inj->killed || ckpt_inject_check_frozen(inj) == -ESRCH) {
		/* Dying: its memory goes with it, and may already be gone. */
		inj->nr_scratch = 0;
		inj->stub_tid = 0;
		inj->stub = 0;
	}
	if (inj->nr_scratch) {
		e = inj_unmap_scratch(inj);
		if (e < 0 && !r)
			r = e;
	}
	e = inj_unplant_stub(inj);
	if (e < 0 && e != -ESRCH && !r)
		r = e;
	pr_debug("releasing pid %d after %u remote calls", inj->pid, inj->nr_calls);
	wait_unstopped(inj);
	for (size_t i = 0; i < inj->nr_threads; i++) {
		struct inj_thread *t = &inj->threads[i];

		if (!t->dead && !held(t))
			leave_attached(inj, t);
		else if (!t->dead) {
			e = restore_thread(inj, t);
			if (e == -ESRCH)
				t->reap = true;
			else if (e < 0 && !r)
				r = e;
		}
		if (t->reap && (e = inj_add_zombie(inj, t->st.tid)) < 0 && !r)
			r = e;
		free(t->xstate);
	}
	reap_zombies(inj);
	free(inj->threads);
	free(inj->zombies);
	free(inj->scratch);
	if (inj->mem_fd >= 0)
		close(inj->mem_fd);
	if (inj->pidfd >= 0)
		close(inj->pidfd);
	if (inj->thread_pidfd >= 0)
		close(inj->thread_pidfd);
	ckpt_proc_close(inj->task_proc);
	ckpt_proc_close(inj->proc);
	undefer_signals(inj);
	free(inj);
	return r;
}

int ckpt_inject_check_frozen(const struct ckpt_inject *inj)
{
	/*
	 * A ptrace request needs the thread in its stop, and fails from the
	 * moment a SIGKILL is sent (the kernel wakes it to die), before its
	 * exit writes anything (robust futexes, clear_child_tid).
	 */
	for (size_t i = 0; i < inj->nr_threads; i++) {
		const struct inj_thread *t = &inj->threads[i];

		if (t->dead || !t->stopped)
			continue;
		errno = 0;
		if (ptrace(PTRACE_PEEKUSER, t->st.tid, 0, 0) == -1 && errno)
			return errno == ESRCH ? -ESRCH : neg_errno();
	}
	return 0;
}

int ckpt_inject_ended(const struct ckpt_inject *inj, int wait_ms, int *ret_status)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	struct ckpt_proc_stat st;
	siginfo_t si = { 0 };

	if (inj->pidfd < 0 || !process_ended_within(inj->pidfd, wait_ms))
		return 0;
	*ret_status = -1;
	/* As its tracer, ckpt sees the exit first: looked at, left for its parent (WNOWAIT). */
	if (waitid(P_PID, (id_t)inj->pid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0 &&
	    si.si_pid == inj->pid)
		*ret_status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8
			      : (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
	else if (ckpt_proc_open(NULL, inj->pid, &p) == 0 && ckpt_proc_read_stat(p, &st) == 0 &&
		 (st.state == 'Z' || st.state == 'X'))
		*ret_status = st.exit_code;
	return 1;
}

void ckpt_inject_kill(struct ckpt_inject *inj)
{
	inj->killed = true;
	kill(inj->pid, SIGKILL);
}

pid_t ckpt_inject_pid(const struct ckpt_inject *inj)
{
	return inj->pid;
}

int ckpt_inject_pidfd(const struct ckpt_inject *inj)
{
	return inj->pidfd;
}

int ckpt_inject_files_pidfd(const struct ckpt_inject *inj)
{
	return inj->thread_pidfd >= 0 ? inj->thread_pidfd : inj->pidfd;
}

size_t ckpt_inject_nr_threads(const struct ckpt_inject *inj)
{
	return inj->nr_threads;
}

const struct ckpt_thread_state *ckpt_inject_thread(const struct ckpt_inject *inj, size_t idx)
{
	return idx < inj->nr_threads ? &inj->threads[idx].st : NULL;
}

size_t ckpt_inject_nr_zombies(const struct ckpt_inject *inj)
{
	return inj->nr_zombies;
}

const struct ckpt_proc *ckpt_inject_task_proc(const struct ckpt_inject *inj)
{
	return inj->task_proc;
}

bool ckpt_inject_job_stopped(const struct ckpt_inject *inj)
{
	return inj->job_stopped;
}

int ckpt_inject_set_thread_state(struct ckpt_inject *inj, size_t idx,
				 const struct user_regs_struct *regs, const void *xstate,
				 size_t xstate_len, const uint64_t *sigmask)
{
	struct inj_thread *t;

	if (idx >= inj->nr_threads)
		return -EINVAL;
	t = &inj->threads[idx];
	if (xstate) {
		void *copy = malloc(xstate_len);

		if (!copy)
			return -ENOMEM;
		memcpy(copy, xstate, xstate_len);
		free(t->xstate);
		t->xstate = copy;
		t->st.xstate = copy;
		t->st.xstate_len = xstate_len;
		t->xstate_dirty = true;
	}
	if (regs || sigmask)
		inj_stub_forget(inj, t->st.tid);
	if (regs) {
		t->st.regs = *regs;
		t->st.in_syscall = (int64_t)regs->orig_rax >= 0;
		t->regs_dirty = true;
	}
	if (sigmask) {
		t->st.sigmask = *sigmask;
		t->mask_dirty = true;
	}
	return 0;
}

int ckpt_inject_get_rseq(struct ckpt_inject *inj, size_t idx, struct ckpt_rseq *ret)
{
	struct ckpt_rseq_configuration conf = { 0 };

	if (idx >= inj->nr_threads)
		return -EINVAL;
	if (ptrace((enum __ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, inj->threads[idx].st.tid,
		   (void *)sizeof(conf), &conf) < 0)
		return neg_errno();
	ret->ptr = conf.rseq_abi_pointer;
	ret->len = conf.rseq_abi_size;
	ret->sig = conf.signature;
	ret->flags = conf.flags;
	return 0;
}
