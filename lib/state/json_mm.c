/* SPDX-License-Identifier: MIT */
/* mm.json: the fields of the mm, auxv and every mapping. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state/state-internal.h"
#include "util/util.h"

#define MM(name) { #name, offsetof(struct ckpt_state_mm, name) }

static const struct {
	const char *name;
	size_t off;
} mm_fields[] = {
	MM(start_code), MM(end_code),  MM(start_data), MM(end_data),  MM(start_brk), MM(brk),
	MM(start_stack), MM(arg_start), MM(arg_end),   MM(env_start), MM(env_end),
};

static uint64_t *mm_at(struct ckpt_state_mm *mm, size_t i)
{
	return (uint64_t *)((char *)mm + mm_fields[i].off);
}

/* Which kinds carry a path, a name, an identity. */
static bool kind_has_path(enum ckpt_state_vma_kind k)
{
	return k == CKPT_STATE_VMA_FILE || k == CKPT_STATE_VMA_MEMFD || k == CKPT_STATE_VMA_SYSV_SHM;
}

static bool kind_needs_identity(enum ckpt_state_vma_kind k)
{
	return kind_has_path(k) || k == CKPT_STATE_VMA_SHMEM_ANON;
}

static void vma_to_json(struct jw *w, json_object *o, const struct ckpt_state_vma *v)
{
	json_object *fl;

	jw_u64(w, o, "start", v->start);
	jw_u64(w, o, "end", v->end);
	jw_int(w, o, "prot", v->prot);
	jw_bool(w, o, "shared", v->shared);
	jw_str(w, o, "kind", ckpt_state_vma_kind_name(v->kind));
	jw_u64(w, o, "offset", v->offset);
	if (v->path)
		jw_str(w, o, "path", v->path);
	if (v->name)
		jw_str(w, o, "name", v->name);
	jw_bool(w, o, "deleted", v->deleted);
	if (v->has_identity)
		jw_identity(w, o, "identity", &v->id);
	if (v->blob)
		jw_str(w, o, "blob", v->blob);
	if (v->reason)
		jw_str(w, o, "reason", v->reason);
	fl = jw_arr(w, o, "vmflags");
	for (int b = 0; b < CKPT_STATE_NR_VMF; b++)
		if (v->vmflags & (1u << b))
			jw_append(w, fl, json_object_new_string(state_vmf_names[b]));
}

static const char *const membarrier_names[CKPT_STATE_NR_MEMBARRIER] = {
	"private_expedited", "private_expedited_sync_core", "private_expedited_rseq",
};

/* The optional per-mm members: guard regions, prctls, membarrier. */
static void per_mm_to_json(struct jw *w, json_object *root, const struct ckpt_state_mm *mm)
{
	json_object *arr;

	if (mm->nr_guards) {
		arr = jw_arr(w, root, "guards");
		for (size_t i = 0; i < mm->nr_guards; i++) {
			json_object *pair = json_object_new_array();

			jw_append(w, arr, pair);
			jw_append(w, w->err ? NULL : pair, jw_new_u64(mm->guards[i][0]));
			jw_append(w, w->err ? NULL : pair, jw_new_u64(mm->guards[i][1]));
		}
	}
	if (mm->nr_sysv_shm) {
		arr = jw_arr(w, root, "sysv_shm");
		for (size_t i = 0; i < mm->nr_sysv_shm; i++) {
			const struct ckpt_state_sysv_shm *g = &mm->sysv_shm[i];
			json_object *o = jw_arr_obj(w, arr);

			jw_int(w, o, "shmid", g->shmid);
			jw_int(w, o, "key", g->key);
			jw_int(w, o, "mode", g->mode);
			jw_u64(w, o, "size", g->size);
			jw_int(w, o, "uid", g->uid);
			jw_int(w, o, "gid", g->gid);
			jw_int(w, o, "cuid", g->cuid);
			jw_int(w, o, "cgid", g->cgid);
			jw_bool(w, o, "removed", g->removed);
		}
	}
	if (mm->has_thp_disable)
		jw_int(w, root, "thp_disable", mm->thp_disable);
	if (mm->has_memory_merge)
		jw_bool(w, root, "memory_merge", mm->memory_merge);
	if (mm->has_mdwe)
		jw_int(w, root, "mdwe", mm->mdwe);
	if (mm->has_membarrier) {
		arr = jw_arr(w, root, "membarrier");
		for (int b = 0; b < CKPT_STATE_NR_MEMBARRIER; b++)
			if (mm->membarrier & (1u << b))
				jw_append(w, arr, json_object_new_string(membarrier_names[b]));
	}
}

int mm_to_json(const struct ckpt_state *s, json_object **ret)
{
	struct jw w = { 0 };
	json_object *root = jw_root(&w), *arr;

	jw_int(&w, root, "pid", s->process.pid);
	for (size_t i = 0; i < ARRAY_SIZE(mm_fields); i++)
		jw_u64(&w, root, mm_fields[i].name, *mm_at((struct ckpt_state_mm *)&s->mm, i));
	arr = jw_arr(&w, root, "auxv");
	for (size_t i = 0; i < s->mm.nr_auxv; i++) {
		json_object *pair = json_object_new_array();

		jw_append(&w, arr, pair);
		jw_append(&w, w.err ? NULL : pair, jw_new_u64(s->mm.auxv[i][0]));
		jw_append(&w, w.err ? NULL : pair, jw_new_u64(s->mm.auxv[i][1]));
	}
	arr = jw_arr(&w, root, "vmas");
	for (size_t i = 0; i < s->mm.nr_vmas; i++)
		vma_to_json(&w, jw_arr_obj(&w, arr), &s->mm.vmas[i]);
	per_mm_to_json(&w, root, &s->mm);
	return jw_finish(&w, root, ret);
}

/* ---- reading ---- */

static int auxv_from_json(struct jr *r, json_object *doc, struct ckpt_state_mm *mm)
{
	json_object *arr;
	size_t nr;
	int k = jr_arr(r, doc, "auxv", JR_MAX_AUXV, &arr, &nr);

	if (k < 0)
		return k;
	mm->auxv = nr ? calloc(nr, sizeof(*mm->auxv)) : NULL;
	if (nr && !mm->auxv)
		return -ENOMEM;
	mm->nr_auxv = nr;
	for (size_t i = 0; i < nr; i++) {
		json_object *pair = json_object_array_get_idx(arr, i);
		size_t mark = jr_enter(r, "auxv");

		jr_enter_idx(r, i);
		if (!json_object_is_type(pair, json_type_array) ||
		    json_object_array_length(pair) != 2)
			return jr_fail(r, NULL, "not an array [type, value]");
		for (size_t j = 0; j < 2; j++)
			if ((k = jr_u64_val(r, json_object_array_get_idx(pair, j),
					    j ? "value" : "type", &mm->auxv[i][j])) < 0)
				return k;
		if ((mm->auxv[i][0] == 0) != (i == nr - 1))
			return jr_fail(r, NULL, "AT_NULL must be the last pair, and only there");
		jr_leave(r, mark);
	}
	return 0;
}

static int vmflags_from_json(struct jr *r, json_object *o, uint32_t *ret)
{
	json_object *arr;
	size_t nr;
	int k = jr_arr(r, o, "vmflags", CKPT_STATE_NR_VMF, &arr, &nr);

	if (k < 0)
		return k;
	*ret = 0;
	for (size_t i = 0; i < nr; i++) {
		json_object *v = json_object_array_get_idx(arr, i);
		const char *s = json_object_get_string(v);
		int b;

		for (b = 0; b < CKPT_STATE_NR_VMF; b++)
			if (json_object_is_type(v, json_type_string) && !strcmp(s, state_vmf_names[b]))
				break;
		if (b == CKPT_STATE_NR_VMF || (*ret & (1u << b))) {
			size_t mark = jr_enter(r, "vmflags");

			jr_enter_idx(r, i);
			k = jr_fail(r, NULL, "not a known flag, or a repeated one");
			jr_leave(r, mark);
			return k;
		}
		*ret |= 1u << b;
	}
	return 0;
}

static int vma_from_json(struct jr *r, json_object *o, struct ckpt_state_vma *v)
{
	json_object *x;
	int kind, k;

	if (!json_object_is_type(o, json_type_object))
		return jr_fail(r, NULL, "not an object");
	if ((k = jr_u64(r, o, "start", &v->start)) < 0 || (k = jr_u64(r, o, "end", &v->end)) < 0 ||
	    (k = jr_int(r, o, "prot", 0, 7, &v->prot)) < 0 ||
	    (k = jr_bool(r, o, "shared", &v->shared)) < 0 ||
	    (k = jr_enum(r, o, "kind", state_vma_kind_names, CKPT_STATE_NR_VMA_KINDS, &kind)) < 0 ||
	    (k = jr_u64(r, o, "offset", &v->offset)) < 0 ||
	    (k = jr_bool(r, o, "deleted", &v->deleted)) < 0 ||
	    (k = vmflags_from_json(r, o, &v->vmflags)) < 0)
		return k;
	v->kind = (enum ckpt_state_vma_kind)kind;
	if (v->start >= v->end || (v->start | v->end) & 4095)
		return jr_fail(r, "end", "[start, end) is empty or not page-aligned");
	if (v->offset & 4095)
		return jr_fail(r, "offset", "not page-aligned");
	if (kind_has_path(v->kind)) {
		if ((k = jr_str(r, o, "path", JR_MAX_STR, &v->path)) < 0)
			return k;
	} else if (json_object_object_get_ex(o, "path", &x)) {
		return jr_fail(r, "path", "not expected for a mapping of kind %s",
			       ckpt_state_vma_kind_name(v->kind));
	}
	if (json_object_object_get_ex(o, "name", &x) || v->kind == CKPT_STATE_VMA_SPECIAL) {
		if (v->kind != CKPT_STATE_VMA_SPECIAL && v->kind != CKPT_STATE_VMA_ANON &&
		    v->kind != CKPT_STATE_VMA_SHMEM_ANON)
			return jr_fail(r, "name", "not expected for a mapping of kind %s",
				       ckpt_state_vma_kind_name(v->kind));
		if ((k = jr_str(r, o, "name", JR_MAX_STR, &v->name)) < 0)
			return k;
	}
	k = jr_opt(r, o, "identity", json_type_object, &x);
	if (k < 0)
		return k;
	if (!k && kind_needs_identity(v->kind))
		return jr_fail(r, "identity", "missing (required for a mapping of kind %s)",
			       ckpt_state_vma_kind_name(v->kind));
	v->has_identity = k > 0;
	if (k > 0 && (k = jr_identity(r, o, "identity", &v->id)) < 0)
		return k;
	/* "reason": the dump's refusal (--allow-unrestorable wrote it anyway). Optional. */
	k = jr_opt(r, o, "reason", json_type_string, &x);
	if (k > 0 && (k = jr_str(r, o, "reason", JR_MAX_STR, &v->reason)) < 0)
		return k;
	if (k < 0)
		return k;
	/* "blob": a deleted file's contents, saved once for its fds and mappings. Optional. */
	k = jr_opt(r, o, "blob", json_type_string, &x);
	if (k <= 0)
		return k;
	if (v->kind != CKPT_STATE_VMA_FILE || !v->deleted || !v->has_identity)
		return jr_fail(r, "blob", "only for a mapping of a deleted file with an identity");
	if ((k = jr_str(r, o, "blob", 256, &v->blob)) < 0)
		return k;
	if (!state_blob_name_valid(v->blob))
		return jr_fail(r, "blob", "not a file name of a checkpoint");
	return 0;
}

static int guards_from_json(struct jr *r, json_object *doc, struct ckpt_state_mm *mm)
{
	json_object *arr;
	size_t nr;
	int k = jr_opt(r, doc, "guards", json_type_array, &arr);

	if (k <= 0)
		return k;
	if ((k = jr_arr(r, doc, "guards", JR_MAX_VMAS, &arr, &nr)) < 0)
		return k;
	mm->guards = nr ? calloc(nr, sizeof(*mm->guards)) : NULL;
	if (nr && !mm->guards)
		return -ENOMEM;
	mm->nr_guards = nr;
	for (size_t i = 0; i < nr; i++) {
		json_object *pair = json_object_array_get_idx(arr, i);
		size_t mark = jr_enter(r, "guards");

		jr_enter_idx(r, i);
		if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2)
			return jr_fail(r, NULL, "not an array [start, end]");
		for (size_t j = 0; j < 2; j++)
			if ((k = jr_u64_val(r, json_object_array_get_idx(pair, j), j ? "end" : "start",
					    &mm->guards[i][j])) < 0)
				return k;
		if (mm->guards[i][0] >= mm->guards[i][1] || (mm->guards[i][0] | mm->guards[i][1]) & 4095 ||
		    (i && mm->guards[i][0] < mm->guards[i - 1][1]))
			return jr_fail(r, NULL, "empty, not page-aligned, or not ascending");
		jr_leave(r, mark);
	}
	return 0;
}

static int sysv_one(struct jr *r, json_object *o, struct ckpt_state_sysv_shm *g)
{
	int k, mode = 0, ids[4];

	if ((k = jr_int(r, o, "shmid", 0, INT32_MAX, &g->shmid)) < 0 ||
	    (k = jr_int(r, o, "key", INT32_MIN, INT32_MAX, &g->key)) < 0 ||
	    (k = jr_int(r, o, "mode", 0, 0777, &mode)) < 0 || (k = jr_u64(r, o, "size", &g->size)) < 0 ||
	    (k = jr_int(r, o, "uid", 0, INT32_MAX, &ids[0])) < 0 || (k = jr_int(r, o, "gid", 0, INT32_MAX, &ids[1])) < 0 ||
	    (k = jr_int(r, o, "cuid", 0, INT32_MAX, &ids[2])) < 0 ||
	    (k = jr_int(r, o, "cgid", 0, INT32_MAX, &ids[3])) < 0 || (k = jr_bool(r, o, "removed", &g->removed)) < 0)
		return k;
	if (!g->size || g->size > (1ULL << 46))
		return jr_fail(r, "size", "out of range");
	g->mode = (uint32_t)mode;
	g->uid = (uint32_t)ids[0];
	g->gid = (uint32_t)ids[1];
	g->cuid = (uint32_t)ids[2];
	g->cgid = (uint32_t)ids[3];
	return 0;
}

static int sysv_from_json(struct jr *r, json_object *doc, struct ckpt_state_mm *mm)
{
	json_object *arr;
	size_t nr;
	int k = jr_opt(r, doc, "sysv_shm", json_type_array, &arr);

	if (k <= 0)
		return k;
	if ((k = jr_arr(r, doc, "sysv_shm", JR_MAX_VMAS, &arr, &nr)) < 0)
		return k;
	mm->sysv_shm = nr ? calloc(nr, sizeof(*mm->sysv_shm)) : NULL;
	if (nr && !mm->sysv_shm)
		return -ENOMEM;
	mm->nr_sysv_shm = nr;
	for (size_t i = 0; i < nr; i++) {
		size_t mark = jr_enter(r, "sysv_shm");

		jr_enter_idx(r, i);
		if ((k = sysv_one(r, json_object_array_get_idx(arr, i), &mm->sysv_shm[i])) < 0)
			return k;
		if (i && mm->sysv_shm[i].shmid <= mm->sysv_shm[i - 1].shmid)
			return jr_fail(r, "shmid", "not ascending");
		jr_leave(r, mark);
	}
	return 0;
}

static int membarrier_from_json(struct jr *r, json_object *doc, struct ckpt_state_mm *mm)
{
	json_object *arr;
	size_t nr;
	int k = jr_opt(r, doc, "membarrier", json_type_array, &arr);

	if (k <= 0)
		return k;
	if ((k = jr_arr(r, doc, "membarrier", CKPT_STATE_NR_MEMBARRIER, &arr, &nr)) < 0)
		return k;
	mm->has_membarrier = true;
	for (size_t i = 0; i < nr; i++) {
		json_object *v = json_object_array_get_idx(arr, i);
		int b;

		for (b = 0; b < CKPT_STATE_NR_MEMBARRIER; b++)
			if (json_object_is_type(v, json_type_string) &&
			    !strcmp(json_object_get_string(v), membarrier_names[b]))
				break;
		if (b == CKPT_STATE_NR_MEMBARRIER || (mm->membarrier & (1u << b))) {
			size_t mark = jr_enter(r, "membarrier");

			jr_enter_idx(r, i);
			k = jr_fail(r, NULL, "not a known registration, or a repeated one");
			jr_leave(r, mark);
			return k;
		}
		mm->membarrier |= 1u << b;
	}
	return 0;
}

/* Optional members: absent in older images, then left as the kernel makes them. */
static int per_mm_from_json(struct jr *r, json_object *doc, struct ckpt_state_mm *mm)
{
	json_object *x;
	int k;

	if ((k = guards_from_json(r, doc, mm)) < 0 || (k = membarrier_from_json(r, doc, mm)) < 0 ||
	    (k = sysv_from_json(r, doc, mm)) < 0)
		return k;
	if ((k = jr_opt(r, doc, "thp_disable", json_type_int, &x)) > 0) {
		mm->has_thp_disable = true;
		k = jr_int(r, doc, "thp_disable", 0, 3, &mm->thp_disable);
	}
	if (k < 0)
		return k;
	if ((k = jr_opt(r, doc, "memory_merge", json_type_boolean, &x)) > 0) {
		mm->has_memory_merge = true;
		k = jr_bool(r, doc, "memory_merge", &mm->memory_merge);
	}
	if (k < 0)
		return k;
	if ((k = jr_opt(r, doc, "mdwe", json_type_int, &x)) > 0) {
		mm->has_mdwe = true;
		k = jr_int(r, doc, "mdwe", 0, 3, &mm->mdwe);
	}
	if (k < 0)
		return k;
	return 0;
}

/* The members of mm.json around "vmas". */
static int mm_head_from_json(struct jr *r, json_object *doc, struct ckpt_state_mm *mm)
{
	int k;

	for (size_t i = 0; i < ARRAY_SIZE(mm_fields); i++)
		if ((k = jr_u64(r, doc, mm_fields[i].name, mm_at(mm, i))) < 0)
			return k;
	return auxv_from_json(r, doc, mm);
}

/* Mapping @i, parsed, after the one before it. */
static int vma_in_order(struct jr *r, const struct ckpt_state_mm *mm, size_t i)
{
	if (i && mm->vmas[i].start < mm->vmas[i - 1].end) {
		size_t mark = jr_enter(r, "vmas");
		int k;

		jr_enter_idx(r, i);
		k = jr_fail(r, "start", "overlaps or precedes the mapping before");
		jr_leave(r, mark);
		return k;
	}
	return 0;
}

int mm_from_json(struct jr *r, json_object *doc, struct ckpt_state *s)
{
	struct ckpt_state_mm *mm = &s->mm;
	json_object *arr;
	size_t nr;
	int k;

	if ((k = mm_head_from_json(r, doc, mm)) < 0)
		return k;
	k = jr_arr(r, doc, "vmas", JR_MAX_VMAS, &arr, &nr);
	if (k < 0)
		return k;
	mm->vmas = nr ? calloc(nr, sizeof(*mm->vmas)) : NULL;
	if (nr && !mm->vmas)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		size_t mark = jr_enter(r, "vmas");

		jr_enter_idx(r, i);
		mm->nr_vmas = i + 1;
		k = vma_from_json(r, json_object_array_get_idx(arr, i), &mm->vmas[i]);
		if (k < 0)
			return k;
		jr_leave(r, mark);
		if ((k = vma_in_order(r, mm, i)) < 0)
			return k;
	}
	return per_mm_from_json(r, doc, mm);
}

/*
 * ---- reading mm.json from its text ----
 *
 * A process with 30000 mappings has 9 MB of mm.json: json-c makes an object
 * with a hash table per mapping and frees them all again, about 200 ms of a
 * 450 ms restore. Here the "vmas" array is read by a small scanner, and the
 * rest of the document (its other members, some hundred bytes) by json-c
 * with that array emptied. The scanner reads only the form ckpt writes for
 * the common mapping (the members of an anonymous one, strings of
 * printable ASCII); any other mapping (a path, an identity, a blob, a
 * reason, an unknown or repeated key, an escape it does not know) is parsed
 * alone by json-c and vma_from_json(), as it would be in the whole
 * document. Whatever is wrong or unexpected gives -EAGAIN, and the caller
 * parses the document whole, which says what is wrong: a success here is
 * what mm_from_json() makes of the same text.
 */

struct scan {
	const char *p, *end;
};

/* Is @c one of @set (never the NUL byte)? */
static bool one_of(const char *set, char c)
{
	return c && strchr(set, c);
}

static void scan_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\t' || *s->p == '\r'))
		s->p++;
}

static bool scan_eat(struct scan *s, char c)
{
	scan_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

/* Past any JSON value (not checked: json-c or the scanner checks it), -EAGAIN at the end of the text. */
static int scan_skip(struct scan *s)
{
	int depth = 0;

	scan_ws(s);
	do {
		if (s->p >= s->end)
			return -EAGAIN;
		switch (*s->p++) {
		case '"':
			while (s->p < s->end && *s->p != '"')
				s->p += *s->p == '\\' ? 2 : 1;
			if (s->p++ >= s->end)
				return -EAGAIN;
			break;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			depth--;
			break;
		case ':':
		case ',':
			break;
		default:
			/* A number or a literal. */
			while (s->p < s->end && (isalnum((unsigned char)*s->p) || one_of("+-.", *s->p)))
				s->p++;
			break;
		}
		if (depth)
			scan_ws(s);
	} while (depth > 0);
	return depth == 0 ? 0 : -EAGAIN;
}

/* A string of printable ASCII (escapes \" \\ \/ only) into @buf of @size bytes, NUL-terminated. */
static int scan_str(struct scan *s, char *buf, size_t size, size_t *ret_len)
{
	size_t n = 0;

	if (!scan_eat(s, '"'))
		return -EAGAIN;
	while (s->p < s->end) {
		char c = *s->p++;

		if (c == '"') {
			buf[n] = '\0';
			*ret_len = n;
			return 0;
		}
		if (c == '\\') {
			if (s->p >= s->end || !one_of("\"\\/", *s->p))
				return -EAGAIN;
			c = *s->p++;
		} else if (c < 0x20 || c > 0x7e) {
			return -EAGAIN;
		}
		if (n + 1 >= size)
			return -EAGAIN;
		buf[n++] = c;
	}
	return -EAGAIN;
}

static int scan_bool(struct scan *s, bool *ret)
{
	scan_ws(s);
	if ((size_t)(s->end - s->p) >= 4 && !memcmp(s->p, "true", 4)) {
		s->p += 4;
		*ret = true;
	} else if ((size_t)(s->end - s->p) >= 5 && !memcmp(s->p, "false", 5)) {
		s->p += 5;
		*ret = false;
	} else {
		return -EAGAIN;
	}
	return s->p < s->end && one_of(",}] \t\n\r", *s->p) ? 0 : -EAGAIN;
}

static int scan_hex(struct scan *s, uint64_t *ret)
{
	char buf[24];
	size_t len;
	uint64_t v = 0;

	if (scan_str(s, buf, sizeof(buf), &len) < 0 || len < 3 || len > 18 || buf[0] != '0' || buf[1] != 'x')
		return -EAGAIN;
	for (size_t i = 2; i < len; i++) {
		if (buf[i] >= '0' && buf[i] <= '9')
			v = v << 4 | (uint64_t)(buf[i] - '0');
		else if (buf[i] >= 'a' && buf[i] <= 'f')
			v = v << 4 | (uint64_t)(buf[i] - 'a' + 10);
		else
			return -EAGAIN;
	}
	*ret = v;
	return 0;
}

static int scan_vmflags(struct scan *s, uint32_t *ret)
{
	char buf[32];
	size_t len;

	*ret = 0;
	if (!scan_eat(s, '['))
		return -EAGAIN;
	if (scan_eat(s, ']'))
		return 0;
	do {
		int b;

		if (scan_str(s, buf, sizeof(buf), &len) < 0)
			return -EAGAIN;
		for (b = 0; b < CKPT_STATE_NR_VMF; b++)
			if (!strcmp(buf, state_vmf_names[b]))
				break;
		if (b == CKPT_STATE_NR_VMF || (*ret & (1u << b)))
			return -EAGAIN;
		*ret |= 1u << b;
	} while (scan_eat(s, ','));
	return scan_eat(s, ']') ? 0 : -EAGAIN;
}

enum { VK_START, VK_END, VK_PROT, VK_SHARED, VK_KIND, VK_OFFSET, VK_DELETED, VK_VMFLAGS, VK_NAME, VK_NR };

/*
 * One mapping with only the members the scanner knows, each once, at
 * @s->p (left just past it): what vma_from_json() would make of it;
 * -EAGAIN for anything else, and for anything vma_from_json() would refuse.
 */
static int scan_vma(struct scan *s, struct ckpt_state_vma *v)
{
	static const char *const keys[VK_NR] = { "start", "end", "prot", "shared", "kind",
						 "offset", "deleted", "vmflags", "name" };
	char key[16], name[256];
	unsigned int seen = 0;
	int kind = -1;
	size_t len;

	if (!scan_eat(s, '{'))
		return -EAGAIN;
	do {
		int k;

		if (scan_str(s, key, sizeof(key), &len) < 0 || !scan_eat(s, ':'))
			return -EAGAIN;
		for (k = 0; k < VK_NR && strcmp(key, keys[k]); k++)
			;
		if (k == VK_NR || (seen & (1u << k)))
			return -EAGAIN;
		seen |= 1u << k;
		switch (k) {
		case VK_START:
			k = scan_hex(s, &v->start);
			break;
		case VK_END:
			k = scan_hex(s, &v->end);
			break;
		case VK_OFFSET:
			k = scan_hex(s, &v->offset);
			break;
		case VK_PROT:
			/* One digit, 0 to 7, as jr_int() takes it. */
			scan_ws(s);
			if (s->end - s->p < 2 || s->p[0] < '0' || s->p[0] > '7' || !one_of(",} \t\n\r", s->p[1]))
				return -EAGAIN;
			v->prot = *s->p++ - '0';
			k = 0;
			break;
		case VK_SHARED:
			k = scan_bool(s, &v->shared);
			break;
		case VK_DELETED:
			k = scan_bool(s, &v->deleted);
			break;
		case VK_KIND:
			k = scan_str(s, key, sizeof(key), &len);
			for (kind = 0; k == 0 && kind < CKPT_STATE_NR_VMA_KINDS; kind++)
				if (state_vma_kind_names[kind] && !strcmp(key, state_vma_kind_names[kind]))
					break;
			if (kind == CKPT_STATE_NR_VMA_KINDS)
				k = -EAGAIN;
			break;
		case VK_VMFLAGS:
			k = scan_vmflags(s, &v->vmflags);
			break;
		case VK_NAME:
			k = scan_str(s, name, sizeof(name), &len);
			break;
		}
		if (k < 0)
			return -EAGAIN;
	} while (scan_eat(s, ','));
	if (!scan_eat(s, '}') || (seen | (1u << VK_NAME)) != (1u << VK_NR) - 1)
		return -EAGAIN;
	v->kind = (enum ckpt_state_vma_kind)kind;
	/* vma_from_json()'s checks; a path or an identity needed: not here. */
	if (v->start >= v->end || (v->start | v->end) & 4095 || v->offset & 4095 || kind_has_path(v->kind) ||
	    kind_needs_identity(v->kind))
		return -EAGAIN;
	if (seen & (1u << VK_NAME)) {
		if (v->kind != CKPT_STATE_VMA_SPECIAL && v->kind != CKPT_STATE_VMA_ANON &&
		    v->kind != CKPT_STATE_VMA_SHMEM_ANON)
			return -EAGAIN;
		if (!(v->name = strdup(name)))
			return -ENOMEM;
	} else if (v->kind == CKPT_STATE_VMA_SPECIAL) {
		return -EAGAIN;
	}
	return 0;
}

/* One mapping in [@a, @b) the scanner does not take: json-c, then vma_from_json(). */
static int vma_from_span(struct jr *r, const char *a, size_t len, struct ckpt_state_vma *v)
{
	int flags = JSON_TOKENER_STRICT;
	struct json_tokener *tok;
	json_object *o;
	int k = -EAGAIN;

	if (len > INT32_MAX - 1)
		return -EAGAIN;
#ifdef JSON_TOKENER_VALIDATE_UTF8
	flags |= JSON_TOKENER_VALIDATE_UTF8;
#endif
	if (!(tok = json_tokener_new_ex(16)))
		return -ENOMEM;
	json_tokener_set_flags(tok, flags);
	o = json_tokener_parse_ex(tok, a, (int)len);
	if (o && json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) == len &&
	    json_object_is_type(o, json_type_object))
		k = vma_from_json(r, o, v) < 0 ? -EAGAIN : 0;
	json_object_put(o);
	json_tokener_free(tok);
	return k;
}

/* The "vmas" array at @s->p, each mapping in order, into @mm. */
static int scan_vmas(struct jr *r, struct scan *s, struct ckpt_state_mm *mm)
{
	size_t cap = 0;

	if (!scan_eat(s, '['))
		return -EAGAIN;
	if (scan_eat(s, ']'))
		return 0;
	do {
		struct ckpt_state_vma *v;
		struct scan one;
		const char *obj;
		int k;

		if (mm->nr_vmas >= JR_MAX_VMAS)
			return -EAGAIN;
		if (mm->nr_vmas == cap) {
			size_t n = cap ? cap * 2 : 1024;
			struct ckpt_state_vma *nv = reallocarray(mm->vmas, n, sizeof(*nv));

			if (!nv)
				return -ENOMEM;
			memset(nv + cap, 0, (n - cap) * sizeof(*nv));
			mm->vmas = nv;
			cap = n;
		}
		scan_ws(s);
		obj = s->p;
		if (s->p >= s->end || *s->p != '{')
			return -EAGAIN;
		/* One pass for a mapping it takes (exactly one object, by its grammar). */
		one = (struct scan){ obj, s->end };
		v = &mm->vmas[mm->nr_vmas++]; /* what it holds is freed with the state */
		k = scan_vma(&one, v);
		if (k == -ENOMEM)
			return k;
		if (k == 0) {
			s->p = one.p;
		} else {
			free(v->name);
			memset(v, 0, sizeof(*v));
			if (scan_skip(s) < 0)
				return -EAGAIN;
			k = vma_from_span(r, obj, (size_t)(s->p - obj), v);
		}
		if (k < 0 || vma_in_order(r, mm, mm->nr_vmas - 1) < 0)
			return k == -ENOMEM ? k : -EAGAIN;
	} while (scan_eat(s, ','));
	return scan_eat(s, ']') ? 0 : -EAGAIN;
}


/*
 * mm.json from @text: the state's mappings scanned into @s, and the rest of
 * the document (its "vmas" an empty array) as @ret_rest for
 * mm_rest_from_json(). -EAGAIN: parse the document whole.
 */
int mm_scan_text(struct jr *r, const char *text, size_t len, struct ckpt_state *s, json_object **ret_rest)
{
	struct scan sc = { text, text + len };
	const char *a = NULL, *b = NULL;
	_cleanup_free_ char *rest = NULL;
	int flags = JSON_TOKENER_STRICT;
	struct json_tokener *tok;
	json_object *doc;
	bool ok;
	size_t n;

	if (len > INT32_MAX - 1 || !scan_eat(&sc, '{'))
		return -EAGAIN;
	if (!scan_eat(&sc, '}')) {
		do {
			char key[64];
			size_t klen;
			int k;

			if (scan_str(&sc, key, sizeof(key), &klen) < 0 || !scan_eat(&sc, ':'))
				return -EAGAIN;
			scan_ws(&sc);
			if (strcmp(key, "vmas")) {
				k = scan_skip(&sc);
			} else if (a) {
				return -EAGAIN; /* twice: json-c takes the last */
			} else {
				a = sc.p;
				k = scan_vmas(r, &sc, &s->mm);
				b = sc.p;
			}
			if (k < 0)
				return k == -ENOMEM ? k : -EAGAIN;
		} while (scan_eat(&sc, ','));
		if (!scan_eat(&sc, '}'))
			return -EAGAIN;
	}
	if (!a)
		return -EAGAIN;
	/* The rest, "vmas": [], checked by json-c as the whole document would be. */
	n = (size_t)(a - text) + 2 + (size_t)(text + len - b);
	if (!(rest = malloc(n)))
		return -ENOMEM;
	memcpy(rest, text, (size_t)(a - text));
	memcpy(rest + (a - text), "[]", 2);
	memcpy(rest + (a - text) + 2, b, (size_t)(text + len - b));
#ifdef JSON_TOKENER_VALIDATE_UTF8
	flags |= JSON_TOKENER_VALIDATE_UTF8;
#endif
	if (!(tok = json_tokener_new_ex(64)))
		return -ENOMEM;
	json_tokener_set_flags(tok, flags);
	doc = json_tokener_parse_ex(tok, rest, (int)n);
	ok = doc && json_tokener_get_error(tok) == json_tokener_success &&
	     json_tokener_get_parse_end(tok) <= n && json_object_is_type(doc, json_type_object);
	if (ok) {
		/* Only white space after it, as for the whole document. */
		sc = (struct scan){ rest + json_tokener_get_parse_end(tok), rest + n };
		scan_ws(&sc);
		ok = sc.p == sc.end;
	}
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(doc);
		return -EAGAIN;
	}
	*ret_rest = doc;
	return 0;
}

/* The rest of mm.json, its mappings scanned already by mm_scan_text(). */
int mm_rest_from_json(struct jr *r, json_object *doc, struct ckpt_state *s)
{
	json_object *arr;
	size_t nr;
	int k;

	if ((k = mm_head_from_json(r, doc, &s->mm)) < 0 || (k = jr_arr(r, doc, "vmas", JR_MAX_VMAS, &arr, &nr)) < 0)
		return k;
	if (nr)
		return -EAGAIN; /* the scanner took another "vmas" than json-c did */
	return per_mm_from_json(r, doc, &s->mm);
}
