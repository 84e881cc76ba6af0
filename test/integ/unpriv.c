/* SPDX-License-Identifier: MIT */
/*
 * ckpt as a user who is not root, on that user's own process (issue 18,
 * section 1: unprivileged use). The tests run as root and drop to nobody
 * with setpriv(1), for ckpt and for the process it works on:
 * - `ckpt check` says which commands work as that user and what the
 *   others lack (the privilege, not a kernel version);
 * - dump (both modes), a delta, track and track -D work: no map_files, no
 *   timerslack_ns of another process, a user-mode-only userfaultfd; the
 *   checkpoint is whole (root restores it, as that user, and it ticks on
 *   intact);
 * - what cannot work says which privilege it needs: restore (the exe link),
 *   a seccomp filter (CAP_SYS_ADMIN), root's run directory.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/testutil.h"

#define SETPRIV "/usr/bin/setpriv"

static char tmp[64], udir[128], rundir[160];
static uid_t nobody_uid;
static gid_t nobody_gid;
static char uid_s[16], gid_s[16];

static void setup(void)
{
	struct passwd *pw = getpwnam("nobody");

	suite_dir_make(tmp, sizeof(tmp), "unpriv");
	cr_assert_eq(chmod(tmp, 0755), 0);
	if (!pw)
		return;
	nobody_uid = pw->pw_uid;
	nobody_gid = pw->pw_gid;
	snprintf(uid_s, sizeof(uid_s), "%u", (unsigned int)nobody_uid);
	snprintf(gid_s, sizeof(gid_s), "%u", (unsigned int)nobody_gid);
	/* The user's own: its checkpoints and its run directory. */
	snprintf(udir, sizeof(udir), "%s/u", tmp);
	snprintf(rundir, sizeof(rundir), "%s/run", udir);
	cr_assert_eq(mkdir(udir, 0700), 0);
	cr_assert_eq(mkdir(rundir, 0700), 0);
	cr_assert_eq(chown(udir, nobody_uid, nobody_gid), 0);
	cr_assert_eq(chown(rundir, nobody_uid, nobody_gid), 0);
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(unpriv, .init = setup, .fini = teardown);

/* Skip unless this can drop to nobody and nobody can run the binaries under test. */
static void need_nobody(void)
{
	char prog[4096];
	int st;

	if (geteuid() != 0)
		cr_skip_test("run as root: the tests drop to the user nobody");
	if (!nobody_uid)
		cr_skip_test("no user 'nobody'");
	if (access(SETPRIV, X_OK) < 0)
		cr_skip_test("no %s (util-linux)", SETPRIV);
	st = sh("%s --reuid %s --regid %s --clear-groups test -x '%s' -a -x '%s'", SETPRIV, uid_s, gid_s,
		ckpt_bin(), prog_path("target", prog, sizeof(prog)));
	if (st != 0)
		cr_skip_test("nobody cannot run '%s' or '%s'", ckpt_bin(), prog);
}

/* ckpt ARGS... as nobody, with its own run directory (or CKPT_RUNDIR=@rd if not NULL). */
static void run_as_nobody(struct run_result *r, const char *rd, const char *const *args)
{
	const char *argv[48];
	char env[200];
	int n = 0;

	snprintf(env, sizeof(env), "CKPT_RUNDIR=%s", rd ? rd : rundir);
	argv[n++] = SETPRIV;
	argv[n++] = "--reuid";
	argv[n++] = uid_s;
	argv[n++] = "--regid";
	argv[n++] = gid_s;
	argv[n++] = "--clear-groups";
	argv[n++] = "/usr/bin/env";
	argv[n++] = env;
	argv[n++] = ckpt_bin();
	while (*args && n < 47)
		argv[n++] = *args++;
	argv[n] = NULL;
	cr_assert_eq(run_argv(argv, r), 0);
}

#define NOBODY(r, ...) run_as_nobody((r), NULL, (const char *const[]){ __VA_ARGS__, NULL })

/* test/progs/target MODE as nobody; for counter, once it ticks. */
static void start_as_nobody(struct prog *p, const char *mode)
{
	char path[4096], line[256];
	const char *argv[] = { "/bin/sh", "-c", STDERR_NULL, SETPRIV, "--reuid", uid_s, "--regid", gid_s,
			       "--clear-groups", prog_path("target", path, sizeof(path)), mode, NULL };

	cr_assert_eq(prog_spawn(p, false, NULL, argv), 0);
	for (int i = 0; i < 5; i++) {
		cr_assert_geq(prog_read_line(p, line, sizeof(line), 5000), 0, "target %s did not start", mode);
		if (!strncmp(line, "tick", 4) || !strcmp(line, "ready"))
			break;
	}
}

/* The counter ticks on, every tick "ok": @n more lines. */
static void ticks_ok(struct prog *p, int n, const char *what)
{
	char line[256];

	for (int i = 0; i < n; i++) {
		cr_assert_geq(prog_read_line(p, line, sizeof(line), 3000), 0, "%s: pid %d does not tick", what, p->pid);
		cr_assert(strstr(line, " ok"), "%s: pid %d: '%s'", what, p->pid, line);
	}
}

static json_object *command_of(json_object *doc, const char *name)
{
	json_object *user, *cmds;

	if (!json_object_object_get_ex(doc, "user", &user) || !json_object_object_get_ex(user, "commands", &cmds))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(cmds); i++) {
		json_object *c = json_object_array_get_idx(cmds, i), *n;

		if (json_object_object_get_ex(c, "command", &n) && !strcmp(json_object_get_string(n), name))
			return c;
	}
	return NULL;
}

static bool works(json_object *c)
{
	json_object *w;

	return c && json_object_object_get_ex(c, "works", &w) && json_object_get_boolean(w);
}

static const char *privileges(json_object *c)
{
	json_object *p;

	return c && json_object_object_get_ex(c, "privileges", &p) ? json_object_get_string(p) : "";
}

Test(unpriv, check_says_what_works_as_this_user, .timeout = 60)
{
	static const char *const own[] = { "dump", "dump --leave-running, --parent", "track, track -D" };
	struct run_result root, user, text;
	json_object *rdoc, *udoc, *uid;

	need_nobody();
	cr_assert_eq(run_ckpt(&root, "check", "--json", NULL), 0);
	NOBODY(&user, "check", "--json");
	NOBODY(&text, "check");
	rdoc = json_tokener_parse(root.out);
	udoc = json_tokener_parse(user.out);
	cr_assert_not_null(rdoc, "%s", root.out);
	cr_assert_not_null(udoc, "%s", user.out);
	cr_assert(json_object_object_get_ex(udoc, "user", &uid) && json_object_object_get_ex(uid, "uid", &uid),
		  "no user in: %s", user.out);
	cr_expect_eq(json_object_get_int64(uid), (int64_t)nobody_uid);
	/* What the kernel gives root, the owner has for its own process. */
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (works(command_of(rdoc, own[i])))
			cr_expect(works(command_of(udoc, own[i])), "'%s' works for root, not for nobody: %s", own[i],
				  user.out);
	if (works(command_of(rdoc, "restore"))) {
		cr_expect_not(works(command_of(udoc, "restore")), "%s", user.out);
		cr_expect(strstr(privileges(command_of(udoc, "restore")), "CAP_CHECKPOINT_RESTORE"), "%s", user.out);
	}
	if (works(command_of(rdoc, "restore of threads, a tree, --restore-pid")))
		cr_expect(strstr(privileges(command_of(udoc, "restore of threads, a tree, --restore-pid")),
				 "CAP_SYS_ADMIN"), "%s", user.out);
	cr_expect(strstr(text.out, "as uid ") && strstr(text.out, "WORKS"), "%s", text.out);
	/* A feature missing for want of a privilege names it, not a kernel version. */
	cr_expect(strstr(text.out, "(needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)"), "%s", text.out);
	cr_expect_eq(text.status, 1, "the core (restore) is not all there: %s", text.err);
	cr_expect(strstr(text.err, "for want of a privilege"), "%s", text.err);
	json_object_put(rdoc);
	json_object_put(udoc);
	run_result_done(&root);
	run_result_done(&user);
	run_result_done(&text);
}

/* Restore @dir as root: the process comes back as nobody, and ticks on intact. */
static void restored_by_root(const char *dir)
{
	char out[256], pidf[256], buf[4096] = "", status[64];
	const char *argv[] = { ckpt_bin(), "restore", "-D", dir, "--detach", "--stdio", out, "--pidfile", pidf, NULL };
	struct run_result r;
	int lines = 0, fd;
	pid_t pid = 0;
	FILE *f;

	snprintf(out, sizeof(out), "%s/restored.out", tmp);
	snprintf(pidf, sizeof(pidf), "%s/restored.pid", tmp);
	cr_assert_eq(run_argv(argv, &r), 0);
	cr_assert_eq(r.status, 0, "root's restore of nobody's checkpoint: %s", r.err);
	run_result_done(&r);
	f = fopen(pidf, "r");
	cr_assert(f && fscanf(f, "%d", &pid) == 1, "no pidfile");
	fclose(f);
	prog_track_pid(pid);
	for (double end = mono_s() + 10; mono_s() < end && lines < 3; usleep(20000)) {
		ssize_t k;

		if ((fd = open(out, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		k = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[k > 0 ? k : 0] = '\0';
		lines = 0;
		for (char *s = buf; (s = strchr(s, '\n')); s++)
			lines++;
	}
	cr_assert_geq(lines, 3, "the restored process does not tick: '%s'", buf);
	for (char *s = buf, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
		*nl = '\0';
		cr_assert(strstr(s, " ok"), "restored memory damaged: '%s'", s);
	}
	snprintf(status, sizeof(status), "grep -q '^Uid:[[:space:]]*%u[[:space:]]' /proc/%d/status", nobody_uid,
		 pid);
	cr_expect_eq(sh("%s", status), 0, "the restored process is not nobody's");
	kill(pid, SIGKILL);
}

Test(unpriv, dump_and_track_of_ones_own_process_work, .timeout = 120)
{
	char pid[16], full[200], delta[200], series[200], latest[260], log[200];
	struct run_result r;
	struct prog p;

	need_nobody();
	start_as_nobody(&p, "counter");
	snprintf(pid, sizeof(pid), "%d", p.pid);
	snprintf(full, sizeof(full), "%s/full", udir);
	snprintf(delta, sizeof(delta), "%s/delta", udir);
	snprintf(series, sizeof(series), "%s/series", udir);

	NOBODY(&r, "dump", "-t", pid, "-D", full, "--leave-running");
	cr_assert_eq(r.status, 0, "dump --leave-running as nobody: %s", r.err);
	cr_expect_not(strstr(r.err, "timer slack"), "%s", r.err);
	run_result_done(&r);
	ticks_ok(&p, 3, "after dump --leave-running");

	NOBODY(&r, "dump", "-t", pid, "-D", delta, "--parent", full, "--leave-running");
	cr_assert_eq(r.status, 0, "a delta as nobody: %s", r.err);
	cr_expect(strstr(r.out, "delta of"), "%s", r.out);
	run_result_done(&r);
	ticks_ok(&p, 3, "after the delta");

	NOBODY(&r, "track", "-t", pid, "--stop");
	cr_expect_eq(r.status, 0, "track --stop as nobody: %s", r.err);
	run_result_done(&r);
	{
		const char *argv[] = { SETPRIV, "--reuid", uid_s, "--regid", gid_s, "--clear-groups", "/usr/bin/env",
				       NULL, ckpt_bin(), "track", "-t", pid, "-D", series, NULL };
		char env[200];
		struct prog t;
		int status;

		snprintf(env, sizeof(env), "CKPT_RUNDIR=%s", rundir);
		argv[7] = env;
		snprintf(log, sizeof(log), "%s/track.log", tmp);
		cr_assert_eq(prog_spawn(&t, false, log, argv), 0);
		snprintf(latest, sizeof(latest), "%s/latest", series);
		for (double end = mono_s() + 10; mono_s() < end && access(latest, F_OK) < 0; usleep(50000))
			;
		usleep(1200000); /* a delta or two */
		kill(t.pid, SIGINT);
		status = prog_wait(&t, 10000);
		cr_expect(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "track -D as nobody: %#x",
			  status);
		cr_expect_eq(access(latest, F_OK), 0, "track -D as nobody made no checkpoint");
	}
	ticks_ok(&p, 3, "after track -D");

	snprintf(full, sizeof(full), "%s/killed", udir);
	NOBODY(&r, "dump", "-t", pid, "-D", full);
	cr_assert_eq(r.status, 0, "dump (kill mode) as nobody: %s", r.err);
	run_result_done(&r);
	cr_expect_geq(prog_wait(&p, 5000), 0, "nobody's dump did not kill its process");
	restored_by_root(full);
}

Test(unpriv, what_needs_a_privilege_is_refused_naming_it, .timeout = 120)
{
	char pid[16], dir[200], rootdir[200];
	struct run_result r;
	struct prog p;

	need_nobody();
	start_as_nobody(&p, "counter");
	snprintf(pid, sizeof(pid), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/forrestore", udir);
	NOBODY(&r, "dump", "-t", pid, "-D", dir, "--leave-running");
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);

	/* Restore sets /proc/PID/exe: CAP_CHECKPOINT_RESTORE. */
	NOBODY(&r, "restore", "-D", dir, "--detach", "--stdio", "null");
	if (r.status == 0)
		cr_skip_test("this kernel lets nobody restore");
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "CAP_CHECKPOINT_RESTORE"), "restore as nobody: %s", r.err);
	run_result_done(&r);

	/* Records in a directory of root's: refused, naming it. */
	snprintf(rootdir, sizeof(rootdir), "%s/rootrun", tmp);
	cr_assert_eq(mkdir(rootdir, 0777), 0);
	cr_assert_eq(chmod(rootdir, 0777), 0);
	snprintf(dir, sizeof(dir), "%s/inrootrun", udir);
	/* Tracked, with its record elsewhere: ckpt's own uffd is said to be ckpt's, not the application's. */
	run_as_nobody(&r, rootdir, (const char *const[]){ "dump", "-t", pid, "-D", dir, "--leave-running", NULL });
	cr_expect_eq(r.status, 4, "%s", r.err);
	cr_expect(strstr(r.err, "ckpt's own dirty tracking"), "%s", r.err);
	cr_expect_not(strstr(r.err, "a userfaultfd of the application"), "%s", r.err);
	run_result_done(&r);
	NOBODY(&r, "track", "-t", pid, "--stop");
	cr_expect_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	run_as_nobody(&r, rootdir, (const char *const[]){ "dump", "-t", pid, "-D", dir, "--leave-running", NULL });
	cr_expect_neq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.err, "belongs to uid 0, not to this user"), "%s", r.err);
	run_result_done(&r);
	ticks_ok(&p, 3, "after the refusals");
	prog_kill(&p);
}

/* PTRACE_SECCOMP_GET_FILTER needs CAP_SYS_ADMIN: named, the process left running. */
Test(unpriv, a_seccomp_filter_needs_cap_sys_admin, .timeout = 60)
{
	const char *argv[] = { SETPRIV, "--reuid", uid_s, "--regid", gid_s, "--clear-groups", NULL, "seccomp", NULL };
	char path[4096], line[256], pid[16], dir[200];
	struct run_result r;
	struct prog p;

	need_nobody();
	argv[6] = prog_path("judged", path, sizeof(path));
	cr_assert_eq(prog_spawn(&p, true, NULL, argv), 0);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 5000), 0, "judged did not start");
	snprintf(pid, sizeof(pid), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/seccomp", udir);
	NOBODY(&r, "dump", "-t", pid, "-D", dir);
	if (r.status == 0)
		cr_skip_test("this kernel lets nobody read a seccomp filter");
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "needs CAP_SYS_ADMIN"), "%s", r.err);
	run_result_done(&r);
	cr_expect(proc_state(p.pid) && proc_state(p.pid) != 'Z', "the process did not survive a refused dump");
	prog_kill(&p);
}
