/* SPDX-License-Identifier: MIT */
/*
 * The page-server codec: every message survives a round trip, and every
 * class of malformed input gets its own -errno and a message, never a crash
 * or a half-filled result.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "net/proto.h"

static char why[512];

#define EXPECT_ERR(expr, err)                                                                      \
	do {                                                                                       \
		why[0] = '\0';                                                                     \
		int _r = (expr);                                                                   \
		cr_expect_eq(_r, (err), "%s: %d (%s), expected %d", #expr, _r, why, (err));        \
		cr_expect(_r >= 0 || why[0], "%s: no message", #expr);                             \
	} while (0)

/* ---- header ---- */

Test(proto, header_round_trip)
{
	uint8_t b[PROTO_HDR_SIZE];
	struct proto_hdr in = {.len = 0x01020304,
			       .type = PROTO_PAGES,
			       .flags = 0,
			       .id = 0xdeadbeef},
			 out;

	proto_hdr_encode(b, &in);
	cr_assert_eq(b[0], 0x04, "little-endian length");
	cr_assert_eq(b[3], 0x01);
	cr_assert_eq(proto_hdr_decode(b, 0x01020304, why, sizeof(why), &out), 0, "%s", why);
	cr_expect_eq(out.len, in.len);
	cr_expect_eq(out.type, in.type);
	cr_expect_eq(out.id, in.id);
	in.flags = PROTO_F_FATAL;
	in.type = PROTO_ERROR;
	proto_hdr_encode(b, &in);
	cr_assert_eq(proto_hdr_decode(b, UINT32_MAX, why, sizeof(why), &out), 0, "%s", why);
	cr_expect_eq(out.flags, PROTO_F_FATAL);
}

Test(proto, header_malformed)
{
	uint8_t b[PROTO_HDR_SIZE];
	struct proto_hdr out = {.len = 7};
	static const uint16_t bad_types[] = {0, PROTO_TYPE_MAX + 1, 0x100, 0xffff};

	for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
		proto_hdr_encode(b, &(struct proto_hdr){.len = 0, .type = bad_types[i]});
		EXPECT_ERR(proto_hdr_decode(b, 100, why, sizeof(why), &out), -EPROTO);
	}
	proto_hdr_encode(b, &(struct proto_hdr){.type = PROTO_READ, .flags = 0x2});
	EXPECT_ERR(proto_hdr_decode(b, 100, why, sizeof(why), &out), -EPROTO);
	proto_hdr_encode(b, &(struct proto_hdr){.type = PROTO_READ});
	b[13] = 1; /* reserved */
	EXPECT_ERR(proto_hdr_decode(b, 100, why, sizeof(why), &out), -EPROTO);
	/* Oversized: one byte over the limit, and the largest u32. */
	proto_hdr_encode(b, &(struct proto_hdr){.len = 4097, .type = PROTO_READ});
	EXPECT_ERR(proto_hdr_decode(b, 4096, why, sizeof(why), &out), -EMSGSIZE);
	cr_expect(strstr(why, "4097"), "the message names the length: %s", why);
	proto_hdr_encode(b, &(struct proto_hdr){.len = UINT32_MAX, .type = PROTO_DOC});
	EXPECT_ERR(proto_hdr_decode(b, PROTO_REPLY_MAX, why, sizeof(why), &out), -EMSGSIZE);
	proto_hdr_encode(b, &(struct proto_hdr){.len = 4096, .type = PROTO_READ});
	cr_expect_eq(proto_hdr_decode(b, 4096, why, sizeof(why), &out), 0,
		     "the limit itself is fine");
	cr_expect_eq(out.len, 4096);
}

/* ---- HELLO ---- */

static struct proto_hello hello_sample(void)
{
	struct proto_hello h = {.min_version = 1,
				.max_version = 3,
				.caps = PROTO_CAP_AUTH,
				.max_payload = PROTO_REPLY_MAX,
				.max_batch = 256};

	for (int i = 0; i < PROTO_NONCE_LEN; i++)
		h.nonce[i] = (uint8_t)(i * 7 + 1);
	return h;
}

Test(proto, hello_round_trip)
{
	uint8_t b[PROTO_HELLO_SIZE];
	struct proto_hello in = hello_sample(), out;

	proto_hello_encode(b, &in);
	cr_assert_eq(memcmp(b, "CKPTPGS", 8), 0);
	cr_assert_eq(proto_hello_decode(b, sizeof(b), why, sizeof(why), &out), 0, "%s", why);
	cr_expect_eq(out.min_version, 1);
	cr_expect_eq(out.max_version, 3);
	cr_expect_eq(out.caps, PROTO_CAP_AUTH);
	cr_expect_eq(out.max_payload, PROTO_REPLY_MAX);
	cr_expect_eq(out.max_batch, 256);
	cr_expect_eq(memcmp(out.nonce, in.nonce, PROTO_NONCE_LEN), 0);
}

Test(proto, hello_malformed)
{
	uint8_t b[PROTO_HELLO_SIZE + 1];
	struct proto_hello h = hello_sample(), out;

	proto_hello_encode(b, &h);
	EXPECT_ERR(proto_hello_decode(b, PROTO_HELLO_SIZE - 1, why, sizeof(why), &out), -EPROTO);
	EXPECT_ERR(proto_hello_decode(b, PROTO_HELLO_SIZE + 1, why, sizeof(why), &out), -EPROTO);
	EXPECT_ERR(proto_hello_decode(b, 0, why, sizeof(why), &out), -EPROTO);
	b[0] = 'X';
	EXPECT_ERR(proto_hello_decode(b, PROTO_HELLO_SIZE, why, sizeof(why), &out), -EPROTO);
	cr_expect(strstr(why, "magic"), "%s", why);
	proto_hello_encode(b, &h);
	b[30] = 1; /* reserved */
	EXPECT_ERR(proto_hello_decode(b, PROTO_HELLO_SIZE, why, sizeof(why), &out), -EPROTO);
	h = hello_sample();
	h.min_version = 0;
	proto_hello_encode(b, &h);
	EXPECT_ERR(proto_hello_decode(b, PROTO_HELLO_SIZE, why, sizeof(why), &out), -EPROTO);
	h = hello_sample();
	h.min_version = 4;
	proto_hello_encode(b, &h);
	EXPECT_ERR(proto_hello_decode(b, PROTO_HELLO_SIZE, why, sizeof(why), &out), -EPROTO);
	h = hello_sample();
	h.caps = 0x80;
	proto_hello_encode(b, &h);
	EXPECT_ERR(proto_hello_decode(b, PROTO_HELLO_SIZE, why, sizeof(why), &out), -EPROTO);
	h = hello_sample();
	h.max_payload = PROTO_REQUEST_MAX - 1;
	proto_hello_encode(b, &h);
	EXPECT_ERR(proto_hello_decode(b, PROTO_HELLO_SIZE, why, sizeof(why), &out), -EPROTO);
	h = hello_sample();
	h.max_batch = PROTO_BATCH_MAX + 1;
	proto_hello_encode(b, &h);
	EXPECT_ERR(proto_hello_decode(b, PROTO_HELLO_SIZE, why, sizeof(why), &out), -EPROTO);
}

Test(proto, version_pick)
{
	struct proto_hello a = hello_sample(), b = hello_sample();

	a.min_version = 1, a.max_version = 1;
	b.min_version = 1, b.max_version = 3;
	cr_expect_eq(proto_version_pick(&a, &b), 1);
	a.min_version = 2, a.max_version = 5;
	cr_expect_eq(proto_version_pick(&a, &b), 3);
	a.min_version = 4, a.max_version = 5;
	cr_expect_eq(proto_version_pick(&a, &b), -EPROTONOSUPPORT);
	cr_expect_eq(proto_version_pick(&b, &a), -EPROTONOSUPPORT);
}

/* ---- READ ---- */

Test(proto, read_round_trip)
{
	uint8_t b[PROTO_READ_SIZE];
	struct proto_read in = {.addr = 0x7f1234560000ULL, .nr_pages = 1024}, out;

	proto_read_encode(b, &in);
	cr_assert_eq(proto_read_decode(b, sizeof(b), 1024, why, sizeof(why), &out), 0, "%s", why);
	cr_expect_eq(out.addr, in.addr);
	cr_expect_eq(out.nr_pages, in.nr_pages);
	/* The last page below the address limit. */
	in = (struct proto_read){.addr = PROTO_ADDR_LIMIT - 4096, .nr_pages = 1};
	proto_read_encode(b, &in);
	cr_expect_eq(proto_read_decode(b, sizeof(b), 1024, why, sizeof(why), &out), 0, "%s", why);
}

Test(proto, read_malformed)
{
	uint8_t b[PROTO_READ_SIZE + 1] = {0};
	struct proto_read out;

	proto_read_encode(b, &(struct proto_read){.addr = 0x1000, .nr_pages = 1});
	EXPECT_ERR(proto_read_decode(b, PROTO_READ_SIZE - 1, 1024, why, sizeof(why), &out),
		   -EPROTO);
	EXPECT_ERR(proto_read_decode(b, PROTO_READ_SIZE + 1, 1024, why, sizeof(why), &out),
		   -EPROTO);
	b[15] = 1;
	EXPECT_ERR(proto_read_decode(b, PROTO_READ_SIZE, 1024, why, sizeof(why), &out), -EPROTO);
	/* Request errors: answered, not fatal. */
	proto_read_encode(b, &(struct proto_read){.addr = 0x1001, .nr_pages = 1});
	EXPECT_ERR(proto_read_decode(b, PROTO_READ_SIZE, 1024, why, sizeof(why), &out), -EINVAL);
	proto_read_encode(b, &(struct proto_read){.addr = 0x1000, .nr_pages = 0});
	EXPECT_ERR(proto_read_decode(b, PROTO_READ_SIZE, 1024, why, sizeof(why), &out), -EINVAL);
	proto_read_encode(b, &(struct proto_read){.addr = 0x1000, .nr_pages = 65});
	EXPECT_ERR(proto_read_decode(b, PROTO_READ_SIZE, 64, why, sizeof(why), &out), -EINVAL);
	proto_read_encode(b, &(struct proto_read){.addr = PROTO_ADDR_LIMIT, .nr_pages = 1});
	EXPECT_ERR(proto_read_decode(b, PROTO_READ_SIZE, 1024, why, sizeof(why), &out), -EFAULT);
	proto_read_encode(b, &(struct proto_read){.addr = PROTO_ADDR_LIMIT - 4096, .nr_pages = 2});
	EXPECT_ERR(proto_read_decode(b, PROTO_READ_SIZE, 1024, why, sizeof(why), &out), -EFAULT);
	proto_read_encode(b, &(struct proto_read){.addr = 0xfffffffffffff000ULL, .nr_pages = 16});
	EXPECT_ERR(proto_read_decode(b, PROTO_READ_SIZE, 1024, why, sizeof(why), &out), -EFAULT);
}

/* ---- LIST ---- */

Test(proto, list_round_trip_and_malformed)
{
	uint8_t b[PROTO_LIST_SIZE];
	struct proto_list out;

	proto_list_encode(b, &(struct proto_list){.from = 0x5000, .max_ranges = 10});
	cr_assert_eq(proto_list_decode(b, sizeof(b), why, sizeof(why), &out), 0, "%s", why);
	cr_expect_eq(out.from, 0x5000);
	cr_expect_eq(out.max_ranges, 10);
	EXPECT_ERR(proto_list_decode(b, sizeof(b) - 1, why, sizeof(why), &out), -EPROTO);
	b[12] = 9;
	EXPECT_ERR(proto_list_decode(b, sizeof(b), why, sizeof(why), &out), -EPROTO);
	proto_list_encode(b, &(struct proto_list){.from = 0x5001, .max_ranges = 10});
	EXPECT_ERR(proto_list_decode(b, sizeof(b), why, sizeof(why), &out), -EINVAL);
	proto_list_encode(b, &(struct proto_list){.from = 0, .max_ranges = 0});
	EXPECT_ERR(proto_list_decode(b, sizeof(b), why, sizeof(why), &out), -EINVAL);
	proto_list_encode(b, &(struct proto_list){.from = 0, .max_ranges = PROTO_RANGES_MAX + 1});
	EXPECT_ERR(proto_list_decode(b, sizeof(b), why, sizeof(why), &out), -EINVAL);
}

/* ---- GET_DOC ---- */

Test(proto, get_doc_names)
{
	char name[PROTO_DOC_NAME_MAX + 1], longname[PROTO_DOC_NAME_MAX + 2];
	static const char *const bad[] = {"../etc/passwd", "a/b", ".hidden", "sp ace", "x\n", "é"};

	cr_assert_eq(proto_get_doc_decode((const uint8_t *)"mm.json", 7, why, sizeof(why), name),
		     0);
	cr_expect_str_eq(name, "mm.json");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_ERR(proto_get_doc_decode((const uint8_t *)bad[i], strlen(bad[i]), why,
						sizeof(why), name),
			   -EINVAL);
	EXPECT_ERR(proto_get_doc_decode((const uint8_t *)"a\0b", 3, why, sizeof(why), name),
		   -EINVAL);
	EXPECT_ERR(proto_get_doc_decode((const uint8_t *)"", 0, why, sizeof(why), name), -EPROTO);
	memset(longname, 'a', sizeof(longname));
	EXPECT_ERR(proto_get_doc_decode((const uint8_t *)longname, PROTO_DOC_NAME_MAX + 1, why,
					sizeof(why), name),
		   -EPROTO);
	cr_expect_eq(proto_get_doc_decode((const uint8_t *)longname, PROTO_DOC_NAME_MAX, why,
					  sizeof(why), name),
		     0);
	cr_expect_eq(strlen(name), PROTO_DOC_NAME_MAX);
}

/* ---- SELECT (version 2) ---- */

Test(proto, select_takes_only_proc_pid)
{
	char name[PROTO_PROC_NAME_MAX + 1];
	static const char *const bad[] = {"../proc-1", "proc-01", "proc-1/..", "proc-", "proc-1x", "proc--1",
					  "Proc-1", "proc-0", "tree.json", "proc-1\n", "/proc-1"};

	cr_assert_eq(proto_select_decode((const uint8_t *)"proc-4242", 9, why, sizeof(why), name), 0, "%s", why);
	cr_expect_str_eq(name, "proc-4242");
	cr_assert_eq(proto_select_decode((const uint8_t *)"proc-4194304", 12, why, sizeof(why), name), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_ERR(proto_select_decode((const uint8_t *)bad[i], strlen(bad[i]), why, sizeof(why), name),
			   -EINVAL);
	EXPECT_ERR(proto_select_decode((const uint8_t *)"proc-1\0", 7, why, sizeof(why), name), -EINVAL);
	EXPECT_ERR(proto_select_decode((const uint8_t *)"", 0, why, sizeof(why), name), -EPROTO);
	EXPECT_ERR(proto_select_decode((const uint8_t *)"proc-123456789012", 17, why, sizeof(why), name), -EPROTO);
	cr_expect_str_eq(proto_type_name(PROTO_SELECT), "SELECT");
	cr_expect_str_eq(proto_type_name(PROTO_SELECTED), "SELECTED");
	cr_expect_eq(PROTO_VERSION, 2);
	cr_expect_eq(PROTO_VERSION_SELECT, 2);
}

/* ---- PAGES ---- */

Test(proto, pages_round_trip)
{
	uint8_t b[PROTO_PAGES_HEAD + 16] = {0};
	struct proto_read want = {.addr = 0x10000, .nr_pages = 9};
	struct proto_pages out;
	uint8_t *kinds = b + PROTO_PAGES_HEAD;

	cr_assert_eq(proto_kinds_size(9), 16);
	cr_assert_eq(proto_kinds_size(8), 8);
	cr_assert_eq(proto_kinds_size(1), 8);
	proto_pages_encode(b, &(struct proto_pages){.addr = 0x10000, .nr_pages = 9, .nr_data = 3});
	for (int i = 0; i < 9; i++)
		kinds[i] = i % 3 == 0	? PROTO_KIND_DATA
			   : i % 3 == 1 ? PROTO_KIND_ZERO
					: PROTO_KIND_NONE;
	cr_assert_eq(proto_pages_decode(b, PROTO_PAGES_HEAD + 16 + 3 * 4096, &want, why,
					sizeof(why), &out),
		     0, "%s", why);
	cr_expect_eq(out.nr_data, 3);
	cr_expect_eq(proto_kinds_check(kinds, 9, 3, why, sizeof(why)), 0, "%s", why);
}

Test(proto, pages_malformed)
{
	uint8_t b[PROTO_PAGES_HEAD + 8] = {0};
	struct proto_read want = {.addr = 0x10000, .nr_pages = 4};
	uint8_t *kinds = b + PROTO_PAGES_HEAD;
	size_t good = PROTO_PAGES_HEAD + 8 + 2 * 4096;
	struct proto_pages out;

	proto_pages_encode(b, &(struct proto_pages){.addr = 0x10000, .nr_pages = 4, .nr_data = 2});
	cr_assert_eq(proto_pages_decode(b, good, &want, why, sizeof(why), &out), 0, "%s", why);
	EXPECT_ERR(proto_pages_decode(b, PROTO_PAGES_HEAD - 1, &want, why, sizeof(why), &out),
		   -EPROTO);
	EXPECT_ERR(proto_pages_decode(b, good - 1, &want, why, sizeof(why), &out), -EPROTO);
	EXPECT_ERR(proto_pages_decode(b, good + 1, &want, why, sizeof(why), &out), -EPROTO);
	EXPECT_ERR(proto_pages_decode(b, good + 4096, &want, why, sizeof(why), &out), -EPROTO);
	proto_pages_encode(b, &(struct proto_pages){.addr = 0x11000, .nr_pages = 4, .nr_data = 2});
	EXPECT_ERR(proto_pages_decode(b, good, &want, why, sizeof(why), &out), -EPROTO);
	proto_pages_encode(b, &(struct proto_pages){.addr = 0x10000, .nr_pages = 3, .nr_data = 2});
	EXPECT_ERR(proto_pages_decode(b, good, &want, why, sizeof(why), &out), -EPROTO);
	proto_pages_encode(b, &(struct proto_pages){.addr = 0x10000, .nr_pages = 4, .nr_data = 5});
	EXPECT_ERR(proto_pages_decode(b, PROTO_PAGES_HEAD + 8 + 5 * 4096, &want, why, sizeof(why),
				      &out),
		   -EPROTO);
	/* A count whose product with 4096 overflows 32 bits. */
	proto_pages_encode(
		b, &(struct proto_pages){.addr = 0x10000, .nr_pages = 4, .nr_data = 0x100001});
	EXPECT_ERR(
		proto_pages_decode(b, PROTO_PAGES_HEAD + 8 + 4096, &want, why, sizeof(why), &out),
		-EPROTO);

	kinds[0] = PROTO_KIND_DATA;
	kinds[1] = PROTO_KIND_DATA;
	kinds[2] = PROTO_KIND_ZERO;
	kinds[3] = PROTO_KIND_NONE;
	cr_expect_eq(proto_kinds_check(kinds, 4, 2, why, sizeof(why)), 0, "%s", why);
	EXPECT_ERR(proto_kinds_check(kinds, 4, 1, why, sizeof(why)), -EPROTO);
	EXPECT_ERR(proto_kinds_check(kinds, 4, 3, why, sizeof(why)), -EPROTO);
	kinds[3] = 3; /* HOLE is never sent: NONE says it */
	EXPECT_ERR(proto_kinds_check(kinds, 4, 2, why, sizeof(why)), -EPROTO);
	kinds[3] = 0xff;
	EXPECT_ERR(proto_kinds_check(kinds, 4, 2, why, sizeof(why)), -EPROTO);
	kinds[3] = 0;
	kinds[6] = 1; /* padding */
	EXPECT_ERR(proto_kinds_check(kinds, 4, 2, why, sizeof(why)), -EPROTO);
}

/* ---- RANGES ---- */

Test(proto, ranges_round_trip)
{
	uint8_t b[PROTO_RANGES_HEAD + 2 * PROTO_RANGE_SIZE];
	struct proto_ranges out;
	struct proto_range r0, r1;

	proto_ranges_encode(
		b, &(struct proto_ranges){.nr = 2, .flags = PROTO_RANGES_MORE, .next = 0x40000});
	proto_range_encode(
		b + PROTO_RANGES_HEAD,
		&(struct proto_range){.addr = 0x10000, .nr_pages = 3, .kind = PROTO_KIND_DATA});
	proto_range_encode(
		b + PROTO_RANGES_HEAD + PROTO_RANGE_SIZE,
		&(struct proto_range){.addr = 0x13000, .nr_pages = 5, .kind = PROTO_KIND_ZERO});
	cr_assert_eq(proto_ranges_decode(b, sizeof(b), 2, why, sizeof(why), &out), 0, "%s", why);
	cr_expect_eq(out.nr, 2);
	cr_expect_eq(out.next, 0x40000);
	cr_assert_eq(proto_range_decode(b + PROTO_RANGES_HEAD, 0, why, sizeof(why), &r0), 0, "%s",
		     why);
	cr_assert_eq(proto_range_decode(b + PROTO_RANGES_HEAD + PROTO_RANGE_SIZE, 0x13000, why,
					sizeof(why), &r1),
		     0, "%s", why);
	cr_expect_eq(r0.addr, 0x10000);
	cr_expect_eq(r0.nr_pages, 3);
	cr_expect_eq(r1.kind, PROTO_KIND_ZERO);
}

Test(proto, ranges_malformed)
{
	uint8_t b[PROTO_RANGES_HEAD + PROTO_RANGE_SIZE] = {0};
	struct proto_ranges out;
	struct proto_range r;
	uint8_t *e = b + PROTO_RANGES_HEAD;

	EXPECT_ERR(proto_ranges_decode(b, PROTO_RANGES_HEAD - 1, 10, why, sizeof(why), &out),
		   -EPROTO);
	proto_ranges_encode(b, &(struct proto_ranges){.nr = 1, .flags = 2});
	EXPECT_ERR(proto_ranges_decode(b, sizeof(b), 10, why, sizeof(why), &out), -EPROTO);
	proto_ranges_encode(b, &(struct proto_ranges){.nr = 1});
	EXPECT_ERR(proto_ranges_decode(b, sizeof(b), 0, why, sizeof(why), &out), -EPROTO);
	EXPECT_ERR(proto_ranges_decode(b, sizeof(b) - 1, 10, why, sizeof(why), &out), -EPROTO);
	proto_ranges_encode(b, &(struct proto_ranges){.nr = 0xffffffff});
	EXPECT_ERR(proto_ranges_decode(b, sizeof(b), UINT32_MAX, why, sizeof(why), &out), -EPROTO);
	proto_ranges_encode(
		b, &(struct proto_ranges){.nr = 1, .flags = PROTO_RANGES_MORE, .next = 0x1001});
	EXPECT_ERR(proto_ranges_decode(b, sizeof(b), 10, why, sizeof(why), &out), -EPROTO);
	proto_ranges_encode(b,
			    &(struct proto_ranges){.nr = 1, .flags = PROTO_RANGES_MORE, .next = 0});
	EXPECT_ERR(proto_ranges_decode(b, sizeof(b), 10, why, sizeof(why), &out), -EPROTO);
	proto_ranges_encode(b, &(struct proto_ranges){.nr = 1,
						      .flags = PROTO_RANGES_MORE,
						      .next = PROTO_ADDR_LIMIT});
	EXPECT_ERR(proto_ranges_decode(b, sizeof(b), 10, why, sizeof(why), &out), -EPROTO);
	proto_ranges_encode(b, &(struct proto_ranges){.nr = 1, .next = 0x2000});
	EXPECT_ERR(proto_ranges_decode(b, sizeof(b), 10, why, sizeof(why), &out), -EPROTO);

	proto_range_encode(
		e, &(struct proto_range){.addr = 0x2000, .nr_pages = 1, .kind = PROTO_KIND_DATA});
	cr_expect_eq(proto_range_decode(e, 0x2000, why, sizeof(why), &r), 0, "%s", why);
	EXPECT_ERR(proto_range_decode(e, 0x3000, why, sizeof(why), &r), -EPROTO); /* going back */
	e[21] = 1;
	EXPECT_ERR(proto_range_decode(e, 0, why, sizeof(why), &r), -EPROTO);
	proto_range_encode(
		e, &(struct proto_range){.addr = 0x2000, .nr_pages = 1, .kind = PROTO_KIND_NONE});
	EXPECT_ERR(proto_range_decode(e, 0, why, sizeof(why), &r), -EPROTO);
	proto_range_encode(e, &(struct proto_range){.addr = 0x2000, .nr_pages = 1, .kind = 3});
	EXPECT_ERR(proto_range_decode(e, 0, why, sizeof(why), &r), -EPROTO);
	proto_range_encode(
		e, &(struct proto_range){.addr = 0x2008, .nr_pages = 1, .kind = PROTO_KIND_ZERO});
	EXPECT_ERR(proto_range_decode(e, 0, why, sizeof(why), &r), -EPROTO);
	proto_range_encode(
		e, &(struct proto_range){.addr = 0x2000, .nr_pages = 0, .kind = PROTO_KIND_ZERO});
	EXPECT_ERR(proto_range_decode(e, 0, why, sizeof(why), &r), -EPROTO);
	proto_range_encode(e, &(struct proto_range){.addr = PROTO_ADDR_LIMIT - 4096,
						    .nr_pages = 2,
						    .kind = PROTO_KIND_ZERO});
	EXPECT_ERR(proto_range_decode(e, 0, why, sizeof(why), &r), -EPROTO);
	proto_range_encode(e, &(struct proto_range){.addr = 0x1000,
						    .nr_pages = UINT64_MAX / 2,
						    .kind = PROTO_KIND_ZERO});
	EXPECT_ERR(proto_range_decode(e, 0, why, sizeof(why), &r), -EPROTO);
}

/* ---- ERROR ---- */

Test(proto, error_round_trip)
{
	uint8_t b[PROTO_ERROR_HEAD + PROTO_ERROR_MSG_MAX + 100];
	char longmsg[PROTO_ERROR_MSG_MAX + 50];
	struct proto_error e;
	size_t n;

	n = proto_error_encode(b, sizeof(b), EFAULT, "outside the image");
	cr_assert_eq(n, PROTO_ERROR_HEAD + 17);
	cr_assert_eq(proto_error_decode(b, n, why, sizeof(why), &e), 0, "%s", why);
	cr_expect_eq(e.code, EFAULT);
	cr_expect_eq(e.msg_len, 17);
	cr_expect_eq(memcmp(e.msg, "outside the image", 17), 0);
	/* Long messages are cut to the limit. */
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	n = proto_error_encode(b, sizeof(b), EIO, longmsg);
	cr_assert_eq(n, PROTO_ERROR_HEAD + PROTO_ERROR_MSG_MAX);
	cr_expect_eq(proto_error_decode(b, n, why, sizeof(why), &e), 0, "%s", why);
	/* And to the buffer. */
	n = proto_error_encode(b, PROTO_ERROR_HEAD + 4, EIO, "abcdefgh");
	cr_expect_eq(n, PROTO_ERROR_HEAD + 4);
	n = proto_error_encode(b, sizeof(b), EIO, NULL);
	cr_expect_eq(n, PROTO_ERROR_HEAD);
	cr_expect_eq(proto_error_decode(b, n, why, sizeof(why), &e), 0, "%s", why);
}

Test(proto, error_malformed)
{
	uint8_t b[PROTO_ERROR_HEAD + 8];
	struct proto_error e;
	size_t n = proto_error_encode(b, sizeof(b), EACCES, "wrong");

	EXPECT_ERR(proto_error_decode(b, PROTO_ERROR_HEAD - 1, why, sizeof(why), &e), -EPROTO);
	EXPECT_ERR(proto_error_decode(b, n - 1, why, sizeof(why), &e), -EPROTO);
	EXPECT_ERR(proto_error_decode(b, n + 1, why, sizeof(why), &e), -EPROTO);
	b[7] = 1;
	EXPECT_ERR(proto_error_decode(b, n, why, sizeof(why), &e), -EPROTO);
	n = proto_error_encode(b, sizeof(b), 0, "zero");
	EXPECT_ERR(proto_error_decode(b, n, why, sizeof(why), &e), -EPROTO);
	n = proto_error_encode(b, sizeof(b), 4096, "big");
	EXPECT_ERR(proto_error_decode(b, n, why, sizeof(why), &e), -EPROTO);
	n = proto_error_encode(b, sizeof(b), EIO, "a\033[2Jb");
	EXPECT_ERR(proto_error_decode(b, n, why, sizeof(why), &e), -EPROTO);
}

Test(proto, type_names)
{
	cr_expect_str_eq(proto_type_name(PROTO_HELLO), "HELLO");
	cr_expect_str_eq(proto_type_name(PROTO_PONG), "PONG");
	cr_expect_str_eq(proto_type_name(0), "unknown");
	cr_expect_str_eq(proto_type_name(999), "unknown");
}
