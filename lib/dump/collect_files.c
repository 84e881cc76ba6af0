/* SPDX-License-Identifier: MIT */
/* File descriptors: kind, flags, position, identity, kind-specific data, verdict. */
#define LOG_AREA "dump"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "dump/collect-internal.h"
#include "dump/collect_fdkinds.h"
#include "dump/collect_sockets.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

static bool ignored(const struct collect *c, int fd)
{
	for (size_t i = 0; i < c->opts.nr_ignore_fds; i++)
		if (c->opts.ignore_fds[i] == fd)
			return true;
	return false;
}

/* Terminal majors: pty (2, 3), tty/ttyS (4), tty/console/ptmx (5), pts (136-143), usb, hvc. */
static bool is_tty_major(unsigned int major)
{
	return (major >= 2 && major <= 5) || (major >= 136 && major <= 143) || major == 188 ||
	       major == 204 || major == 229;
}

/* "anon_inode:[eventfd]", "anon_inode:inotify" ... */
static enum ckpt_state_fd_kind anon_kind(const char *name)
{
	static const struct {
		const char *name;
		enum ckpt_state_fd_kind kind;
	} names[] = {
		{ "eventfd", CKPT_STATE_FD_EVENTFD },         { "eventpoll", CKPT_STATE_FD_EPOLL },
		{ "signalfd", CKPT_STATE_FD_SIGNALFD },       { "timerfd", CKPT_STATE_FD_TIMERFD },
		{ "inotify", CKPT_STATE_FD_INOTIFY },         { "fanotify", CKPT_STATE_FD_FANOTIFY },
		{ "userfaultfd", CKPT_STATE_FD_USERFAULTFD }, { "pidfd", CKPT_STATE_FD_PIDFD },
	};
	size_t len = strlen(name);

	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++;
		len -= 2;
	}
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strlen(names[i].name) == len && !strncmp(names[i].name, name, len))
			return names[i].kind;
	return CKPT_STATE_FD_ANON_INODE;
}

static enum ckpt_state_fd_kind fd_kind(const char *target, const struct stat *st)
{
	if (!strncmp(target, "pipe:[", 6))
		return CKPT_STATE_FD_PIPE;
	if (!strncmp(target, "socket:[", 8) || S_ISSOCK(st->st_mode))
		return CKPT_STATE_FD_SOCKET;
	if (!strncmp(target, "anon_inode:", 11))
		return anon_kind(target + 11);
	if (S_ISREG(st->st_mode))
		return !strncmp(target, "/memfd:", 7) ? CKPT_STATE_FD_MEMFD : CKPT_STATE_FD_REGULAR;
	if (S_ISDIR(st->st_mode))
		return CKPT_STATE_FD_DIRECTORY;
	if (S_ISCHR(st->st_mode))
		return is_tty_major(major(st->st_rdev)) ? CKPT_STATE_FD_TTY : CKPT_STATE_FD_CHR;
	if (S_ISBLK(st->st_mode))
		return CKPT_STATE_FD_BLK;
	if (S_ISFIFO(st->st_mode))
		return CKPT_STATE_FD_FIFO;
	return CKPT_STATE_FD_UNKNOWN;
}

/* tty_nr of /proc/PID/stat encodes a device as the kernel's new_encode_dev() does. */
static unsigned int encode_dev(unsigned int maj, unsigned int min)
{
	return (min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12);
}

/* "eventfd-count: %16llx" and, on recent kernels, "eventfd-semaphore: %d". */
static int parse_eventfd(const char *extra, struct ckpt_state_fd *f)
{
	const char *s = extra ? strstr(extra, "eventfd-count:") : NULL;
	char *end;

	if (!s)
		return -EBADMSG;
	errno = 0;
	f->eventfd_count = strtoull(s + 14, &end, 16);
	if (errno || end == s + 14)
		return -EBADMSG;
	s = strstr(extra, "eventfd-semaphore:");
	f->eventfd_semaphore = s && strtol(s + 18, NULL, 10) == 1;
	return 0;
}

/*
 * The bytes waiting in a pipe or fifo (FIONREAD on our copy of the fd):
 * restore does not bring them back, so the dump names them. Not knowing
 * is said, never taken for "empty".
 */
static void pipe_queued(struct collect *c, struct ckpt_state_fd *f)
{
	int local = -1, n = 0;

	if (ckpt_inject_take_fd(c->inj, f->fd, &local) < 0 || ioctl(local, FIONREAD, &n) < 0) {
		pr_warn("cannot tell how many bytes wait in pipe:[%" PRIu64 "] (fd %d of pid %d)",
			f->id.ino, f->fd, c->pid);
		n = 0;
	}
	if (local >= 0)
		close(local);
	f->pipe_queued = n > 0 ? (uint64_t)n : 0;
}

/*
 * A userfaultfd in async write-protect mode (UFFD_FEATURE_WP_ASYNC, in its
 * fdinfo "API:\tAPI:FEATURES:IOCTLS"): what ckpt's dirty tracking parks in a
 * process; applications hardly use it. The fd is ckpt's when its record is
 * found (ignore_fds); one found here has a record this ckpt does not see.
 */
static bool uffd_of_ckpt(const char *fdinfo)
{
	const char *api = fdinfo ? strstr(fdinfo, "API:") : NULL;
	unsigned long long a, features;

	return api && sscanf(api, "API: %llx:%llx", &a, &features) == 2 && (features & (1ULL << 15));
}

static int ckpt_uffd(struct ckpt_state_fd *f, pid_t pid)
{
	free(f->reason);
	if (asprintf(&f->reason, "not restorable: ckpt's own dirty tracking (a userfaultfd in async "
		     "write-protect mode, parked by 'ckpt track' or 'dump --leave-running'), whose record is "
		     "in another run directory: another user's, or another CKPT_RUNDIR; dump as that user, "
		     "or end the tracking with 'ckpt track --stop -t %d' as that user", pid) < 0) {
		f->reason = NULL;
		return -ENOMEM;
	}
	f->restorable = false;
	return 0;
}

static int describe_fd(struct collect *c, const struct ckpt_fd_info *in, unsigned int tty_nr,
		       struct ckpt_state_fd *f)
{
	struct stat st;
	int r;

	r = ckpt_proc_stat_fd(c->task, in->fd, &st);
	if (r < 0) {
		if (r != -EBADF)
			pr_err("cannot stat fd %d of pid %d ('%s'): %s", in->fd, c->pid, in->target,
			       errstr(r));
		return r;
	}
	f->fd = in->fd;
	f->cloexec = in->flags & O_CLOEXEC;
	f->flags = in->flags & ~(unsigned int)O_CLOEXEC;
	f->pos = in->pos;
	f->mnt_id = in->mnt_id;
	f->kind = fd_kind(in->target, &st);
	collect_identity(&st, &f->id);
	r = collect_path(in->target, &f->path, &f->deleted);
	if (r < 0)
		return r;
	if (in->extra && in->extra[0] && !(f->fdinfo = strdup(in->extra)))
		return -ENOMEM;
	if (f->kind == CKPT_STATE_FD_TTY)
		f->ctty = (tty_nr && encode_dev(f->id.rdev_major, f->id.rdev_minor) == tty_nr) ||
			  (f->id.rdev_major == 5 && f->id.rdev_minor == 0); /* /dev/tty */
	if (f->kind == CKPT_STATE_FD_PIPE || f->kind == CKPT_STATE_FD_FIFO)
		pipe_queued(c, f);
	if (f->kind == CKPT_STATE_FD_EVENTFD && parse_eventfd(in->extra, f) < 0) {
		pr_err("cannot parse the fdinfo of eventfd %d of pid %d", in->fd, c->pid);
		return -EBADMSG;
	}
	if ((r = collect_fdkind(c, in, f)) < 0) /* collect_fdkinds.c */
		return r;
	if ((r = ckpt_state_fd_judge_for(f, c->pid)) < 0)
		return r;
	return f->kind == CKPT_STATE_FD_USERFAULTFD && uffd_of_ckpt(in->extra) ? ckpt_uffd(f, c->pid) : 0;
}

int collect_files(struct collect *c)
{
	_cleanup_fd_list_ struct ckpt_fd_list *l = NULL;
	struct ckpt_state *s = c->s;
	struct ckpt_proc_stat st;
	int r;

	r = ckpt_proc_read_stat(c->proc, &st);
	if (r == 0)
		r = ckpt_proc_read_fds(c->task, &l);
	if (r < 0) {
		pr_err("cannot read the file descriptors of pid %d: %s", c->pid, errstr(r));
		return r;
	}
	s->fds = l->nr ? calloc(l->nr, sizeof(*s->fds)) : NULL;
	if (l->nr && !s->fds)
		return -ENOMEM;
	for (size_t i = 0; i < l->nr; i++) {
		struct ckpt_state_fd *f = &s->fds[s->nr_fds];

		if (ignored(c, l->v[i].fd)) {
			pr_debug("pid %d: fd %d is ckpt's own, not recorded", c->pid, l->v[i].fd);
			continue;
		}
		r = describe_fd(c, &l->v[i], (unsigned int)st.tty_nr, f);
		s->nr_fds++; /* owned by the state from now on, even half filled */
		if (r == -EBADF) {
			/* closed meanwhile (by a process sharing the table): gone */
			free(f->path);
			free(f->fdinfo);
			free(f->reason);
			memset(f, 0, sizeof(*f));
			s->nr_fds--;
			continue;
		}
		if (r < 0)
			return r;
	}
	if ((r = collect_sockets(c)) < 0) /* collect_sockets.c */
		return r;
	return collect_fdkinds_finish(c); /* collect_fdkinds.c: epoll targets */
}

/* ---- contents: ghost files, memfds ---- */

/* An earlier fd of the same object whose contents are saved: one blob for both. */
static const struct ckpt_state_fd *blob_owner(const struct ckpt_state *s, const struct ckpt_state_fd *f)
{
	for (const struct ckpt_state_fd *g = s->fds; g < f; g++)
		if (g->blob && g->kind == f->kind && ckpt_state_same_object(&g->id, &f->id))
			return g;
	return NULL;
}

/* Exactly @size bytes of @rd from offset 0, for @what ("fd 5 of pid 42 ('/x')"). */
static int read_whole(int rd, uint64_t size, const char *what, void **ret)
{
	_cleanup_free_ char *buf = NULL;
	uint64_t done = 0;

	if (size > SIZE_MAX - 1 || !(buf = malloc(size ? size : 1)))
		return -ENOMEM;
	while (done < size) {
		ssize_t n = pread(rd, buf + done, size - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? neg_errno() : -EAGAIN;

			pr_err("cannot read the %" PRIu64 " bytes of %s: %s", size, what,
			       n < 0 ? errstr(e) : "it shrank meanwhile");
			return e;
		}
		done += (uint64_t)n;
	}
	*ret = TAKE_PTR(buf);
	return 0;
}

/*
 * The whole file behind our @local copy of fd @f: exactly id.size bytes,
 * read through a new read-only open (the fd may be write-only), without
 * moving the process's position.
 */
static int read_contents(struct collect *c, const struct ckpt_state_fd *f, int local, void **ret)
{
	_cleanup_close_ int rd = ckpt_proc_reopen_self_fd(local, O_RDONLY);
	char what[PATH_MAX + 64];

	if (rd < 0) {
		pr_err("cannot read fd %d of pid %d ('%s'): %s", f->fd, c->pid, f->path, errstr(rd));
		return rd;
	}
	snprintf(what, sizeof(what), "fd %d of pid %d ('%s')", f->fd, c->pid, f->path);
	return read_whole(rd, f->id.size, what, ret);
}

static int save_contents(struct collect *c, struct ckpt_state_fd *f, int local)
{
	const struct ckpt_state_fd *owner = blob_owner(c->s, f);
	int r;

	if (owner) {
		f->blob = strdup(owner->blob);
		return f->blob ? 0 : -ENOMEM;
	}
	if (asprintf(&f->blob, "blob-fd-%d", f->fd) < 0) {
		f->blob = NULL;
		return -ENOMEM;
	}
	r = read_contents(c, f, local, &f->blob_data);
	if (r < 0) {
		free(f->blob);
		f->blob = NULL;
	}
	return r;
}

static int ghost_contents(struct collect *c, struct ckpt_state_fd *f, uint64_t limit)
{
	_cleanup_close_ int local = -1;
	char *reason = NULL;
	int r;

	if (f->id.size > limit) {
		if (asprintf(&reason, "not restorable: a deleted file of %" PRIu64 " bytes, over the "
			     "ghost limit of %" PRIu64 " bytes (--ghost-limit)", f->id.size, limit) < 0)
			return -ENOMEM;
		free(f->reason);
		f->reason = reason;
		f->restorable = false;
		return 0;
	}
	r = ckpt_inject_take_fd(c->inj, f->fd, &local);
	if (r < 0) {
		pr_err("cannot take fd %d of pid %d ('%s'): %s", f->fd, c->pid, f->path, errstr(r));
		return r;
	}
	r = save_contents(c, f, local);
	return r < 0 ? r : ckpt_state_fd_judge_for(f, c->pid);
}

static int memfd_contents(struct collect *c, struct ckpt_state_fd *f)
{
	_cleanup_close_ int local = -1;
	int r, seals;

	r = ckpt_inject_take_fd(c->inj, f->fd, &local);
	if (r < 0) {
		pr_err("cannot take fd %d of pid %d ('%s'): %s", f->fd, c->pid, f->path, errstr(r));
		return r;
	}
	seals = fcntl(local, F_GET_SEALS);
	if (seals >= 0) {
		f->has_seals = true;
		f->seals = (uint32_t)seals;
	} else if (errno != EINVAL) {
		r = neg_errno();
		pr_err("cannot read the seals of memfd %d of pid %d: %s", f->fd, c->pid, errstr(r));
		return r;
	}
	if (!f->id.size || ckpt_state_shm_mapped(c->s, &f->id))
		return 0;
	return save_contents(c, f, local);
}

/* The blob of an fd, or of an earlier mapping, of the same deleted file as @v. */
static const char *ghost_blob_of(const struct ckpt_state *s, const struct ckpt_state_vma *v)
{
	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];

		if (f->blob && f->kind == CKPT_STATE_FD_REGULAR && f->deleted &&
		    ckpt_state_same_object(&f->id, &v->id))
			return f->blob;
	}
	for (const struct ckpt_state_vma *w = s->mm.vmas; w < v; w++)
		if (w->blob && ckpt_state_same_object(&w->id, &v->id))
			return w->blob;
	return NULL;
}

/*
 * The object behind the kernel's mapping that holds [@v->start, @v->end)
 * (a mapping cut around ckpt's scratch pages is a piece of it), opened
 * read-only through map_files.
 */
static int open_mapped(struct collect *c, const struct ckpt_state_vma *v)
{
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	int r = ckpt_proc_open_map_file(c->mm_proc, v->start, v->end, O_RDONLY);

	if (r != -ENOENT || ckpt_proc_read_maps(c->mm_proc, 0, &maps) < 0)
		return r;
	for (size_t i = 0; i < maps->nr; i++)
		if (maps->v[i].start <= v->start && v->end <= maps->v[i].end)
			return ckpt_proc_open_map_file(c->mm_proc, maps->v[i].start, maps->v[i].end, O_RDONLY);
	return r;
}

/*
 * A mapping of a deleted file: its contents saved once per file (dev +
 * ino), in the blob of an fd of it if it has one. Shared: the blob is what
 * the mapping shows (its dirty pages are the page cache the read goes
 * through), and its pages are not saved. Private over the limit: saved in
 * full as anonymous memory, as before ghost mappings; shared over the
 * limit: refused, with the file's size and the limit.
 */
static int ghost_mapping(struct collect *c, struct ckpt_state_vma *v, uint64_t limit)
{
	const char *blob = ghost_blob_of(c->s, v);
	_cleanup_close_ int rd = -1;
	char what[PATH_MAX + 96];
	int r;

	/*
	 * A private one past the end of the file (truncated since it was
	 * mapped): its pages there are copies the file cannot give a mapping
	 * of it again (SIGBUS). Anonymous memory with every page, as before.
	 */
	if (!v->shared && v->offset + (v->end - v->start) > ALIGN_UP(v->id.size, 4096ULL)) {
		pr_debug("pid %d: the mapping at %#" PRIx64 " goes past the end of the deleted file '%s': "
			 "saved as anonymous memory", c->pid, v->start, v->path);
		return 0;
	}
	if (blob) {
		v->blob = strdup(blob);
		return v->blob ? 0 : -ENOMEM;
	}
	if (v->id.size > limit) {
		if (!v->shared) {
			pr_debug("pid %d: the deleted file '%s' mapped at %#" PRIx64 " has %" PRIu64 " bytes, over "
				 "the ghost limit: its private mapping is saved as anonymous memory",
				 c->pid, v->path, v->start, v->id.size);
			return 0;
		}
		free(v->reason);
		if (asprintf(&v->reason, "not restorable: a shared mapping of a deleted file of %" PRIu64
			     " bytes, over the ghost limit of %" PRIu64 " bytes (--ghost-limit)",
			     v->id.size, limit) < 0) {
			v->reason = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	rd = open_mapped(c, v);
	if (rd < 0) {
		pr_err("cannot open the deleted file '%s' mapped at %#" PRIx64 " in pid %d: %s", v->path,
		       v->start, c->pid, errstr(rd));
		return rd;
	}
	snprintf(what, sizeof(what), "the deleted file '%s' mapped at %#" PRIx64 " in pid %d", v->path,
		 v->start, c->pid);
	if ((r = read_whole(rd, v->id.size, what, &v->blob_data)) < 0)
		return r;
	if (asprintf(&v->blob, "blob-map-%" PRIx64, v->start) < 0) {
		v->blob = NULL;
		return -ENOMEM;
	}
	return 0;
}

int collect_file_contents(struct collect *c)
{
	uint64_t limit = c->opts.ghost_limit ? c->opts.ghost_limit : CKPT_DUMP_GHOST_LIMIT_DEFAULT;
	struct ckpt_state *s = c->s;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < s->nr_fds; i++) {
		struct ckpt_state_fd *f = &s->fds[i];

		if (f->kind == CKPT_STATE_FD_REGULAR && f->deleted)
			r = ghost_contents(c, f, limit);
		else if (f->kind == CKPT_STATE_FD_MEMFD)
			r = memfd_contents(c, f);
	}
	/* After the fds: a file both open and mapped has the blob of its first fd. */
	for (size_t i = 0; r >= 0 && i < s->mm.nr_vmas; i++) {
		struct ckpt_state_vma *v = &s->mm.vmas[i];

		if (v->kind == CKPT_STATE_VMA_FILE && v->deleted && v->has_identity)
			r = ghost_mapping(c, v, limit);
	}
	return r;
}
