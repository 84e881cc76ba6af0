/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procsnap.h"

/* status keys a restore keeps: everything else there is a counter or the tree's */
static const char *const status_kept[] = {
	"Name",	  "Umask",  "Uid",    "Gid",	"Groups", "NStgid", "NSpid",  "Threads",
	"SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "CapInh", "CapPrm", "CapEff",
	"CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters",
};

/* VmFlags the kernel sets itself: accounting, soft-dirty, userfaultfd registration */
static const char *const vmflags_ignored[] = { "ac", "sd", "um", "uw", "ui", "nr" };

static int add(struct procsnap *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add(struct procsnap *s, const char *fmt, ...)
{
	char **v = realloc(s->lines, (s->nr + 1) * sizeof(*v));
	va_list ap;
	int n;

	if (!v)
		return -ENOMEM;
	s->lines = v;
	va_start(ap, fmt);
	n = vasprintf(&v[s->nr], fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	s->nr++;
	return 0;
}

/* The whole of a small /proc file, NUL-terminated; NULL if it cannot be read. */
static char *slurp(const char *path)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *b = realloc(buf, cap * 2);

			if (!b)
				break;
			buf = b;
			cap *= 2;
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

static bool listed(const char *const *list, size_t n, const char *key, size_t keylen)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == keylen && !strncmp(list[i], key, keylen))
			return true;
	return false;
}

static int thread_status(struct procsnap *s, pid_t pid, pid_t tid)
{
	char path[128], *text, *line, *save = NULL;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	if (!(text = slurp(path)))
		return -errno ?: -EIO;
	for (line = strtok_r(text, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save)) {
		const char *colon = strchr(line, ':');

		if (colon && listed(status_kept, sizeof(status_kept) / sizeof(*status_kept), line,
				    (size_t)(colon - line)))
			r = add(s, "task/%d/%s", tid, line);
	}
	free(text);
	return r;
}

/* policy, rt priority and nice from stat; the timer slack. */
static int thread_sched(struct procsnap *s, pid_t pid, pid_t tid)
{
	char path[128], *text, *p, *f[64];
	size_t n = 0;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	if (!(text = slurp(path)))
		return -errno ?: -EIO;
	p = strrchr(text, ')');
	for (char *save = NULL, *t = p ? strtok_r(p + 2, " \n", &save) : NULL; t && n < 64;
	     t = strtok_r(NULL, " \n", &save))
		f[n++] = t;
	/* f[0] is field 3 (state): nice is field 19, rt_priority 40, policy 41 */
	r = n > 38 ? add(s, "task/%d/sched nice %s rt_priority %s policy %s", tid, f[16], f[37], f[38]) : -EBADMSG;
	free(text);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/proc/%d/timerslack_ns", tid);
	if ((text = slurp(path))) {
		text[strcspn(text, "\n")] = '\0';
		r = add(s, "task/%d/timerslack_ns %s", tid, text);
		free(text);
	}
	return r;
}

static int threads(struct procsnap *s, pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (!(d = opendir(path)))
		return -errno;
	while (r == 0 && (de = readdir(d)))
		if (de->d_name[0] != '.') {
			pid_t tid = atoi(de->d_name);

			r = thread_status(s, pid, tid);
			if (r == 0)
				r = thread_sched(s, pid, tid);
		}
	closedir(d);
	return r;
}

/* Each mapping, and its VmFlags but those the kernel sets itself. */
static int mappings(struct procsnap *s, pid_t pid)
{
	char path[64], *text, *line, *save = NULL, range[64] = "";
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	if (!(text = slurp(path)))
		return -errno ?: -EIO;
	for (line = strtok_r(text, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save)) {
		char flags[256] = "", *tok, *fsave = NULL;

		unsigned long lo, hi;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) {
			sscanf(line, "%63s", range);
			r = add(s, "map/%s %s", range, line + strlen(range));
			continue;
		}
		if (strncmp(line, "VmFlags:", 8))
			continue;
		for (tok = strtok_r(line + 8, " ", &fsave); tok; tok = strtok_r(NULL, " ", &fsave))
			if (!listed(vmflags_ignored, sizeof(vmflags_ignored) / sizeof(*vmflags_ignored), tok,
				    strlen(tok)))
				snprintf(flags + strlen(flags), sizeof(flags) - strlen(flags), " %s", tok);
		r = add(s, "map/%s VmFlags%s", range, flags);
	}
	free(text);
	return r;
}

static int file_lines(struct procsnap *s, pid_t pid, const char *name)
{
	char path[64], *text, *line, *save = NULL;
	int r = 0, n = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	if (!(text = slurp(path)))
		return -errno ?: -EIO;
	for (line = strtok_r(text, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save))
		r = add(s, "%s/%03d %s", name, n++, line);
	free(text);
	return r;
}

static int links(struct procsnap *s, pid_t pid)
{
	static const char *const names[] = { "cwd", "root", "exe" };
	char path[64], target[PATH_MAX];
	int r = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(*names) && r == 0; i++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/%s", pid, names[i]);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		r = add(s, "%s %s", names[i], target);
	}
	return r;
}

/* Each fd: what it is, its flags and position (fdinfo's first lines). */
static int fds(struct procsnap *s, pid_t pid)
{
	char path[64], sub[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!(d = opendir(path)))
		return -errno;
	while (r == 0 && (de = readdir(d))) {
		char target[PATH_MAX] = "", *info;
		unsigned long long pos = 0;
		unsigned int flags = 0;
		char *p;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		n = readlink(sub, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		snprintf(sub, sizeof(sub), "/proc/%d/fdinfo/%s", pid, de->d_name);
		if ((info = slurp(sub))) {
			if ((p = strstr(info, "pos:")))
				pos = strtoull(p + 4, NULL, 10);
			if ((p = strstr(info, "flags:")))
				flags = (unsigned int)strtoul(p + 6, NULL, 8);
			free(info);
		}
		/* pipes: the inode is the pipe's, new after a restore; the kind stays */
		if (!strncmp(target, "pipe:", 5))
			strcpy(target, "pipe");
		r = add(s, "fd/%3s %s flags %o pos %llu", de->d_name, target, flags, pos);
	}
	closedir(d);
	return r;
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int procsnap_take(pid_t pid, struct procsnap *s)
{
	int r;

	memset(s, 0, sizeof(*s));
	if ((r = threads(s, pid)) < 0 || (r = mappings(s, pid)) < 0 || (r = file_lines(s, pid, "limits")) < 0 ||
	    (r = file_lines(s, pid, "personality")) < 0 || (r = links(s, pid)) < 0 || (r = fds(s, pid)) < 0) {
		procsnap_free(s);
		return r;
	}
	qsort(s->lines, s->nr, sizeof(*s->lines), cmp_line);
	return 0;
}

void procsnap_free(struct procsnap *s)
{
	for (size_t i = 0; i < s->nr; i++)
		free(s->lines[i]);
	free(s->lines);
	memset(s, 0, sizeof(*s));
}

void procsnap_drop(struct procsnap *s, const char *what)
{
	size_t o = 0;

	for (size_t i = 0; i < s->nr; i++) {
		if (strstr(s->lines[i], what))
			free(s->lines[i]);
		else
			s->lines[o++] = s->lines[i];
	}
	s->nr = o;
}

/* The key of a line: up to the first space. */
static int key_cmp(const char *a, const char *b)
{
	size_t la = strcspn(a, " "), lb = strcspn(b, " ");
	int c = strncmp(a, b, la < lb ? la : lb);

	return c ? c : (la > lb) - (la < lb);
}

static void note(char *report, size_t len, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void note(char *report, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;

	if (*used + 1 >= len)
		return;
	va_start(ap, fmt);
	*used += (size_t)vsnprintf(report + *used, len - *used, fmt, ap);
	va_end(ap);
	if (*used >= len)
		*used = len - 1;
}

size_t procsnap_diff(const struct procsnap *a, const struct procsnap *b, char *report, size_t len)
{
	size_t i = 0, j = 0, n = 0, used = 0;

	if (len)
		report[0] = '\0';
	while (i < a->nr || j < b->nr) {
		int c = i == a->nr ? 1 : j == b->nr ? -1 : key_cmp(a->lines[i], b->lines[j]);

		if (c == 0) {
			if (strcmp(a->lines[i], b->lines[j]) && n++ < 8)
				note(report, len, &used, "\n  was:  %s\n  now:  %s", a->lines[i], b->lines[j]);
			i++;
			j++;
		} else if (c < 0) {
			if (n++ < 8)
				note(report, len, &used, "\n  gone: %s", a->lines[i]);
			i++;
		} else {
			if (n++ < 8)
				note(report, len, &used, "\n  new:  %s", b->lines[j]);
			j++;
		}
	}
	return n;
}
