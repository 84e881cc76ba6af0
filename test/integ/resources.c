/* SPDX-License-Identifier: MIT */
/*
 * What ckpt itself takes: memory (track -D --max-buffer), disk (the first
 * checkpoint of track -D against a dump of the same process), and what
 * killed commands leave behind (temporary directories of checkpoints,
 * records in the run directory). Real processes: test/progs/memhog writes
 * all of its memory all the time, the worst case for both.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/restorecmp.h"
#include "helpers/testutil.h"

#define MIB (1024ULL * 1024)

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "resources");
}

static void teardown(void)
{
	char first[200];

	snprintf(first, sizeof(first), "umount -q %s/small 2>/dev/null", tmp);
	suite_dir_remove(tmp, first);
}

TestSuite(resources, .init = setup, .fini = teardown);

/* memhog MIB [ROUNDS]: its pid as a string, and its rseq area. */
struct hog {
	struct prog p;
	char pid[16];
	unsigned long long rseq_at;
};

static void hog_start(struct hog *h, const char *mib, const char *rounds)
{
	char line[256];

	h->rseq_at = 0;
	cr_assert_eq(prog_start(&h->p, false, 0, "memhog", mib, rounds, NULL), 0);
	for (;;) {
		cr_assert_geq(prog_read_line(&h->p, line, sizeof(line), 30000), 0, "memhog did not start");
		sscanf(line, "rseq %llx", &h->rseq_at);
		if (!strcmp(line, "ready"))
			break;
	}
	snprintf(h->pid, sizeof(h->pid), "%d", h->p.pid);
}

static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/*
 * Run ckpt with @argv (after the program name, NULL-terminated), its
 * output into @log: its exit status (128 + signal), and its peak RSS in
 * bytes in *@ret_maxrss.
 */
static int run_measured(const char *log, long long *ret_maxrss, const char *const *argv)
{
	const char *av[32];
	struct rusage ru;
	int n = 0, status;
	pid_t pid;

	av[n++] = ckpt_bin();
	while (*argv && n < 31)
		av[n++] = *argv++;
	av[n] = NULL;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		dup2(fd, 1);
		dup2(fd, 2);
		execv(av[0], (char *const *)av);
		_exit(127);
	}
	cr_assert_eq(wait4(pid, &status, 0, &ru), pid);
	*ret_maxrss = (long long)ru.ru_maxrss * 1024;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *slurp(const char *path)
{
	static char buf[16384];
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

/*
 * The first checkpoint of track -D is no larger than a dump of the same
 * process: on a file system where the dump fits (20 MiB for about 8 MiB
 * of compressed pages), so does it, though the process rewrites every
 * page while it is copied.
 */
Test(resources, first_checkpoint_fits_where_a_dump_fits, .timeout = 120)
{
	struct hog h;
	struct run_result r;
	char small[128], dump[160], series[160], path[256];
	long long dump_bytes, first_bytes;

	snprintf(small, sizeof(small), "%s/small", tmp);
	cr_assert_eq(mkdir(small, 0700), 0);
	cr_assert_eq(sh("mount -t tmpfs -o size=20m tmpfs %s", small), 0, "cannot mount a small tmpfs");
	hog_start(&h, "16", NULL);

	snprintf(dump, sizeof(dump), "%s/dump", small);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", h.pid, "-D", dump, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "dump: %s", r.err);
	run_result_done(&r);
	snprintf(path, sizeof(path), "%s/pages.zst", dump);
	dump_bytes = file_size(path);
	cr_assert_gt(dump_bytes, 4 * MIB, "a dump of 16 MiB of half-noise holds %lld bytes", dump_bytes);
	cr_assert_eq(sh("rm -rf %s", dump), 0);

	snprintf(series, sizeof(series), "%s/series", small);
	cr_assert_eq(run_ckpt(&r, "track", "-t", h.pid, "-D", series, "--count", "1", NULL), 0);
	cr_assert_eq(r.status, 0, "track -D where a dump fits: %s", r.err);
	run_result_done(&r);
	snprintf(path, sizeof(path), "%s/0000/pages.zst", series);
	first_bytes = file_size(path);
	cr_log_info("pages of a dump: %lld bytes, of the first checkpoint of track -D: %lld bytes",
		    dump_bytes, first_bytes);
	cr_expect_leq(first_bytes, dump_bytes + dump_bytes / 8,
		      "the first checkpoint holds %lld bytes of pages, a dump %lld", first_bytes,
		      dump_bytes);
	prog_kill(&h.p);
}

/*
 * track -D --max-buffer holds ckpt's memory whatever the process writes:
 * a 96 MiB process that rewrites all of it, with 32 MiB of buffers. The
 * checkpoints are right all the same: once the process stops writing, the
 * next one (a delta continuing the chain) restores to its memory.
 */
Test(resources, track_memory_stays_within_max_buffer, .timeout = 240)
{
	struct hog h;
	char dir[128], log[160], latest[160], line[64];
	const char *const first_run[] = { "track", "-t", NULL, "-D", dir, "--interval", "100ms",
					  "--count", "4", "--max-buffer", "32M", NULL };
	const char *const next_run[] = { "track", "-t", NULL, "-D", dir, "--count", "1",
					 "--max-buffer", "32M", NULL };
	const char *av[16];
	long long rss;
	int status;

	snprintf(dir, sizeof(dir), "%s/hog", tmp);
	snprintf(log, sizeof(log), "%s/track.log", tmp);
	hog_start(&h, "96", "300");
	memcpy(av, first_run, sizeof(first_run));
	av[2] = h.pid;
	status = run_measured(log, &rss, av);
	cr_assert_eq(status, 0, "track -D --max-buffer 32M: %s", slurp(log));
	cr_log_info("track -D --max-buffer 32M of a 96 MiB process that writes all of it: peak RSS "
		    "%lld MiB", rss / (long long)MIB);
	/* The buffers, and what any ckpt run takes (the program, its libraries, the state). */
	cr_expect_leq(rss, 32 * MIB + 40 * MIB, "track -D --max-buffer 32M: peak RSS %lld MiB",
		      rss / (long long)MIB);

	cr_assert_geq(prog_read_line(&h.p, line, sizeof(line), 120000), 0, "memhog did not finish");
	cr_assert_str_eq(line, "still");
	memcpy(av, next_run, sizeof(next_run));
	av[2] = h.pid;
	status = run_measured(log, &rss, av);
	cr_assert_eq(status, 0, "track -D, continued: %s", slurp(log));
	cr_expect_leq(rss, 32 * MIB + 40 * MIB, "track -D --max-buffer 32M, continued: peak RSS %lld MiB",
		      rss / (long long)MIB);
	kill(h.p.pid, SIGSTOP);
	snprintf(latest, sizeof(latest), "%s/latest", dir);
	restore_compare(h.p.pid, latest, false, h.rseq_at, "track -D --max-buffer 32M");
	kill(h.p.pid, SIGCONT);
	prog_kill(&h.p);
}
