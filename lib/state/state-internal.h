/* SPDX-License-Identifier: MIT */
/*
 * JSON helpers of lib/state. Writing: a struct jw carries the first error,
 * so a document is built by straight-line calls and checked once at the end
 * (every helper does nothing after an error or with a NULL parent).
 * Reading: a struct jr knows the document and the path of the current
 * object; every getter checks type and range and, on failure, writes
 * "DOC: PATH.KEY: what" to @why once and returns -EBADMSG.
 */
#ifndef CKPT_STATE_INTERNAL_H
#define CKPT_STATE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <ckpt/state.h>

/* Upper bounds for what a document may hold: hostile input stays small. */
#define JR_MAX_STR (1u << 20)        /* a path, an fdinfo text */
#define JR_MAX_THREADS (1u << 16)
#define JR_MAX_VMAS (1u << 22)
#define JR_MAX_FDS (1u << 22)
#define JR_MAX_PENDING (1u << 20)
#define JR_MAX_GROUPS (1u << 16)     /* NGROUPS_MAX */
#define JR_MAX_AUXV 1024u
#define JR_MAX_XSTATE (1u << 20)

/* ---- writing ---- */

struct jw {
	int err; /* first error, 0 if none */
};

json_object *jw_root(struct jw *w);
json_object *jw_obj(struct jw *w, json_object *parent, const char *key);
json_object *jw_arr(struct jw *w, json_object *parent, const char *key);
/* A new object appended to array @arr. */
json_object *jw_arr_obj(struct jw *w, json_object *arr);
void jw_add(struct jw *w, json_object *parent, const char *key, json_object *val);
/* Append @val to array @arr (val NULL: out of memory). */
void jw_append(struct jw *w, json_object *arr, json_object *val);
void jw_u64(struct jw *w, json_object *o, const char *key, uint64_t v);
void jw_int(struct jw *w, json_object *o, const char *key, int64_t v);
void jw_bool(struct jw *w, json_object *o, const char *key, bool v);
void jw_str(struct jw *w, json_object *o, const char *key, const char *v);
void jw_blob(struct jw *w, json_object *o, const char *key, const void *buf, size_t len);
json_object *jw_new_u64(uint64_t v);
/* Finish: @root on success, put and NULL on error. */
int jw_finish(struct jw *w, json_object *root, json_object **ret);

void jw_identity(struct jw *w, json_object *o, const char *key,
		 const struct ckpt_state_identity *id);
void jw_siginfos(struct jw *w, json_object *o, const char *key,
		 const struct ckpt_state_siginfo *v, size_t nr);

/* ---- reading ---- */

struct jr {
	const char *doc;   /* "process.json" */
	char path[256];    /* of the current object: "threads[1].regs" */
	char *why;
	size_t whylen;
};

void jr_init(struct jr *r, const char *doc, char *why, size_t whylen);
/* Report a problem with field @key (NULL: the current object); -EBADMSG. */
int jr_fail(struct jr *r, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Enter member @key or element @idx; returns the mark for jr_leave(). */
size_t jr_enter(struct jr *r, const char *key);
size_t jr_enter_idx(struct jr *r, size_t idx);
void jr_leave(struct jr *r, size_t mark);

/* Check "version" of a document's root and that it is an object. */
int jr_doc(struct jr *r, json_object *root);
int jr_get(struct jr *r, json_object *o, const char *key, json_type type, json_object **ret);
/* 1 and @ret when present, 0 when absent, -EBADMSG for another type. */
int jr_opt(struct jr *r, json_object *o, const char *key, json_type type, json_object **ret);
int jr_obj(struct jr *r, json_object *o, const char *key, json_object **ret);
int jr_arr(struct jr *r, json_object *o, const char *key, size_t max, json_object **ret,
	   size_t *ret_nr);
int jr_u64(struct jr *r, json_object *o, const char *key, uint64_t *ret);
/* Parse a "0x..." value that is not a member (an array element). */
int jr_u64_val(struct jr *r, json_object *v, const char *what, uint64_t *ret);
int jr_i64(struct jr *r, json_object *o, const char *key, int64_t min, int64_t max,
	   int64_t *ret);
int jr_int(struct jr *r, json_object *o, const char *key, int min, int max, int *ret);
int jr_u32(struct jr *r, json_object *o, const char *key, uint32_t max, uint32_t *ret);
int jr_bool(struct jr *r, json_object *o, const char *key, bool *ret);
/* A string without NUL bytes, at most @max bytes; a new copy. */
int jr_str(struct jr *r, json_object *o, const char *key, size_t max, char **ret);
/* The same, copied into @buf of @size (so at most size - 1 bytes). */
int jr_strbuf(struct jr *r, json_object *o, const char *key, char *buf, size_t size);
/* Base64 of at most @max bytes. */
int jr_blob(struct jr *r, json_object *o, const char *key, size_t max, void **ret,
	    size_t *ret_len);
/* One of @names (NULL entries are skipped). */
int jr_enum(struct jr *r, json_object *o, const char *key, const char *const *names, size_t nr,
	    int *ret);
int jr_identity(struct jr *r, json_object *o, const char *key, struct ckpt_state_identity *ret);
int jr_siginfos(struct jr *r, json_object *o, const char *key, struct ckpt_state_siginfo **ret,
		size_t *ret_nr);

/* ---- the documents (json_*.c) ---- */

int process_to_json(const struct ckpt_state *s, json_object **ret);
int threads_to_json(const struct ckpt_state *s, json_object **ret);
int mm_to_json(const struct ckpt_state *s, json_object **ret);
int files_to_json(const struct ckpt_state *s, json_object **ret);
/* Parse into @s (zeroed at first); on error @s holds what was read so far. */
int process_from_json(struct jr *r, json_object *doc, struct ckpt_state *s);
int threads_from_json(struct jr *r, json_object *doc, struct ckpt_state *s);
int mm_from_json(struct jr *r, json_object *doc, struct ckpt_state *s);
int mm_scan_text(struct jr *r, const char *text, size_t len, struct ckpt_state *s, json_object **ret_rest);
int mm_rest_from_json(struct jr *r, json_object *doc, struct ckpt_state *s);
int files_from_json(struct jr *r, json_object *doc, struct ckpt_state *s);

extern const char *const state_vma_kind_names[CKPT_STATE_NR_VMA_KINDS];
extern const char *const state_fd_kind_names[CKPT_STATE_NR_FD_KINDS];
extern const char *const state_vmf_names[CKPT_STATE_NR_VMF];
extern const char *const state_sched_policy_names[CKPT_STATE_NR_SCHED_POLICIES];

/* json_files.c: a checkpoint file name of a blob: [A-Za-z0-9._-], not starting with '.', <= 255 bytes. */
bool state_blob_name_valid(const char *name);

#endif
