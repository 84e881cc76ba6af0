/* SPDX-License-Identifier: MIT */
/*
 * The differential check of a checkpoint: the target, left stopped at the
 * checkpoint, against the process `ckpt restore --leave-stopped` makes
 * from it, byte for byte (memsnap.h). Criterion assertions.
 */
#ifndef CKPT_TEST_RESTORECMP_H
#define CKPT_TEST_RESTORECMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Wait (asserting, 1 s at most) until @pid is stopped. */
void wait_stopped(pid_t pid);
/*
 * Restore @dir (eager, or --lazy), stopped, and assert that its memory is
 * @target's, but for the kernel's CPU fields of the rseq area at @rseq_at
 * (0: none). @what names the checkpoint in a failure.
 */
void restore_compare(pid_t target, const char *dir, bool lazy, uint64_t rseq_at, const char *what);

#endif
