/* SPDX-License-Identifier: MIT */
/*
 * lib/nl: the one place that talks netlink (through libnl).
 *  - sock_diag: describe sockets by inode (family, type, state, addresses).
 *  - proc connector: fork/exec/exit events of processes.
 *  - locks of TCP connections while they are checkpointed (nftables, netlock.c).
 */
#ifndef CKPT_NL_H
#define CKPT_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/util.h>

struct ckpt_sock_info {
	uint64_t ino;
	int family;          /* AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET */
	int type;            /* SOCK_STREAM, SOCK_DGRAM, ... (0 if unknown) */
	int protocol;        /* IPPROTO_TCP / IPPROTO_UDP / netlink protocol */
	int state;           /* TCP_* for inet and unix sockets */
	char local[160];     /* "1.2.3.4:80", "[::1]:22", "/path", "@abstract", "" */
	char remote[160];
	uint64_t peer_ino;   /* unix: the inode of the peer, 0 if none */
	/*
	 * Bytes to read and not yet sent; listening: connections waiting to
	 * be accepted, and the backlog of listen(2).
	 */
	uint32_t rqueue, wqueue;
	int shutdown;        /* sk_shutdown: 1 no more reads, 2 no more writes */
	uint64_t vfs_ino;    /* unix bound to a path: the socket file's inode and device */
	uint32_t vfs_dev;    /* (kernel encoding, new_encode_dev) */
	uint32_t nl_portid, nl_dst_portid, nl_dst_group;
	uint32_t nl_groups;  /* netlink: the first 32 groups it is a member of */
	bool found;          /* false: sock_diag did not report this inode */
};

/*
 * Fill @socks[i] for each socket inode @socks[i].ino, from sock_diag dumps of
 * the calling process's network namespace. Entries not reported stay
 * found == false. Returns the number found or -errno.
 */
int ckpt_nl_sock_describe(struct ckpt_sock_info *socks, size_t nr) __must_check;
/*
 * The owner (uid) of the socket at the other end of connected TCP socket
 * @fd, when that end is in this network namespace (a local peer): -ENOENT
 * when it is not.
 */
int ckpt_nl_tcp_peer_uid(int fd, uid_t *ret) __must_check;
const char *ckpt_sock_family_name(int family);
const char *ckpt_sock_type_name(int type);
const char *ckpt_sock_state_name(int state);

/*
 * Block TCP connection @local <-> @peer (struct sockaddr_in or _in6): every
 * packet of it dropped both ways by nftables rules in table "inet
 * ckpt_@key", made with nft(8). -ENOENT: nft is not installed; -EIO: it
 * failed, its message in @err.
 */
struct sockaddr;
int ckpt_net_lock_tcp(unsigned int key, const struct sockaddr *local, const struct sockaddr *peer,
		      char *err, size_t errlen) __must_check;
/* Remove table "inet ckpt_@key" and so every lock of @key; 0 when there is none. */
int ckpt_net_unlock(unsigned int key, char *err, size_t errlen) __must_check;

enum ckpt_proc_event_kind {
	CKPT_PROC_EV_FORK = 1,
	CKPT_PROC_EV_EXEC,
	CKPT_PROC_EV_EXIT,
	CKPT_PROC_EV_OTHER,
};

struct ckpt_proc_event {
	enum ckpt_proc_event_kind kind;
	pid_t pid, tgid;               /* the task the event is about (parent for fork) */
	pid_t child_pid, child_tgid;   /* fork only */
	int exit_code;                 /* exit only: the wait status */
	uint64_t timestamp_ns;         /* when, in CLOCK_MONOTONIC nanoseconds (the kernel's ktime_get_ns) */
};

struct ckpt_proc_events;

/* Subscribe to the proc connector (needs CAP_NET_ADMIN). */
int ckpt_proc_events_open(struct ckpt_proc_events **ret) __must_check;
void ckpt_proc_events_close(struct ckpt_proc_events *ev);
CKPT_DEFINE_CLEANUP(struct ckpt_proc_events, ckpt_proc_events_close)
/* A file descriptor to poll(2) for input. */
int ckpt_proc_events_fd(const struct ckpt_proc_events *ev);
/*
 * Read what is queued without blocking: up to @max events into @out.
 * Returns the number read (0: nothing queued), -ENOBUFS when the kernel
 * dropped events (the caller must re-check what it watches), or -errno.
 */
int ckpt_proc_events_read(struct ckpt_proc_events *ev, struct ckpt_proc_event *out,
			  size_t max) __must_check;

#endif
