/* SPDX-License-Identifier: MIT */
/*
 * A process tree that writes exactly what it is told, for the tests of
 * `ckpt track` on a tree: a root and workers it forks on command, each with
 * a region of REGION_PAGES private anonymous pages of its own.
 *
 *   treewriter            the root; prints "ready", then obeys stdin:
 *     fork                a new worker                        -> child PID
 *     w PID N             PID (the root or a worker) writes the next N
 *                         pages of its region (a stamp of its own in every
 *                         byte, wrapping around)               -> ok
 *     exit PID CODE       the worker exits with CODE; reaped   -> exited PID STATUS
 *     exec PID            the worker executes this program again as a
 *                         worker (a fresh region)              -> ok
 *     check               every live process checks every page it wrote
 *                         holds its stamp: one line each, "PID ok" or
 *                         "PID FAIL: why", then                -> done
 *   treewriter worker CMDFD REPLYFD   (what exec runs)
 *
 * A worker talks to the root over two pipes (commands in, answers out);
 * the root answers on stdout. A worker blocked in read(2) writes nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define REGION_PAGES 4096
#define PS 4096UL
#define MAX_WORKERS 64

static unsigned char *region;
static uint32_t stamps[REGION_PAGES]; /* 0: never written */
static uint32_t next_page, next_stamp = 1;

static void region_new(void)
{
	region = mmap(NULL, REGION_PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		exit(3);
	memset(stamps, 0, sizeof(stamps));
	next_page = 0;
}

static unsigned char byte_of(uint32_t stamp, size_t i)
{
	return (unsigned char)(stamp * 131 + i * 7 + (uint32_t)getpid());
}

static void write_pages(long n)
{
	for (long k = 0; k < n; k++) {
		uint32_t p = next_page++ % REGION_PAGES, s = next_stamp++;
		unsigned char *page = region + p * PS;

		for (size_t i = 0; i < PS; i++)
			page[i] = byte_of(s, i);
		stamps[p] = s;
	}
}

static void check(char *out, size_t len)
{
	for (uint32_t p = 0; p < REGION_PAGES; p++) {
		const unsigned char *page = region + p * PS;

		for (size_t i = 0; stamps[p] && i < PS; i++)
			if (page[i] != byte_of(stamps[p], i)) {
				snprintf(out, len, "%d FAIL: page %u byte %zu", getpid(), p, i);
				return;
			}
	}
	snprintf(out, len, "%d ok", getpid());
}

static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return (int)n;
}

static void say(int fd, const char *line)
{
	size_t n = strlen(line);

	if (write(fd, line, n) != (ssize_t)n || write(fd, "\n", 1) != 1)
		exit(4);
}

static int worker(int cmd, int reply)
{
	char line[128], out[160];

	region_new();
	say(reply, "ready");
	while (read_line(cmd, line, sizeof(line)) >= 0) {
		long n;
		int code;

		if (sscanf(line, "w %ld", &n) == 1) {
			write_pages(n);
			say(reply, "ok");
		} else if (sscanf(line, "exit %d", &code) == 1) {
			_exit(code);
		} else if (!strcmp(line, "exec")) {
			char a[16], b[16];

			snprintf(a, sizeof(a), "%d", cmd);
			snprintf(b, sizeof(b), "%d", reply);
			execl("/proc/self/exe", "treewriter", "worker", a, b, (char *)NULL);
			say(reply, "exec failed");
		} else if (!strcmp(line, "check")) {
			check(out, sizeof(out));
			say(reply, out);
		} else {
			say(reply, "?");
		}
	}
	return 0;
}

struct w {
	pid_t pid;
	int cmd, reply;
};

static struct w workers[MAX_WORKERS];
static int nr_workers;

static struct w *find(pid_t pid)
{
	for (int i = 0; i < nr_workers; i++)
		if (workers[i].pid == pid)
			return &workers[i];
	return NULL;
}

/* Send @line to worker @w, its answer into @out. */
static void ask(struct w *w, const char *line, char *out, size_t len)
{
	say(w->cmd, line);
	if (read_line(w->reply, out, len) < 0)
		snprintf(out, len, "%d FAIL: no answer", w->pid);
}

static void answer(const char *line)
{
	printf("%s\n", line);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	char line[128], out[160];

	if (argc == 4 && !strcmp(argv[1], "worker"))
		return worker(atoi(argv[2]), atoi(argv[3]));
	region_new();
	answer("ready");
	while (fgets(line, sizeof(line), stdin)) {
		int pid, code;
		long n;
		struct w *w;

		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "fork") && nr_workers < MAX_WORKERS) {
			int c[2], r[2];
			pid_t kid;

			if (pipe(c) < 0 || pipe(r) < 0)
				return 5;
			kid = fork();
			if (kid == 0) {
				close(c[1]);
				close(r[0]);
				return worker(c[0], r[1]);
			}
			close(c[0]);
			close(r[1]);
			workers[nr_workers++] = (struct w){ kid, c[1], r[0] };
			if (read_line(r[0], out, sizeof(out)) < 0)
				return 6;
			snprintf(out, sizeof(out), "child %d", kid);
			answer(out);
		} else if (sscanf(line, "w %d %ld", &pid, &n) == 2) {
			if (pid == getpid()) {
				write_pages(n);
				answer("ok");
			} else if ((w = find(pid))) {
				snprintf(line, sizeof(line), "w %ld", n);
				ask(w, line, out, sizeof(out));
				answer(out);
			} else {
				answer("no such worker");
			}
		} else if (sscanf(line, "exit %d %d", &pid, &code) == 2 && (w = find(pid))) {
			int st = 0;

			snprintf(line, sizeof(line), "exit %d", code);
			say(w->cmd, line);
			waitpid(pid, &st, 0);
			close(w->cmd);
			close(w->reply);
			*w = workers[--nr_workers];
			snprintf(out, sizeof(out), "exited %d %d", pid, st);
			answer(out);
		} else if (sscanf(line, "exec %d", &pid) == 1 && (w = find(pid))) {
			ask(w, "exec", out, sizeof(out));
			answer(!strcmp(out, "ready") ? "ok" : out);
		} else if (!strcmp(line, "check")) {
			check(out, sizeof(out));
			answer(out);
			for (int i = 0; i < nr_workers; i++) {
				ask(&workers[i], "check", out, sizeof(out));
				answer(out);
			}
			answer("done");
		} else {
			answer("?");
		}
	}
	return 0;
}
