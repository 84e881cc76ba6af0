/* SPDX-License-Identifier: MIT */
/*
 * Handing a lazily restored process over to a running server: `ckpt restore
 * --lazy --lazy-socket PATH` connects to the server's UNIX SOCK_SEQPACKET
 * socket and sends one message, a JSON description (pid, parked fd, time to
 * resume, source, ranges) with the uffd attached by SCM_RIGHTS; the server
 * answers "ok" once the process is added, or "refused: WHY". Only root or
 * the server's own user may hand a process over, and only to a server of
 * root's or of its own user.
 */
#define LOG_AREA "lazy"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "lazy/lazy-internal.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#define HANDOVER_MAX (1 << 20)

static int encode_handover(const struct ckpt_lazy_target *t, const struct ckpt_lazy_source *src, char **ret)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	json_object *a = json_object_new_array();

	json_object_object_add(o, "pid", json_object_new_int(t->pid));
	json_object_object_add(o, "parked_fd", json_object_new_int(t->parked_fd));
	json_object_object_add(o, "resume_ns", json_object_new_uint64(t->resume_ns));
	json_object_object_add(o, "eager_pages", json_object_new_uint64(t->eager_pages));
	if (src->dir)
		json_object_object_add(o, "dir", json_object_new_string(src->dir));
	if (src->url)
		json_object_object_add(o, "url", json_object_new_string(src->url));
	if (src->token_file)
		json_object_object_add(o, "token_file", json_object_new_string(src->token_file));
	if (src->proc)
		json_object_object_add(o, "proc", json_object_new_string(src->proc));
	/* What restore judged: the server checks the checkpoint it opens is that one. */
	if (src->id)
		json_object_object_add(o, "id", json_object_new_string(src->id));
	if (src->prov && src->prov->kind != CKPT_PROV_NONE)
		json_object_object_add(o, "owner", json_object_new_int64(src->prov->kind == CKPT_PROV_USER
									 ? (int64_t)src->prov->uid : 0));
	for (size_t i = 0; i < t->nr_ranges; i++) {
		json_object *e = json_object_new_array();

		json_object_array_add(e, json_object_new_uint64(t->ranges[i].start));
		json_object_array_add(e, json_object_new_uint64(t->ranges[i].end));
		json_object_array_add(e, json_object_new_uint64(t->ranges[i].src));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "ranges", a);
	*ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	if (!*ret)
		return -ENOMEM;
	return strlen(*ret) < HANDOVER_MAX ? 0 : -E2BIG;
}

int ckpt_lazy_handover(const char *socket_path, const struct ckpt_lazy_target *t,
		       const struct ckpt_lazy_source *src)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int sk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf) };
	struct timeval tv = { .tv_sec = 30 };
	struct cmsghdr *cm;
	char ack[256] = "";
	ssize_t n;
	int r;

	if (sk < 0)
		return neg_errno();
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		pr_err("the socket path '%s' is too long", socket_path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, socket_path);
	if (connect(sk, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = neg_errno();
		pr_err("cannot reach the lazy-pages server at '%s': %s", socket_path, errstr(r));
		return r;
	}
	{
		/* The server gets the process's memory to fill: only root's or our own (docs/SECURITY.md). */
		struct ucred cr;
		socklen_t len = sizeof(cr);

		if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
			r = neg_errno();
			pr_err("cannot tell who runs the lazy-pages server at '%s': %s", socket_path, errstr(r));
			return r;
		}
		if (cr.uid != 0 && cr.uid != geteuid()) {
			pr_err("the lazy-pages server at '%s' runs as uid %u (pid %d): pid %d is handed only to "
			       "a server of root's or of uid %u", socket_path, (unsigned int)cr.uid, (int)cr.pid,
			       t->pid, (unsigned int)geteuid());
			return -EPERM;
		}
	}
	(void)setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if ((r = encode_handover(t, src, &text)) < 0)
		return r;
	iov.iov_base = text;
	iov.iov_len = strlen(text) + 1;
	memset(&c, 0, sizeof(c));
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &t->uffd, sizeof(int));
	if (sendmsg(sk, &m, MSG_NOSIGNAL) < 0) {
		r = neg_errno();
		pr_err("cannot hand pid %d over to '%s': %s", t->pid, socket_path, errstr(r));
		return r;
	}
	n = recv(sk, ack, sizeof(ack) - 1, 0);
	if (n <= 0 || strcmp(ack, "ok")) {
		pr_err("the lazy-pages server at '%s' did not take pid %d: %s", socket_path, t->pid,
		       n > 0 ? ack : n == 0 ? "it closed the connection" : errstr(neg_errno()));
		return -EPROTO;
	}
	return 0;
}

int ckpt_lazy_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sk, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		pr_err("the socket path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	sk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return neg_errno();
	/* A socket left by a server that died: replace it, unless one is listening. */
	if (connect(sk, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(sk);
		pr_err("a lazy-pages server already listens at '%s'", path);
		return -EADDRINUSE;
	}
	if (errno == ECONNREFUSED)
		(void)unlink(path);
	close(sk);
	sk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sk < 0)
		return neg_errno();
	if (bind(sk, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 || listen(sk, 16) < 0) {
		r = neg_errno();
		close(sk);
		pr_err("cannot listen at '%s': %s", path, errstr(r));
		return r;
	}
	return sk;
}

/* Only root, or the server's own user, may hand a process over. */
static int check_peer(int c, pid_t pid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return neg_errno();
	if (cr.uid != 0 && cr.uid != geteuid()) {
		pr_warn("refused a handover of pid %d from uid %u", pid, cr.uid);
		return -EACCES;
	}
	return 0;
}

static int decode_handover(const char *text, struct ckpt_lazy_target *t, struct ckpt_lazy_range **ret_ranges,
			   struct ckpt_lazy_source *src, struct ckpt_provenance *prov, json_object **ret_obj)
{
	_cleanup_json_ json_object *o = json_tokener_parse(text);
	_cleanup_free_ struct ckpt_lazy_range *ranges = NULL;
	json_object *v, *a;
	size_t nr;

	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "pid", &v) ||
	    (t->pid = json_object_get_int(v)) <= 0 || !json_object_object_get_ex(o, "parked_fd", &v) ||
	    !json_object_object_get_ex(o, "ranges", &a) || !json_object_is_type(a, json_type_array))
		return -EBADMSG;
	t->parked_fd = json_object_get_int(v);
	if (json_object_object_get_ex(o, "resume_ns", &v))
		t->resume_ns = json_object_get_uint64(v);
	if (json_object_object_get_ex(o, "eager_pages", &v))
		t->eager_pages = json_object_get_uint64(v);
	nr = json_object_array_length(a);
	ranges = calloc(nr + 1, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		json_object *e = json_object_array_get_idx(a, i);

		if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) != 3)
			return -EBADMSG;
		ranges[i].start = json_object_get_uint64(json_object_array_get_idx(e, 0));
		ranges[i].end = json_object_get_uint64(json_object_array_get_idx(e, 1));
		ranges[i].src = json_object_get_uint64(json_object_array_get_idx(e, 2));
	}
	if (json_object_object_get_ex(o, "dir", &v))
		src->dir = json_object_get_string(v);
	if (json_object_object_get_ex(o, "url", &v))
		src->url = json_object_get_string(v);
	if (json_object_object_get_ex(o, "token_file", &v))
		src->token_file = json_object_get_string(v);
	if (json_object_object_get_ex(o, "proc", &v))
		src->proc = json_object_get_string(v);
	if (json_object_object_get_ex(o, "id", &v))
		src->id = json_object_get_string(v);
	if (json_object_object_get_ex(o, "owner", &v)) {
		int64_t uid = json_object_get_int64(v);

		if (uid < 0 || uid >= UINT32_MAX)
			return -EBADMSG;
		memset(prov, 0, sizeof(*prov));
		prov->kind = uid ? CKPT_PROV_USER : CKPT_PROV_ROOT;
		prov->uid = (uid_t)uid;
		snprintf(prov->why, sizeof(prov->why), "restore found it %s", uid ? "one user's" : "root's only");
		src->prov = prov;
	}
	if (!src->dir == !src->url)
		return -EBADMSG;
	t->ranges = ranges;
	t->nr_ranges = nr;
	*ret_ranges = TAKE_PTR(ranges);
	*ret_obj = TAKE_PTR(o);
	return 0;
}

/* One handover from a restore: JSON and the uffd. */
void lz_accept_handover(struct ckpt_lazy_server *s, int lfd)
{
	_cleanup_close_ int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_object *o = NULL;
	_cleanup_free_ struct ckpt_lazy_range *ranges = NULL;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf) };
	struct ckpt_lazy_target t = { .uffd = -1 };
	struct ckpt_lazy_source src = { 0 };
	struct ckpt_provenance prov;
	struct timeval tv = { .tv_sec = 5 };
	struct cmsghdr *cm;
	char reply[256] = "ok";
	ssize_t n;
	int r = -EBADMSG;

	if (c < 0)
		return;
	text = malloc(HANDOVER_MAX);
	if (!text)
		return;
	iov = (struct iovec){ text, HANDOVER_MAX - 1 };
	(void)setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recvmsg(c, &m, MSG_CMSG_CLOEXEC);
	for (cm = n > 0 ? CMSG_FIRSTHDR(&m) : NULL; cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&t.uffd, CMSG_DATA(cm), sizeof(int));
	if (n > 0 && t.uffd >= 0 && !(m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		text[n] = '\0';
		r = decode_handover(text, &t, &ranges, &src, &prov, &o);
	}
	if (r == 0)
		r = check_peer(c, t.pid);
	if (r == 0) {
		r = ckpt_lazy_server_add(s, &t, &src);
		t.uffd = -1; /* the server's now, also on error */
	}
	if (r == 0)
		pr_info("serving pid %d, handed over by a restore", t.pid);
	else
		snprintf(reply, sizeof(reply), "refused: %s",
			 r == -EBADMSG ? "a malformed handover" : errstr(r));
	if (t.uffd >= 0)
		close(t.uffd);
	(void)!send(c, reply, strlen(reply) + 1, MSG_NOSIGNAL);
}
