/* SPDX-License-Identifier: MIT */
/* Remote memory: process_vm_readv/writev, /proc/PID/mem, scratch mappings. */
#define LOG_AREA "inject"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "inject/inject-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

static int mem_fd(struct ckpt_inject *inj)
{
	if (inj->mem_fd < 0) {
		int fd = ckpt_proc_open_mem(inj->task_proc, O_RDWR);

		if (fd < 0)
			return fd;
		inj->mem_fd = fd;
	}
	return inj->mem_fd;
}

/* What process_vm_* could not do: /proc/PID/mem uses FOLL_FORCE. */
static int via_mem(struct ckpt_inject *inj, uint64_t addr, void *buf, size_t len, bool write)
{
	int fd = mem_fd(inj);

	if (fd < 0)
		return fd;
	while (len) {
		ssize_t n = write ? pwrite(fd, buf, len, (off_t)addr) : pread(fd, buf, len, (off_t)addr);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EIO ? -EFAULT : neg_errno();
		}
		if (n == 0)
			return -EFAULT;
		addr += (uint64_t)n;
		buf = (char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

static int vm_rw(struct ckpt_inject *inj, uint64_t addr, void *buf, size_t len, bool write)
{
	while (len) {
		struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
		ssize_t n = write ? process_vm_writev(inj->mm_tid, &local, 1, &remote, 1, 0)
				  : process_vm_readv(inj->mm_tid, &local, 1, &remote, 1, 0);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != EFAULT && errno != EPERM)
				return neg_errno();
			return via_mem(inj, addr, buf, len, write);
		}
		addr += (uint64_t)n;
		buf = (char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

int ckpt_inject_read(struct ckpt_inject *inj, uint64_t addr, void *buf, size_t len)
{
	return vm_rw(inj, addr, buf, len, false);
}

int ckpt_inject_write(struct ckpt_inject *inj, uint64_t addr, const void *buf, size_t len)
{
	return vm_rw(inj, addr, (void *)buf, len, true);
}

int inj_write_code(struct ckpt_inject *inj, uint64_t addr, const void *buf, size_t len)
{
	return via_mem(inj, addr, (void *)buf, len, true);
}

int ckpt_inject_scratch(struct ckpt_inject *inj, size_t len, uint64_t *ret_addr)
{
	int64_t res;
	int r;

	uint64_t hint = 0;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;

	len = ALIGN_UP(len, page_size());
	if (GROW(inj->scratch, inj->cap_scratch, inj->nr_scratch + 1) < 0)
		return -ENOMEM;
	if (inj->area_end) {
		if (inj->area_next + len > inj->area_end) {
			pr_err("the scratch area of pid %d is full", inj->pid);
			return -ENOSPC;
		}
		hint = inj->area_next;
		flags |= MAP_FIXED_NOREPLACE;
	}
	r = ckpt_inject_call(inj, &res, SYS_mmap, hint, len, PROT_READ | PROT_WRITE, (uint64_t)flags,
			     (uint64_t)-1, 0);
	if (r < 0)
		return r;
	if (res < 0 && res > -4096) {
		pr_err("cannot map %zu bytes of scratch memory in pid %d: %s", len, inj->pid,
		       errstr((int)res));
		return (int)res;
	}
	inj->scratch[inj->nr_scratch].addr = (uint64_t)res;
	inj->scratch[inj->nr_scratch].len = len;
	inj->nr_scratch++;
	if (inj->area_end)
		inj->area_next += len;
	*ret_addr = (uint64_t)res;
	/*
	 * Keep it a mapping of its own: an anonymous neighbour with the same
	 * flags would merge with it, and the program's memory would then look
	 * like ours. Programs almost never set VM_DONTCOPY.
	 */
	{
		int64_t m;

		r = ckpt_inject_call(inj, &m, SYS_madvise, (uint64_t)res, len, MADV_DONTFORK);
		if (r == 0 && m < 0)
			r = (int)m;
		if (r < 0) {
			pr_err("cannot mark scratch memory of pid %d: %s", inj->pid, errstr(r));
			return r;
		}
	}
	return 0;
}

void ckpt_inject_forget_scratch(struct ckpt_inject *inj)
{
	inj->nr_scratch = 0;
	inj->arg_page = 0;
	inj->loop = 0;
}

void ckpt_inject_set_scratch_area(struct ckpt_inject *inj, uint64_t addr, uint64_t len)
{
	inj->area_next = addr;
	inj->area_end = addr + len;
}

bool ckpt_inject_scratch_only(const struct ckpt_inject *inj, uint64_t start, uint64_t end)
{
	uint64_t at = start;

	/* Scratch maps never touch each other (each is its own VMA): one must cover it. */
	for (size_t i = 0; i < inj->nr_scratch; i++)
		if (at >= inj->scratch[i].addr && end <= inj->scratch[i].addr + inj->scratch[i].len)
			return true;
	return false;
}

bool ckpt_inject_is_scratch(const struct ckpt_inject *inj, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < inj->nr_scratch; i++)
		if (start < inj->scratch[i].addr + inj->scratch[i].len && end > inj->scratch[i].addr)
			return true;
	return false;
}

int inj_arg_page(struct ckpt_inject *inj, uint64_t *ret_addr)
{
	if (!inj->arg_page) {
		int r = ckpt_inject_scratch(inj, page_size(), &inj->arg_page);

		if (r < 0)
			return r;
	}
	*ret_addr = inj->arg_page;
	return 0;
}

int inj_unmap_scratch(struct ckpt_inject *inj)
{
	int r = 0;

	while (inj->nr_scratch) {
		struct scratch_map *m = &inj->scratch[inj->nr_scratch - 1];
		int64_t res = 0;
		int e = -ESRCH;

		for (size_t i = 0; i < inj->nr_threads && e == -ESRCH; i++)
			e = ckpt_inject_syscall(inj, i, SYS_munmap, (const uint64_t[6]){ m->addr, m->len },
						&res);
		if (e == -ESRCH)
			break; /* nobody left to unmap it: the process is gone */
		if (e == 0 && res < 0)
			e = (int)res;
		if (e < 0) {
			pr_err("cannot unmap scratch memory %#llx of pid %d: %s",
			       (unsigned long long)m->addr, inj->pid, errstr(e));
			if (!r)
				r = e;
		}
		inj->nr_scratch--;
	}
	inj->arg_page = 0;
	return r;
}
