/* SPDX-License-Identifier: MIT */
/*
 * eventfd, signalfd, timerfd, inotify and epoll fds, made again by remote
 * calls in the child and put at their numbers (files.c's rst_place_fd()), with
 * O_NONBLOCK and close-on-exec as they were:
 * - eventfd: eventfd2, and its count written (eventfd2 takes 32 bits only);
 * - signalfd: signalfd4 with its mask (the signals themselves are the
 *   process's pending ones: task.c queues them again);
 * - timerfd: timerfd_create on its clock and timerfd_settime with the time
 *   that was left at the dump (the time between dump and restore does not
 *   count, as for the process's itimers; TFD_TIMER_ABSTIME ones are set to
 *   "now" of the child's clock plus that time, flags kept); expirations not
 *   yet read come back with TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE),
 *   so read(2) returns the same count;
 * - inotify: inotify_init1, then each watch in wd order, its inode opened by
 *   ckpt from its file handle (open_by_handle_at, on a mount of its file
 *   system as the child sees it), handed in and watched through
 *   /proc/self/fd/N: the watch is on the very inode, wherever it was moved
 *   to, and an inode that is gone is refused by name. wds are allocated in
 *   increasing order, so a gap is filled by a watch on another inode that
 *   is removed at once, and the IN_IGNORED events that leaves are read off
 *   (events that waited in the old queue are not saved);
 * - epoll: epoll_create1 here, its registrations (epoll_ctl ADD with their
 *   events and data) once every fd of the process exists.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "restore/fdkinds.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

#define MAX_WD_GAPS 65536

bool rst_fdkind_known(enum ckpt_state_fd_kind kind)
{
	return kind == CKPT_STATE_FD_EVENTFD || kind == CKPT_STATE_FD_SIGNALFD ||
	       kind == CKPT_STATE_FD_TIMERFD || kind == CKPT_STATE_FD_INOTIFY ||
	       kind == CKPT_STATE_FD_EPOLL;
}

/* O_NONBLOCK as it was, plus close-on-exec until placed. */
static uint64_t new_flags(const struct ckpt_state_fd *f)
{
	return O_CLOEXEC | (f->flags & O_NONBLOCK);
}

static int64_t make_eventfd(struct rst *r, const struct ckpt_state_fd *f)
{
	int64_t rfd = RCALL(r, SYS_eventfd2, 0, new_flags(f) | (f->eventfd_semaphore ? 1 /* EFD_SEMAPHORE */ : 0));
	int64_t res;
	uint64_t at;

	if (rfd < 0 || !f->eventfd_count)
		return rfd;
	rst_reset(r);
	at = rst_put(r, &f->eventfd_count, sizeof(f->eventfd_count));
	res = at ? RCALL(r, SYS_write, (uint64_t)rfd, at, sizeof(uint64_t)) : -ENOMEM;
	if (res != sizeof(uint64_t)) {
		pr_err("cannot give eventfd %d its count %" PRIu64 ": %s", f->fd, f->eventfd_count,
		       errstr(res < 0 ? (int)res : -EIO));
		RCALL(r, SYS_close, (uint64_t)rfd);
		return res < 0 ? res : -EIO;
	}
	return rfd;
}

static int64_t make_signalfd(struct rst *r, const struct ckpt_state_fd *f)
{
	uint64_t at;

	rst_reset(r);
	at = rst_put(r, &f->k.sigmask, sizeof(f->k.sigmask));
	if (!at)
		return -ENOMEM;
	return RCALL(r, SYS_signalfd4, (uint64_t)-1, at, sizeof(uint64_t), new_flags(f));
}

static int64_t make_timerfd(struct rst *r, const struct ckpt_state_fd *f)
{
	const struct ckpt_state_timerfd *t = &f->k.timer;
	struct itimerspec its = {
		.it_interval = { (time_t)t->interval_sec, (long)t->interval_nsec },
		.it_value = { (time_t)t->value_sec, (long)t->value_nsec },
	};
	bool armed = t->value_sec || t->value_nsec;
	int64_t rfd, res = 0;
	uint64_t at;

	rfd = RCALL(r, SYS_timerfd_create, (uint64_t)t->clockid, new_flags(f));
	if (rfd < 0) {
		pr_err("cannot make timerfd %d on clock %d: %s", f->fd, t->clockid, errstr((int)rfd));
		return rfd;
	}
	rst_reset(r);
	if (armed && (t->settime_flags & TFD_TIMER_ABSTIME)) {
		/* The child's own clock: the process may live in a time namespace. */
		struct timespec now;

		at = rst_put(r, &now, sizeof(now));
		res = at ? RCALL(r, SYS_clock_gettime, (uint64_t)t->clockid, at) : -ENOMEM;
		if (res == 0)
			res = ckpt_inject_read(r->inj, at, &now, sizeof(now));
		if (res == 0) {
			its.it_value.tv_sec += now.tv_sec;
			its.it_value.tv_nsec += now.tv_nsec;
			if (its.it_value.tv_nsec >= 1000000000L) {
				its.it_value.tv_sec++;
				its.it_value.tv_nsec -= 1000000000L;
			}
		}
	}
	if (res == 0 && armed) {
		at = rst_put(r, &its, sizeof(its));
		res = at ? RCALL(r, SYS_timerfd_settime, (uint64_t)rfd, (uint64_t)t->settime_flags, at, 0)
			 : -ENOMEM;
	}
	if (res < 0) {
		pr_err("cannot set timerfd %d (clock %d, %" PRId64 ".%09" PRId64 " s left, every %" PRId64
		       ".%09" PRId64 " s): %s", f->fd, t->clockid, t->value_sec, t->value_nsec,
		       t->interval_sec, t->interval_nsec, errstr((int)res));
		RCALL(r, SYS_close, (uint64_t)rfd);
		return res;
	}
	if (t->ticks) {
		at = rst_put(r, &t->ticks, sizeof(t->ticks));
		res = at ? RCALL(r, SYS_ioctl, (uint64_t)rfd, TFD_IOC_SET_TICKS, at) : -ENOMEM;
		if (res < 0) {
			if (res == -ENOTTY)
				pr_err("timerfd %d had %" PRIu64 " expirations unread, and this kernel "
				       "cannot give them back (TFD_IOC_SET_TICKS needs "
				       "CONFIG_CHECKPOINT_RESTORE)", f->fd, t->ticks);
			else
				pr_err("cannot give timerfd %d its %" PRIu64 " unread expirations: %s",
				       f->fd, t->ticks, errstr((int)res));
			RCALL(r, SYS_close, (uint64_t)rfd);
			return res;
		}
	}
	return rfd;
}

/* ---- inotify ---- */

/* An inode none of @f's watches is on, to hold a wd number for a moment. */
static const char *filler_path(const struct ckpt_state_fd *f)
{
	static const char *const paths[] = { "/", "/dev", "/dev/null", "/proc", "/sys", "/etc", "/tmp" };

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		struct stat st;
		bool used = false;

		if (stat(paths[i], &st) < 0)
			continue;
		for (size_t j = 0; j < f->k.nr_watches && !used; j++) {
			const struct ckpt_state_inotify_watch *w = &f->k.watches[j];

			used = w->ino == st.st_ino && w->dev_major == major(st.st_dev) &&
			       w->dev_minor == minor(st.st_dev);
		}
		if (!used)
			return paths[i];
	}
	return NULL;
}

static int add_watch(struct rst *r, const struct ckpt_state_fd *f, int64_t ifd,
		     const struct ckpt_state_inotify_watch *w)
{
	const struct ckpt_proc *p = ckpt_inject_task_proc(r->inj);
	int local = -1, rfd = -1, e;
	char path[64];
	struct stat st;
	int64_t wd;

	e = ckpt_proc_open_by_handle(p, w->dev_major, w->dev_minor, w->handle_type, w->handle,
				     w->handle_bytes, O_PATH, &local, NULL);
	if (e == 0 && (fstat(local, &st) < 0 || st.st_ino != w->ino))
		e = -ESTALE;
	if (e < 0) {
		pr_err("inotify fd %d: the inode %" PRIu64 " on %u:%u ('%s') of watch %d %s: %s", f->fd,
		       w->ino, w->dev_major, w->dev_minor, w->path ? w->path : "?", w->wd,
		       e == -ESTALE || e == -ENOENT ? "is gone" : "cannot be opened", errstr(e));
		if (local >= 0)
			close(local);
		return e;
	}
	e = ckpt_inject_put_fd(r->inj, local, -1, O_CLOEXEC, &rfd);
	close(local);
	if (e < 0)
		return e;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rfd);
	rst_reset(r);
	wd = RCALL(r, SYS_inotify_add_watch, (uint64_t)ifd, rst_put_str(r, path), w->mask);
	RCALL(r, SYS_close, (uint64_t)rfd);
	if (wd < 0) {
		pr_err("inotify fd %d: cannot watch '%s' (wd %d, mask %#x): %s", f->fd,
		       w->path ? w->path : "?", w->wd, w->mask, errstr((int)wd));
		return (int)wd;
	}
	if (wd != w->wd) {
		pr_err("inotify fd %d: the watch of '%s' came back as wd %" PRId64 ", not %d", f->fd,
		       w->path ? w->path : "?", wd, w->wd);
		return -EBADE;
	}
	return 0;
}

/* Hold wd number @wd with a watch removed at once: the next comes after it. */
static int fill_gap(struct rst *r, const struct ckpt_state_fd *f, int64_t ifd, int wd,
		    const char *filler)
{
	int64_t got;

	rst_reset(r);
	got = RCALL(r, SYS_inotify_add_watch, (uint64_t)ifd, rst_put_str(r, filler),
		    IN_ATTRIB | IN_DONT_FOLLOW);
	if (got >= 0)
		RCALL(r, SYS_inotify_rm_watch, (uint64_t)ifd, (uint64_t)got);
	if (got != wd) {
		pr_err("inotify fd %d: cannot hold wd %d free (got %" PRId64 ")", f->fd, wd, got);
		return got < 0 ? (int)got : -EBADE;
	}
	return 0;
}

static int64_t make_inotify(struct rst *r, const struct ckpt_state_fd *f)
{
	const char *filler = NULL;
	int64_t ifd = RCALL(r, SYS_inotify_init1, O_CLOEXEC | O_NONBLOCK);
	bool gaps = false;
	int next = 1, e = 0;

	if (ifd < 0)
		return ifd;
	for (size_t i = 0; i < f->k.nr_watches && e == 0; i++) {
		const struct ckpt_state_inotify_watch *w = &f->k.watches[i];

		if (w->wd - next > MAX_WD_GAPS) {
			pr_err("inotify fd %d: watch %d comes after %d free wd numbers", f->fd, w->wd,
			       w->wd - next);
			e = -E2BIG;
			break;
		}
		if (next < w->wd && !filler && !(filler = filler_path(f))) {
			pr_err("inotify fd %d: no inode to hold free wd numbers with", f->fd);
			e = -ENOENT;
			break;
		}
		for (; next < w->wd && e == 0; next++, gaps = true)
			e = fill_gap(r, f, ifd, next, filler);
		if (e == 0)
			e = add_watch(r, f, ifd, w);
		next = w->wd + 1;
	}
	if (e == 0 && gaps) {
		/* Read off the IN_IGNORED events of the fillers. */
		int64_t n;

		rst_reset(r);
		do
			n = RCALL(r, SYS_read, (uint64_t)ifd, r->data, RST_DATA_LEN);
		while (n > 0);
	}
	if (e == 0 && !(f->flags & O_NONBLOCK)) {
		int64_t res = RCALL(r, SYS_fcntl, (uint64_t)ifd, F_SETFL, 0);

		e = res < 0 ? (int)res : 0;
	}
	if (e < 0) {
		RCALL(r, SYS_close, (uint64_t)ifd);
		return e;
	}
	return ifd;
}

int rst_fdkind_fd(struct rst *r, const struct ckpt_state_fd *f)
{
	int64_t rfd;

	if (f->kind != CKPT_STATE_FD_EVENTFD && !f->k.known) {
		pr_err("fd %d (%s): its state is not in the checkpoint", f->fd,
		       ckpt_state_fd_kind_name(f->kind));
		return -ENOTSUP;
	}
	switch (f->kind) {
	case CKPT_STATE_FD_EVENTFD:
		rfd = make_eventfd(r, f);
		break;
	case CKPT_STATE_FD_SIGNALFD:
		rfd = make_signalfd(r, f);
		break;
	case CKPT_STATE_FD_TIMERFD:
		rfd = make_timerfd(r, f);
		break;
	case CKPT_STATE_FD_INOTIFY:
		rfd = make_inotify(r, f);
		break;
	case CKPT_STATE_FD_EPOLL:
		rfd = RCALL(r, SYS_epoll_create1, O_CLOEXEC);
		break;
	default:
		return -ENOTSUP;
	}
	if (rfd < 0)
		return (int)rfd;
	return rst_place_fd(r, (int)rfd, f);
}

static const struct ckpt_state_fd *find_fd(const struct ckpt_state *s, int fd)
{
	for (size_t i = 0; i < s->nr_fds; i++)
		if (s->fds[i].fd == fd)
			return &s->fds[i];
	return NULL;
}

int rst_fdkinds_finish(struct rst *r)
{
	const struct ckpt_state *s = r->s;

	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];

		if (f->kind != CKPT_STATE_FD_EPOLL)
			continue;
		for (size_t j = 0; j < f->k.nr_targets; j++) {
			const struct ckpt_state_epoll_target *t = &f->k.targets[j];
			struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
			int64_t res;
			uint64_t at;

			if (!find_fd(s, t->tfd)) {
				pr_err("epoll fd %d watched fd %d, which is not in the checkpoint",
				       f->fd, t->tfd);
				return -EBADF;
			}
			rst_reset(r);
			at = rst_put(r, &ev, sizeof(ev));
			res = at ? RCALL(r, SYS_epoll_ctl, (uint64_t)f->fd, EPOLL_CTL_ADD,
					 (uint64_t)t->tfd, at) : -ENOMEM;
			if (res < 0) {
				pr_err("epoll fd %d: cannot register fd %d (events %#x, data %#" PRIx64
				       "): %s", f->fd, t->tfd, t->events, t->data, errstr((int)res));
				return (int)res;
			}
		}
	}
	return 0;
}
