/* SPDX-License-Identifier: MIT */
/*
 * Chains: a full checkpoint and deltas with random overlapping writes and
 * new mappings (holes), checked page by page against an in-memory model;
 * and every way a chain can be wrong.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "helpers.h"

#define NONE UINT32_MAX /* model: no data anywhere (hole or never saved) */
#define NR_DELTAS 5

static const struct region {
	uint64_t start;
	size_t pages;
} regions[] = {
	{ 0x555555554000ULL, 400 },
	{ 0x7f1234560000ULL, 300 },
	{ 0x7ffd00000000ULL, 64 }, /* only deltas write here */
};
#define NR_REGIONS (sizeof(regions) / sizeof(regions[0]))
#define MODEL_PAGES (400 + 300 + 64)

struct model {
	uint32_t v[MODEL_PAGES]; /* version of each page, 0 zero, NONE */
};

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t page_addr(size_t i)
{
	for (size_t r = 0; r < NR_REGIONS; r++) {
		if (i < regions[r].pages)
			return regions[r].start + i * PS;
		i -= regions[r].pages;
	}
	cr_assert_fail("page %zu out of the model", i);
	return 0;
}

/*
 * Write the pages of @m marked in @dirty (runs of consecutive model pages
 * in one add_data) and the holes marked in @hole, as checkpoint @path.
 */
static void write_ckpt(const char *path, const char *parent, const struct model *m,
		       const bool *dirty, const bool *hole)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;

	o.parent = parent;
	o.frame_pages = 8;
	o.level = 1;
	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0, "%s", last_err);
	for (size_t i = 0; i < MODEL_PAGES;) {
		size_t n = 0;
		uint32_t ver[MODEL_PAGES];

		if (hole[i]) {
			/* One page at a time, the writer merges. */
			cr_assert_eq(ckpt_image_writer_add_hole(w, page_addr(i), 1), 0);
			i++;
			continue;
		}
		while (i + n < MODEL_PAGES && dirty[i + n] &&
		       (n == 0 || page_addr(i + n) == page_addr(i) + n * PS)) {
			ver[n] = m->v[i + n];
			n++;
		}
		if (n)
			add_versions(w, page_addr(i), n, ver);
		i += n ? n : 1;
	}
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);
}

static void check_read_page(struct ckpt_chain *c, const struct model *m)
{
	unsigned char buf[PS];

	for (size_t i = 0; i < MODEL_PAGES; i++) {
		uint64_t addr = page_addr(i);
		int r = ckpt_chain_read_page(c, addr, buf);

		if (m->v[i] == NONE) {
			cr_expect_eq(r, CKPT_PAGE_NONE, "page 0x%llx: %d", (unsigned long long)addr, r);
		} else if (m->v[i] == 0) {
			cr_expect_eq(r, CKPT_PAGE_ZERO, "page 0x%llx: %d", (unsigned long long)addr, r);
		} else {
			cr_assert_eq(r, CKPT_PAGE_DATA, "page 0x%llx: %d %s", (unsigned long long)addr,
				     r, last_err);
			expect_page(buf, addr, m->v[i]);
		}
	}
	/* Around the regions: nothing. */
	cr_expect_eq(ckpt_chain_read_page(c, regions[0].start - PS, buf), CKPT_PAGE_NONE);
	cr_expect_eq(ckpt_chain_read_page(c, regions[2].start + regions[2].pages * PS, buf),
		     CKPT_PAGE_NONE);
}

static size_t model_index(uint64_t addr)
{
	size_t base = 0;

	for (size_t r = 0; r < NR_REGIONS; r++) {
		if (addr >= regions[r].start && addr < regions[r].start + regions[r].pages * PS)
			return base + (addr - regions[r].start) / PS;
		base += regions[r].pages;
	}
	cr_assert_fail("address 0x%llx outside the model", (unsigned long long)addr);
	return 0;
}

static void check_iter(struct ckpt_chain *c, const struct model *m)
{
	struct ckpt_chain_iter *it;
	struct ckpt_chain_range rg;
	uint64_t prev_end = 0, seen = 0, want = 0;
	int r;

	cr_assert_eq(ckpt_chain_iter_new(c, &it), 0);
	while ((r = ckpt_chain_iter_next(it, &rg)) == 1) {
		cr_expect_geq(rg.addr, prev_end, "ranges out of order at 0x%llx",
			      (unsigned long long)rg.addr);
		cr_expect_gt(rg.nr_pages, 0);
		cr_expect_lt(rg.image, ckpt_chain_length(c));
		for (uint64_t p = 0; p < rg.nr_pages; p++) {
			uint64_t addr = rg.addr + p * PS;
			size_t i = model_index(addr);

			if (rg.kind == CKPT_PAGE_ZERO) {
				cr_expect_eq(m->v[i], 0, "page 0x%llx: zero, model %u",
					     (unsigned long long)addr, m->v[i]);
			} else {
				cr_assert_eq(rg.kind, CKPT_PAGE_DATA);
				cr_expect(m->v[i] != 0 && m->v[i] != NONE, "page 0x%llx: data, model %u",
					  (unsigned long long)addr, m->v[i]);
				if (m->v[i] != 0 && m->v[i] != NONE)
					expect_page((const unsigned char *)rg.data + p * PS, addr, m->v[i]);
			}
		}
		seen += rg.nr_pages;
		prev_end = rg.addr + rg.nr_pages * PS;
	}
	cr_assert_eq(r, 0, "%s", last_err);
	for (size_t i = 0; i < MODEL_PAGES; i++)
		want += m->v[i] != NONE;
	cr_expect_eq(seen, want, "iterator reported %llu pages, the model has %llu",
		     (unsigned long long)seen, (unsigned long long)want);
	ckpt_chain_iter_free(it);
}

Test(image_chain, full_and_five_deltas_match_the_model, .init = capture_log)
{
	static struct model m[NR_DELTAS + 1];
	static bool dirty[MODEL_PAGES], hole[MODEL_PAGES];
	char *dir = tmpdir_new();
	char name[256], parent[32];

	/* Full: every page of the first two regions. */
	for (size_t i = 0; i < MODEL_PAGES; i++) {
		bool in_full = i < regions[0].pages + regions[1].pages;

		m[0].v[i] = !in_full ? NONE : rnd() % 5 == 0 ? 0 : (uint32_t)(1 + rnd() % 2);
		dirty[i] = in_full;
		hole[i] = false;
	}
	snprintf(name, sizeof(name), "%s/ck0", dir);
	write_ckpt(name, NULL, &m[0], dirty, hole);

	for (int d = 1; d <= NR_DELTAS; d++) {
		size_t hstart = rnd() % (MODEL_PAGES - 40), hlen = 10 + rnd() % 30;

		m[d] = m[d - 1];
		memset(dirty, 0, sizeof(dirty));
		memset(hole, 0, sizeof(hole));
		/* A new mapping replaces some pages: not saved here nor in the parent. */
		if (d != 3)
			for (size_t i = hstart; i < hstart + hlen; i++) {
				hole[i] = true;
				m[d].v[i] = NONE;
			}
		/* Random writes, including into holes of earlier deltas. */
		for (int k = 0; k < 150; k++) {
			size_t i = rnd() % MODEL_PAGES;

			if (hole[i])
				continue;
			dirty[i] = true;
			m[d].v[i] = rnd() % 6 == 0 ? 0 : (uint32_t)(d * 1000 + k * 2 + rnd() % 2);
		}
		snprintf(name, sizeof(name), "%s/ck%d", dir, d);
		snprintf(parent, sizeof(parent), "../ck%d", d - 1);
		write_ckpt(name, parent, &m[d], dirty, hole);
	}

	/* Every checkpoint of the chain as the head: its own model. */
	for (int d = 0; d <= NR_DELTAS; d++) {
		struct ckpt_chain *c;
		char oldest[256];

		snprintf(name, sizeof(name), "%s/ck%d", dir, d);
		cr_assert_eq(ckpt_chain_open(name, NULL, &c), 0, "%s", last_err);
		cr_assert_eq(ckpt_chain_length(c), (size_t)d + 1);
		snprintf(oldest, sizeof(oldest), "%s/ck0", dir);
		cr_expect_str_eq(ckpt_image_path(ckpt_chain_image(c, (size_t)d)), oldest);
		cr_expect_null(ckpt_chain_image(c, (size_t)d + 1));
		/* The iterator first, on cold caches: each frame at most once. */
		check_iter(c, &m[d]);
		for (int i = 0; i <= d; i++) {
			struct ckpt_image *img = ckpt_chain_image(c, (size_t)i);
			struct ckpt_image_cache_stats st;

			ckpt_image_get_cache_stats(img, &st);
			cr_expect_leq(st.decoded, ckpt_image_index(img)->nr_frames,
				      "head ck%d, image %d: %llu frames decoded of %zu", d, i,
				      (unsigned long long)st.decoded, ckpt_image_index(img)->nr_frames);
		}
		check_read_page(c, &m[d]);
		expect_windows_match(c);
		ckpt_chain_close(c);
	}
	cr_expect_eq(nr_errs, 0, "%s", last_err);
	tmpdir_free(dir);
}

/* ---- holes, explicitly ---- */

#define H 0x600000ULL

Test(image_chain, a_hole_stops_resolution, .init = capture_log)
{
	static const uint32_t full[10] = { 1, 2, 1, 2, 1, 2, 1, 2, 1, 2 };
	static const uint32_t d2[2] = { 9, 0 };
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	struct ckpt_chain *c;
	struct ckpt_chain_iter *it;
	struct ckpt_chain_range rg;
	unsigned char buf[PS];
	char *dir = tmpdir_new(), *p0 = path_in(dir, "full"), *p1 = path_in(dir, "d1"),
	     *p2 = path_in(dir, "d2");

	/* full: data at H+0..H+9 */
	cr_assert_eq(ckpt_image_writer_new(p0, &o, &w), 0);
	add_versions(w, H, 10, full);
	cr_assert_eq(ckpt_image_writer_commit(w), 0);
	ckpt_image_writer_free(w);
	/* d1: a new mapping at H+2..H+7: a hole, no data */
	o.parent = "../full";
	cr_assert_eq(ckpt_image_writer_new(p1, &o, &w), 0, "%s", last_err);
	cr_assert_eq(ckpt_image_writer_add_hole(w, H + 2 * PS, 6), 0);
	cr_assert_eq(ckpt_image_writer_commit(w), 0);
	ckpt_image_writer_free(w);
	/* d2: the new mapping gets H+3 written, H+4 written with zeros */
	o.parent = "../d1";
	cr_assert_eq(ckpt_image_writer_new(p2, &o, &w), 0, "%s", last_err);
	add_versions(w, H + 3 * PS, 2, d2);
	cr_assert_eq(ckpt_image_writer_commit(w), 0);
	ckpt_image_writer_free(w);

	cr_assert_eq(ckpt_chain_open(p2, NULL, &c), 0, "%s", last_err);
	cr_assert_eq(ckpt_chain_length(c), 3);
	for (int i = 0; i < 10; i++) {
		int r = ckpt_chain_read_page(c, H + i * PS, buf);

		if (i < 2 || i > 7) {
			cr_expect_eq(r, CKPT_PAGE_DATA, "page %d", i);
			expect_page(buf, H + i * PS, full[i]);
		} else if (i == 3) {
			cr_expect_eq(r, CKPT_PAGE_DATA, "page %d", i);
			expect_page(buf, H + i * PS, 9);
		} else if (i == 4) {
			cr_expect_eq(r, CKPT_PAGE_ZERO, "page %d", i);
		} else {
			cr_expect_eq(r, CKPT_PAGE_NONE, "page %d: the hole must hide the full's data", i);
		}
	}
	/* Each checkpoint alone says what it holds. */
	cr_expect_eq(ckpt_image_read_page(ckpt_chain_image(c, 1), H + 5 * PS, buf), CKPT_PAGE_HOLE);
	cr_expect_eq(ckpt_image_read_page(ckpt_chain_image(c, 1), H, buf), CKPT_PAGE_NONE);
	cr_expect_eq(ckpt_image_read_page(ckpt_chain_image(c, 2), H + 5 * PS, buf), CKPT_PAGE_DATA);

	/* The iterator: H+0..1 (full), H+3 (d2), H+4 zero (d2), H+8..9 (full). */
	cr_assert_eq(ckpt_chain_iter_new(c, &it), 0);
	cr_assert_eq(ckpt_chain_iter_next(it, &rg), 1);
	cr_expect(rg.addr == H && rg.nr_pages == 2 && rg.kind == CKPT_PAGE_DATA && rg.image == 2);
	expect_page(rg.data, H, 1);
	cr_assert_eq(ckpt_chain_iter_next(it, &rg), 1);
	cr_expect(rg.addr == H + 3 * PS && rg.nr_pages == 1 && rg.kind == CKPT_PAGE_DATA &&
		  rg.image == 0);
	expect_page(rg.data, H + 3 * PS, 9);
	cr_assert_eq(ckpt_chain_iter_next(it, &rg), 1);
	cr_expect(rg.addr == H + 4 * PS && rg.nr_pages == 1 && rg.kind == CKPT_PAGE_ZERO);
	cr_assert_eq(ckpt_chain_iter_next(it, &rg), 1);
	cr_expect(rg.addr == H + 8 * PS && rg.nr_pages == 2 && rg.kind == CKPT_PAGE_DATA &&
		  rg.image == 2, "0x%llx %llu", (unsigned long long)rg.addr,
		  (unsigned long long)rg.nr_pages);
	expect_page((const unsigned char *)rg.data + PS, H + 9 * PS, 2);
	cr_expect_eq(ckpt_chain_iter_next(it, &rg), 0);
	cr_expect_eq(ckpt_chain_iter_next(it, &rg), 0);
	ckpt_chain_iter_free(it);
	ckpt_chain_close(c);
	free(p0);
	free(p1);
	free(p2);
	tmpdir_free(dir);
}

/* ---- broken chains ---- */

/* dir/full (pid 4242) and dir/delta on it. */
static char *two_checkpoints(char **ret_full, char **ret_delta)
{
	static const uint32_t v[3] = { 1, 2, 0 };
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	char *dir = tmpdir_new();

	*ret_full = path_in(dir, "full");
	*ret_delta = path_in(dir, "delta");
	cr_assert_eq(ckpt_image_writer_new(*ret_full, &o, &w), 0);
	add_versions(w, 0x1000, 3, v);
	cr_assert_eq(ckpt_image_writer_commit(w), 0);
	ckpt_image_writer_free(w);
	o.parent = "../full";
	cr_assert_eq(ckpt_image_writer_new(*ret_delta, &o, &w), 0, "%s", last_err);
	add_versions(w, 0x2000, 1, v);
	cr_assert_eq(ckpt_image_writer_commit(w), 0);
	ckpt_image_writer_free(w);
	return dir;
}

static void set_pid(json_object *root, void *arg)
{
	json_object *proc;

	cr_assert(json_object_object_get_ex(root, "process", &proc));
	json_object_object_add(proc, "pid", json_object_new_int(*(int *)arg));
}

static void set_exe(json_object *root, void *arg)
{
	json_object *proc;

	cr_assert(json_object_object_get_ex(root, "process", &proc));
	json_object_object_add(proc, "exe", json_object_new_string(arg));
}

static void set_version(json_object *root, void *arg)
{
	json_object_object_add(root, "format_version", json_object_new_int(*(int *)arg));
}

Test(image_chain, missing_parent, .init = capture_log)
{
	struct ckpt_chain *c = NULL;
	char *full, *delta, *dir = two_checkpoints(&full, &delta);

	cr_assert_eq(rm_rf_at(AT_FDCWD, full), 0);
	cr_expect_eq(ckpt_chain_open(delta, NULL, &c), -ENOENT);
	cr_expect_null(c);
	cr_expect(strstr(last_err, "parent of") && strstr(last_err, "/full"), "%s", last_err);
	cr_expect_eq(nr_errs, 1, "logged %d times", nr_errs);
	free(full);
	free(delta);
	tmpdir_free(dir);
}

Test(image_chain, parent_of_another_process, .init = capture_log)
{
	struct ckpt_chain *c = NULL;
	char *full, *delta, *dir = two_checkpoints(&full, &delta);
	int pid = 4343;

	edit_inventory(full, set_pid, &pid);
	cr_expect_eq(ckpt_chain_open(delta, NULL, &c), -EXDEV);
	cr_expect(strstr(last_err, "another process") && strstr(last_err, "4343"), "%s", last_err);
	free(full);
	free(delta);
	tmpdir_free(dir);
}

Test(image_chain, writer_refuses_a_parent_of_another_process, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	char *full, *delta, *dir = two_checkpoints(&full, &delta), *p = path_in(dir, "d2");

	o.parent = "../full";
	o.identity.start_time++;
	cr_expect_eq(ckpt_image_writer_new(p, &o, &w), -EXDEV);
	cr_expect(strstr(last_err, "another process"), "%s", last_err);
	o = opts_default();
	o.parent = "../nothing";
	cr_expect_eq(ckpt_image_writer_new(p, &o, &w), -ENOENT);
	cr_expect(strstr(last_err, "nothing"), "%s", last_err);
	cr_expect_eq(count_entries(dir), 2, "a temporary directory was left behind");
	free(full);
	free(delta);
	free(p);
	tmpdir_free(dir);
}

Test(image_chain, replaced_parent_is_stale, .init = capture_log)
{
	static const uint32_t v[3] = { 1, 2, 0 };
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	struct ckpt_chain *c = NULL;
	char *full, *delta, *dir = two_checkpoints(&full, &delta);

	/* An edit that keeps the id is no replacement: exe is not even compared. */
	edit_inventory(full, set_exe, "/usr/bin/other");
	cr_expect_eq(ckpt_chain_open(delta, NULL, &c), 0, "%s", last_err);
	ckpt_chain_close(c);
	c = NULL;
	/* Another checkpoint of the same process at the parent's place: a new id. */
	o.flags = CKPT_IMAGE_REPLACE;
	cr_assert_eq(ckpt_image_writer_new(full, &o, &w), 0, "%s", last_err);
	add_versions(w, 0x1000, 3, v);
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);
	cr_expect_eq(ckpt_chain_open(delta, NULL, &c), -ESTALE);
	cr_expect(strstr(last_err, "not the checkpoint it was written on") &&
		  strstr(last_err, "replaced"), "%s", last_err);
	cr_expect_null(c);
	free(full);
	free(delta);
	tmpdir_free(dir);
}

static void set_str(json_object *root, void *arg)
{
	const char *const *kv = arg;

	json_object_object_add(root, kv[0], json_object_new_string(kv[1]));
}

Test(image_chain, a_parent_id_that_differs_is_stale, .init = capture_log)
{
	struct ckpt_chain *c = NULL;
	char *full, *delta, *dir = two_checkpoints(&full, &delta);
	const char *kv[2] = { "parent_id", "0123456789abcdef0123456789abcdef" };

	edit_inventory(delta, set_str, kv);
	cr_expect_eq(ckpt_chain_open(delta, NULL, &c), -ESTALE);
	cr_expect(strstr(last_err, "0123456789abcdef0123456789abcdef"), "%s", last_err);
	free(full);
	free(delta);
	tmpdir_free(dir);
}

Test(image_chain, parent_of_unknown_version, .init = capture_log)
{
	struct ckpt_chain *c = NULL;
	char *full, *delta, *dir = two_checkpoints(&full, &delta);
	int v = 3;

	edit_inventory(full, set_version, &v);
	cr_expect_eq(ckpt_chain_open(delta, NULL, &c), -EPROTONOSUPPORT);
	cr_expect(strstr(last_err, "version 3"), "%s", last_err);
	free(full);
	free(delta);
	tmpdir_free(dir);
}

static void make_delta_of(json_object *root, void *arg)
{
	const char *const *pi = arg; /* parent path, parent id */

	json_object_object_add(root, "kind", json_object_new_string("delta"));
	json_object_object_add(root, "parent", json_object_new_string(pi[0]));
	json_object_object_add(root, "parent_id", json_object_new_string(pi[1]));
}

Test(image_chain, a_loop_is_refused, .init = capture_log)
{
	struct ckpt_chain *c = NULL;
	struct ckpt_image *img;
	char *full, *delta, *dir = two_checkpoints(&full, &delta), id[40];
	const char *pi[2] = { "../delta", id };

	/* full becomes a delta of delta, with delta's id. */
	cr_assert_eq(ckpt_image_open(delta, NULL, &img), 0);
	ckpt_image_id_format(&ckpt_image_inventory(img)->id, id);
	ckpt_image_close(img);
	edit_inventory(full, make_delta_of, pi);
	cr_expect_eq(ckpt_chain_open(delta, NULL, &c), -ELOOP);
	cr_expect(strstr(last_err, "loops"), "%s", last_err);
	free(full);
	free(delta);
	tmpdir_free(dir);
}
