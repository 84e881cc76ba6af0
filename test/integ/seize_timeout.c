/* SPDX-License-Identifier: MIT */
/*
 * A thread that will not stop: the seize gives up at its deadline with an
 * error that names the thread, and the process runs on as before. The
 * thread in uninterruptible sleep is a vfork parent (test/progs/dstate):
 * it waits in a killable sleep, shown as D, that PTRACE_INTERRUPT does not
 * end, until its child exits. Once it wakes it must run on, neither
 * stopped nor traced.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ckpt/inject.h>
#include <ckpt/log.h>

#include "helpers/testutil.h"

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "seize-timeout");
}

static void teardown(void)
{
	ckpt_log_set_sink(NULL, NULL);
	suite_dir_remove(tmp, NULL);
}

TestSuite(seize_timeout, .init = setup, .fini = teardown, .timeout = 60);

/* State letter (stat field 3) and TracerPid of thread @tid of @pid; false if gone. */
static bool thread_status(pid_t pid, pid_t tid, char *ret_state, pid_t *ret_tracer)
{
	char path[96], buf[512];
	bool state = false, tracer = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f)) {
		char *paren = strrchr(buf, ')');

		state = paren && paren[1] == ' ' && paren[2];
		if (state)
			*ret_state = paren[2];
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "TracerPid:\t%d", ret_tracer) == 1) {
			tracer = true;
			break;
		}
	fclose(f);
	return state && tracer;
}

/* Wait (asserting, @ms at most) until thread @tid of @pid is in state @want. */
static void wait_thread_state(pid_t pid, pid_t tid, char want, int ms)
{
	double end = mono_s() + ms / 1000.0;
	char st = '?';
	pid_t tracer;

	while (mono_s() < end) {
		if (thread_status(pid, tid, &st, &tracer) && st == want)
			return;
		usleep(2000);
	}
	cr_assert_fail("thread %d of pid %d is in state %c, not %c, after %d ms", tid, pid, st, want,
		       ms);
}

/* Every thread of @pid: neither stopped nor traced. */
static void expect_all_free(pid_t pid, pid_t tid)
{
	pid_t tids[] = { pid, tid };

	for (size_t i = 0; i < 2; i++) {
		char st;
		pid_t tracer;

		cr_assert(thread_status(pid, tids[i], &st, &tracer), "thread %d of pid %d is gone",
			  tids[i], pid);
		cr_expect_eq(tracer, 0, "thread %d of pid %d is traced by %d", tids[i], pid, tracer);
		cr_expect(st != 't' && st != 'T', "thread %d of pid %d is stopped (%c)", tids[i], pid, st);
	}
}

/* The next line that starts with @prefix, within @ms (other lines are skipped). */
static void expect_line(struct prog *p, const char *prefix, int ms, char *buf, size_t len)
{
	double end = mono_s() + ms / 1000.0;

	while (mono_s() < end) {
		int left = (int)((end - mono_s()) * 1000) + 1;

		if (prog_read_line(p, buf, len, left) < 0)
			break;
		if (!strncmp(buf, prefix, strlen(prefix)))
			return;
	}
	cr_assert_fail("no line '%s...' from pid %d within %d ms", prefix, p->pid, ms);
}

/* The main thread still prints: @n more ticks within a second. */
static void expect_ticks(struct prog *p, int n)
{
	char line[128];

	for (int i = 0; i < n; i++)
		expect_line(p, "tick ", 1000, line, sizeof(line));
}

/* dstate with a vfork child of @child_ms; its vforker thread in D. */
static pid_t start_dstate(struct prog *p, long child_ms)
{
	char ms[32], line[128];
	int tid = 0;

	snprintf(ms, sizeof(ms), "%ld", child_ms);
	cr_assert_eq(prog_start(p, false, 5000, "dstate", ms, NULL), 0);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 5000), 0);
	cr_assert_eq(sscanf(line, "vforker %d", &tid), 1, "got '%s'", line);
	wait_thread_state(p->pid, tid, 'D', 2000);
	return tid;
}

Test(seize_timeout, dump_fails_at_the_deadline_and_the_process_runs_on)
{
	struct run_result res;
	struct prog p;
	char pid_s[16], dir[128], want[256], line[128];
	struct stat sb;
	pid_t tid = start_dstate(&p, 4000);
	double t0, dt;

	snprintf(pid_s, sizeof(pid_s), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/ckpt", tmp);
	t0 = mono_s();
	cr_assert_eq(run_ckpt(&res, "dump", "-t", pid_s, "-D", dir, "--leave-running", "--timeout", "1",
			      NULL), 0);
	dt = mono_s() - t0;
	cr_expect_eq(res.status, 1, "exit %d: %s", res.status, res.err);
	cr_expect_geq(dt, 1.0, "gave up after %.2f s, before the timeout", dt);
	cr_expect_lt(dt, 3.0, "took %.2f s for a timeout of 1 s", dt);
	snprintf(want, sizeof(want), "thread %d of pid %d (vforker) did not stop within 1 s: "
		 "uninterruptible sleep (D) in ", tid, p.pid);
	cr_expect(strstr(res.err, want), "no '%s' in: %s", want, res.err);
	snprintf(want, sizeof(want), "system call %d", SYS_vfork);
	cr_expect(strstr(res.err, want), "no '%s' in: %s", want, res.err);
	cr_expect(strstr(res.err, "the process was not killed and runs on"), "%s", res.err);
	cr_expect_neq(stat(dir, &sb), 0, "a failed dump left '%s'", dir);
	run_result_done(&res);

	/* Right after: everything runs, the vforker still sleeps, nothing is traced. */
	expect_all_free(p.pid, tid);
	expect_ticks(&p, 5);
	/* Once the child exits, the vforker runs on: not stopped, not killed. */
	expect_line(&p, "back ", 6000, line, sizeof(line));
	cr_expect_str_eq(line, "back 0");
	expect_line(&p, "work ", 1000, line, sizeof(line));
	expect_line(&p, "work ", 1000, line, sizeof(line));
	expect_all_free(p.pid, tid);
	expect_ticks(&p, 3);
	prog_kill(&p);
}

Test(seize_timeout, track_fails_at_the_deadline)
{
	struct run_result res;
	struct prog p;
	char pid_s[16], want[160], line[128];
	pid_t tid = start_dstate(&p, 3000);
	double t0, dt;

	snprintf(pid_s, sizeof(pid_s), "%d", p.pid);
	t0 = mono_s();
	cr_assert_eq(run_ckpt(&res, "track", "-t", pid_s, "--count", "1", "--timeout", "0.5", NULL), 0);
	dt = mono_s() - t0;
	cr_expect_eq(res.status, 1, "exit %d: %s", res.status, res.err);
	cr_expect(dt >= 0.5 && dt < 2.5, "took %.2f s for a timeout of 0.5 s", dt);
	snprintf(want, sizeof(want), "thread %d of pid %d (vforker) did not stop within 0.5 s", tid,
		 p.pid);
	cr_expect(strstr(res.err, want), "no '%s' in: %s", want, res.err);
	run_result_done(&res);
	expect_all_free(p.pid, tid);
	expect_ticks(&p, 3);
	expect_line(&p, "back ", 5000, line, sizeof(line));
	expect_line(&p, "work ", 1000, line, sizeof(line));
	expect_all_free(p.pid, tid);
	prog_kill(&p);
}

/*
 * In a caller that lives on (the library in a long-running program): the
 * thread that did not stop stays attached to the calling thread, stops for
 * it when it wakes, and the next seize from that thread takes it over.
 */
Test(seize_timeout, a_later_seize_takes_over_the_thread_left_attached)
{
	struct ckpt_inject *inj = NULL;
	struct prog p;
	char want[160], line[128], st;
	pid_t tid = start_dstate(&p, 1500), tracer;
	double t0, dt;

	log_capture_start();
	t0 = mono_s();
	cr_assert_eq(ckpt_inject_seize_timeout(p.pid, 0, 300, &inj), -ETIMEDOUT);
	dt = mono_s() - t0;
	cr_expect(dt >= 0.3 && dt < 1.0, "took %.2f s for a timeout of 300 ms", dt);
	snprintf(want, sizeof(want), "thread %d of pid %d (vforker) did not stop within 0.3 s: "
		 "uninterruptible sleep (D)", tid, p.pid);
	cr_expect(strstr(log_captured(), want), "no '%s' in: %s", want, log_captured());

	/* The main thread was let go; the vforker sleeps on, attached to us. */
	cr_assert(thread_status(p.pid, p.pid, &st, &tracer));
	cr_expect_eq(tracer, 0);
	cr_expect(st != 't' && st != 'T', "main thread stopped (%c)", st);
	cr_assert(thread_status(p.pid, tid, &st, &tracer));
	cr_expect_eq(tracer, (pid_t)syscall(SYS_gettid));
	cr_expect_eq(st, 'D');
	expect_ticks(&p, 3);

	/* It wakes and stops for us; the next seize takes it over and lets it go. */
	wait_thread_state(p.pid, tid, 't', 4000);
	cr_assert_eq(ckpt_inject_seize_timeout(p.pid, 0, 2000, &inj), 0, "%s", log_captured());
	cr_expect_eq(ckpt_inject_nr_threads(inj), 2);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	expect_all_free(p.pid, tid);
	expect_line(&p, "back ", 2000, line, sizeof(line));
	cr_expect_str_eq(line, "back 0");
	expect_line(&p, "work ", 1000, line, sizeof(line));
	expect_all_free(p.pid, tid);
	prog_kill(&p);
}

/* A short uninterruptible sleep is waited for: the seize ends when it does. */
Test(seize_timeout, a_short_sleep_is_waited_for)
{
	struct ckpt_inject *inj = NULL;
	struct prog p;
	char line[128];
	pid_t tid = start_dstate(&p, 700);
	double t0, dt;

	t0 = mono_s();
	cr_assert_eq(ckpt_inject_seize_timeout(p.pid, 0, 5000, &inj), 0);
	dt = mono_s() - t0;
	cr_expect_eq(ckpt_inject_nr_threads(inj), 2);
	cr_expect_lt(dt, 2.0, "took %.2f s", dt);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	expect_all_free(p.pid, tid);
	expect_line(&p, "back ", 2000, line, sizeof(line));
	expect_line(&p, "work ", 1000, line, sizeof(line));
	prog_kill(&p);
}
