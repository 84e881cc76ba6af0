/* SPDX-License-Identifier: MIT */
/*
 * The range table of a lazily restored process: which of its current
 * addresses are registered, which images address each maps to (mremap moves
 * pages), and which pages are done (delivered, or removed: zero from then on).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lazy/lazy-internal.h"
#include "util/util.h"

#define PS 4096ULL

static size_t bitmap_bytes(uint64_t pages)
{
	return (size_t)((pages + 7) / 8);
}

bool lz_is_done(const struct lz_vma *v, uint64_t idx)
{
	return v->done[idx / 8] & (1u << (idx % 8));
}

uint64_t lz_next_undone(const struct lz_vma *v, uint64_t idx, uint64_t end)
{
	/* Bit by bit to a byte boundary, then 8 bytes at a time over done runs. */
	while (idx < end && idx % 64 && lz_is_done(v, idx))
		idx++;
	while (idx + 64 <= end && idx % 64 == 0) {
		uint64_t w;

		memcpy(&w, v->done + idx / 8, sizeof(w));
		if (w != UINT64_MAX)
			break;
		idx += 64;
	}
	while (idx < end && lz_is_done(v, idx))
		idx++;
	return idx;
}

void lz_mark(struct lz_proc *p, struct lz_vma *v, uint64_t idx, uint64_t n)
{
	for (uint64_t i = idx; i < idx + n; i++) {
		if (lz_is_done(v, i))
			continue;
		v->done[i / 8] |= (uint8_t)(1u << (i % 8));
		v->left--;
		p->left--;
	}
}

struct lz_vma *lz_find(struct lz_proc *p, uint64_t addr)
{
	for (size_t i = 0; i < p->nr; i++)
		if (addr >= p->v[i].start && addr < p->v[i].end)
			return &p->v[i];
	return NULL;
}

int lz_add_range(struct lz_proc *p, uint64_t start, uint64_t end, uint64_t src)
{
	uint64_t pages = (end - start) / PS;
	uint8_t *bits = calloc(1, bitmap_bytes(pages) ?: 1);

	if (!bits || GROW(p->v, p->cap, p->nr + 1) < 0) {
		free(bits);
		return -ENOMEM;
	}
	p->v[p->nr++] = (struct lz_vma){ start, end, src, bits, pages };
	p->left += pages;
	p->gen++;
	return 0;
}

/* Copy the part [a, b) of @v (current addresses) to a new range at @to. */
static int carve(struct lz_proc *p, const struct lz_vma *v, uint64_t a, uint64_t b, uint64_t to)
{
	struct lz_vma *n;
	uint64_t first = (a - v->start) / PS;
	int r = lz_add_range(p, to, to + (b - a), v->src + (a - v->start));

	if (r < 0)
		return r;
	n = &p->v[p->nr - 1];
	for (uint64_t i = 0; i < (b - a) / PS; i++)
		if (lz_is_done(v, first + i))
			lz_mark(p, n, i, 1);
	return 0;
}

/* Take [start, end) out of the table: what remains of each range is kept. */
static int cut(struct lz_proc *p, uint64_t start, uint64_t end, struct lz_vma **ret_moved, size_t *ret_nr)
{
	struct lz_vma *moved = NULL;
	size_t nr_moved = 0, cap_moved = 0;

	for (size_t i = 0; i < p->nr;) {
		struct lz_vma v = p->v[i];
		uint64_t a = MAX(v.start, start), b = MIN(v.end, end);
		int r;

		if (a >= b) {
			i++;
			continue;
		}
		/* Remove v, keep its pieces outside [a, b). */
		p->left -= v.left;
		p->v[i] = p->v[--p->nr];
		if (v.start < a && (r = carve(p, &v, v.start, a, v.start)) < 0)
			return r;
		if (b < v.end && (r = carve(p, &v, b, v.end, b)) < 0)
			return r;
		if (ret_moved) {
			if (GROW(moved, cap_moved, nr_moved + 1) < 0)
				return -ENOMEM;
			/* Only [a, b) of it, with its done bits. */
			moved[nr_moved] = v;
			moved[nr_moved].start = a;
			moved[nr_moved].end = b;
			moved[nr_moved].src = v.src + (a - v.start);
			moved[nr_moved].done = malloc(bitmap_bytes((b - a) / PS) ?: 1);
			if (!moved[nr_moved].done)
				return -ENOMEM;
			memset(moved[nr_moved].done, 0, bitmap_bytes((b - a) / PS) ?: 1);
			for (uint64_t k = 0; k < (b - a) / PS; k++)
				if (lz_is_done(&v, (a - v.start) / PS + k))
					moved[nr_moved].done[k / 8] |= (uint8_t)(1u << (k % 8));
			nr_moved++;
		}
		free(v.done);
		/* p->v[i] is now another range: look at it again. */
	}
	p->gen++;
	if (ret_moved) {
		*ret_moved = moved;
		*ret_nr = nr_moved;
	}
	return 0;
}

int lz_remap(struct lz_proc *p, uint64_t from, uint64_t to, uint64_t len)
{
	struct lz_vma *moved = NULL;
	size_t nr = 0;
	int r = cut(p, from, from + len, &moved, &nr);

	/* Whatever was registered at the destination is gone (replaced). */
	if (r == 0)
		r = cut(p, to, to + len, NULL, NULL);
	for (size_t i = 0; r == 0 && i < nr; i++) {
		struct lz_vma *n;
		uint64_t pages = (moved[i].end - moved[i].start) / PS;

		r = lz_add_range(p, to + (moved[i].start - from), to + (moved[i].end - from), moved[i].src);
		if (r < 0)
			break;
		n = &p->v[p->nr - 1];
		for (uint64_t k = 0; k < pages; k++)
			if (moved[i].done[k / 8] & (1u << (k % 8)))
				lz_mark(p, n, k, 1);
	}
	for (size_t i = 0; i < nr; i++)
		free(moved[i].done);
	free(moved);
	return r;
}

int lz_remove(struct lz_proc *p, uint64_t start, uint64_t end, bool unmap)
{
	if (unmap)
		return cut(p, start, end, NULL, NULL);
	/* MADV_DONTNEED/REMOVE: the pages read as zero from now on, never the images'. */
	for (size_t i = 0; i < p->nr; i++) {
		struct lz_vma *v = &p->v[i];
		uint64_t a = MAX(v->start, start), b = MIN(v->end, end);

		if (a < b)
			lz_mark(p, v, (a - v->start) / PS, (b - a) / PS);
	}
	p->gen++;
	return 0;
}

int lz_copy_table(struct lz_proc *dst, const struct lz_proc *src)
{
	for (size_t i = 0; i < src->nr_lock; i++) {
		int r = lz_add_lock(dst, src->lock[i][0], src->lock[i][1]);

		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < src->nr; i++) {
		const struct lz_vma *v = &src->v[i];
		struct lz_vma *n;
		int r = lz_add_range(dst, v->start, v->end, v->src);

		if (r < 0)
			return r;
		n = &dst->v[dst->nr - 1];
		for (uint64_t k = 0; k < (v->end - v->start) / PS; k++)
			if (lz_is_done(v, k))
				lz_mark(dst, n, k, 1);
	}
	return 0;
}

int lz_add_lock(struct lz_proc *p, uint64_t src_start, uint64_t src_end)
{
	uint64_t(*n)[2] = realloc(p->lock, (p->nr_lock + 1) * sizeof(*p->lock));

	if (!n)
		return -ENOMEM;
	p->lock = n;
	p->lock[p->nr_lock][0] = src_start;
	p->lock[p->nr_lock++][1] = src_end;
	return 0;
}

void lz_free_table(struct lz_proc *p)
{
	free(p->lock);
	p->lock = NULL;
	p->nr_lock = 0;
	for (size_t i = 0; i < p->nr; i++)
		free(p->v[i].done);
	free(p->v);
	p->v = NULL;
	p->nr = p->cap = 0;
}
