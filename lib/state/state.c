/* SPDX-License-Identifier: MIT */
/* The state object: lifetime, names, the restore policy for fds. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "state/state-internal.h"
#include "util/util.h"

const char *const state_vma_kind_names[CKPT_STATE_NR_VMA_KINDS] = {
	[CKPT_STATE_VMA_ANON] = "anon",
	[CKPT_STATE_VMA_FILE] = "file",
	[CKPT_STATE_VMA_HEAP] = "heap",
	[CKPT_STATE_VMA_STACK] = "stack",
	[CKPT_STATE_VMA_VDSO] = "vdso",
	[CKPT_STATE_VMA_VVAR] = "vvar",
	[CKPT_STATE_VMA_VVAR_VCLOCK] = "vvar_vclock",
	[CKPT_STATE_VMA_VSYSCALL] = "vsyscall",
	[CKPT_STATE_VMA_SHMEM_ANON] = "shmem_anon",
	[CKPT_STATE_VMA_MEMFD] = "memfd",
	[CKPT_STATE_VMA_SYSV_SHM] = "sysv_shm",
	[CKPT_STATE_VMA_SPECIAL] = "special",
};

const char *const state_fd_kind_names[CKPT_STATE_NR_FD_KINDS] = {
	[CKPT_STATE_FD_REGULAR] = "regular",
	[CKPT_STATE_FD_DIRECTORY] = "directory",
	[CKPT_STATE_FD_CHR] = "chr",
	[CKPT_STATE_FD_BLK] = "blk",
	[CKPT_STATE_FD_PIPE] = "pipe",
	[CKPT_STATE_FD_FIFO] = "fifo",
	[CKPT_STATE_FD_SOCKET] = "socket",
	[CKPT_STATE_FD_TTY] = "tty",
	[CKPT_STATE_FD_MEMFD] = "memfd",
	[CKPT_STATE_FD_EVENTFD] = "eventfd",
	[CKPT_STATE_FD_EPOLL] = "epoll",
	[CKPT_STATE_FD_SIGNALFD] = "signalfd",
	[CKPT_STATE_FD_TIMERFD] = "timerfd",
	[CKPT_STATE_FD_INOTIFY] = "inotify",
	[CKPT_STATE_FD_FANOTIFY] = "fanotify",
	[CKPT_STATE_FD_USERFAULTFD] = "userfaultfd",
	[CKPT_STATE_FD_PIDFD] = "pidfd",
	[CKPT_STATE_FD_ANON_INODE] = "anon_inode",
	[CKPT_STATE_FD_UNKNOWN] = "unknown",
};

const char *const state_vmf_names[CKPT_STATE_NR_VMF] = {
	"dontdump", "dontcopy", "dontexpand", "wipeonfork", "hugepage", "nohugepage",
	"hugetlb", "locked", "mergeable", "growsdown", "uffd_missing", "uffd_wp",
	"uffd_minor", "io", "pfnmap", "mixedmap", "sealed", "shadow_stack",
};

static const char *const rlimit_names[CKPT_STATE_NR_RLIMITS] = {
	[RLIMIT_CPU] = "cpu",         [RLIMIT_FSIZE] = "fsize",
	[RLIMIT_DATA] = "data",       [RLIMIT_STACK] = "stack",
	[RLIMIT_CORE] = "core",       [RLIMIT_RSS] = "rss",
	[RLIMIT_NPROC] = "nproc",     [RLIMIT_NOFILE] = "nofile",
	[RLIMIT_MEMLOCK] = "memlock", [RLIMIT_AS] = "as",
	[RLIMIT_LOCKS] = "locks",     [RLIMIT_SIGPENDING] = "sigpending",
	[RLIMIT_MSGQUEUE] = "msgqueue", [RLIMIT_NICE] = "nice",
	[RLIMIT_RTPRIO] = "rtprio",   [RLIMIT_RTTIME] = "rttime",
};

_Static_assert(RLIMIT_NLIMITS == CKPT_STATE_NR_RLIMITS, "one rlimit name per RLIMIT_*");

int ckpt_state_new(struct ckpt_state **ret)
{
	struct ckpt_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

static void fd_done(struct ckpt_state_fd *f)
{
	free(f->path);
	free(f->reason);
	free(f->fdinfo);
}

void ckpt_state_free(struct ckpt_state *s)
{
	if (!s)
		return;
	free(s->process.exe);
	free(s->process.cwd);
	free(s->process.root);
	free(s->process.creds.groups);
	free(s->process.shared_pending);
	for (size_t i = 0; i < s->nr_threads; i++) {
		free(s->threads[i].xstate);
		free(s->threads[i].pending);
	}
	free(s->threads);
	free(s->mm.auxv);
	for (size_t i = 0; i < s->mm.nr_vmas; i++) {
		free(s->mm.vmas[i].path);
		free(s->mm.vmas[i].name);
	}
	free(s->mm.vmas);
	for (size_t i = 0; i < s->nr_fds; i++)
		fd_done(&s->fds[i]);
	free(s->fds);
	free(s);
}

const char *ckpt_state_vma_kind_name(enum ckpt_state_vma_kind kind)
{
	return (unsigned int)kind < CKPT_STATE_NR_VMA_KINDS ? state_vma_kind_names[kind] : "unknown";
}

const char *ckpt_state_fd_kind_name(enum ckpt_state_fd_kind kind)
{
	return (unsigned int)kind < CKPT_STATE_NR_FD_KINDS ? state_fd_kind_names[kind] : "unknown";
}

const char *ckpt_state_rlimit_name(int resource)
{
	return resource >= 0 && resource < CKPT_STATE_NR_RLIMITS ? rlimit_names[resource] : NULL;
}

bool ckpt_state_same_object(const struct ckpt_state_identity *a,
			    const struct ckpt_state_identity *b)
{
	return a->dev_major == b->dev_major && a->dev_minor == b->dev_minor && a->ino == b->ino;
}

/* ---- the restore policy ---- */

/* Character devices a restore reopens by path: mem major 1. */
static bool harmless_chr(const struct ckpt_state_identity *id)
{
	static const unsigned int minors[] = { 3 /* null */, 5 /* zero */, 7 /* full */,
					       8 /* random */, 9 /* urandom */ };

	if (id->rdev_major != 1)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(minors); i++)
		if (id->rdev_minor == minors[i])
			return true;
	return false;
}

static const char *fd_problem(const struct ckpt_state_fd *f)
{
	switch (f->kind) {
	case CKPT_STATE_FD_REGULAR:
	case CKPT_STATE_FD_DIRECTORY:
		return f->deleted ? "the file was deleted and its contents are not saved" : NULL;
	case CKPT_STATE_FD_CHR:
		return harmless_chr(&f->id) ? NULL : "a character device other than "
						    "/dev/{null,zero,full,random,urandom}";
	case CKPT_STATE_FD_TTY:
	case CKPT_STATE_FD_PIPE:
	case CKPT_STATE_FD_FIFO:
	case CKPT_STATE_FD_MEMFD:
		return NULL;
	case CKPT_STATE_FD_BLK:
		return "a block device";
	case CKPT_STATE_FD_SOCKET:
		return "a socket";
	case CKPT_STATE_FD_EVENTFD:
		return "an eventfd";
	case CKPT_STATE_FD_EPOLL:
		return "an epoll instance";
	case CKPT_STATE_FD_SIGNALFD:
		return "a signalfd";
	case CKPT_STATE_FD_TIMERFD:
		return "a timerfd";
	case CKPT_STATE_FD_INOTIFY:
		return "an inotify instance";
	case CKPT_STATE_FD_FANOTIFY:
		return "a fanotify group";
	case CKPT_STATE_FD_USERFAULTFD:
		return "a userfaultfd of the application";
	case CKPT_STATE_FD_PIDFD:
		return "a pidfd";
	case CKPT_STATE_FD_ANON_INODE:
		return "an anonymous inode of an unsupported kind";
	case CKPT_STATE_FD_UNKNOWN:
	case CKPT_STATE_NR_FD_KINDS:
		break;
	}
	return "a file of unknown kind";
}

int ckpt_state_fd_judge(struct ckpt_state_fd *fd)
{
	const char *why = fd_problem(fd);
	char *reason = NULL;

	if (why && asprintf(&reason, "not restorable yet: %s", why) < 0)
		return -ENOMEM;
	free(fd->reason);
	fd->reason = reason;
	fd->restorable = !why;
	return 0;
}

/* ---- what restore cannot recreate ---- */

void ckpt_state_issues_free(struct ckpt_state_issues *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nr; i++) {
		free(l->v[i].what);
		free(l->v[i].reason);
	}
	free(l->v);
	free(l);
}

static int add_issue(struct ckpt_state_issues *l, size_t *cap, const struct ckpt_state_issue *is,
		     const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int add_issue(struct ckpt_state_issues *l, size_t *cap, const struct ckpt_state_issue *is,
		     const char *reason, const char *fmt, ...)
{
	struct ckpt_state_issue *n;
	va_list ap;
	int k;

	if (GROW(l->v, *cap, l->nr + 1) < 0)
		return -ENOMEM;
	n = &l->v[l->nr];
	*n = *is;
	n->what = NULL;
	n->reason = strdup(reason);
	va_start(ap, fmt);
	k = vasprintf(&n->what, fmt, ap);
	va_end(ap);
	if (k < 0 || !n->reason) {
		if (k < 0)
			n->what = NULL;
		free(n->what);
		free(n->reason);
		return -ENOMEM;
	}
	l->nr++;
	return 0;
}

/* The special mappings restore remaps; VM_IO/VM_PFNMAP on them is expected. */
static bool is_kernel_special(enum ckpt_state_vma_kind k)
{
	return k == CKPT_STATE_VMA_VDSO || k == CKPT_STATE_VMA_VVAR ||
	       k == CKPT_STATE_VMA_VVAR_VCLOCK || k == CKPT_STATE_VMA_VSYSCALL;
}

static const char *vma_problem(const struct ckpt_state_vma *v)
{
	if (v->kind == CKPT_STATE_VMA_SYSV_SHM)
		return "not restorable yet: System V shared memory";
	if (is_kernel_special(v->kind))
		return NULL;
	if (v->vmflags & (CKPT_STATE_VMF_IO | CKPT_STATE_VMF_PFNMAP))
		return "not restorable: a device mapping (VM_IO/VM_PFNMAP)";
	if (v->kind == CKPT_STATE_VMA_SPECIAL)
		return "not restorable yet: a special mapping of the kernel";
	/* A private one is saved in full and comes back as anonymous memory. */
	if (v->kind == CKPT_STATE_VMA_FILE && v->deleted && v->shared)
		return "not restorable yet: a shared mapping of a deleted file";
	return NULL;
}

int ckpt_state_unrestorable(const struct ckpt_state *s, struct ckpt_state_issues **ret)
{
	_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = calloc(1, sizeof(*l));
	size_t cap = 0;
	int k;

	if (!l)
		return -ENOMEM;
	if (s->process.seccomp == CKPT_STATE_SECCOMP_FILTER) {
		struct ckpt_state_issue is = { .kind = CKPT_STATE_ISSUE_PROCESS, .fd = -1 };

		k = add_issue(l, &cap, &is, "not restorable yet: seccomp filters",
			      "process %d (seccomp filter mode)", s->process.pid);
		if (k < 0)
			return k;
	}
	for (size_t i = 0; i < s->mm.nr_vmas; i++) {
		const struct ckpt_state_vma *v = &s->mm.vmas[i];
		const char *why = vma_problem(v);
		struct ckpt_state_issue is = { .kind = CKPT_STATE_ISSUE_VMA, .fd = -1,
					       .start = v->start, .end = v->end };

		if (!why)
			continue;
		k = add_issue(l, &cap, &is, why, "mapping %#llx-%#llx (%s)",
			      (unsigned long long)v->start, (unsigned long long)v->end,
			      v->path ? v->path : v->name ? v->name : ckpt_state_vma_kind_name(v->kind));
		if (k < 0)
			return k;
	}
	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];
		struct ckpt_state_issue is = { .kind = CKPT_STATE_ISSUE_FD, .fd = f->fd };

		if (f->restorable)
			continue;
		k = add_issue(l, &cap, &is, f->reason ? f->reason : "not restorable",
			      "fd %d (%s)", f->fd, f->path ? f->path : "?");
		if (k < 0)
			return k;
	}
	*ret = TAKE_PTR(l);
	return 0;
}
