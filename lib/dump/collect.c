/* SPDX-License-Identifier: MIT */
/*
 * ckpt_dump_collect(): describe a seized process. The stages run in an
 * order that matters: the memory layout is read last, after every remote
 * query has mapped the scratch memory it needed, so that the scratch can be
 * left out exactly.
 */
#define LOG_AREA "dump"
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/sysmacros.h>

#include "dump/collect-internal.h"
#include "dump/collect_sockets.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define DELETED_SUFFIX " (deleted)"

int collect_query(struct collect *c, size_t thread, long nr, const uint64_t args[6],
		  int64_t *ret, const char *fmt, ...)
{
	const struct ckpt_thread_state *t = ckpt_inject_thread(c->inj, thread);
	int64_t res = 0;
	int r = ckpt_inject_syscall(c->inj, thread, nr, args, &res);

	if (r == 0 && res < 0 && res > -4096)
		r = (int)res;
	if (r < 0) {
		char what[128];
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		pr_err("cannot %s of pid %d (thread %d): %s", what, c->pid, t ? t->tid : -1, errstr(r));
		return r;
	}
	*ret = res;
	return 0;
}

int collect_read_scratch(struct collect *c, void *buf, size_t len)
{
	int r = ckpt_inject_read(c->inj, c->scratch, buf, len);

	if (r < 0)
		pr_err("cannot read the scratch memory of pid %d: %s", c->pid, errstr(r));
	return r;
}

int collect_peek_siginfo(struct collect *c, pid_t tid, bool shared,
			 struct ckpt_state_siginfo **ret, size_t *ret_nr)
{
	_cleanup_free_ struct ckpt_state_siginfo *v = NULL;
	size_t nr = 0, cap = 0;

	for (;;) {
		siginfo_t si[32];
		struct __ptrace_peeksiginfo_args a = {
			.off = nr,
			.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
			.nr = (int32_t)ARRAY_SIZE(si),
		};
		long n = ptrace(PTRACE_PEEKSIGINFO, tid, &a, si);

		if (n < 0) {
			int r = neg_errno();

			pr_err("cannot read the %s pending signals of thread %d of pid %d: %s",
			       shared ? "shared" : "private", tid, c->pid, errstr(r));
			return r;
		}
		if (n == 0)
			break;
		if (GROW(v, cap, nr + (size_t)n) < 0)
			return -ENOMEM;
		for (long i = 0; i < n; i++) {
			struct ckpt_state_siginfo *d = &v[nr + (size_t)i];

			_Static_assert(sizeof(siginfo_t) == CKPT_STATE_SIGINFO_SIZE, "siginfo_t size");
			memcpy(d->raw, &si[i], sizeof(d->raw));
			d->signo = si[i].si_signo;
			d->code = si[i].si_code;
		}
		nr += (size_t)n;
	}
	*ret = TAKE_PTR(v);
	*ret_nr = nr;
	return 0;
}

void collect_identity(const struct stat *st, struct ckpt_state_identity *ret)
{
	ret->dev_major = major(st->st_dev);
	ret->dev_minor = minor(st->st_dev);
	ret->ino = st->st_ino;
	ret->mode = st->st_mode;
	ret->size = (uint64_t)st->st_size;
	ret->mtime_sec = st->st_mtim.tv_sec;
	ret->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		ret->rdev_major = major(st->st_rdev);
		ret->rdev_minor = minor(st->st_rdev);
	} else {
		ret->rdev_major = ret->rdev_minor = 0;
	}
}

int collect_path(const char *link, char **ret, bool *ret_deleted)
{
	size_t len = strlen(link), sl = strlen(DELETED_SUFFIX);
	bool deleted = link[0] == '/' && len > sl && !strcmp(link + len - sl, DELETED_SUFFIX);

	*ret = strndup(link, deleted ? len - sl : len);
	if (!*ret)
		return -ENOMEM;
	*ret_deleted = deleted;
	return 0;
}

static int collect_open(struct collect *c)
{
	const struct ckpt_thread_state *t0 = ckpt_inject_thread(c->inj, 0);
	int r;

	r = ckpt_proc_open(NULL, c->pid, &c->proc);
	if (r < 0) {
		pr_err("cannot open /proc/%d: %s", c->pid, errstr(r));
		return r;
	}
	/* /proc/TID of a live thread: the leader's map_files are empty once it is a zombie */
	r = ckpt_proc_open(NULL, t0->tid, &c->mm_proc);
	if (r < 0) {
		pr_err("cannot open /proc/%d (thread of pid %d): %s", t0->tid, c->pid, errstr(r));
		return r;
	}
	r = ckpt_inject_scratch(c->inj, page_size(), &c->scratch);
	if (r < 0)
		pr_err("cannot map scratch memory in pid %d: %s", c->pid, errstr(r));
	return r;
}

int ckpt_dump_collect(struct ckpt_inject *inj, const struct ckpt_dump_collect_opts *opts,
		      struct ckpt_state **ret)
{
	static int (*const stages[])(struct collect *) = {
		collect_threads, collect_process, collect_files, collect_mm, collect_file_contents,
	};
	_cleanup_state_ struct ckpt_state *s = NULL;
	struct collect c = {
		.inj = inj,
		.pid = ckpt_inject_pid(inj),
		.task = ckpt_inject_task_proc(inj),
	};
	int r;

	if (opts)
		c.opts = *opts;
	if (!ckpt_inject_nr_threads(inj) || !c.task)
		return -ESRCH;
	r = ckpt_state_new(&s);
	if (r < 0)
		return r;
	c.s = s;
	r = collect_open(&c);
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(stages); i++)
		r = stages[i](&c);
	if (r < 0 && c.tcp_locked)
		collect_tcp_undo(inj, s, c.pid); /* collect_tcp.c: the process runs on as it was */
	ckpt_proc_close(c.proc);
	ckpt_proc_close(c.mm_proc);
	if (r == -ENOMEM)
		pr_err("out of memory while describing pid %d", c.pid);
	if (r < 0)
		return r;
	pr_debug("pid %d: %zu threads, %zu mappings, %zu fds", c.pid, s->nr_threads, s->mm.nr_vmas,
		 s->nr_fds);
	*ret = TAKE_PTR(s);
	return 0;
}
