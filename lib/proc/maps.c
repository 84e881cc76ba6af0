/* SPDX-License-Identifier: MIT */
/*
 * /proc/PID/maps and /proc/PID/smaps. A maps line is
 *   START-END PERM OFFSET MAJ:MIN INODE [padding] NAME
 * where the kernel pads the header to 72 columns and then writes one space
 * before NAME. A name may itself start with spaces, so the name column is
 * computed, not found by skipping blanks. '\n' in a path is shown as "\012".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "proc/proc-internal.h"
#include "util/err.h"
#include "util/util.h"

#define MAPS_HEADER_WIDTH 72
#define DELETED_SUFFIX " (deleted)"

static const struct {
	const char *name;
	enum ckpt_vma_kind kind;
} special_names[] = {
	{ "[heap]", CKPT_VMA_HEAP },
	{ "[stack]", CKPT_VMA_STACK },
	{ "[vdso]", CKPT_VMA_VDSO },
	{ "[vvar]", CKPT_VMA_VVAR },
	{ "[vvar_vclock]", CKPT_VMA_VVAR_VCLOCK },
	{ "[vsyscall]", CKPT_VMA_VSYSCALL },
};

static const struct {
	char code[3];
	uint32_t bit;
} vmflag_codes[] = {
	{ "io", CKPT_VMF_IO },         { "pf", CKPT_VMF_PFNMAP },
	{ "dd", CKPT_VMF_DONTDUMP },   { "dc", CKPT_VMF_DONTCOPY },
	{ "de", CKPT_VMF_DONTEXPAND }, { "hg", CKPT_VMF_HUGEPAGE },
	{ "nh", CKPT_VMF_NOHUGEPAGE }, { "ht", CKPT_VMF_HUGETLB },
	{ "lo", CKPT_VMF_LOCKED },     { "gd", CKPT_VMF_GROWSDOWN },
	{ "um", CKPT_VMF_UFFD_MISSING }, { "uw", CKPT_VMF_UFFD_WP },
	{ "ui", CKPT_VMF_UFFD_MINOR }, { "wf", CKPT_VMF_WIPEONFORK },
	{ "mg", CKPT_VMF_MERGEABLE },  { "ss", CKPT_VMF_SHADOW_STACK },
	{ "sl", CKPT_VMF_SEALED },     { "ms", CKPT_VMF_MAYSHARE },
	{ "sd", CKPT_VMF_SOFTDIRTY },  { "mm", CKPT_VMF_MIXEDMAP },
	{ "sr", CKPT_VMF_SEQ_READ },   { "rr", CKPT_VMF_RAND_READ },
	{ "mw", CKPT_VMF_MAYWRITE },   { "lf", CKPT_VMF_LOCKONFAULT },
	{ "gu", CKPT_VMF_GUARD },
};

const char *ckpt_vma_kind_name(enum ckpt_vma_kind kind)
{
	static const char *const names[] = {
		[CKPT_VMA_ANON] = "anon",       [CKPT_VMA_FILE] = "file",
		[CKPT_VMA_HEAP] = "heap",       [CKPT_VMA_STACK] = "stack",
		[CKPT_VMA_VDSO] = "vdso",       [CKPT_VMA_VVAR] = "vvar",
		[CKPT_VMA_VVAR_VCLOCK] = "vvar_vclock",
		[CKPT_VMA_VSYSCALL] = "vsyscall",
		[CKPT_VMA_ANON_NAMED] = "anon_named",
		[CKPT_VMA_SPECIAL] = "special",
	};

	if ((unsigned int)kind >= ARRAY_SIZE(names) || !names[kind])
		return "unknown";
	return names[kind];
}

bool ckpt_vma_is_shmem_anon(const struct ckpt_vma *v)
{
	return v->kind == CKPT_VMA_FILE && v->shared && v->deleted && v->name &&
	       strcmp(v->name, "/dev/zero") == 0;
}

void ckpt_vma_list_free(struct ckpt_vma_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nr; i++)
		free(l->v[i].name);
	free(l->v);
	free(l);
}

const struct ckpt_vma *ckpt_vma_list_find(const struct ckpt_vma_list *l, uint64_t addr)
{
	size_t lo = 0, hi = l->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->v[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->nr && l->v[lo].start <= addr ? &l->v[lo] : NULL;
}

static int parse_hex(const char **s, const char *end, uint64_t *ret)
{
	const char *p = *s;
	uint64_t v = 0;
	int digits = 0;

	for (; p < end; p++, digits++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		if (digits >= 16)
			return -EBADMSG;
		v = v << 4 | (uint64_t)d;
	}
	if (!digits)
		return -EBADMSG;
	*s = p;
	*ret = v;
	return 0;
}

static int parse_dec(const char **s, const char *end, uint64_t *ret)
{
	const char *p = *s;
	uint64_t v = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -EBADMSG;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		uint64_t d = (uint64_t)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
	}
	*s = p;
	*ret = v;
	return 0;
}

static int expect(const char **s, const char *end, char c)
{
	if (*s >= end || **s != c)
		return -EBADMSG;
	(*s)++;
	return 0;
}

/* Copy a name, turning the kernel's "\012" escapes back into newlines. */
static char *unescape_name(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && len - i >= 4 && s[i + 1] == '0' &&
		    s[i + 2] == '1' && s[i + 3] == '2') {
			*o++ = '\n';
			i += 3;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

static int classify_name(struct ckpt_vma *v, const char *name, size_t len)
{
	size_t sl = strlen(DELETED_SUFFIX);

	if (len == 0) {
		v->kind = CKPT_VMA_ANON;
		return 0;
	}
	if (name[0] == '[' && name[len - 1] == ']') {
		for (size_t i = 0; i < ARRAY_SIZE(special_names); i++) {
			if (strlen(special_names[i].name) == len &&
			    memcmp(special_names[i].name, name, len) == 0) {
				v->kind = special_names[i].kind;
				return 0;
			}
		}
		if (len > 7 && memcmp(name, "[anon:", 6) == 0) {
			v->kind = CKPT_VMA_ANON_NAMED;
			v->name = strndup(name + 6, len - 7);
		} else if (len > 13 && memcmp(name, "[anon_shmem:", 12) == 0) {
			v->kind = CKPT_VMA_ANON_NAMED;
			v->name = strndup(name + 12, len - 13);
		} else {
			v->kind = CKPT_VMA_SPECIAL;
			v->name = strndup(name + 1, len - 2);
		}
		return v->name ? 0 : -ENOMEM;
	}
	v->kind = CKPT_VMA_FILE;
	if (len > sl && memcmp(name + len - sl, DELETED_SUFFIX, sl) == 0) {
		v->deleted = true;
		len -= sl;
	}
	v->name = unescape_name(name, len);
	return v->name ? 0 : -ENOMEM;
}

/* Parse one maps header line [line, eol). */
static int parse_line(const char *line, const char *eol, struct ckpt_vma *v)
{
	const char *s = line;
	uint64_t major, minor;
	size_t col;
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = parse_hex(&s, eol, &v->start)) < 0 || (r = expect(&s, eol, '-')) < 0 ||
	    (r = parse_hex(&s, eol, &v->end)) < 0 || (r = expect(&s, eol, ' ')) < 0)
		return r;
	if (v->end <= v->start || eol - s < 5)
		return -EBADMSG;
	if ((s[0] != 'r' && s[0] != '-') || (s[1] != 'w' && s[1] != '-') ||
	    (s[2] != 'x' && s[2] != '-') || (s[3] != 's' && s[3] != 'p'))
		return -EBADMSG;
	v->prot = (s[0] == 'r' ? PROT_READ : 0) | (s[1] == 'w' ? PROT_WRITE : 0) |
		  (s[2] == 'x' ? PROT_EXEC : 0);
	v->shared = s[3] == 's';
	s += 4;
	if ((r = expect(&s, eol, ' ')) < 0 || (r = parse_hex(&s, eol, &v->offset)) < 0 ||
	    (r = expect(&s, eol, ' ')) < 0 || (r = parse_hex(&s, eol, &major)) < 0 ||
	    (r = expect(&s, eol, ':')) < 0 || (r = parse_hex(&s, eol, &minor)) < 0 ||
	    (r = expect(&s, eol, ' ')) < 0 || (r = parse_dec(&s, eol, &v->inode)) < 0)
		return r;
	if (major > 0xfff || minor > 0xfffff)
		return -EBADMSG;
	v->dev_major = (unsigned int)major;
	v->dev_minor = (unsigned int)minor;
	if (s == eol)
		return classify_name(v, s, 0);
	if ((r = expect(&s, eol, ' ')) < 0)
		return r;
	/* The name starts one column after max(header width, header end). */
	col = (size_t)(s - line);
	if (col < MAPS_HEADER_WIDTH) {
		while (col < MAPS_HEADER_WIDTH) {
			if (s == eol)
				return classify_name(v, s, 0);
			if (*s != ' ')
				return -EBADMSG;
			s++;
			col++;
		}
	}
	if (s == eol)
		return classify_name(v, s, 0);
	if (*s != ' ')
		return -EBADMSG;
	s++;
	return classify_name(v, s, (size_t)(eol - s));
}

static uint32_t parse_vmflags(const char *s, const char *eol)
{
	uint32_t bits = 0;

	while (s + 2 <= eol) {
		while (s < eol && *s == ' ')
			s++;
		if (s + 2 > eol)
			break;
		for (size_t i = 0; i < ARRAY_SIZE(vmflag_codes); i++)
			if (s[0] == vmflag_codes[i].code[0] && s[1] == vmflag_codes[i].code[1])
				bits |= vmflag_codes[i].bit;
		s += 2;
	}
	return bits;
}

/* An smaps attribute line: "Key:" followed by blanks and a value. */
static bool is_attr_line(const char *s, const char *eol)
{
	const char *c = memchr(s, ':', (size_t)(eol - s));

	if (!c || c == s)
		return false;
	for (const char *p = s; p < c; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

int ckpt_proc_parse_maps(const char *text, size_t len, struct ckpt_vma_list **ret)
{
	_cleanup_(ckpt_vma_list_freep) struct ckpt_vma_list *l = NULL;
	const char *s = text, *end = text + len;
	size_t cap = 0;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	while (s < end) {
		const char *eol = memchr(s, '\n', (size_t)(end - s));
		struct ckpt_vma *cur = l->nr ? &l->v[l->nr - 1] : NULL;
		int r;

		if (!eol)
			eol = end;
		if (cur && is_attr_line(s, eol)) {
			/* smaps: attributes belong to the last header line. */
			if (eol - s > 9 && memcmp(s, "VmFlags:", 8) == 0) {
				cur->vmflags = parse_vmflags(s + 8, eol);
				cur->has_vmflags = true;
			} else if (eol - s > 4 && memcmp(s, "Rss:", 4) == 0) {
				const char *p = s + 4;

				while (p < eol && *p == ' ')
					p++;
				if (parse_dec(&p, eol, &cur->rss_kb) < 0)
					return -EBADMSG;
			}
		} else {
			uint64_t prev_end = cur ? cur->end : 0;

			/* GROW may move the array: @cur is stale after it. */
			if (GROW(l->v, cap, l->nr + 1) < 0)
				return -ENOMEM;
			r = parse_line(s, eol, &l->v[l->nr]);
			if (r < 0) {
				free(l->v[l->nr].name);
				return r;
			}
			if (l->nr && l->v[l->nr].start < prev_end) {
				free(l->v[l->nr].name);
				return -EBADMSG; /* overlapping or unsorted */
			}
			l->nr++;
		}
		s = eol + 1;
	}
	*ret = TAKE_PTR(l);
	return 0;
}

int ckpt_proc_read_maps(const struct ckpt_proc *p, unsigned int flags,
			struct ckpt_vma_list **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	r = read_file_at(p->dirfd, (flags & CKPT_MAPS_VMFLAGS) ? "smaps" : "maps", &buf, &len);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	return ckpt_proc_parse_maps(buf, len, ret);
}
