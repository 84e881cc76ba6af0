/* SPDX-License-Identifier: MIT */
/*
 * Process trees (issue 15): the dump and restore of a tree of NPROC
 * processes against one process of the same total memory.
 *
 * The target (test/progs/treebench NPROC MIB): NPROC processes, each with
 * MIB / NPROC MiB of heap, half zero pages, half random. For each size and
 * process count, REPS rounds (after one warm-up round that is not counted)
 * of, each on a new target:
 *   `ckpt dump -t PID -D DIR --leave-running --json`  wall, freeze_ms
 *   `ckpt dump -t PID -D DIR --json` (kill mode)      wall, freeze_ms, bytes
 *   `ckpt restore -D DIR --detach --stdio null --json` wall (returns once
 *          every process runs), checked: the root and its NPROC-1 children
 *          are there again
 * "wall" is from fork+exec of the command to its exit. Between rounds
 * every process is killed and reaped (this driver is a subreaper), and as
 * much memory as a restore allocates is populated and freed (the VM hands
 * freed memory back to the host). Tables in markdown on stdout: median
 * (p90 / max); every run on stderr.
 *
 * With TARGET=cow the target is test/progs/cowtree MIB NPROC-1: the root
 * fills MIB MiB and forks NPROC-1 children that share it copy-on-write
 * (each rewrites 4 pages), and a column says how much the tree's private
 * memory (the sum of Private_Dirty) grew across the --leave-running dump.
 *
 * Usage: bench-tree [REPS [MIB,... [NPROC,... [IMGDIR]]]]   defaults 5 256,1024 1,16 /var/tmp
 * $CKPT names the ckpt binary (default build/ckpt), $PROGS the test programs.
 */
#include <errno.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXR 64

struct series {
	double v[MAXR];
	int n;
};

struct row {
	int mib, nproc;
	struct series lr_wall, lr_freeze, kill_wall, kill_freeze, bytes, rst_wall, grew;
};

static char g_tmp[PATH_MAX / 2];
static bool g_cow;   /* TARGET=cow */
static int g_cow_in = -1; /* its stdin: it ends at EOF */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double quant(const struct series *s, double q)
{
	double v[MAXR], pos;
	int lo;

	if (!s->n)
		return 0;
	memcpy(v, s->v, sizeof(double) * (size_t)s->n);
	qsort(v, (size_t)s->n, sizeof(double), cmp_d);
	pos = q * (s->n - 1);
	lo = (int)pos;
	return lo + 1 < s->n ? v[lo] + (pos - lo) * (v[lo + 1] - v[lo]) : v[lo];
}

static void add(struct series *s, double x)
{
	if (s->n < MAXR)
		s->v[s->n++] = x;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void __attribute__((noreturn)) die(const char *msg)
{
	fprintf(stderr, "bench-tree: %s\n", msg);
	kill(0, SIGKILL);
	exit(1);
}

/* Every process under us, killed and reaped (orphans come to us: subreaper). */
static void reap_all(void)
{
	for (int round = 0; round < 200; round++) {
		char path[64];
		FILE *f;
		int kid, n = 0;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", getpid(), getpid());
		f = fopen(path, "r");
		while (f && fscanf(f, "%d", &kid) == 1) {
			kill(kid, SIGKILL);
			n++;
		}
		if (f)
			fclose(f);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!n)
			return;
		usleep(10000);
	}
}

/* Run argv; wall ms to its exit; its stdout parsed as JSON (NULL if not). */
static json_object *run(char *const argv[], double *ret_ms)
{
	int out[2], status;
	char buf[1 << 16];
	size_t len = 0;
	uint64_t t0;
	pid_t pid;
	ssize_t k;

	if (pipe(out) < 0)
		die("pipe");
	t0 = now_ns();
	pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	while ((k = read(out[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)k;
	close(out[0]);
	waitpid(pid, &status, 0);
	*ret_ms = (double)(now_ns() - t0) / 1e6;
	buf[len] = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "bench-tree: %s %s failed (status %#x)\n", argv[0], argv[1], status);
		return NULL;
	}
	return json_tokener_parse(buf);
}

static double jd(json_object *j, const char *key)
{
	json_object *v;

	return j && json_object_object_get_ex(j, key, &v) ? json_object_get_double(v) : -1;
}

static pid_t start_target(int nproc, int mib)
{
	char prog[PATH_MAX], n[16], m[16], line[64];
	const char *progs = getenv("PROGS") ? getenv("PROGS") : "build/test/progs";
	int out[2], in[2];
	pid_t pid;
	FILE *f;

	snprintf(prog, sizeof(prog), "%s/%s", progs, g_cow ? "cowtree" : "treebench");
	snprintf(n, sizeof(n), "%d", g_cow ? nproc - 1 : nproc);
	snprintf(m, sizeof(m), "%d", mib);
	if (pipe(out) < 0 || pipe(in) < 0)
		die("pipe");
	pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		if (g_cow)
			dup2(in[0], 0);
		close(out[0]);
		close(out[1]);
		close(in[0]);
		close(in[1]);
		if (g_cow)
			execl(prog, prog, m, n, "stay", (char *)NULL);
		else
			execl(prog, prog, n, m, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	close(in[0]);
	if (g_cow_in >= 0)
		close(g_cow_in);
	g_cow_in = in[1];
	f = fdopen(out[0], "r");
	do {
		if (!f || !fgets(line, sizeof(line), f))
			die("the target did not get ready");
	} while (strncmp(line, "ready", 5));
	fclose(f);
	return pid;
}

/* Populate and free what a restore of @mib will allocate. */
static void prewarm(int mib)
{
	size_t len = (size_t)mib << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p != MAP_FAILED)
		munmap(p, len);
}

static size_t list_tree(pid_t root, pid_t *v, size_t max)
{
	size_t n = 1;

	v[0] = root;
	for (size_t i = 0; i < n; i++) {
		char path[64];
		FILE *f;
		int kid;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", v[i], v[i]);
		f = fopen(path, "r");
		while (f && n < max && fscanf(f, "%d", &kid) == 1)
			v[n++] = kid;
		if (f)
			fclose(f);
	}
	return n;
}

static size_t count_tree(pid_t root)
{
	pid_t v[256];

	return list_tree(root, v, 256);
}

/* The sum of Private_Dirty over the tree of @root, MiB: what no other process maps. */
static double tree_private_mib(pid_t root)
{
	pid_t v[256];
	size_t n = list_tree(root, v, 256);
	double kib = 0;

	for (size_t i = 0; i < n; i++) {
		char path[64], line[256];
		FILE *f;
		long k;

		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", v[i]);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "Private_Dirty: %ld kB", &k) == 1)
				kib += (double)k;
		if (f)
			fclose(f);
	}
	return kib / 1024;
}

static void round_once(struct row *row, bool count)
{
	const char *ckpt = getenv("CKPT") ? getenv("CKPT") : "build/ckpt";
	char d0[PATH_MAX], d1[PATH_MAX], pid_s[16];
	json_object *j;
	double ms, priv;
	pid_t pid, root;

	snprintf(d0, sizeof(d0), "%s/lr", g_tmp);
	snprintf(d1, sizeof(d1), "%s/kill", g_tmp);
	pid = start_target(row->nproc, row->mib);
	snprintf(pid_s, sizeof(pid_s), "%d", pid);
	priv = tree_private_mib(pid);
	j = run((char *const[]){ (char *)ckpt, "dump", "-t", pid_s, "-D", d0, "--leave-running", "--json", NULL }, &ms);
	if (!j)
		die("dump --leave-running failed");
	if (count) {
		add(&row->lr_wall, ms);
		add(&row->lr_freeze, jd(j, "freeze_ms"));
		add(&row->grew, tree_private_mib(pid) - priv);
	}
	fprintf(stderr, "  %d MiB x %d: leave-running wall %.1f freeze %.1f ms\n", row->mib, row->nproc, ms,
		jd(j, "freeze_ms"));
	json_object_put(j);
	/* Tracking armed by the first: stop it, so the kill-mode dump is a plain full one. */
	run((char *const[]){ (char *)ckpt, "track", "--stop", "-t", pid_s, NULL }, &ms);
	j = run((char *const[]){ (char *)ckpt, "dump", "-t", pid_s, "-D", d1, "--json", NULL }, &ms);
	if (!j)
		die("dump failed");
	if (count) {
		add(&row->kill_wall, ms);
		add(&row->kill_freeze, jd(j, "freeze_ms"));
		add(&row->bytes, jd(j, "bytes_after_compression") / (1 << 20));
	}
	fprintf(stderr, "  %d MiB x %d: kill wall %.1f freeze %.1f ms, %.1f MiB\n", row->mib, row->nproc, ms,
		jd(j, "freeze_ms"), jd(j, "bytes_after_compression") / (1 << 20));
	json_object_put(j);
	reap_all();
	prewarm(row->mib);
	j = run((char *const[]){ (char *)ckpt, "restore", "-D", d1, "--detach", "--stdio", "null", "--json", NULL },
		&ms);
	if (!j)
		die("restore failed");
	root = (pid_t)jd(j, "pid");
	json_object_put(j);
	if (count_tree(root) != (size_t)row->nproc)
		die("the restored tree is not whole");
	if (count)
		add(&row->rst_wall, ms);
	fprintf(stderr, "  %d MiB x %d: restore wall %.1f ms\n", row->mib, row->nproc, ms);
	reap_all();
	rm_tree(d0);
	rm_tree(d1);
}

static void cell(const struct series *s)
{
	printf(" | %.0f (%.0f / %.0f)", quant(s, 0.5), quant(s, 0.9), quant(s, 1.0));
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 5, mibs[8], nprocs[8], nm = 0, np = 0;
	char list[256], *tok, *save;
	struct row rows[64];
	int nr = 0;

	snprintf(list, sizeof(list), "%s", argc > 2 ? argv[2] : "256,1024");
	for (tok = strtok_r(list, ",", &save); tok && nm < 8; tok = strtok_r(NULL, ",", &save))
		mibs[nm++] = atoi(tok);
	snprintf(list, sizeof(list), "%s", argc > 3 ? argv[3] : "1,16");
	for (tok = strtok_r(list, ",", &save); tok && np < 8; tok = strtok_r(NULL, ",", &save))
		nprocs[np++] = atoi(tok);
	snprintf(g_tmp, sizeof(g_tmp), "%s/bench-tree-XXXXXX", argc > 4 ? argv[4] : "/var/tmp");
	if (reps < 1 || reps >= MAXR || !mkdtemp(g_tmp))
		die("usage: bench-tree [REPS [MIB,... [NPROC,... [IMGDIR]]]]");
	g_cow = getenv("TARGET") && strcmp(getenv("TARGET"), "cow") == 0;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setpgid(0, 0);
	for (int m = 0; m < nm; m++)
		for (int p = 0; p < np; p++) {
			struct row *row = &rows[nr++];

			memset(row, 0, sizeof(*row));
			row->mib = mibs[m];
			row->nproc = nprocs[p];
			for (int i = 0; i <= reps; i++)
				round_once(row, i > 0);
		}
	rm_tree(g_tmp);
	printf("| total | processes | dump --leave-running wall ms | its freeze_ms | dump (kill) wall ms | its freeze_ms | image MiB | restore wall ms | the tree grew by, MiB |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < nr; i++) {
		printf("| %d MiB | %d", rows[i].mib, rows[i].nproc);
		cell(&rows[i].lr_wall);
		cell(&rows[i].lr_freeze);
		cell(&rows[i].kill_wall);
		cell(&rows[i].kill_freeze);
		cell(&rows[i].bytes);
		cell(&rows[i].rst_wall);
		cell(&rows[i].grew);
		printf(" |\n");
	}
	return 0;
}
