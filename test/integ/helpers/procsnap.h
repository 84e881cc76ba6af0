/* SPDX-License-Identifier: MIT */
/*
 * What a process can observe about itself through /proc, as a sorted list
 * of "key value" lines, for a comparison of a process with the one restored
 * from its checkpoint (the memory is memsnap.h's job). Per thread: its
 * status (name, signal masks and pending sets, credentials, capabilities,
 * no_new_privs, seccomp), scheduling policy, priority, nice and timer
 * slack. Per process: the mappings with their VmFlags, the limits, every fd
 * (what it points at, its flags and position), cwd, root, exe and
 * personality.
 *
 * What a restore cannot keep, or need not, is left out and listed in
 * procsnap.c: counters (context switches, RSS), the state letter, the
 * tracer, the parent, CPU affinity, the session and process group (the
 * process tree's issue), the kernel's own flags of a mapping (accounting,
 * soft-dirty, userfaultfd registration).
 */
#ifndef CKPT_TEST_PROCSNAP_H
#define CKPT_TEST_PROCSNAP_H

#include <stddef.h>
#include <sys/types.h>

struct procsnap {
	char **lines; /* "key value", sorted */
	size_t nr;
};

/* Read it all; -errno (the process is gone, or a file could not be read). */
int procsnap_take(pid_t pid, struct procsnap *s);
void procsnap_free(struct procsnap *s);
/* Drop the lines that hold @what (what the test knows differs, and why). */
void procsnap_drop(struct procsnap *s, const char *what);
/*
 * Keys whose values differ, or that are in one only; the first of them
 * described in @report.
 */
size_t procsnap_diff(const struct procsnap *a, const struct procsnap *b, char *report, size_t len);

#endif
