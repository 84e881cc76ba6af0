// SPDX-License-Identifier: MIT
/*
 * Pages of a tree saved once: CKPT_PAGE_INHERIT entries of a process's
 * checkpoint resolve in its parent's checkpoint of the same tree
 * checkpoint (index version 3), through every reader of a chain; and the
 * overlay that resolution is made of.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "helpers.h"
#include "image/image-internal.h"

#define ROOT 100
#define CHILD 200
#define GRAND 300
#define A 0x7f0000000000ULL
#define N 8

static struct ckpt_image_writer_opts opts_of(pid_t pid, const char *parent)
{
	struct ckpt_image_writer_opts o = opts_default();

	o.identity.pid = pid;
	o.parent = parent;
	return o;
}

/* Pages A..A+N of version @ver (from index @from on) into @w. */
static void add_run(struct ckpt_image_writer *w, size_t from, size_t n, uint32_t ver)
{
	uint32_t v[N];

	for (size_t i = 0; i < n; i++)
		v[i] = ver;
	add_versions(w, A + from * PS, n, v);
}

/*
 * Tree checkpoint @dir: the root (ROOT) has A..A+N of version @root_ver;
 * proc-CHILD inherits A..A+6 and has A+6..A+N of its own (version 9);
 * with @grand, proc-GRAND inherits A..A+3 from CHILD. With @parent, every
 * process is a delta on the same process in @parent (then the root writes
 * only A+0..A+2, version @root_ver, and the child nothing).
 */
static void write_tree(const char *dir, const char *parent, uint32_t root_ver, bool grand)
{
	struct ckpt_image_writer *top = NULL, *w = NULL;
	struct ckpt_image_writer_opts o;
	char ppath[256];

	o = opts_of(ROOT, parent);
	if (parent)
		snprintf(ppath, sizeof(ppath), "../%s", strrchr(parent, '/') ? strrchr(parent, '/') + 1 : parent);
	o.parent = parent ? ppath : NULL;
	cr_assert_eq(ckpt_image_writer_new(dir, &o, &top), 0, "%s", last_err);
	add_run(top, 0, parent ? 2 : N, root_ver);

	if (parent)
		snprintf(ppath, sizeof(ppath), "../../%s/proc-%d", strrchr(parent, '/') + 1, CHILD);
	o = opts_of(CHILD, parent ? ppath : NULL);
	cr_assert_eq(ckpt_image_writer_new_sub(top, "proc-200", &o, &w), 0, "%s", last_err);
	if (!parent) {
		cr_assert_eq(ckpt_image_writer_add_inherit(w, A, 6, ROOT), 0, "%s", last_err);
		add_run(w, 6, 2, 9);
	}
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);

	if (grand) {
		o = opts_of(GRAND, NULL);
		cr_assert_eq(ckpt_image_writer_new_sub(top, "proc-300", &o, &w), 0, "%s", last_err);
		cr_assert_eq(ckpt_image_writer_add_inherit(w, A, 3, CHILD), 0, "%s", last_err);
		cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
		ckpt_image_writer_free(w);
	}
	cr_assert_eq(ckpt_image_writer_commit(top), 0, "%s", last_err);
	ckpt_image_writer_free(top);
}

static void expect_read(struct ckpt_chain *c, uint64_t addr, uint32_t ver)
{
	unsigned char buf[PS];
	int k = ckpt_chain_read_page(c, addr, buf);

	cr_expect_eq(k, CKPT_PAGE_DATA, "page 0x%llx: kind %d: %s", (unsigned long long)addr, k, last_err);
	if (k == CKPT_PAGE_DATA)
		expect_page(buf, addr, ver);
}

/* What the iterator resolves A..A+N to, page by page: the version each page holds. */
static void expect_iter(struct ckpt_chain *c, const uint32_t *want)
{
	struct ckpt_chain_iter *it = NULL;
	struct ckpt_chain_range rg;
	size_t seen = 0;
	int k;

	cr_assert_eq(ckpt_chain_iter_new(c, &it), 0, "%s", last_err);
	while ((k = ckpt_chain_iter_next(it, &rg)) > 0) {
		cr_expect_eq(rg.kind, CKPT_PAGE_DATA);
		for (uint64_t p = 0; p < rg.nr_pages; p++) {
			size_t i = (size_t)((rg.addr - A) / PS + p);

			cr_assert_lt(i, N);
			expect_page((const char *)rg.data + p * PS, A + i * PS, want[i]);
			seen++;
		}
	}
	cr_expect_eq(k, 0, "%s", last_err);
	cr_expect_eq(seen, N);
	ckpt_chain_iter_free(it);
}

Test(image_inherit, index_version_3_only_when_needed, .init = capture_log)
{
	char *d = tmpdir_new(), *root = path_in(d, "t"), *sub = path_in(root, "proc-200");
	struct ckpt_image *img = NULL;
	const struct ckpt_image_index *idx;

	write_tree(root, NULL, 2, false);
	cr_assert_eq(ckpt_image_open(root, NULL, &img), 0, "%s", last_err);
	cr_expect_eq(ckpt_image_index(img)->version, 2, "a checkpoint without INHERIT stays readable by older ckpt");
	ckpt_image_close(img);
	cr_assert_eq(ckpt_image_open(sub, NULL, &img), 0, "%s", last_err);
	idx = ckpt_image_index(img);
	cr_expect_eq(idx->version, 3);
	cr_expect_eq(idx->inherit_pid, ROOT);
	cr_assert_eq(idx->nr_entries, 2);
	cr_expect(idx->entries[0].kind == CKPT_PAGE_INHERIT && idx->entries[0].nr_pages == 6 &&
		  idx->entries[0].frame == ROOT && idx->entries[0].addr == A);
	cr_expect_eq(idx->entries[1].kind, CKPT_PAGE_DATA);
	/* A raw read of one checkpoint says whose it is; ckpt_image_read_page never copies it. */
	{
		unsigned char buf[PS];

		cr_expect_eq(ckpt_image_read_page(img, A, buf), CKPT_PAGE_INHERIT);
	}
	ckpt_image_close(img);
	free(sub);
	free(root);
	tmpdir_free(d);
}

Test(image_inherit, every_reader_resolves_in_the_parent, .init = capture_log)
{
	char *d = tmpdir_new(), *root = path_in(d, "t"), *sub = path_in(root, "proc-200"),
	     *gsub = path_in(root, "proc-300");
	struct ckpt_chain *c = NULL;
	struct ckpt_chain_range *l = NULL;
	size_t nl = 0;
	const uint32_t want[N] = { 2, 2, 2, 2, 2, 2, 9, 9 };
	const uint32_t gwant[3] = { 2, 2, 2 };

	write_tree(root, NULL, 2, true);
	cr_assert_eq(ckpt_chain_open(sub, NULL, &c), 0, "%s", last_err);
	cr_expect_eq(ckpt_chain_length(c), 1, "the parent's chain is not this process's");
	for (size_t i = 0; i < N; i++)
		expect_read(c, A + i * PS, want[i]);
	expect_iter(c, want);
	cr_assert_eq(ckpt_chain_list(c, &l, &nl), 0, "%s", last_err);
	cr_expect(nl == 1 && l[0].addr == A && l[0].nr_pages == N && l[0].kind == CKPT_PAGE_DATA,
		  "one DATA range of %d pages, got %zu ranges", N, nl);
	free(l);
	expect_windows_match(c);
	ckpt_chain_close(c);

	/* Two levels: the grandchild's pages are the child's, which are the root's. */
	cr_assert_eq(ckpt_chain_open(gsub, NULL, &c), 0, "%s", last_err);
	for (size_t i = 0; i < 3; i++)
		expect_read(c, A + i * PS, gwant[i]);
	expect_windows_match(c);
	{
		unsigned char buf[PS];

		cr_expect_eq(ckpt_chain_read_page(c, A + 4 * PS, buf), CKPT_PAGE_NONE);
	}
	ckpt_chain_close(c);
	free(gsub);
	free(sub);
	free(root);
	tmpdir_free(d);
}

/*
 * The key property: a page a child inherited in checkpoint 0 is the
 * parent's page of checkpoint 0, also when the parent wrote it since and
 * the child's delta does not list it.
 */
Test(image_inherit, resolves_in_the_parent_of_the_same_checkpoint, .init = capture_log)
{
	char *d = tmpdir_new(), *t0 = path_in(d, "0000"), *t1 = path_in(d, "0001");
	char *sub1 = path_in(t1, "proc-200");
	struct ckpt_chain *c = NULL;
	const uint32_t want[N] = { 2, 2, 2, 2, 2, 2, 9, 9 };
	struct ckpt_image_fold_stats st;

	write_tree(t0, NULL, 2, false);
	write_tree(t1, t0, 4, false); /* the root wrote A, A+1 (version 4) */
	cr_assert_eq(ckpt_chain_open(sub1, NULL, &c), 0, "%s", last_err);
	cr_expect_eq(ckpt_chain_length(c), 2);
	for (size_t i = 0; i < N; i++)
		expect_read(c, A + i * PS, want[i]);
	expect_iter(c, want);
	ckpt_chain_close(c);

	/* Folded, the child's checkpoint holds those pages itself: the old root's are gone. */
	cr_assert_eq(ckpt_image_fold(t1, NULL, &st), 0, "%s", last_err);
	cr_assert_eq(ckpt_chain_open(sub1, NULL, &c), 0, "%s", last_err);
	cr_expect_eq(ckpt_chain_length(c), 1);
	cr_expect_eq(ckpt_image_index(ckpt_chain_image(c, 0))->inherit_pid, 0);
	expect_iter(c, want);
	ckpt_chain_close(c);
	free(sub1);
	free(t1);
	free(t0);
	tmpdir_free(d);
}

/* Pages of pid @pid at A in @dir (a process of a tree or not), written alone. */
static void write_inheritor(const char *dir, pid_t self, pid_t pid)
{
	struct ckpt_image_writer_opts o = opts_of(self, NULL);
	struct ckpt_image_writer *w = NULL;

	cr_assert_eq(ckpt_image_writer_new(dir, &o, &w), 0, "%s", last_err);
	cr_assert_eq(ckpt_image_writer_add_inherit(w, A, 1, pid), 0, "%s", last_err);
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);
}

Test(image_inherit, bad_references_are_refused, .init = capture_log)
{
	char *d = tmpdir_new(), *lone = path_in(d, "lone"), *root = path_in(d, "t");
	char *a = path_in(root, "proc-500"), *b = path_in(root, "proc-600"), *own = path_in(root, "proc-700");
	char *nobody = path_in(root, "proc-800");
	struct ckpt_chain *c = NULL;

	/* Not in a tree. */
	write_inheritor(lone, 400, 100);
	cr_expect_eq(ckpt_chain_open(lone, NULL, &c), -EBADMSG);
	cr_expect(strstr(last_err, "not a process of a tree"), "%s", last_err);

	write_tree(root, NULL, 2, false);
	/* Two processes that each say their pages are the other's. */
	write_inheritor(a, 500, 600);
	write_inheritor(b, 600, 500);
	cr_expect_eq(ckpt_chain_open(a, NULL, &c), -ELOOP);
	cr_expect(strstr(last_err, "a loop"), "%s", last_err);
	/* Its own pid. */
	write_inheritor(own, 700, 700);
	cr_expect_eq(ckpt_chain_open(own, NULL, &c), -EBADMSG);
	cr_expect(strstr(last_err, "its own process"), "%s", last_err);
	/* A pid with no checkpoint beside it, and not the root's. */
	write_inheritor(nobody, 800, 999);
	cr_expect_eq(ckpt_chain_open(nobody, NULL, &c), -EBADMSG);
	cr_expect(strstr(last_err, "pid 999") && strstr(last_err, "pid 100"), "%s", last_err);
	cr_expect_null(c);
	free(nobody);
	free(own);
	free(b);
	free(a);
	free(root);
	free(lone);
	tmpdir_free(d);
}

Test(image_inherit, writer_refuses_a_pid_that_cannot_be, .init = capture_log)
{
	char *d = tmpdir_new(), *p = path_in(d, "x");
	struct ckpt_image_writer_opts o = opts_of(1, NULL);
	struct ckpt_image_writer *w = NULL;

	cr_assert_eq(ckpt_image_writer_new(p, &o, &w), 0, "%s", last_err);
	cr_expect_eq(ckpt_image_writer_add_inherit(w, A, 1, 0), -EINVAL);
	cr_expect_eq(ckpt_image_writer_add_inherit(w, A, 1, -3), -EINVAL);
	ckpt_image_writer_free(w);
	free(p);
	tmpdir_free(d);
}

/* ---- the overlay, table-driven ---- */

struct seg_case {
	const char *name;
	struct seg a[4], b[4], want[8];
	size_t na, nb, nw;
};

#define S(x, y, k)                                                                                 \
	{                                                                                          \
		.addr = (x), .end = (y), .kind = (k)                                               \
	}
#define D CKPT_PAGE_DATA
#define Z CKPT_PAGE_ZERO
#define H CKPT_PAGE_HOLE
#define I CKPT_PAGE_INHERIT

static const struct seg_case overlay_cases[] = {
	{"empty", {{0}}, {{0}}, {{0}}, 0, 0, 0},
	{"only older", {{0}}, {S(1, 3, D)}, {S(1, 3, D)}, 0, 1, 1},
	{"only newer", {S(1, 3, Z)}, {{0}}, {S(1, 3, Z)}, 1, 0, 1},
	{"newer inside older",
	 {S(3, 5, Z)},
	 {S(1, 9, D)},
	 {S(1, 3, D), S(3, 5, Z), S(5, 9, D)},
	 1,
	 1,
	 3},
	{"older inside newer", {S(1, 9, H)}, {S(3, 5, D)}, {S(1, 9, H)}, 1, 1, 1},
	{"overlap left", {S(1, 5, Z)}, {S(3, 9, D)}, {S(1, 5, Z), S(5, 9, D)}, 1, 1, 2},
	{"overlap right", {S(5, 9, Z)}, {S(3, 7, D)}, {S(3, 5, D), S(5, 9, Z)}, 1, 1, 2},
	{"two newer in one older",
	 {S(2, 3, Z), S(5, 6, H)},
	 {S(1, 8, D)},
	 {S(1, 2, D), S(2, 3, Z), S(3, 5, D), S(5, 6, H), S(6, 8, D)},
	 2,
	 1,
	 5},
	{"one newer across two older",
	 {S(2, 7, Z)},
	 {S(1, 3, D), S(6, 9, D)},
	 {S(1, 2, D), S(2, 7, Z), S(7, 9, D)},
	 1,
	 2,
	 3},
	{"disjoint interleaved",
	 {S(1, 2, Z), S(5, 6, Z)},
	 {S(3, 4, D), S(7, 8, D)},
	 {S(1, 2, Z), S(3, 4, D), S(5, 6, Z), S(7, 8, D)},
	 2,
	 2,
	 4},
	{"touching",
	 {S(3, 5, Z)},
	 {S(1, 3, D), S(5, 7, D)},
	 {S(1, 3, D), S(3, 5, Z), S(5, 7, D)},
	 1,
	 2,
	 3},
};

Test(image_inherit, overlay_table)
{
	for (size_t c = 0; c < sizeof(overlay_cases) / sizeof(overlay_cases[0]); c++) {
		const struct seg_case *t = &overlay_cases[c];
		struct seg *out = NULL;
		size_t n = 0;

		cr_assert_eq(chain_overlay(t->a, t->na, t->b, t->nb, &out, &n), 0);
		cr_expect_eq(n, t->nw, "%s: %zu segments, expected %zu", t->name, n, t->nw);
		for (size_t i = 0; i < n && i < t->nw; i++)
			cr_expect(out[i].addr == t->want[i].addr && out[i].end == t->want[i].end &&
					  out[i].kind == t->want[i].kind,
				  "%s: segment %zu is %llu-%llu kind %d", t->name, i,
				  (unsigned long long)out[i].addr, (unsigned long long)out[i].end,
				  out[i].kind);
		free(out);
	}
}
