/* SPDX-License-Identifier: MIT */
/*
 * lib/dump: the dump pipeline (ckpt_dump_run) and, beneath it, the
 * collection of a process's state (ckpt_dump_collect).
 *
 * The collection describes a
 * seized process (struct ckpt_state of ckpt/state.h): what only the target
 * can tell comes from remote system calls in query form (rt_sigaction with
 * no new action, sigaltstack with no new stack, getitimer, brk(0),
 * prctl(PR_GET_*)), everything else is read from outside (/proc through
 * lib/proc, prlimit, get_robust_list, PTRACE_PEEKSIGINFO, sock_diag through
 * lib/nl). Collection changes nothing in the target; the scratch memory it
 * uses is lib/inject's, unmapped at release and left out of the layout.
 */
#ifndef CKPT_DUMP_H
#define CKPT_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/util.h>

struct ckpt_inject;
struct ckpt_state;
struct ckpt_vma_list;

enum {
	/* Do not ask sock_diag about sockets (no netlink): only their inode is known. */
	CKPT_COLLECT_NO_SOCK_DIAG = 1u << 0,
	/*
	 * A unix socket connected to a peer outside the process is accepted:
	 * restore connects it again to the peer's address (CRIU's
	 * --ext-unix-sk). Without it such a socket is refused.
	 */
	CKPT_COLLECT_EXT_UNIX_SK = 1u << 1,
	/*
	 * Established TCP connections are saved with TCP_REPAIR (CRIU's
	 * --tcp-established): blocked with nftables and left in repair mode,
	 * which the caller must end (the dump pipeline does) unless the
	 * process is killed. Without it they are refused.
	 */
	CKPT_COLLECT_TCP_ESTABLISHED = 1u << 2,
};

struct ckpt_dump_collect_opts {
	unsigned int flags;      /* CKPT_COLLECT_* */
	/*
	 * Descriptors of the target that belong to ckpt, not to the
	 * application (the userfaultfd lib/track parks there): not recorded.
	 */
	const int *ignore_fds;
	size_t nr_ignore_fds;
	/*
	 * The mappings with their VmFlags, read from smaps shortly before the
	 * freeze (NULL: none). smaps is slow for large mappings (it walks their
	 * page tables); with a hint, collection reads maps and takes the flags
	 * of each mapping that is exactly as it was, and reads smaps only if
	 * one changed. A flag changed meanwhile on a whole mapping that is
	 * otherwise the same (madvise, mlock) is not seen: a caller that passes
	 * a hint accepts that window (ckpt_dump_continuous).
	 */
	const struct ckpt_vma_list *vmflags_hint;
	/*
	 * The largest deleted file still open ("ghost" file) whose contents
	 * are saved (bytes; 0: CKPT_DUMP_GHOST_LIMIT_DEFAULT). A larger one is
	 * recorded not restorable, naming its size and the limit.
	 */
	uint64_t ghost_limit;
};

#define CKPT_DUMP_GHOST_LIMIT_DEFAULT (1ULL << 20) /* 1 MiB, as CRIU's --ghost-limit */

/*
 * Describe the process seized by @inj (@opts NULL: defaults): every live
 * thread (zombie threads are left out), the process, its memory layout and
 * its file descriptors. Errors are logged once, naming the pid or tid and
 * the item: -ESRCH when the process died meanwhile, -EPERM when something is
 * not readable, -errno of a failed query otherwise.
 */
int ckpt_dump_collect(struct ckpt_inject *inj, const struct ckpt_dump_collect_opts *opts,
		      struct ckpt_state **ret) __must_check;

/* ---- the pipeline ---- */

struct ckpt_state_issues;

enum ckpt_dump_after {
	CKPT_DUMP_KILL = 0,       /* CRIU's default: the process is killed after a successful dump */
	CKPT_DUMP_LEAVE_RUNNING,  /* it runs on, tracked, so the next dump can be a delta */
	CKPT_DUMP_LEAVE_STOPPED,  /* it is left stopped (SIGSTOP), tracked */
};

struct ckpt_dump_opts {
	pid_t pid;
	const char *dir;          /* the new checkpoint; must not exist */
	const char *parent;       /* a checkpoint of the same process: make a delta; NULL: full */
	enum ckpt_dump_after after;
	int level;                /* zstd level or CKPT_IMAGE_LEVEL_NONE; 0: default */
	bool auto_full;           /* a delta is impossible: take a full dump instead of failing */
	bool allow_unrestorable;  /* dump even what restore cannot recreate */
	bool ext_unix_sk;         /* CKPT_COLLECT_EXT_UNIX_SK */
	bool tcp_established;     /* CKPT_COLLECT_TCP_ESTABLISHED */
	uint64_t ghost_limit;     /* see ckpt_dump_collect_opts; 0: the default (1 MiB) */
	const char *rundir;       /* tracking records; NULL: default */
	/*
	 * How long each freeze waits for every thread to stop (0:
	 * CKPT_INJECT_TIMEOUT_MS, 10 s): a thread in uninterruptible sleep
	 * fails the dump with -ETIMEDOUT instead of hanging it.
	 */
	unsigned int timeout_ms;
	/*
	 * Asked between stages and just before the commit (NULL: never): true
	 * aborts the dump with -EINTR, the process released as it was and
	 * nothing left at @dir. Once the checkpoint is committed (the point of
	 * no return: in kill mode the process is then killed) it is not asked
	 * again and the dump completes.
	 */
	bool (*interrupted)(void *userdata);
	void *userdata;
};

/*
 * A pipe or fifo among the fds (any fd of any process), as dump reports
 * it: what restore needs to reconnect it, and the bytes waiting in it.
 */
struct ckpt_dump_pipe {
	pid_t pid;                /* whose fd */
	int fd;
	bool fifo;                /* a named pipe, reopened by path; else pipe:[ino] */
	uint64_t ino;             /* of the pipe (a fifo: of the file) */
	int accmode;              /* O_RDONLY, O_WRONLY or O_RDWR */
	bool peer_inside;         /* a pipe with both ends in the tree: made again */
	bool saved;               /* its bytes are in the checkpoint (a pipe with both ends in the tree) */
	uint64_t queued;          /* bytes in its buffer at the dump */
	char *path;               /* fifo: its path; else NULL */
};

/* A process of the checkpointed tree. */
struct ckpt_dump_process {
	pid_t pid, ppid;
	char comm[64];
	bool zombie;              /* exited, not waited for: restored as a zombie */
	size_t threads;
	bool delta;               /* a delta of its checkpoint in the parent (else full) */
};

struct ckpt_dump_stats {
	bool delta;               /* false also when --auto-full fell back */
	char fallback[256];       /* why a delta became full, or "" */
	uint64_t generation;      /* of the tracking, recorded in the checkpoint */
	uint64_t freeze_ns;       /* the process was stopped this long */
	/*
	 * A delta that leaves the process running: a short freeze for the
	 * harvest alone, then those pages copied while it runs (freeze_ns is
	 * the second freeze, which copies what was written meanwhile).
	 */
	uint64_t prefreeze_ns, precopy_ns, pages_precopied;
	uint64_t collect_ns, track_ns, copy_ns, write_ns, total_ns;
	uint64_t pages_scanned;   /* pages looked at */
	uint64_t pages_data, pages_zero, pages_hole;
	uint64_t pages_inherited; /* of a child, saved once by its parent (copy-on-write since fork) */
	uint64_t bytes_raw;       /* data pages * 4096 (zero pages are not data) */
	uint64_t bytes_written;   /* pages.zst */
	size_t nr_threads, nr_vmas, nr_fds;
	struct ckpt_state_issues *unrestorable; /* what restore cannot recreate (owned) */
	size_t nr_pipes;          /* pipes and fifos, ascending fd (owned) */
	struct ckpt_dump_pipe *pipes;
	size_t nr_processes;      /* of the tree, root first, parents before children (owned) */
	struct ckpt_dump_process *processes;
	/*
	 * The dump refused, in the freeze, to protect the processes: they hold
	 * what restore cannot recreate (no allow_unrestorable). They were
	 * released as they were; the lists above say why.
	 */
	bool refused;
	/*
	 * A process of the tree ended during the dump, not by ckpt's hand
	 * (only a SIGKILL ends a frozen process: kill -9, the OOM killer):
	 * its pid and how it ended ("killed by SIGKILL", "" if unknown). If
	 * its pages were not all read before, the dump failed and committed
	 * nothing; after, the checkpoint is whole (kill mode: it died before
	 * ckpt's kill).
	 */
	pid_t died_pid;
	char died_how[64];
};

/*
 * Checkpoint process @opts->pid into @opts->dir: freeze, collect its state,
 * arm or harvest the tracking, copy the pages, resume (or keep it frozen
 * until the images are safe, then kill it), compress and commit atomically.
 * A failed dump never kills the process and leaves nothing at @opts->dir.
 * -EXDEV: the parent is of another process; -ESTALE: the tracking since the
 * parent is lost or was harvested by another command (no --auto-full);
 * -EPERM and @ret_stats->refused: unrestorable objects, or children that a
 * kill would orphan (listed in @ret_stats, even on failure).
 * -EINTR: @opts->interrupted said so before the commit. -ETIMEDOUT: a
 * thread did not stop within @opts->timeout_ms (named in the log); the
 * process runs on (ckpt_inject_seize_timeout() says how).
 */
int ckpt_dump_run(const struct ckpt_dump_opts *opts, struct ckpt_dump_stats *ret_stats) __must_check;
void ckpt_dump_stats_done(struct ckpt_dump_stats *st);

#endif
