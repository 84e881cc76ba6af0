/* SPDX-License-Identifier: MIT */
/*
 * Target of scripts/bench-continuous: a process with SIZE MiB of memory that
 * computes (its "work", counted in units) and rewrites random pages of its
 * memory at RATE MiB/s, paced by the clock.
 *
 *   worker SIZE_MIB RATE_MIB_S
 *
 * Every page is filled at start (half text, half noise: compresses about
 * 2:1). It prints "ready counter=ADDR" when done: ADDR holds two u64, the
 * work units done so far and the pages rewritten so far, which the driver
 * reads through /proc/PID/mem. A work unit is 4096 rounds of a xorshift
 * mix, a few microseconds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PS 4096UL

struct counter {
	volatile uint64_t units;
	volatile uint64_t pages;
	volatile uint64_t sink;
};

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(unsigned char *page, uint64_t seed)
{
	static const char words[] = "continuous checkpoint of a process that works and writes ";
	uint64_t x = seed | 1;

	for (size_t i = 0; i < PS / 2; i++)
		page[i] = (unsigned char)words[(i + (seed & 31)) % (sizeof(words) - 1)];
	for (size_t i = PS / 2; i < PS; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(page + i, &x, 8);
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t pages = (argc > 1 ? strtoul(argv[1], NULL, 10) : 4096) * 256;
	double rate = (argc > 2 ? atof(argv[2]) : 10) * 256; /* pages per second */
	unsigned char *mem;
	struct counter *c;
	double t0;

	mem = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	c = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!pages || mem == MAP_FAILED || c == MAP_FAILED) {
		perror("worker");
		return 1;
	}
	for (size_t i = 0; i < pages; i++)
		fill(mem + i * PS, next());
	printf("ready counter=%p\n", (void *)c);
	fflush(stdout);

	t0 = now();
	for (;;) {
		uint64_t x = c->sink;

		for (int k = 0; k < 4096; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			x += (uint64_t)k;
		}
		c->sink = x;
		c->units++;
		if ((c->units & 15) == 0) {
			double due = (now() - t0) * rate;

			while ((double)c->pages < due) {
				fill(mem + (next() % pages) * PS, next());
				c->pages++;
			}
		}
	}
}
