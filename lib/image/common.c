/* SPDX-License-Identifier: MIT */
/* Helpers of lib/image: messages, checksum strings, names, paths, JSON, ids. */
#define LOG_AREA "image"
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

int why_set(char *why, size_t whylen, int r, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return r;
}

void why_prefix(char *why, size_t whylen, const char *fmt, ...)
{
	char prefix[WHY_LEN];
	_cleanup_free_ char *old = NULL;
	va_list ap;

	if (!why || !whylen)
		return;
	old = strdup(why);
	if (!old)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(why, whylen, "%s%s", prefix, old);
}

void xxh64_format(uint64_t h, char buf[XXH64_STR_LEN + 1])
{
	snprintf(buf, XXH64_STR_LEN + 1, "xxh64:%016" PRIx64, h);
}

int xxh64_parse(const char *s, uint64_t *ret)
{
	uint64_t h = 0;

	if (strncmp(s, "xxh64:", 6) != 0 || strlen(s) != XXH64_STR_LEN)
		return -EBADMSG;
	for (const char *p = s + 6; *p; p++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return -EBADMSG;
		h = h << 4 | (uint64_t)d;
	}
	*ret = h;
	return 0;
}

bool file_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > 255 || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool file_name_reserved(const char *name)
{
	return !strcmp(name, INVENTORY_NAME) || !strcmp(name, INDEX_NAME) ||
	       !strcmp(name, PAGES_NAME);
}

bool ckpt_image_is_temp_name(const char *name)
{
	return name && fnmatch(".*.tmp-*", name, 0) == 0;
}

int path_split(const char *path, char **ret_dir, char **ret_base)
{
	_cleanup_free_ char *copy = NULL, *dir = NULL, *base = NULL;
	size_t len;
	char *slash;

	if (!path || !*path)
		return -EINVAL;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	slash = strrchr(copy, '/');
	if (!slash) {
		dir = strdup(".");
		base = strdup(copy);
	} else {
		base = strdup(slash + 1);
		if (slash == copy)
			dir = strdup("/");
		else {
			*slash = '\0';
			dir = strdup(copy);
		}
	}
	if (!dir || !base)
		return -ENOMEM;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EINVAL;
	*ret_dir = TAKE_PTR(dir);
	*ret_base = TAKE_PTR(base);
	return 0;
}

char *path_join(const char *dir, const char *rel)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ const char **parts = NULL;
	size_t nparts = 0, cap, len;
	bool absolute;
	char *out, *save = NULL, *tok;

	if (asprintf(&buf, "%s/%s", dir, rel) < 0)
		return NULL;
	absolute = buf[0] == '/';
	cap = strlen(buf) / 2 + 2;
	parts = calloc(cap, sizeof(*parts));
	if (!parts)
		return NULL;
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..") && nparts && strcmp(parts[nparts - 1], "..")) {
			nparts--;
			continue;
		}
		if (!strcmp(tok, "..") && !nparts && absolute)
			continue;
		parts[nparts++] = tok;
	}
	len = 2;
	for (size_t i = 0; i < nparts; i++)
		len += strlen(parts[i]) + 1;
	out = malloc(len);
	if (!out)
		return NULL;
	out[0] = '\0';
	if (absolute)
		strcat(out, "/");
	for (size_t i = 0; i < nparts; i++) {
		if (i)
			strcat(out, "/");
		strcat(out, parts[i]);
	}
	if (!*out)
		strcpy(out, ".");
	return out;
}

const char *path_base(const char *path, char *buf, size_t len)
{
	size_t n = strlen(path);
	const char *start;

	while (n > 1 && path[n - 1] == '/')
		n--;
	start = path + n;
	while (start > path && start[-1] != '/')
		start--;
	snprintf(buf, len, "%.*s", (int)(path + n - start), start);
	return buf;
}

int read_file_max(int dirfd, const char *name, size_t max, void **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len;
	ssize_t n;
	int r;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK); /* a FIFO must not hang us */
	if (fd < 0)
		return neg_errno();
	if (fstat(fd, &st) < 0)
		return neg_errno();
	if (!S_ISREG(st.st_mode))
		return -EBADMSG;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	len = (size_t)st.st_size;
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	r = read_all(fd, buf, len);
	if (r == -EIO)
		return -EBADMSG; /* shrank under us */
	if (r < 0)
		return r;
	/* Grew under us: the checksum will say whether what we have is right. */
	n = read(fd, &(char){ 0 }, 1);
	if (n > 0)
		return -EBADMSG;
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static bool only_space(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return false;
	return true;
}

int json_parse_buf(const char *buf, size_t len, char *why, size_t whylen,
		   struct json_object **ret)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;
	int flags = JSON_TOKENER_STRICT;

	if (len > INT32_MAX - 1)
		return why_set(why, whylen, -EBADMSG, "too large for a JSON document");
#ifdef JSON_TOKENER_VALIDATE_UTF8
	flags |= JSON_TOKENER_VALIDATE_UTF8;
#endif
	tok = json_tokener_new_ex(64);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, flags);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!obj && jerr == json_tokener_continue) {
		/* A bare number may still continue: end the input explicitly. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		if (!obj && jerr == json_tokener_continue) {
			json_tokener_free(tok);
			return why_set(why, whylen, -EBADMSG, "not valid JSON: unexpected end");
		}
		end = len;
	} else {
		end = json_tokener_get_parse_end(tok);
	}
	if (!obj) {
		why_set(why, whylen, -EBADMSG, "not valid JSON: %s at byte %zu",
			json_tokener_error_desc(jerr), json_tokener_get_parse_end(tok));
		json_tokener_free(tok);
		return -EBADMSG;
	}
	json_tokener_free(tok);
	if (end > len || !only_space(buf + end, len - end)) {
		json_object_put(obj);
		return why_set(why, whylen, -EBADMSG, "not valid JSON: garbage after the value at byte %zu",
			       end);
	}
	*ret = obj;
	return 0;
}

int json_to_buf(struct json_object *obj, char **ret, size_t *ret_len)
{
	const char *s;
	size_t len;
	char *buf;

	s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						   JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!s)
		return -ENOMEM;
	buf = malloc(len + 2);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, s, len);
	buf[len++] = '\n';
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* ---- checkpoint ids ---- */

const char *ckpt_image_id_format(const struct ckpt_image_id *id,
				 char buf[CKPT_IMAGE_ID_STR_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < CKPT_IMAGE_ID_LEN; i++) {
		buf[2 * i] = hex[id->b[i] >> 4];
		buf[2 * i + 1] = hex[id->b[i] & 15];
	}
	buf[CKPT_IMAGE_ID_STR_LEN] = '\0';
	return buf;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int ckpt_image_id_parse(const char *s, struct ckpt_image_id *ret)
{
	struct ckpt_image_id id;

	if (!s || strlen(s) != CKPT_IMAGE_ID_STR_LEN)
		return -EBADMSG;
	for (int i = 0; i < CKPT_IMAGE_ID_LEN; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EBADMSG;
		id.b[i] = (uint8_t)(hi << 4 | lo);
	}
	*ret = id;
	return 0;
}

bool ckpt_image_id_equal(const struct ckpt_image_id *a, const struct ckpt_image_id *b)
{
	return memcmp(a->b, b->b, CKPT_IMAGE_ID_LEN) == 0;
}

bool id_is_zero(const struct ckpt_image_id *id)
{
	static const struct ckpt_image_id zero;

	return ckpt_image_id_equal(id, &zero);
}

int id_random(struct ckpt_image_id *ret)
{
	struct ckpt_image_id id;

	do {
		ssize_t n = getrandom(id.b, sizeof(id.b), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(id.b))
			return n < 0 ? neg_errno() : -EIO;
	} while (id_is_zero(&id));
	*ret = id;
	return 0;
}

/* ---- test hook ---- */

void ckpt_image_crash_point(const char *point)
{
	const char *want = getenv("CKPT_TEST_CRASH");

	if (!want || strcmp(want, point))
		return;
	pr_warn("CKPT_TEST_CRASH: killed at '%s'", point);
	raise(SIGKILL);
}

/* ---- temporary names ---- */

int temp_name(const char *name, char *buf, size_t len)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[6];
	char suffix[7];

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return errno ? neg_errno() : -EIO;
	for (int i = 0; i < 6; i++)
		suffix[i] = chars[rnd[i] % (sizeof(chars) - 1)];
	suffix[6] = '\0';
	if ((size_t)snprintf(buf, len, ".%s.tmp-%s", name, suffix) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int rename_to_temp(int dirfd, const char *name, char *ret_tmp, size_t len)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		int r = temp_name(name, ret_tmp, len);

		if (r < 0)
			return r;
		r = RET_NERRNO(renameat2(dirfd, name, dirfd, ret_tmp, RENAME_NOREPLACE));
		if (r == -EINVAL || r == -ENOSYS) {
			struct stat st;

			if (fstatat(dirfd, ret_tmp, &st, AT_SYMLINK_NOFOLLOW) == 0)
				continue;
			r = RET_NERRNO(renameat(dirfd, name, dirfd, ret_tmp));
		}
		if (r != -EEXIST)
			return r;
	}
	return -EEXIST;
}
