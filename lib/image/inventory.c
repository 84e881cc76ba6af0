/* SPDX-License-Identifier: MIT */
/* inventory.json: format, version, identity of the process, checksums of the other files. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image/image-internal.h"
#include "util/util.h"
#include "util/xxhash.h"

static bool boot_id_valid(const char *s)
{
	/* 8-4-4-4-12 hex digits, as the kernel prints it. */
	if (strlen(s) != CKPT_IMAGE_BOOT_ID_LEN)
		return false;
	for (int i = 0; i < CKPT_IMAGE_BOOT_ID_LEN; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

int identity_validate(const struct ckpt_image_identity *id, char *why, size_t whylen)
{
	if (id->pid <= 0)
		return why_set(why, whylen, -EINVAL, "pid %d is not a process id", (int)id->pid);
	if (!boot_id_valid(id->boot_id))
		return why_set(why, whylen, -EINVAL, "boot id '%.40s' is not a UUID", id->boot_id);
	if (!id->exe || !*id->exe)
		return why_set(why, whylen, -EINVAL, "no executable path");
	return 0;
}

int identity_copy(struct ckpt_image_identity *dst, const struct ckpt_image_identity *src)
{
	char *exe = strdup(src->exe);

	if (!exe)
		return -ENOMEM;
	*dst = *src;
	dst->exe = exe;
	return 0;
}

bool ckpt_image_identity_equal(const struct ckpt_image_identity *a,
			       const struct ckpt_image_identity *b)
{
	return a->pid == b->pid && a->start_time == b->start_time &&
	       !strcasecmp(a->boot_id, b->boot_id);
}

void format_utc(int64_t ns, char buf[40])
{
	time_t sec = (time_t)(ns / 1000000000);
	char date[32];
	struct tm tm;

	if (ns < 0 || !gmtime_r(&sec, &tm) ||
	    !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(date, sizeof(date), "1970-01-01T00:00:00");
	snprintf(buf, 40, "%.19s.%09uZ", date, (unsigned int)(ns % 1000000000) % 1000000000u);
}

void ckpt_image_inventory_done(struct ckpt_image_inventory *inv)
{
	if (!inv)
		return;
	free(inv->ckpt_version);
	free(inv->parent);
	free((char *)inv->identity.exe);
	for (size_t i = 0; i < inv->nr_files; i++)
		free(inv->files[i].name);
	free(inv->files);
	memset(inv, 0, sizeof(*inv));
}

const struct ckpt_image_file *inventory_find(const struct ckpt_image_inventory *inv,
					     const char *name)
{
	for (size_t i = 0; i < inv->nr_files; i++)
		if (!strcmp(inv->files[i].name, name))
			return &inv->files[i];
	return NULL;
}

/* ---- parsing ---- */

static const char *type_noun(enum json_type t)
{
	switch (t) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a non-integer number";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "?";
}

/* A member of @o of type @type; @path names it in messages ("process.pid"). */
static int member(struct json_object *o, const char *key, const char *path, enum json_type type,
		  bool nullable, struct json_object **ret, char *why, size_t whylen)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return why_set(why, whylen, -EBADMSG, "missing field '%s'", path);
	if (nullable && json_object_is_type(v, json_type_null)) {
		*ret = NULL;
		return 0;
	}
	if (!json_object_is_type(v, type))
		return why_set(why, whylen, -EBADMSG, "field '%s' is %s, expected %s%s", path,
			       type_noun(json_object_get_type(v)), type_noun(type),
			       nullable ? " or null" : "");
	*ret = v;
	return 0;
}

static int member_str(struct json_object *o, const char *key, const char *path, bool nullable,
		      const char **ret, char *why, size_t whylen)
{
	struct json_object *v;
	const char *s;
	int r;

	r = member(o, key, path, json_type_string, nullable, &v, why, whylen);
	if (r < 0)
		return r;
	if (!v) {
		*ret = NULL;
		return 0;
	}
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return why_set(why, whylen, -EBADMSG, "field '%s' holds a NUL byte", path);
	*ret = s;
	return 0;
}

/* An integer in [min, max]. */
static int member_int(struct json_object *o, const char *key, const char *path, int64_t min,
		      int64_t max, int64_t *ret, char *why, size_t whylen)
{
	struct json_object *v;
	int64_t x;
	int r;

	r = member(o, key, path, json_type_int, false, &v, why, whylen);
	if (r < 0)
		return r;
	x = json_object_get_int64(v);
	/* json-c saturates at INT64_MAX; a larger value is stored unsigned. */
	if ((x == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX) || x < min ||
	    x > max)
		return why_set(why, whylen, -EBADMSG, "field '%s' is out of range [%" PRId64
			       ", %" PRId64 "]", path, min, max);
	*ret = x;
	return 0;
}

static int dup_str(const char *s, char **ret)
{
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct ckpt_image_file *)a)->name,
		      ((const struct ckpt_image_file *)b)->name);
}

static int parse_identity(struct json_object *root, struct ckpt_image_identity *id, char *why,
			  size_t whylen)
{
	struct json_object *proc;
	const char *boot_id, *exe;
	int64_t x;
	int r;

	r = member(root, "process", "process", json_type_object, false, &proc, why, whylen);
	if (r < 0)
		return r;
	r = member_int(proc, "pid", "process.pid", 1, INT32_MAX, &x, why, whylen);
	if (r < 0)
		return r;
	id->pid = (pid_t)x;
	r = member_int(proc, "start_time", "process.start_time", 0, INT64_MAX, &x, why, whylen);
	if (r < 0)
		return r;
	id->start_time = (uint64_t)x;
	r = member_str(proc, "boot_id", "process.boot_id", false, &boot_id, why, whylen);
	if (r < 0)
		return r;
	if (!boot_id_valid(boot_id))
		return why_set(why, whylen, -EBADMSG, "field 'process.boot_id' is not a UUID");
	memcpy(id->boot_id, boot_id, CKPT_IMAGE_BOOT_ID_LEN + 1);
	r = member_str(proc, "exe", "process.exe", false, &exe, why, whylen);
	if (r < 0)
		return r;
	if (!*exe)
		return why_set(why, whylen, -EBADMSG, "field 'process.exe' is empty");
	id->exe = strdup(exe);
	return id->exe ? 0 : -ENOMEM;
}

static int parse_files(struct json_object *root, struct ckpt_image_inventory *inv, char *why,
		       size_t whylen)
{
	struct json_object *files;
	size_t n;
	int r;

	r = member(root, "files", "files", json_type_object, false, &files, why, whylen);
	if (r < 0)
		return r;
	n = (size_t)json_object_object_length(files);
	inv->files = calloc(n ? n : 1, sizeof(*inv->files));
	if (!inv->files)
		return -ENOMEM;
	json_object_object_foreach(files, key, val)
	{
		struct ckpt_image_file *f = &inv->files[inv->nr_files];
		const char *s;

		if (!file_name_valid(key) || !strcmp(key, INVENTORY_NAME))
			return why_set(why, whylen, -EBADMSG, "'files' lists a bad name '%.64s'", key);
		if (!json_object_is_type(val, json_type_string))
			return why_set(why, whylen, -EBADMSG, "checksum of '%s' is %s, expected a string",
				       key, type_noun(json_object_get_type(val)));
		s = json_object_get_string(val);
		if (xxh64_parse(s, &f->xxh64) < 0)
			return why_set(why, whylen, -EBADMSG,
				       "checksum of '%s' is not \"xxh64:<16 hex digits>\"", key);
		f->name = strdup(key);
		if (!f->name)
			return -ENOMEM;
		inv->nr_files++;
	}
	qsort(inv->files, inv->nr_files, sizeof(*inv->files), cmp_file);
	if (!inventory_find(inv, INDEX_NAME) || !inventory_find(inv, PAGES_NAME))
		return why_set(why, whylen, -EBADMSG, "'files' lacks %s or %s", INDEX_NAME,
			       PAGES_NAME);
	return 0;
}

static int member_id(struct json_object *o, const char *key, bool nullable,
		     struct ckpt_image_id *ret, bool *ret_null, char *why, size_t whylen)
{
	const char *s;
	int r;

	r = member_str(o, key, key, nullable, &s, why, whylen);
	if (r < 0)
		return r;
	*ret_null = !s;
	if (!s)
		return 0;
	if (ckpt_image_id_parse(s, ret) < 0 || id_is_zero(ret))
		return why_set(why, whylen, -EBADMSG, "field '%s' is not an id (%d lowercase hex digits, not all zero)",
			       key, CKPT_IMAGE_ID_STR_LEN);
	return 0;
}

static int parse_parent(struct json_object *root, struct ckpt_image_inventory *inv, char *why,
			size_t whylen)
{
	const char *kind, *parent;
	bool no_id;
	char base[256];
	int r;

	r = member_id(root, "id", false, &inv->id, &no_id, why, whylen);
	if (r < 0)
		return r;
	r = member_str(root, "kind", "kind", false, &kind, why, whylen);
	if (r < 0)
		return r;
	if (!strcmp(kind, "full"))
		inv->kind = CKPT_IMAGE_FULL;
	else if (!strcmp(kind, "delta"))
		inv->kind = CKPT_IMAGE_DELTA;
	else
		return why_set(why, whylen, -EBADMSG, "kind '%.32s' is neither full nor delta", kind);
	r = member_str(root, "parent", "parent", true, &parent, why, whylen);
	if (r < 0)
		return r;
	r = member_id(root, "parent_id", true, &inv->parent_id, &no_id, why, whylen);
	if (r < 0)
		return r;
	if (inv->kind == CKPT_IMAGE_FULL) {
		if (parent || !no_id)
			return why_set(why, whylen, -EBADMSG, "a full checkpoint with a parent");
		return 0;
	}
	if (!parent || no_id)
		return why_set(why, whylen, -EBADMSG, "a delta without a parent");
	if (!*parent || parent[0] == '/')
		return why_set(why, whylen, -EBADMSG, "parent '%.64s' is not a relative path", parent);
	if (ckpt_image_is_temp_name(path_base(parent, base, sizeof(base))))
		return why_set(why, whylen, -EBADMSG, "parent '%.64s' is a temporary directory",
			       parent);
	if (ckpt_image_id_equal(&inv->parent_id, &inv->id))
		return why_set(why, whylen, -EBADMSG, "a delta whose parent has its own id");
	return dup_str(parent, &inv->parent);
}

static int parse_root(struct json_object *root, struct ckpt_image_inventory *inv, char *why,
		      size_t whylen)
{
	const char *format, *s;
	int64_t x;
	int r;

	if (!json_object_is_type(root, json_type_object))
		return why_set(why, whylen, -EBADMSG, "not a JSON object");
	/* Format and version first: a newer version may change everything else. */
	r = member_str(root, "format", "format", false, &format, why, whylen);
	if (r < 0)
		return r;
	if (strcmp(format, CKPT_IMAGE_FORMAT))
		return why_set(why, whylen, -EBADMSG, "format is '%.32s', not '%s'", format,
			       CKPT_IMAGE_FORMAT);
	r = member_int(root, "format_version", "format_version", INT32_MIN, INT32_MAX, &x, why,
		       whylen);
	if (r < 0)
		return r;
	if (x == 1)
		return why_set(why, whylen, -EPROTONOSUPPORT,
			       "format version 1 is not supported (this ckpt reads version %d): it was "
			       "written by ckpt 0.1.0, before checkpoints had ids; take a new full "
			       "checkpoint", CKPT_IMAGE_FORMAT_VERSION);
	if (x != CKPT_IMAGE_FORMAT_VERSION)
		return why_set(why, whylen, -EPROTONOSUPPORT,
			       "format version %" PRId64 " is not supported (this ckpt reads version %d)",
			       x, CKPT_IMAGE_FORMAT_VERSION);
	inv->format_version = (int)x;
	r = member_str(root, "ckpt_version", "ckpt_version", false, &s, why, whylen);
	if (r < 0)
		return r;
	r = dup_str(s, &inv->ckpt_version);
	if (r < 0)
		return r;
	r = member_int(root, "created_unix_ns", "created_unix_ns", 0, INT64_MAX, &inv->created_ns,
		       why, whylen);
	if (r < 0)
		return r;
	r = member_str(root, "created_utc", "created_utc", false, &s, why, whylen);
	if (r < 0)
		return r;
	if (!*s || strlen(s) >= sizeof(inv->created_utc))
		return why_set(why, whylen, -EBADMSG, "field 'created_utc' is not a time");
	strcpy(inv->created_utc, s);
	r = parse_parent(root, inv, why, whylen);
	if (r < 0)
		return r;
	r = parse_identity(root, &inv->identity, why, whylen);
	if (r < 0)
		return r;
	return parse_files(root, inv, why, whylen);
}

int ckpt_image_parse_inventory(const char *text, size_t len, char *why, size_t whylen,
			       struct ckpt_image_inventory *ret)
{
	struct ckpt_image_inventory inv = { 0 };
	struct json_object *root;
	int r;

	r = json_parse_buf(text, len, why, whylen, &root);
	if (r < 0)
		return r;
	r = parse_root(root, &inv, why, whylen);
	json_object_put(root);
	if (r < 0) {
		ckpt_image_inventory_done(&inv);
		return r;
	}
	*ret = inv;
	return 0;
}

/* ---- writing ---- */

static int add(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *new_sum(uint64_t h)
{
	char buf[XXH64_STR_LEN + 1];

	xxh64_format(h, buf);
	return json_object_new_string(buf);
}

static struct json_object *new_id(const struct ckpt_image_id *id)
{
	char buf[CKPT_IMAGE_ID_STR_LEN + 1];

	return json_object_new_string(ckpt_image_id_format(id, buf));
}

static int build(const struct ckpt_image_inventory *inv, struct json_object *root)
{
	const struct ckpt_image_identity *id = &inv->identity;
	struct json_object *proc, *files;
	int r = 0;

	r |= add(root, "format", json_object_new_string(CKPT_IMAGE_FORMAT));
	r |= add(root, "format_version", json_object_new_int(inv->format_version));
	r |= add(root, "ckpt_version", json_object_new_string(inv->ckpt_version));
	r |= add(root, "created_unix_ns", json_object_new_int64(inv->created_ns));
	r |= add(root, "created_utc", json_object_new_string(inv->created_utc));
	r |= add(root, "id", new_id(&inv->id));
	r |= add(root, "kind",
		 json_object_new_string(inv->kind == CKPT_IMAGE_FULL ? "full" : "delta"));
	if (inv->parent) {
		r |= add(root, "parent", json_object_new_string(inv->parent));
		r |= add(root, "parent_id", new_id(&inv->parent_id));
	} else {
		r |= json_object_object_add(root, "parent", NULL);
		r |= json_object_object_add(root, "parent_id", NULL);
	}
	if (r)
		return -ENOMEM;
	proc = json_object_new_object();
	if (!proc || add(root, "process", proc) < 0)
		return -ENOMEM;
	r |= add(proc, "pid", json_object_new_int(id->pid));
	r |= add(proc, "start_time", json_object_new_int64((int64_t)id->start_time));
	r |= add(proc, "boot_id", json_object_new_string(id->boot_id));
	r |= add(proc, "exe", json_object_new_string(id->exe));
	files = json_object_new_object();
	if (r || !files || add(root, "files", files) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < inv->nr_files; i++)
		if (add(files, inv->files[i].name, new_sum(inv->files[i].xxh64)) < 0)
			return -ENOMEM;
	return 0;
}

int inventory_serialize(const struct ckpt_image_inventory *inv, char **ret, size_t *ret_len)
{
	struct json_object *root = json_object_new_object();
	int r;

	if (!root)
		return -ENOMEM;
	r = build(inv, root);
	if (r == 0)
		r = json_to_buf(root, ret, ret_len);
	json_object_put(root);
	return r;
}

int inventory_read_at(int atfd, const char *rel, const char *path,
		      struct ckpt_image_inventory *ret, uint64_t *ret_xxh64, char *why,
		      size_t whylen)
{
	_cleanup_free_ char *name = NULL;
	_cleanup_free_ void *buf = NULL;
	struct ckpt_image_inventory inv;
	size_t len;
	int r;

	if (asprintf(&name, "%s/%s", rel, INVENTORY_NAME) < 0)
		return -ENOMEM;
	r = read_file_max(atfd, name, INVENTORY_MAX, &buf, &len);
	if (r == -ENOENT || r == -ENOTDIR)
		return why_set(why, whylen, -ENOENT, "'%s' is not a checkpoint: it has no %s", path,
			       INVENTORY_NAME);
	if (r == -EFBIG)
		return why_set(why, whylen, -EBADMSG, "cannot read '%s/%s': larger than %u bytes",
			       path, INVENTORY_NAME, INVENTORY_MAX);
	if (r < 0)
		return why_set(why, whylen, r, "cannot read '%s/%s': %s", path, INVENTORY_NAME,
			       strerror(-r));
	r = ckpt_image_parse_inventory(buf, len, why, whylen, &inv);
	if (r < 0) {
		why_prefix(why, whylen, "bad '%s/%s': ", path, INVENTORY_NAME);
		return r;
	}
	*ret = inv;
	*ret_xxh64 = xxh64(buf, len, 0);
	return 0;
}
