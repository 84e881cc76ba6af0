/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL, a real server nobody here wrote (issues 15 and 16): a
 * postmaster and its workers (a process tree), shared memory (mmap and a
 * System V segment), pipes and sockets between them, a TCP listener and a
 * connected psql session. Made with initdb in a temporary directory, run as
 * nobody, dumped in kill mode with --tcp-established, restored; the session
 * goes on over its connection, a new connection finds the data intact.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers/testutil.h"

static char tmp[64];
static char bindir[256];
static int port;

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "postgres-test");
}

static void teardown(void)
{
	char cmd[512];

	/* The server, whoever made it (the original or the restored tree). */
	snprintf(cmd, sizeof(cmd), "pkill -KILL -f 'postgres -D %s/data' 2>/dev/null", tmp);
	(void)!system(cmd);
	prog_kill_all();
	suite_dir_remove(tmp, NULL);
}

TestSuite(postgres, .init = setup, .fini = teardown, .timeout = 240);

/* The server's binaries (Debian's postgresql package), or a skip. */
static void find_postgres(void)
{
	glob_t g;

	if (geteuid() != 0)
		cr_skip_test("needs root (the server runs as nobody, the dump blocks TCP with nft)");
	if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0 || !g.gl_pathc)
		cr_skip_test("PostgreSQL is not installed (scripts/install-deps installs it)");
	snprintf(bindir, sizeof(bindir), "%.*s", (int)(strlen(g.gl_pathv[g.gl_pathc - 1]) - strlen("/postgres")),
		 g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	if (access("/usr/bin/psql", X_OK) || sh("command -v nft >/dev/null") != 0)
		cr_skip_test("needs psql and nft (scripts/install-deps installs them)");
	port = 20000 + getpid() % 20000;
	/* Criterion's own fds (its arena) are not for the server to inherit through system(). */
	(void)syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
}

#define AS_NOBODY "setpriv --reuid=65534 --regid=65534 --clear-groups"

static int psql(const char *sql, const char *out)
{
	return sh("psql -h 127.0.0.1 -p %d -U postgres -At -c \"%s\" > %s 2>&1", port, sql, out);
}

/* The postmaster's pid, once it answers. */
static pid_t start_server(void)
{
	char path[256], out[256];
	FILE *f;
	int pid = 0;

	cr_assert_eq(sh("chown 65534:65534 %s && cd %s && " AS_NOBODY " %s/initdb -D %s/data -A trust -U postgres "
			"> %s/initdb.log 2>&1", tmp, tmp, bindir, tmp, tmp), 0, "initdb failed (see %s/initdb.log)", tmp);
	cr_assert_eq(sh("cd %s && " AS_NOBODY " %s/postgres -D %s/data -k %s -p %d -c listen_addresses=127.0.0.1 "
			"> %s/server.log 2>&1 &", tmp, bindir, tmp, tmp, port, tmp), 0);
	snprintf(out, sizeof(out), "%s/ping.out", tmp);
	for (int i = 0; i < 100 && psql("select 1", out) != 0; i++)
		usleep(100000);
	cr_assert_eq(psql("select 1", out), 0, "the server does not answer (see %s/server.log)", tmp);
	snprintf(path, sizeof(path), "%s/data/postmaster.pid", tmp);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &pid), 1);
	fclose(f);
	prog_track_pid(pid);
	return pid;
}

/* The lines of @path, as one string (at most @len). */
static const char *slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Wait until @path holds @want, at most 20 s. */
static bool wait_for(const char *path, const char *want)
{
	char buf[4096];

	for (int i = 0; i < 200; i++) {
		if (strstr(slurp(path, buf, sizeof(buf)), want))
			return true;
		usleep(100000);
	}
	return false;
}

Test(postgres, a_server_and_its_session_survive_dump_and_restore)
{
	char fifo[192], out[192], ck[192], buf[4096], pid_s[16];
	struct run_result r;
	pid_t pm;
	int session;

	find_postgres();
	pm = start_server();
	snprintf(out, sizeof(out), "%s/q.out", tmp);
	cr_assert_eq(psql("create table t(x int); insert into t select generate_series(1, 1000)", out), 0, "%s",
		     slurp(out, buf, sizeof(buf)));

	/* A psql session that stays connected, fed through a fifo. */
	snprintf(fifo, sizeof(fifo), "%s/session.fifo", tmp);
	snprintf(out, sizeof(out), "%s/session.out", tmp);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	cr_assert_eq(sh("psql -h 127.0.0.1 -p %d -U postgres -At < %s > %s 2>&1 &", port, fifo, out), 0);
	session = open(fifo, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(session, 0);
	dprintf(session, "select 'before', count(*), sum(x) from t;\n");
	cr_assert(wait_for(out, "before|1000|500500"), "%s", slurp(out, buf, sizeof(buf)));

	snprintf(ck, sizeof(ck), "%s/ckpt", tmp);
	snprintf(pid_s, sizeof(pid_s), "%d", pm);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid_s, "-D", ck, "--tcp-established", NULL), 0);
	cr_assert_eq(r.status, 0, "dump: %s", r.err);
	cr_expect(strstr(r.out, "processes"), "not a tree: %s", r.out);
	run_result_done(&r);
	for (int i = 0; i < 300 && kill(pm, 0) == 0; i++)
		usleep(10000);
	cr_assert_neq(kill(pm, 0), 0, "the postmaster outlived a kill-mode dump");

	cr_assert_eq(run_ckpt(&r, "restore", "-D", ck, "--detach", "--stdio", "null", NULL), 0);
	cr_assert_eq(r.status, 0, "restore: %s", r.err);
	run_result_done(&r);

	/* The session goes on over the same connection. */
	dprintf(session, "insert into t values (1001); select 'after', count(*), sum(x) from t;\n");
	cr_expect(wait_for(out, "after|1001|501501"), "the session after restore: %s", slurp(out, buf, sizeof(buf)));
	close(session);
	/* A new connection: the data, and the server works (a write, a checkpoint of its own). */
	snprintf(out, sizeof(out), "%s/q2.out", tmp);
	cr_expect_eq(psql("checkpoint; select 'new', count(*), sum(x) from t", out), 0, "%s", slurp(out, buf, sizeof(buf)));
	cr_expect(strstr(slurp(out, buf, sizeof(buf)), "new|1001|501501"), "%s", buf);
}
