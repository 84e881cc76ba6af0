/* SPDX-License-Identifier: MIT */
/* The `ckpt track` command: output, lifecycle, exit codes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/inject.h>
#include <ckpt/track.h>

#include "helpers/testutil.h"

static char rundir[64];

static void setup(void)
{
	snprintf(rundir, sizeof(rundir), "/tmp/ckpt-trackcli-XXXXXX");
	cr_assert_not_null(mkdtemp(rundir));
	setenv("CKPT_RUNDIR", rundir, 1);
}

static void teardown(void)
{
	prog_kill_all();
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", rundir);
	if (system(cmd) != 0)
		cr_log_warn("cannot remove %s", rundir);
}

TestSuite(track_cli, .init = setup, .fini = teardown);

static void start(struct prog *p)
{
	char line[1024];

	cr_assert_eq(prog_start(p, true, 0, "dirtier", NULL), 0);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 5000), 0);
}

static bool tracked_in_kernel(pid_t pid)
{
	char path[64], line[512];
	FILE *f;
	bool uw = false;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmFlags:", 8) && strstr(line, " uw"))
			uw = true;
	if (f)
		fclose(f);
	return uw;
}

/* Split NDJSON output into objects. */
static size_t parse_lines(char *out, json_object **objs, size_t max)
{
	size_t n = 0;

	for (char *l = strtok(out, "\n"); l && n < max; l = strtok(NULL, "\n")) {
		objs[n] = json_tokener_parse(l);
		cr_assert_not_null(objs[n], "not JSON: %s", l);
		n++;
	}
	return n;
}

static const char *str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static int64_t num(json_object *o, const char *k)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, k, &v), "no '%s'", k);
	return json_object_get_int64(v);
}

Test(track_cli, json_lines_then_untracked)
{
	struct prog p;
	struct run_result r;
	char pid[16];
	json_object *o[16];
	size_t n;

	start(&p);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(write(p.in_fd, "random\n", 7), 7);
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "--interval", "100ms", "--count", "3", "--json",
			      NULL), 0);
	cr_expect_eq(r.status, 0, "stderr: %s", r.err);
	n = parse_lines(r.out, o, 16);
	cr_assert_eq(n, 5, "armed + 3 samples + end");
	cr_expect_str_eq(str(o[0], "event"), "armed");
	cr_expect_str_eq(str(o[4], "event"), "end");
	for (int i = 1; i <= 3; i++) {
		cr_expect_gt(num(o[i], "pages"), 0, "the random writer wrote nothing?");
		cr_expect_eq(num(o[i], "bytes"), num(o[i], "pages") * 4096);
		cr_expect_eq(num(o[i], "generation"), i);
		cr_expect_gt(num(o[i], "rss_kib"), 0);
		for (const char *const *k = (const char *const[]){ "time_s", "interval_s", "rate_mib_s",
								  "ranges", "maps_added", "maps_removed",
								  "scan_ms", "freeze_ms", NULL };
		     *k; k++)
			cr_expect_not_null(str(o[i], *k), "no '%s'", *k);
	}
	for (size_t i = 0; i < n; i++)
		json_object_put(o[i]);
	cr_expect(!tracked_in_kernel(p.pid), "still registered after the end");
	run_result_done(&r);
	prog_kill(&p);
}

Test(track_cli, text_table)
{
	struct prog p;
	struct run_result r;
	char pid[16];

	start(&p);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "--interval", "50ms", "--duration", "200ms", NULL), 0);
	cr_expect_eq(r.status, 0, "stderr: %s", r.err);
	cr_expect(strstr(r.out, "WRITTEN") && strstr(r.out, "FREEZE ms"), "%s", r.out);
	cr_expect(strstr(r.err, "tracking stopped"), "%s", r.err);
	run_result_done(&r);
	prog_kill(&p);
}

/* Run ckpt track in the background; return its pid and stdout pipe. */
static pid_t spawn_track(pid_t target, const char *interval, int *ret_out)
{
	int o[2];
	pid_t pid;
	char tp[16];

	snprintf(tp, sizeof(tp), "%d", target);
	cr_assert_eq(pipe(o), 0);
	pid = fork();
	if (pid == 0) {
		dup2(o[1], 1);
		execl(ckpt_bin(), "ckpt", "track", "-t", tp, "--interval", interval, "--json", NULL);
		_exit(127);
	}
	close(o[1]);
	*ret_out = o[0];
	return pid;
}

static int wait_status(pid_t pid, double timeout_s)
{
	double end = mono_s() + timeout_s;
	int st;

	while (mono_s() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

Test(track_cli, target_exit_is_noticed_at_once)
{
	struct prog p;
	int out, code;
	pid_t t;
	char buf[4096] = "";
	ssize_t n;

	start(&p);
	t = spawn_track(p.pid, "30s", &out);
	usleep(300000);
	prog_kill(&p);
	code = wait_status(t, 2.0);
	cr_expect_eq(code, 0, "ckpt track ended with %d (or hung: -1)", code);
	n = read(out, buf, sizeof(buf) - 1);
	cr_expect_gt(n, 0);
	cr_expect(strstr(buf, "\"event\":\"exit\""), "%s", buf);
	close(out);
}

Test(track_cli, target_exec_ends_with_status_1)
{
	struct prog p;
	int out, code;
	pid_t t;
	char buf[4096] = "", line[1024];

	start(&p);
	t = spawn_track(p.pid, "30s", &out);
	usleep(300000);
	cr_assert_eq(write(p.in_fd, "exec\n", 5), 5);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 5000), 0);
	code = wait_status(t, 2.0);
	cr_expect_eq(code, 1, "ckpt track ended with %d", code);
	cr_expect_gt(read(out, buf, sizeof(buf) - 1), 0);
	cr_expect(strstr(buf, "\"event\":\"exec\""), "%s", buf);
	close(out);
	prog_kill(&p);
}

Test(track_cli, sigint_disarms_and_exits_0)
{
	struct prog p;
	int out, code;
	pid_t t;

	start(&p);
	t = spawn_track(p.pid, "50ms", &out);
	usleep(400000);
	cr_expect(tracked_in_kernel(p.pid));
	kill(t, SIGINT);
	code = wait_status(t, 2.0);
	cr_expect_eq(code, 0);
	cr_expect(!tracked_in_kernel(p.pid), "still registered after SIGINT");
	close(out);
	prog_kill(&p);
}

Test(track_cli, stop_disarms_tracking_left_armed)
{
	struct prog p;
	struct run_result r;
	struct ckpt_inject *inj;
	struct ckpt_tracker *t;
	char pid[16];

	start(&p);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(ckpt_inject_seize(p.pid, CKPT_INJECT_NO_XSTATE, &inj), 0);
	cr_assert_eq(ckpt_track_arm(inj, NULL, &t), 0);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	ckpt_track_close(t);

	cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "--count", "1", NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "already tracked"), "%s", r.err);
	run_result_done(&r);

	cr_assert_eq(run_ckpt(&r, "track", "--stop", "-t", pid, NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(!tracked_in_kernel(p.pid));
	run_result_done(&r);

	cr_assert_eq(run_ckpt(&r, "track", "--stop", "-t", pid, NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "not tracked"), "%s", r.err);
	run_result_done(&r);
	prog_kill(&p);
}

Test(track_cli, bad_usage)
{
	struct run_result r;

	cr_assert_eq(run_ckpt(&r, "track", NULL), 0);
	cr_expect_eq(r.status, 2);
	cr_expect(strstr(r.err, "-t PID"), "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "track", "-t", "1", "--count", "0", NULL), 0);
	cr_expect_eq(r.status, 2);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "track", "-t", "1", "--interval", "fast", NULL), 0);
	cr_expect_eq(r.status, 2);
	cr_expect(strstr(r.err, "invalid interval 'fast'"), "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "track", "-t", "1", "--count", "2", "--duration", "1s", NULL), 0);
	cr_expect_eq(r.status, 2);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "track", "-t", "1", "-D", "x", "--max-buffer", "16M", NULL), 0);
	cr_expect_eq(r.status, 2);
	cr_expect(strstr(r.err, "invalid --max-buffer '16M' (a size of at least 32M)"), "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "track", "-t", "1", "--max-buffer", "64M", NULL), 0);
	cr_expect_eq(r.status, 2);
	cr_expect(strstr(r.err, "--max-buffer"), "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "track", "-t", "4194000", NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "no such process"), "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "--json", "track", "-t", "4194000", NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.out, "\"error\""), "%s", r.out);
	run_result_done(&r);
}
