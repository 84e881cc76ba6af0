/* SPDX-License-Identifier: MIT */
/*
 * Remote system calls, made so that a SIGKILL of ckpt at any moment leaves
 * the target running as it was.
 *
 * The thread's registers are set to the call (rip on a `syscall`
 * instruction, orig_rax = -1 so that no syscall-restart logic touches
 * them), its signal mask to "all blocked", and it is resumed with
 * PTRACE_SYSCALL twice: it stops at the entry of the call and at its exit,
 * where the result is read and the thread's own mask and registers are put
 * back at once. Between calls a thread holds nothing of ckpt's.
 *
 * Not single-stepping: the kernel does not clear the single-step flag when
 * the tracer dies, so a thread that was ever stepped gets SIGTRAP (and dies)
 * after its next instruction if ckpt is killed before it resumes the thread
 * otherwise. PTRACE_SYSCALL leaves nothing armed once the tracer is gone.
 *
 * If ckpt dies while a call is in flight (registers set, the call not yet
 * returned), the kernel lets the thread run the call to its end. So the
 * `syscall` instruction is not borrowed from the vDSO's code but planted,
 * with a way home after it, in the unused tail of the vDSO (zeros after the
 * end of its image; /proc/PID/mem writes it, on a private copy of that page,
 * as a debugger's breakpoint would): after the call the stub sets the
 * thread's own signal mask (rt_sigprocmask), flags (popfq), every general
 * register, rsp, and jumps to the thread's own rip. A thread that was
 * interrupted in a system call gets rip - 2 and rax = the call (or
 * restart_syscall), as the kernel's own restart does when no handler runs.
 * The stub's rsp is 256 bytes below the thread's (beyond the red zone), so
 * a signal delivered when the mask is set lands on the thread's stack as it
 * would have. The FPU state is never touched by a call, so it needs nothing.
 * Release writes the zeros back.
 */
#define LOG_AREA "inject"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "inject/inject-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define SYSCALL_INSN_LEN 2
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Find "0f 05" in [start, end) of the target; 0 if none. */
static uint64_t scan_for_syscall(struct ckpt_inject *inj, uint64_t start, uint64_t end)
{
	unsigned char buf[65536];

	for (uint64_t at = start; at < end; at += sizeof(buf) - 1) {
		size_t len = MIN(sizeof(buf), end - at);

		if (ckpt_inject_read(inj, at, buf, len) < 0)
			return 0;
		for (size_t i = 0; i + 1 < len; i++)
			if (buf[i] == 0x0f && buf[i + 1] == 0x05)
				return at + i;
		if (len < sizeof(buf))
			break;
	}
	return 0;
}

int inj_find_syscall_ip(struct ckpt_inject *inj)
{
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	int r;

	r = ckpt_proc_read_maps(inj->task_proc, 0, &maps);
	if (r < 0) {
		pr_err("cannot read the mappings of pid %d: %s", inj->pid, errstr(r));
		return r;
	}
	/* The vDSO first: it is there in every process and never changes. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < maps->nr; i++) {
			const struct ckpt_vma *v = &maps->v[i];
			uint64_t ip;

			if (!(v->prot & PROT_EXEC) || v->kind == CKPT_VMA_VSYSCALL)
				continue;
			if ((pass == 0) != (v->kind == CKPT_VMA_VDSO))
				continue;
			ip = scan_for_syscall(inj, v->start, v->end);
			if (ip) {
				inj->syscall_ip = ip;
				pr_debug("pid %d: syscall instruction at %#llx (%s)", inj->pid,
					 (unsigned long long)ip, pass == 0 ? "vdso" : v->name ?: "anon");
				return 0;
			}
		}
	}
	pr_err("pid %d has no executable 'syscall' instruction to borrow", inj->pid);
	return -ENOEXEC;
}

/* ---- the stub ---- */

#define STUB_LEN 464
#define STUB_DATA 176 /* offset of the data: mask, eflags, rip, rsp, the registers, affinity */
#define STUB_AFF_LEN 128
#define STUB_MARGIN 64 /* zeros kept between the vDSO's image and the stub */
#define STUB_RSP_GAP 256
#define ERESTARTSYS_ 512
#define ERESTARTNOINTR_ 513
#define ERESTARTNOHAND_ 514
#define ERESTART_RESTARTBLOCK_ 516

enum { SLOT_MASK, SLOT_EFLAGS, SLOT_RIP, SLOT_RSP, SLOT_REGS, SLOT_AFF = SLOT_REGS + 15 };
/* x86 register numbers restored by the stub, in order, with their slots */
static const int stub_regs[] = { 0 /* rax */, 3 /* rbx */, 1 /* rcx */, 2 /* rdx */, 6 /* rsi */,
				 7 /* rdi */, 5 /* rbp */, 8, 9, 10, 11, 12, 13, 14, 15 };

static const unsigned char stub_head[] = {
	0x0f, 0x05,                   /* syscall: the remote call */
	0xb8, 0xcb, 0x00, 0x00, 0x00, /* mov $__NR_sched_setaffinity, %eax (getpid: unknown) */
	0x31, 0xff,                   /* xor %edi, %edi */
	0xbe, 0x80, 0x00, 0x00, 0x00, /* mov $STUB_AFF_LEN, %esi */
	0x48, 0x8d, 0x15,             /* lea aff(%rip), %rdx (disp32 follows) */
};

static const unsigned char stub_mask[] = {
	0x0f, 0x05,                   /* syscall */
	0xb8, 0x0e, 0x00, 0x00, 0x00, /* mov $__NR_rt_sigprocmask, %eax */
	0xbf, 0x02, 0x00, 0x00, 0x00, /* mov $SIG_SETMASK, %edi */
	0x48, 0x8d, 0x35,             /* lea mask(%rip), %rsi (disp32 follows) */
};

static void put32(unsigned char *p, int32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* disp32 of a rip-relative operand ending the instruction at @end to @slot */
static int32_t rel(size_t end, int slot)
{
	return (int32_t)(STUB_DATA + 8 * slot) - (int32_t)end;
}

static uint64_t reg_value(const struct user_regs_struct *r, int reg, uint64_t rax)
{
	switch (reg) {
	case 0: return rax;
	case 1: return r->rcx;
	case 2: return r->rdx;
	case 3: return r->rbx;
	case 5: return r->rbp;
	case 6: return r->rsi;
	case 7: return r->rdi;
	case 8: return r->r8;
	case 9: return r->r9;
	case 10: return r->r10;
	case 11: return r->r11;
	case 12: return r->r12;
	case 13: return r->r13;
	case 14: return r->r14;
	default: return r->r15;
	}
}

/* The stub that makes the call and goes home to @st (and @aff, if known). */
static void build_stub(const struct ckpt_thread_state *st, const cpu_set_t *aff,
		       unsigned char out[STUB_LEN])
{
	const struct user_regs_struct *r = &st->regs;
	uint64_t rip = r->rip, rax = r->rax, data[SLOT_AFF];
	size_t n = 0;

	/* What the kernel does for a call interrupted with no handler to run. */
	if ((int64_t)r->orig_rax >= 0) {
		switch ((int64_t)r->rax) {
		case -ERESTARTSYS_:
		case -ERESTARTNOINTR_:
		case -ERESTARTNOHAND_:
			rax = r->orig_rax;
			rip -= 2;
			break;
		case -ERESTART_RESTARTBLOCK_:
			rax = SYS_restart_syscall;
			rip -= 2;
			break;
		}
	}
	memset(out, 0, STUB_LEN);
	memcpy(out, stub_head, sizeof(stub_head));
	if (!aff)
		out[3] = SYS_getpid;
	n = sizeof(stub_head);
	put32(out + n, rel(n + 4, SLOT_AFF));
	n += 4;
	memcpy(out + n, stub_mask, sizeof(stub_mask));
	n += sizeof(stub_mask);
	put32(out + n, rel(n + 4, SLOT_MASK));
	n += 4;
	memcpy(out + n, "\x31\xd2" "\x41\xba\x08\x00\x00\x00" "\x0f\x05", 10); /* xor %edx,%edx; mov $8,%r10d; syscall */
	n += 10;
	out[n++] = 0xff; /* pushq eflags(%rip) */
	out[n++] = 0x35;
	put32(out + n, rel(n + 4, SLOT_EFLAGS));
	n += 4;
	out[n++] = 0x9d; /* popfq */
	for (size_t i = 0; i < ARRAY_SIZE(stub_regs); i++) {
		int reg = stub_regs[i];

		out[n++] = reg >= 8 ? 0x4c : 0x48; /* mov slot(%rip), %reg */
		out[n++] = 0x8b;
		out[n++] = (unsigned char)(((reg & 7) << 3) | 5);
		put32(out + n, rel(n + 4, SLOT_REGS + (int)i));
		n += 4;
	}
	memcpy(out + n, "\x48\x8b\x25", 3); /* mov rsp(%rip), %rsp */
	n += 3;
	put32(out + n, rel(n + 4, SLOT_RSP));
	n += 4;
	out[n++] = 0xff; /* jmp *rip(%rip) */
	out[n++] = 0x25;
	put32(out + n, rel(n + 4, SLOT_RIP));
	n += 4; /* 175 bytes of code: below STUB_DATA */

	data[SLOT_MASK] = st->sigmask;
	data[SLOT_EFLAGS] = r->eflags;
	data[SLOT_RIP] = rip;
	data[SLOT_RSP] = r->rsp;
	for (size_t i = 0; i < ARRAY_SIZE(stub_regs); i++)
		data[SLOT_REGS + i] = reg_value(r, stub_regs[i], rax);
	memcpy(out + STUB_DATA, data, sizeof(data));
	if (aff)
		memcpy(out + STUB_DATA + 8 * SLOT_AFF, aff, STUB_AFF_LEN);
}

static bool all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* (byte 3 is the number of the first call: sched_setaffinity or getpid) */
static bool is_our_stub(const unsigned char *p)
{
	return memcmp(p, stub_head, 3) == 0 && memcmp(p + 4, stub_head + 4, sizeof(stub_head) - 4) == 0;
}

/*
 * Find room for the stub at the end of the vDSO: zeros (or a stub a killed
 * ckpt left there, which stood on zeros). No room: calls borrow a
 * `syscall` instruction as they did before, unprotected.
 */
static void plant_stub(struct ckpt_inject *inj)
{
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	unsigned char tail[STUB_LEN + STUB_MARGIN];

	inj->stub_tried = true;
	if (inj->no_stub || (inj->flags & CKPT_INJECT_EXITKILL))
		return;
	if (ckpt_proc_read_maps(inj->task_proc, 0, &maps) < 0)
		return;
	for (size_t i = 0; i < maps->nr; i++) {
		const struct ckpt_vma *v = &maps->v[i];
		uint64_t at = v->end - sizeof(tail);

		if (v->kind != CKPT_VMA_VDSO || v->end - v->start < sizeof(tail) * 2)
			continue;
		if (ckpt_inject_read(inj, at, tail, sizeof(tail)) < 0)
			return;
		if (!all_zero(tail, STUB_MARGIN))
			return;
		if (!all_zero(tail + STUB_MARGIN, STUB_LEN) && !is_our_stub(tail + STUB_MARGIN))
			return;
		inj->stub = v->end - STUB_LEN;
		inj->stub_tid = all_zero(tail + STUB_MARGIN, STUB_LEN) ? 0 : -1; /* a leftover: cleared at release */
		pr_debug("pid %d: stub at %#llx", inj->pid, (unsigned long long)inj->stub);
		return;
	}
}

static void read_affinity(struct inj_thread *t)
{
	if (!t->aff_known)
		t->aff_known = sched_getaffinity(t->st.tid, sizeof(t->aff), &t->aff) == 0;
}

/* Pin @t to the call CPU for a call; false if it was not moved. */
static bool pin(struct ckpt_inject *inj, struct inj_thread *t)
{
	cpu_set_t one;

	if (inj->call_cpu < 0)
		return false;
	read_affinity(t);
	if (!t->aff_known || !CPU_ISSET(inj->call_cpu, &t->aff) || CPU_COUNT(&t->aff) == 1)
		return false;
	CPU_ZERO(&one);
	CPU_SET(inj->call_cpu, &one);
	return sched_setaffinity(t->st.tid, sizeof(one), &one) == 0;
}

static void unpin(struct ckpt_inject *inj, struct inj_thread *t)
{
	if (sched_setaffinity(t->st.tid, sizeof(t->aff), &t->aff) < 0 && errno != ESRCH)
		pr_warn("cannot give thread %d of pid %d its CPU affinity back: %s", t->st.tid, inj->pid,
			strerror(errno));
}

void ckpt_inject_set_call_cpu(struct ckpt_inject *inj, int cpu)
{
	inj->call_cpu = cpu >= 0 && cpu < CPU_SETSIZE ? cpu : -1;
}

/* The stub holds @t's own state. */
static int load_stub(struct ckpt_inject *inj, struct inj_thread *t)
{
	unsigned char code[STUB_LEN];
	int r;

	if (inj->stub_tid == t->st.tid)
		return 0;
	read_affinity(t);
	build_stub(&t->st, t->aff_known ? &t->aff : NULL, code);
	r = inj_write_code(inj, inj->stub, code, sizeof(code));
	if (r < 0) {
		pr_debug("cannot write the syscall stub into pid %d: %s", inj->pid, errstr(r));
		return r;
	}
	inj->stub_tid = t->st.tid;
	return 0;
}

int inj_unplant_stub(struct ckpt_inject *inj)
{
	static const unsigned char zeros[STUB_LEN];
	int r = 0;

	if (inj->stub && inj->stub_tid) {
		r = inj_write_code(inj, inj->stub, zeros, sizeof(zeros));
		if (r < 0 && r != -ESRCH) /* ESRCH: it is gone (kill mode), and so is the stub */
			pr_err("cannot clear the syscall stub in pid %d: %s", inj->pid, errstr(r));
	}
	inj->stub = 0;
	inj->stub_tid = 0;
	inj->no_stub = true;
	return r;
}

void inj_stub_forget(struct ckpt_inject *inj, pid_t tid)
{
	if (inj->stub_tid == tid)
		inj->stub_tid = -1; /* planted, but holds a stale state */
}

void ckpt_inject_set_syscall_ip(struct ckpt_inject *inj, uint64_t addr)
{
	(void)inj_unplant_stub(inj);
	inj->syscall_ip = addr;
}

uint64_t ckpt_inject_syscall_ip(const struct ckpt_inject *inj)
{
	return inj->syscall_ip;
}

/* The registers of remote call @c in @t, from the instruction at @ip. */
static struct user_regs_struct call_regs(const struct ckpt_inject *inj, const struct inj_thread *t,
					 uint64_t ip, const struct ckpt_inject_call *c)
{
	struct user_regs_struct regs = t->st.regs;

	if (inj->stub)
		regs.rsp = (t->st.regs.rsp - STUB_RSP_GAP) & ~15ULL;
	regs.rip = ip;
	regs.rax = (unsigned long long)c->nr;
	regs.orig_rax = (unsigned long long)-1;
	regs.rdi = c->args[0];
	regs.rsi = c->args[1];
	regs.rdx = c->args[2];
	regs.r10 = c->args[3];
	regs.r8 = c->args[4];
	regs.r9 = c->args[5];
	regs.eflags &= ~0x100ULL; /* TF */
	return regs;
}

/* Run the call set up in @t's registers to its end; its result in *@ret. */
static int run_call(struct ckpt_inject *inj, struct inj_thread *t, uint64_t ip, bool step, long nr,
		    int64_t *ret)
{
	struct user_regs_struct out;
	int r;

	for (int stops = 0;; stops++) {
		/* Syscall stops: the entry, then the exit. A step: one trap. */
		if ((r = inj_resume_wait(inj, t, step)) < 0 || (!step && (r = inj_resume_wait(inj, t, false)) < 0))
			return r;
		if (ptrace(PTRACE_GETREGS, t->st.tid, 0, &out) < 0)
			return neg_errno();
		if (out.rip == ip + SYSCALL_INSN_LEN)
			break;
		/* A trap that came before the step (rip unchanged): step again. */
		if (!step || out.rip != ip || stops > 8) {
			pr_err("remote syscall %ld in thread %d stopped at %#llx, not after %#llx", nr,
			       t->st.tid, (unsigned long long)out.rip, (unsigned long long)ip);
			return -EPROTO;
		}
	}
	inj->nr_calls++;
	*ret = (int64_t)out.rax;
	return 0;
}

int ckpt_inject_syscalls(struct ckpt_inject *inj, size_t thread, const struct ckpt_inject_call *calls,
			 size_t n, int64_t *ret_results)
{
	struct inj_thread *t;
	uint64_t all = ~0ULL, ip;
	/*
	 * A process that dies with ckpt (restore's) need not survive it: one
	 * stop per call (single step), half the cost.
	 */
	bool step = inj->flags & CKPT_INJECT_EXITKILL, pinned = false;
	int r = 0;

	if (thread >= inj->nr_threads)
		return -EINVAL;
	t = &inj->threads[thread];
	if (t->dead)
		return -ESRCH;
	if (!inj->syscall_ip && (r = inj_find_syscall_ip(inj)) < 0)
		return r;
	if (!inj->stub_tried)
		plant_stub(inj);
	/* A vDSO that cannot be written (not here): the borrowed instruction. */
	if (inj->stub && load_stub(inj, t) < 0)
		(void)inj_unplant_stub(inj);
	ip = inj->stub ? inj->stub : inj->syscall_ip;

	/*
	 * Between the calls of a batch the thread stays at the exit of the
	 * last one, in the stub, its mask all blocked and pinned: if ckpt
	 * dies there, the stub takes it home as after any call.
	 */
	for (size_t i = 0; i < n; i++) {
		struct user_regs_struct regs = call_regs(inj, t, ip, &calls[i]);

		/* Registers first: from here on the stub takes the thread home. */
		t->regs_dirty = true;
		if (ptrace(PTRACE_SETREGS, t->st.tid, 0, &regs) < 0 ||
		    (i == 0 && !t->blocked && ptrace(PTRACE_SETSIGMASK, t->st.tid, (void *)sizeof(all), &all) < 0)) {
			r = neg_errno();
			goto fail;
		}
		if (i == 0) {
			if (step) {
				/* Blocked until release, which puts the mask back. */
				t->blocked = true;
				t->mask_dirty = true;
			}
			/* After the registers: a stub in place gives the affinity back. */
			pinned = pin(inj, t);
		}
		if ((r = run_call(inj, t, ip, step, calls[i].nr, &ret_results[i])) < 0)
			goto fail;
	}
	if (pinned) {
		unpin(inj, t);
		pinned = false;
	}
	/*
	 * Its own mask, then its own registers: nothing of ours stays. (Not
	 * for a process that dies with ckpt: release does it, once.)
	 */
	if (!step) {
		if (ptrace(PTRACE_SETSIGMASK, t->st.tid, (void *)sizeof(uint64_t), &t->st.sigmask) < 0 ||
		    ptrace(PTRACE_SETREGS, t->st.tid, 0, &t->st.regs) < 0) {
			r = neg_errno();
			goto fail;
		}
		t->regs_dirty = false;
	}
	return 0;
fail:
	if (pinned)
		unpin(inj, t);
	if (r == -ESRCH)
		t->dead = true;
	pr_debug("remote syscall in thread %d of pid %d failed: %s", t->st.tid, inj->pid, errstr(r));
	return r;
}

int ckpt_inject_syscall(struct ckpt_inject *inj, size_t thread, long nr, const uint64_t args[6],
			int64_t *ret_result)
{
	struct ckpt_inject_call c = { .nr = nr };

	memcpy(c.args, args, sizeof(c.args));
	return ckpt_inject_syscalls(inj, thread, &c, 1, ret_result);
}

/* ---- many calls in one stop ---- */

/*
 * x86-64, position-independent: r12 points at a table of 64-byte entries
 * (nr, six arguments, result), r13 counts them. Each entry's call is made
 * and its result stored; the loop ends at the first failure (-4095..-1)
 * or the end of the table, on an int3.
 */
static const uint8_t loop_code[] = {
	0x4d, 0x85, 0xed,                   /* test r13, r13 */
	0x74, 0x3a,                         /* jz done */
	0x49, 0x8b, 0x04, 0x24,             /* mov rax, [r12] */
	0x49, 0x8b, 0x7c, 0x24, 0x08,       /* mov rdi, [r12+8] */
	0x49, 0x8b, 0x74, 0x24, 0x10,       /* mov rsi, [r12+16] */
	0x49, 0x8b, 0x54, 0x24, 0x18,       /* mov rdx, [r12+24] */
	0x4d, 0x8b, 0x54, 0x24, 0x20,       /* mov r10, [r12+32] */
	0x4d, 0x8b, 0x44, 0x24, 0x28,       /* mov r8, [r12+40] */
	0x4d, 0x8b, 0x4c, 0x24, 0x30,       /* mov r9, [r12+48] */
	0x0f, 0x05,                         /* syscall */
	0x49, 0x89, 0x44, 0x24, 0x38,       /* mov [r12+56], rax */
	0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, /* cmp rax, -4095 */
	0x73, 0x09,                         /* jae done */
	0x49, 0x83, 0xc4, 0x40,             /* add r12, 64 */
	0x49, 0xff, 0xcd,                   /* dec r13 */
	0xeb, 0xc1,                         /* jmp start */
	0xcc,                               /* done: int3 */
};
#define LOOP_ENTRIES 1023 /* one page of code, then the table: 16 pages in all */
#define LOOP_LEN (4096 + LOOP_ENTRIES * 64 + 64)

struct loop_entry {
	int64_t nr;
	uint64_t args[6];
	int64_t result;
};

/* The code (read and execute) and the table (read-write) in one scratch mapping. */
static int plant_loop(struct ckpt_inject *inj)
{
	uint64_t at;
	int64_t res;
	int r;

	if (inj->loop)
		return 0;
	if ((r = ckpt_inject_scratch(inj, LOOP_LEN, &at)) < 0 ||
	    (r = ckpt_inject_write(inj, at, loop_code, sizeof(loop_code))) < 0 ||
	    (r = ckpt_inject_call(inj, &res, SYS_mprotect, at, 4096, PROT_READ | PROT_EXEC)) < 0)
		return r;
	if (res < 0)
		return (int)res;
	inj->loop = at;
	return 0;
}

/* Let @t run until the int3 at @trap; stop signals go through (job control). */
static int run_to_trap(struct ckpt_inject *inj, struct inj_thread *t, uint64_t trap)
{
	struct user_regs_struct out;
	int r = inj_resume_wait_req(inj, t, PTRACE_CONT);

	if (r < 0)
		return r;
	if (ptrace(PTRACE_GETREGS, t->st.tid, 0, &out) < 0)
		return neg_errno();
	if (out.rip == trap)
		return 0;
	pr_err("the loop of remote calls in thread %d stopped at %#llx, not at its end", t->st.tid,
	       (unsigned long long)out.rip);
	return -EFAULT;
}

int ckpt_inject_syscall_loop(struct ckpt_inject *inj, size_t thread, const struct ckpt_inject_call *calls,
			     size_t n, int64_t *ret_results)
{
	struct loop_entry *tab = NULL;
	struct inj_thread *t;
	uint64_t all = ~0ULL;
	int r = 0;

	if (!(inj->flags & CKPT_INJECT_EXITKILL))
		return -EOPNOTSUPP;
	if (thread >= inj->nr_threads)
		return -EINVAL;
	t = &inj->threads[thread];
	if (t->dead)
		return -ESRCH;
	for (size_t i = 0; i < n; i++)
		ret_results[i] = CKPT_INJECT_NOT_RUN;
	if ((r = plant_loop(inj)) < 0)
		return r;
	tab = calloc(LOOP_ENTRIES, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (size_t done = 0; done < n && r == 0;) {
		size_t k = MIN(n - done, (size_t)LOOP_ENTRIES);
		struct user_regs_struct regs = t->st.regs;
		uint64_t table = inj->loop + 4096;

		for (size_t i = 0; i < k; i++) {
			tab[i].nr = calls[done + i].nr;
			memcpy(tab[i].args, calls[done + i].args, sizeof(tab[i].args));
			tab[i].result = CKPT_INJECT_NOT_RUN;
		}
		if ((r = ckpt_inject_write(inj, table, tab, k * sizeof(*tab))) < 0)
			break;
		regs.rip = inj->loop;
		regs.r12 = table;
		regs.r13 = k;
		regs.orig_rax = (unsigned long long)-1;
		regs.eflags &= ~0x100ULL; /* TF */
		t->regs_dirty = true;
		if (ptrace(PTRACE_SETREGS, t->st.tid, 0, &regs) < 0 ||
		    (!t->blocked && ptrace(PTRACE_SETSIGMASK, t->st.tid, (void *)sizeof(all), &all) < 0)) {
			r = neg_errno();
			break;
		}
		/* Blocked until release, which puts the mask back. */
		t->blocked = true;
		t->mask_dirty = true;
		if ((r = run_to_trap(inj, t, inj->loop + sizeof(loop_code))) < 0 ||
		    (r = ckpt_inject_read(inj, table, tab, k * sizeof(*tab))) < 0)
			break;
		inj->nr_calls += (unsigned int)k;
		for (size_t i = 0; i < k; i++)
			ret_results[done + i] = tab[i].result;
		/* One failed (or did not run): the loop ended there, and so do we. */
		if (tab[k - 1].result == CKPT_INJECT_NOT_RUN || (tab[k - 1].result < 0 && tab[k - 1].result > -4096))
			break;
		done += k;
	}
	free(tab);
	return r;
}
