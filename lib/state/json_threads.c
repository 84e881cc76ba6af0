/* SPDX-License-Identifier: MIT */
/* threads.json: every thread's registers, FPU state, signals, registrations and scheduling. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state/state-internal.h"
#include "util/util.h"

#define REG(name) { #name, offsetof(struct user_regs_struct, name) }

static const struct {
	const char *name;
	size_t off;
} regs[] = {
	REG(r15), REG(r14), REG(r13), REG(r12), REG(rbp),     REG(rbx),     REG(r11),
	REG(r10), REG(r9),  REG(r8),  REG(rax), REG(rcx),     REG(rdx),     REG(rsi),
	REG(rdi), REG(orig_rax),      REG(rip), REG(cs),      REG(eflags),  REG(rsp),
	REG(ss),  REG(fs_base),       REG(gs_base),           REG(ds),      REG(es),
	REG(fs),  REG(gs),
};

_Static_assert(sizeof(regs) / sizeof(regs[0]) * sizeof(unsigned long long) ==
		       sizeof(struct user_regs_struct),
	       "every register of user_regs_struct is named");

static unsigned long long *reg_at(struct user_regs_struct *r, size_t i)
{
	return (unsigned long long *)((char *)r + regs[i].off);
}

#define SCHED_FIFO_ 1
#define SCHED_RR_ 2
#define SCHED_DEADLINE_ 6
#define DL_FLAGS 0x06u /* SCHED_FLAG_RECLAIM | SCHED_FLAG_DL_OVERRUN */

static void sched_to_json(struct jw *w, json_object *o, const struct ckpt_state_thread *t)
{
	const struct ckpt_state_sched *s = &t->sched;
	json_object *x, *d;

	if (t->has_timerslack)
		jw_u64(w, o, "timerslack_ns", t->timerslack_ns);
	if (!t->has_sched)
		return;
	x = jw_obj(w, o, "sched");
	jw_str(w, x, "policy", ckpt_state_sched_policy_name(s->policy) ?: "unknown");
	jw_bool(w, x, "reset_on_fork", s->reset_on_fork);
	jw_int(w, x, "priority", s->priority);
	jw_int(w, x, "nice", s->nice);
	if (s->policy != SCHED_DEADLINE_)
		return;
	d = jw_obj(w, x, "deadline");
	jw_u64(w, d, "runtime", s->dl_runtime);
	jw_u64(w, d, "deadline", s->dl_deadline);
	jw_u64(w, d, "period", s->dl_period);
	jw_int(w, d, "flags", s->dl_flags);
}

/* "ioprio", "pdeathsig", "seccomp": optional, absent from images made before them. */
static void attrs_to_json(struct jw *w, json_object *o, const struct ckpt_state_thread *t)
{
	json_object *x, *a;

	if (t->has_ioprio)
		jw_int(w, o, "ioprio", t->ioprio);
	if (t->has_pdeathsig)
		jw_int(w, o, "pdeathsig", t->pdeathsig);
	if (t->has_restart_nr)
		jw_int(w, o, "restart_nr", t->restart_nr);
	if (!t->has_seccomp)
		return;
	x = jw_obj(w, o, "seccomp");
	jw_int(w, x, "mode", t->seccomp_mode);
	a = jw_arr(w, x, "filters");
	for (size_t i = 0; i < t->nr_seccomp_filters; i++) {
		json_object *f = jw_arr_obj(w, a);

		jw_blob(w, f, "insns", t->seccomp_filters[i].insns, t->seccomp_filters[i].len * 8);
		jw_int(w, f, "flags", t->seccomp_filters[i].flags);
	}
}

static void thread_to_json(struct jw *w, json_object *o, const struct ckpt_state_thread *t)
{
	json_object *x;

	jw_int(w, o, "tid", t->tid);
	jw_str(w, o, "comm", t->comm);
	x = jw_obj(w, o, "regs");
	for (size_t i = 0; i < ARRAY_SIZE(regs); i++)
		jw_u64(w, x, regs[i].name, *reg_at((struct user_regs_struct *)&t->regs, i));
	if (t->xstate)
		jw_blob(w, o, "xstate", t->xstate, t->xstate_len);
	jw_u64(w, o, "sigmask", t->sigmask);
	jw_u64(w, o, "sigpending", t->sigpending);
	jw_bool(w, o, "in_syscall", t->in_syscall);
	x = jw_obj(w, o, "rseq");
	jw_u64(w, x, "ptr", t->rseq.ptr);
	jw_int(w, x, "len", t->rseq.len);
	jw_int(w, x, "sig", t->rseq.sig);
	jw_int(w, x, "flags", t->rseq.flags);
	x = jw_obj(w, o, "robust_list");
	jw_u64(w, x, "head", t->robust_list_head);
	jw_u64(w, x, "len", t->robust_list_len);
	jw_u64(w, o, "clear_child_tid", t->clear_child_tid);
	x = jw_obj(w, o, "altstack");
	jw_u64(w, x, "sp", t->altstack_sp);
	jw_u64(w, x, "size", t->altstack_size);
	jw_int(w, x, "flags", t->altstack_flags);
	jw_siginfos(w, o, "pending", t->pending, t->nr_pending);
	sched_to_json(w, o, t);
	attrs_to_json(w, o, t);
}

int threads_to_json(const struct ckpt_state *s, json_object **ret)
{
	struct jw w = { 0 };
	json_object *root = jw_root(&w), *arr;

	jw_int(&w, root, "pid", s->process.pid);
	arr = jw_arr(&w, root, "threads");
	for (size_t i = 0; i < s->nr_threads; i++)
		thread_to_json(&w, jw_arr_obj(&w, arr), &s->threads[i]);
	return jw_finish(&w, root, ret);
}

static int regs_from_json(struct jr *r, json_object *o, struct user_regs_struct *ret)
{
	json_object *x;
	size_t mark;
	int k = jr_obj(r, o, "regs", &x);

	if (k < 0)
		return k;
	mark = jr_enter(r, "regs");
	for (size_t i = 0; i < ARRAY_SIZE(regs); i++) {
		uint64_t v;

		k = jr_u64(r, x, regs[i].name, &v);
		if (k < 0)
			return k;
		*reg_at(ret, i) = v;
	}
	jr_leave(r, mark);
	return 0;
}

static int rseq_from_json(struct jr *r, json_object *o, struct ckpt_state_rseq *ret)
{
	json_object *x;
	size_t mark;
	int k = jr_obj(r, o, "rseq", &x);

	if (k < 0)
		return k;
	mark = jr_enter(r, "rseq");
	if ((k = jr_u64(r, x, "ptr", &ret->ptr)) < 0 ||
	    (k = jr_u32(r, x, "len", UINT32_MAX, &ret->len)) < 0 ||
	    (k = jr_u32(r, x, "sig", UINT32_MAX, &ret->sig)) < 0 ||
	    (k = jr_u32(r, x, "flags", UINT32_MAX, &ret->flags)) < 0)
		return k;
	jr_leave(r, mark);
	return 0;
}

static int robust_from_json(struct jr *r, json_object *o, struct ckpt_state_thread *t)
{
	json_object *x;
	size_t mark;
	int k = jr_obj(r, o, "robust_list", &x);

	if (k < 0)
		return k;
	mark = jr_enter(r, "robust_list");
	if ((k = jr_u64(r, x, "head", &t->robust_list_head)) < 0 ||
	    (k = jr_u64(r, x, "len", &t->robust_list_len)) < 0)
		return k;
	jr_leave(r, mark);
	return 0;
}

static int altstack_from_json(struct jr *r, json_object *o, struct ckpt_state_thread *t)
{
	json_object *x;
	size_t mark;
	int k = jr_obj(r, o, "altstack", &x);

	if (k < 0)
		return k;
	mark = jr_enter(r, "altstack");
	if ((k = jr_u64(r, x, "sp", &t->altstack_sp)) < 0 ||
	    (k = jr_u64(r, x, "size", &t->altstack_size)) < 0 ||
	    (k = jr_int(r, x, "flags", INT32_MIN, INT32_MAX, &t->altstack_flags)) < 0)
		return k;
	jr_leave(r, mark);
	return 0;
}

static int deadline_from_json(struct jr *r, json_object *o, struct ckpt_state_sched *s)
{
	json_object *x;
	size_t mark;
	int k = jr_opt(r, o, "deadline", json_type_object, &x);

	if (k < 0)
		return k;
	if (!k && s->policy == SCHED_DEADLINE_)
		return jr_fail(r, "deadline", "missing (required for policy deadline)");
	if (k && s->policy != SCHED_DEADLINE_)
		return jr_fail(r, "deadline", "not expected for policy %s",
			       ckpt_state_sched_policy_name(s->policy));
	if (!k)
		return 0;
	mark = jr_enter(r, "deadline");
	if ((k = jr_u64(r, x, "runtime", &s->dl_runtime)) < 0 ||
	    (k = jr_u64(r, x, "deadline", &s->dl_deadline)) < 0 ||
	    (k = jr_u64(r, x, "period", &s->dl_period)) < 0 ||
	    (k = jr_u32(r, x, "flags", UINT32_MAX, &s->dl_flags)) < 0)
		return k;
	if (s->dl_flags & ~DL_FLAGS)
		return jr_fail(r, "flags", "%#x: only reclaim (0x2) and dl_overrun (0x4)", s->dl_flags);
	jr_leave(r, mark);
	return 0;
}

/* "sched" and "timerslack_ns": optional, absent from images made before them. */
static int sched_from_json(struct jr *r, json_object *o, struct ckpt_state_thread *t)
{
	struct ckpt_state_sched *s = &t->sched;
	bool rt;
	json_object *x;
	size_t mark;
	int k = jr_opt(r, o, "timerslack_ns", json_type_string, &x);

	if (k < 0)
		return k;
	if (k > 0) {
		if ((k = jr_u64(r, o, "timerslack_ns", &t->timerslack_ns)) < 0)
			return k;
		t->has_timerslack = true;
	}
	k = jr_opt(r, o, "sched", json_type_object, &x);
	if (k <= 0)
		return k;
	mark = jr_enter(r, "sched");
	if ((k = jr_enum(r, x, "policy", state_sched_policy_names, CKPT_STATE_NR_SCHED_POLICIES,
			 &s->policy)) < 0 ||
	    (k = jr_bool(r, x, "reset_on_fork", &s->reset_on_fork)) < 0 ||
	    (k = jr_int(r, x, "priority", 0, 99, &s->priority)) < 0 ||
	    (k = jr_int(r, x, "nice", -20, 19, &s->nice)) < 0 || (k = deadline_from_json(r, x, s)) < 0)
		return k;
	rt = s->policy == SCHED_FIFO_ || s->policy == SCHED_RR_;
	if (rt != (s->priority > 0))
		return jr_fail(r, "priority", "%d for policy %s: fifo and rr take 1..99, the others 0",
			       s->priority, ckpt_state_sched_policy_name(s->policy));
	jr_leave(r, mark);
	t->has_sched = true;
	return 0;
}

#define SECCOMP_MAX_FILTERS 512u /* the kernel's total of 32768 instructions, at 64 a filter */

static int seccomp_from_json(struct jr *r, json_object *o, struct ckpt_state_thread *t)
{
	json_object *x, *a;
	size_t mark, nr;
	int k = jr_opt(r, o, "seccomp", json_type_object, &x);

	if (k <= 0)
		return k;
	mark = jr_enter(r, "seccomp");
	if ((k = jr_int(r, x, "mode", 0, 2, &t->seccomp_mode)) < 0 ||
	    (k = jr_arr(r, x, "filters", SECCOMP_MAX_FILTERS, &a, &nr)) < 0)
		return k;
	if ((nr > 0) != (t->seccomp_mode == 2))
		return jr_fail(r, "filters", "%zu filters in mode %d: filters belong to mode 2, which has some",
			       nr, t->seccomp_mode);
	t->seccomp_filters = nr ? calloc(nr, sizeof(*t->seccomp_filters)) : NULL;
	if (nr && !t->seccomp_filters)
		return -ENOMEM;
	t->nr_seccomp_filters = nr;
	for (size_t i = 0; i < nr; i++) {
		struct ckpt_state_seccomp_filter *f = &t->seccomp_filters[i];
		json_object *e = json_object_array_get_idx(a, i);
		size_t m2 = jr_enter(r, "filters"), len = 0;
		void *buf = NULL;

		jr_enter_idx(r, i);
		if (!json_object_is_type(e, json_type_object))
			return jr_fail(r, NULL, "not an object");
		k = jr_blob(r, e, "insns", 4096 * 8, &buf, &len);
		f->insns = buf;
		if (k < 0)
			return k;
		if (!len || len % 8)
			return jr_fail(r, "insns", "%zu bytes: not 1 to 4096 instructions of 8 bytes", len);
		f->len = len / 8;
		if ((k = jr_u32(r, e, "flags", UINT32_MAX, &f->flags)) < 0)
			return k;
		jr_leave(r, m2);
	}
	jr_leave(r, mark);
	t->has_seccomp = true;
	return 0;
}

static int attrs_from_json(struct jr *r, json_object *o, struct ckpt_state_thread *t)
{
	json_object *x;
	int k = jr_opt(r, o, "ioprio", json_type_int, &x);

	if (k > 0 && (k = jr_int(r, o, "ioprio", 0, 0xffff, &t->ioprio)) == 0)
		t->has_ioprio = true;
	if (k < 0)
		return k;
	k = jr_opt(r, o, "pdeathsig", json_type_int, &x);
	if (k > 0 && (k = jr_int(r, o, "pdeathsig", 0, 64, &t->pdeathsig)) == 0)
		t->has_pdeathsig = true;
	if (k < 0)
		return k;
	k = jr_opt(r, o, "restart_nr", json_type_int, &x);
	if (k > 0 && (k = jr_int(r, o, "restart_nr", 0, 1023, &t->restart_nr)) == 0)
		t->has_restart_nr = true;
	if (k < 0)
		return k;
	return seccomp_from_json(r, o, t);
}

static int thread_from_json(struct jr *r, json_object *o, struct ckpt_state_thread *t)
{
	json_object *x;
	int k;

	if (!json_object_is_type(o, json_type_object))
		return jr_fail(r, NULL, "not an object");
	if ((k = jr_int(r, o, "tid", 1, INT32_MAX, &t->tid)) < 0 ||
	    (k = jr_strbuf(r, o, "comm", t->comm, sizeof(t->comm))) < 0 ||
	    (k = regs_from_json(r, o, &t->regs)) < 0)
		return k;
	k = jr_opt(r, o, "xstate", json_type_string, &x);
	if (k < 0)
		return k;
	if (k > 0 && (k = jr_blob(r, o, "xstate", JR_MAX_XSTATE, &t->xstate, &t->xstate_len)) < 0)
		return k;
	if (t->xstate && !t->xstate_len)
		return jr_fail(r, "xstate", "empty");
	if ((k = jr_u64(r, o, "sigmask", &t->sigmask)) < 0 ||
	    (k = jr_u64(r, o, "sigpending", &t->sigpending)) < 0 ||
	    (k = jr_bool(r, o, "in_syscall", &t->in_syscall)) < 0 ||
	    (k = rseq_from_json(r, o, &t->rseq)) < 0 || (k = robust_from_json(r, o, t)) < 0 ||
	    (k = jr_u64(r, o, "clear_child_tid", &t->clear_child_tid)) < 0 ||
	    (k = altstack_from_json(r, o, t)) < 0 ||
	    (k = jr_siginfos(r, o, "pending", &t->pending, &t->nr_pending)) < 0 ||
	    (k = sched_from_json(r, o, t)) < 0 || (k = attrs_from_json(r, o, t)) < 0)
		return k;
	return 0;
}

int threads_from_json(struct jr *r, json_object *doc, struct ckpt_state *s)
{
	json_object *arr;
	size_t nr;
	int k = jr_arr(r, doc, "threads", JR_MAX_THREADS, &arr, &nr);

	if (k < 0)
		return k;
	if (!nr)
		return jr_fail(r, "threads", "empty: a process has at least one thread");
	s->threads = calloc(nr, sizeof(*s->threads));
	if (!s->threads)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		size_t mark = jr_enter(r, "threads");

		jr_enter_idx(r, i);
		s->nr_threads = i + 1;
		k = thread_from_json(r, json_object_array_get_idx(arr, i), &s->threads[i]);
		if (k < 0)
			return k;
		for (size_t j = 0; j < i; j++)
			if (s->threads[j].tid == s->threads[i].tid)
				return jr_fail(r, "tid", "%d appears twice", s->threads[i].tid);
		jr_leave(r, mark);
	}
	return 0;
}
