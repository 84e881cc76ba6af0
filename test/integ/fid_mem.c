/* SPDX-License-Identifier: MIT */
/*
 * Issue 14, memory: after dump (kill) and restore, eager and lazy, a process
 * cannot tell it was restored by its mappings' madvise flags, locked
 * memory, guard regions, a shared file mapping's right to be made writable,
 * its per-mm prctls and its membarrier registrations (test/progs/fid_mem
 * checks each itself). A feature this kernel lacks is a skip, never a pass.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "helpers/testutil.h"

#define NR_ITEMS 19 /* the lines fid_mem prints on "check" */

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "fidmem-test");
}

static void teardown(void)
{
	char first[200];

	snprintf(first, sizeof(first), "chattr -i %s/file 2>/dev/null", tmp);
	suite_dir_remove(tmp, first);
}

TestSuite(fid_mem, .init = setup, .fini = teardown, .timeout = 90);

/* The next line of the process (ckpt's JSON lines skipped; a lazy end noted). */
static int next_line(struct prog *p, char *buf, size_t len, const char **ret_lazy_end)
{
	for (;;) {
		int r = prog_read_line(p, buf, len, 20000);
		json_object *j, *e;

		if (r < 0 || buf[0] != '{')
			return r;
		j = json_tokener_parse(buf);
		if (j && ret_lazy_end && json_object_object_get_ex(j, "end", &e))
			*ret_lazy_end = !strcmp(json_object_get_string(e), "complete") ? "complete" : "not complete";
		json_object_put(j);
	}
}

/*
 * "check": every line "ITEM ok" (or "ITEM skip (why)": noted in @skips),
 * NR_ITEMS of them, then "done NR_ITEMS".
 */
static void expect_all_ok(struct prog *p, const char *what, char *skips, size_t len)
{
	char line[512];
	int n = 0, done = -1;

	cr_assert_eq(write(p->in_fd, "check\n", 6), 6);
	while (done < 0) {
		char item[64], word[16];

		cr_assert_geq(next_line(p, line, sizeof(line), NULL), 0, "%s: no answer after %d lines", what, n);
		if (sscanf(line, "done %d", &done) == 1)
			break;
		n++;
		cr_assert_eq(sscanf(line, "%63s %15s", item, word), 2, "%s: '%s'", what, line);
		if (!strcmp(word, "skip")) {
			if (!strstr(skips, item))
				snprintf(skips + strlen(skips), len - strlen(skips), "%s; ", line);
			continue;
		}
		cr_expect_str_eq(word, "ok", "%s: %s", what, line);
	}
	cr_expect_eq(n, NR_ITEMS, "%s: %d lines", what, n);
	cr_expect_eq(done, n, "%s: done %d after %d lines", what, done, n);
}

static void round_trip(bool lazy)
{
	const char *argv[] = { ckpt_bin(), "restore", "-D", NULL, "--stdio", "inherit", "--json",
			       lazy ? "--lazy" : NULL, NULL };
	const char *lazy_end = NULL;
	char dir[128], pid_s[16], skips[1024] = "", line[512];
	struct run_result r;
	struct prog p, rp;

	cr_assert_eq(prog_start(&p, true, 5000, "fid_mem", tmp, NULL), 0);
	expect_all_ok(&p, "the original", skips, sizeof(skips));
	snprintf(pid_s, sizeof(pid_s), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/img", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "dump: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);

	argv[3] = dir;
	cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	if (lazy) {
		/* Locked memory is locked for good once every page is in: wait for the end. */
		while (!lazy_end) {
			int k = prog_read_line(&rp, line, sizeof(line), 30000);
			json_object *j, *e;

			cr_assert_geq(k, 0, "the lazy restore did not end");
			cr_assert_eq(line[0], '{', "unexpected output before check: %s", line);
			j = json_tokener_parse(line);
			if (j && json_object_object_get_ex(j, "end", &e))
				lazy_end = json_object_get_string(e) && !strcmp(json_object_get_string(e), "complete")
						   ? "complete" : "not complete";
			json_object_put(j);
		}
		cr_assert_str_eq(lazy_end, "complete");
	}
	expect_all_ok(&rp, lazy ? "lazily restored" : "restored", skips, sizeof(skips));
	cr_assert_eq(write(rp.in_fd, "quit\n", 5), 5);
	prog_wait(&rp, 10000);
	prog_kill(&rp);
	if (skips[0])
		cr_skip_test("this kernel lacks: %s", skips);
}

Test(fid_mem, eager_restore_keeps_every_memory_setting)
{
	round_trip(false);
}

Test(fid_mem, lazy_restore_keeps_every_memory_setting)
{
	round_trip(true);
}

/* Is a process running "fid_mem @dir" (the original, or one restore left)? */
static bool fid_mem_alive(const char *dir)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool found = false;

	cr_assert_not_null(d);
	while (!found && (e = readdir(d))) {
		char path[300], buf[512] = "";
		ssize_t n;
		int fd;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0 && strstr(buf, "fid_mem") && (size_t)n > strlen(buf) + 1 &&
		    !strcmp(buf + strlen(buf) + 1, dir))
			found = true;
	}
	closedir(d);
	return found;
}

/*
 * The shared mapping's file can no longer be opened for writing (immutable):
 * restore must refuse, naming it, rather than map it without the right to
 * be made writable; and leave no process behind.
 */
Test(fid_mem, a_file_that_cannot_be_reopened_writable_fails_the_restore)
{
	char dir[128], pid_s[16], cmd[256];
	struct run_result r;
	struct prog p;

	cr_assert_eq(prog_start(&p, true, 5000, "fid_mem", tmp, NULL), 0);
	snprintf(pid_s, sizeof(pid_s), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/img", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "dump: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);
	cr_assert(!fid_mem_alive(tmp), "the original still runs");

	snprintf(cmd, sizeof(cmd), "chattr +i %s/file", tmp);
	if (system(cmd) != 0)
		cr_skip_test("cannot make %s/file immutable (chattr +i) on this file system", tmp);
	cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--stdio", "null", NULL), 0);
	cr_expect_neq(r.status, 0, "restore succeeded with the file immutable");
	cr_expect(strstr(r.err, "/file'") && strstr(r.err, "Operation not permitted"), "restore said: %s", r.err);
	run_result_done(&r);
	cr_expect(!fid_mem_alive(tmp), "a failed restore left a process behind");
}

/* The value after "@key" in /proc/@pid/@file ("" if none). */
static void proc_value(pid_t pid, const char *file, const char *key, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	f = fopen(path, "r");
	cr_assert_not_null(f, "no %s", path);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			snprintf(buf, len, "%s", line + strlen(key) + strspn(line + strlen(key), " \t:"));
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

/*
 * The new process is a fork of ckpt: THP disable and KSM merge-any of ckpt
 * itself (both survive fork and exec) must not reach a process that had
 * neither.
 */
Test(fid_mem, ckpts_own_thp_and_ksm_settings_do_not_leak_into_the_restored_process)
{
	const char *argv[] = { "/bin/sleep", "1000", NULL };
	char dir[128], pid_s[16], thp[32], ksm[32];
	struct run_result r;
	struct prog p;
	pid_t pid;

	cr_assert_eq(prog_spawn(&p, false, NULL, argv), 0);
	for (int i = 0; i < 500 && proc_state(p.pid) != 'S'; i++)
		usleep(10000);
	cr_assert_eq(proc_state(p.pid), 'S', "sleep did not start");
	proc_value(p.pid, "status", "THP_enabled", thp, sizeof(thp));
	cr_assert_str_eq(thp, "1", "THP is off for sleep before ckpt touched it");
	snprintf(pid_s, sizeof(pid_s), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/img", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "dump: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);

	/* This test process is ckpt's parent: ckpt inherits both. */
	cr_assert_eq(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), 0);
	if (prctl(67 /* PR_SET_MEMORY_MERGE */, 1, 0, 0, 0) != 0)
		cr_log_warn("no KSM here: only THP is checked");
	cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--detach", "--stdio", "null", NULL), 0);
	cr_assert_eq(r.status, 0, "restore: %s", r.err);
	pid = atoi(r.out);
	run_result_done(&r);
	cr_assert_gt(pid, 0);
	prog_track_pid(pid);
	proc_value(pid, "status", "THP_enabled", thp, sizeof(thp));
	cr_expect_str_eq(thp, "1", "the restored process has THP off: ckpt's own setting leaked");
	proc_value(pid, "ksm_stat", "ksm_merge_any", ksm, sizeof(ksm));
	cr_expect(!strcmp(ksm, "no") || !strcmp(ksm, ""), "the restored process has KSM merge-any: '%s'", ksm);
	kill(pid, SIGKILL);
}
