/* SPDX-License-Identifier: MIT */
/* Stages shared by the dump pipeline (dump.c) and continuous checkpoints (continuous.c). */
#ifndef CKPT_DUMP_INTERNAL_H
#define CKPT_DUMP_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include <ckpt/image.h>

#include "dump/pages.h"

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

#endif
