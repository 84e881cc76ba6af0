/* SPDX-License-Identifier: MIT */
/*
 * ckpt track -D: continuous checkpoints of test/progs/genmem, whose memory
 * moves from generation to generation (atomically with respect to a freeze)
 * and which logs the checksum of every generation. Each checkpoint must hold
 * the region of exactly one generation: the generation number it holds
 * names the checksum its pages must have. Checked by resolving the chain's
 * pages (lib/image), and by restoring the checkpoint (stopped) and reading
 * its memory (CKPT_TEST_RESTORE=0 leaves restore out).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/image.h>

#include "helpers/testutil.h"

#define PS 4096ULL

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "cont-test");
}

static void teardown(void)
{
	char first[200];

	snprintf(first, sizeof(first), "umount -q %s/small %s/slow 2>/dev/null", tmp, tmp);
	suite_dir_remove(tmp, first);
}

TestSuite(continuous, .init = setup, .fini = teardown);

/* ---- the program ---- */

struct gm {
	struct prog p;
	char pid[16];
	char log[128];
	uint64_t region;
	size_t pages;
};

static void gm_start(struct gm *g, const char *pages, const char *pause_us)
{
	char line[256];
	void *addr = NULL;

	snprintf(g->log, sizeof(g->log), "%s/genmem-%d.log", tmp, rand());
	cr_assert_eq(prog_start(&g->p, false, 0, "genmem", g->log, pages, pause_us, NULL), 0);
	cr_assert_geq(prog_read_line(&g->p, line, sizeof(line), 5000), 0);
	cr_assert_eq(sscanf(line, "ready region=%p pages=%zu", &addr, &g->pages), 2, "%s", line);
	g->region = (uint64_t)(uintptr_t)addr;
	snprintf(g->pid, sizeof(g->pid), "%d", g->p.pid);
}

/* The log: checksum of each generation. */
struct sums {
	uint64_t *v;
	size_t n;
};

static void sums_load(struct sums *s, const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long long g, h;

	cr_assert_not_null(f, "no log %s", path);
	memset(s, 0, sizeof(*s));
	while (fscanf(f, "%llu %llx", &g, &h) == 2) {
		if (g >= s->n) {
			size_t n = (g + 1) * 2;

			s->v = realloc(s->v, n * sizeof(*s->v));
			memset(s->v + s->n, 0, (n - s->n) * sizeof(*s->v));
			s->n = n;
		}
		s->v[g] = h;
	}
	fclose(f);
}

static uint64_t fnv_update(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/*
 * The checkpoint at @path holds one generation of the region: returns it.
 * Its pages, resolved through the chain, have the checksum the log gives.
 */
static uint64_t verify_point(const char *path, const struct gm *g, const struct sums *s)
{
	struct ckpt_chain *c = NULL;
	static unsigned char buf[PS], zero[PS];
	uint64_t h = 1469598103934665603ULL, gen = 0;
	int r;

	r = ckpt_chain_open(path, NULL, &c);
	cr_assert_eq(r, 0, "%s does not open: %s", path, strerror(-r));
	for (size_t i = 0; i < g->pages; i++) {
		int k = ckpt_chain_read_page(c, g->region + i * PS, buf);

		cr_assert(k == CKPT_PAGE_DATA || k == CKPT_PAGE_ZERO, "%s: page %zu of the region: %s",
			  path, i, ckpt_page_kind_name(k));
		h = fnv_update(h, k == CKPT_PAGE_DATA ? buf : zero, PS);
		if (i == 0)
			memcpy(&gen, k == CKPT_PAGE_DATA ? buf : zero, 8);
	}
	ckpt_chain_close(c);
	cr_assert_lt(gen, s->n, "%s holds generation %llu, the log ends before", path,
		     (unsigned long long)gen);
	cr_assert_eq(h, s->v[gen], "%s: generation %llu: checksum %016llx, the log says %016llx",
		     path, (unsigned long long)gen, (unsigned long long)h,
		     (unsigned long long)s->v[gen]);
	return gen;
}

/*
 * Restore @path stopped, read its region and compare with the log as
 * verify_point does with the images (not with CKPT_TEST_RESTORE=0).
 */
static void verify_restored(const char *path, const struct gm *g, const struct sums *s,
			    uint64_t want_gen)
{
	struct run_result r;
	char mem[64];
	unsigned char *buf;
	uint64_t h = 1469598103934665603ULL, gen;
	pid_t pid;
	int fd;

	if (getenv("CKPT_TEST_RESTORE") && !strcmp(getenv("CKPT_TEST_RESTORE"), "0"))
		return;
	cr_assert_eq(run_ckpt(&r, "restore", "-D", path, "--detach", "--leave-stopped", "--stdio",
			      "null", NULL), 0);
	cr_assert_eq(r.status, 0, "restore %s: %s", path, r.err);
	pid = atoi(r.out);
	run_result_done(&r);
	cr_assert_gt(pid, 0);
	prog_track_pid(pid);
	snprintf(mem, sizeof(mem), "/proc/%d/mem", pid);
	fd = open(mem, O_RDONLY);
	cr_assert_geq(fd, 0);
	buf = malloc(g->pages * PS);
	cr_assert_eq(pread(fd, buf, g->pages * PS, (off_t)g->region), (ssize_t)(g->pages * PS));
	close(fd);
	memcpy(&gen, buf, 8);
	h = fnv_update(h, buf, g->pages * PS);
	free(buf);
	kill(pid, SIGKILL);
	cr_expect_eq(gen, want_gen, "restored %s: generation %llu, the images hold %llu", path,
		     (unsigned long long)gen, (unsigned long long)want_gen);
	cr_expect_eq(h, s->v[gen], "restored %s: checksum differs from generation %llu's", path,
		     (unsigned long long)gen);
}

/*
 * Every checkpoint the directory lists (a name without a leading dot) and
 * "latest" restore to one generation each; returns how many there are and
 * the generation of latest.
 */
static size_t verify_listing(const char *dir, const struct gm *g, uint64_t *ret_latest_gen)
{
	struct sums s;
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;
	char path[512];

	cr_assert_not_null(d, "no directory %s", dir);
	sums_load(&s, g->log);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "latest"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		verify_point(path, g, &s);
		n++;
	}
	closedir(d);
	snprintf(path, sizeof(path), "%s/latest", dir);
	/* latest is switched once a checkpoint is complete: the first may be there without it. */
	if (n && access(path, F_OK) == 0) {
		uint64_t gen = verify_point(path, g, &s);

		verify_restored(path, g, &s, gen);
		if (ret_latest_gen)
			*ret_latest_gen = gen;
	}
	free(s.v);
	return n;
}

/* ---- running ckpt track -D ---- */

static size_t parse_ndjson(char *out, json_object **objs, size_t max)
{
	size_t n = 0;

	for (char *l = strtok(out, "\n"); l && n < max; l = strtok(NULL, "\n")) {
		objs[n] = json_tokener_parse(l);
		cr_assert_not_null(objs[n], "not JSON: %s", l);
		n++;
	}
	return n;
}

static int64_t num(json_object *o, const char *k)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, k, &v), "no '%s' in %s", k,
		  json_object_to_json_string(o));
	return json_object_get_int64(v);
}

static const char *str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

Test(continuous, ten_checkpoints_each_of_one_generation, .timeout = 120)
{
	struct gm g;
	struct run_result r;
	json_object *o[64];
	char dir[128], path[256], buf[64];
	struct sums s;
	uint64_t last_gen = 0;
	size_t n, nck = 0;
	ssize_t len;

	gm_start(&g, "256", "1000");
	snprintf(dir, sizeof(dir), "%s/series", tmp);
	cr_assert_eq(run_ckpt(&r, "track", "-t", g.pid, "-D", dir, "--interval", "100ms", "--count",
			      "10", "--json", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	n = parse_ndjson(r.out, o, 64);
	for (size_t i = 0; i < n; i++) {
		if (str(o[i], "event"))
			continue;
		/* What the issue asks of each line. */
		cr_expect_eq(num(o[i], "sequence"), (int64_t)nck);
		cr_expect_str_eq(str(o[i], "kind"), nck ? "delta" : "full");
		cr_expect_eq(num(o[i], "chain_length"), (int64_t)nck + 1);
		cr_expect_gt(num(o[i], "pages_written"), 0);
		cr_expect_geq(num(o[i], "bytes_before_compression"), num(o[i], "pages_data") * 4096);
		cr_expect_gt(num(o[i], "bytes_after_compression"), 0);
		(void)num(o[i], "freeze_ms");
		(void)num(o[i], "write_ms");
		nck++;
	}
	cr_expect_eq(nck, 10);
	cr_expect_str_eq(str(o[n - 1], "event"), "end");
	cr_expect_str_eq(str(o[n - 1], "reason"), "count");
	for (size_t i = 0; i < n; i++)
		json_object_put(o[i]);
	run_result_done(&r);

	/* Each checkpoint: one generation, later ones later generations. */
	usleep(50000);
	sums_load(&s, g.log);
	for (int k = 0; k < 10; k++) {
		uint64_t gen;

		snprintf(path, sizeof(path), "%s/%04d", dir, k);
		gen = verify_point(path, &g, &s);
		verify_restored(path, &g, &s, gen);
		cr_expect(k == 0 || gen > last_gen, "%s: generation %llu after %llu", path,
			  (unsigned long long)gen, (unsigned long long)last_gen);
		last_gen = gen;
	}
	free(s.v);
	snprintf(path, sizeof(path), "%s/latest", dir);
	len = readlink(path, buf, sizeof(buf) - 1);
	cr_assert_gt(len, 0);
	buf[len] = '\0';
	cr_expect_str_eq(buf, "0009");

	/* Tracking stays armed: ckpt dump --parent DIR/latest continues the chain... */
	snprintf(path, sizeof(path), "%s/dumped", tmp);
	{
		char parent[256];

		snprintf(parent, sizeof(parent), "%s/latest", dir);
		cr_assert_eq(run_ckpt(&r, "dump", "-t", g.pid, "-D", path, "--parent", parent,
				      "--leave-running", "--json", NULL), 0);
		cr_expect_eq(r.status, 0, "%s", r.err);
		cr_expect(strstr(r.out, "\"kind\": \"delta\""), "%s", r.out);
		run_result_done(&r);
		usleep(20000);
		sums_load(&s, g.log);
		verify_point(path, &g, &s);
		free(s.v);
	}
	/* ... and so does another ckpt track -D, from the dump on: a new full here. */
	cr_assert_eq(run_ckpt(&r, "track", "-t", g.pid, "-D", dir, "--interval", "50ms", "--count",
			      "2", "--json", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "\"name\":\"0010\",\"kind\":\"full\""), "%s", r.out);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "track", "-t", g.pid, "-D", dir, "--interval", "50ms", "--count",
			      "2", "--json", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "\"event\":\"continued\""), "%s", r.out);
	cr_expect(strstr(r.out, "\"name\":\"0012\",\"kind\":\"delta\""), "%s", r.out);
	run_result_done(&r);
	usleep(20000);
	cr_expect_eq(verify_listing(dir, &g, NULL), 14);
	cr_assert_eq(run_ckpt(&r, "track", "--stop", "-t", g.pid, NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_kill(&g.p);
}

static uint64_t dir_bytes(const char *dir)
{
	char cmd[300];
	FILE *f;
	unsigned long long b = 0;

	snprintf(cmd, sizeof(cmd), "du -sb %s", dir);
	f = popen(cmd, "r");
	cr_assert(f);
	cr_assert_eq(fscanf(f, "%llu", &b), 1);
	pclose(f);
	return b;
}

Test(continuous, keep_3_over_20, .timeout = 120)
{
	struct gm g;
	struct run_result r;
	json_object *o[64];
	char dir[128];
	size_t n, nck = 0;
	int64_t max_points = 0;

	gm_start(&g, "1024", "1000");
	snprintf(dir, sizeof(dir), "%s/keep", tmp);
	cr_assert_eq(run_ckpt(&r, "track", "-t", g.pid, "-D", dir, "--interval", "60ms", "--count",
			      "20", "--keep", "3", "--json", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	n = parse_ndjson(r.out, o, 64);
	for (size_t i = 0; i < n; i++) {
		if (str(o[i], "event"))
			continue;
		nck++;
		max_points = num(o[i], "points") > max_points ? num(o[i], "points") : max_points;
		cr_expect_leq(num(o[i], "chain_length"), 3);
		json_object_put(o[i]);
	}
	cr_expect_eq(nck, 20);
	cr_expect_eq(max_points, 3, "more points than kept");
	run_result_done(&r);
	usleep(20000);
	cr_expect_eq(verify_listing(dir, &g, NULL), 3);
	/* Bounded: about one full copy of the region (4 MiB raw) and two deltas. */
	cr_expect_lt(dir_bytes(dir), 8u << 20, "%llu bytes", (unsigned long long)dir_bytes(dir));
	/* The same as a command: keep 1. */
	cr_assert_eq(run_ckpt(&r, "compact", dir, "--keep", "1", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	cr_expect_eq(verify_listing(dir, &g, NULL), 1);
	prog_kill(&g.p);
}

/*
 * ckpt killed at a crash point (CKPT_TEST_CRASH) or at a random moment:
 * whatever it left, every listed checkpoint and latest restore.
 */
static int track_crash(struct gm *g, const char *dir, const char *point, const char *keep)
{
	const char *argv[] = { ckpt_bin(), "track", "-t", g->pid, "-D", dir, "--interval", "40ms",
			       "--count", "12", "--keep", keep, NULL };
	struct run_result r;

	if (point)
		setenv("CKPT_TEST_CRASH", point, 1);
	cr_assert_eq(run_argv(argv, &r), 0);
	unsetenv("CKPT_TEST_CRASH");
	run_result_done(&r);
	return r.status;
}

static bool alive(pid_t pid)
{
	char st = proc_state(pid);

	return st && st != 'Z' && st != 'X';
}

/*
 * A SIGKILL of ckpt while the process is frozen in the middle of a remote
 * system call leaves it with ckpt's registers (ARCHITECTURE.md): it may die.
 * The directory must be right anyway; then go on with a new process and a
 * new directory.
 */
static void next_if_dead(struct gm *g, char *dir, size_t len, int *round)
{
	if (alive(g->p.pid))
		return;
	cr_log_info("the process died with ckpt (killed while frozen): a new one, a new directory");
	prog_kill(&g->p);
	gm_start(g, "512", "1000");
	snprintf(dir, len, "%s/crash%d", tmp, ++*round);
}

Test(continuous, killed_while_writing_or_folding, .timeout = 240)
{
	static const char *const points[] = {
		"commit-before-rename", "commit-after-rename", "latest-before-rename",
		"retain-after-fold", "remove-after-rename", "retain-after-remove",
	};
	struct gm g;
	char dir[128];
	int round = 0;

	gm_start(&g, "512", "1000");
	snprintf(dir, sizeof(dir), "%s/crash%d", tmp, round);
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		int status = track_crash(&g, dir, points[i], "3");

		cr_expect_eq(status, 128 + SIGKILL, "%s: ckpt was not killed there (status %d)",
			     points[i], status);
		usleep(20000);
		cr_expect_geq(verify_listing(dir, &g, NULL), i ? 1 : 0, "%s", points[i]);
		next_if_dead(&g, dir, sizeof(dir), &round);
	}
	/* Random moments. */
	for (int i = 0; i < 8; i++) {
		const char *argv[] = { ckpt_bin(), "track", "-t", g.pid, "-D", dir, "--interval",
				       "30ms", "--keep", "2", NULL };
		struct prog t;
		int status;

		cr_assert_eq(prog_spawn(&t, false, "/dev/null", argv), 0);
		usleep(150000 + (useconds_t)(rand() % 400000));
		kill(t.pid, SIGKILL);
		status = prog_wait(&t, 5000);
		cr_expect(WIFSIGNALED(status), "%d", status);
		usleep(20000);
		verify_listing(dir, &g, NULL);
		next_if_dead(&g, dir, sizeof(dir), &round);
	}
	/* And it carries on from there. */
	cr_expect_eq(track_crash(&g, dir, NULL, "3"), 0);
	usleep(20000);
	cr_expect_eq(verify_listing(dir, &g, NULL), 3);
	prog_kill(&g.p);
}

/* A throttled disk: a loop device in a blkio cgroup with a write limit. */
Test(continuous, slow_disk_stretches_the_interval, .timeout = 180)
{
	struct gm g;
	struct run_result r;
	json_object *o[128];
	char img[128], mnt[128], dir[160], cg[] = "/sys/fs/cgroup/blkio/ckpt-test-slow", cmd[1024],
						  loopdev[64] = "", majmin[32] = "";
	FILE *f;
	size_t n, nck = 0, stretched = 0;

	if (access("/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device", W_OK) != 0 ||
	    system("command -v losetup mkfs.ext4 >/dev/null") != 0)
		cr_skip_test("no blkio cgroup (v1) or no losetup/mkfs.ext4 to throttle a disk");
	snprintf(img, sizeof(img), "%s/slow.img", tmp);
	snprintf(mnt, sizeof(mnt), "%s/slow", tmp);
	snprintf(cmd, sizeof(cmd), "truncate -s 256M %s && losetup -f --show %s", img, img);
	f = popen(cmd, "r");
	cr_assert(f && fscanf(f, "%63s", loopdev) == 1, "losetup failed");
	pclose(f);
	snprintf(cmd, sizeof(cmd), "lsblk -no MAJ:MIN %s | tr -d ' '", loopdev);
	f = popen(cmd, "r");
	cr_assert(f && fscanf(f, "%31s", majmin) == 1);
	pclose(f);
	snprintf(cmd, sizeof(cmd),
		 "mkfs.ext4 -q %s && mkdir -p %s && mount %s %s && mkdir -p %s && "
		 "echo '%s 1048576' > %s/blkio.throttle.write_bps_device",
		 loopdev, mnt, loopdev, mnt, cg, majmin, cg);
	cr_assert_eq(system(cmd), 0, "%s", cmd);

	gm_start(&g, "512", "500");
	snprintf(dir, sizeof(dir), "%s/series", mnt);
	{
		/* ckpt in the throttled cgroup: 1 MB/s, about 1 MiB written per 100 ms. */
		char script[512];
		const char *argv[] = { "sh", "-c", script, NULL };

		snprintf(script, sizeof(script),
			 "echo $$ > %s/cgroup.procs && exec %s track -t %s -D %s --interval 100ms "
			 "--count 8 --json", cg, ckpt_bin(), g.pid, dir);
		cr_assert_eq(run_argv(argv, &r), 0);
	}
	cr_expect_eq(r.status, 0, "%s", r.err);
	n = parse_ndjson(r.out, o, 128);
	for (size_t i = 0; i < n; i++) {
		if (!str(o[i], "event")) {
			nck++;
			/* Counted, not timed: an interval's length depends on the machine's load. */
			stretched += num(o[i], "stretched_ms") > 0;
		} else if (!strcmp(str(o[i], "event"), "end")) {
			cr_expect_gt(num(o[i], "stretched"), 0, "no interval was stretched");
		}
		json_object_put(o[i]);
	}
	cr_expect_eq(nck, 8);
	cr_expect_gt(stretched, 0);
	run_result_done(&r);
	usleep(20000);
	/* Nothing lost: every checkpoint, a delta of the one before, is one generation. */
	cr_expect_eq(verify_listing(dir, &g, NULL), 8);
	prog_kill(&g.p);
	snprintf(cmd, sizeof(cmd), "umount %s; losetup -d %s; rmdir %s", mnt, loopdev, cg);
	if (system(cmd) != 0)
		cr_log_warn("cannot clean up: %s", cmd);
}

Test(continuous, full_disk_ends_with_a_clear_error, .timeout = 120)
{
	struct gm g;
	struct run_result r;
	char small[128], dir[160], cmd[256];
	uint64_t gen;
	DIR *d;
	struct dirent *de;

	snprintf(small, sizeof(small), "%s/small", tmp);
	cr_assert_eq(mkdir(small, 0700), 0);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=6m tmpfs %s", small);
	cr_assert_eq(system(cmd), 0, "cannot mount a small tmpfs");
	gm_start(&g, "1024", "200");
	snprintf(dir, sizeof(dir), "%s/series", small);
	cr_assert_eq(run_ckpt(&r, "track", "-t", g.pid, "-D", dir, "--interval", "20ms", NULL), 0);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "No space left on device") && strstr(r.err, dir), "%s", r.err);
	cr_expect(strstr(r.err, "latest"), "%s", r.err);
	run_result_done(&r);
	usleep(20000);
	/* The last complete checkpoint is intact, nothing half-written is left. */
	cr_expect_geq(verify_listing(dir, &g, &gen), 2);
	d = opendir(dir);
	while ((de = readdir(d)))
		cr_expect(de->d_name[0] != '.' || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."),
			  "left behind: %s", de->d_name);
	closedir(d);
	cr_expect(proc_state(g.p.pid) && proc_state(g.p.pid) != 'Z', "the process died");
	prog_kill(&g.p);
}

/*
 * Wait (asserting, 30 s at most) until track -D has made @n checkpoints in
 * @dir: a fixed sleep is too short on a loaded machine.
 */
static void wait_checkpoints(const char *dir, unsigned n)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%04u", dir, n - 1);
	for (int i = 0; i < 3000 && access(path, F_OK) < 0; i++)
		usleep(10000);
	cr_assert_eq(access(path, F_OK), 0, "track -D made fewer than %u checkpoints in 30 s", n);
	snprintf(path, sizeof(path), "%s/latest", dir);
	for (int i = 0; i < 3000 && access(path, F_OK) < 0; i++)
		usleep(10000);
}

Test(continuous, the_process_ends, .timeout = 60)
{
	struct gm g;
	struct prog t, dz;
	char dir[128], out[160], line[256];
	int status;
	const char *argv[] = { ckpt_bin(), "track", "-t", NULL, "-D", dir, "--interval", "50ms",
			       "--json", NULL };

	/* It exits: status 0, its last checkpoint intact. */
	gm_start(&g, "256", "1000");
	snprintf(dir, sizeof(dir), "%s/exit", tmp);
	snprintf(out, sizeof(out), "%s/exit.out", tmp);
	argv[3] = g.pid;
	cr_assert_eq(prog_spawn(&t, false, out, argv), 0);
	wait_checkpoints(dir, 2);
	kill(g.p.pid, SIGTERM);
	cr_expect_eq(prog_wait(&g.p, 5000) >= 0, 1);
	status = prog_wait(&t, 10000);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_expect_geq(verify_listing(dir, &g, NULL), 2);

	/* It executes another program: status 1, the checkpoints before it intact. */
	cr_assert_eq(prog_start(&dz, true, 0, "dirtier", NULL), 0);
	cr_assert_geq(prog_read_line(&dz, line, sizeof(line), 5000), 0);
	snprintf(dir, sizeof(dir), "%s/exec", tmp);
	{
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", dz.pid);
		argv[3] = pid;
		cr_assert_eq(prog_spawn(&t, false, out, argv), 0);
		wait_checkpoints(dir, 1);
		cr_assert_eq(write(dz.in_fd, "exec\n", 5), 5);
		status = prog_wait(&t, 10000);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %#x", status);
	}
	{
		char path[256];
		struct ckpt_chain *c;

		snprintf(path, sizeof(path), "%s/latest", dir);
		cr_expect_eq(ckpt_chain_open(path, NULL, &c), 0);
		ckpt_chain_close(c);
	}
	prog_kill(&dz);
}

Test(continuous, one_command_at_a_time, .timeout = 60)
{
	struct gm g;
	struct prog t;
	struct run_result r;
	char dir[128], other[128], parent[160];
	const char *argv[] = { ckpt_bin(), "track", "-t", NULL, "-D", dir, "--interval", "50ms", NULL };

	gm_start(&g, "64", "1000");
	snprintf(dir, sizeof(dir), "%s/busy", tmp);
	snprintf(other, sizeof(other), "%s/other", tmp);
	argv[3] = g.pid;
	cr_assert_eq(prog_spawn(&t, false, "/dev/null", argv), 0);
	wait_checkpoints(dir, 1);
	/* The same directory. */
	cr_assert_eq(run_ckpt(&r, "track", "-t", g.pid, "-D", dir, "--count", "1", NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "in use"), "%s", r.err);
	run_result_done(&r);
	/* The same process: its tracking is ours until we end. */
	cr_assert_eq(run_ckpt(&r, "track", "-t", g.pid, "-D", other, "--count", "1", NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "in use"), "%s", r.err);
	run_result_done(&r);
	snprintf(parent, sizeof(parent), "%s/latest", dir);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", g.pid, "-D", other, "--parent", parent,
			      "--leave-running", NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "in use"), "%s", r.err);
	run_result_done(&r);
	kill(t.pid, SIGTERM);
	cr_expect_eq(prog_wait(&t, 10000), 0);
	prog_kill(&g.p);
}

/*
 * A mapping saved by one checkpoint and unmapped before the next: the next
 * (a delta) says it is gone, so that restore does not find pages outside
 * every mapping. For ckpt dump --parent and for ckpt track -D.
 */
static void restore_ok(const char *path)
{
	struct run_result r;
	pid_t pid;

	if (getenv("CKPT_TEST_RESTORE") && !strcmp(getenv("CKPT_TEST_RESTORE"), "0"))
		return;
	cr_assert_eq(run_ckpt(&r, "restore", "-D", path, "--detach", "--leave-stopped", "--stdio",
			      "null", NULL), 0);
	cr_expect_eq(r.status, 0, "restore %s: %s", path, r.err);
	pid = atoi(r.out);
	if (pid > 0) {
		prog_track_pid(pid);
		kill(pid, SIGKILL);
	}
	run_result_done(&r);
}

Test(continuous, an_unmapped_mapping_is_gone_in_the_next_delta, .timeout = 60)
{
	struct prog dz;
	struct run_result r;
	char line[512], pid[16], d0[128], d1[128], dir[128], latest[160];
	unsigned long addr = 0;

	cr_assert_eq(prog_start(&dz, true, 0, "dirtier", NULL), 0);
	cr_assert_geq(prog_read_line(&dz, line, sizeof(line), 5000), 0);
	snprintf(pid, sizeof(pid), "%d", dz.pid);
	snprintf(d0, sizeof(d0), "%s/d0", tmp);
	snprintf(d1, sizeof(d1), "%s/d1", tmp);
	snprintf(dir, sizeof(dir), "%s/series", tmp);
	snprintf(latest, sizeof(latest), "%s/latest", dir);

	/* ckpt dump --parent */
	cr_assert_eq(write(dz.in_fd, "mmap 16\n", 8), 8);
	cr_assert_geq(prog_read_line(&dz, line, sizeof(line), 5000), 0);
	cr_assert_eq(sscanf(line, "mapped %lx", &addr), 1, "%s", line);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", d0, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	snprintf(line, sizeof(line), "munmap %lx 16\n", addr);
	cr_assert_eq(write(dz.in_fd, line, strlen(line)), (ssize_t)strlen(line));
	cr_assert_geq(prog_read_line(&dz, line, sizeof(line), 5000), 0);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", d1, "--parent", d0, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	{
		struct ckpt_chain *c;
		unsigned char page[PS];

		cr_assert_eq(ckpt_chain_open(d1, NULL, &c), 0);
		cr_expect_eq(ckpt_chain_read_page(c, addr, page), CKPT_PAGE_NONE,
			     "the unmapped page still resolves to data");
		ckpt_chain_close(c);
	}
	restore_ok(d1);

	/* ckpt track -D, continuing from d1's tracking into a new series, then a munmap */
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, "--count", "1", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(write(dz.in_fd, "mmap 8\n", 7), 7);
	cr_assert_geq(prog_read_line(&dz, line, sizeof(line), 5000), 0);
	cr_assert_eq(sscanf(line, "mapped %lx", &addr), 1, "%s", line);
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, "--count", "1", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	snprintf(line, sizeof(line), "munmap %lx 8\n", addr);
	cr_assert_eq(write(dz.in_fd, line, strlen(line)), (ssize_t)strlen(line));
	cr_assert_geq(prog_read_line(&dz, line, sizeof(line), 5000), 0);
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, "--count", "2", "--interval", "50ms",
			      NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	{
		struct ckpt_chain *c;
		unsigned char page[PS];

		cr_assert_eq(ckpt_chain_open(latest, NULL, &c), 0);
		cr_expect_eq(ckpt_chain_length(c), 4, "the chain was not continued");
		cr_expect_eq(ckpt_chain_read_page(c, addr, page), CKPT_PAGE_NONE,
			     "the unmapped page still resolves to data");
		ckpt_chain_close(c);
	}
	restore_ok(latest);
	prog_kill(&dz);
}

/*
 * ckpt dump --parent --leave-running of a process that keeps writing: the
 * written pages are copied while it runs, then the freeze copies what was
 * written meanwhile. Each delta must still hold exactly one generation.
 */
Test(continuous, dump_deltas_of_a_busy_process_hold_one_moment, .timeout = 120)
{
	enum { N = 8 };
	struct gm g;
	struct run_result r;
	struct sums s;
	char dir[N][128];
	uint64_t precopied = 0, last = 0;

	gm_start(&g, "4096", "200");
	for (int k = 0; k < N; k++) {
		json_object *o;

		snprintf(dir[k], sizeof(dir[k]), "%s/d%d", tmp, k);
		if (k)
			usleep(50000);
		cr_assert_eq(k ? run_ckpt(&r, "dump", "-t", g.pid, "-D", dir[k], "--parent", dir[k - 1],
					  "--leave-running", "--json", NULL)
			       : run_ckpt(&r, "dump", "-t", g.pid, "-D", dir[k], "--leave-running", "--json",
					  NULL), 0);
		cr_assert_eq(r.status, 0, "%s", r.err);
		o = json_tokener_parse(r.out);
		cr_assert_not_null(o, "%s", r.out);
		if (k)
			precopied += (uint64_t)num(o, "pages_precopied");
		json_object_put(o);
		run_result_done(&r);
	}
	cr_expect_gt(precopied, 0, "no delta copied pages before its freeze");
	usleep(50000); /* the last generation saved is logged after the dump's freeze */
	prog_kill(&g.p);
	sums_load(&s, g.log);
	for (int k = 0; k < N; k++) {
		uint64_t gen = verify_point(dir[k], &g, &s);

		cr_expect_geq(gen, last, "%s holds generation %llu, before the one before it", dir[k],
			      (unsigned long long)gen);
		last = gen;
		verify_restored(dir[k], &g, &s, gen);
	}
	free(s.v);
}

/*
 * Mappings made and unmapped between two checkpoints, in intervals busy
 * enough for the copy made before the freeze: what that copy took of a
 * mapping gone by the freeze must not stay in the delta (restore would find
 * pages outside every mapping). Every checkpoint restores.
 */
Test(continuous, a_mapping_made_and_unmapped_within_an_interval, .timeout = 120)
{
	struct prog ch;
	struct run_result r;
	char line[64], pid[16], dir[128], path[512];
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	cr_assert_eq(prog_start(&ch, false, 0, "churn", "3", "3", NULL), 0);
	cr_assert_geq(prog_read_line(&ch, line, sizeof(line), 5000), 0);
	snprintf(pid, sizeof(pid), "%d", ch.pid);
	snprintf(dir, sizeof(dir), "%s/churn", tmp);
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, "--interval", "50ms", "--count", "30",
			      NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_kill(&ch);
	d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "latest"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		restore_ok(path);
		n++;
	}
	closedir(d);
	cr_expect_eq(n, 30);
}

static size_t occurrences(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/*
 * What restore cannot recreate: said once, and the run stops at once with
 * status 4 (it used to skip every interval, repeating itself, and end with
 * status 0 and no checkpoint); with --allow-unrestorable it is taken.
 */
Test(continuous, unrestorable_ends_the_run, .timeout = 60)
{
	struct prog dz;
	struct run_result r;
	char line[256], pid[16], dir[128];
	struct stat st;
	double t0;

	cr_assert_eq(prog_start(&dz, true, 0, "dirtier", NULL), 0);
	cr_assert_geq(prog_read_line(&dz, line, sizeof(line), 5000), 0);
	snprintf(pid, sizeof(pid), "%d", dz.pid);
	snprintf(dir, sizeof(dir), "%s/skip", tmp);
	cr_assert_eq(write(dz.in_fd, "socket\n", 7), 7);
	cr_assert_geq(prog_read_line(&dz, line, sizeof(line), 5000), 0);
	t0 = mono_s();
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, "--interval", "100ms", "--count", "3",
			      NULL), 0);
	cr_expect_lt(mono_s() - t0, 5.0, "it went on for %.1f s", mono_s() - t0);
	cr_expect_eq(r.status, 4, "%s", r.err);
	cr_expect_eq(occurrences(r.err, "restore cannot recreate"), 1, "%s", r.err);
	cr_expect(strstr(r.err, "socket:["), "%s", r.err);
	cr_expect_neq(stat(dir, &st), 0, "a directory was left for no checkpoint");
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, "--interval", "100ms", "--count", "3",
			      "--json", NULL), 0);
	cr_expect_eq(r.status, 4, "%s", r.err);
	cr_expect(strstr(r.out, "\"reason\":\"unrestorable\"") && strstr(r.out, "\"checkpoints\":0"), "%s",
		  r.out);
	cr_expect(strstr(r.out, "\"exit_code\":4"), "%s", r.out);
	run_result_done(&r);
	/* Still alive, and not left tracked by the runs that took nothing. */
	cr_expect(proc_state(dz.pid) && proc_state(dz.pid) != 'Z');
	cr_assert_eq(run_ckpt(&r, "track", "--stop", "-t", pid, NULL), 0);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "not tracked"), "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, "--interval", "100ms", "--count", "2",
			      "--allow-unrestorable", "--json", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "\"checkpoints\":2"), "%s", r.out);
	run_result_done(&r);
	prog_kill(&dz);
}

/* Without --keep, a chain never grows longer than 256: the 257th is folded. */
Test(continuous, a_long_chain_is_cut, .timeout = 180)
{
	struct gm g;
	struct run_result r;
	json_object *o[300];
	char dir[128];
	size_t n;
	int64_t longest = 0, folded = 0;

	gm_start(&g, "64", "2000");
	snprintf(dir, sizeof(dir), "%s/long", tmp);
	cr_assert_eq(run_ckpt(&r, "track", "-t", g.pid, "-D", dir, "--interval", "5ms", "--count",
			      "260", "--json", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	n = parse_ndjson(r.out, o, 300);
	for (size_t i = 0; i < n; i++) {
		if (!str(o[i], "event")) {
			longest = num(o[i], "chain_length") > longest ? num(o[i], "chain_length") : longest;
			folded += num(o[i], "folded");
		}
		json_object_put(o[i]);
	}
	run_result_done(&r);
	cr_expect_eq(longest, 256);
	cr_expect_eq(folded, 1);
	usleep(20000);
	cr_expect_eq(verify_listing(dir, &g, NULL), 260);
	prog_kill(&g.p);
}
