/* SPDX-License-Identifier: MIT */
/*
 * Dump costs (issue 5), side by side in one run, on a child process that
 * holds SIZE GiB of private anonymous memory: per group of 16 pages, 8 zero
 * pages, 4 text-like pages (words; zstd -1 makes about 3x of them) and 4
 * random pages. Everything is populated before anything is measured.
 *
 * Full dumps at zstd levels -5, 1, 3 and none, and deltas (--parent) after
 * 1% and 10% of the pages were written again (random pages, same mix), all
 * with CKPT_DUMP_LEAVE_RUNNING so that one child serves every dump. Each
 * dump goes to a new directory under IMGDIR, removed once measured.
 *
 * In the same run, interleaved with the dumps (the VM is noisy): the floor,
 * libzstd alone at the same level on exactly the non-zero page bytes the
 * dump stores, in frames of 1 MiB like the writer's, on 2 threads (frames
 * dealt to two workers, as lib/image does) and on 1; "disk": writing as
 * many bytes as the image holds into IMGDIR, fsync included; and "stream":
 * two threads that read the process's memory 1 MiB at a time, drop the zero
 * pages and compress the rest, with no copy buffer and no file (what a dump
 * could do that keeps the process frozen until the end).
 *
 * Apart, to explain where the time goes: populating a buffer the size of
 * lib/dump's (4 KiB pages, THP, THP on 2 threads), copying the memory out
 * (1 and 2 threads), the writer's zero check and memcpy; the final fsync
 * with and without early writeback; and the parts of a delta's freeze
 * (seize, ckpt_dump_collect() with ckpt on the child's vCPU or the other
 * one, one remote syscall, reading smaps and maps, page selection and copy
 * of 1% of the pages).
 *
 * The VM hands free guest memory back to the host (free page reporting),
 * and touching memory that was given back costs several times the touch of
 * backed memory. So that this does not count as ckpt's cost, every dump and
 * every disk write is preceded by populating and freeing as much memory as
 * it will allocate (prewarm()); that time is printed apart, with the VM's
 * rates (vm_probe()).
 *
 * Every figure is the median of REPS runs.
 * Usage: bench-dump [REPS [GIB,... [IMGDIR,... [delta|full1|kill1]]]]   defaults: 5 1,4 /tmp,/dev/shm
 * ("delta": the incremental dumps only, no baselines, full dumps or freeze parts;
 *  "full1": the full dumps at level 1 only, with their floors; "kill1": the same
 *  in kill mode, the default of ckpt dump, a new child after each)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <ckpt/dump.h>
#include <ckpt/image.h>
#include <ckpt/inject.h>
#include <ckpt/state.h>

#include "compat/pagemap.h"
#include "util/util.h"

#define PS 4096UL
#define FRAME_PAGES CKPT_IMAGE_FRAME_PAGES_DEFAULT
#define MAX_REPS 32
#define MAX_SIZES 8
#define MAX_DIRS 4

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double s[MAX_REPS];

	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_d);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void *map_populated(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "cannot map %zu MiB\n", len >> 20);
		exit(1);
	}
	if (madvise(p, len, MADV_POPULATE_WRITE) < 0)
		perror("MADV_POPULATE_WRITE");
	return p;
}

/* ---- the workload: page @idx, version @ver, always the same bytes ---- */

enum page_class { PC_ZERO, PC_TEXT, PC_RANDOM };

static enum page_class class_of(size_t idx)
{
	unsigned int k = idx % 16;

	return k < 8 ? PC_ZERO : k < 12 ? PC_TEXT : PC_RANDOM;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void text_page(unsigned char *p, uint64_t *s)
{
	static const char *const words[] = {
		"the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with",
		"process", "memory", "page", "checkpoint", "restore", "kernel", "file", "error",
		"return", "struct", "int", "char", "void", "static", "const", "if", "else", "while",
		"{", "}", "(", ");", "0x7f", "NULL", "data", "buffer", "length", "offset",
	};
	size_t o = 0;

	while (o < PS) {
		uint64_t r = splitmix(s);
		const char *w = words[r % (sizeof(words) / sizeof(words[0]))];

		for (size_t i = 0; w[i] && o < PS; i++)
			p[o++] = (unsigned char)w[i];
		if (o < PS)
			p[o++] = (r >> 32) % 11 ? ' ' : '\n';
	}
}

static void fill_page(unsigned char *p, size_t idx, uint64_t ver)
{
	uint64_t s = idx * 0x100000001b3ULL ^ (ver + 1) * 0xd6e8feb86659fd93ULL;

	switch (class_of(idx)) {
	case PC_ZERO:
		memset(p, 0, PS);
		break;
	case PC_TEXT:
		text_page(p, &s);
		break;
	case PC_RANDOM:
		for (size_t w = 0; w < PS / 8; w++)
			((uint64_t *)p)[w] = splitmix(&s);
		break;
	}
}

/* @count distinct pages out of @npages chosen by @seed, into @ret in address order. */
static size_t pick_pages(size_t npages, size_t count, uint64_t seed, size_t *ret)
{
	uint64_t *bits = calloc((npages + 63) / 64, sizeof(*bits));
	size_t got = 0, n = 0;

	if (!bits)
		exit(1);
	while (got < count) {
		size_t i = splitmix(&seed) % npages;

		if (!(bits[i / 64] >> (i % 64) & 1)) {
			bits[i / 64] |= 1ULL << (i % 64);
			got++;
		}
	}
	for (size_t i = 0; i < npages; i++)
		if (bits[i / 64] >> (i % 64) & 1)
			ret[n++] = i;
	free(bits);
	return n;
}

/* ---- the child ---- */

struct cmd {
	uint64_t seed;  /* 0: exit */
	uint64_t count; /* pages to write again, version = seed */
};

static void child_main(int from, int to, size_t npages)
{
	unsigned char *m = mmap(NULL, npages * PS, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t *idx = malloc(npages * sizeof(*idx));
	double t0 = now_s(), v[2];

	if (m == MAP_FAILED || !idx)
		_exit(1);
	for (size_t i = 0; i < npages; i++)
		fill_page(m + i * PS, i, 0);
	v[0] = (double)(uintptr_t)m;
	v[1] = now_s() - t0;
	if (write(to, v, sizeof(v)) != sizeof(v))
		_exit(1);
	for (;;) {
		struct cmd c;
		size_t n;

		if (read(from, &c, sizeof(c)) != sizeof(c) || !c.seed)
			_exit(0);
		t0 = now_s();
		n = pick_pages(npages, c.count, c.seed, idx);
		for (size_t i = 0; i < n; i++)
			fill_page(m + idx[i] * PS, idx[i], c.seed);
		v[0] = now_s() - t0;
		if (write(to, v, sizeof(v[0])) != sizeof(v[0]))
			_exit(1);
	}
}

struct child {
	pid_t pid;
	int to, from;
	uint64_t base;
	size_t npages;
	double fill_s;
};

static void child_start(struct child *c, size_t npages)
{
	int a[2], b[2];
	double v[2];

	if (pipe(a) || pipe(b))
		exit(1);
	fflush(stdout);
	fflush(stderr);
	c->pid = fork();
	if (c->pid < 0)
		exit(1);
	if (c->pid == 0) {
		close(a[1]);
		close(b[0]);
		child_main(a[0], b[1], npages);
	}
	close(a[0]);
	close(b[1]);
	c->to = a[1];
	c->from = b[0];
	c->npages = npages;
	if (read(c->from, v, sizeof(v)) != sizeof(v)) {
		fprintf(stderr, "the child could not populate %zu MiB\n", npages * PS >> 20);
		exit(1);
	}
	c->base = (uint64_t)v[0];
	c->fill_s = v[1];
}

static void child_write(struct child *c, uint64_t seed, size_t count)
{
	struct cmd m = { seed, count };
	double t;

	if (write(c->to, &m, sizeof(m)) != sizeof(m) || read(c->from, &t, sizeof(t)) != sizeof(t)) {
		fprintf(stderr, "the child died\n");
		exit(1);
	}
}

static void child_stop(struct child *c)
{
	struct cmd m = { 0, 0 };

	if (write(c->to, &m, sizeof(m)) < 0)
		kill(c->pid, SIGKILL);
	close(c->to);
	close(c->from);
	waitpid(c->pid, NULL, 0);
}

/* ---- directories ---- */

static uint64_t tree_bytes;

static int add_size(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)path;
	(void)f;
	if (type == FTW_F)
		tree_bytes += (uint64_t)sb->st_size;
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	(void)sb;
	(void)f;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0)
		fprintf(stderr, "cannot remove '%s': %s\n", path, strerror(errno));
	return 0;
}

static uint64_t du(const char *dir)
{
	tree_bytes = 0;
	nftw(dir, add_size, 16, FTW_PHYS);
	return tree_bytes;
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_PHYS | FTW_DEPTH);
}

/* ---- the floors ---- */

struct zjob {
	const unsigned char *src;
	size_t len;
	int level;
	pid_t pid;          /* stream: read [remote, remote + len) of @pid instead of @src */
	uint64_t remote;
	atomic_size_t next; /* next frame */
	atomic_size_t out;  /* compressed bytes */
};

static void *zworker(void *arg)
{
	struct zjob *j = arg;
	size_t fb = FRAME_PAGES * PS, cap = ZSTD_compressBound(fb), sum = 0;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	void *out = malloc(cap);
	unsigned char *in = j->pid ? malloc(fb) : NULL;

	if (!cctx || !out || (j->pid && !in))
		exit(1);
	/* What lib/image's frame_cctx_setup() asks for. */
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, j->level);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
	for (;;) {
		size_t f = atomic_fetch_add(&j->next, 1), off = f * fb, n;

		const unsigned char *src = j->src + off;

		if (off >= j->len)
			break;
		n = MIN(fb, j->len - off);
		if (j->pid) {
			/* Read 1 MiB of the process, keep its non-zero pages, compress them. */
			struct iovec local = { in, n };
			struct iovec remote = { (void *)(uintptr_t)(j->remote + off), n };
			size_t kept = 0;

			if (process_vm_readv(j->pid, &local, 1, &remote, 1, 0) != (ssize_t)n)
				exit(1);
			for (size_t p = 0; p < n; p += PS) {
				if (mem_is_zero(in + p, PS))
					continue;
				if (kept != p)
					memcpy(in + kept, in + p, PS);
				kept += PS;
			}
			if (!kept)
				continue;
			src = in;
			n = kept;
		}
		n = ZSTD_compress2(cctx, out, cap, src, n);
		if (ZSTD_isError(n)) {
			fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(n));
			exit(1);
		}
		sum += n;
	}
	atomic_fetch_add(&j->out, sum);
	ZSTD_freeCCtx(cctx);
	free(out);
	free(in);
	return NULL;
}

static double zjob_run(struct zjob *j, int threads, size_t *ret_out)
{
	pthread_t tid[2];
	double t = now_s();

	for (int i = 1; i < threads; i++)
		if (pthread_create(&tid[i], NULL, zworker, j))
			exit(1);
	zworker(j);
	for (int i = 1; i < threads; i++)
		pthread_join(tid[i], NULL);
	t = now_s() - t;
	if (ret_out)
		*ret_out = atomic_load(&j->out);
	return t;
}

/* Seconds for zstd at @level on @len bytes, frames of 1 MiB dealt to @threads threads. */
static double zstd_floor(const unsigned char *src, size_t len, int level, int threads,
			 size_t *ret_out)
{
	struct zjob j = { .src = src, .len = len, .level = level };

	return zjob_run(&j, threads, ret_out);
}

/*
 * A pipeline that streams from the process (what a dump that keeps the
 * process frozen until the end could do, without the copy buffer): two
 * threads take 1 MiB spans of its memory, process_vm_readv them, drop the
 * zero pages and compress the rest as one frame. No file.
 */
static double zstd_stream(pid_t pid, uint64_t remote, size_t len, int level)
{
	struct zjob j = { .len = len, .level = level, .pid = pid, .remote = remote };

	return zjob_run(&j, 2, NULL);
}

/*
 * Seconds to write @len bytes (taken from @src, @src_len bytes) into a new
 * file of @dir, fsync included.
 */
static double disk_floor(const char *dir, const unsigned char *src, size_t src_len, size_t len)
{
	size_t wrap = src_len > (1UL << 20) ? src_len - (1UL << 20) : 0;

	char path[PATH_MAX];
	double t;
	int fd;

	snprintf(path, sizeof(path), "%s/ckpt-bench-dump-disk-%d", dir, (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "cannot create '%s': %s\n", path, strerror(errno));
		exit(1);
	}
	t = now_s();
	for (size_t off = 0; off < len;) {
		size_t at = wrap ? off % wrap : 0;
		ssize_t n = write(fd, src + at, MIN(MIN(1UL << 20, src_len), len - off));

		if (n <= 0)
			exit(1);
		off += (size_t)n;
	}
	if (fsync(fd) < 0)
		exit(1);
	t = now_s() - t;
	close(fd);
	unlink(path);
	return t;
}

/* ---- one dump ---- */

enum field {
	F_TOTAL, F_FREEZE, F_COLLECT, F_TRACK, F_COPY, F_WRITE, F_OTHER,
	F_IMAGE, F_PAGES, F_Z2, F_Z1, F_DISK, F_STREAM, F_PREFREEZE, F_PRECOPY, NF
};

struct sample {
	double v[NF][MAX_REPS];
	int n;
};

static double med(const struct sample *s, enum field f)
{
	return median(s->v[f], s->n);
}

struct bench {
	int reps;
	const char *rundir;
	struct child child;
	unsigned char *nz; /* version-0 non-zero pages of the child, in address order */
	size_t nz_len;
	unsigned int seq;
	double warm_s, warm_gib; /* pre-warm before each dump, summed */
	bool kill;               /* full dumps in kill mode (a new child after each) */
};

/*
 * This VM reports free memory to the host (virtio-balloon free page
 * reporting): memory freed a second ago is unbacked, and touching it again
 * costs several times the touch of backed memory. Populate and free
 * @bytes right before a measurement, so that the memory it allocates is
 * backed, as it would be on a machine with real RAM; the time is counted
 * apart.
 */
static void prewarm_huge(struct bench *b, size_t bytes, bool huge)
{
	double t = now_s();
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		exit(1);
	if (huge)
		madvise(m, bytes, MADV_HUGEPAGE);
	madvise(m, bytes, MADV_POPULATE_WRITE);

	munmap(m, bytes);
	b->warm_s += now_s() - t;
	b->warm_gib += (double)bytes / (1 << 30);
}

static void prewarm(struct bench *b, size_t bytes)
{
	prewarm_huge(b, bytes, false);
}

static const char *level_name(int level, char *buf, size_t len)
{
	if (level == CKPT_IMAGE_LEVEL_NONE)
		return "none";
	snprintf(buf, len, "%d", level);
	return buf;
}

/*
 * Dump the child into a new directory under @imgdir (a delta of @parent
 * if not NULL); @ret_dir gets its path, for the caller to remove.
 */
static void dump_once(struct bench *b, const char *imgdir, int level, const char *parent,
		      char *ret_dir, size_t dirlen, struct ckpt_dump_stats *st)
{
	struct ckpt_dump_opts o = {
		.pid = b->child.pid,
		.dir = ret_dir,
		.parent = parent,
		.after = b->kill && !parent ? CKPT_DUMP_KILL : CKPT_DUMP_LEAVE_RUNNING,
		.level = level,
		.allow_unrestorable = true, /* the pipes to the benchmark */
		.rundir = b->rundir,
	};
	int r;

	size_t raw = b->child.npages * PS;

	snprintf(ret_dir, dirlen, "%s/ckpt-bench-dump-%d-%u", imgdir, (int)getpid(), b->seq++);
	/* lib/dump's buffer (RSS * 9/8 + 16 MiB; 64 MiB for a delta), the image's page cache. */
	prewarm(b, parent ? (128UL << 20) + raw / 8 : raw + raw / 8 + b->nz_len + (64UL << 20));
	r = ckpt_dump_run(&o, st);
	if (r < 0) {
		fprintf(stderr, "dump of pid %d to '%s' failed: %s\n", o.pid, ret_dir,
			strerror(-r));
		exit(1);
	}
	if (parent && !st->delta) {
		fprintf(stderr, "the dump of '%s' is not a delta: %s\n", ret_dir, st->fallback);
		exit(1);
	}
}

static void record(struct sample *s, const struct ckpt_dump_stats *st, uint64_t image)
{
	s->v[F_TOTAL][s->n] = (double)st->total_ns / 1e9;
	s->v[F_FREEZE][s->n] = (double)st->freeze_ns / 1e9;
	s->v[F_COLLECT][s->n] = (double)st->collect_ns / 1e9;
	s->v[F_TRACK][s->n] = (double)st->track_ns / 1e9;
	s->v[F_COPY][s->n] = (double)st->copy_ns / 1e9;
	s->v[F_WRITE][s->n] = (double)st->write_ns / 1e9;
	s->v[F_OTHER][s->n] = (double)(st->total_ns - st->freeze_ns - st->write_ns) / 1e9;
	s->v[F_IMAGE][s->n] = (double)image;
	s->v[F_PAGES][s->n] = (double)st->pages_data;
	s->v[F_PREFREEZE][s->n] = (double)st->prefreeze_ns / 1e9;
	s->v[F_PRECOPY][s->n] = (double)st->precopy_ns / 1e9;
}

static void log_rep(const char *what, int rep, const struct ckpt_dump_stats *st, uint64_t image,
		    double z2, double z1)
{
	fprintf(stderr, "  %s rep %d: total %.3f s freeze %.2f ms (collect %.2f track %.2f copy %.2f) "
		"write %.3f s, %llu data %llu zero pages, image %.1f MiB; zstd 2T %.3f 1T %.3f s\n",
		what, rep, st->total_ns / 1e9, st->freeze_ns / 1e6, st->collect_ns / 1e6,
		st->track_ns / 1e6, st->copy_ns / 1e6, st->write_ns / 1e9,
		(unsigned long long)st->pages_data, (unsigned long long)st->pages_zero,
		(double)image / (1 << 20), z2, z1);
}

static void full_point(struct bench *b, const char *imgdir, int level)
{
	double raw = (double)(b->child.npages * PS);
	struct sample s = { 0 };
	char dir[PATH_MAX], lv[16];

	for (int rep = 0; rep < b->reps; rep++, s.n++) {
		struct ckpt_dump_stats st;
		uint64_t image;

		dump_once(b, imgdir, level, NULL, dir, sizeof(dir), &st);
		image = du(dir);
		rm_rf(dir);
		record(&s, &st, image);
		ckpt_dump_stats_done(&st);
		if (b->kill) {
			/* Killed by the dump: the same child again, for the floors and the next rep. */
			size_t k = 0;

			close(b->child.to);
			close(b->child.from);
			waitpid(b->child.pid, NULL, 0);
			/* Not inherited by the new child: it would hold (and dump) a copy. */
			munmap(b->nz, b->nz_len);
			child_start(&b->child, b->child.npages);
			b->nz = map_populated(b->nz_len);
			for (size_t p = 0; p < b->child.npages; p++)
				if (class_of(p) != PC_ZERO)
					fill_page(b->nz + k++ * PS, p, 0);
		}
		if (level != CKPT_IMAGE_LEVEL_NONE) {
			s.v[F_Z2][s.n] = zstd_floor(b->nz, b->nz_len, level, 2, NULL);
			s.v[F_Z1][s.n] = zstd_floor(b->nz, b->nz_len, level, 1, NULL);
			s.v[F_STREAM][s.n] = zstd_stream(b->child.pid, b->child.base,
							 b->child.npages * PS, level);
		}
		prewarm(b, image + (64UL << 20));
		s.v[F_DISK][s.n] = disk_floor(imgdir, b->nz, b->nz_len, image);
		log_rep("full", rep, &st, image, s.v[F_Z2][s.n], s.v[F_Z1][s.n]);
	}
	printf("| %g GiB | %s | %s | %.3f | %.0f | %.1f | %.2f | %.2f | %.1f | %.3f | %.3f | %.1f | %.3f | ",
	       raw / (1 << 30), imgdir, level_name(level, lv, sizeof(lv)), med(&s, F_TOTAL),
	       raw / (1 << 20) / med(&s, F_TOTAL), med(&s, F_FREEZE) * 1e3,
	       med(&s, F_COLLECT) * 1e3, med(&s, F_TRACK) * 1e3, med(&s, F_COPY) * 1e3,
	       med(&s, F_WRITE), med(&s, F_OTHER), med(&s, F_IMAGE) / (1 << 20),
	       med(&s, F_IMAGE) / raw);
	if (level == CKPT_IMAGE_LEVEL_NONE)
		printf("- | - | %.3f | - | - | - |\n", med(&s, F_DISK));
	else
		printf("%.3f | %.3f | %.3f | %.2fx | %.3f | %.2fx |\n", med(&s, F_Z2), med(&s, F_Z1),
		       med(&s, F_DISK), med(&s, F_TOTAL) / med(&s, F_Z2), med(&s, F_STREAM),
		       med(&s, F_STREAM) / med(&s, F_Z2));
	fflush(stdout);
}

static void delta_point(struct bench *b, const char *imgdir, double pct)
{
	size_t npages = b->child.npages, count = (size_t)((double)npages * pct / 100);
	size_t *idx = malloc(count * sizeof(*idx));
	unsigned char *nz = malloc(count * PS + 1);
	struct sample s = { 0 };
	char pdir[PATH_MAX], dir[PATH_MAX];

	if (!idx || !nz)
		exit(1);
	for (int rep = 0; rep < b->reps; rep++, s.n++) {
		uint64_t seed = 1000 + b->seq, image;
		struct ckpt_dump_stats st;
		size_t n, nr_nz = 0;

		dump_once(b, imgdir, 1, NULL, pdir, sizeof(pdir), &st);
		ckpt_dump_stats_done(&st);
		child_write(&b->child, seed, count);
		dump_once(b, imgdir, 1, pdir, dir, sizeof(dir), &st);
		image = du(dir);
		rm_rf(dir);
		rm_rf(pdir);
		record(&s, &st, image);
		ckpt_dump_stats_done(&st);
		/* The floor: the same written non-zero pages, in address order. */
		n = pick_pages(npages, count, seed, idx);
		for (size_t i = 0; i < n; i++)
			if (class_of(idx[i]) != PC_ZERO)
				fill_page(nz + nr_nz++ * PS, idx[i], seed);
		s.v[F_Z2][s.n] = zstd_floor(nz, nr_nz * PS, 1, 2, NULL);
		s.v[F_Z1][s.n] = zstd_floor(nz, nr_nz * PS, 1, 1, NULL);
		prewarm(b, image + (64UL << 20));
		s.v[F_DISK][s.n] = disk_floor(imgdir, b->nz, b->nz_len, image);
		log_rep("delta", rep, &st, image, s.v[F_Z2][s.n], s.v[F_Z1][s.n]);
	}
	printf("| %g GiB | %s | %g%% | %.1f | %.2f | %.2f | %.1f | %.2f | %.2f | %.2f | %.1f | %.0f | %.2f | %.1f | %.1f | %.1f | %.2fx |\n",
	       (double)(npages * PS) / (1 << 30), imgdir, pct, med(&s, F_TOTAL) * 1e3,
	       med(&s, F_PREFREEZE) * 1e3, med(&s, F_FREEZE) * 1e3, med(&s, F_PRECOPY) * 1e3, med(&s, F_COLLECT) * 1e3, med(&s, F_TRACK) * 1e3,
	       med(&s, F_COPY) * 1e3, med(&s, F_WRITE) * 1e3, med(&s, F_PAGES),
	       med(&s, F_IMAGE) / (1 << 20), med(&s, F_Z2) * 1e3, med(&s, F_Z1) * 1e3,
	       med(&s, F_DISK) * 1e3, med(&s, F_TOTAL) / med(&s, F_Z2));
	fflush(stdout);
	free(idx);
	free(nz);
}

/*
 * Where the time of a full dump can go, measured apart: populating a
 * buffer the size lib/dump reserves (4 KiB pages; with MADV_HUGEPAGE; with
 * MADV_HUGEPAGE on two threads), process_vm_readv of the child's memory
 * into it in 1 MiB calls (one thread; two threads over halves), and the
 * writer's producer loop alone (mem_is_zero on every page, memcpy of the
 * non-zero ones into a 1 MiB frame) on one thread.
 */
struct range_job {
	pid_t pid;          /* 0: populate [m, m + len) */
	unsigned char *m;
	uint64_t remote;
	size_t len;
};

static void *range_run(void *arg)
{
	struct range_job *j = arg;

	if (!j->pid) {
		madvise(j->m, j->len, MADV_POPULATE_WRITE);
		return NULL;
	}
	for (size_t off = 0; off < j->len; off += 1UL << 20) {
		size_t n = MIN(1UL << 20, j->len - off);
		struct iovec local = { j->m + off, n };
		struct iovec remote = { (void *)(uintptr_t)(j->remote + off), n };

		if (process_vm_readv(j->pid, &local, 1, &remote, 1, 0) != (ssize_t)n)
			exit(1);
	}
	return NULL;
}

/* Seconds for @j, split over @threads threads (halves on page boundaries). */
static double range_timed(const struct range_job *j, int threads)
{
	size_t half = ALIGN_DOWN(j->len / 2, 2UL << 20);
	struct range_job parts[2] = { *j, *j };
	pthread_t tid;
	double t = now_s();

	if (threads == 2) {
		parts[0].len = half;
		parts[1].m += half;
		parts[1].remote += half;
		parts[1].len -= half;
		if (pthread_create(&tid, NULL, range_run, &parts[1]))
			exit(1);
	}
	range_run(&parts[0]);
	if (threads == 2)
		pthread_join(tid, NULL);
	return now_s() - t;
}

static void baselines(struct bench *b)
{
	enum { V_4K, V_THP, V_THP2, NV };
	size_t len = b->child.npages * PS, cap = ALIGN_UP(len + len / 8 + (16UL << 20), 2UL << 20);
	double pop[NV][MAX_REPS], rd[NV][MAX_REPS], prod[MAX_REPS];
	unsigned char *frame = map_populated(FRAME_PAGES * PS);

	for (int rep = 0; rep < b->reps; rep++) {
		for (int v = 0; v < NV; v++) {
			int threads = v == V_THP2 ? 2 : 1;
			struct range_job j = { 0, NULL, b->child.base, cap };
			double t;

			prewarm_huge(b, cap, v != V_4K);
			t = now_s();
			j.m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				   -1, 0);
			if (j.m == MAP_FAILED)
				exit(1);
			if (v != V_4K)
				madvise(j.m, cap, MADV_HUGEPAGE);
			pop[v][rep] = now_s() - t + range_timed(&j, threads);
			j.pid = b->child.pid;
			j.len = len;
			rd[v][rep] = range_timed(&j, threads);
			if (v == V_4K) {
				size_t in_frame = 0;

				t = now_s();
				for (size_t p = 0; p < len / PS; p++) {
					if (mem_is_zero(j.m + p * PS, PS))
						continue;
					memcpy(frame + in_frame * PS, j.m + p * PS, PS);
					in_frame = (in_frame + 1) % FRAME_PAGES;
				}
				prod[rep] = now_s() - t;
			}
			munmap(j.m, cap);
		}
	}
	printf("| %g GiB | %zu | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n",
	       (double)len / (1 << 30), cap >> 20, median(pop[V_4K], b->reps),
	       median(pop[V_THP], b->reps), median(pop[V_THP2], b->reps), median(rd[V_4K], b->reps),
	       median(rd[V_THP], b->reps), median(rd[V_THP2], b->reps), median(prod, b->reps));
	fflush(stdout);
	munmap(frame, FRAME_PAGES * PS);
}

/*
 * The end of the writer on a disk: @len bytes written in 1 MiB calls, then
 * fsync; and the same with writeback started every 8 MiB
 * (sync_file_range(SYNC_FILE_RANGE_WRITE)) as the bytes come. Seconds of
 * the writes and of the final fsync, each.
 */
static void fsync_parts(struct bench *b, const char *dir, size_t len, double ret[2][2])
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/ckpt-bench-dump-sync-%d", dir, (int)getpid());
	for (int early = 0; early < 2; early++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		double t;

		if (fd < 0)
			exit(1);
		prewarm(b, len + (64UL << 20));
		t = now_s();
		for (size_t off = 0; off < len; off += 1UL << 20) {
			size_t n = MIN(1UL << 20, len - off);

			if (write(fd, b->nz + off % (b->nz_len - (1UL << 20)), n) != (ssize_t)n)
				exit(1);
			if (early && (off + n) % (8UL << 20) == 0)
				sync_file_range(fd, (off64_t)(off + n - (8UL << 20)), 8L << 20,
						SYNC_FILE_RANGE_WRITE);
		}
		ret[early][0] = now_s() - t;
		t = now_s();
		if (fsync(fd) < 0)
			exit(1);
		ret[early][1] = now_s() - t;
		close(fd);
		unlink(path);
	}
}

static void fsync_table(struct bench *b, const char *dir)
{
	double w[2][MAX_REPS], f[2][MAX_REPS];
	size_t len = b->child.npages * PS / 3;

	for (int rep = 0; rep < b->reps; rep++) {
		double r[2][2];

		fsync_parts(b, dir, len, r);
		for (int e = 0; e < 2; e++) {
			w[e][rep] = r[e][0];
			f[e][rep] = r[e][1];
		}
	}
	printf("| %g GiB | %s | %zu | %.3f | %.3f | %.3f | %.3f |\n",
	       (double)(b->child.npages * PS) / (1 << 30), dir, len >> 20, median(w[0], b->reps),
	       median(f[0], b->reps), median(w[1], b->reps), median(f[1], b->reps));
	fflush(stdout);
}

/* ---- where the freeze of a delta goes ---- */

/* Pin thread/process @pid (0: the caller) to @cpu, or to every CPU if @cpu < 0. */
static void pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int i = 0; i < CPU_SETSIZE && i < (int)sysconf(_SC_NPROCESSORS_ONLN); i++)
		if (cpu < 0 || i == cpu)
			CPU_SET(i, &set);
	if (sched_setaffinity(pid, sizeof(set), &set) < 0)
		perror("sched_setaffinity");
}

static double read_proc_ms(pid_t pid, const char *name)
{
	char path[64], buf[1 << 16];
	double t;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		exit(1);
	t = now_s();
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	t = now_s() - t;
	close(fd);
	return t * 1e3;
}

struct freeze_parts {
	double seize, collect, syscall_us;
};

/* Seize + release, ckpt_dump_collect() alone, and one remote getpid(), with ckpt on @self_cpu. */
static void freeze_parts_on(pid_t pid, int child_cpu, int self_cpu, struct freeze_parts *ret)
{
	struct ckpt_inject *inj;
	struct ckpt_state *state;
	const uint64_t none[6] = { 0 };
	int64_t res;
	double t, t_seize;
	int n = 64;

	pin(pid, child_cpu);
	pin(0, self_cpu);
	usleep(20000); /* let the child migrate (it sleeps in read) */
	t = now_s();
	if (ckpt_inject_seize(pid, 0, &inj) < 0)
		exit(1);
	t_seize = now_s() - t;
	t = now_s();
	if (ckpt_dump_collect(inj, NULL, &state) < 0)
		exit(1);
	ret->collect = (now_s() - t) * 1e3;
	ckpt_state_free(state);
	t = now_s();
	for (int i = 0; i < n; i++)
		if (ckpt_inject_syscall(inj, 0, SYS_getpid, none, &res) < 0)
			exit(1);
	ret->syscall_us = (now_s() - t) / n * 1e6;
	t = now_s();
	if (ckpt_inject_release(inj) < 0)
		exit(1);
	ret->seize = (t_seize + now_s() - t) * 1e3;
	pin(pid, -1);
	pin(0, -1);
}

/*
 * The page selection and copy of a delta, for @count random pages: one
 * read-only PAGEMAP_SCAN per run of dirty pages (what lib/dump does), one
 * scan over the whole region, and process_vm_readv of the pages in calls
 * of 1024 iovecs.
 */
struct readv_job {
	pid_t pid;
	uint64_t base;
	const size_t *idx;
	size_t n;
	unsigned char *buf;
};

/* process_vm_readv of the pages @idx, 1024 iovecs per call, as lib/dump does. */
static void *readv_pages(void *arg)
{
	struct readv_job *j = arg;
	struct iovec local, remote[1024];

	for (size_t i = 0; i < j->n; i += 1024) {
		size_t k = MIN(1024UL, j->n - i);

		for (size_t m = 0; m < k; m++) {
			uint64_t addr = j->base + j->idx[i + m] * PS;

			remote[m] = (struct iovec){ (void *)(uintptr_t)addr, PS };
		}
		local = (struct iovec){ j->buf + i * PS, k * PS };
		if (process_vm_readv(j->pid, &local, 1, remote, k, 0) != (ssize_t)(k * PS))
			exit(1);
	}
	return NULL;
}

/* ret_readv[0]: on one thread, [1]: the pages split between two threads. */
static void delta_copy_parts(struct bench *b, size_t count, double *ret_scan_runs,
			     double *ret_scan_all, double *ret_readv)
{
	size_t npages = b->child.npages, n;
	size_t *idx = malloc(count * sizeof(*idx));
	struct page_region *vec = malloc(4096 * sizeof(*vec));
	unsigned char *buf = map_populated(count * PS + PS);
	char path[64];
	double t;
	int pm;

	if (!idx || !vec)
		exit(1);
	n = pick_pages(npages, count, 4242, idx);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", b->child.pid);
	pm = open(path, O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		exit(1);
	for (int whole = 0; whole < 2; whole++) {
		t = now_s();
		for (size_t i = 0; i < n;) {
			size_t j = i + 1;
			uint64_t start, end;

			while (j < n && idx[j] == idx[j - 1] + 1)
				j++;
			start = whole ? b->child.base : b->child.base + idx[i] * PS;
			end = whole ? b->child.base + npages * PS
				    : b->child.base + idx[j - 1] * PS + PS;
			while (start < end) {
				struct pm_scan_arg a = {
					.size = sizeof(a), .start = start, .end = end,
					.vec = (uintptr_t)vec, .vec_len = 4096,
					.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
					.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED |
						       PAGE_IS_FILE,
				};

				if (ioctl(pm, PAGEMAP_SCAN, &a) < 0 || a.walk_end <= start)
					exit(1);
				start = a.walk_end;
			}
			i = whole ? n : j;
		}
		*(whole ? ret_scan_all : ret_scan_runs) = (now_s() - t) * 1e3;
	}
	close(pm);
	for (int threads = 1; threads <= 2; threads++) {
		struct readv_job j[2];
		pthread_t tid;
		size_t half = n / 2;

		j[0] = (struct readv_job){ b->child.pid, b->child.base, idx,
					   threads == 2 ? half : n, buf };
		j[1] = (struct readv_job){ b->child.pid, b->child.base, idx + half, n - half,
					   buf + half * PS };
		t = now_s();
		if (threads == 2 && pthread_create(&tid, NULL, readv_pages, &j[1]))
			exit(1);
		readv_pages(&j[0]);
		if (threads == 2)
			pthread_join(tid, NULL);
		ret_readv[threads - 1] = (now_s() - t) * 1e3;
	}
	munmap(buf, count * PS + PS);
	free(vec);
	free(idx);
}

static void freeze_parts(struct bench *b)
{
	double seize[MAX_REPS], same[MAX_REPS], across[MAX_REPS], sc_same[MAX_REPS],
		sc_across[MAX_REPS], smaps[MAX_REPS], maps[MAX_REPS], runs[MAX_REPS], all[MAX_REPS],
		readv[MAX_REPS], readv2[MAX_REPS];
	size_t count = b->child.npages / 100;
	pid_t pid = b->child.pid;

	for (int rep = 0; rep < b->reps; rep++) {
		struct freeze_parts a, x;

		freeze_parts_on(pid, 0, 0, &a);
		freeze_parts_on(pid, 0, 1, &x);
		seize[rep] = a.seize;
		same[rep] = a.collect;
		across[rep] = x.collect;
		sc_same[rep] = a.syscall_us;
		sc_across[rep] = x.syscall_us;
		smaps[rep] = read_proc_ms(pid, "smaps");
		maps[rep] = read_proc_ms(pid, "maps");
		double rv[2];

		delta_copy_parts(b, count, &runs[rep], &all[rep], rv);
		readv[rep] = rv[0];
		readv2[rep] = rv[1];
	}
	printf("| %g GiB | %.2f | %.2f | %.2f | %.1f | %.1f | %.2f | %.3f | %.2f | %.2f | %.2f | %.2f |\n",
	       (double)(b->child.npages * PS) / (1 << 30), median(seize, b->reps),
	       median(same, b->reps), median(across, b->reps), median(sc_same, b->reps),
	       median(sc_across, b->reps), median(smaps, b->reps), median(maps, b->reps),
	       median(runs, b->reps), median(all, b->reps), median(readv, b->reps),
	       median(readv2, b->reps));
	fflush(stdout);
}

/*
 * The VM's cost of touching memory: populate 1 GiB, again at once (the
 * memory just freed is still backed), and again after 3 s (reported to the
 * host meanwhile, unbacked).
 */
static void vm_probe(void)
{
	const char *when[] = { "first", "again at once", "again after 3 s" };

	for (int pass = 0; pass < 3; pass++) {
		double t;
		void *m;

		if (pass == 2)
			sleep(3);
		t = now_s();
		m = map_populated(1UL << 30);
		t = now_s() - t;
		munmap(m, 1UL << 30);
		printf("%s%s %.2f s/GiB", pass ? ", " : "VM: populating 1 GiB: ", when[pass], t);
	}
	printf("\n\n");
}

static int split(char *s, char **out, int max)
{
	int n = 0;

	for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ","))
		out[n++] = tok;
	return n;
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 5;
	char sizes_arg[256] = "1,4", dirs_arg[1024] = "/tmp,/dev/shm";
	char *size_s[MAX_SIZES], *dirs[MAX_DIRS];
	const int levels[] = { -5, 1, 3, CKPT_IMAGE_LEVEL_NONE };
	const double pcts[] = { 1, 10 };
	char rundir[] = "/tmp/ckpt-bench-dump-run-XXXXXX";
	double gib[MAX_SIZES];
	int nr_sizes, nr_dirs;
	struct bench b = { 0 };
	bool only_delta = argc > 4 && !strcmp(argv[4], "delta");
	bool only_kill1 = argc > 4 && !strcmp(argv[4], "kill1");
	bool only_full1 = only_kill1 || (argc > 4 && !strcmp(argv[4], "full1"));

	if (reps < 1 || reps > MAX_REPS)
		reps = 5;
	if (argc > 2)
		snprintf(sizes_arg, sizeof(sizes_arg), "%s", argv[2]);
	if (argc > 3)
		snprintf(dirs_arg, sizeof(dirs_arg), "%s", argv[3]);
	printf("median of %d runs; images in %s\n\n", reps, dirs_arg);
	nr_sizes = split(sizes_arg, size_s, MAX_SIZES);
	nr_dirs = split(dirs_arg, dirs, MAX_DIRS);
	for (int i = 0; i < nr_sizes; i++) {
		gib[i] = atof(size_s[i]);
		if (gib[i] <= 0) {
			fprintf(stderr, "usage: bench-dump [REPS [GIB,... [IMGDIR,... [delta|full1|kill1]]]]\n");
			return 2;
		}
	}
	if (!mkdtemp(rundir)) {
		perror("mkdtemp");
		return 1;
	}
	setenv("CKPT_RUNDIR", rundir, 1);
	b.reps = reps;
	b.rundir = rundir;

	vm_probe();

	for (int i = 0; i < nr_sizes; i++) {
		size_t npages = (size_t)(gib[i] * (1 << 30)) / PS / 16 * 16, nr_nz = 0;
		struct ckpt_dump_stats st;
		char dir[PATH_MAX];
		uint64_t image;

		child_start(&b.child, npages);
		b.nz_len = npages / 2 * PS;
		b.nz = map_populated(b.nz_len);
		for (size_t p = 0; p < npages; p++)
			if (class_of(p) != PC_ZERO)
				fill_page(b.nz + nr_nz++ * PS, p, 0);
		printf("## %g GiB (pid %d, populated in %.2f s)\n\n", gib[i], b.child.pid,
		       b.child.fill_s);

		/* The first dump arms the tracking: reported, kept out of the medians. */
		dump_once(&b, dirs[0], 1, NULL, dir, sizeof(dir), &st);
		image = du(dir);
		rm_rf(dir);
		printf("first dump (arms the tracking), level 1, %s: total %.3f s, freeze %.1f ms "
		       "(track %.1f ms), write %.3f s, image %.1f MiB\n\n", dirs[0], st.total_ns / 1e9,
		       st.freeze_ns / 1e6, st.track_ns / 1e6, st.write_ns / 1e9,
		       (double)image / (1 << 20));
		ckpt_dump_stats_done(&st);
		if (only_delta)
			goto deltas;
		if (only_full1) {
			b.kill = only_kill1;
			goto full;
		}

		printf("### baselines (s): buffer populate, copy out, writer's producer loop\n\n");
		printf("| size | buffer MiB | populate 4K | populate THP | THP, 2 threads | process_vm_readv into 4K | into THP | into THP, 2 threads | zero check + memcpy, 1 thread |\n");
		printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
		baselines(&b);
		printf("\n### the end of the writer: a third of the raw size written in 1 MiB calls, then fsync (s)\n\n");
		printf("| size | images | MiB | write | fsync | write, with writeback every 8 MiB | fsync |\n");
		printf("|---|---|---:|---:|---:|---:|---:|\n");
		for (int d = 0; d < nr_dirs; d++)
			fsync_table(&b, dirs[d]);

full:
		printf("\n### full dumps\n\n");
		printf("| size | images | level | total s | MiB/s | freeze ms | collect ms | track ms | copy ms | write s | other s | image MiB | image/raw | zstd 2T s | zstd 1T s | disk s | total/zstd 2T | stream 2T s | stream/zstd 2T |\n");
		printf("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
		for (int d = 0; d < nr_dirs; d++)
			for (size_t l = 0; l < ARRAY_SIZE(levels); l++)
				if (!only_full1 || levels[l] == 1)
					full_point(&b, dirs[d], levels[l]);
		printf("\n");
		if (only_full1)
			goto next;
deltas:
		printf("### incremental dumps (--parent), level 1\n\n");
		printf("| size | images | written | total ms | first freeze ms | freeze ms | copy while running ms | collect ms | track ms | copy ms | write ms | data pages | image MiB | zstd 2T ms | zstd 1T ms | disk ms | total/zstd 2T |\n");
		printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
		for (int d = 0; d < nr_dirs; d++)
			for (size_t k = 0; k < ARRAY_SIZE(pcts); k++)
				delta_point(&b, dirs[d], pcts[k]);

		printf("\npre-warm before each dump and disk write: %.1f GiB in %.1f s, %.2f s/GiB\n",
		       b.warm_gib, b.warm_s, b.warm_s / b.warm_gib);
		b.warm_gib = b.warm_s = 0;
		if (only_delta)
			goto next;
		printf("\n### where the freeze of a delta goes (ms; syscall in us)\n\n");
		printf("| size | seize + release | collect, ckpt on the child's vCPU | collect, other vCPU | remote syscall, same vCPU | other vCPU | read smaps | read maps | 1%%: scan per run | 1%%: one scan of the region | 1%%: process_vm_readv | on 2 threads |\n");
		printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
		freeze_parts(&b);
next:
		printf("\n");

		munmap(b.nz, b.nz_len);
		child_stop(&b.child);
	}
	rm_rf(rundir);
	return 0;
}
