/* SPDX-License-Identifier: MIT */
#ifndef CKPT_PROC_INTERNAL_H
#define CKPT_PROC_INTERNAL_H

#include <ckpt/proc.h>

struct ckpt_proc {
	int dirfd;       /* ROOT/PID or ROOT/PID/task/TID */
	pid_t pid;
	char *root;      /* the root it was opened under */
};

#endif
