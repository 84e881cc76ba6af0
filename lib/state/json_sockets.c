/* SPDX-License-Identifier: MIT */
/*
 * files.json, the "socket" object of a socket fd (docs/STATE.md): what
 * sock_diag said, then, from "known" on, what the dump read through its
 * copy of the fd. Images made before sockets were saved have the first
 * part only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "state/state_sockets.h"
#include "util/util.h"

#define BLOB_NAME_MAX 255

void socket_to_json(struct jw *w, json_object *o, const struct ckpt_state_socket *s)
{
	json_object *x, *arr;

	jw_bool(w, o, "found", s->found);
	jw_int(w, o, "family", s->family);
	jw_int(w, o, "type", s->type);
	jw_int(w, o, "protocol", s->protocol);
	jw_int(w, o, "state", s->state);
	jw_str(w, o, "local", s->local);
	jw_str(w, o, "remote", s->remote);
	jw_u64(w, o, "peer_ino", s->peer_ino);
	if (!s->known)
		return;
	jw_bool(w, o, "known", true);
	jw_int(w, o, "rqueue", s->rqueue);
	jw_int(w, o, "wqueue", s->wqueue);
	jw_bool(w, o, "listening", s->listening);
	jw_int(w, o, "backlog", s->backlog);
	jw_int(w, o, "pending", s->pending);
	jw_int(w, o, "shutdown", s->shutdown);
	jw_blob(w, o, "addr", s->addr, s->addr_len);
	jw_blob(w, o, "peer_addr", s->peer_addr, s->peer_addr_len);
	jw_int(w, o, "peer_fd", s->peer_fd);
	if (s->peer_pid)
		jw_int(w, o, "peer_pid", s->peer_pid);
	jw_bool(w, o, "external", s->external);
	x = jw_obj(w, o, "options");
	for (size_t i = 0; i < CKPT_STATE_NR_SOCKOPTS; i++)
		if (s->opt_mask & (1ULL << i))
			jw_int(w, x, ckpt_state_sockopts[i].name, s->opts[i]);
	if (s->queue_blob) {
		x = jw_obj(w, o, "queue");
		jw_str(w, x, "blob", s->queue_blob);
		jw_u64(w, x, "len", s->queue_len);
		arr = jw_arr(w, x, "msgs");
		for (size_t i = 0; i < s->nr_msgs; i++)
			jw_append(w, arr, json_object_new_int64(s->msg_lens[i]));
	}
	if (s->has_file) {
		x = jw_obj(w, o, "file");
		jw_int(w, x, "mode", s->file_mode);
		jw_int(w, x, "uid", s->file_uid);
		jw_int(w, x, "gid", s->file_gid);
		jw_bool(w, x, "gone", s->file_gone);
	}
	if (s->tcp.saved) {
		const struct ckpt_state_tcp *t = &s->tcp;

		x = jw_obj(w, o, "tcp");
		jw_int(w, x, "inq_seq", t->inq_seq);
		jw_int(w, x, "outq_seq", t->outq_seq);
		jw_int(w, x, "inq_len", t->inq_len);
		jw_int(w, x, "outq_len", t->outq_len);
		jw_int(w, x, "unsq_len", t->unsq_len);
		jw_int(w, x, "mss", t->mss);
		jw_int(w, x, "opts", t->opts);
		jw_int(w, x, "snd_wscale", t->snd_wscale);
		jw_int(w, x, "rcv_wscale", t->rcv_wscale);
		jw_int(w, x, "timestamp", t->timestamp);
		if (t->has_window) {
			json_object *wo = jw_obj(w, x, "window");

			jw_int(w, wo, "snd_wl1", t->snd_wl1);
			jw_int(w, wo, "snd_wnd", t->snd_wnd);
			jw_int(w, wo, "max_window", t->max_window);
			jw_int(w, wo, "rcv_wnd", t->rcv_wnd);
			jw_int(w, wo, "rcv_wup", t->rcv_wup);
		}
		if (t->recv_blob)
			jw_str(w, x, "recv_blob", t->recv_blob);
		if (t->send_blob)
			jw_str(w, x, "send_blob", t->send_blob);
	}
	if (s->family == AF_NETLINK) {
		x = jw_obj(w, o, "netlink");
		jw_int(w, x, "portid", s->nl_portid);
		jw_int(w, x, "groups", s->nl_groups);
		jw_int(w, x, "dst_portid", s->nl_dst_portid);
		jw_int(w, x, "dst_group", s->nl_dst_group);
	}
}

/* ---- reading ---- */

static int peer_pid_from_json(struct jr *r, json_object *o, struct ckpt_state_socket *s)
{
	json_object *v;
	int k = jr_opt(r, o, "peer_pid", json_type_int, &v);

	if (k <= 0)
		return k;
	if ((k = jr_int(r, o, "peer_pid", 1, INT32_MAX, &s->peer_pid)) < 0)
		return k;
	if (s->peer_fd < 0)
		return jr_fail(r, "peer_pid", "given without a peer_fd");
	return 0;
}

static int addr_from_json(struct jr *r, json_object *o, const char *key, unsigned char *buf,
			  uint32_t *ret_len)
{
	_cleanup_free_ void *b = NULL;
	size_t len = 0;
	int k = jr_blob(r, o, key, CKPT_STATE_SOCKADDR_MAX, &b, &len);

	if (k < 0)
		return k;
	if (len)
		memcpy(buf, b, len);
	*ret_len = (uint32_t)len;
	return 0;
}

static int options_from_json(struct jr *r, json_object *o, struct ckpt_state_socket *s)
{
	json_object *x;
	size_t mark;
	int k = jr_obj(r, o, "options", &x);

	if (k < 0)
		return k;
	mark = jr_enter(r, "options");
	json_object_object_foreach(x, key, val) {
		size_t i;

		(void)val;
		for (i = 0; i < CKPT_STATE_NR_SOCKOPTS; i++)
			if (!strcmp(key, ckpt_state_sockopts[i].name))
				break;
		if (i == CKPT_STATE_NR_SOCKOPTS)
			return jr_fail(r, key, "not an option ckpt knows");
		k = jr_i64(r, x, key, INT32_MIN, (int64_t)INT32_MAX * 1000000, &s->opts[i]);
		if (k < 0)
			return k;
		s->opt_mask |= 1ULL << i;
	}
	jr_leave(r, mark);
	return 0;
}

static bool blob_name_ok(const char *n)
{
	size_t len = strlen(n);

	return len && len <= BLOB_NAME_MAX && n[0] != '.' &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

static int queue_from_json(struct jr *r, json_object *o, struct ckpt_state_socket *s)
{
	json_object *x, *arr;
	size_t mark, nr;
	uint64_t sum = 0;
	int k = jr_opt(r, o, "queue", json_type_object, &x);

	if (k <= 0)
		return k;
	mark = jr_enter(r, "queue");
	if ((k = jr_str(r, x, "blob", BLOB_NAME_MAX + 1, &s->queue_blob)) < 0 ||
	    (k = jr_u64(r, x, "len", &s->queue_len)) < 0 ||
	    (k = jr_arr(r, x, "msgs", CKPT_STATE_SOCK_MSGS_MAX, &arr, &nr)) < 0)
		return k;
	if (!blob_name_ok(s->queue_blob))
		return jr_fail(r, "blob", "not a file name of a checkpoint");
	if (s->queue_len > CKPT_STATE_SOCK_QUEUE_MAX)
		return jr_fail(r, "len", "over %u bytes", CKPT_STATE_SOCK_QUEUE_MAX);
	s->msg_lens = nr ? calloc(nr, sizeof(*s->msg_lens)) : NULL;
	if (nr && !s->msg_lens)
		return -ENOMEM;
	s->nr_msgs = nr;
	for (size_t i = 0; i < nr; i++) {
		json_object *v = json_object_array_get_idx(arr, i);
		int64_t n;

		if (!json_object_is_type(v, json_type_int) || (n = json_object_get_int64(v)) < 0 ||
		    n > CKPT_STATE_SOCK_QUEUE_MAX)
			return jr_fail(r, "msgs", "element %zu is not a message length", i);
		s->msg_lens[i] = (uint32_t)n;
		sum += (uint64_t)n;
	}
	if (sum != s->queue_len)
		return jr_fail(r, "msgs", "the messages hold %llu bytes, not len",
			       (unsigned long long)sum);
	jr_leave(r, mark);
	return 0;
}

static int file_from_json(struct jr *r, json_object *o, struct ckpt_state_socket *s)
{
	json_object *x;
	size_t mark;
	int k = jr_opt(r, o, "file", json_type_object, &x);

	if (k <= 0)
		return k;
	mark = jr_enter(r, "file");
	if ((k = jr_u32(r, x, "mode", 0177777, &s->file_mode)) < 0 ||
	    (k = jr_u32(r, x, "uid", UINT32_MAX, &s->file_uid)) < 0 ||
	    (k = jr_u32(r, x, "gid", UINT32_MAX, &s->file_gid)) < 0 ||
	    (k = jr_bool(r, x, "gone", &s->file_gone)) < 0)
		return k;
	s->has_file = true;
	jr_leave(r, mark);
	return 0;
}

static int netlink_from_json(struct jr *r, json_object *o, struct ckpt_state_socket *s)
{
	json_object *x;
	size_t mark;
	int k = jr_opt(r, o, "netlink", json_type_object, &x);

	if (k <= 0)
		return k;
	mark = jr_enter(r, "netlink");
	if ((k = jr_u32(r, x, "portid", UINT32_MAX, &s->nl_portid)) < 0 ||
	    (k = jr_u32(r, x, "groups", UINT32_MAX, &s->nl_groups)) < 0 ||
	    (k = jr_u32(r, x, "dst_portid", UINT32_MAX, &s->nl_dst_portid)) < 0 ||
	    (k = jr_u32(r, x, "dst_group", UINT32_MAX, &s->nl_dst_group)) < 0)
		return k;
	jr_leave(r, mark);
	return 0;
}

/* A queue's blob: present exactly when the queue holds bytes. */
static int tcp_blob(struct jr *r, json_object *x, const char *key, uint32_t len, char **ret)
{
	json_object *v;
	int k = jr_opt(r, x, key, json_type_string, &v);

	if (k < 0)
		return k;
	if (!k != !len)
		return jr_fail(r, key, len ? "missing for a queue of %u bytes" : "given for an empty queue",
			       len);
	if (!k)
		return 0;
	if ((k = jr_str(r, x, key, BLOB_NAME_MAX + 1, ret)) < 0)
		return k;
	return blob_name_ok(*ret) ? 0 : jr_fail(r, key, "not a file name of a checkpoint");
}

static int tcp_from_json(struct jr *r, json_object *o, struct ckpt_state_socket *s)
{
	struct ckpt_state_tcp *t = &s->tcp;
	json_object *x, *wo;
	size_t mark;
	int k = jr_opt(r, o, "tcp", json_type_object, &x);

	if (k <= 0)
		return k;
	if (s->protocol != IPPROTO_TCP || (s->family != AF_INET && s->family != AF_INET6))
		return jr_fail(r, "tcp", "given for a socket not of TCP");
	mark = jr_enter(r, "tcp");
	if ((k = jr_u32(r, x, "inq_seq", UINT32_MAX, &t->inq_seq)) < 0 ||
	    (k = jr_u32(r, x, "outq_seq", UINT32_MAX, &t->outq_seq)) < 0 ||
	    (k = jr_u32(r, x, "inq_len", CKPT_STATE_SOCK_QUEUE_MAX, &t->inq_len)) < 0 ||
	    (k = jr_u32(r, x, "outq_len", CKPT_STATE_SOCK_QUEUE_MAX, &t->outq_len)) < 0 ||
	    (k = jr_u32(r, x, "unsq_len", t->outq_len, &t->unsq_len)) < 0 ||
	    (k = jr_u32(r, x, "mss", 65535, &t->mss)) < 0 ||
	    (k = jr_u32(r, x, "opts", 255, &t->opts)) < 0 ||
	    (k = jr_u32(r, x, "snd_wscale", 14, &t->snd_wscale)) < 0 ||
	    (k = jr_u32(r, x, "rcv_wscale", 14, &t->rcv_wscale)) < 0 ||
	    (k = jr_u32(r, x, "timestamp", UINT32_MAX, &t->timestamp)) < 0 ||
	    (k = tcp_blob(r, x, "recv_blob", t->inq_len, &t->recv_blob)) < 0 ||
	    (k = tcp_blob(r, x, "send_blob", t->outq_len, &t->send_blob)) < 0 ||
	    (k = jr_opt(r, x, "window", json_type_object, &wo)) < 0)
		return k;
	if (k) {
		size_t m2 = jr_enter(r, "window");

		if ((k = jr_u32(r, wo, "snd_wl1", UINT32_MAX, &t->snd_wl1)) < 0 ||
		    (k = jr_u32(r, wo, "snd_wnd", UINT32_MAX, &t->snd_wnd)) < 0 ||
		    (k = jr_u32(r, wo, "max_window", UINT32_MAX, &t->max_window)) < 0 ||
		    (k = jr_u32(r, wo, "rcv_wnd", UINT32_MAX, &t->rcv_wnd)) < 0 ||
		    (k = jr_u32(r, wo, "rcv_wup", UINT32_MAX, &t->rcv_wup)) < 0)
			return k;
		t->has_window = true;
		jr_leave(r, m2);
	}
	t->saved = true;
	jr_leave(r, mark);
	return 0;
}

int socket_from_json(struct jr *r, json_object *o, struct ckpt_state_socket *s)
{
	json_object *x;
	int shut, k;

	if ((k = jr_bool(r, o, "found", &s->found)) < 0 ||
	    (k = jr_int(r, o, "family", 0, INT32_MAX, &s->family)) < 0 ||
	    (k = jr_int(r, o, "type", 0, INT32_MAX, &s->type)) < 0 ||
	    (k = jr_int(r, o, "protocol", 0, INT32_MAX, &s->protocol)) < 0 ||
	    (k = jr_int(r, o, "state", 0, INT32_MAX, &s->state)) < 0 ||
	    (k = jr_strbuf(r, o, "local", s->local, sizeof(s->local))) < 0 ||
	    (k = jr_strbuf(r, o, "remote", s->remote, sizeof(s->remote))) < 0 ||
	    (k = jr_u64(r, o, "peer_ino", &s->peer_ino)) < 0)
		return k;
	k = jr_opt(r, o, "known", json_type_boolean, &x);
	if (k <= 0)
		return k; /* an image from before sockets were saved */
	if ((k = jr_bool(r, o, "known", &s->known)) < 0)
		return k;
	if (!s->known)
		return jr_fail(r, "known", "false (then it is left out)");
	if ((k = jr_u32(r, o, "rqueue", UINT32_MAX, &s->rqueue)) < 0 ||
	    (k = jr_u32(r, o, "wqueue", UINT32_MAX, &s->wqueue)) < 0 ||
	    (k = jr_bool(r, o, "listening", &s->listening)) < 0 ||
	    (k = jr_u32(r, o, "backlog", UINT32_MAX, &s->backlog)) < 0 ||
	    (k = jr_u32(r, o, "pending", UINT32_MAX, &s->pending)) < 0 ||
	    (k = jr_int(r, o, "shutdown", 0, 3, &shut)) < 0 ||
	    (k = addr_from_json(r, o, "addr", s->addr, &s->addr_len)) < 0 ||
	    (k = addr_from_json(r, o, "peer_addr", s->peer_addr, &s->peer_addr_len)) < 0 ||
	    (k = jr_int(r, o, "peer_fd", -1, INT32_MAX, &s->peer_fd)) < 0 ||
	    (k = peer_pid_from_json(r, o, s)) < 0 ||
	    (k = jr_bool(r, o, "external", &s->external)) < 0 ||
	    (k = options_from_json(r, o, s)) < 0 || (k = queue_from_json(r, o, s)) < 0 ||
	    (k = file_from_json(r, o, s)) < 0 || (k = netlink_from_json(r, o, s)) < 0 ||
	    (k = tcp_from_json(r, o, s)) < 0)
		return k;
	s->shutdown = (unsigned int)shut;
	if (s->family != AF_UNIX && (s->queue_blob || s->has_file))
		return jr_fail(r, s->queue_blob ? "queue" : "file", "given for a socket not of AF_UNIX");
	return 0;
}
