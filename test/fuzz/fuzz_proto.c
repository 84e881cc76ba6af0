/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the page-server protocol decoders, fed a byte stream cut into
 * messages as a server and a client would read it. Whatever a decoder
 * accepts must encode back to the very bytes it came from.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		__builtin_trap();
}

static void payload(uint16_t type, const uint8_t *p, size_t len)
{
	char why[256], name[PROTO_DOC_NAME_MAX + 1];
	uint8_t re[PROTO_ERROR_HEAD + PROTO_ERROR_MSG_MAX];

	switch (type) {
	case PROTO_HELLO: {
		struct proto_hello h;

		if (proto_hello_decode(p, len, why, sizeof(why), &h) == 0) {
			proto_hello_encode(re, &h);
			check(memcmp(re, p, PROTO_HELLO_SIZE) == 0);
			check(h.min_version >= 1 && h.min_version <= h.max_version);
			(void)proto_version_pick(&h, &h);
		}
		break;
	}
	case PROTO_READ: {
		struct proto_read r;

		if (proto_read_decode(p, len, PROTO_BATCH_MAX, why, sizeof(why), &r) == 0) {
			proto_read_encode(re, &r);
			check(memcmp(re, p, PROTO_READ_SIZE) == 0);
			check(r.nr_pages >= 1 && r.nr_pages <= PROTO_BATCH_MAX);
			check(r.addr + (uint64_t)r.nr_pages * PROTO_PAGE_SIZE <= PROTO_ADDR_LIMIT);
		}
		break;
	}
	case PROTO_LIST: {
		struct proto_list l;

		if (proto_list_decode(p, len, why, sizeof(why), &l) == 0) {
			proto_list_encode(re, &l);
			check(memcmp(re, p, PROTO_LIST_SIZE) == 0);
		}
		break;
	}
	case PROTO_GET_DOC:
		if (proto_get_doc_decode(p, len, why, sizeof(why), name) == 0)
			check(strlen(name) == len && memcmp(name, p, len) == 0 && name[0] != '.');
		break;
	case PROTO_SELECT:
		/* Only proc-PID: never a path out of the served directory. */
		if (proto_select_decode(p, len, why, sizeof(why), name) == 0)
			check(strlen(name) == len && !strncmp(name, "proc-", 5) && !strchr(name, '/') &&
			      !strchr(name, '.'));
		break;
	case PROTO_PAGES: {
		struct proto_read want;
		struct proto_pages pg;

		if (len < PROTO_PAGES_HEAD)
			break;
		/* Ask for what it answers, so the checks past the first one run. */
		want.addr = get_le64(p);
		want.nr_pages = get_le32(p + 8);
		if (proto_pages_decode(p, len, &want, why, sizeof(why), &pg) == 0) {
			check(pg.nr_data <= pg.nr_pages);
			check(len == PROTO_PAGES_HEAD + proto_kinds_size(pg.nr_pages) +
					     (size_t)pg.nr_data * PROTO_PAGE_SIZE);
			(void)proto_kinds_check(p + PROTO_PAGES_HEAD, pg.nr_pages, pg.nr_data, why,
						sizeof(why));
		}
		break;
	}
	case PROTO_RANGES: {
		struct proto_ranges rs;
		uint64_t min = 0;

		if (proto_ranges_decode(p, len, PROTO_RANGES_MAX, why, sizeof(why), &rs) != 0)
			break;
		check(len == PROTO_RANGES_HEAD + (size_t)rs.nr * PROTO_RANGE_SIZE);
		for (uint32_t i = 0; i < rs.nr; i++) {
			const uint8_t *e = p + PROTO_RANGES_HEAD + (size_t)i * PROTO_RANGE_SIZE;
			struct proto_range r;

			if (proto_range_decode(e, min, why, sizeof(why), &r) != 0)
				break;
			proto_range_encode(re, &r);
			check(memcmp(re, e, PROTO_RANGE_SIZE) == 0);
			check(r.addr >= min && r.nr_pages >= 1);
			min = r.addr + r.nr_pages * PROTO_PAGE_SIZE;
			check(min <= PROTO_ADDR_LIMIT);
		}
		break;
	}
	case PROTO_ERROR: {
		struct proto_error e;

		if (proto_error_decode(p, len, why, sizeof(why), &e) == 0) {
			char msg[PROTO_ERROR_MSG_MAX + 1];
			size_t n;

			memcpy(msg, e.msg, e.msg_len);
			msg[e.msg_len] = '\0';
			if (strlen(msg) == e.msg_len) {
				n = proto_error_encode(re, sizeof(re), e.code, msg);
				check(n == len && memcmp(re, p, len) == 0);
			}
		}
		break;
	}
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256];

	while (size >= PROTO_HDR_SIZE) {
		struct proto_hdr h;
		uint8_t re[PROTO_HDR_SIZE];
		size_t len;

		if (proto_hdr_decode(data, PROTO_REPLY_MAX, why, sizeof(why), &h) != 0)
			break;
		proto_hdr_encode(re, &h);
		check(memcmp(re, data, PROTO_HDR_SIZE) == 0);
		data += PROTO_HDR_SIZE;
		size -= PROTO_HDR_SIZE;
		/* A truncated payload is what the reader sees when the peer stops early. */
		len = h.len < size ? h.len : size;
		payload(h.type, data, len);
		data += len;
		size -= len;
	}
	return 0;
}
