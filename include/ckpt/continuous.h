/* SPDX-License-Identifier: MIT */
/*
 * lib/dump: continuous checkpoints (ckpt track -D). A series of checkpoints
 * of one running process, one per interval, in a directory (a series of
 * ckpt/image.h): the first full, each later one a delta with the complete
 * state of the process and the pages written since the one before.
 *
 * Each checkpoint is consistent: the process is frozen while its state is
 * collected, the written pages harvested (lib/track) and copied into a
 * buffer of ckpt; it runs again before compression and writing, which a
 * writer thread does. Two buffers: the next freeze may come while the
 * previous checkpoint is being written; when both are taken (the disk is
 * slower than the process writes), the next freeze waits for the writer:
 * the interval stretches, no page is dropped, memory stays bounded.
 *
 * The first checkpoint is copied while the process runs (pre-copy): tracking
 * is armed first, the pages are copied and compressed, the pages written
 * meanwhile are harvested in a short freeze and copied again, and so on
 * while that shrinks; then the freeze of the checkpoint copies what is left
 * on top (layers of the same checkpoint). A delta after a busy interval is
 * taken the same way, in one round. A large process is thus frozen about as
 * briefly for its first checkpoint as for a delta, and a delta's freeze
 * hardly depends on how much was written. Work done while the process runs
 * (copies, compression, writing) is niced; during a freeze the calling
 * thread moves to the CPU the process last ran on.
 *
 * The writer switches DIR/latest to each checkpoint once it is complete,
 * applies the retention (--keep: fold and remove, crash-safe) and, without
 * retention, folds a checkpoint whose chain grows longer than
 * CKPT_CONTINUOUS_CHAIN_MAX. At the end the process stays tracked (a later
 * ckpt dump --parent DIR/latest or ckpt track -D DIR continues the chain)
 * unless it exited or executed another program.
 */
#ifndef CKPT_CONTINUOUS_H
#define CKPT_CONTINUOUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/util.h>

#define CKPT_CONTINUOUS_CHAIN_MAX 256
/* ckpt track --max-buffer: the default, and the least it accepts. */
#define CKPT_CONTINUOUS_MAX_BUFFER_DEFAULT (256ULL << 20)
#define CKPT_CONTINUOUS_MAX_BUFFER_MIN (32ULL << 20)

struct ckpt_continuous_stats {
	uint64_t seq;            /* number of the checkpoint in the directory */
	char name[32];
	bool delta;              /* false: full */
	uint64_t generation;     /* of the tracking, recorded in track.json */
	double time_s;           /* of its freeze, since the start */
	uint64_t interval_ns;    /* since the previous freeze */
	uint64_t stretch_ns;     /* how late the freeze came: waiting for the writer */
	uint64_t freeze_ns;      /* the process was stopped this long for the checkpoint */
	uint64_t prefreeze_ns;   /* and before it, to harvest the pages copied while it ran */
	uint64_t precopy_ns;     /* the copy made while it ran (the first: all its pages) */
	uint64_t pages_written;  /* harvested: pages written since the previous freeze */
	uint64_t pages_data, pages_zero, pages_hole;
	uint64_t bytes_raw;      /* data pages * 4096 */
	uint64_t bytes_compressed; /* pages.zst */
	uint64_t bytes_disk;     /* every file of the checkpoint */
	uint64_t write_ns;       /* compression, writing, commit */
	uint64_t retain_ns;      /* folds and removals after it */
	size_t chain_length;     /* of this checkpoint, after retention */
	size_t points;           /* checkpoints in the directory */
	size_t folded, removed;  /* by retention after this checkpoint */
};

enum ckpt_continuous_end {
	CKPT_CONTINUOUS_COUNT = 0, /* the number of checkpoints asked for */
	CKPT_CONTINUOUS_DURATION,
	CKPT_CONTINUOUS_STOPPED,   /* @stop_fd became readable */
	CKPT_CONTINUOUS_EXITED,    /* the process exited */
	CKPT_CONTINUOUS_EXECED,    /* it executed another program: its tracking ended */
	CKPT_CONTINUOUS_LOST,      /* tracking was lost (the program closed its uffd...) */
	CKPT_CONTINUOUS_FAILED,    /* an error, logged */
	/*
	 * The process holds what restore cannot recreate (no allow_unrestorable):
	 * said once, with the list; the checkpoints before stay. -EPERM.
	 */
	CKPT_CONTINUOUS_UNRESTORABLE,
};

struct ckpt_continuous_opts {
	pid_t pid;
	const char *dir;          /* the series; created if it does not exist */
	uint64_t interval_ns;     /* between freezes; 0: 1 s */
	size_t keep;              /* restorable points to keep; 0: all */
	uint64_t count;           /* checkpoints to take; 0: no limit */
	uint64_t duration_ns;     /* 0: no limit */
	int level;                /* zstd level or CKPT_IMAGE_LEVEL_NONE; 0: default */
	int nice;                 /* niceness of the background work (copies while the process
				     runs, compression, writing); 0: 19 */
	bool allow_unrestorable;  /* checkpoint even what restore cannot recreate */
	const char *rundir;       /* tracking records; NULL: default */
	unsigned int timeout_ms;  /* for all threads to stop in a freeze; 0: 10 s (ckpt/inject.h) */
	int stop_fd;              /* readable: stop after what is captured is written; -1: none */
	/*
	 * The most memory the pages in hand may take (copied, waiting for the
	 * writer, being compressed); 0: CKPT_CONTINUOUS_MAX_BUFFER_DEFAULT. More
	 * pages than that are compressed as they are copied (longer freezes).
	 */
	uint64_t max_buffer;
	/* Called on the calling thread, after each checkpoint is complete. */
	void (*on_checkpoint)(const struct ckpt_continuous_stats *st, void *userdata);
	/*
	 * Called on the calling thread for other news: "armed", "continued"
	 * (the first checkpoint is a delta of DIR/latest). A retention that fails
	 * is a warning of the log: the points stay, the next one tries again.
	 */
	void (*on_event)(const char *event, const char *message, void *userdata);
	void *userdata;
};

struct ckpt_continuous_result {
	enum ckpt_continuous_end end;
	uint64_t checkpoints;     /* written */
	char last[32];            /* the last complete checkpoint, "" if none */
	uint64_t stretched;       /* freezes that waited for the writer */
};

/*
 * Take continuous checkpoints of @o->pid into @o->dir until the count, the
 * duration, @o->stop_fd, or the end of the process. What is captured when
 * it ends is written before it returns. 0 for a regular end (count,
 * duration, stop, exit, exec: see @ret->end), -errno otherwise (logged):
 * -EBUSY the directory or the process is in use by another ckpt command,
 * -ESTALE tracking lost, -ETIMEDOUT a thread did not stop within
 * @o->timeout_ms in a freeze (the process runs on, tracked if it was), -EPERM
 * the process holds what restore cannot recreate (@ret->end
 * CKPT_CONTINUOUS_UNRESTORABLE), -ENOSPC and other write errors (the last
 * complete checkpoint stays intact and DIR/latest names it).
 */
int ckpt_dump_continuous(const struct ckpt_continuous_opts *o,
			 struct ckpt_continuous_result *ret) __must_check;

#endif
