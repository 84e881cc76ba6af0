/* SPDX-License-Identifier: MIT */
/*
 * A process with the odd cases lib/proc must parse: a mapped file whose name
 * has spaces and a newline, a mapped deleted file, a memfd, shared anonymous
 * memory, a named anonymous mapping, an fd at a known position, a pipe, a
 * socket, an eventfd, and a second thread. Prints "ready" and waits.
 * Usage: proc_zoo DIR   (DIR receives the odd files)
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static void *thread_fn(void *arg)
{
	for (;;)
		pause();
	return arg;
}

static void *map_file(const char *path, int flags)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	void *m;

	if (fd < 0 || ftruncate(fd, 8192) < 0) {
		perror(path);
		exit(1);
	}
	m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	close(fd);
	return m;
}

int main(int argc, char **argv)
{
	char odd[4096], gone[4096], posfile[4096];
	pthread_t t;
	int sv[2], p[2], fd;
	void *named;

	if (argc != 2) {
		fprintf(stderr, "usage: proc_zoo DIR\n");
		return 2;
	}
	snprintf(odd, sizeof(odd), "%s/file with spaces\nand newline", argv[1]);
	snprintf(gone, sizeof(gone), "%s/deleted file", argv[1]);
	snprintf(posfile, sizeof(posfile), "%s/positioned", argv[1]);
	*(char *)map_file(odd, MAP_PRIVATE) = 1;
	map_file(gone, MAP_SHARED);
	unlink(gone);

	fd = memfd_create("zoo-memfd", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 4096) < 0 ||
	    mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
		return 1;
	*(char *)mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0) = 1;
	named = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, named, 4096, "zoo name");

	fd = open(posfile, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (fd < 0 || write(fd, odd, 1234) != 1234)
		return 1;
	if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || eventfd(7, 0) < 0)
		return 1;
	pthread_create(&t, NULL, thread_fn, NULL);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
