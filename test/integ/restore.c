/* SPDX-License-Identifier: MIT */
/*
 * ckpt restore: processes come back and continue exactly where they were:
 * memory, registers (SSE too), blocking system calls, signals, files; real
 * programs (python3, perl, bash) continue their output with no gap and no
 * repeat; every checkpoint of a chain restores to its moment; bad input is
 * refused and leaves no half-restored process.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
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

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "restore-test");
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(restore, .init = setup, .fini = teardown, .timeout = 120);

static char *path_in(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", tmp, name);
	return buf;
}

static void send_line(struct prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(struct prog *p, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	cr_assert_eq(write(p->in_fd, line, strlen(line)), (ssize_t)strlen(line));
}

static void expect(struct prog *p, const char *prefix, char *buf, size_t len)
{
	int r = prog_read_line(p, buf, len, 10000);

	cr_assert_geq(r, 0, "no line (%s), expected '%s...'", strerror(-r), prefix);
	cr_assert(strncmp(buf, prefix, strlen(prefix)) == 0, "got '%s', expected '%s...'", buf, prefix);
}

static void dump_pid(pid_t pid, const char *dir, const char *parent, const char *mode)
{
	char ps[16];
	const char *argv[12];
	struct run_result r;
	int n = 0;

	snprintf(ps, sizeof(ps), "%d", pid);
	argv[n++] = ckpt_bin();
	argv[n++] = "dump";
	argv[n++] = "-t";
	argv[n++] = ps;
	argv[n++] = "-D";
	argv[n++] = dir;
	if (parent) {
		argv[n++] = "--parent";
		argv[n++] = parent;
	}
	if (mode)
		argv[n++] = mode;
	argv[n] = NULL;
	cr_assert_eq(run_argv(argv, &r), 0);
	cr_assert_eq(r.status, 0, "dump of %d into %s failed: %s", pid, dir, r.err);
	run_result_done(&r);
}

/*
 * `ckpt restore -D dir --stdio inherit [extra]` with its stdin and stdout on
 * pipes: the restored process inherits them (its own were pipes too).
 */
static void restore_spawn(struct prog *p, const char *dir, const char *extra)
{
	const char *argv[] = { ckpt_bin(), "restore", "-D", dir, "--stdio", "inherit", extra, NULL };

	cr_assert_eq(prog_spawn(p, true, NULL, argv), 0);
}

static void kill_restored(struct prog *rp)
{
	/* ckpt restore forwards SIGTERM to the process and exits with its status. */
	kill(rp->pid, SIGTERM);
	prog_wait(rp, 5000);
	prog_kill(rp);
}

/* ---- a counter in every kind of memory ---- */

Test(restore, counter_continues_where_it_was)
{
	struct prog p, rp;
	char d0[128], d1[128], line[256];
	unsigned long last = 0, n;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "counter", NULL), 0);
	for (int i = 0; i < 5; i++)
		expect(&p, "tick", line, sizeof(line));
	dump_pid(p.pid, path_in("0", d0, sizeof(d0)), NULL, "--leave-running");
	for (int i = 0; i < 5; i++)
		expect(&p, "tick", line, sizeof(line));
	cr_assert_eq(sscanf(line, "tick %lu", &last), 1);
	/* Left stopped: the last tick it printed is the one it was dumped at. */
	dump_pid(p.pid, path_in("1", d1, sizeof(d1)), d0, "--leave-stopped");
	while (prog_read_line(&p, line, sizeof(line), 300) >= 0)
		cr_assert_eq(sscanf(line, "tick %lu", &last), 1);
	cr_assert_gt(last, 9);
	prog_kill(&p);

	restore_spawn(&rp, d1, NULL);
	for (int i = 0; i < 20; i++) {
		expect(&rp, "tick", line, sizeof(line));
		cr_assert_eq(sscanf(line, "tick %lu", &n), 1);
		cr_assert_eq(n, last + 1 + (unsigned long)i, "after %lu came '%s'", last + (unsigned long)i, line);
		cr_assert(strstr(line, " ok"), "%s", line);
	}
	kill_restored(&rp);
}

/*
 * ckpt runs the new process on its own CPU while it builds it: the process
 * must get the affinity it was forked with back (ckpt's, here the test's).
 */
Test(restore, the_cpu_affinity_is_given_back)
{
	struct prog p;
	struct run_result r;
	char d[128], line[256];
	cpu_set_t want, got;
	pid_t pid;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		cr_skip_test("one CPU: nothing to pin");
	cr_assert_eq(prog_start(&p, true, 5000, "target", "counter", NULL), 0);
	expect(&p, "tick", line, sizeof(line));
	dump_pid(p.pid, path_in("aff", d, sizeof(d)), NULL, NULL);
	prog_kill(&p);
	cr_assert_eq(run_ckpt(&r, "restore", "-D", d, "--detach", "--leave-stopped", "--stdio", "null", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	pid = atoi(r.out);
	run_result_done(&r);
	cr_assert_gt(pid, 0);
	prog_track_pid(pid);
	cr_assert_eq(sched_getaffinity(0, sizeof(want), &want), 0);
	cr_assert_eq(sched_getaffinity(pid, sizeof(got), &got), 0);
	kill(pid, SIGKILL);
	cr_expect_gt(CPU_COUNT(&want), 1);
	cr_expect(CPU_EQUAL(&want, &got), "the restored process may run on %d CPUs, ckpt's caller on %d",
		  CPU_COUNT(&got), CPU_COUNT(&want));
}

Test(restore, inside_nanosleep_and_read)
{
	struct prog p, rp;
	char d[128], e[128], line[256];
	int ret, err;
	unsigned long long el;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "sleep", "1500", NULL), 0);
	usleep(300000);
	dump_pid(p.pid, path_in("sleep", d, sizeof(d)), NULL, NULL);
	prog_kill(&p);
	restore_spawn(&rp, d, NULL);
	expect(&rp, "slept", line, sizeof(line));
	cr_assert_eq(sscanf(line, "slept %d %d %llu", &ret, &err, &el), 3);
	cr_expect_eq(ret, 0, "nanosleep failed after restore: errno %d", err);
	cr_expect_geq(el, 1500000000ULL);
	kill_restored(&rp);

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	usleep(50000);
	dump_pid(p.pid, path_in("read", e, sizeof(e)), NULL, NULL);
	prog_kill(&p);
	restore_spawn(&rp, e, NULL);
	send_line(&rp, "after restore");
	expect(&rp, "got after restore", line, sizeof(line));
	kill_restored(&rp);
}

/* restart_nr of the first thread of checkpoint @dir (ckpt show --json), 0 if none. */
static int restart_nr_of(const char *dir)
{
	struct run_result r;
	json_object *j, *threads, *arr, *v;
	int nr = 0;

	cr_assert_eq(run_ckpt(&r, "show", dir, "--json", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	j = json_tokener_parse(r.out);
	cr_assert_not_null(j, "not JSON: %.200s", r.out);
	if (json_object_object_get_ex(j, "threads", &threads) && json_object_object_get_ex(threads, "threads", &arr) &&
	    json_object_object_get_ex(json_object_array_get_idx(arr, 0), "restart_nr", &v))
		nr = json_object_get_int(v);
	json_object_put(j);
	run_result_done(&r);
	return nr;
}

/*
 * A sleep that an earlier checkpoint interrupted goes on in the kernel's
 * restart_syscall; a second checkpoint finds the thread there, and the
 * restored process must not see EINTR.
 */
Test(restore, a_sleep_already_interrupted_once)
{
	struct prog p, rp;
	char d0[128], d1[128], line[256];
	int ret, err;
	unsigned long long el;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "sleep", "1500", NULL), 0);
	usleep(200000);
	dump_pid(p.pid, path_in("once", d0, sizeof(d0)), NULL, "--leave-running");
	usleep(100000);
	dump_pid(p.pid, path_in("twice", d1, sizeof(d1)), d0, NULL);
	prog_kill(&p);
	ret = restart_nr_of(d1);
	cr_expect(ret == 230 || ret == 35, "the second checkpoint says restart_syscall continues call %d", ret);
	restore_spawn(&rp, d1, NULL);
	expect(&rp, "slept", line, sizeof(line));
	cr_assert_eq(sscanf(line, "slept %d %d %llu", &ret, &err, &el), 3);
	cr_expect_eq(ret, 0, "nanosleep failed after restore: errno %d", err);
	cr_expect_geq(el, 1500000000ULL);
	kill_restored(&rp);
}

Test(restore, sse_registers_survive)
{
	struct prog p, rp;
	char d[128], line[256];
	unsigned long before, after;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "sse", NULL), 0);
	usleep(200000);
	send_line(&p, "c");
	expect(&p, "sse ok", line, sizeof(line));
	sscanf(line, "sse ok %lu", &before);
	dump_pid(p.pid, path_in("sse", d, sizeof(d)), NULL, NULL);
	prog_kill(&p);
	restore_spawn(&rp, d, NULL);
	usleep(300000);
	send_line(&rp, "c");
	expect(&rp, "sse ok", line, sizeof(line));
	sscanf(line, "sse ok %lu", &after);
	cr_expect_gt(after, before, "the SSE loop did not go on");
	kill_restored(&rp);
}

static uint64_t status_mask(pid_t pid, const char *key)
{
	char path[64], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			sscanf(line + strlen(key), ":\t%llx", &v);
	if (f)
		fclose(f);
	return v;
}

Test(restore, handlers_and_a_pending_signal)
{
	struct prog p, rp;
	char d[128], line[256], pidf[128];
	FILE *f;
	int rpid = 0;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "pending", NULL), 0);
	dump_pid(p.pid, path_in("sig", d, sizeof(d)), NULL, NULL);
	prog_kill(&p);
	{
		const char *argv[] = { ckpt_bin(), "restore", "-D", d, "--stdio", "inherit", "--pidfile",
				       path_in("pid", pidf, sizeof(pidf)), NULL };

		cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	}
	send_line(&rp, "c");
	expect(&rp, "usr1 0", line, sizeof(line));
	f = fopen(pidf, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &rpid), 1);
	fclose(f);
	prog_track_pid(rpid);
	cr_expect(status_mask(rpid, "SigPnd") & (1ULL << (SIGUSR1 - 1)), "SIGUSR1 not pending");
	cr_expect(status_mask(rpid, "SigBlk") & (1ULL << (SIGUSR1 - 1)), "SIGUSR1 not blocked");
	cr_expect(status_mask(rpid, "SigCgt") & (1ULL << (SIGUSR1 - 1)), "no SIGUSR1 handler");
	cr_expect(status_mask(rpid, "SigIgn") & (1ULL << (SIGUSR2 - 1)), "SIGUSR2 not ignored");
	send_line(&rp, "u");
	expect(&rp, "usr1 1", line, sizeof(line));
	send_line(&rp, "c");
	expect(&rp, "usr1 1", line, sizeof(line));
	kill_restored(&rp);
}

Test(restore, open_file_at_its_position)
{
	struct prog p, rp;
	char d[128], file[128], line[256], buf[32] = "";
	FILE *f;

	path_in("digits", file, sizeof(file));
	cr_assert_eq(prog_start(&p, true, 5000, "target", "file", file, NULL), 0);
	for (int i = 0; i < 3; i++) {
		send_line(&p, "w");
		expect(&p, "wrote", line, sizeof(line));
	}
	dump_pid(p.pid, path_in("file", d, sizeof(d)), NULL, NULL);
	prog_kill(&p);
	restore_spawn(&rp, d, NULL);
	send_line(&rp, "w");
	expect(&rp, "wrote 5", line, sizeof(line));
	f = fopen(file, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_expect_str_eq(buf, "01234");
	kill_restored(&rp);
}

/* ---- real programs ---- */

/*
 * Run @argv with stdout into a file; dump it twice with --leave-running
 * (the second a delta), kill it, restore the delta: the file must read as
 * one uninterrupted run (line i is the reference's line i).
 */
static void real_program(const char *name, const char *const *argv)
{
	struct prog p, ref, rp;
	char out[128], refout[128], d0[128], d1[128], pidf[128];
	int rpid = 0;

	snprintf(out, sizeof(out), "%s/%s.out", tmp, name);
	snprintf(refout, sizeof(refout), "%s/%s.ref", tmp, name);
	cr_assert_eq(prog_spawn(&ref, false, refout, argv), 0);
	cr_assert_eq(prog_spawn(&p, false, out, argv), 0);
	wait_lines(out, 20);
	snprintf(d0, sizeof(d0), "%s/%s.0", tmp, name);
	snprintf(d1, sizeof(d1), "%s/%s.1", tmp, name);
	dump_pid(p.pid, d0, NULL, "--leave-running");
	wait_lines(out, 40);
	dump_pid(p.pid, d1, d0, "--leave-running");
	wait_lines(out, 60);
	prog_kill(&p);
	/* The restored process writes on at the file position it had at d1. */
	{
		const char *rargv[] = { ckpt_bin(), "restore", "-D", d1, "--detach", "--pidfile",
					path_in("rpid", pidf, sizeof(pidf)),
					/* fd 2 is the test's own stderr, maybe a pipe: not run_argv's. */
					"--stdio", "null", NULL };
		struct run_result r;

		cr_assert_eq(run_argv(rargv, &r), 0);
		cr_assert_eq(r.status, 0, "restore of %s failed: %s", name, r.err);
		rpid = atoi(r.out);
		run_result_done(&r);
	}
	cr_assert_gt(rpid, 0);
	prog_track_pid(rpid);
	wait_lines(out, 100);
	wait_lines(refout, 120);
	kill(rpid, SIGKILL);
	/* A loaded machine may have slowed the reference down: let it catch up. */
	wait_lines(refout, count_lines(out));
	prog_kill(&ref);
	(void)rp;
	expect_same_output(name, out, refout, 100);
}

Test(restore, python3)
{
	struct real_prog rp;
	char fifo[128];

	if (!real_prog_argv("python3", path_in("python3.fifo", fifo, sizeof(fifo)), &rp))
		cr_skip_test("no %s", rp.argv[0]);
	real_program("python3", rp.argv);
}

Test(restore, perl)
{
	struct real_prog rp;
	char fifo[128];

	if (!real_prog_argv("perl", path_in("perl.fifo", fifo, sizeof(fifo)), &rp))
		cr_skip_test("no %s", rp.argv[0]);
	real_program("perl", rp.argv);
}

Test(restore, bash)
{
	struct real_prog rp;
	char fifo[128];

	if (!real_prog_argv("bash", path_in("bash.fifo", fifo, sizeof(fifo)), &rp))
		cr_skip_test("no %s", rp.argv[0]);
	real_program("bash", rp.argv);
}

/* ---- chains ---- */

Test(restore, every_checkpoint_of_a_chain_restores_to_its_moment)
{
	struct prog p;
	/* A full checkpoint and 10 deltas. */
	enum { N = 11 };
	char dir[N][128], sums[N][128], after[128], line[1024];

	cr_assert_eq(prog_start(&p, true, 0, "dirtier", NULL), 0);
	expect(&p, "ready", line, sizeof(line));
	for (int k = 0; k < N; k++) {
		snprintf(dir[k], sizeof(dir[k]), "%s/c%d", tmp, k);
		snprintf(sums[k], sizeof(sums[k]), "%s/s%d", tmp, k);
		send_line(&p, "fill heap %d %d", k, 10 + k);
		expect(&p, "ok", line, sizeof(line));
		send_line(&p, "w bss %d", 20 + k);
		expect(&p, "ok", line, sizeof(line));
		send_line(&p, "fill shared %d", 30 + k);
		expect(&p, "ok", line, sizeof(line));
		send_line(&p, "sums %s", sums[k]);
		expect(&p, "ok", line, sizeof(line));
		/* The last in kill mode: its pages go straight from the frozen process to the writer. */
		dump_pid(p.pid, dir[k], k ? dir[k - 1] : NULL, k == N - 1 ? NULL : "--leave-running");
	}
	prog_kill(&p);
	for (int k = 0; k < N; k++) {
		struct prog rp;
		char cmd[512];

		restore_spawn(&rp, dir[k], NULL);
		snprintf(after, sizeof(after), "%s/after%d", tmp, k);
		send_line(&rp, "sums %s", after);
		expect(&rp, "ok", line, sizeof(line));
		snprintf(cmd, sizeof(cmd), "cmp -s %s %s", sums[k], after);
		cr_expect_eq(system(cmd), 0, "checkpoint %d does not restore to its moment", k);
		kill_restored(&rp);
	}
}

/* A full dump in kill mode (streamed to the writer in chunks) restores every page. */
Test(restore, a_full_dump_in_kill_mode_restores_every_page)
{
	struct prog p, rp;
	char d[128], sums[128], after[128], line[1024], cmd[512];

	cr_assert_eq(prog_start(&p, true, 0, "dirtier", NULL), 0);
	expect(&p, "ready", line, sizeof(line));
	send_line(&p, "fill heap 7 40");
	expect(&p, "ok", line, sizeof(line));
	/* 64 MiB: several chunks of the stream. */
	send_line(&p, "fillr big 0 16384");
	expect(&p, "ok", line, sizeof(line));
	send_line(&p, "fill shared 8");
	expect(&p, "ok", line, sizeof(line));
	send_line(&p, "w bss 9");
	expect(&p, "ok", line, sizeof(line));
	send_line(&p, "sums %s", path_in("ksums", sums, sizeof(sums)));
	expect(&p, "ok", line, sizeof(line));
	dump_pid(p.pid, path_in("kill", d, sizeof(d)), NULL, NULL);
	cr_expect_eq(waitpid(p.pid, NULL, 0), p.pid, "the dump did not kill it");
	restore_spawn(&rp, d, NULL);
	send_line(&rp, "sums %s", path_in("kafter", after, sizeof(after)));
	expect(&rp, "ok", line, sizeof(line));
	snprintf(cmd, sizeof(cmd), "cmp -s %s %s", sums, after);
	cr_expect_eq(system(cmd), 0, "the restored memory differs");
	kill_restored(&rp);
}

Test(restore, restored_process_dumps_and_restores_again)
{
	struct prog p, rp, rp2;
	char d0[128], d1[128], d2[128], pidf[128], line[256];
	unsigned long last = 0, n;
	FILE *f;
	int rpid = 0;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "counter", NULL), 0);
	expect(&p, "tick", line, sizeof(line));
	dump_pid(p.pid, path_in("a", d0, sizeof(d0)), NULL, NULL);
	prog_kill(&p);
	{
		const char *argv[] = { ckpt_bin(), "restore", "-D", d0, "--stdio", "inherit", "--pidfile",
				       path_in("pid", pidf, sizeof(pidf)), NULL };

		cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	}
	expect(&rp, "tick", line, sizeof(line));
	f = fopen(pidf, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &rpid), 1);
	fclose(f);
	prog_track_pid(rpid);
	/* The restored process, tracked and dumped twice, then restored again. */
	dump_pid(rpid, path_in("b", d1, sizeof(d1)), NULL, "--leave-running");
	expect(&rp, "tick", line, sizeof(line));
	cr_assert_eq(sscanf(line, "tick %lu", &last), 1);
	dump_pid(rpid, path_in("c", d2, sizeof(d2)), d1, "--leave-stopped");
	while (prog_read_line(&rp, line, sizeof(line), 300) >= 0)
		cr_assert_eq(sscanf(line, "tick %lu", &last), 1);
	kill(rpid, SIGKILL);
	prog_wait(&rp, 5000);
	prog_kill(&rp);
	restore_spawn(&rp2, d2, NULL);
	expect(&rp2, "tick", line, sizeof(line));
	cr_assert_eq(sscanf(line, "tick %lu", &n), 1);
	cr_expect_eq(n, last + 1);
	cr_expect(strstr(line, " ok"));
	kill_restored(&rp2);
}

/* ---- bad input ---- */

static int count_comm(const char *comm)
{
	char cmd[128], buf[64];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "pgrep -c -x %s", comm);
	f = popen(cmd, "r");
	if (!f || !fgets(buf, sizeof(buf), f))
		buf[0] = '0';
	if (f)
		pclose(f);
	return atoi(buf);
}

Test(restore, bad_input_is_refused_and_nothing_half_restored_runs)
{
	struct prog p;
	struct run_result r;
	char d[128], bin[128], cmd[1024], path[256];
	int before;

	/* A copy of the program, so that its file can be changed afterwards. */
	path_in("target-copy", bin, sizeof(bin));
	prog_path("target", path, sizeof(path));
	snprintf(cmd, sizeof(cmd), "cp %s %s", path, bin);
	cr_assert_eq(system(cmd), 0);
	{
		const char *argv[] = { bin, "read", NULL };
		char line[64];

		cr_assert_eq(prog_spawn(&p, true, NULL, argv), 0);
		cr_assert_geq(prog_read_line(&p, line, sizeof(line), 5000), 0);
	}
	dump_pid(p.pid, path_in("bad", d, sizeof(d)), NULL, "--leave-running");

	/* Its pid is taken (the process still runs): --restore-pid refuses. */
	cr_assert_eq(run_ckpt(&r, "restore", "-D", d, "--restore-pid", "--detach", NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "is taken"), "%s", r.err);
	run_result_done(&r);
	prog_kill(&p);

	/* A missing checkpoint. */
	cr_assert_eq(run_ckpt(&r, "restore", "-D", "/nonexistent/ckpt", NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "/nonexistent/ckpt"), "%s", r.err);
	run_result_done(&r);

	/* A newer format version. */
	{
		char inv[200], newer[220];

		snprintf(inv, sizeof(inv), "%s/inventory.json", d);
		snprintf(newer, sizeof(newer), "%s.orig", inv);
		snprintf(cmd, sizeof(cmd),
			 "cp %s %s && python3 -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); "
			 "d[\"format_version\"]=7; json.dump(d, open(p, \"w\"))' %s",
			 inv, newer, inv);
		cr_assert_eq(system(cmd), 0);
		cr_assert_eq(run_ckpt(&r, "restore", "-D", d, NULL), 0);
		cr_expect_eq(r.status, 1);
		cr_expect(strstr(r.err, "version"), "%s", r.err);
		run_result_done(&r);
		snprintf(cmd, sizeof(cmd), "mv %s %s", newer, inv);
		cr_assert_eq(system(cmd), 0);
	}

	/* The mapped executable changed since the dump: refused, naming it. */
	before = count_comm("target-copy");
	sleep(1);
	snprintf(cmd, sizeof(cmd), "touch %s", bin);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(run_ckpt(&r, "restore", "-D", d, NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "changed since the checkpoint") && strstr(r.err, bin), "%s", r.err);
	run_result_done(&r);
	cr_expect_eq(count_comm("target-copy"), before, "a half-restored process was left");

	/* Corrupt pages: found while restoring, the child is killed. */
	{
		char pages[256];
		int fd;
		struct stat st;

		snprintf(cmd, sizeof(cmd), "touch -d @0 %s", bin); /* not the cause this time */
		snprintf(pages, sizeof(pages), "%s/pages.zst", d);
		cr_assert_eq(stat(pages, &st), 0);
		fd = open(pages, O_WRONLY);
		cr_assert_geq(fd, 0);
		cr_assert_eq(pwrite(fd, "\xff\xff\xff\xff", 4, st.st_size / 2), 4);
		close(fd);
		cr_assert_eq(run_ckpt(&r, "restore", "-D", d, "--stdio", "null", NULL), 0);
		cr_expect_eq(r.status, 1);
		run_result_done(&r);
		cr_expect_eq(count_comm("target-copy"), before, "a half-restored process was left");
	}
}

Test(restore, restore_pid_gives_the_same_pid)
{
	struct prog p;
	struct run_result r;
	char d[128];
	pid_t old;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	old = p.pid;
	dump_pid(p.pid, path_in("samepid", d, sizeof(d)), NULL, NULL);
	prog_wait(&p, 5000);
	prog_kill(&p);
	cr_assert_eq(run_ckpt(&r, "restore", "-D", d, "--restore-pid", "--detach", "--stdio", "null", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_eq(atoi(r.out), old);
	prog_track_pid(atoi(r.out));
	run_result_done(&r);
}

/*
 * Thousands of mappings: restore makes the private anonymous ones in one
 * loop of remote calls per batch. Every page, its mapping's bounds and its
 * protection must come back (manymaps checks them itself), eagerly and
 * lazily.
 */
static void many_mappings(const char *mode)
{
	struct prog p, rp;
	char d[128], line[256];

	cr_assert_eq(prog_start(&p, true, 10000, "manymaps", "20000", NULL), 0);
	dump_pid(p.pid, path_in(mode ? "maps-lazy" : "maps", d, sizeof(d)), NULL, NULL);
	prog_kill(&p);
	restore_spawn(&rp, d, mode);
	send_line(&rp, "c");
	expect(&rp, "ok", line, sizeof(line));
	cr_expect_str_eq(line, "ok 20000");
	kill_restored(&rp);
}

Test(restore, twenty_thousand_mappings_come_back_exactly)
{
	many_mappings(NULL);
}

Test(restore, twenty_thousand_mappings_come_back_exactly_lazily)
{
	many_mappings("--lazy");
}
