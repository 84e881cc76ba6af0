/* SPDX-License-Identifier: MIT */
/*
 * Target of the scheduling tests (test/integ/sched.c): a process that gives
 * itself a scheduling policy, a nice value and a timer slack.
 *
 *   schedset batch      SCHED_BATCH | SCHED_RESET_ON_FORK, nice 5, timer slack 123456 ns
 *   schedset idle       SCHED_IDLE, nice 7, timer slack 2000000 ns
 *   schedset fifo       nice -3, then SCHED_FIFO priority 7 (timer slack 0: the kernel's)
 *   schedset deadline   SCHED_DEADLINE runtime 2 ms, deadline 20 ms, period 40 ms, nice 4
 *
 * Prints "ready", then for each line on stdin what it sees of itself:
 * "sched pid=P policy=N reset=0|1 prio=N nice=N slack=NS runtime=NS
 * deadline=NS period=NS".
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SCHED_FIFO_ 1
#define SCHED_BATCH_ 3
#define SCHED_IDLE_ 5
#define SCHED_DEADLINE_ 6
#define SCHED_FLAG_RESET_ON_FORK_ 0x01

struct attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
	uint32_t util_min, util_max;
};

static void die(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	exit(1);
}

static void set(uint32_t policy, uint64_t flags, uint32_t prio, uint64_t runtime, uint64_t deadline,
		uint64_t period)
{
	struct attr a = { sizeof(a), policy, flags, 0, prio, runtime, deadline, period, 0, 0 };

	/* Keep the nice value set before: sched_setattr would set it for a normal policy. */
	errno = 0;
	a.nice = getpriority(PRIO_PROCESS, 0);
	if (errno)
		die("getpriority");
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		die("sched_setattr");
}

static void report(void)
{
	struct attr a = { 0 };
	int nice;

	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) < 0)
		die("sched_getattr");
	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	if (errno)
		die("getpriority");
	printf("sched pid=%d policy=%u reset=%d prio=%u nice=%d slack=%ld runtime=%llu deadline=%llu "
	       "period=%llu\n", getpid(), a.policy, !!(a.flags & SCHED_FLAG_RESET_ON_FORK_), a.priority,
	       nice, (long)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), (unsigned long long)a.runtime,
	       (unsigned long long)a.deadline, (unsigned long long)a.period);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	char line[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "batch")) {
		if (setpriority(PRIO_PROCESS, 0, 5) < 0 || prctl(PR_SET_TIMERSLACK, 123456, 0, 0, 0) < 0)
			die("nice or timer slack");
		set(SCHED_BATCH_, SCHED_FLAG_RESET_ON_FORK_, 0, 0, 0, 0);
	} else if (!strcmp(mode, "idle")) {
		if (setpriority(PRIO_PROCESS, 0, 7) < 0 || prctl(PR_SET_TIMERSLACK, 2000000, 0, 0, 0) < 0)
			die("nice or timer slack");
		set(SCHED_IDLE_, 0, 0, 0, 0, 0);
	} else if (!strcmp(mode, "fifo")) {
		if (setpriority(PRIO_PROCESS, 0, -3) < 0)
			die("nice");
		set(SCHED_FIFO_, 0, 7, 0, 0, 0);
	} else if (!strcmp(mode, "deadline")) {
		if (setpriority(PRIO_PROCESS, 0, 4) < 0)
			die("nice");
		set(SCHED_DEADLINE_, 0, 0, 2000000, 20000000, 40000000);
	} else {
		fprintf(stderr, "usage: schedset batch|idle|fifo|deadline\n");
		return 2;
	}
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin))
		report();
	return 0;
}
