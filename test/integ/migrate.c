/* SPDX-License-Identifier: MIT */
/*
 * Live migration of a server between two "hosts" (issue 16): network
 * namespaces A and B, and a client in C, joined by a bridge in C. The
 * server (python3, an echo server nobody here wrote) runs in A at the
 * service address SIP; the client in C talks to SIP over one TCP
 * connection, a numbered line every 20 ms, and checks every echo. The
 * server is dumped in A (kill mode, --tcp-established), SIP moves from A to
 * B (as a floating address does between hosts), the server is restored in
 * B (from the images, or with --from --lazy from a page server in A: its
 * memory over the network), and the client's connection goes on: every
 * line echoed once, in order, no reset.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/testutil.h"

static char tmp[64];
static char ns[3][32];
static int id;

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "migrate-test");
	id = getpid() % 200 + 20;
	for (int i = 0; i < 3; i++)
		snprintf(ns[i], sizeof(ns[i]), "ckmig-%c-%d", 'a' + i, getpid());
}

static void teardown(void)
{
	for (int i = 0; i < 3; i++) {
		/* Whatever still runs there (the server, the client), then the namespace. */
		sh("ip netns pids %s 2>/dev/null | xargs -r kill -9 2>/dev/null", ns[i]);
		sh("ip netns del %s 2>/dev/null", ns[i]);
	}
	prog_kill_all();
	suite_dir_remove(tmp, NULL);
}

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 180);

#define SIP_FMT "10.233.%d.1"

/* A, B and C; veths from A and B to a bridge in C; SIP in A. */
static void make_hosts(char *sip, size_t len)
{
	if (geteuid() != 0 || sh("command -v ip >/dev/null && command -v nft >/dev/null") != 0)
		cr_skip_test("needs root, ip(8) and nft(8) (scripts/install-deps)");
	snprintf(sip, len, SIP_FMT, id);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(sh("ip netns add %s", ns[i]), 0, "ip netns add %s", ns[i]);
	cr_assert_eq(sh("ip -n %s link add br0 type bridge && ip -n %s link set br0 up && "
			"ip -n %s addr add 10.233.%d.100/24 dev br0 && ip -n %s link set lo up",
			ns[2], ns[2], ns[2], id, ns[2]), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(sh("ip link add ckm%c%d type veth peer name ckm%cbr%d && "
				"ip link set ckm%c%d netns %s && ip link set ckm%cbr%d netns %s && "
				"ip -n %s link set ckm%cbr%d master br0 && ip -n %s link set ckm%cbr%d up && "
				"ip -n %s link set ckm%c%d up && ip -n %s link set lo up",
				'a' + i, id, 'a' + i, id, 'a' + i, id, ns[i], 'a' + i, id, ns[2], ns[2], 'a' + i, id,
				ns[2], 'a' + i, id, ns[i], 'a' + i, id, ns[i]), 0, "veth of %s", ns[i]);
	cr_assert_eq(sh("ip -n %s addr add %s/24 dev ckma%d", ns[0], sip, id), 0);
}

static const char server_py[] =
	"import socket, sys\n"
	"s = socket.socket()\n"
	"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	"s.bind(('0.0.0.0', int(sys.argv[1])))\n"
	"s.listen(1)\n"
	"print('ready', flush=True)\n"
	"c, _ = s.accept()\n"
	"while True:\n"
	"    d = c.recv(4096)\n"
	"    if not d:\n"
	"        break\n"
	"    c.sendall(d)\n";

static const char client_py[] =
	"import socket, sys, time\n"
	"c = socket.create_connection((sys.argv[1], int(sys.argv[2])))\n"
	"c.settimeout(60)\n"
	"out = open(sys.argv[3], 'w')\n"
	"buf = b''\n"
	"for i in range(int(sys.argv[4])):\n"
	"    c.sendall(b'%d\\n' % i)\n"
	"    while b'\\n' not in buf:\n"
	"        d = c.recv(4096)\n"
	"        if not d:\n"
	"            out.write('closed\\n'); sys.exit(1)\n"
	"        buf += d\n"
	"    line, buf = buf.split(b'\\n', 1)\n"
	"    out.write(line.decode() + '\\n')\n"
	"    out.flush()\n"
	"    time.sleep(0.02)\n"
	"out.write('done\\n')\n";

static size_t lines_of(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int c;

	while (f && (c = fgetc(f)) != EOF)
		n += c == '\n';
	if (f)
		fclose(f);
	return n;
}

/*
 * @from: the memory comes over the network, lazily (post-copy): a page
 * server on host A (its own address, a token both ways), the restore on B
 * with --from --lazy.
 */
static void migrate(bool from)
{
	char sip[32], out[128], img[128], port_s[16], count_s[16], line[64];
	const char *sargv[8], *cargv[10];
	struct run_result r;
	struct prog srv, cli;
	int port = 20000 + getpid() % 20000, count = 300;

	if (access("/usr/bin/python3", X_OK))
		cr_skip_test("needs /usr/bin/python3");
	make_hosts(sip, sizeof(sip));
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(count_s, sizeof(count_s), "%d", count);
	snprintf(out, sizeof(out), "%s/client.out", tmp);
	snprintf(img, sizeof(img), "%s/server.img", tmp);
	sargv[0] = "/usr/sbin/ip";
	sargv[1] = "netns";
	sargv[2] = "exec";
	sargv[3] = ns[0];
	sargv[4] = "/usr/bin/python3";
	sargv[5] = "-c";
	sargv[6] = server_py;
	sargv[7] = NULL;
	{
		/* The port: python3 -c takes it as argv[1]. */
		const char *a[9] = { sargv[0], sargv[1], sargv[2], sargv[3], sargv[4], sargv[5], sargv[6], port_s, NULL };

		cr_assert_eq(prog_spawn(&srv, false, NULL, a), 0);
	}
	cr_assert_geq(prog_read_line(&srv, line, sizeof(line), 10000), 0);
	cr_assert_str_eq(line, "ready");
	cargv[0] = "/usr/sbin/ip";
	cargv[1] = "netns";
	cargv[2] = "exec";
	cargv[3] = ns[2];
	cargv[4] = "/usr/bin/python3";
	cargv[5] = "-c";
	cargv[6] = client_py;
	cargv[7] = sip;
	cargv[8] = port_s;
	{
		const char *a[12] = { cargv[0], cargv[1], cargv[2], cargv[3], cargv[4], cargv[5], cargv[6], cargv[7],
				      cargv[8], out, count_s, NULL };

		cr_assert_eq(prog_spawn(&cli, false, NULL, a), 0);
	}
	for (int i = 0; i < 500 && lines_of(out) < 30; i++)
		usleep(20000);
	cr_assert_geq(lines_of(out), 30, "the client does not talk to the server");

	/* On host A: the server dumped, its connection blocked and saved. */
	{
		char pid_s[16];

		snprintf(pid_s, sizeof(pid_s), "%d", srv.pid);
		cr_assert_eq(sh("ip netns exec %s %s dump -t %s -D %s --tcp-established > %s/dump.log 2>&1", ns[0], ckpt_bin(),
				pid_s, img, tmp), 0, "dump in %s (see %s/dump.log)", ns[0], tmp);
	}
	prog_wait(&srv, 5000);
	/* The service address moves to host B; the client's neighbour learns it anew. */
	cr_assert_eq(sh("ip -n %s addr del %s/24 dev ckma%d && ip -n %s addr add %s/24 dev ckmb%d && "
			"ip -n %s neigh flush all", ns[0], sip, id, ns[1], sip, id, ns[2]), 0);
	/* On host B: restored. */
	if (from) {
		char token[192], listen[64], line2[512];
		const char *pargv[16];
		struct prog ps;
		int n = 0, fd;

		snprintf(token, sizeof(token), "%s/token", tmp);
		fd = open(token, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		cr_assert_geq(fd, 0);
		cr_assert_eq(write(fd, "a migration secret of 32 bytes!!\n", 33), 33);
		close(fd);
		cr_assert_eq(sh("ip -n %s addr add 10.233.%d.11/24 dev ckma%d", ns[0], id, id), 0);
		snprintf(listen, sizeof(listen), "10.233.%d.11:%d", id, port + 1);
		n = page_server_argv(pargv, ns[0], img, listen);
		pargv[n++] = "--token-file";
		pargv[n++] = token;
		pargv[n] = NULL;
		cr_assert_eq(prog_spawn(&ps, false, NULL, pargv), 0);
		cr_assert_geq(prog_read_line(&ps, line2, sizeof(line2), 10000), 0, "the page server did not start");
		cr_assert_eq(sh("ip netns exec %s %s restore --from tcp://%s --token-file %s --lazy --detach --stdio null "
				"> %s/restore.log 2>&1", ns[1], ckpt_bin(), listen, token, tmp), 0,
			     "restore --from in %s (see %s/restore.log)", ns[1], tmp);
	} else {
		cr_assert_eq(sh("ip netns exec %s %s restore -D %s --detach --stdio null > %s/restore.log 2>&1", ns[1],
				ckpt_bin(), img, tmp), 0, "restore in %s (see %s/restore.log)", ns[1], tmp);
	}
	cr_assert_eq(sh("ip netns pids %s | grep -q .", ns[1]), 0, "nothing runs in %s", ns[1]);
	/* The client ends its count on the same connection: every line once, in order. */
	cr_expect_eq(prog_wait(&cli, 60000), 0, "the client failed (see %s)", out);
	{
		FILE *f = fopen(out, "r");
		int expect = 0;

		cr_assert_not_null(f);
		while (fgets(line, sizeof(line), f)) {
			if (!strcmp(line, "done\n"))
				break;
			cr_assert_eq(atoi(line), expect, "line '%s' where %d was due", line, expect);
			expect++;
		}
		fclose(f);
		cr_expect_eq(expect, count, "%d lines echoed, not %d", expect, count);
	}
	(void)r;
}

Test(migrate, a_server_moves_to_another_host_with_its_client_connection)
{
	migrate(false);
}

/* The same with its memory over the network, lazily: a live migration with post-copy. */
Test(migrate, a_server_moves_with_its_memory_from_a_page_server)
{
	migrate(true);
}
