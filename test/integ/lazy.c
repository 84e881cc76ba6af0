/* SPDX-License-Identifier: MIT */
/*
 * ckpt restore --lazy and ckpt lazy-pages: a lazily restored process runs
 * at once and every page it reads is the checkpoint's: after fork (parent
 * and child), mremap, MADV_DONTNEED (zeros, as the program asked), munmap;
 * when the server is killed in the middle its faults wait, never read
 * zeros, and a new server takes over; one server serves several processes;
 * the pages can come from a page server, also across two network
 * namespaces. Real programs (python3, perl, bash) continue their output.
 * Page contents are compared with FNV-1a hashes the program computes of its
 * own memory (dirtier's "sums"), before the dump and after the restore.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/realprog.h"
#include "helpers/testutil.h"

#define PS 4096
#define BIG 7 /* dirtier's region index of "big" */

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "lazy-test");
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(lazy, .init = setup, .fini = teardown, .timeout = 180);

static char *path_in(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", tmp, name);
	return buf;
}

/* ---- talking to dirtier (through ckpt restore, whose own lines are JSON) ---- */

/* The last JSON line ckpt printed on the same pipe, of each event. */
static json_object *last_running, *last_lazy;

static void note_json(const char *line)
{
	json_object *j = json_tokener_parse(line), *e;

	cr_assert_not_null(j, "not JSON: %s", line);
	if (json_object_object_get_ex(j, "event", &e) && !strcmp(json_object_get_string(e), "running")) {
		json_object_put(last_running);
		last_running = j;
	} else if (json_object_object_get_ex(j, "event", &e) && !strcmp(json_object_get_string(e), "lazy")) {
		json_object_put(last_lazy);
		last_lazy = j;
	} else {
		json_object_put(j);
	}
}

/* The next line that is not ckpt's JSON, within @ms. */
static int next_line(struct prog *p, char *buf, size_t len, int ms)
{
	for (;;) {
		int r = prog_read_line(p, buf, len, ms);

		if (r < 0 || buf[0] != '{')
			return r;
		note_json(buf);
	}
}

static void ask(struct prog *p, char *ans, size_t len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void ask(struct prog *p, char *ans, size_t len, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	cr_assert_eq(write(p->in_fd, line, strlen(line)), (ssize_t)strlen(line));
	r = next_line(p, ans, len, 20000);
	cr_assert_geq(r, 0, "no answer to '%.*s': %s", (int)strlen(line) - 1, line, strerror(-r));
}

static void ask_ok(struct prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ask_ok(struct prog *p, const char *fmt, ...)
{
	char q[1024], a[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	ask(p, a, sizeof(a), "%s", q);
	cr_assert_str_eq(a, "ok", "'%s' answered '%s'", q, a);
}

static int64_t jint(json_object *j, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(j, key, &v), "no '%s' in %s", key, json_object_to_json_string(j));
	return json_object_get_int64(v);
}

static double jdouble(json_object *j, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(j, key, &v), "no '%s' in %s", key, json_object_to_json_string(j));
	return json_object_get_double(v);
}

static const char *jstr(json_object *j, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(j, key, &v), "no '%s' in %s", key, json_object_to_json_string(j));
	return json_object_get_string(v);
}

/* ---- sums ---- */

struct sums {
	uint64_t base[8], n[8];
	uint64_t *h[8];
};

static void sums_load(struct sums *s, const char *path)
{
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	for (int r = 0; r < 8; r++) {
		cr_assert_eq(fread(&s->base[r], 8, 1, f), 1u);
		cr_assert_eq(fread(&s->n[r], 8, 1, f), 1u);
		s->h[r] = calloc(s->n[r], 8);
		cr_assert_eq(fread(s->h[r], 8, s->n[r], f), s->n[r], "%s is short", path);
	}
	fclose(f);
}

static void sums_free(struct sums *s)
{
	for (int r = 0; r < 8; r++)
		free(s->h[r]);
}

static uint64_t zero_page_hash(void)
{
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < PS; i++)
		h = (h ^ 0) * 1099511628211ULL;
	return h;
}

/*
 * @got must equal @want page for page, except the pages of region @zr in
 * [@za, @za + @zn), which must be zero pages. Bases are compared but for
 * the regions in the bit mask @moved.
 */
static void sums_expect(const char *what, const char *want_path, const char *got_path, int moved, int zr,
			uint64_t za, uint64_t zn)
{
	static const char *const names[8] = { "heap", "stack", "file", "shared", "data", "bss", "thp", "big" };
	struct sums w, g;
	uint64_t zh = zero_page_hash();
	size_t bad = 0;

	sums_load(&w, want_path);
	sums_load(&g, got_path);
	for (int r = 0; r < 8; r++) {
		cr_assert_eq(w.n[r], g.n[r]);
		if (!(moved & (1 << r)))
			cr_expect_eq(w.base[r], g.base[r], "%s: %s moved", what, names[r]);
		for (uint64_t i = 0; i < w.n[r]; i++) {
			bool zero = r == zr && i >= za && i < za + zn;
			uint64_t want = zero ? zh : w.h[r][i];

			if (g.h[r][i] != want && bad++ < 5)
				cr_log_error("%s: %s page %lu is %s", what, names[r], (unsigned long)i,
					     g.h[r][i] == zh ? "zero" : "wrong");
		}
	}
	cr_expect_eq(bad, 0u, "%s: %zu pages differ from the checkpoint", what, bad);
	sums_free(&w);
	sums_free(&g);
}

/* ---- checkpoints ---- */

/*
 * dirtier with varied contents in most of its memory (big: @big_pages
 * pages; @big_cmd "altr": every other one written with zeros), its sums in
 * @sums, dumped (and killed) into @dir.
 */
static void make_checkpoint_as(const char *dir, const char *sums, unsigned int big_pages, const char *big_cmd)
{
	struct prog p;
	char line[1024], ps[16];
	struct run_result r;

	cr_assert_eq(prog_start(&p, true, 0, "dirtier", NULL), 0);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s", line);
	ask_ok(&p, "fillr heap 0 64");
	ask_ok(&p, "fillr bss 0 32");
	ask_ok(&p, "fillr data 3 9");
	ask_ok(&p, "fillr stack 0 16");
	ask_ok(&p, "fillr thp 0 512");
	ask_ok(&p, "%s big 0 %u", big_cmd, big_pages);
	ask_ok(&p, "fillr shared 0 8");
	ask_ok(&p, "sums %s", sums);
	snprintf(ps, sizeof(ps), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "dump failed: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);
}

static void make_checkpoint(const char *dir, const char *sums, unsigned int big_pages)
{
	make_checkpoint_as(dir, sums, big_pages, "fillr");
}

/* ---- restoring ---- */

/* `ckpt restore -D DIR --lazy --json EXTRA...`, waiting; the process's answers come on the same pipe. */
static pid_t restore_lazy(struct prog *rp, const char *dir, const char *const *extra)
{
	const char *argv[16] = { ckpt_bin(), "restore", "-D", dir, "--lazy", "--json", "--stdio", "inherit" };
	int n = 8;
	pid_t pid;

	for (; extra && *extra; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	json_object_put(last_running);
	last_running = NULL;
	cr_assert_eq(prog_spawn(rp, true, NULL, argv), 0);
	/* The "running" line comes first. */
	{
		char line[2048];
		int r = prog_read_line(rp, line, sizeof(line), 20000);

		cr_assert_geq(r, 0, "ckpt restore said nothing");
		cr_assert_eq(line[0], '{', "ckpt restore: %s", line);
		note_json(line);
	}
	cr_assert_not_null(last_running);
	cr_assert(json_object_get_boolean(json_object_object_get(last_running, "lazy")));
	cr_assert_gt(jint(last_running, "lazy_ranges"), 0);
	pid = (pid_t)jint(last_running, "pid");
	prog_track_pid(pid);
	return pid;
}

/* ckpt lazy-pages --socket SOCK --json EXTRA...; waits until it listens. */
static void server_start(struct prog *s, const char *sock, const char *const *extra)
{
	const char *argv[16] = { ckpt_bin(), "lazy-pages", "--socket", sock, "--json" };
	char line[1024];
	int n = 5;

	for (; extra && *extra; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	cr_assert_eq(prog_spawn(s, false, NULL, argv), 0);
	cr_assert_geq(prog_read_line(s, line, sizeof(line), 10000), 0, "lazy-pages did not start");
	cr_assert(strstr(line, "\"listening\""), "%s", line);
}

/* The server's "lazy" line for @pid, within @ms (NULL if none). */
static json_object *server_lazy_line(struct prog *s, pid_t pid, int ms)
{
	char line[2048];
	double deadline = mono_s() + ms / 1000.0;

	while (mono_s() < deadline) {
		json_object *j, *e, *p;

		if (prog_read_line(s, line, sizeof(line), 500) < 0)
			continue;
		j = json_tokener_parse(line);
		if (j && json_object_object_get_ex(j, "event", &e) && !strcmp(json_object_get_string(e), "lazy") &&
		    json_object_object_get_ex(j, "pid", &p) && json_object_get_int(p) == pid)
			return j;
		json_object_put(j);
	}
	return NULL;
}

static void stop_restored(struct prog *rp, pid_t pid)
{
	kill(pid, SIGKILL);
	prog_wait(rp, 10000);
	prog_kill(rp);
}

/* The server's statistics line (within 20 s, nothing else said meanwhile): every page in. */
static void wait_complete(struct prog *rp)
{
	for (double t = mono_s(); !last_lazy && mono_s() - t < 20;) {
		char line[4096];

		if (next_line(rp, line, sizeof(line), 500) >= 0)
			cr_assert_fail("unexpected output: %s", line);
	}
	cr_assert_not_null(last_lazy, "no statistics line");
	cr_expect_str_eq(jstr(last_lazy, "end"), "complete");
}

/* ---- every page, in place, with the background fill ---- */

Test(lazy, every_page_is_the_checkpoints)
{
	struct prog rp;
	char dir[128], s0[128], s1[128];
	pid_t pid;
	int status;

	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 16384);
	pid = restore_lazy(&rp, dir, NULL);
	ask_ok(&rp, "sums %s", path_in("s1", s1, sizeof(s1)));
	sums_expect("lazily restored", s0, s1, 0, -1, 0, 0);
	/* Served to the end: the statistics line, every page counted. */
	wait_complete(&rp);
	cr_expect_eq(jint(last_lazy, "pid"), pid);
	cr_expect_gt(jint(last_lazy, "pages_fault") + jint(last_lazy, "pages_fill"), 16384 + 512);
	cr_expect_gt(jint(last_lazy, "bytes"), (16384 + 512) * (int64_t)PS);
	cr_expect_gt(jdouble(last_lazy, "total_ms"), jdouble(last_lazy, "resume_ms"));
	/* After the end it runs on its own: its uffd is gone from its fds. */
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd | grep -q userfaultfd", pid);
		cr_expect_neq(system(cmd), 0, "pid %d still holds a userfaultfd", pid);
	}
	ask_ok(&rp, "sums %s", s1);
	sums_expect("after the server left", s0, s1, 0, -1, 0, 0);
	kill(pid, SIGTERM);
	status = prog_wait(&rp, 10000);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM, "status %#x", status);
	prog_kill(&rp);
}

/*
 * Data and zero pages alternate in "big" (a run of the checkpoint per
 * page): restore skips the runs of a lazy mapping together, and writes
 * only what must be there before it runs (the written pages of the
 * program's .data, its rseq area); every page, eager or served, is the
 * checkpoint's.
 */
Test(lazy, alternating_data_and_zero_pages_every_page_is_the_checkpoints)
{
	struct prog rp;
	char dir[128], s0[128], s1[128];
	pid_t pid;

	make_checkpoint_as(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 16384, "altr");
	pid = restore_lazy(&rp, dir, NULL);
	/* big's 8192 data pages are served, not written before it runs. */
	cr_expect_lt(jint(last_running, "pages_data"), 4096, "%s", json_object_to_json_string(last_running));
	cr_expect_gt(jint(last_running, "pages_data"), 0, "no eager page: .data and rseq are eager");
	ask_ok(&rp, "sums %s", path_in("s1", s1, sizeof(s1)));
	sums_expect("lazily restored", s0, s1, 0, -1, 0, 0);
	wait_complete(&rp);
	cr_expect_geq(jint(last_lazy, "pages_zero"), 8192);
	ask_ok(&rp, "sums %s", s1);
	sums_expect("after the server left", s0, s1, 0, -1, 0, 0);
	stop_restored(&rp, pid);
}

/*
 * The server serves from the page source restore opened and judged, and
 * its fill thread opens its own only once it runs: a checkpoint put in
 * the place of the one restored meanwhile (a swap of directories) is
 * refused by that check, the fill reads through the fault source, and
 * every page is still the restored checkpoint's.
 */
Test(lazy, checkpoint_swapped_after_it_runs_every_page_is_the_restored_ones)
{
	struct prog rp;
	char dir[128], other[128], old[128], s0[128], so[128], s1[128];
	pid_t pid;

	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 16384);
	make_checkpoint_as(path_in("c2", other, sizeof(other)), path_in("so", so, sizeof(so)), 16384, "altr");
	pid = restore_lazy(&rp, dir, NULL);
	cr_assert_eq(rename(dir, path_in("c.old", old, sizeof(old))), 0);
	cr_assert_eq(rename(other, dir), 0);
	ask_ok(&rp, "sums %s", path_in("s1", s1, sizeof(s1)));
	sums_expect("lazily restored, its checkpoint swapped", s0, s1, 0, -1, 0, 0);
	wait_complete(&rp);
	ask_ok(&rp, "sums %s", s1);
	sums_expect("after the server left, its checkpoint swapped", s0, s1, 0, -1, 0, 0);
	stop_restored(&rp, pid);
}

/* ---- faults only (a server with no background fill) ---- */

static void restore_no_fill(struct prog *srv, struct prog *rp, const char *dir, pid_t *ret_pid)
{
	const char *no_fill[] = { "--no-fill", NULL };
	char sock[128];
	const char *extra[] = { "--lazy-socket", sock, NULL };

	path_in("lazy.sock", sock, sizeof(sock));
	server_start(srv, sock, no_fill);
	*ret_pid = restore_lazy(rp, dir, extra);
}

Test(lazy, fork_right_after_restore_parent_and_child_see_every_page)
{
	struct prog srv, rp;
	char dir[128], s0[128], sp[128], sc[128];
	json_object *j;
	pid_t pid;

	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 4096);
	restore_no_fill(&srv, &rp, dir, &pid);
	/* Nothing was copied yet: the child gets its pages through its own uffd. */
	ask_ok(&rp, "forksums %s %s", path_in("sp", sp, sizeof(sp)), path_in("sc", sc, sizeof(sc)));
	sums_expect("parent", s0, sp, 0, -1, 0, 0);
	sums_expect("child", s0, sc, 0, -1, 0, 0);
	/* The child exited: the server saw it go. */
	stop_restored(&rp, pid);
	j = server_lazy_line(&srv, pid, 10000);
	cr_assert_not_null(j, "no statistics for pid %d", pid);
	cr_expect_str_eq(jstr(j, "end"), "exited");
	cr_expect_gt(jint(j, "faults"), 0);
	cr_expect_eq(jint(j, "pages_fill"), 0);
	json_object_put(j);
	prog_kill(&srv);
}

Test(lazy, mremap_moves_the_pages_with_it)
{
	struct prog srv, rp;
	char dir[128], s0[128], s1[128], ans[4096];
	pid_t pid;

	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 16384);
	restore_no_fill(&srv, &rp, dir, &pid);
	ask_ok(&rp, "touch big 0 100"); /* some pages in before the move, most not */
	ask(&rp, ans, sizeof(ans), "move big");
	cr_assert(strncmp(ans, "moved 0x", 8) == 0, "%s", ans);
	ask_ok(&rp, "sums %s", path_in("s1", s1, sizeof(s1)));
	sums_expect("after mremap", s0, s1, 1 << BIG, -1, 0, 0);
	/* Moved twice, and heap too. */
	ask(&rp, ans, sizeof(ans), "move heap");
	ask(&rp, ans, sizeof(ans), "move big");
	ask_ok(&rp, "sums %s", s1);
	sums_expect("after two moves", s0, s1, 1 << BIG | 1 << 0, -1, 0, 0);
	stop_restored(&rp, pid);
	prog_kill(&srv);
}

Test(lazy, madv_dontneed_reads_zeros_not_the_images)
{
	struct prog srv, rp;
	char dir[128], s0[128], s1[128];
	pid_t pid;

	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 4096);
	restore_no_fill(&srv, &rp, dir, &pid);
	/* Pages 100-109 read first (present), 110-139 never: all dropped. */
	ask_ok(&rp, "touch big 100 10");
	{
		char q[512];
		int n = snprintf(q, sizeof(q), "z big");

		for (int i = 100; i < 140; i++)
			n += snprintf(q + n, sizeof(q) - (size_t)n, " %d", i);
		ask_ok(&rp, "%s", q);
	}
	ask_ok(&rp, "sums %s", path_in("s1", s1, sizeof(s1)));
	sums_expect("after MADV_DONTNEED", s0, s1, 0, BIG, 100, 40);
	stop_restored(&rp, pid);
	prog_kill(&srv);
}

Test(lazy, munmap_and_a_new_mapping_in_its_place)
{
	struct prog rp;
	char dir[128], s0[128], s1[128];
	pid_t pid;

	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 16384);
	/* With the background fill: it must not copy into what replaced the range. */
	pid = restore_lazy(&rp, dir, NULL);
	ask_ok(&rp, "punch big 5000 3000");
	ask_ok(&rp, "sums %s", path_in("s1", s1, sizeof(s1)));
	sums_expect("after munmap", s0, s1, 0, BIG, 5000, 3000);
	for (double t = mono_s(); !last_lazy && mono_s() - t < 20;) {
		char line[4096];

		(void)next_line(&rp, line, sizeof(line), 500);
	}
	cr_assert_not_null(last_lazy);
	cr_expect_str_eq(jstr(last_lazy, "end"), "complete");
	ask_ok(&rp, "sums %s", s1);
	sums_expect("after munmap, complete", s0, s1, 0, BIG, 5000, 3000);
	stop_restored(&rp, pid);
}

/* ---- a server killed in the middle ---- */

Test(lazy, killed_server_faults_wait_and_a_new_server_takes_over)
{
	struct prog srv, rp, att;
	char dir[128], s0[128], s1[128], ans[4096], ps[16];
	json_object *j;
	pid_t pid;

	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 16384);
	restore_no_fill(&srv, &rp, dir, &pid);
	ask_ok(&rp, "touch big 0 3000");
	ask_ok(&rp, "fillr heap 0 4"); /* written after the restore: must survive the takeover */
	/* Dropped before they were ever served: zero after the takeover too (the record says so). */
	ask_ok(&rp, "z big 5000 5001 5002 5003 5004 5005 5006 5007 5008 5009");
	/*
	 * A fault served after them proves the server has recorded them (the
	 * window between reading the event and the record is documented).
	 */
	ask_ok(&rp, "touch big 6000 1");
	prog_kill(&srv); /* SIGKILL */
	/* Its faults wait: no answer, no zero page read. */
	cr_assert_eq(write(rp.in_fd, "sums ", 5), 5);
	path_in("s1", s1, sizeof(s1));
	cr_assert_eq(write(rp.in_fd, s1, strlen(s1)), (ssize_t)strlen(s1));
	cr_assert_eq(write(rp.in_fd, "\n", 1), 1);
	cr_assert_eq(next_line(&rp, ans, sizeof(ans), 1000), -ETIMEDOUT, "it answered '%s' with no server", ans);
	cr_assert_neq(proc_state(pid), 0, "pid %d died", pid);
	/* A new server takes over from the record. */
	snprintf(ps, sizeof(ps), "%d", pid);
	{
		const char *argv[] = { ckpt_bin(), "lazy-pages", "--attach", ps, "--json", NULL };

		cr_assert_eq(prog_spawn(&att, false, NULL, argv), 0);
	}
	cr_assert_geq(next_line(&rp, ans, sizeof(ans), 20000), 0, "no answer after the takeover");
	cr_assert_str_eq(ans, "ok");
	j = server_lazy_line(&att, pid, 30000);
	cr_assert_not_null(j, "the new server did not finish");
	cr_expect_str_eq(jstr(j, "end"), "complete");
	json_object_put(j);
	cr_expect_eq(prog_wait(&att, 10000), 0);
	/* Heap pages 0-3 were rewritten after the restore: the new server kept them. */
	{
		struct sums w, g;

		sums_load(&w, s0);
		sums_load(&g, s1);
		for (int i = 0; i < 4; i++)
			cr_expect_neq(w.h[0][i], g.h[0][i], "heap page %d lost what was written after the restore", i);
		for (uint64_t i = 4; i < w.n[0]; i++)
			cr_expect_eq(w.h[0][i], g.h[0][i], "heap page %lu", (unsigned long)i);
		for (int r = 1; r < 8; r++)
			for (uint64_t i = 0; i < w.n[r]; i++) {
				bool dropped = r == BIG && i >= 5000 && i < 5010;

				cr_expect_eq(g.h[r][i], dropped ? zero_page_hash() : w.h[r][i],
					     "region %d page %lu differs", r, (unsigned long)i);
			}
		sums_free(&w);
		sums_free(&g);
	}
	stop_restored(&rp, pid);
}

Test(lazy, one_server_serves_several_processes)
{
	struct prog srv, rp[3];
	char dir[128], s0[128], s[3][128], sock[128];
	const char *extra[] = { "--lazy-socket", sock, NULL };
	pid_t pid[3];

	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 8192);
	server_start(&srv, path_in("lazy.sock", sock, sizeof(sock)), NULL);
	for (int i = 0; i < 3; i++)
		pid[i] = restore_lazy(&rp[i], dir, extra);
	for (int i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "s%d", i + 1);
		ask_ok(&rp[i], "sums %s", path_in(name, s[i], sizeof(s[i])));
		sums_expect(name, s0, s[i], 0, -1, 0, 0);
	}
	/* The three finish in any order: one "lazy" line each. */
	{
		json_object *got[3] = { NULL, NULL, NULL };
		double deadline = mono_s() + 30;
		int left = 3;

		while (left && mono_s() < deadline) {
			char line[2048];
			json_object *j;
			json_object *e, *p;

			if (prog_read_line(&srv, line, sizeof(line), 500) < 0)
				continue;
			j = json_tokener_parse(line);
			if (!j || !json_object_object_get_ex(j, "event", &e) ||
			    strcmp(json_object_get_string(e), "lazy") || !json_object_object_get_ex(j, "pid", &p)) {
				json_object_put(j);
				continue;
			}
			for (int i = 0; i < 3; i++)
				if (!got[i] && json_object_get_int(p) == pid[i]) {
					got[i] = json_object_get(j);
					left--;
				}
			json_object_put(j);
		}
		for (int i = 0; i < 3; i++) {
			cr_assert_not_null(got[i], "no statistics for pid %d", pid[i]);
			cr_expect_str_eq(jstr(got[i], "end"), "complete");
			json_object_put(got[i]);
			stop_restored(&rp[i], pid[i]);
		}
	}
	/* SIGTERM with nothing left to serve: it ends, status 0. */
	kill(srv.pid, SIGTERM);
	cr_expect_eq(prog_wait(&srv, 10000), 0);
	cr_expect_neq(access(sock, F_OK), 0, "the socket is left behind");
}

/* ---- bad input ---- */

Test(lazy, no_server_no_record_clear_errors)
{
	struct run_result r;
	char dir[128], s0[128], sock[128];

	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 16);
	path_in("nobody.sock", sock, sizeof(sock));
	cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--lazy", "--lazy-socket", sock, NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, sock) && strstr(r.err, "No such file"), "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "lazy-pages", "--attach", "1", NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "no lazy restore to take over"), "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--lazy-socket", sock, NULL), 0);
	cr_expect_eq(r.status, 2, "--lazy-socket without --lazy: %s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "lazy-pages", NULL), 0);
	cr_expect_eq(r.status, 2);
	run_result_done(&r);
}

/* ---- real programs ---- */

/*
 * Run @argv with stdout into a file, dump it (full, then a delta), kill
 * it, restore the delta lazily (detached): the file reads as one
 * uninterrupted run, and the statistics show that most of its memory came
 * in after it was running.
 */
static void real_program(const char *name, const char *const *argv)
{
	struct prog p, ref;
	char out[128], refout[128], d0[128], d1[128], log[128];
	struct run_result r;
	json_object *stats = NULL;
	pid_t rpid;

	snprintf(out, sizeof(out), "%s/%s.out", tmp, name);
	snprintf(refout, sizeof(refout), "%s/%s.ref", tmp, name);
	snprintf(d0, sizeof(d0), "%s/%s.0", tmp, name);
	snprintf(d1, sizeof(d1), "%s/%s.1", tmp, name);
	snprintf(log, sizeof(log), "%s/%s.lazylog", tmp, name);
	cr_assert_eq(prog_spawn(&ref, false, refout, argv), 0);
	cr_assert_eq(prog_spawn(&p, false, out, argv), 0);
	wait_lines(out, 20);
	{
		char ps[16];

		snprintf(ps, sizeof(ps), "%d", p.pid);
		cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", d0, "--leave-running", NULL), 0);
		cr_assert_eq(r.status, 0, "%s", r.err);
		run_result_done(&r);
		wait_lines(out, 40);
		cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", d1, "--parent", d0, "--leave-running", NULL), 0);
		cr_assert_eq(r.status, 0, "%s", r.err);
		run_result_done(&r);
	}
	wait_lines(out, 60);
	prog_kill(&p);
	/* Its stderr is the test's: not inherited (our stderr is a pipe run_ckpt reads to the end). */
	cr_assert_eq(run_ckpt(&r, "restore", "-D", d1, "--lazy", "--detach", "--json", "--lazy-log", log, "--stdio",
			      "null", NULL),
		     0);
	cr_assert_eq(r.status, 0, "lazy restore of %s failed: %s", name, r.err);
	{
		json_object *j = json_tokener_parse(r.out);

		cr_assert_not_null(j, "%s", r.out);
		rpid = (pid_t)jint(j, "pid");
		json_object_put(j);
	}
	run_result_done(&r);
	prog_track_pid(rpid);
	wait_lines(out, 100);
	wait_lines(refout, 120);
	/* The detached server logs its statistics when every page is in. */
	for (double t0 = mono_s(); !stats && mono_s() - t0 < 20; usleep(20000)) {
		FILE *f = fopen(log, "r");
		char line[2048];

		while (f && fgets(line, sizeof(line), f))
			if (line[0] == '{' && strstr(line, "\"lazy\""))
				stats = json_tokener_parse(line);
		if (f)
			fclose(f);
	}
	kill(rpid, SIGKILL);
	/* A loaded machine may have slowed the reference down: let it catch up. */
	wait_lines(refout, count_lines(out));
	prog_kill(&ref);
	cr_assert_not_null(stats, "no statistics in %s", log);
	cr_expect_str_eq(jstr(stats, "end"), "complete");
	cr_expect_gt(jint(stats, "pages_fault") + jint(stats, "pages_fill"), jint(stats, "eager_pages"),
		     "%s: most pages should come after it runs: %s", name, json_object_to_json_string(stats));
	cr_expect_gt(jdouble(stats, "total_ms"), jdouble(stats, "resume_ms"));
	json_object_put(stats);
	expect_same_output(name, out, refout, 100);
}

Test(lazy, python3)
{
	struct real_prog rp;
	char fifo[128];

	if (!real_prog_argv("python3", path_in("python3.fifo", fifo, sizeof(fifo)), &rp))
		cr_skip_test("no %s", rp.argv[0]);
	real_program("python3", rp.argv);
}

Test(lazy, perl)
{
	struct real_prog rp;
	char fifo[128];

	if (!real_prog_argv("perl", path_in("perl.fifo", fifo, sizeof(fifo)), &rp))
		cr_skip_test("no %s", rp.argv[0]);
	real_program("perl", rp.argv);
}

Test(lazy, bash)
{
	struct real_prog rp;
	char fifo[128];

	if (!real_prog_argv("bash", path_in("bash.fifo", fifo, sizeof(fifo)), &rp))
		cr_skip_test("no %s", rp.argv[0]);
	real_program("bash", rp.argv);
}

/* ---- pages from a page server ---- */

/* ckpt page-server -D DIR --listen LISTEN --json EXTRA... (under ip netns exec NS): its URL. */
static void page_server_start(struct prog *s, const char *netns, const char *dir, const char *listen,
			      const char *token, char *url, size_t len)
{
	const char *argv[16];
	char line[1024];
	json_object *j;
	int n;

	n = page_server_argv(argv, netns, dir, listen);
	if (token) {
		argv[n++] = "--token-file";
		argv[n++] = token;
	}
	argv[n] = NULL;
	cr_assert_eq(prog_spawn(s, false, NULL, argv), 0);
	cr_assert_geq(prog_read_line(s, line, sizeof(line), 10000), 0, "the page server did not start");
	j = json_tokener_parse(line);
	cr_assert_not_null(j, "%s", line);
	snprintf(url, len, "tcp://%s", jstr(j, "address"));
	json_object_put(j);
}

Test(lazy, from_a_page_server_with_no_local_images_lazily_and_eagerly)
{
	struct prog ps, rp;
	char dir[128], s0[128], s1[128], url[128];
	const char *argv[] = { ckpt_bin(), "restore", "--from", url, "--lazy", "--json", "--stdio", "inherit", NULL };
	pid_t pid;

	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 8192);
	page_server_start(&ps, NULL, dir, "127.0.0.1:0", NULL, url, sizeof(url));
	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	{
		char line[4096];

		cr_assert_geq(prog_read_line(&rp, line, sizeof(line), 20000), 0);
		note_json(line);
	}
	cr_assert_not_null(last_running, "no running line");
	pid = (pid_t)jint(last_running, "pid");
	prog_track_pid(pid);
	cr_expect_str_eq(jstr(last_running, "from"), url);
	ask_ok(&rp, "sums %s", path_in("s1", s1, sizeof(s1)));
	sums_expect("from a page server", s0, s1, 0, -1, 0, 0);
	for (double t = mono_s(); !last_lazy && mono_s() - t < 20;) {
		char line[4096];

		(void)next_line(&rp, line, sizeof(line), 500);
	}
	cr_assert_not_null(last_lazy);
	cr_expect_str_eq(jstr(last_lazy, "end"), "complete");
	stop_restored(&rp, pid);
	/* And eagerly: every page over the network before it runs. */
	{
		const char *eager[] = { ckpt_bin(), "restore", "--from", url, "--json", "--stdio", "inherit", NULL };

		json_object_put(last_running);
		last_running = NULL;
		cr_assert_eq(prog_spawn(&rp, true, NULL, eager), 0);
		ask_ok(&rp, "sums %s", s1);
		cr_assert_not_null(last_running);
		cr_expect(!json_object_get_boolean(json_object_object_get(last_running, "lazy")));
		cr_expect_gt(jint(last_running, "pages_data"), 8192);
		pid = (pid_t)jint(last_running, "pid");
		prog_track_pid(pid);
		sums_expect("eagerly from a page server", s0, s1, 0, -1, 0, 0);
		stop_restored(&rp, pid);
	}
	prog_kill(&ps);
}

static struct netns_pair ns;

static void netns_teardown(void)
{
	netns_pair_destroy(&ns);
	teardown();
}

TestSuite(lazy_netns, .init = setup, .fini = netns_teardown, .timeout = 180);

Test(lazy_netns, across_a_veth_pair_with_a_token)
{
	struct prog ps, rp;
	char dir[128], s0[128], s1[128], url[128], listen[64], token[128], err[512];
	const char *argv[] = { "ip", "netns", "exec", ns.b, ckpt_bin(), "restore", "--from", url, "--lazy",
			       "--token-file", token, "--json", "--stdio", "inherit", NULL };
	FILE *f;
	pid_t pid;

	if (netns_pair_create(&ns, "ckpl", err, sizeof(err)) < 0)
		cr_skip_test("cannot create network namespaces: %s", err);
	f = fopen(path_in("token", token, sizeof(token)), "w");
	cr_assert_not_null(f);
	fputs("the secret both machines hold\n", f);
	fclose(f);
	chmod(token, 0600);
	make_checkpoint(path_in("c", dir, sizeof(dir)), path_in("s0", s0, sizeof(s0)), 8192);
	snprintf(listen, sizeof(listen), "%s:0", ns.addr_a);
	page_server_start(&ps, ns.a, dir, listen, token, url, sizeof(url));
	cr_assert(strstr(url, ns.addr_a), "%s", url);
	/* Without the token the destination refuses to talk to a non-loopback server. */
	{
		const char *bad[] = { "ip", "netns", "exec", ns.b, ckpt_bin(), "restore", "--from", url, "--lazy", NULL };
		struct run_result r;

		cr_assert_eq(run_argv(bad, &r), 0);
		cr_expect_eq(r.status, 1, "%s", r.err);
		cr_expect(strstr(r.err, "token"), "%s", r.err);
		run_result_done(&r);
	}
	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	{
		char line[4096];

		cr_assert_geq(prog_read_line(&rp, line, sizeof(line), 20000), 0);
		note_json(line);
	}
	cr_assert_not_null(last_running);
	pid = (pid_t)jint(last_running, "pid");
	prog_track_pid(pid);
	ask_ok(&rp, "sums %s", path_in("s1", s1, sizeof(s1)));
	sums_expect("across two namespaces", s0, s1, 0, -1, 0, 0);
	for (double t = mono_s(); !last_lazy && mono_s() - t < 30;) {
		char line[4096];

		(void)next_line(&rp, line, sizeof(line), 500);
	}
	cr_assert_not_null(last_lazy);
	cr_expect_str_eq(jstr(last_lazy, "end"), "complete");
	stop_restored(&rp, pid);
	prog_kill(&ps);
}
