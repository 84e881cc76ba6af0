/* SPDX-License-Identifier: MIT */
/*
 * Process groups and sessions a tree can have that restore must make in
 * the right order, or refuse.
 *
 *   treesess left-group   the root leads its session; child G makes its own
 *                         group, forks M into it, then joins the root's
 *                         group: G's group lives on without its leader.
 *   treesess reparented   the root is a subreaper; child Q calls setsid,
 *                         forks D and exits unreaped (a zombie): D, now the
 *                         root's child, is in Q's session, neither its own
 *                         nor its parent's (restore cannot make that).
 * Prints "pids A B C" (the root and its two others) and "ready", then
 * waits.
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int p[2];
	char b[32] = "";
	pid_t a;

	if (argc < 2 || pipe(p) < 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "left-group")) {
		setsid();
		a = fork();
		if (a == 0) {
			setpgid(0, 0);
			pid_t m = fork();

			if (m == 0) {
				for (;;)
					pause();
			}
			setpgid(0, getppid()); /* G leaves its group; M stays in it */
			snprintf(b, sizeof(b), "%d\n", m);
			if (write(p[1], b, strlen(b)) < 0)
				_exit(1);
			for (;;)
				pause();
		}
	} else if (!strcmp(argv[1], "reparented")) {
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		a = fork();
		if (a == 0) {
			setsid();
			pid_t d = fork();

			if (d == 0) {
				snprintf(b, sizeof(b), "%d\n", getpid());
				if (write(p[1], b, strlen(b)) < 0)
					_exit(1);
				for (;;)
					pause();
			}
			_exit(7); /* a zombie: the root never waits */
		}
	} else {
		return 2;
	}
	if (read(p[0], b, sizeof(b) - 1) <= 0)
		return 1;
	usleep(200000);
	printf("pids %d %d %s", getpid(), a, b);
	printf("ready\n");
	for (;;)
		pause();
}
