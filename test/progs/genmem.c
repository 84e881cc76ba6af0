/* SPDX-License-Identifier: MIT */
/*
 * Target of the continuous-checkpoint tests: memory that moves from one
 * generation to the next, and a log of what each generation looks like.
 *
 *   genmem LOG [PAGES] [PAUSE_US]
 *
 * A region of PAGES pages (default 256) holds, in its first 8 bytes, the
 * generation number. Generation g rewrites a few pages chosen from g alone
 * (and page 0's counter) with contents derived from g alone, then appends
 * "g FNV-1a-64-of-the-region\n" to LOG, sleeps PAUSE_US (default 2000) and
 * goes on. A generation's pages and counter change in ONE system call
 * (process_vm_readv from a staging buffer into the region): a freeze stops
 * the process between system calls, so a checkpoint always holds the
 * region of exactly one generation. Since everything derives from g, a
 * restored process that carries on repeats the same generations.
 *
 * It prints "ready region=ADDR pages=N" once generation 0 is logged. SIGTERM
 * makes it exit (status 0) after the generation in hand is logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define PS 4096UL
#define MAX_DIRTY 16

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Page content of page @i at generation @g: half text, half noise. */
static void content(unsigned char *page, uint64_t g, size_t i)
{
	static const char words[] = "generation memory checkpoint restore page ";
	uint64_t x = mix(g * 1000003 + i) | 1;

	for (size_t k = 0; k < PS / 2; k++)
		page[k] = (unsigned char)words[(k + (x & 31)) % (sizeof(words) - 1)];
	for (size_t k = PS / 2; k < PS; k += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(page + k, &x, 8);
	}
}

int main(int argc, char **argv)
{
	size_t pages = argc > 2 ? strtoul(argv[2], NULL, 10) : 256;
	long pause_us = argc > 3 ? atol(argv[3]) : 2000;
	unsigned char *region, *staging;
	int log;
	uint64_t g = 0;

	if (argc < 2 || pages < 2) {
		fprintf(stderr, "usage: genmem LOG [PAGES] [PAUSE_US]\n");
		return 2;
	}
	log = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	region = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	staging = mmap(NULL, (MAX_DIRTY + 1) * PS, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (log < 0 || region == MAP_FAILED || staging == MAP_FAILED) {
		perror("genmem");
		return 1;
	}
	signal(SIGTERM, on_term);
	for (size_t i = 0; i < pages; i++)
		content(region + i * PS, 0, i);
	memset(region, 0, 8); /* generation 0 */

	for (;;) {
		char line[64];
		int len;

		if (g > 0) {
			struct iovec local[MAX_DIRTY + 1], remote[MAX_DIRTY + 1];
			size_t n = 1 + mix(g) % MAX_DIRTY, cnt = 0;
			uint64_t x = mix(g ^ 0x5bd1e995);

			/* The counter first (page 0 keeps the rest of its bytes unless chosen). */
			memcpy(staging, &g, 8);
			local[cnt] = (struct iovec){ region, 8 };
			remote[cnt++] = (struct iovec){ staging, 8 };
			for (size_t k = 0; k < n; k++) {
				size_t i = 1 + (x = mix(x + k)) % (pages - 1);
				bool dup = false;

				for (size_t t = 1; t < cnt; t++)
					dup |= local[t].iov_base == region + i * PS;
				if (dup)
					continue;
				content(staging + cnt * PS, g, i);
				local[cnt] = (struct iovec){ region + i * PS, PS };
				remote[cnt] = (struct iovec){ staging + cnt * PS, PS };
				cnt++;
			}
			/* One system call: the whole generation, or none of it. */
			if (process_vm_readv(getpid(), local, cnt, remote, cnt, 0) < 0) {
				perror("genmem: process_vm_readv");
				return 1;
			}
		}
		len = snprintf(line, sizeof(line), "%llu %016llx\n", (unsigned long long)g,
			       (unsigned long long)fnv(region, pages * PS));
		if (write(log, line, (size_t)len) != len)
			return 1;
		if (g == 0) {
			printf("ready region=%p pages=%zu\n", (void *)region, pages);
			fflush(stdout);
		}
		g++;
		if (stop)
			return 0;
		if (pause_us)
			usleep((useconds_t)pause_us);
	}
}
