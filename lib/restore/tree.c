/* SPDX-License-Identifier: MIT */
/*
 * The process tree of a restore (tree.json, ckpt/tree.h): every process
 * created by its own parent, so that parent links, getppid() and waitpid()
 * hold, with the pids it had; sessions and groups; zombies; what the
 * processes share made once.
 *
 *   open     tree.json and each process's checkpoint (proc-PID/, the root's
 *            at the top), each bound to the tree by its id
 *   pipes    the pipes inside the tree made by ckpt, their bytes written
 *            back, each end handed to the fds that held it
 *   create   in tree order, each process by a remote clone3 (set_tid) in
 *            its parent, while the parent is still a copy of ckpt; a
 *            session leader calls setsid at once (its children inherit
 *            the session); then process groups, leaders first
 *   zombies  a zombie ends (exit code or signal) as it had, collected by
 *            ckpt as its tracer, which leaves it to its parent; the
 *            parent's exit signal from it is taken back
 *   build    each live process as a single one is built (restore.c);
 *            shared memory objects and open file descriptions made by
 *            the first process that has them are handed to the others
 *   release  together, the last created first
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "restore/restore-internal.h"
#include "restore/sockets.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#define PS 4096UL

/* The index of fd @fd in @s, or -1. */
static ssize_t fd_index(const struct ckpt_state *s, int fd)
{
	for (size_t k = 0; s && k < s->nr_fds; k++)
		if (s->fds[k].fd == fd)
			return (ssize_t)k;
	return -1;
}

/* ---- open ---- */

/* Process @i's checkpoint: its chain or page source, bound to the tree by its id. */
static int open_node(struct rst_tree *rt, size_t i)
{
	const struct ckpt_tree_node *n = &rt->tree->nodes[i];
	struct rst *r = &rt->procs[i];
	char id[CKPT_IMAGE_ID_STR_LEN + 1];
	const char *where;
	int e;

	if ((e = rst_open(r, n->dir)) < 0)
		return e;
	where = r->dir ? r->dir : ckpt_page_source_name(r->src);
	if ((e = rst_image_id(r, id)) < 0) {
		pr_err("'%s': cannot read its content id (a page server older than trees?): %s", where, errstr(e));
		return e;
	}
	if (strcmp(id, n->id)) {
		pr_err("'%s' is not the checkpoint of pid %d that %s names (id %s, not %s)", where, n->pid,
		       CKPT_TREE_DOC, id, n->id);
		return -EBADMSG;
	}
	if (r->s->process.pid != n->pid) {
		pr_err("'%s' holds pid %d, not pid %d", where, r->s->process.pid, n->pid);
		return -EBADMSG;
	}
	return 0;
}

int rst_tree_open(struct rst_tree *rt)
{
	_cleanup_json_ json_object *o = NULL;
	struct rst *root = &rt->procs[0];
	char why[256] = "";
	int e;

	if (root->chain && !ckpt_image_has_file(ckpt_chain_image(root->chain, 0), CKPT_TREE_DOC))
		return 0; /* a checkpoint of one process (before trees, or of track -D's own path) */
	e = root->src ? ckpt_page_source_get_json(root->src, CKPT_TREE_DOC, &o)
		      : ckpt_image_get_json(ckpt_chain_image(root->chain, 0), CKPT_TREE_DOC, &o);
	if (e == -ENOENT)
		return 0; /* a checkpoint of one process, written before trees */
	if (e < 0)
		return e;
	e = ckpt_tree_from_json(o, why, sizeof(why), &rt->tree);
	if (e < 0) {
		pr_err("'%s' is corrupt: %s", rt->o->dir ? rt->o->dir : rt->o->from, why);
		return e;
	}
	if (rt->tree->nodes[0].pid != root->s->process.pid) {
		pr_err("'%s': %s names pid %d as its root, the checkpoint holds pid %d",
		       rt->o->dir ? rt->o->dir : rt->o->from, CKPT_TREE_DOC, rt->tree->nodes[0].pid,
		       root->s->process.pid);
		return -EBADMSG;
	}
	{
		struct rst *v = reallocarray(rt->procs, rt->tree->nr_nodes, sizeof(*v));

		if (!v)
			return -ENOMEM;
		rt->procs = v;
	}
	for (size_t i = 1; i < rt->tree->nr_nodes; i++) {
		rst_init(&rt->procs[i], rt, i);
		rt->nr = i + 1;
		if (!rt->tree->nodes[i].zombie && (e = open_node(rt, i)) < 0)
			return e;
	}
	rt->procs[0].tree = rt;
	return 0;
}

/* ---- pipes ---- */

/* An end of @p for an fd opened with @accmode: ours, to be handed in. */
static int pipe_end(const int fds[2], int accmode)
{
	char path[64];

	if (accmode == O_RDONLY)
		return fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
	if (accmode == O_WRONLY)
		return fcntl(fds[1], F_DUPFD_CLOEXEC, 3);
	/* Read-write (a pipe reopened through /proc): one more description of it. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
	return open(path, O_RDWR | O_CLOEXEC);
}

/* A blob of the root's checkpoint (the tree's own: the bytes in its pipes). */
static int rst_tree_blob(struct rst_tree *rt, const char *blob, uint64_t len, void **ret)
{
	return rst_read_blob(&rt->procs[0], blob, len, "the tree", ret);
}

static int make_pipe(struct rst_tree *rt, const struct ckpt_tree_pipe *tp)
{
	_cleanup_free_ void *data = NULL;
	int fds[2], e = 0;

	if (tp->len && (e = rst_tree_blob(rt, tp->blob, tp->len, &data)) < 0)
		return e;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return neg_errno();
	if (fcntl(fds[1], F_SETPIPE_SZ, (int)tp->size) < 0 && tp->len) {
		e = neg_errno();
		pr_err("cannot make pipe:[%" PRIu64 "] as large as it was (%u bytes): %s", tp->ino, tp->size,
		       errstr(e));
	}
	if (e == 0 && tp->len)
		e = write_all(fds[1], data, tp->len);
	for (size_t i = 0; e == 0 && i < rt->nr; i++) {
		struct rst *r = &rt->procs[i];

		for (size_t k = 0; r->s && k < r->s->nr_fds && e == 0; k++) {
			const struct ckpt_state_fd *f = &r->s->fds[k];

			if (f->kind != CKPT_STATE_FD_PIPE || f->id.ino != tp->ino || r->local_fds[k] >= 0)
				continue;
			r->local_fds[k] = pipe_end(fds, (int)(f->flags & O_ACCMODE));
			if (r->local_fds[k] < 0)
				e = neg_errno();
		}
	}
	close(fds[0]);
	close(fds[1]);
	if (e < 0)
		pr_err("cannot make pipe:[%" PRIu64 "] again: %s", tp->ino, errstr(e));
	return e;
}

/* Unix connections between two processes of the tree: each pair made once, by the first. */
static int socket_pairs(struct rst_tree *rt)
{
	for (size_t i = 0; i < rt->nr; i++) {
		struct rst *r = &rt->procs[i];

		for (size_t k = 0; r->s && k < r->s->nr_fds; k++) {
			const struct ckpt_state_fd *f = &r->s->fds[k], *g = NULL;
			ssize_t n;
			struct rst *q;
			int e;

			if (f->kind != CKPT_STATE_FD_SOCKET || !f->sock.peer_pid || r->local_fds[k] >= 0)
				continue;
			n = ckpt_tree_find(rt->tree, f->sock.peer_pid);
			q = n >= 0 ? &rt->procs[n] : NULL;
			for (size_t m = 0; q && q->s && m < q->s->nr_fds && !g; m++)
				if (q->s->fds[m].fd == f->sock.peer_fd && q->s->fds[m].kind == CKPT_STATE_FD_SOCKET)
					g = &q->s->fds[m];
			if (!g || g->sock.peer_pid != r->s->process.pid || g->sock.peer_fd != f->fd) {
				pr_err("fd %d of pid %d: its peer, fd %d of pid %d, is not in the checkpoint as its "
				       "peer", f->fd, r->s->process.pid, f->sock.peer_fd, f->sock.peer_pid);
				return -EBADMSG;
			}
			if (q->local_fds[g - q->s->fds] >= 0)
				continue; /* made from the other end (a dup'ed end) */
			if ((e = rst_socket_pair(r, f, q, g)) < 0)
				return e;
		}
	}
	return 0;
}

int rst_tree_pipes(struct rst_tree *rt)
{
	int e = 0;

	for (size_t i = 0; rt->tree && e == 0 && i < rt->tree->nr_pipes; i++)
		e = make_pipe(rt, &rt->tree->pipes[i]);
	return e == 0 && rt->tree ? socket_pairs(rt) : e;
}

void rst_tree_share_local(struct rst_tree *rt, size_t node)
{
	const struct ckpt_tree *t = rt->tree;
	struct rst *r = &rt->procs[node];

	for (size_t i = 0; t && i < t->nr_files; i++) {
		const struct ckpt_tree_file *f = &t->files[i];
		ssize_t k = f->users[0].pid == r->s->process.pid ? fd_index(r->s, f->users[0].fd) : -1;

		if (k < 0 || r->local_fds[k] < 0)
			continue;
		/* Made by ckpt for its first user (a socket, a fifo, a ghost file): the same for the others. */
		for (size_t u = 1; u < f->nr_users; u++) {
			ssize_t n = ckpt_tree_find(t, f->users[u].pid), m;
			struct rst *q;

			if (n <= (ssize_t)node || !rt->procs[n].s || (m = fd_index(rt->procs[n].s, f->users[u].fd)) < 0)
				continue;
			q = &rt->procs[n];
			if (q->local_fds[m] < 0)
				q->local_fds[m] = fcntl(r->local_fds[k], F_DUPFD_CLOEXEC, 3);
		}
	}
}

/* ---- create ---- */

/* clone3 in @parent: a child with pid @pid and @exit_signal. */
static int clone_child(struct rst *parent, struct rst *child, pid_t pid, int exit_signal)
{
	struct clone_args args = { .exit_signal = (uint64_t)exit_signal, .set_tid_size = 1 };
	uint64_t at;
	int64_t res = -EEXIST;
	char who[128];
	int e;

	if ((e = ckpt_inject_scratch(parent->inj, PS, &at)) < 0)
		return e;
	args.set_tid = at + sizeof(args);
	if ((e = ckpt_inject_write(parent->inj, at, &args, sizeof(args))) < 0 ||
	    (e = ckpt_inject_write(parent->inj, at + sizeof(args), &pid, sizeof(pid))) < 0)
		return e;
	for (int tries = 0; res == -EEXIST && tries < RST_LIMBO_TRIES; tries++) {
		if (tries && !rst_id_in_limbo(pid))
			break;
		if (tries)
			usleep(10000);
		if ((e = ckpt_inject_clone_process(parent->inj, at, sizeof(args), &res, &child->inj)) < 0)
			return e;
	}
	if (res == -EEXIST) {
		rst_id_holder(pid, who, sizeof(who));
		pr_err("cannot create pid %d, a child of pid %d: it is taken (by %s); a process tree is "
		       "restored with the pids it had", pid, parent->pid, who);
		return -EEXIST;
	}
	if (res < 0) {
		pr_err("cannot create pid %d, a child of pid %d: %s", pid, parent->pid, errstr((int)res));
		return (int)res;
	}
	child->pid = (pid_t)res;
	return 0;
}

static int create_node(struct rst_tree *rt, size_t i)
{
	const struct ckpt_tree_node *n = &rt->tree->nodes[i];
	struct rst *r = &rt->procs[i];
	struct rlimit rl;
	int64_t res;
	int e;

	if ((e = clone_child(&rt->procs[n->parent], r, n->pid, n->exit_signal)) < 0)
		return e;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max;
		(void)prlimit(r->pid, RLIMIT_NOFILE, &rl, NULL);
	}
	/* Before its own children are made: they inherit the session. */
	if (n->sid == n->pid) {
		res = RCALL(r, SYS_setsid);
		if (res < 0) {
			pr_err("cannot give pid %d its own session again: %s", n->pid, errstr((int)res));
			return (int)res;
		}
	}
	return 0;
}

/* Does some node of the tree name node @i's pid as its process group? */
static bool names_group(const struct ckpt_tree *t, size_t i)
{
	for (size_t j = 0; j < t->nr_nodes; j++)
		if (t->nodes[j].pgid == t->nodes[i].pid)
			return true;
	return false;
}

/*
 * The process group of every process but the root (rst_session's): the
 * groups first (each leader alone in its own), then the members, then the
 * leaders that had left their group for another one (a group lives on
 * without its leader). Last, every session is checked: only setsid and
 * inheritance from the parent make one.
 */
static int set_groups(struct rst_tree *rt)
{
	pid_t root_pgid = getpgid(rt->procs[0].pid), root_sid = getsid(rt->procs[0].pid);

	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 1; i < rt->nr; i++) {
			const struct ckpt_tree_node *n = &rt->tree->nodes[i];
			ssize_t l = ckpt_tree_leader(rt->tree, i, false);
			pid_t want = l == -1 ? root_pgid : n->pgid;
			bool leader = names_group(rt->tree, i);
			int64_t res;

			if (l == -2) {
				pr_err("pid %d: its process group %d has no leader in the tree", n->pid, n->pgid);
				return -ENOTSUP;
			}
			if (pass == 0 && leader)
				want = n->pid;
			else if (pass == 0 || (pass == 1) != (!leader || want == n->pid))
				continue;
			if (getpgid(n->pid) == want)
				continue;
			res = RCALL(&rt->procs[i], SYS_setpgid, 0, (uint64_t)want);
			if (res < 0) {
				pr_err("cannot put pid %d in process group %d again: %s", n->pid, want,
				       errstr((int)res));
				return (int)res;
			}
		}
	for (size_t i = 1; i < rt->nr; i++) {
		const struct ckpt_tree_node *n = &rt->tree->nodes[i];
		pid_t want = ckpt_tree_leader(rt->tree, i, true) == -1 ? root_sid : n->sid;

		if (getsid(n->pid) != want) {
			pr_err("pid %d cannot be put in session %d again (it is in %d): a session is made by "
			       "setsid or inherited from the parent", n->pid, want, getsid(n->pid));
			return -ENOTSUP;
		}
	}
	return 0;
}

/* Take back the exit signals the zombies just sent to @parent (it had them already, or not). */
static void flush_exit_signals(struct rst *parent, uint64_t mask)
{
	uint64_t at;
	int64_t res;
	static const struct timespec zero = { 0, 0 };

	if (ckpt_inject_scratch(parent->inj, PS, &at) < 0 || ckpt_inject_write(parent->inj, at, &mask, 8) < 0 ||
	    ckpt_inject_write(parent->inj, at + 8, &zero, sizeof(zero)) < 0)
		return;
	do
		res = RCALL(parent, SYS_rt_sigtimedwait, at, at + 64, at + 8, 8);
	while (res > 0);
}

static int end_zombies(struct rst_tree *rt)
{
	for (size_t i = 1; i < rt->nr; i++) {
		const struct ckpt_tree_node *n = &rt->tree->nodes[i];
		struct rst *r = &rt->procs[i];
		int e;

		if (!n->zombie)
			continue;
		/* Its name, as ps shows it (a copy of ckpt's until now). */
		{
			uint64_t at;
			int64_t res;

			if (ckpt_inject_scratch(r->inj, PS, &at) == 0 &&
			    ckpt_inject_write(r->inj, at, n->comm, strnlen(n->comm, sizeof(n->comm) - 1) + 1) == 0)
				(void)RCALL(r, SYS_prctl, PR_SET_NAME, at);
			(void)res;
		}
		e = ckpt_inject_end(TAKE_PTR(r->inj), n->wait_status);
		if (e < 0)
			return e;
		if (n->exit_signal > 0 && n->exit_signal <= 64)
			flush_exit_signals(&rt->procs[n->parent], 1ULL << (n->exit_signal - 1));
	}
	return 0;
}

int rst_tree_create(struct rst_tree *rt)
{
	int e = 0;

	if (!rt->tree)
		return 0;
	for (size_t i = 1; e == 0 && i < rt->nr; i++)
		e = create_node(rt, i);
	if (e == 0)
		e = set_groups(rt);
	if (e == 0)
		e = end_zombies(rt);
	return e;
}

/* ---- what the processes share ---- */

int rst_tree_shm_fd(const struct rst *r, const struct ckpt_state_identity *id)
{
	const struct rst_tree *rt = r->tree;

	for (size_t i = 0; rt && i < rt->nr_shm; i++)
		if (ckpt_state_same_object(&rt->shm[i].id, id))
			return rt->shm[i].fd;
	return -1;
}

/* After @r's mappings: the shared memory objects it made, for the processes after it. */
int rst_tree_mm_done(struct rst *r)
{
	struct rst_tree *rt = r->tree;

	if (!rt || !rt->tree || rt->nr < 2)
		return 0;
	for (size_t i = 0; i < r->nr_shm; i++) {
		struct rst_tree_shm *v;
		int fd, e;

		if (rst_tree_shm_fd(r, &r->shm[i].id) >= 0)
			continue;
		if ((e = ckpt_inject_take_fd(r->inj, r->shm[i].rfd, &fd)) < 0)
			return e;
		v = reallocarray(rt->shm, rt->nr_shm + 1, sizeof(*v));
		if (!v) {
			close(fd);
			return -ENOMEM;
		}
		rt->shm = v;
		rt->shm[rt->nr_shm++] = (struct rst_tree_shm){ .id = r->shm[i].id, .fd = fd };
	}
	return 0;
}


/* After @r's fds: the descriptions it made first, handed to their other users. */
int rst_tree_files_done(struct rst *r)
{
	struct rst_tree *rt = r->tree;
	const struct ckpt_tree *t = rt ? rt->tree : NULL;

	for (size_t i = 0; t && i < t->nr_files; i++) {
		const struct ckpt_tree_file *f = &t->files[i];
		ssize_t first = f->users[0].pid == r->s->process.pid ? fd_index(r->s, f->users[0].fd) : -1;
		int local, e;

		/* Made by ckpt (a socket, a fifo, a ghost file): handed on already (rst_tree_share_local). */
		if (first < 0 || r->local_fds[first] >= 0)
			continue;
		if ((e = ckpt_inject_take_fd(r->inj, f->users[0].fd, &local)) < 0)
			return e;
		for (size_t u = 1; u < f->nr_users; u++) {
			ssize_t n = ckpt_tree_find(t, f->users[u].pid), k;
			struct rst *q;

			if (n <= (ssize_t)r->node || !rt->procs[n].s || (k = fd_index(rt->procs[n].s, f->users[u].fd)) < 0)
				continue; /* checked by the parser: an earlier or unknown user makes nothing */
			q = &rt->procs[n];
			if (q->local_fds[k] >= 0)
				close(q->local_fds[k]);
			q->local_fds[k] = fcntl(local, F_DUPFD_CLOEXEC, 3);
			if (q->local_fds[k] < 0) {
				e = neg_errno();
				close(local);
				return e;
			}
		}
		close(local);
	}
	return 0;
}

int rst_tree_sysv_take(struct rst *r, int shmid, bool made)
{
	struct rst_tree *rt = r->tree;
	struct rst_sysv *v = reallocarray(rt->sysv, rt->nr_sysv + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	rt->sysv = v;
	v[rt->nr_sysv++] = (struct rst_sysv){ .shmid = shmid, .made = made };
	return 0;
}

bool rst_tree_sysv_ours(const struct rst *r, int shmid)
{
	for (size_t i = 0; i < r->tree->nr_sysv; i++)
		if (r->tree->sysv[i].shmid == shmid)
			return true;
	return false;
}

void rst_tree_sysv_finish(struct rst_tree *rt, bool ok)
{
	/* Only what this restore made: a segment it reused is not its own to remove. */
	for (size_t i = 0; i < rt->nr_sysv; i++) {
		int id = rt->sysv[i].shmid;
		bool removed = !ok;

		if (!rt->sysv[i].made)
			continue;
		for (size_t p = 0; ok && p < rt->nr; p++) {
			const struct ckpt_state *s = rt->procs[p].s;
			const struct ckpt_state_sysv_shm *g = s ? ckpt_state_sysv_shm_find(&s->mm, id) : NULL;

			removed |= g && g->removed;
		}
		if (removed && shmctl(id, IPC_RMID, NULL) < 0 && errno != EINVAL && errno != EIDRM)
			pr_warn("cannot remove System V segment %d%s: %s", id,
				ok ? " again (it was removed, still attached)" : " made by the failed restore",
				strerror(errno));
	}
	rt->nr_sysv = 0;
}

void rst_tree_done(struct rst_tree *rt)
{
	free(rt->sysv);
	for (size_t i = 0; i < rt->nr_shm; i++)
		close(rt->shm[i].fd);
	free(rt->shm);
	ckpt_tree_free(rt->tree);
}
