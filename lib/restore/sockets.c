/* SPDX-License-Identifier: MIT */
/*
 * Sockets, made by ckpt before the process exists and handed in at their
 * numbers (files.c's local fds), so that a port or path that is taken fails
 * the restore before anything is created:
 * - every socket: socket(2) with its domain, type and protocol; then each
 *   saved option that differs from what the new socket has (so a buffer
 *   size the program never set stays auto-tuned), before bind(2), as
 *   SO_REUSEADDR/SO_REUSEPORT and IPV6_V6ONLY must be;
 * - TCP: bound to its address and port when it was, listen(2) with its
 *   backlog. Connections waiting to be accepted are not moved (the dump
 *   warned); established connections are refused by the judge;
 * - UDP: bound, and connected when it was;
 * - unix: bound to its path (a stale socket file that nobody listens on is
 *   removed first; a live one is an error naming it; the file gets its
 *   mode and owner, and is removed again if the process had removed it) or
 *   abstract name; listening with its backlog. Both ends in the process: a
 *   connection accepted from a listener of the process is made again by
 *   connecting to that listener (the accepted end then shares its name);
 *   others as a socket pair (an end that was bound is bound again). The
 *   bytes each end had to read are sent again from the other end, message
 *   by message, then shutdown(2) as it was. A peer that is gone: a pair
 *   whose other end is closed once the queue is written (reads give the
 *   bytes, then end of file). A peer outside (--ext-unix-sk): connected
 *   again to the peer's address;
 * - netlink: bound to its port id and first 32 groups, connected to its
 *   destination when it had one;
 * - TCP established (dump --tcp-established): tcp.c, with TCP_REPAIR; the
 *   block the dump put on the connections is lifted once all are made.
 * An fd dup'ed from another (the same socket inode) is a duplicate of it.
 * The sockets belong to ckpt's credentials (SO_PEERCRED of a pair made
 * here names ckpt), and to its network namespace, which the process is
 * created in.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ckpt/nl.h>

#include "restore/sockets.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

struct sk_ctx {
	struct rst *r;
	char **bound;           /* paths bound here: removed again on failure */
	size_t nr_bound, cap_bound;
	bool tcp;               /* an established TCP connection was made again */
};

static const char *sk_name(const struct ckpt_state_fd *f, char *buf, size_t len)
{
	return ckpt_state_socket_name(&f->sock, f->id.ino, buf, len);
}

#define SK_ERR(f, fmt, ...)                                                                       \
	do {                                                                                      \
		char name_[512];                                                                  \
		pr_err("fd %d (%s): " fmt, (f)->fd, sk_name((f), name_, sizeof(name_)), ##__VA_ARGS__); \
	} while (0)

static const struct ckpt_state_fd *fd_of(const struct ckpt_state *s, int fd)
{
	for (size_t i = 0; i < s->nr_fds; i++)
		if (s->fds[i].fd == fd)
			return &s->fds[i];
	return NULL;
}

static int new_socket(const struct ckpt_state_fd *f, int *ret)
{
	const struct ckpt_state_socket *d = &f->sock;
	int sk = socket(d->family, d->type | SOCK_CLOEXEC, d->protocol);

	if (sk < 0) {
		int e = neg_errno();

		SK_ERR(f, "cannot make a socket of family %d, type %d, protocol %d: %s", d->family,
		       d->type, d->protocol, errstr(e));
		return e;
	}
	*ret = sk;
	return 0;
}

/* The value of option @i of @sk as the dump records it. */
static int read_opt(int sk, size_t i, int64_t *ret)
{
	const struct ckpt_state_sockopt_desc *o = &ckpt_state_sockopts[i];
	struct timeval tv;
	struct linger lg;
	socklen_t len;
	int v;

	switch (o->form) {
	case CKPT_SOCKOPT_TIMEVAL:
		len = sizeof(tv);
		if (getsockopt(sk, o->level, o->opt, &tv, &len) < 0)
			return neg_errno();
		*ret = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
		return 0;
	case CKPT_SOCKOPT_LINGER:
		len = sizeof(lg);
		if (getsockopt(sk, o->level, o->opt, &lg, &len) < 0)
			return neg_errno();
		*ret = lg.l_onoff ? lg.l_linger : -1;
		return 0;
	default:
		len = sizeof(v);
		if (getsockopt(sk, o->level, o->opt, &v, &len) < 0)
			return neg_errno();
		*ret = v;
		return 0;
	}
}

static int write_opt(int sk, size_t i, int64_t val)
{
	const struct ckpt_state_sockopt_desc *o = &ckpt_state_sockopts[i];
	struct timeval tv = { .tv_sec = val / 1000000, .tv_usec = val % 1000000 };
	struct linger lg = { .l_onoff = val >= 0, .l_linger = val >= 0 ? (int)val : 0 };
	int v = (int)val, force;

	switch (o->form) {
	case CKPT_SOCKOPT_TIMEVAL:
		return setsockopt(sk, o->level, o->opt, &tv, sizeof(tv)) < 0 ? neg_errno() : 0;
	case CKPT_SOCKOPT_LINGER:
		return setsockopt(sk, o->level, o->opt, &lg, sizeof(lg)) < 0 ? neg_errno() : 0;
	case CKPT_SOCKOPT_BUF:
		/* The kernel doubles what it is given; past the sysctl maximum, FORCE (CAP_NET_ADMIN). */
		v = (int)(val / 2);
		force = o->opt == SO_RCVBUF ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;
		if (setsockopt(sk, o->level, force, &v, sizeof(v)) == 0)
			return 0;
		return setsockopt(sk, o->level, o->opt, &v, sizeof(v)) < 0 ? neg_errno() : 0;
	default:
		return setsockopt(sk, o->level, o->opt, &v, sizeof(v)) < 0 ? neg_errno() : 0;
	}
}

/* Every saved option that differs from what the new socket has; read back. */
static int set_options(const struct ckpt_state_fd *f, int sk)
{
	const struct ckpt_state_socket *d = &f->sock;

	for (size_t i = 0; i < CKPT_STATE_NR_SOCKOPTS; i++) {
		int64_t now = 0;
		int e;

		if (!(d->opt_mask & (1ULL << i)))
			continue;
		if (read_opt(sk, i, &now) == 0 && now == d->opts[i])
			continue;
		e = write_opt(sk, i, d->opts[i]);
		if (e == 0 && (e = read_opt(sk, i, &now)) == 0 && now != d->opts[i])
			e = -ERANGE;
		if (e < 0) {
			SK_ERR(f, "cannot set %s to %" PRId64 " (it is %" PRId64 "): %s",
			       ckpt_state_sockopts[i].name, d->opts[i], now,
			       e == -ERANGE ? "the kernel keeps another value" : errstr(e));
			return e;
		}
	}
	return 0;
}

static bool unix_named(const struct ckpt_state_socket *d)
{
	return d->addr_len > offsetof(struct sockaddr_un, sun_path);
}

static bool unix_path(const unsigned char *addr, uint32_t len)
{
	const struct sockaddr_un *un = (const void *)addr;

	return len > offsetof(struct sockaddr_un, sun_path) && un->sun_path[0];
}

/* The path of a unix address: ckpt binds with the process's working directory for relative ones. */
static int unix_file(const struct rst *r, const unsigned char *addr, uint32_t len, char **ret)
{
	const struct sockaddr_un *un = (const void *)addr;
	size_t n = strnlen(un->sun_path, len - offsetof(struct sockaddr_un, sun_path));
	const char *cwd = r->s->process.cwd ? r->s->process.cwd : ".";

	if (un->sun_path[0] == '/')
		*ret = strndup(un->sun_path, n);
	else if (asprintf(ret, "%s/%.*s", cwd, (int)n, un->sun_path) < 0)
		*ret = NULL;
	return *ret ? 0 : -ENOMEM;
}

/* A socket file left at @path by the original: removed if nobody answers there. */
static int clear_stale(const struct ckpt_state_fd *f, const char *path)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct stat st;
	int probe, e;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : neg_errno();
	if (!S_ISSOCK(st.st_mode)) {
		SK_ERR(f, "cannot bind '%s': it exists and is not a socket", path);
		return -EEXIST;
	}
	if (strlen(path) >= sizeof(un.sun_path))
		return 0; /* bound relative to a directory: bind will say */
	strcpy(un.sun_path, path);
	probe = socket(AF_UNIX, f->sock.type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return neg_errno();
	e = connect(probe, (struct sockaddr *)&un, sizeof(un)) < 0 ? -errno : 0;
	close(probe);
	if (e == -ECONNREFUSED) {
		pr_info("removing the stale socket file '%s' (nobody listens there) for fd %d", path,
			f->fd);
		return unlink(path) < 0 && errno != ENOENT ? neg_errno() : 0;
	}
	SK_ERR(f, "cannot bind '%s': a live socket is there (%s); is the original process still "
	       "running (--leave-running)?", path, e ? errstr(e) : "it accepts connections");
	return -EADDRINUSE;
}

static int bind_unix(struct sk_ctx *c, const struct ckpt_state_fd *f, int sk)
{
	const struct ckpt_state_socket *d = &f->sock;
	_cleanup_free_ char *path = NULL;
	bool file = unix_path(d->addr, d->addr_len);
	int e;

	if (file) {
		struct stat st;

		if ((e = unix_file(c->r, d->addr, d->addr_len, &path)) < 0)
			return e;
		if (d->has_file && d->file_gone && lstat(path, &st) == 0) {
			/* The process had removed its file: what is there now is another's. */
			SK_ERR(f, "cannot bind '%s' again: the process had removed its socket file, "
			       "and another file has the name now", path);
			return -EADDRINUSE;
		}
		if ((e = clear_stale(f, path)) < 0)
			return e;
	}
	{
		/*
		 * The socket file gets its mode as bind makes it (umask), never by
		 * a chmod of its path afterwards, which would follow a symlink
		 * put there meanwhile by whoever can write the directory.
		 */
		bool keep_mode = file && d->has_file && !d->file_gone;
		mode_t old = keep_mode ? umask(~d->file_mode & 0777) : 0;

		e = bind(sk, (const struct sockaddr *)d->addr, d->addr_len) < 0 ? neg_errno() : 0;
		if (keep_mode)
			umask(old);
	}
	if (e < 0) {
		SK_ERR(f, "cannot bind the unix socket again: %s", errstr(e));
		return e;
	}
	if (!file)
		return 0;
	if (GROW(c->bound, c->cap_bound, c->nr_bound + 1) < 0)
		return -ENOMEM;
	c->bound[c->nr_bound++] = strdup(path);
	if (d->has_file && d->file_gone) {
		if (unlink(path) < 0)
			pr_warn("cannot remove '%s' again (fd %d): %s", path, f->fd, strerror(errno));
	} else if (d->has_file && lchown(path, d->file_uid, d->file_gid) < 0) {
		/* lchown: a symlink put in its place is changed, not what it points to. */
		pr_warn("cannot give '%s' (fd %d) its owner %u:%u: %s", path, f->fd, d->file_uid,
			d->file_gid, strerror(errno));
	}
	return 0;
}

/* An inet address is bound when its port is not 0. */
static bool inet_bound(const unsigned char *addr, uint32_t len)
{
	const struct sockaddr_in *in = (const void *)addr;
	const struct sockaddr_in6 *in6 = (const void *)addr;

	if (len >= sizeof(*in6) && in6->sin6_family == AF_INET6)
		return in6->sin6_port != 0;
	return len >= sizeof(*in) && in->sin_family == AF_INET && in->sin_port != 0;
}

static int bind_inet(const struct ckpt_state_fd *f, int sk)
{
	const struct ckpt_state_socket *d = &f->sock;
	int e;

	if (!inet_bound(d->addr, d->addr_len))
		return 0;
	if (bind(sk, (const struct sockaddr *)d->addr, d->addr_len) == 0)
		return 0;
	e = neg_errno();
	/*
	 * A closed TCP socket (a connection that ended) still names its
	 * port, often an ephemeral one another connection has taken since:
	 * the same port if SO_REUSEADDR allows it (connections in TIME_WAIT),
	 * else another one, said. Nothing can be sent or received on it.
	 */
	if (e == -EADDRINUSE && d->type == SOCK_STREAM && !d->listening && d->state == TCP_CLOSE) {
		struct sockaddr_storage any;
		int one = 1;

		if (setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		    bind(sk, (const struct sockaddr *)d->addr, d->addr_len) == 0)
			return 0; /* the saved SO_REUSEADDR is set again with the other options */
		memcpy(&any, d->addr, MIN(d->addr_len, (uint32_t)sizeof(any)));
		if (any.ss_family == AF_INET)
			((struct sockaddr_in *)&any)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&any)->sin6_port = 0;
		if (bind(sk, (const struct sockaddr *)&any, d->addr_len) == 0) {
			pr_warn("fd %d (a closed TCP socket): its port is taken now: it is bound to another "
				"port of the same address", f->fd);
			return 0;
		}
	}
	if (e == -EADDRINUSE)
		SK_ERR(f, "cannot bind its address again: the port is taken (another socket holds "
		       "it; is the original process still running (--leave-running)?)");
	else
		SK_ERR(f, "cannot bind its address again: %s", errstr(e));
	return e;
}

static int do_listen(const struct ckpt_state_fd *f, int sk)
{
	int e;

	if (!f->sock.listening)
		return 0;
	if (listen(sk, (int)f->sock.backlog) == 0)
		return 0;
	e = neg_errno();
	SK_ERR(f, "cannot listen again with backlog %u: %s", f->sock.backlog, errstr(e));
	return e;
}

static int do_connect(const struct ckpt_state_fd *f, int sk)
{
	const struct ckpt_state_socket *d = &f->sock;
	int e;

	if (connect(sk, (const struct sockaddr *)d->peer_addr, d->peer_addr_len) == 0)
		return 0;
	e = neg_errno();
	SK_ERR(f, "cannot connect again to its peer's address: %s", errstr(e));
	return e;
}

/* Send @f's saved receive queue from @from, message by message. */
static int put_queue(struct sk_ctx *c, const struct ckpt_state_fd *f, int from,
		     const struct sockaddr *to, socklen_t tolen)
{
	const struct ckpt_state_socket *d = &f->sock;
	_cleanup_free_ void *data = NULL;
	char what[64];
	uint64_t off = 0;
	int e;

	if (!d->queue_blob)
		return 0;
	snprintf(what, sizeof(what), "the queue of socket fd %d", f->fd);
	if ((e = rst_read_blob(c->r, d->queue_blob, d->queue_len, what, &data)) < 0)
		return e;
	for (size_t i = 0; i < d->nr_msgs; i++) {
		uint32_t done = 0;

		do {
			ssize_t n = sendto(from, (char *)data + off + done, d->msg_lens[i] - done,
					   MSG_DONTWAIT | MSG_NOSIGNAL, to, tolen);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				e = neg_errno();
				SK_ERR(f, "cannot queue its %" PRIu64 " bytes again (message %zu of %zu): %s",
				       d->queue_len, i + 1, d->nr_msgs, errstr(e));
				return e;
			}
			done += (uint32_t)n;
		} while (done < d->msg_lens[i] && d->type == SOCK_STREAM);
		off += d->msg_lens[i];
	}
	return 0;
}

static int do_shutdown(const struct ckpt_state_fd *f, int sk)
{
	unsigned int s = f->sock.shutdown & 3;
	int how = s == 3 ? SHUT_RDWR : s == 1 ? SHUT_RD : SHUT_WR;

	int e;

	if (!s || shutdown(sk, how) == 0)
		return 0;
	e = neg_errno();
	SK_ERR(f, "cannot shut it down again: %s", errstr(e));
	return e;
}

/* The listener of the process whose name an accepted end @f shares, or NULL. */
static const struct ckpt_state_fd *listener_of(const struct ckpt_state *s, const struct ckpt_state_fd *f)
{
	const struct ckpt_state_socket *d = &f->sock;

	if (!unix_named(d))
		return NULL;
	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_socket *l = &s->fds[i].sock;

		if (s->fds[i].kind == CKPT_STATE_FD_SOCKET && l->family == AF_UNIX && l->listening &&
		    l->type == d->type && l->addr_len == d->addr_len &&
		    !memcmp(l->addr, d->addr, d->addr_len))
			return &s->fds[i];
	}
	return NULL;
}

/*
 * Both ends of a unix connection in the process (@b NULL: the peer is
 * gone): made, named, filled and shut down as they were.
 */
static int unix_pair(struct sk_ctx *c, const struct ckpt_state_fd *a, const struct ckpt_state_fd *b)
{
	const struct ckpt_state *s = c->r->s;
	int *local = c->r->local_fds;
	const struct ckpt_state_fd *la = b ? listener_of(s, a) : NULL, *lb = b ? listener_of(s, b) : NULL;
	int sv[2] = { -1, -1 }, e;

	if (la && lb)
		la = lb = NULL; /* both share a listener's name: not a connection made through one */
	if (la || lb) {
		/* The accepted end is made by connecting the other to the listener of the process. */
		const struct ckpt_state_fd *acc = la ? a : b, *cli = la ? b : a, *lis = la ? la : lb;
		int lsk = local[lis - s->fds], csk = -1, ask;

		if (lsk < 0)
			return -EINVAL; /* listeners are made first */
		if ((e = new_socket(cli, &csk)) < 0)
			return e;
		if ((unix_named(&cli->sock) && (e = bind_unix(c, cli, csk)) < 0) ||
		    (e = do_connect(cli, csk)) < 0) {
			close(csk);
			return e;
		}
		ask = accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
		if (ask < 0) {
			e = neg_errno();
			SK_ERR(acc, "cannot accept it again from fd %d: %s", lis->fd, errstr(e));
			close(csk);
			return e;
		}
		sv[acc == a ? 0 : 1] = ask;
		sv[acc == a ? 1 : 0] = csk;
	} else {
		if (socketpair(AF_UNIX, a->sock.type | SOCK_CLOEXEC, 0, sv) < 0) {
			e = neg_errno();
			SK_ERR(a, "cannot make a socket pair: %s", errstr(e));
			return e;
		}
		if ((unix_named(&a->sock) && (e = bind_unix(c, a, sv[0])) < 0) ||
		    (b && unix_named(&b->sock) && (e = bind_unix(c, b, sv[1])) < 0))
			goto fail;
	}
	if ((e = set_options(a, sv[0])) < 0 || (b && (e = set_options(b, sv[1])) < 0) ||
	    (e = put_queue(c, a, sv[1], NULL, 0)) < 0 || (b && (e = put_queue(c, b, sv[0], NULL, 0)) < 0) ||
	    (e = do_shutdown(a, sv[0])) < 0 || (b && (e = do_shutdown(b, sv[1])) < 0))
		goto fail;
	local[a - s->fds] = sv[0];
	if (b)
		local[b - s->fds] = sv[1];
	else
		close(sv[1]); /* the peer that was gone: reads end after the queue */
	return 0;
fail:
	close(sv[0]);
	close(sv[1]);
	return e;
}

/* A unix socket with no peer in the process. */
static int unix_alone(struct sk_ctx *c, const struct ckpt_state_fd *f, int *ret)
{
	const struct ckpt_state_socket *d = &f->sock;
	_cleanup_close_ int sk = -1;
	int e;

	if (!d->listening && !d->external && d->type != SOCK_DGRAM && d->state == TCP_ESTABLISHED &&
	    !ckpt_state_socket_peer_outside(d))
		return unix_pair(c, f, NULL); /* connected once, the peer closed since */
	if ((e = new_socket(f, &sk)) < 0 || (e = set_options(f, sk)) < 0)
		return e;
	if (unix_named(d) && (e = bind_unix(c, f, sk)) < 0)
		return e;
	if ((e = do_listen(f, sk)) < 0)
		return e;
	if (d->external && (e = do_connect(f, sk)) < 0)
		return e;
	if (d->queue_blob && d->type == SOCK_DGRAM && unix_named(d)) {
		/* Datagrams sent to its name: sent again from a socket of ckpt. */
		_cleanup_close_ int from = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (from < 0)
			return neg_errno();
		if ((e = put_queue(c, f, from, (const struct sockaddr *)d->addr, d->addr_len)) < 0)
			return e;
	} else if (d->queue_blob) {
		char name[512];

		pr_warn("fd %d (%s): the %" PRIu64 " bytes that waited in its queue came from a peer "
			"that is gone; they are not restored", f->fd, sk_name(f, name, sizeof(name)),
			d->queue_len);
	}
	if ((e = do_shutdown(f, sk)) < 0)
		return e;
	*ret = TAKE_FD(sk);
	return 0;
}

static int inet_socket(struct sk_ctx *c, const struct ckpt_state_fd *f, int *ret)
{
	const struct ckpt_state_socket *d = &f->sock;
	_cleanup_close_ int sk = -1;
	int e;

	if (d->tcp.saved) {
		if ((e = new_socket(f, &sk)) < 0 || (e = set_options(f, sk)) < 0 ||
		    (e = rst_tcp_socket(c->r, f, sk)) < 0) /* tcp.c */
			return e;
		c->tcp = true;
		*ret = TAKE_FD(sk);
		return 0;
	}
	if ((e = new_socket(f, &sk)) < 0 || (e = set_options(f, sk)) < 0 || (e = bind_inet(f, sk)) < 0 ||
	    (e = do_listen(f, sk)) < 0)
		return e;
	if (d->type == SOCK_DGRAM && inet_bound(d->peer_addr, d->peer_addr_len) &&
	    (e = do_connect(f, sk)) < 0)
		return e;
	*ret = TAKE_FD(sk);
	return 0;
}

static int netlink_socket(const struct ckpt_state_fd *f, int *ret)
{
	const struct ckpt_state_socket *d = &f->sock;
	struct sockaddr_nl me = { .nl_family = AF_NETLINK, .nl_pid = d->nl_portid, .nl_groups = d->nl_groups };
	struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = d->nl_dst_portid,
				  .nl_groups = d->nl_dst_group ? 1u << (d->nl_dst_group - 1) : 0 };
	_cleanup_close_ int sk = -1;
	int e;

	if ((e = new_socket(f, &sk)) < 0 || (e = set_options(f, sk)) < 0)
		return e;
	if ((d->nl_portid || d->nl_groups) && bind(sk, (struct sockaddr *)&me, sizeof(me)) < 0) {
		e = neg_errno();
		SK_ERR(f, "cannot bind netlink port id %u (groups %#x) again: %s", d->nl_portid,
		       d->nl_groups, e == -EADDRINUSE ? "another socket has it" : errstr(e));
		return e;
	}
	if ((d->nl_dst_portid || d->nl_dst_group) && connect(sk, (struct sockaddr *)&to, sizeof(to)) < 0) {
		e = neg_errno();
		SK_ERR(f, "cannot connect to netlink port id %u group %u again: %s", d->nl_dst_portid,
		       d->nl_dst_group, errstr(e));
		return e;
	}
	if (d->rqueue) {
		char name[512];

		pr_warn("fd %d (%s): %u bytes of messages waited in its queue; they are not restored",
			f->fd, sk_name(f, name, sizeof(name)), d->rqueue);
	}
	*ret = TAKE_FD(sk);
	return 0;
}

static int one_socket(struct sk_ctx *c, size_t i)
{
	const struct ckpt_state *s = c->r->s;
	const struct ckpt_state_fd *f = &s->fds[i], *peer;
	int *local = c->r->local_fds;

	if (f->sock.peer_pid) {
		/* Made with its peer by the restore of the tree (rst_tree_socket_pairs). */
		SK_ERR(f, "its peer is fd %d of pid %d: restore the whole tree", f->sock.peer_fd, f->sock.peer_pid);
		return -EINVAL;
	}
	switch (f->sock.family) {
	case AF_UNIX:
		peer = f->sock.peer_fd >= 0 ? fd_of(s, f->sock.peer_fd) : NULL;
		if (peer && peer->kind == CKPT_STATE_FD_SOCKET && peer->sock.peer_fd == f->fd) {
			if (local[peer - s->fds] >= 0)
				return 0; /* made with its peer */
			return unix_pair(c, f, peer);
		}
		if (peer && !f->sock.listening) {
			/* A dgram socket connected to another that is not connected back. */
			return unix_pair(c, f, NULL);
		}
		return unix_alone(c, f, &local[i]);
	case AF_INET:
	case AF_INET6:
		return inet_socket(c, f, &local[i]);
	case AF_NETLINK:
		return netlink_socket(f, &local[i]);
	default:
		SK_ERR(f, "cannot be restored: a socket of family %d", f->sock.family);
		return -ENOTSUP;
	}
}

int rst_socket_pair(struct rst *ra, const struct ckpt_state_fd *a, struct rst *rb, const struct ckpt_state_fd *b)
{
	struct sk_ctx ca = { .r = ra }, cb = { .r = rb };
	int sv[2] = { -1, -1 }, e;

	if (a->sock.type != b->sock.type) {
		SK_ERR(a, "its peer fd %d of pid %d is of another type", b->fd, rb->s->process.pid);
		return -EBADMSG;
	}
	if (socketpair(AF_UNIX, a->sock.type | SOCK_CLOEXEC, 0, sv) < 0) {
		e = neg_errno();
		SK_ERR(a, "cannot make a socket pair: %s", errstr(e));
		return e;
	}
	/* Each end's name, options, queue and shutdown, from its own process's checkpoint. */
	if ((unix_named(&a->sock) && (e = bind_unix(&ca, a, sv[0])) < 0) ||
	    (unix_named(&b->sock) && (e = bind_unix(&cb, b, sv[1])) < 0) || (e = set_options(a, sv[0])) < 0 ||
	    (e = set_options(b, sv[1])) < 0 || (e = put_queue(&ca, a, sv[1], NULL, 0)) < 0 ||
	    (e = put_queue(&cb, b, sv[0], NULL, 0)) < 0 || (e = do_shutdown(a, sv[0])) < 0 ||
	    (e = do_shutdown(b, sv[1])) < 0) {
		close(sv[0]);
		close(sv[1]);
	} else {
		ra->local_fds[a - ra->s->fds] = sv[0];
		rb->local_fds[b - rb->s->fds] = sv[1];
	}
	for (size_t i = 0; i < ca.nr_bound; i++) {
		if (e < 0)
			unlink(ca.bound[i]);
		free(ca.bound[i]);
	}
	for (size_t i = 0; i < cb.nr_bound; i++) {
		if (e < 0)
			unlink(cb.bound[i]);
		free(cb.bound[i]);
	}
	free(ca.bound);
	free(cb.bound);
	return e;
}

/* The first fd of the checkpoint that holds the same socket as @f (dup'ed): @f itself if none. */
static const struct ckpt_state_fd *first_of(const struct ckpt_state *s, const struct ckpt_state_fd *f)
{
	for (const struct ckpt_state_fd *g = s->fds; g < f; g++)
		if (g->kind == CKPT_STATE_FD_SOCKET && g->id.ino == f->id.ino &&
		    g->id.dev_major == f->id.dev_major && g->id.dev_minor == f->id.dev_minor)
			return g;
	return f;
}

int rst_sockets_prepare(struct rst *r)
{
	const struct ckpt_state *s = r->s;
	struct sk_ctx c = { .r = r };
	int e = 0;

	/* Listeners first: connections accepted from them are made through them. */
	for (int pass = 0; pass < 2 && e == 0; pass++)
		for (size_t i = 0; i < s->nr_fds && e == 0; i++) {
			const struct ckpt_state_fd *f = &s->fds[i];

			if (f->kind != CKPT_STATE_FD_SOCKET || r->local_fds[i] >= 0 ||
			    f->sock.listening != !pass || first_of(s, f) != f)
				continue;
			e = one_socket(&c, i);
		}
	/* An fd dup'ed from another holds the same socket: a duplicate of it. */
	for (size_t i = 0; i < s->nr_fds && e == 0; i++) {
		const struct ckpt_state_fd *f = &s->fds[i], *g = first_of(s, f);

		if (f->kind != CKPT_STATE_FD_SOCKET || g == f || r->local_fds[i] >= 0)
			continue;
		if (r->local_fds[g - s->fds] < 0) {
			pr_err("fd %d: the socket it shares with fd %d was not made", f->fd, g->fd);
			e = -EINVAL;
		} else if ((r->local_fds[i] = fcntl(r->local_fds[g - s->fds], F_DUPFD_CLOEXEC, 3)) < 0) {
			e = neg_errno();
		}
	}
	if (e == 0 && c.tcp) {
		/* Every connection exists again: lift the block the dump put on them. */
		char err[512];
		int k = ckpt_net_unlock((unsigned int)s->process.pid, err, sizeof(err));

		if (k < 0)
			pr_warn("cannot lift the block of the TCP connections (nft delete table inet "
				"ckpt_%d): %s; they stay silent until it is removed", s->process.pid,
				k == -EIO ? err : errstr(k));
	}
	if (e < 0) {
		for (size_t i = 0; i < s->nr_fds; i++)
			if (s->fds[i].kind == CKPT_STATE_FD_SOCKET && r->local_fds[i] >= 0) {
				close(r->local_fds[i]);
				r->local_fds[i] = -1;
			}
		for (size_t i = 0; i < c.nr_bound; i++)
			if (c.bound[i])
				unlink(c.bound[i]);
	}
	for (size_t i = 0; i < c.nr_bound; i++)
		free(c.bound[i]);
	free(c.bound);
	return e;
}
