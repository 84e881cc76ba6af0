/* SPDX-License-Identifier: MIT */
/* Internal helpers: durable file creation, fsync, recursive removal. */
#ifndef CKPT_LIB_FS_H
#define CKPT_LIB_FS_H

#include <stddef.h>
#include <sys/types.h>

#include <ckpt/util.h>

/*
 * Create @name under @dirfd (it must not exist), write all of @buf, fsync
 * and close it. On failure the partial file is removed. The directory entry
 * itself is made durable only by an fsync of the directory.
 */
int write_file_sync_at(int dirfd, const char *name, const void *buf, size_t len,
		       mode_t mode) __must_check;
/* fsync(2) of @path (a file or a directory) relative to @dirfd. */
int fsync_at(int dirfd, const char *path) __must_check;
/*
 * Remove @name under @dirfd: a file, or a directory with everything in it.
 * Symbolic links are removed, never followed. -ENOENT when @name is absent,
 * -ELOOP when directories nest deeper than 64 levels.
 */
int rm_rf_at(int dirfd, const char *name) __must_check;

/*
 * Where ckpt keeps its run-time records when no option names a place:
 * $CKPT_RUNDIR; for root /run/ckpt; for another user a directory of that
 * user's alone: $XDG_RUNTIME_DIR/ckpt, /run/user/UID/ckpt, else
 * /tmp/ckpt-UID (each made 0700 when missing).
 */
const char *rundir_default(void);

#endif
