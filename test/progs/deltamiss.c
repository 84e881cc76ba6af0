/* SPDX-License-Identifier: MIT */
/*
 * Targets of test/integ/deltamiss.c: each sets up memory,
 * prints "ready", and on each stdin line "go" does its next step and prints
 * "done".
 *
 *   deltamiss dontneed2m
 *       A 2 MiB aligned, 2 MiB anonymous region, every page written (0xaa).
 *       go: MADV_DONTNEED of the whole region (the kernel may free the
 *       page table: CONFIG_PT_RECLAIM).
 *   deltamiss regrow
 *       A 4 MiB anonymous mapping, 2 MiB aligned, every page written.
 *       go: munmap of its upper 2 MiB, mremap back to 4 MiB in place (the
 *       same VMA, the same registration, no page table in the new half).
 *   deltamiss thpdrop
 *       A 2 MiB aligned THP (MADV_HUGEPAGE, MADV_COLLAPSE), written (0xcc).
 *       go: MADV_DONTNEED of the whole THP (the PMD becomes none: no page
 *       table, no marker).
 *   deltamiss thprewrite
 *       As thpdrop; go: every page written again (0xdd), MADV_COLLAPSE (a
 *       THP again, no uffd-wp bit left to stop it), MADV_DONTNEED.
 *   deltamiss memfd_pwrite
 *       A memfd of 16 pages mapped shared, written through the mapping
 *       (0x11). go: pwrite(2) of its first 4 pages (0x22): no fault.
 *   deltamiss memfd_twice
 *       One memfd of 16 pages mapped shared twice, W below R (a gap
 *       between), written through W (0x11). go: 4 pages written through W
 *       (0x33); R shows them too, and R was never written.
 *   deltamiss shanon_child
 *       16 pages MAP_SHARED|MAP_ANONYMOUS (0x11) and a forked child that
 *       shares them (in the first checkpoint with it). go: the child writes
 *       4 pages (0x44) and exits, reaped: the delta is of the parent alone.
 *   deltamiss memfd_private
 *       A memfd of 16 pages (0x11), mapped shared (W) and private, read
 *       only (P, "at"), P's pages read; the fd closed. go: 4 pages written
 *       through W (0x55): P shows them (never copied on write), and P
 *       takes no fault.
 *   deltamiss privfile_dontneed FILE
 *       FILE (created, 16 pages of 0x46) mapped private, every page
 *       written (0x58: copied on write). go: MADV_DONTNEED of the mapping:
 *       it shows the file again. The pages were not written since the last
 *       harvest, so the kernel puts uffd-wp markers where they were.
 *   deltamiss shmem_remove
 *       A memfd of 16 pages mapped shared (0x11). go: MADV_REMOVE of 4
 *       pages: zeros (markers again, as above).
 * They print "at ADDR" (and "at2 ADDR" for the second mapping), and
 * "rseq ADDR SIZE" (where the kernel writes the CPU: it differs after
 * restore) before "ready".
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MB2 (2UL << 20)
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static char *aligned_map(size_t len)
{
	char *p = mmap(NULL, len + MB2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		exit(3);
	a = ((uintptr_t)p + MB2 - 1) & ~(MB2 - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((char *)a + len, (uintptr_t)p + len + MB2 - (a + len));
	/* No THP: 4 KiB pages, so that arming does not depend on a split. */
	madvise((void *)a, len, MADV_NOHUGEPAGE);
	return (char *)a;
}

static void say_rseq(void)
{
	char *p = (char *)__builtin_thread_pointer() + __rseq_offset;

	printf("rseq %p %u\n", __rseq_size ? (void *)p : NULL, __rseq_size);
}

static void wait_go(void)
{
	char line[64];

	if (!fgets(line, sizeof(line), stdin))
		exit(0);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	char *p;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "dontneed2m")) {
		p = aligned_map(MB2);
		memset(p, 0xaa, MB2);
		say_rseq();
		printf("at %p\nready\n", (void *)p);
		wait_go();
		madvise(p, MB2, MADV_DONTNEED);
		printf("done\n");
	} else if (!strcmp(mode, "regrow")) {
		p = aligned_map(2 * MB2);
		memset(p, 0xbb, 2 * MB2);
		say_rseq();
		printf("at %p\nready\n", (void *)p);
		wait_go();
		munmap(p + MB2, MB2);
		if (mremap(p, MB2, 2 * MB2, 0) != p)
			printf("mremap failed\n");
		printf("done\n");
	} else if (!strcmp(mode, "thpdrop") || !strcmp(mode, "thprewrite")) {
		unsigned char vec[512];
		int thp;

		p = aligned_map(MB2);
		madvise(p, MB2, MADV_HUGEPAGE);
		memset(p, 0xcc, MB2);
		thp = madvise(p, MB2, MADV_COLLAPSE) == 0;
		say_rseq();
		printf("at %p\nthp %d\nready\n", (void *)p, thp);
		wait_go();
		if (!strcmp(mode, "thprewrite")) {
			memset(p, 0xdd, MB2);
			thp = madvise(p, MB2, MADV_COLLAPSE) == 0;
			printf("collapsed %d\n", thp);
		}
		madvise(p, MB2, MADV_DONTNEED);
		mincore(p, MB2, vec);
		printf("resident after %d\ndone\n", vec[0]);
	} else if (!strcmp(mode, "memfd_pwrite") || !strcmp(mode, "memfd_twice")) {
		size_t len = 16 * 4096;
		int fd = (int)syscall(SYS_memfd_create, "deltamiss", 0);
		char *base, *w, *r, buf[4 * 4096];

		if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
			return 3;
		base = mmap(NULL, 3 * len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		w = mmap(base, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
		r = mmap(base + 2 * len, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
		munmap(base + len, len);
		if (!strcmp(mode, "memfd_pwrite"))
			munmap(r, len);
		memset(w, 0x11, len);
		say_rseq();
		printf("at %p\nat2 %p\nready\n", (void *)w, (void *)r);
		wait_go();
		if (!strcmp(mode, "memfd_pwrite")) {
			memset(buf, 0x22, sizeof(buf));
			if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
				printf("pwrite failed\n");
		} else {
			memset(w, 0x33, 4 * 4096);
		}
		printf("done\n");
	} else if (!strcmp(mode, "memfd_private")) {
		size_t len = 16 * 4096;
		int fd = (int)syscall(SYS_memfd_create, "deltamiss-private", 0);
		volatile char sum = 0;
		char *w;

		if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
			return 3;
		w = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (w == MAP_FAILED || p == MAP_FAILED)
			return 3;
		close(fd);
		memset(w, 0x11, len);
		for (size_t i = 0; i < len; i += 4096)
			sum += p[i];
		say_rseq();
		printf("at %p\nready\n", (void *)p);
		wait_go();
		memset(w, 0x55, 4 * 4096);
		printf("done\n");
	} else if (!strcmp(mode, "privfile_dontneed")) {
		size_t len = 16 * 4096;
		static char buf[16 * 4096];
		int fd = argc > 2 ? open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600) : -1;

		memset(buf, 0x46, sizeof(buf));
		if (fd < 0 || pwrite(fd, buf, len, 0) != (ssize_t)len || fsync(fd) < 0)
			return 3;
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		close(fd);
		if (p == MAP_FAILED)
			return 3;
		memset(p, 0x58, len);
		say_rseq();
		printf("at %p\nready\n", (void *)p);
		wait_go();
		madvise(p, len, MADV_DONTNEED);
		printf("done\n");
	} else if (!strcmp(mode, "shmem_remove")) {
		size_t len = 16 * 4096;
		int fd = (int)syscall(SYS_memfd_create, "deltamiss-remove", 0);

		if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
			return 3;
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return 3;
		memset(p, 0x11, len);
		say_rseq();
		printf("at %p\nready\n", (void *)p);
		wait_go();
		if (madvise(p, 4 * 4096, MADV_REMOVE) < 0)
			printf("madvise failed\n");
		printf("done\n");
	} else if (!strcmp(mode, "shanon_child")) {
		size_t len = 16 * 4096;
		int go[2];
		pid_t child;

		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		memset(p, 0x11, len);
		if (pipe(go) < 0)
			return 3;
		child = fork();
		if (child == 0) {
			char c;

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(go[1]);
			if (read(go[0], &c, 1) == 1)
				memset(p, 0x44, 4 * 4096);
			_exit(0); /* and reaped: the delta is of the parent alone */
		}
		close(go[0]);
		say_rseq();
		printf("at %p\nready\n", (void *)p);
		wait_go();
		if (write(go[1], "x", 1) != 1)
			return 3;
		waitpid(child, NULL, 0);
		printf("done\n");
	} else {
		fprintf(stderr, "unknown mode '%s'\n", mode);
		return 2;
	}
	for (;;)
		pause();
}
