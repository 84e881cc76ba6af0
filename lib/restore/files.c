/* SPDX-License-Identifier: MIT */
/*
 * File descriptors, cwd and root. Every fd is opened in the child, proven
 * to be the checkpoint's file (device and inode) and moved to its number
 * with its close-on-exec flag; regular files get their position back.
 * Stdio that was a tty or a pipe is connected by policy (--stdio). A pipe
 * with both ends in the process is made again (its buffered bytes are not
 * saved); one whose other end lived elsewhere becomes /dev/null.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "restore/restore-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

/* Flags that open(2) can be given again. */
#define REOPEN_FLAGS (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_DSYNC | O_SYNC | \
		      O_DIRECTORY | O_LARGEFILE | O_PATH | O_NOFOLLOW)

/* Put remote @rfd at number @fd with the fd's close-on-exec flag. */
static int place(struct rst *r, int rfd, const struct ckpt_state_fd *f)
{
	int64_t res;

	if (rfd != f->fd) {
		res = RCALL(r, SYS_dup3, (uint64_t)rfd, (uint64_t)f->fd, f->cloexec ? O_CLOEXEC : 0);
		RCALL(r, SYS_close, (uint64_t)rfd);
		if (res < 0)
			return (int)res;
	} else if (!f->cloexec) {
		res = RCALL(r, SYS_fcntl, (uint64_t)rfd, F_SETFD, 0);
		if (res < 0)
			return (int)res;
	}
	return 0;
}

static int64_t ropen(struct rst *r, const char *path, int flags)
{
	rst_reset(r);
	return RCALL(r, SYS_openat, (uint64_t)AT_FDCWD, rst_put_str(r, path), (uint64_t)(flags | O_CLOEXEC), 0);
}

static int open_null(struct rst *r, const struct ckpt_state_fd *f)
{
	int64_t rfd = ropen(r, "/dev/null", (int)(f->flags & O_ACCMODE));

	return rfd < 0 ? (int)rfd : place(r, (int)rfd, f);
}

/* A regular file, directory or harmless device, by path. */
static int open_path(struct rst *r, const struct ckpt_state_fd *f)
{
	struct stat st;
	int64_t rfd = ropen(r, f->path, (int)(f->flags & REOPEN_FLAGS));
	int e;

	if (rfd < 0) {
		pr_err("cannot open '%s' as fd %d: %s", f->path, f->fd, errstr((int)rfd));
		return (int)rfd;
	}
	e = ckpt_proc_stat_fd(ckpt_inject_task_proc(r->inj), (int)rfd, &st);
	if (e == 0 && f->kind != CKPT_STATE_FD_CHR &&
	    (st.st_ino != f->id.ino || major(st.st_dev) != f->id.dev_major ||
	     minor(st.st_dev) != f->id.dev_minor)) {
		pr_err("'%s' (fd %d) is another file than at the checkpoint", f->path, f->fd);
		e = -ESTALE;
	}
	if (e == 0 && f->kind == CKPT_STATE_FD_REGULAR && f->pos) {
		int64_t res = RCALL(r, SYS_lseek, (uint64_t)rfd, f->pos, SEEK_SET);

		if (res < 0)
			e = (int)res;
	}
	if (e < 0) {
		RCALL(r, SYS_close, (uint64_t)rfd);
		return e;
	}
	return place(r, (int)rfd, f);
}

/* fds 0-2 that were a tty, a pipe or a fifo: by --stdio. */
static int stdio_fd(struct rst *r, const struct ckpt_state_fd *f)
{
	int local = -1, rfd = -1, e;

	switch (r->o->stdio) {
	case CKPT_STDIO_NULL:
		return open_null(r, f);
	case CKPT_STDIO_FILE:
		if (f->fd == 0)
			return open_null(r, f);
		local = open(r->o->stdio_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (local < 0) {
			e = neg_errno();
			pr_err("cannot open '%s' for the output of the restored process: %s",
			       r->o->stdio_file, errstr(e));
			return e;
		}
		break;
	case CKPT_STDIO_INHERIT:
		if (fcntl(f->fd, F_GETFD) < 0)
			return open_null(r, f); /* ckpt's own is closed */
		local = fcntl(f->fd, F_DUPFD_CLOEXEC, 3);
		if (local < 0)
			return neg_errno();
		break;
	}
	e = ckpt_inject_put_fd(r->inj, local, f->fd, f->cloexec ? O_CLOEXEC : 0, &rfd);
	close(local);
	if (e == 0 && (f->flags & O_NONBLOCK)) {
		int64_t fl = RCALL(r, SYS_fcntl, (uint64_t)f->fd, F_GETFL, 0);

		if (fl >= 0)
			RCALL(r, SYS_fcntl, (uint64_t)f->fd, F_SETFL, (uint64_t)fl | O_NONBLOCK);
	}
	return e;
}

static const struct ckpt_state_fd *pipe_peer(const struct ckpt_state *s, const struct ckpt_state_fd *f)
{
	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *g = &s->fds[i];

		if (g != f && g->kind == CKPT_STATE_FD_PIPE && g->id.ino == f->id.ino &&
		    (g->flags & O_ACCMODE) != (f->flags & O_ACCMODE))
			return g;
	}
	return NULL;
}

/* A pipe: made again when both ends are ours (the first end met makes both). */
static int pipe_fd(struct rst *r, const struct ckpt_state_fd *f, bool *done)
{
	const struct ckpt_state_fd *peer = pipe_peer(r->s, f);
	const struct ckpt_state_fd *rd, *wr;
	int fds[2];
	int64_t res;
	uint64_t at;
	int e;

	if (!peer) {
		pr_warn("fd %d was a pipe whose other end is not in the process: it is /dev/null now",
			f->fd);
		return open_null(r, f);
	}
	rd = (f->flags & O_ACCMODE) == O_RDONLY ? f : peer;
	wr = rd == f ? peer : f;
	rst_reset(r);
	at = rst_put(r, fds, sizeof(fds));
	res = RCALL(r, SYS_pipe2, at, O_CLOEXEC);
	if (res < 0)
		return (int)res;
	if ((e = ckpt_inject_read(r->inj, at, fds, sizeof(fds))) < 0)
		return e;
	/* Out of the way of numbers still to be placed, then into place. */
	if ((fds[0] = rst_park_fd(r, fds[0])) < 0 || (fds[1] = rst_park_fd(r, fds[1])) < 0)
		return -EMFILE;
	if ((e = place(r, fds[0], rd)) < 0 || (e = place(r, fds[1], wr)) < 0)
		return e;
	for (int k = 0; k < 2; k++) {
		const struct ckpt_state_fd *x = k ? wr : rd;

		if (x->flags & O_NONBLOCK)
			RCALL(r, SYS_fcntl, (uint64_t)x->fd, F_SETFL, O_NONBLOCK);
	}
	done[peer - r->s->fds] = true;
	return 0;
}

static int memfd_fd(struct rst *r, const struct ckpt_state_fd *f)
{
	int64_t rfd = -1;

	for (size_t i = 0; i < r->nr_shm; i++)
		if (ckpt_state_same_object(&r->shm[i].id, &f->id))
			rfd = RCALL(r, SYS_fcntl, (uint64_t)r->shm[i].rfd, F_DUPFD_CLOEXEC, 0);
	if (rfd < 0) {
		/* Not mapped: empty (the checks refused one with contents). */
		rst_reset(r);
		rfd = RCALL(r, SYS_memfd_create, rst_put_str(r, "ckpt-memfd"), MFD_CLOEXEC);
	}
	if (rfd < 0)
		return (int)rfd;
	if (f->pos)
		RCALL(r, SYS_lseek, (uint64_t)rfd, f->pos, SEEK_SET);
	return place(r, (int)rfd, f);
}

static int one_fd(struct rst *r, const struct ckpt_state_fd *f, bool *done)
{
	bool stdio = f->fd <= 2;

	switch (f->kind) {
	case CKPT_STATE_FD_REGULAR:
	case CKPT_STATE_FD_DIRECTORY:
	case CKPT_STATE_FD_CHR:
		return open_path(r, f);
	case CKPT_STATE_FD_TTY:
	case CKPT_STATE_FD_FIFO:
		if (stdio)
			return stdio_fd(r, f);
		if (f->path && access(f->path, F_OK) == 0) {
			int64_t rfd = ropen(r, f->path, (int)(f->flags & REOPEN_FLAGS) | O_NONBLOCK | O_NOCTTY);

			if (rfd >= 0) {
				if (!(f->flags & O_NONBLOCK))
					RCALL(r, SYS_fcntl, (uint64_t)rfd, F_SETFL,
					      (uint64_t)(f->flags & (O_APPEND | O_NONBLOCK)));
				return place(r, (int)rfd, f);
			}
		}
		pr_warn("fd %d ('%s') cannot be opened again: it is /dev/null now", f->fd,
			f->path ? f->path : "?");
		return open_null(r, f);
	case CKPT_STATE_FD_PIPE:
		if (stdio && !pipe_peer(r->s, f))
			return stdio_fd(r, f);
		return pipe_fd(r, f, done);
	case CKPT_STATE_FD_MEMFD:
		return memfd_fd(r, f);
	default:
		pr_err("fd %d (%s) cannot be restored", f->fd, ckpt_state_fd_kind_name(f->kind));
		return -ENOTSUP;
	}
}

int rst_files(struct rst *r)
{
	const struct ckpt_state *s = r->s;
	_cleanup_free_ bool *done = calloc(s->nr_fds + 1, sizeof(bool));
	int64_t res;
	int e;

	if (!done)
		return -ENOMEM;
	for (size_t i = 0; i < s->nr_fds; i++) {
		if (done[i])
			continue;
		e = one_fd(r, &s->fds[i], done);
		if (e < 0) {
			pr_err("cannot restore fd %d: %s", s->fds[i].fd, errstr(e));
			return e;
		}
		done[i] = true;
	}
	for (size_t i = 0; i < r->nr_shm; i++) {
		RCALL(r, SYS_close, (uint64_t)r->shm[i].rfd);
		r->shm[i].rfd = -1;
	}
	r->st->nr_fds = s->nr_fds;

	rst_reset(r);
	if (s->process.root && strcmp(s->process.root, "/")) {
		res = RCALL(r, SYS_chroot, rst_put_str(r, s->process.root));
		if (res < 0) {
			pr_err("cannot change the root to '%s': %s", s->process.root, errstr((int)res));
			return (int)res;
		}
	}
	rst_reset(r);
	if (s->process.cwd) {
		res = RCALL(r, SYS_chdir, rst_put_str(r, s->process.cwd));
		if (res < 0) {
			pr_err("cannot change the directory to '%s': %s", s->process.cwd, errstr((int)res));
			return (int)res;
		}
	}
	return 0;
}
