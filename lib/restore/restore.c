/* SPDX-License-Identifier: MIT */
/*
 * The restore pipeline:
 *   open      the chain and its state documents
 *   check     refuse what cannot be restored, before a process exists
 *   stdio     --inherit-fd, fifos opened again (waiting for their other side),
 *             pipes of fds 0-2 with no way to reconnect them refused
 *   spawn     fork (or clone3 with set_tid) a child that waits, seize it
 *   prepare   scratch area and code page, the child emptied
 *   session   its own session or process group when it had one (--detach:
 *             a session of its own), before the files (a terminal)
 *   mm        vDSO moved, mappings made, pages written, PR_SET_MM_MAP
 *   files     fds, cwd, root
 *   task      the process's signals, timers, limits
 *   threads   the leader's own state (rseq, robust list, tid address, ...);
 *             every other thread made with its id (clone3 set_tid) from
 *             the leader, and its own state set in it
 *   seccomp   filters and strict mode of every thread, suspended (ptrace)
 *             until release so they cannot block what follows
 *   creds     groups, gids, capabilities, securebits, uids, no_new_privs,
 *             then the parent-death signal: in every thread
 *   regs      registers, xstate, mask of every thread: applied by release,
 *             which lets them run
 *   sched     policy, priority, nice, timer slack of every thread, from ckpt,
 *             once the process is no longer pinned to ckpt's CPU
 * A failure after spawn kills the child: nothing half-restored runs.
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "compat/syscalls.h"
#include "restore/restore-internal.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

void rst_init(struct rst *r, struct rst_tree *rt, size_t node)
{
	memset(r, 0, sizeof(*r));
	r->o = rt->o;
	r->st = rt->st;
	r->tree = rt;
	r->node = node;
	r->lazy_remote_fd = -1;
}

/*
 * Local images: mm.json as text, its mappings read without a JSON object
 * each (ckpt_state_from_docs_mm_text); -EAGAIN when that cannot be.
 */
static int load_state_mm_text(struct rst *r, json_object *const docs[CKPT_STATE_NR_DOCS], char *why,
			      size_t whylen)
{
	struct ckpt_chain *c = rst_chain(r);
	struct ckpt_image *img = c ? ckpt_chain_image(c, 0) : NULL;
	_cleanup_free_ void *text = NULL;
	size_t len;
	int e;

	if (!img || !ckpt_image_has_file(img, ckpt_state_doc_name(CKPT_STATE_DOC_MM)))
		return -EAGAIN;
	e = ckpt_image_read_file(img, ckpt_state_doc_name(CKPT_STATE_DOC_MM), &text, &len);
	if (e < 0)
		return e; /* lib/image said why */
	return ckpt_state_from_docs_mm_text(docs, text, len, why, whylen, &r->s);
}

/* The four state documents, from the chain or the page source. */
static int load_state(struct rst *r, const char *where)
{
	json_object *docs[CKPT_STATE_NR_DOCS] = { 0 };
	char why[256] = "";
	int e = 0;

	for (int d = 0; d < CKPT_STATE_NR_DOCS && e == 0; d++) {
		if (d == CKPT_STATE_DOC_MM)
			continue;
		e = r->src ? ckpt_page_source_get_json(r->src, ckpt_state_doc_name(d), &docs[d])
			   : ckpt_image_get_json(ckpt_chain_image(r->chain, 0), ckpt_state_doc_name(d), &docs[d]);
		if (e == -ENOENT && r->src)
			pr_err("'%s' has no %s", where, ckpt_state_doc_name(d));
	}
	if (e == 0) {
		e = load_state_mm_text(r, docs, why, sizeof(why));
		if (e == -EAGAIN) {
			/* As a JSON document: any error is said as ever. */
			const char *mm = ckpt_state_doc_name(CKPT_STATE_DOC_MM);

			e = r->src ? ckpt_page_source_get_json(r->src, mm, &docs[CKPT_STATE_DOC_MM])
				   : ckpt_image_get_json(ckpt_chain_image(r->chain, 0), mm, &docs[CKPT_STATE_DOC_MM]);
			if (e == -ENOENT && r->src)
				pr_err("'%s' has no %s", where, mm);
			if (e == 0)
				e = ckpt_state_from_docs(docs, why, sizeof(why), &r->s);
		}
		if (e < 0 && why[0])
			pr_err("'%s' is corrupt: %s", where, why);
	}
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		if (docs[d])
			json_object_put(docs[d]);
	if (e < 0)
		return e;
	r->max_fd = 2;
	for (size_t i = 0; i < r->s->nr_fds; i++)
		r->max_fd = MAX(r->max_fd, r->s->fds[i].fd);
	r->next_high_fd = r->max_fd + 1;
	return 0;
}

/*
 * Process @r's checkpoint, @sub under the one restored ("." for the root,
 * "proc-PID"): a local eager restore reads its chain with the fast
 * iterator; a lazy or remote one, a page source (the documents, and the
 * pages restore writes before it runs).
 */
int rst_open(struct rst *r, const char *sub)
{
	const struct ckpt_restore_opts *o = r->o;
	bool top = !strcmp(sub, ".");
	_cleanup_free_ char *where = NULL;
	int e;

	if (o->dir && (top ? !(r->dir = strdup(o->dir)) : asprintf(&r->dir, "%s/%s", o->dir, sub) < 0)) {
		r->dir = NULL;
		return -ENOMEM;
	}
	if (o->from)
		e = ckpt_page_source_open_remote_proc(o->from, top ? NULL : sub, o->token_file, NULL, &r->src);
	else if (o->lazy)
		/* What it writes before the process runs is listed range by range: the rest is the server's. */
		e = ckpt_page_source_open_local(r->dir, &(struct ckpt_page_source_opts){ .defer_resolve = true },
						&r->src);
	else
		e = ckpt_chain_open(r->dir, NULL, &r->chain);
	if (e < 0)
		return e; /* lib/image or lib/net said what and why */
	if (!r->dir && (top ? !(where = strdup(o->from)) : asprintf(&where, "%s/%s", o->from, sub) < 0)) {
		where = NULL;
		return -ENOMEM;
	}
	return load_state(r, r->dir ? r->dir : where);
}

/* The content id of the newest checkpoint of @r's chain, as text; -EBADMSG: it says none. */
int rst_image_id(struct rst *r, char ret[CKPT_IMAGE_ID_STR_LEN + 1])
{
	_cleanup_json_ json_object *sum = NULL;
	struct ckpt_chain *c = rst_chain(r);
	json_object *id;
	int e;

	if (c) {
		ckpt_image_id_format(&ckpt_image_inventory(ckpt_chain_image(c, 0))->id, ret);
		return 0;
	}
	if ((e = ckpt_page_source_get_json(r->src, CKPT_PAGE_SOURCE_SUMMARY, &sum)) < 0)
		return e;
	if (!json_object_object_get_ex(sum, "id", &id) || !json_object_is_type(id, json_type_string) ||
	    strlen(json_object_get_string(id)) != CKPT_IMAGE_ID_STR_LEN)
		return -EBADMSG;
	memcpy(ret, json_object_get_string(id), CKPT_IMAGE_ID_STR_LEN + 1);
	return 0;
}

static size_t chain_length(struct rst *r)
{
	json_object *sum = NULL, *chain;
	size_t n = 0;

	if (rst_chain(r))
		return ckpt_chain_length(rst_chain(r));
	/* The source's summary lists the chain. */
	if (ckpt_page_source_get_json(r->src, CKPT_PAGE_SOURCE_SUMMARY, &sum) == 0 &&
	    json_object_object_get_ex(sum, "chain", &chain))
		n = json_object_array_length(chain);
	if (sum)
		json_object_put(sum);
	return n;
}

/* The child: nothing runs in it but this, until ckpt has rebuilt it. */
static void __attribute__((noreturn)) child_wait(pid_t parent)
{
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	for (;;)
		pause();
}

static pid_t clone_with_pid(pid_t want)
{
	struct clone_args args = { .exit_signal = SIGCHLD, .set_tid = (uintptr_t)&want, .set_tid_size = 1 };

	return (pid_t)sys_clone3(&args, sizeof(args));
}

/*
 * The same pid when it is asked for (--restore-pid, or threads), else
 * when it is free: glibc keeps the main thread's tid, which is the pid, in
 * struct pthread (pthread_self()), and uses it for calls on the thread
 * itself (pthread_sigqueue, pthread_getschedparam/setschedparam,
 * pthread_setaffinity_np: ESRCH, or worse another process with that id)
 * and in mutex owner words (PI and robust mutexes, which the kernel reads);
 * nothing in userspace can rewrite them all. A single-threaded process
 * whose pid is taken (still running, --leave-running) gets a new one, with
 * a warning that says what of glibc is then stale.
 */
static int spawn(struct rst *r)
{
	pid_t parent = getpid(), pid, want = r->s->process.pid;
	char who[128];

	if (r->same_ids || r->pid_if_free) {
		pid = clone_with_pid(want);
		for (int tries = 0; pid < 0 && errno == EEXIST && tries < RST_LIMBO_TRIES && rst_id_in_limbo(want);
		     tries++) {
			usleep(10000);
			pid = clone_with_pid(want);
		}
		if (pid < 0 && r->same_ids) {
			int e = neg_errno();

			if (e == -EEXIST) {
				rst_id_holder(want, who, sizeof(who));
				pr_err("cannot create a process with pid %d: it is taken (by %s)", want, who);
			} else {
				pr_err("cannot create a process with pid %d: %s", want, errstr(e));
			}
			return e;
		}
		if (pid < 0) {
			int e = neg_errno();

			if (e == -EEXIST)
				rst_id_holder(want, who, sizeof(who));
			else
				snprintf(who, sizeof(who), "%s", errstr(e));
			pr_warn("pid %d is taken (%s%s): the process gets a new pid, and glibc's cached "
				"thread id of its main thread (pthread_self()) is then stale: "
				"pthread_sigqueue, pthread_*schedparam, pthread_setaffinity_np on itself "
				"fail, robust and PI mutexes it holds name the old id",
				want, e == -EEXIST ? "by " : "", who);
		}
	} else {
		pid = -1;
	}
	if (pid < 0)
		pid = fork();
	if (pid < 0)
		return neg_errno();
	if (pid == 0)
		child_wait(parent);
	r->pid = pid;
	return 0;
}

/* Every process made so far, killed (a zombie goes with its parent): nothing half-restored runs. */
static void kill_tree(struct rst_tree *rt)
{
	for (size_t i = rt->nr; i-- > 0;) {
		struct rst *r = &rt->procs[i];

		if (r->pid > 0)
			kill(r->pid, SIGKILL);
		if (r->inj) {
			(void)ckpt_inject_release(r->inj);
			r->inj = NULL;
		}
	}
	/* Only the root is our child: the others are reaped by their parents' ends. */
	if (rt->procs[0].pid > 0)
		while (waitpid(rt->procs[0].pid, NULL, 0) < 0 && errno == EINTR)
			;
	for (size_t i = 0; i < rt->nr; i++)
		rt->procs[i].pid = 0;
}

static void rst_done(struct rst *r)
{
	rst_files_done(r);
	ckpt_state_free(r->s);
	ckpt_chain_close(r->chain);
	ckpt_page_source_close(r->src);
	free(r->shm);
	free(r->dir);
}

/* The root: ckpt's child, seized, in its session or group, before anything is made in it. */
static int seize_root(struct rst *r)
{
	int e = ckpt_inject_seize(r->pid, CKPT_INJECT_NO_XSTATE | CKPT_INJECT_EXITKILL, &r->inj);
	struct rlimit rl;

	if (e < 0)
		return e;
	/* Room for the fds the checkpoint uses, above which ckpt parks its own. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max;
		(void)prlimit(r->pid, RLIMIT_NOFILE, &rl, NULL);
	}
	return rst_session(r);
}

static int build(struct rst *r)
{
	int64_t res;
	int e;

	/* Confined: every file it opens or maps from here on, with the owner's credentials. */
	if ((e = rst_prepare(r)) < 0 || (e = rst_trust_confine(r)) < 0 || (e = rst_mm(r)) < 0 ||
	    (e = rst_tree_mm_done(r)) < 0)
		return e;
	{
		uint64_t t0 = now_ns(), before = r->st->pages_data + r->st->pages_zero;

		e = rst_pages(r);
		r->st->pages_ns += now_ns() - t0;
		if (e < 0)
			return e;
		if (r->lazy)
			r->lazy->eager_pages = r->st->pages_data + r->st->pages_zero - before;
	}
	if (r->o->lazy && (e = rst_lazy_register(r)) < 0)
		return e;
	/* The threads once the process's own state is there; credentials drop last. */
	if ((e = rst_mm_finish(r)) < 0 || (e = rst_files(r)) < 0 || (e = rst_tree_files_done(r)) < 0 ||
	    (e = rst_task(r)) < 0 || (e = rst_thread(r, 0)) < 0 || (e = rst_threads(r)) < 0 ||
	    (e = rst_seccomp(r)) < 0 || (e = rst_creds(r)) < 0 || (e = rst_regs(r)) < 0)
		return e;
	/* A process that was stopped by job control is restored stopped. */
	if (r->s->process.job_stopped || r->o->leave_stopped) {
		res = RCALL(r, SYS_kill, (uint64_t)r->pid, SIGSTOP);
		if (res < 0)
			pr_warn("cannot stop pid %d again: %s", r->pid, errstr((int)res));
	}
	return 0;
}

/* Atomically (temp + rename), before the process runs: whoever reads it finds the pid. */
static int write_pidfile(const char *path, pid_t pid)
{
	char tmp[PATH_MAX], buf[32];
	int fd, e;

	snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, getpid());
	snprintf(buf, sizeof(buf), "%d\n", pid);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		e = neg_errno();
		goto fail;
	}
	e = write_all(fd, buf, strlen(buf));
	close(fd);
	if (e == 0 && rename(tmp, path) < 0)
		e = neg_errno();
	if (e == 0)
		return 0;
	unlink(tmp);
fail:
	pr_err("cannot write the pid file '%s': %s", path, errstr(e));
	return e;
}

/* Everything that can be refused before a process exists, for each process. */
static int check_all(struct rst_tree *rt)
{
	bool tree = rt->nr > 1;
	int e;

	for (size_t i = 0; i < rt->nr; i++) {
		struct rst *r = &rt->procs[i];

		if (!r->s)
			continue;
		r->same_ids = rt->o->restore_pid || r->s->nr_threads > 1 || tree;
		r->pid_if_free = true;
		if ((e = rst_check(r)) < 0 || (e = rst_trust_check(r)) < 0)
			return e;
	}
	/* The zombies' pids too: they come back as they were. */
	for (size_t i = 1; i < rt->nr; i++) {
		char who[128];

		if (rt->procs[i].s || !rst_id_taken(rt->tree->nodes[i].pid))
			continue;
		rst_id_holder(rt->tree->nodes[i].pid, who, sizeof(who));
		pr_err("pid %d (a zombie of the tree) is taken (by %s): a process tree is restored with "
		       "the pids it had", rt->tree->nodes[i].pid, who);
		return -EEXIST;
	}
	/* The pipes inside the tree first: theirs are no pipes to the outside. */
	for (size_t i = 0; i < rt->nr; i++)
		if (rt->procs[i].s && (e = rst_files_alloc(&rt->procs[i])) < 0)
			return e;
	{
		struct thread_ids sc;

		/* Pipes and socket pairs carry their maker's credentials (SO_PEERCRED). */
		if ((e = rst_owner_enter(rt, &sc)) < 0)
			return e;
		e = rst_tree_pipes(rt);
		rst_owner_leave(&sc);
		if (e < 0)
			return e;
	}
	for (size_t i = 0; i < rt->nr; i++) {
		struct thread_ids sc;

		if (!rt->procs[i].s)
			continue;
		/* Files, directories, sockets and socket files ckpt makes: the owner's, when confined. */
		if ((e = rst_owner_enter(rt, &sc)) < 0)
			return e;
		e = rst_files_prepare(&rt->procs[i]);
		rst_owner_leave(&sc);
		if (e < 0)
			return e;
		rst_tree_share_local(rt, i);
	}
	return 0;
}

/* Every live process as a single one is built, in tree order (parents first). */
static int build_all(struct rst_tree *rt)
{
	int e = 0;

	for (size_t i = 0; e == 0 && i < rt->nr; i++) {
		struct rst *r = &rt->procs[i];
		struct rst_cpu *cpu;

		if (!r->s)
			continue;
		cpu = rst_cpu_together(r->pid);
		e = build(r);
		rst_cpu_apart(cpu, r);
		if (e < 0 && rt->nr > 1)
			pr_err("cannot restore pid %d (%s) of the tree", r->s->process.pid, r->s->process.comm);
	}
	for (size_t i = 0; e == 0 && i < rt->nr; i++)
		if (rt->procs[i].s)
			e = rst_sched(&rt->procs[i]);
	return e;
}

/* All of them run: the last made first, the root last. */
static int release_all(struct rst_tree *rt)
{
	int e = 0;

	for (size_t i = rt->nr; i-- > 0;) {
		struct rst *r = &rt->procs[i];
		int k;

		if (!r->inj)
			continue;
		k = ckpt_inject_release(r->inj);
		r->inj = NULL;
		if (k < 0 && e == 0) {
			pr_err("cannot let pid %d run: %s", r->pid, errstr(k));
			e = k;
		}
	}
	return e;
}

/* Lazy: a record per live process for the caller's server, each bound to its process. */
static int lazy_alloc(struct rst_tree *rt, struct ckpt_restore_lazy *lazy)
{
	size_t n = 0;

	for (size_t i = 0; i < rt->nr; i++)
		n += rt->procs[i].s != NULL;
	lazy->procs = calloc(n, sizeof(*lazy->procs));
	if (!lazy->procs)
		return -ENOMEM;
	for (size_t i = 0; i < rt->nr; i++) {
		struct rst *r = &rt->procs[i];
		struct ckpt_restore_lazy_proc *p;

		if (!r->s)
			continue;
		p = &lazy->procs[lazy->nr++];
		p->uffd = p->parked_fd = -1;
		snprintf(p->dir, sizeof(p->dir), "%s", rt->tree ? rt->tree->nodes[i].dir : ".");
		/* What the server must find when it opens the checkpoint again (trust.c judged it). */
		if (rst_image_id(r, p->id) < 0)
			p->id[0] = '\0';
		if (ckpt_page_source_provenance(r->src, &p->prov) < 0)
			return -EPERM; /* judged already: it cannot fail now but by a change */
		r->lazy = p;
	}
	return 0;
}

int ckpt_restore_run(const struct ckpt_restore_opts *o, struct ckpt_restore_stats *st,
		     struct ckpt_restore_lazy *lazy)
{
	struct rst_tree rt = { .o = o, .st = st };
	struct rst *root;
	uint64_t t0 = now_ns();
	int e;

	memset(st, 0, sizeof(*st));
	if (o->lazy) {
		if (!lazy)
			return -EINVAL;
		memset(lazy, 0, sizeof(*lazy));
	}
	if (!o->dir == !o->from) {
		pr_err("restore needs a checkpoint directory or a page server, one of them");
		return -EINVAL;
	}
	rt.procs = calloc(1, sizeof(*rt.procs));
	if (!rt.procs)
		return -ENOMEM;
	rt.nr = 1;
	rst_init(&rt.procs[0], &rt, 0);
	if ((e = rst_open(&rt.procs[0], ".")) < 0 || (e = rst_tree_open(&rt)) < 0 ||
	    (e = rst_trust_decide(&rt)) < 0 || (e = rst_trust_restorer(&rt)) < 0 || (o->lazy && (e = lazy_alloc(&rt, lazy)) < 0))
		goto out;
	root = &rt.procs[0];
	st->chain_length = chain_length(root);
	if ((e = check_all(&rt)) < 0)
		goto out;
	st->check_ns = now_ns() - t0;
	if ((e = spawn(root)) < 0)
		goto out;

	e = seize_root(root);
	if (e == 0)
		e = rst_tree_create(&rt);
	if (e == 0)
		e = build_all(&rt);
	if (e < 0) {
		rst_tree_sysv_finish(&rt, false);
		pr_err("the restore of '%s' failed: the new process%s (pid %d%s) %s killed",
		       o->dir ? o->dir : o->from, rt.nr > 1 ? "es" : "", root->pid,
		       rt.nr > 1 ? " and its descendants" : "", rt.nr > 1 ? "were" : "was");
		kill_tree(&rt);
		goto out;
	}
	if (o->pidfile && (e = write_pidfile(o->pidfile, root->pid)) < 0) {
		kill_tree(&rt);
		rst_tree_sysv_finish(&rt, false);
		goto out;
	}
	/* Every process has its segments: those removed at the dump are removed again. */
	rst_tree_sysv_finish(&rt, true);
	e = release_all(&rt);
	if (e < 0) {
		kill_tree(&rt);
		goto out;
	}
	st->pid = root->pid;
	for (size_t i = 0; i < rt.nr; i++) {
		st->threads += rt.procs[i].s ? rt.procs[i].s->nr_threads : 0;
		st->processes++;
	}
	st->build_ns = now_ns() - t0 - st->check_ns;
	st->total_ns = now_ns() - t0;
	/* Each process's open page source goes to its server, which need not open it again. */
	for (size_t i = 0; lazy && i < rt.nr; i++)
		if (rt.procs[i].lazy)
			rt.procs[i].lazy->src = TAKE_PTR(rt.procs[i].src);
out:
	if (e < 0 && lazy)
		ckpt_restore_lazy_done(lazy);
	for (size_t i = 0; i < rt.nr; i++)
		rst_done(&rt.procs[i]);
	rst_tree_done(&rt);
	rst_trust_done(&rt);
	free(rt.procs);
	return e;
}
