/* SPDX-License-Identifier: MIT */
/*
 * XXH64 against the published vectors of xxHash's own sanity check
 * (cli/xsum_sanity_check.c), in one shot and streamed, and against zstd,
 * whose frame checksum is the low 32 bits of XXH64 of the content.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "util/xxhash.h"

#define PRIME32 2654435761U
#define PRIME64 11400714785074694797ULL
#define SANITY_LEN 2367

static const struct {
	size_t len;
	uint64_t seed;
	uint64_t want;
} vectors[] = {
	{ 0, 0, 0xEF46DB3751D8E999ULL },   { 0, PRIME32, 0xAC75FDA2929B17EFULL },
	{ 1, 0, 0xE934A84ADB052768ULL },   { 1, PRIME32, 0x5014607643A9B4C3ULL },
	{ 4, 0, 0x9136A0DCA57457EEULL },   { 14, 0, 0x8282DCC4994E35C8ULL },
	{ 14, PRIME32, 0xC3BD6BF63DEB6DF0ULL }, { 222, 0, 0xB641AE8CB691C174ULL },
	{ 222, PRIME32, 0x20CB8AB7AE10C14AULL },
};

static void fill_sanity(unsigned char *buf, size_t len)
{
	uint64_t gen = PRIME32;

	for (size_t i = 0; i < len; i++) {
		buf[i] = (unsigned char)(gen >> 56);
		gen *= PRIME64;
	}
}

Test(xxhash, published_vectors_one_shot_and_streamed)
{
	static unsigned char buf[SANITY_LEN];

	fill_sanity(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		struct xxh64_state st;

		cr_expect_eq(xxh64(buf, vectors[i].len, vectors[i].seed), vectors[i].want,
			     "one shot, len %zu seed %llu", vectors[i].len,
			     (unsigned long long)vectors[i].seed);
		xxh64_init(&st, vectors[i].seed);
		xxh64_update(&st, buf, vectors[i].len);
		cr_expect_eq(xxh64_digest(&st), vectors[i].want, "streamed, len %zu", vectors[i].len);
		xxh64_init(&st, vectors[i].seed);
		for (size_t b = 0; b < vectors[i].len; b++)
			xxh64_update(&st, buf + b, 1);
		cr_expect_eq(xxh64_digest(&st), vectors[i].want, "byte by byte, len %zu",
			     vectors[i].len);
	}
}

Test(xxhash, any_split_gives_the_same_hash)
{
	static unsigned char buf[SANITY_LEN];
	uint64_t whole;

	fill_sanity(buf, sizeof(buf));
	whole = xxh64(buf, sizeof(buf), 7);
	for (size_t step = 1; step < 100; step += 3) {
		struct xxh64_state st;
		size_t off = 0;

		xxh64_init(&st, 7);
		while (off < sizeof(buf)) {
			size_t n = step + off % 37;

			if (n > sizeof(buf) - off)
				n = sizeof(buf) - off;
			xxh64_update(&st, buf + off, n);
			off += n;
			/* The digest may be taken midway without disturbing the state. */
			(void)xxh64_digest(&st);
		}
		cr_expect_eq(xxh64_digest(&st), whole, "step %zu", step);
	}
}

Test(xxhash, agrees_with_zstd_frame_checksums)
{
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t cap = ZSTD_compressBound(1 << 20);
	unsigned char *src = malloc(1 << 20), *dst = malloc(cap);
	uint64_t x = 88172645463325252ULL;

	cr_assert(cctx && src && dst);
	cr_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)));
	for (size_t i = 0; i < (1 << 20); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		src[i] = (unsigned char)(i % 3 ? x : i);
	}
	for (size_t len = 0; len <= (1 << 20); len = len * 3 + 1) {
		size_t n = ZSTD_compress2(cctx, dst, cap, src, len);
		uint32_t want;

		cr_assert(!ZSTD_isError(n));
		want = (uint32_t)dst[n - 4] | (uint32_t)dst[n - 3] << 8 |
		       (uint32_t)dst[n - 2] << 16 | (uint32_t)dst[n - 1] << 24;
		cr_expect_eq((uint32_t)xxh64(src, len, 0), want, "len %zu", len);
	}
	ZSTD_freeCCtx(cctx);
	free(src);
	free(dst);
}
