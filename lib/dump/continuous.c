/* SPDX-License-Identifier: MIT */
/*
 * Continuous checkpoints (ckpt/continuous.h). Two threads:
 *
 *   main     poll: timer, process exit (pidfd), exec (proc connector), stop
 *            fd, writer done (eventfd). At each tick, with a free page
 *            buffer: freeze -> collect -> judge -> harvest -> copy -> release,
 *            and the captured checkpoint goes to the writer (or waits for it:
 *            one being written, one waiting, no more).
 *   writer   compress and commit the checkpoint, switch "latest", retention.
 *
 * Memory: the pages in hand live in four buffers (a copy made while the
 * process runs and one made frozen, for each of the two checkpoints in
 * hand), each at most c->share bytes (--max-buffer less the compression
 * frames, in four). A copy that fills its buffer hands it to the writer of
 * its checkpoint and waits for the compression; it never grows.
 *
 * Stages of one capture, as in the dump pipeline: collect (state by
 * queries), judge (what restore cannot recreate: end the run, with the list,
 * before anything is harvested in this freeze), harvest (the pages written
 * since the previous freeze, and re-arm), copy (into ckpt's buffer), release.
 *
 * The tracking generation in track.json of each checkpoint is the one after
 * its harvest: the newest checkpoint and the tracking agree as long as no
 * other command harvests, which the tracking lock (held from start to end)
 * prevents; ckpt dump --parent DIR/latest continues the chain afterwards.
 */
#define LOG_AREA "dump"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <ckpt/continuous.h>
#include <ckpt/dump.h>
#include <ckpt/image.h>
#include <ckpt/inject.h>
#include <ckpt/nl.h>
#include <ckpt/proc.h>
#include <ckpt/state.h>
#include <ckpt/track.h>

#include "dump/dump-internal.h"
#include "dump/pages.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#define PRECOPY_PASSES 4           /* the full copy, then copies of what it missed */
#define PRECOPY_SMALL (1UL << 20)  /* written during a pass: little enough for the freeze */
#define RESERVE_MIN (16UL << 20)
#define SHARE_MIN (4UL << 20)      /* the smallest buffer (--max-buffer is at least 32 MiB) */
#define NICE_DEFAULT 19
#define NR_BUFS 2
#define PREPHASE_MIN_PAGES 256     /* an interval that wrote 1 MiB: copy before the freeze */

/*
 * The pages of one checkpoint: those copied while the process ran (after a
 * harvest-only freeze), and those copied frozen, laid over them. Each
 * buffer holds at most c->share bytes: what does not fit goes to the
 * checkpoint's writer as it is copied (back-pressure: the copy waits for
 * the compression), never into more memory.
 */
struct slot {
	struct page_copy pre, frz;
	bool busy;
};

struct job {
	struct ckpt_continuous_stats st;
	char parent[40];                /* "../NAME" for a delta, "" */
	struct ckpt_state *state;
	uint64_t generation;
	int parked_fd;
	int slot;                       /* its pages */
	struct ckpt_image_writer *w;    /* the pre-copied full checkpoint, or NULL */
	struct ckpt_range_set keep;     /* pre-copied: the saved mappings at the freeze */
	/*
	 * The pages the freeze copied (its dirty set): the copies made before
	 * it (slot.pre) are older there and are not written, so that a page is
	 * in a checkpoint once, as in a dump.
	 */
	struct ckpt_range_set hide;
	bool pre_written;               /* slot.pre (less hide) is in w already: the freeze overflowed */
	int err;                        /* of the writer */
};

struct cont {
	const struct ckpt_continuous_opts *o;
	struct ckpt_continuous_result *res;
	struct ckpt_image_identity id;
	char *exe;
	struct ckpt_tracker *t;
	struct ckpt_proc_events *ev;
	int pidfd, tfd, efd;
	uint64_t t_start, t_last_freeze;
	uint64_t next_seq;
	char prev[32];                  /* the parent of the next checkpoint; "" */
	struct slot slots[NR_BUFS];
	struct ckpt_proc *proc;         /* of the process: its CPU */
	struct dump_cpu cpu;            /* this thread's own affinity */
	bool armed_here;                /* this run armed the tracking (it was not armed) */
	struct ckpt_range_set prev_saved; /* where the chain so far may hold pages */
	uint64_t last_written;          /* pages written in the last interval */
	unsigned int threads;           /* compression threads */
	int own_nice;                   /* of this thread, for the freezes */
	bool can_nice;                  /* and it can be taken back after background work */
	bool created_dir;               /* removed again if nothing was written */
	bool refused;                   /* the judge refused: the run ends (-EPERM) */
	pid_t child;                    /* a child found in a freeze: the run goes on as a tree's */
	uint64_t reserve;               /* bytes to have ready before a freeze */
	uint64_t share;                 /* the most a page buffer holds (--max-buffer) */
	uint64_t captured;
	/* the first full checkpoint, copied while the process runs */
	struct ckpt_image_writer *pre_w;
	struct ckpt_range_set pre_failed;  /* the freeze copies these */
	struct ckpt_range_set pre_hide;    /* copied again after the first pass: newer than slot 0's */
	uint64_t pre_pages;                /* copied by the passes after the first */
	uint64_t pre_ns;
	char pre_name[32];
	/* main: a captured checkpoint the writer has no room for yet */
	struct job *pending;
	/* writer thread; under lock */
	struct ckpt_series *series;
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *todo;               /* for the writer */
	bool busy;                      /* it writes one */
	struct job *finished[NR_BUFS + 1];
	size_t nr_finished;
	bool quit;
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	ckpt_state_free(j->state);
	ckpt_image_writer_free(j->w);
	ckpt_range_set_done(&j->keep);
	ckpt_range_set_done(&j->hide);
	free(j);
}

static void job_freep(struct job **j)
{
	job_free(*j);
}

/*
 * Compression threads: the process keeps a CPU busy, ckpt gets the others.
 * More threads than free CPUs only take CPU time from the process.
 */
static unsigned int threads_for(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n >= 3 ? 2 : 1;
}

static uint64_t nice_of(const struct ckpt_continuous_opts *o)
{
	return o->nice ? (uint64_t)o->nice : NICE_DEFAULT;
}

static void event(struct cont *c, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void event(struct cont *c, const char *name, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->o->on_event)
		c->o->on_event(name, msg, c->o->userdata);
	else
		pr_info("%s", msg);
}

/* ---- the writer thread ---- */

static int writer_open(struct cont *c, struct job *j, const char *path,
		       struct ckpt_image_writer **ret)
{
	struct ckpt_image_writer_opts wo = {
		.identity = c->id,
		.parent = j->parent[0] ? j->parent : NULL,
		.level = c->o->level,
		.nice = (int)nice_of(c->o),
		.threads = c->threads,
	};

	if (j->w) {
		*ret = TAKE_PTR(j->w);
		return 0;
	}
	return ckpt_image_writer_new(path, &wo, ret);
}

/* Find the point @name after a change of the series. */
static const struct ckpt_series_point *find_point(struct ckpt_series *s, const char *name)
{
	for (size_t i = ckpt_series_nr_points(s); i-- > 0;)
		if (!strcmp(ckpt_series_point(s, i)->name, name))
			return ckpt_series_point(s, i);
	return NULL;
}

/*
 * Add the pages of @pc to @w, but not those in @hide (normalized): a later
 * layer of the same checkpoint has newer copies of them.
 */
static int add_pages_except(struct ckpt_image_writer *w, const struct page_copy *pc,
			    const struct ckpt_range_set *hide)
{
	struct ckpt_range_set left;
	int r = 0;

	if (!hide->nr)
		return dump_add_pages(w, pc);
	ckpt_range_set_init(&left);
	for (size_t i = 0; i < pc->nr_runs && r == 0; i++) {
		const struct page_run *run = &pc->runs[i];

		left.nr = 0;
		r = ckpt_range_set_add_uncovered(&left, hide, run->addr,
						 run->addr + run->nr * CKPT_IMAGE_PAGE_SIZE);
		for (size_t k = 0; k < left.nr && r == 0; k++) {
			uint64_t nr = (left.v[k].end - left.v[k].start) / CKPT_IMAGE_PAGE_SIZE;

			r = dump_add_run(w, pc, run, left.v[k].start, nr);
		}
	}
	ckpt_range_set_done(&left);
	return r;
}

static int write_job(struct cont *c, struct job *j)
{
	_cleanup_image_writer_ struct ckpt_image_writer *w = NULL;
	struct ckpt_image_writer_stats ws;
	const struct ckpt_series_point *pt;
	char path[PATH_MAX];
	uint64_t t0 = now_ns();
	int r;

	snprintf(path, sizeof(path), "%s/%s", c->o->dir, j->st.name);
	r = writer_open(c, j, path, &w);
	if (r < 0)
		return r;
	if ((r = dump_put_state(w, j->state)) < 0 ||
	    (r = dump_put_track_doc(w, j->generation, j->parked_fd)) < 0)
		return r;
	if (!j->pre_written &&
	    ((r = add_pages_except(w, &c->slots[j->slot].pre, &j->hide)) < 0 ||
	     (r = ckpt_image_writer_new_layer(w)) < 0))
		return r;
	if ((r = dump_add_pages(w, &c->slots[j->slot].frz)) < 0)
		return r;
	if (j->keep.nr && (r = ckpt_image_writer_restrict(w, j->keep.v, j->keep.nr)) < 0)
		return r;
	r = ckpt_image_writer_commit(w);
	if (r < 0)
		return r;
	ckpt_image_writer_get_stats(w, &ws);
	j->st.pages_data = ws.data_pages;
	j->st.pages_zero = ws.zero_pages;
	j->st.pages_hole = c->slots[j->slot].pre.pages_hole + c->slots[j->slot].frz.pages_hole;
	j->st.bytes_compressed = ws.pages_bytes;
	j->st.write_ns = now_ns() - t0;

	/* It is complete: "latest" names it, then the older ones may go. */
	r = ckpt_series_add(c->series, j->st.name);
	if (r == 0)
		r = ckpt_series_set_latest(c->series, j->st.name);
	if (r < 0)
		return r;
	t0 = now_ns();
	pt = find_point(c->series, j->st.name);
	if (c->o->keep) {
		struct ckpt_image_fold_opts fo = { .level = c->o->level, .nice = (int)nice_of(c->o),
						   .threads = c->threads };
		struct ckpt_series_retain_stats rs;

		r = ckpt_series_retain(c->series, c->o->keep, &fo, &rs);
		if (r < 0)
			pr_warn("retention in '%s' failed: the points stay, and the next checkpoint "
				"tries again", c->o->dir);
		j->st.folded = rs.folded;
		j->st.removed = rs.removed;
	} else if (pt && pt->depth + 1 > CKPT_CONTINUOUS_CHAIN_MAX) {
		/* Keep chains short enough to open: this one becomes full. */
		struct ckpt_image_fold_opts fo = { .level = c->o->level, .nice = (int)nice_of(c->o),
						   .threads = c->threads };

		r = ckpt_image_fold(path, &fo, NULL);
		if (r == 0)
			r = ckpt_series_rescan(c->series);
		if (r == 0)
			j->st.folded = 1;
		else
			pr_warn("cannot fold '%s': its chain grows on", path);
	}
	j->st.retain_ns = now_ns() - t0;
	pt = find_point(c->series, j->st.name);
	j->st.chain_length = pt ? pt->depth + 1 : 0;
	j->st.bytes_disk = pt ? pt->bytes : 0;
	j->st.points = ckpt_series_nr_points(c->series);
	return 0;
}

static void *writer_main(void *arg)
{
	struct cont *c = arg;

	/* Background work: the target keeps its CPU. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), (int)nice_of(c->o));

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct job *j;
		uint64_t one = 1;

		while (!c->todo && !c->quit)
			pthread_cond_wait(&c->cond, &c->lock);
		if (!c->todo)
			break;
		j = c->todo;
		c->todo = NULL;
		c->busy = true;
		pthread_mutex_unlock(&c->lock);
		j->err = write_job(c, j);
		pthread_mutex_lock(&c->lock);
		c->busy = false;
		c->finished[c->nr_finished++] = j;
		pthread_cond_broadcast(&c->cond);
		if (write(c->efd, &one, sizeof(one)) < 0)
			pr_debug("eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static int writer_start(struct cont *c)
{
	sigset_t all, old;
	int r;

	/* Worker threads take no signals: they stay with the thread that defers them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&c->thr, NULL, writer_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		pr_err("cannot start the writer thread: %s", strerror(-r));
		return r;
	}
	c->thr_started = true;
	return 0;
}

static void writer_stop(struct cont *c)
{
	if (!c->thr_started)
		return;
	pthread_mutex_lock(&c->lock);
	c->quit = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thr, NULL);
	c->thr_started = false;
}

/* Give @j to the writer if it has room; else keep it pending. */
static void hand_over(struct cont *c, struct job *j)
{
	pthread_mutex_lock(&c->lock);
	if (!c->todo && !c->busy) {
		c->todo = j;
		pthread_cond_broadcast(&c->cond);
		j = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	c->pending = j;
}

/*
 * Collect what the writer finished: report it, free its buffer, hand over
 * the pending one. Returns the first write error.
 */
static int collect_finished(struct cont *c)
{
	struct job *done[NR_BUFS + 1];
	size_t n;
	uint64_t v;
	int err = 0;

	if (read(c->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&c->lock);
	n = c->nr_finished;
	memcpy(done, c->finished, n * sizeof(*done));
	c->nr_finished = 0;
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		struct job *j = done[i];

		c->slots[j->slot].busy = false;
		if (j->err < 0) {
			if (!err)
				err = j->err;
		} else {
			c->res->checkpoints++;
			snprintf(c->res->last, sizeof(c->res->last), "%s", j->st.name);
			if (c->o->on_checkpoint)
				c->o->on_checkpoint(&j->st, c->o->userdata);
		}
		job_free(j);
	}
	if (err < 0) {
		/* A failed write: what waits was taken on top of it, drop it. */
		job_free(c->pending);
		c->pending = NULL;
	} else if (c->pending) {
		struct job *j = c->pending;

		c->pending = NULL;
		hand_over(c, j);
	}
	return err;
}

/* Wait until the writer has written everything given to it (and the pending one). */
static int drain(struct cont *c)
{
	int err = 0;

	for (;;) {
		bool idle;

		pthread_mutex_lock(&c->lock);
		while (c->busy || c->todo) {
			if (c->nr_finished)
				break;
			pthread_cond_wait(&c->cond, &c->lock);
		}
		idle = !c->busy && !c->todo;
		pthread_mutex_unlock(&c->lock);
		{
			int e = collect_finished(c);

			if (e < 0 && !err)
				err = e;
		}
		if (idle && !c->pending) {
			pthread_mutex_lock(&c->lock);
			idle = !c->busy && !c->todo && !c->nr_finished;
			pthread_mutex_unlock(&c->lock);
			if (idle)
				return err;
		}
	}
}

/* ---- capture (main thread) ---- */

static int free_slot(const struct cont *c)
{
	for (int i = 0; i < NR_BUFS; i++)
		if (!c->slots[i].busy)
			return i;
	return -1;
}

/*
 * What this thread does while the process runs (copies, smaps) is background
 * work, at the niceness of the writer; the freezes are not. Only when the
 * niceness can be taken back (CAP_SYS_NICE).
 */
static void background(struct cont *c, bool on)
{
	if (!c->can_nice)
		return;
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), on ? (int)nice_of(c->o) : c->own_nice) < 0)
		pr_debug("cannot change the niceness of ckpt: %s", strerror(errno));
}

static void page_copy_reset(struct page_copy *pc)
{
	pc->nr_runs = 0;
	pc->buf_len = 0;
	pc->pages_data = pc->pages_hole = pc->pages_scanned = 0;
	pc->copy_ns = 0;
}

/*
 * What restore cannot recreate (the judge restore applies too): said once,
 * with the list, and the run ends (-EPERM, c->refused) before anything is
 * harvested in this freeze; unless allow_unrestorable.
 */
static int judge(struct cont *c, const struct ckpt_state *st)
{
	_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *issues = NULL;
	int r;

	r = ckpt_state_unrestorable(st, &issues);
	if (r < 0)
		return r;
	if (!issues->nr || c->o->allow_unrestorable)
		return 0;
	pr_err("pid %d holds %zu object%s that restore cannot recreate (--allow-unrestorable "
	       "checkpoints it anyway):", c->o->pid, issues->nr, issues->nr > 1 ? "s" : "");
	for (size_t i = 0; i < issues->nr; i++)
		pr_err("  %s: %s", issues->v[i].what, issues->v[i].reason);
	c->refused = true;
	return -EPERM;
}

/*
 * A child born since the run began (not a zombie): this checkpoint would
 * hold the process without it. The freeze ends without one (nothing was
 * harvested: the tracking still has every page written since the last),
 * and the run goes on with a dump of the tree per interval
 * (continuous_tree.c). -ECHILD then.
 */
static int children_now(struct cont *c)
{
	_cleanup_free_ pid_t *kids = NULL;
	size_t nr = 0;

	if (!dump_has_children(c->o->pid))
		return 0;
	if (c->proc && ckpt_proc_list_children(c->proc, &kids, &nr) == 0 && nr)
		c->child = kids[0];
	else
		c->child = -1;
	return -ECHILD;
}

/* A freeze for the harvest alone: the pages written since the last one, in @ret. */
static int harvest_only(struct cont *c, struct ckpt_range_set *ret, uint64_t *ret_ns)
{
	return dump_harvest_only(c->o->pid, 0, c->o->timeout_ms, c->t, &c->cpu, ret, ret_ns);
}

/* Add @b to @a. */
static int ranges_add(struct ckpt_range_set *a, const struct ckpt_range_set *b)
{
	for (size_t i = 0; i < b->nr; i++) {
		int r = ckpt_range_set_add(a, b->v[i].start, b->v[i].end);

		if (r < 0)
			return r;
	}
	ckpt_range_set_normalize(a);
	return 0;
}

/* The writer of @j, opened now: the one before it complete first (its parent). */
static int job_writer(struct cont *c, struct job *j)
{
	char path[PATH_MAX];
	int r;

	if (j->w)
		return 0;
	r = drain(c);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/%s", c->o->dir, j->st.name);
	return writer_open(c, j, path, &j->w);
}

/*
 * A buffer filled up during a copy made while the process runs: hand the
 * chunk to the writer of the checkpoint now (its pages are in an earlier
 * layer than what the freeze copies). The copy waits for the compression.
 */
struct chunk_sink {
	struct cont *c;
	struct job *j;
	struct slot *sl;
	const struct ckpt_range_set *hide; /* the freeze: its dirty set */
	bool stoppable;                    /* the first copy: a stop or an exit ends it */
	const struct ckpt_proc *proc;      /* running: the process */
	struct ckpt_range_set *again;      /* running: what the freeze must copy again */
};

static int stop_asked(struct cont *c)
{
	struct pollfd pfd[2] = { { c->o->stop_fd, POLLIN, 0 }, { c->pidfd, POLLIN, 0 } };

	if (poll(pfd, 2, 0) > 0) {
		if (pfd[1].revents & POLLIN)
			return -ESRCH;
		if (pfd[0].revents & POLLIN)
			return -ECANCELED;
	}
	return 0;
}

static int running_sink(struct page_copy *pc, void *userdata)
{
	struct chunk_sink *s = userdata;
	int r = s->stoppable ? stop_asked(s->c) : 0;

	/* What was written since the harvest is copied in the freeze: not twice on disk. */
	if (r == 0)
		r = page_copy_drop_written(pc, s->proc, s->again);
	if (r == 0)
		r = job_writer(s->c, s->j);
	return r < 0 ? r : dump_add_pages(s->j->w, pc);
}

/*
 * The freeze copies more than a buffer holds: the pages copied before it
 * (less what it copies again) go to the writer first, then its own chunks,
 * in a layer over them. The process stays frozen while they are compressed.
 */
static int frozen_sink(struct page_copy *pc, void *userdata)
{
	struct chunk_sink *s = userdata;
	int r;

	if (!s->j->pre_written) {
		r = job_writer(s->c, s->j);
		if (r == 0)
			r = add_pages_except(s->j->w, &s->sl->pre, s->hide);
		if (r == 0)
			r = ckpt_image_writer_new_layer(s->j->w);
		if (r < 0)
			return r;
		s->j->pre_written = true;
	}
	return dump_add_pages(s->j->w, pc);
}

/*
 * Before the freeze of a delta, when the last interval wrote much: harvest
 * in a short freeze, then copy those pages while the process runs. What it
 * writes meanwhile is harvested again in the freeze and copied on top, so
 * the freeze copies little. The harvested ranges go to @ret.
 */
static int prephase(struct cont *c, struct slot *sl, struct job *j, struct ckpt_range_set *ret,
		    struct ckpt_range_set *ret_failed)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	struct chunk_sink cs = { .c = c, .j = j, .sl = sl, .again = ret_failed };
	struct page_stream stream = {
		.failed = ret_failed,
		.chunk = c->share,
		.keep_last = true,
		.sink = running_sink,
		.userdata = &cs,
	};
	uint64_t t0;
	int r;

	r = harvest_only(c, ret, &j->st.prefreeze_ns);
	if (r < 0)
		return r;
	t0 = now_ns();
	r = ckpt_proc_open_live(NULL, c->o->pid, &p);
	if (r == 0)
		r = ckpt_proc_read_maps(p, 0, &maps);
	if (r == 0) {
		stream.proc = cs.proc = p;
		background(c, true);
		r = page_copy_stream(&sl->pre, &stream, maps, ret);
		background(c, false);
	}
	j->st.precopy_ns = now_ns() - t0;
	return r;
}

/*
 * One checkpoint: (for a delta that follows a busy interval) the pre-phase,
 * then the freeze: state, written pages, copy. 0 and *@ret the job, or
 * -errno (-ESRCH: the process is gone, -ESTALE: tracking lost, -EPERM with
 * c->refused: it holds what restore cannot recreate).
 */
static int capture(struct cont *c, int slot, struct job **ret)
{
	_cleanup_(job_freep) struct job *j = NULL;
	struct ckpt_inject *inj = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL, *hint = NULL;
	struct ckpt_range_set dirty, pre, failed, saved;
	struct ckpt_track_stats ts = { 0 };
	struct slot *sl = &c->slots[slot];
	int parked = ckpt_track_parked_fd(c->t), r, e;
	struct ckpt_dump_collect_opts co = { .ignore_fds = &parked, .nr_ignore_fds = 1 };
	struct chunk_sink cs = { .c = c, .sl = sl };
	struct page_stream frozen = {
		.chunk = c->share,
		.keep_last = true,
		.sink = frozen_sink,
		.userdata = &cs,
	};
	uint64_t t0, t1 = 0, t2 = 0, t3 = 0, t4 = 0;
	bool first = c->pre_w != NULL;

	*ret = NULL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	cs.j = j;
	cs.hide = &j->hide;
	ckpt_range_set_init(&j->keep);
	ckpt_range_set_init(&j->hide);
	ckpt_range_set_init(&dirty);
	ckpt_range_set_init(&pre);
	ckpt_range_set_init(&failed);
	ckpt_range_set_init(&saved);
	j->st.seq = c->next_seq;
	ckpt_series_name(c->next_seq, j->st.name);
	j->st.delta = c->prev[0] != '\0';
	if (j->st.delta)
		snprintf(j->parent, sizeof(j->parent), "../%s", c->prev);
	if (first)
		j->w = TAKE_PTR(c->pre_w); /* its pre-copy: on disk, and the rest in slot.pre */
	else
		page_copy_reset(&sl->pre);
	page_copy_reset(&sl->frz);
	r = page_copy_reserve(&sl->frz, MIN(c->reserve, c->share));
	if (r < 0) {
		pr_err("cannot reserve %" PRIu64 " MiB for the pages of pid %d: %s", c->reserve >> 20,
		       c->o->pid, strerror(-r));
		return r;
	}
	if (!first && c->prev[0] && c->last_written >= PREPHASE_MIN_PAGES) {
		r = prephase(c, sl, j, &pre, &failed);
		if (r < 0)
			goto out;
	}

	/* smaps walks the page tables: read the flags now, check the mappings in the freeze. */
	background(c, true);
	if (c->proc && ckpt_proc_read_maps(c->proc, CKPT_MAPS_VMFLAGS, &hint) == 0)
		co.vmflags_hint = hint;
	background(c, false);
	t0 = now_ns();
	r = ckpt_inject_seize_timeout(c->o->pid, 0, c->o->timeout_ms, &inj);
	if (r < 0)
		goto out;
	dump_cpu_near(&c->cpu, c->proc);
	ckpt_inject_set_call_cpu(inj, sched_getcpu());
	t1 = now_ns();
	r = ckpt_dump_collect(inj, &co, &j->state);
	if (r == 0)
		r = judge(c, j->state);
	if (r == 0)
		r = children_now(c);
	if (r < 0)
		goto release;
	t2 = now_ns();
	r = ckpt_track_harvest(c->t, inj, &dirty, &ts);
	if (r < 0)
		goto release;
	t3 = now_ns();
	/* What a copy made while it ran could not read. */
	r = ranges_add(&dirty, &failed);
	if (r == 0 && first)
		r = ranges_add(&dirty, &c->pre_failed);
	if (r == 0)
		r = ckpt_proc_read_maps(ckpt_inject_task_proc(inj), 0, &maps);
	/* What hides the copies made before the freeze: what it copies, and (first) what the passes did. */
	if (r == 0)
		r = ranges_add(&j->hide, &dirty);
	if (r == 0 && first)
		r = ranges_add(&j->hide, &c->pre_hide);
	if (r == 0) {
		frozen.proc = ckpt_inject_task_proc(inj);
		frozen.inj = inj;
		r = page_copy_stream(&sl->frz, &frozen, maps, &dirty);
	}
	/* The first is cut to its mappings; a delta says what is not mapped any more. */
	if (r == 0)
		r = page_saved_ranges(inj, maps, &saved);
	if (r == 0 && !first) {
		/*
		 * Holes where the parent had pages and where the copy before
		 * the freeze put some (a mapping made and unmapped since the
		 * last checkpoint): nothing outside the mappings survives.
		 */
		struct ckpt_range_set before;

		ckpt_range_set_init(&before);
		r = ranges_add(&before, &c->prev_saved);
		if (r == 0)
			r = ranges_add(&before, &pre);
		if (r == 0)
			r = page_copy_gone_holes(&sl->frz, &before, &saved);
		ckpt_range_set_done(&before);
	}
	t4 = now_ns();
release:
	e = ckpt_inject_release(inj);
	if (r == 0 && e < 0)
		r = e;
	j->st.freeze_ns = now_ns() - t0;
	dump_cpu_back(&c->cpu);
	if (r == 0)
		pr_debug("freeze of pid %d: seize %.2f, collect %.2f, harvest %.2f (scan %.2f), copy "
			 "%.2f (%" PRIu64 " pages%s), release %.2f ms; before it: freeze %.2f, copy %.2f ms "
			 "(%" PRIu64 " pages)", c->o->pid, (double)(t1 - t0) / 1e6,
			 (double)(t2 - t1) / 1e6, (double)(t3 - t2) / 1e6, (double)ts.scan_ns / 1e6,
			 (double)(t4 - t3) / 1e6, sl->frz.pages_data,
			 j->pre_written ? ", more than a buffer: written as copied" : "",
			 (double)(t0 + j->st.freeze_ns - t4) / 1e6, (double)j->st.prefreeze_ns / 1e6,
			 (double)j->st.precopy_ns / 1e6, sl->pre.pages_data);
	if (r == 0 && ckpt_track_sync(c->t) < 0)
		pr_warn("the tracking record of pid %d lags behind", c->o->pid);
out:
	ckpt_range_set_done(&failed);
	ckpt_range_set_done(&dirty);
	if (r < 0) {
		ckpt_range_set_done(&pre);
		ckpt_range_set_done(&saved);
		return r;
	}
	/*
	 * The first, pre-copied: cut to the saved mappings (a copy of them:
	 * they are next's). A delta: to them and to where its holes are (the
	 * parent's mappings, what the copy before the freeze knew of). A page
	 * copied before the freeze and handed to the writer in a chunk, of a
	 * mapping made and unmapped since, lies outside both: dropped, never a
	 * page outside every mapping of the checkpoint (restore refuses those).
	 */
	r = ranges_add(&j->keep, &saved);
	if (r == 0 && !first)
		r = ranges_add(&j->keep, &c->prev_saved);
	if (r == 0 && !first)
		r = ranges_add(&j->keep, &pre);
	if (r < 0) {
		ckpt_range_set_done(&pre);
		ckpt_range_set_done(&saved);
		return r;
	}
	ckpt_range_set_done(&c->prev_saved);
	c->prev_saved = saved;

	j->slot = slot;
	j->generation = ckpt_track_generation(c->t);
	j->parked_fd = parked;
	j->st.generation = j->generation;
	j->st.time_s = (double)(t0 - c->t_start) / 1e9;
	j->st.interval_ns = c->t_last_freeze ? t0 - c->t_last_freeze : 0;
	j->st.pages_written = ts.pages + (pre.nr ? ckpt_range_set_bytes(&pre) / CKPT_IMAGE_PAGE_SIZE : 0);
	ckpt_range_set_done(&pre);
	j->st.bytes_raw = (sl->pre.pages_data + sl->frz.pages_data) * CKPT_IMAGE_PAGE_SIZE;
	if (first) {
		j->st.precopy_ns = c->pre_ns;
		j->st.bytes_raw += c->pre_pages * CKPT_IMAGE_PAGE_SIZE;
	}
	c->last_written = j->st.pages_written + sl->frz.pages_data;
	/*
	 * After the pre-copied first, what its last layer took says nothing
	 * of an interval: the first delta copies before its freeze anyway.
	 */
	if (first)
		c->last_written = MAX(c->last_written, PREPHASE_MIN_PAGES);
	c->t_last_freeze = t0;
	/* Room for a little more than this time, next time (at most a buffer). */
	c->reserve = MIN(c->share, MAX(RESERVE_MIN, sl->frz.buf_len + sl->frz.buf_len / 4));
	snprintf(c->prev, sizeof(c->prev), "%s", j->st.name);
	c->next_seq++;
	*ret = TAKE_PTR(j);
	return 0;
}

/* ---- the first full checkpoint, copied while the process runs ---- */

/* Read the mappings of the running process. */
static int live_maps(struct cont *c, struct ckpt_proc **ret_p, struct ckpt_vma_list **ret_maps)
{
	int r = ckpt_proc_open_live(NULL, c->o->pid, ret_p);

	if (r == 0)
		r = ckpt_proc_read_maps(*ret_p, 0, ret_maps);
	if (r < 0 && r != -ESRCH)
		pr_err("cannot read the mappings of pid %d: %s", c->o->pid, errstr(r));
	return r;
}

/*
 * A pass after the first: the pages of @dirty, copied while the process
 * runs, straight to disk (slot 1's buffer, free until the second
 * checkpoint, for the chunks), in a layer over the passes before, less the
 * pages written meanwhile (running_sink: the freeze copies those).
 */
static int precopy_again(struct cont *c, struct chunk_sink *cs, const struct ckpt_range_set *dirty)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	struct page_copy *pc = &c->slots[1].pre;
	struct page_stream stream = {
		.chunk = c->share,
		.sink = running_sink,
		.userdata = cs,
		.failed = &c->pre_failed,
	};
	int r;

	r = ckpt_image_writer_new_layer(c->pre_w);
	if (r == 0)
		r = live_maps(c, &p, &maps);
	if (r < 0)
		return r;
	stream.proc = cs->proc = p;
	background(c, true);
	r = page_copy_stream(pc, &stream, maps, dirty);
	background(c, false);
	c->pre_pages += pc->pages_data;
	page_copy_reset(pc);
	return r;
}

/*
 * The first checkpoint, copied while the process runs: every page into
 * slot 0's buffer, and what does not fit there into the checkpoint's
 * writer as it is copied; then, while a pass leaves much behind, the pages
 * written during it, straight to disk in a layer over it. The freeze of
 * the checkpoint copies the rest. What was copied again hides the copies
 * in slot 0 (c->pre_hide), and what the freeze copies hides everything
 * copied before it (write_job, frozen_sink): each page is in the
 * checkpoint once, unless it was on disk before it was written again.
 */
static int precopy(struct cont *c)
{
	struct ckpt_image_writer_opts wo = {
		.identity = c->id,
		.level = c->o->level,
		.nice = (int)nice_of(c->o),
		.threads = c->threads,
	};
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	struct job pj = { 0 };
	struct chunk_sink cs = { .c = c, .j = &pj, .sl = &c->slots[0], .stoppable = true,
				 .again = &c->pre_failed };
	struct page_stream stream = {
		.chunk = c->share,
		.keep_last = true,
		.sink = running_sink,
		.userdata = &cs,
		.failed = &c->pre_failed,
	};
	struct page_copy *pc = &c->slots[0].pre;
	char path[PATH_MAX];
	uint64_t t0 = now_ns(), left = 0;
	int r, pass;

	ckpt_series_name(c->next_seq, c->pre_name);
	snprintf(path, sizeof(path), "%s/%s", c->o->dir, c->pre_name);
	r = ckpt_image_writer_new(path, &wo, &c->pre_w);
	if (r < 0)
		return r;
	pj.w = c->pre_w; /* borrowed: running_sink finds it open */
	r = live_maps(c, &p, &maps);
	if (r < 0)
		return r;
	stream.proc = cs.proc = p;
	background(c, true);
	r = page_copy_stream(pc, &stream, maps, NULL);
	background(c, false);
	left = (pc->pages_data + ckpt_range_set_bytes(&c->pre_failed) / CKPT_IMAGE_PAGE_SIZE) *
	       CKPT_IMAGE_PAGE_SIZE;
	for (pass = 1; r == 0 && pass < PRECOPY_PASSES; pass++) {
		struct ckpt_range_set dirty;
		uint64_t before = left, ns;

		r = stop_asked(c);
		if (r < 0)
			break;
		/* What was written during the pass: copied again, now or in the freeze. */
		ckpt_range_set_init(&dirty);
		r = harvest_only(c, &dirty, &ns);
		if (r == 0)
			r = ranges_add(&c->pre_hide, &dirty);
		left = ckpt_range_set_bytes(&dirty);
		/*
		 * Copy again while that halves what is left: a process that
		 * rewrote most of what a pass copied rewrites the next one too,
		 * and its pages would only be on disk twice.
		 */
		if (r == 0 && left > PRECOPY_SMALL && left < before / 2) {
			r = precopy_again(c, &cs, &dirty);
		} else {
			if (r == 0)
				r = ranges_add(&c->pre_failed, &dirty); /* little enough for the freeze */
			ckpt_range_set_done(&dirty);
			break;
		}
		ckpt_range_set_done(&dirty);
	}
	c->pre_ns = now_ns() - t0;
	if (r == 0) {
		c->reserve = MIN(c->share, MAX(c->reserve, 2 * left + RESERVE_MIN));
		pr_debug("pre-copy of pid %d: %" PRIu64 " pages in %.1f ms, %d passes (%" PRIu64
			 " KiB kept in memory); %" PRIu64 " KiB left for the freeze", c->o->pid,
			 pc->pages_data + c->pre_pages, (double)c->pre_ns / 1e6, pass,
			 (uint64_t)pc->buf_len >> 10, ckpt_range_set_bytes(&c->pre_failed) >> 10);
	}
	return r;
}

/* ---- setup ---- */

/* The generation recorded in @name's track.json, if it is a checkpoint of this process. */
static int latest_generation(struct cont *c, const struct ckpt_series_point *pt, uint64_t *ret)
{
	_cleanup_image_ struct ckpt_image *img = NULL;
	_cleanup_json_ json_object *o = NULL;
	char path[PATH_MAX];
	json_object *v;

	if (!ckpt_image_identity_equal(&pt->inv->identity, &c->id))
		return -EXDEV;
	snprintf(path, sizeof(path), "%s/%s", c->o->dir, pt->name);
	if (ckpt_image_open(path, NULL, &img) < 0 || !ckpt_image_has_file(img, TRACK_DOC) ||
	    ckpt_image_get_json(img, TRACK_DOC, &o) < 0 ||
	    !json_object_object_get_ex(o, "generation", &v) || !json_object_is_type(v, json_type_int))
		return -ENOENT;
	*ret = json_object_get_uint64(v);
	return 0;
}

/* Arm tracking, or take over what is armed: continue the chain of "latest" when it can. */
static int start_tracking(struct cont *c, struct ckpt_series *s)
{
	struct ckpt_track_opts to = { .rundir = c->o->rundir };
	struct ckpt_inject *inj;
	ssize_t li = ckpt_series_latest(s);
	uint64_t gen;
	int r, e;

	r = ckpt_track_attach(c->o->pid, &to, &c->t);
	if (r == 0 && li >= 0 && latest_generation(c, ckpt_series_point(s, (size_t)li), &gen) == 0 &&
	    gen == ckpt_track_generation(c->t)) {
		const char *name = ckpt_series_point(s, (size_t)li)->name;
		struct ckpt_chain *chain;
		char path[PATH_MAX];

		/* Where its chain holds pages: what the next delta says is gone, if it is. */
		snprintf(path, sizeof(path), "%s/%s", c->o->dir, name);
		r = ckpt_chain_open(path, NULL, &chain);
		if (r < 0)
			return r;
		r = ckpt_chain_ranges(chain, &c->prev_saved);
		ckpt_chain_close(chain);
		if (r < 0)
			return r;
		snprintf(c->prev, sizeof(c->prev), "%s", name);
		event(c, "continued", "pid %d is tracked since '%s/%s' (generation %" PRIu64
		      "): the first checkpoint is a delta of it", c->o->pid, c->o->dir, name, gen);
		return 0;
	}
	if (r < 0 && r != -ENOENT && r != -ESTALE)
		return r; /* -EBUSY: another command holds it */
	r = ckpt_inject_seize_timeout(c->o->pid, CKPT_INJECT_NO_XSTATE, c->o->timeout_ms, &inj);
	if (r < 0)
		return r;
	if (c->t) {
		/* Armed by an earlier command: harvest once to start from here. */
		struct ckpt_range_set unused;

		ckpt_range_set_init(&unused);
		r = ckpt_track_harvest(c->t, inj, &unused, NULL);
		ckpt_range_set_done(&unused);
	} else {
		r = ckpt_track_arm(inj, &to, &c->t);
		c->armed_here = r == 0;
	}
	e = ckpt_inject_release(inj);
	if (r == 0 && e < 0)
		r = e;
	if (r < 0)
		return r;
	event(c, "armed", "tracking pid %d (userfaultfd parked at fd %d); checkpoints in '%s' every "
	      "%.3g s", c->o->pid, ckpt_track_parked_fd(c->t), c->o->dir,
	      (double)(c->o->interval_ns ? c->o->interval_ns : 1000000000ULL) / 1e9);
	return 0;
}

static int setup(struct cont *c)
{
	uint64_t interval = c->o->interval_ns ? c->o->interval_ns : 1000000000ULL;
	struct itimerspec its = {
		.it_interval = { (time_t)(interval / 1000000000ULL), (long)(interval % 1000000000ULL) },
		.it_value = { 0, 1 }, /* the first checkpoint at once */
	};
	int r;

	r = dump_identity(c->o->pid, &c->id, &c->exe);
	if (r < 0)
		return r;
	dump_cpu_init(&c->cpu);
	errno = 0;
	c->own_nice = getpriority(PRIO_PROCESS, (id_t)gettid());
	c->can_nice = errno == 0 &&
		      setpriority(PRIO_PROCESS, (id_t)gettid(), (int)nice_of(c->o)) == 0 &&
		      setpriority(PRIO_PROCESS, (id_t)gettid(), c->own_nice) == 0;
	if (ckpt_proc_open_live(NULL, c->o->pid, &c->proc) < 0)
		c->proc = NULL;
	c->pidfd = (int)syscall(SYS_pidfd_open, c->o->pid, 0);
	if (c->pidfd < 0) {
		r = neg_errno();
		pr_err("pid %d: %s", c->o->pid, r == -ESRCH ? "no such process" : strerror(-r));
		return r;
	}
	c->created_dir = access(c->o->dir, F_OK) < 0 && errno == ENOENT;
	r = ckpt_series_open(c->o->dir, CKPT_SERIES_CREATE, &c->series);
	if (r < 0)
		return r;
	c->next_seq = ckpt_series_next_seq(c->series);
	r = start_tracking(c, c->series);
	if (r < 0)
		return r;
	if (ckpt_proc_events_open(&c->ev) < 0) {
		c->ev = NULL;
		pr_info("no proc connector: an exec is noticed at the next freeze");
	}
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (c->efd < 0 || c->tfd < 0) {
		r = neg_errno();
		pr_err("cannot set up the timer: %s", strerror(-r));
		return r;
	}
	/*
	 * --max-buffer: two page buffers per checkpoint (copied before the
	 * freeze, and in it) for each of the two checkpoints in hand, and the
	 * frames of the compression (ckpt/image.h).
	 */
	{
		uint64_t max = c->o->max_buffer ? c->o->max_buffer : CKPT_CONTINUOUS_MAX_BUFFER_DEFAULT;
		uint64_t frames = (2ULL * c->threads + 2) * 2 * CKPT_IMAGE_FRAME_PAGES_DEFAULT *
				  CKPT_IMAGE_PAGE_SIZE;

		c->share = max > frames ? (max - frames) / (2 * NR_BUFS) : 0;
		c->share = MAX(SHARE_MIN, ALIGN_DOWN(c->share, CKPT_IMAGE_PAGE_SIZE));
		c->reserve = MIN(c->reserve, c->share);
	}
	c->t_start = now_ns(); /* --duration counts the pre-copy in */
	if (!c->prev[0]) {
		r = precopy(c);
		if (r < 0)
			return r;
	}
	if (timerfd_settime(c->tfd, 0, &its, NULL) < 0)
		return neg_errno();
	return writer_start(c);
}

static bool execed(struct cont *c)
{
	struct ckpt_proc_event e[32];
	int k;

	if (!c->ev)
		return false;
	while ((k = ckpt_proc_events_read(c->ev, e, 32)) > 0)
		for (int i = 0; i < k; i++)
			if (e[i].kind == CKPT_PROC_EV_EXEC && e[i].tgid == c->o->pid)
				return true;
	return false;
}

/* ---- the loop ---- */

/* Has the process ended (its pidfd readable within 100 ms)? */
static bool process_ended(const struct cont *c)
{
	struct pollfd p = { c->pidfd, POLLIN, 0 };

	return c->pidfd >= 0 && poll(&p, 1, 100) > 0 && (p.revents & POLLIN);
}

static enum ckpt_continuous_end run_loop(struct cont *c, int *ret_err)
{
	bool due = false;
	uint64_t due_since = 0;

	*ret_err = 0;
	for (;;) {
		struct pollfd pfd[5] = {
			{ c->tfd, POLLIN, 0 }, { c->pidfd, POLLIN, 0 }, { c->o->stop_fd, POLLIN, 0 },
			{ c->efd, POLLIN, 0 }, { c->ev ? ckpt_proc_events_fd(c->ev) : -1, POLLIN, 0 },
		};
		int buf, r;

		if (poll(pfd, 5, -1) < 0) {
			if (errno == EINTR)
				continue;
			*ret_err = neg_errno();
			pr_err("poll: %s", strerror(-*ret_err));
			return CKPT_CONTINUOUS_FAILED;
		}
		if (pfd[3].revents & POLLIN) {
			r = collect_finished(c);
			if (r < 0) {
				*ret_err = r;
				return CKPT_CONTINUOUS_FAILED;
			}
		}
		if (pfd[2].revents & POLLIN)
			return CKPT_CONTINUOUS_STOPPED;
		if (pfd[1].revents & POLLIN)
			return CKPT_CONTINUOUS_EXITED;
		if ((pfd[4].revents & POLLIN) && execed(c))
			return CKPT_CONTINUOUS_EXECED;
		if (pfd[0].revents & POLLIN) {
			uint64_t ticks;

			if (read(c->tfd, &ticks, sizeof(ticks)) > 0 && !due) {
				due = true;
				due_since = now_ns();
			}
		}
		if (!due || c->pending || (buf = free_slot(c)) < 0)
			goto check_end; /* the writer is behind: the interval stretches */
		{
			struct job *j = NULL;
			uint64_t stretch = now_ns() - due_since;

			due = false;
			r = capture(c, buf, &j);
			/* Killed while frozen, each step may fail its own way: did it end? */
			if (r == -ESRCH || (r < 0 && process_ended(c)))
				return CKPT_CONTINUOUS_EXITED;
			if (r < 0 && c->refused) {
				*ret_err = r;
				return CKPT_CONTINUOUS_UNRESTORABLE;
			}
			if (r == -ECHILD && c->child)
				return CKPT_CONTINUOUS_STOPPED; /* ckpt_dump_continuous goes on as a tree's */
			if (r == -ESTALE) {
				*ret_err = r;
				return execed(c) ? CKPT_CONTINUOUS_EXECED : CKPT_CONTINUOUS_LOST;
			}
			if (r < 0) {
				*ret_err = r;
				return CKPT_CONTINUOUS_FAILED;
			}
			c->slots[buf].busy = true;
			/* Waited for the writer longer than a tenth of the interval: stretched. */
			if (stretch * 10 > (c->o->interval_ns ? c->o->interval_ns : 1000000000ULL)) {
				j->st.stretch_ns = stretch;
				c->res->stretched++;
			}
			hand_over(c, j);
			c->captured++;
		}
check_end:
		if (c->o->count && c->captured >= c->o->count)
			return CKPT_CONTINUOUS_COUNT;
		if (c->o->duration_ns && now_ns() - c->t_start >= c->o->duration_ns)
			return CKPT_CONTINUOUS_DURATION;
	}
}

static void cont_done(struct cont *c)
{
	writer_stop(c);
	job_free(c->pending);
	pthread_mutex_lock(&c->lock);
	job_free(c->todo);
	for (size_t i = 0; i < c->nr_finished; i++)
		job_free(c->finished[i]);
	pthread_mutex_unlock(&c->lock);
	ckpt_image_writer_free(c->pre_w);
	ckpt_range_set_done(&c->pre_failed);
	ckpt_range_set_done(&c->pre_hide);
	for (int i = 0; i < NR_BUFS; i++) {
		page_copy_done(&c->slots[i].pre);
		page_copy_done(&c->slots[i].frz);
	}
	ckpt_range_set_done(&c->prev_saved);
	ckpt_proc_close(c->proc);
	ckpt_proc_events_close(c->ev);
	ckpt_series_close(c->series);
	if (c->pidfd >= 0)
		close(c->pidfd);
	if (c->tfd >= 0)
		close(c->tfd);
	if (c->efd >= 0)
		close(c->efd);
	free(c->exe);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
}

/* Disarm the tracking this run armed, in a freeze; frees c->t. */
static void disarm_ours(struct cont *c)
{
	struct ckpt_inject *inj;
	int r = ckpt_inject_seize_timeout(c->o->pid, CKPT_INJECT_NO_XSTATE, c->o->timeout_ms,
					  &inj);

	if (r == 0) {
		r = ckpt_track_disarm(c->t, inj);
		(void)ckpt_inject_release(inj);
	} else {
		ckpt_track_close(c->t);
	}
	if (r < 0)
		pr_warn("pid %d stays tracked (no checkpoint was taken): %s; 'ckpt track --stop -t %d' "
			"disarms it", c->o->pid, errstr(r), c->o->pid);
}

/*
 * Leave the tracking armed; frees c->t. After a freeze that timed out, even
 * tracking armed for nothing stays: disarming needs a freeze, which would
 * wait as long for the same thread.
 */
static void stay_armed(struct cont *c)
{
	if (c->armed_here && !c->res->checkpoints)
		pr_warn("pid %d stays tracked (no checkpoint was taken, a thread did not stop): "
			"'ckpt track --stop -t %d' disarms it", c->o->pid, c->o->pid);
	ckpt_track_close(c->t);
}

/*
 * The process made a child: the same run goes on with a dump of its tree
 * per interval, in the same series (the first one a delta of the last
 * checkpoint for the process, in full for the child), within what is left
 * of the count and the duration.
 */
static int go_on_as_tree(const struct ckpt_continuous_opts *o, struct ckpt_continuous_result *ret,
			 pid_t child, uint64_t t0)
{
	struct ckpt_continuous_opts t = *o;
	struct ckpt_continuous_result tr;
	uint64_t spent = now_ns() - t0;
	int r;

	if (o->count && ret->checkpoints >= o->count)
		return 0;
	if (o->duration_ns && spent >= o->duration_ns) {
		ret->end = CKPT_CONTINUOUS_DURATION;
		return 0;
	}
	t.count = o->count ? o->count - ret->checkpoints : 0;
	t.duration_ns = o->duration_ns ? o->duration_ns - spent : 0;
	if (child > 0)
		pr_info("pid %d made a child (pid %d): from now on each checkpoint holds its process tree",
			o->pid, child);
	r = dump_continuous_tree(&t, &tr);
	ret->checkpoints += tr.checkpoints;
	ret->stretched += tr.stretched;
	if (tr.last[0])
		snprintf(ret->last, sizeof(ret->last), "%s", tr.last);
	ret->end = tr.end;
	return r;
}

int ckpt_dump_continuous(const struct ckpt_continuous_opts *o, struct ckpt_continuous_result *ret)
{
	struct cont c = { .o = o, .res = ret, .pidfd = -1, .tfd = -1, .efd = -1,
			  .reserve = RESERVE_MIN, .threads = threads_for() };
	enum ckpt_continuous_end end = CKPT_CONTINUOUS_FAILED;
	uint64_t t0 = now_ns();
	int r, e;

	/* A process with children: its tree, a dump per interval (continuous_tree.c). */
	if (dump_has_children(o->pid))
		return dump_continuous_tree(o, ret);
	memset(ret, 0, sizeof(*ret));
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	ckpt_range_set_init(&c.pre_failed);
	ckpt_range_set_init(&c.pre_hide);
	ckpt_range_set_init(&c.prev_saved);
	for (int i = 0; i < NR_BUFS; i++) {
		page_copy_init(&c.slots[i].pre);
		page_copy_init(&c.slots[i].frz);
	}
	r = setup(&c);
	if (r == -ESRCH)
		end = CKPT_CONTINUOUS_EXITED, r = 0;
	else if (r == -ECANCELED)
		end = CKPT_CONTINUOUS_STOPPED, r = 0;
	else if (r == 0)
		end = run_loop(&c, &r);
	/* Whatever was captured is written, unless writing failed. */
	e = c.thr_started ? drain(&c) : 0;
	if (e < 0 && (r == 0 || end != CKPT_CONTINUOUS_FAILED)) {
		r = e;
		end = CKPT_CONTINUOUS_FAILED;
	}
	if (c.t) {
		if (end == CKPT_CONTINUOUS_EXITED || end == CKPT_CONTINUOUS_EXECED ||
		    end == CKPT_CONTINUOUS_LOST)
			(void)ckpt_track_disarm(c.t, NULL); /* nothing to track any more: drop the record */
		else if (c.armed_here && !ret->checkpoints && r != -ETIMEDOUT)
			disarm_ours(&c); /* armed for nothing: leave the process as it was */
		else
			stay_armed(&c); /* a later command continues the chain */
		c.t = NULL;
	}
	cont_done(&c);
	if (c.created_dir && !ret->checkpoints)
		(void)rmdir(o->dir); /* only if it is empty */
	ret->end = end;
	if (end == CKPT_CONTINUOUS_EXITED || end == CKPT_CONTINUOUS_EXECED)
		r = 0;
	if (r == 0 && c.child)
		r = go_on_as_tree(o, ret, c.child, t0);
	return r;
}
