/* SPDX-License-Identifier: MIT */
/*
 * Continuous checkpoints (ckpt track -D) of a working process, side by side
 * with the same process untracked, in one run:
 *
 *   A  untracked, SECONDS
 *   B0 under ckpt track -D DIR --interval 1s, until its first (full)
 *      checkpoint is complete: copied while the process runs
 *   B  then the next SECONDS checkpoints, one a second (deltas)
 *   C  untracked again (drift check), SECONDS
 *
 * The process (test/progs/worker) holds SIZE MiB of memory, computes, and
 * rewrites random pages at RATE MiB/s; its work rate is read from its memory
 * every second. Reported: work rate per phase and the drop under tracking;
 * freeze time p50/p99 (every checkpoint, and deltas only); write time; the
 * first checkpoint (copied while the process runs); bytes on disk per delta
 * against the zstd -1 size of the pages written in its interval, compressed
 * as one stream (the reference "compressed size").
 *
 * Usage: bench-continuous [SECONDS [SIZE_MIB [RATE_MIB_S [DIR]]]]
 * Environment: CKPT (the ckpt binary), PROGS (test programs).
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <ckpt/image.h>

#define PS 4096UL
#define MAXCK 4096

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

/* The q-quantile (nearest rank) of @n values; sorts @v. */
static double quantile(double *v, size_t n, double q)
{
	size_t k;

	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_d);
	k = (size_t)ceil(q * (double)n);
	return v[k ? k - 1 : 0];
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v && *v ? v : dflt;
}

/* ---- the worker ---- */

struct worker {
	pid_t pid;
	int mem;
	uint64_t counter;
};

static void worker_start(struct worker *w, const char *size, const char *rate)
{
	char path[4096], line[256];
	int p[2];
	void *addr = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/worker", env_or("PROGS", "build/test/progs"));
	if (pipe(p) < 0)
		exit(1);
	w->pid = fork();
	if (w->pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(path, path, size, rate, (char *)NULL);
		perror(path);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	if (!f || !fgets(line, sizeof(line), f) || sscanf(line, "ready counter=%p", &addr) != 1) {
		fprintf(stderr, "bench-continuous: the worker did not start\n");
		exit(1);
	}
	fclose(f);
	w->counter = (uint64_t)(uintptr_t)addr;
	snprintf(path, sizeof(path), "/proc/%d/mem", w->pid);
	w->mem = open(path, O_RDONLY);
	if (w->mem < 0) {
		perror(path);
		exit(1);
	}
}

static void sample(const struct worker *w, uint64_t *units, uint64_t *pages)
{
	uint64_t v[2];

	if (pread(w->mem, v, sizeof(v), (off_t)w->counter) != sizeof(v)) {
		perror("bench-continuous: reading the worker's counter");
		exit(1);
	}
	*units = v[0];
	*pages = v[1];
}

struct phase {
	const char *name;
	double seconds;
	double on_cpu;      /* share of the time the worker ran (schedstat) */
	double wait;        /* share of the time it waited for a CPU */
	double rate;        /* units per second over the whole phase */
	double dirty_mib_s; /* pages rewritten per second, in MiB */
	double *per_s;      /* per-second rates */
	size_t n;
};

/* /proc/PID/schedstat: ns on a CPU, ns waiting on a run queue. */
static void schedstat(pid_t pid, uint64_t *run, uint64_t *wait)
{
	char path[64];
	unsigned long long a = 0, b = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%llu %llu", &a, &b) != 2)
		fprintf(stderr, "bench-continuous: cannot read %s\n", path);
	if (f)
		fclose(f);
	*run = a;
	*wait = b;
}

/* Has @path a line that is not an event (a checkpoint)? */
static bool has_checkpoint(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, "\"sequence\"") != NULL;
	if (f)
		fclose(f);
	return found;
}

/*
 * Sample every second until @child exits, or (with @first) the file @first
 * shows a checkpoint, or for @seconds without a child.
 */
static bool reaped; /* the child of the tracked phases exited */

static void run_phase(const struct worker *w, struct phase *ph, double seconds, pid_t child,
		      const char *first)
{
	uint64_t u0, p0, u, p, prev_u, run0, wait0, run1, wait1;
	double t0 = now_s(), prev_t = t0, t;

	ph->per_s = calloc(100000, sizeof(double));
	schedstat(w->pid, &run0, &wait0);
	sample(w, &u0, &p0);
	prev_u = u0;
	for (;;) {
		double next = prev_t + 1.0;
		int status;

		while ((t = now_s()) < next)
			usleep((useconds_t)((next - t) * 1e6) + 1);
		sample(w, &u, &p);
		if (ph->n < 100000)
			ph->per_s[ph->n++] = (double)(u - prev_u) / (t - prev_t);
		prev_u = u;
		prev_t = t;
		if (child > 0 && !reaped && waitpid(child, &status, WNOHANG) == child)
			reaped = true;
		if (first ? has_checkpoint(first) || reaped : child > 0 ? reaped : t - t0 >= seconds)
			break;
	}
	schedstat(w->pid, &run1, &wait1);
	ph->seconds = t - t0;
	ph->on_cpu = (double)(run1 - run0) / 1e9 / ph->seconds;
	ph->wait = (double)(wait1 - wait0) / 1e9 / ph->seconds;
	ph->rate = (double)(u - u0) / ph->seconds;
	ph->dirty_mib_s = (double)(p - p0) * PS / (1 << 20) / ph->seconds;
}

/* ---- the checkpoints ---- */

struct ck {
	char name[32];
	bool delta;
	double freeze_ms, prefreeze_ms, write_ms, precopy_ms, interval_s, stretched_ms;
	uint64_t pages_written, pages_data, bytes_raw, bytes_zst, bytes_disk;
	uint64_t ref; /* zstd -1 of its data pages, one stream */
};

static double jd(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static uint64_t ju(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static size_t read_ndjson(const char *path, struct ck *cks, uint64_t *stretched)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		perror(path);
		exit(1);
	}
	while (getline(&line, &cap, f) > 0 && n < MAXCK) {
		json_object *o = json_tokener_parse(line), *v;

		if (!o)
			continue;
		if (json_object_object_get_ex(o, "event", &v)) {
			if (!strcmp(json_object_get_string(v), "end"))
				*stretched = ju(o, "stretched");
		} else {
			struct ck *c = &cks[n++];

			snprintf(c->name, sizeof(c->name), "%s",
				 json_object_get_string(json_object_object_get(o, "name")));
			c->delta = !strcmp(json_object_get_string(json_object_object_get(o, "kind")), "delta");
			c->freeze_ms = jd(o, "freeze_ms");
			c->prefreeze_ms = jd(o, "prefreeze_ms");
			c->write_ms = jd(o, "write_ms");
			c->precopy_ms = jd(o, "precopy_ms");
			c->interval_s = jd(o, "interval_s");
			c->stretched_ms = jd(o, "stretched_ms");
			c->pages_written = ju(o, "pages_written");
			c->pages_data = ju(o, "pages_data");
			c->bytes_raw = ju(o, "bytes_before_compression");
			c->bytes_zst = ju(o, "bytes_after_compression");
			c->bytes_disk = ju(o, "bytes_on_disk");
		}
		json_object_put(o);
	}
	free(line);
	fclose(f);
	return n;
}

/* The data pages of checkpoint @path, in address order, compressed as one zstd stream at level 1. */
static uint64_t reference_size(const char *path)
{
	struct ckpt_image *img;
	const struct ckpt_image_index *idx;
	unsigned char *buf, *out;
	size_t n = 0, cap, outcap;
	uint64_t r;

	if (ckpt_image_open(path, NULL, &img) < 0)
		return 0;
	idx = ckpt_image_index(img);
	cap = 0;
	for (size_t i = 0; i < idx->nr_entries; i++)
		if (idx->entries[i].kind == CKPT_PAGE_DATA)
			cap += idx->entries[i].nr_pages * PS;
	buf = malloc(cap ? cap : 1);
	for (size_t i = 0; i < idx->nr_entries; i++) {
		const struct ckpt_image_entry *e = &idx->entries[i];

		for (uint64_t k = 0; e->kind == CKPT_PAGE_DATA && k < e->nr_pages; k++, n += PS)
			if (ckpt_image_read_page(img, e->addr + k * PS, buf + n) != CKPT_PAGE_DATA)
				fprintf(stderr, "bench-continuous: %s: cannot read a page\n", path);
	}
	outcap = ZSTD_compressBound(n);
	out = malloc(outcap);
	r = ZSTD_compress(out, outcap, buf, n, 1);
	if (ZSTD_isError(r))
		r = 0;
	free(out);
	free(buf);
	ckpt_image_close(img);
	return r;
}

static double median_of(const struct phase *ph)
{
	double *tmp = malloc((ph->n ? ph->n : 1) * sizeof(double));
	double m;

	memcpy(tmp, ph->per_s, ph->n * sizeof(double));
	m = quantile(tmp, ph->n, 0.5);
	free(tmp);
	return m;
}

static void print_phase(const struct phase *ph, double base)
{
	double *tmp = malloc(ph->n * sizeof(double));

	memcpy(tmp, ph->per_s, ph->n * sizeof(double));
	printf("| %-22s | %5.1f | %9.0f | %9.0f | %+7.2f%% | %6.2f%% | %6.2f%% | %5.2f |\n", ph->name,
	       ph->seconds, ph->rate, quantile(tmp, ph->n, 0.5),
	       base > 0 ? (ph->rate / base - 1) * 100 : 0.0, ph->on_cpu * 100, ph->wait * 100,
	       ph->dirty_mib_s);
	free(tmp);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 60;
	const char *size = argc > 2 ? argv[2] : "4096", *rate = argc > 3 ? argv[3] : "10";
	const char *dir = argc > 4 ? argv[4] : "/var/tmp/ckpt-bench-continuous";
	const char *ckpt = env_or("CKPT", "build/ckpt");
	static struct ck cks[MAXCK];
	struct phase a = { .name = "A untracked" }, b0 = { .name = "B0 first checkpoint" },
		     b = { .name = "B track -D, deltas" }, c = { .name = "C untracked again" };
	char ndjson[4200], cmd[8400], pidstr[16], count[32];
	double fr_all[MAXCK], fr_delta[MAXCK], pre_delta[MAXCK], sum_delta[MAXCK], wr[MAXCK];
	double ratio[MAXCK], t0;
	size_t n, nd = 0, na = 0;
	uint64_t stretched = 0, disk = 0, ref = 0, zst = 0;
	struct worker w;
	pid_t ck;

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	snprintf(ndjson, sizeof(ndjson), "%s.ndjson", dir);
	printf("== bench-continuous: %s MiB process, %s MiB/s of random pages rewritten, %.0f s per "
	       "phase, checkpoints in %s\n", size, rate, seconds, dir);
	t0 = now_s();
	worker_start(&w, size, rate);
	printf("worker %d ready (%.1f s to fill its memory); 5 s warm-up\n", w.pid, now_s() - t0);
	fflush(stdout);
	sleep(5);

	run_phase(&w, &a, seconds, 0, NULL);
	snprintf(pidstr, sizeof(pidstr), "%d", w.pid);
	snprintf(count, sizeof(count), "%.0f", seconds + 1);
	ck = fork();
	if (ck == 0) {
		int fd = open(ndjson, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		execl(ckpt, ckpt, "track", "-t", pidstr, "-D", dir, "--interval", "1s", "--count",
		      count, "--json", (char *)NULL);
		perror(ckpt);
		_exit(127);
	}
	run_phase(&w, &b0, 0, ck, ndjson);
	if (!reaped)
		run_phase(&w, &b, 0, ck, NULL);
	snprintf(cmd, sizeof(cmd), "%s track --stop -t %d >/dev/null", ckpt, w.pid);
	if (system(cmd) != 0)
		fprintf(stderr, "bench-continuous: ckpt track --stop failed\n");
	run_phase(&w, &c, seconds, 0, NULL);
	kill(w.pid, SIGKILL);
	waitpid(w.pid, NULL, 0);

	n = read_ndjson(ndjson, cks, &stretched);
	for (size_t i = 0; i < n; i++) {
		char *path = NULL;

		fr_all[na++] = cks[i].freeze_ms;
		wr[i] = cks[i].write_ms;
		if (!cks[i].delta)
			continue;
		fr_delta[nd] = cks[i].freeze_ms;
		pre_delta[nd] = cks[i].prefreeze_ms;
		sum_delta[nd] = cks[i].freeze_ms + cks[i].prefreeze_ms;
		if (asprintf(&path, "%s/%s", dir, cks[i].name) < 0)
			return 1;
		cks[i].ref = reference_size(path);
		free(path);
		ratio[nd] = cks[i].ref ? (double)cks[i].bytes_disk / (double)cks[i].ref : 0;
		disk += cks[i].bytes_disk;
		ref += cks[i].ref;
		zst += cks[i].bytes_zst;
		nd++;
	}

	printf("\nWork rate (units/s; a unit is 4096 xorshift rounds), phases in this order:\n\n");
	printf("| %-22s | %5s | %9s | %9s | %8s | %7s | %7s | %5s |\n", "phase", "s", "units/s",
	       "p50 1 s", "vs A", "on CPU", "waiting", "MiB/s");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
	print_phase(&a, 0);
	print_phase(&b0, a.rate);
	print_phase(&b, a.rate);
	print_phase(&c, a.rate);
	if (getenv("BENCH_VERBOSE"))
		for (size_t i = 0; i < b.n; i++)
			printf("B second %zu: %.0f\n", i, b.per_s[i]);
	printf("\nB (deltas, one a second) against the mean of A and C: work rate %+.2f%%, median of "
	       "1 s rates %+.2f%%; time on a CPU %+.2f points (stopped, or waiting for a CPU)\n",
	       (b.rate / ((a.rate + c.rate) / 2) - 1) * 100,
	       (median_of(&b) / ((median_of(&a) + median_of(&c)) / 2) - 1) * 100,
	       (b.on_cpu - (a.on_cpu + c.on_cpu) / 2) * 100);

	printf("\nCheckpoints: %zu (1 full, %zu deltas), %" PRIu64 " intervals stretched\n", n, nd,
	       stretched);
	if (n) {
		printf("first (full): copied while running in %.0f ms, then frozen %.2f ms; "
		       "%.0f MiB raw -> %.0f MiB on disk, written in %.0f ms\n",
		       cks[0].precopy_ms, cks[0].freeze_ms, (double)cks[0].bytes_raw / (1 << 20),
		       (double)cks[0].bytes_disk / (1 << 20), cks[0].write_ms);
	}
	printf("\n| measure | p50 | p99 | max |\n|---|---:|---:|---:|\n");
	{
		double tmp[MAXCK];

		memcpy(tmp, fr_all, na * sizeof(double));
		printf("| freeze ms, every checkpoint | %.2f | %.2f | %.2f |\n", quantile(fr_all, na, 0.5),
		       quantile(fr_all, na, 0.99), quantile(tmp, na, 1.0));
		memcpy(tmp, fr_delta, nd * sizeof(double));
		printf("| freeze ms of a delta | %.2f | %.2f | %.2f |\n", quantile(fr_delta, nd, 0.5),
		       quantile(fr_delta, nd, 0.99), quantile(tmp, nd, 1.0));
		memcpy(tmp, pre_delta, nd * sizeof(double));
		printf("| harvest-only freeze before it, deltas | %.2f | %.2f | %.2f |\n",
		       quantile(pre_delta, nd, 0.5), quantile(pre_delta, nd, 0.99),
		       quantile(tmp, nd, 1.0));
		memcpy(tmp, sum_delta, nd * sizeof(double));
		printf("| both freezes of a delta, summed | %.2f | %.2f | %.2f |\n",
		       quantile(sum_delta, nd, 0.5), quantile(sum_delta, nd, 0.99),
		       quantile(tmp, nd, 1.0));
		memcpy(tmp, wr + 1, (n ? n - 1 : 0) * sizeof(double));
		printf("| write ms, deltas | %.1f | %.1f | %.1f |\n", quantile(wr + 1, n ? n - 1 : 0, 0.5),
		       quantile(wr + 1, n ? n - 1 : 0, 0.99), quantile(tmp, n ? n - 1 : 0, 1.0));
		memcpy(tmp, ratio, nd * sizeof(double));
		printf("| bytes on disk / zstd -1 of the written pages, per delta | %.3f | %.3f | %.3f |\n",
		       quantile(ratio, nd, 0.5), quantile(ratio, nd, 0.99), quantile(tmp, nd, 1.0));
	}
	if (nd)
		printf("\nDeltas: %.1f MiB/s written by the process; on disk %.1f MiB per delta "
		       "(pages.zst %.1f MiB, reference %.1f MiB): %.3fx overall\n",
		       b.dirty_mib_s, (double)disk / nd / (1 << 20), (double)zst / nd / (1 << 20),
		       (double)ref / nd / (1 << 20), ref ? (double)disk / (double)ref : 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, ndjson);
	if (!getenv("BENCH_KEEP") && system(cmd) != 0)
		fprintf(stderr, "bench-continuous: cannot remove %s\n", dir);
	return 0;
}
