/* SPDX-License-Identifier: MIT */
/*
 * Damaged checkpoints: every kind of damage gets its own -errno and a
 * message that names the file and the fault; none returns wrong data.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <json-c/json.h>

#include "helpers.h"

#define BASE 0x7f0000000000ULL
#define NR 48

/* dir/ck: 48 random pages (frames of 16), process.json. */
static char *sample(char **ret_path, int level)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	json_object *doc = json_tokener_parse("{\"comm\": \"target\", \"threads\": 3}");
	uint32_t v[NR];
	char *dir = tmpdir_new();

	for (int i = 0; i < NR; i++)
		v[i] = 2;
	*ret_path = path_in(dir, "ck");
	o.level = level;
	o.frame_pages = 16;
	cr_assert_eq(ckpt_image_writer_new(*ret_path, &o, &w), 0, "%s", last_err);
	add_versions(w, BASE, NR, v);
	cr_assert_eq(ckpt_image_writer_put_json(w, "process.json", doc), 0);
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);
	json_object_put(doc);
	return dir;
}

static int open_err(const char *path)
{
	struct ckpt_image *img = NULL;
	int r = ckpt_image_open(path, NULL, &img);

	cr_expect((r == 0) == (img != NULL), "ret_ written on failure");
	ckpt_image_close(img);
	return r;
}

#define expect_msg(...)                                                                     \
	do {                                                                                \
		const char *_w[] = { __VA_ARGS__ };                                         \
		for (size_t _i = 0; _i < sizeof(_w) / sizeof(_w[0]); _i++)                  \
			cr_expect(strstr(last_err, _w[_i]), "'%s' not in: %s", _w[_i], last_err); \
	} while (0)

/* ---- pages.zst ---- */

Test(image_corrupt, truncated_pages, .init = capture_log)
{
	char *path, *dir = sample(&path, 1), *pz = path_in(path, "pages.zst");
	struct ckpt_image *img;
	unsigned char buf[PS];
	struct stat st;

	cr_assert_eq(stat(pz, &st), 0);
	cr_assert_eq(truncate(pz, st.st_size - 100), 0);
	cr_expect_eq(open_err(path), -EBADMSG);
	expect_msg("pages.zst", "truncated");

	/* Truncated after open: the read fails, it does not invent data. */
	cr_assert_eq(truncate(pz, st.st_size), 0); /* zeros at the end: wrong bytes */
	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0, "%s", last_err);
	cr_assert_eq(truncate(pz, st.st_size / 2), 0);
	cr_expect_eq(ckpt_image_read_page(img, BASE + (NR - 1) * PS, buf), -EBADMSG);
	expect_msg("pages.zst", "frame 2", "truncated");
	cr_expect_eq(ckpt_image_verify(img), -EBADMSG);
	ckpt_image_close(img);
	free(pz);
	free(path);
	tmpdir_free(dir);
}

static void flip_byte_test(int level, const char *cause)
{
	char *path, *dir = sample(&path, level);
	struct ckpt_image *img;
	struct ckpt_chain *c;
	struct ckpt_chain_iter *it;
	struct ckpt_chain_range rg;
	const struct ckpt_image_frame *f;
	unsigned char buf[PS], *z;
	size_t len;

	/* Flip one byte in the middle of frame 1 (pages 16..31). */
	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0);
	f = &ckpt_image_index(img)->frames[1];
	z = slurp(path, "pages.zst", &len);
	z[f->offset + f->csize / 2] ^= 0x20;
	spill(path, "pages.zst", z, len);
	free(z);

	memset(buf, 0xAA, sizeof(buf));
	cr_expect_eq(ckpt_image_read_page(img, BASE + 20 * PS, buf), -EBADMSG);
	expect_msg("pages.zst", "frame 1", cause);
	for (size_t i = 0; i < PS; i++)
		if (buf[i] != 0xAA)
			cr_assert_fail("the caller's buffer was written on failure");
	/* Frames are independent: the others still read. */
	cr_expect_eq(ckpt_image_read_page(img, BASE + 5 * PS, buf), CKPT_PAGE_DATA);
	expect_page(buf, BASE + 5 * PS, 2);
	cr_expect_eq(ckpt_image_read_page(img, BASE + 40 * PS, buf), CKPT_PAGE_DATA);
	cr_expect_eq(ckpt_image_verify(img), -EBADMSG);
	expect_msg("pages.zst", "checksum");
	ckpt_image_close(img);

	/* The iterator stops at the bad frame with the same error. */
	cr_assert_eq(ckpt_chain_open(path, NULL, &c), 0);
	cr_assert_eq(ckpt_chain_iter_new(c, &it), 0);
	cr_expect_eq(ckpt_chain_iter_next(it, &rg), 1);
	cr_expect_eq(rg.nr_pages, 16);
	cr_expect_eq(ckpt_chain_iter_next(it, &rg), -EBADMSG);
	ckpt_chain_iter_free(it);
	ckpt_chain_close(c);
	free(path);
	tmpdir_free(dir);
}

Test(image_corrupt, flipped_byte_in_a_stored_frame, .init = capture_log)
{
	/* Raw blocks: the frame parses, only zstd's content checksum can tell. */
	flip_byte_test(CKPT_IMAGE_LEVEL_NONE, "content checksum mismatch");
}

Test(image_corrupt, flipped_byte_in_a_compressed_frame, .init = capture_log)
{
	flip_byte_test(1, "frame 1");
}

Test(image_corrupt, missing_pages_files, .init = capture_log)
{
	char *path, *dir = sample(&path, 1), *f;

	f = path_in(path, "pages.zst");
	cr_assert_eq(unlink(f), 0);
	cr_expect_eq(open_err(path), -ENOENT);
	expect_msg("pages.zst", "missing");
	free(f);
	f = path_in(path, "pages.idx");
	cr_assert_eq(unlink(f), 0);
	cr_expect_eq(open_err(path), -ENOENT);
	expect_msg("pages.idx", "missing");
	free(f);
	free(path);
	tmpdir_free(dir);
}

/* ---- pages.idx ---- */

Test(image_corrupt, damaged_index_on_disk, .init = capture_log)
{
	char *path, *dir = sample(&path, 1);
	size_t len;
	unsigned char *idx = slurp(path, "pages.idx", &len);

	/* Truncated: the inventory's checksum catches it. */
	spill(path, "pages.idx", idx, len - 32);
	cr_expect_eq(open_err(path), -EBADMSG);
	expect_msg("pages.idx", "checksum");
	/* Truncated with a matching checksum: the parser catches it. */
	rewrite_member(path, "pages.idx", idx, len - 32);
	cr_expect_eq(open_err(path), -EBADMSG);
	expect_msg("pages.idx", "do not hold");
	/* An entry wrong where it lies (the reader checks the entries in the bytes it read), checksum matching. */
	idx[64 + 28] = 1;
	rewrite_member(path, "pages.idx", idx, len);
	cr_expect_eq(open_err(path), -EBADMSG);
	expect_msg("pages.idx", "entry 0: reserved bytes are set");
	idx[64 + 28] = 0;
	idx[64 + 23] = 0x7f; /* frame 0x7f000000 */
	rewrite_member(path, "pages.idx", idx, len);
	cr_expect_eq(open_err(path), -EBADMSG);
	expect_msg("pages.idx", "entry 0: pages", "do not exist");
	idx[64 + 23] = 0;
	rewrite_member(path, "pages.idx", idx, len);
	cr_expect_eq(open_err(path), 0, "restored: %s", last_err);
	/* Garbage. */
	memset(idx, 'G', len);
	rewrite_member(path, "pages.idx", idx, len);
	cr_expect_eq(open_err(path), -EBADMSG);
	expect_msg("pages.idx", "bad magic");
	/* Empty. */
	rewrite_member(path, "pages.idx", idx, 0);
	cr_expect_eq(open_err(path), -EBADMSG);
	expect_msg("pages.idx", "truncated");
	free(idx);
	free(path);
	tmpdir_free(dir);
}

/* A pages.idx built by hand: header, entries, frames. */
struct raw_idx {
	unsigned char b[64 + 8 * 32 + 4 * 32];
	size_t nr_entries, nr_frames;
	uint64_t pages_size, data_pages;
	uint32_t version, page_size;
};

static void put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void raw_init(struct raw_idx *x)
{
	memset(x, 0, sizeof(*x));
	x->version = 2;
	x->page_size = 4096;
}

static void raw_entry(struct raw_idx *x, uint64_t addr, uint64_t n, uint32_t kind, uint32_t frame,
		      uint32_t fpage)
{
	unsigned char *p = x->b + 64 + x->nr_entries++ * 32;

	put64(p, addr);
	put64(p + 8, n);
	put32(p + 16, kind);
	put32(p + 20, frame);
	put32(p + 24, fpage);
}

static size_t raw_finish(struct raw_idx *x, const uint64_t (*frames)[3], size_t nf)
{
	unsigned char *p = x->b + 64 + x->nr_entries * 32;

	x->nr_frames = nf;
	for (size_t i = 0; i < nf; i++, p += 32) {
		put64(p, frames[i][0]);
		put64(p + 8, frames[i][1]);
		put64(p + 16, frames[i][2] * 4096);
		put32(p + 24, (uint32_t)frames[i][2]);
	}
	memcpy(x->b, "CKPTIDX\0", 8);
	put32(x->b + 8, x->version);
	put32(x->b + 12, x->page_size);
	put64(x->b + 16, x->nr_entries);
	put64(x->b + 24, x->nr_frames);
	put64(x->b + 32, x->pages_size);
	put64(x->b + 40, x->data_pages);
	return 64 + x->nr_entries * 32 + nf * 32;
}

static int parse_raw(struct raw_idx *x, const uint64_t (*frames)[3], size_t nf, char *why)
{
	struct ckpt_image_index *idx = NULL;
	size_t len = raw_finish(x, frames, nf);
	int r = ckpt_image_parse_index(x->b, len, why, 256, &idx);

	ckpt_image_index_free(idx);
	return r;
}

Test(image_corrupt, index_parser)
{
	static const uint64_t two_frames[2][3] = { { 0, 100, 4 }, { 100, 50, 2 } };
	struct raw_idx x;
	char why[256];
	struct ckpt_image_index *idx;

	/* A valid one: 6 data pages in two frames, zero and hole ranges. */
	raw_init(&x);
	x.pages_size = 150;
	x.data_pages = 6;
	raw_entry(&x, 0x1000, 4, 1, 0, 0);
	raw_entry(&x, 0x5000, 10, 2, 0, 0);
	raw_entry(&x, 0x10000, 2, 1, 1, 0);
	raw_entry(&x, 0x20000, 3, 3, 0, 0);
	cr_assert_eq(ckpt_image_parse_index(x.b, raw_finish(&x, two_frames, 2), why, sizeof(why),
					    &idx), 0, "%s", why);
	cr_expect_eq(idx->nr_entries, 4);
	cr_expect_eq(idx->entries[3].kind, CKPT_PAGE_HOLE);
	cr_expect_eq(idx->frames[1].offset, 100);
	ckpt_image_index_free(idx);

#define BAD(setup, err, text)                                                               \
	do {                                                                                \
		raw_init(&x);                                                               \
		x.pages_size = 150;                                                         \
		x.data_pages = 6;                                                           \
		setup;                                                                      \
		why[0] = '\0';                                                              \
		cr_expect_eq(parse_raw(&x, two_frames, 2, why), err, "%s: got '%s'", #setup, why); \
		cr_expect(strstr(why, text), "%s: '%s' lacks '%s'", #setup, why, text);        \
	} while (0)
#define DATA6 raw_entry(&x, 0x1000, 4, 1, 0, 0), raw_entry(&x, 0x10000, 2, 1, 1, 0)

	BAD((x.version = 1, DATA6), -EPROTONOSUPPORT, "version 1");
	BAD((x.version = 4, DATA6), -EPROTONOSUPPORT, "version 4");
	/* INHERIT (kind 4, frame = the pid): version 3 only, one pid > 0, no frame page. */
	BAD((DATA6, raw_entry(&x, 0x30000, 1, 4, 77, 0)), -EBADMSG, "version 2");
	BAD((x.version = 3, DATA6, raw_entry(&x, 0x30000, 1, 4, 0, 0)), -EBADMSG, "no such process");
	BAD((x.version = 3, DATA6, raw_entry(&x, 0x30000, 1, 4, 0x80000000u, 0)), -EBADMSG,
	    "no such process");
	BAD((x.version = 3, DATA6, raw_entry(&x, 0x30000, 1, 4, 77, 1)), -EBADMSG, "no such process");
	BAD((x.version = 3, DATA6, raw_entry(&x, 0x30000, 1, 4, 77, 0), raw_entry(&x, 0x40000, 1, 4, 78, 0)),
	    -EBADMSG, "one parent only");
	BAD((x.page_size = 8192, DATA6), -EBADMSG, "page size");
	BAD((raw_entry(&x, 0x1001, 4, 1, 0, 0), raw_entry(&x, 0x10000, 2, 1, 1, 0)), -EBADMSG,
	    "page-aligned");
	BAD((DATA6, raw_entry(&x, 0x2000, 1, 2, 0, 0)), -EBADMSG, "out of order");
	BAD((raw_entry(&x, 0x1000, 4, 1, 0, 0), raw_entry(&x, 0x4000, 2, 1, 1, 0)), -EBADMSG,
	    "overlaps");
	BAD((DATA6, raw_entry(&x, 0x30000, 1, 7, 0, 0)), -EBADMSG, "unknown kind");
	BAD((x.version = 3, DATA6, raw_entry(&x, 0x30000, 1, 5, 0, 0)), -EBADMSG, "unknown kind");
	BAD((raw_entry(&x, 0x1000, 4, 1, 0, 0), raw_entry(&x, 0x10000, 2, 1, 2, 0)), -EBADMSG,
	    "do not exist");
	BAD((raw_entry(&x, 0x1000, 4, 1, 0, 1), raw_entry(&x, 0x10000, 2, 1, 1, 0)), -EBADMSG,
	    "do not exist");
	BAD((DATA6, raw_entry(&x, 0x30000, 0, 2, 0, 0)), -EBADMSG, "out of range");
	BAD((DATA6, raw_entry(&x, (1ULL << 57) - 4096, 2, 2, 0, 0)), -EBADMSG, "out of range");
	BAD((DATA6, raw_entry(&x, 0x30000, UINT64_MAX / 2, 2, 0, 0)), -EBADMSG, "out of range");
	BAD((DATA6, raw_entry(&x, 0x30000, 1, 3, 1, 0)), -EBADMSG, "with a frame");
	BAD((DATA6, x.data_pages = 7), -EBADMSG, "header says");
	BAD((DATA6, x.pages_size = 151), -EBADMSG, "header says");
	BAD((DATA6, x.b[60] = 1), -EBADMSG, "reserved");
	/* Since version 2, frames may hold pages that no entry lists (dead pages). */
	raw_init(&x);
	x.pages_size = 150;
	x.data_pages = 6;
	raw_entry(&x, 0x1000, 2, 1, 0, 1);
	cr_expect_eq(parse_raw(&x, two_frames, 2, why), 0, "%s", why);

	/* Frames: gaps, impossible sizes. */
	{
		static const uint64_t gap[2][3] = { { 0, 100, 4 }, { 101, 49, 2 } };
		static const uint64_t empty[2][3] = { { 0, 0, 4 }, { 0, 150, 2 } };
		static const uint64_t huge[2][3] = { { 0, 100, 4 }, { 100, 50, 20000 } };

		raw_init(&x);
		x.pages_size = 150;
		x.data_pages = 6;
		DATA6;
		cr_expect_eq(parse_raw(&x, gap, 2, why), -EBADMSG);
		cr_expect(strstr(why, "frame 1"), "%s", why);
		raw_init(&x);
		x.pages_size = 150;
		x.data_pages = 6;
		DATA6;
		cr_expect_eq(parse_raw(&x, empty, 2, why), -EBADMSG);
		cr_expect(strstr(why, "impossible"), "%s", why);
		raw_init(&x);
		x.pages_size = 150;
		x.data_pages = 20004;
		DATA6;
		cr_expect_eq(parse_raw(&x, huge, 2, why), -EBADMSG);
	}

	/* Short buffers and counts that do not fit. */
	raw_init(&x);
	raw_finish(&x, NULL, 0);
	cr_expect_eq(ckpt_image_parse_index(x.b, 64, why, sizeof(why), &idx), 0, "%s", why);
	ckpt_image_index_free(idx);
	cr_expect_eq(ckpt_image_parse_index(x.b, 63, why, sizeof(why), &idx), -EBADMSG);
	cr_expect_eq(ckpt_image_parse_index(x.b, 65, why, sizeof(why), &idx), -EBADMSG);
	put64(x.b + 16, UINT64_MAX / 16);
	cr_expect_eq(ckpt_image_parse_index(x.b, sizeof(x.b), why, sizeof(why), &idx), -EBADMSG);
	cr_expect_eq(ckpt_image_parse_index(x.b, sizeof(x.b), NULL, 0, &idx), -EBADMSG);
#undef BAD
#undef DATA6
}

/* ---- inventory.json ---- */

Test(image_corrupt, missing_inventory, .init = capture_log)
{
	char *path, *dir = sample(&path, 1), *inv = path_in(path, "inventory.json");

	cr_assert_eq(unlink(inv), 0);
	cr_expect_eq(open_err(path), -ENOENT);
	expect_msg(path, "not a checkpoint", "inventory.json");
	cr_expect_eq(open_err(inv), -ENOENT);
	expect_msg(inv, "No such file");
	spill(path, "inventory.json", "", 0);
	cr_expect_eq(open_err(path), -EBADMSG);
	free(inv);
	free(path);
	tmpdir_free(dir);
}

Test(image_corrupt, bad_json_inventory, .init = capture_log)
{
	char *path, *dir = sample(&path, 1);
	size_t len;
	char *text = slurp(path, "inventory.json", &len);

	spill(path, "inventory.json", text, len / 2);
	cr_expect_eq(open_err(path), -EBADMSG);
	expect_msg("inventory.json", "not valid JSON");
	spill(path, "inventory.json", "{\"format\": \"ckpt-image\",}", 25);
	cr_expect_eq(open_err(path), -EBADMSG);
	expect_msg("inventory.json", "not valid JSON");
	text = realloc(text, len + 8);
	strcpy(text + len - 1, " [] \n"); /* a second value after the object */
	spill(path, "inventory.json", text, len + 4);
	cr_expect_eq(open_err(path), -EBADMSG);
	expect_msg("inventory.json", "not valid JSON");
	free(text);
	free(path);
	tmpdir_free(dir);
}

static void apply_edit(json_object *root, void *arg)
{
	const char *const *e = arg; /* object path "a" or "a.b", JSON value or NULL: delete */
	char key[64];
	const char *dot = strchr(e[0], '.');
	json_object *o = root;

	if (dot) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - e[0]), e[0]);
		cr_assert(json_object_object_get_ex(root, key, &o));
	}
	if (e[1])
		json_object_object_add(o, dot ? dot + 1 : e[0], json_tokener_parse(e[1]));
	else
		json_object_object_del(o, dot ? dot + 1 : e[0]);
}

Test(image_corrupt, inventory_fields, .init = capture_log)
{
	static const struct {
		const char *field, *value; /* NULL value: remove the field */
		int err;
		const char *text;
	} cases[] = {
		{ "format_version", "3", -EPROTONOSUPPORT, "format version 3 is not supported" },
		{ "format_version", "1", -EPROTONOSUPPORT, "before checkpoints had ids" },
		{ "format_version", "0", -EPROTONOSUPPORT, "format version 0" },
		{ "format_version", "\"2\"", -EBADMSG, "'format_version' is a string, expected an integer" },
		{ "format_version", "1.0", -EBADMSG, "'format_version' is a non-integer number" },
		{ "format", "\"tar\"", -EBADMSG, "format is 'tar'" },
		{ "format", NULL, -EBADMSG, "missing field 'format'" },
		{ "process.pid", "\"42\"", -EBADMSG, "'process.pid' is a string" },
		{ "process.pid", "0", -EBADMSG, "'process.pid' is out of range" },
		{ "process.pid", "99999999999", -EBADMSG, "'process.pid' is out of range" },
		{ "process.start_time", "-1", -EBADMSG, "'process.start_time' is out of range" },
		{ "process.start_time", "18446744073709551615", -EBADMSG, "out of range" },
		{ "process.boot_id", "\"abc\"", -EBADMSG, "'process.boot_id' is not a UUID" },
		{ "process.exe", "null", -EBADMSG, "'process.exe' is null, expected a string" },
		{ "process.exe", "\"a\\u0000b\"", -EBADMSG, "NUL byte" },
		{ "process", "[]", -EBADMSG, "'process' is an array, expected an object" },
		{ "kind", "\"half\"", -EBADMSG, "neither full nor delta" },
		{ "parent", "\"../x\"", -EBADMSG, "a full checkpoint with a parent" },
		{ "parent_id", "\"0123456789abcdef0123456789abcdef\"", -EBADMSG, "a full checkpoint with a parent" },
		{ "id", NULL, -EBADMSG, "missing field 'id'" },
		{ "id", "\"0123456789abcdef\"", -EBADMSG, "'id' is not an id" },
		{ "id", "\"0123456789ABCDEF0123456789ABCDEF\"", -EBADMSG, "'id' is not an id" },
		{ "id", "\"00000000000000000000000000000000\"", -EBADMSG, "'id' is not an id" },
		{ "id", "7", -EBADMSG, "'id' is an integer, expected a string" },
		{ "created_unix_ns", "1.5", -EBADMSG, "'created_unix_ns' is a non-integer number" },
		{ "created_utc", "7", -EBADMSG, "'created_utc' is an integer, expected a string" },
		{ "files", "{}", -EBADMSG, "lacks pages.idx" },
		{ "files", "[]", -EBADMSG, "'files' is an array" },
		{ "files.pages.zst", "\"xxh64:XYZ\"", -EBADMSG, "checksum of 'pages.zst'" },
		{ "files.pages.zst", "\"xxh64:0123456789ABCDEF\"", -EBADMSG, "checksum of 'pages.zst'" },
		{ "files.pages.zst", "12", -EBADMSG, "checksum of 'pages.zst' is an integer" },
		{ "files.../etc/passwd", "\"xxh64:0123456789abcdef\"", -EBADMSG, "bad name" },
	};
	char *path, *dir = sample(&path, 1);
	size_t len;
	char *orig = slurp(path, "inventory.json", &len);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *e[2] = { cases[i].field, cases[i].value };

		/* "files.X" edits key X of files, which may hold dots. */
		if (!strncmp(cases[i].field, "files.", 6)) {
			const char *nv[2] = { cases[i].field + 6, cases[i].value };
			json_object *root = json_tokener_parse(orig), *files;
			const char *out;

			cr_assert(json_object_object_get_ex(root, "files", &files));
			json_object_object_add(files, nv[0], json_tokener_parse(nv[1]));
			out = json_object_to_json_string(root);
			spill(path, "inventory.json", out, strlen(out));
			json_object_put(root);
		} else {
			spill(path, "inventory.json", orig, len);
			edit_inventory(path, apply_edit, (void *)e);
		}
		last_err[0] = '\0';
		cr_expect_eq(open_err(path), cases[i].err, "%s = %s", cases[i].field,
			     cases[i].value ? cases[i].value : "(removed)");
		cr_expect(strstr(last_err, cases[i].text) && strstr(last_err, "inventory.json"),
			  "%s = %s: '%s' lacks '%s'", cases[i].field,
			  cases[i].value ? cases[i].value : "(removed)", last_err, cases[i].text);
	}
	spill(path, "inventory.json", orig, len);
	cr_expect_eq(open_err(path), 0, "%s", last_err);
	free(orig);
	free(path);
	tmpdir_free(dir);
}

Test(image_corrupt, inventory_parser_direct)
{
	struct ckpt_image_inventory inv;
	char why[256];

	cr_expect_eq(ckpt_image_parse_inventory("", 0, why, sizeof(why), &inv), -EBADMSG);
	cr_expect_eq(ckpt_image_parse_inventory("42", 2, why, sizeof(why), &inv), -EBADMSG);
	cr_expect(strstr(why, "not a JSON object"), "%s", why);
	cr_expect_eq(ckpt_image_parse_inventory("{}", 2, why, sizeof(why), &inv), -EBADMSG);
	cr_expect(strstr(why, "missing field 'format'"), "%s", why);
	cr_expect_eq(ckpt_image_parse_inventory("{\"a\":1}\0{", 9, why, sizeof(why), &inv),
		     -EBADMSG);
	cr_expect_eq(ckpt_image_parse_inventory("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
						"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
						81, NULL, 0, &inv),
		     -EBADMSG);
}

/* ---- other metadata files ---- */

Test(image_corrupt, metadata_files, .init = capture_log)
{
	char *path, *dir = sample(&path, 1), *pj = path_in(path, "process.json");
	struct ckpt_image *img;
	json_object *doc = NULL;

	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0);
	/* Changed behind the inventory's back. */
	spill(path, "process.json", "{\"comm\": \"evil\", \"threads\": 3}", 31);
	cr_expect_eq(ckpt_image_get_json(img, "process.json", &doc), -EBADMSG);
	cr_expect_null(doc);
	expect_msg("process.json", "checksum");
	cr_expect_eq(ckpt_image_verify(img), -EBADMSG);
	expect_msg("process.json", "checksum");
	ckpt_image_close(img);
	/* Bad JSON with a matching checksum. */
	rewrite_member(path, "process.json", "{\"comm\": ", 9);
	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0, "%s", last_err);
	cr_expect_eq(ckpt_image_get_json(img, "process.json", &doc), -EBADMSG);
	expect_msg("process.json", "not valid JSON");
	ckpt_image_close(img);
	/* Listed, but gone. */
	cr_assert_eq(unlink(pj), 0);
	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0, "%s", last_err);
	cr_expect_eq(ckpt_image_get_json(img, "process.json", &doc), -ENOENT);
	expect_msg("process.json", "missing");
	cr_expect_eq(ckpt_image_verify(img), -ENOENT);
	ckpt_image_close(img);
	/* A bare value is a valid document too. */
	rewrite_member(path, "process.json", "42\n", 3);
	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0, "%s", last_err);
	cr_expect_eq(ckpt_image_get_json(img, "process.json", &doc), 0, "%s", last_err);
	cr_expect_eq(json_object_get_int(doc), 42);
	json_object_put(doc);
	ckpt_image_close(img);
	free(pj);
	free(path);
	tmpdir_free(dir);
}

Test(image_corrupt, not_a_directory, .init = capture_log)
{
	char *path, *dir = sample(&path, 1), *f = path_in(path, "pages.idx");

	cr_expect_eq(open_err(f), -ENOTDIR);
	expect_msg(f);
	free(f);
	free(path);
	tmpdir_free(dir);
}

/* ---- blobs ---- */

/* dir/ck with the blob "blob-fd-3" of @len bytes of a pattern. */
static char *sample_blob(char **ret_path, size_t len)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	unsigned char *b = malloc(len + 1);
	char *dir = tmpdir_new();

	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(i * 7 + 1);
	*ret_path = path_in(dir, "ck");
	cr_assert_eq(ckpt_image_writer_new(*ret_path, &o, &w), 0, "%s", last_err);
	cr_assert_eq(ckpt_image_writer_put_blob(w, "blob-fd-3", b, len), 0, "%s", last_err);
	cr_expect_eq(ckpt_image_writer_put_blob(w, "blob-fd-3", b, len), -EEXIST);
	cr_expect_eq(ckpt_image_writer_put_blob(w, "../escape", b, len), -EINVAL);
	cr_expect_eq(ckpt_image_writer_put_blob(w, "pages.zst", b, len), -EINVAL);
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);
	free(b);
	return dir;
}

Test(image_corrupt, blob_round_trip_and_size_check, .init = capture_log)
{
	char *path, *dir = sample_blob(&path, 10000);
	struct ckpt_image *img;
	void *buf = NULL;

	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0, "%s", last_err);
	cr_assert_eq(ckpt_image_read_blob(img, "blob-fd-3", 10000, &buf), 0, "%s", last_err);
	for (size_t i = 0; i < 10000; i++)
		if (((unsigned char *)buf)[i] != (unsigned char)(i * 7 + 1))
			cr_assert_fail("byte %zu differs", i);
	free(buf);
	buf = NULL;
	/* Another size than the state says: refused before anything is read. */
	cr_expect_eq(ckpt_image_read_blob(img, "blob-fd-3", 9999, &buf), -EBADMSG);
	expect_msg("blob-fd-3", "10000 bytes, the checkpoint says 9999");
	cr_expect_eq(ckpt_image_read_blob(img, "blob-fd-3", UINT64_MAX, &buf), -EBADMSG);
	/* Not listed: nothing outside the inventory is read. */
	cr_expect_eq(ckpt_image_read_blob(img, "blob-fd-4", 10, &buf), -ENOENT);
	cr_expect_eq(ckpt_image_read_blob(img, "../ck/pages.idx", 10, &buf), -ENOENT);
	cr_expect_null(buf);
	cr_expect_eq(ckpt_image_verify(img), 0, "%s", last_err);
	ckpt_image_close(img);
	free(path);
	tmpdir_free(dir);
}

Test(image_corrupt, blob_damaged, .init = capture_log)
{
	char *path, *dir = sample_blob(&path, 5000), *bp = path_in(path, "blob-fd-3");
	struct ckpt_image *img;
	void *buf = NULL;
	int fd;

	fd = open(bp, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "\xff", 1, 2500), 1);
	close(fd);
	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0, "%s", last_err);
	cr_expect_eq(ckpt_image_read_blob(img, "blob-fd-3", 5000, &buf), -EBADMSG);
	expect_msg("blob-fd-3", "corrupt", "checksum");
	cr_expect_eq(ckpt_image_verify(img), -EBADMSG);
	cr_assert_eq(truncate(bp, 4000), 0);
	cr_expect_eq(ckpt_image_read_blob(img, "blob-fd-3", 5000, &buf), -EBADMSG);
	expect_msg("blob-fd-3", "corrupt", "4000 bytes, the checkpoint says 5000");
	cr_expect_null(buf);
	ckpt_image_close(img);
	free(bp);
	free(path);
	tmpdir_free(dir);
}
