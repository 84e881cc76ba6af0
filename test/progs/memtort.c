/* SPDX-License-Identifier: MIT */
/*
 * Target of the tracking torture test: changes its memory in every way a
 * real allocator does, at random, seeded so that a failure replays.
 *
 *   memtort SEED FILE [PAUSE_US]
 *       Forever: one random operation, then PAUSE_US microseconds of sleep
 *       (default 200; 0: none). FILE is created (1 MiB) and mapped
 *       privately; it is never written through write(2), so it stays the
 *       file the checkpoint knows. Prints "ready" after the first
 *       operations, after "rseq ADDR SIZE" (the rseq area of the thread,
 *       whose CPU fields the kernel rewrites as it runs).
 *   memtort replace
 *       Two anonymous mappings A < B with a gap between them, both written;
 *       prints "A ADDR B ADDR" and "ready"; on stdin "go": writes all of A, replaces B in
 *       place (munmap, mmap MAP_FIXED at the same address), writes B, opens
 *       and reads a file with stdio (heap), prints "done SUM" with a sum of A.
 *
 * The operations: writes of random bytes; mmap at addresses freed before
 * (hint, MAP_FIXED_NOREPLACE, MAP_FIXED over a live mapping); munmap whole,
 * head, tail or middle; replace in place; mremap grow, shrink and move;
 * MADV_DONTNEED and MADV_FREE; mprotect flips (none, read-only, back);
 * brk growth and shrink (malloc with a low trim threshold); writes into a private file mapping; THP regions
 * (MADV_HUGEPAGE, 2 MiB aligned); malloc/free of many sizes.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_FREE
#define MADV_FREE 8
#endif

#define PS 4096UL
#define NREG 48
#define NFREED 32
#define NMALLOC 256
#define FILE_SIZE (1UL << 20)
#define HUGE (2UL << 20)

struct region {
	char *p;
	size_t len;
	int prot;
};

static struct region reg[NREG];
static uintptr_t freed[NFREED];
static size_t nfreed;
static void *mallocs[NMALLOC];
static uint64_t rng;
static char *filemap;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t pick(size_t n)
{
	return (size_t)(next() % n);
}

static void fill(char *p, size_t len)
{
	uint64_t x = next();

	for (size_t i = 0; i + 8 <= len; i += 8) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		memcpy(p + i, &x, 8);
	}
}

/* Write a few random page ranges of @r (only when it is writable). */
static void scribble(struct region *r)
{
	size_t pages = r->len / PS, n = 1 + pick(4);

	if (!r->p || !(r->prot & PROT_WRITE))
		return;
	for (size_t k = 0; k < n; k++) {
		size_t first = pick(pages), cnt = 1 + pick(pages - first < 16 ? pages - first : 16);

		fill(r->p + first * PS, cnt * PS);
	}
}

static void forget(uintptr_t a)
{
	freed[nfreed++ % NFREED] = a;
}

static struct region *slot(bool used)
{
	size_t i = pick(NREG);

	for (size_t k = 0; k < NREG; k++, i = (i + 1) % NREG)
		if (!!reg[i].p == used)
			return &reg[i];
	return NULL;
}

static void *map_at(void *hint, size_t len, int flags)
{
	void *p = mmap(hint, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void op_map(void)
{
	struct region *r = slot(false);
	size_t len = (1 + pick(64)) * PS;
	void *hint = NULL;
	int flags = 0;

	if (!r)
		return;
	if (nfreed && pick(2)) {
		hint = (void *)freed[pick(nfreed > NFREED ? NFREED : nfreed)];
		flags = pick(2) ? MAP_FIXED_NOREPLACE : 0;
	}
	r->p = map_at(hint, len, flags);
	if (!r->p && flags)
		r->p = map_at(NULL, len, 0);
	if (!r->p)
		return;
	r->len = len;
	r->prot = PROT_READ | PROT_WRITE;
	fill(r->p, len);
}

static void op_huge(void)
{
	struct region *r = slot(false);
	char *raw, *p;

	if (!r)
		return;
	raw = map_at(NULL, 3 * HUGE, 0);
	if (!raw)
		return;
	p = (char *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	munmap(p + HUGE, (size_t)(raw + 3 * HUGE - (p + HUGE)));
	madvise(p, HUGE, MADV_HUGEPAGE);
	r->p = p;
	r->len = HUGE;
	r->prot = PROT_READ | PROT_WRITE;
	fill(p, HUGE);
}

static void op_unmap(void)
{
	struct region *r = slot(true);
	size_t pages, cut;

	if (!r)
		return;
	pages = r->len / PS;
	switch (pages > 2 ? pick(4) : 0) {
	case 0: /* whole */
		munmap(r->p, r->len);
		forget((uintptr_t)r->p);
		r->p = NULL;
		return;
	case 1: /* head */
		cut = 1 + pick(pages - 1);
		munmap(r->p, cut * PS);
		forget((uintptr_t)r->p);
		r->p += cut * PS;
		r->len -= cut * PS;
		return;
	case 2: /* tail */
		cut = 1 + pick(pages - 1);
		munmap(r->p + r->len - cut * PS, cut * PS);
		forget((uintptr_t)(r->p + r->len - cut * PS));
		r->len -= cut * PS;
		return;
	default: { /* middle: the region becomes its head, the tail a region of its own */
		struct region *t = slot(false);
		size_t at = 1 + pick(pages - 2), n = 1 + pick(pages - at - 1);

		munmap(r->p + at * PS, n * PS);
		forget((uintptr_t)(r->p + at * PS));
		if (t) {
			t->p = r->p + (at + n) * PS;
			t->len = r->len - (at + n) * PS;
			t->prot = r->prot;
		} else {
			munmap(r->p + (at + n) * PS, r->len - (at + n) * PS);
		}
		r->len = at * PS;
		return;
	}
	}
}

/* munmap + mmap MAP_FIXED at the same range, or MAP_FIXED straight over it. */
static void op_replace(void)
{
	struct region *r = slot(true);
	void *p;

	if (!r)
		return;
	if (pick(2))
		munmap(r->p, r->len);
	p = map_at(r->p, r->len, MAP_FIXED);
	if (!p) {
		munmap(r->p, r->len);
		r->p = NULL;
		return;
	}
	r->prot = PROT_READ | PROT_WRITE;
	if (pick(4))
		fill(r->p, r->len);
	else
		scribble(r);
}

static void op_mremap(void)
{
	struct region *r = slot(true);
	size_t len;
	void *p;

	if (!r || !(r->prot & PROT_WRITE))
		return;
	switch (pick(3)) {
	case 0: /* grow, maybe moved */
		len = r->len + (1 + pick(32)) * PS;
		p = mremap(r->p, r->len, len, MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			return;
		if (p != r->p)
			forget((uintptr_t)r->p);
		r->p = p;
		fill(r->p + r->len, len - r->len);
		r->len = len;
		return;
	case 1: /* shrink */
		if (r->len <= PS)
			return;
		len = (1 + pick(r->len / PS - 1)) * PS;
		p = mremap(r->p, r->len, len, 0);
		if (p == MAP_FAILED)
			return;
		forget((uintptr_t)(r->p + len));
		r->len = len;
		return;
	default: /* move to an address freed before, if it is still free */
		if (!nfreed)
			return;
		p = map_at((void *)freed[pick(nfreed > NFREED ? NFREED : nfreed)], r->len, MAP_FIXED_NOREPLACE);
		if (!p)
			return;
		if (mremap(r->p, r->len, r->len, MREMAP_MAYMOVE | MREMAP_FIXED, p) == MAP_FAILED) {
			munmap(p, r->len);
			return;
		}
		forget((uintptr_t)r->p);
		r->p = p;
		scribble(r);
		return;
	}
}

static void op_madvise(void)
{
	struct region *r = slot(true);
	size_t first, n;

	if (!r || !(r->prot & PROT_WRITE))
		return;
	first = pick(r->len / PS);
	n = 1 + pick(r->len / PS - first);
	madvise(r->p + first * PS, n * PS, pick(2) ? MADV_DONTNEED : MADV_FREE);
	if (pick(2))
		scribble(r);
}

static void op_mprotect(void)
{
	struct region *r = slot(true);
	static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE };

	if (!r)
		return;
	r->prot = prots[pick(3)];
	if (pick(2)) {
		mprotect(r->p, r->len, r->prot);
		return;
	}
	/* A part only: split it; the region keeps the stricter view. */
	size_t half = r->len / PS / 2;

	mprotect(r->p, (half ? half : 1) * PS, r->prot);
	r->prot &= PROT_READ;
}

/* The heap grows and shrinks (brk) under malloc: big blocks, freed at the top. */
static void op_brk(void)
{
	static void *top[4];
	size_t i = pick(4);

	free(top[i]);
	top[i] = pick(2) ? malloc((1 + pick(200)) * PS) : NULL;
	if (top[i])
		fill(top[i], PS);
}

static void op_malloc(void)
{
	size_t i = pick(NMALLOC);
	size_t sz = pick(4) ? 16 + pick(4096) : 4096 + pick(300000);

	free(mallocs[i]);
	mallocs[i] = malloc(sz);
	if (mallocs[i])
		fill(mallocs[i], sz & ~7UL);
}

static void op_file(void)
{
	size_t first = pick(FILE_SIZE / PS), n = 1 + pick(4);

	if (first + n > FILE_SIZE / PS)
		n = FILE_SIZE / PS - first;
	fill(filemap + first * PS, n * PS);
}

static void op_write(void)
{
	struct region *r = slot(true);

	if (r)
		scribble(r);
}

static void step(void)
{
	switch (pick(20)) {
	case 0: case 1: op_map(); break;
	case 2: op_unmap(); break;
	case 3: op_replace(); break;
	case 4: op_mremap(); break;
	case 5: op_madvise(); break;
	case 6: op_mprotect(); break;
	case 7: op_brk(); break;
	case 8: case 9: op_malloc(); break;
	case 10: op_file(); break;
	case 11: if (!pick(8)) op_huge(); break;
	default: op_write(); break;
	}
}

static int map_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char *p;

	if (fd < 0 || ftruncate(fd, FILE_SIZE) < 0)
		return -1;
	p = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	filemap = p;
	return 0;
}

/* Where the kernel writes this thread's CPU (rseq): it differs after restore. */
static void say_rseq(void)
{
	char *p = (char *)__builtin_thread_pointer() + __rseq_offset;

	printf("rseq %p %u\nready\n", __rseq_size ? (void *)p : NULL, __rseq_size);
	fflush(stdout);
}

static int replace_mode(void)
{
	size_t len = 64 * PS;
	char *a, *b, *gap, line[64];
	unsigned long sum = 0;
	FILE *f;

	/* A, a gap, B: reserve three, drop the middle. */
	a = map_at(NULL, 3 * len, 0);
	if (!a)
		return 1;
	gap = a + len;
	b = a + 2 * len;
	munmap(gap, len);
	memset(a, 1, len);
	memset(b, 2, len);
	printf("A %p B %p\n", (void *)a, (void *)b);
	say_rseq();
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "go", 2))
		return 1;
	for (size_t i = 0; i < len; i++)
		a[i] = (char)(i * 7 + 3);
	munmap(b, len);
	if (map_at(b, len, MAP_FIXED) != b)
		return 1;
	memset(b, 5, len);
	f = fopen("/proc/self/stat", "r");
	if (!f || !fgets(line, sizeof(line), f))
		return 1;
	fclose(f);
	for (size_t i = 0; i < len; i++)
		sum += (unsigned char)a[i];
	printf("done %lu\n", sum);
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	long pause_us;

	if (argc > 1 && !strcmp(argv[1], "replace"))
		return replace_mode();
	if (argc < 3) {
		fprintf(stderr, "usage: memtort SEED FILE [PAUSE_US] | memtort replace\n");
		return 2;
	}
	rng = strtoull(argv[1], NULL, 0) * 2654435761ULL + 88172645463325252ULL;
	/* Blocks up to 1 MiB from the brk heap, trimmed as soon as 64 KiB are free at its top. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 10);
	pause_us = argc > 3 ? atol(argv[3]) : 200;
	if (map_file(argv[2]) < 0) {
		perror("memtort: file");
		return 1;
	}
	for (int i = 0; i < 200; i++)
		step();
	say_rseq();
	for (;;) {
		struct timespec ts = { 0, pause_us * 1000 };

		step();
		if (pause_us)
			nanosleep(&ts, NULL);
	}
}
