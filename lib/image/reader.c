/* SPDX-License-Identifier: MIT */
/* Reading one checkpoint: inventory, index, metadata files, pages. */
#define LOG_AREA "image"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xxhash.h"

#define VERIFY_CHUNK (1u << 20)

void ckpt_image_close(struct ckpt_image *img)
{
	if (!img)
		return;
	frame_cache_done(&img->cache);
	ckpt_image_index_free(img->idx);
	ckpt_image_inventory_done(&img->inv);
	if (img->pages_fd >= 0)
		close(img->pages_fd);
	if (img->dirfd >= 0)
		close(img->dirfd);
	free(img->path);
	free(img);
}

static int checksum_mismatch(char *why, size_t whylen, const char *path, const char *name,
			     uint64_t want, uint64_t got)
{
	char w[XXH64_STR_LEN + 1], g[XXH64_STR_LEN + 1];

	xxh64_format(want, w);
	xxh64_format(got, g);
	return why_set(why, whylen, -EBADMSG,
		       "'%s/%s' is corrupt: checksum %s, %s expects %s", path, name, g,
		       INVENTORY_NAME, w);
}

/* Read the listed file @name, checksum verified. */
static int read_member(struct ckpt_image *img, const char *name, void **ret, size_t *ret_len,
		       char *why, size_t whylen)
{
	const struct ckpt_image_file *f = inventory_find(&img->inv, name);
	_cleanup_free_ void *buf = NULL;
	size_t len;
	uint64_t h;
	int r;

	if (!f)
		return why_set(why, whylen, -ENOENT, "checkpoint '%s' has no file '%s'", img->path,
			       name);
	r = read_file_max(img->dirfd, name, DOC_MAX, &buf, &len);
	if (r == -ENOENT)
		return why_set(why, whylen, r, "'%s/%s' is missing (%s lists it)", img->path, name,
			       INVENTORY_NAME);
	if (r == -EFBIG)
		return why_set(why, whylen, -EBADMSG, "cannot read '%s/%s': larger than %u bytes",
			       img->path, name, DOC_MAX);
	if (r == -EBADMSG)
		return why_set(why, whylen, r, "cannot read '%s/%s': not a regular file, or changing",
			       img->path, name);
	if (r < 0)
		return why_set(why, whylen, r, "cannot read '%s/%s': %s", img->path, name,
			       strerror(-r));
	h = xxh64(buf, len, 0);
	if (h != f->xxh64)
		return checksum_mismatch(why, whylen, img->path, name, f->xxh64, h);
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int open_pages(struct ckpt_image *img, char *why, size_t whylen)
{
	_cleanup_free_ void *buf = NULL;
	struct stat st;
	size_t len;
	int r;

	r = read_member(img, INDEX_NAME, &buf, &len, why, whylen);
	if (r < 0)
		return r;
	r = index_parse_take(&buf, len, why, whylen, &img->idx);
	if (r < 0) {
		why_prefix(why, whylen, "bad '%s/%s': ", img->path, INDEX_NAME);
		return r;
	}
	img->pages_fd = openat(img->dirfd, PAGES_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (img->pages_fd < 0) {
		r = neg_errno();
		if (r == -ENOENT)
			return why_set(why, whylen, r, "'%s/%s' is missing (%s lists it)", img->path,
				       PAGES_NAME, INVENTORY_NAME);
		return why_set(why, whylen, r, "cannot open '%s/%s': %s", img->path, PAGES_NAME,
			       strerror(-r));
	}
	if (fstat(img->pages_fd, &st) < 0) {
		r = neg_errno();
		return why_set(why, whylen, r, "cannot open '%s/%s': %s", img->path, PAGES_NAME,
			       strerror(-r));
	}
	if (!S_ISREG(st.st_mode))
		return why_set(why, whylen, -EBADMSG, "'%s/%s' is not a regular file", img->path, PAGES_NAME);
	if ((uint64_t)st.st_size != img->idx->pages_size)
		return why_set(why, whylen, -EBADMSG,
			       "'%s/%s' is %s: %" PRIu64 " bytes, %s says %" PRIu64, img->path,
			       PAGES_NAME,
			       (uint64_t)st.st_size < img->idx->pages_size ? "truncated" : "too long",
			       (uint64_t)st.st_size, INDEX_NAME, img->idx->pages_size);
	return 0;
}

int image_open_at(int atfd, const char *rel, const char *path,
		  const struct ckpt_image_open_opts *opts, struct ckpt_image **ret, char *why,
		  size_t whylen)
{
	_cleanup_(ckpt_image_closep) struct ckpt_image *img = NULL;
	char base[256];
	int r;

	if (ckpt_image_is_temp_name(path_base(rel, base, sizeof(base))))
		return why_set(why, whylen, -ENOENT,
			       "'%s' is not a checkpoint: an unfinished one, in its temporary directory",
			       path);
	img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;
	img->dirfd = img->pages_fd = -1;
	img->path = strdup(path);
	if (!img->path)
		return -ENOMEM;
	img->dirfd = openat(atfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (img->dirfd < 0) {
		r = neg_errno();
		return why_set(why, whylen, r, "cannot open checkpoint '%s': %s", path,
			       strerror(-r));
	}
	r = inventory_read_at(img->dirfd, ".", path, &img->inv, &img->inventory_xxh64, why,
			      whylen);
	if (r < 0)
		return r;
	r = open_pages(img, why, whylen);
	if (r < 0)
		return r;
	r = frame_cache_init(&img->cache, opts ? opts->cache_frames : 0);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(img);
	return 0;
}

static void log_why(int r, const char *why, const char *fallback_path)
{
	if (why[0])
		pr_err("%s", why);
	else
		pr_err("cannot read checkpoint '%s': %s", fallback_path, errstr(r));
}

int ckpt_image_open(const char *path, const struct ckpt_image_open_opts *opts,
		    struct ckpt_image **ret)
{
	char why[WHY_LEN] = "";
	int r;

	if (!path || !*path) {
		pr_err("cannot open a checkpoint: empty path");
		return -EINVAL;
	}
	r = image_open_at(AT_FDCWD, path, path, opts, ret, why, sizeof(why));
	if (r < 0)
		log_why(r, why, path);
	return r;
}

const char *ckpt_image_path(const struct ckpt_image *img)
{
	return img->path;
}

const struct ckpt_image_inventory *ckpt_image_inventory(const struct ckpt_image *img)
{
	return &img->inv;
}

const struct ckpt_image_index *ckpt_image_index(const struct ckpt_image *img)
{
	return img->idx;
}

uint64_t ckpt_image_inventory_xxh64(const struct ckpt_image *img)
{
	return img->inventory_xxh64;
}

bool ckpt_image_has_file(const struct ckpt_image *img, const char *name)
{
	return inventory_find(&img->inv, name) != NULL;
}

int ckpt_image_read_file(struct ckpt_image *img, const char *name, void **ret, size_t *ret_len)
{
	char why[WHY_LEN] = "";
	int r;

	r = read_member(img, name, ret, ret_len, why, sizeof(why));
	if (r < 0)
		log_why(r, why, img->path);
	return r;
}

static int read_blob(struct ckpt_image *img, const char *name, uint64_t size, void **ret,
		     char *why, size_t whylen)
{
	const struct ckpt_image_file *f = inventory_find(&img->inv, name);
	_cleanup_free_ void *buf = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	uint64_t h;
	int r;

	if (!f)
		return why_set(why, whylen, -ENOENT, "checkpoint '%s' has no file '%s'", img->path,
			       name);
	fd = openat(img->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		r = neg_errno();
		return why_set(why, whylen, r, "cannot open '%s/%s': %s", img->path, name,
			       strerror(-r));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return why_set(why, whylen, -EBADMSG, "'%s/%s' is not a regular file", img->path,
			       name);
	if ((uint64_t)st.st_size != size)
		return why_set(why, whylen, -EBADMSG,
			       "'%s/%s' is corrupt: %llu bytes, the checkpoint says %llu", img->path,
			       name, (unsigned long long)st.st_size, (unsigned long long)size);
	if (size > SIZE_MAX - 1 || !(buf = malloc(size ? size : 1)))
		return -ENOMEM;
	r = read_all(fd, buf, size);
	if (r < 0)
		return why_set(why, whylen, r == -EIO ? -EBADMSG : r, "cannot read '%s/%s': %s",
			       img->path, name, r == -EIO ? "it shrank" : strerror(-r));
	h = xxh64(buf, size, 0);
	if (h != f->xxh64)
		return checksum_mismatch(why, whylen, img->path, name, f->xxh64, h);
	*ret = TAKE_PTR(buf);
	return 0;
}

int ckpt_image_read_blob(struct ckpt_image *img, const char *name, uint64_t size, void **ret)
{
	char why[WHY_LEN] = "";
	int r;

	r = read_blob(img, name, size, ret, why, sizeof(why));
	if (r < 0)
		log_why(r, why, img->path);
	return r;
}

int ckpt_image_get_json(struct ckpt_image *img, const char *name, struct json_object **ret)
{
	_cleanup_free_ void *buf = NULL;
	char why[WHY_LEN] = "";
	size_t len;
	int r;

	r = read_member(img, name, &buf, &len, why, sizeof(why));
	if (r == 0) {
		r = json_parse_buf(buf, len, why, sizeof(why), ret);
		if (r < 0)
			why_prefix(why, sizeof(why), "bad '%s/%s': ", img->path, name);
	}
	if (r < 0)
		log_why(r, why, img->path);
	return r;
}

int image_entry_data(struct ckpt_image *img, const struct ckpt_image_entry *e,
		     const unsigned char **ret, char *why, size_t whylen)
{
	const void *frame;
	int r;

	r = frame_cache_get(&img->cache, img->pages_fd, img->idx, e->frame, &frame, why, whylen);
	if (r < 0) {
		why_prefix(why, whylen, "cannot read '%s/%s': ", img->path, PAGES_NAME);
		return r;
	}
	*ret = (const unsigned char *)frame + ((size_t)e->frame_page << PAGE_SHIFT);
	return 0;
}

int ckpt_image_read_page(struct ckpt_image *img, uint64_t addr, void *buf)
{
	const struct ckpt_image_entry *e;
	const unsigned char *data;
	char why[WHY_LEN] = "";
	int r;

	if (addr & (CKPT_IMAGE_PAGE_SIZE - 1)) {
		pr_err("cannot read page 0x%" PRIx64 " of '%s': not page-aligned", addr, img->path);
		return -EINVAL;
	}
	e = index_lookup(img->idx, addr);
	if (!e)
		return CKPT_PAGE_NONE;
	if (e->kind != CKPT_PAGE_DATA)
		return e->kind;
	r = image_entry_data(img, e, &data, why, sizeof(why));
	if (r < 0) {
		log_why(r, why, img->path);
		return r;
	}
	memcpy(buf, data + (addr - e->addr), CKPT_IMAGE_PAGE_SIZE);
	return CKPT_PAGE_DATA;
}

void ckpt_image_get_cache_stats(const struct ckpt_image *img, struct ckpt_image_cache_stats *ret)
{
	*ret = img->cache.stats;
}

/* ---- verify ---- */

static int verify_pages_file(struct ckpt_image *img, char *why, size_t whylen)
{
	const struct ckpt_image_file *f = inventory_find(&img->inv, PAGES_NAME);
	_cleanup_free_ unsigned char *buf = malloc(VERIFY_CHUNK);
	struct xxh64_state st;
	uint64_t off = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	xxh64_init(&st, 0);
	while (off < img->idx->pages_size) {
		size_t n = (size_t)MIN((uint64_t)VERIFY_CHUNK, img->idx->pages_size - off);

		r = pread_exact(img->pages_fd, buf, n, off);
		if (r == -EBADMSG)
			return why_set(why, whylen, r, "'%s/%s' is truncated at %" PRIu64 " bytes",
				       img->path, PAGES_NAME, off);
		if (r < 0)
			return why_set(why, whylen, r, "cannot read '%s/%s': %s", img->path,
				       PAGES_NAME, strerror(-r));
		xxh64_update(&st, buf, n);
		off += n;
	}
	if (xxh64_digest(&st) != f->xxh64)
		return checksum_mismatch(why, whylen, img->path, PAGES_NAME, f->xxh64,
					 xxh64_digest(&st));
	return 0;
}

static int verify_frames(struct ckpt_image *img, char *why, size_t whylen)
{
	_cleanup_free_ void *cbuf = NULL, *ubuf = NULL;
	size_t ccap = 0, ucap = 0;
	int r;

	for (size_t i = 0; i < img->idx->nr_frames; i++) {
		const struct ckpt_image_frame *f = &img->idx->frames[i];

		if (f->csize > ccap) {
			free(cbuf);
			cbuf = malloc(f->csize);
			ccap = f->csize;
		}
		if (f->usize > ucap) {
			free(ubuf);
			ubuf = malloc(f->usize);
			ucap = f->usize;
		}
		if (!cbuf || !ubuf)
			return -ENOMEM;
		r = pread_exact(img->pages_fd, cbuf, f->csize, f->offset);
		if (r == 0)
			r = frame_decode(img->cache.dctx, cbuf, f->csize, ubuf, f->usize, why, whylen);
		else if (r == -EBADMSG)
			why_set(why, whylen, r, "truncated");
		else
			why_set(why, whylen, r, "%s", strerror(-r));
		if (r < 0) {
			why_prefix(why, whylen, "cannot read '%s/%s': frame %zu at offset %" PRIu64 ": ",
				   img->path, PAGES_NAME, i, f->offset);
			return r;
		}
	}
	return 0;
}

int ckpt_image_verify(struct ckpt_image *img)
{
	char why[WHY_LEN] = "";
	int r = 0;

	for (size_t i = 0; i < img->inv.nr_files && r == 0; i++) {
		const char *name = img->inv.files[i].name;
		_cleanup_free_ void *buf = NULL;
		size_t len;

		if (!strcmp(name, PAGES_NAME))
			continue;
		r = read_member(img, name, &buf, &len, why, sizeof(why));
	}
	if (r == 0)
		r = verify_pages_file(img, why, sizeof(why));
	if (r == 0)
		r = verify_frames(img, why, sizeof(why));
	if (r < 0) {
		log_why(r, why, img->path);
		return r;
	}
	pr_debug("'%s': %zu files and %zu frames verified", img->path, img->inv.nr_files,
		 img->idx->nr_frames);
	return 0;
}
