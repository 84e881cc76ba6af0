/* SPDX-License-Identifier: MIT */
/* stat(2) through the magic links: fd/N, exe, map_files/START-END. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "proc/proc-internal.h"
#include "util/err.h"

static int stat_at(const struct ckpt_proc *p, const char *rel, struct stat *ret)
{
	struct stat st;

	if (fstatat(p->dirfd, rel, &st, 0) < 0)
		return neg_errno();
	*ret = st;
	return 0;
}

int ckpt_proc_stat_fd(const struct ckpt_proc *p, int fd, struct stat *ret)
{
	char rel[32];
	int r;

	if (fd < 0)
		return -EBADF;
	snprintf(rel, sizeof(rel), "fd/%d", fd);
	r = stat_at(p, rel, ret);
	return r == -ENOENT ? -EBADF : r;
}

int ckpt_proc_reopen_self_fd(int fd, int flags)
{
	char path[64];
	int r;

	if (fd < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	/*
	 * /proc/self/fd/N is a (magic) symbolic link: O_NOFOLLOW, which an fd
	 * may have been opened with (shm_open does), would refuse it (ELOOP).
	 * It only ever mattered to the open that made the original.
	 */
	r = open(path, (flags & ~O_NOFOLLOW) | O_CLOEXEC | O_NOCTTY);
	return r < 0 ? -errno : r;
}

int ckpt_proc_stat_exe(const struct ckpt_proc *p, struct stat *ret)
{
	return stat_at(p, "exe", ret);
}

int ckpt_proc_stat_map_file(const struct ckpt_proc *p, uint64_t start, uint64_t end,
			    struct stat *ret)
{
	char rel[PATH_MAX];
	int r;

	/* the kernel names them "%lx-%lx", no leading zeros */
	snprintf(rel, sizeof(rel), "map_files/%" PRIx64 "-%" PRIx64, start, end);
	r = stat_at(p, rel, ret);
	if (r != -EPERM)
		return r;
	return proc_map_file_alt(p, start, end, rel, sizeof(rel), ret) < 0 ? -EPERM : 0;
}
