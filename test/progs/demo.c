/* SPDX-License-Identifier: MIT */
/*
 * The program of `make demo`: it counts, keeps its state in memory (a growing
 * table on the heap, 64 MiB of data it reads from, and a running checksum of
 * both) and prints one line every 200 ms. After a restore it carries on from
 * where it was: a single wrong page would change every checksum after it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DATA_PAGES 16384 /* 64 MiB */
#define PS 4096

int main(void)
{
	uint64_t *table = NULL, sum = 0;
	uint64_t *data = mmap(NULL, (size_t)DATA_PAGES * PS, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t n = 0;

	/* fds inherited by accident (make's jobserver pipe): not ours to keep. */
	syscall(SYS_close_range, 3U, ~0U, 0U);
	if (data == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < (size_t)DATA_PAGES * PS / 8; i++)
		data[i] = i * 0x9e3779b97f4a7c15ULL;
	for (;;) {
		uint64_t *t = realloc(table, (n + 1) * sizeof(*t));
		size_t page = (n * 7919) % DATA_PAGES;

		if (!t)
			return 1;
		table = t;
		table[n] = (n + 1) * 2654435761ULL ^ sum ^ data[page * (PS / 8) + n % (PS / 8)];
		sum = sum * 31 + table[n];
		n++;
		printf("count %4zu  checksum %016llx\n", n, (unsigned long long)sum);
		fflush(stdout);
		nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
	}
}
