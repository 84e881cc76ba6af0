/* SPDX-License-Identifier: MIT */
/* JSON helpers and the entry points of state <-> JSON. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state-internal.h"
#include "util/base64.h"
#include "util/json.h"
#include "util/util.h"

/* ---- writing ---- */

json_object *jw_root(struct jw *w)
{
	json_object *o;

	if (w->err)
		return NULL;
	o = json_object_new_object();
	if (!o) {
		w->err = -ENOMEM;
		return NULL;
	}
	jw_int(w, o, "version", CKPT_STATE_VERSION);
	return o;
}

void jw_add(struct jw *w, json_object *parent, const char *key, json_object *val)
{
	if (w->err || !parent) {
		json_object_put(val);
		return;
	}
	if (!val || json_object_object_add(parent, key, val) < 0) {
		json_object_put(val);
		w->err = -ENOMEM;
	}
}

void jw_append(struct jw *w, json_object *arr, json_object *val)
{
	if (w->err || !arr) {
		json_object_put(val);
		return;
	}
	if (!val || json_object_array_add(arr, val) < 0) {
		json_object_put(val);
		w->err = -ENOMEM;
	}
}

json_object *jw_obj(struct jw *w, json_object *parent, const char *key)
{
	json_object *o;

	if (w->err || !parent)
		return NULL;
	o = json_object_new_object();
	jw_add(w, parent, key, o);
	return w->err ? NULL : o;
}

json_object *jw_arr(struct jw *w, json_object *parent, const char *key)
{
	json_object *o;

	if (w->err || !parent)
		return NULL;
	o = json_object_new_array();
	jw_add(w, parent, key, o);
	return w->err ? NULL : o;
}

json_object *jw_arr_obj(struct jw *w, json_object *arr)
{
	json_object *o;

	if (w->err || !arr)
		return NULL;
	o = json_object_new_object();
	jw_append(w, arr, o);
	return w->err ? NULL : o;
}

json_object *jw_new_u64(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	return json_object_new_string(buf);
}

void jw_u64(struct jw *w, json_object *o, const char *key, uint64_t v)
{
	if (!w->err && o)
		jw_add(w, o, key, jw_new_u64(v));
}

void jw_int(struct jw *w, json_object *o, const char *key, int64_t v)
{
	if (!w->err && o)
		jw_add(w, o, key, json_object_new_int64(v));
}

void jw_bool(struct jw *w, json_object *o, const char *key, bool v)
{
	if (!w->err && o)
		jw_add(w, o, key, json_object_new_boolean(v));
}

/* Well-formed UTF-8 (RFC 3629): no overlongs, no surrogates, at most U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

void jw_str(struct jw *w, json_object *o, const char *key, const char *v)
{
	size_t len;

	if (w->err || !o)
		return;
	v = v ? v : "";
	len = strlen(v);
	if (utf8_valid((const unsigned char *)v, len)) {
		jw_add(w, o, key, json_object_new_string_len(v, (int)len));
	} else {
		/* Bytes JSON cannot carry as text: {"base64": "..."} */
		json_object *b = jw_obj(w, o, key);

		jw_blob(w, b, "base64", v, len);
	}
}

void jw_blob(struct jw *w, json_object *o, const char *key, const void *buf, size_t len)
{
	char *s;

	if (w->err || !o)
		return;
	s = base64_encode(buf, len);
	if (!s) {
		w->err = -ENOMEM;
		return;
	}
	jw_add(w, o, key, json_object_new_string(s));
	free(s);
}

int jw_finish(struct jw *w, json_object *root, json_object **ret)
{
	if (w->err || !root) {
		json_object_put(root);
		return w->err ? w->err : -ENOMEM;
	}
	*ret = root;
	return 0;
}

void jw_identity(struct jw *w, json_object *o, const char *key,
		 const struct ckpt_state_identity *id)
{
	json_object *i = jw_obj(w, o, key);

	jw_int(w, i, "dev_major", id->dev_major);
	jw_int(w, i, "dev_minor", id->dev_minor);
	jw_u64(w, i, "ino", id->ino);
	jw_int(w, i, "mode", id->mode);
	jw_u64(w, i, "size", id->size);
	jw_int(w, i, "mtime_sec", id->mtime_sec);
	jw_int(w, i, "mtime_nsec", id->mtime_nsec);
	jw_int(w, i, "rdev_major", id->rdev_major);
	jw_int(w, i, "rdev_minor", id->rdev_minor);
}

void jw_siginfos(struct jw *w, json_object *o, const char *key,
		 const struct ckpt_state_siginfo *v, size_t nr)
{
	json_object *a = jw_arr(w, o, key);

	for (size_t i = 0; i < nr; i++) {
		json_object *e = jw_arr_obj(w, a);

		jw_int(w, e, "signo", v[i].signo);
		jw_int(w, e, "code", v[i].code);
		jw_blob(w, e, "raw", v[i].raw, sizeof(v[i].raw));
	}
}

/* ---- reading ---- */

void jr_init(struct jr *r, const char *doc, char *why, size_t whylen)
{
	r->doc = doc;
	r->path[0] = '\0';
	r->why = why;
	r->whylen = whylen;
	if (why && whylen)
		why[0] = '\0';
}

int jr_fail(struct jr *r, const char *key, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!r->why || !r->whylen || r->why[0])
		return -EBADMSG; /* the first problem is the one reported */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key)
		snprintf(r->why, r->whylen, "%s: %s%s%s: %s", r->doc, r->path, r->path[0] ? "." : "",
			 key, msg);
	else if (r->path[0])
		snprintf(r->why, r->whylen, "%s: %s: %s", r->doc, r->path, msg);
	else
		snprintf(r->why, r->whylen, "%s: %s", r->doc, msg);
	return -EBADMSG;
}

size_t jr_enter(struct jr *r, const char *key)
{
	size_t mark = strlen(r->path);

	snprintf(r->path + mark, sizeof(r->path) - mark, "%s%s", mark ? "." : "", key);
	return mark;
}

size_t jr_enter_idx(struct jr *r, size_t idx)
{
	size_t mark = strlen(r->path);

	snprintf(r->path + mark, sizeof(r->path) - mark, "[%zu]", idx);
	return mark;
}

void jr_leave(struct jr *r, size_t mark)
{
	if (mark < sizeof(r->path))
		r->path[mark] = '\0';
}

static const char *type_name(json_type t)
{
	switch (t) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a fractional number";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "unknown";
}

int jr_opt(struct jr *r, json_object *o, const char *key, json_type type, json_object **ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, type))
		return jr_fail(r, key, "is %s, not %s", type_name(json_object_get_type(v)),
			       type_name(type));
	*ret = v;
	return 1;
}

int jr_get(struct jr *r, json_object *o, const char *key, json_type type, json_object **ret)
{
	int k = jr_opt(r, o, key, type, ret);

	if (k == 0)
		return jr_fail(r, key, "missing");
	return k < 0 ? k : 0;
}

int jr_doc(struct jr *r, json_object *root)
{
	int64_t v;
	int k;

	if (!root || !json_object_is_type(root, json_type_object))
		return jr_fail(r, NULL, "not a JSON object");
	k = jr_i64(r, root, "version", INT32_MIN, INT32_MAX, &v);
	if (k < 0)
		return k;
	if (v != CKPT_STATE_VERSION) {
		jr_fail(r, "version", "%" PRId64 " is not supported (this ckpt reads %d)", v,
			CKPT_STATE_VERSION);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

int jr_obj(struct jr *r, json_object *o, const char *key, json_object **ret)
{
	return jr_get(r, o, key, json_type_object, ret);
}

int jr_arr(struct jr *r, json_object *o, const char *key, size_t max, json_object **ret,
	   size_t *ret_nr)
{
	json_object *a;
	int k = jr_get(r, o, key, json_type_array, &a);

	if (k < 0)
		return k;
	if (json_object_array_length(a) > max)
		return jr_fail(r, key, "has %zu elements, more than %zu", json_object_array_length(a),
			       max);
	*ret = a;
	*ret_nr = json_object_array_length(a);
	return 0;
}

static int parse_hex(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	if (len < 3 || len > 18 || s[0] != '0' || s[1] != 'x')
		return -EBADMSG;
	for (size_t i = 2; i < len; i++) {
		int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else
			return -EBADMSG;
		v = v << 4 | (uint64_t)d;
	}
	*ret = v;
	return 0;
}

int jr_u64_val(struct jr *r, json_object *v, const char *what, uint64_t *ret)
{
	if (!json_object_is_type(v, json_type_string) ||
	    parse_hex(json_object_get_string(v), (size_t)json_object_get_string_len(v), ret) < 0)
		return jr_fail(r, what, "not a string \"0x\" + 1 to 16 lowercase hex digits");
	return 0;
}

int jr_u64(struct jr *r, json_object *o, const char *key, uint64_t *ret)
{
	json_object *v;
	int k = jr_get(r, o, key, json_type_string, &v);

	if (k < 0)
		return k;
	return jr_u64_val(r, v, key, ret);
}

int jr_i64(struct jr *r, json_object *o, const char *key, int64_t min, int64_t max,
	   int64_t *ret)
{
	json_object *v;
	int64_t x;
	int k = jr_get(r, o, key, json_type_int, &v);

	if (k < 0)
		return k;
	x = json_object_get_int64(v);
	/* json-c keeps numbers above INT64_MAX as uint64 and clamps them here. */
	if ((x == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX) || x < min ||
	    x > max)
		return jr_fail(r, key, "out of range [%" PRId64 ", %" PRId64 "]", min, max);
	*ret = x;
	return 0;
}

int jr_int(struct jr *r, json_object *o, const char *key, int min, int max, int *ret)
{
	int64_t x;
	int k = jr_i64(r, o, key, min, max, &x);

	if (k < 0)
		return k;
	*ret = (int)x;
	return 0;
}

int jr_u32(struct jr *r, json_object *o, const char *key, uint32_t max, uint32_t *ret)
{
	int64_t x;
	int k = jr_i64(r, o, key, 0, max, &x);

	if (k < 0)
		return k;
	*ret = (uint32_t)x;
	return 0;
}

int jr_bool(struct jr *r, json_object *o, const char *key, bool *ret)
{
	json_object *v;
	int k = jr_get(r, o, key, json_type_boolean, &v);

	if (k < 0)
		return k;
	*ret = json_object_get_boolean(v);
	return 0;
}

/* A JSON string, no NUL inside, at most @max bytes (borrowed). */
static int get_str(struct jr *r, json_object *o, const char *key, size_t max, const char **ret,
		   size_t *ret_len)
{
	json_object *v;
	size_t len;
	const char *s;
	int k = jr_get(r, o, key, json_type_string, &v);

	if (k < 0)
		return k;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len > max)
		return jr_fail(r, key, "longer than %zu bytes", max);
	if (strlen(s) != len)
		return jr_fail(r, key, "holds a NUL character");
	*ret = s;
	*ret_len = len;
	return 0;
}

/* A byte string: a JSON string or {"base64": "..."}; a new copy. */
static int get_bytes(struct jr *r, json_object *o, const char *key, size_t max, char **ret,
		     size_t *ret_len)
{
	json_object *v, *b;
	size_t mark, len;
	void *buf;
	int k;

	if (!json_object_object_get_ex(o, key, &v))
		return jr_fail(r, key, "missing");
	if (json_object_is_type(v, json_type_string)) {
		const char *s;

		k = get_str(r, o, key, max, &s, &len);
		if (k < 0)
			return k;
		*ret = strndup(s, len);
		*ret_len = len;
		return *ret ? 0 : -ENOMEM;
	}
	if (!json_object_is_type(v, json_type_object) || !json_object_object_get_ex(v, "base64", &b))
		return jr_fail(r, key, "neither a string nor an object {\"base64\": ...}");
	mark = jr_enter(r, key);
	k = jr_blob(r, v, "base64", max, &buf, &len);
	if (k < 0)
		return k;
	if (strlen(buf) != len) {
		free(buf);
		return jr_fail(r, "base64", "holds a NUL byte");
	}
	jr_leave(r, mark);
	*ret = buf; /* jr_blob NUL-terminates */
	*ret_len = len;
	return 0;
}

int jr_str(struct jr *r, json_object *o, const char *key, size_t max, char **ret)
{
	size_t len;

	return get_bytes(r, o, key, max, ret, &len);
}

int jr_strbuf(struct jr *r, json_object *o, const char *key, char *buf, size_t size)
{
	_cleanup_free_ char *s = NULL;
	size_t len;
	int k = get_bytes(r, o, key, size - 1, &s, &len);

	if (k < 0)
		return k;
	memcpy(buf, s, len + 1);
	return 0;
}

int jr_blob(struct jr *r, json_object *o, const char *key, size_t max, void **ret,
	    size_t *ret_len)
{
	const char *s;
	size_t len;
	int k = get_str(r, o, key, base64_encoded_len(max), &s, &len);

	if (k < 0)
		return k;
	k = base64_decode(s, len, ret, ret_len);
	if (k == -EBADMSG)
		return jr_fail(r, key, "not canonical base64");
	if (k < 0)
		return k;
	if (*ret_len > max) {
		free(*ret);
		*ret = NULL;
		return jr_fail(r, key, "longer than %zu bytes", max);
	}
	return 0;
}

int jr_enum(struct jr *r, json_object *o, const char *key, const char *const *names, size_t nr,
	    int *ret)
{
	const char *s;
	size_t len;
	int k = get_str(r, o, key, 64, &s, &len);

	if (k < 0)
		return k;
	for (size_t i = 0; i < nr; i++) {
		if (names[i] && !strcmp(names[i], s)) {
			*ret = (int)i;
			return 0;
		}
	}
	return jr_fail(r, key, "unknown value \"%s\"", s);
}

int jr_identity(struct jr *r, json_object *o, const char *key, struct ckpt_state_identity *ret)
{
	json_object *i;
	size_t mark;
	int k = jr_obj(r, o, key, &i);

	if (k < 0)
		return k;
	mark = jr_enter(r, key);
	if ((k = jr_u32(r, i, "dev_major", 0xfff, &ret->dev_major)) < 0 ||
	    (k = jr_u32(r, i, "dev_minor", 0xfffff, &ret->dev_minor)) < 0 ||
	    (k = jr_u64(r, i, "ino", &ret->ino)) < 0 ||
	    (k = jr_u32(r, i, "mode", 0xffff, &ret->mode)) < 0 ||
	    (k = jr_u64(r, i, "size", &ret->size)) < 0 ||
	    (k = jr_i64(r, i, "mtime_sec", INT64_MIN, INT64_MAX, &ret->mtime_sec)) < 0 ||
	    (k = jr_u32(r, i, "mtime_nsec", 999999999, &ret->mtime_nsec)) < 0 ||
	    (k = jr_u32(r, i, "rdev_major", 0xfff, &ret->rdev_major)) < 0 ||
	    (k = jr_u32(r, i, "rdev_minor", 0xfffff, &ret->rdev_minor)) < 0)
		return k;
	jr_leave(r, mark);
	return 0;
}

static int siginfo_from_json(struct jr *r, json_object *e, struct ckpt_state_siginfo *si)
{
	_cleanup_free_ void *raw = NULL;
	size_t len;
	int signo, code, k;

	if (!json_object_is_type(e, json_type_object))
		return jr_fail(r, NULL, "not an object");
	if ((k = jr_int(r, e, "signo", 1, CKPT_STATE_NSIG, &si->signo)) < 0 ||
	    (k = jr_int(r, e, "code", INT32_MIN, INT32_MAX, &si->code)) < 0 ||
	    (k = jr_blob(r, e, "raw", CKPT_STATE_SIGINFO_SIZE, &raw, &len)) < 0)
		return k;
	if (len != CKPT_STATE_SIGINFO_SIZE)
		return jr_fail(r, "raw", "%zu bytes, not %d", len, CKPT_STATE_SIGINFO_SIZE);
	memcpy(si->raw, raw, len);
	/* siginfo_t starts with si_signo, si_errno, si_code */
	memcpy(&signo, si->raw, sizeof(int));
	memcpy(&code, si->raw + 2 * sizeof(int), sizeof(int));
	if (signo != si->signo)
		return jr_fail(r, "signo", "%d but raw says %d", si->signo, signo);
	if (code != si->code)
		return jr_fail(r, "code", "%d but raw says %d", si->code, code);
	return 0;
}

int jr_siginfos(struct jr *r, json_object *o, const char *key, struct ckpt_state_siginfo **ret,
		size_t *ret_nr)
{
	json_object *a;
	size_t nr, mark;
	int k = jr_arr(r, o, key, JR_MAX_PENDING, &a, &nr);

	if (k < 0)
		return k;
	*ret = nr ? calloc(nr, sizeof(**ret)) : NULL;
	if (nr && !*ret)
		return -ENOMEM;
	*ret_nr = nr;
	for (size_t i = 0; i < nr; i++) {
		size_t m2;

		mark = jr_enter(r, key);
		m2 = jr_enter_idx(r, i);
		k = siginfo_from_json(r, json_object_array_get_idx(a, i), &(*ret)[i]);
		if (k < 0)
			return k;
		jr_leave(r, m2);
		jr_leave(r, mark);
	}
	return 0;
}

/* ---- entry points ---- */

static const char *const doc_names[CKPT_STATE_NR_DOCS] = {
	[CKPT_STATE_DOC_PROCESS] = "process.json",
	[CKPT_STATE_DOC_THREADS] = "threads.json",
	[CKPT_STATE_DOC_MM] = "mm.json",
	[CKPT_STATE_DOC_FILES] = "files.json",
};

static const char *const doc_sections[CKPT_STATE_NR_DOCS] = {
	[CKPT_STATE_DOC_PROCESS] = "process",
	[CKPT_STATE_DOC_THREADS] = "threads",
	[CKPT_STATE_DOC_MM] = "mm",
	[CKPT_STATE_DOC_FILES] = "files",
};

const char *ckpt_state_doc_name(enum ckpt_state_doc doc)
{
	return (unsigned int)doc < CKPT_STATE_NR_DOCS ? doc_names[doc] : NULL;
}

const char *ckpt_state_doc_section(enum ckpt_state_doc doc)
{
	return (unsigned int)doc < CKPT_STATE_NR_DOCS ? doc_sections[doc] : NULL;
}

int ckpt_state_doc_to_json(const struct ckpt_state *s, enum ckpt_state_doc doc,
			   struct json_object **ret)
{
	switch (doc) {
	case CKPT_STATE_DOC_PROCESS:
		return process_to_json(s, ret);
	case CKPT_STATE_DOC_THREADS:
		return threads_to_json(s, ret);
	case CKPT_STATE_DOC_MM:
		return mm_to_json(s, ret);
	case CKPT_STATE_DOC_FILES:
		return files_to_json(s, ret);
	case CKPT_STATE_NR_DOCS:
		break;
	}
	return -EINVAL;
}

int ckpt_state_to_json(const struct ckpt_state *s, struct json_object **ret)
{
	struct jw w = { 0 };
	json_object *root = json_object_new_object();

	if (!root)
		return -ENOMEM;
	for (int d = 0; d < CKPT_STATE_NR_DOCS && !w.err; d++) {
		json_object *o;
		int r = ckpt_state_doc_to_json(s, (enum ckpt_state_doc)d, &o);

		if (r < 0) {
			json_object_put(root);
			return r;
		}
		jw_add(&w, root, doc_sections[d], o);
	}
	return jw_finish(&w, root, ret);
}

/* Each document names the pid: all four must agree. */
static int check_pid(struct jr *r, json_object *doc, pid_t pid)
{
	int p, k = jr_int(r, doc, "pid", 1, INT32_MAX, &p);

	if (k < 0)
		return k;
	if (p != pid)
		return jr_fail(r, "pid", "%d, but process.json is about pid %d", p, pid);
	return 0;
}

/* With @mm_text: mm.json from its text (mm_scan_text()), docs[MM] unused; -EAGAIN as it says. */
static int from_docs(struct json_object *const docs[CKPT_STATE_NR_DOCS], const char *mm_text, size_t mm_len,
		     char *why, size_t whylen, struct ckpt_state **ret)
{
	static int (*const parse[CKPT_STATE_NR_DOCS])(struct jr *, json_object *,
						      struct ckpt_state *) = {
		[CKPT_STATE_DOC_PROCESS] = process_from_json,
		[CKPT_STATE_DOC_THREADS] = threads_from_json,
		[CKPT_STATE_DOC_MM] = mm_from_json,
		[CKPT_STATE_DOC_FILES] = files_from_json,
	};
	_cleanup_state_ struct ckpt_state *s = NULL;
	int k = ckpt_state_new(&s);

	if (k < 0)
		return k;
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++) {
		_cleanup_json_ json_object *rest = NULL;
		bool text = d == CKPT_STATE_DOC_MM && mm_text;
		json_object *doc = docs[d];
		struct jr r;

		/* From the text, nothing is said: the whole document parsed again says it. */
		jr_init(&r, doc_names[d], text ? NULL : why, text ? 0 : whylen);
		if (text) {
			k = mm_scan_text(&r, mm_text, mm_len, s, &rest);
			if (k < 0)
				return k;
			doc = rest;
		}
		if (!doc)
			return jr_fail(&r, NULL, "missing");
		k = jr_doc(&r, doc);
		/* process.json comes first: it says which pid the others must name */
		if (k == 0 && d != CKPT_STATE_DOC_PROCESS)
			k = check_pid(&r, doc, s->process.pid);
		if (k == 0)
			k = text ? mm_rest_from_json(&r, doc, s) : parse[d](&r, doc, s);
		if (k < 0)
			return text && k != -ENOMEM ? -EAGAIN : k;
	}
	*ret = TAKE_PTR(s);
	return 0;
}

int ckpt_state_from_docs(struct json_object *const docs[CKPT_STATE_NR_DOCS], char *why,
			 size_t whylen, struct ckpt_state **ret)
{
	return from_docs(docs, NULL, 0, why, whylen, ret);
}

int ckpt_state_from_docs_mm_text(struct json_object *const docs[CKPT_STATE_NR_DOCS], const char *mm_text,
				 size_t mm_len, char *why, size_t whylen, struct ckpt_state **ret)
{
	return from_docs(docs, mm_text, mm_len, why, whylen, ret);
}

int ckpt_state_from_json(struct json_object *obj, char *why, size_t whylen,
			 struct ckpt_state **ret)
{
	json_object *docs[CKPT_STATE_NR_DOCS] = { NULL };
	struct jr r;

	jr_init(&r, "state", why, whylen);
	if (!obj || !json_object_is_type(obj, json_type_object))
		return jr_fail(&r, NULL, "not a JSON object");
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++) {
		int k = jr_obj(&r, obj, doc_sections[d], &docs[d]);

		if (k < 0)
			return k;
	}
	return ckpt_state_from_docs(docs, why, whylen, ret);
}
