/* SPDX-License-Identifier: MIT */
/* Stages shared by ckpt_dump_run and ckpt_dump_continuous: identity, documents, pages. */
#define LOG_AREA "dump"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt/inject.h>
#include <ckpt/proc.h>
#include <ckpt/state.h>

#include "dump/dump-internal.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

int dump_identity(pid_t pid, struct ckpt_image_identity *ret, char **ret_exe)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL, *live = NULL;
	_cleanup_free_ char *boot = NULL, *exe = NULL;
	struct ckpt_proc_stat st;
	int r;

	/* What no checkpoint can be made of is said as what it is (a kernel thread, a zombie). */
	r = ckpt_inject_check_pid(pid);
	if (r < 0)
		return r;
	/* The process's start time is its leader's; its exe a live thread's (the leader may have exited). */
	r = ckpt_proc_open(NULL, pid, &p);
	if (r == 0)
		r = ckpt_proc_open_live(NULL, pid, &live);
	if (r < 0) {
		pr_err("pid %d: %s", pid, r == -ESRCH ? "no such process" : errstr(r));
		return r;
	}
	if ((r = ckpt_proc_read_stat(p, &st)) < 0 || (r = ckpt_proc_read_exe(live, &exe)) < 0 ||
	    (r = ckpt_proc_read_sysctl(NULL, "kernel/random/boot_id", &boot)) < 0) {
		pr_err("cannot identify pid %d: %s", pid, errstr(r));
		return r;
	}
	memset(ret, 0, sizeof(*ret));
	ret->pid = pid;
	ret->start_time = st.start_time;
	snprintf(ret->boot_id, sizeof(ret->boot_id), "%s", boot);
	ret->exe = exe;
	*ret_exe = TAKE_PTR(exe);
	return 0;
}

int dump_put_state(struct ckpt_image_writer *w, const struct ckpt_state *st)
{
	for (int doc = 0; doc < CKPT_STATE_NR_DOCS; doc++) {
		_cleanup_json_ json_object *o = NULL;
		int r = ckpt_state_doc_to_json(st, doc, &o);

		if (r == 0)
			r = ckpt_image_writer_put_json(w, ckpt_state_doc_name(doc), o);
		if (r < 0)
			return r;
	}
	/* The contents of ghost files and memfds (collect_file_contents), socket queues */
	for (size_t i = 0; i < st->nr_fds; i++) {
		const struct ckpt_state_fd *f = &st->fds[i];
		int r;

		if (f->blob && f->blob_data &&
		    (r = ckpt_image_writer_put_blob(w, f->blob, f->blob_data, f->id.size)) < 0)
			return r;
		/* A unix socket's queue (collect_sockets.c) */
		if (f->sock.queue_blob && f->sock.queue_data &&
		    (r = ckpt_image_writer_put_blob(w, f->sock.queue_blob, f->sock.queue_data,
						    f->sock.queue_len)) < 0)
			return r;
		/* An established TCP connection's queues (collect_tcp.c) */
		if (f->sock.tcp.recv_blob && f->sock.tcp.recv_data &&
		    (r = ckpt_image_writer_put_blob(w, f->sock.tcp.recv_blob, f->sock.tcp.recv_data,
						    f->sock.tcp.inq_len)) < 0)
			return r;
		if (f->sock.tcp.send_blob && f->sock.tcp.send_data &&
		    (r = ckpt_image_writer_put_blob(w, f->sock.tcp.send_blob, f->sock.tcp.send_data,
						    f->sock.tcp.outq_len)) < 0)
			return r;
	}
	/* ... and of deleted files mapped but not open (collect_files.c, ghost_mapping) */
	for (size_t i = 0; i < st->mm.nr_vmas; i++) {
		const struct ckpt_state_vma *v = &st->mm.vmas[i];
		int r;

		if (v->blob && v->blob_data &&
		    (r = ckpt_image_writer_put_blob(w, v->blob, v->blob_data, v->id.size)) < 0)
			return r;
	}
	return 0;
}

int dump_put_track_doc(struct ckpt_image_writer *w, uint64_t generation, int parked_fd)
{
	_cleanup_json_ json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "version", json_object_new_int(TRACK_DOC_VERSION));
	json_object_object_add(o, "generation", json_object_new_uint64(generation));
	json_object_object_add(o, "parked_fd", json_object_new_int(parked_fd));
	return ckpt_image_writer_put_json(w, TRACK_DOC, o);
}

int dump_add_run(struct ckpt_image_writer *w, const struct page_copy *pages, const struct page_run *run,
		 uint64_t addr, uint64_t nr)
{
	switch (run->kind) {
	case PAGE_RUN_DATA:
		return ckpt_image_writer_add_data(w, addr, nr, pages->buf + run->buf_off + (addr - run->addr));
	case PAGE_RUN_INHERIT:
		return ckpt_image_writer_add_inherit(w, addr, nr, run->from);
	default:
		return ckpt_image_writer_add_hole(w, addr, nr);
	}
}

int dump_add_pages(struct ckpt_image_writer *w, const struct page_copy *pages)
{
	for (size_t i = 0; i < pages->nr_runs; i++) {
		const struct page_run *run = &pages->runs[i];
		int r = dump_add_run(w, pages, run, run->addr, run->nr);

		if (r < 0)
			return r;
	}
	return 0;
}
