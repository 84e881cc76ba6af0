/* SPDX-License-Identifier: MIT */
/*
 * Process trees (issue 15): `ckpt dump -t PID` takes PID and every
 * descendant, restore rebuilds them with their pids, parent links, groups
 * and sessions, zombies, and what they share (test/progs/tree checks
 * itself: shared memory, a shared file offset, pipes with bytes in
 * flight). Real programs nobody here wrote: a bash pipeline into gzip,
 * python3 subprocess.Popen with pipes, make -j2 building a small tree.
 * Bad input: a pid taken at restore, a process leaving during the seize.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/testutil.h"

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "tree-test");
}

static void teardown(void)
{
	load_stop();
	prog_kill_all();
	suite_dir_remove(tmp, NULL);
}

TestSuite(tree, .init = setup, .fini = teardown, .timeout = 180);

#define TREE_ITEMS 9

static bool alive(pid_t pid)
{
	return kill(pid, 0) == 0 && proc_state(pid) != 'Z';
}

/* Send "check" and read every line up to "done"; each must end in "ok". */
static void expect_all_ok(struct prog *p, const char *what)
{
	char line[512];
	int n = 0;

	cr_assert_eq(write(p->in_fd, "check\n", 6), 6);
	for (;;) {
		cr_assert_geq(prog_read_line(p, line, sizeof(line), 30000), 0, "%s: no answer after %d lines", what, n);
		if (strcmp(line, "done") == 0)
			break;
		n++;
		cr_log_info("%s: %s", what, line);
		cr_expect_not_null(strstr(line, " ok"), "%s: %s", what, line);
	}
	cr_expect_eq(n, TREE_ITEMS, "%s: %d items, not %d", what, n, TREE_ITEMS);
}

/* Start test/progs/tree; its pid once it is ready. */
static pid_t start_tree(struct prog *p, const char *name)
{
	char line[128], file[128];
	int pid = 0;

	snprintf(file, sizeof(file), "%s/%s.file", tmp, name);
	cr_assert_eq(prog_start(p, true, 0, "tree", file, NULL), 0);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 10000), 0, "no pid line");
	cr_assert_eq(sscanf(line, "pid %d", &pid), 1, "got '%s'", line);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 10000), 0);
	cr_assert_str_eq(line, "ready");
	return pid;
}

static void dump_ok(pid_t pid, const char *dir, const char *parent, const char *mode)
{
	struct run_result r;
	char pid_s[16];
	const char *argv[12] = { ckpt_bin(), "dump", "-t", pid_s, "-D", dir };
	int n = 6;

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
	run_result_done(&r);
}

/* @pid and its descendants (task/TID/children of the main thread, as a shell's tree has). */
static size_t tree_pids(pid_t pid, pid_t *v, size_t max)
{
	size_t n = 0;

	if (max)
		v[n++] = pid;
	for (size_t i = 0; i < n; i++) {
		char path[64];
		FILE *f;
		int kid;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", v[i], v[i]);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (n < max && fscanf(f, "%d", &kid) == 1)
			v[n++] = kid;
		fclose(f);
	}
	return n;
}

/* Every process of the tree rooted at @pid SIGKILLed, and gone (reaped by whoever, however slow). */
static void kill_tree(pid_t pid, struct prog *p)
{
	pid_t v[64];
	size_t n = tree_pids(pid, v, 64);

	for (size_t i = n; i-- > 0;)
		kill(v[i], SIGKILL);
	if (p)
		prog_wait(p, 5000);
	for (size_t i = 0; i < n; i++)
		for (int t = 0; t < 1000 && kill(v[i], 0) == 0; t++)
			usleep(10000);
}

/* Restore @dir (ckpt's stdio, our pipes, handed in) with @extra options, and let the tree check itself. */
static void restore_and_check_with(const char *dir, const char *what, const char *const *extra)
{
	const char *argv[16] = { ckpt_bin(), "restore", "-D", dir, "--stdio", "inherit" };
	struct prog rp;
	int n = 6;

	for (size_t i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	expect_all_ok(&rp, what);
	cr_expect_eq(prog_wait(&rp, 10000), 0, "%s: ckpt restore did not exit 0", what);
	prog_kill(&rp);
}

static void restore_and_check(const char *dir, const char *what)
{
	restore_and_check_with(dir, what, NULL);
}

static void kill_mode_round_trip(bool load)
{
	struct prog p;
	char dir[128];
	pid_t pid;

	if (load)
		load_start();
	pid = start_tree(&p, load ? "load" : "plain");
	snprintf(dir, sizeof(dir), "%s/%s", tmp, load ? "load" : "plain");
	dump_ok(pid, dir, NULL, NULL);
	cr_expect_eq(prog_wait(&p, 5000) >= 0, true, "the root outlived a kill-mode dump");
	cr_expect(!alive(pid));
	restore_and_check(dir, load ? "restore under load" : "restore");
}

Test(tree, kill_mode_dump_and_restore_share_what_fork_shared)
{
	kill_mode_round_trip(false);
}

Test(tree, under_load)
{
	kill_mode_round_trip(true);
}

/* --leave-running, then a delta of the tree; the tree killed, the delta restored. */
Test(tree, delta_of_a_tree)
{
	struct prog p;
	char d0[128], d1[128];
	pid_t pid;

	pid = start_tree(&p, "delta");
	snprintf(d0, sizeof(d0), "%s/delta-0", tmp);
	snprintf(d1, sizeof(d1), "%s/delta-1", tmp);
	dump_ok(pid, d0, NULL, "--leave-running");
	cr_expect(alive(pid), "--leave-running killed the root");
	dump_ok(pid, d1, d0, "--leave-running");
	{
		struct stat st;
		char sub[256];

		snprintf(sub, sizeof(sub), "%s/tree.json", d1);
		cr_expect_eq(stat(sub, &st), 0, "no tree.json in the delta");
	}
	kill_tree(pid, &p);
	restore_and_check(d1, "restore of the delta");
}

/* A pid of the tree taken: refused before anything is made, the holder named. */
Test(tree, a_taken_pid_is_named)
{
	struct prog p;
	struct run_result r;
	char dir[128];
	pid_t pid;

	pid = start_tree(&p, "taken");
	snprintf(dir, sizeof(dir), "%s/taken", tmp);
	dump_ok(pid, dir, NULL, "--leave-running");
	/* The tree runs on: every pid is taken. */
	cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--detach", "--stdio", "null", NULL), 0);
	cr_expect_neq(r.status, 0, "restored over a running tree");
	cr_expect(strstr(r.err, "is taken") && strstr(r.err, "(tree)"), "%s", r.err);
	run_result_done(&r);
	cr_expect(alive(pid));
	kill_tree(pid, &p);
}

/* The same tree, lazily: every process its own uffd and page source, one server for all. */
Test(tree, lazy_restore_of_a_tree)
{
	static const char *const lazy[] = { "--lazy", NULL };
	struct prog p;
	char dir[128];
	pid_t pid;

	pid = start_tree(&p, "lazy");
	snprintf(dir, sizeof(dir), "%s/lazy", tmp);
	dump_ok(pid, dir, NULL, NULL);
	cr_expect_eq(prog_wait(&p, 5000) >= 0, true, "the root outlived a kill-mode dump");
	restore_and_check_with(dir, "lazy restore", lazy);
}
