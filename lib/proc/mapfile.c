/* SPDX-License-Identifier: MIT */
/* The object behind a mapping (/proc/PID/map_files). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "proc/proc-internal.h"
#include "util/err.h"
#include "util/util.h"

/*
 * Without CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN) the kernel refuses
 * map_files (EPERM), even of one's own processes. The same object is then
 * reached another way, and proved the same by the device and inode that
 * maps gives for the mapping: an fd of the process (fd/N: ptrace access is
 * enough), or the mapping's path under the process's root. In @ret_rel, a
 * name relative to the process's directory; -EPERM if neither is there
 * (a mapped SysV segment, a deleted file or memfd no fd holds).
 */
int proc_map_file_alt(const struct ckpt_proc *p, uint64_t start, uint64_t end, char *ret_rel, size_t len,
		      struct stat *ret_st)
{
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	const struct ckpt_vma *v = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	struct stat st;
	dev_t dev;
	int fd;

	if (ckpt_proc_read_maps(p, 0, &maps) < 0)
		return -EPERM;
	for (size_t i = 0; i < maps->nr && !v; i++)
		if (maps->v[i].start <= start && end <= maps->v[i].end && maps->v[i].inode)
			v = &maps->v[i];
	if (!v)
		return -EPERM;
	dev = makedev(v->dev_major, v->dev_minor);
	if (v->name && v->name[0] == '/' && !v->deleted) {
		snprintf(ret_rel, len, "root%s", v->name);
		if (fstatat(p->dirfd, ret_rel, &st, 0) == 0 && st.st_dev == dev && st.st_ino == v->inode) {
			*ret_st = st;
			return 0;
		}
	}
	fd = openat(p->dirfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -EPERM;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(ret_rel, len, "fd/%s", de->d_name);
		if (fstatat(p->dirfd, ret_rel, &st, 0) == 0 && st.st_dev == dev && st.st_ino == v->inode) {
			*ret_st = st;
			return 0;
		}
	}
	return -EPERM;
}

int ckpt_proc_open_map_file(const struct ckpt_proc *p, uint64_t start, uint64_t end, int flags)
{
	char rel[PATH_MAX];
	struct stat want, got;
	int fd;

	snprintf(rel, sizeof(rel), "map_files/%" PRIx64 "-%" PRIx64, start, end);
	fd = openat(p->dirfd, rel, flags | O_CLOEXEC);
	if (fd >= 0 || errno != EPERM)
		return fd >= 0 ? fd : neg_errno();
	if (proc_map_file_alt(p, start, end, rel, sizeof(rel), &want) < 0)
		return -EPERM;
	/* The object, not the link: an fd opened O_NOFOLLOW (shm_open) is reopened too. */
	fd = openat(p->dirfd, rel, (flags & ~O_NOFOLLOW) | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return neg_errno();
	/* Still the same object (a path can be replaced between the stat and the open). */
	if (fstat(fd, &got) < 0 || got.st_dev != want.st_dev || got.st_ino != want.st_ino) {
		close(fd);
		return -EPERM;
	}
	return fd;
}
