/* SPDX-License-Identifier: MIT */
/*
 * The dump pipeline, stage by stage:
 *   check_parent  the parent is of this process and its tracking is intact
 *   reserve       room for the pages, populated before the freeze
 *   freeze        seize every thread
 *   collect       the state (ckpt_dump_collect)
 *   judge         refuse what restore cannot recreate; children a kill would orphan
 *   track         arm (full) or harvest (delta) in the same freeze
 *   copy          the pages to save, into ckpt's memory
 *   resume        leave running / stopped (kill mode: stays frozen)
 *   write         compress and commit the checkpoint atomically
 *   finish        kill mode: kill, now that the images are safe
 *
 * The commit is the point of no return: until then an interruption
 * (opts->interrupted) aborts and leaves the process as it was and no
 * checkpoint; after it the dump completes, kill included.
 */
#define LOG_AREA "dump"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/dump.h>
#include <ckpt/image.h>
#include <ckpt/inject.h>
#include <ckpt/proc.h>
#include <ckpt/state.h>
#include <ckpt/track.h>

#include "dump/collect-internal.h"
#include "dump/collect_sockets.h"
#include "dump/dump-internal.h"
#include "dump/pages.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

struct dump {
	const struct ckpt_dump_opts *o;
	struct ckpt_dump_stats *st;
	struct ckpt_image_identity id;
	char *exe;
	struct ckpt_image *parent;
	char *parent_rel;          /* parent path relative to the new checkpoint */
	uint64_t parent_generation;
	struct ckpt_tracker *tracker;
	struct ckpt_inject *inj;
	struct ckpt_state *state;
	struct ckpt_vma_list *maps;
	struct ckpt_vma_list *hint;  /* smaps, read just before the freeze; NULL: none */
	struct dump_cpu cpu;         /* the caller's affinity, given back after the freeze */
	bool near;                   /* we run on the target's CPU */
	struct ckpt_range_set dirty;
	struct ckpt_range_set parent_ranges; /* where the parent chain holds pages */
	bool delta;
	struct page_copy pages;
	struct ckpt_image_writer *w; /* kill mode: opened in the freeze, pages streamed into it */
	/* A delta's pages copied before the freeze: what, what failed, the copy. */
	struct ckpt_range_set pre, pre_failed;
	struct page_copy pre_pages;
};

/* ---- helpers ---- */

/* Asked between stages, never after the commit: -EINTR aborts the dump. */
static int check_interrupted(const struct dump *d, const char *where)
{
	if (!d->o->interrupted || !d->o->interrupted(d->o->userdata))
		return 0;
	pr_info("interrupted %s: the dump of pid %d is abandoned", where, d->o->pid);
	return -EINTR;
}

static int identity_of(struct dump *d)
{
	return dump_identity(d->o->pid, &d->id, &d->exe);
}

/* @to relative to directory @from_dir (both absolute, normalized). */
static char *relative_path(const char *from_dir, const char *to)
{
	size_t common = 0, i;
	char buf[PATH_MAX] = "";

	for (i = 0; from_dir[i] && from_dir[i] == to[i]; i++)
		if (from_dir[i] == '/')
			common = i;
	if (!from_dir[i] && (to[i] == '/' || !to[i]))
		common = i;
	for (const char *s = from_dir + common; *s; s++)
		if (*s == '/')
			strncat(buf, "../", sizeof(buf) - strlen(buf) - 1);
	strncat(buf, to[common] == '/' ? to + common + 1 : to + common, sizeof(buf) - strlen(buf) - 1);
	return strdup(buf[0] ? buf : ".");
}

/* Absolute path of the directory that will hold the new checkpoint. */
static int new_dir_parent(const char *dir, char *out, size_t len)
{
	_cleanup_free_ char *copy = strdup(dir);
	char *parent;

	if (!copy)
		return -ENOMEM;
	parent = dirname(copy);
	if (!realpath(parent, out))
		return neg_errno();
	(void)len;
	return 0;
}

static int read_parent_generation(struct dump *d)
{
	_cleanup_json_ json_object *o = NULL;
	json_object *v;
	int r = ckpt_image_get_json(d->parent, TRACK_DOC, &o);

	if (r == -ENOENT) {
		pr_err("'%s' records no dirty tracking: it was not taken with --leave-running "
		       "or --leave-stopped, so nothing tells what changed since", d->o->parent);
		return -ESTALE;
	}
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(o, "generation", &v) || !json_object_is_type(v, json_type_int)) {
		pr_err("'%s/%s' is corrupt: no generation", d->o->parent, TRACK_DOC);
		return -EBADMSG;
	}
	d->parent_generation = json_object_get_uint64(v);
	return 0;
}

/* ---- placement during a freeze (shared with continuous.c) ---- */

void dump_cpu_init(struct dump_cpu *dc)
{
	dc->have_cpus = sched_getaffinity(0, sizeof(dc->cpus), &dc->cpus) == 0;
}

void dump_cpu_near(const struct dump_cpu *dc, const struct ckpt_proc *proc)
{
	struct ckpt_proc_stat st;
	cpu_set_t one;

	if (!dc->have_cpus || !proc || ckpt_proc_read_stat(proc, &st) < 0 || st.processor < 0 ||
	    st.processor >= CPU_SETSIZE || !CPU_ISSET(st.processor, &dc->cpus))
		return;
	CPU_ZERO(&one);
	CPU_SET(st.processor, &one);
	(void)sched_setaffinity(0, sizeof(one), &one);
}

void dump_cpu_back(const struct dump_cpu *dc)
{
	if (dc->have_cpus)
		(void)sched_setaffinity(0, sizeof(dc->cpus), &dc->cpus);
}

int dump_harvest_only(pid_t pid, unsigned int timeout_ms, struct ckpt_tracker *t,
		      const struct dump_cpu *cpu, struct ckpt_range_set *ret, uint64_t *ret_ns)
{
	struct ckpt_track_stats ts = { 0 };
	struct ckpt_inject *inj;
	uint64_t t0 = now_ns(), t1 = 0, t2 = 0;
	int r, e;

	r = ckpt_inject_seize_timeout(pid, CKPT_INJECT_NO_XSTATE, timeout_ms, &inj);
	if (r == 0) {
		dump_cpu_near(cpu, ckpt_inject_task_proc(inj));
		ckpt_inject_set_call_cpu(inj, sched_getcpu());
		t1 = now_ns();
		r = ckpt_track_harvest(t, inj, ret, &ts);
		t2 = now_ns();
		e = ckpt_inject_release(inj);
		if (r == 0 && e < 0)
			r = e;
	}
	*ret_ns = now_ns() - t0;
	dump_cpu_back(cpu);
	if (r < 0)
		return r;
	pr_debug("harvest-only freeze of pid %d: seize %.2f, harvest %.2f (%" PRIu64 " pages), release %.2f ms",
		 pid, (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6, ts.pages,
		 (double)(t0 + *ret_ns - t2) / 1e6);
	if (ckpt_track_sync(t) < 0)
		pr_warn("the tracking record of pid %d lags behind", pid);
	return 0;
}

/* ---- stages ---- */

static int check_parent(struct dump *d)
{
	char abs_parent[PATH_MAX], new_parent[PATH_MAX];
	_cleanup_free_ char *base_copy = NULL;
	const struct ckpt_image_inventory *inv;
	int r;

	if (!d->o->parent)
		return 0;
	r = ckpt_image_open(d->o->parent, NULL, &d->parent);
	if (r < 0)
		return r; /* logged by lib/image, naming the file */
	inv = ckpt_image_inventory(d->parent);
	if (!ckpt_image_identity_equal(&inv->identity, &d->id)) {
		pr_err("the parent '%s' is a checkpoint of pid %d started at %" PRIu64
		       " (boot %s), not of pid %d started at %" PRIu64 " (boot %s)",
		       d->o->parent, inv->identity.pid, inv->identity.start_time, inv->identity.boot_id,
		       d->id.pid, d->id.start_time, d->id.boot_id);
		return -EXDEV;
	}
	r = read_parent_generation(d);
	if (r < 0)
		return r;
	r = ckpt_track_attach(d->o->pid, &(struct ckpt_track_opts){ .rundir = d->o->rundir }, &d->tracker);
	if (r == -ENOENT) {
		pr_err("pid %d is not tracked any more: the pages written since '%s' are unknown",
		       d->o->pid, d->o->parent);
		return -ESTALE;
	}
	if (r < 0)
		return r == -EBUSY ? r : -ESTALE; /* lost: the reason is logged */
	{
		struct ckpt_chain *c;

		r = ckpt_chain_open(d->o->parent, NULL, &c);
		if (r < 0)
			return r;
		r = ckpt_chain_ranges(c, &d->parent_ranges);
		ckpt_chain_close(c);
		if (r < 0)
			return r;
	}
	if (ckpt_track_generation(d->tracker) != d->parent_generation) {
		pr_err("the tracking of pid %d was harvested since '%s' was taken (generation %" PRIu64
		       ", the parent has %" PRIu64 "): another command used it, so the pages written "
		       "since the parent are unknown", d->o->pid, d->o->parent,
		       ckpt_track_generation(d->tracker), d->parent_generation);
		return -ESTALE;
	}
	if (!realpath(d->o->parent, abs_parent) ||
	    new_dir_parent(d->o->dir, new_parent, sizeof(new_parent)) < 0)
		return neg_errno();
	base_copy = strdup(d->o->dir);
	if (!base_copy)
		return -ENOMEM;
	{
		char full_new[PATH_MAX * 2];

		snprintf(full_new, sizeof(full_new), "%s/%s", new_parent, basename(base_copy));
		d->parent_rel = relative_path(full_new, abs_parent);
	}
	if (!d->parent_rel)
		return -ENOMEM;
	d->delta = true;
	return 0;
}

/* A delta that cannot be made: fail, or take a full dump with --auto-full. */
static int parent_or_full(struct dump *d)
{
	int r = check_parent(d);

	if (r == -ESTALE && d->o->auto_full) {
		snprintf(d->st->fallback, sizeof(d->st->fallback),
			 "the pages written since '%s' are unknown", d->o->parent);
		pr_warn("%s: taking a full dump (--auto-full)", d->st->fallback);
		ckpt_image_close(d->parent);
		d->parent = NULL;
		free(d->parent_rel);
		d->parent_rel = NULL;
		if (d->tracker) {
			ckpt_track_close(d->tracker);
			d->tracker = NULL;
		}
		d->delta = false;
		return 0;
	}
	return r;
}

static int reserve(struct dump *d)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	struct ckpt_proc_status s;
	uint64_t bytes = 64 << 20;

	/* Kill mode streams the pages into the writer in chunks: no buffer for them all. */
	if (d->o->after == CKPT_DUMP_KILL)
		return 0;
	/* A full dump saves about the anonymous and shared RSS: populate that much now. */
	if (!d->delta && ckpt_proc_open(NULL, d->o->pid, &p) == 0 && ckpt_proc_read_status(p, &s) == 0) {
		bytes = (s.rss_anon_kb + s.rss_shmem_kb + s.vm_swap_kb) * 1024;
		bytes += bytes / 8 + (16 << 20);
		ckpt_proc_status_done(&s);
	}
	return page_copy_reserve(&d->pages, bytes);
}

/*
 * smaps walks the page tables (4.4 ms per GiB resident here): read the
 * VmFlags now, just before the freeze; collect checks in the freeze that
 * every mapping is as it was (maps: range, protection, object) and reads
 * smaps itself if one is not. In kill mode the freeze lasts until the
 * images are written anyway: collect reads smaps in it, exactly.
 */
static void read_hint(struct dump *d)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;

	if (d->o->after == CKPT_DUMP_KILL)
		return;
	if (ckpt_proc_open_live(NULL, d->o->pid, &p) < 0 ||
	    ckpt_proc_read_maps(p, CKPT_MAPS_VMFLAGS, &d->hint) < 0)
		d->hint = NULL; /* collect reads smaps in the freeze */
}

/*
 * What the hint cannot see: a flag changed on a whole mapping (madvise,
 * mlock, mseal) between the read and the freeze, the mapping otherwise the
 * same. Once the process runs again, read smaps once more: a mapping
 * recorded with other flags than it has now was changed around the freeze,
 * and the checkpoint may hold the flags of just before it. Say so. (The
 * uffd-wp flag is left out: the harvest registers new mappings after
 * collect.)
 */
static void check_hint(struct dump *d)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *now = NULL;
	const struct ckpt_state_mm *mm = &d->state->mm;
	const uint32_t mask = ~(uint32_t)CKPT_STATE_VMF_UFFD_WP;
	size_t k = 0;

	if (!d->hint)
		return;
	if (ckpt_proc_open_live(NULL, d->o->pid, &p) < 0 || ckpt_proc_read_maps(p, CKPT_MAPS_VMFLAGS, &now) < 0) {
		pr_warn("cannot read the mappings of pid %d again after the freeze: a flag of a "
			"mapping (madvise, mlock) changed just before it would not be noticed", d->o->pid);
		return;
	}
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		const struct ckpt_state_vma *v = &mm->vmas[i];

		while (k < now->nr && now->v[k].end <= v->start)
			k++;
		if (k == now->nr)
			break;
		if (now->v[k].start != v->start || now->v[k].end != v->end || !now->v[k].has_vmflags)
			continue; /* changed after the freeze: cannot tell */
		if ((collect_vma_flags(&now->v[k]) & mask) != (v->vmflags & mask))
			pr_warn("the flags of mapping %#llx-%#llx of pid %d changed around the freeze "
				"(madvise, mlock): the checkpoint records %#x, the mapping has %#x now; "
				"dump again if the change came before it", (unsigned long long)v->start,
				(unsigned long long)v->end, d->o->pid, v->vmflags & mask,
				collect_vma_flags(&now->v[k]) & mask);
	}
}

/* Once frozen: run next to the target, and its remote calls next to us. */
static void place_near(struct dump *d)
{
	dump_cpu_near(&d->cpu, ckpt_inject_task_proc(d->inj));
	ckpt_inject_set_call_cpu(d->inj, sched_getcpu());
	d->near = true;
}

/* Before the threads run again, and before the writer starts its threads. */
static void place_back(struct dump *d)
{
	if (!d->near)
		return;
	dump_cpu_back(&d->cpu);
	d->near = false;
}

/*
 * The pipes and fifos of the process, for the report: restore needs a way
 * to reconnect those of fds 0-2 (ckpt-restore(1)), and what waited in
 * their buffers is lost. That loss is said here, once per pipe, as a warning.
 */
static int list_pipes(const struct ckpt_state *s, struct ckpt_dump_stats *st)
{
	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];
		struct ckpt_dump_pipe *p;
		bool peer;

		if (f->kind != CKPT_STATE_FD_PIPE && f->kind != CKPT_STATE_FD_FIFO)
			continue;
		peer = f->kind == CKPT_STATE_FD_PIPE && ckpt_state_pipe_peer(s, f);
		p = reallocarray(st->pipes, st->nr_pipes + 1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		st->pipes = p;
		p = &st->pipes[st->nr_pipes];
		*p = (struct ckpt_dump_pipe){ .fd = f->fd, .fifo = f->kind == CKPT_STATE_FD_FIFO,
					      .ino = f->id.ino, .accmode = (int)(f->flags & O_ACCMODE),
					      .peer_inside = peer, .queued = f->pipe_queued };
		if (p->fifo && f->path && !(p->path = strdup(f->path)))
			return -ENOMEM;
		st->nr_pipes++;
		if (f->pipe_queued && p->fifo)
			pr_warn("%" PRIu64 " byte%s in fifo '%s' on fd %d of pid %d will not be restored "
				"(the data in a pipe is not saved)", f->pipe_queued,
				f->pipe_queued > 1 ? "s" : "", f->path ? f->path : "?", f->fd, s->process.pid);
		else if (f->pipe_queued)
			pr_warn("%" PRIu64 " byte%s in pipe:[%" PRIu64 "] on fd %d of pid %d will not be "
				"restored (the data in a pipe is not saved)", f->pipe_queued,
				f->pipe_queued > 1 ? "s" : "", f->id.ino, f->fd, s->process.pid);
	}
	return 0;
}

/* The children of the frozen process (it cannot fork now), with their names. */
static int find_children(struct dump *d)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_free_ pid_t *kids = NULL;
	size_t nr = 0;
	int r;

	r = ckpt_proc_open(NULL, d->o->pid, &p);
	if (r == 0)
		r = ckpt_proc_list_children(p, &kids, &nr);
	if (r < 0) {
		pr_err("cannot list the children of pid %d: %s", d->o->pid, errstr(r));
		return r;
	}
	if (!nr)
		return 0;
	d->st->children = calloc(nr, sizeof(*d->st->children));
	if (!d->st->children)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		_cleanup_proc_ struct ckpt_proc *k = NULL;
		struct ckpt_dump_child *c = &d->st->children[i];
		struct ckpt_proc_stat st;

		c->pid = kids[i];
		if (ckpt_proc_open(NULL, kids[i], &k) == 0 && ckpt_proc_read_stat(k, &st) == 0) {
			snprintf(c->comm, sizeof(c->comm), "%s", st.comm);
			c->zombie = st.state == 'Z';
		} else {
			strcpy(c->comm, "?");
		}
	}
	d->st->nr_children = nr;
	return 0;
}

static void children_text(const struct ckpt_dump_stats *st, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < st->nr_children && n + 32 < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%d (%s%s)", i ? ", " : "", st->children[i].pid,
				      st->children[i].comm, st->children[i].zombie ? ", zombie" : "");
	if (n + 32 >= len)
		snprintf(buf + n, len - n, ", ...");
}

/*
 * In the freeze, before anything is armed or copied: what restore would
 * refuse (the judge of lib/state, the same restore applies), and children
 * that are not in the checkpoint. Refused: the process is released as it
 * was, whatever the mode.
 */
static int judge(struct dump *d)
{
	struct ckpt_dump_stats *st = d->st;
	bool orphans, unrestorable;
	size_t live = 0;
	char kids[1024];
	int r = ckpt_state_unrestorable(d->state, &st->unrestorable);

	if (r < 0 || (r = find_children(d)) < 0)
		return r;
	unrestorable = st->unrestorable->nr && !d->o->allow_unrestorable;
	for (size_t i = 0; i < st->nr_children; i++)
		live += !st->children[i].zombie;
	/* A zombie is reaped by whoever inherits it: nothing that runs is orphaned. */
	orphans = live && d->o->after == CKPT_DUMP_KILL && !d->o->allow_orphans;
	children_text(st, kids, sizeof(kids));
	if (st->nr_children && !orphans)
		pr_warn("pid %d has %zu child%s that %s not in the checkpoint (only the process itself "
			"is dumped; a restore brings it back without them): %s", d->o->pid,
			st->nr_children, st->nr_children > 1 ? "ren" : "", st->nr_children > 1 ? "are" : "is",
			kids);
	if (unrestorable) {
		pr_err("pid %d holds %zu object%s that restore cannot recreate (--allow-unrestorable "
		       "dumps anyway):", d->o->pid, st->unrestorable->nr, st->unrestorable->nr > 1 ? "s" : "");
		for (size_t i = 0; i < st->unrestorable->nr; i++)
			pr_err("  %s: %s", st->unrestorable->v[i].what, st->unrestorable->v[i].reason);
	}
	if (orphans)
		pr_err("pid %d has %zu child%s that the checkpoint does not hold and killing it would "
		       "orphan (only the process itself is dumped; --allow-orphans kills it anyway, "
		       "--leave-running keeps it): %s", d->o->pid, st->nr_children,
		       st->nr_children > 1 ? "ren" : "", kids);
	if (!unrestorable && !orphans)
		return 0;
	st->refused = true;
	return -EPERM;
}

static int track(struct dump *d)
{
	struct ckpt_track_stats ts;
	uint64_t t0 = now_ns();
	int r;

	ckpt_range_set_init(&d->dirty);
	if (d->delta) {
		r = ckpt_track_harvest(d->tracker, d->inj, &d->dirty, &ts);
		/* What the copy before the freeze could not read: copied now. */
		for (size_t i = 0; r == 0 && i < d->pre_failed.nr; i++)
			r = ckpt_range_set_add(&d->dirty, d->pre_failed.v[i].start, d->pre_failed.v[i].end);
		if (r < 0)
			return r;
		ckpt_range_set_normalize(&d->dirty);
	} else if (d->o->after != CKPT_DUMP_KILL) {
		/* The next dump will be a delta of this one: arm, or re-arm what is armed. */
		r = ckpt_track_attach(d->o->pid, &(struct ckpt_track_opts){ .rundir = d->o->rundir },
				      &d->tracker);
		if (r == 0) {
			struct ckpt_range_set unused;

			r = ckpt_track_harvest(d->tracker, d->inj, &unused, &ts);
			ckpt_range_set_done(&unused);
		} else if (r == -ENOENT || r == -ESTALE) {
			r = ckpt_track_arm(d->inj, &(struct ckpt_track_opts){ .rundir = d->o->rundir },
					   &d->tracker);
		}
		if (r < 0)
			return r;
	}
	d->st->generation = d->tracker ? ckpt_track_generation(d->tracker) : 0;
	d->st->track_ns = now_ns() - t0;
	return 0;
}

/*
 * A delta that leaves the process running: harvest in a freeze of its own
 * (seize, harvest, release), then copy those pages while the process runs.
 * The freeze of the checkpoint harvests again and copies only what was
 * written meanwhile (and what could not be read), as a second layer over
 * this one: the process is stopped twice, each time briefly, instead of
 * once for the whole copy.
 */
static int precopy(struct dump *d)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	struct page_stream stream = { .failed = &d->pre_failed };
	uint64_t t0;
	int r;

	r = dump_harvest_only(d->o->pid, d->o->timeout_ms, d->tracker, &d->cpu, &d->pre,
			      &d->st->prefreeze_ns);
	if (r < 0)
		return r;
	t0 = now_ns();
	r = ckpt_proc_open_live(NULL, d->o->pid, &p);
	if (r == 0)
		r = ckpt_proc_read_maps(p, 0, &maps);
	if (r == 0) {
		stream.proc = p;
		r = page_copy_stream(&d->pre_pages, &stream, maps, &d->pre);
	}
	d->st->precopy_ns = now_ns() - t0;
	d->st->pages_precopied = d->pre_pages.pages_data;
	if (r < 0)
		pr_err("cannot copy the written pages of pid %d while it runs: %s", d->o->pid, errstr(r));
	return r;
}

static int collect(struct dump *d)
{
	struct ckpt_dump_collect_opts co = { 0 };
	int parked = -1, r;
	uint64_t t0 = now_ns();

	/* The fd the tracker parks is ckpt's, not the program's. */
	if (d->tracker) {
		parked = ckpt_track_parked_fd(d->tracker);
	} else {
		struct ckpt_tracker *t = NULL;

		if (ckpt_track_attach(d->o->pid, &(struct ckpt_track_opts){ .rundir = d->o->rundir }, &t) == 0) {
			parked = ckpt_track_parked_fd(t);
			ckpt_track_close(t);
		}
	}
	if (parked >= 0) {
		co.ignore_fds = &parked;
		co.nr_ignore_fds = 1;
	}
	co.vmflags_hint = d->hint;
	co.ghost_limit = d->o->ghost_limit;
	if (d->o->ext_unix_sk)
		co.flags |= CKPT_COLLECT_EXT_UNIX_SK;
	if (d->o->tcp_established)
		co.flags |= CKPT_COLLECT_TCP_ESTABLISHED;
	r = ckpt_dump_collect(d->inj, &co, &d->state);
	d->st->collect_ns = now_ns() - t0;
	return r;
}

static int write_track_doc(struct dump *d, struct ckpt_image_writer *w)
{
	if (!d->tracker)
		return 0;
	return dump_put_track_doc(w, ckpt_track_generation(d->tracker), ckpt_track_parked_fd(d->tracker));
}

static int open_writer(struct dump *d, struct ckpt_image_writer **ret)
{
	struct ckpt_image_writer_opts wo = {
		.identity = d->id,
		.parent = d->parent_rel,
		.level = d->o->level,
	};

	return ckpt_image_writer_new(d->o->dir, &wo, ret);
}

/* Bytes copied from a frozen process before the writer takes them. */
#define STREAM_CHUNK (8UL << 20)

struct stream_ctx {
	struct dump *d;
	struct ckpt_image_writer *w;
};

static int stream_sink(struct page_copy *pc, void *userdata)
{
	struct stream_ctx *sc = userdata;
	int r = check_interrupted(sc->d, "while its pages were copied");

	return r < 0 ? r : dump_add_pages(sc->w, pc);
}

/*
 * Kill mode: the process stays frozen until the images are written anyway,
 * so its pages go straight from it to the compressing writer, a chunk at a
 * time: no buffer the size of its memory to populate, and the copy overlaps
 * the compression.
 */
static int stream_frozen(struct dump *d)
{
	struct page_stream stream = {
		.proc = ckpt_inject_task_proc(d->inj),
		.inj = d->inj, /* frozen: a read that fails is an error, not a range to retry */
		.chunk = STREAM_CHUNK,
		.sink = stream_sink,
	};
	struct stream_ctx sc = { .d = d };
	int r;

	r = open_writer(d, &d->w);
	if (r < 0)
		return r;
	sc.w = d->w;
	stream.userdata = &sc;
	return page_copy_stream(&d->pages, &stream, d->maps, d->delta ? &d->dirty : NULL);
}

static int write_images(struct dump *d)
{
	_cleanup_image_writer_ struct ckpt_image_writer *w = TAKE_PTR(d->w);
	struct ckpt_image_writer_stats ws;
	uint64_t t0 = now_ns();
	int r = 0;

	if (!w)
		r = open_writer(d, &w);
	if (r < 0)
		return r;
	r = dump_put_state(w, d->state);
	if (r == 0)
		r = write_track_doc(d, w);
	if (r == 0 && d->pre.nr) {
		/* The copy made while it ran, then what the freeze copied, over it. */
		r = dump_add_pages(w, &d->pre_pages);
		if (r == 0)
			r = ckpt_image_writer_new_layer(w);
	}
	if (r == 0)
		r = dump_add_pages(w, &d->pages);
	if (r == 0)
		r = check_interrupted(d, "before the commit"); /* the last chance */
	if (r < 0)
		return r;
	r = ckpt_image_writer_commit(w);
	if (r < 0)
		return r;
	ckpt_image_writer_get_stats(w, &ws);
	d->st->pages_data = ws.data_pages;
	d->st->bytes_raw = ws.data_pages * CKPT_IMAGE_PAGE_SIZE; /* what was compressed: no zero page */
	d->st->pages_zero = ws.zero_pages;
	d->st->pages_hole = d->pages.pages_hole + d->pre_pages.pages_hole; /* of the mappings */
	d->st->bytes_written = ws.pages_bytes;
	d->st->write_ns = now_ns() - t0;
	return 0;
}

static void dump_done(struct dump *d)
{
	if (d->inj)
		(void)ckpt_inject_release(d->inj);
	ckpt_track_close(d->tracker);
	ckpt_state_free(d->state);
	ckpt_vma_list_free(d->maps);
	ckpt_vma_list_free(d->hint);
	ckpt_range_set_done(&d->dirty);
	ckpt_range_set_done(&d->parent_ranges);
	ckpt_range_set_done(&d->pre);
	ckpt_range_set_done(&d->pre_failed);
	page_copy_done(&d->pages);
	page_copy_done(&d->pre_pages);
	ckpt_image_writer_free(d->w);
	ckpt_image_close(d->parent);
	free(d->parent_rel);
	free(d->exe);
}

int ckpt_dump_run(const struct ckpt_dump_opts *o, struct ckpt_dump_stats *st)
{
	struct dump d = { .o = o, .st = st };
	uint64_t t0 = now_ns(), t_freeze = 0;
	struct stat sb;
	int r;

	memset(st, 0, sizeof(*st));
	dump_cpu_init(&d.cpu);
	page_copy_init(&d.pages);
	page_copy_init(&d.pre_pages);
	ckpt_range_set_init(&d.pre);
	ckpt_range_set_init(&d.pre_failed);
	ckpt_range_set_init(&d.dirty);
	ckpt_range_set_init(&d.parent_ranges);
	if (lstat(o->dir, &sb) == 0) {
		pr_err("'%s' exists: a checkpoint is written to a new directory", o->dir);
		return -EEXIST;
	}
	if ((r = identity_of(&d)) < 0 || (r = parent_or_full(&d)) < 0 || (r = reserve(&d)) < 0 ||
	    (r = check_interrupted(&d, "before the freeze")) < 0)
		goto out;

	if (d.delta && o->after != CKPT_DUMP_KILL && (r = precopy(&d)) < 0) {
		if (ckpt_track_generation(d.tracker) != d.parent_generation)
			pr_err("the dirty pages since '%s' were consumed by this failed dump: "
			       "the next dump of pid %d must be full (or use --auto-full)", o->parent, o->pid);
		goto out;
	}
	read_hint(&d);
	if ((r = check_interrupted(&d, "before the freeze")) < 0)
		goto out;
	t_freeze = now_ns();
	r = ckpt_inject_seize_timeout(o->pid, 0, o->timeout_ms, &d.inj);
	if (r < 0)
		goto out;
	place_near(&d);
	if ((r = collect(&d)) < 0 || (r = judge(&d)) < 0 ||
	    (r = check_interrupted(&d, "in the freeze")) < 0 || (r = track(&d)) < 0)
		goto out;
	r = ckpt_proc_read_maps(ckpt_inject_task_proc(d.inj), 0, &d.maps);
	if (r < 0) {
		pr_err("cannot read the mappings of pid %d: %s", o->pid, errstr(r));
		goto out;
	}
	if (o->after == CKPT_DUMP_KILL) {
		/* No more remote syscalls: the writer's threads must not inherit one CPU. */
		place_back(&d);
		r = stream_frozen(&d);
	} else
		r = page_copy_collect(&d.pages, d.inj, d.maps, d.delta ? &d.dirty : NULL);
	if (r == 0 && d.delta) {
		struct ckpt_range_set now;

		ckpt_range_set_init(&now);
		r = page_saved_ranges(d.inj, d.maps, &now);
		/* Where the parent has pages, and where the copy before the freeze put some. */
		for (size_t i = 0; r == 0 && i < d.pre.nr; i++)
			r = ckpt_range_set_add(&d.parent_ranges, d.pre.v[i].start, d.pre.v[i].end);
		if (r == 0) {
			ckpt_range_set_normalize(&d.parent_ranges);
			r = page_copy_gone_holes(&d.pages, &d.parent_ranges, &now);
		}
		ckpt_range_set_done(&now);
	}
	place_back(&d);
	if (r < 0)
		goto out;
	st->delta = d.delta;
	st->copy_ns = d.pages.copy_ns;
	st->pages_scanned = d.pages.pages_scanned;
	st->bytes_raw = (d.pages.pages_data + d.pre_pages.pages_data) * CKPT_IMAGE_PAGE_SIZE;
	st->nr_threads = d.state->nr_threads;
	st->nr_vmas = d.state->mm.nr_vmas;
	st->nr_fds = d.state->nr_fds;
	if ((r = list_pipes(d.state, st)) < 0)
		goto out;

	/* Resume now; in kill mode it stays frozen until the images are safe. */
	if (o->after == CKPT_DUMP_LEAVE_STOPPED)
		kill(o->pid, SIGSTOP);
	if (o->after != CKPT_DUMP_KILL) {
		if (o->tcp_established) /* its connections run on: out of repair mode, unblocked */
			collect_tcp_undo(d.inj, d.state, o->pid);
		r = ckpt_inject_release(d.inj);
		d.inj = NULL;
		st->freeze_ns = now_ns() - t_freeze;
		if (r < 0)
			goto out;
		if (d.tracker && ckpt_track_sync(d.tracker) < 0)
			pr_warn("the tracking record of pid %d lags behind", o->pid);
		check_hint(&d);
	}
	r = write_images(&d);
	if (r < 0) {
		if (d.delta)
			pr_err("the dirty pages since '%s' were consumed by this failed dump: "
			       "the next dump of pid %d must be full (or use --auto-full)",
			       o->parent, o->pid);
		goto out;
	}
	if (o->after == CKPT_DUMP_KILL) {
		/*
		 * Connections saved with TCP_REPAIR close silently: no FIN, and no
		 * orphan socket left to hold the connection's ports (the block stays
		 * for restore).
		 */
		if (o->tcp_established)
			(void)collect_tcp_silence(d.inj, d.state, o->pid);
		kill(o->pid, SIGKILL);
		st->freeze_ns = now_ns() - t_freeze;
		(void)ckpt_inject_release(d.inj);
		d.inj = NULL;
	}
out:
	place_back(&d); /* before the release: the threads run with their own affinity */
	if (r < 0 && d.inj) {
		/* Never kill a process whose dump failed: let it run as it was. */
		int e;

		if (o->tcp_established && d.state)
			collect_tcp_undo(d.inj, d.state, o->pid);
		e = ckpt_inject_release(d.inj);

		if (e < 0)
			pr_err("pid %d could not be released cleanly: %s", o->pid, errstr(e));
		d.inj = NULL;
	}
	dump_done(&d);
	st->total_ns = now_ns() - t0;
	return r;
}

void ckpt_dump_stats_done(struct ckpt_dump_stats *st)
{
	for (size_t i = 0; i < st->nr_pipes; i++)
		free(st->pipes[i].path);
	free(st->pipes);
	st->pipes = NULL;
	st->nr_pipes = 0;
	ckpt_state_issues_free(st->unrestorable);
	st->unrestorable = NULL;
	free(st->children);
	st->children = NULL;
	st->nr_children = 0;
}
