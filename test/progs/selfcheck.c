/* SPDX-License-Identifier: MIT */
/*
 * A process that checks itself all the time, for the SIGKILL-of-ckpt tests.
 *
 *   selfcheck STATUSFILE [single|tree]
 *
 * The main thread runs rounds of a loop that keeps its values in registers
 * only (rcx, rbx, r12-r15, xmm8, xmm9: a register set to the wrong value
 * makes the round's result wrong), rewrites a part of a 8 MiB buffer and
 * checks the checksum of all of it, checks that its signal mask and CPU
 * affinity are what they were at the start, and writes one byte to a pipe.
 * A second thread blocks in read(2) on that pipe (a read must return that
 * byte, never an error), a third in nanosleep(2) of 100 ms (it must return 0
 * after at least 100 ms). SIGUSR1 is counted. With "single", the main
 * thread alone and no pipe (restore takes one thread). With "tree", it
 * forks first and the child does all the same (a process tree of two, each
 * writing its own status lines).
 *
 * Every 50 ms it appends "pid <pid> tick <n> usr1 <count> pinned <0|1>" to
 * STATUSFILE (opened and closed each time: no file stays open). Anything
 * wrong: "BAD pid <pid> <what>" and exit status 3. Prints "ready" on stdout
 * once running.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUF_WORDS (8u << 20) / 8
#define ROUND_ITERS 200000

static const char *status_path;
static uint64_t *buf;
static int pipefd[2];
static atomic_long usr1;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void status(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int fd, n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	fd = open(status_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) < 0) {
			/* nothing better to do */
		}
		close(fd);
	}
}

static void __attribute__((noreturn)) bad(const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	status("BAD pid %d %s", getpid(), what);
	_exit(3);
}

/* A round in registers only; 0 if every register kept its value. */
static int reg_round(void)
{
	uint64_t r12, r13, r14, r15, rbx, x8;

	__asm__ volatile("mov %[n], %%rcx\n\t"
			 "xor %%r12d, %%r12d\n\t"
			 "xor %%r13d, %%r13d\n\t"
			 "mov $0x123456789, %%r14\n\t"
			 "mov %%r14, %%r15\n\t"
			 "mov $7, %%ebx\n\t"
			 "pxor %%xmm8, %%xmm8\n\t"
			 "movq %%r14, %%xmm9\n\t"
			 "1:\n\t"
			 "add $1, %%r12\n\t"
			 "add $3, %%r13\n\t"
			 "rol $7, %%r14\n\t"
			 "rol $7, %%r15\n\t"
			 "add $5, %%rbx\n\t"
			 "paddq %%xmm9, %%xmm8\n\t"
			 "dec %%rcx\n\t"
			 "jnz 1b\n\t"
			 "mov %%r12, %[r12]\n\t"
			 "mov %%r13, %[r13]\n\t"
			 "mov %%r14, %[r14]\n\t"
			 "mov %%r15, %[r15]\n\t"
			 "mov %%rbx, %[rbx]\n\t"
			 "movq %%xmm8, %[x8]\n\t"
			 : [r12] "=m"(r12), [r13] "=m"(r13), [r14] "=m"(r14), [r15] "=m"(r15),
			   [rbx] "=m"(rbx), [x8] "=m"(x8)
			 : [n] "i"(ROUND_ITERS)
			 : "rcx", "rbx", "r12", "r13", "r14", "r15", "xmm8", "xmm9", "cc", "memory");
	return !(r12 == ROUND_ITERS && r13 == 3ull * ROUND_ITERS && r14 == r15 &&
		 rbx == 7 + 5ull * ROUND_ITERS && x8 == 0x123456789ull * ROUND_ITERS);
}

static uint64_t checksum(void)
{
	uint64_t s = 0;

	for (size_t i = 0; i < BUF_WORDS; i++)
		s += buf[i];
	return s;
}

static void *reader(void *arg)
{
	(void)arg;
	for (;;) {
		char c;
		ssize_t n = read(pipefd[0], &c, 1);

		if (n != 1)
			bad("read returned %zd errno %d", n, n < 0 ? errno : 0);
		if (c != 'x')
			bad("read gave %#x", c);
	}
	return NULL;
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		uint64_t t0 = now_ns();
		int r = nanosleep(&ts, NULL);

		if (r != 0)
			bad("nanosleep returned %d errno %d", r, errno);
		if (now_ns() - t0 < 100ull * 1000 * 1000)
			bad("nanosleep of 100 ms took %llu ns", (unsigned long long)(now_ns() - t0));
	}
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&usr1, 1);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigset_t mask0, mask;
	cpu_set_t aff0, aff;
	pthread_t th;
	uint64_t sum, next_tick, tick = 0, round = 0;
	bool single = argc == 3 && strcmp(argv[2], "single") == 0;
	bool tree = argc == 3 && strcmp(argv[2], "tree") == 0;
	pid_t child = 0;

	if (argc != 2 && !single && !tree) {
		fprintf(stderr, "usage: selfcheck STATUSFILE [single|tree]\n");
		return 2;
	}
	if (tree && (child = fork()) < 0)
		return 2;
	status_path = argv[1];
	sigaction(SIGUSR1, &sa, NULL);
	pthread_sigmask(SIG_SETMASK, NULL, &mask0);
	if (sched_getaffinity(0, sizeof(aff0), &aff0) < 0)
		return 2;
	buf = malloc(BUF_WORDS * 8);
	if (!buf || (!single && pipe(pipefd) < 0))
		return 2;
	for (size_t i = 0; i < BUF_WORDS; i++)
		buf[i] = i * 0x9e3779b97f4a7c15ull;
	sum = checksum();
	if (!single && (pthread_create(&th, NULL, reader, NULL) || pthread_create(&th, NULL, sleeper, NULL)))
		return 2;
	if (!tree || child) {
		printf("ready\n");
		fflush(stdout);
	}
	next_tick = now_ns();
	for (;;) {
		size_t at = (size_t)(round * 4099) % (BUF_WORDS - 512);

		if (reg_round())
			bad("registers changed in round %llu", (unsigned long long)round);
		if (checksum() != sum)
			bad("memory checksum changed in round %llu", (unsigned long long)round);
		/* Rewrite 4 KiB (one page written per round), keeping the sum known. */
		for (size_t i = at; i < at + 512; i++) {
			uint64_t old = buf[i];

			buf[i] = old * 31 + round;
			sum += buf[i] - old;
		}
		pthread_sigmask(SIG_SETMASK, NULL, &mask);
		if (memcmp(&mask, &mask0, sizeof(mask)) != 0)
			bad("signal mask changed (first word %#lx)", ((unsigned long *)&mask)[0]);
		if (!single && write(pipefd[1], "x", 1) != 1)
			bad("write to the pipe failed: errno %d", errno);
		round++;
		if (now_ns() >= next_tick) {
			sched_getaffinity(0, sizeof(aff), &aff);
			status("pid %d tick %llu usr1 %ld pinned %d", getpid(), (unsigned long long)tick++,
			       atomic_load(&usr1), !CPU_EQUAL(&aff, &aff0));
			next_tick += 50ull * 1000 * 1000;
		}
	}
}
