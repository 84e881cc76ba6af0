/* SPDX-License-Identifier: MIT */
/*
 * A parent whose children come and go all the time, for the tree tests:
 * processes leave the tree (and join it) while it is being frozen.
 *
 *   forkchurn     forks a child every millisecond or so; each child lives
 *                 1-5 ms (some fork a grandchild that lives as long) and
 *                 exits with a status the parent checks when it reaps it.
 *                 Every 50 ms the parent prints "tick N reaped M" (a child
 *                 that exits with another status than the one it was given
 *                 prints "BAD ..." and exits 3). "ready" once running.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_KIDS 64

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void live_a_little(unsigned int seed)
{
	struct timespec ts = { 0, (long)(1 + seed % 5) * 1000000L };

	nanosleep(&ts, NULL);
}

int main(void)
{
	pid_t kids[MAX_KIDS];
	int want[MAX_KIDS], nk = 0;
	uint64_t next = now_ms() + 50, tick = 0, reaped = 0;
	unsigned int n = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	for (;;) {
		int st;
		pid_t w;

		if (nk < MAX_KIDS) {
			int code = (int)(n % 100);
			pid_t k = fork();

			if (k == 0) {
				if (n % 7 == 0 && fork() == 0) {
					live_a_little(n);
					_exit(0);
				}
				live_a_little(n);
				_exit(code);
			}
			if (k > 0) {
				kids[nk] = k;
				want[nk++] = code;
			}
			n++;
		}
		while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
			for (int i = 0; i < nk; i++) {
				if (kids[i] != w)
					continue;
				if (!WIFEXITED(st) || WEXITSTATUS(st) != want[i]) {
					printf("BAD child %d: status %#x, not exit %d\n", w, st, want[i]);
					return 3;
				}
				kids[i] = kids[--nk];
				want[i] = want[nk];
				reaped++;
				break;
			}
		}
		if (now_ms() >= next) {
			printf("tick %llu reaped %llu\n", (unsigned long long)tick++, (unsigned long long)reaped);
			next += 50;
		}
		usleep(1000);
	}
}
