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
	struct ckpt_chain *c;        /* borrowed */
	struct ckpt_image_writer *w; /* borrowed */
	struct seg *segs;
	size_t nr_segs;
	uint32_t **live;     /* per image, per frame: pages still live */
	uint32_t **newframe; /* per image, per frame: number in the new file, or NO_FRAME */
	struct ckpt_image_fold_stats *st;
};

static void fold_done(struct fold *f)
{
	size_t n = f->c ? chain_nr_images(f->c) : 0;

	for (size_t i = 0; i < n; i++) {
		if (f->live)
			free(f->live[i]);
		if (f->newframe)
			free(f->newframe[i]);
	}
	free(f->live);
	free(f->newframe);
	free(f->segs);
}

static int count_live(struct fold *f)
{
	size_t n = chain_nr_images(f->c); /* INHERIT: the parent's pages are copied in */

	f->live = calloc(n, sizeof(*f->live));
	f->newframe = calloc(n, sizeof(*f->newframe));
	if (!f->live || !f->newframe)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t nf = chain_image_at(f->c, i)->idx->nr_frames;

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
	img = chain_image_at(f->c, s->img);
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

/* Fold chain @c into writer @w (made with its id): its documents and what its pages resolve to. */
static int fold_into(struct ckpt_chain *c, struct ckpt_image_writer *w, struct ckpt_image_fold_stats *st)
{
	const struct ckpt_image_inventory *inv = ckpt_image_inventory(ckpt_chain_image(c, 0));
	struct fold f = { .c = c, .w = w, .st = st };
	int r = chain_resolve(c, &f.segs, &f.nr_segs);

	if (r == 0)
		r = count_live(&f);
	writer_set_created(w, inv->created_ns, inv->created_utc);
	if (r == 0)
		r = copy_documents(&f);
	for (size_t i = 0; i < f.nr_segs && r == 0; i++)
		r = copy_seg(&f, &f.segs[i]);
	fold_done(&f);
	return r;
}

static void writer_opts_of(const struct ckpt_chain *c, const struct ckpt_image_fold_opts *opts,
			   struct ckpt_image_writer_opts *wo)
{
	const struct ckpt_image_inventory *inv = ckpt_image_inventory(ckpt_chain_image(c, 0));

	memset(wo, 0, sizeof(*wo));
	wo->identity = inv->identity;
	wo->id = &inv->id;
	wo->level = opts ? opts->level : 0;
	wo->threads = opts ? opts->threads : 0;
	wo->nice = opts ? opts->nice : 0;
}

/*
 * The checkpoint of a tree: each other process's checkpoint (proc-PID/,
 * a delta of its own, or full when it was born since) folded into the
 * new root's temporary directory, with its id (tree.json, copied with the
 * root's documents, names them by it), before the root's one swap.
 */
static int fold_processes(const char *path, struct ckpt_image_writer *top, const struct ckpt_image_fold_opts *opts,
			  struct ckpt_image_fold_stats *st)
{
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *e;
	int r = 0;

	if (!d)
		return neg_errno();
	while (r == 0 && (e = readdir(d))) {
		_cleanup_chain_ struct ckpt_chain *c = NULL;
		_cleanup_image_writer_ struct ckpt_image_writer *w = NULL;
		struct ckpt_image_writer_opts wo;
		_cleanup_free_ char *sub = NULL;

		if (strncmp(e->d_name, "proc-", 5) || !file_name_valid(e->d_name))
			continue;
		if (asprintf(&sub, "%s/%s", path, e->d_name) < 0)
			return -ENOMEM;
		if ((r = ckpt_chain_open(sub, NULL, &c)) < 0)
			break;
		writer_opts_of(c, opts, &wo);
		if ((r = ckpt_image_writer_new_sub(top, e->d_name, &wo, &w)) < 0 || (r = fold_into(c, w, st)) < 0)
			break;
		r = ckpt_image_writer_commit(w);
	}
	return r;
}

int ckpt_image_fold(const char *path, const struct ckpt_image_fold_opts *opts,
		    struct ckpt_image_fold_stats *ret_stats)
{
	struct ckpt_image_fold_stats st = { 0 };
	_cleanup_chain_ struct ckpt_chain *c = NULL;
	_cleanup_image_writer_ struct ckpt_image_writer *w = NULL;
	struct ckpt_image_writer_opts wo;
	struct ckpt_image_writer_stats ws;
	struct thread_ids fs = { 0 };
	uint64_t t0 = now_ns();
	int r;

	r = ckpt_chain_open(path, NULL, &c);
	if (r < 0)
		goto out;
	st.chain_length = ckpt_chain_length(c);
	if (st.chain_length == 1)
		goto out; /* full already (and so is every process of a tree dumped without a parent) */
	/*
	 * Root folds a user's chain as that user: the folded checkpoint is the
	 * user's, as what it was made of (a root-owned one would be trusted).
	 */
	if ((r = image_fs_as_provenance(c, path, &fs)) < 0)
		goto out;
	writer_opts_of(c, opts, &wo);
	wo.flags = CKPT_IMAGE_REPLACE;
	r = ckpt_image_writer_new(path, &wo, &w);
	if (r == 0)
		r = fold_into(c, w, &st);
	if (r == 0)
		r = fold_processes(path, w, opts, &st);
	if (r == 0)
		r = ckpt_image_writer_commit(w);
	if (r < 0) {
		pr_err("cannot fold the chain of '%s': it is left as it was", path);
		goto out;
	}
	ckpt_image_writer_get_stats(w, &ws);
	st.pages_bytes = ws.pages_bytes;
	pr_debug("folded '%s' (%zu checkpoints): %" PRIu64 " data pages, %" PRIu64
		 " frames copied, %" PRIu64 " repacked, %" PRIu64 " bytes", path, st.chain_length,
		 st.data_pages, st.frames_copied, st.frames_repacked, st.pages_bytes);
out:
	thread_ids_restore(&fs);
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
