/* SPDX-License-Identifier: MIT */
/* /proc/PID/fd/ and /proc/PID/fdinfo/. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc/proc-internal.h"
#include "util/err.h"
#include "util/util.h"

void ckpt_fd_info_done(struct ckpt_fd_info *f)
{
	if (!f)
		return;
	free(f->target);
	free(f->extra);
	f->target = f->extra = NULL;
}

void ckpt_fd_list_free(struct ckpt_fd_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nr; i++)
		ckpt_fd_info_done(&l->v[i]);
	free(l->v);
	free(l);
}

int ckpt_proc_parse_fdinfo(const char *text, struct ckpt_fd_info *ret)
{
	size_t extra_len = 0, cap = 0;
	_cleanup_free_ char *extra = NULL;
	bool have_pos = false, have_flags = false;
	const char *s = text;

	while (*s) {
		const char *eol = strchr(s, '\n');
		size_t ll;

		if (!eol)
			eol = s + strlen(s);
		ll = (size_t)(eol - s);
		if (!strncmp(s, "pos:", 4)) {
			char *end;

			errno = 0;
			ret->pos = strtoull(s + 4, &end, 10);
			if (errno || end == s + 4)
				return -EBADMSG;
			have_pos = true;
		} else if (!strncmp(s, "flags:", 6)) {
			char *end;

			errno = 0;
			ret->flags = (unsigned int)strtoul(s + 6, &end, 8);
			if (errno || end == s + 6)
				return -EBADMSG;
			have_flags = true;
		} else if (!strncmp(s, "mnt_id:", 7)) {
			ret->mnt_id = (int)strtol(s + 7, NULL, 10);
		} else if (!strncmp(s, "ino:", 4)) {
			ret->ino = strtoull(s + 4, NULL, 10);
		} else if (ll) {
			if (GROW(extra, cap, extra_len + ll + 2) < 0)
				return -ENOMEM;
			memcpy(extra + extra_len, s, ll);
			extra_len += ll;
			extra[extra_len++] = '\n';
			extra[extra_len] = '\0';
		}
		s = *eol ? eol + 1 : eol;
	}
	if (!have_pos || !have_flags)
		return -EBADMSG;
	free(ret->extra);
	ret->extra = TAKE_PTR(extra);
	return 0;
}

int ckpt_proc_read_fd(const struct ckpt_proc *p, int fd, struct ckpt_fd_info *ret)
{
	struct ckpt_fd_info f = { .fd = fd };
	_cleanup_free_ char *info = NULL;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "fd/%d", fd);
	r = readlink_at(p->dirfd, path, &f.target);
	if (r < 0)
		return r == -ENOENT ? -EBADF : r;
	snprintf(path, sizeof(path), "fdinfo/%d", fd);
	r = read_file_at(p->dirfd, path, &info, NULL);
	if (r == 0)
		r = ckpt_proc_parse_fdinfo(info, &f);
	if (r < 0) {
		ckpt_fd_info_done(&f);
		return r == -ENOENT ? -EBADF : r;
	}
	*ret = f;
	return 0;
}

static int cmp_fd(const void *a, const void *b)
{
	const struct ckpt_fd_info *x = a, *y = b;

	return (x->fd > y->fd) - (x->fd < y->fd);
}

int ckpt_proc_read_fds(const struct ckpt_proc *p, struct ckpt_fd_list **ret)
{
	_cleanup_(ckpt_fd_list_freep) struct ckpt_fd_list *l = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	size_t cap = 0;
	int fd;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	fd = openat(p->dirfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : neg_errno();
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return neg_errno();
	}
	while ((errno = 0, de = readdir(d))) {
		char *end;
		long n;
		int r;

		if (de->d_name[0] == '.')
			continue;
		n = strtol(de->d_name, &end, 10);
		if (*end || n < 0 || n > INT_MAX)
			return -EBADMSG;
		if (GROW(l->v, cap, l->nr + 1) < 0)
			return -ENOMEM;
		r = ckpt_proc_read_fd(p, (int)n, &l->v[l->nr]);
		if (r == -EBADF)
			continue; /* closed while we looked */
		if (r < 0)
			return r;
		l->nr++;
	}
	if (errno)
		return neg_errno();
	if (l->nr)
		qsort(l->v, l->nr, sizeof(*l->v), cmp_fd);
	*ret = TAKE_PTR(l);
	return 0;
}
