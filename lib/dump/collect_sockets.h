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

#endif
