/* SPDX-License-Identifier: MIT */
/*
 * Target of the resource tests: a process that writes all of its memory,
 * all the time.
 *
 *   memhog MIB [ROUNDS]
 *
 * Maps MIB MiB of private anonymous memory and fills every page with bytes
 * that compress about 2:1 (half a counter pattern, half noise), then prints
 * "rseq ADDR SIZE" (the rseq area, whose CPU fields differ after a restore)
 * and "ready". After that it rewrites every page again and again, forever, or
 * ROUNDS times and then stops writing (it sleeps until killed, its memory
 * fixed: "still" is printed once it stopped).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <unistd.h>

#define PS 4096UL

static uint64_t state = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

static void fill(unsigned char *p, uint64_t round)
{
	uint64_t *w = (uint64_t *)p;

	for (size_t i = 0; i < PS / 16; i++)
		w[i] = round + i;
	for (size_t i = PS / 16; i < PS / 8; i++)
		w[i] = next();
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 128, len = mib << 20;
	long rounds = argc > 2 ? atol(argv[2]) : -1;
	unsigned char *m;

	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	for (size_t off = 0; off < len; off += PS)
		fill(m + off, 0);
	printf("rseq %p %u\nready\n",
	       __rseq_size ? (void *)((char *)__builtin_thread_pointer() + __rseq_offset) : NULL,
	       __rseq_size);
	for (long r = 1; rounds < 0 || r <= rounds; r++)
		for (size_t off = 0; off < len; off += PS)
			fill(m + off, (uint64_t)r);
	printf("still\n");
	for (;;)
		pause();
}
