/* SPDX-License-Identifier: MIT */
/*
 * Sockets in the process model: the options saved, how a socket is named
 * (as ss(8) lists it), and the restore policy (what restore makes again:
 * unix sockets of every type, TCP sockets not connected and listening, UDP
 * sockets, netlink sockets; the rest is refused by name).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ckpt/nl.h>

#include "state/state_sockets.h"
#include "util/util.h"

#ifndef TCP_FASTOPEN
#define TCP_FASTOPEN 23
#endif
#ifndef IP_RECVERR
#define IP_RECVERR 11
#endif

#define S CKPT_SOCKOPT_ANY
#define I CKPT_SOCKOPT_INET
#define T (CKPT_SOCKOPT_INET | CKPT_SOCKOPT_TCP)
#define V4 CKPT_SOCKOPT_INET4
#define V6 CKPT_SOCKOPT_INET6

const struct ckpt_state_sockopt_desc ckpt_state_sockopts[CKPT_STATE_NR_SOCKOPTS] = {
	[CKPT_SO_REUSEADDR] = { "SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, CKPT_SOCKOPT_INT, I },
	[CKPT_SO_REUSEPORT] = { "SO_REUSEPORT", SOL_SOCKET, SO_REUSEPORT, CKPT_SOCKOPT_INT, I },
	[CKPT_SO_KEEPALIVE] = { "SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, CKPT_SOCKOPT_INT, I },
	[CKPT_SO_BROADCAST] = { "SO_BROADCAST", SOL_SOCKET, SO_BROADCAST, CKPT_SOCKOPT_INT, I },
	[CKPT_SO_OOBINLINE] = { "SO_OOBINLINE", SOL_SOCKET, SO_OOBINLINE, CKPT_SOCKOPT_INT, I },
	[CKPT_SO_DONTROUTE] = { "SO_DONTROUTE", SOL_SOCKET, SO_DONTROUTE, CKPT_SOCKOPT_INT, I },
	[CKPT_SO_PASSCRED] = { "SO_PASSCRED", SOL_SOCKET, SO_PASSCRED, CKPT_SOCKOPT_INT, S },
	[CKPT_SO_PRIORITY] = { "SO_PRIORITY", SOL_SOCKET, SO_PRIORITY, CKPT_SOCKOPT_INT, S },
	[CKPT_SO_RCVLOWAT] = { "SO_RCVLOWAT", SOL_SOCKET, SO_RCVLOWAT, CKPT_SOCKOPT_INT, S },
	[CKPT_SO_MARK] = { "SO_MARK", SOL_SOCKET, SO_MARK, CKPT_SOCKOPT_INT, S },
	[CKPT_SO_RCVBUF] = { "SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, CKPT_SOCKOPT_BUF, S },
	[CKPT_SO_SNDBUF] = { "SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, CKPT_SOCKOPT_BUF, S },
	[CKPT_SO_RCVTIMEO] = { "SO_RCVTIMEO", SOL_SOCKET, SO_RCVTIMEO, CKPT_SOCKOPT_TIMEVAL, S },
	[CKPT_SO_SNDTIMEO] = { "SO_SNDTIMEO", SOL_SOCKET, SO_SNDTIMEO, CKPT_SOCKOPT_TIMEVAL, S },
	[CKPT_SO_LINGER] = { "SO_LINGER", SOL_SOCKET, SO_LINGER, CKPT_SOCKOPT_LINGER, S },
	[CKPT_TCP_NODELAY] = { "TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY, CKPT_SOCKOPT_INT, T },
	[CKPT_TCP_CORK] = { "TCP_CORK", IPPROTO_TCP, TCP_CORK, CKPT_SOCKOPT_INT, T },
	[CKPT_TCP_KEEPIDLE] = { "TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE, CKPT_SOCKOPT_INT, T },
	[CKPT_TCP_KEEPINTVL] = { "TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL, CKPT_SOCKOPT_INT, T },
	[CKPT_TCP_KEEPCNT] = { "TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT, CKPT_SOCKOPT_INT, T },
	[CKPT_TCP_DEFER_ACCEPT] = { "TCP_DEFER_ACCEPT", IPPROTO_TCP, TCP_DEFER_ACCEPT, CKPT_SOCKOPT_INT, T },
	[CKPT_TCP_USER_TIMEOUT] = { "TCP_USER_TIMEOUT", IPPROTO_TCP, TCP_USER_TIMEOUT, CKPT_SOCKOPT_INT, T },
	[CKPT_TCP_FASTOPEN] = { "TCP_FASTOPEN", IPPROTO_TCP, TCP_FASTOPEN, CKPT_SOCKOPT_INT, T },
	[CKPT_IP_TOS] = { "IP_TOS", IPPROTO_IP, IP_TOS, CKPT_SOCKOPT_INT, V4 },
	[CKPT_IP_TTL] = { "IP_TTL", IPPROTO_IP, IP_TTL, CKPT_SOCKOPT_INT, V4 },
	[CKPT_IP_FREEBIND] = { "IP_FREEBIND", IPPROTO_IP, IP_FREEBIND, CKPT_SOCKOPT_INT, I },
	[CKPT_IP_TRANSPARENT] = { "IP_TRANSPARENT", IPPROTO_IP, IP_TRANSPARENT, CKPT_SOCKOPT_INT, I },
	[CKPT_IP_RECVERR] = { "IP_RECVERR", IPPROTO_IP, IP_RECVERR, CKPT_SOCKOPT_INT, V4 },
	[CKPT_IP_PKTINFO] = { "IP_PKTINFO", IPPROTO_IP, IP_PKTINFO, CKPT_SOCKOPT_INT, V4 },
	[CKPT_IPV6_V6ONLY] = { "IPV6_V6ONLY", IPPROTO_IPV6, IPV6_V6ONLY, CKPT_SOCKOPT_INT, V6 },
	[CKPT_IPV6_TCLASS] = { "IPV6_TCLASS", IPPROTO_IPV6, IPV6_TCLASS, CKPT_SOCKOPT_INT, V6 },
	[CKPT_IPV6_UNICAST_HOPS] = { "IPV6_UNICAST_HOPS", IPPROTO_IPV6, IPV6_UNICAST_HOPS,
				     CKPT_SOCKOPT_INT, V6 },
	[CKPT_IPV6_RECVPKTINFO] = { "IPV6_RECVPKTINFO", IPPROTO_IPV6, IPV6_RECVPKTINFO,
				    CKPT_SOCKOPT_INT, V6 },
};

#undef S
#undef I
#undef T
#undef V4
#undef V6

bool ckpt_state_sockopt_applies(enum ckpt_state_sockopt o, int family, int type, int protocol)
{
	unsigned int a = ckpt_state_sockopts[o].applies;
	bool inet = family == AF_INET || family == AF_INET6;

	(void)type;
	if ((a & CKPT_SOCKOPT_INET) && !inet)
		return false;
	if ((a & CKPT_SOCKOPT_INET4) && family != AF_INET)
		return false;
	if ((a & CKPT_SOCKOPT_INET6) && family != AF_INET6)
		return false;
	if ((a & CKPT_SOCKOPT_TCP) && protocol != IPPROTO_TCP)
		return false;
	/* SO_PASSCRED and SO_RCVLOWAT ... apply to every family; SO_MARK too. */
	return true;
}

void ckpt_state_socket_done(struct ckpt_state_socket *s)
{
	if (!s)
		return;
	free(s->queue_blob);
	free(s->msg_lens);
	free(s->queue_data);
	free(s->tcp.recv_blob);
	free(s->tcp.send_blob);
	free(s->tcp.recv_data);
	free(s->tcp.send_data);
	s->tcp.recv_blob = s->tcp.send_blob = NULL;
	s->tcp.recv_data = s->tcp.send_data = NULL;
	s->queue_blob = NULL;
	s->msg_lens = NULL;
	s->queue_data = NULL;
	s->nr_msgs = 0;
}

/* ss(8)'s Netid column. */
static const char *netid(const struct ckpt_state_socket *s)
{
	switch (s->family) {
	case AF_UNIX:
		return s->type == SOCK_STREAM ? "u_str" : s->type == SOCK_DGRAM ? "u_dgr" :
		       s->type == SOCK_SEQPACKET ? "u_seq" : "u_???";
	case AF_INET:
	case AF_INET6:
		return s->protocol == IPPROTO_TCP ? "tcp" : s->protocol == IPPROTO_UDP ? "udp" :
		       s->protocol == IPPROTO_UDPLITE ? "udplite" : "raw";
	case AF_NETLINK:
		return "nl";
	case AF_PACKET:
		return s->type == SOCK_DGRAM ? "p_dgr" : "p_raw";
	default:
		return "???";
	}
}

/* An address of getsockname/getpeername as ss prints it; "*" for none. */
static void addr_text(char *buf, size_t len, const unsigned char *raw, uint32_t alen)
{
	struct sockaddr_storage ss = { 0 };
	char a[INET6_ADDRSTRLEN] = "";

	memcpy(&ss, raw, alen < sizeof(ss) ? alen : sizeof(ss));
	if (alen < sizeof(sa_family_t)) {
		snprintf(buf, len, "*");
	} else if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in = (const void *)&ss;

		inet_ntop(AF_INET6, &in->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(in->sin6_port));
	} else if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)&ss;
		size_t n = alen - offsetof(struct sockaddr_un, sun_path);

		if (!n)
			snprintf(buf, len, "*");
		else if (!un->sun_path[0])
			snprintf(buf, len, "@%.*s", (int)(n - 1), un->sun_path + 1);
		else
			snprintf(buf, len, "%.*s", (int)strnlen(un->sun_path, n), un->sun_path);
	} else {
		snprintf(buf, len, "*");
	}
}

const char *ckpt_state_socket_name(const struct ckpt_state_socket *s, uint64_t ino, char *buf,
				   size_t len)
{
	char local[200], peer[200];
	const char *state = s->listening ? "listen" : ckpt_sock_state_name(s->state);

	if (!s->found && !s->known) {
		snprintf(buf, len, "socket:[%" PRIu64 "]", ino);
		return buf;
	}
	if (s->found && s->local[0])
		snprintf(local, sizeof(local), "%s", s->local);
	else
		addr_text(local, sizeof(local), s->addr, s->addr_len);
	if (s->family == AF_NETLINK)
		snprintf(local, sizeof(local), "portid %u", s->nl_portid);
	if (s->family == AF_UNIX && s->peer_addr_len > sizeof(sa_family_t))
		addr_text(peer, sizeof(peer), s->peer_addr, s->peer_addr_len);
	else if (s->family == AF_UNIX && s->peer_ino)
		snprintf(peer, sizeof(peer), "socket:[%" PRIu64 "]", s->peer_ino);
	else if (s->family == AF_UNIX)
		snprintf(peer, sizeof(peer), "*");
	else if (s->found && s->remote[0])
		snprintf(peer, sizeof(peer), "%s", s->remote);
	else
		addr_text(peer, sizeof(peer), s->peer_addr, s->peer_addr_len);
	if (s->family == AF_UNIX || s->family == AF_NETLINK || s->family == AF_PACKET ||
	    (s->protocol != IPPROTO_TCP && s->state == TCP_CLOSE))
		state = s->listening ? "listen" : s->state == TCP_ESTABLISHED ? "estab" :
			s->state == TCP_CLOSE ? "unconn" : state;
	if (s->listening)
		snprintf(buf, len, "%s listen %s recv-q %u send-q %u", netid(s), local, s->pending,
			 s->backlog);
	else
		snprintf(buf, len, "%s %s %s peer %s recv-q %u send-q %u", netid(s), state, local,
			 peer, s->rqueue, s->wqueue);
	return buf;
}

bool ckpt_state_socket_peer_outside(const struct ckpt_state_socket *s)
{
	if (s->family != AF_UNIX || s->listening || s->peer_fd >= 0 || s->peer_pid)
		return false;
	if (s->peer_ino)
		return true;
	/* A closed peer shut it down both ways (unix_release_sock); a listener's embryo did not. */
	return s->type != SOCK_DGRAM && s->state == TCP_ESTABLISHED && s->shutdown != 3;
}

static const char *unix_problem(const struct ckpt_state_socket *s)
{
	if (s->type != SOCK_STREAM && s->type != SOCK_DGRAM && s->type != SOCK_SEQPACKET)
		return "a unix socket of a type other than stream, dgram and seqpacket";
	if (!ckpt_state_socket_peer_outside(s)) {
		/* Not connected, a peer in the process, or a peer that closed. */
		return NULL;
	}
	if (!s->external)
		return "a unix socket connected to a peer outside the process (give ckpt dump "
		       "--ext-unix-sk to connect it again to the peer's address at restore)";
	if (s->peer_addr_len <= sizeof(sa_family_t))
		return "a unix socket connected to a peer outside the process that has no address "
		       "to connect to again";
	if (s->queue_len)
		return "a unix socket connected to a peer outside the process, with bytes from it "
		       "waiting in its queue (the peer cannot send them again)";
	return NULL;
}

static const char *tcp_problem(const struct ckpt_state_socket *s)
{
	if (s->listening || s->state == TCP_CLOSE)
		return NULL;
	switch (s->state) {
	case TCP_ESTABLISHED:
		if (s->tcp.saved)
			return NULL;
		return "an established TCP connection (give ckpt dump --tcp-established to save it "
		       "with TCP_REPAIR)";
	case TCP_SYN_SENT:
	case TCP_SYN_RECV:
		return "a TCP connection being set up";
	case TCP_TIME_WAIT:
		return "a TCP connection in TIME_WAIT";
	default:
		return "a half-closed or closing TCP connection";
	}
}

const char *state_socket_problem(const struct ckpt_state_fd *f)
{
	const struct ckpt_state_socket *s = &f->sock;

	if (!s->known)
		return "a socket the checkpoint does not describe (the dump could not read it, or it "
		       "was made by an older ckpt)";
	switch (s->family) {
	case AF_UNIX:
		if (!s->found)
			return "a unix socket sock_diag did not describe (its peer is not known)";
		return unix_problem(s);
	case AF_INET:
	case AF_INET6:
		if (s->protocol == IPPROTO_TCP && s->type == SOCK_STREAM)
			return tcp_problem(s);
		if (s->protocol == IPPROTO_UDP && s->type == SOCK_DGRAM)
			return NULL;
		return s->type == SOCK_RAW ? "a raw IP socket" : "an IP socket of a protocol other "
									"than TCP and UDP";
	case AF_NETLINK:
		if (s->type != SOCK_RAW && s->type != SOCK_DGRAM)
			return "a netlink socket of an unknown type";
		return NULL;
	case AF_PACKET:
		return "a packet socket";
	default:
		return "a socket of a family other than unix, inet, inet6 and netlink";
	}
}
