/* SPDX-License-Identifier: MIT */
/*
 * lib/dump: dirty tracking of a process tree (ckpt track -t PID without
 * -D): PID and all its descendants, each tracked with its own userfaultfd
 * (lib/track; a child does not inherit its parent's registration across
 * fork, since ckpt does not ask for UFFD_FEATURE_EVENT_FORK). The uffds
 * are held by ckpt, not parked in the processes (ckpt_track_opts.held):
 * the tracking ends with the command, whatever ends it, SIGKILL included.
 *
 * Every harvest is one freeze of the whole tree (the freeze of a tree dump,
 * lib/dump/tree.c: a consistent cut), in which each process is harvested on
 * its own, a process new in the tree is armed (its writes count from
 * then on), one that executed a new program is armed again, and one that
 * is gone is reported once as ended. A process that left the tree alive
 * (reparented out of it) is disarmed alone. A child armed here is rid of
 * the copy of its parent's parked userfaultfd it got from fork.
 *
 * It lives in lib/dump because the tree freeze does.
 */
#ifndef CKPT_TRACK_TREE_H
#define CKPT_TRACK_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/state.h>
#include <ckpt/track.h>
#include <ckpt/util.h>

struct ckpt_track_tree;

struct ckpt_track_tree_opts {
	pid_t pid;                  /* the root */
	unsigned int timeout_ms;    /* of every freeze; 0: the default */
	const char *rundir;         /* NULL: $CKPT_RUNDIR, else /run/ckpt */
	/*
	 * Told after a harvest, outside any freeze, what the samples cannot say: "exec" (a
	 * process of the tree armed again), "left" (left the tree alive:
	 * disarmed), "untracked" (a new process that cannot be armed: it is
	 * left alone, not tried again), with a message.
	 */
	void (*on_event)(const char *event, pid_t pid, const char *message, void *userdata);
	void *userdata;
};

/* One process in a sample. */
struct ckpt_track_tree_proc {
	pid_t pid, ppid;
	char comm[CKPT_STATE_COMM_LEN];
	bool born;                  /* new in the tree: armed at this freeze, nothing counted yet */
	bool execed;                /* executed a new program (or lost its tracking): armed again */
	bool ended;                 /* exited or left the tree since the last freeze: no counts */
	struct ckpt_track_stats st; /* this harvest's (zero when born, execed or ended) */
	uint64_t rss_kib;
};

struct ckpt_track_tree_sample {
	struct ckpt_track_stats total; /* the sums over the processes; generation: the root's */
	uint64_t freeze_ns;            /* the tree was stopped this long */
	uint64_t rss_kib;              /* of the live processes */
	size_t nr_procs;
	const struct ckpt_track_tree_proc *procs; /* tree order (root first), then the ended; valid until the next harvest */
};

/*
 * Freeze the tree and arm every process of it. An error (a process that
 * cannot be armed, tracked already: -EBUSY) leaves every process as it
 * was.
 */
int ckpt_track_tree_open(const struct ckpt_track_tree_opts *o, struct ckpt_track_tree **ret) __must_check;
/*
 * One interval: freeze the tree, harvest every process, arm the new ones,
 * release. -ESRCH: the root is gone; -ESTALE: the root's tracking was lost
 * (exec, its fd closed); -ETIMEDOUT: a thread did not stop. After an error
 * the processes armed so far stay tracked until ckpt_track_tree_disarm.
 */
int ckpt_track_tree_harvest(struct ckpt_track_tree *tt, struct ckpt_track_tree_sample *ret) __must_check;
/*
 * @pid executed a new program at @when_ns (CLOCK_MONOTONIC; the proc
 * connector said so): true when that is news, an exec of a tracked process
 * of the tree after the freeze that armed it, which is then armed again at
 * the next harvest (the root's ends a run: the caller's to say).
 */
bool ckpt_track_tree_note_exec(struct ckpt_track_tree *tt, pid_t pid, uint64_t when_ns);
/* Live processes tracked now. */
size_t ckpt_track_tree_nr_procs(const struct ckpt_track_tree *tt);
/*
 * Disarm every process (in one freeze of the tree, and alone those that
 * left it or when the root is gone): each runs untracked. Frees @tt.
 * -ETIMEDOUT: the tree could not be frozen; our uffds are closed, which
 * ends the tracking all the same (the kernel unregisters their ranges).
 */
int ckpt_track_tree_disarm(struct ckpt_track_tree *tt);
/* Drop our handles: closing the held uffds ends the tracking (the kernel unregisters). */
void ckpt_track_tree_free(struct ckpt_track_tree *tt);
CKPT_DEFINE_CLEANUP(struct ckpt_track_tree, ckpt_track_tree_free)

/* What ckpt_track_tree_stop did to one process of the tree. */
struct ckpt_track_tree_stopped {
	pid_t pid;
	char comm[CKPT_STATE_COMM_LEN];
	int result;                 /* 0 disarmed, -ESTALE its tracking was already lost, else -errno */
};

/*
 * ckpt track --stop: in one freeze of the tree of @o->pid, disarm every
 * process tracked by ckpt (armed by any command) and close the copies of
 * their userfaultfds that children inherited. *@ret: one entry per process
 * that was tracked (in tree order), *@ret_nr of them (0: none was). Fails
 * when the tree cannot be frozen, or a process's tracking is held by a
 * running command (-EBUSY; nothing is disarmed then).
 */
int ckpt_track_tree_stop(const struct ckpt_track_tree_opts *o, struct ckpt_track_tree_stopped **ret,
			 size_t *ret_nr) __must_check;

#endif
