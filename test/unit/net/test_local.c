/* SPDX-License-Identifier: MIT */
/*
 * The local page source on chains written with lib/image: pages resolve as
 * ckpt-images(5) says, ranges are listed without data, reads outside the
 * address space and bad arguments are refused, documents and the summary.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ckpt/image.h>
#include <ckpt/log.h>
#include <ckpt/pagesrc.h>

#include "net/net-internal.h"
#include "util/fs.h"

#define PS	  4096u
#define BASE	  0x7f0000000000ULL
#define VMA_PAGES 16
#define BOOT_ID	  "0b7c3c1e-5a55-4c1a-9e1e-2f3a4b5c6d7e"

static char dir[64], last_err[2048];

static void sink(enum ckpt_log_level level, const char *area, const char *msg, void *ud)
{
	(void)ud;
	if (level == CKPT_LOG_ERROR)
		snprintf(last_err, sizeof(last_err), "%s: %s", area, msg);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ckpt-pagesrc-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	last_err[0] = '\0';
	ckpt_log_set_sink(sink, NULL);
}

static void teardown(void)
{
	cr_expect_eq(rm_rf_at(AT_FDCWD, dir), 0);
	ckpt_log_set_sink(NULL, NULL);
}

TestSuite(pagesrc_local, .init = setup, .fini = teardown);

static void page_of(void *buf, uint64_t addr, int version)
{
	unsigned char *p = buf;

	for (unsigned int i = 0; i < PS; i++)
		p[i] = (unsigned char)((addr >> 12) * 31 + (unsigned)version * 7 + i);
}

static struct ckpt_image_writer *writer(const char *name, const char *parent)
{
	struct ckpt_image_writer_opts o = {
		.identity = {.pid = 4242, .start_time = 99, .boot_id = BOOT_ID, .exe = "/bin/t"},
		.parent = parent,
	};
	struct ckpt_image_writer *w;
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0, "%s", last_err);
	return w;
}

static void add_page(struct ckpt_image_writer *w, uint64_t i, int version)
{
	unsigned char buf[PS];

	page_of(buf, BASE + i * PS, version);
	cr_assert_eq(ckpt_image_writer_add_data(w, BASE + i * PS, 1, buf), 0, "%s", last_err);
}

static void put_mm(struct ckpt_image_writer *w)
{
	char text[256];
	json_object *mm;

	snprintf(text, sizeof(text),
		 "{\"version\": 1, \"vmas\": [{\"start\": \"0x%llx\", \"end\": \"0x%llx\"}]}", BASE,
		 BASE + VMA_PAGES * PS);
	mm = json_tokener_parse(text);
	cr_assert_not_null(mm);
	cr_assert_eq(ckpt_image_writer_put_json(w, "mm.json", mm), 0);
	json_object_put(mm);
}

/*
 * full:  DATA 0, 3 (v1); ZERO 4-5; DATA 1, 2 (v1)
 * delta: DATA 1 (v2), ZERO 2, HOLE 3, DATA 8 (v2)
 * -> 0 DATA v1, 1 DATA v2, 2 ZERO, 3 NONE, 4-5 ZERO, 6-7 NONE, 8 DATA v2, 9-15 NONE.
 */
static void make_chain(bool with_mm)
{
	struct ckpt_image_writer *w = writer("full", NULL);

	add_page(w, 0, 1);
	add_page(w, 3, 1);
	cr_assert_eq(ckpt_image_writer_add_zero(w, BASE + 4 * PS, 2), 0);
	add_page(w, 1, 1);
	add_page(w, 2, 1);
	if (with_mm)
		put_mm(w);
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);

	w = writer("delta", "../full");
	add_page(w, 1, 2);
	cr_assert_eq(ckpt_image_writer_add_zero(w, BASE + 2 * PS, 1), 0);
	cr_assert_eq(ckpt_image_writer_add_hole(w, BASE + 3 * PS, 1), 0);
	add_page(w, 8, 2);
	if (with_mm)
		put_mm(w);
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);
}

static struct ckpt_page_source *open_delta(void)
{
	struct ckpt_page_source *s = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/delta", dir);
	cr_assert_eq(ckpt_page_source_open_local(path, NULL, &s), 0, "%s", last_err);
	cr_assert_not(ckpt_page_source_is_remote(s));
	cr_assert_str_eq(ckpt_page_source_name(s), path);
	return s;
}

static const int want_kind[VMA_PAGES] = {
	CKPT_PAGE_DATA, CKPT_PAGE_DATA, CKPT_PAGE_ZERO, CKPT_PAGE_NONE, CKPT_PAGE_ZERO,
	CKPT_PAGE_ZERO, CKPT_PAGE_NONE, CKPT_PAGE_NONE, CKPT_PAGE_DATA,
};
static const int want_version[VMA_PAGES] = {1, 2, 0, 0, 0, 0, 0, 0, 2};

Test(pagesrc_local, pages_resolve_through_the_chain)
{
	struct ckpt_page_source *s;
	static unsigned char buf[VMA_PAGES * PS], want[PS];
	uint8_t kinds[VMA_PAGES];
	struct ckpt_page_source_stats st;

	make_chain(true);
	s = open_delta();
	/* One page at a time. */
	for (int i = 0; i < VMA_PAGES; i++) {
		int k = ckpt_page_source_read_page(s, BASE + i * PS, buf);

		cr_expect_eq(k, want_kind[i], "page %d: kind %d, expected %d", i, k, want_kind[i]);
		if (k == CKPT_PAGE_DATA) {
			page_of(want, BASE + i * PS, want_version[i]);
			cr_expect_eq(memcmp(buf, want, PS), 0, "page %d: wrong content", i);
		}
	}
	/* The whole mapping at once: slots of non-DATA pages untouched. */
	memset(buf, 0xa5, sizeof(buf));
	cr_assert_eq(ckpt_page_source_read_pages(s, BASE, VMA_PAGES, kinds, buf), 3, "%s",
		     last_err);
	for (int i = 0; i < VMA_PAGES; i++) {
		cr_expect_eq(kinds[i], want_kind[i], "batch page %d", i);
		if (kinds[i] == CKPT_PAGE_DATA) {
			page_of(want, BASE + i * PS, want_version[i]);
			cr_expect_eq(memcmp(buf + i * PS, want, PS), 0, "batch page %d: content",
				     i);
		} else {
			cr_expect_eq(buf[i * PS], 0xa5, "batch page %d: slot written", i);
		}
	}
	ckpt_page_source_get_stats(s, &st);
	cr_expect_eq(st.calls, VMA_PAGES + 1);
	cr_expect_eq(st.pages, 2 * VMA_PAGES);
	cr_expect_eq(st.data_pages, 6);
	cr_expect_eq(st.zero_pages, 6);
	cr_expect_eq(st.none_pages, 20);
	cr_expect_eq(st.bytes_in, 6 * PS);
	cr_expect_eq(st.errors, 0);
	cr_expect_eq(st.requests, 0);
	ckpt_page_source_close(s);
}

Test(pagesrc_local, ranges_are_the_resolved_chain_without_data)
{
	struct ckpt_page_source *s;
	struct ckpt_page_source_range *r = NULL;
	size_t n = 0;

	make_chain(true);
	s = open_delta();
	cr_assert_eq(ckpt_page_source_list_ranges(s, &r, &n), 0, "%s", last_err);
	cr_assert_eq(n, 4, "%zu ranges", n);
	cr_expect(r[0].addr == BASE && r[0].nr_pages == 2 && r[0].kind == CKPT_PAGE_DATA,
		  "pages 0-1: one DATA range from two checkpoints");
	cr_expect(r[1].addr == BASE + 2 * PS && r[1].nr_pages == 1 && r[1].kind == CKPT_PAGE_ZERO);
	cr_expect(r[2].addr == BASE + 4 * PS && r[2].nr_pages == 2 && r[2].kind == CKPT_PAGE_ZERO);
	cr_expect(r[3].addr == BASE + 8 * PS && r[3].nr_pages == 1 && r[3].kind == CKPT_PAGE_DATA);
	free(r);
	ckpt_page_source_close(s);
}

static struct ckpt_page_source *open_delta_deferred(void)
{
	struct ckpt_page_source_opts o = { .defer_resolve = true };
	struct ckpt_page_source *s = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/delta", dir);
	cr_assert_eq(ckpt_page_source_open_local(path, &o, &s), 0, "%s", last_err);
	return s;
}

/* The ranges of a window, deferred or not, resolved or not: the whole list cut to it. */
static void expect_window(struct ckpt_page_source *s, uint64_t lo, uint64_t hi, size_t n,
			  const struct ckpt_page_source_range *want)
{
	struct ckpt_page_source_range *r = NULL;
	size_t nr = 0;

	cr_assert_eq(ckpt_page_source_list_ranges_in(s, lo, hi, &r, &nr), 0, "%s", last_err);
	cr_assert_eq(nr, n, "window %llu-%llu: %zu ranges, expected %zu", (unsigned long long)(lo - BASE) / PS,
		     (unsigned long long)(hi - BASE) / PS, nr, n);
	for (size_t i = 0; i < n; i++)
		cr_expect(r[i].addr == want[i].addr && r[i].nr_pages == want[i].nr_pages && r[i].kind == want[i].kind,
			  "window %llu-%llu, range %zu: page %llu +%llu kind %d", (unsigned long long)(lo - BASE) / PS,
			  (unsigned long long)(hi - BASE) / PS, i, (unsigned long long)(r[i].addr - BASE) / PS,
			  (unsigned long long)r[i].nr_pages, r[i].kind);
	free(r);
}

static void expect_windows(struct ckpt_page_source *s)
{
	const struct ckpt_page_source_range all[] = {
		{ BASE, 2, CKPT_PAGE_DATA },
		{ BASE + 2 * PS, 1, CKPT_PAGE_ZERO },
		{ BASE + 4 * PS, 2, CKPT_PAGE_ZERO },
		{ BASE + 8 * PS, 1, CKPT_PAGE_DATA },
	};
	const struct ckpt_page_source_range cut[] = {
		{ BASE + PS, 1, CKPT_PAGE_DATA },
		{ BASE + 2 * PS, 1, CKPT_PAGE_ZERO },
		{ BASE + 4 * PS, 1, CKPT_PAGE_ZERO },
	};

	expect_window(s, 0, 1ULL << 57, 4, all);
	expect_window(s, BASE + PS, BASE + 5 * PS, 3, cut);
	expect_window(s, BASE + 3 * PS, BASE + 4 * PS, 0, NULL);
	expect_window(s, BASE + 6 * PS, BASE + 8 * PS, 0, NULL);
	expect_window(s, BASE + 8 * PS, BASE + 9 * PS, 1, &all[3]);
}

Test(pagesrc_local, a_deferred_source_lists_a_window_without_resolving_the_rest)
{
	struct ckpt_page_source *s;
	struct ckpt_page_source_range *bad = NULL;
	size_t nbad = 0;
	unsigned char buf[PS];
	json_object *o = NULL, *pages, *v;

	make_chain(true);
	/* Resolved at open: the windows are cut from the list. */
	s = open_delta();
	expect_windows(s);
	cr_expect_eq(ckpt_page_source_list_ranges_in(s, BASE + PS, BASE + PS, &bad, &nbad),
		     -EINVAL, "an empty window is refused");
	cr_expect_eq(ckpt_page_source_list_ranges_in(s, BASE + 1, BASE + PS, &bad, &nbad),
		     -EINVAL, "an unaligned window is refused");
	cr_expect_null(bad);
	ckpt_page_source_close(s);
	/* Deferred: the same windows, from the chain's entries there; then the same once resolved. */
	s = open_delta_deferred();
	expect_windows(s);
	cr_expect_eq(ckpt_page_source_read_page(s, BASE + PS, buf), CKPT_PAGE_DATA);
	cr_expect_eq(ckpt_page_source_read_page(s, BASE + VMA_PAGES * PS, buf), -EFAULT);
	cr_assert_eq(ckpt_page_source_get_json(s, CKPT_PAGE_SOURCE_SUMMARY, &o), 0, "%s", last_err);
	cr_assert(json_object_object_get_ex(o, "pages", &pages));
	cr_assert(json_object_object_get_ex(pages, "ranges", &v));
	cr_expect_eq(json_object_get_int(v), 4, "the summary of a deferred source is the whole one");
	json_object_put(o);
	expect_windows(s);
	ckpt_page_source_close(s);
}

Test(pagesrc_local, a_deferred_source_without_mm_json_resolves_for_a_read)
{
	struct ckpt_page_source *s;
	unsigned char buf[PS];

	make_chain(false);
	s = open_delta_deferred();
	/* Before it resolves it knows no mapping: the read makes it resolve, and the ranges are the address space. */
	cr_expect_eq(ckpt_page_source_read_page(s, BASE + 8 * PS, buf), CKPT_PAGE_DATA, "%s", last_err);
	cr_expect_eq(ckpt_page_source_read_page(s, BASE + 3 * PS, buf), -EFAULT);
	ckpt_page_source_close(s);
	s = open_delta_deferred();
	cr_expect_eq(ckpt_page_source_read_page(s, BASE + 7 * PS, buf), -EFAULT, "resolved first, then outside");
	ckpt_page_source_close(s);
}

Test(pagesrc_local, reads_outside_the_address_space_and_bad_arguments_are_refused)
{
	struct ckpt_page_source *s;
	static unsigned char buf[(CKPT_PAGE_SOURCE_BATCH_MAX + 1) * PS];
	static uint8_t kinds[CKPT_PAGE_SOURCE_BATCH_MAX + 1];
	struct ckpt_page_source_stats st;

	make_chain(true);
	s = open_delta();
	cr_expect_eq(ckpt_page_source_read_page(s, BASE + VMA_PAGES * PS, buf), -EFAULT);
	cr_expect(strstr(last_err, "outside the address space"), "%s", last_err);
	cr_expect_eq(ckpt_page_source_read_page(s, BASE - PS, buf), -EFAULT);
	cr_expect_eq(ckpt_page_source_read_page(s, 0, buf), -EFAULT);
	/* A batch that starts inside and ends outside: nothing read. */
	kinds[0] = 0x77;
	cr_expect_eq(ckpt_page_source_read_pages(s, BASE + 8 * PS, VMA_PAGES, kinds, buf), -EFAULT);
	cr_expect_eq(kinds[0], 0x77);
	cr_expect_eq(ckpt_page_source_read_page(s, BASE + 1, buf), -EINVAL);
	cr_expect(strstr(last_err, "not page-aligned"), "%s", last_err);
	cr_expect_eq(ckpt_page_source_read_pages(s, BASE, 0, kinds, buf), -EINVAL);
	cr_expect_eq(
		ckpt_page_source_read_pages(s, BASE, CKPT_PAGE_SOURCE_BATCH_MAX + 1, kinds, buf),
		-EINVAL);
	cr_expect_eq(ckpt_page_source_read_page(s, 1ULL << 57, buf), -EFAULT);
	cr_expect_eq(ckpt_page_source_read_pages(s, 0xfffffffffffff000ULL, 2, kinds, buf), -EFAULT);
	ckpt_page_source_get_stats(s, &st);
	cr_expect_eq(st.errors, 9, "every failed call counted");
	cr_expect_eq(st.calls, 9);
	/* Still usable. */
	cr_expect_eq(ckpt_page_source_read_page(s, BASE, buf), CKPT_PAGE_DATA);
	ckpt_page_source_close(s);
}

Test(pagesrc_local, without_mm_json_the_ranges_are_the_address_space)
{
	struct ckpt_page_source *s;
	unsigned char buf[PS];

	make_chain(false);
	s = open_delta();
	cr_expect_eq(ckpt_page_source_read_page(s, BASE + 8 * PS, buf), CKPT_PAGE_DATA);
	cr_expect_eq(ckpt_page_source_read_page(s, BASE + 3 * PS, buf), -EFAULT,
		     "a HOLE without a mapping is outside");
	cr_expect_eq(ckpt_page_source_read_page(s, BASE + 7 * PS, buf), -EFAULT);
	ckpt_page_source_close(s);
}

Test(pagesrc_local, documents_and_summary)
{
	struct ckpt_page_source *s;
	json_object *o = NULL, *v, *chain, *pages, *proc;

	make_chain(true);
	s = open_delta();
	cr_assert_eq(ckpt_page_source_get_json(s, "mm.json", &o), 0, "%s", last_err);
	cr_expect(json_object_object_get_ex(o, "vmas", &v));
	json_object_put(o);
	cr_assert_eq(ckpt_page_source_get_json(s, CKPT_PAGE_SOURCE_SUMMARY, &o), 0, "%s", last_err);
	cr_assert(json_object_object_get_ex(o, "kind", &v));
	cr_expect_str_eq(json_object_get_string(v), "delta");
	cr_assert(json_object_object_get_ex(o, "process", &proc));
	cr_assert(json_object_object_get_ex(proc, "pid", &v));
	cr_expect_eq(json_object_get_int(v), 4242);
	cr_assert(json_object_object_get_ex(proc, "boot_id", &v));
	cr_expect_str_eq(json_object_get_string(v), BOOT_ID);
	cr_assert(json_object_object_get_ex(o, "chain", &chain));
	cr_expect_eq(json_object_array_length(chain), 2);
	cr_assert(json_object_object_get_ex(o, "pages", &pages));
	cr_assert(json_object_object_get_ex(pages, "data", &v));
	cr_expect_eq(json_object_get_int(v), 3);
	cr_assert(json_object_object_get_ex(pages, "zero", &v));
	cr_expect_eq(json_object_get_int(v), 3);
	cr_assert(json_object_object_get_ex(pages, "ranges", &v));
	cr_expect_eq(json_object_get_int(v), 4);
	json_object_put(o);

	o = NULL;
	last_err[0] = '\0';
	cr_expect_eq(ckpt_page_source_get_json(s, "process.json", &o), -ENOENT);
	/* A document it does not have is the caller's to judge (tree.json is optional): no error logged. */
	cr_expect_str_empty(last_err, "%s", last_err);
	cr_expect_null(o);
	cr_expect_eq(ckpt_page_source_get_json(s, "pages.zst", &o), -ENOENT);
	cr_expect_eq(ckpt_page_source_get_json(s, "pages.idx", &o), -ENOENT);
	cr_expect_eq(ckpt_page_source_get_json(s, "../full/mm.json", &o), -EINVAL);
	cr_expect_eq(ckpt_page_source_get_json(s, "", &o), -EINVAL);
	ckpt_page_source_close(s);
}

Test(pagesrc_local, missing_checkpoint)
{
	struct ckpt_page_source *s = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/none", dir);
	cr_expect_eq(ckpt_page_source_open_local(path, NULL, &s), -ENOENT);
	cr_expect_null(s);
	cr_expect_eq(ckpt_page_source_open_local("", NULL, &s), -EINVAL);
	ckpt_page_source_close(NULL);
}

