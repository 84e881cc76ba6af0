/* SPDX-License-Identifier: MIT */
/*
 * The range table of a lazily restored process (lib/lazy/proc.c): which
 * images address each current address maps to, and which pages are done,
 * through mremap, MADV_DONTNEED, munmap and fork. Checked against a model:
 * an array with the images address (or "done") of every page.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lazy/lazy-internal.h"

#define PS 4096ULL
#define SPACE 256 /* pages of the model address space, from BASE */
#define BASE 0x10000000ULL

/* Per page of the space: 0 not registered, DONE, or the images address + 1. */
#define DONE 1ULL
static uint64_t model[SPACE];

static uint64_t addr(unsigned int page)
{
	return BASE + page * PS;
}

static void model_add(unsigned int first, unsigned int n, uint64_t src)
{
	for (unsigned int i = 0; i < n; i++)
		model[first + i] = src + i * PS + 2; /* never DONE or 0: src is page-aligned */
}

/* The table must say exactly what the model says, page by page. */
static void check(struct lz_proc *p, const char *when)
{
	uint64_t left = 0;

	for (unsigned int i = 0; i < SPACE; i++) {
		struct lz_vma *v = lz_find(p, addr(i));

		if (!model[i]) {
			cr_assert_null(v, "%s: page %u is in the table", when, i);
			continue;
		}
		cr_assert_not_null(v, "%s: page %u is not in the table", when, i);
		if (model[i] == DONE) {
			cr_assert(lz_is_done(v, (addr(i) - v->start) / PS), "%s: page %u is not done", when, i);
			continue;
		}
		left++;
		cr_assert(!lz_is_done(v, (addr(i) - v->start) / PS), "%s: page %u is done", when, i);
		cr_assert_eq(v->src + (addr(i) - v->start), model[i] - 2, "%s: page %u maps to %#lx, not %#lx",
			     when, i, (unsigned long)(v->src + (addr(i) - v->start)),
			     (unsigned long)(model[i] - 2));
	}
	cr_assert_eq(p->left, left, "%s: %lu pages left, the model says %lu", when, (unsigned long)p->left,
		     (unsigned long)left);
	/* No two ranges overlap. */
	for (size_t i = 0; i < p->nr; i++)
		for (size_t j = i + 1; j < p->nr; j++)
			cr_assert(p->v[i].end <= p->v[j].start || p->v[j].end <= p->v[i].start,
				  "%s: ranges %zu and %zu overlap", when, i, j);
}

static void mark(struct lz_proc *p, unsigned int first, unsigned int n)
{
	for (unsigned int i = first; i < first + n; i++) {
		struct lz_vma *v = lz_find(p, addr(i));

		cr_assert_not_null(v);
		lz_mark(p, v, (addr(i) - v->start) / PS, 1);
		model[i] = DONE;
	}
}

static void remap(struct lz_proc *p, unsigned int from, unsigned int to, unsigned int n)
{
	uint64_t tmp[SPACE];

	cr_assert_eq(lz_remap(p, addr(from), addr(to), n * PS), 0);
	memcpy(tmp, &model[from], n * sizeof(*tmp));
	memset(&model[from], 0, n * sizeof(*tmp));
	memcpy(&model[to], tmp, n * sizeof(*tmp));
}

static struct lz_proc *table(void)
{
	struct lz_proc *p = calloc(1, sizeof(*p));

	memset(model, 0, sizeof(model));
	/* Three ranges: [0,32) from images 0x1000000, [40,104), [120,124). */
	cr_assert_eq(lz_add_range(p, addr(0), addr(32), 0x1000000), 0);
	model_add(0, 32, 0x1000000);
	cr_assert_eq(lz_add_range(p, addr(40), addr(104), 0x2000000), 0);
	model_add(40, 64, 0x2000000);
	cr_assert_eq(lz_add_range(p, addr(120), addr(124), 0x3000000), 0);
	model_add(120, 4, 0x3000000);
	check(p, "new");
	return p;
}

static void done_table(struct lz_proc *p)
{
	lz_free_table(p);
	free(p);
}

Test(lazy_table, mark_counts_each_page_once)
{
	struct lz_proc *p = table();

	mark(p, 3, 5);
	mark(p, 3, 5);
	mark(p, 40, 1);
	check(p, "marked");
	done_table(p);
}

/* lz_next_undone against a page-by-page search, on runs of every length. */
Test(lazy_table, next_undone_finds_the_first_page_left)
{
	enum { PAGES = 1000 };
	uint8_t bits[PAGES / 8 + 8] = { 0 };
	struct lz_vma v = { .start = BASE, .end = BASE + PAGES * PS, .done = bits };

	srand(7);
	for (int round = 0; round < 200; round++) {
		/* Done runs of random length, some longer than 64 pages. */
		memset(bits, 0, sizeof(bits));
		for (unsigned int i = 0; i < PAGES;) {
			unsigned int run = (unsigned int)rand() % (round % 2 ? 300 : 20) + 1;
			bool done = rand() % 4 != 0;

			for (unsigned int k = 0; k < run && i < PAGES; k++, i++)
				if (done)
					bits[i / 8] |= (uint8_t)(1u << (i % 8));
		}
		for (int q = 0; q < 50; q++) {
			uint64_t from = (uint64_t)rand() % PAGES, end = from + (uint64_t)rand() % (PAGES - from + 1);
			uint64_t want = from;

			while (want < end && lz_is_done(&v, want))
				want++;
			cr_assert_eq(lz_next_undone(&v, from, end), want, "round %d: from %lu to %lu", round,
				     (unsigned long)from, (unsigned long)end);
		}
	}
}

Test(lazy_table, mremap_moves_pages_and_their_done_bits)
{
	struct lz_proc *p = table();

	mark(p, 50, 4);
	/* The middle of a range, elsewhere: it splits in three. */
	remap(p, 48, 200, 16);
	check(p, "moved out of the middle");
	/* Back, over a place that is partly another range. */
	remap(p, 200, 24, 16);
	check(p, "moved over the end of a range");
	/* A move that spans two ranges and the hole between them. */
	remap(p, 100, 150, 24);
	check(p, "moved across two ranges");
	done_table(p);
}

Test(lazy_table, dontneed_marks_done_unmap_cuts)
{
	struct lz_proc *p = table();
	uint64_t gen = p->gen;

	cr_assert_eq(lz_remove(p, addr(30), addr(44), false), 0);
	for (unsigned int i = 30; i < 44; i++)
		if (model[i])
			model[i] = DONE;
	check(p, "MADV_DONTNEED over two ranges");
	cr_assert_gt(p->gen, gen);
	cr_assert_eq(lz_remove(p, addr(60), addr(70), true), 0);
	memset(&model[60], 0, 10 * sizeof(*model));
	check(p, "munmap of the middle");
	cr_assert_eq(lz_remove(p, addr(0), addr(SPACE), true), 0);
	memset(model, 0, sizeof(model));
	check(p, "munmap of everything");
	cr_assert_eq(p->nr, 0u);
	done_table(p);
}

Test(lazy_table, fork_copies_table_and_done_bits)
{
	struct lz_proc *p = table(), *c = calloc(1, sizeof(*c));

	mark(p, 0, 7);
	mark(p, 100, 4);
	cr_assert_eq(lz_copy_table(c, p), 0);
	check(c, "the child");
	/* They are independent from now on. */
	mark(p, 10, 1);
	lz_mark(c, lz_find(c, addr(11)), 11, 1);
	cr_assert(!lz_is_done(lz_find(c, addr(10)), 10));
	cr_assert(!lz_is_done(lz_find(p, addr(11)), 11));
	done_table(p);
	done_table(c);
}

Test(lazy_table, random_operations_match_the_model)
{
	struct lz_proc *p = table();
	unsigned int seed = 12345;

	for (int step = 0; step < 3000; step++) {
		unsigned int op = (unsigned int)rand_r(&seed) % 4, a = (unsigned int)rand_r(&seed) % SPACE,
			     n = 1 + (unsigned int)rand_r(&seed) % 24;
		char when[64];

		if (a + n > SPACE)
			n = SPACE - a;
		snprintf(when, sizeof(when), "step %d (op %u at %u, %u pages)", step, op, a, n);
		switch (op) {
		case 0: /* deliver the registered pages */
			for (unsigned int i = a; i < a + n; i++)
				if (model[i] > DONE)
					mark(p, i, 1);
			break;
		case 1: /* MADV_DONTNEED */
			cr_assert_eq(lz_remove(p, addr(a), addr(a + n), false), 0);
			for (unsigned int i = a; i < a + n; i++)
				if (model[i])
					model[i] = DONE;
			break;
		case 2: /* munmap */
			cr_assert_eq(lz_remove(p, addr(a), addr(a + n), true), 0);
			memset(&model[a], 0, n * sizeof(*model));
			break;
		case 3: { /* mremap to a place that does not overlap */
			unsigned int to = (unsigned int)rand_r(&seed) % (SPACE - n + 1);

			if (to < a + n && a < to + n)
				break;
			remap(p, a, to, n);
			break;
		}
		}
		check(p, when);
		/* Keep something registered. */
		if (p->nr == 0) {
			cr_assert_eq(lz_add_range(p, addr(10), addr(60), 0x4000000), 0);
			model_add(10, 50, 0x4000000);
		}
	}
	done_table(p);
}

/* ---- the takeover record ---- */

#include <ckpt/lazy.h>
#include <fcntl.h>
#include <unistd.h>

static struct ckpt_lazy_server *server_in(char *dir)
{
	struct ckpt_lazy_opts o = { .rundir = dir };
	struct ckpt_lazy_server *s = NULL;

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(ckpt_lazy_server_new(&o, &s), 0);
	return s;
}

Test(lazy_table, record_keeps_ranges_and_done_pages)
{
	char dir[] = "/tmp/ckpt-lazy-record-XXXXXX", cmd[64];
	struct ckpt_lazy_server *s = server_in(dir);
	struct lz_proc *p = table(), *q = calloc(1, sizeof(*q));

	p->pid = 4242;
	p->parked_fd = 1000;
	p->uffd_ino = 77;
	p->dir = strdup("/var/ckpt/x");
	mark(p, 0, 3);
	mark(p, 10, 1);
	mark(p, 40, 64); /* a whole range */
	remap(p, 120, 200, 4);
	check(p, "saved");
	cr_assert_eq(lz_record_save(s, p), 0);
	cr_assert_eq(lz_record_load(s, 4242, q), 0);
	check(q, "loaded");
	cr_assert_eq(q->parked_fd, 1000);
	cr_assert_eq(q->uffd_ino, 77u);
	cr_assert_str_eq(q->dir, "/var/ckpt/x");
	free(p->dir);
	free(q->dir);
	done_table(p);
	done_table(q);
	ckpt_lazy_server_free(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(lazy_table, corrupt_records_are_refused)
{
	static const char *const bad[] = {
		"",
		"not json",
		"{\"version\":1,\"parked_fd\":3,\"uffd_ino\":1,\"ranges\":[]}",
		"{\"version\":2,\"parked_fd\":3,\"uffd_ino\":1}",
		"{\"version\":2,\"parked_fd\":3,\"uffd_ino\":1,\"ranges\":[[4096,0,0,[]]]}",
		"{\"version\":2,\"parked_fd\":3,\"uffd_ino\":1,\"ranges\":[[4096,8192,0,[0,2]]]}",
		"{\"version\":2,\"parked_fd\":3,\"uffd_ino\":1,\"ranges\":[[4096,8192,0,[0]]]}",
		"{\"version\":2,\"parked_fd\":3,\"uffd_ino\":1,\"ranges\":[[4097,8192,0,[]]]}",
		"{\"version\":2,\"parked_fd\":3,\"uffd_ino\":1,\"ranges\":[[4096,8192]]}",
	};
	char dir[] = "/tmp/ckpt-lazy-record-XXXXXX", path[128], cmd[64];
	struct ckpt_lazy_server *s = server_in(dir);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lz_proc *q = calloc(1, sizeof(*q));
		int fd;

		snprintf(path, sizeof(path), "%s/lazy-99.json", dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		cr_assert_geq(fd, 0);
		cr_assert_eq(write(fd, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
		close(fd);
		cr_expect_eq(lz_record_load(s, 99, q), -EBADMSG, "record %zu: %s", i, bad[i]);
		free(q->dir);
		free(q->url);
		free(q->token_file);
		done_table(q);
	}
	unlink(path);
	{
		struct lz_proc *q = calloc(1, sizeof(*q));

		cr_expect_eq(lz_record_load(s, 98, q), -ENOENT);
		done_table(q);
	}
	ckpt_lazy_server_free(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}
