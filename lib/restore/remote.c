/* SPDX-License-Identifier: MIT */
/* Remote calls in the child being built, and its data buffer. */
#define LOG_AREA "restore"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>

#include "restore/restore-internal.h"
#include "util/log.h"
#include "util/util.h"

int64_t rst_call_n(struct rst *r, long nr, const uint64_t args[6])
{
	int64_t res;
	int e = ckpt_inject_syscall(r->inj, r->thread, nr, args, &res);

	if (e < 0)
		return e;
	return res;
}

int64_t rst_call(struct rst *r, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		 uint64_t a4, uint64_t a5)
{
	return rst_call_n(r, nr, (uint64_t[6]){ a0, a1, a2, a3, a4, a5 });
}

void rst_use_thread(struct rst *r, size_t idx)
{
	r->thread = idx;
}

void rst_reset(struct rst *r)
{
	r->data_used = 0;
}

uint64_t rst_put(struct rst *r, const void *buf, size_t len)
{
	size_t at = ALIGN_UP(r->data_used, 16);

	if (at + len > RST_DATA_LEN)
		return 0;
	if (ckpt_inject_write(r->inj, r->data + at, buf, len) < 0)
		return 0;
	r->data_used = at + len;
	return r->data + at;
}

uint64_t rst_put_str(struct rst *r, const char *s)
{
	return rst_put(r, s, strlen(s) + 1);
}

int rst_park_fd(struct rst *r, int rfd)
{
	int64_t fd = RCALL(r, SYS_fcntl, (uint64_t)rfd, F_DUPFD_CLOEXEC, (uint64_t)r->next_high_fd);

	if (fd < 0)
		return (int)fd;
	RCALL(r, SYS_close, (uint64_t)rfd);
	r->next_high_fd = (int)fd + 1;
	return (int)fd;
}
