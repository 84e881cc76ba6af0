/* SPDX-License-Identifier: MIT */
/* The `ckpt track` command: output, lifecycle, exit codes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
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

#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

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
	cr_expect(!proc_uffd_registered(p.pid), "still registered after the end");
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
	cr_expect(proc_uffd_registered(p.pid));
	kill(t, SIGINT);
	code = wait_status(t, 2.0);
	cr_expect_eq(code, 0);
	cr_expect(!proc_uffd_registered(p.pid), "still registered after SIGINT");
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
	cr_expect(!proc_uffd_registered(p.pid));
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

/* ---- a process tree (test/progs/treewriter) ---- */

/* One process's account over the samples of a `ckpt track --json` run. */
struct acct {
	pid_t pid, ppid;
	char comm[32];
	int64_t pages;   /* since it was first reported */
	int64_t since;   /* since acct_mark */
	int samples, born, ended, execed, after_end;
	int left;        /* "left" events: it left the tree alive */
};

struct mon {
	struct prog ck;  /* ckpt track --json */
	struct acct a[64];
	int n, samples;
	char last_event[64];
};

static struct acct *acct_of(struct mon *m, pid_t pid)
{
	for (int i = 0; i < m->n; i++)
		if (m->a[i].pid == pid)
			return &m->a[i];
	cr_assert_lt(m->n, 64);
	memset(&m->a[m->n], 0, sizeof(m->a[0]));
	m->a[m->n].pid = pid;
	return &m->a[m->n++];
}

static bool flag(json_object *o, const char *k)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, k, &v), "no '%s'", k);
	return json_object_get_boolean(v);
}

/* Account one sample: each process, and the totals as their sums. */
static void account(struct mon *m, json_object *s)
{
	json_object *procs;
	int64_t sum = 0, rss = 0;

	cr_assert(json_object_object_get_ex(s, "processes", &procs), "a sample without \"processes\"");
	for (size_t i = 0; i < json_object_array_length(procs); i++) {
		json_object *p = json_object_array_get_idx(procs, i);
		struct acct *a = acct_of(m, (pid_t)num(p, "pid"));
		int64_t pages = num(p, "pages");

		for (const char *const *k = (const char *const[]){ "ppid", "bytes", "mib", "rate_mib_s", "ranges",
								  "maps_added", "maps_removed", "rss_kib", NULL };
		     *k; k++)
			cr_expect_not_null(str(p, *k), "no '%s' in a process", *k);
		cr_expect_eq(num(p, "bytes"), pages * 4096);
		snprintf(a->comm, sizeof(a->comm), "%s", str(p, "comm") ? str(p, "comm") : "");
		a->ppid = (pid_t)num(p, "ppid");
		if (a->ended)
			a->after_end++;
		a->born += flag(p, "born");
		a->execed += flag(p, "execed");
		a->ended += flag(p, "ended");
		if (flag(p, "born") || flag(p, "execed") || flag(p, "ended"))
			cr_expect_eq(pages, 0, "pid %d: pages counted in the interval it was armed or ended", a->pid);
		a->pages += pages;
		a->since += pages;
		a->samples++;
		sum += pages;
		if (!flag(p, "ended"))
			rss += num(p, "rss_kib");
	}
	cr_expect_eq(num(s, "pages"), sum, "the total is not the sum of the processes");
	cr_expect_eq(num(s, "rss_kib"), rss);
	m->samples++;
}

/* One line of ckpt's output: a sample (accounted) 1, an event 0, the end of the output -1. */
static int mon_line(struct mon *m)
{
	static char line[1 << 17];
	json_object *o;
	int r = prog_read_line(&m->ck, line, sizeof(line), 10000), sample;

	if (r == -EPIPE)
		return -1;
	cr_assert_geq(r, 0, "ckpt track printed nothing for 10 s");
	o = json_tokener_parse(line);
	cr_assert_not_null(o, "not JSON: %s", line);
	sample = !str(o, "event");
	if (sample)
		account(m, o);
	else
		snprintf(m->last_event, sizeof(m->last_event), "%s", str(o, "event"));
	if (!sample && !strcmp(str(o, "event"), "left"))
		acct_of(m, (pid_t)num(o, "pid"))->left++;
	json_object_put(o);
	return sample;
}

/* Read ckpt's output until @k more samples are accounted; false at its end (the run ended). */
static bool mon_samples(struct mon *m, int k)
{
	int goal = m->samples + k;

	while (m->samples < goal)
		if (mon_line(m) < 0)
			return false;
	return true;
}

/*
 * Until every write made so far is surely counted: what ckpt printed
 * already, then two samples more (the first may still be of a freeze
 * before the writes; the second's freeze began after it was printed).
 */
static void mon_settle(struct mon *m)
{
	struct pollfd pfd = { m->ck.out_fd, POLLIN, 0 };

	while (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN))
		cr_assert_geq(mon_line(m), 0, "ckpt track ended");
	cr_assert(mon_samples(m, 2), "ckpt track ended");
}

static void mon_start(struct mon *m, pid_t root, const char *interval)
{
	char spid[16], line[4096];
	const char *argv[] = { ckpt_bin(), "track", "-t", spid, "--interval", interval, "--json", NULL };

	memset(m, 0, sizeof(*m));
	snprintf(spid, sizeof(spid), "%d", root);
	cr_assert_eq(prog_spawn(&m->ck, false, NULL, argv), 0);
	cr_assert_geq(prog_read_line(&m->ck, line, sizeof(line), 10000), 0, "ckpt track did not start");
	cr_assert(strstr(line, "\"event\":\"armed\""), "%s", line);
}

/* SIGINT: ckpt must end with 0 after its "end" event. */
static void mon_stop(struct mon *m)
{
	kill(m->ck.pid, SIGINT);
	while (mon_samples(m, 1))
		;
	cr_expect_str_eq(m->last_event, "end");
	cr_expect_eq(prog_wait(&m->ck, 10000), 0, "ckpt track did not end with status 0");
}

static void tw_cmd(struct prog *p, const char *cmd, char *ans, size_t len)
{
	char line[128];

	snprintf(line, sizeof(line), "%s\n", cmd);
	prog_send_line(p, line);
	cr_assert_geq(prog_read_line(p, ans, len, 10000), 0, "treewriter: no answer to '%s'", cmd);
}

static pid_t tw_fork(struct prog *p)
{
	char ans[128];
	int kid = 0;

	tw_cmd(p, "fork", ans, sizeof(ans));
	cr_assert_eq(sscanf(ans, "child %d", &kid), 1, "%s", ans);
	prog_track_pid(kid);
	return kid;
}

static void tw_write(struct prog *p, pid_t pid, int pages)
{
	char cmd[64], ans[128];

	snprintf(cmd, sizeof(cmd), "w %d %d", pid, pages);
	tw_cmd(p, cmd, ans, sizeof(ans));
	cr_assert_str_eq(ans, "ok");
}

/* The number of fds of @pid that are a userfaultfd. */
static int uffds_of(pid_t pid)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd | grep -q userfaultfd", pid);
	return sh("%s", cmd) == 0;
}

/* Every process answers "check" with ok: what each wrote is intact. */
static void tw_check(struct prog *p, int processes)
{
	char ans[256];
	int ok = 0;

	prog_send_line(p, "check\n");
	for (;;) {
		cr_assert_geq(prog_read_line(p, ans, sizeof(ans), 10000), 0);
		if (!strcmp(ans, "done"))
			break;
		cr_expect(strstr(ans, " ok"), "%s", ans);
		ok += strstr(ans, " ok") != NULL;
	}
	cr_expect_eq(ok, processes);
}

/*
 * A root and two workers, then a worker born, one that exits and one that
 * executes a new program during the run: each is reported with its own
 * pages, the born one from the freeze that finds it, the ended one once,
 * and afterwards every process runs untracked, without a userfaultfd.
 */
Test(track_cli, tree_follows_forks_exits_and_execs, .timeout = 120)
{
	struct prog p;
	struct mon m;
	struct run_result r;
	pid_t a, b, c;
	char ans[128], cmd[64], spid[16];

	cr_assert_eq(prog_start(&p, true, 5000, "treewriter", NULL), 0);
	a = tw_fork(&p);
	b = tw_fork(&p);
	mon_start(&m, p.pid, "150ms");
	tw_write(&p, a, 300);
	tw_write(&p, b, 40);
	tw_write(&p, p.pid, 100);
	mon_settle(&m);
	cr_expect_geq(acct_of(&m, a)->pages, 300, "worker A: %ld pages", (long)acct_of(&m, a)->pages);
	cr_expect_geq(acct_of(&m, b)->pages, 40, "worker B: %ld pages", (long)acct_of(&m, b)->pages);
	cr_expect_geq(acct_of(&m, p.pid)->pages, 100);
	/*
	 * Its own pages, not its neighbours': a worker blocked in read(2)
	 * writes next to nothing (each freeze costs a process a page or two:
	 * the kernel updates its rseq area as it resumes).
	 */
	cr_expect_lt(acct_of(&m, b)->pages, 40 + 32 + 4 * acct_of(&m, b)->samples, "worker B: %ld pages in %d samples",
		     (long)acct_of(&m, b)->pages, acct_of(&m, b)->samples);
	cr_expect_lt(acct_of(&m, a)->pages, 300 + 32 + 4 * acct_of(&m, a)->samples, "worker A: %ld pages in %d samples",
		     (long)acct_of(&m, a)->pages, acct_of(&m, a)->samples);
	cr_expect_str_eq(acct_of(&m, a)->comm, "treewriter");
	cr_expect_eq(acct_of(&m, a)->ppid, p.pid);
	cr_expect_eq(acct_of(&m, p.pid)->born + acct_of(&m, a)->born, 0, "armed at the start is not born");

	/* Born during the run: armed at the next freeze, its writes counted from there. */
	c = tw_fork(&p);
	for (int i = 0; i < 20 && !acct_of(&m, c)->born; i++)
		cr_assert(mon_samples(&m, 1));
	cr_assert_eq(acct_of(&m, c)->born, 1, "the child born during the run was not reported");
	tw_write(&p, c, 200);
	mon_settle(&m);
	cr_expect_geq(acct_of(&m, c)->pages, 200, "worker C: %ld pages", (long)acct_of(&m, c)->pages);

	/* An exit: reported ended once, never again. */
	snprintf(cmd, sizeof(cmd), "exit %d 3", b);
	tw_cmd(&p, cmd, ans, sizeof(ans));
	cr_assert(!strncmp(ans, "exited", 6), "%s", ans);
	for (int i = 0; i < 20 && !acct_of(&m, b)->ended; i++)
		cr_assert(mon_samples(&m, 1));
	cr_expect_eq(acct_of(&m, b)->ended, 1, "the exit was not reported");

	/* An exec of a worker: armed again, its new program's writes counted. */
	snprintf(cmd, sizeof(cmd), "exec %d", a);
	tw_cmd(&p, cmd, ans, sizeof(ans));
	cr_assert_str_eq(ans, "ok");
	for (int i = 0; i < 20 && !acct_of(&m, a)->execed; i++)
		cr_assert(mon_samples(&m, 1));
	cr_expect_eq(acct_of(&m, a)->execed, 1, "the exec was not reported");
	acct_of(&m, a)->since = 0;
	tw_write(&p, a, 60);
	mon_settle(&m);
	cr_expect_geq(acct_of(&m, a)->since, 60, "worker A after exec: %ld pages", (long)acct_of(&m, a)->since);
	cr_expect_eq(acct_of(&m, b)->after_end, 0, "an ended process was reported again");
	cr_expect_eq(acct_of(&m, c)->born, 1);
	mon_stop(&m);

	/* Left as found: no registration, no userfaultfd fd (inherited copies closed too), memory intact. */
	for (pid_t q = 0, v[] = { p.pid, a, c }; q < 3; q++) {
		cr_expect(!proc_uffd_registered(v[q]), "pid %d still registered", v[q]);
		cr_expect(!uffds_of(v[q]), "pid %d holds a userfaultfd", v[q]);
	}
	tw_write(&p, c, 10);
	tw_check(&p, 3);
	/* Nothing is left for the next command: a single-process run on a worker, a tree run on the root. */
	snprintf(spid, sizeof(spid), "%d", c);
	cr_assert_eq(run_ckpt(&r, "track", "-t", spid, "--count", "1", "--interval", "50ms", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(!strstr(r.out, "PROCESS"), "a single process is shown as a tree: %s", r.out);
	run_result_done(&r);
	snprintf(spid, sizeof(spid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "track", "-t", spid, "--count", "2", "--interval", "50ms", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "total of 3") && strstr(r.out, "treewriter"), "%s", r.out);
	run_result_done(&r);
	prog_kill(&p);
}

/*
 * A SIGKILL of ckpt track leaves the tree running and untracked: its
 * userfaultfds were ckpt's alone (held, not parked), so the kernel
 * unregistered everything when ckpt died; nothing was added to any fd
 * table, and the next run starts afresh.
 */
Test(track_cli, sigkill_of_a_tree_run_leaves_every_process_untracked, .timeout = 60)
{
	struct prog p;
	struct mon m;
	struct run_result r;
	pid_t a, b;
	char spid[16];

	cr_assert_eq(prog_start(&p, true, 5000, "treewriter", NULL), 0);
	a = tw_fork(&p);
	mon_start(&m, p.pid, "50ms");
	b = tw_fork(&p);
	tw_write(&p, b, 8);
	for (int i = 0; i < 40 && !acct_of(&m, b)->born; i++)
		cr_assert(mon_samples(&m, 1));
	cr_assert_eq(acct_of(&m, b)->born, 1);
	for (pid_t q = 0, v[] = { p.pid, a, b }; q < 3; q++) {
		cr_expect(proc_uffd_registered(v[q]), "pid %d: not tracked during the run", v[q]);
		cr_expect(!uffds_of(v[q]), "pid %d holds a userfaultfd during the run", v[q]);
	}
	kill(m.ck.pid, SIGKILL);
	prog_wait(&m.ck, 5000);
	for (pid_t q = 0, v[] = { p.pid, a, b }; q < 3; q++)
		cr_expect(!proc_uffd_registered(v[q]), "pid %d still registered after ckpt was killed", v[q]);
	tw_write(&p, a, 20);
	tw_check(&p, 3);
	snprintf(spid, sizeof(spid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "track", "-t", spid, "--count", "1", "--interval", "50ms", NULL), 0);
	cr_expect_eq(r.status, 0, "the next run after a killed one: %s", r.err);
	run_result_done(&r);
	prog_kill(&p);
}

/*
 * What a tree dump --leave-running leaves tracked (each process, its uffd
 * parked) --stop -t ROOT disarms in every process, each named, and the
 * copy of the root's uffd that a child forked since inherited is closed;
 * a second --stop finds nothing tracked.
 */
Test(track_cli, stop_disarms_the_whole_tree, .timeout = 60)
{
	struct prog p;
	struct run_result r;
	pid_t a, c;
	char spid[16], pat[64], dir[128];

	cr_assert_eq(prog_start(&p, true, 5000, "treewriter", NULL), 0);
	a = tw_fork(&p);
	snprintf(spid, sizeof(spid), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/img", rundir);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", spid, "-D", dir, "--leave-running", "--allow-unrestorable", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	c = tw_fork(&p);
	cr_expect(proc_uffd_registered(p.pid) && proc_uffd_registered(a), "the dump left them untracked");
	cr_expect(uffds_of(c), "the child forked since holds no copy of its parent's uffd");

	cr_assert_eq(run_ckpt(&r, "track", "--stop", "-t", spid, NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	for (pid_t q = 0, v[] = { p.pid, a }; q < 2; q++) {
		snprintf(pat, sizeof(pat), "pid %d: tracking stopped", v[q]);
		cr_expect(strstr(r.err, pat), "no '%s' in: %s", pat, r.err);
	}
	for (pid_t q = 0, v[] = { p.pid, a, c }; q < 3; q++) {
		cr_expect(!proc_uffd_registered(v[q]), "pid %d still registered after --stop", v[q]);
		cr_expect(!uffds_of(v[q]), "pid %d holds a userfaultfd after --stop", v[q]);
	}
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "track", "--stop", "-t", spid, NULL), 0);
	cr_expect_eq(r.status, 1);
	cr_expect(strstr(r.err, "not tracked"), "%s", r.err);
	run_result_done(&r);
	tw_write(&p, c, 5);
	tw_check(&p, 3);
	prog_kill(&p);
}

/* Closed output: the run ends (status 5: output lost), every process disarmed. */
Test(track_cli, tree_closed_stdout_disarms_all, .timeout = 60)
{
	struct prog p;
	pid_t a;
	int st;

	cr_assert_eq(prog_start(&p, true, 5000, "treewriter", NULL), 0);
	a = tw_fork(&p);
	st = sh("bash -o pipefail -c \"%s track -t %d --interval 50ms --json 2>/dev/null | head -c 1 >/dev/null\"",
		ckpt_bin(), p.pid);
	cr_expect_eq(st, 5, "ckpt track ended with %d", st);
	cr_expect(!proc_uffd_registered(p.pid));
	cr_expect(!proc_uffd_registered(a));
	tw_check(&p, 2);
	prog_kill(&p);
}

/* The number in the file @path (a python3 child's rounds), -1 if none. */
static long rounds_in(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

static bool cmdline_ends(pid_t pid, const char *tail)
{
	char path[64], buf[512] = "";
	size_t n = 0, t = strlen(tail);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	f = fopen(path, "r");
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	while (n && !buf[n - 1])
		n--;
	buf[n] = '\0';
	return n >= t && !strcmp(buf + n - t, tail);
}

/*
 * Programs nobody here wrote: bash running python3 children, the second
 * one started 0.6 s after bash, while ckpt already tracks. Each child
 * allocates 4 MiB (a bytearray) and writes every page of it, over and
 * over, and counts its rounds in a file. Each is reported with its own
 * pages; the second one born during the run; every one runs on untracked.
 */
Test(track_cli, tree_of_bash_and_python, .timeout = 90)
{
	static const char py[] =
		"import sys, time\n"
		"n = 0\n"
		"while True:\n"
		"    b = bytearray(4 << 20)\n"
		"    b[::4096] = b'\\x01' * (len(b) // 4096)\n"
		"    n += 1\n"
		"    with open(sys.argv[1], 'w') as f:\n"
		"        f.write(str(n))\n"
		"    time.sleep(0.05)\n";
	char dir[64], one[96], two[96];
	const char *argv[] = { "/bin/bash", "-c",
			       "python3 -c \"$0\" \"$1/one\" & sleep 0.6; python3 -c \"$0\" \"$1/two\" & wait",
			       py, dir, NULL };
	struct prog p;
	struct mon m;
	pid_t py1 = 0, py2 = 0;
	long before1, before2, after1, after2;

	if (sh("command -v python3 >/dev/null") != 0)
		cr_skip_test("no python3");
	snprintf(dir, sizeof(dir), "%s", rundir);
	snprintf(one, sizeof(one), "%s/one", dir);
	snprintf(two, sizeof(two), "%s/two", dir);
	cr_assert_eq(prog_spawn(&p, false, "/dev/null", argv), 0);
	usleep(200000);
	mon_start(&m, p.pid, "100ms");
	for (int i = 0; i < 100 && !(py1 && py2 && acct_of(&m, py1)->pages >= 4096 &&
				      acct_of(&m, py2)->pages >= 4096); i++) {
		cr_assert(mon_samples(&m, 1));
		for (int k = 0; k < m.n; k++) {
			if (strcmp(m.a[k].comm, "python3") || m.a[k].ppid != p.pid)
				continue;
			if (!py1 && cmdline_ends(m.a[k].pid, "/one"))
				py1 = m.a[k].pid;
			if (!py2 && cmdline_ends(m.a[k].pid, "/two"))
				py2 = m.a[k].pid;
		}
	}
	cr_assert(py1 && py2, "the python3 children were not both reported");
	prog_track_pid(py1);
	prog_track_pid(py2);
	/* Each wrote 4 MiB a round, several rounds: at least 4 rounds' pages each, its own. */
	cr_expect_geq(acct_of(&m, py1)->pages, 4096, "python3 one: %ld pages", (long)acct_of(&m, py1)->pages);
	cr_expect_geq(acct_of(&m, py2)->pages, 4096, "python3 two: %ld pages", (long)acct_of(&m, py2)->pages);
	cr_expect_lt(acct_of(&m, p.pid)->pages, 256, "bash, which only waits: %ld pages",
		     (long)acct_of(&m, p.pid)->pages);
	cr_expect_eq(acct_of(&m, py2)->born, 1, "the python3 started during the run is not reported born");
	for (int k = 0; k < m.n; k++)
		if (!strcmp(m.a[k].comm, "sleep"))
			cr_expect_eq(m.a[k].ended, 1, "sleep (pid %d) did not end", m.a[k].pid);
	mon_stop(&m);
	for (pid_t q = 0, v[] = { p.pid, py1, py2 }; q < 3; q++) {
		cr_expect(!proc_uffd_registered(v[q]), "pid %d still registered", v[q]);
		cr_expect(!uffds_of(v[q]), "pid %d holds a userfaultfd", v[q]);
	}
	/*
	 * They run on (a loaded machine may give them little CPU time: a few
	 * seconds). A file read while python truncates it reads -1: the
	 * largest count seen is what counts.
	 */
	before1 = before2 = -1;
	for (int i = 0; i < 10 && (before1 < 0 || before2 < 0); i++, usleep(20000)) {
		before1 = MAX(before1, rounds_in(one));
		before2 = MAX(before2, rounds_in(two));
	}
	after1 = before1;
	after2 = before2;
	for (int i = 0; i < 100 && (after1 <= before1 || after2 <= before2); i++, usleep(50000)) {
		after1 = MAX(after1, rounds_in(one));
		after2 = MAX(after2, rounds_in(two));
	}
	cr_expect_gt(before1, 0, "python3 one never counted");
	cr_expect_gt(after1, before1, "python3 one stopped counting (state %c)", proc_state(py1));
	cr_expect_gt(after2, before2, "python3 two stopped counting (state %c)", proc_state(py2));
	kill(py1, SIGKILL);
	kill(py2, SIGKILL);
	prog_kill(&p);
}

/* SIGKILL the children of @pid (a shell's foreground command would outlive it, holding our stderr). */
static void kill_children(pid_t pid)
{
	char path[64];
	FILE *f;
	int kid;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	f = fopen(path, "r");
	while (f && fscanf(f, "%d", &kid) == 1)
		kill(kid, SIGKILL);
	if (f)
		fclose(f);
}

/*
 * A process that leaves the tree alive (its parent exits: it is adopted
 * outside) is reported ended, with a "left" event, and disarmed at once
 * while the run goes on.
 */
Test(track_cli, a_process_that_leaves_the_tree_is_disarmed, .timeout = 60)
{
	const char *argv[] = { "/bin/bash", "-c", "(sleep 1000 & sleep 0.8; exit 0); sleep 1000; true", NULL };
	struct prog p;
	struct mon m;
	pid_t orphan = 0;

	cr_assert_eq(prog_spawn(&p, false, "/dev/null", argv), 0);
	usleep(300000);
	mon_start(&m, p.pid, "100ms");
	for (int i = 0; i < 100 && !orphan; i++) {
		cr_assert(mon_samples(&m, 1));
		for (int k = 0; k < m.n; k++)
			if (m.a[k].left)
				orphan = m.a[k].pid;
	}
	cr_assert(orphan, "no process was reported leaving the tree");
	prog_track_pid(orphan);
	cr_expect_eq(acct_of(&m, orphan)->ended, 1, "the process that left is not reported ended");
	cr_expect(cmdline_ends(orphan, "1000"), "pid %d is not the orphaned sleep", orphan);
	cr_expect_neq(proc_state(orphan), 0, "the orphan is gone");
	cr_expect(!proc_uffd_registered(orphan), "pid %d left the tree and is still registered", orphan);
	cr_expect(!uffds_of(orphan), "pid %d left the tree and holds a userfaultfd", orphan);
	cr_assert(mon_samples(&m, 2), "the run did not go on");
	mon_stop(&m);
	cr_expect(!proc_uffd_registered(p.pid));
	kill(orphan, SIGKILL);
	kill_children(p.pid);
	prog_kill(&p);
}
