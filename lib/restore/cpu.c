/* SPDX-License-Identifier: MIT */
/*
 * While the new process is built, it and ckpt run on one CPU: every remote
 * system call wakes it while ckpt waits, and the scheduler would otherwise
 * send it to the other, idle, CPU (a cross-CPU wake-up each way: about 70 us
 * a call instead of 5 here, and a restore makes some 150 of them). Both get
 * ckpt's own affinity back before the process runs.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "restore/restore-internal.h"
#include "util/log.h"

struct rst_cpu {
	cpu_set_t own;
};

struct rst_cpu *rst_cpu_together(pid_t pid)
{
	struct rst_cpu *c = malloc(sizeof(*c));
	int cpu = sched_getcpu();
	cpu_set_t one;

	if (!c)
		return NULL;
	if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof(c->own), &c->own) < 0)
		goto none;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (!CPU_ISSET(cpu, &c->own) || sched_setaffinity(0, sizeof(one), &one) < 0)
		goto none;
	(void)sched_setaffinity(pid, sizeof(one), &one);
	return c;
none:
	free(c);
	return NULL;
}

void rst_cpu_apart(struct rst_cpu *c, pid_t pid)
{
	if (!c)
		return;
	/* The new process was forked from ckpt: ckpt's affinity is the one it had. */
	if (pid > 0 && sched_setaffinity(pid, sizeof(c->own), &c->own) < 0 && errno != ESRCH)
		pr_warn("cannot give pid %d its CPU affinity back: %s", pid, strerror(errno));
	(void)sched_setaffinity(0, sizeof(c->own), &c->own);
	free(c);
}
