/* SPDX-License-Identifier: MIT */
/*
 * Process trees of real programs nobody here wrote (issue 15), each
 * checkpointed midway, restored, and compared with an uninterrupted run of
 * the same work, four ways: a kill-mode dump restored eagerly, and lazily;
 * a delta of a dump that left it running; continuous checkpoints (track
 * -D) and the tree killed, DIR/latest restored:
 *   - bash -c 'python3 gen.py | gzip > out.gz', through the bash: the
 *     output decompresses to exactly what gen.py prints;
 *   - python3 driving a python3 child through subprocess.Popen pipes
 *     (both keep state; the parent waits for the child at the end);
 *   - make -j2 of a small C tree: the build finishes, and its objects and
 *     program are those of a build nobody stopped.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/testutil.h"

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "treereal-test");
}

static void teardown(void)
{
	prog_kill_all();
	suite_dir_remove(tmp, NULL);
}

TestSuite(tree_real, .init = setup, .fini = teardown, .timeout = 240);

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

/* Wait (asserting, @secs at most) until @path exists. */
static void wait_file(const char *path, int secs)
{
	for (int i = 0; i < secs * 20; i++) {
		if (access(path, F_OK) == 0)
			return;
		usleep(50000);
	}
	cr_assert_fail("'%s' did not appear in %d s", path, secs);
}

enum mode { EAGER, LAZY, DELTA, TRACK_D, NR_MODES };
static const char *const mode_names[NR_MODES] = { "eager", "lazy", "delta", "track-d" };

/* The dump's count of processes in @out ("N processes,") at least @min. */
static void expect_procs(const char *out, size_t min)
{
	const char *n = strstr(out, " processes,");

	if (n) {
		while (n > out && n[-1] != ' ')
			n--;
	}
	cr_expect(n && (size_t)atoi(n) >= min, "fewer than %zu processes: %s", min, out);
}

/*
 * Run `bash -c SCRIPT` in @dir (stdout and stderr to @dir/run.log), let it
 * work @ms, checkpoint its tree, restore it detached, and wait for @done to
 * appear. @mode: a kill-mode dump restored eagerly, or lazily; a delta (a
 * dump --leave-running halfway, then a kill-mode delta of it); or
 * continuous checkpoints (track -D from halfway, two of them; then the tree
 * is killed and DIR/latest restored). @min_procs: the dump must have seen
 * at least that many.
 */
static void checkpoint_midway(const char *dir, const char *script, int ms, const char *done, size_t min_procs,
			      enum mode mode)
{
	char log[256], img[256], base[256], pid_s[16], full[1024];
	const char *argv[] = { "/bin/bash", "-c", full, NULL };
	struct run_result r;
	struct prog p;
	pid_t root;

	snprintf(log, sizeof(log), "%s/run.log", dir);
	snprintf(full, sizeof(full), "cd %s && %s", dir, script);
	cr_assert_eq(prog_spawn(&p, false, log, argv), 0);
	root = p.pid; /* prog_wait forgets it */
	snprintf(pid_s, sizeof(pid_s), "%d", root);
	snprintf(img, sizeof(img), "%s.img", dir);
	snprintf(base, sizeof(base), "%s.base", dir);
	usleep((useconds_t)ms * 500);
	if (mode == DELTA) {
		cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", base, "--leave-running", NULL), 0);
		cr_assert_eq(r.status, 0, "dump --leave-running: %s", r.err);
		run_result_done(&r);
	}
	if (mode == TRACK_D) {
		cr_assert_eq(run_ckpt(&r, "track", "-t", pid_s, "-D", img, "--interval", "200ms", "--count", "2", NULL), 0);
		cr_assert_eq(r.status, 0, "track -D: %s", r.err);
		cr_expect(strstr(r.err, "whole process tree"), "%s", r.err);
		run_result_done(&r);
		/* The tree, killed: the checkpoints are all that is left of it. */
		kill(-root, SIGKILL);
		prog_wait(&p, 5000);
		sh("for i in $(seq 1000); do pgrep -g %d >/dev/null || break; sleep 0.01; done", root);
		cr_assert(access(done, F_OK) != 0, "the work finished before the checkpoint: make it longer");
		snprintf(img, sizeof(img), "%s.img/latest", dir);
	} else {
		usleep((useconds_t)ms * 500);
		cr_assert(access(done, F_OK) != 0, "the work finished before the checkpoint: make it longer");
		if (mode == DELTA)
			cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", img, "--parent", base, NULL), 0);
		else
			cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", img, NULL), 0);
		cr_assert_eq(r.status, 0, "dump: %s", r.err);
		expect_procs(r.out, min_procs);
		if (mode == DELTA)
			cr_expect(strstr(r.out, "delta of"), "%s", r.out);
		run_result_done(&r);
		prog_wait(&p, 5000);
	}
	if (mode == LAZY)
		cr_assert_eq(run_ckpt(&r, "restore", "-D", img, "--detach", "--stdio", "null", "--lazy", NULL), 0);
	else
		cr_assert_eq(run_ckpt(&r, "restore", "-D", img, "--detach", "--stdio", "null", NULL), 0);
	cr_assert_eq(r.status, 0, "restore (%s): %s", mode_names[mode], r.err);
	run_result_done(&r);
	prog_track_pid(root);
	wait_file(done, 120);
	/* The restored tree is gone with its work done; its pids free for the next mode. */
	sh("for i in $(seq 1000); do pgrep -g %d >/dev/null || break; sleep 0.01; done", root);
}

static const char gen_py[] =
	"import os, sys, time\n"
	"slow = os.environ.get('SLOW') == '1'\n"
	"for i in range(60000):\n"
	"    sys.stdout.write('%d %d\\n' % (i, (i * i * 2654435761) % 1000003))\n"
	"    if i % 300 == 0:\n"
	"        sys.stdout.flush()\n"
	"        if slow:\n"
	"            time.sleep(0.01)\n";

Test(tree_real, bash_pipeline_into_gzip)
{
	char dir[128], done[192];

	if (access("/usr/bin/python3", X_OK) || access("/usr/bin/gzip", X_OK))
		cr_skip_test("needs /usr/bin/python3 and gzip");
	for (int m = 0; m < NR_MODES; m++) {
		snprintf(dir, sizeof(dir), "%s/gzip-%s", tmp, mode_names[m]);
		cr_assert_eq(mkdir(dir, 0700), 0);
		write_file(dir, "gen.py", gen_py);
		cr_assert_eq(sh("cd %s && /usr/bin/python3 gen.py > ref.txt", dir), 0);
		snprintf(done, sizeof(done), "%s/done", dir);
		checkpoint_midway(dir, "SLOW=1 /usr/bin/python3 gen.py | gzip > out.gz; echo $? > done", 700, done, 3,
				  (enum mode)m);
		cr_expect_eq(sh("cd %s && gzip -dc out.gz | cmp - ref.txt", dir), 0,
			     "%s: the restored pipeline's output is not the uninterrupted one's", mode_names[m]);
	}
}

static const char popen_py[] =
	"import subprocess, sys, time\n"
	"child = '''\n"
	"import sys\n"
	"acc = 0\n"
	"for line in sys.stdin:\n"
	"    acc = (acc * 7 + int(line)) % 1000003\n"
	"    print(acc, flush=True)\n"
	"'''\n"
	"slow = len(sys.argv) > 2\n"
	"p = subprocess.Popen([sys.executable, '-c', child], stdin=subprocess.PIPE, stdout=subprocess.PIPE)\n"
	"out = open(sys.argv[1], 'w')\n"
	"h = 0\n"
	"for i in range(250):\n"
	"    p.stdin.write(b'%d\\n' % i)\n"
	"    p.stdin.flush()\n"
	"    ans = int(p.stdout.readline())\n"
	"    h = (h * 31 + ans) % 1000000007\n"
	"    out.write('%d %d %d\\n' % (i, ans, h))\n"
	"    out.flush()\n"
	"    if slow:\n"
	"        time.sleep(0.01)\n"
	"p.stdin.close()\n"
	"out.write('child exit %d\\n' % p.wait())\n"
	"out.close()\n";

Test(tree_real, python_subprocess_with_pipes)
{
	char dir[128], done[192];

	if (access("/usr/bin/python3", X_OK))
		cr_skip_test("needs /usr/bin/python3");
	for (int m = 0; m < NR_MODES; m++) {
		snprintf(dir, sizeof(dir), "%s/popen-%s", tmp, mode_names[m]);
		cr_assert_eq(mkdir(dir, 0700), 0);
		write_file(dir, "popen.py", popen_py);
		cr_assert_eq(sh("cd %s && /usr/bin/python3 popen.py ref.txt", dir), 0);
		snprintf(done, sizeof(done), "%s/done", dir);
		checkpoint_midway(dir, "/usr/bin/python3 popen.py out.txt slow; echo $? > done", 1200, done, 2,
				  (enum mode)m);
		cr_expect_eq(sh("cd %s && cmp out.txt ref.txt && grep -q '^0$' done", dir), 0,
			     "%s: the restored parent and child did not finish as an uninterrupted run", mode_names[m]);
	}
}

/* A small C tree (12 files and main.c, each compile waiting a little first) in @dir. */
static void make_tree(const char *dir)
{
	char name[32], src[256];

	cr_assert_eq(mkdir(dir, 0700), 0);
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "f%d.c", i);
		snprintf(src, sizeof(src),
			 "unsigned long f%d(unsigned long x) { for (int k = 0; k < %d; k++) x = x * 6364136223846793005UL + %d; return x; }\n",
			 i, 100 + i, i);
		write_file(dir, name, src);
	}
	{
		char m[2048];
		int n = snprintf(m, sizeof(m), "#include <stdio.h>\n");

		for (int i = 0; i < 12; i++)
			n += snprintf(m + n, sizeof(m) - (size_t)n, "unsigned long f%d(unsigned long);\n", i);
		n += snprintf(m + n, sizeof(m) - (size_t)n, "int main(void) { unsigned long x = 1;\n");
		for (int i = 0; i < 12; i++)
			n += snprintf(m + n, sizeof(m) - (size_t)n, "x = f%d(x);\n", i);
		snprintf(m + n, sizeof(m) - (size_t)n, "printf(\"%%lu\\n\", x); return 0; }\n");
		write_file(dir, "main.c", m);
	}
	/* The checkpoint lands in the middle of the build. */
	write_file(dir, "Makefile",
		   "OBJS := $(patsubst %.c,%.o,$(wildcard *.c))\n"
		   "prog: $(OBJS)\n\tgcc -o $@ $(OBJS)\n"
		   "%.o: %.c\n\tsleep 0.15; gcc -O2 -pipe -c $< -o $@\n");
}

Test(tree_real, make_j2_of_a_small_c_tree)
{
	char dir[128], ref[160], done[192];

	if (access("/usr/bin/make", X_OK) || access("/usr/bin/gcc", X_OK))
		cr_skip_test("needs make and gcc");
	snprintf(ref, sizeof(ref), "%s/make-ref", tmp);
	make_tree(ref);
	cr_assert_eq(sh("make -s -j2 -C %s >/dev/null 2>&1", ref), 0);
	for (int m = 0; m < NR_MODES; m++) {
		snprintf(dir, sizeof(dir), "%s/make-%s", tmp, mode_names[m]);
		make_tree(dir);
		snprintf(done, sizeof(done), "%s/done", dir);
		checkpoint_midway(dir, "make -j2 > make.log 2>&1; echo $? > done", 800, done, 2, (enum mode)m);
		cr_expect_eq(sh("grep -q '^0$' %s", done), 0, "%s: make failed after the restore", mode_names[m]);
		cr_expect_eq(sh("cd %s && for o in *.o; do cmp $o %s/$o || exit 1; done", dir, ref), 0,
			     "%s: an object differs from the uninterrupted build's", mode_names[m]);
		cr_expect_eq(sh("test \"$(%s/prog)\" = \"$(%s/prog)\"", dir, ref), 0,
			     "%s: the program prints another result", mode_names[m]);
	}
}
