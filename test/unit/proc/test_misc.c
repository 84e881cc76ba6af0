/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

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

Test(proc_task, wchan_syscall_and_timerslack_of_zoo)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL, *leader = NULL, *worker = NULL;
	char root[512], wchan[64];
	pid_t pid = fixture_pid("zoo", root, sizeof(root));
	uint64_t slack = 0;
	long nr = 0;

	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_read_timerslack(p, &slack), 0);
	cr_expect_eq(slack, 50000);
	cr_assert_eq(ckpt_proc_open_task(p, 3545, &worker), 0);
	cr_assert_eq(ckpt_proc_read_wchan(worker, wchan, sizeof(wchan)), 0);
	cr_expect_str_eq(wchan, "futex_wait_queue");
	cr_assert_eq(ckpt_proc_read_syscall(worker, &nr), 0);
	cr_expect_eq(nr, 202);
	/* Truncated to the buffer, NUL-terminated. */
	cr_assert_eq(ckpt_proc_read_wchan(worker, wchan, 6), 0);
	cr_expect_str_eq(wchan, "futex");
	/* The leader runs: wchan "0", syscall "running". */
	cr_assert_eq(ckpt_proc_open_task(p, pid, &leader), 0);
	cr_assert_eq(ckpt_proc_read_wchan(leader, wchan, sizeof(wchan)), 0);
	cr_expect_str_eq(wchan, "");
	cr_expect_eq(ckpt_proc_read_syscall(leader, &nr), -EAGAIN);
	/* Only ROOT/TID has timerslack_ns. */
	cr_expect_eq(ckpt_proc_read_timerslack(worker, &slack), -ENOENT);
}

Test(proc_task, parse_syscall)
{
	long nr = 99;

	cr_assert_eq(ckpt_proc_parse_syscall("58 0x1 0x2 0x3 0x4 0x5 0x6 0x7ffd 0x7f01\n", &nr), 0);
	cr_expect_eq(nr, 58);
	cr_assert_eq(ckpt_proc_parse_syscall("-1 0x7ffd5a1c2000 0x401000\n", &nr), 0);
	cr_expect_eq(nr, -1, "blocked outside a system call");
	cr_expect_eq(ckpt_proc_parse_syscall("running\n", &nr), -EAGAIN);
	cr_expect_eq(ckpt_proc_parse_syscall("", &nr), -EBADMSG);
	cr_expect_eq(ckpt_proc_parse_syscall("x1 0x0", &nr), -EBADMSG);
	cr_expect_eq(ckpt_proc_parse_syscall("12x 0x0", &nr), -EBADMSG);
	cr_expect_eq(ckpt_proc_parse_syscall("-2 0x0", &nr), -EBADMSG);
}

/* Live: a thread of ours, blocked in a known system call. */
static volatile pid_t sleeper_tid;

static void *sleeper(void *arg)
{
	(void)arg;
	sleeper_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

Test(proc_task, live_thread_in_pause)
{
	_cleanup_proc_ struct ckpt_proc *self = NULL, *t = NULL;
	pthread_t th;
	char wchan[64];
	long nr = -2;

	cr_assert_eq(pthread_create(&th, NULL, sleeper, NULL), 0);
	while (!sleeper_tid)
		usleep(1000);
	cr_assert_eq(ckpt_proc_open(NULL, getpid(), &self), 0);
	cr_assert_eq(ckpt_proc_open_task(self, sleeper_tid, &t), 0);
	/* Until it sleeps in pause(2). */
	for (int i = 0; i < 1000 && nr != SYS_pause; i++) {
		if (ckpt_proc_read_syscall(t, &nr) < 0)
			nr = -2;
		usleep(1000);
	}
	cr_expect_eq(nr, SYS_pause);
	cr_assert_eq(ckpt_proc_read_wchan(t, wchan, sizeof(wchan)), 0);
	cr_expect(wchan[0], "no wchan for a sleeping thread");
	pthread_cancel(th);
	pthread_join(th, NULL);
}

/* /proc/locks: the taker of a flock on a file, never a waiter, a POSIX lock or another inode. */
Test(proc_locks, flock_holder)
{
	static const char text[] =
		"1: POSIX  ADVISORY  WRITE 111 fe:00:1057149 0 EOF\n"
		"2: FLOCK  ADVISORY  WRITE 4242 fe:00:1057149 0 EOF\n"
		"2: -> FLOCK  ADVISORY  WRITE 999 fe:00:1057149 0 EOF\n"
		"3: FLOCK  ADVISORY  WRITE 555 fe:00:77 0 EOF\n"
		"4: OFDLCK ADVISORY  READ  -1 00:1a:12 0 EOF\n";
	pid_t pid = 0;

	cr_assert_eq(ckpt_proc_parse_flock_holder(text, makedev(0xfe, 0), 1057149, &pid), 0);
	cr_expect_eq(pid, 4242);
	cr_assert_eq(ckpt_proc_parse_flock_holder(text, makedev(0xfe, 0), 77, &pid), 0);
	cr_expect_eq(pid, 555);
	cr_expect_eq(ckpt_proc_parse_flock_holder(text, makedev(0xfe, 1), 77, &pid), -ENOENT);
	cr_expect_eq(ckpt_proc_parse_flock_holder(text, makedev(0, 0x1a), 12, &pid), -ENOENT);
	cr_expect_eq(ckpt_proc_parse_flock_holder("", 1, 1, &pid), -ENOENT);
}

/* cmdline as argv: arguments with spaces and empty ones kept as they were. */
Test(proc_misc, argv_of_a_child)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_free_ char **argv = NULL;
	static const char *const want[] = { "/bin/sh", "-c", "sleep 5", "sh", "", "a b", NULL };
	pid_t pid = fork();
	int r = -1;

	if (pid == 0) {
		execv(want[0], (char *const *)want);
		_exit(127);
	}
	cr_assert_gt(pid, 0);
	cr_assert_eq(ckpt_proc_open(NULL, pid, &p), 0);
	for (int i = 0; i < 200; i++, usleep(10000)) {
		free(argv);
		argv = NULL;
		if ((r = ckpt_proc_read_argv(p, &argv)) == 0 && !strcmp(argv[0], want[0]))
			break;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_eq(r, 0);
	for (size_t i = 0; want[i]; i++) {
		cr_assert_not_null(argv[i], "argument %zu missing", i);
		cr_expect_str_eq(argv[i], want[i]);
	}
}
