/* SPDX-License-Identifier: MIT */
/* stat through /proc/self/{fd,exe,map_files}: the identity of the open object. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "fixture.h"

Test(proc_files, stat_fd_of_a_deleted_file_and_a_pipe)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	char path[] = "/tmp/ckpt-unit-XXXXXX";
	struct stat want, got;
	int fd = mkstemp(path), pfd[2];

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "hello", 5), 5);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(fstat(fd, &want), 0);
	cr_assert_eq(ckpt_proc_open(NULL, getpid(), &p), 0);
	cr_assert_eq(ckpt_proc_stat_fd(p, fd, &got), 0);
	cr_expect_eq(got.st_ino, want.st_ino);
	cr_expect_eq(got.st_dev, want.st_dev);
	cr_expect_eq(got.st_size, 5);
	cr_assert_eq(pipe(pfd), 0);
	cr_assert_eq(fstat(pfd[0], &want), 0);
	cr_assert_eq(ckpt_proc_stat_fd(p, pfd[1], &got), 0);
	cr_expect(S_ISFIFO(got.st_mode));
	cr_expect_eq(got.st_ino, want.st_ino, "both ends are one pipe inode");
	close(pfd[0]);
	close(pfd[1]);
	close(fd);
	cr_expect_eq(ckpt_proc_stat_fd(p, fd, &got), -EBADF);
	cr_expect_eq(ckpt_proc_stat_fd(p, -1, &got), -EBADF);
}

Test(proc_files, stat_exe_and_map_file)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	char path[] = "/tmp/ckpt-unit-XXXXXX";
	struct stat want, got;
	int fd = mkstemp(path);
	char *m;
	uint64_t a;

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 3 * 4096), 0);
	m = mmap(NULL, 2 * 4096, PROT_READ, MAP_SHARED, fd, 4096);
	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(fstat(fd, &want), 0);
	close(fd);
	unlink(path);
	a = (uint64_t)(uintptr_t)m;
	cr_assert_eq(ckpt_proc_open(NULL, getpid(), &p), 0);
	cr_assert_eq(ckpt_proc_stat_map_file(p, a, a + 2 * 4096, &got), 0, "needs CAP_CHECKPOINT_RESTORE");
	cr_expect_eq(got.st_ino, want.st_ino);
	cr_expect_eq(got.st_size, 3 * 4096);
	/* bounds must be exact */
	cr_expect_eq(ckpt_proc_stat_map_file(p, a, a + 4096, &got), -ENOENT);
	munmap(m, 2 * 4096);
	cr_expect_eq(ckpt_proc_stat_map_file(p, a, a + 2 * 4096, &got), -ENOENT);

	cr_assert_eq(stat("/proc/self/exe", &want), 0);
	cr_assert_eq(ckpt_proc_stat_exe(p, &got), 0);
	cr_expect_eq(got.st_ino, want.st_ino);
}

Test(proc_files, fixture_fd_links_resolve_like_files)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	char root[512];
	struct stat got, want;
	pid_t pid = fixture_pid("zoo", root, sizeof(root));

	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_stat_fd(p, 0, &got), 0); /* a symlink to /dev/null */
	cr_assert_eq(stat("/dev/null", &want), 0);
	cr_expect_eq(got.st_rdev, want.st_rdev);
	cr_expect_eq(ckpt_proc_stat_fd(p, 251, &got), -EBADF); /* "pipe:[6015]" dangles */
	cr_expect_eq(ckpt_proc_stat_fd(p, 77, &got), -EBADF);
}
