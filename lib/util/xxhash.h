/* SPDX-License-Identifier: MIT */
/*
 * XXH64, the 64-bit xxHash of Yann Collet (https://github.com/Cyan4973/xxHash,
 * doc/xxhash_spec.md), written from its specification. One-shot and
 * streaming forms give the same result for any split of the input.
 */
#ifndef CKPT_LIB_XXHASH_H
#define CKPT_LIB_XXHASH_H

#include <stddef.h>
#include <stdint.h>

struct xxh64_state {
	uint64_t total_len;
	uint64_t v[4];
	uint64_t seed;
	unsigned char buf[32]; /* bytes not yet consumed by a full stripe */
	size_t buf_len;
};

uint64_t xxh64(const void *data, size_t len, uint64_t seed);

void xxh64_init(struct xxh64_state *s, uint64_t seed);
void xxh64_update(struct xxh64_state *s, const void *data, size_t len);
/* The hash of everything given so far; the state stays usable. */
uint64_t xxh64_digest(const struct xxh64_state *s);

#endif
