/* SPDX-License-Identifier: MIT */
/*
 * File descriptors, cwd and root. Every fd is opened in the child, proven
 * to be the checkpoint's file (device and inode) and moved to its number
 * with its close-on-exec flag; regular files get their position back.
 *
 * Pipes and fifos (ckpt-restore(1), "Pipes and fifos"):
 * - --inherit-fd fd[N]:KEY hands in our fd N for the pipe, fifo or tty KEY;
 * - a fifo is opened again by its path with its access mode, by ckpt,
 *   before the process exists, waiting as open(2) does for the other side;
 * - a pipe with both ends in the process is made again;
 * - a pipe of fds 0-2 whose other end lived elsewhere follows an explicit
 *   --stdio; with none it is refused, naming the --inherit-fd it needs;
 *   on another fd it becomes /dev/null, with a warning.
 * The bytes that waited in a pipe are not saved (the dump said so).
 * With --detach, our own stdout and stderr are never given through --stdio
 * when they are pipes or fifos.
 *
 * Made again rather than opened by path (ckpt-restore(1), "Deleted files,
 * memfds, /proc"):
 * - a deleted file that was open (a ghost file) is created again from its
 *   saved contents, at its path when the name is free (O_EXCL, never over
 *   another file) or as an O_TMPFILE of its directory, unlinked at once,
 *   given its mode and mtime, then opened with the fd's flags and position;
 * - a memfd that no shared mapping holds: memfd_create(NAME), its contents,
 *   then its seals;
 * - a file of the process's own /proc directory is opened in the restored
 *   process's, at the same position;
 * - a deleted working (or root) directory is made again empty, entered and
 *   removed, as CRIU does.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "restore/restore-internal.h"
#include "restore/fdkinds.h"
#include "restore/sockets.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

/* Flags that open(2) can be given again. */
#define REOPEN_FLAGS (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_DSYNC | O_SYNC | \
		      O_DIRECTORY | O_LARGEFILE | O_PATH | O_NOFOLLOW)

int rst_place_fd(struct rst *r, int rfd, const struct ckpt_state_fd *f)
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

	return rfd < 0 ? (int)rfd : rst_place_fd(r, (int)rfd, f);
}

/*
 * A file of the process's own /proc directory: the same file in the
 * restored process's, at the same position (a seq_file reads up to it; a
 * file that cannot seek stays at 0).
 */
static int open_proc(struct rst *r, const struct ckpt_state_fd *f, const char *rest)
{
	char path[PATH_MAX];
	int64_t rfd, res;

	snprintf(path, sizeof(path), "/proc/%d%s", r->pid, rest);
	rfd = ropen(r, path, (int)(f->flags & REOPEN_FLAGS));
	if (rfd < 0) {
		pr_err("cannot open '%s' (fd %d was '%s'): %s", path, f->fd, f->path, errstr((int)rfd));
		return (int)rfd;
	}
	if (f->pos && f->kind == CKPT_STATE_FD_REGULAR) {
		res = RCALL(r, SYS_lseek, (uint64_t)rfd, f->pos, SEEK_SET);
		if (res < 0)
			pr_warn("fd %d ('%s'): cannot seek to %" PRIu64 ": %s", f->fd, path, f->pos,
				errstr((int)res));
	}
	return rst_place_fd(r, (int)rfd, f);
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
	return rst_place_fd(r, (int)rfd, f);
}

static bool is_pipe(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* What --inherit-fd calls the object of @f: "pipe:[INO]", or its path. */
static const char *fd_key(const struct ckpt_state_fd *f, char *buf, size_t len)
{
	if (f->kind == CKPT_STATE_FD_PIPE)
		snprintf(buf, len, "pipe:[%" PRIu64 "]", f->id.ino);
	else
		snprintf(buf, len, "%s", f->path ? f->path : "?");
	return buf;
}

/* fds 0-2 that were a tty or a pipe with its other end elsewhere: by --stdio. */
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
	case CKPT_STDIO_DEFAULT:
	case CKPT_STDIO_INHERIT:
		if (fcntl(f->fd, F_GETFD) < 0)
			return open_null(r, f); /* ckpt's own is closed */
		/*
		 * ckpt's terminal goes to a process of another user only when
		 * asked (--stdio inherit): it could read what is typed there, or
		 * type into it (TIOCSTI).
		 */
		if (r->o->stdio == CKPT_STDIO_DEFAULT && isatty(f->fd) &&
		    r->s->process.creds.uid[1] != geteuid()) {
			pr_warn("fd %d: ckpt's own is a terminal, and pid %d runs as uid %u: it gets /dev/null "
				"(--stdio inherit gives it the terminal)", f->fd, r->s->process.pid,
				(unsigned int)r->s->process.creds.uid[1]);
			return open_null(r, f);
		}
		if (r->o->detach && f->fd > 0 && is_pipe(f->fd)) {
			char key[PATH_MAX];

			pr_warn("fd %d: ckpt's own %s is a pipe and the restore is detached: the process "
				"gets /dev/null (--inherit-fd fd[%d]:%s hands it in)", f->fd,
				f->fd == 1 ? "stdout" : "stderr", f->fd, fd_key(f, key, sizeof(key)));
			return open_null(r, f);
		}
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

/* A pipe: made again when both ends are ours (the first end met makes both). */
static int pipe_fd(struct rst *r, const struct ckpt_state_fd *f, bool *done)
{
	const struct ckpt_state_fd *peer = ckpt_state_pipe_peer(r->s, f);
	const struct ckpt_state_fd *rd, *wr;
	int fds[2];
	int64_t res;
	uint64_t at;
	int e;

	if (!peer) {
		char key[64];

		pr_warn("fd %d was %s (%s end), whose other end was not in the process: it is /dev/null "
			"now (--inherit-fd fd[N]:%s hands one in)", f->fd, fd_key(f, key, sizeof(key)),
			(f->flags & O_ACCMODE) == O_RDONLY ? "read" : "write", key);
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
	if ((e = rst_place_fd(r, fds[0], rd)) < 0 || (e = rst_place_fd(r, fds[1], wr)) < 0)
		return e;
	for (int k = 0; k < 2; k++) {
		const struct ckpt_state_fd *x = k ? wr : rd;

		if (x->flags & O_NONBLOCK)
			RCALL(r, SYS_fcntl, (uint64_t)x->fd, F_SETFL, O_NONBLOCK);
	}
	done[peer - r->s->fds] = true;
	return 0;
}

/*
 * The seals @f had, on the memfd @rfd that restore of the mappings made:
 * added if it was made sealable; a difference left is said, not hidden.
 */
static void memfd_seals(struct rst *r, int64_t rfd, const struct ckpt_state_fd *f)
{
	int64_t cur = RCALL(r, SYS_fcntl, (uint64_t)rfd, F_GET_SEALS, 0);

	if (!f->has_seals || cur < 0 || cur == f->seals)
		return;
	if (!(cur & F_SEAL_SEAL) && (f->seals & ~(uint32_t)cur))
		RCALL(r, SYS_fcntl, (uint64_t)rfd, F_ADD_SEALS, f->seals & ~(uint32_t)cur);
	cur = RCALL(r, SYS_fcntl, (uint64_t)rfd, F_GET_SEALS, 0);
	if (cur != f->seals)
		pr_warn("fd %d ('%s'): the memfd, shared with a mapping, has seals %#llx, not %#x as at "
			"the checkpoint", f->fd, f->path, (unsigned long long)cur, f->seals);
}

/*
 * A memfd that a shared mapping holds (the restore of the mappings made
 * it): opened again through the child's /proc/self/fd, so that each fd has
 * its own access mode and position, as separate opens had; its seals.
 */
static int memfd_fd(struct rst *r, const struct ckpt_state_fd *f)
{
	int64_t rfd = -1;

	for (size_t i = 0; i < r->nr_shm && rfd < 0; i++)
		if (ckpt_state_same_object(&r->shm[i].id, &f->id)) {
			char path[64];

			snprintf(path, sizeof(path), "/proc/self/fd/%d", r->shm[i].rfd);
			rfd = ropen(r, path, (int)(f->flags & REOPEN_FLAGS));
			if (rfd < 0)
				rfd = RCALL(r, SYS_fcntl, (uint64_t)r->shm[i].rfd, F_DUPFD_CLOEXEC, 0);
		}
	if (rfd < 0) {
		/* Not mapped: empty (rst_files_prepare made those with contents). */
		rst_reset(r);
		rfd = RCALL(r, SYS_memfd_create, rst_put_str(r, "ckpt-memfd"), MFD_CLOEXEC);
	}
	if (rfd < 0)
		return (int)rfd;
	memfd_seals(r, rfd, f);
	if (f->pos)
		RCALL(r, SYS_lseek, (uint64_t)rfd, f->pos, SEEK_SET);
	return rst_place_fd(r, (int)rfd, f);
}

/* Ours (inherited, or a fifo opened again) into place; the flags the fd had. */
static int local_fd(struct rst *r, const struct ckpt_state_fd *f, int local)
{
	int rfd = -1, e;

	e = ckpt_inject_put_fd(r->inj, local, f->fd, f->cloexec ? O_CLOEXEC : 0, &rfd);
	if (e == 0 && (f->flags & O_NONBLOCK)) {
		int64_t fl = RCALL(r, SYS_fcntl, (uint64_t)f->fd, F_GETFL, 0);

		if (fl >= 0)
			RCALL(r, SYS_fcntl, (uint64_t)f->fd, F_SETFL, (uint64_t)fl | O_NONBLOCK);
	}
	return e;
}

static int one_fd(struct rst *r, const struct ckpt_state_fd *f, bool *done)
{
	bool stdio = f->fd <= 2;
	int local = r->local_fds ? r->local_fds[f - r->s->fds] : -1;

	if (local >= 0)
		return local_fd(r, f, local);
	switch (f->kind) {
	case CKPT_STATE_FD_REGULAR:
	case CKPT_STATE_FD_DIRECTORY: {
		const char *rest = ckpt_state_proc_own_rest(f->path, r->s->process.pid);

		if (rest)
			return open_proc(r, f, rest);
		if (f->deleted) {
			/* rst_files_prepare made every ghost file, or failed */
			pr_err("fd %d: the deleted file '%s' was not made again", f->fd, f->path);
			return -EBADF;
		}
		return open_path(r, f);
	}
	case CKPT_STATE_FD_CHR:
		return open_path(r, f);
	case CKPT_STATE_FD_TTY:
		if (stdio)
			return stdio_fd(r, f);
		if (f->path && access(f->path, F_OK) == 0) {
			int64_t rfd = ropen(r, f->path, (int)(f->flags & REOPEN_FLAGS) | O_NONBLOCK | O_NOCTTY);

			if (rfd >= 0) {
				if (!(f->flags & O_NONBLOCK))
					RCALL(r, SYS_fcntl, (uint64_t)rfd, F_SETFL,
					      (uint64_t)(f->flags & (O_APPEND | O_NONBLOCK)));
				return rst_place_fd(r, (int)rfd, f);
			}
		}
		pr_warn("fd %d ('%s') cannot be opened again: it is /dev/null now", f->fd,
			f->path ? f->path : "?");
		return open_null(r, f);
	case CKPT_STATE_FD_FIFO:
		/* rst_files_prepare opened every fifo, or failed */
		pr_err("fd %d: the fifo '%s' was not opened", f->fd, f->path ? f->path : "?");
		return -EBADF;
	case CKPT_STATE_FD_PIPE:
		if (stdio && !ckpt_state_pipe_peer(r->s, f))
			return stdio_fd(r, f);
		return pipe_fd(r, f, done);
	case CKPT_STATE_FD_MEMFD:
		return memfd_fd(r, f);
	default:
		if (rst_fdkind_known(f->kind))
			return rst_fdkind_fd(r, f); /* fdkinds.c */
		pr_err("fd %d (%s) cannot be restored", f->fd, ckpt_state_fd_kind_name(f->kind));
		return -ENOTSUP;
	}
}

/* ---- before the process exists ---- */

/* A termination signal is waiting (ckpt restore blocks them until the process runs). */
static bool interrupted(void)
{
	sigset_t set;

	return sigpending(&set) == 0 && (sigismember(&set, SIGINT) == 1 || sigismember(&set, SIGTERM) == 1 ||
					 sigismember(&set, SIGHUP) == 1 || sigismember(&set, SIGQUIT) == 1);
}

struct fifo_open {
	const char *path;
	int flags;
	int fd;                 /* the result, or -errno */
	atomic_bool done;
};

static void *fifo_open_thread(void *arg)
{
	struct fifo_open *fo = arg;
	int fd = open(fo->path, fo->flags | O_CLOEXEC | O_NOCTTY);

	fo->fd = fd < 0 ? neg_errno() : fd;
	atomic_store(&fo->done, true);
	return NULL;
}

/*
 * Open the fifo of @f by path with its access mode. Read-only or
 * write-only, open(2) waits for the other side (a writer, a reader): so
 * does this, in a thread, so that SIGINT or SIGTERM of ckpt ends the wait
 * (an open of the other side, non-blocking, releases the thread). The
 * status flags the fd had are set back; the fd is ours.
 */
static int open_fifo(const struct ckpt_state_fd *f, int *ret)
{
	char self[64];
	struct fifo_open fo = { .path = self, .flags = (int)(f->flags & O_ACCMODE), .fd = -1 };
	const struct timespec tick = { 0, 20 * 1000 * 1000 };
	_cleanup_close_ int pfd = -1;
	struct stat st;
	pthread_t t;
	int waited = 0, e;

	/*
	 * The fifo itself, never what a symlink put in its place meanwhile
	 * points to: found once (O_PATH, O_NOFOLLOW), checked, and opened
	 * again through that fd, by what it is.
	 */
	if (f->path)
		pfd = open(f->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0 || fstat(pfd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		pr_err("fd %d was the fifo '%s', which is gone: create it again (mkfifo) or hand in "
		       "another fd with --inherit-fd fd[N]:%s", f->fd, f->path ? f->path : "?",
		       f->path ? f->path : "?");
		return -ENOENT;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	if (fo.flags == O_RDWR) {
		fo.fd = open(self, O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (fo.fd < 0)
			fo.fd = neg_errno();
	} else {
		sigset_t all, old;

		/* The thread must not take signals meant for ckpt. */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		e = -pthread_create(&t, NULL, fifo_open_thread, &fo);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (e < 0)
			return e;
		while (!atomic_load(&fo.done)) {
			if (interrupted()) {
				int other = open(self, (fo.flags == O_RDONLY ? O_WRONLY : O_RDONLY) |
							  O_NONBLOCK | O_CLOEXEC);

				pthread_join(t, NULL);
				if (other >= 0)
					close(other);
				if (fo.fd >= 0)
					close(fo.fd);
				pr_err("interrupted while waiting for a %s on the fifo '%s' (fd %d)",
				       fo.flags == O_RDONLY ? "writer" : "reader", f->path, f->fd);
				return -EINTR;
			}
			if (++waited == 10)
				pr_warn("fd %d is the fifo '%s': waiting for a %s to open it", f->fd, f->path,
					fo.flags == O_RDONLY ? "writer" : "reader");
			nanosleep(&tick, NULL);
		}
		pthread_join(t, NULL);
	}
	if (fo.fd < 0) {
		pr_err("cannot open the fifo '%s' as fd %d: %s", f->path, f->fd, errstr(fo.fd));
		return fo.fd;
	}
	if (fcntl(fo.fd, F_SETFL, f->flags & (O_APPEND | O_NONBLOCK)) < 0) {
		e = neg_errno();
		close(fo.fd);
		return e;
	}
	*ret = fo.fd;
	return 0;
}

/* Can an fd opened @have stand for one that was opened @want (O_ACCMODE)? */
static bool access_fits(int have, int want)
{
	if (want == O_RDWR)
		return have == O_RDWR;
	return have == want || have == O_RDWR;
}

static const char *access_name(int accmode)
{
	return accmode == O_RDONLY ? "read-only" : accmode == O_WRONLY ? "write-only" : "read-write";
}

/* Every fd of the checkpoint that @in names gets a duplicate of ours. */
static int inherit_one(struct rst *r, const struct ckpt_restore_inherit_fd *in)
{
	const struct ckpt_state *s = r->s;
	char key[PATH_MAX];
	int fl = fcntl(in->fd, F_GETFL), n = 0;

	if (fl < 0) {
		pr_err("--inherit-fd fd[%d]:%s: ckpt has no fd %d", in->fd, in->key, in->fd);
		return -EBADF;
	}
	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];
		int want = (int)(f->flags & O_ACCMODE);

		if (f->kind != CKPT_STATE_FD_PIPE && f->kind != CKPT_STATE_FD_FIFO &&
		    f->kind != CKPT_STATE_FD_TTY)
			continue;
		if (strcmp(fd_key(f, key, sizeof(key)), in->key))
			continue;
		if (r->local_fds[i] >= 0) {
			pr_err("--inherit-fd: fd %d of the process (%s) is handed in twice", f->fd, in->key);
			return -EINVAL;
		}
		if (!access_fits(fl & O_ACCMODE, want)) {
			pr_err("--inherit-fd fd[%d]:%s: ckpt's fd %d is %s, fd %d of the process was %s",
			       in->fd, in->key, in->fd, access_name(fl & O_ACCMODE), f->fd,
			       access_name(want));
			return -EINVAL;
		}
		r->local_fds[i] = fcntl(in->fd, F_DUPFD_CLOEXEC, 3);
		if (r->local_fds[i] < 0)
			return neg_errno();
		n++;
	}
	if (!n) {
		pr_err("--inherit-fd fd[%d]:%s: no pipe, fifo or tty of the checkpoint is '%s' "
		       "(ckpt dump names them)", in->fd, in->key, in->key);
		return -ENOENT;
	}
	return 0;
}

/* ---- deleted working and root directories ---- */

#define DELETED_SUFFIX " (deleted)"

bool rst_dir_deleted(const char *path, size_t *ret_len)
{
	size_t len = path ? strlen(path) : 0, sl = strlen(DELETED_SUFFIX);

	if (len <= sl || path[0] != '/' || strcmp(path + len - sl, DELETED_SUFFIX))
		return false;
	if (ret_len)
		*ret_len = len - sl;
	return true;
}

/* The root directory as ckpt sees it: "" for "/" (paths inside are the same). */
static const char *root_prefix(const struct ckpt_state *s)
{
	return s->process.root && strcmp(s->process.root, "/") ? s->process.root : "";
}

/* Before the process exists: where a deleted directory is made, its parent must be. */
static int check_ghost_dirs(struct rst *r)
{
	const struct ckpt_state *s = r->s;
	const char *dirs[] = { s->process.root, s->process.cwd };
	int e = 0;

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		_cleanup_free_ char *parent = NULL;
		size_t len;
		char *slash;

		if (!rst_dir_deleted(dirs[i], &len))
			continue;
		if (i == 1 && rst_dir_deleted(s->process.root, NULL)) {
			pr_err("the working directory '%.*s' was deleted inside the deleted root "
			       "directory: not restorable", (int)len, dirs[i]);
			return -ENOTSUP;
		}
		if (asprintf(&parent, "%s%.*s", i ? root_prefix(s) : "", (int)len, dirs[i]) < 0)
			return -ENOMEM;
		slash = strrchr(parent, '/');
		slash[slash == parent] = '\0';
		if (faccessat(AT_FDCWD, parent, W_OK | X_OK, AT_EACCESS) < 0) {
			e = neg_errno();
			pr_err("the %s directory '%.*s' was deleted: it is made again (empty, then removed) "
			       "in '%s', which cannot be written: %s", i ? "working" : "root", (int)len,
			       dirs[i], parent, errstr(e));
		}
	}
	return e;
}

/*
 * The deleted directory @path of length @len made again, empty, by ckpt, at
 * @prefix + its path, or beside it when the name is taken
 * (NAME.ckpt-XXXXXX); the local path in @ret, to be removed once entered.
 */
static int ghost_dir(const char *prefix, const char *path, size_t len, char **ret)
{
	_cleanup_free_ char *p = NULL;
	int e;

	if (asprintf(&p, "%s%.*s", prefix, (int)len, path) < 0)
		return -ENOMEM;
	if (mkdir(p, 0700) == 0) {
		*ret = TAKE_PTR(p);
		return 0;
	}
	e = neg_errno();
	if (e == -EEXIST) {
		_cleanup_free_ char *t = NULL;

		if (asprintf(&t, "%s.ckpt-XXXXXX", p) < 0)
			return -ENOMEM;
		if (mkdtemp(t)) {
			*ret = TAKE_PTR(t);
			return 0;
		}
		e = neg_errno();
	}
	pr_err("cannot make the deleted directory '%s' again: %s", p, errstr(e));
	return e;
}

/* Enter (chdir, or chroot) directory @path, made again if it was deleted. */
static int enter_dir(struct rst *r, long nr, const char *path, const char *prefix)
{
	_cleanup_free_ char *made = NULL;
	const char *what = nr == SYS_chroot ? "the root" : "the directory";
	size_t len;
	int64_t res;
	int e;

	if (!rst_dir_deleted(path, &len)) {
		rst_reset(r);
		res = RCALL(r, nr, rst_put_str(r, path));
		if (res < 0)
			pr_err("cannot change %s to '%s': %s%s", what, path, errstr((int)res),
			       rst_trust_hint(r, (int)res));
		return res < 0 ? (int)res : 0;
	}
	{
		/* Made by the owner of a confined restore, so that it can enter it. */
		struct thread_ids sc;

		if ((e = rst_owner_enter(r->tree, &sc)) < 0)
			return e;
		e = ghost_dir(prefix, path, len, &made);
		rst_owner_leave(&sc);
		if (e < 0)
			return e;
	}
	if (!r->tree->owner.confined) {
		/* Made by root: the process's own, as the directory it had. */
		_cleanup_close_ int dfd = open(made, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (dfd < 0 || fchown(dfd, r->s->process.creds.uid[3], r->s->process.creds.gid[3]) < 0)
			pr_warn("cannot give '%s' (made again for the deleted %s) to uid %u: %s", made,
				nr == SYS_chroot ? "root" : "working directory",
				(unsigned int)r->s->process.creds.uid[3], errstr(neg_errno()));
	}
	rst_reset(r);
	/* The process sees its own root: the path without ckpt's view of it. */
	res = RCALL(r, nr, rst_put_str(r, made + strlen(prefix)));
	{
		struct thread_ids sc;

		/* An empty directory only; as its maker. */
		if (rst_owner_enter(r->tree, &sc) == 0) {
			if (rmdir(made) < 0)
				pr_warn("cannot remove '%s' (made again for the deleted %s): %s", made,
					nr == SYS_chroot ? "root" : "working directory", errstr(neg_errno()));
			rst_owner_leave(&sc);
		}
	}
	if (res < 0)
		pr_err("cannot change %s to '%s' (made again for '%.*s'): %s", what, made, (int)len,
		       path, errstr((int)res));
	return res < 0 ? (int)res : 0;
}

/* ---- made again: ghost files, memfds ---- */

bool rst_fd_made_again(const struct rst *r, const struct ckpt_state_fd *f)
{
	if (f->kind == CKPT_STATE_FD_MEMFD)
		return true;
	if (f->kind != CKPT_STATE_FD_REGULAR && f->kind != CKPT_STATE_FD_DIRECTORY)
		return false;
	return (f->kind == CKPT_STATE_FD_REGULAR && f->deleted) ||
	       ckpt_state_proc_own_rest(f->path, r->s->process.pid);
}

/* A memfd that no shared mapping of the checkpoint holds: restore makes it here. */
static bool memfd_alone(const struct ckpt_state *s, const struct ckpt_state_fd *f)
{
	return f->kind == CKPT_STATE_FD_MEMFD && !ckpt_state_shm_mapped(s, &f->id);
}

/*
 * The saved contents @name of an object: exactly @size bytes,
 * checksum verified, from the newest checkpoint of the chain (lazy: opened
 * here; remote: from the page server). @what names its user.
 */
int rst_read_blob(struct rst *r, const char *name, uint64_t size, const char *what, void **ret)
{
	/*
	 * Through the checkpoint opened (and judged, trust.c) at the start,
	 * never its path again: what is there now may be another.
	 */
	struct ckpt_chain *c = rst_chain(r);
	struct ckpt_image *img = c ? ckpt_chain_image(c, 0) : NULL;

	(void)what; /* lib/image or lib/net names the file */
	if (img)
		return ckpt_image_read_blob(img, name, size, ret);
	return ckpt_page_source_get_blob(r->src, name, size, ret); /* from a page server */
}

static int read_blob(struct rst *r, const char *blob, const struct ckpt_state_identity *id, const char *what,
		     void **ret)
{
	return rst_read_blob(r, blob, id->size, what, ret);
}

static int write_full(int fd, const void *buf, uint64_t len)
{
	for (uint64_t done = 0; done < len;) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return neg_errno();
		done += (uint64_t)n;
	}
	return 0;
}

/*
 * A deleted file again, from its contents: at its @path when the name is
 * free (O_EXCL|O_NOFOLLOW: never another file), else an O_TMPFILE of its
 * directory; unlinked at once, so nothing stays behind. Ours, read-write.
 * @what names its first user in messages ("fd 5", "the mapping at 0x...").
 */
static int make_ghost(const char *path, const struct ckpt_state_identity *id, const char *what,
		      const void *data, int *ret)
{
	_cleanup_free_ char *dir = strdup(path);
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT },
				     { .tv_sec = id->mtime_sec, .tv_nsec = id->mtime_nsec } };
	char *slash = dir ? strrchr(dir, '/') : NULL;
	_cleanup_close_ int fd = -1;
	int e;

	if (!dir)
		return -ENOMEM;
	if (path[0] != '/' || !slash) {
		pr_err("%s: the deleted file '%s' has no absolute path", what, path);
		return -EINVAL;
	}
	slash[slash == dir] = '\0';
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && unlink(path) < 0) {
		e = neg_errno();
		pr_err("cannot unlink '%s' (made again for %s): %s", path, what, errstr(e));
		return e;
	}
	if (fd < 0)
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = neg_errno();
		pr_err("cannot make the deleted file '%s' (%s) again, at its path or in '%s': %s",
		       path, what, dir, errstr(e));
		return e;
	}
	e = write_full(fd, data, id->size);
	if (e == 0 && ftruncate(fd, (off_t)id->size) < 0)
		e = neg_errno();
	/*
	 * Made by root, it is root's: never setuid or setgid (a user's deleted
	 * setuid file would come back as a setuid root program).
	 */
	if (e == 0 && fchmod(fd, id->mode & 01777) < 0)
		e = neg_errno();
	if (e == 0 && futimens(fd, times) < 0)
		e = neg_errno();
	if (e < 0) {
		pr_err("cannot fill the deleted file '%s' (%s) made again: %s", path, what, errstr(e));
		return e;
	}
	*ret = TAKE_FD(fd);
	return 0;
}

int rst_ghost_fd(const struct rst *r, const struct ckpt_state_identity *id)
{
	for (size_t i = 0; i < r->nr_ghosts; i++)
		if (ckpt_state_same_object(&r->ghosts[i].id, id))
			return r->ghosts[i].fd;
	return -1;
}

/*
 * The deleted file @id made again from @blob, once: every fd and mapping
 * of it gets the same file (a write through a shared mapping is read
 * through the fd, as before). Ours in @ret, owned by r->ghosts.
 */
static int ghost_object(struct rst *r, const char *path, const struct ckpt_state_identity *id,
			const char *blob, const char *what, int *ret)
{
	_cleanup_free_ void *data = NULL;
	int fd = rst_ghost_fd(r, id), e;

	if (fd >= 0) {
		*ret = fd;
		return 0;
	}
	if (!blob) {
		pr_err("%s: the contents of the deleted file '%s' are not saved", what, path);
		return -ENOTSUP;
	}
	if (GROW(r->ghosts, r->cap_ghosts, r->nr_ghosts + 1) < 0)
		return -ENOMEM;
	if ((e = read_blob(r, blob, id, what, &data)) < 0 || (e = make_ghost(path, id, what, data, &fd)) < 0)
		return e;
	r->ghosts[r->nr_ghosts++] = (struct rst_ghost){ .id = *id, .fd = fd };
	*ret = fd;
	return 0;
}

/* "/memfd:NAME" (the path of a memfd): NAME, as memfd_create() takes it (at most 249 bytes). */
static void memfd_name(const struct ckpt_state_fd *f, char *buf, size_t len)
{
	const char *name = f->path && !strncmp(f->path, "/memfd:", 7) ? f->path + 7 : "ckpt-memfd";

	snprintf(buf, len, "%s", name);
}

/*
 * A memfd again: its name, contents (none when it was empty), mode, then
 * its seals. Created without MFD_ALLOW_SEALING when its only seal was
 * F_SEAL_SEAL (what such a memfd has from the start). Ours, read-write.
 */
static int make_memfd(const struct ckpt_state_fd *f, const void *data, int *ret)
{
	bool sealable = !f->has_seals || f->seals != F_SEAL_SEAL;
	char name[250];
	_cleanup_close_ int fd = -1;
	int e;

	memfd_name(f, name, sizeof(name));
	fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | (sealable ? MFD_ALLOW_SEALING : 0));
	if (fd < 0) {
		e = neg_errno();
		pr_err("cannot make memfd '%s' (fd %d) again: %s", name, f->fd, errstr(e));
		return e;
	}
	e = data ? write_full(fd, data, f->id.size) : 0;
	if (e == 0 && ftruncate(fd, (off_t)f->id.size) < 0)
		e = neg_errno();
	if (e == 0 && fchmod(fd, f->id.mode & 07777) < 0)
		e = neg_errno();
	if (e == 0 && sealable && f->has_seals && f->seals && fcntl(fd, F_ADD_SEALS, (int)f->seals) < 0)
		e = neg_errno();
	if (e < 0) {
		pr_err("cannot give memfd '%s' (fd %d) its contents and seals (%#x): %s", name, f->fd,
		       f->seals, errstr(e));
		return e;
	}
	*ret = TAKE_FD(fd);
	return 0;
}

/*
 * Every ghost file (open, mapped, or both) and lone memfd, made once per
 * object (fds of the same object open it again), each fd opened with its
 * own flags and position. Ghost files stay open for rst_mm to map.
 */
static int make_files(struct rst *r)
{
	const struct ckpt_state *s = r->s;
	_cleanup_free_ int *obj = malloc((s->nr_fds + 1) * sizeof(int));
	char what[64];
	int e = 0;

	if (!obj)
		return -ENOMEM;
	for (size_t i = 0; i <= s->nr_fds; i++)
		obj[i] = -1;
	for (size_t i = 0; e == 0 && i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];
		bool ghost = f->kind == CKPT_STATE_FD_REGULAR && f->deleted;
		_cleanup_free_ void *data = NULL;
		int fd, from = -1;

		if (r->local_fds[i] >= 0 || (!ghost && !memfd_alone(s, f)))
			continue;
		snprintf(what, sizeof(what), "fd %d", f->fd);
		if (ghost) {
			if ((e = ghost_object(r, f->path, &f->id, f->blob, what, &from)) < 0)
				break;
		} else {
			for (size_t j = 0; j < i && obj[i] < 0; j++)
				if (obj[j] >= 0 && ckpt_state_same_object(&s->fds[j].id, &f->id))
					obj[i] = fcntl(obj[j], F_DUPFD_CLOEXEC, 3);
			if (obj[i] < 0) {
				if (f->blob && (e = read_blob(r, f->blob, &f->id, what, &data)) < 0)
					break;
				if ((e = make_memfd(f, data, &obj[i])) < 0)
					break;
			}
			from = obj[i];
		}
		fd = ckpt_proc_reopen_self_fd(from, (int)(f->flags & REOPEN_FLAGS & ~O_DIRECTORY));
		if (fd < 0) {
			e = fd;
			pr_err("cannot open '%s' made again as fd %d (flags %#o): %s", f->path, f->fd,
			       f->flags, errstr(e));
			break;
		}
		if (f->pos && lseek(fd, (off_t)f->pos, SEEK_SET) < 0) {
			e = neg_errno();
			pr_err("cannot seek '%s' (fd %d) to %" PRIu64 ": %s", f->path, f->fd, f->pos, errstr(e));
			close(fd);
			break;
		}
		r->local_fds[i] = fd;
	}
	for (size_t i = 0; i < s->nr_fds; i++)
		if (obj[i] >= 0)
			close(obj[i]);
	/* Deleted files mapped and not open (a private one without a blob is anonymous memory). */
	for (size_t i = 0; e == 0 && i < s->mm.nr_vmas; i++) {
		const struct ckpt_state_vma *v = &s->mm.vmas[i];
		int fd;

		if (v->kind != CKPT_STATE_VMA_FILE || !v->deleted || rst_vma_anon_backed(v))
			continue;
		snprintf(what, sizeof(what), "the mapping at %#" PRIx64, v->start);
		e = ghost_object(r, v->path, &v->id, v->blob, what, &fd);
	}
	return e;
}

/*
 * From a page server, blobs cannot be read: a private mapping of a deleted
 * file has every page in the images all the same (the dump saves them in
 * full), so it comes back as anonymous memory, as before ghost mappings.
 */
static void private_ghosts_anonymous(struct rst *r)
{
	if (r->chain || r->dir)
		return;
	for (size_t i = 0; i < r->s->mm.nr_vmas; i++) {
		struct ckpt_state_vma *v = &r->s->mm.vmas[i];

		if (v->kind == CKPT_STATE_VMA_FILE && v->deleted && !v->shared && v->blob) {
			pr_debug("the private mapping at %#" PRIx64 " of the deleted file '%s' is anonymous "
				 "memory: its contents cannot come from a page server", v->start, v->path);
			free(v->blob);
			v->blob = NULL;
		}
	}
}

int rst_files_alloc(struct rst *r)
{
	if (r->local_fds)
		return 0;
	r->local_fds = malloc((r->s->nr_fds + 1) * sizeof(int));
	if (!r->local_fds)
		return -ENOMEM;
	for (size_t i = 0; i <= r->s->nr_fds; i++)
		r->local_fds[i] = -1;
	return 0;
}

int rst_files_prepare(struct rst *r)
{
	const struct ckpt_state *s = r->s;
	char key[64];
	int e, refused = 0;

	private_ghosts_anonymous(r);
	if ((e = rst_files_alloc(r)) < 0)
		return e;
	for (size_t k = 0; k < r->o->nr_inherit_fds; k++)
		if ((e = inherit_one(r, &r->o->inherit_fds[k])) < 0)
			return e;
	/* Every socket, made by ckpt: a port or path taken fails here, before any process. */
	if ((e = rst_sockets_prepare(r)) < 0) /* sockets.c */
		return e;
	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];

		if (r->local_fds[i] >= 0)
			continue;
		if (f->kind == CKPT_STATE_FD_PIPE && f->fd <= 2 && !ckpt_state_pipe_peer(s, f) &&
		    r->o->stdio == CKPT_STDIO_DEFAULT) {
			pr_err("fd %d was %s (%s end), whose other end was not in the process: give "
			       "--inherit-fd fd[N]:%s to hand in ckpt's fd N, or --stdio inherit|null|FILE",
			       f->fd, fd_key(f, key, sizeof(key)),
			       (f->flags & O_ACCMODE) == O_RDONLY ? "read" : "write", key);
			refused++;
		}
	}
	if (refused)
		return -ENOTSUP;
	if ((e = make_files(r)) < 0 || (e = check_ghost_dirs(r)) < 0)
		return e;
	/* Last, as the waits may be long: the fifos, in the order of their fds. */
	for (size_t i = 0; i < s->nr_fds; i++)
		if (s->fds[i].kind == CKPT_STATE_FD_FIFO && r->local_fds[i] < 0 &&
		    (e = open_fifo(&s->fds[i], &r->local_fds[i])) < 0)
			return e;
	return 0;
}

void rst_files_done(struct rst *r)
{
	for (size_t i = 0; r->local_fds && i < r->s->nr_fds; i++)
		if (r->local_fds[i] >= 0)
			close(r->local_fds[i]);
	free(r->local_fds);
	r->local_fds = NULL;
	for (size_t i = 0; i < r->nr_ghosts; i++)
		close(r->ghosts[i].fd);
	free(r->ghosts);
	r->ghosts = NULL;
	r->nr_ghosts = r->cap_ghosts = 0;
}

int rst_files(struct rst *r)
{
	const struct ckpt_state *s = r->s;
	_cleanup_free_ bool *done = calloc(s->nr_fds + 1, sizeof(bool));
	int e;

	if (!done)
		return -ENOMEM;
	for (size_t i = 0; i < s->nr_fds; i++) {
		if (done[i])
			continue;
		e = one_fd(r, &s->fds[i], done);
		if (e < 0) {
			const struct ckpt_state_fd *f = &s->fds[i];

			pr_err("cannot restore fd %d%s%s%s: %s%s", f->fd, f->path ? " ('" : "",
			       f->path ? f->path : "", f->path ? "')" : "", errstr(e), rst_trust_hint(r, e));
			return e;
		}
		done[i] = true;
	}
	if ((e = rst_fdkinds_finish(r)) < 0) /* fdkinds.c: epoll registrations */
		return e;
	for (size_t i = 0; i < r->nr_shm; i++) {
		RCALL(r, SYS_close, (uint64_t)r->shm[i].rfd);
		r->shm[i].rfd = -1;
	}
	r->st->nr_fds += s->nr_fds;

	if (s->process.root && strcmp(s->process.root, "/") &&
	    (e = enter_dir(r, SYS_chroot, s->process.root, "")) < 0)
		return e;
	if (s->process.cwd && (e = enter_dir(r, SYS_chdir, s->process.cwd, root_prefix(s))) < 0)
		return e;
	return 0;
}
