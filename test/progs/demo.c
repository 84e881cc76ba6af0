/* SPDX-License-Identifier: MIT */
/*
 * The program of `make demo`: it counts, keeps its state in memory (a growing
 * table on the heap and a running checksum of it) and prints one line every
 * 200 ms. After a restore it carries on from where it was.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(void)
{
	uint64_t *table = NULL, sum = 0;
	size_t n = 0;

	for (;;) {
		uint64_t *t = realloc(table, (n + 1) * sizeof(*t));

		if (!t)
			return 1;
		table = t;
		table[n] = (n + 1) * 2654435761ULL ^ sum;
		sum = sum * 31 + table[n];
		n++;
		printf("count %4zu  checksum %016llx\n", n, (unsigned long long)sum);
		fflush(stdout);
		nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
	}
}
