/* SPDX-License-Identifier: MIT */
/* The fd kinds of fdkinds.c: eventfd, signalfd, timerfd, inotify, epoll. */
#ifndef CKPT_RESTORE_FDKINDS_H
#define CKPT_RESTORE_FDKINDS_H

#include "restore/restore-internal.h"

/* Is @kind one of them? */
bool rst_fdkind_known(enum ckpt_state_fd_kind kind);
/* Make fd @f in the child, at its number, with its flags; logs its errors. */
int rst_fdkind_fd(struct rst *r, const struct ckpt_state_fd *f) __must_check;
/* Once every fd exists: the registrations of every epoll fd. */
int rst_fdkinds_finish(struct rst *r) __must_check;

#endif
