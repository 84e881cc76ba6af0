/* SPDX-License-Identifier: MIT */
/*
 * A process tree for the tree tests: a parent and its children sharing
 * what fork shares, set up before the dump, checked by the processes
 * themselves after restore.
 *
 *   tree FILE     (FILE: a scratch file, opened before the forks)
 *
 * Before "ready": shared anonymous memory every child touches; FILE open
 * once, its offset shared by all (each writes a line); a pipe to worker A
 * with 3000 bytes in flight; worker B with a pipe back; a zombie Z that
 * exited with status 7; worker C leading its own process group; worker D
 * leading its own session; worker E holding the other end of a unix socket
 * pair with the parent (bytes it sent before the dump wait unread) and a
 * TCP listener the parent made before forking it. Each live process also
 * fills private memory (OWN_PAGES pages, a pattern of its own name) that it
 * checks after restore: a lazy restore that served one process another's
 * pages fails it. On "check" (stdin) the
 * parent lets the workers go and prints one line per item ("NAME ok" or
 * "NAME FAIL: why"), then "done".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLIGHT 3000
#define ADDS 100000
#define OWN_PAGES 256

struct shared {
	atomic_long counter;
	atomic_int touched;
};

static struct shared *sh;
static int go[2];   /* parent -> workers: one byte each */
static int toa[2];  /* parent -> A: bytes in flight */
static int fromb[2];/* B -> parent */
static int filefd;
static pid_t parent;
static int sp[2];   /* parent <-> E: a unix socket pair */
static int lfd;     /* a TCP listener, E's too */

static unsigned char *own;

/* OWN_PAGES pages of private memory, a pattern of @name (every page differs). */
static void own_fill(char name)
{
	own = mmap(NULL, OWN_PAGES * 4096UL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (own == MAP_FAILED)
		_exit(21);
	for (size_t i = 0; i < OWN_PAGES * 4096UL; i++)
		own[i] = (unsigned char)(name * 31 + i / 4096 * 7 + i % 251);
}

/* Is the private memory still this process's own? */
static int own_ok(char name)
{
	for (size_t i = 0; i < OWN_PAGES * 4096UL; i++)
		if (own[i] != (unsigned char)(name * 31 + i / 4096 * 7 + i % 251))
			return 0;
	return 1;
}

static void wait_go(void)
{
	char c;

	while (read(go[0], &c, 1) < 0 && errno == EINTR)
		;
}

static void add(void)
{
	for (int i = 0; i < ADDS; i++)
		atomic_fetch_add(&sh->counter, 1);
}

/* Each worker writes its line before the dump: the shared offset moves. */
static void hello(char name)
{
	char line[3] = { name, '\n', 0 };

	own_fill(name);
	if (write(filefd, line, 2) != 2)
		_exit(20);
	atomic_fetch_add(&sh->touched, 1);
}

static int worker_a(void)
{
	char buf[FLIGHT];
	size_t got = 0;

	hello('A');
	wait_go();
	while (got < FLIGHT) {
		ssize_t n = read(toa[0], buf + got, FLIGHT - got);

		if (n <= 0)
			return 2;
		got += (size_t)n;
	}
	for (size_t i = 0; i < FLIGHT; i++)
		if (buf[i] != (char)('a' + i % 26))
			return 3;
	add();
	if (!own_ok('A'))
		return 5;
	return getppid() == parent ? 0 : 4;
}

static int worker_b(void)
{
	hello('B');
	wait_go();
	add();
	if (write(fromb[1], "B-result 12345", 14) != 14)
		return 2;
	if (!own_ok('B'))
		return 5;
	return getppid() == parent ? 0 : 4;
}

static int worker_c(void)
{
	hello('C');
	wait_go();
	if (getpgid(0) != getpid())
		return 2;
	if (getsid(0) != getsid(parent))
		return 3;
	if (!own_ok('C'))
		return 5;
	return getppid() == parent ? 0 : 4;
}

static int worker_d(void)
{
	hello('D');
	wait_go();
	if (getsid(0) != getpid())
		return 2;
	if (!own_ok('D'))
		return 5;
	return getppid() == parent ? 0 : 4;
}

/* E: "early" sent before the dump (waits unread), "late" after; accepts one connection on the listener. */
static int worker_e(void)
{
	int c;

	hello('E');
	if (write(sp[1], "early", 5) != 5)
		return 2;
	wait_go();
	if (write(sp[1], "late", 4) != 4)
		return 3;
	c = accept(lfd, NULL, NULL);
	if (c < 0 || write(c, "E", 1) != 1)
		return 4;
	close(c);
	return getppid() == parent ? 0 : 5;
}

static pid_t spawn(int (*fn)(void), int how)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (how == 1)
			setpgid(0, 0);
		else if (how == 2)
			setsid();
		_exit(fn());
	}
	return pid;
}

static void item(const char *name, int ok, const char *fmt, long a, long b)
{
	if (ok) {
		printf("%s ok\n", name);
	} else {
		printf("%s FAIL: ", name);
		printf(fmt, a, b);
		printf("\n");
	}
}

static void check_child(const char *name, pid_t pid)
{
	int st = -1;
	pid_t w = waitpid(pid, &st, 0);

	item(name, w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "waitpid %ld, status %#lx", (long)w,
	     (long)st);
}

int main(int argc, char **argv)
{
	pid_t a, b, c, d, e, z;
	char line[64], buf[32];
	int st;

	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	parent = getpid();
	own_fill('P');
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	filefd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		int one = 1;

		/* As servers do: a restore of the same checkpoint again finds the port in TIME_WAIT. */
		if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4) < 0)
			lfd = -1;
	}
	if (sh == MAP_FAILED || filefd < 0 || pipe(go) < 0 || pipe(toa) < 0 || pipe(fromb) < 0 || lfd < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		printf("FAIL setup: %s\n", strerror(errno));
		return 1;
	}
	z = fork();
	if (z == 0)
		_exit(7);
	a = spawn(worker_a, 0);
	b = spawn(worker_b, 0);
	c = spawn(worker_c, 1);
	d = spawn(worker_d, 2);
	e = spawn(worker_e, 0);
	for (int i = 0; i < FLIGHT; i++) {
		char ch = (char)('a' + i % 26);

		if (write(toa[1], &ch, 1) != 1)
			return 1;
	}
	/* Every worker said hello, and the zombie is one. */
	while (atomic_load(&sh->touched) < 5)
		usleep(1000);
	{
		siginfo_t si = { 0 };

		while (waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
			;
	}
	printf("pid %d\n", (int)parent);
	printf("ready\n");
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "check", 5))
		return 1;
	for (int i = 0; i < 5; i++)
		if (write(go[1], "g", 1) != 1)
			return 1;
	{
		/* The listener E shares: connect, E accepts and says so. */
		struct sockaddr_in a;
		socklen_t al = sizeof(a);
		int c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		char ch = 0;

		item("shared_listener",
		     getsockname(lfd, (struct sockaddr *)&a, &al) == 0 && connect(c2, (struct sockaddr *)&a, al) == 0 &&
			     read(c2, &ch, 1) == 1 && ch == 'E',
		     "connect/read: errno %ld%.0ld", (long)errno, 0);
		close(c2);
	}
	{
		char got[16] = "";
		size_t n = 0;

		while (n < 9) {
			ssize_t k = read(sp[0], got + n, 9 - n);

			if (k <= 0)
				break;
			n += (size_t)k;
		}
		item("socket_pair", n == 9 && !memcmp(got, "earlylate", 9), "read %ld bytes%.0ld", (long)n, 0);
	}
	check_child("worker_a", a);
	check_child("worker_b", b);
	check_child("worker_c", c);
	check_child("worker_d", d);
	check_child("worker_e", e);
	memset(buf, 0, sizeof(buf));
	item("pipe_back", read(fromb[0], buf, 14) == 14 && !strcmp(buf, "B-result 12345"), "read '%.0ld%.0ld'", 0,
	     0);
	item("private_memory", own_ok('P'), "the parent's pages differ%.0ld%.0ld", 0, 0);
	item("shared_memory", atomic_load(&sh->counter) == 2L * ADDS, "counter %ld, want %ld",
	     atomic_load(&sh->counter), 2L * ADDS);
	/* Five workers wrote 2 bytes each at the shared offset; the parent's view moved with them. */
	item("shared_offset", lseek(filefd, 0, SEEK_CUR) == 10, "offset %ld, want %ld", (long)lseek(filefd, 0, SEEK_CUR),
	     10);
	st = -1;
	item("zombie", waitpid(z, &st, WNOHANG) == z && WIFEXITED(st) && WEXITSTATUS(st) == 7,
	     "status %#lx%.0ld", (long)st, 0);
	item("no_children_left", waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "errno %ld%.0ld", (long)errno, 0);
	printf("done\n");
	return 0;
}
