/* SPDX-License-Identifier: MIT */
/*
 * A line of processes, each the child of the one before, that all still
 * share the private memory the first one wrote before it forked (for
 * test/integ/tree_cow.c: a reader follows only so many processes holding
 * one another's pages).
 *
 *   cowline DEPTH KIB
 *
 * The first process writes KIB KiB of data, then the line is forked; the
 * last one prints "ready". Every process waits in pause().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int depth = argc > 2 ? atoi(argv[1]) : 0;
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 0) * 1024 / 8 : 0;
	uint64_t *m, x = 0x2545f4914f6cdd1dULL;

	if (depth < 1 || !n)
		return 2;
	m = mmap(NULL, n * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 3;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		m[i] = x;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int d = 1; d < depth; d++) {
		pid_t p = fork();

		if (p < 0)
			return 4;
		if (p > 0)
			for (;;)
				pause();
	}
	printf("ready\n");
	for (;;)
		pause();
}
