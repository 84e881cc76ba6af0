/* SPDX-License-Identifier: MIT */
/*
 * Dirty tracking costs, side by side in one run, on 1 GiB and 4 GiB:
 *
 * A. First write to a page (ns per page, 64Ki pages spread over the region):
 *    untracked; raw kernel async-WP (the child arms its own uffd, no ckpt);
 *    tracked by ckpt (armed from outside through lib/track); the classic
 *    mprotect(PROT_READ) + SIGSEGV tracking done in-process.
 * B. Harvest and freeze time with 0%, 1%, 10%, 100% of the pages written,
 *    against reading /proc/PID/pagemap for the same range.
 *
 * Every figure is the median of REPS runs. Usage: bench-track [REPS [A|B|AB]]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/inject.h>
#include <ckpt/track.h>

#include "compat/pagemap.h"
#include "compat/uffd.h"

#define PS 4096UL
#define NWRITE (64 * 1024)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[n / 2];
}

/* ---- the child ---- */

static char *region;
static size_t npages;
static int to_parent, from_parent;

static void reply(double v)
{
	if (write(to_parent, &v, sizeof(v)) != sizeof(v))
		_exit(1);
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	char *p = (char *)((uintptr_t)si->si_addr & ~(PS - 1));

	(void)sig;
	(void)uc;
	mprotect(p, PS, PROT_READ | PROT_WRITE);
}

static void self_arm_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	struct uffdio_register reg = { .range = { (uintptr_t)region, npages * PS },
				       .mode = UFFDIO_REGISTER_MODE_WP };
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	int pm = open("/proc/self/pagemap", O_RDONLY);
	struct pm_scan_arg arg = { .size = sizeof(arg), .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
				   .start = (uintptr_t)region, .end = (uintptr_t)region + npages * PS,
				   .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN };

	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg) ||
	    ioctl(pm, PAGEMAP_SCAN, &arg) < 0) {
		perror("self arm");
		_exit(1);
	}
	/* uffd and pm stay open: the registration lives as long as the fd. */
}

/* Write one byte into NWRITE pages spread evenly; time it. */
static double write_spread(void)
{
	size_t stride = npages / NWRITE;
	double t0 = now_s();

	for (size_t i = 0; i < NWRITE; i++)
		region[i * stride * PS + 8] ^= 1;
	return now_s() - t0;
}

static void write_fraction(double pct, unsigned seed)
{
	uint64_t x = seed * 2654435761ULL + 1;

	if (pct >= 100) {
		for (size_t i = 0; i < npages; i++)
			region[i * PS + 16] ^= 1;
		return;
	}
	for (size_t i = 0; i < (size_t)((double)npages * pct / 100); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		region[(x % npages) * PS + 16] ^= 1;
	}
}

static void child_main(void)
{
	char cmd[64];

	region = mmap(NULL, npages * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < npages; i++)
		region[i * PS] = 1;
	reply((double)(uintptr_t)region);
	for (;;) {
		ssize_t n = read(from_parent, cmd, sizeof(cmd) - 1);
		double pct;

		if (n <= 0)
			_exit(0);
		cmd[n] = '\0';
		if (!strcmp(cmd, "spread")) {
			reply(write_spread());
		} else if (!strcmp(cmd, "selfarm")) {
			self_arm_uffd();
			reply(0);
		} else if (!strcmp(cmd, "mprotect")) {
			struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };

			sigaction(SIGSEGV, &sa, NULL);
			mprotect(region, npages * PS, PROT_READ);
			reply(write_spread());
		} else if (sscanf(cmd, "frac %lf", &pct) == 1) {
			write_fraction(pct, (unsigned)rand());
			reply(0);
		}
	}
}

/* ---- the parent ---- */

struct child {
	pid_t pid;
	int to, from;
	uint64_t base;
};

static void child_start(struct child *c, size_t pages)
{
	int a[2], b[2];
	double base;

	if (pipe(a) || pipe(b))
		exit(1);
	npages = pages;
	c->pid = fork();
	if (c->pid == 0) {
		from_parent = a[0];
		to_parent = b[1];
		child_main();
	}
	c->to = a[1];
	c->from = b[0];
	if (read(c->from, &base, sizeof(base)) != sizeof(base))
		exit(1);
	c->base = (uint64_t)base;
}

static double child_cmd(struct child *c, const char *cmd)
{
	double v;

	if (write(c->to, cmd, strlen(cmd)) < 0 || read(c->from, &v, sizeof(v)) != sizeof(v)) {
		fprintf(stderr, "child died on '%s'\n", cmd);
		exit(1);
	}
	return v;
}

static void child_stop(struct child *c)
{
	close(c->to);
	close(c->from);
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
}

static struct ckpt_tracker *arm(pid_t pid)
{
	struct ckpt_inject *inj;
	struct ckpt_tracker *t;

	if (ckpt_inject_seize(pid, CKPT_INJECT_NO_XSTATE, &inj) < 0 || ckpt_track_arm(inj, NULL, &t) < 0)
		exit(1);
	if (ckpt_inject_release(inj) < 0)
		exit(1);
	return t;
}

static double first_write_ns(size_t pages, const char *mode, int reps)
{
	double v[32];

	for (int r = 0; r < reps; r++) {
		struct child c;
		struct ckpt_tracker *t = NULL;

		child_start(&c, pages);
		if (!strcmp(mode, "raw"))
			child_cmd(&c, "selfarm");
		if (!strcmp(mode, "ckpt"))
			t = arm(c.pid);
		v[r] = child_cmd(&c, !strcmp(mode, "mprotect") ? "mprotect" : "spread") / NWRITE * 1e9;
		if (t)
			ckpt_track_close(t);
		child_stop(&c);
	}
	return median(v, reps);
}

static double pagemap_read_s(pid_t pid, uint64_t base, size_t pages)
{
	char path[64];
	size_t len = pages * 8;
	uint64_t *buf = malloc(len);
	double t0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	t0 = now_s();
	for (size_t off = 0; off < len;) {
		ssize_t n = pread(fd, (char *)buf + off, len - off, (off_t)(base / PS * 8 + off));

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	t0 = now_s() - t0;
	close(fd);
	free(buf);
	return t0;
}

static void harvest_point(size_t pages, double pct, int reps)
{
	double harvest[32], scan[32], freeze[32], pmap[32];
	struct child c;
	struct ckpt_tracker *t;
	char cmd[32];

	child_start(&c, pages);
	t = arm(c.pid);
	for (int r = 0; r < reps; r++) {
		struct ckpt_inject *inj;
		struct ckpt_range_set s;
		struct ckpt_track_stats st;
		double t0;

		/* Clean slate, then write the fraction. */
		if (ckpt_inject_seize(c.pid, CKPT_INJECT_NO_XSTATE, &inj) < 0 ||
		    ckpt_track_harvest(t, inj, &s, NULL) < 0 || ckpt_inject_release(inj) < 0)
			exit(1);
		ckpt_range_set_done(&s);
		snprintf(cmd, sizeof(cmd), "frac %g", pct);
		child_cmd(&c, cmd);
		t0 = now_s();
		if (ckpt_inject_seize(c.pid, CKPT_INJECT_NO_XSTATE, &inj) < 0 ||
		    ckpt_track_harvest(t, inj, &s, &st) < 0 || ckpt_inject_release(inj) < 0)
			exit(1);
		freeze[r] = (now_s() - t0) * 1e3;
		harvest[r] = (double)st.harvest_ns / 1e6;
		scan[r] = (double)st.scan_ns / 1e6;
		ckpt_range_set_done(&s);
		if (ckpt_track_sync(t) < 0)
			exit(1);
		pmap[r] = pagemap_read_s(c.pid, c.base, pages) * 1e3;
	}
	printf("| %4zu GiB | %5g%% | %8.2f | %8.2f | %8.2f | %12.2f | %6.2fx |\n", pages * PS >> 30, pct,
	       median(scan, reps), median(harvest, reps), median(freeze, reps), median(pmap, reps),
	       median(pmap, reps) / median(harvest, reps));
	ckpt_track_close(t);
	child_stop(&c);
}

static long max_map_count(long set)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r+");
	long old = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%ld", &old) != 1)
		old = 0;
	if (set > 0) {
		rewind(f);
		fprintf(f, "%ld\n", set);
	}
	fclose(f);
	return old;
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 5;
	const char *only = argc > 2 ? argv[2] : "AB"; /* run part A, B or both */
	const size_t sizes[] = { 262144, 1048576 }; /* 1 GiB, 4 GiB */
	char rundir[] = "/tmp/ckpt-bench-track-XXXXXX";
	long old_maps;

	if (reps < 1 || reps > 32)
		reps = 5;
	setenv("CKPT_RUNDIR", mkdtemp(rundir), 1);
	/* mprotect tracking splits a VMA per scattered page: allow 64Ki+ of them. */
	old_maps = max_map_count(1 << 20);
	printf("median of %d runs\n\n", reps);
	printf("### A. first write to a page, %d pages spread over the region (ns per page)\n\n", NWRITE);
	printf("| size | untracked | raw async-WP | ckpt-tracked | mprotect+SIGSEGV | ckpt/raw | mprotect/ckpt |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < 2 && strchr(only, 'A'); i++) {
		double un = first_write_ns(sizes[i], "none", reps);
		double raw = first_write_ns(sizes[i], "raw", reps);
		double ck = first_write_ns(sizes[i], "ckpt", reps);
		double mp = first_write_ns(sizes[i], "mprotect", reps);

		printf("| %zu GiB | %.0f | %.0f | %.0f | %.0f | %.2fx | %.1fx |\n", sizes[i] * PS >> 30, un,
		       raw, ck, mp, ck / raw, mp / ck);
		fflush(stdout);
	}
	max_map_count(old_maps);
	printf("\n### B. harvest and freeze (ms), against reading /proc/PID/pagemap of the range\n\n");
	printf("| size | written | scan | harvest | freeze | pagemap read | pagemap/harvest |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < 2 && strchr(only, 'B'); i++) {
		const double pcts[] = { 0, 1, 10, 100 };

		for (size_t k = 0; k < 4; k++) {
			harvest_point(sizes[i], pcts[k], reps);
			fflush(stdout);
		}
	}
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", rundir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", rundir);
	}
	return 0;
}
