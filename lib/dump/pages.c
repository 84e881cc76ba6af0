/* SPDX-License-Identifier: MIT */
#define LOG_AREA "dump"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ckpt/inject.h>

#include "compat/pagemap.h"
#include "dump/pages.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define PS 4096ULL
#define SCAN_VEC 4096
#define IOV_BATCH 1024

void page_copy_init(struct page_copy *c)
{
	memset(c, 0, sizeof(*c));
}

void page_copy_done(struct page_copy *c)
{
	if (c->buf)
		munmap(c->buf, c->buf_cap);
	free(c->runs);
	page_copy_init(c);
}

int page_copy_reserve(struct page_copy *c, size_t bytes)
{
	size_t cap = ALIGN_UP(bytes, 2UL << 20);
	void *m;

	if (cap <= c->buf_cap)
		return 0;
	if (c->buf)
		m = mremap(c->buf, c->buf_cap, cap, MREMAP_MAYMOVE);
	else
		m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	/* Populate the new part now: faults during the freeze would cost 2 us a page. */
	if (madvise((char *)m + c->buf_cap, cap - c->buf_cap, MADV_POPULATE_WRITE) < 0)
		pr_debug("MADV_POPULATE_WRITE: %s", strerror(errno));
	c->buf = m;
	c->buf_cap = cap;
	return 0;
}

static int add_run(struct page_copy *c, uint64_t addr, uint64_t nr, enum page_run_kind kind,
		   uint64_t buf_off)
{
	struct page_run *last = c->nr_runs ? &c->runs[c->nr_runs - 1] : NULL;

	if (!nr)
		return 0;
	if (last && last->kind == kind && last->addr + last->nr * PS == addr &&
	    (kind != PAGE_RUN_DATA || last->buf_off + last->nr * PS == buf_off)) {
		last->nr += nr;
	} else {
		if (GROW(c->runs, c->cap_runs, c->nr_runs + 1) < 0)
			return -ENOMEM;
		c->runs[c->nr_runs++] = (struct page_run){ addr, nr, buf_off, kind, 0 };
	}
	if (kind == PAGE_RUN_DATA)
		c->pages_data += nr;
	else
		c->pages_hole += nr;
	return 0;
}

static int add_inherit(struct page_copy *c, uint64_t addr, uint64_t nr, pid_t from)
{
	struct page_run *last = c->nr_runs ? &c->runs[c->nr_runs - 1] : NULL;

	if (!nr)
		return 0;
	if (last && last->kind == PAGE_RUN_INHERIT && last->from == from && last->addr + last->nr * PS == addr) {
		last->nr += nr;
	} else {
		if (GROW(c->runs, c->cap_runs, c->nr_runs + 1) < 0)
			return -ENOMEM;
		c->runs[c->nr_runs++] = (struct page_run){ addr, nr, 0, PAGE_RUN_INHERIT, from };
	}
	c->pages_inherit += nr;
	return 0;
}

/*
 * Room for @bytes more in the buffer (grows without populating: rare),
 * never beyond @limit (0: none) unless @bytes need it.
 */
static int want_room(struct page_copy *c, size_t bytes, size_t limit)
{
	size_t want = MAX(c->buf_len + bytes, c->buf_cap * 2);

	if (c->buf_len + bytes <= c->buf_cap)
		return 0;
	if (limit)
		want = MAX(c->buf_len + bytes, MIN(want, limit));
	return page_copy_reserve(c, want);
}

bool page_vma_is_shmem(const struct ckpt_vma *v)
{
	if (!v->shared)
		return false;
	if (ckpt_vma_is_shmem_anon(v) || v->kind == CKPT_VMA_ANON_NAMED)
		return true;
	return v->kind == CKPT_VMA_FILE && v->name &&
	       (strncmp(v->name, "/memfd:", 7) == 0 || strncmp(v->name, "/SYSV", 5) == 0);
}

bool page_vma_full_content(const struct ckpt_vma *v)
{
	return v->kind == CKPT_VMA_FILE && v->deleted && !v->shared;
}

bool page_vma_saved(struct ckpt_inject *inj, const struct ckpt_vma *v)
{
	switch (v->kind) {
	case CKPT_VMA_VDSO:
	case CKPT_VMA_VVAR:
	case CKPT_VMA_VVAR_VCLOCK:
	case CKPT_VMA_VSYSCALL:
	case CKPT_VMA_SPECIAL:
		return false;
	default:
		break;
	}
	if (inj && ckpt_inject_scratch_only(inj, v->start, v->end))
		return false;
	if (v->shared && !page_vma_is_shmem(v))
		return false; /* a shared file mapping: the file has it */
	return true;
}

/*
 * Copy [addr, addr + nr pages) of the target into the buffer: frozen (with
 * @inj), or running (@stream: in chunks handed to a sink, and what cannot
 * be read because a mapping changed meanwhile is noted, not fatal).
 */
struct copier {
	struct page_copy *c;
	struct ckpt_inject *inj;         /* frozen (also when streaming from a frozen process) */
	const struct page_cow *cow;      /* frozen only: the parent's pages are not copied */
	int cow_pm;                      /* the parent's pagemap */
	int cow_mem;                     /* the parent's /proc/PID/mem */
	unsigned char *cow_buf;          /* COW_WINDOW pages of the child, then of the parent */
	const struct page_stream *stream; /* in chunks to a sink; what fails is "failed" unless frozen */
	pid_t pid;
	const struct ckpt_proc *proc;
	int mem_fd;                      /* /proc/PID/mem (streaming; frozen: opened when needed) */
	int pm;                          /* /proc/PID/pagemap */
	int sink_err;                    /* streaming: the sink failed (ends the copy) */
	struct iovec remote[IOV_BATCH];
	bool shared[IOV_BATCH];          /* per remote iovec: pages another process maps too */
	size_t n;
	size_t bytes;
	size_t local_off;
};

/* A remote iovec that process_vm_readv refused: /proc/PID/mem (PROT_NONE pages). */
static int read_slow(struct copier *cp, const struct iovec *remote, void *local)
{
	uint64_t addr = (uint64_t)(uintptr_t)remote->iov_base;
	ssize_t n;
	int r;

	if (cp->inj)
		return ckpt_inject_read(cp->inj, addr, local, remote->iov_len);
	n = pread(cp->mem_fd, local, remote->iov_len, (off_t)addr);
	if (n == (ssize_t)remote->iov_len)
		return 0;
	if (n < 0 && errno == ESRCH)
		return -ESRCH;
	/* Unmapped or remapped since the maps were read: the caller copies it again, frozen. */
	memset(local, 0, remote->iov_len);
	r = ckpt_range_set_add(cp->stream->failed, addr, addr + remote->iov_len);
	return r;
}

/* @n pagemap entries from @addr of pagemap @pm, whole: true, or false. */
static bool read_entries(int pm, uint64_t addr, uint64_t n, uint64_t *ent)
{
	return pm >= 0 && pread(pm, ent, n * 8, (off_t)(addr / PS * 8)) == (ssize_t)(n * 8);
}

/* The process's /proc/PID/mem, opened on first use; -errno. */
static int copier_mem_fd(struct copier *cp)
{
	if (cp->mem_fd < 0) {
		int fd = ckpt_proc_open_mem(cp->proc, O_RDONLY);

		if (fd < 0)
			return fd;
		cp->mem_fd = fd;
	}
	return cp->mem_fd;
}

/*
 * Read pages another process maps too (copy-on-write since fork) through
 * /proc/PID/mem: process_vm_readv pins the pages it reads, and the kernel
 * unshares an anonymous page that is not exclusive before it lets it be
 * pinned (gup_must_unshare), so that a dump would give the process a copy
 * of every page it shares, and the tree would grow by all of them.
 */
static int read_shared(struct copier *cp, const struct iovec *remote, void *local)
{
	uint64_t addr = (uint64_t)(uintptr_t)remote->iov_base;
	int fd = copier_mem_fd(cp);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = pread(fd, local, remote->iov_len, (off_t)addr);
	if (n == (ssize_t)remote->iov_len)
		return 0;
	return read_slow(cp, remote, local); /* its messages and its handling of a mapping that changed */
}

/* Read remote iovecs [first, end) (of one kind) to @local. */
static int read_iovecs(struct copier *cp, size_t first, size_t end, char *local)
{
	size_t bytes = 0, done = 0;

	for (size_t i = first; i < end; i++)
		bytes += cp->remote[i].iov_len;
	if (cp->shared[first]) {
		for (size_t i = first; i < end; local += cp->remote[i].iov_len, i++) {
			int r = read_shared(cp, &cp->remote[i], local);

			if (r < 0)
				return r;
		}
		return 0;
	}
	while (done < bytes) {
		struct iovec l = { local + done, bytes - done };
		ssize_t n;

		/* Skip the remote iovecs already fully read. */
		size_t skip = done, at = first;

		while (at < end && skip >= cp->remote[at].iov_len)
			skip -= cp->remote[at++].iov_len;
		cp->remote[at].iov_base = (char *)cp->remote[at].iov_base + skip;
		cp->remote[at].iov_len -= skip;
		n = process_vm_readv(cp->pid, &l, 1, &cp->remote[at], end - at, 0);
		if (n <= 0) {
			/* Unreadable (PROT_NONE) pages: read them one iovec at a time via /proc/PID/mem. */
			int r;

			if (n < 0 && errno == ESRCH)
				return -ESRCH;
			r = read_slow(cp, &cp->remote[at], l.iov_base);
			if (r < 0)
				return r;
			n = (ssize_t)cp->remote[at].iov_len;
		}
		done += (size_t)n;
		/* process_vm_readv leaves the iovecs untouched: account for it. */
		cp->remote[at].iov_base = (char *)cp->remote[at].iov_base - skip;
		cp->remote[at].iov_len += skip;
	}
	return 0;
}

static int copier_flush(struct copier *cp)
{
	char *local = (char *)cp->c->buf + cp->local_off;

	/* Runs of iovecs of one kind: the pages this process alone maps, then the others. */
	for (size_t i = 0, j; i < cp->n; i = j) {
		int r;

		for (j = i + 1; j < cp->n && cp->shared[j] == cp->shared[i]; j++)
			;
		r = read_iovecs(cp, i, j, local);
		if (r < 0)
			return r;
		for (size_t k = i; k < j; k++)
			local += cp->remote[k].iov_len;
	}
	cp->local_off += cp->bytes;
	cp->n = 0;
	cp->bytes = 0;
	return 0;
}

/* Streaming: hand what the buffer holds to the sink and start it over. */
static int copier_drain(struct copier *cp)
{
	int r = copier_flush(cp);

	if (r < 0)
		return r;
	cp->c->buf_len = cp->local_off;
	r = cp->stream->sink(cp->c, cp->stream->userdata);
	if (r < 0) {
		cp->sink_err = r; /* the writer's, or a stop: not a mapping that changed */
		return r;
	}
	cp->c->nr_runs = 0;
	cp->c->buf_len = 0;
	cp->local_off = 0;
	return 0;
}

/*
 * Streaming from a frozen process, the last chunk kept: hand the oldest
 * @want bytes of the buffer (a run cut in two where they end) to the sink
 * and keep the rest, moved to the front. Only the excess over a buffer is
 * then compressed during the freeze, not every full buffer.
 */
static int copier_drain_part(struct copier *cp, size_t want)
{
	struct page_copy *c = cp->c, part;
	size_t k = 0, cut = 0;
	int r = copier_flush(cp);

	if (r < 0)
		return r;
	while (k < c->nr_runs && cut < want) {
		struct page_run *run = &c->runs[k];

		if (run->kind == PAGE_RUN_DATA) {
			uint64_t n = (want - run->buf_off + PS - 1) / PS; /* pages before the cut */

			if (n < run->nr) {
				if (GROW(c->runs, c->cap_runs, c->nr_runs + 1) < 0)
					return -ENOMEM;
				run = &c->runs[k];
				memmove(run + 2, run + 1, (c->nr_runs - k - 1) * sizeof(*run));
				run[1] = (struct page_run){ run->addr + n * PS, run->nr - n,
							    run->buf_off + n * PS, PAGE_RUN_DATA, 0 };
				run->nr = n;
				c->nr_runs++;
			}
			cut = run->buf_off + run->nr * PS;
		}
		k++;
	}
	part = *c;
	part.nr_runs = k;
	part.buf_len = cut;
	r = cp->stream->sink(&part, cp->stream->userdata);
	if (r < 0) {
		cp->sink_err = r;
		return r;
	}
	memmove(c->buf, c->buf + cut, cp->local_off - cut);
	memmove(c->runs, c->runs + k, (c->nr_runs - k) * sizeof(*c->runs));
	c->nr_runs -= k;
	for (size_t i = 0; i < c->nr_runs; i++)
		if (c->runs[i].kind == PAGE_RUN_DATA)
			c->runs[i].buf_off -= cut;
	cp->local_off -= cut;
	return 0;
}

static int copy_piece(struct copier *cp, uint64_t addr, uint64_t nr, bool shared)
{
	struct page_copy *c = cp->c;
	int r;

	if (cp->n == IOV_BATCH && (r = copier_flush(cp)) < 0)
		return r;
	if ((r = want_room(c, cp->local_off - c->buf_len + cp->bytes + nr * PS,
			   cp->stream ? cp->stream->chunk : 0)) < 0)
		return r;
	r = add_run(c, addr, nr, PAGE_RUN_DATA, cp->local_off + cp->bytes);
	if (r < 0)
		return r;
	cp->remote[cp->n].iov_base = (void *)(uintptr_t)addr;
	cp->remote[cp->n].iov_len = nr * PS;
	cp->shared[cp->n] = shared;
	cp->n++;
	cp->bytes += nr * PS;
	return 0;
}

static int copy_run(struct copier *cp, uint64_t addr, uint64_t nr, bool shared)
{
	uint64_t max;
	int r;

	if (!cp->stream || !cp->stream->chunk)
		return copy_piece(cp, addr, nr, shared);
	/* Streaming: never more than a chunk in the buffer. */
	max = cp->stream->chunk / PS;
	while (nr) {
		uint64_t used = (cp->local_off + cp->bytes) / PS, k;

		if (used >= max) {
			/* Frozen, the last chunk kept: a quarter at a time (the sink does not keep it). */
			if (cp->inj && cp->stream->keep_last)
				r = copier_drain_part(cp, MAX(cp->stream->chunk / 4, PS));
			else
				r = copier_drain(cp);
			if (r < 0)
				return r;
			used = (cp->local_off + cp->bytes) / PS;
		}
		k = MIN(nr, max - used);
		r = copy_piece(cp, addr, k, shared);
		if (r < 0)
			return r;
		addr += k * PS;
		nr -= k;
	}
	return 0;
}

/* Is the page of pagemap entry @e mapped by another process too (or not here to say)? */
static bool entry_shared(uint64_t e)
{
	if (!(e & PM_ENTRY_PRESENT))
		return true; /* swapped: the swap entry may be another process's too */
	return !(e & PM_ENTRY_FILE) && !(e & PM_ENTRY_EXCLUSIVE); /* a file page is never unshared */
}

/*
 * Copy [addr, addr + nr pages) whose pagemap entries are @ent: the pages
 * only this process maps by process_vm_readv, the others through
 * /proc/PID/mem (read_shared).
 */
static int copy_by_entries(struct copier *cp, uint64_t addr, uint64_t nr, const uint64_t *ent)
{
	for (uint64_t i = 0, run; i < nr; i += run) {
		bool shared = entry_shared(ent[i]);
		int r;

		for (run = 1; i + run < nr && entry_shared(ent[i + run]) == shared; run++)
			;
		r = copy_run(cp, addr + i * PS, run, shared);
		if (r < 0)
			return r;
	}
	return 0;
}

static int copy_range(struct copier *cp, uint64_t addr, uint64_t nr)
{
	uint64_t ent[512];

	while (nr) {
		uint64_t k = MIN(nr, (uint64_t)ARRAY_SIZE(ent));
		int r;

		/* Cannot tell: as if shared, which reads right either way. */
		if (!read_entries(cp->pm, addr, k, ent))
			memset(ent, 0, k * sizeof(*ent));
		r = copy_by_entries(cp, addr, k, ent);
		if (r < 0)
			return r;
		addr += k * PS;
		nr -= k;
	}
	return 0;
}

#define SWP_TYPE_MARKER 31 /* the swap type of PTE markers in /proc/PID/pagemap */

/*
 * From @from, the run of pages up to @end that are all real swap entries or
 * all PTE markers: [from, *ret_to), *ret_content true for real swap.
 */
static int swap_run(struct copier *cp, int pm, uint64_t from, uint64_t end, uint64_t *ret_to,
		    bool *ret_content)
{
	uint64_t ent[512];
	bool first_real = false;

	/*
	 * Read the entries even without swap: a page being migrated
	 * (compaction, even while the process is frozen) is a swap entry of
	 * a migration type, not present, and has content; it keeps its
	 * uffd-wp bit, so a later harvest would never report it again.
	 */
	for (uint64_t at = from; at < end;) {
		size_t n = MIN(ARRAY_SIZE(ent), (end - at) / PS);
		ssize_t got = pread(pm, ent, n * 8, (off_t)(at / PS * 8));

		if (got < (ssize_t)(n * 8))
			return got < 0 ? neg_errno() : -EIO;
		for (size_t k = 0; k < n; k++, at += PS) {
			bool real = (ent[k] & PM_ENTRY_SWAP) && (ent[k] & 31) != SWP_TYPE_MARKER;

			if (at == from)
				first_real = real;
			else if (real != first_real) {
				*ret_to = at;
				*ret_content = first_real;
				return 0;
			}
		}
	}
	*ret_to = end;
	*ret_content = first_real;
	return 0;
}

#define COW_WINDOW 64 /* pages compared at a time */

/* Does the parent save its own page at @addr (so that its checkpoint holds what it has there)? */
static bool parent_saves(const struct page_cow *cow, uint64_t addr)
{
	const struct ckpt_vma *v = ckpt_vma_list_find(cow->maps, addr);

	return v && page_vma_saved(cow->inj, v) && !page_vma_is_shmem(v) &&
	       !ckpt_inject_is_scratch(cow->inj, addr, addr + PS);
}

/* Read [addr, addr + n pages) through /proc/PID/mem @fd (which leaves shared pages shared) whole, or fail. */
static bool read_whole(int fd, uint64_t addr, uint64_t n, void *buf)
{
	return fd >= 0 && pread(fd, buf, n * PS, (off_t)addr) == (ssize_t)(n * PS);
}

/*
 * Present private pages [addr, addr + n pages) of the child (frozen, as its
 * parent): those that are the parent's own copy-on-write page at the same
 * address and hold the same bytes are INHERIT runs, the others copied.
 */
static int copy_or_inherit(struct copier *cp, uint64_t addr, uint64_t n)
{
	uint64_t ce[COW_WINDOW], pe[COW_WINDOW];
	bool same[COW_WINDOW];
	int r;

	while (n) {
		uint64_t k = MIN(n, (uint64_t)COW_WINDOW), run;
		bool any = false;

		if (!read_entries(cp->pm, addr, k, ce) || !read_entries(cp->cow_pm, addr, k, pe))
			return copy_range(cp, addr, n); /* no candidates: copied */
		for (uint64_t i = 0; i < k; i++) {
			uint64_t pfn = ce[i] & PM_ENTRY_PFN_MASK;

			same[i] = (ce[i] & PM_ENTRY_PRESENT) && (pe[i] & PM_ENTRY_PRESENT) &&
				  !(ce[i] & PM_ENTRY_FILE) && !(pe[i] & PM_ENTRY_FILE) && pfn &&
				  pfn == (pe[i] & PM_ENTRY_PFN_MASK) && parent_saves(cp->cow, addr + i * PS);
			any |= same[i];
		}
		/* pagemap is a hint (a page can move between two reads of it): the bytes decide. */
		if (any && (!read_whole(copier_mem_fd(cp), addr, k, cp->cow_buf) ||
			    !read_whole(cp->cow_mem, addr, k, cp->cow_buf + COW_WINDOW * PS)))
			any = false;
		for (uint64_t i = 0; i < k; i++)
			same[i] = any && same[i] &&
				  memcmp(cp->cow_buf + i * PS, cp->cow_buf + (COW_WINDOW + i) * PS, PS) == 0;
		for (uint64_t i = 0; i < k; i += run) {
			for (run = 1; i + run < k && same[i + run] == same[i]; run++)
				;
			r = same[i] ? add_inherit(cp->c, addr + i * PS, run, cp->cow->pid)
				    : copy_by_entries(cp, addr + i * PS, run, ce + i);
			if (r < 0)
				return r;
		}
		addr += k * PS;
		n -= k;
	}
	return 0;
}

/*
 * Private memory: PAGEMAP_SCAN (read-only, no write-protect) for the pages
 * that have contents of their own: present or swapped, and not file pages.
 * In a delta (@delta), the others are HOLEs. Without @copy, the pages with
 * contents of their own are not copied: only the HOLEs are written.
 */
static int private_pages(struct copier *cp, int pm, const struct ckpt_vma *v, uint64_t start,
			 uint64_t end, bool delta, bool copy, struct page_region *vec)
{
	bool file = v->kind == CKPT_VMA_FILE;
	uint64_t at = start, hole_from = start;
	int r;

	while (at < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = at,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = SCAN_VEC,
			.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE,
		};
		long n = ioctl(pm, PAGEMAP_SCAN, &arg);

		if (n < 0)
			return neg_errno();
		for (long i = 0; i < n; i++) {
			uint64_t cat = vec[i].categories, from = vec[i].start;
			bool own = !(cat & PAGE_IS_FILE) || (cat & PAGE_IS_SWAPPED);

			/* A file page of a private file mapping is the file's. */
			if (file && !own)
				continue;
			/*
			 * "Swapped" and not present: a PTE marker (uffd-wp on an
			 * untouched page), or content (swap, migration) when the
			 * entry says so.
			 */
			while (from < vec[i].end) {
				uint64_t to = vec[i].end;
				bool content = true;

				if ((cat & PAGE_IS_SWAPPED) && !(cat & PAGE_IS_PRESENT)) {
					r = swap_run(cp, pm, from, vec[i].end, &to, &content);
					if (r < 0)
						return r;
				}
				if (content) {
					if (delta && (r = add_run(cp->c, hole_from, (from - hole_from) / PS,
								  PAGE_RUN_HOLE, 0)) < 0)
						return r;
					if (copy && cp->cow && (cat & PAGE_IS_PRESENT))
						r = copy_or_inherit(cp, from, (to - from) / PS);
					else if (copy)
						r = copy_range(cp, from, (to - from) / PS);
					if (r < 0)
						return r;
					hole_from = to;
				}
				from = to;
			}
		}
		cp->c->pages_scanned += (arg.walk_end - at) / PS;
		if (arg.walk_end <= at)
			return -EIO;
		at = arg.walk_end;
	}
	if (delta && (r = add_run(cp->c, hole_from, (end - hole_from) / PS, PAGE_RUN_HOLE, 0)) < 0)
		return r;
	return 0;
}

/*
 * Shared memory objects: their data, by SEEK_DATA/SEEK_HOLE on the object
 * (map_files), read through the mapping. A delta takes them whole too, with
 * a HOLE wherever the object has none (@delta): the uffd-wp bits of this
 * mapping only see writes through this mapping, and the object can be
 * written without one (write(2) to a memfd, another mapping of it in this
 * process or in another one). A delta of the written pages alone would
 * miss those, and restore would lay an older checkpoint's pages of another
 * mapping of the same object over the new ones.
 */
static int shmem_pages(struct copier *cp, const struct ckpt_vma *v, bool delta)
{
	uint64_t hole_from = v->start;
	_cleanup_close_ int fd = ckpt_proc_open_map_file(cp->proc, v->start, v->end, O_RDONLY);
	off_t off = (off_t)v->offset, end = (off_t)(v->offset + (v->end - v->start));
	uint64_t from;
	int r;

	if (fd < 0 && cp->stream && !cp->inj) {
		/* Gone or changed while the process runs: copy it again, frozen. */
		return ckpt_range_set_add(cp->stream->failed, v->start, v->end);
	}
	if (fd < 0) {
		pr_err("cannot open the shared memory at %#" PRIx64 " of pid %d: %s", v->start,
		       cp->pid, errstr(fd));
		return fd;
	}
	while (off < end) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;

		if (data < 0 || data >= end)
			break; /* ENXIO: no data after off */
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		data = (off_t)ALIGN_DOWN((uint64_t)data, PS);
		hole = (off_t)ALIGN_UP((uint64_t)hole, PS);
		from = v->start + (uint64_t)(data - (off_t)v->offset);
		if (delta && (r = add_run(cp->c, hole_from, (from - hole_from) / PS, PAGE_RUN_HOLE, 0)) < 0)
			return r;
		r = copy_range(cp, from, (uint64_t)(hole - data) / PS);
		if (r < 0)
			return r;
		cp->c->pages_scanned += (uint64_t)(hole - data) / PS;
		hole_from = from + (uint64_t)(hole - data);
		off = hole;
	}
	if (delta && (r = add_run(cp->c, hole_from, (v->end - hole_from) / PS, PAGE_RUN_HOLE, 0)) < 0)
		return r;
	return 0;
}

/*
 * Streaming from a running process: a range whose copy failed (the mapping
 * changed under it) is copied again in the freeze. Anything else, or a
 * copy made frozen, keeps its error @r.
 */
static int again_frozen(struct copier *cp, int r, uint64_t start, uint64_t end)
{
	if (r >= 0 || !cp->stream || cp->inj || cp->sink_err || r == -ESRCH || r == -ENOMEM)
		return r;
	return ckpt_range_set_add(cp->stream->failed, start, end);
}

static void cow_close(struct copier *cp)
{
	if (cp->cow_pm >= 0)
		close(cp->cow_pm);
	if (cp->cow_mem >= 0)
		close(cp->cow_mem);
	free(cp->cow_buf);
	cp->cow_pm = cp->cow_mem = -1;
	cp->cow_buf = NULL;
	cp->cow = NULL;
}

/* The pages of @maps to save: all (full), or those in @dirty. */
static int copy_maps(struct copier *cp, const struct ckpt_vma_list *maps,
		     const struct ckpt_range_set *dirty)
{
	struct page_copy *c = cp->c;
	struct ckpt_inject *inj = cp->inj;
	_cleanup_free_ struct page_region *vec = malloc(SCAN_VEC * sizeof(*vec));
	_cleanup_close_ int pm = -1;
	int r = 0;

	if (!vec)
		return -ENOMEM;
	pm = ckpt_proc_open_pagemap(cp->proc);
	if (pm < 0)
		return pm;
	cp->pm = pm;
	if (cp->cow) {
		cp->cow_pm = ckpt_proc_open_pagemap(cp->cow->proc);
		cp->cow_mem = ckpt_proc_open_mem(cp->cow->proc, O_RDONLY);
		cp->cow_buf = malloc(2 * COW_WINDOW * PS);
		if (cp->cow_pm < 0 || cp->cow_mem < 0 || !cp->cow_buf) {
			/* Only a saving lost: every page is copied. */
			pr_debug("pid %d: its parent's pages are not compared: %s", cp->pid,
				 errstr(cp->cow_pm < 0 ? cp->cow_pm : cp->cow_mem < 0 ? cp->cow_mem : -ENOMEM));
			cow_close(cp);
		}
	}
	for (size_t i = 0; i < maps->nr && r == 0; i++) {
		const struct ckpt_vma *v = &maps->v[i];
		uint64_t at;
		bool pfile;

		if (!page_vma_saved(inj, v))
			continue;
		if (!dirty && inj && ckpt_inject_is_scratch(inj, v->start, v->end)) {
			/* Merged with scratch memory despite MADV_DONTFORK: cut it out. */
			uint64_t from = v->start;

			for (uint64_t a = v->start; a <= v->end && r == 0; a += PS) {
				if (a < v->end && !ckpt_inject_is_scratch(inj, a, a + PS))
					continue;
				if (a > from)
					r = private_pages(cp, pm, v, from, a, false, true, vec);
				from = a + PS;
			}
			continue;
		}
		if (!dirty) {
			if (page_vma_full_content(v)) {
				r = copy_range(cp, v->start, (v->end - v->start) / PS);
				c->pages_scanned += (v->end - v->start) / PS;
			} else if (page_vma_is_shmem(v)) {
				r = shmem_pages(cp, v, false);
			} else {
				r = private_pages(cp, pm, v, v->start, v->end, false, true, vec);
			}
			/* Streaming: a mapping that changed under the scan is copied again, frozen. */
			r = again_frozen(cp, r, v->start, v->end);
			continue;
		}
		if (page_vma_is_shmem(v) || page_vma_full_content(v)) {
			/*
			 * A delta takes these whole too: shared memory (see
			 * shmem_pages), and a private mapping of a deleted file,
			 * whose pages not copied on write change with the file
			 * (written through a shared mapping of it, or write(2))
			 * without a fault of this mapping.
			 */
			if (page_vma_full_content(v)) {
				r = copy_range(cp, v->start, (v->end - v->start) / PS);
				c->pages_scanned += (v->end - v->start) / PS;
			} else {
				r = shmem_pages(cp, v, true);
			}
			r = again_frozen(cp, r, v->start, v->end);
			continue;
		}
		/*
		 * A delta: the dirty parts of this mapping. A private file
		 * mapping also gets a HOLE at every page with no content of its
		 * own outside them: MADV_DONTNEED of a page copied on write and
		 * not written since the last harvest gives the file's page back
		 * and leaves a uffd-wp marker where it was (the kernel keeps the
		 * bit of a file-backed mapping, zap_install_uffd_wp_if_needed),
		 * so no harvest reports it, and an older checkpoint's copy would
		 * show through.
		 */
		pfile = v->kind == CKPT_VMA_FILE && !v->shared;
		at = v->start;
		for (size_t k = 0; k < dirty->nr && r == 0; k++) {
			uint64_t s = MAX(dirty->v[k].start, v->start), e = MIN(dirty->v[k].end, v->end);

			if (s >= e)
				continue;
			if (pfile && at < s) {
				r = private_pages(cp, pm, v, at, s, true, false, vec);
				r = again_frozen(cp, r, at, s);
				if (r < 0)
					break;
			}
			r = private_pages(cp, pm, v, s, e, true, true, vec);
			r = again_frozen(cp, r, s, e);
			at = e;
		}
		if (r == 0 && pfile && at < v->end) {
			r = private_pages(cp, pm, v, at, v->end, true, false, vec);
			r = again_frozen(cp, r, at, v->end);
		}
	}
	if (r == 0 && cp->n)
		r = copier_flush(cp);
	cow_close(cp);
	cp->pm = -1;
	return r;
}

int page_saved_ranges(struct ckpt_inject *inj, const struct ckpt_vma_list *maps,
		      struct ckpt_range_set *ret)
{
	for (size_t i = 0; i < maps->nr; i++) {
		const struct ckpt_vma *v = &maps->v[i];
		int r;

		if (!page_vma_saved(inj, v))
			continue;
		r = ckpt_range_set_add(ret, v->start, v->end);
		if (r < 0)
			return r;
	}
	ckpt_range_set_normalize(ret);
	return 0;
}

int page_copy_gone_holes(struct page_copy *c, const struct ckpt_range_set *before,
			 const struct ckpt_range_set *now)
{
	struct ckpt_range_set gone;
	uint64_t holes = c->pages_hole;
	int r = 0;

	ckpt_range_set_init(&gone);
	for (size_t i = 0; i < before->nr && r == 0; i++)
		r = ckpt_range_set_add_uncovered(&gone, now, before->v[i].start, before->v[i].end);
	ckpt_range_set_normalize(&gone);
	for (size_t i = 0; i < gone.nr && r == 0; i++)
		r = add_run(c, gone.v[i].start, (gone.v[i].end - gone.v[i].start) / PS, PAGE_RUN_HOLE, 0);
	ckpt_range_set_done(&gone);
	c->pages_hole = holes; /* no memory of the process any more: not counted */
	return r;
}

/*
 * The written pages of [start, end) (uffd-wp bit clear: written since the
 * last harvest), by a read-only PAGEMAP_SCAN that re-arms nothing, into @ret.
 */
static int written_in(int pm, uint64_t start, uint64_t end, struct page_region *vec,
		      struct ckpt_range_set *ret)
{
	for (uint64_t at = start; at < end;) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = at,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = SCAN_VEC,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long n = ioctl(pm, PAGEMAP_SCAN, &arg);

		if (n < 0)
			return neg_errno();
		for (long i = 0; i < n; i++) {
			int r = ckpt_range_set_add(ret, vec[i].start, vec[i].end);

			if (r < 0)
				return r;
		}
		if (arg.walk_end <= at)
			return -EIO;
		at = arg.walk_end;
	}
	return 0;
}

int page_copy_drop_written(struct page_copy *c, const struct ckpt_proc *proc,
			   struct ckpt_range_set *dropped)
{
	_cleanup_free_ struct page_region *vec = malloc(SCAN_VEC * sizeof(*vec));
	_cleanup_free_ struct page_run *old = NULL;
	_cleanup_close_ int pm = -1;
	struct ckpt_range_set w, left;
	size_t nr_old = c->nr_runs;
	int r = 0;

	if (!vec)
		return -ENOMEM;
	pm = ckpt_proc_open_pagemap(proc);
	if (pm < 0)
		return pm;
	ckpt_range_set_init(&w);
	for (size_t i = 0; i < c->nr_runs && r == 0; i++)
		if (c->runs[i].kind == PAGE_RUN_DATA)
			r = written_in(pm, c->runs[i].addr, c->runs[i].addr + c->runs[i].nr * PS, vec, &w);
	if (r < 0 || !w.nr) {
		ckpt_range_set_done(&w);
		return r;
	}
	ckpt_range_set_normalize(&w);
	/* Keep the rest of each run; the runs are rebuilt from a copy of the old ones. */
	old = malloc(nr_old * sizeof(*old));
	if (!old) {
		ckpt_range_set_done(&w);
		return -ENOMEM;
	}
	memcpy(old, c->runs, nr_old * sizeof(*old));
	c->nr_runs = 0;
	ckpt_range_set_init(&left);
	for (size_t i = 0; i < nr_old && r == 0; i++) {
		const struct page_run *run = &old[i];
		uint64_t end = run->addr + run->nr * PS;

		if (run->kind != PAGE_RUN_DATA) {
			r = GROW(c->runs, c->cap_runs, c->nr_runs + 1);
			if (r == 0)
				c->runs[c->nr_runs++] = *run;
			continue;
		}
		left.nr = 0;
		r = ckpt_range_set_add_uncovered(&left, &w, run->addr, end);
		for (size_t k = 0; k < left.nr && r == 0; k++) {
			r = GROW(c->runs, c->cap_runs, c->nr_runs + 1);
			if (r == 0)
				c->runs[c->nr_runs++] = (struct page_run){
					left.v[k].start, (left.v[k].end - left.v[k].start) / PS,
					run->buf_off + (left.v[k].start - run->addr), PAGE_RUN_DATA, 0
				};
		}
		/* The rest was written since: it is copied again later. */
		for (size_t k = 0; k < w.nr && r == 0; k++) {
			uint64_t s = MAX(w.v[k].start, run->addr), e = MIN(w.v[k].end, end);

			if (s < e) {
				r = ckpt_range_set_add(dropped, s, e);
				c->pages_data -= (e - s) / PS;
			}
		}
	}
	ckpt_range_set_done(&left);
	ckpt_range_set_done(&w);
	return r;
}

int page_copy_collect(struct page_copy *c, struct ckpt_inject *inj, const struct ckpt_vma_list *maps,
		      const struct ckpt_range_set *dirty, const struct page_cow *cow)
{
	struct copier cp = { .c = c, .inj = inj, .cow = cow, .pid = ckpt_inject_pid(inj),
			     .proc = ckpt_inject_task_proc(inj), .mem_fd = -1, .pm = -1, .cow_pm = -1,
			     .cow_mem = -1, .local_off = c->buf_len };
	uint64_t t0 = now_ns();
	int r;

	r = copy_maps(&cp, maps, dirty);
	if (cp.mem_fd >= 0)
		close(cp.mem_fd);
	if (r < 0) {
		pr_err("cannot copy the memory of pid %d: %s", ckpt_inject_pid(inj), errstr(r));
		return r;
	}
	c->buf_len = cp.local_off;
	c->copy_ns += now_ns() - t0;
	return 0;
}

int page_copy_stream(struct page_copy *c, const struct page_stream *stream,
		     const struct ckpt_vma_list *maps, const struct ckpt_range_set *dirty)
{
	struct copier cp = { .c = c, .inj = stream->inj, .cow = stream->inj ? stream->cow : NULL,
			     .pm = -1, .cow_pm = -1, .cow_mem = -1,
			     .stream = stream, .pid = ckpt_proc_pid(stream->proc),
			     .proc = stream->proc, .local_off = 0 };
	uint64_t t0 = now_ns();
	int r;

	c->nr_runs = 0;
	c->buf_len = 0;
	r = stream->keep_last ? 0 : page_copy_reserve(c, stream->chunk);
	if (r < 0)
		return r;
	cp.local_off = c->buf_len;
	cp.mem_fd = ckpt_proc_open_mem(stream->proc, O_RDONLY);
	if (cp.mem_fd < 0) {
		r = cp.mem_fd;
		pr_err("cannot read the memory of pid %d: %s", cp.pid, errstr(r));
		return r;
	}
	r = copy_maps(&cp, maps, dirty);
	if (r == 0 && stream->chunk && !stream->keep_last && (cp.local_off || c->nr_runs))
		r = copier_drain(&cp);
	else if (r == 0)
		c->buf_len = cp.local_off;
	close(cp.mem_fd);
	if (r < 0) {
		/* gone; interrupted, stopped or the sink's own error (logged by the caller) */
		if (r != -ESRCH && r != -EINTR && r != -ECANCELED && !cp.sink_err)
			pr_err("cannot copy the memory of pid %d: %s", cp.pid, errstr(r));
		return r;
	}
	c->copy_ns += now_ns() - t0;
	return 0;
}
