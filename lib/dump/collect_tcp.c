/* SPDX-License-Identifier: MIT */
/*
 * Established TCP connections (dump --tcp-established), as CRIU saves them:
 * the connection is blocked first (lib/nl's netlock: nftables rules drop
 * its packets both ways), then our copy of the socket is put in repair mode
 * (TCP_REPAIR) and read: state and options (TCP_INFO, TCP_MAXSEG,
 * TCP_TIMESTAMP), the window (TCP_REPAIR_WINDOW), and each queue with its
 * sequence number (TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, MSG_PEEK).
 *
 * Repair mode ends as soon as the socket is read (without a window probe):
 * the block keeps it as it is while the process is frozen, and a ckpt that
 * is killed meanwhile leaves a socket the program can use (blocked until
 * the table is removed by hand). In kill mode, just before the kill, the
 * sockets go into repair mode again (collect_tcp_silence): a socket in
 * repair mode closes without a FIN or a reset, and the block stays until
 * restore lifts it, so the peer sees a delay and retransmits. A dump that
 * fails, or lets the process run on, lifts the block before the process
 * runs again (collect_tcp_undo).
 */
#define LOG_AREA "dump"
#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ckpt/nl.h>

#include "dump/collect_sockets.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#ifndef TCP_REPAIR_WINDOW
#define TCP_REPAIR_WINDOW 29
struct tcp_repair_window {
	uint32_t snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;
};
#endif
#ifndef TCP_REPAIR_OFF_NO_WP
#define TCP_REPAIR_OFF_NO_WP -1
#endif
#ifndef SIOCOUTQNSD
#define SIOCOUTQNSD 0x894B
#endif

enum { Q_NONE, Q_RECV, Q_SEND };

#define TERR(c, f, fmt, ...)                                                                      \
	do {                                                                                      \
		char name_[512];                                                                  \
		pr_err("fd %d (%s) of pid %d: " fmt, (f)->fd,                                     \
		       ckpt_state_socket_name(&(f)->sock, (f)->id.ino, name_, sizeof(name_)),     \
		       (c)->pid, ##__VA_ARGS__);                                                  \
	} while (0)

static int opt_u32(int sk, int opt, uint32_t *ret)
{
	socklen_t len = sizeof(*ret);

	return getsockopt(sk, IPPROTO_TCP, opt, ret, &len) < 0 ? neg_errno() : 0;
}

/* Queue @q's sequence number and its @len bytes, peeked (one more asked for: none may come). */
static int read_queue(int sk, int q, uint32_t len, uint32_t *ret_seq, void **ret_data)
{
	_cleanup_free_ char *buf = NULL;
	ssize_t n;
	int r;

	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) < 0)
		return neg_errno();
	if ((r = opt_u32(sk, TCP_QUEUE_SEQ, ret_seq)) < 0)
		return r;
	if (!len)
		return 0;
	if (!(buf = malloc((size_t)len + 1)))
		return -ENOMEM;
	n = recv(sk, buf, (size_t)len + 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		return neg_errno();
	if ((size_t)n != len)
		return -EAGAIN;
	*ret_data = TAKE_PTR(buf);
	return 0;
}

static int read_repair(int sk, struct ckpt_state_tcp *t)
{
	struct tcp_info ti;
	struct tcp_repair_window w;
	socklen_t len = sizeof(ti);
	int v, r, none = Q_NONE;

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return neg_errno();
	if (ti.tcpi_state != TCP_ESTABLISHED)
		return -EINPROGRESS; /* it changed state: the caller refuses it */
	if (ioctl(sk, SIOCOUTQ, &v) < 0)
		return neg_errno();
	t->outq_len = (uint32_t)v;
	if (ioctl(sk, SIOCOUTQNSD, &v) < 0)
		return neg_errno();
	t->unsq_len = (uint32_t)v;
	if (ioctl(sk, SIOCINQ, &v) < 0)
		return neg_errno();
	t->inq_len = (uint32_t)v;
	if (t->inq_len > CKPT_STATE_SOCK_QUEUE_MAX || t->outq_len > CKPT_STATE_SOCK_QUEUE_MAX)
		return -EFBIG;
	if ((r = opt_u32(sk, TCP_MAXSEG, &t->mss)) < 0)
		return r;
	t->opts = ti.tcpi_options;
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		t->snd_wscale = ti.tcpi_snd_wscale;
		t->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	if ((ti.tcpi_options & TCPI_OPT_TIMESTAMPS) && (r = opt_u32(sk, TCP_TIMESTAMP, &t->timestamp)) < 0)
		return r;
	len = sizeof(w);
	if (getsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) == 0) {
		t->has_window = true;
		t->snd_wl1 = w.snd_wl1;
		t->snd_wnd = w.snd_wnd;
		t->max_window = w.max_window;
		t->rcv_wnd = w.rcv_wnd;
		t->rcv_wup = w.rcv_wup;
	} else if (errno != ENOPROTOOPT) {
		return neg_errno();
	}
	if ((r = read_queue(sk, Q_RECV, t->inq_len, &t->inq_seq, &t->recv_data)) < 0 ||
	    (r = read_queue(sk, Q_SEND, t->outq_len, &t->outq_seq, &t->send_data)) < 0)
		return r;
	setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, &none, sizeof(none));
	return 0;
}

/* Out of repair mode, without the window probe where the kernel knows how. */
static int repair_off(int sk)
{
	int off = TCP_REPAIR_OFF_NO_WP, zero = 0;

	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) == 0 ||
	    setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &zero, sizeof(zero)) == 0)
		return 0;
	return neg_errno();
}

int collect_tcp(struct collect *c, struct ckpt_state_fd *f, int sk)
{
	struct ckpt_state_socket *d = &f->sock;
	struct ckpt_state_tcp *t = &d->tcp;
	char err[512];
	int on = 1, r;

	if (!(c->opts.flags & CKPT_COLLECT_TCP_ESTABLISHED) || d->listening ||
	    d->state != TCP_ESTABLISHED || d->protocol != IPPROTO_TCP || !d->peer_addr_len)
		return 0;
	r = ckpt_net_lock_tcp((unsigned int)c->pid, (const struct sockaddr *)d->addr,
			      (const struct sockaddr *)d->peer_addr, err, sizeof(err));
	if (r < 0) {
		if (r == -ENOENT)
			TERR(c, f, "cannot block the connection while it is checkpointed: --tcp-established "
			     "needs nft(8) (the nftables package)");
		else
			TERR(c, f, "cannot block the connection while it is checkpointed (nft): %s",
			     r == -EIO ? err : errstr(r));
		return r;
	}
	c->tcp_locked = true;
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0) {
		r = neg_errno();
		TERR(c, f, "cannot put the connection in repair mode (TCP_REPAIR, CAP_NET_ADMIN): %s",
		     errstr(r));
		return r;
	}
	t->saved = true;
	r = read_repair(sk, t);
	if (repair_off(sk) < 0)
		TERR(c, f, "cannot take the connection out of repair mode: %s", strerror(errno));
	if (r == -EINPROGRESS || r == -EFBIG || r == -EAGAIN) {
		TERR(c, f, "cannot save the connection: %s", r == -EINPROGRESS ? "it is closing" :
		     r == -EFBIG ? "a queue is over 16 MiB" : "a queue changed while it was read");
		return r;
	}
	if (r < 0) {
		TERR(c, f, "cannot read the connection in repair mode: %s", errstr(r));
		return r;
	}
	if ((t->inq_len && asprintf(&t->recv_blob, "blob-tcp-recv-fd-%d", f->fd) < 0) ||
	    (t->outq_len && asprintf(&t->send_blob, "blob-tcp-send-fd-%d", f->fd) < 0))
		return -ENOMEM;
	d->rqueue = t->inq_len;
	d->wqueue = t->outq_len;
	pr_debug("pid %d fd %d: tcp repair: rcv_nxt %u write_seq %u, in %u out %u (unsent %u), mss %u, "
		 "opts %#x", c->pid, f->fd, t->inq_seq, t->outq_seq, t->inq_len, t->outq_len,
		 t->unsq_len, t->mss, t->opts);
	return 0;
}

int collect_tcp_silence(struct ckpt_inject *inj, const struct ckpt_state *s, pid_t pid)
{
	int on = 1, e = 0;

	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];
		int sk = -1, r;

		if (f->kind != CKPT_STATE_FD_SOCKET || !f->sock.tcp.saved)
			continue;
		r = ckpt_inject_take_fd(inj, f->fd, &sk);
		if (r == 0 && setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
			r = neg_errno();
		if (sk >= 0)
			close(sk);
		if (r < 0) {
			pr_err("cannot put fd %d of pid %d in TCP repair mode before the kill: %s (its "
			       "peer would see the connection closed)", f->fd, pid, errstr(r));
			e = r;
		}
	}
	return e;
}

void collect_tcp_undo(struct ckpt_inject *inj, struct ckpt_state *s, pid_t pid)
{
	char err[512];
	int r;

	for (size_t i = 0; s && i < s->nr_fds; i++) {
		struct ckpt_state_fd *f = &s->fds[i];
		int sk = -1;

		if (f->kind != CKPT_STATE_FD_SOCKET || !f->sock.tcp.saved)
			continue;
		/* Out of repair mode already, unless collect failed in between. */
		if (ckpt_inject_take_fd(inj, f->fd, &sk) < 0 || repair_off(sk) < 0)
			pr_err("cannot take fd %d of pid %d out of TCP repair mode: %s", f->fd, pid,
			       strerror(errno));
		if (sk >= 0)
			close(sk);
	}
	r = ckpt_net_unlock((unsigned int)pid, err, sizeof(err));
	if (r < 0)
		pr_err("cannot lift the block of the TCP connections of pid %d (nft delete table inet "
		       "ckpt_%d): %s", pid, pid, r == -EIO ? err : errstr(r));
}
