/* SPDX-License-Identifier: MIT */
/* Sockets (collect_sockets.c). */
#ifndef CKPT_COLLECT_SOCKETS_H
#define CKPT_COLLECT_SOCKETS_H

#include "dump/collect-internal.h"

/*
 * Once every fd is described: each socket, through sock_diag and our copy
 * of it, judged again; a unix socket's queue kept in sock.queue_data.
 */
int collect_sockets(struct collect *c);
/*
 * collect_tcp.c: with CKPT_COLLECT_TCP_ESTABLISHED, an established TCP
 * connection @f (our copy @sk) blocked and read in repair mode (left at
 * once: the block keeps it as it was); logs its errors.
 */
int collect_tcp(struct collect *c, struct ckpt_state_fd *f, int sk);
/*
 * Kill mode, once the checkpoint is committed: every connection of @s
 * saved with TCP_REPAIR put in repair mode again, so that the kill closes
 * it without a FIN or a reset. Logs its errors.
 */
int collect_tcp_silence(struct ckpt_inject *inj, const struct ckpt_state *s, pid_t pid);
/*
 * Every connection of @s read in repair mode taken out of it (through
 * @inj), and the block of pid @pid's connections lifted: before a process
 * whose dump failed, or that runs on, runs again.
 */
void collect_tcp_undo(struct ckpt_inject *inj, struct ckpt_state *s, pid_t pid);

#endif
