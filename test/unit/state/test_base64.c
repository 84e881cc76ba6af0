/* SPDX-License-Identifier: MIT */
/* lib/util/base64: RFC 4648 vectors, round trips, and what must be refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"

static const struct {
	const char *plain, *b64;
} vectors[] = {
	/* RFC 4648, section 10 */
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
	/* every index of the alphabet, '+' and '/' included */
	{ "\x00\x10\x83\x10\x51\x87\x20\x92\x8b\x30\xd3\x8f\x41\x14\x93\x51\x55\x97\x61\x96\x9b"
	  "\x71\xd7\x9f\x82\x18\xa3\x92\x59\xa7\xa2\x9a\xab\xb2\xdb\xaf\xc3\x1c\xb3\xd3\x5d\xb7"
	  "\xe3\x9e\xbb\xf3\xdf\xbf",
	  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" },
};

Test(base64, rfc4648_vectors)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		size_t plen = strlen(vectors[i].b64) / 4 * 3;
		char *enc;
		void *dec;
		size_t len;

		/* the last vector starts with a NUL: take its length from the encoding */
		if (i == sizeof(vectors) / sizeof(vectors[0]) - 1)
			plen = 48;
		else
			plen = strlen(vectors[i].plain);
		enc = base64_encode(vectors[i].plain, plen);
		cr_assert_not_null(enc);
		cr_expect_str_eq(enc, vectors[i].b64);
		cr_expect_eq(base64_encoded_len(plen), strlen(vectors[i].b64));
		cr_assert_eq(base64_decode(vectors[i].b64, strlen(vectors[i].b64), &dec, &len), 0,
			     "vector %zu", i);
		cr_expect_eq(len, plen);
		cr_expect(memcmp(dec, vectors[i].plain, plen) == 0, "vector %zu decodes wrong", i);
		cr_expect_eq(((char *)dec)[len], '\0');
		free(enc);
		free(dec);
	}
}

Test(base64, round_trip_all_lengths_and_bytes)
{
	unsigned char buf[300];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(buf); n++) {
		char *enc = base64_encode(buf, n);
		void *dec;
		size_t len;

		cr_assert_not_null(enc);
		cr_assert_eq(base64_decode(enc, strlen(enc), &dec, &len), 0, "length %zu", n);
		cr_assert_eq(len, n);
		cr_assert(memcmp(dec, buf, n) == 0, "length %zu", n);
		free(enc);
		free(dec);
	}
}

Test(base64, refuses_non_canonical_input)
{
	static const char *const bad[] = {
		"Zg=",       /* not a multiple of 4 */
		"Zg",        /* padding missing */
		"Z===",      /* three pads */
		"====",
		"Zg==Zg==",  /* padding in the middle */
		"Zm9v\n",    /* whitespace */
		"Zm 9",
		"Zm9-",      /* URL-safe alphabet */
		"Zm9_",
		"Zh==",      /* non-zero bits under the padding */
		"Zm9=",
		"=Zm9",
		"Zm=v",
		"\xc3\xa9xx",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *dec = (void *)0x1;
		size_t len = 77;

		cr_expect_eq(base64_decode(bad[i], strlen(bad[i]), &dec, &len), -EBADMSG,
			     "'%s' accepted", bad[i]);
		cr_expect_eq(dec, (void *)0x1, "output written on error");
		cr_expect_eq(len, 77);
	}
	/* a NUL inside the counted length is not a base64 character */
	{
		void *dec;
		size_t len;

		cr_expect_eq(base64_decode("Zm\0v", 4, &dec, &len), -EBADMSG);
	}
}
