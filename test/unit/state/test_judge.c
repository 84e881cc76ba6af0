/* SPDX-License-Identifier: MIT */
/*
 * ckpt_state_unrestorable, the one judge of dump and restore: every refusal
 * that depends on the checkpoint's content alone, each on a state that is
 * restorable without it (the control), so that each case shows its rule.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt/state.h>

/* A restorable single-threaded process: heap, a file, stdin a pipe pair. */
static struct ckpt_state *base(void)
{
	struct ckpt_state *s;

	cr_assert_eq(ckpt_state_new(&s), 0);
	s->process.pid = 4242;
	s->process.cwd = strdup("/home/u");
	s->process.root = strdup("/");
	s->nr_threads = 1;
	s->threads = calloc(1, sizeof(*s->threads));
	s->threads[0].tid = 4242;
	strcpy(s->threads[0].comm, "app");
	s->mm.nr_vmas = 2;
	s->mm.vmas = calloc(2, sizeof(*s->mm.vmas));
	s->mm.vmas[0] = (struct ckpt_state_vma){ .start = 0x1000, .end = 0x3000,
						 .kind = CKPT_STATE_VMA_FILE, .path = strdup("/bin/app") };
	s->mm.vmas[1] = (struct ckpt_state_vma){ .start = 0x10000, .end = 0x20000,
						 .kind = CKPT_STATE_VMA_HEAP };
	s->nr_fds = 1;
	s->fds = calloc(1, sizeof(*s->fds));
	s->fds[0] = (struct ckpt_state_fd){ .fd = 3, .kind = CKPT_STATE_FD_REGULAR,
					    .path = strdup("/home/u/log") };
	cr_assert_eq(ckpt_state_fd_judge(&s->fds[0]), 0);
	return s;
}

static struct ckpt_state_fd *add_fd(struct ckpt_state *s, enum ckpt_state_fd_kind kind, const char *path)
{
	struct ckpt_state_fd *f;

	s->fds = realloc(s->fds, (s->nr_fds + 1) * sizeof(*s->fds));
	cr_assert_not_null(s->fds);
	f = &s->fds[s->nr_fds++];
	*f = (struct ckpt_state_fd){ .fd = 2 + (int)s->nr_fds, .kind = kind, .path = strdup(path) };
	return f;
}

static struct ckpt_state_vma *add_vma(struct ckpt_state *s, enum ckpt_state_vma_kind kind, bool shared,
				      bool deleted, const char *path)
{
	struct ckpt_state_vma *v;

	s->mm.vmas = realloc(s->mm.vmas, (s->mm.nr_vmas + 1) * sizeof(*s->mm.vmas));
	cr_assert_not_null(s->mm.vmas);
	v = &s->mm.vmas[s->mm.nr_vmas++];
	*v = (struct ckpt_state_vma){ .start = 0x100000, .end = 0x104000, .kind = kind, .shared = shared,
				      .deleted = deleted, .path = path ? strdup(path) : NULL };
	return v;
}

/* Exactly one issue, of @kind, whose what and reason hold @what and @why. */
static void expect_one(const struct ckpt_state *s, enum ckpt_state_issue_kind kind, const char *what,
		       const char *why)
{
	_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = NULL;

	cr_assert_eq(ckpt_state_unrestorable(s, &l), 0);
	cr_assert_eq(l->nr, 1, "%zu issues (first: %s: %s)", l->nr, l->nr ? l->v[0].what : "",
		     l->nr ? l->v[0].reason : "");
	cr_expect_eq(l->v[0].kind, kind, "%s", l->v[0].what);
	cr_expect(strstr(l->v[0].what, what), "what: '%s', wanted '%s'", l->v[0].what, what);
	cr_expect(strstr(l->v[0].reason, why), "reason: '%s', wanted '%s'", l->v[0].reason, why);
}

static void expect_none(const struct ckpt_state *s)
{
	_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = NULL;

	cr_assert_eq(ckpt_state_unrestorable(s, &l), 0);
	cr_expect_eq(l->nr, 0, "%s: %s", l->nr ? l->v[0].what : "", l->nr ? l->v[0].reason : "");
}

Test(state_judge, the_base_is_restorable)
{
	_cleanup_state_ struct ckpt_state *s = base();

	expect_none(s);
}

Test(state_judge, threads_are_restorable)
{
	_cleanup_state_ struct ckpt_state *s = base();

	s->threads = realloc(s->threads, 3 * sizeof(*s->threads));
	memset(&s->threads[1], 0, 2 * sizeof(*s->threads));
	s->threads[1].tid = 4243;
	strcpy(s->threads[1].comm, "worker");
	s->threads[2].tid = 4244;
	strcpy(s->threads[2].comm, "gc");
	s->nr_threads = 3;
	expect_none(s);
}

Test(state_judge, a_main_thread_that_exited)
{
	_cleanup_state_ struct ckpt_state *s = base();

	s->threads[0].tid = 4243;
	strcpy(s->threads[0].comm, "worker");
	expect_one(s, CKPT_STATE_ISSUE_PROCESS, "process 4242 (1 threads left, the first 4243 worker)",
		   "main thread has exited");
}

Test(state_judge, memfd_not_mapped)
{
	_cleanup_state_ struct ckpt_state *s = base();
	struct ckpt_state_fd *f = add_fd(s, CKPT_STATE_FD_MEMFD, "/memfd:data");
	struct ckpt_state_vma *v;

	f->deleted = true;
	f->id = (struct ckpt_state_identity){ .dev_minor = 1, .ino = 77, .size = 3 * 4096 };
	cr_assert_eq(ckpt_state_fd_judge(f), 0);
	expect_one(s, CKPT_STATE_ISSUE_FD, "fd 4 (/memfd:data)", "memfd that is not mapped");

	/* Its contents saved in a blob: restorable. */
	f->blob = strdup("blob-fd-4");
	expect_none(s);
	free(f->blob);
	f->blob = NULL;

	/* A shared mapping of the same memfd holds its contents: restorable. */
	v = add_vma(s, CKPT_STATE_VMA_MEMFD, true, true, "/memfd:data");
	v->has_identity = true;
	v->id = s->fds[1].id;
	{
		_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = NULL;

		cr_assert_eq(ckpt_state_unrestorable(s, &l), 0);
		cr_expect_eq(l->nr, 0, "%s: %s", l->nr ? l->v[0].what : "", l->nr ? l->v[0].reason : "");
	}
}

Test(state_judge, empty_memfd_is_fine)
{
	_cleanup_state_ struct ckpt_state *s = base();
	_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = NULL;
	struct ckpt_state_fd *f = add_fd(s, CKPT_STATE_FD_MEMFD, "/memfd:empty");

	f->id.ino = 78;
	cr_assert_eq(ckpt_state_fd_judge(f), 0);
	cr_assert_eq(ckpt_state_unrestorable(s, &l), 0);
	cr_expect_eq(l->nr, 0);
}

Test(state_judge, files_of_proc_pid)
{
	static const struct {
		const char *path;
		bool refused;
		const char *rest; /* what is reopened in the restored process's /proc */
	} cases[] = {
		{ "/proc/4242/maps", false, "/maps" },
		{ "/proc/4242", false, "" },
		{ "/proc/self/status", false, "/status" },
		{ "/proc/4242/task/4242/stat", false, "/task/4242/stat" },
		{ "/proc/4242/task/4243/stat", true, NULL },
		{ "/proc/thread-self/comm", true, NULL },
		{ "/proc/1", true, NULL },
		{ "/proc/42420/maps", true, NULL },
		{ "/proc/424/maps", true, NULL },
		{ "/proc/meminfo", false, NULL },
		{ "/proc/sys/kernel/pid_max", false, NULL },
		{ "/proc/selfish", false, NULL },
		{ "/procx/4242/maps", false, NULL },
		{ "/home/u/proc/4242", false, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		_cleanup_state_ struct ckpt_state *s = base();
		_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = NULL;
		struct ckpt_state_fd *f = add_fd(s, CKPT_STATE_FD_REGULAR, cases[i].path);
		const char *rest = ckpt_state_proc_own_rest(cases[i].path, 4242);

		cr_assert_eq(ckpt_state_fd_judge_for(f, 4242), 0);
		cr_expect_eq(f->restorable, !cases[i].refused, "%s", cases[i].path);
		cr_assert_eq(ckpt_state_unrestorable(s, &l), 0);
		cr_expect_eq(l->nr, cases[i].refused ? 1u : 0u, "%s", cases[i].path);
		if (cases[i].refused && l->nr == 1)
			cr_expect(strstr(l->v[0].reason, "another process's (or thread's) /proc"), "%s",
				  l->v[0].reason);
		if (cases[i].rest)
			cr_expect(rest && !strcmp(rest, cases[i].rest), "%s: '%s'", cases[i].path,
				  rest ? rest : "(null)");
		else
			cr_expect_null(rest, "%s: '%s'", cases[i].path, rest);
	}
	/* Without the pid, a number is another process's. */
	{
		_cleanup_state_ struct ckpt_state *s = base();
		struct ckpt_state_fd *f = add_fd(s, CKPT_STATE_FD_REGULAR, "/proc/4242/maps");

		cr_assert_eq(ckpt_state_fd_judge(f), 0);
		cr_expect_not(f->restorable);
		cr_expect_null(ckpt_state_proc_own_rest("/proc/4242/maps", 0));
	}
}

/* A deleted working or root directory is made again by restore; one in /proc is refused. */
Test(state_judge, deleted_or_proc_cwd_and_root)
{
	_cleanup_state_ struct ckpt_state *s = base();

	free(s->process.cwd);
	s->process.cwd = strdup("/tmp/work (deleted)");
	expect_none(s);
	free(s->process.cwd);
	s->process.cwd = strdup("/proc/4242/fd");
	expect_one(s, CKPT_STATE_ISSUE_PROCESS, "working directory '/proc/4242/fd'", "/proc");
	free(s->process.cwd);
	s->process.cwd = strdup("/home/u");
	free(s->process.root);
	s->process.root = strdup("/srv/jail (deleted)");
	expect_none(s);
	free(s->process.root);
	s->process.root = strdup("/proc/1/root");
	expect_one(s, CKPT_STATE_ISSUE_PROCESS, "root directory '/proc/1/root'", "/proc");
}

Test(state_judge, deleted_open_files)
{
	_cleanup_state_ struct ckpt_state *s = base();
	struct ckpt_state_fd *f = add_fd(s, CKPT_STATE_FD_DIRECTORY, "/tmp/gone");

	f->deleted = true;
	cr_assert_eq(ckpt_state_fd_judge(f), 0);
	expect_one(s, CKPT_STATE_ISSUE_FD, "fd 4 (/tmp/gone)", "deleted");
	/* A directory's contents are never saved; a regular file's are (a ghost file). */
	f->kind = CKPT_STATE_FD_REGULAR;
	cr_assert_eq(ckpt_state_fd_judge(f), 0);
	expect_one(s, CKPT_STATE_ISSUE_FD, "fd 4 (/tmp/gone)", "contents are not saved");
	f->blob = strdup("blob-fd-4");
	cr_assert_eq(ckpt_state_fd_judge(f), 0);
	cr_expect(f->restorable);
	expect_none(s);
}

/* Over --ghost-limit the dump records why, with the size: the judge says it in those words. */
Test(state_judge, ghost_over_the_limit_keeps_its_reason)
{
	_cleanup_state_ struct ckpt_state *s = base();
	struct ckpt_state_fd *f = add_fd(s, CKPT_STATE_FD_REGULAR, "/tmp/big");

	f->deleted = true;
	f->restorable = false;
	f->reason = strdup("not restorable: a deleted file of 2000000 bytes, over the ghost limit of "
			   "1048576 bytes (--ghost-limit)");
	expect_one(s, CKPT_STATE_ISSUE_FD, "fd 4 (/tmp/big)", "2000000 bytes, over the ghost limit of 1048576");
}

/* The judge applies the policy of now, not only what the checkpoint recorded. */
Test(state_judge, fds_are_judged_again)
{
	_cleanup_state_ struct ckpt_state *s = base();
	struct ckpt_state_fd *f = add_fd(s, CKPT_STATE_FD_SOCKET, "socket:[5]");

	f->restorable = true; /* recorded by an older, mistaken policy */
	expect_one(s, CKPT_STATE_ISSUE_FD, "fd 4 (socket:[5])", "a socket");
	/* ... and a refusal the checkpoint recorded stays one. */
	f->kind = CKPT_STATE_FD_PIPE;
	f->restorable = false;
	f->reason = strdup("not restorable yet: a reason of its time");
	expect_one(s, CKPT_STATE_ISSUE_FD, "fd 4", "a reason of its time");
}

/* Every mapping restore has no way to make. */
/* A mapping of a deleted file with its blob is the file made again; the dump's refusal keeps its words. */
Test(state_judge, ghost_mappings)
{
	_cleanup_state_ struct ckpt_state *s = base();
	struct ckpt_state_vma *v = add_vma(s, CKPT_STATE_VMA_FILE, true, true, "/tmp/gone");

	v->has_identity = true;
	v->blob = strdup("blob-map-100000");
	expect_none(s);
	cr_expect(!ckpt_state_vma_anon_backed(v), "a shared ghost mapping is not anonymous memory");
	v->shared = false;
	cr_expect(!ckpt_state_vma_anon_backed(v), "a private one with a blob is mapped from the file");
	free(v->blob);
	v->blob = NULL;
	cr_expect(ckpt_state_vma_anon_backed(v), "a private one without is anonymous memory");
	expect_none(s);
	v->shared = true;
	v->reason = strdup("not restorable: a shared mapping of a deleted file of 5 bytes, over the "
			   "ghost limit of 4 bytes (--ghost-limit)");
	expect_one(s, CKPT_STATE_ISSUE_VMA, "mapping 0x100000-0x104000 (/tmp/gone)",
		   "of 5 bytes, over the ghost limit of 4 bytes");
}

Test(state_judge, mappings_restore_cannot_make)
{
	static const struct {
		enum ckpt_state_vma_kind kind;
		bool shared, deleted, path;
		const char *why; /* NULL: restorable */
	} cases[] = {
		{ CKPT_STATE_VMA_ANON, false, false, false, NULL },
		{ CKPT_STATE_VMA_STACK, false, false, false, NULL },
		{ CKPT_STATE_VMA_FILE, false, true, true, NULL },   /* saved in full */
		{ CKPT_STATE_VMA_FILE, true, false, true, NULL },   /* mapped from the file */
		{ CKPT_STATE_VMA_FILE, true, true, true, "deleted file whose contents are not saved" },
		{ CKPT_STATE_VMA_FILE, false, false, false, "without a path" },
		{ CKPT_STATE_VMA_MEMFD, true, true, true, NULL },   /* shared object */
		{ CKPT_STATE_VMA_MEMFD, false, true, true, NULL },  /* saved in full */
		{ CKPT_STATE_VMA_MEMFD, false, false, true, "this kind" },
		{ CKPT_STATE_VMA_SHMEM_ANON, true, true, false, NULL },
		{ CKPT_STATE_VMA_SHMEM_ANON, false, false, false, "this kind" },
		{ CKPT_STATE_VMA_SYSV_SHM, true, false, true, "System V" },
		{ CKPT_STATE_VMA_SPECIAL, false, false, false, "special mapping" },
		{ CKPT_STATE_VMA_VDSO, false, false, false, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		_cleanup_state_ struct ckpt_state *s = base();
		_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = NULL;

		add_vma(s, cases[i].kind, cases[i].shared, cases[i].deleted, cases[i].path ? "/x" : NULL);
		cr_assert_eq(ckpt_state_unrestorable(s, &l), 0);
		cr_expect_eq(l->nr, cases[i].why ? 1u : 0u, "case %zu (%s): %s", i,
			     ckpt_state_vma_kind_name(cases[i].kind), l->nr ? l->v[0].reason : "-");
		if (cases[i].why && l->nr == 1) {
			cr_expect_eq(l->v[0].kind, CKPT_STATE_ISSUE_VMA);
			cr_expect_eq(l->v[0].start, 0x100000);
			cr_expect(strstr(l->v[0].reason, cases[i].why), "case %zu: %s", i, l->v[0].reason);
		}
	}
}
