/* SPDX-License-Identifier: MIT */
/* The state object: lifetime, names, the restore policy for fds. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "state/state-internal.h"
#include "state/state_fdkinds.h"
#include "state/state_sockets.h"
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
	"seq_read", "rand_read", "maywrite", "lockonfault", "guard",
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
	free(f->blob);
	free(f->blob_data);
	ckpt_state_fdkind_done(&f->k);
	ckpt_state_socket_done(&f->sock);
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
		for (size_t j = 0; j < s->threads[i].nr_seccomp_filters; j++)
			free(s->threads[i].seccomp_filters[j].insns);
		free(s->threads[i].seccomp_filters);
	}
	free(s->threads);
	free(s->mm.auxv);
	for (size_t i = 0; i < s->mm.nr_vmas; i++) {
		free(s->mm.vmas[i].path);
		free(s->mm.vmas[i].name);
		free(s->mm.vmas[i].blob);
		free(s->mm.vmas[i].blob_data);
		free(s->mm.vmas[i].reason);
	}
	free(s->mm.vmas);
	free(s->mm.guards);
	free(s->mm.sysv_shm);
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

/* Index: SCHED_*; 4 (SCHED_ISO) was never implemented. */
const char *const state_sched_policy_names[CKPT_STATE_NR_SCHED_POLICIES] = {
	"other", "fifo", "rr", "batch", NULL, "idle", "deadline", "ext",
};

const char *ckpt_state_sched_policy_name(int policy)
{
	return policy >= 0 && policy < CKPT_STATE_NR_SCHED_POLICIES ? state_sched_policy_names[policy]
								    : NULL;
}

bool ckpt_state_same_object(const struct ckpt_state_identity *a,
			    const struct ckpt_state_identity *b)
{
	return a->dev_major == b->dev_major && a->dev_minor == b->dev_minor && a->ino == b->ino;
}

const struct ckpt_state_fd *ckpt_state_pipe_peer(const struct ckpt_state *s,
						 const struct ckpt_state_fd *f)
{
	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *g = &s->fds[i];

		if (g != f && g->kind == CKPT_STATE_FD_PIPE && g->id.ino == f->id.ino &&
		    (g->flags & O_ACCMODE) != (f->flags & O_ACCMODE))
			return g;
	}
	return NULL;
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

/*
 * A path in the /proc directory of a process: /proc/PID/..., /proc/self/...,
 * /proc/thread-self/... (readlink of an fd shows the number). Such a file
 * is tied to that process: a restored process has another pid, and the file
 * restore would open (if any) is another one, unless it is the process's
 * own (reopened in the restored process's /proc).
 */
static bool proc_pid_path(const char *path)
{
	const char *p;
	size_t n;

	if (!path || strncmp(path, "/proc/", 6))
		return false;
	p = path + 6;
	if (!strncmp(p, "self", 4) && (p[4] == '/' || !p[4]))
		return true;
	if (!strncmp(p, "thread-self", 11) && (p[11] == '/' || !p[11]))
		return true;
	n = strspn(p, "0123456789");
	return n && (p[n] == '/' || !p[n]);
}

/* The decimal number at @p of exactly @n digits, or -1. */
static long number(const char *p, size_t n)
{
	long v = 0;

	if (!n || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	return v;
}

const char *ckpt_state_proc_own_rest(const char *path, int pid)
{
	const char *p, *rest;
	size_t n;

	if (!proc_pid_path(path))
		return NULL;
	p = path + 6;
	if (!strncmp(p, "self", 4) && (p[4] == '/' || !p[4]))
		return p + 4;
	if (!strncmp(p, "thread-self", 11))
		return NULL; /* a thread's: which one the restored process would mean is not known */
	n = strspn(p, "0123456789");
	if (pid <= 0 || number(p, n) != pid)
		return NULL;
	rest = p + n;
	/* The main thread's task directory is the process's; another thread's is not. */
	if (!strncmp(rest, "/task/", 6)) {
		const char *t = rest + 6;
		size_t m = strspn(t, "0123456789");

		if (m && (t[m] == '/' || !t[m]) && number(t, m) != pid)
			return NULL;
	}
	return rest;
}

static const char *fd_problem(const struct ckpt_state_fd *f, int pid)
{
	switch (f->kind) {
	case CKPT_STATE_FD_REGULAR:
	case CKPT_STATE_FD_DIRECTORY:
		if (f->deleted && !(f->kind == CKPT_STATE_FD_REGULAR && f->blob))
			return "the file was deleted and its contents are not saved";
		if (!proc_pid_path(f->path) || ckpt_state_proc_own_rest(f->path, pid))
			return NULL;
		return "a file of another process's (or thread's) /proc directory: a restored "
		       "process has no access to the same";
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
		return state_socket_problem(f); /* state_sockets.c */
	case CKPT_STATE_FD_EVENTFD:
	case CKPT_STATE_FD_EPOLL:
	case CKPT_STATE_FD_SIGNALFD:
	case CKPT_STATE_FD_TIMERFD:
	case CKPT_STATE_FD_INOTIFY:
		return state_fdkind_problem(f); /* state_fdkinds.c */
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
	return ckpt_state_fd_judge_for(fd, 0);
}

int ckpt_state_fd_judge_for(struct ckpt_state_fd *fd, int pid)
{
	const char *why = fd_problem(fd, pid);
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

bool ckpt_state_vma_anon_backed(const struct ckpt_state_vma *v)
{
	switch (v->kind) {
	case CKPT_STATE_VMA_ANON:
	case CKPT_STATE_VMA_HEAP:
	case CKPT_STATE_VMA_STACK:
		return true;
	case CKPT_STATE_VMA_FILE:
	case CKPT_STATE_VMA_MEMFD:
		/* dumped in full; a ghost file (blob) is mapped from the file made again */
		return !v->shared && v->deleted && !(v->kind == CKPT_STATE_VMA_FILE && v->blob);
	default:
		return false;
	}
}

bool ckpt_state_vma_shm(const struct ckpt_state_vma *v)
{
	return v->shared && (v->kind == CKPT_STATE_VMA_SHMEM_ANON || v->kind == CKPT_STATE_VMA_MEMFD);
}

const struct ckpt_state_sysv_shm *ckpt_state_sysv_shm_find(const struct ckpt_state_mm *mm, int shmid)
{
	for (size_t i = 0; i < mm->nr_sysv_shm; i++)
		if (mm->sysv_shm[i].shmid == shmid)
			return &mm->sysv_shm[i];
	return NULL;
}

static const char *vma_problem(const struct ckpt_state_mm *mm, const struct ckpt_state_vma *v)
{
	if (v->kind == CKPT_STATE_VMA_SYSV_SHM && (!v->has_identity || !ckpt_state_sysv_shm_find(mm, (int)v->id.ino)))
		return "not restorable: System V shared memory without a record of its segment";
	if (v->kind == CKPT_STATE_VMA_SYSV_SHM)
		return v->shared ? NULL : "not restorable: a private mapping of System V shared memory";
	if (is_kernel_special(v->kind))
		return NULL;
	if (v->vmflags & (CKPT_STATE_VMF_IO | CKPT_STATE_VMF_PFNMAP))
		return "not restorable: a device mapping (VM_IO/VM_PFNMAP)";
	if (v->kind == CKPT_STATE_VMA_SPECIAL)
		return "not restorable yet: a special mapping of the kernel";
	/*
	 * A private one is saved in full and comes back as anonymous memory,
	 * or mapped from the file made again from its blob; a shared one needs
	 * the blob.
	 */
	if (v->kind == CKPT_STATE_VMA_FILE && v->deleted && v->shared && !v->blob)
		return "not restorable: a shared mapping of a deleted file whose contents are not saved "
		       "(over --ghost-limit)";
	/* Restore makes a mapping as anonymous memory, shared memory, or from its file. */
	if (ckpt_state_vma_anon_backed(v) || ckpt_state_vma_shm(v))
		return NULL;
	if (v->kind == CKPT_STATE_VMA_FILE)
		return v->path ? NULL : "not restorable: a file mapping without a path";
	return "not restorable yet: a mapping of this kind and sharing";
}

bool ckpt_state_shm_mapped(const struct ckpt_state *s, const struct ckpt_state_identity *id)
{
	for (size_t i = 0; i < s->mm.nr_vmas; i++)
		if (ckpt_state_vma_shm(&s->mm.vmas[i]) && s->mm.vmas[i].has_identity &&
		    ckpt_state_same_object(&s->mm.vmas[i].id, id))
			return true;
	return false;
}

/* A memfd with contents that neither a shared mapping nor a blob holds: they are not saved. */
static bool memfd_unsaved(const struct ckpt_state *s, const struct ckpt_state_fd *f)
{
	return f->kind == CKPT_STATE_FD_MEMFD && f->id.size && !f->blob && !ckpt_state_shm_mapped(s, &f->id);
}

#define DELETED_SUFFIX " (deleted)"

/*
 * Why the working or root directory @path (as readlink of /proc/PID/cwd
 * gave it, " (deleted)" included) cannot be entered again, or NULL. A
 * deleted one is made again as an empty directory, entered and removed,
 * as CRIU does.
 */
static const char *dir_problem(const char *path)
{
	if (proc_pid_path(path))
		return "not restorable: a directory of a process's /proc directory";
	return NULL;
}

/*
 * The main thread ended (pthread_exit) and the others run on: its id is
 * the pid and a zombie holds it, which restore cannot make.
 */
static int thread_issue(const struct ckpt_state *s, struct ckpt_state_issues *l, size_t *cap)
{
	struct ckpt_state_issue is = { .kind = CKPT_STATE_ISSUE_PROCESS, .fd = -1 };

	return add_issue(l, cap, &is, "not restorable yet: its main thread has exited",
			 "process %d (%zu threads left, the first %d %s)", s->process.pid, s->nr_threads,
			 s->threads[0].tid, s->threads[0].comm);
}

int ckpt_state_unrestorable(const struct ckpt_state *s, struct ckpt_state_issues **ret)
{
	_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = calloc(1, sizeof(*l));
	static const char *const dir_names[] = { "working directory", "root directory" };
	const char *dirs[] = { s->process.cwd, s->process.root };
	size_t cap = 0;
	int k;

	if (!l)
		return -ENOMEM;
	/* Filters are restored from what the dump saved: an older image has none. */
	if (s->process.seccomp == CKPT_STATE_SECCOMP_FILTER && !(s->nr_threads && s->threads[0].has_seccomp)) {
		struct ckpt_state_issue is = { .kind = CKPT_STATE_ISSUE_PROCESS, .fd = -1 };

		k = add_issue(l, &cap, &is, "seccomp filters not saved (a checkpoint older than ckpt's saving them)",
			      "process %d (seccomp filter mode)", s->process.pid);
		if (k < 0)
			return k;
	}
	if (s->nr_threads && s->threads[0].tid != s->process.pid && (k = thread_issue(s, l, &cap)) < 0)
		return k;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		struct ckpt_state_issue is = { .kind = CKPT_STATE_ISSUE_PROCESS, .fd = -1 };
		const char *why = dir_problem(dirs[i]);
		size_t len, sl = strlen(DELETED_SUFFIX);

		if (!why)
			continue;
		len = strlen(dirs[i]);
		if (len > sl && !strcmp(dirs[i] + len - sl, DELETED_SUFFIX))
			len -= sl; /* the reason says it was deleted */
		k = add_issue(l, &cap, &is, why, "%s '%.*s' of process %d", dir_names[i], (int)len, dirs[i],
			      s->process.pid);
		if (k < 0)
			return k;
	}
	for (size_t i = 0; i < s->mm.nr_vmas; i++) {
		const struct ckpt_state_vma *v = &s->mm.vmas[i];
		const char *why = v->reason ? v->reason : vma_problem(&s->mm, v); /* the dump's own words first */
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
		const char *why = fd_problem(f, s->process.pid);
		_cleanup_free_ char *reason = NULL;

		/* By the policy of now; a checkpoint that recorded a refusal keeps it. */
		if (why && asprintf(&reason, "not restorable yet: %s", why) < 0)
			return -ENOMEM;
		if (!why && !f->restorable)
			why = f->reason ? f->reason : "not restorable";
		if (!why && memfd_unsaved(s, f))
			why = "not restorable yet: a memfd that is not mapped: its contents are not saved";
		if (!why)
			continue;
		/* The dump's own words when it refused (they may say more: a size, a limit) */
		if (!f->restorable && f->reason)
			why = f->reason;
		else if (reason)
			why = reason;
		if (f->kind == CKPT_STATE_FD_SOCKET && (f->sock.found || f->sock.known)) {
			char name[512];

			k = add_issue(l, &cap, &is, why, "fd %d (%s)", f->fd,
				      ckpt_state_socket_name(&f->sock, f->id.ino, name, sizeof(name)));
		} else {
			k = add_issue(l, &cap, &is, why, "fd %d (%s)", f->fd, f->path ? f->path : "?");
		}
		if (k < 0)
			return k;
	}
	*ret = TAKE_PTR(l);
	return 0;
}
