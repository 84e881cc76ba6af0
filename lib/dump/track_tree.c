/* SPDX-License-Identifier: MIT */
/*
 * Dirty tracking of a process tree (ckpt/track_tree.h): the monitor of
 * `ckpt track -t PID` follows PID and its descendants, one tracker per
 * process, every harvest in one freeze of the tree (dump_tree_freeze).
 *
 * Each process is known by pid and start time: a pid met again with
 * another start time is another process (the old one ended). A process is
 * armed in the freeze that first finds it: a child does not inherit its
 * parent's uffd-wp registration across fork (no UFFD_FEATURE_EVENT_FORK;
 * the kernel clears the child's wp bits). Its writes before that freeze
 * are not counted. The uffds are held here, not parked (nothing for a
 * child to inherit); a copy of a parked one (tracking left by a tree dump
 * --leave-running) that a child got from fork is closed when it is armed
 * and at --stop.
 */
#define LOG_AREA "track"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt/inject.h>
#include <ckpt/proc.h>
#include <ckpt/track.h>
#include <ckpt/track_tree.h>
#include <ckpt/tree.h>

#include "dump/dump-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

/* A process of the tree, known since an earlier freeze. */
struct tt_proc {
	pid_t pid, ppid;
	uint64_t start_time;
	char comm[CKPT_STATE_COMM_LEN];
	struct ckpt_tracker *t;     /* NULL: cannot be armed (untracked, not tried again) */
	uint64_t armed_ns;          /* CLOCK_MONOTONIC, in the freeze that armed it: an exec before is not news */
	bool execed;                /* the proc connector saw an exec since the last freeze */
	bool seen;                  /* in the tree of this freeze */
};

/* An event for opts.on_event, held until the tree runs again. */
struct tt_event {
	char what[16];
	pid_t pid;
	char msg[512];
};

struct ckpt_track_tree {
	struct ckpt_track_tree_opts o;
	struct tt_event *events;
	size_t nr_events, cap_events;
	char *rundir;
	struct tt_proc *procs;
	size_t nr, cap;
	struct ckpt_track_tree_proc *out; /* the last sample's */
	size_t nr_out, cap_out;
};

/* A frozen tree and its injectors (NULL for zombies). */
struct frozen {
	struct ckpt_tree *tree;
	struct ckpt_inject **injs;
};

static int freeze(pid_t root, unsigned int timeout_ms, struct frozen *f)
{
	*f = (struct frozen){ 0 };
	return dump_tree_freeze(root, CKPT_INJECT_NO_XSTATE, timeout_ms, &f->tree, &f->injs);
}

static void thaw(struct frozen *f)
{
	dump_tree_release(f->tree, f->injs);
	free(f->injs);
	ckpt_tree_free(f->tree);
	*f = (struct frozen){ 0 };
}

/* Held, not parked: the tracking ends with this command, even with a SIGKILL of it. */
static struct ckpt_track_opts track_opts(const struct ckpt_track_tree *tt)
{
	return (struct ckpt_track_opts){ .rundir = tt->rundir, .held = true };
}

static void event(struct ckpt_track_tree *tt, const char *what, pid_t pid, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void event(struct ckpt_track_tree *tt, const char *what, pid_t pid, const char *fmt, ...)
{
	struct tt_event *e;
	va_list ap;

	/* Never told in a freeze: a blocked output must not hold the tree. */
	if (GROW(tt->events, tt->cap_events, tt->nr_events + 1) < 0)
		return;
	e = &tt->events[tt->nr_events++];
	snprintf(e->what, sizeof(e->what), "%s", what);
	e->pid = pid;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

static void tell_events(struct ckpt_track_tree *tt)
{
	for (size_t i = 0; i < tt->nr_events; i++) {
		if (tt->o.on_event)
			tt->o.on_event(tt->events[i].what, tt->events[i].pid, tt->events[i].msg, tt->o.userdata);
		else
			pr_info("%s", tt->events[i].msg);
	}
	tt->nr_events = 0;
}

/* pid, ppid, start time and comm of a frozen process. */
static int identify(struct ckpt_inject *inj, struct tt_proc *ret)
{
	struct ckpt_proc_stat st;
	int r = ckpt_proc_read_stat(ckpt_inject_task_proc(inj), &st);

	if (r < 0)
		return r;
	ret->pid = ckpt_inject_pid(inj);
	ret->ppid = st.ppid;
	ret->start_time = st.start_time;
	snprintf(ret->comm, sizeof(ret->comm), "%s", st.comm);
	return 0;
}

static struct tt_proc *find(struct ckpt_track_tree *tt, pid_t pid)
{
	for (size_t i = 0; i < tt->nr; i++)
		if (tt->procs[i].pid == pid)
			return &tt->procs[i];
	return NULL;
}

/* @pid is still the live process that started at @start_time (not a zombie). */
static bool alive_as(pid_t pid, uint64_t start_time)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	struct ckpt_proc_stat st;

	return ckpt_proc_open(NULL, pid, &p) == 0 && ckpt_proc_read_stat(p, &st) == 0 &&
	       st.start_time == start_time && !dump_is_zombie(pid, &st);
}

/* Close in @inj's process the copies of the tree's uffds it inherited across fork. */
static void drop_inherited(struct ckpt_tracker *const *trackers, size_t nr, struct ckpt_inject *inj)
{
	for (size_t i = 0; i < nr; i++)
		if (trackers[i])
			(void)ckpt_track_drop_inherited(trackers[i], inj);
}

static void drop_inherited_tt(struct ckpt_track_tree *tt, struct ckpt_inject *inj)
{
	for (size_t i = 0; i < tt->nr; i++)
		if (tt->procs[i].t)
			(void)ckpt_track_drop_inherited(tt->procs[i].t, inj);
}

/* Arm the frozen process @inj: rid of inherited copies first, so it parks its own uffd as high. */
static int arm(struct ckpt_track_tree *tt, struct ckpt_inject *inj, struct tt_proc *p)
{
	struct ckpt_track_opts to = track_opts(tt);

	drop_inherited_tt(tt, inj);
	p->armed_ns = now_ns();
	return ckpt_track_arm(inj, &to, &p->t);
}

static int add_proc(struct ckpt_track_tree *tt, const struct tt_proc *p)
{
	if (GROW(tt->procs, tt->cap, tt->nr + 1) < 0)
		return -ENOMEM;
	tt->procs[tt->nr++] = *p;
	return 0;
}

static void remove_proc(struct ckpt_track_tree *tt, struct tt_proc *p)
{
	size_t i = (size_t)(p - tt->procs);

	memmove(p, p + 1, (tt->nr - i - 1) * sizeof(*p));
	tt->nr--;
}

static struct ckpt_track_tree_proc *add_out(struct ckpt_track_tree *tt, const struct tt_proc *p)
{
	struct ckpt_track_tree_proc *o;

	if (GROW(tt->out, tt->cap_out, tt->nr_out + 1) < 0)
		return NULL;
	o = &tt->out[tt->nr_out++];
	memset(o, 0, sizeof(*o));
	o->pid = p->pid;
	o->ppid = p->ppid;
	snprintf(o->comm, sizeof(o->comm), "%s", p->comm);
	return o;
}

/*
 * Disarm @t of a process that is not in a frozen tree (it left the tree,
 * or the root is gone): seized alone if it is still the same process, else
 * only its record is dropped. Frees @t.
 */
static int disarm_alone(struct ckpt_track_tree *tt, pid_t pid, uint64_t start_time, struct ckpt_tracker *t)
{
	struct ckpt_inject *inj = NULL;
	struct tt_proc now;
	int r, e;

	if (!alive_as(pid, start_time))
		return ckpt_track_disarm(t, NULL); /* gone: only its record is left */
	if (ckpt_inject_seize_timeout(pid, CKPT_INJECT_NO_XSTATE | CKPT_INJECT_GONE_OK, tt->o.timeout_ms,
				      &inj) < 0)
		return ckpt_track_disarm(t, NULL); /* gone (or never stops: its record goes all the same) */
	if (identify(inj, &now) < 0 || now.start_time != start_time) {
		(void)ckpt_inject_release(inj);
		return ckpt_track_disarm(t, NULL);
	}
	r = ckpt_track_disarm(t, inj);
	e = ckpt_inject_release(inj);
	return r < 0 ? r : e;
}

void ckpt_track_tree_free(struct ckpt_track_tree *tt)
{
	if (!tt)
		return;
	for (size_t i = 0; i < tt->nr; i++)
		ckpt_track_close(tt->procs[i].t);
	free(tt->procs);
	free(tt->out);
	free(tt->events);
	free(tt->rundir);
	free(tt);
}

static int tt_new(const struct ckpt_track_tree_opts *o, struct ckpt_track_tree **ret)
{
	struct ckpt_track_tree *tt = calloc(1, sizeof(*tt));

	if (!tt)
		return -ENOMEM;
	tt->o = *o;
	tt->o.rundir = NULL;
	if (o->rundir && !(tt->rundir = strdup(o->rundir))) {
		free(tt);
		return -ENOMEM;
	}
	*ret = tt;
	return 0;
}

/*
 * In a frozen tree: drop the inherited uffd copies of every live process
 * (against all of @trackers), then disarm each process's tracker
 * (@trackers[i] of node i, NULL: not tracked; set to NULL), its result in
 * @results[i] if not NULL. The first error.
 */
static int disarm_frozen(struct frozen *f, struct ckpt_tracker **trackers, int *results)
{
	int r = 0;

	for (size_t i = 0; i < f->tree->nr_nodes; i++)
		if (f->injs[i])
			drop_inherited(trackers, f->tree->nr_nodes, f->injs[i]);
	for (size_t i = 0; i < f->tree->nr_nodes; i++) {
		int e;

		if (!trackers[i])
			continue;
		e = ckpt_track_disarm(TAKE_PTR(trackers[i]), f->injs[i]);
		if (results)
			results[i] = e;
		if (e < 0 && !r)
			r = e;
	}
	return r;
}

int ckpt_track_tree_open(const struct ckpt_track_tree_opts *o, struct ckpt_track_tree **ret)
{
	_cleanup_free_ struct ckpt_tracker **armed = NULL;
	struct ckpt_track_tree *tt = NULL;
	struct frozen f;
	int r;

	if ((r = tt_new(o, &tt)) < 0)
		return r;
	if ((r = freeze(o->pid, o->timeout_ms, &f)) < 0) {
		ckpt_track_tree_free(tt);
		return r;
	}
	armed = calloc(f.tree->nr_nodes, sizeof(*armed));
	if (!armed)
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < f.tree->nr_nodes; i++) {
		struct tt_proc p = { 0 };

		if (!f.injs[i])
			continue; /* a zombie */
		r = identify(f.injs[i], &p);
		if (r == 0)
			r = arm(tt, f.injs[i], &p);
		if (r == 0 && (r = add_proc(tt, &p)) < 0)
			(void)ckpt_track_disarm(p.t, f.injs[i]);
		if (r == 0)
			armed[i] = p.t;
	}
	if (r < 0 && armed) {
		/* Every process as it was: those armed are disarmed in the same freeze. */
		(void)disarm_frozen(&f, armed, NULL);
		tt->nr = 0;
	}
	thaw(&f);
	if (r < 0) {
		ckpt_track_tree_free(tt);
		return r;
	}
	for (size_t i = 0; i < tt->nr; i++)
		if (ckpt_track_sync(tt->procs[i].t) < 0)
			pr_warn("the tracking record of pid %d lags behind", tt->procs[i].pid);
	*ret = tt;
	return 0;
}

/* A process new in the tree (or a new process with a known pid): armed now. */
static int born(struct ckpt_track_tree *tt, struct ckpt_inject *inj, struct tt_proc *p, bool root)
{
	struct ckpt_track_tree_proc *o;
	int r = arm(tt, inj, p);

	if (r < 0) {
		if (root)
			return r;
		p->t = NULL;
		event(tt, "untracked", p->pid, "pid %d (%s), new in the tree of pid %d, cannot be tracked: %s; "
		      "it is left alone", p->pid, p->comm, tt->o.pid, errstr(r));
	}
	p->seen = true;
	if ((r = add_proc(tt, p)) < 0) {
		(void)ckpt_track_disarm(p->t, inj);
		return r;
	}
	if (!p->t)
		return 0;
	if (!(o = add_out(tt, p)))
		return -ENOMEM;
	o->born = true;
	return 0;
}

/* Armed again: it executed a new program, or its tracking was lost. */
static int rearm(struct ckpt_track_tree *tt, struct ckpt_inject *inj, struct tt_proc *p, const char *why)
{
	struct ckpt_track_tree_proc *o;
	int r;

	(void)ckpt_track_disarm(TAKE_PTR(p->t), inj);
	r = arm(tt, inj, p);
	if (r < 0) {
		event(tt, "untracked", p->pid, "pid %d (%s) %s and cannot be tracked again: %s; it is left alone",
		      p->pid, p->comm, why, errstr(r));
		return 0;
	}
	event(tt, "exec", p->pid, "pid %d (%s) %s: tracked again from now on", p->pid, p->comm, why);
	if (!(o = add_out(tt, p)))
		return -ENOMEM;
	o->execed = true;
	return 0;
}

/* Harvest a known process of the frozen tree. */
static int harvest_one(struct ckpt_track_tree *tt, struct ckpt_inject *inj, struct tt_proc *p, bool root)
{
	struct ckpt_track_tree_proc *o;
	struct ckpt_range_set set;
	struct ckpt_track_stats st;
	int r;

	if (!p->t)
		return 0; /* untracked */
	if (p->execed && !root)
		return rearm(tt, inj, p, "executed a new program");
	r = ckpt_track_harvest(p->t, inj, &set, &st);
	if (r == 0)
		ckpt_range_set_done(&set);
	if (r == -ESTALE && !root)
		return rearm(tt, inj, p, "executed a new program (found at its harvest)");
	if (r == -ESRCH && !root) {
		p->seen = false; /* killed while frozen: ended, after the release */
		return 0;
	}
	if (r < 0)
		return r;
	if (!(o = add_out(tt, p)))
		return -ENOMEM;
	o->st = st;
	return 0;
}

static uint64_t rss_kib(pid_t pid)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	struct ckpt_proc_status st;
	uint64_t kb = 0;

	if (ckpt_proc_open(NULL, pid, &p) == 0 && ckpt_proc_read_status(p, &st) == 0) {
		kb = st.vm_rss_kb;
		ckpt_proc_status_done(&st);
	}
	return kb;
}

static void add_stats(struct ckpt_track_stats *sum, const struct ckpt_track_stats *s)
{
	sum->pages += s->pages;
	sum->nr_ranges += s->nr_ranges;
	sum->maps_added += s->maps_added;
	sum->maps_removed += s->maps_removed;
	sum->maps_changed += s->maps_changed;
	sum->maps_always_dirty += s->maps_always_dirty;
	sum->new_pages += s->new_pages;
	sum->kept_on_error += s->kept_on_error;
	sum->scan_ns += s->scan_ns;
	sum->harvest_ns += s->harvest_ns;
}

/*
 * @p is not in the tree any more: reported ended once, disarmed (alone, if
 * it lives on outside the tree), forgotten.
 */
static int end_proc(struct ckpt_track_tree *tt, struct tt_proc *p)
{
	struct ckpt_track_tree_proc *o;

	if (p->t) {
		if (!(o = add_out(tt, p)))
			return -ENOMEM;
		o->ended = true;
		if (alive_as(p->pid, p->start_time))
			event(tt, "left", p->pid, "pid %d (%s) left the tree of pid %d: tracking stopped", p->pid,
			      p->comm, tt->o.pid);
		(void)disarm_alone(tt, p->pid, p->start_time, TAKE_PTR(p->t));
	}
	remove_proc(tt, p);
	return 0;
}

/* Known processes not in this freeze's tree. */
static int end_unseen(struct ckpt_track_tree *tt)
{
	for (size_t i = 0; i < tt->nr;) {
		int r;

		if (tt->procs[i].seen) {
			i++;
			continue;
		}
		if ((r = end_proc(tt, &tt->procs[i])) < 0)
			return r;
	}
	return 0;
}

/* Every process of the frozen tree: harvested, armed, armed again. */
static int harvest_frozen(struct ckpt_track_tree *tt, struct frozen *f)
{
	for (size_t i = 0; i < f->tree->nr_nodes; i++) {
		struct tt_proc now = { 0 }, *p;
		int r;

		if (!f->injs[i])
			continue; /* a zombie: ended, if it was tracked */
		r = identify(f->injs[i], &now);
		if (r < 0) {
			pr_err("cannot read the state of pid %d: %s", f->tree->nodes[i].pid, errstr(r));
			return r;
		}
		p = find(tt, now.pid);
		if (p && p->start_time != now.start_time) {
			/* The pid of an ended one, taken again: that one ends first (its record, its lock). */
			if ((r = end_proc(tt, p)) < 0)
				return r;
			p = NULL;
		}
		if (!p) {
			r = born(tt, f->injs[i], &now, i == 0);
		} else {
			p->seen = true;
			p->ppid = now.ppid;
			snprintf(p->comm, sizeof(p->comm), "%s", now.comm);
			r = harvest_one(tt, f->injs[i], p, i == 0);
			p->execed = false;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int ckpt_track_tree_harvest(struct ckpt_track_tree *tt, struct ckpt_track_tree_sample *ret)
{
	struct ckpt_track_tree_sample s = { 0 };
	uint64_t t0 = now_ns();
	struct frozen f;
	int r;

	r = freeze(tt->o.pid, tt->o.timeout_ms, &f);
	if (r < 0)
		return r;
	tt->nr_out = 0;
	for (size_t i = 0; i < tt->nr; i++)
		tt->procs[i].seen = false;
	r = harvest_frozen(tt, &f);
	thaw(&f);
	s.freeze_ns = now_ns() - t0;
	if (r == 0)
		r = end_unseen(tt);
	tell_events(tt);
	if (r < 0)
		return r;
	for (size_t i = 0; i < tt->nr_out; i++) {
		struct ckpt_track_tree_proc *o = &tt->out[i];
		struct tt_proc *p = find(tt, o->pid);

		if (o->ended)
			continue;
		if (p && p->t && ckpt_track_sync(p->t) < 0)
			pr_warn("the tracking record of pid %d lags behind", p->pid);
		o->rss_kib = rss_kib(o->pid);
		add_stats(&s.total, &o->st);
		s.rss_kib += o->rss_kib;
	}
	if (tt->nr && tt->procs[0].t)
		s.total.generation = ckpt_track_generation(tt->procs[0].t);
	s.nr_procs = tt->nr_out;
	s.procs = tt->out;
	*ret = s;
	return 0;
}

bool ckpt_track_tree_note_exec(struct ckpt_track_tree *tt, pid_t pid, uint64_t when_ns)
{
	struct tt_proc *p = find(tt, pid);

	/* An exec before the freeze that armed it is what that freeze found already. */
	if (!p || !p->t || when_ns <= p->armed_ns)
		return false;
	p->execed = true;
	return true;
}

size_t ckpt_track_tree_nr_procs(const struct ckpt_track_tree *tt)
{
	size_t n = 0;

	for (size_t i = 0; i < tt->nr; i++)
		n += tt->procs[i].t != NULL;
	return n;
}

int ckpt_track_tree_disarm(struct ckpt_track_tree *tt)
{
	_cleanup_free_ struct ckpt_tracker **trackers = NULL;
	struct frozen f;
	int r = 0, e;

	if (!tt)
		return 0;
	/* The root gone (or a zombie): no tree to freeze, each is disarmed alone below. */
	e = tt->nr && tt->procs[0].pid == tt->o.pid && !alive_as(tt->o.pid, tt->procs[0].start_time)
		    ? -ESRCH
		    : freeze(tt->o.pid, tt->o.timeout_ms, &f);
	if (e == -ETIMEDOUT) {
		/* Our uffds closed, the kernel unregisters all the same, without a freeze. */
		ckpt_track_tree_free(tt);
		return e;
	}
	if (e == 0) {
		trackers = calloc(f.tree->nr_nodes, sizeof(*trackers));
		for (size_t i = 0; trackers && i < f.tree->nr_nodes; i++) {
			struct tt_proc now, *p;

			if (f.injs[i] && identify(f.injs[i], &now) == 0 && (p = find(tt, now.pid)) &&
			    p->start_time == now.start_time)
				trackers[i] = TAKE_PTR(p->t);
		}
		if (trackers)
			r = disarm_frozen(&f, trackers, NULL);
		thaw(&f);
	}
	/* The root is gone, or these are out of its tree now. */
	for (size_t i = 0; i < tt->nr; i++) {
		struct tt_proc *p = &tt->procs[i];

		if (p->t && (e = disarm_alone(tt, p->pid, p->start_time, TAKE_PTR(p->t))) < 0 && !r)
			r = e;
	}
	ckpt_track_tree_free(tt);
	return r;
}

int ckpt_track_tree_stop(const struct ckpt_track_tree_opts *o, struct ckpt_track_tree_stopped **ret,
			 size_t *ret_nr)
{
	_cleanup_free_ struct ckpt_tracker **trackers = NULL;
	_cleanup_free_ struct ckpt_track_tree_stopped *v = NULL;
	_cleanup_free_ int *results = NULL;
	struct ckpt_track_opts to = { .rundir = o->rundir };
	struct frozen f;
	size_t nr = 0;
	int r;

	if ((r = freeze(o->pid, o->timeout_ms, &f)) < 0)
		return r;
	trackers = calloc(f.tree->nr_nodes, sizeof(*trackers));
	results = calloc(f.tree->nr_nodes, sizeof(*results));
	v = calloc(f.tree->nr_nodes, sizeof(*v));
	if (!trackers || !results || !v)
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < f.tree->nr_nodes; i++) {
		if (!f.injs[i])
			continue;
		results[i] = ckpt_track_attach(f.tree->nodes[i].pid, &to, &trackers[i]);
		if (results[i] < 0 && results[i] != -ENOENT && results[i] != -ESTALE)
			r = results[i]; /* -EBUSY: a running command holds it (logged) */
	}
	if (r == 0)
		(void)disarm_frozen(&f, trackers, results);
	for (size_t i = 0; trackers && i < f.tree->nr_nodes; i++) {
		ckpt_track_close(trackers[i]); /* left after an error: armed as they were */
		if (r < 0 || !f.injs[i] || results[i] == -ENOENT)
			continue;
		v[nr].pid = f.tree->nodes[i].pid;
		snprintf(v[nr].comm, sizeof(v[nr].comm), "%s", f.tree->nodes[i].comm);
		v[nr++].result = results[i];
	}
	thaw(&f);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	*ret_nr = nr;
	return 0;
}
