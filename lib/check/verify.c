/* SPDX-License-Identifier: MIT */
/* Page-exact comparison of a scan result with the pages known written. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt/check.h>

#include "util/util.h"

static int cmp_range(const void *a, const void *b)
{
	const struct ckpt_range *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/* Sort and merge overlapping or adjacent ranges into a fresh array. */
static int normalize(const struct ckpt_range *in, size_t nr, uint64_t ps,
		     struct ckpt_range **ret, size_t *ret_nr, const char *what,
		     char *why, size_t whylen)
{
	_cleanup_free_ struct ckpt_range *v = NULL;
	size_t n = 0;

	v = malloc((nr ? nr : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		if (in[i].end <= in[i].start || in[i].start % ps || in[i].end % ps) {
			snprintf(why, whylen, "%s range %#" PRIx64 "-%#" PRIx64 " is empty or not page aligned",
				 what, in[i].start, in[i].end);
			return -EBADMSG;
		}
	}
	if (nr) {
		memcpy(v, in, nr * sizeof(*v));
		qsort(v, nr, sizeof(*v), cmp_range);
	}
	for (size_t i = 0; i < nr; i++) {
		if (n && v[i].start <= v[n - 1].end) {
			if (v[i].end > v[n - 1].end)
				v[n - 1].end = v[i].end;
		} else {
			v[n++] = v[i];
		}
	}
	*ret = TAKE_PTR(v);
	*ret_nr = n;
	return 0;
}

int ckpt_check_verify_written(const struct ckpt_range *got, size_t nr_got,
			      const struct ckpt_range *want, size_t nr_want,
			      uint64_t ps, char *why, size_t whylen)
{
	_cleanup_free_ struct ckpt_range *g = NULL, *w = NULL;
	size_t ng, nw;
	int r;

	if (whylen)
		why[0] = '\0';
	r = normalize(got, nr_got, ps, &g, &ng, "reported", why, whylen);
	if (r < 0)
		return r;
	r = normalize(want, nr_want, ps, &w, &nw, "expected", why, whylen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < MAX(ng, nw); i++) {
		if (i >= ng) {
			snprintf(why, whylen, "written pages %#" PRIx64 "-%#" PRIx64 " were not reported",
				 w[i].start, w[i].end);
			return -EBADMSG;
		}
		if (i >= nw) {
			snprintf(why, whylen, "pages %#" PRIx64 "-%#" PRIx64 " were reported but never written",
				 g[i].start, g[i].end);
			return -EBADMSG;
		}
		if (g[i].start != w[i].start || g[i].end != w[i].end) {
			snprintf(why, whylen,
				 "reported %#" PRIx64 "-%#" PRIx64 " where %#" PRIx64 "-%#" PRIx64 " was written",
				 g[i].start, g[i].end, w[i].start, w[i].end);
			return -EBADMSG;
		}
	}
	return 0;
}
