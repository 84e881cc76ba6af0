/* SPDX-License-Identifier: MIT */
/*
 * What happens to ckpt's output, and to ckpt, must never harm the process
 * it works on:
 * - stdout and stderr on a pipe that is closed at a random moment of dump
 *   (both modes), track, track -D and restore: the process survives intact
 *   (test/progs/target counter: one counter in every kind of memory, each
 *   tick checked), and ckpt exits with one of its documented codes;
 * - SIGTERM at a random moment of a kill-mode dump: either the dump is
 *   abandoned (ckpt fails, the process runs on, no checkpoint) or it is
 *   complete (exit 0 with the summary, the process killed, the checkpoint
 *   restores);
 * - the run directory loses the records of processes that are gone, and
 *   only those.
 *
 * CKPT_ROBUST_TRIALS (default 30) trials per command; CKPT_ROBUST_SEED
 * repeats a run (the seed is logged).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/image.h>

#include "helpers/testutil.h"

static char tmp[64];
static unsigned int seed;

static void setup(void)
{
	const char *s = getenv("CKPT_ROBUST_SEED");

	snprintf(tmp, sizeof(tmp), "/tmp/ckpt-robust-test-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	setenv("CKPT_RUNDIR", tmp, 1);
	seed = s && *s ? (unsigned int)strtoul(s, NULL, 10) : (unsigned int)(mono_s() * 1e6) ^ (unsigned int)getpid();
	srand(seed);
	cr_log_info("CKPT_ROBUST_SEED=%u", seed);
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(robust, .init = setup, .fini = teardown);

static int trials(void)
{
	const char *s = getenv("CKPT_ROBUST_TRIALS");
	int n = s && *s ? atoi(s) : 30;

	return n > 0 ? n : 30;
}

static int rnd(int n)
{
	return n > 0 ? rand() % n : 0;
}

static bool alive(pid_t pid)
{
	char st = proc_state(pid);

	return st && st != 'Z' && st != 'X';
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* ---- the target: test/progs/target counter, "tick N ok" every 20 ms ---- */

struct counter {
	struct prog p;
	unsigned long last; /* the last tick seen */
	char pid[16];
};

/* Read ticks until @want more came (or EOF/timeout); each is the next one and "ok". */
static int ticks(struct counter *c, int want, int timeout_ms)
{
	char line[256];
	int got = 0;

	while (got < want) {
		unsigned long n;
		char ok[8];

		if (prog_read_line(&c->p, line, sizeof(line), timeout_ms) < 0)
			break;
		cr_assert_eq(sscanf(line, "tick %lu %7s", &n, ok), 2, "pid %d printed '%s'", c->p.pid, line);
		cr_assert_str_eq(ok, "ok", "pid %d: its memory is damaged: '%s'", c->p.pid, line);
		cr_assert(c->last == 0 || n == c->last + 1, "pid %d: tick %lu after %lu", c->p.pid, n, c->last);
		c->last = n;
		got++;
	}
	return got;
}

static void counter_start(struct counter *c)
{
	memset(c, 0, sizeof(*c));
	cr_assert_eq(prog_start(&c->p, false, 5000, "target", "counter", NULL), 0);
	snprintf(c->pid, sizeof(c->pid), "%d", c->p.pid);
	cr_assert_eq(ticks(c, 2, 5000), 2);
}

/* Alive, and ticking on from where it was, every counter intact. */
static void counter_intact(struct counter *c, const char *what)
{
	cr_assert(alive(c->p.pid), "%s: pid %d is gone", what, c->p.pid);
	cr_assert_eq(ticks(c, 3, 3000), 3, "%s: pid %d does not tick on", what, c->p.pid);
}

/* Killed by ckpt: drain what it printed; the last tick is the one it was dumped at. */
static void counter_killed(struct counter *c, const char *what)
{
	int status;

	ticks(c, 1 << 30, 2000);
	status = prog_wait(&c->p, 5000);
	cr_assert(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "%s: pid %d was not killed by ckpt (status %#x)", what, c->p.pid, status);
}

/*
 * Restore @dir and check that the counter goes on at @last + 1, intact;
 * kill it. The restored process writes into a file (its stdout was a pipe).
 */
static void restore_check(const char *dir, unsigned long last, const char *what)
{
	char out[256], pidf[256], buf[4096];
	struct prog rp;
	unsigned long n, prev = last;
	int lines = 0, status, fd;
	pid_t pid = 0;
	FILE *f;

	snprintf(out, sizeof(out), "%s/restored.out", tmp);
	snprintf(pidf, sizeof(pidf), "%s/restored.pid", tmp);
	unlink(out);
	unlink(pidf);
	{
		const char *argv[] = { ckpt_bin(), "restore", "-D", dir, "--stdio", out, "--pidfile", pidf, NULL };

		cr_assert_eq(prog_spawn(&rp, false, "/dev/null", argv), 0);
	}
	for (double end = mono_s() + 10; mono_s() < end && lines < 3; usleep(20000)) {
		fd = open(out, O_RDONLY | O_CLOEXEC);
		lines = 0;
		if (fd >= 0) {
			ssize_t k = read(fd, buf, sizeof(buf) - 1);

			close(fd);
			buf[k > 0 ? k : 0] = '\0';
			for (char *s = buf; (s = strchr(s, '\n')); s++)
				lines++;
		}
	}
	cr_assert_geq(lines, 3, "%s: the process restored from '%s' does not tick", what, dir);
	f = fopen(pidf, "r");
	cr_assert_not_null(f, "%s: no pidfile", what);
	cr_assert_eq(fscanf(f, "%d", &pid), 1);
	fclose(f);
	prog_track_pid(pid);
	for (char *s = buf, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
		*nl = '\0';
		cr_assert_eq(sscanf(s, "tick %lu", &n), 1, "%s: restored '%s'", what, s);
		cr_assert(strstr(s, " ok"), "%s: restored memory damaged: '%s'", what, s);
		cr_assert_eq(n, prev + 1, "%s: restored tick %lu after %lu", what, n, prev);
		prev = n;
	}
	kill(pid, SIGKILL);
	status = prog_wait(&rp, 5000);
	/* Waiting for it, ckpt restore exits with its status. */
	cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL,
		  "%s: ckpt restore ended with %#x", what, status);
}

/* ---- ckpt with stdout and stderr on a pipe that is closed at a random moment ---- */

struct cut {
	pid_t pid;
	int fd;   /* read end, -1 once closed */
	size_t read;
};

/*
 * Start ckpt (@argv[0]) as from a shell: no signal ignored or blocked that
 * ckpt must set up itself; stdout on @out, stderr on @err; a file size
 * limit of @fsize bytes if not 0.
 */
static int spawn_ignoring; /* a signal the next spawn starts ckpt with ignored (nohup) */

static pid_t spawn(const char *const *argv, int out, int err, rlim_t fsize)
{
	sigset_t all, old;
	pid_t pid;

	/* Blocked until the child has its dispositions: a signal sent at once waits for them. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid != 0)
		sigprocmask(SIG_SETMASK, &old, NULL);
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		static const int dfl[] = { SIGPIPE, SIGXFSZ, SIGTTOU, SIGTERM, SIGINT, SIGHUP, SIGQUIT };
		sigset_t none;

		for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
			signal(dfl[i], SIG_DFL);
		if (spawn_ignoring)
			signal(spawn_ignoring, SIG_IGN);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (fsize) {
			struct rlimit rl = { fsize, fsize };

			setrlimit(RLIMIT_FSIZE, &rl);
		}
		dup2(out, 1);
		dup2(err, 2);
		dup2(open("/dev/null", O_RDONLY), 0);
		syscall(SYS_close_range, 3, ~0U, 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	prog_track_pid(pid);
	return pid;
}

static void cut_spawn(struct cut *c, const char *const *argv)
{
	int o[2];

	memset(c, 0, sizeof(*c));
	cr_assert_eq(pipe2(o, O_CLOEXEC), 0);
	c->pid = spawn(argv, o[1], o[1], 0);
	close(o[1]);
	c->fd = o[0];
}

/* Read up to @bytes for up to @ms, then close the pipe. */
static void cut_close(struct cut *c, size_t bytes, int ms)
{
	double end = mono_s() + ms / 1000.0;
	char buf[512];

	while (c->read < bytes) {
		int left = (int)((end - mono_s()) * 1000);
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		size_t want = bytes - c->read < sizeof(buf) ? bytes - c->read : sizeof(buf);
		ssize_t k;

		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			break;
		k = read(c->fd, buf, want);
		if (k <= 0)
			break;
		c->read += (size_t)k;
	}
	if (mono_s() < end)
		usleep((useconds_t)((end - mono_s()) * 1e6));
	close(c->fd);
	c->fd = -1;
}

/* The exit status of ckpt; a signal is 128 + it. */
static int cut_wait(struct cut *c, int timeout_ms)
{
	struct prog p = { .pid = c->pid };
	int status = prog_wait(&p, timeout_ms);

	cr_assert_geq(status, 0, "ckpt (pid %d) did not end", c->pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* One trial: ckpt [-v [-v]] ARGS..., its output cut at a random moment. */
static int cut_run(const char *const *args, char *what, size_t len)
{
	const char *argv[32];
	int n = 0, verbose = rnd(3), ms = rnd(201), code;
	size_t bytes = (size_t)rnd(400);
	struct cut c;

	argv[n++] = ckpt_bin();
	for (int i = 0; i < verbose; i++)
		argv[n++] = "-v";
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	snprintf(what, len, "%s -v*%d, %zu bytes read, closed after %d ms", argv[verbose + 1], verbose, bytes, ms);
	cut_spawn(&c, argv);
	cut_close(&c, bytes, ms);
	code = cut_wait(&c, 30000);
	return code;
}

Test(robust, dump_kill_mode_survives_its_output_closed, .timeout = 300)
{
	int n = trials(), done = 0, failed = 0;

	for (int i = 0; i < n; i++) {
		struct counter c;
		char dir[128], what[256];
		int code;

		counter_start(&c);
		snprintf(dir, sizeof(dir), "%s/k%d", tmp, i);
		code = cut_run((const char *[]){ "dump", "-t", c.pid, "-D", dir, NULL }, what, sizeof(what));
		cr_assert(code == 0 || code == 1 || code == 5, "trial %d (%s): ckpt exit %d", i, what, code);
		if (code == 1) {
			/* A failed dump: nothing at DIR, the process intact. */
			cr_assert_not(exists(dir), "trial %d (%s): failed, but '%s' exists", i, what, dir);
			counter_intact(&c, what);
			prog_kill(&c.p);
			failed++;
			continue;
		}
		counter_killed(&c, what);
		restore_check(dir, c.last, what);
		done++;
	}
	cr_log_info("dump (kill mode), output cut: %d trials, %d complete, %d failed cleanly", n, done, failed);
}

Test(robust, dump_leave_running_survives_its_output_closed, .timeout = 300)
{
	int n = trials(), done = 0;
	struct counter c;

	counter_start(&c);
	for (int i = 0; i < n; i++) {
		char dir[128], what[256];
		int code;

		snprintf(dir, sizeof(dir), "%s/r%d", tmp, i);
		code = cut_run((const char *[]){ "dump", "-t", c.pid, "-D", dir, "--leave-running", NULL }, what,
			       sizeof(what));
		cr_assert(code == 0 || code == 1 || code == 5, "trial %d (%s): ckpt exit %d", i, what, code);
		counter_intact(&c, what);
		if (code != 1) {
			struct ckpt_image *img = NULL;

			cr_assert_eq(ckpt_image_open(dir, NULL, &img), 0, "trial %d (%s): no checkpoint", i, what);
			ckpt_image_close(img);
			done++;
		} else {
			cr_assert_not(exists(dir), "trial %d (%s): failed, but '%s' exists", i, what, dir);
		}
	}
	prog_kill(&c.p);
	cr_log_info("dump --leave-running, output cut: %d trials, %d complete", n, done);
}

Test(robust, track_survives_its_output_closed, .timeout = 300)
{
	int n = trials();

	for (int i = 0; i < n; i++) {
		struct counter c;
		char what[256], rec[256];
		int code;

		counter_start(&c);
		code = cut_run((const char *[]){ "track", "-t", c.pid, "--interval", "20ms", "--duration", "5s",
						 NULL }, what, sizeof(what));
		/* The output gone, tracking ends as on SIGTERM: disarmed, exit 5 (or 0). */
		cr_assert(code == 0 || code == 5, "trial %d (%s): ckpt exit %d", i, what, code);
		counter_intact(&c, what);
		snprintf(rec, sizeof(rec), "%s/track-%s.json", tmp, c.pid);
		cr_assert_not(exists(rec), "trial %d (%s): the tracking was left armed", i, what);
		prog_kill(&c.p);
	}
}

Test(robust, track_checkpoints_survive_their_output_closed, .timeout = 300)
{
	int n = trials(), with = 0;

	for (int i = 0; i < n; i++) {
		struct counter c;
		char dir[128], latest[160], what[256];
		int code;

		counter_start(&c);
		snprintf(dir, sizeof(dir), "%s/t%d", tmp, i);
		code = cut_run((const char *[]){ "track", "-t", c.pid, "-D", dir, "--interval", "50ms",
						 "--duration", "5s", NULL }, what, sizeof(what));
		cr_assert(code == 0 || code == 5, "trial %d (%s): ckpt exit %d", i, what, code);
		counter_intact(&c, what);
		snprintf(latest, sizeof(latest), "%s/latest", dir);
		if (exists(latest)) {
			struct ckpt_chain *ch = NULL;

			cr_assert_eq(ckpt_chain_open(latest, NULL, &ch), 0, "trial %d (%s): '%s' does not open",
				     i, what, latest);
			ckpt_chain_close(ch);
			with++;
		}
		prog_kill(&c.p);
	}
	cr_log_info("track -D, output cut: %d trials, %d with a checkpoint", n, with);
}

Test(robust, restore_survives_its_output_closed, .timeout = 300)
{
	int n = trials();
	struct counter c;
	char base[128];
	struct run_result r;

	counter_start(&c);
	snprintf(base, sizeof(base), "%s/base", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", c.pid, "-D", base, NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	counter_killed(&c, "the base dump");

	for (int i = 0; i < n; i++) {
		char out[256], pidf[256], what[256], buf[4096], rest[128];
		const char *argv[] = { "restore", "-D", base, "--stdio", out, "--pidfile", pidf, NULL };
		const char *full[32];
		int nf = 0, verbose = rnd(3), ms = rnd(201), lines = 0, code;
		unsigned long t, prev = c.last;
		size_t bytes = (size_t)rnd(400);
		struct cut cu;
		pid_t pid = 0;
		FILE *f;

		snprintf(out, sizeof(out), "%s/rs%d.out", tmp, i);
		snprintf(pidf, sizeof(pidf), "%s/rs%d.pid", tmp, i);
		full[nf++] = ckpt_bin();
		for (int k = 0; k < verbose; k++)
			full[nf++] = "-v";
		for (size_t k = 0; argv[k]; k++)
			full[nf++] = argv[k];
		full[nf] = NULL;
		snprintf(what, sizeof(what), "restore -v*%d, %zu bytes read, closed after %d ms", verbose, bytes, ms);
		cut_spawn(&cu, full);
		cut_close(&cu, bytes, ms);
		/* It runs, from where it was, intact, although nobody reads ckpt's output. */
		for (double end = mono_s() + 10; mono_s() < end && lines < 3; usleep(20000)) {
			int fd = open(out, O_RDONLY | O_CLOEXEC);
			ssize_t k;

			lines = 0;
			if (fd < 0)
				continue;
			k = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			buf[k > 0 ? k : 0] = '\0';
			for (char *s = buf; (s = strchr(s, '\n')); s++)
				lines++;
		}
		cr_assert_geq(lines, 3, "trial %d (%s): the restored process does not tick", i, what);
		f = fopen(pidf, "r");
		cr_assert_not_null(f, "trial %d (%s): no pidfile", i, what);
		cr_assert_eq(fscanf(f, "%d", &pid), 1);
		fclose(f);
		prog_track_pid(pid);
		for (char *s = buf, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
			*nl = '\0';
			cr_assert_eq(sscanf(s, "tick %lu %127s", &t, rest), 2, "trial %d (%s): '%s'", i, what, s);
			cr_assert_str_eq(rest, "ok", "trial %d (%s): restored memory damaged: '%s'", i, what, s);
			cr_assert_eq(t, prev + 1, "trial %d (%s): tick %lu after %lu", i, what, t, prev);
			prev = t;
		}
		cr_assert(alive(pid), "trial %d (%s): the restored process died", i, what);
		kill(pid, SIGKILL);
		code = cut_wait(&cu, 10000);
		/* ckpt restore waits and exits with the process's status. */
		cr_assert_eq(code, 128 + SIGKILL, "trial %d (%s): ckpt restore exit %d", i, what, code);
	}
}

/* ---- SIGTERM during a kill-mode dump ---- */

Test(robust, a_signal_during_a_kill_mode_dump_abandons_or_completes_it, .timeout = 300)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	static const char *const names[] = { "SIGTERM", "SIGINT", "SIGHUP" };
	int n = trials(), aborted = 0, completed = 0;
	double t0, dump_ms;
	struct counter c;
	struct run_result r;
	char dir[128];

	/* How long a dump takes here: the signals land anywhere in it, and a bit after. */
	counter_start(&c);
	snprintf(dir, sizeof(dir), "%s/timing", tmp);
	t0 = mono_s();
	cr_assert_eq(run_ckpt(&r, "dump", "-t", c.pid, "-D", dir, NULL), 0);
	dump_ms = (mono_s() - t0) * 1000;
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	counter_killed(&c, "the timing dump");
	cr_log_info("a kill-mode dump takes %.1f ms here", dump_ms);

	for (int i = 0; i < n; i++) {
		int delay_us = rnd((int)(dump_ms * 1300) + 1), which = rnd(3), code;
		char what[128], out[8192] = "";
		const char *argv[] = { ckpt_bin(), "dump", "-t", c.pid, "-D", dir, NULL };
		size_t len = 0;
		struct cut cu;
		ssize_t k;

		counter_start(&c);
		snprintf(dir, sizeof(dir), "%s/term%d", tmp, i);
		snprintf(what, sizeof(what), "trial %d, %s after %d us", i, names[which], delay_us);
		cut_spawn(&cu, argv);
		usleep((useconds_t)delay_us);
		kill(cu.pid, sigs[which]);
		code = cut_wait(&cu, 30000);
		while (len + 1 < sizeof(out) && (k = read(cu.fd, out + len, sizeof(out) - 1 - len)) > 0)
			len += (size_t)k;
		out[len] = '\0';
		close(cu.fd);
		if (code == 0) {
			/* Past the point of no return: complete, reported, killed, restorable. */
			cr_assert(strstr(out, "dumped pid"), "%s: exit 0 without the summary: %s", what, out);
			counter_killed(&c, what);
			restore_check(dir, c.last, what);
			completed++;
		} else {
			/* Abandoned: no checkpoint, the process runs on as it was. */
			cr_assert(code == 128 + sigs[which] || code == 1, "%s: ckpt exit %d: %s", what, code, out);
			cr_assert_not(exists(dir), "%s: failed (exit %d), but '%s' exists: %s", what, code, dir, out);
			counter_intact(&c, what);
			prog_kill(&c.p);
			aborted++;
		}
	}
	cr_log_info("SIGTERM/SIGINT/SIGHUP during kill-mode dumps: %d trials, %d abandoned, %d completed", n, aborted,
		    completed);
}

/* Under nohup, SIGHUP is no reason to abandon a dump: it completes. */
Test(robust, a_dump_under_nohup_ignores_sighup)
{
	struct counter c;
	char dir[128], out[4096];
	const char *argv[] = { ckpt_bin(), "dump", "-t", NULL, "-D", dir, NULL };
	struct cut cu;
	int code;
	ssize_t k;

	counter_start(&c);
	argv[3] = c.pid;
	snprintf(dir, sizeof(dir), "%s/nohup", tmp);
	spawn_ignoring = SIGHUP;
	cut_spawn(&cu, argv);
	spawn_ignoring = 0;
	for (int i = 0; i < 20; i++) {
		usleep(2000);
		kill(cu.pid, SIGHUP);
	}
	code = cut_wait(&cu, 30000);
	k = read(cu.fd, out, sizeof(out) - 1);
	out[k > 0 ? k : 0] = '\0';
	close(cu.fd);
	cr_assert_eq(code, 0, "ckpt exit %d: %s", code, out);
	cr_expect(strstr(out, "dumped pid"), "%s", out);
	counter_killed(&c, "nohup");
	restore_check(dir, c.last, "nohup");
}

/* ---- a file size limit, a full disk on stdout ---- */

static int wait_code(pid_t pid, int timeout_ms)
{
	struct prog p = { .pid = pid };
	int status = prog_wait(&p, timeout_ms);

	cr_assert_geq(status, 0, "ckpt (pid %d) did not end", pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *slurp_fd(int fd)
{
	static char buf[16384];
	ssize_t k = pread(fd, buf, sizeof(buf) - 1, 0);

	buf[k > 0 ? k : 0] = '\0';
	return buf;
}

/* RLIMIT_FSIZE: writing the images fails (EFBIG, no SIGXFSZ death), the dump fails cleanly. */
Test(robust, a_file_size_limit_fails_the_dump_cleanly)
{
	for (int mode = 0; mode < 2; mode++) {
		struct counter c;
		char dir[128], errp[128];
		const char *argv[] = { ckpt_bin(), "dump", "-t", NULL, "-D", dir, mode ? "--leave-running" : NULL,
				       NULL };
		int err, code;

		counter_start(&c);
		argv[3] = c.pid;
		snprintf(dir, sizeof(dir), "%s/fsize%d", tmp, mode);
		snprintf(errp, sizeof(errp), "%s/fsize%d.err", tmp, mode);
		err = open(errp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		cr_assert_geq(err, 0);
		code = wait_code(spawn(argv, err, err, 1024), 30000);
		cr_expect_eq(code, 1, "mode %d: ckpt exit %d: %s", mode, code, slurp_fd(err));
		cr_expect(strstr(slurp_fd(err), "File too large"), "mode %d: %s", mode, slurp_fd(err));
		close(err);
		cr_expect_not(exists(dir), "mode %d: '%s' exists after a failed dump", mode, dir);
		counter_intact(&c, mode ? "file size limit, --leave-running" : "file size limit, kill mode");
		prog_kill(&c.p);
	}
}

static void kill_pidfile(const char *path)
{
	FILE *f = fopen(path, "r");
	int pid = 0;

	if (f && fscanf(f, "%d", &pid) == 1 && pid > 0)
		kill(pid, SIGKILL);
	if (f)
		fclose(f);
}

/*
 * A FIFO in place of a file of a checkpoint (issue 18): every command that
 * reads it says so at once, never hangs in open(2) waiting for a writer.
 */
Test(robust, a_fifo_in_place_of_an_image_file_is_refused_at_once, .timeout = 120)
{
	static const char *const files[] = { "process.json", "inventory.json", "pages.zst", "pages.idx", "track.json" };
	struct counter c;
	struct run_result r;
	char base[128], path[256], cmd[512], pidfile[200];

	counter_start(&c);
	snprintf(base, sizeof(base), "%s/fifo-base", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", c.pid, "-D", base, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char img[160], next[200];
		double t0;

		snprintf(img, sizeof(img), "%s/fifo-%zu", tmp, i);
		snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s'", base, img);
		cr_assert_eq(system(cmd), 0);
		snprintf(path, sizeof(path), "%s/%s", img, files[i]);
		cr_assert_eq(unlink(path), 0);
		cr_assert_eq(mkfifo(path, 0600), 0);
		t0 = mono_s();
		cr_assert_eq(run_ckpt(&r, "show", "--verify", img, NULL), 0);
		cr_expect_eq(r.status, 1, "show with a FIFO for %s: status %d", files[i], r.status);
		run_result_done(&r);
		/* The others read it or not (restore needs no track.json): refused naming it, or through. */
		snprintf(pidfile, sizeof(pidfile), "%s.pid", img);
		cr_assert_eq(run_ckpt(&r, "restore", "-D", img, "--detach", "--stdio", "null", "--pidfile", pidfile,
				      NULL), 0);
		cr_expect(r.status == 0 || strstr(r.err, files[i]), "restore, FIFO for %s: %s", files[i], r.err);
		if (r.status == 0)
			kill_pidfile(pidfile);
		run_result_done(&r);
		snprintf(next, sizeof(next), "%s-delta", img);
		cr_assert_eq(run_ckpt(&r, "dump", "-t", c.pid, "-D", next, "--parent", img, "--leave-running", NULL), 0);
		cr_expect(r.status == 0 || strstr(r.err, files[i]), "delta, FIFO for %s: %s", files[i], r.err);
		run_result_done(&r);
		/* A delta goes on from the newest: this one, or the base again. */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", next);
		cr_assert_eq(system(cmd), 0);
		cr_expect_lt(mono_s() - t0, 20, "a FIFO for %s made them wait", files[i]);
		counter_intact(&c, files[i]);
	}
	prog_kill(&c.p);
}

/* stdout on a full disk: the checkpoint is committed, exit 5, and stderr says so. */
Test(robust, a_full_stdout_is_reported_after_the_work)
{
	struct counter c;
	char dir[128], errp[128];
	const char *argv[] = { ckpt_bin(), "dump", "-t", NULL, "-D", dir, "--leave-running", NULL };
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC), err, code;
	struct ckpt_image *img = NULL;

	cr_assert_geq(full, 0);
	counter_start(&c);
	argv[3] = c.pid;
	snprintf(dir, sizeof(dir), "%s/full", tmp);
	snprintf(errp, sizeof(errp), "%s/full.err", tmp);
	err = open(errp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(err, 0);
	code = wait_code(spawn(argv, full, err, 0), 30000);
	cr_expect_eq(code, 5, "ckpt exit %d: %s", code, slurp_fd(err));
	cr_expect(strstr(slurp_fd(err), "output was lost: cannot write to stdout: No space left on device"), "%s",
		  slurp_fd(err));
	cr_expect_eq(ckpt_image_open(dir, NULL, &img), 0, "the checkpoint was not committed");
	ckpt_image_close(img);
	counter_intact(&c, "stdout on /dev/full");
	close(err);
	close(full);
	prog_kill(&c.p);
}

/* ---- records of processes that are gone ---- */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

/* A copy of @from's record, as if of @pid started at @start_time. */
static void fake_record(const char *from, pid_t pid, uint64_t start_time)
{
	json_object *o = json_object_from_file(from);
	char path[256];

	cr_assert_not_null(o, "%s", from);
	json_object_object_add(o, "pid", json_object_new_int(pid));
	json_object_object_add(o, "start_time", json_object_new_uint64(start_time));
	snprintf(path, sizeof(path), "%s/track-%d.json", tmp, pid);
	cr_assert_eq(json_object_to_file(path, o), 0);
	json_object_put(o);
}

static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	cr_assert_gt(pid, 0);
	waitpid(pid, NULL, 0);
	return pid;
}

Test(robust, records_of_processes_that_are_gone_are_removed)
{
	struct counter a, b, c;
	struct run_result r;
	char da[128], db[128], dc[128], dd[128], rec_b[256], path[256];
	pid_t gone1 = dead_pid(), gone2 = dead_pid(), held = dead_pid();
	int lock_fd;

	counter_start(&a);
	counter_start(&b);
	counter_start(&c);
	snprintf(da, sizeof(da), "%s/a", tmp);
	snprintf(db, sizeof(db), "%s/b", tmp);
	snprintf(dc, sizeof(dc), "%s/c", tmp);
	snprintf(dd, sizeof(dd), "%s/b1", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", a.pid, "-D", da, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", b.pid, "-D", db, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	snprintf(rec_b, sizeof(rec_b), "%s/track-%s.json", tmp, b.pid);
	cr_assert(exists(rec_b));
	/* a was tracked and is killed: its record stays behind. */
	prog_kill(&a.p);
	/* pid 1 is alive, but not the process of this record. */
	fake_record(rec_b, 1, 5);
	/* A record whose process is gone, but locked by a command: never touched. */
	fake_record(rec_b, held, 5);
	snprintf(path, sizeof(path), "%s/track-%d.lock", tmp, held);
	lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	cr_assert_geq(lock_fd, 0);
	cr_assert_eq(flock(lock_fd, LOCK_EX), 0);
	/* Leftovers: a lock alone, a generation alone. */
	snprintf(path, sizeof(path), "%s/track-%d.lock", tmp, gone1);
	write_text(path, "");
	snprintf(path, sizeof(path), "%s/track-%d.gen", tmp, gone2);
	write_text(path, "00000000000000000001\n");

	cr_assert_eq(run_ckpt(&r, "-v", "track", "-t", c.pid, "--count", "1", "--interval", "10ms", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.err, "removed the tracking record of pid"), "-v does not say what it removed: %s",
		  r.err);
	{
		char want[64];

		snprintf(want, sizeof(want), "record of pid %s ", a.pid);
		cr_expect(strstr(r.err, want), "no word of pid %s: %s", a.pid, r.err);
	}
	run_result_done(&r);

	snprintf(path, sizeof(path), "%s/track-%s.json", tmp, a.pid);
	cr_expect_not(exists(path), "the record of the killed pid %s is still there", a.pid);
	snprintf(path, sizeof(path), "%s/track-%s.gen", tmp, a.pid);
	cr_expect_not(exists(path));
	snprintf(path, sizeof(path), "%s/track-%s.lock", tmp, a.pid);
	cr_expect_not(exists(path));
	snprintf(path, sizeof(path), "%s/track-1.json", tmp);
	cr_expect_not(exists(path), "the record of another process with pid 1 is still there");
	snprintf(path, sizeof(path), "%s/track-%d.lock", tmp, gone1);
	cr_expect_not(exists(path), "a lock without a record is still there");
	snprintf(path, sizeof(path), "%s/track-%d.gen", tmp, gone2);
	cr_expect_not(exists(path), "a generation without a record is still there");
	snprintf(path, sizeof(path), "%s/track-%d.json", tmp, held);
	cr_expect(exists(path), "a record in use (locked) was removed");
	/* The live one is intact: a delta of it works. */
	cr_assert(exists(rec_b), "the record of the live pid %s was removed", b.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", b.pid, "-D", dd, "--parent", db, "--leave-running", NULL), 0);
	cr_expect_eq(r.status, 0, "a delta of the live tracked process fails: %s", r.err);
	cr_expect(strstr(r.out, "delta of"), "%s", r.out);
	run_result_done(&r);
	close(lock_fd);

	/* Without -v the removal is silent, and the released record goes now. */
	cr_assert_eq(run_ckpt(&r, "dump", "-t", c.pid, "-D", dc, "--leave-running", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_eq(strstr(r.err, "removed"), NULL, "%s", r.err);
	run_result_done(&r);
	snprintf(path, sizeof(path), "%s/track-%d.json", tmp, held);
	cr_expect_not(exists(path), "the record of a gone process, no longer locked, is still there");
	cr_expect(exists(rec_b));
	prog_kill(&b.p);
	prog_kill(&c.p);
}

/* ---- messages that name the real cause (issue 18 §5) ---- */

/* A kernel thread visible here (PF_KTHREAD in its stat), or 0: none in this pid namespace. */
static pid_t kernel_thread(char *comm, size_t len)
{
	for (pid_t pid = 2; pid < 200; pid++) {
		char path[64], buf[1024], *close_paren;
		unsigned long flags;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (!(f = fopen(path, "r")))
			continue;
		buf[0] = '\0';
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
		close_paren = strrchr(buf, ')');
		/* after "pid (comm)": state ppid pgrp session tty_nr tpgid flags */
		if (close_paren && sscanf(close_paren + 2, "%*c %*d %*d %*d %*d %*d %lu", &flags) == 1 &&
		    (flags & 0x00200000UL)) {
			*strrchr(buf, ')') = '\0';
			snprintf(comm, len, "%s", strchr(buf, '(') + 1);
			return pid;
		}
	}
	return 0;
}

Test(robust, a_kernel_thread_is_said_to_be_one)
{
	char comm[64], pid[16], dir[128], want[160];
	pid_t k = kernel_thread(comm, sizeof(comm));
	struct run_result r;

	if (!k)
		cr_skip_test("no kernel thread is visible in this pid namespace");
	snprintf(pid, sizeof(pid), "%d", k);
	snprintf(dir, sizeof(dir), "%s/kthread", tmp);
	snprintf(want, sizeof(want), "pid %d (%s) is a kernel thread: it has no user memory to checkpoint", k, comm);
	for (int mode = 0; mode < 3; mode++) {
		if (mode == 2)
			cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "--timeout", "2", NULL), 0);
		else
			cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, mode ? "--leave-running" : NULL, NULL), 0);
		cr_expect_eq(r.status, 1, "mode %d: status %d: %s", mode, r.status, r.err);
		cr_expect(strstr(r.err, want), "mode %d: '%s' not said: %s", mode, want, r.err);
		cr_expect_not(strstr(r.err, "cannot identify"), "mode %d: %s", mode, r.err);
		run_result_done(&r);
		cr_expect_not(exists(dir));
	}
}

Test(robust, a_zombie_is_said_to_be_one)
{
	char pid[16], dir[128];
	struct run_result r;
	pid_t z = fork();

	if (z == 0)
		_exit(3);
	cr_assert_gt(z, 0);
	for (int i = 0; i < 200 && proc_state(z) != 'Z'; i++)
		usleep(10000);
	cr_assert_eq(proc_state(z), 'Z');
	snprintf(pid, sizeof(pid), "%d", z);
	snprintf(dir, sizeof(dir), "%s/zombie", tmp);
	for (int mode = 0; mode < 4; mode++) {
		if (mode == 2)
			cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "--timeout", "2", NULL), 0);
		else if (mode == 3)
			cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, NULL), 0);
		else
			cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, mode ? "--leave-running" : NULL, NULL), 0);
		/* track -D ends at once, with no checkpoint: an error too. */
		cr_expect_eq(r.status, 1, "mode %d: status %d: %s", mode, r.status, r.err);
		if (mode == 3)
			cr_expect(strstr(r.err, "ended before its first checkpoint"), "%s", r.err);
		cr_expect(strstr(r.err, "is a zombie: it has exited and only its exit status remains"),
			  "mode %d: not said to be a zombie: %s", mode, r.err);
		cr_expect_not(strstr(r.err, "cannot identify"), "mode %d: %s", mode, r.err);
		cr_expect_not(strstr(r.err, "was not killed"), "mode %d: %s", mode, r.err);
		run_result_done(&r);
		cr_expect_eq(proc_state(z), 'Z', "mode %d: the zombie was collected", mode);
		if (mode < 3)
			cr_expect_not(exists(dir));
		sh("rm -rf '%s'", dir);
	}
	waitpid(z, NULL, 0);
}

/*
 * A process killed by someone else (kill -9, the OOM killer) in the middle
 * of a kill-mode dump: while its pages are read the dump fails, says it
 * died and commits nothing (its exit may have written its memory: robust
 * futexes, clear_child_tid); once they are all read, the checkpoint is
 * whole and says it died before ckpt's kill. Never "the process was not
 * killed" about a dead process.
 */
Test(robust, a_target_killed_during_a_kill_mode_dump_is_said_dead, .timeout = 300)
{
	const char *py[] = { "/usr/bin/python3", "-c",
			     "import os, time\n"
			     "b = bytearray(os.urandom(160 << 20))\n"
			     "print('ready', flush=True)\n"
			     "while True: time.sleep(1)\n",
			     NULL };
	double t_dump = 0;
	int before = 0, after = 0;

	if (access(py[0], X_OK) < 0)
		cr_skip_test("no python3 to hold 160 MiB of memory");
	for (int trial = 0; trial < 16 && (before < 2 || (after < 1 && trial < 8)); trial++) {
		char pid[16], dir[128], outp[160], errp[160], line[64];
		const char *argv[] = { ckpt_bin(), "dump", "-t", pid, "-D", dir, NULL };
		struct prog p;
		int out, err, code;
		double t0, delay;
		pid_t ck;

		cr_assert_eq(prog_spawn(&p, false, NULL, py), 0);
		cr_assert_geq(prog_read_line(&p, line, sizeof(line), 30000), 0, "python3 did not start");
		snprintf(pid, sizeof(pid), "%d", p.pid);
		snprintf(dir, sizeof(dir), "%s/died-%d", tmp, trial);
		snprintf(outp, sizeof(outp), "%s.out", dir);
		snprintf(errp, sizeof(errp), "%s.err", dir);
		out = open(outp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		err = open(errp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		cr_assert(out >= 0 && err >= 0);
		/* The first trial measures a whole dump; the others kill it between 15% and 75% of it. */
		delay = trial ? t_dump * (0.15 + 0.6 * rnd(1000) / 1000.0) : 0;
		t0 = mono_s();
		ck = spawn(argv, out, err, 0);
		if (trial) {
			usleep((useconds_t)(delay * 1e6));
			kill(p.pid, SIGKILL);
		}
		code = wait_code(ck, 60000);
		if (!trial) {
			t_dump = mono_s() - t0;
			cr_assert_eq(code, 0, "the measuring dump failed: %s", slurp_fd(err));
		} else if (code != 0) {
			cr_expect_eq(code, 1, "trial %d: status %d: %s", trial, code, slurp_fd(err));
			/* Killed before the freeze was complete: it ended while being seized. */
			cr_expect((strstr(slurp_fd(err), "during the dump") && strstr(slurp_fd(err), "nothing was committed")) ||
				  strstr(slurp_fd(err), "ended while being seized"),
				  "trial %d (killed after %.3f s): its death not said: %s", trial, delay, slurp_fd(err));
			cr_expect(strstr(slurp_fd(err), "killed by SIGKILL") ||
				  strstr(slurp_fd(err), "was killed during the dump"), "trial %d: %s", trial, slurp_fd(err));
			before += strstr(slurp_fd(err), "during the dump") != NULL;
			cr_expect_not(strstr(slurp_fd(err), "was not killed"), "trial %d: said alive: %s", trial,
				      slurp_fd(err));
			cr_expect_not(exists(dir), "trial %d: '%s' committed", trial, dir);
		} else {
			cr_expect(strstr(slurp_fd(out), "the process was killed") ||
				  strstr(slurp_fd(out), "died before ckpt's kill: killed by SIGKILL"), "trial %d: %s", trial,
				  slurp_fd(out));
			cr_expect(exists(dir));
			if (strstr(slurp_fd(out), "died before ckpt's kill"))
				after++;
		}
		close(out);
		close(err);
		prog_kill(&p);
		sh("rm -rf '%s'", dir);
	}
	cr_log_info("dump %.3f s; %d killed before the commit, %d after the pages were read", t_dump, before, after);
	cr_assert_geq(before, 1, "no trial killed the process while its pages were read (dump %.3f s)", t_dump);
}

/* The first line of @path that holds @what, within @ms. */
static bool file_says(const char *path, const char *what, int ms)
{
	for (double end = mono_s() + ms / 1000.0; mono_s() < end; usleep(20000)) {
		FILE *f = fopen(path, "r");
		char line[512];
		bool found = false;

		while (f && !found && fgets(line, sizeof(line), f))
			found = strstr(line, what) != NULL;
		if (f)
			fclose(f);
		if (found)
			return true;
	}
	return false;
}

/*
 * ckpt's own userfaultfd, parked by a running `ckpt track`: a dump says
 * who tracks the process and what to do, never "a userfaultfd of the
 * application"; the process runs on.
 */
Test(robust, a_process_tracked_by_ckpt_track_is_said_so, .timeout = 120)
{
	for (int with_dir = 0; with_dir < 2; with_dir++) {
		struct counter c;
		char logp[128], series[128], dir[128], want[160];
		const char *argv[] = { ckpt_bin(), "track", "-t", NULL, with_dir ? "-D" : NULL, series, NULL };
		struct run_result r;
		int log, code;
		pid_t tr;

		counter_start(&c);
		argv[3] = c.pid;
		snprintf(logp, sizeof(logp), "%s/tracker%d.log", tmp, with_dir);
		snprintf(series, sizeof(series), "%s/series%d", tmp, with_dir);
		snprintf(dir, sizeof(dir), "%s/tracked%d", tmp, with_dir);
		log = open(logp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		cr_assert_geq(log, 0);
		tr = spawn(argv, log, log, 0);
		/* track -D parks its userfaultfd in the process; the monitor holds it. */
		cr_assert(file_says(logp, with_dir ? "parked at fd" : "held by ckpt", 10000), "the tracker did not arm: %s",
			  slurp_fd(log));
		snprintf(want, sizeof(want), "pid %d is tracked by ckpt track (pid %d)", c.p.pid, tr);
		for (int mode = 0; mode < 2; mode++) {
			cr_assert_eq(run_ckpt(&r, "dump", "-t", c.pid, "-D", dir, mode ? "--leave-running" : NULL, NULL), 0);
			cr_expect_eq(r.status, 1, "status %d: %s", r.status, r.err);
			cr_expect(strstr(r.err, want), "'%s' not said: %s", want, r.err);
			cr_expect(strstr(r.err, with_dir ? "use its checkpoints" : "stop it (SIGINT to pid"), "%s", r.err);
			cr_expect_not(strstr(r.err, "a userfaultfd of the application"), "%s", r.err);
			run_result_done(&r);
			cr_expect_not(exists(dir));
			counter_intact(&c, with_dir ? "dump while track -D runs" : "dump while track runs");
		}
		kill(tr, SIGINT);
		code = wait_code(tr, 20000);
		cr_expect_eq(code, 0, "the tracker: exit %d: %s", code, slurp_fd(log));
		close(log);
		counter_intact(&c, "after the tracker");
		prog_kill(&c.p);
	}
}

/* A directory in place of pages.zst: "not a regular file", never "truncated". */
Test(robust, a_directory_in_place_of_pages_is_not_a_regular_file, .timeout = 60)
{
	struct counter c;
	struct run_result r;
	char img[128], path[192], next[160];

	counter_start(&c);
	snprintf(img, sizeof(img), "%s/pagesdir", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", c.pid, "-D", img, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	snprintf(path, sizeof(path), "%s/pages.zst", img);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(next, sizeof(next), "%s-delta", img);
	for (int cmd = 0; cmd < 3; cmd++) {
		if (cmd == 0)
			cr_assert_eq(run_ckpt(&r, "show", "--verify", img, NULL), 0);
		else if (cmd == 1)
			cr_assert_eq(run_ckpt(&r, "restore", "-D", img, "--detach", "--stdio", "null", NULL), 0);
		else
			cr_assert_eq(run_ckpt(&r, "dump", "-t", c.pid, "-D", next, "--parent", img, "--leave-running",
					      NULL), 0);
		cr_expect_eq(r.status, 1, "command %d: status %d: %s", cmd, r.status, r.err);
		cr_expect(strstr(r.err, "pages.zst' is not a regular file"), "command %d: %s", cmd, r.err);
		cr_expect_not(strstr(r.err, "truncated"), "command %d: %s", cmd, r.err);
		run_result_done(&r);
	}
	counter_intact(&c, "a directory for pages.zst");
	prog_kill(&c.p);
}
