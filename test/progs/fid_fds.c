/* SPDX-License-Identifier: MIT */
/*
 * Target of test/integ/fid_fds.c: one fd of each kind whose kernel state a
 * restore must bring back, set up to known values.
 *
 *   fid_fds all DIR     signalfd, timerfds, inotify (in DIR), epoll, eventfd
 *   fid_fds closed      an epoll registration of an fd closed since (dup'ed)
 *   fid_fds replaced    an epoll registration of an fd number that is
 *                       another file now
 *
 * Prints "ready" once set up, then obeys lines on stdin:
 *   "check"  (all) checks each fd, one line per item, "ITEM ok" or
 *            "ITEM BAD (why)", then "done";
 *   "ping"   prints "pong".
 * All: SIGUSR1 blocked and queued with value 42, a signalfd for it
 * (non-blocking, close-on-exec); timerfd "rel" on CLOCK_MONOTONIC with 5 s
 * left and a 1 s interval; timerfd "expired" on CLOCK_REALTIME, absolute,
 * started 90 s ago with a 60 s interval (two expirations unread, the next
 * in 30 s), non-blocking; an inotify (non-blocking) watching DIR (wd 1,
 * IN_CREATE) and DIR/sub (wd 3, IN_CREATE | IN_DELETE; wd 2 was removed);
 * an epoll (close-on-exec off) with a pipe's read end (EPOLLIN, data
 * 0x1111222233334444), eventfd "a" (count 0, EPOLLIN, data 0xdeadbeef00000005)
 * and eventfd "b" (count 7, EPOLLIN | EPOLLET, data 0x77).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

static int sfd, trel, texp, ino, ep, pfd[2], efa, efb;
static char dir[512];

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void die(const char *what)
{
	say("error %s: %s", what, strerror(errno));
	exit(1);
}

static void setup_all(void)
{
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 5, 0 } };
	struct epoll_event ev;
	struct timespec now;
	union sigval v = { .sival_int = 42 };
	char sub[600], other[600];
	sigset_t set;
	int wd;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 || sigqueue(getpid(), SIGUSR1, v) < 0)
		die("sigqueue");
	if ((sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		die("signalfd");

	if ((trel = timerfd_create(CLOCK_MONOTONIC, 0)) < 0 || timerfd_settime(trel, 0, &its, NULL) < 0)
		die("timerfd rel");
	clock_gettime(CLOCK_REALTIME, &now);
	its.it_interval = (struct timespec){ 60, 0 };
	its.it_value = (struct timespec){ now.tv_sec - 90, now.tv_nsec };
	if ((texp = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
	    timerfd_settime(texp, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		die("timerfd expired");

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	if (mkdir(sub, 0700) < 0 || mkdir(other, 0700) < 0)
		die("mkdir");
	if ((ino = inotify_init1(IN_NONBLOCK)) < 0 || inotify_add_watch(ino, dir, IN_CREATE) != 1 ||
	    (wd = inotify_add_watch(ino, other, IN_CREATE)) != 2 || inotify_rm_watch(ino, wd) < 0 ||
	    inotify_add_watch(ino, sub, IN_CREATE | IN_DELETE) != 3)
		die("inotify");
	{
		char buf[4096];

		while (read(ino, buf, sizeof(buf)) > 0) /* the IN_IGNORED of wd 2 */
			;
	}

	if ((ep = epoll_create1(0)) < 0 || pipe2(pfd, O_CLOEXEC) < 0 ||
	    (efa = eventfd(0, EFD_NONBLOCK)) < 0 || (efb = eventfd(7, 0)) < 0)
		die("epoll");
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0x1111222233334444ULL };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev) < 0)
		die("epoll_ctl pipe");
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 0xdeadbeef00000005ULL };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, efa, &ev) < 0)
		die("epoll_ctl a");
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = 0x77 };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, efb, &ev) < 0)
		die("epoll_ctl b");
}

/* The first line of /proc/self/fdinfo/FD that starts with @key, its value. */
static bool fdinfo(int fd, const char *key, char *val, size_t len)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (!(f = fopen(path, "r")))
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			snprintf(val, len, "%s", line + strlen(key) + strspn(line + strlen(key), " \t"));
			val[strcspn(val, "\n")] = '\0';
			found = true;
		}
	fclose(f);
	return found;
}

static bool flags_are(int fd, bool nonblock, bool cloexec, char *why, size_t len)
{
	int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);

	if (fl < 0 || fdf < 0)
		return snprintf(why, len, "fcntl: %s", strerror(errno)), false;
	if (!!(fl & O_NONBLOCK) != nonblock || !!(fdf & FD_CLOEXEC) != cloexec)
		return snprintf(why, len, "O_NONBLOCK %d FD_CLOEXEC %d, want %d %d", !!(fl & O_NONBLOCK),
				!!(fdf & FD_CLOEXEC), nonblock, cloexec), false;
	return true;
}

static double ts(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static void report(const char *item, bool ok, const char *why)
{
	if (ok)
		say("%s ok", item);
	else
		say("%s BAD (%s)", item, why);
}

static bool check_signalfd(char *why, size_t len)
{
	struct signalfd_siginfo si;
	ssize_t n;

	if (!flags_are(sfd, true, true, why, len))
		return false;
	n = read(sfd, &si, sizeof(si));
	if (n != sizeof(si))
		return snprintf(why, len, "read %zd: %s", n, strerror(errno)), false;
	if (si.ssi_signo != SIGUSR1 || si.ssi_int != 42)
		return snprintf(why, len, "signal %u value %d, want %d 42", si.ssi_signo, si.ssi_int,
				SIGUSR1), false;
	n = read(sfd, &si, sizeof(si));
	if (n != -1 || errno != EAGAIN)
		return snprintf(why, len, "a second read gave %zd (%s)", n, strerror(errno)), false;
	return true;
}

static bool check_timer(int fd, const char *clock, const char *flags, double max_left,
			double interval, uint64_t want_ticks, bool nonblock, bool cloexec, char *why,
			size_t len)
{
	struct itimerspec its;
	char v[64];
	uint64_t ticks = 0;
	ssize_t n;

	if (!flags_are(fd, nonblock, cloexec, why, len))
		return false;
	if (!fdinfo(fd, "clockid:", v, sizeof(v)) || strcmp(v, clock))
		return snprintf(why, len, "clockid '%s', want %s", v, clock), false;
	if (!fdinfo(fd, "settime flags:", v, sizeof(v)) || strcmp(v, flags))
		return snprintf(why, len, "settime flags '%s', want %s", v, flags), false;
	if (timerfd_gettime(fd, &its) < 0)
		return snprintf(why, len, "gettime: %s", strerror(errno)), false;
	if (ts(&its.it_interval) != interval)
		return snprintf(why, len, "interval %.9f, want %.0f", ts(&its.it_interval), interval), false;
	if (ts(&its.it_value) <= 0 || ts(&its.it_value) > max_left)
		return snprintf(why, len, "%.3f s left, want (0, %.0f]", ts(&its.it_value), max_left), false;
	if (want_ticks) {
		n = read(fd, &ticks, sizeof(ticks));
		if (n != sizeof(ticks) || ticks != want_ticks)
			return snprintf(why, len, "read %zd: %llu expirations (%s), want %llu", n,
					(unsigned long long)ticks, n < 0 ? strerror(errno) : "",
					(unsigned long long)want_ticks), false;
	} else {
		/* Relative, 5 s at most: it fires within 6 s (polled), once. */
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 6000) != 1)
			return snprintf(why, len, "did not fire within 6 s"), false;
		n = read(fd, &ticks, sizeof(ticks));
		if (n != sizeof(ticks) || ticks < 1)
			return snprintf(why, len, "read %zd: %llu expirations", n, (unsigned long long)ticks), false;
	}
	return true;
}

/* The next inotify event within 2 s: wd, mask, name. */
static bool next_event(int *wd, uint32_t *mask, char *name, size_t len)
{
	static char buf[4096] __attribute__((aligned(8)));
	static size_t have, at;
	const struct inotify_event *e;
	struct pollfd p = { .fd = ino, .events = POLLIN };

	if (at >= have) {
		ssize_t n;

		if (poll(&p, 1, 2000) != 1 || (n = read(ino, buf, sizeof(buf))) <= 0)
			return false;
		have = (size_t)n;
		at = 0;
	}
	e = (const struct inotify_event *)(buf + at);
	*wd = e->wd;
	*mask = e->mask;
	snprintf(name, len, "%s", e->len ? e->name : "");
	at += sizeof(*e) + e->len;
	return true;
}

static bool check_inotify(char *why, size_t len)
{
	char path[700], name[256], buf[256];
	int wd, fd;
	uint32_t mask;

	if (!flags_are(ino, true, false, why, len))
		return false;
	if (read(ino, buf, sizeof(buf)) != -1 || errno != EAGAIN)
		return snprintf(why, len, "an event waits before any was made"), false;
	snprintf(path, sizeof(path), "%s/x", dir);
	if ((fd = open(path, O_CREAT | O_WRONLY, 0600)) < 0)
		return snprintf(why, len, "create %.200s: %s", path, strerror(errno)), false;
	close(fd);
	if (!next_event(&wd, &mask, name, sizeof(name)) || wd != 1 || mask != IN_CREATE || strcmp(name, "x"))
		return snprintf(why, len, "after creating x: no event wd 1 IN_CREATE x"), false;
	snprintf(path, sizeof(path), "%s/sub/y", dir);
	if ((fd = open(path, O_CREAT | O_WRONLY, 0600)) < 0)
		return snprintf(why, len, "create %.200s: %s", path, strerror(errno)), false;
	close(fd);
	unlink(path);
	if (!next_event(&wd, &mask, name, sizeof(name)) || wd != 3 || mask != IN_CREATE || strcmp(name, "y"))
		return snprintf(why, len, "after creating sub/y: no event wd 3 IN_CREATE y"), false;
	if (!next_event(&wd, &mask, name, sizeof(name)) || wd != 3 || mask != IN_DELETE || strcmp(name, "y"))
		return snprintf(why, len, "after removing sub/y: no event wd 3 IN_DELETE y"), false;
	if (next_event(&wd, &mask, name, sizeof(name)))
		return snprintf(why, len, "a stray event: wd %d mask %#x '%s'", wd, mask, name), false;
	return true;
}

/* epoll_wait(@timeout): exactly the data values @want (any order). */
static bool ready_are(int timeout, const uint64_t *want, int nr, char *why, size_t len)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, timeout);

	if (n != nr)
		return snprintf(why, len, "epoll_wait gave %d, want %d (first data %#llx)", n, nr,
				n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL), false;
	for (int i = 0; i < nr; i++) {
		bool found = false;

		for (int j = 0; j < n; j++)
			found |= ev[j].data.u64 == want[i];
		if (!found)
			return snprintf(why, len, "data %#llx not reported", (unsigned long long)want[i]), false;
	}
	return true;
}

static bool check_epoll(char *why, size_t len)
{
	uint64_t v;

	if (!flags_are(ep, false, false, why, len))
		return false;
	/* b has count 7, edge-triggered: reported once. */
	if (!ready_are(1000, (uint64_t[]){ 0x77 }, 1, why, len) || !ready_are(0, NULL, 0, why, len))
		return false;
	if (write(pfd[1], "z", 1) != 1)
		return snprintf(why, len, "write pipe: %s", strerror(errno)), false;
	if (!ready_are(1000, (uint64_t[]){ 0x1111222233334444ULL }, 1, why, len))
		return false;
	if (read(pfd[0], &v, 1) != 1 || eventfd_write(efa, 3) < 0)
		return snprintf(why, len, "pipe read / eventfd write: %s", strerror(errno)), false;
	return ready_are(1000, (uint64_t[]){ 0xdeadbeef00000005ULL }, 1, why, len);
}

static bool check_eventfd(char *why, size_t len)
{
	eventfd_t v = 0;
	struct pollfd p = { .fd = efb, .events = POLLIN };

	if (!flags_are(efa, true, false, why, len) || !flags_are(efb, false, false, why, len))
		return false;
	if (poll(&p, 1, 1000) != 1) /* a blocking read would hang the check */
		return snprintf(why, len, "b is not readable"), false;
	if (eventfd_read(efb, &v) < 0 || v != 7)
		return snprintf(why, len, "b read %llu, want 7", (unsigned long long)v), false;
	if (eventfd_read(efa, &v) < 0 || v != 3)
		return snprintf(why, len, "a read %llu, want 3", (unsigned long long)v), false;
	return true;
}

static void check(void)
{
	char why[512] = "";

	report("signalfd", check_signalfd(why, sizeof(why)), why);
	report("timerfd-expired",
	       check_timer(texp, "0", "01", 30, 60, 2, true, true, why, sizeof(why)), why);
	report("timerfd-rel", check_timer(trel, "1", "00", 5, 1, 0, false, false, why, sizeof(why)), why);
	report("inotify", check_inotify(why, sizeof(why)), why);
	report("epoll", check_epoll(why, sizeof(why)), why);
	report("eventfd", check_eventfd(why, sizeof(why)), why);
	say("done");
}

/* An epoll registration whose fd number no longer holds its file. */
static void setup_bad(bool replaced)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1 };
	int e = eventfd(0, 0), keep;

	if ((ep = epoll_create1(0)) < 0 || e < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev) < 0)
		die("epoll");
	keep = dup(e); /* the file lives on: the registration stays */
	if (keep < 0)
		die("dup");
	if (replaced) {
		int other = eventfd(0, 0);

		if (other < 0 || dup2(other, e) < 0 || close(other) < 0)
			die("dup2");
	} else if (close(e) < 0) {
		die("close");
	}
}

int main(int argc, char **argv)
{
	char line[256];

	if (argc < 2)
		return 2;
	if (!strcmp(argv[1], "all")) {
		if (argc < 3)
			return 2;
		snprintf(dir, sizeof(dir), "%s", argv[2]);
		setup_all();
	} else if (!strcmp(argv[1], "closed") || !strcmp(argv[1], "replaced")) {
		setup_bad(!strcmp(argv[1], "replaced"));
	} else {
		return 2;
	}
	say("ready");
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "check", 5) && sfd)
			check();
		else if (!strncmp(line, "ping", 4))
			say("pong");
	}
	return 0;
}
