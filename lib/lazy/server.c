/* SPDX-License-Identifier: MIT */
/*
 * The lazy-pages server. Two threads:
 *  - the event thread polls every uffd, reads its events and serves page
 *    faults at once (the page and a read-ahead window from its own page
 *    source), and follows fork, mremap, MADV_DONTNEED/REMOVE and munmap;
 *  - the fill thread copies the pages nobody asked for yet, in large
 *    batches, starting next to the last fault.
 * One lock covers the tables, event reading and every copy: a copy that
 * lands after a MADV_DONTNEED zap would put the images' data where the
 * program expects zeros, so the fill checks the done bits and copies under
 * the same lock the events are read under. Source reads happen outside it
 * in the fill thread.
 */
#define LOG_AREA "lazy"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/inject.h>
#include <ckpt/proc.h>

#include "compat/pagemap.h"
#include "compat/syscalls.h"
#include "compat/uffd.h"
#include "lazy/lazy-internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#define PS 4096ULL
#define MAX_BATCH 1024

/* ---- helpers ---- */

static void stop_signals(void)
{
	sigset_t s;

	/* ckpt's termination signals are for the main thread (lib/inject relies on it). */
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGHUP);
	sigaddset(&s, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

static void proc_free(struct lz_proc *p)
{
	if (!p)
		return;
	if (p->uffd >= 0)
		close(p->uffd);
	if (p->pidfd >= 0)
		close(p->pidfd);
	ckpt_page_source_close(p->fault_src);
	ckpt_page_source_close(p->fill_src);
	lz_free_table(p);
	free(p->lat);
	free(p->pending);
	free(p->dir);
	free(p->url);
	free(p->token_file);
	free(p->proc);
	free(p->id);
	free(p);
}

/*
 * The checkpoint opened again is the one restore judged: the same content
 * id, and nobody else can write it (a path swapped meanwhile must not feed
 * a confined process another's pages).
 */
static int same_as_judged(struct lz_proc *p, struct ckpt_page_source *src)
{
	_cleanup_json_ json_object *sum = NULL;
	struct ckpt_provenance now;
	json_object *id;
	int r;

	if (p->id) {
		if ((r = ckpt_page_source_get_json(src, CKPT_PAGE_SOURCE_SUMMARY, &sum)) < 0)
			return r;
		if (!json_object_object_get_ex(sum, "id", &id) || strcmp(json_object_get_string(id), p->id)) {
			pr_err("pid %d: '%s' is not the checkpoint restore read (content id %s): it changed",
			       p->pid, ckpt_page_source_name(src), p->id);
			return -ESTALE;
		}
	}
	if (!p->has_prov)
		return 0;
	r = ckpt_page_source_provenance(src, &now);
	if (r < 0 && r != -EPERM)
		return r;
	if (r == -EPERM || now.kind != p->prov.kind || (now.kind == CKPT_PROV_USER && now.uid != p->prov.uid)) {
		pr_err("pid %d: '%s' is not as restore judged it (%s): %s", p->pid, ckpt_page_source_name(src),
		       p->prov.why, now.why);
		return -EPERM;
	}
	return 0;
}

static int open_source(struct lz_proc *p, struct ckpt_page_source **ret)
{
	int r = p->url ? ckpt_page_source_open_remote_proc(p->url, p->proc, p->token_file, NULL, ret)
		       : ckpt_page_source_open_local(p->dir, NULL, ret);

	if (r == 0 && (r = same_as_judged(p, *ret)) < 0) {
		ckpt_page_source_close(*ret);
		*ret = NULL;
	}
	return r;
}

/*
 * The source of the faults, before the process is served: @opened when
 * the caller hands one over (restore's own, judged by it; ours from now
 * on), else opened here. The fill's own source is opened by the fill
 * thread (fill_source()): its opening, as long as the fault source's for
 * a large checkpoint, is no longer on the way to serving the first fault.
 */
static int open_sources(struct lz_proc *p, struct ckpt_page_source *opened)
{
	if (opened) {
		int r = same_as_judged(p, opened);

		if (r < 0) {
			ckpt_page_source_close(opened);
			return r;
		}
		p->fault_src = opened;
		return 0;
	}
	return open_source(p, &p->fault_src);
}

/*
 * The fill thread's source for @p, which it holds busy: its own, opened
 * on first use, so that a fault never waits behind a long background read;
 * the fault source if that fails (slower, the same pages).
 */
static struct ckpt_page_source *fill_source(struct lz_proc *p)
{
	if (!p->fill_tried) {
		int r = open_source(p, &p->fill_src);

		p->fill_tried = true;
		if (r < 0)
			pr_warn("pid %d: the background fill reads through the source of the faults: its "
				"own did not open (%s)", p->pid, errstr(r));
	}
	return p->fill_src ? p->fill_src : p->fault_src;
}

/* Wake the event thread (from the fill thread, or a signal handler: async-signal-safe). */
static void notify(struct ckpt_lazy_server *s)
{
	uint64_t one = 1;

	(void)!write(s->wake_fd, &one, sizeof(one));
}

static struct lz_proc *proc_new(pid_t pid, int uffd, int parked_fd, const struct ckpt_lazy_source *src)
{
	struct lz_proc *p = calloc(1, sizeof(*p));
	struct stat st;

	if (!p) {
		if (uffd >= 0)
			close(uffd);
		return NULL;
	}
	p->pid = pid;
	p->uffd = uffd;
	p->parked_fd = parked_fd;
	p->pidfd = pid > 0 ? sys_pidfd_open(pid, 0) : -1;
	p->st.pid = pid;
	p->st.end = "complete";
	p->t_start = now_ns();
	if (uffd >= 0 && fstat(uffd, &st) == 0)
		p->uffd_ino = st.st_ino;
	if (src) {
		p->dir = src->dir ? strdup(src->dir) : NULL;
		p->url = src->url ? strdup(src->url) : NULL;
		p->token_file = src->token_file ? strdup(src->token_file) : NULL;
		p->proc = src->proc ? strdup(src->proc) : NULL;
		p->id = src->id ? strdup(src->id) : NULL;
		if (src->prov) {
			p->has_prov = true;
			p->prov = *src->prov;
		}
	}
	return p;
}

static int add_proc(struct ckpt_lazy_server *s, struct lz_proc *p)
{
	if (GROW(s->procs, s->cap, s->nr + 1) < 0)
		return -ENOMEM;
	s->procs[s->nr++] = p;
	pthread_cond_signal(&s->cond);
	notify(s);
	return 0;
}

/* ---- copying pages in ---- */

static int uffd_copy(struct lz_proc *p, uint64_t dst, const void *src, uint64_t len, uint64_t *ret_done)
{
	struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len };

	*ret_done = 0;
	if (ioctl(p->uffd, UFFDIO_COPY, &c) == 0) {
		*ret_done = len;
		return 0;
	}
	if (c.copy > 0)
		*ret_done = (uint64_t)c.copy;
	return neg_errno();
}

static int uffd_zero(struct lz_proc *p, uint64_t dst, uint64_t len, uint64_t *ret_done)
{
	struct uffdio_zeropage z = { .range = { dst, len } };

	*ret_done = 0;
	if (ioctl(p->uffd, UFFDIO_ZEROPAGE, &z) == 0) {
		*ret_done = len;
		return 0;
	}
	if (z.zeropage > 0)
		*ret_done = (uint64_t)z.zeropage;
	return neg_errno();
}

/*
 * Put pages [idx, idx + n) of @v in: DATA from @buf (page i at buf + i*PS),
 * ZERO and NONE as zero pages. Pages already there (EEXIST) count as done.
 * A run that crosses a VMA boundary the program made since (mprotect splits
 * a range) fails with ENOENT: it is retried page by page, and a single page
 * with ENOENT is not registered any more (it can never fault to us): done.
 * -EAGAIN: an event must be read first; -ESRCH: the process is gone.
 */
static int put_pages(struct lz_proc *p, struct lz_vma *v, uint64_t idx, uint64_t n, const uint8_t *kinds,
		     const char *buf, uint64_t *ret_data, uint64_t *ret_zero)
{
	uint64_t k = 0, single_until = 0;

	while (k < n) {
		bool data = kinds && kinds[k] == CKPT_PAGE_DATA;
		uint64_t j = k + 1, done = 0, addr = v->start + (idx + k) * PS;
		int r;

		if (lz_is_done(v, idx + k)) {
			k++;
			continue;
		}
		while (j < n && k >= single_until && !lz_is_done(v, idx + j) &&
		       (kinds && kinds[j] == CKPT_PAGE_DATA) == data)
			j++;
		r = data ? uffd_copy(p, addr, buf + k * PS, (j - k) * PS, &done)
			 : uffd_zero(p, addr, (j - k) * PS, &done);
		if (done) {
			lz_mark(p, v, idx + k, done / PS);
			if (data) {
				*ret_data += done / PS;
				p->st.bytes += done;
			} else {
				*ret_zero += done / PS;
			}
		}
		if (r == -EEXIST || (r == -ENOENT && j - k - done / PS == 1)) {
			/* Somebody was first for the page after the copied part, or it is not ours. */
			lz_mark(p, v, idx + k + done / PS, 1);
			k += done / PS + 1;
			continue;
		}
		if (r == -ENOENT) {
			k += done / PS;
			single_until = j;
			continue;
		}
		if (r == -ENOSPC)
			r = -ESRCH; /* kernels before 6.x said ENOSPC for a process gone */
		if (r < 0)
			return r;
		k = j;
	}
	return 0;
}

static int wake(struct lz_proc *p, uint64_t addr)
{
	struct uffdio_range w = { addr & ~(PS - 1), PS };

	return RET_NERRNO(ioctl(p->uffd, UFFDIO_WAKE, &w));
}

/* ---- faults (event thread, lock held) ---- */

static int serve_fault(struct ckpt_lazy_server *s, struct lz_proc *p, uint64_t addr, char *buf, uint8_t *kinds)
{
	uint64_t t0 = now_ns(), page = addr & ~(PS - 1), idx, n = 0, data = 0, zero = 0, lat;
	struct lz_vma *v = lz_find(p, page);
	unsigned int ra, ra_max = s->o.readahead ? s->o.readahead : 16;
	int r;

	if (!v) {
		/* A registered address we do not serve (grown by mremap): zero. */
		r = uffd_zero(p, page, PS, &n);
		return r == -EEXIST ? wake(p, page) : r;
	}
	idx = (page - v->start) / PS;
	if (lz_is_done(v, idx)) {
		/* Removed (MADV_DONTNEED), or copied and dropped since: zero. */
		r = uffd_zero(p, page, PS, &n);
		return r == -EEXIST ? wake(p, page) : r;
	}
	/*
	 * Read-ahead: one page for a fault on its own (it costs the faulting
	 * thread the time of the copies after its own), doubled for each fault
	 * just past the previous one's read-ahead (a sequential reader), up to
	 * --readahead.
	 */
	ra = page == p->ra_next && p->ra ? MIN(p->ra * 2, ra_max) : 1;
	while (n < ra && idx + n < (v->end - v->start) / PS && !lz_is_done(v, idx + n))
		n++;
	r = ckpt_page_source_read_pages(p->fault_src, v->src + idx * PS, n, kinds, buf);
	if (r < 0) {
		pr_err("pid %d: cannot read the page at %#" PRIx64 " from the images: %s (the fault waits)",
		       p->pid, addr, errstr(r));
		return r;
	}
	/* The faulting page alone first (that copy wakes the thread), then the read-ahead. */
	r = put_pages(p, v, idx, 1, kinds, buf, &data, &zero);
	if (r < 0)
		return r;
	/* The copy woke the thread, unless the page was put in by the fill meanwhile (EEXIST). */
	if (data + zero == 0)
		(void)wake(p, page);
	lat = now_ns() - t0;
	if (n > 1 && (r = put_pages(p, v, idx + 1, n - 1, kinds + 1, buf + PS, &data, &zero)) < 0 && r != -EAGAIN)
		return r;
	p->st.faults++;
	p->st.pages_fault += data + zero;
	p->st.pages_zero += zero;
	p->last_fault = page;
	p->ra = ra;
	p->ra_next = page + n * PS;
	if (GROW(p->lat, p->cap_lat, p->nr_lat + 1) == 0)
		p->lat[p->nr_lat++] = lat;
	return 0;
}

/* Is @pid (a child of a process we serve) one of ours already? */
static bool known_pid(struct ckpt_lazy_server *s, pid_t pid)
{
	for (size_t i = 0; i < s->nr; i++)
		if (s->procs[i]->pid == pid)
			return true;
	return false;
}

/*
 * The oldest child of @parent (any of its threads) we do not serve yet. The
 * fork event comes while the child is being created, before it is visible:
 * it is looked for after the event has been read, until it shows up. Forks
 * of one thread are sequential, so the oldest unknown child is the one of
 * the oldest pending event; forks racing in several threads of one process
 * may pair a uffd with the wrong pid: that only affects which process its
 * uffd is parked in and the takeover record, never which pages it gets.
 */
static pid_t find_child(struct ckpt_lazy_server *s, pid_t parent)
{
	_cleanup_proc_ struct ckpt_proc *pr = NULL;
	_cleanup_free_ pid_t *kids = NULL;
	size_t nr = 0;

	if (ckpt_proc_open(NULL, parent, &pr) < 0 || ckpt_proc_list_children(pr, &kids, &nr) < 0)
		return 0;
	for (size_t k = 0; k < nr; k++)
		if (!known_pid(s, kids[k]))
			return kids[k];
	return 0;
}

/* Park the child's uffd in the child: its pages must never read as zeros either. */
static void park_in_child(struct lz_proc *c)
{
	struct ckpt_inject *inj = NULL;
	int rfd = -1;

	if (ckpt_inject_seize(c->pid, CKPT_INJECT_NO_XSTATE, &inj) < 0) {
		pr_warn("child %d of a lazy restore: its userfaultfd is held by this server only", c->pid);
		return;
	}
	if (ckpt_inject_put_fd(inj, c->uffd, c->parked_fd, O_CLOEXEC, &rfd) < 0)
		pr_warn("child %d: cannot park its userfaultfd", c->pid);
	(void)ckpt_inject_release(inj);
}

/* Children whose fork event was read: find their pid, park their uffd, record them. */
static void resolve_children(struct ckpt_lazy_server *s)
{
	for (size_t i = 0; i < s->nr; i++) {
		struct lz_proc *c = s->procs[i];

		if (c->pid || c->gone || !c->parent)
			continue;
		c->pid = find_child(s, c->parent);
		if (!c->pid) {
			if (now_ns() - c->t_start > 5ULL * 1000000000ULL && !c->warned) {
				pr_warn("cannot find the child of pid %d forked %.1f s ago", c->parent,
					(double)(now_ns() - c->t_start) / 1e9);
				c->warned = true;
			}
			continue;
		}
		c->st.pid = c->pid;
		c->pidfd = sys_pidfd_open(c->pid, 0);
		pr_debug("pid %d forked %d: serving it too", c->parent, c->pid);
		park_in_child(c);
		(void)lz_record_save(s, c);
	}
}

/* Something to do again soon: a child whose pid is not visible yet, a fault to retry. */
static bool work_pending(struct ckpt_lazy_server *s)
{
	for (size_t i = 0; i < s->nr; i++)
		if ((!s->procs[i]->pid && !s->procs[i]->gone) || s->procs[i]->nr_pending)
			return true;
	return false;
}

static int on_fork(struct ckpt_lazy_server *s, struct lz_proc *p, int ufd)
{
	/* A fork's pages come from the same checkpoint, judged the same. */
	struct ckpt_lazy_source src = { .dir = p->dir, .url = p->url, .token_file = p->token_file,
					.proc = p->proc, .id = p->id, .prov = p->has_prov ? &p->prov : NULL };
	struct lz_proc *c;
	int r;

	c = proc_new(0, ufd, p->parked_fd, &src);
	if (!c)
		return -ENOMEM;
	/* The child has every page the parent had at fork: the same table. */
	if ((r = lz_copy_table(c, p)) < 0 || (r = open_sources(c, NULL)) < 0) {
		proc_free(c);
		return r;
	}
	c->parent = p->pid;
	c->st.resume_ns = 0;
	return add_proc(s, c);
}

/* Faults that met EAGAIN (an event unread): served once the events are read. */
static int retry_pending(struct ckpt_lazy_server *s, struct lz_proc *p, char *buf, uint8_t *kinds)
{
	size_t k = 0;

	for (size_t i = 0; i < p->nr_pending; i++) {
		int r = serve_fault(s, p, p->pending[i], buf, kinds);

		if (r == -EAGAIN) {
			p->pending[k++] = p->pending[i];
			continue;
		}
		if (r < 0) {
			p->nr_pending = 0;
			return r;
		}
	}
	p->nr_pending = k;
	return 0;
}

/*
 * Read and handle every event of @p, in order. A change of the table
 * (mremap, MADV_DONTNEED, munmap) is recorded at once, before the next
 * message: a fault served after it proves a successor would know it.
 */
static int drain(struct ckpt_lazy_server *s, struct lz_proc *p, char *buf, uint8_t *kinds)
{
	for (int round = 0; round < 1000; round++) {
		struct uffd_msg msgs[16];
		ssize_t n = read(p->uffd, msgs, sizeof(msgs));

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return neg_errno();
		}
		if (n == 0)
			break;
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			struct uffd_msg *m = &msgs[i];
			bool table_changed = false;
			int r = 0;

			switch (m->event) {
			case UFFD_EVENT_PAGEFAULT:
				r = serve_fault(s, p, m->arg.pagefault.address, buf, kinds);
				if (r == -EAGAIN) {
					r = GROW(p->pending, p->cap_pending, p->nr_pending + 1);
					if (r == 0)
						p->pending[p->nr_pending++] = m->arg.pagefault.address;
				}
				break;
			case UFFD_EVENT_FORK:
				r = on_fork(s, p, (int)m->arg.fork.ufd);
				break;
			case UFFD_EVENT_REMAP:
				r = lz_remap(p, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
				table_changed = true;
				break;
			case UFFD_EVENT_REMOVE:
				r = lz_remove(p, m->arg.remove.start, m->arg.remove.end, false);
				table_changed = true;
				break;
			case UFFD_EVENT_UNMAP:
				r = lz_remove(p, m->arg.remove.start, m->arg.remove.end, true);
				table_changed = true;
				break;
			default:
				break;
			}
			if (r == -ESRCH) {
				p->gone = true;
				return 0;
			}
			if (r < 0)
				return r;
			if (table_changed && p->pid > 0)
				(void)lz_record_save(s, p);
		}
	}
	{
		int r = retry_pending(s, p, buf, kinds);

		if (r == -ESRCH) {
			p->gone = true;
			return 0;
		}
		return r;
	}
}

/* ---- background fill ---- */

/* The next pages to fill: next to the last fault first, then in order. */
static bool pick(struct lz_proc *p, unsigned int batch, struct lz_vma **ret_v, uint64_t *ret_idx,
		 uint64_t *ret_n)
{
	struct lz_vma *order[2] = { p->last_fault ? lz_find(p, p->last_fault) : NULL, NULL };

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < p->nr + 1; i++) {
			struct lz_vma *v = pass == 0 ? order[0] : (i < p->nr ? &p->v[i] : NULL);
			uint64_t pages, from, idx, n = 0;

			if (!v || !v->left)
				goto next;
			pages = (v->end - v->start) / PS;
			from = pass == 0 ? (p->last_fault - v->start) / PS : 0;
			idx = lz_next_undone(v, from, pages);
			if (idx == pages && from) /* wrap */
				idx = lz_next_undone(v, 0, from);
			if (idx >= pages || lz_is_done(v, idx))
				goto next;
			while (n < batch && idx + n < pages && !lz_is_done(v, idx + n))
				n++;
			*ret_v = v;
			*ret_idx = idx;
			*ret_n = n;
			return true;
next:
			if (pass == 0)
				break;
		}
	}
	return false;
}

/*
 * Pages copied under the lock at a time: a fault waits for at most one
 * such copy (32 pages: about 50 us).
 */
#define LOCKED_CHUNK 32

static void *fill_main(void *arg)
{
	struct ckpt_lazy_server *s = arg;
	unsigned int batch = s->o.fill_batch ? MIN(s->o.fill_batch, MAX_BATCH) : 256;
	char *buf = malloc((size_t)MAX_BATCH * PS);
	uint8_t kinds[MAX_BATCH];
	size_t rr = 0;

	stop_signals();
	if (!buf)
		return NULL;
	pthread_mutex_lock(&s->lock);
	while (!s->quit) {
		struct lz_proc *p = NULL;
		struct ckpt_page_source *fsrc;
		struct lz_vma *v;
		uint64_t idx, n, src, gen, at, addr;
		int r = 0;

		for (size_t k = 0; k < s->nr && !p; k++) {
			struct lz_proc *q = s->procs[(rr + k) % s->nr];

			if (!q->gone && !q->failed && q->left)
				p = q;
		}
		rr++;
		if (!p || s->o.no_fill || !pick(p, batch, &v, &idx, &n)) {
			pthread_cond_wait(&s->cond, &s->lock);
			continue;
		}
		src = v->src + idx * PS;
		addr = v->start + idx * PS;
		gen = p->gen;
		p->busy++; /* p stays allocated while we use it without the lock */
		pthread_mutex_unlock(&s->lock);
		fsrc = fill_source(p);
		r = ckpt_page_source_read_pages(fsrc, src, n, kinds, buf);
		pthread_mutex_lock(&s->lock);
		if (r < 0) {
			pr_err("pid %d: the background fill cannot read its pages from '%s': %s", p->pid,
			       ckpt_page_source_name(fsrc), errstr(r));
			p->failed = true;
			p->busy--;
			notify(s);
			continue;
		}
		/* Copy in chunks; the table may change between them (then pick again). */
		for (at = 0; at < n && gen == p->gen && !p->gone && !s->quit; at += LOCKED_CHUNK) {
			uint64_t c = MIN(LOCKED_CHUNK, n - at), data = 0, zero = 0;

			r = put_pages(p, v, idx + at, c, kinds + at, buf + at * PS, &data, &zero);
			p->st.pages_fill += data + zero;
			p->st.pages_zero += zero;
			if (r == -ESRCH)
				p->gone = true;
			if (r < 0)
				break;
			if (at + c < n) {
				pthread_mutex_unlock(&s->lock);
				pthread_mutex_lock(&s->lock);
			}
		}
		if (r < 0 && r != -EAGAIN && r != -ESRCH) {
			pr_err("pid %d: cannot put pages in at %#" PRIx64 ": %s", p->pid, addr, errstr(r));
			p->failed = true;
		}
		p->busy--;
		if (!p->left || p->gone || p->failed)
			notify(s);
		else if (r == -EAGAIN && !s->quit) {
			/* An event is unread: give the event thread a moment (it broadcasts when done). */
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 1000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&s->cond, &s->lock, &until);
		}
	}
	pthread_mutex_unlock(&s->lock);
	free(buf);
	return NULL;
}

/* ---- completion ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * The locked mappings, mlock'ed on fault since restore, locked for good now
 * that every page is in: what is left of them in the table, where they are
 * now (mremap moves them, munmap takes them out).
 */
static void lock_complete(struct lz_proc *p, struct ckpt_inject *inj)
{
	for (size_t i = 0; i < p->nr; i++) {
		const struct lz_vma *v = &p->v[i];

		for (size_t k = 0; k < p->nr_lock; k++) {
			uint64_t a = MAX(v->src, p->lock[k][0]);
			uint64_t b = MIN(v->src + (v->end - v->start), p->lock[k][1]);
			int64_t res = 0;
			int r;

			if (a >= b)
				continue;
			a = v->start + (a - v->src);
			b = v->start + (b - v->src);
			r = ckpt_inject_call(inj, &res, SYS_mlock, a, b - a);
			if (r == 0 && res < 0)
				r = (int)res;
			if (r < 0)
				pr_warn("pid %d: %#" PRIx64 "-%#" PRIx64 " stays locked on fault only "
					"(mlock once complete failed): %s", p->pid, a, b, errstr(r));
		}
	}
}

/* Has @p exited (its pidfd is readable)? Its fd table is gone with it. */
static bool exited(const struct lz_proc *p)
{
	struct pollfd pfd = { p->pidfd, POLLIN, 0 };

	return p->pidfd >= 0 && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/* Close the process's parked reference, if it is still our uffd. */
static void unpark(struct lz_proc *p)
{
	struct ckpt_inject *inj = NULL;
	int fd = -1, r;

	if (p->parked_fd < 0 || p->pid <= 0 || exited(p))
		return;
	r = ckpt_inject_seize(p->pid, CKPT_INJECT_NO_XSTATE, &inj);
	if (r == 0)
		lock_complete(p, inj);
	if (r == 0 && (r = ckpt_inject_take_fd(inj, p->parked_fd, &fd)) == 0) {
		struct stat st;

		if (fstat(fd, &st) == 0 && st.st_ino == p->uffd_ino)
			r = ckpt_inject_close_fd(inj, p->parked_fd);
		close(fd);
	} else if (r == -EBADF) {
		r = 0; /* the program closed it itself */
	}
	if (inj)
		(void)ckpt_inject_release(inj);
	if (r == -ESRCH || r == -ENOENT || exited(p))
		return; /* it exited meanwhile (a process of a tree often does right after its last page) */
	if (r < 0)
		pr_warn("pid %d keeps fd %d, the userfaultfd of its lazy restore (all its pages are in): %s",
			p->pid, p->parked_fd, errstr(r));
}

static void finish(struct ckpt_lazy_server *s, struct lz_proc *p)
{
	if (p->nr_lat) {
		qsort(p->lat, p->nr_lat, sizeof(*p->lat), cmp_u64);
		p->st.lat_p50_ns = p->lat[p->nr_lat / 2];
		p->st.lat_p99_ns = p->lat[(p->nr_lat * 99) / 100];
		p->st.lat_max_ns = p->lat[p->nr_lat - 1];
	}
	p->st.serve_ns = now_ns() - p->t_start;
	p->st.total_ns = p->st.resume_ns + p->st.serve_ns;
	if (p->gone) {
		p->st.end = "exited";
	} else if (p->failed) {
		p->st.end = "lost";
		pr_err("pid %d is left with %" PRIu64 " pages missing: its faults wait; "
		       "'ckpt lazy-pages --attach %d' takes over", p->pid, p->left, p->pid);
	} else if (!p->left) {
		/* Every page is in: the process runs on its own. */
		for (size_t i = 0; i < p->nr; i++) {
			struct uffdio_range rg = { p->v[i].start, p->v[i].end - p->v[i].start };

			(void)ioctl(p->uffd, UFFDIO_UNREGISTER, &rg);
		}
		unpark(p);
		p->st.end = "complete";
	} else {
		p->st.end = "stopped";
	}
	/* A stopped or failed server leaves the record: the next one takes over with it. */
	if (p->pid > 0 && (p->gone || !p->left))
		lz_record_remove(s, p->pid);
	if (s->o.on_done)
		s->o.on_done(&p->st, s->o.userdata);
}

/* ---- public ---- */

const char *ckpt_lazy_default_rundir(void)
{
	return rundir_default();
}

int ckpt_lazy_server_new(const struct ckpt_lazy_opts *opts, struct ckpt_lazy_server **ret)
{
	struct ckpt_lazy_server *s = calloc(1, sizeof(*s));
	const char *rd = opts && opts->rundir ? opts->rundir : ckpt_lazy_default_rundir();

	if (!s)
		return -ENOMEM;
	if (opts)
		s->o = *opts;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->rundir = strdup(rd);
	if (!s->rundir || s->wake_fd < 0) {
		ckpt_lazy_server_free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

static void stop_fill(struct ckpt_lazy_server *s)
{
	if (!s->fill_started)
		return;
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->fill_thread, NULL);
	s->fill_started = false;
}

void ckpt_lazy_server_free(struct ckpt_lazy_server *s)
{
	if (!s)
		return;
	stop_fill(s);
	for (size_t i = 0; i < s->nr; i++)
		proc_free(s->procs[i]);
	free(s->procs);
	free(s->rundir);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

void ckpt_lazy_server_stop(struct ckpt_lazy_server *s, bool now)
{
	/* Async-signal-safe: an atomic store and a write(2). */
	__atomic_store_n(now ? &s->stop_now : &s->stop_soon, true, __ATOMIC_RELAXED);
	notify(s);
}

/* Mark pages already present (taking over): PAGEMAP_SCAN, read-only. */
static int mark_present(struct lz_proc *p)
{
	_cleanup_proc_ struct ckpt_proc *pr = NULL;
	_cleanup_close_ int pm = -1;
	struct page_region vec[512];
	int r = ckpt_proc_open(NULL, p->pid, &pr);

	if (r < 0)
		return r;
	pm = ckpt_proc_open_pagemap(pr);
	if (pm < 0)
		return pm;
	for (size_t i = 0; i < p->nr; i++) {
		uint64_t at = p->v[i].start;

		while (at < p->v[i].end) {
			struct pm_scan_arg a = {
				.size = sizeof(a), .start = at, .end = p->v[i].end, .vec = (uintptr_t)vec,
				.vec_len = ARRAY_SIZE(vec),
				.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
				.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			};
			long n = ioctl(pm, PAGEMAP_SCAN, &a);

			if (n < 0)
				return neg_errno();
			for (long k = 0; k < n; k++)
				lz_mark(p, &p->v[i], (vec[k].start - p->v[i].start) / PS,
					(vec[k].end - vec[k].start) / PS);
			if (a.walk_end <= at)
				break;
			at = a.walk_end;
		}
	}
	return 0;
}

int ckpt_lazy_server_add(struct ckpt_lazy_server *s, const struct ckpt_lazy_target *t,
			 const struct ckpt_lazy_source *src)
{
	struct lz_proc *p = proc_new(t->pid, t->uffd, t->parked_fd, src);
	int r = 0;

	if (!p)
		return -ENOMEM;
	p->st.resume_ns = t->resume_ns;
	p->st.eager_pages = t->eager_pages;
	for (size_t i = 0; i < t->nr_ranges && r == 0; i++) {
		const struct ckpt_lazy_range *g = &t->ranges[i];

		if (g->end <= g->start || (g->start | g->end | g->src) % PS)
			r = -EINVAL;
		else
			r = lz_add_range(p, g->start, g->end, g->src);
		if (r == 0 && g->lock)
			r = lz_add_lock(p, g->src, g->src + (g->end - g->start));
	}
	if (r == 0)
		r = open_sources(p, src->opened);
	else
		ckpt_page_source_close(src->opened);
	if (r == 0)
		r = lz_record_save(s, p);
	if (r < 0) {
		proc_free(p);
		return r;
	}
	pthread_mutex_lock(&s->lock);
	r = add_proc(s, p);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		proc_free(p);
	return r;
}

int ckpt_lazy_server_attach(struct ckpt_lazy_server *s, pid_t pid, const struct ckpt_lazy_source *src)
{
	struct lz_proc *p = proc_new(pid, -1, -1, NULL);
	struct ckpt_inject *inj = NULL;
	struct stat st;
	int r;

	if (!p)
		return -ENOMEM;
	if (p->pidfd < 0) {
		r = neg_errno();
		pr_err("pid %d: %s", pid, errstr(r));
		goto fail;
	}
	r = lz_record_load(s, pid, p);
	if (r < 0)
		goto fail;
	if (src && (src->dir || src->url)) {
		free(p->dir);
		free(p->url);
		free(p->token_file);
		p->dir = src->dir ? strdup(src->dir) : NULL;
		p->url = src->url ? strdup(src->url) : NULL;
		p->token_file = src->token_file ? strdup(src->token_file) : NULL;
	}
	/*
	 * pidfd_getfd needs no stop: a thread waiting in a fault taken in the
	 * kernel (read(2) into lazy memory) waits killably, and a seize could
	 * not stop it until that fault is served, which is what we are here
	 * for. Through the injector only where pidfd_getfd is not enough (a
	 * zombie leader: its files are its threads').
	 */
	p->uffd = sys_pidfd_getfd(p->pidfd, p->parked_fd, 0);
	r = p->uffd < 0 ? neg_errno() : 0;
	if (r < 0 && r != -EBADF && (r = ckpt_inject_seize(pid, CKPT_INJECT_NO_XSTATE, &inj)) == 0) {
		r = ckpt_inject_take_fd(inj, p->parked_fd, &p->uffd);
		(void)ckpt_inject_release(inj);
	}
	if (r < 0) {
		pr_err("pid %d: cannot take its userfaultfd (fd %d): %s", pid, p->parked_fd, errstr(r));
		goto fail;
	}
	if (fstat(p->uffd, &st) < 0 || st.st_ino != p->uffd_ino) {
		pr_err("fd %d of pid %d is not the userfaultfd of its lazy restore any more", p->parked_fd, pid);
		r = -ESTALE;
		goto fail;
	}
	/* Pages present now came from the old server (or were written since): keep them. */
	if ((r = mark_present(p)) < 0 || (r = open_sources(p, NULL)) < 0)
		goto fail;
	pr_info("took over the lazy restore of pid %d: %" PRIu64 " pages left", pid, p->left);
	pthread_mutex_lock(&s->lock);
	r = add_proc(s, p);
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		return 0;
fail:
	proc_free(p);
	return r;
}

/* Processes that are complete or gone leave (lock held). */
static void reap(struct ckpt_lazy_server *s)
{
	for (size_t i = 0; i < s->nr;) {
		struct lz_proc *p = s->procs[i];

		if ((p->gone || p->failed || !p->left) && !p->busy && p->pid) {
			finish(s, p);
			proc_free(p);
			s->procs[i] = s->procs[--s->nr];
			continue;
		}
		/* A child that exited before we found its pid. */
		if (p->gone && !p->busy && !p->pid) {
			proc_free(p);
			s->procs[i] = s->procs[--s->nr];
			continue;
		}
		i++;
	}
}

int ckpt_lazy_server_run(struct ckpt_lazy_server *s, int listen_fd)
{
	char *buf = malloc((size_t)MAX_BATCH * PS);
	uint8_t kinds[MAX_BATCH];
	int r = 0;

	if (!buf)
		return -ENOMEM;
	if (pthread_create(&s->fill_thread, NULL, fill_main, s) != 0) {
		free(buf);
		return -EAGAIN;
	}
	s->fill_started = true;
	for (;;) {
		struct pollfd *pfd;
		size_t n = 0, nprocs;
		bool listening = listen_fd >= 0 && !__atomic_load_n(&s->stop_soon, __ATOMIC_RELAXED);
		uint64_t ev;

		if (__atomic_load_n(&s->stop_now, __ATOMIC_RELAXED))
			break;
		pthread_mutex_lock(&s->lock);
		resolve_children(s);
		reap(s);
		nprocs = s->nr;
		if ((!nprocs && !listening) || s->err) {
			r = s->err;
			pthread_mutex_unlock(&s->lock);
			break;
		}
		pfd = calloc(2 * nprocs + 2, sizeof(*pfd));
		if (!pfd) {
			pthread_mutex_unlock(&s->lock);
			r = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < nprocs; i++) {
			pfd[n++] = (struct pollfd){ s->procs[i]->uffd, POLLIN, 0 };
			pfd[n++] = (struct pollfd){ s->procs[i]->pidfd, POLLIN, 0 };
		}
		pfd[n++] = (struct pollfd){ s->wake_fd, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ listening ? listen_fd : -1, POLLIN, 0 };
		bool pending = work_pending(s);
		pthread_mutex_unlock(&s->lock);

		if (poll(pfd, n, pending ? 1 : 1000) < 0 && errno != EINTR) {
			free(pfd);
			r = neg_errno();
			break;
		}
		pthread_mutex_lock(&s->lock);
		/* Processes are only added (at the end) or removed by this thread: indexes hold. */
		for (size_t i = 0; i < nprocs; i++) {
			struct lz_proc *p = s->procs[i];

			if (!p->failed && ((pfd[2 * i].revents & (POLLIN | POLLERR)) || p->nr_pending)) {
				int e = drain(s, p, buf, kinds);

				if (e < 0) {
					pr_err("pid %d: cannot serve its faults: %s", p->pid, errstr(e));
					p->failed = true;
				}
			}
			if (pfd[2 * i + 1].revents & POLLIN)
				p->gone = true; /* it exited */
		}
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		if (pfd[n - 2].revents & POLLIN)
			(void)!read(s->wake_fd, &ev, sizeof(ev));
		if (pfd[n - 1].revents & POLLIN)
			lz_accept_handover(s, listen_fd);
		free(pfd);
	}
	stop_fill(s);
	/* Stopped now: leave the processes registered, their uffd parked: a new server can take over. */
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr; i++) {
		struct lz_proc *p = s->procs[i];

		if (p->pid && !p->gone && p->left) {
			(void)lz_record_save(s, p);
			finish(s, p);
		}
	}
	pthread_mutex_unlock(&s->lock);
	free(buf);
	return r;
}
