/* SPDX-License-Identifier: MIT */
/*
 * lib/state JSON: a fully populated state survives the round trip field by
 * field (through text too), and hostile documents are refused with a
 * message that names the document and the field, never a crash.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <ckpt/state.h>

#define WHY 512

static void *memdup_(const void *p, size_t n)
{
	void *c = malloc(n);

	cr_assert_not_null(c);
	memcpy(c, p, n);
	return c;
}

static void fill_siginfo(struct ckpt_state_siginfo *si, int signo, int code, unsigned seed)
{
	si->signo = signo;
	si->code = code;
	for (size_t i = 0; i < sizeof(si->raw); i++)
		si->raw[i] = (uint8_t)(seed + i * 13);
	memcpy(si->raw, &signo, sizeof(int));
	memcpy(si->raw + 8, &code, sizeof(int));
}

static void fill_id(struct ckpt_state_identity *id, unsigned seed)
{
	id->dev_major = 0x100 + seed;
	id->dev_minor = 0x12345 + seed;
	id->ino = 0xfedcba9876543210ULL + seed;
	id->mode = S_IFREG | 0640;
	id->size = 0x8000000000000001ULL + seed;
	id->mtime_sec = -123456789 - (int64_t)seed;
	id->mtime_nsec = 999999999 - seed;
	id->rdev_major = 7 + seed;
	id->rdev_minor = 0xfffff - seed;
}

/* Every field set, every value distinct and awkward (high bits, negatives, odd bytes). */
static struct ckpt_state *full_state(void)
{
	struct ckpt_state *s;
	struct ckpt_state_process *p;

	cr_assert_eq(ckpt_state_new(&s), 0);
	p = &s->process;
	p->pid = 4242;
	p->ppid = 1;
	p->pgid = 4240;
	p->sid = 4000;
	p->start_time = 0xffffffffffffffffULL;
	strcpy(p->comm, "z\xc3\xbc\xe2\x82\xac-\n\t\"\\"); /* valid UTF-8 and escapes */
	p->exe = strdup("/usr/bin/\xff\xfe not utf8");
	p->exe_deleted = true;
	fill_id(&p->exe_id, 1);
	p->cwd = strdup("/tmp/cwd with spaces");
	p->root = strdup("/");
	p->umask = 027;
	p->personality = 0x0040000;
	for (int i = 0; i < CKPT_STATE_NR_RLIMITS; i++) {
		p->rlimits[i].cur = 0x1000 + (uint64_t)i;
		p->rlimits[i].max = i % 2 ? ~0ULL : 0x2000 + (uint64_t)i;
	}
	for (int i = 0; i < 4; i++) {
		p->creds.uid[i] = 1000 + (unsigned)i;
		p->creds.gid[i] = 4294967295u - (unsigned)i;
	}
	p->creds.nr_groups = 3;
	p->creds.groups = memdup_((gid_t[]){ 0, 27, 4000000000u }, 3 * sizeof(gid_t));
	p->creds.cap_inh = 1;
	p->creds.cap_prm = 0x1ffffffffffULL;
	p->creds.cap_eff = 0x1fffffffffeULL;
	p->creds.cap_bnd = 0xffffffffffffffffULL;
	p->creds.cap_amb = 0x400;
	p->creds.securebits = 0x2f;
	p->no_new_privs = true;
	p->dumpable = 2;
	p->seccomp = CKPT_STATE_SECCOMP_STRICT;
	p->child_subreaper = true;
	p->job_stopped = true;
	for (int i = 0; i < CKPT_STATE_NSIG; i++) {
		p->sigactions[i].handler = 0x555555550000ULL + (uint64_t)i;
		p->sigactions[i].flags = 0x14000000ULL | (uint64_t)i;
		p->sigactions[i].restorer = 0x7f0000000000ULL + (uint64_t)i;
		p->sigactions[i].mask = 1ULL << i;
	}
	p->shared_sigpending = 0x8000000000000200ULL;
	p->nr_shared_pending = 2;
	p->shared_pending = calloc(2, sizeof(*p->shared_pending));
	fill_siginfo(&p->shared_pending[0], 10, -1, 5);
	fill_siginfo(&p->shared_pending[1], 64, 0x7fffffff, 6);
	for (int i = 0; i < CKPT_STATE_NR_ITIMERS; i++) {
		p->itimers[i].interval_sec = 1000 + i;
		p->itimers[i].interval_usec = 999999 - i;
		p->itimers[i].value_sec = INT64_MAX - i;
		p->itimers[i].value_usec = 7 + i;
	}

	s->nr_threads = 2;
	s->threads = calloc(2, sizeof(*s->threads));
	for (size_t t = 0; t < 2; t++) {
		struct ckpt_state_thread *th = &s->threads[t];
		unsigned long long *r = (unsigned long long *)&th->regs;

		th->tid = 4242 + (pid_t)t * 3;
		snprintf(th->comm, sizeof(th->comm), "thread-%zu", t);
		for (size_t i = 0; i < sizeof(th->regs) / sizeof(*r); i++)
			r[i] = 0x8000000000000000ULL | (t << 32) | (i + 1);
		th->xstate_len = t ? 0 : 1088;
		if (th->xstate_len) {
			th->xstate = malloc(th->xstate_len);
			for (size_t i = 0; i < th->xstate_len; i++)
				((uint8_t *)th->xstate)[i] = (uint8_t)(i * 31 + 1);
		}
		th->sigmask = 0xfffffffe7ffbfeffULL - t;
		th->sigpending = 0x2000 + t;
		th->in_syscall = t == 0;
		th->rseq.ptr = 0x7fabcdef0000ULL + t;
		th->rseq.len = 32;
		th->rseq.sig = 0x53053053;
		th->rseq.flags = 0xffffffff;
		th->robust_list_head = 0x7f1111111111ULL + t;
		th->robust_list_len = 24;
		th->clear_child_tid = 0x7f2222222222ULL + t;
		th->altstack_sp = 0x7f3333333000ULL + t;
		th->altstack_size = 0x10000;
		th->altstack_flags = (int)(t ? 0x80000000u : 2u); /* SS_AUTODISARM | SS_DISABLE */
		th->nr_pending = 1 + t;
		th->pending = calloc(th->nr_pending, sizeof(*th->pending));
		for (size_t i = 0; i < th->nr_pending; i++)
			fill_siginfo(&th->pending[i], 12 + (int)i, -6, (unsigned)(t * 10 + i));
		/* Thread 0 realtime with its timer slack 0, thread 1 deadline, reset on fork. */
		th->has_sched = true;
		th->sched.policy = t ? 6 : 2;
		th->sched.reset_on_fork = t == 1;
		th->sched.priority = t ? 0 : 99;
		th->sched.nice = t ? -20 : 19;
		th->sched.dl_runtime = t ? 10000000 : 0;
		th->sched.dl_deadline = t ? 30000000 : 0;
		th->sched.dl_period = t ? 0xffffffffffffffffULL : 0;
		th->sched.dl_flags = t ? 0x6 : 0;
		th->has_timerslack = true;
		th->timerslack_ns = 0;
		/* Thread 0: two filters (one with the LOG flag), rt io priority; thread 1 strict. */
		th->has_ioprio = true;
		th->ioprio = t ? 0 : (1 << 13) | 7;
		th->has_pdeathsig = true;
		th->pdeathsig = t ? 64 : 9;
		th->has_restart_nr = t == 0;
		th->restart_nr = t ? 0 : 230; /* clock_nanosleep */
		th->has_seccomp = true;
		th->seccomp_mode = t ? CKPT_STATE_SECCOMP_STRICT : CKPT_STATE_SECCOMP_FILTER;
		if (!t) {
			th->nr_seccomp_filters = 2;
			th->seccomp_filters = calloc(2, sizeof(*th->seccomp_filters));
			for (size_t f = 0; f < 2; f++) {
				th->seccomp_filters[f].len = 1 + f * 4095;
				th->seccomp_filters[f].insns = calloc(th->seccomp_filters[f].len, 8);
				for (size_t i = 0; i < th->seccomp_filters[f].len; i++)
					th->seccomp_filters[f].insns[i] = 0x7fff000000000006ULL ^ (i * 0x9e3779b97f4a7c15ULL);
				th->seccomp_filters[f].flags = f ? 2 : 0;
			}
		}
	}
	/* A third thread: no policy saved (an old image), a timer slack that needs 64 bits. */
	s->nr_threads = 3;
	s->threads = realloc(s->threads, 3 * sizeof(*s->threads));
	s->threads[2] = s->threads[1];
	s->threads[2].tid = 4250;
	s->threads[2].xstate = NULL;
	s->threads[2].xstate_len = 0;
	s->threads[2].pending = memdup_(s->threads[1].pending, 2 * sizeof(*s->threads[1].pending));
	memset(&s->threads[2].sched, 0, sizeof(s->threads[2].sched));
	s->threads[2].has_sched = false;
	s->threads[2].has_ioprio = s->threads[2].has_pdeathsig = s->threads[2].has_seccomp = false;
	s->threads[2].ioprio = s->threads[2].pdeathsig = s->threads[2].seccomp_mode = 0;
	s->threads[2].timerslack_ns = 0x123456789abcdefULL;

	s->mm.start_code = 0x555555554000ULL;
	s->mm.end_code = 0x555555556000ULL;
	s->mm.start_data = 0x555555557000ULL;
	s->mm.end_data = 0x555555558000ULL;
	s->mm.start_brk = 0x555555559000ULL;
	s->mm.brk = 0x55555557a000ULL;
	s->mm.start_stack = 0x7ffffffde000ULL;
	s->mm.arg_start = 0x7ffffffde100ULL;
	s->mm.arg_end = 0x7ffffffde200ULL;
	s->mm.env_start = 0x7ffffffde300ULL;
	s->mm.env_end = 0x7ffffffdefffULL;
	s->mm.nr_auxv = 3;
	s->mm.auxv = calloc(3, sizeof(*s->mm.auxv));
	s->mm.auxv[0][0] = 33;
	s->mm.auxv[0][1] = 0x7ffff7fc1000ULL;
	s->mm.auxv[1][0] = 0xffffffffffffffffULL;
	s->mm.auxv[1][1] = 0xffffffffffffffffULL;
	s->mm.nr_vmas = CKPT_STATE_NR_VMA_KINDS;
	s->mm.vmas = calloc(s->mm.nr_vmas, sizeof(*s->mm.vmas));
	for (size_t i = 0; i < s->mm.nr_vmas; i++) {
		struct ckpt_state_vma *v = &s->mm.vmas[i];

		v->start = 0x10000ULL * (i + 1);
		v->end = v->start + 0x3000;
		v->prot = (int)(i % 8);
		v->shared = i % 2;
		v->kind = (enum ckpt_state_vma_kind)i;
		v->offset = 0x1000ULL * i;
		if (v->kind == CKPT_STATE_VMA_FILE || v->kind == CKPT_STATE_VMA_MEMFD ||
		    v->kind == CKPT_STATE_VMA_SYSV_SHM) {
			char buf[64];

			snprintf(buf, sizeof(buf), "/path/%zu\n\x80", i);
			v->path = strdup(buf);
		}
		if (v->kind == CKPT_STATE_VMA_SPECIAL || v->kind == CKPT_STATE_VMA_ANON ||
		    v->kind == CKPT_STATE_VMA_SHMEM_ANON)
			v->name = strdup("a name");
		v->deleted = i % 3 == 0;
		v->has_identity = v->path || v->kind == CKPT_STATE_VMA_SHMEM_ANON;
		if (v->has_identity)
			fill_id(&v->id, (unsigned)i);
		if (v->kind == CKPT_STATE_VMA_FILE) {
			/* A deleted file whose contents are saved, with the dump's refusal (--allow-unrestorable) */
			v->deleted = true;
			v->blob = strdup("blob-map-20000");
			v->reason = strdup("not restorable: a shared mapping of a deleted file of 9 bytes, over ...");
		}
		v->vmflags = (1u << CKPT_STATE_NR_VMF) - 1 - (1u << (i % CKPT_STATE_NR_VMF));
	}
	s->mm.vmas[s->mm.nr_vmas - 1].end = 0xffffffffff601000ULL; /* vsyscall-high */
	s->mm.vmas[s->mm.nr_vmas - 1].start = 0xffffffffff600000ULL;
	s->mm.nr_guards = 2;
	s->mm.guards = calloc(2, sizeof(*s->mm.guards));
	s->mm.guards[0][0] = 0x20000, s->mm.guards[0][1] = 0x22000;
	s->mm.guards[1][0] = 0x30000, s->mm.guards[1][1] = 0x31000;
	s->mm.has_thp_disable = s->mm.has_memory_merge = s->mm.has_mdwe = s->mm.has_membarrier = true;
	s->mm.thp_disable = 3, s->mm.memory_merge = true, s->mm.mdwe = 1, s->mm.membarrier = 5;

	s->nr_fds = CKPT_STATE_NR_FD_KINDS;
	s->fds = calloc(s->nr_fds, sizeof(*s->fds));
	for (size_t i = 0; i < s->nr_fds; i++) {
		struct ckpt_state_fd *f = &s->fds[i];
		char buf[64];

		f->fd = (int)(i * 3 + (i == s->nr_fds - 1 ? 1000000 : 0));
		f->cloexec = i % 2;
		f->kind = (enum ckpt_state_fd_kind)i;
		f->flags = O_RDWR | O_APPEND | O_LARGEFILE;
		f->pos = 0xfffffffffffffff0ULL + i;
		f->mnt_id = -1 + (int)i;
		snprintf(buf, sizeof(buf), "/fd/%zu \xc3", i);
		f->path = strdup(buf);
		f->deleted = i % 3 == 1;
		fill_id(&f->id, (unsigned)i + 100);
		cr_assert_eq(ckpt_state_fd_judge(f), 0);
		f->fdinfo = i % 2 ? strdup("tfd: 5 events: 19 data: 0\n") : NULL;
		f->ctty = f->kind == CKPT_STATE_FD_TTY;
		if (f->kind == CKPT_STATE_FD_PIPE || f->kind == CKPT_STATE_FD_FIFO)
			f->pipe_queued = 65536 + i;
		if (f->kind == CKPT_STATE_FD_MEMFD) {
			f->blob = strdup("blob-fd-24");
			f->has_seals = true;
			f->seals = 0x2f;
		}
		if (f->kind == CKPT_STATE_FD_EVENTFD) {
			f->eventfd_count = 0xfffffffffffffffeULL;
			f->eventfd_semaphore = true;
		}
		if (f->kind == CKPT_STATE_FD_SOCKET) {
			f->sock.found = true;
			f->sock.family = 1;
			f->sock.type = 2;
			f->sock.protocol = 17;
			f->sock.state = 7;
			strcpy(f->sock.local, "@abstract\xff");
			strcpy(f->sock.remote, "[::1]:22");
			f->sock.peer_ino = 0x123456789ULL;
		}
	}
	return s;
}

/* Compare memory and name the first differing byte. */
#define expect_same_bytes(a, b, n, what, ...)                                           \
	do {                                                                          \
		const unsigned char *pa_ = (const void *)(a), *pb_ = (const void *)(b); \
		size_t n_ = (n), i_;                                                  \
		for (i_ = 0; i_ < n_ && pa_[i_] == pb_[i_]; i_++)                     \
			;                                                             \
		cr_expect_eq(i_, n_, what ": first difference at byte %zu", ##__VA_ARGS__, i_); \
	} while (0)

static void expect_same_str(const char *a, const char *b, const char *what)
{
	cr_expect((a == NULL) == (b == NULL), "%s: one is NULL", what);
	if (a && b)
		cr_expect_str_eq(a, b, "%s", what);
}

static void expect_same_siginfos(const struct ckpt_state_siginfo *a, size_t na,
				 const struct ckpt_state_siginfo *b, size_t nb, const char *what)
{
	cr_assert_eq(na, nb, "%s: count", what);
	if (na)
		expect_same_bytes(a, b, na * sizeof(*a), "%s", what);
}

/*
 * Every field of @b equals @a: the scalar parts of each struct are compared
 * as bytes (so a field added later is covered without touching this test),
 * the pointed-to data separately. Both sides come from calloc, so padding is
 * zero on both.
 */
static void expect_same_state(const struct ckpt_state *a, const struct ckpt_state *b)
{
	struct ckpt_state_process pa = a->process, pb = b->process;

	expect_same_str(a->process.exe, b->process.exe, "exe");
	expect_same_str(a->process.cwd, b->process.cwd, "cwd");
	expect_same_str(a->process.root, b->process.root, "root");
	cr_assert_eq(a->process.creds.nr_groups, b->process.creds.nr_groups);
	if (a->process.creds.nr_groups)
		expect_same_bytes(a->process.creds.groups, b->process.creds.groups,
				  a->process.creds.nr_groups * sizeof(gid_t), "groups");
	expect_same_siginfos(a->process.shared_pending, a->process.nr_shared_pending,
			     b->process.shared_pending, b->process.nr_shared_pending, "shared_pending");
	pa.exe = pb.exe = pa.cwd = pb.cwd = pa.root = pb.root = NULL;
	pa.creds.groups = pb.creds.groups = NULL;
	pa.shared_pending = pb.shared_pending = NULL;
	expect_same_bytes(&pa, &pb, sizeof(pa), "process");

	cr_assert_eq(a->nr_threads, b->nr_threads);
	for (size_t i = 0; i < a->nr_threads; i++) {
		struct ckpt_state_thread ta, tb;

		memcpy(&ta, &a->threads[i], sizeof(ta));
		memcpy(&tb, &b->threads[i], sizeof(tb));
		cr_assert_eq(ta.xstate_len, tb.xstate_len);
		cr_expect((ta.xstate == NULL) == (tb.xstate == NULL));
		if (ta.xstate && tb.xstate)
			expect_same_bytes(ta.xstate, tb.xstate, ta.xstate_len, "thread %zu xstate", i);
		expect_same_siginfos(ta.pending, ta.nr_pending, tb.pending, tb.nr_pending, "pending");
		cr_assert_eq(ta.nr_seccomp_filters, tb.nr_seccomp_filters);
		for (size_t f = 0; f < ta.nr_seccomp_filters; f++) {
			cr_assert_eq(ta.seccomp_filters[f].len, tb.seccomp_filters[f].len);
			cr_expect_eq(ta.seccomp_filters[f].flags, tb.seccomp_filters[f].flags);
			expect_same_bytes(ta.seccomp_filters[f].insns, tb.seccomp_filters[f].insns,
					  ta.seccomp_filters[f].len * 8, "thread %zu filter %zu", i, f);
		}
		ta.xstate = tb.xstate = NULL;
		ta.pending = tb.pending = NULL;
		ta.seccomp_filters = tb.seccomp_filters = NULL;
		expect_same_bytes(&ta, &tb, sizeof(ta), "thread %zu", i);
	}

	{
		struct ckpt_state_mm ma = a->mm, mb = b->mm;

		cr_assert_eq(ma.nr_auxv, mb.nr_auxv);
		if (ma.nr_auxv)
			expect_same_bytes(ma.auxv, mb.auxv, ma.nr_auxv * sizeof(*ma.auxv), "auxv");
		cr_assert_eq(ma.nr_vmas, mb.nr_vmas);
		for (size_t i = 0; i < ma.nr_vmas; i++) {
			struct ckpt_state_vma va, vb;

			memcpy(&va, &ma.vmas[i], sizeof(va));
			memcpy(&vb, &mb.vmas[i], sizeof(vb));
			expect_same_str(va.path, vb.path, "vma path");
			expect_same_str(va.name, vb.name, "vma name");
			expect_same_str(va.blob, vb.blob, "vma blob");
			expect_same_str(va.reason, vb.reason, "vma reason");
			va.path = vb.path = va.name = vb.name = NULL;
			va.blob = vb.blob = va.reason = vb.reason = NULL;
			expect_same_bytes(&va, &vb, sizeof(va), "vma %zu", i);
		}
		cr_assert_eq(ma.nr_guards, mb.nr_guards);
		if (ma.nr_guards)
			expect_same_bytes(ma.guards, mb.guards, ma.nr_guards * sizeof(*ma.guards), "guards");
		ma.auxv = mb.auxv = NULL;
		ma.vmas = mb.vmas = NULL;
		ma.guards = mb.guards = NULL;
		expect_same_bytes(&ma, &mb, sizeof(ma), "mm");
	}

	cr_assert_eq(a->nr_fds, b->nr_fds);
	for (size_t i = 0; i < a->nr_fds; i++) {
		struct ckpt_state_fd fa, fb;

		memcpy(&fa, &a->fds[i], sizeof(fa));
		memcpy(&fb, &b->fds[i], sizeof(fb));
		expect_same_str(fa.path, fb.path, "fd path");
		expect_same_str(fa.reason, fb.reason, "fd reason");
		expect_same_str(fa.fdinfo, fb.fdinfo, "fd fdinfo");
		expect_same_str(fa.blob, fb.blob, "fd blob");
		fa.path = fb.path = fa.reason = fb.reason = fa.fdinfo = fb.fdinfo = NULL;
		fa.blob = fb.blob = NULL;
		expect_same_bytes(&fa, &fb, sizeof(fa), "fd %zu", i);
	}
}

/* Through text, as the image does: strict parser, UTF-8 validated. */
static json_object *through_text(json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	struct json_tokener *tok = json_tokener_new();
	json_object *back;

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	back = json_tokener_parse_ex(tok, text, (int)strlen(text));
	cr_assert_not_null(back, "the text does not parse back: %s",
			   json_tokener_error_desc(json_tokener_get_error(tok)));
	json_tokener_free(tok);
	return back;
}

Test(state_json, full_state_round_trip_combined)
{
	_cleanup_state_ struct ckpt_state *s = full_state(), *back = NULL;
	json_object *o = NULL, *t;
	char why[WHY];

	cr_assert_eq(ckpt_state_to_json(s, &o), 0);
	t = through_text(o);
	cr_assert_eq(ckpt_state_from_json(t, why, sizeof(why), &back), 0, "%s", why);
	expect_same_state(s, back);
	json_object_put(o);
	json_object_put(t);
}

Test(state_json, full_state_round_trip_documents)
{
	_cleanup_state_ struct ckpt_state *s = full_state(), *back = NULL;
	json_object *docs[CKPT_STATE_NR_DOCS];
	char why[WHY];

	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++) {
		json_object *o, *v;

		cr_assert_eq(ckpt_state_doc_to_json(s, (enum ckpt_state_doc)d, &o), 0);
		cr_assert(json_object_object_get_ex(o, "version", &v));
		cr_expect_eq(json_object_get_int(v), CKPT_STATE_VERSION);
		docs[d] = through_text(o);
		json_object_put(o);
	}
	cr_assert_eq(ckpt_state_from_docs(docs, why, sizeof(why), &back), 0, "%s", why);
	expect_same_state(s, back);
	/* and once more: what was read writes the same text */
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++) {
		json_object *o;

		cr_assert_eq(ckpt_state_doc_to_json(back, (enum ckpt_state_doc)d, &o), 0);
		cr_expect_str_eq(json_object_to_json_string(o), json_object_to_json_string(docs[d]));
		json_object_put(o);
		json_object_put(docs[d]);
	}
}

Test(state_json, names)
{
	cr_expect_str_eq(ckpt_state_doc_name(CKPT_STATE_DOC_PROCESS), "process.json");
	cr_expect_str_eq(ckpt_state_doc_name(CKPT_STATE_DOC_THREADS), "threads.json");
	cr_expect_str_eq(ckpt_state_doc_name(CKPT_STATE_DOC_MM), "mm.json");
	cr_expect_str_eq(ckpt_state_doc_name(CKPT_STATE_DOC_FILES), "files.json");
	cr_expect_null(ckpt_state_doc_name(CKPT_STATE_NR_DOCS));
	cr_expect_str_eq(ckpt_state_doc_section(CKPT_STATE_DOC_MM), "mm");
	cr_expect_str_eq(ckpt_state_rlimit_name(7), "nofile");
	cr_expect_null(ckpt_state_rlimit_name(16));
	cr_expect_str_eq(ckpt_state_vma_kind_name(CKPT_STATE_VMA_SHMEM_ANON), "shmem_anon");
	cr_expect_str_eq(ckpt_state_vma_kind_name((enum ckpt_state_vma_kind)99), "unknown");
	cr_expect_str_eq(ckpt_state_fd_kind_name(CKPT_STATE_FD_USERFAULTFD), "userfaultfd");
	cr_expect_eq(ckpt_state_doc_to_json(NULL, CKPT_STATE_NR_DOCS, NULL), -EINVAL);
}

Test(state_json, u64_is_exact_hex)
{
	_cleanup_state_ struct ckpt_state *s = full_state();
	json_object *o, *v;

	cr_assert_eq(ckpt_state_doc_to_json(s, CKPT_STATE_DOC_PROCESS, &o), 0);
	cr_assert(json_object_object_get_ex(o, "start_time", &v));
	cr_expect_str_eq(json_object_get_string(v), "0xffffffffffffffff");
	cr_assert(json_object_object_get_ex(o, "umask", &v));
	cr_expect(json_object_is_type(v, json_type_int));
	cr_expect_eq(json_object_get_int(v), 027);
	/* not UTF-8: {"base64": ...} */
	cr_assert(json_object_object_get_ex(o, "exe", &v));
	cr_assert(json_object_object_get_ex(v, "path", &v));
	cr_expect(json_object_is_type(v, json_type_object));
	json_object_put(o);
}

/* ---- hostile input ---- */

/*
 * Walk @path ("threads/threads/0/regs/rip") from @root; the last segment is
 * returned in @last with its parent.
 */
static json_object *walk(json_object *root, const char *path, char *last, size_t len)
{
	char buf[256], *save = NULL, *seg, *next;
	json_object *cur = root;

	snprintf(buf, sizeof(buf), "%s", path);
	seg = strtok_r(buf, "/", &save);
	while (seg && (next = strtok_r(NULL, "/", &save))) {
		json_object *child = NULL;

		if (json_object_is_type(cur, json_type_array))
			child = json_object_array_get_idx(cur, (size_t)atoi(seg));
		else
			json_object_object_get_ex(cur, seg, &child);
		cr_assert_not_null(child, "no '%s' in %s", seg, path);
		cur = child;
		seg = next;
	}
	snprintf(last, len, "%s", seg);
	return cur;
}

/* Replace (or with @value NULL, delete) the member at @path. */
static void mutate(json_object *root, const char *path, const char *value)
{
	char last[64];
	json_object *parent = walk(root, path, last, sizeof(last));
	json_object *v = value ? json_tokener_parse(value) : NULL;

	cr_assert(!value || v, "bad test value %s", value);
	if (json_object_is_type(parent, json_type_array)) {
		size_t idx = (size_t)atoi(last);

		if (v)
			json_object_array_put_idx(parent, idx, v);
		else
			json_object_array_del_idx(parent, idx, 1);
	} else if (v) {
		json_object_object_add(parent, last, v);
	} else {
		json_object_object_del(parent, last);
	}
}

static const struct hostile {
	const char *path, *value; /* value NULL: delete */
	int err;
	const char *why;          /* expected in the message */
} hostile[] = {
	{ "process/version", "2", -EPROTONOSUPPORT, "process.json: version: 2 is not supported" },
	{ "mm/version", "0", -EPROTONOSUPPORT, "mm.json: version" },
	{ "files/version", NULL, -EBADMSG, "files.json: version: missing" },
	{ "threads/version", "\"1\"", -EBADMSG, "threads.json: version: is a string, not an integer" },
	{ "process/pid", "-1", -EBADMSG, "process.json: pid: out of range" },
	{ "process/pid", "1099511627776", -EBADMSG, "process.json: pid: out of range" },
	{ "process/pid", "1.5", -EBADMSG, "process.json: pid: is a fractional number" },
	{ "process/pid", "18446744073709551615", -EBADMSG, "process.json: pid: out of range" },
	{ "process/start_time", "\"0x\"", -EBADMSG, "process.json: start_time: not a string" },
	{ "process/start_time", "\"0X10\"", -EBADMSG, "process.json: start_time" },
	{ "process/start_time", "\"0x1ffffffffffffffff\"", -EBADMSG, "process.json: start_time" },
	{ "process/start_time", "\"0xABC\"", -EBADMSG, "process.json: start_time" },
	{ "process/start_time", "\"-0x1\"", -EBADMSG, "process.json: start_time" },
	{ "process/start_time", "12", -EBADMSG, "process.json: start_time: is an integer, not a string" },
	{ "process/comm", "\"0123456789012345678901234567890123456789012345678901234567890123\"",
	  -EBADMSG, "process.json: comm: longer than 63 bytes" },
	{ "process/comm", "{\"base64\": \"AA==\"}", -EBADMSG, "process.json: comm.base64: holds a NUL" },
	{ "process/comm", "\"a\\u0000b\"", -EBADMSG, "process.json: comm: holds a NUL" },
	{ "process/cwd", "{\"base64\": 5}", -EBADMSG, "process.json: cwd.base64: is an integer" },
	{ "process/cwd", "{\"base64\": \"Zh==\"}", -EBADMSG, "process.json: cwd.base64: not canonical" },
	{ "process/cwd", "{}", -EBADMSG, "process.json: cwd: neither a string" },
	{ "process/exe/identity/mtime_nsec", "1000000000", -EBADMSG,
	  "process.json: exe.identity.mtime_nsec: out of range" },
	{ "process/exe/identity", NULL, -EBADMSG, "process.json: exe.identity: missing" },
	{ "process/umask", "512", -EBADMSG, "process.json: umask: out of range" },
	{ "process/rlimits/nofile", NULL, -EBADMSG, "process.json: rlimits.nofile: missing" },
	{ "process/rlimits/core/cur", "\"0xffffffffffffffff\"", -EBADMSG,
	  "process.json: rlimits.core.cur: above max" },
	{ "process/creds/uid", "[1, 2, 3]", -EBADMSG, "process.json: creds.uid: has 3 elements" },
	{ "process/creds/groups", "[1, -2]", -EBADMSG, "process.json: creds.groups[1]: not an id" },
	{ "process/creds/cap_eff", "true", -EBADMSG, "process.json: creds.cap_eff" },
	{ "process/dumpable", "3", -EBADMSG, "process.json: dumpable: out of range" },
	{ "process/sigactions/63", NULL, -EBADMSG, "process.json: sigactions: has 63 elements" },
	{ "process/sigactions/3/signo", "7", -EBADMSG, "process.json: sigactions[3].signo: 7" },
	{ "process/sigactions/3", "[]", -EBADMSG, "process.json: sigactions[3]: not an object" },
	{ "process/shared_pending/1/raw", "\"AAAA\"", -EBADMSG,
	  "process.json: shared_pending[1].raw: 3 bytes, not 128" },
	{ "process/shared_pending/0/signo", "65", -EBADMSG,
	  "process.json: shared_pending[0].signo: out of range" },
	{ "process/shared_pending/0/signo", "11", -EBADMSG,
	  "process.json: shared_pending[0].signo: 11 but raw says 10" },
	{ "process/itimers/prof/value_usec", "1000000", -EBADMSG,
	  "process.json: itimers.prof.value_usec: out of range" },
	{ "threads/pid", "4243", -EBADMSG, "threads.json: pid: 4243, but process.json is about pid 4242" },
	{ "threads/threads", "[]", -EBADMSG, "threads.json: threads: empty" },
	{ "threads/threads", "{}", -EBADMSG, "threads.json: threads: is an object, not an array" },
	{ "threads/threads/1/tid", "4242", -EBADMSG, "threads.json: threads[1].tid: 4242 appears twice" },
	{ "threads/threads/0/regs/rip", "5", -EBADMSG, "threads.json: threads[0].regs.rip" },
	{ "threads/threads/1/regs/gs", NULL, -EBADMSG, "threads.json: threads[1].regs.gs: missing" },
	{ "threads/threads/0/xstate", "\"!!!!\"", -EBADMSG, "threads.json: threads[0].xstate: not canonical" },
	{ "threads/threads/0/xstate", "\"\"", -EBADMSG, "threads.json: threads[0].xstate: empty" },
	{ "threads/threads/1/pending/1/code", "5", -EBADMSG,
	  "threads.json: threads[1].pending[1].code: 5 but raw says -6" },
	{ "threads/threads/0/rseq/len", "4294967296", -EBADMSG, "threads.json: threads[0].rseq.len" },
	{ "threads/threads/0/altstack", NULL, -EBADMSG, "threads.json: threads[0].altstack: missing" },
	{ "threads/threads/0/sched/policy", "\"iso\"", -EBADMSG,
	  "threads.json: threads[0].sched.policy: unknown value \"iso\"" },
	{ "threads/threads/0/sched/policy", "1", -EBADMSG, "threads.json: threads[0].sched.policy" },
	{ "threads/threads/0/sched/priority", "0", -EBADMSG,
	  "threads.json: threads[0].sched.priority: 0 for policy rr" },
	{ "threads/threads/1/sched/priority", "5", -EBADMSG,
	  "threads.json: threads[1].sched.priority: 5 for policy deadline" },
	{ "threads/threads/0/sched/priority", "100", -EBADMSG,
	  "threads.json: threads[0].sched.priority: out of range" },
	{ "threads/threads/0/sched/nice", "20", -EBADMSG, "threads.json: threads[0].sched.nice: out of range" },
	{ "threads/threads/0/sched/reset_on_fork", NULL, -EBADMSG,
	  "threads.json: threads[0].sched.reset_on_fork: missing" },
	{ "threads/threads/1/sched/deadline", NULL, -EBADMSG,
	  "threads.json: threads[1].sched.deadline: missing (required for policy deadline)" },
	{ "threads/threads/0/sched/deadline", "{}", -EBADMSG,
	  "threads.json: threads[0].sched.deadline: not expected for policy rr" },
	{ "threads/threads/1/sched/deadline/period", "0", -EBADMSG,
	  "threads.json: threads[1].sched.deadline.period: is an integer, not a string" },
	{ "threads/threads/1/sched/deadline/flags", "1", -EBADMSG,
	  "threads.json: threads[1].sched.deadline.flags: 0x1: only reclaim" },
	{ "threads/threads/0/sched", "[]", -EBADMSG, "threads.json: threads[0].sched: is an array" },
	{ "threads/threads/0/timerslack_ns", "50000", -EBADMSG,
	  "threads.json: threads[0].timerslack_ns: is an integer, not a string" },
	{ "mm/pid", "1", -EBADMSG, "mm.json: pid: 1, but" },
	{ "mm/brk", NULL, -EBADMSG, "mm.json: brk: missing" },
	{ "mm/auxv/0", "[\"0x0\", \"0x0\"]", -EBADMSG, "mm.json: auxv[0]: AT_NULL" },
	{ "mm/auxv/2", "[\"0x6\", \"0x1000\"]", -EBADMSG, "mm.json: auxv[2]: AT_NULL" },
	{ "mm/auxv/1", "[\"0x6\"]", -EBADMSG, "mm.json: auxv[1]: not an array [type, value]" },
	{ "mm/auxv/1", "[6, \"0x1\"]", -EBADMSG, "mm.json: auxv[1].type" },
	{ "mm/vmas/0/end", "\"0x10000\"", -EBADMSG, "mm.json: vmas[0].end: [start, end) is empty" },
	{ "mm/vmas/0/end", "\"0x10001\"", -EBADMSG, "mm.json: vmas[0].end: [start, end) is empty or not page-aligned" },
	{ "mm/vmas/2/start", "\"0x11000\"", -EBADMSG, "mm.json: vmas[2].start: overlaps" },
	{ "mm/vmas/1/kind", "\"weird\"", -EBADMSG, "mm.json: vmas[1].kind: unknown value \"weird\"" },
	{ "mm/vmas/1/vmflags", "[\"io\", \"io\"]", -EBADMSG, "mm.json: vmas[1].vmflags[1]: not a known flag" },
	{ "mm/vmas/1/vmflags", "[\"zz\"]", -EBADMSG, "mm.json: vmas[1].vmflags[0]" },
	{ "mm/vmas/1/path", NULL, -EBADMSG, "mm.json: vmas[1].path: missing" },
	{ "mm/vmas/1/identity", NULL, -EBADMSG, "mm.json: vmas[1].identity: missing" },
	{ "mm/vmas/2/path", "\"/x\"", -EBADMSG, "mm.json: vmas[2].path: not expected" },
	{ "mm/vmas/11/name", NULL, -EBADMSG, "mm.json: vmas[11].name: missing" },
	{ "mm/vmas/1/prot", "8", -EBADMSG, "mm.json: vmas[1].prot: out of range" },
	{ "mm/vmas/1/offset", "\"0x10\"", -EBADMSG, "mm.json: vmas[1].offset: not page-aligned" },
	{ "mm/vmas/1/blob", "\"../pages.zst\"", -EBADMSG, "mm.json: vmas[1].blob: not a file name" },
	{ "mm/vmas/1/blob", "\".x\"", -EBADMSG, "mm.json: vmas[1].blob: not a file name" },
	{ "mm/vmas/1/deleted", "false", -EBADMSG, "mm.json: vmas[1].blob: only for a mapping of a deleted file" },
	{ "mm/vmas/2/blob", "\"blob-map-30000\"", -EBADMSG, "mm.json: vmas[2].blob: only for a mapping of a deleted file" },
	{ "mm/vmas/1/reason", "7", -EBADMSG, "mm.json: vmas[1].reason: is an integer" },
	{ "mm/guards/1", "[\"0x21000\", \"0x22000\"]", -EBADMSG, "mm.json: guards[1]: empty, not page-aligned, or not ascending" },
	{ "mm/membarrier", "[\"global\"]", -EBADMSG, "mm.json: membarrier[0]: not a known registration" },
	{ "mm/thp_disable", "4", -EBADMSG, "mm.json: thp_disable: out of range" },
	{ "files/fds/1/fd", "0", -EBADMSG, "files.json: fds[1].fd: 0 after 0" },
	{ "files/fds/1/fd", "-1", -EBADMSG, "files.json: fds[1].fd: out of range" },
	{ "files/fds/0/flags", "524288", -EBADMSG, "files.json: fds[0].flags: holds O_CLOEXEC" },
	{ "files/fds/0/reason", "\"x\"", -EBADMSG, "files.json: fds[0].reason: given for a restorable fd" },
	{ "files/fds/6/reason", NULL, -EBADMSG, "files.json: fds[6].reason: missing" },
	{ "files/fds/9/eventfd", NULL, -EBADMSG, "files.json: fds[9].eventfd: missing" },
	{ "files/fds/0/eventfd", "{}", -EBADMSG, "files.json: fds[0].eventfd: not expected" },
	{ "files/fds/0/pipe", "{\"queued\": 1}", -EBADMSG, "files.json: fds[0].pipe: not expected" },
	{ "files/fds/4/pipe/queued", "-1", -EBADMSG, "files.json: fds[4].pipe.queued" },
	{ "files/fds/5/pipe/queued", NULL, -EBADMSG, "files.json: fds[5].pipe.queued: missing" },
	{ "files/fds/8/blob", "\"../../etc/passwd\"", -EBADMSG, "files.json: fds[8].blob: not a file name" },
	{ "files/fds/8/blob", "\".hidden\"", -EBADMSG, "files.json: fds[8].blob: not a file name" },
	{ "files/fds/8/blob", "\"\"", -EBADMSG, "files.json: fds[8].blob: not a file name" },
	{ "files/fds/8/blob", "7", -EBADMSG, "files.json: fds[8].blob: is an integer" },
	{ "files/fds/8/seals", "-1", -EBADMSG, "files.json: fds[8].seals: out of range" },
	{ "files/fds/4/seals", "1", -EBADMSG, "files.json: fds[4].seals: not expected" },
	{ "files/fds/4/blob", "\"blob-fd-12\"", -EBADMSG, "files.json: fds[4].blob: not expected" },
	{ "files/fds/0/blob", "\"blob-fd-0\"", -EBADMSG, "files.json: fds[0].blob: not expected" },
	{ "files/fds/6/socket/local", "\"0123456789012345678901234567890123456789012345678901234567890123"
				      "0123456789012345678901234567890123456789012345678901234567890123"
				      "0123456789012345678901234567890123\"",
	  -EBADMSG, "files.json: fds[6].socket.local: longer than 159 bytes" },
	{ "files/fds/7/tty/ctty", "1", -EBADMSG, "files.json: fds[7].tty.ctty: is an integer, not a boolean" },
	{ "files/fds/2/kind", "\"chr \"", -EBADMSG, "files.json: fds[2].kind: unknown value" },
	{ "files/fds", NULL, -EBADMSG, "files.json: fds: missing" },
	{ "mm", NULL, -EBADMSG, "state: mm: missing" },
	{ "files", "[]", -EBADMSG, "state: files: is an array, not an object" },
	{ "threads", "{\"version\": 1}", -EBADMSG, "threads.json: pid: missing" },
};

Test(state_json, hostile_documents_are_refused)
{
	_cleanup_state_ struct ckpt_state *s = full_state();
	json_object *good;

	cr_assert_eq(ckpt_state_to_json(s, &good), 0);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const struct hostile *h = &hostile[i];
		json_object *o = NULL;
		struct ckpt_state *back = (struct ckpt_state *)0x1;
		char why[WHY] = "";
		int r;

		cr_assert_eq(json_object_deep_copy(good, &o, NULL), 0);
		mutate(o, h->path, h->value);
		r = ckpt_state_from_json(o, why, sizeof(why), &back);
		cr_expect_eq(r, h->err, "%s = %s: got %d (%s)", h->path, h->value ?: "(deleted)", r, why);
		cr_expect(strstr(why, h->why) != NULL, "%s = %s: message '%s' lacks '%s'", h->path,
			  h->value ?: "(deleted)", why, h->why);
		cr_expect_eq(back, (struct ckpt_state *)0x1, "output written on error");
		json_object_put(o);
	}
	json_object_put(good);
}

/* ---- mm.json from its text (ckpt_state_from_docs_mm_text) ---- */

/* The four documents of @s; mm.json as the image writes it (lib/image json_to_buf). */
static void docs_and_mm_text(const struct ckpt_state *s, json_object *docs[CKPT_STATE_NR_DOCS], char **ret_text)
{
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		cr_assert_eq(ckpt_state_doc_to_json(s, (enum ckpt_state_doc)d, &docs[d]), 0);
	*ret_text = strdup(json_object_to_json_string_ext(docs[CKPT_STATE_DOC_MM], JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_SPACED |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	cr_assert_not_null(*ret_text);
}

/* What the whole-document path makes of mm.json @text: 0 and @ret, or the error. */
static int slow_from_text(json_object *docs[CKPT_STATE_NR_DOCS], const char *text, char *why, size_t whylen,
			  struct ckpt_state **ret)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *mm, *keep = docs[CKPT_STATE_DOC_MM];
	size_t end;
	int r = -EBADMSG;

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	mm = json_tokener_parse_ex(tok, text, (int)strlen(text));
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (mm && strspn(text + end, " \t\n\r") == strlen(text + end)) {
		docs[CKPT_STATE_DOC_MM] = mm;
		r = ckpt_state_from_docs(docs, why, whylen, ret);
		docs[CKPT_STATE_DOC_MM] = keep;
	}
	json_object_put(mm);
	return r;
}

static void put_docs(json_object *docs[CKPT_STATE_NR_DOCS])
{
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		json_object_put(docs[d]);
}

/*
 * Every kind of mapping (most parsed alone by json-c), and @extra anonymous
 * ones the scanner reads, between the last two (indexes below the last stay).
 */
static struct ckpt_state *many_maps_state(size_t extra)
{
	struct ckpt_state *s = full_state();
	size_t n = s->mm.nr_vmas;
	struct ckpt_state_vma *v = reallocarray(s->mm.vmas, n + extra, sizeof(*v));

	cr_assert_not_null(v);
	v[n + extra - 1] = v[n - 1];
	memset(v + n - 1, 0, extra * sizeof(*v));
	for (size_t i = n - 1; i < n - 1 + extra; i++) {
		v[i].start = 0x100000000ULL + i * 0x2000ULL;
		v[i].end = v[i].start + 0x1000;
		v[i].prot = (int)(i % 8);
		v[i].shared = i % 5 == 0;
		v[i].kind = i % 7 == 3 ? CKPT_STATE_VMA_STACK : CKPT_STATE_VMA_ANON;
		v[i].offset = (i % 3) * 0x1000ULL;
		v[i].deleted = i % 11 == 0;
		v[i].vmflags = (uint32_t)(i * 2654435761u) & ((1u << CKPT_STATE_NR_VMF) - 1);
		if (v[i].kind == CKPT_STATE_VMA_ANON && i % 4 == 0)
			v[i].name = strdup(i % 8 ? "[anon:a \"quoted\" one/with\\ slashes]" : "[heap]");
	}
	s->mm.vmas = v;
	s->mm.nr_vmas = n + extra;
	return s;
}

Test(state_json, mm_text_reads_what_the_document_says)
{
	_cleanup_state_ struct ckpt_state *s = many_maps_state(5000), *fast = NULL, *slow = NULL;
	json_object *docs[CKPT_STATE_NR_DOCS];
	char why[WHY] = "", *text;

	for (size_t i = 1; i < s->mm.nr_vmas; i++)
		cr_assert_leq(s->mm.vmas[i - 1].end, s->mm.vmas[i].start, "the test's mappings overlap");
	docs_and_mm_text(s, docs, &text);
	cr_assert_eq(ckpt_state_from_docs_mm_text(docs, text, strlen(text), why, sizeof(why), &fast), 0, "%s", why);
	cr_assert_eq(slow_from_text(docs, text, why, sizeof(why), &slow), 0, "%s", why);
	expect_same_state(s, fast);
	expect_same_state(slow, fast);
	/* Other white space, the members in another order: the same. */
	{
		json_object *mm = docs[CKPT_STATE_DOC_MM], *vmas, *r = json_object_new_object();
		_cleanup_state_ struct ckpt_state *f2 = NULL;
		char *t2;

		cr_assert(json_object_object_get_ex(mm, "vmas", &vmas));
		json_object_object_add(r, "vmas", json_object_get(vmas));
		json_object_object_foreach(mm, k, val) if (strcmp(k, "vmas"))
			json_object_object_add(r, k, json_object_get(val));
		t2 = strdup(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN));
		cr_assert_eq(ckpt_state_from_docs_mm_text(docs, t2, strlen(t2), why, sizeof(why), &f2), 0, "%s", why);
		expect_same_state(s, f2);
		json_object_put(r);
		free(t2);
	}
	free(text);
	put_docs(docs);
}

/* Every hostile document: the text path refuses it too (-EAGAIN for mm.json), never another state. */
Test(state_json, mm_text_refuses_what_the_document_refuses)
{
	_cleanup_state_ struct ckpt_state *s = many_maps_state(50);
	json_object *good;

	cr_assert_eq(ckpt_state_to_json(s, &good), 0);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const struct hostile *h = &hostile[i];
		json_object *o = NULL, *docs[CKPT_STATE_NR_DOCS];
		struct ckpt_state *back = (struct ckpt_state *)0x1;
		char path[128], why[WHY] = "", why_slow[WHY] = "";
		const char *text;
		int r, rs;

		if (!strchr(h->path, '/'))
			continue; /* a whole document: the combined object only */
		cr_assert_eq(json_object_deep_copy(good, &o, NULL), 0);
		snprintf(path, sizeof(path), "%s", h->path);
		/* The last mapping of full_state() is after the 50 extra ones now. */
		if (!strncmp(h->path, "mm/vmas/", 8) && atoi(h->path + 8) == CKPT_STATE_NR_VMA_KINDS - 1)
			snprintf(path, sizeof(path), "mm/vmas/%d%s", CKPT_STATE_NR_VMA_KINDS - 1 + 50,
				 strchr(h->path + 8, '/') ?: "");
		mutate(o, path, h->value);
		for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
			cr_assert(json_object_object_get_ex(o, ckpt_state_doc_section((enum ckpt_state_doc)d), &docs[d]));
		text = json_object_to_json_string_ext(docs[CKPT_STATE_DOC_MM], JSON_C_TO_STRING_PRETTY);
		rs = ckpt_state_from_docs(docs, why_slow, sizeof(why_slow), &back);
		cr_expect_neq(rs, 0, "%s: the table's case is not refused: %s", path, why_slow);
		r = ckpt_state_from_docs_mm_text(docs, text, strlen(text), why, sizeof(why), &back);
		if (!strncmp(h->path, "mm/", 3))
			cr_expect_eq(r, -EAGAIN, "%s = %s: got %d (%s)", path, h->value ?: "(deleted)", r, why);
		else
			cr_expect(r == rs && !strcmp(why, why_slow), "%s: %d '%s', not %d '%s'", path, r, why, rs,
				  why_slow);
		cr_expect_eq(back, (struct ckpt_state *)0x1, "output written on error");
		json_object_put(o);
	}
	json_object_put(good);
}

/*
 * Random damage to mm.json's text, mostly in its mappings: what the text
 * path accepts, the whole-document path accepts too, with the same state.
 */
Test(state_json, mm_text_damaged_never_reads_otherwise)
{
	_cleanup_state_ struct ckpt_state *s = many_maps_state(200);
	json_object *docs[CKPT_STATE_NR_DOCS];
	unsigned int seed = 4242;
	int fast_ok = 0, refused = 0;
	char *text;
	size_t len, vmas_at;

	docs_and_mm_text(s, docs, &text);
	len = strlen(text);
	vmas_at = (size_t)(strstr(text, "\"vmas\"") - text);
	for (int iter = 0; iter < 3000; iter++) {
		/* Half of it digits: many a damaged document still reads. */
		static const char junk[] = "0x\"{}[],:-1e9ntfa\\u00 \t\n/17\x80"
					   "0123456789abcdef0123456789abcdef";
		struct ckpt_state *fast = NULL, *slow = NULL;
		char *t = strdup(text), why[WHY] = "";
		int rf, rs;

		for (int k = 0; k < 1 + iter % 3; k++) {
			/* Mostly the mappings; at times the head of the document. */
			size_t at = iter % 8 ? vmas_at + (size_t)rand_r(&seed) % (len - vmas_at)
					     : (size_t)rand_r(&seed) % len;

			t[at] = junk[(size_t)rand_r(&seed) % (sizeof(junk) - 1)];
		}
		rf = ckpt_state_from_docs_mm_text(docs, t, len, why, sizeof(why), &fast);
		rs = slow_from_text(docs, t, why, sizeof(why), &slow);
		cr_assert(rf == 0 || rf == -EAGAIN, "iteration %d: %d", iter, rf);
		if (rf == 0) {
			cr_assert_eq(rs, 0, "iteration %d: the text path took what the document path refuses: %s",
				     iter, t + vmas_at);
			expect_same_state(slow, fast);
			fast_ok++;
		} else {
			refused++;
		}
		ckpt_state_free(fast);
		ckpt_state_free(slow);
		free(t);
	}
	cr_expect_gt(fast_ok, 25, "the damage never left a document the text path reads (%d, %d refused)", fast_ok, refused);
	cr_expect_gt(refused, 100, "the damage never reached the scanner");
	free(text);
	put_docs(docs);
}

/* Checkpoints from before "sched" and "timerslack_ns" read, with both marked absent. */
Test(state_json, threads_without_scheduling_still_read)
{
	_cleanup_state_ struct ckpt_state *s = full_state();
	struct ckpt_state *back = NULL;
	json_object *o;
	char why[WHY] = "";

	cr_assert_eq(ckpt_state_to_json(s, &o), 0);
	for (int i = 0; i < 3; i++) {
		char path[64];

		snprintf(path, sizeof(path), "threads/threads/%d/sched", i);
		if (i < 2)
			mutate(o, path, NULL);
		snprintf(path, sizeof(path), "threads/threads/%d/timerslack_ns", i);
		mutate(o, path, NULL);
	}
	cr_assert_eq(ckpt_state_from_json(o, why, sizeof(why), &back), 0, "%s", why);
	for (size_t i = 0; i < back->nr_threads; i++) {
		cr_expect_not(back->threads[i].has_sched, "thread %zu", i);
		cr_expect_not(back->threads[i].has_timerslack, "thread %zu", i);
	}
	cr_expect_eq(back->threads[1].tid, s->threads[1].tid);
	ckpt_state_free(back);
	json_object_put(o);
}

/* The policy names are the kernel's numbers. */
Test(state_json, sched_policy_names)
{
	static const char *const want[] = { "other", "fifo", "rr", "batch", NULL, "idle", "deadline",
					    "ext" };

	for (int i = 0; i < 8; i++) {
		if (want[i])
			cr_expect_str_eq(ckpt_state_sched_policy_name(i), want[i]);
		else
			cr_expect_null(ckpt_state_sched_policy_name(i));
	}
	cr_expect_null(ckpt_state_sched_policy_name(-1));
	cr_expect_null(ckpt_state_sched_policy_name(8));
}

/* Checkpoints from before "pipe" have none: they still read, with nothing queued. */
Test(state_json, a_pipe_without_its_pipe_object_still_reads)
{
	_cleanup_state_ struct ckpt_state *s = full_state();
	struct ckpt_state *back = NULL;
	json_object *o;
	char why[WHY] = "";

	cr_assert_eq(s->fds[4].kind, CKPT_STATE_FD_PIPE);
	cr_assert_eq(s->fds[5].kind, CKPT_STATE_FD_FIFO);
	cr_assert_eq(ckpt_state_to_json(s, &o), 0);
	mutate(o, "files/fds/4/pipe", NULL);
	mutate(o, "files/fds/5/pipe", NULL);
	cr_assert_eq(ckpt_state_from_json(o, why, sizeof(why), &back), 0, "%s", why);
	cr_expect_eq(back->fds[4].pipe_queued, 0);
	cr_expect_eq(back->fds[5].pipe_queued, 0);
	cr_expect_eq(back->fds[4].id.ino, s->fds[4].id.ino);
	ckpt_state_free(back);
	json_object_put(o);
}

Test(state_json, not_objects)
{
	json_object *docs[CKPT_STATE_NR_DOCS] = { NULL };
	json_object *arr = json_object_new_array();
	struct ckpt_state *back;
	char why[WHY];

	cr_expect_eq(ckpt_state_from_json(NULL, why, sizeof(why), &back), -EBADMSG);
	cr_expect_eq(ckpt_state_from_json(arr, why, sizeof(why), &back), -EBADMSG);
	cr_expect_str_eq(why, "state: not a JSON object");
	cr_expect_eq(ckpt_state_from_docs(docs, why, sizeof(why), &back), -EBADMSG);
	cr_expect_str_eq(why, "process.json: missing");
	docs[0] = arr;
	cr_expect_eq(ckpt_state_from_docs(docs, NULL, 0, &back), -EBADMSG); /* no why: fine */
	json_object_put(arr);
}

/* Arrays far larger than anything real are refused before allocating for them. */
Test(state_json, huge_arrays)
{
	static const struct {
		const char *doc, *key, *why;
		size_t n;
	} cases[] = {
		{ "threads", "threads", "threads.json: threads: has 65537 elements", 65537 },
		{ "mm", "auxv", "mm.json: auxv: has 1025 elements", 1025 },
	};
	_cleanup_state_ struct ckpt_state *s = full_state();

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		json_object *o, *sec, *arr = json_object_new_array_ext((int)cases[c].n);
		struct ckpt_state *back;
		char why[WHY];

		cr_assert_eq(ckpt_state_to_json(s, &o), 0);
		for (size_t i = 0; i < cases[c].n; i++)
			json_object_array_add(arr, json_object_new_int(0));
		cr_assert(json_object_object_get_ex(o, cases[c].doc, &sec));
		json_object_object_add(sec, cases[c].key, arr);
		cr_expect_eq(ckpt_state_from_json(o, why, sizeof(why), &back), -EBADMSG);
		cr_expect(strstr(why, cases[c].why), "'%s'", why);
		json_object_put(o);
	}
	/* 70000 groups */
	{
		json_object *o, *sec, *creds, *arr = json_object_new_array();
		struct ckpt_state *back;
		char why[WHY];

		cr_assert_eq(ckpt_state_to_json(s, &o), 0);
		for (size_t i = 0; i < 70000; i++)
			json_object_array_add(arr, json_object_new_int(1));
		json_object_object_get_ex(o, "process", &sec);
		json_object_object_get_ex(sec, "creds", &creds);
		json_object_object_add(creds, "groups", arr);
		cr_expect_eq(ckpt_state_from_json(o, why, sizeof(why), &back), -EBADMSG);
		cr_expect(strstr(why, "process.json: creds.groups: has 70000 elements"), "'%s'", why);
		json_object_put(o);
	}
}

/*
 * Random damage to the text: whatever still parses as JSON is either
 * accepted or refused cleanly (the sanitizer build checks "cleanly").
 */
Test(state_json, random_damage_never_crashes)
{
	_cleanup_state_ struct ckpt_state *s = full_state();
	json_object *o;
	char *text;
	size_t len;
	unsigned int seed = 12345;
	int refused = 0, accepted = 0;

	cr_assert_eq(ckpt_state_to_json(s, &o), 0);
	text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	len = strlen(text);
	json_object_put(o);
	for (int iter = 0; iter < 3000; iter++) {
		char *t = strdup(text);
		static const char junk[] = "0x\"{}[],:-1e9ntfa\\u00";
		json_object *d;

		for (int k = 0; k < 1 + iter % 4; k++) {
			size_t at = (size_t)rand_r(&seed) % len;

			t[at] = junk[(size_t)rand_r(&seed) % (sizeof(junk) - 1)];
		}
		d = json_tokener_parse(t);
		if (d) {
			struct ckpt_state *back = NULL;
			char why[WHY];
			int r = ckpt_state_from_json(d, why, sizeof(why), &back);

			cr_assert(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT, "iteration %d: %d",
				  iter, r);
			if (r == 0)
				accepted++;
			else
				refused++;
			ckpt_state_free(back);
			json_object_put(d);
		}
		free(t);
	}
	free(text);
	cr_expect_gt(refused, 100, "the damage never reached the parser");
	(void)accepted;
}

/* ---- restore policy ---- */

Test(state_policy, fd_judge)
{
	static const struct {
		enum ckpt_state_fd_kind kind;
		unsigned int rmaj, rmin;
		bool deleted, ok;
		const char *why;
	} cases[] = {
		{ CKPT_STATE_FD_REGULAR, 0, 0, false, true, NULL },
		{ CKPT_STATE_FD_REGULAR, 0, 0, true, false, "deleted" },
		{ CKPT_STATE_FD_DIRECTORY, 0, 0, false, true, NULL },
		{ CKPT_STATE_FD_CHR, 1, 3, false, true, NULL },
		{ CKPT_STATE_FD_CHR, 1, 5, false, true, NULL },
		{ CKPT_STATE_FD_CHR, 1, 7, false, true, NULL },
		{ CKPT_STATE_FD_CHR, 1, 8, false, true, NULL },
		{ CKPT_STATE_FD_CHR, 1, 9, false, true, NULL },
		{ CKPT_STATE_FD_CHR, 1, 1, false, false, "character device" }, /* /dev/mem */
		{ CKPT_STATE_FD_CHR, 10, 232, false, false, "character device" }, /* /dev/kvm */
		{ CKPT_STATE_FD_TTY, 136, 0, false, true, NULL },
		{ CKPT_STATE_FD_PIPE, 0, 0, false, true, NULL },
		{ CKPT_STATE_FD_FIFO, 0, 0, false, true, NULL },
		{ CKPT_STATE_FD_MEMFD, 0, 0, true, true, NULL },
		{ CKPT_STATE_FD_BLK, 8, 0, false, false, "block device" },
		{ CKPT_STATE_FD_SOCKET, 0, 0, false, false, "not restorable yet: a socket the checkpoint does not describe" },
		{ CKPT_STATE_FD_EVENTFD, 0, 0, false, true, NULL },
		/* without their state (test_fdkinds.c has them with it) */
		{ CKPT_STATE_FD_EPOLL, 0, 0, false, false, "not restorable yet: an epoll instance whose registrations" },
		{ CKPT_STATE_FD_SIGNALFD, 0, 0, false, false, "signalfd" },
		{ CKPT_STATE_FD_TIMERFD, 0, 0, false, false, "timerfd" },
		{ CKPT_STATE_FD_INOTIFY, 0, 0, false, false, "inotify" },
		{ CKPT_STATE_FD_FANOTIFY, 0, 0, false, false, "fanotify" },
		{ CKPT_STATE_FD_USERFAULTFD, 0, 0, false, false, "userfaultfd" },
		{ CKPT_STATE_FD_PIDFD, 0, 0, false, false, "pidfd" },
		{ CKPT_STATE_FD_ANON_INODE, 0, 0, false, false, "anonymous inode" },
		{ CKPT_STATE_FD_UNKNOWN, 0, 0, false, false, "unknown kind" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ckpt_state_fd f = { .kind = cases[i].kind, .deleted = cases[i].deleted };

		f.id.rdev_major = cases[i].rmaj;
		f.id.rdev_minor = cases[i].rmin;
		f.restorable = !cases[i].ok;
		cr_assert_eq(ckpt_state_fd_judge(&f), 0);
		cr_expect_eq(f.restorable, cases[i].ok, "case %zu (%s)", i,
			     ckpt_state_fd_kind_name(cases[i].kind));
		if (cases[i].ok) {
			cr_expect_null(f.reason, "case %zu", i);
		} else {
			cr_assert_not_null(f.reason, "case %zu", i);
			cr_expect(!strncmp(f.reason, "not restorable yet: ", 20), "%s", f.reason);
			cr_expect(strstr(f.reason, cases[i].why), "case %zu: '%s'", i, f.reason);
		}
		free(f.reason);
	}
}

Test(state_policy, unrestorable_lists_fds_mappings_seccomp)
{
	_cleanup_state_ struct ckpt_state *s = NULL;
	_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = NULL;
	static const struct {
		enum ckpt_state_vma_kind kind;
		uint32_t vmflags;
	} vmas[] = {
		{ CKPT_STATE_VMA_ANON, 0 },
		{ CKPT_STATE_VMA_VVAR, CKPT_STATE_VMF_IO | CKPT_STATE_VMF_PFNMAP }, /* fine */
		{ CKPT_STATE_VMA_VVAR_VCLOCK, CKPT_STATE_VMF_IO | CKPT_STATE_VMF_PFNMAP },
		{ CKPT_STATE_VMA_FILE, CKPT_STATE_VMF_IO },                          /* listed */
		{ CKPT_STATE_VMA_SYSV_SHM, 0 },                                       /* listed */
		{ CKPT_STATE_VMA_FILE, CKPT_STATE_VMF_PFNMAP | CKPT_STATE_VMF_DONTDUMP }, /* listed */
		{ CKPT_STATE_VMA_MEMFD, CKPT_STATE_VMF_LOCKED },
	};
	static const enum ckpt_state_fd_kind fds[] = {
		CKPT_STATE_FD_REGULAR, CKPT_STATE_FD_SOCKET, CKPT_STATE_FD_PIPE, CKPT_STATE_FD_EPOLL,
	};

	cr_assert_eq(ckpt_state_new(&s), 0);
	s->process.pid = 77;
	s->process.seccomp = CKPT_STATE_SECCOMP_FILTER;
	s->mm.nr_vmas = sizeof(vmas) / sizeof(vmas[0]);
	s->mm.vmas = calloc(s->mm.nr_vmas, sizeof(*s->mm.vmas));
	for (size_t i = 0; i < s->mm.nr_vmas; i++) {
		s->mm.vmas[i].start = 0x1000 * (i + 1);
		s->mm.vmas[i].end = 0x1000 * (i + 2);
		s->mm.vmas[i].kind = vmas[i].kind;
		s->mm.vmas[i].vmflags = vmas[i].vmflags;
		if (vmas[i].kind == CKPT_STATE_VMA_SYSV_SHM)
			s->mm.vmas[i].path = strdup("/SYSV0000abcd");
		s->mm.vmas[i].shared = vmas[i].kind == CKPT_STATE_VMA_MEMFD; /* a shared object */
	}
	s->nr_fds = sizeof(fds) / sizeof(fds[0]);
	s->fds = calloc(s->nr_fds, sizeof(*s->fds));
	for (size_t i = 0; i < s->nr_fds; i++) {
		s->fds[i].fd = (int)i + 3;
		s->fds[i].kind = fds[i];
		s->fds[i].path = strdup(i == 1 ? "socket:[99]" : "x");
		cr_assert_eq(ckpt_state_fd_judge(&s->fds[i]), 0);
	}
	cr_assert_eq(ckpt_state_unrestorable(s, &l), 0);
	cr_assert_eq(l->nr, 6);
	cr_expect_eq(l->v[0].kind, CKPT_STATE_ISSUE_PROCESS);
	cr_expect(strstr(l->v[0].reason, "seccomp"));
	cr_expect_eq(l->v[1].kind, CKPT_STATE_ISSUE_VMA);
	cr_expect_eq(l->v[1].start, 0x4000);
	cr_expect(strstr(l->v[1].reason, "VM_IO"));
	cr_expect_eq(l->v[2].start, 0x5000);
	cr_expect(strstr(l->v[2].reason, "System V"));
	cr_expect(strstr(l->v[2].what, "/SYSV0000abcd"), "%s", l->v[2].what);
	cr_expect_eq(l->v[3].start, 0x6000);
	cr_expect_eq(l->v[4].kind, CKPT_STATE_ISSUE_FD);
	cr_expect_eq(l->v[4].fd, 4);
	cr_expect_str_eq(l->v[4].what, "fd 4 (socket:[99])");
	cr_expect(strstr(l->v[4].reason, "not restorable yet: a socket the checkpoint does not describe"),
		  "%s", l->v[4].reason);
	cr_expect_eq(l->v[5].fd, 6);
	cr_expect_str_eq(l->v[5].reason, "not restorable yet: an epoll instance whose registrations are "
					 "not in the checkpoint (made by an older ckpt)");
}

/* Filter mode is restorable when the filters were saved (and a bad filter list is refused). */
Test(state_policy, seccomp_filters_saved_are_restorable)
{
	_cleanup_state_ struct ckpt_state *s = full_state(), *back = NULL;
	_cleanup_(ckpt_state_issues_freep) struct ckpt_state_issues *l = NULL;
	json_object *o;
	char why[WHY] = "";

	s->process.seccomp = CKPT_STATE_SECCOMP_FILTER;
	cr_assert_eq(ckpt_state_unrestorable(s, &l), 0);
	for (size_t i = 0; i < l->nr; i++)
		cr_expect_null(strstr(l->v[i].reason, "seccomp"), "%s", l->v[i].reason);
	ckpt_state_issues_free(l);
	l = NULL;
	s->threads[0].has_seccomp = false; /* an image from before the filters were saved */
	cr_assert_eq(ckpt_state_unrestorable(s, &l), 0);
	cr_assert_geq(l->nr, 1);
	cr_expect(strstr(l->v[0].reason, "seccomp filters not saved"), "%s", l->v[0].reason);
	s->threads[0].has_seccomp = true;
	/* Filters in strict mode: refused by the reader. */
	cr_assert_eq(ckpt_state_to_json(s, &o), 0);
	mutate(o, "threads/threads/0/seccomp/mode", "1");
	cr_expect_eq(ckpt_state_from_json(o, why, sizeof(why), &back), -EBADMSG);
	cr_expect(strstr(why, "filters"), "%s", why);
	json_object_put(o);
}

Test(state_policy, same_object)
{
	struct ckpt_state_identity a = { .dev_major = 0, .dev_minor = 1, .ino = 5, .size = 1 };
	struct ckpt_state_identity b = a;

	b.size = 99; /* grew: still the same object */
	cr_expect(ckpt_state_same_object(&a, &b));
	b.ino = 6;
	cr_expect(!ckpt_state_same_object(&a, &b));
	b = a;
	b.dev_minor = 2;
	cr_expect(!ckpt_state_same_object(&a, &b));
}
