/* SPDX-License-Identifier: MIT */
/* The fd kinds of collect_fdkinds.c: signalfd, timerfd, inotify, epoll. */
#ifndef CKPT_COLLECT_FDKINDS_H
#define CKPT_COLLECT_FDKINDS_H

#include "dump/collect-internal.h"

/* Fill @f->k from the fdinfo of @in (its kind already set); logs its errors. */
int collect_fdkind(struct collect *c, const struct ckpt_fd_info *in, struct ckpt_state_fd *f);
/*
 * Once every fd is described: each registration of an epoll instance must
 * be a file the process holds at the number it was registered with
 * (kcmp KCMP_EPOLL_TFD), or the epoll fd is refused, saying why.
 */
int collect_fdkinds_finish(struct collect *c);

#endif
