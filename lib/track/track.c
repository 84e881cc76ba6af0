/* SPDX-License-Identifier: MIT */
/* Arming, attaching, parking and disarming the write-protect tracking. */
#define LOG_AREA "track"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/inject.h>
#include <ckpt/proc.h>

#include "compat/syscalls.h"
#include "compat/uffd.h"
#include "track/track-internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/util.h"

#define WP_FEATURES (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)
#define PARK_FD_MAX 1024

void track_free(struct ckpt_tracker *t)
{
	if (!t)
		return;
	if (t->uffd >= 0)
		close(t->uffd);
	if (t->lock_fd >= 0)
		close(t->lock_fd);
	if (t->gen_fd >= 0)
		close(t->gen_fd);
	for (size_t i = 0; i < t->nr_dirty; i++)
		free(t->dirty[i].name);
	free(t->dirty);
	free(t->vmas);
	free(t->vec);
	free(t->rundir);
	free(t);
}

static int tracker_new(pid_t pid, const struct ckpt_track_opts *opts, struct ckpt_tracker **ret)
{
	struct ckpt_tracker *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->pid = pid;
	t->uffd = -1;
	t->lock_fd = -1;
	t->gen_fd = -1;
	t->parked_fd = -1;
	t->rundir = strdup(track_rundir(opts));
	t->vec_len = 4096;
	t->vec = calloc(t->vec_len, sizeof(*t->vec));
	if (!t->rundir || !t->vec) {
		track_free(t);
		return -ENOMEM;
	}
	*ret = t;
	return 0;
}

int track_add_vma(struct ckpt_tracker *t, uint64_t start, uint64_t end, int prot)
{
	if (GROW(t->vmas, t->cap_vmas, t->nr_vmas + 1) < 0)
		return -ENOMEM;
	t->vmas[t->nr_vmas++] = (struct track_vma){ start, end, prot };
	return 0;
}

int track_add_dirty(struct ckpt_tracker *t, uint64_t start, uint64_t end, const char *name)
{
	char *n = strdup(name);

	if (!n || GROW(t->dirty, t->cap_dirty, t->nr_dirty + 1) < 0) {
		free(n);
		return -ENOMEM;
	}
	t->dirty[t->nr_dirty++] = (struct track_dirty_vma){ start, end, n };
	return 0;
}

/* Special mappings are the kernel's, and scratch memory is ours. */
const char *track_rundir(const struct ckpt_track_opts *opts)
{
	return opts && opts->rundir && *opts->rundir ? opts->rundir : rundir_default();
}

bool track_vma_eligible(struct ckpt_inject *inj, const void *vma)
{
	const struct ckpt_vma *v = vma;

	switch (v->kind) {
	case CKPT_VMA_VDSO:
	case CKPT_VMA_VVAR:
	case CKPT_VMA_VVAR_VCLOCK:
	case CKPT_VMA_VSYSCALL:
		return false;
	default:
		return !inj || !ckpt_inject_scratch_only(inj, v->start, v->end);
	}
}

const char *track_vma_label(const void *vma, char *buf, size_t len)
{
	const struct ckpt_vma *v = vma;

	if (v->kind == CKPT_VMA_FILE)
		snprintf(buf, len, "%#" PRIx64 "-%#" PRIx64 " '%s'", v->start, v->end, v->name);
	else
		snprintf(buf, len, "%#" PRIx64 "-%#" PRIx64 " [%s%s%s]", v->start, v->end,
			 ckpt_vma_kind_name(v->kind), v->name ? ":" : "", v->name ? v->name : "");
	return buf;
}

int track_register(struct ckpt_tracker *t, uint64_t start, uint64_t end)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = end - start },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	return RET_NERRNO(ioctl(t->uffd, UFFDIO_REGISTER, &reg));
}

static int unregister_all(struct ckpt_tracker *t)
{
	int r = 0;

	for (size_t i = 0; i < t->nr_vmas; i++) {
		struct uffdio_range range = { t->vmas[i].start, t->vmas[i].end - t->vmas[i].start };

		/* EINVAL/ENOMEM: unmapped since; ESRCH: the mm is gone. */
		if (ioctl(t->uffd, UFFDIO_UNREGISTER, &range) < 0 && errno != EINVAL &&
		    errno != ENOMEM && errno != ESRCH && !r)
			r = neg_errno();
	}
	return r;
}

/* The highest free fd below min(RLIMIT_NOFILE, 1024) of the target. */
static int pick_park_fd(struct ckpt_tracker *t, struct ckpt_inject *inj)
{
	struct rlimit rl;
	int top = PARK_FD_MAX;

	if (prlimit(t->pid, RLIMIT_NOFILE, NULL, &rl) == 0 && rl.rlim_cur < (rlim_t)top)
		top = (int)rl.rlim_cur;
	for (int fd = top - 1; fd > 2; fd--) {
		struct ckpt_fd_info f;
		int r = ckpt_proc_read_fd(ckpt_inject_task_proc(inj), fd, &f);

		if (r == -EBADF)
			return fd;
		if (r < 0)
			return r;
		ckpt_fd_info_done(&f);
	}
	return -EMFILE;
}

static int open_uffd(struct ckpt_tracker *t, struct ckpt_inject *inj, int *ret_remote)
{
	struct uffdio_api api = { .api = UFFD_API, .features = WP_FEATURES };
	struct stat st;
	int64_t fd;
	int r;

	r = ckpt_inject_call(inj, &fd, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (r < 0)
		return r;
	if (fd < 0) {
		pr_err("userfaultfd() in pid %d failed: %s%s", t->pid, errstr((int)fd),
		       fd == -ENOSYS ? " (the kernel has no CONFIG_USERFAULTFD)" : "");
		return (int)fd;
	}
	*ret_remote = (int)fd;
	r = ckpt_inject_take_fd(inj, (int)fd, &t->uffd);
	if (r < 0)
		return r;
	if (ioctl(t->uffd, UFFDIO_API, &api) < 0 || (api.features & WP_FEATURES) != WP_FEATURES) {
		bool async = api.features & UFFD_FEATURE_WP_ASYNC;

		pr_err("the kernel does not offer UFFD_FEATURE_%s (Linux %s): dirty tracking needs it",
		       async ? "WP_UNPOPULATED" : "WP_ASYNC", async ? "6.4" : "6.7");
		return -EOPNOTSUPP;
	}
	t->features = api.features;
	if (fstat(t->uffd, &st) < 0)
		return neg_errno();
	t->uffd_ino = st.st_ino;
	return 0;
}

/* Move the target's copy of the uffd to a high fd, close-on-exec. */
static int park(struct ckpt_tracker *t, struct ckpt_inject *inj, int remote)
{
	int64_t res;
	int fd = pick_park_fd(t, inj), r;

	if (fd < 0) {
		pr_err("no free fd in pid %d to park the userfaultfd: %s", t->pid, errstr(fd));
		return fd;
	}
	r = ckpt_inject_call(inj, &res, SYS_dup3, (uint64_t)remote, (uint64_t)fd, O_CLOEXEC);
	if (r == 0 && res < 0)
		r = (int)res;
	if (r < 0) {
		pr_err("cannot park the userfaultfd at fd %d of pid %d: %s", fd, t->pid, errstr(r));
		return r;
	}
	t->parked_fd = fd;
	return ckpt_inject_close_fd(inj, remote);
}

/* Register every eligible mapping; EBUSY (someone else's uffd) is fatal. */
static int register_all(struct ckpt_tracker *t, struct ckpt_inject *inj,
			const struct ckpt_vma_list *maps)
{
	for (size_t i = 0; i < maps->nr; i++) {
		const struct ckpt_vma *v = &maps->v[i];
		char label[512];
		int r;

		if (!track_vma_eligible(inj, v))
			continue;
		r = track_register(t, v->start, v->end);
		if (r == 0) {
			r = track_add_vma(t, v->start, v->end, v->prot);
			if (r < 0)
				return r;
			continue;
		}
		track_vma_label(v, label, sizeof(label));
		if (r == -EBUSY) {
			pr_err("mapping %s of pid %d is already registered with another userfaultfd: "
			       "is another tracker running?", label, t->pid);
			return -EBUSY;
		}
		if (r == -EPERM && v->shared && !(v->prot & PROT_WRITE)) {
			pr_debug("mapping %s can never be written: not tracked", label);
			continue;
		}
		pr_warn("cannot register mapping %s of pid %d for write-protect (%s): "
			"it is treated as always written", label, t->pid, errstr(r));
		r = track_add_dirty(t, v->start, v->end, label);
		if (r < 0)
			return r;
	}
	return 0;
}

static int arm_scan(struct ckpt_tracker *t, struct ckpt_inject *inj)
{
	_cleanup_close_ int pm = ckpt_proc_open_pagemap(ckpt_inject_task_proc(inj));

	if (pm < 0)
		return pm;
	for (size_t i = 0; i < t->nr_vmas; i++) {
		uint64_t at = t->vmas[i].start, end = t->vmas[i].end;

		/* Consecutive registered mappings are armed in one call. */
		while (i + 1 < t->nr_vmas && t->vmas[i + 1].start == end)
			end = t->vmas[++i].end;
		while (at < end) {
			struct pm_scan_arg arg = {
				.size = sizeof(arg),
				.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
				.start = at,
				.end = end,
				.category_mask = PAGE_IS_WRITTEN,
				.return_mask = PAGE_IS_WRITTEN,
			};

			if (ioctl(pm, PAGEMAP_SCAN, &arg) < 0) {
				int r = neg_errno();

				pr_err("cannot arm %#" PRIx64 "-%#" PRIx64 " of pid %d: %s%s", at, end,
				       t->pid, errstr(r),
				       r == -ENOTTY ? " (PAGEMAP_SCAN needs Linux 6.7)" : "");
				return r == -ENOTTY ? -EOPNOTSUPP : r;
			}
			if (arg.walk_end <= at)
				break; /* a huge page it will not split: it stays written */
			at = arg.walk_end;
		}
	}
	return 0;
}

static int check_not_tracked(struct ckpt_tracker *t)
{
	struct ckpt_tracker *old = NULL;
	int r = ckpt_track_attach(t->pid, &(struct ckpt_track_opts){ .rundir = t->rundir }, &old);

	if (r == 0) {
		pr_err("pid %d is already tracked by ckpt (userfaultfd parked at fd %d); "
		       "'ckpt track --stop -t %d' disarms it", t->pid, old->parked_fd, t->pid);
		ckpt_track_close(old);
		return -EBUSY;
	}
	if (r == -ENOENT || r == -ESTALE)
		return 0;
	return r;
}

int ckpt_track_arm(struct ckpt_inject *inj, const struct ckpt_track_opts *opts,
		   struct ckpt_tracker **ret)
{
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	struct ckpt_tracker *t = NULL;
	int remote = -1, r;

	r = tracker_new(ckpt_inject_pid(inj), opts, &t);
	if (r < 0)
		return r;
	r = check_not_tracked(t);
	if (r < 0)
		goto fail;
	r = track_identity(t->pid, &t->start_time, t->boot_id);
	if (r < 0) {
		pr_err("cannot identify pid %d: %s", t->pid, errstr(r));
		goto fail;
	}
	r = track_record_lock(t);
	if (r < 0)
		goto fail;
	r = open_uffd(t, inj, &remote);
	if (r < 0)
		goto fail;
	/* Held: the process keeps no copy; ours is the only one. */
	r = opts && opts->held ? ckpt_inject_close_fd(inj, remote) : park(t, inj, remote);
	if (r < 0)
		goto fail;
	remote = -1;
	r = ckpt_proc_read_maps(ckpt_inject_task_proc(inj), 0, &maps);
	if (r < 0) {
		pr_err("cannot read the mappings of pid %d: %s", t->pid, errstr(r));
		goto fail;
	}
	r = register_all(t, inj, maps);
	if (r < 0)
		goto fail;
	r = arm_scan(t, inj);
	if (r < 0)
		goto fail;
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		t->armed_realtime_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	}
	r = track_record_save(t);
	if (r < 0)
		goto fail;
	pr_debug("armed pid %d: %zu mappings, %zu always dirty, uffd %s%d", t->pid, t->nr_vmas, t->nr_dirty,
		 t->parked_fd < 0 ? "held by ckpt " : "parked at fd ", t->parked_fd);
	*ret = t;
	return 0;
fail:
	if (t->uffd >= 0)
		(void)unregister_all(t);
	/* Best effort: each failure is logged where it happens. */
	if (remote >= 0 && ckpt_inject_close_fd(inj, remote) < 0)
		pr_debug("unwinding: fd %d of pid %d stays open", remote, t->pid);
	if (t->parked_fd >= 0 && ckpt_inject_close_fd(inj, t->parked_fd) < 0)
		pr_debug("unwinding: fd %d of pid %d stays open", t->parked_fd, t->pid);
	track_free(t);
	return r;
}

/* Take the parked fd and check it is the uffd we parked; -ESTALE + @why. */
static int take_parked(struct ckpt_tracker *t, int pidfd, int *ret_fd, char *why, size_t len)
{
	struct stat st;
	int fd = sys_pidfd_getfd(pidfd, t->parked_fd, 0);

	if (fd < 0) {
		int r = neg_errno();

		if (r == -EBADF)
			snprintf(why, len,
				 "tracking of pid %d is lost: fd %d, where the userfaultfd was parked, "
				 "is closed (the program closed it, or it executed a new program)",
				 t->pid, t->parked_fd);
		else
			snprintf(why, len, "tracking of pid %d is lost: cannot take fd %d: %s", t->pid,
				 t->parked_fd, errstr(r));
		return -ESTALE;
	}
	if (fstat(fd, &st) < 0 || st.st_ino != t->uffd_ino) {
		snprintf(why, len,
			 "tracking of pid %d is lost: fd %d is no longer our userfaultfd "
			 "(the program replaced it)", t->pid, t->parked_fd);
		close(fd);
		return -ESTALE;
	}
	*ret_fd = fd;
	return 0;
}

int track_verify_parked(struct ckpt_tracker *t, struct ckpt_inject *inj, char *why, size_t len)
{
	int fd = -1, r;

	r = take_parked(t, ckpt_inject_files_pidfd(inj), &fd, why, len);
	if (r == 0)
		close(fd);
	return r;
}

int ckpt_track_attach(pid_t pid, const struct ckpt_track_opts *opts, struct ckpt_tracker **ret)
{
	struct ckpt_tracker *t = NULL;
	_cleanup_close_ int pidfd = -1;
	uint64_t start_time;
	char boot_id[40], why[256];
	int r;

	r = tracker_new(pid, opts, &t);
	if (r < 0)
		return r;
	r = track_record_load(t);
	if (r == -ENOENT)
		goto out;
	if (r < 0)
		goto stale;
	r = track_identity(pid, &start_time, boot_id);
	if (r < 0 || start_time != t->start_time || strcmp(boot_id, t->boot_id)) {
		pr_debug("record of pid %d is of another process: removed", pid);
		track_record_remove(t);
		r = -ENOENT;
		goto out;
	}
	pidfd = sys_pidfd_open(pid, 0);
	if (pidfd < 0) {
		r = -ENOENT;
		goto out;
	}
	r = track_record_lock(t);
	if (r < 0)
		goto out;
	if (t->parked_fd < 0) {
		/* Held by a command that ended without disarming (killed): the kernel dropped it with its fd. */
		pr_debug("pid %d was tracked by a command that has ended: its tracking ended with it", pid);
		goto stale;
	}
	r = take_parked(t, pidfd, &t->uffd, why, sizeof(why));
	if (r < 0) {
		pr_err("%s", why);
		goto stale;
	}
	*ret = t;
	return 0;
stale:
	track_record_remove(t);
	r = -ESTALE;
out:
	track_free(t);
	return r;
}

int ckpt_track_disarm(struct ckpt_tracker *t, struct ckpt_inject *inj)
{
	int r = 0, e;

	if (!t)
		return 0;
	if (t->uffd >= 0) {
		r = unregister_all(t);
		if (r < 0)
			pr_err("cannot unregister the mappings of pid %d: %s", t->pid, errstr(r));
	}
	if (t->parked_fd >= 0 && inj) {
		int fd = -1;

		char why[256];

		/* Close the parked fd only if it is still ours. */
		if (take_parked(t, ckpt_inject_files_pidfd(inj), &fd, why, sizeof(why)) == 0) {
			close(fd);
			e = ckpt_inject_close_fd(inj, t->parked_fd);
			if (e < 0 && !r)
				r = e;
		}
	}
	track_record_remove(t);
	track_free(t);
	return r;
}

int ckpt_track_drop_inherited(struct ckpt_tracker *t, struct ckpt_inject *inj)
{
	char why[256];
	int fd = -1, r;

	if (t->parked_fd < 0 || ckpt_inject_pid(inj) == t->pid)
		return 0;
	/* The same number, the same uffd (its inode): a copy that fork gave it. */
	if (take_parked(t, ckpt_inject_files_pidfd(inj), &fd, why, sizeof(why)) < 0)
		return 0;
	close(fd);
	r = ckpt_inject_close_fd(inj, t->parked_fd);
	if (r < 0) {
		pr_warn("pid %d keeps fd %d, a copy of the tracking userfaultfd of pid %d it inherited: %s",
			ckpt_inject_pid(inj), t->parked_fd, t->pid, errstr(r));
		return r;
	}
	pr_debug("closed fd %d of pid %d, a copy of the tracking userfaultfd of pid %d", t->parked_fd,
		 ckpt_inject_pid(inj), t->pid);
	return 1;
}

int ckpt_track_sync(struct ckpt_tracker *t)
{
	return t->record_dirty ? track_record_save(t) : 0;
}

void ckpt_track_close(struct ckpt_tracker *t)
{
	if (t && t->parked_fd < 0 && t->uffd >= 0) {
		/* Held: closing our copy ends the tracking (the kernel unregisters everything). */
		track_record_remove(t);
		track_free(t);
		return;
	}
	if (t && ckpt_track_sync(t) < 0)
		pr_warn("the tracking record of pid %d lags behind: the next harvest reports more",
			t->pid);
	track_free(t);
}

pid_t ckpt_track_pid(const struct ckpt_tracker *t)
{
	return t->pid;
}

int ckpt_track_parked_fd(const struct ckpt_tracker *t)
{
	return t->parked_fd;
}

uint64_t ckpt_track_generation(const struct ckpt_tracker *t)
{
	return t->generation;
}

size_t ckpt_track_nr_always_dirty(const struct ckpt_tracker *t)
{
	return t->nr_dirty;
}

const char *ckpt_track_always_dirty_name(const struct ckpt_tracker *t, size_t i)
{
	return i < t->nr_dirty ? t->dirty[i].name : NULL;
}
