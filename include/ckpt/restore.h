/* SPDX-License-Identifier: MIT */
/*
 * lib/restore: bring a checkpointed process back to life (a single-threaded
 * process): eager (every page in place before it runs) or lazy (its private
 * anonymous memory registered with a userfaultfd that lib/lazy serves),
 * from a checkpoint directory or a page server.
 *
 * ckpt forks a child and drives it with remote system calls (lib/inject):
 * it unmaps everything the child had, moves the child's vDSO onto the old
 * addresses, maps every mapping of the checkpoint at its address (files
 * reopened by path and checked against their recorded identity), writes the
 * pages of the chain, sets the mm fields (PR_SET_MM_MAP), recreates the file
 * descriptors, cwd, signal handlers, pending signals, itimers, rlimits,
 * credentials, rseq, robust list and clear-child-tid, then hands over the
 * registers and lets it run. Everything that cannot be restored is refused
 * before the process is created; a restore that fails later kills its child.
 */
#ifndef CKPT_RESTORE_H
#define CKPT_RESTORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/lazy.h>
#include <ckpt/util.h>

/*
 * Fds 0-2 that were a tty, or a pipe whose other end was outside the
 * process (--stdio). Fifos are opened again by path whatever the mode.
 */
enum ckpt_restore_stdio {
	CKPT_STDIO_DEFAULT = 0, /* ttys as INHERIT; such a pipe is refused (no --inherit-fd) */
	CKPT_STDIO_INHERIT,     /* ttys and pipes of fds 0-2 become ckpt's own 0-2 */
	CKPT_STDIO_NULL,        /* they become /dev/null */
	CKPT_STDIO_FILE,        /* stdin /dev/null, stdout and stderr appended to a file */
};

/*
 * --inherit-fd fd[FD]:KEY (as CRIU's): the process gets a duplicate of our
 * @fd in place of every fd of the checkpoint that KEY names: "pipe:[INO]"
 * for a pipe, or the path of a fifo or tty.
 */
struct ckpt_restore_inherit_fd {
	int fd;
	const char *key;
};

struct ckpt_restore_opts {
	const char *dir;             /* the checkpoint (newest of its chain) */
	const char *from;            /* or a page server: tcp://ADDR:PORT (no local images) */
	const char *token_file;      /* for a page server off loopback */
	bool lazy;                   /* anonymous and shared memory on demand (lib/lazy) */
	bool restore_pid;            /* the same pid as when dumped, or fail */
	bool leave_stopped;          /* stopped (SIGSTOP) once restored, as CRIU's --leave-stopped */
	enum ckpt_restore_stdio stdio;
	const char *stdio_file;      /* CKPT_STDIO_FILE */
	const struct ckpt_restore_inherit_fd *inherit_fds;
	size_t nr_inherit_fds;
	/*
	 * The caller will not wait for the process: our own stdout and stderr
	 * are never given to it through --stdio when they are pipes or fifos
	 * (whoever reads them would wait for the process); only inherit_fds can.
	 */
	bool detach;
	const char *pidfile;         /* written with the new pid before it runs */
};

/* What a lazy restore hands to the lazy-pages server, per live process. */
struct ckpt_restore_lazy_proc {
	pid_t pid;
	/*
	 * Its own checkpoint under the one restored, where its pages come
	 * from: "." for the root, "proc-PID" for the others (ckpt-images(5)).
	 */
	char dir[32];
	int uffd;                    /* ours; MISSING-registered, EVENT_FORK/REMAP/REMOVE/UNMAP */
	int parked_fd;               /* the process's own reference to it */
	size_t nr_ranges;
	struct ckpt_lazy_range *ranges;
	uint64_t eager_pages;        /* its pages written before it ran */
	char id[CKPT_IMAGE_ID_STR_LEN + 1]; /* of its checkpoint, as restore read it */
	struct ckpt_provenance prov;        /* of its checkpoint, as restore judged it */
	/*
	 * The page source restore read it from, still open (the checkpoint
	 * judged, its index read): hand it to the server (ckpt_lazy_source's
	 * opened, which takes it) rather than open the checkpoint again, or
	 * leave it to ckpt_restore_lazy_done().
	 */
	struct ckpt_page_source *src;
};

/* Every live process of the restored tree, in tree order: procs[0] is the root. */
struct ckpt_restore_lazy {
	struct ckpt_restore_lazy_proc *procs;
	size_t nr;
};
void ckpt_restore_lazy_done(struct ckpt_restore_lazy *l);

struct ckpt_restore_stats {
	pid_t pid;                   /* of the restored process */
	uint64_t check_ns;           /* reading the images, checks before creating it */
	uint64_t build_ns;           /* creating it, address space, state */
	uint64_t pages_ns;           /* writing the pages */
	uint64_t total_ns;           /* command start to process running */
	uint64_t pages_data, pages_zero, bytes_written;
	size_t nr_vmas, nr_fds, chain_length;
	size_t threads;              /* of the restored processes */
	size_t processes;            /* of the tree, zombies included (1: a single process) */
};

/*
 * Restore the checkpoint @opts->dir (or @opts->from) as a child of the
 * caller and let it run. With @opts->lazy, @ret_lazy receives one record
 * per live process of the tree (the root first), each with the uffd the
 * caller must serve (ckpt_lazy_server_add, one server for all of them is
 * fine) for that process to get its memory; its faults wait until then.
 * Free it with ckpt_restore_lazy_done().
 * On success the process is running and the caller may wait for it
 * (waitpid). Errors are logged with what and why: -ENOTSUP what restore
 * cannot do (listed), -ESTALE a file changed since the checkpoint, -EEXIST
 * the pid or a thread id is taken (restore_pid, or a process with more than
 * one thread: always restored with its ids), -EBADMSG corrupt images.
 */
int ckpt_restore_run(const struct ckpt_restore_opts *opts, struct ckpt_restore_stats *ret_stats,
		     struct ckpt_restore_lazy *ret_lazy) __must_check;

#endif
