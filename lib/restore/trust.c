/* SPDX-License-Identifier: MIT */
/*
 * Trust (docs/SECURITY.md): a restore never yields more privilege than
 * whoever can have written the checkpoint has.
 *
 *   decide   the provenance of everything the restore reads: every
 *            process's chain (owners and modes of its files), or its page
 *            source (the token file's owner, a local server's uid, and
 *            what the server says of its own checkpoint). Nobody (a group-
 *            or world-writable file, two users, an unknown peer) is
 *            refused. Root's restore of a user's checkpoint is confined to
 *            that user; anyone else's restore may only use root's or their
 *            own checkpoints (the kernel confines them).
 *   check    confined: every process's credentials, capabilities, root
 *            directory, scheduling, limits, ports and System V owners are
 *            what the user could have, refused before anything is made.
 *   confine  confined: the new processes open and map files with the
 *            user's file-system credentials and groups from before their
 *            first file (rst_trust_confine, after prepare), and ckpt makes
 *            the files, directories and socket files of the restore with
 *            them too (owner scope).
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <netinet/tcp.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "restore/restore-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define IOPRIO_CLASS_RT 1

/* The provenance of process @r's checkpoint, merged into @p. */
static int proc_provenance(struct rst *r, struct ckpt_provenance *p)
{
	struct ckpt_provenance one;
	int e;

	e = r->chain ? ckpt_chain_provenance(r->chain, &one) : ckpt_page_source_provenance(r->src, &one);
	if (e == -EPERM) {
		*p = one;
		return e;
	}
	if (e < 0)
		return e; /* the source failed, and said so */
	return ckpt_provenance_merge(p, &one);
}

/* The groups of @uid: its passwd entry's, else the group of a file it owns (@gid). */
static int user_groups(struct rst_owner *o, uid_t uid, gid_t gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n = 64;

	o->uid = uid;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res) {
		snprintf(o->name, sizeof(o->name), "uid %u (%.40s)", (unsigned int)uid, pw.pw_name);
		for (;;) {
			gid_t *g = realloc(o->groups, (size_t)n * sizeof(*g));
			int want = n;

			if (!g)
				return -ENOMEM;
			o->groups = g;
			if (getgrouplist(pw.pw_name, pw.pw_gid, g, &want) >= 0) {
				o->nr_groups = (size_t)want;
				return 0;
			}
			if (want <= n)
				return -EIO;
			n = want;
		}
	}
	snprintf(o->name, sizeof(o->name), "uid %u", (unsigned int)uid);
	if (gid == (gid_t)-1)
		return 0; /* no group at all: any gid in the checkpoint is refused */
	o->groups = malloc(sizeof(*o->groups));
	if (!o->groups)
		return -ENOMEM;
	o->groups[0] = gid;
	o->nr_groups = 1;
	return 0;
}

int rst_trust_decide(struct rst_tree *rt)
{
	struct rst_owner *o = &rt->owner;
	const char *what = rt->o->dir ? rt->o->dir : rt->o->from;
	struct ckpt_provenance p;
	uid_t me = geteuid();
	int e = 0;

	ckpt_provenance_root(&p);
	for (size_t i = 0; e == 0 && i < rt->nr; i++)
		if (rt->procs[i].chain || rt->procs[i].src)
			e = proc_provenance(&rt->procs[i], &p);
	if (e < 0 && e != -EPERM)
		return e;
	if (e == -EPERM) {
		pr_err("cannot restore '%s': %s, so nobody can say whose privileges it may have; keep "
		       "checkpoints where only root or their user can write (docs/SECURITY.md)",
		       what, p.why);
		return -EPERM;
	}
	if (p.kind == CKPT_PROV_ROOT || p.uid == me) {
		pr_debug("'%s' is trusted: %s", what, p.why);
		return 0;
	}
	if (me != 0) {
		pr_err("cannot restore '%s': %s, not you (uid %u) or root; its processes would run as "
		       "you with what that user wrote", what, p.why, (unsigned int)me);
		return -EPERM;
	}
	o->confined = true;
	snprintf(o->why, sizeof(o->why), "%s", p.why);
	if ((e = user_groups(o, p.uid, p.gid)) < 0)
		return e;
	pr_info("'%s' can be written by %s (%s): its processes get that user's privileges at most",
		what, o->name, o->why);
	return 0;
}

void rst_trust_done(struct rst_tree *rt)
{
	free(rt->owner.groups);
	rt->owner.groups = NULL;
}

static bool owner_has_gid(const struct rst_owner *o, gid_t gid)
{
	for (size_t i = 0; i < o->nr_groups; i++)
		if (o->groups[i] == gid)
			return true;
	return false;
}

#define REFUSE(r, fmt, ...)                                                                          \
	(pr_err("pid %d of '%s' is refused: " fmt "; %s can write the checkpoint (%s), and a restore "  \
		"by root gives its processes no more than that user has",                            \
		(r)->s->process.pid, (r)->o->dir ? (r)->o->dir : (r)->o->from, ##__VA_ARGS__,       \
		(r)->tree->owner.name, (r)->tree->owner.why),                                        \
	 -EPERM)

static int check_creds(struct rst *r)
{
	const struct rst_owner *o = &r->tree->owner;
	const struct ckpt_state_creds *c = &r->s->process.creds;
	static const char *const which[] = { "real", "effective", "saved", "file-system" };

	for (int i = 0; i < 4; i++) {
		if (c->uid[i] != o->uid)
			return REFUSE(r, "its %s uid is %u", which[i], (unsigned int)c->uid[i]);
		if (!owner_has_gid(o, c->gid[i]))
			return REFUSE(r, "its %s gid %u is not a group of %s", which[i],
				      (unsigned int)c->gid[i], o->name);
	}
	for (size_t i = 0; i < c->nr_groups; i++)
		if (!owner_has_gid(o, c->groups[i]))
			return REFUSE(r, "its supplementary group %u is not a group of %s",
				      (unsigned int)c->groups[i], o->name);
	if (c->cap_prm | c->cap_eff | c->cap_inh | c->cap_amb)
		return REFUSE(r, "it has capabilities (permitted %#llx, effective %#llx, inheritable "
			      "%#llx, ambient %#llx)", (unsigned long long)c->cap_prm,
			      (unsigned long long)c->cap_eff, (unsigned long long)c->cap_inh,
			      (unsigned long long)c->cap_amb);
	return 0;
}

static int check_task(struct rst *r)
{
	const struct ckpt_state *s = r->s;
	struct rlimit own;

	if (s->process.root && strcmp(s->process.root, "/"))
		return REFUSE(r, "its root directory is '%s' (chroot needs a privilege)", s->process.root);
	for (int i = 0; i < CKPT_STATE_NR_RLIMITS; i++) {
		const struct ckpt_state_rlimit *l = &s->process.rlimits[i];

		if (getrlimit(i, &own) == 0 && own.rlim_max != RLIM_INFINITY &&
		    (l->max == UINT64_MAX || l->max > own.rlim_max))
			return REFUSE(r, "its hard limit %s is above ckpt's own (%llu)",
				      ckpt_state_rlimit_name(i), (unsigned long long)own.rlim_max);
	}
	for (size_t t = 0; t < s->nr_threads; t++) {
		const struct ckpt_state_thread *th = &s->threads[t];

		if (th->has_sched && (th->sched.policy == SCHED_FIFO || th->sched.policy == SCHED_RR ||
				      th->sched.policy == SCHED_DEADLINE))
			return REFUSE(r, "thread %d has the real-time policy %s", th->tid,
				      ckpt_state_sched_policy_name(th->sched.policy));
		if (th->has_sched && th->sched.nice < 0)
			return REFUSE(r, "thread %d has nice %d", th->tid, th->sched.nice);
		if (th->has_ioprio && (th->ioprio >> 13) == IOPRIO_CLASS_RT)
			return REFUSE(r, "thread %d has the real-time I/O class", th->tid);
	}
	return 0;
}

/* The first port a user may bind (net.ipv4.ip_unprivileged_port_start). */
static unsigned int unprivileged_port_start(void)
{
	_cleanup_free_ char *v = NULL;

	if (ckpt_proc_read_sysctl(NULL, "net/ipv4/ip_unprivileged_port_start", &v) < 0)
		return 1024;
	return (unsigned int)strtoul(v, NULL, 10);
}

static int check_sockets_and_shm(struct rst *r)
{
	const struct rst_owner *o = &r->tree->owner;
	const struct ckpt_state *s = r->s;
	unsigned int start = 0;

	for (size_t i = 0; i < s->nr_fds; i++) {
		const struct ckpt_state_fd *f = &s->fds[i];
		const struct ckpt_state_socket *k = &f->sock;
		unsigned int port;

		if (f->kind == CKPT_STATE_FD_TIMERFD &&
		    (f->k.timer.clockid == CLOCK_REALTIME_ALARM || f->k.timer.clockid == CLOCK_BOOTTIME_ALARM))
			return REFUSE(r, "timerfd %d is on an alarm clock (CAP_WAKE_ALARM)", f->fd);
		if (f->kind != CKPT_STATE_FD_SOCKET)
			continue;
		if (k->family == AF_INET || k->family == AF_INET6) {
			if (k->type == SOCK_STREAM && k->state == TCP_ESTABLISHED)
				return REFUSE(r, "fd %d is an established TCP connection (its repair needs "
					      "CAP_NET_ADMIN)", f->fd);
		}
		if (k->has_file && (k->file_uid != o->uid || !owner_has_gid(o, k->file_gid)))
			return REFUSE(r, "the socket file of fd %d is owned by %u:%u", f->fd,
				      (unsigned int)k->file_uid, (unsigned int)k->file_gid);
		if ((k->family != AF_INET && k->family != AF_INET6) || !k->addr_len)
			continue;
		port = k->family == AF_INET ? ntohs(((const struct sockaddr_in *)k->addr)->sin_port)
					    : ntohs(((const struct sockaddr_in6 *)k->addr)->sin6_port);
		if (!start)
			start = unprivileged_port_start();
		if (port && port < start)
			return REFUSE(r, "fd %d is bound to the privileged port %u", f->fd, port);
	}
	{
		uint64_t locked = 0;
		struct rlimit own;

		for (size_t i = 0; i < s->mm.nr_vmas; i++)
			if (s->mm.vmas[i].vmflags & (CKPT_STATE_VMF_LOCKED | CKPT_STATE_VMF_LOCKONFAULT))
				locked += s->mm.vmas[i].end - s->mm.vmas[i].start;
		if (locked && getrlimit(RLIMIT_MEMLOCK, &own) == 0 && own.rlim_cur != RLIM_INFINITY &&
		    locked > own.rlim_cur)
			return REFUSE(r, "%llu bytes of its memory are locked, above ckpt's RLIMIT_MEMLOCK (%llu)",
				      (unsigned long long)locked, (unsigned long long)own.rlim_cur);
	}
	for (size_t i = 0; i < s->mm.nr_sysv_shm; i++) {
		const struct ckpt_state_sysv_shm *m = &s->mm.sysv_shm[i];

		if (m->uid != o->uid || m->cuid != o->uid || !owner_has_gid(o, m->gid) ||
		    !owner_has_gid(o, m->cgid))
			return REFUSE(r, "its System V segment %d is owned by %u:%u (made by %u:%u)",
				      m->shmid, m->uid, m->gid, m->cuid, m->cgid);
	}
	return 0;
}

int rst_trust_check(struct rst *r)
{
	int e;

	if (!r->tree->owner.confined)
		return 0;
	if ((e = check_creds(r)) < 0 || (e = check_task(r)) < 0 || (e = check_sockets_and_shm(r)) < 0)
		return e;
	return 0;
}


static gid_t owner_gid(const struct rst_owner *o)
{
	return o->nr_groups ? o->groups[0] : (gid_t)65534;
}

int rst_trust_confine(struct rst *r)
{
	const struct rst_owner *o = &r->tree->owner;
	int64_t res;

	if (!o->confined)
		return 0;
	rst_reset(r);
	res = RCALL(r, SYS_setgroups, o->nr_groups,
		    o->nr_groups ? rst_put(r, o->groups, o->nr_groups * sizeof(gid_t)) : 0);
	if (res == 0) {
		RCALL(r, SYS_setfsgid, owner_gid(o));
		RCALL(r, SYS_setfsuid, o->uid);
		res = RCALL(r, SYS_setfsuid, (uint64_t)-1);
		res = res == (int64_t)o->uid ? 0 : res < 0 ? res : -EPERM;
	}
	if (res < 0)
		pr_err("cannot give pid %d the file-system credentials of %s: %s", r->pid, o->name,
		       errstr((int)res));
	return (int)res;
}

/*
 * The calling thread's effective ids and groups become the owner's (raw
 * system calls: this thread only, not glibc's all-threads broadcast). The
 * effective capabilities go with the effective uid 0; the real and saved
 * uid 0 bring them back. Sockets made meanwhile carry the owner's
 * credentials: their privileged options, ports and netlink operations are
 * checked against the owner's, at once and for as long as they live.
 */
int rst_owner_enter(const struct rst_tree *rt, struct thread_ids *sc)
{
	const struct rst_owner *o = &rt->owner;
	int e;

	sc->active = false;
	if (!o->confined)
		return 0;
	e = thread_ids_become(sc, o->uid, owner_gid(o), o->groups, o->nr_groups, true);
	if (e < 0)
		pr_err("cannot act as %s: %s", o->name, errstr(e));
	return e;
}

const char *rst_trust_hint(const struct rst *r, int e)
{
	static __thread char buf[160];
	const struct rst_owner *o = &r->tree->owner;

	if (!o->confined || (e != -EACCES && e != -EPERM))
		return "";
	snprintf(buf, sizeof(buf), " (with the file-system credentials of %s, whose checkpoint it is: "
		 "docs/SECURITY.md)", o->name);
	return buf;
}

void rst_owner_leave(struct thread_ids *sc)
{
	thread_ids_restore(sc);
}

/* Is @cap in ckpt's effective set? */
static bool own_cap(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };

	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

int rst_trust_restorer(const struct rst_tree *rt)
{
	_cleanup_free_ char *uffd = NULL;

	if (geteuid() == 0)
		return 0;
	/* PR_SET_MM_MAP (brk, arguments, auxv, exe) and clone3 set_tid. */
	if (!own_cap(CAP_CHECKPOINT_RESTORE) && !own_cap(CAP_SYS_ADMIN)) {
		pr_err("restoring as uid %u needs CAP_CHECKPOINT_RESTORE (to set the memory layout's "
		       "fields and keep the process ids): run as root, or give ckpt the capability "
		       "(setcap cap_checkpoint_restore+ep ckpt)", (unsigned int)geteuid());
		return -EPERM;
	}
	/* The process's own userfaultfd must take faults of the kernel too (read(2) into its memory). */
	if (rt->o->lazy && !own_cap(CAP_SYS_PTRACE) &&
	    (ckpt_proc_read_sysctl(NULL, "vm/unprivileged_userfaultfd", &uffd) < 0 || atoi(uffd) != 1)) {
		pr_err("a lazy restore as uid %u needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1: "
		       "without them a userfaultfd serves only faults of user code, and a system call "
		       "that touches a missing page fails; restore without --lazy",
		       (unsigned int)geteuid());
		return -EPERM;
	}
	return 0;
}
