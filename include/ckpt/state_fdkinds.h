/* SPDX-License-Identifier: MIT */
/*
 * The kind-specific part of a file descriptor of files.json for the fd
 * kinds made of anonymous inodes that restore recreates: signalfd, timerfd,
 * inotify and epoll (eventfd's count lives in struct ckpt_state_fd itself).
 * Included by <ckpt/state.h>; docs/STATE.md describes the JSON.
 */
#ifndef CKPT_STATE_FDKINDS_H
#define CKPT_STATE_FDKINDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKPT_STATE_FHANDLE_MAX 128   /* MAX_HANDLE_SZ */

/* A timerfd: what fdinfo says, the expiration brought up to date. */
struct ckpt_state_timerfd {
	int clockid;                         /* CLOCK_* */
	uint64_t ticks;                      /* expirations not yet read */
	int settime_flags;                   /* TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET */
	int64_t value_sec, value_nsec;       /* time left to the next expiration; 0: disarmed */
	int64_t interval_sec, interval_nsec; /* the period; 0: one shot */
};

/* One watch of an inotify instance (a line "inotify wd:..." of fdinfo). */
struct ckpt_state_inotify_watch {
	int wd;
	uint64_t ino;
	unsigned int dev_major, dev_minor;   /* of the watched inode's file system */
	uint32_t mask;                       /* IN_* events, IN_EXCL_UNLINK, IN_ONESHOT */
	uint32_t ignored_mask;
	int handle_type;                     /* the file handle (open_by_handle_at) */
	uint32_t handle_bytes;               /* 0: the file system gives none */
	unsigned char handle[CKPT_STATE_FHANDLE_MAX];
	char *path;                          /* where ckpt found it at the dump, or NULL */
};

/* One registration of an epoll instance (a line "tfd: ..." of fdinfo). */
struct ckpt_state_epoll_target {
	int tfd;                             /* the fd number it was registered with */
	uint32_t events;                     /* EPOLL* of the registration */
	uint64_t data;                       /* epoll_data, as given */
	uint64_t pos;                        /* the file position of the target at the dump */
	uint64_t ino;                        /* the target's inode and device (kernel dev_t) */
	uint32_t sdev;
};

struct ckpt_state_fdkind {
	bool known;                          /* described: false in checkpoints made before */
	uint64_t sigmask;                    /* SIGNALFD: bit n-1 = signal n */
	struct ckpt_state_timerfd timer;     /* TIMERFD */
	size_t nr_watches;                   /* INOTIFY: ascending wd */
	struct ckpt_state_inotify_watch *watches;
	size_t nr_targets;                   /* EPOLL: in fdinfo order */
	struct ckpt_state_epoll_target *targets;
};

/* Free what @k holds (not @k). */
void ckpt_state_fdkind_done(struct ckpt_state_fdkind *k);

#endif
