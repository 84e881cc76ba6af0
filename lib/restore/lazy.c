/* SPDX-License-Identifier: MIT */
/*
 * The lazy part of restore: a userfaultfd made inside the new process
 * (able to handle faults taken in the kernel too: read(2) into lazy memory,
 * signal frames), taken out with pidfd_getfd, registered in MISSING mode on
 * every lazy mapping, and parked in the process at a high fd so that the
 * death of a server never drops it (faults then wait, they never read
 * zeros). Runs after the eager pages are in and before anything else can
 * touch lazy memory.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/uffd.h"
#include "restore/restore-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define LAZY_FEATURES (UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | \
		       UFFD_FEATURE_EVENT_UNMAP)

void ckpt_restore_lazy_done(struct ckpt_restore_lazy *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nr; i++) {
		struct ckpt_restore_lazy_proc *p = &l->procs[i];

		if (p->uffd >= 0)
			close(p->uffd);
		ckpt_page_source_close(p->src);
		free(p->ranges);
	}
	free(l->procs);
	l->procs = NULL;
	l->nr = 0;
}

static bool fd_in_state(const struct ckpt_state *s, int fd)
{
	for (size_t i = 0; i < s->nr_fds; i++)
		if (s->fds[i].fd == fd)
			return true;
	return false;
}

/* A high fd the restored process does not use, below its RLIMIT_NOFILE. */
static int pick_park_fd(struct rst *r)
{
	uint64_t soft = r->s->process.rlimits[RLIMIT_NOFILE].cur;
	int top = soft < 1024 ? (int)soft : 1024;

	for (int fd = top - 1; fd > r->next_high_fd + 16; fd--)
		if (!fd_in_state(r->s, fd))
			return fd;
	return -EMFILE;
}

/*
 * The server's ranges of mapping @v: all of it but its guard regions (a
 * copy must never replace a guard marker, and no fault comes from there).
 * A locked one (not on fault) is locked once complete.
 */
static int add_ranges(struct rst *r, const struct ckpt_state_vma *v, size_t *cap)
{
	struct ckpt_restore_lazy_proc *l = r->lazy;
	const struct ckpt_state_mm *mm = &r->s->mm;
	bool lock = (v->vmflags & CKPT_STATE_VMF_LOCKED) && !(v->vmflags & CKPT_STATE_VMF_LOCKONFAULT);
	uint64_t at = v->start;

	for (size_t g = 0; at < v->end; g++) {
		uint64_t gs = g < mm->nr_guards ? MAX(mm->guards[g][0], at) : v->end;
		uint64_t ge = g < mm->nr_guards ? MIN(mm->guards[g][1], v->end) : v->end;

		if (g < mm->nr_guards && (mm->guards[g][1] <= at || mm->guards[g][0] >= v->end))
			continue;
		if (gs > at) {
			if (GROW(l->ranges, *cap, l->nr_ranges + 1) < 0)
				return -ENOMEM;
			l->ranges[l->nr_ranges++] = (struct ckpt_lazy_range){ at, gs, at, lock };
		}
		at = ge;
	}
	return 0;
}

int rst_lazy_register(struct rst *r)
{
	struct ckpt_restore_lazy_proc *l = r->lazy;
	struct uffdio_api api = { .api = UFFD_API, .features = LAZY_FEATURES };
	size_t cap = 0;
	int64_t rfd, res;
	int park, e;

	rfd = RCALL(r, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (rfd < 0) {
		pr_err("userfaultfd() in the new process failed: %s", errstr((int)rfd));
		return (int)rfd;
	}
	r->lazy_remote_fd = (int)rfd;
	e = ckpt_inject_take_fd(r->inj, (int)rfd, &l->uffd);
	if (e < 0)
		return e;
	if (ioctl(l->uffd, UFFDIO_API, &api) < 0) {
		e = neg_errno();
		pr_err("UFFDIO_API for a lazy restore (fork, remap, remove and unmap events): %s", errstr(e));
		return e;
	}
	for (size_t i = 0; i < r->s->mm.nr_vmas; i++) {
		const struct ckpt_state_vma *v = &r->s->mm.vmas[i];
		struct uffdio_register reg = { .range = { v->start, v->end - v->start },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };

		if (!rst_vma_lazy(r, v))
			continue;
		if (ioctl(l->uffd, UFFDIO_REGISTER, &reg) < 0) {
			e = neg_errno();
			pr_err("cannot register %#" PRIx64 "-%#" PRIx64 " for lazy pages: %s", v->start,
			       v->end, errstr(e));
			return e;
		}
		if ((e = add_ranges(r, v, &cap)) < 0)
			return e;
	}
	park = pick_park_fd(r);
	if (park < 0)
		return park;
	res = RCALL(r, SYS_dup3, (uint64_t)rfd, (uint64_t)park, O_CLOEXEC);
	if (res < 0)
		return (int)res;
	RCALL(r, SYS_close, (uint64_t)rfd);
	r->lazy_remote_fd = -1;
	l->parked_fd = park;
	l->pid = r->pid;
	pr_debug("lazy: %zu ranges registered, uffd parked at fd %d", l->nr_ranges, park);
	return 0;
}
