/* SPDX-License-Identifier: MIT */
#ifndef CKPT_RESTORE_INTERNAL_H
#define CKPT_RESTORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/image.h>
#include <ckpt/inject.h>
#include <ckpt/pagesrc.h>
#include <ckpt/restore.h>
#include <ckpt/state.h>
#include <ckpt/tree.h>

#include "util/ids.h"

/* A shared memory object (shmem or memfd) made once, shared by its mappings and fds. */
struct rst_shm {
	struct ckpt_state_identity id;
	uint64_t size;
	int rfd;        /* in the child, parked above every fd of the checkpoint */
	const char *name;
};

struct rst_tree;

/* One process being restored. */
struct rst {
	const struct ckpt_restore_opts *o;
	struct rst_tree *tree;          /* the restore it is part of */
	size_t node;                    /* its index in tree->procs (and tree->tree's nodes) */
	struct ckpt_restore_stats *st;
	struct ckpt_chain *chain;       /* local eager restore: the fast iterator */
	struct ckpt_page_source *src;   /* remote, or lazy: documents and pages */
	struct ckpt_state *s;
	struct ckpt_restore_lazy_proc *lazy; /* lazy: what is handed over */
	char *dir;                      /* its checkpoint directory (local), or NULL */
	int lazy_remote_fd;             /* the uffd in the child before it is parked */
	pid_t pid;                  /* the child being built */
	/*
	 * The process comes back with the pid and thread ids it had: asked
	 * (--restore-pid), or always for more than one thread (glibc keeps
	 * thread ids in memory: struct pthread, mutex owners).
	 */
	bool same_ids;
	/* Else the same pid when it is free, a new one (with a warning) when not. */
	bool pid_if_free;
	struct ckpt_inject *inj;
	size_t thread;              /* the thread remote calls run in: index of inj and of s->threads */
	uint64_t area;              /* scratch area in the child (code, data) */
	uint64_t data;              /* remote data buffer */
	size_t data_used;
	struct rst_shm *shm;
	size_t nr_shm, cap_shm;
	int next_high_fd;           /* where the next parked fd goes */
	int max_fd;                 /* highest fd number of the checkpoint */
	int *local_fds;             /* per fd of the checkpoint: ours to hand in (inherited,
				       fifo opened again), or -1 */
	struct rst_ghost *ghosts;   /* deleted files made again (files.c), until rst_files_done */
	size_t nr_ghosts, cap_ghosts;
};

/* A deleted file made again from its blob: one per object, for all its fds and mappings. */
struct rst_ghost {
	struct ckpt_state_identity id;
	int fd;                     /* ours, read-write, close-on-exec */
};

/* A shared memory object made by one process of the tree, for the others. */
struct rst_tree_shm {
	struct ckpt_state_identity id;
	int fd;                         /* ours */
};

/* Whose privileges the restored processes may have at most (trust.c). */
struct rst_owner {
	bool confined;          /* root restores a checkpoint a user can write: that user's */
	uid_t uid;
	gid_t *groups;          /* the user's groups, the primary one first */
	size_t nr_groups;
	char name[64];          /* "uid 1000 (alice)" */
	char why[320];          /* what makes the checkpoint that user's */
};

/* The restore of a tree of processes (tree.c); one process: a tree of one. */
struct rst_tree {
	const struct ckpt_restore_opts *o;
	struct ckpt_restore_stats *st;
	struct ckpt_tree *tree;         /* NULL: a checkpoint without tree.json (one process) */
	struct rst *procs;              /* per node; [0] the root; a zombie has no state */
	size_t nr;
	struct rst_tree_shm *shm;
	size_t nr_shm;
	struct rst_owner owner;
	/* System V segments this restore took: made (removed again if it fails), or reused. */
	struct rst_sysv {
		int shmid;
		bool made;
	} *sysv;
	size_t nr_sysv;
};

#define RST_DATA_LEN (64 * 1024)
#define RST_AREA_LEN (4ULL << 20)

/* restore.c */
void rst_init(struct rst *r, struct rst_tree *rt, size_t node);
/*
 * Open process @r's checkpoint, @sub under the one restored ("." the root,
 * "proc-PID"), and its state documents: its chain (local, eager) or a page
 * source (lazy, or remote).
 */
int rst_open(struct rst *r, const char *sub) __must_check;
/* The content id of @r's newest checkpoint, as text. */
int rst_image_id(struct rst *r, char ret[CKPT_IMAGE_ID_STR_LEN + 1]) __must_check;

/* tree.c */
/* tree.json of the root's checkpoint, and every other process's checkpoint. */
int rst_tree_open(struct rst_tree *rt) __must_check;
/* After every rst_files_prepare: the pipes inside the tree, as local fds of their holders. */
int rst_tree_pipes(struct rst_tree *rt) __must_check;
/*
 * After node @node's rst_files_prepare: what ckpt made for the first user of
 * a shared description (a socket, a fifo, a ghost file) handed to the
 * later users too, before theirs.
 */
void rst_tree_share_local(struct rst_tree *rt, size_t node);
/* Once the root exists (seized, its session set): every other process, groups, zombies. */
int rst_tree_create(struct rst_tree *rt) __must_check;
/* A shared memory object an earlier process made (ours), or -1. */
int rst_tree_shm_fd(const struct rst *r, const struct ckpt_state_identity *id);
int rst_tree_mm_done(struct rst *r) __must_check;
int rst_tree_files_done(struct rst *r) __must_check;
void rst_tree_done(struct rst_tree *rt);
/* System V segment @shmid was taken by this restore already (made or reused). */
bool rst_tree_sysv_ours(const struct rst *r, int shmid);
/* System V segment @shmid is taken by this restore: @made by it, or reused. */
int rst_tree_sysv_take(struct rst *r, int shmid, bool made) __must_check;
/*
 * Every process attached its segments: those that were removed (IPC_RMID)
 * at the dump are removed again (@ok), or the restore failed and the ones
 * it made go (!@ok).
 */
void rst_tree_sysv_finish(struct rst_tree *rt, bool ok);

/* remote.c */
/* A remote system call in the child: its result, or -errno (of the call, or of ptrace). */
int64_t rst_call(struct rst *r, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		 uint64_t a4, uint64_t a5);
#define RCALL(r, nr, ...) rst_call_n((r), (nr), (uint64_t[6]){ __VA_ARGS__ })
int64_t rst_call_n(struct rst *r, long nr, const uint64_t args[6]);
/* Make the remote calls that follow in thread @idx (0: the leader). */
void rst_use_thread(struct rst *r, size_t idx);
/* Copy @len bytes into the child's data buffer; its address there (0: no room). */
uint64_t rst_put(struct rst *r, const void *buf, size_t len);
uint64_t rst_put_str(struct rst *r, const char *s);
/* cpu.c: ckpt and the new process @pid on one CPU while it is built; then apart again. */
struct rst_cpu;
struct rst_cpu *rst_cpu_together(pid_t pid); /* NULL: left as they were */
/* Every thread of @r's process gets ckpt's affinity back; ckpt too. */
void rst_cpu_apart(struct rst_cpu *c, const struct rst *r);

void rst_reset(struct rst *r);
/* Move a remote fd to the next number above the checkpoint's fds. */
int rst_park_fd(struct rst *r, int rfd);

/* check.c: everything that can be refused before a process exists. */
int rst_check(struct rst *r) __must_check;
/* "pid 42 (bash)", "thread 43 of pid 42 (java)": who holds id @id now. */
void rst_id_holder(pid_t id, char *buf, size_t len);
/*
 * clone3 said EEXIST for @id, yet no process has it: the threads of a
 * process that was just killed free their ids a moment after its wait
 * returns. Worth another try.
 */
bool rst_id_in_limbo(pid_t id);
/* @id is held by a process, other than a zombie about to be reaped (waited for a moment). */
bool rst_id_taken(pid_t id);
#define RST_LIMBO_TRIES 100 /* 10 ms apart */

/* trust.c (docs/SECURITY.md) */
/* Whose checkpoint it is, from every process's chain or source: refused, trusted or confined. */
int rst_trust_decide(struct rst_tree *rt) __must_check;
void rst_trust_done(struct rst_tree *rt);
/* A restorer that is not root: the capabilities it needs, refused clearly when it lacks them. */
int rst_trust_restorer(const struct rst_tree *rt) __must_check;
/* Confined: what process @r's state asks for, refused when its owner could not have it. */
int rst_trust_check(struct rst *r) __must_check;
/*
 * Confined: process @r (prepared, nothing of the checkpoint in it yet) takes
 * the owner's file-system credentials and groups, for every file it opens
 * or maps until its own credentials are set (rst_creds).
 */
int rst_trust_confine(struct rst *r) __must_check;
/* ckpt acts on the file system as the owner (when confined) until rst_owner_leave. */
int rst_owner_enter(const struct rst_tree *rt, struct thread_ids *sc) __must_check;
void rst_owner_leave(struct thread_ids *sc);
/*
 * What to add to a message about error @e of a file opened for @r: "" or,
 * confined and refused by permissions, "; it is opened as uid ... whose
 * checkpoint it is".
 */
const char *rst_trust_hint(const struct rst *r, int e);

/* mm.c */
int rst_prepare(struct rst *r) __must_check;    /* scratch, code page, empty the child */
int rst_mm(struct rst *r) __must_check;         /* vDSO, mappings */
int rst_pages(struct rst *r) __must_check;      /* the chain's pages */
int rst_mm_finish(struct rst *r) __must_check;  /* madvise, PR_SET_MM_MAP */
bool rst_vma_anon_backed(const struct ckpt_state_vma *v);
/* Is this mapping served lazily (when the restore is lazy)? */
bool rst_vma_lazy(const struct rst *r, const struct ckpt_state_vma *v);
/* The local chain it reads: its own, or its local page source's; NULL from a page server. */
static inline struct ckpt_chain *rst_chain(const struct rst *r)
{
	return r->chain ? r->chain : r->src ? ckpt_page_source_chain(r->src) : NULL;
}

/* lazy.c */
int rst_lazy_register(struct rst *r) __must_check;
bool rst_is_shm_vma(const struct ckpt_state_vma *v);

/* files.c */
/* The per-fd table of ours to hand in (local_fds), all -1. */
int rst_files_alloc(struct rst *r) __must_check;
/* Before the process exists: --inherit-fd, fifos opened again, pipes of stdio. */
int rst_files_prepare(struct rst *r) __must_check;
void rst_files_done(struct rst *r);
int rst_files(struct rst *r) __must_check;
/* Put remote @rfd at number f->fd with its close-on-exec flag (@rfd is closed). */
int rst_place_fd(struct rst *r, int rfd, const struct ckpt_state_fd *f) __must_check;
/* files.c: our fd of the deleted file @id made again (rst_files_prepare), or -1. */
int rst_ghost_fd(const struct rst *r, const struct ckpt_state_identity *id);
/* An fd that restore makes again, not the file at its path (a ghost file, own /proc file). */
bool rst_fd_made_again(const struct rst *r, const struct ckpt_state_fd *f);
/*
 * The checkpoint file @name of exactly @size bytes (checksum verified), from
 * the newest checkpoint of the chain; @what names its owner in errors.
 */
int rst_read_blob(struct rst *r, const char *name, uint64_t size, const char *what, void **ret)
	__must_check;
/* A working or root directory that was deleted ("PATH (deleted)"): its PATH's length. */
bool rst_dir_deleted(const char *path, size_t *ret_len);

/* task.c */
int rst_task(struct rst *r) __must_check;       /* signals, timers, limits: the process's */
/* Of thread @idx, in it: name, altstack, its pending signals, rseq, robust list, tid address. */
int rst_thread(struct rst *r, size_t idx) __must_check;
int rst_session(struct rst *r) __must_check;    /* setsid/setpgid in the leader, first */
int rst_seccomp(struct rst *r) __must_check;    /* every thread's, suspended until release */
int rst_creds(struct rst *r) __must_check;      /* every thread's, and its parent-death signal */
int rst_regs(struct rst *r) __must_check;       /* every thread's */

/* thread.c: the threads after the leader, made with their ids, each set up. */
int rst_threads(struct rst *r) __must_check;

/* sched.c */
/*
 * Give task @tid of the process being built the scheduling policy and
 * priority, nice value and timer slack of @t, from ckpt (no remote call);
 * what @t lacks (an older image) is left as it is. Errors are logged, naming
 * the thread. Call it once the process has all its threads.
 */
int rst_thread_sched(struct rst *r, pid_t tid, const struct ckpt_state_thread *t) __must_check;
/* Every thread's, after the build, unpinned (rst_cpu_apart). */
int rst_sched(struct rst *r) __must_check;

#endif
