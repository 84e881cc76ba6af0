/* SPDX-License-Identifier: MIT */
/*
 * Stdio that is a pipe or a fifo is never lost silently: dump names every
 * pipe and fifo and the bytes left in them; restore opens a fifo again by
 * its path, takes pipes handed in with --inherit-fd, refuses a pipe it has
 * no way to reconnect, and with --detach never hands the process a pipe
 * that is ckpt's own stdout.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/restorecmp.h"
#include "helpers/testutil.h"

static char tmp[64];

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/ckpt-stdio-test-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	setenv("CKPT_RUNDIR", tmp, 1);
	/* A pipe whose reader died fails the write (asserted), not the test process. */
	signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(stdio, .init = setup, .fini = teardown, .timeout = 120);

static char *path_in(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", tmp, name);
	return buf;
}

/*
 * Start @argv with fds 0, 1 and 2: @in_path opened read-only in the child
 * (a fifo: it waits there for a writer) or @in_fd; @out_fd or the file
 * @out_path; stderr /dev/null. Tracked for the suite's cleanup.
 */
static pid_t spawn(const char *const *argv, const char *in_path, int in_fd, const char *out_path, int out_fd)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int in = in_path ? open(in_path, O_RDONLY) : in_fd;
		int out = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : out_fd;
		int null = open("/dev/null", O_WRONLY);

		if (in < 0 || out < 0 || null < 0)
			_exit(126);
		dup2(in, 0);
		dup2(out, 1);
		dup2(null, 2);
		setpgid(0, 0);
		syscall(SYS_close_range, 3, ~0U, 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	prog_track_pid(pid);
	return pid;
}

static const char *target(void)
{
	static char buf[4096];

	return prog_path("target", buf, sizeof(buf));
}

static uint64_t ino_of(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return st.st_ino;
}

/* Wait (10 s at most) until the file @path holds @want. */
static void wait_for_text(const char *path, const char *want)
{
	double end = mono_s() + 10;
	char buf[65536];

	for (;;) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = '\0';
		if (strstr(buf, want))
			return;
		cr_assert_lt(mono_s(), end, "'%s' never came into %s; it holds: '%s'", want, path, buf);
		usleep(10000);
	}
}

static void write_str(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));

	cr_assert_eq(n, (ssize_t)strlen(s), "cannot write '%.*s' to fd %d: %s", (int)strcspn(s, "\n"), s, fd,
		     n < 0 ? strerror(errno) : "short write");
}

static void expect_line(struct prog *p, const char *want)
{
	char line[256];
	int r = prog_read_line(p, line, sizeof(line), 10000);

	cr_assert_geq(r, 0, "no line (%s), expected '%s'", strerror(-r), want);
	cr_assert_str_eq(line, want);
}

static void dump_json(pid_t pid, const char *dir, const char *mode, struct run_result *r, json_object **ret)
{
	char ps[16];

	snprintf(ps, sizeof(ps), "%d", pid);
	cr_assert_eq(run_ckpt(r, "dump", "-t", ps, "-D", dir, "--json", mode, NULL), 0);
	cr_assert_eq(r->status, 0, "dump of %d failed: %s", pid, r->err);
	*ret = json_tokener_parse(r->out);
	cr_assert_not_null(*ret, "not JSON: %s", r->out);
}

/* The entry of "pipes" of a dump's JSON for @fd, or NULL. */
static json_object *pipe_entry(json_object *dump, int fd)
{
	json_object *pipes, *e, *v;

	cr_assert(json_object_object_get_ex(dump, "pipes", &pipes));
	for (size_t i = 0; i < json_object_array_length(pipes); i++) {
		e = json_object_array_get_idx(pipes, i);
		if (json_object_object_get_ex(e, "fd", &v) && json_object_get_int(v) == fd)
			return e;
	}
	return NULL;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key, json_object_to_json_string(o));
	return json_object_get_string(v);
}

static uint64_t ju64(json_object *o, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key, json_object_to_json_string(o));
	return json_object_get_uint64(v);
}

static bool alive(pid_t pid)
{
	char path[64], st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fscanf(f, "%*d (%*[^)]) %c", &st) != 1)
		st = 0;
	fclose(f);
	return st && st != 'Z' && st != 'X';
}

/* ---- a fifo: named by dump, opened again by path ---- */

Test(stdio, a_fifo_on_stdin_is_opened_again_by_its_path)
{
	char fifo[128], out[128], d[128], line[256];
	const char *argv[] = { target(), "read", NULL };
	const char *rargv[] = { ckpt_bin(), "restore", "-D", d, "--detach", NULL };
	struct run_result r;
	json_object *j, *e;
	struct prog rp;
	pid_t pid, npid;
	int w;

	cr_assert_eq(mkfifo(path_in("fifo", fifo, sizeof(fifo)), 0600), 0);
	pid = spawn(argv, fifo, -1, path_in("out", out, sizeof(out)), -1);
	w = open(fifo, O_WRONLY); /* meets the target's open */
	cr_assert_geq(w, 0);
	write_str(w, "one\n");
	wait_for_text(out, "got one\n");

	dump_json(pid, path_in("d", d, sizeof(d)), NULL, &r, &j);
	e = pipe_entry(j, 0);
	cr_assert_not_null(e, "fd 0 (a fifo) is not among the pipes: %s", r.out);
	cr_expect_str_eq(jstr(e, "kind"), "fifo");
	cr_expect_str_eq(jstr(e, "path"), fifo);
	cr_expect_str_eq(jstr(e, "access"), "read");
	cr_expect_str_eq(jstr(e, "restore"), "reopen");
	json_object_put(j);
	run_result_done(&r);
	close(w);
	cr_assert_eq(waitpid(pid, NULL, 0), pid); /* killed by the dump */

	/* The restore waits for a writer of the fifo, as open(2) would. */
	cr_assert_eq(prog_spawn(&rp, false, NULL, rargv), 0);
	usleep(300000);
	cr_expect_eq(prog_read_line(&rp, line, sizeof(line), 0), -ETIMEDOUT,
		     "restore went on without a writer of the fifo");
	w = open(fifo, O_WRONLY);
	cr_assert_geq(w, 0);
	cr_assert_geq(prog_read_line(&rp, line, sizeof(line), 10000), 0, "no pid from restore --detach");
	npid = atoi(line);
	cr_assert_gt(npid, 0, "'%s'", line);
	prog_track_pid(npid);
	write_str(w, "two\n");
	wait_for_text(out, "got one\ngot two\n");
	cr_expect(alive(npid));
	/* Its writer gone, the restored process reads EOF and ends. */
	close(w);
	for (int i = 0; i < 500 && alive(npid); i++)
		usleep(10000);
	cr_expect(!alive(npid), "the restored process did not see the end of the fifo");
	prog_wait(&rp, 5000);
	prog_kill(&rp);
}

/* ---- a pipe: named by dump, refused without a way to reconnect it, or handed in ---- */

Test(stdio, a_pipe_is_refused_without_inherit_fd_and_taken_with_it)
{
	char d[128], key0[64], key1[64], arg0[128], arg1[128];
	const char *argv[] = { target(), "read", NULL };
	int in[2], out[2];
	struct run_result r;
	struct prog p = { .in_fd = -1, .out_fd = -1 }, rp;
	json_object *j, *e;
	pid_t pid;

	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	pid = spawn(argv, NULL, in[0], NULL, out[1]);
	close(in[0]);
	close(out[1]);
	p.out_fd = out[0];
	expect_line(&p, "ready");
	write_str(in[1], "one\n");
	expect_line(&p, "got one");
	snprintf(key0, sizeof(key0), "pipe:[%" PRIu64 "]", ino_of(in[1]));
	snprintf(key1, sizeof(key1), "pipe:[%" PRIu64 "]", ino_of(out[0]));

	dump_json(pid, path_in("d", d, sizeof(d)), NULL, &r, &j);
	e = pipe_entry(j, 0);
	cr_assert_not_null(e, "%s", r.out);
	cr_expect_str_eq(jstr(e, "kind"), "pipe");
	cr_expect_str_eq(jstr(e, "key"), key0);
	cr_expect_str_eq(jstr(e, "access"), "read");
	cr_expect_str_eq(jstr(e, "restore"), "inherit_fd");
	e = pipe_entry(j, 1);
	cr_assert_not_null(e, "%s", r.out);
	cr_expect_str_eq(jstr(e, "key"), key1);
	cr_expect_str_eq(jstr(e, "access"), "write");
	json_object_put(j);
	run_result_done(&r);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	close(in[1]);
	close(out[0]);

	/* No way to reconnect them: refused, naming what to give. */
	cr_assert_eq(run_ckpt(&r, "restore", "-D", d, NULL), 0);
	cr_expect_eq(r.status, 1, "%s", r.err);
	snprintf(arg0, sizeof(arg0), "--inherit-fd fd[N]:%s", key0);
	cr_expect(strstr(r.err, arg0), "the refusal does not name '%s': %s", arg0, r.err);
	run_result_done(&r);
	/* A key that names nothing, and an fd ckpt does not have, are refused too. */
	cr_assert_eq(run_ckpt(&r, "restore", "-D", d, "--inherit-fd", "fd[0]:pipe:[1]", "--stdio", "null", NULL), 0);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "pipe:[1]"), "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "restore", "-D", d, "--inherit-fd", "fd[0", NULL), 0);
	cr_expect_eq(r.status, 2, "%s", r.err);
	run_result_done(&r);

	/* Handed in: ckpt's own stdin and stdout (new pipes) take their place. */
	snprintf(arg0, sizeof(arg0), "fd[0]:%s", key0);
	snprintf(arg1, sizeof(arg1), "fd[1]:%s", key1);
	{
		const char *rargv[] = { ckpt_bin(), "restore", "-D", d, "--inherit-fd", arg0,
					"--inherit-fd", arg1, NULL };
		int status;

		cr_assert_eq(prog_spawn(&rp, true, NULL, rargv), 0);
		write_str(rp.in_fd, "two\n");
		expect_line(&rp, "got two");
		write_str(rp.in_fd, "three\n");
		expect_line(&rp, "got three");
		close(rp.in_fd);
		rp.in_fd = -1;
		/* EOF on its new stdin: it ends, and ckpt with its status. */
		status = prog_wait(&rp, 10000);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
		prog_kill(&rp);
	}
}

/* ---- bytes left in a pipe are named at dump, and not brought back ---- */

/*
 * Start @argv reading stdin from a pipe, stdout on another (@p), wait for
 * "ready", stop it, and put @data in its stdin pipe: it stays there. The
 * write end goes to @ret_in.
 */
static pid_t stopped_reader(const char *const *argv, struct prog *p, int *ret_in, const char *data)
{
	int in[2], out[2];
	pid_t pid;

	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	pid = spawn(argv, NULL, in[0], NULL, out[1]);
	close(in[0]);
	close(out[1]);
	p->out_fd = out[0];
	expect_line(p, "ready");
	cr_assert_eq(kill(pid, SIGSTOP), 0);
	wait_stopped(pid);
	write_str(in[1], data);
	*ret_in = in[1];
	return pid;
}

Test(stdio, bytes_left_in_a_pipe_are_named_at_dump)
{
	char d[128], key0[64], arg0[128], arg1[128], line[256], want[256];
	const char *argv[] = { target(), "read", NULL };
	int in_w;
	struct run_result r;
	struct prog p = { .in_fd = -1, .out_fd = -1 }, rp;
	json_object *j, *e;
	pid_t pid, npid;

	/* Stopped, it reads nothing: the bytes stay in the pipe. */
	pid = stopped_reader(argv, &p, &in_w, "lost\n");
	snprintf(key0, sizeof(key0), "pipe:[%" PRIu64 "]", ino_of(in_w));

	dump_json(pid, path_in("d", d, sizeof(d)), NULL, &r, &j);
	e = pipe_entry(j, 0);
	cr_assert_not_null(e, "%s", r.out);
	cr_expect_eq(ju64(e, "queued_bytes"), 5);
	snprintf(want, sizeof(want), "5 bytes in %s on fd 0 of pid %d will not be restored", key0, pid);
	cr_expect(strstr(r.err, want), "no '%s' in: %s", want, r.err);
	e = pipe_entry(j, 1);
	cr_assert_not_null(e, "%s", r.out);
	cr_expect_eq(ju64(e, "queued_bytes"), 0);
	json_object_put(j);
	run_result_done(&r);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	close(in_w);

	/* The text report says it too. */
	{
		char ps[16], d2[128];
		struct prog q = { .in_fd = -1, .out_fd = -1 };
		int in2_w;
		pid_t pid2;

		pid2 = stopped_reader(argv, &q, &in2_w, "xyz\n");
		snprintf(ps, sizeof(ps), "%d", pid2);
		cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", path_in("d2", d2, sizeof(d2)), NULL), 0);
		cr_assert_eq(r.status, 0, "%s", r.err);
		snprintf(want, sizeof(want), "fd 0 is pipe:[%" PRIu64 "] (read end): restore needs --inherit-fd",
			 ino_of(in2_w));
		cr_expect(strstr(r.out, want), "no '%s' in: %s", want, r.out);
		cr_expect(strstr(r.out, "the 4 bytes in it are not saved"), "%s", r.out);
		run_result_done(&r);
		close(in2_w);
		close(q.out_fd);
	}

	/* Restored (stopped, as it was) with a new stdin: it reads what comes now, not the lost bytes. */
	snprintf(arg0, sizeof(arg0), "fd[0]:%s", key0);
	snprintf(arg1, sizeof(arg1), "fd[1]:pipe:[%" PRIu64 "]", ino_of(p.out_fd));
	close(p.out_fd);
	{
		const char *rargv[] = { ckpt_bin(), "restore", "-D", d, "--detach", "--inherit-fd", arg0,
					"--inherit-fd", arg1, NULL };

		cr_assert_eq(prog_spawn(&rp, true, NULL, rargv), 0);
		/* Asked for with --inherit-fd: ckpt's stdout is the process's, even detached. */
		cr_assert_geq(prog_read_line(&rp, line, sizeof(line), 10000), 0);
		npid = atoi(line);
		cr_assert_gt(npid, 0, "'%s'", line);
		prog_track_pid(npid);
		/* Once ckpt has exited, its orphaned process group must not take the stopped process along. */
		cr_assert_eq(prog_wait(&rp, 10000), 0, "ckpt restore --detach did not exit 0");
		cr_assert_neq(proc_state(npid), 0, "the restored process %d died with ckpt", npid);
		cr_assert_neq(proc_state(npid), 'Z', "the restored process %d died with ckpt", npid);
		write_str(rp.in_fd, "new\n");
		cr_assert_eq(kill(npid, SIGCONT), 0);
		expect_line(&rp, "got new");
		kill(npid, SIGKILL);
		prog_kill(&rp);
	}
}

/* A process restored with --detach runs on, its fd 1 /dev/null (not ckpt's stdout); then it is killed. */
static void detached_on_dev_null(pid_t npid)
{
	char fdpath[64], link[256];
	ssize_t n;

	usleep(200000);
	cr_expect(alive(npid), "the restored process does not run on");
	snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/1", npid);
	n = readlink(fdpath, link, sizeof(link) - 1);
	cr_assert_gt(n, 0);
	link[n] = '\0';
	cr_expect_str_eq(link, "/dev/null");
	kill(npid, SIGKILL);
}

/* ---- --detach never hands the process ckpt's own stdout pipe ---- */

Test(stdio, detach_does_not_give_away_its_stdout_pipe)
{
	char d[128], ps[16];
	const char *argv[] = { target(), "counter", NULL };
	struct prog p = { .in_fd = -1, .out_fd = -1 };
	struct run_result r;
	char line[256];
	int out[2];
	double t0;
	pid_t pid, npid;

	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	pid = spawn(argv, "/dev/null", -1, NULL, out[1]);
	close(out[1]);
	p.out_fd = out[0];
	for (int i = 0; i < 3; i++)
		cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0);
	snprintf(ps, sizeof(ps), "%d", pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", path_in("d", d, sizeof(d)), NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	close(out[0]);

	/*
	 * pid=$(ckpt restore --detach --stdio inherit): run_ckpt reads ckpt's
	 * stdout to its end, which comes at once only if the process does not
	 * hold it.
	 */
	t0 = mono_s();
	cr_assert_eq(run_ckpt(&r, "restore", "-D", d, "--detach", "--stdio", "inherit", NULL), 0);
	cr_expect_lt(mono_s() - t0, 5.0, "restore --detach took %.1f s", mono_s() - t0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	npid = atoi(r.out);
	cr_assert_gt(npid, 0, "'%s'", r.out);
	prog_track_pid(npid);
	cr_expect(strstr(r.out, "tick") == NULL, "the process wrote into ckpt's stdout: %s", r.out);
	cr_expect(strstr(r.err, "fd 1: ckpt's own stdout is a pipe"), "%s", r.err);
	detached_on_dev_null(npid);
	run_result_done(&r);
}

/* ---- a real program: python3 reading a fifo line by line ---- */

static const char consumer[] = "import sys, hashlib\n"
			       "h = hashlib.sha256()\n"
			       "n = 0\n"
			       "for line in sys.stdin:\n"
			       "    n += 1\n"
			       "    h.update(line.encode())\n"
			       "    print(n, h.hexdigest()[:16], flush=True)\n"
			       "print('end', n, flush=True)\n";

static void feed(int fd, int from, int to)
{
	char buf[64];

	for (int i = from; i <= to; i++) {
		snprintf(buf, sizeof(buf), "line %d %s\n", i, i % 3 ? "x" : "yy");
		write_str(fd, buf);
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	cr_assert_not_null(f, "%s", path);
	cr_assert_not_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

Test(stdio, python3_reading_a_fifo_continues_after_restore)
{
	char fifo[128], in[128], out[128], ref[128], d[128], line[256];
	const char *argv[] = { "/usr/bin/python3", "-c", consumer, NULL };
	const char *rargv[] = { ckpt_bin(), "restore", "-D", d, "--detach", NULL };
	struct run_result r;
	struct prog rp;
	json_object *j, *e;
	char *a, *b;
	pid_t pid, npid;
	int w;

	if (access(argv[0], X_OK) < 0)
		cr_skip_test("no python3");
	/* The reference: the same input in one go. */
	w = open(path_in("in", in, sizeof(in)), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(w, 0);
	feed(w, 1, 2000);
	close(w);
	pid = spawn(argv, in, -1, path_in("ref", ref, sizeof(ref)), -1);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);

	cr_assert_eq(mkfifo(path_in("fifo", fifo, sizeof(fifo)), 0600), 0);
	pid = spawn(argv, fifo, -1, path_in("out", out, sizeof(out)), -1);
	w = open(fifo, O_WRONLY);
	cr_assert_geq(w, 0);
	feed(w, 1, 1000);
	wait_for_text(out, "\n1000 ");
	dump_json(pid, path_in("d", d, sizeof(d)), NULL, &r, &j);
	e = pipe_entry(j, 0);
	cr_assert_not_null(e, "%s", r.out);
	cr_expect_str_eq(jstr(e, "restore"), "reopen");
	cr_expect_eq(ju64(e, "queued_bytes"), 0);
	json_object_put(j);
	run_result_done(&r);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	close(w);

	cr_assert_eq(prog_spawn(&rp, false, NULL, rargv), 0);
	w = open(fifo, O_WRONLY);
	cr_assert_geq(w, 0);
	cr_assert_geq(prog_read_line(&rp, line, sizeof(line), 10000), 0, "no pid from restore --detach");
	npid = atoi(line);
	cr_assert_gt(npid, 0, "'%s'", line);
	prog_track_pid(npid);
	feed(w, 1001, 2000);
	close(w);
	wait_for_text(out, "end 2000\n");
	a = slurp(ref);
	b = slurp(out);
	cr_expect(strstr(a, "end 2000\n"), "the reference run is incomplete");
	cr_expect_str_eq(b, a, "the restored run's output differs from the uninterrupted one");
	free(a);
	free(b);
	prog_wait(&rp, 5000);
	prog_kill(&rp);
}

/*
 * The usual case of pid=$(ckpt restore --detach): the program ran on a
 * terminal, and by default a terminal inherits ckpt's own stdout, which
 * here is the pipe of $(...). It must not get it.
 */
Test(stdio, detach_of_a_terminal_program_does_not_give_away_its_stdout_pipe)
{
	char d[128], ps[16], buf[256];
	const char *argv[] = { target(), "counter", NULL };
	struct run_result r;
	int master, slave;
	double t0;
	pid_t pid, npid;
	ssize_t n;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(master, 0);
	cr_assert_eq(grantpt(master), 0);
	cr_assert_eq(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(slave, 0);
	pid = spawn(argv, "/dev/null", -1, NULL, slave);
	close(slave);
	n = read(master, buf, sizeof(buf)); /* it runs */
	cr_assert_gt(n, 0);
	snprintf(ps, sizeof(ps), "%d", pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", path_in("d", d, sizeof(d)), NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);

	t0 = mono_s();
	cr_assert_eq(run_ckpt(&r, "restore", "-D", d, "--detach", NULL), 0);
	cr_expect_lt(mono_s() - t0, 5.0, "restore --detach took %.1f s", mono_s() - t0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	npid = atoi(r.out);
	cr_assert_gt(npid, 0, "'%s'", r.out);
	prog_track_pid(npid);
	cr_expect(strstr(r.out, "tick") == NULL, "the process wrote into ckpt's stdout: %s", r.out);
	detached_on_dev_null(npid);
	run_result_done(&r);
	close(master);
}
