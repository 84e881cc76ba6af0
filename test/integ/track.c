/* SPDX-License-Identifier: MIT */
/*
 * lib/track against test/progs/dirtier: the harvested set is exactly what
 * the program wrote, in every kind of memory and across mapping changes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/inject.h>
#include <ckpt/log.h>
#include <ckpt/track.h>

#include "helpers/testutil.h"

#define PS 4096ULL
#define REGION_PAGES 64
#define THP_PAGES 1024
#define BIG_PAGES 16384

enum { HEAP, STACK, FILEMAP, SHARED, DATA, BSS, THP, BIG, NREG };
static const char *const rname[NREG] = { "heap", "stack", "file", "shared", "data", "bss", "thp", "big" };

struct dz {
	struct prog p;
	uint64_t base[NREG];
	uint64_t log, done;
	struct ckpt_track_opts opts;
	char rundir[64];
};

static void parse_ready(struct dz *d, const char *line)
{
	unsigned long long v[NREG + 2];

	cr_assert_eq(sscanf(line,
			    "ready heap=%llx stack=%llx file=%llx shared=%llx data=%llx bss=%llx thp=%llx "
			    "big=%llx log=%llx done=%llx",
			    &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]),
		     10, "bad ready line: %s", line);
	for (int i = 0; i < NREG; i++)
		d->base[i] = v[i];
	d->log = v[8];
	d->done = v[9];
}

static void dz_start(struct dz *d)
{
	char line[1024];

	memset(d, 0, sizeof(*d));
	snprintf(d->rundir, sizeof(d->rundir), "/tmp/ckpt-track-test-XXXXXX");
	cr_assert_not_null(mkdtemp(d->rundir));
	d->opts.rundir = d->rundir;
	cr_assert_eq(prog_start(&d->p, true, 0, "dirtier", NULL), 0);
	cr_assert_geq(prog_read_line(&d->p, line, sizeof(line), 5000), 0);
	parse_ready(d, line);
}

static void dz_stop(struct dz *d)
{
	char cmd[128];

	prog_kill(&d->p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d->rundir);
	if (system(cmd) != 0)
		cr_log_warn("cannot remove %s", d->rundir);
}

/* Send a command, return its one-line answer. */
static void dz_cmd(struct dz *d, char *ans, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void dz_cmd(struct dz *d, char *ans, size_t len, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	cr_assert_eq(write(d->p.in_fd, line, strlen(line)), (ssize_t)strlen(line));
	cr_assert_geq(prog_read_line(&d->p, ans, len, 5000), 0, "no answer to '%s'", line);
}

static void dz_ok(struct dz *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dz_ok(struct dz *d, const char *fmt, ...)
{
	char line[512], ans[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	dz_cmd(d, ans, sizeof(ans), "%s", line);
	cr_assert_str_eq(ans, "ok", "'%s' answered '%s'", line, ans);
}

static struct ckpt_tracker *arm(struct dz *d)
{
	struct ckpt_inject *inj;
	struct ckpt_tracker *t = NULL;
	int r;

	cr_assert_eq(ckpt_inject_seize(d->p.pid, CKPT_INJECT_NO_XSTATE, &inj), 0);
	r = ckpt_track_arm(inj, &d->opts, &t);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	cr_assert_eq(r, 0, "arm: %s", strerror(-r));
	return t;
}

static int harvest(struct dz *d, struct ckpt_tracker *t, struct ckpt_range_set *set,
		   struct ckpt_track_stats *st)
{
	struct ckpt_inject *inj;
	int r;

	ckpt_range_set_init(set);
	cr_assert_eq(ckpt_inject_seize(d->p.pid, CKPT_INJECT_NO_XSTATE, &inj), 0);
	r = ckpt_track_harvest(t, inj, set, st);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	return r;
}

static void harvest_ok(struct dz *d, struct ckpt_tracker *t, struct ckpt_range_set *set,
		       struct ckpt_track_stats *st)
{
	int r = harvest(d, t, set, st);

	cr_assert_eq(r, 0, "harvest: %s", strerror(-r));
}

/* Pages of [base, base + n pages) present in @set, as a string of 0/1. */
static void pages_of(const struct ckpt_range_set *s, uint64_t base, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = ckpt_range_set_covers(s, base + i * PS, base + (i + 1) * PS) ? '1' : '0';
	out[n] = '\0';
}

static void want_pages(char *out, size_t n, const int *idx, size_t nidx)
{
	memset(out, '0', n);
	out[n] = '\0';
	for (size_t i = 0; i < nidx; i++)
		out[idx[i]] = '1';
}

Test(track, harvest_is_exactly_the_written_pages_in_every_kind_of_memory)
{
	struct dz d;
	struct ckpt_tracker *t;
	struct ckpt_range_set s;
	const int written[] = { 3, 10, 11, 12, 40, 63 };
	const int thp_written[] = { 5, 600, 601, 1023 };
	char got[THP_PAGES + 1], want[THP_PAGES + 1];

	dz_start(&d);
	t = arm(&d);
	/* Nothing written yet in any region: negative control. */
	harvest_ok(&d, t, &s, NULL);
	for (int r = 0; r < NREG; r++) {
		size_t n = r == THP ? THP_PAGES : r == BIG ? BIG_PAGES : REGION_PAGES;

		for (size_t i = 0; i < n; i++)
			cr_expect(!ckpt_range_set_overlaps(&s, d.base[r] + i * PS, d.base[r] + (i + 1) * PS),
				  "%s page %zu reported, never written", rname[r], i);
	}
	ckpt_range_set_done(&s);

	for (int r = 0; r < NREG; r++) {
		if (r == THP || r == BIG)
			continue;
		dz_ok(&d, "w %s 3 10 11 12 40 63", rname[r]);
	}
	dz_ok(&d, "w thp 5 600 601 1023");
	harvest_ok(&d, t, &s, NULL);
	for (int r = 0; r < NREG; r++) {
		if (r == THP || r == BIG)
			continue;
		pages_of(&s, d.base[r], REGION_PAGES, got);
		want_pages(want, REGION_PAGES, written, 6);
		cr_expect_str_eq(got, want, "region %s", rname[r]);
	}
	pages_of(&s, d.base[THP], THP_PAGES, got);
	want_pages(want, THP_PAGES, thp_written, 4);
	cr_expect_str_eq(got, want, "THP region");
	ckpt_range_set_done(&s);

	/* And again: the same pages, re-armed, are reported again, nothing else. */
	dz_ok(&d, "w data 10");
	harvest_ok(&d, t, &s, NULL);
	pages_of(&s, d.base[DATA], REGION_PAGES, got);
	want_pages(want, REGION_PAGES, (const int[]){ 10 }, 1);
	cr_expect_str_eq(got, want);
	pages_of(&s, d.base[HEAP], REGION_PAGES, got);
	want_pages(want, REGION_PAGES, NULL, 0);
	cr_expect_str_eq(got, want);
	ckpt_range_set_done(&s);
	cr_assert_eq(ckpt_track_generation(t), 3);
	ckpt_track_close(t);
	dz_stop(&d);
}

Test(track, dontneed_pages_are_reported_untouched_never)
{
	struct dz d;
	struct ckpt_tracker *t;
	struct ckpt_range_set s;
	char got[REGION_PAGES + 1];

	dz_start(&d);
	t = arm(&d);
	harvest_ok(&d, t, &s, NULL);
	ckpt_range_set_done(&s);
	dz_ok(&d, "w heap 1 2");
	dz_ok(&d, "z heap 2 5");
	dz_ok(&d, "w bss 1 2");
	dz_ok(&d, "z bss 2");
	harvest_ok(&d, t, &s, NULL);
	for (int r = HEAP; r <= BSS; r += BSS - HEAP) {
		pages_of(&s, d.base[r], REGION_PAGES, got);
		cr_expect(got[1] == '1' && got[2] == '1', "%s: written+dropped not reported: %s", rname[r], got);
		for (int i = 0; i < REGION_PAGES; i++)
			if (i != 1 && i != 2 && i != 5)
				cr_expect_eq(got[i], '0', "%s page %d never written but reported", rname[r], i);
	}
	ckpt_range_set_done(&s);
	ckpt_track_close(t);
	dz_stop(&d);
}

Test(track, kernel_read_into_a_tracked_buffer_is_reported)
{
	struct dz d;
	struct ckpt_tracker *t;
	struct ckpt_range_set s;
	char got[REGION_PAGES + 1], want[REGION_PAGES + 1];

	dz_start(&d);
	t = arm(&d);
	harvest_ok(&d, t, &s, NULL);
	ckpt_range_set_done(&s);
	dz_ok(&d, "r bss 9");
	dz_ok(&d, "r shared 33");
	harvest_ok(&d, t, &s, NULL);
	pages_of(&s, d.base[BSS], REGION_PAGES, got);
	want_pages(want, REGION_PAGES, (const int[]){ 9 }, 1);
	cr_expect_str_eq(got, want);
	pages_of(&s, d.base[SHARED], REGION_PAGES, got);
	want_pages(want, REGION_PAGES, (const int[]){ 33 }, 1);
	cr_expect_str_eq(got, want);
	ckpt_range_set_done(&s);
	ckpt_track_close(t);
	dz_stop(&d);
}

Test(track, mapping_changes_between_harvests)
{
	struct dz d;
	struct ckpt_tracker *t;
	struct ckpt_range_set s;
	struct ckpt_track_stats st;
	char ans[256], got[REGION_PAGES + 1], want[REGION_PAGES + 1];
	unsigned long long m, moved, old_brk, new_brk, low, tstack;

	dz_start(&d);
	t = arm(&d);
	harvest_ok(&d, t, &s, NULL);
	ckpt_range_set_done(&s);

	/* mmap: the whole new mapping once, then only what is written. */
	dz_cmd(&d, ans, sizeof(ans), "mmap 8");
	cr_assert_eq(sscanf(ans, "mapped %llx", &m), 1);
	harvest_ok(&d, t, &s, &st);
	cr_expect(ckpt_range_set_covers(&s, m, m + 8 * PS), "new mapping not reported whole");
	cr_expect_geq(st.maps_added, 1);
	cr_expect_geq(st.new_pages, 8);
	ckpt_range_set_done(&s);
	dz_ok(&d, "W %llx 3", m);
	harvest_ok(&d, t, &s, NULL);
	pages_of(&s, m, 8, got);
	cr_expect_str_eq(got, "00010000");
	ckpt_range_set_done(&s);

	/* mremap to a new address: reported whole there once, then normally. */
	dz_cmd(&d, ans, sizeof(ans), "mremap %llx 8", m);
	cr_assert_eq(sscanf(ans, "moved %llx", &moved), 1);
	cr_assert_neq(moved, m);
	harvest_ok(&d, t, &s, &st);
	cr_expect(ckpt_range_set_covers(&s, moved, moved + 8 * PS));
	cr_expect(!ckpt_range_set_overlaps(&s, m, m + 8 * PS), "the old range was reported");
	cr_expect_geq(st.maps_removed, 1);
	ckpt_range_set_done(&s);
	dz_ok(&d, "W %llx 6", moved);
	harvest_ok(&d, t, &s, NULL);
	pages_of(&s, moved, 8, got);
	cr_expect_str_eq(got, "00000010");
	ckpt_range_set_done(&s);

	/* munmap: nothing there any more, nothing reported. */
	dz_ok(&d, "munmap %llx 8", moved);
	harvest_ok(&d, t, &s, &st);
	cr_expect(!ckpt_range_set_overlaps(&s, moved, moved + 8 * PS));
	cr_expect_geq(st.maps_removed, 1);
	ckpt_range_set_done(&s);

	/* brk growth: the new part once, then normally. */
	dz_cmd(&d, ans, sizeof(ans), "brk 4");
	cr_assert_eq(sscanf(ans, "brk %llx %llx", &old_brk, &new_brk), 2);
	harvest_ok(&d, t, &s, NULL);
	cr_expect(ckpt_range_set_covers(&s, old_brk, new_brk), "brk growth not reported whole");
	ckpt_range_set_done(&s);
	dz_ok(&d, "W %llx 1", old_brk);
	harvest_ok(&d, t, &s, NULL);
	pages_of(&s, old_brk, 4, got);
	cr_expect_str_eq(got, "0100");
	ckpt_range_set_done(&s);

	/* stack growth: 40 pages deeper than ever before. */
	dz_cmd(&d, ans, sizeof(ans), "stack 200");
	cr_assert_eq(sscanf(ans, "stack %llx", &low), 1);
	harvest_ok(&d, t, &s, NULL);
	cr_expect(ckpt_range_set_covers(&s, low & ~(PS - 1), (low & ~(PS - 1)) + 150 * PS),
		  "grown stack not reported");
	ckpt_range_set_done(&s);

	/* mprotect read-only, then writable again: tracked across. */
	dz_ok(&d, "prot data ro");
	harvest_ok(&d, t, &s, &st);
	cr_expect_geq(st.maps_changed + st.maps_added, 1);
	pages_of(&s, d.base[DATA], REGION_PAGES, got);
	want_pages(want, REGION_PAGES, NULL, 0);
	cr_expect_str_eq(got, want);
	ckpt_range_set_done(&s);
	dz_ok(&d, "prot data rw");
	dz_ok(&d, "w data 7");
	harvest_ok(&d, t, &s, NULL);
	pages_of(&s, d.base[DATA], REGION_PAGES, got);
	want_pages(want, REGION_PAGES, (const int[]){ 7 }, 1);
	cr_expect_str_eq(got, want);
	ckpt_range_set_done(&s);

	/* A thread: its stack is a new mapping, reported whole once. */
	dz_cmd(&d, ans, sizeof(ans), "thread");
	cr_assert_eq(sscanf(ans, "thread %llx", &tstack), 1);
	harvest_ok(&d, t, &s, &st);
	cr_expect(ckpt_range_set_covers(&s, (tstack & ~(PS - 1)) - 16 * PS, tstack & ~(PS - 1)),
		  "new thread stack not reported");
	ckpt_range_set_done(&s);
	harvest_ok(&d, t, &s, NULL);
	cr_expect(!ckpt_range_set_overlaps(&s, (tstack & ~(PS - 1)) - 16 * PS, (tstack & ~(PS - 1)) - PS),
		  "a waiting thread's stack reported again");
	ckpt_range_set_done(&s);
	ckpt_track_close(t);
	dz_stop(&d);
}

Test(track, hugetlb_never_loops)
{
	struct dz d;
	struct ckpt_tracker *t;
	struct ckpt_range_set s;
	char ans[128], old[32] = "0";
	unsigned long long h;
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r+");

	cr_assert_not_null(f);
	cr_assert_not_null(fgets(old, sizeof(old), f));
	fprintf(f, "4\n");
	fclose(f);
	dz_start(&d);
	dz_cmd(&d, ans, sizeof(ans), "hugetlb");
	t = arm(&d);
	harvest_ok(&d, t, &s, NULL);
	ckpt_range_set_done(&s);
	if (sscanf(ans, "hugetlb %llx", &h) == 1) {
		dz_ok(&d, "W %llx 0", h);
		harvest_ok(&d, t, &s, NULL);
		/* Either tracked (the page is reported) or always dirty (all of it). */
		cr_expect(ckpt_range_set_covers(&s, h, h + PS), "hugetlb write missed");
		ckpt_range_set_done(&s);
	}
	ckpt_track_close(t);
	dz_stop(&d);
	f = fopen("/proc/sys/vm/nr_hugepages", "w");
	if (f) {
		fputs(old, f);
		fclose(f);
	}
	if (sscanf(ans, "hugetlb %llx", &h) != 1)
		cr_skip_test("no hugetlb page could be mapped (%s)", ans);
}

Test(track, fork_child_untracked_exec_ends_tracking)
{
	struct dz d;
	struct ckpt_tracker *t, *t2 = NULL;
	struct ckpt_range_set s;
	char ans[1024], got[REGION_PAGES + 1], want[REGION_PAGES + 1];
	int child;

	dz_start(&d);
	t = arm(&d);
	dz_cmd(&d, ans, sizeof(ans), "fork");
	cr_assert_eq(sscanf(ans, "child %d", &child), 1);
	cr_expect_eq(ckpt_track_attach(child, &d.opts, &t2), -ENOENT, "the child looks tracked");
	harvest_ok(&d, t, &s, NULL);
	ckpt_range_set_done(&s);
	dz_ok(&d, "w heap 4");
	harvest_ok(&d, t, &s, NULL);
	pages_of(&s, d.base[HEAP], REGION_PAGES, got);
	want_pages(want, REGION_PAGES, (const int[]){ 4 }, 1);
	cr_expect_str_eq(got, want, "parent after fork");
	ckpt_range_set_done(&s);
	kill(child, SIGKILL);

	log_capture_start();
	cr_assert_eq(write(d.p.in_fd, "exec\n", 5), 5);
	cr_assert_geq(prog_read_line(&d.p, ans, sizeof(ans), 5000), 0);
	cr_assert(strncmp(ans, "ready", 5) == 0, "%s", ans);
	cr_expect_eq(harvest(&d, t, &s, NULL), -ESTALE);
	cr_expect(strstr(log_captured(), "executed a new program") || strstr(log_captured(), "is closed"),
		  "%s", log_captured());
	ckpt_track_close(t);
	cr_expect_eq(ckpt_track_attach(d.p.pid, &d.opts, &t2), -ESTALE);
	/* The record is gone: the next attach says "not tracked". */
	cr_expect_eq(ckpt_track_attach(d.p.pid, &d.opts, &t2), -ENOENT);
	ckpt_log_set_sink(NULL, NULL);
	dz_stop(&d);
}

Test(track, survives_the_command_and_detects_a_closed_fd)
{
	struct dz d;
	struct ckpt_tracker *t, *t2 = NULL;
	struct ckpt_range_set s;
	char got[REGION_PAGES + 1], want[REGION_PAGES + 1], path[64];
	int parked;
	struct stat st;

	dz_start(&d);
	t = arm(&d);
	parked = ckpt_track_parked_fd(t);
	cr_expect_gt(parked, 100);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", d.p.pid, parked);
	cr_expect_eq(stat(path, &st), 0, "no parked fd in the target");
	ckpt_track_close(t); /* the command that armed ends */

	dz_ok(&d, "w bss 20");
	cr_assert_eq(ckpt_track_attach(d.p.pid, &d.opts, &t2), 0);
	harvest_ok(&d, t2, &s, NULL);
	pages_of(&s, d.base[BSS], REGION_PAGES, got);
	want_pages(want, REGION_PAGES, (const int[]){ 20 }, 1);
	cr_expect_str_eq(got, want, "writes made while no ckpt ran");
	ckpt_range_set_done(&s);

	/* Our handle is open: the program closes the fd, the harvest parks it again. */
	dz_ok(&d, "closefd %d", parked);
	dz_ok(&d, "w bss 21");
	harvest_ok(&d, t2, &s, NULL);
	cr_expect_eq(stat(path, &st), 0, "not parked again");
	pages_of(&s, d.base[BSS], REGION_PAGES, got);
	want_pages(want, REGION_PAGES, (const int[]){ 21 }, 1);
	cr_expect_str_eq(got, want);
	ckpt_range_set_done(&s);
	ckpt_track_close(t2);

	/* No handle open: closing the fd loses the tracking, and that is said. */
	dz_ok(&d, "closefd %d", parked);
	log_capture_start();
	cr_expect_eq(ckpt_track_attach(d.p.pid, &d.opts, &t2), -ESTALE);
	cr_expect(strstr(log_captured(), "is closed"), "%s", log_captured());
	ckpt_log_set_sink(NULL, NULL);
	dz_stop(&d);
}

Test(track, second_tracker_fails_cleanly)
{
	struct dz d;
	struct ckpt_tracker *t, *t2 = NULL;
	struct ckpt_inject *inj;

	dz_start(&d);
	t = arm(&d);
	/* While the first holds it. */
	log_capture_start();
	cr_assert_eq(ckpt_inject_seize(d.p.pid, CKPT_INJECT_NO_XSTATE, &inj), 0);
	cr_expect_eq(ckpt_track_arm(inj, &d.opts, &t2), -EBUSY);
	cr_expect(strstr(log_captured(), "in use by another ckpt command"), "%s", log_captured());
	ckpt_track_close(t);
	/* After it ended, armed and parked: already tracked. */
	log_capture_start();
	cr_expect_eq(ckpt_track_arm(inj, &d.opts, &t2), -EBUSY);
	cr_expect(strstr(log_captured(), "already tracked"), "%s", log_captured());
	/* A tracker with another run directory: the kernel says EBUSY. */
	log_capture_start();
	cr_expect_eq(ckpt_track_arm(inj, &(struct ckpt_track_opts){ .rundir = "/tmp" }, &t2), -EBUSY);
	cr_expect(strstr(log_captured(), "another userfaultfd"), "%s", log_captured());
	cr_assert_eq(ckpt_inject_release(inj), 0);
	ckpt_log_set_sink(NULL, NULL);
	dz_stop(&d);
}

Test(track, disarm_leaves_the_process_untracked)
{
	struct dz d;
	struct ckpt_tracker *t, *t2 = NULL;
	struct ckpt_inject *inj;
	char path[128];
	int parked;
	struct stat st;

	dz_start(&d);
	t = arm(&d);
	parked = ckpt_track_parked_fd(t);
	cr_assert_eq(ckpt_inject_seize(d.p.pid, CKPT_INJECT_NO_XSTATE, &inj), 0);
	cr_assert_eq(ckpt_track_disarm(t, inj), 0);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", d.p.pid, parked);
	cr_expect_neq(stat(path, &st), 0, "parked fd still open");
	cr_expect(!proc_uffd_registered(d.p.pid), "a mapping is still registered for write-protect");
	cr_expect_eq(ckpt_track_attach(d.p.pid, &d.opts, &t2), -ENOENT);
	dz_ok(&d, "w heap 1");
	dz_stop(&d);
}

/*
 * 100 harvests while a thread writes random pages as fast as it can and logs
 * each write: every logged write shows up in its interval's harvest, and no
 * page of the region is reported that was not written.
 */
Test(track, random_writer_nothing_missed_over_100_harvests, .timeout = 120)
{
	struct dz d;
	struct ckpt_tracker *t;
	struct ckpt_range_set s;
	uint64_t prev_done = 0;
	uint32_t *wl = malloc((1u << 22) * sizeof(uint32_t));
	uint64_t total = 0;

	dz_start(&d);
	t = arm(&d);
	harvest_ok(&d, t, &s, NULL);
	ckpt_range_set_done(&s);
	dz_ok(&d, "random");
	for (int h = 0; h < 100; h++) {
		struct ckpt_inject *inj;
		uint64_t done;
		int r;

		usleep(2000 + (unsigned)(rand() % 8000));
		cr_assert_eq(ckpt_inject_seize(d.p.pid, CKPT_INJECT_NO_XSTATE, &inj), 0);
		ckpt_range_set_init(&s);
		r = ckpt_track_harvest(t, inj, &s, NULL);
		cr_assert_eq(r, 0);
		cr_assert_eq(ckpt_inject_read(inj, d.done, &done, sizeof(done)), 0);
		/* The log up to done, plus the entry in flight. */
		if (done > prev_done)
			cr_assert_eq(ckpt_inject_read(inj, d.log + prev_done * 4, wl + prev_done,
						      (done - prev_done + 1) * 4), 0);
		cr_assert_eq(ckpt_inject_release(inj), 0);

		/* Every completed write since the last harvest is reported ... */
		for (uint64_t i = prev_done; i < done; i++) {
			uint64_t a = d.base[BIG] + wl[i] * PS;

			/* (the write in flight at the last freeze may have gone into that one) */
			if (i == prev_done && i > 0)
				continue;
			cr_assert(ckpt_range_set_covers(&s, a, a + PS),
				  "harvest %d: write #%llu to page %u missed", h, (unsigned long long)i, wl[i]);
		}
		/* ... and nothing in the region that was not written. */
		for (size_t k = 0; k < s.nr; k++) {
			uint64_t lo = s.v[k].start > d.base[BIG] ? s.v[k].start : d.base[BIG];
			uint64_t hi = s.v[k].end < d.base[BIG] + BIG_PAGES * PS ? s.v[k].end
									    : d.base[BIG] + BIG_PAGES * PS;

			for (uint64_t a = lo; a < hi; a += PS) {
				uint32_t page = (uint32_t)((a - d.base[BIG]) / PS);
				bool found = false;

				for (uint64_t i = prev_done ? prev_done - 1 : 0; i <= done && !found; i++)
					found = wl[i] == page;
				cr_assert(found, "harvest %d: page %u reported but not written", h, page);
			}
		}
		total += done - prev_done;
		prev_done = done;
	}
	cr_log_info("%llu random writes checked over 100 harvests", (unsigned long long)total);
	cr_expect_gt(total, 1000, "the writer hardly wrote");
	ckpt_track_close(t);
	dz_stop(&d);
	free(wl);
}

/*
 * A registered mapping replaced at the same address by one that cannot be
 * registered (shared, read-only: glibc's gconv cache): counted whole once,
 * then left alone, not reported whole (with a warning) at every harvest.
 */
Test(track, replaced_by_an_unregistrable_mapping_is_counted_once)
{
	struct dz d;
	struct ckpt_tracker *t;
	struct ckpt_range_set set;
	struct ckpt_track_stats st;
	unsigned long long addr;
	char ans[128], got[64], none[64];

	dz_start(&d);
	t = arm(&d);
	dz_cmd(&d, ans, sizeof(ans), "mmap 16");
	cr_assert_eq(sscanf(ans, "mapped %llx", &addr), 1, "%s", ans);
	harvest_ok(&d, t, &set, &st);
	ckpt_range_set_done(&set);
	dz_ok(&d, "roshare %#llx 16", addr);
	harvest_ok(&d, t, &set, &st);
	pages_of(&set, addr, 16, got);
	cr_expect_str_eq(got, "1111111111111111", "the replaced mapping counts whole once");
	ckpt_range_set_done(&set);
	memset(none, '0', 16);
	none[16] = '\0';
	for (int i = 0; i < 2; i++) {
		log_capture_start();
		harvest_ok(&d, t, &set, &st);
		pages_of(&set, addr, 16, got);
		cr_expect_str_eq(got, none, "harvest %d after: a mapping that can never be written is reported", i + 2);
		cr_expect(!strstr(log_captured(), "cannot register"), "warned again: %s", log_captured());
		cr_expect_eq(st.maps_added, 0, "harvest %d after: an untracked mapping counted as added again", i + 2);
		ckpt_range_set_done(&set);
	}
	cr_assert_eq(ckpt_track_disarm(t, NULL), 0);
	dz_stop(&d);
}
