/* SPDX-License-Identifier: MIT */
/*
 * Target of the judge tests: a process that holds, by its argument, one
 * thing restore cannot recreate (or children), then prints "ready".
 *
 *   plain             nothing of the kind (the control)
 *   leader-exited     the main thread ends (pthread_exit); a second one serves
 *   ghost-big PATH    PATH created with 1 MiB + 1 byte, open, unlinked: over
 *                     the default --ghost-limit
 *   proc-other        /proc/1/stat open (another process's /proc)
 *   proc-cwd          chdir to /proc/self/fd
 *   deleted-dir DIR   mkdir DIR, open it, rmdir it (a deleted directory fd)
 *   child             a child that sleeps in pause() (prints "kid <pid>" first)
 *   zombie            a child that exited, never waited for (prints "kid <pid>" first)
 *   socket            a socket pair
 *   sysv-shm          a System V shared memory segment attached (removed at once)
 *   sysv-partial      a System V segment of two pages, one of them unmapped
 *   shared-deleted PATH  PATH created (1 MiB + 4 KiB), 2 pages mapped shared and
 *                     written, unlinked: over the default --ghost-limit
 *   seccomp           a seccomp filter that allows everything
 *
 * A heap buffer holds a pattern; each stdin line "c" checks it and prints
 * "alive <mode> ok" (or "alive <mode> BAD"), proving the process runs on
 * with its memory as it was. Anything else ends it.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_LEN (256 * 1024)

static unsigned char *buf;

static void fill(void)
{
	for (size_t i = 0; i < BUF_LEN; i++)
		buf[i] = (unsigned char)(i * 131 + 7);
}

static int check(void)
{
	for (size_t i = 0; i < BUF_LEN; i++)
		if (buf[i] != (unsigned char)(i * 131 + 7))
			return 0;
	return 1;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static const char *mode = "plain";

static pthread_t leader;
static int leader_gone; /* leader-exited: "ready" only once the main thread has ended */

static void *serve(void *arg)
{
	char line[64];

	(void)arg;
	if (leader_gone && pthread_join(leader, NULL))
		die("pthread_join of the main thread");
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (strcmp(line, "c\n"))
			break;
		printf("alive %s %s\n", mode, check() ? "ok" : "BAD");
		fflush(stdout);
	}
	exit(0);
}

int main(int argc, char **argv)
{
	pid_t kid = 0;

	if (argc > 1)
		mode = argv[1];

	buf = malloc(BUF_LEN);
	if (!buf)
		die("malloc");
	fill();
	if (!strcmp(mode, "leader-exited")) {
		pthread_t t;

		leader = pthread_self();
		leader_gone = 1;
		if (pthread_create(&t, NULL, serve, NULL))
			die("pthread_create");
		pthread_exit(NULL);
	} else if (!strcmp(mode, "ghost-big") && argc > 2) {
		int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0 || ftruncate(fd, (1 << 20) + 1) < 0 || pwrite(fd, "ghost\n", 6, 0) != 6 ||
		    unlink(argv[2]) < 0)
			die(argv[2]);
	} else if (!strcmp(mode, "proc-other")) {
		if (open("/proc/1/stat", O_RDONLY | O_CLOEXEC) < 0)
			die("/proc/1/stat");
	} else if (!strcmp(mode, "proc-cwd")) {
		if (chdir("/proc/self/fd") < 0)
			die("/proc/self/fd");
	} else if (!strcmp(mode, "deleted-dir") && argc > 2) {
		if (mkdir(argv[2], 0700) < 0 || open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC) < 0 ||
		    rmdir(argv[2]) < 0)
			die(argv[2]);
	} else if (!strcmp(mode, "child")) {
		kid = fork();
		if (kid < 0)
			die("fork");
		if (kid == 0) {
			for (;;)
				pause();
		}
	} else if (!strcmp(mode, "zombie")) {
		kid = fork();
		if (kid < 0)
			die("fork");
		if (kid == 0)
			_exit(0);
		usleep(100000); /* it has exited by now; never waited for */
	} else if (!strcmp(mode, "socket")) {
		/* An established TCP connection (fd 3, the client), which restore cannot make yet. */
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(a);
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (c < 0 || l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
		    getsockname(l, (struct sockaddr *)&a, &len) < 0 ||
		    connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 || accept4(l, NULL, NULL, SOCK_CLOEXEC) < 0)
			die("tcp connection");
	} else if (!strcmp(mode, "sysv-shm")) {
		int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
		char *p = id < 0 ? (char *)-1 : shmat(id, NULL, 0);

		if (p == (char *)-1)
			die("shmget/shmat");
		strcpy(p, "shared");
		shmctl(id, IPC_RMID, NULL); /* gone with the last detach */
	} else if (!strcmp(mode, "sysv-partial")) {
		int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
		char *p = id < 0 ? (char *)-1 : shmat(id, NULL, 0);

		if (p == (char *)-1 || munmap(p + 4096, 4096) < 0)
			die("shmget/shmat/munmap");
		shmctl(id, IPC_RMID, NULL);
	} else if (!strcmp(mode, "shared-deleted") && argc > 2) {
		int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		char *p;

		/* Over the default --ghost-limit (1 MiB): its contents cannot be saved. */
		if (fd < 0 || ftruncate(fd, (1 << 20) + 4096) < 0)
			die(argv[2]);
		p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			die("mmap");
		strcpy(p, "shared and deleted");
		close(fd);
		if (unlink(argv[2]) < 0)
			die(argv[2]);
	} else if (!strcmp(mode, "seccomp")) {
		struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
		struct sock_fprog prog = { .len = 1, .filter = allow };

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
			die("seccomp");
	} else if (strcmp(mode, "plain")) {
		fprintf(stderr, "judged: unknown mode '%s'\n", mode);
		return 2;
	}
	if (kid)
		printf("kid %d\n", (int)kid);
	serve(NULL);
}
