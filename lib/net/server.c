/* SPDX-License-Identifier: MIT */
/*
 * The page server: one thread per client over a shared local page source.
 * Every receive has a deadline (handshake, idle, the rest of a message),
 * every send too; a connection's fault ends that connection only.
 *
 * Two budgets, so that peers who have proved nothing cannot starve those
 * who have: connections in their handshake (not yet authenticated, or
 * without a token not yet past HELLO) are at most max_handshakes, and
 * max_handshakes_per_addr from one address (an IPv6 /64); clients past it
 * at most max_clients. The whole handshake has one deadline from accept.
 * A connection over the first two limits drops the oldest one in its
 * handshake, silent ones (no complete HELLO) first, from its own address,
 * or when the total is reached from the address that holds the most: a
 * flood of silent connections churns among itself, and a client that said
 * HELLO finishes its handshake in a round trip.
 */
#define LOG_AREA "net"
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/net.h>

#include <ckpt/nl.h>

#include "net/net-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_CLIENTS_DEFAULT	     32
#define MAX_HANDSHAKES_DEFAULT	     8
#define MAX_HANDSHAKES_ADDR_DEFAULT  4
#define MAX_HANDSHAKES_LIMIT	     1024
#define HANDSHAKE_TIMEOUT_DEFAULT_MS 10000
#define IDLE_TIMEOUT_DEFAULT_MS	     300000
#define IO_TIMEOUT_DEFAULT_MS	     30000
#define CACHE_FRAMES_DEFAULT	     32

struct client;

/* The checkpoint of one process of a tree, DIR/proc-PID, opened at its first SELECT. */
struct srv_proc {
	char name[PROTO_PROC_NAME_MAX + 1];
	struct ckpt_page_source *src;
};

struct ckpt_page_server {
	struct ckpt_page_source *src; /* local; its lock serializes the reads */
	char *dir;
	unsigned int cache_frames;
	struct srv_proc **proc_v;     /* under lock; each never moves once opened */
	size_t nr_procs;
	struct net_key *key;
	int lfd;
	struct net_addr addr;
	unsigned int max_clients, max_batch;
	unsigned int max_handshakes, max_handshakes_per_addr;
	uint64_t handshake_ms, idle_ms, io_ms;
	ckpt_page_server_conn_fn on_conn;
	void *userdata;

	/*
	 * on_conn calls, one at a time, and the count of connections; never
	 * under @lock: a report that blocks (stdout a full pipe) must not stop
	 * accepting, handshakes or SELECT.
	 */
	pthread_mutex_t report_lock;
	uint64_t connections;

	pthread_mutex_t lock; /* the fields below */
	pthread_cond_t cond;
	struct client *clients;	 /* every connection with a thread */
	unsigned int nr_threads; /* of them */
	unsigned int nr_pending; /* in their handshake (CL_PENDING) */
	unsigned int nr_clients; /* past it (CL_CLIENT) */
	bool stopping;
};

enum client_state {
	CL_PENDING, /* in its handshake: counts in max_handshakes */
	CL_CLIENT,  /* past it: counts in max_clients */
	CL_DROPPED, /* dropped in its handshake for a newer connection: counts in neither */
};

struct client {
	struct ckpt_page_server *srv;
	struct client *next;
	struct conn c;
	uint16_t version;             /* of the protocol, picked at the handshake */
	struct ckpt_page_source *src; /* what its requests are about: the top one, or SELECTed */
	uint64_t t0;
	uint64_t hs_deadline;	 /* the end of the handshake; 0 once it is over */
	enum client_state state; /* under srv->lock */
	bool dropped;		 /* state == CL_DROPPED, for the thread to read without the lock */
	bool hello_seen;	 /* a complete HELLO arrived (atomic too) */
	uint8_t akey[16];	 /* its address (an IPv6 /64) for the per-address limit */
	char drop_why[320];	 /* set with CL_DROPPED, under srv->lock */
	bool authenticated;
	uint64_t requests, pages, data_pages, docs, request_errors;
	const char *end;
	char error[512];
	bool sent_fatal;  /* a fatal ERROR went out: let the peer read it before closing */
	uint8_t *kinds;	  /* PROTO_PAGES_HEAD + padded kinds */
	uint8_t *pagebuf; /* max_batch pages */
	struct iovec *iov;
};

static bool was_dropped(struct client *cl)
{
	return __atomic_load_n(&cl->dropped, __ATOMIC_ACQUIRE);
}

/* How a connection ends: a reason, and the fault logged once naming the peer. */
static int conn_end(struct client *cl, const char *end, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int conn_end(struct client *cl, const char *end, int r, const char *fmt, ...)
{
	va_list ap;

	cl->end = end;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(cl->error, sizeof(cl->error), fmt, ap);
		va_end(ap);
		/* A dropped connection fails as it is shut: the drop was logged, not this. */
		if (!was_dropped(cl))
			pr_warn("peer %s: %s", cl->c.peer, cl->error);
	}
	return r;
}

/* Deadline of a send, or of a message's rest: the I/O timeout, or the handshake's if sooner. */
static uint64_t io_deadline(const struct client *cl)
{
	uint64_t d = deadline_in(cl->srv->io_ms);

	return cl->hs_deadline && cl->hs_deadline < d ? cl->hs_deadline : d;
}

/* " within N ms" for a timeout message: the handshake's deadline, or the I/O timeout. */
static const char *within(const struct client *cl, char *buf, size_t len)
{
	if (cl->hs_deadline)
		snprintf(buf, len, "within the handshake deadline, %" PRIu64 " ms of connecting",
			 cl->srv->handshake_ms);
	else
		snprintf(buf, len, "within %" PRIu64 " ms", cl->srv->io_ms);
	return buf;
}

/* ---- sending ---- */

static int send_msg(struct client *cl, uint16_t type, uint16_t flags, uint32_t id,
		    struct iovec *body, int nbody, size_t len)
{
	struct iovec iov[1 + 2 * PROTO_BATCH_MAX + 2];
	uint8_t hb[PROTO_HDR_SIZE];
	size_t sent = 0;
	char w[96];
	int r;

	proto_hdr_encode(hb, &(struct proto_hdr){
				     .len = (uint32_t)len, .type = type, .flags = flags, .id = id});
	iov[0] = (struct iovec){hb, sizeof(hb)};
	for (int i = 0; i < nbody; i++)
		iov[1 + i] = body[i];
	r = conn_sendv(&cl->c, iov, 1 + nbody, io_deadline(cl), &sent);
	if (r == 0)
		return 0;
	if (r == -ETIMEDOUT)
		return conn_end(cl, "timeout", r,
				"does not read: a %s reply not taken %s (%zu of %zu bytes sent)",
				proto_type_name(type), within(cl, w, sizeof(w)), sent,
				PROTO_HDR_SIZE + len);
	return conn_end(cl, "error", r,
			"disconnected in the middle of a %s reply (%zu of %zu bytes sent): %s",
			proto_type_name(type), sent, PROTO_HDR_SIZE + len, strerror(-r));
}

/* An ERROR reply; a fatal one ends the connection (and returns @code as -errno). */
static int send_error(struct client *cl, uint32_t id, bool fatal, int code, const char *msg)
{
	uint8_t buf[PROTO_ERROR_HEAD + PROTO_ERROR_MSG_MAX];
	size_t n = proto_error_encode(buf, sizeof(buf), (uint32_t)(code < 0 ? -code : code), msg);
	int r = send_msg(cl, PROTO_ERROR, fatal ? PROTO_F_FATAL : 0, id, &(struct iovec){buf, n}, 1,
			 n);

	return r < 0 ? r : fatal ? (code < 0 ? code : -code) : 0;
}

/* A protocol fault: logged, answered with a fatal ERROR when possible, the end. */
static int fault(struct client *cl, uint32_t id, int code, const char *end, const char *msg)
{
	conn_end(cl, end, code, "%s", msg);
	if (send_error(cl, id, true, code, msg) == code)
		cl->sent_fatal = true;
	cl->end = end; /* keep the first reason even if the ERROR could not be sent */
	snprintf(cl->error, sizeof(cl->error), "%s", msg);
	return code;
}

/* ---- receiving ---- */

/*
 * The next message: its header and its payload (at most @max bytes, into
 * @buf). Waits for its start until @first_deadline, for the rest until the
 * I/O timeout. 1 on a clean close before any byte, 0 with a message, -errno
 * (the connection's end recorded) otherwise.
 */
static int recv_msg(struct client *cl, uint64_t first_deadline, const char *waiting_for,
		    uint8_t *buf, uint32_t max, struct proto_hdr *ret)
{
	uint8_t hb[PROTO_HDR_SIZE];
	char why[256], w[96];
	size_t got = 0;
	uint64_t deadline;
	int r;

	r = conn_wait_readable(&cl->c, first_deadline);
	if (r == -ETIMEDOUT) {
		uint64_t ms = (first_deadline - cl->t0) / 1000000;
		char msg[160];

		if (cl->authenticated || !strcmp(waiting_for, "a request"))
			snprintf(msg, sizeof(msg), "idle: no request within %" PRIu64 " ms",
				 cl->srv->idle_ms);
		else
			snprintf(msg, sizeof(msg), "no %s within %" PRIu64 " ms of connecting",
				 waiting_for, ms);
		return fault(cl, 0, -ETIMEDOUT, "timeout", msg);
	}
	deadline = io_deadline(cl);
	r = conn_recv(&cl->c, hb, sizeof(hb), deadline, &got);
	if (r == -ECONNRESET && got == 0)
		return 1;
	if (r == -ETIMEDOUT)
		return conn_end(cl, "timeout", r, "truncated message: %zu of %d header bytes %s",
				got, PROTO_HDR_SIZE, within(cl, w, sizeof(w)));
	if (r < 0)
		return conn_end(cl, "error", r,
				"truncated message: the connection %s after %zu of %d header bytes",
				r == -ECONNRESET ? "closed" : strerror(-r), got, PROTO_HDR_SIZE);
	r = proto_hdr_decode(hb, max, why, sizeof(why), ret);
	if (r < 0)
		return fault(cl, get_le32(hb + 8), r, "error", why);
	r = conn_recv(&cl->c, buf, ret->len, deadline, &got);
	if (r == -ETIMEDOUT)
		return conn_end(cl, "timeout", r,
				"truncated message: %zu of %" PRIu32 " payload bytes of a %s %s",
				got, ret->len, proto_type_name(ret->type),
				within(cl, w, sizeof(w)));
	if (r < 0)
		return conn_end(cl, "error", r,
				"truncated message: the connection %s after %zu of %" PRIu32
				" payload bytes of a %s",
				r == -ECONNRESET ? "closed" : strerror(-r), got, ret->len,
				proto_type_name(ret->type));
	return 0;
}

/* ---- handshake ---- */

/*
 * The handshake is done: from the budget of handshakes to that of clients.
 * A connection dropped meanwhile ends; a full client budget is a fatal EBUSY.
 */
static int promote(struct client *cl, uint32_t id)
{
	struct ckpt_page_server *srv = cl->srv;
	char msg[128];
	bool busy;

	pthread_mutex_lock(&srv->lock);
	if (cl->state != CL_PENDING) {
		pthread_mutex_unlock(&srv->lock);
		return -ECONNABORTED;
	}
	busy = srv->nr_clients >= srv->max_clients;
	if (!busy) {
		cl->state = CL_CLIENT;
		srv->nr_pending--;
		srv->nr_clients++;
	}
	pthread_mutex_unlock(&srv->lock);
	if (!busy)
		return 0;
	snprintf(msg, sizeof(msg), "too many clients: this page server serves %u at a time",
		 srv->max_clients);
	return fault(cl, id, -EBUSY, "refused", msg);
}

/*
 * Without a token, the peer (on loopback: the server listens nowhere else
 * without one) must be root, the server's own user, or the user whose
 * checkpoint it serves: a checkpoint holds a process's memory, and only
 * they could read its files anyway.
 */
static int local_peer_allowed(struct client *cl, uint32_t id)
{
	struct ckpt_provenance prov;
	char msg[320];
	uid_t uid;
	int r = ckpt_nl_tcp_peer_uid(cl->c.fd, &uid);

	if (r < 0) {
		snprintf(msg, sizeof(msg), "this page server has no token and cannot tell who the peer is "
			 "(%s): it serves only root and the checkpoint's owner", strerror(-r));
		return fault(cl, id, -EACCES, "error", msg);
	}
	if (uid == 0 || uid == geteuid() ||
	    (ckpt_page_source_provenance(cl->srv->src, &prov) == 0 && prov.kind == CKPT_PROV_USER &&
	     prov.uid == uid))
		return 0;
	snprintf(msg, sizeof(msg), "this page server has no token: it serves only root, uid %u and the "
		 "checkpoint's owner, not uid %u", (unsigned int)geteuid(), (unsigned int)uid);
	return fault(cl, id, -EACCES, "error", msg);
}

static int handshake(struct client *cl)
{
	struct ckpt_page_server *srv = cl->srv;
	uint64_t deadline = cl->hs_deadline;
	uint8_t buf[PROTO_REQUEST_MAX], hc[PROTO_HELLO_SIZE], hs[PROTO_HELLO_SIZE];
	struct proto_hello theirs, mine = {
					   .min_version = PROTO_VERSION_MIN,
					   .max_version = PROTO_VERSION,
					   .caps = srv->key ? PROTO_CAP_AUTH : 0,
					   .max_payload = PROTO_REQUEST_MAX,
					   .max_batch = srv->max_batch,
				   };
	struct proto_hdr h;
	char why[256], msg[320];
	int r;

	r = recv_msg(cl, deadline, "HELLO", buf, PROTO_REQUEST_MAX, &h);
	if (r == 1) {
		/* A port probe or a health check: not worth a warning. */
		cl->end = "closed";
		snprintf(cl->error, sizeof(cl->error), "closed the connection before its HELLO");
		if (!was_dropped(cl))
			pr_info("peer %s: %s", cl->c.peer, cl->error);
		return -ECONNRESET;
	}
	if (r < 0)
		return r;
	__atomic_store_n(&cl->hello_seen, true, __ATOMIC_RELEASE);
	if (h.type != PROTO_HELLO) {
		snprintf(msg, sizeof(msg), "a %s before HELLO", proto_type_name(h.type));
		return fault(cl, h.id, -EPROTO, "error", msg);
	}
	r = proto_hello_decode(buf, h.len, why, sizeof(why), &theirs);
	if (r < 0)
		return fault(cl, h.id, r, "error", why);
	memcpy(hc, buf, sizeof(hc));
	r = proto_version_pick(&mine, &theirs);
	if (r < 0) {
		snprintf(msg, sizeof(msg),
			 "protocol versions %u to %u not supported: this page server speaks %u to %u",
			 theirs.min_version, theirs.max_version, PROTO_VERSION_MIN, PROTO_VERSION);
		return fault(cl, h.id, -EPROTONOSUPPORT, "error", msg);
	}
	/* The reply names the one version both speak. */
	cl->version = (uint16_t)r;
	mine.min_version = mine.max_version = cl->version;
	if (srv->key && !(theirs.caps & PROTO_CAP_AUTH))
		return fault(cl, h.id, -EACCES, "error",
			     "authentication required: this page server has a token and the client "
			     "none");
	if (net_random(mine.nonce, sizeof(mine.nonce)) < 0)
		return fault(cl, h.id, -EIO, "error", "cannot draw a random nonce");
	/* Without a token, a valid HELLO from a peer allowed to read the checkpoint. */
	if (!srv->key && ((r = local_peer_allowed(cl, h.id)) < 0 || (r = promote(cl, h.id)) < 0))
		return r;
	proto_hello_encode(hs, &mine);
	r = send_msg(cl, PROTO_HELLO, 0, h.id, &(struct iovec){hs, sizeof(hs)}, 1, sizeof(hs));
	if (r < 0)
		return r;
	if (!srv->key)
		return 0;
	r = recv_msg(cl, deadline, "AUTH", buf, PROTO_REQUEST_MAX, &h);
	if (r == 1)
		return conn_end(cl, "closed", -ECONNRESET,
				"closed the connection before authenticating");
	if (r < 0)
		return r;
	if (h.type != PROTO_AUTH || h.len != PROTO_MAC_LEN) {
		snprintf(msg, sizeof(msg), "a %s of %" PRIu32 " bytes instead of AUTH",
			 proto_type_name(h.type), h.len);
		return fault(cl, h.id, -EPROTO, "error", msg);
	}
	{
		uint8_t want[PROTO_MAC_LEN], mac[PROTO_MAC_LEN];

		if (net_auth_mac(srv->key, false, hc, hs, want) < 0 ||
		    net_auth_mac(srv->key, true, hc, hs, mac) < 0)
			return fault(cl, h.id, -EIO, "error", "cannot compute HMAC-SHA256");
		if (!net_mac_equal(buf, want))
			return fault(cl, h.id, -EACCES, "error",
				     "authentication failed: wrong token");
		cl->authenticated = true;
		r = promote(cl, h.id);
		if (r < 0)
			return r;
		return send_msg(cl, PROTO_AUTH, 0, h.id, &(struct iovec){mac, sizeof(mac)}, 1,
				sizeof(mac));
	}
}

/* ---- requests ---- */

/* A refused request: answered, counted, logged; the connection goes on. */
static int refuse(struct client *cl, uint32_t id, int code, const char *what, const char *why)
{
	cl->request_errors++;
	if (!strncmp(why, what, strlen(what))) /* the text names the request already */
		what = "";
	if (code == -ENOENT)
		pr_info("peer %s: %s%s%s", cl->c.peer, what, *what ? ": " : "", why);
	else
		pr_warn("peer %s: %s%s%s", cl->c.peer, what, *what ? ": " : "", why);
	return send_error(cl, id, false, code, why);
}

static int do_get_doc(struct client *cl, const struct proto_hdr *h, const uint8_t *buf)
{
	char name[PROTO_DOC_NAME_MAX + 1], why[WHY_LEN] = "";
	_cleanup_free_ char *doc = NULL;
	size_t len = 0;
	int r;

	r = proto_get_doc_decode(buf, h->len, why, sizeof(why), name);
	if (r == -EINVAL)
		return refuse(cl, h->id, r, "GET_DOC", why);
	if (r < 0)
		return fault(cl, h->id, r, "error", why);
	r = pagesrc_get_doc(cl->src, name, &doc, &len, why, sizeof(why));
	if (r < 0 && !why[0]) /* lib/image logged the details: name the document at least */
		snprintf(why, sizeof(why), "cannot read document '%s' of the checkpoint: %s", name,
			 strerror(-r));
	if (r < 0)
		return refuse(cl, h->id, r, "GET_DOC", why);
	cl->docs++;
	return send_msg(cl, PROTO_DOC, 0, h->id, &(struct iovec){doc, len}, 1, len);
}

static int do_read(struct client *cl, const struct proto_hdr *h, const uint8_t *buf)
{
	struct ckpt_page_server *srv = cl->srv;
	char why[WHY_LEN] = "";
	struct proto_read rq;
	size_t ks, len;
	int r, data, niov = 0;

	r = proto_read_decode(buf, h->len, srv->max_batch, why, sizeof(why), &rq);
	if (r == -EINVAL || r == -EFAULT)
		return refuse(cl, h->id, r, "READ", why);
	if (r < 0)
		return fault(cl, h->id, r, "error", why);
	if (!cl->pagebuf) {
		cl->kinds = calloc(1, PROTO_PAGES_HEAD + PROTO_BATCH_MAX);
		cl->pagebuf = malloc((size_t)srv->max_batch * PROTO_PAGE_SIZE);
		cl->iov = malloc(((size_t)srv->max_batch + 1) * sizeof(*cl->iov));
		if (!cl->kinds || !cl->pagebuf || !cl->iov)
			return fault(cl, h->id, -ENOMEM, "error", "out of memory");
	}
	data = pagesrc_read(cl->src, rq.addr, rq.nr_pages, cl->kinds + PROTO_PAGES_HEAD,
			    cl->pagebuf, why, sizeof(why));
	if (data < 0 && !why[0]) /* lib/image logged the details */
		snprintf(why, sizeof(why),
			 "cannot read 0x%" PRIx64 "+%" PRIu32 " pages of the checkpoint: %s",
			 rq.addr, rq.nr_pages, strerror(-data));
	if (data < 0)
		return refuse(cl, h->id, data, "READ", why);
	ks = proto_kinds_size(rq.nr_pages);
	memset(cl->kinds + PROTO_PAGES_HEAD + rq.nr_pages, 0, ks - rq.nr_pages);
	proto_pages_encode(cl->kinds, &(struct proto_pages){.addr = rq.addr,
							    .nr_pages = rq.nr_pages,
							    .nr_data = (uint32_t)data});
	cl->iov[niov++] = (struct iovec){cl->kinds, PROTO_PAGES_HEAD + ks};
	for (uint32_t i = 0; i < rq.nr_pages; i++) {
		uint8_t *p = cl->pagebuf + (size_t)i * PROTO_PAGE_SIZE;
		struct iovec *last = &cl->iov[niov - 1];

		if (cl->kinds[PROTO_PAGES_HEAD + i] != PROTO_KIND_DATA)
			continue;
		if (niov > 1 && (uint8_t *)last->iov_base + last->iov_len == p)
			last->iov_len += PROTO_PAGE_SIZE;
		else
			cl->iov[niov++] = (struct iovec){p, PROTO_PAGE_SIZE};
	}
	len = PROTO_PAGES_HEAD + ks + (size_t)data * PROTO_PAGE_SIZE;
	r = send_msg(cl, PROTO_PAGES, 0, h->id, cl->iov, niov, len);
	if (r == 0) {
		cl->pages += rq.nr_pages;
		cl->data_pages += (uint64_t)data;
	}
	return r;
}

static int do_list(struct client *cl, const struct proto_hdr *h, const uint8_t *buf)
{
	const struct ckpt_page_source_range *rg;
	_cleanup_free_ uint8_t *out = NULL;
	char why[WHY_LEN] = "";
	struct proto_list l;
	struct proto_ranges head = {0};
	size_t nr, lo = 0, hi, len;
	int r;

	r = proto_list_decode(buf, h->len, why, sizeof(why), &l);
	if (r == -EINVAL)
		return refuse(cl, h->id, r, "LIST", why);
	if (r < 0)
		return fault(cl, h->id, r, "error", why);
	r = pagesrc_local_ranges(cl->src, &rg, &nr);
	if (r < 0)
		return fault(cl, h->id, r, "error", "no ranges to list");
	/* The first range that ends after @from. */
	hi = nr;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rg[mid].addr + rg[mid].nr_pages * PROTO_PAGE_SIZE <= l.from)
			lo = mid + 1;
		else
			hi = mid;
	}
	head.nr = (uint32_t)MIN((size_t)l.max_ranges, nr - lo);
	if (lo + head.nr < nr) {
		head.flags = PROTO_RANGES_MORE;
		head.next = rg[lo + head.nr].addr;
	}
	len = PROTO_RANGES_HEAD + (size_t)head.nr * PROTO_RANGE_SIZE;
	out = malloc(len);
	if (!out)
		return fault(cl, h->id, -ENOMEM, "error", "out of memory");
	proto_ranges_encode(out, &head);
	for (uint32_t i = 0; i < head.nr; i++) {
		struct proto_range pr = {.addr = rg[lo + i].addr,
					 .nr_pages = rg[lo + i].nr_pages,
					 .kind = rg[lo + i].kind};

		if (pr.addr < l.from) { /* cut where the client asked to start */
			pr.nr_pages -= (l.from - pr.addr) / PROTO_PAGE_SIZE;
			pr.addr = l.from;
		}
		proto_range_encode(out + PROTO_RANGES_HEAD + (size_t)i * PROTO_RANGE_SIZE, &pr);
	}
	return send_msg(cl, PROTO_RANGES, 0, h->id, &(struct iovec){out, len}, 1, len);
}

/*
 * The checkpoint of process @name (a valid proc-PID) under the served
 * directory: a directory of its own there, not a link to elsewhere; opened
 * once, shared by every client that selects it.
 */
static int proc_source(struct ckpt_page_server *srv, const char *name, struct ckpt_page_source **ret,
		       char *why, size_t whylen)
{
	struct ckpt_page_source_opts so = { .cache_frames = srv->cache_frames };
	_cleanup_free_ char *path = NULL;
	struct srv_proc *p, **v;
	struct stat st;
	int r = 0;

	pthread_mutex_lock(&srv->lock);
	for (size_t i = 0; i < srv->nr_procs; i++)
		if (!strcmp(srv->proc_v[i]->name, name)) {
			*ret = srv->proc_v[i]->src;
			goto out;
		}
	if (asprintf(&path, "%s/%s", srv->dir, name) < 0) {
		path = NULL;
		r = net_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
		goto out;
	}
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		r = net_why(why, whylen, -ENOENT, "no process '%s' in the checkpoint", name);
		goto out;
	}
	p = calloc(1, sizeof(*p));
	v = p ? reallocarray(srv->proc_v, srv->nr_procs + 1, sizeof(*v)) : NULL;
	if (!v) {
		free(p);
		r = net_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
		goto out;
	}
	srv->proc_v = v;
	snprintf(p->name, sizeof(p->name), "%s", name);
	r = ckpt_page_source_open_local(path, &so, &p->src); /* logged by lib/image */
	if (r < 0) {
		free(p);
		net_why(why, whylen, r, "cannot open the checkpoint of '%s': %s", name, strerror(-r));
		goto out;
	}
	srv->proc_v[srv->nr_procs++] = p;
	*ret = p->src;
out:
	pthread_mutex_unlock(&srv->lock);
	return r;
}

/* SELECT (version 2): the requests that follow are about process NAME's checkpoint. */
static int do_select(struct client *cl, const struct proto_hdr *h, const uint8_t *buf)
{
	char name[PROTO_PROC_NAME_MAX + 1], why[WHY_LEN] = "";
	struct ckpt_page_source *src = NULL;
	int r;

	r = proto_select_decode(buf, h->len, why, sizeof(why), name);
	if (r == -EINVAL)
		return refuse(cl, h->id, r, "SELECT", why);
	if (r < 0)
		return fault(cl, h->id, r, "error", why);
	r = proc_source(cl->srv, name, &src, why, sizeof(why));
	if (r < 0)
		return refuse(cl, h->id, r, "SELECT", why[0] ? why : strerror(-r));
	cl->src = src;
	return send_msg(cl, PROTO_SELECTED, 0, h->id, NULL, 0, 0);
}

static int serve(struct client *cl)
{
	uint8_t buf[PROTO_REQUEST_MAX];
	struct proto_hdr h;
	char msg[160];
	int r;

	r = handshake(cl);
	if (r < 0)
		return r;
	cl->hs_deadline = 0; /* from now on, the idle and I/O timeouts */
	for (;;) {
		uint64_t idle = cl->srv->idle_ms == CKPT_PAGE_SERVER_NO_TIMEOUT
					? 0
					: deadline_in(cl->srv->idle_ms);

		r = recv_msg(cl, idle, "a request", buf, PROTO_REQUEST_MAX, &h);
		if (r == 1) {
			cl->end = "closed";
			return 0;
		}
		if (r < 0)
			return r;
		switch (h.type) {
		case PROTO_GET_DOC:
			r = do_get_doc(cl, &h, buf);
			break;
		case PROTO_READ:
			r = do_read(cl, &h, buf);
			break;
		case PROTO_LIST:
			r = do_list(cl, &h, buf);
			break;
		case PROTO_SELECT:
			if (cl->version < PROTO_VERSION_SELECT)
				goto unexpected;
			r = do_select(cl, &h, buf);
			break;
		case PROTO_PING:
			r = h.len ? fault(cl, h.id, -EPROTO, "error", "PING with a payload")
				  : send_msg(cl, PROTO_PONG, 0, h.id, NULL, 0, 0);
			break;
		default:
		unexpected:
			snprintf(msg, sizeof(msg),
				 "unexpected %s from a client after the handshake",
				 proto_type_name(h.type));
			r = fault(cl, h.id, -EPROTO, "error", msg);
			break;
		}
		if (r < 0)
			return r;
		cl->requests++;
	}
}

/* ---- connections ---- */

/*
 * Close after a fatal ERROR without losing it: a close(2) with unread input
 * resets the connection, and the peer may then never read the ERROR. Stop
 * sending, drop what the peer still sends (a little, briefly), then close.
 */
static void linger_close(struct client *cl)
{
	uint64_t deadline = deadline_in(200);
	size_t total = 0;
	char buf[4096];

	shutdown(cl->c.fd, SHUT_WR);
	while (total < (256u << 10) && conn_wait_readable(&cl->c, deadline) == 0) {
		ssize_t n = recv(cl->c.fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n <= 0 && !(n < 0 && errno == EINTR))
			break;
		total += n > 0 ? (size_t)n : 0;
	}
}

static void client_free(struct client *cl)
{
	if (cl->c.fd >= 0)
		close(cl->c.fd);
	free(cl->kinds);
	free(cl->pagebuf);
	free(cl->iov);
	free(cl);
}

/* Its end, to on_conn (report_lock taken here; @srv->lock must not be held). */
static void report(struct ckpt_page_server *srv, struct client *cl)
{
	struct ckpt_page_server_conn_stats st = {
		.peer = cl->c.peer,
		.authenticated = cl->authenticated,
		.requests = cl->requests,
		.pages = cl->pages,
		.data_pages = cl->data_pages,
		.docs = cl->docs,
		.request_errors = cl->request_errors,
		.bytes_in = cl->c.bytes_in,
		.bytes_out = cl->c.bytes_out,
		.duration_ns = now_ns() - cl->t0,
		.end = cl->end ? cl->end : "error",
		.error = cl->error[0] ? cl->error : NULL,
	};

	pthread_mutex_lock(&srv->report_lock);
	srv->connections++;
	if (srv->on_conn)
		srv->on_conn(&st, srv->userdata);
	pthread_mutex_unlock(&srv->report_lock);
}

/* A fatal EBUSY ERROR, best effort: never waits. */
static void send_busy(struct client *cl, const char *msg)
{
	uint8_t buf[PROTO_HDR_SIZE + PROTO_ERROR_HEAD + 512];
	size_t n;

	n = proto_error_encode(buf + PROTO_HDR_SIZE, sizeof(buf) - PROTO_HDR_SIZE, EBUSY, msg);
	proto_hdr_encode(buf, &(struct proto_hdr){.len = (uint32_t)n,
						  .type = PROTO_ERROR,
						  .flags = PROTO_F_FATAL});
	if (send(cl->c.fd, buf, PROTO_HDR_SIZE + n, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
		cl->c.bytes_out += PROTO_HDR_SIZE + n;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	struct ckpt_page_server *srv = cl->srv;

	serve(cl);
	if (was_dropped(cl)) {
		/* Its read side was shut: say why on the write side, which is still open. */
		pthread_mutex_lock(&srv->lock);
		snprintf(cl->error, sizeof(cl->error), "%s", cl->drop_why);
		pthread_mutex_unlock(&srv->lock);
		send_busy(cl, cl->error);
		cl->end = "dropped";
	} else if (cl->sent_fatal) {
		linger_close(cl);
	}
	pthread_mutex_lock(&srv->lock);
	if (srv->stopping &&
	    (!cl->end || (strcmp(cl->end, "closed") && strcmp(cl->end, "dropped")))) {
		cl->end = "stopped";
		cl->error[0] = '\0';
	}
	for (struct client **p = &srv->clients; *p; p = &(*p)->next)
		if (*p == cl) {
			*p = cl->next;
			break;
		}
	/* Its place is free now; the thread counts until it has reported. */
	if (cl->state == CL_PENDING)
		srv->nr_pending--;
	else if (cl->state == CL_CLIENT)
		srv->nr_clients--;
	pthread_mutex_unlock(&srv->lock);
	report(srv, cl);
	pthread_mutex_lock(&srv->lock);
	srv->nr_threads--;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	client_free(cl);
	return NULL;
}

/* Refused at once, without a thread: a fatal EBUSY, best effort (@srv->lock not held). */
static void refuse_busy(struct ckpt_page_server *srv, struct client *cl, const char *msg)
{
	send_busy(cl, msg);
	conn_end(cl, "refused", -EBUSY, "%s", msg);
	report(srv, cl);
}

/*
 * The address of a peer for the per-address limit: an IPv4 address (also
 * when mapped in IPv6), or the /64 of an IPv6 one (what one host gets).
 */
static void addr_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(key, a->s6_addr + 12, 4);
		} else {
			key[4] = 6;
			memcpy(key + 8, a->s6_addr, 8);
		}
	}
}

/* The address part of a peer's "ADDR:PORT" ("[V6]:PORT"), for messages. */
static void addr_text(const struct client *cl, char *buf, size_t len)
{
	const char *colon = strrchr(cl->c.peer, ':');

	snprintf(buf, len, "%.*s%s", colon ? (int)(colon - cl->c.peer) : (int)strlen(cl->c.peer),
		 cl->c.peer, cl->akey[4] == 6 ? "/64" : "");
}

static unsigned int pending_from(const struct ckpt_page_server *srv, const uint8_t key[16])
{
	unsigned int n = 0;

	for (const struct client *c = srv->clients; c; c = c->next)
		n += c->state == CL_PENDING && !memcmp(c->akey, key, 16);
	return n;
}

/*
 * Has @c said HELLO: read by its thread, or whole in its socket already
 * (its thread not scheduled yet: a loaded machine must not make a good
 * client look silent).
 */
static bool said_hello(const struct client *c)
{
	int n = 0;

	return __atomic_load_n(&c->hello_seen, __ATOMIC_ACQUIRE) ||
	       (ioctl(c->c.fd, FIONREAD, &n) == 0 && n >= PROTO_HDR_SIZE + PROTO_HELLO_SIZE);
}

/*
 * Which connection in its handshake @nc, a new one, drops (lock held), or
 * NULL when both budgets have room. From @nc's address when that one is
 * full, else (the total is reached) from the address that holds the most;
 * a silent one (no complete HELLO) before one that said HELLO, then the
 * oldest. Why in @why.
 */
static struct client *pick_drop(struct ckpt_page_server *srv, const struct client *nc, char *why,
				size_t whylen)
{
	unsigned int same = pending_from(srv, nc->akey), best_n = 0;
	struct client *best = NULL;
	char a[128];

	if (same < srv->max_handshakes_per_addr && srv->nr_pending < srv->max_handshakes)
		return NULL;
	for (struct client *c = srv->clients; c; c = c->next) {
		unsigned int n;
		bool better;

		if (c->state != CL_PENDING)
			continue;
		if (same >= srv->max_handshakes_per_addr && memcmp(c->akey, nc->akey, 16))
			continue;
		n = same >= srv->max_handshakes_per_addr ? same : pending_from(srv, c->akey);
		if (!best || n != best_n) {
			better = !best || n > best_n;
		} else {
			bool hs = said_hello(c), hb = said_hello(best);

			better = hs != hb ? !hs : c->t0 < best->t0;
		}
		if (better) {
			best = c;
			best_n = n;
		}
	}
	if (!best)
		return NULL;
	addr_text(best, a, sizeof(a));
	if (same >= srv->max_handshakes_per_addr)
		snprintf(why, whylen,
			 "dropped for a newer connection: %s has %u "
			 "connections in their handshake, at most %u",
			 a, same, srv->max_handshakes_per_addr);
	else
		snprintf(why, whylen,
			 "dropped for a newer connection: %u "
			 "connections are in their handshake, at most %u (%u of them from %s)",
			 srv->nr_pending, srv->max_handshakes, best_n, a);
	return best;
}

/* Drop @cl (lock held): out of the budget now, its thread ends at once, saying why. */
static void drop(struct ckpt_page_server *srv, struct client *cl, const char *why)
{
	cl->state = CL_DROPPED;
	srv->nr_pending--;
	snprintf(cl->drop_why, sizeof(cl->drop_why), "%s", why);
	__atomic_store_n(&cl->dropped, true, __ATOMIC_RELEASE);
	pr_warn("peer %s: %s", cl->c.peer, why);
	shutdown(cl->c.fd, SHUT_RD); /* wakes its thread; the write side stays for the ERROR */
}

static int accept_one(struct ckpt_page_server *srv)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct client *cl, *victim;
	char why[320];
	pthread_attr_t attr;
	pthread_t t;
	int fd, one = 1, r;

	fd = accept4(srv->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		r = neg_errno();
		if (r == -EAGAIN || r == -EINTR || r == -ECONNABORTED || r == -EPROTO)
			return 0;
		pr_warn("cannot accept a connection on %s: %s", srv->addr.text, strerror(-r));
		/* EMFILE and friends: let the clients go before trying again. */
		poll(NULL, 0, 100);
		return r == -EMFILE || r == -ENFILE || r == -ENOBUFS || r == -ENOMEM ? 0 : r;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return 0;
	}
	cl->srv = srv;
	cl->src = srv->src;
	cl->c.fd = fd;
	cl->c.cancel_fd = -1;
	cl->t0 = now_ns();
	cl->hs_deadline = deadline_in(srv->handshake_ms);
	cl->state = CL_PENDING;
	addr_key(&ss, cl->akey);
	net_sockaddr_format((struct sockaddr *)&ss, sl, cl->c.peer, sizeof(cl->c.peer));
	pthread_mutex_lock(&srv->lock);
	if (srv->nr_clients >= srv->max_clients) {
		snprintf(why, sizeof(why), "too many clients: this page server serves %u at a time",
			 srv->max_clients);
		pthread_mutex_unlock(&srv->lock);
		refuse_busy(srv, cl, why);
		client_free(cl);
		return 0;
	}
	/*
	 * Threads of dropped connections end at once, but need a CPU to: give
	 * them a moment (the backlog holds the next connections), never let
	 * them pile up.
	 */
	if (srv->nr_threads >= srv->max_clients + 2 * srv->max_handshakes) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		while (srv->nr_threads >= srv->max_clients + 2 * srv->max_handshakes &&
		       pthread_cond_timedwait(&srv->cond, &srv->lock, &ts) == 0)
			;
	}
	if (srv->nr_threads >= srv->max_clients + 2 * srv->max_handshakes) {
		snprintf(why, sizeof(why),
			 "too many connections: %u at a time, dropped ones still closing",
			 srv->nr_threads);
		pthread_mutex_unlock(&srv->lock);
		refuse_busy(srv, cl, why);
		client_free(cl);
		return 0;
	}
	victim = pick_drop(srv, cl, why, sizeof(why));
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 1 << 20);
	r = -pthread_create(&t, &attr, client_main, cl);
	pthread_attr_destroy(&attr);
	if (r < 0) {
		pthread_mutex_unlock(&srv->lock);
		pr_warn("peer %s: cannot start a thread for it: %s", cl->c.peer, strerror(-r));
		client_free(cl);
		return 0;
	}
	if (victim)
		drop(srv, victim, why);
	cl->next = srv->clients;
	srv->clients = cl;
	srv->nr_threads++;
	srv->nr_pending++;
	pr_debug("peer %s: connected (%u clients, %u in their handshake)", cl->c.peer,
		 srv->nr_clients, srv->nr_pending);
	pthread_mutex_unlock(&srv->lock);
	return 0;
}

int ckpt_page_server_run(struct ckpt_page_server *srv, int stop_fd)
{
	int r = 0;

	for (;;) {
		struct pollfd p[2] = {{.fd = srv->lfd, .events = POLLIN},
				      {.fd = stop_fd, .events = POLLIN}};

		if (poll(p, stop_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = neg_errno();
			pr_err("cannot wait for connections on %s: %s", srv->addr.text,
			       strerror(-r));
			break;
		}
		if (stop_fd >= 0 && p[1].revents)
			break;
		if (p[0].revents) {
			r = accept_one(srv);
			if (r < 0) {
				pr_err("cannot accept connections on %s: %s", srv->addr.text,
				       strerror(-r));
				break;
			}
		}
	}
	/* Stop: end every connection and wait for its thread. */
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	for (struct client *cl = srv->clients; cl; cl = cl->next)
		shutdown(cl->c.fd, SHUT_RDWR);
	while (srv->nr_threads)
		pthread_cond_wait(&srv->cond, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	return r;
}

const char *ckpt_page_server_address(const struct ckpt_page_server *srv)
{
	return srv->addr.text;
}

bool ckpt_page_server_authenticates(const struct ckpt_page_server *srv)
{
	return srv->key != NULL;
}

uint64_t ckpt_page_server_connections(const struct ckpt_page_server *srv)
{
	return srv->connections;
}

void ckpt_page_server_free(struct ckpt_page_server *srv)
{
	if (!srv)
		return;
	if (srv->lfd >= 0)
		close(srv->lfd);
	ckpt_page_source_close(srv->src);
	for (size_t i = 0; i < srv->nr_procs; i++) {
		ckpt_page_source_close(srv->proc_v[i]->src);
		free(srv->proc_v[i]);
	}
	free(srv->proc_v);
	free(srv->dir);
	net_key_free(srv->key);
	pthread_mutex_destroy(&srv->lock);
	pthread_mutex_destroy(&srv->report_lock);
	pthread_cond_destroy(&srv->cond);
	free(srv);
}

static int do_listen(struct ckpt_page_server *srv)
{
	int one = 1;

	srv->lfd = socket(srv->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->lfd < 0)
		return neg_errno();
	setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(srv->lfd, (struct sockaddr *)&srv->addr.ss, srv->addr.len) < 0 ||
	    listen(srv->lfd, 128) < 0)
		return neg_errno();
	srv->addr.len = sizeof(srv->addr.ss);
	if (getsockname(srv->lfd, (struct sockaddr *)&srv->addr.ss, &srv->addr.len) < 0)
		return neg_errno();
	net_sockaddr_format((struct sockaddr *)&srv->addr.ss, srv->addr.len, srv->addr.text,
			    sizeof(srv->addr.text));
	return 0;
}

int ckpt_page_server_new(const struct ckpt_page_server_opts *opts, struct ckpt_page_server **ret)
{
	_cleanup_(ckpt_page_server_freep) struct ckpt_page_server *srv = NULL;
	struct ckpt_page_source_opts so = {0};
	char why[WHY_LEN] = "";
	int r;

	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		pr_err("cannot start the page server: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	srv->lfd = -1;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->report_lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	srv->max_clients = opts->max_clients ? opts->max_clients : MAX_CLIENTS_DEFAULT;
	srv->max_handshakes = opts->max_handshakes ? opts->max_handshakes : MAX_HANDSHAKES_DEFAULT;
	srv->max_handshakes_per_addr =
		opts->max_handshakes_per_addr
			? opts->max_handshakes_per_addr
			: MIN(MAX_HANDSHAKES_ADDR_DEFAULT, srv->max_handshakes);
	srv->max_batch = opts->max_batch ? opts->max_batch : PROTO_BATCH_DEFAULT;
	srv->handshake_ms = opts->handshake_timeout_ms ? opts->handshake_timeout_ms
						       : HANDSHAKE_TIMEOUT_DEFAULT_MS;
	srv->idle_ms = opts->idle_timeout_ms ? opts->idle_timeout_ms : IDLE_TIMEOUT_DEFAULT_MS;
	srv->io_ms = opts->io_timeout_ms ? opts->io_timeout_ms : IO_TIMEOUT_DEFAULT_MS;
	srv->on_conn = opts->on_conn;
	srv->userdata = opts->userdata;
	if (srv->max_batch > PROTO_BATCH_MAX) {
		pr_err("cannot start the page server: a batch of %u pages, at most %u",
		       srv->max_batch, PROTO_BATCH_MAX);
		return -EINVAL;
	}
	if (srv->max_handshakes > MAX_HANDSHAKES_LIMIT ||
	    srv->max_handshakes_per_addr > srv->max_handshakes) {
		pr_err("cannot start the page server: %u connections in their handshake, %u "
		       "of them from one address: at most %u, and no more from one address "
		       "than in all",
		       srv->max_handshakes, srv->max_handshakes_per_addr, MAX_HANDSHAKES_LIMIT);
		return -EINVAL;
	}
	if (srv->handshake_ms == CKPT_PAGE_SERVER_NO_TIMEOUT ||
	    srv->io_ms == CKPT_PAGE_SERVER_NO_TIMEOUT) {
		pr_err("cannot start the page server: the handshake and I/O timeouts cannot be "
		       "disabled");
		return -EINVAL;
	}
	r = net_addr_parse(opts->listen, "127.0.0.1", true, &srv->addr, why, sizeof(why));
	if (r < 0) {
		pr_err("cannot start the page server: %s", why);
		return r;
	}
	if (!opts->token_file && !net_addr_is_loopback(&srv->addr)) {
		pr_err("cannot start the page server on %s: not a loopback address; a token file "
		       "is "
		       "required",
		       srv->addr.text);
		return -EPERM;
	}
	if (opts->token_file) {
		r = net_key_load(opts->token_file, &srv->key, why, sizeof(why));
		if (r < 0) {
			pr_err("cannot start the page server: %s", why);
			return r;
		}
	}
	so.cache_frames = opts->cache_frames ? opts->cache_frames : CACHE_FRAMES_DEFAULT;
	srv->cache_frames = so.cache_frames;
	srv->dir = strdup(opts->dir);
	if (!srv->dir)
		return -ENOMEM;
	r = ckpt_page_source_open_local(opts->dir, &so, &srv->src);
	if (r < 0)
		return r;
	r = do_listen(srv);
	if (r < 0) {
		pr_err("cannot listen on %s: %s", srv->addr.text, strerror(-r));
		return r;
	}
	pr_debug("serving '%s' on %s%s", opts->dir, srv->addr.text,
		 srv->key ? " with authentication" : "");
	*ret = TAKE_PTR(srv);
	return 0;
}
