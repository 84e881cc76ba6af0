/* SPDX-License-Identifier: MIT */
/* pages.idx: the page index (layout in image-internal.h and ckpt-images(5)). */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "image/image-internal.h"
#include "util/util.h"

static inline uint64_t get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline uint32_t get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline void put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static inline void put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static bool all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

const char *ckpt_page_kind_name(enum ckpt_page_kind kind)
{
	switch (kind) {
	case CKPT_PAGE_NONE:
		return "none";
	case CKPT_PAGE_DATA:
		return "data";
	case CKPT_PAGE_ZERO:
		return "zero";
	case CKPT_PAGE_HOLE:
		return "hole";
	case CKPT_PAGE_INHERIT:
		return "inherit";
	}
	return "?";
}

void ckpt_image_index_free(struct ckpt_image_index *idx)
{
	if (!idx)
		return;
	if (idx->raw)
		free(idx->raw); /* the entries are in it */
	else
		free(idx->entries);
	free(idx->frames);
	free(idx);
}

/*
 * On a little-endian host an entry of pages.idx has the layout of struct
 * ckpt_image_entry (its padding where the file has its reserved zero
 * bytes): the entries of a buffer the index owns are used where they lie,
 * checked, not copied (an 8 MB index per GiB of alternating pages is
 * otherwise allocated, cleared and filled again before a lazy process runs).
 */
#if __BYTE_ORDER == __LITTLE_ENDIAN
_Static_assert(sizeof(struct ckpt_image_entry) == IDX_ENTRY_SIZE && sizeof(enum ckpt_page_kind) == 4 &&
		       offsetof(struct ckpt_image_entry, nr_pages) == 8 &&
		       offsetof(struct ckpt_image_entry, kind) == 16 &&
		       offsetof(struct ckpt_image_entry, frame) == 20 &&
		       offsetof(struct ckpt_image_entry, frame_page) == 24,
	       "struct ckpt_image_entry is not the layout of an entry of pages.idx");
#define ENTRIES_IN_PLACE 1
#else
#define ENTRIES_IN_PLACE 0
#endif

static int parse_frames(const unsigned char *p, struct ckpt_image_index *idx, char *why,
			size_t whylen)
{
	uint64_t off = 0, pages = 0;

	for (size_t i = 0; i < idx->nr_frames; i++, p += IDX_FRAME_SIZE) {
		struct ckpt_image_frame *f = &idx->frames[i];

		f->offset = get64(p);
		f->csize = get64(p + 8);
		f->usize = get64(p + 16);
		f->nr_pages = get32(p + 24);
		if (get32(p + 28))
			return why_set(why, whylen, -EBADMSG, "frame %zu: reserved bytes are set", i);
		if (f->nr_pages == 0 || f->nr_pages > CKPT_IMAGE_FRAME_PAGES_MAX)
			return why_set(why, whylen, -EBADMSG, "frame %zu: %" PRIu32 " pages", i,
				       f->nr_pages);
		if (f->usize != (uint64_t)f->nr_pages << PAGE_SHIFT)
			return why_set(why, whylen, -EBADMSG,
				       "frame %zu: %" PRIu64 " bytes for %" PRIu32 " pages", i,
				       f->usize, f->nr_pages);
		if (f->offset != off)
			return why_set(why, whylen, -EBADMSG,
				       "frame %zu: at offset %" PRIu64 ", expected %" PRIu64, i,
				       f->offset, off);
		if (f->csize == 0 || f->csize > frame_bound(f->usize))
			return why_set(why, whylen, -EBADMSG,
				       "frame %zu: compressed size %" PRIu64 " is impossible", i,
				       f->csize);
		off += f->csize;
		pages += f->nr_pages;
	}
	if (off != idx->pages_size)
		return why_set(why, whylen, -EBADMSG,
			       "frames cover %" PRIu64 " bytes of %s, the header says %" PRIu64, off,
			       PAGES_NAME, idx->pages_size);
	if (pages != idx->nr_data_pages)
		return why_set(why, whylen, -EBADMSG,
			       "frames hold %" PRIu64 " pages, the header says %" PRIu64, pages,
			       idx->nr_data_pages);
	return 0;
}

static int parse_entries(const unsigned char *p, struct ckpt_image_index *idx, char *why,
			 size_t whylen)
{
	uint64_t prev_end = 0;

	for (size_t i = 0; i < idx->nr_entries; i++, p += IDX_ENTRY_SIZE) {
		struct ckpt_image_entry *e = &idx->entries[i];
		uint32_t kind = get32(p + 16);

		e->addr = get64(p);
		e->nr_pages = get64(p + 8);
		e->frame = get32(p + 20);
		e->frame_page = get32(p + 24);
		if (get32(p + 28))
			return why_set(why, whylen, -EBADMSG, "entry %zu: reserved bytes are set", i);
		if (e->addr & (CKPT_IMAGE_PAGE_SIZE - 1))
			return why_set(why, whylen, -EBADMSG,
				       "entry %zu: address 0x%" PRIx64 " is not page-aligned", i,
				       e->addr);
		if (e->nr_pages == 0 || e->addr >= CKPT_IMAGE_ADDR_LIMIT ||
		    e->nr_pages > (CKPT_IMAGE_ADDR_LIMIT - e->addr) >> PAGE_SHIFT)
			return why_set(why, whylen, -EBADMSG,
				       "entry %zu: %" PRIu64 " pages at 0x%" PRIx64
				       " are out of range", i, e->nr_pages, e->addr);
		if (i && e->addr < prev_end)
			return why_set(why, whylen, -EBADMSG,
				       "entry %zu at 0x%" PRIx64 " is out of order or overlaps", i,
				       e->addr);
		prev_end = entry_end(e);
		switch (kind) {
		case CKPT_PAGE_DATA:
			e->kind = CKPT_PAGE_DATA;
			if (e->frame >= idx->nr_frames ||
			    e->nr_pages > idx->frames[e->frame].nr_pages ||
			    e->frame_page > idx->frames[e->frame].nr_pages - e->nr_pages)
				return why_set(why, whylen, -EBADMSG,
					       "entry %zu: pages %" PRIu32 "+%" PRIu64
					       " of frame %" PRIu32 " do not exist", i,
					       e->frame_page, e->nr_pages, e->frame);
			break;
		case CKPT_PAGE_ZERO:
		case CKPT_PAGE_HOLE:
			e->kind = (enum ckpt_page_kind)kind;
			if (e->frame || e->frame_page)
				return why_set(why, whylen, -EBADMSG,
					       "entry %zu: a %s range with a frame", i,
					       ckpt_page_kind_name(e->kind));
			break;
		case CKPT_PAGE_INHERIT:
			e->kind = CKPT_PAGE_INHERIT;
			if (idx->version < IDX_VERSION_INHERIT)
				return why_set(why, whylen, -EBADMSG,
					       "entry %zu: pages of another process in an index of version %" PRIu32,
					       i, idx->version);
			if (e->frame == 0 || e->frame > INT32_MAX || e->frame_page)
				return why_set(why, whylen, -EBADMSG,
					       "entry %zu: pages of pid %" PRIu32 " (page %" PRIu32 "): no such process",
					       i, e->frame, e->frame_page);
			if (idx->inherit_pid && idx->inherit_pid != (pid_t)e->frame)
				return why_set(why, whylen, -EBADMSG,
					       "entry %zu: pages of pid %" PRIu32 ", earlier ones of pid %d: one parent only",
					       i, e->frame, (int)idx->inherit_pid);
			idx->inherit_pid = (pid_t)e->frame;
			break;
		default:
			return why_set(why, whylen, -EBADMSG, "entry %zu: unknown kind %" PRIu32, i,
				       kind);
		}
	}
	/* Frames may hold pages no entry lists (hidden by a layer, or dropped by a fold). */
	return 0;
}

/* @own: @buf may be taken (freed with the index) and its entries used in place. */
static int parse_index(const void *buf, size_t len, bool own, char *why, size_t whylen,
		       struct ckpt_image_index **ret)
{
	_cleanup_(ckpt_image_index_freep) struct ckpt_image_index *idx = NULL;
	const unsigned char *p = buf;
	uint64_t nr_entries, nr_frames;
	uint32_t version, page_size;
	int r;

	if (len < IDX_HEADER_SIZE)
		return why_set(why, whylen, -EBADMSG, "truncated: %zu bytes, a header is %d", len,
			       IDX_HEADER_SIZE);
	if (memcmp(p, IDX_MAGIC, IDX_MAGIC_LEN))
		return why_set(why, whylen, -EBADMSG, "bad magic: not a page index");
	version = get32(p + 8);
	if (version != IDX_VERSION && version != IDX_VERSION_INHERIT)
		return why_set(why, whylen, -EPROTONOSUPPORT,
			       "index version %" PRIu32 " is not supported (this ckpt reads versions %d and %d)",
			       version, IDX_VERSION, IDX_VERSION_INHERIT);
	page_size = get32(p + 12);
	if (page_size != CKPT_IMAGE_PAGE_SIZE)
		return why_set(why, whylen, -EBADMSG, "page size %" PRIu32 ", expected %u",
			       page_size, CKPT_IMAGE_PAGE_SIZE);
	nr_entries = get64(p + 16);
	nr_frames = get64(p + 24);
	if (!all_zero(p + 48, 16))
		return why_set(why, whylen, -EBADMSG, "reserved header bytes are set");
	if (nr_entries > (len - IDX_HEADER_SIZE) / IDX_ENTRY_SIZE ||
	    nr_frames > (len - IDX_HEADER_SIZE) / IDX_FRAME_SIZE ||
	    IDX_HEADER_SIZE + nr_entries * IDX_ENTRY_SIZE + nr_frames * IDX_FRAME_SIZE != len)
		return why_set(why, whylen, -EBADMSG,
			       "%zu bytes do not hold the %" PRIu64 " entries and %" PRIu64
			       " frames the header announces", len, nr_entries, nr_frames);
	idx = calloc(1, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	idx->version = version;
	idx->nr_entries = (size_t)nr_entries;
	idx->nr_frames = (size_t)nr_frames;
	idx->pages_size = get64(p + 32);
	idx->nr_data_pages = get64(p + 40);
	if (own && ENTRIES_IN_PLACE && nr_entries && ((uintptr_t)(p + IDX_HEADER_SIZE) % _Alignof(struct ckpt_image_entry)) == 0)
		idx->entries = (struct ckpt_image_entry *)(p + IDX_HEADER_SIZE); /* checked in place by parse_entries */
	else
		idx->entries = calloc(idx->nr_entries ? idx->nr_entries : 1, sizeof(*idx->entries));
	idx->frames = calloc(idx->nr_frames ? idx->nr_frames : 1, sizeof(*idx->frames));
	if (!idx->entries || !idx->frames) {
		if ((const unsigned char *)idx->entries == p + IDX_HEADER_SIZE)
			idx->entries = NULL; /* not taken */
		return -ENOMEM;
	}
	r = parse_frames(p + IDX_HEADER_SIZE + nr_entries * IDX_ENTRY_SIZE, idx, why, whylen);
	if (r == 0)
		r = parse_entries(p + IDX_HEADER_SIZE, idx, why, whylen);
	if ((const unsigned char *)idx->entries == p + IDX_HEADER_SIZE) {
		if (r < 0) {
			idx->entries = NULL; /* the caller's still */
			return r;
		}
		idx->raw = (void *)buf;
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(idx);
	return 0;
}

int ckpt_image_parse_index(const void *buf, size_t len, char *why, size_t whylen,
			   struct ckpt_image_index **ret)
{
	return parse_index(buf, len, false, why, whylen, ret);
}

int index_parse_take(void **buf, size_t len, char *why, size_t whylen, struct ckpt_image_index **ret)
{
	int r = parse_index(*buf, len, true, why, whylen, ret);

	if (r == 0 && (*ret)->raw)
		*buf = NULL; /* the index has it */
	return r;
}

int index_serialize(const struct ckpt_image_entry *e, size_t nr, const struct ckpt_image_frame *f,
		    size_t nf, uint64_t pages_size, void **ret, size_t *ret_len)
{
	size_t len = IDX_HEADER_SIZE + nr * IDX_ENTRY_SIZE + nf * IDX_FRAME_SIZE;
	uint64_t data_pages = 0;
	uint32_t version = IDX_VERSION; /* what older readers read, unless it needs more */
	unsigned char *buf, *p;

	buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < nf; i++)
		data_pages += f[i].nr_pages;
	for (size_t i = 0; i < nr; i++)
		if (e[i].kind == CKPT_PAGE_INHERIT)
			version = IDX_VERSION_INHERIT;
	memcpy(buf, IDX_MAGIC, IDX_MAGIC_LEN);
	put32(buf + 8, version);
	put32(buf + 12, CKPT_IMAGE_PAGE_SIZE);
	put64(buf + 16, nr);
	put64(buf + 24, nf);
	put64(buf + 32, pages_size);
	put64(buf + 40, data_pages);
	p = buf + IDX_HEADER_SIZE;
	for (size_t i = 0; i < nr; i++, p += IDX_ENTRY_SIZE) {
		put64(p, e[i].addr);
		put64(p + 8, e[i].nr_pages);
		put32(p + 16, (uint32_t)e[i].kind);
		put32(p + 20, e[i].kind == CKPT_PAGE_DATA || e[i].kind == CKPT_PAGE_INHERIT ? e[i].frame : 0);
		put32(p + 24, e[i].kind == CKPT_PAGE_DATA ? e[i].frame_page : 0);
	}
	for (size_t i = 0; i < nf; i++, p += IDX_FRAME_SIZE) {
		put64(p, f[i].offset);
		put64(p + 8, f[i].csize);
		put64(p + 16, f[i].usize);
		put32(p + 24, f[i].nr_pages);
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

bool entries_mergeable(const struct ckpt_image_entry *a, const struct ckpt_image_entry *b)
{
	if (a->kind != b->kind || entry_end(a) != b->addr)
		return false;
	if (a->kind == CKPT_PAGE_INHERIT)
		return a->frame == b->frame;
	if (a->kind != CKPT_PAGE_DATA)
		return true;
	return a->frame == b->frame && (uint64_t)a->frame_page + a->nr_pages == b->frame_page;
}

static int cmp_entry(const void *x, const void *y)
{
	const struct ckpt_image_entry *a = x, *b = y;

	return (a->addr > b->addr) - (a->addr < b->addr);
}

int entries_normalize(struct ckpt_image_entry *e, size_t *nr, char *why, size_t whylen)
{
	size_t out = 0;
	bool sorted = true;

	for (size_t i = 1; i < *nr && sorted; i++)
		sorted = e[i - 1].addr < e[i].addr;
	if (!sorted)
		qsort(e, *nr, sizeof(*e), cmp_entry);
	for (size_t i = 0; i < *nr; i++) {
		if (out && e[i].addr < entry_end(&e[out - 1]))
			return why_set(why, whylen, -EINVAL,
				       "the page at 0x%" PRIx64 " was added twice",
				       MAX(e[i].addr, e[out - 1].addr));
		if (out && entries_mergeable(&e[out - 1], &e[i])) {
			e[out - 1].nr_pages += e[i].nr_pages;
			continue;
		}
		e[out++] = e[i];
	}
	*nr = out;
	return 0;
}

const struct ckpt_image_entry *index_lookup(const struct ckpt_image_index *idx, uint64_t addr)
{
	size_t lo = 0, hi = idx->nr_entries;

	/* The last entry that starts at or below @addr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (idx->entries[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	if (addr >= entry_end(&idx->entries[lo - 1]))
		return NULL;
	return &idx->entries[lo - 1];
}

/* @e cut to [from, to), which lies inside it. */
static struct ckpt_image_entry entry_piece(const struct ckpt_image_entry *e, uint64_t from,
					   uint64_t to)
{
	struct ckpt_image_entry p = *e;

	p.addr = from;
	p.nr_pages = (to - from) >> PAGE_SHIFT;
	if (p.kind == CKPT_PAGE_DATA)
		p.frame_page += (uint32_t)((from - e->addr) >> PAGE_SHIFT);
	return p;
}

static int push(struct ckpt_image_entry **v, size_t *nr, size_t *cap,
		const struct ckpt_image_entry *e)
{
	if (*nr && entries_mergeable(&(*v)[*nr - 1], e)) {
		(*v)[*nr - 1].nr_pages += e->nr_pages;
		return 0;
	}
	if (GROW(*v, *cap, *nr + 1) < 0)
		return -ENOMEM;
	(*v)[(*nr)++] = *e;
	return 0;
}

int entries_overlay(const struct ckpt_image_entry *a, size_t na, const struct ckpt_image_entry *b,
		    size_t nb, struct ckpt_image_entry **ret, size_t *ret_nr)
{
	_cleanup_free_ struct ckpt_image_entry *out = NULL;
	size_t nr = 0, cap = 0, i = 0, k = 0;

	for (size_t j = 0; j < nb; j++) {
		uint64_t cur = b[j].addr, end = entry_end(&b[j]);

		/* Every entry of @a that starts before this piece of @b ends. */
		while (k < na && entry_end(&a[k]) <= cur)
			k++;
		for (size_t t = k; t < na && a[t].addr < end; t++) {
			if (a[t].addr > cur) {
				struct ckpt_image_entry p = entry_piece(&b[j], cur, a[t].addr);

				while (i < na && a[i].addr < p.addr)
					if (push(&out, &nr, &cap, &a[i++]) < 0)
						return -ENOMEM;
				if (push(&out, &nr, &cap, &p) < 0)
					return -ENOMEM;
			}
			cur = MAX(cur, entry_end(&a[t]));
		}
		if (cur < end) {
			struct ckpt_image_entry p = entry_piece(&b[j], cur, end);

			while (i < na && a[i].addr < p.addr)
				if (push(&out, &nr, &cap, &a[i++]) < 0)
					return -ENOMEM;
			if (push(&out, &nr, &cap, &p) < 0)
				return -ENOMEM;
		}
	}
	while (i < na)
		if (push(&out, &nr, &cap, &a[i++]) < 0)
			return -ENOMEM;
	if (!out && !(out = malloc(sizeof(*out))))
		return -ENOMEM;
	*ret = TAKE_PTR(out);
	*ret_nr = nr;
	return 0;
}

int entries_clip(struct ckpt_image_entry **e, size_t *nr, const struct ckpt_range *ranges,
		 size_t nranges)
{
	_cleanup_free_ struct ckpt_image_entry *out = NULL;
	size_t n = 0, cap = 0, k = 0;

	for (size_t i = 0; i < *nr; i++) {
		const struct ckpt_image_entry *x = &(*e)[i];
		uint64_t end = entry_end(x);

		while (k < nranges && ranges[k].end <= x->addr)
			k++;
		for (size_t t = k; t < nranges && ranges[t].start < end; t++) {
			struct ckpt_image_entry p =
				entry_piece(x, MAX(x->addr, ranges[t].start), MIN(end, ranges[t].end));

			if (push(&out, &n, &cap, &p) < 0)
				return -ENOMEM;
		}
	}
	if (!out && !(out = malloc(sizeof(*out))))
		return -ENOMEM;
	free(*e);
	*e = TAKE_PTR(out);
	*nr = n;
	return 0;
}
