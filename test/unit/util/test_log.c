/* SPDX-License-Identifier: MIT */
/* The default log sink: a closed stderr is counted, never fatal. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ckpt/log.h>

Test(log, default_sink_survives_a_closed_pipe_and_counts_it)
{
	int p[2], saved = dup(2), err = 0;
	sigset_t pending;

	/* The program's disposition of SIGPIPE is the default: death. */
	signal(SIGPIPE, SIG_DFL);
	cr_assert_geq(saved, 0);
	cr_assert_eq(pipe(p), 0);
	close(p[0]);
	cr_assert_eq(dup2(p[1], 2), 2);
	close(p[1]);
	ckpt_log_set_sink(NULL, NULL);
	cr_assert_eq(ckpt_log_lost(NULL), 0);
	ckpt_log(CKPT_LOG_ERROR, "test", "nobody reads this");
	ckpt_log(CKPT_LOG_ERROR, "test", "nor this");
	dup2(saved, 2);
	close(saved);
	cr_expect_eq(ckpt_log_lost(&err), 2);
	cr_expect_eq(err, EPIPE);
	/* No SIGPIPE left behind for the program either. */
	cr_assert_eq(sigpending(&pending), 0);
	cr_expect_not(sigismember(&pending, SIGPIPE));
}

Test(log, default_sink_counts_a_full_disk)
{
	int full = open("/dev/full", O_WRONLY), saved = dup(2), err = 0;

	cr_assert_geq(full, 0);
	cr_assert_eq(dup2(full, 2), 2);
	close(full);
	ckpt_log_set_sink(NULL, NULL);
	ckpt_log(CKPT_LOG_WARN, "test", "no room for this");
	dup2(saved, 2);
	close(saved);
	cr_expect_eq(ckpt_log_lost(&err), 1);
	cr_expect_eq(err, ENOSPC);
}

Test(log, default_sink_survives_the_file_size_limit)
{
	char path[] = "/tmp/ckpt-log-test-XXXXXX";
	int fd = mkstemp(path), saved = dup(2), err = 0;
	struct rlimit rl = { 64, 64 };
	char big[200];

	signal(SIGXFSZ, SIG_DFL);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	cr_assert_eq(dup2(fd, 2), 2);
	close(fd);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ckpt_log_set_sink(NULL, NULL);
	ckpt_log(CKPT_LOG_ERROR, "test", "%s", big);
	ckpt_log(CKPT_LOG_ERROR, "test", "%s", big);
	dup2(saved, 2);
	close(saved);
	cr_expect_geq(ckpt_log_lost(&err), 1);
	cr_expect_eq(err, EFBIG);
}
