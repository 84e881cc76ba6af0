/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <ckpt/proc.h>

#include "fixture.h"

Test(proc_tasks, zoo_threads_sorted)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL, *t = NULL;
	_cleanup_free_ pid_t *tids = NULL;
	struct ckpt_proc_stat st;
	char root[512];
	size_t n;
	pid_t pid = fixture_pid("zoo", root, sizeof(root));

	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_list_tasks(p, &tids, &n), 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(tids[0], pid);
	cr_expect_gt(tids[1], tids[0]);
	cr_assert_eq(ckpt_proc_open_task(p, tids[1], &t), 0);
	cr_assert_eq(ckpt_proc_read_stat(t, &st), 0);
	cr_expect_eq(st.pid, tids[1]);
	cr_expect_eq(ckpt_proc_open_task(p, 99999999, &t), -ESRCH);
}

Test(proc_fds, zoo)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_fd_list_ struct ckpt_fd_list *l = NULL;
	char root[512];
	pid_t pid = fixture_pid("zoo", root, sizeof(root));

	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_read_fds(p, &l), 0);
	cr_assert_eq(l->nr, 12);
	for (size_t i = 1; i < l->nr; i++)
		cr_expect_gt(l->v[i].fd, l->v[i - 1].fd);
	cr_expect_eq(l->v[0].fd, 0);
	cr_expect_str_eq(l->v[0].target, "/dev/null");
	/* fd 4: the positioned O_APPEND file */
	cr_expect_eq(l->v[4].fd, 4);
	cr_expect_str_eq(l->v[4].target, "/tmp/ckpt-zoo/positioned");
	cr_expect_eq(l->v[4].pos, 1234);
	cr_expect_eq(l->v[4].flags & O_APPEND, O_APPEND);
	cr_expect_eq(l->v[4].flags & O_ACCMODE, O_RDWR);
	cr_expect_eq(l->v[3].fd, 3);
	cr_expect_str_eq(l->v[3].target, "/memfd:zoo-memfd (deleted)");
	cr_expect_str_eq(l->v[7].target, "socket:[6021]");
	cr_expect_str_eq(l->v[9].target, "anon_inode:[eventfd]");
	cr_assert_not_null(l->v[9].extra);
	cr_expect(strstr(l->v[9].extra, "eventfd-count:") != NULL);
	cr_expect_eq(l->v[11].fd, 251);
}

Test(proc_fds, kthread_has_none)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_fd_list_ struct ckpt_fd_list *l = NULL;
	char root[512];
	pid_t pid = fixture_pid("kthread", root, sizeof(root));

	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_read_fds(p, &l), 0);
	cr_expect_eq(l->nr, 0);
}

Test(proc_fdinfo, malformed)
{
	struct ckpt_fd_info f = { 0 };

	cr_expect_eq(ckpt_proc_parse_fdinfo("flags:\t02\n", &f), -EBADMSG);
	cr_expect_eq(ckpt_proc_parse_fdinfo("pos:\tx\nflags:\t02\n", &f), -EBADMSG);
	cr_expect_eq(ckpt_proc_parse_fdinfo("pos:\t1\nflags:\t9\n", &f), -EBADMSG);
	cr_assert_eq(ckpt_proc_parse_fdinfo("pos:\t7\nflags:\t0100002\nmnt_id:\t3\nino:\t9\ntfd: 1\n", &f), 0);
	cr_expect_eq(f.pos, 7);
	cr_expect_eq(f.flags, 0100002);
	cr_expect_str_eq(f.extra, "tfd: 1\n");
	ckpt_fd_info_done(&f);
}

Test(proc_misc, auxv_exe_cwd_personality)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_free_ uint64_t *auxv = NULL;
	_cleanup_free_ char *exe = NULL, *cwd = NULL;
	unsigned long pers = 1;
	char root[512];
	size_t n;
	pid_t pid = fixture_pid("zoo", root, sizeof(root));

	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_read_auxv(p, &auxv, &n), 0);
	cr_assert_eq(n % 2, 0);
	cr_assert_gt(n, 2);
	cr_expect_eq(auxv[0], 0x21); /* AT_SYSINFO_EHDR */
	cr_expect_eq(auxv[n - 2], 0); /* AT_NULL last */
	for (size_t i = 0; i + 2 < n; i += 2)
		cr_expect_neq(auxv[i], 0);
	cr_assert_eq(ckpt_proc_read_exe(p, &exe), 0);
	cr_expect_str_eq(exe, "/work/main/build/test/progs/proc_zoo");
	cr_assert_eq(ckpt_proc_read_cwd(p, &cwd), 0);
	cr_expect_str_eq(cwd, "/work/main");
	cr_assert_eq(ckpt_proc_read_personality(p, &pers), 0);
	cr_expect_eq(pers, 0);
}

Test(proc_misc, missing_pid_is_esrch)
{
	struct ckpt_proc *p = NULL;

	cr_expect_eq(ckpt_proc_open(CKPT_FIXTURES "/proc/zoo", 1, &p), -ESRCH);
	cr_expect_null(p);
	cr_expect_eq(ckpt_proc_open(NULL, 0, &p), -EINVAL);
}

Test(proc_misc, live_self)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *l = NULL;
	struct ckpt_proc_stat st;
	int found_stack = 0;

	cr_assert_eq(ckpt_proc_open(NULL, getpid(), &p), 0);
	cr_assert_eq(ckpt_proc_read_stat(p, &st), 0);
	cr_expect_eq(st.pid, getpid());
	cr_assert_eq(ckpt_proc_read_maps(p, 0, &l), 0);
	for (size_t i = 0; i < l->nr; i++)
		if (l->v[i].kind == CKPT_VMA_STACK && (uintptr_t)&found_stack >= l->v[i].start &&
		    (uintptr_t)&found_stack < l->v[i].end)
			found_stack = 1;
	cr_expect(found_stack, "our own stack variable is not in [stack]");
}
