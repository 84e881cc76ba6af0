/* SPDX-License-Identifier: MIT */
/* Socket descriptions through NETLINK_SOCK_DIAG dumps, via libnl. */
#define LOG_AREA "nl"
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink_diag.h>
#include <linux/packet_diag.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ckpt/nl.h>

#include "util/log.h"
#include "util/util.h"

struct diag_ctx {
	struct ckpt_sock_info *socks;
	size_t nr;
	size_t found;
	int protocol; /* of the inet dump in progress */
};

static struct ckpt_sock_info *find_ino(struct diag_ctx *c, uint64_t ino)
{
	for (size_t i = 0; i < c->nr; i++)
		if (c->socks[i].ino == ino && !c->socks[i].found)
			return &c->socks[i];
	return NULL;
}

static void mark_found(struct diag_ctx *c, struct ckpt_sock_info *s)
{
	s->found = true;
	c->found++;
}

static void fmt_inet(char *buf, size_t len, int family, const __be32 *addr, __be16 port)
{
	char a[INET6_ADDRSTRLEN] = "";

	inet_ntop(family, addr, a, sizeof(a));
	if (family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, ntohs(port));
	else
		snprintf(buf, len, "%s:%u", a, ntohs(port));
}

static void copy_unix_name(char *dst, size_t dlen, const char *name, size_t len)
{
	size_t o = 0;

	if (len == 0) {
		dst[0] = '\0';
		return;
	}
	if (name[0] == '\0') { /* abstract */
		dst[o++] = '@';
		name++;
		len--;
	}
	for (size_t i = 0; i < len && o + 1 < dlen; i++) {
		if (name[i] == '\0' && (o == 0 || dst[0] != '@'))
			break; /* a path ends at its NUL; an abstract name shows its NULs as '@' */
		dst[o++] = name[i] ? name[i] : '@';
	}
	dst[o] = '\0';
}

static int unix_cb(struct nl_msg *msg, void *arg)
{
	struct diag_ctx *c = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct unix_diag_msg *m = nlmsg_data(nlh);
	struct ckpt_sock_info *s;
	struct nlattr *tb[UNIX_DIAG_MAX + 1];

	if (nlmsg_datalen(nlh) < (int)sizeof(*m))
		return NL_SKIP;
	s = find_ino(c, m->udiag_ino);
	if (!s)
		return NL_OK;
	s->family = AF_UNIX;
	s->type = m->udiag_type;
	s->state = m->udiag_state;
	if (nlmsg_parse(nlh, sizeof(*m), tb, UNIX_DIAG_MAX, NULL) == 0) {
		if (tb[UNIX_DIAG_NAME])
			copy_unix_name(s->local, sizeof(s->local), nla_data(tb[UNIX_DIAG_NAME]),
				       (size_t)nla_len(tb[UNIX_DIAG_NAME]));
		if (tb[UNIX_DIAG_PEER])
			s->peer_ino = nla_get_u32(tb[UNIX_DIAG_PEER]);
		if (tb[UNIX_DIAG_RQLEN] && nla_len(tb[UNIX_DIAG_RQLEN]) >= (int)sizeof(struct unix_diag_rqlen)) {
			const struct unix_diag_rqlen *q = nla_data(tb[UNIX_DIAG_RQLEN]);

			s->rqueue = q->udiag_rqueue;
			s->wqueue = q->udiag_wqueue;
		}
		if (tb[UNIX_DIAG_VFS] && nla_len(tb[UNIX_DIAG_VFS]) >= (int)sizeof(struct unix_diag_vfs)) {
			const struct unix_diag_vfs *v = nla_data(tb[UNIX_DIAG_VFS]);

			s->vfs_ino = v->udiag_vfs_ino;
			s->vfs_dev = v->udiag_vfs_dev;
		}
		if (tb[UNIX_DIAG_SHUTDOWN])
			s->shutdown = nla_get_u8(tb[UNIX_DIAG_SHUTDOWN]);
	}
	mark_found(c, s);
	return NL_OK;
}

static int inet_cb(struct nl_msg *msg, void *arg)
{
	struct diag_ctx *c = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct inet_diag_msg *m = nlmsg_data(nlh);
	struct ckpt_sock_info *s;
	struct nlattr *tb[INET_DIAG_MAX + 1];

	if (nlmsg_datalen(nlh) < (int)sizeof(*m))
		return NL_SKIP;
	s = find_ino(c, m->idiag_inode);
	if (!s)
		return NL_OK;
	s->family = m->idiag_family;
	s->protocol = c->protocol;
	s->type = c->protocol == IPPROTO_TCP ? SOCK_STREAM :
		  c->protocol == IPPROTO_UDP ? SOCK_DGRAM : SOCK_RAW;
	s->state = m->idiag_state;
	s->rqueue = m->idiag_rqueue;
	s->wqueue = m->idiag_wqueue;
	if (nlmsg_parse(nlh, sizeof(*m), tb, INET_DIAG_MAX, NULL) == 0 && tb[INET_DIAG_SHUTDOWN])
		s->shutdown = nla_get_u8(tb[INET_DIAG_SHUTDOWN]);
	fmt_inet(s->local, sizeof(s->local), m->idiag_family, m->id.idiag_src, m->id.idiag_sport);
	fmt_inet(s->remote, sizeof(s->remote), m->idiag_family, m->id.idiag_dst, m->id.idiag_dport);
	mark_found(c, s);
	return NL_OK;
}

static int netlink_cb(struct nl_msg *msg, void *arg)
{
	struct diag_ctx *c = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct netlink_diag_msg *m = nlmsg_data(nlh);
	struct ckpt_sock_info *s;
	struct nlattr *tb[NETLINK_DIAG_MAX + 1];

	if (nlmsg_datalen(nlh) < (int)sizeof(*m))
		return NL_SKIP;
	s = find_ino(c, m->ndiag_ino);
	if (!s)
		return NL_OK;
	s->family = AF_NETLINK;
	s->type = m->ndiag_type;
	s->protocol = m->ndiag_protocol;
	s->state = m->ndiag_state;
	s->nl_portid = m->ndiag_portid;
	s->nl_dst_portid = m->ndiag_dst_portid;
	s->nl_dst_group = m->ndiag_dst_group;
	if (nlmsg_parse(nlh, sizeof(*m), tb, NETLINK_DIAG_MAX, NULL) == 0 && tb[NETLINK_DIAG_GROUPS] &&
	    nla_len(tb[NETLINK_DIAG_GROUPS]) >= (int)sizeof(uint32_t))
		s->nl_groups = *(const uint32_t *)nla_data(tb[NETLINK_DIAG_GROUPS]);
	snprintf(s->local, sizeof(s->local), "portid %u", m->ndiag_portid);
	snprintf(s->remote, sizeof(s->remote), "portid %u group %u", m->ndiag_dst_portid,
		 m->ndiag_dst_group);
	mark_found(c, s);
	return NL_OK;
}

static int packet_cb(struct nl_msg *msg, void *arg)
{
	struct diag_ctx *c = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct packet_diag_msg *m = nlmsg_data(nlh);
	struct ckpt_sock_info *s;

	if (nlmsg_datalen(nlh) < (int)sizeof(*m))
		return NL_SKIP;
	s = find_ino(c, m->pdiag_ino);
	if (!s)
		return NL_OK;
	s->family = AF_PACKET;
	s->type = m->pdiag_type;
	s->protocol = m->pdiag_num;
	mark_found(c, s);
	return NL_OK;
}

/* One dump request on a fresh socket; a family the kernel lacks is skipped. */
static int dump(void *arg, const void *req, size_t len, nl_recvmsg_msg_cb_t cb)
{
	struct nl_sock *sk = nl_socket_alloc();
	int r;

	if (!sk)
		return -ENOMEM;
	r = nl_connect(sk, NETLINK_SOCK_DIAG);
	if (r < 0) {
		nl_socket_free(sk);
		return -EPROTONOSUPPORT;
	}
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, cb, arg);
	r = nl_send_simple(sk, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, (void *)req, len);
	if (r >= 0)
		r = nl_recvmsgs_default(sk);
	nl_socket_free(sk);
	if (r < 0) {
		/* NLE_OBJ_NOTFOUND/NLE_OPNOTSUPP: the diag module is not loaded. */
		if (r == -NLE_OBJ_NOTFOUND || r == -NLE_OPNOTSUPP || r == -NLE_NOADDR)
			return 0;
		pr_debug("sock_diag dump failed: %s", nl_geterror(r));
		return -EIO;
	}
	return 0;
}

int ckpt_nl_sock_describe(struct ckpt_sock_info *socks, size_t nr)
{
	struct diag_ctx c = { .socks = socks, .nr = nr };
	static const int inet_protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, IPPROTO_RAW };
	static const int inet_families[] = { AF_INET, AF_INET6 };
	int r;

	for (size_t i = 0; i < nr; i++) {
		uint64_t ino = socks[i].ino;

		memset(&socks[i], 0, sizeof(socks[i]));
		socks[i].ino = ino;
	}
	if (!nr)
		return 0;

	struct unix_diag_req ureq = {
		.sdiag_family = AF_UNIX,
		.udiag_states = ~0u,
		.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_VFS,
	};
	r = dump(&c, &ureq, sizeof(ureq), unix_cb);
	if (r < 0)
		return r;
	for (size_t f = 0; f < ARRAY_SIZE(inet_families) && c.found < nr; f++) {
		for (size_t p = 0; p < ARRAY_SIZE(inet_protos) && c.found < nr; p++) {
			struct inet_diag_req_v2 ireq = {
				.sdiag_family = (__u8)inet_families[f],
				.sdiag_protocol = (__u8)inet_protos[p],
				.idiag_states = ~0u,
			};

			c.protocol = inet_protos[p];
			r = dump(&c, &ireq, sizeof(ireq), inet_cb);
			if (r < 0)
				return r;
		}
	}
	if (c.found < nr) {
		struct netlink_diag_req nreq = {
			.sdiag_family = AF_NETLINK,
			.sdiag_protocol = NDIAG_PROTO_ALL,
			.ndiag_show = NDIAG_SHOW_GROUPS,
		};
		r = dump(&c, &nreq, sizeof(nreq), netlink_cb);
		if (r < 0)
			return r;
	}
	if (c.found < nr) {
		struct packet_diag_req preq = {
			.sdiag_family = AF_PACKET,
			.pdiag_show = PACKET_SHOW_INFO,
		};
		r = dump(&c, &preq, sizeof(preq), packet_cb);
		if (r < 0)
			return r;
	}
	return (int)c.found;
}

/* ---- the owner of the other end of a local TCP connection ---- */

struct peer_ctx {
	struct sockaddr_storage local, remote; /* of the socket looked for (the other end) */
	uid_t uid;
	int found;
};

static bool inet_match(const struct sockaddr_storage *ss, int family, const __be32 *addr, __be16 port)
{
	if (ss->ss_family != family)
		return false;
	if (family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		return in->sin_port == port && !memcmp(&in->sin_addr, addr, 4);
	}
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

	return in6->sin6_port == port && !memcmp(&in6->sin6_addr, addr, 16);
}

static int peer_cb(struct nl_msg *msg, void *arg)
{
	struct peer_ctx *c = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct inet_diag_msg *m = nlmsg_data(nlh);

	if (nlmsg_datalen(nlh) < (int)sizeof(*m) ||
	    !inet_match(&c->local, m->idiag_family, m->id.idiag_src, m->id.idiag_sport) ||
	    !inet_match(&c->remote, m->idiag_family, m->id.idiag_dst, m->id.idiag_dport))
		return NL_OK;
	c->uid = m->idiag_uid;
	c->found++;
	return NL_OK;
}

int ckpt_nl_tcp_peer_uid(int fd, uid_t *ret)
{
	struct peer_ctx c = { 0 };
	socklen_t len = sizeof(c.remote);
	int r;

	if (getsockname(fd, (struct sockaddr *)&c.remote, &len) < 0)
		return -errno;
	len = sizeof(c.local);
	if (getpeername(fd, (struct sockaddr *)&c.local, &len) < 0)
		return -errno;
	if (c.local.ss_family != AF_INET && c.local.ss_family != AF_INET6)
		return -EAFNOSUPPORT;

	struct inet_diag_req_v2 req = {
		.sdiag_family = (__u8)c.local.ss_family,
		.sdiag_protocol = IPPROTO_TCP,
		.idiag_states = 1u << TCP_ESTABLISHED,
	};
	r = dump(&c, &req, sizeof(req), peer_cb);
	if (r < 0)
		return r;
	if (c.found != 1)
		return -ENOENT; /* not in this network namespace: not a local peer */
	*ret = c.uid;
	return 0;
}

const char *ckpt_sock_family_name(int family)
{
	switch (family) {
	case AF_UNIX: return "unix";
	case AF_INET: return "inet";
	case AF_INET6: return "inet6";
	case AF_NETLINK: return "netlink";
	case AF_PACKET: return "packet";
	default: return "unknown";
	}
}

const char *ckpt_sock_type_name(int type)
{
	switch (type) {
	case SOCK_STREAM: return "stream";
	case SOCK_DGRAM: return "dgram";
	case SOCK_SEQPACKET: return "seqpacket";
	case SOCK_RAW: return "raw";
	default: return "unknown";
	}
}

const char *ckpt_sock_state_name(int state)
{
	static const char *const names[] = {
		[TCP_ESTABLISHED] = "established", [TCP_SYN_SENT] = "syn-sent",
		[TCP_SYN_RECV] = "syn-recv",       [TCP_FIN_WAIT1] = "fin-wait1",
		[TCP_FIN_WAIT2] = "fin-wait2",     [TCP_TIME_WAIT] = "time-wait",
		[TCP_CLOSE] = "close",             [TCP_CLOSE_WAIT] = "close-wait",
		[TCP_LAST_ACK] = "last-ack",       [TCP_LISTEN] = "listen",
		[TCP_CLOSING] = "closing",
	};

	if (state < 0 || (size_t)state >= ARRAY_SIZE(names) || !names[state])
		return "unknown";
	return names[state];
}
