/* SPDX-License-Identifier: MIT */
/* Shared by the lib/image tests: temporary directories, page contents, log capture. */
#ifndef CKPT_TEST_IMAGE_HELPERS_H
#define CKPT_TEST_IMAGE_HELPERS_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/image.h>
#include <ckpt/log.h>

#include "util/fs.h"
#include "util/xxhash.h"

#define PS 4096u
#define BOOT_ID "0b7c3c1e-5a55-4c1a-9e1e-2f3a4b5c6d7e"

/* ---- captured log: the last error, and how many there were ---- */

static char last_err[4096];
static int nr_errs;

static inline void capture_sink(enum ckpt_log_level level, const char *area, const char *msg,
				void *ud)
{
	(void)ud;
	if (level != CKPT_LOG_ERROR)
		return;
	nr_errs++;
	snprintf(last_err, sizeof(last_err), "%s: %s", area, msg);
}

static inline void capture_log(void)
{
	last_err[0] = '\0';
	nr_errs = 0;
	ckpt_log_set_sink(capture_sink, NULL);
}

/* ---- directories ---- */

static inline char *tmpdir_new(void)
{
	char *d = strdup("/tmp/ckpt-image-test-XXXXXX");

	cr_assert(d && mkdtemp(d), "mkdtemp: %m");
	return d;
}

static inline void tmpdir_free(char *d)
{
	if (!d)
		return;
	cr_expect_eq(rm_rf_at(AT_FDCWD, d), 0, "cannot remove '%s'", d);
	free(d);
}

static inline char *path_in(const char *dir, const char *name)
{
	char *p;

	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* Entries of @dir other than "." and "..". */
static inline int count_entries(const char *dir)
{
	char cmd[600];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	f = popen(cmd, "r");
	cr_assert(f);
	cr_assert_eq(fscanf(f, "%d", &n), 1);
	pclose(f);
	return n;
}

static inline bool path_exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

/* ---- page contents: deterministic per (address, version) ---- */

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Version 0 is a zero page; odd versions are text-like, even ones random. */
static inline void fill_page(void *buf, uint64_t addr, uint32_t version)
{
	uint64_t *w = buf;
	uint64_t s = mix64(addr ^ ((uint64_t)version << 48) ^ 0x9e3779b97f4a7c15ULL);

	if (version == 0) {
		memset(buf, 0, PS);
		return;
	}
	if (version & 1) {
		static const char words[] = "the quick brown fox jumps over a lazy dog ";
		char *c = buf;

		for (unsigned int i = 0; i < PS; i++)
			c[i] = words[(s + i * (s % 7 + 1)) % (sizeof(words) - 1)];
		snprintf(c, 40, "page %#llx v%u ", (unsigned long long)addr, version);
		return;
	}
	for (unsigned int i = 0; i < PS / 8; i++) {
		s = mix64(s + i);
		w[i] = s;
	}
}

static inline void expect_page(const void *got, uint64_t addr, uint32_t version)
{
	static unsigned char want[PS];

	fill_page(want, addr, version);
	cr_expect(memcmp(got, want, PS) == 0, "page 0x%llx: content differs from version %u",
		  (unsigned long long)addr, version);
}

/* ---- writer ---- */

static inline struct ckpt_image_writer_opts opts_default(void)
{
	struct ckpt_image_writer_opts o = {
		.identity = { .pid = 4242, .start_time = 123456, .boot_id = BOOT_ID,
			      .exe = "/usr/bin/target" },
	};
	return o;
}

/* Add @n pages of versions @ver[i] (0: zero page) at @addr in one add_data call. */
static inline void add_versions(struct ckpt_image_writer *w, uint64_t addr, size_t n,
				const uint32_t *ver)
{
	unsigned char *buf = malloc(n * PS);

	cr_assert(buf);
	for (size_t i = 0; i < n; i++)
		fill_page(buf + i * PS, addr + i * PS, ver[i]);
	cr_assert_eq(ckpt_image_writer_add_data(w, addr, n, buf), 0, "%s", last_err);
	free(buf);
}

/* ---- editing files of a committed checkpoint ---- */

static inline void *slurp(const char *dir, const char *name, size_t *len)
{
	char *p = path_in(dir, name);
	int fd = open(p, O_RDONLY);
	struct stat st;
	void *buf;

	cr_assert_geq(fd, 0, "open '%s': %m", p);
	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	cr_assert(buf);
	cr_assert_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	((char *)buf)[st.st_size] = '\0';
	close(fd);
	free(p);
	*len = (size_t)st.st_size;
	return buf;
}

static inline void spill(const char *dir, const char *name, const void *buf, size_t len)
{
	char *p = path_in(dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0, "open '%s': %m", p);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
	free(p);
}

/* Edit inventory.json of @dir through @edit, keeping it parseable JSON. */
static inline void edit_inventory(const char *dir, void (*edit)(json_object *root, void *arg),
				  void *arg)
{
	size_t len;
	char *text = slurp(dir, "inventory.json", &len);
	json_object *root = json_tokener_parse(text);
	const char *out;

	cr_assert(root);
	edit(root, arg);
	out = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
	spill(dir, "inventory.json", out, strlen(out));
	json_object_put(root);
	free(text);
}

static inline void set_sum_edit(json_object *root, void *arg)
{
	const char **nv = arg; /* name, new checksum string */
	json_object *files;

	cr_assert(json_object_object_get_ex(root, "files", &files));
	json_object_object_add(files, nv[0], json_object_new_string(nv[1]));
}

/* Replace file @name of @dir and fix its checksum in inventory.json. */
static inline void rewrite_member(const char *dir, const char *name, const void *buf, size_t len)
{
	char sum[32];
	const char *nv[2] = { name, sum };

	spill(dir, name, buf, len);
	snprintf(sum, sizeof(sum), "xxh64:%016llx", (unsigned long long)xxh64(buf, len, 0));
	edit_inventory(dir, set_sum_edit, nv);
}

/*
 * ckpt_chain_list_in() over windows that cut every range of the whole
 * list, start and end inside them and between them, and span several:
 * always exactly the whole list cut to the window (addresses, counts,
 * kinds; neighbours of one kind merged in both).
 */
static inline void expect_windows_match(struct ckpt_chain *c)
{
	struct ckpt_chain_range *all = NULL;
	size_t nall = 0, nb = 0;
	uint64_t *b;

	cr_assert_eq(ckpt_chain_list(c, &all, &nall), 0, "%s", last_err);
	b = malloc((4 * nall + 4) * sizeof(*b));
	cr_assert_not_null(b);
	b[nb++] = 0;
	b[nb++] = 1ULL << 57;
	for (size_t i = 0; i < nall; i++) {
		uint64_t end = all[i].addr + all[i].nr_pages * PS;

		b[nb++] = all[i].addr;
		b[nb++] = all[i].addr + PS;
		b[nb++] = end;
		if (all[i].addr >= PS)
			b[nb++] = all[i].addr - PS;
	}
	for (size_t x = 0; x < nb; x++)
		for (size_t y = 0; y < nb; y += 1 + nb / 64) {
			uint64_t lo = b[x], hi = b[y];
			struct ckpt_chain_range *got = NULL;
			size_t ng = 0, k = 0;

			if (lo >= hi)
				continue;
			cr_assert_eq(ckpt_chain_list_in(c, lo, hi, &got, &ng), 0, "%s", last_err);
			for (size_t i = 0; i < nall; i++) {
				uint64_t s = all[i].addr > lo ? all[i].addr : lo;
				uint64_t e = all[i].addr + all[i].nr_pages * PS;

				e = e < hi ? e : hi;
				if (s >= e)
					continue;
				cr_assert_lt(k, ng, "window 0x%llx-0x%llx: range at 0x%llx missing",
					     (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)s);
				cr_expect(got[k].addr == s && got[k].nr_pages == (e - s) / PS && got[k].kind == all[i].kind,
					  "window 0x%llx-0x%llx: range %zu is 0x%llx+%llu kind %d, expected 0x%llx+%llu kind %d",
					  (unsigned long long)lo, (unsigned long long)hi, k, (unsigned long long)got[k].addr,
					  (unsigned long long)got[k].nr_pages, got[k].kind, (unsigned long long)s,
					  (unsigned long long)((e - s) / PS), all[i].kind);
				k++;
			}
			cr_expect_eq(k, ng, "window 0x%llx-0x%llx: %zu ranges, expected %zu", (unsigned long long)lo,
				     (unsigned long long)hi, ng, k);
			free(got);
		}
	free(b);
	free(all);
}

#endif
