/* SPDX-License-Identifier: MIT */
/*
 * Many small mappings: restore's cost per mapping.
 *
 *   manymaps [N]
 *
 * N (default 30000) private anonymous mappings of one page each, side by
 * side, every other one read-only so that none merge, each page holding
 * its own pattern. Prints "ready"; each stdin line "c"
 * checks every page and its protection, and prints "ok N" or "BAD I".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PS 4096

static uint64_t pattern(size_t i, size_t k)
{
	return (i * 0x9e3779b97f4a7c15ULL) ^ (k * 0xbf58476d1ce4e5b9ULL);
}

/* Mapping I is exactly page I, read-write when even, read-only when odd: n, or the first I that is not. */
static size_t check_layout(const char *base, size_t n)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	size_t i = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f) && i < n) {
		unsigned long s, e;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) != 3 || s < (unsigned long)base ||
		    s >= (unsigned long)(base + n * PS))
			continue;
		if (s != (unsigned long)(base + i * PS) || e != s + PS ||
		    strcmp(perms, (i & 1) ? "r--p" : "rw-p"))
			break;
		i++;
	}
	fclose(f);
	return i;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 30000;
	char *base = mmap(NULL, n * PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char line[64];

	if (base == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < n; i++) {
		uint64_t *p = mmap(base + i * PS, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				   -1, 0);

		if (p == MAP_FAILED)
			return 2;
		for (size_t k = 0; k < PS / 8; k++)
			p[k] = pattern(i, k);
		if ((i & 1) && mprotect(p, PS, PROT_READ) < 0)
			return 3;
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		size_t bad = n;

		for (size_t i = 0; i < n && bad == n; i++) {
			const uint64_t *p = (const uint64_t *)(base + i * PS);

			for (size_t k = 0; k < PS / 8; k++)
				if (p[k] != pattern(i, k)) {
					bad = i;
					break;
				}
		}
		if (bad == n)
			bad = check_layout(base, n);
		if (bad == n)
			printf("ok %zu\n", n);
		else
			printf("BAD %zu\n", bad);
		fflush(stdout);
	}
	return 0;
}
