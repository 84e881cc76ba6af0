/* SPDX-License-Identifier: MIT */
/* Sockets with deadlines: whole messages in, whole messages out, never SIGPIPE. */
#define LOG_AREA "net"
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net/net-internal.h"
#include "util/err.h"
#include "util/util.h"

int net_why(char *why, size_t whylen, int r, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return r;
}

uint64_t deadline_in(uint64_t ms)
{
	return ms ? now_ns() + ms * 1000000ULL : 0;
}

/*
 * poll(2) for @events until @deadline (0: forever). 0 ready, -ETIMEDOUT,
 * -EINTR when @c->cancel_fd became readable, -errno.
 */
static int wait_fd(const struct conn *c, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = c->fd, .events = events},
				      {.fd = c->cancel_fd, .events = POLLIN}};
		int timeout = -1, r;

		if (deadline) {
			uint64_t now = now_ns();

			if (now >= deadline)
				return -ETIMEDOUT;
			timeout =
				(int)MIN((deadline - now + 999999) / 1000000, (uint64_t)INT32_MAX);
		}
		r = poll(p, c->cancel_fd >= 0 ? 2 : 1, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return neg_errno();
		if (c->cancel_fd >= 0 && p[1].revents)
			return -EINTR;
		if (r > 0)
			return 0;
	}
}

int conn_wait_readable(struct conn *c, uint64_t deadline)
{
	return wait_fd(c, POLLIN, deadline);
}

/* Drop @n bytes from the front of @iov. */
static void iov_advance(struct iovec **iov, int *niov, size_t n)
{
	while (*niov > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*niov)--;
	}
	if (*niov > 0 && n) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

int conn_recvv(struct conn *c, struct iovec *iov, int niov, uint64_t deadline, size_t *ret_got)
{
	size_t got = 0;
	int r = 0;

	while (niov > 0 && iov->iov_len == 0) {
		iov++;
		niov--;
	}
	while (niov > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)MIN(niov, 1024)};
		ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT);

		if (n > 0) {
			got += (size_t)n;
			c->bytes_in += (uint64_t)n;
			iov_advance(&iov, &niov, (size_t)n);
			continue;
		}
		if (n == 0) {
			r = -ECONNRESET;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			r = neg_errno();
			break;
		}
		r = wait_fd(c, POLLIN, deadline);
		if (r < 0)
			break;
	}
	if (ret_got)
		*ret_got = got;
	return r;
}

int conn_recv(struct conn *c, void *buf, size_t len, uint64_t deadline, size_t *ret_got)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	return conn_recvv(c, &iov, 1, deadline, ret_got);
}

int conn_sendv(struct conn *c, struct iovec *iov, int niov, uint64_t deadline, size_t *ret_sent)
{
	size_t sent = 0;
	int r = 0;

	while (niov > 0 && iov->iov_len == 0) {
		iov++;
		niov--;
	}
	while (niov > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)MIN(niov, 1024)};
		ssize_t n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n >= 0) {
			sent += (size_t)n;
			c->bytes_out += (uint64_t)n;
			iov_advance(&iov, &niov, (size_t)n);
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			r = neg_errno();
			break;
		}
		r = wait_fd(c, POLLOUT, deadline);
		if (r < 0)
			break;
	}
	if (ret_sent)
		*ret_sent = sent;
	return r;
}
