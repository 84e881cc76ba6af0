/* SPDX-License-Identifier: MIT */
/*
 * Wrappers for system calls glibc 2.36 does not wrap, and ptrace requests
 * and structures newer than the 6.1 headers. Each returns the raw libc
 * convention (-1 and errno) like the calls it stands for.
 */
#ifndef CKPT_COMPAT_SYSCALLS_H
#define CKPT_COMPAT_SYSCALLS_H

#include <linux/sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f /* Linux 5.13 */
#endif
/*
 * struct ptrace_rseq_configuration lives in <linux/ptrace.h>, which cannot be
 * included together with glibc's <sys/ptrace.h>: same layout, our name.
 */
struct ckpt_rseq_configuration {
	__u64 rseq_abi_pointer;
	__u32 rseq_abi_size;
	__u32 signature;
	__u32 flags;
	__u32 pad;
};

#ifndef PTRACE_SET_SYSCALL_INFO
#define PTRACE_SET_SYSCALL_INFO 0x4212 /* Linux 6.16 */
#endif

/* Per-mm prctls newer than the 6.1 headers. */
#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65 /* Linux 6.3 */
#define PR_GET_MDWE 66
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN (1UL << 0)
#endif
#ifndef PR_MDWE_NO_INHERIT
#define PR_MDWE_NO_INHERIT (1UL << 1) /* Linux 6.6 */
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67 /* Linux 6.4 */
#define PR_GET_MEMORY_MERGE 68
#endif
#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1) /* Linux 6.18 */
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#define MADV_GUARD_REMOVE 103
#endif

#ifndef CLONE_ARGS_SIZE_VER2
#define CLONE_ARGS_SIZE_VER2 88
#endif

static inline int sys_userfaultfd(int flags)
{
	return (int)syscall(SYS_userfaultfd, flags);
}

static inline int sys_pidfd_open(pid_t pid, unsigned int flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static inline int sys_pidfd_getfd(int pidfd, int targetfd, unsigned int flags)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, targetfd, flags);
}

static inline int sys_pidfd_send_signal(int pidfd, int sig, siginfo_t *info,
					unsigned int flags)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags);
}

static inline long sys_clone3(struct clone_args *args, size_t size)
{
	return syscall(SYS_clone3, args, size);
}

static inline int sys_kcmp(pid_t pid1, pid_t pid2, int type, unsigned long idx1,
			   unsigned long idx2)
{
	return (int)syscall(SYS_kcmp, pid1, pid2, type, idx1, idx2);
}

#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif

#ifndef SCHED_EXT
#define SCHED_EXT 7 /* Linux 6.12, sched_ext */
#endif
/*
 * struct sched_attr of <linux/sched/types.h> (SCHED_ATTR_SIZE_VER1), under
 * our name: glibc 2.41 and later define their own.
 */
struct ckpt_sched_attr {
	__u32 size;
	__u32 sched_policy;
	__u64 sched_flags;
	__s32 sched_nice;
	__u32 sched_priority;
	__u64 sched_runtime;
	__u64 sched_deadline;
	__u64 sched_period;
	__u32 sched_util_min;
	__u32 sched_util_max;
};

static inline int sys_sched_getattr(pid_t pid, struct ckpt_sched_attr *attr, unsigned int flags)
{
	return (int)syscall(SYS_sched_getattr, pid, attr, (unsigned int)sizeof(*attr), flags);
}

static inline int sys_sched_setattr(pid_t pid, struct ckpt_sched_attr *attr, unsigned int flags)
{
	attr->size = sizeof(*attr);
	return (int)syscall(SYS_sched_setattr, pid, attr, flags);
}

#endif
