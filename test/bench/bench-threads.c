/* SPDX-License-Identifier: MIT */
/*
 * Threads (issue 13): what each thread of a process adds to the freezes of
 * its dumps and to its restore, for processes of 1, 16 and 64 threads.
 *
 * The process (test/progs/threadsbench NTHREADS): a 256 MiB heap, filled;
 * the main thread spins on CLOCK_MONOTONIC and rewrites 1% of the heap's
 * pages a second; the other threads are parked like the idle workers of a
 * pool, half in a futex wait, half in nanosleep. The main thread logs every
 * gap of 20 us or more in its own clock, and whether it was switched out
 * voluntarily during it (a stop: ptrace) or only preempted; this driver is
 * its parent and reads the log through /proc/PID/mem. "Target's clock" is
 * the largest stop in the log within the time a ckpt command ran: the
 * freeze as the working thread lived it, preemption and steal left out;
 * "less the wait for a CPU" takes from a dump's stops the time the thread
 * was runnable again but waited on a run queue (from its schedstat, read
 * by this driver: see dump_stops()), as after its release while ckpt
 * still runs on its CPU.
 *
 * For each thread count, one process serves, in this order:
 *
 *  dumps   REPS rounds (after one warm-up round that arms the tracking and
 *          is not counted) of: 1 s with no ckpt running (the largest gap of
 *          any kind: the noise floor of the target's clock); a full
 *          `ckpt dump -t PID -D DIR --leave-running --json`; 1 s of
 *          writes; a delta `ckpt dump --parent DIR ... --leave-running
 *          --json`. For each: the target's largest stop (and, for the
 *          delta, its stops summed: a delta stops the process twice) and
 *          what ckpt reports: freeze_ms, prefreeze_ms (the harvest-only
 *          freeze before a delta's copy), collect_ms, track_ms, copy_ms;
 *          "rest" is freeze_ms less those three (seize, maps, release).
 *  parts   REPS more deltas, each 1 s after the one before, with -vv: the
 *          seize, harvest and release of the harvest-only freeze, and the
 *          number of remote calls of the checkpoint's freeze, from ckpt's
 *          debug messages (these runs do not count in the figures above).
 *  track   `ckpt track -t PID -D DIR --interval 1s --count 3*REPS+2
 *          --json`: a full checkpoint, then deltas; the first delta is
 *          left out, the other 3*REPS count. Per checkpoint: freeze_ms and
 *          prefreeze_ms of its NDJSON line, and the target's largest stop
 *          and stops summed from its prefreeze to the end of its freeze.
 *          To find those on the target's clock, the time_s of the lines
 *          (when each freeze began, on ckpt's clock of the run) is placed
 *          on it where a stop of the target begins with the most freezes
 *          (the main thread is seized first: it stops within a fraction of
 *          a millisecond of the freeze's start).
 *  restore `ckpt dump -t PID -D DIR --json` (kill mode; the process is
 *          reaped), then a warm-up round that is not counted (it checks
 *          the restored process: its pid, NTHREADS threads, its main
 *          thread running on), then REPS rounds of an eager
 *          `ckpt restore -D DIR --detach --json --stdio null --restore-pid`
 *          and a lazy one (the same with `--lazy --lazy-log FILE`).
 *          --restore-pid is what a process with threads always gets: one
 *          thread takes the same path. "wall" is from fork+exec of the
 *          command to its JSON line (the process runs); restore_ms and
 *          pages_ms as it reports them; for the lazy one, total_ms of its
 *          server's "lazy" line (every page in), which is awaited. A
 *          process with threads is restored with its own pid and thread
 *          ids: every restored process is killed and reaped (we are a
 *          subreaper), and its lazy server too, before the next restore.
 *
 * Every restore is preceded by populating and freeing as much memory as
 * it allocates, as bench-restore does (the VM hands freed memory back to
 * the host). Tables in markdown on stdout: median (p90 / max) per thread
 * count, p90 interpolated between ranks, and the cost per thread: (median
 * at the most threads - median at the fewest) / the difference in threads.
 * Every run on stderr. Ctrl-C (or SIGTERM, SIGHUP) stops the run; every
 * process and file of it is removed, also on failure.
 *
 * Usage: bench-threads [REPS [THREADS,... [IMGDIR]]]   defaults 7 1,16,64 /var/tmp
 * $CKPT names the ckpt binary (default build/ckpt), $PROGS the test programs
 * (default build/test/progs).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEAP_MIB      256
#define SLACK	      (64UL << 20) /* the process's other pages, ckpt's own buffers */
#define MAX_REPS      32
#define MAX_VALS      (3 * MAX_REPS)
#define MAX_NT	      8
#define TRACK_PER_REP 3

/* ---- the target's stall log: as in test/progs/threadsbench.c ---- */

#define RING 65536

struct stall {
	uint64_t start_ns, len_ns, stopped;
};

struct stall_log {
	uint64_t magic, threads_running, loops, pages_written, n;
	struct stall ring[RING];
};

/* ---- figures ---- */

enum fig {
	F_IDLE,
	F_FULL_TGT,
	F_FULL_NET,
	F_FULL_FREEZE,
	F_FULL_COLLECT,
	F_FULL_TRACK,
	F_FULL_COPY,
	F_FULL_REST,
	F_DELTA_TGT,
	F_DELTA_TGT_SUM,
	F_DELTA_NET,
	F_DELTA_PRE,
	F_DELTA_FREEZE,
	F_DELTA_SUM,
	F_DELTA_COLLECT,
	F_DELTA_TRACK,
	F_DELTA_COPY,
	F_DELTA_REST,
	F_TRACK_TGT,
	F_TRACK_TGT_SUM,
	F_TRACK_PRE,
	F_TRACK_FREEZE,
	F_TRACK_SUM,
	F_PART_SEIZE,
	F_PART_HARVEST,
	F_PART_RELEASE,
	F_PART_CALLS,
	F_EAGER_WALL,
	F_EAGER_RESTORE,
	F_EAGER_PAGES,
	F_EAGER_OTHER,
	F_LAZY_WALL,
	F_LAZY_RESTORE,
	F_LAZY_PAGES,
	F_LAZY_ALLIN,
	NR_FIG
};

enum section { S_FREEZE, S_PARTS, S_RESTORE };

static const struct {
	enum section sec;
	bool count; /* a number of things, not ms */
	const char *name;
} figs[NR_FIG] = {
	[F_IDLE] = {S_FREEZE, false, "no ckpt, 1 s: largest gap of any kind, target's clock"},
	[F_FULL_TGT] = {S_FREEZE, false, "**full dump: largest stop, target's clock**"},
	[F_FULL_NET] = {S_FREEZE, false, "full dump: the same, less the wait for a CPU in it"},
	[F_FULL_FREEZE] = {S_FREEZE, false, "**full dump: freeze_ms (ckpt)**"},
	[F_FULL_COLLECT] = {S_FREEZE, false, "full dump: collect_ms"},
	[F_FULL_TRACK] = {S_FREEZE, false, "full dump: track_ms"},
	[F_FULL_COPY] = {S_FREEZE, false, "full dump: copy_ms"},
	[F_FULL_REST] = {S_FREEZE, false, "full dump: rest (seize, maps, release)"},
	[F_DELTA_TGT] = {S_FREEZE, false, "**delta: largest stop, target's clock**"},
	[F_DELTA_TGT_SUM] = {S_FREEZE, false, "delta: stops summed, target's clock"},
	[F_DELTA_NET] = {S_FREEZE, false, "delta: the same, less the wait for a CPU in them"},
	[F_DELTA_PRE] = {S_FREEZE, false, "**delta: prefreeze_ms (ckpt; harvest only)**"},
	[F_DELTA_FREEZE] = {S_FREEZE, false, "**delta: freeze_ms (ckpt)**"},
	[F_DELTA_SUM] = {S_FREEZE, false, "delta: prefreeze_ms + freeze_ms"},
	[F_DELTA_COLLECT] = {S_FREEZE, false, "delta: collect_ms"},
	[F_DELTA_TRACK] = {S_FREEZE, false, "delta: track_ms (harvest)"},
	[F_DELTA_COPY] = {S_FREEZE, false, "delta: copy_ms"},
	[F_DELTA_REST] = {S_FREEZE, false, "delta: rest (seize, maps, release)"},
	[F_TRACK_TGT] = {S_FREEZE, false,
			 "**track -D, per checkpoint: largest stop, target's clock**"},
	[F_TRACK_TGT_SUM] = {S_FREEZE, false, "track -D: stops summed, target's clock"},
	[F_TRACK_PRE] = {S_FREEZE, false, "**track -D: prefreeze_ms (ckpt)**"},
	[F_TRACK_FREEZE] = {S_FREEZE, false, "**track -D: freeze_ms (ckpt)**"},
	[F_TRACK_SUM] = {S_FREEZE, false, "track -D: prefreeze_ms + freeze_ms"},
	[F_PART_SEIZE] = {S_PARTS, false, "harvest-only freeze: seize"},
	[F_PART_HARVEST] = {S_PARTS, false, "harvest-only freeze: harvest"},
	[F_PART_RELEASE] = {S_PARTS, false, "harvest-only freeze: release"},
	[F_PART_CALLS] = {S_PARTS, true, "checkpoint's freeze: remote calls"},
	[F_EAGER_WALL] = {S_RESTORE, false, "**eager: wall, command start to running**"},
	[F_EAGER_RESTORE] = {S_RESTORE, false, "**eager: restore_ms**"},
	[F_EAGER_PAGES] = {S_RESTORE, false, "eager: pages_ms"},
	[F_EAGER_OTHER] = {S_RESTORE, false, "eager: restore_ms - pages_ms"},
	[F_LAZY_WALL] = {S_RESTORE, false, "**lazy: wall, command start to running**"},
	[F_LAZY_RESTORE] = {S_RESTORE, false, "**lazy: restore_ms**"},
	[F_LAZY_PAGES] = {S_RESTORE, false, "lazy: pages_ms"},
	[F_LAZY_ALLIN] = {S_RESTORE, false, "lazy: every page in (server total_ms)"},
};

struct series {
	double v[MAX_VALS];
	int n;
};

static void add(struct series *s, double x)
{
	if (s->n < MAX_VALS)
		s->v[s->n++] = x;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The q-quantile, interpolated between ranks (q = 0.5: the median). */
static double quant(const struct series *s, double q)
{
	double v[MAX_VALS], pos;
	int k;

	if (!s->n)
		return 0;
	memcpy(v, s->v, (size_t)s->n * sizeof(*v));
	qsort(v, (size_t)s->n, sizeof(*v), cmp_d);
	pos = q * (s->n - 1);
	k = (int)pos;
	return k + 1 < s->n ? v[k] + (pos - k) * (v[k + 1] - v[k]) : v[k];
}

struct result {
	unsigned int nthreads;
	struct series f[NR_FIG];
	uint64_t mappings;
};

/* ---- the run: processes and files to clean up ---- */

static char g_tmp[PATH_MAX / 2];  /* our directory under IMGDIR */
static volatile pid_t g_cmd = -1; /* the ckpt command running now */
static volatile sig_atomic_t g_stop;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double ms_since(uint64_t t0)
{
	return (double)(now_ns() - t0) / 1e6;
}

static void on_stop(int sig)
{
	g_stop = sig;
	if (g_cmd > 0)
		kill(g_cmd, SIGTERM); /* ckpt undoes what it did on SIGTERM */
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* SIGKILL every child of ours (the target, restored processes, lazy servers). */
static bool kill_scan(void)
{
	pid_t me = getpid();
	bool any = false;
	struct dirent *de;
	DIR *d = opendir("/proc");

	while (d && (de = readdir(d))) {
		char path[300], buf[512], *p;
		int ppid = 0;
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
		    sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == me) {
			kill(atoi(de->d_name), SIGKILL);
			any = true;
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return any;
}

static void kill_children(void)
{
	if (g_cmd > 0) {
		kill(g_cmd, SIGTERM);
		for (int i = 0; i < 50 && waitpid(g_cmd, NULL, WNOHANG) == 0; i++)
			usleep(100000);
		kill(g_cmd, SIGKILL);
		waitpid(g_cmd, NULL, 0);
		g_cmd = -1;
	}
	for (int pass = 0; pass < 3 && kill_scan(); pass++) {
		for (;;) {
			pid_t w = waitpid(-1, NULL, 0);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				break;
		}
	}
}

static void cleanup(void)
{
	kill_children();
	if (g_tmp[0])
		rm_tree(g_tmp);
	g_tmp[0] = '\0';
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "bench-threads: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	cleanup();
	exit(g_stop ? 128 + g_stop : 1);
}

static void check_stop(void)
{
	if (g_stop)
		die("stopped by signal %d; cleaned up", (int)g_stop);
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		check_stop();
	check_stop();
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v && *v ? v : dflt;
}

static const char *ckpt_bin(void)
{
	return env_or("CKPT", "build/ckpt");
}

static const char *loadavg(char *buf, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "r");

	snprintf(buf, len, "?");
	if (f) {
		if (fscanf(f, "%15s", buf) != 1)
			snprintf(buf, len, "?");
		fclose(f);
	}
	return buf;
}

/* Populate and free @len bytes: memory backed by the host again. */
static void prewarm(size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		die("cannot map %zu MiB", len >> 20);
	madvise(m, len, MADV_POPULATE_WRITE);
	munmap(m, len);
}

/*
 * Start @argv: stdin /dev/null, stdout a pipe (returned in @ret_fd),
 * stderr ours, or /dev/null for the target, or the file @err. A ckpt
 * command's pid is left in g_cmd.
 */
static pid_t spawn(char *const argv[], bool is_cmd, const char *err, int *ret_fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		int efd = err ? open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644) : is_cmd ? 2 : null;
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (null < 0 || efd < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 ||
		    dup2(efd, 2) < 0)
			_exit(127);
		close_range(3, ~0U, 0); /* nothing of ours in the target but fds 0-2 */
		execv(argv[0], argv);
		fprintf(stderr, "bench-threads: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (is_cmd)
		g_cmd = pid;
	close(p[1]);
	*ret_fd = p[0];
	return pid;
}

/* Read one line (at most @len - 1 bytes); false at EOF before a newline. */
static bool read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t k = read(fd, buf + n, 1);

		if (k < 0 && errno == EINTR) {
			check_stop();
			continue;
		}
		if (k <= 0)
			break;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return true;
		}
		n++;
	}
	buf[n] = '\0';
	return false;
}

/* Everything until EOF, NUL-terminated (ckpt dump --json prints one object on several lines). */
static char *read_all(int fd)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);

	for (;;) {
		ssize_t k;

		if (!buf)
			die("out of memory");
		if (n + 1 >= cap)
			buf = realloc(buf, cap *= 2);
		if (!buf)
			die("out of memory");
		k = read(fd, buf + n, cap - n - 1);
		if (k < 0 && errno == EINTR) {
			check_stop();
			continue;
		}
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
	return buf;
}

static int wait_status(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			die("waitpid %d: %s", (int)pid, strerror(errno));
		check_stop();
	}
	if (pid == g_cmd)
		g_cmd = -1;
	return st;
}

/* Reap every child left (lazy servers), waiting up to @ms; then kill what remains. */
static void reap_all(unsigned int ms)
{
	uint64_t t0 = now_ns();

	for (;;) {
		pid_t w = waitpid(-1, NULL, WNOHANG);

		if (w > 0)
			continue;
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return; /* ECHILD: none left */
		if (ms_since(t0) > ms)
			break;
		sleep_ms(5);
	}
	fprintf(stderr, "bench-threads: a child did not exit in %u ms: killed\n", ms);
	kill_children();
}

static double jd(json_object *j, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(j, key, &v))
		die("no '%s' in the JSON of ckpt: '%s'", key, json_object_to_json_string(j));
	return json_object_get_double(v);
}

static const char *js(json_object *j, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(j, key, &v) ? json_object_get_string(v) : "";
}

/* ---- the target ---- */

struct target {
	pid_t pid;
	int mem; /* /proc/PID/mem */
	uint64_t log_addr;
	unsigned int nthreads;
	struct stall_log *log; /* our copy */
};

static void target_open_mem(struct target *t)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)t->pid);
	if (t->mem >= 0)
		close(t->mem);
	t->mem = open(path, O_RDONLY | O_CLOEXEC);
	if (t->mem < 0)
		die("cannot open '%s': %s", path, strerror(errno));
}

static void target_read(struct target *t, size_t len)
{
	if (pread(t->mem, t->log, len, (off_t)t->log_addr) != (ssize_t)len)
		die("cannot read the stall log of pid %d: %s", (int)t->pid, strerror(errno));
	if (memcmp(&t->log->magic, "thbench1", 8))
		die("pid %d has no stall log at %#" PRIx64, (int)t->pid, t->log_addr);
}

static void target_start(struct target *t, unsigned int nthreads)
{
	char path[PATH_MAX], nt[16], heap[16], line[256];
	char *argv[] = {path, nt, heap, "1", NULL};
	void *addr = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/threadsbench", env_or("PROGS", "build/test/progs"));
	snprintf(nt, sizeof(nt), "%u", nthreads);
	snprintf(heap, sizeof(heap), "%d", HEAP_MIB);
	t->nthreads = nthreads;
	t->mem = -1;
	t->pid = spawn(argv, false, NULL, &fd);
	if (!read_line(fd, line, sizeof(line)) || sscanf(line, "ready log=%p", &addr) != 1)
		die("the target of %u threads did not start ('%s')", nthreads, line);
	close(fd); /* its stdout: a pipe nobody reads, which restore makes /dev/null */
	t->log_addr = (uint64_t)(uintptr_t)addr;
	target_open_mem(t);
	target_read(t, sizeof(*t->log));
	if (t->log->threads_running != nthreads)
		die("the target runs %" PRIu64 " threads, not %u", t->log->threads_running,
		    nthreads);
}

struct stops {
	double max_stop, sum_stop, max_any; /* ms */
	double sum_other;		    /* the gaps that were not stops, summed */
	double wait; /* of the stops, the time spent waiting for a CPU (dump_stops()) */
	unsigned int nr_stops;
};

/* Read the log once the main thread runs again: a stall is logged when it ends. */
static void target_snapshot(struct target *t)
{
	uint64_t loops;

	target_read(t, offsetof(struct stall_log, ring));
	loops = t->log->loops;
	for (int i = 0; i < 200; i++) {
		sleep_ms(1);
		target_read(t, offsetof(struct stall_log, ring));
		if (t->log->loops != loops)
			break;
	}
	target_read(t, sizeof(*t->log));
}

/* The first entry of the ring still there. */
static uint64_t log_first(const struct stall_log *log)
{
	return log->n > RING ? log->n - RING : 0;
}

/*
 * The stalls of the snapshot that began in [@from, @to): the largest stop,
 * the stops summed, the largest of any kind, the other gaps summed.
 */
static struct stops stops_in(const struct stall_log *log, uint64_t from, uint64_t to)
{
	struct stops s = {0};

	for (uint64_t i = log_first(log); i < log->n; i++) {
		const struct stall *st = &log->ring[i % RING];
		double len = (double)st->len_ns / 1e6;

		if (st->start_ns < from || st->start_ns >= to)
			continue;
		if (len > s.max_any)
			s.max_any = len;
		if (!st->stopped) {
			s.sum_other += len;
			continue;
		}
		s.nr_stops++;
		s.sum_stop += len;
		if (len > s.max_stop)
			s.max_stop = len;
	}
	return s;
}

static struct stops target_stops(struct target *t, uint64_t from, uint64_t to)
{
	target_snapshot(t);
	if (log_first(t->log) && t->log->ring[log_first(t->log) % RING].start_ns > from)
		die("the stall log of pid %d wrapped: a window of %.0f ms is too long", (int)t->pid,
		    (double)(to - from) / 1e6);
	return stops_in(t->log, from, to);
}

/* The main thread's wait on a run queue so far, in ms (its schedstat, read from here). */
static double target_runq(const struct target *t)
{
	char path[96];
	unsigned long long run, wait = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)t->pid, (int)t->pid);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%llu %llu", &run, &wait) != 2)
		die("cannot read '%s'", path);
	fclose(f);
	return (double)wait / 1e6;
}

/*
 * The stops of a ckpt command that ran in [@t0, @t1), and how long the main
 * thread waited for a CPU in them: its run-queue wait since @w0 (read just
 * before @t0) less the gaps that were no stops (a preempted thread does
 * nothing but wait). A stop can end in such a wait: released, the thread
 * is runnable, but ckpt still runs on its CPU. The thread logs no such
 * thing itself: it opens no file (see threadsbench.c).
 */
static struct stops dump_stops(struct target *t, uint64_t t0, uint64_t t1, double w0)
{
	struct stops s = target_stops(t, t0, t1);
	double w = target_runq(t) - w0 - stops_in(t->log, t0, now_ns()).sum_other;

	s.wait = w < 0 ? 0 : w > s.sum_stop ? s.sum_stop : w;
	return s;
}

/* ---- ckpt commands ---- */

/* Run `ckpt ARGS...` to its end; its stdout parsed as one JSON object. @err: its stderr to a file.
 */
static json_object *ckpt_json(const char *err, uint64_t *ret_t0, uint64_t *ret_t1, ...)
{
	char *argv[32];
	const char *a;
	va_list ap;
	int n = 0, fd, st;
	char *out;
	json_object *j;
	pid_t pid;

	argv[n++] = (char *)ckpt_bin();
	va_start(ap, ret_t1);
	while ((a = va_arg(ap, const char *)) && n < 31)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	*ret_t0 = now_ns();
	pid = spawn(argv, true, err, &fd);
	out = read_all(fd);
	close(fd);
	st = wait_status(pid);
	*ret_t1 = now_ns();
	check_stop();
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("ckpt %s %s failed (status %#x): %s", argv[1], argv[2], st, out);
	j = json_tokener_parse(out);
	if (!j)
		die("ckpt %s printed no JSON: '%s'", argv[1], out);
	free(out);
	return j;
}

static void dump_parts(struct result *res, json_object *j, bool delta)
{
	double fr = jd(j, "freeze_ms"), co = jd(j, "collect_ms"), tr = jd(j, "track_ms"),
	       cp = jd(j, "copy_ms");

	if ((unsigned int)jd(j, "threads") != res->nthreads)
		die("ckpt dumped %.0f threads, not %u", jd(j, "threads"), res->nthreads);
	res->mappings = (uint64_t)jd(j, "mappings");
	add(&res->f[delta ? F_DELTA_FREEZE : F_FULL_FREEZE], fr);
	add(&res->f[delta ? F_DELTA_COLLECT : F_FULL_COLLECT], co);
	add(&res->f[delta ? F_DELTA_TRACK : F_FULL_TRACK], tr);
	add(&res->f[delta ? F_DELTA_COPY : F_FULL_COPY], cp);
	add(&res->f[delta ? F_DELTA_REST : F_FULL_REST], fr - co - tr - cp);
	if (delta) {
		add(&res->f[F_DELTA_PRE], jd(j, "prefreeze_ms"));
		add(&res->f[F_DELTA_SUM], jd(j, "prefreeze_ms") + fr);
	}
}

static void run_dumps(struct result *res, struct target *t, int reps)
{
	char pid[16], full[PATH_MAX], delta[PATH_MAX], load[16];

	snprintf(pid, sizeof(pid), "%d", (int)t->pid);
	snprintf(full, sizeof(full), "%s/full", g_tmp);
	snprintf(delta, sizeof(delta), "%s/delta", g_tmp);
	for (int r = -1; r < reps; r++) {
		uint64_t t0, t1;
		struct stops idle, sf, sd;
		json_object *jf, *jdl;
		double w0;

		t0 = now_ns();
		sleep_ms(1000);
		idle = target_stops(t, t0, now_ns());
		w0 = target_runq(t);
		jf = ckpt_json(NULL, &t0, &t1, "dump", "-t", pid, "-D", full, "--leave-running",
			       "--json", NULL);
		sf = dump_stops(t, t0, t1, w0);
		sleep_ms(1000);
		w0 = target_runq(t);
		jdl = ckpt_json(NULL, &t0, &t1, "dump", "-t", pid, "-D", delta, "--parent", full,
				"--leave-running", "--json", NULL);
		sd = dump_stops(t, t0, t1, w0);
		if (strcmp(js(jdl, "kind"), "delta"))
			die("the dump with --parent was '%s', not a delta", js(jdl, "kind"));
		fprintf(stderr,
			"%u threads, %s: idle gap %.3f | full: stop %.3f wait %.3f (%u stops, any "
			"%.3f) "
			"freeze %.3f collect %.3f copy %.3f | delta: stop %.3f wait %.3f sum %.3f "
			"(%u) "
			"prefreeze %.3f freeze %.3f collect %.3f track %.3f copy %.3f ms | load "
			"%s\n",
			res->nthreads, r < 0 ? "warm-up" : "dump", idle.max_any, sf.max_stop,
			sf.wait, sf.nr_stops, sf.max_any, jd(jf, "freeze_ms"), jd(jf, "collect_ms"),
			jd(jf, "copy_ms"), sd.max_stop, sd.wait, sd.sum_stop, sd.nr_stops,
			jd(jdl, "prefreeze_ms"), jd(jdl, "freeze_ms"), jd(jdl, "collect_ms"),
			jd(jdl, "track_ms"), jd(jdl, "copy_ms"), loadavg(load, sizeof(load)));
		if (r >= 0) {
			add(&res->f[F_IDLE], idle.max_any);
			add(&res->f[F_FULL_TGT], sf.max_stop);
			add(&res->f[F_FULL_NET], sf.max_stop - sf.wait);
			add(&res->f[F_DELTA_TGT], sd.max_stop);
			add(&res->f[F_DELTA_NET], sd.sum_stop - sd.wait);
			add(&res->f[F_DELTA_TGT_SUM], sd.sum_stop);
			dump_parts(res, jf, false);
			dump_parts(res, jdl, true);
		}
		json_object_put(jf);
		json_object_put(jdl);
		rm_tree(full);
		rm_tree(delta);
	}
}

/* The harvest-only freeze's parts and the remote calls, from the -vv messages in @path. */
static void read_parts(struct result *res, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	double seize = -1, harvest = 0, release = 0;
	unsigned int calls = 0, c;

	if (!f)
		die("cannot read '%s': %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if ((p = strstr(line, "harvest-only freeze of pid")) && (p = strchr(p, ':')))
			sscanf(p, ": seize %lf, harvest %lf (%*u pages), release %lf", &seize,
			       &harvest, &release);
		else if ((p = strstr(line, "after ")) && strstr(line, "remote calls") &&
			 sscanf(p, "after %u remote calls", &c) == 1 && c > calls)
			calls = c;
	}
	fclose(f);
	if (seize < 0)
		die("no harvest-only freeze in '%s' (did the delta copy before its freeze?)", path);
	add(&res->f[F_PART_SEIZE], seize);
	add(&res->f[F_PART_HARVEST], harvest);
	add(&res->f[F_PART_RELEASE], release);
	add(&res->f[F_PART_CALLS], calls);
}

static void run_parts(struct result *res, struct target *t, int reps)
{
	char pid[16], parent[PATH_MAX], dir[PATH_MAX], err[PATH_MAX];
	uint64_t t0, t1;
	json_object *j;

	snprintf(pid, sizeof(pid), "%d", (int)t->pid);
	snprintf(err, sizeof(err), "%s/vv.log", g_tmp);
	snprintf(dir, sizeof(dir), "%s/parts-0", g_tmp);
	j = ckpt_json(NULL, &t0, &t1, "dump", "-t", pid, "-D", dir, "--leave-running", "--json",
		      NULL);
	json_object_put(j);
	/* A chain: each delta's parent is the one before. */
	for (int r = 0; r < reps; r++) {
		snprintf(parent, sizeof(parent), "%s", dir);
		snprintf(dir, sizeof(dir), "%s/parts-%d", g_tmp, r + 1);
		sleep_ms(1000);
		j = ckpt_json(err, &t0, &t1, "dump", "-v", "-v", "-t", pid, "-D", dir, "--parent",
			      parent, "--leave-running", "--json", NULL);
		json_object_put(j);
		read_parts(res, err);
		fprintf(stderr,
			"%u threads, parts: harvest-only freeze: seize %.3f harvest %.3f release "
			"%.3f ms; "
			"%.0f remote calls\n",
			res->nthreads, res->f[F_PART_SEIZE].v[r], res->f[F_PART_HARVEST].v[r],
			res->f[F_PART_RELEASE].v[r], res->f[F_PART_CALLS].v[r]);
	}
	for (int r = 0; r <= reps; r++) {
		snprintf(dir, sizeof(dir), "%s/parts-%d", g_tmp, r);
		rm_tree(dir);
	}
	unlink(err);
}

struct track_ck {
	char name[16];
	double time_s, prefreeze, precopy, freeze; /* s; ms */
};

/* Is there a stop of the target starting within [@at - 1.5 ms, @at + 3 ms]? */
static bool stop_near(const struct stall_log *log, uint64_t at)
{
	for (uint64_t i = log_first(log); i < log->n; i++) {
		const struct stall *st = &log->ring[i % RING];

		if (st->stopped && st->start_ns + 1500000 >= at && st->start_ns <= at + 3000000)
			return true;
	}
	return false;
}

/*
 * Where ckpt's clock of the run (time_s: the checkpoint's freeze began that
 * long after its start, in ms) sits on ours: the offset that puts a stop of
 * the target at the start of the most freezes. The main thread, seized
 * first, stops within a fraction of a ms of it.
 */
static uint64_t track_offset(const struct stall_log *log, const struct track_ck *ck, int n,
			     int *ret_matched)
{
	uint64_t best = 0;
	int best_n = -1;

	for (uint64_t i = log_first(log); i < log->n; i++) {
		const struct stall *st = &log->ring[i % RING];

		for (int k = 1; st->stopped && k < n; k++) {
			uint64_t off = st->start_ns - (uint64_t)(ck[k].time_s * 1e9);
			int m = 0;

			for (int q = 1; q < n; q++)
				m += stop_near(log, off + (uint64_t)(ck[q].time_s * 1e9));
			if (m > best_n) {
				best_n = m;
				best = off;
			}
		}
	}
	*ret_matched = best_n;
	return best;
}

static void run_track(struct result *res, struct target *t, int reps)
{
	int count = TRACK_PER_REP * reps + 2, fd, st, n = 0, matched;
	char pid[16], dir[PATH_MAX], cnt[16], line[8192], load[16];
	char *argv[] = {(char *)ckpt_bin(), "track", "-t",	pid, "-D",     dir,
			"--interval",	    "1s",    "--count", cnt, "--json", NULL};
	struct track_ck *ck = calloc((size_t)count, sizeof(*ck));
	uint64_t t0, off;
	pid_t cmd;

	if (!ck)
		die("out of memory");
	snprintf(pid, sizeof(pid), "%d", (int)t->pid);
	snprintf(dir, sizeof(dir), "%s/track", g_tmp);
	snprintf(cnt, sizeof(cnt), "%d", count);
	t0 = now_ns();
	cmd = spawn(argv, true, NULL, &fd);
	while (read_line(fd, line, sizeof(line))) {
		json_object *j = json_tokener_parse(line), *v;

		if (!j)
			die("ckpt track printed no JSON: '%s'", line);
		if (json_object_object_get_ex(j, "error", &v))
			die("ckpt track: %s", line);
		if (json_object_object_get_ex(j, "event", &v)) {
			/* armed, end */
		} else if (n < count) {
			snprintf(ck[n].name, sizeof(ck[n].name), "%s", js(j, "name"));
			ck[n].time_s = jd(j, "time_s");
			ck[n].prefreeze = jd(j, "prefreeze_ms");
			ck[n].precopy = jd(j, "precopy_ms");
			ck[n].freeze = jd(j, "freeze_ms");
			n++;
		}
		json_object_put(j);
	}
	close(fd);
	st = wait_status(cmd);
	check_stop();
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || n != count)
		die("ckpt track ended with status %#x after %d of %d checkpoints", st, n, count);
	target_snapshot(t);
	if (log_first(t->log) && t->log->ring[log_first(t->log) % RING].start_ns > t0)
		die("the stall log of pid %d wrapped during ckpt track", (int)t->pid);
	off = track_offset(t->log, ck, n, &matched);
	if (matched < (n - 1) / 2)
		die("cannot place the checkpoints of ckpt track on the clock of pid %d: %d of %d "
		    "freezes met a stop",
		    (int)t->pid, matched, n - 1);
	fprintf(stderr, "%u threads, track: a stop of the target at the start of %d of %d deltas\n",
		res->nthreads, matched, n - 1);
	/* Checkpoint 0 is the full one (copied while it ran), 1 the first delta: left out. */
	for (int k = 2; k < n; k++) {
		uint64_t at = off + (uint64_t)(ck[k].time_s * 1e9);
		uint64_t before = (uint64_t)((ck[k].prefreeze + ck[k].precopy + 100) * 1e6);
		struct stops s =
			stops_in(t->log, at - before, at + (uint64_t)((ck[k].freeze + 100) * 1e6));

		if (!stop_near(t->log, at))
			fprintf(stderr,
				"bench-threads: no stop of the target at the freeze of %s\n",
				ck[k].name);
		add(&res->f[F_TRACK_TGT], s.max_stop);
		add(&res->f[F_TRACK_TGT_SUM], s.sum_stop);
		add(&res->f[F_TRACK_PRE], ck[k].prefreeze);
		add(&res->f[F_TRACK_FREEZE], ck[k].freeze);
		add(&res->f[F_TRACK_SUM], ck[k].prefreeze + ck[k].freeze);
		fprintf(stderr,
			"%u threads, track %s: stop %.3f sum %.3f (%u stops) | prefreeze "
			"%.3f "
			"freeze %.3f ms\n",
			res->nthreads, ck[k].name, s.max_stop, s.sum_stop, s.nr_stops,
			ck[k].prefreeze, ck[k].freeze);
	}
	fprintf(stderr, "%u threads, track done | load %s\n", res->nthreads,
		loadavg(load, sizeof(load)));
	free(ck);
	rm_tree(dir);
}

/* ---- restore ---- */

static unsigned int threads_of(pid_t pid)
{
	char path[64], line[256];
	unsigned int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %u", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* Kill the restored process and reap it (and a lazy server, once it exits). */
static void kill_restored(struct target *t)
{
	kill(t->pid, SIGKILL);
	wait_status(t->pid);
	reap_all(30000);
}

/* The "lazy" line of the server's log @path: every page in. */
static double lazy_total(const char *path, pid_t pid)
{
	uint64_t t0 = now_ns();

	while (ms_since(t0) < 120000) {
		FILE *f = fopen(path, "r");
		char line[8192];

		while (f && fgets(line, sizeof(line), f)) {
			json_object *j = json_tokener_parse(line);
			double total = -1;

			if (j && !strcmp(js(j, "event"), "lazy")) {
				if (strcmp(js(j, "end"), "complete"))
					die("the lazy restore of pid %d ended '%s'", (int)pid,
					    js(j, "end"));
				total = jd(j, "total_ms");
			}
			if (j)
				json_object_put(j);
			if (total >= 0) {
				fclose(f);
				return total;
			}
		}
		if (f)
			fclose(f);
		sleep_ms(10);
	}
	die("no 'lazy' line in '%s' after 120 s", path);
}

static void restore_once(struct result *res, struct target *t, const char *img, bool lazy,
			 bool count, bool check)
{
	char line[8192], log[PATH_MAX], load[16];
	char *argv[] = {
		(char *)ckpt_bin(), "restore", "-D",   (char *)img,	"--detach",
		"--json",	    "--stdio", "null", "--restore-pid", lazy ? "--lazy" : NULL,
		"--lazy-log",	    log,       NULL};
	double wall, allin = 0;
	json_object *j;
	uint64_t t0;
	pid_t cmd;
	int fd, st;
	bool got;

	snprintf(log, sizeof(log), "%s/lazy.log", g_tmp);
	unlink(log);
	prewarm(((size_t)HEAP_MIB << 20) + SLACK);
	t0 = now_ns();
	cmd = spawn(argv, true, NULL, &fd);
	got = read_line(fd, line, sizeof(line));
	wall = ms_since(t0);
	close(fd);
	st = wait_status(cmd);
	check_stop();
	if (!got || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("ckpt restore%s of '%s' failed (status %#x): '%s'", lazy ? " --lazy" : "", img,
		    st, line);
	j = json_tokener_parse(line);
	if (!j)
		die("ckpt restore printed no JSON: '%s'", line);
	if ((pid_t)jd(j, "pid") != t->pid)
		die("restored as pid %.0f, not %d", jd(j, "pid"), (int)t->pid);
	/* ckpt restore has exited: the restored process (and a lazy server) are ours now. */
	if (lazy)
		allin = lazy_total(log, t->pid);
	if (check) {
		uint64_t loops;

		if (threads_of(t->pid) != t->nthreads)
			die("the restored process has %u threads, not %u", threads_of(t->pid),
			    t->nthreads);
		target_open_mem(t);
		target_read(t, offsetof(struct stall_log, ring));
		loops = t->log->loops;
		sleep_ms(50);
		target_read(t, offsetof(struct stall_log, ring));
		if (t->log->loops == loops)
			die("the main thread of the restored process does not run");
	}
	fprintf(stderr,
		"%u threads, %s restore%s: wall %.2f restore %.2f pages %.2f ms%s | load %s\n",
		res->nthreads, lazy ? "lazy" : "eager", count ? "" : " (warm-up)", wall,
		jd(j, "restore_ms"), jd(j, "pages_ms"),
		check ? " | checked: same pid, every thread, running" : "",
		loadavg(load, sizeof(load)));
	if (lazy)
		fprintf(stderr, "%u threads, lazy: every page in after %.1f ms\n", res->nthreads,
			allin);
	if (count) {
		add(&res->f[lazy ? F_LAZY_WALL : F_EAGER_WALL], wall);
		add(&res->f[lazy ? F_LAZY_RESTORE : F_EAGER_RESTORE], jd(j, "restore_ms"));
		add(&res->f[lazy ? F_LAZY_PAGES : F_EAGER_PAGES], jd(j, "pages_ms"));
		if (lazy)
			add(&res->f[F_LAZY_ALLIN], allin);
		else
			add(&res->f[F_EAGER_OTHER], jd(j, "restore_ms") - jd(j, "pages_ms"));
	}
	json_object_put(j);
	kill_restored(t);
	unlink(log);
}

static void run_restores(struct result *res, struct target *t, int reps)
{
	char pid[16], img[PATH_MAX];
	uint64_t t0, t1;
	json_object *j;

	snprintf(pid, sizeof(pid), "%d", (int)t->pid);
	snprintf(img, sizeof(img), "%s/img", g_tmp);
	j = ckpt_json(NULL, &t0, &t1, "dump", "-t", pid, "-D", img, "--json", NULL);
	fprintf(stderr, "%u threads: dumped in kill mode, freeze %.1f ms, %.0f threads\n",
		res->nthreads, jd(j, "freeze_ms"), jd(j, "threads"));
	json_object_put(j);
	wait_status(t->pid); /* killed by the dump: its ids are free again */
	restore_once(res, t, img, false, false, true);
	restore_once(res, t, img, true, false, true);
	for (int r = 0; r < reps; r++) {
		restore_once(res, t, img, false, true, false);
		restore_once(res, t, img, true, true, false);
	}
	rm_tree(img);
}

static void run_threads(struct result *res, int reps)
{
	struct target t = {0};
	uint64_t t0 = now_ns();

	t.log = malloc(sizeof(*t.log));
	if (!t.log)
		die("out of memory");
	target_start(&t, res->nthreads);
	fprintf(stderr, "%u threads: pid %d ready after %.1f s\n", res->nthreads, (int)t.pid,
		ms_since(t0) / 1e3);
	run_dumps(res, &t, reps);
	run_parts(res, &t, reps);
	run_track(res, &t, reps);
	run_restores(res, &t, reps);
	close(t.mem);
	free(t.log);
}

/* ---- the tables ---- */

static void print_section(const struct result *res, int nr, enum section sec, const char *unit)
{
	const struct result *a = &res[0], *b = &res[nr - 1];

	printf("| figure, %s: median (p90 / max) |", unit);
	for (int i = 0; i < nr; i++)
		printf(" %u thread%s |", res[i].nthreads, res[i].nthreads > 1 ? "s" : "");
	printf(" per thread, %u to %u |\n|---|", a->nthreads, b->nthreads);
	for (int i = 0; i <= nr; i++)
		printf("---:|");
	printf("\n");
	for (int f = 0; f < NR_FIG; f++) {
		double d;

		if (figs[f].sec != sec)
			continue;
		printf("| %s |", figs[f].name);
		for (int i = 0; i < nr; i++) {
			const struct series *s = &res[i].f[f];

			if (figs[f].count)
				printf(" %.0f |", quant(s, 0.5));
			else
				printf(" %.2f (%.2f / %.2f) |", quant(s, 0.5), quant(s, 0.9),
				       quant(s, 1));
		}
		d = b->nthreads > a->nthreads ? (quant(&b->f[f], 0.5) - quant(&a->f[f], 0.5)) /
							(double)(b->nthreads - a->nthreads)
					      : 0;
		if (f == F_IDLE)
			printf(" - |\n"); /* noise, not a cost */
		else if (figs[f].count)
			printf(" %.2f |\n", d);
		else
			printf(" %.1f us |\n", d * 1e3);
	}
	printf("\n");
}

static void print_tables(const struct result *res, int nr, int reps)
{
	printf("### Freezes\n\nms; REPS = %d dumps of each kind, %d checkpoints of track -D. "
	       "Mappings "
	       "of the process:",
	       reps, TRACK_PER_REP * reps);
	for (int i = 0; i < nr; i++)
		printf(" %" PRIu64 " (%u thread%s)%s", res[i].mappings, res[i].nthreads,
		       res[i].nthreads > 1 ? "s" : "", i + 1 < nr ? "," : ".");
	printf("\n\n");
	print_section(res, nr, S_FREEZE, "ms");
	printf("### Parts of a delta's freezes (-vv runs, %d each)\n\n", reps);
	print_section(res, nr, S_PARTS, "ms");
	printf("### Restore (%d each)\n\n", reps);
	print_section(res, nr, S_RESTORE, "ms");
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 7, nr = 0;
	char nts[256] = "1,16,64", imgdir[PATH_MAX / 4] = "/var/tmp", run[PATH_MAX], load[16];
	static struct result res[MAX_NT];
	struct sigaction sa = {.sa_handler = on_stop};
	char path[PATH_MAX];

	if (reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "bench-threads: REPS is 1 to %d\n", MAX_REPS);
		return 2;
	}
	if (argc > 2)
		snprintf(nts, sizeof(nts), "%s", argv[2]);
	if (argc > 3)
		snprintf(imgdir, sizeof(imgdir), "%s", argv[3]);
	for (char *tok = strtok(nts, ","); tok && nr < MAX_NT; tok = strtok(NULL, ",")) {
		res[nr].nthreads = (unsigned int)atoi(tok);
		if (res[nr].nthreads < 1 || res[nr].nthreads > 4096) {
			fprintf(stderr, "bench-threads: bad thread count '%s'\n", tok);
			return 2;
		}
		nr++;
	}
	snprintf(path, sizeof(path), "%s/threadsbench", env_or("PROGS", "build/test/progs"));
	if (access(ckpt_bin(), X_OK) < 0 || access(path, X_OK) < 0) {
		fprintf(stderr, "bench-threads: cannot run '%s' or '%s' (set CKPT and PROGS)\n",
			ckpt_bin(), path);
		return 2;
	}
	/* No SA_RESTART: a blocking read or wait returns EINTR and we stop. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("bench-threads: PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	snprintf(g_tmp, sizeof(g_tmp), "%s/ckpt-bench-threads-XXXXXX", imgdir);
	if (!mkdtemp(g_tmp)) {
		fprintf(stderr, "bench-threads: cannot create a directory in '%s': %s\n", imgdir,
			strerror(errno));
		g_tmp[0] = '\0';
		return 1;
	}
	snprintf(run, sizeof(run), "%s/run", g_tmp);
	if (mkdir(run, 0700) < 0)
		die("cannot create '%s': %s", run, strerror(errno));
	setenv("CKPT_RUNDIR", run, 1);
	printf("%d MiB heap, 1%% of its pages written a second; images in %s; ckpt %s; %d reps; "
	       "load %s\n\n",
	       HEAP_MIB, imgdir, ckpt_bin(), reps, loadavg(load, sizeof(load)));
	fflush(stdout);
	for (int i = 0; i < nr; i++)
		run_threads(&res[i], reps);
	print_tables(res, nr, reps);
	cleanup();
	return 0;
}
