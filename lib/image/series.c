/* SPDX-License-Identifier: MIT */
/*
 * A series: numbered checkpoints in one directory and a "latest" link, the
 * layout of ckpt track -D. Retention keeps the newest points and gives the
 * rest back by folding (fold.c) and removing, in an order that leaves every
 * point restorable at every moment:
 *
 *   1. fold every kept delta whose parent goes: a full checkpoint of the
 *      same content and id is swapped in (one rename); its children, which
 *      name it by id, stay valid, and so do its old ancestors;
 *   2. remove the points that go, children before parents: each is renamed
 *      to a temporary name first, so it stops being a checkpoint atomically,
 *      and only then deleted.
 *
 * A crash between any two steps leaves at most extra points (complete, and
 * restorable) and temporary directories, which the next open removes.
 */
#define LOG_AREA "image"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image-internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/util.h"

#define LATEST_NAME "latest"

struct point {
	struct ckpt_series_point pub;
	char *name;
	struct ckpt_image_inventory inv;
	dev_t dev;
	ino_t ino;
	bool have_parent_stat;
	dev_t pdev;
	ino_t pino;
};

struct ckpt_series {
	char *path;
	int dirfd;  /* holds the lock */
	struct point *pts;
	size_t nr, cap;
	ssize_t latest;
	uint64_t max_seq; /* largest number among all entries, + 1; 0 when none */
};

static void points_clear(struct ckpt_series *s)
{
	for (size_t i = 0; i < s->nr; i++) {
		free(s->pts[i].name);
		ckpt_image_inventory_done(&s->pts[i].inv);
	}
	s->nr = 0;
	s->latest = -1;
	s->max_seq = 0;
}

void ckpt_series_close(struct ckpt_series *s)
{
	if (!s)
		return;
	points_clear(s);
	free(s->pts);
	if (s->dirfd >= 0)
		close(s->dirfd); /* drops the lock */
	free(s->path);
	free(s);
}

const char *ckpt_series_path(const struct ckpt_series *s)
{
	return s->path;
}

size_t ckpt_series_nr_points(const struct ckpt_series *s)
{
	return s->nr;
}

const struct ckpt_series_point *ckpt_series_point(const struct ckpt_series *s, size_t i)
{
	return i < s->nr ? &s->pts[i].pub : NULL;
}

ssize_t ckpt_series_latest(const struct ckpt_series *s)
{
	return s->latest;
}

uint64_t ckpt_series_next_seq(const struct ckpt_series *s)
{
	return s->max_seq;
}

void ckpt_series_name(uint64_t seq, char buf[32])
{
	snprintf(buf, 32, "%04" PRIu64, seq);
}

/* A name of digits only: its value. */
static bool name_seq(const char *name, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*name || strlen(name) > 19)
		return false;
	for (const char *p = name; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*ret = v;
	return true;
}

static uint64_t point_bytes(int dirfd, const char *name, const struct ckpt_image_inventory *inv)
{
	char p[600];
	struct stat st;
	uint64_t sum = 0;

	snprintf(p, sizeof(p), "%s/%s", name, INVENTORY_NAME);
	if (fstatat(dirfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0)
		sum += (uint64_t)st.st_size;
	for (size_t i = 0; i < inv->nr_files; i++) {
		snprintf(p, sizeof(p), "%s/%s", name, inv->files[i].name);
		if (fstatat(dirfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0)
			sum += (uint64_t)st.st_size;
	}
	return sum;
}

/* Add the entry @name if it is a checkpoint. */
static int scan_entry(struct ckpt_series *s, const char *name)
{
	struct point pt = { 0 };
	char why[WHY_LEN] = "";
	struct stat st;
	uint64_t seq, h;
	int r;

	if (name_seq(name, &seq) && seq + 1 > s->max_seq)
		s->max_seq = seq + 1;
	if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	r = inventory_read_at(s->dirfd, name, name, &pt.inv, &h, why, sizeof(why));
	if (r == -ENOENT) {
		pr_debug("'%s/%s' is not a checkpoint: ignored", s->path, name);
		return 0;
	}
	if (r < 0) {
		pr_warn("'%s/%s' is ignored: %s", s->path, name, why[0] ? why : strerror(-r));
		return 0;
	}
	pt.name = strdup(name);
	if (!pt.name || GROW(s->pts, s->cap, s->nr + 1) < 0) {
		free(pt.name);
		ckpt_image_inventory_done(&pt.inv);
		return -ENOMEM;
	}
	pt.dev = st.st_dev;
	pt.ino = st.st_ino;
	if (pt.inv.parent) {
		char p[PATH_MAX];
		struct stat ps;

		if ((size_t)snprintf(p, sizeof(p), "%s/%s", name, pt.inv.parent) < sizeof(p) &&
		    fstatat(s->dirfd, p, &ps, 0) == 0) {
			pt.have_parent_stat = true;
			pt.pdev = ps.st_dev;
			pt.pino = ps.st_ino;
		}
	}
	pt.pub.seq = name_seq(name, &seq) ? seq : UINT64_MAX;
	pt.pub.bytes = point_bytes(s->dirfd, name, &pt.inv);
	s->pts[s->nr++] = pt;
	return 0;
}

static int cmp_point(const void *x, const void *y)
{
	const struct point *a = x, *b = y;

	if (a->pub.seq != UINT64_MAX && b->pub.seq != UINT64_MAX)
		return (a->pub.seq > b->pub.seq) - (a->pub.seq < b->pub.seq);
	return strverscmp(a->name, b->name);
}

static int cmp_devino(const void *x, const void *y, void *arg)
{
	const struct ckpt_series *s = arg;
	const struct point *a = &s->pts[*(const size_t *)x], *b = &s->pts[*(const size_t *)y];

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	return (a->ino > b->ino) - (a->ino < b->ino);
}

/* The point whose directory is @dev/@ino, or -1; @by sorted by cmp_devino. */
static ssize_t find_devino(const struct ckpt_series *s, const size_t *by, dev_t dev, ino_t ino)
{
	size_t lo = 0, hi = s->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct point *p = &s->pts[by[mid]];

		if (p->dev == dev && p->ino == ino)
			return (ssize_t)by[mid];
		if (p->dev < dev || (p->dev == dev && p->ino < ino))
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void link_points(struct ckpt_series *s)
{
	_cleanup_free_ char *target = NULL;
	_cleanup_free_ size_t *by = malloc((s->nr ? s->nr : 1) * sizeof(*by));

	for (size_t i = 0; i < s->nr; i++) {
		struct point *p = &s->pts[i];

		p->pub.name = p->name;
		p->pub.inv = &p->inv;
		p->pub.parent = -1;
		p->pub.parent_elsewhere = p->inv.kind == CKPT_IMAGE_DELTA;
		p->pub.depth = SIZE_MAX; /* not known yet */
		if (by)
			by[i] = i;
	}
	if (by)
		qsort_r(by, s->nr, sizeof(*by), cmp_devino, s);
	for (size_t i = 0; i < s->nr && by; i++) {
		struct point *p = &s->pts[i];
		ssize_t k;

		if (!p->have_parent_stat)
			continue;
		k = find_devino(s, by, p->pdev, p->pino);
		if (k >= 0 && (size_t)k != i && ckpt_image_id_equal(&s->pts[k].inv.id, &p->inv.parent_id)) {
			p->pub.parent = k;
			p->pub.parent_elsewhere = false;
		}
	}
	/* Depths: walk up to a point whose depth is known, then down again. */
	for (size_t i = 0; i < s->nr; i++) {
		size_t n = 0, depth;
		ssize_t k = (ssize_t)i;

		while (k >= 0 && s->pts[k].pub.depth == SIZE_MAX && n <= s->nr) {
			k = s->pts[k].pub.parent;
			n++;
		}
		depth = k >= 0 && s->pts[k].pub.depth != SIZE_MAX ? s->pts[k].pub.depth + 1 : 0;
		/* Set the n points from i up, from the top down: depth, depth + 1, ... */
		for (size_t up = n; up > 0; up--) {
			ssize_t j = (ssize_t)i;

			for (size_t t = 1; t < up; t++)
				j = s->pts[j].pub.parent;
			s->pts[j].pub.depth = depth++;
		}
	}
	s->latest = -1;
	if (readlink_at(s->dirfd, LATEST_NAME, &target) == 0 && !strchr(target, '/'))
		for (size_t i = 0; i < s->nr; i++)
			if (!strcmp(s->pts[i].name, target))
				s->latest = (ssize_t)i;
}

static int scan(struct ckpt_series *s, bool clean)
{
	_cleanup_close_ int fd = -1;
	DIR *d;
	struct dirent *de;
	int r = 0;

	points_clear(s);
	fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		r = neg_errno();
		pr_err("cannot read series '%s': %s", s->path, strerror(-r));
		return r;
	}
	fd = -1; /* the DIR owns it */
	while (r == 0 && (errno = 0, de = readdir(d))) {
		const char *name = de->d_name;

		if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, LATEST_NAME))
			continue;
		if (ckpt_image_is_temp_name(name)) {
			/* Left by a writer that crashed: never a checkpoint. */
			if (clean) {
				int e = rm_rf_at(s->dirfd, name);

				if (e < 0 && e != -ENOENT)
					pr_warn("cannot remove '%s/%s': %s", s->path, name, strerror(-e));
				else
					pr_info("removed '%s/%s', left by an interrupted writer", s->path,
						name);
			}
			continue;
		}
		if (name[0] == '.')
			continue;
		r = scan_entry(s, name);
	}
	if (r == 0 && errno)
		r = neg_errno();
	closedir(d);
	if (r < 0) {
		pr_err("cannot read series '%s': %s", s->path, strerror(-r));
		return r;
	}
	if (s->nr) /* an empty series has no array: qsort(NULL, 0) is undefined */
		qsort(s->pts, s->nr, sizeof(*s->pts), cmp_point);
	link_points(s);
	return 0;
}

int ckpt_series_rescan(struct ckpt_series *s)
{
	return scan(s, false);
}

int ckpt_series_add(struct ckpt_series *s, const char *name)
{
	size_t before = s->nr;
	int r = scan_entry(s, name);

	if (r < 0) {
		pr_err("cannot add '%s/%s' to the series: %s", s->path, name, strerror(-r));
		return r;
	}
	if (s->nr == before) {
		pr_err("'%s/%s' is not a checkpoint", s->path, name);
		return -ENOENT;
	}
	/* Usually the newest: sorted already. */
	if (s->nr > 1 && cmp_point(&s->pts[s->nr - 2], &s->pts[s->nr - 1]) > 0)
		if (s->nr) /* an empty series has no array: qsort(NULL, 0) is undefined */
		qsort(s->pts, s->nr, sizeof(*s->pts), cmp_point);
	link_points(s);
	return 0;
}

int ckpt_series_open(const char *dir, unsigned int flags, struct ckpt_series **ret)
{
	_cleanup_(ckpt_series_closep) struct ckpt_series *s = NULL;
	int r;

	if (!dir || !*dir) {
		pr_err("cannot open a series: empty path");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(dir))) {
		pr_err("cannot open series '%s': %s", dir, strerror(ENOMEM));
		return -ENOMEM;
	}
	s->dirfd = -1;
	s->latest = -1;
	if ((flags & CKPT_SERIES_CREATE) && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = neg_errno();
		pr_err("cannot create '%s': %s", dir, strerror(-r));
		return r;
	}
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		r = neg_errno();
		pr_err("cannot open series '%s': %s", dir, strerror(-r));
		return r;
	}
	if (flock(s->dirfd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : neg_errno();
		if (r == -EBUSY)
			pr_err("'%s' is in use by another ckpt command", dir);
		else
			pr_err("cannot lock '%s': %s", dir, strerror(-r));
		return r;
	}
	r = scan(s, true);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

int ckpt_series_set_latest(struct ckpt_series *s, const char *name)
{
	char tmp[300];
	int r = -EEXIST;

	for (int attempt = 0; attempt < 100 && r == -EEXIST; attempt++) {
		r = temp_name(LATEST_NAME, tmp, sizeof(tmp));
		if (r == 0)
			r = RET_NERRNO(symlinkat(name, s->dirfd, tmp));
	}
	if (r < 0) {
		pr_err("cannot point '%s/%s' at '%s': %s", s->path, LATEST_NAME, name, strerror(-r));
		return r;
	}
	ckpt_image_crash_point("latest-before-rename");
	r = RET_NERRNO(renameat(s->dirfd, tmp, s->dirfd, LATEST_NAME));
	if (r < 0) {
		(void)unlinkat(s->dirfd, tmp, 0);
		pr_err("cannot point '%s/%s' at '%s': %s", s->path, LATEST_NAME, name, strerror(-r));
		return r;
	}
	r = RET_NERRNO(fsync(s->dirfd));
	if (r < 0) {
		pr_err("cannot make '%s/%s' durable: fsync: %s", s->path, LATEST_NAME, strerror(-r));
		return r;
	}
	s->latest = -1;
	for (size_t i = 0; i < s->nr; i++)
		if (!strcmp(s->pts[i].name, name))
			s->latest = (ssize_t)i;
	return 0;
}

/* ---- retention ---- */

static char *point_path(const struct ckpt_series *s, size_t i)
{
	char *p;

	if (asprintf(&p, "%s/%s", s->path, s->pts[i].name) < 0)
		return NULL;
	return p;
}

static int cmp_depth_desc(const void *x, const void *y, void *arg)
{
	const struct ckpt_series *s = arg;
	size_t a = *(const size_t *)x, b = *(const size_t *)y;

	if (s->pts[a].pub.depth != s->pts[b].pub.depth)
		return s->pts[a].pub.depth < s->pts[b].pub.depth ? 1 : -1;
	return (a < b) - (a > b); /* newer first */
}

static uint64_t total_bytes(const struct ckpt_series *s)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < s->nr; i++)
		sum += s->pts[i].pub.bytes;
	return sum;
}

int ckpt_series_retain(struct ckpt_series *s, size_t keep, const struct ckpt_image_fold_opts *fo,
		       struct ckpt_series_retain_stats *ret_stats)
{
	struct ckpt_series_retain_stats st = { 0 };
	_cleanup_free_ bool *kept = NULL, *needed = NULL;
	_cleanup_free_ size_t *order = NULL;
	size_t nr_order = 0;
	uint64_t t0;
	int r = 0, first_err = 0;
	bool removed_one = false;

	st.bytes_before = st.bytes_after = total_bytes(s);
	st.kept = s->nr;
	if (!keep || s->nr <= keep)
		goto out;
	kept = calloc(s->nr, sizeof(*kept));
	needed = calloc(s->nr, sizeof(*needed));
	order = calloc(s->nr, sizeof(*order));
	if (!kept || !needed || !order) {
		pr_err("cannot apply retention to '%s': %s", s->path, strerror(ENOMEM));
		return -ENOMEM;
	}
	for (size_t i = s->nr - keep; i < s->nr; i++)
		kept[i] = true;
	if (s->latest >= 0)
		kept[s->latest] = true;

	/* 1. Fold every kept delta whose parent goes. */
	t0 = now_ns();
	for (size_t i = 0; i < s->nr; i++) {
		ssize_t p = s->pts[i].pub.parent;
		_cleanup_free_ char *path = NULL;
		struct ckpt_image_fold_stats fs;

		if (!kept[i] || p < 0 || kept[p])
			continue;
		path = point_path(s, i);
		r = path ? ckpt_image_fold(path, fo, &fs) : -ENOMEM;
		if (r < 0) {
			/* Its ancestors stay: it still needs them. */
			for (ssize_t k = p; k >= 0; k = s->pts[k].pub.parent)
				needed[k] = true;
			if (!first_err)
				first_err = r;
			continue;
		}
		st.folded++;
	}
	st.fold_ns = now_ns() - t0;
	if (st.folded)
		ckpt_image_crash_point("retain-after-fold");

	/* 2. Remove the points that go, children before parents. */
	t0 = now_ns();
	for (size_t i = 0; i < s->nr; i++)
		if (!kept[i] && !needed[i])
			order[nr_order++] = i;
	qsort_r(order, nr_order, sizeof(*order), cmp_depth_desc, s);
	for (size_t k = 0; k < nr_order; k++) {
		_cleanup_free_ char *path = point_path(s, order[k]);

		r = path ? ckpt_image_remove(path) : -ENOMEM;
		if (r < 0) {
			/* Its ancestors may still be needed by it: stop here. */
			if (!first_err)
				first_err = r;
			break;
		}
		st.removed++;
		if (!removed_one) {
			removed_one = true;
			ckpt_image_crash_point("retain-after-remove");
		}
	}
	st.remove_ns = now_ns() - t0;
	r = scan(s, false);
	if (r < 0 && !first_err)
		first_err = r;
	st.bytes_after = total_bytes(s);
	st.kept = s->nr;
out:
	if (ret_stats)
		*ret_stats = st;
	return first_err;
}
