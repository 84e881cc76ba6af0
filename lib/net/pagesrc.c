/* SPDX-License-Identifier: MIT */
/* The page-source object: argument checks, the lock, statistics, logging. */
#define LOG_AREA "net"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "net/net-internal.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

int pagesrc_new(const struct pagesrc_ops *ops, void *priv, const char *name, bool remote,
		struct ckpt_page_source **ret)
{
	struct ckpt_page_source *s = calloc(1, sizeof(*s));

	if (!s || !(s->name = strdup(name))) {
		free(s);
		return -ENOMEM;
	}
	s->ops = ops;
	s->priv = priv;
	s->remote = remote;
	pthread_mutex_init(&s->lock, NULL);
	*ret = s;
	return 0;
}

void ckpt_page_source_close(struct ckpt_page_source *src)
{
	if (!src)
		return;
	src->ops->free(src->priv);
	free(src->all);
	pthread_mutex_destroy(&src->lock);
	free(src->name);
	free(src);
}

const char *ckpt_page_source_name(const struct ckpt_page_source *src)
{
	return src->name;
}

bool ckpt_page_source_is_remote(const struct ckpt_page_source *src)
{
	return src->remote;
}

void ckpt_page_source_get_stats(struct ckpt_page_source *src, struct ckpt_page_source_stats *ret)
{
	pthread_mutex_lock(&src->lock);
	*ret = src->st;
	pthread_mutex_unlock(&src->lock);
}

/* Account for one call that started at @t0 and returned @r. Locked. */
static void account(struct ckpt_page_source *src, uint64_t t0, int r)
{
	src->st.calls++;
	if (r < 0)
		src->st.errors++;
	src->st.busy_ns += now_ns() - t0;
}

int pagesrc_get_doc(struct ckpt_page_source *src, const char *name, char **ret, size_t *ret_len,
		    char *why, size_t whylen)
{
	uint64_t t0 = now_ns();
	int r;

	pthread_mutex_lock(&src->lock);
	if (!name || !proto_doc_name_valid(name, strlen(name)))
		r = net_why(why, whylen, -EINVAL, "invalid document name '%s'", name ? name : "");
	else
		r = src->ops->get_doc(src->priv, name, ret, ret_len, &src->st, why, whylen);
	account(src, t0, r);
	pthread_mutex_unlock(&src->lock);
	return r;
}

/* The arguments of a read: aligned, 1 to BATCH_MAX pages, below the address limit. */
static int read_args(uint64_t addr, size_t nr, char *why, size_t whylen)
{
	if (addr & (CKPT_PAGE_SOURCE_PAGE_SIZE - 1))
		return net_why(why, whylen, -EINVAL, "cannot read 0x%" PRIx64 ": not page-aligned",
			       addr);
	if (nr == 0 || nr > CKPT_PAGE_SOURCE_BATCH_MAX)
		return net_why(why, whylen, -EINVAL,
			       "cannot read %zu pages at once: 1 to %u allowed", nr,
			       CKPT_PAGE_SOURCE_BATCH_MAX);
	if (addr >= PROTO_ADDR_LIMIT || nr * CKPT_PAGE_SOURCE_PAGE_SIZE > PROTO_ADDR_LIMIT - addr)
		return net_why(why, whylen, -EFAULT,
			       "cannot read 0x%" PRIx64 "+%zu pages: beyond the user address space",
			       addr, nr);
	return 0;
}

int pagesrc_read(struct ckpt_page_source *src, uint64_t addr, size_t nr, uint8_t *kinds, void *buf,
		 char *why, size_t whylen)
{
	uint64_t t0 = now_ns();
	int r = read_args(addr, nr, why, whylen);

	pthread_mutex_lock(&src->lock);
	if (r == 0)
		r = src->ops->read_pages(src->priv, addr, (uint32_t)nr, kinds, buf, &src->st, why,
					 whylen);
	if (r >= 0) {
		src->st.pages += nr;
		for (size_t i = 0; i < nr; i++) {
			if (kinds[i] == CKPT_PAGE_DATA)
				src->st.data_pages++;
			else if (kinds[i] == CKPT_PAGE_ZERO)
				src->st.zero_pages++;
			else
				src->st.none_pages++;
		}
	}
	account(src, t0, r);
	pthread_mutex_unlock(&src->lock);
	return r;
}

/* pagesrc_get_doc, its error logged once, naming the source. */
static int get_doc_logged(struct ckpt_page_source *src, const char *name, char **ret, size_t *ret_len)
{
	char why[WHY_LEN] = "";
	int r = pagesrc_get_doc(src, name, ret, ret_len, why, sizeof(why));

	/* A document it does not have is the caller's to judge (an optional one: tree.json). */
	if (r == -ENOENT && why[0])
		pr_debug("%s: %s", src->name, why);
	else if (r < 0 && why[0])
		pr_err("%s: %s", src->name, why);
	return r;
}

int ckpt_page_source_get_json(struct ckpt_page_source *src, const char *name,
			      struct json_object **ret)
{
	_cleanup_free_ char *buf = NULL;
	struct json_tokener *tok;
	struct json_object *o;
	size_t len = 0;
	int r;

	r = get_doc_logged(src, name, &buf, &len);
	if (r < 0)
		return r;
	tok = json_tokener_new();
	if (!tok) {
		pr_err("%s: cannot parse '%s': %s", src->name, name, strerror(ENOMEM));
		return -ENOMEM;
	}
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (o && json_tokener_get_error(tok) == json_tokener_success) {
		for (size_t at = json_tokener_get_parse_end(tok); at < len; at++)
			if (!strchr(" \t\r\n", buf[at])) {
				json_object_put(o);
				o = NULL;
				break;
			}
	} else if (o) {
		json_object_put(o);
		o = NULL;
	}
	if (!o) {
		pr_err("%s: document '%s' is not one valid JSON value", src->name, name);
		json_tokener_free(tok);
		return -EBADMSG;
	}
	json_tokener_free(tok);
	*ret = o;
	return 0;
}

int ckpt_page_source_get_blob(struct ckpt_page_source *src, const char *name, uint64_t size, void **ret)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = get_doc_logged(src, name, &buf, &len);
	if (r < 0)
		return r;
	if (len != size) {
		pr_err("%s: '%s' has %zu bytes, the checkpoint says %" PRIu64, src->name, name, len, size);
		free(buf);
		return -EBADMSG;
	}
	*ret = buf;
	return 0;
}

int ckpt_page_source_read_pages(struct ckpt_page_source *src, uint64_t addr, size_t nr_pages,
				uint8_t *ret_kinds, void *buf)
{
	char why[WHY_LEN] = "";
	int r = pagesrc_read(src, addr, nr_pages, ret_kinds, buf, why, sizeof(why));

	/* A document it does not have is the caller's to judge (an optional one: tree.json). */
	if (r == -ENOENT && why[0])
		pr_debug("%s: %s", src->name, why);
	else if (r < 0 && why[0])
		pr_err("%s: %s", src->name, why);
	return r;
}

int ckpt_page_source_read_page(struct ckpt_page_source *src, uint64_t addr, void *buf)
{
	uint8_t kind;
	int r = ckpt_page_source_read_pages(src, addr, 1, &kind, buf);

	return r < 0 ? r : kind;
}

int ckpt_page_source_list_ranges(struct ckpt_page_source *src, struct ckpt_page_source_range **ret,
				 size_t *ret_nr)
{
	char why[WHY_LEN] = "";
	uint64_t t0 = now_ns();
	int r;

	pthread_mutex_lock(&src->lock);
	r = src->ops->list_ranges(src->priv, ret, ret_nr, &src->st, why, sizeof(why));
	account(src, t0, r);
	pthread_mutex_unlock(&src->lock);
	/* A document it does not have is the caller's to judge (an optional one: tree.json). */
	if (r == -ENOENT && why[0])
		pr_debug("%s: %s", src->name, why);
	else if (r < 0 && why[0])
		pr_err("%s: %s", src->name, why);
	return r;
}

int pagesrc_ranges_in(const struct ckpt_page_source_range *r, size_t nr, uint64_t lo, uint64_t hi,
		      struct ckpt_page_source_range **ret, size_t *ret_nr)
{
	size_t a = 0, b = nr, n = 0;
	struct ckpt_page_source_range *out;

	/* The first that ends above @lo (the ends ascend too). */
	while (a < b) {
		size_t mid = a + (b - a) / 2;

		if (r[mid].addr + (r[mid].nr_pages << 12) <= lo)
			a = mid + 1;
		else
			b = mid;
	}
	for (b = a; b < nr && r[b].addr < hi; b++)
		;
	out = malloc(MAX(b - a, 1) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = a; i < b; i++) {
		uint64_t start = MAX(r[i].addr, lo), end = MIN(r[i].addr + (r[i].nr_pages << 12), hi);

		out[n++] = (struct ckpt_page_source_range){ .addr = start, .nr_pages = (end - start) >> 12,
							    .kind = r[i].kind };
	}
	*ret = out;
	*ret_nr = n;
	return 0;
}

/* Without an operation of its own: the whole list, fetched once, cut here. */
static int ranges_in_cached(struct ckpt_page_source *src, uint64_t lo, uint64_t hi,
			    struct ckpt_page_source_range **ret, size_t *ret_nr, char *why, size_t whylen)
{
	int r;

	if (!src->have_all) {
		r = src->ops->list_ranges(src->priv, &src->all, &src->nr_all, &src->st, why, whylen);
		if (r < 0)
			return r;
		src->have_all = true;
	}
	r = pagesrc_ranges_in(src->all, src->nr_all, lo, hi, ret, ret_nr);
	return r < 0 ? net_why(why, whylen, r, "cannot list the ranges of %s: %s", src->name, strerror(-r)) : 0;
}

int ckpt_page_source_list_ranges_in(struct ckpt_page_source *src, uint64_t lo, uint64_t hi,
				    struct ckpt_page_source_range **ret, size_t *ret_nr)
{
	char why[WHY_LEN] = "";
	uint64_t t0 = now_ns();
	int r;

	if (lo >= hi || ((lo | hi) & (CKPT_PAGE_SOURCE_PAGE_SIZE - 1))) {
		pr_err("%s: cannot list the ranges in 0x%" PRIx64 "-0x%" PRIx64 ": not a page-aligned range",
		       src->name, lo, hi);
		return -EINVAL;
	}
	pthread_mutex_lock(&src->lock);
	if (src->ops->list_ranges_in)
		r = src->ops->list_ranges_in(src->priv, lo, hi, ret, ret_nr, &src->st, why, sizeof(why));
	else
		r = ranges_in_cached(src, lo, hi, ret, ret_nr, why, sizeof(why));
	account(src, t0, r);
	pthread_mutex_unlock(&src->lock);
	if (r < 0 && why[0])
		pr_err("%s: %s", src->name, why);
	return r;
}

int ckpt_page_source_ping(struct ckpt_page_source *src)
{
	char why[WHY_LEN] = "";
	uint64_t t0 = now_ns();
	int r = 0;

	pthread_mutex_lock(&src->lock);
	if (src->ops->ping)
		r = src->ops->ping(src->priv, &src->st, why, sizeof(why));
	account(src, t0, r);
	pthread_mutex_unlock(&src->lock);
	/* A document it does not have is the caller's to judge (an optional one: tree.json). */
	if (r == -ENOENT && why[0])
		pr_debug("%s: %s", src->name, why);
	else if (r < 0 && why[0])
		pr_err("%s: %s", src->name, why);
	return r;
}

/* What a server says of its own checkpoint (its summary's "provenance"). */
static int reported_provenance(json_object *sum, const char *name, struct ckpt_provenance *ret)
{
	json_object *o, *kind, *uid, *gid, *why;
	const char *k;

	memset(ret, 0, sizeof(*ret));
	ret->kind = CKPT_PROV_NONE;
	if (!json_object_object_get_ex(sum, "provenance", &o) ||
	    !json_object_object_get_ex(o, "kind", &kind) || !json_object_is_type(kind, json_type_string)) {
		snprintf(ret->why, sizeof(ret->why),
			 "the page server of '%s' does not say who can write its checkpoint", name);
		return -EPERM;
	}
	k = json_object_get_string(kind);
	if (json_object_object_get_ex(o, "why", &why) && json_object_is_type(why, json_type_string))
		snprintf(ret->why, sizeof(ret->why), "on the page server of '%s': %s", name,
			 json_object_get_string(why));
	if (!strcmp(k, "root")) {
		ret->kind = CKPT_PROV_ROOT;
		return 0;
	}
	if (!strcmp(k, "user") && json_object_object_get_ex(o, "uid", &uid) &&
	    json_object_is_type(uid, json_type_int) && json_object_get_int64(uid) > 0 &&
	    json_object_get_int64(uid) < UINT32_MAX) {
		ret->kind = CKPT_PROV_USER;
		ret->uid = (uid_t)json_object_get_int64(uid);
		ret->gid = json_object_object_get_ex(o, "gid", &gid) && json_object_is_type(gid, json_type_int)
				   ? (gid_t)json_object_get_int64(gid)
				   : (gid_t)-1;
		return 0;
	}
	if (strcmp(k, "none"))
		snprintf(ret->why, sizeof(ret->why),
			 "the page server of '%s' says its checkpoint's provenance is '%.40s'", name, k);
	return -EPERM;
}

int ckpt_page_source_provenance(struct ckpt_page_source *src, struct ckpt_provenance *ret)
{
	_cleanup_json_ json_object *sum = NULL;
	struct ckpt_provenance told;
	int r;

	*ret = src->prov;
	if (ret->kind == CKPT_PROV_NONE)
		return -EPERM;
	if (!src->remote)
		return 0;
	/* The connection is vouched for: so is what the server says of its checkpoint. */
	r = ckpt_page_source_get_json(src, CKPT_PAGE_SOURCE_SUMMARY, &sum);
	if (r < 0)
		return r;
	if (reported_provenance(sum, src->name, &told) < 0) {
		*ret = told;
		return -EPERM;
	}
	return ckpt_provenance_merge(ret, &told);
}
