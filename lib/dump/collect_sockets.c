/* SPDX-License-Identifier: MIT */
/*
 * Sockets: one sock_diag round for all of them (lib/nl: what ss(8) shows,
 * the backlog and queue lengths, a unix socket's peer and socket file), then
 * each one through our own copy of the fd (pidfd_getfd), which is the same
 * open file: domain, type, protocol, addresses, listening or not, the
 * options a program can read back, and for a unix socket the bytes waiting
 * in its receive queue, read without taking them: MSG_PEEK with SO_PEEK_OFF
 * walking the queue (as CRIU does), the socket's own peek offset put back
 * after. File descriptors in flight (SCM_RIGHTS) turn up there: the peek
 * gives ckpt copies, which are closed, and the socket is refused.
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
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <ckpt/nl.h>

#include "dump/collect_sockets.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define PEEK_CHUNK (256u << 10)

/* One sock_diag round for every socket; a failure leaves them "not found". */
static int describe(struct collect *c, struct ckpt_sock_info **ret)
{
	struct ckpt_state *s = c->s;
	_cleanup_free_ struct ckpt_sock_info *socks = calloc(s->nr_fds + 1, sizeof(*socks));
	size_t n = 0;
	int r;

	if (!socks)
		return -ENOMEM;
	for (size_t i = 0; i < s->nr_fds; i++)
		if (s->fds[i].kind == CKPT_STATE_FD_SOCKET)
			socks[n++].ino = s->fds[i].id.ino;
	if (n && !(c->opts.flags & CKPT_COLLECT_NO_SOCK_DIAG)) {
		r = ckpt_nl_sock_describe(socks, n);
		if (r < 0) {
			pr_warn("cannot describe the sockets of pid %d: %s", c->pid, errstr(r));
			for (size_t i = 0; i < n; i++)
				socks[i].found = false;
		}
		/* sock_diag reports a socket once: its dup'ed fds get the same description. */
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < i && !socks[i].found; j++)
				if (socks[j].found && socks[j].ino == socks[i].ino)
					socks[i] = socks[j];
	}
	n = 0;
	for (size_t i = 0; i < s->nr_fds; i++) {
		struct ckpt_state_socket *d = &s->fds[i].sock;
		const struct ckpt_sock_info *si;

		if (s->fds[i].kind != CKPT_STATE_FD_SOCKET)
			continue;
		si = &socks[n++];
		d->peer_fd = -1;
		d->found = si->found;
		if (!si->found)
			continue;
		d->family = si->family;
		d->type = si->type;
		d->protocol = si->protocol;
		d->state = si->state;
		_Static_assert(sizeof(d->local) == sizeof(si->local), "same address buffers");
		memcpy(d->local, si->local, sizeof(d->local));
		memcpy(d->remote, si->remote, sizeof(d->remote));
		d->peer_ino = si->peer_ino;
		d->rqueue = si->rqueue;
		d->wqueue = si->wqueue;
		d->shutdown = (unsigned int)si->shutdown;
		d->nl_portid = si->nl_portid;
		d->nl_groups = si->nl_groups;
		d->nl_dst_portid = si->nl_dst_portid;
		d->nl_dst_group = si->nl_dst_group;
	}
	*ret = TAKE_PTR(socks);
	return 0;
}

static int int_opt(int sk, int level, int opt, int *ret)
{
	socklen_t len = sizeof(*ret);

	return getsockopt(sk, level, opt, ret, &len) < 0 ? neg_errno() : 0;
}

static void read_options(int sk, struct ckpt_state_socket *d)
{
	for (size_t i = 0; i < CKPT_STATE_NR_SOCKOPTS; i++) {
		const struct ckpt_state_sockopt_desc *o = &ckpt_state_sockopts[i];
		struct timeval tv;
		struct linger lg;
		socklen_t len;
		int v;

		if (!ckpt_state_sockopt_applies(i, d->family, d->type, d->protocol))
			continue;
		switch (o->form) {
		case CKPT_SOCKOPT_TIMEVAL:
			len = sizeof(tv);
			if (getsockopt(sk, o->level, o->opt, &tv, &len) < 0)
				continue;
			d->opts[i] = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
			break;
		case CKPT_SOCKOPT_LINGER:
			len = sizeof(lg);
			if (getsockopt(sk, o->level, o->opt, &lg, &len) < 0)
				continue;
			d->opts[i] = lg.l_onoff ? lg.l_linger : -1;
			break;
		default:
			if (int_opt(sk, o->level, o->opt, &v) < 0)
				continue;
			d->opts[i] = v;
			break;
		}
		d->opt_mask |= 1ULL << i;
	}
}

/* Refuse socket fd @f, saying why, in the dump's words (a recorded refusal stays). */
static int refuse(struct ckpt_state_fd *f, const char *why)
{
	char *reason;

	if (asprintf(&reason, "not restorable: %s", why) < 0)
		return -ENOMEM;
	free(f->reason);
	f->reason = reason;
	f->restorable = false;
	return 0;
}

/* SCM_RIGHTS in what a peek returned: ckpt's copies are closed; true if there were any. */
static bool close_rights(struct msghdr *m)
{
	bool any = false;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t k = 0; k < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
			close(fd);
		}
		any = true;
	}
	return any;
}

/*
 * The receive queue of unix socket @sk, peeked message by message from
 * offset 0 (SO_PEEK_OFF), its own offset put back after.
 */
static int peek_queue(struct collect *c, struct ckpt_state_fd *f, int sk)
{
	struct ckpt_state_socket *d = &f->sock;
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ uint32_t *lens = NULL;
	size_t cap = 0, nr = 0, used = 0, size = 0;
	bool rights = false;
	int old = -1, zero = 0, r = 0;

	if (int_opt(sk, SOL_SOCKET, SO_PEEK_OFF, &old) < 0 ||
	    setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0) {
		r = neg_errno();
		pr_err("cannot read the queue of socket fd %d of pid %d (SO_PEEK_OFF): %s", f->fd,
		       c->pid, errstr(r));
		return r;
	}
	for (;;) {
		union {
			char b[CMSG_SPACE(253 * sizeof(int)) + CMSG_SPACE(64)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov;
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				    .msg_controllen = sizeof(ctl.b) };
		ssize_t n;

		if (size - used < PEEK_CHUNK) {
			char *nb;

			if (size >= CKPT_STATE_SOCK_QUEUE_MAX) {
				r = -EFBIG;
				break;
			}
			size = size ? size * 2 : PEEK_CHUNK * 2;
			if (!(nb = realloc(buf, size))) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
		}
		iov = (struct iovec){ buf + used, size - used };
		n = recvmsg(sk, &m, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			r = neg_errno();
			break;
		}
		rights |= close_rights(&m);
		if (m.msg_flags & MSG_TRUNC) {
			r = -EFBIG;
			break;
		}
		if (n == 0 && d->type == SOCK_STREAM)
			break; /* end of stream: the peer shut down */
		if (GROW(lens, cap, nr + 1) < 0) {
			r = -ENOMEM;
			break;
		}
		if (d->type == SOCK_STREAM && nr)
			lens[nr - 1] += (uint32_t)n;
		else
			lens[nr++] = (uint32_t)n;
		used += (size_t)n;
		if (used > CKPT_STATE_SOCK_QUEUE_MAX) {
			r = -EFBIG;
			break;
		}
	}
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0)
		pr_warn("cannot put back the peek offset %d of socket fd %d of pid %d: %s", old,
			f->fd, c->pid, strerror(errno));
	if (r == -EFBIG) {
		char why[160];

		snprintf(why, sizeof(why), "more than %u bytes wait in the queue of a unix socket, or "
			 "one message is larger", CKPT_STATE_SOCK_QUEUE_MAX);
		return refuse(f, why);
	}
	if (r < 0) {
		pr_err("cannot read the queue of socket fd %d of pid %d: %s", f->fd, c->pid, errstr(r));
		return r;
	}
	if (rights)
		return refuse(f, "file descriptors in flight (SCM_RIGHTS) wait in the queue of a unix "
			      "socket");
	if (!nr)
		return 0;
	if (asprintf(&d->queue_blob, "blob-sock-queue-fd-%d", f->fd) < 0) {
		d->queue_blob = NULL;
		return -ENOMEM;
	}
	d->queue_len = used;
	d->rqueue = (uint32_t)used; /* SIOCINQ of a datagram socket: its first message only */
	d->nr_msgs = nr;
	d->msg_lens = TAKE_PTR(lens);
	d->queue_data = TAKE_PTR(buf);
	return 0;
}

/* A unix socket bound to a path: its socket file, if it is still the one at that path. */
static void socket_file(struct collect *c, const struct ckpt_sock_info *si,
			struct ckpt_state_socket *d)
{
	const struct sockaddr_un *un = (const void *)d->addr;
	_cleanup_free_ char *path = NULL;
	struct stat st;
	size_t n = d->addr_len - offsetof(struct sockaddr_un, sun_path);

	if (d->addr_len <= offsetof(struct sockaddr_un, sun_path) || !un->sun_path[0])
		return; /* unnamed, abstract */
	n = strnlen(un->sun_path, n);
	if (un->sun_path[0] == '/')
		path = strndup(un->sun_path, n);
	else if (asprintf(&path, "%s/%.*s", c->s->process.cwd ? c->s->process.cwd : ".", (int)n,
			  un->sun_path) < 0)
		path = NULL;
	d->has_file = true;
	if (!path || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    (si && si->found && si->vfs_ino && st.st_ino != si->vfs_ino)) {
		d->file_gone = true;
		d->file_mode = 0777;
		return;
	}
	d->file_mode = st.st_mode & 07777;
	d->file_uid = st.st_uid;
	d->file_gid = st.st_gid;
}

/* An outside peer is accepted with --ext-unix-sk. */
static void mark_external(struct collect *c, struct ckpt_state_socket *d)
{
	d->external = (c->opts.flags & CKPT_COLLECT_EXT_UNIX_SK) && ckpt_state_socket_peer_outside(d);
}

static int collect_one(struct collect *c, struct ckpt_state_fd *f, const struct ckpt_sock_info *si)
{
	struct ckpt_state_socket *d = &f->sock;
	_cleanup_close_ int sk = -1;
	socklen_t len;
	int v, r;

	/* Judged before it was described: judged again below. */
	free(f->reason);
	f->reason = NULL;
	f->restorable = true;
	r = ckpt_inject_take_fd(c->inj, f->fd, &sk);
	if (r < 0) {
		pr_err("cannot take socket fd %d of pid %d: %s", f->fd, c->pid, errstr(r));
		return r;
	}
	if ((r = int_opt(sk, SOL_SOCKET, SO_DOMAIN, &d->family)) < 0 ||
	    (r = int_opt(sk, SOL_SOCKET, SO_TYPE, &d->type)) < 0 ||
	    (r = int_opt(sk, SOL_SOCKET, SO_PROTOCOL, &d->protocol)) < 0) {
		pr_err("cannot read the domain, type and protocol of socket fd %d of pid %d: %s",
		       f->fd, c->pid, errstr(r));
		return r;
	}
	len = sizeof(d->addr);
	if (getsockname(sk, (struct sockaddr *)d->addr, &len) == 0)
		d->addr_len = len < sizeof(d->addr) ? len : sizeof(d->addr);
	len = sizeof(d->peer_addr);
	if (getpeername(sk, (struct sockaddr *)d->peer_addr, &len) == 0)
		d->peer_addr_len = len < sizeof(d->peer_addr) ? len : sizeof(d->peer_addr);
	d->listening = int_opt(sk, SOL_SOCKET, SO_ACCEPTCONN, &v) == 0 && v;
	if (d->listening) {
		/* sock_diag: connections waiting, and the backlog (sk_max_ack_backlog) */
		d->pending = d->found ? d->rqueue : 0;
		d->backlog = d->found ? d->wqueue : SOMAXCONN;
		d->rqueue = d->wqueue = 0;
		if (!d->found)
			pr_warn("socket fd %d of pid %d listens with a backlog sock_diag did not give: "
				"%d is saved", f->fd, c->pid, SOMAXCONN);
	} else {
		if (ioctl(sk, SIOCINQ, &v) == 0)
			d->rqueue = (uint32_t)v;
		if (ioctl(sk, SIOCOUTQ, &v) == 0)
			d->wqueue = (uint32_t)v;
	}
	if (!d->found && d->family != AF_UNIX && (d->type == SOCK_STREAM || d->type == SOCK_DGRAM))
		d->state = d->peer_addr_len ? TCP_ESTABLISHED : d->listening ? TCP_LISTEN : TCP_CLOSE;
	read_options(sk, d);
	d->known = true;
	if ((d->family == AF_INET || d->family == AF_INET6) && (r = collect_tcp(c, f, sk)) < 0)
		return r;
	if (d->family == AF_UNIX) {
		socket_file(c, si, d);
		if (!d->listening && (r = peek_queue(c, f, sk)) < 0)
			return r;
	}
	mark_external(c, d);
	/* The policy, unless the queue was refused already (a recorded refusal stays). */
	return f->restorable || !f->reason ? ckpt_state_fd_judge_for(f, c->pid) : 0;
}

/* Unix peers: the fd of the process holding the other end, else outside (or gone). */
static void find_peers(struct collect *c)
{
	struct ckpt_state *s = c->s;

	for (size_t i = 0; i < s->nr_fds; i++) {
		struct ckpt_state_socket *d = &s->fds[i].sock;

		if (s->fds[i].kind != CKPT_STATE_FD_SOCKET || d->family != AF_UNIX || !d->peer_ino)
			continue;
		for (size_t j = 0; j < s->nr_fds && d->peer_fd < 0; j++)
			if (j != i && s->fds[j].kind == CKPT_STATE_FD_SOCKET && s->fds[j].id.ino == d->peer_ino)
				d->peer_fd = s->fds[j].fd;
	}
}


static void warn_lost(struct collect *c, const struct ckpt_state_fd *f)
{
	const struct ckpt_state_socket *d = &f->sock;
	char name[512];

	if (!f->restorable)
		return;
	ckpt_state_socket_name(d, f->id.ino, name, sizeof(name));
	if (d->listening && d->pending)
		pr_warn("fd %d (%s) of pid %d: %u connection(s) wait to be accepted; they cannot be "
			"moved, and their clients are reset when the process ends", f->fd, name,
			c->pid, d->pending);
	else if (d->family != AF_UNIX && !d->listening && d->rqueue && !d->tcp.saved)
		pr_warn("fd %d (%s) of pid %d: the %u bytes waiting in its queue are not saved", f->fd,
			name, c->pid, d->rqueue);
}

int collect_sockets(struct collect *c)
{
	struct ckpt_state *s = c->s;
	_cleanup_free_ struct ckpt_sock_info *socks = NULL;
	size_t n = 0;
	int r;

	for (size_t i = 0; i < s->nr_fds; i++)
		n += s->fds[i].kind == CKPT_STATE_FD_SOCKET;
	if (!n)
		return 0;
	if ((r = describe(c, &socks)) < 0)
		return r;
	find_peers(c);
	n = 0;
	for (size_t i = 0; i < s->nr_fds; i++) {
		struct ckpt_state_fd *f = &s->fds[i];

		if (f->kind != CKPT_STATE_FD_SOCKET)
			continue;
		if ((r = collect_one(c, f, &socks[n++])) < 0)
			return r;
		warn_lost(c, f);
	}
	return 0;
}
