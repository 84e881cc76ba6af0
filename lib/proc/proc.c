/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "proc/proc-internal.h"
#include "util/err.h"
#include "util/util.h"

static int open_dir(const char *root, const char *sub, pid_t pid,
		    struct ckpt_proc **ret)
{
	_cleanup_free_ struct ckpt_proc *p = NULL;
	char path[PATH_MAX];
	int fd;

	if (pid <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s%d", root, sub, pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : neg_errno();
	p = calloc(1, sizeof(*p));
	if (!p || !(p->root = strdup(root))) {
		close(fd);
		return -ENOMEM;
	}
	p->dirfd = fd;
	p->pid = pid;
	*ret = TAKE_PTR(p);
	return 0;
}

int ckpt_proc_open(const char *root, pid_t pid, struct ckpt_proc **ret)
{
	return open_dir(root ? root : "/proc", "", pid, ret);
}

int ckpt_proc_open_task(const struct ckpt_proc *p, pid_t tid, struct ckpt_proc **ret)
{
	char sub[64];

	snprintf(sub, sizeof(sub), "%d/task/", p->pid);
	return open_dir(p->root, sub, tid, ret);
}

static bool zombie(const struct ckpt_proc *p)
{
	struct ckpt_proc_stat st;

	return ckpt_proc_read_stat(p, &st) == 0 && (st.state == 'Z' || st.state == 'X');
}

int ckpt_proc_open_live(const char *root, pid_t pid, struct ckpt_proc **ret)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_free_ pid_t *tids = NULL;
	size_t n;
	int r = ckpt_proc_open(root, pid, &p);

	if (r < 0)
		return r;
	if (zombie(p) && ckpt_proc_list_tasks(p, &tids, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			struct ckpt_proc *t = NULL;

			if (tids[i] == pid || ckpt_proc_open(root, tids[i], &t) < 0)
				continue;
			if (!zombie(t)) {
				*ret = t;
				return 0;
			}
			ckpt_proc_close(t);
		}
	}
	*ret = TAKE_PTR(p);
	return 0;
}

void ckpt_proc_close(struct ckpt_proc *p)
{
	if (!p)
		return;
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p->root);
	free(p);
}

pid_t ckpt_proc_pid(const struct ckpt_proc *p)
{
	return p->pid;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

int ckpt_proc_list_tasks(const struct ckpt_proc *p, pid_t **ret, size_t *ret_nr)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_free_ pid_t *tids = NULL;
	size_t nr = 0, cap = 0;
	struct dirent *de;
	int fd;

	fd = openat(p->dirfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : neg_errno();
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return neg_errno();
	}
	while ((errno = 0, de = readdir(d))) {
		char *end;
		long tid;

		if (de->d_name[0] == '.')
			continue;
		tid = strtol(de->d_name, &end, 10);
		if (*end || tid <= 0 || tid > INT_MAX)
			return -EBADMSG;
		if (GROW(tids, cap, nr + 1) < 0)
			return -ENOMEM;
		tids[nr++] = (pid_t)tid;
	}
	if (errno)
		return neg_errno();
	if (nr)
		qsort(tids, nr, sizeof(*tids), cmp_pid);
	*ret = TAKE_PTR(tids);
	*ret_nr = nr;
	return 0;
}

int ckpt_proc_list_children(const struct ckpt_proc *p, pid_t **ret, size_t *ret_nr)
{
	_cleanup_free_ pid_t *tids = NULL, *kids = NULL;
	size_t nr_tids = 0, nr = 0, cap = 0;
	int r = ckpt_proc_list_tasks(p, &tids, &nr_tids);

	if (r < 0)
		return r;
	for (size_t t = 0; t < nr_tids; t++) {
		_cleanup_free_ char *text = NULL;
		char path[64];

		snprintf(path, sizeof(path), "task/%d/children", tids[t]);
		r = read_file_at(p->dirfd, path, &text, NULL);
		if (r == -ENOENT || r == -ESRCH)
			continue; /* the thread exited meanwhile */
		if (r < 0)
			return r;
		for (char *s = text, *end; *s; s = end) {
			long pid = strtol(s, &end, 10);

			if (end == s)
				break;
			if (pid <= 0 || pid > INT_MAX)
				return -EBADMSG;
			if (GROW(kids, cap, nr + 1) < 0)
				return -ENOMEM;
			kids[nr++] = (pid_t)pid;
		}
	}
	if (nr)
		qsort(kids, nr, sizeof(*kids), cmp_pid);
	*ret = TAKE_PTR(kids);
	*ret_nr = nr;
	return 0;
}

int ckpt_proc_read_auxv(const struct ckpt_proc *p, uint64_t **ret, size_t *ret_nr_words)
{
	_cleanup_free_ char *buf = NULL;
	uint64_t *w;
	size_t len, i;
	int r;

	r = read_file_at(p->dirfd, "auxv", &buf, &len);
	if (r < 0)
		return r;
	if (len % (2 * sizeof(uint64_t)))
		return -EBADMSG;
	w = (uint64_t *)buf;
	/* Keep the pairs up to and including AT_NULL. */
	for (i = 0; i + 1 < len / sizeof(uint64_t); i += 2)
		if (w[i] == 0)
			break;
	if (i + 1 >= len / sizeof(uint64_t) && len)
		return -EBADMSG;
	*ret_nr_words = len ? i + 2 : 0;
	*ret = (uint64_t *)TAKE_PTR(buf);
	return 0;
}

int ckpt_proc_read_exe(const struct ckpt_proc *p, char **ret)
{
	return readlink_at(p->dirfd, "exe", ret);
}

int ckpt_proc_read_cwd(const struct ckpt_proc *p, char **ret)
{
	return readlink_at(p->dirfd, "cwd", ret);
}

int ckpt_proc_read_root(const struct ckpt_proc *p, char **ret)
{
	return readlink_at(p->dirfd, "root", ret);
}

int ckpt_proc_read_personality(const struct ckpt_proc *p, unsigned long *ret)
{
	_cleanup_free_ char *buf = NULL;
	unsigned long v;
	char *end;
	int r;

	r = read_file_at(p->dirfd, "personality", &buf, NULL);
	if (r < 0)
		return r;
	errno = 0;
	v = strtoul(buf, &end, 16);
	if (errno || end == buf || (*end && *end != '\n'))
		return -EBADMSG;
	*ret = v;
	return 0;
}

int ckpt_proc_open_mem(const struct ckpt_proc *p, int flags)
{
	return RET_NERRNO(openat(p->dirfd, "mem", flags | O_CLOEXEC));
}

int ckpt_proc_open_pagemap(const struct ckpt_proc *p)
{
	return RET_NERRNO(openat(p->dirfd, "pagemap", O_RDONLY | O_CLOEXEC));
}

int ckpt_proc_clear_soft_dirty(const struct ckpt_proc *p)
{
	_cleanup_close_ int fd = openat(p->dirfd, "clear_refs", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return neg_errno();
	return write_all(fd, "4", 1);
}

/* The host's file @rel of /proc (or of @root: fixtures). */
static int read_host_file(const char *root, const char *rel, char **ret, size_t *ret_len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root ? root : "/proc", rel);
	return read_file_at(AT_FDCWD, path, ret, ret_len);
}

int ckpt_proc_read_sysctl(const char *root, const char *name, char **ret)
{
	char rel[256];
	char *buf = NULL;
	size_t len;
	int r;

	snprintf(rel, sizeof(rel), "sys/%s", name);
	r = read_host_file(root, rel, &buf, &len);
	if (r < 0)
		return r;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	*ret = buf;
	return 0;
}

int ckpt_proc_write_sysctl(const char *root, const char *name, const char *value)
{
	char path[PATH_MAX];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/sys/%s", root ? root : "/proc", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	if (write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		r = -EIO;
	if (close(fd) < 0 && r == 0)
		r = neg_errno();
	return r;
}

int ckpt_proc_parse_sysv_shm(const char *text, struct ckpt_sysv_shm **ret, size_t *ret_nr)
{
	struct ckpt_sysv_shm *v = NULL;
	size_t nr = 0;
	const char *line = strchr(text, '\n'); /* the header */

	while (line && *++line) {
		struct ckpt_sysv_shm s = { 0 };
		unsigned long long size, nattch;
		unsigned int perms;
		int n = sscanf(line, "%d %d %o %llu %*d %*d %llu %u %u %u %u", &s.key, &s.shmid, &perms, &size, &nattch,
			       &s.uid, &s.gid, &s.cuid, &s.cgid);
		struct ckpt_sysv_shm *g;

		if (n != 9) {
			free(v);
			return -EBADMSG;
		}
		s.perms = perms;
		s.size = size;
		s.nattch = nattch;
		g = reallocarray(v, nr + 1, sizeof(*v));
		if (!g) {
			free(v);
			return -ENOMEM;
		}
		v = g;
		v[nr++] = s;
		line = strchr(line, '\n');
	}
	*ret = v;
	*ret_nr = nr;
	return 0;
}

int ckpt_proc_read_sysv_shm(const char *root, struct ckpt_sysv_shm **ret, size_t *ret_nr)
{
	char *buf = NULL;
	size_t len;
	int r;

	r = read_host_file(root, "sysvipc/shm", &buf, &len);
	if (r < 0)
		return r;
	r = ckpt_proc_parse_sysv_shm(buf, ret, ret_nr);
	free(buf);
	return r;
}

int ckpt_proc_parse_flock_holder(const char *text, dev_t dev, ino_t ino, pid_t *ret)
{
	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		unsigned int maj, min;
		unsigned long long inode;
		char kind[16];
		int pid, n = 0;

		/* "1: FLOCK  ADVISORY  WRITE 4242 00:1a:1234 0 EOF"; a waiter's line has "->" after the number. */
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu%n", kind, &pid, &maj, &min, &inode, &n) != 5 || !n)
			continue;
		if (strcmp(kind, "FLOCK") || pid <= 0 || makedev(maj, min) != dev || inode != (unsigned long long)ino)
			continue;
		*ret = pid;
		return 0;
	}
	return -ENOENT;
}

int ckpt_proc_flock_holder(const char *root, dev_t dev, ino_t ino, pid_t *ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	r = read_host_file(root, "locks", &buf, &len);
	if (r < 0)
		return r;
	return ckpt_proc_parse_flock_holder(buf, dev, ino, ret);
}

int ckpt_proc_read_argv(const struct ckpt_proc *p, char ***ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len, n = 0;
	char **v, *strs;
	int r = read_file_at(p->dirfd, "cmdline", &buf, &len);

	if (r < 0)
		return r;
	if (!len)
		return -ENOENT; /* a kernel thread, a zombie */
	if (buf[len - 1] != '\0')
		buf[len++] = '\0'; /* read_file_at leaves room for it */
	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\0';
	/* One allocation: the pointers, then the strings. */
	v = malloc((n + 1) * sizeof(*v) + len);
	if (!v)
		return -ENOMEM;
	strs = (char *)(v + n + 1);
	memcpy(strs, buf, len);
	for (size_t i = 0, k = 0; k < n; k++) {
		v[k] = strs + i;
		i += strlen(strs + i) + 1;
	}
	v[n] = NULL;
	*ret = v;
	return 0;
}
