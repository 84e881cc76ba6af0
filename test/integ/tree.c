/* SPDX-License-Identifier: MIT */
/*
 * Process trees (issue 15): `ckpt dump -t PID` takes PID and every
 * descendant, restore rebuilds them with their pids, parent links, groups
 * and sessions, zombies, and what they share (test/progs/tree checks
 * itself: shared memory, a shared file offset, pipes with bytes in
 * flight, a unix socket pair between two processes with bytes in flight, a
 * TCP listener two processes share). Real programs nobody here wrote: a bash pipeline into gzip,
 * python3 subprocess.Popen with pipes, make -j2 building a small tree.
 * Bad input: a pid taken at restore, a process leaving during the seize.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/shm.h>
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

#define TREE_ITEMS 12

static bool alive(pid_t pid)
{
	return kill(pid, 0) == 0 && proc_state(pid) != 'Z';
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

/* Restore @dir (ckpt's stdio, our pipes, handed in), and let the tree check itself. */
static void restore_and_check(const char *dir, const char *what)
{
	const char *argv[] = { ckpt_bin(), "restore", "-D", dir, "--stdio", "inherit", NULL };
	struct prog rp;

	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	prog_expect_checks_ok(&rp, what, TREE_ITEMS);
	prog_wait(&rp, 10000);
	prog_kill(&rp);
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

/* ckpt track -D of a tree: a tree dump per interval; DIR/latest restores the tree of its moment. */
Test(tree, continuous_checkpoints_of_a_tree)
{
	struct run_result r;
	struct prog p;
	char dir[128], latest[160], pid_s[16];
	pid_t pid;

	pid = start_tree(&p, "track");
	snprintf(dir, sizeof(dir), "%s/track", tmp);
	snprintf(pid_s, sizeof(pid_s), "%d", pid);
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid_s, "-D", dir, "--interval", "200ms", "--count", "3", NULL), 0);
	cr_assert_eq(r.status, 0, "track -D: %s", r.err);
	cr_expect(strstr(r.err, "whole process tree"), "%s", r.err);
	cr_expect(strstr(r.out, "0002 delta"), "%s", r.out);
	run_result_done(&r);
	/* Continued with --keep 2: the older ones folded away (every process of each) and removed. */
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid_s, "-D", dir, "--interval", "200ms", "--count", "3", "--keep", "2",
			      NULL), 0);
	cr_expect_eq(r.status, 0, "track -D --keep: %s", r.err);
	run_result_done(&r);
	{
		char p0[192];
		struct stat st;

		snprintf(p0, sizeof(p0), "%s/0000", dir);
		cr_expect_neq(stat(p0, &st), 0, "0000 was kept");
		snprintf(p0, sizeof(p0), "%s/latest", dir);
		cr_assert_eq(run_ckpt(&r, "show", "--verify", p0, NULL), 0);
		cr_expect_eq(r.status, 0, "show --verify of the folded chain: %s", r.err);
		run_result_done(&r);
	}
	kill_tree(pid, &p);
	snprintf(latest, sizeof(latest), "%s/latest", dir);
	restore_and_check(latest, "restore of track -D's latest");
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

/* ---- System V shared memory (postgres keeps its shared state in a segment) ---- */

static void sysv_round_trip(bool ipcrm)
{
	const char *argv[] = { ckpt_bin(), "restore", "-D", NULL, "--stdio", "inherit", NULL };
	struct prog p, rp;
	char line[512], dir[128];
	int pid = 0, aid = -1, bid = -1;

	cr_assert_eq(prog_start(&p, true, 0, "sysvshm", NULL), 0);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0);
	cr_assert_eq(sscanf(line, "pid %d", &pid), 1, "got '%s'", line);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0);
	cr_assert_eq(sscanf(line, "shmid %d %d", &aid, &bid), 2, "got '%s'", line);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0);
	cr_assert_str_eq(line, "ready");
	snprintf(dir, sizeof(dir), "%s/sysv%s", tmp, ipcrm ? "-ipcrm" : "");
	dump_ok(pid, dir, NULL, NULL);
	prog_wait(&p, 5000);
	if (ipcrm) {
		/* Gone between dump and restore: made again, with its id and its contents. */
		cr_assert_eq(shmctl(aid, IPC_RMID, NULL), 0, "ipcrm -m %d: %s", aid, strerror(errno));
	}
	argv[3] = dir;
	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	prog_expect_checks_ok(&rp, "sysv", 5);
	prog_wait(&rp, 10000);
	prog_kill(&rp);
	shmctl(aid, IPC_RMID, NULL);
}

Test(tree, sysv_shm_segments_come_back_shared)
{
	sysv_round_trip(false);
}

Test(tree, a_sysv_segment_removed_before_the_restore_is_made_again)
{
	sysv_round_trip(true);
}

/* ---- processes that come and go during the freeze ---- */

static void wait_group_empty(pid_t pgid)
{
	for (int i = 0; i < 1000; i++) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "pgrep -g %d >/dev/null", pgid);
		if (system(cmd) != 0)
			return;
		usleep(10000);
	}
}

/* forkchurn's next tick line within @ms, or -1; a BAD line fails the test. */
static long churn_tick(struct prog *p, int ms)
{
	char line[256];
	long tick = -1, reaped;

	while (prog_read_line(p, line, sizeof(line), ms) >= 0) {
		cr_assert_null(strstr(line, "BAD"), "%s", line);
		if (sscanf(line, "tick %ld reaped %ld", &tick, &reaped) == 2)
			return tick;
	}
	return -1;
}

/*
 * A parent that forks a child every millisecond, children and grandchildren
 * exiting all the time (leaving the tree, reparented, zombies): ten dumps
 * that leave it running each go through with it unharmed, and the tree of a
 * kill-mode dump comes back reaping every child with the status it exited
 * with (a zombie's, or a live one's when it finishes).
 */
Test(tree, processes_that_come_and_go_during_the_freeze)
{
	const char *argv[] = { ckpt_bin(), "restore", "-D", NULL, "--stdio", "inherit", NULL };
	struct prog p, rp;
	char dir[128];
	long t;

	load_start();
	cr_assert_eq(prog_start(&p, false, 5000, "forkchurn", NULL), 0);
	cr_assert_geq(churn_tick(&p, 2000), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(dir, sizeof(dir), "%s/churn-%d", tmp, i);
		dump_ok(p.pid, dir, NULL, "--leave-running");
		cr_assert_geq(churn_tick(&p, 2000), 0, "round %d: it stopped ticking", i);
	}
	snprintf(dir, sizeof(dir), "%s/churn-kill", tmp);
	dump_ok(p.pid, dir, NULL, NULL);
	prog_wait(&p, 5000);
	/*
	 * Grandchildren that left the tree (their parent exited: reparented)
	 * live on a few ms in the root's process group, whose id is the root's
	 * pid: restore waits a second for it, init may take longer to reap them.
	 */
	wait_group_empty(p.pid);
	argv[3] = dir;
	cr_assert_eq(prog_spawn(&rp, false, NULL, argv), 0);
	t = churn_tick(&rp, 5000);
	cr_assert_geq(t, 0, "the restored tree does not tick");
	for (int i = 0; i < 10; i++)
		cr_assert_gt(churn_tick(&rp, 2000), t + i, "the restored tree stopped ticking");
	load_stop();
	kill_tree(rp.pid, &rp);
}

/* ---- groups and sessions ---- */

static void read_pids(struct prog *p, const char *mode, pid_t v[3])
{
	char line[128];
	int a, b, c;

	cr_assert_eq(prog_start(p, false, 0, "treesess", mode, NULL), 0);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 10000), 0);
	cr_assert_eq(sscanf(line, "pids %d %d %d", &a, &b, &c), 3, "got '%s'", line);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 10000), 0);
	cr_assert_str_eq(line, "ready");
	v[0] = a;
	v[1] = b;
	v[2] = c;
}

/* A group that lives on after its leader left it: made first, its members in it, then the leader leaves. */
Test(tree, a_group_whose_leader_left_it_comes_back)
{
	struct prog p;
	pid_t v[3], pgid[3], sid[3];
	char dir[128];

	read_pids(&p, "left-group", v);
	for (int i = 0; i < 3; i++) {
		pgid[i] = getpgid(v[i]);
		sid[i] = getsid(v[i]);
	}
	cr_assert_neq(pgid[2], pgid[1], "the setup failed: M is in G's group");
	snprintf(dir, sizeof(dir), "%s/left-group", tmp);
	dump_ok(v[0], dir, NULL, NULL);
	prog_wait(&p, 5000);
	for (int i = 0; i < 3; i++)
		for (int t = 0; t < 300 && kill(v[i], 0) == 0; t++)
			usleep(10000);
	{
		struct run_result r;

		cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--detach", "--stdio", "null", NULL), 0);
		cr_assert_eq(r.status, 0, "%s", r.err);
		run_result_done(&r);
	}
	prog_track_pid(v[0]);
	prog_track_pid(v[1]);
	prog_track_pid(v[2]);
	for (int i = 1; i < 3; i++) {
		cr_expect_eq(getpgid(v[i]), pgid[i], "pid %d: group %d, not %d", v[i], getpgid(v[i]), pgid[i]);
		cr_expect_eq(getsid(v[i]), getsid(v[0]), "pid %d: session %d", v[i], getsid(v[i]));
	}
	(void)sid;
	kill_tree(v[0], NULL);
}

/* A session neither its own nor its parent's (reparented): refused at dump, nothing harmed. */
Test(tree, a_session_restore_cannot_make_is_refused_at_dump)
{
	struct run_result r;
	struct prog p;
	pid_t v[3];
	char dir[128], pid_s[16];

	read_pids(&p, "reparented", v);
	snprintf(dir, sizeof(dir), "%s/reparented", tmp);
	snprintf(pid_s, sizeof(pid_s), "%d", v[0]);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", dir, NULL), 0);
	cr_expect_eq(r.status, 4, "%s", r.err);
	cr_expect(strstr(r.err, "neither its own nor its parent's"), "%s", r.err);
	run_result_done(&r);
	cr_expect(alive(v[0]) && alive(v[2]), "the tree was harmed");
	kill_tree(v[0], &p);
}
