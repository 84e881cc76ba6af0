/* SPDX-License-Identifier: MIT */
/* One thread: what it waits in (wchan, syscall) and its timer slack. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc/proc-internal.h"
#include "util/err.h"
#include "util/util.h"

int ckpt_proc_read_wchan(const struct ckpt_proc *p, char *buf, size_t len)
{
	_cleanup_free_ char *text = NULL;
	size_t n;
	int r;

	if (!len)
		return -EINVAL;
	r = read_file_at(p->dirfd, "wchan", &text, &n);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	/* "0": runs, or the address is hidden (kptr_restrict). */
	if (n == 1 && text[0] == '0')
		n = 0;
	n = MIN(n, len - 1);
	memcpy(buf, text, n);
	buf[n] = '\0';
	return 0;
}

/* "NR ARG1 .. ARG6 SP PC" (blocked in a call), "-1 SP PC" (blocked outside one), "running". */
int ckpt_proc_parse_syscall(const char *text, long *ret)
{
	char *end;
	long nr;

	if (!strncmp(text, "running", 7))
		return -EAGAIN;
	errno = 0;
	nr = strtol(text, &end, 10);
	if (errno || end == text || (*end != ' ' && *end != '\n' && *end) || nr < -1)
		return -EBADMSG;
	*ret = nr;
	return 0;
}

int ckpt_proc_read_syscall(const struct ckpt_proc *p, long *ret)
{
	_cleanup_free_ char *text = NULL;
	int r;

	r = read_file_at(p->dirfd, "syscall", &text, NULL);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	return ckpt_proc_parse_syscall(text, ret);
}

int ckpt_proc_read_timerslack(const struct ckpt_proc *p, uint64_t *ret)
{
	_cleanup_free_ char *text = NULL;
	unsigned long long v;
	char *end;
	int r;

	r = read_file_at(p->dirfd, "timerslack_ns", &text, NULL);
	if (r < 0)
		return r;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || text[0] == '-' || (*end && *end != '\n'))
		return -EBADMSG;
	*ret = v;
	return 0;
}

int ckpt_proc_write_timerslack(const struct ckpt_proc *p, uint64_t ns)
{
	_cleanup_close_ int fd = openat(p->dirfd, "timerslack_ns", O_WRONLY | O_CLOEXEC);
	char text[32];
	int n;

	if (fd < 0)
		return neg_errno();
	n = snprintf(text, sizeof(text), "%" PRIu64, ns);
	return write_all(fd, text, (size_t)n);
}
