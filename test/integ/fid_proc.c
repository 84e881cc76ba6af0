/* SPDX-License-Identifier: MIT */
/*
 * Fidelity of the process attributes (issue 14): after dump (kill mode) and
 * restore, eager and lazy, test/progs/fid_proc finds in itself what it set
 * before the dump: its own session and process group, child subreaper,
 * parent-death signal and io priority (per thread), personality,
 * no_new_privs, dumpable, securebits, capabilities with the bounding set,
 * seccomp filters (per thread) and a nanosleep that continues with the
 * time it had left. As root, and as a process that made itself uid 65534
 * with an empty bounding set and locked securebits.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/testutil.h"

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "fidproc-test");
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(fid_proc, .init = setup, .fini = teardown, .timeout = 120);

/* Start fid_proc @mode; the pid of the process under test. */
static pid_t start(struct prog *p, const char *mode)
{
	char line[128];
	int pid = 0;

	cr_assert_eq(prog_start(p, true, 0, "fid_proc", mode, NULL), 0);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 10000), 0, "no pid line");
	if (strncmp(line, "FAIL", 4) == 0)
		cr_skip_test("fid_proc cannot set itself up here: %s", line);
	cr_assert_eq(sscanf(line, "pid %d", &pid), 1, "got '%s'", line);
	prog_track_pid(pid);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 10000), 0);
	cr_assert_str_eq(line, "ready");
	return pid;
}

static void round_trip(const char *mode, bool lazy, bool twice)
{
	const char *argv[] = { ckpt_bin(), "restore", "-D", NULL, "--stdio", "inherit", NULL, NULL };
	struct run_result r;
	struct prog p, rp;
	char dir[128];
	pid_t pid;
	double t;

	if (geteuid() != 0)
		cr_skip_test("needs root (the program sets securebits and drops its bounding set)");
	pid = start(&p, mode);
	/* The sleeper is well into its 10 s when it is dumped: a restart from scratch shows. */
	for (t = mono_s() + 4; mono_s() < t;)
		usleep(100000);
	snprintf(dir, sizeof(dir), "%s/%s%s", tmp, mode, lazy ? "-lazy" : "");
	{
		char pid_s[16], first[160];

		snprintf(pid_s, sizeof(pid_s), "%d", pid);
		/*
		 * A dump that leaves it running first: its sleep goes on through
		 * restart_syscall(2), and that is what the second one finds.
		 */
		if (twice) {
			snprintf(first, sizeof(first), "%s-first", dir);
			cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", first, "--leave-running", NULL), 0);
			cr_assert_eq(r.status, 0, "dump --leave-running: %s", r.err);
			run_result_done(&r);
		}
		cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", dir, NULL), 0);
	}
	cr_assert_eq(r.status, 0, "dump: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);

	argv[3] = dir;
	if (lazy)
		argv[6] = "--lazy";
	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	prog_expect_checks_ok(&rp, lazy ? "lazy restore" : "restore", 18);
	kill(pid, SIGKILL);
	prog_wait(&rp, 5000);
	prog_kill(&rp);
}

Test(fid_proc, root_eager)
{
	round_trip("root", false, false);
}

Test(fid_proc, root_lazy)
{
	round_trip("root", true, false);
}

Test(fid_proc, user_eager)
{
	round_trip("user", false, false);
}

Test(fid_proc, root_eager_after_a_leave_running_dump)
{
	round_trip("root", false, true);
}

Test(fid_proc, user_lazy)
{
	round_trip("user", true, false);
}

/*
 * One thread, dumped (killed) and restored: it keeps its pid when it is
 * free, so glibc's cached tid of the main thread (pthread_self()) is right.
 */
Test(fid_proc, single_thread_keeps_its_free_pid)
{
	const char *argv[] = { ckpt_bin(), "restore", "-D", NULL, "--stdio", "inherit", NULL };
	struct run_result r;
	struct prog p, rp;
	char dir[128], pid_s[16];
	pid_t pid = start(&p, "single");

	snprintf(dir, sizeof(dir), "%s/single", tmp);
	snprintf(pid_s, sizeof(pid_s), "%d", pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "dump: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);
	/* PID 1 may take a moment to reap the killed process. */
	for (double t = mono_s() + 10; proc_state(pid) && mono_s() < t;)
		usleep(20000);
	argv[3] = dir;
	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	prog_expect_checks_ok(&rp, "restore", 3);
	kill(pid, SIGKILL);
	prog_wait(&rp, 5000);
	prog_kill(&rp);
}

/* Its pid taken (the process still runs): a new pid, and a warning that says what is stale. */
Test(fid_proc, single_thread_with_its_pid_taken_gets_a_new_one_and_a_warning)
{
	struct run_result r;
	struct prog p;
	char dir[128], pid_s[16];
	pid_t pid = start(&p, "single");
	int npid = 0;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/taken", tmp);
	snprintf(pid_s, sizeof(pid_s), "%d", pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", dir, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "dump: %s", r.err);
	run_result_done(&r);
	{
		char pidfile[160];

		snprintf(pidfile, sizeof(pidfile), "%s/taken.pid", tmp);
		cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--detach", "--stdio", "null", "--pidfile", pidfile,
				      NULL), 0);
		cr_assert_eq(r.status, 0, "restore: %s", r.err);
		cr_expect(strstr(r.err, "is taken") && strstr(r.err, "pthread_self"), "%s", r.err);
		run_result_done(&r);
		f = fopen(pidfile, "r");
		cr_assert_not_null(f);
		cr_assert_eq(fscanf(f, "%d", &npid), 1);
		fclose(f);
	}
	prog_track_pid(npid);
	cr_expect_neq(npid, pid);
	cr_expect_neq(proc_state(npid), 0, "the restored process %d is not there", npid);
	kill(npid, SIGKILL);
	kill(pid, SIGKILL);
	prog_kill(&p);
}
