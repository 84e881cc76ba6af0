/* SPDX-License-Identifier: MIT */
/*
 * Target of scripts/bench-threads (issue 13): a process of NTHREADS threads
 * whose main thread works and measures its own stalls, the others parked
 * like the idle workers of a thread pool.
 *
 *   threadsbench NTHREADS [HEAP_MIB [PERCENT_PER_S]]   defaults 1, 256, 1
 *
 * The heap (HEAP_MIB of private anonymous memory) is filled at start, half
 * text and half noise per page. Then the main thread spins on
 * clock_gettime(CLOCK_MONOTONIC) and rewrites a random word of a random
 * page PERCENT_PER_S percent of the heap's pages a second, paced by that
 * clock. Every gap of GAP_MIN_NS or more between two readings of the clock
 * is a stall: it is logged in a ring the driver reads through
 * /proc/PID/mem, with when it started, how long it was, and whether the
 * thread was switched out voluntarily during it (getrusage(RUSAGE_THREAD)):
 * a stop, as by ptrace, or only preempted. It opens no file after start: a
 * checkpoint may catch it at any instruction, and a /proc file open then
 * (its schedstat, say) would make ckpt refuse the process. The other NTHREADS - 1 threads wait for
 * good: the even ones in pthread_cond_wait (a futex), the odd ones in nanosleep of a second, again
 * and again. Each has glibc's default stack.
 *
 * It prints "ready log=ADDR" once every thread runs and the heap is filled.
 * The log (struct below) is the same after a restore: the driver of a
 * restored process reads it at the same address.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PS	   4096UL
#define GAP_MIN_NS 20000ULL
#define RING	   65536

/* Read by bench-threads at the address printed: keep in step with it. */
struct stall {
	uint64_t start_ns; /* CLOCK_MONOTONIC, the last reading before the gap */
	uint64_t len_ns;
	uint64_t stopped; /* 1: switched out voluntarily during the gap */
};

struct stall_log {
	uint64_t magic; /* "thbench1" */
	uint64_t threads_running;
	uint64_t loops;
	uint64_t pages_written;
	_Atomic uint64_t n; /* stalls logged so far; entry i is ring[i % RING] */
	struct stall ring[RING];
};

static struct stall_log *g_log;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static _Atomic unsigned int started;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t xs(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void fill(unsigned char *page, uint64_t i)
{
	static const char words[] = "a pool of threads parked while the main one works and writes ";
	uint64_t x = i * 0x9E3779B97F4A7C15ULL + 1;

	for (size_t k = 0; k < PS / 2; k++)
		page[k] = (unsigned char)words[(k + i) % (sizeof(words) - 1)];
	for (size_t k = PS / 2; k < PS; k += 8) {
		uint64_t v = xs(&x);

		memcpy(page + k, &v, 8);
	}
}

static void *parked(void *arg)
{
	uintptr_t i = (uintptr_t)arg;

	atomic_fetch_add(&started, 1);
	if (i % 2 == 0) {
		pthread_mutex_lock(&pool_lock);
		for (;;)
			pthread_cond_wait(&pool_cond, &pool_lock); /* never signalled */
	}
	for (;;) {
		struct timespec ts = {.tv_sec = 1};

		nanosleep(&ts, NULL);
	}
	return NULL;
}

static uint64_t voluntary_switches(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (uint64_t)ru.ru_nvcsw;
}

int main(int argc, char **argv)
{
	unsigned int nthreads = argc > 1 ? (unsigned int)atoi(argv[1]) : 1;
	size_t pages = (argc > 2 ? strtoul(argv[2], NULL, 10) : 256) * (1 << 20) / PS;
	double percent = argc > 3 ? atof(argv[3]) : 1;
	uint64_t period_ns, next_write, last, nvcsw, rng = 12345;
	unsigned char *heap;

	if (nthreads < 1 || nthreads > 4096 || !pages || percent <= 0) {
		fprintf(stderr, "usage: threadsbench NTHREADS [HEAP_MIB [PERCENT_PER_S]]\n");
		return 2;
	}
	heap = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g_log = mmap(NULL, sizeof(*g_log), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		     0);
	if (heap == MAP_FAILED || g_log == MAP_FAILED) {
		perror("threadsbench: mmap");
		return 1;
	}
	memcpy(&g_log->magic, "thbench1", 8);
	for (size_t i = 0; i < pages; i++)
		fill(heap + i * PS, i);
	for (unsigned int i = 1; i < nthreads; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, parked, (void *)(uintptr_t)i)) {
			fprintf(stderr, "threadsbench: cannot start thread %u\n", i);
			return 1;
		}
		pthread_detach(t);
	}
	while (atomic_load(&started) < nthreads - 1)
		usleep(1000);
	usleep(10000); /* let the last ones reach their wait */
	g_log->threads_running = nthreads;
	printf("ready log=%p\n", (void *)g_log);
	fflush(stdout);

	period_ns = (uint64_t)(1e9 / ((double)pages * percent / 100));
	if (!period_ns)
		period_ns = 1;
	nvcsw = voluntary_switches();
	last = now_ns();
	next_write = last + period_ns;
	for (;;) {
		uint64_t t = now_ns();

		if (t - last >= GAP_MIN_NS) {
			uint64_t v = voluntary_switches(),
				 n = atomic_load_explicit(&g_log->n, memory_order_relaxed);
			struct stall *s = &g_log->ring[n % RING];

			s->start_ns = last;
			s->len_ns = t - last;
			s->stopped = v != nvcsw;
			nvcsw = v;
			atomic_store_explicit(&g_log->n, n + 1, memory_order_release);
			t = now_ns(); /* the bookkeeping is not a stall */
		}
		last = t;
		g_log->loops++;
		if (t >= next_write) {
			size_t pg = xs(&rng) % pages;

			heap[pg * PS + (xs(&rng) % (PS / 8)) * 8] ^= 1;
			g_log->pages_written++;
			next_write += period_ns;
			if (t > next_write + 1000000000ULL)
				next_write = t + period_ns; /* a long stop: no burst to catch up */
		}
	}
}
