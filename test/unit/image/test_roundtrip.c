/* SPDX-License-Identifier: MIT */
/* Write a checkpoint, read it back: every field, every page, every entry. */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <string.h>
#include <zstd.h>

#include "helpers.h"

#define A_ADDR 0x400000ULL
#define A_PAGES 600
#define B_ADDR 0x7ffff0000000ULL
#define B_PAGES 100
#define C_ADDR 0x10000000ULL
#define C_PAGES 50
#define D_ADDR 0x7f0000001000ULL
#define TOP_ADDR (CKPT_IMAGE_ADDR_LIMIT - PS)

static uint32_t a_version(size_t i)
{
	return i % 5 == 0 ? 0 : (uint32_t)(1 + i % 2);
}

static json_object *process_doc(void)
{
	json_object *o = json_object_new_object(), *regs = json_object_new_array();

	json_object_object_add(o, "pid", json_object_new_int(4242));
	json_object_object_add(o, "comm", json_object_new_string("target \"x\" / é"));
	for (int i = 0; i < 3; i++)
		json_object_array_add(regs, json_object_new_int64(0x7fffffff0000LL + i));
	json_object_object_add(o, "regs", regs);
	return o;
}

/* Write the test checkpoint at @path: four regions, added out of order. */
static void write_sample(const char *path, int level, unsigned int frame_pages,
			 unsigned int threads, struct ckpt_image_writer_stats *st)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	uint32_t ver[A_PAGES];
	uint32_t dver[3] = { 2, 1, 2 }, top = 1;
	json_object *doc = process_doc();
	json_object *threads_doc = json_tokener_parse("[{\"tid\": 1}, {\"tid\": 2}]");

	o.level = level;
	o.frame_pages = frame_pages;
	o.threads = threads;
	for (size_t i = 0; i < A_PAGES; i++)
		ver[i] = a_version(i);
	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0, "%s", last_err);
	/* Second half first, then the holes and zeros, then the first half. */
	add_versions(w, A_ADDR + 300 * PS, A_PAGES - 300, ver + 300);
	cr_assert_eq(ckpt_image_writer_add_hole(w, C_ADDR, C_PAGES), 0);
	cr_assert_eq(ckpt_image_writer_add_zero(w, B_ADDR, B_PAGES), 0);
	add_versions(w, TOP_ADDR, 1, &top);
	cr_assert_eq(ckpt_image_writer_put_json(w, "process.json", doc), 0, "%s", last_err);
	add_versions(w, A_ADDR, 300, ver);
	add_versions(w, D_ADDR, 3, dver);
	cr_assert_eq(ckpt_image_writer_put_json(w, "threads.json", threads_doc), 0);
	cr_assert_eq(ckpt_image_writer_put_file(w, "blob.bin", "\0\1\2", 3), 0);
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_get_stats(w, st);
	ckpt_image_writer_free(w);
	json_object_put(doc);
	json_object_put(threads_doc);
}

static size_t a_data_pages(void)
{
	size_t n = 0;

	for (size_t i = 0; i < A_PAGES; i++)
		n += a_version(i) != 0;
	return n;
}

static void check_sample(const char *path, int level)
{
	struct ckpt_image *img;
	const struct ckpt_image_inventory *inv;
	const struct ckpt_image_index *idx;
	unsigned char buf[PS];
	json_object *doc, *want;
	void *blob;
	size_t len;

	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0, "%s", last_err);
	inv = ckpt_image_inventory(img);
	cr_expect_eq(inv->format_version, CKPT_IMAGE_FORMAT_VERSION);
	cr_expect_str_eq(inv->ckpt_version, CKPT_VERSION);
	cr_expect_gt(inv->created_ns, 1600000000LL * 1000000000LL);
	cr_expect_eq(strlen(inv->created_utc), 30, "'%s'", inv->created_utc);
	cr_expect_eq(inv->created_utc[29], 'Z');
	cr_expect_eq(inv->kind, CKPT_IMAGE_FULL);
	cr_expect_null(inv->parent);
	cr_expect_eq(inv->identity.pid, 4242);
	cr_expect_eq(inv->identity.start_time, 123456);
	cr_expect_str_eq(inv->identity.boot_id, BOOT_ID);
	cr_expect_str_eq(inv->identity.exe, "/usr/bin/target");
	cr_assert_eq(inv->nr_files, 5);
	cr_expect_str_eq(inv->files[0].name, "blob.bin");
	cr_expect_str_eq(inv->files[1].name, "pages.idx");
	cr_expect_str_eq(inv->files[2].name, "pages.zst");
	cr_expect_str_eq(inv->files[3].name, "process.json");
	cr_expect_str_eq(inv->files[4].name, "threads.json");
	cr_expect(ckpt_image_has_file(img, "process.json"));
	cr_expect(!ckpt_image_has_file(img, "files.json"));

	/* Entries: sorted, disjoint, merged, counted. */
	idx = ckpt_image_index(img);
	cr_expect_eq(idx->nr_data_pages, a_data_pages() + 3 + 1);
	for (size_t i = 1; i < idx->nr_entries; i++) {
		const struct ckpt_image_entry *p = &idx->entries[i - 1], *e = &idx->entries[i];

		cr_expect_geq(e->addr, p->addr + p->nr_pages * PS, "entries %zu and %zu overlap", i - 1, i);
		cr_expect(!(e->addr == p->addr + p->nr_pages * PS && e->kind == p->kind &&
			    e->kind != CKPT_PAGE_DATA), "entries %zu and %zu not merged", i - 1, i);
	}
	cr_expect_eq(idx->entries[0].addr, A_ADDR);
	cr_expect_eq(idx->entries[idx->nr_entries - 1].addr, TOP_ADDR);

	/* Every page. */
	for (size_t i = 0; i < A_PAGES; i++) {
		uint64_t addr = A_ADDR + i * PS;
		int r = ckpt_image_read_page(img, addr, buf);

		if (a_version(i) == 0) {
			cr_expect_eq(r, CKPT_PAGE_ZERO, "page %zu", i);
		} else {
			cr_assert_eq(r, CKPT_PAGE_DATA, "page %zu: %d %s", i, r, last_err);
			expect_page(buf, addr, a_version(i));
		}
	}
	for (size_t i = 0; i < B_PAGES; i++)
		cr_expect_eq(ckpt_image_read_page(img, B_ADDR + i * PS, buf), CKPT_PAGE_ZERO);
	for (size_t i = 0; i < C_PAGES; i++)
		cr_expect_eq(ckpt_image_read_page(img, C_ADDR + i * PS, buf), CKPT_PAGE_HOLE);
	cr_expect_eq(ckpt_image_read_page(img, D_ADDR + 1 * PS, buf), CKPT_PAGE_DATA);
	expect_page(buf, D_ADDR + PS, 1);
	cr_expect_eq(ckpt_image_read_page(img, TOP_ADDR, buf), CKPT_PAGE_DATA);
	expect_page(buf, TOP_ADDR, 1);
	cr_expect_eq(ckpt_image_read_page(img, A_ADDR - PS, buf), CKPT_PAGE_NONE);
	cr_expect_eq(ckpt_image_read_page(img, A_ADDR + A_PAGES * PS, buf), CKPT_PAGE_NONE);
	cr_expect_eq(ckpt_image_read_page(img, C_ADDR + C_PAGES * PS, buf), CKPT_PAGE_NONE);
	cr_expect_eq(ckpt_image_read_page(img, 0, buf), CKPT_PAGE_NONE);
	cr_expect_eq(ckpt_image_read_page(img, A_ADDR + 1, buf), -EINVAL);

	/* Metadata. */
	cr_assert_eq(ckpt_image_get_json(img, "process.json", &doc), 0, "%s", last_err);
	want = process_doc();
	cr_expect(json_object_equal(doc, want), "process.json differs: %s",
		  json_object_to_json_string(doc));
	json_object_put(doc);
	json_object_put(want);
	cr_assert_eq(ckpt_image_get_json(img, "threads.json", &doc), 0);
	cr_expect_eq(json_object_array_length(doc), 2);
	json_object_put(doc);
	cr_assert_eq(ckpt_image_read_file(img, "blob.bin", &blob, &len), 0);
	cr_expect_eq(len, 3);
	cr_expect(memcmp(blob, "\0\1\2", 3) == 0);
	free(blob);
	cr_expect_eq(ckpt_image_get_json(img, "files.json", &doc), -ENOENT);
	cr_expect(strstr(last_err, "files.json"), "%s", last_err);

	cr_expect_eq(ckpt_image_verify(img), 0, "level %d: %s", level, last_err);
	ckpt_image_close(img);
}

Test(image_roundtrip, every_field_and_page, .init = capture_log)
{
	static const struct {
		int level;
		unsigned int frame_pages, threads;
	} cases[] = {
		{ 0, 0, 0 },   { 1, 256, 2 }, { 3, 64, 1 },   { -5, 7, 3 },
		{ CKPT_IMAGE_LEVEL_NONE, 33, 2 }, { 19, 1000, 2 }, { 1, 1, 4 },
	};
	char *dir = tmpdir_new();

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct ckpt_image_writer_stats st;
		char name[32], *path;

		snprintf(name, sizeof(name), "ck%zu", c);
		path = path_in(dir, name);
		write_sample(path, cases[c].level, cases[c].frame_pages, cases[c].threads, &st);
		cr_expect_eq(st.data_pages, a_data_pages() + 4);
		cr_expect_eq(st.zero_pages, A_PAGES - a_data_pages() + B_PAGES);
		cr_expect_eq(st.hole_pages, C_PAGES);
		check_sample(path, cases[c].level);
		free(path);
	}
	/* Two per case: the misaligned read and the missing files.json. */
	cr_expect_eq(nr_errs, 2 * (int)(sizeof(cases) / sizeof(cases[0])), "errors: %d, last: %s",
		     nr_errs, last_err);
	tmpdir_free(dir);
}

Test(image_roundtrip, pages_file_is_a_plain_zstd_stream, .init = capture_log)
{
	static const int levels[] = { CKPT_IMAGE_LEVEL_NONE, 1 };
	char *dir = tmpdir_new();

	for (size_t l = 0; l < 2; l++) {
		struct ckpt_image_writer_stats st;
		char name[16], *path;
		size_t len, out_len;
		void *z, *out;

		snprintf(name, sizeof(name), "ck%zu", l);
		path = path_in(dir, name);
		write_sample(path, levels[l], 50, 2, &st);
		z = slurp(path, "pages.zst", &len);
		cr_expect_eq(len, st.pages_bytes);
		out = malloc(st.data_pages * PS);
		out_len = ZSTD_decompress(out, st.data_pages * PS, z, len);
		cr_expect(!ZSTD_isError(out_len), "level %d: %s", levels[l],
			  ZSTD_getErrorName(out_len));
		cr_expect_eq(out_len, st.data_pages * PS);
		free(out);
		free(z);
		free(path);
	}
	tmpdir_free(dir);
}

Test(image_roundtrip, zero_pages_are_detected, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	static const uint32_t ver[8] = { 0, 1, 2, 0, 1, 1, 2, 0 };
	struct ckpt_image_writer *w;
	struct ckpt_image *img;
	const struct ckpt_image_index *idx;
	unsigned char *one = calloc(1, PS), buf[PS];
	char *dir = tmpdir_new(), *path = path_in(dir, "ck");

	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0);
	add_versions(w, 0x1000000, 8, ver);
	one[PS - 1] = 1; /* one byte at the very end: data */
	cr_assert_eq(ckpt_image_writer_add_data(w, 0x2000000, 1, one), 0);
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);

	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0, "%s", last_err);
	idx = ckpt_image_index(img);
	cr_expect_eq(idx->nr_data_pages, 6);
	cr_expect_eq(idx->nr_frames, 1);
	cr_assert_eq(idx->nr_entries, 6);
	cr_expect_eq(idx->entries[0].kind, CKPT_PAGE_ZERO);
	cr_expect_eq(idx->entries[1].kind, CKPT_PAGE_DATA);
	cr_expect_eq(idx->entries[1].nr_pages, 2);
	cr_expect_eq(idx->entries[2].kind, CKPT_PAGE_ZERO);
	cr_expect_eq(idx->entries[3].kind, CKPT_PAGE_DATA);
	cr_expect_eq(idx->entries[3].nr_pages, 3);
	cr_expect_eq(idx->entries[3].frame_page, 2);
	cr_expect_eq(idx->entries[4].kind, CKPT_PAGE_ZERO);
	cr_expect_eq(idx->entries[5].addr, 0x2000000);
	cr_expect_eq(idx->entries[5].kind, CKPT_PAGE_DATA);
	cr_expect_eq(ckpt_image_read_page(img, 0x2000000, buf), CKPT_PAGE_DATA);
	cr_expect(memcmp(buf, one, PS) == 0);
	for (int i = 0; i < 8; i++) {
		int r = ckpt_image_read_page(img, 0x1000000 + i * PS, buf);

		cr_expect_eq(r, ver[i] ? CKPT_PAGE_DATA : CKPT_PAGE_ZERO, "page %d", i);
		if (ver[i])
			expect_page(buf, 0x1000000 + i * PS, ver[i]);
	}
	ckpt_image_close(img);
	free(one);
	free(path);
	tmpdir_free(dir);
}

Test(image_roundtrip, an_empty_checkpoint, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	struct ckpt_image *img;
	unsigned char buf[PS];
	char *dir = tmpdir_new(), *path = path_in(dir, "empty");

	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0);
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);
	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0, "%s", last_err);
	cr_expect_eq(ckpt_image_index(img)->nr_entries, 0);
	cr_expect_eq(ckpt_image_index(img)->nr_frames, 0);
	cr_expect_eq(ckpt_image_read_page(img, 0x1000, buf), CKPT_PAGE_NONE);
	cr_expect_eq(ckpt_image_verify(img), 0);
	ckpt_image_close(img);
	free(path);
	tmpdir_free(dir);
}

Test(image_roundtrip, overlapping_ranges_fail_at_commit, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	static const uint32_t ver[2] = { 1, 2 };
	struct ckpt_image_writer *w;
	char *dir = tmpdir_new(), *path = path_in(dir, "ck");

	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0);
	add_versions(w, 0x5000, 2, ver);
	cr_assert_eq(ckpt_image_writer_add_zero(w, 0x6000, 4), 0);
	cr_expect_eq(ckpt_image_writer_commit(w), -EINVAL);
	cr_expect(strstr(last_err, "0x6000") && strstr(last_err, "twice"), "%s", last_err);
	cr_expect_eq(ckpt_image_writer_commit(w), -EINVAL, "a failed writer stays failed");
	ckpt_image_writer_free(w);
	cr_expect(!path_exists(path));
	cr_expect_eq(count_entries(dir), 0, "temporary directory left behind");
	free(path);
	tmpdir_free(dir);
}

Test(image_roundtrip, bad_arguments, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	unsigned char page[PS] = { 1 };
	char *dir = tmpdir_new(), *path = path_in(dir, "ck");
	static const char *const bad_names[] = {
		"", ".hidden", "../x", "a/b", "inventory.json", "pages.idx", "pages.zst", "sp ace",
	};

	/* Options. */
	o.identity.pid = 0;
	cr_expect_eq(ckpt_image_writer_new(path, &o, &w), -EINVAL);
	o = opts_default();
	strcpy(o.identity.boot_id, "not-a-uuid");
	cr_expect_eq(ckpt_image_writer_new(path, &o, &w), -EINVAL);
	cr_expect(strstr(last_err, "boot id"), "%s", last_err);
	o = opts_default();
	o.identity.exe = NULL;
	cr_expect_eq(ckpt_image_writer_new(path, &o, &w), -EINVAL);
	o = opts_default();
	o.parent = "/abs/parent";
	cr_expect_eq(ckpt_image_writer_new(path, &o, &w), -EINVAL);
	o = opts_default();
	o.level = 1000;
	cr_expect_eq(ckpt_image_writer_new(path, &o, &w), -EINVAL);
	o = opts_default();
	o.frame_pages = CKPT_IMAGE_FRAME_PAGES_MAX + 1;
	cr_expect_eq(ckpt_image_writer_new(path, &o, &w), -EINVAL);
	o = opts_default();
	cr_expect_eq(ckpt_image_writer_new("/tmp/no/such/dir/ck", &o, &w), -ENOENT);
	cr_expect_eq(count_entries(dir), 0);

	/* Pages and names; the writer stays usable. */
	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0);
	cr_expect_eq(ckpt_image_writer_add_data(w, 0x1001, 1, page), -EINVAL);
	cr_expect(strstr(last_err, "0x1001"), "%s", last_err);
	cr_expect_eq(ckpt_image_writer_add_zero(w, CKPT_IMAGE_ADDR_LIMIT, 1), -EINVAL);
	cr_expect_eq(ckpt_image_writer_add_hole(w, CKPT_IMAGE_ADDR_LIMIT - PS, 2), -EINVAL);
	cr_expect_eq(ckpt_image_writer_add_data(w, 0, UINT64_MAX / 2, page), -EINVAL);
	cr_expect_eq(ckpt_image_writer_add_data(w, 0x1000, 0, NULL), 0);
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		cr_expect_eq(ckpt_image_writer_put_file(w, bad_names[i], "x", 1), -EINVAL, "'%s'",
			     bad_names[i]);
	cr_expect_eq(ckpt_image_writer_put_file(w, "mm.json", "{}", 2), 0);
	cr_expect_eq(ckpt_image_writer_put_file(w, "mm.json", "{}", 2), -EEXIST);
	cr_expect_eq(ckpt_image_writer_add_data(w, 0x1000, 1, page), 0);
	cr_expect_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	cr_expect_eq(ckpt_image_writer_commit(w), -EINVAL);
	ckpt_image_writer_free(w);
	free(path);
	tmpdir_free(dir);
}

Test(image_roundtrip, parse_level)
{
	int level = 42;

	cr_expect_eq(ckpt_image_parse_level("none", &level), 0);
	cr_expect_eq(level, CKPT_IMAGE_LEVEL_NONE);
	cr_expect_eq(ckpt_image_parse_level("1", &level), 0);
	cr_expect_eq(level, 1);
	cr_expect_eq(ckpt_image_parse_level("-7", &level), 0);
	cr_expect_eq(level, -7);
	cr_expect_eq(ckpt_image_parse_level("22", &level), 0);
	cr_expect_eq(ckpt_image_parse_level("23", &level), -EINVAL);
	cr_expect_eq(ckpt_image_parse_level("", &level), -EINVAL);
	cr_expect_eq(ckpt_image_parse_level("3x", &level), -EINVAL);
	cr_expect_eq(ckpt_image_parse_level("-99999999", &level), -EINVAL);
	cr_expect_eq(level, 22);
}

Test(image_roundtrip, temp_names)
{
	cr_expect(ckpt_image_is_temp_name(".ck.tmp-AbC123"));
	cr_expect(ckpt_image_is_temp_name(".a.b.tmp-x-old"));
	cr_expect(!ckpt_image_is_temp_name("ck.tmp-AbC123"));
	cr_expect(!ckpt_image_is_temp_name(".ck"));
	cr_expect(!ckpt_image_is_temp_name("ck"));
	cr_expect(!ckpt_image_is_temp_name(NULL));
}
