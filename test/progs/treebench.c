/* SPDX-License-Identifier: MIT */
/*
 * A process tree of the same total memory at any size, for bench-tree:
 *
 *   treebench NPROC MIB
 *
 * The process forks NPROC - 1 children; each of the NPROC processes fills
 * MIB / NPROC MiB of its own heap (half the pages zero, half random: what
 * a real heap compresses like) and waits. "ready" once all are filled.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void fill(size_t bytes, unsigned int seed)
{
	uint8_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t x = 0x9e3779b97f4a7c15ULL ^ seed;

	if (p == MAP_FAILED)
		exit(1);
	for (size_t off = 0; off < bytes; off += 4096) {
		if ((off / 4096) % 2 == 0) {
			p[off] = 0; /* touched: a zero page of its own */
			continue;
		}
		for (size_t i = 0; i < 4096; i += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(p + off + i, &x, 8);
		}
	}
}

int main(int argc, char **argv)
{
	int nproc = argc > 2 ? atoi(argv[1]) : 1, ready[2];
	size_t each = argc > 2 ? (size_t)atol(argv[2]) * (1 << 20) : 0;

	if (nproc < 1 || !each || pipe(ready) < 0)
		return 2;
	each /= (size_t)nproc;
	each &= ~(size_t)4095;
	for (int i = 1; i < nproc; i++) {
		if (fork() == 0) {
			char c = 'r';

			fill(each, (unsigned int)i);
			if (write(ready[1], &c, 1) != 1)
				return 1;
			for (;;)
				pause();
		}
	}
	fill(each, 0);
	for (int i = 1; i < nproc; i++) {
		char c;

		if (read(ready[0], &c, 1) != 1)
			return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
