/* SPDX-License-Identifier: MIT */
/*
 * The page-server protocol, versions 1 and 2 (2 adds SELECT: the
 * checkpoint of one process of a tree): pure encoders and decoders of its
 * messages (ckpt-page-server(1) documents the layouts). No I/O, no logging:
 * decoders return -errno and describe the fault in @why; they are fuzzed
 * (test/fuzz/fuzz_proto.c).
 *
 * Every message is a 16-byte header and a payload of the length it gives:
 *   u32 payload length, u16 type, u16 flags, u32 request id, u32 reserved 0
 * All integers are little-endian.
 */
#ifndef CKPT_NET_PROTO_H
#define CKPT_NET_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ckpt/util.h>

#define PROTO_MAGIC	    "CKPTPGS\0"
#define PROTO_MAGIC_LEN	    8
#define PROTO_VERSION_MIN   1
#define PROTO_VERSION	    2 /* the newest */
#define PROTO_VERSION_SELECT 2 /* the first with SELECT */
#define PROTO_HDR_SIZE	    16
#define PROTO_PAGE_SIZE	    4096u
#define PROTO_NONCE_LEN	    32
#define PROTO_MAC_LEN	    32 /* HMAC-SHA256 */
#define PROTO_HELLO_SIZE    64
#define PROTO_READ_SIZE	    16
#define PROTO_LIST_SIZE	    16
#define PROTO_PAGES_HEAD    16
#define PROTO_RANGES_HEAD   16
#define PROTO_RANGE_SIZE    24
#define PROTO_ERROR_HEAD    8
#define PROTO_ERROR_MSG_MAX 1024
#define PROTO_DOC_NAME_MAX  255
#define PROTO_PROC_NAME_MAX 16 /* "proc-" and a pid of up to 10 digits */

/* Limits: what a server accepts from a client, what it sends at most. */
#define PROTO_REQUEST_MAX   4096u /* payload bytes of any client message */
#define PROTO_BATCH_MAX	    1024u /* pages of one READ (4 MiB) */
#define PROTO_BATCH_DEFAULT 1024u
#define PROTO_RANGES_MAX    32768u	/* ranges of one RANGES reply */
#define PROTO_DOC_MAX	    (16u << 20) /* bytes of one DOC reply */
/* The largest reply payload: a full READ, or a document. */
#define PROTO_REPLY_MAX (PROTO_DOC_MAX + PROTO_PAGES_HEAD + PROTO_BATCH_MAX)

/* Address limit of user space (5-level paging), as in ckpt-images(5). */
#define PROTO_ADDR_LIMIT (1ULL << 57)

enum proto_type {
	PROTO_HELLO = 1,   /* both ways, first */
	PROTO_AUTH = 2,	   /* both ways, when the server requires a token */
	PROTO_ERROR = 3,   /* server to client */
	PROTO_GET_DOC = 4, /* client: a metadata document by name */
	PROTO_DOC = 5,	   /* server: its bytes */
	PROTO_READ = 6,	   /* client: pages */
	PROTO_PAGES = 7,   /* server: their kinds and data */
	PROTO_LIST = 8,	   /* client: resolved ranges */
	PROTO_RANGES = 9,  /* server: some of them */
	PROTO_PING = 10,   /* client */
	PROTO_PONG = 11,   /* server */
	PROTO_SELECT = 12, /* client, version 2: the checkpoint of one process of the tree, "proc-PID" */
	PROTO_SELECTED = 13, /* server: the requests that follow are about it */
	PROTO_TYPE_MAX = PROTO_SELECTED,
};

/* Header flags. */
#define PROTO_F_FATAL 0x1u /* ERROR: the server closes the connection after it */
#define PROTO_F_ALL   PROTO_F_FATAL

/* HELLO capabilities. */
#define PROTO_CAP_AUTH 0x1u /* the sender holds a token and requires authentication */
#define PROTO_CAP_ALL  PROTO_CAP_AUTH

/* RANGES flags. */
#define PROTO_RANGES_MORE 0x1u

/* Page kinds on the wire: the values of enum ckpt_page_kind. */
#define PROTO_KIND_NONE 0
#define PROTO_KIND_DATA 1
#define PROTO_KIND_ZERO 2

struct proto_hdr {
	uint32_t len;
	uint16_t type;
	uint16_t flags;
	uint32_t id;
};

struct proto_hello {
	uint16_t min_version, max_version;
	uint32_t caps;
	uint32_t max_payload; /* the largest payload the sender accepts */
	uint32_t max_batch;   /* server: pages per READ; client: 0 */
	uint8_t nonce[PROTO_NONCE_LEN];
};

struct proto_read {
	uint64_t addr;
	uint32_t nr_pages;
};

struct proto_pages {
	uint64_t addr;
	uint32_t nr_pages;
	uint32_t nr_data;
};

struct proto_list {
	uint64_t from;
	uint32_t max_ranges;
};

struct proto_ranges {
	uint32_t nr;
	uint32_t flags;
	uint64_t next; /* with PROTO_RANGES_MORE: where the next LIST starts */
};

struct proto_range {
	uint64_t addr;
	uint64_t nr_pages;
	uint32_t kind; /* PROTO_KIND_DATA or PROTO_KIND_ZERO */
};

struct proto_error {
	uint32_t code; /* a Linux errno value, positive */
	uint16_t msg_len;
	const char *msg; /* not NUL-terminated; points into the decoded buffer */
};

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* Bytes of the kinds array of a PAGES reply: @nr rounded up to 8. */
static inline size_t proto_kinds_size(uint32_t nr)
{
	return ((size_t)nr + 7) & ~(size_t)7;
}

const char *proto_type_name(uint16_t type);

/* ---- header ---- */
void proto_hdr_encode(uint8_t out[PROTO_HDR_SIZE], const struct proto_hdr *h);
/*
 * Decode a header. -EPROTO for an unknown type, unknown flags or a non-zero
 * reserved field; -EMSGSIZE for a length above @max_len.
 */
int proto_hdr_decode(const uint8_t in[PROTO_HDR_SIZE], uint32_t max_len, char *why, size_t whylen,
		     struct proto_hdr *ret) __must_check;

/* ---- payloads: encode into @out (its size fixed by the type), decode with checks ---- */
void proto_hello_encode(uint8_t out[PROTO_HELLO_SIZE], const struct proto_hello *h);
/* -EPROTO for a wrong size, magic, reserved bytes, versions or capabilities. */
int proto_hello_decode(const uint8_t *in, size_t len, char *why, size_t whylen,
		       struct proto_hello *ret) __must_check;
/* The highest version both ranges hold, or -EPROTONOSUPPORT. */
int proto_version_pick(const struct proto_hello *a, const struct proto_hello *b) __must_check;

void proto_read_encode(uint8_t out[PROTO_READ_SIZE], const struct proto_read *r);
/*
 * -EPROTO for a wrong size or reserved bytes; -EINVAL for an unaligned
 * address, 0 pages or more than @max_batch; -EFAULT for a range beyond the
 * address limit (request errors: answered, the connection goes on).
 */
int proto_read_decode(const uint8_t *in, size_t len, uint32_t max_batch, char *why, size_t whylen,
		      struct proto_read *ret) __must_check;

void proto_list_encode(uint8_t out[PROTO_LIST_SIZE], const struct proto_list *l);
int proto_list_decode(const uint8_t *in, size_t len, char *why, size_t whylen,
		      struct proto_list *ret) __must_check;

/* A document name: 1 to 255 bytes of [A-Za-z0-9._-], not starting with '.'. */
bool proto_doc_name_valid(const char *name, size_t len);
/* -EPROTO for an empty or oversized payload, -EINVAL for a bad name; @ret gets it NUL-terminated.
 */
int proto_get_doc_decode(const uint8_t *in, size_t len, char *why, size_t whylen,
			 char ret[PROTO_DOC_NAME_MAX + 1]) __must_check;

/*
 * SELECT payload: the name of a process's checkpoint directory, "proc-PID"
 * (PID decimal, 1 to 10 digits, no leading zero): nothing else, so that no
 * request can reach outside the served directory. -EPROTO for a length out
 * of bounds, -EINVAL for any other name.
 */
bool proto_proc_name_valid(const char *name, size_t len);
int proto_select_decode(const uint8_t *in, size_t len, char *why, size_t whylen,
			char ret[PROTO_PROC_NAME_MAX + 1]) __must_check;

void proto_pages_encode(uint8_t out[PROTO_PAGES_HEAD], const struct proto_pages *p);
/*
 * The fixed head of a PAGES payload of @len bytes, checked against the
 * request (@want) and the length it implies. The kinds follow: check them
 * with proto_kinds_check().
 */
int proto_pages_decode(const uint8_t *in, size_t len, const struct proto_read *want, char *why,
		       size_t whylen, struct proto_pages *ret) __must_check;
/* Every kind NONE, DATA or ZERO, padding zero, and @nr_data DATA kinds. */
int proto_kinds_check(const uint8_t *kinds, uint32_t nr, uint32_t nr_data, char *why,
		      size_t whylen) __must_check;

void proto_ranges_encode(uint8_t out[PROTO_RANGES_HEAD], const struct proto_ranges *r);
void proto_range_encode(uint8_t out[PROTO_RANGE_SIZE], const struct proto_range *r);
/* Head of a RANGES payload of @len bytes: the count must match, at most @max. */
int proto_ranges_decode(const uint8_t *in, size_t len, uint32_t max, char *why, size_t whylen,
			struct proto_ranges *ret) __must_check;
/*
 * Range @i of a checked RANGES payload: aligned, non-empty, DATA or ZERO,
 * below the address limit, at or after @min_addr (ranges ascend and do not
 * overlap).
 */
int proto_range_decode(const uint8_t *in, uint64_t min_addr, char *why, size_t whylen,
		       struct proto_range *ret) __must_check;

/* An ERROR payload: 8-byte head, then the message (cut to PROTO_ERROR_MSG_MAX). Returns its size.
 */
size_t proto_error_encode(uint8_t *out, size_t outlen, uint32_t code, const char *msg);
int proto_error_decode(const uint8_t *in, size_t len, char *why, size_t whylen,
		       struct proto_error *ret) __must_check;

#endif
