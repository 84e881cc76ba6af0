/* SPDX-License-Identifier: MIT */
/*
 * Target of the continuous-checkpoint tests: mappings that come and go
 * between two checkpoints.
 *
 *   churn [MAP_MS [GAP_MS]]
 *
 * Forever: map 4 MiB of private anonymous memory, write all of it, rewrite
 * an 8 MiB buffer (so that every interval writes enough for the copy made
 * before a checkpoint's freeze), sleep MAP_MS (default 8), unmap the 4 MiB,
 * sleep GAP_MS (default 8). It prints "ready" before the first round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

int main(int argc, char **argv)
{
	long map_ms = argc > 1 ? atol(argv[1]) : 8, gap_ms = argc > 2 ? atol(argv[2]) : 8;
	size_t small = 4u << 20, big = 8u << 20;
	char *bg = malloc(big);
	unsigned int round = 0;

	if (!bg)
		return 1;
	memset(bg, 1, big);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		char *p = mmap(NULL, small, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return 1;
		round++;
		memset(p, (int)(round & 0xff), small);
		memset(bg, (int)(round & 0xff), big);
		sleep_ms(map_ms);
		munmap(p, small);
		sleep_ms(gap_ms);
	}
}
