/* SPDX-License-Identifier: MIT */
/* The object behind a mapping (/proc/PID/map_files). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "proc/proc-internal.h"
#include "util/err.h"
#include "util/util.h"

int ckpt_proc_open_map_file(const struct ckpt_proc *p, uint64_t start, uint64_t end, int flags)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "map_files/%" PRIx64 "-%" PRIx64, start, end);
	return RET_NERRNO(openat(p->dirfd, rel, flags | O_CLOEXEC));
}
