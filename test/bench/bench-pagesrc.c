/* SPDX-License-Identifier: MIT */
/*
 * Page sources side by side: the local one (lib/image on the checkpoint
 * directory) and the remote one (ckpt page-server on loopback, a process of
 * its own), on the same checkpoint in the same run.
 *
 *   bench-pagesrc [-s MiB] [-r RUNS] [-n SAMPLES] [-p same|cross] [-k CKPT] [-d TMPDIR]
 *
 * The checkpoint: S MiB of address space in one mapping, a quarter zero
 * pages, the rest half text-like and half random (zstd level 1, frames of
 * 256 pages). Measured:
 *   - sequential reads of the whole mapping in batches of 64, 256, 1024 and
 *     4096 pages: pages/s and MiB/s of data pages delivered (median of RUNS);
 *   - single-page reads, one at a time: sequential addresses (the frame is
 *     mostly cached) and random ones (a frame decoded per read), latency
 *     p50/p99 over SAMPLES reads.
 * -p pins the benchmark (the client) and the server to the same vCPU (0),
 * or to two (0 and 1); without it the scheduler places them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/image.h>
#include <ckpt/pagesrc.h>

#define PS	4096ULL
#define BASE	0x7f0000000000ULL
#define BOOT_ID "0b7c3c1e-5a55-4c1a-9e1e-2f3a4b5c6d7e"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench-pagesrc: %s\n", what);
	exit(1);
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* Page @i: zero for i % 4 == 3, text-like for even i, random for odd i. */
static void page_of(unsigned char *p, uint64_t i)
{
	static const char words[] = "checkpoint restore page memory process thread signal ";
	uint64_t s = mix(i + 1);

	if (i % 4 == 3) {
		memset(p, 0, PS);
		return;
	}
	if (i % 2 == 0) {
		for (unsigned int k = 0; k < PS; k++)
			p[k] = (unsigned char)words[(s + k) % (sizeof(words) - 1)];
		return;
	}
	for (unsigned int k = 0; k < PS / 8; k++) {
		s = mix(s + k);
		memcpy(p + k * 8, &s, 8);
	}
}

static void make_checkpoint(const char *path, uint64_t pages)
{
	struct ckpt_image_writer_opts o = {
		.identity = {.pid = 4242, .start_time = 1, .boot_id = BOOT_ID, .exe = "/bench"},
	};
	struct ckpt_image_writer *w;
	unsigned char *buf = malloc(256 * PS);
	char mm[256];
	json_object *doc;

	if (!buf || ckpt_image_writer_new(path, &o, &w) < 0)
		die("cannot start the checkpoint");
	for (uint64_t i = 0; i < pages; i += 256) {
		uint64_t n = pages - i < 256 ? pages - i : 256;

		for (uint64_t k = 0; k < n; k++)
			page_of(buf + k * PS, i + k);
		if (ckpt_image_writer_add_data(w, BASE + i * PS, n, buf) < 0)
			die("cannot add pages");
	}
	snprintf(mm, sizeof(mm),
		 "{\"version\": 1, \"vmas\": [{\"start\": \"0x%llx\", \"end\": \"0x%llx\"}]}", BASE,
		 BASE + pages * PS);
	doc = json_tokener_parse(mm);
	if (!doc || ckpt_image_writer_put_json(w, "mm.json", doc) < 0 ||
	    ckpt_image_writer_commit(w) < 0)
		die("cannot write the checkpoint");
	json_object_put(doc);
	ckpt_image_writer_free(w);
	free(buf);
}

/* ckpt page-server on 127.0.0.1, port picked by it; returns its pid, its URL in @url. */
static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		die("cannot pin to a vCPU");
}

static pid_t start_server(const char *ckpt, const char *dir, int cpu, char *url, size_t len)
{
	int o[2];
	pid_t pid;
	char line[1024];
	size_t n = 0;
	json_object *j, *v;

	if (pipe(o) < 0)
		die("pipe");
	pid = fork();
	if (pid == 0) {
		pin(cpu);
		dup2(o[1], 1);
		close(o[0]);
		execl(ckpt, ckpt, "page-server", "-D", dir, "--listen", "127.0.0.1:0", "--json",
		      NULL);
		_exit(127);
	}
	close(o[1]);
	while (n + 1 < sizeof(line)) {
		struct pollfd p = {o[0], POLLIN, 0};

		if (poll(&p, 1, 10000) <= 0 || read(o[0], line + n, 1) != 1)
			die("the page server did not start");
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	j = json_tokener_parse(line);
	if (!j || !json_object_object_get_ex(j, "address", &v))
		die(line);
	snprintf(url, len, "tcp://%s", json_object_get_string(v));
	json_object_put(j);
	return pid;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t i = (size_t)ceil(p / 100.0 * (double)n);

	qsort(v, n, sizeof(*v), cmp_double);
	return v[i ? i - 1 : 0];
}

struct seq {
	double pages_s, mib_s;
};

/* Sequential passes over the whole mapping in batches of @batch; the median pass. */
static struct seq sequential(struct ckpt_page_source *src, uint64_t pages, size_t batch, int runs)
{
	unsigned char *buf = malloc(batch * PS);
	uint8_t *kinds = malloc(batch);
	double *t = calloc((size_t)runs, sizeof(*t)), med;
	uint64_t data = 0;

	for (int r = 0; r < runs; r++) {
		double t0 = now_s();

		data = 0;
		for (uint64_t i = 0; i < pages; i += batch) {
			size_t n = pages - i < batch ? pages - i : batch;
			int k = ckpt_page_source_read_pages(src, BASE + i * PS, n, kinds, buf);

			if (k < 0)
				die("read failed");
			data += (uint64_t)k;
		}
		t[r] = now_s() - t0;
	}
	med = pct(t, (size_t)runs, 50);
	free(buf);
	free(kinds);
	free(t);
	return (struct seq){(double)pages / med, (double)data * PS / (1 << 20) / med};
}

/* @n single-page reads; sequential addresses or random ones. p50 and p99 in microseconds. */
static void single(struct ckpt_page_source *src, uint64_t pages, size_t n, bool random, double *p50,
		   double *p99)
{
	double *lat = calloc(n, sizeof(*lat));
	unsigned char buf[PS];
	uint64_t x = 12345;

	for (size_t i = 0; i < n; i++) {
		uint64_t pg = random ? (x = mix(x + i)) % pages : i % pages;
		double t0 = now_s();

		if (ckpt_page_source_read_page(src, BASE + pg * PS, buf) < 0)
			die("read failed");
		lat[i] = (now_s() - t0) * 1e6;
	}
	*p50 = pct(lat, n, 50);
	*p99 = pct(lat, n, 99);
	free(lat);
}

int main(int argc, char **argv)
{
	const char *ckpt = getenv("CKPT") ? getenv("CKPT") : "build/ckpt";
	const char *tmpbase = "/tmp";
	uint64_t mib = 256, pages;
	int runs = 3, c, cpu_client = -1, cpu_server = -1;
	const char *placement = "placed by the scheduler";
	size_t samples = 2000;
	static const size_t batches[] = {64, 256, 1024, 4096};
	struct ckpt_page_source *src[2] = {0};
	struct ckpt_page_source_opts lo = {.cache_frames = 32};
	struct ckpt_page_source_stats st;
	char dir[256], ck[300], url[128], cmd[400];
	pid_t server;
	double t0;

	while ((c = getopt(argc, argv, "s:r:n:p:k:d:")) != -1) {
		switch (c) {
		case 's':
			mib = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'n':
			samples = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			cpu_client = 0;
			cpu_server = strcmp(optarg, "cross") == 0 ? 1 : 0;
			placement = cpu_server ? "client on vCPU 0, server on vCPU 1"
					       : "client and server on vCPU 0";
			break;
		case 'k':
			ckpt = optarg;
			break;
		case 'd':
			tmpbase = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench-pagesrc [-s MiB] [-r RUNS] [-n SAMPLES] [-p "
					"same|cross] "
					"[-k CKPT] [-d TMPDIR]\n");
			return 2;
		}
	}
	if (mib == 0 || runs < 1 || samples < 100)
		die("-s > 0, -r >= 1, -n >= 100");
	pages = mib * 256;
	snprintf(dir, sizeof(dir), "%s/ckpt-bench-pagesrc-XXXXXX", tmpbase);
	if (!mkdtemp(dir))
		die("mkdtemp");
	snprintf(ck, sizeof(ck), "%s/ck", dir);
	t0 = now_s();
	make_checkpoint(ck, pages);
	fprintf(stderr, "checkpoint of %llu MiB written in %.2f s\n", (unsigned long long)mib,
		now_s() - t0);

	server = start_server(ckpt, ck, cpu_server, url, sizeof(url));
	pin(cpu_client);
	if (ckpt_page_source_open_local(ck, &lo, &src[0]) < 0 ||
	    ckpt_page_source_open_remote(url, NULL, NULL, &src[1]) < 0)
		die("cannot open the sources");

	printf("%llu MiB mapping (%llu pages: 1/4 zero, 3/8 text-like, 3/8 random; zstd 1, 1 MiB "
	       "frames), "
	       "median of %d passes, %zu single reads; %s\n\n",
	       (unsigned long long)mib, (unsigned long long)pages, runs, samples, placement);
	printf("| sequential reads, batch | local pages/s | local MiB/s | remote pages/s | remote "
	       "MiB/s | remote/local |\n");
	printf("|---:|---:|---:|---:|---:|---:|\n");
	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		struct seq l = sequential(src[0], pages, batches[b], runs);
		struct seq r = sequential(src[1], pages, batches[b], runs);

		printf("| %zu | %.0f | %.0f | %.0f | %.0f | %.2f |\n", batches[b], l.pages_s,
		       l.mib_s, r.pages_s, r.mib_s, r.pages_s / l.pages_s);
	}
	printf("\n| single-page read latency, us | local p50 | local p99 | remote p50 | remote p99 "
	       "|\n");
	printf("|---|---:|---:|---:|---:|\n");
	for (int random = 0; random < 2; random++) {
		double l50, l99, r50, r99;

		single(src[0], pages, samples, random, &l50, &l99);
		single(src[1], pages, samples, random, &r50, &r99);
		printf("| %s | %.1f | %.1f | %.1f | %.1f |\n",
		       random ? "random addresses (a frame decoded per read)"
			      : "sequential addresses (frame cached)",
		       l50, l99, r50, r99);
	}
	ckpt_page_source_get_stats(src[1], &st);
	printf("\nremote: %llu requests in %llu round trips, %.1f MiB received\n",
	       (unsigned long long)st.requests, (unsigned long long)st.round_trips,
	       (double)st.bytes_in / (1 << 20));
	ckpt_page_source_close(src[0]);
	ckpt_page_source_close(src[1]);
	kill(server, SIGTERM);
	waitpid(server, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return 0;
}
