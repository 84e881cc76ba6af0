/* SPDX-License-Identifier: MIT */
/*
 * System V shared memory in a process tree, as postgres has it: a segment
 * A with a key, attached by a parent and (through fork) its child, and a
 * segment B removed (IPC_RMID) while still attached.
 *
 *   sysvshm     prints "pid P", "shmid A B", "ready"; on "check" (stdin):
 *               the child adds 1000 to a counter in A and exits; then one
 *               line per item ("NAME ok" or "NAME FAIL: why"), "done".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

struct seg {
	char hello[16];
	volatile long counter;
};

static void item(const char *name, int ok, const char *why)
{
	if (ok)
		printf("%s ok\n", name);
	else
		printf("%s FAIL: %s\n", name, why);
}

int main(void)
{
	key_t key = (key_t)(0x5c000000 | (getpid() & 0xffff));
	int aid, bid, go[2];
	struct seg *a;
	char *b, line[64], why[128];
	struct shmid_ds ds;
	pid_t kid;
	int st = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	aid = shmget(key, 3 * 4096, IPC_CREAT | IPC_EXCL | 0640);
	bid = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	if (aid < 0 || bid < 0 || pipe(go) < 0) {
		printf("FAIL setup: %s\n", strerror(errno));
		return 1;
	}
	a = shmat(aid, NULL, 0);
	b = shmat(bid, NULL, 0);
	if (a == (void *)-1 || b == (void *)-1) {
		printf("FAIL shmat: %s\n", strerror(errno));
		return 1;
	}
	strcpy(a->hello, "hello");
	strcpy(b, "bee");
	shmctl(bid, IPC_RMID, NULL); /* gone with the last detach */
	kid = fork();
	if (kid == 0) {
		char c;

		if (read(go[0], &c, 1) != 1)
			_exit(2);
		for (int i = 0; i < 1000; i++)
			a->counter++;
		_exit(strcmp(a->hello, "hello") ? 3 : 0);
	}
	printf("pid %d\nshmid %d %d\nready\n", getpid(), aid, bid);
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "check", 5))
		goto out;
	if (write(go[1], "g", 1) != 1)
		goto out;
	item("child", waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "its exit");
	snprintf(why, sizeof(why), "counter %ld", a->counter);
	item("shared", a->counter == 1000, why);
	item("contents", !strcmp(a->hello, "hello") && !strcmp(b, "bee"), "hello or bee lost");
	memset(&ds, 0, sizeof(ds));
	snprintf(why, sizeof(why), "IPC_STAT: %s, key %#x, size %zu", shmctl(aid, IPC_STAT, &ds) ? strerror(errno) : "ok",
		 (unsigned)ds.shm_perm.__key, (size_t)ds.shm_segsz);
	item("same_id", ds.shm_perm.__key == key && ds.shm_segsz == 3 * 4096 && (ds.shm_perm.mode & 0777) == 0640, why);
	memset(&ds, 0, sizeof(ds));
	item("removed_stays_removed", shmctl(bid, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_DEST),
	     "B is not marked removed");
	printf("done\n");
out:
	shmctl(aid, IPC_RMID, NULL);
	return 0;
}
