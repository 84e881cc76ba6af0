/* SPDX-License-Identifier: MIT */
/*
 * Provenance of a checkpoint on disk: who, besides root, can have written
 * it. Every file restore reads is opened through the checkpoint's directory
 * fd (openat, O_NOFOLLOW), which pins the directory: whoever can change
 * what restore reads owns the directory or one of its files, or can write
 * to them through their mode. One user other than root is a provenance
 * (restore confines the process to that user's privileges); a file writable
 * by its group or by everyone, or files of two users, is none.
 */
#define LOG_AREA "image"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image-internal.h"
#include "util/log.h"

static void prov_set(struct ckpt_provenance *p, enum ckpt_provenance_kind kind, uid_t uid,
		     gid_t gid, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void prov_set(struct ckpt_provenance *p, enum ckpt_provenance_kind kind, uid_t uid,
		     gid_t gid, const char *fmt, ...)
{
	va_list ap;

	p->kind = kind;
	p->uid = uid;
	p->gid = gid;
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
}

void ckpt_provenance_root(struct ckpt_provenance *p)
{
	prov_set(p, CKPT_PROV_ROOT, 0, 0, "only root can write it");
}

int ckpt_provenance_merge(struct ckpt_provenance *into, const struct ckpt_provenance *p)
{
	if (into->kind == CKPT_PROV_NONE || p->kind == CKPT_PROV_ROOT)
		return into->kind == CKPT_PROV_NONE ? -EPERM : 0;
	if (p->kind == CKPT_PROV_NONE || into->kind == CKPT_PROV_ROOT) {
		*into = *p;
		return p->kind == CKPT_PROV_NONE ? -EPERM : 0;
	}
	if (into->uid == p->uid)
		return 0;
	/* Two users: neither one's privileges are the image's. */
	{
		char first[sizeof(into->why)];

		snprintf(first, sizeof(first), "%s", into->why);
		prov_set(into, CKPT_PROV_NONE, 0, 0, "two users can change it: %.150s, and %.150s",
			 first, p->why);
	}
	return -EPERM;
}

/* What the owner and mode of @st (@name in @path) add to @p. */
static int prov_file(struct ckpt_provenance *p, const struct stat *st, const char *path,
		     const char *name)
{
	bool dir = S_ISDIR(st->st_mode);
	struct ckpt_provenance one;

	/* A sticky directory writable by all (/tmp): nobody else renames or removes what is ours. */
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(dir && (st->st_mode & S_ISVTX))) {
		prov_set(&one, CKPT_PROV_NONE, 0, 0,
			 "'%s%s%s' (mode %04o) can be written by %s", path, name ? "/" : "",
			 name ? name : "", (unsigned int)(st->st_mode & 07777),
			 (st->st_mode & S_IWOTH) ? "everyone" : "every member of its group");
		return ckpt_provenance_merge(p, &one);
	}
	if (st->st_uid == 0)
		return 0;
	prov_set(&one, CKPT_PROV_USER, st->st_uid, st->st_gid, "'%s%s%s' is owned by uid %u", path,
		 name ? "/" : "", name ? name : "", (unsigned int)st->st_uid);
	return ckpt_provenance_merge(p, &one);
}

static int prov_at(struct ckpt_provenance *p, int dirfd, const char *path, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0; /* not there: nothing is read from it */
		prov_set(p, CKPT_PROV_NONE, 0, 0, "cannot look at '%s/%s': %s", path, name,
			 strerror(errno));
		return -EPERM;
	}
	return prov_file(p, &st, path, name);
}

int ckpt_image_provenance(const struct ckpt_image *img, struct ckpt_provenance *ret)
{
	static const char *const fixed[] = { INVENTORY_NAME, INDEX_NAME, PAGES_NAME };
	struct ckpt_provenance p;
	struct stat st;
	int r;

	ckpt_provenance_root(&p);
	if (fstat(img->dirfd, &st) < 0) {
		prov_set(ret, CKPT_PROV_NONE, 0, 0, "cannot look at '%s': %s", img->path,
			 strerror(errno));
		return -EPERM;
	}
	r = prov_file(&p, &st, img->path, NULL);
	for (size_t i = 0; r == 0 && i < sizeof(fixed) / sizeof(fixed[0]); i++)
		r = prov_at(&p, img->dirfd, img->path, fixed[i]);
	for (size_t i = 0; r == 0 && i < img->inv.nr_files; i++)
		r = prov_at(&p, img->dirfd, img->path, img->inv.files[i].name);
	*ret = p;
	return r;
}

int ckpt_chain_provenance(const struct ckpt_chain *c, struct ckpt_provenance *ret)
{
	struct ckpt_provenance p, one;
	int r = 0;

	ckpt_provenance_root(&p);
	/* The chain, then the chains of the parent processes whose pages it holds (INHERIT). */
	for (size_t i = 0; r == 0 && i < chain_nr_images(c); i++) {
		if (ckpt_image_provenance(chain_image_at(c, i), &one) < 0) {
			p = one;
			r = -EPERM;
		} else if (p.kind == CKPT_PROV_USER && one.kind == CKPT_PROV_ROOT) {
			/*
			 * A user's checkpoint names its parent: pointed at one of
			 * root's, it would take root's pages for that user's process.
			 */
			prov_set(&p, CKPT_PROV_NONE, 0, 0,
				 "'%.120s' is root's only, yet the parent of a checkpoint uid %u can write "
				 "(%.120s)", ckpt_image_path(chain_image_at(c, i)), (unsigned int)p.uid, p.why);
			r = -EPERM;
		} else {
			r = ckpt_provenance_merge(&p, &one);
		}
	}
	*ret = p;
	return r;
}

int image_fs_as_provenance(const struct ckpt_chain *c, const char *path, struct thread_ids *fs)
{
	struct ckpt_provenance p;
	int r;

	fs->active = false;
	if (geteuid() != 0)
		return 0; /* the kernel: what a user writes is theirs */
	if (ckpt_chain_provenance(c, &p) < 0) {
		pr_err("cannot rewrite '%s': %s, so nobody vouches for it (docs/SECURITY.md)", path, p.why);
		return -EPERM;
	}
	if (p.kind != CKPT_PROV_USER)
		return 0;
	/* The writer's threads, started after, inherit the ids. */
	r = thread_ids_become(fs, p.uid, p.gid, &p.gid, 1, false);
	if (r < 0) {
		pr_err("cannot take the ids of uid %u to rewrite '%s': %s", (unsigned int)p.uid, path,
		       strerror(-r));
		return r;
	}
	pr_debug("'%s' is rewritten as uid %u: %s", path, (unsigned int)p.uid, p.why);
	return 0;
}
