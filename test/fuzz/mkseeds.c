/* SPDX-License-Identifier: MIT */
/*
 * Seed corpora for the fuzz targets, cut from real checkpoints written by
 * lib/image: mkseeds OUTDIR makes OUTDIR/{index,inventory,frame,image}/.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/image.h>

#include "util/fs.h"
#include "util/util.h"

#define PS CKPT_IMAGE_PAGE_SIZE

static void die(const char *what)
{
	fprintf(stderr, "mkseeds: %s\n", what);
	exit(1);
}

static void *slurp(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	char *buf;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (read_file_at(AT_FDCWD, path, &buf, len) < 0)
		die(path);
	return buf;
}

static void spill(const char *out, const char *sub, const char *name, const void *a, size_t alen,
		  const void *b, size_t blen)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", out, sub);
	(void)mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", out, sub, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write_all(fd, a, alen) < 0 || write_all(fd, b, blen) < 0)
		die(path);
	close(fd);
}

static void fill(unsigned char *p, unsigned int seed, int text)
{
	for (unsigned int i = 0; i < PS; i++)
		p[i] = text ? (unsigned char)("abc def ghi "[(i + seed) % 12])
			    : (unsigned char)((i * 2654435761u + seed) >> 13);
}

static void write_one(const char *path, const char *parent, int level, unsigned int variant)
{
	struct ckpt_image_writer_opts o = {
		.identity = { .pid = 77, .start_time = 5,
			      .boot_id = "0b7c3c1e-5a55-4c1a-9e1e-2f3a4b5c6d7e", .exe = "/bin/seed" },
		.parent = parent,
		.level = level,
		.frame_pages = 4,
		.threads = 1,
	};
	struct ckpt_image_writer *w;
	unsigned char pages[6 * PS];

	memset(pages, 0, sizeof(pages));
	for (unsigned int i = 0; i < 6; i++)
		if (i != 2)
			fill(pages + i * PS, i + variant, (int)(i & 1));
	if (ckpt_image_writer_new(path, &o, &w) < 0)
		die("writer");
	if (variant != 3) {
		if (ckpt_image_writer_add_data(w, 0x7f0000000000ULL + variant * 0x10000, 6, pages) < 0 ||
		    ckpt_image_writer_add_zero(w, 0x10000, 3) < 0 ||
		    ckpt_image_writer_add_hole(w, 0x400000, 2) < 0 ||
		    ckpt_image_writer_add_data(w, 0x1000, 1, pages + PS) < 0)
			die("pages");
	}
	if (ckpt_image_writer_put_file(w, "process.json", "{\"comm\":\"seed\"}\n", 16) < 0 ||
	    ckpt_image_writer_commit(w) < 0)
		die("commit");
	ckpt_image_writer_free(w);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name, *parent;
		int level;
	} cks[] = {
		{ "full", NULL, 1 }, { "stored", NULL, CKPT_IMAGE_LEVEL_NONE },
		{ "delta", "../full", 3 }, { "empty", "../delta", -1 },
	};
	char tmp[] = "/tmp/ckpt-mkseeds-XXXXXX";

	if (argc != 2)
		die("usage: mkseeds OUTDIR");
	if (!mkdtemp(tmp))
		die("mkdtemp");
	(void)mkdir(argv[1], 0755);
	for (unsigned int i = 0; i < sizeof(cks) / sizeof(cks[0]); i++) {
		struct ckpt_image *img;
		const struct ckpt_image_index *idx;
		char path[4096];
		size_t ilen, zlen, jlen;
		unsigned char *ib, *zb;
		char *jb;
		uint32_t l32;

		snprintf(path, sizeof(path), "%s/%s", tmp, cks[i].name);
		write_one(path, cks[i].parent, cks[i].level, i);
		ib = slurp(path, "pages.idx", &ilen);
		zb = slurp(path, "pages.zst", &zlen);
		jb = slurp(path, "inventory.json", &jlen);
		spill(argv[1], "index", cks[i].name, ib, ilen, "", 0);
		spill(argv[1], "inventory", cks[i].name, jb, jlen, "", 0);
		l32 = htole32((uint32_t)ilen);
		{
			unsigned char *both = malloc(ilen + zlen + 4);

			memcpy(both, &l32, 4);
			memcpy(both + 4, ib, ilen);
			memcpy(both + 4 + ilen, zb, zlen);
			spill(argv[1], "image", cks[i].name, both, ilen + zlen + 4, "", 0);
			free(both);
		}
		if (ckpt_image_open(path, NULL, &img) < 0)
			die("open");
		idx = ckpt_image_index(img);
		for (size_t f = 0; f < idx->nr_frames; f++) {
			unsigned char sel = (unsigned char)(idx->frames[f].nr_pages - 1);
			char name[64];

			snprintf(name, sizeof(name), "%s-%zu", cks[i].name, f);
			spill(argv[1], "frame", name, &sel, 1, zb + idx->frames[f].offset,
			      idx->frames[f].csize);
		}
		ckpt_image_close(img);
		free(ib);
		free(zb);
		free(jb);
	}
	if (rm_rf_at(AT_FDCWD, tmp) < 0)
		die("cleanup");
	return 0;
}
