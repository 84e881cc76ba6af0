/* SPDX-License-Identifier: MIT */
/*
 * The fd kinds whose kernel state restore brings back (test/progs/fid_fds.c):
 * a signalfd with its signal pending, timerfds with their clock, time left,
 * interval and unread expirations, an inotify with its watches (wd numbers
 * with a gap), an epoll with its registrations and data, eventfds with
 * their counts. Dumped in kill mode, restored eagerly and lazily, then the
 * process checks each itself. An epoll whose registration no longer matches
 * the fd number it names is refused at the dump, and the process is left
 * unharmed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "helpers/testutil.h"

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "fidfds-test");
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(fid_fds, .init = setup, .fini = teardown, .timeout = 120);

/* A restore that gives the unread expirations back needs TFD_IOC_SET_TICKS. */
static bool can_set_ticks(char *why, size_t len)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	uint64_t t = 1;
	bool ok;

	if (fd < 0) {
		snprintf(why, len, "no timerfd: %s", strerror(errno));
		return false;
	}
	ok = ioctl(fd, _IOW('T', 0, uint64_t), &t) == 0;
	if (!ok)
		snprintf(why, len, "TFD_IOC_SET_TICKS: %s (CONFIG_CHECKPOINT_RESTORE)", strerror(errno));
	close(fd);
	return ok;
}

static void dump_restore_check(const char *lazy)
{
	const char *items[] = { "signalfd", "timerfd-expired", "timerfd-rel", "inotify", "epoll", "eventfd" };
	char dir[128], work[128], line[512], why[128], pid[16], pidf[128];
	struct prog p, rp;
	struct run_result r;

	if (!can_set_ticks(why, sizeof(why)))
		cr_skip_test("the kernel cannot set a timerfd's expirations: %s", why);
	snprintf(dir, sizeof(dir), "%s/img", tmp);
	snprintf(work, sizeof(work), "%s/watched", tmp);
	cr_assert_eq(mkdir(work, 0700), 0);
	cr_assert_eq(prog_start(&p, true, 5000, "fid_fds", "all", work, NULL), 0);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "dump failed: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);
	{
		const char *argv[] = { ckpt_bin(), "restore", "-D", dir, "--stdio", "inherit", "--pidfile",
				       pidf, lazy, NULL };
		FILE *f;
		int rpid = 0;

		snprintf(pidf, sizeof(pidf), "%s/restored.pid", tmp);
		cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
		/* Killed by the teardown, whatever happens. */
		for (int i = 0; i < 500 && access(pidf, F_OK) < 0; i++)
			usleep(20000);
		f = fopen(pidf, "r");
		if (f && fscanf(f, "%d", &rpid) == 1 && rpid > 0)
			prog_track_pid(rpid);
		if (f)
			fclose(f);
	}
	prog_send_line(&rp, "check\n");
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		int k = prog_read_line(&rp, line, sizeof(line), 20000);
		size_t n = strlen(items[i]);

		cr_assert_geq(k, 0, "no line for %s (%s)", items[i], strerror(-k));
		cr_expect(!strncmp(line, items[i], n) && !strcmp(line + n, " ok"), "%s: '%s'", items[i], line);
	}
	cr_assert_geq(prog_read_line(&rp, line, sizeof(line), 10000), 0);
	cr_expect_str_eq(line, "done");
	kill(rp.pid, SIGTERM);
	prog_wait(&rp, 5000);
	prog_kill(&rp);
}

Test(fid_fds, every_kind_comes_back_eagerly)
{
	dump_restore_check(NULL);
}

Test(fid_fds, every_kind_comes_back_lazily)
{
	dump_restore_check("--lazy");
}

/* An epoll registration whose fd number holds no longer its file: refused, process unharmed. */
static void refused(const char *mode, const char *why)
{
	char dir[128], line[64], pid[16];
	struct prog p;
	struct run_result r;

	snprintf(dir, sizeof(dir), "%s/%s", tmp, mode);
	cr_assert_eq(prog_start(&p, true, 5000, "fid_fds", mode, NULL), 0);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, NULL), 0);
	cr_expect_eq(r.status, 4, "%s: status %d: %s", mode, r.status, r.err);
	cr_expect(strstr(r.err, why), "%s: '%s' not said in: %s", mode, why, r.err);
	cr_expect(strstr(r.err, "fd 4 (anon_inode:[eventpoll])"), "%s: the epoll fd not named: %s", mode, r.err);
	run_result_done(&r);
	prog_send_line(&p, "ping\n");
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 5000), 0, "%s: the process does not answer", mode);
	cr_expect_str_eq(line, "pong");
	prog_kill(&p);
}

Test(fid_fds, epoll_of_a_closed_fd_is_refused)
{
	refused("closed", "epoll fd 4 watches a file registered as fd 3, which the process has closed since");
}

Test(fid_fds, epoll_of_a_replaced_fd_is_refused)
{
	refused("replaced", "epoll fd 4 watches a file registered as fd 3, but fd 3 is another file now");
}

/* A watched inode that is gone by the restore: refused, naming the watch and its path. */
Test(fid_fds, inotify_watch_of_a_removed_directory_is_refused_at_restore)
{
	char dir[128], work[128], sub[160], pid[16], want[256];
	struct prog p;
	struct run_result r;

	snprintf(dir, sizeof(dir), "%s/img", tmp);
	snprintf(work, sizeof(work), "%s/watched", tmp);
	cr_assert_eq(mkdir(work, 0700), 0);
	cr_assert_eq(prog_start(&p, true, 5000, "fid_fds", "all", work, NULL), 0);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "dump failed: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);
	snprintf(sub, sizeof(sub), "%s/sub", work);
	cr_assert_eq(rmdir(sub), 0);
	cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--stdio", "null", "--detach", NULL), 0);
	cr_expect_neq(r.status, 0, "restored without the watched directory: %s", r.err);
	snprintf(want, sizeof(want), "('%s') of watch 3 is gone", sub);
	cr_expect(strstr(r.err, want), "'%s' not said in: %s", want, r.err);
	run_result_done(&r);
}
