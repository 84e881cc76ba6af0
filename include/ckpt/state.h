/* SPDX-License-Identifier: MIT */
/*
 * lib/state: the description of a process that `ckpt dump` collects and
 * `ckpt restore` consumes: threads, process attributes, memory layout and
 * file descriptors (not the memory contents). Plain structs, filled by
 * lib/dump (ckpt_dump_collect) or parsed from JSON, and written as four JSON
 * documents: process.json, threads.json, mm.json, files.json (docs/STATE.md
 * describes every field).
 *
 * Pure code: no ptrace, no /proc, no files. The JSON parsers never log; they
 * return -EBADMSG for anything malformed (wrong type, missing field, value
 * out of range, inconsistent documents), -EPROTONOSUPPORT for a document
 * version this code does not know, and say what and where in @why.
 *
 * In JSON every value whose C type is uint64_t is a string "0x" followed by
 * 1 to 16 lowercase hex digits (exact, and safe from readers that turn
 * numbers into doubles); everything narrower is a JSON number. A path or
 * name whose bytes are not valid UTF-8 is written as {"base64": "..."}.
 */
#ifndef CKPT_STATE_H
#define CKPT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include <ckpt/state_fdkinds.h>
#include <ckpt/state_sockets.h>
#include <ckpt/util.h>

struct json_object;

#define CKPT_STATE_VERSION 1
#define CKPT_STATE_NSIG 64         /* signals 1..64 */
#define CKPT_STATE_NR_RLIMITS 16   /* RLIMIT_CPU .. RLIMIT_RTTIME */
#define CKPT_STATE_SIGINFO_SIZE 128 /* sizeof(siginfo_t) */
#define CKPT_STATE_COMM_LEN 64     /* TASK_COMM_LEN is 16; room for the future */

/* ---- identities ---- */

/* Who a file is: the fields of stat(2) that identify it and tell a change. */
struct ckpt_state_identity {
	unsigned int dev_major, dev_minor;   /* st_dev */
	uint64_t ino;
	uint32_t mode;                       /* st_mode, type bits included */
	uint64_t size;
	int64_t mtime_sec;
	uint32_t mtime_nsec;                 /* < 1000000000 */
	unsigned int rdev_major, rdev_minor; /* st_rdev: devices only, else 0 */
};

/* A signal queued for delivery: the siginfo_t as the kernel holds it. */
struct ckpt_state_siginfo {
	int signo;                           /* == si_signo in raw, 1..64 */
	int code;                            /* == si_code in raw */
	uint8_t raw[CKPT_STATE_SIGINFO_SIZE];
};

/* ---- threads (threads.json) ---- */

struct ckpt_state_rseq {
	uint64_t ptr;                        /* 0: not registered */
	uint32_t len, sig, flags;
};

/*
 * How one thread is scheduled (sched_getattr(2), nice, per task in Linux).
 * @policy is a SCHED_* value without SCHED_RESET_ON_FORK, which is
 * @reset_on_fork.
 */
struct ckpt_state_sched {
	int policy;                          /* SCHED_OTHER 0, FIFO 1, RR 2, BATCH 3, IDLE 5, DEADLINE 6, EXT 7 */
	bool reset_on_fork;
	int priority;                        /* rt priority: 1..99 for FIFO and RR, else 0 */
	int nice;                            /* -20..19, kept for every policy */
	/* SCHED_DEADLINE only (else 0): in ns, and SCHED_FLAG_RECLAIM | SCHED_FLAG_DL_OVERRUN. */
	uint64_t dl_runtime, dl_deadline, dl_period;
	unsigned int dl_flags;
};

#define CKPT_STATE_NR_SCHED_POLICIES 8       /* SCHED_* < 8 */

/* One seccomp BPF filter (PTRACE_SECCOMP_GET_FILTER): classic BPF, 8 bytes an instruction. */
struct ckpt_state_seccomp_filter {
	size_t len;                          /* instructions, 1..4096 (BPF_MAXINSNS) */
	uint64_t *insns;                     /* struct sock_filter[len] */
	uint32_t flags;                      /* SECCOMP_FILTER_FLAG_LOG (PTRACE_SECCOMP_GET_METADATA) */
};

struct ckpt_state_thread {
	pid_t tid;
	char comm[CKPT_STATE_COMM_LEN];      /* the thread's own name */
	struct user_regs_struct regs;        /* all of them, fs_base/gs_base/orig_rax too */
	void *xstate;                        /* NT_X86_XSTATE image; NULL if not saved */
	size_t xstate_len;
	uint64_t sigmask;                    /* blocked signals, bit n-1 = signal n */
	uint64_t sigpending;                 /* private pending set (SigPnd), incl. info-less ones */
	bool in_syscall;                     /* stopped inside a system call */
	struct ckpt_state_rseq rseq;
	uint64_t robust_list_head, robust_list_len;
	uint64_t clear_child_tid;            /* set_tid_address() / CLONE_CHILD_CLEARTID */
	uint64_t altstack_sp, altstack_size; /* sigaltstack */
	int altstack_flags;                  /* SS_DISABLE, SS_ONSTACK, SS_AUTODISARM */
	size_t nr_pending;                   /* thread-private queued signals, in queue order */
	struct ckpt_state_siginfo *pending;
	/* Absent from images made before they were saved: restore leaves them as they are. */
	bool has_sched;
	struct ckpt_state_sched sched;
	bool has_timerslack;                 /* also false when the dump could not read it */
	uint64_t timerslack_ns;              /* timer slack; 0 for realtime and deadline threads */
	/*
	 * Per thread in Linux too; absent (has_* false) from older images:
	 * restore then leaves them as the new thread has them.
	 */
	bool has_ioprio;
	int ioprio;                          /* ioprio_get(IOPRIO_WHO_PROCESS, tid) */
	bool has_pdeathsig;
	int pdeathsig;                       /* PR_GET_PDEATHSIG: 0 or a signal */
	/*
	 * Stopped in restart_syscall(2) (a sleep interrupted before, by a
	 * stop or an earlier dump): the call it continues, read from the code
	 * before the syscall instruction (mov $NR, %eax); false: not known.
	 */
	bool has_restart_nr;
	int restart_nr;
	bool has_seccomp;
	int seccomp_mode;                    /* CKPT_STATE_SECCOMP_*, of this thread */
	size_t nr_seccomp_filters;           /* filter mode: its filters, the oldest first */
	struct ckpt_state_seccomp_filter *seccomp_filters;
};

/* ---- the process (process.json) ---- */

struct ckpt_state_rlimit {
	uint64_t cur, max;                   /* RLIM_INFINITY is 0xffffffffffffffff */
};

/* rt_sigaction(2) as the kernel stores it (struct kernel_sigaction). */
struct ckpt_state_sigaction {
	uint64_t handler;                    /* 0 SIG_DFL, 1 SIG_IGN, else an address */
	uint64_t flags;                      /* SA_*, SA_RESTORER included */
	uint64_t restorer;
	uint64_t mask;
};

struct ckpt_state_itimer {
	int64_t interval_sec, interval_usec;
	int64_t value_sec, value_usec;       /* time left when collected */
};

enum { CKPT_STATE_ITIMER_REAL = 0, CKPT_STATE_ITIMER_VIRTUAL, CKPT_STATE_ITIMER_PROF,
       CKPT_STATE_NR_ITIMERS };

struct ckpt_state_creds {
	uid_t uid[4];                        /* real, effective, saved, filesystem */
	gid_t gid[4];
	size_t nr_groups;                    /* supplementary groups */
	gid_t *groups;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	uint32_t securebits;                 /* PR_GET_SECUREBITS */
};

/* seccomp mode of /proc/PID/status */
enum { CKPT_STATE_SECCOMP_NONE = 0, CKPT_STATE_SECCOMP_STRICT = 1, CKPT_STATE_SECCOMP_FILTER = 2 };

struct ckpt_state_process {
	pid_t pid, ppid, pgid, sid;
	uint64_t start_time;                 /* clock ticks after boot (stat field 22) */
	char comm[CKPT_STATE_COMM_LEN];      /* of the thread-group leader */
	char *exe;                           /* path, " (deleted)" removed */
	bool exe_deleted;
	struct ckpt_state_identity exe_id;
	char *cwd, *root;
	uint32_t umask;
	uint32_t personality;
	struct ckpt_state_rlimit rlimits[CKPT_STATE_NR_RLIMITS]; /* indexed by RLIMIT_* */
	struct ckpt_state_creds creds;
	bool no_new_privs;
	int dumpable;                        /* PR_GET_DUMPABLE: 0, 1, 2 */
	int seccomp;                         /* CKPT_STATE_SECCOMP_* of the thread collected first */
	bool child_subreaper;                /* PR_GET_CHILD_SUBREAPER (false in older images) */
	bool job_stopped;                    /* stopped by job control when collected */
	struct ckpt_state_sigaction sigactions[CKPT_STATE_NSIG]; /* [n-1] is signal n */
	uint64_t shared_sigpending;          /* ShdPnd: shared pending set */
	size_t nr_shared_pending;            /* shared queued signals, in queue order */
	struct ckpt_state_siginfo *shared_pending;
	struct ckpt_state_itimer itimers[CKPT_STATE_NR_ITIMERS];
};

/* ---- the memory layout (mm.json) ---- */

enum ckpt_state_vma_kind {
	CKPT_STATE_VMA_ANON = 0,     /* private anonymous ([anon:NAME]: name set) */
	CKPT_STATE_VMA_FILE,         /* a file: path, identity */
	CKPT_STATE_VMA_HEAP,         /* [heap] */
	CKPT_STATE_VMA_STACK,        /* [stack] */
	CKPT_STATE_VMA_VDSO,
	CKPT_STATE_VMA_VVAR,
	CKPT_STATE_VMA_VVAR_VCLOCK,
	CKPT_STATE_VMA_VSYSCALL,
	CKPT_STATE_VMA_SHMEM_ANON,   /* MAP_SHARED|MAP_ANONYMOUS ([anon_shmem:NAME]: name set) */
	CKPT_STATE_VMA_MEMFD,        /* a memfd: path "/memfd:NAME" */
	CKPT_STATE_VMA_SYSV_SHM,     /* shmat(2): path "/SYSV%08x" */
	CKPT_STATE_VMA_SPECIAL,      /* any other [NAME]: name set */
	CKPT_STATE_NR_VMA_KINDS,
};

/* VmFlags of smaps that matter to restore. */
enum {
	CKPT_STATE_VMF_DONTDUMP = 1u << 0,     /* MADV_DONTDUMP */
	CKPT_STATE_VMF_DONTCOPY = 1u << 1,     /* MADV_DONTFORK */
	CKPT_STATE_VMF_DONTEXPAND = 1u << 2,
	CKPT_STATE_VMF_WIPEONFORK = 1u << 3,   /* MADV_WIPEONFORK */
	CKPT_STATE_VMF_HUGEPAGE = 1u << 4,     /* MADV_HUGEPAGE */
	CKPT_STATE_VMF_NOHUGEPAGE = 1u << 5,   /* MADV_NOHUGEPAGE */
	CKPT_STATE_VMF_HUGETLB = 1u << 6,
	CKPT_STATE_VMF_LOCKED = 1u << 7,       /* mlock */
	CKPT_STATE_VMF_MERGEABLE = 1u << 8,    /* MADV_MERGEABLE (KSM) */
	CKPT_STATE_VMF_GROWSDOWN = 1u << 9,
	CKPT_STATE_VMF_UFFD_MISSING = 1u << 10, /* registered with a userfaultfd: */
	CKPT_STATE_VMF_UFFD_WP = 1u << 11,     /*   ckpt's own tracker, or the */
	CKPT_STATE_VMF_UFFD_MINOR = 1u << 12,  /*   application's (then its uffd fd is listed) */
	CKPT_STATE_VMF_IO = 1u << 13,          /* VM_IO: not restorable (but vvar) */
	CKPT_STATE_VMF_PFNMAP = 1u << 14,      /* VM_PFNMAP: not restorable (but vvar) */
	CKPT_STATE_VMF_MIXEDMAP = 1u << 15,
	CKPT_STATE_VMF_SEALED = 1u << 16,      /* mseal(2) */
	CKPT_STATE_VMF_SHADOW_STACK = 1u << 17,
	CKPT_STATE_VMF_SEQ_READ = 1u << 18,    /* MADV_SEQUENTIAL */
	CKPT_STATE_VMF_RAND_READ = 1u << 19,   /* MADV_RANDOM */
	CKPT_STATE_VMF_MAYWRITE = 1u << 20,    /* VM_MAYWRITE: a shared file map whose fd was writable */
	CKPT_STATE_VMF_LOCKONFAULT = 1u << 21, /* mlock2(MLOCK_ONFAULT), mlockall(MCL_ONFAULT) */
	CKPT_STATE_VMF_GUARD = 1u << 22,       /* MADV_GUARD_INSTALL was used in it (mm.guards) */
	CKPT_STATE_NR_VMF = 23,
};

struct ckpt_state_vma {
	uint64_t start, end;                 /* [start, end), page-aligned */
	int prot;                            /* PROT_READ | PROT_WRITE | PROT_EXEC */
	bool shared;                         /* MAP_SHARED ('s' in maps) */
	enum ckpt_state_vma_kind kind;
	uint64_t offset;                     /* file offset in bytes */
	char *path;                          /* FILE, MEMFD, SYSV_SHM; " (deleted)" removed */
	char *name;                          /* ANON/SHMEM_ANON with a name, SPECIAL; else NULL */
	bool deleted;
	/*
	 * FILE, MEMFD, SYSV_SHM and SHMEM_ANON have an identity: mappings (and
	 * fds) with the same dev and ino are the same object, to be shared again
	 * by restore.
	 */
	bool has_identity;
	struct ckpt_state_identity id;
	uint32_t vmflags;                    /* CKPT_STATE_VMF_* */
	/*
	 * FILE that was deleted (a ghost file): the checkpoint file that holds
	 * its contents, exactly id.size bytes, the same blob as every fd and
	 * mapping of the same object; NULL when not saved (over --ghost-limit,
	 * an older image: a private one is then saved in full as anonymous
	 * memory, a shared one is not restorable).
	 */
	char *blob;
	void *blob_data;                     /* dump only, never in JSON: as ckpt_state_fd's */
	/*
	 * Why the dump refused it, in its words (a size, a limit), or NULL:
	 * ckpt_state_unrestorable() says it instead of its own, as for fds.
	 */
	char *reason;
};

/* A System V shared memory segment the process has attached (shmat). */
struct ckpt_state_sysv_shm {
	int shmid;                           /* the inode of its mappings; made again with this id */
	int32_t key;                         /* 0: IPC_PRIVATE */
	uint32_t mode;                       /* permission bits (0777) */
	uint64_t size;                       /* bytes, as shmget was given */
	uint32_t uid, gid, cuid, cgid;
	bool removed;                        /* IPC_RMID done (SHM_DEST): gone once nobody has it attached */
};

struct ckpt_state_mm {
	uint64_t start_code, end_code, start_data, end_data;
	uint64_t start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	size_t nr_auxv;                      /* (type, value) pairs, AT_NULL last */
	uint64_t (*auxv)[2];
	size_t nr_vmas;                      /* ascending, not overlapping */
	struct ckpt_state_vma *vmas;
	/*
	 * System V segments its mappings attach (kind SYSV_SHM, id.ino the
	 * shmid), ascending shmid; none in older images: such mappings are not
	 * restorable there.
	 */
	size_t nr_sysv_shm;
	struct ckpt_state_sysv_shm *sysv_shm;
	/* Guard regions (MADV_GUARD_INSTALL): [start, end) pairs, ascending. */
	size_t nr_guards;
	uint64_t (*guards)[2];
	/*
	 * Per-mm settings; each has_* false when the image does not say
	 * (older images): restore then leaves the kernel's default.
	 */
	bool has_thp_disable, has_memory_merge, has_mdwe, has_membarrier;
	int thp_disable;                     /* PR_GET_THP_DISABLE: 0, 1, or 1|2 (except advised) */
	bool memory_merge;                   /* PR_GET_MEMORY_MERGE: KSM for every mapping */
	int mdwe;                            /* PR_GET_MDWE: PR_MDWE_* */
	uint32_t membarrier;                 /* CKPT_STATE_MEMBARRIER_* registrations */
};

/* membarrier(2) registrations of the mm (probed: they cannot be read). */
enum {
	CKPT_STATE_MEMBARRIER_PRIVATE_EXPEDITED = 1u << 0,
	CKPT_STATE_MEMBARRIER_PRIVATE_EXPEDITED_SYNC_CORE = 1u << 1,
	CKPT_STATE_MEMBARRIER_PRIVATE_EXPEDITED_RSEQ = 1u << 2,
	CKPT_STATE_NR_MEMBARRIER = 3,
};

/* ---- file descriptors (files.json) ---- */

enum ckpt_state_fd_kind {
	CKPT_STATE_FD_REGULAR = 0,
	CKPT_STATE_FD_DIRECTORY,
	CKPT_STATE_FD_CHR,           /* a character device that is not a tty */
	CKPT_STATE_FD_BLK,
	CKPT_STATE_FD_PIPE,
	CKPT_STATE_FD_FIFO,
	CKPT_STATE_FD_SOCKET,
	CKPT_STATE_FD_TTY,
	CKPT_STATE_FD_MEMFD,
	CKPT_STATE_FD_EVENTFD,
	CKPT_STATE_FD_EPOLL,
	CKPT_STATE_FD_SIGNALFD,
	CKPT_STATE_FD_TIMERFD,
	CKPT_STATE_FD_INOTIFY,
	CKPT_STATE_FD_FANOTIFY,
	CKPT_STATE_FD_USERFAULTFD,
	CKPT_STATE_FD_PIDFD,
	CKPT_STATE_FD_ANON_INODE,    /* any other anon_inode:[...] */
	CKPT_STATE_FD_UNKNOWN,
	CKPT_STATE_NR_FD_KINDS,
};

struct ckpt_state_fd {
	int fd;
	bool cloexec;
	enum ckpt_state_fd_kind kind;
	uint32_t flags;                      /* O_* of fdinfo, without O_CLOEXEC */
	uint64_t pos;
	int mnt_id;
	char *path;                          /* readlink of /proc/PID/fd/N, " (deleted)" removed */
	bool deleted;
	struct ckpt_state_identity id;       /* stat of the open file; pipes: ino is the pipe's */
	bool restorable;
	char *reason;                        /* why not: set exactly when !restorable */
	char *fdinfo;                        /* the kind-specific lines of fdinfo, or NULL */
	/* kind-specific */
	bool ctty;                           /* TTY: it is the controlling terminal */
	uint64_t eventfd_count;              /* EVENTFD */
	bool eventfd_semaphore;
	struct ckpt_state_socket sock;       /* SOCKET (state_sockets.h) */
	/*
	 * PIPE, FIFO: bytes that waited in the pipe's buffer at the dump
	 * (FIONREAD). They are not saved; 0 in images older than this field.
	 */
	uint64_t pipe_queued;
	/*
	 * REGULAR that was deleted (a ghost file) and MEMFD: the checkpoint
	 * file that holds its contents, exactly id.size bytes; NULL when not
	 * saved (a memfd that a shared mapping holds, an older image). fds of
	 * the same object name the same file.
	 */
	char *blob;
	/*
	 * The bytes of @blob between collection and the writing of the
	 * checkpoint (dump only, never in JSON); NULL in the fds that share
	 * another fd's blob.
	 */
	void *blob_data;
	/* MEMFD: F_GET_SEALS (F_SEAL_*), when has_seals; applied after the contents. */
	bool has_seals;
	uint32_t seals;
	struct ckpt_state_fdkind k;          /* SIGNALFD, TIMERFD, INOTIFY, EPOLL (state_fdkinds.h) */
};

/* ---- the whole ---- */

struct ckpt_state {
	struct ckpt_state_process process;
	size_t nr_threads;                   /* >= 1; the leader first when it lives */
	struct ckpt_state_thread *threads;
	struct ckpt_state_mm mm;
	size_t nr_fds;                       /* ascending fd numbers */
	struct ckpt_state_fd *fds;
};

/* A zeroed state; everything inside is owned by it and freed by ckpt_state_free(). */
int ckpt_state_new(struct ckpt_state **ret) __must_check;
void ckpt_state_free(struct ckpt_state *s);
CKPT_DEFINE_CLEANUP(struct ckpt_state, ckpt_state_free)
#define _cleanup_state_ _cleanup_(ckpt_state_freep)

/* "anon", "file", ... as in JSON; "unknown" out of range. */
const char *ckpt_state_vma_kind_name(enum ckpt_state_vma_kind kind);
const char *ckpt_state_fd_kind_name(enum ckpt_state_fd_kind kind);
/* "nofile", "core", ... for RLIMIT_*; NULL out of range. */
const char *ckpt_state_rlimit_name(int resource);
/* "other", "fifo", "rr", "batch", "idle", "deadline", "ext" for SCHED_*; NULL for others. */
const char *ckpt_state_sched_policy_name(int policy);
/*
 * Set @fd->restorable and @fd->reason from its kind, path, deleted flag and
 * device numbers, by the current policy: regular files and directories that
 * still exist, /dev/{null,zero,full,random,urandom}, ttys, pipes, fifos and
 * memfds are restorable; anything else is "not restorable yet: <why>".
 */
int ckpt_state_fd_judge(struct ckpt_state_fd *fd) __must_check;
/*
 * The same for an fd of process @pid: a file of its own /proc directory
 * (/proc/PID/..., the main thread's /proc/PID/task/PID/...) is restorable,
 * reopened in the restored process's. ckpt_state_fd_judge() is this with
 * no pid: every /proc/PID is another process's.
 */
int ckpt_state_fd_judge_for(struct ckpt_state_fd *fd, int pid) __must_check;
/*
 * If @path is in the /proc directory of process @pid (/proc/PID/...,
 * /proc/self/..., /proc/thread-self/... count as its own), the rest after
 * that directory ("" or "/status"); NULL otherwise.
 */
const char *ckpt_state_proc_own_rest(const char *path, int pid);
/*
 * Mappings and fds with equal identities (dev + ino) are the same object,
 * except for anon_inode fds (eventfd, epoll, ...): they all share one inode.
 */
bool ckpt_state_same_object(const struct ckpt_state_identity *a,
			    const struct ckpt_state_identity *b);
/*
 * The other end of pipe fd @f in @s (the same pipe, the other access
 * mode), or NULL when it is outside the process.
 */
const struct ckpt_state_fd *ckpt_state_pipe_peer(const struct ckpt_state *s,
						 const struct ckpt_state_fd *f);
/*
 * How restore makes a mapping again. Anon-backed: private anonymous memory
 * with all its contents in the images (anon, heap, stack, private mappings
 * of memfds, and of deleted files whose contents are not saved: with a
 * blob, a deleted file is mapped from the file made again). Shm: one
 * shared memory object made again for every mapping (and fd) of it (shared
 * anonymous memory, shared memfd mappings). Other file mappings are mapped from their file; the vDSO trio
 * and vsyscall are the kernel's. Anything else restore cannot make.
 */
bool ckpt_state_vma_anon_backed(const struct ckpt_state_vma *v);
bool ckpt_state_vma_shm(const struct ckpt_state_vma *v);
/* A shared memory mapping (ckpt_state_vma_shm) of the object @id exists in @s. */
bool ckpt_state_shm_mapped(const struct ckpt_state *s, const struct ckpt_state_identity *id);
/* The record of the System V segment @shmid in @mm, or NULL. */
const struct ckpt_state_sysv_shm *ckpt_state_sysv_shm_find(const struct ckpt_state_mm *mm, int shmid);

/* ---- JSON ---- */

enum ckpt_state_doc {
	CKPT_STATE_DOC_PROCESS = 0,  /* process.json */
	CKPT_STATE_DOC_THREADS,      /* threads.json */
	CKPT_STATE_DOC_MM,           /* mm.json */
	CKPT_STATE_DOC_FILES,        /* files.json */
	CKPT_STATE_NR_DOCS,
};

/* "process.json", ...: the file name of a document; NULL out of range. */
const char *ckpt_state_doc_name(enum ckpt_state_doc doc);
/* The section name of a document in the combined object: "process", ... */
const char *ckpt_state_doc_section(enum ckpt_state_doc doc);

/* One document as a new JSON object (the caller puts it). */
int ckpt_state_doc_to_json(const struct ckpt_state *s, enum ckpt_state_doc doc,
			   struct json_object **ret) __must_check;
/* All four in one object: {"process": {...}, "threads": {...}, "mm": {...}, "files": {...}}. */
int ckpt_state_to_json(const struct ckpt_state *s, struct json_object **ret) __must_check;

/*
 * Parse the four documents, indexed by enum ckpt_state_doc (borrowed, not
 * put). Every one is required and they must describe the same pid.
 */
int ckpt_state_from_docs(struct json_object *const docs[CKPT_STATE_NR_DOCS], char *why,
			 size_t whylen, struct ckpt_state **ret) __must_check;
/*
 * The same with mm.json as its text (@mm_text, @mm_len bytes, checksum
 * verified by the caller; docs[CKPT_STATE_DOC_MM] unused), without a JSON
 * object per mapping: 30000 mappings are 9 MB of it. -EAGAIN, with
 * nothing said, when the text is not in the form ckpt writes or holds
 * anything wrong: parse it as JSON and call ckpt_state_from_docs(), which
 * says what is wrong. A success is what ckpt_state_from_docs() makes of
 * the same text; other errors are said as there.
 */
int ckpt_state_from_docs_mm_text(struct json_object *const docs[CKPT_STATE_NR_DOCS], const char *mm_text,
				 size_t mm_len, char *why, size_t whylen, struct ckpt_state **ret) __must_check;
/* Parse the combined object of ckpt_state_to_json(). */
int ckpt_state_from_json(struct json_object *obj, char *why, size_t whylen,
			 struct ckpt_state **ret) __must_check;

/* ---- what restore cannot recreate ---- */

enum ckpt_state_issue_kind {
	CKPT_STATE_ISSUE_FD = 0,     /* fd: a file descriptor */
	CKPT_STATE_ISSUE_VMA,        /* start, end: a mapping */
	CKPT_STATE_ISSUE_PROCESS,    /* the process as a whole (seccomp filters, threads, cwd, root) */
};

struct ckpt_state_issue {
	enum ckpt_state_issue_kind kind;
	int fd;
	uint64_t start, end;
	char *what;                          /* "fd 7 (socket:[1234])", "mapping 7f..-7f.. (/dev/x)" */
	char *reason;                        /* "not restorable yet: a socket" */
};

struct ckpt_state_issues {
	size_t nr;
	struct ckpt_state_issue *v;
};

/*
 * The one judge of what restore cannot recreate, on the checkpoint's
 * content alone: ckpt dump refuses by it in the freeze, ckpt restore
 * refuses by it before it creates anything (restore checks on its own only
 * what depends on the machine it runs on: files changed since, the pid
 * taken, the vDSO's shape). In the order: process (seccomp filters, a
 * main thread that has exited, a /proc working or root directory), mappings
 * (device, System V, special, shared of a deleted file, a kind restore
 * cannot make), fds (by the policy of ckpt_state_fd_judge() as it is now, a
 * refusal recorded in the checkpoint, a memfd with contents that neither a
 * shared mapping nor a saved blob holds).
 */
int ckpt_state_unrestorable(const struct ckpt_state *s, struct ckpt_state_issues **ret) __must_check;
void ckpt_state_issues_free(struct ckpt_state_issues *l);
CKPT_DEFINE_CLEANUP(struct ckpt_state_issues, ckpt_state_issues_free)

#endif
