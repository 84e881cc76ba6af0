/* SPDX-License-Identifier: MIT */
/* The page-server protocol: encoders and strict decoders (see proto.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "net/proto.h"

static int why_set(char *why, size_t whylen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int why_set(char *why, size_t whylen, int r, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return r;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

const char *proto_type_name(uint16_t type)
{
	static const char *const names[] = {
		[PROTO_HELLO] = "HELLO",     [PROTO_AUTH] = "AUTH", [PROTO_ERROR] = "ERROR",
		[PROTO_GET_DOC] = "GET_DOC", [PROTO_DOC] = "DOC",   [PROTO_READ] = "READ",
		[PROTO_PAGES] = "PAGES",     [PROTO_LIST] = "LIST", [PROTO_RANGES] = "RANGES",
		[PROTO_PING] = "PING",	     [PROTO_PONG] = "PONG",
		[PROTO_SELECT] = "SELECT",   [PROTO_SELECTED] = "SELECTED",
	};

	return type < ARRAY_SIZE(names) && names[type] ? names[type] : "unknown";
}

/* ---- header ---- */

void proto_hdr_encode(uint8_t out[PROTO_HDR_SIZE], const struct proto_hdr *h)
{
	put_le32(out, h->len);
	put_le16(out + 4, h->type);
	put_le16(out + 6, h->flags);
	put_le32(out + 8, h->id);
	put_le32(out + 12, 0);
}

int proto_hdr_decode(const uint8_t in[PROTO_HDR_SIZE], uint32_t max_len, char *why, size_t whylen,
		     struct proto_hdr *ret)
{
	struct proto_hdr h = {
		.len = get_le32(in),
		.type = get_le16(in + 4),
		.flags = get_le16(in + 6),
		.id = get_le32(in + 8),
	};

	if (h.type == 0 || h.type > PROTO_TYPE_MAX)
		return why_set(why, whylen, -EPROTO, "unknown message type %u", h.type);
	if (h.flags & ~PROTO_F_ALL)
		return why_set(why, whylen, -EPROTO, "unknown flags %#x in a %s message", h.flags,
			       proto_type_name(h.type));
	if (get_le32(in + 12))
		return why_set(why, whylen, -EPROTO,
			       "non-zero reserved field in a %s message header",
			       proto_type_name(h.type));
	if (h.len > max_len)
		return why_set(why, whylen, -EMSGSIZE,
			       "%s message of %" PRIu32 " bytes exceeds the limit of %" PRIu32,
			       proto_type_name(h.type), h.len, max_len);
	*ret = h;
	return 0;
}

/* ---- HELLO ---- */

/*
 * HELLO payload, 64 bytes:
 *   0 magic[8]  8 u16 min_version  10 u16 max_version  12 u32 caps
 *   16 u32 max_payload  20 u32 max_batch  24 reserved[8]  32 nonce[32]
 */
void proto_hello_encode(uint8_t out[PROTO_HELLO_SIZE], const struct proto_hello *h)
{
	memset(out, 0, PROTO_HELLO_SIZE);
	memcpy(out, PROTO_MAGIC, PROTO_MAGIC_LEN);
	put_le16(out + 8, h->min_version);
	put_le16(out + 10, h->max_version);
	put_le32(out + 12, h->caps);
	put_le32(out + 16, h->max_payload);
	put_le32(out + 20, h->max_batch);
	memcpy(out + 32, h->nonce, PROTO_NONCE_LEN);
}

int proto_hello_decode(const uint8_t *in, size_t len, char *why, size_t whylen,
		       struct proto_hello *ret)
{
	struct proto_hello h;

	if (len != PROTO_HELLO_SIZE)
		return why_set(why, whylen, -EPROTO, "HELLO of %zu bytes, expected %d", len,
			       PROTO_HELLO_SIZE);
	if (memcmp(in, PROTO_MAGIC, PROTO_MAGIC_LEN))
		return why_set(why, whylen, -EPROTO,
			       "HELLO without the magic: not a ckpt page-server peer");
	h.min_version = get_le16(in + 8);
	h.max_version = get_le16(in + 10);
	h.caps = get_le32(in + 12);
	h.max_payload = get_le32(in + 16);
	h.max_batch = get_le32(in + 20);
	memcpy(h.nonce, in + 32, PROTO_NONCE_LEN);
	if (!all_zero(in + 24, 8))
		return why_set(why, whylen, -EPROTO, "non-zero reserved bytes in HELLO");
	if (h.min_version == 0 || h.min_version > h.max_version)
		return why_set(why, whylen, -EPROTO, "HELLO with an empty version range %u..%u",
			       h.min_version, h.max_version);
	if (h.caps & ~PROTO_CAP_ALL)
		return why_set(why, whylen, -EPROTO, "HELLO with unknown capabilities %#x", h.caps);
	if (h.max_payload < PROTO_REQUEST_MAX)
		return why_set(why, whylen, -EPROTO,
			       "HELLO with a payload limit of %" PRIu32 " bytes, below %u",
			       h.max_payload, PROTO_REQUEST_MAX);
	if (h.max_batch > PROTO_BATCH_MAX)
		return why_set(why, whylen, -EPROTO,
			       "HELLO with a batch of %" PRIu32 " pages, above %u", h.max_batch,
			       PROTO_BATCH_MAX);
	*ret = h;
	return 0;
}

int proto_version_pick(const struct proto_hello *a, const struct proto_hello *b)
{
	uint16_t lo = a->min_version > b->min_version ? a->min_version : b->min_version;
	uint16_t hi = a->max_version < b->max_version ? a->max_version : b->max_version;

	return lo <= hi ? hi : -EPROTONOSUPPORT;
}

/* ---- READ ---- */

/* READ payload, 16 bytes: u64 addr, u32 pages, u32 reserved. */
void proto_read_encode(uint8_t out[PROTO_READ_SIZE], const struct proto_read *r)
{
	put_le64(out, r->addr);
	put_le32(out + 8, r->nr_pages);
	put_le32(out + 12, 0);
}

int proto_read_decode(const uint8_t *in, size_t len, uint32_t max_batch, char *why, size_t whylen,
		      struct proto_read *ret)
{
	struct proto_read r;

	if (len != PROTO_READ_SIZE)
		return why_set(why, whylen, -EPROTO, "READ of %zu bytes, expected %d", len,
			       PROTO_READ_SIZE);
	if (get_le32(in + 12))
		return why_set(why, whylen, -EPROTO, "non-zero reserved field in READ");
	r.addr = get_le64(in);
	r.nr_pages = get_le32(in + 8);
	if (r.addr & (PROTO_PAGE_SIZE - 1))
		return why_set(why, whylen, -EINVAL, "READ of 0x%" PRIx64 ": not page-aligned",
			       r.addr);
	if (r.nr_pages == 0 || r.nr_pages > max_batch)
		return why_set(why, whylen, -EINVAL,
			       "READ of %" PRIu32 " pages: 1 to %" PRIu32 " allowed", r.nr_pages,
			       max_batch);
	if (r.addr >= PROTO_ADDR_LIMIT ||
	    (uint64_t)r.nr_pages * PROTO_PAGE_SIZE > PROTO_ADDR_LIMIT - r.addr)
		return why_set(why, whylen, -EFAULT,
			       "READ of 0x%" PRIx64 "+%" PRIu32
			       " pages: beyond the user address space",
			       r.addr, r.nr_pages);
	*ret = r;
	return 0;
}

/* ---- LIST ---- */

/* LIST payload, 16 bytes: u64 from, u32 max ranges, u32 reserved. */
void proto_list_encode(uint8_t out[PROTO_LIST_SIZE], const struct proto_list *l)
{
	put_le64(out, l->from);
	put_le32(out + 8, l->max_ranges);
	put_le32(out + 12, 0);
}

int proto_list_decode(const uint8_t *in, size_t len, char *why, size_t whylen,
		      struct proto_list *ret)
{
	struct proto_list l;

	if (len != PROTO_LIST_SIZE)
		return why_set(why, whylen, -EPROTO, "LIST of %zu bytes, expected %d", len,
			       PROTO_LIST_SIZE);
	if (get_le32(in + 12))
		return why_set(why, whylen, -EPROTO, "non-zero reserved field in LIST");
	l.from = get_le64(in);
	l.max_ranges = get_le32(in + 8);
	if (l.from & (PROTO_PAGE_SIZE - 1))
		return why_set(why, whylen, -EINVAL, "LIST from 0x%" PRIx64 ": not page-aligned",
			       l.from);
	if (l.max_ranges == 0 || l.max_ranges > PROTO_RANGES_MAX)
		return why_set(why, whylen, -EINVAL, "LIST of %" PRIu32 " ranges: 1 to %u allowed",
			       l.max_ranges, PROTO_RANGES_MAX);
	*ret = l;
	return 0;
}

/* ---- GET_DOC ---- */

bool proto_doc_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > PROTO_DOC_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int proto_get_doc_decode(const uint8_t *in, size_t len, char *why, size_t whylen,
			 char ret[PROTO_DOC_NAME_MAX + 1])
{
	if (len == 0 || len > PROTO_DOC_NAME_MAX)
		return why_set(why, whylen, -EPROTO,
			       "GET_DOC with a name of %zu bytes: 1 to %d allowed", len,
			       PROTO_DOC_NAME_MAX);
	if (!proto_doc_name_valid((const char *)in, len))
		return why_set(
			why, whylen, -EINVAL,
			"GET_DOC of an invalid name: only [A-Za-z0-9._-], not starting with '.'");
	memcpy(ret, in, len);
	ret[len] = '\0';
	return 0;
}

/* ---- SELECT ---- */

bool proto_proc_name_valid(const char *name, size_t len)
{
	if (len < 6 || len > PROTO_PROC_NAME_MAX || memcmp(name, "proc-", 5) || name[5] == '0')
		return false;
	for (size_t i = 5; i < len; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return true;
}

int proto_select_decode(const uint8_t *in, size_t len, char *why, size_t whylen,
			char ret[PROTO_PROC_NAME_MAX + 1])
{
	if (len == 0 || len > PROTO_PROC_NAME_MAX)
		return why_set(why, whylen, -EPROTO, "SELECT with a name of %zu bytes: 1 to %d allowed", len,
			       PROTO_PROC_NAME_MAX);
	if (!proto_proc_name_valid((const char *)in, len))
		return why_set(why, whylen, -EINVAL, "SELECT of an invalid name: only proc-PID");
	memcpy(ret, in, len);
	ret[len] = '\0';
	return 0;
}

/* ---- PAGES ---- */

/* PAGES payload: u64 addr, u32 pages, u32 data pages, kinds (padded to 8), data. */
void proto_pages_encode(uint8_t out[PROTO_PAGES_HEAD], const struct proto_pages *p)
{
	put_le64(out, p->addr);
	put_le32(out + 8, p->nr_pages);
	put_le32(out + 12, p->nr_data);
}

int proto_pages_decode(const uint8_t *in, size_t len, const struct proto_read *want, char *why,
		       size_t whylen, struct proto_pages *ret)
{
	struct proto_pages p;
	uint64_t need;

	if (len < PROTO_PAGES_HEAD)
		return why_set(why, whylen, -EPROTO, "PAGES of %zu bytes, shorter than its head",
			       len);
	p.addr = get_le64(in);
	p.nr_pages = get_le32(in + 8);
	p.nr_data = get_le32(in + 12);
	if (p.addr != want->addr || p.nr_pages != want->nr_pages)
		return why_set(why, whylen, -EPROTO,
			       "PAGES for 0x%" PRIx64 "+%" PRIu32
			       " in answer to a READ of 0x%" PRIx64 "+%" PRIu32,
			       p.addr, p.nr_pages, want->addr, want->nr_pages);
	if (p.nr_data > p.nr_pages)
		return why_set(why, whylen, -EPROTO,
			       "PAGES with %" PRIu32 " data pages out of %" PRIu32, p.nr_data,
			       p.nr_pages);
	need = PROTO_PAGES_HEAD + proto_kinds_size(p.nr_pages) +
	       (uint64_t)p.nr_data * PROTO_PAGE_SIZE;
	if (need != len)
		return why_set(why, whylen, -EPROTO,
			       "PAGES of %zu bytes, expected %" PRIu64 " for %" PRIu32
			       " pages of which %" PRIu32 " data",
			       len, need, p.nr_pages, p.nr_data);
	*ret = p;
	return 0;
}

int proto_kinds_check(const uint8_t *kinds, uint32_t nr, uint32_t nr_data, char *why, size_t whylen)
{
	uint32_t data = 0;

	for (uint32_t i = 0; i < nr; i++) {
		if (kinds[i] > PROTO_KIND_ZERO)
			return why_set(why, whylen, -EPROTO,
				       "PAGES with an unknown kind %u at page %" PRIu32, kinds[i],
				       i);
		data += kinds[i] == PROTO_KIND_DATA;
	}
	if (!all_zero(kinds + nr, proto_kinds_size(nr) - nr))
		return why_set(why, whylen, -EPROTO, "PAGES with non-zero padding after the kinds");
	if (data != nr_data)
		return why_set(why, whylen, -EPROTO,
			       "PAGES announces %" PRIu32 " data pages, its kinds say %" PRIu32,
			       nr_data, data);
	return 0;
}

/* ---- RANGES ---- */

/* RANGES payload: u32 count, u32 flags, u64 next, then 24 bytes per range. */
void proto_ranges_encode(uint8_t out[PROTO_RANGES_HEAD], const struct proto_ranges *r)
{
	put_le32(out, r->nr);
	put_le32(out + 4, r->flags);
	put_le64(out + 8, r->next);
}

/* u64 addr, u64 pages, u32 kind, u32 reserved */
void proto_range_encode(uint8_t out[PROTO_RANGE_SIZE], const struct proto_range *r)
{
	put_le64(out, r->addr);
	put_le64(out + 8, r->nr_pages);
	put_le32(out + 16, r->kind);
	put_le32(out + 20, 0);
}

int proto_ranges_decode(const uint8_t *in, size_t len, uint32_t max, char *why, size_t whylen,
			struct proto_ranges *ret)
{
	struct proto_ranges r;

	if (len < PROTO_RANGES_HEAD)
		return why_set(why, whylen, -EPROTO, "RANGES of %zu bytes, shorter than its head",
			       len);
	r.nr = get_le32(in);
	r.flags = get_le32(in + 4);
	r.next = get_le64(in + 8);
	if (r.flags & ~PROTO_RANGES_MORE)
		return why_set(why, whylen, -EPROTO, "RANGES with unknown flags %#x", r.flags);
	if (r.nr > max)
		return why_set(why, whylen, -EPROTO,
			       "RANGES with %" PRIu32 " ranges, %" PRIu32 " asked", r.nr, max);
	if ((uint64_t)r.nr * PROTO_RANGE_SIZE + PROTO_RANGES_HEAD != len)
		return why_set(why, whylen, -EPROTO, "RANGES of %zu bytes for %" PRIu32 " ranges",
			       len, r.nr);
	if ((r.flags & PROTO_RANGES_MORE) &&
	    ((r.next & (PROTO_PAGE_SIZE - 1)) || r.next == 0 || r.next >= PROTO_ADDR_LIMIT))
		return why_set(why, whylen, -EPROTO,
			       "RANGES continuing at an invalid address 0x%" PRIx64, r.next);
	if (!(r.flags & PROTO_RANGES_MORE) && r.next)
		return why_set(why, whylen, -EPROTO, "RANGES without more but a next address");
	*ret = r;
	return 0;
}

int proto_range_decode(const uint8_t *in, uint64_t min_addr, char *why, size_t whylen,
		       struct proto_range *ret)
{
	struct proto_range r = {
		.addr = get_le64(in),
		.nr_pages = get_le64(in + 8),
		.kind = get_le32(in + 16),
	};

	if (get_le32(in + 20))
		return why_set(why, whylen, -EPROTO, "non-zero reserved field in a range");
	if (r.kind != PROTO_KIND_DATA && r.kind != PROTO_KIND_ZERO)
		return why_set(why, whylen, -EPROTO,
			       "range of kind %" PRIu32 ": DATA or ZERO expected", r.kind);
	if ((r.addr & (PROTO_PAGE_SIZE - 1)) || r.addr < min_addr || r.addr >= PROTO_ADDR_LIMIT ||
	    r.nr_pages == 0 || r.nr_pages > (PROTO_ADDR_LIMIT - r.addr) / PROTO_PAGE_SIZE)
		return why_set(why, whylen, -EPROTO,
			       "invalid range 0x%" PRIx64 "+%" PRIu64 " pages (after 0x%" PRIx64
			       ")",
			       r.addr, r.nr_pages, min_addr);
	*ret = r;
	return 0;
}

/* ---- ERROR ---- */

/* ERROR payload: u32 errno, u16 message length, u16 reserved, message. */
size_t proto_error_encode(uint8_t *out, size_t outlen, uint32_t code, const char *msg)
{
	size_t n = msg ? strlen(msg) : 0;

	if (n > PROTO_ERROR_MSG_MAX)
		n = PROTO_ERROR_MSG_MAX;
	if (outlen < PROTO_ERROR_HEAD)
		return 0;
	if (n > outlen - PROTO_ERROR_HEAD)
		n = outlen - PROTO_ERROR_HEAD;
	put_le32(out, code);
	put_le16(out + 4, (uint16_t)n);
	put_le16(out + 6, 0);
	if (n)
		memcpy(out + PROTO_ERROR_HEAD, msg, n);
	return PROTO_ERROR_HEAD + n;
}

int proto_error_decode(const uint8_t *in, size_t len, char *why, size_t whylen,
		       struct proto_error *ret)
{
	struct proto_error e;

	if (len < PROTO_ERROR_HEAD)
		return why_set(why, whylen, -EPROTO, "ERROR of %zu bytes, shorter than its head",
			       len);
	e.code = get_le32(in);
	e.msg_len = get_le16(in + 4);
	if (get_le16(in + 6))
		return why_set(why, whylen, -EPROTO, "non-zero reserved field in ERROR");
	if (e.code == 0 || e.code > 4095)
		return why_set(why, whylen, -EPROTO,
			       "ERROR with code %" PRIu32 ": 1 to 4095 expected", e.code);
	if (e.msg_len > PROTO_ERROR_MSG_MAX || (size_t)e.msg_len + PROTO_ERROR_HEAD != len)
		return why_set(why, whylen, -EPROTO, "ERROR of %zu bytes with a message of %u", len,
			       e.msg_len);
	for (size_t i = 0; i < e.msg_len; i++) {
		unsigned char c = in[PROTO_ERROR_HEAD + i];

		if (c < 0x20 && c != '\t')
			return why_set(why, whylen, -EPROTO,
				       "ERROR message with control characters");
	}
	e.msg = (const char *)in + PROTO_ERROR_HEAD;
	*ret = e;
	return 0;
}
