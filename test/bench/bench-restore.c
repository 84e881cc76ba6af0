/* SPDX-License-Identifier: MIT */
/*
 * Eager restore (issue 6), side by side with its floor, in one run.
 *
 * For each size: a target process (this binary, "target SIZE_MB") maps SIZE
 * of private anonymous memory and fills every page: the first half words of
 * text, the second half xorshift noise (zstd -1 stores a page in about 2.5
 * KiB: 1.6x), then says "ready" and waits. `ckpt dump` writes it to a directory
 * under IMGDIR (and kills it). Then a warm-up round that is not counted,
 * and REPS rounds of:
 *
 *  restore   `ckpt restore -D DIR --detach --json --stdio null`: the time
 *            from fork+exec of the command to its JSON line ("wall"), and
 *            what the command reports: restore_ms (ckpt_restore_run, from
 *            opening the images to the process running), check_ms (open,
 *            state documents, checks), pages_ms (writing the pages into the
 *            new process), pages_data and pages_zero; "other" is restore_ms
 *            less check_ms and pages_ms (fork, seize, emptying the child,
 *            mappings, files, registers). The restored process
 *            is killed at once, except after the warm-up: it is asked
 *            (SIGUSR1) to check every page of its memory and exits 0 if all
 *            are right.
 *  decode    the floor, with the library the restore uses: ckpt_chain_open
 *            on the same directory and every range of ckpt_chain_iter_next,
 *            timed from the open to the last range; three ways:
 *              only     the frames are decompressed (into the chain's frame
 *                       cache) and nothing is copied;
 *              fresh    each data range is memcpy'd into a new anonymous
 *                       buffer as large as the image: the page faults of
 *                       the buffer count, as the restored process's pages
 *                       are new too ("decompress the pages into memory");
 *              warm     the same into a buffer populated before the clock
 *                       starts (MADV_POPULATE_WRITE): no faults counted.
 *
 * The VM hands free guest memory back to the host, and touching memory that
 * was given back costs more than touching backed memory. So every measured
 * step is preceded by populating and freeing as much memory as it will
 * allocate (prewarm()), restore and floor alike, and the first round of
 * each size (where memory untouched for long costs up to 3.5 times as much
 * to populate, on this VM) is a warm-up. The images stay in the
 * page cache (the machine has the memory): no figure includes the disk.
 *
 * Tables in markdown on stdout, every run on stderr. Ctrl-C (or SIGTERM,
 * SIGHUP) stops the run; every process and file of it is removed, also on
 * failure: the benchmark is a child subreaper, so the restored processes,
 * which --detach leaves behind, are its children.
 *
 * Usage: bench-restore [REPS [SIZES_MB [IMGDIR]]]   defaults 5 64,1024,4096 /var/tmp
 *        bench-restore target SIZE_MB               (the target process)
 * $CKPT names the ckpt binary (default build/ckpt).
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

#include <ckpt/image.h>

#define PS 4096UL
#define MAX_REPS 32
#define MAX_SIZES 8
#define SLACK (64UL << 20) /* the process's other pages, ckpt's own buffers */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct stat3 {
	double med, min, max;
};

static struct stat3 stats(const double *v, int n)
{
	double s[MAX_REPS];

	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_d);
	return (struct stat3){ n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, s[0], s[n - 1] };
}

/* ---- the content of page @i: always the same bytes ---- */

static uint64_t xs(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void fill_page(unsigned char *p, uint64_t i)
{
	static const char *const words[] = {
		"checkpoint", "restore", "the", "of", "memory", "page", "process", "and", "a", "to",
		"frame", "zstd", "image", "kernel", "write", "read", "in", "is", "for", "address",
		"mapping", "anonymous", "thread", "signal", "register", "file", "delta", "chain",
	};
	uint64_t x = i * 0x9E3779B97F4A7C15ULL + 1;
	size_t off = 0;

	while (off < PS / 2) {
		const char *w = words[xs(&x) % (sizeof(words) / sizeof(words[0]))];
		size_t n = strlen(w);

		if (off + n + 1 > PS / 2)
			n = PS / 2 - off - 1;
		memcpy(p + off, w, n);
		off += n;
		p[off++] = (xs(&x) & 15) ? ' ' : '\n';
	}
	for (; off < PS; off += 8) {
		uint64_t v = xs(&x);

		memcpy(p + off, &v, 8);
	}
}

/* ---- the target process ---- */

static volatile sig_atomic_t check_now;

static void on_usr1(int sig)
{
	(void)sig;
	check_now = 1;
}

static int target_main(size_t size_mb)
{
	size_t len = size_mb << 20;
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct sigaction sa = { .sa_handler = on_usr1 };
	unsigned char page[PS];

	if (m == MAP_FAILED || len == 0)
		return 1;
	for (size_t i = 0; i < len / PS; i++)
		fill_page(m + i * PS, i);
	sigaction(SIGUSR1, &sa, NULL);
	printf("ready %p\n", (void *)m);
	fflush(stdout);
	while (!check_now)
		pause();
	/* Restored and asked: is every page what it was? */
	for (size_t i = 0; i < len / PS; i++) {
		fill_page(page, i);
		if (memcmp(page, m + i * PS, PS))
			return 2;
	}
	return 0;
}

/* ---- the run: processes and files to clean up ---- */

static char g_tmp[PATH_MAX / 2];   /* our directory under IMGDIR */
static volatile pid_t g_cmd = -1; /* the ckpt command running now */
static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
	g_stop = sig;
	if (g_cmd > 0)
		kill(g_cmd, SIGTERM); /* ckpt cleans up after itself on SIGTERM */
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

/* SIGKILL every child of ours (targets, restored processes); true if there was one. */
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

/* Kill and reap every child: targets, ckpt commands, restored processes. */
static void kill_children(void)
{
	if (g_cmd > 0) {
		/* Let a ckpt command undo what it did (it kills a half-restored process). */
		kill(g_cmd, SIGTERM);
		for (int i = 0; i < 50 && waitpid(g_cmd, NULL, WNOHANG) == 0; i++)
			usleep(100000);
		kill(g_cmd, SIGKILL);
		waitpid(g_cmd, NULL, 0);
		g_cmd = -1;
	}
	/* Its orphans are ours now (subreaper); again, for any that appeared meanwhile. */
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
		nftw(g_tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	g_tmp[0] = '\0';
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		fprintf(stderr, "bench-restore: ");
		vfprintf(stderr, fmt, ap);
		fprintf(stderr, "\n");
		va_end(ap);
	}
	cleanup();
	exit(g_stop ? 128 + g_stop : 1);
}

static void check_stop(void)
{
	if (g_stop)
		die("stopped by signal %d; cleaned up", (int)g_stop);
}

/* Populate and free @len bytes: memory backed by the host again (see the top). */
static void prewarm(size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		die("cannot map %zu MiB", len >> 20);
	madvise(m, len, MADV_POPULATE_WRITE);
	munmap(m, len);
}

/*
 * Start @argv with stdin /dev/null and stdout a pipe (returned in
 * @ret_fd). A ckpt command (@is_cmd: its pid is left in g_cmd) writes to
 * our stderr; a target's stderr is /dev/null.
 */
static pid_t spawn(char *const argv[], bool is_cmd, int *ret_fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || (!is_cmd && dup2(null, 2) < 0))
			_exit(127);
		close_range(3, ~0U, 0); /* nothing of ours in the image but fds 0-2 */
		execv(argv[0], argv);
		fprintf(stderr, "bench-restore: cannot run '%s': %s\n", argv[0], strerror(errno));
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

static const char *ckpt_bin(void)
{
	const char *c = getenv("CKPT");

	return c && *c ? c : "build/ckpt";
}

/* The 1-minute load average, as text: the VM is shared. */
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

/* ---- one size ---- */

struct result {
	size_t size_mb;
	uint64_t image_bytes, pages_data, pages_zero;
	double dump_s;
	bool verified;
	/* ms, per run; the last slot is the warm-up round's */
	double wall[MAX_REPS + 1], total[MAX_REPS + 1], check[MAX_REPS + 1], pages[MAX_REPS + 1];
	double other[MAX_REPS + 1], only[MAX_REPS + 1], fresh[MAX_REPS + 1], warm[MAX_REPS + 1];
};

static void dump_target(struct result *res, const char *dir)
{
	char size[32], line[256], pidbuf[32];
	char *targ[] = { "/proc/self/exe", "target", size, NULL };
	char *dargv[] = { (char *)ckpt_bin(), "dump", "-t", pidbuf, "-D", (char *)dir, "--json", NULL };
	pid_t target, dump;
	int fd, st;
	double t;
	struct stat sb;
	char zst[PATH_MAX];

	snprintf(size, sizeof(size), "%zu", res->size_mb);
	target = spawn(targ, false, &fd);
	if (!read_line(fd, line, sizeof(line)) || strncmp(line, "ready ", 6))
		die("the target of %zu MiB did not start", res->size_mb);
	close(fd);
	check_stop();
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)target);
	t = now_s();
	dump = spawn(dargv, true, &fd);
	for (;;) {
		ssize_t n = read(fd, line, sizeof(line));

		if (n < 0 && errno == EINTR)
			check_stop();
		else if (n <= 0)
			break;
	}
	close(fd);
	st = wait_status(dump);
	res->dump_s = now_s() - t;
	check_stop();
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("ckpt dump of the %zu MiB target failed (status %#x)", res->size_mb, st);
	wait_status(target); /* killed by the dump */
	snprintf(zst, sizeof(zst), "%s/pages.zst", dir);
	res->image_bytes = stat(zst, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static double jnum(json_object *j, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(j, key, &v))
		die("the JSON of ckpt restore has no '%s'", key);
	return json_object_get_double(v);
}

static void restore_once(struct result *res, const char *dir, int rep, bool check_memory)
{
	char line[4096], pidfile[PATH_MAX];
	char *argv[] = { (char *)ckpt_bin(), "restore", "-D", (char *)dir, "--detach", "--json",
			 "--stdio", "null", "--pidfile", pidfile, NULL };
	json_object *j;
	pid_t cmd, pid;
	int fd, st;
	double t;
	bool got;

	snprintf(pidfile, sizeof(pidfile), "%s/restored.pid", g_tmp);
	prewarm((res->size_mb << 20) + SLACK);
	t = now_s();
	cmd = spawn(argv, true, &fd);
	got = read_line(fd, line, sizeof(line));
	res->wall[rep] = (now_s() - t) * 1e3;
	close(fd);
	st = wait_status(cmd);
	check_stop();
	if (!got || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("ckpt restore of '%s' failed (status %#x): '%s'", dir, st, line);
	j = json_tokener_parse(line);
	if (!j)
		die("ckpt restore printed no JSON: '%s'", line);
	pid = (pid_t)jnum(j, "pid");
	res->total[rep] = jnum(j, "restore_ms");
	res->check[rep] = jnum(j, "check_ms");
	res->pages[rep] = jnum(j, "pages_ms");
	res->other[rep] = res->total[rep] - res->check[rep] - res->pages[rep];
	res->pages_data = (uint64_t)jnum(j, "pages_data");
	res->pages_zero = (uint64_t)jnum(j, "pages_zero");
	json_object_put(j);
	/* ckpt restore has exited: the restored process is our child now. */
	if (check_memory) {
		kill(pid, SIGUSR1);
		st = wait_status(pid);
		res->verified = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (!res->verified)
			die("the restored process of %zu MiB found its memory wrong (status %#x)",
			    res->size_mb, st);
	} else {
		kill(pid, SIGKILL);
		wait_status(pid);
	}
	unlink(pidfile);
}

enum decode_mode { DECODE_ONLY, DECODE_FRESH, DECODE_WARM };

static double decode_once(struct result *res, const char *dir, enum decode_mode mode)
{
	size_t cap = (res->size_mb << 20) + SLACK, off = 0;
	struct ckpt_chain *c;
	struct ckpt_chain_iter *it;
	struct ckpt_chain_range r;
	unsigned char *buf = NULL;
	volatile unsigned char sink = 0;
	double t;
	int k;

	prewarm(cap);
	if (mode != DECODE_ONLY) {
		buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (buf == MAP_FAILED)
			die("cannot map %zu MiB", cap >> 20);
		if (mode == DECODE_WARM && madvise(buf, cap, MADV_POPULATE_WRITE) < 0)
			die("MADV_POPULATE_WRITE: %s", strerror(errno));
	}
	t = now_s();
	if (ckpt_chain_open(dir, NULL, &c) < 0 || ckpt_chain_iter_new(c, &it) < 0)
		die("cannot open the chain '%s'", dir);
	while ((k = ckpt_chain_iter_next(it, &r)) > 0) {
		size_t n = r.nr_pages * PS;

		check_stop();
		if (r.kind != CKPT_PAGE_DATA)
			continue; /* as the restore: an anonymous zero page is not written */
		if (!buf) {
			sink ^= *(const unsigned char *)r.data;
			continue;
		}
		if (off + n > cap)
			die("the image of %zu MiB holds more than %zu MiB", res->size_mb, cap >> 20);
		memcpy(buf + off, r.data, n);
		off += n;
	}
	t = now_s() - t;
	if (k < 0)
		die("cannot read the pages of '%s'", dir);
	ckpt_chain_iter_free(it);
	ckpt_chain_close(c);
	if (buf)
		munmap(buf, cap);
	(void)sink;
	return t * 1e3;
}

static void run_size(struct result *res, int reps)
{
	char dir[PATH_MAX / 2 + 64];

	snprintf(dir, sizeof(dir), "%s/img-%zu", g_tmp, res->size_mb);
	dump_target(res, dir);
	fprintf(stderr, "%zu MiB: dumped in %.1f s, pages.zst %.1f MiB\n", res->size_mb, res->dump_s,
		(double)res->image_bytes / (1 << 20));
	/* A warm-up round first, not counted: memory untouched for long is slow to touch. */
	prewarm(2 * ((res->size_mb << 20) + SLACK));
	for (int i = -1; i < reps; i++) {
		int slot = i < 0 ? reps : i;
		char load[16], name[16];

		restore_once(res, dir, slot, i < 0);
		res->only[slot] = decode_once(res, dir, DECODE_ONLY);
		res->fresh[slot] = decode_once(res, dir, DECODE_FRESH);
		res->warm[slot] = decode_once(res, dir, DECODE_WARM);
		check_stop();
		snprintf(name, sizeof(name), i < 0 ? "warm-up" : "run %d", i + 1);
		fprintf(stderr,
			"%zu MiB %s: wall %.1f restore %.1f check %.1f pages %.1f other %.1f ms | decode only %.1f "
			"fresh %.1f warm %.1f ms | load %s%s\n",
			res->size_mb, name, res->wall[slot], res->total[slot], res->check[slot], res->pages[slot],
			res->other[slot], res->only[slot], res->fresh[slot], res->warm[slot],
			loadavg(load, sizeof(load)), i < 0 ? " | memory checked" : "");
	}
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the tables ---- */

static void cell(const double *v, int n)
{
	struct stat3 s = stats(v, n);

	printf(" %.1f (%.1f-%.1f) |", s.med, s.min, s.max);
}

static const char *size_name(size_t mb, char *buf, size_t len)
{
	if (mb >= 1024 && mb % 1024 == 0)
		snprintf(buf, len, "%zu GiB", mb >> 10);
	else
		snprintf(buf, len, "%zu MiB", mb);
	return buf;
}

static void print_tables(struct result *res, int nr, int reps)
{
	char nm[32];

	printf("### A. Times, ms: median (min-max) of %d runs\n\n", reps);
	printf("| size | image MiB | pages written | wall | restore_ms | check_ms | pages_ms | other "
	       "| decode only | decode+copy fresh | decode+copy warm |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < nr; i++) {
		struct result *r = &res[i];

		printf("| %s | %.1f | %" PRIu64 " + %" PRIu64 " zero |", size_name(r->size_mb, nm, sizeof(nm)),
		       (double)r->image_bytes / (1 << 20), r->pages_data, r->pages_zero);
		cell(r->wall, reps);
		cell(r->total, reps);
		cell(r->check, reps);
		cell(r->pages, reps);
		cell(r->other, reps);
		cell(r->only, reps);
		cell(r->fresh, reps);
		cell(r->warm, reps);
		printf("\n");
	}
	printf("\n### B. Rates and ratios (of the medians)\n\n");
	printf("| size | Mpages/s over pages_ms | Mpages/s over restore_ms | MiB/s over restore_ms "
	       "| restore / decode fresh | wall / decode fresh | restore / decode warm "
	       "| pages_ms / decode fresh | memory checked |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
	for (int i = 0; i < nr; i++) {
		struct result *r = &res[i];
		double pages = (double)(r->pages_data + r->pages_zero);
		double wall = stats(r->wall, reps).med, total = stats(r->total, reps).med;
		double pg = stats(r->pages, reps).med, fresh = stats(r->fresh, reps).med;
		double warm = stats(r->warm, reps).med;

		printf("| %s | %.3f | %.3f | %.0f | %.2fx | %.2fx | %.2fx | %.2fx | %s |\n",
		       size_name(r->size_mb, nm, sizeof(nm)), pages / pg / 1e3, pages / total / 1e3,
		       pages * PS / (1 << 20) / (total / 1e3), total / fresh, wall / fresh, total / warm,
		       pg / fresh, r->verified ? "yes" : "no");
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 5;
	char sizes_arg[256] = "64,1024,4096", imgdir[PATH_MAX / 4] = "/var/tmp";
	struct result res[MAX_SIZES];
	struct sigaction sa = { .sa_handler = on_stop };
	char run[PATH_MAX];
	int nr = 0;

	if (argc == 3 && !strcmp(argv[1], "target"))
		return target_main(strtoull(argv[2], NULL, 10));
	if (reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "bench-restore: REPS is 1 to %d\n", MAX_REPS);
		return 2;
	}
	if (argc > 2)
		snprintf(sizes_arg, sizeof(sizes_arg), "%s", argv[2]);
	if (argc > 3)
		snprintf(imgdir, sizeof(imgdir), "%s", argv[3]);
	if (access(ckpt_bin(), X_OK) < 0) {
		fprintf(stderr, "bench-restore: cannot run '%s' (set CKPT)\n", ckpt_bin());
		return 2;
	}
	for (char *tok = strtok(sizes_arg, ","); tok && nr < MAX_SIZES; tok = strtok(NULL, ",")) {
		memset(&res[nr], 0, sizeof(res[nr]));
		res[nr].size_mb = strtoull(tok, NULL, 10);
		if (!res[nr].size_mb) {
			fprintf(stderr, "bench-restore: bad size '%s' (MiB)\n", tok);
			return 2;
		}
		nr++;
	}
	/* No SA_RESTART: a blocking read or wait returns EINTR and we stop. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("bench-restore: PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	snprintf(g_tmp, sizeof(g_tmp), "%s/ckpt-bench-restore-XXXXXX", imgdir);
	if (!mkdtemp(g_tmp)) {
		fprintf(stderr, "bench-restore: cannot create a directory in '%s': %s\n", imgdir,
			strerror(errno));
		g_tmp[0] = '\0';
		return 1;
	}
	snprintf(run, sizeof(run), "%s/run", g_tmp);
	if (mkdir(run, 0700) < 0)
		die("cannot create '%s': %s", run, strerror(errno));
	setenv("CKPT_RUNDIR", run, 1);
	printf("images in %s (page cache warm), ckpt %s, median of %d runs\n\n", imgdir, ckpt_bin(), reps);
	fflush(stdout);
	for (int i = 0; i < nr; i++)
		run_size(&res[i], reps);
	print_tables(res, nr, reps);
	cleanup();
	return 0;
}
