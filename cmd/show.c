/* SPDX-License-Identifier: MIT */
/* ckpt show: decode a checkpoint and its chain, for people and programs. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <ckpt/image.h>
#include <ckpt/log.h>
#include <ckpt/state.h>
#include <ckpt/tree.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt show DIR [--pages] [--verify] [--json]\n"
	"\n"
	"Decode the checkpoint DIR and its chain of parents: summary, chain, threads,\n"
	"mappings with their page counts, files, and the process tree. What it reads\n"
	"is checked (inventories, page indexes, the documents shown); --verify checks\n"
	"everything: every file's checksum and every compressed frame of every\n"
	"checkpoint of the chain, and of every process of a tree (exit status 1 and\n"
	"the file named on the first fault).\n"
	"\n"
	"Options:\n"
	"      --pages     also list the page index of DIR (address, pages, kind)\n"
	"      --verify    read and check every file and frame\n"
	"      --json      one JSON document (the state documents as written)\n"
	"  -h, --help      this help\n";

struct counts {
	uint64_t data, zero, hole, inherit;
};

/* Pages of [start, end) in one checkpoint's index, by kind. */
static struct counts count_pages(const struct ckpt_image_index *idx, uint64_t start, uint64_t end)
{
	struct counts c = { 0 };

	for (size_t i = 0; i < idx->nr_entries; i++) {
		const struct ckpt_image_entry *e = &idx->entries[i];
		uint64_t s = e->addr, en = e->addr + e->nr_pages * CKPT_IMAGE_PAGE_SIZE, n;

		if (en <= start || s >= end)
			continue;
		n = ((en < end ? en : end) - (s > start ? s : start)) / CKPT_IMAGE_PAGE_SIZE;
		if (e->kind == CKPT_PAGE_DATA)
			c.data += n;
		else if (e->kind == CKPT_PAGE_ZERO)
			c.zero += n;
		else if (e->kind == CKPT_PAGE_HOLE)
			c.hole += n;
		else if (e->kind == CKPT_PAGE_INHERIT)
			c.inherit += n;
	}
	return c;
}

static void prot_str(int prot, bool shared, char out[5])
{
	out[0] = prot & PROT_READ ? 'r' : '-';
	out[1] = prot & PROT_WRITE ? 'w' : '-';
	out[2] = prot & PROT_EXEC ? 'x' : '-';
	out[3] = shared ? 's' : 'p';
	out[4] = '\0';
}

static int load_state(struct cmd_ctx *ctx, struct ckpt_image *img, struct ckpt_state **ret)
{
	json_object *docs[CKPT_STATE_NR_DOCS] = { 0 };
	char why[256] = "";
	int r = 0;

	for (int d = 0; d < CKPT_STATE_NR_DOCS && r == 0; d++)
		r = ckpt_image_get_json(img, ckpt_state_doc_name(d), &docs[d]);
	if (r == 0) {
		r = ckpt_state_from_docs(docs, why, sizeof(why), ret);
		if (r < 0)
			out_error(ctx, EXIT_FAIL, "'%s' is corrupt: %s", ckpt_image_path(img), why);
	}
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		if (docs[d])
			json_object_put(docs[d]);
	return r;
}

static json_object *inventory_json(struct ckpt_image *img)
{
	const struct ckpt_image_inventory *inv = ckpt_image_inventory(img);
	const struct ckpt_image_index *idx = ckpt_image_index(img);
	json_object *o = json_object_new_object();

	json_object_object_add(o, "path", json_object_new_string(ckpt_image_path(img)));
	json_object_object_add(o, "kind", json_object_new_string(inv->kind == CKPT_IMAGE_DELTA ? "delta" : "full"));
	json_object_object_add(o, "parent", inv->parent ? json_object_new_string(inv->parent) : NULL);
	json_object_object_add(o, "format_version", json_object_new_int(inv->format_version));
	json_object_object_add(o, "ckpt_version", json_object_new_string(inv->ckpt_version));
	json_object_object_add(o, "created", json_object_new_string(inv->created_utc));
	json_object_object_add(o, "pid", json_object_new_int(inv->identity.pid));
	json_object_object_add(o, "start_time", json_object_new_uint64(inv->identity.start_time));
	json_object_object_add(o, "boot_id", json_object_new_string(inv->identity.boot_id));
	json_object_object_add(o, "exe", json_object_new_string(inv->identity.exe ? inv->identity.exe : ""));
	json_object_object_add(o, "data_pages", json_object_new_uint64(idx->nr_data_pages));
	json_object_object_add(o, "pages_bytes", json_object_new_uint64(idx->pages_size));
	json_object_object_add(o, "frames", json_object_new_uint64(idx->nr_frames));
	return o;
}

/* ", fifo 7, nice -3, reset on fork, slack 50000 ns": what the checkpoint says of it. */
static void sched_text(const struct ckpt_state_thread *t, char *buf, size_t len)
{
	const struct ckpt_state_sched *s = &t->sched;
	int n = 0;

	buf[0] = '\0';
	if (t->has_sched)
		n = snprintf(buf, len, ", %s", ckpt_state_sched_policy_name(s->policy) ?: "?");
	if (t->has_sched && s->priority && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " %d", s->priority);
	if (t->has_sched && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, ", nice %d%s", s->nice,
			      s->reset_on_fork ? ", reset on fork" : "");
	if (t->has_timerslack && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ", slack %" PRIu64 " ns", t->timerslack_ns);
}

/* The process tree (tree.json), when the checkpoint holds more than its root. */
static void tree_text(const struct ckpt_tree *t)
{
	if (!t || t->nr_nodes < 2) {
		if (t && t->nr_pipes)
			printf("\npipes saved with their bytes: %zu\n", t->nr_pipes);
		return;
	}
	printf("\nprocess tree (%zu processes; each in its own checkpoint: show DIR/proc-PID):\n", t->nr_nodes);
	for (size_t i = 0; i < t->nr_nodes; i++) {
		const struct ckpt_tree_node *n = &t->nodes[i];
		int depth = 0;

		for (ssize_t p = n->parent; p >= 0; p = t->nodes[p].parent)
			depth++;
		printf("  %*s%-7d %-16s ppid %-7d pgid %-7d sid %-7d %s", depth * 2, "", n->pid, n->comm, n->ppid,
		       n->pgid, n->sid, n->zombie ? "zombie" : n->dir);
		if (n->zombie)
			printf(", wait status %#x", n->wait_status);
		printf("\n");
	}
	printf("  pipes inside the tree, with their bytes: %zu; open files shared by several: %zu\n",
	       t->nr_pipes, t->nr_files);
}

static void show_text(struct ckpt_chain *chain, const struct ckpt_state *s, bool pages)
{
	struct ckpt_image *img = ckpt_chain_image(chain, 0);
	const struct ckpt_image_inventory *inv = ckpt_image_inventory(img);
	const struct ckpt_image_index *idx = ckpt_image_index(img);

	printf("checkpoint '%s': %s, created %s by ckpt %s (format %d)\n", ckpt_image_path(img),
	       inv->kind == CKPT_IMAGE_DELTA ? "delta" : "full", inv->created_utc, inv->ckpt_version,
	       inv->format_version);
	printf("process: pid %d (%s), exe '%s', started at tick %" PRIu64 ", boot %s\n", s->process.pid,
	       s->process.comm, s->process.exe ? s->process.exe : "?", s->process.start_time,
	       inv->identity.boot_id);
	printf("         cwd '%s', uid %u, gid %u, umask %03o%s\n", s->process.cwd ? s->process.cwd : "?",
	       s->process.creds.uid[0], s->process.creds.gid[0], s->process.umask,
	       s->process.job_stopped ? ", stopped" : "");
	printf("\nchain (%zu):\n", ckpt_chain_length(chain));
	for (size_t i = 0; i < ckpt_chain_length(chain); i++) {
		struct ckpt_image *c = ckpt_chain_image(chain, i);
		const struct ckpt_image_index *ci = ckpt_image_index(c);

		printf("  %zu  %-5s %s  %8" PRIu64 " data pages, %10" PRIu64 " bytes  '%s'\n", i,
		       ckpt_image_inventory(c)->kind == CKPT_IMAGE_DELTA ? "delta" : "full",
		       ckpt_image_inventory(c)->created_utc, ci->nr_data_pages, ci->pages_size,
		       ckpt_image_path(c));
	}
	printf("\nthreads (%zu):\n", s->nr_threads);
	for (size_t i = 0; i < s->nr_threads; i++) {
		const struct ckpt_state_thread *t = &s->threads[i];
		char sched[128];

		sched_text(t, sched, sizeof(sched));
		printf("  %-7d %-16s rip %#llx rsp %#llx%s sigmask %#" PRIx64 "%s\n", t->tid, t->comm,
		       t->regs.rip, t->regs.rsp, t->in_syscall ? " (in syscall)" : "", t->sigmask, sched);
	}
	if (idx->inherit_pid)
		printf("\nmappings (%zu):  data/zero/hole pages in this checkpoint, and pages that are "
		       "pid %d's (saved once, by that parent)\n", s->mm.nr_vmas, (int)idx->inherit_pid);
	else
		printf("\nmappings (%zu):  data/zero/hole pages in this checkpoint\n", s->mm.nr_vmas);
	for (size_t i = 0; i < s->mm.nr_vmas; i++) {
		const struct ckpt_state_vma *v = &s->mm.vmas[i];
		struct counts c = count_pages(idx, v->start, v->end);
		char p[5], inh[24] = "";

		prot_str(v->prot, v->shared, p);
		if (idx->inherit_pid)
			snprintf(inh, sizeof(inh), " %7" PRIu64, c.inherit);
		printf("  %012" PRIx64 "-%012" PRIx64 " %s %-10s %7" PRIu64 " %7" PRIu64 " %7" PRIu64 "%s  %s%s\n",
		       v->start, v->end, p, ckpt_state_vma_kind_name(v->kind), c.data, c.zero, c.hole, inh,
		       v->path ? v->path : v->name ? v->name : "", v->deleted ? " (deleted)" : "");
	}
	printf("\nfiles (%zu):\n", s->nr_fds);
	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];
		char name[512];
		const char *what = f->kind == CKPT_STATE_FD_SOCKET ?
			ckpt_state_socket_name(&f->sock, f->id.ino, name, sizeof(name)) : f->path;

		printf("  %4d %-10s flags %#o pos %-8" PRIu64 " %s%s%s%s\n", f->fd,
		       ckpt_state_fd_kind_name(f->kind), f->flags, f->pos, what ? what : "",
		       f->deleted ? " (deleted)" : "", f->restorable ? "" : "  NOT RESTORABLE: ",
		       f->restorable ? "" : f->reason);
	}
	if (pages) {
		printf("\npages of this checkpoint (%zu entries):\n", idx->nr_entries);
		for (size_t i = 0; i < idx->nr_entries; i++)
			printf("  %012" PRIx64 " %8" PRIu64 " %s\n", idx->entries[i].addr,
			       idx->entries[i].nr_pages, ckpt_page_kind_name(idx->entries[i].kind));
	}
}

static json_object *show_json(struct ckpt_chain *chain, const struct ckpt_state *s, bool pages)
{
	struct ckpt_image *img = ckpt_chain_image(chain, 0);
	const struct ckpt_image_index *idx = ckpt_image_index(img);
	json_object *o = NULL, *arr, *vmas;

	if (ckpt_state_to_json(s, &o) < 0)
		return NULL;
	json_object_object_add(o, "inventory", inventory_json(img));
	arr = json_object_new_array();
	for (size_t i = 0; i < ckpt_chain_length(chain); i++)
		json_object_array_add(arr, inventory_json(ckpt_chain_image(chain, i)));
	json_object_object_add(o, "chain", arr);
	/* Page counts per mapping, in the order of mm.vmas. */
	vmas = json_object_new_array();
	for (size_t i = 0; i < s->mm.nr_vmas; i++) {
		struct counts c = count_pages(idx, s->mm.vmas[i].start, s->mm.vmas[i].end);
		json_object *e = json_object_new_object();

		json_object_object_add(e, "data", json_object_new_uint64(c.data));
		json_object_object_add(e, "zero", json_object_new_uint64(c.zero));
		json_object_object_add(e, "hole", json_object_new_uint64(c.hole));
		json_object_object_add(e, "inherited", json_object_new_uint64(c.inherit));
		json_object_array_add(vmas, e);
	}
	json_object_object_add(o, "vma_pages", vmas);
	if (pages) {
		arr = json_object_new_array();
		for (size_t i = 0; i < idx->nr_entries; i++) {
			json_object *e = json_object_new_object();
			char a[32];

			snprintf(a, sizeof(a), "0x%" PRIx64, idx->entries[i].addr);
			json_object_object_add(e, "addr", json_object_new_string(a));
			json_object_object_add(e, "pages", json_object_new_uint64(idx->entries[i].nr_pages));
			json_object_object_add(e, "kind",
					       json_object_new_string(ckpt_page_kind_name(idx->entries[i].kind)));
			json_object_array_add(arr, e);
		}
		json_object_object_add(o, "pages", arr);
	}
	return o;
}

/* Every file and frame of @chain, and of the chain of every other process of @tree. */
static int verify_all(struct ckpt_chain *chain, const struct ckpt_tree *tree, const char *dir)
{
	int r = 0;

	/* The chain, and the checkpoints of parent processes whose pages it holds (a proc-PID given alone). */
	r = ckpt_chain_verify(chain);
	/* A tree: each process's own chain (its parents' are among them). */
	for (size_t i = 1; r == 0 && tree && i < tree->nr_nodes; i++) {
		_cleanup_chain_ struct ckpt_chain *c = NULL;
		char sub[4096];

		if (tree->nodes[i].zombie)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, tree->nodes[i].dir);
		r = ckpt_chain_open(sub, NULL, &c);
		for (size_t k = 0; r == 0 && k < ckpt_chain_length(c); k++)
			r = ckpt_image_verify(ckpt_chain_image(c, k));
	}
	return r;
}

/* tree.json of @img: NULL for a checkpoint of one process written before trees. */
static int load_tree(struct cmd_ctx *ctx, struct ckpt_image *img, struct ckpt_tree **ret, json_object **ret_json)
{
	json_object *o = NULL;
	char why[256] = "";
	int r = ckpt_image_get_json(img, CKPT_TREE_DOC, &o);

	*ret = NULL;
	*ret_json = NULL;
	if (r == -ENOENT)
		return 0;
	if (r == 0 && (r = ckpt_tree_from_json(o, why, sizeof(why), ret)) < 0)
		out_error(ctx, EXIT_FAIL, "'%s/%s' is corrupt: %s", ckpt_image_path(img), CKPT_TREE_DOC, why);
	if (r < 0) {
		json_object_put(o);
		return r;
	}
	*ret_json = o;
	return 0;
}

static int run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		CMD_COMMON_LONGOPTS,
		{ "pages", no_argument, NULL, 'p' },
		{ "verify", no_argument, NULL, 'V' },
		{ 0 },
	};
	_cleanup_chain_ struct ckpt_chain *chain = NULL;
	_cleanup_state_ struct ckpt_state *s = NULL;
	_cleanup_tree_ struct ckpt_tree *tree = NULL;
	json_object *tree_json = NULL;
	bool pages = false, verify = false;
	const char *dir;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cmd_print_help(&cmd_show);
		case 'J':
			ctx->json = true;
			break;
		case 'p':
			pages = true;
			break;
		case 'V':
			verify = true;
			break;
		default:
			return out_usage_error(ctx, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind + 1 != argc)
		return out_usage_error(ctx, optind >= argc ? "which checkpoint? give DIR"
							   : "one checkpoint at a time");
	dir = argv[optind];
	r = ckpt_chain_open(dir, NULL, &chain);
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "cannot read the checkpoint '%s'", dir);
	r = load_state(ctx, ckpt_chain_image(chain, 0), &s);
	if (r == 0)
		r = load_tree(ctx, ckpt_chain_image(chain, 0), &tree, &tree_json);
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "cannot read the checkpoint '%s'", dir);
	if (verify && (r = verify_all(chain, tree, dir)) < 0) {
		json_object_put(tree_json);
		return out_error(ctx, EXIT_FAIL, "the checkpoint '%s' is corrupt", dir);
	}
	if (ctx->json) {
		json_object *o = show_json(chain, s, pages);

		if (!o) {
			json_object_put(tree_json);
			return out_error(ctx, EXIT_FAIL, "out of memory");
		}
		json_object_object_add(o, "tree", tree_json);
		out_json(o, false);
		json_object_put(o);
	} else {
		json_object_put(tree_json);
		show_text(chain, s, pages);
		tree_text(tree);
	}
	return EXIT_OK;
}

const struct command cmd_show = {
	.name = "show",
	.fn = run,
	.summary = "decode a checkpoint and its chain",
	.usage = usage,
};
