/* SPDX-License-Identifier: MIT */
/*
 * lib/net: the page server (ckpt-page-server(1)). It serves the metadata
 * and the pages of a checkpoint directory and its chain over TCP to any
 * number of clients (struct ckpt_page_source of ckpt/pagesrc.h, opened
 * with ckpt_page_source_open_remote()), one thread per client, up to a
 * limit. A slow or misbehaving client only holds its own thread: every read
 * and write has a deadline, every message a size limit, and the images are
 * locked only while pages are copied out of them.
 *
 * Errors of a connection (truncated or oversized messages, a wrong token, a
 * request outside the image, a peer gone in the middle of a reply,
 * timeouts) are answered with an ERROR message when the peer can still
 * hear it, logged as warnings (area "net") naming the peer, and end that
 * connection only; the server goes on.
 *
 * Threads: the caller of ckpt_page_server_run() should block the signals
 * it handles (SIGINT, SIGTERM...) before ckpt_page_server_new(), so the
 * client threads inherit the mask, and pass a signalfd as @stop_fd.
 */
#ifndef CKPT_NET_H
#define CKPT_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <ckpt/util.h>

struct ckpt_page_server;

#define CKPT_PAGE_SERVER_NO_TIMEOUT UINT64_MAX

/* What one connection did, when it ends. */
struct ckpt_page_server_conn_stats {
	const char *peer;   /* "ADDR:PORT" */
	bool authenticated; /* the peer proved it holds the token */
	uint64_t requests;  /* requests answered (the handshake excluded) */
	uint64_t pages, data_pages;
	uint64_t docs;		 /* documents sent */
	uint64_t request_errors; /* requests refused (outside the image, no such document...) */
	uint64_t bytes_in, bytes_out;
	uint64_t duration_ns;
	const char *end;   /* "closed", "error", "timeout", "refused", "dropped", "stopped" */
	const char *error; /* what went wrong, or NULL */
};

typedef void (*ckpt_page_server_conn_fn)(const struct ckpt_page_server_conn_stats *st,
					 void *userdata);

struct ckpt_page_server_opts {
	const char *dir;	/* the checkpoint (newest of its chain) */
	const char *listen;	/* "ADDR:PORT", "[IPV6]:PORT" or "PORT" (127.0.0.1); port 0: any */
	const char *token_file; /* required unless the address is a loopback one */
	unsigned int max_clients;      /* past the handshake; 0: 32; more are refused with EBUSY */
	/*
	 * Connections in their handshake (not yet authenticated; without a
	 * token, not yet past HELLO), in all (0: 8, at most 1024) and from one
	 * address, an IPv6 /64 (0: 4, or max_handshakes if less). One more
	 * drops the oldest in its handshake, a silent one first: from its own
	 * address when that one is full, else from the address with the most.
	 */
	unsigned int max_handshakes;
	unsigned int max_handshakes_per_addr;
	unsigned int max_batch;	       /* pages per READ request, 1..1024; 0: 1024 */
	uint64_t handshake_timeout_ms; /* the whole handshake, from accept; 0: 10 s */
	uint64_t idle_timeout_ms;      /* between two requests; 0: 300 s */
	uint64_t io_timeout_ms;	       /* the rest of a started message, a reply sent; 0: 30 s */
	unsigned int cache_frames;     /* decompressed frames kept; 0: 32 */
	/* Called once per connection end (refused ones included), one call at a time. */
	ckpt_page_server_conn_fn on_conn;
	void *userdata;
};

/*
 * Open the checkpoint and listen. -EPERM for a non-loopback address
 * without a token file (nothing is opened), -EINVAL for a bad address or
 * option, the errors of ckpt_page_source_open_local(), bind(2) and
 * listen(2) otherwise; each logged once.
 */
int ckpt_page_server_new(const struct ckpt_page_server_opts *opts,
			 struct ckpt_page_server **ret) __must_check;
/* The address it listens on, with the actual port: "127.0.0.1:41234". */
const char *ckpt_page_server_address(const struct ckpt_page_server *srv);
bool ckpt_page_server_authenticates(const struct ckpt_page_server *srv);
/*
 * Accept and serve clients until @stop_fd (-1: never) becomes readable;
 * then close every connection and wait for their threads. Returns 0, or
 * -errno when accepting fails for good.
 */
int ckpt_page_server_run(struct ckpt_page_server *srv, int stop_fd) __must_check;
/* Connections served so far (refused ones included). */
uint64_t ckpt_page_server_connections(const struct ckpt_page_server *srv);
void ckpt_page_server_free(struct ckpt_page_server *srv);
CKPT_DEFINE_CLEANUP(struct ckpt_page_server, ckpt_page_server_free)

#endif
