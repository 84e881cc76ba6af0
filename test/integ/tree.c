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

#include <json-c/json.h>

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

#define TREE_ITEMS 13

static bool alive(pid_t pid)
{
	return kill(pid, 0) == 0 && proc_state(pid) != 'Z';
}

/* Read every line up to "done"; each must end in "ok". @all (may be NULL) gets them. */
static void read_all_ok(struct prog *p, const char *what, char *all, size_t len)
{
	char line[512];
	int n = 0;

	if (all)
		all[0] = 0;
	for (;;) {
		cr_assert_geq(prog_read_line(p, line, sizeof(line), 30000), 0, "%s: no answer after %d lines", what, n);
		if (strcmp(line, "done") == 0)
			break;
		n++;
		if (all && strlen(all) + strlen(line) + 2 < len)
			strcat(strcat(all, line), "\n");
		cr_log_info("%s: %s", what, line);
		cr_expect_not_null(strstr(line, " ok"), "%s: %s", what, line);
	}
	cr_expect_eq(n, TREE_ITEMS, "%s: %d items, not %d", what, n, TREE_ITEMS);
}

/* Send "check", then read_all_ok. */
static void expect_all_ok_lines(struct prog *p, const char *what, char *all, size_t len)
{
	cr_assert_eq(write(p->in_fd, "check\n", 6), 6);
	read_all_ok(p, what, all, len);
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

/* Restore @dir (or from the page server at @dir, tcp://...) (ckpt's stdio, our pipes, handed in) with @extra options, and let the tree check itself. */
static void restore_and_check_lines(const char *dir, const char *what, const char *const *extra, char *all,
				    size_t len)
{
	const char *argv[16] = { ckpt_bin(), "restore", strncmp(dir, "tcp://", 6) ? "-D" : "--from", dir, "--stdio",
				 "inherit" };
	struct prog rp;
	int n = 6;

	for (size_t i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	expect_all_ok_lines(&rp, what, all, len);
	cr_expect_eq(prog_wait(&rp, 20000), 0, "%s: ckpt restore did not exit 0", what);
	prog_kill(&rp);
}

static void restore_and_check_with(const char *dir, const char *what, const char *const *extra)
{
	restore_and_check_lines(dir, what, extra, NULL, 0);
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

/* ---- lazy: every process its own uffd, ranges and page source; one server for all ---- */

static const char *const lazy_opt[] = { "--lazy", NULL };

/* A kill-mode checkpoint of a fresh tree at tmp/@name; the pids of its live processes in @pids. */
static size_t checkpoint_tree(const char *name, char *dir, size_t len, pid_t *pids, size_t max)
{
	struct prog p;
	pid_t pid;
	size_t n;

	pid = start_tree(&p, name);
	n = tree_pids(pid, pids, max);
	/* The live ones: a zombie has no memory to serve. */
	for (size_t i = 0, k = n; i < k; i++)
		if (!alive(pids[i]))
			pids[i--] = pids[--k], n--;
	snprintf(dir, len, "%s/%s", tmp, name);
	dump_ok(pid, dir, NULL, NULL);
	cr_expect_eq(prog_wait(&p, 5000) >= 0, true, "the root outlived a kill-mode dump");
	/* Restored with these pids: killed at the end whatever happens (a lost page makes them wait). */
	for (size_t i = 0; i < n; i++)
		prog_track_pid(pids[i]);
	return n;
}

/* The same checkpoint restored eagerly, then lazily: the same lines, every one ok. */
Test(tree, lazy_restore_says_what_the_eager_one_says)
{
	char dir[128], eager[4096], lazy[4096];
	pid_t pids[16];

	cr_assert_eq(checkpoint_tree("lazy", dir, sizeof(dir), pids, 16), 6, "the tree has a root and 5 workers");
	restore_and_check_lines(dir, "eager restore", NULL, eager, sizeof(eager));
	restore_and_check_lines(dir, "lazy restore", lazy_opt, lazy, sizeof(lazy));
	cr_expect_str_eq(lazy, eager);
}

Test(tree, lazy_restore_under_load)
{
	char dir[128];
	pid_t pids[16];

	load_start();
	checkpoint_tree("lazyload", dir, sizeof(dir), pids, 16);
	restore_and_check_with(dir, "lazy restore under load", lazy_opt);
}

/* The "lazy" JSON lines of a lazy-pages server's output in @text: how many, each checked. */
static size_t lazy_lines(const char *text, const pid_t *pids, size_t nr_pids, const char *const *ends, bool no_fill)
{
	size_t n = 0;

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		json_object *j, *v;
		pid_t pid;
		bool known = false, end_ok = false;

		if (*l != '{')
			continue;
		j = json_tokener_parse(l);
		if (!j || !json_object_object_get_ex(j, "event", &v) || strcmp(json_object_get_string(v), "lazy")) {
			json_object_put(j);
			continue;
		}
		n++;
		if (!nr_pids) { /* counting only */
			json_object_put(j);
			continue;
		}
		pid = json_object_get_int(json_object_object_get(j, "pid"));
		if (no_fill)
			cr_expect_eq(json_object_get_int64(json_object_object_get(j, "pages_fill")), 0,
				     "pid %d filled with no fill: %s", pid, json_object_to_json_string(j));
		for (size_t i = 0; i < nr_pids; i++)
			known |= pids[i] == pid;
		cr_expect(known, "the server served pid %d, not of the tree", pid);
		for (size_t i = 0; ends[i]; i++)
			end_ok |= !strcmp(json_object_get_string(json_object_object_get(j, "end")), ends[i]);
		cr_expect(end_ok, "pid %d: %s", pid, json_object_to_json_string(j));
		/* Its own memory came from the server: faults or fill, not only before it ran. */
		cr_expect_gt(json_object_get_int64(json_object_object_get(j, "pages_fault")) +
				     json_object_get_int64(json_object_object_get(j, "pages_fill")),
			     0, "pid %d got no page from the server: %s", pid, json_object_to_json_string(j));
		json_object_put(j);
	}
	return n;
}

/* A lazy-pages server's lines, read until one per process of @pids came (20 s at most), each checked. */
static void server_lazy_lines(struct prog *srv, const pid_t *pids, size_t n, const char *const *ends, bool no_fill)
{
	char line[2048], text[16384] = "";

	for (double t0 = mono_s(); mono_s() - t0 < 20 && lazy_lines(text, pids, 0, ends, no_fill) < n;) {
		if (prog_read_line(srv, line, sizeof(line), 500) < 0)
			continue;
		if (strlen(text) + strlen(line) + 2 < sizeof(text))
			strcat(strcat(text, line), "\n");
	}
	cr_expect_eq(lazy_lines(text, pids, n, ends, no_fill), n, "%s", text);
}

static char *slurp(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = 0;
	return buf;
}

/*
 * --lazy --detach: ckpt exits at once, the server it forked serves every
 * process of the tree and logs one line for each.
 */
Test(tree, lazy_detached_restore_serves_every_process)
{
	static const char *const ends[] = { "complete", "exited", NULL };
	char dir[128], out[160], log[160], line[4096], *text;
	const char *argv[16];
	struct prog rp;
	pid_t pids[16];
	size_t n;
	FILE *f = NULL;
	int status, lines = 0, pid = 0;

	n = checkpoint_tree("lazydetach", dir, sizeof(dir), pids, 16);
	snprintf(out, sizeof(out), "%s/detach.out", tmp);
	snprintf(log, sizeof(log), "%s/detach.log", tmp);
	/* Our stdout a file (a pipe is never handed over with --detach), stdin our pipe. */
	argv[0] = ckpt_bin(), argv[1] = "restore", argv[2] = "-D", argv[3] = dir, argv[4] = "--lazy";
	argv[5] = "--detach", argv[6] = "--json", argv[7] = "--lazy-log", argv[8] = log;
	argv[9] = "--stdio", argv[10] = "inherit", argv[11] = NULL;
	cr_assert_eq(prog_spawn(&rp, true, out, argv), 0);
	status = prog_wait(&rp, 20000);
	cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "restore: status %#x", status);
	text = slurp(out);
	{
		json_object *j = json_tokener_parse(text);

		cr_assert_not_null(j, "%s", text);
		pid = json_object_get_int(json_object_object_get(j, "pid"));
		json_object_put(j);
	}
	cr_expect_eq(pid, pids[0], "restored as pid %d, not %d", pid, pids[0]);
	prog_track_pid(pid);
	/* ckpt is gone; the tree runs on our pipe and the file. */
	cr_assert_eq(write(rp.in_fd, "check\n", 6), 6);
	for (double t0 = mono_s(); mono_s() - t0 < 30 && !strstr(slurp(out), "\ndone\n"); usleep(20000))
		;
	text = slurp(out);
	cr_assert(strstr(text, "\ndone\n"), "the tree did not finish: %s", text);
	f = fmemopen(text, strlen(text), "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (line[0] == '{' || !strcmp(line, "done\n"))
			continue;
		lines++;
		cr_expect(strstr(line, " ok\n"), "%s", line);
	}
	if (f)
		fclose(f);
	cr_expect_eq(lines, TREE_ITEMS);
	/* One line per live process, once each is complete or gone. */
	for (double t0 = mono_s(); mono_s() - t0 < 20 && lazy_lines(slurp(log), pids, 0, ends, false) < n; usleep(50000))
		;
	cr_expect_eq(lazy_lines(slurp(log), pids, n, ends, false), n, "%s", slurp(log));
	prog_kill(&rp);
}

/*
 * Faults only (no background fill), through --lazy-socket: the workers exit
 * with pages never asked for; the root asks for its own memory after they
 * are gone, and gets it.
 */
Test(tree, lazy_socket_a_process_gone_with_pages_left_stops_no_other)
{
	static const char *const ends[] = { "exited", NULL };
	const char *sargv[] = { ckpt_bin(), "lazy-pages", "--socket", NULL, "--json", "--no-fill", NULL };
	char dir[128], sock[128], line[2048];
	const char *extra[] = { "--lazy", "--lazy-socket", sock, NULL };
	struct prog srv;
	pid_t pids[16];
	size_t n;

	n = checkpoint_tree("lazysock", dir, sizeof(dir), pids, 16);
	snprintf(sock, sizeof(sock), "%s/lazy.sock", tmp);
	sargv[3] = sock;
	cr_assert_eq(prog_spawn(&srv, false, NULL, sargv), 0);
	cr_assert_geq(prog_read_line(&srv, line, sizeof(line), 10000), 0, "lazy-pages did not start");
	cr_assert(strstr(line, "\"listening\""), "%s", line);
	restore_and_check_with(dir, "lazy restore through a socket", extra);
	/* Every process of the tree exited, each with pages never copied (no fill). */
	server_lazy_lines(&srv, pids, n, ends, true);
	prog_kill(&srv);
}

/* ---- from a page server: tree.json and every process's checkpoint over the protocol ---- */

/* ckpt page-server -D @dir on loopback; its URL in @url. */
static void page_server_start(struct prog *srv, const char *dir, char *url, size_t len)
{
	const char *argv[] = { ckpt_bin(), "page-server", "-D", dir, "--listen", "127.0.0.1:0", "--json", NULL };
	char line[1024];
	json_object *j, *v;

	cr_assert_eq(prog_spawn(srv, false, NULL, argv), 0);
	cr_assert_geq(prog_read_line(srv, line, sizeof(line), 10000), 0, "the page server did not start");
	j = json_tokener_parse(line);
	cr_assert(j && json_object_object_get_ex(j, "address", &v), "%s", line);
	snprintf(url, len, "tcp://%s", json_object_get_string(v));
	json_object_put(j);
}

/* The same checkpoint restored from its directory, then eagerly and lazily from a page server. */
Test(tree, restore_from_a_page_server_eager_and_lazy)
{
	char dir[128], url[160], local[4096], remote[4096];
	struct prog srv;
	pid_t pids[16];

	checkpoint_tree("remote", dir, sizeof(dir), pids, 16);
	restore_and_check_lines(dir, "restore from the directory", NULL, local, sizeof(local));
	page_server_start(&srv, dir, url, sizeof(url));
	restore_and_check_lines(url, "restore from a page server", NULL, remote, sizeof(remote));
	cr_expect_str_eq(remote, local);
	restore_and_check_lines(url, "lazy restore from a page server", lazy_opt, remote, sizeof(remote));
	cr_expect_str_eq(remote, local);
	prog_kill(&srv);
}

/*
 * The server dies (SIGKILL) with no page copied but those faulted in: every
 * process of the tree waits, none reads zeros; one `lazy-pages --attach`
 * of every process takes them all over from their records (each from its
 * own checkpoint), and the tree checks itself.
 */
Test(tree, lazy_takeover_of_every_process_after_the_server_dies)
{
	static const char *const ends[] = { "complete", "exited", NULL };
	const char *sargv[] = { ckpt_bin(), "lazy-pages", "--socket", NULL, "--json", "--no-fill", NULL };
	const char *aargv[32] = { ckpt_bin(), "lazy-pages", "--json" };
	char dir[128], sock[128], line[2048], att[16][16];
	const char *rargv[] = { ckpt_bin(), "restore", "-D", dir, "--stdio", "inherit", "--lazy", "--lazy-socket",
				sock, NULL };
	struct prog srv, srv2, rp;
	pid_t pids[16];
	size_t n, records = 0;
	int a = 3;

	n = checkpoint_tree("takeover", dir, sizeof(dir), pids, 16);
	snprintf(sock, sizeof(sock), "%s/lazy.sock", tmp);
	sargv[3] = sock;
	cr_assert_eq(prog_spawn(&srv, false, NULL, sargv), 0);
	cr_assert_geq(prog_read_line(&srv, line, sizeof(line), 10000), 0, "lazy-pages did not start");
	cr_assert_eq(prog_spawn(&rp, true, NULL, rargv), 0);
	/* Every process handed over: its record is in the run directory. */
	for (double t0 = mono_s(); mono_s() - t0 < 20 && records < n; usleep(20000)) {
		records = 0;
		for (size_t i = 0; i < n; i++) {
			char path[256];

			snprintf(path, sizeof(path), "%s/lazy-%d.json", tmp, pids[i]);
			records += access(path, F_OK) == 0;
		}
	}
	cr_assert_eq(records, n, "%zu of %zu processes handed over", records, n);
	usleep(200000);
	prog_kill(&srv);
	for (size_t i = 0; i < n; i++) {
		snprintf(att[i], sizeof(att[i]), "%d", pids[i]);
		aargv[a++] = "--attach";
		aargv[a++] = att[i];
	}
	aargv[a] = NULL;
	/* The root reads "check" into lazy memory: a fault taken in the kernel, waiting (killably). */
	cr_assert_eq(write(rp.in_fd, "check\n", 6), 6);
	usleep(300000);
	cr_assert_eq(prog_spawn(&srv2, false, NULL, aargv), 0);
	read_all_ok(&rp, "lazy restore taken over", NULL, 0);
	cr_expect_eq(prog_wait(&rp, 20000), 0, "ckpt restore did not exit 0");
	server_lazy_lines(&srv2, pids, n, ends, false);
	prog_kill(&srv2);
	prog_kill(&rp);
}

/*
 * track -D of one process that makes its first child during the run: the
 * run goes on with a dump of the tree per interval (no checkpoint holds the
 * process without a child it had then), and the latest restores both, the
 * pipe between them carrying on. python3's own fork.
 */
Test(tree, a_child_born_during_track_d_joins_the_checkpoints)
{
	const char *code = "import os,sys,time\nr,w=os.pipe()\nprint('ready',flush=True)\nsys.stdin.readline()\n"
			   "pid=os.fork()\nif pid==0:\n    os.close(r)\n    n=0\n    while True:\n"
			   "        os.write(w,b'%d\\n'%n)\n        n+=1\n        time.sleep(0.05)\n"
			   "os.close(w)\nprint('forked',pid,flush=True)\nfor l in os.fdopen(r):\n"
			   "    print('got',l.strip(),flush=True)\n";
	const char *py[] = { "/usr/bin/python3", "-c", code, NULL };
	char dir[128], latest[160], pid_s[16], line[256], log[160], buf[8192] = "", child[200];
	struct prog p, t, rp;
	struct stat st;
	long last = -1, n;
	pid_t cpid = 0, ppid;
	int fd;

	if (access("/usr/bin/python3", X_OK) < 0)
		cr_skip_test("python3 is not installed");
	cr_assert_eq(prog_spawn(&p, true, NULL, py), 0);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0, "python3 did not start");
	snprintf(dir, sizeof(dir), "%s/born", tmp);
	snprintf(latest, sizeof(latest), "%s/latest", dir);
	snprintf(log, sizeof(log), "%s/born.log", tmp);
	snprintf(pid_s, sizeof(pid_s), "%d", p.pid);
	{
		const char *argv[] = { "/bin/sh", "-c", "exec 2>\"$0\"; exec \"$@\"", log, ckpt_bin(), "track", "-t",
				       pid_s, "-D", dir, "--interval", "200ms", "--count", "8", NULL };

		cr_assert_eq(prog_spawn(&t, false, NULL, argv), 0);
	}
	for (double end = mono_s() + 10; mono_s() < end && stat(latest, &st) < 0; usleep(20000))
		;
	cr_assert_eq(stat(latest, &st), 0, "no first checkpoint of the process alone");
	prog_send_line(&p, "fork\n");
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 5000), 0);
	cr_assert_eq(sscanf(line, "forked %d", &cpid), 1, "got '%s'", line);
	cr_assert_geq(prog_wait(&t, 30000), 0, "track -D did not end");
	fd = open(log, O_RDONLY);
	if (fd >= 0) {
		ssize_t k = read(fd, buf, sizeof(buf) - 1);

		buf[k > 0 ? k : 0] = '\0';
		close(fd);
	}
	cr_expect(strstr(buf, "whole process tree"), "track -D did not go on as a tree's: %s", buf);
	snprintf(child, sizeof(child), "%s/proc-%d", latest, cpid);
	cr_expect_eq(stat(child, &st), 0, "the latest checkpoint has no '%s': %s", child, buf);
	ppid = p.pid;
	kill(cpid, SIGKILL);
	prog_kill(&p);
	/* Gone, not a zombie init has yet to reap (it takes its time here): its pid is needed. */
	for (double end = mono_s() + 15; mono_s() < end && (kill(cpid, 0) == 0 || kill(ppid, 0) == 0);)
		usleep(20000);
	{
		const char *argv[] = { ckpt_bin(), "restore", "-D", latest, "--stdio", "inherit", NULL };

		cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	}
	for (int i = 0; i < 10; i++) {
		cr_assert_geq(prog_read_line(&rp, line, sizeof(line), 10000), 0, "the restored tree is silent");
		cr_assert_eq(sscanf(line, "got %ld", &n), 1, "got '%s'", line);
		if (last >= 0)
			cr_expect_eq(n, last + 1, "after %ld came %ld", last, n);
		last = n;
	}
	cr_expect(alive(cpid), "the child did not come back as pid %d", cpid);
	cr_expect(alive(ppid), "the parent did not come back as pid %d", ppid);
	kill(cpid, SIGKILL);
	kill(ppid, SIGKILL);
	prog_kill(&rp);
}
