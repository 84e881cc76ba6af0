/* SPDX-License-Identifier: MIT */
/*
 * The directory lifecycle: nothing at the final name before commit, no
 * clobbering, temporary directories never read as checkpoints, ENOSPC
 * (on a 1 MiB tmpfs) reported with the file and cleaned up.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <time.h>

#include "helpers.h"

static const uint32_t v12[2] = { 1, 2 };

static void commit_one(const char *path, uint32_t version, unsigned int flags)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;

	o.flags = flags;
	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0, "%s", last_err);
	add_versions(w, 0x1000, 1, &version);
	cr_assert_eq(ckpt_image_writer_commit(w), 0, "%s", last_err);
	ckpt_image_writer_free(w);
}

static uint32_t version_at_0x1000(const char *path)
{
	struct ckpt_image *img;
	unsigned char buf[PS], want[PS];
	uint32_t v;

	cr_assert_eq(ckpt_image_open(path, NULL, &img), 0, "%s", last_err);
	cr_assert_eq(ckpt_image_read_page(img, 0x1000, buf), CKPT_PAGE_DATA);
	ckpt_image_close(img);
	for (v = 1; v < 10; v++) {
		fill_page(want, 0x1000, v);
		if (!memcmp(buf, want, PS))
			return v;
	}
	return 0;
}

Test(image_atomic, abort_leaves_nothing, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	json_object *doc = json_object_new_object();
	char *dir = tmpdir_new(), *path = path_in(dir, "ck");

	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0);
	cr_expect(!path_exists(path));
	cr_expect_eq(count_entries(dir), 1, "the temporary directory");
	add_versions(w, 0x1000, 2, v12);
	cr_expect(!path_exists(path));
	cr_assert_eq(ckpt_image_writer_put_json(w, "process.json", doc), 0);
	cr_expect(!path_exists(path));
	ckpt_image_writer_free(w);
	cr_expect(!path_exists(path));
	cr_expect_eq(count_entries(dir), 0, "abort left something behind");
	cr_expect_eq(nr_errs, 0, "%s", last_err);
	json_object_put(doc);
	free(path);
	tmpdir_free(dir);
}

Test(image_atomic, no_clobbering, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w1, *w2;
	char *dir = tmpdir_new(), *path = path_in(dir, "ck");

	/* Taken at creation. */
	commit_one(path, 1, 0);
	cr_expect_eq(ckpt_image_writer_new(path, &o, &w1), -EEXIST);
	cr_expect(strstr(last_err, path) && strstr(last_err, "File exists"), "%s", last_err);
	cr_assert_eq(rm_rf_at(AT_FDCWD, path), 0);

	/* Taken between creation and commit: the second commit fails. */
	cr_assert_eq(ckpt_image_writer_new(path, &o, &w1), 0);
	cr_assert_eq(ckpt_image_writer_new(path, &o, &w2), 0);
	add_versions(w1, 0x1000, 1, &v12[0]);
	add_versions(w2, 0x1000, 1, &v12[1]);
	cr_expect_eq(ckpt_image_writer_commit(w1), 0);
	cr_expect_eq(ckpt_image_writer_commit(w2), -EEXIST);
	cr_expect(strstr(last_err, path) && strstr(last_err, "File exists"), "%s", last_err);
	ckpt_image_writer_free(w1);
	ckpt_image_writer_free(w2);
	cr_expect_eq(count_entries(dir), 1, "the failed writer left its temporary directory");
	cr_expect_eq(version_at_0x1000(path), 1, "the checkpoint was clobbered");
	free(path);
	tmpdir_free(dir);
}

Test(image_atomic, replace_only_a_checkpoint, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	char *dir = tmpdir_new(), *path = path_in(dir, "ck"), *other = path_in(dir, "other");
	char *keep;

	commit_one(path, 1, 0);
	commit_one(path, 2, CKPT_IMAGE_REPLACE);
	cr_expect_eq(version_at_0x1000(path), 2);
	cr_expect_eq(count_entries(dir), 1, "the old checkpoint was not removed");
	/* Replace with nothing there: a plain commit. */
	commit_one(other, 3, CKPT_IMAGE_REPLACE);
	cr_expect_eq(version_at_0x1000(other), 3);

	/* Never over something that is not a checkpoint. */
	cr_assert_eq(rm_rf_at(AT_FDCWD, other), 0);
	cr_assert_eq(mkdir(other, 0700), 0);
	keep = path_in(other, "keep");
	spill(other, "keep", "x", 1);
	o.flags = CKPT_IMAGE_REPLACE;
	cr_expect_eq(ckpt_image_writer_new(other, &o, &w), -EEXIST);
	cr_expect(strstr(last_err, "not a checkpoint"), "%s", last_err);
	/* ... nor if it appears between creation and commit. */
	cr_assert_eq(rm_rf_at(AT_FDCWD, other), 0);
	cr_assert_eq(ckpt_image_writer_new(other, &o, &w), 0);
	cr_assert_eq(mkdir(other, 0700), 0);
	spill(other, "keep", "x", 1);
	cr_expect_eq(ckpt_image_writer_commit(w), -EEXIST);
	ckpt_image_writer_free(w);
	cr_expect(path_exists(keep));
	cr_expect_eq(count_entries(dir), 2);
	free(keep);
	free(other);
	free(path);
	tmpdir_free(dir);
}

static void first_entry(const char *dir, char *buf, size_t len)
{
	char cmd[600];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | head -n1", dir);
	f = popen(cmd, "r");
	cr_assert(f && fgets(buf, (int)len, f));
	buf[strcspn(buf, "\n")] = '\0';
	pclose(f);
}

Test(image_atomic, temporary_directories_are_not_checkpoints, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	struct ckpt_image *img;
	char *dir = tmpdir_new(), *path = path_in(dir, "ck"), name[256], *tmp, *copy;
	char cmd[1024];

	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0);
	first_entry(dir, name, sizeof(name));
	cr_expect(ckpt_image_is_temp_name(name), "temporary directory '%s'", name);
	cr_expect_eq(strncmp(name, ".ck.tmp-", 8), 0, "'%s'", name);
	tmp = path_in(dir, name);
	cr_expect_eq(ckpt_image_open(tmp, NULL, &img), -ENOENT);
	cr_expect(strstr(last_err, "unfinished"), "%s", last_err);
	add_versions(w, 0x1000, 1, v12);
	cr_assert_eq(ckpt_image_writer_commit(w), 0);
	ckpt_image_writer_free(w);
	cr_expect(!path_exists(tmp));

	/* A complete checkpoint under a temporary name is still not one. */
	copy = path_in(dir, ".ck.tmp-Zz9999");
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", path, copy);
	cr_assert_eq(system(cmd), 0);
	cr_expect_eq(ckpt_image_open(copy, NULL, &img), -ENOENT);
	cr_expect_eq(ckpt_image_open(path, NULL, &img), 0);
	ckpt_image_close(img);
	free(copy);
	free(tmp);
	free(path);
	tmpdir_free(dir);
}

/* ---- ENOSPC on a small tmpfs ---- */

static char *mount_small_tmpfs(const char *size)
{
	char *dir = tmpdir_new(), opts[32];

	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (mount("tmpfs", dir, "tmpfs", 0, opts) < 0) {
		int e = errno;

		tmpdir_free(dir);
		cr_skip_test("cannot mount a tmpfs to fill (%s): needs root", strerror(e));
	}
	return dir;
}

static void unmount_small_tmpfs(char *dir)
{
	cr_expect_eq(umount(dir), 0, "umount '%s': %m", dir);
	tmpdir_free(dir);
}

Test(image_atomic, enospc_in_pages, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	char *dir = mount_small_tmpfs("1m"), *path = path_in(dir, "ck"), want[600];
	int r = 0;

	/* Random pages (version 2), stored: 4 MiB do not fit. */
	o.level = CKPT_IMAGE_LEVEL_NONE;
	o.frame_pages = 16;
	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0, "%s", last_err);
	for (uint64_t a = 0x100000; a < 0x100000 + 4 * 256 * PS && r == 0; a += 64 * PS) {
		unsigned char *buf = malloc(64 * PS);

		for (int i = 0; i < 64; i++)
			fill_page(buf + i * PS, a + i * PS, 2);
		r = ckpt_image_writer_add_data(w, a, 64, buf);
		free(buf);
	}
	if (r == 0)
		r = ckpt_image_writer_commit(w);
	cr_expect_eq(r, -ENOSPC);
	snprintf(want, sizeof(want), "cannot write '%s/pages.zst': No space left on device", path);
	cr_expect(strstr(last_err, want), "message: %s", last_err);
	cr_expect_eq(nr_errs, 1, "logged %d times", nr_errs);
	/* Failed: the temporary directory is gone already, and stays gone. */
	cr_expect_eq(count_entries(dir), 0);
	cr_expect_eq(ckpt_image_writer_commit(w), -ENOSPC);
	ckpt_image_writer_free(w);
	cr_expect_eq(count_entries(dir), 0);
	free(path);
	unmount_small_tmpfs(dir);
}

Test(image_atomic, enospc_in_metadata, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	char *dir = mount_small_tmpfs("1m"), *path = path_in(dir, "ck");
	size_t len = 2 << 20;
	char *big = malloc(len);

	memset(big, 'x', len);
	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0, "%s", last_err);
	add_versions(w, 0x1000, 2, v12);
	cr_expect_eq(ckpt_image_writer_put_file(w, "mm.json", big, len), -ENOSPC);
	cr_expect(strstr(last_err, "mm.json") && strstr(last_err, "No space left on device"), "%s",
		  last_err);
	cr_expect_eq(count_entries(dir), 0);
	ckpt_image_writer_free(w);
	free(big);
	free(path);
	unmount_small_tmpfs(dir);
}

Test(image_atomic, enospc_in_the_index, .init = capture_log)
{
	struct ckpt_image_writer_opts o = opts_default();
	struct ckpt_image_writer *w;
	char *dir = mount_small_tmpfs("1m"), *path = path_in(dir, "ck");

	/* 40000 entries that do not merge: a 1.25 MiB pages.idx. */
	cr_assert_eq(ckpt_image_writer_new(path, &o, &w), 0, "%s", last_err);
	for (uint64_t i = 0; i < 20000; i++) {
		cr_assert_eq(ckpt_image_writer_add_zero(w, 0x10000000 + 2 * i * PS, 1), 0);
		cr_assert_eq(ckpt_image_writer_add_hole(w, 0x10000000 + (2 * i + 1) * PS, 1), 0);
	}
	cr_expect_eq(ckpt_image_writer_commit(w), -ENOSPC);
	cr_expect(strstr(last_err, "pages.idx") && strstr(last_err, "No space left on device"),
		  "%s", last_err);
	ckpt_image_writer_free(w);
	cr_expect_eq(count_entries(dir), 0);
	free(path);
	unmount_small_tmpfs(dir);
}

/* A temporary directory at @name in @dir, with a file in it, @age seconds old. */
static int make_temp(const char *dir, const char *name, time_t age)
{
	char *p = path_in(dir, name), *f;
	struct timespec ts[2];
	int fd;

	cr_assert_eq(mkdir(p, 0700), 0);
	f = path_in(p, "pages.zst");
	fd = open(f, O_WRONLY | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
	fd = open(p, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	free(f);
	free(p);
	return fd;
}

/*
 * What a writer killed before it finished left goes when the next
 * checkpoint is made next to it; a writer at work (its directory locked),
 * and a directory just made (not locked yet), stay.
 */
Test(image_atomic, leftovers_of_dead_writers_are_removed, .init = capture_log)
{
	char *dir = tmpdir_new(), *path = path_in(dir, "ck"), *p;
	int dead = make_temp(dir, ".old.tmp-AAAAAA", 3600);
	int busy = make_temp(dir, ".busy.tmp-BBBBBB", 3600);
	int fresh = make_temp(dir, ".new.tmp-CCCCCC", 0);

	cr_assert_eq(flock(busy, LOCK_EX | LOCK_NB), 0);
	close(dead);
	commit_one(path, 1, 0);
	p = path_in(dir, ".old.tmp-AAAAAA");
	cr_expect(!path_exists(p), "a dead writer's directory stayed");
	free(p);
	p = path_in(dir, ".busy.tmp-BBBBBB");
	cr_expect(path_exists(p), "a locked (live) writer's directory was removed");
	free(p);
	p = path_in(dir, ".new.tmp-CCCCCC");
	cr_expect(path_exists(p), "a directory just made was removed");
	free(p);
	cr_expect_eq(version_at_0x1000(path), 1);
	close(busy);
	close(fresh);
	free(path);
	tmpdir_free(dir);
}
