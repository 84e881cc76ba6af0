/* SPDX-License-Identifier: MIT */
/* process.json: identity, credentials, limits, signals, timers of the process. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state/state-internal.h"
#include "util/util.h"

static const char *const itimer_names[CKPT_STATE_NR_ITIMERS] = {
	[CKPT_STATE_ITIMER_REAL] = "real",
	[CKPT_STATE_ITIMER_VIRTUAL] = "virtual",
	[CKPT_STATE_ITIMER_PROF] = "prof",
};

static const char *const cap_names[] = { "cap_inh", "cap_prm", "cap_eff", "cap_bnd", "cap_amb" };

static uint64_t *cap_at(struct ckpt_state_creds *c, size_t i)
{
	uint64_t *caps[] = { &c->cap_inh, &c->cap_prm, &c->cap_eff, &c->cap_bnd, &c->cap_amb };

	return caps[i];
}

static void ids_to_json(struct jw *w, json_object *o, const char *key, const unsigned int *ids,
			size_t nr)
{
	json_object *a = jw_arr(w, o, key);

	for (size_t i = 0; i < nr; i++)
		jw_append(w, a, json_object_new_int64(ids[i]));
}

static void creds_to_json(struct jw *w, json_object *o, const struct ckpt_state_creds *c)
{
	ids_to_json(w, o, "uid", c->uid, 4);
	ids_to_json(w, o, "gid", c->gid, 4);
	ids_to_json(w, o, "groups", c->groups, c->nr_groups);
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		jw_u64(w, o, cap_names[i], *cap_at((struct ckpt_state_creds *)c, i));
	jw_int(w, o, "securebits", c->securebits);
}

static void signals_to_json(struct jw *w, json_object *root, const struct ckpt_state_process *p)
{
	json_object *a = jw_arr(w, root, "sigactions");

	for (int i = 0; i < CKPT_STATE_NSIG; i++) {
		const struct ckpt_state_sigaction *sa = &p->sigactions[i];
		json_object *e = jw_arr_obj(w, a);

		jw_int(w, e, "signo", i + 1);
		jw_u64(w, e, "handler", sa->handler);
		jw_u64(w, e, "flags", sa->flags);
		jw_u64(w, e, "restorer", sa->restorer);
		jw_u64(w, e, "mask", sa->mask);
	}
	jw_u64(w, root, "shared_sigpending", p->shared_sigpending);
	jw_siginfos(w, root, "shared_pending", p->shared_pending, p->nr_shared_pending);
}

int process_to_json(const struct ckpt_state *s, json_object **ret)
{
	const struct ckpt_state_process *p = &s->process;
	struct jw w = { 0 };
	json_object *root = jw_root(&w), *x;

	jw_int(&w, root, "pid", p->pid);
	jw_int(&w, root, "ppid", p->ppid);
	jw_int(&w, root, "pgid", p->pgid);
	jw_int(&w, root, "sid", p->sid);
	jw_u64(&w, root, "start_time", p->start_time);
	jw_str(&w, root, "comm", p->comm);
	x = jw_obj(&w, root, "exe");
	jw_str(&w, x, "path", p->exe);
	jw_bool(&w, x, "deleted", p->exe_deleted);
	jw_identity(&w, x, "identity", &p->exe_id);
	jw_str(&w, root, "cwd", p->cwd);
	jw_str(&w, root, "root", p->root);
	jw_int(&w, root, "umask", p->umask);
	jw_int(&w, root, "personality", p->personality);
	x = jw_obj(&w, root, "rlimits");
	for (int i = 0; i < CKPT_STATE_NR_RLIMITS; i++) {
		json_object *l = jw_obj(&w, x, ckpt_state_rlimit_name(i));

		jw_u64(&w, l, "cur", p->rlimits[i].cur);
		jw_u64(&w, l, "max", p->rlimits[i].max);
	}
	creds_to_json(&w, jw_obj(&w, root, "creds"), &p->creds);
	jw_bool(&w, root, "no_new_privs", p->no_new_privs);
	jw_int(&w, root, "dumpable", p->dumpable);
	jw_int(&w, root, "seccomp", p->seccomp);
	jw_bool(&w, root, "child_subreaper", p->child_subreaper);
	jw_bool(&w, root, "job_stopped", p->job_stopped);
	signals_to_json(&w, root, p);
	x = jw_obj(&w, root, "itimers");
	for (int i = 0; i < CKPT_STATE_NR_ITIMERS; i++) {
		json_object *t = jw_obj(&w, x, itimer_names[i]);

		jw_int(&w, t, "interval_sec", p->itimers[i].interval_sec);
		jw_int(&w, t, "interval_usec", p->itimers[i].interval_usec);
		jw_int(&w, t, "value_sec", p->itimers[i].value_sec);
		jw_int(&w, t, "value_usec", p->itimers[i].value_usec);
	}
	return jw_finish(&w, root, ret);
}

/* ---- reading ---- */

static int ids_from_json(struct jr *r, json_object *o, const char *key, size_t exact, size_t max,
			 unsigned int **ret, size_t *ret_nr, unsigned int *fixed)
{
	json_object *a;
	size_t nr;
	int k = jr_arr(r, o, key, max, &a, &nr);

	if (k < 0)
		return k;
	if (exact && nr != exact)
		return jr_fail(r, key, "has %zu elements, not %zu", nr, exact);
	if (!fixed) {
		*ret = nr ? calloc(nr, sizeof(**ret)) : NULL;
		if (nr && !*ret)
			return -ENOMEM;
		*ret_nr = nr;
		fixed = *ret;
	}
	for (size_t i = 0; i < nr; i++) {
		json_object *v = json_object_array_get_idx(a, i);
		int64_t x = json_object_get_int64(v);

		if (!json_object_is_type(v, json_type_int) || x < 0 || x > UINT32_MAX) {
			size_t mark = jr_enter(r, key);

			jr_enter_idx(r, i);
			k = jr_fail(r, NULL, "not an id in [0, 4294967295]");
			jr_leave(r, mark);
			return k;
		}
		fixed[i] = (unsigned int)x;
	}
	return 0;
}

static int creds_from_json(struct jr *r, json_object *root, struct ckpt_state_creds *c)
{
	json_object *o;
	size_t mark;
	int k = jr_obj(r, root, "creds", &o);

	if (k < 0)
		return k;
	mark = jr_enter(r, "creds");
	if ((k = ids_from_json(r, o, "uid", 4, 4, NULL, NULL, c->uid)) < 0 ||
	    (k = ids_from_json(r, o, "gid", 4, 4, NULL, NULL, c->gid)) < 0 ||
	    (k = ids_from_json(r, o, "groups", 0, JR_MAX_GROUPS, &c->groups, &c->nr_groups,
			       NULL)) < 0)
		return k;
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if ((k = jr_u64(r, o, cap_names[i], cap_at(c, i))) < 0)
			return k;
	if ((k = jr_u32(r, o, "securebits", UINT32_MAX, &c->securebits)) < 0)
		return k;
	jr_leave(r, mark);
	return 0;
}

static int exe_from_json(struct jr *r, json_object *root, struct ckpt_state_process *p)
{
	json_object *o;
	size_t mark;
	int k = jr_obj(r, root, "exe", &o);

	if (k < 0)
		return k;
	mark = jr_enter(r, "exe");
	if ((k = jr_str(r, o, "path", JR_MAX_STR, &p->exe)) < 0 ||
	    (k = jr_bool(r, o, "deleted", &p->exe_deleted)) < 0 ||
	    (k = jr_identity(r, o, "identity", &p->exe_id)) < 0)
		return k;
	jr_leave(r, mark);
	return 0;
}

static int rlimits_from_json(struct jr *r, json_object *root, struct ckpt_state_process *p)
{
	json_object *o;
	size_t mark;
	int k = jr_obj(r, root, "rlimits", &o);

	if (k < 0)
		return k;
	mark = jr_enter(r, "rlimits");
	for (int i = 0; i < CKPT_STATE_NR_RLIMITS; i++) {
		const char *name = ckpt_state_rlimit_name(i);
		json_object *l;
		size_t m2;

		if ((k = jr_obj(r, o, name, &l)) < 0)
			return k;
		m2 = jr_enter(r, name);
		if ((k = jr_u64(r, l, "cur", &p->rlimits[i].cur)) < 0 ||
		    (k = jr_u64(r, l, "max", &p->rlimits[i].max)) < 0)
			return k;
		if (p->rlimits[i].cur > p->rlimits[i].max)
			return jr_fail(r, "cur", "above max");
		jr_leave(r, m2);
	}
	jr_leave(r, mark);
	return 0;
}

static int sigactions_from_json(struct jr *r, json_object *root, struct ckpt_state_process *p)
{
	json_object *a;
	size_t nr;
	int k = jr_arr(r, root, "sigactions", CKPT_STATE_NSIG, &a, &nr);

	if (k < 0)
		return k;
	if (nr != CKPT_STATE_NSIG)
		return jr_fail(r, "sigactions", "has %zu elements, not %d", nr, CKPT_STATE_NSIG);
	for (size_t i = 0; i < nr; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		struct ckpt_state_sigaction *sa = &p->sigactions[i];
		size_t mark = jr_enter(r, "sigactions");
		int signo;

		jr_enter_idx(r, i);
		if (!json_object_is_type(e, json_type_object))
			return jr_fail(r, NULL, "not an object");
		if ((k = jr_int(r, e, "signo", 1, CKPT_STATE_NSIG, &signo)) < 0)
			return k;
		if (signo != (int)i + 1)
			return jr_fail(r, "signo", "%d at position %zu: must be %zu", signo, i, i + 1);
		if ((k = jr_u64(r, e, "handler", &sa->handler)) < 0 ||
		    (k = jr_u64(r, e, "flags", &sa->flags)) < 0 ||
		    (k = jr_u64(r, e, "restorer", &sa->restorer)) < 0 ||
		    (k = jr_u64(r, e, "mask", &sa->mask)) < 0)
			return k;
		jr_leave(r, mark);
	}
	return 0;
}

static int itimers_from_json(struct jr *r, json_object *root, struct ckpt_state_process *p)
{
	json_object *o;
	size_t mark;
	int k = jr_obj(r, root, "itimers", &o);

	if (k < 0)
		return k;
	mark = jr_enter(r, "itimers");
	for (int i = 0; i < CKPT_STATE_NR_ITIMERS; i++) {
		struct ckpt_state_itimer *t = &p->itimers[i];
		json_object *x;
		size_t m2;

		if ((k = jr_obj(r, o, itimer_names[i], &x)) < 0)
			return k;
		m2 = jr_enter(r, itimer_names[i]);
		if ((k = jr_i64(r, x, "interval_sec", 0, INT64_MAX, &t->interval_sec)) < 0 ||
		    (k = jr_i64(r, x, "interval_usec", 0, 999999, &t->interval_usec)) < 0 ||
		    (k = jr_i64(r, x, "value_sec", 0, INT64_MAX, &t->value_sec)) < 0 ||
		    (k = jr_i64(r, x, "value_usec", 0, 999999, &t->value_usec)) < 0)
			return k;
		jr_leave(r, m2);
	}
	jr_leave(r, mark);
	return 0;
}

/* A member added later: absent from older images, then false. */
static int opt_bool(struct jr *r, json_object *o, const char *key, bool *ret)
{
	json_object *x;
	int k = jr_opt(r, o, key, json_type_boolean, &x);

	if (k > 0)
		*ret = json_object_get_boolean(x);
	return k < 0 ? k : 0;
}

int process_from_json(struct jr *r, json_object *doc, struct ckpt_state *s)
{
	struct ckpt_state_process *p = &s->process;
	int k;

	if ((k = jr_int(r, doc, "pid", 1, INT32_MAX, &p->pid)) < 0 ||
	    (k = jr_int(r, doc, "ppid", 0, INT32_MAX, &p->ppid)) < 0 ||
	    (k = jr_int(r, doc, "pgid", 0, INT32_MAX, &p->pgid)) < 0 ||
	    (k = jr_int(r, doc, "sid", 0, INT32_MAX, &p->sid)) < 0 ||
	    (k = jr_u64(r, doc, "start_time", &p->start_time)) < 0 ||
	    (k = jr_strbuf(r, doc, "comm", p->comm, sizeof(p->comm))) < 0 ||
	    (k = exe_from_json(r, doc, p)) < 0 ||
	    (k = jr_str(r, doc, "cwd", JR_MAX_STR, &p->cwd)) < 0 ||
	    (k = jr_str(r, doc, "root", JR_MAX_STR, &p->root)) < 0 ||
	    (k = jr_u32(r, doc, "umask", 0777, &p->umask)) < 0 ||
	    (k = jr_u32(r, doc, "personality", UINT32_MAX, &p->personality)) < 0 ||
	    (k = rlimits_from_json(r, doc, p)) < 0 || (k = creds_from_json(r, doc, &p->creds)) < 0 ||
	    (k = jr_bool(r, doc, "no_new_privs", &p->no_new_privs)) < 0 ||
	    (k = jr_int(r, doc, "dumpable", 0, 2, &p->dumpable)) < 0 ||
	    (k = jr_int(r, doc, "seccomp", 0, 2, &p->seccomp)) < 0 ||
	    (k = opt_bool(r, doc, "child_subreaper", &p->child_subreaper)) < 0 ||
	    (k = jr_bool(r, doc, "job_stopped", &p->job_stopped)) < 0 ||
	    (k = sigactions_from_json(r, doc, p)) < 0 ||
	    (k = jr_u64(r, doc, "shared_sigpending", &p->shared_sigpending)) < 0 ||
	    (k = jr_siginfos(r, doc, "shared_pending", &p->shared_pending,
			     &p->nr_shared_pending)) < 0 ||
	    (k = itimers_from_json(r, doc, p)) < 0)
		return k;
	return 0;
}
