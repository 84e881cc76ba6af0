/* SPDX-License-Identifier: MIT */
/*
 * Injector latencies, side by side with the raw ptrace round trip they are
 * built from, in one run:
 *   raw:     PTRACE_SETREGS + PTRACE_CONT + waitpid + PTRACE_GETREGS, the
 *            tracee stopping at once on an int3 of our own
 *   syscall: ckpt_inject_syscall(getpid): two syscall stops, so that a
 *            target survives a SIGKILL of ckpt; with CKPT_INJECT_EXITKILL
 *            (restore's process, which dies with ckpt) one single step
 *   seize:   ckpt_inject_seize (all threads, with xstate)
 *   release: ckpt_inject_release
 * for targets of 1 and 8 threads, with both processes pinned to the same
 * CPU and to different CPUs. Prints median and p99 in microseconds.
 * Usage: bench-inject [RUNS]
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/inject.h>

extern char bench_int3[];
__asm__(".text\n.globl bench_int3\nbench_int3: int3\n nop\n");

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	printf("| %-34s | %8.1f | %8.1f |\n", what, v[n / 2], v[(int)(n * 0.99)]);
}

static void pin(pid_t pid, int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(pid, sizeof(s), &s);
}

static void *idle_thread(void *arg)
{
	for (;;)
		pause();
	return arg;
}

static pid_t spawn(int threads)
{
	pid_t pid = fork();

	if (pid == 0) {
		pthread_t t;

		for (int i = 1; i < threads; i++)
			pthread_create(&t, NULL, idle_thread, NULL);
		for (;;)
			pause();
	}
	usleep(50000);
	return pid;
}

static double median_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 1000;
	double *a = calloc((size_t)runs, sizeof(double));
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);

	printf("runs per figure: %d; microseconds\n\n", runs);
	for (int placement = 0; placement < (ncpu > 1 ? 2 : 1); placement++) {
		int tcpu = placement == 0 ? 0 : 1;
		double raw_med, sys_med;

		pin(0, 0);
		printf("### tracer on CPU 0, target on CPU %d (%s)\n\n", tcpu,
		       placement == 0 ? "same vCPU" : "across vCPUs");
		printf("| %-34s | %8s | %8s |\n|---|---:|---:|\n", "operation", "median", "p99");
		for (int threads = 1; threads <= 8; threads += 7) {
			pid_t pid = spawn(threads);
			struct ckpt_inject *inj;
			char label[64];

			pin(pid, tcpu);
			/* Pin every thread of the target. */
			{
				char path[64];
				FILE *f;

				snprintf(path, sizeof(path), "ls /proc/%d/task", pid);
				f = popen(path, "r");
				while (f && fgets(path, sizeof(path), f))
					pin(atoi(path), tcpu);
				if (f)
					pclose(f);
			}
			for (int i = 0; i < runs; i++) {
				double t0 = now_us(), t1, t2;

				if (ckpt_inject_seize(pid, 0, &inj) < 0)
					return 1;
				t1 = now_us();
				if (ckpt_inject_release(inj) < 0)
					return 1;
				t2 = now_us();
				a[i] = t1 - t0;
				(void)t2;
			}
			snprintf(label, sizeof(label), "seize+interrupt, %d thread%s", threads,
				 threads > 1 ? "s" : "");
			report(label, a, runs);
			for (int i = 0; i < runs; i++) {
				double t0;

				if (ckpt_inject_seize(pid, 0, &inj) < 0)
					return 1;
				t0 = now_us();
				if (ckpt_inject_release(inj) < 0)
					return 1;
				a[i] = now_us() - t0;
			}
			snprintf(label, sizeof(label), "release, %d thread%s", threads, threads > 1 ? "s" : "");
			report(label, a, runs);

			if (threads == 1) {
				struct user_regs_struct regs, out;
				int status;

				/* The raw round trip on an int3 of ours. */
				ptrace(PTRACE_SEIZE, pid, 0, 0);
				ptrace(PTRACE_INTERRUPT, pid, 0, 0);
				waitpid(pid, &status, __WALL);
				ptrace(PTRACE_GETREGS, pid, 0, &regs);
				regs.rip = (unsigned long long)(uintptr_t)bench_int3;
				regs.orig_rax = (unsigned long long)-1;
				for (int i = 0; i < runs; i++) {
					double t0 = now_us();

					ptrace(PTRACE_SETREGS, pid, 0, &regs);
					ptrace(PTRACE_CONT, pid, 0, 0);
					waitpid(pid, &status, __WALL);
					ptrace(PTRACE_GETREGS, pid, 0, &out);
					a[i] = now_us() - t0;
				}
				report("raw SETREGS+CONT+waitpid+GETREGS", a, runs);
				raw_med = median_of(a, runs);
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				pid = spawn(1);
				pin(pid, tcpu);

				if (ckpt_inject_seize(pid, 0, &inj) < 0)
					return 1;
				for (int i = 0; i < runs; i++) {
					int64_t res;
					double t0 = now_us();

					if (ckpt_inject_call(inj, &res, SYS_getpid) < 0 || res != pid)
						return 1;
					a[i] = now_us() - t0;
				}
				ckpt_inject_release(inj);
				report("remote syscall (getpid)", a, runs);
				sys_med = median_of(a, runs);
				printf("| %-34s | %7.2fx |          |\n", "remote syscall / raw (medians)",
				       sys_med / raw_med);
				/* A process that dies with ckpt (restore's): one single step per call. */
				if (ckpt_inject_seize(pid, CKPT_INJECT_EXITKILL, &inj) < 0)
					return 1;
				for (int i = 0; i < runs; i++) {
					int64_t res;
					double t0 = now_us();

					if (ckpt_inject_call(inj, &res, SYS_getpid) < 0 || res != pid)
						return 1;
					a[i] = now_us() - t0;
				}
				ckpt_inject_release(inj);
				report("remote syscall, EXITKILL", a, runs);
				printf("| %-34s | %7.2fx |          |\n", "remote syscall, EXITKILL / raw",
				       median_of(a, runs) / raw_med);
			}
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		printf("\n");
	}
	return 0;
}
