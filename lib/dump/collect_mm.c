/* SPDX-License-Identifier: MIT */
/*
 * The memory layout: the mm fields, auxv and every mapping from smaps, with
 * the identity of what file-backed and shared ones map. lib/inject's
 * scratch memory is cut out; it may have merged with a neighbouring
 * anonymous mapping, so it is cut at page granularity, not by dropping
 * whole mappings.
 */
#define LOG_AREA "dump"
#include <errno.h>
#include <linux/membarrier.h>
#include <linux/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/pagemap.h"
#include "compat/syscalls.h"
#include "dump/collect-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

static const struct {
	uint32_t proc, state;
} vmflag_map[] = {
	{ CKPT_VMF_DONTDUMP, CKPT_STATE_VMF_DONTDUMP },
	{ CKPT_VMF_DONTCOPY, CKPT_STATE_VMF_DONTCOPY },
	{ CKPT_VMF_DONTEXPAND, CKPT_STATE_VMF_DONTEXPAND },
	{ CKPT_VMF_WIPEONFORK, CKPT_STATE_VMF_WIPEONFORK },
	{ CKPT_VMF_HUGEPAGE, CKPT_STATE_VMF_HUGEPAGE },
	{ CKPT_VMF_NOHUGEPAGE, CKPT_STATE_VMF_NOHUGEPAGE },
	{ CKPT_VMF_HUGETLB, CKPT_STATE_VMF_HUGETLB },
	{ CKPT_VMF_LOCKED, CKPT_STATE_VMF_LOCKED },
	{ CKPT_VMF_MERGEABLE, CKPT_STATE_VMF_MERGEABLE },
	{ CKPT_VMF_GROWSDOWN, CKPT_STATE_VMF_GROWSDOWN },
	{ CKPT_VMF_UFFD_MISSING, CKPT_STATE_VMF_UFFD_MISSING },
	{ CKPT_VMF_UFFD_WP, CKPT_STATE_VMF_UFFD_WP },
	{ CKPT_VMF_UFFD_MINOR, CKPT_STATE_VMF_UFFD_MINOR },
	{ CKPT_VMF_IO, CKPT_STATE_VMF_IO },
	{ CKPT_VMF_PFNMAP, CKPT_STATE_VMF_PFNMAP },
	{ CKPT_VMF_MIXEDMAP, CKPT_STATE_VMF_MIXEDMAP },
	{ CKPT_VMF_SEALED, CKPT_STATE_VMF_SEALED },
	{ CKPT_VMF_SHADOW_STACK, CKPT_STATE_VMF_SHADOW_STACK },
	{ CKPT_VMF_SEQ_READ, CKPT_STATE_VMF_SEQ_READ },
	{ CKPT_VMF_RAND_READ, CKPT_STATE_VMF_RAND_READ },
	{ CKPT_VMF_MAYWRITE, CKPT_STATE_VMF_MAYWRITE },
	{ CKPT_VMF_LOCKONFAULT, CKPT_STATE_VMF_LOCKONFAULT },
	{ CKPT_VMF_GUARD, CKPT_STATE_VMF_GUARD },
};

struct mm_builder {
	struct collect *c;
	size_t cap;
	const struct ckpt_vma *last_src; /* what the last recorded piece was cut from */
};

static int mm_fields(struct collect *c, struct ckpt_state_mm *mm)
{
	struct ckpt_proc_stat st;
	int64_t brk;
	int r = ckpt_proc_read_stat(c->task, &st);

	if (r < 0) {
		pr_err("cannot read the mm fields of pid %d: %s", c->pid, errstr(r));
		return r;
	}
	mm->start_code = st.start_code;
	mm->end_code = st.end_code;
	mm->start_data = st.start_data;
	mm->end_data = st.end_data;
	mm->start_brk = st.start_brk;
	mm->start_stack = st.start_stack;
	mm->arg_start = st.arg_start;
	mm->arg_end = st.arg_end;
	mm->env_start = st.env_start;
	mm->env_end = st.env_end;
	/* brk(0) is a query: anything below the start of the heap changes nothing */
	r = collect_query(c, 0, SYS_brk, COLLECT_ARGS(0), &brk, "read the program break");
	if (r < 0)
		return r;
	mm->brk = (uint64_t)brk;
	return 0;
}

static int mm_auxv(struct collect *c, struct ckpt_state_mm *mm)
{
	_cleanup_free_ uint64_t *w = NULL;
	size_t n;
	int r = ckpt_proc_read_auxv(c->task, &w, &n);

	if (r < 0) {
		pr_err("cannot read the auxiliary vector of pid %d: %s", c->pid, errstr(r));
		return r;
	}
	mm->nr_auxv = n / 2;
	mm->auxv = (uint64_t(*)[2])TAKE_PTR(w);
	return 0;
}

static bool has_prefix(const char *s, const char *p)
{
	return s && !strncmp(s, p, strlen(p));
}

/* "/SYSV" and 8 hex digits: a System V shared memory segment (shmat). */
static bool is_sysv_name(const char *s)
{
	if (!has_prefix(s, "/SYSV") || strlen(s) != 13)
		return false;
	for (int i = 5; i < 13; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

static enum ckpt_state_vma_kind vma_kind(const struct ckpt_vma *v)
{
	switch (v->kind) {
	case CKPT_VMA_ANON:
		return CKPT_STATE_VMA_ANON;
	case CKPT_VMA_ANON_NAMED:
		return v->shared ? CKPT_STATE_VMA_SHMEM_ANON : CKPT_STATE_VMA_ANON;
	case CKPT_VMA_HEAP:
		return CKPT_STATE_VMA_HEAP;
	case CKPT_VMA_STACK:
		return CKPT_STATE_VMA_STACK;
	case CKPT_VMA_VDSO:
		return CKPT_STATE_VMA_VDSO;
	case CKPT_VMA_VVAR:
		return CKPT_STATE_VMA_VVAR;
	case CKPT_VMA_VVAR_VCLOCK:
		return CKPT_STATE_VMA_VVAR_VCLOCK;
	case CKPT_VMA_VSYSCALL:
		return CKPT_STATE_VMA_VSYSCALL;
	case CKPT_VMA_SPECIAL:
		return CKPT_STATE_VMA_SPECIAL;
	case CKPT_VMA_FILE:
		break;
	}
	if (ckpt_vma_is_shmem_anon(v))
		return CKPT_STATE_VMA_SHMEM_ANON;
	if (v->deleted && has_prefix(v->name, "/memfd:"))
		return CKPT_STATE_VMA_MEMFD;
	if (v->deleted && v->shared && is_sysv_name(v->name))
		return CKPT_STATE_VMA_SYSV_SHM;
	return CKPT_STATE_VMA_FILE;
}

uint32_t collect_vma_flags(const struct ckpt_vma *v)
{
	uint32_t f = 0;

	for (size_t i = 0; i < ARRAY_SIZE(vmflag_map); i++)
		if (v->vmflags & vmflag_map[i].proc)
			f |= vmflag_map[i].state;
	/* Every private mapping may be written: it only tells of a shared one. */
	if (!v->shared)
		f &= ~(uint32_t)CKPT_STATE_VMF_MAYWRITE;
	return f;
}

/* What the mapping maps: map_files/START-END with the bounds of the whole mapping. */
static int vma_identity(struct collect *c, const struct ckpt_vma *src, struct ckpt_state_vma *v)
{
	struct stat st;
	int r;

	if (v->kind != CKPT_STATE_VMA_FILE && v->kind != CKPT_STATE_VMA_MEMFD &&
	    v->kind != CKPT_STATE_VMA_SYSV_SHM && v->kind != CKPT_STATE_VMA_SHMEM_ANON)
		return 0;
	r = ckpt_proc_stat_map_file(c->mm_proc, src->start, src->end, &st);
	if (r == -EPERM && !v->shared && v->deleted) {
		/*
		 * Its pages are all saved (page_vma_full_content) and restored as
		 * anonymous memory, as past the end of the file: the identity
		 * maps gives (device, inode), its size unknown, 0.
		 */
		memset(&v->id, 0, sizeof(v->id));
		v->id.dev_major = src->dev_major;
		v->id.dev_minor = src->dev_minor;
		v->id.ino = src->inode;
		v->id.mode = S_IFREG;
		v->has_identity = true;
		pr_info("the deleted file '%s' mapped at %#llx in pid %d cannot be reached without "
			"CAP_CHECKPOINT_RESTORE (/proc/PID/map_files) and no fd holds it: its private mapping "
			"is saved as anonymous memory", src->name ? src->name : "", (unsigned long long)src->start,
			c->pid);
		return 0;
	}
	if (r == -EPERM) {
		pr_err("cannot reach the %s mapped at %#llx-%#llx in pid %d ('%s'): /proc/PID/map_files needs "
		       "CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN), and no fd of the process or path leads to it",
		       v->shared ? "shared object" : "file", (unsigned long long)src->start,
		       (unsigned long long)src->end, c->pid, src->name ? src->name : "");
		return r;
	}
	if (r < 0) {
		pr_err("cannot stat the object mapped at %#llx-%#llx in pid %d ('%s'): %s",
		       (unsigned long long)src->start, (unsigned long long)src->end, c->pid,
		       src->name ? src->name : "", errstr(r));
		return r;
	}
	collect_identity(&st, &v->id);
	v->has_identity = true;
	return 0;
}

static int vma_fill(struct collect *c, const struct ckpt_vma *src, struct ckpt_state_vma *v)
{
	v->prot = src->prot;
	v->shared = src->shared;
	v->kind = vma_kind(src);
	v->deleted = src->deleted;
	v->vmflags = collect_vma_flags(src);
	switch (v->kind) {
	case CKPT_STATE_VMA_FILE:
	case CKPT_STATE_VMA_MEMFD:
	case CKPT_STATE_VMA_SYSV_SHM:
		v->path = strdup(src->name ? src->name : "");
		if (!v->path)
			return -ENOMEM;
		break;
	case CKPT_STATE_VMA_ANON:
	case CKPT_STATE_VMA_SHMEM_ANON:
	case CKPT_STATE_VMA_SPECIAL:
		if (src->kind == CKPT_VMA_ANON_NAMED || src->kind == CKPT_VMA_SPECIAL) {
			v->name = strdup(src->name ? src->name : "");
			if (!v->name)
				return -ENOMEM;
		}
		break;
	default:
		break;
	}
	return vma_identity(c, src, v);
}

/* Record [start, end) of @src, extending the previous piece of the same mapping. */
static int add_piece(struct mm_builder *b, const struct ckpt_vma *src, uint64_t start,
		     uint64_t end)
{
	struct ckpt_state_mm *mm = &b->c->s->mm;
	struct ckpt_state_vma *v;

	if (b->last_src == src && mm->nr_vmas && mm->vmas[mm->nr_vmas - 1].end == start) {
		mm->vmas[mm->nr_vmas - 1].end = end;
		return 0;
	}
	if (GROW(mm->vmas, b->cap, mm->nr_vmas + 1) < 0)
		return -ENOMEM;
	v = &mm->vmas[mm->nr_vmas++];
	memset(v, 0, sizeof(*v));
	v->start = start;
	v->end = end;
	v->offset = src->offset + (start - src->start);
	b->last_src = src;
	return vma_fill(b->c, src, v);
}

/* Bisect [start, end) of @src around the scratch pages: a few calls per boundary. */
static int add_without_scratch(struct mm_builder *b, const struct ckpt_vma *src, uint64_t start,
			       uint64_t end)
{
	uint64_t pages = (end - start) / page_size(), mid;
	int r;

	if (!ckpt_inject_is_scratch(b->c->inj, start, end))
		return add_piece(b, src, start, end);
	if (pages <= 1)
		return 0;
	mid = start + pages / 2 * page_size();
	r = add_without_scratch(b, src, start, mid);
	return r < 0 ? r : add_without_scratch(b, src, mid, end);
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* The same mapping, as maps shows it: range, protection, object, name. */
static bool same_vma(const struct ckpt_vma *a, const struct ckpt_vma *b)
{
	return a->start == b->start && a->end == b->end && a->prot == b->prot &&
	       a->shared == b->shared && a->deleted == b->deleted && a->kind == b->kind &&
	       a->offset == b->offset && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && a->inode == b->inode && same_str(a->name, b->name);
}

static const struct ckpt_vma *find_vma(const struct ckpt_vma_list *l, uint64_t start)
{
	size_t lo = 0, hi = l->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->v[mid].start == start)
			return &l->v[mid];
		if (l->v[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * The mappings with their VmFlags: smaps, or, with a hint read before the
 * freeze, maps and the hint's flags when every mapping is as it was.
 */
static int read_vmas(struct collect *c, struct ckpt_vma_list **ret)
{
	const struct ckpt_vma_list *hint = c->opts.vmflags_hint;
	_cleanup_vma_list_ struct ckpt_vma_list *l = NULL;
	int r;

	if (!hint)
		return ckpt_proc_read_maps(c->task, CKPT_MAPS_VMFLAGS, ret);
	r = ckpt_proc_read_maps(c->task, 0, &l);
	if (r < 0)
		return r;
	for (size_t i = 0; i < l->nr; i++) {
		struct ckpt_vma *v = &l->v[i];
		const struct ckpt_vma *h;

		if (ckpt_inject_scratch_only(c->inj, v->start, v->end))
			continue; /* ours, cut out below */
		h = find_vma(hint, v->start);
		if (!h || !h->has_vmflags || !same_vma(h, v)) {
			pr_debug("mapping %#llx-%#llx of pid %d changed since its flags were read: smaps",
				 (unsigned long long)v->start, (unsigned long long)v->end, c->pid);
			return ckpt_proc_read_maps(c->task, CKPT_MAPS_VMFLAGS, ret);
		}
		v->has_vmflags = true;
		v->vmflags = h->vmflags;
		v->rss_kb = h->rss_kb;
	}
	*ret = TAKE_PTR(l);
	return 0;
}

/* The guard regions of @v (Linux 6.13+; a mapping that has some says "gu", 6.18+). */
static int vma_guards(struct collect *c, int pm, const struct ckpt_vma *v, size_t *cap)
{
	struct ckpt_state_mm *mm = &c->s->mm;
	struct page_region vec[64];
	uint64_t at = v->start;

	while (at < v->end) {
		struct pm_scan_arg a = {
			.size = sizeof(a), .start = at, .end = v->end, .vec = (uintptr_t)vec,
			.vec_len = ARRAY_SIZE(vec), .category_mask = PAGE_IS_GUARD,
			.return_mask = PAGE_IS_GUARD,
		};
		long n = ioctl(pm, PAGEMAP_SCAN, &a);

		if (n < 0) {
			int r = neg_errno();

			pr_err("cannot find the guard regions of %#llx-%#llx of pid %d: %s",
			       (unsigned long long)v->start, (unsigned long long)v->end, c->pid, errstr(r));
			return r;
		}
		for (long k = 0; k < n; k++) {
			uint64_t(*g)[2] = mm->nr_guards ? &mm->guards[mm->nr_guards - 1] : NULL;

			if (g && (*g)[1] == vec[k].start) {
				(*g)[1] = vec[k].end; /* a scan that stopped in the middle of one */
				continue;
			}
			if (GROW(mm->guards, *cap, mm->nr_guards + 1) < 0)
				return -ENOMEM;
			mm->guards[mm->nr_guards][0] = vec[k].start;
			mm->guards[mm->nr_guards++][1] = vec[k].end;
		}
		if (a.walk_end <= at)
			break;
		at = a.walk_end;
	}
	return 0;
}

static int mm_guards(struct collect *c, const struct ckpt_vma_list *l)
{
	_cleanup_close_ int pm = -1;
	size_t cap = 0;
	int r;

	for (size_t i = 0; i < l->nr; i++) {
		if (!(l->v[i].vmflags & CKPT_VMF_GUARD))
			continue;
		if (pm < 0 && (pm = ckpt_proc_open_pagemap(c->mm_proc)) < 0) {
			pr_err("cannot open the pagemap of pid %d: %s", c->pid, errstr(pm));
			return pm;
		}
		if ((r = vma_guards(c, pm, &l->v[i], &cap)) < 0)
			return r;
	}
	return 0;
}

static int mm_vmas(struct collect *c)
{
	_cleanup_vma_list_ struct ckpt_vma_list *l = NULL;
	struct mm_builder b = { .c = c };
	int r = read_vmas(c, &l);

	if (r < 0) {
		pr_err("cannot read the mappings of pid %d: %s", c->pid, errstr(r));
		return r;
	}
	for (size_t i = 0; i < l->nr; i++) {
		const struct ckpt_vma *v = &l->v[i];

		if (v->start % page_size() || v->end % page_size()) {
			pr_err("mapping %#llx-%#llx of pid %d is not page-aligned",
			       (unsigned long long)v->start, (unsigned long long)v->end, c->pid);
			return -EBADMSG;
		}
		r = add_without_scratch(&b, v, v->start, v->end);
		if (r < 0)
			return r;
	}
	return mm_guards(c, l);
}

/*
 * The per-mm settings, in one batch in the leader: three prctls that read
 * them, and the membarrier commands that fail with EPERM unless the mm is
 * registered for them (a registration cannot be read otherwise; the
 * process is frozen, so the barrier itself costs next to nothing).
 */
static int mm_settings(struct collect *c, struct ckpt_state_mm *mm)
{
	static const struct ckpt_inject_call calls[] = {
		{ SYS_prctl, { PR_GET_THP_DISABLE } },
		{ SYS_prctl, { PR_GET_MEMORY_MERGE } },
		{ SYS_prctl, { PR_GET_MDWE } },
		{ SYS_membarrier, { MEMBARRIER_CMD_PRIVATE_EXPEDITED } },
		{ SYS_membarrier, { MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE } },
		{ SYS_membarrier, { MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ } },
	};
	int64_t res[ARRAY_SIZE(calls)];
	int r = ckpt_inject_syscalls(c->inj, 0, calls, ARRAY_SIZE(calls), res);

	if (r < 0) {
		pr_err("cannot read the mm settings (prctl, membarrier) of pid %d: %s", c->pid, errstr(r));
		return r;
	}
	/* EINVAL: a kernel without the prctl (KSM, MDWE): nothing to restore. */
	mm->has_thp_disable = res[0] >= 0;
	mm->thp_disable = res[0] >= 0 ? (int)res[0] : 0;
	mm->has_memory_merge = res[1] >= 0;
	mm->memory_merge = res[1] > 0;
	mm->has_mdwe = res[2] >= 0;
	mm->mdwe = res[2] >= 0 ? (int)res[2] : 0;
	mm->has_membarrier = true;
	for (int b = 0; b < CKPT_STATE_NR_MEMBARRIER; b++) {
		int64_t v = res[3 + b];

		if (v == 0)
			mm->membarrier |= 1u << b;
		else if (v != -EPERM && v != -EINVAL)
			pr_warn("membarrier probe %d of pid %d: %s", b, c->pid, errstr((int)v));
	}
	return 0;
}

/* Why the mappings of segment @shmid cannot be attached again as they are, or NULL. */
static const char *sysv_coverage(const struct ckpt_state_mm *mm, int shmid, uint64_t size)
{
	uint64_t base = 0, next = 0;
	bool first = true;

	for (size_t i = 0; i < mm->nr_vmas; i++) {
		const struct ckpt_state_vma *v = &mm->vmas[i];

		if (v->kind != CKPT_STATE_VMA_SYSV_SHM || (int)v->id.ino != shmid)
			continue;
		if (first) {
			if (v->offset)
				return "not restorable yet: a System V segment whose start is not mapped";
			base = next = v->start;
			first = false;
		}
		if (v->start != next || v->offset != v->start - base)
			return "not restorable yet: a System V segment attached twice or partly unmapped";
		next = v->end;
	}
	if (next - base < size)
		return "not restorable yet: a System V segment partly unmapped";
	return NULL;
}

/*
 * The System V segments the mappings attach, from /proc/sysvipc/shm (of
 * ckpt's IPC namespace: a segment not found there is not recorded, and
 * its mappings are refused by the judge).
 */
static int mm_sysv(struct collect *c, struct ckpt_state_mm *mm)
{
	_cleanup_free_ struct ckpt_sysv_shm *all = NULL;
	size_t nr = 0;
	int r = 0;

	for (size_t i = 0; i < mm->nr_vmas; i++) {
		const struct ckpt_state_vma *v = &mm->vmas[i];
		struct ckpt_state_sysv_shm *g;
		size_t k, at;

		if (v->kind != CKPT_STATE_VMA_SYSV_SHM || !v->has_identity ||
		    ckpt_state_sysv_shm_find(mm, (int)v->id.ino))
			continue;
		if (!all && (r = ckpt_proc_read_sysv_shm(NULL, &all, &nr)) < 0) {
			pr_err("cannot read /proc/sysvipc/shm for pid %d: %s", c->pid, errstr(r));
			return r;
		}
		for (k = 0; k < nr && all[k].shmid != (int)v->id.ino; k++)
			;
		if (k == nr)
			continue; /* another IPC namespace's */
		g = reallocarray(mm->sysv_shm, mm->nr_sysv_shm + 1, sizeof(*g));
		if (!g)
			return -ENOMEM;
		mm->sysv_shm = g;
		/* Ascending shmid. */
		for (at = mm->nr_sysv_shm; at > 0 && g[at - 1].shmid > all[k].shmid; at--)
			g[at] = g[at - 1];
		g[at] = (struct ckpt_state_sysv_shm){ .shmid = all[k].shmid, .key = all[k].key,
						      .mode = all[k].perms & 0777, .size = all[k].size,
						      .uid = all[k].uid, .gid = all[k].gid, .cuid = all[k].cuid,
						      .cgid = all[k].cgid, .removed = (all[k].perms & 01000) != 0 };
		mm->nr_sysv_shm++;
	}
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		struct ckpt_state_vma *v = &mm->vmas[i];
		const struct ckpt_state_sysv_shm *g;
		const char *why;

		if (v->kind != CKPT_STATE_VMA_SYSV_SHM || v->reason ||
		    !(g = ckpt_state_sysv_shm_find(mm, (int)v->id.ino)) || !(why = sysv_coverage(mm, g->shmid, g->size)))
			continue;
		if (!(v->reason = strdup(why)))
			return -ENOMEM;
	}
	return 0;
}

int collect_mm(struct collect *c)
{
	int r;

	if ((r = mm_fields(c, &c->s->mm)) < 0 || (r = mm_auxv(c, &c->s->mm)) < 0 ||
	    (r = mm_settings(c, &c->s->mm)) < 0 || (r = mm_vmas(c)) < 0)
		return r;
	return mm_sysv(c, &c->s->mm);
}
