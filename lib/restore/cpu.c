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

/* Its threads were made from the leader, pinned: each gets ckpt's affinity back. */
static void apart(struct rst_cpu *c, pid_t tid)
{
	if (sched_setaffinity(tid, sizeof(c->own), &c->own) < 0 && errno != ESRCH)
		pr_warn("cannot give thread %d its CPU affinity back: %s", tid, strerror(errno));
}

void rst_cpu_apart(struct rst_cpu *c, const struct rst *r)
{
	if (!c)
		return;
	/* The new process was forked from ckpt: ckpt's affinity is the one it had. */
	if (r->pid > 0) {
		apart(c, r->pid);
		for (size_t i = 1; r->inj && i < ckpt_inject_nr_threads(r->inj); i++)
			apart(c, ckpt_inject_thread(r->inj, i)->tid);
	}
	(void)sched_setaffinity(0, sizeof(c->own), &c->own);
	free(c);
}
