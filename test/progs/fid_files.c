/* SPDX-License-Identifier: MIT */
/*
 * Target of the files fidelity tests (test/integ/fid_files.c): it sets up
 * each item, prints "ready", and on each stdin line "check" checks every
 * item itself and prints "ITEM ok" or "ITEM BAD (why)", then "done".
 * On "bump" it changes its deleted files through their mappings (item
 * ghost-map checks the change) and prints "bumped". Anything else on stdin
 * ends it.
 *
 *   fid_files DIR          every item below (DIR: an empty scratch directory)
 *   fid_files big DIR SIZE only a ghost file of SIZE bytes, open (item ghost-big)
 *   fid_files bigmap DIR SIZE  only a ghost file of SIZE bytes, mapped shared
 *                          and written, not open (item ghost-big)
 *
 * Items:
 *   memfd        a memfd "fid-data", not mapped: 3 pages and 100 bytes of a
 *                pattern, position 5000, sealed SHRINK|GROW|WRITE|SEAL; a
 *                second fd of it, read-only, opened again by /proc/self/fd
 *   memfd-plain  a memfd made without MFD_ALLOW_SEALING: empty, F_SEAL_SEAL
 *   memfd-mapped a memfd "fid-map" of 2 pages mapped shared and written,
 *                sealed SHRINK|GROW, open O_RDWR at 100 and O_RDONLY at 7
 *   ghost        DIR/ghost: 10000 bytes, mode 0640, open O_RDWR at 1234 and
 *                O_RDONLY|O_APPEND... (read-only at 77), then unlinked
 *   ghost-map    DIR/gmap: 3 pages, open O_RDWR, mapped shared (written
 *                through the mapping: dirty in the page cache) and privately
 *                (page 1 copied on write), then unlinked: one file for the fd
 *                and both mappings, the private mapping's other pages still
 *                following the file
 *   ghost-maponly DIR/gonly: 2 pages mapped shared twice (read-write, and
 *                read-only), written, its fd closed, unlinked: one file
 *   exe          it runs from DIR/exe, a copy of itself that it removes
 *                (re-executed at start): /proc/self/exe is that deleted file,
 *                the same file its code is mapped from
 *   cwd          DIR/cwd made, entered, removed
 *   proc         /proc/self/status open and read 10 bytes, /proc/PID/stat
 *                open (PID: its own, by number)
 * Each check compares what the process can see: contents, size, mode,
 * mtime, position, access mode, seals, its readlink, the object shared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MEMFD_LEN (3 * 4096 + 100)
#define MEMFD_POS 5000
#define MEMFD_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)
#define GHOST_LEN 10000
#define GHOST_POS 1234
#define GHOST_POS2 77
#define PROC_POS 10

static char dir[4096];
static int memfd = -1, memfd_ro = -1, memfd_plain = -1, ghost = -1, ghost_ro = -1;
static int mapfd = -1, mapfd_ro = -1;
static unsigned char *map;
static int proc_status = -1, proc_stat = -1;
static struct stat ghost_st0;
static uint64_t big_size;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static unsigned char pat(size_t i, unsigned int seed)
{
	return (unsigned char)(i * 131 + seed);
}

static void fill(unsigned char *b, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = pat(i, seed);
}

/* "ITEM BAD (why)" once per item: the first problem found. */
static char why[512];

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
	va_list ap;

	if (why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
}

static void report(const char *item)
{
	if (why[0])
		printf("%s BAD (%s)\n", item, why);
	else
		printf("%s ok\n", item);
	why[0] = '\0';
}

static void check_link(int fd, const char *want)
{
	char p[64], got[4200];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, got, sizeof(got) - 1);
	if (n < 0) {
		bad("readlink fd %d: %s", fd, strerror(errno));
		return;
	}
	got[n] = '\0';
	if (strcmp(got, want))
		bad("fd %d is '%s', not '%s'", fd, got, want);
}

static void check_pos(int fd, off_t want)
{
	off_t got = lseek(fd, 0, SEEK_CUR);

	if (got != want)
		bad("fd %d at %lld, not %lld", fd, (long long)got, (long long)want);
}

static void check_acc(int fd, int want)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (fl & (O_ACCMODE | O_APPEND)) != want)
		bad("fd %d has flags %#o, not %#o", fd, fl < 0 ? 0 : fl & (O_ACCMODE | O_APPEND), want);
}

static void check_bytes(int fd, size_t len, unsigned int seed)
{
	unsigned char *b = malloc(len + 1);
	ssize_t n;

	if (!b)
		die("malloc");
	n = pread(fd, b, len + 1, 0);
	if (n != (ssize_t)len)
		bad("fd %d holds %zd bytes, not %zu", fd, n, len);
	for (size_t i = 0; n == (ssize_t)len && i < len; i++)
		if (b[i] != pat(i, seed)) {
			bad("fd %d: byte %zu is %#x, not %#x", fd, i, b[i], pat(i, seed));
			break;
		}
	free(b);
}

static void check_same(int a, int b)
{
	struct stat x, y;

	if (fstat(a, &x) < 0 || fstat(b, &y) < 0 || x.st_ino != y.st_ino || x.st_dev != y.st_dev)
		bad("fds %d and %d are not the same file any more", a, b);
}

/* ---- items ---- */

static void setup_memfd(void)
{
	unsigned char b[MEMFD_LEN];
	char p[64];

	memfd = memfd_create("fid-data", MFD_ALLOW_SEALING);
	if (memfd < 0)
		die("memfd_create");
	fill(b, sizeof(b), 7);
	if (write(memfd, b, sizeof(b)) != (ssize_t)sizeof(b) || lseek(memfd, MEMFD_POS, SEEK_SET) < 0)
		die("memfd write");
	if (fcntl(memfd, F_ADD_SEALS, MEMFD_SEALS) < 0)
		die("F_ADD_SEALS");
	snprintf(p, sizeof(p), "/proc/self/fd/%d", memfd);
	memfd_ro = open(p, O_RDONLY);
	memfd_plain = memfd_create("fid-plain", 0);
	if (memfd_ro < 0 || memfd_plain < 0)
		die("memfd again");
}

static void check_memfd(void)
{
	struct stat st;
	int seals = fcntl(memfd, F_GET_SEALS);

	if (fstat(memfd, &st) < 0 || st.st_size != MEMFD_LEN)
		bad("size %lld, not %d", (long long)st.st_size, MEMFD_LEN);
	check_bytes(memfd, MEMFD_LEN, 7);
	check_pos(memfd, MEMFD_POS);
	if (seals != MEMFD_SEALS)
		bad("seals %#x, not %#x", seals, MEMFD_SEALS);
	if (write(memfd, "x", 1) != -1 || errno != EPERM)
		bad("a write through the sealed memfd did not fail with EPERM");
	check_link(memfd, "/memfd:fid-data (deleted)");
	check_acc(memfd, O_RDWR);
	check_acc(memfd_ro, O_RDONLY);
	check_pos(memfd_ro, 0);
	check_same(memfd, memfd_ro);
	report("memfd");

	seals = fcntl(memfd_plain, F_GET_SEALS);
	if (seals != F_SEAL_SEAL)
		bad("seals %#x, not F_SEAL_SEAL", seals);
	if (fstat(memfd_plain, &st) < 0 || st.st_size != 0)
		bad("size %lld, not 0", (long long)st.st_size);
	check_link(memfd_plain, "/memfd:fid-plain (deleted)");
	report("memfd-plain");
}

#define MAP_LEN (2 * 4096)
#define MAP_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

static void setup_memfd_mapped(void)
{
	char p[64];

	mapfd = memfd_create("fid-map", MFD_ALLOW_SEALING);
	if (mapfd < 0 || ftruncate(mapfd, MAP_LEN) < 0)
		die("memfd_create");
	map = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, mapfd, 0);
	if (map == MAP_FAILED)
		die("mmap");
	fill(map, MAP_LEN, 11);
	if (fcntl(mapfd, F_ADD_SEALS, MAP_SEALS) < 0 || lseek(mapfd, 100, SEEK_SET) < 0)
		die("seals");
	snprintf(p, sizeof(p), "/proc/self/fd/%d", mapfd);
	mapfd_ro = open(p, O_RDONLY);
	if (mapfd_ro < 0 || lseek(mapfd_ro, 7, SEEK_SET) < 0)
		die("memfd again");
}

static void check_memfd_mapped(void)
{
	int seals = fcntl(mapfd, F_GET_SEALS);
	unsigned char b = 0;

	check_bytes(mapfd, MAP_LEN, 11);
	check_pos(mapfd, 100);
	check_pos(mapfd_ro, 7);
	check_acc(mapfd, O_RDWR);
	check_acc(mapfd_ro, O_RDONLY);
	if (seals != MAP_SEALS)
		bad("seals %#x, not %#x", seals, MAP_SEALS);
	check_link(mapfd, "/memfd:fid-map (deleted)");
	check_same(mapfd, mapfd_ro);
	/* One object: a write through the mapping is read through the fd. */
	map[4097] ^= 0xff;
	if (pread(mapfd_ro, &b, 1, 4097) != 1 || b != (unsigned char)(pat(4097, 11) ^ 0xff))
		bad("the mapping and the fd are not the same memory");
	map[4097] ^= 0xff;
	report("memfd-mapped");
}

static int make_ghost(const char *path, size_t len, mode_t mode)
{
	unsigned char *b = malloc(len ? len : 1);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);

	if (fd < 0 || !b)
		die(path);
	fill(b, len, 3);
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, b + done, len - done);

		if (n <= 0)
			die("write");
		done += (size_t)n;
	}
	free(b);
	if (fchmod(fd, mode) < 0)
		die("fchmod");
	return fd;
}

static void setup_ghost(void)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/ghost", dir);
	ghost = make_ghost(path, GHOST_LEN, 0640);
	/* an mtime of its own, in the past, so that "now" would not pass */
	if (futimens(ghost, (struct timespec[2]){ { 0, UTIME_OMIT }, { 1500000000, 123456789 } }) < 0)
		die("futimens");
	ghost_ro = open(path, O_RDONLY | O_APPEND);
	if (ghost_ro < 0 || lseek(ghost, GHOST_POS, SEEK_SET) < 0 ||
	    lseek(ghost_ro, GHOST_POS2, SEEK_SET) < 0)
		die("ghost");
	if (fstat(ghost, &ghost_st0) < 0 || unlink(path) < 0)
		die("unlink");
}

static void check_ghost(void)
{
	char want[4300];
	struct stat st;

	snprintf(want, sizeof(want), "%s/ghost (deleted)", dir);
	if (fstat(ghost, &st) < 0)
		bad("fstat: %s", strerror(errno));
	else if (st.st_nlink != 0)
		bad("%lu links, not 0 (deleted)", (unsigned long)st.st_nlink);
	else if (st.st_size != GHOST_LEN)
		bad("size %lld, not %d", (long long)st.st_size, GHOST_LEN);
	else if ((st.st_mode & 07777) != 0640 || !S_ISREG(st.st_mode))
		bad("mode %#o, not a regular file of 0640", st.st_mode);
	else if (st.st_mtim.tv_sec != ghost_st0.st_mtim.tv_sec ||
		 st.st_mtim.tv_nsec != ghost_st0.st_mtim.tv_nsec)
		bad("mtime %lld.%09ld, not %lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		    (long long)ghost_st0.st_mtim.tv_sec, ghost_st0.st_mtim.tv_nsec);
	check_bytes(ghost, GHOST_LEN, 3);
	check_pos(ghost, GHOST_POS);
	check_pos(ghost_ro, GHOST_POS2);
	check_acc(ghost, O_RDWR);
	check_acc(ghost_ro, O_RDONLY | O_APPEND);
	check_link(ghost, want);
	check_link(ghost_ro, want);
	check_same(ghost, ghost_ro);
	report("ghost");
}

/* ---- deleted files mapped ---- */

#define GMAP_LEN (3 * 4096)
static int gmap_fd = -1;
static unsigned char *gmap_sh, *gmap_pr, *gonly_rw;
static const unsigned char *gonly_ro;

/* The inode of the object mapped at @addr (/proc/self/map_files), 0 if unknown. */
static ino_t mapped_ino(const void *addr, char *name, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4400];
	ino_t ino = 0;

	name[0] = '\0';
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		int off = 0;
		char p[128];
		struct stat st;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &s, &e, &off) < 2 || !off)
			continue;
		if ((unsigned long)addr < s || (unsigned long)addr >= e)
			continue;
		snprintf(name, len, "%s", line + off);
		name[strcspn(name, "\n")] = '\0';
		snprintf(p, sizeof(p), "/proc/self/map_files/%lx-%lx", s, e);
		if (stat(p, &st) == 0)
			ino = st.st_ino;
		break;
	}
	fclose(f);
	return ino;
}

/* The mapping at @addr maps the object of inode @ino, named @want in maps. */
static void check_mapped(const void *addr, ino_t ino, const char *want)
{
	char name[4400];
	ino_t got = mapped_ino(addr, name, sizeof(name));

	if (strcmp(name, want))
		bad("%p maps '%s', not '%s'", addr, name, want);
	else if (got != ino)
		bad("%p maps inode %lu, not the file's %lu", addr, (unsigned long)got, (unsigned long)ino);
}

static void setup_ghost_map(void)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/gmap", dir);
	gmap_fd = make_ghost(path, GMAP_LEN, 0600);
	gmap_sh = mmap(NULL, GMAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, gmap_fd, 0);
	gmap_pr = mmap(NULL, GMAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, gmap_fd, 0);
	if (gmap_sh == MAP_FAILED || gmap_pr == MAP_FAILED)
		die("mmap gmap");
	/* Through the shared mapping only: the file has it in its page cache. */
	memset(gmap_sh + 8192, 0x5a, 100);
	gmap_pr[4096 + 10] = 0xa5; /* page 1 copied on write */
	if (unlink(path) < 0)
		die("unlink gmap");

	snprintf(path, sizeof(path), "%s/gonly", dir);
	fd = make_ghost(path, 2 * 4096, 0600);
	gonly_rw = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	gonly_ro = mmap(NULL, 2 * 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (gonly_rw == MAP_FAILED || gonly_ro == MAP_FAILED)
		die("mmap gonly");
	gonly_rw[4096 + 1] = 0x77;
	if (close(fd) < 0 || unlink(path) < 0)
		die("unlink gonly");
}

/*
 * "bump": change the deleted files through their mappings after a dump
 * (a delta must carry it): generation @gen at gmap byte 8300 (shared),
 * gmap's private page 2 byte 300 (copied on write now), gonly byte 500.
 */
static unsigned char gen;

static void bump(void)
{
	gen++;
	gmap_sh[8300] = gen;
	gmap_pr[8192 + 300] = gen;
	gonly_rw[500] = gen;
}

static void check_ghost_map(void)
{
	char want[4300];
	unsigned char b[100], x = 0;
	struct stat st;

	if (gmap_sh[8300] != (gen ? gen : pat(8300, 3)) ||
	    gmap_pr[8192 + 300] != (gen ? gen : pat(8192 + 300, 3)) ||
	    gonly_ro[500] != (gen ? gen : pat(500, 3)))
		bad("the changes of generation %u are not all there", gen);

	snprintf(want, sizeof(want), "%s/gmap (deleted)", dir);
	if (fstat(gmap_fd, &st) < 0 || st.st_size != GMAP_LEN || st.st_nlink != 0)
		bad("fd %d is not a deleted file of %d bytes", gmap_fd, GMAP_LEN);
	check_link(gmap_fd, want);
	check_mapped(gmap_sh, st.st_ino, want);
	check_mapped(gmap_pr, st.st_ino, want);
	/* The write through the shared mapping is the file's (the blob has it). */
	if (pread(gmap_fd, b, sizeof(b), 8192) != (ssize_t)sizeof(b) || b[0] != 0x5a || b[99] != 0x5a)
		bad("the file does not hold what the shared mapping wrote");
	if (gmap_sh[8192 + 50] != 0x5a || gmap_sh[0] != pat(0, 3) || gmap_sh[4097] != pat(4097, 3))
		bad("the shared mapping does not show the file");
	/* One object: through the mapping, read through the fd, and back. */
	gmap_sh[5] ^= 0xff;
	if (pread(gmap_fd, &x, 1, 5) != 1 || x != (unsigned char)(pat(5, 3) ^ 0xff))
		bad("a write through the shared mapping is not read through the fd");
	gmap_sh[5] ^= 0xff;
	x = (unsigned char)~gmap_sh[6];
	if (pwrite(gmap_fd, &x, 1, 6) != 1 || gmap_sh[6] != x)
		bad("a write through the fd is not seen in the shared mapping");
	x = (unsigned char)~x;
	if (pwrite(gmap_fd, &x, 1, 6) != 1)
		bad("pwrite: %s", strerror(errno));
	/* Private: its own copy of page 1, the file's pages elsewhere. */
	if (gmap_pr[4096 + 10] != 0xa5 || gmap_pr[4096 + 11] != pat(4096 + 11, 3))
		bad("the page copied on write lost its contents");
	if (gmap_pr[8192 + 50] != 0x5a || gmap_pr[7] != pat(7, 3))
		bad("the private mapping does not show the file");
	x = 0x3c;
	if (pwrite(gmap_fd, &x, 1, 100) != 1 || gmap_pr[100] != 0x3c)
		bad("a page of the private mapping not copied on write does not follow the file");
	x = pat(100, 3);
	if (pwrite(gmap_fd, &x, 1, 100) != 1)
		bad("pwrite: %s", strerror(errno));
	report("ghost-map");

	snprintf(want, sizeof(want), "%s/gonly (deleted)", dir);
	{
		char name[4400];
		ino_t ino = mapped_ino(gonly_rw, name, sizeof(name));

		if (!ino)
			bad("no inode for the mapping at %p", (void *)gonly_rw);
		check_mapped(gonly_rw, ino, want);
		check_mapped(gonly_ro, ino, want);
	}
	if (gonly_ro[4097] != 0x77 || gonly_ro[4098] != pat(4098, 3) || gonly_rw[0] != pat(0, 3))
		bad("the mappings do not show the file's contents");
	gonly_rw[3] ^= 0xff;
	if (gonly_ro[3] != (unsigned char)(pat(3, 3) ^ 0xff))
		bad("the two mappings are not one file any more");
	gonly_rw[3] ^= 0xff;
	report("ghost-maponly");
}

static void setup_cwd(void)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/cwd", dir);
	if (mkdir(path, 0700) < 0 || chdir(path) < 0 || rmdir(path) < 0)
		die("cwd");
}

static void check_cwd(void)
{
	char want[4300], got[4300];
	struct stat st;
	ssize_t n = readlink("/proc/self/cwd", got, sizeof(got) - 1);

	snprintf(want, sizeof(want), "%s/cwd (deleted)", dir);
	if (n < 0)
		bad("readlink cwd: %s", strerror(errno));
	else if ((got[n] = '\0', strcmp(got, want)))
		bad("cwd is '%s', not '%s'", got, want);
	if (stat(".", &st) < 0 || !S_ISDIR(st.st_mode) || st.st_nlink != 0)
		bad("'.' is not a deleted directory");
	if (getcwd(got, sizeof(got)) || errno != ENOENT)
		bad("getcwd did not fail with ENOENT");
	report("cwd");
}

static void setup_proc(void)
{
	char p[64], b[PROC_POS];

	proc_status = open("/proc/self/status", O_RDONLY);
	snprintf(p, sizeof(p), "/proc/%d/stat", getpid());
	proc_stat = open(p, O_RDONLY);
	if (proc_status < 0 || proc_stat < 0 || read(proc_status, b, PROC_POS) != PROC_POS)
		die("/proc");
}

static void check_proc(void)
{
	char want[64], b[8192], pid[32];
	ssize_t n;

	snprintf(want, sizeof(want), "/proc/%d/status", getpid());
	check_link(proc_status, want);
	check_pos(proc_status, PROC_POS);
	n = pread(proc_status, b, sizeof(b) - 1, 0);
	snprintf(pid, sizeof(pid), "\nPid:\t%d\n", getpid());
	if (n <= 0 || (b[n] = '\0', !strstr(b, pid)))
		bad("/proc/self/status does not say Pid %d", getpid());
	snprintf(want, sizeof(want), "/proc/%d/stat", getpid());
	check_link(proc_stat, want);
	check_pos(proc_stat, 0);
	n = pread(proc_stat, b, sizeof(b) - 1, 0);
	snprintf(pid, sizeof(pid), "%d (", getpid());
	if (n <= 0 || strncmp(b, pid, strlen(pid)))
		bad("/proc/PID/stat does not start with '%s'", pid);
	report("proc");
}

static void check_big(void)
{
	struct stat st;

	if (fstat(ghost, &st) < 0 || (uint64_t)st.st_size != big_size || st.st_nlink)
		bad("not a deleted file of %llu bytes", (unsigned long long)big_size);
	check_pos(ghost, GHOST_POS);
	report("ghost-big");
}

/* ---- a deleted executable ---- */

/* Run from DIR/exe, a copy of this program, and remove it: a deleted executable. */
static void exec_copy(char **argv)
{
	const char *done = getenv("FID_FILES_EXE");
	char path[4200], buf[65536];
	int in, out;
	ssize_t n;

	if (done) {
		if (unlink(done) < 0)
			die("unlink exe");
		return;
	}
	snprintf(path, sizeof(path), "%s/exe", dir);
	in = open("/proc/self/exe", O_RDONLY);
	out = open(path, O_WRONLY | O_CREAT | O_EXCL, 0755);
	if (in < 0 || out < 0)
		die("exe copy");
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			die("exe write");
	if (n < 0 || close(out) < 0 || setenv("FID_FILES_EXE", path, 1) < 0)
		die("exe copy");
	close(in);
	execv(path, argv);
	die("execv");
}

static void check_exe(void)
{
	char want[4300], got[4300], name[4400];
	ssize_t n = readlink("/proc/self/exe", got, sizeof(got) - 1);
	struct stat st;
	ino_t ino;

	snprintf(want, sizeof(want), "%s/exe (deleted)", dir);
	if (n < 0)
		bad("readlink /proc/self/exe: %s", strerror(errno));
	else if ((got[n] = '\0', strcmp(got, want)))
		bad("/proc/self/exe is '%s', not '%s'", got, want);
	ino = mapped_ino((const void *)check_exe, name, sizeof(name));
	if (stat("/proc/self/exe", &st) < 0 || st.st_ino != ino)
		bad("/proc/self/exe is not the file its code is mapped from ('%s')", name);
	report("exe");
}

static unsigned char *bigmap;

static void check_bigmap(void)
{
	char name[4400], want[4300];

	snprintf(want, sizeof(want), "%s/big (deleted)", dir);
	if (!mapped_ino(bigmap, name, sizeof(name)) || strcmp(name, want))
		bad("%p maps '%s', not '%s'", (void *)bigmap, name, want);
	if (bigmap[0] != 0x42 || bigmap[big_size - 1] != pat(big_size - 1, 3))
		bad("the mapping does not hold the file's contents");
	report("ghost-big");
}

int main(int argc, char **argv)
{
	char line[64];
	bool big = argc == 4 && !strcmp(argv[1], "big");
	bool bigm = argc == 4 && !strcmp(argv[1], "bigmap");

	if (argc != 2 && !big && !bigm) {
		fprintf(stderr, "usage: fid_files DIR | fid_files big|bigmap DIR SIZE\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[argc == 2 ? 1 : 2]);
	if (big || bigm) {
		char path[4200];

		big_size = strtoull(argv[3], NULL, 0);
		snprintf(path, sizeof(path), "%s/big", dir);
		ghost = make_ghost(path, big_size, 0600);
		if (bigm) {
			bigmap = mmap(NULL, big_size, PROT_READ | PROT_WRITE, MAP_SHARED, ghost, 0);
			if (bigmap == MAP_FAILED || close(ghost) < 0)
				die("bigmap");
			bigmap[0] = 0x42;
		}
		if ((!bigm && lseek(ghost, GHOST_POS, SEEK_SET) < 0) || unlink(path) < 0)
			die("big");
	} else {
		exec_copy(argv);
		setup_memfd();
		setup_memfd_mapped();
		setup_ghost();
		setup_ghost_map();
		setup_proc();
		setup_cwd(); /* last: the paths above are absolute anyway */
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strcmp(line, "bump\n") && !big && !bigm) {
			bump();
			printf("bumped\n");
			fflush(stdout);
			continue;
		}
		if (strcmp(line, "check\n"))
			break;
		if (big) {
			check_big();
		} else if (bigm) {
			check_bigmap();
		} else {
			check_memfd();
			check_memfd_mapped();
			check_ghost();
			check_ghost_map();
			check_exe();
			check_cwd();
			check_proc();
		}
		printf("done\n");
		fflush(stdout);
	}
	return 0;
}
