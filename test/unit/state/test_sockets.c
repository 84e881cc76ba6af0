/* SPDX-License-Identifier: MIT */
/*
 * Sockets in files.json: round trip of what the dump reads (addresses,
 * options, queue, socket file, netlink), how a socket is named, what the
 * judge says of each kind, and hostile documents refused.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ckpt/state.h>

#define WHY 512
#define NR 4

static struct ckpt_state *socks_state(void)
{
	struct ckpt_state *s;
	struct ckpt_state_socket *k;
	struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "/run/x.sock" };
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(8080), .sin_addr.s_addr = htonl(0x7f000001) };

	cr_assert_eq(ckpt_state_new(&s), 0);
	s->process.pid = 42;
	s->nr_threads = 1;
	s->threads = calloc(1, sizeof(*s->threads));
	s->threads[0].tid = 42;
	s->nr_fds = NR;
	s->fds = calloc(NR, sizeof(*s->fds));
	for (int i = 0; i < NR; i++) {
		s->fds[i].fd = 3 + i;
		s->fds[i].kind = CKPT_STATE_FD_SOCKET;
		s->fds[i].path = strdup("socket:[1]");
		s->fds[i].id.ino = 100 + (uint64_t)i;
		s->fds[i].sock.found = s->fds[i].sock.known = true;
		s->fds[i].sock.peer_fd = -1;
	}
	k = &s->fds[0].sock; /* a unix dgram socket bound to a path, two datagrams waiting */
	k->family = AF_UNIX;
	k->type = SOCK_DGRAM;
	k->state = TCP_CLOSE;
	strcpy(k->local, "/run/x.sock");
	k->addr_len = (uint32_t)(offsetof(struct sockaddr_un, sun_path) + strlen(un.sun_path) + 1);
	memcpy(k->addr, &un, k->addr_len);
	k->rqueue = 7;
	k->queue_blob = strdup("sock-queue-fd-3");
	k->queue_len = 7;
	k->nr_msgs = 2;
	k->msg_lens = calloc(2, sizeof(uint32_t));
	k->msg_lens[0] = 3;
	k->msg_lens[1] = 4;
	k->has_file = true;
	k->file_mode = 0640;
	k->file_uid = 1000;
	k->file_gid = 100;
	k->opt_mask = 1ULL << CKPT_SO_PASSCRED | 1ULL << CKPT_SO_RCVTIMEO;
	k->opts[CKPT_SO_PASSCRED] = 1;
	k->opts[CKPT_SO_RCVTIMEO] = 1500000;
	k = &s->fds[1].sock; /* a TCP listener with options */
	k->family = AF_INET;
	k->type = SOCK_STREAM;
	k->protocol = IPPROTO_TCP;
	k->state = TCP_LISTEN;
	k->listening = true;
	k->backlog = 11;
	k->pending = 2;
	strcpy(k->local, "127.0.0.1:8080");
	strcpy(k->remote, "0.0.0.0:0");
	k->addr_len = sizeof(in);
	memcpy(k->addr, &in, sizeof(in));
	k->opt_mask = 1ULL << CKPT_SO_REUSEADDR | 1ULL << CKPT_TCP_NODELAY | 1ULL << CKPT_SO_LINGER;
	k->opts[CKPT_SO_REUSEADDR] = 1;
	k->opts[CKPT_TCP_NODELAY] = 1;
	k->opts[CKPT_SO_LINGER] = -1;
	k = &s->fds[2].sock; /* netlink */
	k->family = AF_NETLINK;
	k->type = SOCK_RAW;
	k->protocol = NETLINK_ROUTE;
	k->nl_portid = 42;
	k->nl_groups = 1;
	k->nl_dst_group = 3;
	k = &s->fds[3].sock; /* an established TCP connection saved with TCP_REPAIR */
	k->family = AF_INET;
	k->type = SOCK_STREAM;
	k->protocol = IPPROTO_TCP;
	k->state = TCP_ESTABLISHED;
	k->addr_len = sizeof(in);
	memcpy(k->addr, &in, sizeof(in));
	in.sin_port = htons(40000);
	k->peer_addr_len = sizeof(in);
	memcpy(k->peer_addr, &in, sizeof(in));
	k->tcp = (struct ckpt_state_tcp){ .saved = true, .inq_seq = 0xfffffff0u, .outq_seq = 7,
					  .inq_len = 5, .outq_len = 100, .unsq_len = 40, .mss = 65483,
					  .opts = 7, .snd_wscale = 7, .rcv_wscale = 9, .timestamp = 123456,
					  .has_window = true, .snd_wl1 = 1, .snd_wnd = 2, .max_window = 3,
					  .rcv_wnd = 4, .rcv_wup = 5 };
	k->tcp.recv_blob = strdup("blob-tcp-recv-fd-6");
	k->tcp.send_blob = strdup("blob-tcp-send-fd-6");
	for (int i = 0; i < NR; i++)
		cr_assert_eq(ckpt_state_fd_judge(&s->fds[i]), 0);
	return s;
}

static struct ckpt_state *round_trip(const struct ckpt_state *s, json_object **ret_doc)
{
	json_object *docs[CKPT_STATE_NR_DOCS] = { 0 };
	struct ckpt_state *back = NULL;
	char why[WHY];

	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		cr_assert_eq(ckpt_state_doc_to_json(s, (enum ckpt_state_doc)d, &docs[d]), 0);
	cr_assert_eq(ckpt_state_from_docs(docs, why, sizeof(why), &back), 0, "%s", why);
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		if (d == CKPT_STATE_DOC_FILES && ret_doc)
			*ret_doc = docs[d];
		else
			json_object_put(docs[d]);
	return back;
}

Test(state_sockets, round_trip)
{
	_cleanup_state_ struct ckpt_state *s = socks_state(), *b = round_trip(s, NULL);

	cr_assert_eq(b->nr_fds, NR);
	for (int i = 0; i < NR; i++) {
		struct ckpt_state_socket x = s->fds[i].sock, y = b->fds[i].sock;

		cr_expect(b->fds[i].restorable, "fd %d: %s", i, b->fds[i].reason);
		cr_expect_str_eq(y.queue_blob ? y.queue_blob : "-", x.queue_blob ? x.queue_blob : "-");
		cr_assert_eq(y.nr_msgs, x.nr_msgs);
		if (x.nr_msgs)
			cr_expect_eq(memcmp(x.msg_lens, y.msg_lens, x.nr_msgs * sizeof(uint32_t)), 0);
		cr_expect_str_eq(y.tcp.recv_blob ? y.tcp.recv_blob : "-", x.tcp.recv_blob ? x.tcp.recv_blob : "-");
		cr_expect_str_eq(y.tcp.send_blob ? y.tcp.send_blob : "-", x.tcp.send_blob ? x.tcp.send_blob : "-");
		x.queue_blob = y.queue_blob = NULL;
		x.msg_lens = y.msg_lens = NULL;
		x.tcp.recv_blob = y.tcp.recv_blob = x.tcp.send_blob = y.tcp.send_blob = NULL;
		cr_expect_eq(memcmp(&x, &y, sizeof(x)), 0, "socket %d differs", i);
	}
}

Test(state_sockets, named_as_ss_lists_them)
{
	_cleanup_state_ struct ckpt_state *s = socks_state();
	char buf[256];

	cr_expect_str_eq(ckpt_state_socket_name(&s->fds[0].sock, 100, buf, sizeof(buf)),
			 "u_dgr unconn /run/x.sock peer * recv-q 7 send-q 0");
	cr_expect_str_eq(ckpt_state_socket_name(&s->fds[1].sock, 101, buf, sizeof(buf)),
			 "tcp listen 127.0.0.1:8080 recv-q 2 send-q 11");
	cr_expect_str_eq(ckpt_state_socket_name(&s->fds[3].sock, 103, buf, sizeof(buf)),
			 "tcp established 127.0.0.1:8080 peer 127.0.0.1:40000 recv-q 0 send-q 0");
	s->fds[1].sock.found = s->fds[1].sock.known = false;
	cr_expect_str_eq(ckpt_state_socket_name(&s->fds[1].sock, 101, buf, sizeof(buf)), "socket:[101]");
}

/* Each case: one change to the TCP listener (fd 1) or the unix socket (fd 0), and the verdict. */
Test(state_sockets, judge)
{
	static const struct {
		int fd;
		int family, type, protocol, state;
		bool listening;
		uint64_t peer_ino;
		int peer_fd;
		bool external;
		const char *why; /* NULL: restorable */
	} cases[] = {
		{ 1, AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_LISTEN, true, 0, -1, false, NULL },
		{ 1, AF_INET6, SOCK_STREAM, IPPROTO_TCP, TCP_CLOSE, false, 0, -1, false, NULL },
		{ 1, AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_ESTABLISHED, false, 0, -1, false, "an established TCP connection" },
		{ 1, AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_TIME_WAIT, false, 0, -1, false, "TIME_WAIT" },
		{ 1, AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_FIN_WAIT1, false, 0, -1, false, "half-closed" },
		{ 1, AF_INET, SOCK_DGRAM, IPPROTO_UDP, TCP_ESTABLISHED, false, 0, -1, false, NULL },
		{ 1, AF_INET, SOCK_RAW, IPPROTO_ICMP, TCP_CLOSE, false, 0, -1, false, "a raw IP socket" },
		{ 1, AF_PACKET, SOCK_DGRAM, 0, 0, false, 0, -1, false, "a packet socket" },
		{ 1, 40 /* AF_VSOCK */, SOCK_STREAM, 0, 0, false, 0, -1, false, "a socket of a family other" },
		{ 0, AF_UNIX, SOCK_STREAM, 0, TCP_ESTABLISHED, false, 77, 5, false, NULL },
		{ 0, AF_UNIX, SOCK_STREAM, 0, TCP_ESTABLISHED, false, 77, -1, false, "--ext-unix-sk" },
		{ 0, AF_UNIX, SOCK_STREAM, 0, TCP_ESTABLISHED, false, 0, -1, false, "--ext-unix-sk" }, /* not accepted yet */
		{ 0, AF_UNIX, SOCK_DGRAM, 0, TCP_ESTABLISHED, false, 77, -1, true, "bytes from it waiting" },
		{ 0, AF_UNIX, 99, 0, 0, false, 0, -1, false, "a unix socket of a type other" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		_cleanup_state_ struct ckpt_state *s = socks_state();
		struct ckpt_state_fd *f = &s->fds[cases[i].fd];
		struct ckpt_state_socket *k = &f->sock;

		k->family = cases[i].family;
		k->type = cases[i].type;
		k->protocol = cases[i].protocol;
		k->state = cases[i].state;
		k->listening = cases[i].listening;
		k->peer_ino = cases[i].peer_ino;
		k->peer_fd = cases[i].peer_fd;
		k->external = cases[i].external;
		if (k->external) { /* connected to the listener at its own path */
			memcpy(k->peer_addr, k->addr, k->addr_len);
			k->peer_addr_len = k->addr_len;
		}
		cr_assert_eq(ckpt_state_fd_judge(f), 0);
		if (!cases[i].why) {
			cr_expect(f->restorable, "case %zu: %s", i, f->reason);
			continue;
		}
		cr_expect(!f->restorable && f->reason && strstr(f->reason, cases[i].why), "case %zu: '%s'",
			  i, f->reason ? f->reason : "(restorable)");
	}
	/* An established connection saved with TCP_REPAIR is restorable; without, refused. */
	{
		_cleanup_state_ struct ckpt_state *s = socks_state();
		struct ckpt_state_fd *f = &s->fds[3];

		cr_expect(f->restorable, "%s", f->reason);
		f->sock.tcp.saved = false;
		cr_assert_eq(ckpt_state_fd_judge(f), 0);
		cr_expect(!f->restorable && strstr(f->reason, "--tcp-established"), "%s", f->reason);
	}
	/* A peer that closed (shut down both ways) is not an outside one. */
	{
		_cleanup_state_ struct ckpt_state *s = socks_state();
		struct ckpt_state_fd *f = &s->fds[0];

		f->sock.type = SOCK_STREAM;
		f->sock.state = TCP_ESTABLISHED;
		f->sock.shutdown = 3;
		cr_assert_eq(ckpt_state_fd_judge(f), 0);
		cr_expect(f->restorable, "%s", f->reason);
		f->sock.known = false; /* an older checkpoint */
		cr_assert_eq(ckpt_state_fd_judge(f), 0);
		cr_expect(!f->restorable && strstr(f->reason, "does not describe"), "%s", f->reason);
	}
}

static json_object *sock_obj(json_object *files, int i)
{
	return json_object_object_get(json_object_array_get_idx(json_object_object_get(files, "fds"), i),
				      "socket");
}

static void expect_refused(json_object *files, const char *want)
{
	_cleanup_state_ struct ckpt_state *s = socks_state(), *b = NULL;
	json_object *docs[CKPT_STATE_NR_DOCS] = { 0 };
	char why[WHY];

	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		if (d != CKPT_STATE_DOC_FILES)
			cr_assert_eq(ckpt_state_doc_to_json(s, (enum ckpt_state_doc)d, &docs[d]), 0);
	docs[CKPT_STATE_DOC_FILES] = files;
	cr_expect_eq(ckpt_state_from_docs(docs, why, sizeof(why), &b), -EBADMSG, "accepted, want '%s'", want);
	cr_expect(strstr(why, want), "'%s' not in '%s'", want, why);
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		if (d != CKPT_STATE_DOC_FILES)
			json_object_put(docs[d]);
}

Test(state_sockets, hostile)
{
	static const struct {
		int fd;
		const char *path, *key, *val; /* @val JSON; NULL: delete @key */
		const char *want;
	} cases[] = {
		{ 1, NULL, "options", "{\"SO_NOPE\": 1}", "not an option ckpt knows" },
		{ 0, "queue", "len", "\"0x8\"", "the messages hold 7 bytes, not len" },
		{ 0, "queue", "blob", "\"../x\"", "not a file name of a checkpoint" },
		{ 0, NULL, "shutdown", "4", "shutdown" },
		{ 0, NULL, "addr", "{\"base64\": \"" /* 129 bytes */
		  "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
		  "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
		  "QUFBQUFBQUE=\"}", "addr" },
		{ 1, NULL, "queue", "{\"blob\": \"x\", \"len\": \"0x0\", \"msgs\": []}", "not of AF_UNIX" },
		{ 0, NULL, "peer_fd", NULL, "peer_fd" },
		{ 3, "tcp", "recv_blob", NULL, "missing for a queue of 5 bytes" },
		{ 3, "tcp", "unsq_len", "101", "unsq_len" },
		{ 3, "tcp", "snd_wscale", "15", "snd_wscale" },
		{ 0, NULL, "tcp", "{}", "given for a socket not of TCP" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		_cleanup_state_ struct ckpt_state *s = socks_state(), *b = NULL;
		json_object *files = NULL, *o;

		b = round_trip(s, &files);
		o = sock_obj(files, cases[i].fd);
		if (cases[i].path)
			o = json_object_object_get(o, cases[i].path);
		cr_assert_not_null(o, "case %zu", i);
		if (cases[i].val)
			json_object_object_add(o, cases[i].key, json_tokener_parse(cases[i].val));
		else
			json_object_object_del(o, cases[i].key);
		expect_refused(files, cases[i].want);
		json_object_put(files);
	}
}
