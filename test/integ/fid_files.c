/* SPDX-License-Identifier: MIT */
/*
 * Fidelity of files (issue 14): after a kill-mode dump and a restore, eager
 * or lazy, the process cannot tell by its files that it was restored. The
 * target (test/progs/fid_files) holds a memfd that is not mapped (contents,
 * position, seals), a memfd that cannot be sealed, a deleted file open twice
 * (contents, size, mode, mtime, positions, access modes, one object), a
 * deleted working directory and files of its own /proc directory; on
 * "check" it checks each itself and prints "ITEM ok" or "ITEM BAD (why)".
 * The target also maps deleted files: open and mapped shared and privately,
 * and mapped shared twice without an fd (one file each, the private
 * mapping's pages not copied on write still following it).
 * Refused: a deleted file over --ghost-limit, open or mapped shared (at
 * dump, naming it, its size and the limit, the process untouched), and a blob of the checkpoint corrupted or
 * cut (at restore, before any process or file is made).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/testutil.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "fidfiles-test");
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(fid_files, .init = setup, .fini = teardown);

static const char *path_in(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", tmp, name);
	return buf;
}

static const char *const items[] = { "memfd", "memfd-plain", "memfd-mapped", "ghost", "ghost-map",
				     "ghost-maponly", "exe", "cwd", "proc" };

/* An empty scratch directory for the target. */
static const char *scratch(char *buf, size_t len)
{
	path_in("scratch", buf, len);
	cr_assert_eq(mkdir(buf, 0755), 0, "mkdir %s: %s", buf, strerror(errno));
	return buf;
}

/* The entries of @dir, "." and ".." left out. */
static int nr_entries(const char *dir, char *names, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	names[0] = '\0';
	cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n++;
		strncat(names, de->d_name, len - strlen(names) - 2);
		strcat(names, " ");
	}
	closedir(d);
	return n;
}

/*
 * "check": every line up to "done" is "ITEM ok", and each of @want items
 * answered. Lines that are not the process's (ckpt's JSON) are skipped.
 */
static void expect_checks(struct prog *p, const char *const *want, size_t nr_want, const char *when)
{
	bool seen[16] = { false };
	char line[1024];

	cr_assert_eq(write(p->in_fd, "check\n", 6), 6, "cannot ask the process (%s)", when);
	for (;;) {
		int r = prog_read_line(p, line, sizeof(line), 20000);
		size_t i;

		cr_assert_geq(r, 0, "no answer to check (%s): %s", when, strerror(-r));
		if (line[0] == '{')
			continue;
		if (!strcmp(line, "done"))
			break;
		for (i = 0; i < nr_want; i++)
			if (!strncmp(line, want[i], strlen(want[i])) && line[strlen(want[i])] == ' ')
				break;
		cr_assert_lt(i, nr_want, "unexpected line (%s): '%s'", when, line);
		cr_expect(strstr(line, " ok") && !strstr(line, "BAD"), "%s: %s", when, line);
		seen[i] = true;
	}
	for (size_t i = 0; i < nr_want; i++)
		cr_expect(seen[i], "%s: no line for '%s'", when, want[i]);
}

/* Kill-mode dump of @p into @dir with the extra arguments; its status. */
static int dump(struct prog *p, const char *dir, const char *extra, struct run_result *r)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", p->pid);
	if (extra)
		cr_assert_eq(run_ckpt(r, "dump", "-t", pid, "-D", dir, "--ghost-limit", extra, NULL), 0);
	else
		cr_assert_eq(run_ckpt(r, "dump", "-t", pid, "-D", dir, NULL), 0);
	return r->status;
}

/* Restore @dir (lazily or not) as a child of ckpt, the test talking to it through ckpt's stdio. */
static void restore(struct prog *rp, const char *dir, bool lazy)
{
	const char *argv[] = { ckpt_bin(), "restore", "-D", dir, "--json", "--stdio", "inherit",
			       lazy ? "--lazy" : NULL, NULL };

	cr_assert_eq(prog_spawn(rp, true, NULL, argv), 0);
}

/* Dump every item, restore (eager or lazy), and let the process check them. */
static void round_trip(bool lazy)
{
	struct prog p, rp;
	struct run_result r;
	char sdir[128], dir[128], names[1024];
	int status;

	scratch(sdir, sizeof(sdir));
	cr_assert_eq(prog_start(&p, true, 10000, "fid_files", sdir, NULL), 0);
	expect_checks(&p, items, ARRAY_SIZE(items), "before the dump");

	status = dump(&p, path_in("c", dir, sizeof(dir)), NULL, &r);
	cr_assert_eq(status, 0, "dump: %s", r.err);
	run_result_done(&r);
	cr_assert_eq(prog_wait(&p, 10000) & 0x7f, SIGKILL, "the dump did not kill the process");
	cr_assert_eq(nr_entries(sdir, names, sizeof(names)), 0, "left in the scratch directory: %s", names);

	restore(&rp, dir, lazy);
	expect_checks(&rp, items, ARRAY_SIZE(items), lazy ? "after a lazy restore" : "after a restore");
	/* Nothing made again is left with a name: the ghost file, the working directory. */
	cr_expect_eq(nr_entries(sdir, names, sizeof(names)), 0, "restore left: %s", names);
	expect_checks(&rp, items, ARRAY_SIZE(items), "checked twice");
	prog_kill(&rp);
}

Test(fid_files, eager, .timeout = 120) { round_trip(false); }

/* A delta on top of a dump that left it running: its own blobs, restored from the chain. */
Test(fid_files, delta, .timeout = 120)
{
	struct prog p, rp;
	struct run_result r;
	char sdir[128], c0[128], c1[128], pid[16];

	scratch(sdir, sizeof(sdir));
	cr_assert_eq(prog_start(&p, true, 10000, "fid_files", sdir, NULL), 0);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", path_in("c0", c0, sizeof(c0)), "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	expect_checks(&p, items, ARRAY_SIZE(items), "after a dump that left it running");
	/* Changed through the mappings of its deleted files: the delta must have it. */
	{
		char line[256];

		cr_assert_eq(write(p.in_fd, "bump\n", 5), 5);
		cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0);
		cr_assert_str_eq(line, "bumped");
	}
	expect_checks(&p, items, ARRAY_SIZE(items), "after the change");
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", path_in("c1", c1, sizeof(c1)), "--parent", c0, NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_wait(&p, 10000);
	restore(&rp, c1, false);
	expect_checks(&rp, items, ARRAY_SIZE(items), "after the restore of a delta");
	prog_kill(&rp);
}
Test(fid_files, lazy, .timeout = 120) { round_trip(true); }

/* ---- a ghost file over the limit ---- */

/* @mode "big": open, not mapped; "bigmap": mapped shared and written, not open. */
static void over_limit(const char *mode, const char *size, const char *limit, const char *says)
{
	static const char *const big[] = { "ghost-big" };
	struct prog p, rp;
	struct run_result r;
	char sdir[128], dir[128], want[512], bigpath[160];
	struct stat st;

	scratch(sdir, sizeof(sdir));
	cr_assert_eq(prog_start(&p, true, 10000, "fid_files", mode, sdir, size, NULL), 0);
	expect_checks(&p, big, 1, "before the dump");
	cr_assert_eq(dump(&p, path_in("c", dir, sizeof(dir)), limit, &r), 4, "dump of a ghost file of %s "
		     "bytes, limit %s: status %d: %s", size, limit ? limit : "default", r.status, r.err);
	snprintf(bigpath, sizeof(bigpath), "%s/big", sdir);
	snprintf(want, sizeof(want), "(%s): not restorable: a %sdeleted file of %s bytes, over the ghost limit of %s "
		 "bytes (--ghost-limit)", bigpath, strcmp(mode, "big") ? "shared mapping of a " : "", size, says);
	cr_expect(strstr(r.err, want), "no '%s' in: %s", want, r.err);
	run_result_done(&r);
	cr_expect_neq(stat(dir, &st), 0, "the refused dump left '%s'", dir);
	/* Untouched: it runs on and sees its file as it was. */
	expect_checks(&p, big, 1, "after the refused dump");

	/* With room for it: saved, and back. */
	cr_assert_eq(dump(&p, dir, "4M", &r), 0, "%s", r.err);
	run_result_done(&r);
	prog_wait(&p, 10000);
	restore(&rp, dir, false);
	expect_checks(&rp, big, 1, "after the restore");
	prog_kill(&rp);
}

Test(fid_files, ghost_over_the_default_limit, .timeout = 120) { over_limit("big", "1048577", NULL, "1048576"); }
Test(fid_files, ghost_over_a_given_limit, .timeout = 120) { over_limit("big", "5000", "4K", "4096"); }
/* Mapped shared, not open: refused the same way; with room, the mapping shows the file again. */
Test(fid_files, ghost_mapped_over_a_given_limit, .timeout = 120)
{
	over_limit("bigmap", "20000", "16K", "16384");
}

/* ---- a damaged blob ---- */

/* How many processes have @needle in their command line. */
static int count_procs(const char *needle)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		char path[300], buf[4096];
		ssize_t len;
		int fd;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		for (ssize_t i = 0; i < len; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[len > 0 ? len : 0] = '\0';
		n += strstr(buf, needle) != NULL && !strstr(buf, "ckpt");
	}
	closedir(d);
	return n;
}

enum damage { FLIP, CUT, FLIP_MAP };

/* The name of the first blob-map-ADDR file of @dir (a deleted file only mapped). */
static void map_blob(const char *dir, char *buf, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	cr_assert_not_null(d);
	buf[0] = '\0';
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "blob-map-", 9)) {
			snprintf(buf, len, "%s", de->d_name);
			break;
		}
	closedir(d);
	cr_assert(buf[0], "no blob-map-* in '%s'", dir);
}

static void damaged(enum damage how, bool lazy)
{
	struct prog p;
	struct run_result r;
	char sdir[128], dir[128], blob[512], names[1024], name[256];
	const char *argv_lazy[] = { "--lazy", NULL };
	struct stat st;
	int fd;

	scratch(sdir, sizeof(sdir));
	cr_assert_eq(prog_start(&p, true, 10000, "fid_files", sdir, NULL), 0);
	cr_assert_eq(dump(&p, path_in("c", dir, sizeof(dir)), NULL, &r), 0, "%s", r.err);
	run_result_done(&r);
	prog_wait(&p, 10000);

	/* The ghost file's blob: fd 8 of the target is its first fd; or the mapping-only one's. */
	snprintf(name, sizeof(name), "blob-fd-8");
	if (how == FLIP_MAP)
		map_blob(dir, name, sizeof(name));
	snprintf(blob, sizeof(blob), "%s/%s", dir, name);
	cr_assert_eq(stat(blob, &st), 0, "no blob '%s'", blob);
	fd = open(blob, O_RDWR);
	cr_assert_geq(fd, 0);
	if (how != CUT)
		cr_assert_eq(pwrite(fd, "\xff", 1, st.st_size / 2), 1);
	else
		cr_assert_eq(ftruncate(fd, st.st_size - 1), 0);
	close(fd);

	if (lazy)
		cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--stdio", "null", argv_lazy[0], NULL), 0);
	else
		cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--stdio", "null", NULL), 0);
	cr_expect_eq(r.status, 1, "restore of a damaged blob: status %d: %s", r.status, r.err);
	cr_expect(strstr(r.err, name) && strstr(r.err, "corrupt"), "%s", r.err);
	if (how == CUT)
		cr_expect(strstr(r.err, "9999 bytes, the checkpoint says 10000"), "%s", r.err);
	run_result_done(&r);
	/* Nothing half made: no process, no file made again. */
	cr_expect_eq(count_procs(sdir), 0, "a process of the checkpoint runs after the refusal");
	cr_expect_eq(nr_entries(sdir, names, sizeof(names)), 0, "the refused restore left: %s", names);
}

Test(fid_files, corrupt_blob, .timeout = 120) { damaged(FLIP, false); }
Test(fid_files, truncated_blob, .timeout = 120) { damaged(CUT, false); }
Test(fid_files, truncated_blob_lazy, .timeout = 120) { damaged(CUT, true); }
Test(fid_files, corrupt_blob_of_a_mapped_file, .timeout = 120) { damaged(FLIP_MAP, false); }
