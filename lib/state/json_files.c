/* SPDX-License-Identifier: MIT */
/* files.json: every file descriptor, with a restore verdict. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state/state-internal.h"
#include "state/state_fdkinds.h"
#include "state/state_sockets.h"
#include "util/util.h"

static void fd_to_json(struct jw *w, json_object *o, const struct ckpt_state_fd *f)
{
	json_object *x;

	jw_int(w, o, "fd", f->fd);
	jw_str(w, o, "kind", ckpt_state_fd_kind_name(f->kind));
	jw_bool(w, o, "cloexec", f->cloexec);
	jw_int(w, o, "flags", f->flags);
	jw_u64(w, o, "pos", f->pos);
	jw_int(w, o, "mnt_id", f->mnt_id);
	jw_str(w, o, "path", f->path);
	jw_bool(w, o, "deleted", f->deleted);
	jw_identity(w, o, "identity", &f->id);
	jw_bool(w, o, "restorable", f->restorable);
	if (!f->restorable)
		jw_str(w, o, "reason", f->reason);
	if (f->fdinfo)
		jw_str(w, o, "fdinfo", f->fdinfo);
	if (f->blob)
		jw_str(w, o, "blob", f->blob);
	if (f->has_seals)
		jw_int(w, o, "seals", (int)f->seals);
	switch (f->kind) {
	case CKPT_STATE_FD_TTY:
		x = jw_obj(w, o, "tty");
		jw_bool(w, x, "ctty", f->ctty);
		break;
	case CKPT_STATE_FD_EVENTFD:
		x = jw_obj(w, o, "eventfd");
		jw_u64(w, x, "count", f->eventfd_count);
		jw_bool(w, x, "semaphore", f->eventfd_semaphore);
		break;
	case CKPT_STATE_FD_SOCKET:
		socket_to_json(w, jw_obj(w, o, "socket"), &f->sock); /* json_sockets.c */
		break;
	case CKPT_STATE_FD_PIPE:
	case CKPT_STATE_FD_FIFO:
		x = jw_obj(w, o, "pipe");
		jw_u64(w, x, "queued", f->pipe_queued);
		break;
	default:
		fdkind_to_json(w, o, f); /* json_fdkinds.c */
		break;
	}
}

int files_to_json(const struct ckpt_state *s, json_object **ret)
{
	struct jw w = { 0 };
	json_object *root = jw_root(&w), *arr;

	jw_int(&w, root, "pid", s->process.pid);
	arr = jw_arr(&w, root, "fds");
	for (size_t i = 0; i < s->nr_fds; i++)
		fd_to_json(&w, jw_arr_obj(&w, arr), &s->fds[i]);
	return jw_finish(&w, root, ret);
}

/* ---- reading ---- */

/* "pipe" of a pipe or fifo: optional (images before it have none), else not expected. */
static int pipe_from_json(struct jr *r, json_object *o, struct ckpt_state_fd *f)
{
	bool pipe = f->kind == CKPT_STATE_FD_PIPE || f->kind == CKPT_STATE_FD_FIFO;
	json_object *x;
	size_t mark;
	int k = jr_opt(r, o, "pipe", json_type_object, &x);

	if (k <= 0)
		return k;
	if (!pipe)
		return jr_fail(r, "pipe", "not expected for an fd of kind %s",
			       ckpt_state_fd_kind_name(f->kind));
	mark = jr_enter(r, "pipe");
	k = jr_u64(r, x, "queued", &f->pipe_queued);
	if (k < 0)
		return k;
	jr_leave(r, mark);
	return 0;
}

/* The kind-specific object: present exactly for its kind. */
static int kind_from_json(struct jr *r, json_object *o, struct ckpt_state_fd *f)
{
	static const struct {
		const char *key;
		enum ckpt_state_fd_kind kind;
	} parts[] = {
		{ "tty", CKPT_STATE_FD_TTY },
		{ "eventfd", CKPT_STATE_FD_EVENTFD },
		{ "socket", CKPT_STATE_FD_SOCKET },
	};

	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		json_object *x;
		size_t mark;
		int k = jr_opt(r, o, parts[i].key, json_type_object, &x);

		if (k < 0)
			return k;
		if (!k && f->kind == parts[i].kind)
			return jr_fail(r, parts[i].key, "missing (required for kind %s)",
				       parts[i].key);
		if (k && f->kind != parts[i].kind)
			return jr_fail(r, parts[i].key, "not expected for an fd of kind %s",
				       ckpt_state_fd_kind_name(f->kind));
		if (!k)
			continue;
		mark = jr_enter(r, parts[i].key);
		if (f->kind == CKPT_STATE_FD_TTY)
			k = jr_bool(r, x, "ctty", &f->ctty);
		else if (f->kind == CKPT_STATE_FD_EVENTFD)
			k = jr_u64(r, x, "count", &f->eventfd_count) ?:
			    jr_bool(r, x, "semaphore", &f->eventfd_semaphore);
		else
			k = socket_from_json(r, x, &f->sock); /* json_sockets.c */
		if (k < 0)
			return k;
		jr_leave(r, mark);
	}
	return pipe_from_json(r, o, f) ?: fdkind_from_json(r, o, f); /* json_fdkinds.c */
}

/* A checkpoint file name: [A-Za-z0-9._-], not starting with '.', at most 255 bytes. */
bool state_blob_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > 255 || name[0] == '.')
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* "blob" of a deleted regular file or a memfd, "seals" of a memfd: optional. */
static int contents_from_json(struct jr *r, json_object *o, struct ckpt_state_fd *f)
{
	json_object *x;
	int k = jr_opt(r, o, "blob", json_type_string, &x);

	if (k < 0)
		return k;
	if (k) {
		if (f->kind != CKPT_STATE_FD_MEMFD && !(f->kind == CKPT_STATE_FD_REGULAR && f->deleted))
			return jr_fail(r, "blob", "not expected for an fd of kind %s%s",
				       ckpt_state_fd_kind_name(f->kind), f->deleted ? "" : " not deleted");
		if ((k = jr_str(r, o, "blob", 256, &f->blob)) < 0)
			return k;
		if (!state_blob_name_valid(f->blob))
			return jr_fail(r, "blob", "not a file name of a checkpoint");
	}
	k = jr_opt(r, o, "seals", json_type_int, &x);
	if (k < 0)
		return k;
	if (!k)
		return 0;
	if (f->kind != CKPT_STATE_FD_MEMFD)
		return jr_fail(r, "seals", "not expected for an fd of kind %s",
			       ckpt_state_fd_kind_name(f->kind));
	f->has_seals = true;
	return jr_u32(r, o, "seals", UINT32_MAX, &f->seals);
}

static int fd_from_json(struct jr *r, json_object *o, struct ckpt_state_fd *f)
{
	json_object *x;
	int kind, k;

	if (!json_object_is_type(o, json_type_object))
		return jr_fail(r, NULL, "not an object");
	if ((k = jr_int(r, o, "fd", 0, INT32_MAX, &f->fd)) < 0 ||
	    (k = jr_enum(r, o, "kind", state_fd_kind_names, CKPT_STATE_NR_FD_KINDS, &kind)) < 0 ||
	    (k = jr_bool(r, o, "cloexec", &f->cloexec)) < 0 ||
	    (k = jr_u32(r, o, "flags", UINT32_MAX, &f->flags)) < 0 ||
	    (k = jr_u64(r, o, "pos", &f->pos)) < 0 ||
	    (k = jr_int(r, o, "mnt_id", INT32_MIN, INT32_MAX, &f->mnt_id)) < 0 ||
	    (k = jr_str(r, o, "path", JR_MAX_STR, &f->path)) < 0 ||
	    (k = jr_bool(r, o, "deleted", &f->deleted)) < 0 ||
	    (k = jr_identity(r, o, "identity", &f->id)) < 0 ||
	    (k = jr_bool(r, o, "restorable", &f->restorable)) < 0)
		return k;
	f->kind = (enum ckpt_state_fd_kind)kind;
	if (f->flags & 02000000 /* O_CLOEXEC */)
		return jr_fail(r, "flags", "holds O_CLOEXEC (that is \"cloexec\")");
	if (!f->restorable && (k = jr_str(r, o, "reason", JR_MAX_STR, &f->reason)) < 0)
		return k;
	if (f->restorable && json_object_object_get_ex(o, "reason", &x))
		return jr_fail(r, "reason", "given for a restorable fd");
	if (json_object_object_get_ex(o, "fdinfo", &x) &&
	    (k = jr_str(r, o, "fdinfo", JR_MAX_STR, &f->fdinfo)) < 0)
		return k;
	if ((k = contents_from_json(r, o, f)) < 0)
		return k;
	return kind_from_json(r, o, f);
}

int files_from_json(struct jr *r, json_object *doc, struct ckpt_state *s)
{
	json_object *arr;
	size_t nr;
	int k = jr_arr(r, doc, "fds", JR_MAX_FDS, &arr, &nr);

	if (k < 0)
		return k;
	s->fds = nr ? calloc(nr, sizeof(*s->fds)) : NULL;
	if (nr && !s->fds)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		size_t mark = jr_enter(r, "fds");

		jr_enter_idx(r, i);
		s->nr_fds = i + 1;
		k = fd_from_json(r, json_object_array_get_idx(arr, i), &s->fds[i]);
		if (k < 0)
			return k;
		if (i && s->fds[i].fd <= s->fds[i - 1].fd)
			return jr_fail(r, "fd", "%d after %d: fds must ascend", s->fds[i].fd,
				       s->fds[i - 1].fd);
		jr_leave(r, mark);
	}
	return 0;
}
