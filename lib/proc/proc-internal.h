/* SPDX-License-Identifier: MIT */
#ifndef CKPT_PROC_INTERNAL_H
#define CKPT_PROC_INTERNAL_H

#include <ckpt/proc.h>

struct ckpt_proc {
	int dirfd;       /* ROOT/PID or ROOT/PID/task/TID */
	pid_t pid;
	char *root;      /* the root it was opened under */
};

/* map_files/START-END without the capability it needs: another name of the same object (mapfile.c). */
struct stat;
int proc_map_file_alt(const struct ckpt_proc *p, uint64_t start, uint64_t end, char *ret_rel, size_t len,
		      struct stat *ret_st);

#endif
