/* SPDX-License-Identifier: MIT */
/*
 * Remote system calls. The thread's registers are set to the call (rip on a
 * `syscall` instruction, orig_rax = -1 so that no syscall-restart logic
 * touches them) and it is single-stepped over that one instruction: the
 * kernel reports the step with SIGTRAP right after the call returns. The
 * target's code is never modified.
 */
#define LOG_AREA "inject"
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>

#include "inject/inject-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define SYSCALL_INSN_LEN 2

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

void ckpt_inject_set_syscall_ip(struct ckpt_inject *inj, uint64_t addr)
{
	inj->syscall_ip = addr;
}

uint64_t ckpt_inject_syscall_ip(const struct ckpt_inject *inj)
{
	return inj->syscall_ip;
}

int ckpt_inject_syscall(struct ckpt_inject *inj, size_t thread, long nr, const uint64_t args[6],
			int64_t *ret_result)
{
	struct user_regs_struct regs, out;
	struct inj_thread *t;
	int r;

	if (thread >= inj->nr_threads)
		return -EINVAL;
	t = &inj->threads[thread];
	if (t->dead)
		return -ESRCH;
	if (!inj->syscall_ip && (r = inj_find_syscall_ip(inj)) < 0)
		return r;
	r = inj_block_signals(inj, t);
	if (r < 0)
		goto fail;

	regs = t->st.regs;
	regs.rip = inj->syscall_ip;
	regs.rax = (unsigned long long)nr;
	regs.orig_rax = (unsigned long long)-1;
	regs.rdi = args[0];
	regs.rsi = args[1];
	regs.rdx = args[2];
	regs.r10 = args[3];
	regs.r8 = args[4];
	regs.r9 = args[5];
	regs.eflags &= ~0x100ULL; /* TF: the step is ptrace's business */
	if (ptrace(PTRACE_SETREGS, t->st.tid, 0, &regs) < 0) {
		r = neg_errno();
		goto fail;
	}
	t->regs_dirty = true;
	for (int tries = 0;; tries++) {
		r = inj_step_wait(inj, t);
		if (r < 0)
			goto fail;
		if (ptrace(PTRACE_GETREGS, t->st.tid, 0, &out) < 0) {
			r = neg_errno();
			goto fail;
		}
		if (out.rip == inj->syscall_ip + SYSCALL_INSN_LEN)
			break;
		/* A trap that came before the step (rip unchanged): step again. */
		if (out.rip != inj->syscall_ip || tries > 8) {
			pr_err("remote syscall %ld in thread %d stopped at %#llx, not after %#llx",
			       nr, t->st.tid, (unsigned long long)out.rip,
			       (unsigned long long)inj->syscall_ip);
			return -EPROTO;
		}
	}
	*ret_result = (int64_t)out.rax;
	return 0;
fail:
	if (r == -ESRCH)
		t->dead = true;
	pr_debug("remote syscall %ld in thread %d of pid %d failed: %s", nr, t->st.tid, inj->pid,
		 errstr(r));
	return r;
}
