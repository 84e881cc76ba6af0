/* SPDX-License-Identifier: MIT */
/* lib/state's part for the fd kinds of state_fdkinds.c and json_fdkinds.c. */
#ifndef CKPT_STATE_FDKINDS_INTERNAL_H
#define CKPT_STATE_FDKINDS_INTERNAL_H

#include <json-c/json.h>

#include <ckpt/state.h>

#include "state/state-internal.h"

/* Why fd @f of kind eventfd, signalfd, timerfd, inotify or epoll cannot be restored, or NULL. */
const char *state_fdkind_problem(const struct ckpt_state_fd *f);
/* The kind's object ("signalfd", "timerfd", "inotify", "epoll") into @o. */
void fdkind_to_json(struct jw *w, json_object *o, const struct ckpt_state_fd *f);
/* Read it back: optional (older checkpoints), only for its kind. */
int fdkind_from_json(struct jr *r, json_object *o, struct ckpt_state_fd *f);

#endif
