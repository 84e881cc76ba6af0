/* SPDX-License-Identifier: MIT */
/*
 * lib/state: a tree of processes, the unit `ckpt dump -t PID` checkpoints
 * (PID and all its descendants) and `ckpt restore` rebuilds.
 *
 * Nodes are in tree order: a parent before its children, the root first.
 * Each live node has its own struct ckpt_state (threads, memory layout,
 * fds) in its own checkpoint directory; a zombie has only its wait status.
 * What several processes share is listed once here: pipes whose two ends
 * are in the tree (with the bytes in their buffers), and open file
 * descriptions held by fds of several processes (inherited across fork:
 * the same offset and flags), which restore makes once and hands to every
 * holder.
 *
 * On disk, tree.json in the root's checkpoint (the root's own documents
 * and pages stay at the top, as for a single process; a checkpoint without
 * tree.json is a tree of one). Pure code, like the rest of lib/state: the
 * parser never logs, returns -EBADMSG (what and where in @why) or
 * -EPROTONOSUPPORT for another version.
 */
#ifndef CKPT_TREE_H
#define CKPT_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/state.h>
#include <ckpt/util.h>

struct json_object;

#define CKPT_TREE_DOC "tree.json"
#define CKPT_TREE_VERSION 1
#define CKPT_TREE_MAX_NODES 4096
#define CKPT_TREE_DIR_LEN 32
#define CKPT_TREE_ID_LEN 32 /* lowercase hex digits of a checkpoint id */

struct ckpt_tree_node {
	pid_t pid, ppid, pgid, sid;
	ssize_t parent;              /* index of the parent node; -1 for the root */
	int exit_signal;             /* what its parent gets when it ends: SIGCHLD, another, 0 */
	char comm[CKPT_STATE_COMM_LEN];
	bool zombie;                 /* exited, not waited for: no state, no directory */
	int wait_status;             /* zombie: what wait(2) will return to its parent */
	/* Live: its checkpoint, relative to the tree's ("." for the root, "proc-PID"). */
	char dir[CKPT_TREE_DIR_LEN];
	/* Live: that checkpoint's id (ckpt_image_id_format), binding it to this tree. */
	char id[CKPT_TREE_ID_LEN + 1];
	struct ckpt_state *state;    /* live: owned; never in tree.json */
};

/* A pipe with a read and a write end in the tree: made once, its buffer refilled. */
struct ckpt_tree_pipe {
	uint64_t ino;                /* pipe:[INO] at the dump */
	uint32_t size;               /* its capacity, F_GETPIPE_SZ */
	uint64_t len;                /* bytes waiting in it, saved in @blob */
	char *blob;                  /* checkpoint file (of the root) with the bytes; NULL when len is 0 */
	void *data;                  /* dump only: the bytes until they are written */
};

/* One holder of a shared open file description. */
struct ckpt_tree_fd_ref {
	pid_t pid;
	int fd;
};

/*
 * An open file description held by fds of more than one process (kcmp
 * KCMP_FILE), or one a pipe of @pipes: the first user (in tree order)
 * makes it, the others get that very description.
 */
struct ckpt_tree_file {
	size_t nr_users;             /* >= 2 */
	struct ckpt_tree_fd_ref *users;
};

struct ckpt_tree {
	size_t nr_nodes;             /* >= 1; [0] is the root; parents before children */
	struct ckpt_tree_node *nodes;
	size_t nr_pipes;
	struct ckpt_tree_pipe *pipes;
	size_t nr_files;
	struct ckpt_tree_file *files;
};

int ckpt_tree_new(struct ckpt_tree **ret) __must_check;
void ckpt_tree_free(struct ckpt_tree *t);
CKPT_DEFINE_CLEANUP(struct ckpt_tree, ckpt_tree_free)
#define _cleanup_tree_ _cleanup_(ckpt_tree_freep)

/* Append a node (zeroed but for pid, ppid and parent); its index in @ret_idx. */
int ckpt_tree_add_node(struct ckpt_tree *t, pid_t pid, pid_t ppid, ssize_t parent,
		       size_t *ret_idx) __must_check;
/* The index of the node of @pid, or -1. */
ssize_t ckpt_tree_find(const struct ckpt_tree *t, pid_t pid);
/* The pipe of inode @ino, or NULL. */
struct ckpt_tree_pipe *ckpt_tree_find_pipe(const struct ckpt_tree *t, uint64_t ino);
/* The shared description @pid's @fd is one user of, or NULL; @ret_user: its index in users. */
const struct ckpt_tree_file *ckpt_tree_find_file(const struct ckpt_tree *t, pid_t pid, int fd,
						 size_t *ret_user);
/* Add @ref to the description of @first (made when new). */
int ckpt_tree_share_file(struct ckpt_tree *t, struct ckpt_tree_fd_ref first,
			 struct ckpt_tree_fd_ref ref) __must_check;
/* Live processes and all their threads. */
size_t ckpt_tree_nr_live(const struct ckpt_tree *t);
size_t ckpt_tree_nr_threads(const struct ckpt_tree *t);

/*
 * The process group (@sid false) or session (@sid true) of node @idx as
 * restore can make it: the node that leads it (index), -1 when it is the
 * root's own group or session at the dump that the root does not lead (it
 * stays the one the root is restored into, and so do the nodes in it), or
 * -2 when no node of the tree leads it and it is not the root's: not
 * restorable.
 */
ssize_t ckpt_tree_leader(const struct ckpt_tree *t, size_t idx, bool sid);

/* tree.json: nodes (without state), pipes, shared files. */
int ckpt_tree_to_json(const struct ckpt_tree *t, struct json_object **ret) __must_check;
/*
 * Parse tree.json into a new tree whose nodes have no state yet. Checked:
 * tree order (each parent before its child, ppid its pid), unique pids and
 * directories, a root that is live, users of shared files that are live
 * nodes.
 */
int ckpt_tree_from_json(struct json_object *obj, char *why, size_t whylen,
			struct ckpt_tree **ret) __must_check;

#endif
