/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

static int exists_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

Test(fs, write_file_sync_at_creates_once)
{
	char dir[] = "/tmp/ckpt-fs-XXXXXX";
	char buf[16] = { 0 };
	int dfd, fd;

	cr_assert(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
	cr_assert_eq(write_file_sync_at(dfd, "a", "hello", 5, 0600), 0);
	cr_assert_eq(write_file_sync_at(dfd, "a", "other", 5, 0600), -EEXIST);
	fd = openat(dfd, "a", O_RDONLY);
	cr_assert_eq(read(fd, buf, sizeof(buf)), 5);
	cr_expect_str_eq(buf, "hello");
	close(fd);
	cr_expect_eq(write_file_sync_at(dfd, "nodir/b", "x", 1, 0600), -ENOENT);
	cr_expect_eq(fsync_at(dfd, "a"), 0);
	cr_expect_eq(fsync_at(dfd, "."), 0);
	cr_expect_eq(fsync_at(dfd, "missing"), -ENOENT);
	cr_assert_eq(rm_rf_at(AT_FDCWD, dir), 0);
	close(dfd);
}

Test(fs, rm_rf_at_removes_a_tree_but_never_follows_links)
{
	char dir[] = "/tmp/ckpt-fs-XXXXXX", outside[] = "/tmp/ckpt-fs-out-XXXXXX";
	char path[512];
	int dfd;

	cr_assert(mkdtemp(dir));
	cr_assert(mkdtemp(outside));
	snprintf(path, sizeof(path), "%s/keep", outside);
	cr_assert_eq(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_eq(mkdirat(dfd, "t", 0700), 0);
	cr_assert_eq(mkdirat(dfd, "t/a", 0700), 0);
	cr_assert_eq(mkdirat(dfd, "t/a/b", 0700), 0);
	cr_assert_eq(write_file_sync_at(dfd, "t/a/b/f", "1", 1, 0600), 0);
	cr_assert_eq(write_file_sync_at(dfd, "t/g", "2", 1, 0600), 0);
	cr_assert_eq(symlinkat(outside, dfd, "t/a/link"), 0);
	cr_assert_eq(rm_rf_at(dfd, "t"), 0);
	cr_expect(!exists_at(dfd, "t"));
	cr_expect_eq(access(path, F_OK), 0, "followed a symbolic link");
	cr_expect_eq(rm_rf_at(dfd, "t"), -ENOENT);
	cr_assert_eq(write_file_sync_at(dfd, "file", "3", 1, 0600), 0);
	cr_expect_eq(rm_rf_at(dfd, "file"), 0);
	cr_expect(!exists_at(dfd, "file"));
	close(dfd);
	cr_assert_eq(rm_rf_at(AT_FDCWD, dir), 0);
	cr_assert_eq(rm_rf_at(AT_FDCWD, outside), 0);
}
