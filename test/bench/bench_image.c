/* SPDX-License-Identifier: MIT */
/*
 * Throughput of the checkpoint writer (not part of make check):
 * SIZE MiB of pages, half zero, a quarter text-like, a quarter random,
 * written through ckpt_image_writer_add_data() in 1 MiB calls and
 * committed (fsync included); then read back with the chain iterator.
 * The floor: zstd alone, one thread, same level, on the same non-zero
 * bytes in the same 1 MiB frames.
 *
 *   bench_image [-d DIR] [-s MiB] [-l LEVEL|none] [-t THREADS] [-f FRAME_PAGES] [-r RUNS]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <ckpt/image.h>

#define PS 4096u

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void text_page(unsigned char *p)
{
	static const char *const words[] = {
		"the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with",
		"process", "memory", "page", "checkpoint", "restore", "kernel", "file", "error",
		"return", "struct", "int", "char", "void", "static", "const", "if", "else", "while",
		"{", "}", "(", ");", "0x7f", "NULL", "data", "buffer", "length", "offset",
	};
	size_t o = 0;

	while (o < PS) {
		const char *w = words[next() % (sizeof(words) / sizeof(words[0]))];
		size_t n = strlen(w);

		for (size_t i = 0; i < n && o < PS; i++)
			p[o++] = (unsigned char)w[i];
		if (o < PS)
			p[o++] = next() % 11 ? ' ' : '\n';
	}
}

int main(int argc, char **argv)
{
	const char *dir = "/dev/shm";
	size_t mib = 1024, runs = 3;
	struct ckpt_image_writer_opts o = {
		.identity = { .pid = 1, .start_time = 1, .boot_id = "0b7c3c1e-5a55-4c1a-9e1e-2f3a4b5c6d7e",
			      .exe = "/bench" },
		.level = 1,
	};
	unsigned char *mem, *nz;
	size_t pages, nr_nz = 0, frame_bytes;
	double best = 1e9, best_read = 1e9, t, t_add, floor_t;
	struct ckpt_image_writer_stats st = { 0 };
	char path[4096], level[16];
	int c;

	while ((c = getopt(argc, argv, "d:s:l:t:f:r:")) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 's': mib = strtoul(optarg, NULL, 0); break;
		case 'l':
			if (ckpt_image_parse_level(optarg, &o.level) < 0) {
				fprintf(stderr, "bad level '%s'\n", optarg);
				return 2;
			}
			break;
		case 't': o.threads = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'f': o.frame_pages = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'r': runs = strtoul(optarg, NULL, 0); break;
		default: return 2;
		}
	}
	pages = mib * 256;
	mem = malloc(pages * PS);
	nz = malloc(pages * PS);
	if (!mem || !nz)
		return 1;
	/* Groups of 16 pages: 8 zero, 4 text-like, 4 random. */
	for (size_t i = 0; i < pages; i++) {
		unsigned char *p = mem + i * PS;

		switch (i % 16 / 4) {
		case 0:
		case 1:
			memset(p, 0, PS);
			break;
		case 2:
			text_page(p);
			break;
		default:
			for (size_t w = 0; w < PS / 8; w++)
				((uint64_t *)p)[w] = next();
		}
		if (i % 16 >= 8)
			memcpy(nz + nr_nz++ * PS, p, PS);
	}

	for (size_t run = 0; run < runs; run++) {
		struct ckpt_image_writer *w;
		struct ckpt_chain *ch;
		struct ckpt_chain_iter *it;
		struct ckpt_chain_range rg;
		uint64_t sum = 0;

		snprintf(path, sizeof(path), "%s/ckpt-bench-%d-%zu", dir, (int)getpid(), run);
		t = now();
		if (ckpt_image_writer_new(path, &o, &w) < 0)
			return 1;
		for (size_t i = 0; i < pages; i += 256)
			if (ckpt_image_writer_add_data(w, 0x7f0000000000ULL + i * PS, 256, mem + i * PS) < 0)
				return 1;
		t_add = now() - t;
		if (ckpt_image_writer_commit(w) < 0)
			return 1;
		t = now() - t;
		ckpt_image_writer_get_stats(w, &st);
		ckpt_image_writer_free(w);
		fprintf(stderr, "run %zu: write %.3f s (adding %.3f s)\n", run, t, t_add);
		if (t < best)
			best = t;

		t = now();
		if (ckpt_chain_open(path, NULL, &ch) < 0 || ckpt_chain_iter_new(ch, &it) < 0)
			return 1;
		while (ckpt_chain_iter_next(it, &rg) == 1)
			if (rg.kind == CKPT_PAGE_DATA)
				sum += ((const unsigned char *)rg.data)[0];
		ckpt_chain_iter_free(it);
		ckpt_chain_close(ch);
		t = now() - t;
		if (t < best_read)
			best_read = t;
		{
			char cmd[4200];

			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
			if (system(cmd) != 0)
				return 1;
		}
		if (sum == 1) /* keep the reads */
			fputc(' ', stderr);
	}

	/* Floor: zstd alone, one thread, on the same non-zero bytes. */
	frame_bytes = (o.frame_pages ? o.frame_pages : CKPT_IMAGE_FRAME_PAGES_DEFAULT) * (size_t)PS;
	floor_t = 1e9;
	if (o.level != CKPT_IMAGE_LEVEL_NONE) {
		ZSTD_CCtx *cctx = ZSTD_createCCtx();
		size_t cap = ZSTD_compressBound(frame_bytes);
		void *out = malloc(cap);

		ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, o.level);
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
		for (size_t run = 0; run < runs; run++) {
			t = now();
			for (size_t off = 0; off < nr_nz * PS; off += frame_bytes) {
				size_t n = nr_nz * PS - off < frame_bytes ? nr_nz * PS - off : frame_bytes;

				if (ZSTD_isError(ZSTD_compress2(cctx, out, cap, nz + off, n)))
					return 1;
			}
			t = now() - t;
			if (t < floor_t)
				floor_t = t;
		}
		ZSTD_freeCCtx(cctx);
		free(out);
	}

	if (o.level == CKPT_IMAGE_LEVEL_NONE)
		snprintf(level, sizeof(level), "none");
	else
		snprintf(level, sizeof(level), "%d", o.level);
	printf("input        %zu MiB: %zu zero, %zu non-zero pages (dir %s, level %s, %u threads)\n",
	       mib, pages - nr_nz, nr_nz, dir, level, o.threads ? o.threads : 2);
	printf("write        %.3f s  %.0f MiB/s of input (best of %zu, commit + fsync included)\n",
	       best, (double)mib / best, runs);
	printf("pages.zst    %.1f MiB (%.2fx of the non-zero bytes), %llu frames\n",
	       (double)st.pages_bytes / (1 << 20),
	       (double)nr_nz * PS / (double)(st.pages_bytes ? st.pages_bytes : 1),
	       (unsigned long long)st.frames);
	printf("read back    %.3f s  %.0f MiB/s (chain iterator, every frame decoded)\n", best_read,
	       (double)mib / best_read);
	if (floor_t < 1e9)
		printf("zstd floor   %.3f s on 1 thread (%.3f s ideally split over 2 cores) for %zu MiB\n",
		       floor_t, floor_t / 2, nr_nz * PS >> 20);
	free(mem);
	free(nz);
	return 0;
}
