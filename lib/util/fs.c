/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/fs.h"
#include "util/util.h"

#define RM_MAX_DEPTH 64

int write_file_sync_at(int dirfd, const char *name, const void *buf, size_t len, mode_t mode)
{
	int fd, r;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return neg_errno();
	r = write_all(fd, buf, len);
	if (r == 0 && fsync(fd) < 0)
		r = neg_errno();
	/* close() can report a delayed write error (NFS): take it too. */
	if (close(fd) < 0 && r == 0 && errno != EINTR)
		r = neg_errno();
	if (r < 0)
		(void)unlinkat(dirfd, name, 0);
	return r;
}

int fsync_at(int dirfd, const char *path)
{
	_cleanup_close_ int fd = -1;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	if (fsync(fd) < 0)
		return neg_errno();
	return 0;
}

static int rm_dir_contents(int fd, int depth)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r = 0;

	d = fdopendir(fd);
	if (!d) {
		r = neg_errno();
		close(fd);
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		bool is_dir = de->d_type == DT_DIR;
		int q;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;

			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno != ENOENT && !r)
					r = neg_errno();
				continue;
			}
			is_dir = S_ISDIR(st.st_mode);
		}
		if (is_dir) {
			int sub;

			if (depth >= RM_MAX_DEPTH) {
				if (!r)
					r = -ELOOP;
				continue;
			}
			sub = openat(dirfd(d), de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				if (errno != ENOENT && !r)
					r = neg_errno();
				continue;
			}
			q = rm_dir_contents(sub, depth + 1);
			if (q < 0 && !r)
				r = q;
			q = RET_NERRNO(unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR));
		} else {
			q = RET_NERRNO(unlinkat(dirfd(d), de->d_name, 0));
		}
		if (q < 0 && q != -ENOENT && !r)
			r = q;
	}
	if (errno && !r)
		r = neg_errno();
	return r;
}

int rm_rf_at(int dirfd, const char *name)
{
	struct stat st;
	int fd, r;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return neg_errno();
	if (!S_ISDIR(st.st_mode))
		return RET_NERRNO(unlinkat(dirfd, name, 0));
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	r = rm_dir_contents(fd, 1);
	if (r < 0)
		return r;
	return RET_NERRNO(unlinkat(dirfd, name, AT_REMOVEDIR));
}

/* A directory of this user's alone (made 0700 if missing): owned by the effective uid, no access for others. */
static bool own_private_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return false;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 077);
}

const char *rundir_default(void)
{
	static char buf[4096];
	const char *env = getenv("CKPT_RUNDIR"), *xdg = getenv("XDG_RUNTIME_DIR");
	unsigned int uid = (unsigned int)geteuid();
	char user[64];
	struct stat st;

	if (env && *env)
		return env;
	if (uid == 0)
		return "/run/ckpt";
	if (xdg && xdg[0] == '/' && snprintf(buf, sizeof(buf), "%s/ckpt", xdg) < (int)sizeof(buf) &&
	    own_private_dir(buf))
		return buf;
	snprintf(user, sizeof(user), "/run/user/%u", uid);
	if (lstat(user, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid) {
		snprintf(buf, sizeof(buf), "%s/ckpt", user);
		if (own_private_dir(buf))
			return buf;
	}
	/* Another user's directory of this name is refused where it is used (track_record_lock). */
	snprintf(buf, sizeof(buf), "/tmp/ckpt-%u", uid);
	(void)own_private_dir(buf);
	return buf;
}
