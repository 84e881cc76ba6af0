/* SPDX-License-Identifier: MIT */
/*
 * Target of the tracking tests: writes exactly the pages it is told to, in
 * regions of every kind, and changes its mappings on command.
 *
 * At start it prints
 *   ready heap=A stack=A file=A shared=A data=A bss=A thp=A big=A log=A done=A
 * (regions of REGION_PAGES pages, thp of THP_PAGES, big of BIG_PAGES) and
 * then obeys one-line commands on stdin, answering one line each:
 *   w REGION I...      write a byte into pages I of REGION        -> ok
 *   z REGION I...      madvise(MADV_DONTNEED) pages I             -> ok
 *   r REGION I         read(2) 16 bytes of /dev/urandom into page I -> ok
 *   W ADDR I...        write into pages I from address ADDR       -> ok
 *   mmap N             map N anonymous pages, write page 0        -> mapped ADDR
 *   munmap ADDR N                                                 -> ok
 *   mremap ADDR N      move N pages elsewhere (MREMAP_FIXED)      -> moved ADDR
 *   brk N              grow the heap by N pages, write the last   -> brk OLD NEW
 *   stack N            recurse through N pages of stack, writing  -> stack LOW
 *   prot REGION ro|rw  mprotect the region                        -> ok
 *   thread             a thread that writes its stack and waits   -> thread STACKADDR
 *   fork               a child that just waits                    -> child PID
 *   exec               execute itself again (prints ready again)
 *   closefd N          close(N)                                   -> ok
 *   hugetlb            map and write one 2 MiB hugetlb page       -> hugetlb ADDR|none
 *   random             start writing random pages of "big",
 *                      logging each one                           -> ok
 *   fill REGION I...   fill pages I with varied bytes (half text, half noise)  -> ok
 *   sums FILE          write the FNV-1a 64 of every page of every region to FILE:
 *                      for each region, its base, its page count, then one
 *                      hash per page (all u64, host order)        -> ok
 *   socket             open a unix socket pair with an fd in flight -> socket FD FD
 *   fillr REGION A N   fill pages A..A+N-1 as fill does            -> ok
 *   touch REGION A N   read (only) pages A..A+N-1                  -> ok
 *   altr REGION A N    pages A..A+N-1: odd ones filled as fill does, even
 *                      ones written with zeros (a checkpoint then lists
 *                      a run per page)                             -> ok
 *   move REGION        mremap the whole region to a new address    -> moved ADDR
 *   punch REGION A N   munmap pages A..A+N-1, map fresh anonymous
 *                      pages there (MAP_FIXED)                     -> ok
 *   roshare ADDR N     replace N pages at ADDR with a shared read-only mapping
 *                      of a file (MAP_FIXED; what glibc's gconv cache is)  -> ok
 *   forksums FILE FILE2  fork: the child writes its sums to FILE2 and
 *                      exits, the parent its own to FILE, waits    -> ok
 * REGION is heap, stack, file, shared, data, bss, thp or big.
 * Random-writer log: log[i] is the page index of write i; "done" counts the
 * writes completed (log[i] is stored before the write, done after it).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PS 4096UL
#define REGION_PAGES 64
#define THP_PAGES 1024
#define BIG_PAGES (16384)
#define LOG_MAX (1u << 22)

static char data_area[REGION_PAGES * PS] __attribute__((aligned(4096))) = { 1 };
static char bss_area[REGION_PAGES * PS] __attribute__((aligned(4096)));
static char *regions[8];
static const char *const names[8] = { "heap", "stack", "file", "shared", "data", "bss", "thp", "big" };
static unsigned char counter = 1;
static uint32_t *wlog;
static atomic_ulong *wdone;
static int urandom;

static void answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void answer(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int region_index(const char *name)
{
	for (int i = 0; i < 8; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -1;
}

static char *region(const char *name)
{
	int i = region_index(name);

	return i < 0 ? NULL : regions[i];
}

static void touch(char *p)
{
	*(volatile char *)p = (char)counter++;
	if (!counter)
		counter = 1;
}

static atomic_int thread_futex;

static uint64_t fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static size_t region_pages(int r)
{
	return r == 6 ? THP_PAGES : r == 7 ? BIG_PAGES : REGION_PAGES;
}

static void fill(char *page)
{
	static const char words[] = "checkpoint restore page memory process thread signal ";
	uint64_t x = (uint64_t)(uintptr_t)page ^ (uint64_t)counter++ * 0x9e3779b97f4a7c15ULL;

	for (size_t i = 0; i < PS / 2; i++)
		page[i] = words[(i + (x & 63)) % (sizeof(words) - 1)];
	for (size_t i = PS / 2; i < PS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		page[i] = (char)x;
	}
}

static int write_sums(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	for (int r = 0; r < 8; r++) {
		uint64_t base = (uint64_t)(uintptr_t)regions[r], n = region_pages(r);

		fwrite(&base, 8, 1, f);
		fwrite(&n, 8, 1, f);
		for (size_t i = 0; i < n; i++) {
			uint64_t h = fnv((unsigned char *)regions[r] + i * PS, PS);

			fwrite(&h, 8, 1, f);
		}
	}
	return fclose(f);
}

static void *thread_fn(void *arg)
{
	char buf[PS];

	buf[0] = 1;
	*(volatile char *)buf;
	answer("thread %p", (void *)buf);
	while (!atomic_load(&thread_futex))
		syscall(SYS_futex, &thread_futex, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return arg;
}

static void *random_writer(void *arg)
{
	uint64_t x = 88172645463325252ULL;
	char *big = regions[7];

	for (unsigned long i = 0; i < LOG_MAX; i++) {
		uint32_t page;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		page = (uint32_t)(x % BIG_PAGES);
		wlog[i] = page;
		atomic_signal_fence(memory_order_seq_cst);
		*(volatile char *)(big + page * PS + (x >> 40) % PS) = (char)x;
		atomic_store_explicit(wdone, i + 1, memory_order_release);
		if ((i & 1023) == 0)
			usleep(100);
	}
	return arg;
}

static uintptr_t stack_low;

static void __attribute__((noinline)) grow_stack(int pages)
{
	char frame[PS];

	memset(frame, 1, sizeof(frame));
	stack_low = (uintptr_t)frame;
	if (pages > 1)
		grow_stack(pages - 1);
	__asm__ volatile("" ::"r"(frame) : "memory");
}

static void *map_file(void)
{
	char path[] = "/tmp/ckpt-dirtier-XXXXXX";
	int fd = mkstemp(path);
	void *m;

	if (fd < 0 || ftruncate(fd, REGION_PAGES * PS) < 0)
		exit(1);
	unlink(path);
	m = mmap(NULL, REGION_PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	return m;
}

static void *map_thp(void)
{
	size_t len = THP_PAGES * PS;
	char *m = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a = (char *)(((uintptr_t)m + len - 1) & ~(uintptr_t)(len - 1));

	madvise(a, len, MADV_HUGEPAGE);
	for (size_t i = 0; i < len; i += PS)
		a[i] = 1;
	return a;
}

/* An fd in flight: sent with SCM_RIGHTS on @sk (to @to, or its peer), never received. */
static int send_fd_in_flight(int sk, const struct sockaddr *to, socklen_t tolen)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), r;
	char c = 'x';
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	if (fd < 0)
		return -1;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	r = sendmsg(sk, &m, 0) < 0 ? -1 : 0;
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	char stack_area[REGION_PAGES * PS] __attribute__((aligned(4096)));
	char line[4096];
	pthread_t t;

	urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	/* heap: page-aligned pages at the top of [heap] */
	sbrk((intptr_t)(PS - ((uintptr_t)sbrk(0) & (PS - 1))));
	regions[0] = sbrk(REGION_PAGES * PS);
	regions[1] = stack_area;
	regions[2] = map_file();
	regions[3] = mmap(NULL, REGION_PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	regions[4] = data_area;
	regions[5] = bss_area;
	regions[6] = map_thp();
	regions[7] = mmap(NULL, BIG_PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	wlog = mmap(NULL, LOG_MAX * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	wdone = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* Every region populated once, so arming sees present pages too. */
	for (int r = 0; r < 6; r++)
		for (int i = 0; i < REGION_PAGES; i += 2)
			regions[r][i * PS] = 1;
	(void)argc;
	answer("ready heap=%p stack=%p file=%p shared=%p data=%p bss=%p thp=%p big=%p log=%p done=%p",
	       regions[0], regions[1], regions[2], regions[3], regions[4], regions[5], regions[6],
	       regions[7], (void *)wlog, (void *)wdone);

	while (fgets(line, sizeof(line), stdin)) {
		char cmd[32] = "", arg[64] = "";
		char *rest;
		int n = 0;

		if (sscanf(line, "%31s %63s %n", cmd, arg, &n) < 1)
			continue;
		rest = line + n;
		if (!strcmp(cmd, "fill")) {
			char *base = region(arg), *end;
			long i;

			while (base && (i = strtol(rest, &end, 10), end != rest)) {
				fill(base + i * PS);
				rest = end;
			}
			answer(base ? "ok" : "bad region");
		} else if (!strcmp(cmd, "sums")) {
			answer(write_sums(arg) == 0 ? "ok" : "fail");
		} else if (!strcmp(cmd, "fillr")) {
			char *base = region(arg), *end;
			long a = strtol(rest, &end, 10), n = strtol(end, NULL, 10);

			for (long i = a; base && i < a + n; i++)
				fill(base + i * PS);
			answer(base ? "ok" : "bad region");
		} else if (!strcmp(cmd, "altr")) {
			char *base = region(arg), *end;
			long a = strtol(rest, &end, 10), n = strtol(end, NULL, 10);

			for (long i = a; base && i < a + n; i++) {
				fill(base + i * PS);
				if (i % 2 == 0)
					memset(base + i * PS, 0, PS);
			}
			answer(base ? "ok" : "bad region");
		} else if (!strcmp(cmd, "touch")) {
			char *base = region(arg), *end;
			long a = strtol(rest, &end, 10), n = strtol(end, NULL, 10);
			unsigned long s = 0;

			for (long i = a; base && i < a + n; i++)
				s += *(volatile unsigned char *)(base + i * PS + 7);
			answer(base ? "ok" : "bad region");
			(void)s;
		} else if (!strcmp(cmd, "move")) {
			int r = region_index(arg);
			size_t len = r < 0 ? 0 : region_pages(r) * PS;
			void *dst = r < 0 ? MAP_FAILED : mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			void *m = dst == MAP_FAILED ? MAP_FAILED
						    : mremap(regions[r], len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);

			if (m != MAP_FAILED)
				regions[r] = m;
			answer("moved %p", m);
		} else if (!strcmp(cmd, "punch")) {
			char *base = region(arg), *end;
			long a = strtol(rest, &end, 10), n = strtol(end, NULL, 10);
			void *m = MAP_FAILED;

			if (base && munmap(base + a * PS, (size_t)n * PS) == 0)
				m = mmap(base + a * PS, (size_t)n * PS, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			answer(m != MAP_FAILED ? "ok" : "fail");
		} else if (!strcmp(cmd, "roshare")) {
			char path[] = "/tmp/ckpt-dirtier-XXXXXX";
			unsigned long addr = strtoul(arg, NULL, 0);
			long n = strtol(rest, NULL, 10);
			int fd = mkstemp(path), ro = -1;
			void *m = MAP_FAILED;

			if (fd >= 0 && ftruncate(fd, n * (long)PS) == 0 && (ro = open(path, O_RDONLY)) >= 0)
				m = mmap((void *)addr, (size_t)n * PS, PROT_READ, MAP_SHARED | MAP_FIXED, ro, 0);
			if (fd >= 0) {
				unlink(path);
				close(fd);
			}
			if (ro >= 0)
				close(ro);
			answer(m != MAP_FAILED ? "ok" : "fail");
		} else if (!strcmp(cmd, "forksums")) {
			char second[64] = "";
			pid_t pid;
			int status = 1;

			sscanf(rest, "%63s", second);
			pid = fork();
			if (pid == 0)
				_exit(write_sums(second) == 0 ? 0 : 1);
			if (pid < 0 || write_sums(arg) < 0 || waitpid(pid, &status, 0) != pid)
				answer("fail");
			else
				answer(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "child failed");
		} else if (!strcmp(cmd, "socket")) {
			int sv[2];

			/* With an fd in flight, which restore refuses. */
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || send_fd_in_flight(sv[0], NULL, 0) < 0)
				answer("fail");
			else
				answer("socket %d %d", sv[0], sv[1]);
		} else if (!strcmp(cmd, "w") || !strcmp(cmd, "z") || !strcmp(cmd, "W")) {
			char *base = cmd[0] == 'W' ? (char *)strtoul(arg, NULL, 16) : region(arg);
			char *end;
			long i;

			while (base && (i = strtol(rest, &end, 10), end != rest)) {
				if (cmd[0] == 'z')
					madvise(base + i * PS, PS, MADV_DONTNEED);
				else
					touch(base + i * PS + 100);
				rest = end;
			}
			answer(base ? "ok" : "bad region");
		} else if (!strcmp(cmd, "r")) {
			char *base = region(arg);

			answer(base && read(urandom, base + atol(rest) * PS + 100, 16) == 16 ? "ok" : "fail");
		} else if (!strcmp(cmd, "mmap")) {
			char *m = mmap(NULL, (size_t)atol(arg) * PS, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			touch(m);
			answer("mapped %p", (void *)m);
		} else if (!strcmp(cmd, "munmap")) {
			munmap((void *)strtoul(arg, NULL, 16), (size_t)atol(rest) * PS);
			answer("ok");
		} else if (!strcmp(cmd, "mremap")) {
			size_t len = (size_t)atol(rest) * PS;
			void *dst = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			void *m = mremap((void *)strtoul(arg, NULL, 16), len, len,
					 MREMAP_MAYMOVE | MREMAP_FIXED, dst);

			answer("moved %p", m);
		} else if (!strcmp(cmd, "brk")) {
			char *old = sbrk(0), *now;

			sbrk(atol(arg) * (long)PS);
			now = sbrk(0);
			touch(now - PS);
			answer("brk %p %p", (void *)old, (void *)now);
		} else if (!strcmp(cmd, "stack")) {
			grow_stack(atoi(arg));
			answer("stack %#lx", (unsigned long)stack_low);
		} else if (!strcmp(cmd, "prot")) {
			char *base = region(arg);

			mprotect(base, REGION_PAGES * PS,
				 strstr(rest, "rw") ? PROT_READ | PROT_WRITE : PROT_READ);
			answer("ok");
		} else if (!strcmp(cmd, "thread")) {
			pthread_create(&t, NULL, thread_fn, NULL);
		} else if (!strcmp(cmd, "fork")) {
			pid_t pid = fork();

			if (pid == 0) {
				for (;;)
					pause();
			}
			answer("child %d", pid);
		} else if (!strcmp(cmd, "exec")) {
			execv("/proc/self/exe", argv);
			answer("exec failed");
		} else if (!strcmp(cmd, "closefd")) {
			answer(close(atoi(arg)) == 0 ? "ok" : "fail");
		} else if (!strcmp(cmd, "hugetlb")) {
			char *h = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);

			if (h == MAP_FAILED) {
				answer("hugetlb none");
			} else {
				h[0] = 1;
				answer("hugetlb %p", (void *)h);
			}
		} else if (!strcmp(cmd, "random")) {
			pthread_create(&t, NULL, random_writer, NULL);
			answer("ok");
		} else {
			answer("unknown %s", cmd);
		}
	}
	return 0;
}
