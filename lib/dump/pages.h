/* SPDX-License-Identifier: MIT */
/*
 * Which pages a checkpoint saves, and copying them out of a frozen process.
 *
 *  - private anonymous memory (heap, stack, anon): pages present or swapped;
 *  - private file mappings: pages that are anonymous copies (written, COW);
 *    clean page-cache pages come back from the file at restore;
 *  - shared anonymous memory, memfd, SysV shm: the data of the object
 *    (SEEK_DATA/SEEK_HOLE through map_files, so pages that this process
 *    has not faulted in are not missed);
 *  - shared file mappings: nothing (their contents are the file's);
 *  - private mappings of a deleted file (or a memfd): every page, since
 *    restore cannot reopen the file; they come back as anonymous memory;
 *  - [vdso], [vvar], [vvar_vclock], [vsyscall] and ckpt's scratch: nothing.
 *
 * With a dirty set (a delta), only dirty pages are considered, and a dirty
 * page that no longer has content of its own (dropped, never touched in a
 * new mapping, a private file page back to its file) becomes a HOLE, so that
 * restore never takes it from an older checkpoint.
 */
#ifndef CKPT_DUMP_PAGES_H
#define CKPT_DUMP_PAGES_H

#include <stdint.h>

#include <ckpt/proc.h>
#include <ckpt/range.h>

struct ckpt_inject;

enum page_run_kind {
	PAGE_RUN_DATA,    /* contents copied into the buffer */
	PAGE_RUN_HOLE,    /* no content of its own: the mapping's backing */
	PAGE_RUN_INHERIT, /* the same bytes as the parent process's pages there (struct page_cow) */
};

struct page_run {
	uint64_t addr;
	uint64_t nr;      /* pages */
	uint64_t buf_off; /* DATA: offset in page_copy.buf */
	enum page_run_kind kind;
	pid_t from;       /* INHERIT: the parent's pid */
};

struct page_copy {
	struct page_run *runs;
	size_t nr_runs, cap_runs;
	uint8_t *buf;     /* DATA pages, in run order */
	size_t buf_len;   /* bytes used */
	size_t buf_cap;   /* bytes mapped (and populated) */
	uint64_t pages_data, pages_hole, pages_scanned;
	uint64_t pages_inherit; /* INHERIT, not copied */
	uint64_t copy_ns;
};

void page_copy_init(struct page_copy *c);
void page_copy_done(struct page_copy *c);
/*
 * Map and populate room for @bytes of page data before the freeze, so that
 * copying while the target is stopped does not take page faults in ckpt.
 */
int page_copy_reserve(struct page_copy *c, size_t bytes) __must_check;

/*
 * The parent of a process in a tree, frozen with it, whose checkpoint of
 * the same tree checkpoint saves its own private pages: a private page of
 * the child that is still the parent's copy-on-write since fork (the same
 * physical page at the same address, pagemap) and is byte for byte the
 * parent's (compared, so that no kernel behaviour between two reads of
 * pagemap can make a wrong page) becomes a PAGE_RUN_INHERIT run instead of
 * a copy: saved once, by the parent.
 */
struct page_cow {
	const struct ckpt_proc *proc;      /* the parent's */
	struct ckpt_inject *inj;           /* the parent's: its scratch is not saved */
	const struct ckpt_vma_list *maps;  /* the parent's, read while frozen */
	pid_t pid;                         /* the parent's (the process's, not a thread's) */
};

/*
 * With the process frozen by @inj: select the pages of @maps to save (all,
 * or those in @dirty when it is not NULL) and copy their contents; with
 * @cow (may be NULL), the pages the parent saves for it are not copied.
 */
int page_copy_collect(struct page_copy *c, struct ckpt_inject *inj, const struct ckpt_vma_list *maps,
		      const struct ckpt_range_set *dirty, const struct page_cow *cow) __must_check;

/* Copying from a process that runs. */
struct page_stream {
	const struct ckpt_proc *proc; /* of the process */
	/* Frozen: its injector (the scratch area is not saved; no read fails); NULL: running. */
	struct ckpt_inject *inj;
	const struct page_cow *cow;   /* frozen (@inj) only: the parent's pages not copied; may be NULL */
	size_t chunk;                 /* bytes in the buffer before the sink takes them; 0: keep all */
	/*
	 * The last chunk stays in the buffer (the caller hands it on later);
	 * the buffer is not mapped in advance, it grows up to @chunk. Frozen
	 * (@inj), a full buffer hands its oldest quarter to the sink and keeps
	 * the rest, so only the excess is handed on during the freeze; the
	 * sink gets a view of the buffer's runs and must not change them.
	 */
	bool keep_last;
	/* Takes the runs and pages of @c (they are dropped when it returns 0). */
	int (*sink)(struct page_copy *c, void *userdata);
	void *userdata;
	/*
	 * Ranges that could not be read because their mapping changed meanwhile
	 * (they reach the sink as zeros): the caller copies them again, frozen.
	 * Not used with @inj.
	 */
	struct ckpt_range_set *failed;
};

/*
 * Without a freeze: copy the pages a full checkpoint of the process would
 * save (those of @maps; with @dirty, only those, as a delta: DATA or HOLE),
 * a chunk at a time, handing each chunk to the sink. The copy is not
 * consistent by itself: pages written meanwhile are whatever they were when
 * read, so a caller tracks writes from before the copy on and copies the
 * pages written since on top of it. -ESRCH: the process is gone.
 */
int page_copy_stream(struct page_copy *c, const struct page_stream *stream,
		     const struct ckpt_vma_list *maps, const struct ckpt_range_set *dirty) __must_check;

/*
 * Pages copied while the process runs, before they are written to disk:
 * drop from @c the DATA pages written since the last harvest (a read-only
 * PAGEMAP_SCAN: their uffd-wp bit is clear, the next harvest reports them)
 * and add them to @dropped, for the caller to copy again: a page copied
 * now and written again before the checkpoint's freeze would be saved
 * twice. Pages not written since are what the process holds.
 */
int page_copy_drop_written(struct page_copy *c, const struct ckpt_proc *proc,
			   struct ckpt_range_set *dropped) __must_check;

/* The ranges of the mappings of @maps that a checkpoint saves pages of (normalized). */
int page_saved_ranges(struct ckpt_inject *inj, const struct ckpt_vma_list *maps,
		      struct ckpt_range_set *ret) __must_check;
/*
 * A delta: HOLE runs for what lies in @before (where the parent chain holds
 * pages) and not in @now (the saved mappings now), after the runs already
 * there; not counted in pages_hole. What the chain saved at an address that
 * is not mapped any more (munmap, mremap) must not come back at restore,
 * where it would lie outside every mapping.
 */
int page_copy_gone_holes(struct page_copy *c, const struct ckpt_range_set *before,
			 const struct ckpt_range_set *now) __must_check;

/* Would a checkpoint save pages of this mapping at all? */
bool page_vma_saved(struct ckpt_inject *inj, const struct ckpt_vma *v);
bool page_vma_is_shmem(const struct ckpt_vma *v);
/* A private mapping of a deleted file: saved in full. */
bool page_vma_full_content(const struct ckpt_vma *v);

#endif
