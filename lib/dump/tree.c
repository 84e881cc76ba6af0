/* SPDX-License-Identifier: MIT */
/*
 * The process tree of a dump: which processes (the root and every
 * descendant), frozen together, and what they share.
 *
 * Freeze. Seize the root; list the children of every thread of each seized
 * process (task/TID/children) and seize those, until a pass finds nothing
 * new. A process stopped by PTRACE_INTERRUPT cannot fork: a fork in flight
 * completes first and its child shows in the listing made after the seize.
 * Zombies are not seized: their wait status is read from /proc.
 *
 * Shared. Pipes with a read and a write end in the tree are saved once with
 * the bytes in their buffers (tee(2) from a read end: nothing is consumed).
 * An open file description held by fds of several processes (kcmp
 * KCMP_FILE: inherited across fork) is listed with its users, to be made
 * once by restore.
 */
#define LOG_AREA "dump"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/inject.h>
#include <ckpt/proc.h>
#include <ckpt/state.h>
#include <ckpt/tree.h>

#include "compat/syscalls.h"
#include "dump/dump-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif

static int stat_of(pid_t pid, struct ckpt_proc_stat *ret)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	int r = ckpt_proc_open(NULL, pid, &p);

	return r < 0 ? r : ckpt_proc_read_stat(p, ret);
}

/* The wait status a zombie's parent will see, from its exit code (stat field 52). */
static int zombie_node(struct ckpt_tree_node *n, const struct ckpt_proc_stat *st)
{
	n->zombie = true;
	n->wait_status = st->exit_code & 0xffff;
	return 0;
}

/*
 * A zombie process: its leader is one and it has no other thread (a
 * leader that exited before its threads shows 'Z' too, yet the process
 * lives).
 */
bool dump_is_zombie(pid_t pid, const struct ckpt_proc_stat *st)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_free_ pid_t *tasks = NULL;
	size_t nr = 0;

	if (st->state != 'Z' && st->state != 'X')
		return false;
	if (ckpt_proc_open(NULL, pid, &p) < 0 || ckpt_proc_list_tasks(p, &tasks, &nr) < 0)
		return true;
	return nr <= 1;
}

static int fill_node(struct ckpt_tree_node *n, const struct ckpt_proc_stat *st)
{
	n->pgid = st->pgrp;
	n->sid = st->session;
	n->exit_signal = st->exit_signal;
	snprintf(n->comm, sizeof(n->comm), "%s", st->comm);
	return dump_is_zombie(n->pid, st) ? zombie_node(n, st) : 0;
}

int dump_tree_list(pid_t root, pid_t **ret, size_t *ret_nr)
{
	_cleanup_free_ pid_t *v = malloc(sizeof(*v));
	size_t nr = 1;

	if (!v)
		return -ENOMEM;
	v[0] = root;
	for (size_t i = 0; i < nr; i++) {
		_cleanup_proc_ struct ckpt_proc *p = NULL;
		_cleanup_free_ pid_t *kids = NULL;
		size_t nk = 0;
		pid_t *g;

		if (ckpt_proc_open(NULL, v[i], &p) < 0 || ckpt_proc_list_children(p, &kids, &nk) < 0)
			continue; /* gone: the freeze will tell */
		if (!nk)
			continue;
		g = reallocarray(v, nr + nk, sizeof(*v));
		if (!g)
			return -ENOMEM;
		v = g;
		memcpy(v + nr, kids, nk * sizeof(*kids));
		nr += nk;
	}
	*ret = TAKE_PTR(v);
	*ret_nr = nr;
	return 0;
}

/* Seize @pid, a child of node @parent (-1: the root) found in the tree. */
static int seize_node(struct ckpt_tree *t, struct ckpt_inject ***injs, pid_t pid, ssize_t parent,
		      unsigned int flags, unsigned int timeout_ms)
{
	struct ckpt_proc_stat st;
	struct ckpt_inject **v;
	size_t idx;
	int r;

	r = ckpt_tree_add_node(t, pid, parent < 0 ? 0 : t->nodes[parent].pid, parent, &idx);
	if (r < 0)
		return r;
	v = reallocarray(*injs, t->nr_nodes, sizeof(**injs));
	if (!v)
		return -ENOMEM;
	*injs = v;
	v[idx] = NULL;
	if ((r = stat_of(pid, &st)) < 0) {
		if (r == -ESRCH && parent >= 0) {
			t->nr_nodes--; /* gone (reaped at once: its parent ignores SIGCHLD): not in the tree */
			return 0;
		}
		pr_err("cannot read the state of pid %d: %s", pid, errstr(r));
		return r;
	}
	if (parent < 0)
		t->nodes[idx].ppid = st.ppid;
	if ((r = fill_node(&t->nodes[idx], &st)) < 0 || t->nodes[idx].zombie) {
		if (parent < 0 && t->nodes[idx].zombie) {
			/* As the injector says it of a process seized alone. */
			pr_err("pid %d (%s) is a zombie: it has exited and only its exit status remains "
			       "(its parent, pid %d, has not collected it)", pid, st.comm, st.ppid);
			return -ESRCH;
		}
		return r;
	}
	r = ckpt_inject_seize_timeout(pid, parent < 0 ? flags : flags | CKPT_INJECT_GONE_OK, timeout_ms, &v[idx]);
	if (r == -ESRCH && parent >= 0) {
		int e = stat_of(pid, &st);

		if (e == 0 && dump_is_zombie(pid, &st))
			return zombie_node(&t->nodes[idx], &st); /* it exited meanwhile */
		if (e == -ESRCH) {
			t->nr_nodes--; /* and was reaped at once */
			return 0;
		}
	}
	if (r < 0)
		return r;
	/* Read again, frozen: a setsid or setpgid before the stop counts. */
	if (stat_of(pid, &st) == 0) {
		if (parent >= 0 && st.ppid != t->nodes[parent].pid) {
			/* Reaped since the listing and the pid taken by a process of elsewhere. */
			(void)ckpt_inject_release(TAKE_PTR((*injs)[idx]));
			t->nr_nodes--;
			return 0;
		}
		(void)fill_node(&t->nodes[idx], &st);
	}
	return 0;
}

void dump_tree_release(struct ckpt_tree *t, struct ckpt_inject **injs)
{
	if (!injs)
		return;
	/* Children first: a parent never runs while a child it could wait for is still held. */
	for (size_t i = t ? t->nr_nodes : 0; i-- > 0;) {
		if (!injs[i])
			continue;
		int e = ckpt_inject_release(injs[i]);

		if (e < 0)
			pr_err("pid %d could not be released cleanly: %s", t->nodes[i].pid, errstr(e));
		injs[i] = NULL;
	}
}

/* List the children of every frozen node (new ones appended, listed in turn) and seize them. */
static int seize_children(struct ckpt_tree *t, struct ckpt_inject ***injs, unsigned int flags,
			  unsigned int timeout_ms)
{
	for (size_t i = 0; i < t->nr_nodes; i++) {
		_cleanup_free_ pid_t *kids = NULL;
		size_t nk = 0;
		int r;

		if (t->nodes[i].zombie)
			continue;
		r = ckpt_proc_list_children(ckpt_inject_task_proc((*injs)[i]), &kids, &nk);
		if (r < 0) {
			pr_err("cannot list the children of pid %d: %s", t->nodes[i].pid, errstr(r));
			return r;
		}
		/* Appended: a parent stays before its children. */
		for (size_t k = 0; k < nk; k++) {
			if (ckpt_tree_find(t, kids[k]) >= 0)
				continue;
			r = seize_node(t, injs, kids[k], (ssize_t)i, flags, timeout_ms);
			if (r < 0) {
				pr_err("cannot freeze pid %d, a child of pid %d: %s", kids[k], t->nodes[i].pid,
				       errstr(r));
				return r;
			}
		}
	}
	return 0;
}

int dump_tree_freeze(pid_t root, unsigned int flags, unsigned int timeout_ms, struct ckpt_tree **ret_tree,
		     struct ckpt_inject ***ret_injs)
{
	_cleanup_tree_ struct ckpt_tree *t = NULL;
	struct ckpt_inject **injs = NULL;
	size_t before;
	int r;

	if ((r = ckpt_tree_new(&t)) < 0 || (r = seize_node(t, &injs, root, -1, flags, timeout_ms)) < 0)
		goto fail;
	/*
	 * Each process's children, listed once it is frozen (it cannot fork
	 * then), and seized; then passes over every frozen process again until
	 * one finds nothing new: a child reparented to one of them meanwhile
	 * (a subreaper of the tree adopting a grandchild whose parent exited
	 * before its seize, CLONE_PARENT) shows there.
	 */
	do {
		before = t->nr_nodes;
		if ((r = seize_children(t, &injs, flags, timeout_ms)) < 0)
			goto fail;
	} while (t->nr_nodes != before);
	*ret_tree = TAKE_PTR(t);
	*ret_injs = injs;
	return 0;
fail:
	dump_tree_release(t, injs);
	free(injs);
	return r;
}

/*
 * Kill mode, once the checkpoint is safe: kill every process, all or
 * none (PTRACE_O_EXITKILL first), children first, so that none is left a
 * zombie whose pid a restore right after would find taken. A parent about to die ignores SIGCHLD first, so the
 * kernel reaps each child as soon as ckpt, its tracer, has collected it
 * (init would, but only when it gets to it).
 */
void dump_tree_kill(struct ckpt_tree *t, struct ckpt_inject **injs)
{
	static const uint64_t ign[4] = { 1 /* SIG_IGN */, 0, 0, 0 };

	/* All or none: if ckpt dies from here on, the kernel kills the rest. */
	for (size_t i = 0; i < t->nr_nodes; i++)
		if (injs[i] && ckpt_inject_exitkill(injs[i]) < 0)
			pr_warn("pid %d: a ckpt killed now would leave it running", t->nodes[i].pid);

	for (size_t i = 0; i < t->nr_nodes; i++) {
		bool parent = false;
		uint64_t at;
		int64_t res;

		for (size_t k = i + 1; k < t->nr_nodes && !parent; k++)
			parent = t->nodes[k].parent == (ssize_t)i && !t->nodes[k].zombie;
		if (injs[i] && parent &&
		    (ckpt_inject_scratch(injs[i], sizeof(ign), &at) < 0 || ckpt_inject_write(injs[i], at, ign, sizeof(ign)) < 0 ||
		     ckpt_inject_syscall(injs[i], 0, SYS_rt_sigaction, (const uint64_t[6]){ SIGCHLD, at, 0, 8 }, &res) < 0))
			pr_debug("pid %d will not reap its children itself", t->nodes[i].pid);
	}
	/* Zombies of the tree: reaped by their parents now, before init gets them. */
	for (size_t i = 1; i < t->nr_nodes; i++) {
		int64_t res;

		if (t->nodes[i].zombie && injs[t->nodes[i].parent] &&
		    ckpt_inject_syscall(injs[t->nodes[i].parent], 0, SYS_wait4,
					(const uint64_t[6]){ (uint64_t)t->nodes[i].pid, 0, WNOHANG | __WALL, 0 }, &res) < 0)
			pr_debug("cannot reap zombie %d in its parent", t->nodes[i].pid);
	}
	for (size_t i = t->nr_nodes; i-- > 0;) {
		if (!injs[i])
			continue;
		ckpt_inject_kill(injs[i]);
		(void)ckpt_inject_release(injs[i]); /* collects it */
		injs[i] = NULL;
	}
}

/* ---- what the processes share ---- */

static bool reads(uint32_t flags)
{
	return (flags & O_ACCMODE) != O_WRONLY;
}

static bool writes(uint32_t flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/* The bytes waiting in the pipe that @rfd reads (ours), without taking them. */
static int peek_pipe(int rfd, struct ckpt_tree_pipe *p)
{
	_cleanup_close_ int in = -1, out = -1;
	int fds[2], size = fcntl(rfd, F_GETPIPE_SZ);
	ssize_t n;

	if (size < 0)
		return neg_errno();
	p->size = (uint32_t)size;
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return neg_errno();
	in = fds[0];
	out = fds[1];
	if (fcntl(out, F_SETPIPE_SZ, size) < 0)
		return neg_errno();
	n = tee(rfd, out, (size_t)size, SPLICE_F_NONBLOCK);
	if (n < 0 && errno != EAGAIN)
		return neg_errno();
	if (n <= 0)
		return 0;
	p->data = malloc((size_t)n);
	if (!p->data)
		return -ENOMEM;
	if (read(in, p->data, (size_t)n) != n)
		return -EIO;
	p->len = (uint64_t)n;
	return 0;
}

/* Pipe @ino: does the tree hold both a read and a write end? Where is a read end? */
static bool pipe_inside(const struct ckpt_tree *t, uint64_t ino, size_t *ret_node, int *ret_fd)
{
	bool r = false, w = false;

	for (size_t i = 0; i < t->nr_nodes; i++) {
		const struct ckpt_state *s = t->nodes[i].state;

		for (size_t k = 0; s && k < s->nr_fds; k++) {
			const struct ckpt_state_fd *f = &s->fds[k];

			if (f->kind != CKPT_STATE_FD_PIPE || f->id.ino != ino)
				continue;
			if (reads(f->flags) && !r) {
				*ret_node = i;
				*ret_fd = f->fd;
			}
			r |= reads(f->flags);
			w |= writes(f->flags);
		}
	}
	return r && w;
}

static int add_pipe(struct ckpt_tree *t, struct ckpt_inject *inj, uint64_t ino, int fd)
{
	_cleanup_close_ int rfd = -1;
	struct ckpt_tree_pipe *p = reallocarray(t->pipes, t->nr_pipes + 1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	t->pipes = p;
	p = &t->pipes[t->nr_pipes++];
	memset(p, 0, sizeof(*p));
	p->ino = ino;
	if ((r = ckpt_inject_take_fd(inj, fd, &rfd)) < 0)
		return r;
	r = peek_pipe(rfd, p);
	if (r < 0) {
		pr_err("cannot read the buffer of pipe:[%" PRIu64 "] (fd %d of pid %d): %s", ino, fd,
		       ckpt_inject_pid(inj), errstr(r));
		return r;
	}
	if (p->len && asprintf(&p->blob, "blob-pipe-%" PRIu64, ino) < 0) {
		p->blob = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int find_pipes(struct ckpt_tree *t, struct ckpt_inject **injs)
{
	for (size_t i = 0; i < t->nr_nodes; i++) {
		const struct ckpt_state *s = t->nodes[i].state;

		for (size_t k = 0; s && k < s->nr_fds; k++) {
			const struct ckpt_state_fd *f = &s->fds[k];
			size_t node = 0;
			int fd = -1, r;

			if (f->kind != CKPT_STATE_FD_PIPE || ckpt_tree_find_pipe(t, f->id.ino) ||
			    !pipe_inside(t, f->id.ino, &node, &fd))
				continue;
			if ((r = add_pipe(t, injs[node], f->id.ino, fd)) < 0)
				return r;
		}
	}
	return 0;
}

/* Kinds whose open file descriptions restore can hand from one process to another. */
static bool shareable(const struct ckpt_state_fd *f)
{
	switch (f->kind) {
	case CKPT_STATE_FD_REGULAR:
	case CKPT_STATE_FD_DIRECTORY:
	case CKPT_STATE_FD_CHR:
	case CKPT_STATE_FD_MEMFD:
	case CKPT_STATE_FD_EVENTFD:
	case CKPT_STATE_FD_SIGNALFD:
	case CKPT_STATE_FD_TIMERFD:
	case CKPT_STATE_FD_INOTIFY:
	case CKPT_STATE_FD_EPOLL:
	case CKPT_STATE_FD_SOCKET:
		return f->restorable;
	default:
		return false;
	}
}

static bool same_identity(const struct ckpt_state_fd *a, const struct ckpt_state_fd *b)
{
	return a->kind == b->kind && a->id.dev_major == b->id.dev_major && a->id.dev_minor == b->id.dev_minor &&
	       a->id.ino == b->id.ino;
}

/* The first earlier fd (in tree order) with the same description as fd @k of node @i. */
static bool first_holder(const struct ckpt_tree *t, size_t i, size_t k, struct ckpt_tree_fd_ref *ret)
{
	const struct ckpt_state_fd *f = &t->nodes[i].state->fds[k];

	for (size_t j = 0; j < i; j++) {
		const struct ckpt_state *s = t->nodes[j].state;

		for (size_t m = 0; s && m < s->nr_fds; m++) {
			const struct ckpt_state_fd *g = &s->fds[m];

			if (!same_identity(f, g) ||
			    sys_kcmp(t->nodes[j].pid, t->nodes[i].pid, KCMP_FILE, (unsigned long)g->fd,
				     (unsigned long)f->fd) != 0)
				continue;
			ret->pid = t->nodes[j].pid;
			ret->fd = g->fd;
			return true;
		}
	}
	return false;
}

static int find_files(struct ckpt_tree *t)
{
	for (size_t i = 1; i < t->nr_nodes; i++) {
		const struct ckpt_state *s = t->nodes[i].state;

		for (size_t k = 0; s && k < s->nr_fds; k++) {
			struct ckpt_tree_fd_ref first;
			int r;

			if (!shareable(&s->fds[k]) || !first_holder(t, i, k, &first))
				continue;
			r = ckpt_tree_share_file(t, first, (struct ckpt_tree_fd_ref){ t->nodes[i].pid, s->fds[k].fd });
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/*
 * Unix sockets whose peer is in another process of the tree (a socket pair
 * made before a fork, a connection between two of them): that process and
 * fd named in the socket (peer_pid), no longer "a peer outside", judged
 * again. Restore makes the pair once.
 */
static int find_socket_pairs(struct ckpt_tree *t)
{
	for (size_t i = 0; i < t->nr_nodes; i++) {
		struct ckpt_state *s = t->nodes[i].state;

		for (size_t k = 0; s && k < s->nr_fds; k++) {
			struct ckpt_state_fd *f = &s->fds[k];
			struct ckpt_state_socket *d = &f->sock;

			if (f->kind != CKPT_STATE_FD_SOCKET || d->family != AF_UNIX || !d->peer_ino || d->peer_fd >= 0)
				continue;
			for (size_t j = 0; j < t->nr_nodes && !d->peer_pid; j++) {
				const struct ckpt_state *o = t->nodes[j].state;

				for (size_t m = 0; j != i && o && m < o->nr_fds; m++)
					if (o->fds[m].kind == CKPT_STATE_FD_SOCKET && o->fds[m].id.ino == d->peer_ino) {
						d->peer_pid = t->nodes[j].pid;
						d->peer_fd = o->fds[m].fd;
						break;
					}
			}
			if (!d->peer_pid)
				continue;
			/* Refused as "a peer outside the process" at collect (only that): judged again. */
			if (!f->restorable && f->reason && strstr(f->reason, "peer outside the process")) {
				int r;

				free(f->reason);
				f->reason = NULL;
				f->restorable = true;
				if ((r = ckpt_state_fd_judge_for(f, s->process.pid)) < 0)
					return r;
			}
		}
	}
	return 0;
}

int dump_tree_shared(struct ckpt_tree *t, struct ckpt_inject **injs)
{
	int r = find_pipes(t, injs);

	if (r == 0)
		r = find_socket_pairs(t);
	return r < 0 ? r : find_files(t);
}

/*
 * What restore cannot make of the tree itself: a process group or session
 * that no process of the tree leads and that is not the root's (its
 * leader is outside, or has exited).
 */
int dump_tree_judge(const struct ckpt_tree *t, struct ckpt_state_issues *issues)
{
	for (size_t i = 1; i < t->nr_nodes; i++) {
		const struct ckpt_tree_node *n = &t->nodes[i];

		for (int sid = 0; sid < 3; sid++) {
			struct ckpt_state_issue *v;
			int r;

			/* 2: a session is made by setsid or inherited from the parent at fork, nothing else. */
			if (sid == 2 ? n->sid == n->pid || n->sid == t->nodes[n->parent].sid
				     : ckpt_tree_leader(t, i, sid) != -2)
				continue;
			v = reallocarray(issues->v, issues->nr + 1, sizeof(*v));
			if (!v)
				return -ENOMEM;
			issues->v = v;
			v = &issues->v[issues->nr];
			memset(v, 0, sizeof(*v));
			v->kind = CKPT_STATE_ISSUE_PROCESS;
			r = asprintf(&v->what, "pid %d (%s)", n->pid, n->comm);
			if (r >= 0 && sid == 2)
				r = asprintf(&v->reason, "its session %d is neither its own nor its parent's "
					     "(it was reparented): restore cannot put it there", n->sid);
			else if (r >= 0)
				r = asprintf(&v->reason, "its %s %d is led by no process of the tree (its leader "
					     "exited or is outside) and is not the root's",
					     sid ? "session" : "process group", sid ? n->sid : n->pgid);
			if (r < 0) {
				free(v->what);
				return -ENOMEM;
			}
			issues->nr++;
		}
	}
	return 0;
}
