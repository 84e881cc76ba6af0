/* SPDX-License-Identifier: MIT */
/*
 * Target of the collection tests (test/integ/collect.c): a process with a
 * bit of every kind of state ckpt_dump_collect() describes, set up to known
 * values.
 *
 *   statezoo DIR
 *
 * Works in DIR (its cwd), writes what it set as "key=value" lines to
 * DIR/report, then prints "ready" and blocks in read(0). On stdin:
 *   "check"  verify that everything is still as set (handlers, masks,
 *            altstacks, timers, limits, names...), that the pending signals
 *            are still pending, then unblock them and verify that each is
 *            delivered exactly once with its siginfo; print "check ok" or
 *            "check FAIL <what>".
 * Set up: handlers with flags and masks for several signals, SIG_IGN for
 * SIGHUP; SIGUSR1 queued to the process (shared, value 4242) and two
 * SIGRTMIN+1 queued to the main thread (values 1, 2), all blocked; a worker
 * thread with SIGUSR2 pending (tgkill) and a pattern in xmm15; an altstack
 * per thread; ITIMER_REAL and ITIMER_PROF with long intervals; RLIMIT_NOFILE
 * and RLIMIT_CORE lowered; umask 027; ADDR_NO_RANDOMIZE; comm names;
 * no_new_privs; fds of every restorable kind plus a socket, an eventfd and
 * an epoll fd; file, deleted-file, memfd, shared-anonymous, mprotect'ed and
 * madvise'd mappings.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define PG 4096UL
#define SIG_RT1 (SIGRTMIN + 1)
#define XMM_PATTERN "statezoo-xmm15!!"
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

extern char **environ;

struct ksigaction {
	uint64_t handler, flags, restorer, mask;
};

static FILE *report;
static struct ksigaction initial_sa[65];
static stack_t main_altstack, worker_altstack;
static uint64_t main_mask, worker_mask;
static struct itimerval initial_real, initial_prof;
static struct rlimit initial_rlim[RLIM_NLIMITS];
static unsigned long initial_pers;
static pid_t worker_tid;
static uint64_t worker_ctid;
static char stdout_buf[4096];
static int cmd_pipe[2], res_pipe[2];
static atomic_int worker_ready;

/* What handlers saw: signal numbers and values, in delivery order. */
static volatile sig_atomic_t seen_sig[16], seen_val[16], seen_code[16], seen_nr;

static void rec(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rec(const char *key, const char *fmt, ...)
{
	va_list ap;

	fprintf(report, "%s=", key);
	va_start(ap, fmt);
	vfprintf(report, fmt, ap);
	va_end(ap);
	fputc('\n', report);
}

static void die(const char *what)
{
	printf("setup FAIL %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static void on_info(int sig, siginfo_t *si, void *uc)
{
	int n = seen_nr;

	(void)uc;
	if (n < 16) {
		seen_sig[n] = sig;
		seen_val[n] = si->si_value.sival_int;
		seen_code[n] = si->si_code;
		seen_nr = n + 1;
	}
}

static void on_plain(int sig)
{
	int n = seen_nr;

	if (n < 16) {
		seen_sig[n] = sig;
		seen_val[n] = -1;
		seen_code[n] = 0;
		seen_nr = n + 1;
	}
}

static uint64_t kernel_mask(void)
{
	uint64_t m = 0;

	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	return m;
}

static void kernel_sigaction(int sig, struct ksigaction *ka)
{
	memset(ka, 0, sizeof(*ka));
	syscall(SYS_rt_sigaction, sig, NULL, ka, 8);
}

static void set_handler(int sig, void *h, int flags, const int *mask_sigs)
{
	struct sigaction sa = { 0 };

	if (flags & SA_SIGINFO)
		sa.sa_sigaction = h;
	else
		sa.sa_handler = h;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	for (; mask_sigs && *mask_sigs; mask_sigs++)
		sigaddset(&sa.sa_mask, *mask_sigs);
	if (sigaction(sig, &sa, NULL) < 0)
		die("sigaction");
}

static void report_thread(const char *who, const stack_t *alt)
{
	char key[64];
	uint64_t ctid = 0;
	unsigned long head = 0;
	size_t len = 0;

	snprintf(key, sizeof(key), "tid.%s", who);
	rec(key, "%d", gettid());
	snprintf(key, sizeof(key), "tp.%s", who);
	rec(key, "%#lx", (unsigned long)pthread_self());
	snprintf(key, sizeof(key), "rseq.%s", who);
	rec(key, "%#lx,%u", __rseq_size ? (unsigned long)pthread_self() + (unsigned long)__rseq_offset : 0UL,
	    __rseq_size);
	syscall(SYS_get_robust_list, 0, &head, &len);
	snprintf(key, sizeof(key), "robust.%s", who);
	rec(key, "%#lx,%zu", head, len);
	prctl(PR_GET_TID_ADDRESS, &ctid);
	snprintf(key, sizeof(key), "ctid.%s", who);
	rec(key, "%#llx", (unsigned long long)ctid);
	snprintf(key, sizeof(key), "altstack.%s", who);
	rec(key, "%#lx,%zu,%d", (unsigned long)alt->ss_sp, alt->ss_size, alt->ss_flags);
	snprintf(key, sizeof(key), "sigmask.%s", who);
	rec(key, "%#llx", (unsigned long long)kernel_mask());
}

/* read(2) by hand, so that nothing touches xmm15 between the load and the call. */
static long read_keeping_xmm15(int fd, void *buf, size_t n)
{
	static const char pattern[16] __attribute__((aligned(16))) = XMM_PATTERN;
	long ret;

	__asm__ volatile("movdqu (%[pat]), %%xmm15\n\tsyscall"
			 : "=a"(ret)
			 : "0"((long)SYS_read), "D"((long)fd), "S"(buf), "d"(n), [pat] "r"(pattern)
			 : "rcx", "r11", "memory", "xmm15");
	return ret;
}

static bool same_stack(const stack_t *a)
{
	stack_t now;

	sigaltstack(NULL, &now);
	return now.ss_sp == a->ss_sp && now.ss_size == a->ss_size && now.ss_flags == a->ss_flags;
}

static bool is_pending(int sig)
{
	sigset_t p;

	sigpending(&p);
	return sigismember(&p, sig);
}

/* The worker's own half of "check": its mask, altstack, pending SIGUSR2. */
static const char *worker_check(void)
{
	sigset_t s;
	int before = seen_nr;

	if (kernel_mask() != worker_mask)
		return "worker sigmask changed";
	if (!same_stack(&worker_altstack))
		return "worker altstack changed";
	if (!is_pending(SIGUSR2))
		return "worker SIGUSR2 not pending";
	if (!is_pending(SIGUSR1))
		return "shared SIGUSR1 not visible from the worker";
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	if (seen_nr != before + 1 || seen_sig[before] != SIGUSR2)
		return "worker SIGUSR2 not delivered exactly once";
	if (is_pending(SIGUSR2))
		return "worker SIGUSR2 still pending after delivery";
	return "ok";
}

static void *worker(void *arg)
{
	sigset_t s;
	char c;

	(void)arg;
	prctl(PR_SET_NAME, "zoo-worker");
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigaddset(&s, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	worker_altstack.ss_sp = malloc(3 * SIGSTKSZ);
	worker_altstack.ss_size = 3 * SIGSTKSZ;
	worker_altstack.ss_flags = SS_AUTODISARM;
	if (sigaltstack(&worker_altstack, NULL) < 0)
		die("worker sigaltstack");
	worker_mask = kernel_mask();
	prctl(PR_GET_TID_ADDRESS, &worker_ctid);
	worker_tid = gettid();
	atomic_store(&worker_ready, 1);
	for (;;) {
		const char *res;

		if (read_keeping_xmm15(cmd_pipe[0], &c, 1) != 1)
			continue;
		res = worker_check();
		if (write(res_pipe[1], res, strlen(res) + 1) < 0)
			_exit(3);
	}
	return NULL;
}

static const char *main_check(void)
{
	static const int rt_vals[2] = { 1, 2 };
	struct itimerval it;
	struct rlimit rl;
	struct ksigaction ka;
	char name[32], res[64];
	sigset_t s;
	int before;

	for (int sig = 1; sig <= 64; sig++) {
		kernel_sigaction(sig, &ka);
		if (memcmp(&ka, &initial_sa[sig], sizeof(ka)))
			{ static char b[64]; snprintf(b, sizeof(b), "the action of signal %d changed", sig); return b; }
	}
	if (kernel_mask() != main_mask)
		return "main sigmask changed";
	if (!same_stack(&main_altstack))
		return "main altstack changed";
	getitimer(ITIMER_REAL, &it);
	if (memcmp(&it.it_interval, &initial_real.it_interval, sizeof(it.it_interval)) ||
	    it.it_value.tv_sec > initial_real.it_value.tv_sec || it.it_value.tv_sec < 1900)
		return "ITIMER_REAL changed";
	getitimer(ITIMER_PROF, &it);
	if (memcmp(&it.it_interval, &initial_prof.it_interval, sizeof(it.it_interval)))
		return "ITIMER_PROF changed";
	for (int i = 0; i < RLIM_NLIMITS; i++) {
		getrlimit(i, &rl);
		if (rl.rlim_cur != initial_rlim[i].rlim_cur || rl.rlim_max != initial_rlim[i].rlim_max)
			return "an rlimit changed";
	}
	{
		mode_t m = umask(0);

		umask(m);
		if (m != 027)
			return "umask changed";
	}
	if (personality(0xffffffff) != (int)initial_pers)
		return "personality changed";
	prctl(PR_GET_NAME, name);
	if (strcmp(name, "zoo-main"))
		return "comm changed";
	if (!is_pending(SIGUSR1) || !is_pending(SIG_RT1))
		return "main pending signals lost";

	/* the worker checks and delivers its own */
	if (write(cmd_pipe[1], "c", 1) != 1 || read(res_pipe[0], res, sizeof(res)) <= 0)
		return "worker does not answer";
	if (strcmp(res, "ok")) {
		static char buf[96];

		snprintf(buf, sizeof(buf), "%s", res);
		return buf;
	}

	/*
	 * Now deliver ours: SIGUSR1 (4242) once, both SIG_RT1 in queue order.
	 * The kernel stacks the frames of signals delivered together, so
	 * SIGUSR1's handler may run before or after the others.
	 */
	before = seen_nr;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIG_RT1);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	if (seen_nr != before + 3)
		return "main pending signals not delivered exactly once each";
	{
		int usr1 = 0, rt = 0;

		for (int i = before; i < before + 3; i++) {
			if (seen_sig[i] == SIGUSR1) {
				if (seen_val[i] != 4242 || seen_code[i] != SI_QUEUE)
					return "SIGUSR1 delivered with another siginfo";
				usr1++;
			} else if (seen_sig[i] == SIG_RT1) {
				if (rt >= 2 || seen_val[i] != rt_vals[rt])
					return "SIGRTMIN+1 delivered out of order or with another value";
				rt++;
			}
		}
		if (usr1 != 1 || rt != 2)
			return "a main pending signal delivered twice or not at all";
	}
	if (is_pending(SIGUSR1) || is_pending(SIG_RT1))
		return "signals still pending after delivery";
	return "ok";
}

static int read_line(char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		char c;
		ssize_t r = read(0, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return (int)n;
}

static void report_fd(const char *name, int fd)
{
	struct stat st;
	char key[64];

	if (fstat(fd, &st) < 0)
		die(name);
	snprintf(key, sizeof(key), "fd.%s", name);
	rec(key, "%d,%llu,%d,%u", fd, (unsigned long long)st.st_ino,
	    !!(fcntl(fd, F_GETFD) & FD_CLOEXEC), (unsigned int)fcntl(fd, F_GETFL));
}

/* An fd in flight: sent with SCM_RIGHTS on @sk (to @to, or its peer), never received. */
static int send_fd_in_flight(int sk, const struct sockaddr *to, socklen_t tolen)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), r;
	char c = 'x';
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	if (fd < 0)
		return -1;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	r = sendmsg(sk, &m, 0) < 0 ? -1 : 0;
	close(fd);
	return r;
}

static void setup_fds(const char *dir)
{
	int fd, p[2], ptm, pts, sock, efd, ep;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	char buf[2000];

	fd = open("positioned", O_RDWR | O_CREAT | O_APPEND, 0600);
	memset(buf, 'x', sizeof(buf));
	if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
	    lseek(fd, 1234, SEEK_SET) != 1234)
		die("positioned file");
	report_fd("regular", fd);
	report_fd("dir", open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	report_fd("null", open("/dev/null", O_RDONLY));
	report_fd("zero", open("/dev/zero", O_RDONLY));
	report_fd("urandom", open("/dev/urandom", O_RDONLY | O_CLOEXEC));
	if (pipe(p) < 0)
		die("pipe");
	report_fd("pipe_r", p[0]);
	report_fd("pipe_w", p[1]);
	if (mkfifo("fifo", 0600) < 0)
		die("mkfifo");
	report_fd("fifo", open("fifo", O_RDWR | O_NONBLOCK));
	ptm = posix_openpt(O_RDWR | O_NOCTTY);
	if (ptm < 0 || grantpt(ptm) < 0 || unlockpt(ptm) < 0)
		die("posix_openpt");
	pts = open(ptsname(ptm), O_RDWR | O_NOCTTY);
	report_fd("ptmx", ptm);
	report_fd("pts", pts);
	rec("pts.path", "%s", ptsname(ptm));
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "statezoo-%d", getpid());
	if (sock < 0 || bind(sock, (struct sockaddr *)&sun,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
					 strlen(sun.sun_path + 1))) < 0 ||
	    send_fd_in_flight(sock, (struct sockaddr *)&sun,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sun.sun_path + 1))) < 0)
		die("socket"); /* with an fd in flight to itself, which restore refuses */
	report_fd("socket", sock);
	efd = eventfd(5, EFD_SEMAPHORE);
	report_fd("eventfd", efd);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = efd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) < 0)
		die("epoll");
	report_fd("epoll", ep);
}

static void report_map(const char *name, void *start, size_t len, int fd_for_ino)
{
	struct stat st = { 0 };
	char key[64];

	if (fd_for_ino >= 0 && fstat(fd_for_ino, &st) < 0)
		die(name);
	snprintf(key, sizeof(key), "map.%s", name);
	rec(key, "%#lx,%#lx,%llu", (unsigned long)start, (unsigned long)start + len,
	    (unsigned long long)st.st_ino);
}

static void *map_or_die(size_t len, int prot, int flags, int fd, off_t off, const char *what)
{
	void *m = mmap(NULL, len, prot, flags, fd, off);

	if (m == MAP_FAILED)
		die(what);
	return m;
}

static void setup_mappings(void)
{
	char *m;
	int fd, mfd;

	fd = open("mapped", O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 3 * PG) < 0)
		die("mapped file");
	m = map_or_die(2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PG, "file mapping");
	m[0] = 1;
	report_map("file", m, 2 * PG, fd);
	close(fd);

	fd = open("deleted", O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, PG) < 0)
		die("deleted file");
	m = map_or_die(PG, PROT_READ, MAP_PRIVATE, fd, 0, "deleted mapping");
	report_map("deleted", m, PG, fd);
	unlink("deleted");
	close(fd);

	mfd = memfd_create("zoo-memfd", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, 2 * PG) < 0)
		die("memfd");
	m = map_or_die(2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0, "memfd mapping");
	m[PG] = 2;
	report_map("memfd", m, 2 * PG, mfd);
	report_fd("memfd", mfd);

	m = map_or_die(4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0, "shmem");
	m[0] = 3;
	report_map("shmem", m, 4 * PG, -1);

	/* none | rw | r | rw | none: the guards keep the middle from merging */
	m = map_or_die(5 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "mprotect region");
	if (mprotect(m + PG, 3 * PG, PROT_READ | PROT_WRITE) < 0 ||
	    mprotect(m + 2 * PG, PG, PROT_READ) < 0)
		die("mprotect");
	m[PG] = 4;
	report_map("mprot", m, 5 * PG, -1);

	m = map_or_die(2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "dd");
	if (madvise(m, 2 * PG, MADV_DONTDUMP) < 0)
		die("MADV_DONTDUMP");
	report_map("dontdump", m, 2 * PG, -1);
	m = map_or_die(2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "df");
	if (madvise(m, 2 * PG, MADV_DONTFORK) < 0)
		die("MADV_DONTFORK");
	report_map("dontfork", m, 2 * PG, -1);
	m = map_or_die(2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "wf");
	if (madvise(m, 2 * PG, MADV_WIPEONFORK) < 0)
		die("MADV_WIPEONFORK");
	report_map("wipeonfork", m, 2 * PG, -1);
	m = map_or_die(2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "lo");
	if (mlock(m, 2 * PG) < 0)
		die("mlock");
	report_map("locked", m, 2 * PG, -1);
	m = map_or_die(2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "hg");
	if (madvise(m, 2 * PG, MADV_HUGEPAGE) < 0)
		die("MADV_HUGEPAGE");
	report_map("hugepage", m, 2 * PG, -1);
	m = map_or_die(2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "nh");
	if (madvise(m, 2 * PG, MADV_NOHUGEPAGE) < 0)
		die("MADV_NOHUGEPAGE");
	report_map("nohugepage", m, 2 * PG, -1);
}

static void setup_signals(void)
{
	static const int usr1_mask[] = { SIGUSR2, SIGTERM, 0 }, usr2_mask[] = { SIGINT, 0 };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigset_t s;

	set_handler(SIGUSR1, on_info, SA_SIGINFO | SA_RESTART | SA_ONSTACK, usr1_mask);
	set_handler(SIGUSR2, on_plain, SA_RESTART, usr2_mask);
	set_handler(SIGALRM, on_plain, 0, NULL);
	set_handler(SIGTERM, on_plain, SA_RESETHAND | SA_NODEFER, NULL);
	set_handler(SIG_RT1, on_info, SA_SIGINFO, NULL);
	sigaction(SIGHUP, &ign, NULL);
	main_altstack.ss_sp = malloc(4 * SIGSTKSZ);
	main_altstack.ss_size = 4 * SIGSTKSZ;
	if (sigaltstack(&main_altstack, NULL) < 0)
		die("sigaltstack");
	sigaltstack(NULL, &main_altstack);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGUSR2);
	sigaddset(&s, SIG_RT1);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	main_mask = kernel_mask();
}

static void setup_process(void)
{
	struct itimerval real = { { 1000, 0 }, { 2000, 0 } }, prof = { { 500, 250000 }, { 700, 0 } };
	struct rlimit rl;

	umask(027);
	personality(personality(0xffffffff) | ADDR_NO_RANDOMIZE);
	prctl(PR_SET_NAME, "zoo-main");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("no_new_privs");
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max < 512 ? rl.rlim_max : 512;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("RLIMIT_NOFILE");
	getrlimit(RLIMIT_CORE, &rl);
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (2 << 20)) {
		rl.rlim_cur = 1 << 20;
		rl.rlim_max = 2 << 20;
	} else {
		rl.rlim_cur = rl.rlim_max / 2;
	}
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		die("RLIMIT_CORE");
	if (setitimer(ITIMER_REAL, &real, NULL) < 0 || setitimer(ITIMER_PROF, &prof, NULL) < 0)
		die("setitimer");
	initial_real = real;
	initial_prof = prof;
}

static void report_process(const char *dir, char **argv)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct cap[2];
	uid_t r, e, s;
	gid_t gr, ge, gs, groups[256];
	uint64_t bnd = 0, amb = 0;
	int ng = getgroups(256, groups);

	rec("pid", "%d", getpid());
	rec("ppid", "%d", getppid());
	rec("pgid", "%d", getpgid(0));
	rec("sid", "%d", getsid(0));
	rec("cwd", "%s", dir);
	initial_pers = (unsigned long)personality(0xffffffff);
	rec("personality", "%#lx", initial_pers);
	for (int i = 0; i < RLIM_NLIMITS; i++) {
		char key[32];

		getrlimit(i, &initial_rlim[i]);
		snprintf(key, sizeof(key), "rlimit.%d", i);
		rec(key, "%#llx,%#llx", (unsigned long long)initial_rlim[i].rlim_cur,
		    (unsigned long long)initial_rlim[i].rlim_max);
	}
	getresuid(&r, &e, &s);
	rec("uid", "%u,%u,%u,%u", r, e, s, (unsigned)setfsuid((uid_t)-1));
	getresgid(&gr, &ge, &gs);
	rec("gid", "%u,%u,%u,%u", gr, ge, gs, (unsigned)setfsgid((gid_t)-1));
	fprintf(report, "groups=%d", ng);
	for (int i = 0; i < ng; i++)
		fprintf(report, ",%u", groups[i]);
	fputc('\n', report);
	syscall(SYS_capget, &hdr, cap);
	for (int i = 0; i < 64; i++) {
		if (prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1)
			bnd |= 1ULL << i;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, i, 0, 0) == 1)
			amb |= 1ULL << i;
	}
	rec("caps", "%#llx,%#llx,%#llx,%#llx,%#llx",
	    (unsigned long long)cap[0].inheritable | (unsigned long long)cap[1].inheritable << 32,
	    (unsigned long long)cap[0].permitted | (unsigned long long)cap[1].permitted << 32,
	    (unsigned long long)cap[0].effective | (unsigned long long)cap[1].effective << 32,
	    (unsigned long long)bnd, (unsigned long long)amb);
	rec("securebits", "%d", prctl(PR_GET_SECUREBITS));
	rec("dumpable", "%d", prctl(PR_GET_DUMPABLE));
	rec("no_new_privs", "%d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	rec("handler.info", "%#lx", (unsigned long)on_info);
	rec("handler.plain", "%#lx", (unsigned long)on_plain);
	rec("itimer.real", "%ld,%ld,%ld,%ld", initial_real.it_interval.tv_sec,
	    initial_real.it_interval.tv_usec, initial_real.it_value.tv_sec,
	    initial_real.it_value.tv_usec);
	rec("itimer.prof", "%ld,%ld,%ld,%ld", initial_prof.it_interval.tv_sec,
	    initial_prof.it_interval.tv_usec, initial_prof.it_value.tv_sec,
	    initial_prof.it_value.tv_usec);
	rec("code", "%#lx", (unsigned long)report_process);
	rec("argv0", "%#lx", (unsigned long)argv[0]);
	rec("environ0", "%#lx", environ[0] ? (unsigned long)environ[0] : 0UL);
	rec("auxv", "%#lx,%#lx,%#lx,%#lx,%#lx", getauxval(AT_PAGESZ), getauxval(AT_ENTRY),
	    getauxval(AT_PHDR), getauxval(AT_RANDOM), getauxval(AT_SYSINFO_EHDR));
}

/* After pthread_create(): glibc installs its SIGCANCEL/SIGSETXID handlers there. */
static void report_sigactions(void)
{
	for (int sig = 1; sig <= 64; sig++) {
		char key[32];

		kernel_sigaction(sig, &initial_sa[sig]);
		snprintf(key, sizeof(key), "sa.%d", sig);
		rec(key, "%#llx,%#llx,%#llx,%#llx", (unsigned long long)initial_sa[sig].handler,
		    (unsigned long long)initial_sa[sig].flags,
		    (unsigned long long)initial_sa[sig].restorer,
		    (unsigned long long)initial_sa[sig].mask);
	}
}

static void queue_signals(void)
{
	siginfo_t si;

	if (sigqueue(getpid(), SIGUSR1, (union sigval){ .sival_int = 4242 }) < 0)
		die("sigqueue");
	for (int v = 1; v <= 2; v++) {
		memset(&si, 0, sizeof(si));
		si.si_signo = SIG_RT1;
		si.si_code = SI_QUEUE;
		si.si_pid = getpid();
		si.si_uid = getuid();
		si.si_value.sival_int = v;
		if (syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIG_RT1, &si) < 0)
			die("rt_tgsigqueueinfo");
	}
	if (syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR2) < 0)
		die("tgkill");
}

int main(int argc, char **argv)
{
	char path[4096], line[256];
	pthread_t t;
	int efd;

	if (argc < 2 || chdir(argv[1]) < 0)
		return 2;
	/* only what we open: nothing inherited from the test runner */
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
		return 2;
	/* stderr goes to a file: whatever the runner's stderr is, it is not ours to judge */
	efd = open("stderr", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (efd < 0 || dup2(efd, 2) < 0)
		return 2;
	close(efd);
	snprintf(path, sizeof(path), "%s/report", argv[1]);
	report = fopen(path, "we");
	if (!report)
		return 2;
	setvbuf(stdout, stdout_buf, _IOLBF, sizeof(stdout_buf)); /* no malloc after brk is reported */
	if (pipe2(cmd_pipe, O_CLOEXEC) < 0 || pipe2(res_pipe, O_CLOEXEC) < 0)
		die("pipes");

	setup_process();
	setup_signals();
	setup_fds(argv[1]);
	setup_mappings();
	report_process(argv[1], argv);
	report_thread("main", &main_altstack);
	if (pthread_create(&t, NULL, worker, NULL))
		die("pthread_create");
	while (!atomic_load(&worker_ready))
		usleep(1000);
	report_sigactions();
	queue_signals();
	{
		/* the worker reports itself through us: same keys, its values */
		char key[64];

		rec("tid.worker", "%d", worker_tid);
		rec("tp.worker", "%#lx", (unsigned long)t);
		rec("rseq.worker", "%#lx,%u",
		    __rseq_size ? (unsigned long)t + (unsigned long)__rseq_offset : 0UL, __rseq_size);
		rec("altstack.worker", "%#lx,%zu,%d", (unsigned long)worker_altstack.ss_sp,
		    worker_altstack.ss_size, worker_altstack.ss_flags);
		rec("sigmask.worker", "%#llx", (unsigned long long)worker_mask);
		rec("ctid.worker", "%#llx", (unsigned long long)worker_ctid);
		snprintf(key, sizeof(key), "robust.worker");
		{
			unsigned long head = 0;
			size_t len = 0;

			syscall(SYS_get_robust_list, worker_tid, &head, &len);
			rec(key, "%#lx,%zu", head, len);
		}
	}
	usleep(20000); /* the worker is inside its read(2) by now */
	rec("brk", "%#lx", (unsigned long)sbrk(0));
	if (fclose(report))
		die("report");
	printf("ready\n");
	while (read_line(line, sizeof(line)) >= 0) {
		if (!strcmp(line, "check")) {
			const char *res = main_check();

			if (strcmp(res, "ok"))
				printf("check FAIL %s\n", res);
			else
				printf("check ok\n");
		}
	}
	return 0;
}
