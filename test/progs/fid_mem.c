/* SPDX-License-Identifier: MIT */
/*
 * Target of test/integ/fid_mem.c: the memory settings a process can read
 * back, set before "ready", checked by the process itself on "check".
 *
 *   fid_mem DIR
 *
 * Sets: one mapping per madvise flag that shows in VmFlags (sequential,
 * random, dontfork, dontdump, wipeonfork, hugepage, nohugepage, mergeable);
 * an mlock'ed mapping, a MAP_LOCKED one and an mlock2(MLOCK_ONFAULT) one,
 * all with data; a guard region (MADV_GUARD_INSTALL) between two pages of
 * data; a shared mapping, read-only, of DIR/file opened O_RDWR (fd closed);
 * PR_SET_THP_DISABLE, PR_SET_MEMORY_MERGE, the three private expedited
 * membarrier registrations, and last PR_SET_MDWE.
 *
 * On "check" prints one line per item, "ITEM ok", "ITEM BAD (why)" or
 * "ITEM skip (why)" when the kernel lacks the feature, then "done N".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PG 4096UL

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif
#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif

static const struct {
	const char *item, *code;
	int advice;
} madv[] = {
	{ "madv_sequential", "sr", MADV_SEQUENTIAL }, { "madv_random", "rr", MADV_RANDOM },
	{ "madv_dontfork", "dc", MADV_DONTFORK },     { "madv_dontdump", "dd", MADV_DONTDUMP },
	{ "madv_wipeonfork", "wf", MADV_WIPEONFORK }, { "madv_hugepage", "hg", MADV_HUGEPAGE },
	{ "madv_nohugepage", "nh", MADV_NOHUGEPAGE }, { "madv_mergeable", "mg", MADV_MERGEABLE },
};
#define NR_MADV (sizeof(madv) / sizeof(madv[0]))

static const struct {
	const char *item;
	int reg, cmd;
} mb[] = {
	{ "membarrier_private_expedited", MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
	  MEMBARRIER_CMD_PRIVATE_EXPEDITED },
	{ "membarrier_sync_core", MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
	  MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE },
	{ "membarrier_rseq", MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ,
	  MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ },
};
#define NR_MB (sizeof(mb) / sizeof(mb[0]))

#define LOCK_PAGES 16

static char *madv_map[NR_MADV], *locked, *maplocked, *onfault, *guard, *filemap;
static int madv_err[NR_MADV], guard_err, merge_err, mdwe_err, thp_want, mb_err[NR_MB];
static int nr_lines;

static void line(const char *item, const char *fmt, ...)
{
	char why[256] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	if (!fmt)
		printf("%s ok\n", item);
	else
		printf("%s %s\n", item, why);
	nr_lines++;
}

static void die(const char *what)
{
	printf("setup failed: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* @pages of data between two PROT_NONE pages: never merged with a neighbour. */
static char *map_anon(size_t pages, int extra, int seed)
{
	char *p = mmap(NULL, (pages + 2) * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	p += PG;
	if (mmap(p, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | extra, -1, 0) !=
	    p)
		die("mmap");
	for (size_t i = 0; i < pages; i++)
		memset(p + i * PG, seed + (int)i, PG);
	return p;
}

static bool data_ok(const char *p, size_t pages, int seed)
{
	for (size_t i = 0; i < pages; i++)
		for (size_t k = 0; k < PG; k += 512)
			if ((unsigned char)p[i * PG + k] != (unsigned char)(seed + (int)i))
				return false;
	return true;
}

/* The VmFlags line and the Locked: kB of the mapping that starts at @p. */
static bool smaps_of(const void *p, char *flags, size_t len, long *locked_kb)
{
	char buf[512], want[32];
	bool in = false, found = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return false;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)p);
	while (fgets(buf, sizeof(buf), f)) {
		if (strchr(buf, '-') && strchr(buf, '-') < strchr(buf, ' ') && buf[0] != ' ' &&
		    strncmp(buf, "VmFlags", 7))
			in = !strncmp(buf, want, strlen(want));
		if (!in)
			continue;
		if (!strncmp(buf, "Locked:", 7))
			*locked_kb = atol(buf + 7);
		if (!strncmp(buf, "VmFlags:", 8)) {
			snprintf(flags, len, " %s", buf + 8);
			flags[strcspn(flags, "\n")] = ' ';
			found = true;
		}
	}
	fclose(f);
	return found;
}

static bool has_flag(const char *flags, const char *code)
{
	char w[8];

	snprintf(w, sizeof(w), " %s ", code);
	return strstr(flags, w);
}

static sigjmp_buf jb;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(jb, 1);
}

/* Does a write to @p fault? (It writes what is there: the data stays.) */
static bool write_faults(volatile char *p)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	bool faulted = false;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(jb, 1) == 0)
		__atomic_fetch_add(p, 0, __ATOMIC_RELAXED); /* a write access, whatever is there */
	else
		faulted = true;
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

static void setup(const char *dir)
{
	char path[512];
	int fd;

	for (size_t i = 0; i < NR_MADV; i++) {
		madv_map[i] = map_anon(4, 0, 10 * (int)i);
		madv_err[i] = madvise(madv_map[i], 4 * PG, madv[i].advice) ? errno : 0;
	}
	locked = map_anon(LOCK_PAGES, 0, 100);
	if (mlock(locked, LOCK_PAGES * PG))
		die("mlock");
	maplocked = map_anon(LOCK_PAGES, MAP_LOCKED, 120);
	onfault = map_anon(LOCK_PAGES, 0, 140);
	if (munlock(onfault, LOCK_PAGES * PG) || syscall(SYS_mlock2, onfault, LOCK_PAGES * PG, MLOCK_ONFAULT))
		die("mlock2");
	guard = map_anon(4, 0, 160);
	guard_err = madvise(guard + PG, 2 * PG, MADV_GUARD_INSTALL) ? errno : 0;

	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 2 * PG))
		die("file");
	filemap = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0);
	if (filemap == MAP_FAILED)
		die("mmap file");
	close(fd);

	thp_want = 1;
	if (prctl(PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED, 0, 0) == 0)
		thp_want = 3;
	else if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		die("PR_SET_THP_DISABLE");
	merge_err = prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) ? errno : 0;
	for (size_t i = 0; i < NR_MB; i++)
		mb_err[i] = syscall(SYS_membarrier, mb[i].reg, 0, 0) ? errno : 0;
	mdwe_err = prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) ? errno : 0;
}

static void check_locked(const char *item, char *p, int seed, bool want_onfault)
{
	char flags[256];
	long kb = -1;

	if (!smaps_of(p, flags, sizeof(flags), &kb))
		return line(item, "BAD (mapping %p not in smaps)", (void *)p);
	if (!has_flag(flags, "lo"))
		return line(item, "BAD (not locked: VmFlags%s)", flags);
	if (has_flag(flags, "lf") != want_onfault)
		return line(item, "BAD (on-fault mode %s: VmFlags%s)", want_onfault ? "lost" : "gained", flags);
	if (!data_ok(p, LOCK_PAGES, seed))
		return line(item, "BAD (data differs)");
	if (!want_onfault && kb != (long)(LOCK_PAGES * PG / 1024))
		return line(item, "BAD (Locked: %ld kB, want %lu)", kb, LOCK_PAGES * PG / 1024);
	line(item, NULL);
}

static void check(void)
{
	char flags[256];
	long kb;
	int v;

	nr_lines = 0;
	for (size_t i = 0; i < NR_MADV; i++) {
		if (madv_err[i])
			line(madv[i].item, "skip (madvise: %s)", strerror(madv_err[i]));
		else if (!smaps_of(madv_map[i], flags, sizeof(flags), &kb))
			line(madv[i].item, "BAD (mapping not in smaps)");
		else if (!has_flag(flags, madv[i].code))
			line(madv[i].item, "BAD (no '%s' in VmFlags%s)", madv[i].code, flags);
		else if (!data_ok(madv_map[i], 4, 10 * (int)i))
			line(madv[i].item, "BAD (data differs)");
		else
			line(madv[i].item, NULL);
	}
	check_locked("mlock", locked, 100, false);
	check_locked("map_locked", maplocked, 120, false);
	check_locked("mlock_onfault", onfault, 140, true);

	if (guard_err)
		line("guard", "skip (MADV_GUARD_INSTALL: %s, Linux 6.13+)", strerror(guard_err));
	else if (!write_faults(guard + PG) || !write_faults(guard + 2 * PG))
		line("guard", "BAD (a write into the guard region did not fault)");
	else if (!data_ok(guard, 1, 160) || (unsigned char)guard[3 * PG] != 163)
		line("guard", "BAD (the pages around the guard region differ)");
	else if (write_faults(guard) || write_faults(guard + 3 * PG))
		line("guard", "BAD (a page next to the guard region faults)");
	else
		line("guard", NULL);

	if (mprotect(filemap, 2 * PG, PROT_READ | PROT_WRITE))
		line("file_maywrite", "BAD (mprotect(PROT_WRITE) of the O_RDWR shared mapping: %s)",
		     strerror(errno));
	else if (mprotect(filemap, 2 * PG, PROT_READ))
		line("file_maywrite", "BAD (mprotect back: %s)", strerror(errno));
	else
		line("file_maywrite", NULL);

	v = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
	if (v != thp_want)
		line("thp_disable", "BAD (PR_GET_THP_DISABLE %d, want %d)", v, thp_want);
	else
		line("thp_disable", NULL);

	if (merge_err) {
		line("memory_merge", "skip (PR_SET_MEMORY_MERGE: %s)", strerror(merge_err));
	} else {
		v = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
		if (v != 1)
			line("memory_merge", "BAD (PR_GET_MEMORY_MERGE %d)", v);
		else
			line("memory_merge", NULL);
	}

	for (size_t i = 0; i < NR_MB; i++) {
		if (mb_err[i])
			line(mb[i].item, "skip (membarrier register: %s)", strerror(mb_err[i]));
		else if (syscall(SYS_membarrier, mb[i].cmd, 0, 0))
			line(mb[i].item, "BAD (not registered: %s)", strerror(errno));
		else
			line(mb[i].item, NULL);
	}

	if (mdwe_err) {
		line("mdwe", "skip (PR_SET_MDWE: %s)", strerror(mdwe_err));
	} else {
		char *x = map_anon(1, 0, 0);

		v = prctl(PR_GET_MDWE, 0, 0, 0, 0);
		if (v != PR_MDWE_REFUSE_EXEC_GAIN)
			line("mdwe", "BAD (PR_GET_MDWE %d)", v);
		else if (mprotect(x, PG, PROT_READ | PROT_EXEC) == 0)
			line("mdwe", "BAD (mprotect(PROT_EXEC) of a data page succeeded)");
		else
			line("mdwe", NULL);
		munmap(x, PG);
	}
	printf("done %d\n", nr_lines);
}

int main(int argc, char **argv)
{
	char cmd[64];

	if (argc != 2) {
		fprintf(stderr, "usage: fid_mem DIR\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	setup(argv[1]);
	printf("ready\n");
	while (fgets(cmd, sizeof(cmd), stdin)) {
		if (!strncmp(cmd, "check", 5))
			check();
		else if (!strncmp(cmd, "quit", 4))
			return 0;
	}
	return 0;
}
