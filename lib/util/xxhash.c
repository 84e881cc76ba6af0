/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "util/xxhash.h"

#define P1 11400714785074694791ULL
#define P2 14029467366897019727ULL
#define P3 1609587929392839161ULL
#define P4 9650029242287828579ULL
#define P5 2870177450012600261ULL

static inline uint64_t rotl64(uint64_t x, unsigned int r)
{
	return (x << r) | (x >> (64 - r));
}

/* Little-endian loads that do not care about alignment. */
static inline uint64_t load64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	       (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline uint32_t load32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t round64(uint64_t acc, uint64_t input)
{
	acc += input * P2;
	acc = rotl64(acc, 31);
	return acc * P1;
}

static inline uint64_t merge_round(uint64_t acc, uint64_t val)
{
	acc ^= round64(0, val);
	return acc * P1 + P4;
}

static void init_lanes(uint64_t v[4], uint64_t seed)
{
	v[0] = seed + P1 + P2;
	v[1] = seed + P2;
	v[2] = seed;
	v[3] = seed - P1;
}

/* Consume whole 32-byte stripes; returns the bytes consumed. */
static size_t consume_stripes(uint64_t v[4], const unsigned char *p, size_t len)
{
	size_t done = 0;

	while (len - done >= 32) {
		v[0] = round64(v[0], load64(p + done));
		v[1] = round64(v[1], load64(p + done + 8));
		v[2] = round64(v[2], load64(p + done + 16));
		v[3] = round64(v[3], load64(p + done + 24));
		done += 32;
	}
	return done;
}

static uint64_t converge(const uint64_t v[4])
{
	uint64_t h = rotl64(v[0], 1) + rotl64(v[1], 7) + rotl64(v[2], 12) + rotl64(v[3], 18);

	for (int i = 0; i < 4; i++)
		h = merge_round(h, v[i]);
	return h;
}

/* The tail (< 32 bytes) and the avalanche. */
static uint64_t finish(uint64_t h, const unsigned char *p, size_t len)
{
	while (len >= 8) {
		h ^= round64(0, load64(p));
		h = rotl64(h, 27) * P1 + P4;
		p += 8;
		len -= 8;
	}
	if (len >= 4) {
		h ^= (uint64_t)load32(p) * P1;
		h = rotl64(h, 23) * P2 + P3;
		p += 4;
		len -= 4;
	}
	while (len) {
		h ^= (uint64_t)*p * P5;
		h = rotl64(h, 11) * P1;
		p++;
		len--;
	}
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

uint64_t xxh64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h, v[4];
	size_t done = 0;

	if (len >= 32) {
		init_lanes(v, seed);
		done = consume_stripes(v, p, len);
		h = converge(v);
	} else {
		h = seed + P5;
	}
	h += (uint64_t)len;
	return finish(h, p + done, len - done);
}

void xxh64_init(struct xxh64_state *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->seed = seed;
	init_lanes(s->v, seed);
}

void xxh64_update(struct xxh64_state *s, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (!len)
		return;
	s->total_len += len;
	if (s->buf_len + len < 32) {
		memcpy(s->buf + s->buf_len, p, len);
		s->buf_len += len;
		return;
	}
	if (s->buf_len) {
		size_t fill = 32 - s->buf_len;

		memcpy(s->buf + s->buf_len, p, fill);
		consume_stripes(s->v, s->buf, 32);
		p += fill;
		len -= fill;
		s->buf_len = 0;
	}
	{
		size_t done = consume_stripes(s->v, p, len);

		p += done;
		len -= done;
	}
	memcpy(s->buf, p, len);
	s->buf_len = len;
}

uint64_t xxh64_digest(const struct xxh64_state *s)
{
	uint64_t h;

	if (s->total_len >= 32)
		h = converge(s->v);
	else
		h = s->seed + P5;
	h += s->total_len;
	return finish(h, s->buf, s->buf_len);
}
