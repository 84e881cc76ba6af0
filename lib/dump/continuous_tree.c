/* SPDX-License-Identifier: MIT */
/*
 * Continuous checkpoints of a process tree (ckpt track -D on a process
 * that has children): one tree dump per interval (ckpt_dump_run with
 * --leave-running, the previous checkpoint as its parent), so every
 * checkpoint holds the tree of its moment. Each dump finds the tree again:
 * a process born since is saved in full, one that ended is not in it; the
 * others are deltas of their own checkpoint in the parent (each process
 * keeps its own tracking). Simpler than the single-process path
 * (continuous.c): the pages are copied and written in the interval's
 * thread, without the double buffer and the pre-copied first checkpoint.
 * Retention (--keep) folds a tree's checkpoints (every process's, in one
 * swap: ckpt_image_fold); without it, a chain that reaches
 * CKPT_CONTINUOUS_CHAIN_MAX starts again with a full checkpoint.
 */
#define LOG_AREA "dump"
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ckpt/continuous.h>
#include <ckpt/dump.h>
#include <ckpt/image.h>
#include <ckpt/proc.h>

#include "dump/dump-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

bool dump_has_children(pid_t pid)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_free_ pid_t *kids = NULL;
	size_t nr = 0;

	if (ckpt_proc_open(NULL, pid, &p) < 0 || ckpt_proc_list_children(p, &kids, &nr) < 0)
		return false;
	for (size_t i = 0; i < nr; i++) {
		_cleanup_proc_ struct ckpt_proc *k = NULL;
		struct ckpt_proc_stat st;

		if (ckpt_proc_open(NULL, kids[i], &k) == 0 && ckpt_proc_read_stat(k, &st) == 0 &&
		    !dump_is_zombie(kids[i], &st))
			return true;
	}
	return false;
}

struct ctree {
	const struct ckpt_continuous_opts *o;
	struct ckpt_continuous_result *res;
	struct ckpt_series *series;
	int pidfd;
	uint64_t t_start, t_last;
	char prev[32];
	size_t chain;
};

/*
 * Wait for the next tick: 1 when it is time, 0 when the run ends (@ret_end
 * says why).
 */
static int wait_tick(struct ctree *c, uint64_t due, enum ckpt_continuous_end *ret_end)
{
	for (;;) {
		struct pollfd pfd[2] = { { c->pidfd, POLLIN, 0 }, { c->o->stop_fd, POLLIN, 0 } };
		uint64_t now = now_ns();
		int ms = due > now ? (int)MIN((due - now) / 1000000 + 1, (uint64_t)INT_MAX) : 0;
		int n = poll(pfd, c->o->stop_fd >= 0 ? 2 : 1, ms);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return neg_errno();
		if (pfd[0].revents) {
			*ret_end = CKPT_CONTINUOUS_EXITED;
			return 0;
		}
		if (c->o->stop_fd >= 0 && pfd[1].revents) {
			*ret_end = CKPT_CONTINUOUS_STOPPED;
			return 0;
		}
		if (now_ns() >= due)
			return 1;
	}
}

static void fill_stats(struct ctree *c, const char *name, uint64_t seq, uint64_t t0, const struct ckpt_dump_stats *ds,
		       struct ckpt_continuous_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->seq = seq;
	snprintf(st->name, sizeof(st->name), "%s", name);
	st->delta = ds->delta;
	st->generation = ds->generation;
	st->time_s = (double)(t0 - c->t_start) / 1e9;
	st->interval_ns = c->t_last ? t0 - c->t_last : 0;
	st->freeze_ns = ds->freeze_ns;
	st->prefreeze_ns = ds->prefreeze_ns;
	st->precopy_ns = ds->precopy_ns;
	st->pages_written = ds->pages_data + ds->pages_zero;
	st->pages_data = ds->pages_data;
	st->pages_zero = ds->pages_zero;
	st->pages_hole = ds->pages_hole;
	st->bytes_raw = ds->bytes_raw;
	st->bytes_compressed = ds->bytes_written;
	st->bytes_disk = ds->bytes_written;
	st->write_ns = ds->write_ns;
	st->chain_length = c->chain;
	st->points = ckpt_series_nr_points(c->series);
}

/* One checkpoint of the tree: 0, or -errno (-ESRCH: the root is gone). */
static int one(struct ctree *c)
{
	char name[32], dir[PATH_MAX], parent[PATH_MAX];
	uint64_t seq = ckpt_series_next_seq(c->series), t0 = now_ns();
	struct ckpt_continuous_stats st;
	struct ckpt_dump_stats ds;
	struct ckpt_dump_opts d = {
		.pid = c->o->pid,
		.after = CKPT_DUMP_LEAVE_RUNNING,
		.level = c->o->level,
		.auto_full = true,
		.allow_unrestorable = c->o->allow_unrestorable,
		.rundir = c->o->rundir,
		.timeout_ms = c->o->timeout_ms,
	};
	int r;

	ckpt_series_name(seq, name);
	snprintf(dir, sizeof(dir), "%s/%s", ckpt_series_path(c->series), name);
	d.dir = dir;
	if (c->prev[0] && c->chain < CKPT_CONTINUOUS_CHAIN_MAX) {
		snprintf(parent, sizeof(parent), "%s/%s", ckpt_series_path(c->series), c->prev);
		d.parent = parent;
	}
	r = ckpt_dump_run(&d, &ds);
	if (r < 0) {
		if (ds.refused)
			c->res->end = CKPT_CONTINUOUS_UNRESTORABLE;
		ckpt_dump_stats_done(&ds);
		return r;
	}
	if ((r = ckpt_series_add(c->series, name)) < 0 || (r = ckpt_series_set_latest(c->series, name)) < 0) {
		ckpt_dump_stats_done(&ds);
		return r;
	}
	c->chain = ds.delta ? c->chain + 1 : 1;
	fill_stats(c, name, seq, t0, &ds, &st);
	if (c->o->keep) {
		/* Retention: the kept deltas whose parents go are folded (every process of each). */
		struct ckpt_image_fold_opts fo = { .level = c->o->level };
		struct ckpt_series_retain_stats rs;
		uint64_t t1 = now_ns();

		if (ckpt_series_retain(c->series, c->o->keep, &fo, &rs) < 0)
			pr_warn("the retention after '%s' failed: the older checkpoints stay, the next one "
				"tries again", name);
		else {
			st.folded = rs.folded;
			st.removed = rs.removed;
		}
		st.retain_ns = now_ns() - t1;
		st.points = ckpt_series_nr_points(c->series);
		ssize_t li = ckpt_series_latest(c->series);

		if (li >= 0)
			c->chain = st.chain_length = ckpt_series_point(c->series, (size_t)li)->depth + 1;
	}
	c->t_last = t0;
	snprintf(c->prev, sizeof(c->prev), "%s", name);
	snprintf(c->res->last, sizeof(c->res->last), "%s", name);
	c->res->checkpoints++;
	ckpt_dump_stats_done(&ds);
	if (c->o->on_checkpoint)
		c->o->on_checkpoint(&st, c->o->userdata);
	return 0;
}

int dump_continuous_tree(const struct ckpt_continuous_opts *o, struct ckpt_continuous_result *ret)
{
	struct ctree c = { .o = o, .res = ret, .pidfd = -1 };
	uint64_t interval = o->interval_ns ? o->interval_ns : 1000000000ULL, due;
	enum ckpt_continuous_end end = CKPT_CONTINUOUS_FAILED;
	ssize_t latest;
	int r;

	memset(ret, 0, sizeof(*ret));
	c.pidfd = (int)syscall(SYS_pidfd_open, o->pid, 0);
	if (c.pidfd < 0) {
		r = neg_errno();
		pr_err("pid %d: %s", o->pid, r == -ESRCH ? "no such process" : strerror(-r));
		return r;
	}
	r = ckpt_series_open(o->dir, CKPT_SERIES_CREATE, &c.series);
	if (r < 0)
		goto out;
	latest = ckpt_series_latest(c.series);
	if (latest >= 0) {
		/* Continue the chain: the dump falls back to full if it cannot (--auto-full). */
		snprintf(c.prev, sizeof(c.prev), "%s", ckpt_series_point(c.series, (size_t)latest)->name);
		c.chain = ckpt_series_point(c.series, (size_t)latest)->depth + 1;
	}
	if (o->on_event) {
		char msg[160];

		snprintf(msg, sizeof(msg), "pid %d has children: each checkpoint is a dump of its whole process tree",
			 o->pid);
		o->on_event("tree", msg, o->userdata);
	}
	c.t_start = due = now_ns();
	for (;;) {
		r = wait_tick(&c, due, &end);
		if (r <= 0)
			break;
		r = one(&c);
		if (r == -ESRCH) {
			end = CKPT_CONTINUOUS_EXITED;
			r = 0;
			break;
		}
		if (r < 0) {
			end = ret->end == CKPT_CONTINUOUS_UNRESTORABLE ? CKPT_CONTINUOUS_UNRESTORABLE
								       : CKPT_CONTINUOUS_FAILED;
			break;
		}
		if (o->count && ret->checkpoints >= o->count) {
			end = CKPT_CONTINUOUS_COUNT;
			break;
		}
		if (o->duration_ns && now_ns() - c.t_start >= o->duration_ns) {
			end = CKPT_CONTINUOUS_DURATION;
			break;
		}
		due += interval;
		if (due < now_ns())
			due = now_ns(); /* a slow checkpoint stretches the interval */
	}
out:
	ckpt_series_close(c.series);
	if (c.pidfd >= 0)
		close(c.pidfd);
	ret->end = end;
	return r;
}
