/* SPDX-License-Identifier: MIT */
/*
 * The local page source: a checkpoint directory and its chain, read with
 * lib/image. At open it resolves the chain into ranges (without reading any
 * page) and takes the address space of the checkpoint from mm.json.
 */
#define LOG_AREA "net"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <ckpt/image.h>

#include "net/net-internal.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#define PAGE_SHIFT 12
#define MM_DOC	   "mm.json"

struct extent {
	uint64_t start, end;
};

struct local {
	struct ckpt_chain *chain;
	char *dir;
	struct ckpt_page_source_range *ranges;
	size_t nr_ranges;
	struct extent *ext; /* sorted, disjoint, not adjacent */
	size_t nr_ext;
	struct extent *vmas; /* the mappings of mm.json, sorted */
	size_t nr_vmas;
	char *summary;
	size_t summary_len;
	uint64_t data_pages, zero_pages;
	struct ckpt_provenance prov;
	bool resolved; /* ranges, ext (with them) and summary are made */
};

static void local_free(void *priv)
{
	struct local *l = priv;

	if (!l)
		return;
	ckpt_chain_close(l->chain);
	free(l->dir);
	free(l->ranges);
	free(l->ext);
	free(l->vmas);
	free(l->summary);
	free(l);
}

CKPT_DEFINE_CLEANUP(struct local, local_free)

/* ---- resolution ---- */

/* What the chain resolves to (pages of a parent process included), kept for listing. */
static int resolve(struct local *l, char *why, size_t whylen)
{
	_cleanup_free_ struct ckpt_chain_range *res = NULL;
	size_t nres;
	int r = ckpt_chain_list(l->chain, &res, &nres);

	if (r < 0)
		return net_why(why, whylen, r, "%s", ""); /* logged by lib/image */
	l->ranges = malloc(MAX(nres, 1) * sizeof(*l->ranges));
	if (!l->ranges)
		return net_why(why, whylen, -ENOMEM, "cannot resolve the pages of '%s': %s", l->dir,
			       strerror(ENOMEM));
	for (size_t i = 0; i < nres; i++) {
		if (res[i].kind == CKPT_PAGE_DATA)
			l->data_pages += res[i].nr_pages;
		else
			l->zero_pages += res[i].nr_pages;
		l->ranges[i] = (struct ckpt_page_source_range){
			.addr = res[i].addr, .nr_pages = res[i].nr_pages, .kind = res[i].kind };
	}
	l->nr_ranges = nres;
	return 0;
}

/* ---- the address space ---- */

static int hex_member(json_object *o, const char *key, uint64_t *ret)
{
	json_object *v;
	const char *s;
	char *end;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return -EBADMSG;
	s = json_object_get_string(v);
	if (strncmp(s, "0x", 2) != 0 || !s[2])
		return -EBADMSG;
	errno = 0;
	*ret = strtoull(s + 2, &end, 16);
	return errno || *end ? -EBADMSG : 0;
}

static int cmp_extent(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static bool sorted(const struct extent *e, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (e[i].start < e[i - 1].start)
			return false;
	return true;
}

/* Merge the sorted runs [0, @mid) and [@mid, @n) of @e in place; false (nothing done) if either is not sorted. */
static bool merge_sorted(struct extent *e, size_t mid, size_t n)
{
	_cleanup_free_ struct extent *a = NULL;
	size_t i = 0, j = mid, k = 0;

	if (!sorted(e, mid) || !sorted(e + mid, n - mid))
		return false;
	if (!mid || mid == n || e[mid - 1].start <= e[mid].start)
		return true; /* one after the other already */
	a = malloc(mid * sizeof(*a));
	if (!a)
		return false;
	memcpy(a, e, mid * sizeof(*a));
	while (i < mid && j < n)
		e[k++] = a[i].start <= e[j].start ? a[i++] : e[j++];
	while (i < mid)
		e[k++] = a[i++];
	return true; /* what is left of the second run is in place */
}

/* The mappings of mm.json, sorted. Returns -EBADMSG (already logged when lib/image saw it). */
static int read_vmas(struct local *l, char *why, size_t whylen)
{
	struct ckpt_image *img = ckpt_chain_image(l->chain, 0);
	_cleanup_json_ json_object *mm = NULL;
	json_object *vmas = NULL;
	size_t nv = 0;
	int r;

	if (ckpt_image_has_file(img, MM_DOC)) {
		r = ckpt_image_get_json(img, MM_DOC, &mm);
		if (r < 0)
			return net_why(why, whylen, r, "%s", ""); /* logged by lib/image */
		if (!json_object_object_get_ex(mm, "vmas", &vmas) ||
		    !json_object_is_type(vmas, json_type_array))
			return net_why(why, whylen, -EBADMSG, "'%s/%s' has no array \"vmas\"",
				       l->dir, MM_DOC);
		nv = json_object_array_length(vmas);
	}
	l->vmas = malloc(MAX(nv, 1) * sizeof(*l->vmas));
	if (!l->vmas)
		return net_why(why, whylen, -ENOMEM, "cannot read '%s': %s", l->dir, strerror(ENOMEM));
	for (size_t i = 0; i < nv; i++) {
		json_object *v = json_object_array_get_idx(vmas, i);
		struct extent e;

		if (!json_object_is_type(v, json_type_object) ||
		    hex_member(v, "start", &e.start) < 0 || hex_member(v, "end", &e.end) < 0 ||
		    e.end <= e.start || ((e.start | e.end) & (CKPT_PAGE_SOURCE_PAGE_SIZE - 1)))
			return net_why(why, whylen, -EBADMSG,
				       "'%s/%s': vmas[%zu] has no valid start and end", l->dir,
				       MM_DOC, i);
		l->vmas[i] = e;
	}
	l->nr_vmas = nv;
	/* As ckpt writes them, sorted already. */
	if (!sorted(l->vmas, nv))
		qsort(l->vmas, nv, sizeof(*l->vmas), cmp_extent);
	return 0;
}

/* Where a page may be read: the mappings and (once resolved) the ranges, merged. */
static int address_space(struct local *l, char *why, size_t whylen)
{
	size_t nr = l->resolved ? l->nr_ranges : 0, n = 0;

	free(l->ext);
	l->ext = malloc((l->nr_vmas + nr + 1) * sizeof(*l->ext));
	if (!l->ext)
		return net_why(why, whylen, -ENOMEM, "cannot read '%s': %s", l->dir,
			       strerror(ENOMEM));
	memcpy(l->ext, l->vmas, l->nr_vmas * sizeof(*l->ext));
	n = l->nr_vmas;
	for (size_t i = 0; i < nr; i++)
		l->ext[n++] =
			(struct extent){l->ranges[i].addr,
					l->ranges[i].addr + (l->ranges[i].nr_pages << PAGE_SHIFT)};
	/* Both lists are sorted: merge them. */
	if (!merge_sorted(l->ext, l->nr_vmas, n))
		qsort(l->ext, n, sizeof(*l->ext), cmp_extent);
	l->nr_ext = 0;
	for (size_t i = 0; i < n; i++) {
		struct extent *last = l->nr_ext ? &l->ext[l->nr_ext - 1] : NULL;

		if (last && l->ext[i].start <= last->end) {
			last->end = MAX(last->end, l->ext[i].end);
			continue;
		}
		l->ext[l->nr_ext++] = l->ext[i];
	}
	return 0;
}

/* The extent that holds @addr, or NULL. */
static const struct extent *extent_find(const struct local *l, uint64_t addr)
{
	size_t lo = 0, hi = l->nr_ext;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->ext[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->nr_ext && l->ext[lo].start <= addr ? &l->ext[lo] : NULL;
}

/* ---- the summary ---- */

/* Who can have written the chain, as the summary tells a client. */
static json_object *provenance_json(const struct ckpt_provenance *p)
{
	static const char *const kinds[] = { [CKPT_PROV_ROOT] = "root", [CKPT_PROV_USER] = "user",
					     [CKPT_PROV_NONE] = "none" };
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "kind", json_object_new_string(kinds[p->kind]));
	if (p->kind == CKPT_PROV_USER) {
		json_object_object_add(o, "uid", json_object_new_int64(p->uid));
		json_object_object_add(o, "gid", json_object_new_int64(p->gid));
	}
	json_object_object_add(o, "why", json_object_new_string(p->why));
	return o;
}

static int make_summary(struct local *l, char *why, size_t whylen)
{
	struct ckpt_image *img0 = ckpt_chain_image(l->chain, 0);
	const struct ckpt_image_inventory *inv = ckpt_image_inventory(img0);
	_cleanup_json_ json_object *o = json_object_new_object();
	json_object *proc = json_object_new_object(), *chain = json_object_new_array();
	json_object *pages = json_object_new_object();
	char id[CKPT_IMAGE_ID_STR_LEN + 1];
	const char *text;

	if (!o || !proc || !chain || !pages) {
		json_object_put(proc);
		json_object_put(chain);
		json_object_put(pages);
		return net_why(why, whylen, -ENOMEM, "cannot summarize '%s'", l->dir);
	}
	json_object_object_add(o, "format", json_object_new_string(CKPT_IMAGE_FORMAT));
	json_object_object_add(o, "format_version", json_object_new_int(inv->format_version));
	json_object_object_add(o, "ckpt_version", json_object_new_string(inv->ckpt_version));
	json_object_object_add(o, "id", json_object_new_string(ckpt_image_id_format(&inv->id, id)));
	json_object_object_add(o, "created_unix_ns", json_object_new_int64(inv->created_ns));
	json_object_object_add(o, "created_utc", json_object_new_string(inv->created_utc));
	json_object_object_add(
		o, "kind",
		json_object_new_string(inv->kind == CKPT_IMAGE_DELTA ? "delta" : "full"));
	json_object_object_add(proc, "pid", json_object_new_int(inv->identity.pid));
	json_object_object_add(proc, "start_time",
			       json_object_new_uint64(inv->identity.start_time));
	json_object_object_add(proc, "boot_id", json_object_new_string(inv->identity.boot_id));
	json_object_object_add(proc, "exe",
			       json_object_new_string(inv->identity.exe ? inv->identity.exe : ""));
	json_object_object_add(o, "process", proc);
	for (size_t i = 0; i < ckpt_chain_length(l->chain); i++) {
		struct ckpt_image *img = ckpt_chain_image(l->chain, i);
		const struct ckpt_image_inventory *ci = ckpt_image_inventory(img);
		const struct ckpt_image_index *idx = ckpt_image_index(img);
		json_object *c = json_object_new_object();

		json_object_object_add(
			c, "kind",
			json_object_new_string(ci->kind == CKPT_IMAGE_DELTA ? "delta" : "full"));
		json_object_object_add(c, "created_utc", json_object_new_string(ci->created_utc));
		json_object_object_add(c, "data_pages", json_object_new_uint64(idx->nr_data_pages));
		json_object_object_add(c, "pages_bytes", json_object_new_uint64(idx->pages_size));
		json_object_array_add(chain, c);
	}
	json_object_object_add(o, "chain", chain);
	json_object_object_add(pages, "data", json_object_new_uint64(l->data_pages));
	json_object_object_add(pages, "zero", json_object_new_uint64(l->zero_pages));
	json_object_object_add(pages, "ranges", json_object_new_uint64(l->nr_ranges));
	json_object_object_add(o, "pages", pages);
	json_object_object_add(o, "provenance", provenance_json(&l->prov));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							 JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text || !(l->summary = strdup(text)))
		return net_why(why, whylen, -ENOMEM, "cannot summarize '%s'", l->dir);
	l->summary_len = strlen(l->summary);
	return 0;
}

/* The ranges, the address space with them and the summary, made once. */
static int local_resolve(struct local *l, char *why, size_t whylen)
{
	int r;

	if (l->resolved)
		return 0;
	r = resolve(l, why, whylen);
	if (r == 0) {
		l->resolved = true;
		r = address_space(l, why, whylen);
	}
	if (r == 0)
		r = make_summary(l, why, whylen);
	if (r < 0) {
		/* All or nothing: a later call tries again. */
		l->resolved = false;
		free(l->ranges);
		l->ranges = NULL;
		l->nr_ranges = 0;
		l->data_pages = l->zero_pages = 0;
	}
	return r;
}

/* ---- operations ---- */

static int local_get_doc(void *priv, const char *name, char **ret, size_t *ret_len,
			 struct ckpt_page_source_stats *st, char *why, size_t whylen)
{
	struct local *l = priv;
	struct ckpt_image *img = ckpt_chain_image(l->chain, 0);
	void *buf = NULL;
	size_t len = 0;
	int r;

	if (strcmp(name, CKPT_PAGE_SOURCE_SUMMARY) == 0) {
		if ((r = local_resolve(l, why, whylen)) < 0)
			return r;
		*ret = strdup(l->summary);
		if (!*ret)
			return net_why(why, whylen, -ENOMEM, "cannot copy the summary: %s",
				       strerror(ENOMEM));
		*ret_len = l->summary_len;
		return 0;
	}
	if (strcmp(name, "pages.idx") == 0 || strcmp(name, "pages.zst") == 0 ||
	    !ckpt_image_has_file(img, name))
		return net_why(why, whylen, -ENOENT, "no document '%s' in '%s'", name, l->dir);
	r = ckpt_image_read_file(img, name, &buf, &len);
	if (r < 0)
		return net_why(why, whylen, r, "%s", ""); /* logged by lib/image */
	if (len > CKPT_PAGE_SOURCE_DOC_MAX) {
		free(buf);
		return net_why(why, whylen, -EFBIG,
			       "document '%s' of '%s' has %zu bytes, more than %u", name, l->dir,
			       len, CKPT_PAGE_SOURCE_DOC_MAX);
	}
	st->bytes_in += len;
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int local_read_pages(void *priv, uint64_t addr, uint32_t nr, uint8_t *kinds, void *buf,
			    struct ckpt_page_source_stats *st, char *why, size_t whylen)
{
	struct local *l = priv;
	const struct extent *e = extent_find(l, addr);
	uint64_t end = addr + ((uint64_t)nr << PAGE_SHIFT);
	int data = 0, r;

	/* Not resolved yet, it knows the mappings only: a range may lie beyond them. */
	if ((!e || e->end < end) && !l->resolved) {
		if ((r = local_resolve(l, why, whylen)) < 0)
			return r;
		e = extent_find(l, addr);
	}
	if (!e || e->end < end)
		return net_why(why, whylen, -EFAULT,
			       "cannot read 0x%" PRIx64 "+%" PRIu32 " pages: 0x%" PRIx64
			       " is outside the address space of checkpoint '%s'",
			       addr, nr, e ? e->end : addr, l->dir);
	for (uint32_t i = 0; i < nr; i++) {
		int k = ckpt_chain_read_page(l->chain, addr + ((uint64_t)i << PAGE_SHIFT),
					     (char *)buf + ((size_t)i << PAGE_SHIFT));

		if (k < 0)
			return net_why(why, whylen, k, "%s", ""); /* logged by lib/image */
		kinds[i] = (uint8_t)k;
		if (k == CKPT_PAGE_DATA)
			data++;
	}
	st->bytes_in += (uint64_t)data << PAGE_SHIFT;
	return data;
}

static int local_list_ranges(void *priv, struct ckpt_page_source_range **ret, size_t *ret_nr,
			     struct ckpt_page_source_stats *st, char *why, size_t whylen)
{
	struct local *l = priv;
	struct ckpt_page_source_range *copy;
	int r = local_resolve(l, why, whylen);

	if (r < 0)
		return r;
	copy = malloc(MAX(l->nr_ranges, 1) * sizeof(*copy));
	if (!copy)
		return net_why(why, whylen, -ENOMEM, "cannot list the ranges of '%s': %s", l->dir,
			       strerror(ENOMEM));
	if (l->nr_ranges)
		memcpy(copy, l->ranges, l->nr_ranges * sizeof(*copy));
	*ret = copy;
	*ret_nr = l->nr_ranges;
	return 0;
}

static int local_list_ranges_in(void *priv, uint64_t lo, uint64_t hi, struct ckpt_page_source_range **ret,
				size_t *ret_nr, struct ckpt_page_source_stats *st, char *why, size_t whylen)
{
	struct local *l = priv;
	_cleanup_free_ struct ckpt_chain_range *res = NULL;
	struct ckpt_page_source_range *out;
	size_t nres;
	int r;

	(void)st;
	if (l->resolved) {
		r = pagesrc_ranges_in(l->ranges, l->nr_ranges, lo, hi, ret, ret_nr);
		return r < 0 ? net_why(why, whylen, r, "cannot list the ranges of '%s': %s", l->dir,
				       strerror(-r))
			     : 0;
	}
	/* Only the entries in [lo, hi) are looked at. */
	r = ckpt_chain_list_in(l->chain, lo, hi, &res, &nres);
	if (r < 0)
		return net_why(why, whylen, r, "%s", ""); /* logged by lib/image */
	out = malloc(MAX(nres, 1) * sizeof(*out));
	if (!out)
		return net_why(why, whylen, -ENOMEM, "cannot list the ranges of '%s': %s", l->dir,
			       strerror(ENOMEM));
	for (size_t i = 0; i < nres; i++)
		out[i] = (struct ckpt_page_source_range){ .addr = res[i].addr, .nr_pages = res[i].nr_pages,
							  .kind = res[i].kind };
	*ret = out;
	*ret_nr = nres;
	return 0;
}

static const struct pagesrc_ops local_ops = {
	.get_doc = local_get_doc,
	.read_pages = local_read_pages,
	.list_ranges = local_list_ranges,
	.list_ranges_in = local_list_ranges_in,
	.free = local_free,
};

struct ckpt_chain *ckpt_page_source_chain(struct ckpt_page_source *src)
{
	return src->ops == &local_ops ? ((struct local *)src->priv)->chain : NULL;
}

struct ckpt_image *ckpt_page_source_image(struct ckpt_page_source *src)
{
	struct ckpt_chain *c = ckpt_page_source_chain(src);

	return c ? ckpt_chain_image(c, 0) : NULL;
}

int pagesrc_local_ranges(struct ckpt_page_source *src, const struct ckpt_page_source_range **ret,
			 size_t *ret_nr)
{
	struct local *l = src->priv;
	char why[WHY_LEN] = "";
	int r;

	if (src->ops != &local_ops)
		return -EOPNOTSUPP;
	if ((r = local_resolve(l, why, sizeof(why))) < 0) {
		if (why[0])
			pr_err("%s", why);
		return r;
	}
	*ret = l->ranges;
	*ret_nr = l->nr_ranges;
	return 0;
}

int ckpt_page_source_open_local(const char *dir, const struct ckpt_page_source_opts *opts,
				struct ckpt_page_source **ret)
{
	struct ckpt_image_open_opts io = {.cache_frames = opts ? opts->cache_frames : 0};
	_cleanup_(local_freep) struct local *l = NULL;
	char why[WHY_LEN] = "";
	int r;

	if (!dir || !*dir) {
		pr_err("cannot open a page source: empty directory");
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->dir = strdup(dir))) {
		pr_err("cannot open page source '%s': %s", dir, strerror(ENOMEM));
		return -ENOMEM;
	}
	r = ckpt_chain_open(dir, &io, &l->chain);
	if (r < 0)
		return r; /* logged by lib/image */
	(void)ckpt_chain_provenance(l->chain, &l->prov); /* NONE says why: the caller judges */
	r = read_vmas(l, why, sizeof(why));
	if (r == 0)
		r = opts && opts->defer_resolve ? address_space(l, why, sizeof(why))
						: local_resolve(l, why, sizeof(why));
	if (r == 0)
		r = pagesrc_new(&local_ops, l, dir, false, ret);
	if (r == 0)
		(*ret)->prov = l->prov;
	if (r < 0) {
		if (why[0])
			pr_err("cannot open page source '%s': %s", dir, why);
		else if (r == -ENOMEM)
			pr_err("cannot open page source '%s': %s", dir, strerror(ENOMEM));
		return r;
	}
	TAKE_PTR(l);
	return 0;
}
