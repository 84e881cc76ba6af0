/* SPDX-License-Identifier: MIT */
/*
 * Lazy restore (issue 7), side by side with the eager restore in one run.
 *
 * The process: SIZE MiB of private anonymous memory, every page written
 * (its first half text-like words, about 3x for zstd -1; its second half
 * xorshift noise), no THP. It is dumped once per size into a directory
 * under DIR (/var/tmp: disk, not tmpfs), then each rep restores it in
 * every one of these ways, interleaved:
 *
 *   eager   `ckpt restore --detach`: restore_ms is the time until it runs
 *           with all its pages;
 *   lazy    `ckpt restore --lazy --detach --lazy-log`: restore_ms is the
 *           time until it runs; the "lazy" line of its server gives the
 *           time until every page is in (total_ms), and the background
 *           fill's throughput (bytes / serve_ms; the process is idle);
 *   fault   `ckpt restore --lazy --lazy-socket` to a `ckpt lazy-pages
 *           --no-fill` server: the process times its own first reads of
 *           NPROBE pages, GAP_US of busy work between two, either random
 *           pages (each fault decodes a 1 MiB frame) or "in-frame" pages 17
 *           apart (just past the 16-page read-ahead: each read faults, and
 *           about 15 in a row hit a frame already decoded); the server's
 *           "lazy" line gives its own p50/p99 of the same faults. Placed by
 *           the scheduler, and with the process and the server pinned to
 *           one vCPU or to two;
 * from the local images (-D) and from `ckpt page-server` on loopback
 * (--from tcp://...). In the same rep, the floors:
 *   raw     a process registers 1 GiB with its own userfaultfd; a separate
 *           process holding the uffd serves it (poll, read, UFFDIO_COPY of
 *           one page it already has); the faulting process times the same
 *           random first reads, with the same placements;
 *   source  ckpt_page_source_read_pages() of 16 pages (what the server reads
 *           per fault), random and in-frame, from this harness: the cost of
 *           a frame decode (local) or of a page-server round trip.
 *
 * Modes of the one binary:
 *   bench-lazy [run] [-r REPS] [-s MIB,...] [-n NPROBE] [-g GAP_US] [-a RA]
 *                    [-o PARTS] [-d DIR] [-k CKPT] [-p words|alt] [-L]
 *       the harness. -L: no page server; -a: --readahead of the fault runs;
 *       -o: which runs, of e (eager), l (lazy, fill), f (faults), r (raw),
 *       s (source reads); default all, "elfrs"; -p: what the target writes (words:
 *       half words, half noise, the default; alt: see below).
 *   bench-lazy target SIZE_MIB OUTFILE [NPROBE [GAP_US]]   the process
 *       (BENCH_LAZY_FILL=alt in its environment, or -p alt to the harness:
 *       even pages written with zeros, odd pages xorshift noise, the target
 *       of issue 17: one index entry per page)
 *   bench-lazy raw [NPROBE [GAP_US [REPS]]]      the raw floor alone
 * The target prints "ready NPAGES ADDR" once its memory is written; on
 * SIGUSR1 (random) or SIGUSR2 (in-frame) it makes NPROBE first reads and
 * writes their latencies in ns to OUTFILE, opened then (OUTFILE.tmp,
 * renamed). It never uses stdin/stdout after "ready". Its state (pages read,
 * RNG) is in its memory: every restore of one image reads the same pages.
 *
 * Markdown tables on stdout, every run on stderr. Every process started
 * here, and every one reparented to us (we are a subreaper: restored
 * processes, detached lazy servers), is killed, and DIR's directory removed,
 * at the end, on failure and on SIGINT/SIGTERM/SIGHUP.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/pagesrc.h>

#include "compat/syscalls.h"
#include "compat/uffd.h"

#define PS	  4096UL
#define RA	  16	   /* the server's read-ahead: a fault at p brings p .. p+15 */
#define STRIDE	  (RA + 1) /* in-frame pattern: every read faults */
#define MAX_REPS  32
#define MAX_SIZES 8
#define MAX_PROBE 100000

enum { PAT_RANDOM, PAT_INFRAME, NR_PAT };
enum { PL_SCHED, PL_SAME, PL_CROSS, NR_PL };
static const char *const pat_names[NR_PAT] = {"random", "in-frame"};
static const char *const pl_names[NR_PL] = {"scheduler", "same vCPU", "2 vCPUs"};
/* Placement: {faulting process, server} vCPU, -1: any. */
static const int pl_cpus[NR_PL][2] = {{-1, -1}, {0, 0}, {0, 1}};

/* ---- helpers ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Percentile @q of @n values (sorted in place), by the lazy server's rule. */
static double pct_u64(uint64_t *v, size_t n, unsigned int q)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[q == 50 ? n / 2 : (n * q) / 100];
}

/* Pin task @tid (0: the caller) to @cpu; -1: every vCPU. */
static void pin_task(pid_t tid, int cpu)
{
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	for (long c = 0; c < n && c < CPU_SETSIZE; c++)
		if (cpu < 0 || c == cpu)
			CPU_SET(c, &set);
	if (sched_setaffinity(tid, sizeof(set), &set) < 0)
		fprintf(stderr, "bench-lazy: cannot pin %d to vCPU %d: %s\n", tid, cpu,
			strerror(errno));
}

/* Every thread of @pid. */
static void pin_process(pid_t pid, int cpu)
{
	char path[64];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			pin_task((pid_t)atoi(e->d_name), cpu);
	closedir(d);
}

/* ---- the probe: first reads of pages (the target and the raw floor) ---- */

struct probe {
	volatile char *region;
	size_t npages;
	uint64_t rng;
	uint64_t *covered; /* a bit per page: read, or brought in by a read-ahead */
	uint64_t *lat;
	unsigned int n;
	unsigned int gap_us;
};

static int probe_init(struct probe *p, size_t npages, unsigned int n, unsigned int gap_us,
		      uint64_t seed)
{
	*p = (struct probe){.npages = npages, .rng = seed | 1, .n = n, .gap_us = gap_us};
	p->covered = calloc((npages + 63) / 64, sizeof(*p->covered));
	p->lat = calloc(n, sizeof(*p->lat));
	return p->covered && p->lat ? 0 : -ENOMEM;
}

static bool covered(const struct probe *p, size_t pg)
{
	return p->covered[pg / 64] >> (pg % 64) & 1;
}

static void cover(struct probe *p, size_t pg)
{
	for (size_t k = pg; k < pg + RA && k < p->npages; k++)
		p->covered[k / 64] |= 1ULL << (k % 64);
}

static void spin_us(unsigned int us)
{
	uint64_t end = now_ns() + (uint64_t)us * 1000;

	while (now_ns() < end)
		;
}

/* Touch what the probe itself uses, so that its own lazy pages are in before. */
static void warm(struct probe *p)
{
	volatile char stack[64 << 10];

	for (size_t i = 0; i < sizeof(stack); i += PS)
		stack[i] = 1;
	for (size_t i = 0; i < (p->npages + 63) / 64; i += PS / 8)
		((volatile uint64_t *)p->covered)[i] |= 0;
	memset(p->lat, 0, p->n * sizeof(*p->lat));
	(void)now_ns();
}

static void probe_run(struct probe *p, int pattern)
{
	size_t pg = xorshift(&p->rng) % p->npages;

	warm(p);
	for (unsigned int i = 0; i < p->n; i++) {
		uint64_t t0;

		if (pattern == PAT_RANDOM) {
			while (covered(p, pg))
				pg = xorshift(&p->rng) % p->npages;
		} else {
			for (size_t tries = 0; covered(p, pg) && tries < p->npages; tries++)
				pg = (pg + 1) % p->npages;
		}
		cover(p, pg);
		spin_us(p->gap_us);
		t0 = now_ns();
		(void)p->region[pg * PS + (pg % 61) * 64];
		p->lat[i] = now_ns() - t0;
		pg = pattern == PAT_RANDOM ? xorshift(&p->rng) % p->npages
					   : (pg + STRIDE) % p->npages;
	}
}

/* ---- the target ---- */

static volatile sig_atomic_t probe_asked;

static void on_probe(int sig)
{
	probe_asked = sig;
}

/* First half: words (zstd -1 makes about 3x of them); second half: noise. */
static void fill_page(unsigned char *pg, uint64_t *s)
{
	static const char *const words[64] = {
		"the",	   "of",      "and",	"to",	   "in",     "is",	"that",	   "for",
		"it",	   "as",      "was",	"with",	   "be",     "by",	"on",	   "not",
		"process", "memory",  "page",	"restore", "kernel", "file",	"error",   "thread",
		"return",  "struct",  "int",	"char",	   "void",   "static",	"const",   "if",
		"else",	   "while",   "{",	"}",	   "(",	     ");",	"0x7f",	   "NULL",
		"data",	   "buffer",  "length", "offset",  "signal", "fault",	"frame",   "server",
		"client",  "request", "reply",	"timeout", "socket", "address", "mapping", "range",
		"lazy",	   "eager",   "copy",	"zero",	   "fill",   "batch",	"cache",   "\n",
	};
	size_t o = 0;

	while (o < PS / 2) {
		uint64_t r = xorshift(s);

		for (int k = 0; k < 4 && o < PS / 2; k++, r >>= 16) {
			const char *w = words[r & 63];

			while (*w && o < PS / 2)
				pg[o++] = (unsigned char)*w++;
			if (o < PS / 2)
				pg[o++] = ' ';
		}
	}
	for (; o < PS; o += 8) {
		uint64_t r = xorshift(s);

		memcpy(pg + o, &r, 8);
	}
}

static void target_write(const struct probe *p, int pattern, const char *out)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%s %u\n", pattern == PAT_RANDOM ? "random" : "inframe", p->n);
	for (unsigned int i = 0; i < p->n; i++)
		fprintf(f, "%llu\n", (unsigned long long)p->lat[i]);
	if (fclose(f) == 0)
		rename(tmp, out);
}

static int target_main(int argc, char **argv)
{
	size_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
	unsigned int n = argc > 4 ? (unsigned int)atoi(argv[4]) : 2000;
	unsigned int gap = argc > 5 ? (unsigned int)atoi(argv[5]) : 100;
	static char out[PATH_MAX];
	struct sigaction sa = {.sa_handler = on_probe};
	sigset_t block, wait_mask;
	struct probe p;
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	const char *fill = getenv("BENCH_LAZY_FILL");
	bool alt = fill && !strcmp(fill, "alt");
	char *region;

	if (!mib || argc < 4 || n < 1 || n > MAX_PROBE || strlen(argv[3]) >= sizeof(out)) {
		fprintf(stderr, "usage: bench-lazy target SIZE_MIB OUTFILE [NPROBE [GAP_US]]\n");
		return 2;
	}
	strcpy(out, argv[3]);
	region = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || probe_init(&p, (mib << 20) / PS, n, gap, now_ns()) < 0) {
		perror("bench-lazy target");
		return 1;
	}
	/* A lazy restore puts 4 KiB pages back: no THP on either side. */
	madvise(region, mib << 20, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < p.npages; i++) {
		unsigned char *pg = (unsigned char *)region + i * PS;

		if (!alt) {
			fill_page(pg, &s);
		} else if (i % 2 == 0) {
			memset(pg, 0, PS); /* written, and zero */
		} else {
			for (size_t o = 0; o < PS; o += 8) {
				uint64_t v = xorshift(&s);

				memcpy(pg + o, &v, 8);
			}
		}
	}
	p.region = region;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGUSR1);
	sigdelset(&wait_mask, SIGUSR2);
	printf("ready %zu %#lx\n", p.npages, (unsigned long)region);
	fflush(stdout);
	for (;;) {
		int pattern;

		while (!probe_asked)
			sigsuspend(&wait_mask);
		pattern = probe_asked == SIGUSR1 ? PAT_RANDOM : PAT_INFRAME;
		probe_asked = 0;
		probe_run(&p, pattern);
		target_write(&p, pattern, out);
	}
}

/* ---- the raw floor: own uffd, served by a separate process ---- */

static void raw_handler(int uffd)
{
	struct pollfd pfd = {uffd, POLLIN, 0};
	char *page = aligned_alloc(PS, PS);
	uint64_t s = 42;

	if (!page)
		_exit(1);
	fill_page((unsigned char *)page, &s);
	for (;;) {
		struct uffd_msg m;
		struct uffdio_copy c;

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			_exit(1);
		if (read(uffd, &m, sizeof(m)) != sizeof(m)) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			_exit(1);
		}
		if (m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		c = (struct uffdio_copy){.dst = m.arg.pagefault.address & ~(PS - 1),
					 .src = (uintptr_t)page,
					 .len = PS};
		if (ioctl(uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST)
			_exit(1);
	}
}

/* In a child: @n random first reads of its own uffd-registered memory; ns to @out. */
__attribute__((noreturn)) static void raw_child(unsigned int n, unsigned int gap_us, int pl,
						int out)
{
	const size_t len = 1UL << 30;
	struct uffdio_api api = {.api = UFFD_API};
	struct uffdio_register reg;
	int uffd = sys_userfaultfd(O_CLOEXEC | O_NONBLOCK);
	char *region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct probe p;
	pid_t h;

	reg = (struct uffdio_register){.range = {(uintptr_t)region, len},
				       .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (uffd < 0 || region == MAP_FAILED || ioctl(uffd, UFFDIO_API, &api) < 0 ||
	    ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 || probe_init(&p, len / PS, n, gap_us, 7) < 0) {
		perror("bench-lazy: raw userfaultfd");
		_exit(1);
	}
	p.region = region;
	h = fork();
	if (h == 0) {
		if (pl_cpus[pl][1] >= 0)
			pin_task(0, pl_cpus[pl][1]);
		raw_handler(uffd);
	}
	if (h < 0)
		_exit(1);
	if (pl_cpus[pl][0] >= 0)
		pin_task(0, pl_cpus[pl][0]);
	usleep(10000);
	probe_run(&p, PAT_RANDOM);
	kill(h, SIGKILL);
	waitpid(h, NULL, 0);
	if (write(out, p.lat, n * sizeof(*p.lat)) != (ssize_t)(n * sizeof(*p.lat)))
		_exit(1);
	_exit(0);
}

/* ---- the harness: cleanup ---- */

static char g_tmp[512]; /* short enough for every path built on it */
static char g_children[64];

static int list_children(pid_t *out, int max)
{
	char buf[8192];
	int fd = open(g_children, O_RDONLY | O_CLOEXEC), n = 0;
	ssize_t len;
	pid_t cur = 0;

	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	for (ssize_t i = 0; i < len && n < max; i++) {
		if (buf[i] >= '0' && buf[i] <= '9') {
			cur = cur * 10 + (buf[i] - '0');
		} else if (cur) {
			out[n++] = cur;
			cur = 0;
		}
	}
	return n;
}

static void reap_all(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/*
 * Kill every child until none is left (a ckpt killed in the middle of a
 * restore leaves its half-made process to us: the next round gets it),
 * then remove the directory. Async-signal-safe.
 */
static void cleanup(void)
{
	static const struct timespec tick = {0, 20 * 1000 * 1000};

	for (int round = 0; round < 250; round++) {
		pid_t kids[512];
		int n = list_children(kids, 512);

		if (!n)
			break;
		for (int i = 0; i < n; i++)
			kill(kids[i], SIGKILL);
		nanosleep(&tick, NULL);
		reap_all();
	}
	if (g_tmp[0]) {
		pid_t rm = fork();

		if (rm == 0) {
			char *const argv[] = {"rm", "-rf", g_tmp, NULL};

			execv("/bin/rm", argv);
			_exit(127);
		}
		if (rm > 0)
			waitpid(rm, NULL, 0);
		g_tmp[0] = '\0';
	}
}

static void on_term(int sig)
{
	static const char msg[] = "bench-lazy: interrupted, cleaning up\n";

	(void)!write(2, msg, sizeof(msg) - 1);
	cleanup();
	_exit(128 + sig);
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench-lazy: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

/* ---- the harness: processes and their JSON lines ---- */

struct lines {
	int fd;
	bool file; /* a file that is appended to: 0 from read(2) means "not yet" */
	size_t len;
	char buf[1 << 16];
};

static struct lines *lines_new(int fd, bool file)
{
	struct lines *l = calloc(1, sizeof(*l));

	if (!l)
		die("out of memory");
	l->fd = fd;
	l->file = file;
	return l;
}

static void lines_free(struct lines *l)
{
	if (l && l->fd >= 0)
		close(l->fd);
	free(l);
}

/* The next line within @timeout_ms (malloc'd, no newline), or NULL. */
static char *next_line(struct lines *l, int timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		char *nl = memchr(l->buf, '\n', l->len);
		struct pollfd pfd = {l->fd, POLLIN, 0};
		int left = (int)(((int64_t)end - (int64_t)now_ns()) / 1000000);
		ssize_t n;

		if (nl) {
			char *s = strndup(l->buf, (size_t)(nl - l->buf));

			l->len -= (size_t)(nl - l->buf) + 1;
			memmove(l->buf, nl + 1, l->len);
			return s;
		}
		if (left <= 0 || l->len == sizeof(l->buf))
			return NULL;
		if (!l->file && poll(&pfd, 1, left) <= 0)
			return NULL;
		n = read(l->fd, l->buf + l->len, sizeof(l->buf) - l->len);
		if (n < 0 && errno != EINTR)
			return NULL;
		if (n == 0 && !l->file)
			return NULL;
		if (n == 0)
			usleep(2000);
		if (n > 0)
			l->len += (size_t)n;
	}
}

/*
 * The next JSON line of @event (and of @pid if > 0) within @timeout_ms;
 * other lines go to stderr. Dies on an "error" line or a timeout.
 */
static json_object *get_event(struct lines *l, const char *event, pid_t pid, int timeout_ms,
			      const char *what)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		int left = (int)(((int64_t)end - (int64_t)now_ns()) / 1000000);
		char *s = next_line(l, left > 0 ? left : 0);
		json_object *j, *v;

		if (!s)
			die("%s: no \"%s\" line within %d s", what, event, timeout_ms / 1000);
		j = s[0] == '{' ? json_tokener_parse(s) : NULL;
		if (j && json_object_object_get_ex(j, "event", &v) &&
		    !strcmp(json_object_get_string(v), event) &&
		    (pid <= 0 ||
		     (json_object_object_get_ex(j, "pid", &v) && json_object_get_int(v) == pid))) {
			free(s);
			return j;
		}
		if (j && (json_object_object_get_ex(j, "error", &v) ||
			  (json_object_object_get_ex(j, "event", &v) &&
			   !strcmp(json_object_get_string(v), "error"))))
			die("%s: %s", what, s);
		if (s[0])
			fprintf(stderr, "  [%s] %s\n", what, s);
		json_object_put(j);
		free(s);
	}
}

static double jd(json_object *j, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(j, key, &v) || !v)
		die("no \"%s\" in %s", key, json_object_to_json_string(j));
	return json_object_get_double(v);
}

static const char *js(json_object *j, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(j, key, &v) && v ? json_object_get_string(v) : "";
}

/* Start @argv: stdin /dev/null, stdout a pipe (@ret_fd), stderr ours or @err. */
static pid_t spawn(char *const argv[], const char *err, int *ret_fd)
{
	int o[2];
	pid_t pid;

	if (pipe2(o, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		int e = err ? open(err, O_WRONLY | O_CREAT | O_APPEND, 0600) : 2;

		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		dup2(null, 0);
		dup2(o[1], 1);
		dup2(e, 2);
		close_range(3, ~0U, 0); /* nothing of ours in a checkpoint */
		execv(argv[0], argv);
		fprintf(stderr, "bench-lazy: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(o[1]);
	*ret_fd = o[0];
	return pid;
}

static int wait_status(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Wait up to @timeout_ms for @pid to exit (it may not be our child). */
static bool wait_gone(pid_t pid, int timeout_ms)
{
	int fd = sys_pidfd_open(pid, 0);
	struct pollfd pfd;
	int r;

	if (fd < 0)
		return errno == ESRCH;
	pfd = (struct pollfd){fd, POLLIN, 0};
	r = poll(&pfd, 1, timeout_ms);
	close(fd);
	reap_all();
	return r > 0;
}

static void kill_wait(pid_t pid)
{
	int fd = sys_pidfd_open(pid, 0);

	if (fd < 0)
		return;
	sys_pidfd_send_signal(fd, SIGKILL, NULL, 0);
	close(fd);
	if (!wait_gone(pid, 30000))
		die("pid %d does not go away", pid);
}

/* ---- the harness: figures ---- */

/* One figure over the reps. */
struct series {
	double v[MAX_REPS];
	int n;
};

static void add(struct series *s, double x)
{
	if (s->n < MAX_REPS)
		s->v[s->n++] = x;
}

static double med(const struct series *s)
{
	double t[MAX_REPS];

	if (!s->n)
		return 0;
	memcpy(t, s->v, (size_t)s->n * sizeof(*t));
	qsort(t, (size_t)s->n, sizeof(*t), cmp_d);
	return s->n % 2 ? t[s->n / 2] : (t[s->n / 2 - 1] + t[s->n / 2]) / 2;
}

/* "1.23x", the ratio of two medians, or "-". */
static const char *ratio(const struct series *a, const struct series *b)
{
	static char bufs[8][32];
	static int k;
	char *r = bufs[k++ % 8];

	if (!a->n || !b->n || med(b) <= 0)
		return "-";
	snprintf(r, 32, "%.2fx", med(a) / med(b));
	return r;
}

/* "median (min-max)", @prec decimals. */
static const char *fmt(const struct series *s, int prec)
{
	static char bufs[32][64];
	static int k;
	char *b = bufs[k++ % 32];
	double lo, hi;

	if (!s->n)
		return "-";
	lo = hi = s->v[0];
	for (int i = 1; i < s->n; i++) {
		lo = s->v[i] < lo ? s->v[i] : lo;
		hi = s->v[i] > hi ? s->v[i] : hi;
	}
	snprintf(b, 64, "%.*f (%.*f-%.*f)", prec, med(s), prec, lo, prec, hi);
	return b;
}

struct lat {
	struct series t50, t99; /* as the process sees it */
	struct series s50, s99; /* the server's "lazy" line */
};

struct src_result {
	struct series eager_ms, run_ms, pages_ms, total_ms, fill_mibs, serve_ms, fill_faults,
		sock_run_ms;
	struct series eager_wall, run_wall, total_wall; /* from the command's fork */
	struct lat lat[NR_PL][NR_PAT];		  /* page server: PL_SCHED only */
	struct series rd50[NR_PAT], rd99[NR_PAT]; /* page source reads of 16 pages */
};

struct size_result {
	size_t mib;
	double image_mib, dump_ms;
	struct src_result src[2]; /* local images, page server */
	struct series raw50[NR_PL], raw99[NR_PL];
};

struct opts {
	int reps;
	size_t sizes[MAX_SIZES];
	int nsizes;
	unsigned int nprobe, gap_us;
	const char *readahead; /* --readahead of the --no-fill server, NULL: its default */
	const char *parts;     /* e: eager, l: lazy fill, f: faults, r: raw, s: source reads */
	const char *dir;
	char ckpt[PATH_MAX];
	char self[PATH_MAX];
	bool no_remote;
};

/* What the runs of one size share. */
struct run {
	const struct opts *o;
	struct lines *lazysrv; /* the --no-fill lazy-pages server's stdout */
	pid_t lazysrv_pid;
	char sock[PATH_MAX], outfile[PATH_MAX], err[PATH_MAX];
	char img[PATH_MAX], url[128];
	uint64_t base;
	size_t npages;
	int nsrc;
	struct {
		const char *name, *opt, *arg;
	} src[2];
};

/* ---- the harness: runs ---- */

/* @ret_wall_ms: from the fork of the command to its "running" line, as a user waits. */
static json_object *run_restore(struct run *R, int s, const char *const *extra, pid_t *ret_pid,
				double *ret_wall_ms)
{
	uint64_t t0;
	char *argv[24];
	int n = 0, fd, st;
	struct lines *l;
	json_object *j;
	pid_t pid;

	argv[n++] = (char *)R->o->ckpt;
	argv[n++] = "restore";
	argv[n++] = (char *)R->src[s].opt;
	argv[n++] = (char *)R->src[s].arg;
	for (; *extra; extra++)
		argv[n++] = (char *)*extra;
	argv[n++] = "--detach";
	argv[n++] = "--json";
	argv[n++] = "--stdio";
	argv[n++] = "null";
	argv[n] = NULL;
	t0 = now_ns();
	pid = spawn(argv, NULL, &fd);
	l = lines_new(fd, false);
	j = get_event(l, "running", 0, 600000, "restore");
	*ret_wall_ms = (double)(now_ns() - t0) / 1e6;
	lines_free(l);
	st = wait_status(pid);
	if (st)
		die("ckpt restore %s %s exited with %d", R->src[s].opt, R->src[s].arg, st);
	*ret_pid = (pid_t)jd(j, "pid");
	return j;
}

static void restore_eager(struct run *R, int s, struct src_result *r)
{
	static const char *const extra[] = {NULL};
	pid_t pid;
	double wall;
	json_object *j = run_restore(R, s, extra, &pid, &wall);

	add(&r->eager_ms, jd(j, "restore_ms"));
	add(&r->eager_wall, wall);
	fprintf(stderr, "  eager %-11s running with every page after %8.1f ms (wall %8.1f ms)\n",
		R->src[s].name, jd(j, "restore_ms"), wall);
	json_object_put(j);
	kill_wait(pid);
}

static void restore_lazy_fill(struct run *R, int s, struct src_result *r)
{
	char log[PATH_MAX];
	const char *extra[] = {"--lazy", "--lazy-log", log, NULL};
	struct lines *l;
	json_object *j, *z;
	pid_t pid;
	double mib_s, wall;
	int fd;

	snprintf(log, sizeof(log), "%s/lazy.log", g_tmp);
	unlink(log);
	j = run_restore(R, s, extra, &pid, &wall);
	fd = open(log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("no log '%s': %s", log, strerror(errno));
	l = lines_new(fd, true);
	z = get_event(l, "lazy", pid, 600000, "lazy server");
	if (strcmp(js(z, "end"), "complete"))
		die("the lazy restore of pid %d ended '%s'", pid, js(z, "end"));
	mib_s = jd(z, "bytes") / (1 << 20) / (jd(z, "serve_ms") / 1e3);
	add(&r->run_ms, jd(j, "restore_ms"));
	add(&r->run_wall, wall);
	add(&r->pages_ms, jd(j, "pages_ms"));
	add(&r->total_ms, jd(z, "total_ms"));
	/* total_ms counts from ckpt_restore_run's start: add what came before it. */
	add(&r->total_wall, jd(z, "total_ms") + wall - jd(j, "restore_ms"));
	add(&r->serve_ms, jd(z, "serve_ms"));
	add(&r->fill_mibs, mib_s);
	add(&r->fill_faults, jd(z, "faults"));
	fprintf(stderr,
		"  lazy  %-11s running after %7.2f ms (wall %7.2f), every page in after %8.1f ms, "
		"fill %5.0f MiB/s (%.0f faults, %.0f eager pages)\n",
		R->src[s].name, jd(j, "restore_ms"), wall, jd(z, "total_ms"), mib_s, jd(z, "faults"),
		jd(z, "eager_pages"));
	json_object_put(j);
	json_object_put(z);
	lines_free(l);
	kill_wait(pid);
	unlink(log);
}

static void read_probe(const char *path, uint64_t *lat, unsigned int n)
{
	FILE *f = fopen(path, "r");
	char tag[32];
	unsigned int k;

	if (!f)
		die("cannot read '%s': %s", path, strerror(errno));
	if (fscanf(f, "%31s %u", tag, &k) != 2 || k != n)
		die("'%s' is malformed", path);
	for (unsigned int i = 0; i < n; i++) {
		unsigned long long v;

		if (fscanf(f, "%llu", &v) != 1)
			die("'%s' is short", path);
		lat[i] = v;
	}
	fclose(f);
}

static void restore_lazy_faults(struct run *R, int s, int pl, int pat, struct src_result *r)
{
	const char *extra[] = {"--lazy", "--lazy-socket", R->sock, NULL};
	unsigned int n = R->o->nprobe;
	uint64_t *lat = calloc(n, sizeof(*lat)), t0;
	struct lat *L = &r->lat[pl][pat];
	json_object *j, *z;
	struct stat st;
	double t50, t99, wall;
	pid_t pid;

	if (!lat)
		die("out of memory");
	pin_process(R->lazysrv_pid, pl_cpus[pl][1]);
	unlink(R->outfile);
	j = run_restore(R, s, extra, &pid, &wall);
	if (pl == PL_SCHED && pat == PAT_RANDOM)
		add(&r->sock_run_ms, jd(j, "restore_ms"));
	json_object_put(j);
	pin_task(pid, pl_cpus[pl][0]);
	kill(pid, pat == PAT_RANDOM ? SIGUSR1 : SIGUSR2);
	for (t0 = now_ns(); stat(R->outfile, &st) < 0; usleep(5000))
		if (now_ns() - t0 > 300ULL * 1000000000ULL)
			die("the target (pid %d) wrote no '%s' in 300 s", pid, R->outfile);
	read_probe(R->outfile, lat, n);
	kill_wait(pid);
	z = get_event(R->lazysrv, "lazy", pid, 60000, "lazy-pages");
	t50 = pct_u64(lat, n, 50) / 1e3;
	t99 = pct_u64(lat, n, 99) / 1e3;
	add(&L->t50, t50);
	add(&L->t99, t99);
	add(&L->s50, jd(z, "fault_p50_us"));
	add(&L->s99, jd(z, "fault_p99_us"));
	fprintf(stderr,
		"  fault %-11s %-9s %-8s process p50 %6.1f p99 %7.1f us, server p50 %6.1f p99 "
		"%7.1f us (%.0f "
		"faults)\n",
		R->src[s].name, pl_names[pl], pat_names[pat], t50, t99, jd(z, "fault_p50_us"),
		jd(z, "fault_p99_us"), jd(z, "faults"));
	json_object_put(z);
	free(lat);
}

/* The page source alone: n reads of RA pages, random or in-frame, from this process. */
static void source_reads(struct run *R, int s, struct src_result *r)
{
	unsigned int n = R->o->nprobe;
	uint64_t *lat = calloc(n, sizeof(*lat)), rng = 12345;
	uint8_t kinds[RA];
	char *buf = malloc(RA * PS);
	struct ckpt_page_source *src = NULL;
	int e = s == 0 ? ckpt_page_source_open_local(R->img, NULL, &src)
		       : ckpt_page_source_open_remote(R->url, NULL, NULL, &src);

	if (e < 0 || !lat || !buf)
		die("cannot open the page source %s", R->src[s].arg);
	for (int pat = 0; pat < NR_PAT; pat++) {
		size_t pg = xorshift(&rng) % (R->npages - RA);

		for (unsigned int i = 0; i < n; i++) {
			uint64_t t0 = now_ns();

			if (ckpt_page_source_read_pages(src, R->base + pg * PS, RA, kinds, buf) < 0)
				die("cannot read from %s", R->src[s].arg);
			lat[i] = now_ns() - t0;
			pg = pat == PAT_RANDOM ? xorshift(&rng) % (R->npages - RA)
					       : (pg + STRIDE) % (R->npages - RA);
		}
		add(&r->rd50[pat], pct_u64(lat, n, 50) / 1e3);
		add(&r->rd99[pat], pct_u64(lat, n, 99) / 1e3);
	}
	fprintf(stderr, "  read  %-11s 16 pages: random p50 %6.1f us, in-frame p50 %6.1f us\n",
		R->src[s].name, r->rd50[PAT_RANDOM].v[r->rd50[PAT_RANDOM].n - 1],
		r->rd50[PAT_INFRAME].v[r->rd50[PAT_INFRAME].n - 1]);
	ckpt_page_source_close(src);
	free(lat);
	free(buf);
}

static void raw_once(unsigned int n, unsigned int gap_us, int pl, struct series *p50,
		     struct series *p99)
{
	size_t len = n * sizeof(uint64_t), got = 0;
	uint64_t *lat = malloc(len);
	int p[2];
	pid_t pid;

	if (!lat || pipe2(p, O_CLOEXEC) < 0)
		die("raw: out of memory");
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		raw_child(n, gap_us, pl, p[1]);
	}
	close(p[1]);
	while (got < len) {
		ssize_t k = read(p[0], (char *)lat + got, len - got);

		if (k <= 0)
			die("the raw userfaultfd child failed");
		got += (size_t)k;
	}
	close(p[0]);
	if (wait_status(pid))
		die("the raw userfaultfd child failed");
	add(p50, pct_u64(lat, n, 50) / 1e3);
	add(p99, pct_u64(lat, n, 99) / 1e3);
	fprintf(stderr, "  raw   %-21s random  process p50 %6.1f p99 %7.1f us\n", pl_names[pl],
		p50->v[p50->n - 1], p99->v[p99->n - 1]);
	free(lat);
}

static pid_t start_server(char *const argv[], struct lines **ret_lines, const char *what,
			  json_object **ret)
{
	int fd;
	pid_t pid = spawn(argv, NULL, &fd);

	*ret_lines = lines_new(fd, false);
	*ret = get_event(*ret_lines, "listening", 0, 30000, what);
	return pid;
}

static void stop_server(pid_t pid)
{
	kill(pid, SIGTERM);
	if (!wait_gone(pid, 10000))
		kill_wait(pid);
}

static double du_mib(const char *dir)
{
	char cmd[PATH_MAX + 32];
	FILE *f;
	double kib = 0;

	snprintf(cmd, sizeof(cmd), "du -sk '%s'", dir);
	f = popen(cmd, "r");
	if (f) {
		if (fscanf(f, "%lf", &kib) != 1)
			kib = 0;
		pclose(f);
	}
	return kib / 1024;
}

/* The process of @mib MiB and its checkpoint at R->img (the dump kills it). */
static void make_image(struct run *R, size_t mib, struct size_result *res)
{
	const struct opts *o = R->o;
	char smib[32], sn[16], sg[16], spid[16];
	char *targv[] = {(char *)o->self, "target", smib, R->outfile, sn, sg, NULL};
	char *dargv[] = {(char *)o->ckpt, "dump", "-t", spid, "-D", R->img, "--json", NULL};
	struct lines *tl, *dl;
	uint64_t t0 = now_ns();
	unsigned long base;
	json_object *j;
	pid_t target, dump;
	char *line;
	int fd, st;

	snprintf(smib, sizeof(smib), "%zu", mib);
	snprintf(sn, sizeof(sn), "%u", o->nprobe);
	snprintf(sg, sizeof(sg), "%u", o->gap_us);
	target = spawn(targv, R->err, &fd);
	tl = lines_new(fd, false);
	line = next_line(tl, 900000);
	if (!line || sscanf(line, "ready %zu %lx", &R->npages, &base) != 2)
		die("the target of %zu MiB did not start (see '%s')", mib, R->err);
	R->base = base;
	free(line);
	fprintf(stderr, "== %zu MiB: pid %d wrote its memory in %.1f s\n", mib, target,
		(double)(now_ns() - t0) / 1e9);
	snprintf(spid, sizeof(spid), "%d", target);
	dump = spawn(dargv, NULL, &fd);
	dl = lines_new(fd, false);
	/* The dump prints one JSON object, over several lines: read to the end. */
	{
		char *all = NULL;
		size_t len = 0;

		while ((line = next_line(dl, 900000))) {
			size_t k = strlen(line);

			all = realloc(all, len + k + 2);
			memcpy(all + len, line, k);
			len += k;
			all[len++] = '\n';
			all[len] = '\0';
			free(line);
		}
		st = wait_status(dump);
		if (st || !all)
			die("ckpt dump of %zu MiB failed (%d)", mib, st);
		j = json_tokener_parse(all);
		res->dump_ms = j ? jd(j, "total_ms") : 0;
		json_object_put(j);
		free(all);
	}
	lines_free(dl);
	wait_status(target);
	lines_free(tl);
	res->image_mib = du_mib(R->img);
	fprintf(stderr, "   dumped in %.0f ms into %s: %.0f MiB on disk\n", res->dump_ms, R->img,
		res->image_mib);
}

static void one_size(struct run *R, size_t mib, struct size_result *res)
{
	const struct opts *o = R->o;
	pid_t ps = 0;

	res->mib = mib;
	snprintf(R->img, sizeof(R->img), "%s/img-%zu", g_tmp, mib);
	make_image(R, mib, res);
	R->nsrc = 1;
	R->src[0].name = "local";
	R->src[0].opt = "-D";
	R->src[0].arg = R->img;
	if (!o->no_remote) {
		char *argv[] = {(char *)o->ckpt, "page-server", "-D",	  R->img,
				"--listen",	 "127.0.0.1:0", "--json", NULL};
		struct lines *pl;
		json_object *j;

		ps = start_server(argv, &pl, "page-server", &j);
		snprintf(R->url, sizeof(R->url), "tcp://%s", js(j, "address"));
		json_object_put(j);
		lines_free(pl); /* it prints a line per connection end: not read */
		R->nsrc = 2;
		R->src[1].name = "page-server";
		R->src[1].opt = "--from";
		R->src[1].arg = R->url;
	}
	for (int rep = 0; rep < o->reps; rep++) {
		double load[1] = {0};

		if (getloadavg(load, 1) < 1)
			load[0] = -1;
		fprintf(stderr, "-- %zu MiB, rep %d/%d, load %.2f\n", mib, rep + 1, o->reps,
			load[0]);
		for (int pl = 0; pl < NR_PL && strchr(o->parts, 'r'); pl++)
			raw_once(o->nprobe, o->gap_us, pl, &res->raw50[pl], &res->raw99[pl]);
		for (int s = 0; s < R->nsrc; s++) {
			struct src_result *r = &res->src[s];

			if (strchr(o->parts, 'e'))
				restore_eager(R, s, r);
			if (strchr(o->parts, 'l'))
				restore_lazy_fill(R, s, r);
			if (strchr(o->parts, 's'))
				source_reads(R, s, r);
			for (int pl = 0; pl < (s == 0 ? NR_PL : 1) && strchr(o->parts, 'f'); pl++)
				for (int pat = 0; pat < NR_PAT; pat++)
					restore_lazy_faults(R, s, pl, pat, r);
			pin_process(R->lazysrv_pid, -1);
		}
	}
	if (ps)
		stop_server(ps);
	{
		char *argv[] = {"/bin/rm", "-rf", R->img, NULL};
		int fd;
		pid_t rm = spawn(argv, NULL, &fd);

		close(fd);
		wait_status(rm);
	}
}

/* ---- the harness: tables ---- */

static const char *size_name(size_t mib)
{
	static char bufs[4][32];
	static int k;
	char *b = bufs[k++ % 4];

	if (mib % 1024 == 0)
		snprintf(b, 32, "%zu GiB", mib >> 10);
	else
		snprintf(b, 32, "%zu MiB", mib);
	return b;
}

static void print_results(const struct opts *o, const struct size_result *res)
{
	static const char *const srcname[2] = {"local images", "page server"};
	int nsrc = o->no_remote ? 1 : 2;

	printf("Median (min-max) of %d runs; every figure of one size comes from the same runs, "
	       "interleaved.\n",
	       o->reps);
	printf("\n### 1, 2, 4. Until the process runs, until every page is in, fill "
	       "throughput\n\n");
	printf("ms. eager: `ckpt restore` (restore_ms: it runs with every page in). lazy runs: "
	       "restore_ms of "
	       "`--lazy`; every page in: total_ms of the server's \"lazy\" line; fill: bytes / "
	       "serve_ms of "
	       "that line, the process idle. wall: from the fork of the command to its "
	       "\"running\" line (every page in: plus total_ms - restore_ms).\n\n");
	printf("| size | pages from | eager: runs, every page in | eager: wall | lazy: runs | lazy: "
	       "runs, wall | lazy: every page in | lazy: every page in, wall | lazy/eager, "
	       "every page in | fill MiB/s |\n");
	printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < o->nsizes; i++)
		for (int s = 0; s < nsrc; s++) {
			const struct src_result *r = &res[i].src[s];

			printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			       size_name(res[i].mib), srcname[s], fmt(&r->eager_ms, 0),
			       fmt(&r->eager_wall, 0), fmt(&r->run_ms, 1), fmt(&r->run_wall, 1),
			       fmt(&r->total_ms, 0), fmt(&r->total_wall, 0),
			       ratio(&r->total_ms, &r->eager_ms),
			       fmt(&r->fill_mibs, 0));
		}

	printf("\n### 3. Fault latency, us\n\n");
	printf("A `ckpt lazy-pages --no-fill` server; the process times %u first reads, %u us of "
	       "busy work "
	       "between two. random: anywhere (a 1 MiB frame decoded per fault); in-frame: %d "
	       "pages apart "
	       "(read-ahead %d), about 15 faults per frame decoded. process: around the read, in "
	       "the "
	       "restored process; server: its \"lazy\" line (event read to page in and thread "
	       "woken). raw: "
	       "own uffd, another process serves one page it has, random reads, same placement, "
	       "same rep. "
	       "Placement: process and server left to the scheduler, pinned to vCPU 0, or to vCPUs "
	       "0 "
	       "and 1.\n\n",
	       o->nprobe, o->gap_us, STRIDE, RA);
	printf("| size | pages from | placement | pattern | process p50 | process p99 | server p50 "
	       "| server p99 "
	       "| raw p50 | raw p99 | process/raw p50 |\n");
	printf("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < o->nsizes; i++)
		for (int s = 0; s < nsrc; s++)
			for (int pl = 0; pl < (s == 0 ? NR_PL : 1); pl++)
				for (int pat = 0; pat < NR_PAT; pat++) {
					const struct lat *L = &res[i].src[s].lat[pl][pat];

					printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
					       "| %s |\n",
					       size_name(res[i].mib), srcname[s], pl_names[pl],
					       pat_names[pat], fmt(&L->t50, 1), fmt(&L->t99, 1),
					       fmt(&L->s50, 1), fmt(&L->s99, 1),
					       fmt(&res[i].raw50[pl], 1), fmt(&res[i].raw99[pl], 1),
					       ratio(&L->t50, &res[i].raw50[pl]));
				}

	printf("\n### The page source alone, us per read of %d pages (what a fault reads)\n\n", RA);
	printf("| size | pages from | random p50 | random p99 | in-frame p50 | in-frame p99 |\n");
	printf("|---|---|---:|---:|---:|---:|\n");
	for (int i = 0; i < o->nsizes; i++)
		for (int s = 0; s < nsrc; s++) {
			const struct src_result *r = &res[i].src[s];

			printf("| %s | %s | %s | %s | %s | %s |\n", size_name(res[i].mib),
			       srcname[s], fmt(&r->rd50[PAT_RANDOM], 1),
			       fmt(&r->rd99[PAT_RANDOM], 1), fmt(&r->rd50[PAT_INFRAME], 1),
			       fmt(&r->rd99[PAT_INFRAME], 1));
		}

	printf("\n### Other figures\n\n");
	printf("| size | dump ms | image MiB | pages from | lazy: pages_ms of restore_ms | lazy: "
	       "serve_ms | "
	       "lazy: faults during the fill | --lazy-socket: runs after ms |\n");
	printf("|---|---:|---:|---|---:|---:|---:|---:|\n");
	for (int i = 0; i < o->nsizes; i++)
		for (int s = 0; s < nsrc; s++) {
			const struct src_result *r = &res[i].src[s];

			printf("| %s | %.0f | %.0f | %s | %s | %s | %s | %s |\n",
			       size_name(res[i].mib), res[i].dump_ms, res[i].image_mib, srcname[s],
			       fmt(&r->pages_ms, 1), fmt(&r->serve_ms, 0), fmt(&r->fill_faults, 0),
			       fmt(&r->sock_run_ms, 1));
		}
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-lazy [run] [-r REPS] [-s MIB,...] [-n NPROBE] [-g GAP_US] "
			"[-a RA] [-o PARTS] "
			"[-d DIR] [-k CKPT] [-p words|alt] [-L]\n"
			"       bench-lazy target SIZE_MIB OUTFILE [NPROBE [GAP_US]]\n"
			"       bench-lazy raw [NPROBE [GAP_US [REPS]]]\n");
	exit(2);
}

static int raw_main(int argc, char **argv)
{
	unsigned int n = argc > 2 ? (unsigned int)atoi(argv[2]) : 2000;
	unsigned int gap = argc > 3 ? (unsigned int)atoi(argv[3]) : 100;
	int reps = argc > 4 ? atoi(argv[4]) : 5;
	struct series p50[NR_PL] = {0}, p99[NR_PL] = {0};

	if (n < 1 || n > MAX_PROBE || reps < 1 || reps > MAX_REPS)
		usage();
	for (int rep = 0; rep < reps; rep++)
		for (int pl = 0; pl < NR_PL; pl++)
			raw_once(n, gap, pl, &p50[pl], &p99[pl]);
	printf("| placement | random p50 us | random p99 us |\n|---|---:|---:|\n");
	for (int pl = 0; pl < NR_PL; pl++)
		printf("| %s | %s | %s |\n", pl_names[pl], fmt(&p50[pl], 1), fmt(&p99[pl], 1));
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.reps = 5,
			 .sizes = {1024, 4096},
			 .nsizes = 2,
			 .nprobe = 2000,
			 .gap_us = 100,
			 .dir = "/var/tmp",
			 .parts = "elfrs"};
	static struct size_result res[MAX_SIZES];
	struct sigaction sa = {.sa_handler = on_term};
	struct run R = {.o = &o};
	char rundir[PATH_MAX];
	const char *env = getenv("CKPT");
	json_object *j;
	ssize_t n;
	int c;

	if (argc > 1 && !strcmp(argv[1], "target"))
		return target_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "raw"))
		return raw_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "run")) {
		argv++;
		argc--;
	}
	snprintf(o.ckpt, sizeof(o.ckpt), "%s", env && *env ? env : "build/ckpt");
	while ((c = getopt(argc, argv, "r:s:n:g:a:o:d:k:p:L")) != -1) {
		switch (c) {
		case 'r':
			o.reps = atoi(optarg);
			break;
		case 's':
			o.nsizes = 0;
			for (char *t = strtok(optarg, ","); t && o.nsizes < MAX_SIZES;
			     t = strtok(NULL, ","))
				o.sizes[o.nsizes++] = strtoull(t, NULL, 10);
			break;
		case 'n':
			o.nprobe = (unsigned int)atoi(optarg);
			break;
		case 'g':
			o.gap_us = (unsigned int)atoi(optarg);
			break;
		case 'a':
			o.readahead = optarg;
			break;
		case 'o':
			o.parts = optarg;
			break;
		case 'd':
			o.dir = optarg;
			break;
		case 'k':
			snprintf(o.ckpt, sizeof(o.ckpt), "%s", optarg);
			break;
		case 'L':
			o.no_remote = true;
			break;
		case 'p':
			if (strcmp(optarg, "alt") && strcmp(optarg, "words"))
				usage();
			setenv("BENCH_LAZY_FILL", optarg, 1); /* the targets inherit it */
			break;
		default:
			usage();
		}
	}
	if (optind < argc || o.reps < 1 || o.reps > MAX_REPS || o.nprobe < 100 ||
	    o.nprobe > MAX_PROBE || !o.nsizes)
		usage();
	for (int i = 0; i < o.nsizes; i++)
		if (o.sizes[i] < 16)
			usage();
	if (!realpath(o.ckpt, o.self) || access(o.self, X_OK) < 0) {
		fprintf(stderr, "bench-lazy: no ckpt at '%s' (set CKPT or -k)\n", o.ckpt);
		return 1;
	}
	snprintf(o.ckpt, sizeof(o.ckpt), "%s", o.self);
	n = readlink("/proc/self/exe", o.self, sizeof(o.self) - 1);
	if (n <= 0)
		return 1;
	o.self[n] = '\0';

	/* Everything started here, and what is reparented to us, is ours to clean up. */
	snprintf(g_children, sizeof(g_children), "/proc/self/task/%d/children", getpid());
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	snprintf(g_tmp, sizeof(g_tmp), "%s/ckpt-bench-lazy.XXXXXX", o.dir);
	if (!mkdtemp(g_tmp)) {
		fprintf(stderr, "bench-lazy: cannot make a directory in '%s': %s\n", o.dir,
			strerror(errno));
		g_tmp[0] = '\0';
		return 1;
	}
	snprintf(rundir, sizeof(rundir), "%s/run", g_tmp);
	mkdir(rundir, 0700);
	setenv("CKPT_RUNDIR", rundir, 1);
	snprintf(R.sock, sizeof(R.sock), "%s/lazy.sock", g_tmp);
	snprintf(R.outfile, sizeof(R.outfile), "%s/probe.out", g_tmp);
	snprintf(R.err, sizeof(R.err), "%s/target.err", g_tmp);
	/* The target runs from a copy: a rebuild meanwhile must not make its images stale. */
	{
		char copy[PATH_MAX];
		char *argv2[] = {"/bin/cp", o.self, copy, NULL};
		int fd;

		snprintf(copy, sizeof(copy), "%s/bench-lazy", g_tmp);
		if (wait_status(spawn(argv2, NULL, &fd)))
			die("cannot copy '%s' to '%s'", o.self, copy);
		close(fd);
		snprintf(o.self, sizeof(o.self), "%s", copy);
	}
	fprintf(stderr,
		"bench-lazy: %s, %ld vCPUs; images in %s; the target runs from a copy there\n",
		o.ckpt, sysconf(_SC_NPROCESSORS_ONLN), g_tmp);
	{
		char *argv2[] = {o.ckpt,
				 "lazy-pages",
				 "--socket",
				 R.sock,
				 "--no-fill",
				 "--json",
				 o.readahead ? "--readahead" : NULL,
				 (char *)o.readahead,
				 NULL};

		R.lazysrv_pid = start_server(argv2, &R.lazysrv, "lazy-pages", &j);
		json_object_put(j);
	}
	for (int i = 0; i < o.nsizes; i++)
		one_size(&R, o.sizes[i], &res[i]);
	stop_server(R.lazysrv_pid);
	lines_free(R.lazysrv);
	print_results(&o, res);
	cleanup();
	return 0;
}
