/* SPDX-License-Identifier: MIT */
/* The process tree (ckpt/tree.h) and tree.json (docs/STATE.md, "tree.json"). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt/tree.h>

#include "state/state-internal.h"
#include "util/util.h"

int ckpt_tree_new(struct ckpt_tree **ret)
{
	struct ckpt_tree *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	*ret = t;
	return 0;
}

void ckpt_tree_free(struct ckpt_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nr_nodes; i++)
		ckpt_state_free(t->nodes[i].state);
	for (size_t i = 0; i < t->nr_pipes; i++) {
		free(t->pipes[i].blob);
		free(t->pipes[i].data);
	}
	for (size_t i = 0; i < t->nr_files; i++)
		free(t->files[i].users);
	free(t->nodes);
	free(t->pipes);
	free(t->files);
	free(t);
}

int ckpt_tree_add_node(struct ckpt_tree *t, pid_t pid, pid_t ppid, ssize_t parent, size_t *ret_idx)
{
	struct ckpt_tree_node *n = reallocarray(t->nodes, t->nr_nodes + 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	t->nodes = n;
	n = &t->nodes[t->nr_nodes];
	memset(n, 0, sizeof(*n));
	n->pid = pid;
	n->ppid = ppid;
	n->parent = parent;
	n->exit_signal = SIGCHLD;
	if (parent < 0)
		snprintf(n->dir, sizeof(n->dir), ".");
	else
		snprintf(n->dir, sizeof(n->dir), "proc-%d", (int)pid);
	*ret_idx = t->nr_nodes++;
	return 0;
}

ssize_t ckpt_tree_find(const struct ckpt_tree *t, pid_t pid)
{
	for (size_t i = 0; i < t->nr_nodes; i++)
		if (t->nodes[i].pid == pid)
			return (ssize_t)i;
	return -1;
}

struct ckpt_tree_pipe *ckpt_tree_find_pipe(const struct ckpt_tree *t, uint64_t ino)
{
	for (size_t i = 0; i < t->nr_pipes; i++)
		if (t->pipes[i].ino == ino)
			return &t->pipes[i];
	return NULL;
}

const struct ckpt_tree_file *ckpt_tree_find_file(const struct ckpt_tree *t, pid_t pid, int fd,
						 size_t *ret_user)
{
	for (size_t i = 0; i < t->nr_files; i++)
		for (size_t u = 0; u < t->files[i].nr_users; u++)
			if (t->files[i].users[u].pid == pid && t->files[i].users[u].fd == fd) {
				if (ret_user)
					*ret_user = u;
				return &t->files[i];
			}
	return NULL;
}

static int add_user(struct ckpt_tree_file *f, struct ckpt_tree_fd_ref ref)
{
	struct ckpt_tree_fd_ref *u = reallocarray(f->users, f->nr_users + 1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	f->users = u;
	f->users[f->nr_users++] = ref;
	return 0;
}

int ckpt_tree_share_file(struct ckpt_tree *t, struct ckpt_tree_fd_ref first, struct ckpt_tree_fd_ref ref)
{
	const struct ckpt_tree_file *found = ckpt_tree_find_file(t, first.pid, first.fd, NULL);
	struct ckpt_tree_file *f;
	int r;

	if (found)
		return add_user(&t->files[found - t->files], ref);
	f = reallocarray(t->files, t->nr_files + 1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	t->files = f;
	f = &t->files[t->nr_files];
	memset(f, 0, sizeof(*f));
	if ((r = add_user(f, first)) < 0 || (r = add_user(f, ref)) < 0) {
		free(f->users);
		return r;
	}
	t->nr_files++;
	return 0;
}

size_t ckpt_tree_nr_live(const struct ckpt_tree *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nr_nodes; i++)
		n += !t->nodes[i].zombie;
	return n;
}

size_t ckpt_tree_nr_threads(const struct ckpt_tree *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nr_nodes; i++)
		n += t->nodes[i].state ? t->nodes[i].state->nr_threads : 0;
	return n;
}

ssize_t ckpt_tree_leader(const struct ckpt_tree *t, size_t idx, bool sid)
{
	const struct ckpt_tree_node *root = &t->nodes[0];
	pid_t want = sid ? t->nodes[idx].sid : t->nodes[idx].pgid;
	ssize_t l = ckpt_tree_find(t, want);

	if (l >= 0)
		return l;
	if (want == (sid ? root->sid : root->pgid))
		return -1;
	return -2;
}

/* ---- tree.json ---- */

static void node_to_json(struct jw *w, json_object *o, const struct ckpt_tree_node *n)
{
	jw_int(w, o, "pid", n->pid);
	jw_int(w, o, "ppid", n->ppid);
	jw_int(w, o, "pgid", n->pgid);
	jw_int(w, o, "sid", n->sid);
	jw_int(w, o, "exit_signal", n->exit_signal);
	jw_str(w, o, "comm", n->comm);
	if (n->zombie) {
		jw_bool(w, o, "zombie", true);
		jw_int(w, o, "wait_status", n->wait_status);
	} else {
		jw_str(w, o, "dir", n->dir);
		jw_str(w, o, "id", n->id);
	}
}

int ckpt_tree_to_json(const struct ckpt_tree *t, json_object **ret)
{
	struct jw w = { 0 };
	json_object *root = jw_root(&w), *a;

	jw_int(&w, root, "version", CKPT_TREE_VERSION);
	a = jw_arr(&w, root, "nodes");
	for (size_t i = 0; i < t->nr_nodes; i++)
		node_to_json(&w, jw_arr_obj(&w, a), &t->nodes[i]);
	a = jw_arr(&w, root, "pipes");
	for (size_t i = 0; i < t->nr_pipes; i++) {
		const struct ckpt_tree_pipe *p = &t->pipes[i];
		json_object *o = jw_arr_obj(&w, a);

		jw_u64(&w, o, "ino", p->ino);
		jw_int(&w, o, "size", p->size);
		jw_u64(&w, o, "len", p->len);
		if (p->blob)
			jw_str(&w, o, "blob", p->blob);
	}
	a = jw_arr(&w, root, "files");
	for (size_t i = 0; i < t->nr_files; i++) {
		json_object *o = jw_arr_obj(&w, a), *u = jw_arr(&w, o, "users");

		for (size_t k = 0; k < t->files[i].nr_users; k++) {
			json_object *uo = jw_arr_obj(&w, u);

			jw_int(&w, uo, "pid", t->files[i].users[k].pid);
			jw_int(&w, uo, "fd", t->files[i].users[k].fd);
		}
	}
	return jw_finish(&w, root, ret);
}

static bool dir_valid(const char *dir, pid_t pid, bool root)
{
	char want[CKPT_TREE_DIR_LEN];

	if (root)
		return strcmp(dir, ".") == 0;
	snprintf(want, sizeof(want), "proc-%d", (int)pid);
	return strcmp(dir, want) == 0;
}

static bool id_valid(const char *id)
{
	if (strlen(id) != CKPT_TREE_ID_LEN)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static int node_from_json(struct jr *r, struct ckpt_tree *t, json_object *o, size_t idx)
{
	struct ckpt_tree_node *n = &t->nodes[idx];
	json_object *z;
	int k;

	if ((k = jr_int(r, o, "pid", 1, INT32_MAX, &n->pid)) < 0 ||
	    (k = jr_int(r, o, "ppid", 0, INT32_MAX, &n->ppid)) < 0 ||
	    (k = jr_int(r, o, "pgid", 0, INT32_MAX, &n->pgid)) < 0 ||
	    (k = jr_int(r, o, "sid", 0, INT32_MAX, &n->sid)) < 0 ||
	    (k = jr_int(r, o, "exit_signal", 0, CKPT_STATE_NSIG, &n->exit_signal)) < 0 ||
	    (k = jr_strbuf(r, o, "comm", n->comm, sizeof(n->comm))) < 0)
		return k;
	k = jr_opt(r, o, "zombie", json_type_boolean, &z);
	if (k < 0)
		return k;
	n->zombie = k > 0 && json_object_get_boolean(z);
	if (n->zombie) {
		if (idx == 0)
			return jr_fail(r, "zombie", "the root cannot be a zombie");
		return jr_int(r, o, "wait_status", 0, 0xffff, &n->wait_status);
	}
	if ((k = jr_strbuf(r, o, "dir", n->dir, sizeof(n->dir))) < 0 ||
	    (k = jr_strbuf(r, o, "id", n->id, sizeof(n->id))) < 0)
		return k;
	if (!dir_valid(n->dir, n->pid, idx == 0))
		return jr_fail(r, "dir", "'%s' is not this process's directory", n->dir);
	if (!id_valid(n->id))
		return jr_fail(r, "id", "not %d lowercase hex digits", CKPT_TREE_ID_LEN);
	return 0;
}

static int tree_nodes_from_json(struct jr *r, struct ckpt_tree *t, json_object *root)
{
	json_object *a;
	size_t nr;
	int k = jr_arr(r, root, "nodes", CKPT_TREE_MAX_NODES, &a, &nr);

	if (k < 0)
		return k;
	if (!nr)
		return jr_fail(r, "nodes", "empty");
	t->nodes = calloc(nr, sizeof(*t->nodes));
	if (!t->nodes)
		return -ENOMEM;
	t->nr_nodes = nr;
	for (size_t i = 0; i < nr; i++) {
		size_t m = jr_enter(r, "nodes"), m2 = jr_enter_idx(r, i);
		struct ckpt_tree_node *n = &t->nodes[i];

		k = node_from_json(r, t, json_object_array_get_idx(a, i), i);
		n->parent = i ? ckpt_tree_find(t, n->ppid) : -1;
		if (k == 0 && i && (n->parent < 0 || (size_t)n->parent >= i || t->nodes[n->parent].zombie))
			k = jr_fail(r, "ppid", "%d is not a live process listed before it", n->ppid);
		for (size_t j = 0; k == 0 && j < i; j++)
			if (t->nodes[j].pid == n->pid)
				k = jr_fail(r, "pid", "%d is listed twice", n->pid);
		jr_leave(r, m2);
		jr_leave(r, m);
		if (k < 0)
			return k;
	}
	return 0;
}

static int tree_pipes_from_json(struct jr *r, struct ckpt_tree *t, json_object *root)
{
	json_object *a;
	size_t nr;
	int k = jr_arr(r, root, "pipes", CKPT_TREE_MAX_NODES * 64, &a, &nr);

	if (k < 0)
		return k;
	t->pipes = calloc(nr ? nr : 1, sizeof(*t->pipes));
	if (!t->pipes)
		return -ENOMEM;
	t->nr_pipes = nr;
	for (size_t i = 0; i < nr; i++) {
		size_t m = jr_enter(r, "pipes"), m2 = jr_enter_idx(r, i);
		struct ckpt_tree_pipe *p = &t->pipes[i];
		json_object *o = json_object_array_get_idx(a, i);

		if ((k = jr_u64(r, o, "ino", &p->ino)) == 0 && (k = jr_u32(r, o, "size", 1u << 31, &p->size)) == 0 &&
		    (k = jr_u64(r, o, "len", &p->len)) == 0) {
			json_object *b;

			if (p->len > p->size)
				k = jr_fail(r, "len", "%" PRIu64 " bytes in a pipe of %u", p->len, p->size);
			else if ((k = jr_opt(r, o, "blob", json_type_string, &b)) > 0)
				k = jr_str(r, o, "blob", 255, &p->blob);
			else if (k == 0 && p->len)
				k = jr_fail(r, "blob", "missing for %" PRIu64 " bytes", p->len);
		}
		for (size_t j = 0; k == 0 && j < i; j++)
			if (t->pipes[j].ino == p->ino)
				k = jr_fail(r, "ino", "pipe listed twice");
		jr_leave(r, m2);
		jr_leave(r, m);
		if (k < 0)
			return k;
	}
	return 0;
}

static int tree_users_from_json(struct jr *r, const struct ckpt_tree *t, json_object *o,
			   struct ckpt_tree_file *f)
{
	json_object *a;
	size_t nr;
	int k = jr_arr(r, o, "users", JR_MAX_FDS, &a, &nr);

	if (k < 0)
		return k;
	if (nr < 2)
		return jr_fail(r, "users", "fewer than two");
	f->users = calloc(nr, sizeof(*f->users));
	if (!f->users)
		return -ENOMEM;
	f->nr_users = nr;
	for (size_t i = 0; i < nr; i++) {
		size_t m = jr_enter(r, "users"), m2 = jr_enter_idx(r, i);
		json_object *u = json_object_array_get_idx(a, i);
		ssize_t n;

		k = jr_int(r, u, "pid", 1, INT32_MAX, &f->users[i].pid);
		if (k == 0)
			k = jr_int(r, u, "fd", 0, INT32_MAX, &f->users[i].fd);
		n = k == 0 ? ckpt_tree_find(t, f->users[i].pid) : -1;
		if (k == 0 && (n < 0 || t->nodes[n].zombie))
			k = jr_fail(r, "pid", "%d is not a live process of the tree", f->users[i].pid);
		jr_leave(r, m2);
		jr_leave(r, m);
		if (k < 0)
			return k;
	}
	return 0;
}

static int tree_files_from_json(struct jr *r, struct ckpt_tree *t, json_object *root)
{
	json_object *a;
	size_t nr;
	int k = jr_arr(r, root, "files", JR_MAX_FDS, &a, &nr);

	if (k < 0)
		return k;
	t->files = calloc(nr ? nr : 1, sizeof(*t->files));
	if (!t->files)
		return -ENOMEM;
	t->nr_files = nr;
	for (size_t i = 0; i < nr; i++) {
		size_t m = jr_enter(r, "files"), m2 = jr_enter_idx(r, i);

		k = tree_users_from_json(r, t, json_object_array_get_idx(a, i), &t->files[i]);
		jr_leave(r, m2);
		jr_leave(r, m);
		if (k < 0)
			return k;
	}
	/* An fd is one user of at most one description. */
	for (size_t i = 0; i < nr; i++)
		for (size_t u = 0; u < t->files[i].nr_users; u++) {
			size_t uu;
			const struct ckpt_tree_file *f = ckpt_tree_find_file(t, t->files[i].users[u].pid,
									     t->files[i].users[u].fd, &uu);

			if (f != &t->files[i] || uu != u)
				return jr_fail(r, "files", "fd %d of pid %d is listed twice",
					       t->files[i].users[u].fd, t->files[i].users[u].pid);
		}
	return 0;
}

int ckpt_tree_from_json(json_object *obj, char *why, size_t whylen, struct ckpt_tree **ret)
{
	_cleanup_tree_ struct ckpt_tree *t = NULL;
	struct jr r;
	int64_t v;
	int k;

	jr_init(&r, CKPT_TREE_DOC, why, whylen);
	if (!obj || !json_object_is_type(obj, json_type_object))
		return jr_fail(&r, NULL, "not a JSON object");
	if ((k = jr_i64(&r, obj, "version", INT32_MIN, INT32_MAX, &v)) < 0)
		return k;
	if (v != CKPT_TREE_VERSION) {
		jr_fail(&r, "version", "%" PRId64 " is not supported (this ckpt reads %d)", v,
			CKPT_TREE_VERSION);
		return -EPROTONOSUPPORT;
	}
	if ((k = ckpt_tree_new(&t)) < 0 || (k = tree_nodes_from_json(&r, t, obj)) < 0 ||
	    (k = tree_pipes_from_json(&r, t, obj)) < 0 || (k = tree_files_from_json(&r, t, obj)) < 0)
		return k;
	*ret = TAKE_PTR(t);
	return 0;
}
