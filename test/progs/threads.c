/* SPDX-License-Identifier: MIT */
/*
 * Target of the multi-threaded checkpoint tests: a process whose every
 * output line depends on all that its threads did before, so that a
 * restored process's output reads exactly as an uninterrupted run's.
 *
 *   threads [mutex|churn|vfork] [ROUNDS]
 *
 * mutex (the default): 8 threads. Six workers run rounds with the main
 * thread: each round, after a barrier, every worker updates its
 * thread-local state and, under each kind of mutex (normal, recursive,
 * error-checking, priority-inheriting, robust), a shared sum; then the
 * workers pass a token in order through a condition variable; the worker
 * whose turn it is waits for the SIGUSR1 the main thread sent it alone
 * with pthread_kill (the handler counts it in thread-local storage). A
 * second barrier, and the main thread prints "ROUND CHECKSUM", the
 * checksum folding all of it in. Every worker blocks its own signals
 * (SIGRTMIN+i, SIGUSR2 for odd i) and checks each round that its mask and
 * its TID (gettid) are still its own. A parker thread sleeps in a timed
 * condition-variable wait that the main thread signals every 16 rounds
 * only; a sleeper thread sleeps in nanosleep and clock_nanosleep
 * (TIMER_ABSTIME) by turns and checks each returned 0 after its full time.
 * Rounds are paced by a 4 ms sleep of the main thread.
 *
 * churn: threads are created and joined all the time: the main thread
 * starts 3 short-lived threads a round and folds in their results; a
 * churner thread starts and joins batches of 4 more (and one detached)
 * every millisecond, checking what each returns; a relay thread lives
 * 20 ms, starts its successor and ends, so that checkpoints 100 ms apart
 * always see another set of threads.
 *
 * vfork: as mutex, plus a thread that calls clone(CLONE_VM | CLONE_VFORK):
 * it waits in uninterruptible sleep (state D) until its child, which only
 * pauses, is killed. The output is the same as mutex's.
 *
 * Prints "ready" once every thread runs, then a line a round; after ROUNDS
 * rounds (0, the default: forever) "done", exit 0. Anything unexpected (a
 * mutex operation's error, a changed TID or mask, a signal that went astray,
 * a short sleep): a line "ERROR ..." on stdout and stderr, exit status 3.
 * stdout is line-buffered: one write(2) per line.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS    6
#define PARK_EVERY 16
#define ROUND_MS   4
#define SLEEP_MS   150
#define JOBS       3 /* short-lived threads a round (churn) */
#define BATCH      4 /* the churner's joinable threads a batch */

enum { MU_NORMAL, MU_RECURSIVE, MU_ERRORCHECK, MU_PI, MU_ROBUST, NR_MU };
static const char *const mu_name[NR_MU] = { "normal", "recursive", "error-checking", "priority-inheriting",
					    "robust" };
static pthread_mutex_t mu[NR_MU];
static uint64_t shared_sum[NR_MU];

static pthread_barrier_t start_bar, end_bar;
static pthread_t workers[WORKERS];
static uint64_t published[WORKERS];
static atomic_uint sigs_seen[WORKERS];
static atomic_uint sigs_astray;
static atomic_int started;

/* The token ring: workers in order 0..WORKERS-1 each round. */
static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cv = PTHREAD_COND_INITIALIZER;
static int ring_turn;
static uint64_t ring_hash;

/* The parker: woken every PARK_EVERY rounds, acknowledges on ack_cv. */
static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv, ack_cv;
static uint64_t park_gen, park_seen, park_acc;

/* churn */
static uint64_t churn_sum;
static atomic_ulong churned;

static __thread int tls_idx = -1;
static __thread pid_t tls_tid;
static __thread sigset_t tls_mask;
static __thread uint64_t tls_acc;
static __thread volatile sig_atomic_t tls_sigs;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static pid_t sys_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "ERROR tid %d: ", sys_gettid());
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* Straight to the fds: another thread may hold stdout's lock. */
	if (write(1, line, (size_t)n) < 0 || write(2, line, (size_t)n) < 0) {
		/* nothing better to do */
	}
	_exit(3);
}

static void check(int r, const char *what)
{
	if (r)
		fail("%s: %s (%d)", what, strerror(r), r);
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

/* ---- the mutexes ---- */

static void mutexes_init(void)
{
	static const int type[NR_MU] = { PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_ERRORCHECK,
					 PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_ERRORCHECK };

	for (int k = 0; k < NR_MU; k++) {
		pthread_mutexattr_t a;

		check(pthread_mutexattr_init(&a), "pthread_mutexattr_init");
		check(pthread_mutexattr_settype(&a, type[k]), "pthread_mutexattr_settype");
		if (k == MU_PI)
			check(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT), "PTHREAD_PRIO_INHERIT");
		if (k == MU_ROBUST)
			check(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), "PTHREAD_MUTEX_ROBUST");
		check(pthread_mutex_init(&mu[k], &a), "pthread_mutex_init");
		pthread_mutexattr_destroy(&a);
	}
}

static void lock(int k)
{
	int r = pthread_mutex_lock(&mu[k]);

	/* EOWNERDEAD: the kernel found the owner's TID gone (robust list, PI futex). */
	if (r)
		fail("lock of the %s mutex: %s (%d)", mu_name[k], strerror(r), r);
}

static void unlock(int k)
{
	int r = pthread_mutex_unlock(&mu[k]);

	/* EPERM: the mutex's owner is not this thread's TID. */
	if (r)
		fail("unlock of the %s mutex: %s (%d)", mu_name[k], strerror(r), r);
}

/* Each kind of mutex in turn, with what only that kind does. */
static void update_shared(void)
{
	for (int k = 0; k < NR_MU; k++) {
		int r;

		lock(k);
		switch (k) {
		case MU_RECURSIVE:
			lock(k);
			shared_sum[k] += mix(tls_acc + (uint64_t)k);
			unlock(k);
			break;
		case MU_ERRORCHECK:
		case MU_ROBUST:
			/* The owner is this thread: a second lock is a deadlock, said so. */
			r = pthread_mutex_lock(&mu[k]);
			if (r != EDEADLK)
				fail("relock of the %s mutex by its owner: %s (%d), not EDEADLK", mu_name[k],
				     strerror(r), r);
			shared_sum[k] += mix(tls_acc + (uint64_t)k);
			break;
		default:
			shared_sum[k] += mix(tls_acc + (uint64_t)k);
			break;
		}
		unlock(k);
	}
}

/* ---- every thread ---- */

static void on_usr1(int sig)
{
	(void)sig;
	if (tls_idx >= 0 && tls_idx < WORKERS) {
		tls_sigs++;
		atomic_fetch_add(&sigs_seen[tls_idx], 1);
	} else {
		atomic_fetch_add(&sigs_astray, 1);
	}
}

/* Note this thread's TID and set its own signal mask (@block, plus nothing else). */
static void thread_begin(int idx, const sigset_t *block)
{
	tls_idx = idx;
	tls_tid = sys_gettid();
	tls_mask = *block;
	check(pthread_sigmask(SIG_SETMASK, block, NULL), "pthread_sigmask");
}

/* The TID and signal mask are what this thread set. */
static void check_self(void)
{
	sigset_t m;
	pid_t t = sys_gettid();

	if (t != tls_tid)
		fail("gettid() is %d, the thread started as %d", t, tls_tid);
	check(pthread_sigmask(SIG_SETMASK, NULL, &m), "pthread_sigmask");
	for (int s = 1; s < 65; s++) {
		/* glibc's own, and the two no mask holds */
		if (s == 32 || s == 33 || s == SIGKILL || s == SIGSTOP)
			continue;
		if (sigismember(&m, s) != sigismember(&tls_mask, s))
			fail("signal %d is %s, it was %s", s, sigismember(&m, s) ? "blocked" : "not blocked",
			     sigismember(&tls_mask, s) ? "blocked" : "not blocked");
	}
}

static void barrier(pthread_barrier_t *b)
{
	int r = pthread_barrier_wait(b);

	if (r != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD)
		fail("pthread_barrier_wait: %s", strerror(r));
}

/* ---- mutex mode ---- */

static void *worker(void *arg)
{
	int i = (int)(intptr_t)arg;
	unsigned expect = 0;
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGRTMIN + i);
	if (i & 1)
		sigaddset(&block, SIGUSR2);
	thread_begin(i, &block);
	tls_acc = mix((uint64_t)i + 1);
	atomic_fetch_add(&started, 1);
	for (uint64_t r = 1;; r++) {
		barrier(&start_bar);
		check_self();
		tls_acc = mix(tls_acc ^ (r << 8) ^ (uint64_t)i);
		update_shared();

		check(pthread_mutex_lock(&ring_mu), "lock of the ring mutex");
		while (ring_turn != i)
			check(pthread_cond_wait(&ring_cv, &ring_mu), "pthread_cond_wait");
		ring_hash = mix(ring_hash ^ tls_acc);
		ring_turn++;
		check(pthread_cond_broadcast(&ring_cv), "pthread_cond_broadcast");
		check(pthread_mutex_unlock(&ring_mu), "unlock of the ring mutex");

		/* This round's SIGUSR1 is this thread's: wait until its handler ran here. */
		if (r % WORKERS == (uint64_t)i) {
			uint64_t t0 = now_ns();

			expect++;
			while ((unsigned)tls_sigs < expect) {
				if (now_ns() - t0 > 120ull * 1000000000ull)
					fail("round %llu: SIGUSR1 never came", (unsigned long long)r);
				sleep_ms(1);
			}
		}
		if ((unsigned)tls_sigs != expect)
			fail("round %llu: %u SIGUSR1, expected %u", (unsigned long long)r, (unsigned)tls_sigs,
			     expect);
		tls_acc = mix(tls_acc ^ (uint64_t)tls_sigs);
		published[i] = tls_acc;
		barrier(&end_bar);
	}
	return NULL;
}

static void *parker(void *arg)
{
	sigset_t block;

	(void)arg;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	thread_begin(WORKERS, &block);
	check(pthread_mutex_lock(&park_mu), "lock of the park mutex");
	atomic_fetch_add(&started, 1);
	for (;;) {
		while (park_gen == park_seen) {
			struct timespec until;
			int r;

			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += 30;
			r = pthread_cond_timedwait(&park_cv, &park_mu, &until);
			if (r && r != ETIMEDOUT)
				check(r, "pthread_cond_timedwait");
		}
		check_self();
		park_seen = park_gen;
		park_acc = mix(park_acc ^ park_seen);
		check(pthread_cond_signal(&ack_cv), "pthread_cond_signal");
	}
	return NULL;
}

static void *sleeper(void *arg)
{
	sigset_t block;

	(void)arg;
	sigfillset(&block);
	thread_begin(WORKERS + 1, &block);
	atomic_fetch_add(&started, 1);
	for (unsigned n = 0;; n++) {
		uint64_t t0 = now_ns();
		struct timespec ts = { 0, SLEEP_MS * 1000000L };
		int r;

		if (n & 1) {
			struct timespec until;

			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec += SLEEP_MS * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
			if (r)
				fail("clock_nanosleep(TIMER_ABSTIME) returned %s", strerror(r));
		} else {
			r = nanosleep(&ts, NULL);
			if (r)
				fail("nanosleep returned %d: %s", r, strerror(errno));
		}
		if (now_ns() - t0 < SLEEP_MS * 1000000ull)
			fail("a sleep of %d ms took %llu ns", SLEEP_MS, (unsigned long long)(now_ns() - t0));
		check_self();
	}
	return NULL;
}

static int vfork_child(void *arg)
{
	(void)arg;
	/* Raw calls: it runs on the vforking thread's TLS. */
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	for (;;)
		syscall(SYS_pause);
	return 0;
}

/* Stays in D (the vfork wait) until its child is killed. */
static void *vforker(void *arg)
{
	static char stack[64 << 10] __attribute__((aligned(16)));
	sigset_t block;
	pid_t c;
	int st;

	(void)arg;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	thread_begin(WORKERS + 2, &block);
	atomic_fetch_add(&started, 1);
	c = clone(vfork_child, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
	if (c < 0)
		fail("clone(CLONE_VFORK): %s", strerror(errno));
	if (waitpid(c, &st, 0) != c)
		fail("waitpid of the vfork child %d: %s", c, strerror(errno));
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail("the vfork child %d ended with status %#x, not SIGKILL", c, st);
	check_self();
	return NULL;
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	check(pthread_create(t, NULL, fn, arg), "pthread_create");
}

static void wait_started(int n)
{
	while (atomic_load(&started) < n)
		sleep_ms(1);
}

static uint64_t round_mutex(uint64_t r, uint64_t sum)
{
	int r_sig;

	check(pthread_mutex_lock(&ring_mu), "lock of the ring mutex");
	ring_turn = 0;
	check(pthread_mutex_unlock(&ring_mu), "unlock of the ring mutex");
	r_sig = pthread_kill(workers[r % WORKERS], SIGUSR1);
	check(r_sig, "pthread_kill");
	barrier(&start_bar);
	barrier(&end_bar);
	if (r % PARK_EVERY == 0) {
		check(pthread_mutex_lock(&park_mu), "lock of the park mutex");
		park_gen++;
		check(pthread_cond_signal(&park_cv), "pthread_cond_signal");
		while (park_seen != park_gen)
			check(pthread_cond_wait(&ack_cv, &park_mu), "pthread_cond_wait");
		check(pthread_mutex_unlock(&park_mu), "unlock of the park mutex");
	}
	if (atomic_load(&sigs_astray))
		fail("%u SIGUSR1 reached a thread they were not sent to", atomic_load(&sigs_astray));
	for (int k = 0; k < NR_MU; k++)
		sum = mix(sum ^ shared_sum[k]);
	sum = mix(sum ^ ring_hash);
	for (int i = 0; i < WORKERS; i++)
		sum = mix(sum ^ published[i] ^ ((uint64_t)atomic_load(&sigs_seen[i]) << 48));
	return mix(sum ^ park_acc);
}

static void setup_mutex(int vfork_too)
{
	pthread_t t;
	pthread_condattr_t ca;

	check(pthread_condattr_init(&ca), "pthread_condattr_init");
	check(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), "pthread_condattr_setclock");
	check(pthread_cond_init(&park_cv, &ca), "pthread_cond_init");
	check(pthread_cond_init(&ack_cv, NULL), "pthread_cond_init");
	check(pthread_barrier_init(&start_bar, NULL, WORKERS + 1), "pthread_barrier_init");
	check(pthread_barrier_init(&end_bar, NULL, WORKERS + 1), "pthread_barrier_init");
	for (int i = 0; i < WORKERS; i++)
		start(&workers[i], worker, (void *)(intptr_t)i);
	start(&t, parker, NULL);
	start(&t, sleeper, NULL);
	if (vfork_too)
		start(&t, vforker, NULL);
	wait_started(WORKERS + 2 + vfork_too);
}

/* ---- churn mode ---- */

struct job {
	uint64_t in, out;
	int add; /* fold into churn_sum (the main thread's jobs) */
	pid_t parent;
};

static void *short_lived(void *arg)
{
	struct job *j = arg;
	uint64_t v = j->in;

	if (sys_gettid() == j->parent)
		fail("a new thread has its creator's TID %d", j->parent);
	for (int n = 0; n < 64; n++)
		v = mix(v);
	j->out = v;
	if (j->add) {
		lock(MU_ROBUST);
		churn_sum += v;
		unlock(MU_ROBUST);
	}
	return j;
}

static void *detached(void *arg)
{
	(void)arg;
	atomic_fetch_add(&churned, 1);
	return NULL;
}

static void run_jobs(struct job *jobs, int n, uint64_t base, int add)
{
	pthread_t t[BATCH > JOBS ? BATCH : JOBS];

	for (int k = 0; k < n; k++) {
		jobs[k] = (struct job){ .in = base + (uint64_t)k, .add = add, .parent = sys_gettid() };
		start(&t[k], short_lived, &jobs[k]);
	}
	for (int k = 0; k < n; k++) {
		void *ret;
		uint64_t v = jobs[k].in;

		check(pthread_join(t[k], &ret), "pthread_join");
		for (int m = 0; m < 64; m++)
			v = mix(v);
		if (ret != &jobs[k] || jobs[k].out != v)
			fail("a short-lived thread returned %p (%#llx), not %p (%#llx)", ret,
			     (unsigned long long)jobs[k].out, (void *)&jobs[k], (unsigned long long)v);
	}
}

static void *churner(void *arg)
{
	struct job jobs[BATCH];
	pthread_attr_t da;
	sigset_t block;

	(void)arg;
	sigemptyset(&block);
	thread_begin(WORKERS, &block);
	check(pthread_attr_init(&da), "pthread_attr_init");
	check(pthread_attr_setdetachstate(&da, PTHREAD_CREATE_DETACHED), "pthread_attr_setdetachstate");
	atomic_fetch_add(&started, 1);
	for (uint64_t n = 0;; n++) {
		pthread_t t;
		int r;

		run_jobs(jobs, BATCH, n * BATCH + (1ull << 40), 0);
		/* A detached thread: none may be left, EAGAIN only if too many linger. */
		r = pthread_create(&t, &da, detached, NULL);
		if (r && r != EAGAIN)
			check(r, "pthread_create (detached)");
		check_self();
		sleep_ms(1);
	}
	return NULL;
}

static void *relay(void *arg)
{
	pthread_t t;

	(void)arg;
	check(pthread_detach(pthread_self()), "pthread_detach");
	sleep_ms(20);
	start(&t, relay, NULL);
	return NULL;
}

static uint64_t round_churn(uint64_t r, uint64_t sum)
{
	struct job jobs[JOBS];

	run_jobs(jobs, JOBS, r * JOBS, 1);
	for (int k = 0; k < JOBS; k++)
		sum = mix(sum ^ jobs[k].out);
	return mix(sum ^ churn_sum);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "mutex";
	unsigned long long rounds = argc > 2 ? strtoull(argv[2], NULL, 0) : 0;
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	int churn = !strcmp(mode, "churn");
	sigset_t block;
	uint64_t sum = 0;

	if (!churn && strcmp(mode, "mutex") && strcmp(mode, "vfork")) {
		fprintf(stderr, "usage: threads [mutex|churn|vfork] [ROUNDS]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	thread_begin(-1, &block);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		fail("sigaction: %s", strerror(errno));
	mutexes_init();
	if (churn) {
		pthread_t t;

		start(&t, churner, NULL);
		wait_started(1);
		start(&t, relay, NULL);
	} else {
		setup_mutex(!strcmp(mode, "vfork"));
	}
	printf("ready\n");
	for (uint64_t r = 1; !rounds || r <= rounds; r++) {
		sum = mix(sum ^ r);
		sum = churn ? round_churn(r, sum) : round_mutex(r, sum);
		check_self();
		printf("%llu %016llx\n", (unsigned long long)r, (unsigned long long)sum);
		sleep_ms(ROUND_MS);
	}
	printf("done\n");
	return 0;
}
