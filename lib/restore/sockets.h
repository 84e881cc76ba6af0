/* SPDX-License-Identifier: MIT */
/* Sockets (sockets.c). */
#ifndef CKPT_RESTORE_SOCKETS_H
#define CKPT_RESTORE_SOCKETS_H

#include "restore/restore-internal.h"

/*
 * Before the process exists: make every socket of the checkpoint in ckpt
 * (bound, listening, connected, options set, queues written again) into
 * r->local_fds, to be handed in at its number. Errors are logged, naming
 * the socket as ss(8) would; nothing is left bound on failure.
 */
int rst_sockets_prepare(struct rst *r) __must_check;
/*
 * A unix connection between fd @a of @ra and fd @b of @rb, two processes
 * of a tree: one pair made, each end named, its options set, its queue
 * written again and shut down as it was, into their local_fds.
 */
int rst_socket_pair(struct rst *ra, const struct ckpt_state_fd *a, struct rst *rb,
		    const struct ckpt_state_fd *b) __must_check;
/*
 * tcp.c: the established connection @f (saved with --tcp-established) made
 * again on the new socket @sk (options already set); logs its errors.
 */
int rst_tcp_socket(struct rst *r, const struct ckpt_state_fd *f, int sk) __must_check;

#endif
