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
	/*
	 * Per checkpoint: the chain of the parent process in the same tree
	 * checkpoint, where its INHERIT entries resolve (NULL: it has none).
	 */
	struct ckpt_chain **from;
	/*
	 * Every image a resolved range can come from: img[] first, then each
	 * from[i]'s own all[] at from_base[i]. A struct seg's img indexes it.
	 */
	struct ckpt_image **all;
	size_t nr_all;
	size_t *from_base;
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
	for (size_t i = 0; i < c->nr; i++) {
		ckpt_image_close(c->img[i]);
		if (c->from)
			ckpt_chain_close(c->from[i]);
	}
	free(c->img);
	free(c->from);
	free(c->all);
	free(c->from_base);
	free(c);
}

size_t chain_nr_images(const struct ckpt_chain *c)
{
	return c->nr_all;
}

struct ckpt_image *chain_image_at(const struct ckpt_chain *c, size_t i)
{
	return i < c->nr_all ? c->all[i] : NULL;
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
		if (c->from && c->from[i] && chain_moved(c->from[i]))
			return true;
	}
	return false;
}

/* What one ckpt_chain_open() has opened, across the chains of parent processes (INHERIT). */
struct open_ctx {
	pid_t line[TREE_DEPTH_MAX]; /* [0, depth): the pids whose pages lead here, to find a loop */
	size_t images;              /* checkpoints opened so far: a forged tree cannot make it explode */
};

static int chain_open_once(int atfd, const char *rel, const char *path,
			   const struct ckpt_image_open_opts *opts, struct open_ctx *ctx, unsigned int depth,
			   struct ckpt_chain **ret, bool *ret_moved, char *why, size_t whylen);

/* Count the checkpoints of @c into @ctx: more than CHAIN_IMAGES_MAX in one open is refused. */
static int chain_count(const struct ckpt_chain *c, struct open_ctx *ctx, char *why, size_t whylen)
{
	ctx->images += c->nr;
	if (ctx->images > CHAIN_IMAGES_MAX)
		return why_set(why, whylen, -ELOOP,
			       "'%s' needs more than %d checkpoints opened, its parent processes' included",
			       c->img[0]->path, CHAIN_IMAGES_MAX);
	return 0;
}

/*
 * The chain of the parent process that checkpoint @i's INHERIT entries
 * name, in the same tree checkpoint: its proc-PID/ beside this one, or
 * the tree's root (the directory above) when the parent is the root.
 */
static int open_from(struct ckpt_chain *c, size_t i, const struct ckpt_image_open_opts *opts,
		     struct open_ctx *ctx, unsigned int depth, bool *ret_moved, char *why, size_t whylen)
{
	struct ckpt_image *img = c->img[i];
	pid_t pid = img->idx->inherit_pid;
	_cleanup_free_ char *path = NULL;
	char rel[32];
	const char *base = strrchr(img->path, '/');
	struct stat st;
	int r;

	if (pid == img->inv.identity.pid)
		return why_set(why, whylen, -EBADMSG, "'%s' has pages of pid %d, its own process",
			       img->path, (int)pid);
	for (unsigned int k = 0; k < depth; k++)
		if (ctx->line[k] == pid)
			return why_set(why, whylen, -ELOOP,
				       "'%s' has pages of pid %d, whose pages are, through other processes, "
				       "its own: a loop", img->path, (int)pid);
	if (depth + 1 >= TREE_DEPTH_MAX)
		return why_set(why, whylen, -ELOOP,
			       "'%s' has pages of pid %d: more than %d processes in a line hold one "
			       "another's pages", img->path, (int)pid, TREE_DEPTH_MAX);
	ctx->line[depth] = img->inv.identity.pid;
	/* A sub-checkpoint of a tree is proc-PID/ inside the root's. */
	if (strncmp(base ? base + 1 : img->path, "proc-", 5) != 0)
		return why_set(why, whylen, -EBADMSG,
			       "'%s' has pages of pid %d but is not a process of a tree checkpoint",
			       img->path, (int)pid);
	snprintf(rel, sizeof(rel), "../proc-%d", (int)pid);
	if (fstatat(img->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		snprintf(rel, sizeof(rel), "..");
	path = path_join(img->path, rel);
	if (!path)
		return -ENOMEM;
	r = chain_open_once(img->dirfd, rel, path, opts, ctx, depth + 1, &c->from[i], ret_moved, why,
			    whylen);
	if (r < 0) {
		if (depth == 0) /* once, not once per level */
			why_prefix(why, whylen, "'%s' has pages of pid %d: ", img->path, (int)pid);
		return r;
	}
	if (c->from[i]->img[0]->inv.identity.pid != pid) {
		r = why_set(why, whylen, -EBADMSG,
			    "'%s' has pages of pid %d, but '%s' is a checkpoint of pid %d", img->path,
			    (int)pid, path, (int)c->from[i]->img[0]->inv.identity.pid);
		ckpt_chain_close(c->from[i]);
		c->from[i] = NULL;
	}
	return r;
}

/* The chains of the parent process (INHERIT), and the flat list of every image. */
static int open_froms(struct ckpt_chain *c, const struct ckpt_image_open_opts *opts,
		      struct open_ctx *ctx, unsigned int depth, bool *ret_moved, char *why, size_t whylen)
{
	size_t n;
	int r;

	c->from = calloc(c->nr, sizeof(*c->from));
	c->from_base = calloc(c->nr, sizeof(*c->from_base));
	if (!c->from || !c->from_base)
		return -ENOMEM;
	n = c->nr;
	for (size_t i = 0; i < c->nr; i++) {
		if (!c->img[i]->idx->inherit_pid)
			continue;
		r = open_from(c, i, opts, ctx, depth, ret_moved, why, whylen);
		if (r < 0)
			return r;
		c->from_base[i] = n;
		n += c->from[i]->nr_all;
	}
	c->all = malloc(n * sizeof(*c->all));
	if (!c->all)
		return -ENOMEM;
	memcpy(c->all, c->img, c->nr * sizeof(*c->all));
	for (size_t i = 0; i < c->nr; i++)
		if (c->from[i])
			memcpy(c->all + c->from_base[i], c->from[i]->all,
			       c->from[i]->nr_all * sizeof(*c->all));
	c->nr_all = n;
	return 0;
}

static int chain_open_once(int atfd, const char *rel, const char *path,
			   const struct ckpt_image_open_opts *opts, struct open_ctx *ctx, unsigned int depth,
			   struct ckpt_chain **ret, bool *ret_moved, char *why, size_t whylen)
{
	_cleanup_(ckpt_chain_closep) struct ckpt_chain *c = NULL;
	bool from_moved = false;
	int r;

	*ret_moved = false;
	c = calloc(1, sizeof(*c));
	if (!c || GROW(c->img, c->cap, 1) < 0)
		return why_set(why, whylen, -ENOMEM, "cannot open checkpoint chain '%s': %s", path,
			       strerror(ENOMEM));
	r = image_open_at(atfd, rel, path, opts, &c->img[0], why, whylen);
	if (r == 0)
		c->nr = 1;
	while (r == 0 && c->img[c->nr - 1]->inv.parent)
		r = open_parent(c, opts, why, whylen);
	if (r == 0)
		r = chain_count(c, ctx, why, whylen);
	if (r == 0)
		r = open_froms(c, opts, ctx, depth, &from_moved, why, whylen);
	if (r < 0) {
		/* A fold or a removal went on meanwhile: the caller opens it again. */
		*ret_moved = from_moved || ((r == -ENOENT || r == -EBADMSG) && c->nr && chain_moved(c));
		if (r == -ENOMEM && !why[0])
			why_set(why, whylen, r, "cannot open checkpoint chain '%s': %s", path,
				strerror(ENOMEM));
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
		struct open_ctx ctx = { .images = 0 };

		r = chain_open_once(AT_FDCWD, path, path, opts, &ctx, 0, &c, &moved, why, sizeof(why));
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

int ckpt_chain_verify(struct ckpt_chain *c)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < c->nr_all; i++)
		r = ckpt_image_verify(c->all[i]); /* logs the file and the fault */
	return r;
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
		if (r == CKPT_PAGE_INHERIT)
			return ckpt_chain_read_page(c->from[i], addr, buf); /* NONE there: a hole */
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
int chain_overlay(const struct seg *a, size_t na, const struct seg *b, size_t nb,
		  struct seg **ret, size_t *ret_nr)
{
	_cleanup_free_ struct seg *out = NULL;
	size_t nr = 0, cap = 0, i = 0, j = 0;
	uint64_t cover = 0; /* @b below this lies under an @a already emitted */
	struct seg cur = { 0 };
	bool have = false;

	/* @a whole and the pieces of @b, which each @a can split once: rarely more. */
	if (GROW(out, cap, na + nb + 1) < 0)
		return -ENOMEM;
	for (;;) {
		if (!have && j < nb) {
			cur = b[j++];
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

/*
 * [addr, end) of the resolved parent @p (from_base @base): its segs, and a
 * HOLE (of image @img) where it resolves to nothing: the parent saved no
 * content there, so nothing older of this process shows through either.
 */
static int inherit_segs(const struct seg *p, size_t np, size_t *pos, uint64_t addr, uint64_t end,
			size_t base, uint32_t img, struct seg **out, size_t *nr, size_t *cap)
{
	while (*pos < np && p[*pos].end <= addr)
		(*pos)++;
	for (size_t k = *pos; addr < end; k++) {
		struct seg s;

		if (k == np || p[k].addr >= end) {
			s = (struct seg){ .addr = addr, .end = end, .kind = CKPT_PAGE_HOLE, .img = img };
		} else if (p[k].addr > addr) {
			s = (struct seg){ .addr = addr, .end = p[k].addr, .kind = CKPT_PAGE_HOLE, .img = img };
			k--; /* this one next */
		} else {
			s = p[k];
			if (s.addr < addr)
				seg_advance(&s, addr);
			s.end = MIN(s.end, end);
			s.img += (uint32_t)base;
		}
		if (emit(out, nr, cap, &s) < 0)
			return -ENOMEM;
		addr = s.end;
	}
	return 0;
}

/* The first entry of @idx that ends above @lo. */
static size_t first_entry_above(const struct ckpt_image_index *idx, uint64_t lo)
{
	size_t a = 0, b = idx->nr_entries;

	while (a < b) {
		size_t mid = a + (b - a) / 2;

		if (entry_end(&idx->entries[mid]) <= lo)
			a = mid + 1;
		else
			b = mid;
	}
	return a;
}

/*
 * The entries of checkpoint @i that meet [@lo, @hi) as segs cut to it,
 * INHERIT replaced by what the parent resolves to there.
 */
static int image_segs(struct ckpt_chain *c, size_t i, uint64_t lo, uint64_t hi, struct seg **ret,
		      size_t *ret_nr)
{
	const struct ckpt_image_index *idx = c->img[i]->idx;
	_cleanup_free_ struct seg *out = NULL, *p = NULL;
	size_t first = first_entry_above(idx, lo), last = first, nr = 0, cap, np = 0, pos = 0;
	int r;

	while (last < idx->nr_entries && idx->entries[last].addr < hi)
		last++;
	if (c->from[i] && (r = chain_resolve_in(c->from[i], lo, hi, &p, &np)) < 0)
		return r;
	/* One seg an entry, and for INHERIT as many as the parent has there: no growing copy of a long list. */
	cap = last - first + (c->from[i] ? np + last - first : 0);
	if (cap && !(out = malloc(cap * sizeof(*out))))
		return -ENOMEM;
	for (size_t k = first; k < last; k++) {
		const struct ckpt_image_entry *e = &idx->entries[k];
		struct seg s = { .addr = e->addr, .end = MIN(entry_end(e), hi), .kind = e->kind,
				 .img = (uint32_t)i, .frame = e->frame, .frame_page = e->frame_page };

		if (s.addr < lo)
			seg_advance(&s, lo);
		if (e->kind == CKPT_PAGE_INHERIT)
			r = inherit_segs(p, np, &pos, s.addr, s.end, c->from_base[i], (uint32_t)i, &out,
					 &nr, &cap);
		else
			r = emit(&out, &nr, &cap, &s);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(out);
	*ret_nr = nr;
	return 0;
}

int chain_resolve_in(struct ckpt_chain *c, uint64_t lo, uint64_t hi, struct seg **ret, size_t *ret_nr)
{
	struct seg *segs = NULL;
	size_t nr = 0;

	for (size_t i = 0; i < c->nr; i++) {
		_cleanup_free_ struct seg *b = NULL;
		struct seg *next;
		size_t n, nb;
		int r = image_segs(c, i, lo, hi, &b, &nb);

		if (r == 0 && i == 0) {
			/* Nothing newer to lay it under. */
			segs = TAKE_PTR(b);
			nr = nb;
			continue;
		}
		if (r == 0)
			r = chain_overlay(segs, nr, b, nb, &next, &n);
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

int chain_resolve(struct ckpt_chain *c, struct seg **ret, size_t *ret_nr)
{
	return chain_resolve_in(c, 0, UINT64_MAX, ret, ret_nr);
}

int ckpt_chain_list_in(struct ckpt_chain *c, uint64_t lo, uint64_t hi, struct ckpt_chain_range **ret,
		       size_t *ret_nr)
{
	_cleanup_free_ struct seg *segs = NULL;
	_cleanup_free_ struct ckpt_chain_range *out = NULL;
	size_t nsegs, nr = 0;

	if (chain_resolve_in(c, lo, hi, &segs, &nsegs) < 0)
		goto oom;
	out = malloc(MAX(nsegs, 1) * sizeof(*out)); /* at most one range a seg */
	if (!out)
		goto oom;
	for (size_t i = 0; i < nsegs; i++) {
		const struct seg *s = &segs[i];
		uint64_t n = (s->end - s->addr) >> PAGE_SHIFT;
		struct ckpt_chain_range *last = nr ? &out[nr - 1] : NULL;

		if (s->kind != CKPT_PAGE_DATA && s->kind != CKPT_PAGE_ZERO)
			continue;
		if (last && last->kind == s->kind &&
		    last->addr + (last->nr_pages << PAGE_SHIFT) == s->addr) {
			last->nr_pages += n;
			continue;
		}
		out[nr++] = (struct ckpt_chain_range){ .addr = s->addr, .nr_pages = n, .kind = s->kind,
						       .image = s->img };
	}
	*ret = TAKE_PTR(out);
	*ret_nr = nr;
	return 0;
oom:
	pr_err("cannot list the pages of '%s': %s", c->img[0]->path, strerror(ENOMEM));
	return -ENOMEM;
}

int ckpt_chain_list(struct ckpt_chain *c, struct ckpt_chain_range **ret, size_t *ret_nr)
{
	return ckpt_chain_list_in(c, 0, UINT64_MAX, ret, ret_nr);
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
		struct ckpt_image *img = it->c->all[s.img];
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
