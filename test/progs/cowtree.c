/* SPDX-License-Identifier: MIT */
/*
 * A tree whose processes share most of their private memory copy-on-write
 * since fork, for the tests of pages saved once (test/integ/tree_cow.c).
 *
 *   cowtree MIB NKIDS [stay]
 *
 * The root fills MIB MiB of private anonymous memory with data (a xorshift
 * stream: no zero pages) and forks NKIDS children; child i rewrites pages
 * 64*i .. 64*i+3 with data of its own. The root prints "pid PID" and
 * "ready", then takes commands on stdin, one per line:
 *   check  every process, root first then its children in birth order,
 *          prints "PID sum HEX" (FNV-1a of its whole memory), then "done"
 *   write  the root rewrites pages 8..15 ("written")
 *   fork   the root forks one more child, which shares the memory as it is
 *          now and rewrites page 64*i like the others ("forked")
 * Children answer "check" requests of the root over pipes, which a restore
 * must give back to them. At the end of stdin the tree ends, or with
 * "stay" waits to be killed (a benchmark restores it with stdin /dev/null).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PS 4096UL
#define MAX_KIDS 16

static uint64_t *mem;
static size_t bytes;

static void fill(uint64_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
}

static uint64_t sum(void)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < bytes / 8; i++)
		h = (h ^ mem[i]) * 0x100000001b3ULL;
	return h;
}

struct kid {
	pid_t pid;
	int req, ans; /* the root's ends */
};

static struct kid kids[MAX_KIDS];
static int nr_kids;

static void child_loop(int req, int ans, int i)
{
	char c;

	if ((size_t)(64 * i + 4) * PS <= bytes)
		fill(mem + 64 * i * PS / 8, 4 * PS / 8, 1000 + (uint64_t)i);
	for (;;) {
		char line[64];
		int n;

		if (read(req, &c, 1) != 1)
			_exit(0);
		n = snprintf(line, sizeof(line), "%d sum %016llx\n", (int)getpid(), (unsigned long long)sum());
		if (write(ans, line, (size_t)n) != n)
			_exit(5);
	}
}

static int spawn(void)
{
	int req[2], ans[2], i = nr_kids + 1;
	pid_t pid;

	if (nr_kids == MAX_KIDS || pipe(req) < 0 || pipe(ans) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(req[1]);
		close(ans[0]);
		for (int k = 0; k < nr_kids; k++) {
			close(kids[k].req);
			close(kids[k].ans);
		}
		child_loop(req[0], ans[1], i);
	}
	close(req[0]);
	close(ans[1]);
	kids[nr_kids++] = (struct kid){ pid, req[1], ans[0] };
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : -1;
	char line[64];

	if (argc < 3 || atol(argv[1]) < 1 || n < 0 || n > MAX_KIDS)
		return 2;
	bytes = (size_t)atol(argv[1]) << 20;
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 3;
	fill(mem, bytes / 8, 1);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < n; i++)
		if (spawn() < 0)
			return 4;
	printf("pid %d\nready\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin)) {
		if (strcmp(line, "check\n") == 0) {
			printf("%d sum %016llx\n", (int)getpid(), (unsigned long long)sum());
			for (int k = 0; k < nr_kids; k++) {
				char a[64];
				ssize_t got;

				if (write(kids[k].req, "c", 1) != 1)
					return 6;
				got = read(kids[k].ans, a, sizeof(a) - 1);
				if (got <= 0)
					return 7;
				a[got] = 0;
				fputs(a, stdout);
			}
			printf("done\n");
		} else if (strcmp(line, "write\n") == 0) {
			fill(mem + 8 * PS / 8, 8 * PS / 8, 77);
			printf("written\n");
		} else if (strcmp(line, "fork\n") == 0) {
			if (spawn() < 0)
				return 8;
			printf("forked\n");
		}
	}
	while (argc > 3 && strcmp(argv[3], "stay") == 0)
		pause();
	return 0;
}
