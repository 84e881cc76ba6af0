/* SPDX-License-Identifier: MIT */
/*
 * lib/proc: the only code in ckpt that opens files under /proc/PID. A handle names a
 * process directory under a root ("/proc" normally; a captured fixture tree
 * in tests). Parsers do not log; they return -errno (-EBADMSG for text they
 * cannot parse).
 */
#ifndef CKPT_PROC_H
#define CKPT_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/util.h>

struct ckpt_proc;

/* Open ROOT/PID (@root NULL: "/proc"). -ESRCH when it does not exist. */
int ckpt_proc_open(const char *root, pid_t pid, struct ckpt_proc **ret) __must_check;
/*
 * Open the directory whose maps, mem, exe and fds are those of process
 * @pid: ROOT/PID, or ROOT/TID of a live thread when the leader has exited
 * (pthread_exit) and the others run on (a zombie leader's are empty).
 */
int ckpt_proc_open_live(const char *root, pid_t pid, struct ckpt_proc **ret) __must_check;
/* Open ROOT/PID/task/TID of the process behind @p. */
int ckpt_proc_open_task(const struct ckpt_proc *p, pid_t tid, struct ckpt_proc **ret) __must_check;
void ckpt_proc_close(struct ckpt_proc *p);
CKPT_DEFINE_CLEANUP(struct ckpt_proc, ckpt_proc_close)
#define _cleanup_proc_ _cleanup_(ckpt_proc_closep)
pid_t ckpt_proc_pid(const struct ckpt_proc *p);

/* ---- maps ---- */

enum ckpt_vma_kind {
	CKPT_VMA_ANON = 0,   /* anonymous, no name */
	CKPT_VMA_FILE,       /* backed by a file: name is its path */
	CKPT_VMA_HEAP,       /* [heap] */
	CKPT_VMA_STACK,      /* [stack] */
	CKPT_VMA_VDSO,       /* [vdso] */
	CKPT_VMA_VVAR,       /* [vvar] */
	CKPT_VMA_VVAR_VCLOCK, /* [vvar_vclock] */
	CKPT_VMA_VSYSCALL,   /* [vsyscall] */
	CKPT_VMA_ANON_NAMED, /* [anon:NAME] or [anon_shmem:NAME]: name is NAME */
	CKPT_VMA_SPECIAL,    /* any other [NAME] ([uprobes], ...) */
};

/* Bits of the VmFlags line of smaps (only with CKPT_MAPS_VMFLAGS). */
enum {
	CKPT_VMF_IO = 1u << 0,        /* io: VM_IO */
	CKPT_VMF_PFNMAP = 1u << 1,    /* pf: VM_PFNMAP */
	CKPT_VMF_DONTDUMP = 1u << 2,  /* dd */
	CKPT_VMF_DONTCOPY = 1u << 3,  /* dc */
	CKPT_VMF_DONTEXPAND = 1u << 4, /* de */
	CKPT_VMF_HUGEPAGE = 1u << 5,  /* hg: MADV_HUGEPAGE */
	CKPT_VMF_NOHUGEPAGE = 1u << 6, /* nh */
	CKPT_VMF_HUGETLB = 1u << 7,   /* ht */
	CKPT_VMF_LOCKED = 1u << 8,    /* lo */
	CKPT_VMF_GROWSDOWN = 1u << 9, /* gd */
	CKPT_VMF_UFFD_MISSING = 1u << 10, /* um */
	CKPT_VMF_UFFD_WP = 1u << 11,  /* uw */
	CKPT_VMF_UFFD_MINOR = 1u << 12, /* ui */
	CKPT_VMF_WIPEONFORK = 1u << 13, /* wf */
	CKPT_VMF_MERGEABLE = 1u << 14, /* mg */
	CKPT_VMF_SHADOW_STACK = 1u << 15, /* ss */
	CKPT_VMF_SEALED = 1u << 16,   /* sl */
	CKPT_VMF_MAYSHARE = 1u << 17, /* ms */
	CKPT_VMF_SOFTDIRTY = 1u << 18, /* sd */
	CKPT_VMF_MIXEDMAP = 1u << 19, /* mm */
	CKPT_VMF_SEQ_READ = 1u << 20, /* sr: MADV_SEQUENTIAL */
	CKPT_VMF_RAND_READ = 1u << 21, /* rr: MADV_RANDOM */
	CKPT_VMF_MAYWRITE = 1u << 22, /* mw: VM_MAYWRITE */
	CKPT_VMF_LOCKONFAULT = 1u << 23, /* lf: mlock2(MLOCK_ONFAULT) */
	CKPT_VMF_GUARD = 1u << 24,    /* gu: may hold guard regions (Linux 6.18) */
};

struct ckpt_vma {
	uint64_t start, end;     /* [start, end) */
	int prot;                /* PROT_READ | PROT_WRITE | PROT_EXEC */
	bool shared;             /* 's' (MAP_SHARED) rather than 'p' */
	bool deleted;            /* the path ended in " (deleted)", removed from name */
	enum ckpt_vma_kind kind;
	uint64_t offset;         /* file offset in bytes */
	unsigned int dev_major, dev_minor;
	uint64_t inode;
	char *name;              /* see enum ckpt_vma_kind; NULL for plain anonymous */
	bool has_vmflags;
	uint32_t vmflags;        /* CKPT_VMF_* */
	uint64_t rss_kb;         /* Rss: of smaps (only with CKPT_MAPS_VMFLAGS) */
};

struct ckpt_vma_list {
	size_t nr;
	struct ckpt_vma *v;
};

enum {
	/* Read smaps instead of maps: VmFlags and Rss too. Slower. */
	CKPT_MAPS_VMFLAGS = 1u << 0,
};

int ckpt_proc_read_maps(const struct ckpt_proc *p, unsigned int flags,
			struct ckpt_vma_list **ret) __must_check;
/* Parse maps/smaps text; exposed for tests and fuzzing. */
int ckpt_proc_parse_maps(const char *text, size_t len, struct ckpt_vma_list **ret) __must_check;
void ckpt_vma_list_free(struct ckpt_vma_list *l);
/* The mapping that holds @addr, or NULL. */
const struct ckpt_vma *ckpt_vma_list_find(const struct ckpt_vma_list *l, uint64_t addr);
CKPT_DEFINE_CLEANUP(struct ckpt_vma_list, ckpt_vma_list_free)
#define _cleanup_vma_list_ _cleanup_(ckpt_vma_list_freep)
const char *ckpt_vma_kind_name(enum ckpt_vma_kind kind);
/* Shared anonymous memory: MAP_SHARED|MAP_ANONYMOUS shows as /dev/zero (deleted). */
bool ckpt_vma_is_shmem_anon(const struct ckpt_vma *v);

/* ---- stat ---- */

struct ckpt_proc_stat {
	pid_t pid;
	char comm[64];
	char state;              /* R S D T t Z X I ... */
	pid_t ppid, pgrp, session;
	int tty_nr;
	pid_t tpgid;
	unsigned int flags;      /* PF_* of the task */
	uint64_t utime, stime;   /* clock ticks */
	long priority, nice, num_threads;
	uint64_t start_time;     /* clock ticks after boot: identity with the pid */
	uint64_t vsize;
	int64_t rss;             /* pages */
	uint64_t start_code, end_code, start_stack;
	int exit_signal, processor;
	unsigned int rt_priority, policy;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
	int exit_code;
};

#define CKPT_PF_KTHREAD 0x00200000u

int ckpt_proc_read_stat(const struct ckpt_proc *p, struct ckpt_proc_stat *ret) __must_check;
int ckpt_proc_parse_stat(const char *text, struct ckpt_proc_stat *ret) __must_check;

/* ---- status ---- */

struct ckpt_proc_status {
	char name[64];
	bool has_umask;
	unsigned int umask;
	char state;
	pid_t tgid, pid, ppid, tracer_pid;
	uid_t uid[4];            /* real, effective, saved, filesystem */
	gid_t gid[4];
	size_t ngroups;
	gid_t *groups;           /* owned: ckpt_proc_status_done() frees */
	size_t nspid_nr;
	pid_t nspid_inner;       /* the pid in the innermost namespace */
	unsigned int threads;
	uint64_t sig_pnd, shd_pnd, sig_blk, sig_ign, sig_cgt;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs, seccomp;
	int kthread;             /* -1: the kernel does not say */
	uint64_t vm_rss_kb, rss_anon_kb, rss_file_kb, rss_shmem_kb, vm_swap_kb;
};

int ckpt_proc_read_status(const struct ckpt_proc *p, struct ckpt_proc_status *ret) __must_check;

/*
 * Proportional set sizes (smaps_rollup: walks the page tables), KiB: a page
 * N processes map counts 1/N; and the anonymous memory it maps, whole.
 */
struct ckpt_proc_pss {
	uint64_t anon_kb, shmem_kb, swap_kb;
	uint64_t anon_rss_kb;
};

int ckpt_proc_read_pss(const struct ckpt_proc *p, struct ckpt_proc_pss *ret) __must_check;
int ckpt_proc_parse_status(const char *text, struct ckpt_proc_status *ret) __must_check;
void ckpt_proc_status_done(struct ckpt_proc_status *s);

/* ---- threads ---- */

/* Thread ids of the process, ascending. */
int ckpt_proc_list_tasks(const struct ckpt_proc *p, pid_t **ret, size_t *ret_nr) __must_check;
/* Children of every thread of the process (task/TID/children), ascending. */
int ckpt_proc_list_children(const struct ckpt_proc *p, pid_t **ret, size_t *ret_nr) __must_check;

/* ---- file descriptors ---- */

struct ckpt_fd_info {
	int fd;
	char *target;            /* readlink of fd/N: a path, pipe:[ino], socket:[ino], anon_inode:... */
	uint64_t pos;
	unsigned int flags;      /* O_* flags from fdinfo */
	int mnt_id;
	uint64_t ino;
	char *extra;             /* the other fdinfo lines, verbatim */
};

struct ckpt_fd_list {
	size_t nr;
	struct ckpt_fd_info *v;
};

int ckpt_proc_read_fds(const struct ckpt_proc *p, struct ckpt_fd_list **ret) __must_check;
int ckpt_proc_read_fd(const struct ckpt_proc *p, int fd, struct ckpt_fd_info *ret) __must_check;
int ckpt_proc_parse_fdinfo(const char *text, struct ckpt_fd_info *ret) __must_check;
void ckpt_fd_info_done(struct ckpt_fd_info *f);
void ckpt_fd_list_free(struct ckpt_fd_list *l);
CKPT_DEFINE_CLEANUP(struct ckpt_fd_list, ckpt_fd_list_free)
#define _cleanup_fd_list_ _cleanup_(ckpt_fd_list_freep)

/*
 * Open the inode of file handle @type/@handle (@len bytes) on the file
 * system of device @maj:@min, as process @p sees its mounts (mountinfo,
 * root): open_by_handle_at(2) with @flags (O_CLOEXEC added), which needs
 * CAP_DAC_READ_SEARCH. Also the path our fd reads as, when @ret_path.
 * -ENOENT: no mount of that device; -ESTALE: the inode is gone.
 */
int ckpt_proc_open_by_handle(const struct ckpt_proc *p, unsigned int maj, unsigned int min,
			     int type, const void *handle, size_t len, int flags, int *ret_fd,
			     char **ret_path) __must_check;

/* ---- identities of open files ---- */

struct stat;
/*
 * stat(2) of what /proc/PID/fd/N, /proc/PID/exe and
 * /proc/PID/map_files/START-END point to (the open file or mapped object
 * itself, even when deleted; pipes and sockets too). -EBADF: no such fd,
 * -ENOENT: no mapping with exactly these bounds (or no file behind it),
 * -EPERM: map_files needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN.
 */
int ckpt_proc_stat_fd(const struct ckpt_proc *p, int fd, struct stat *ret) __must_check;
/*
 * Open again our own @fd (through /proc/self/fd/N, so a deleted file or a
 * memfd too) with @flags (O_CLOEXEC added): a new open file description of
 * the same file. The new fd, or -errno.
 */
int ckpt_proc_reopen_self_fd(int fd, int flags) __must_check;
int ckpt_proc_stat_exe(const struct ckpt_proc *p, struct stat *ret) __must_check;
int ckpt_proc_stat_map_file(const struct ckpt_proc *p, uint64_t start, uint64_t end,
			    struct stat *ret) __must_check;

/* ---- a thread that does not stop ---- */

/*
 * The kernel function a sleeping task waits in (wchan of ROOT/PID or
 * ROOT/PID/task/TID), e.g. "fuse_wait_answer"; "" when it runs or the
 * kernel hides it. At most @len - 1 bytes.
 */
int ckpt_proc_read_wchan(const struct ckpt_proc *p, char *buf, size_t len) __must_check;
/*
 * The system call a blocked task is in (the first number of
 * /proc/PID/task/TID/syscall): >= 0 its number, -1 not in a system call.
 * -EAGAIN: the task runs ("running"); -EPERM/-EACCES: not allowed to look.
 */
int ckpt_proc_read_syscall(const struct ckpt_proc *p, long *ret) __must_check;
int ckpt_proc_parse_syscall(const char *text, long *ret) __must_check;

/* ---- the rest ---- */

/* auxv as (type, value) pairs up to and including AT_NULL. */
int ckpt_proc_read_auxv(const struct ckpt_proc *p, uint64_t **ret, size_t *ret_nr_words) __must_check;
int ckpt_proc_read_exe(const struct ckpt_proc *p, char **ret) __must_check;
int ckpt_proc_read_cwd(const struct ckpt_proc *p, char **ret) __must_check;
int ckpt_proc_read_root(const struct ckpt_proc *p, char **ret) __must_check;
/*
 * timer_slack_ns of one thread, in ns. Only ROOT/TID has the file (a handle
 * from ckpt_proc_open() with the thread id), not ROOT/PID/task/TID. Reading
 * or writing another task's needs CAP_SYS_NICE (-EPERM). The kernel keeps 0
 * for a realtime or deadline thread and ignores writes to it; writing 0
 * sets the task's default (what its parent had when it was forked).
 */
int ckpt_proc_read_timerslack(const struct ckpt_proc *p, uint64_t *ret) __must_check;
int ckpt_proc_write_timerslack(const struct ckpt_proc *p, uint64_t ns) __must_check;
/* /proc/PID/personality as a number. */
int ckpt_proc_read_personality(const struct ckpt_proc *p, unsigned long *ret) __must_check;
/* Open /proc/PID/mem, /proc/PID/pagemap (@flags: O_RDONLY/O_RDWR). */
int ckpt_proc_open_mem(const struct ckpt_proc *p, int flags) __must_check;
int ckpt_proc_open_pagemap(const struct ckpt_proc *p) __must_check;
/* Write "4" to clear_refs: clear the soft-dirty bits (when the kernel has them). */
int ckpt_proc_clear_soft_dirty(const struct ckpt_proc *p) __must_check;
/* /proc/sys/... value of the host, e.g. "kernel/pid_max". */
int ckpt_proc_read_sysctl(const char *root, const char *name, char **ret) __must_check;
/* Write a /proc/sys value of the host ("kernel/shm_next_id"). */
int ckpt_proc_write_sysctl(const char *root, const char *name, const char *value) __must_check;
/*
 * The process holding a flock(2) on the file @dev/@ino, from ROOT/locks
 * (the one that took it: a lock inherited across fork is shown under its
 * taker). -ENOENT if none is listed.
 */
int ckpt_proc_flock_holder(const char *root, dev_t dev, ino_t ino, pid_t *ret) __must_check;
int ckpt_proc_parse_flock_holder(const char *text, dev_t dev, ino_t ino, pid_t *ret) __must_check;
/*
 * /proc/PID/cmdline as a NULL-terminated argv, one allocation (free() it);
 * -ENOENT when empty (a kernel thread, a zombie).
 */
int ckpt_proc_read_argv(const struct ckpt_proc *p, char ***ret) __must_check;

/* One System V shared memory segment of the caller's IPC namespace (/proc/sysvipc/shm). */
struct ckpt_sysv_shm {
	int32_t key;
	int shmid;
	uint32_t perms;          /* mode bits, SHM_DEST (01000) when removed but still attached */
	uint64_t size;
	uint32_t uid, gid, cuid, cgid;
	uint64_t nattch;
};
/* Every segment; @ret (owned by the caller, free()) may be NULL when there is none. */
int ckpt_proc_read_sysv_shm(const char *root, struct ckpt_sysv_shm **ret, size_t *ret_nr) __must_check;
int ckpt_proc_parse_sysv_shm(const char *text, struct ckpt_sysv_shm **ret, size_t *ret_nr) __must_check;

/*
 * Open the object mapped at [start, end) (a file, memfd or shared anonymous
 * memory) through /proc/PID/map_files; needs CAP_CHECKPOINT_RESTORE or
 * CAP_SYS_ADMIN. Works for deleted files too.
 */
int ckpt_proc_open_map_file(const struct ckpt_proc *p, uint64_t start, uint64_t end,
			    int flags) __must_check;

#endif
