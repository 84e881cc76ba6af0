/* SPDX-License-Identifier: MIT */
#ifndef CKPT_TRACK_INTERNAL_H
#define CKPT_TRACK_INTERNAL_H

#include <ckpt/track.h>

#include "compat/pagemap.h"

/* A mapping registered with our uffd, as of the last harvest. */
struct track_vma {
	uint64_t start, end;
	int prot;
};

/* A mapping we could not register: reported whole at every harvest. */
struct track_dirty_vma {
	uint64_t start, end;
	char *name;
};

struct ckpt_tracker {
	pid_t pid;
	uint64_t start_time;
	char boot_id[40];
	char *rundir;
	int lock_fd;
	int gen_fd;               /* RUNDIR/track-PID.gen, the authoritative generation */
	bool record_dirty;        /* the JSON record lags behind (VMA list) */
	int uffd;                 /* our copy, -1 after attach until needed */
	int parked_fd;            /* number in the target */
	uint64_t uffd_ino;
	uint64_t features;
	uint64_t generation;
	int64_t armed_realtime_ns;
	struct track_vma *vmas;
	size_t nr_vmas, cap_vmas;
	struct track_dirty_vma *dirty;
	size_t nr_dirty, cap_dirty;
	struct page_region *vec;  /* reused PAGEMAP_SCAN output vector */
	size_t vec_len;
};

/* record.c */
int track_record_lock(struct ckpt_tracker *t);
int track_record_save(struct ckpt_tracker *t);
/* Persist the generation alone: cheap enough for inside a freeze. */
int track_gen_save(struct ckpt_tracker *t);
int track_record_load(struct ckpt_tracker *t);
void track_record_remove(const struct ckpt_tracker *t);
int track_identity(pid_t pid, uint64_t *ret_start_time, char ret_boot_id[40]);

/* track.c */
/* opts->rundir, else $CKPT_RUNDIR, else /run/ckpt. */
const char *track_rundir(const struct ckpt_track_opts *opts);
void track_free(struct ckpt_tracker *t);
int track_register(struct ckpt_tracker *t, uint64_t start, uint64_t end);
int track_add_vma(struct ckpt_tracker *t, uint64_t start, uint64_t end, int prot);
int track_add_dirty(struct ckpt_tracker *t, uint64_t start, uint64_t end, const char *name);
bool track_vma_eligible(struct ckpt_inject *inj, const void *vma);
const char *track_vma_label(const void *vma, char *buf, size_t len);
/* Is the parked fd still our uffd? 0, or -ESTALE with the reason in @why. */
int track_verify_parked(struct ckpt_tracker *t, struct ckpt_inject *inj, char *why, size_t len);

#endif
