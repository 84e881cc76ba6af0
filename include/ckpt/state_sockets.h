/* SPDX-License-Identifier: MIT */
/*
 * The socket of a file descriptor of files.json: what sock_diag said of it
 * (the inventory, as ss(8) shows it), and what the dump read through its own
 * copy of the fd (pidfd_getfd): addresses, options a program can read back,
 * the listen backlog, and the bytes waiting in a unix socket's queue.
 * Included by <ckpt/state.h>; docs/STATE.md describes the JSON.
 */
#ifndef CKPT_STATE_SOCKETS_H
#define CKPT_STATE_SOCKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKPT_STATE_SOCKADDR_MAX 128          /* sizeof(struct sockaddr_storage) */
#define CKPT_STATE_SOCK_QUEUE_MAX (16u << 20) /* a unix queue saved: at most 16 MiB */
#define CKPT_STATE_SOCK_MSGS_MAX (1u << 20)

/* The options saved and set again, by index into ckpt_state_sockopts[]. */
enum ckpt_state_sockopt {
	CKPT_SO_REUSEADDR,
	CKPT_SO_REUSEPORT,
	CKPT_SO_KEEPALIVE,
	CKPT_SO_BROADCAST,
	CKPT_SO_OOBINLINE,
	CKPT_SO_DONTROUTE,
	CKPT_SO_PASSCRED,
	CKPT_SO_PRIORITY,
	CKPT_SO_RCVLOWAT,
	CKPT_SO_MARK,
	CKPT_SO_RCVBUF,
	CKPT_SO_SNDBUF,
	CKPT_SO_RCVTIMEO,
	CKPT_SO_SNDTIMEO,
	CKPT_SO_LINGER,
	CKPT_TCP_NODELAY,
	CKPT_TCP_CORK,
	CKPT_TCP_KEEPIDLE,
	CKPT_TCP_KEEPINTVL,
	CKPT_TCP_KEEPCNT,
	CKPT_TCP_DEFER_ACCEPT,
	CKPT_TCP_USER_TIMEOUT,
	CKPT_TCP_FASTOPEN,
	CKPT_IP_TOS,
	CKPT_IP_TTL,
	CKPT_IP_FREEBIND,
	CKPT_IP_TRANSPARENT,
	CKPT_IP_RECVERR,
	CKPT_IP_PKTINFO,
	CKPT_IPV6_V6ONLY,
	CKPT_IPV6_TCLASS,
	CKPT_IPV6_UNICAST_HOPS,
	CKPT_IPV6_RECVPKTINFO,
	CKPT_STATE_NR_SOCKOPTS
};

enum ckpt_sockopt_form {
	CKPT_SOCKOPT_INT,       /* an int */
	CKPT_SOCKOPT_TIMEVAL,   /* struct timeval, saved in microseconds */
	CKPT_SOCKOPT_LINGER,    /* struct linger, saved as l_linger, or -1 when off */
	CKPT_SOCKOPT_BUF,       /* an int the kernel doubles: set half of it */
};

/* Which sockets an option applies to. */
#define CKPT_SOCKOPT_ANY   0u
#define CKPT_SOCKOPT_INET  1u   /* AF_INET and AF_INET6 */
#define CKPT_SOCKOPT_INET4 2u
#define CKPT_SOCKOPT_INET6 4u
#define CKPT_SOCKOPT_TCP   8u   /* and only TCP */

struct ckpt_state_sockopt_desc {
	const char *name;                    /* "SO_REUSEADDR": its JSON key */
	int level, opt;
	enum ckpt_sockopt_form form;
	unsigned int applies;                /* CKPT_SOCKOPT_* */
};
extern const struct ckpt_state_sockopt_desc ckpt_state_sockopts[CKPT_STATE_NR_SOCKOPTS];

/* Does option @o apply to a socket of @family, @type and @protocol? */
bool ckpt_state_sockopt_applies(enum ckpt_state_sockopt o, int family, int type, int protocol);

/*
 * An established TCP connection saved with TCP_REPAIR (dump
 * --tcp-established): sequence numbers, queues, window, options. Restore
 * makes it again in repair mode: no handshake, nothing sent until the
 * queues are back.
 */
struct ckpt_state_tcp {
	bool saved;                          /* false: not saved (refused unless listening or closed) */
	uint32_t inq_seq;                    /* rcv_nxt (TCP_QUEUE_SEQ of the receive queue) */
	uint32_t outq_seq;                   /* write_seq (TCP_QUEUE_SEQ of the send queue) */
	uint32_t inq_len;                    /* bytes received, not read by the program */
	uint32_t outq_len;                   /* bytes written, not acknowledged by the peer */
	uint32_t unsq_len;                   /* of those, not sent yet (SIOCOUTQNSD) */
	uint32_t mss;                        /* TCP_MAXSEG */
	uint32_t opts;                       /* TCPI_OPT_TIMESTAMPS 1, SACK 2, WSCALE 4 of tcp_info */
	uint32_t snd_wscale, rcv_wscale;
	uint32_t timestamp;                  /* TCP_TIMESTAMP, when TCPI_OPT_TIMESTAMPS */
	bool has_window;                     /* TCP_REPAIR_WINDOW (Linux 4.8) */
	uint32_t snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;
	char *recv_blob, *send_blob;         /* the queues' checkpoint files; NULL: empty */
	void *recv_data, *send_data;         /* dump only, until written; never in JSON */
};

struct ckpt_state_socket {
	/* What lib/nl's sock_diag reported (struct ckpt_sock_info). */
	bool found;                          /* false: sock_diag did not know it */
	int family, type, protocol, state;
	char local[160], remote[160];        /* as ss(8) prints them */
	uint64_t peer_ino;                   /* unix: the peer's inode, 0 if none */
	/*
	 * Read by the dump through its own copy of the fd; false in images
	 * made before sockets were saved (the judge then refuses them).
	 */
	bool known;
	uint32_t rqueue, wqueue;             /* bytes to read, not yet sent (SIOCINQ/SIOCOUTQ) */
	bool listening;
	uint32_t backlog;                    /* listening: the backlog listen(2) gave */
	uint32_t pending;                    /* listening: connections not yet accepted */
	unsigned int shutdown;               /* 1: no more reads, 2: no more writes (sk_shutdown) */
	uint32_t addr_len, peer_addr_len;    /* getsockname/getpeername; 0: none */
	unsigned char addr[CKPT_STATE_SOCKADDR_MAX], peer_addr[CKPT_STATE_SOCKADDR_MAX];
	uint64_t opt_mask;                   /* bit i: opts[i] was read */
	int64_t opts[CKPT_STATE_NR_SOCKOPTS];
	int peer_fd;                         /* unix: an fd of the process with the peer; -1: none */
	/*
	 * unix: the peer is fd @peer_fd of another process of the tree, this
	 * pid (0: none, or in the process itself); absent from older images.
	 */
	int peer_pid;
	/*
	 * unix, peer outside the process: the dump was told to accept it
	 * (--ext-unix-sk); restore connects again to the peer's address.
	 */
	bool external;
	/*
	 * unix: the bytes waiting in its receive queue, read without taking
	 * them (MSG_PEEK): @queue_len bytes in the checkpoint file @queue_blob,
	 * in @nr_msgs messages of @msg_lens bytes (stream: one). Restore
	 * writes them again from the peer. NULL: nothing waited.
	 */
	char *queue_blob;
	uint64_t queue_len;
	size_t nr_msgs;
	uint32_t *msg_lens;
	void *queue_data;                    /* dump only, until written; never in JSON */
	/* unix bound to a path: the socket file at the dump (has_file) */
	bool has_file;
	bool file_gone;                      /* unlinked or replaced after bind */
	uint32_t file_mode, file_uid, file_gid;
	/* netlink: the port id and groups it is bound to, where it sends */
	uint32_t nl_portid, nl_groups, nl_dst_portid, nl_dst_group;
	struct ckpt_state_tcp tcp;           /* TCP, established */
};

/*
 * A unix socket whose peer lives outside the process: connected to a socket
 * of another process, or to a listener that has not accepted it yet (its
 * peer has no inode then, but it was not shut down as a closed peer's is).
 */
bool ckpt_state_socket_peer_outside(const struct ckpt_state_socket *s);
/* Free what @s holds (not @s). */
void ckpt_state_socket_done(struct ckpt_state_socket *s);
/*
 * The socket as ss(8) would list it: "tcp listen 0.0.0.0:8000 peer *
 * recv-q 0 send-q 128", "u_str estab @name peer socket:[1234] recv-q 5
 * send-q 0". Never fails: truncated to @len.
 */
const char *ckpt_state_socket_name(const struct ckpt_state_socket *s, uint64_t ino, char *buf,
				   size_t len);

#endif
