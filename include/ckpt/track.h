/* SPDX-License-Identifier: MIT */
/*
 * lib/track: dirty-page tracking with userfaultfd asynchronous
 * write-protection, harvested with PAGEMAP_SCAN.
 *
 * Arming injects userfaultfd(2) into the target, takes the fd out with
 * pidfd_getfd, asks for UFFD_FEATURE_WP_ASYNC | WP_UNPOPULATED, registers
 * every mapping it can in write-protect mode and arms them all with one
 * PAGEMAP_SCAN (PM_SCAN_WP_MATCHING) pass. The kernel then records each
 * first write to a page by itself: nothing is added to the target's write
 * path. A harvest (with the process frozen) scans for PAGE_IS_WRITTEN pages
 * and re-arms them in the same call.
 *
 * Tracking outlives the command that armed it (unless held, see
 * ckpt_track_opts): the uffd is parked in the
 * target's own fd table at a high number with O_CLOEXEC, and a record file
 * in the run directory (default /run/ckpt, $CKPT_RUNDIR) keeps the fd
 * number, the uffd's inode, the registered ranges and a generation counter
 * that every harvest increments (persisted before it scans, so a crash can
 * only make a later delta refuse, never miss pages). A later command finds it with
 * ckpt_track_attach(), which proves the parked fd is still our uffd; if the
 * application closed it, exec'd, or the pid is another process now, the
 * tracking is reported lost and never yields a partial dirty set.
 *
 * What "written" means: the page's uffd-wp bit is clear. Anything that
 * loses the bit (MADV_DONTNEED, mremap, a new mapping) reads as written.
 * Writes that bypass page faults are not seen: long-term GUP pins
 * (io_uring fixed buffers, RDMA, VFIO) and pwrite(2) into a memfd/shmem file
 * that is also mapped.
 */
#ifndef CKPT_TRACK_H
#define CKPT_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/range.h>
#include <ckpt/util.h>

struct ckpt_inject;
struct ckpt_tracker;

struct ckpt_track_opts {
	const char *rundir; /* NULL: $CKPT_RUNDIR, else /run/ckpt */
	/*
	 * Arm only: the uffd is held by the caller alone, not parked in the
	 * process (a monitor whose tracking ends with it). Nothing is added
	 * to the process's fds, and when the caller's copy closes (its end,
	 * or a SIGKILL) the kernel unregisters everything: the process runs
	 * untracked. The record only says that a command holds it; a later
	 * command finds it lost.
	 */
	bool held;
};

struct ckpt_track_stats {
	uint64_t pages;           /* written pages reported */
	size_t nr_ranges;         /* coalesced ranges */
	size_t maps_added;        /* mappings (or parts) new since the last harvest */
	size_t maps_removed;
	size_t maps_changed;      /* same range, other protection */
	size_t maps_always_dirty; /* could not be registered: reported whole */
	uint64_t new_pages;       /* pages reported because their mapping is new */
	uint64_t kept_on_error;   /* ranges a scan reported before it failed (kept) */
	uint64_t scan_ns;         /* PAGEMAP_SCAN calls */
	uint64_t harvest_ns;      /* the whole harvest: maps, registration, scan */
	uint64_t generation;      /* after this harvest */
};

/*
 * Arm tracking of the process seized by @inj. Fails with -EBUSY when it is
 * already tracked (by ckpt, or by any other userfaultfd), -EOPNOTSUPP when
 * the kernel lacks a feature (the message names it and the Linux version).
 */
int ckpt_track_arm(struct ckpt_inject *inj, const struct ckpt_track_opts *opts,
		   struct ckpt_tracker **ret) __must_check;
/*
 * Find the tracking of @pid armed earlier (no freeze needed). -ENOENT: not
 * tracked; -ESTALE: it was, but is lost (the message says why; the record
 * is removed).
 */
int ckpt_track_attach(pid_t pid, const struct ckpt_track_opts *opts,
		      struct ckpt_tracker **ret) __must_check;
/*
 * Harvest the pages written since the last harvest (or arming), with the
 * process frozen by @inj: re-read the mappings, register new ones (their
 * pages count as written once), scan and re-arm. -ESTALE when tracking was
 * lost (exec, fd closed): the caller must treat everything as written.
 */
int ckpt_track_harvest(struct ckpt_tracker *t, struct ckpt_inject *inj,
		       struct ckpt_range_set *ret_dirty, struct ckpt_track_stats *ret_stats) __must_check;
/*
 * Unregister everything, close the parked fd and ours, remove the record:
 * the process runs untracked. Frees @t.
 */
int ckpt_track_disarm(struct ckpt_tracker *t, struct ckpt_inject *inj);
/*
 * A child forked while its parent was tracked holds a copy of the parent's
 * parked uffd (the same fd number, close-on-exec: fork keeps it), which the
 * program never opened. Close it in the process seized by @inj if it is
 * there: 1 closed, 0 none (another file at that number is left alone).
 */
int ckpt_track_drop_inherited(struct ckpt_tracker *t, struct ckpt_inject *inj);
/*
 * Save the record of the registered mappings (after a harvest, outside the
 * freeze). Without it a later command only reports more pages, never fewer.
 */
int ckpt_track_sync(struct ckpt_tracker *t) __must_check;
/*
 * Remove the records in the run directory of processes that are gone (the
 * pid is free, or another process has it now: start time or boot id
 * differ) and the lock files left without a record. A record in use by a
 * command (locked) or of a live process is never touched. Removals are
 * logged at info level; @ret_removed (may be NULL): the records removed.
 * Not for a freeze: it reads /proc for every record.
 */
int ckpt_track_sweep(const struct ckpt_track_opts *opts, size_t *ret_removed) __must_check;
/* Sync, then drop our handle; the tracking stays armed for a later command. */
void ckpt_track_close(struct ckpt_tracker *t);
CKPT_DEFINE_CLEANUP(struct ckpt_tracker, ckpt_track_close)

pid_t ckpt_track_pid(const struct ckpt_tracker *t);
/* The fd number parked in the target (it is excluded from checkpoints); -1 when held. */
int ckpt_track_parked_fd(const struct ckpt_tracker *t);
/* Harvests so far; a checkpoint records it to know whether a delta is valid. */
uint64_t ckpt_track_generation(const struct ckpt_tracker *t);
/* The mappings that could not be registered, with the reason, for reports. */
size_t ckpt_track_nr_always_dirty(const struct ckpt_tracker *t);
const char *ckpt_track_always_dirty_name(const struct ckpt_tracker *t, size_t i);

#endif
