/* SPDX-License-Identifier: MIT */
#include "memsnap.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool unreadable(const char *name)
{
	return !strcmp(name, "[vvar]") || !strcmp(name, "[vvar_vclock]") || !strcmp(name, "[vsyscall]");
}

static int read_map(int mem, struct memsnap_map *m)
{
	size_t len = m->end - m->start, done = 0;

	m->data = malloc(len ? len : 1);
	if (!m->data)
		return -ENOMEM;
	while (done < len) {
		ssize_t n = pread(mem, m->data + done, len - done, (off_t)(m->start + done));

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/*
 * Adjacent mappings alike are one: whether the kernel merged two VMAs
 * (anon_vma, uffd context) is not what is compared here.
 */
static bool merge(struct memsnap_map *prev, struct memsnap_map *m)
{
	unsigned char *d;
	size_t a = prev->end - prev->start, b = m->end - m->start;

	if (prev->end != m->start || strcmp(prev->perms, m->perms) || strcmp(prev->name, m->name) ||
	    !prev->data || !m->data)
		return false;
	d = realloc(prev->data, a + b);
	if (!d)
		return false;
	memcpy(d + a, m->data, b);
	free(m->data);
	prev->data = d;
	prev->end = m->end;
	return true;
}

int memsnap_take(pid_t pid, struct memsnap *s)
{
	char path[64], line[512];
	FILE *f;
	int mem, r = 0;
	size_t cap = 0;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	if (!(f = fopen(path, "re")))
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	mem = open(path, O_RDONLY | O_CLOEXEC);
	if (mem < 0) {
		r = -errno;
		fclose(f);
		return r;
	}
	while (r == 0 && fgets(line, sizeof(line), f)) {
		struct memsnap_map m = { 0 };
		unsigned long long a, b;
		int off = 0;

		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %n", &a, &b, m.perms, &off) < 3)
			continue;
		m.start = a;
		m.end = b;
		snprintf(m.name, sizeof(m.name), "%s", off ? line + off : "");
		m.name[strcspn(m.name, "\n")] = 0;
		if (!unreadable(m.name))
			r = read_map(mem, &m);
		if (r == 0 && s->nr && merge(&s->v[s->nr - 1], &m)) {
			s->bytes += m.end - m.start;
			continue;
		}
		if (s->nr == cap) {
			struct memsnap_map *v = realloc(s->v, (cap = cap ? 2 * cap : 64) * sizeof(*v));

			if (!v) {
				free(m.data);
				r = -ENOMEM;
				break;
			}
			s->v = v;
		}
		s->v[s->nr++] = m;
		s->bytes += m.end - m.start;
	}
	fclose(f);
	close(mem);
	if (r < 0)
		memsnap_free(s);
	return r;
}

void memsnap_free(struct memsnap *s)
{
	for (size_t i = 0; i < s->nr; i++)
		free(s->v[i].data);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

void memsnap_blank(struct memsnap *s, uint64_t addr, uint64_t len)
{
	for (size_t i = 0; i < s->nr; i++) {
		struct memsnap_map *m = &s->v[i];
		uint64_t a = addr > m->start ? addr : m->start;
		uint64_t b = addr + len < m->end ? addr + len : m->end;

		if (m->data && a < b)
			memset(m->data + (a - m->start), 0, b - a);
	}
}

static void say(char *report, size_t len, int *lines, const char *fmt, ...)
{
	size_t used = strlen(report);
	va_list ap;

	if (++*lines > 12 || used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(report + used, len - used, fmt, ap);
	va_end(ap);
}

static const struct memsnap_map *find(const struct memsnap *s, const struct memsnap_map *m)
{
	for (size_t i = 0; i < s->nr; i++)
		if (s->v[i].start == m->start)
			return &s->v[i];
	return NULL;
}

uint64_t memsnap_diff(const struct memsnap *a, const struct memsnap *b, char *report, size_t len)
{
	uint64_t bad = 0;
	int lines = 0;

	report[0] = 0;
	for (size_t i = 0; i < a->nr; i++) {
		const struct memsnap_map *x = &a->v[i], *y = find(b, x);
		uint64_t n = 0, first = 0;

		if (!y || y->end != x->end || strcmp(y->perms, x->perms)) {
			say(report, len, &lines, "%" PRIx64 "-%" PRIx64 " %s %s: %s\n", x->start, x->end, x->perms,
			    x->name, y ? "other bounds or permissions after restore" : "missing after restore");
			bad += x->end - x->start;
			continue;
		}
		if (!x->data || !y->data)
			continue;
		for (uint64_t k = 0; k < x->end - x->start; k++)
			if (x->data[k] != y->data[k] && n++ == 0)
				first = k;
		if (n)
			say(report, len, &lines,
			    "%" PRIx64 "-%" PRIx64 " %s %s: %" PRIu64 " bytes differ, first at +%#" PRIx64 "\n",
			    x->start, x->end, x->perms, x->name, n, first);
		bad += n;
	}
	for (size_t i = 0; i < b->nr; i++)
		if (!find(a, &b->v[i])) {
			say(report, len, &lines, "%" PRIx64 "-%" PRIx64 " %s %s: only after restore\n",
			    b->v[i].start, b->v[i].end, b->v[i].perms, b->v[i].name);
			bad += b->v[i].end - b->v[i].start;
		}
	return bad;
}
