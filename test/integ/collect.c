/* SPDX-License-Identifier: MIT */
/*
 * ckpt_dump_collect() against real processes: test/progs/statezoo sets up
 * known state and reports it; every field collected is compared with that
 * report (and with /proc read here independently), again after a JSON round
 * trip; the target checks itself afterwards: nothing changed, the pending
 * signals are still pending and delivered once.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ckpt/dump.h>
#include <ckpt/inject.h>
#include <ckpt/log.h>
#include <ckpt/state.h>

#include "helpers/testutil.h"

#define PG 4096ULL
#define ERESTARTSYS_ 512
#define MIN_(a, b) ((a) < (b) ? (a) : (b))
#define MAX_(a, b) ((a) > (b) ? (a) : (b))

/* ---- the report of statezoo: "key=v1,v2,..." lines ---- */

struct zoo {
	struct prog p;
	char dir[PATH_MAX];
	char *report;
};

static const char *rep(const struct zoo *z, const char *key)
{
	size_t kl = strlen(key);

	for (const char *l = z->report; l && *l;) {
		const char *eol = strchr(l, '\n');

		if (!strncmp(l, key, kl) && l[kl] == '=')
			return l + kl + 1;
		if (!eol)
			break;
		l = eol + 1;
	}
	cr_assert_fail("statezoo did not report '%s'", key);
	return NULL;
}

/* The whole value of @key as a string (static buffer). */
static const char *rep_str(const struct zoo *z, const char *key)
{
	static char buf[PATH_MAX];
	const char *v = rep(z, key);
	size_t n = strcspn(v, "\n");

	cr_assert_lt(n, sizeof(buf));
	memcpy(buf, v, n);
	buf[n] = '\0';
	return buf;
}

/* Field @idx (0-based, comma-separated) of @key, as a number (hex or decimal). */
static uint64_t repn(const struct zoo *z, const char *key, int idx)
{
	const char *v = rep(z, key);
	char *end;

	for (int i = 0; i < idx; i++) {
		v = strchr(v, ',');
		cr_assert_not_null(v, "'%s' has no field %d", key, idx);
		v++;
	}
	if (*v == '-')
		return (uint64_t)strtoll(v, &end, 0);
	return strtoull(v, &end, 0);
}

static void rm_tree(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* Wait until thread @tid is blocked in system call @nr (/proc/PID/task/TID/syscall). */
static void wait_in_syscall(pid_t pid, pid_t tid, long nr)
{
	char path[96], buf[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen(path, "r");
		char *end = buf;
		/* "running" while it runs: strtol would read that as 0, SYS_read */
		bool in = f && fgets(buf, sizeof(buf), f) && buf[0] >= '0' && buf[0] <= '9' &&
			  strtol(buf, &end, 10) == nr && *end == ' ';

		if (f)
			fclose(f);
		if (in)
			return;
		usleep(1000);
	}
	cr_assert_fail("thread %d never blocked in system call %ld", tid, nr);
}

static uint64_t repn(const struct zoo *z, const char *key, int idx);

static void zoo_start(struct zoo *z)
{
	char tmpl[] = "/tmp/ckpt-collect-XXXXXX", path[PATH_MAX + 16], line[256];
	FILE *f;
	long len;

	cr_assert_not_null(mkdtemp(tmpl));
	cr_assert_not_null(realpath(tmpl, z->dir));
	cr_assert_eq(prog_start(&z->p, true, 0, "statezoo", z->dir, NULL), 0);
	cr_assert_geq(prog_read_line(&z->p, line, sizeof(line), 10000), 0, "statezoo is silent");
	cr_assert_str_eq(line, "ready");
	snprintf(path, sizeof(path), "%s/report", z->dir);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	z->report = calloc(1, (size_t)len + 1);
	cr_assert_eq(fread(z->report, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	/* "ready" is written before the main thread is back in read(2) */
	wait_in_syscall(z->p.pid, z->p.pid, SYS_read);
	wait_in_syscall(z->p.pid, (pid_t)repn(z, "tid.worker", 0), SYS_read);
}

static void zoo_stop(struct zoo *z)
{
	prog_kill(&z->p);
	rm_tree(z->dir);
	free(z->report);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;

	cr_assert_not_null(f, "%s", path);
	cr_assert_geq(getdelim(&buf, &cap, '\0', f), 0);
	fclose(f);
	return buf;
}

static size_t count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static uint64_t stat_start_time(pid_t pid)
{
	char path[64], *s, *text;
	unsigned long long v = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	text = read_text(path);
	s = strrchr(text, ')');
	cr_assert_not_null(s);
	/* field 22; after ')' come fields 3.. */
	s += 2;
	for (int f = 3; f < 22; f++)
		s = strchr(s, ' ') + 1;
	sscanf(s, "%llu", &v);
	free(text);
	return v;
}

/* ---- lookups in a state ---- */

static const struct ckpt_state_vma *vma_at(const struct ckpt_state *s, uint64_t addr)
{
	for (size_t i = 0; i < s->mm.nr_vmas; i++)
		if (addr >= s->mm.vmas[i].start && addr < s->mm.vmas[i].end)
			return &s->mm.vmas[i];
	return NULL;
}

static const struct ckpt_state_fd *fd_of(const struct ckpt_state *s, int fd)
{
	for (size_t i = 0; i < s->nr_fds; i++)
		if (s->fds[i].fd == fd)
			return &s->fds[i];
	return NULL;
}

static bool has_vma_kind(const struct ckpt_state *s, enum ckpt_state_vma_kind k)
{
	for (size_t i = 0; i < s->mm.nr_vmas; i++)
		if (s->mm.vmas[i].kind == k)
			return true;
	return false;
}

static uint64_t auxv_get(const struct ckpt_state *s, uint64_t type)
{
	for (size_t i = 0; i < s->mm.nr_auxv; i++)
		if (s->mm.auxv[i][0] == type)
			return s->mm.auxv[i][1];
	return 0;
}

static void siginfo_of(const struct ckpt_state_siginfo *si, siginfo_t *out)
{
	memcpy(out, si->raw, sizeof(*out));
	cr_expect_eq(out->si_signo, si->signo);
	cr_expect_eq(out->si_code, si->code);
}

/* ---- the comparison ---- */

static void verify_process(const struct ckpt_state *s, const struct zoo *z)
{
	const struct ckpt_state_process *p = &s->process;
	char exe[PATH_MAX], prog[PATH_MAX];
	struct stat st;
	siginfo_t si;

	cr_expect_eq(p->pid, z->p.pid);
	cr_expect_eq(p->ppid, (pid_t)repn(z, "ppid", 0));
	cr_expect_eq(p->ppid, getpid());
	cr_expect_eq(p->pgid, (pid_t)repn(z, "pgid", 0));
	cr_expect_eq(p->sid, (pid_t)repn(z, "sid", 0));
	cr_expect_eq(p->start_time, stat_start_time(z->p.pid));
	cr_expect_str_eq(p->comm, "zoo-main");
	cr_assert_not_null(realpath(prog_path("statezoo", prog, sizeof(prog)), exe));
	cr_expect_str_eq(p->exe, exe);
	cr_expect(!p->exe_deleted);
	cr_assert_eq(stat(exe, &st), 0);
	cr_expect_eq(p->exe_id.ino, st.st_ino);
	cr_expect_eq(p->exe_id.size, (uint64_t)st.st_size);
	cr_expect_eq(p->exe_id.mtime_sec, st.st_mtim.tv_sec);
	cr_expect_eq(p->exe_id.mtime_nsec, (uint32_t)st.st_mtim.tv_nsec);
	cr_expect_eq(p->exe_id.dev_major, major(st.st_dev));
	cr_expect_eq(p->exe_id.dev_minor, minor(st.st_dev));
	cr_expect_eq(p->exe_id.mode, st.st_mode);
	cr_expect_str_eq(p->cwd, z->dir);
	cr_expect_str_eq(p->root, "/");
	cr_expect_eq(p->umask, 027);
	cr_expect_eq(p->personality, repn(z, "personality", 0));
	cr_expect(p->personality & 0x0040000, "ADDR_NO_RANDOMIZE missing");
	for (int i = 0; i < CKPT_STATE_NR_RLIMITS; i++) {
		char key[32];

		snprintf(key, sizeof(key), "rlimit.%d", i);
		cr_expect_eq(p->rlimits[i].cur, repn(z, key, 0), "%s", key);
		cr_expect_eq(p->rlimits[i].max, repn(z, key, 1), "%s", key);
	}
	cr_expect_eq(p->rlimits[RLIMIT_NOFILE].cur, 512);
	for (int i = 0; i < 4; i++) {
		cr_expect_eq(p->creds.uid[i], repn(z, "uid", i));
		cr_expect_eq(p->creds.gid[i], repn(z, "gid", i));
	}
	cr_assert_eq(p->creds.nr_groups, repn(z, "groups", 0));
	for (size_t i = 0; i < p->creds.nr_groups; i++)
		cr_expect_eq(p->creds.groups[i], repn(z, "groups", (int)i + 1));
	cr_expect_eq(p->creds.cap_inh, repn(z, "caps", 0));
	cr_expect_eq(p->creds.cap_prm, repn(z, "caps", 1));
	cr_expect_eq(p->creds.cap_eff, repn(z, "caps", 2));
	cr_expect_eq(p->creds.cap_bnd, repn(z, "caps", 3));
	cr_expect_eq(p->creds.cap_amb, repn(z, "caps", 4));
	cr_expect_eq(p->creds.securebits, repn(z, "securebits", 0));
	cr_expect_eq(p->dumpable, (int)repn(z, "dumpable", 0));
	cr_expect(p->no_new_privs);
	cr_expect_eq(p->seccomp, CKPT_STATE_SECCOMP_NONE);
	cr_expect(!p->job_stopped);

	for (int sig = 1; sig <= 64; sig++) {
		const struct ckpt_state_sigaction *sa = &p->sigactions[sig - 1];
		char key[16];

		snprintf(key, sizeof(key), "sa.%d", sig);
		cr_expect_eq(sa->handler, repn(z, key, 0), "%s handler", key);
		cr_expect_eq(sa->flags, repn(z, key, 1), "%s flags", key);
		cr_expect_eq(sa->restorer, repn(z, key, 2), "%s restorer", key);
		cr_expect_eq(sa->mask, repn(z, key, 3), "%s mask", key);
	}
	cr_expect_eq(p->sigactions[SIGUSR1 - 1].handler, repn(z, "handler.info", 0));
	cr_expect_eq(p->sigactions[SIGUSR1 - 1].flags & (SA_SIGINFO | SA_RESTART | SA_ONSTACK),
		     SA_SIGINFO | SA_RESTART | SA_ONSTACK);
	cr_expect_eq(p->sigactions[SIGUSR1 - 1].mask,
		     (1ULL << (SIGUSR2 - 1)) | (1ULL << (SIGTERM - 1)));
	cr_expect_eq(p->sigactions[SIGUSR2 - 1].handler, repn(z, "handler.plain", 0));
	cr_expect_eq(p->sigactions[SIGUSR2 - 1].mask, 1ULL << (SIGINT - 1));
	cr_expect(p->sigactions[SIGTERM - 1].flags & SA_RESETHAND);
	cr_expect_eq(p->sigactions[SIGHUP - 1].handler, (uint64_t)(uintptr_t)SIG_IGN);
	cr_expect_eq(p->sigactions[SIGKILL - 1].handler, 0);
	cr_expect_eq(p->sigactions[SIGSTOP - 1].handler, 0);

	cr_expect(p->shared_sigpending & (1ULL << (SIGUSR1 - 1)));
	cr_assert_eq(p->nr_shared_pending, 1);
	siginfo_of(&p->shared_pending[0], &si);
	cr_expect_eq(si.si_signo, SIGUSR1);
	cr_expect_eq(si.si_code, SI_QUEUE);
	cr_expect_eq(si.si_value.sival_int, 4242);
	cr_expect_eq(si.si_pid, z->p.pid);

	cr_expect_eq(p->itimers[CKPT_STATE_ITIMER_REAL].interval_sec, 1000);
	cr_expect_eq(p->itimers[CKPT_STATE_ITIMER_REAL].interval_usec, 0);
	cr_expect_leq(p->itimers[CKPT_STATE_ITIMER_REAL].value_sec, 2000);
	cr_expect_geq(p->itimers[CKPT_STATE_ITIMER_REAL].value_sec, 1900);
	cr_expect_eq(p->itimers[CKPT_STATE_ITIMER_PROF].interval_sec, 500);
	cr_expect_eq(p->itimers[CKPT_STATE_ITIMER_PROF].interval_usec, 250000);
	cr_expect_leq(p->itimers[CKPT_STATE_ITIMER_PROF].value_sec, 700);
	cr_expect_geq(p->itimers[CKPT_STATE_ITIMER_PROF].value_sec, 690);
	cr_expect_eq(p->itimers[CKPT_STATE_ITIMER_VIRTUAL].interval_sec, 0);
	cr_expect_eq(p->itimers[CKPT_STATE_ITIMER_VIRTUAL].value_sec, 0);
	cr_expect_eq(p->itimers[CKPT_STATE_ITIMER_VIRTUAL].value_usec, 0);
}

static void verify_thread(const struct ckpt_state_thread *t, const struct zoo *z, const char *who)
{
	char key[32];

	snprintf(key, sizeof(key), "tid.%s", who);
	cr_expect_eq(t->tid, (pid_t)repn(z, key, 0));
	cr_expect_str_eq(t->comm, !strcmp(who, "main") ? "zoo-main" : "zoo-worker");
	snprintf(key, sizeof(key), "tp.%s", who);
	cr_expect_eq(t->regs.fs_base, repn(z, key, 0), "%s fs_base", who);
	cr_expect(t->in_syscall, "%s is blocked in read(2)", who);
	cr_expect_eq(t->regs.orig_rax, SYS_read, "%s orig_rax %llu", who, t->regs.orig_rax);
	cr_expect_eq((int64_t)t->regs.rax, -ERESTARTSYS_, "%s rax %lld", who, (long long)t->regs.rax);
	cr_expect_eq(t->regs.cs, 0x33);
	snprintf(key, sizeof(key), "sigmask.%s", who);
	cr_expect_eq(t->sigmask, repn(z, key, 0), "%s sigmask", who);
	snprintf(key, sizeof(key), "rseq.%s", who);
	if (repn(z, key, 0)) {
		cr_expect_eq(t->rseq.ptr, repn(z, key, 0), "%s rseq", who);
		cr_expect_geq(t->rseq.len, repn(z, key, 1));
		cr_expect_eq(t->rseq.sig, 0x53053053);
	}
	snprintf(key, sizeof(key), "robust.%s", who);
	cr_expect_eq(t->robust_list_head, repn(z, key, 0), "%s robust list", who);
	cr_expect_eq(t->robust_list_len, repn(z, key, 1));
	snprintf(key, sizeof(key), "ctid.%s", who);
	cr_expect_eq(t->clear_child_tid, repn(z, key, 0), "%s clear_child_tid", who);
	snprintf(key, sizeof(key), "altstack.%s", who);
	cr_expect_eq(t->altstack_sp, repn(z, key, 0), "%s altstack", who);
	cr_expect_eq(t->altstack_size, repn(z, key, 1));
	cr_expect_eq(t->altstack_flags, (int)repn(z, key, 2));
	cr_assert_not_null(t->xstate);
	cr_expect_geq(t->xstate_len, 576);
}

static void verify_threads(const struct ckpt_state *s, const struct zoo *z)
{
	const struct ckpt_state_thread *m, *w;
	siginfo_t si;

	cr_assert_eq(s->nr_threads, 2);
	m = &s->threads[0];
	w = &s->threads[1];
	cr_expect_eq(m->tid, z->p.pid, "the leader comes first");
	verify_thread(m, z, "main");
	verify_thread(w, z, "worker");
	/* the worker loaded a pattern into xmm15 (FXSAVE layout: xmm0 at 160) */
	cr_expect(memcmp((const char *)w->xstate + 160 + 15 * 16, "statezoo-xmm15!!", 16) == 0,
		  "xmm15 of the worker is not in its xstate");

	cr_expect(m->sigpending & (1ULL << (SIGRTMIN + 1 - 1)));
	cr_assert_eq(m->nr_pending, 2, "two SIGRTMIN+1 queued to the main thread");
	for (int i = 0; i < 2; i++) {
		siginfo_of(&m->pending[i], &si);
		cr_expect_eq(si.si_signo, SIGRTMIN + 1);
		cr_expect_eq(si.si_code, SI_QUEUE);
		cr_expect_eq(si.si_value.sival_int, i + 1, "queue order");
	}
	cr_expect(w->sigpending & (1ULL << (SIGUSR2 - 1)));
	cr_assert_eq(w->nr_pending, 1);
	siginfo_of(&w->pending[0], &si);
	cr_expect_eq(si.si_signo, SIGUSR2);
	cr_expect_eq(si.si_code, SI_TKILL);
	cr_expect_eq(si.si_pid, z->p.pid);
}

struct map_line {
	uint64_t start, end;
	char perms[5];
};

/* Every line of /proc/PID/maps (read here, not by lib/proc) is in the state, scratch aside. */
static void verify_layout(const struct ckpt_state *s, pid_t pid, struct ckpt_inject *inj)
{
	char path[64], line[1024];
	FILE *f;
	size_t seen = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		struct map_line m;
		const struct ckpt_state_vma *v;

		cr_assert_eq(sscanf(line, "%lx-%lx %4s", &m.start, &m.end, m.perms), 3);
		if (inj && ckpt_inject_is_scratch(inj, m.start, m.end)) {
			/* scratch, perhaps merged with a mapping of the target: only the rest */
			for (size_t i = 0; i < s->mm.nr_vmas; i++) {
				const struct ckpt_state_vma *x = &s->mm.vmas[i];

				if (x->end <= m.start || x->start >= m.end)
					continue;
				cr_expect(x->start >= m.start && x->end <= m.end, "%s", line);
				seen++;
			}
			continue;
		}
		v = vma_at(s, m.start);
		cr_assert_not_null(v, "mapping %s missing", line);
		cr_expect_eq(v->start, m.start, "%s", line);
		cr_expect_eq(v->end, m.end, "%s", line);
		cr_expect_eq(!!(v->prot & PROT_READ), m.perms[0] == 'r', "%s", line);
		cr_expect_eq(!!(v->prot & PROT_WRITE), m.perms[1] == 'w', "%s", line);
		cr_expect_eq(!!(v->prot & PROT_EXEC), m.perms[2] == 'x', "%s", line);
		cr_expect_eq(v->shared, m.perms[3] == 's', "%s", line);
		seen++;
	}
	fclose(f);
	cr_expect_eq(seen, s->mm.nr_vmas, "the state has mappings /proc does not");
	for (size_t i = 1; i < s->mm.nr_vmas; i++)
		cr_expect_geq(s->mm.vmas[i].start, s->mm.vmas[i - 1].end);
	if (inj)
		for (size_t i = 0; i < s->mm.nr_vmas; i++)
			cr_expect(!ckpt_inject_is_scratch(inj, s->mm.vmas[i].start, s->mm.vmas[i].end),
				  "scratch memory recorded at %#llx",
				  (unsigned long long)s->mm.vmas[i].start);
}

static void expect_map(const struct ckpt_state *s, const struct zoo *z, const char *name,
		       enum ckpt_state_vma_kind kind, int prot, bool shared)
{
	char key[32];
	const struct ckpt_state_vma *v;

	snprintf(key, sizeof(key), "map.%s", name);
	v = vma_at(s, repn(z, key, 0));
	cr_assert_not_null(v, "%s not found", key);
	cr_expect_eq(v->start, repn(z, key, 0), "%s start", key);
	cr_expect_eq(v->end, repn(z, key, 1), "%s end", key);
	cr_expect_eq(v->kind, kind, "%s is %s", key, ckpt_state_vma_kind_name(v->kind));
	cr_expect_eq(v->prot, prot, "%s prot", key);
	cr_expect_eq(v->shared, shared, "%s shared", key);
	if (repn(z, key, 2)) {
		cr_assert(v->has_identity, "%s has no identity", key);
		cr_expect_eq(v->id.ino, repn(z, key, 2), "%s inode", key);
	}
}

static void expect_vmflag(const struct ckpt_state *s, const struct zoo *z, const char *name,
			  uint32_t flag)
{
	char key[32];
	const struct ckpt_state_vma *v;

	snprintf(key, sizeof(key), "map.%s", name);
	v = vma_at(s, repn(z, key, 0));
	cr_assert_not_null(v);
	cr_expect(v->vmflags & flag, "%s lacks its VmFlags bit (%#x)", key, v->vmflags);
	cr_expect_eq(v->kind, CKPT_STATE_VMA_ANON);
}

static void verify_mm(const struct ckpt_state *s, const struct zoo *z, struct ckpt_inject *inj)
{
	const struct ckpt_state_mm *mm = &s->mm;
	const struct ckpt_state_vma *v;
	uint64_t mprot = repn(z, "map.mprot", 0);
	char path[PATH_MAX + 16];

	cr_expect_leq(mm->start_code, repn(z, "code", 0));
	cr_expect_gt(mm->end_code, repn(z, "code", 0));
	cr_expect_leq(mm->start_data, mm->end_data);
	cr_expect_eq(mm->brk, repn(z, "brk", 0));
	cr_expect_leq(mm->start_brk, mm->brk);
	cr_expect_leq(mm->arg_start, repn(z, "argv0", 0));
	cr_expect_gt(mm->arg_end, repn(z, "argv0", 0));
	cr_expect_leq(mm->env_start, repn(z, "environ0", 0));
	cr_expect_gt(mm->env_end, repn(z, "environ0", 0));
	v = vma_at(s, mm->start_stack);
	cr_assert_not_null(v);
	cr_expect_eq(v->kind, CKPT_STATE_VMA_STACK);
	cr_expect(v->vmflags & CKPT_STATE_VMF_GROWSDOWN);
	cr_assert_gt(mm->nr_auxv, 5);
	cr_expect_eq(mm->auxv[mm->nr_auxv - 1][0], AT_NULL);
	cr_expect_eq(auxv_get(s, AT_PAGESZ), repn(z, "auxv", 0));
	cr_expect_eq(auxv_get(s, AT_ENTRY), repn(z, "auxv", 1));
	cr_expect_eq(auxv_get(s, AT_PHDR), repn(z, "auxv", 2));
	cr_expect_eq(auxv_get(s, AT_RANDOM), repn(z, "auxv", 3));
	cr_expect_eq(auxv_get(s, AT_SYSINFO_EHDR), repn(z, "auxv", 4));

	verify_layout(s, z->p.pid, inj);
	for (enum ckpt_state_vma_kind k = CKPT_STATE_VMA_HEAP; k <= CKPT_STATE_VMA_VVAR_VCLOCK; k++)
		cr_expect(has_vma_kind(s, k), "no mapping of kind %s", ckpt_state_vma_kind_name(k));

	expect_map(s, z, "file", CKPT_STATE_VMA_FILE, PROT_READ | PROT_WRITE, true);
	v = vma_at(s, repn(z, "map.file", 0));
	snprintf(path, sizeof(path), "%s/mapped", z->dir);
	cr_expect_str_eq(v->path, path);
	cr_expect_eq(v->offset, PG);
	cr_expect(!v->deleted);
	cr_expect_eq(v->id.size, 3 * PG);
	expect_map(s, z, "deleted", CKPT_STATE_VMA_FILE, PROT_READ, false);
	v = vma_at(s, repn(z, "map.deleted", 0));
	snprintf(path, sizeof(path), "%s/deleted", z->dir);
	cr_expect_str_eq(v->path, path);
	cr_expect(v->deleted);
	expect_map(s, z, "memfd", CKPT_STATE_VMA_MEMFD, PROT_READ | PROT_WRITE, true);
	v = vma_at(s, repn(z, "map.memfd", 0));
	cr_expect_str_eq(v->path, "/memfd:zoo-memfd");
	cr_expect(v->deleted);
	cr_expect(ckpt_state_same_object(&v->id, &fd_of(s, (int)repn(z, "fd.memfd", 0))->id),
		  "the memfd mapping and the memfd fd are not recognised as one object");
	expect_map(s, z, "shmem", CKPT_STATE_VMA_SHMEM_ANON, PROT_READ | PROT_WRITE, true);
	v = vma_at(s, repn(z, "map.shmem", 0));
	cr_expect(v->has_identity);
	cr_expect_null(v->path);

	cr_assert_not_null(v = vma_at(s, mprot + PG));
	cr_expect_eq(v->start, mprot + PG);
	cr_expect_eq(v->end, mprot + 2 * PG);
	cr_expect_eq(v->prot, PROT_READ | PROT_WRITE);
	cr_assert_not_null(v = vma_at(s, mprot + 2 * PG));
	cr_expect_eq(v->end, mprot + 3 * PG);
	cr_expect_eq(v->prot, PROT_READ);
	cr_assert_not_null(v = vma_at(s, mprot + 3 * PG));
	cr_expect_eq(v->end, mprot + 4 * PG);
	cr_expect_eq(v->prot, PROT_READ | PROT_WRITE);
	cr_expect_eq(v->kind, CKPT_STATE_VMA_ANON);

	expect_vmflag(s, z, "dontdump", CKPT_STATE_VMF_DONTDUMP);
	expect_vmflag(s, z, "dontfork", CKPT_STATE_VMF_DONTCOPY);
	expect_vmflag(s, z, "wipeonfork", CKPT_STATE_VMF_WIPEONFORK);
	expect_vmflag(s, z, "locked", CKPT_STATE_VMF_LOCKED);
	expect_vmflag(s, z, "hugepage", CKPT_STATE_VMF_HUGEPAGE);
	expect_vmflag(s, z, "nohugepage", CKPT_STATE_VMF_NOHUGEPAGE);
}

static const struct ckpt_state_fd *expect_fd(const struct ckpt_state *s, const struct zoo *z,
					     const char *name, enum ckpt_state_fd_kind kind,
					     bool restorable)
{
	char key[32];
	const struct ckpt_state_fd *f;

	snprintf(key, sizeof(key), "fd.%s", name);
	f = fd_of(s, (int)repn(z, key, 0));
	cr_assert_not_null(f, "%s (fd %d) not recorded", key, (int)repn(z, key, 0));
	cr_expect_eq(f->kind, kind, "%s is %s", key, ckpt_state_fd_kind_name(f->kind));
	cr_expect_eq(f->id.ino, repn(z, key, 1), "%s inode", key);
	cr_expect_eq(f->cloexec, !!repn(z, key, 2), "%s cloexec", key);
	cr_expect_eq(f->flags, (uint32_t)repn(z, key, 3), "%s flags %#o", key, f->flags);
	cr_expect_eq(f->restorable, restorable, "%s restorable (%s)", key, f->reason ?: "");
	cr_expect_eq(f->reason == NULL, restorable);
	return f;
}

static void verify_files(const struct ckpt_state *s, const struct zoo *z)
{
	const struct ckpt_state_fd *f, *g;
	char path[PATH_MAX + 16];

	f = expect_fd(s, z, "regular", CKPT_STATE_FD_REGULAR, true);
	snprintf(path, sizeof(path), "%s/positioned", z->dir);
	cr_expect_str_eq(f->path, path);
	cr_expect_eq(f->pos, 1234);
	cr_expect(f->flags & O_APPEND);
	cr_expect_eq(f->id.size, 2000);
	f = expect_fd(s, z, "dir", CKPT_STATE_FD_DIRECTORY, true);
	cr_expect_str_eq(f->path, z->dir);
	f = expect_fd(s, z, "null", CKPT_STATE_FD_CHR, true);
	cr_expect_str_eq(f->path, "/dev/null");
	cr_expect_eq(f->id.rdev_major, 1);
	cr_expect_eq(f->id.rdev_minor, 3);
	f = expect_fd(s, z, "zero", CKPT_STATE_FD_CHR, true);
	cr_expect_eq(f->id.rdev_minor, 5);
	f = expect_fd(s, z, "urandom", CKPT_STATE_FD_CHR, true);
	cr_expect_eq(f->id.rdev_minor, 9);
	f = expect_fd(s, z, "pipe_r", CKPT_STATE_FD_PIPE, true);
	g = expect_fd(s, z, "pipe_w", CKPT_STATE_FD_PIPE, true);
	cr_expect(ckpt_state_same_object(&f->id, &g->id), "two ends, one pipe");
	snprintf(path, sizeof(path), "pipe:[%llu]", (unsigned long long)f->id.ino);
	cr_expect_str_eq(f->path, path);
	f = expect_fd(s, z, "fifo", CKPT_STATE_FD_FIFO, true);
	snprintf(path, sizeof(path), "%s/fifo", z->dir);
	cr_expect_str_eq(f->path, path);
	f = expect_fd(s, z, "ptmx", CKPT_STATE_FD_TTY, true);
	cr_expect(!f->ctty);
	f = expect_fd(s, z, "pts", CKPT_STATE_FD_TTY, true);
	cr_expect_str_eq(f->path, rep_str(z, "pts.path"));
	cr_expect(!f->ctty);
	f = expect_fd(s, z, "memfd", CKPT_STATE_FD_MEMFD, true);
	cr_expect_str_eq(f->path, "/memfd:zoo-memfd");
	cr_expect(f->deleted);
	cr_expect_eq(f->id.size, 2 * PG);
	f = expect_fd(s, z, "socket", CKPT_STATE_FD_SOCKET, false);
	cr_expect(strstr(f->reason, "socket"), "%s", f->reason);
	cr_expect(f->sock.found, "sock_diag did not describe the socket");
	cr_expect_eq(f->sock.family, AF_UNIX);
	cr_expect_eq(f->sock.type, SOCK_DGRAM);
	snprintf(path, sizeof(path), "@statezoo-%d", z->p.pid);
	cr_expect_str_eq(f->sock.local, path);
	f = expect_fd(s, z, "eventfd", CKPT_STATE_FD_EVENTFD, true);
	cr_expect_eq(f->eventfd_count, 5);
	cr_expect(f->eventfd_semaphore);
	f = expect_fd(s, z, "epoll", CKPT_STATE_FD_EPOLL, true);
	cr_assert_not_null(f->fdinfo);
	snprintf(path, sizeof(path), "tfd: %8d", (int)repn(z, "fd.eventfd", 0));
	cr_expect(strstr(f->fdinfo, path), "epoll fdinfo: %s", f->fdinfo);
	/* its registration, matched to the eventfd (lib/dump/collect_fdkinds.c) */
	cr_expect(f->k.known);
	cr_assert_eq(f->k.nr_targets, 1);
	cr_expect_eq(f->k.targets[0].tfd, (int)repn(z, "fd.eventfd", 0));
	cr_expect(f->k.targets[0].events & EPOLLIN, "events %#x", f->k.targets[0].events);
	/* stdio: pipes from the test, stderr a file in the directory */
	cr_expect_eq(fd_of(s, 0)->kind, CKPT_STATE_FD_PIPE);
	cr_expect_eq(fd_of(s, 1)->kind, CKPT_STATE_FD_PIPE);
	cr_expect_eq(fd_of(s, 2)->kind, CKPT_STATE_FD_REGULAR);
	for (size_t i = 1; i < s->nr_fds; i++)
		cr_expect_gt(s->fds[i].fd, s->fds[i - 1].fd);
}

static void verify_state(const struct ckpt_state *s, const struct zoo *z, struct ckpt_inject *inj)
{
	verify_process(s, z);
	verify_threads(s, z);
	verify_mm(s, z, inj);
	verify_files(s, z);
	cr_expect_eq(s->nr_fds, count_fds(z->p.pid));
}

/* To the four documents, through text (strict, UTF-8 checked), and back. */
static struct ckpt_state *json_round_trip(const struct ckpt_state *s)
{
	json_object *docs[CKPT_STATE_NR_DOCS];
	struct ckpt_state *back = NULL;
	char why[512];

	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++) {
		json_object *o;
		struct json_tokener *tok = json_tokener_new();
		const char *text;

		cr_assert_eq(ckpt_state_doc_to_json(s, (enum ckpt_state_doc)d, &o), 0);
		text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		docs[d] = json_tokener_parse_ex(tok, text, (int)strlen(text));
		cr_assert_not_null(docs[d], "%s does not parse", ckpt_state_doc_name(d));
		json_tokener_free(tok);
		json_object_put(o);
	}
	cr_assert_eq(ckpt_state_from_docs(docs, why, sizeof(why), &back), 0, "%s", why);
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++) {
		json_object *o;

		cr_assert_eq(ckpt_state_doc_to_json(back, (enum ckpt_state_doc)d, &o), 0);
		cr_expect_str_eq(json_object_to_json_string(o), json_object_to_json_string(docs[d]),
				 "%s differs after the round trip", ckpt_state_doc_name(d));
		json_object_put(o);
		json_object_put(docs[d]);
	}
	return back;
}

Test(collect, statezoo_every_field_and_target_unchanged)
{
	struct zoo z = { 0 };
	struct ckpt_inject *inj;
	struct ckpt_state *s, *back;
	struct ckpt_state_issues *issues;
	char path[64], line[256], *maps_before, *maps_after;
	int want[1];

	zoo_start(&z);
	snprintf(path, sizeof(path), "/proc/%d/maps", z.p.pid);
	maps_before = read_text(path);
	cr_assert_eq(ckpt_inject_seize(z.p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_dump_collect(inj, NULL, &s), 0);
	verify_state(s, &z, inj);

	/* what restore cannot do: exactly the socket (eventfd and epoll it can, threads too) */
	cr_assert_eq(ckpt_state_unrestorable(s, &issues), 0);
	want[0] = (int)repn(&z, "fd.socket", 0);
	cr_assert_eq(issues->nr, 1);
	for (size_t i = 0; i < issues->nr; i++) {
		cr_expect_eq(issues->v[i].kind, CKPT_STATE_ISSUE_FD, "%s: %s", issues->v[i].what,
			     issues->v[i].reason);
		cr_expect_eq(issues->v[i].fd, want[i], "%s", issues->v[i].what);
	}
	cr_expect(strstr(issues->v[0].reason, "socket"));
	ckpt_state_issues_free(issues);

	back = json_round_trip(s);
	verify_state(back, &z, inj);
	ckpt_state_free(back);
	ckpt_state_free(s);
	cr_assert_eq(ckpt_inject_release(inj), 0);

	maps_after = read_text(path);
	cr_expect_str_eq(maps_after, maps_before, "the layout changed");
	cr_assert_eq(write(z.p.in_fd, "check\n", 6), 6);
	cr_assert_geq(prog_read_line(&z.p, line, sizeof(line), 5000), 0);
	cr_expect_str_eq(line, "check ok");
	free(maps_before);
	free(maps_after);
	zoo_stop(&z);
}

Test(collect, ignored_fds_are_not_recorded)
{
	struct zoo z = { 0 };
	struct ckpt_inject *inj;
	struct ckpt_state *s;
	struct ckpt_state_issues *issues;
	int ignore[2];
	struct ckpt_dump_collect_opts opts = { .ignore_fds = ignore, .nr_ignore_fds = 2 };
	char line[256];

	zoo_start(&z);
	ignore[0] = (int)repn(&z, "fd.eventfd", 0);
	ignore[1] = (int)repn(&z, "fd.epoll", 0);
	cr_assert_eq(ckpt_inject_seize(z.p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_dump_collect(inj, &opts, &s), 0);
	cr_expect_null(fd_of(s, ignore[0]));
	cr_expect_null(fd_of(s, ignore[1]));
	cr_expect_not_null(fd_of(s, (int)repn(&z, "fd.socket", 0)));
	cr_expect_eq(s->nr_fds, count_fds(z.p.pid) - 2);
	cr_assert_eq(ckpt_state_unrestorable(s, &issues), 0);
	cr_assert_eq(issues->nr, 1); /* the socket */
	cr_expect_eq(issues->v[0].fd, (int)repn(&z, "fd.socket", 0));
	ckpt_state_issues_free(issues);
	ckpt_state_free(s);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	cr_assert_eq(write(z.p.in_fd, "check\n", 6), 6);
	cr_assert_geq(prog_read_line(&z.p, line, sizeof(line), 5000), 0);
	cr_expect_str_eq(line, "check ok");
	zoo_stop(&z);
}

Test(collect, no_sock_diag_leaves_sockets_undescribed)
{
	struct zoo z = { 0 };
	struct ckpt_inject *inj;
	struct ckpt_state *s;
	struct ckpt_dump_collect_opts opts = { .flags = CKPT_COLLECT_NO_SOCK_DIAG };
	const struct ckpt_state_fd *f;

	zoo_start(&z);
	cr_assert_eq(ckpt_inject_seize(z.p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_dump_collect(inj, &opts, &s), 0);
	f = fd_of(s, (int)repn(&z, "fd.socket", 0));
	cr_assert_not_null(f);
	cr_expect_eq(f->kind, CKPT_STATE_FD_SOCKET);
	cr_expect(!f->sock.found);
	cr_expect_eq(f->id.ino, repn(&z, "fd.socket", 1));
	ckpt_state_free(s);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	zoo_stop(&z);
}

/* Scratch memory that merged with a mapping of the target is cut out, the rest kept. */
Test(collect, scratch_merged_with_a_mapping_is_cut_out)
{
	struct prog p;
	struct ckpt_inject *inj;
	struct ckpt_state *s;
	const struct ckpt_state_vma *v;
	uint64_t scratch, app = 0;
	int64_t res;
	char path[64], line[512], buf[64];
	FILE *f;
	bool merged = false;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_inject_scratch(inj, PG, &scratch), 0);
	/* an application page right after (or before) the scratch page: same flags, one VMA */
	for (int side = 0; side < 2 && !app; side++) {
		uint64_t at = side ? scratch - PG : scratch + PG;

		cr_assert_eq(ckpt_inject_call(inj, &res, SYS_mmap, at, PG, PROT_READ | PROT_WRITE,
					      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
					      (uint64_t)-1, 0), 0);
		if (res == (int64_t)at)
			app = at;
	}
	cr_assert_neq(app, 0, "no free page next to the scratch page");
	/*
	 * Scratch memory is MADV_DONTFORK so that it does not merge with the
	 * program's; a program page with the same flag still merges with it.
	 */
	cr_assert_eq(ckpt_inject_call(inj, &res, SYS_madvise, app, PG, MADV_DONTFORK), 0);
	cr_assert_eq(res, 0);
	snprintf(path, sizeof(path), "/proc/%d/maps", p.pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long a, b;

		if (sscanf(line, "%llx-%llx", &a, &b) == 2 && a <= MIN_(app, scratch) &&
		    b >= MAX_(app, scratch) + PG)
			merged = true;
	}
	fclose(f);
	cr_assert(merged, "the kernel did not merge the two pages: the case is not set up");

	cr_assert_eq(ckpt_dump_collect(inj, NULL, &s), 0);
	v = vma_at(s, app);
	cr_assert_not_null(v, "the application page was dropped with the scratch");
	cr_expect_eq(v->start, app);
	cr_expect_eq(v->end, app + PG);
	cr_expect_eq(v->kind, CKPT_STATE_VMA_ANON);
	cr_expect_null(vma_at(s, scratch));
	verify_layout(s, p.pid, inj);
	ckpt_state_free(s);

	cr_assert_eq(ckpt_inject_call(inj, &res, SYS_munmap, app, PG), 0);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	cr_assert_eq(write(p.in_fd, "x\n", 2), 2);
	cr_assert_geq(prog_read_line(&p, buf, sizeof(buf), 5000), 0);
	cr_expect_str_eq(buf, "got x");
	prog_kill(&p);
}

/* An ordinary anonymous page next to scratch memory stays a mapping of its own. */
Test(collect, scratch_does_not_merge_with_program_memory)
{
	struct prog p;
	struct ckpt_inject *inj;
	uint64_t scratch;
	int64_t res;
	char path[64], line[512];
	FILE *f;
	int placed = 0;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_inject_scratch(inj, PG, &scratch), 0);
	for (int side = 0; side < 2; side++) {
		uint64_t at = side ? scratch - PG : scratch + PG;

		cr_assert_eq(ckpt_inject_call(inj, &res, SYS_mmap, at, PG, PROT_READ | PROT_WRITE,
					      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
					      (uint64_t)-1, 0), 0);
		placed += res == (int64_t)at;
	}
	cr_assert_gt(placed, 0, "no free page next to the scratch page");
	snprintf(path, sizeof(path), "/proc/%d/maps", p.pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long a, b;

		if (sscanf(line, "%llx-%llx", &a, &b) == 2 && a <= scratch && b > scratch)
			cr_expect(a == scratch && b == scratch + PG,
				  "scratch merged with a neighbour: %llx-%llx", a, b);
	}
	fclose(f);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	prog_kill(&p);
}

/* A zombie leader: the mm, fds and map_files come from the live thread. */
Test(collect, zombie_leader)
{
	struct prog p;
	struct ckpt_inject *inj;
	struct ckpt_state *s;
	char buf[64], exe[PATH_MAX], prog[PATH_MAX];
	struct stat st;
	bool exe_mapped = false;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "zombie-leader", NULL), 0);
	for (int i = 0; i < 200 && proc_state(p.pid) != 'Z'; i++)
		usleep(5000);
	cr_assert_eq(proc_state(p.pid), 'Z');
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_dump_collect(inj, NULL, &s), 0);
	cr_expect_eq(s->process.pid, p.pid);
	cr_assert_eq(s->nr_threads, 1);
	cr_expect_neq(s->threads[0].tid, p.pid);
	cr_assert_not_null(realpath(prog_path("target", prog, sizeof(prog)), exe));
	cr_expect_str_eq(s->process.exe, exe);
	cr_assert_eq(stat(exe, &st), 0);
	for (size_t i = 0; i < s->mm.nr_vmas; i++)
		if (s->mm.vmas[i].kind == CKPT_STATE_VMA_FILE && !strcmp(s->mm.vmas[i].path, exe) &&
		    s->mm.vmas[i].has_identity && s->mm.vmas[i].id.ino == st.st_ino)
			exe_mapped = true;
	cr_expect(exe_mapped, "the executable's mapping has no identity");
	cr_expect_not_null(fd_of(s, 0));
	cr_expect_gt(s->mm.nr_auxv, 0);
	verify_layout(s, s->threads[0].tid, inj);
	ckpt_state_free(s);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	cr_assert_eq(write(p.in_fd, "y\n", 2), 2);
	cr_assert_geq(prog_read_line(&p, buf, sizeof(buf), 5000), 0);
	cr_expect_str_eq(buf, "got y");
	prog_kill(&p);
}

Test(collect, job_stopped_is_recorded)
{
	struct prog p;
	struct ckpt_inject *inj;
	struct ckpt_state *s;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(kill(p.pid, SIGSTOP), 0);
	for (int i = 0; i < 200 && proc_state(p.pid) != 'T'; i++)
		usleep(5000);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_dump_collect(inj, NULL, &s), 0);
	cr_expect(s->process.job_stopped);
	ckpt_state_free(s);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	usleep(50000);
	cr_expect_eq(proc_state(p.pid), 'T');
	kill(p.pid, SIGCONT);
	prog_kill(&p);
}
