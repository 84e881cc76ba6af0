/* SPDX-License-Identifier: MIT */
/*
 * Sockets (issue 16). test/progs/fid_socks sets up unix socket pairs of
 * each type with queued data both ways, listeners on paths and abstract
 * names, an accepted connection, a peer that is gone, a shut down pair, TCP
 * and UDP sockets over IPv4 and IPv6 with options, a netlink socket; it is
 * dumped in kill mode, restored eagerly and lazily, and checks each itself.
 * A listener's backlog is compared with what a dump of the restored process
 * says. Real servers: python3's http.server and a node HTTP server answer on
 * the same port after a restore. Refused, the process unharmed: fds in
 * flight, an established TCP connection, a packet socket, a unix peer
 * outside (accepted and connected again with --ext-unix-sk); a port still
 * taken at restore is named, and nothing is restored.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/realprog.h"
#include "helpers/testutil.h"

static char tmp[64];

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "sockets-test");
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(sockets, .init = setup, .fini = teardown, .timeout = 120);

/* The lines of `ckpt show DIR` with " listen " in them, without the fd column, sorted. */
static void listen_lines(const char *dir, char *buf, size_t len)
{
	struct run_result r;
	char *save = NULL, *lines[64];
	size_t n = 0, o = 0;

	cr_assert_eq(run_ckpt(&r, "show", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "show: %s", r.err);
	for (char *l = strtok_r(r.out, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save))
		if (strstr(l, " socket ") && strstr(l, " listen "))
			lines[n++] = strstr(l, " listen ") - 5; /* "u_str listen ...", "tcp listen ..." */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(lines[j], lines[i]) < 0) {
				char *t = lines[i];

				lines[i] = lines[j];
				lines[j] = t;
			}
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s\n", lines[i]);
	run_result_done(&r);
}

/* Restore DIR (with @extra, or NULL) with stdio inherited; the restored pid. */
static pid_t restore_bg(struct prog *rp, const char *dir, const char *extra)
{
	char pidf[128];
	const char *argv[] = { ckpt_bin(), "restore", "-D", dir, "--stdio", "inherit", "--pidfile", pidf, extra, NULL };
	FILE *f;
	int rpid = 0;

	snprintf(pidf, sizeof(pidf), "%s/restored-%d.pid", tmp, rand());
	cr_assert_eq(prog_spawn(rp, true, NULL, argv), 0);
	for (int i = 0; i < 500 && access(pidf, F_OK) < 0; i++)
		usleep(20000);
	f = fopen(pidf, "r");
	if (f && fscanf(f, "%d", &rpid) == 1 && rpid > 0)
		prog_track_pid(rpid);
	if (f)
		fclose(f);
	cr_assert_gt(rpid, 0, "no restored process");
	return rpid;
}

static void dump_restore_check(const char *lazy)
{
	static const char *const items[] = { "u_str_pair", "u_dgr_pair", "u_seq_pair", "u_listen",
					     "u_abstract", "u_dgr_bound", "u_gone", "u_shut", "u_unlinked",
					     "tcp_listen", "tcp6_listen", "udp", "udp6", "netlink" };
	char dir[128], dir2[128], work[128], line[512], pid[16], before[2048], after[2048];
	struct prog p, rp;
	struct run_result r;
	pid_t rpid;

	snprintf(dir, sizeof(dir), "%s/img", tmp);
	snprintf(dir2, sizeof(dir2), "%s/img-again", tmp);
	snprintf(work, sizeof(work), "%s/socks", tmp);
	cr_assert_eq(mkdir(work, 0700), 0);
	cr_assert_eq(prog_start(&p, true, 5000, "fid_socks", "all", work, NULL), 0);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "dump failed: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);
	listen_lines(dir, before, sizeof(before));
	cr_expect(strstr(before, "u_str listen ") && strstr(before, "send-q 7\n"), "backlog 7 not shown: %s", before);
	cr_expect(strstr(before, "tcp listen 127.0.0.1:") && strstr(before, "send-q 11\n"), "backlog 11 not shown: %s", before);

	rpid = restore_bg(&rp, dir, lazy);
	/* The listeners as a dump of the restored process sees them: same addresses and backlogs. */
	snprintf(pid, sizeof(pid), "%d", rpid);
	/* A lazy restore's server holds the process (ptrace) until every page is in. */
	for (int i = 0;; i++) {
		cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir2, "--leave-running", NULL), 0);
		if (r.status == 0 || !strstr(r.err, "is already traced") || i == 100)
			break;
		run_result_done(&r);
		usleep(50000);
	}
	cr_assert_eq(r.status, 0, "dump of the restored process failed: %s", r.err);
	run_result_done(&r);
	listen_lines(dir2, after, sizeof(after));
	cr_expect_str_eq(after, before, "listeners differ after the restore");

	prog_send_line(&rp, "check\n");
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		int k = prog_read_line(&rp, line, sizeof(line), 20000);
		size_t n = strlen(items[i]);

		cr_assert_geq(k, 0, "no line for %s (%s)", items[i], strerror(-k));
		cr_expect(!strncmp(line, items[i], n) && !strcmp(line + n, " ok"), "%s: '%s'", items[i], line);
	}
	cr_assert_geq(prog_read_line(&rp, line, sizeof(line), 10000), 0);
	cr_expect_str_eq(line, "done");
	kill(rpid, SIGTERM);
	prog_wait(&rp, 5000);
	prog_kill(&rp);
}

Test(sockets, every_kind_comes_back_eagerly)
{
	dump_restore_check(NULL);
}

Test(sockets, every_kind_comes_back_lazily)
{
	dump_restore_check("--lazy");
}

/* Dump refused (status 4) saying @why and naming the socket as @name; the process answers. */
static void refused(const char *mode, const char *arg, const char *why, const char *name)
{
	char dir[128], line[64], pid[16];
	struct prog p;
	struct run_result r;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/%s", tmp, mode);
	cr_assert_eq(prog_start(&p, true, 5000, "fid_socks", mode, arg, NULL), 0);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, NULL), 0);
	cr_expect_eq(r.status, 4, "%s: status %d: %s", mode, r.status, r.err);
	cr_expect(strstr(r.err, why), "%s: '%s' not said in: %s", mode, why, r.err);
	cr_expect(strstr(r.err, name), "%s: the socket not named '%s' in: %s", mode, name, r.err);
	cr_expect_neq(stat(dir, &st), 0, "%s: a refused dump left '%s'", mode, dir);
	run_result_done(&r);
	prog_send_line(&p, "ping\n");
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 5000), 0, "%s: the process does not answer", mode);
	cr_expect_str_eq(line, "pong");
	prog_kill(&p);
}

Test(sockets, fds_in_flight_are_refused)
{
	refused("scm", NULL, "file descriptors in flight (SCM_RIGHTS)", "u_str estab * peer socket:[");
}

Test(sockets, established_tcp_is_refused)
{
	refused("estab", NULL, "an established TCP connection", "tcp established 127.0.0.1:");
}

Test(sockets, packet_socket_is_refused)
{
	int s = socket(AF_PACKET, SOCK_DGRAM, 0);

	if (s < 0)
		cr_skip_test("no packet socket here: %s", strerror(errno));
	close(s);
	refused("packet", NULL, "a packet socket", "(p_dgr ");
}

/* A listener of the test's own at @path. */
static int listen_at(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(s, 0);
	cr_assert_lt(strlen(path), sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0, "bind '%s': %s", path, strerror(errno));
	cr_assert_eq(listen(s, 4), 0);
	return s;
}

Test(sockets, outside_unix_peer_needs_ext_unix_sk_then_is_connected_again)
{
	char path[128], dir[128], line[64], pid[16], buf[8];
	struct prog p, rp;
	struct run_result r;
	int l, a, a2;
	pid_t rpid;

	snprintf(path, sizeof(path), "%s/outside.sock", tmp);
	l = listen_at(path);
	refused("outside", path, "connected to a peer outside the process (give ckpt dump --ext-unix-sk",
		"u_str estab * peer ");
	a = accept(l, NULL, NULL);
	cr_assert_geq(a, 0);
	close(a); /* the first client, refused and killed */

	snprintf(dir, sizeof(dir), "%s/ext", tmp);
	cr_assert_eq(prog_start(&p, true, 5000, "fid_socks", "outside", path, NULL), 0);
	a = accept(l, NULL, NULL);
	cr_assert_geq(a, 0);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, "--ext-unix-sk", NULL), 0);
	cr_assert_eq(r.status, 0, "dump --ext-unix-sk failed: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);
	close(a);

	rpid = restore_bg(&rp, dir, NULL);
	a2 = accept(l, NULL, NULL);
	cr_assert_geq(a2, 0, "the restored process did not connect again");
	prog_send_line(&rp, "check\n");
	cr_assert_geq(prog_read_line(&rp, line, sizeof(line), 10000), 0);
	cr_expect_str_eq(line, "outside ok");
	cr_expect_eq(recv(a2, buf, sizeof(buf), 0), 2);
	cr_expect(!memcmp(buf, "hi", 2), "the listener did not get what the restored process sent");
	close(a2);
	close(l);
	kill(rpid, SIGTERM);
	prog_kill(&rp);
}

/* ---- real servers ---- */

/* A free TCP port of 127.0.0.1 (bound, read, closed). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(s);
	return port;
}

/* GET / on 127.0.0.1:@port; true when the status line says 200 and the body holds @want. */
static bool http_get(int port, const char *want, int tries)
{
	for (int i = 0; i < tries; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		struct timeval tv = { 5, 0 };
		char buf[8192];
		size_t got = 0;
		ssize_t n;
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		    write(s, "GET / HTTP/1.0\r\n\r\n", 18) == 18) {
			while (got < sizeof(buf) - 1 && (n = read(s, buf + got, sizeof(buf) - 1 - got)) > 0)
				got += (size_t)n;
			buf[got] = '\0';
			close(s);
			if (strstr(buf, " 200 ") && strstr(buf, want))
				return true;
		} else {
			close(s);
		}
		usleep(100000);
	}
	return false;
}

/*
 * Server @argv, answering on @port with a body holding @want: dumped with
 * --leave-running, a restore while it still listens fails naming the port
 * and leaves it answering (when @taken: a process with threads is refused
 * earlier, for its thread ids); dumped in kill mode, it answers from the
 * restored process on the same port (eagerly, or @lazy).
 */
static void server_round_trip(const char *const *argv, int port, const char *want, const char *lazy,
			      bool taken)
{
	char dir[128], dir2[128], pid[16], name[64];
	struct prog p, rp;
	struct run_result r;
	pid_t rpid;

	snprintf(dir, sizeof(dir), "%s/srv-running", tmp);
	snprintf(dir2, sizeof(dir2), "%s/srv", tmp);
	cr_assert_eq(prog_spawn(&p, true, NULL, argv), 0);
	cr_assert(http_get(port, want, 100), "the server does not answer on port %d", port);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	if (!taken)
		goto kill_mode;
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "dump --leave-running failed: %s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--stdio", "null", "--detach", NULL), 0);
	cr_expect_neq(r.status, 0, "restored while the original listens: %s", r.out);
	snprintf(name, sizeof(name), "(tcp listen 127.0.0.1:%d ", port);
	cr_expect(strstr(r.err, name) && strstr(r.err, "the port is taken"),
		  "the taken port not named ('%s'): %s", name, r.err);
	run_result_done(&r);
	cr_expect(http_get(port, want, 3), "the original stopped answering after the failed restore");
kill_mode:

	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir2, NULL), 0);
	cr_assert_eq(r.status, 0, "dump failed: %s", r.err);
	run_result_done(&r);
	prog_wait(&p, 5000);
	prog_kill(&p);
	rpid = restore_bg(&rp, dir2, lazy);
	cr_expect(http_get(port, want, 50), "the restored server does not answer on port %d", port);
	cr_expect(http_get(port, want, 50), "the restored server does not answer twice");
	kill(rpid, SIGTERM);
	prog_wait(&rp, 5000);
	prog_kill(&rp);
}

static void python_server(const char *lazy)
{
	char port_s[16], file[128];
	int port = free_port();
	const char *argv[] = { "/usr/bin/python3", "-m", "http.server", port_s, "--bind", "127.0.0.1",
			       "--directory", tmp, NULL };
	FILE *f;

	if (access("/usr/bin/python3", X_OK) < 0)
		cr_skip_test("no /usr/bin/python3");
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(file, sizeof(file), "%s/marker-file-ckpt", tmp);
	f = fopen(file, "w");
	cr_assert(f);
	fclose(f);
	server_round_trip(argv, port, "marker-file-ckpt", lazy, true);
}

Test(sockets, python_http_server_answers_on_its_port_after_restore)
{
	python_server(NULL);
}

Test(sockets, python_http_server_answers_after_lazy_restore)
{
	python_server("--lazy");
}

Test(sockets, node_http_server_answers_on_its_port_after_restore)
{
	char script[256];
	int port = free_port();
	const char *argv[] = { "/usr/bin/node", "-e", script, NULL };
	struct run_result r;
	const char *v[] = { "/usr/bin/node", "-e", "process.exit(0)", NULL };

	if (access("/usr/bin/node", X_OK) < 0)
		cr_skip_test("no /usr/bin/node");
	cr_assert_eq(run_argv(v, &r), 0);
	if (r.status != 0)
		cr_skip_test("/usr/bin/node does not run: %s", r.err);
	run_result_done(&r);
	snprintf(script, sizeof(script),
		 "require('http').createServer((q,s)=>s.end('node-served-ckpt')).listen(%d,'127.0.0.1')", port);
	server_round_trip(argv, port, "node-served-ckpt", NULL, false);
}

/* ---- established TCP connections (--tcp-established) ---- */

static void need_nft(void)
{
	const char *v[] = { "/bin/sh", "-c", "command -v nft", NULL };
	struct run_result r;

	cr_assert_eq(run_argv(v, &r), 0);
	if (r.status != 0)
		cr_skip_test("nft(8) is not installed (scripts/install-deps installs nftables)");
	run_result_done(&r);
}

/* No nftables table of pid @pid's connections is left. */
static void expect_no_block(const char *pid)
{
	char table[64];
	const char *v[] = { "nft", "list", "table", "inet", table, NULL };
	struct run_result r;

	snprintf(table, sizeof(table), "ckpt_%s", pid);
	cr_assert_eq(run_argv(v, &r), 0);
	cr_expect_neq(r.status, 0, "the block of pid %s was left behind: %s", pid, r.out);
	run_result_done(&r);
}

static int tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { 20, 0 };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(s, 0);
	cr_assert_eq(connect(s, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s", strerror(errno));
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return s;
}

static void send_all(int s, const void *buf, size_t len)
{
	cr_assert_eq(send(s, buf, len, MSG_NOSIGNAL), (ssize_t)len, "send: %s", strerror(errno));
}

/* Read exactly @len bytes; they must be @want. No reset, no end of file. */
static void expect_stream(int s, const char *want, size_t len, const char *what)
{
	char *got = malloc(len + 1);
	size_t n = 0;

	cr_assert_not_null(got);
	while (n < len) {
		ssize_t k = recv(s, got + n, len - n, 0);

		cr_assert_gt(k, 0, "%s: after %zu of %zu bytes: %s", what, n, len,
			     k < 0 ? strerror(errno) : "end of file");
		n += (size_t)k;
	}
	for (size_t i = 0; i < len; i++)
		if (got[i] != want[i])
			cr_assert_fail("%s: byte %zu of %zu differs (a gap or a duplicate)", what, i, len);
	free(got);
}

static void ask(struct prog *p, const char *cmd, char *line, size_t len)
{
	prog_send_line(p, cmd);
	cr_assert_geq(prog_read_line(p, line, len, 10000), 0, "no answer to '%s'", cmd);
}

/*
 * A client of ours talks to fid_socks tcpecho; at the dump the server's
 * receive queue holds 20 lines it has not read and its send queue most of
 * a 3 MB burst; while it is frozen the client sends 20 more lines. After
 * the restore (eager or @lazy) the client reads the whole burst and every
 * line echoed, in order, nothing missing or doubled, and no reset.
 */
static void tcp_round_trip(const char *lazy)
{
	char dir[128], pid[16], line[128], lines[512];
	struct prog p, rp, dp;
	struct run_result r;
	size_t nl = 0, burst;
	int port = free_port(), c, status;
	pid_t rpid;
	char port_s[16];
	char *want;

	need_nft();
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(dir, sizeof(dir), "%s/tcp", tmp);
	cr_assert_eq(prog_start(&p, true, 5000, "fid_socks", "tcpecho", port_s, NULL), 0);
	c = tcp_connect(port);
	send_all(c, "hello\n", 6);
	expect_stream(c, "hello\n", 6, "the echo before the dump");
	ask(&p, "pause\n", line, sizeof(line));
	cr_assert_str_eq(line, "paused");
	for (int i = 0; i < 20; i++)
		nl += (size_t)snprintf(lines + nl, sizeof(lines) - nl, "q%d\n", i);
	send_all(c, lines, nl);
	usleep(100000);
	ask(&p, "burst 3000000\n", line, sizeof(line));
	cr_assert_eq(sscanf(line, "burst %zu", &burst), 1, "%s", line);
	cr_assert_gt(burst, 0);

	snprintf(pid, sizeof(pid), "%d", p.pid);
	{
		const char *argv[] = { ckpt_bin(), "dump", "-t", pid, "-D", dir, "--tcp-established", NULL };

		cr_assert_eq(prog_spawn(&dp, false, NULL, argv), 0);
	}
	for (int i = 0; i < 20; i++) { /* while it is frozen, or already gone */
		char m[16];
		int k = snprintf(m, sizeof(m), "f%d\n", i);

		send_all(c, m, (size_t)k);
		nl += (size_t)snprintf(lines + nl, sizeof(lines) - nl, "%s", m);
	}
	status = prog_wait(&dp, 30000);
	cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "dump --tcp-established failed");
	prog_wait(&p, 5000);
	prog_kill(&p);
	cr_assert_eq(run_ckpt(&r, "show", dir, NULL), 0);
	cr_expect(strstr(r.out, "tcp established 127.0.0.1:"), "%s", r.out);
	run_result_done(&r);

	rpid = restore_bg(&rp, dir, lazy);
	ask(&rp, "resume\n", line, sizeof(line));
	cr_assert_str_eq(line, "resumed");
	want = malloc(burst + nl);
	cr_assert_not_null(want);
	for (size_t i = 0; i < burst; i++)
		want[i] = (char)(i % 251);
	memcpy(want + burst, lines, nl);
	expect_stream(c, want, burst + nl, "the stream through the checkpoint");
	free(want);
	send_all(c, "after\n", 6);
	expect_stream(c, "after\n", 6, "the echo after the restore");
	expect_no_block(pid);
	close(c);
	kill(rpid, SIGTERM);
	prog_wait(&rp, 5000);
	prog_kill(&rp);
}

Test(sockets, established_tcp_survives_with_tcp_established)
{
	tcp_round_trip(NULL);
}

Test(sockets, established_tcp_survives_lazy_restore)
{
	tcp_round_trip("--lazy");
}

/*
 * --tcp-established with --leave-running, and a dump refused for another
 * socket: either way the connection goes on at once (out of repair mode,
 * unblocked), and no block is left.
 */
Test(sockets, tcp_established_leaves_a_running_connection_working)
{
	char dir[128], pid[16], port_s[16], line[64];
	struct prog p;
	struct run_result r;
	int port = free_port(), c;

	need_nft();
	snprintf(port_s, sizeof(port_s), "%d", port);
	cr_assert_eq(prog_start(&p, true, 5000, "fid_socks", "tcpecho", port_s, NULL), 0);
	c = tcp_connect(port);
	send_all(c, "one\n", 4);
	expect_stream(c, "one\n", 4, "before");
	snprintf(pid, sizeof(pid), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/tcp-running", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, "--tcp-established", "--leave-running", NULL), 0);
	cr_expect_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	send_all(c, "two\n", 4);
	expect_stream(c, "two\n", 4, "after a dump --leave-running");
	/* Without the option: refused, and the connection never noticed. */
	snprintf(dir, sizeof(dir), "%s/tcp-refused", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, NULL), 0);
	cr_expect_eq(r.status, 4, "%s", r.err);
	cr_expect(strstr(r.err, "give ckpt dump --tcp-established"), "%s", r.err);
	run_result_done(&r);
	send_all(c, "three\n", 6);
	expect_stream(c, "three\n", 6, "after a refused dump");
	expect_no_block(pid);
	ask(&p, "ping\n", line, sizeof(line));
	cr_expect_str_eq(line, "pong");
	close(c);
	prog_kill(&p);
}

/*
 * A keep-alive HTTP client (python3's http.client, one connection, a
 * request every 50 ms, printing its count, the status and its local port)
 * to a python3 HTTP/1.1 server that is not checkpointed: dumped with
 * --tcp-established and restored, it goes on with the same connection (the
 * same local port), its count without a gap or a repeat, every answer 200.
 */
Test(sockets, keep_alive_http_client_keeps_its_connection)
{
	char dir[128], out[128], pid[16], port_s[16], srv_script[512], cli_script[512], line[256];
	struct prog srv, cli;
	struct run_result r;
	int port = free_port(), last = -1, lport = 0, n_lines = 0;
	size_t before;
	FILE *f;

	need_nft();
	if (access("/usr/bin/python3", X_OK) < 0)
		cr_skip_test("no /usr/bin/python3");
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(srv_script, sizeof(srv_script),
		 "import http.server as h\n"
		 "class H(h.SimpleHTTPRequestHandler):\n"
		 "    protocol_version = 'HTTP/1.1'\n"
		 "    def log_message(self, *a): pass\n"
		 "h.HTTPServer(('127.0.0.1', %d), lambda *a: H(*a, directory='%s')).serve_forever()\n",
		 port, tmp);
	snprintf(cli_script, sizeof(cli_script),
		 "import http.client, time\n"
		 "c = http.client.HTTPConnection('127.0.0.1', %d, timeout=30)\n"
		 "i = 0\n"
		 "while True:\n"
		 "    c.request('GET', '/')\n"
		 "    r = c.getresponse(); r.read()\n"
		 "    print(i, r.status, c.sock.getsockname()[1], flush=True)\n"
		 "    i += 1\n"
		 "    time.sleep(0.05)\n",
		 port);
	{
		const char *argv[] = { "/usr/bin/python3", "-c", srv_script, NULL };

		cr_assert_eq(prog_spawn(&srv, false, NULL, argv), 0);
	}
	cr_assert(http_get(port, "", 100), "the server does not answer");
	snprintf(out, sizeof(out), "%s/client.out", tmp);
	{
		const char *argv[] = { "/usr/bin/python3", "-c", cli_script, NULL };

		cr_assert_eq(prog_spawn(&cli, false, out, argv), 0);
	}
	wait_lines(out, 10);
	snprintf(pid, sizeof(pid), "%d", cli.pid);
	snprintf(dir, sizeof(dir), "%s/client", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, "--tcp-established", NULL), 0);
	cr_assert_eq(r.status, 0, "dump failed: %s", r.err);
	run_result_done(&r);
	prog_wait(&cli, 5000);
	prog_kill(&cli);
	before = count_lines(out);
	{
		cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--detach", "--stdio", "null", NULL), 0);
		cr_assert_eq(r.status, 0, "restore failed: %s", r.err);
		prog_track_pid(atoi(r.out));
		run_result_done(&r);
		wait_lines(out, before + 10);
	}
	f = fopen(out, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		int i, st, lp;

		cr_assert_eq(sscanf(line, "%d %d %d", &i, &st, &lp), 3, "not a line of the client: '%s'", line);
		cr_expect_eq(i, last + 1, "request %d after %d: a gap or a repeat", i, last);
		cr_expect_eq(st, 200, "request %d: status %d", i, st);
		if (!lport)
			lport = lp;
		cr_expect_eq(lp, lport, "request %d went over another connection (port %d, was %d)", i, lp, lport);
		last = i;
		n_lines++;
	}
	fclose(f);
	cr_expect_geq((size_t)n_lines, before + 10, "%d lines, %zu before the restore", n_lines, before);
	expect_no_block(pid);
	prog_kill(&srv);
}

/*
 * A closed TCP socket still bound to a port (a connection that ended, or a
 * bind without listen): when another socket holds that port by the time
 * of the restore, the restore goes on, the socket bound to another port of
 * the same address, and says so.
 */
Test(sockets, a_closed_tcp_socket_whose_port_was_taken_comes_back_on_another)
{
	const char *py[] = { "/usr/bin/python3", "-c",
			     "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\n"
			     "print(s.getsockname()[1],flush=True)\nsys.stdin.readline()\n"
			     "print('still',s.getsockname()[0],flush=True)\n", NULL };
	struct sockaddr_in a = { .sin_family = AF_INET };
	char dir[128], line[128], ps[16];
	struct run_result r;
	struct prog p, rp;
	int port, holder, one = 1;

	if (access("/usr/bin/python3", X_OK) < 0)
		cr_skip_test("python3 is not installed");
	cr_assert_eq(prog_spawn(&p, true, NULL, py), 0);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0);
	port = atoi(line);
	cr_assert_gt(port, 0, "%s", line);
	snprintf(dir, sizeof(dir), "%s/closed", tmp);
	snprintf(ps, sizeof(ps), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_kill(&p);
	/* Someone else listens on that port now. */
	holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(holder, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(holder, (struct sockaddr *)&a, sizeof(a)), 0, "bind %d: %m", port);
	cr_assert_eq(listen(holder, 1), 0);
	{
		const char *argv[] = { ckpt_bin(), "restore", "-D", dir, "--stdio", "inherit", NULL };

		cr_assert_eq(prog_spawn(&rp, true, NULL, argv), 0);
	}
	prog_send_line(&rp, "go\n");
	cr_assert_geq(prog_read_line(&rp, line, sizeof(line), 10000), 0, "the restore failed");
	cr_expect_str_eq(line, "still 127.0.0.1");
	prog_wait(&rp, 5000);
	prog_kill(&rp);
	close(holder);
}
