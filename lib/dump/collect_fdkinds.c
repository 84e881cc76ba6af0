/* SPDX-License-Identifier: MIT */
/*
 * The state of signalfd, timerfd, inotify and epoll fds, from their fdinfo
 * (lib/proc). What fdinfo leaves out is asked of the kernel directly:
 * - a periodic timerfd that expired and was not read since shows "ticks: 1"
 *   and no time left (the kernel counts the overruns on the next read):
 *   timerfd_gettime(2) on our duplicate of the fd brings it up to date,
 *   exactly as the process's own read or gettime would, and fdinfo is read
 *   again;
 * - an inotify watch names its inode by a file handle: ckpt opens it
 *   (open_by_handle_at) to prove it still exists and to record where it is;
 * - an epoll registration names the fd number it was made with: kcmp
 *   (KCMP_EPOLL_TFD) proves that this number still holds that very file.
 */
#define LOG_AREA "dump"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "compat/syscalls.h"
#include "dump/collect_fdkinds.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

/* The value after "@key" in @text (a line start or after a space), or NULL. */
static const char *field(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *s = text; s && (s = strstr(s, key)); s += n)
		if (s == text || s[-1] == '\n' || s[-1] == ' ' || s[-1] == '\t')
			return s + n;
	return NULL;
}

static int hex_u64(const char *text, const char *key, uint64_t *ret)
{
	const char *s = text ? field(text, key) : NULL;
	char *end;

	if (!s)
		return -EBADMSG;
	errno = 0;
	*ret = strtoull(s, &end, 16);
	return errno || end == s ? -EBADMSG : 0;
}

/* "sigmask:\t%016llx" */
static int parse_signalfd(const char *extra, struct ckpt_state_fdkind *k)
{
	return hex_u64(extra, "sigmask:", &k->sigmask);
}

/* "(%llu, %ld)" of it_value / it_interval. */
static int parse_ts(const char *text, const char *key, int64_t *sec, int64_t *nsec)
{
	const char *s = text ? field(text, key) : NULL;
	long long a;
	long b;

	if (!s || sscanf(s, " (%lld, %ld)", &a, &b) != 2 || a < 0 || b < 0 || b > 999999999)
		return -EBADMSG;
	*sec = a;
	*nsec = b;
	return 0;
}

/* "clockid: %d", "ticks: %llu", "settime flags: 0%o", "it_value: (s, ns)", "it_interval: (s, ns)" */
static int parse_timerfd(const char *extra, struct ckpt_state_timerfd *t)
{
	const char *s;
	unsigned long long ticks;
	unsigned int fl;

	if (!extra || !(s = field(extra, "clockid:")) || sscanf(s, "%d", &t->clockid) != 1 ||
	    !(s = field(extra, "ticks:")) || sscanf(s, "%llu", &ticks) != 1 ||
	    !(s = field(extra, "settime flags:")) || sscanf(s, "%o", &fl) != 1 || fl > 3)
		return -EBADMSG;
	t->ticks = ticks;
	t->settime_flags = (int)fl;
	return parse_ts(extra, "it_value:", &t->value_sec, &t->value_nsec) ?:
	       parse_ts(extra, "it_interval:", &t->interval_sec, &t->interval_nsec);
}

static bool timer_stale(const struct ckpt_state_timerfd *t)
{
	return !t->value_sec && !t->value_nsec && (t->interval_sec || t->interval_nsec) && t->ticks;
}

static int collect_timerfd(struct collect *c, const struct ckpt_fd_info *in, struct ckpt_state_fd *f)
{
	struct ckpt_state_timerfd *t = &f->k.timer;
	_cleanup_close_ int local = -1;
	int r = parse_timerfd(in->extra, t);

	for (int tries = 0; r == 0 && timer_stale(t); tries++) {
		struct ckpt_fd_info again = { 0 };
		struct itimerspec its;

		if (tries == 100) {
			pr_err("timerfd %d of pid %d expires faster than ckpt can read it", f->fd,
			       c->pid);
			return -EAGAIN;
		}
		if (local < 0 && (r = ckpt_inject_take_fd(c->inj, f->fd, &local)) < 0) {
			pr_err("cannot take timerfd %d of pid %d: %s", f->fd, c->pid, errstr(r));
			return r;
		}
		if (timerfd_gettime(local, &its) < 0 ||
		    (r = ckpt_proc_read_fd(c->task, f->fd, &again)) < 0) {
			r = r < 0 ? r : neg_errno();
			pr_err("cannot bring timerfd %d of pid %d up to date: %s", f->fd, c->pid,
			       errstr(r));
			return r;
		}
		r = parse_timerfd(again.extra, t);
		ckpt_fd_info_done(&again);
	}
	if (r < 0)
		pr_err("cannot parse the fdinfo of timerfd %d of pid %d", f->fd, c->pid);
	return r;
}

static int cmp_wd(const void *a, const void *b)
{
	const struct ckpt_state_inotify_watch *x = a, *y = b;

	return (x->wd > y->wd) - (x->wd < y->wd);
}

/*
 * "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x
 * fhandle-type:%x f_handle:%02x..." (no handle part when the file system
 * cannot encode one).
 */
static int parse_watch(const char *line, struct ckpt_state_inotify_watch *w)
{
	unsigned int wd, sdev, mask, ign, hb, ht;
	unsigned long long ino;
	const char *h;
	int n = sscanf(line, "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x",
		       &wd, &ino, &sdev, &mask, &ign, &hb, &ht);

	if (n != 5 && n != 7)
		return -EBADMSG;
	w->wd = (int)wd;
	w->ino = ino;
	w->dev_major = sdev >> 20;
	w->dev_minor = sdev & 0xfffff;
	w->mask = mask;
	w->ignored_mask = ign;
	if (n == 5)
		return 0;
	if (hb > CKPT_STATE_FHANDLE_MAX || !(h = strstr(line, "f_handle:")))
		return -EBADMSG;
	h += 9;
	for (unsigned int i = 0; i < hb; i++) {
		unsigned int byte;

		if (sscanf(h + 2 * i, "%2x", &byte) != 1)
			return -EBADMSG;
		w->handle[i] = (unsigned char)byte;
	}
	w->handle_type = (int)ht;
	w->handle_bytes = hb;
	return 0;
}

/* Events waiting in the queue are not saved: say so (FIONREAD on our duplicate). */
static void inotify_queued(struct collect *c, const struct ckpt_state_fd *f)
{
	_cleanup_close_ int local = -1;
	int n = 0;

	if (ckpt_inject_take_fd(c->inj, f->fd, &local) < 0 || ioctl(local, FIONREAD, &n) < 0)
		pr_warn("cannot tell whether events wait in inotify fd %d of pid %d", f->fd, c->pid);
	else if (n > 0)
		pr_warn("inotify fd %d of pid %d: %d bytes of events wait in its queue; they are not "
			"saved", f->fd, c->pid, n);
}

static int collect_inotify(struct collect *c, const struct ckpt_fd_info *in, struct ckpt_state_fd *f)
{
	struct ckpt_state_fdkind *k = &f->k;
	size_t cap = 0;

	for (const char *s = in->extra; s && *s;) {
		const char *eol = strchr(s, '\n');
		struct ckpt_state_inotify_watch *w;

		if (!strncmp(s, "inotify wd:", 11)) {
			if (GROW(k->watches, cap, k->nr_watches + 1) < 0)
				return -ENOMEM;
			w = &k->watches[k->nr_watches];
			memset(w, 0, sizeof(*w));
			if (parse_watch(s, w) < 0) {
				pr_err("cannot parse the fdinfo of inotify %d of pid %d: '%.*s'", f->fd,
				       c->pid, (int)(eol ? eol - s : (long)strlen(s)), s);
				return -EBADMSG;
			}
			k->nr_watches++;
		}
		s = eol ? eol + 1 : NULL;
	}
	if (k->nr_watches)
		qsort(k->watches, k->nr_watches, sizeof(*k->watches), cmp_wd);
	inotify_queued(c, f);
	for (size_t i = 0; i < k->nr_watches; i++) {
		struct ckpt_state_inotify_watch *w = &k->watches[i];
		int fd = -1, r;

		if (!w->handle_bytes)
			continue; /* the judge refuses it */
		r = ckpt_proc_open_by_handle(c->task, w->dev_major, w->dev_minor, w->handle_type,
					     w->handle, w->handle_bytes, O_PATH, &fd, &w->path);
		if (r < 0) {
			pr_warn("inotify %d of pid %d: the inode %" PRIu64 " on %u:%u of watch %d does "
				"not open by its file handle: %s", f->fd, c->pid, w->ino, w->dev_major,
				w->dev_minor, w->wd, errstr(r));
			w->handle_bytes = 0; /* refused: restore could not find it either */
			continue;
		}
		close(fd);
	}
	return 0;
}

/* "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x" */
static int collect_epoll(struct collect *c, const struct ckpt_fd_info *in, struct ckpt_state_fd *f)
{
	struct ckpt_state_fdkind *k = &f->k;
	size_t cap = 0;

	for (const char *s = in->extra; s && *s;) {
		const char *eol = strchr(s, '\n');
		struct ckpt_state_epoll_target *t;
		unsigned long long data, ino;
		long long pos;
		unsigned int ev, sdev;
		int tfd;

		if (!strncmp(s, "tfd:", 4)) {
			if (sscanf(s, "tfd: %d events: %x data: %llx pos:%lli ino:%llx sdev:%x", &tfd, &ev,
				   &data, &pos, &ino, &sdev) != 6 || tfd < 0) {
				pr_err("cannot parse the fdinfo of epoll %d of pid %d: '%.*s'", f->fd,
				       c->pid, (int)(eol ? eol - s : (long)strlen(s)), s);
				return -EBADMSG;
			}
			if (GROW(k->targets, cap, k->nr_targets + 1) < 0)
				return -ENOMEM;
			t = &k->targets[k->nr_targets++];
			*t = (struct ckpt_state_epoll_target){ .tfd = tfd, .events = ev, .data = data,
							       .pos = (uint64_t)pos, .ino = ino, .sdev = sdev };
		}
		s = eol ? eol + 1 : NULL;
	}
	return 0;
}

int collect_fdkind(struct collect *c, const struct ckpt_fd_info *in, struct ckpt_state_fd *f)
{
	int r;

	switch (f->kind) {
	case CKPT_STATE_FD_SIGNALFD:
		r = parse_signalfd(in->extra, &f->k);
		if (r < 0)
			pr_err("cannot parse the fdinfo of signalfd %d of pid %d", f->fd, c->pid);
		break;
	case CKPT_STATE_FD_TIMERFD:
		r = collect_timerfd(c, in, f);
		break;
	case CKPT_STATE_FD_INOTIFY:
		r = collect_inotify(c, in, f);
		break;
	case CKPT_STATE_FD_EPOLL:
		r = collect_epoll(c, in, f);
		break;
	default:
		return 0;
	}
	if (r == 0)
		f->k.known = true;
	return r;
}

static const struct ckpt_state_fd *find_fd(const struct ckpt_state *s, int fd)
{
	for (size_t i = 0; i < s->nr_fds; i++)
		if (s->fds[i].fd == fd)
			return &s->fds[i];
	return NULL;
}

/* Refuse epoll fd @f, saying why (a recorded refusal stays one). */
static int refuse(struct ckpt_state_fd *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(struct ckpt_state_fd *f, const char *fmt, ...)
{
	_cleanup_free_ char *why = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&why, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	free(f->reason);
	if (asprintf(&f->reason, "not restorable: %s", why) < 0) {
		f->reason = NULL;
		return -ENOMEM;
	}
	f->restorable = false;
	return 0;
}

/*
 * Is registration @t (the @toff-th of its fd number in the list) of epoll
 * @f the file the process holds at fd t->tfd? 0 yes, 1 no, -errno: cannot tell.
 */
static int same_target(struct collect *c, const struct ckpt_state_fd *f,
		       const struct ckpt_state_epoll_target *t, unsigned int toff)
{
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)f->fd, .tfd = (uint32_t)t->tfd, .toff = toff };
	int r = sys_kcmp(c->pid, c->pid, KCMP_EPOLL_TFD, (unsigned long)t->tfd, (unsigned long)&slot);

	if (r < 0)
		return neg_errno();
	return r != 0;
}

int collect_fdkinds_finish(struct collect *c)
{
	struct ckpt_state *s = c->s;

	for (size_t i = 0; i < s->nr_fds; i++) {
		struct ckpt_state_fd *f = &s->fds[i];
		const struct ckpt_state_fdkind *k = &f->k;

		if (f->kind != CKPT_STATE_FD_EPOLL || !k->known)
			continue;
		for (size_t j = 0; j < k->nr_targets; j++) {
			const struct ckpt_state_epoll_target *t = &k->targets[j];
			const struct ckpt_state_fd *g = find_fd(s, t->tfd);
			unsigned int toff = 0;
			int r;

			for (size_t m = 0; m < j; m++)
				toff += k->targets[m].tfd == t->tfd;
			if (!g) {
				r = refuse(f, "epoll fd %d watches a file registered as fd %d, which the "
					   "process has closed since (the file lives on elsewhere: dup'ed, "
					   "or held by another process)", f->fd, t->tfd);
			} else {
				r = same_target(c, f, t, toff);
				if (r < 0) {
					pr_err("cannot compare fd %d of pid %d with what its epoll fd %d "
					       "registered as fd %d (kcmp KCMP_EPOLL_TFD): %s", t->tfd,
					       c->pid, f->fd, t->tfd, errstr(r));
					return r;
				}
				r = r ? refuse(f, "epoll fd %d watches a file registered as fd %d, but fd "
					       "%d is another file now (it was closed or replaced since)",
					       f->fd, t->tfd, t->tfd) : 0;
			}
			if (r < 0)
				return r;
			if (!f->restorable) {
				pr_debug("pid %d: %s", c->pid, f->reason);
				break;
			}
		}
	}
	return 0;
}
