/* SPDX-License-Identifier: MIT */
/*
 * A thread's scheduling comes back after dump and restore: policy (with
 * SCHED_RESET_ON_FORK), realtime priority, deadline parameters, nice value
 * and timer slack, as /proc of the restored process and the process itself
 * see them (test/progs/schedset).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/testutil.h"

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "sched-test");
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(sched, .init = setup, .fini = teardown, .timeout = 60);

struct sched_seen {
	int pid;
	unsigned int policy, prio;
	int reset, nice;
	long slack;
	unsigned long long runtime, deadline, period;
};

/* What the process says of itself ("sched pid=..." on any line). */
static void ask(struct prog *p, struct sched_seen *s)
{
	char line[256];

	cr_assert_eq(write(p->in_fd, "c\n", 2), 2);
	cr_assert_geq(prog_read_line(p, line, sizeof(line), 10000), 0, "no answer from pid %d", p->pid);
	cr_assert_eq(sscanf(line, "sched pid=%d policy=%u reset=%d prio=%u nice=%d slack=%ld runtime=%llu "
			    "deadline=%llu period=%llu", &s->pid, &s->policy, &s->reset, &s->prio,
			    &s->nice, &s->slack, &s->runtime, &s->deadline, &s->period), 9,
		     "got '%s'", line);
}

/* Fields 19 (nice), 40 (rt_priority) and 41 (policy) of /proc/PID/stat. */
static void proc_sched(pid_t pid, int *nice, unsigned int *prio, unsigned int *policy)
{
	char path[64], buf[1024], *s;
	FILE *f;
	int field = 3;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "no %s", path);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	s = strrchr(buf, ')');
	cr_assert_not_null(s);
	for (s += 2; *s && field < 41; field++) {
		if (field == 19)
			*nice = atoi(s);
		else if (field == 40)
			*prio = (unsigned int)atol(s);
		s = strchr(s, ' ');
		cr_assert_not_null(s);
		s++;
	}
	*policy = (unsigned int)atol(s);
}

static long proc_timerslack(pid_t pid)
{
	char path[64];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/timerslack_ns", pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "no %s", path);
	cr_assert_eq(fscanf(f, "%ld", &v), 1);
	fclose(f);
	return v;
}

/* The process and /proc agree with @want; @what names the process. */
static void expect_sched(struct prog *p, const struct sched_seen *want, const char *what)
{
	struct sched_seen s;
	unsigned int prio = 99, policy = 99;
	int nice = 99;

	ask(p, &s);
	cr_expect_eq(s.policy, want->policy, "%s: policy %u", what, s.policy);
	cr_expect_eq(s.reset, want->reset, "%s: reset on fork %d", what, s.reset);
	cr_expect_eq(s.prio, want->prio, "%s: priority %u", what, s.prio);
	cr_expect_eq(s.nice, want->nice, "%s: nice %d", what, s.nice);
	cr_expect_eq(s.slack, want->slack, "%s: timer slack %ld", what, s.slack);
	if (want->policy == SCHED_DEADLINE) {
		cr_expect_eq(s.runtime, want->runtime, "%s: runtime %llu", what, s.runtime);
		cr_expect_eq(s.deadline, want->deadline, "%s: deadline %llu", what, s.deadline);
		cr_expect_eq(s.period, want->period, "%s: period %llu", what, s.period);
	}
	proc_sched(s.pid, &nice, &prio, &policy);
	cr_expect_eq(policy, want->policy, "%s: /proc policy %u", what, policy);
	cr_expect_eq(prio, want->prio, "%s: /proc rt_priority %u", what, prio);
	cr_expect_eq(nice, want->nice, "%s: /proc nice %d", what, nice);
	cr_expect_eq(proc_timerslack(s.pid), want->slack, "%s: /proc timer slack", what);
	cr_expect_eq(sched_getscheduler(s.pid), (int)want->policy | (want->reset ? SCHED_RESET_ON_FORK : 0),
		     "%s: sched_getscheduler", what);
}

/* Start schedset @mode, dump it (killed), restore it, compare. */
static void round_trip(const char *mode, const struct sched_seen *want)
{
	const char *argv[] = { ckpt_bin(), "restore", "-D", NULL, "--stdio", "inherit", NULL };
	struct run_result r;
	struct prog p, rp;
	struct sched_seen mine = { 0 };
	char dir[128], pid_s[16];

	/* ckpt itself: what a process it restores has before its own is set. */
	mine.policy = (unsigned int)sched_getscheduler(0);
	cr_assert_eq(prog_start(&p, true, 5000, "schedset", mode, NULL), 0);
	expect_sched(&p, want, "the original");
	snprintf(pid_s, sizeof(pid_s), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/%s", tmp, mode);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "dump: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);

	argv[3] = dir;
	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	expect_sched(&rp, want, "the restored process");
	cr_expect_neq(mine.policy, want->policy, "ckpt runs with the policy under test");
	kill(rp.pid, SIGTERM);
	prog_wait(&rp, 5000);
	prog_kill(&rp);
}

Test(sched, batch_reset_on_fork_nice_and_timer_slack_come_back)
{
	const struct sched_seen want = { .policy = SCHED_BATCH, .reset = 1, .nice = 5, .slack = 123456 };

	round_trip("batch", &want);
}

Test(sched, idle_comes_back)
{
	const struct sched_seen want = { .policy = SCHED_IDLE, .nice = 7, .slack = 2000000 };

	round_trip("idle", &want);
}

Test(sched, fifo_with_its_priority_and_nice_comes_back)
{
	/* A realtime thread's timer slack is 0: the kernel's, restored as such. */
	const struct sched_seen want = { .policy = SCHED_FIFO, .prio = 7, .nice = -3, .slack = 0 };

	round_trip("fifo", &want);
}

Test(sched, deadline_with_its_parameters_comes_back)
{
	const struct sched_seen want = { .policy = SCHED_DEADLINE, .nice = 4, .slack = 0,
					 .runtime = 2000000, .deadline = 20000000, .period = 40000000 };

	round_trip("deadline", &want);
}
