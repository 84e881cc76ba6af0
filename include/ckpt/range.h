/* SPDX-License-Identifier: MIT */
/* Address ranges [start, end) and sorted sets of them. */
#ifndef CKPT_RANGE_H
#define CKPT_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ckpt/util.h>

struct ckpt_range {
	uint64_t start, end; /* [start, end) */
};

/* A growable array of ranges; "normalized" means sorted, merged, non-empty. */
struct ckpt_range_set {
	size_t nr, cap;
	struct ckpt_range *v;
};

void ckpt_range_set_init(struct ckpt_range_set *s);
void ckpt_range_set_done(struct ckpt_range_set *s);
int ckpt_range_set_add(struct ckpt_range_set *s, uint64_t start, uint64_t end) __must_check;
/* Sort and merge overlapping and adjacent ranges. */
void ckpt_range_set_normalize(struct ckpt_range_set *s);
/* Total length of a normalized set. */
uint64_t ckpt_range_set_bytes(const struct ckpt_range_set *s);
/* Does normalized @s cover all of [start, end)? */
bool ckpt_range_set_covers(const struct ckpt_range_set *s, uint64_t start, uint64_t end);
/* Does normalized @s overlap [start, end)? */
bool ckpt_range_set_overlaps(const struct ckpt_range_set *s, uint64_t start, uint64_t end);
/* Add to @out the parts of [start, end) that normalized @s does not cover. */
int ckpt_range_set_add_uncovered(struct ckpt_range_set *out, const struct ckpt_range_set *s,
				 uint64_t start, uint64_t end) __must_check;

#endif
