/* SPDX-License-Identifier: MIT */
#ifndef CKPT_INJECT_INTERNAL_H
#define CKPT_INJECT_INTERNAL_H

#include <sched.h>
#include <signal.h>

#include <ckpt/inject.h>
#include <ckpt/proc.h>

struct inj_thread {
	struct ckpt_thread_state st;  /* what release puts back */
	void *xstate;                 /* owned copy behind st.xstate */
	bool dead;
	bool reap;                    /* died while traced: wait for it at release */
	bool stopped;                 /* seen in its first stop: release can detach it */
	bool taken_over;              /* left attached by an earlier seize that timed out */
	bool saved;                   /* stopped and its state saved */
	bool regs_dirty;              /* release must write st.regs (a call failed half-way, or set) */
	bool mask_dirty;              /* release must write st.sigmask */
	bool blocked;                 /* all signals blocked until release (EXITKILL only) */
	cpu_set_t aff;                /* its own CPU affinity, once read (aff_known) */
	bool aff_known;
	bool xstate_dirty;            /* set_thread_state gave a new xstate */
};

struct scratch_map {
	uint64_t addr, len;
};

struct ckpt_inject {
	pid_t pid;
	int pidfd;
	int thread_pidfd;             /* of threads[0] when the leader is a zombie, else -1 */
	pid_t mm_tid;                 /* a live thread, for process_vm_* */
	struct ckpt_proc *proc;
	struct ckpt_proc *task_proc;  /* /proc/PID/task/TID of a live thread: maps, mem */
	struct inj_thread *threads;
	size_t nr_threads, cap_threads;
	pid_t *zombies;
	size_t nr_zombies, cap_zombies;
	bool job_stopped;
	unsigned int flags;
	unsigned int timeout_ms;      /* of the seize */
	uint64_t syscall_ip;
	/*
	 * The way home (syscall.c): a remote call runs from a stub in the
	 * unused tail of the vDSO that, if ckpt dies, puts the thread's own
	 * registers and signal mask back itself. 0: none (no room, or
	 * restore, whose child dies with ckpt anyway).
	 */
	uint64_t stub;
	pid_t stub_tid;               /* whose state the stub holds now, 0: nobody's */
	bool stub_tried;
	bool no_stub;
	bool killed;                  /* ckpt_inject_kill(): release leaves its memory alone */
	unsigned int nr_calls;        /* remote calls made, for the debug log */
	int call_cpu;                 /* -1, or where a thread runs while it makes a call */
	struct scratch_map *scratch;
	size_t nr_scratch, cap_scratch;
	uint64_t arg_page;            /* scratch for our own syscall arguments, 0 until needed */
	uint64_t loop;                /* ckpt_inject_syscall_loop's code and table, 0 until needed */
	uint64_t area_next, area_end; /* where scratch goes (set_scratch_area), 0: anywhere */
	int mem_fd;                   /* /proc/PID/mem, opened on first need */
	sigset_t saved_sigmask;       /* ckpt's own, restored at release */
};

/* seize.c */
/*
 * Resume thread @t with PTRACE_SYSCALL and wait for its next system-call
 * stop (entry or exit), or with PTRACE_SINGLESTEP (@step) and wait for the
 * SIGTRAP. Signals other than stop signals cannot reach a thread whose mask
 * blocks all; stop signals are let through so job control still works.
 */
int inj_resume_wait(struct ckpt_inject *inj, struct inj_thread *t, bool step);
/* The same with request @req: PTRACE_SYSCALL, PTRACE_SINGLESTEP, or PTRACE_CONT (to an int3). */
int inj_resume_wait_req(struct ckpt_inject *inj, struct inj_thread *t, int req);

/* Save @t's registers, signal mask and (unless NO_XSTATE) xstate: what release puts back. */
int inj_save_state(struct ckpt_inject *inj, struct inj_thread *t);
/* A thread that died while traced: release waits for it. */
int inj_add_zombie(struct ckpt_inject *inj, pid_t tid);

/* syscall.c */
int inj_find_syscall_ip(struct ckpt_inject *inj);
/* Put the vDSO tail back as it was; the stub is not used any more. */
int inj_unplant_stub(struct ckpt_inject *inj);
/* The state of thread @tid changed: the stub must be written again. */
void inj_stub_forget(struct ckpt_inject *inj, pid_t tid);

/* mem.c */
/*
 * Write into code the target cannot write (the vDSO's tail: the stub):
 * /proc/PID/mem at once, not process_vm_writev first, which always fails
 * there (once per thread in a freeze).
 */
int inj_write_code(struct ckpt_inject *inj, uint64_t addr, const void *buf, size_t len);
int inj_unmap_scratch(struct ckpt_inject *inj);
/* One scratch page for the arguments of the calls lib/inject makes itself. */
int inj_arg_page(struct ckpt_inject *inj, uint64_t *ret_addr);

#endif
