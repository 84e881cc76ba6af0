/* SPDX-License-Identifier: MIT */
/*
 * Everything a restore can refuse is refused here, before a process is
 * created: what restore cannot recreate (by the one judge of lib/state,
 * which dump applies too: nothing here may refuse on the checkpoint's
 * content alone), then what depends on this machine: files that changed or
 * vanished since, a pid that is taken, a vDSO of another shape.
 */
#define LOG_AREA "restore"
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "restore/restore-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

static void describe(const struct ckpt_state_identity *id, char *buf, size_t len)
{
	snprintf(buf, len, "device %u:%u, inode %" PRIu64 ", %" PRIu64 " bytes, modified %" PRId64 ".%09u",
		 id->dev_major, id->dev_minor, id->ino, id->size, id->mtime_sec, id->mtime_nsec);
}

static void identity_of(const struct stat *st, struct ckpt_state_identity *id)
{
	memset(id, 0, sizeof(*id));
	id->dev_major = major(st->st_dev);
	id->dev_minor = minor(st->st_dev);
	id->ino = st->st_ino;
	id->mode = st->st_mode;
	id->size = (uint64_t)st->st_size;
	id->mtime_sec = st->st_mtim.tv_sec;
	id->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
}

/*
 * A mapped file must be exactly the one of the checkpoint: its clean pages
 * come from it. @strict: size and mtime too (mappings); else the same file
 * (fds: a log may have grown).
 */
static int same_file(const char *what, const char *path, const struct ckpt_state_identity *want,
		     bool strict)
{
	struct ckpt_state_identity now;
	struct stat st;
	char a[160], b[160];

	if (stat(path, &st) < 0) {
		int r = neg_errno();

		pr_err("%s '%s' is gone: %s", what, path, errstr(r));
		return -ESTALE;
	}
	identity_of(&st, &now);
	if (now.dev_major != want->dev_major || now.dev_minor != want->dev_minor || now.ino != want->ino ||
	    (strict && (now.size != want->size || now.mtime_sec != want->mtime_sec ||
			now.mtime_nsec != want->mtime_nsec))) {
		describe(want, a, sizeof(a));
		describe(&now, b, sizeof(b));
		pr_err("%s '%s' changed since the checkpoint: it was %s; it is %s", what, path, a, b);
		return -ESTALE;
	}
	return 0;
}

/* What the checkpoint holds that restore cannot recreate: the judge of lib/state, as dump uses it. */
static int check_unrestorable(struct rst *r)
{
	_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *issues = NULL;
	int e;

	e = ckpt_state_unrestorable(r->s, &issues);
	if (e < 0)
		return e;
	if (!issues->nr)
		return 0;
	for (size_t i = 0; i < issues->nr; i++)
		pr_err("%s: %s", issues->v[i].what, issues->v[i].reason);
	pr_err("the checkpoint holds %zu thing%s restore cannot recreate", issues->nr,
	       issues->nr > 1 ? "s" : "");
	return -ENOTSUP;
}

static int check_files(struct rst *r)
{
	const struct ckpt_state *s = r->s;
	int e = 0, k;

	for (size_t i = 0; i < s->mm.nr_vmas; i++) {
		const struct ckpt_state_vma *v = &s->mm.vmas[i];

		if (v->kind != CKPT_STATE_VMA_FILE || v->deleted || !v->path)
			continue;
		if (i && s->mm.vmas[i - 1].path && !strcmp(s->mm.vmas[i - 1].path, v->path))
			continue; /* the next segment of the same file */
		if ((k = same_file("the mapped file", v->path, &v->id, true)) < 0)
			e = k;
	}
	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];

		if ((f->kind == CKPT_STATE_FD_REGULAR || f->kind == CKPT_STATE_FD_DIRECTORY) &&
		    !rst_fd_made_again(r, f) && (k = same_file("the open file", f->path, &f->id, false)) < 0)
			e = k;
		if (f->kind == CKPT_STATE_FD_CHR && access(f->path, F_OK) < 0) {
			pr_err("the device '%s' (fd %d) is gone", f->path, f->fd);
			e = -ESTALE;
		}
	}
	if (s->process.cwd && !rst_dir_deleted(s->process.cwd, NULL) && access(s->process.cwd, X_OK) < 0) {
		pr_err("the working directory '%s' is gone", s->process.cwd);
		e = -ESTALE;
	}
	return e;
}

/* Our own vDSO has the shape the checkpoint's must be moved onto. */
static int check_vdso(struct rst *r)
{
	_cleanup_proc_ struct ckpt_proc *self = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	static const struct {
		enum ckpt_vma_kind proc;
		enum ckpt_state_vma_kind state;
		const char *name;
	} trio[] = {
		{ CKPT_VMA_VVAR, CKPT_STATE_VMA_VVAR, "[vvar]" },
		{ CKPT_VMA_VVAR_VCLOCK, CKPT_STATE_VMA_VVAR_VCLOCK, "[vvar_vclock]" },
		{ CKPT_VMA_VDSO, CKPT_STATE_VMA_VDSO, "[vdso]" },
	};
	int e;

	if ((e = ckpt_proc_open(NULL, getpid(), &self)) < 0 || (e = ckpt_proc_read_maps(self, 0, &maps)) < 0)
		return e;
	for (size_t t = 0; t < ARRAY_SIZE(trio); t++) {
		uint64_t ours = 0, theirs = 0;

		for (size_t i = 0; i < maps->nr; i++)
			if (maps->v[i].kind == trio[t].proc)
				ours = maps->v[i].end - maps->v[i].start;
		for (size_t i = 0; i < r->s->mm.nr_vmas; i++)
			if (r->s->mm.vmas[i].kind == trio[t].state)
				theirs = r->s->mm.vmas[i].end - r->s->mm.vmas[i].start;
		if (theirs && ours != theirs) {
			pr_err("%s of this kernel is %" PRIu64 " bytes, the checkpoint's %" PRIu64
			       ": restore needs the kernel the process ran on", trio[t].name, ours, theirs);
			return -ENOTSUP;
		}
	}
	return 0;
}

/* A process whose process group or session is @id (@ret_sid: the session), if any. */
static bool id_group_member(pid_t id, pid_t *ret_pid, char *comm, size_t len, bool *ret_sid)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		_cleanup_proc_ struct ckpt_proc *p = NULL;
		struct ckpt_proc_stat st;
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0 || ckpt_proc_open(NULL, (pid_t)pid, &p) < 0 || ckpt_proc_read_stat(p, &st) < 0)
			continue;
		if (st.pgrp != id && st.session != id)
			continue;
		*ret_pid = (pid_t)pid;
		*ret_sid = st.pgrp != id;
		snprintf(comm, len, "%.40s%s", st.comm, st.state == 'Z' ? ", a zombie" : "");
		return true;
	}
	return false;
}

void rst_id_holder(pid_t id, char *buf, size_t len)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	struct ckpt_proc_status st;

	if (ckpt_proc_open(NULL, id, &p) < 0 || ckpt_proc_read_status(p, &st) < 0) {
		pid_t member = 0;
		char comm[80] = "?";
		bool sid = false;

		/* No such process: the id may still name a process group or session. */
		if (id_group_member(id, &member, comm, sizeof(comm), &sid))
			snprintf(buf, len, "the %s of pid %d (%s), still in it", sid ? "session" : "process group",
				 member, comm);
		else
			snprintf(buf, len, "a process that is gone now");
		return;
	}
	if (st.tgid != id)
		snprintf(buf, len, "thread %d of pid %d (%s)", id, st.tgid, st.name);
	else
		snprintf(buf, len, "pid %d (%s)%s", id, st.name,
			 st.state == 'Z' ? ", a zombie its parent has not reaped yet" : "");
	ckpt_proc_status_done(&st);
}

/*
 * Is @id held by a process that will let go of it soon: a zombie whose
 * parent is init or a subreaper (an orphan of a dump that killed a tree:
 * reaped in a moment), or an id whose process is gone (rst_id_in_limbo)?
 * Wait up to a second for it.
 */
static bool id_freed_soon(pid_t id)
{
	for (int tries = 0; tries < RST_LIMBO_TRIES; tries++) {
		_cleanup_proc_ struct ckpt_proc *p = NULL;
		struct ckpt_proc_stat st;

		if (ckpt_proc_open(NULL, id, &p) < 0)
			return true;
		if (ckpt_proc_read_stat(p, &st) < 0)
			return true;
		if (st.state != 'Z' && st.state != 'X')
			return false;
		usleep(10000);
	}
	return false;
}

bool rst_id_taken(pid_t id)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;

	return ckpt_proc_open(NULL, id, &p) == 0 && !id_freed_soon(id);
}

bool rst_id_in_limbo(pid_t id)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;

	return ckpt_proc_open(NULL, id, &p) == -ESRCH;
}

/* With the same ids: the pid and every thread id must be free (one message for each taken). */
static int check_ids(struct rst *r)
{
	size_t taken = 0;

	if (!r->same_ids)
		return 0;
	for (size_t i = 0; i < r->s->nr_threads; i++) {
		pid_t id = r->s->threads[i].tid;
		_cleanup_proc_ struct ckpt_proc *p = NULL;
		char who[128];

		if (ckpt_proc_open(NULL, id, &p) < 0 || id_freed_soon(id) || ++taken > 3)
			continue;
		rst_id_holder(id, who, sizeof(who));
		if (r->tree && r->tree->nr > 1 && i == 0)
			pr_err("pid %d is taken (by %s): a process tree is restored with the pids it had", id, who);
		else if (r->s->nr_threads == 1)
			pr_err("pid %d is taken (by %s): cannot restore with the same pid", id, who);
		else
			pr_err("thread id %d of pid %d is taken (by %s): a process with threads is restored "
			       "with the ids it had", id, r->s->process.pid, who);
	}
	if (taken > 3)
		pr_err("%zu more thread ids of pid %d are taken", taken - 3, r->s->process.pid);
	return taken ? -EEXIST : 0;
}

int rst_check(struct rst *r)
{
	int e;

	if ((e = check_unrestorable(r)) < 0 || (e = check_files(r)) < 0 || (e = check_vdso(r)) < 0 ||
	    (e = check_ids(r)) < 0)
		return e;
	return 0;
}
