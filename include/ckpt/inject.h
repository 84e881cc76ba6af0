/* SPDX-License-Identifier: MIT */
/*
 * lib/inject: run system calls inside a live process and leave it exactly as
 * it was (the shape of CRIU's compel).
 *
 * ckpt_inject_seize() stops every thread of a process with PTRACE_SEIZE +
 * PTRACE_INTERRUPT and saves each thread's registers, FPU/xstate and signal
 * mask. While seized, remote system calls run in a chosen thread from a
 * `syscall` instruction planted in the unused tail of the vDSO (or, if there
 * is no room, borrowed from its code), resumed with PTRACE_SYSCALL, with
 * every signal blocked in that thread so nothing arriving meanwhile is lost:
 * it stays pending. After each call the thread's own mask and registers are
 * back. ckpt_inject_release() unmaps scratch memory, clears the vDSO tail,
 * restores registers and masks (a thread interrupted in a blocking system
 * call restarts it with its original deadline) and detaches. A process that
 * was stopped (SIGSTOP) stays stopped.
 *
 * ckpt's own SIGINT, SIGTERM, SIGHUP and SIGQUIT are blocked in the calling
 * thread from seize to release, so they take effect only once the target
 * runs again. SIGKILL of ckpt cannot be deferred: the kernel then detaches
 * the target as it is. Between calls that is its own state; a call in
 * flight runs to its end and the stub after the planted instruction puts
 * the thread's own registers and mask back itself. Scratch mappings stay.
 *
 * Not thread-safe: one context is used by one thread.
 */
#ifndef CKPT_INJECT_H
#define CKPT_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include <ckpt/util.h>

struct ckpt_inject;

struct ckpt_thread_state {
	pid_t tid;
	struct user_regs_struct regs; /* includes fs_base and gs_base */
	uint64_t sigmask;             /* blocked signals, bit n-1 = signal n */
	const void *xstate;           /* NT_X86_XSTATE image, NULL with CKPT_INJECT_NO_XSTATE */
	size_t xstate_len;
	bool in_syscall;              /* stopped inside a system call (orig_rax >= 0) */
};

enum {
	/* Do not save FPU/xstate (a freeze that only tracks memory). */
	CKPT_INJECT_NO_XSTATE = 1u << 0,
	/*
	 * The process dies if ckpt does before release (PTRACE_O_EXITKILL):
	 * for a process ckpt is building, never for a target.
	 */
	CKPT_INJECT_EXITKILL = 1u << 1,
	/*
	 * Not for callers: set by seize when ckpt may (CAP_SYS_ADMIN), or by
	 * ckpt_inject_suspend_seccomp(): seccomp does not apply to the
	 * threads until release (PTRACE_O_SUSPEND_SECCOMP).
	 */
	CKPT_INJECT_SUSPEND_SECCOMP = 1u << 2,
	/*
	 * A process that is gone (or exits) before it is seized is no error
	 * of the caller's: -ESRCH without an error message (the children of
	 * a tree come and go).
	 */
	CKPT_INJECT_GONE_OK = 1u << 3,
};

/* How long a seize waits for every thread to stop, as CRIU's --timeout. */
#define CKPT_INJECT_TIMEOUT_MS 10000u

/*
 * Seize and freeze every thread of @pid, waiting at most @timeout_ms (0:
 * CKPT_INJECT_TIMEOUT_MS) for all of them to stop. Errors, each logged with
 * the reason: -ESRCH no such process, a zombie, or it exited while being
 * seized; -EINVAL ckpt itself or a kernel thread; -EBUSY already traced by another
 * process (the message names it); -EPERM not allowed; -ETIMEDOUT a thread
 * did not stop in time, typically one in uninterruptible sleep (D: a hung
 * NFS or FUSE request, a vfork parent): the message names each such thread,
 * its state, the kernel function it waits in and its system call.
 *
 * On any error the process runs on as it was. Every thread that stopped is
 * detached untouched. A thread that never stopped cannot be detached (the
 * kernel detaches only stopped threads): it stays attached to the calling
 * thread, with the interrupt pending. It runs on unhindered while it
 * sleeps; when it wakes it stops for the caller, and is let go by the next
 * seize of the process from the same thread, or when the calling thread
 * exits (the kernel then detaches it and drops the pending interrupt, so
 * it runs on normally, not stopped, not killed).
 */
int ckpt_inject_seize_timeout(pid_t pid, unsigned int flags, unsigned int timeout_ms,
			      struct ckpt_inject **ret) __must_check;
/* The same with the default timeout. */
int ckpt_inject_seize(pid_t pid, unsigned int flags, struct ckpt_inject **ret) __must_check;
/*
 * Before anything else is done to @pid: is it a process a checkpoint can be
 * made of? Logged: -ESRCH no such process or a zombie (an exit status
 * only), -EINVAL a kernel thread (no user memory) or ckpt itself.
 */
int ckpt_inject_check_pid(pid_t pid) __must_check;
/*
 * Undo everything and detach; frees @inj (NULL is fine). Returns the first
 * error met, after having tried every step.
 */
int ckpt_inject_release(struct ckpt_inject *inj);
/*
 * From now on, if the calling thread dies the kernel kills the process
 * (PTRACE_O_EXITKILL on every thread): what a kill mode arms before the
 * first kill of a tree, so that a ckpt killed midway never leaves part of
 * it running.
 */
int ckpt_inject_exitkill(struct ckpt_inject *inj) __must_check;
/* SIGKILL the process (kill mode, once its checkpoint is safe): release then leaves its memory alone. */
void ckpt_inject_kill(struct ckpt_inject *inj);
/*
 * Is every thread still in the stop the seize put it in? -ESRCH from the
 * moment a SIGKILL was sent to it (by anyone), before its exit can have
 * written anything into its memory. Quiet.
 */
int ckpt_inject_check_frozen(const struct ckpt_inject *inj) __must_check;
/*
 * Has the process ended (within @wait_ms: one that was killed may be on
 * its way out)? 1 with its wait status in @ret_status (-1 if unknown; the
 * status is left for its parent to collect), else 0.
 */
int ckpt_inject_ended(const struct ckpt_inject *inj, int wait_ms, int *ret_status) __must_check;
CKPT_DEFINE_CLEANUP(struct ckpt_inject, ckpt_inject_release)
#define _cleanup_inject_ _cleanup_(ckpt_inject_releasep)

pid_t ckpt_inject_pid(const struct ckpt_inject *inj);
/* A pidfd of the target, owned by the context. */
int ckpt_inject_pidfd(const struct ckpt_inject *inj);
/* A pidfd for pidfd_getfd(2): of a live thread when the leader has exited (it has no files). */
int ckpt_inject_files_pidfd(const struct ckpt_inject *inj);
/* Threads that are seized, the thread-group leader first when it lives. */
size_t ckpt_inject_nr_threads(const struct ckpt_inject *inj);
const struct ckpt_thread_state *ckpt_inject_thread(const struct ckpt_inject *inj, size_t idx);
/* Thread ids that were zombies and so were not seized. */
size_t ckpt_inject_nr_zombies(const struct ckpt_inject *inj);
struct ckpt_proc;
/*
 * /proc handle of a live thread of the target (the leader may be a zombie,
 * whose maps and mem are empty): read maps, mem, fds through it.
 */
const struct ckpt_proc *ckpt_inject_task_proc(const struct ckpt_inject *inj);
/* The process was stopped by job control when seized (or became so). */
bool ckpt_inject_job_stopped(const struct ckpt_inject *inj);

/*
 * Run system call @nr with @args in thread @thread (an index as above).
 * Returns 0 when the call ran: its result, possibly -errno, is in
 * *@ret_result. Returns -errno when it could not be run (-ESRCH: the thread
 * died).
 */
int ckpt_inject_syscall(struct ckpt_inject *inj, size_t thread, long nr, const uint64_t args[6],
			int64_t *ret_result) __must_check;
struct ckpt_inject_call {
	long nr;
	uint64_t args[6];
};
/*
 * Run @n calls one after the other in thread @thread, their results in
 * @ret_results[0..n): cheaper than one by one (the thread is pinned and
 * its mask set once). 0 when all ran (results may be -errno); -errno when
 * one could not be run, the results before it are valid.
 */
int ckpt_inject_syscalls(struct ckpt_inject *inj, size_t thread, const struct ckpt_inject_call *calls,
			 size_t n, int64_t *ret_results) __must_check;
/*
 * The same for a process that dies with ckpt (CKPT_INJECT_EXITKILL): a
 * loop planted in its scratch memory makes up to thousands of calls in one
 * stop, instead of one stop each. It ends at the first call that fails:
 * the results after it are CKPT_INJECT_NOT_RUN. -EOPNOTSUPP without
 * EXITKILL (a process that must survive ckpt's death makes its calls one
 * at a time, from the stub that takes it home).
 */
#define CKPT_INJECT_NOT_RUN INT64_MIN
int ckpt_inject_syscall_loop(struct ckpt_inject *inj, size_t thread, const struct ckpt_inject_call *calls,
			     size_t n, int64_t *ret_results) __must_check;
/* Shorthand on thread 0. */
#define ckpt_inject_call(inj, ret, nr, ...)                                             \
	ckpt_inject_syscall((inj), 0, (nr), (const uint64_t[6]){ __VA_ARGS__ }, (ret))
/*
 * Make remote calls on CPU @cpu (-1: wherever the scheduler likes): the
 * calling thread is pinned to it just for the call and gets its own
 * affinity back right after (if ckpt dies meanwhile, the stub does that
 * too). A thread whose affinity excludes @cpu is not moved. Calls across
 * vCPUs cost 3-4 times more.
 */
void ckpt_inject_set_call_cpu(struct ckpt_inject *inj, int cpu);
/* Use the `syscall` instruction at @addr instead of one found in the vDSO. */
void ckpt_inject_set_syscall_ip(struct ckpt_inject *inj, uint64_t addr);
uint64_t ckpt_inject_syscall_ip(const struct ckpt_inject *inj);

/*
 * Read or write the target's memory: process_vm_readv/writev, and
 * /proc/PID/mem for what they refuse (read-only or PROT_NONE pages).
 * All of @len or an error (-EFAULT: not mapped).
 */
int ckpt_inject_read(struct ckpt_inject *inj, uint64_t addr, void *buf, size_t len) __must_check;
int ckpt_inject_write(struct ckpt_inject *inj, uint64_t addr, const void *buf, size_t len) __must_check;
/* A read-write anonymous mapping in the target, unmapped at release. */
int ckpt_inject_scratch(struct ckpt_inject *inj, size_t len, uint64_t *ret_addr) __must_check;
/*
 * From now on place scratch mappings (this context's own too) one after the
 * other in [addr, addr + len), MAP_FIXED_NOREPLACE. Restore uses it to keep
 * them out of the address range of the process it builds.
 */
/*
 * Forget the scratch mappings made so far without unmapping them: the
 * caller unmaps them itself (restore empties a new process).
 */
void ckpt_inject_forget_scratch(struct ckpt_inject *inj);
void ckpt_inject_set_scratch_area(struct ckpt_inject *inj, uint64_t addr, uint64_t len);
/* True if [start, end) overlaps a scratch mapping of this context. */
bool ckpt_inject_is_scratch(const struct ckpt_inject *inj, uint64_t start, uint64_t end);
/*
 * True if [start, end) lies entirely in scratch memory. Scratch mappings are
 * made MADV_DONTFORK so they do not merge with the program's; still, code
 * that skips scratch skips only what this says, never a whole mapping that
 * merely overlaps it.
 */
bool ckpt_inject_scratch_only(const struct ckpt_inject *inj, uint64_t start, uint64_t end);

/* Take a duplicate of the target's @remote_fd (pidfd_getfd); O_CLOEXEC here. */
int ckpt_inject_take_fd(struct ckpt_inject *inj, int remote_fd, int *ret_fd) __must_check;
/*
 * Install a duplicate of our @local_fd in the target as @remote_fd (or the
 * lowest free number with -1), O_CLOEXEC if @flags has it. Sent over a
 * socket pair made in the target, so it works across namespaces.
 */
int ckpt_inject_put_fd(struct ckpt_inject *inj, int local_fd, int remote_fd, int flags,
		       int *ret_remote_fd) __must_check;
int ckpt_inject_close_fd(struct ckpt_inject *inj, int remote_fd) __must_check;

/*
 * Replace what release puts back into thread @idx: registers, and, when not
 * NULL, the xstate image and the signal mask. Used by restore to start a
 * process in a state of its own choosing.
 */
int ckpt_inject_set_thread_state(struct ckpt_inject *inj, size_t idx,
				 const struct user_regs_struct *regs, const void *xstate,
				 size_t xstate_len, const uint64_t *sigmask) __must_check;

/*
 * In a process ckpt is building (CKPT_INJECT_EXITKILL only): run clone3(2)
 * in thread @thread with the struct clone_args at @args (in the target,
 * @args_len bytes), which must make a thread (CLONE_THREAD). Returns 0 when
 * the call ran, its result in *@ret_result: the new thread's id, or
 * -errno (-EEXIST: a set_tid that is taken). The new thread is stopped,
 * has never run, and is thread *@ret_idx of the context: remote calls run
 * in it; it runs with what set_thread_state gives it once released.
 */
int ckpt_inject_clone_thread(struct ckpt_inject *inj, size_t thread, uint64_t args, size_t args_len,
			     int64_t *ret_result, size_t *ret_idx) __must_check;
/*
 * A new process made by the leader of @inj (EXITKILL only: a process being
 * built): clone3 with the struct clone_args at @args in the target (no
 * CLONE_VM/CLONE_THREAD), attached by the kernel before it runs (ptrace
 * fork events for that call). It is a copy of its creator, stopped, every
 * signal blocked; @ret_child its own context. @ret_result: clone3's result
 * in the leader (the child's pid, or -errno with no child).
 */
int ckpt_inject_clone_process(struct ckpt_inject *inj, uint64_t args, size_t args_len, int64_t *ret_result,
			      struct ckpt_inject **ret_child) __must_check;
/*
 * End the one-thread process of @inj (EXITKILL) so that its parent finds a
 * zombie with @wait_status (an exit code, or a signal without a core dump).
 * Frees @inj, whatever the result.
 */
int ckpt_inject_end(struct ckpt_inject *inj, int wait_status);
/*
 * In a process ckpt is building (CKPT_INJECT_EXITKILL only): seccomp does
 * not apply to any of its threads (PTRACE_O_SUSPEND_SECCOMP) until release,
 * so that filters can be installed before the calls that follow them.
 * Needs CAP_SYS_ADMIN and CONFIG_CHECKPOINT_RESTORE.
 */
int ckpt_inject_suspend_seccomp(struct ckpt_inject *inj) __must_check;

struct ckpt_rseq {
	uint64_t ptr;
	uint32_t len, sig, flags;
};
/* The rseq registration of thread @idx (ptr 0: none). */
int ckpt_inject_get_rseq(struct ckpt_inject *inj, size_t idx, struct ckpt_rseq *ret) __must_check;

#endif
