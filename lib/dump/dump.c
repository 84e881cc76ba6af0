/* SPDX-License-Identifier: MIT */
/*
 * The dump pipeline of a process tree (the root and every descendant),
 * stage by stage; each per-process stage runs for every process of the
 * tree (struct dump_proc), the tree stages once:
 *   check_parent  per process: its parent checkpoint is of it, its tracking intact
 *                 (a process born since the parent is dumped in full)
 *   plan_copy     copied while running or in the freeze; room for what the
 *                 freeze copies, populated now
 *   precopy       leave running / stopped: a delta's pages, or the whole memory
 *                 of the root and of a process that shares little, copied while
 *                 it runs after a short freeze of its own (copy_while_running)
 *   freeze        seize every thread of every process of the tree (lib/dump/tree.c)
 *   collect       each process's state (ckpt_dump_collect)
 *   shared        pipes inside the tree (with their bytes), shared descriptions
 *   judge         refuse what restore cannot recreate, per process and of the tree
 *   track         arm (full) or harvest (delta, or copied while running) in the same freeze
 *   copy          the pages to save, into ckpt's memory (a child's pages still its
 *                 parent's named, not copied)
 *   resume        leave running / stopped (kill mode: stays frozen)
 *   write         compress; each process's checkpoint in its own directory
 *                 (proc-PID/, the root's at the top with tree.json); commit
 *                 the whole atomically
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
#include <ckpt/tree.h>

#include "compat/syscalls.h"
#include "dump/collect-internal.h"
#include "dump/collect_sockets.h"
#include "dump/dump-internal.h"
#include "dump/pages.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

/* One process of the tree. */
struct dump_proc {
	struct dump *d;
	pid_t pid;
	ssize_t node;                /* in d->tree; -1 before the freeze */
	struct ckpt_image_identity id;
	char *exe;
	char *parent_path;           /* its checkpoint in the parent; NULL: full */
	struct ckpt_image *parent;
	char *parent_rel;            /* parent path relative to its new checkpoint */
	uint64_t parent_generation;
	struct ckpt_tracker *tracker;
	struct ckpt_inject *inj;     /* borrowed from d->injs */
	struct ckpt_state *state;    /* borrowed from its tree node */
	struct ckpt_vma_list *maps;
	struct ckpt_vma_list *hint;  /* smaps, read just before the freeze; NULL: none */
	struct ckpt_range_set dirty;
	struct ckpt_range_set parent_ranges; /* where the parent chain holds pages */
	bool delta;
	struct page_copy pages;
	struct ckpt_image_writer *w; /* kill mode: opened in the freeze, pages streamed into it */
	/* A delta's pages copied before the freeze: what, what failed, the copy. */
	struct ckpt_range_set pre, pre_failed;
	struct page_copy pre_pages;
	bool copy_early;             /* its pages are copied while it runs (plan_copy) */
	unsigned int inherit_depth;  /* processes above it whose pages it holds in a line (INHERIT) */
	bool armed_new;              /* this dump armed its tracking (it had none): a failure disarms it */
	/*
	 * A full checkpoint that leaves it running: its memory was copied
	 * while it ran, into its writer (copy_while_running); the freeze copies what
	 * was written since, as a delta's does.
	 */
	bool running_copy;
	char fallback[256];          /* why its delta became full, or "" */
	int parked;                  /* its tracking's parked userfaultfd, or -1 */
};

struct dump {
	const struct ckpt_dump_opts *o;
	struct ckpt_dump_stats *st;
	struct dump_cpu cpu;         /* the caller's affinity, given back after the freeze */
	bool near;                   /* we run on the target's CPU */
	struct dump_proc *procs;     /* before the freeze: a guess; then one per live node, in tree order */
	size_t nr_procs;
	struct ckpt_tree *tree;
	struct ckpt_inject **injs;   /* per node of the tree (NULL: a zombie, or released) */
	bool delta;                  /* a delta of o->parent (some processes may be full) */
	char *abs_parent;            /* realpath of o->parent */
	char *new_path;              /* absolute path of the new checkpoint */
	struct ckpt_image_writer *top; /* the root's writer: the tree's checkpoint */
};

/* ---- helpers ---- */

static bool is_root(const struct dump_proc *p)
{
	return p->pid == p->d->o->pid; /* also before the freeze, when p->node is not known yet */
}

/* Asked between stages, never after the commit: -EINTR aborts the dump. */
static int check_interrupted(const struct dump *d, const char *where)
{
	if (!d->o->interrupted || !d->o->interrupted(d->o->userdata))
		return 0;
	pr_info("interrupted %s: the dump of pid %d is abandoned", where, d->o->pid);
	return -EINTR;
}


/*
 * A process of the tree that ended while frozen was not ended by ckpt: a
 * SIGKILL from elsewhere (the OOM killer, kill -9). Recorded once, in the
 * stats; @committed says whether its pages had all been read before it.
 */
static bool note_died(struct dump *d, bool committed)
{
	struct ckpt_dump_stats *st = d->st;

	if (st->died_pid)
		return true;
	for (size_t i = 0; d->injs && d->tree && i < d->tree->nr_nodes; i++) {
		int status = -1;

		/* Still in its stop: alive (instant); else it ends within moments. */
		if (!d->injs[i] || ckpt_inject_check_frozen(d->injs[i]) == 0 ||
		    ckpt_inject_ended(d->injs[i], 50, &status) <= 0)
			continue;
		st->died_pid = d->tree->nodes[i].pid;
		describe_wait_status(status, st->died_how, sizeof(st->died_how));
		if (!committed)
			pr_err("pid %d (%s) died during the dump%s%s, not by ckpt's hand: nothing was committed "
			       "to '%s' (its memory may have changed as it exited)", st->died_pid,
			       d->tree->nodes[i].comm, *st->died_how ? ": " : "", st->died_how, d->o->dir);
		return true;
	}
	return false;
}

/*
 * Once the pages are read: was every process still frozen? One that a
 * SIGKILL reached meanwhile may have had its memory written by its own
 * exit (robust futexes, the tid of clone(CLONE_CHILD_CLEARTID)): no
 * checkpoint of it. One that dies after this check died after every read.
 */
static int check_frozen(struct dump *d)
{
	for (size_t i = 0; d->injs && i < d->tree->nr_nodes; i++) {
		int r;

		if (!d->injs[i] || (r = ckpt_inject_check_frozen(d->injs[i])) == 0)
			continue;
		if (r == -ESRCH && !note_died(d, false)) {
			/* Killed, still on its way out. */
			d->st->died_pid = d->tree->nodes[i].pid;
			pr_err("pid %d (%s) was killed during the dump, not by ckpt: nothing was committed to '%s' "
			       "(its memory may have changed as it exited)", d->st->died_pid, d->tree->nodes[i].comm,
			       d->o->dir);
		} else if (r != -ESRCH) {
			pr_err("cannot check that pid %d is still frozen: %s", d->tree->nodes[i].pid, errstr(r));
		}
		return r;
	}
	return 0;
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

static int read_parent_generation(struct dump_proc *p)
{
	_cleanup_json_ json_object *o = NULL;
	json_object *v;
	int r = ckpt_image_get_json(p->parent, TRACK_DOC, &o);

	if (r == -ENOENT) {
		pr_err("'%s' records no dirty tracking: it was not taken with --leave-running "
		       "or --leave-stopped, so nothing tells what changed since", p->parent_path);
		return -ESTALE;
	}
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(o, "generation", &v) || !json_object_is_type(v, json_type_int)) {
		pr_err("'%s/%s' is corrupt: no generation", p->parent_path, TRACK_DOC);
		return -EBADMSG;
	}
	p->parent_generation = json_object_get_uint64(v);
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

/*
 * Seize @pid alone (every thread; @flags: CKPT_INJECT_GONE_OK or 0), run
 * @fn on it frozen, release it; @ret_ns: how long it was stopped. ckpt runs
 * next to it meanwhile (@cpu).
 */
static int freeze_alone(pid_t pid, unsigned int flags, unsigned int timeout_ms, const struct dump_cpu *cpu,
			int (*fn)(struct ckpt_inject *inj, void *arg), void *arg, uint64_t *ret_ns)
{
	uint64_t t0 = now_ns();
	struct ckpt_inject *inj;
	int r, e;

	r = ckpt_inject_seize_timeout(pid, CKPT_INJECT_NO_XSTATE | flags, timeout_ms, &inj);
	if (r == 0) {
		dump_cpu_near(cpu, ckpt_inject_task_proc(inj));
		ckpt_inject_set_call_cpu(inj, sched_getcpu());
		r = fn(inj, arg);
		e = ckpt_inject_release(inj);
		if (r == 0 && e < 0)
			r = e;
	}
	*ret_ns = now_ns() - t0;
	dump_cpu_back(cpu);
	return r;
}

struct harvest_arg {
	struct ckpt_tracker *t;
	struct ckpt_range_set *ret;
	struct ckpt_track_stats ts;
	uint64_t t1, t2; /* the harvest's start and end */
};

static int harvest_frozen(struct ckpt_inject *inj, void *arg)
{
	struct harvest_arg *h = arg;
	int r;

	h->t1 = now_ns();
	r = ckpt_track_harvest(h->t, inj, h->ret, &h->ts);
	h->t2 = now_ns();
	return r;
}

int dump_harvest_only(pid_t pid, unsigned int flags, unsigned int timeout_ms, struct ckpt_tracker *t,
		      const struct dump_cpu *cpu, struct ckpt_range_set *ret, uint64_t *ret_ns)
{
	struct harvest_arg h = { .t = t, .ret = ret };
	uint64_t t0 = now_ns();
	int r = freeze_alone(pid, flags, timeout_ms, cpu, harvest_frozen, &h, ret_ns);

	if (r < 0)
		return r;
	/* scripts/bench-threads reads this line. */
	pr_debug("harvest-only freeze of pid %d: seize %.2f, harvest %.2f (%" PRIu64 " pages), release %.2f ms",
		 pid, (double)(h.t1 - t0) / 1e6, (double)(h.t2 - h.t1) / 1e6, h.ts.pages,
		 (double)(t0 + *ret_ns - h.t2) / 1e6);
	if (ckpt_track_sync(t) < 0)
		pr_warn("the tracking record of pid %d lags behind", pid);
	return 0;
}

/* ---- stages ---- */

/* The checkpoint of process @p in the parent tree: the parent itself for the root. */
static int parent_of(struct dump_proc *p, bool root)
{
	struct stat sb;

	if (root)
		p->parent_path = strdup(p->d->o->parent);
	else if (asprintf(&p->parent_path, "%s/proc-%d", p->d->o->parent, (int)p->pid) < 0)
		p->parent_path = NULL;
	if (!p->parent_path)
		return -ENOMEM;
	if (root || stat(p->parent_path, &sb) == 0)
		return 1;
	/* Born since the parent: a full checkpoint of its own. */
	free(p->parent_path);
	p->parent_path = NULL;
	return 0;
}

/* Where @p's checkpoint goes, relative path to its parent checkpoint. */
static int parent_rel_of(struct dump_proc *p, bool root)
{
	_cleanup_free_ char *abs_parent = NULL, *full_new = NULL;

	if (!(abs_parent = realpath(p->parent_path, NULL)))
		return neg_errno();
	if (root)
		full_new = strdup(p->d->new_path);
	else if (asprintf(&full_new, "%s/proc-%d", p->d->new_path, (int)p->pid) < 0)
		full_new = NULL;
	if (!full_new)
		return -ENOMEM;
	p->parent_rel = relative_path(full_new, abs_parent);
	return p->parent_rel ? 0 : -ENOMEM;
}

static int check_parent(struct dump_proc *p, bool root)
{
	const struct ckpt_image_inventory *inv;
	int r;

	if (!p->d->o->parent || (r = parent_of(p, root)) == 0)
		return 0;
	if (r < 0)
		return r;
	r = ckpt_image_open(p->parent_path, NULL, &p->parent);
	if (r < 0)
		return r; /* logged by lib/image, naming the file */
	inv = ckpt_image_inventory(p->parent);
	if (!ckpt_image_identity_equal(&inv->identity, &p->id)) {
		pr_err("the parent '%s' is a checkpoint of pid %d started at %" PRIu64
		       " (boot %s), not of pid %d started at %" PRIu64 " (boot %s)",
		       p->parent_path, inv->identity.pid, inv->identity.start_time, inv->identity.boot_id,
		       p->id.pid, p->id.start_time, p->id.boot_id);
		return -EXDEV;
	}
	r = read_parent_generation(p);
	if (r < 0)
		return r;
	r = ckpt_track_attach(p->pid, &(struct ckpt_track_opts){ .rundir = p->d->o->rundir }, &p->tracker);
	if (r == -ENOENT) {
		pr_err("pid %d is not tracked any more: the pages written since '%s' are unknown",
		       p->pid, p->parent_path);
		return -ESTALE;
	}
	if (r < 0)
		return r == -EBUSY ? r : -ESTALE; /* lost: the reason is logged */
	{
		struct ckpt_chain *c;

		r = ckpt_chain_open(p->parent_path, NULL, &c);
		if (r < 0)
			return r;
		r = ckpt_chain_ranges(c, &p->parent_ranges);
		ckpt_chain_close(c);
		if (r < 0)
			return r;
	}
	if (ckpt_track_generation(p->tracker) != p->parent_generation) {
		pr_err("the tracking of pid %d was harvested since '%s' was taken (generation %" PRIu64
		       ", the parent has %" PRIu64 "): another command used it, so the pages written "
		       "since the parent are unknown", p->pid, p->parent_path,
		       ckpt_track_generation(p->tracker), p->parent_generation);
		return -ESTALE;
	}
	if ((r = parent_rel_of(p, root)) < 0)
		return r;
	p->delta = true;
	return 0;
}

/* A delta that cannot be made: fail, or take a full dump with --auto-full. */
static int parent_or_full(struct dump_proc *p, bool root)
{
	int r = check_parent(p, root);

	if (r == -ESTALE && p->d->o->auto_full) {
		snprintf(p->fallback, sizeof(p->fallback), "the pages written since '%s' are unknown",
			 p->parent_path);
		pr_warn("%s: taking a full dump of pid %d (--auto-full)", p->fallback, p->pid);
		ckpt_image_close(p->parent);
		p->parent = NULL;
		free(p->parent_rel);
		p->parent_rel = NULL;
		if (p->tracker) {
			ckpt_track_close(p->tracker);
			p->tracker = NULL;
		}
		p->delta = false;
		return 0;
	}
	return r;
}

/*
 * How a process's pages are copied, and room for them before the freeze.
 * Kill mode streams them from the frozen process into its writer: no room.
 * Otherwise a delta's, the root's, and those of a process that shares
 * little of its memory (its proportional share of its anonymous memory is
 * at least 3/4 of it) are copied while it runs (copy_while_running): room
 * for what the freeze adds. The others are copied in the freeze, where
 * what they still share with their parent is named, not copied: room for
 * their proportional share.
 */
static int plan_copy(struct dump_proc *p)
{
	_cleanup_proc_ struct ckpt_proc *pr = NULL;
	struct ckpt_proc_status s;
	struct ckpt_proc_pss pss;
	uint64_t bytes = 64 << 20;

	if (p->d->o->after == CKPT_DUMP_KILL)
		return 0;
	p->copy_early = p->delta || is_root(p);
	if (p->copy_early || ckpt_proc_open(NULL, p->pid, &pr) < 0)
		return page_copy_reserve(&p->pages, bytes);
	if (ckpt_proc_read_pss(pr, &pss) == 0) {
		p->copy_early = pss.anon_kb * 4 >= pss.anon_rss_kb * 3;
		bytes = p->copy_early ? bytes : (pss.anon_kb + pss.shmem_kb + pss.swap_kb) * 1024;
	} else if (ckpt_proc_read_status(pr, &s) == 0) {
		bytes = (s.rss_anon_kb + s.rss_shmem_kb + s.vm_swap_kb) * 1024;
		ckpt_proc_status_done(&s);
	}
	if (!p->copy_early)
		bytes += bytes / 8 + (16 << 20);
	return page_copy_reserve(&p->pages, bytes);
}

/*
 * smaps walks the page tables (4.4 ms per GiB resident here): read the
 * VmFlags now, just before the freeze; collect checks in the freeze that
 * every mapping is as it was (maps: range, protection, object) and reads
 * smaps itself if one is not. In kill mode the freeze lasts until the
 * images are written anyway: collect reads smaps in it, exactly.
 */
static void read_hint(struct dump_proc *p)
{
	_cleanup_proc_ struct ckpt_proc *pr = NULL;

	if (p->d->o->after == CKPT_DUMP_KILL)
		return;
	if (ckpt_proc_open_live(NULL, p->pid, &pr) < 0 ||
	    ckpt_proc_read_maps(pr, CKPT_MAPS_VMFLAGS, &p->hint) < 0)
		p->hint = NULL; /* collect reads smaps in the freeze */
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
static void check_hint(struct dump_proc *p)
{
	_cleanup_proc_ struct ckpt_proc *pr = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *now = NULL;
	const struct ckpt_state_mm *mm = &p->state->mm;
	const uint32_t mask = ~(uint32_t)CKPT_STATE_VMF_UFFD_WP;
	size_t k = 0;

	if (!p->hint)
		return;
	if (ckpt_proc_open_live(NULL, p->pid, &pr) < 0 || ckpt_proc_read_maps(pr, CKPT_MAPS_VMFLAGS, &now) < 0) {
		pr_warn("cannot read the mappings of pid %d again after the freeze: a flag of a "
			"mapping (madvise, mlock) changed just before it would not be noticed", p->pid);
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
				(unsigned long long)v->end, p->pid, v->vmflags & mask,
				collect_vma_flags(&now->v[k]) & mask);
	}
}

/* Once frozen: run next to the root, and every process's remote calls next to us. */
static void place_near(struct dump *d)
{
	dump_cpu_near(&d->cpu, ckpt_inject_task_proc(d->injs[0]));
	for (size_t i = 0; i < d->tree->nr_nodes; i++)
		if (d->injs[i])
			ckpt_inject_set_call_cpu(d->injs[i], sched_getcpu());
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
 * The pipes and fifos of every process, for the report: restore needs a way
 * to reconnect those whose other end is outside the tree (ckpt-restore(1)),
 * and what waited in their buffers is lost; pipes with both ends in the
 * tree are made again with their bytes.
 */
static int list_pipes(const struct ckpt_tree *t, struct ckpt_dump_stats *st)
{
	for (size_t n = 0; n < t->nr_nodes; n++) {
		const struct ckpt_state *s = t->nodes[n].state;

		for (size_t i = 0; s && i < s->nr_fds; i++) {
			const struct ckpt_state_fd *f = &s->fds[i];
			const struct ckpt_tree_pipe *tp;
			struct ckpt_dump_pipe *p;

			if (f->kind != CKPT_STATE_FD_PIPE && f->kind != CKPT_STATE_FD_FIFO)
				continue;
			tp = f->kind == CKPT_STATE_FD_PIPE ? ckpt_tree_find_pipe(t, f->id.ino) : NULL;
			p = reallocarray(st->pipes, st->nr_pipes + 1, sizeof(*p));
			if (!p)
				return -ENOMEM;
			st->pipes = p;
			p = &st->pipes[st->nr_pipes];
			*p = (struct ckpt_dump_pipe){ .pid = s->process.pid, .fd = f->fd,
						      .fifo = f->kind == CKPT_STATE_FD_FIFO, .ino = f->id.ino,
						      .accmode = (int)(f->flags & O_ACCMODE),
						      .peer_inside = tp != NULL, .saved = tp != NULL,
						      .queued = tp ? tp->len : f->pipe_queued };
			if (p->fifo && f->path && !(p->path = strdup(f->path)))
				return -ENOMEM;
			st->nr_pipes++;
			if (tp || !f->pipe_queued)
				continue;
			if (p->fifo)
				pr_warn("%" PRIu64 " byte%s in fifo '%s' on fd %d of pid %d will not be restored "
					"(the data in a fifo is not saved)", f->pipe_queued,
					f->pipe_queued > 1 ? "s" : "", f->path ? f->path : "?", f->fd, s->process.pid);
			else
				pr_warn("%" PRIu64 " byte%s in pipe:[%" PRIu64 "] on fd %d of pid %d will not be "
					"restored (its other end is outside the checkpoint)", f->pipe_queued,
					f->pipe_queued > 1 ? "s" : "", f->id.ino, f->fd, s->process.pid);
		}
	}
	return 0;
}

static int list_processes(struct dump *d)
{
	const struct ckpt_tree *t = d->tree;
	struct ckpt_dump_stats *st = d->st;

	st->processes = calloc(t->nr_nodes, sizeof(*st->processes));
	if (!st->processes)
		return -ENOMEM;
	st->nr_processes = t->nr_nodes;
	for (size_t i = 0; i < t->nr_nodes; i++) {
		struct ckpt_dump_process *p = &st->processes[i];

		p->pid = t->nodes[i].pid;
		p->ppid = t->nodes[i].ppid;
		snprintf(p->comm, sizeof(p->comm), "%s", t->nodes[i].comm);
		p->zombie = t->nodes[i].zombie;
		p->threads = t->nodes[i].state ? t->nodes[i].state->nr_threads : 0;
	}
	for (size_t i = 0; i < d->nr_procs; i++)
		st->processes[d->procs[i].node].delta = d->procs[i].delta;
	return 0;
}

/* Move the issues of @from to the end of @to. */
static int add_issues(struct ckpt_state_issues *to, struct ckpt_state_issues *from, pid_t pid, bool tree)
{
	struct ckpt_state_issue *v = reallocarray(to->v, to->nr + from->nr + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	to->v = v;
	for (size_t i = 0; i < from->nr; i++) {
		struct ckpt_state_issue *e = &to->v[to->nr++];
		char *what;

		*e = from->v[i];
		/* In a tree, say whose. */
		if (tree && asprintf(&what, "pid %d: %s", (int)pid, e->what) >= 0) {
			free(e->what);
			e->what = what;
		}
	}
	from->nr = 0;
	return 0;
}

/*
 * In the freeze, before anything is armed or copied: what restore would
 * refuse (the judge of lib/state, the same restore applies, for each
 * process; the tree's own). Refused: every process is released as it was,
 * whatever the mode.
 */
static int judge(struct dump *d)
{
	struct ckpt_dump_stats *st = d->st;
	bool tree = d->tree->nr_nodes > 1;
	int r;

	st->unrestorable = calloc(1, sizeof(*st->unrestorable));
	if (!st->unrestorable)
		return -ENOMEM;
	for (size_t i = 0; i < d->nr_procs; i++) {
		_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = NULL;

		r = ckpt_state_unrestorable(d->procs[i].state, &l);
		if (r == 0)
			r = add_issues(st->unrestorable, l, d->procs[i].pid, tree);
		if (r < 0)
			return r;
	}
	if ((r = dump_tree_judge(d->tree, st->unrestorable)) < 0)
		return r;
	if (!st->unrestorable->nr || d->o->allow_unrestorable)
		return 0;
	pr_err("pid %d%s holds %zu object%s that restore cannot recreate (--allow-unrestorable "
	       "dumps anyway):", d->o->pid, tree ? " and its descendants" : "", st->unrestorable->nr,
	       st->unrestorable->nr > 1 ? "s" : "");
	for (size_t i = 0; i < st->unrestorable->nr; i++)
		pr_err("  %s: %s", st->unrestorable->v[i].what, st->unrestorable->v[i].reason);
	st->refused = true;
	return -EPERM;
}

/* Track the writes of @p (frozen by @inj) from now on: arm, or re-arm what is armed. */
static int arm(struct dump_proc *p, struct ckpt_inject *inj)
{
	struct ckpt_track_stats ts;
	int r = ckpt_track_attach(p->pid, &(struct ckpt_track_opts){ .rundir = p->d->o->rundir }, &p->tracker);

	if (r == 0) {
		struct ckpt_range_set unused;

		ckpt_range_set_init(&unused);
		r = ckpt_track_harvest(p->tracker, inj, &unused, &ts);
		ckpt_range_set_done(&unused);
	} else if (r == -ENOENT || r == -ESTALE) {
		r = ckpt_track_arm(inj, &(struct ckpt_track_opts){ .rundir = p->d->o->rundir }, &p->tracker);
		p->armed_new = r == 0;
	}
	return r;
}

static int track(struct dump_proc *p)
{
	struct ckpt_track_stats ts;
	int r;

	ckpt_range_set_init(&p->dirty);
	if (p->delta || p->running_copy) {
		r = ckpt_track_harvest(p->tracker, p->inj, &p->dirty, &ts);
		/* What the copy before the freeze could not read: copied now. */
		for (size_t i = 0; r == 0 && i < p->pre_failed.nr; i++)
			r = ckpt_range_set_add(&p->dirty, p->pre_failed.v[i].start, p->pre_failed.v[i].end);
		if (r < 0)
			return r;
		ckpt_range_set_normalize(&p->dirty);
	} else if (p->d->o->after != CKPT_DUMP_KILL) {
		/* The next dump will be a delta of this one. */
		return arm(p, p->inj);
	}
	return 0;
}

/* The fd where the tracking of @p parks its userfaultfd, -1 (not tracked), -EBUSY (locked by another command). */
static int parked_fd_of(struct dump_proc *p)
{
	struct ckpt_tracker *t = NULL;
	int parked = -1;

	if (p->tracker)
		return ckpt_track_parked_fd(p->tracker);
	parked = ckpt_track_attach(p->pid, &(struct ckpt_track_opts){ .rundir = p->d->o->rundir }, &t);
	if (parked == 0) {
		parked = ckpt_track_parked_fd(t);
		ckpt_track_close(t);
	}
	/* Locked (logged: who holds it): its uffd must not pass for the application's. */
	return parked == -EBUSY ? parked : parked < 0 ? -1 : parked;
}

static int collect(struct dump_proc *p)
{
	struct ckpt_dump_collect_opts co = { 0 };
	struct dump *d = p->d;
	int ignore[8], n = 0;

	/*
	 * The fd the tracker parks is ckpt's, not the program's; so is a
	 * copy of another tracked process's that a child inherited when it
	 * forked (the same number, the same file: kcmp).
	 */
	if (p->parked >= 0)
		ignore[n++] = p->parked;
	for (size_t i = 0; i < d->nr_procs && n < (int)ARRAY_SIZE(ignore); i++) {
		const struct dump_proc *q = &d->procs[i];
		bool dup = false;

		if (q == p || q->parked < 0)
			continue;
		for (int k = 0; k < n; k++)
			dup |= ignore[k] == q->parked;
		if (!dup && sys_kcmp(q->pid, p->pid, KCMP_FILE, (unsigned long)q->parked, (unsigned long)q->parked) == 0)
			ignore[n++] = q->parked;
	}
	co.ignore_fds = ignore;
	co.nr_ignore_fds = (size_t)n;
	co.vmflags_hint = p->hint;
	co.ghost_limit = p->d->o->ghost_limit;
	if (d->o->ext_unix_sk)
		co.flags |= CKPT_COLLECT_EXT_UNIX_SK;
	if (d->o->tcp_established)
		co.flags |= CKPT_COLLECT_TCP_ESTABLISHED;
	return ckpt_dump_collect(p->inj, &co, &p->state);
}

static int write_track_doc(struct dump_proc *p, struct ckpt_image_writer *w)
{
	if (!p->tracker)
		return 0;
	return dump_put_track_doc(w, ckpt_track_generation(p->tracker), ckpt_track_parked_fd(p->tracker));
}

/* The root's writer is the tree's checkpoint; every other process's is inside it. */
static int open_writer(struct dump_proc *p, struct ckpt_image_writer **ret)
{
	struct ckpt_image_writer_opts wo = {
		.identity = p->id,
		.parent = p->parent_rel,
		.level = p->d->o->level,
	};
	char name[32];

	if (is_root(p))
		return ckpt_image_writer_new(p->d->o->dir, &wo, ret);
	snprintf(name, sizeof(name), "proc-%d", (int)p->pid);
	return ckpt_image_writer_new_sub(p->d->top, name, &wo, ret);
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
static int stream_frozen(struct dump_proc *p, const struct page_cow *cow)
{
	struct page_stream stream = {
		.proc = ckpt_inject_task_proc(p->inj),
		.inj = p->inj, /* frozen: a read that fails is an error, not a range to retry */
		.cow = cow,
		.chunk = STREAM_CHUNK,
		.sink = stream_sink,
	};
	struct stream_ctx sc = { .d = p->d };
	int r;

	r = open_writer(p, &p->w);
	if (r < 0)
		return r;
	sc.w = p->w;
	if (is_root(p))
		p->d->top = TAKE_PTR(p->w); /* the tree's: owned by the dump */
	stream.userdata = &sc;
	return page_copy_stream(&p->pages, &stream, p->maps, p->delta ? &p->dirty : NULL);
}

/*
 * The parent of @p in the tree, frozen and copied before it (tree order),
 * whose checkpoint of this tree checkpoint saves the pages @p still shares
 * with it copy-on-write: @p's checkpoint names them instead of a copy.
 */
static bool parent_cow(struct dump_proc *p, struct page_cow *ret)
{
	pid_t ppid = p->d->tree->nodes[p->node].ppid;

	for (struct dump_proc *q = p->d->procs; q < p; q++) {
		if (q->pid != ppid || !q->inj || !q->maps)
			continue;
		/* A reader follows a line of processes holding one another's pages only so deep. */
		if (q->inherit_depth + 1 >= CKPT_IMAGE_INHERIT_DEPTH_MAX / 2)
			return false;
		*ret = (struct page_cow){ .proc = ckpt_inject_task_proc(q->inj), .inj = q->inj,
					  .maps = q->maps, .pid = q->pid };
		p->inherit_depth = q->inherit_depth + 1;
		return true;
	}
	return false;
}

/* Arm the tracking of @arg (a struct dump_proc, frozen by @inj) that had none. */
static int arm_new_frozen(struct ckpt_inject *inj, void *arg)
{
	struct dump_proc *p = arg;
	int r = ckpt_track_arm(inj, &(struct ckpt_track_opts){ .rundir = p->d->o->rundir }, &p->tracker);

	p->armed_new = r == 0;
	return r;
}

/*
 * A dump that leaves the processes running (or stopped), before its freeze:
 * a delta's written pages, or the whole memory of a full dump's root,
 * copied while the process runs, after a short freeze of its own that
 * takes the written pages from the tracking (a delta) or arms it (full).
 * The checkpoint's freeze then copies only what was written meanwhile, and
 * what could not be read, as a second layer over this one: the process is
 * stopped twice, each time briefly, instead of once for the whole copy
 * (track -D's first checkpoint does the same). A delta's pages wait in
 * memory; a full dump's go straight into the root's writer, compressed as
 * they come. The other processes of a full tree are copied in the freeze,
 * where what they still share with their parent is named, not copied.
 */
static int copy_while_running(struct dump_proc *p)
{
	bool whole = !p->delta;
	struct stream_ctx sc = { .d = p->d };
	struct page_stream stream = { .failed = &p->pre_failed };
	_cleanup_proc_ struct ckpt_proc *pr = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	uint64_t t0, ns = 0;
	int r;

	/* Another process of the tree may end before it is seized: no error, it is simply not in the tree. */
	unsigned int gone_ok = is_root(p) ? 0 : CKPT_INJECT_GONE_OK;

	if (whole) {
		/*
		 * Tracked already: attached, not harvested (what it wrote since
		 * its last harvest, the copy included, is harvested in the
		 * freeze, after the judge: a refused dump leaves its chain
		 * whole). Else armed in a freeze of its own.
		 */
		r = ckpt_track_attach(p->pid, &(struct ckpt_track_opts){ .rundir = p->d->o->rundir }, &p->tracker);
		if (r == -ENOENT || r == -ESTALE) {
			r = freeze_alone(p->pid, gone_ok, p->d->o->timeout_ms, &p->d->cpu, arm_new_frozen, p, &ns);
			if (r == 0 && ckpt_track_sync(p->tracker) < 0)
				pr_warn("the tracking record of pid %d lags behind", p->pid);
		}
	} else {
		r = dump_harvest_only(p->pid, gone_ok, p->d->o->timeout_ms, p->tracker, &p->d->cpu, &p->pre, &ns);
	}
	p->d->st->prefreeze_ns += ns;
	if (whole && r < 0 && r != -ESRCH && r != -EINTR) {
		/* Copied in the freeze then, where the judge and the arming say what is wrong, as before. */
		pr_debug("pid %d: its tracking could not be armed before the freeze (%s): copied in the freeze",
			 p->pid, errstr(r));
		p->copy_early = false;
		return 0;
	}
	if (r < 0)
		return r;
	t0 = now_ns();
	r = ckpt_proc_open_live(NULL, p->pid, &pr);
	if (r == 0)
		r = ckpt_proc_read_maps(pr, 0, &maps);
	if (r == 0 && whole) {
		/* The root's is the tree's, owned by the dump; another's is inside it. */
		struct ckpt_image_writer **w = is_root(p) ? &p->d->top : &p->w;

		r = open_writer(p, w);
		sc.w = *w;
		stream.chunk = STREAM_CHUNK;
		stream.sink = stream_sink;
		stream.userdata = &sc;
	}
	if (r == 0) {
		stream.proc = pr;
		r = page_copy_stream(&p->pre_pages, &stream, maps, whole ? NULL : &p->pre);
	}
	/* Where the first layer can hold pages: a mapping gone by the freeze gets a HOLE there. */
	if (r == 0 && whole)
		r = page_saved_ranges(NULL, maps, &p->parent_ranges);
	if (r == 0 && whole)
		r = ckpt_image_writer_new_layer(sc.w);
	p->running_copy = whole && r == 0;
	p->d->st->precopy_ns += now_ns() - t0;
	p->d->st->pages_precopied += p->pre_pages.pages_data;
	if (r < 0 && r != -EINTR && (r != -ESRCH || gone_ok == 0))
		pr_err("cannot copy the %s of pid %d while it runs: %s", whole ? "memory" : "written pages",
		       p->pid, errstr(r));
	return r;
}

static int disarm_frozen(struct ckpt_inject *inj, void *arg)
{
	struct dump_proc *p = arg;
	int r = ckpt_track_disarm(TAKE_PTR(p->tracker), inj);

	return r;
}

/*
 * A dump that failed or refused: the tracking it armed in a process that
 * had none goes again (copy_while_running arms before the judge has seen
 * the process), so that the process is as it was.
 */
static void disarm_new(struct dump *d)
{
	for (size_t i = 0; i < d->nr_procs; i++) {
		struct dump_proc *p = &d->procs[i];
		uint64_t ns;
		int r;

		if (!p->armed_new || !p->tracker || !p->pid)
			continue;
		if (p->inj)
			r = ckpt_track_disarm(TAKE_PTR(p->tracker), p->inj);
		else
			r = freeze_alone(p->pid, CKPT_INJECT_GONE_OK, d->o->timeout_ms, &d->cpu, disarm_frozen, p, &ns);
		if (r < 0 && r != -ESRCH)
			pr_warn("pid %d stays tracked after the failed dump ('ckpt track --stop -t %d' disarms it): %s",
				p->pid, p->pid, errstr(r));
		p->armed_new = false;
	}
}

/* A process of the tree that ended before the freeze: what was copied of it goes; the freeze will not find it. */
static void forget_early(struct dump_proc *p)
{
	pr_debug("pid %d ended before the freeze", p->pid);
	ckpt_image_writer_free(TAKE_PTR(p->w));
	page_copy_done(&p->pre_pages);
	page_copy_init(&p->pre_pages);
	ckpt_range_set_done(&p->pre);
	ckpt_range_set_init(&p->pre);
	p->copy_early = p->running_copy = false;
}

/* Copy the pages of process @p, frozen. */
static int copy(struct dump_proc *p)
{
	struct ckpt_dump_stats *st = p->d->st;
	struct page_cow cow;
	bool has_cow;
	int r;

	r = ckpt_proc_read_maps(ckpt_inject_task_proc(p->inj), 0, &p->maps);
	if (r < 0) {
		pr_err("cannot read the mappings of pid %d: %s", p->pid, errstr(r));
		return r;
	}
	has_cow = !is_root(p) && parent_cow(p, &cow);
	if (p->d->o->after == CKPT_DUMP_KILL)
		r = stream_frozen(p, has_cow ? &cow : NULL);
	else
		r = page_copy_collect(&p->pages, p->inj, p->maps, p->delta || p->running_copy ? &p->dirty : NULL,
				      has_cow ? &cow : NULL);
	if (r == 0 && (p->delta || p->running_copy)) {
		struct ckpt_range_set now;

		ckpt_range_set_init(&now);
		r = page_saved_ranges(p->inj, p->maps, &now);
		/* Where the parent has pages, and where the copy before the freeze put some. */
		for (size_t i = 0; r == 0 && i < p->pre.nr; i++)
			r = ckpt_range_set_add(&p->parent_ranges, p->pre.v[i].start, p->pre.v[i].end);
		if (r == 0) {
			ckpt_range_set_normalize(&p->parent_ranges);
			r = page_copy_gone_holes(&p->pages, &p->parent_ranges, &now);
		}
		ckpt_range_set_done(&now);
	}
	st->copy_ns += p->pages.copy_ns;
	st->pages_scanned += p->pages.pages_scanned;
	st->bytes_raw += (p->pages.pages_data + p->pre_pages.pages_data) * CKPT_IMAGE_PAGE_SIZE;
	st->nr_threads += p->state->nr_threads;
	st->nr_vmas += p->state->mm.nr_vmas;
	st->nr_fds += p->state->nr_fds;
	return r;
}

/* The bytes of the pipes inside the tree, as blobs of the root's checkpoint. */
static int write_tree_doc(struct dump *d)
{
	_cleanup_json_ json_object *o = NULL;
	int r;

	for (size_t i = 0; i < d->tree->nr_pipes; i++) {
		struct ckpt_tree_pipe *tp = &d->tree->pipes[i];

		if (tp->blob && (r = ckpt_image_writer_put_blob(d->top, tp->blob, tp->data, tp->len)) < 0)
			return r;
	}
	if ((r = ckpt_tree_to_json(d->tree, &o)) < 0)
		return r;
	return ckpt_image_writer_put_json(d->top, CKPT_TREE_DOC, o);
}

/* One process's checkpoint: the root's stays open (the tree's, committed last). */
static int write_proc(struct dump_proc *p)
{
	_cleanup_image_writer_ struct ckpt_image_writer *own = TAKE_PTR(p->w);
	struct ckpt_image_writer_stats ws;
	struct ckpt_image_writer *w;
	char id[CKPT_IMAGE_ID_STR_LEN + 1];
	int r = 0;

	if (is_root(p) && !p->d->top)
		r = open_writer(p, &p->d->top); /* the tree's: owned by the dump */
	else if (!is_root(p) && !own)
		r = open_writer(p, &own);
	if (r < 0)
		return r;
	w = is_root(p) ? p->d->top : own;
	r = dump_put_state(w, p->state);
	if (r == 0)
		r = write_track_doc(p, w);
	if (r == 0 && p->pre.nr) {
		/* The copy made while it ran, then what the freeze copied, over it. */
		r = dump_add_pages(w, &p->pre_pages);
		if (r == 0)
			r = ckpt_image_writer_new_layer(w);
	}
	if (r == 0)
		r = dump_add_pages(w, &p->pages);
	if (r < 0)
		return r;
	snprintf(p->d->tree->nodes[p->node].id, sizeof(p->d->tree->nodes[p->node].id), "%s",
		 ckpt_image_id_format(ckpt_image_writer_id(w), id));
	if (is_root(p))
		return 0; /* committed by write_images, last */
	if ((r = ckpt_image_writer_commit(w)) < 0)
		return r;
	ckpt_image_writer_get_stats(w, &ws);
	p->d->st->pages_data += ws.data_pages;
	p->d->st->pages_zero += ws.zero_pages;
	p->d->st->pages_inherited += ws.inherit_pages;
	p->d->st->bytes_written += ws.pages_bytes;
	return 0;
}

static int write_images(struct dump *d)
{
	struct ckpt_dump_stats *st = d->st;
	struct ckpt_image_writer_stats ws;
	uint64_t t0 = now_ns();
	int r = 0;

	/* The root's first: the others are written inside it. */
	for (size_t i = 0; r == 0 && i < d->nr_procs; i++)
		r = write_proc(&d->procs[i]);
	if (r == 0)
		r = write_tree_doc(d); /* a tree of one too: its pipes' bytes */
	if (r == 0)
		r = check_interrupted(d, "before the commit"); /* the last chance */
	if (r < 0)
		return r;
	r = ckpt_image_writer_commit(d->top);
	if (r < 0)
		return r;
	ckpt_image_writer_get_stats(d->top, &ws);
	st->pages_data += ws.data_pages;
	st->bytes_raw = st->pages_data * CKPT_IMAGE_PAGE_SIZE; /* what was compressed: no zero page */
	st->pages_zero += ws.zero_pages;
	for (size_t i = 0; i < d->nr_procs; i++)
		st->pages_hole += d->procs[i].pages.pages_hole + d->procs[i].pre_pages.pages_hole;
	st->bytes_written += ws.pages_bytes;
	st->write_ns = now_ns() - t0;
	return 0;
}

static void proc_init(struct dump_proc *p, struct dump *d, pid_t pid)
{
	memset(p, 0, sizeof(*p));
	p->d = d;
	p->pid = pid;
	p->node = -1;
	page_copy_init(&p->pages);
	page_copy_init(&p->pre_pages);
	ckpt_range_set_init(&p->pre);
	ckpt_range_set_init(&p->pre_failed);
	ckpt_range_set_init(&p->dirty);
	ckpt_range_set_init(&p->parent_ranges);
}

static void proc_done(struct dump_proc *p)
{
	ckpt_track_close(p->tracker);
	ckpt_vma_list_free(p->maps);
	ckpt_vma_list_free(p->hint);
	ckpt_range_set_done(&p->dirty);
	ckpt_range_set_done(&p->parent_ranges);
	ckpt_range_set_done(&p->pre);
	ckpt_range_set_done(&p->pre_failed);
	page_copy_done(&p->pages);
	page_copy_done(&p->pre_pages);
	ckpt_image_writer_free(p->w);
	ckpt_image_close(p->parent);
	free(p->parent_rel);
	free(p->parent_path);
	free(p->exe);
}

/*
 * A process tracked by a running ckpt command (`ckpt track`, whose lock
 * is held) is refused before the freeze, by who tracks it (the lock's
 * message): its userfaultfd is ckpt's, not the application's, and neither
 * the tracking nor the checkpoint could be shared.
 */
static int not_in_use(struct dump_proc *p)
{
	struct ckpt_tracker *t = NULL;
	int r;

	if (p->tracker)
		return 0;
	r = ckpt_track_attach(p->pid, &(struct ckpt_track_opts){ .rundir = p->d->o->rundir }, &t);
	ckpt_track_close(t);
	return r == -EBUSY ? r : 0;
}

/* Before the freeze, for one process: its parent checkpoint, room for its pages. */
static int proc_prepare(struct dump_proc *p, bool root)
{
	int r;

	if (!root) {
		_cleanup_proc_ struct ckpt_proc *pr = NULL;
		struct ckpt_proc_stat st;

		/* A zombie has no identity to take: the freeze records it. */
		if (ckpt_proc_open(NULL, p->pid, &pr) < 0 || ckpt_proc_read_stat(pr, &st) < 0 ||
		    dump_is_zombie(p->pid, &st))
			return 0;
	}
	r = dump_identity(p->pid, &p->id, &p->exe);
	if (r < 0 && !root) {
		/* A zombie, or it ended: the freeze will tell. */
		memset(&p->id, 0, sizeof(p->id));
		return 0;
	}
	if (r < 0 || (r = parent_or_full(p, root)) < 0 || (r = not_in_use(p)) < 0 || (r = plan_copy(p)) < 0)
		return r;
	if (p->fallback[0] && !p->d->st->fallback[0])
		snprintf(p->d->st->fallback, sizeof(p->d->st->fallback), "%s", p->fallback);
	return 0;
}

/* The stages before the freeze, for every process of the tree as it is now. */
static int prepare(struct dump *d)
{
	_cleanup_free_ pid_t *pids = NULL;
	char dir[PATH_MAX];
	size_t nr = 0;
	int r;

	if ((r = new_dir_parent(d->o->dir, dir, sizeof(dir))) < 0)
		return r;
	{
		_cleanup_free_ char *copy = strdup(d->o->dir);

		if (!copy || asprintf(&d->new_path, "%s/%s", dir, basename(copy)) < 0) {
			d->new_path = NULL;
			return -ENOMEM;
		}
	}
	if ((r = dump_tree_list(d->o->pid, &pids, &nr)) < 0)
		return r;
	d->procs = calloc(nr, sizeof(*d->procs));
	if (!d->procs)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		proc_init(&d->procs[i], d, pids[i]);
		d->nr_procs++;
		if ((r = proc_prepare(&d->procs[i], i == 0)) < 0)
			return r;
		d->delta |= d->procs[i].delta;
	}
	return 0;
}

/*
 * Once frozen: one context per live process of the tree, in tree order,
 * those prepared before the freeze reused; a process born since gets a
 * fresh one (a full checkpoint), one that ended is dropped.
 */
/* Is the frozen process of @inj (NULL: a zombie) the one @p was prepared for (pid and start time)? */
static bool same_process(const struct dump_proc *p, struct ckpt_inject *inj)
{
	struct ckpt_proc_stat st;

	if (!inj || !p->id.start_time)
		return true;
	return ckpt_proc_read_stat(ckpt_inject_task_proc(inj), &st) < 0 || st.start_time == p->id.start_time;
}

static int adopt_tree(struct dump *d)
{
	size_t live = ckpt_tree_nr_live(d->tree), n = 0;
	struct dump_proc *v = calloc(live ? live : 1, sizeof(*v));
	int r = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < d->tree->nr_nodes; i++) {
		struct ckpt_tree_node *node = &d->tree->nodes[i];
		struct dump_proc *p = &v[n];
		size_t k;

		if (node->zombie)
			continue;
		for (k = 0; k < d->nr_procs && d->procs[k].pid != node->pid; k++)
			;
		if (k < d->nr_procs && d->procs[k].id.pid && !same_process(&d->procs[k], d->injs[i]))
			k = d->nr_procs; /* that pid is another process now: what was prepared goes */
		if (k < d->nr_procs && d->procs[k].id.pid) {
			*p = d->procs[k];
			d->procs[k].pid = 0; /* moved */
		} else {
			proc_init(p, d, node->pid);
			if (r == 0)
				r = proc_prepare(p, i == 0);
		}
		p->node = (ssize_t)i;
		p->inj = d->injs[i];
		n++;
	}
	for (size_t k = 0; k < d->nr_procs; k++)
		if (d->procs[k].pid)
			proc_done(&d->procs[k]);
	free(d->procs);
	d->procs = v;
	d->nr_procs = n;
	return r;
}

/* In the freeze: each process's state, then what they share. */
static int collect_all(struct dump *d)
{
	uint64_t t0 = now_ns();
	int r = 0;

	for (size_t i = 0; i < d->nr_procs; i++)
		if ((d->procs[i].parked = parked_fd_of(&d->procs[i])) == -EBUSY)
			return -EBUSY;
	for (size_t i = 0; r == 0 && i < d->nr_procs; i++) {
		struct dump_proc *p = &d->procs[i];

		r = collect(p);
		if (r == 0)
			d->tree->nodes[p->node].state = p->state;
	}
	if (r == 0)
		r = dump_tree_shared(d->tree, d->injs);
	d->st->collect_ns = now_ns() - t0;
	return r;
}

static int track_all(struct dump *d)
{
	uint64_t t0 = now_ns();
	int r = 0;

	for (size_t i = 0; r == 0 && i < d->nr_procs; i++)
		r = track(&d->procs[i]);
	d->st->generation = d->procs[0].tracker ? ckpt_track_generation(d->procs[0].tracker) : 0;
	d->st->track_ns = now_ns() - t0;
	return r;
}

static int copy_all(struct dump *d)
{
	int r = 0;

	/* Kill mode: no more remote syscalls, the writer's threads must not inherit one CPU. */
	if (d->o->after == CKPT_DUMP_KILL)
		place_back(d);
	for (size_t i = 0; r == 0 && i < d->nr_procs; i++)
		r = copy(&d->procs[i]);
	return r;
}

static void consumed(const struct dump *d)
{
	if (d->delta)
		pr_err("the dirty pages since '%s' were consumed by this failed dump: "
		       "the next dump of pid %d must be full (or use --auto-full)", d->o->parent, d->o->pid);
}

static void dump_done(struct dump *d)
{
	dump_tree_release(d->tree, d->injs);
	for (size_t i = 0; i < d->nr_procs; i++)
		proc_done(&d->procs[i]);
	free(d->procs);
	ckpt_image_writer_free(d->top);
	free(d->injs);
	ckpt_tree_free(d->tree);
	free(d->new_path);
}

/*
 * --tcp-established: every connection read in repair mode taken out of it,
 * the block lifted, in every process still held (one that runs on, or
 * whose dump failed).
 */
static void tcp_undo(struct dump *d)
{
	if (!d->o->tcp_established)
		return;
	for (size_t i = 0; i < d->nr_procs; i++)
		if (d->procs[i].inj && d->procs[i].state)
			collect_tcp_undo(d->procs[i].inj, d->procs[i].state, d->procs[i].pid);
}

/* Resume now (in kill mode they stay frozen until the images are safe). */
static int resume(struct dump *d, uint64_t t_freeze)
{
	int r;

	if (d->o->after == CKPT_DUMP_LEAVE_STOPPED)
		for (size_t i = 0; i < d->nr_procs; i++)
			kill(d->procs[i].pid, SIGSTOP);
	if (d->o->after == CKPT_DUMP_KILL)
		return 0;
	tcp_undo(d); /* its connections run on: out of repair mode, unblocked */
	dump_tree_release(d->tree, d->injs);
	for (size_t i = 0; i < d->nr_procs; i++)
		d->procs[i].inj = NULL;
	d->st->freeze_ns = now_ns() - t_freeze;
	for (size_t i = 0; i < d->nr_procs; i++) {
		struct dump_proc *p = &d->procs[i];

		if (p->tracker && (r = ckpt_track_sync(p->tracker)) < 0)
			pr_warn("the tracking record of pid %d lags behind", p->pid);
		check_hint(p);
	}
	return 0;
}

/* Kill mode, once the checkpoint is safe: every process of the tree, at once. */
static void kill_tree(struct dump *d, uint64_t t_freeze)
{
	/*
	 * Connections saved with TCP_REPAIR close silently: no FIN, and no
	 * orphan socket left to hold their ports (the block stays for restore).
	 */
	for (size_t i = 0; d->o->tcp_established && i < d->nr_procs; i++)
		if (d->procs[i].inj && d->procs[i].state)
			(void)collect_tcp_silence(d->procs[i].inj, d->procs[i].state, d->procs[i].pid);
	dump_tree_kill(d->tree, d->injs);
	d->st->freeze_ns = now_ns() - t_freeze;
}

int ckpt_dump_run(const struct ckpt_dump_opts *o, struct ckpt_dump_stats *st)
{
	struct dump d = { .o = o, .st = st };
	uint64_t t0 = now_ns(), t_freeze = 0;
	struct stat sb;
	int r;

	memset(st, 0, sizeof(*st));
	dump_cpu_init(&d.cpu);
	if (lstat(o->dir, &sb) == 0) {
		pr_err("'%s' exists: a checkpoint is written to a new directory", o->dir);
		return -EEXIST;
	}
	if ((r = prepare(&d)) < 0 || (r = check_interrupted(&d, "before the freeze")) < 0)
		goto out;
	for (size_t i = 0; i < d.nr_procs; i++) {
		struct dump_proc *p = &d.procs[i];

		/* A sub-checkpoint is made inside the root's: only once that is open. */
		if (!p->delta && !is_root(p) && !d.top)
			p->copy_early = false;
		if (o->after != CKPT_DUMP_KILL && p->copy_early && (r = copy_while_running(p)) == -ESRCH &&
		    !is_root(p)) {
			forget_early(p);
			r = 0;
		}
		if (r < 0) {
			if (p->delta && ckpt_track_generation(p->tracker) != p->parent_generation)
				pr_err("the dirty pages of pid %d since '%s' were consumed by this failed dump: "
				       "the next dump must be full (or use --auto-full)", p->pid, p->parent_path);
			goto out;
		}
		read_hint(p);
	}
	if ((r = check_interrupted(&d, "before the freeze")) < 0)
		goto out;
	t_freeze = now_ns();
	r = dump_tree_freeze(o->pid, 0, o->timeout_ms, &d.tree, &d.injs);
	if (r < 0)
		goto out;
	place_near(&d);
	if ((r = adopt_tree(&d)) < 0 || (r = collect_all(&d)) < 0 || (r = judge(&d)) < 0 ||
	    (r = check_interrupted(&d, "in the freeze")) < 0 || (r = track_all(&d)) < 0 ||
	    (r = copy_all(&d)) < 0 || (r = check_frozen(&d)) < 0)
		goto out;
	place_back(&d);
	st->delta = d.procs[0].delta;
	if ((r = list_pipes(d.tree, st)) < 0 || (r = list_processes(&d)) < 0 ||
	    (r = resume(&d, t_freeze)) < 0)
		goto out;
	r = write_images(&d);
	if (r < 0) {
		consumed(&d);
		goto out;
	}
	if (o->after == CKPT_DUMP_KILL) {
		(void)note_died(&d, true); /* after every read: the checkpoint is whole */
		kill_tree(&d, t_freeze);
	}
out:
	/* A step that failed because a process died of a kill from elsewhere: that is the cause. */
	if (r < 0 && r != -EINTR)
		(void)note_died(&d, false);
	place_back(&d); /* before the release: the threads run with their own affinity */
	/* Never kill a process whose dump failed: let them run as they were (dump_done). */
	if (r < 0) {
		tcp_undo(&d);
		disarm_new(&d);
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
	free(st->processes);
	st->processes = NULL;
	st->nr_processes = 0;
}
