/* SPDX-License-Identifier: MIT */
/*
 * ckpt page-server and the remote page source, against checkpoints of
 * test/progs/dirtier: every page of every region arrives as the program had
 * it and as the local source has it, documents too; malicious clients each
 * get their clear error while a good client is served concurrently; the
 * token is required off loopback and checked both ways, across two network
 * namespaces joined by a veth pair.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/log.h>
#include <ckpt/pagesrc.h>

#include "helpers/testutil.h"
#include "net/proto.h"

#define PS   4096ULL
#define NREG 8
#define BIG  7

static char tmp[64];
static char last_err[4096];

static void sink(enum ckpt_log_level level, const char *area, const char *msg, void *ud)
{
	(void)ud;
	if (level == CKPT_LOG_ERROR)
		snprintf(last_err, sizeof(last_err), "%s: %s", area, msg);
}

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/ckpt-ps-test-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	setenv("CKPT_RUNDIR", tmp, 1);
	ckpt_log_set_sink(sink, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		cr_log_warn("cannot clean %s", tmp);
}

TestSuite(pageserver, .init = setup, .fini = teardown, .timeout = 120);

/* ---- the program and its checkpoint ---- */

struct sums {
	uint64_t base[NREG], n[NREG];
	uint64_t *h[NREG];
};

struct ck {
	struct prog p;
	char pid[16];
	char dir[128];
	struct sums s;
};

static uint64_t fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static void dz_ok(struct ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dz_ok(struct ck *c, const char *fmt, ...)
{
	char line[4096], ans[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	cr_assert_eq(write(c->p.in_fd, line, strlen(line)), (ssize_t)strlen(line));
	cr_assert_geq(prog_read_line(&c->p, ans, sizeof(ans), 10000), 0, "no answer to %s", line);
	cr_assert_str_eq(ans, "ok", "'%s' answered '%s'", line, ans);
}

/* Fill pages [from, to) of a region with data, in commands that fit a line. */
static void fill_range(struct ck *c, const char *region, int from, int to)
{
	while (from < to) {
		char line[4000];
		size_t n = (size_t)snprintf(line, sizeof(line), "fill %s", region);

		while (from < to && n < sizeof(line) - 16)
			n += (size_t)snprintf(line + n, sizeof(line) - n, " %d", from++);
		dz_ok(c, "%s", line);
	}
}

static void sums_load(struct sums *s, const char *path)
{
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f, "no sums file %s", path);
	for (int r = 0; r < NREG; r++) {
		cr_assert_eq(fread(&s->base[r], 8, 1, f), 1);
		cr_assert_eq(fread(&s->n[r], 8, 1, f), 1);
		s->h[r] = malloc(s->n[r] * 8);
		cr_assert_eq(fread(s->h[r], 8, s->n[r], f), s->n[r]);
	}
	fclose(f);
}

static void dump_ok(struct ck *c, const char *dir, const char *parent)
{
	const char *argv[] = {ckpt_bin(),
			      "dump",
			      "-t",
			      c->pid,
			      "-D",
			      dir,
			      "--leave-running",
			      parent ? "--parent" : NULL,
			      parent,
			      NULL};
	struct run_result r;

	cr_assert_eq(run_argv(argv, &r), 0);
	cr_assert_eq(r.status, 0, "ckpt dump %s failed: %s", dir, r.err);
	run_result_done(&r);
}

/*
 * dirtier with data in every region (1024 data pages in "big"), checkpointed
 * with --leave-running; with @delta, written again and checkpointed as a
 * delta of that. c->dir is the newest, c->s what the program had then.
 */
static void ck_make(struct ck *c, bool delta)
{
	char line[1024], sf[160], full[128];

	cr_assert_eq(prog_start(&c->p, true, 0, "dirtier", NULL), 0);
	cr_assert_geq(prog_read_line(&c->p, line, sizeof(line), 5000), 0);
	snprintf(c->pid, sizeof(c->pid), "%d", c->p.pid);
	dz_ok(c, "fill heap 0 1 2 30");
	dz_ok(c, "fill stack 5 6");
	dz_ok(c, "fill file 7 63");
	dz_ok(c, "fill shared 1 62");
	dz_ok(c, "fill data 3");
	dz_ok(c, "fill bss 4 44");
	dz_ok(c, "fill thp 0 511 512 1023");
	fill_range(c, "big", 0, 1024);
	dz_ok(c, "fill big 16383");
	dz_ok(c, "z heap 30");
	snprintf(full, sizeof(full), "%s/full", tmp);
	snprintf(sf, sizeof(sf), "%s/sums", tmp);
	dz_ok(c, "sums %s", sf);
	dump_ok(c, full, NULL);
	snprintf(c->dir, sizeof(c->dir), "%s", full);
	if (delta) {
		dz_ok(c, "fill heap 1 9");
		dz_ok(c, "fill big 2 3 4000");
		dz_ok(c, "z big 5");
		dz_ok(c, "fill shared 2");
		snprintf(c->dir, sizeof(c->dir), "%s/delta", tmp);
		dz_ok(c, "sums %s", sf);
		dump_ok(c, c->dir, full);
	}
	sums_load(&c->s, sf);
}

static void ck_done(struct ck *c)
{
	prog_kill(&c->p);
	for (int r = 0; r < NREG; r++)
		free(c->s.h[r]);
}

/*
 * Read every page of every region through @src in batches of @batch and
 * compare with the program's hashes. Returns the pages that differ, or
 * -errno. No assertions: also runs in a forked child.
 */
static long verify(struct ckpt_page_source *src, const struct sums *s, size_t batch)
{
	static __thread unsigned char zero[PS];
	uint64_t zh = fnv(zero, PS);
	unsigned char *buf = malloc(batch * PS);
	uint8_t *kinds = malloc(batch);
	long bad = 0;

	if (!buf || !kinds)
		return -ENOMEM;
	for (int r = 0; r < NREG; r++) {
		for (uint64_t i = 0; i < s->n[r]; i += batch) {
			size_t n = s->n[r] - i < batch ? s->n[r] - i : batch;
			int k = ckpt_page_source_read_pages(src, s->base[r] + i * PS, n, kinds,
							    buf);

			if (k < 0) {
				free(buf);
				free(kinds);
				return k;
			}
			for (size_t j = 0; j < n; j++) {
				uint64_t got =
					kinds[j] == CKPT_PAGE_DATA ? fnv(buf + j * PS, PS) : zh;

				bad += got != s->h[r][i + j];
			}
		}
	}
	free(buf);
	free(kinds);
	return bad;
}

/* ---- the server ---- */

struct server {
	struct prog p;
	char addr[96]; /* "127.0.0.1:41234" */
	char url[128];
	char errpath[160];
	char *out; /* stdout after the listening line, once stopped */
};

/* ckpt page-server -D DIR --listen LISTEN --json EXTRA..., optionally under "ip netns exec NS". */
static int server_start_ns(struct server *s, const char *netns, const char *dir, const char *listen,
			   const char *const *extra)
{
	const char *argv[32];
	int n, o[2];
	char line[1024];
	json_object *j, *v;

	memset(s, 0, sizeof(*s));
	snprintf(s->errpath, sizeof(s->errpath), "%s/server-%d.err", tmp, rand());
	n = page_server_argv(argv, netns, dir, listen);
	for (; extra && *extra; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	cr_assert_eq(pipe2(o, O_CLOEXEC), 0);
	s->p.in_fd = -1;
	s->p.pid = fork();
	cr_assert_geq(s->p.pid, 0);
	if (s->p.pid == 0) {
		int e = open(s->errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(o[1], 1);
		dup2(e, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(o[1]);
	s->p.out_fd = o[0];
	if (prog_read_line(&s->p, line, sizeof(line), 10000) < 0)
		return -1;
	j = json_tokener_parse(line);
	cr_assert_not_null(j, "not JSON: %s", line);
	if (!json_object_object_get_ex(j, "event", &v)) {
		cr_log_info("the page server did not start: %s", line);
		json_object_put(j);
		return -1;
	}
	cr_assert_str_eq(json_object_get_string(v), "listening", "%s", line);
	cr_assert(json_object_object_get_ex(j, "address", &v));
	snprintf(s->addr, sizeof(s->addr), "%s", json_object_get_string(v));
	snprintf(s->url, sizeof(s->url), "tcp://%s", s->addr);
	json_object_put(j);
	return 0;
}

static void server_start(struct server *s, const char *dir, const char *const *extra)
{
	cr_assert_eq(server_start_ns(s, NULL, dir, "127.0.0.1:0", extra), 0,
		     "the page server did not start");
}

/* The server's standard error so far. */
static char *server_log(const struct server *s)
{
	FILE *f = fopen(s->errpath, "r");
	char *buf = calloc(1, 1 << 20);

	if (f) {
		size_t n = fread(buf, 1, (1 << 20) - 1, f);

		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

/* Wait (up to @ms) until the server's log contains @needle. */
static bool log_wait(const struct server *s, const char *needle, int ms)
{
	double deadline = mono_s() + ms / 1000.0;

	do {
		char *l = server_log(s);
		bool found = strstr(l, needle) != NULL;

		free(l);
		if (found)
			return true;
		usleep(20000);
	} while (mono_s() < deadline);
	return false;
}

/* SIGTERM, the rest of its output, its exit status. */
static int server_stop(struct server *s)
{
	size_t len = 0, cap = 1 << 16;
	int status;

	s->out = calloc(1, cap);
	kill(s->p.pid, SIGTERM);
	for (;;) {
		struct pollfd p = {s->p.out_fd, POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0)
			break;
		if (len + 4096 > cap)
			s->out = realloc(s->out, cap *= 2);
		n = read(s->p.out_fd, s->out + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	s->out[len] = '\0';
	close(s->p.out_fd);
	status = prog_wait(&s->p, 10000);
	return status;
}

static void server_done(struct server *s)
{
	if (s->p.pid > 0)
		prog_kill(&s->p);
	free(s->out);
}

/* The "connection" lines of the stopped server's output that have @key == @val. */
static json_object *conn_line(const struct server *s, const char *key, const char *val)
{
	char *save = NULL, *copy = strdup(s->out);

	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		json_object *j = json_tokener_parse(l), *v;

		if (j && json_object_object_get_ex(j, key, &v) &&
		    !strcmp(json_object_get_string(v), val)) {
			free(copy);
			return j;
		}
		json_object_put(j);
	}
	free(copy);
	return NULL;
}

static uint64_t jint(json_object *j, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(j, key, &v), "no %s", key);
	return (uint64_t)json_object_get_int64(v);
}

static const char *jstr(json_object *j, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(j, key, &v), "no %s", key);
	return json_object_get_string(v);
}

static char *token_file(const char *name, const char *secret, mode_t mode)
{
	char *p;
	int fd;

	cr_assert(asprintf(&p, "%s/%s", tmp, name) > 0);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
	fchmod(fd, mode);
	close(fd);
	return p;
}

/* ---- a well-behaved client gets everything ---- */

static void same_documents(struct ckpt_page_source *remote, struct ckpt_page_source *local)
{
	static const char *const docs[] = {"process.json", "threads.json",
					   "mm.json",	   "files.json",
					   "track.json",   CKPT_PAGE_SOURCE_SUMMARY};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		json_object *a = NULL, *b = NULL;

		cr_assert_eq(ckpt_page_source_get_json(remote, docs[i], &a), 0, "%s: %s", docs[i],
			     last_err);
		cr_assert_eq(ckpt_page_source_get_json(local, docs[i], &b), 0, "%s: %s", docs[i],
			     last_err);
		cr_expect(json_object_equal(a, b),
			  "%s differs between the remote and the local source", docs[i]);
		json_object_put(a);
		json_object_put(b);
	}
}

static void same_ranges(struct ckpt_page_source *remote, struct ckpt_page_source *local)
{
	struct ckpt_page_source_range *a = NULL, *b = NULL;
	size_t na = 0, nb = 0, diff = 0;

	cr_assert_eq(ckpt_page_source_list_ranges(remote, &a, &na), 0, "%s", last_err);
	cr_assert_eq(ckpt_page_source_list_ranges(local, &b, &nb), 0, "%s", last_err);
	cr_expect_gt(na, 0);
	cr_assert_eq(na, nb, "%zu ranges remotely, %zu locally", na, nb);
	for (size_t i = 0; i < na; i++)
		diff += a[i].addr != b[i].addr || a[i].nr_pages != b[i].nr_pages ||
			a[i].kind != b[i].kind;
	cr_expect_eq(diff, 0, "%zu ranges differ", diff);
	free(a);
	free(b);
}

/* Every page, in batches of 1, 64, 256 and 4096 (split by the server's batch), remote == local. */
static void same_pages(struct ckpt_page_source *remote, struct ckpt_page_source *local,
		       const struct sums *s)
{
	static unsigned char ra[64 * PS], la[64 * PS];
	uint8_t rk[64], lk[64];
	size_t diff = 0;

	cr_expect_eq(verify(remote, s, 1), 0, "single pages differ from the program's memory");
	cr_expect_eq(verify(remote, s, 64), 0, "batches of 64 differ from the program's memory");
	cr_expect_eq(verify(remote, s, 256), 0, "batches of 256 differ from the program's memory");
	cr_expect_eq(verify(remote, s, CKPT_PAGE_SOURCE_BATCH_MAX), 0,
		     "batches of 4096 differ from the program's memory");
	cr_expect_eq(verify(local, s, 64), 0, "the local source differs from the program's memory");
	for (int r = 0; r < NREG; r++)
		for (uint64_t i = 0; i + 64 <= s->n[r]; i += 64) {
			int a = ckpt_page_source_read_pages(remote, s->base[r] + i * PS, 64, rk,
							    ra);
			int b = ckpt_page_source_read_pages(local, s->base[r] + i * PS, 64, lk, la);

			cr_assert(a >= 0 && a == b,
				  "region %d page %llu: %d data pages remotely, %d locally", r,
				  (unsigned long long)i, a, b);
			diff += memcmp(rk, lk, 64) != 0;
			for (int j = 0; j < 64; j++)
				diff += rk[j] == CKPT_PAGE_DATA &&
					memcmp(ra + j * PS, la + j * PS, PS);
		}
	cr_expect_eq(diff, 0, "%zu pages differ between remote and local", diff);
}

static void serve_and_compare(bool delta)
{
	struct ck c;
	struct server srv;
	struct ckpt_page_source *remote = NULL, *local = NULL;
	struct ckpt_page_source_stats st;
	json_object *j;

	ck_make(&c, delta);
	server_start(&srv, c.dir, NULL);
	cr_assert_eq(ckpt_page_source_open_remote(srv.url, NULL, NULL, &remote), 0, "%s", last_err);
	cr_assert(ckpt_page_source_is_remote(remote));
	cr_assert_eq(ckpt_page_source_open_local(c.dir, NULL, &local), 0, "%s", last_err);
	cr_expect_eq(ckpt_page_source_ping(remote), 0, "%s", last_err);
	cr_expect_eq(ckpt_page_source_ping(local), 0);
	same_pages(remote, local, &c.s);
	same_documents(remote, local);
	same_ranges(remote, local);
	ckpt_page_source_get_stats(remote, &st);
	cr_expect_gt(st.requests, st.round_trips, "batches of 4096 go out as pipelined requests");
	cr_expect_gt(st.bytes_in, st.data_pages * PS);
	cr_expect_eq(st.errors, 0);
	ckpt_page_source_close(remote);
	ckpt_page_source_close(local);

	cr_assert_eq(server_stop(&srv), 0, "the page server did not exit 0 on SIGTERM");
	j = conn_line(&srv, "event", "connection");
	cr_assert_not_null(j, "no connection line in: %s", srv.out);
	cr_expect_str_eq(jstr(j, "end"), "closed");
	cr_expect_eq(jint(j, "pages"), st.pages);
	cr_expect_eq(jint(j, "data_pages"), st.data_pages);
	cr_expect_eq(jint(j, "bytes_out"), st.bytes_in);
	cr_expect_eq(jint(j, "bytes_in"), st.bytes_out);
	cr_expect_eq(jint(j, "docs"), 6);
	cr_expect_eq(jint(j, "request_errors"), 0);
	json_object_put(j);
	cr_expect_not_null(strstr(srv.out, "\"event\":\"stopped\""), "%s", srv.out);
	server_done(&srv);
	ck_done(&c);
}

Test(pageserver, every_page_and_document_of_a_full_checkpoint)
{
	serve_and_compare(false);
}

Test(pageserver, every_page_and_document_of_a_delta_chain)
{
	serve_and_compare(true);
}

/* ---- malicious clients, one good client concurrently ---- */

static int raw_connect(const struct server *s, int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unsigned int port;

	cr_assert_geq(fd, 0);
	cr_assert_eq(sscanf(s->addr, "127.0.0.1:%u", &port), 1);
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %m");
	return fd;
}

/* "127.0.0.1:PORT: " of our end: how the server names this peer in its log. */
static void peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);

	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	snprintf(buf, len, "peer 127.0.0.1:%u: ", ntohs(a.sin_port));
}

static void raw_send(int fd, uint16_t type, uint32_t id, const void *payload, uint32_t len,
		     uint32_t claimed_len)
{
	uint8_t h[PROTO_HDR_SIZE];

	proto_hdr_encode(h, &(struct proto_hdr){.len = claimed_len, .type = type, .id = id});
	cr_assert_eq(send(fd, h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
	if (len)
		cr_assert_eq(send(fd, payload, len, MSG_NOSIGNAL), (ssize_t)len);
}

static bool raw_recv(int fd, void *buf, size_t len, int ms)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, ms) <= 0)
			return false;
		n = recv(fd, (char *)buf + got, len - got, 0);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* The next message must be an ERROR with @code (and FATAL if @fatal); its text in @msg. */
static void expect_error(int fd, int code, bool fatal, char *msg, size_t msglen, int ms)
{
	uint8_t h[PROTO_HDR_SIZE], p[PROTO_ERROR_HEAD + PROTO_ERROR_MSG_MAX];
	struct proto_hdr hdr;
	struct proto_error e;
	char why[256];

	cr_assert(raw_recv(fd, h, sizeof(h), ms), "no reply where ERROR %d was expected", code);
	cr_assert_eq(proto_hdr_decode(h, sizeof(p), why, sizeof(why), &hdr), 0, "%s", why);
	cr_assert_eq(hdr.type, PROTO_ERROR, "a %s where ERROR %d was expected",
		     proto_type_name(hdr.type), code);
	cr_assert(raw_recv(fd, p, hdr.len, ms));
	cr_assert_eq(proto_error_decode(p, hdr.len, why, sizeof(why), &e), 0, "%s", why);
	snprintf(msg, msglen, "%.*s", (int)e.msg_len, e.msg);
	cr_expect_eq(e.code, (uint32_t)code, "ERROR %u (%s), expected %d", e.code, msg, code);
	cr_expect_eq(!!(hdr.flags & PROTO_F_FATAL), fatal, "FATAL flag of '%s'", msg);
	if (fatal) {
		char c;

		cr_expect(!raw_recv(fd, &c, 1, 2000),
			  "the connection stays open after a fatal ERROR");
	}
}

static void raw_hello(int fd, uint16_t min, uint16_t max, uint32_t caps)
{
	uint8_t b[PROTO_HELLO_SIZE];

	proto_hello_encode(b, &(struct proto_hello){.min_version = min,
						    .max_version = max,
						    .caps = caps,
						    .max_payload = PROTO_REPLY_MAX});
	raw_send(fd, PROTO_HELLO, 0, b, sizeof(b), sizeof(b));
}

/* Hello as a client without a token; the server's HELLO read. */
static void raw_handshake(int fd)
{
	uint8_t h[PROTO_HDR_SIZE + PROTO_HELLO_SIZE];

	raw_hello(fd, 1, 1, 0);
	cr_assert(raw_recv(fd, h, sizeof(h), 5000), "no HELLO from the server");
	cr_assert_eq(get_le16(h + 4), PROTO_HELLO);
}

struct good {
	struct ckpt_page_source *src;
	const struct sums *s;
	atomic_bool stop;
	long rounds, bad, err;
};

static void *good_client(void *arg)
{
	struct good *g = arg;

	while (!atomic_load(&g->stop)) {
		long r = verify(g->src, g->s, 256);

		if (r < 0) {
			g->err = r;
			break;
		}
		g->bad += r;
		g->rounds++;
	}
	return NULL;
}

Test(pageserver, malicious_clients_get_clear_errors_while_a_good_one_is_served)
{
	static const char *const extra[] = {"--handshake-timeout", "1s", "--io-timeout", "1s",
					    NULL};
	struct ck c;
	struct server srv;
	struct good g = {0};
	pthread_t t;
	char msg[1100], peer[256], *log;
	unsigned char page[PS];
	uint8_t b[64];
	int fd;

	ck_make(&c, false);
	server_start(&srv, c.dir, extra);
	cr_assert_eq(ckpt_page_source_open_remote(srv.url, NULL, NULL, &g.src), 0, "%s", last_err);
	g.s = &c.s;
	cr_assert_eq(pthread_create(&t, NULL, good_client, &g), 0);

	/* Truncated message: a HELLO that stops after 10 of its 64 bytes, then closes. */
	fd = raw_connect(&srv, 0);
	peer_name(fd, peer, sizeof(peer));
	memset(b, 0, sizeof(b));
	raw_send(fd, PROTO_HELLO, 0, b, 10, PROTO_HELLO_SIZE);
	close(fd);
	strcat(peer,
	       "truncated message: the connection closed after 10 of 64 payload bytes of a HELLO");
	cr_expect(log_wait(&srv, peer, 5000), "no '%s' in the server's log", peer);

	/* Truncated message that just stops: the rest never comes. */
	fd = raw_connect(&srv, 0);
	peer_name(fd, peer, sizeof(peer));
	raw_send(fd, PROTO_HELLO, 0, b, 10, PROTO_HELLO_SIZE);
	strcat(peer, "truncated message: 10 of 64 payload bytes of a HELLO within the handshake "
		     "deadline, 1000 ms of connecting");
	cr_expect(log_wait(&srv, peer, 5000), "no '%s' in the server's log", peer);
	close(fd);

	/* Oversized length: refused before the payload is read. */
	fd = raw_connect(&srv, 0);
	peer_name(fd, peer, sizeof(peer));
	raw_send(fd, PROTO_HELLO, 0, NULL, 0, 64u << 20);
	expect_error(fd, EMSGSIZE, true, msg, sizeof(msg), 5000);
	cr_expect(strstr(msg, "67108864 bytes exceeds the limit of 4096"), "%s", msg);
	close(fd);
	strcat(peer, "HELLO message of 67108864 bytes exceeds the limit of 4096");
	cr_expect(log_wait(&srv, peer, 5000), "no '%s' in the server's log", peer);

	/* Wrong version. */
	fd = raw_connect(&srv, 0);
	peer_name(fd, peer, sizeof(peer));
	raw_hello(fd, 3, 7, 0);
	expect_error(fd, EPROTONOSUPPORT, true, msg, sizeof(msg), 5000);
	cr_expect(strstr(msg, "protocol versions 3 to 7 not supported: this page server speaks 1 to 2"),
		  "%s", msg);
	close(fd);
	strcat(peer, "protocol versions 3 to 7 not supported");
	cr_expect(log_wait(&srv, peer, 5000), "no '%s' in the server's log", peer);

	/* Not the protocol at all. */
	fd = raw_connect(&srv, 0);
	cr_assert_eq(send(fd, "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL), 18);
	expect_error(fd, EPROTO, true, msg, sizeof(msg), 5000);
	close(fd);

	/* A request before HELLO. */
	fd = raw_connect(&srv, 0);
	raw_send(fd, PROTO_PING, 1, NULL, 0, 0);
	expect_error(fd, EPROTO, true, msg, sizeof(msg), 5000);
	cr_expect(strstr(msg, "a PING before HELLO"), "%s", msg);
	close(fd);

	/* Out-of-range addresses: refused, the connection goes on. */
	fd = raw_connect(&srv, 0);
	peer_name(fd, peer, sizeof(peer));
	raw_handshake(fd);
	proto_read_encode(b, &(struct proto_read){.addr = 0x1000, .nr_pages = 1});
	raw_send(fd, PROTO_READ, 7, b, PROTO_READ_SIZE, PROTO_READ_SIZE);
	expect_error(fd, EFAULT, false, msg, sizeof(msg), 5000);
	cr_expect(strstr(msg, "outside the address space"), "%s", msg);
	proto_read_encode(b, &(struct proto_read){.addr = 1ULL << 57, .nr_pages = 1});
	raw_send(fd, PROTO_READ, 8, b, PROTO_READ_SIZE, PROTO_READ_SIZE);
	expect_error(fd, EFAULT, false, msg, sizeof(msg), 5000);
	proto_read_encode(b, &(struct proto_read){.addr = c.s.base[BIG] + 1, .nr_pages = 1});
	raw_send(fd, PROTO_READ, 9, b, PROTO_READ_SIZE, PROTO_READ_SIZE);
	expect_error(fd, EINVAL, false, msg, sizeof(msg), 5000);
	proto_read_encode(b, &(struct proto_read){.addr = c.s.base[BIG], .nr_pages = 1025});
	raw_send(fd, PROTO_READ, 10, b, PROTO_READ_SIZE, PROTO_READ_SIZE);
	expect_error(fd, EINVAL, false, msg, sizeof(msg), 5000);
	raw_send(fd, PROTO_GET_DOC, 11, "../inventory.json", 17, 17);
	expect_error(fd, EINVAL, false, msg, sizeof(msg), 5000);
	raw_send(fd, PROTO_GET_DOC, 12, "nothing.json", 12, 12);
	expect_error(fd, ENOENT, false, msg, sizeof(msg), 5000);
	raw_send(fd, PROTO_PING, 13, NULL, 0, 0);
	cr_assert(raw_recv(fd, b, PROTO_HDR_SIZE, 5000));
	cr_expect_eq(get_le16(b + 4), PROTO_PONG, "the connection goes on after refused requests");
	cr_expect_eq(get_le32(b + 8), 13);
	/* A server message from a client ends it. */
	raw_send(fd, PROTO_PAGES, 14, NULL, 0, 0);
	expect_error(fd, EPROTO, true, msg, sizeof(msg), 5000);
	close(fd);
	strcat(peer, "READ: cannot read 0x1000+1 pages: 0x1000 is outside the address space");
	cr_expect(log_wait(&srv, peer, 5000), "no '%s' in the server's log", peer);
	/* And through the library: -EFAULT, the source stays usable. */
	{
		struct ckpt_page_source *s = NULL;

		cr_assert_eq(ckpt_page_source_open_remote(srv.url, NULL, NULL, &s), 0, "%s",
			     last_err);
		cr_expect_eq(ckpt_page_source_read_page(s, 0x1000, page), -EFAULT);
		cr_expect(strstr(last_err, "page server: cannot read 0x1000+1 pages"), "%s",
			  last_err);
		cr_expect_eq(ckpt_page_source_read_page(s, c.s.base[BIG], page), CKPT_PAGE_DATA);
		ckpt_page_source_close(s);
	}

	/* A peer that disconnects in the middle of 4 MiB of pages. */
	fd = raw_connect(&srv, 4096);
	peer_name(fd, peer, sizeof(peer));
	raw_handshake(fd);
	proto_read_encode(b, &(struct proto_read){.addr = c.s.base[BIG], .nr_pages = 1024});
	raw_send(fd, PROTO_READ, 1, b, PROTO_READ_SIZE, PROTO_READ_SIZE);
	cr_assert(raw_recv(fd, page, 100, 5000));
	close(fd);
	strcat(peer, "disconnected in the middle of a PAGES reply");
	cr_expect(log_wait(&srv, peer, 5000), "no '%s' in the server's log", peer);

	/* An idle client that never says anything. */
	fd = raw_connect(&srv, 0);
	peer_name(fd, peer, sizeof(peer));
	expect_error(fd, ETIMEDOUT, true, msg, sizeof(msg), 5000);
	cr_expect(strstr(msg, "no HELLO within"), "%s", msg);
	close(fd);
	strcat(peer, "no HELLO within");
	cr_expect(log_wait(&srv, peer, 5000), "no '%s' in the server's log", peer);

	/* The good client was served all along, and still is. */
	atomic_store(&g.stop, true);
	pthread_join(t, NULL);
	cr_expect_eq(g.err, 0, "the good client failed: %s", last_err);
	cr_expect_eq(g.bad, 0, "the good client got %ld wrong pages", g.bad);
	cr_expect_gt(g.rounds, 0);
	cr_expect_eq(verify(g.src, &c.s, 1024), 0);
	ckpt_page_source_close(g.src);

	cr_assert_eq(server_stop(&srv), 0);
	log = server_log(&srv);
	cr_expect_null(strstr(log, "error:"), "the server logged an error of its own: %s", log);
	free(log);
	{
		json_object *j = conn_line(&srv, "end", "timeout");

		cr_expect_not_null(j, "no connection ended by a timeout: %s", srv.out);
		json_object_put(j);
	}
	server_done(&srv);
	ck_done(&c);
}

/* A client disconnected by the idle timeout; the server sees clients that stall mid-reply. */
Test(pageserver, idle_clients_are_disconnected)
{
	static const char *const extra[] = {"--idle-timeout", "500ms", NULL};
	struct ck c;
	struct server srv;
	struct ckpt_page_source *s = NULL;
	unsigned char page[PS];
	char peer[256];
	int fd;

	ck_make(&c, false);
	server_start(&srv, c.dir, extra);
	/* PING keeps a connection alive past the idle timeout. */
	cr_assert_eq(ckpt_page_source_open_remote(srv.url, NULL, NULL, &s), 0, "%s", last_err);
	for (int i = 0; i < 6; i++) {
		usleep(200000);
		cr_assert_eq(ckpt_page_source_ping(s), 0, "ping %d: %s", i, last_err);
	}
	cr_expect_eq(ckpt_page_source_read_page(s, c.s.base[BIG], page), CKPT_PAGE_DATA);
	fd = raw_connect(&srv, 0);
	peer_name(fd, peer, sizeof(peer));
	raw_handshake(fd);
	{
		char msg[1100];

		expect_error(fd, ETIMEDOUT, true, msg, sizeof(msg), 5000);
		cr_expect(strstr(msg, "idle: no request within 500 ms"), "%s", msg);
	}
	close(fd);
	/* The library sees the idle end as a broken connection, with the server's reason. */
	usleep(800000);
	cr_expect_lt(ckpt_page_source_read_page(s, c.s.base[BIG], page), 0);
	cr_expect(strstr(last_err, "idle") || strstr(last_err, "closed"), "%s", last_err);
	cr_expect_lt(ckpt_page_source_read_page(s, c.s.base[BIG], page), 0, "broken stays broken");
	ckpt_page_source_close(s);
	cr_assert_eq(server_stop(&srv), 0);
	server_done(&srv);
	ck_done(&c);
}

Test(pageserver, too_many_clients_are_refused)
{
	static const char *const extra[] = {"--max-clients", "2", NULL};
	struct ck c;
	struct server srv;
	struct ckpt_page_source *a = NULL, *b = NULL, *x = NULL;
	json_object *j;

	ck_make(&c, false);
	server_start(&srv, c.dir, extra);
	cr_assert_eq(ckpt_page_source_open_remote(srv.url, NULL, NULL, &a), 0, "%s", last_err);
	cr_assert_eq(ckpt_page_source_open_remote(srv.url, NULL, NULL, &b), 0, "%s", last_err);
	cr_expect_eq(ckpt_page_source_open_remote(srv.url, NULL, NULL, &x), -EBUSY);
	cr_expect(strstr(last_err, "too many clients: this page server serves 2 at a time"), "%s",
		  last_err);
	cr_expect_eq(verify(a, &c.s, 256), 0);
	ckpt_page_source_close(a);
	usleep(200000);
	cr_assert_eq(ckpt_page_source_open_remote(srv.url, NULL, NULL, &x), 0,
		     "a place freed up: %s", last_err);
	cr_expect_eq(verify(x, &c.s, 256), 0);
	ckpt_page_source_close(x);
	ckpt_page_source_close(b);
	cr_assert_eq(server_stop(&srv), 0);
	j = conn_line(&srv, "end", "refused");
	cr_expect_not_null(j, "%s", srv.out);
	json_object_put(j);
	server_done(&srv);
	ck_done(&c);
}

/*
 * Without a token, a loopback server serves root, its own user and the
 * checkpoint's owner only: another local user's HELLO is refused (EACCES,
 * fatal), since a checkpoint holds a process's memory.
 */
Test(pageserver, without_a_token_another_local_user_is_refused)
{
	struct ck c;
	struct server srv;
	char msg[512];
	pid_t pid;
	int fd, status;

	ck_make(&c, false);
	server_start(&srv, c.dir, NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* As nobody; the answer goes back as the exit status. */
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		fd = raw_connect(&srv, 0);
		raw_hello(fd, 1, 1, 0);
		expect_error(fd, EACCES, true, msg, sizeof(msg), 5000);
		_exit(strstr(msg, "not uid 65534") ? 0 : 3);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "nobody was served, or refused for another reason (status %#x)", status);
	/* Root (ourselves) still is. */
	fd = raw_connect(&srv, 0);
	raw_handshake(fd);
	close(fd);
	cr_assert_eq(server_stop(&srv), 0);
	server_done(&srv);
	ck_done(&c);
}

/* ---- GET_DOC errors, as ckpt-page-server(1) documents them ---- */

/* GET_DOC @name as request @id: the ERROR's code and text, or 0 for a DOC. */
static int raw_get_doc(int fd, uint32_t id, const char *name, size_t len, bool fatal, char *msg,
		       size_t msglen)
{
	uint8_t h[PROTO_HDR_SIZE];
	struct proto_hdr hdr;
	char why[256];

	raw_send(fd, PROTO_GET_DOC, id, name, (uint32_t)len, (uint32_t)len);
	cr_assert(raw_recv(fd, h, sizeof(h), 5000), "no reply to GET_DOC '%.*s'", (int)len, name);
	cr_assert_eq(proto_hdr_decode(h, PROTO_REPLY_MAX, why, sizeof(why), &hdr), 0, "%s", why);
	if (hdr.type == PROTO_DOC) {
		char *doc = malloc(hdr.len + 1);

		cr_assert(raw_recv(fd, doc, hdr.len, 5000));
		free(doc);
		return 0;
	}
	cr_assert_eq(hdr.type, PROTO_ERROR, "a %s to GET_DOC", proto_type_name(hdr.type));
	cr_expect_eq(hdr.id, id);
	cr_expect_eq(!!(hdr.flags & PROTO_F_FATAL), fatal, "FATAL flag of GET_DOC '%.*s'", (int)len,
		     name);
	{
		uint8_t p[PROTO_ERROR_HEAD + PROTO_ERROR_MSG_MAX];
		struct proto_error e;

		cr_assert(raw_recv(fd, p, hdr.len, 5000));
		cr_assert_eq(proto_error_decode(p, hdr.len, why, sizeof(why), &e), 0, "%s", why);
		snprintf(msg, msglen, "%.*s", (int)e.msg_len, e.msg);
		return (int)e.code;
	}
}

Test(pageserver, get_doc_errors_are_as_documented)
{
	struct ck c;
	struct server srv;
	char bad[160], cmd[400], msg[1100], longname[PROTO_DOC_NAME_MAX + 2];
	FILE *f;
	int fd;

	ck_make(&c, false);
	/* A copy whose files.json no longer matches its checksum. */
	snprintf(bad, sizeof(bad), "%s/bad", tmp);
	snprintf(cmd, sizeof(cmd), "cp -a %s %s", c.dir, bad);
	cr_assert_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/files.json", bad);
	f = fopen(cmd, "r+");
	cr_assert_not_null(f);
	fseek(f, 10, SEEK_SET);
	cr_assert_eq(fputc(' ', f) == EOF ? -1 : 0, 0);
	fseek(f, 1, SEEK_SET);
	cr_assert_eq(fputc('#', f) == EOF ? -1 : 0, 0);
	fclose(f);
	server_start(&srv, bad, NULL);

	fd = raw_connect(&srv, 0);
	raw_handshake(fd);
	/* ENOENT: no such document; pages.idx and pages.zst are not documents. */
	cr_expect_eq(raw_get_doc(fd, 1, "nothing.json", 12, false, msg, sizeof(msg)), ENOENT);
	cr_expect(strstr(msg, "no document 'nothing.json'"), "%s", msg);
	cr_expect_eq(raw_get_doc(fd, 2, "pages.zst", 9, false, msg, sizeof(msg)), ENOENT);
	cr_expect(strstr(msg, "no document 'pages.zst'"), "%s", msg);
	/* EINVAL: a name outside [A-Za-z0-9._-], or starting with '.'. */
	cr_expect_eq(raw_get_doc(fd, 3, ".hidden", 7, false, msg, sizeof(msg)), EINVAL);
	cr_expect(strstr(msg, "invalid name: only [A-Za-z0-9._-], not starting with '.'"), "%s",
		  msg);
	cr_expect_eq(raw_get_doc(fd, 4, "a/b", 3, false, msg, sizeof(msg)), EINVAL);
	/* EBADMSG: the server cannot read it; the text names the document. */
	cr_expect_eq(raw_get_doc(fd, 5, "files.json", 10, false, msg, sizeof(msg)), EBADMSG);
	cr_expect(strstr(msg, "cannot read document 'files.json' of the checkpoint"), "%s", msg);
	/* The connection went on through all of these. */
	cr_expect_eq(raw_get_doc(fd, 6, "mm.json", 7, false, msg, sizeof(msg)), 0, "%s", msg);
	/* A name over 255 bytes: a fatal EPROTO, as for an empty one. */
	memset(longname, 'a', sizeof(longname));
	cr_expect_eq(raw_get_doc(fd, 7, longname, PROTO_DOC_NAME_MAX + 1, true, msg, sizeof(msg)),
		     EPROTO);
	cr_expect(strstr(msg, "GET_DOC with a name of 256 bytes: 1 to 255 allowed"), "%s", msg);
	close(fd);
	fd = raw_connect(&srv, 0);
	raw_handshake(fd);
	cr_expect_eq(raw_get_doc(fd, 8, "", 0, true, msg, sizeof(msg)), EPROTO);
	cr_expect(strstr(msg, "GET_DOC with a name of 0 bytes: 1 to 255 allowed"), "%s", msg);
	close(fd);
	cr_expect_not(log_wait(&srv, "GET_DOC: GET_DOC", 200), "a request named twice in the log");
	cr_assert_eq(server_stop(&srv), 0);
	server_done(&srv);
	ck_done(&c);
}

/* ---- --listen ---- */

Test(pageserver, listen_port_0_picks_a_free_port_and_says_which)
{
	struct ck c;
	struct server srv;
	struct run_result r;
	unsigned int port = 0;

	cr_assert_eq(run_ckpt(&r, "page-server", "-D", tmp, "--listen", "65536", NULL), 0);
	cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
	cr_expect(strstr(r.err,
			 "invalid port '65536' in '65536': 0 (any free port) to 65535 expected"),
		  "%s", r.err);
	run_result_done(&r);
	ck_make(&c, false);
	cr_assert_eq(server_start_ns(&srv, NULL, c.dir, "0", NULL), 0, "--listen 0 was refused");
	cr_expect_eq(sscanf(srv.addr, "127.0.0.1:%u", &port), 1, "%s", srv.addr);
	cr_expect(port > 0 && port < 65536, "listening on %s", srv.addr);
	cr_assert_eq(server_stop(&srv), 0);
	server_done(&srv);
	ck_done(&c);
}

/* ---- peers that never finish their handshake ---- */

/* A TCP connection to @port from the loopback address @src (127.0.0.N); -1 on failure. */
static int connect_from(unsigned int port, const char *src)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in b = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	struct timeval tv = {.tv_sec = 1}; /* a full backlog: connect(2) gives up, never hangs */

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (fd < 0 || inet_pton(AF_INET, src, &b.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&b, sizeof(b)) < 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

#define NSILENT 40

/* NSILENT connections that never send a byte, from 4 addresses, renewed when the server ends one.
 */
struct flood {
	unsigned int port;
	int fd[NSILENT];
	atomic_bool stop;
	long renewed, failed;
};

/*
 * The flood comes from addresses of its own, as an attacker's would: the
 * good client (127.0.0.1) shares none. Sharing one, a good client that has
 * not yet sent its HELLO (its thread not scheduled on a loaded machine) is
 * as silent as the flood, and the oldest of them when the flood turns the
 * budget over every few milliseconds.
 */
static const char *flood_src(int i)
{
	static const char *const src[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};

	return src[i % 4];
}

static void *flood_main(void *arg)
{
	struct flood *f = arg;

	/* Bounded: 1500 rounds of 20 ms at most. */
	for (int round = 0; round < 1500 && !atomic_load(&f->stop); round++) {
		for (int i = 0; i < NSILENT; i++) {
			struct pollfd p = {f->fd[i], POLLIN, 0};

			if (f->fd[i] >= 0 && poll(&p, 1, 0) == 0)
				continue;
			if (f->fd[i] >= 0)
				close(f->fd[i]);
			f->fd[i] = connect_from(f->port, flood_src(i));
			if (f->fd[i] < 0)
				f->failed++;
			else
				f->renewed++;
		}
		usleep(20000);
	}
	return NULL;
}

/* A HELLO sent a byte every 250 ms from 127.0.0.9 (for at most 12 s): when the server ends it. */
struct trickle {
	unsigned int port;
	char peer[64]; /* "peer 127.0.0.9:PORT: " */
	double held;   /* seconds from connect to the server's end of it; < 0: still open */
	atomic_int sent;
};

static void *trickle_main(void *arg)
{
	struct trickle *t = arg;
	uint8_t msg[PROTO_HDR_SIZE + PROTO_HELLO_SIZE];
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	double t0;
	int fd;

	t->held = -1;
	proto_hdr_encode(msg, &(struct proto_hdr){.len = PROTO_HELLO_SIZE, .type = PROTO_HELLO});
	proto_hello_encode(msg + PROTO_HDR_SIZE,
			   &(struct proto_hello){.min_version = 1,
						 .max_version = 2,
						 .max_payload = PROTO_REPLY_MAX});
	fd = connect_from(t->port, "127.0.0.9");
	if (fd < 0)
		return NULL;
	t0 = mono_s();
	if (getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		snprintf(t->peer, sizeof(t->peer), "peer 127.0.0.9:%u: ", ntohs(a.sin_port));
	for (size_t i = 0; i < sizeof(msg) && mono_s() - t0 < 12; i++) {
		struct pollfd p = {fd, POLLIN, 0};

		if (send(fd, msg + i, 1, MSG_NOSIGNAL) == 1)
			atomic_fetch_add(&t->sent, 1);
		if (poll(&p, 1, 250) > 0) { /* the server's end: EOF, or an ERROR before it */
			t->held = mono_s() - t0;
			break;
		}
	}
	close(fd);
	return NULL;
}

/* Reads a server's stdout while it runs (a flood makes more lines than a pipe holds). */
struct drain {
	int fd;
	atomic_bool stop;
	char *buf;
	size_t len, cap;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;

	while (!atomic_load(&d->stop)) {
		struct pollfd p = {d->fd, POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		if (d->len + 4096 + 1 > d->cap) {
			char *nb = realloc(d->buf, d->cap = d->cap * 2 + 65536);

			if (!nb)
				break;
			d->buf = nb;
		}
		n = read(d->fd, d->buf + d->len, d->cap - d->len - 1);
		if (n <= 0)
			break;
		d->len += (size_t)n;
	}
	return NULL;
}

Test(pageserver, silent_and_trickling_peers_do_not_lock_out_a_good_client)
{
	char *token = token_file("token", "correct horse battery staple\n", 0600);
	const char *const extra[] = {"--token-file", token, "--handshake-timeout", "3s", NULL};
	struct flood f = {0};
	struct trickle tr = {0};
	struct drain dr = {0};
	struct ckpt_page_source *s = NULL;
	unsigned char page[PS];
	pthread_t ft, tt, dt;
	struct ck c;
	struct server srv;
	double t0, waited;
	char want[256];
	json_object *j;
	int r;

	ck_make(&c, false);
	server_start(&srv, c.dir, extra);
	dr.fd = srv.p.out_fd;
	cr_assert_eq(pthread_create(&dt, NULL, drain_main, &dr), 0);
	cr_assert_eq(sscanf(srv.addr, "127.0.0.1:%u", &f.port), 1);
	tr.port = f.port;
	cr_assert_eq(pthread_create(&tt, NULL, trickle_main, &tr), 0);
	/* The trickler connects first: it holds its place, the flood comes after it. */
	for (int i = 0; i < 200 && !atomic_load(&tr.sent); i++)
		usleep(10000);
	cr_assert_gt(atomic_load(&tr.sent), 0, "the trickler could not connect from 127.0.0.9");
	for (int i = 0; i < NSILENT; i++) {
		f.fd[i] = connect_from(f.port, flood_src(i));
		cr_assert_geq(f.fd[i], 0, "cannot connect from %s: %m", flood_src(i));
	}
	cr_assert_eq(pthread_create(&ft, NULL, flood_main, &f), 0);
	usleep(500000); /* every silent connection accepted, and renewed once dropped */

	/*
	 * A client with the token, while NSILENT silent connections are held and
	 * renewed and a HELLO trickles in: served now, not once the handshake
	 * deadline (3 s) frees a place, and not refused.
	 */
	t0 = mono_s();
	r = ckpt_page_source_open_remote(srv.url, token, NULL, &s);
	cr_expect_eq(r, 0, "a good client under a flood of silent peers: %s", last_err);
	if (r == 0) {
		cr_expect_eq(ckpt_page_source_read_page(s, c.s.base[BIG], page), CKPT_PAGE_DATA,
			     "%s", last_err);
		cr_expect_eq(verify(s, &c.s, 256), 0);
	}
	waited = mono_s() - t0;
	cr_log_info("good client served in %.3f s under %d silent peers (renewed %ld times)",
		    waited, NSILENT, f.renewed);
	cr_expect_lt(waited, 2.0, "the good client waited %.3f s", waited);
	ckpt_page_source_close(s);

	/* The trickler: ended by the deadline on the whole handshake, not 30 s later. */
	pthread_join(tt, NULL);
	cr_log_info("a HELLO trickled a byte per 250 ms held a slot %.3f s (%d bytes sent)",
		    tr.held, atomic_load(&tr.sent));
	cr_expect_geq(tr.held, 2.5, "the trickler was ended after %.3f s, before its deadline",
		      tr.held);
	cr_expect_leq(tr.held, 6.0, "the trickler held its slot %.3f s (-1: over 12 s)", tr.held);
	atomic_store(&f.stop, true);
	pthread_join(ft, NULL);
	for (int i = 0; i < NSILENT; i++)
		if (f.fd[i] >= 0)
			close(f.fd[i]);
	cr_expect_gt(f.renewed, 0, "no silent connection was ever dropped");
	snprintf(want, sizeof(want), "%struncated message: ", tr.peer);
	cr_expect(log_wait(&srv, want, 2000), "no '%s' in the server's log", want);
	cr_expect(
		log_wait(&srv, "bytes within the handshake deadline, 3000 ms of connecting", 2000),
		"no handshake deadline in the server's log");
	cr_expect(log_wait(&srv, "dropped for a newer connection", 2000),
		  "no dropped connection in the server's log");

	atomic_store(&dr.stop, true);
	pthread_join(dt, NULL);
	cr_assert_eq(server_stop(&srv), 0);
	/* What was drained, then the rest. */
	dr.buf = realloc(dr.buf, dr.len + strlen(srv.out) + 1);
	cr_assert_not_null(dr.buf);
	strcpy(dr.buf + dr.len, srv.out);
	free(srv.out);
	srv.out = dr.buf;
	j = conn_line(&srv, "end", "dropped");
	/* Not the output itself in a message: thousands of lines (Criterion chokes on them). */
	cr_expect_not_null(j, "no connection ended as dropped (%zu bytes of output)",
			   strlen(srv.out));
	json_object_put(j);
	j = conn_line(&srv, "authenticated", "true");
	cr_expect_not_null(j, "the good client did not get through (%zu bytes of output)",
			   strlen(srv.out));
	if (j)
		cr_expect_gt(jint(j, "data_pages"), 0);
	json_object_put(j);
	server_done(&srv);
	free(token);
	ck_done(&c);
}

/* The budgets are checked: more in their handshake from one address than in all is refused. */
Test(pageserver, handshake_budgets_are_checked)
{
	struct run_result r;

	cr_assert_eq(run_ckpt(&r, "page-server", "-D", tmp, "--listen", "127.0.0.1:0",
			      "--max-handshakes", "2", "--max-handshakes-per-address", "3", NULL),
		     0);
	cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
	cr_expect(strstr(r.err, "--max-handshakes-per-address 3 is more than --max-handshakes 2"),
		  "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "page-server", "-D", tmp, "--listen", "127.0.0.1:0",
			      "--max-handshakes", "0", NULL),
		     0);
	cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
	cr_expect(strstr(r.err, "invalid --max-handshakes '0': 1 to 1024"), "%s", r.err);
	run_result_done(&r);
}

/* ---- a page server that accepts and never answers ---- */

/* Wait up to @ms for @pid; its status, or -1 (then it is killed). */
static int wait_bounded(pid_t pid, int ms)
{
	double deadline = mono_s() + ms / 1000.0;
	int status;

	do {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return status;
		usleep(10000);
	} while (mono_s() < deadline);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

Test(pageserver, restore_from_a_server_that_never_answers_stops_on_a_signal)
{
	static const struct {
		const char *lazy;
		int sig;
		const char *name;
	} cases[] = {{NULL, SIGINT, "SIGINT"}, {"--lazy", SIGTERM, "SIGTERM"}};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t l = sizeof(a);
		char url[64], errpath[160], *err;
		struct pollfd p;
		double t0, took;
		int lfd, status;
		pid_t pid;
		FILE *f;

		/* Accepts (the kernel does) and never answers: no accept(2), no byte. */
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(lfd, 0);
		cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0, "%m");
		cr_assert_eq(listen(lfd, 4), 0);
		cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &l), 0);
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", ntohs(a.sin_port));
		snprintf(errpath, sizeof(errpath), "%s/restore-%zu.err", tmp, i);
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			int n = open("/dev/null", O_RDWR);

			dup2(n, 0);
			dup2(n, 1);
			dup2(e, 2);
			execl(ckpt_bin(), "ckpt", "restore", "--from", url, cases[i].lazy,
			      (char *)NULL);
			_exit(127);
		}
		/* Connected: it now waits for the server's HELLO. */
		p = (struct pollfd){lfd, POLLIN, 0};
		cr_assert_eq(poll(&p, 1, 10000), 1, "restore --from %s never connected", url);
		usleep(300000);
		t0 = mono_s();
		kill(pid, cases[i].sig);
		status = wait_bounded(pid, 10000);
		took = mono_s() - t0;
		cr_log_info("restore --from a silent server: %s ended it after %.3f s",
			    cases[i].name, took);
		cr_expect_neq(status, -1, "restore %s ignored %s for 10 s",
			      cases[i].lazy ?: "(eager)", cases[i].name);
		cr_expect(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == cases[i].sig,
			  "restore %s: status %#x, not dead of %s (exit 128+%d)",
			  cases[i].lazy ?: "(eager)", status, cases[i].name, cases[i].sig);
		cr_expect_lt(took, 3.0, "%s took %.3f s to end it", cases[i].name, took);
		f = fopen(errpath, "r");
		cr_assert_not_null(f);
		err = calloc(1, 8192);
		cr_assert_not_null(err);
		(void)!fread(err, 1, 8191, f);
		fclose(f);
		cr_expect(strstr(err, "interrupted by") && strstr(err, cases[i].name) &&
				  strstr(err, "nothing was restored"),
			  "restore %s: %s", cases[i].lazy ?: "(eager)", err);
		free(err);
		close(lfd);
	}
}

/* ---- tokens ---- */

Test(pageserver, tokens_are_checked_both_ways)
{
	struct ck c;
	struct server srv, plain;
	struct ckpt_page_source *s = NULL;
	char *good = token_file("token", "correct horse battery staple\n", 0600);
	char *wrong = token_file("wrong", "incorrect horse battery staple\n", 0600);
	const char *const extra[] = {"--token-file", good, NULL};
	char peer[256], msg[1100];
	json_object *j;
	int fd;

	ck_make(&c, false);
	server_start(&srv, c.dir, extra);
	/* The same token: served, and the server proved itself. */
	cr_assert_eq(ckpt_page_source_open_remote(srv.url, good, NULL, &s), 0, "%s", last_err);
	cr_expect_eq(verify(s, &c.s, 256), 0);
	ckpt_page_source_close(s);
	s = NULL;
	/* A wrong token. */
	cr_expect_eq(ckpt_page_source_open_remote(srv.url, wrong, NULL, &s), -EACCES);
	cr_expect(strstr(last_err, "authentication failed: wrong token"), "%s", last_err);
	cr_expect(log_wait(&srv, "authentication failed: wrong token", 5000));
	/* No token. */
	cr_expect_eq(ckpt_page_source_open_remote(srv.url, NULL, NULL, &s), -EACCES);
	cr_expect(strstr(last_err, "authentication required"), "%s", last_err);
	/* A raw client that claims a token and sends a made-up MAC. */
	fd = raw_connect(&srv, 0);
	peer_name(fd, peer, sizeof(peer));
	{
		uint8_t h[PROTO_HDR_SIZE + PROTO_HELLO_SIZE], mac[PROTO_MAC_LEN] = {0};

		raw_hello(fd, 1, 1, PROTO_CAP_AUTH);
		cr_assert(raw_recv(fd, h, sizeof(h), 5000));
		cr_expect(get_le32(h + PROTO_HDR_SIZE + 12) & PROTO_CAP_AUTH,
			  "the server asks for AUTH");
		raw_send(fd, PROTO_AUTH, 0, mac, sizeof(mac), sizeof(mac));
		expect_error(fd, EACCES, true, msg, sizeof(msg), 5000);
	}
	close(fd);
	strcat(peer, "authentication failed: wrong token");
	cr_expect(log_wait(&srv, peer, 5000), "no '%s' in the log", peer);
	cr_assert_eq(server_stop(&srv), 0);
	j = conn_line(&srv, "authenticated", "true");
	cr_expect_not_null(j, "no authenticated connection: %s", srv.out);
	json_object_put(j);
	server_done(&srv);

	/* A client with a token refuses a server without one. */
	server_start(&plain, c.dir, NULL);
	cr_expect_eq(ckpt_page_source_open_remote(plain.url, good, NULL, &s), -EACCES);
	cr_expect(strstr(last_err, "does not authenticate itself"), "%s", last_err);
	cr_assert_eq(server_stop(&plain), 0);
	server_done(&plain);
	free(good);
	free(wrong);
	ck_done(&c);
}

Test(pageserver, a_token_is_required_off_loopback)
{
	char dir[160];
	struct run_result r;
	struct ckpt_page_source *s = NULL;
	char *loose = token_file("loose", "0123456789abcdef0123456789\n", 0644);

	snprintf(dir, sizeof(dir), "%s/none", tmp);
	cr_assert_eq(run_ckpt(&r, "page-server", "-D", dir, "--listen", "0.0.0.0:0", NULL), 0);
	cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
	cr_expect(strstr(r.err, "0.0.0.0:0: not a loopback address; a token file is required"),
		  "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "page-server", "-D", dir, "--listen", "[::]:0", NULL), 0);
	cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "page-server", "-D", dir, "--listen", "127.0.0.1:0",
			      "--token-file", loose, NULL),
		     0);
	cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
	cr_expect(strstr(r.err, "chmod 600"), "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "page-server", "-D", dir, "--listen", "127.0.0.1:0", NULL), 0);
	cr_expect_eq(r.status, 1, "a missing checkpoint: exit %d: %s", r.status, r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "page-server", "--listen", "127.0.0.1:0", NULL), 0);
	cr_expect_eq(r.status, 2);
	cr_expect(strstr(r.err, "-D DIR is required"), "%s", r.err);
	run_result_done(&r);
	/* The client refuses to connect to a non-loopback address without a token. */
	cr_expect_eq(ckpt_page_source_open_remote("tcp://10.255.255.1:7000", NULL, NULL, &s),
		     -EPERM);
	cr_expect(strstr(last_err, "a token file is required"), "%s", last_err);
	cr_expect_eq(ckpt_page_source_open_remote("http://127.0.0.1:7000", NULL, NULL, &s),
		     -EINVAL);
	free(loose);
}

/* ---- across two network namespaces ---- */

static struct netns_pair ns;

static void netns_teardown(void)
{
	netns_pair_destroy(&ns);
	teardown();
}

TestSuite(pageserver_netns, .init = setup, .fini = netns_teardown, .timeout = 120);

enum { NS_OK = 0, NS_SETNS = 10, NS_OPEN, NS_PAGES, NS_DOCS, NS_NOTOKEN, NS_WRONGTOKEN };

/* In namespace B (a forked child): the checks, as an exit code. */
static int netns_client(const char *url, const char *token, const char *wrong, const struct sums *s,
			const char *dir)
{
	char path[64];
	int fd;
	struct ckpt_page_source *src = NULL;
	json_object *a = NULL, *b = NULL;
	struct ckpt_page_source *local = NULL;
	bool same;

	snprintf(path, sizeof(path), "/run/netns/%s", ns.b);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		return NS_SETNS;
	close(fd);
	if (ckpt_page_source_open_remote(url, NULL, NULL, &src) != -EPERM)
		return NS_NOTOKEN;
	if (ckpt_page_source_open_remote(url, wrong, NULL, &src) != -EACCES)
		return NS_WRONGTOKEN;
	if (ckpt_page_source_open_remote(url, token, NULL, &src) != 0) {
		fprintf(stderr, "%s\n", last_err);
		return NS_OPEN;
	}
	if (verify(src, s, 1) != 0 || verify(src, s, 256) != 0 || verify(src, s, 4096) != 0)
		return NS_PAGES;
	if (ckpt_page_source_get_json(src, "mm.json", &a) != 0 ||
	    ckpt_page_source_open_local(dir, NULL, &local) != 0 ||
	    ckpt_page_source_get_json(local, "mm.json", &b) != 0)
		return NS_DOCS;
	same = json_object_equal(a, b);
	json_object_put(a);
	json_object_put(b);
	ckpt_page_source_close(local);
	ckpt_page_source_close(src);
	if (!same)
		return NS_DOCS;
	return NS_OK;
}

Test(pageserver_netns, across_a_veth_pair_with_a_token)
{
	struct ck c;
	struct server srv;
	char err[512], listen[64];
	char *token = token_file("token", "a shared secret of some length\n", 0600);
	char *wrong = token_file("wrong", "another secret, not the same\n", 0600);
	const char *const extra[] = {"--token-file", token, NULL};
	const char *const none[] = {NULL};
	int status;
	pid_t child;
	json_object *j;

	if (netns_pair_create(&ns, "ckps", err, sizeof(err)) < 0)
		cr_skip_test("cannot create a network namespace (ip netns add): %s", err);
	ck_make(&c, false);
	/* Without a token the server refuses to listen on the veth address. */
	snprintf(listen, sizeof(listen), "%s:0", ns.addr_a);
	cr_expect_neq(server_start_ns(&srv, ns.a, c.dir, listen, none), 0,
		      "the server started on %s without a token", listen);
	cr_expect_eq(prog_wait(&srv.p, 10000), 2 << 8, "exit status 2 expected");
	close(srv.p.out_fd);
	cr_assert_eq(server_start_ns(&srv, ns.a, c.dir, listen, extra), 0,
		     "the page server did not start in %s", ns.a);
	cr_assert(strncmp(srv.addr, "10.231.", 7) == 0, "%s", srv.addr);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0)
		_exit(netns_client(srv.url, token, wrong, &c.s, c.dir));
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_expect(WIFEXITED(status), "the client in %s died: status %#x", ns.b, status);
	cr_expect_eq(WEXITSTATUS(status), NS_OK,
		     "the client in %s failed at step %d (10 setns, 11 open, 12 pages, 13 docs, "
		     "14 no token accepted, 15 wrong token accepted)",
		     ns.b, WEXITSTATUS(status));
	cr_assert_eq(server_stop(&srv), 0);
	j = conn_line(&srv, "authenticated", "true");
	cr_expect_not_null(j, "no authenticated connection: %s", srv.out);
	if (j) {
		cr_expect(strncmp(jstr(j, "peer"), "10.231.", 7) == 0, "peer %s", jstr(j, "peer"));
		cr_expect_gt(jint(j, "data_pages"), 1024);
	}
	json_object_put(j);
	cr_expect(log_wait(&srv, "authentication failed: wrong token", 1000));
	server_done(&srv);
	free(token);
	free(wrong);
	ck_done(&c);
}

/* ---- process trees (protocol version 2): SELECT a process's checkpoint ---- */

/* A checkpoint of test/progs/tree in tmp/tree; the proc-PID name of one worker in @worker. */
static void tree_checkpoint(char *dir, size_t len, char *worker, size_t wlen)
{
	struct prog p;
	struct run_result r;
	char line[128], file[160], pid[16];
	int root = 0;
	FILE *f;

	snprintf(file, sizeof(file), "%s/tree.file", tmp);
	cr_assert_eq(prog_start(&p, true, 0, "tree", file, NULL), 0);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0);
	cr_assert_eq(sscanf(line, "pid %d", &root), 1, "%s", line);
	snprintf(pid, sizeof(pid), "%d", root);
	snprintf(line, sizeof(line), "/proc/%d/task/%d/children", root, root);
	f = fopen(line, "r");
	cr_assert_not_null(f);
	worker[0] = 0;
	/* The last child is a live worker (the zombie came first). */
	for (int kid; fscanf(f, "%d", &kid) == 1;)
		snprintf(worker, wlen, "proc-%d", kid);
	fclose(f);
	snprintf(dir, len, "%s/tree", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_kill(&p);
}

/* SELECT @name as request @id; the reply's type (ERROR: its code in @code). */
static uint16_t raw_select(int fd, uint32_t id, const char *name, int *code)
{
	uint8_t h[PROTO_HDR_SIZE], p[PROTO_ERROR_HEAD + PROTO_ERROR_MSG_MAX];
	struct proto_hdr hdr;
	struct proto_error e;
	char why[256];

	raw_send(fd, PROTO_SELECT, id, name, (uint32_t)strlen(name), (uint32_t)strlen(name));
	cr_assert(raw_recv(fd, h, sizeof(h), 5000), "no answer to SELECT %s", name);
	cr_assert_eq(proto_hdr_decode(h, sizeof(p), why, sizeof(why), &hdr), 0, "%s", why);
	cr_expect_eq(hdr.id, id);
	*code = 0;
	if (hdr.type == PROTO_ERROR) {
		cr_assert(raw_recv(fd, p, hdr.len, 5000));
		cr_assert_eq(proto_error_decode(p, hdr.len, why, sizeof(why), &e), 0, "%s", why);
		*code = (int)e.code;
	}
	return hdr.type;
}

Test(pageserver, select_serves_each_process_of_a_tree_and_nothing_outside)
{
	static const char *const bad[] = { "../proc-1", "proc-01", "proc-1/..", "proc-", "proc-1x", "tree.json",
					   "proc-123456789012" };
	char dir[128], worker[32], path[256], msg[1100];
	struct ckpt_page_source *remote = NULL, *local = NULL, *top = NULL;
	json_object *a = NULL, *b = NULL;
	struct server srv;
	uint8_t h[PROTO_HDR_SIZE + PROTO_HELLO_SIZE];
	struct proto_hello hello;
	int fd, code;

	tree_checkpoint(dir, sizeof(dir), worker, sizeof(worker));
	cr_assert(worker[0], "no worker in the tree");
	/* A link in the served directory that looks like a process: not followed. */
	snprintf(path, sizeof(path), "%s/proc-4242", dir);
	cr_assert_eq(symlink("/etc", path), 0, "%m");
	server_start(&srv, dir, NULL);

	/* Through the library: the worker's checkpoint, as the local one. */
	snprintf(path, sizeof(path), "%s/%s", dir, worker);
	cr_assert_eq(ckpt_page_source_open_remote_proc(srv.url, worker, NULL, NULL, &remote), 0, "%s", last_err);
	cr_assert_eq(ckpt_page_source_open_local(path, NULL, &local), 0, "%s", last_err);
	cr_assert_eq(ckpt_page_source_open_remote(srv.url, NULL, NULL, &top), 0, "%s", last_err);
	cr_assert_eq(ckpt_page_source_get_json(remote, "process.json", &a), 0, "%s", last_err);
	cr_assert_eq(ckpt_page_source_get_json(local, "process.json", &b), 0, "%s", last_err);
	cr_expect(json_object_equal(a, b), "the worker's process.json differs");
	json_object_put(a);
	json_object_put(b);
	cr_assert_eq(ckpt_page_source_get_json(remote, CKPT_PAGE_SOURCE_SUMMARY, &a), 0, "%s", last_err);
	cr_assert_eq(ckpt_page_source_get_json(top, CKPT_PAGE_SOURCE_SUMMARY, &b), 0, "%s", last_err);
	cr_expect(!json_object_equal(json_object_object_get(a, "id"), json_object_object_get(b, "id")),
		  "the worker's checkpoint is the root's");
	json_object_put(a);
	json_object_put(b);
	same_ranges(remote, local);
	ckpt_page_source_close(remote);
	remote = NULL;
	/* No such process, and names that are not proc-PID: refused before any connection goes on. */
	cr_expect_eq(ckpt_page_source_open_remote_proc(srv.url, "proc-999999", NULL, NULL, &remote), -ENOENT);
	cr_expect_eq(ckpt_page_source_open_remote_proc(srv.url, "../tree", NULL, NULL, &remote), -EINVAL);
	ckpt_page_source_close(local);
	ckpt_page_source_close(top);

	/* Raw, version 2: bad names refused, the connection goes on. */
	fd = raw_connect(&srv, 0);
	raw_hello(fd, 1, 2, 0);
	cr_assert(raw_recv(fd, h, sizeof(h), 5000), "no HELLO from the server");
	cr_assert_eq(proto_hello_decode(h + PROTO_HDR_SIZE, PROTO_HELLO_SIZE, msg, sizeof(msg), &hello), 0, "%s",
		     msg);
	cr_expect(hello.min_version == 2 && hello.max_version == 2, "picked %u-%u", hello.min_version,
		  hello.max_version);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(raw_select(fd, (uint32_t)(10 + i), bad[i], &code), PROTO_ERROR, "SELECT %s", bad[i]);
		cr_expect(code == EINVAL || (code == EPROTO && strlen(bad[i]) > PROTO_PROC_NAME_MAX),
			  "SELECT %s: error %d", bad[i], code);
		if (code == EPROTO) { /* fatal: a new connection */
			close(fd);
			fd = raw_connect(&srv, 0);
			raw_hello(fd, 1, 2, 0);
			cr_assert(raw_recv(fd, h, sizeof(h), 5000));
		}
	}
	cr_expect_eq(raw_select(fd, 30, "proc-4242", &code), PROTO_ERROR, "a link was followed");
	cr_expect_eq(code, ENOENT);
	cr_expect_eq(raw_select(fd, 31, worker, &code), PROTO_SELECTED, "SELECT %s: error %d", worker, code);
	close(fd);

	/* Version 1 knows no SELECT: a fatal protocol error. */
	fd = raw_connect(&srv, 0);
	raw_handshake(fd);
	raw_send(fd, PROTO_SELECT, 1, worker, (uint32_t)strlen(worker), (uint32_t)strlen(worker));
	expect_error(fd, EPROTO, true, msg, sizeof(msg), 5000);
	cr_expect(strstr(msg, "unexpected SELECT"), "%s", msg);
	close(fd);
	server_done(&srv);
}
