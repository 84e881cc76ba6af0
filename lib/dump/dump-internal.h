/* SPDX-License-Identifier: MIT */
/* Stages shared by the dump pipeline (dump.c) and continuous checkpoints (continuous.c). */
#ifndef CKPT_DUMP_INTERNAL_H
#define CKPT_DUMP_INTERNAL_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/image.h>

#include "dump/pages.h"

struct ckpt_inject;
struct ckpt_proc;
struct ckpt_state;

#define TRACK_DOC "track.json"
#define TRACK_DOC_VERSION 1

/*
 * Who @pid is: pid, start time, boot id, executable (its path in *@ret_exe,
 * which @ret->exe points to; the caller frees it). Logs its error.
 */
int dump_identity(pid_t pid, struct ckpt_image_identity *ret, char **ret_exe) __must_check;
/* The four state documents of @st. */
int dump_put_state(struct ckpt_image_writer *w, const struct ckpt_state *st) __must_check;
/* track.json: the generation of the tracking at which the pages were copied. */
int dump_put_track_doc(struct ckpt_image_writer *w, uint64_t generation,
		       int parked_fd) __must_check;
/* The runs of @pages: DATA from the buffer, HOLE. */
int dump_add_pages(struct ckpt_image_writer *w, const struct page_copy *pages) __must_check;
/* [addr, addr + nr pages) of @run (one of @pages) to @w, as its kind says. */
int dump_add_run(struct ckpt_image_writer *w, const struct page_copy *pages, const struct page_run *run,
		 uint64_t addr, uint64_t nr) __must_check;

/*
 * Where the dumping thread runs during a freeze (dump.c). A remote system
 * call wakes the target's thread while we still run: on the same CPU it
 * costs about 5 us here, across CPUs 60-80 us. All best effort: a failure
 * only costs time.
 */
struct dump_cpu {
	cpu_set_t cpus;                 /* the calling thread's own affinity */
	bool have_cpus;
};

/* Remember the calling thread's affinity (to be given back by dump_cpu_back). */
void dump_cpu_init(struct dump_cpu *dc);
/*
 * Once the process is frozen: run the calling thread on the CPU @proc (the
 * process) last ran on, if its own affinity allows it. Before the freeze,
 * moving there would only push the process elsewhere.
 */
void dump_cpu_near(const struct dump_cpu *dc, const struct ckpt_proc *proc);
/* Give the calling thread its own affinity back. */
void dump_cpu_back(const struct dump_cpu *dc);

struct ckpt_tracker;
struct ckpt_range_set;

/*
 * A freeze for the harvest alone (seize, harvest, release), ckpt next to
 * the process meanwhile; the tracking record is saved after it. *@ret_ns:
 * how long the process was stopped. @timeout_ms: for the seize (0: default).
 */
int dump_harvest_only(pid_t pid, unsigned int flags, unsigned int timeout_ms, struct ckpt_tracker *t,
		      const struct dump_cpu *cpu, struct ckpt_range_set *ret,
		      uint64_t *ret_ns) __must_check;

/* tree.c: the process tree (see there) */
struct ckpt_tree;
struct ckpt_state_issues;
struct ckpt_proc_stat;
/* A zombie process (not a live one whose leader thread exited), by its stat. */
bool dump_is_zombie(pid_t pid, const struct ckpt_proc_stat *st);
/* continuous_tree.c */
struct ckpt_continuous_opts;
struct ckpt_continuous_result;
/* @pid has a child that is not a zombie. */
bool dump_has_children(pid_t pid);
/* ckpt_dump_continuous of a process with children: a tree dump per interval. */
int dump_continuous_tree(const struct ckpt_continuous_opts *o, struct ckpt_continuous_result *ret) __must_check;
/* @root and its descendants now, not frozen (parents first): a guess for the stages before the freeze. */
int dump_tree_list(pid_t root, pid_t **ret, size_t *ret_nr) __must_check;
/*
 * Freeze @root and every descendant: the tree (nodes without state) and an
 * injector per node (NULL for zombies), or an error with every process
 * released as it was. @flags: CKPT_INJECT_* for every seize.
 */
int dump_tree_freeze(pid_t root, unsigned int flags, unsigned int timeout_ms, struct ckpt_tree **ret_tree,
		     struct ckpt_inject ***ret_injs) __must_check;
/* Release every process of the tree, children first (@injs entries become NULL). */
void dump_tree_release(struct ckpt_tree *t, struct ckpt_inject **injs);
/* Kill mode, after the commit: every process killed and collected, children first. */
void dump_tree_kill(struct ckpt_tree *t, struct ckpt_inject **injs);
/* Once every node's state is collected: the pipes (with their bytes) and descriptions they share. */
int dump_tree_shared(struct ckpt_tree *t, struct ckpt_inject **injs) __must_check;
/* Add what restore cannot make of the tree itself (groups and sessions) to @issues. */
int dump_tree_judge(const struct ckpt_tree *t, struct ckpt_state_issues *issues) __must_check;

#endif
