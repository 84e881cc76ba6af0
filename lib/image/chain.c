/* SPDX-License-Identifier: MIT */
/*
 * A chain: a checkpoint and its ancestors, newest first. A page resolves to
 * the newest checkpoint that lists it; a HOLE stops the search.
 */
#define LOG_AREA "image"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/image-internal.h"
#include "util/log.h"
#include "util/util.h"

struct ckpt_chain {
	size_t nr;
	size_t cap;
	struct ckpt_image **img; /* 0: the newest */
};

struct ckpt_chain_iter {
	struct ckpt_chain *c;
	struct seg *segs;
	size_t nr, pos;
};

void ckpt_chain_close(struct ckpt_chain *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nr; i++)
		ckpt_image_close(c->img[i]);
	free(c->img);
	free(c);
}

size_t ckpt_chain_length(const struct ckpt_chain *c)
{
	return c->nr;
}

struct ckpt_image *ckpt_chain_image(const struct ckpt_chain *c, size_t i)
{
	return i < c->nr ? c->img[i] : NULL;
}

static bool same_dir(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* Open the parent of the oldest checkpoint so far and check that it belongs. */
static int open_parent(struct ckpt_chain *c, const struct ckpt_image_open_opts *opts, char *why,
		       size_t whylen)
{
	struct ckpt_image *child = c->img[c->nr - 1], *p = NULL;
	const struct ckpt_image_identity *want = &c->img[0]->inv.identity, *got;
	_cleanup_free_ char *ppath = NULL;
	int r;

	if (c->nr >= CHAIN_MAX)
		return why_set(why, whylen, -ELOOP, "chain of '%s' is longer than %d checkpoints",
			       c->img[0]->path, CHAIN_MAX);
	ppath = path_join(child->path, child->inv.parent);
	if (!ppath)
		return -ENOMEM;
	r = image_open_at(child->dirfd, child->inv.parent, ppath, opts, &p, why, whylen);
	if (r < 0) {
		why_prefix(why, whylen, "parent of '%s': ", child->path);
		return r;
	}
	for (size_t i = 0; i < c->nr; i++)
		if (same_dir(p->dirfd, c->img[i]->dirfd)) {
			r = why_set(why, whylen, -ELOOP,
				    "chain of '%s' loops: '%s', parent of '%s', is '%s'",
				    c->img[0]->path, ppath, child->path, c->img[i]->path);
			goto fail;
		}
	got = &p->inv.identity;
	if (!ckpt_image_identity_equal(got, want)) {
		r = why_set(why, whylen, -EXDEV,
			    "parent '%s' of '%s' is a checkpoint of another process: pid %d, start "
			    "time %" PRIu64 ", boot %s; expected pid %d, start time %" PRIu64
			    ", boot %s",
			    ppath, child->path, (int)got->pid, got->start_time, got->boot_id,
			    (int)want->pid, want->start_time, want->boot_id);
		goto fail;
	}
	if (!ckpt_image_id_equal(&p->inv.id, &child->inv.parent_id)) {
		char want_id[CKPT_IMAGE_ID_STR_LEN + 1], got_id[CKPT_IMAGE_ID_STR_LEN + 1];

		r = why_set(why, whylen, -ESTALE,
			    "parent '%s' of '%s' is not the checkpoint it was written on "
			    "(its id is %s, the child names %s: replaced by another checkpoint)",
			    ppath, child->path, ckpt_image_id_format(&p->inv.id, got_id),
			    ckpt_image_id_format(&child->inv.parent_id, want_id));
		goto fail;
	}
	if (GROW(c->img, c->cap, c->nr + 1) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	c->img[c->nr++] = p;
	return 0;
fail:
	ckpt_image_close(p);
	return r;
}

/* Does some checkpoint of @c no longer sit at the path it was opened by? */
static bool chain_moved(const struct ckpt_chain *c)
{
	for (size_t i = 0; i < c->nr; i++) {
		struct stat a, b;

		if (fstat(c->img[i]->dirfd, &a) < 0 || stat(c->img[i]->path, &b) < 0 ||
		    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
			return true;
	}
	return false;
}

static int chain_open_once(const char *path, const struct ckpt_image_open_opts *opts,
			   struct ckpt_chain **ret, bool *ret_moved, char *why, size_t whylen)
{
	_cleanup_(ckpt_chain_closep) struct ckpt_chain *c = NULL;
	int r;

	*ret_moved = false;
	c = calloc(1, sizeof(*c));
	if (!c || GROW(c->img, c->cap, 1) < 0)
		return why_set(why, whylen, -ENOMEM, "cannot open checkpoint chain '%s': %s", path,
			       strerror(ENOMEM));
	r = image_open_at(AT_FDCWD, path, path, opts, &c->img[0], why, whylen);
	if (r == 0)
		c->nr = 1;
	while (r == 0 && c->img[c->nr - 1]->inv.parent)
		r = open_parent(c, opts, why, whylen);
	if (r < 0) {
		/* A fold or a removal went on meanwhile: the caller opens it again. */
		*ret_moved = (r == -ENOENT || r == -EBADMSG) && c->nr && chain_moved(c);
		return r;
	}
	*ret = TAKE_PTR(c);
	return 0;
}

int ckpt_chain_open(const char *path, const struct ckpt_image_open_opts *opts,
		    struct ckpt_chain **ret)
{
	struct ckpt_chain *c = NULL;
	char why[WHY_LEN] = "";
	bool moved = true;
	int r = -EAGAIN;

	if (!path || !*path) {
		pr_err("cannot open a checkpoint chain: empty path");
		return -EINVAL;
	}
	for (int attempt = 0; attempt < 8 && moved; attempt++) {
		why[0] = '\0';
		r = chain_open_once(path, opts, &c, &moved, why, sizeof(why));
		if (moved)
			pr_debug("chain of '%s' changed while it was opened: again", path);
	}
	if (r < 0) {
		if (why[0])
			pr_err("%s", why);
		else
			pr_err("cannot open checkpoint chain '%s': %s", path, strerror(-r));
		return r;
	}
	pr_debug("chain of '%s': %zu checkpoints", path, c->nr);
	*ret = c;
	return 0;
}

int ckpt_chain_ranges(const struct ckpt_chain *c, struct ckpt_range_set *ret)
{
	for (size_t i = 0; i < c->nr; i++) {
		const struct ckpt_image_index *idx = c->img[i]->idx;

		for (size_t k = 0; k < idx->nr_entries; k++) {
			const struct ckpt_image_entry *e = &idx->entries[k];

			if (e->kind == CKPT_PAGE_HOLE)
				continue;
			if (ret->nr && ret->v[ret->nr - 1].end == e->addr) {
				ret->v[ret->nr - 1].end = entry_end(e); /* neighbours: most of them */
				continue;
			}
			if (ckpt_range_set_add(ret, e->addr, entry_end(e)) < 0) {
				pr_err("cannot list the ranges of '%s': %s", c->img[0]->path,
				       strerror(ENOMEM));
				return -ENOMEM;
			}
		}
	}
	ckpt_range_set_normalize(ret);
	return 0;
}

int ckpt_chain_read_page(struct ckpt_chain *c, uint64_t addr, void *buf)
{
	if (addr & (CKPT_IMAGE_PAGE_SIZE - 1)) {
		pr_err("cannot read page 0x%" PRIx64 " of '%s': not page-aligned", addr,
		       c->img[0]->path);
		return -EINVAL;
	}
	for (size_t i = 0; i < c->nr; i++) {
		int r = ckpt_image_read_page(c->img[i], addr, buf);

		if (r < 0)
			return r;
		if (r == CKPT_PAGE_HOLE)
			return CKPT_PAGE_NONE;
		if (r != CKPT_PAGE_NONE)
			return r;
	}
	return CKPT_PAGE_NONE;
}

/* ---- iteration ---- */

static void seg_advance(struct seg *s, uint64_t addr)
{
	if (s->kind == CKPT_PAGE_DATA)
		s->frame_page += (uint32_t)((addr - s->addr) >> PAGE_SHIFT);
	s->addr = addr;
}

static int emit(struct seg **out, size_t *nr, size_t *cap, const struct seg *s)
{
	if (GROW(*out, *cap, *nr + 1) < 0)
		return -ENOMEM;
	(*out)[(*nr)++] = *s;
	return 0;
}

/*
 * Lay the entries of an older checkpoint (@b) under the resolved ranges of
 * the newer ones (@a): the result holds @a whole and what of @b @a leaves
 * uncovered. Both inputs are sorted and without overlaps; so is the result.
 */
static int overlay(const struct seg *a, size_t na, const struct ckpt_image_entry *b, size_t nb,
		   uint32_t img, struct seg **ret, size_t *ret_nr)
{
	_cleanup_free_ struct seg *out = NULL;
	size_t nr = 0, cap = 0, i = 0, j = 0;
	uint64_t cover = 0; /* @b below this lies under an @a already emitted */
	struct seg cur = { 0 };
	bool have = false;

	for (;;) {
		if (!have && j < nb) {
			cur = (struct seg){ .addr = b[j].addr, .end = entry_end(&b[j]),
					    .kind = b[j].kind, .img = img, .frame = b[j].frame,
					    .frame_page = b[j].frame_page };
			j++;
			have = true;
		}
		if (have && cur.end <= cover) {
			have = false;
			continue;
		}
		if (have && cur.addr < cover)
			seg_advance(&cur, cover);
		if (!have && i == na)
			break;
		if (i < na && (!have || a[i].addr <= cur.addr)) {
			if (emit(&out, &nr, &cap, &a[i]) < 0)
				return -ENOMEM;
			cover = a[i].end;
			i++;
			continue;
		}
		{
			struct seg piece = cur;

			piece.end = i < na ? MIN(cur.end, a[i].addr) : cur.end;
			if (emit(&out, &nr, &cap, &piece) < 0)
				return -ENOMEM;
			if (piece.end == cur.end)
				have = false;
			else
				seg_advance(&cur, piece.end);
		}
	}
	*ret = TAKE_PTR(out);
	*ret_nr = nr;
	return 0;
}

void ckpt_chain_iter_free(struct ckpt_chain_iter *it)
{
	if (!it)
		return;
	free(it->segs);
	free(it);
}

int chain_resolve(struct ckpt_chain *c, struct seg **ret, size_t *ret_nr)
{
	struct seg *segs = NULL;
	size_t nr = 0;

	for (size_t i = 0; i < c->nr; i++) {
		const struct ckpt_image_index *idx = c->img[i]->idx;
		struct seg *next;
		size_t n;
		int r = overlay(segs, nr, idx->entries, idx->nr_entries, (uint32_t)i, &next, &n);

		if (r < 0) {
			free(segs);
			return r;
		}
		free(segs);
		segs = next;
		nr = n;
	}
	*ret = segs;
	*ret_nr = nr;
	return 0;
}

int ckpt_chain_iter_new(struct ckpt_chain *c, struct ckpt_chain_iter **ret)
{
	_cleanup_(ckpt_chain_iter_freep) struct ckpt_chain_iter *it = NULL;

	it = calloc(1, sizeof(*it));
	if (!it || chain_resolve(c, &it->segs, &it->nr) < 0) {
		pr_err("cannot list the pages of '%s': %s", c->img[0]->path, strerror(ENOMEM));
		return -ENOMEM;
	}
	it->c = c;
	*ret = TAKE_PTR(it);
	return 0;
}

static bool continues(const struct seg *a, const struct seg *b)
{
	if (a->end != b->addr || a->kind != b->kind)
		return false;
	if (a->kind == CKPT_PAGE_ZERO)
		return true;
	return a->img == b->img && a->frame == b->frame &&
	       a->frame_page + ((a->end - a->addr) >> PAGE_SHIFT) == b->frame_page;
}

int ckpt_chain_iter_next(struct ckpt_chain_iter *it, struct ckpt_chain_range *ret)
{
	struct seg s;
	const void *data = NULL;

	while (it->pos < it->nr && it->segs[it->pos].kind == CKPT_PAGE_HOLE)
		it->pos++;
	if (it->pos == it->nr)
		return 0;
	s = it->segs[it->pos++];
	while (it->pos < it->nr && continues(&s, &it->segs[it->pos]))
		s.end = it->segs[it->pos++].end;
	if (s.kind == CKPT_PAGE_DATA) {
		struct ckpt_image *img = it->c->img[s.img];
		struct ckpt_image_entry e = { .addr = s.addr, .frame = s.frame,
					      .frame_page = s.frame_page };
		const unsigned char *p;
		char why[WHY_LEN] = "";
		int r;

		r = image_entry_data(img, &e, &p, why, sizeof(why));
		if (r < 0) {
			pr_err("%s", why[0] ? why : "cannot read pages");
			return r;
		}
		data = p;
	}
	*ret = (struct ckpt_chain_range){
		.addr = s.addr,
		.nr_pages = (s.end - s.addr) >> PAGE_SHIFT,
		.kind = s.kind,
		.data = data,
		.image = s.img,
	};
	return 1;
}
