/* SPDX-License-Identifier: MIT */
/*
 * The remote page source: a client of ckpt page-server over one TCP
 * connection. Hello, mutual authentication when a token is involved, then
 * requests answered in order; a batch larger than the server's limit goes
 * out as several requests before the first reply is read.
 */
#define LOG_AREA "net"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <ckpt/nl.h>

#include "net/net-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define TIMEOUT_DEFAULT_MS 30000u
#define RANGES_TOTAL_MAX   (1u << 24)

struct remote {
	struct conn c;
	char *url;
	uint32_t next_id;
	uint32_t max_batch; /* pages per READ, from the server's HELLO */
	uint16_t version;   /* of the protocol, the server's pick */
	unsigned int timeout_ms;
	int broken; /* 0, or the -errno that broke the connection */
	char broken_why[512];
	uint8_t scratch[PROTO_PAGES_HEAD + PROTO_BATCH_MAX];
};

static void remote_free(void *priv)
{
	struct remote *rm = priv;

	if (!rm)
		return;
	if (rm->c.fd >= 0)
		close(rm->c.fd);
	free(rm->url);
	free(rm);
}

CKPT_DEFINE_CLEANUP(struct remote, remote_free)

/* A transport or protocol failure: the connection is unusable from now on. */
static int broken(struct remote *rm, int r, char *why, size_t whylen)
{
	if (!rm->broken) {
		rm->broken = r;
		snprintf(rm->broken_why, sizeof(rm->broken_why), "%s", why ? why : "");
		shutdown(rm->c.fd, SHUT_RDWR);
	}
	return r;
}

static int recv_reply(struct remote *rm, uint32_t id, uint16_t want, struct proto_hdr *ret,
		      char *why, size_t whylen);

/*
 * Before a request: nothing may be waiting from the server. Something that
 * is (an ERROR about the connection, such as the idle timeout, or its end)
 * breaks it, with the server's reason.
 */
static int check_usable(struct remote *rm, char *why, size_t whylen)
{
	struct pollfd p = {.fd = rm->c.fd, .events = POLLIN};
	struct proto_hdr h;

	if (!rm->broken && poll(&p, 1, 0) == 1) {
		int r = recv_reply(rm, 0, 0, &h, why, whylen);

		if (!rm->broken) {
			net_why(why, whylen, -EPROTO, "the page server sent a %s unasked",
				proto_type_name(h.type));
			broken(rm, r < 0 ? r : -EPROTO, why, whylen);
		}
		return rm->broken;
	}
	if (!rm->broken)
		return 0;
	return net_why(why, whylen, rm->broken, "connection to the page server is broken: %s",
		       rm->broken_why);
}

/* Receive @len bytes of a @what; failures break the connection. */
static int recv_part(struct remote *rm, struct iovec *iov, int niov, const char *what, size_t done,
		     size_t total, char *why, size_t whylen)
{
	size_t got = 0;
	int r = conn_recvv(&rm->c, iov, niov, deadline_in(rm->timeout_ms), &got);

	if (r == 0)
		return 0;
	if (r == -ETIMEDOUT)
		net_why(why, whylen, r,
			"no %s from the page server within %u ms (%zu of %zu bytes)", what,
			rm->timeout_ms, done + got, total);
	else if (r == -ECONNRESET && done + got == 0)
		net_why(why, whylen, r, "the page server closed the connection");
	else if (r == -ECONNRESET)
		net_why(why, whylen, r,
			"the page server closed the connection in the middle of a %s (%zu of %zu "
			"bytes)",
			what, done + got, total);
	else
		net_why(why, whylen, r, "cannot receive a %s from the page server: %s", what,
			strerror(-r));
	return broken(rm, r, why, whylen);
}

static int send_all(struct remote *rm, struct iovec *iov, int niov, char *why, size_t whylen)
{
	int r = conn_sendv(&rm->c, iov, niov, deadline_in(rm->timeout_ms), NULL);

	if (r < 0) {
		net_why(why, whylen, r, "cannot send to the page server: %s",
			r == -ETIMEDOUT ? "it does not read" : strerror(-r));
		return broken(rm, r, why, whylen);
	}
	return 0;
}

/*
 * The header of the reply to request @id, of type @want. An ERROR reply is
 * read whole and returned as its -errno (fatal ones break the connection).
 */
static int recv_reply(struct remote *rm, uint32_t id, uint16_t want, struct proto_hdr *ret,
		      char *why, size_t whylen)
{
	uint8_t hb[PROTO_HDR_SIZE];
	struct proto_hdr h;
	int r;

	r = recv_part(rm, &(struct iovec){hb, sizeof(hb)}, 1, "reply header", 0, sizeof(hb), why,
		      whylen);
	if (r < 0)
		return r;
	r = proto_hdr_decode(hb, PROTO_REPLY_MAX, why, whylen, &h);
	if (r < 0) {
		char inner[256];

		snprintf(inner, sizeof(inner), "%s", why);
		net_why(why, whylen, -EPROTO, "the page server broke the protocol: %s", inner);
		return broken(rm, -EPROTO, why, whylen);
	}
	if (h.type == PROTO_ERROR) {
		uint8_t eb[PROTO_ERROR_HEAD + PROTO_ERROR_MSG_MAX];
		struct proto_error e;

		if (h.len > sizeof(eb)) {
			net_why(why, whylen, -EPROTO,
				"the page server sent an ERROR of %" PRIu32 " bytes", h.len);
			return broken(rm, -EPROTO, why, whylen);
		}
		r = recv_part(rm, &(struct iovec){eb, h.len}, 1, "ERROR message", 0, h.len, why,
			      whylen);
		if (r < 0)
			return r;
		r = proto_error_decode(eb, h.len, why, whylen, &e);
		if (r < 0) {
			char inner[256];

			snprintf(inner, sizeof(inner), "%s", why);
			net_why(why, whylen, -EPROTO, "the page server broke the protocol: %s",
				inner);
			return broken(rm, -EPROTO, why, whylen);
		}
		net_why(why, whylen, -(int)e.code, "page server: %.*s", (int)e.msg_len, e.msg);
		/* Fatal, or about the connection rather than this request. */
		if (h.flags & PROTO_F_FATAL || h.id != id)
			return broken(rm, -(int)e.code, why, whylen);
		return -(int)e.code;
	}
	if (h.type != want || h.id != id) {
		net_why(why, whylen, -EPROTO,
			"the page server broke the protocol: %s #%" PRIu32
			" in answer to %s #%" PRIu32,
			proto_type_name(h.type), h.id, proto_type_name(want), id);
		return broken(rm, -EPROTO, why, whylen);
	}
	*ret = h;
	return 0;
}

static uint32_t new_id(struct remote *rm)
{
	if (++rm->next_id == 0)
		rm->next_id = 1;
	return rm->next_id;
}

/* ---- operations ---- */

static void count_io(struct ckpt_page_source_stats *st, const struct remote *rm, uint64_t in0,
		     uint64_t out0)
{
	st->bytes_in += rm->c.bytes_in - in0;
	st->bytes_out += rm->c.bytes_out - out0;
}

static int remote_get_doc(void *priv, const char *name, char **ret, size_t *ret_len,
			  struct ckpt_page_source_stats *st, char *why, size_t whylen)
{
	struct remote *rm = priv;
	uint64_t in0 = rm->c.bytes_in, out0 = rm->c.bytes_out;
	size_t nl = strlen(name);
	uint8_t hb[PROTO_HDR_SIZE];
	_cleanup_free_ char *buf = NULL;
	uint32_t id = new_id(rm);
	struct proto_hdr h;
	struct iovec iov[2];
	int r;

	r = check_usable(rm, why, whylen);
	if (r < 0)
		return r;
	proto_hdr_encode(hb,
			 &(struct proto_hdr){.len = (uint32_t)nl, .type = PROTO_GET_DOC, .id = id});
	iov[0] = (struct iovec){hb, sizeof(hb)};
	iov[1] = (struct iovec){(void *)name, nl};
	r = send_all(rm, iov, 2, why, whylen);
	if (r == 0) {
		st->requests++;
		st->round_trips++;
		r = recv_reply(rm, id, PROTO_DOC, &h, why, whylen);
	}
	if (r == 0 && h.len > PROTO_DOC_MAX) {
		net_why(why, whylen, -EPROTO,
			"the page server sent a document of %" PRIu32 " bytes", h.len);
		r = broken(rm, -EPROTO, why, whylen);
	}
	if (r == 0 && !(buf = malloc((size_t)h.len + 1)))
		r = net_why(why, whylen, -ENOMEM, "cannot receive '%s': %s", name,
			    strerror(ENOMEM));
	if (r == 0)
		r = recv_part(rm, &(struct iovec){buf, h.len}, 1, "document", 0, h.len, why,
			      whylen);
	count_io(st, rm, in0, out0);
	if (r < 0)
		return r;
	buf[h.len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = h.len;
	return 0;
}

/* Receive the PAGES reply to @req (sent as request @id). Returns the data pages. */
static int recv_pages(struct remote *rm, uint32_t id, const struct proto_read *req, uint8_t *kinds,
		      char *buf, struct iovec *iov, char *why, size_t whylen)
{
	size_t head = PROTO_PAGES_HEAD + proto_kinds_size(req->nr_pages), total;
	struct proto_pages p;
	struct proto_hdr h;
	int r, niov = 0;

	r = recv_reply(rm, id, PROTO_PAGES, &h, why, whylen);
	if (r < 0)
		return r;
	if (h.len < head) {
		net_why(why, whylen, -EPROTO,
			"the page server sent PAGES of %" PRIu32 " bytes for %" PRIu32 " pages",
			h.len, req->nr_pages);
		return broken(rm, -EPROTO, why, whylen);
	}
	total = h.len;
	r = recv_part(rm, &(struct iovec){rm->scratch, head}, 1, "PAGES reply", 0, total, why,
		      whylen);
	if (r < 0)
		return r;
	r = proto_pages_decode(rm->scratch, h.len, req, why, whylen, &p);
	if (r == 0)
		r = proto_kinds_check(rm->scratch + PROTO_PAGES_HEAD, p.nr_pages, p.nr_data, why,
				      whylen);
	if (r < 0) {
		char inner[256];

		snprintf(inner, sizeof(inner), "%s", why);
		net_why(why, whylen, -EPROTO, "the page server broke the protocol: %s", inner);
		return broken(rm, -EPROTO, why, whylen);
	}
	memcpy(kinds, rm->scratch + PROTO_PAGES_HEAD, p.nr_pages);
	/* The data pages go straight to their slots, runs of them in one iovec. */
	for (uint32_t i = 0; i < p.nr_pages; i++) {
		if (kinds[i] != PROTO_KIND_DATA)
			continue;
		if (niov && (char *)iov[niov - 1].iov_base + iov[niov - 1].iov_len ==
				    buf + ((size_t)i << 12)) {
			iov[niov - 1].iov_len += PROTO_PAGE_SIZE;
			continue;
		}
		iov[niov++] = (struct iovec){buf + ((size_t)i << 12), PROTO_PAGE_SIZE};
	}
	r = recv_part(rm, iov, niov, "PAGES reply", head, total, why, whylen);
	return r < 0 ? r : (int)p.nr_data;
}

static int remote_read_pages(void *priv, uint64_t addr, uint32_t nr, uint8_t *kinds, void *buf,
			     struct ckpt_page_source_stats *st, char *why, size_t whylen)
{
	struct remote *rm = priv;
	uint64_t in0 = rm->c.bytes_in, out0 = rm->c.bytes_out;
	uint32_t nreq = (nr + rm->max_batch - 1) / rm->max_batch;
	_cleanup_free_ uint32_t *ids = NULL;
	_cleanup_free_ uint8_t *reqs = NULL;
	_cleanup_free_ struct iovec *iov = NULL;
	int r, data = 0, err = 0;
	char errwhy[512] = "";

	r = check_usable(rm, why, whylen);
	if (r < 0)
		return r;
	reqs = malloc((size_t)nreq * (PROTO_HDR_SIZE + PROTO_READ_SIZE));
	iov = malloc(MAX((size_t)nreq, (size_t)rm->max_batch) * sizeof(*iov));
	ids = malloc((size_t)nreq * sizeof(*ids));
	if (!reqs || !iov || !ids)
		return net_why(why, whylen, -ENOMEM, "cannot read pages: %s", strerror(ENOMEM));
	for (uint32_t q = 0; q < nreq; q++) {
		uint8_t *m = reqs + (size_t)q * (PROTO_HDR_SIZE + PROTO_READ_SIZE);
		uint32_t n = MIN(rm->max_batch, nr - q * rm->max_batch);

		ids[q] = new_id(rm);
		proto_hdr_encode(m, &(struct proto_hdr){.len = PROTO_READ_SIZE,
							.type = PROTO_READ,
							.id = ids[q]});
		proto_read_encode(
			m + PROTO_HDR_SIZE,
			&(struct proto_read){.addr = addr + (uint64_t)q * rm->max_batch * 4096,
					     .nr_pages = n});
	}
	r = send_all(rm, &(struct iovec){reqs, (size_t)nreq * (PROTO_HDR_SIZE + PROTO_READ_SIZE)},
		     1, why, whylen);
	if (r < 0)
		goto out;
	st->requests += nreq;
	st->round_trips++;
	for (uint32_t q = 0; q < nreq; q++) {
		uint32_t off = q * rm->max_batch;
		struct proto_read req = {.addr = addr + (uint64_t)off * 4096,
					 .nr_pages = MIN(rm->max_batch, nr - off)};

		r = recv_pages(rm, ids[q], &req, kinds + off, (char *)buf + (size_t)off * 4096, iov,
			       why, whylen);
		if (r >= 0) {
			data += r;
			continue;
		}
		if (rm->broken)
			goto out;
		/* A refused request: the others are still answered; report the first. */
		if (!err) {
			err = r;
			snprintf(errwhy, sizeof(errwhy), "%s", why);
		}
	}
	r = err ? net_why(why, whylen, err, "%s", errwhy) : data;
out:
	count_io(st, rm, in0, out0);
	return r;
}

static int remote_list_ranges(void *priv, struct ckpt_page_source_range **ret, size_t *ret_nr,
			      struct ckpt_page_source_stats *st, char *why, size_t whylen)
{
	struct remote *rm = priv;
	uint64_t in0 = rm->c.bytes_in, out0 = rm->c.bytes_out, from = 0, min_addr = 0;
	_cleanup_free_ struct ckpt_page_source_range *out = NULL;
	_cleanup_free_ uint8_t *body = NULL;
	size_t nr = 0, cap = 0;
	int r;

	r = check_usable(rm, why, whylen);
	if (r < 0)
		return r;
	body = malloc((size_t)PROTO_RANGES_MAX * PROTO_RANGE_SIZE + PROTO_RANGES_HEAD);
	if (!body)
		return net_why(why, whylen, -ENOMEM, "cannot list ranges: %s", strerror(ENOMEM));
	for (;;) {
		uint8_t m[PROTO_HDR_SIZE + PROTO_LIST_SIZE];
		uint32_t id = new_id(rm);
		struct proto_ranges rs;
		struct proto_hdr h;

		proto_hdr_encode(m, &(struct proto_hdr){
					    .len = PROTO_LIST_SIZE, .type = PROTO_LIST, .id = id});
		proto_list_encode(
			m + PROTO_HDR_SIZE,
			&(struct proto_list){.from = from, .max_ranges = PROTO_RANGES_MAX});
		r = send_all(rm, &(struct iovec){m, sizeof(m)}, 1, why, whylen);
		if (r < 0)
			break;
		st->requests++;
		st->round_trips++;
		r = recv_reply(rm, id, PROTO_RANGES, &h, why, whylen);
		if (r < 0)
			break;
		if (h.len > (size_t)PROTO_RANGES_MAX * PROTO_RANGE_SIZE + PROTO_RANGES_HEAD) {
			net_why(why, whylen, -EPROTO,
				"the page server sent RANGES of %" PRIu32 " bytes", h.len);
			r = broken(rm, -EPROTO, why, whylen);
			break;
		}
		r = recv_part(rm, &(struct iovec){body, h.len}, 1, "RANGES reply", 0, h.len, why,
			      whylen);
		if (r < 0)
			break;
		r = proto_ranges_decode(body, h.len, PROTO_RANGES_MAX, why, whylen, &rs);
		if (r == 0 && nr + rs.nr > RANGES_TOTAL_MAX)
			r = net_why(why, whylen, -EPROTO, "more than %u ranges", RANGES_TOTAL_MAX);
		if (r == 0 && GROW(out, cap, nr + rs.nr + 1) < 0) {
			r = net_why(why, whylen, -ENOMEM, "cannot list ranges: %s",
				    strerror(ENOMEM));
			break;
		}
		for (uint32_t i = 0; r == 0 && i < rs.nr; i++) {
			struct proto_range pr;

			r = proto_range_decode(body + PROTO_RANGES_HEAD +
						       (size_t)i * PROTO_RANGE_SIZE,
					       min_addr, why, whylen, &pr);
			if (r == 0) {
				out[nr++] = (struct ckpt_page_source_range){
					.addr = pr.addr, .nr_pages = pr.nr_pages, .kind = pr.kind};
				min_addr = pr.addr + pr.nr_pages * PROTO_PAGE_SIZE;
			}
		}
		if (r == 0 && (rs.flags & PROTO_RANGES_MORE) &&
		    (rs.next <= from || rs.next < min_addr))
			r = net_why(why, whylen, -EPROTO, "RANGES going back to 0x%" PRIx64,
				    rs.next);
		if (r < 0) {
			char inner[256];

			snprintf(inner, sizeof(inner), "%s", why);
			net_why(why, whylen, -EPROTO, "the page server broke the protocol: %s",
				inner);
			r = broken(rm, -EPROTO, why, whylen);
			break;
		}
		if (!(rs.flags & PROTO_RANGES_MORE))
			break;
		from = rs.next;
	}
	count_io(st, rm, in0, out0);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(out);
	if (!*ret)
		*ret = calloc(1, sizeof(**ret));
	*ret_nr = nr;
	return *ret ? 0 : net_why(why, whylen, -ENOMEM, "cannot list ranges: %s", strerror(ENOMEM));
}

static int remote_ping(void *priv, struct ckpt_page_source_stats *st, char *why, size_t whylen)
{
	struct remote *rm = priv;
	uint64_t in0 = rm->c.bytes_in, out0 = rm->c.bytes_out;
	uint8_t m[PROTO_HDR_SIZE];
	uint32_t id = new_id(rm);
	struct proto_hdr h;
	int r;

	r = check_usable(rm, why, whylen);
	if (r < 0)
		return r;
	proto_hdr_encode(m, &(struct proto_hdr){ .type = PROTO_PING, .id = id });
	r = send_all(rm, &(struct iovec){ m, sizeof(m) }, 1, why, whylen);
	if (r == 0) {
		st->requests++;
		st->round_trips++;
		r = recv_reply(rm, id, PROTO_PONG, &h, why, whylen);
	}
	if (r == 0 && h.len) {
		net_why(why, whylen, -EPROTO, "the page server sent a PONG of %" PRIu32 " bytes", h.len);
		r = broken(rm, -EPROTO, why, whylen);
	}
	count_io(st, rm, in0, out0);
	return r;
}

static const struct pagesrc_ops remote_ops = {
	.get_doc = remote_get_doc,
	.read_pages = remote_read_pages,
	.list_ranges = remote_list_ranges,
	.ping = remote_ping,
	.free = remote_free,
};

/* ---- connection and handshake ---- */

static int connect_to(struct remote *rm, const struct net_addr *a, char *why, size_t whylen)
{
	int one = 1, err = 0, r;
	socklen_t el = sizeof(err);

	rm->c.fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (rm->c.fd < 0)
		return net_why(why, whylen, neg_errno(), "cannot create a socket: %s",
			       strerror(errno));
	setsockopt(rm->c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	snprintf(rm->c.peer, sizeof(rm->c.peer), "%s", a->text);
	if (connect(rm->c.fd, (const struct sockaddr *)&a->ss, a->len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return net_why(why, whylen, neg_errno(), "cannot connect to %s: %s", a->text,
			       strerror(errno));
	{
		struct pollfd p[2] = {{.fd = rm->c.fd, .events = POLLOUT},
				      {.fd = rm->c.cancel_fd, .events = POLLIN}};

		do
			r = poll(p, rm->c.cancel_fd >= 0 ? 2 : 1, (int)rm->timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r > 0 && rm->c.cancel_fd >= 0 && p[1].revents)
			return -EINTR;
		if (r == 0)
			return net_why(why, whylen, -ETIMEDOUT,
				       "cannot connect to %s: no answer within %u ms", a->text,
				       rm->timeout_ms);
	}
	if (getsockopt(rm->c.fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		err = errno;
	if (err)
		return net_why(why, whylen, -err, "cannot connect to %s: %s", a->text,
			       strerror(err));
	return 0;
}

static int handshake(struct remote *rm, const struct net_key *key, char *why, size_t whylen)
{
	struct proto_hello mine =
				   {
					   .min_version = PROTO_VERSION_MIN,
					   .max_version = PROTO_VERSION,
					   .caps = key ? PROTO_CAP_AUTH : 0,
					   .max_payload = PROTO_REPLY_MAX,
				   },
			   theirs;
	uint8_t out[PROTO_HDR_SIZE + PROTO_HELLO_SIZE], hs[PROTO_HELLO_SIZE];
	struct proto_hdr h;
	int r;

	if (net_random(mine.nonce, sizeof(mine.nonce)) < 0)
		return net_why(why, whylen, -EIO, "cannot draw a random nonce");
	proto_hdr_encode(out, &(struct proto_hdr){.len = PROTO_HELLO_SIZE, .type = PROTO_HELLO});
	proto_hello_encode(out + PROTO_HDR_SIZE, &mine);
	r = send_all(rm, &(struct iovec){out, sizeof(out)}, 1, why, whylen);
	if (r == 0)
		r = recv_reply(rm, 0, PROTO_HELLO, &h, why, whylen);
	if (r < 0)
		return r;
	if (h.len != PROTO_HELLO_SIZE) {
		net_why(why, whylen, -EPROTO, "the page server sent a HELLO of %" PRIu32 " bytes",
			h.len);
		return broken(rm, -EPROTO, why, whylen);
	}
	r = recv_part(rm, &(struct iovec){hs, sizeof(hs)}, 1, "HELLO", 0, sizeof(hs), why, whylen);
	if (r < 0)
		return r;
	r = proto_hello_decode(hs, sizeof(hs), why, whylen, &theirs);
	if (r == 0 && proto_version_pick(&mine, &theirs) < 0)
		r = net_why(why, whylen, -EPROTONOSUPPORT,
			    "the page server speaks protocol versions %u to %u, this client %u to %u",
			    theirs.min_version, theirs.max_version, PROTO_VERSION_MIN, PROTO_VERSION);
	if (r == 0 && (theirs.max_batch == 0 || theirs.min_version != theirs.max_version))
		r = net_why(why, whylen, -EPROTO,
			    "the page server's HELLO has no batch size or no single version");
	if (r < 0) {
		if (r != -EPROTONOSUPPORT) {
			char inner[256];

			snprintf(inner, sizeof(inner), "%s", why);
			net_why(why, whylen, -EPROTO, "the page server broke the protocol: %s",
				inner);
			r = -EPROTO;
		}
		return broken(rm, r, why, whylen);
	}
	rm->max_batch = theirs.max_batch;
	rm->version = theirs.max_version;
	if (key && !(theirs.caps & PROTO_CAP_AUTH)) {
		net_why(why, whylen, -EACCES,
			"the page server does not authenticate itself (it has no token), but a "
			"token "
			"file was given: refusing it");
		return broken(rm, -EACCES, why, whylen);
	}
	if (!key && (theirs.caps & PROTO_CAP_AUTH)) {
		net_why(why, whylen, -EACCES,
			"the page server requires a token: give a token file");
		return broken(rm, -EACCES, why, whylen);
	}
	if (key) {
		uint8_t am[PROTO_HDR_SIZE + PROTO_MAC_LEN], mac[PROTO_MAC_LEN], want[PROTO_MAC_LEN];

		if (net_auth_mac(key, false, out + PROTO_HDR_SIZE, hs, mac) < 0 ||
		    net_auth_mac(key, true, out + PROTO_HDR_SIZE, hs, want) < 0)
			return net_why(why, whylen, -EIO, "cannot compute HMAC-SHA256");
		proto_hdr_encode(am, &(struct proto_hdr){.len = PROTO_MAC_LEN, .type = PROTO_AUTH});
		memcpy(am + PROTO_HDR_SIZE, mac, PROTO_MAC_LEN);
		r = send_all(rm, &(struct iovec){am, sizeof(am)}, 1, why, whylen);
		if (r == 0)
			r = recv_reply(rm, 0, PROTO_AUTH, &h, why, whylen);
		if (r < 0) {
			if (!rm->broken)
				broken(rm, r, why, whylen);
			return r;
		}
		if (h.len != PROTO_MAC_LEN) {
			net_why(why, whylen, -EPROTO,
				"the page server sent an AUTH of %" PRIu32 " bytes", h.len);
			return broken(rm, -EPROTO, why, whylen);
		}
		r = recv_part(rm, &(struct iovec){mac, sizeof(mac)}, 1, "AUTH", 0, sizeof(mac), why,
			      whylen);
		if (r < 0)
			return r;
		if (!net_mac_equal(mac, want)) {
			net_why(why, whylen, -EACCES,
				"the page server failed to authenticate: it does not hold the same "
				"token");
			return broken(rm, -EACCES, why, whylen);
		}
	}
	return 0;
}

/* SELECT (version 2): what follows is about process @proc's checkpoint ("proc-PID"). */
static int select_proc(struct remote *rm, const char *proc, char *why, size_t whylen)
{
	uint8_t hb[PROTO_HDR_SIZE];
	size_t nl = strlen(proc);
	uint32_t id = new_id(rm);
	struct proto_hdr h;
	struct iovec iov[2];
	int r;

	if (!proto_proc_name_valid(proc, nl))
		return net_why(why, whylen, -EINVAL, "'%s' names no process of a tree (proc-PID)", proc);
	if (rm->version < PROTO_VERSION_SELECT)
		return net_why(why, whylen, -EPROTONOSUPPORT,
			       "the page server speaks protocol version %u, older than process trees (%u)",
			       rm->version, PROTO_VERSION_SELECT);
	proto_hdr_encode(hb, &(struct proto_hdr){ .len = (uint32_t)nl, .type = PROTO_SELECT, .id = id });
	iov[0] = (struct iovec){ hb, sizeof(hb) };
	iov[1] = (struct iovec){ (void *)proc, nl };
	r = send_all(rm, iov, 2, why, whylen);
	if (r == 0)
		r = recv_reply(rm, id, PROTO_SELECTED, &h, why, whylen);
	if (r == 0 && h.len) {
		net_why(why, whylen, -EPROTO, "the page server sent a SELECTED of %" PRIu32 " bytes", h.len);
		r = broken(rm, -EPROTO, why, whylen);
	}
	return r;
}

/*
 * Who vouches for the server at the other end of @rm: the owner of the
 * token file both hold, or the owner of a local server's socket. Nobody
 * for an unauthenticated peer outside this network namespace.
 */
static void conn_provenance(const struct remote *rm, const struct net_key *key,
			    struct ckpt_provenance *ret)
{
	uid_t uid;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (key) {
		ret->kind = key->owner ? CKPT_PROV_USER : CKPT_PROV_ROOT;
		ret->uid = key->owner;
		ret->gid = key->owner_gid;
		if (key->owner)
			snprintf(ret->why, sizeof(ret->why),
				 "the page server at %s holds the token of '%.150s', a file of uid %u",
				 rm->c.peer, key->path, (unsigned int)key->owner);
		else
			snprintf(ret->why, sizeof(ret->why),
				 "the page server at %s holds the token of '%.150s', a file of root",
				 rm->c.peer, key->path);
		return;
	}
	r = ckpt_nl_tcp_peer_uid(rm->c.fd, &uid);
	if (r < 0) {
		ret->kind = CKPT_PROV_NONE;
		snprintf(ret->why, sizeof(ret->why),
			 "nobody vouches for the page server at %s: it has no token, and its owner "
			 "cannot be found (%s)", rm->c.peer, strerror(-r));
		return;
	}
	ret->kind = uid ? CKPT_PROV_USER : CKPT_PROV_ROOT;
	ret->uid = uid;
	ret->gid = (gid_t)-1;
	snprintf(ret->why, sizeof(ret->why), "the page server at %s runs as uid %u", rm->c.peer,
		 (unsigned int)uid);
}

/* Handshake on a connected @rm and wrap it; @rm is consumed either way. */
static int remote_wrap(struct remote *rm_in, const struct net_key *key, const char *name, const char *proc,
		       struct ckpt_page_source **ret, char *why, size_t whylen)
{
	_cleanup_(remote_freep) struct remote *rm = rm_in;
	struct ckpt_provenance prov;
	int r;

	r = handshake(rm, key, why, whylen);
	if (r == 0 && proc)
		r = select_proc(rm, proc, why, whylen);
	if (r == 0) {
		conn_provenance(rm, key, &prov);
		r = pagesrc_new(&remote_ops, rm, name, true, ret);
	}
	if (r < 0)
		return r;
	(*ret)->prov = prov;
	/* The handshake counts in the bytes moved. */
	(*ret)->st.bytes_in = rm->c.bytes_in;
	(*ret)->st.bytes_out = rm->c.bytes_out;
	TAKE_PTR(rm);
	return 0;
}

/*
 * SIGINT and SIGTERM, those of them the calling thread blocks (its caller
 * handles them itself, as restore does until the process runs): a
 * signalfd that becomes readable when one is pending, left pending for the
 * caller. -1 when it blocks neither (a signal then acts as it is set to)
 * or the signalfd cannot be made (the wait is then as before).
 */
static int blocked_stop_signals_fd(void)
{
	sigset_t cur, want;

	if (pthread_sigmask(SIG_SETMASK, NULL, &cur) != 0)
		return -1;
	sigemptyset(&want);
	if (sigismember(&cur, SIGINT))
		sigaddset(&want, SIGINT);
	if (sigismember(&cur, SIGTERM))
		sigaddset(&want, SIGTERM);
	if (sigisemptyset(&want))
		return -1;
	return signalfd(-1, &want, SFD_CLOEXEC | SFD_NONBLOCK);
}

static const char *stop_signal_name(void)
{
	sigset_t p;

	if (sigpending(&p) == 0 && sigismember(&p, SIGINT))
		return "SIGINT";
	if (sigpending(&p) == 0 && sigismember(&p, SIGTERM))
		return "SIGTERM";
	return "a signal";
}

int pagesrc_remote_open_fd(int fd, const char *name, const struct net_key *key,
			   unsigned int timeout_ms, struct ckpt_page_source **ret, char *why,
			   size_t whylen)
{
	struct remote *rm = calloc(1, sizeof(*rm));

	if (!rm || !(rm->url = strdup(name))) {
		free(rm);
		close(fd);
		return net_why(why, whylen, -ENOMEM, "%s", strerror(ENOMEM));
	}
	rm->c.fd = fd;
	rm->c.cancel_fd = -1;
	snprintf(rm->c.peer, sizeof(rm->c.peer), "%s", name);
	rm->timeout_ms = timeout_ms ? timeout_ms : TIMEOUT_DEFAULT_MS;
	return remote_wrap(rm, key, name, NULL, ret, why, whylen);
}

int ckpt_page_source_open_remote(const char *url, const char *token_file,
				 const struct ckpt_page_source_opts *opts,
				 struct ckpt_page_source **ret)
{
	return ckpt_page_source_open_remote_proc(url, NULL, token_file, opts, ret);
}

int ckpt_page_source_open_remote_proc(const char *url, const char *proc, const char *token_file,
				      const struct ckpt_page_source_opts *opts, struct ckpt_page_source **ret)
{
	_cleanup_free_ char *name = NULL;
	_cleanup_(remote_freep) struct remote *rm = NULL;
	_cleanup_(net_key_freep) struct net_key *key = NULL;
	_cleanup_close_ int cancel_fd = -1;
	char why[WHY_LEN] = "";
	struct net_addr a;
	int r;

	r = net_url_parse(url, &a, why, sizeof(why));
	if (r < 0) {
		pr_err("cannot open page source: %s", why);
		return r;
	}
	if (!token_file && !net_addr_is_loopback(&a)) {
		pr_err("cannot open page source '%s': %s is not a loopback address; a token file is "
		       "required",
		       url, a.text);
		return -EPERM;
	}
	if (token_file) {
		r = net_key_load(token_file, &key, why, sizeof(why));
		if (r < 0) {
			pr_err("cannot open page source '%s': %s", url, why);
			return r;
		}
	}
	rm = calloc(1, sizeof(*rm));
	if (!rm || !(rm->url = strdup(url))) {
		pr_err("cannot open page source '%s': %s", url, strerror(ENOMEM));
		return -ENOMEM;
	}
	rm->c.fd = -1;
	rm->c.cancel_fd = -1;
	rm->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : TIMEOUT_DEFAULT_MS;
	/* Named as a path under the URL: "tcp://ADDR:PORT/proc-PID". */
	if (proc ? asprintf(&name, "%s/%s", url, proc) < 0 : !(name = strdup(url))) {
		name = NULL;
		pr_err("cannot open page source '%s': %s", url, strerror(ENOMEM));
		return -ENOMEM;
	}
	/* Only the opening is interruptible: a source in use keeps serving. */
	cancel_fd = rm->c.cancel_fd = blocked_stop_signals_fd();
	r = connect_to(rm, &a, why, sizeof(why));
	if (r == 0)
		r = remote_wrap(TAKE_PTR(rm), key, name, proc, ret, why, sizeof(why));
	if (r == -EINTR && cancel_fd >= 0) {
		pr_err("cannot open page source '%s': interrupted by %s while waiting for the page "
		       "server",
		       name, stop_signal_name());
		return r;
	}
	if (r < 0) {
		pr_err("cannot open page source '%s': %s", name, why[0] ? why : strerror(-r));
		return r;
	}
	((struct remote *)(*ret)->priv)->c.cancel_fd = -1;
	pr_debug("connected to %s%s", a.text, key ? ", authenticated" : "");
	return 0;
}
