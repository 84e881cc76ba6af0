/* SPDX-License-Identifier: MIT */
/*
 * lib/dump: the dump pipeline. This part collects the description of a
 * seized process (struct ckpt_state of ckpt/state.h): what only the target
 * can tell comes from remote system calls in query form (rt_sigaction with
 * no new action, sigaltstack with no new stack, getitimer, brk(0),
 * prctl(PR_GET_*)), everything else is read from outside (/proc through
 * lib/proc, prlimit, get_robust_list, PTRACE_PEEKSIGINFO, sock_diag through
 * lib/nl). Collection changes nothing in the target; the scratch memory it
 * uses is lib/inject's, unmapped at release and left out of the layout.
 */
#ifndef CKPT_DUMP_H
#define CKPT_DUMP_H

#include <stddef.h>

#include <ckpt/util.h>

struct ckpt_inject;
struct ckpt_state;

enum {
	/* Do not ask sock_diag about sockets (no netlink): only their inode is known. */
	CKPT_COLLECT_NO_SOCK_DIAG = 1u << 0,
};

struct ckpt_dump_collect_opts {
	unsigned int flags;      /* CKPT_COLLECT_* */
	/*
	 * Descriptors of the target that belong to ckpt, not to the
	 * application (the userfaultfd lib/track parks there): not recorded.
	 */
	const int *ignore_fds;
	size_t nr_ignore_fds;
};

/*
 * Describe the process seized by @inj (@opts NULL: defaults): every live
 * thread (zombie threads are left out), the process, its memory layout and
 * its file descriptors. Errors are logged once, naming the pid or tid and
 * the item: -ESRCH when the process died meanwhile, -EPERM when something is
 * not readable, -errno of a failed query otherwise.
 */
int ckpt_dump_collect(struct ckpt_inject *inj, const struct ckpt_dump_collect_opts *opts,
		      struct ckpt_state **ret) __must_check;

#endif
