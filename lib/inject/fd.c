/* SPDX-License-Identifier: MIT */
/* File descriptors in and out of the target. */
#define LOG_AREA "inject"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "compat/syscalls.h"
#include "inject/inject-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

int ckpt_inject_take_fd(struct ckpt_inject *inj, int remote_fd, int *ret_fd)
{
	int fd = sys_pidfd_getfd(ckpt_inject_files_pidfd(inj), remote_fd, 0);

	if (fd < 0) {
		int r = neg_errno();

		pr_err("cannot take fd %d of pid %d: %s", remote_fd, inj->pid, errstr(r));
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/* Run a remote call whose -errno result becomes our error. */
static int call(struct ckpt_inject *inj, int64_t *res, long nr, const uint64_t args[6])
{
	int r = ckpt_inject_syscall(inj, 0, nr, args, res);

	if (r < 0)
		return r;
	if (*res < 0 && *res > -4096)
		return (int)*res;
	return 0;
}

int ckpt_inject_close_fd(struct ckpt_inject *inj, int remote_fd)
{
	int64_t res;
	int r = call(inj, &res, SYS_close, (const uint64_t[6]){ (uint64_t)remote_fd });

	if (r < 0)
		pr_err("cannot close fd %d in pid %d: %s", remote_fd, inj->pid, errstr(r));
	return r;
}

/*
 * The target makes a socket pair, we take one end with pidfd_getfd, send
 * @local_fd over it with SCM_RIGHTS, the target receives it with recvmsg and
 * moves it to @remote_fd. Both ends are closed in the target at the end.
 */
int ckpt_inject_put_fd(struct ckpt_inject *inj, int local_fd, int remote_fd, int flags,
		       int *ret_remote_fd)
{
	struct layout {
		int sv[2];
		struct msghdr msg;
		struct iovec iov;
		char byte;
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} cmsg;
	} lay;
	_cleanup_close_ int ours = -1;
	uint64_t scratch;
	int64_t res;
	int r, got = -1, sv[2] = { -1, -1 };
	bool cloexec = flags & O_CLOEXEC;

	_Static_assert(sizeof(lay) <= 4096, "put_fd layout fits the argument page");
	r = inj_arg_page(inj, &scratch);
	if (r < 0)
		return r;
	r = call(inj, &res, SYS_socketpair,
		 (const uint64_t[6]){ AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
				      scratch + offsetof(struct layout, sv) });
	if (r < 0)
		goto out;
	r = ckpt_inject_read(inj, scratch + offsetof(struct layout, sv), sv, sizeof(sv));
	if (r < 0)
		goto out;
	r = ckpt_inject_take_fd(inj, sv[0], &ours);
	if (r < 0)
		goto out;

	/* Send it. */
	{
		char byte = 'F';
		struct iovec iov = { &byte, 1 };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} c;
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
				    .msg_controllen = sizeof(c.buf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

		memset(&c, 0, sizeof(c));
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &local_fd, sizeof(int));
		if (sendmsg(ours, &m, MSG_DONTWAIT) != 1) {
			r = neg_errno();
			pr_err("cannot send fd %d to pid %d: %s", local_fd, inj->pid, errstr(r));
			goto out;
		}
	}

	/* Receive it in the target: build a msghdr in the scratch page. */
	memset(&lay, 0, sizeof(lay));
	lay.iov.iov_base = (void *)(uintptr_t)(scratch + offsetof(struct layout, byte));
	lay.iov.iov_len = 1;
	lay.msg.msg_iov = (void *)(uintptr_t)(scratch + offsetof(struct layout, iov));
	lay.msg.msg_iovlen = 1;
	lay.msg.msg_control = (void *)(uintptr_t)(scratch + offsetof(struct layout, cmsg));
	lay.msg.msg_controllen = sizeof(lay.cmsg.buf);
	r = ckpt_inject_write(inj, scratch, &lay, sizeof(lay));
	if (r < 0)
		goto out;
	r = call(inj, &res, SYS_recvmsg,
		 (const uint64_t[6]){ (uint64_t)sv[1], scratch + offsetof(struct layout, msg),
				      MSG_DONTWAIT | (cloexec ? MSG_CMSG_CLOEXEC : 0) });
	if (r < 0)
		goto out;
	r = ckpt_inject_read(inj, scratch, &lay, sizeof(lay));
	if (r < 0)
		goto out;
	{
		struct cmsghdr *cm = (struct cmsghdr *)lay.cmsg.buf;

		if (lay.msg.msg_controllen < CMSG_LEN(sizeof(int)) || cm->cmsg_type != SCM_RIGHTS) {
			r = -EPROTO;
			goto out;
		}
		memcpy(&got, CMSG_DATA(cm), sizeof(int));
	}
	/*
	 * Close the pair before moving the fd into place: in a process with few
	 * fds the pair may hold the very number wanted.
	 */
	for (int i = 0; i < 2; i++) {
		(void)call(inj, &res, SYS_close, (const uint64_t[6]){ (uint64_t)sv[i] });
		sv[i] = -1;
	}
	if (remote_fd >= 0 && got != remote_fd) {
		r = call(inj, &res, SYS_dup3,
			 (const uint64_t[6]){ (uint64_t)got, (uint64_t)remote_fd,
					      cloexec ? O_CLOEXEC : 0 });
		if (r < 0)
			goto out;
		(void)call(inj, &res, SYS_close, (const uint64_t[6]){ (uint64_t)got });
		got = remote_fd;
	}
	*ret_remote_fd = got;
	got = -1;
out:
	if (got >= 0)
		(void)call(inj, &res, SYS_close, (const uint64_t[6]){ (uint64_t)got });
	for (int i = 0; i < 2; i++)
		if (sv[i] >= 0)
			(void)call(inj, &res, SYS_close, (const uint64_t[6]){ (uint64_t)sv[i] });
	if (r < 0)
		pr_err("cannot install fd %d into pid %d as %d: %s", local_fd, inj->pid, remote_fd,
		       errstr(r));
	return r;
}
