/* SPDX-License-Identifier: MIT */
/*
 * A SIGKILL of ckpt must never harm the target (scripts/killtest is the long
 * version: 50 trials per mode). A tracer of our own (libckpt in a child) is
 * killed between remote calls and with a call in flight; then the ckpt
 * binary is killed at random moments of dump, dump --leave-running, track,
 * track -D and restore. Each time the target must run on as it was:
 * test/progs/selfcheck checks its registers, memory, signal mask, affinity,
 * a read(2) and a nanosleep(2) all the time; test/progs/target shows that a
 * blocking call interrupted by the freeze restarts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/inject.h>

#include "helpers/testutil.h"

static char dir[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ckpt-killsafe.%d", getpid());
	mkdir(dir, 0700);
	setenv("CKPT_RUNDIR", dir, 1);
}

static void teardown(void)
{
	char cmd[200];

	prog_kill_all();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
}

TestSuite(killsafe, .init = setup, .fini = teardown, .timeout = 120);

/* ---- reading selfcheck's status ---- */

struct tick {
	long tick, usr1;
	int pinned;
	bool bad;
	char bad_line[300];
};

/* The last status line of @pid in @path (tick -1: none). */
static struct tick last_tick(const char *path, pid_t pid)
{
	struct tick t = { .tick = -1 };
	char line[200];
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f)) {
		int p;
		long n, u;
		int pin;

		if (sscanf(line, "pid %d tick %ld usr1 %ld pinned %d", &p, &n, &u, &pin) == 4 && p == pid) {
			t.tick = n;
			t.usr1 = u;
			t.pinned = pin;
		} else if (sscanf(line, "BAD pid %d", &p) == 1 && p == pid) {
			t.bad = true;
			snprintf(t.bad_line, sizeof(t.bad_line), "%s", line);
		}
	}
	if (f)
		fclose(f);
	return t;
}

/* Empty string if @pid runs as it should, else what is wrong. */
static void check_healthy(const char *status, pid_t pid, char *why, size_t len)
{
	struct tick a, b;
	char st;


	why[0] = '\0';
	st = proc_state(pid);
	if (st != 'R' && st != 'S' && st != 'D') {
		snprintf(why, len, "state '%c'", st ? st : '-');
		return;
	}
	a = last_tick(status, pid);
	kill(pid, SIGUSR1);
	/* A tick every 50 ms: on a loaded machine a running process may wait a while for a CPU. */
	for (int i = 0; i < 20; i++) {
		usleep(100000);
		b = last_tick(status, pid);
		if (b.bad || (b.tick > a.tick + 1 && b.usr1 > a.usr1))
			break;
	}
	if (b.bad)
		snprintf(why, len, "%s", b.bad_line);
	else if (b.tick <= a.tick)
		snprintf(why, len, "not ticking (%ld -> %ld)", a.tick, b.tick);
	else if (b.usr1 <= a.usr1)
		snprintf(why, len, "SIGUSR1 not delivered");
	else if (b.pinned)
		snprintf(why, len, "CPU affinity changed");
}

static void start_selfcheck(struct prog *p, const char *status, bool single)
{
	unlink(status);
	cr_assert_eq(prog_start(p, false, 5000, "selfcheck", status, single ? "single" : NULL, NULL), 0);
	usleep(60000);
}

/* ---- a tracer of our own ---- */

enum { BETWEEN_CALLS, IN_FLIGHT };

/*
 * A child seizes @pid with libckpt, makes a few calls, says so on @fd, then
 * either waits (between calls) or makes a remote poll(NULL, 0, 400) that is
 * in flight when the parent kills it.
 */
static pid_t spawn_tracer(pid_t pid, int how)
{
	int fds[2];
	pid_t c;
	char ok;

	cr_assert_eq(pipe(fds), 0);
	c = fork();
	cr_assert_geq(c, 0);
	if (c == 0) {
		struct ckpt_inject *inj;
		int64_t res;

		close(fds[0]);
		if (ckpt_inject_seize(pid, 0, &inj) < 0)
			_exit(1);
		for (int i = 0; i < 5; i++)
			if (ckpt_inject_call(inj, &res, SYS_getpid) < 0 || res != pid)
				_exit(2);
		(void)!write(fds[1], "r", 1);
		if (how == IN_FLIGHT && ckpt_inject_call(inj, &res, SYS_poll, 0, 0, 400) < 0)
			_exit(3);
		for (;;)
			pause();
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &ok, 1), 1, "the tracer child failed");
	close(fds[0]);
	return c;
}

static void kill_tracer(pid_t c, int how)
{
	if (how == IN_FLIGHT)
		usleep(100000); /* well inside the 400 ms poll */
	kill(c, SIGKILL);
	cr_assert_eq(waitpid(c, NULL, 0), c);
}

static void tracer_dies_selfcheck(int how)
{
	char status[200], why[400];
	struct prog p;
	pid_t c;

	snprintf(status, sizeof(status), "%s/status", dir);
	start_selfcheck(&p, status, false);
	c = spawn_tracer(p.pid, how);
	kill_tracer(c, how);
	usleep(how == IN_FLIGHT ? 400000 : 100000);
	check_healthy(status, p.pid, why, sizeof(why));
	cr_assert_str_empty(why, "target harmed: %s", why);
	prog_kill(&p);
}

Test(killsafe, tracer_killed_between_calls)
{
	tracer_dies_selfcheck(BETWEEN_CALLS);
}

Test(killsafe, tracer_killed_with_a_call_in_flight)
{
	tracer_dies_selfcheck(IN_FLIGHT);
}

/*
 * A thread interrupted in read(2) goes back into it: between calls the
 * kernel restarts it from its own registers; with a call in flight the
 * stub does.
 */
static void blocked_read_restarts(int how)
{
	struct prog p;
	char buf[64];

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	usleep(20000);
	kill_tracer(spawn_tracer(p.pid, how), how);
	usleep(how == IN_FLIGHT ? 400000 : 100000);
	cr_assert_eq(proc_state(p.pid), 'S');
	cr_assert_eq(write(p.in_fd, "after\n", 6), 6);
	cr_assert_geq(prog_read_line(&p, buf, sizeof(buf), 5000), 0, "the target does not read");
	cr_assert_str_eq(buf, "got after");
	prog_kill(&p);
}

Test(killsafe, blocked_read_restarts_when_killed_between_calls)
{
	blocked_read_restarts(BETWEEN_CALLS);
}

Test(killsafe, blocked_read_restarts_after_a_call_in_flight)
{
	blocked_read_restarts(IN_FLIGHT);
}

/* ... and into its nanosleep(2), through restart_syscall: same deadline. */
Test(killsafe, nanosleep_keeps_its_deadline_after_a_call_in_flight)
{
	unsigned long long elapsed;
	struct prog p;
	char buf[128];
	int ret, err;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "sleep", "1500", NULL), 0);
	usleep(100000);
	kill_tracer(spawn_tracer(p.pid, IN_FLIGHT), IN_FLIGHT);
	cr_assert_geq(prog_read_line(&p, buf, sizeof(buf), 5000), 0, "the target does not wake");
	cr_assert_eq(sscanf(buf, "slept %d %d %llu", &ret, &err, &elapsed), 3, "'%s'", buf);
	cr_expect_eq(ret, 0, "nanosleep returned %d errno %d", ret, err);
	cr_expect_geq(elapsed, 1500000000ULL, "woke early: %llu ns", elapsed);
	/* From scratch again would be 2 s or more; the rest is a loaded machine. */
	cr_expect_lt(elapsed, 1900000000ULL, "woke late: %llu ns", elapsed);
	prog_kill(&p);
}

/*
 * A signal sent just before the seize is delivered, once: it stays pending
 * through the freeze, or, if the thread had already taken it, is passed on
 * from the stop the seize meets (without being taken from that stop: a
 * ckpt killed in between must not drop it). Rarely the second here.
 */
Test(killsafe, signals_sent_at_seize_are_each_delivered)
{
	struct prog p;
	char buf[128];
	void *addr = NULL;

	cr_assert_eq(prog_start(&p, true, 0, "target", "signals", NULL), 0);
	cr_assert_geq(prog_read_line(&p, buf, sizeof(buf), 5000), 0);
	cr_assert_eq(sscanf(buf, "ready %p", &addr), 1, "'%s'", buf);
	for (int i = 1; i <= 200; i++) {
		struct ckpt_inject *inj;
		double deadline;
		int count = -1;

		cr_assert_eq(kill(p.pid, SIGUSR1), 0);
		cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
		cr_assert_eq(ckpt_inject_release(inj), 0);
		/* Delivered before the next one is sent: two pending would be one. */
		for (deadline = mono_s() + 2; mono_s() < deadline; usleep(200)) {
			struct iovec l = { &count, sizeof(count) }, r = { addr, sizeof(count) };

			cr_assert_eq(process_vm_readv(p.pid, &l, 1, &r, 1, 0), (ssize_t)sizeof(count));
			if (count >= i)
				break;
		}
		cr_assert_eq(count, i, "signal %d was not delivered once (count %d)", i, count);
	}
	prog_kill(&p);
}

/* ---- the ckpt binary, killed at random moments ---- */

enum mode { DUMP, LEAVE, TRACK, TRACKD, RESTORE, NR_MODES };
static const char *const mode_names[] = { "dump", "dump --leave-running", "track", "track -D",
					  "restore" };

static double now_s(void)
{
	return mono_s();
}

/* Start ckpt for @m on @pid; its pid. */
static pid_t start_ckpt(enum mode m, pid_t pid, struct prog *c)
{
	char spid[16], img[200], base[200], pidfile[200];
	const char *argv[16];
	int n = 0;

	snprintf(spid, sizeof(spid), "%d", pid);
	snprintf(img, sizeof(img), "%s/img", dir);
	snprintf(base, sizeof(base), "%s/base", dir);
	snprintf(pidfile, sizeof(pidfile), "%s/pidfile", dir);
	argv[n++] = ckpt_bin();
	switch (m) {
	case DUMP:
	case LEAVE:
		argv[n++] = "dump", argv[n++] = "-t", argv[n++] = spid, argv[n++] = "-D", argv[n++] = img;
		/* selfcheck's threads are what restore cannot recreate yet: not the point here. */
		argv[n++] = "--allow-unrestorable";
		if (m == LEAVE)
			argv[n++] = "--leave-running";
		break;
	case TRACK:
	case TRACKD:
		argv[n++] = "track", argv[n++] = "-t", argv[n++] = spid, argv[n++] = "--interval";
		argv[n++] = "20ms", argv[n++] = "--count", argv[n++] = m == TRACK ? "5" : "2";
		if (m == TRACKD)
			argv[n++] = "-D", argv[n++] = img, argv[n++] = "--allow-unrestorable";
		break;
	default:
		argv[n++] = "restore", argv[n++] = "-D", argv[n++] = base, argv[n++] = "--detach";
		argv[n++] = "--pidfile", argv[n++] = pidfile, argv[n++] = "--stdio", argv[n++] = "null";
		break;
	}
	argv[n] = NULL;
	cr_assert_eq(prog_spawn(c, false, "/dev/null", argv), 0);
	return c->pid;
}

static pid_t read_pidfile(void)
{
	char path[200];
	FILE *f;
	int pid = 0;

	snprintf(path, sizeof(path), "%s/pidfile", dir);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

static void clean_images(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/img' '%s/pidfile'", dir, dir);
	(void)!system(cmd);
}

#define TRIALS 8

static void random_kills(enum mode m)
{
	char status[200], why[400], path[256];
	double dur;
	int harmed = 0, killed = 0;
	struct prog t, c;

	snprintf(status, sizeof(status), "%s/status", dir);
	if (m == RESTORE) {
		struct run_result res;
		char base[200], spid[16];

		start_selfcheck(&t, status, true);
		snprintf(base, sizeof(base), "%s/base", dir);
		snprintf(spid, sizeof(spid), "%d", t.pid);
		cr_assert_eq(run_ckpt(&res, "dump", "-t", spid, "-D", base, NULL), 0);
		cr_assert_eq(res.status, 0, "cannot make the checkpoint: %s", res.err);
		run_result_done(&res);
		prog_wait(&t, 5000);
		prog_kill(&t);
	}
	/* How long the command takes when left alone: kills land in it. */
	clean_images();
	if (m != RESTORE)
		start_selfcheck(&t, status, false);
	dur = now_s();
	start_ckpt(m, m == RESTORE ? 0 : t.pid, &c);
	cr_assert_eq(prog_wait(&c, 30000), 0, "%s does not work at all", mode_names[m]);
	prog_kill(&c);
	dur = now_s() - dur;
	if (m == RESTORE)
		kill(read_pidfile(), SIGKILL);
	else
		prog_kill(&t);

	srand((unsigned)getpid());
	for (int i = 0; i < TRIALS; i++) {
		useconds_t delay = (useconds_t)((double)rand() / RAND_MAX * dur * 1e6);
		pid_t target = 0;
		int st;

		clean_images();
		if (m == RESTORE)
			unlink(status);
		else
			start_selfcheck(&t, status, false);
		start_ckpt(m, m == RESTORE ? 0 : t.pid, &c);
		usleep(delay);
		if (kill(c.pid, SIGKILL) == 0)
			killed++;
		st = prog_wait(&c, 30000);
		cr_assert_geq(st, 0);
		prog_kill(&c);
		usleep(200000);
		why[0] = '\0';
		if (m == RESTORE) {
			target = read_pidfile();
			if (target > 0 && proc_state(target) && proc_state(target) != 'Z')
				check_healthy(status, target, why, sizeof(why));
			else if (target > 0 && last_tick(status, target).tick >= 0)
				snprintf(why, sizeof(why), "the restored process ran and is gone");
			if (target > 0)
				kill(target, SIGKILL);
		} else if (proc_state(t.pid) && proc_state(t.pid) != 'Z') {
			check_healthy(status, t.pid, why, sizeof(why));
			/* The monitor's userfaultfd is ckpt's alone: it goes with ckpt. */
			if (!why[0] && m == TRACK && proc_uffd_registered(t.pid))
				snprintf(why, sizeof(why), "still tracked after ckpt track was killed");
			prog_kill(&t);
		} else {
			int ts = prog_wait(&t, 1000);

			prog_kill(&t);
			snprintf(path, sizeof(path), "%s/img", dir);
			/* Kill mode: ckpt kills it once the checkpoint is complete. */
			if (!(m == DUMP && ts >= 0 && WIFSIGNALED(ts) && WTERMSIG(ts) == SIGKILL &&
			      access(path, F_OK) == 0))
				snprintf(why, sizeof(why), "the target died (wait status %#x)", ts);
		}
		if (why[0]) {
			harmed++;
			cr_log_error("%s, kill after %u us: %s", mode_names[m], delay, why);
		}
	}
	cr_log_info("%s: %d trials, %d kills, %d harmed (delays up to %.0f ms)", mode_names[m], TRIALS,
		    killed, harmed, dur * 1e3);
	cr_expect_eq(harmed, 0, "%s: %d of %d targets harmed by SIGKILL of ckpt", mode_names[m], harmed,
		     TRIALS);
}

/* The child of selfcheck tree @pid (0 if none yet). */
static pid_t child_of(pid_t pid)
{
	char path[64];
	int kid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &kid) != 1)
			kid = 0;
		fclose(f);
	}
	return kid;
}

/*
 * A process tree (selfcheck tree: a parent and a child, each checking
 * itself): ckpt dump of it SIGKILLed at random moments never harms either;
 * in kill mode, a complete checkpoint may have taken both. @track: ckpt
 * track of the tree (which leaves them running) instead of a dump.
 */
static void random_kills_tree(bool leave, bool track)
{
	char status[200], why[400], path[256], spid[16];
	const char *dump_argv[] = { ckpt_bin(), "dump", "-t", spid, "-D", path, leave ? "--leave-running" : NULL, NULL };
	const char *track_argv[] = { ckpt_bin(), "track", "-t", spid, "--interval", "20ms", "--count", "5", NULL };
	const char *const *argv = track ? track_argv : dump_argv;
	int harmed = 0, killed = 0;
	struct prog t, c;
	double dur = 0;

	snprintf(status, sizeof(status), "%s/status", dir);
	snprintf(path, sizeof(path), "%s/img", dir);
	srand((unsigned)getpid() + leave);
	for (int i = -1; i < TRIALS; i++) {
		useconds_t delay = i < 0 ? 0 : (useconds_t)((double)rand() / RAND_MAX * dur * 1e6);
		pid_t kid;
		int st;

		clean_images();
		unlink(status);
		cr_assert_eq(prog_start(&t, false, 5000, "selfcheck", status, "tree", NULL), 0);
		for (int k = 0; k < 100 && !(kid = child_of(t.pid)); k++)
			usleep(10000);
		cr_assert_gt(kid, 0, "selfcheck made no child");
		prog_track_pid(kid);
		usleep(60000);
		snprintf(spid, sizeof(spid), "%d", t.pid);
		if (i < 0) {
			/* How long the dump takes when left alone: kills land in it. */
			dur = now_s();
			cr_assert_eq(prog_spawn(&c, false, NULL, argv), 0);
			cr_assert_eq(prog_wait(&c, 30000), 0, "the tree command does not work at all");
			dur = now_s() - dur;
			kill(kid, SIGKILL);
			prog_kill(&t);
			continue;
		}
		cr_assert_eq(prog_spawn(&c, false, NULL, argv), 0);
		usleep(delay);
		if (kill(c.pid, SIGKILL) == 0)
			killed++;
		st = prog_wait(&c, 30000);
		cr_assert_geq(st, 0);
		usleep(200000);
		why[0] = '\0';
		if (proc_state(t.pid) && proc_state(t.pid) != 'Z') {
			check_healthy(status, t.pid, why, sizeof(why));
			if (!why[0])
				check_healthy(status, kid, why, sizeof(why));
			if (!why[0] && track && (proc_uffd_registered(t.pid) || proc_uffd_registered(kid)))
				snprintf(why, sizeof(why), "still tracked after ckpt track was killed");
		} else if (leave || track || access(path, F_OK) != 0) {
			snprintf(why, sizeof(why), "the root died without a complete checkpoint");
		} else if (proc_state(kid) && proc_state(kid) != 'Z') {
			snprintf(why, sizeof(why), "kill mode took the root, not its child");
		}
		if (why[0]) {
			harmed++;
			cr_log_error("tree %s, kill after %u us: %s",
				     track ? "track" : leave ? "leave-running" : "kill mode", delay, why);
		}
		kill(kid, SIGKILL);
		prog_kill(&t);
	}
	cr_log_info("tree %s: %d trials, %d kills, %d harmed (delays up to %.0f ms)",
		    track ? "track" : leave ? "dump --leave-running" : "dump", TRIALS, killed, harmed, dur * 1e3);
	cr_expect_eq(harmed, 0, "%d of %d trees harmed by SIGKILL of ckpt", harmed, TRIALS);
}

Test(killsafe, sigkill_during_tree_dump)
{
	random_kills_tree(false, false);
}

Test(killsafe, sigkill_during_tree_dump_leave_running)
{
	random_kills_tree(true, false);
}

Test(killsafe, sigkill_during_tree_track)
{
	random_kills_tree(false, true);
}

Test(killsafe, sigkill_during_dump)
{
	random_kills(DUMP);
}

Test(killsafe, sigkill_during_dump_leave_running)
{
	random_kills(LEAVE);
}

Test(killsafe, sigkill_during_track)
{
	random_kills(TRACK);
}

Test(killsafe, sigkill_during_track_d)
{
	random_kills(TRACKD);
}

Test(killsafe, sigkill_during_restore)
{
	random_kills(RESTORE);
}
