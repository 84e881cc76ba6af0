// SPDX-License-Identifier: MIT
/*
 * Private memory a tree still shares copy-on-write since fork: saved once,
 * by the parent (CKPT_PAGE_INHERIT in each child's checkpoint), left shared
 * in the running processes by the dump, and restored byte for byte: eager,
 * lazy, as a delta whose parent process wrote the pages since, folded, and
 * under load. test/progs/cowtree checks every process's memory (a sum of
 * all of it) before the dump and after the restore.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/testutil.h"

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "treecow");
}

static void teardown(void)
{
	load_stop();
	suite_dir_remove(tmp, NULL);
}

TestSuite(tree_cow, .init = setup, .fini = teardown, .timeout = 240);

#define MIB 32
#define KIDS 3
#define PAGES (MIB * 256)

static pid_t start(struct prog *p)
{
	char line[128], mib[16], kids[16];
	int pid = 0;

	snprintf(mib, sizeof(mib), "%d", MIB);
	snprintf(kids, sizeof(kids), "%d", KIDS);
	cr_assert_eq(prog_start(p, true, 0, "cowtree", mib, kids, NULL), 0);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 20000), 0, "no pid line");
	cr_assert_eq(sscanf(line, "pid %d", &pid), 1, "got '%s'", line);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 20000), 0);
	cr_assert_str_eq(line, "ready");
	return pid;
}

/* Send @cmd; read the answer up to "done" (check) or the one line, into @out. */
static void ask(struct prog *p, const char *cmd, char *out, size_t len)
{
	char line[256];

	out[0] = 0;
	prog_send_line(p, cmd);
	for (;;) {
		cr_assert_geq(prog_read_line(p, line, sizeof(line), 30000), 0, "no answer to '%s'", cmd);
		if (strcmp(line, "done") == 0 || strcmp(cmd, "check\n"))
			break;
		cr_assert_lt(strlen(out) + strlen(line) + 2, len);
		strcat(strcat(out, line), "\n");
	}
}

/* Dump the tree of @pid into @dir (options @mode, may be NULL; --parent @parent); its JSON stats. */
static json_object *dump(pid_t pid, const char *dir, const char *parent, const char *mode)
{
	struct run_result r;
	char pid_s[16];
	const char *argv[12] = { ckpt_bin(), "dump", "-t", pid_s, "-D", dir, "--json" };
	int n = 7;
	json_object *o;

	snprintf(pid_s, sizeof(pid_s), "%d", pid);
	if (parent) {
		argv[n++] = "--parent";
		argv[n++] = parent;
	}
	if (mode)
		argv[n++] = mode;
	argv[n] = NULL;
	cr_assert_eq(run_argv(argv, &r), 0);
	cr_assert_eq(r.status, 0, "dump %s: %s", dir, r.err);
	o = json_tokener_parse(r.out);
	cr_assert_not_null(o, "dump %s: not JSON: %s", dir, r.out);
	run_result_done(&r);
	return o;
}

static uint64_t get_u64(json_object *o, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key, json_object_to_json_string(o));
	return (uint64_t)json_object_get_int64(v);
}

/* The children of @pid, from /proc. */
static size_t children(pid_t pid, pid_t *v, size_t max)
{
	char path[64];
	size_t n = 0;
	FILE *f;
	int kid;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (n < max && fscanf(f, "%d", &kid) == 1)
		v[n++] = kid;
	fclose(f);
	return n;
}

/* Private_Dirty of @pid, KiB: what only it maps. */
static long private_dirty_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Private_Dirty: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static off_t file_size(const char *dir, const char *name)
{
	char path[256];
	FILE *f;
	long sz;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fclose(f);
	return sz;
}

static void kill_tree(struct prog *p, pid_t pid)
{
	pid_t v[32];
	size_t n = children(pid, v, 32);

	for (size_t i = 0; i < n; i++)
		kill(v[i], SIGKILL);
	prog_kill(p);
	for (size_t i = 0; i < n; i++)
		for (int t = 0; t < 1000 && kill(v[i], 0) == 0; t++)
			usleep(10000);
	for (int t = 0; t < 1000 && kill(pid, 0) == 0; t++)
		usleep(10000);
}

/* Restore @dir with @extra (may be NULL): every process's sum must be @want; then the tree ends. */
static void restore_expect(const char *dir, const char *extra, const char *want, const char *what)
{
	const char *argv[10] = { ckpt_bin(), "restore", "-D", dir, "--stdio", "inherit", extra, NULL };
	struct prog rp;
	char got[2048];

	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	ask(&rp, "check\n", got, sizeof(got));
	cr_expect_str_eq(got, want, "%s: the restored tree's memory differs", what);
	close(rp.in_fd); /* the root ends, and its children with it */
	rp.in_fd = -1;
	cr_expect_eq(prog_wait(&rp, 20000), 0, "%s: ckpt restore did not exit 0", what);
	prog_kill(&rp);
	/* Every process gone, and reaped by init (slow), before the next restore wants the pids again. */
	for (const char *l = got; *l; l = strchr(l, '\n') + 1) {
		int pid = atoi(l);

		for (int t = 0; t < 1000 && kill(pid, 0) == 0; t++)
			usleep(10000);
	}
}

/*
 * A --leave-running dump saves the shared pages once and leaves them
 * shared; a kill-mode dump (the frozen stream) too; both restore, eagerly
 * and lazily, to the same memory.
 */
static void saved_once(bool load)
{
	struct prog p;
	char d1[128], d2[128], before[2048], after[2048], sub[160];
	pid_t pid, kid[KIDS];
	long dirty[KIDS];
	json_object *st;

	if (load)
		load_start();
	pid = start(&p);
	cr_assert_eq(children(pid, kid, KIDS), KIDS);
	for (int i = 0; i < KIDS; i++)
		dirty[i] = private_dirty_kib(kid[i]);
	ask(&p, "check\n", before, sizeof(before));

	snprintf(d1, sizeof(d1), "%s/running%s", tmp, load ? "-load" : "");
	st = dump(pid, d1, NULL, "--leave-running");
	/* Each child has all but its own 4 pages (and what else it wrote since fork) of the parent's. */
	cr_expect_geq(get_u64(st, "pages_inherited"), KIDS * (PAGES - 64), "%s", json_object_to_json_string(st));
	json_object_put(st);
	for (int i = 0; i < KIDS; i++) {
		long now = private_dirty_kib(kid[i]);

		/* Read with process_vm_readv, every shared page would be the child's own now: + 32 MiB. */
		cr_expect_leq(now, dirty[i] + 4096, "child %d: Private_Dirty %ld KiB after the dump, %ld before: "
			      "the dump unshared its memory", kid[i], now, dirty[i]);
		snprintf(sub, sizeof(sub), "%s/proc-%d", d1, kid[i]);
		cr_expect_lt(file_size(sub, "pages.zst"), 4 << 20, "child %d saved its inherited pages itself", kid[i]);
	}
	ask(&p, "check\n", after, sizeof(after));
	cr_expect_str_eq(after, before, "the dump changed the running tree's memory");

	snprintf(d2, sizeof(d2), "%s/killed%s", tmp, load ? "-load" : "");
	st = dump(pid, d2, NULL, NULL);
	cr_expect_geq(get_u64(st, "pages_inherited"), KIDS * (PAGES - 64));
	json_object_put(st);
	kill_tree(&p, pid);

	restore_expect(d2, NULL, before, "kill mode, eager");
	restore_expect(d1, "--lazy", before, "leave-running, lazy");
}

Test(tree_cow, saved_once_left_shared_and_restored)
{
	saved_once(false);
}

Test(tree_cow, under_load)
{
	saved_once(true);
}

/*
 * A child's pages inherited in checkpoint 0 are its parent's pages of
 * checkpoint 0, also when the parent wrote them since and the child's
 * delta does not list them; a child born since inherits the new ones. The
 * chain restores as it was, and so does its fold once the parent is gone.
 */
Test(tree_cow, a_delta_whose_parent_wrote_what_a_child_inherited)
{
	struct prog p;
	char d0[128], d1[128], want[2048];
	struct run_result r;
	json_object *st;
	pid_t pid;

	pid = start(&p);
	snprintf(d0, sizeof(d0), "%s/0000", tmp);
	snprintf(d1, sizeof(d1), "%s/0001", tmp);
	json_object_put(dump(pid, d0, NULL, "--leave-running"));
	ask(&p, "write\n", want, sizeof(want));
	cr_assert_str_eq(want, "", "%s", want);
	ask(&p, "fork\n", want, sizeof(want));
	ask(&p, "check\n", want, sizeof(want));
	st = dump(pid, d1, d0, NULL);
	/* The newborn inherits from its parent's delta. */
	cr_expect_geq(get_u64(st, "pages_inherited"), PAGES - 64, "%s", json_object_to_json_string(st));
	json_object_put(st);
	kill_tree(&p, pid);

	restore_expect(d1, NULL, want, "delta, eager");
	restore_expect(d1, "--lazy", want, "delta, lazy");
	cr_assert_eq(run_ckpt(&r, "compact", tmp, "--keep", "1", NULL), 0);
	cr_expect_eq(r.status, 0, "compact: %s", r.err);
	run_result_done(&r);
	cr_expect_eq(access(d0, F_OK), -1, "compact --keep 1 left %s", d0);
	restore_expect(d1, NULL, want, "folded, eager");
}

/*
 * A line of 70 processes, each the child of the one before, sharing what
 * the first one wrote: a reader follows at most CKPT_IMAGE_INHERIT_DEPTH_MAX
 * processes holding one another's pages, so the dump breaks the line
 * (copies instead) before that, and the checkpoint stays readable.
 */
Test(tree_cow, a_long_line_sharing_pages_stays_readable)
{
	struct prog p;
	struct run_result r;
	char line[64], dir[128], pid_s[16];
	json_object *st;
	pid_t v[128];
	size_t n = 1;

	cr_assert_eq(prog_start(&p, false, 0, "cowline", "70", "256", NULL), 0);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 30000), 0);
	cr_assert_str_eq(line, "ready");
	snprintf(dir, sizeof(dir), "%s/line", tmp);
	st = dump(p.pid, dir, NULL, "--leave-running");
	cr_expect_gt(get_u64(st, "pages_inherited"), 0);
	json_object_put(st);
	cr_assert_eq(run_ckpt(&r, "show", "--verify", dir, NULL), 0);
	cr_expect_eq(r.status, 0, "the checkpoint of a line of 70 does not read back: %s", r.err);
	run_result_done(&r);
	/* The whole line, from the root down. */
	v[0] = p.pid;
	for (size_t i = 0; i < n && n < 128; i++)
		n += children(v[i], v + n, 128 - n);
	snprintf(pid_s, sizeof(pid_s), "%zu", n);
	cr_expect_eq(n, 70, "%s processes in the line", pid_s);
	for (size_t i = n; i-- > 1;)
		kill(v[i], SIGKILL);
	prog_kill(&p);
}
