/* SPDX-License-Identifier: MIT */
/*
 * Internals of lib/net: the page-source object and its two kinds, sockets
 * with deadlines, addresses, the token and HMAC.
 *
 * Like lib/image, internal functions do not log: they return -errno and put
 * a complete message in a caller's buffer (@why, @whylen); the public
 * function (or the server, naming the peer) logs it once.
 */
#ifndef CKPT_NET_INTERNAL_H
#define CKPT_NET_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <ckpt/pagesrc.h>

#include "net/proto.h"

#define WHY_LEN 2048

int net_why(char *why, size_t whylen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- the page-source object (pagesrc.c) ---- */

/*
 * The operations of a kind of source. They fill @why on failure; a failure
 * with @why left empty was logged already (by lib/image, which logs its own
 * errors) and is not logged again.
 */
struct pagesrc_ops {
	/* Raw bytes of a document (the summary included); the caller frees @ret. */
	int (*get_doc)(void *priv, const char *name, char **ret, size_t *ret_len,
		       struct ckpt_page_source_stats *st, char *why, size_t whylen);
	/* Arguments checked: aligned, 1..BATCH_MAX pages, below the address limit. */
	int (*read_pages)(void *priv, uint64_t addr, uint32_t nr, uint8_t *kinds, void *buf,
			  struct ckpt_page_source_stats *st, char *why, size_t whylen);
	int (*list_ranges)(void *priv, struct ckpt_page_source_range **ret, size_t *ret_nr,
			   struct ckpt_page_source_stats *st, char *why, size_t whylen);
	/* Those cut to [lo, hi); NULL: the whole list is fetched once and cut here. */
	int (*list_ranges_in)(void *priv, uint64_t lo, uint64_t hi, struct ckpt_page_source_range **ret,
			      size_t *ret_nr, struct ckpt_page_source_stats *st, char *why, size_t whylen);
	int (*ping)(void *priv, struct ckpt_page_source_stats *st, char *why, size_t whylen);
	void (*free)(void *priv);
};

struct ckpt_page_source {
	const struct pagesrc_ops *ops;
	void *priv;
	char *name;
	bool remote;
	pthread_mutex_t lock;
	struct ckpt_page_source_stats st;
	struct ckpt_provenance prov; /* local: of its chain; remote: of the connection */
	struct ckpt_page_source_range *all; /* without list_ranges_in: the list, fetched once */
	size_t nr_all;
	bool have_all;
};

int pagesrc_new(const struct pagesrc_ops *ops, void *priv, const char *name, bool remote,
		struct ckpt_page_source **ret) __must_check;
/* The public calls without their log (the server logs with the peer). */
int pagesrc_get_doc(struct ckpt_page_source *src, const char *name, char **ret, size_t *ret_len,
		    char *why, size_t whylen) __must_check;
int pagesrc_read(struct ckpt_page_source *src, uint64_t addr, size_t nr, uint8_t *kinds, void *buf,
		 char *why, size_t whylen) __must_check;

/* The ranges of the sorted, disjoint @r that meet [@lo, @hi), cut to it, in a new array. */
int pagesrc_ranges_in(const struct ckpt_page_source_range *r, size_t nr, uint64_t lo, uint64_t hi,
		      struct ckpt_page_source_range **ret, size_t *ret_nr) __must_check;

/* ---- local (pagesrc_local.c) ---- */

/*
 * The resolved ranges of a local source, sorted: valid while it is open.
 * -EOPNOTSUPP for a remote source.
 */
int pagesrc_local_ranges(struct ckpt_page_source *src, const struct ckpt_page_source_range **ret,
			 size_t *ret_nr) __must_check;
/* ---- remote (pagesrc_remote.c) ---- */

struct net_key;
/*
 * A remote source over the connected stream socket @fd (taken over, closed
 * on failure): the handshake and nothing else (no address policy). For
 * tests and the fuzzer; @name stands for the URL in messages.
 */
int pagesrc_remote_open_fd(int fd, const char *name, const struct net_key *key,
			   unsigned int timeout_ms, struct ckpt_page_source **ret, char *why,
			   size_t whylen) __must_check;

/* ---- sockets with deadlines (conn.c) ---- */

struct conn {
	int fd;
	/*
	 * -1, or an fd (a signalfd) whose readability ends every wait with
	 * -EINTR: a client's connect and handshake, interrupted by the signals
	 * its caller blocked to handle them itself.
	 */
	int cancel_fd;
	char peer[96]; /* "ADDR:PORT" of the other side */
	uint64_t bytes_in, bytes_out;
};

/* A deadline @ms from now (0: none) in CLOCK_MONOTONIC ns; 0 means none. */
uint64_t deadline_in(uint64_t ms);
/*
 * Receive exactly the bytes of @iov before @deadline. -ETIMEDOUT, or
 * -ECONNRESET when the peer closed or reset the connection; @ret_got (may
 * be NULL) gets what arrived either way.
 */
int conn_recvv(struct conn *c, struct iovec *iov, int niov, uint64_t deadline,
	       size_t *ret_got) __must_check;
int conn_recv(struct conn *c, void *buf, size_t len, uint64_t deadline,
	      size_t *ret_got) __must_check;
/* Send all of @iov before @deadline (no SIGPIPE): -ETIMEDOUT, -EPIPE, -ECONNRESET. */
int conn_sendv(struct conn *c, struct iovec *iov, int niov, uint64_t deadline,
	       size_t *ret_sent) __must_check;
/*
 * Wait until something can be read (or the peer closed): 0, or -ETIMEDOUT.
 * Every wait of these calls ends with -EINTR once @c->cancel_fd is readable.
 */
int conn_wait_readable(struct conn *c, uint64_t deadline) __must_check;

/* ---- addresses (addr.c) ---- */

struct net_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[96]; /* "127.0.0.1:7777", "[::1]:7777" */
};

/*
 * "ADDR:PORT", "[IPV6]:PORT", "HOST:PORT", or "PORT" alone when
 * @default_host is given (the host to use). Port 0 only if @allow_port0.
 */
int net_addr_parse(const char *s, const char *default_host, bool allow_port0, struct net_addr *ret,
		   char *why, size_t whylen) __must_check;
/* "tcp://ADDR:PORT" */
int net_url_parse(const char *url, struct net_addr *ret, char *why, size_t whylen) __must_check;
bool net_addr_is_loopback(const struct net_addr *a);
void net_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen);

/* ---- the token and HMAC (auth.c) ---- */

#define NET_TOKEN_MIN 16
#define NET_TOKEN_MAX 4096

struct net_key {
	size_t len;
	uint8_t key[NET_TOKEN_MAX];
	uid_t owner;          /* of the token file: who can have given the secret away */
	gid_t owner_gid;
	char path[256];
};

/*
 * Read the shared secret from @path: 16 to 4096 bytes, trailing newlines
 * dropped; the file must not be readable or writable by group or others
 * (-EPERM).
 */
int net_key_load(const char *path, struct net_key **ret, char *why, size_t whylen) __must_check;
void net_key_free(struct net_key *k);
CKPT_DEFINE_CLEANUP(struct net_key, net_key_free)
int net_random(void *buf, size_t len) __must_check;
/* HMAC-SHA256(key, label || hello_c || hello_s), label by @server. */
int net_auth_mac(const struct net_key *k, bool server, const uint8_t hello_c[PROTO_HELLO_SIZE],
		 const uint8_t hello_s[PROTO_HELLO_SIZE], uint8_t out[PROTO_MAC_LEN]) __must_check;
bool net_mac_equal(const uint8_t a[PROTO_MAC_LEN], const uint8_t b[PROTO_MAC_LEN]);

#endif
