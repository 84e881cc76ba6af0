/* SPDX-License-Identifier: MIT */
/*
 * Kernel feature probes for `ckpt check`. Every probe makes the real call
 * the later stages make (on our own memory or on a child we fork), so "ok"
 * means "works here", not "the header says so".
 */
#define LOG_AREA "check"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/elf.h>
#include <linux/filter.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/check.h>
#include <ckpt/nl.h>
#include <ckpt/proc.h>

#include "compat/pagemap.h"
#include "compat/syscalls.h"
#include "compat/uffd.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define NT_X86_XSTATE_ 0x202

typedef void (*probe_fn)(struct ckpt_probe_result *r);

static void fail(struct ckpt_probe_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail(struct ckpt_probe_result *r, const char *fmt, ...)
{
	va_list ap;

	r->ok = false;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

/* Missing because the caller lacks @privilege (the kernel has the feature, or may have it). */
static void deny(struct ckpt_probe_result *r, const char *privilege, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void deny(struct ckpt_probe_result *r, const char *privilege, const char *fmt, ...)
{
	va_list ap;

	r->ok = false;
	r->privilege = privilege;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

static void pass(struct ckpt_probe_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void pass(struct ckpt_probe_result *r, const char *fmt, ...)
{
	va_list ap;

	r->ok = true;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

/* ---- userfaultfd ---- */

static int uffd_open(int flags)
{
	return RET_NERRNO(sys_userfaultfd(O_CLOEXEC | O_NONBLOCK | flags));
}

/* A uffd with UFFDIO_API done for @features; -errno if refused. */
static int uffd_with_features(uint64_t features, uint64_t *ret_features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = uffd_open(UFFD_USER_MODE_ONLY);

	if (fd < 0)
		return fd;
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int r = neg_errno();

		close(fd);
		return r;
	}
	if ((api.features & features) != features) {
		close(fd);
		return -EOPNOTSUPP;
	}
	if (ret_features)
		*ret_features = api.features;
	return fd;
}

static void probe_uffd_user(struct ckpt_probe_result *r)
{
	int fd = uffd_open(UFFD_USER_MODE_ONLY);

	if (fd < 0)
		return fail(r, "userfaultfd(UFFD_USER_MODE_ONLY): %s", errstr(fd));
	close(fd);
	pass(r, "userfaultfd(O_CLOEXEC|O_NONBLOCK|UFFD_USER_MODE_ONLY)");
}

static void probe_uffd_full(struct ckpt_probe_result *r)
{
	int fd = uffd_open(0);

	if (fd == -EPERM)
		return deny(r, "CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1",
			    "userfaultfd(0): %s: only a user-mode-only one is allowed, whose faults in the kernel "
			    "(read(2) into a lazy page) fail with EFAULT", errstr(fd));
	if (fd < 0)
		return fail(r, "userfaultfd(0): %s", errstr(fd));
	close(fd);
	pass(r, "kernel-mode faults can be handled");
}

static void probe_dev_uffd(struct ckpt_probe_result *r)
{
	_cleanup_close_ int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	int fd;

	if (dev < 0 && (errno == EACCES || errno == EPERM))
		return deny(r, "read-write access to /dev/userfaultfd", "open '/dev/userfaultfd': %s",
			    strerror(errno));
	if (dev < 0)
		return fail(r, "open '/dev/userfaultfd': %s", strerror(errno));
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fail(r, "USERFAULTFD_IOC_NEW: %s", strerror(errno));
	close(fd);
	pass(r, "USERFAULTFD_IOC_NEW works");
}

static void probe_feature(struct ckpt_probe_result *r, uint64_t feature, const char *fname)
{
	uint64_t got = 0;
	int fd = uffd_with_features(feature, &got);

	if (fd == -EPERM && feature == UFFD_FEATURE_EVENT_FORK)
		return deny(r, "CAP_SYS_PTRACE", "UFFDIO_API with %s: %s", fname, errstr(fd));
	if (fd < 0)
		return fail(r, "UFFDIO_API with %s: %s", fname, errstr(fd));
	close(fd);
	pass(r, "UFFDIO_API granted %s", fname);
}

#define FEATURE_PROBE(fn, feat)                              \
	static void fn(struct ckpt_probe_result *r)          \
	{                                                    \
		probe_feature(r, feat, #feat);               \
	}
FEATURE_PROBE(probe_wp_async, UFFD_FEATURE_WP_ASYNC)
FEATURE_PROBE(probe_wp_unpopulated, UFFD_FEATURE_WP_UNPOPULATED)
FEATURE_PROBE(probe_ev_fork, UFFD_FEATURE_EVENT_FORK)
FEATURE_PROBE(probe_ev_remap, UFFD_FEATURE_EVENT_REMAP)
FEATURE_PROBE(probe_ev_remove, UFFD_FEATURE_EVENT_REMOVE)
FEATURE_PROBE(probe_ev_unmap, UFFD_FEATURE_EVENT_UNMAP)
FEATURE_PROBE(probe_missing_shmem, UFFD_FEATURE_MISSING_SHMEM)

#define WP_FEATURES (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)

static int register_wp(int uffd, void *addr, size_t len)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	return RET_NERRNO(ioctl(uffd, UFFDIO_REGISTER, &reg));
}

static void probe_register_anon(struct ckpt_probe_result *r)
{
	_cleanup_close_ int uffd = uffd_with_features(WP_FEATURES, NULL);
	size_t len = 4 * page_size();
	void *m;
	int e;

	if (uffd < 0)
		return fail(r, "no uffd with WP_ASYNC|WP_UNPOPULATED: %s", errstr(uffd));
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return fail(r, "mmap: %s", strerror(errno));
	e = register_wp(uffd, m, len);
	munmap(m, len);
	if (e < 0)
		return fail(r, "UFFDIO_REGISTER(MODE_WP) of private anonymous memory: %s", errstr(e));
	pass(r, "private anonymous memory registers for write-protect");
}

static void probe_register_file(struct ckpt_probe_result *r)
{
	_cleanup_close_ int uffd = uffd_with_features(WP_FEATURES, NULL);
	_cleanup_close_ int fd = -1;
	char path[] = "/tmp/ckpt-check-XXXXXX";
	size_t len = 4 * page_size();
	void *m;
	int e;

	if (uffd < 0)
		return fail(r, "no uffd with WP_ASYNC|WP_UNPOPULATED: %s", errstr(uffd));
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return fail(r, "mkstemp '%s': %s", path, strerror(errno));
	unlink(path);
	if (ftruncate(fd, (off_t)len) < 0)
		return fail(r, "ftruncate: %s", strerror(errno));
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return fail(r, "mmap: %s", strerror(errno));
	e = register_wp(uffd, m, len);
	munmap(m, len);
	if (e < 0)
		return fail(r, "UFFDIO_REGISTER(MODE_WP) of a private file mapping: %s", errstr(e));
	pass(r, "private file mappings register for write-protect (WP_ASYNC)");
}

/* ---- PAGEMAP_SCAN ---- */

static int open_self_pagemap(void)
{
	_cleanup_proc_ struct ckpt_proc *self = NULL;
	int r = ckpt_proc_open(NULL, getpid(), &self);

	if (r < 0)
		return r;
	return ckpt_proc_open_pagemap(self);
}

static int scan_written(int pagemap, uint64_t start, uint64_t end, struct page_region *vec,
			size_t vec_len, struct ckpt_range *out, size_t *nr_out)
{
	size_t n = 0;
	uint64_t at = start;

	while (at < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = at,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = vec_len,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long got = ioctl(pagemap, PAGEMAP_SCAN, &arg);

		if (got < 0)
			return neg_errno();
		for (long i = 0; i < got && vec; i++) {
			if (n >= *nr_out)
				return -E2BIG;
			out[n].start = vec[i].start;
			out[n].end = vec[i].end;
			n++;
		}
		if (arg.walk_end <= at)
			return -EIO; /* no progress: would loop forever */
		at = arg.walk_end;
	}
	*nr_out = n;
	return 0;
}

static void probe_pagemap_scan(struct ckpt_probe_result *r)
{
	_cleanup_close_ int pm = open_self_pagemap();
	struct pm_scan_arg arg = { .size = sizeof(arg) };
	long e;

	if (pm < 0)
		return fail(r, "open /proc/self/pagemap: %s", errstr(pm));
	/* An empty range with no flags: EINVAL/ENOTTY tells whether it exists. */
	arg.start = arg.end = 0x10000;
	e = ioctl(pm, PAGEMAP_SCAN, &arg);
	if (e < 0)
		return fail(r, "ioctl(PAGEMAP_SCAN): %s", strerror(errno));
	pass(r, "ioctl(PAGEMAP_SCAN) accepted");
}

static void probe_scan_control(struct ckpt_probe_result *r)
{
	_cleanup_close_ int uffd = uffd_with_features(WP_FEATURES, NULL);
	_cleanup_close_ int pm = open_self_pagemap();
	const size_t npages = 16, written[] = { 2, 7, 11 };
	size_t ps = page_size(), len = npages * ps, nout;
	struct page_region vec[32];
	struct ckpt_range out[32], want[3];
	char why[160];
	char *m;
	int e;

	if (uffd < 0)
		return fail(r, "no uffd with WP_ASYNC|WP_UNPOPULATED: %s", errstr(uffd));
	if (pm < 0)
		return fail(r, "open /proc/self/pagemap: %s", errstr(pm));
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return fail(r, "mmap: %s", strerror(errno));
	/* Populate half the pages first: armed present and unpopulated pages alike. */
	for (size_t i = 0; i < npages; i += 2)
		m[i * ps] = 1;
	e = register_wp(uffd, m, len);
	if (e < 0) {
		fail(r, "UFFDIO_REGISTER: %s", errstr(e));
		goto out;
	}
	nout = ARRAY_SIZE(out);
	e = scan_written(pm, (uintptr_t)m, (uintptr_t)m + len, NULL, 0, out, &nout);
	if (e < 0) {
		fail(r, "arming scan: %s", errstr(e));
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(written); i++) {
		m[written[i] * ps + 100] = 42;
		want[i].start = (uintptr_t)m + written[i] * ps;
		want[i].end = want[i].start + ps;
	}
	nout = ARRAY_SIZE(out);
	e = scan_written(pm, (uintptr_t)m, (uintptr_t)m + len, vec, ARRAY_SIZE(vec), out, &nout);
	if (e < 0) {
		fail(r, "scan after 3 writes: %s", errstr(e));
		goto out;
	}
	e = ckpt_check_verify_written(out, nout, want, ARRAY_SIZE(want), ps, why, sizeof(why));
	if (e < 0) {
		fail(r, "scan after writing pages 2, 7, 11: %s", why);
		goto out;
	}
	nout = ARRAY_SIZE(out);
	e = scan_written(pm, (uintptr_t)m, (uintptr_t)m + len, vec, ARRAY_SIZE(vec), out, &nout);
	if (e < 0) {
		fail(r, "second scan: %s", errstr(e));
		goto out;
	}
	e = ckpt_check_verify_written(out, nout, NULL, 0, ps, why, sizeof(why));
	if (e < 0) {
		fail(r, "second scan with no writes: %s", why);
		goto out;
	}
	pass(r, "3 pages written, exactly those 3 reported; re-scan reports none");
out:
	munmap(m, len);
}

/*
 * A range of a registered mapping with no page table at all (here: the
 * upper half unmapped, then grown back in place by mremap) must read as
 * written: its old pages are gone. Kernels before the 2026 fix "pagemap:
 * report pte_hole as written on uffd-wp VMAs" report it clean, and a delta
 * would miss what the process writes there.
 */
static void probe_scan_holes(struct ckpt_probe_result *r)
{
	_cleanup_close_ int uffd = uffd_with_features(WP_FEATURES, NULL);
	_cleanup_close_ int pm = open_self_pagemap();
	const size_t huge = 2u << 20, len = 2 * huge;
	size_t ps = page_size(), nout;
	struct page_region vec[64];
	struct ckpt_range out[64], want;
	char why[160], *raw, *m;
	int e;

	if (uffd < 0)
		return fail(r, "no uffd with WP_ASYNC|WP_UNPOPULATED: %s", errstr(uffd));
	if (pm < 0)
		return fail(r, "open /proc/self/pagemap: %s", errstr(pm));
	/* 4 MiB aligned to 2 MiB: its upper half has a page table of its own. */
	raw = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return fail(r, "mmap: %s", strerror(errno));
	m = (char *)ALIGN_UP((uintptr_t)raw, huge);
	if (m > raw)
		munmap(raw, (size_t)(m - raw));
	if (raw + len + huge > m + len)
		munmap(m + len, (size_t)(raw + len + huge - (m + len)));
	madvise(m, len, MADV_NOHUGEPAGE);
	memset(m, 1, len);
	e = register_wp(uffd, m, len);
	if (e < 0) {
		fail(r, "UFFDIO_REGISTER: %s", errstr(e));
		goto out;
	}
	nout = ARRAY_SIZE(out);
	if ((e = scan_written(pm, (uintptr_t)m, (uintptr_t)m + len, NULL, 0, out, &nout)) < 0) {
		fail(r, "arming scan: %s", errstr(e));
		goto out;
	}
	if (munmap(m + huge, huge) < 0 || mremap(m, huge, len, 0) != m) {
		fail(r, "cannot grow the mapping back in place: %s", strerror(errno));
		goto out;
	}
	want.start = (uintptr_t)m + huge;
	want.end = (uintptr_t)m + len;
	nout = ARRAY_SIZE(out);
	if ((e = scan_written(pm, (uintptr_t)m, (uintptr_t)m + len, vec, ARRAY_SIZE(vec), out, &nout)) < 0) {
		fail(r, "scan: %s", errstr(e));
		goto out;
	}
	e = ckpt_check_verify_written(out, nout, &want, 1, ps, why, sizeof(why));
	if (e < 0) {
		fail(r, "a range without page tables in a tracked mapping does not read as written (%s): "
			"deltas would miss writes there; the kernel needs the 2026 fix \"pagemap: report "
			"pte_hole as written on uffd-wp VMAs\"", why);
		goto out;
	}
	pass(r, "a range without page tables reads as written (2 MiB grown back in place)");
out:
	munmap(m, len);
}

static void probe_soft_dirty(struct ckpt_probe_result *r)
{
	_cleanup_proc_ struct ckpt_proc *self = NULL;
	_cleanup_close_ int pm = -1;
	size_t ps = page_size();
	uint64_t ent = 0;
	char *m;
	int e;

	/* Probe by effect: clear_refs returns success even without the bit. */
	e = ckpt_proc_open(NULL, getpid(), &self);
	if (e < 0)
		return fail(r, "open /proc/self: %s", errstr(e));
	pm = ckpt_proc_open_pagemap(self);
	if (pm < 0)
		return fail(r, "open pagemap: %s", errstr(pm));
	m = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return fail(r, "mmap: %s", strerror(errno));
	m[0] = 1;
	e = ckpt_proc_clear_soft_dirty(self);
	m[0] = 2;
	if (pread(pm, &ent, sizeof(ent), (off_t)((uintptr_t)m / ps * 8)) != sizeof(ent))
		e = -EIO;
	munmap(m, ps);
	if (e < 0)
		return fail(r, "clear_refs: %s", errstr(e));
	if (!(ent & PM_ENTRY_SOFT_DIRTY))
		return fail(r, "a written page is not soft-dirty (no CONFIG_MEM_SOFT_DIRTY); not needed: ckpt tracks with uffd-wp");
	pass(r, "present (ckpt does not need it)");
}

/* ---- processes ---- */

/* Fork a child that waits on a pipe; it exits when @ret_wfd is closed. */
static pid_t spawn_child(int *ret_wfd, int extra_fd_out[2])
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		char c;

		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	*ret_wfd = p[1];
	if (extra_fd_out)
		extra_fd_out[0] = p[0]; /* the fd number the child holds */
	return pid;
}

static void reap_child(pid_t pid, int wfd)
{
	if (wfd >= 0)
		close(wfd);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
}

static void probe_pidfd(struct ckpt_probe_result *r)
{
	int wfd = -1, child_fd[2] = { -1, -1 };
	_cleanup_close_ int pidfd = -1, got = -1;
	struct stat a, b;
	pid_t pid = spawn_child(&wfd, child_fd);

	if (pid < 0)
		return fail(r, "fork: %s", strerror(errno));
	pidfd = sys_pidfd_open(pid, 0);
	if (pidfd < 0) {
		fail(r, "pidfd_open: %s", strerror(errno));
		goto out;
	}
	got = sys_pidfd_getfd(pidfd, child_fd[0], 0);
	if (got < 0) {
		fail(r, "pidfd_getfd: %s", strerror(errno));
		goto out;
	}
	if (fstat(got, &a) < 0 || fstat(wfd, &b) < 0 || a.st_ino != b.st_ino) {
		fail(r, "pidfd_getfd returned a different file");
		goto out;
	}
	pass(r, "took a pipe out of a child");
out:
	reap_child(pid, wfd);
}

/* Two pipes, one each way between a probe and its child; -1 (errno) with neither. */
static int two_pipes(int p[2], int q[2])
{
	int e;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(q, O_CLOEXEC) == 0)
		return 0;
	e = errno;
	close(p[0]);
	close(p[1]);
	errno = e;
	return -1;
}

static volatile uint64_t vm_probe_word = 0x1111;

static void probe_process_vm(struct ckpt_probe_result *r)
{
	int p[2], q[2];
	uint64_t got = 0;
	pid_t pid;
	char c = 0;

	if (two_pipes(p, q) < 0)
		return fail(r, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		vm_probe_word = 0x2222;
		if (write(q[1], "x", 1) != 1)
			_exit(1);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	close(q[1]);
	if (pid < 0) {
		close(p[1]);
		close(q[0]);
		return fail(r, "fork: %s", strerror(errno));
	}
	if (read(q[0], &c, 1) != 1) {
		fail(r, "child did not start");
	} else {
		struct iovec local = { &got, sizeof(got) };
		struct iovec remote = { (void *)&vm_probe_word, sizeof(got) };
		ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

		if (n != sizeof(got))
			fail(r, "process_vm_readv: %s", n < 0 ? strerror(errno) : "short read");
		else if (got != 0x2222)
			fail(r, "process_vm_readv read %#" PRIx64 ", the child holds 0x2222", got);
		else
			pass(r, "read a child's memory");
	}
	close(q[0]);
	reap_child(pid, p[1]);
}

static int seize_stop(pid_t pid)
{
	int status;

	if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0)
		return neg_errno();
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0)
		return neg_errno();
	if (waitpid(pid, &status, __WALL) < 0)
		return neg_errno();
	if (!WIFSTOPPED(status) || (status >> 16) != PTRACE_EVENT_STOP)
		return -EPROTO;
	return 0;
}

static void probe_ptrace(struct ckpt_probe_result *r)
{
	int wfd = -1, e;
	pid_t pid = spawn_child(&wfd, NULL);

	if (pid < 0)
		return fail(r, "fork: %s", strerror(errno));
	e = seize_stop(pid);
	if (e < 0)
		fail(r, "PTRACE_SEIZE + PTRACE_INTERRUPT: %s", errstr(e));
	else
		pass(r, "a child stopped in PTRACE_EVENT_STOP");
	reap_child(pid, wfd);
}

static void probe_xstate(struct ckpt_probe_result *r)
{
	int wfd = -1, e;
	pid_t pid = spawn_child(&wfd, NULL);
	static char buf[1 << 16];
	struct iovec iov = { buf, sizeof(buf) };

	if (pid < 0)
		return fail(r, "fork: %s", strerror(errno));
	e = seize_stop(pid);
	if (e < 0)
		fail(r, "cannot stop a child: %s", errstr(e));
	else if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE_, &iov) < 0)
		fail(r, "PTRACE_GETREGSET(NT_X86_XSTATE): %s", strerror(errno));
	else
		pass(r, "%zu bytes of xstate", iov.iov_len);
	reap_child(pid, wfd);
}

static void probe_rseq(struct ckpt_probe_result *r)
{
	struct ckpt_rseq_configuration conf = { 0 };
	int wfd = -1, e;
	pid_t pid = spawn_child(&wfd, NULL);

	if (pid < 0)
		return fail(r, "fork: %s", strerror(errno));
	e = seize_stop(pid);
	if (e < 0) {
		fail(r, "cannot stop a child: %s", errstr(e));
	} else {
		long n = ptrace((enum __ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, pid,
				(void *)sizeof(conf), &conf);
		if (n < 0)
			fail(r, "PTRACE_GET_RSEQ_CONFIGURATION: %s", strerror(errno));
		else if (conf.rseq_abi_pointer)
			pass(r, "child's rseq area at %#llx, %u bytes",
			     (unsigned long long)conf.rseq_abi_pointer, conf.rseq_abi_size);
		else
			pass(r, "works (the child has no rseq registered)");
	}
	reap_child(pid, wfd);
}

static void probe_set_mm_map(struct ckpt_probe_result *r)
{
	unsigned int size = 0;
	int status;
	pid_t pid;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) < 0)
		return fail(r, "PR_SET_MM_MAP_SIZE: %s (needs CONFIG_CHECKPOINT_RESTORE)", strerror(errno));
	if (size != sizeof(struct prctl_mm_map))
		return fail(r, "kernel prctl_mm_map is %u bytes, ckpt knows %zu", size,
			    sizeof(struct prctl_mm_map));
	pid = fork();
	if (pid < 0)
		return fail(r, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Set our own mm fields to the values they already have. */
		struct ckpt_proc *self = NULL;
		struct ckpt_proc_stat st;
		struct prctl_mm_map map;

		if (ckpt_proc_open(NULL, getpid(), &self) < 0 || ckpt_proc_read_stat(self, &st) < 0)
			_exit(200);
		map = (struct prctl_mm_map){
			.start_code = st.start_code, .end_code = st.end_code,
			.start_data = st.start_data, .end_data = st.end_data,
			.start_brk = st.start_brk, .brk = (uintptr_t)sbrk(0),
			.start_stack = st.start_stack, .arg_start = st.arg_start,
			.arg_end = st.arg_end, .env_start = st.env_start,
			.env_end = st.env_end, .exe_fd = (__u32)-1,
		};
		if (prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof(map), 0) < 0)
			_exit(errno < 200 ? errno : 199);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status))
		return fail(r, "probe child died");
	if (WEXITSTATUS(status) == 200)
		return fail(r, "cannot read /proc/self/stat");
	if (WEXITSTATUS(status))
		return fail(r, "PR_SET_MM_MAP: %s", strerror(WEXITSTATUS(status)));
	pass(r, "a child set its own mm map");
}

static bool has_cap(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };

	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[cap / 32].effective & (1u << (cap % 32));
}

#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif

static void probe_cap_cr(struct ckpt_probe_result *r)
{
	if (has_cap(CAP_CHECKPOINT_RESTORE))
		return pass(r, "CAP_CHECKPOINT_RESTORE is effective");
	if (has_cap(CAP_SYS_ADMIN))
		return pass(r, "CAP_SYS_ADMIN is effective");
	deny(r, "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN",
	     "neither CAP_CHECKPOINT_RESTORE nor CAP_SYS_ADMIN: the restored /proc/PID/exe cannot be set");
}

static void probe_clone3_set_tid(struct ckpt_probe_result *r)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		pid_t want = fork(), got;
		struct clone_args args = { .exit_signal = SIGCHLD };
		int status;

		if (want == 0)
			_exit(0);
		if (want < 0)
			return fail(r, "fork: %s", strerror(errno));
		waitpid(want, &status, 0);
		/* @want is free again: ask for exactly that pid. */
		args.set_tid = (uintptr_t)&want;
		args.set_tid_size = 1;
		got = (pid_t)sys_clone3(&args, sizeof(args));
		if (got == 0)
			_exit(0);
		if (got < 0) {
			if (errno == EEXIST)
				continue;
			if (errno == EPERM)
				return deny(r, "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN", "clone3(set_tid=%d): %s", want,
					    strerror(errno));
			return fail(r, "clone3(set_tid=%d): %s", want, strerror(errno));
		}
		waitpid(got, &status, 0);
		if (got != want)
			return fail(r, "clone3(set_tid=%d) gave pid %d", want, got);
		return pass(r, "a child was created with a chosen pid");
	}
	fail(r, "clone3(set_tid): the chosen pid was always taken");
}

/* ---- netlink ---- */

static void probe_sock_diag(struct ckpt_probe_result *r)
{
	int sv[2];
	struct stat st;
	struct ckpt_sock_info si = { 0 };
	int e;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(r, "socketpair: %s", strerror(errno));
	if (fstat(sv[0], &st) < 0) {
		e = neg_errno();
	} else {
		si.ino = st.st_ino;
		e = ckpt_nl_sock_describe(&si, 1);
	}
	close(sv[0]);
	close(sv[1]);
	if (e < 0)
		return fail(r, "sock_diag dump: %s", errstr(e));
	if (!si.found || si.family != AF_UNIX || si.type != SOCK_STREAM || !si.peer_ino)
		return fail(r, "sock_diag did not describe a fresh unix socket pair");
	pass(r, "described a unix socket pair (inode %" PRIu64 ", peer %" PRIu64 ")", si.ino, si.peer_ino);
}

/* The peek offset that walks a unix socket's queue without taking it (dump). */
static void probe_peek_off(struct ckpt_probe_result *r)
{
	int sv[2], zero = 0, e = 0;
	char c = 0;

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(r, "socketpair: %s", strerror(errno));
	errno = 0;
	if (send(sv[0], "a", 1, 0) != 1 || send(sv[0], "b", 1, 0) != 1 ||
	    setsockopt(sv[1], SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0 ||
	    recv(sv[1], &c, 1, MSG_PEEK | MSG_DONTWAIT) != 1 || c != 'a' ||
	    recv(sv[1], &c, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
		e = errno ? -errno : -EIO;
	close(sv[0]);
	close(sv[1]);
	if (e < 0 || c != 'b')
		return fail(r, "SO_PEEK_OFF did not walk a unix datagram queue: %s",
			    e < 0 ? errstr(e) : "the second peek read the first message again");
	pass(r, "peeked two queued datagrams in turn");
}

/* TCP_REPAIR (CAP_NET_ADMIN) and TCP_REPAIR_WINDOW on a fresh socket (dump --tcp-established). */
static void probe_tcp_repair(struct ckpt_probe_result *r)
{
	int sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1, off = 0;
	uint32_t w[5];
	socklen_t len = sizeof(w);
	int e = 0;

	if (sk < 0)
		return fail(r, "socket: %s", strerror(errno));
	if (setsockopt(sk, IPPROTO_TCP, 19 /* TCP_REPAIR */, &on, sizeof(on)) < 0)
		e = neg_errno();
	else if (getsockopt(sk, IPPROTO_TCP, 29 /* TCP_REPAIR_WINDOW */, w, &len) < 0 && errno == ENOPROTOOPT)
		e = -ENOPROTOOPT;
	setsockopt(sk, IPPROTO_TCP, 19, &off, sizeof(off));
	close(sk);
	if (e == -EPERM)
		return deny(r, "CAP_NET_ADMIN", "TCP_REPAIR: %s", errstr(e));
	if (e < 0)
		return fail(r, "%s: %s", e == -ENOPROTOOPT ? "TCP_REPAIR_WINDOW" : "TCP_REPAIR", errstr(e));
	pass(r, "a TCP socket went into repair mode and out");
}

/* nft(8) with the kernel's nf_tables: what blocks a connection while it is checkpointed. */
static void probe_nftables(struct ckpt_probe_result *r)
{
	char err[256];
	int e = ckpt_net_unlock(0xfffffffeu, err, sizeof(err)); /* a table nobody has */

	if (e == -ENOENT)
		return fail(r, "nft(8) is not installed (the nftables package)");
	if (e < 0 && ((e == -EIO && strstr(err, "Operation not permitted")) || e == -EPERM))
		return deny(r, "CAP_NET_ADMIN", "nft: %s", e == -EIO ? err : errstr(e));
	if (e < 0)
		return fail(r, "nft: %s", e == -EIO ? err : errstr(e));
	pass(r, "nft runs and answers");
}

static void probe_proc_connector(struct ckpt_probe_result *r)
{
	_cleanup_(ckpt_proc_events_closep) struct ckpt_proc_events *ev = NULL;
	bool saw_fork = false, saw_exit = false;
	uint64_t deadline;
	pid_t pid;
	int e;

	e = ckpt_proc_events_open(&ev);
	if (e < 0)
		return fail(r, "subscribe to the proc connector: %s", errstr(e));
	pid = fork();
	if (pid == 0)
		_exit(7);
	if (pid < 0)
		return fail(r, "fork: %s", strerror(errno));
	waitpid(pid, NULL, 0);
	deadline = now_ns() + 2000000000ULL;
	while (!(saw_fork && saw_exit) && now_ns() < deadline) {
		struct pollfd pfd = { .fd = ckpt_proc_events_fd(ev), .events = POLLIN };
		struct ckpt_proc_event evs[16];
		int n;

		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			break;
		n = ckpt_proc_events_read(ev, evs, ARRAY_SIZE(evs));
		for (int i = 0; i < n; i++) {
			if (evs[i].kind == CKPT_PROC_EV_FORK && evs[i].child_tgid == pid)
				saw_fork = true;
			if (evs[i].kind == CKPT_PROC_EV_EXIT && evs[i].tgid == pid)
				saw_exit = true;
		}
	}
	if (!saw_fork || !saw_exit)
		return fail(r, "no %s event for a child within 2 s", saw_fork ? "exit" : "fork");
	pass(r, "fork and exit events of a child received");
}

/* /proc/PID/map_files: the object behind a mapping no fd or path leads to. */
static void probe_map_files(struct ckpt_probe_result *r)
{
	_cleanup_proc_ struct ckpt_proc *self = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	struct stat st;
	int e;

	if ((e = ckpt_proc_open(NULL, getpid(), &self)) < 0 || (e = ckpt_proc_read_maps(self, 0, &maps)) < 0)
		return fail(r, "cannot read /proc/self/maps: %s", errstr(e));
	for (size_t i = 0; i < maps->nr; i++) {
		char path[96];

		if (!maps->v[i].inode)
			continue;
		snprintf(path, sizeof(path), "/proc/self/map_files/%" PRIx64 "-%" PRIx64, maps->v[i].start,
			 maps->v[i].end);
		if (stat(path, &st) == 0)
			return pass(r, "stat of '%s' works", path);
		if (errno == EPERM)
			return deny(r, "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN",
				    "stat '%s': %s: a mapping is reached through an fd of the process or its path; "
				    "a deleted file mapped privately is saved as anonymous memory, a shared object "
				    "no fd holds is refused", path, strerror(errno));
		return fail(r, "stat '%s': %s", path, strerror(errno));
	}
	fail(r, "no file mapping in /proc/self/maps");
}

/* PTRACE_SECCOMP_GET_FILTER of a child with a filter that allows everything. */
static void probe_seccomp_filter(struct ckpt_probe_result *r)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = 1, .filter = &allow };
	int p[2], q[2], e;
	char c = 0;
	pid_t pid;

	if (two_pipes(p, q) < 0)
		return fail(r, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return fail(r, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[1]);
		close(q[0]);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			_exit(1);
		if (write(q[1], "1", 1) < 0)
			_exit(1);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	close(q[1]);
	/* The filter is in place once the child says so (EOF: it failed). */
	while (read(q[0], &c, 1) < 0 && errno == EINTR)
		;
	close(q[0]);
	if (c != '1') {
		reap_child(pid, p[1]);
		return fail(r, "a child could not install a seccomp filter");
	}
	e = seize_stop(pid);
	if (e == 0 && ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, NULL) < 0)
		e = neg_errno();
	if (e == -EACCES || e == -EPERM)
		deny(r, "CAP_SYS_ADMIN", "PTRACE_SECCOMP_GET_FILTER: %s", errstr(e));
	else if (e < 0)
		fail(r, "PTRACE_SECCOMP_GET_FILTER: %s%s", errstr(e),
		     e == -EINVAL ? " (needs CONFIG_CHECKPOINT_RESTORE)" : "");
	else
		pass(r, "a child's seccomp filter was read");
	reap_child(pid, p[1]);
}

/* ---- the table ---- */

static const struct {
	const char *name, *needed_by, *since;
	bool core;
	probe_fn fn;
} probes[] = {
	{ "userfaultfd", "track, restore --lazy", "Linux 5.11", true, probe_uffd_user },
	{ "userfaultfd-kernel-faults", "restore --lazy", "Linux 4.3", false, probe_uffd_full },
	{ "dev-userfaultfd", "fallback when the syscall is restricted", "Linux 6.1", false, probe_dev_uffd },
	{ "uffd-wp-async", "track, dump --parent", "Linux 6.7", true, probe_wp_async },
	{ "uffd-wp-unpopulated", "track, dump --parent", "Linux 6.4", true, probe_wp_unpopulated },
	{ "uffd-event-fork", "restore --lazy", "Linux 4.11", false, probe_ev_fork },
	{ "uffd-event-remap", "restore --lazy", "Linux 4.11", false, probe_ev_remap },
	{ "uffd-event-remove", "restore --lazy", "Linux 4.11", false, probe_ev_remove },
	{ "uffd-event-unmap", "restore --lazy", "Linux 4.11", false, probe_ev_unmap },
	{ "uffd-missing-shmem", "restore --lazy of shared memory", "Linux 4.11", false, probe_missing_shmem },
	{ "uffd-register-wp-anon", "track", "Linux 5.7", true, probe_register_anon },
	{ "uffd-register-wp-file", "track of .data and private file maps", "Linux 6.7", true, probe_register_file },
	{ "pagemap-scan", "track, dump --parent", "Linux 6.7", true, probe_pagemap_scan },
	{ "pagemap-scan-control", "track, dump --parent", "Linux 6.7", true, probe_scan_control },
	{ "pagemap-scan-holes", "track, dump --parent", "Linux 6.7 + the 2026 pagemap pte_hole fix", true, probe_scan_holes },
	{ "pidfd", "track, dump, restore", "Linux 5.6", true, probe_pidfd },
	{ "process-vm-readv", "dump", "Linux 3.2", true, probe_process_vm },
	{ "ptrace-seize", "track, dump, restore", "Linux 3.4", true, probe_ptrace },
	{ "ptrace-xstate", "dump, restore", "Linux 3.5", true, probe_xstate },
	{ "ptrace-rseq-config", "dump, restore", "Linux 5.13", true, probe_rseq },
	{ "prctl-set-mm-map", "restore", "Linux 3.18", true, probe_set_mm_map },
	{ "cap-checkpoint-restore", "restore (exe link)", "Linux 5.9", true, probe_cap_cr },
	{ "clone3-set-tid", "restore --restore-pid, of threads, of a tree", "Linux 5.5", false, probe_clone3_set_tid },
	{ "proc-map-files", "dump of a mapping no fd or path leads to", "Linux 3.3", false, probe_map_files },
	{ "seccomp-get-filter", "dump of a process with a seccomp filter", "Linux 4.4", false, probe_seccomp_filter },
	{ "netlink-sock-diag", "dump (sockets)", "Linux 3.3", true, probe_sock_diag },
	{ "so-peek-off", "dump (unix socket queues)", "Linux 3.4", false, probe_peek_off },
	{ "tcp-repair", "dump --tcp-established, its restore", "Linux 4.8", false, probe_tcp_repair },
	{ "nftables", "dump --tcp-established, its restore", "Linux 3.13 (nf_tables) and nft(8)", false, probe_nftables },
	{ "netlink-proc-connector", "track (exit/exec notice)", "Linux 2.6.15", false, probe_proc_connector },
	{ "soft-dirty", "nothing (CRIU's pre-dump; ckpt uses uffd-wp)", "Linux 3.11 with CONFIG_MEM_SOFT_DIRTY", false, probe_soft_dirty },
};

int ckpt_check_run(struct ckpt_probe_result **ret, size_t *ret_nr)
{
	struct ckpt_probe_result *res = calloc(ARRAY_SIZE(probes), sizeof(*res));

	if (!res)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
		res[i].name = probes[i].name;
		res[i].needed_by = probes[i].needed_by;
		res[i].since = probes[i].since;
		res[i].core = probes[i].core;
		probes[i].fn(&res[i]);
		pr_debug("%s: %s: %s", res[i].name, res[i].ok ? "ok" : "missing", res[i].detail);
	}
	*ret = res;
	*ret_nr = ARRAY_SIZE(probes);
	return 0;
}

#define NEEDS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define TRACKING "userfaultfd", "uffd-wp-async", "uffd-wp-unpopulated", "uffd-register-wp-anon", \
		 "uffd-register-wp-file", "pagemap-scan", "pagemap-scan-control", "pagemap-scan-holes"
#define SEIZING "pidfd", "ptrace-seize", "ptrace-xstate", "ptrace-rseq-config"
#define RESTORING SEIZING, "prctl-set-mm-map", "cap-checkpoint-restore"

static const struct ckpt_check_command commands[] = {
	{ "dump", NEEDS(SEIZING, "process-vm-readv", "netlink-sock-diag") },
	{ "dump --leave-running, --parent", NEEDS(SEIZING, "process-vm-readv", "netlink-sock-diag", TRACKING) },
	{ "track, track -D", NEEDS(SEIZING, "process-vm-readv", "netlink-sock-diag", TRACKING) },
	{ "dump of every kind of mapping", NEEDS("proc-map-files") },
	{ "dump of a seccomp-filtered process", NEEDS("seccomp-get-filter") },
	{ "dump --tcp-established", NEEDS("tcp-repair", "nftables") },
	{ "restore", NEEDS(RESTORING) },
	{ "restore of threads, a tree, --restore-pid", NEEDS(RESTORING, "clone3-set-tid") },
	{ "restore --lazy", NEEDS(RESTORING, "userfaultfd-kernel-faults", "uffd-event-fork", "uffd-event-remap",
				  "uffd-event-remove", "uffd-event-unmap") },
};

const struct ckpt_check_command *ckpt_check_commands(size_t *ret_nr)
{
	*ret_nr = ARRAY_SIZE(commands);
	return commands;
}

bool ckpt_check_core_ok(const struct ckpt_probe_result *r, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		if (r[i].core && !r[i].ok)
			return false;
	return true;
}
