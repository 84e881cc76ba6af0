/* SPDX-License-Identifier: MIT */
/*
 * A thread in uninterruptible sleep (D), for the seize timeout tests
 * (test/integ/seize_timeout.c).
 *
 *   dstate MS
 *
 * A thread named "vforker" calls vfork(); the child sleeps MS milliseconds
 * and exits. Until then the thread waits in the kernel (kernel_clone, system
 * call 58) in a killable sleep, which /proc shows as D and which neither a
 * signal nor PTRACE_INTERRUPT ends: only SIGKILL or the child's exit or
 * exec. The program prints "ready" and "vforker <its tid>" when the thread
 * is about to vfork, then the main thread prints "tick <n>" every 20 ms; once the vfork is
 * over the vforker prints "back <child's wait status>" and then "work <n>"
 * every 20 ms. Output is line by line with write(2).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long child_ms;
static atomic_int about_to_vfork; /* the vforker's tid, once it is about to */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	if (write(1, line, (size_t)n) != n)
		exit(1);
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0)
		;
}

static void *vforker(void *arg)
{
	struct timespec ts = { child_ms / 1000, (child_ms % 1000) * 1000000L };
	int status = -1;
	pid_t child;

	(void)arg;
	prctl(PR_SET_NAME, "vforker");
	atomic_store(&about_to_vfork, (int)syscall(SYS_gettid));
	child = vfork();
	if (child == 0) {
		/* Shares our memory and stack: raw system calls only, never return. */
		syscall(SYS_nanosleep, &ts, NULL);
		syscall(SYS_exit, 0);
	}
	if (child < 0 || waitpid(child, &status, 0) != child)
		say("vfork failed");
	say("back %d", status);
	for (long n = 0;; n++) {
		say("work %ld", n);
		nap_ms(20);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc != 2 || (child_ms = atol(argv[1])) <= 0) {
		fprintf(stderr, "usage: dstate MS\n");
		return 2;
	}
	if (pthread_create(&t, NULL, vforker, NULL))
		return 1;
	while (!atomic_load(&about_to_vfork))
		nap_ms(1);
	say("ready");
	say("vforker %d", atomic_load(&about_to_vfork));
	for (long n = 0;; n++) {
		say("tick %ld", n);
		nap_ms(20);
	}
}
