/* SPDX-License-Identifier: MIT */
/*
 * RUNDIR/lazy-PID.json: what a server that takes over needs: where the uffd
 * is parked in the process (and its inode, to prove it), where the pages
 * come from, every registered range with its images address, and the runs
 * of its pages that are done: delivered, or dropped (MADV_DONTNEED) and
 * zero from then on, never the images' pages. Rewritten (temp file +
 * rename) whenever the table changes (mremap, MADV_DONTNEED, munmap): a
 * page delivered since is present, and PAGEMAP_SCAN finds it.
 */
#define LOG_AREA "lazy"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lazy/lazy-internal.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#define RECORD_VERSION 2
#define PS 4096ULL

static void path_of(struct ckpt_lazy_server *s, pid_t pid, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%s/lazy-%d.json%s", s->rundir, pid, suffix);
}

int lz_record_save(struct ckpt_lazy_server *s, struct lz_proc *p)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	json_object *src = json_object_new_object(), *ranges = json_object_new_array();
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	const char *text;
	int fd, r;

	if (mkdir(s->rundir, 0700) < 0 && errno != EEXIST)
		return neg_errno();
	json_object_object_add(o, "version", json_object_new_int(RECORD_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(p->pid));
	json_object_object_add(o, "parked_fd", json_object_new_int(p->parked_fd));
	json_object_object_add(o, "uffd_ino", json_object_new_uint64(p->uffd_ino));
	if (p->dir)
		json_object_object_add(src, "dir", json_object_new_string(p->dir));
	if (p->url)
		json_object_object_add(src, "url", json_object_new_string(p->url));
	if (p->token_file)
		json_object_object_add(src, "token_file", json_object_new_string(p->token_file));
	if (p->proc)
		json_object_object_add(src, "proc", json_object_new_string(p->proc));
	json_object_object_add(o, "source", src);
	for (size_t i = 0; i < p->nr; i++) {
		const struct lz_vma *v = &p->v[i];
		json_object *e = json_object_new_array(), *runs = json_object_new_array();
		uint64_t pages = (v->end - v->start) / PS;

		json_object_array_add(e, json_object_new_uint64(v->start));
		json_object_array_add(e, json_object_new_uint64(v->end));
		json_object_array_add(e, json_object_new_uint64(v->src));
		for (uint64_t k = 0; k < pages;) {
			uint64_t n = 0;

			if (!lz_is_done(v, k)) {
				k++;
				continue;
			}
			while (k + n < pages && lz_is_done(v, k + n))
				n++;
			json_object_array_add(runs, json_object_new_uint64(k));
			json_object_array_add(runs, json_object_new_uint64(n));
			k += n;
		}
		json_object_array_add(e, runs);
		json_object_array_add(ranges, e);
	}
	json_object_object_add(o, "ranges", ranges);
	if (p->nr_lock) {
		json_object *lk = json_object_new_array();

		for (size_t i = 0; i < p->nr_lock; i++) {
			json_object_array_add(lk, json_object_new_uint64(p->lock[i][0]));
			json_object_array_add(lk, json_object_new_uint64(p->lock[i][1]));
		}
		json_object_object_add(o, "lock", lk);
	}
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	path_of(s, p->pid, "", path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return neg_errno();
	r = write_all(fd, text, strlen(text));
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = neg_errno();
	if (r < 0) {
		unlink(tmp);
		pr_err("cannot write '%s': %s", path, errstr(r));
	}
	return r;
}

void lz_record_remove(struct ckpt_lazy_server *s, pid_t pid)
{
	char path[PATH_MAX];

	path_of(s, pid, "", path, sizeof(path));
	unlink(path);
}

static uint64_t u64_at(json_object *a, size_t i)
{
	return json_object_get_uint64(json_object_array_get_idx(a, i));
}

int lz_record_load(struct ckpt_lazy_server *s, pid_t pid, struct lz_proc *p)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_object *o = NULL;
	json_object *v, *src, *ranges;
	char path[PATH_MAX];
	int r;

	path_of(s, pid, "", path, sizeof(path));
	r = read_file_at(AT_FDCWD, path, &text, NULL);
	if (r < 0) {
		if (r == -ENOENT)
			pr_err("pid %d has no lazy restore to take over (no '%s')", pid, path);
		return r;
	}
	o = json_tokener_parse(text);
	if (!o || !json_object_object_get_ex(o, "version", &v) || json_object_get_int(v) != RECORD_VERSION ||
	    !json_object_object_get_ex(o, "parked_fd", &v))
		goto bad;
	p->parked_fd = json_object_get_int(v);
	if (!json_object_object_get_ex(o, "uffd_ino", &v))
		goto bad;
	p->uffd_ino = json_object_get_uint64(v);
	if (json_object_object_get_ex(o, "source", &src)) {
		if (json_object_object_get_ex(src, "dir", &v))
			p->dir = strdup(json_object_get_string(v));
		if (json_object_object_get_ex(src, "url", &v))
			p->url = strdup(json_object_get_string(v));
		if (json_object_object_get_ex(src, "token_file", &v))
			p->token_file = strdup(json_object_get_string(v));
		if (json_object_object_get_ex(src, "proc", &v))
			p->proc = strdup(json_object_get_string(v));
	}
	if (!json_object_object_get_ex(o, "ranges", &ranges) || !json_object_is_type(ranges, json_type_array))
		goto bad;
	for (size_t i = 0; i < json_object_array_length(ranges); i++) {
		json_object *e = json_object_array_get_idx(ranges, i), *runs;
		uint64_t pages;
		struct lz_vma *lv;

		if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) != 4 ||
		    u64_at(e, 1) <= u64_at(e, 0) || (u64_at(e, 0) | u64_at(e, 1) | u64_at(e, 2)) % PS)
			goto bad;
		runs = json_object_array_get_idx(e, 3);
		if (!json_object_is_type(runs, json_type_array) || json_object_array_length(runs) % 2)
			goto bad;
		r = lz_add_range(p, u64_at(e, 0), u64_at(e, 1), u64_at(e, 2));
		if (r < 0)
			return r;
		lv = &p->v[p->nr - 1];
		pages = (lv->end - lv->start) / PS;
		for (size_t k = 0; k < json_object_array_length(runs); k += 2) {
			uint64_t at = u64_at(runs, k), n = u64_at(runs, k + 1);

			if (at >= pages || n > pages - at)
				goto bad;
			lz_mark(p, lv, at, n);
		}
	}
	/* Optional: records of older servers have none. */
	if (json_object_object_get_ex(o, "lock", &v)) {
		if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) % 2)
			goto bad;
		for (size_t k = 0; k < json_object_array_length(v); k += 2)
			if ((r = lz_add_lock(p, u64_at(v, k), u64_at(v, k + 1))) < 0)
				return r;
	}
	return 0;
bad:
	pr_err("the lazy-restore record '%s' is corrupt", path);
	return -EBADMSG;
}
