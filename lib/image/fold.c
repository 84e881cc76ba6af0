/* SPDX-License-Identifier: MIT */
/*
 * Folding a chain into its newest checkpoint, and removing checkpoints.
 *
 * A fold writes a full checkpoint with what the chain of a delta resolves to
 * (its pages, its metadata documents, its id and creation time) and swaps it
 * with the delta in one rename. Because a child names its parent by id, and
 * the id stays, the deltas on top of the folded one stay valid; nothing but
 * the folded directory changes. Compressed frames of the chain are copied as
 * they are when at least half of their pages are still live (no
 * recompression); the others are decompressed and their live pages
 * compressed again.
 */
#define LOG_AREA "image"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/image-internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/util.h"

#define NO_FRAME UINT32_MAX

struct fold {
	struct ckpt_chain *c;
	struct ckpt_image_writer *w;
	struct seg *segs;
	size_t nr_segs;
	uint32_t **live;     /* per image, per frame: pages still live */
	uint32_t **newframe; /* per image, per frame: number in the new file, or NO_FRAME */
	struct ckpt_image_fold_stats *st;
};

static void fold_done(struct fold *f)
{
	size_t n = f->c ? ckpt_chain_length(f->c) : 0;

	for (size_t i = 0; i < n; i++) {
		if (f->live)
			free(f->live[i]);
		if (f->newframe)
			free(f->newframe[i]);
	}
	free(f->live);
	free(f->newframe);
	free(f->segs);
	ckpt_image_writer_free(f->w);
	ckpt_chain_close(f->c);
}

static int count_live(struct fold *f)
{
	size_t n = ckpt_chain_length(f->c);

	f->live = calloc(n, sizeof(*f->live));
	f->newframe = calloc(n, sizeof(*f->newframe));
	if (!f->live || !f->newframe)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t nf = ckpt_chain_image(f->c, i)->idx->nr_frames;

		f->live[i] = calloc(nf ? nf : 1, sizeof(**f->live));
		f->newframe[i] = malloc((nf ? nf : 1) * sizeof(**f->newframe));
		if (!f->live[i] || !f->newframe[i])
			return -ENOMEM;
		for (size_t k = 0; k < nf; k++)
			f->newframe[i][k] = NO_FRAME;
	}
	for (size_t i = 0; i < f->nr_segs; i++)
		if (f->segs[i].kind == CKPT_PAGE_DATA)
			f->live[f->segs[i].img][f->segs[i].frame] +=
				(uint32_t)((f->segs[i].end - f->segs[i].addr) >> PAGE_SHIFT);
	return 0;
}

/* The metadata documents of the newest checkpoint, byte for byte. */
static int copy_documents(struct fold *f)
{
	struct ckpt_image *img = ckpt_chain_image(f->c, 0);
	const struct ckpt_image_inventory *inv = ckpt_image_inventory(img);

	for (size_t i = 0; i < inv->nr_files; i++) {
		const char *name = inv->files[i].name;
		_cleanup_free_ void *buf = NULL;
		size_t len;
		int r;

		if (file_name_reserved(name))
			continue;
		r = ckpt_image_read_file(img, name, &buf, &len);
		if (r == 0)
			r = ckpt_image_writer_put_file(f->w, name, buf, len);
		if (r < 0)
			return r;
	}
	return 0;
}

static int copy_seg(struct fold *f, const struct seg *s)
{
	uint64_t n = (s->end - s->addr) >> PAGE_SHIFT;
	struct ckpt_image *img;
	const struct ckpt_image_frame *fr;
	uint32_t *nf;
	int r;

	if (s->kind == CKPT_PAGE_HOLE)
		return 0; /* in a full checkpoint, "not saved" is what a hole resolves to */
	if (s->kind == CKPT_PAGE_ZERO) {
		f->st->zero_pages += n;
		return ckpt_image_writer_add_zero(f->w, s->addr, n);
	}
	f->st->data_pages += n;
	img = ckpt_chain_image(f->c, s->img);
	fr = &img->idx->frames[s->frame];
	nf = &f->newframe[s->img][s->frame];
	if ((uint64_t)f->live[s->img][s->frame] * 2 >= fr->nr_pages) {
		/* Mostly live: copy the compressed frame, point into it. */
		struct ckpt_image_entry e = { .addr = s->addr, .nr_pages = n, .kind = CKPT_PAGE_DATA,
					      .frame_page = s->frame_page };

		if (*nf == NO_FRAME) {
			r = writer_add_raw_frame(f->w, img->pages_fd, fr, nf);
			if (r < 0)
				return r;
			f->st->frames_copied++;
		}
		e.frame = *nf;
		return writer_add_entry(f->w, &e);
	} else {
		struct ckpt_image_entry e = { .addr = s->addr, .frame = s->frame,
					      .frame_page = s->frame_page };
		const unsigned char *data;
		char why[WHY_LEN] = "";

		if (*nf == NO_FRAME) {
			*nf = 0; /* counted once */
			f->st->frames_repacked++;
		}
		r = image_entry_data(img, &e, &data, why, sizeof(why));
		if (r < 0) {
			pr_err("%s", why[0] ? why : "cannot read pages");
			return r;
		}
		return ckpt_image_writer_add_data(f->w, s->addr, n, data);
	}
}

/* The checkpoint of a tree: other processes' checkpoints inside it (proc-PID/). */
static bool has_processes(const char *path)
{
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "proc-", 5))
			return true;
	return false;
}

int ckpt_image_fold(const char *path, const struct ckpt_image_fold_opts *opts,
		    struct ckpt_image_fold_stats *ret_stats)
{
	struct ckpt_image_fold_stats st = { 0 };
	struct fold f = { .st = &st };
	const struct ckpt_image_inventory *inv;
	struct ckpt_image_writer_opts wo = { 0 };
	struct ckpt_image_writer_stats ws;
	uint64_t t0 = now_ns();
	int r;

	r = ckpt_chain_open(path, NULL, &f.c);
	if (r < 0)
		goto out;
	st.chain_length = ckpt_chain_length(f.c);
	if (st.chain_length == 1)
		goto out; /* full already */
	if (has_processes(path)) {
		/* Each process's delta would need its own fold, in one swap: not yet. */
		pr_err("cannot fold '%s': it is a checkpoint of a process tree (it holds proc-PID "
		       "directories), which cannot be folded yet", path);
		r = -ENOTSUP;
		goto out;
	}
	r = chain_resolve(f.c, &f.segs, &f.nr_segs);
	if (r == 0)
		r = count_live(&f);
	if (r < 0) {
		pr_err("cannot fold '%s': %s", path, strerror(-r));
		goto out;
	}
	inv = ckpt_image_inventory(ckpt_chain_image(f.c, 0));
	wo.identity = inv->identity;
	wo.id = &inv->id;
	wo.level = opts ? opts->level : 0;
	wo.threads = opts ? opts->threads : 0;
	wo.nice = opts ? opts->nice : 0;
	wo.flags = CKPT_IMAGE_REPLACE;
	r = ckpt_image_writer_new(path, &wo, &f.w);
	if (r < 0)
		goto out;
	writer_set_created(f.w, inv->created_ns, inv->created_utc);
	r = copy_documents(&f);
	for (size_t i = 0; i < f.nr_segs && r == 0; i++)
		r = copy_seg(&f, &f.segs[i]);
	if (r == 0)
		r = ckpt_image_writer_commit(f.w);
	if (r < 0) {
		pr_err("cannot fold the chain of '%s': it is left as it was", path);
		goto out;
	}
	ckpt_image_writer_get_stats(f.w, &ws);
	st.pages_bytes = ws.pages_bytes;
	pr_debug("folded '%s' (%zu checkpoints): %" PRIu64 " data pages, %" PRIu64
		 " frames copied, %" PRIu64 " repacked, %" PRIu64 " bytes", path, st.chain_length,
		 st.data_pages, st.frames_copied, st.frames_repacked, st.pages_bytes);
out:
	fold_done(&f);
	st.ns = now_ns() - t0;
	if (ret_stats)
		*ret_stats = st;
	return r;
}

int ckpt_image_remove(const char *path)
{
	_cleanup_free_ char *dir = NULL, *base = NULL;
	_cleanup_close_ int dirfd = -1;
	char tmp[300];
	int r;

	r = path_split(path, &dir, &base);
	if (r < 0 || ckpt_image_is_temp_name(base)) {
		pr_err("cannot remove checkpoint '%s': bad name", path);
		return r < 0 ? r : -EINVAL;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		r = neg_errno();
		pr_err("cannot remove checkpoint '%s': %s", path, strerror(-r));
		return r;
	}
	r = rename_to_temp(dirfd, base, tmp, sizeof(tmp));
	if (r < 0) {
		pr_err("cannot remove checkpoint '%s': rename: %s", path, strerror(-r));
		return r;
	}
	/* From here on it is a temporary directory: never a checkpoint again. */
	r = RET_NERRNO(fsync(dirfd));
	if (r < 0) {
		pr_err("cannot remove checkpoint '%s': fsync of its directory: %s", path, strerror(-r));
		return r;
	}
	ckpt_image_crash_point("remove-after-rename");
	r = rm_rf_at(dirfd, tmp);
	if (r < 0 && r != -ENOENT) {
		pr_warn("checkpoint '%s' is gone, but its files in '%s/%s' could not all be removed: %s",
			path, dir, tmp, strerror(-r));
		return 0;
	}
	pr_debug("removed checkpoint '%s'", path);
	return 0;
}
