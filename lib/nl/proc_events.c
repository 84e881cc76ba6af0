/* SPDX-License-Identifier: MIT */
/* The proc connector (NETLINK_CONNECTOR, CN_IDX_PROC) via libnl. */
#define LOG_AREA "nl"
#include <errno.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ckpt/nl.h>

#include "util/log.h"
#include "util/util.h"

struct ckpt_proc_events {
	struct nl_sock *sk;
	/* Events of one datagram not yet handed out. */
	struct ckpt_proc_event pending[64];
	size_t npending;
};

static int send_op(struct nl_sock *sk, enum proc_cn_mcast_op op)
{
	struct {
		struct cn_msg cn;
		enum proc_cn_mcast_op op;
	} __attribute__((packed)) req = {
		.cn = {
			.id = { .idx = CN_IDX_PROC, .val = CN_VAL_PROC },
			.len = sizeof(enum proc_cn_mcast_op),
		},
		.op = op,
	};
	struct nl_msg *msg = nlmsg_alloc_simple(NLMSG_DONE, 0);
	int r;

	if (!msg)
		return -ENOMEM;
	r = nlmsg_append(msg, &req, sizeof(req), NLMSG_ALIGNTO);
	if (r == 0)
		r = nl_send_auto(sk, msg);
	nlmsg_free(msg);
	return r < 0 ? -EIO : 0;
}

int ckpt_proc_events_open(struct ckpt_proc_events **ret)
{
	struct ckpt_proc_events *ev = calloc(1, sizeof(*ev));
	int r;

	if (!ev)
		return -ENOMEM;
	ev->sk = nl_socket_alloc();
	if (!ev->sk) {
		free(ev);
		return -ENOMEM;
	}
	nl_socket_disable_seq_check(ev->sk);
	nl_join_groups(ev->sk, CN_IDX_PROC);
	r = nl_connect(ev->sk, NETLINK_CONNECTOR);
	if (r < 0) {
		r = r == -NLE_PERM ? -EPERM : -EPROTONOSUPPORT;
		goto fail;
	}
	/* Bigger receive buffer: a fork storm must not overflow it quickly. */
	nl_socket_set_buffer_size(ev->sk, 1 << 20, 0);
	r = nl_socket_set_nonblocking(ev->sk);
	if (r < 0) {
		r = -EIO;
		goto fail;
	}
	r = send_op(ev->sk, PROC_CN_MCAST_LISTEN);
	if (r < 0)
		goto fail;
	*ret = ev;
	return 0;
fail:
	nl_socket_free(ev->sk);
	free(ev);
	return r;
}

void ckpt_proc_events_close(struct ckpt_proc_events *ev)
{
	if (!ev)
		return;
	(void)send_op(ev->sk, PROC_CN_MCAST_IGNORE);
	nl_socket_free(ev->sk);
	free(ev);
}

int ckpt_proc_events_fd(const struct ckpt_proc_events *ev)
{
	return nl_socket_get_fd(ev->sk);
}

static void decode(struct ckpt_proc_events *ev, const struct proc_event *pe)
{
	struct ckpt_proc_event *o;

	if (ev->npending >= ARRAY_SIZE(ev->pending))
		return;
	o = &ev->pending[ev->npending];
	memset(o, 0, sizeof(*o));
	o->timestamp_ns = pe->timestamp_ns;
	switch (pe->what) {
	case PROC_EVENT_FORK:
		o->kind = CKPT_PROC_EV_FORK;
		o->pid = pe->event_data.fork.parent_pid;
		o->tgid = pe->event_data.fork.parent_tgid;
		o->child_pid = pe->event_data.fork.child_pid;
		o->child_tgid = pe->event_data.fork.child_tgid;
		break;
	case PROC_EVENT_EXEC:
		o->kind = CKPT_PROC_EV_EXEC;
		o->pid = pe->event_data.exec.process_pid;
		o->tgid = pe->event_data.exec.process_tgid;
		break;
	case PROC_EVENT_EXIT:
		o->kind = CKPT_PROC_EV_EXIT;
		o->pid = pe->event_data.exit.process_pid;
		o->tgid = pe->event_data.exit.process_tgid;
		o->exit_code = (int)pe->event_data.exit.exit_code;
		break;
	case PROC_EVENT_NONE:
		return; /* the acknowledgement of LISTEN */
	default:
		o->kind = CKPT_PROC_EV_OTHER;
		break;
	}
	ev->npending++;
}

/* Receive one datagram without blocking; 0 when nothing is queued. */
static int recv_one(struct ckpt_proc_events *ev)
{
	struct sockaddr_nl nla;
	unsigned char *buf = NULL;
	struct nlmsghdr *nlh;
	int n;

	n = nl_recv(ev->sk, &nla, &buf, NULL);
	if (n <= 0) {
		free(buf);
		if (n == 0 || n == -NLE_AGAIN)
			return 0;
		return n == -NLE_NOMEM ? -ENOBUFS : -EIO;
	}
	for (nlh = (struct nlmsghdr *)buf; nlmsg_ok(nlh, n); nlh = nlmsg_next(nlh, &n)) {
		struct cn_msg *cn = nlmsg_data(nlh);

		if (nlh->nlmsg_type == NLMSG_ERROR || nlh->nlmsg_type == NLMSG_NOOP)
			continue;
		if (nlmsg_datalen(nlh) < (int)(sizeof(*cn) + sizeof(struct proc_event)))
			continue;
		if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC)
			continue;
		{
			/* cn->data is 4 bytes past an 8-byte boundary; proc_event holds a u64: copy it out. */
			struct proc_event pe;

			memcpy(&pe, cn->data, sizeof(pe));
			decode(ev, &pe);
		}
	}
	free(buf);
	return 1;
}

int ckpt_proc_events_read(struct ckpt_proc_events *ev, struct ckpt_proc_event *out, size_t max)
{
	size_t n = 0;

	while (n < max) {
		if (ev->npending) {
			size_t take = MIN(ev->npending, max - n);

			memcpy(out + n, ev->pending, take * sizeof(*out));
			memmove(ev->pending, ev->pending + take,
				(ev->npending - take) * sizeof(*out));
			ev->npending -= take;
			n += take;
			continue;
		}
		int r = recv_one(ev);

		if (r < 0)
			return n ? (int)n : r;
		if (r == 0)
			break;
	}
	return (int)n;
}
