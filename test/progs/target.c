/* SPDX-License-Identifier: MIT */
/*
 * Target of the injector tests. One mode per argument; every mode prints
 * "ready" (sometimes with values) once set up, then obeys one-line commands
 * on stdin where it says so.
 *
 *   read            block in read(0); print "got <line>" for what arrives
 *   sleep MS        print "ready", nanosleep(MS) once, print
 *                   "slept <ret> <errno> <elapsed_ns>"
 *   futex           a thread blocks in FUTEX_WAIT; stdin "wake" wakes it; it
 *                   prints "woken spurious=<n> eintr=<n>"
 *   busy            checksum 16 MiB in a loop; stdin "c" prints "ok <iterations>"
 *                   or "BAD <iteration>" if a checksum ever came out wrong
 *   threads N       N/2 threads in FUTEX_WAIT, N/2 busy counting; stdin "c"
 *                   prints "counts a b c ...", "wake" ends the waiters and
 *                   prints "woken <n>"
 *   signals         SIGUSR1 handler counting; prints "ready <&count>";
 *                   stdin "c" prints "usr1 <count>"
 *   zombie-leader   the main thread exits (pthread_exit), a second thread
 *                   blocks in read(0) and prints "got <line>"
 *   exit-after US   exit(0) after US microseconds (with a few threads)
 *   sse             keep patterns in xmm0-xmm15 and check them in a loop (one
 *                   thread); stdin "c" prints "sse ok <n>" or "sse BAD"
 *   pending         SIGUSR1 handler (SA_RESTART, a mask), SIGUSR2 ignored,
 *                   SIGUSR1 blocked and raised (pending); stdin "u" unblocks
 *                   it and prints "usr1 <count>", "c" prints "usr1 <count>"
 *   file PATH       open PATH (truncated), write "0"; each stdin "w" writes the
 *                   next digit at the current position and prints "wrote <pos>"
 *   counter         keep one counter in heap, stack, .data, .bss, a private
 *                   file mapping and an mprotect'ed page, bump them together
 *                   every 20 ms and print "tick <n> ok" (or "tick <n> BAD")
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <poll.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int read_line(char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		char c;
		ssize_t r = read(0, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return (int)n;
}

static long futex(atomic_int *uaddr, int op, int val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

/* ---- futex ---- */
static atomic_int futex_word;
static atomic_int woken;

static void *futex_waiter(void *arg)
{
	int spurious = 0, eintr = 0;

	while (atomic_load(&futex_word) == 0) {
		long r = futex(&futex_word, FUTEX_WAIT_PRIVATE, 0);

		if (r == 0 && atomic_load(&futex_word) == 0)
			spurious++;
		if (r < 0 && errno == EINTR)
			eintr++;
	}
	if (arg)
		say("woken spurious=%d eintr=%d", spurious, eintr);
	atomic_fetch_add(&woken, 1);
	return NULL;
}

static void wake_all(void)
{
	atomic_store(&futex_word, 1);
	futex(&futex_word, FUTEX_WAKE_PRIVATE, 1 << 30);
}

/* ---- busy ---- */
#define BUSY_WORDS (16u << 20) / 8
static uint64_t *busy_mem;
static atomic_ulong busy_iters;
static atomic_long busy_bad = -1;

static uint64_t checksum(const uint64_t *m, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ m[i]) * 1099511628211ULL;
	return h;
}

static void *busy_loop(void *arg)
{
	uint64_t want = checksum(busy_mem, BUSY_WORDS);

	for (;;) {
		if (checksum(busy_mem, BUSY_WORDS) != want && atomic_load(&busy_bad) < 0)
			atomic_store(&busy_bad, (long)atomic_load(&busy_iters));
		atomic_fetch_add(&busy_iters, 1);
	}
	return arg;
}

/* ---- threads ---- */
#define MAX_THREADS 64
static atomic_ulong counters[MAX_THREADS];

static void *counter_loop(void *arg)
{
	atomic_ulong *c = arg;

	for (;;)
		atomic_fetch_add(c, 1);
	return NULL;
}

/* ---- signals ---- */
static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

/* ---- zombie leader ---- */
static void *reader_thread(void *arg)
{
	char line[256];

	say("ready");
	while (read_line(line, sizeof(line)) >= 0)
		say("got %s", line);
	exit(0);
	return arg;
}

/* ---- sse ---- */
static atomic_ulong sse_iters;
static atomic_int sse_bad;

static void sse_round(void)
{
	{
		uint64_t out[32];
		int ok = 1;

		/* Load 16 distinct patterns, spin a little, read them back. */
		__asm__ volatile(
			"mov $0x0101010101010101, %%rax\n\t"
			"movq %%rax, %%xmm0\n\t" "paddq %%xmm0, %%xmm0\n\t" "movdqa %%xmm0, %%xmm1\n\t"
			"paddq %%xmm1, %%xmm1\n\t" "movdqa %%xmm1, %%xmm2\n\t" "paddq %%xmm2, %%xmm2\n\t"
			"movdqa %%xmm2, %%xmm3\n\t" "paddq %%xmm0, %%xmm3\n\t" "movdqa %%xmm3, %%xmm4\n\t"
			"paddq %%xmm1, %%xmm4\n\t" "movdqa %%xmm4, %%xmm5\n\t" "paddq %%xmm2, %%xmm5\n\t"
			"movdqa %%xmm5, %%xmm6\n\t" "paddq %%xmm3, %%xmm6\n\t" "movdqa %%xmm6, %%xmm7\n\t"
			"paddq %%xmm4, %%xmm7\n\t" "movdqa %%xmm7, %%xmm8\n\t" "paddq %%xmm5, %%xmm8\n\t"
			"movdqa %%xmm8, %%xmm9\n\t" "paddq %%xmm6, %%xmm9\n\t" "movdqa %%xmm9, %%xmm10\n\t"
			"paddq %%xmm7, %%xmm10\n\t" "movdqa %%xmm10, %%xmm11\n\t" "paddq %%xmm8, %%xmm11\n\t"
			"movdqa %%xmm11, %%xmm12\n\t" "paddq %%xmm9, %%xmm12\n\t" "movdqa %%xmm12, %%xmm13\n\t"
			"paddq %%xmm10, %%xmm13\n\t" "movdqa %%xmm13, %%xmm14\n\t" "paddq %%xmm11, %%xmm14\n\t"
			"movdqa %%xmm14, %%xmm15\n\t" "paddq %%xmm12, %%xmm15\n\t"
			"mov $200000, %%ecx\n\t"
			"1: dec %%ecx\n\t" "jnz 1b\n\t"
			"movdqu %%xmm0, 0(%0)\n\t" "movdqu %%xmm1, 16(%0)\n\t" "movdqu %%xmm2, 32(%0)\n\t"
			"movdqu %%xmm3, 48(%0)\n\t" "movdqu %%xmm4, 64(%0)\n\t" "movdqu %%xmm5, 80(%0)\n\t"
			"movdqu %%xmm6, 96(%0)\n\t" "movdqu %%xmm7, 112(%0)\n\t" "movdqu %%xmm8, 128(%0)\n\t"
			"movdqu %%xmm9, 144(%0)\n\t" "movdqu %%xmm10, 160(%0)\n\t" "movdqu %%xmm11, 176(%0)\n\t"
			"movdqu %%xmm12, 192(%0)\n\t" "movdqu %%xmm13, 208(%0)\n\t" "movdqu %%xmm14, 224(%0)\n\t"
			"movdqu %%xmm15, 240(%0)\n\t"
			:
			: "r"(out)
			: "rax", "rcx", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
			  "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
		/* Recompute the same patterns in C and compare. */
		{
			uint64_t x[16];

			x[0] = 0x0202020202020202ULL;
			x[1] = x[0] * 2;
			x[2] = x[1] * 2;
			x[3] = x[2] + x[0];
			x[4] = x[3] + x[1];
			x[5] = x[4] + x[2];
			x[6] = x[5] + x[3];
			x[7] = x[6] + x[4];
			x[8] = x[7] + x[5];
			x[9] = x[8] + x[6];
			x[10] = x[9] + x[7];
			x[11] = x[10] + x[8];
			x[12] = x[11] + x[9];
			x[13] = x[12] + x[10];
			x[14] = x[13] + x[11];
			x[15] = x[14] + x[12];
			for (int i = 0; i < 16; i++)
				if (out[2 * i] != x[i] || out[2 * i + 1] != 0)
					ok = 0;
		}
		if (!ok)
			atomic_store(&sse_bad, 1);
		atomic_fetch_add(&sse_iters, 1);
	}
}

/* ---- counter ---- */
static uint64_t data_counter = 1; /* .data */
static uint64_t bss_counter;      /* .bss */

static void counter_main(void)
{
	uint64_t stack_counter = 0;
	uint64_t *heap = malloc(64 * 1024);
	char path[] = "/tmp/ckpt-counter-XXXXXX";
	int fd = mkstemp(path);
	uint64_t *filemap, *prot;

	if (!heap || fd < 0 || ftruncate(fd, 4096) < 0)
		exit(1);
	unlink(path);
	filemap = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	prot = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	close(fd);
	heap[1000] = 0;
	*filemap = 0;
	*prot = 0;
	data_counter = 0;
	mprotect(prot, 4096, PROT_READ);
	say("ready");
	for (;;) {
		uint64_t n = stack_counter + 1;
		bool ok;

		heap[1000] = n;
		stack_counter = n;
		data_counter = n;
		bss_counter = n;
		*filemap = n;
		mprotect(prot, 4096, PROT_READ | PROT_WRITE);
		*prot = n;
		mprotect(prot, 4096, PROT_READ);
		ok = heap[1000] == n && data_counter == n && bss_counter == n && *filemap == n && *prot == n;
		say("tick %llu %s", (unsigned long long)n, ok ? "ok" : "BAD");
		usleep(20000);
	}
}

static void command_loop(void (*on_c)(void))
{
	char line[256];

	while (read_line(line, sizeof(line)) >= 0) {
		if (!strcmp(line, "c"))
			on_c();
		else if (!strcmp(line, "wake"))
			wake_all();
		else if (!strcmp(line, "q"))
			exit(0);
	}
	exit(0);
}

static void print_busy(void)
{
	long bad = atomic_load(&busy_bad);

	if (bad >= 0)
		say("BAD %ld", bad);
	else
		say("ok %lu", atomic_load(&busy_iters));
}

static int nthreads;

static void print_counts(void)
{
	char buf[4096];
	size_t o = 0;

	o += (size_t)snprintf(buf, sizeof(buf), "counts");
	for (int i = 0; i < nthreads / 2; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %lu", atomic_load(&counters[i]));
	say("%s", buf);
}

static void print_usr1(void)
{
	say("usr1 %d", (int)usr1_count);
}

static void print_sse(void)
{
	if (atomic_load(&sse_bad))
		say("sse BAD");
	else
		say("sse ok %lu", atomic_load(&sse_iters));
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "read";
	pthread_t t;

	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(mode, "read")) {
		char line[256];

		say("ready");
		while (read_line(line, sizeof(line)) >= 0)
			say("got %s", line);
		return 0;
	}
	if (!strcmp(mode, "sleep") && argc > 2) {
		long ms = atol(argv[2]);
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		uint64_t t0 = now_ns();
		int r, e;

		say("ready");
		r = nanosleep(&ts, NULL);
		e = r < 0 ? errno : 0;
		say("slept %d %d %llu", r, e, (unsigned long long)(now_ns() - t0));
		return 0;
	}
	if (!strcmp(mode, "futex")) {
		pthread_create(&t, NULL, futex_waiter, (void *)1);
		usleep(20000);
		say("ready");
		command_loop(print_busy);
	}
	if (!strcmp(mode, "busy")) {
		busy_mem = malloc(BUSY_WORDS * 8);
		for (size_t i = 0; i < BUSY_WORDS; i++)
			busy_mem[i] = i * 0x9e3779b97f4a7c15ULL;
		pthread_create(&t, NULL, busy_loop, NULL);
		say("ready");
		command_loop(print_busy);
	}
	if (!strcmp(mode, "threads") && argc > 2) {
		nthreads = atoi(argv[2]);
		if (nthreads < 2 || nthreads > MAX_THREADS)
			return 2;
		for (int i = 0; i < nthreads / 2; i++)
			pthread_create(&t, NULL, counter_loop, &counters[i]);
		for (int i = nthreads / 2; i < nthreads; i++)
			pthread_create(&t, NULL, futex_waiter, NULL);
		usleep(50000);
		say("ready");
		{
			char line[256];

			while (read_line(line, sizeof(line)) >= 0) {
				if (!strcmp(line, "c")) {
					print_counts();
				} else if (!strcmp(line, "wake")) {
					wake_all();
					while (atomic_load(&woken) < nthreads - nthreads / 2)
						usleep(1000);
					say("woken %d", atomic_load(&woken));
				}
			}
		}
		return 0;
	}
	if (!strcmp(mode, "signals")) {
		struct sigaction sa = { .sa_handler = on_usr1 };

		sigaction(SIGUSR1, &sa, NULL);
		say("ready %p", (void *)&usr1_count);
		command_loop(print_usr1);
	}
	if (!strcmp(mode, "zombie-leader")) {
		pthread_create(&t, NULL, reader_thread, NULL);
		pthread_exit(NULL);
	}
	if (!strcmp(mode, "exit-after") && argc > 2) {
		long us = atol(argv[2]);

		for (int i = 0; i < 3; i++)
			pthread_create(&t, NULL, counter_loop, &counters[i]);
		say("ready");
		usleep((useconds_t)us);
		exit(0);
	}
	if (!strcmp(mode, "counter"))
		counter_main();
	if (!strcmp(mode, "pending")) {
		struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
		sigset_t set;
		char line[256];

		sigemptyset(&sa.sa_mask);
		sigaddset(&sa.sa_mask, SIGTERM);
		sigaction(SIGUSR1, &sa, NULL);
		signal(SIGUSR2, SIG_IGN);
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		raise(SIGUSR1);
		say("ready");
		while (read_line(line, sizeof(line)) >= 0) {
			if (!strcmp(line, "u"))
				sigprocmask(SIG_UNBLOCK, &set, NULL);
			say("usr1 %d", (int)usr1_count);
		}
		return 0;
	}
	if (!strcmp(mode, "file") && argc > 2) {
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		char line[256], digit = '0';

		if (fd < 0 || write(fd, &digit, 1) != 1)
			return 1;
		say("ready");
		while (read_line(line, sizeof(line)) >= 0) {
			digit = (char)(digit == '9' ? '0' : digit + 1);
			if (write(fd, &digit, 1) != 1)
				return 1;
			say("wrote %lld", (long long)lseek(fd, 0, SEEK_CUR));
		}
		return 0;
	}
	if (!strcmp(mode, "sse")) {
		/* One thread: the SSE loop, looking at stdin between rounds. */
		char line[256];

		say("ready");
		for (;;) {
			struct pollfd pfd = { 0, POLLIN, 0 };

			sse_round();
			if (poll(&pfd, 1, 0) == 1) {
				if (read_line(line, sizeof(line)) < 0 || !strcmp(line, "q"))
					return 0;
				if (!strcmp(line, "c"))
					print_sse();
			}
		}
	}
	fprintf(stderr, "target: unknown mode '%s'\n", mode);
	return 2;
}
