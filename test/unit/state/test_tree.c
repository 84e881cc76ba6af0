/* SPDX-License-Identifier: MIT */
/* lib/state/tree.c: tree.json round trips, and every inconsistency refused with where. */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <string.h>

#include <ckpt/tree.h>

static struct ckpt_tree *sample(void)
{
	struct ckpt_tree *t;
	size_t i;

	cr_assert_eq(ckpt_tree_new(&t), 0);
	cr_assert_eq(ckpt_tree_add_node(t, 100, 1, -1, &i), 0);
	t->nodes[i].pgid = 100;
	t->nodes[i].sid = 50;
	strcpy(t->nodes[i].comm, "bash");
	strcpy(t->nodes[i].id, "0123456789abcdef0123456789abcdef");
	cr_assert_eq(ckpt_tree_add_node(t, 101, 100, 0, &i), 0);
	t->nodes[i].pgid = 100;
	t->nodes[i].sid = 50;
	strcpy(t->nodes[i].comm, "cat");
	strcpy(t->nodes[i].id, "fedcba9876543210fedcba9876543210");
	cr_assert_eq(ckpt_tree_add_node(t, 102, 100, 0, &i), 0);
	t->nodes[i].zombie = true;
	t->nodes[i].wait_status = 7 << 8;
	t->nodes[i].pgid = 102;
	t->nodes[i].sid = 50;
	t->pipes = calloc(1, sizeof(*t->pipes));
	t->nr_pipes = 1;
	t->pipes[0].ino = 0x1234;
	t->pipes[0].size = 65536;
	t->pipes[0].len = 10;
	t->pipes[0].blob = strdup("blob-pipe-4660");
	cr_assert_eq(ckpt_tree_share_file(t, (struct ckpt_tree_fd_ref){ 100, 3 }, (struct ckpt_tree_fd_ref){ 101, 3 }),
		     0);
	return t;
}

static json_object *sample_json(void)
{
	struct ckpt_tree *t = sample();
	json_object *o;

	cr_assert_eq(ckpt_tree_to_json(t, &o), 0);
	ckpt_tree_free(t);
	return o;
}

Test(tree, round_trip)
{
	json_object *o = sample_json();
	struct ckpt_tree *t = NULL;
	char why[256] = "";

	cr_assert_eq(ckpt_tree_from_json(o, why, sizeof(why), &t), 0, "%s", why);
	cr_expect_eq(t->nr_nodes, 3);
	cr_expect_eq(t->nodes[1].parent, 0);
	cr_expect_str_eq(t->nodes[1].dir, "proc-101");
	cr_expect_str_eq(t->nodes[0].dir, ".");
	cr_expect(t->nodes[2].zombie);
	cr_expect_eq(t->nodes[2].wait_status, 7 << 8);
	cr_expect_eq(t->nodes[1].exit_signal, SIGCHLD);
	cr_expect_eq(t->nr_pipes, 1);
	cr_expect_eq(t->pipes[0].ino, 0x1234);
	cr_expect_str_eq(t->pipes[0].blob, "blob-pipe-4660");
	cr_expect_eq(t->nr_files, 1);
	cr_expect_eq(t->files[0].nr_users, 2);
	cr_expect_eq(ckpt_tree_find(t, 101), 1);
	cr_expect_eq(ckpt_tree_find(t, 5), -1);
	cr_expect_not_null(ckpt_tree_find_file(t, 101, 3, NULL));
	cr_expect_eq(ckpt_tree_nr_live(t), 2);
	/* The zombie leads its own group; the cat is in the root's, which the root leads. */
	cr_expect_eq(ckpt_tree_leader(t, 1, false), 0);
	cr_expect_eq(ckpt_tree_leader(t, 2, false), 2);
	/* The session 50 is led by nobody in the tree, but it is the root's: -1. */
	cr_expect_eq(ckpt_tree_leader(t, 1, true), -1);
	ckpt_tree_free(t);
	json_object_put(o);
}

/* Edit @path ("nodes.1.ppid") of the sample to @val and expect a refusal that mentions @want. */
static void refused(const char *arr, size_t idx, const char *key, json_object *val, const char *want, int err)
{
	json_object *o = sample_json(), *a, *e;
	struct ckpt_tree *t = NULL;
	char why[256] = "";

	cr_assert(json_object_object_get_ex(o, arr, &a));
	e = json_object_array_get_idx(a, idx);
	cr_assert_not_null(e);
	if (val)
		json_object_object_add(e, key, val);
	else
		json_object_object_del(e, key);
	cr_expect_eq(ckpt_tree_from_json(o, why, sizeof(why), &t), err, "%s.%zu.%s: %s", arr, idx, key, why);
	cr_expect_null(t);
	cr_expect(strstr(why, want), "'%s' not in: %s", want, why);
	json_object_put(o);
}

Test(tree, inconsistencies_are_refused_with_where)
{
	refused("nodes", 1, "ppid", json_object_new_int(999), "ppid", -EBADMSG);
	refused("nodes", 1, "pid", json_object_new_int(100), "dir", -EBADMSG); /* and its dir names 101 */
	refused("nodes", 1, "dir", json_object_new_string("../../etc"), "dir", -EBADMSG);
	refused("nodes", 1, "dir", json_object_new_string("proc-102"), "dir", -EBADMSG);
	refused("nodes", 0, "dir", json_object_new_string("proc-100"), "dir", -EBADMSG);
	refused("nodes", 1, "id", json_object_new_string("XYZ"), "id", -EBADMSG);
	refused("nodes", 0, "zombie", json_object_new_boolean(1), "root", -EBADMSG);
	refused("nodes", 2, "wait_status", json_object_new_int(0x10000), "wait_status", -EBADMSG);
	refused("nodes", 1, "comm", NULL, "comm", -EBADMSG);
	refused("pipes", 0, "len", json_object_new_string("0x20000"), "len", -EBADMSG);
	refused("pipes", 0, "blob", NULL, "blob", -EBADMSG);
	refused("files", 0, "users", json_object_new_array(), "users", -EBADMSG);
}

Test(tree, a_child_of_a_zombie_or_users_that_are_not_live_are_refused)
{
	json_object *o = sample_json(), *nodes, *files, *u;
	struct ckpt_tree *t = NULL;
	char why[256] = "";

	/* The cat made a child of the zombie. */
	cr_assert(json_object_object_get_ex(o, "nodes", &nodes));
	json_object_object_add(json_object_array_get_idx(nodes, 1), "ppid", json_object_new_int(102));
	cr_expect_eq(ckpt_tree_from_json(o, why, sizeof(why), &t), -EBADMSG);
	json_object_object_add(json_object_array_get_idx(nodes, 1), "ppid", json_object_new_int(100));
	/* A user that is the zombie. */
	cr_assert(json_object_object_get_ex(o, "files", &files));
	u = json_object_object_get(json_object_array_get_idx(files, 0), "users");
	json_object_object_add(json_object_array_get_idx(u, 1), "pid", json_object_new_int(102));
	cr_expect_eq(ckpt_tree_from_json(o, why, sizeof(why), &t), -EBADMSG);
	cr_expect(strstr(why, "not a live process"), "%s", why);
	json_object_put(o);
}

Test(tree, another_version_is_not_supported)
{
	json_object *o = sample_json();
	struct ckpt_tree *t = NULL;
	char why[256] = "";

	json_object_object_add(o, "version", json_object_new_int(2));
	cr_expect_eq(ckpt_tree_from_json(o, why, sizeof(why), &t), -EPROTONOSUPPORT);
	json_object_put(o);
	cr_expect_eq(ckpt_tree_from_json(NULL, why, sizeof(why), &t), -EBADMSG);
}
