/* SPDX-License-Identifier: MIT */
/*
 * Target of test/integ/fid_proc.c: a process that gives itself the process
 * attributes a restore must bring back, then checks them on request.
 *
 *   fid_proc root    as root: bounding set less CAP_SYS_BOOT and CAP_MKNOD,
 *                    CAP_NET_BIND_SERVICE ambient, securebits NOROOT |
 *                    NO_SETUID_FIXUP | NO_SETUID_FIXUP_LOCKED
 *   fid_proc user    starts as root, empties its bounding set, sets securebits
 *                    NOROOT | NOROOT_LOCKED | KEEP_CAPS_LOCKED |
 *                    NO_CAP_AMBIENT_RAISE, then becomes uid/gid 65534 (no
 *                    capability left)
 *
 * Both: a session of its own (it forks first when it leads its process
 * group: setsid(2) refuses a group leader), child subreaper, personality
 * ADDR_NO_RANDOMIZE | UNAME26, no_new_privs, io priority best-effort 3,
 * parent-death signal SIGUSR1, a seccomp filter that makes sysinfo(2) fail
 * with EPERM; a second thread with io priority idle, parent-death signal
 * SIGUSR2, one more filter of its own (times(2) fails with EACCES), asleep
 * in nanosleep(10 s); a third thread in strict mode, blocked in read(2); a
 * fourth in usleep(10 s), without a remaining-time argument.
 *
 *   fid_proc single  one thread, nothing else: checks only that its pid and
 *                    glibc's idea of its thread id (pthread_self()'s tid,
 *                    the pid of a single-threaded process) agree with the
 *                    kernel's
 *
 * Prints "pid N" (the process under test), then "ready". On "check" it
 * prints one line per item, "ITEM ok" or "ITEM BAD (why)", then "done".
 * The sleeper's line waits until its sleep ends. FID_PROC_NO_SECCOMP=1 leaves
 * the filters out (their lines then say BAD), to see the rest with a ckpt
 * that refuses seccomp filters.
 */
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_BE 2
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO(cls, data) (((cls) << 13) | (data))
#define SLEEP_S 10

struct attrs {
	uint64_t cap[5]; /* CapInh CapPrm CapEff CapBnd CapAmb */
	int securebits, dumpable;
	unsigned int personality;
};

static struct attrs before;
static bool user_mode;
static pid_t sleeper_tid;
static double sleep_start, sleep_end, check_at;
static char sleeper_report[1024];
static volatile int sleeping;
static volatile pid_t strict_tid;
static int strict_pipe[2];

static void die(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void caps_of(pid_t tid, uint64_t cap[5])
{
	static const char *const names[] = { "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:" };
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	if (!f)
		die(path);
	while (fgets(line, sizeof(line), f))
		for (int i = 0; i < 5; i++)
			if (strncmp(line, names[i], strlen(names[i])) == 0)
				cap[i] = strtoull(line + strlen(names[i]), NULL, 16);
	fclose(f);
}

/* "Seccomp:" and "Seccomp_filters:" of a thread (-1: not shown). */
static void seccomp_of(pid_t tid, int *mode, int *filters)
{
	char path[64], line[256];
	FILE *f;

	*mode = *filters = -1;
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	if (!f)
		die(path);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Seccomp:", 8) == 0)
			*mode = atoi(line + 8);
		else if (strncmp(line, "Seccomp_filters:", 16) == 0)
			*filters = atoi(line + 16);
	}
	fclose(f);
}

static void read_attrs(struct attrs *a)
{
	caps_of((pid_t)syscall(SYS_gettid), a->cap);
	a->securebits = prctl(PR_GET_SECUREBITS);
	a->dumpable = prctl(PR_GET_DUMPABLE);
	a->personality = (unsigned int)personality(0xffffffff);
}

/* Allow everything, but @nr fails with @err. */
static void filter(int nr, int err)
{
	/* Only to see what else a ckpt that refuses filters gets wrong. */
	if (getenv("FID_PROC_NO_SECCOMP"))
		return;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned int)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		die("seccomp");
}

static void got_signal(int sig)
{
	(void)sig;
}

#define REPORT(buf, fmt, ...) \
	snprintf((buf) + strlen(buf), sizeof(buf) - strlen(buf), fmt, ##__VA_ARGS__)

/* Errno of syscall @nr (0: it worked). */
static int errno_of(long nr)
{
	char buf[512];

	errno = 0;
	return syscall(nr, buf) < 0 ? errno : 0;
}

static void *sleeper(void *arg)
{
	struct timespec req = { SLEEP_S, 0 }, rem;
	int mode, filters, e;
	(void)arg;

	sleeper_tid = (pid_t)syscall(SYS_gettid);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR2) < 0 ||
	    syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO(IOPRIO_CLASS_IDLE, 0)) < 0)
		die("thread attributes");
	filter(SYS_times, EACCES);
	sleep_start = mono();
	__atomic_store_n(&sleeping, 1, __ATOMIC_SEQ_CST);
	e = nanosleep(&req, &rem);
	sleep_end = mono();
	if (e < 0)
		REPORT(sleeper_report, "nanosleep BAD (%s)\n", strerror(errno));
	else if (!check_at)
		REPORT(sleeper_report, "nanosleep BAD (ended before any check)\n");
	else if (sleep_end - check_at > SLEEP_S - 2)
		REPORT(sleeper_report, "nanosleep BAD (slept %.1f s after the restore: the full %d s again)\n",
		       sleep_end - check_at, SLEEP_S);
	else
		REPORT(sleeper_report, "nanosleep ok (%.1f s in all, %.1f s after the check)\n",
		       sleep_end - sleep_start, sleep_end - check_at);
	e = prctl(PR_GET_PDEATHSIG, &mode);
	if (e < 0 || mode != SIGUSR2)
		REPORT(sleeper_report, "thread_pdeathsig BAD (%d, not %d)\n", mode, SIGUSR2);
	else
		REPORT(sleeper_report, "thread_pdeathsig ok\n");
	seccomp_of(sleeper_tid, &mode, &filters);
	if (mode != 2 || filters != 2 || errno_of(SYS_sysinfo) != EPERM || errno_of(SYS_times) != EACCES)
		REPORT(sleeper_report, "thread_seccomp BAD (mode %d, %d filters, sysinfo: %s, times: %s)\n",
		       mode, filters, strerror(errno_of(SYS_sysinfo)), strerror(errno_of(SYS_times)));
	else
		REPORT(sleeper_report, "thread_seccomp ok\n");
	return NULL;
}

/*
 * usleep(3): a sleep without a remaining-time argument. After a restore it
 * sleeps its whole duration again (ckpt-restore(1), "Sleeps and
 * timeouts"): never less than asked in all, and all of it after the restore.
 */
static double usleep_start, usleep_end;
static char usleeper_report[256];

static void *usleeper(void *arg)
{
	int e;
	(void)arg;

	usleep_start = mono();
	e = usleep(SLEEP_S * 1000000);
	usleep_end = mono();
	if (e < 0)
		REPORT(usleeper_report, "usleep BAD (%s)\n", strerror(errno));
	else if (!check_at)
		REPORT(usleeper_report, "usleep BAD (ended before any check)\n");
	else if (usleep_end - usleep_start < SLEEP_S)
		REPORT(usleeper_report, "usleep BAD (slept %.2f s in all, less than the %d s asked)\n",
		       usleep_end - usleep_start, SLEEP_S);
	else if (usleep_end - check_at < SLEEP_S - 2)
		REPORT(usleeper_report, "usleep BAD (%.1f s after the restore: not the whole %d s again, "
		       "as ckpt-restore(1) says)\n", usleep_end - check_at, SLEEP_S);
	else
		REPORT(usleeper_report, "usleep ok (%.1f s in all, %.1f s after the check)\n",
		       usleep_end - usleep_start, usleep_end - check_at);
	return NULL;
}

/* Strict mode: read(2), write(2), exit(2), sigreturn(2) only. Blocks for good. */
static void *strict(void *arg)
{
	char c;
	(void)arg;

	strict_tid = (pid_t)syscall(SYS_gettid);
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) < 0)
		die("PR_SET_SECCOMP strict");
	for (;;)
		if (syscall(SYS_read, strict_pipe[0], &c, 1) == 1)
			syscall(SYS_write, 1, "strict woke\n", 12);
	return NULL;
}

static void setup(void)
{
	pthread_t st;
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	int bits;

	if (setsid() < 0)
		die("setsid");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("PR_SET_CHILD_SUBREAPER");
	if (personality(ADDR_NO_RANDOMIZE | UNAME26) < 0)
		die("personality");
	if (user_mode) {
		for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
			if (prctl(PR_CAPBSET_DROP, cap) < 0 && errno != EINVAL)
				die("PR_CAPBSET_DROP");
		bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
		       SECBIT_NO_CAP_AMBIENT_RAISE;
		if (prctl(PR_SET_SECUREBITS, bits) < 0)
			die("PR_SET_SECUREBITS");
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			die("dropping root");
	} else {
		if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT) < 0 || prctl(PR_CAPBSET_DROP, CAP_MKNOD) < 0)
			die("PR_CAPBSET_DROP");
		if (syscall(SYS_capget, &h, d) < 0)
			die("capget");
		d[0].inheritable |= 1u << CAP_NET_BIND_SERVICE;
		if (syscall(SYS_capset, &h, d) < 0 ||
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) < 0)
			die("ambient capability");
		bits = SECBIT_NOROOT | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED;
		if (prctl(PR_SET_SECUREBITS, bits) < 0)
			die("PR_SET_SECUREBITS");
	}
	/* A uid change resets the parent-death signal: after it. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGUSR1) < 0 ||
	    syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO(IOPRIO_CLASS_BE, 3)) < 0)
		die("process attributes");
	/* Not after the filter (no strict mode over one), nor before the uid change (SIGSETXID). */
	if (pipe(strict_pipe) < 0 || pthread_create(&st, NULL, strict, NULL))
		die("strict thread");
	while (!strict_tid)
		usleep(1000);
	filter(SYS_sysinfo, EPERM);
	read_attrs(&before);
}

/* glibc caches the main thread's tid (== the pid) in struct pthread. */
static void check_single(pid_t first_pid)
{
	union sigval v = { 0 };
	struct sched_param sp;
	int e;

	if (getpid() != first_pid)
		printf("same_pid BAD (%d, was %d)\n", getpid(), first_pid);
	else
		printf("same_pid ok\n");
	e = pthread_sigqueue(pthread_self(), SIGUSR1, v);
	if (e)
		printf("pthread_sigqueue_self BAD (%s)\n", strerror(e));
	else
		printf("pthread_sigqueue_self ok\n");
	e = pthread_getschedparam(pthread_self(), &v.sival_int, &sp);
	if (e)
		printf("pthread_getschedparam_self BAD (%s)\n", strerror(e));
	else
		printf("pthread_getschedparam_self ok\n");
	printf("done\n");
}

static void check(void)
{
	struct attrs now;
	int mode, filters, v;
	pid_t me = getpid();

	check_at = mono();
	read_attrs(&now);
	if (getsid(0) != me || getpgrp() != me)
		printf("session BAD (sid %d, pgid %d, pid %d)\n", getsid(0), getpgrp(), me);
	else
		printf("session ok\n");
	if (prctl(PR_GET_CHILD_SUBREAPER, &v) < 0 || v != 1)
		printf("child_subreaper BAD (%d)\n", v);
	else
		printf("child_subreaper ok\n");
	v = 0;
	if (prctl(PR_GET_PDEATHSIG, &v) < 0 || v != SIGUSR1)
		printf("pdeathsig BAD (%d, not %d)\n", v, SIGUSR1);
	else
		printf("pdeathsig ok\n");
	v = (int)syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
	if (v != IOPRIO(IOPRIO_CLASS_BE, 3))
		printf("ioprio BAD (%#x, not %#x)\n", v, IOPRIO(IOPRIO_CLASS_BE, 3));
	else
		printf("ioprio ok\n");
	v = (int)syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, sleeper_tid);
	if (v != IOPRIO(IOPRIO_CLASS_IDLE, 0))
		printf("thread_ioprio BAD (%#x, not %#x)\n", v, IOPRIO(IOPRIO_CLASS_IDLE, 0));
	else
		printf("thread_ioprio ok\n");
	if (now.personality != (ADDR_NO_RANDOMIZE | UNAME26) || now.personality != before.personality)
		printf("personality BAD (%#x, was %#x)\n", now.personality, before.personality);
	else
		printf("personality ok\n");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		printf("no_new_privs BAD\n");
	else
		printf("no_new_privs ok\n");
	if (now.dumpable != before.dumpable)
		printf("dumpable BAD (%d, was %d)\n", now.dumpable, before.dumpable);
	else
		printf("dumpable ok\n");
	if (now.securebits != before.securebits)
		printf("securebits BAD (%#x, was %#x)\n", now.securebits, before.securebits);
	else
		printf("securebits ok\n");
	if (getuid() != (user_mode ? 65534u : 0u) || geteuid() != getuid())
		printf("uid BAD (%d %d)\n", getuid(), geteuid());
	else
		printf("uid ok\n");
	if (now.cap[3] != before.cap[3])
		printf("cap_bnd BAD (%#llx, was %#llx)\n", (unsigned long long)now.cap[3],
		       (unsigned long long)before.cap[3]);
	else
		printf("cap_bnd ok\n");
	if (memcmp(now.cap, before.cap, sizeof(now.cap)) != 0)
		printf("caps BAD (inh %#llx prm %#llx eff %#llx amb %#llx, were %#llx %#llx %#llx %#llx)\n",
		       (unsigned long long)now.cap[0], (unsigned long long)now.cap[1],
		       (unsigned long long)now.cap[2], (unsigned long long)now.cap[4],
		       (unsigned long long)before.cap[0], (unsigned long long)before.cap[1],
		       (unsigned long long)before.cap[2], (unsigned long long)before.cap[4]);
	else
		printf("caps ok\n");
	seccomp_of(strict_tid, &mode, &filters);
	if (mode != 1)
		printf("strict BAD (thread %d: mode %d, not 1)\n", strict_tid, mode);
	else
		printf("strict ok\n");
	seccomp_of((pid_t)syscall(SYS_gettid), &mode, &filters);
	if (mode != 2 || filters != 1 || errno_of(SYS_sysinfo) != EPERM || errno_of(SYS_times) != 0)
		printf("seccomp BAD (mode %d, %d filters, sysinfo: %s, times: %s)\n", mode, filters,
		       strerror(errno_of(SYS_sysinfo)), strerror(errno_of(SYS_times)));
	else
		printf("seccomp ok\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	pthread_t t, ut;
	char line[64];
	pid_t child;
	int status;

	if (argc != 2 || (strcmp(argv[1], "root") && strcmp(argv[1], "user") && strcmp(argv[1], "single"))) {
		fprintf(stderr, "usage: fid_proc root|user|single\n");
		return 2;
	}
	user_mode = strcmp(argv[1], "user") == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A process group leader cannot make a session: the child is the process under test. */
	if (getpgrp() == getpid()) {
		child = fork();
		if (child < 0)
			die("fork");
		if (child > 0) {
			while (waitpid(child, &status, 0) < 0 && errno == EINTR)
				;
			return 0;
		}
	}
	signal(SIGUSR1, got_signal);
	signal(SIGUSR2, got_signal);
	if (strcmp(argv[1], "single") == 0) {
		pid_t first = getpid();

		printf("pid %d\nready\n", first);
		while (fgets(line, sizeof(line), stdin))
			if (strncmp(line, "check", 5) == 0)
				check_single(first);
		return 0;
	}
	setup();
	if (pthread_create(&t, NULL, sleeper, NULL) || pthread_create(&ut, NULL, usleeper, NULL))
		die("pthread_create");
	while (!__atomic_load_n(&sleeping, __ATOMIC_SEQ_CST))
		usleep(1000);
	usleep(100000); /* into its nanosleep */
	printf("pid %d\nready\n", getpid());
	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "check", 5))
			continue;
		check();
		pthread_join(t, NULL);
		pthread_join(ut, NULL);
		fputs(sleeper_report, stdout);
		fputs(usleeper_report, stdout);
		printf("done\n");
	}
	return 0;
}
