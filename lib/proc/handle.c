/* SPDX-License-Identifier: MIT */
/*
 * An inode by its file handle (what inotify's fdinfo gives for a watch):
 * a mount of its file system from /proc/PID/mountinfo, opened through
 * /proc/PID/root, and open_by_handle_at(2) on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc/proc-internal.h"
#include "util/err.h"
#include "util/util.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

/*
 * The mount point (as the process sees it) of a mount of device
 * @maj:@min, one that shows its file system from the top ("/") preferred.
 */
static int mount_of_dev(const struct ckpt_proc *p, unsigned int maj, unsigned int min, char **ret)
{
	_cleanup_free_ char *text = NULL, *best = NULL;
	bool best_top = false;
	char *line, *save = NULL;
	int r = read_file_at(p->dirfd, "mountinfo", &text, NULL);

	if (r < 0)
		return r;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char root[4096], mp[4096];
		unsigned int a, b;

		if (sscanf(line, "%*d %*d %u:%u %4095s %4095s", &a, &b, root, mp) != 4)
			return -EBADMSG;
		if (a != maj || b != min)
			continue;
		if (best && (best_top || strcmp(root, "/")))
			continue;
		free(best);
		if (!(best = strdup(mp)))
			return -ENOMEM;
		best_top = !strcmp(root, "/");
	}
	if (!best)
		return -ENOENT;
	unescape(best);
	*ret = TAKE_PTR(best);
	return 0;
}

int ckpt_proc_open_by_handle(const struct ckpt_proc *p, unsigned int maj, unsigned int min,
			     int type, const void *handle, size_t len, int flags, int *ret_fd,
			     char **ret_path)
{
	_cleanup_free_ char *mp = NULL, *rel = NULL, *path = NULL;
	_cleanup_free_ struct file_handle *fh = NULL;
	_cleanup_close_ int mfd = -1, fd = -1;
	char link[64];
	int r;

	if (len > MAX_HANDLE_SZ)
		return -EINVAL;
	r = mount_of_dev(p, maj, min, &mp);
	if (r < 0)
		return r;
	if (asprintf(&rel, "root%s", mp) < 0)
		return -ENOMEM;
	/* Not O_PATH: open_by_handle_at() refuses an O_PATH mount fd. */
	mfd = openat(p->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return neg_errno();
	fh = malloc(sizeof(*fh) + len);
	if (!fh)
		return -ENOMEM;
	fh->handle_bytes = (unsigned int)len;
	fh->handle_type = type;
	memcpy(fh->f_handle, handle, len);
	fd = open_by_handle_at(mfd, fh, flags | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	if (ret_path) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		r = readlink_at(AT_FDCWD, link, &path);
		if (r < 0)
			return r;
		*ret_path = TAKE_PTR(path);
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}
