/* SPDX-License-Identifier: MIT */
/*
 * One judge for dump and restore: for every refusal of restore that the
 * checkpoint's content decides, a real process (test/progs/judged) holding
 * it. A kill-mode `ckpt dump` refuses it with status 4 and a message naming
 * the object, writes nothing, and the process runs on with its memory as it
 * was; `--json` lists it under "unrestorable"; `track -D` says it once and
 * stops with status 4; with --allow-unrestorable the dump goes through,
 * and `ckpt restore` refuses the checkpoint with exactly the same list.
 * Children: in the checkpoint with their parent (-t is the tree), zombies too.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
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
	suite_dir_make(tmp, sizeof(tmp), "judge-test");
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(judge, .init = setup, .fini = teardown);

/* Some thread of @pid lives (the leader may have exited: leader-exited). */
static bool alive(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	bool any = false;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	while (d && !any && (de = readdir(d))) {
		char st = de->d_name[0] == '.' ? 0 : proc_state(atoi(de->d_name));

		any = st && st != 'Z' && st != 'X';
	}
	if (d)
		closedir(d);
	return any;
}

/* The process answers, and its memory is as it was. */
static void expect_unharmed(struct prog *p, const char *mode)
{
	char line[256], want[64];

	cr_assert(alive(p->pid), "pid %d (%s) is gone", p->pid, mode);
	cr_assert_eq(write(p->in_fd, "c\n", 2), 2);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 5000), 0, "pid %d (%s) does not answer", p->pid,
		      mode);
	snprintf(want, sizeof(want), "alive %s ok", mode);
	cr_expect_str_eq(line, want);
}

static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	cr_assert_not_null(d, "%s", dir);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.' || (de->d_name[1] && strcmp(de->d_name, ".."));
	closedir(d);
	return n;
}

static size_t occurrences(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The "what: reason" lines a refusing dump printed ("ckpt: dump:   what: reason"). */
static size_t refusal_lines(const char *err, char lines[][512], size_t max)
{
	static const char tag[] = "ckpt: dump:   ";
	size_t n = 0;

	for (const char *p = err; (p = strstr(p, tag)) && n < max; n++) {
		const char *s = p + strlen(tag), *e = strchr(s, '\n');
		size_t len = e ? (size_t)(e - s) : strlen(s);

		cr_assert_lt(len, 512);
		memcpy(lines[n], s, len);
		lines[n][len] = '\0';
		p = s;
	}
	return n;
}

enum arg { ARG_NONE, ARG_PID, ARG_PATH };

struct jcase {
	const char *mode;
	bool path;         /* the program takes a path (made under the test's tmp) */
	const char *what;  /* in the refusal; '@' stands for the pid or the path */
	enum arg arg;
	const char *why;   /* in the reason */
};

static const struct jcase cases[] = {
	{ "leader-exited", false, "process @ (1 threads left, the first ", ARG_PID, "main thread has exited" },
	{ "ghost-big", true, "fd 3 (@)", ARG_PATH, "a deleted file of 1048577 bytes, over the ghost limit of 1048576" },
	{ "proc-other", false, "fd 3 (/proc/1/stat)", ARG_NONE, "another process's (or thread's) /proc" },
	{ "proc-cwd", false, "working directory '/proc/@/fd' of process", ARG_PID, "/proc" },
	{ "deleted-dir", true, "fd 3 (@)", ARG_PATH, "deleted" },
	{ "socket", false, "fd 3 (tcp established 127.0.0.1:", ARG_NONE, "an established TCP connection" },
	{ "sysv-partial", false, "(/SYSV", ARG_NONE, "a System V segment partly unmapped" },
	{ "shared-deleted", true, "(@)", ARG_PATH,
	  "a shared mapping of a deleted file of 1052672 bytes, over the ghost limit of 1048576 bytes" },
};

static void run_case(const struct jcase *c)
{
	struct prog p;
	struct run_result r, rr;
	char path[128], parent[128], dir[160], ok_dir[160], what[256], pid[16], line[256];
	char lines[8][512];
	json_object *doc, *u, *v;
	size_t n;
	int status;

	snprintf(path, sizeof(path), "%s/%s-obj", tmp, c->mode);
	snprintf(parent, sizeof(parent), "%s/%s", tmp, c->mode);
	cr_assert_eq(mkdir(parent, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/img", parent);
	snprintf(ok_dir, sizeof(ok_dir), "%s/allowed", tmp);
	cr_assert_eq(prog_start(&p, true, 5000, "judged", c->mode, c->path ? path : NULL, NULL), 0);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	{
		const char *at = strchr(c->what, '@');

		if (at)
			snprintf(what, sizeof(what), "%.*s%s%s", (int)(at - c->what), c->what,
				 c->arg == ARG_PID ? pid : path, at + 1);
		else
			snprintf(what, sizeof(what), "%s", c->what);
	}

	/* Kill mode refuses: status 4, the object named, nothing written, the process unharmed. */
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, NULL), 0);
	cr_expect_eq(r.status, 4, "%s: status %d: %s", c->mode, r.status, r.err);
	cr_expect(strstr(r.err, what), "%s: '%s' not named in: %s", c->mode, what, r.err);
	cr_expect(strstr(r.err, c->why), "%s: '%s' not said in: %s", c->mode, c->why, r.err);
	cr_expect(strstr(r.err, "not killed"), "%s", r.err);
	cr_expect_eq(entries(parent), 0, "%s: the refused dump left something in '%s'", c->mode, parent);
	n = refusal_lines(r.err, lines, 8);
	cr_expect_geq(n, 1, "%s", r.err);
	run_result_done(&r);
	expect_unharmed(&p, c->mode);

	/* --json: the same list, in the error object. */
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, "--json", NULL), 0);
	cr_expect_eq(r.status, 4, "%s", r.err);
	doc = json_tokener_parse(r.out);
	cr_assert_not_null(doc, "not JSON: %s", r.out);
	cr_expect(json_object_object_get_ex(doc, "exit_code", &v) && json_object_get_int(v) == 4, "%s", r.out);
	cr_assert(json_object_object_get_ex(doc, "unrestorable", &u) && json_object_is_type(u, json_type_array),
		  "%s", r.out);
	cr_expect_eq(json_object_array_length(u), n, "%s", r.out);
	cr_assert_gt(json_object_array_length(u), 0);
	v = json_object_array_get_idx(u, 0);
	cr_expect(strstr(json_object_get_string(json_object_object_get(v, "what")), what), "%s", r.out);
	cr_expect(strstr(json_object_get_string(json_object_object_get(v, "reason")), c->why), "%s", r.out);
	json_object_put(doc);
	run_result_done(&r);
	expect_unharmed(&p, c->mode);

	/* track -D: said once, stopped at once with status 4, nothing written. */
	{
		double t0 = mono_s();

		cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, "--interval", "100ms", "--count",
				      "3", NULL), 0);
		cr_expect_lt(mono_s() - t0, 5.0, "%s: track went on for %.1f s", c->mode, mono_s() - t0);
	}
	cr_expect_eq(r.status, 4, "%s: %s", c->mode, r.err);
	cr_expect_eq(occurrences(r.err, what), 1, "%s: said %zu times: %s", c->mode, occurrences(r.err, what),
		     r.err);
	cr_expect_eq(entries(parent), 0, "%s: track left something in '%s'", c->mode, parent);
	run_result_done(&r);
	expect_unharmed(&p, c->mode);

	/* --allow-unrestorable: dumped (and killed), listed ... */
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", ok_dir, "--allow-unrestorable", NULL), 0);
	cr_expect_eq(r.status, 0, "%s: %s", c->mode, r.err);
	cr_expect(strstr(r.out, what), "%s: %s", c->mode, r.out);
	status = prog_wait(&p, 5000);
	cr_expect(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: status %#x",
		  c->mode, status);
	run_result_done(&r);

	/* ... and restore refuses it with the very same list. */
	cr_assert_eq(run_ckpt(&rr, "restore", "-D", ok_dir, "--detach", "--stdio", "null", NULL), 0);
	cr_expect_neq(rr.status, 0, "%s: restore took it: %s", c->mode, rr.out);
	for (size_t i = 0; i < n; i++)
		cr_expect(strstr(rr.err, lines[i]), "%s: the dump said '%s', restore did not: %s", c->mode,
			  lines[i], rr.err);
	cr_expect_eq(occurrences(rr.err, "ckpt: restore: ") - 1, n, "%s: restore refused other things: %s",
		     c->mode, rr.err);
	run_result_done(&rr);
	(void)line;
}

Test(judge, thread, .timeout = 60) { run_case(&cases[0]); }
Test(judge, ghost_file_over_the_limit, .timeout = 60) { run_case(&cases[1]); }
Test(judge, file_of_another_process_proc, .timeout = 60) { run_case(&cases[2]); }
Test(judge, cwd_in_proc, .timeout = 60) { run_case(&cases[3]); }
Test(judge, deleted_directory_fd, .timeout = 60) { run_case(&cases[4]); }
Test(judge, socket, .timeout = 60) { run_case(&cases[5]); }
Test(judge, sysv_shm_partly_unmapped, .timeout = 60) { run_case(&cases[6]); }
Test(judge, shared_mapping_of_deleted_file, .timeout = 60) { run_case(&cases[7]); }

/*
 * A full --leave-running dump refused by the judge leaves the process as it
 * was, its tracking too: a delta of the checkpoint before it still works
 * (the full dump's copy while it runs must not harvest before the judge).
 * And a process that had no tracking has none after a refusal.
 */
Test(judge, a_refused_dump_leaves_the_tracking_as_it_was, .timeout = 60)
{
	struct prog p;
	struct run_result r;
	char pid[16], d1[160], d2[160], d3[160];

	cr_assert_eq(prog_start(&p, true, 5000, "judged", "proc-other", NULL), 0);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	snprintf(d1, sizeof(d1), "%s/tracked-d1", tmp);
	snprintf(d2, sizeof(d2), "%s/tracked-d2", tmp);
	snprintf(d3, sizeof(d3), "%s/tracked-d3", tmp);

	/* Untracked, refused: still untracked. */
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", d2, "--leave-running", NULL), 0);
	cr_expect_eq(r.status, 4, "%s", r.err);
	run_result_done(&r);
	cr_expect_not(proc_uffd_registered(p.pid), "a refused dump left pid %d tracked", p.pid);

	/* Tracked by a first checkpoint, refused, then a delta of that checkpoint. */
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", d1, "--leave-running", "--allow-unrestorable", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", d2, "--leave-running", NULL), 0);
	cr_expect_eq(r.status, 4, "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", d3, "--parent", d1, "--leave-running",
			      "--allow-unrestorable", "--json", NULL), 0);
	cr_expect_eq(r.status, 0, "the delta of the checkpoint before the refused dump: %s", r.err);
	cr_expect(strstr(r.out, "\"kind\": \"delta\""), "%s", r.out);
	run_result_done(&r);
	expect_unharmed(&p, "proc-other");
	cr_assert_eq(run_ckpt(&r, "track", "--stop", "-t", pid, NULL), 0);
	run_result_done(&r);
	prog_kill(&p);
}

/* Nothing to refuse, so a kill-mode dump of judged @mode goes through and restores. */
static void dump_and_restore(const char *mode)
{
	struct prog p;
	struct run_result r;
	char pid[16], dir[128];
	json_object *doc, *v;

	snprintf(dir, sizeof(dir), "%s/%s", tmp, mode);
	cr_assert_eq(prog_start(&p, true, 5000, "judged", mode, NULL), 0);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, "--json", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	doc = json_tokener_parse(r.out);
	cr_assert_not_null(doc, "%s", r.out);
	cr_expect(json_object_object_get_ex(doc, "unrestorable", &v) && json_object_array_length(v) == 0,
		  "%s", r.out);
	cr_expect(json_object_object_get_ex(doc, "processes", &v) && json_object_array_length(v) == 1, "%s",
		  r.out);
	json_object_put(doc);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--detach", "--stdio", "null", "--json", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	doc = json_tokener_parse(r.out);
	if (doc && json_object_object_get_ex(doc, "pid", &v))
		prog_track_pid(json_object_get_int(v));
	cr_expect_not_null(doc, "%s", r.out);
	json_object_put(doc);
	run_result_done(&r);
}

/* The control. */
Test(judge, plain_process_is_dumped_and_restored, .timeout = 60)
{
	dump_and_restore("plain");
}

/* Seccomp filters are saved and restored (test/integ/fid_proc.c checks them): no refusal. */
Test(judge, seccomp_filter_is_dumped_and_restored, .timeout = 60)
{
	dump_and_restore("seccomp");
}

/* A System V segment (removed while attached) is restorable. */
Test(judge, sysv_shm_is_dumped_and_restored, .timeout = 60)
{
	dump_and_restore("sysv-shm");
}

static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		sscanf(p + 2, "%*c %d", &ppid);
	fclose(f);
	return ppid;
}

/* Start judged @mode, which makes a child first: its pid in @ret_kid. */
static void start_with_kid(struct prog *p, const char *mode, int *ret_kid)
{
	char line[128], path[256];

	cr_assert_eq(prog_spawn(p, true, NULL, (const char *[]){ prog_path("judged", path, sizeof(path)), mode,
								   NULL }), 0);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 5000), 0);
	cr_assert_eq(sscanf(line, "kid %d", ret_kid), 1, "%s", line);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 5000), 0);
	cr_assert_str_eq(line, "ready");
	prog_track_pid(*ret_kid);
}

/* The processes of a dump's --json, and whether @kid is one with @zombie. */
static void expect_processes(const char *out, pid_t kid, bool zombie)
{
	json_object *doc = json_tokener_parse(out), *v, *k;

	cr_assert_not_null(doc, "%s", out);
	cr_assert(json_object_object_get_ex(doc, "processes", &v) && json_object_array_length(v) == 2, "%s", out);
	k = json_object_array_get_idx(v, 1);
	cr_expect_eq(json_object_get_int(json_object_object_get(k, "pid")), kid, "%s", out);
	cr_expect_str_eq(json_object_get_string(json_object_object_get(k, "comm")), "judged");
	cr_expect_eq(json_object_get_boolean(json_object_object_get(k, "zombie")), zombie, "%s", out);
	json_object_put(doc);
}

/* Restore @dir, detached, our pipe its stdin (it waits on it); ckpt has exited. */
static void restore_inherit(const char *dir, struct prog *rp)
{
	const char *argv[] = { ckpt_bin(), "restore", "-D", dir, "--detach", "--stdio", "inherit", NULL };
	int status;

	cr_assert_eq(prog_spawn(rp, true, NULL, argv), 0);
	status = prog_wait(rp, 10000);
	cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "restore: status %#x", status);
}

/* A child is in the checkpoint with its parent (-t is the tree): killed with it, back with it. */
Test(judge, a_child_is_dumped_and_restored_with_its_parent, .timeout = 60)
{
	struct prog p, rp;
	struct run_result r;
	char pid[16], dir[128];
	int kid, status;
	pid_t parent;

	start_with_kid(&p, "child", &kid);
	parent = p.pid;
	snprintf(pid, sizeof(pid), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/kids", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, "--json", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	expect_processes(r.out, kid, false);
	run_result_done(&r);
	status = prog_wait(&p, 5000);
	cr_expect(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
	cr_expect(!alive(kid), "the child outlived the kill");

	restore_inherit(dir, &rp);
	prog_track_pid(parent);
	cr_expect(alive(parent) && alive(kid), "not both back");
	cr_expect_eq(ppid_of(kid), parent, "the child's parent is %d, not %d", ppid_of(kid), parent);
	kill(kid, SIGKILL);
	kill(parent, SIGKILL);
}

/* A zombie child comes back a zombie of its restored parent. */
Test(judge, a_zombie_child_is_restored_a_zombie, .timeout = 60)
{
	struct prog p, rp;
	struct run_result r;
	char pid[16], dir[128];
	int kid, status;
	pid_t parent;

	start_with_kid(&p, "zombie", &kid);
	parent = p.pid;
	cr_assert_eq(proc_state(kid), 'Z');
	snprintf(pid, sizeof(pid), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/zombie", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, "--json", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	expect_processes(r.out, kid, true);
	run_result_done(&r);
	status = prog_wait(&p, 5000);
	cr_expect(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);

	restore_inherit(dir, &rp);
	prog_track_pid(parent);
	cr_expect_eq(proc_state(kid), 'Z', "pid %d is '%c', not a zombie", kid, proc_state(kid));
	cr_expect_eq(ppid_of(kid), parent, "the zombie's parent is %d, not %d", ppid_of(kid), parent);
	kill(parent, SIGKILL);
}
