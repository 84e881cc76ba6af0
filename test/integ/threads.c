/* SPDX-License-Identifier: MIT */
/*
 * Multi-threaded processes through every path: ckpt dump (kill mode),
 * dump --leave-running then a --parent delta, restore --lazy, track -D and
 * a restore of DIR/latest, and a dump under CPU load. The target is
 * test/progs/threads (8 threads: mutexes of every kind, condition
 * variables, barriers, TLS, per-thread signal masks, a signal sent to one
 * thread, futex waits, nanosleep; or threads created and joined all the
 * time), python3 with 4 threading.Threads, and a JVM. Each is compared
 * with an uninterrupted run of the same program, line for line; the
 * restored process has its own pid and every TID of the checkpoint, no
 * more, no fewer.
 *
 * Bad input: a restore while the original still holds the TIDs is refused,
 * naming the TID and its holder, and leaves no process behind; a dump of a
 * process with a thread in uninterruptible sleep (a vfork wait) times out
 * and leaves the process running as it was.
 *
 * Every ckpt command runs under a watchdog: a hang fails the test, it does
 * not stall the suite.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/memsnap.h"
#include "helpers/procsnap.h"
#include "helpers/realprog.h"
#include "helpers/testutil.h"

#define MAX_TIDS 256

static char tmp[64];
static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "threads-test");
}

static void teardown(void)
{
	load_stop();
	suite_dir_remove(tmp, NULL);
}

/* A JVM is big and slow to start: generous. */
TestSuite(threads, .init = setup, .fini = teardown, .timeout = 400);

static char *path_in(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", tmp, name);
	return buf;
}

/* ---- running ckpt under a watchdog ---- */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (f) {
		FILE *m = open_memstream(&buf, &len);
		char chunk[4096];
		size_t n;

		while (m && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			fwrite(chunk, 1, n, m);
		if (m)
			fclose(m);
		fclose(f);
	}
	return buf ? buf : calloc(1, 1);
}

/*
 * Run @argv (stdin /dev/null, stdout and stderr into files) for at most
 * @limit_s seconds; past that SIGTERM (ckpt abandons a dump cleanly on it),
 * 5 s later SIGKILL. -ETIMEDOUT if it had to be stopped; @res is filled in
 * either case.
 */
static int run_bounded(const char *const *argv, double limit_s, struct run_result *res)
{
	static unsigned seq;
	char out[128], err[128];
	double t0 = mono_s();
	int status = 0, timed_out = 0;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	snprintf(out, sizeof(out), "%s/.run%u.out", tmp, seq);
	snprintf(err, sizeof(err), "%s/.run%u.err", tmp, seq++);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY), o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
		    e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		syscall(SYS_close_range, 3, ~0U, 0);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (!timed_out && mono_s() - t0 > limit_s) {
			timed_out = 1;
			kill(pid, SIGTERM);
		} else if (timed_out && mono_s() - t0 > limit_s + 5) {
			kill(pid, SIGKILL);
		}
		usleep(5000);
	}
	res->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	res->out = slurp(out);
	res->err = slurp(err);
	unlink(out);
	unlink(err);
	return timed_out ? -ETIMEDOUT : 0;
}

/* `ckpt ARGS...` within @limit_s, asserting that it ended by itself. */
static void ckpt_run(struct run_result *res, double limit_s, ...)
{
	const char *argv[32];
	int n = 0, r;
	va_list ap;

	argv[n++] = ckpt_bin();
	va_start(ap, limit_s);
	while (n < 31 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	r = run_bounded(argv, limit_s, res);
	cr_assert_neq(r, -ETIMEDOUT, "ckpt %s %s did not end within %.0f s: %s", argv[1], argv[2], limit_s,
		      res->err);
	cr_assert_eq(r, 0, "cannot run ckpt: %s", strerror(-r));
}

/* With --json, ckpt's errors are on stdout: both are shown. */
static void ckpt_ok(struct run_result *res, const char *what)
{
	cr_assert_eq(res->status, 0, "%s failed (exit status %d): %s%s", what, res->status, res->err, res->out);
}

/* ---- TIDs ---- */

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* The TIDs of @pid (/proc/PID/task), ascending. */
static size_t task_tids(pid_t pid, pid_t *tids)
{
	char path[64];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < MAX_TIDS)
		if (de->d_name[0] != '.')
			tids[n++] = atoi(de->d_name);
	closedir(d);
	qsort(tids, n, sizeof(*tids), cmp_pid);
	return n;
}

/* The TIDs of the checkpoint @dir (threads.json, through `ckpt show --json`), ascending. */
static size_t ckpt_tids(const char *dir, pid_t *tids)
{
	struct run_result r;
	json_object *j, *doc, *arr;
	size_t n = 0;

	ckpt_run(&r, 60, "show", dir, "--json", NULL);
	ckpt_ok(&r, "ckpt show");
	j = json_tokener_parse(r.out);
	cr_assert_not_null(j, "ckpt show --json printed no JSON: %.200s", r.out);
	cr_assert(json_object_object_get_ex(j, "threads", &doc) && json_object_object_get_ex(doc, "threads", &arr),
		  "ckpt show --json of '%s' has no threads.threads", dir);
	for (size_t i = 0; i < json_object_array_length(arr) && n < MAX_TIDS; i++) {
		json_object *t = json_object_array_get_idx(arr, i), *tid;

		cr_assert(json_object_object_get_ex(t, "tid", &tid));
		tids[n++] = (pid_t)json_object_get_int(tid);
	}
	json_object_put(j);
	run_result_done(&r);
	qsort(tids, n, sizeof(*tids), cmp_pid);
	return n;
}

static void tids_str(const pid_t *t, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o + 12 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%d", i ? " " : "", t[i]);
}

static void expect_same_tids(const char *what, const pid_t *want, size_t nw, const pid_t *got, size_t ng)
{
	char a[2048], b[2048];

	tids_str(want, nw, a, sizeof(a));
	tids_str(got, ng, b, sizeof(b));
	cr_expect(nw == ng && !memcmp(want, got, nw * sizeof(*want)), "%s: %zu threads [%s], expected %zu [%s]", what,
		  ng, b, nw, a);
}

/* The state letter of thread @tid of @pid (0 if gone). */
static char task_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;
	FILE *f;
	char st = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		st = p[2];
	fclose(f);
	return st;
}

/* TracerPid of thread @tid of @pid (-1 if gone). */
static int task_tracer(pid_t pid, pid_t tid)
{
	char path[64], line[256];
	int t = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "TracerPid:\t%d", &t) == 1)
			break;
	if (f)
		fclose(f);
	return t;
}

/* Wait (asserting, 10 s at most) until every thread of @pid is stopped. */
static void wait_all_stopped(pid_t pid)
{
	pid_t tids[MAX_TIDS];
	double t0 = mono_s();

	for (;;) {
		size_t n = task_tids(pid, tids), stopped = 0;

		for (size_t i = 0; i < n; i++) {
			char st = task_state(pid, tids[i]);

			stopped += st == 'T' || st == 't';
		}
		if (n && stopped == n)
			return;
		cr_assert_lt(mono_s() - t0, 10.0, "--leave-stopped: %zu of %zu threads of %d stopped after 10 s", stopped,
			     n, pid);
		usleep(5000);
	}
}

/* @s holds the number @n, not as a part of a longer one. */
static bool has_number(const char *s, long n)
{
	char num[24];
	size_t l;

	snprintf(num, sizeof(num), "%ld", n);
	l = strlen(num);
	for (const char *p = strstr(s, num); p; p = strstr(p + 1, num))
		if ((p == s || p[-1] < '0' || p[-1] > '9') && (p[l] < '0' || p[l] > '9'))
			return true;
	return false;
}

/* ---- dump and restore ---- */

enum how { HOW_FULL, HOW_DELTA, HOW_LAZY, HOW_TRACK };

static const char *const how_name[] = { "full dump", "delta dump", "lazy restore", "track -D" };

enum {
	F_STABLE = 1 << 0,  /* a fixed set of threads: the original's are the checkpoint's */
	F_STOPPED = 1 << 1, /* threads come and go: compare while the restored process is stopped */
	F_LOAD = 1 << 2,    /* busy loops on every CPU from the first dump to the end */
	F_CHURN = 1 << 3,   /* track -D: the checkpoints must not all have the same threads */
};

/*
 * Restore @dir detached (--lazy if @lazy, stopped if @stopped), stdio on
 * /dev/null (the output file is the process's own fd 1); its pid.
 */
static pid_t restore_detached(const char *dir, bool lazy, bool stopped, const char *lazylog, double limit_s)
{
	const char *argv[20];
	struct run_result r;
	pid_t pid;
	int n = 0, rr;

	argv[n++] = ckpt_bin();
	argv[n++] = "restore";
	argv[n++] = "-D";
	argv[n++] = dir;
	argv[n++] = "--detach";
	if (lazy) {
		argv[n++] = "--lazy";
		argv[n++] = "--json";
		argv[n++] = "--lazy-log";
		argv[n++] = lazylog;
	}
	if (stopped)
		argv[n++] = "--leave-stopped";
	argv[n++] = "--stdio";
	argv[n++] = "null";
	argv[n] = NULL;
	rr = run_bounded(argv, limit_s, &r);
	cr_assert_neq(rr, -ETIMEDOUT, "restore of '%s' did not end within %.0f s: %s", dir, limit_s, r.err);
	ckpt_ok(&r, lazy ? "ckpt restore --lazy" : "ckpt restore");
	if (lazy) {
		json_object *j = json_tokener_parse(r.out), *v;

		cr_assert_not_null(j, "restore --lazy --json printed no JSON: %s", r.out);
		cr_assert(json_object_object_get_ex(j, "pid", &v), "no pid in %s", r.out);
		pid = (pid_t)json_object_get_int(v);
		json_object_put(j);
	} else {
		pid = atoi(r.out);
	}
	run_result_done(&r);
	cr_assert_gt(pid, 0, "restore of '%s' printed no pid", dir);
	prog_track_pid(pid);
	return pid;
}

/* The detached lazy server's log says, within 60 s, that every page came in. */
static void expect_lazy_complete(const char *log)
{
	json_object *stats = NULL;

	for (double t0 = mono_s(); !stats && mono_s() - t0 < 60; usleep(20000)) {
		FILE *f = fopen(log, "r");
		char line[4096];

		while (f && fgets(line, sizeof(line), f)) {
			json_object *j, *e;

			if (line[0] != '{' || !(j = json_tokener_parse(line)))
				continue;
			if (json_object_object_get_ex(j, "event", &e) && !strcmp(json_object_get_string(e), "lazy")) {
				json_object_put(stats);
				stats = j;
			} else {
				json_object_put(j);
			}
		}
		if (f)
			fclose(f);
	}
	cr_assert_not_null(stats, "no statistics line in '%s' after 60 s", log);
	{
		json_object *end;

		cr_expect(json_object_object_get_ex(stats, "end", &end) &&
				  !strcmp(json_object_get_string(end), "complete"),
			  "lazy restore did not complete: %s", json_object_to_json_string(stats));
	}
	json_object_put(stats);
}

static void dump(pid_t pid, const char *dir, const char *parent, const char *mode, double limit_s)
{
	char ps[16];
	struct run_result r;

	snprintf(ps, sizeof(ps), "%d", pid);
	if (parent && mode)
		ckpt_run(&r, limit_s, "dump", "-t", ps, "-D", dir, "--parent", parent, mode, NULL);
	else if (parent)
		ckpt_run(&r, limit_s, "dump", "-t", ps, "-D", dir, "--parent", parent, NULL);
	else if (mode)
		ckpt_run(&r, limit_s, "dump", "-t", ps, "-D", dir, mode, NULL);
	else
		ckpt_run(&r, limit_s, "dump", "-t", ps, "-D", dir, NULL);
	cr_assert_eq(r.status, 0, "dump of %d into '%s'%s%s failed (exit status %d): %s", pid, dir,
		     parent ? " with --parent " : "", parent ? parent : "", r.status, r.err);
	run_result_done(&r);
}

/* The checkpoints NNNN of a track -D series, ascending. */
static size_t series(const char *dir, char names[][8], size_t max)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(dir);

	cr_assert_not_null(d, "no directory '%s'", dir);
	while ((de = readdir(d)) && n < max)
		if (strlen(de->d_name) == 4 && strspn(de->d_name, "0123456789") == 4)
			snprintf(names[n++], 8, "%s", de->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
	return n;
}

/* In a series whose process made and ended threads all the time, not every checkpoint has the same ones. */
static void expect_threads_changed(const char *what, const char *dir)
{
	char names[64][8], path[256];
	pid_t first[MAX_TIDS], t[MAX_TIDS];
	size_t n = series(dir, names, 64), nf = 0;
	bool changed = false;

	cr_assert_geq(n, 2, "%s: %zu checkpoints in '%s'", what, n, dir);
	for (size_t i = 0; i < n; i++) {
		size_t nt;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		nt = ckpt_tids(path, i ? t : first);
		if (!i)
			nf = nt;
		else if (nt != nf || memcmp(first, t, nt * sizeof(*t)))
			changed = true;
	}
	cr_expect(changed, "%s: all %zu checkpoints have the same threads: the churn did not show", what, n);
}

/*
 * Run @argv with stdout into a file beside a reference run of the same
 * program; checkpoint it @how (the original is dead before the restore:
 * killed by the dump, or by us), restore it, and check that the restored
 * process has its pid and exactly the checkpoint's TIDs, makes 40 lines
 * more than the original had written, and that the output reads as the
 * reference, line for line. @limit_s bounds each ckpt command.
 */
static void continue_run(const char *name, const char *const *argv, enum how how, unsigned flags, double limit_s)
{
	char out[128], ref[128], d0[128], d1[128], dir[160], log[128], what[96];
	pid_t orig[MAX_TIDS], inckpt[MAX_TIDS], now[MAX_TIDS], pid, rpid;
	size_t norig = 0, nckpt, nnow, killed_at;
	struct prog p, r;

	snprintf(what, sizeof(what), "%s, %s", name, how_name[how]);
	snprintf(out, sizeof(out), "%s/%s.out", tmp, name);
	snprintf(ref, sizeof(ref), "%s/%s.ref", tmp, name);
	snprintf(d0, sizeof(d0), "%s/%s.0", tmp, name);
	snprintf(d1, sizeof(d1), "%s/%s.1", tmp, name);
	snprintf(log, sizeof(log), "%s/%s.lazylog", tmp, name);
	cr_assert_eq(prog_spawn(&r, false, ref, argv), 0);
	cr_assert_eq(prog_spawn(&p, false, out, argv), 0);
	pid = p.pid;
	wait_lines(out, 20);
	if (flags & F_LOAD)
		load_start();
	if (flags & F_STABLE)
		norig = task_tids(pid, orig);

	switch (how) {
	case HOW_FULL:
	case HOW_LAZY: {
		int st;

		dump(pid, d0, NULL, NULL, limit_s);
		st = prog_wait(&p, 10000);
		cr_assert(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
			  "%s: the dump did not kill the process (wait status %#x)", what, st);
		snprintf(dir, sizeof(dir), "%s", d0);
		break;
	}
	case HOW_DELTA:
		dump(pid, d0, NULL, "--leave-running", limit_s);
		wait_lines(out, count_lines(out) + 20);
		dump(pid, d1, d0, "--leave-running", limit_s);
		wait_lines(out, count_lines(out) + 10);
		snprintf(dir, sizeof(dir), "%s", d1);
		break;
	case HOW_TRACK: {
		struct run_result res;
		char ps[16];

		snprintf(ps, sizeof(ps), "%d", pid);
		snprintf(d0, sizeof(d0), "%s/%s.series", tmp, name);
		ckpt_run(&res, limit_s * 2, "track", "-t", ps, "-D", d0, "--interval", "100ms", "--count", "5",
			 NULL);
		ckpt_ok(&res, "ckpt track -D");
		run_result_done(&res);
		snprintf(dir, sizeof(dir), "%s/latest", d0);
		cr_assert_eq(access(dir, F_OK), 0, "%s: no '%s'", what, dir);
		if (flags & F_CHURN)
			expect_threads_changed(what, d0);
		wait_lines(out, count_lines(out) + 10);
		break;
	}
	}
	prog_kill(&p);
	/* Lines past the checkpoint are the original's: the restored process must go beyond them. */
	killed_at = count_lines(out);

	nckpt = ckpt_tids(dir, inckpt);
	cr_assert_gt(nckpt, 1, "%s: the checkpoint has %zu thread", what, nckpt);
	cr_expect_not_null(bsearch(&pid, inckpt, nckpt, sizeof(pid), cmp_pid), "%s: pid %d is not among the threads",
			   what, pid);
	if (flags & F_STABLE)
		expect_same_tids(what, orig, norig, inckpt, nckpt);

	rpid = restore_detached(dir, how == HOW_LAZY, flags & F_STOPPED, log, limit_s);
	cr_expect_eq(rpid, pid, "%s: restored with pid %d, not its own %d", what, rpid, pid);
	if (flags & F_STOPPED) {
		wait_all_stopped(rpid);
		nnow = task_tids(rpid, now);
		expect_same_tids(what, inckpt, nckpt, now, nnow);
		cr_assert_eq(kill(rpid, SIGCONT), 0);
	} else {
		nnow = task_tids(rpid, now);
		expect_same_tids(what, inckpt, nckpt, now, nnow);
	}
	wait_lines(out, killed_at + 40);
	cr_expect(proc_state(rpid) && proc_state(rpid) != 'Z', "%s: the restored process died", what);
	if (flags & F_STABLE) {
		/* Its threads ran on: none ended, none was added. */
		nnow = task_tids(rpid, now);
		expect_same_tids(what, inckpt, nckpt, now, nnow);
	}
	if (how == HOW_LAZY)
		expect_lazy_complete(log);
	kill(rpid, SIGKILL);
	load_stop();
	/* A loaded machine may have slowed the reference down: let it catch up. */
	wait_lines(ref, count_lines(out));
	prog_kill(&r);
	expect_same_output(what, out, ref, killed_at + 40);
}

static void threads_prog(const char *mode, enum how how, unsigned flags)
{
	char path[4096];
	const char *argv[] = { prog_path("threads", path, sizeof(path)), mode, NULL };

	continue_run(mode, argv, how, flags, 60);
}

/* ---- test/progs/threads ---- */

Test(threads, full_dump_restores_every_thread_with_its_tid)
{
	threads_prog("mutex", HOW_FULL, F_STABLE);
}

Test(threads, delta_of_a_running_process_restores)
{
	threads_prog("mutex", HOW_DELTA, F_STABLE);
}

Test(threads, lazy_restore)
{
	threads_prog("mutex", HOW_LAZY, F_STABLE);
}

Test(threads, full_dump_under_load)
{
	threads_prog("mutex", HOW_FULL, F_STABLE | F_LOAD);
}

/* Caught while threads are being created and ending. */
Test(threads, full_dump_amid_thread_creation_and_exit)
{
	threads_prog("churn", HOW_FULL, F_STOPPED);
}

Test(threads, track_while_threads_come_and_go_restores_latest)
{
	threads_prog("churn", HOW_TRACK, F_STOPPED | F_CHURN);
}

/* ---- python3: 4 threading.Threads ---- */

static const char python_threads[] =
	"import threading, time, hashlib\n"
	"N = 4\n"
	"start = threading.Barrier(N + 1)\n"
	"end = threading.Barrier(N + 1)\n"
	"lock = threading.Lock()\n"
	"shared = {'sum': 0, 'xor': 0, 'items': {}}\n"
	"results = [0] * N\n"
	"local = threading.local()\n"
	"def work(k):\n"
	"    local.acc = k + 1\n"
	"    r = 0\n"
	"    while True:\n"
	"        start.wait()\n"
	"        r += 1\n"
	"        local.acc = (local.acc * 6364136223846793005 + r * (k + 7)) % (1 << 61)\n"
	"        with lock:\n"
	"            shared['sum'] = (shared['sum'] + local.acc) % (1 << 61)\n"
	"            shared['xor'] ^= local.acc\n"
	"            shared['items'][(r * N + k) % 97] = local.acc\n"
	"        results[k] = local.acc\n"
	"        end.wait()\n"
	"for k in range(N):\n"
	"    threading.Thread(target=work, args=(k,), daemon=True).start()\n"
	"h = hashlib.sha256()\n"
	"i = 0\n"
	"while True:\n"
	"    i += 1\n"
	"    start.wait()\n"
	"    end.wait()\n"
	"    h.update(repr((shared['sum'], shared['xor'], sorted(shared['items'].items()), results)).encode())\n"
	"    print(i, h.hexdigest()[:16], flush=True)\n"
	"    time.sleep(0.01)\n";

static void python3(enum how how)
{
	/* The interpreter itself: python3 on PATH may be a shell script shim (pyenv). */
	const char *argv[] = { "/usr/bin/python3", "-c", python_threads, NULL };

	if (access(argv[0], X_OK) != 0)
		cr_skip_test("no %s", argv[0]);
	continue_run("python3", argv, how, F_STABLE, 60);
}

Test(threads, python3_full)
{
	python3(HOW_FULL);
}

Test(threads, python3_delta)
{
	python3(HOW_DELTA);
}

Test(threads, python3_lazy)
{
	python3(HOW_LAZY);
}

Test(threads, python3_track)
{
	python3(HOW_TRACK);
}

/* ---- a JVM ---- */

/* $JAVA_HOME/bin/NAME, else /usr/bin/NAME; false if not executable. */
static bool java_tool(const char *name, char *buf, size_t len)
{
	const char *home = getenv("JAVA_HOME");

	if (home && *home) {
		snprintf(buf, len, "%s/bin/%s", home, name);
		if (access(buf, X_OK) == 0)
			return true;
	}
	snprintf(buf, len, "/usr/bin/%s", name);
	return access(buf, X_OK) == 0;
}

/*
 * test/progs/ThreadsJava.java, compiled into the test's directory, run by a
 * JVM kept small and its threads few: a 64 MiB serial-GC heap, one C1
 * compiler thread and no dynamic ones, no CDS archive, no perf-data file
 * (a shared mapping of /tmp/hsperfdata_USER/PID), no attach listener.
 */
static void java(enum how how)
{
	char javac[512], jvm[512], src[512], classes[128];
	struct run_result r;

	if (!java_tool("java", jvm, sizeof(jvm)) || !java_tool("javac", javac, sizeof(javac)))
		cr_skip_test("no java or javac (Debian: default-jdk-headless)");
	src_path("test/progs/ThreadsJava.java", src, sizeof(src));
	path_in("classes", classes, sizeof(classes));
	{
		const char *argv[] = { javac, "-d", classes, src, NULL };

		cr_assert_eq(run_bounded(argv, 180, &r), 0, "javac did not end within 180 s");
		cr_assert_eq(r.status, 0, "javac %s failed: %s%s", src, r.out, r.err);
		run_result_done(&r);
	}
	{
		const char *argv[] = { jvm,
				       "-Xmx64m",
				       "-XX:+UseSerialGC",
				       "-XX:TieredStopAtLevel=1",
				       "-XX:CICompilerCount=1",
				       "-XX:-UseDynamicNumberOfCompilerThreads",
				       "-XX:ReservedCodeCacheSize=16m",
				       "-XX:CompressedClassSpaceSize=32m",
				       "-Xss512k",
				       "-Xshare:off",
				       "-XX:-UsePerfData",
				       "-XX:+DisableAttachMechanism",
				       "-cp",
				       classes,
				       "ThreadsJava",
				       NULL };

		/* Its threads are the JVM's to start and end: compare with the checkpoint, stopped. */
		continue_run("java", argv, how, F_STOPPED, 180);
	}
}

Test(threads, java_full)
{
	java(HOW_FULL);
}

Test(threads, java_delta)
{
	java(HOW_DELTA);
}

Test(threads, java_lazy)
{
	java(HOW_LAZY);
}

Test(threads, java_track)
{
	java(HOW_TRACK);
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

/* The message says that something is taken, not some other failure. */
static bool says_taken(const char *err)
{
	return strstr(err, "taken") || strstr(err, "in use") || strstr(err, "held by");
}

/* A process of pid @want (clone3 set_tid) named @comm that only pauses; -errno. */
static pid_t hold_pid(pid_t want, const char *comm)
{
	struct clone_args args = { .exit_signal = SIGCHLD, .set_tid = (uintptr_t)&want, .set_tid_size = 1 };
	pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_NAME, comm);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	prog_track_pid(pid);
	return pid;
}

/*
 * The original still runs: every TID is taken, restore fails naming one and
 * the process that holds it (pid and name), and leaves nothing behind; the
 * original runs on. Then a worker's TID held by another process: refused
 * the same way. With that process gone, the restore works.
 */
Test(threads, restore_while_the_tids_are_taken_is_refused_naming_the_holder)
{
	char bin[128], path[4096], cmd[8300], out[128], ref[128], d[128], orig[16];
	pid_t inckpt[MAX_TIDS], pid, worker = 0, holder, rpid;
	struct run_result r;
	struct prog p, rp;
	size_t n, killed_at;

	/* A copy of the program under its own name: its processes can be counted (pgrep -x). */
	/* Named after this test process: other suites may run the same test at the same time. */
	snprintf(orig, sizeof(orig), "thr%d", (int)getpid());
	path_in(orig, bin, sizeof(bin));
	snprintf(cmd, sizeof(cmd), "cp %s %s", prog_path("threads", path, sizeof(path)), bin);
	cr_assert_eq(system(cmd), 0);
	{
		const char *argv[] = { bin, "mutex", NULL };

		cr_assert_eq(prog_spawn(&rp, false, path_in("taken.ref", ref, sizeof(ref)), argv), 0);
		cr_assert_eq(prog_spawn(&p, false, path_in("taken.out", out, sizeof(out)), argv), 0);
	}
	pid = p.pid;
	wait_lines(out, 20);
	dump(pid, path_in("taken", d, sizeof(d)), NULL, "--leave-running", 60);
	n = ckpt_tids(d, inckpt);
	cr_assert_gt(n, 1);

	ckpt_run(&r, 60, "restore", "-D", d, "--detach", "--stdio", "null", NULL);
	if (r.status == 0)
		prog_track_pid(atoi(r.out)); /* restored after all: killed at the end */
	cr_expect_eq(r.status, 1, "restore while the original runs: exit status %d: %s", r.status, r.err);
	/* Its name is also the checkpoint's: the holder of a worker's TID below has another. */
	cr_expect(has_number(r.err, pid) && strstr(r.err, orig) && says_taken(r.err),
		  "the error does not say that TID %d is taken by pid %d (%s): %s", pid, pid, orig, r.err);
	run_result_done(&r);
	cr_expect_eq(count_comm(orig), 2, "a restored process was left (or the original died)");
	cr_expect_eq(proc_state(pid) != 0 && proc_state(pid) != 'Z', true, "the original died");
	cr_expect_eq(task_tracer(pid, pid), 0, "the original is left traced");
	wait_lines(out, count_lines(out) + 20);

	/* The original gone, a worker's TID taken by another process. */
	prog_kill(&p);
	killed_at = count_lines(out);
	/*
	 * pid_max is 32768 here: with the machine busy, pids wrap within
	 * minutes and another process may have a freed TID already. Any
	 * worker's will do. And the threads of a killed process free their
	 * ids a moment after its wait returns: try again for a while.
	 */
	holder = -EEXIST;
	for (int tries = 0; tries < 300 && holder == -EEXIST; tries++) {
		for (size_t i = 0; i < n && holder == -EEXIST; i++)
			if (inckpt[i] != pid)
				holder = hold_pid(worker = inckpt[i], "tid-holder");
		if (holder == -EEXIST)
			usleep(10000);
	}
	if (holder != worker) {
		char sp[64], st[2048] = "";
		FILE *f;

		snprintf(sp, sizeof(sp), "/proc/%d/status", worker);
		if ((f = fopen(sp, "r"))) {
			size_t k = fread(st, 1, sizeof(st) - 1, f);

			st[k] = '\0';
			fclose(f);
		}
		cr_assert_fail("cannot take TID %d for the test: %s; held by: %.300s", worker, strerror(-holder), st);
	}
	ckpt_run(&r, 60, "restore", "-D", d, "--detach", "--stdio", "null", NULL);
	if (r.status == 0)
		prog_track_pid(atoi(r.out));
	cr_expect_eq(r.status, 1, "restore with TID %d taken: exit status %d: %s", worker, r.status, r.err);
	cr_expect(has_number(r.err, worker) && strstr(r.err, "tid-holder") && says_taken(r.err),
		  "the error does not say that TID %d is taken by pid %d (tid-holder): %s", worker, holder, r.err);
	run_result_done(&r);
	cr_expect_eq(count_comm(orig), 1, "a half-restored process was left");
	cr_expect_eq(proc_state(pid), 0, "a process has the pid %d", pid);
	cr_expect_eq(kill(holder, 0), 0, "the holder of the TID was killed");

	/* Nothing else was wrong with the checkpoint. */
	kill(holder, SIGKILL);
	cr_assert_eq(waitpid(holder, NULL, 0), holder);
	rpid = restore_detached(d, false, false, NULL, 60);
	cr_expect_eq(rpid, pid);
	wait_lines(out, killed_at + 40);
	kill(rpid, SIGKILL);
	wait_lines(ref, count_lines(out));
	prog_kill(&rp);
	expect_same_output("restored once the TIDs are free", out, ref, killed_at + 40);
}

/*
 * A thread in uninterruptible sleep (state D: the vfork wait of
 * threads vfork) cannot be stopped: the dump gives up after --timeout,
 * says which thread, leaves nothing at DIR and the process as it was:
 * running, untraced, every thread there, its output right.
 */
Test(threads, a_thread_in_uninterruptible_sleep_times_the_dump_out)
{
	char path[4096], out[128], ref[128], d[128], ps[16], file[96];
	pid_t before[MAX_TIDS], after[MAX_TIDS], pid, stuck = 0, child = 0;
	size_t nb, na;
	struct run_result r;
	struct prog p, rp;
	FILE *f;

	{
		const char *argv[] = { prog_path("threads", path, sizeof(path)), "vfork", NULL };
		const char *rargv[] = { path, "mutex", NULL };

		cr_assert_eq(prog_spawn(&rp, false, path_in("d.ref", ref, sizeof(ref)), rargv), 0);
		cr_assert_eq(prog_spawn(&p, false, path_in("d.out", out, sizeof(out)), argv), 0);
	}
	pid = p.pid;
	wait_lines(out, 20);
	for (double t0 = mono_s(); !stuck; usleep(5000)) {
		nb = task_tids(pid, before);
		for (size_t i = 0; i < nb; i++)
			if (task_state(pid, before[i]) == 'D')
				stuck = before[i];
		cr_assert_lt(mono_s() - t0, 10.0, "no thread of %d in state D after 10 s", pid);
	}
	snprintf(file, sizeof(file), "/proc/%d/task/%d/children", pid, stuck);
	f = fopen(file, "r");
	cr_assert(f && fscanf(f, "%d", &child) == 1, "no vfork child in %s", file);
	fclose(f);
	prog_track_pid(child);

	snprintf(ps, sizeof(ps), "%d", pid);
	path_in("stuck", d, sizeof(d));
	ckpt_run(&r, 60, "dump", "-t", ps, "-D", d, "--leave-running", "--timeout", "2", NULL);
	cr_expect_eq(r.status, 1, "dump with thread %d in D: exit status %d: %s", stuck, r.status, r.err);
	cr_expect(has_number(r.err, stuck) && (strstr(r.err, "timed out") || strstr(r.err, "timeout")),
		  "the error does not say that thread %d did not stop in time: %s", stuck, r.err);
	run_result_done(&r);
	cr_expect_neq(access(d, F_OK), 0, "a failed dump left '%s'", d);

	/* As it was: all there, running, untraced, the vfork still waiting. */
	na = task_tids(pid, after);
	expect_same_tids("after the timed-out dump", before, nb, after, na);
	for (size_t i = 0; i < na; i++) {
		char st = task_state(pid, after[i]);

		cr_expect(st && st != 'T' && st != 't' && st != 'Z', "thread %d is in state %c", after[i], st);
		cr_expect_eq(task_tracer(pid, after[i]), 0, "thread %d is left traced", after[i]);
	}
	cr_expect_eq(task_state(pid, stuck), 'D', "thread %d left its vfork wait", stuck);
	wait_lines(out, count_lines(out) + 30);

	/* Its child gone, the thread ends as the program expects (an ERROR line otherwise). */
	kill(child, SIGKILL);
	for (double t0 = mono_s(); task_state(pid, stuck); usleep(5000))
		cr_assert_lt(mono_s() - t0, 10.0, "thread %d still there 10 s after its vfork child was killed", stuck);
	wait_lines(out, count_lines(out) + 30);
	prog_kill(&p);
	wait_lines(ref, count_lines(out));
	prog_kill(&rp);
	expect_same_output("after a timed-out dump", out, ref, 80);
}

/* The rseq areas of the threads of checkpoint @dir (`ckpt show --json`). */
static size_t ckpt_rseq_areas(const char *dir, uint64_t *at, size_t max)
{
	struct run_result r;
	json_object *j, *doc, *arr;
	size_t n = 0;

	ckpt_run(&r, 60, "show", dir, "--json", NULL);
	ckpt_ok(&r, "ckpt show");
	j = json_tokener_parse(r.out);
	cr_assert_not_null(j, "ckpt show --json printed no JSON: %.200s", r.out);
	cr_assert(json_object_object_get_ex(j, "threads", &doc) && json_object_object_get_ex(doc, "threads", &arr));
	for (size_t i = 0; i < json_object_array_length(arr) && n < max; i++) {
		json_object *rs, *ptr;

		if (json_object_object_get_ex(json_object_array_get_idx(arr, i), "rseq", &rs) &&
		    json_object_object_get_ex(rs, "ptr", &ptr))
			at[n] = strtoull(json_object_get_string(ptr), NULL, 16);
		if (at[n])
			n++;
	}
	json_object_put(j);
	run_result_done(&r);
	return n;
}

/*
 * The differential check, with threads: the original stopped at its
 * checkpoint (--leave-stopped) against the process restored from it, also
 * stopped: every byte of memory but the kernel's CPU fields of each rseq
 * area, and everything procsnap.h reads in /proc, thread by thread. The
 * original must be gone before the restore (its ids come back), so it is
 * read first and killed.
 */
Test(threads, the_restored_process_is_the_original_in_memory_and_proc)
{
	const char *argv[] = { prog_path("threads", (char[PATH_MAX]){ 0 }, PATH_MAX), "mutex", NULL };
	char out[128], dir[128], report[4096];
	struct memsnap ma, mb;
	struct procsnap pa, pb;
	uint64_t rseq[MAX_TIDS];
	size_t nrseq;
	struct prog p;
	pid_t pid, rpid;
	uint64_t bytes;
	size_t n;

	snprintf(out, sizeof(out), "%s/snap.out", tmp);
	snprintf(dir, sizeof(dir), "%s/snap", tmp);
	cr_assert_eq(prog_spawn(&p, false, out, argv), 0);
	pid = p.pid;
	wait_lines(out, 20);
	dump(pid, dir, NULL, "--leave-stopped", 60);
	wait_all_stopped(pid);
	cr_assert_eq(memsnap_take(pid, &ma), 0);
	cr_assert_eq(procsnap_take(pid, &pa), 0);
	prog_kill(&p);

	rpid = restore_detached(dir, false, true, NULL, 60);
	cr_assert_eq(rpid, pid);
	wait_all_stopped(rpid);
	cr_assert_eq(memsnap_take(rpid, &mb), 0);
	cr_assert_eq(procsnap_take(rpid, &pb), 0);

	nrseq = ckpt_rseq_areas(dir, rseq, MAX_TIDS);
	cr_expect_gt(nrseq, 1, "no thread has an rseq area: glibc registers one per thread");
	for (size_t i = 0; i < nrseq; i++) {
		/* cpu_id_start, cpu_id; node_id, mm_cid: the kernel's, per CPU */
		memsnap_blank(&ma, rseq[i], 8);
		memsnap_blank(&mb, rseq[i], 8);
		memsnap_blank(&ma, rseq[i] + 20, 8);
		memsnap_blank(&mb, rseq[i] + 20, 8);
	}
	/* ckpt's own: the tracker's userfaultfd parked in the original; stderr is a pipe to us (--stdio null) */
	procsnap_drop(&pa, "anon_inode:[userfaultfd]");
	procsnap_drop(&pa, "fd/  2 ");
	procsnap_drop(&pb, "fd/  2 ");
	bytes = memsnap_diff(&ma, &mb, report, sizeof(report));
	cr_expect_eq(bytes, 0, "%llu bytes differ:%s", (unsigned long long)bytes, report);
	n = procsnap_diff(&pa, &pb, report, sizeof(report));
	cr_expect_eq(n, 0, "%zu things in /proc differ:%s", n, report);
	memsnap_free(&ma);
	memsnap_free(&mb);
	procsnap_free(&pa);
	procsnap_free(&pb);
	kill(rpid, SIGKILL);
}
