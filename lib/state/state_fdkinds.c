/* SPDX-License-Identifier: MIT */
/*
 * The restore policy for the fd kinds made of anonymous inodes that restore
 * recreates (eventfd, signalfd, timerfd, inotify, epoll), and their memory.
 */
#include <stdlib.h>
#include <time.h>

#include "state/state_fdkinds.h"

void ckpt_state_fdkind_done(struct ckpt_state_fdkind *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->nr_watches; i++)
		free(k->watches[i].path);
	free(k->watches);
	free(k->targets);
	k->watches = NULL;
	k->targets = NULL;
	k->nr_watches = k->nr_targets = 0;
}

/* Clocks timerfd_create(2) takes. */
static bool timerfd_clock(int clockid)
{
	return clockid == CLOCK_REALTIME || clockid == CLOCK_MONOTONIC || clockid == CLOCK_BOOTTIME ||
	       clockid == CLOCK_REALTIME_ALARM || clockid == CLOCK_BOOTTIME_ALARM;
}

const char *state_fdkind_problem(const struct ckpt_state_fd *f)
{
	const struct ckpt_state_fdkind *k = &f->k;

	if (f->kind == CKPT_STATE_FD_EVENTFD)
		return NULL;
	if (!k->known)
		switch (f->kind) {
		case CKPT_STATE_FD_SIGNALFD:
			return "a signalfd whose mask is not in the checkpoint (made by an older ckpt)";
		case CKPT_STATE_FD_TIMERFD:
			return "a timerfd whose timer is not in the checkpoint (made by an older ckpt)";
		case CKPT_STATE_FD_INOTIFY:
			return "an inotify instance whose watches are not in the checkpoint (made by an "
			       "older ckpt)";
		default:
			return "an epoll instance whose registrations are not in the checkpoint (made by "
			       "an older ckpt)";
		}
	switch (f->kind) {
	case CKPT_STATE_FD_TIMERFD:
		if (!timerfd_clock(k->timer.clockid))
			return "a timerfd of a clock timerfd_create(2) does not take";
		return NULL;
	case CKPT_STATE_FD_INOTIFY:
		for (size_t i = 0; i < k->nr_watches; i++)
			if (!k->watches[i].handle_bytes)
				return "an inotify watch on a file system that gives no file handle "
				       "(restore finds the watched inode by its handle)";
		return NULL;
	default:
		/*
		 * EPOLL: whether every registered file is one of the process's fds
		 * needs the process (kcmp): collect records a refusal, which stays.
		 */
		return NULL;
	}
}
