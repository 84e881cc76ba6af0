/* SPDX-License-Identifier: MIT */
/*
 * Seeds for fuzz_proto and fuzz_client: mkseeds_proto OUTDIR writes
 * OUTDIR/proto/ with a client's and a server's side of a conversation, one
 * file each, and one file per message; OUTDIR/client/ with what a server
 * answers to the requests fuzz_client makes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "net/proto.h"

static uint8_t stream[1 << 16];
static size_t slen;

static void emit(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "mkseeds_proto: cannot write '%s'\n", path);
		exit(1);
	}
}

static void msg(const char *dir, const char *name, uint16_t type, uint16_t flags, uint32_t id,
		const uint8_t *payload, size_t n)
{
	uint8_t *m = stream + slen;

	proto_hdr_encode(
		m, &(struct proto_hdr){.len = (uint32_t)n, .type = type, .flags = flags, .id = id});
	memcpy(m + PROTO_HDR_SIZE, payload, n);
	emit(dir, name, m, PROTO_HDR_SIZE + n);
	slen += PROTO_HDR_SIZE + n;
}

int main(int argc, char **argv)
{
	char dir[4096];
	uint8_t b[8192] = {0};
	struct proto_hello h = {.min_version = 1,
				.max_version = 1,
				.caps = PROTO_CAP_AUTH,
				.max_payload = PROTO_REPLY_MAX,
				.max_batch = 0};
	size_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds_proto OUTDIR\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/proto", argv[1]);
	mkdir(argv[1], 0755);
	mkdir(dir, 0755);

	/* The client's side. */
	for (int i = 0; i < PROTO_NONCE_LEN; i++)
		h.nonce[i] = (uint8_t)(i * 13);
	proto_hello_encode(b, &h);
	msg(dir, "c-hello", PROTO_HELLO, 0, 0, b, PROTO_HELLO_SIZE);
	memset(b, 0x5a, PROTO_MAC_LEN);
	msg(dir, "c-auth", PROTO_AUTH, 0, 0, b, PROTO_MAC_LEN);
	msg(dir, "c-getdoc", PROTO_GET_DOC, 0, 1, (const uint8_t *)"mm.json", 7);
	proto_read_encode(b, &(struct proto_read){.addr = 0x7f0000000000ULL, .nr_pages = 64});
	msg(dir, "c-read", PROTO_READ, 0, 2, b, PROTO_READ_SIZE);
	proto_list_encode(b, &(struct proto_list){.from = 0, .max_ranges = PROTO_RANGES_MAX});
	msg(dir, "c-list", PROTO_LIST, 0, 3, b, PROTO_LIST_SIZE);
	msg(dir, "c-ping", PROTO_PING, 0, 4, b, 0);
	msg(dir, "c-select", PROTO_SELECT, 0, 5, (const uint8_t *)"proc-4242", 9);
	emit(dir, "client-stream", stream, slen);
	slen = 0;

	/* The server's side. */
	h.max_payload = PROTO_REQUEST_MAX;
	h.max_batch = PROTO_BATCH_MAX;
	proto_hello_encode(b, &h);
	msg(dir, "s-hello", PROTO_HELLO, 0, 0, b, PROTO_HELLO_SIZE);
	memset(b, 0xa5, PROTO_MAC_LEN);
	msg(dir, "s-auth", PROTO_AUTH, 0, 0, b, PROTO_MAC_LEN);
	msg(dir, "s-doc", PROTO_DOC, 0, 1, (const uint8_t *)"{\"vmas\": []}", 12);
	proto_pages_encode(
		b, &(struct proto_pages){.addr = 0x7f0000000000ULL, .nr_pages = 3, .nr_data = 1});
	b[PROTO_PAGES_HEAD] = PROTO_KIND_DATA;
	b[PROTO_PAGES_HEAD + 1] = PROTO_KIND_ZERO;
	b[PROTO_PAGES_HEAD + 2] = PROTO_KIND_NONE;
	memset(b + PROTO_PAGES_HEAD + 3, 0, 5);
	memset(b + PROTO_PAGES_HEAD + 8, 'p', PROTO_PAGE_SIZE);
	msg(dir, "s-pages", PROTO_PAGES, 0, 2, b, PROTO_PAGES_HEAD + 8 + PROTO_PAGE_SIZE);
	proto_ranges_encode(b, &(struct proto_ranges){.nr = 2,
						      .flags = PROTO_RANGES_MORE,
						      .next = 0x7f0000100000ULL});
	proto_range_encode(b + PROTO_RANGES_HEAD, &(struct proto_range){.addr = 0x7f0000000000ULL,
									.nr_pages = 3,
									.kind = PROTO_KIND_DATA});
	proto_range_encode(b + PROTO_RANGES_HEAD + PROTO_RANGE_SIZE,
			   &(struct proto_range){.addr = 0x7f0000003000ULL,
						 .nr_pages = 9,
						 .kind = PROTO_KIND_ZERO});
	msg(dir, "s-ranges", PROTO_RANGES, 0, 3, b, PROTO_RANGES_HEAD + 2 * PROTO_RANGE_SIZE);
	msg(dir, "s-pong", PROTO_PONG, 0, 4, b, 0);
	n = proto_error_encode(b, sizeof(b), 14,
			       "cannot read 0x1000+1 pages: outside the address space");
	msg(dir, "s-error", PROTO_ERROR, 0, 5, b, n);
	n = proto_error_encode(b, sizeof(b), 16, "too many clients");
	msg(dir, "s-error-fatal", PROTO_ERROR, PROTO_F_FATAL, 0, b, n);
	emit(dir, "server-stream", stream, slen);
	slen = 0;

	/* fuzz_client: HELLO (batch of 1024, no AUTH), DOC #1, PAGES #2, RANGES #3, PAGES #4-#5. */
	snprintf(dir, sizeof(dir), "%s/client", argv[1]);
	mkdir(dir, 0755);
	h.caps = 0;
	proto_hello_encode(b, &h);
	msg(dir, "1-hello", PROTO_HELLO, 0, 0, b, PROTO_HELLO_SIZE);
	msg(dir, "2-doc", PROTO_DOC, 0, 1, (const uint8_t *)"{\"vmas\": []}", 12);
	proto_pages_encode(b, &(struct proto_pages){ .addr = 0x7f0000000000ULL, .nr_pages = 3, .nr_data = 1 });
	b[PROTO_PAGES_HEAD] = PROTO_KIND_ZERO;
	b[PROTO_PAGES_HEAD + 1] = PROTO_KIND_DATA;
	b[PROTO_PAGES_HEAD + 2] = PROTO_KIND_NONE;
	memset(b + PROTO_PAGES_HEAD + 3, 0, 5);
	memset(b + PROTO_PAGES_HEAD + 8, 'q', PROTO_PAGE_SIZE);
	msg(dir, "3-pages", PROTO_PAGES, 0, 2, b, PROTO_PAGES_HEAD + 8 + PROTO_PAGE_SIZE);
	proto_ranges_encode(b, &(struct proto_ranges){ .nr = 1 });
	proto_range_encode(b + PROTO_RANGES_HEAD,
			   &(struct proto_range){ .addr = 0x7f0000000000ULL, .nr_pages = 3, .kind = PROTO_KIND_DATA });
	msg(dir, "4-ranges", PROTO_RANGES, 0, 3, b, PROTO_RANGES_HEAD + PROTO_RANGE_SIZE);
	for (uint32_t id = 4; id <= 5; id++) {
		uint64_t addr = 0x7f0000000000ULL + (id - 4) * 1024 * PROTO_PAGE_SIZE;

		proto_pages_encode(b, &(struct proto_pages){ .addr = addr, .nr_pages = 1024, .nr_data = 1 });
		memset(b + PROTO_PAGES_HEAD, PROTO_KIND_ZERO, 1024);
		b[PROTO_PAGES_HEAD + 5] = PROTO_KIND_DATA;
		memset(b + PROTO_PAGES_HEAD + 1024, 'r', PROTO_PAGE_SIZE);
		msg(dir, id == 4 ? "5-pages" : "6-pages", PROTO_PAGES, 0, id, b,
		    PROTO_PAGES_HEAD + 1024 + PROTO_PAGE_SIZE);
	}
	emit(dir, "stream", stream, slen);
	return 0;
}
