/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt/range.h>

#include "util/util.h"

void ckpt_range_set_init(struct ckpt_range_set *s)
{
	memset(s, 0, sizeof(*s));
}

void ckpt_range_set_done(struct ckpt_range_set *s)
{
	free(s->v);
	ckpt_range_set_init(s);
}

int ckpt_range_set_add(struct ckpt_range_set *s, uint64_t start, uint64_t end)
{
	if (end <= start)
		return 0;
	/* Extend the last range when the new one continues it (the common case). */
	if (s->nr && s->v[s->nr - 1].end == start) {
		s->v[s->nr - 1].end = end;
		return 0;
	}
	if (GROW(s->v, s->cap, s->nr + 1) < 0)
		return -ENOMEM;
	s->v[s->nr].start = start;
	s->v[s->nr].end = end;
	s->nr++;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct ckpt_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

void ckpt_range_set_normalize(struct ckpt_range_set *s)
{
	size_t n = 0;
	bool sorted = true;

	if (!s->nr)
		return;
	/* Scans produce ranges in address order: skip the sort then. */
	for (size_t i = 1; i < s->nr && sorted; i++)
		sorted = cmp_range(&s->v[i - 1], &s->v[i]) <= 0;
	if (!sorted)
		qsort(s->v, s->nr, sizeof(*s->v), cmp_range);
	for (size_t i = 0; i < s->nr; i++) {
		if (s->v[i].end <= s->v[i].start)
			continue;
		if (n && s->v[i].start <= s->v[n - 1].end) {
			if (s->v[i].end > s->v[n - 1].end)
				s->v[n - 1].end = s->v[i].end;
		} else {
			s->v[n++] = s->v[i];
		}
	}
	s->nr = n;
}

uint64_t ckpt_range_set_bytes(const struct ckpt_range_set *s)
{
	uint64_t b = 0;

	for (size_t i = 0; i < s->nr; i++)
		b += s->v[i].end - s->v[i].start;
	return b;
}

/* Index of the first range whose end is above @addr. */
static size_t first_after(const struct ckpt_range_set *s, uint64_t addr)
{
	size_t lo = 0, hi = s->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool ckpt_range_set_covers(const struct ckpt_range_set *s, uint64_t start, uint64_t end)
{
	size_t i = first_after(s, start);

	if (end <= start)
		return true;
	return i < s->nr && s->v[i].start <= start && s->v[i].end >= end;
}

bool ckpt_range_set_overlaps(const struct ckpt_range_set *s, uint64_t start, uint64_t end)
{
	size_t i = first_after(s, start);

	return end > start && i < s->nr && s->v[i].start < end;
}

int ckpt_range_set_add_uncovered(struct ckpt_range_set *out, const struct ckpt_range_set *s,
				 uint64_t start, uint64_t end)
{
	uint64_t at = start;

	for (size_t i = first_after(s, start); i < s->nr && s->v[i].start < end && at < end; i++) {
		if (s->v[i].start > at) {
			int r = ckpt_range_set_add(out, at, s->v[i].start);

			if (r < 0)
				return r;
		}
		if (s->v[i].end > at)
			at = s->v[i].end;
	}
	return at < end ? ckpt_range_set_add(out, at, end) : 0;
}
