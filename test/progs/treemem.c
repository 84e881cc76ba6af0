/* SPDX-License-Identifier: MIT */
/*
 * A tree of processes that share one total of memory, for the tree
 * benchmarks (docs/BENCHMARKS.md, "Trees: lazy restore").
 *
 *   treemem NPROCS MIB
 *
 * The root forks NPROCS - 1 children; each of the NPROCS processes fills
 * MIB / NPROCS MiB of private anonymous memory with data of its own (a
 * xorshift stream: no zero pages, no repeats), then waits (pause). The root
 * prints "pid PID" and "ready" once every process has filled its share.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static void fill(size_t bytes, uint64_t seed)
{
	uint64_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	if (p == MAP_FAILED)
		exit(3);
	for (size_t i = 0; i < bytes / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[1]) : 0, ready[2];
	size_t share;
	char c;

	if (n < 1 || atol(argv[2]) < 1 || pipe(ready) < 0)
		return 2;
	share = ((size_t)atol(argv[2]) << 20) / (size_t)n;
	share &= ~(size_t)4095;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 1;
		if (pid == 0) {
			close(ready[0]);
			fill(share, (uint64_t)i);
			if (write(ready[1], "r", 1) != 1)
				_exit(4);
			close(ready[1]);
			for (;;)
				pause();
		}
	}
	close(ready[1]);
	fill(share, 0);
	for (int i = 1; i < n; i++)
		if (read(ready[0], &c, 1) != 1)
			return 1;
	close(ready[0]);
	printf("pid %d\nready\n", (int)getpid());
	for (;;)
		pause();
}
