/* SPDX-License-Identifier: MIT */
/* lib/state's part for sockets: state_sockets.c and json_sockets.c. */
#ifndef CKPT_STATE_SOCKETS_INTERNAL_H
#define CKPT_STATE_SOCKETS_INTERNAL_H

#include <json-c/json.h>

#include <ckpt/state.h>

#include "state/state-internal.h"

/* Why socket fd @f cannot be restored, or NULL. */
const char *state_socket_problem(const struct ckpt_state_fd *f);
/* The "socket" object of fd @f into @o. */
void socket_to_json(struct jw *w, json_object *o, const struct ckpt_state_socket *s);
/* Read it back; what images before sockets were saved lack is optional (known = false). */
int socket_from_json(struct jr *r, json_object *o, struct ckpt_state_socket *s);

#endif
