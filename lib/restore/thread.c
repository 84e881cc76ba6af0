/* SPDX-License-Identifier: MIT */
/*
 * The threads of a multi-threaded process, made once the leader holds the
 * process's memory, files and signal state: each by a remote clone3 in the
 * leader with the flags of glibc's pthread_create (less what ckpt sets
 * itself: TLS and the tid addresses are in the registers and set in the
 * thread) and set_tid, its original id. Each starts stopped, with every
 * signal blocked, and has never run; its own state is set in it at once.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <linux/sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "restore/restore-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define THREAD_FLAGS \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM)

static int make_thread(struct rst *r, size_t idx)
{
	pid_t tid = r->s->threads[idx].tid;
	struct clone_args args = { .flags = THREAD_FLAGS, .set_tid_size = 1 };
	uint64_t at;
	int64_t res;
	size_t got;
	char who[128];
	int e;

	rst_use_thread(r, 0);
	rst_reset(r);
	args.set_tid = rst_put(r, &tid, sizeof(tid));
	at = rst_put(r, &args, sizeof(args));
	if (!args.set_tid || !at)
		return -ENOMEM;
	for (int tries = 0;; tries++) {
		e = ckpt_inject_clone_thread(r->inj, 0, at, sizeof(args), &res, &got);
		if (e < 0 || res != -EEXIST || tries == RST_LIMBO_TRIES || !rst_id_in_limbo(tid))
			break;
		usleep(10000);
	}
	if (e < 0) {
		pr_err("cannot make thread %d of pid %d: %s", tid, r->pid, errstr(e));
		return e;
	}
	if (res == -EEXIST) {
		rst_id_holder(tid, who, sizeof(who));
		pr_err("cannot make thread %d of pid %d: the id is taken (by %s)", tid, r->pid, who);
		return -EEXIST;
	}
	if (res < 0) {
		pr_err("cannot make thread %d of pid %d: %s", tid, r->pid, errstr((int)res));
		return (int)res;
	}
	if (got != idx) { /* the context numbers threads as they come: never here */
		pr_err("thread %d of pid %d came as thread %zu of the context, not %zu", tid, r->pid, got, idx);
		return -EPROTO;
	}
	return 0;
}

int rst_threads(struct rst *r)
{
	for (size_t i = 1; i < r->s->nr_threads; i++) {
		int e;

		if ((e = make_thread(r, i)) < 0 || (e = rst_thread(r, i)) < 0)
			return e;
	}
	return 0;
}
