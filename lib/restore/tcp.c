/* SPDX-License-Identifier: MIT */
/*
 * Established TCP connections saved with TCP_REPAIR (dump
 * --tcp-established), made again in repair mode, where connect(2) sends no
 * SYN and nothing leaves the socket: bound to the local address (repair
 * mode may share the port with a listener), the sequence numbers of both
 * queues set so that the bytes written back end where they ended
 * (TCP_QUEUE_SEQ), connected, the options of the handshake (TCP_REPAIR_OPTIONS:
 * MSS, window scales, SACK, timestamps) and the timestamp clock
 * (TCP_TIMESTAMP), the bytes the program had not read put back in the
 * receive queue and those the peer had not acknowledged in the send
 * queue, the window (TCP_REPAIR_WINDOW); then out of repair mode (a window
 * probe tells the peer we are there) and the bytes never sent are written
 * as any. The block the dump put on the connection (nftables) is lifted
 * once every socket is made (sockets.c).
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "restore/sockets.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#ifndef TCP_REPAIR_WINDOW
#define TCP_REPAIR_WINDOW 29
struct tcp_repair_window {
	uint32_t snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;
};
#endif
#ifndef TCPOPT_MAXSEG
#define TCPOPT_MAXSEG 2
#define TCPOPT_WINDOW 3
#define TCPOPT_SACK_PERMITTED 4
#define TCPOPT_TIMESTAMP 8
#endif

enum { Q_NONE, Q_RECV, Q_SEND };

struct repair_opt {
	uint32_t code, val;
};

#define TERR(f, fmt, ...)                                                                         \
	do {                                                                                      \
		char name_[512];                                                                  \
		pr_err("fd %d (%s): " fmt, (f)->fd,                                               \
		       ckpt_state_socket_name(&(f)->sock, (f)->id.ino, name_, sizeof(name_)),     \
		       ##__VA_ARGS__);                                                            \
	} while (0)

static int tcp_set(int sk, int opt, const void *v, socklen_t len)
{
	return setsockopt(sk, IPPROTO_TCP, opt, v, len) < 0 ? neg_errno() : 0;
}

static int queue_seq(int sk, int q, uint32_t seq)
{
	return tcp_set(sk, TCP_REPAIR_QUEUE, &q, sizeof(q)) ?: tcp_set(sk, TCP_QUEUE_SEQ, &seq, sizeof(seq));
}

/* @len bytes into queue @q (Q_NONE: sent as any write, out of repair mode). */
static int put_bytes(int sk, int q, const char *buf, uint32_t len)
{
	size_t chunk = len;
	int e;

	if (q != Q_NONE && (e = tcp_set(sk, TCP_REPAIR_QUEUE, &q, sizeof(q))) < 0)
		return e;
	while (len) {
		ssize_t n = send(sk, buf, chunk < len ? chunk : len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* a repair write is one linear buffer: a large one can fail with ENOMEM */
			if (chunk > 4096) {
				chunk /= 2;
				continue;
			}
			return n < 0 ? neg_errno() : -EIO;
		}
		buf += n;
		len -= (uint32_t)n;
	}
	return 0;
}

static int read_blob(struct rst *r, const struct ckpt_state_fd *f, const char *blob, uint32_t len,
		     void **ret)
{
	char what[64];

	*ret = NULL;
	if (!len)
		return 0;
	snprintf(what, sizeof(what), "the TCP queue of fd %d", f->fd);
	return rst_read_blob(r, blob, len, what, ret);
}

static int handshake_options(int sk, const struct ckpt_state_tcp *t)
{
	struct repair_opt o[4];
	size_t n = 0;

	if (t->opts & TCPI_OPT_SACK)
		o[n++] = (struct repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (t->opts & TCPI_OPT_WSCALE)
		o[n++] = (struct repair_opt){ TCPOPT_WINDOW, t->snd_wscale | (t->rcv_wscale << 16) };
	if (t->opts & TCPI_OPT_TIMESTAMPS)
		o[n++] = (struct repair_opt){ TCPOPT_TIMESTAMP, 0 };
	o[n++] = (struct repair_opt){ TCPOPT_MAXSEG, t->mss };
	return tcp_set(sk, TCP_REPAIR_OPTIONS, o, (socklen_t)(n * sizeof(o[0])));
}

int rst_tcp_socket(struct rst *r, const struct ckpt_state_fd *f, int sk)
{
	const struct ckpt_state_socket *d = &f->sock;
	const struct ckpt_state_tcp *t = &d->tcp;
	_cleanup_free_ void *rq = NULL, *sq = NULL;
	struct tcp_repair_window w = { t->snd_wl1, t->snd_wnd, t->max_window, t->rcv_wnd, t->rcv_wup };
	uint32_t sent = t->outq_len - t->unsq_len;
	int on = 1, off = 0, e;
	const char *step;

	if ((e = read_blob(r, f, t->recv_blob, t->inq_len, &rq)) < 0 ||
	    (e = read_blob(r, f, t->send_blob, t->outq_len, &sq)) < 0)
		return e;
	step = "TCP_REPAIR";
	if ((e = tcp_set(sk, TCP_REPAIR, &on, sizeof(on))) < 0)
		goto fail;
	step = "bind";
	if (bind(sk, (const struct sockaddr *)d->addr, d->addr_len) < 0) {
		e = neg_errno();
		goto fail;
	}
	step = "TCP_QUEUE_SEQ";
	if ((e = queue_seq(sk, Q_RECV, t->inq_seq - t->inq_len)) < 0 ||
	    (e = queue_seq(sk, Q_SEND, t->outq_seq - t->outq_len)) < 0)
		goto fail;
	step = "connect";
	if (connect(sk, (const struct sockaddr *)d->peer_addr, d->peer_addr_len) < 0) {
		e = neg_errno();
		goto fail;
	}
	step = "TCP_REPAIR_OPTIONS";
	if ((e = handshake_options(sk, t)) < 0)
		goto fail;
	step = "TCP_TIMESTAMP";
	if ((t->opts & TCPI_OPT_TIMESTAMPS) &&
	    (e = tcp_set(sk, TCP_TIMESTAMP, &t->timestamp, sizeof(t->timestamp))) < 0)
		goto fail;
	step = "the receive queue";
	if (t->inq_len && (e = put_bytes(sk, Q_RECV, rq, t->inq_len)) < 0)
		goto fail;
	step = "the send queue";
	if (sent && (e = put_bytes(sk, Q_SEND, sq, sent)) < 0)
		goto fail;
	step = "TCP_REPAIR_WINDOW";
	if (t->has_window && (e = tcp_set(sk, TCP_REPAIR_WINDOW, &w, sizeof(w))) < 0)
		goto fail;
	step = "the end of repair mode";
	if ((e = tcp_set(sk, TCP_REPAIR, &off, sizeof(off))) < 0)
		goto fail;
	step = "the bytes not sent yet";
	if (t->unsq_len && (e = put_bytes(sk, Q_NONE, (const char *)sq + sent, t->unsq_len)) < 0)
		goto fail;
	pr_debug("fd %d: TCP connection made again: rcv_nxt %u write_seq %u, %u + %u bytes queued", f->fd,
		 t->inq_seq, t->outq_seq, t->inq_len, t->outq_len);
	return 0;
fail:
	if (e == -EADDRINUSE || e == -EADDRNOTAVAIL)
		TERR(f, "cannot make the connection again (%s): %s (is the original connection still "
		     "there: --leave-running?)", step, errstr(e));
	else
		TERR(f, "cannot make the connection again (%s): %s", step, errstr(e));
	return e;
}
