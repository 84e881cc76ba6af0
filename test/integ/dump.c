/* SPDX-License-Identifier: MIT */
/*
 * ckpt dump and ckpt show against test/progs/dirtier: the images hold
 * exactly what the program had, each delta exactly what it wrote since its
 * parent; failures are clear and never kill the process.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/dump.h>
#include <ckpt/image.h>
#include <ckpt/inject.h>
#include <ckpt/log.h>
#include <ckpt/track.h>

#include "helpers/testutil.h"

#define PS 4096ULL
#define NREG 8

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "dump-test");
}

static void teardown(void)
{
	char first[200];

	snprintf(first, sizeof(first), "umount -q %s/small 2>/dev/null", tmp);
	suite_dir_remove(tmp, first);
}

TestSuite(dump, .init = setup, .fini = teardown);

struct dz {
	struct prog p;
	char pid[16];
};

static void dz_start(struct dz *d)
{
	char line[1024];

	cr_assert_eq(prog_start(&d->p, true, 0, "dirtier", NULL), 0);
	cr_assert_geq(prog_read_line(&d->p, line, sizeof(line), 5000), 0);
	snprintf(d->pid, sizeof(d->pid), "%d", d->p.pid);
}

static void dz_cmd(struct dz *d, char *ans, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void dz_cmd(struct dz *d, char *ans, size_t len, const char *fmt, ...)
{
	char line[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	cr_assert_eq(write(d->p.in_fd, line, strlen(line)), (ssize_t)strlen(line));
	cr_assert_geq(prog_read_line(&d->p, ans, len, 10000), 0, "no answer to %s", line);
}

static void dz_ok(struct dz *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dz_ok(struct dz *d, const char *fmt, ...)
{
	char line[4096], ans[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	dz_cmd(d, ans, sizeof(ans), "%s", line);
	cr_assert_str_eq(ans, "ok", "'%s' answered '%s'", line, ans);
}

static bool alive(pid_t pid)
{
	char st = proc_state(pid);

	return st && st != 'Z' && st != 'X';
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

struct sums {
	uint64_t base[NREG], n[NREG];
	uint64_t *h[NREG];
};

static void sums_load(struct sums *s, const char *path)
{
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f, "no sums file %s", path);
	for (int r = 0; r < NREG; r++) {
		cr_assert_eq(fread(&s->base[r], 8, 1, f), 1);
		cr_assert_eq(fread(&s->n[r], 8, 1, f), 1);
		s->h[r] = malloc(s->n[r] * 8);
		cr_assert_eq(fread(s->h[r], 8, s->n[r], f), s->n[r]);
	}
	fclose(f);
}

static void sums_done(struct sums *s)
{
	for (int r = 0; r < NREG; r++)
		free(s->h[r]);
}

/* Every page of every region, resolved through the chain, is what the program had. */
static void verify_chain(const char *dir, const struct sums *s)
{
	struct ckpt_chain *c = NULL;
	static unsigned char zero[PS], buf[PS];
	uint64_t zh = fnv(zero, PS);
	size_t bad = 0;

	cr_assert_eq(ckpt_chain_open(dir, NULL, &c), 0, "cannot open %s", dir);
	for (int r = 0; r < NREG; r++) {
		for (uint64_t i = 0; i < s->n[r]; i++) {
			uint64_t addr = s->base[r] + i * PS, got;
			int k = ckpt_chain_read_page(c, addr, buf);

			cr_assert_geq(k, 0, "read_page %#llx: %s", (unsigned long long)addr, strerror(-k));
			got = k == CKPT_PAGE_DATA ? fnv(buf, PS) : zh;
			if (got != s->h[r][i] && bad++ < 5)
				cr_expect_fail("%s: region %d page %llu: %s page differs", dir, r,
					       (unsigned long long)i, ckpt_page_kind_name(k));
		}
	}
	cr_expect_eq(bad, 0, "%zu pages differ in %s", bad, dir);
	ckpt_chain_close(c);
}

static int dump(struct dz *d, const char *dir, const char *parent, const char *extra, struct run_result *r)
{
	const char *argv[16];
	int n = 0;

	argv[n++] = ckpt_bin();
	argv[n++] = "dump";
	argv[n++] = "-t";
	argv[n++] = d->pid;
	argv[n++] = "-D";
	argv[n++] = dir;
	if (parent) {
		argv[n++] = "--parent";
		argv[n++] = parent;
	}
	if (extra)
		argv[n++] = extra;
	argv[n] = NULL;
	return run_argv(argv, r);
}

static void dump_ok(struct dz *d, const char *dir, const char *parent, const char *extra)
{
	struct run_result r;

	cr_assert_eq(dump(d, dir, parent, extra, &r), 0);
	cr_assert_eq(r.status, 0, "ckpt dump %s failed: %s", dir, r.err);
	run_result_done(&r);
}

Test(dump, full_checkpoint_holds_exactly_the_programs_memory)
{
	struct dz d;
	struct sums s;
	char dir[128], sf[128];

	dz_start(&d);
	dz_ok(&d, "fill heap 0 1 2 30");
	dz_ok(&d, "fill stack 5 6");
	dz_ok(&d, "fill file 7 63");
	dz_ok(&d, "fill shared 1 62");
	dz_ok(&d, "fill data 3");
	dz_ok(&d, "fill bss 4 44");
	dz_ok(&d, "fill thp 0 511 512 1023");
	dz_ok(&d, "fill big 100 16383");
	dz_ok(&d, "z heap 30");
	snprintf(sf, sizeof(sf), "%s/sums", tmp);
	dz_ok(&d, "sums %s", sf);
	snprintf(dir, sizeof(dir), "%s/full", tmp);
	dump_ok(&d, dir, NULL, "--leave-running");
	sums_load(&s, sf);
	verify_chain(dir, &s);
	sums_done(&s);
	cr_expect(alive(d.p.pid));
	prog_kill(&d.p);
}

/*
 * Pages of the regions listed in one checkpoint's index, by region, as
 * strings of 0/1 ('h': a HOLE only).
 */
static void index_pages(const char *dir, const struct sums *s, char **out)
{
	struct ckpt_image *img = NULL;
	const struct ckpt_image_index *idx;

	cr_assert_eq(ckpt_image_open(dir, NULL, &img), 0);
	idx = ckpt_image_index(img);
	for (int r = 0; r < NREG; r++) {
		out[r] = calloc(s->n[r] + 1, 1);
		memset(out[r], '0', s->n[r]);
		for (size_t e = 0; e < idx->nr_entries; e++) {
			const struct ckpt_image_entry *en = &idx->entries[e];

			for (uint64_t k = 0; k < en->nr_pages; k++) {
				uint64_t a = en->addr + k * PS;

				if (a >= s->base[r] && a < s->base[r] + s->n[r] * PS)
					out[r][(a - s->base[r]) / PS] = en->kind == CKPT_PAGE_HOLE ? 'h' : '1';
			}
		}
	}
	ckpt_image_close(img);
}

Test(dump, ten_deltas_hold_exactly_what_was_written, .timeout = 120)
{
	static const char *const wreg[] = { "heap", "stack", "file", "shared", "data", "bss", "thp", "big" };
	struct dz d;
	char dir[11][128], sf[11][128];
	struct sums s[11];

	dz_start(&d);
	srand(42);
	for (int k = 0; k <= 10; k++) {
		char *want[NREG];

		snprintf(dir[k], sizeof(dir[k]), "%s/%d", tmp, k);
		snprintf(sf[k], sizeof(sf[k]), "%s/sums%d", tmp, k);
		for (int r = 0; r < NREG; r++) {
			size_t n = r == 6 ? 1024 : r == 7 ? 16384 : 64;
			char cmd[4096];
			int len;

			want[r] = calloc(n + 1, 1);
			memset(want[r], '0', n);
			if (k == 0)
				continue;
			len = snprintf(cmd, sizeof(cmd), "%s %s", rand() % 2 ? "w" : "fill", wreg[r]);
			for (int j = 0; j < 1 + rand() % 6; j++) {
				size_t pg = (size_t)rand() % n;

				len += snprintf(cmd + len, sizeof(cmd) - (size_t)len, " %zu", pg);
				want[r][pg] = '1';
			}
			dz_ok(&d, "%s", cmd);

		}
		dz_ok(&d, "sums %s", sf[k]);
		dump_ok(&d, dir[k], k ? dir[k - 1] : NULL, "--leave-running");
		sums_load(&s[k], sf[k]);
		if (k > 0) {
			char *got[NREG];

			index_pages(dir[k], &s[k], got);
			for (int r = 0; r < NREG; r++) {
				/*
				 * Shared memory and the private mapping of a
				 * deleted file are taken whole by every delta
				 * (their uffd-wp bits do not see every change,
				 * test/integ/deltamiss.c); a private file mapping
				 * (data, bss) has a HOLE at every page with no
				 * content of its own. Elsewhere, a HOLE is a
				 * written page with no content: none here.
				 */
				bool whole = !strcmp(wreg[r], "shared") || !strcmp(wreg[r], "file");
				bool pfile = !strcmp(wreg[r], "data") || !strcmp(wreg[r], "bss");

				for (char *c = got[r]; *c; c++)
					if (*c == 'h' && (whole || pfile))
						*c = whole ? '1' : '0';
				if (whole)
					memset(want[r], '1', strlen(want[r]));
				cr_expect_str_eq(got[r], want[r], "delta %d, region %s", k, wreg[r]);
				free(got[r]);
			}
		}
		for (int r = 0; r < NREG; r++)
			free(want[r]);
	}
	/* Each checkpoint of the chain resolves to the memory of its moment. */
	for (int k = 0; k <= 10; k++) {
		verify_chain(dir[k], &s[k]);
		sums_done(&s[k]);
	}
	prog_kill(&d.p);
}

Test(dump, default_kills_after_the_images_are_safe)
{
	struct dz d;
	char dir[128];
	struct stat st;
	int status;

	dz_start(&d);
	snprintf(dir, sizeof(dir), "%s/k", tmp);
	dump_ok(&d, dir, NULL, NULL);
	cr_assert_eq(stat(dir, &st), 0);
	status = prog_wait(&d.p, 5000);
	cr_expect(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "the process was not killed: %d", status);
	prog_kill(&d.p);
}

Test(dump, leave_stopped)
{
	struct dz d;
	char dir[128];

	dz_start(&d);
	snprintf(dir, sizeof(dir), "%s/s", tmp);
	dump_ok(&d, dir, NULL, "--leave-stopped");
	for (int i = 0; i < 100 && proc_state(d.p.pid) != 'T'; i++)
		usleep(5000);
	cr_expect_eq(proc_state(d.p.pid), 'T');
	kill(d.p.pid, SIGCONT);
	prog_kill(&d.p);
}

Test(dump, refusals_name_the_cause_and_leave_nothing)
{
	struct dz a, b;
	struct run_result r;
	char da[128], db[128], dx[128], ans[128];
	struct stat st;

	dz_start(&a);
	dz_start(&b);
	snprintf(da, sizeof(da), "%s/a", tmp);
	snprintf(db, sizeof(db), "%s/b", tmp);
	snprintf(dx, sizeof(dx), "%s/x", tmp);
	dump_ok(&a, da, NULL, "--leave-running");

	/* The parent of another process. */
	cr_assert_eq(dump(&b, db, da, "--leave-running", &r), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "is a checkpoint of pid"), "%s", r.err);
	cr_expect_neq(stat(db, &st), 0);
	run_result_done(&r);

	/* A missing parent. */
	cr_assert_eq(dump(&a, db, "/nonexistent/ckpt", "--leave-running", &r), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "/nonexistent/ckpt"), "%s", r.err);
	run_result_done(&r);

	/* The target directory exists. */
	cr_assert_eq(dump(&a, da, NULL, "--leave-running", &r), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "exists"), "%s", r.err);
	run_result_done(&r);

	/* A socket: refused in the default (kill) mode, and the process lives. */
	dz_cmd(&b, ans, sizeof(ans), "socket");
	cr_assert(strncmp(ans, "socket ", 7) == 0);
	cr_assert_eq(dump(&b, dx, NULL, NULL, &r), 0);
	cr_expect_eq(r.status, 4, "a refusal exits with 4: %s", r.err);
	cr_expect(strstr(r.err, "socket:["), "%s", r.err);
	cr_expect(strstr(r.err, "not killed"), "%s", r.err);
	cr_expect_neq(stat(dx, &st), 0);
	run_result_done(&r);
	usleep(50000);
	cr_expect(alive(b.p.pid), "a process whose dump failed was killed");
	/* ... and with --allow-unrestorable it is dumped and listed. */
	cr_assert_eq(dump(&b, dx, NULL, "--allow-unrestorable", &r), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "not restorable: fd"), "%s", r.out);
	run_result_done(&r);
	prog_kill(&a.p);
	prog_kill(&b.p);
}

Test(dump, delta_needs_intact_tracking)
{
	struct dz d;
	struct run_result r;
	char d0[128], d1[128], d2[128], d3[128];
	struct ckpt_tracker *t;
	struct ckpt_inject *inj;
	struct ckpt_range_set set;

	dz_start(&d);
	snprintf(d0, sizeof(d0), "%s/0", tmp);
	snprintf(d1, sizeof(d1), "%s/1", tmp);
	snprintf(d2, sizeof(d2), "%s/2", tmp);
	snprintf(d3, sizeof(d3), "%s/3", tmp);
	dump_ok(&d, d0, NULL, "--leave-running");

	/* Another command harvests: the dirty set since d0 is gone. */
	cr_assert_eq(ckpt_track_attach(d.p.pid, NULL, &t), 0);
	cr_assert_eq(ckpt_inject_seize(d.p.pid, CKPT_INJECT_NO_XSTATE, &inj), 0);
	cr_assert_eq(ckpt_track_harvest(t, inj, &set, NULL), 0);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	ckpt_range_set_done(&set);
	ckpt_track_close(t);
	cr_assert_eq(dump(&d, d1, d0, "--leave-running", &r), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "harvested since"), "%s", r.err);
	run_result_done(&r);

	/* --auto-full says so and takes a full checkpoint. */
	{
		const char *argv[] = { ckpt_bin(), "dump", "-t", d.pid, "-D", d1, "--parent", d0,
				       "--leave-running", "--auto-full", "--json", NULL };
		json_object *o, *v;

		cr_assert_eq(run_argv(argv, &r), 0);
		cr_expect_eq(r.status, 0, "%s", r.err);
		o = json_tokener_parse(r.out);
		cr_assert_not_null(o, "%s", r.out);
		cr_assert(json_object_object_get_ex(o, "kind", &v));
		cr_expect_str_eq(json_object_get_string(v), "full");
		cr_expect(json_object_object_get_ex(o, "fallback", &v));
		json_object_put(o);
		run_result_done(&r);
	}

	/* The program closes the parked fd: tracking lost, a delta refused. */
	cr_assert_eq(ckpt_track_attach(d.p.pid, NULL, &t), 0);
	dz_ok(&d, "closefd %d", ckpt_track_parked_fd(t));
	ckpt_track_close(t);
	cr_assert_eq(dump(&d, d2, d1, "--leave-running", &r), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "lost") || strstr(r.err, "not tracked"), "%s", r.err);
	cr_expect(alive(d.p.pid));
	run_result_done(&r);

	/* A parent taken in kill mode records no tracking. */
	(void)d3;
	prog_kill(&d.p);
}

Test(dump, full_disk_fails_cleanly_and_keeps_the_process)
{
	struct dz d;
	struct run_result r;
	char small[128], dir[256], cmd[256];
	DIR *dh;
	struct dirent *de;
	int entries = 0;

	snprintf(small, sizeof(small), "%s/small", tmp);
	cr_assert_eq(mkdir(small, 0700), 0);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=2m tmpfs %s", small);
	cr_assert_eq(system(cmd), 0, "cannot mount a small tmpfs");
	dz_start(&d);
	/* 8 MiB of half-random pages: far more than 2 MiB compressed. */
	for (int chunk = 0; chunk < 16; chunk++) {
		char line[2048];
		int len = snprintf(line, sizeof(line), "fill big");

		for (int i = 0; i < 128; i++)
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %d", (chunk * 128 + i) * 4);
		dz_ok(&d, "%s", line);
	}
	snprintf(dir, sizeof(dir), "%s/ckpt", small);
	for (int mode = 0; mode < 2; mode++) {
		cr_assert_eq(dump(&d, dir, NULL, mode ? "--leave-running" : NULL, &r), 0);
		cr_expect_eq(r.status, 1, "status %d: %s", r.status, r.err);
		cr_expect(strstr(r.err, "No space left on device"), "%s", r.err);
		cr_expect(strstr(r.err, small), "the error does not name the file: %s", r.err);
		run_result_done(&r);
		usleep(50000);
		cr_expect(alive(d.p.pid), "mode %d: the process died", mode);
		/* Nothing that looks like a checkpoint, no temporary left behind. */
		dh = opendir(small);
		while ((de = readdir(dh)))
			if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
				entries++;
		closedir(dh);
		cr_expect_eq(entries, 0, "something was left in the full filesystem");
	}
	dz_ok(&d, "w heap 1");
	prog_kill(&d.p);
}

Test(dump, show_text_and_json)
{
	struct dz d;
	struct run_result r;
	char d0[128], d1[128];
	json_object *o, *v, *chain;

	dz_start(&d);
	snprintf(d0, sizeof(d0), "%s/0", tmp);
	snprintf(d1, sizeof(d1), "%s/1", tmp);
	dump_ok(&d, d0, NULL, "--leave-running");
	dz_ok(&d, "fill heap 9");
	dump_ok(&d, d1, d0, "--leave-running");

	cr_assert_eq(run_ckpt(&r, "show", d1, NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "delta") && strstr(r.out, "chain (2)") && strstr(r.out, "dirtier"),
		  "%s", r.out);
	run_result_done(&r);

	cr_assert_eq(run_ckpt(&r, "show", d1, "--json", "--pages", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	o = json_tokener_parse(r.out);
	cr_assert_not_null(o);
	cr_assert(json_object_object_get_ex(o, "chain", &chain));
	cr_expect_eq(json_object_array_length(chain), 2);
	cr_assert(json_object_object_get_ex(o, "process", &v));
	cr_assert(json_object_object_get_ex(o, "pages", &v));
	cr_expect_gt(json_object_array_length(v), 0);
	cr_assert(json_object_object_get_ex(o, "vma_pages", &v));
	json_object_put(o);
	run_result_done(&r);

	/* A corrupted document: a clear error naming the file. */
	{
		char path[256];
		int fd;

		snprintf(path, sizeof(path), "%s/process.json", d1);
		fd = open(path, O_WRONLY);
		cr_assert_geq(fd, 0);
		cr_assert_eq(pwrite(fd, "X", 1, 10), 1);
		close(fd);
	}
	cr_assert_eq(run_ckpt(&r, "show", d1, NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "process.json"), "%s", r.err);
	run_result_done(&r);
	prog_kill(&d.p);
}

/* ckpt_dump_run() moves its thread next to the target and pins the target's threads during the freeze. */
static void expect_affinity(pid_t tid, const cpu_set_t *want, const char *who, const char *when)
{
	cpu_set_t got;

	cr_assert_eq(sched_getaffinity(tid, sizeof(got), &got), 0);
	cr_expect(CPU_EQUAL(&got, want), "%s: the CPU affinity of %s was not given back (%d CPUs of %d)",
		  when, who, CPU_COUNT(&got), CPU_COUNT(want));
}

Test(dump, cpu_affinity_is_given_back_after_success_and_failure)
{
	struct ckpt_dump_stats st;
	struct dz d;
	cpu_set_t mine, target;
	char full[128], delta[128], refused[128], ans[128];
	int r;

	cr_assert_eq(sched_getaffinity(0, sizeof(mine), &mine), 0);
	if (CPU_COUNT(&mine) < 2)
		cr_skip_test("one CPU: nothing to move between");
	dz_start(&d);
	cr_assert_eq(sched_getaffinity(d.p.pid, sizeof(target), &target), 0);
	snprintf(full, sizeof(full), "%s/full", tmp);
	snprintf(delta, sizeof(delta), "%s/delta", tmp);
	snprintf(refused, sizeof(refused), "%s/refused", tmp);

	r = ckpt_dump_run(&(struct ckpt_dump_opts){ .pid = d.p.pid, .dir = full, .rundir = tmp,
						    .after = CKPT_DUMP_LEAVE_RUNNING }, &st);
	cr_assert_eq(r, 0, "full dump: %s", strerror(-r));
	ckpt_dump_stats_done(&st);
	expect_affinity(0, &mine, "the caller", "full dump");
	expect_affinity(d.p.pid, &target, "the target", "full dump");

	dz_ok(&d, "fill heap 1 2");
	r = ckpt_dump_run(&(struct ckpt_dump_opts){ .pid = d.p.pid, .dir = delta, .parent = full,
						    .rundir = tmp, .after = CKPT_DUMP_LEAVE_RUNNING }, &st);
	cr_assert_eq(r, 0, "delta: %s", strerror(-r));
	cr_expect(st.delta);
	ckpt_dump_stats_done(&st);
	expect_affinity(0, &mine, "the caller", "delta");
	expect_affinity(d.p.pid, &target, "the target", "delta");

	/* Refused in the freeze (a socket, kill mode): the process runs on, as it was. */
	dz_cmd(&d, ans, sizeof(ans), "socket");
	cr_assert(strncmp(ans, "socket ", 7) == 0);
	r = ckpt_dump_run(&(struct ckpt_dump_opts){ .pid = d.p.pid, .dir = refused, .rundir = tmp }, &st);
	cr_expect_eq(r, -EPERM, "refused dump: %s", strerror(-r));
	ckpt_dump_stats_done(&st);
	expect_affinity(0, &mine, "the caller", "refused dump");
	expect_affinity(d.p.pid, &target, "the target", "refused dump");
	usleep(50000);
	cr_expect(alive(d.p.pid), "a process whose dump failed was killed");
	prog_kill(&d.p);
}
