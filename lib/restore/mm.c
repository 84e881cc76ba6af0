/* SPDX-License-Identifier: MIT */
/*
 * The address space of the restored process:
 *  prepare   a scratch area free in both layouts, a code page of our own
 *            with a syscall instruction, the child's rseq unregistered and
 *            every mapping and fd of it gone (but its vDSO and our area);
 *  mm        the vDSO trio moved onto the old addresses, every mapping of
 *            the checkpoint made at its address;
 *  pages     the chain's pages written;
 *  finish    VmFlags (madvise, mlock) and the mm fields (PR_SET_MM_MAP).
 */
#define LOG_AREA "restore"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/membarrier.h>
#include <linux/prctl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "compat/syscalls.h"
#include "restore/restore-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define PS 4096ULL
#define RSEQ_FLAG_UNREGISTER 1

bool rst_is_shm_vma(const struct ckpt_state_vma *v)
{
	return ckpt_state_vma_shm(v);
}

/* Private mappings whose contents are all in the images: made anonymous. */
bool rst_vma_anon_backed(const struct ckpt_state_vma *v)
{
	return ckpt_state_vma_anon_backed(v);
}

static bool is_vdso_trio(enum ckpt_state_vma_kind k)
{
	return k == CKPT_STATE_VMA_VDSO || k == CKPT_STATE_VMA_VVAR || k == CKPT_STATE_VMA_VVAR_VCLOCK;
}

/* ---- prepare ---- */

static bool overlaps(uint64_t a, uint64_t b, uint64_t s, uint64_t e)
{
	return a < e && s < b;
}

static int pick_area(struct rst *r, const struct ckpt_vma_list *child)
{
	for (uint64_t a = 1ULL << 40; a < 0x7f0000000000ULL; a += 1ULL << 32) {
		uint64_t b = a + RST_AREA_LEN;
		bool free = true;

		for (size_t i = 0; i < r->s->mm.nr_vmas && free; i++)
			free = !overlaps(a, b, r->s->mm.vmas[i].start, r->s->mm.vmas[i].end);
		for (size_t i = 0; i < child->nr && free; i++)
			free = !overlaps(a, b, child->v[i].start, child->v[i].end);
		if (free) {
			r->area = a;
			return 0;
		}
	}
	pr_err("no room for ckpt's scratch memory in the layout of the checkpoint");
	return -ENOMEM;
}

int rst_prepare(struct rst *r)
{
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	static const unsigned char code[] = { 0x0f, 0x05, 0xcc }; /* syscall; int3 */
	struct ckpt_rseq rs;
	uint64_t page;
	int64_t res;
	int e;

	e = ckpt_proc_read_maps(ckpt_inject_task_proc(r->inj), 0, &maps);
	if (e < 0)
		return e;
	if ((e = pick_area(r, maps)) < 0)
		return e;
	/* What was mapped before (clone arguments of a parent in a tree) goes with the rest below. */
	ckpt_inject_forget_scratch(r->inj);
	ckpt_inject_set_scratch_area(r->inj, r->area, RST_AREA_LEN / 2);
	/* Our own syscall instruction: the child's vDSO is about to move. */
	if ((e = ckpt_inject_scratch(r->inj, PS, &page)) < 0)
		return e;
	if ((e = ckpt_inject_write(r->inj, page, code, sizeof(code))) < 0)
		return e;
	res = RCALL(r, SYS_mprotect, page, PS, PROT_READ | PROT_EXEC);
	if (res < 0)
		return (int)res;
	ckpt_inject_set_syscall_ip(r->inj, page);
	if ((e = ckpt_inject_scratch(r->inj, RST_DATA_LEN, &r->data)) < 0)
		return e;

	/* The child is a fork of ckpt: glibc registered rseq in its TLS. */
	if (ckpt_inject_get_rseq(r->inj, 0, &rs) == 0 && rs.ptr) {
		res = RCALL(r, SYS_rseq, rs.ptr, rs.len, RSEQ_FLAG_UNREGISTER, rs.sig);
		if (res < 0) {
			pr_err("cannot unregister the rseq area of the new process: %s", errstr((int)res));
			return (int)res;
		}
	}
	res = RCALL(r, SYS_close_range, 0, ~0U, 0);
	if (res < 0)
		return (int)res;
	for (size_t i = 0; i < maps->nr; i++) {
		const struct ckpt_vma *v = &maps->v[i];

		if (v->kind == CKPT_VMA_VDSO || v->kind == CKPT_VMA_VVAR || v->kind == CKPT_VMA_VVAR_VCLOCK ||
		    v->kind == CKPT_VMA_VSYSCALL || overlaps(v->start, v->end, r->area, r->area + RST_AREA_LEN))
			continue;
		res = RCALL(r, SYS_munmap, v->start, v->end - v->start);
		if (res < 0) {
			pr_err("cannot unmap %#" PRIx64 "-%#" PRIx64 " of the new process: %s", v->start,
			       v->end, errstr((int)res));
			return (int)res;
		}
	}
	return 0;
}

/* ---- the vDSO ---- */

static int move_vdso(struct rst *r)
{
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	const struct ckpt_state_mm *mm = &r->s->mm;
	static const enum ckpt_vma_kind kinds[] = { CKPT_VMA_VVAR, CKPT_VMA_VVAR_VCLOCK, CKPT_VMA_VDSO };
	static const enum ckpt_state_vma_kind skinds[] = { CKPT_STATE_VMA_VVAR, CKPT_STATE_VMA_VVAR_VCLOCK,
							    CKPT_STATE_VMA_VDSO };
	uint64_t cur[3] = { 0 }, len[3] = { 0 }, want[3] = { 0 };
	uint64_t tmp = r->area + RST_AREA_LEN / 2;
	int e;

	if ((e = ckpt_proc_read_maps(ckpt_inject_task_proc(r->inj), 0, &maps)) < 0)
		return e;
	for (int k = 0; k < 3; k++) {
		for (size_t i = 0; i < maps->nr; i++)
			if (maps->v[i].kind == kinds[k]) {
				cur[k] = maps->v[i].start;
				len[k] = maps->v[i].end - maps->v[i].start;
			}
		for (size_t i = 0; i < mm->nr_vmas; i++)
			if (mm->vmas[i].kind == skinds[k])
				want[k] = mm->vmas[i].start;
	}
	/* Through a temporary place, so that old and new ranges never overlap. */
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 0; k < 3; k++) {
			uint64_t to = pass == 0 ? tmp : want[k];
			int64_t res;

			if (!cur[k])
				continue;
			if (!want[k]) {
				if (pass == 1)
					RCALL(r, SYS_munmap, cur[k], len[k]);
				continue;
			}
			res = RCALL(r, SYS_mremap, cur[k], len[k], len[k], MREMAP_MAYMOVE | MREMAP_FIXED, to);
			if (res < 0) {
				pr_err("cannot move the vDSO mapping of %" PRIu64 " bytes to %#" PRIx64 ": %s",
				       len[k], to, errstr((int)res));
				return (int)res;
			}
			cur[k] = to;
			if (pass == 0)
				tmp += len[k];
		}
	}
	return 0;
}

/* ---- mappings ---- */

static struct rst_shm *find_shm(struct rst *r, const struct ckpt_state_identity *id)
{
	for (size_t i = 0; i < r->nr_shm; i++)
		if (ckpt_state_same_object(&r->shm[i].id, id))
			return &r->shm[i];
	return NULL;
}

/* The shared memory objects: one memfd each, as large as their users need. */
static int make_shm(struct rst *r)
{
	const struct ckpt_state *s = r->s;

	for (size_t i = 0; i < s->mm.nr_vmas; i++) {
		const struct ckpt_state_vma *v = &s->mm.vmas[i];
		struct rst_shm *o;
		uint64_t need = v->offset + (v->end - v->start);

		if (!rst_is_shm_vma(v))
			continue;
		o = v->has_identity ? find_shm(r, &v->id) : NULL;
		if (!o) {
			if (GROW(r->shm, r->cap_shm, r->nr_shm + 1) < 0)
				return -ENOMEM;
			o = &r->shm[r->nr_shm++];
			memset(o, 0, sizeof(*o));
			o->id = v->id;
			o->rfd = -1;
			o->size = v->has_identity ? v->id.size : 0;
			o->name = v->kind == CKPT_STATE_VMA_MEMFD && v->path && !strncmp(v->path, "/memfd:", 7)
					  ? v->path + 7 : "ckpt-shmem";
		}
		if (need > o->size)
			o->size = need;
	}
	for (size_t i = 0; i < r->nr_shm; i++) {
		struct rst_shm *o = &r->shm[i];
		int64_t fd;

		int local = rst_tree_shm_fd(r, &o->id), rfd = -1, e;

		if (local >= 0) {
			/* Made by a process before it in the tree: that very object. */
			if ((e = ckpt_inject_put_fd(r->inj, local, -1, O_CLOEXEC, &rfd)) < 0)
				return e;
			if ((fd = rst_park_fd(r, rfd)) < 0)
				return (int)fd;
			o->rfd = (int)fd;
			continue;
		}
		rst_reset(r);
		/* Sealable: rst_files gives a memfd fd its seals (F_SEAL_SEAL too) */
		fd = RCALL(r, SYS_memfd_create, rst_put_str(r, o->name), MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			return (int)fd;
		if ((fd = rst_park_fd(r, (int)fd)) < 0)
			return (int)fd;
		o->rfd = (int)fd;
		fd = RCALL(r, SYS_ftruncate, (uint64_t)o->rfd, o->size);
		if (fd < 0)
			return (int)fd;
	}
	return 0;
}

/* Open a mapped file in the child and prove it is the checkpoint's. */
static int open_checked(struct rst *r, const char *path, int flags, const struct ckpt_state_identity *id)
{
	struct stat st;
	int64_t fd;
	int e;

	rst_reset(r);
	fd = RCALL(r, SYS_openat, (uint64_t)AT_FDCWD, rst_put_str(r, path), (uint64_t)(flags | O_CLOEXEC), 0);
	if (fd < 0) {
		pr_err("cannot open '%s' in the new process: %s%s", path, errstr((int)fd),
		       rst_trust_hint(r, (int)fd));
		return (int)fd;
	}
	e = ckpt_proc_stat_fd(ckpt_inject_task_proc(r->inj), (int)fd, &st);
	if (e == 0 && (st.st_ino != id->ino || major(st.st_dev) != id->dev_major ||
		       minor(st.st_dev) != id->dev_minor || (uint64_t)st.st_size != id->size)) {
		pr_err("'%s' changed since the checkpoint", path);
		e = -ESTALE;
	}
	if (e < 0) {
		RCALL(r, SYS_close, (uint64_t)fd);
		return e;
	}
	return (int)fd;
}

/*
 * A deleted file made again from its blob (rst_files_prepare): the same
 * file as its fds, handed in with the access mode the mapping needs.
 */
static int put_ghost(struct rst *r, const struct ckpt_state_vma *v, int oflags)
{
	int local = rst_ghost_fd(r, &v->id), l, rfd = -1, e;

	if (local < 0) {
		pr_err("the deleted file '%s' mapped at %#" PRIx64 " was not made again", v->path, v->start);
		return -EBADF;
	}
	l = ckpt_proc_reopen_self_fd(local, oflags);
	if (l < 0) {
		pr_err("cannot open the deleted file '%s' made again (for %#" PRIx64 "): %s", v->path,
		       v->start, errstr(l));
		return l;
	}
	e = ckpt_inject_put_fd(r->inj, l, -1, O_CLOEXEC, &rfd);
	close(l);
	if (e < 0) {
		pr_err("cannot hand the deleted file '%s' to the new process: %s", v->path, errstr(e));
		return e;
	}
	return rfd;
}

/* ---- System V shared memory ---- */

/*
 * Segment @g as the checkpoint had it, from ckpt (the new process shares
 * our IPC namespace): the one that is still there (the same key and size:
 * its contents are written again with the pages), or made again with its
 * id (kernel/shm_next_id), key, size, mode and owner.
 */
static int sysv_ensure(struct rst *r, const struct ckpt_state_sysv_shm *g)
{
	struct shmid_ds ds;
	char id[32];
	int made, e;

	if (rst_tree_sysv_ours(r, g->shmid))
		return 0; /* made for a process before it in the tree */
	if (shmctl(g->shmid, IPC_STAT, &ds) == 0) {
		/*
		 * Reused only when it is the checkpoint's (key, size, owner, mode)
		 * and nobody has it attached: its pages are written again, which
		 * must not roll back a process that still uses it (the original,
		 * running on), nor reach a segment the image does not own.
		 */
		if (g->removed || ds.shm_segsz != g->size || ds.shm_perm.__key != g->key ||
		    ds.shm_perm.uid != g->uid || ds.shm_perm.cuid != g->cuid || (ds.shm_perm.mode & 0777) != g->mode) {
			pr_err("System V segment %d is another one now (key %#x, %zu bytes, owner %u, mode %03o; the "
			       "checkpoint's: key %#x, %" PRIu64 " bytes, owner %u, mode %03o)", g->shmid,
			       (unsigned)ds.shm_perm.__key, (size_t)ds.shm_segsz, (unsigned)ds.shm_perm.uid,
			       (unsigned)ds.shm_perm.mode & 0777, (unsigned)g->key, g->size, g->uid, g->mode);
			return -EEXIST;
		}
		if (ds.shm_nattch) {
			pr_err("System V segment %d is attached by %lu process%s (the original still runs?): "
			       "its contents would be rolled back; stop them first", g->shmid,
			       (unsigned long)ds.shm_nattch, ds.shm_nattch > 1 ? "es" : "");
			return -EBUSY;
		}
		return rst_tree_sysv_take(r, g->shmid, false);
	}
	snprintf(id, sizeof(id), "%d", g->shmid);
	if ((e = ckpt_proc_write_sysctl(NULL, "kernel/shm_next_id", id)) < 0) {
		pr_err("cannot make System V segment %d again: kernel/shm_next_id: %s", g->shmid, errstr(e));
		return e;
	}
	made = shmget(g->removed ? IPC_PRIVATE : g->key, g->size, IPC_CREAT | IPC_EXCL | (int)g->mode);
	e = made < 0 ? neg_errno() : 0;
	/* The kernel forgets the id once it used it; not when shmget failed. */
	if (made < 0 && ckpt_proc_write_sysctl(NULL, "kernel/shm_next_id", "-1") < 0)
		pr_warn("cannot reset kernel/shm_next_id: the next shmget(2) gets id %d", g->shmid);
	if (e == 0 && made != g->shmid) {
		shmctl(made, IPC_RMID, NULL);
		e = -EEXIST;
	}
	if (e < 0) {
		pr_err("cannot make System V segment %d (key %#x) again: %s", g->shmid, (unsigned)g->key,
		       e == -EEXIST ? "its key or id is taken" : errstr(e));
		return e;
	}
	if (shmctl(made, IPC_STAT, &ds) == 0) {
		ds.shm_perm.uid = g->uid;
		ds.shm_perm.gid = g->gid;
		ds.shm_perm.mode = (unsigned short)g->mode;
		(void)shmctl(made, IPC_SET, &ds);
	}
	return rst_tree_sysv_take(r, g->shmid, true);
}

/*
 * The first mapping of a segment attaches all of it (the dump checked they
 * cover it in order), writable and executable if any of its mappings is,
 * until rst_mm_finish gives each its protection: the pages are written
 * through it first.
 */
static int map_sysv(struct rst *r, const struct ckpt_state_vma *v)
{
	const struct ckpt_state_sysv_shm *g = ckpt_state_sysv_shm_find(&r->s->mm, (int)v->id.ino);
	int flags = 0, e;
	int64_t res;

	if (!g)
		return -ENOTSUP; /* the judge refused it */
	if (v->offset)
		return 0; /* attached with the first */
	if ((e = sysv_ensure(r, g)) < 0)
		return e;
	for (size_t i = 0; i < r->s->mm.nr_vmas; i++) {
		const struct ckpt_state_vma *w = &r->s->mm.vmas[i];

		if (w->kind == CKPT_STATE_VMA_SYSV_SHM && (int)w->id.ino == g->shmid && (w->prot & PROT_EXEC))
			flags |= SHM_EXEC;
	}
	res = RCALL(r, SYS_shmat, (uint64_t)g->shmid, v->start, (uint64_t)flags);
	if (res != (int64_t)v->start) {
		pr_err("cannot attach System V segment %d at %#" PRIx64 " in the new process: %s", g->shmid, v->start,
		       res < 0 ? errstr((int)res) : "another address");
		return res < 0 ? (int)res : -EFAULT;
	}
	return 0;
}

static int map_one(struct rst *r, const struct ckpt_state_vma *v)
{
	uint64_t len = v->end - v->start;
	int flags = MAP_FIXED, fd = -1;
	uint64_t off = 0;
	int64_t res;

	if (v->kind == CKPT_STATE_VMA_SYSV_SHM)
		return map_sysv(r, v);
	if (rst_vma_anon_backed(v)) {
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
		if (v->vmflags & CKPT_STATE_VMF_GROWSDOWN)
			flags |= MAP_GROWSDOWN;
	} else if (rst_is_shm_vma(v)) {
		struct rst_shm *o = find_shm(r, &v->id);

		if (!o)
			return -EINVAL;
		flags |= MAP_SHARED;
		fd = o->rfd;
		off = v->offset;
	} else if (v->kind == CKPT_STATE_VMA_FILE) {
		/* VM_MAYWRITE: the fd was writable, mprotect(PROT_WRITE) must work again. */
		int oflags = v->shared && ((v->prot & PROT_WRITE) || (v->vmflags & CKPT_STATE_VMF_MAYWRITE))
				     ? O_RDWR : O_RDONLY;

		fd = v->deleted ? put_ghost(r, v, oflags) : open_checked(r, v->path, oflags, &v->id);
		if (fd < 0)
			return fd;
		flags |= v->shared ? MAP_SHARED : MAP_PRIVATE;
		off = v->offset;
	} else {
		pr_err("mapping %#" PRIx64 "-%#" PRIx64 " (%s) cannot be made", v->start, v->end,
		       ckpt_state_vma_kind_name(v->kind));
		return -ENOTSUP;
	}
	res = RCALL(r, SYS_mmap, v->start, len, (uint64_t)v->prot, (uint64_t)flags, (uint64_t)fd, off);
	if (v->kind == CKPT_STATE_VMA_FILE && !rst_vma_anon_backed(v))
		RCALL(r, SYS_close, (uint64_t)fd);
	if (res < 0) {
		pr_err("cannot map %#" PRIx64 "-%#" PRIx64 " (%s%s%s) in the new process: %s", v->start,
		       v->end, ckpt_state_vma_kind_name(v->kind), v->path ? " " : "", v->path ? v->path : "",
		       errstr((int)res));
		return (int)res;
	}
	if ((uint64_t)res != v->start) {
		pr_err("%#" PRIx64 " was mapped at %#" PRIx64, v->start, (uint64_t)res);
		return -EFAULT;
	}
	return 0;
}

/* The mmap of private anonymous mapping @v, as map_one makes it. */
static struct ckpt_inject_call anon_call(const struct ckpt_state_vma *v)
{
	int flags = MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS |
		    ((v->vmflags & CKPT_STATE_VMF_GROWSDOWN) ? MAP_GROWSDOWN : 0);

	return (struct ckpt_inject_call){ .nr = SYS_mmap,
					  .args = { v->start, v->end - v->start, (uint64_t)v->prot,
						    (uint64_t)flags, (uint64_t)-1, 0 } };
}

/*
 * The private anonymous mappings @idx[0..n) in one stop of the process (a
 * loop of remote calls): most of a process's mappings, thousands in some.
 */
static int map_anon_batch(struct rst *r, const size_t *idx, size_t n, struct ckpt_inject_call *calls,
			  int64_t *res)
{
	int e;

	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		calls[i] = anon_call(&r->s->mm.vmas[idx[i]]);
	e = ckpt_inject_syscall_loop(r->inj, r->thread, calls, n, res);
	if (e == -EOPNOTSUPP) {
		for (size_t i = 0; i < n; i++)
			if ((e = map_one(r, &r->s->mm.vmas[idx[i]])) < 0)
				return e;
		return 0;
	}
	if (e < 0)
		return e;
	for (size_t i = 0; i < n; i++) {
		const struct ckpt_state_vma *v = &r->s->mm.vmas[idx[i]];

		if (res[i] < 0 && res[i] > -4096) {
			pr_err("cannot map %#" PRIx64 "-%#" PRIx64 " (%s) in the new process: %s", v->start,
			       v->end, ckpt_state_vma_kind_name(v->kind), errstr((int)res[i]));
			return (int)res[i];
		}
		if ((uint64_t)res[i] != v->start) {
			pr_err("%#" PRIx64 " was mapped at %#" PRIx64, v->start, (uint64_t)res[i]);
			return -EFAULT;
		}
	}
	return 0;
}

int rst_mm(struct rst *r)
{
	const struct ckpt_state_mm *mm = &r->s->mm;
	_cleanup_free_ struct ckpt_inject_call *calls = calloc(mm->nr_vmas + 1, sizeof(*calls));
	_cleanup_free_ int64_t *res = calloc(mm->nr_vmas + 1, sizeof(*res));
	_cleanup_free_ size_t *batch = calloc(mm->nr_vmas + 1, sizeof(*batch));
	size_t nb = 0;
	int e;

	if (!calls || !res || !batch)
		return -ENOMEM;
	if ((e = move_vdso(r)) < 0 || (e = make_shm(r)) < 0)
		return e;
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		const struct ckpt_state_vma *v = &mm->vmas[i];

		if (is_vdso_trio(v->kind) || v->kind == CKPT_STATE_VMA_VSYSCALL)
			continue;
		if (rst_vma_anon_backed(v) && v->kind != CKPT_STATE_VMA_SYSV_SHM) {
			batch[nb++] = i;
			continue;
		}
		/* In order: what is batched first (a file mapping may need a private one below it gone). */
		if ((e = map_anon_batch(r, batch, nb, calls, res)) < 0 || (e = map_one(r, v)) < 0)
			return e;
		nb = 0;
	}
	if ((e = map_anon_batch(r, batch, nb, calls, res)) < 0)
		return e;
	r->st->nr_vmas += mm->nr_vmas;
	return 0;
}

/* ---- pages ---- */

static const struct ckpt_state_vma *vma_of(const struct ckpt_state_mm *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->nr_vmas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mm->vmas[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < mm->nr_vmas && mm->vmas[lo].start <= addr ? &mm->vmas[lo] : NULL;
}

bool rst_vma_lazy(const struct rst *r, const struct ckpt_state_vma *v)
{
	/*
	 * Private anonymous memory only. Shared memory is written before it
	 * runs: MADV_DONTNEED there keeps the data (the REMOVE event cannot
	 * tell it from a hole punch), and other processes may share the pages.
	 */
	return r->o->lazy && rst_vma_anon_backed(v);
}

/*
 * A private mapping of a deleted file made again: is the page at @at
 * (@page, or zeros) what the file holds there? Then it is left to the
 * file, not copied on write, so that it follows the file as it did (the
 * dump saves such a mapping in full: it cannot tell which pages were
 * copied; one copied and never changed comes back uncopied).
 */
static bool ghost_page_same(struct rst *r, const struct ckpt_state_vma *v, uint64_t at, const void *page)
{
	static const unsigned char zero[PS];
	unsigned char buf[PS];
	int fd = rst_ghost_fd(r, &v->id);
	ssize_t n;

	if (fd < 0)
		return false;
	n = pread(fd, buf, PS, (off_t)(v->offset + (at - v->start)));
	if (n < 0)
		return false;
	memset(buf + n, 0, PS - (size_t)n);
	return !memcmp(buf, page ? page : zero, PS);
}

/* The pages of [@at, @to) in ghost-backed @v that differ from the file; the rest left to it. */
static int write_ghost_pages(struct rst *r, const struct ckpt_state_vma *v, uint64_t at, uint64_t to,
			     const char *buf)
{
	static const unsigned char zero[PS];

	for (uint64_t p = at; p < to; p += PS) {
		const void *page = buf ? buf + (p - at) : NULL;
		int e;

		if (ghost_page_same(r, v, p, page))
			continue;
		if ((e = ckpt_inject_write(r->inj, p, page ? page : zero, PS)) < 0)
			return e;
		r->st->bytes_written += PS;
	}
	return 0;
}

/* Pages written as they are (not through a file, not compared with a ghost file's). */
static bool written_as_is(const struct ckpt_state_vma *v)
{
	return !(v->kind == CKPT_STATE_VMA_FILE && (v->shared || (v->deleted && !rst_vma_anon_backed(v))));
}

/* Write @nr pages of one kind at @at: DATA from @data, ZERO where it matters. */
static int write_run(struct rst *r, uint64_t at, uint64_t nr, bool data, const void *buf)
{
	static const unsigned char zero[PS];
	uint64_t end = at + nr * PS;

	while (at < end) {
		const struct ckpt_state_vma *v = vma_of(&r->s->mm, at);
		uint64_t to;
		int e = 0;

		if (!v) {
			pr_err("the images hold a page at %#" PRIx64 " outside every mapping", at);
			return -EBADMSG;
		}
		to = MIN(end, v->end);
		if (v->kind == CKPT_STATE_VMA_FILE && v->shared) {
			/*
			 * Never through a shared file mapping: the file holds its
			 * pages (a deleted one's blob was read through the page
			 * cache, dirty pages included), and the dump saves none.
			 */
			pr_debug("pages at %#" PRIx64 "-%#" PRIx64 " of the shared mapping of '%s' left to the file",
				 at, to, v->path);
		} else if (v->kind == CKPT_STATE_VMA_FILE && v->deleted && !rst_vma_anon_backed(v)) {
			e = write_ghost_pages(r, v, at, to, data ? (const char *)buf + (at - (end - nr * PS)) : NULL);
			if (data)
				r->st->pages_data += (to - at) / PS;
			else
				r->st->pages_zero += (to - at) / PS;
		} else if (data) {
			/*
			 * The mappings right after it too, when their pages are written
			 * as they are: one write for all (through /proc/PID/mem from the
			 * first page a protection refuses), not one per mapping.
			 */
			for (const struct ckpt_state_vma *n = v + 1;
			     to < end && n < r->s->mm.vmas + r->s->mm.nr_vmas && n->start == to && written_as_is(n); n++)
				to = MIN(end, n->end);
			e = ckpt_inject_write(r->inj, at, (const char *)buf + (at - (end - nr * PS)), to - at);
			r->st->pages_data += (to - at) / PS;
			r->st->bytes_written += to - at;
		} else {
			/* Zero: only a file mapping's page differs from zero. */
			if (v->kind == CKPT_STATE_VMA_FILE && !rst_vma_anon_backed(v))
				for (uint64_t p = at; p < to && e == 0; p += PS)
					e = ckpt_inject_write(r->inj, p, zero, PS);
			r->st->pages_zero += (to - at) / PS;
		}
		if (e < 0) {
			pr_err("cannot write the pages at %#" PRIx64 " of the new process: %s", at, errstr(e));
			return e;
		}
		at = to;
	}
	return 0;
}

/* Local and eager: every resolved range of the chain, each frame decoded once. */
static int pages_from_chain(struct rst *r)
{
	_cleanup_chain_iter_ struct ckpt_chain_iter *it = NULL;
	struct ckpt_chain_range cr;
	int e, k;

	e = ckpt_chain_iter_new(r->chain, &it);
	if (e < 0)
		return e;
	while ((k = ckpt_chain_iter_next(it, &cr)) > 0) {
		e = write_run(r, cr.addr, cr.nr_pages, cr.kind == CKPT_PAGE_DATA, cr.data);
		if (e < 0)
			return e;
	}
	return k;
}

/* ---- from a page source ---- */

/* Write what the source holds in [@lo, @hi), in batches: listed first, then read. */
static int write_window(struct rst *r, uint64_t lo, uint64_t hi, uint8_t *kinds, char *buf)
{
	_cleanup_free_ struct ckpt_page_source_range *ranges = NULL;
	size_t nr;
	int e = ckpt_page_source_list_ranges_in(r->src, lo, hi, &ranges, &nr);

	if (e < 0)
		return e;
	for (size_t i = 0; i < nr; i++) {
		uint64_t at = ranges[i].addr, end = at + ranges[i].nr_pages * PS;

		if (ranges[i].kind == CKPT_PAGE_ZERO) {
			if ((e = write_run(r, at, ranges[i].nr_pages, false, NULL)) < 0)
				return e;
			continue;
		}
		for (uint64_t n; at < end; at += n * PS) {
			n = MIN((end - at) / PS, CKPT_PAGE_SOURCE_BATCH_MAX);
			e = ckpt_page_source_read_pages(r->src, at, n, kinds, buf);
			/* Consecutive pages of one kind in one write. */
			for (uint64_t k = 0, j; k < n && e >= 0; k = j) {
				bool data = kinds[k] == CKPT_PAGE_DATA;

				for (j = k + 1; j < n && (kinds[j] == CKPT_PAGE_DATA) == data; j++)
					;
				e = write_run(r, at + k * PS, j - k, data, buf + k * PS);
			}
			if (e < 0)
				return e;
		}
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The pages of the lazy mapping @v that hold a thread's rseq area: the
 * kernel writes it when rseq is registered, before any server runs, so
 * they are written now.
 */
static int write_rseq(struct rst *r, const struct ckpt_state_vma *v, uint8_t *kinds, char *buf)
{
	_cleanup_free_ uint64_t *pages = malloc(2 * MAX(r->s->nr_threads, 1) * sizeof(*pages));
	size_t n = 0;
	int e;

	if (!pages)
		return -ENOMEM;
	for (size_t i = 0; i < r->s->nr_threads; i++) {
		const struct ckpt_state_thread *t = &r->s->threads[i];

		if (!t->rseq.ptr)
			continue;
		for (uint64_t p = ALIGN_DOWN(t->rseq.ptr, PS); p < t->rseq.ptr + MAX(t->rseq.len, 1) && n < 2 * r->s->nr_threads;
		     p += PS)
			if (p >= v->start && p < v->end)
				pages[n++] = p;
	}
	qsort(pages, n, sizeof(*pages), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if ((i == 0 || pages[i] != pages[i - 1]) && (e = write_window(r, pages[i], pages[i] + PS, kinds, buf)) < 0)
			return e;
	return 0;
}

/*
 * From a page source: what the process needs before it runs. All of it
 * for an eager restore; for a lazy one, everything outside the lazy
 * mappings (written pages of private file mappings; a page outside every
 * mapping is refused by write_run, as in the eager restore) and their rseq
 * pages. The source is asked for the ranges of each window between lazy
 * mappings, never for the whole list: the pages of a lazy mapping are the
 * server's, and the source need not resolve its whole index before the
 * process runs.
 */
static int pages_from_source(struct rst *r)
{
	const struct ckpt_state_mm *mm = &r->s->mm;
	_cleanup_free_ uint8_t *kinds = malloc(CKPT_PAGE_SOURCE_BATCH_MAX);
	_cleanup_free_ char *buf = malloc((size_t)CKPT_PAGE_SOURCE_BATCH_MAX * PS);
	uint64_t from = 0; /* the start of the window not yet written */
	int e;

	if (!kinds || !buf)
		return -ENOMEM;
	for (size_t i = 0; i <= mm->nr_vmas; i++) {
		const struct ckpt_state_vma *v = i < mm->nr_vmas ? &mm->vmas[i] : NULL;
		uint64_t to = MIN(v ? v->start : CKPT_IMAGE_ADDR_LIMIT, CKPT_IMAGE_ADDR_LIMIT);

		if (v && !rst_vma_lazy(r, v))
			continue;
		if (to > from && (e = write_window(r, from, to, kinds, buf)) < 0)
			return e;
		if (!v)
			break;
		if ((e = write_rseq(r, v, kinds, buf)) < 0)
			return e;
		from = v->end;
	}
	return 0;
}

int rst_pages(struct rst *r)
{
	return r->src ? pages_from_source(r) : pages_from_chain(r);
}

/* ---- finish ---- */

static int advise(struct rst *r, const struct ckpt_state_vma *v)
{
	static const struct {
		uint32_t flag;
		int advice;
	} map[] = {
		{ CKPT_STATE_VMF_DONTDUMP, MADV_DONTDUMP },   { CKPT_STATE_VMF_DONTCOPY, MADV_DONTFORK },
		{ CKPT_STATE_VMF_WIPEONFORK, MADV_WIPEONFORK }, { CKPT_STATE_VMF_HUGEPAGE, MADV_HUGEPAGE },
		{ CKPT_STATE_VMF_NOHUGEPAGE, MADV_NOHUGEPAGE }, { CKPT_STATE_VMF_MERGEABLE, MADV_MERGEABLE },
		{ CKPT_STATE_VMF_SEQ_READ, MADV_SEQUENTIAL },  { CKPT_STATE_VMF_RAND_READ, MADV_RANDOM },
	};

	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		int64_t res;

		if (!(v->vmflags & map[i].flag))
			continue;
		res = RCALL(r, SYS_madvise, v->start, v->end - v->start, (uint64_t)map[i].advice);
		if (res < 0) {
			pr_err("madvise(%d) of %#" PRIx64 "-%#" PRIx64 " failed: %s", map[i].advice, v->start,
			       v->end, errstr((int)res));
			return (int)res;
		}
	}
	return 0;
}

/*
 * mlock again. A lazy mapping is locked on fault: mlock would fault every
 * page in before any server runs; its pages are locked as they come in,
 * and the server locks the whole range once it is complete (the range
 * tells it), which clears the on-fault mode the original did not have.
 */
static int lock(struct rst *r, const struct ckpt_state_vma *v)
{
	bool onfault = (v->vmflags & CKPT_STATE_VMF_LOCKONFAULT) || rst_vma_lazy(r, v);
	int64_t res;

	if (!(v->vmflags & CKPT_STATE_VMF_LOCKED))
		return 0;
	res = RCALL(r, SYS_mlock2, v->start, v->end - v->start, onfault ? MLOCK_ONFAULT : 0);
	if (res < 0) {
		pr_err("cannot lock %#" PRIx64 "-%#" PRIx64 " in memory again (%" PRIu64 " KiB): %s%s",
		       v->start, v->end, (v->end - v->start) / 1024, errstr((int)res),
		       res == -ENOMEM || res == -EPERM ? " (RLIMIT_MEMLOCK, or no CAP_IPC_LOCK)" : "");
		return (int)res;
	}
	return 0;
}

static int guards(struct rst *r)
{
	const struct ckpt_state_mm *mm = &r->s->mm;

	for (size_t i = 0; i < mm->nr_guards; i++) {
		uint64_t s = mm->guards[i][0], e = mm->guards[i][1];
		int64_t res = RCALL(r, SYS_madvise, s, e - s, MADV_GUARD_INSTALL);

		if (res < 0) {
			pr_err("cannot install the guard region %#" PRIx64 "-%#" PRIx64 ": %s", s, e,
			       errstr((int)res));
			return (int)res;
		}
	}
	return 0;
}

/* The per-mm settings the image records; MDWE last: it refuses later PROT_EXEC gains. */
static int mm_settings(struct rst *r)
{
	static const struct {
		uint32_t bit;
		int cmd;
	} mb[] = {
		{ CKPT_STATE_MEMBARRIER_PRIVATE_EXPEDITED, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED },
		{ CKPT_STATE_MEMBARRIER_PRIVATE_EXPEDITED_SYNC_CORE,
		  MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE },
		{ CKPT_STATE_MEMBARRIER_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ },
	};
	const struct ckpt_state_mm *mm = &r->s->mm;
	int64_t res = 0;

	/*
	 * Set even when off: the new process is a fork of ckpt and inherits
	 * ckpt's own (THP disable and KSM merge-any survive fork and exec).
	 */
	if (mm->has_thp_disable) {
		res = RCALL(r, SYS_prctl, PR_SET_THP_DISABLE, mm->thp_disable ? 1 : 0,
			    mm->thp_disable & 2 ? PR_THP_DISABLE_EXCEPT_ADVISED : 0, 0, 0);
		if (res < 0) {
			pr_err("cannot set transparent huge pages %s again (PR_SET_THP_DISABLE %d): %s",
			       mm->thp_disable ? "off" : "on", mm->thp_disable, errstr((int)res));
			return (int)res;
		}
	}
	if (mm->has_memory_merge) {
		res = RCALL(r, SYS_prctl, PR_SET_MEMORY_MERGE, mm->memory_merge ? 1 : 0, 0, 0, 0);
		/* Off on a kernel without KSM (EINVAL): nothing to turn off. */
		if (res < 0 && (mm->memory_merge || res != -EINVAL)) {
			pr_err("cannot %s KSM for the whole process again (PR_SET_MEMORY_MERGE): %s",
			       mm->memory_merge ? "enable" : "disable", errstr((int)res));
			return (int)res;
		}
	}
	for (size_t i = 0; mm->has_membarrier && i < ARRAY_SIZE(mb); i++) {
		if (!(mm->membarrier & mb[i].bit))
			continue;
		res = RCALL(r, SYS_membarrier, (uint64_t)mb[i].cmd, 0, 0);
		if (res < 0) {
			pr_err("cannot register for membarrier (command %#x) again: %s", mb[i].cmd,
			       errstr((int)res));
			return (int)res;
		}
	}
	if (mm->has_mdwe && mm->mdwe && (res = RCALL(r, SYS_prctl, PR_SET_MDWE, (uint64_t)mm->mdwe, 0, 0, 0)) < 0) {
		pr_err("cannot set memory-deny-write-execute again (PR_SET_MDWE %#x): %s", mm->mdwe,
		       errstr((int)res));
		return (int)res;
	}
	return 0;
}

/*
 * The deleted executable made again (files.c), in the child: its fd there,
 * or -1 with a warning. PR_SET_MM_MAP denies writes to the new exe file,
 * and fails (EACCES) while it is open for writing: our own handle of the
 * file made again becomes read-only first (fds and mappings of it reopen
 * it through /proc/self/fd, which does not need it writable).
 */
static int64_t exe_ghost(struct rst *r, const struct ckpt_state_process *p)
{
	int local = -1, rfd = -1, e;

	for (size_t i = 0; i < r->nr_ghosts; i++) {
		int ro;

		if (!ckpt_state_same_object(&r->ghosts[i].id, &p->exe_id))
			continue;
		ro = ckpt_proc_reopen_self_fd(r->ghosts[i].fd, O_RDONLY | O_CLOEXEC);
		if (ro >= 0) {
			close(r->ghosts[i].fd);
			r->ghosts[i].fd = ro;
			local = ckpt_proc_reopen_self_fd(ro, O_RDONLY);
		}
	}
	if (local < 0)
		e = -EBADF;

	else
		e = ckpt_inject_put_fd(r->inj, local, -1, O_CLOEXEC, &rfd);
	if (local >= 0)
		close(local);
	if (e < 0) {
		pr_warn("cannot hand the deleted executable '%s' made again to the new process: "
			"/proc/PID/exe is not restored: %s", p->exe, errstr(e));
		return -1;
	}
	return rfd;
}

int rst_mm_finish(struct rst *r)
{
	const struct ckpt_state_mm *mm = &r->s->mm;
	const struct ckpt_state_process *p = &r->s->process;
	struct prctl_mm_map map;
	int64_t exe_fd = -1, res;
	int e;

	for (size_t i = 0; i < mm->nr_vmas; i++) {
		const struct ckpt_state_vma *v = &mm->vmas[i];

		/* A System V segment was attached writable for its pages: now each mapping's own. */
		if (v->kind == CKPT_STATE_VMA_SYSV_SHM &&
		    (res = RCALL(r, SYS_mprotect, v->start, v->end - v->start, (uint64_t)v->prot)) < 0) {
			pr_err("cannot protect %#" PRIx64 "-%#" PRIx64 " (System V) again: %s", v->start, v->end,
			       errstr((int)res));
			return (int)res;
		}
		if (!is_vdso_trio(v->kind) && ((e = advise(r, v)) < 0 || (e = lock(r, v)) < 0))
			return e;
	}
	if ((e = guards(r)) < 0)
		return e;
	rst_reset(r);
	if (p->exe && !p->exe_deleted) {
		exe_fd = RCALL(r, SYS_openat, (uint64_t)AT_FDCWD, rst_put_str(r, p->exe),
			       O_RDONLY | O_CLOEXEC, 0);
		if (exe_fd < 0)
			pr_warn("cannot open the executable '%s': /proc/PID/exe is not restored", p->exe);
	} else if (p->exe && rst_ghost_fd(r, &p->exe_id) >= 0) {
		/* Deleted, and made again from its blob for its mappings: the same file. */
		exe_fd = exe_ghost(r, p);
	} else {
		pr_warn("the executable was deleted: /proc/PID/exe is not restored");
	}
	map = (struct prctl_mm_map){
		.start_code = mm->start_code, .end_code = mm->end_code,
		.start_data = mm->start_data, .end_data = mm->end_data,
		.start_brk = mm->start_brk, .brk = mm->brk,
		.start_stack = mm->start_stack,
		.arg_start = mm->arg_start, .arg_end = mm->arg_end,
		.env_start = mm->env_start, .env_end = mm->env_end,
		.exe_fd = exe_fd >= 0 ? (uint32_t)exe_fd : (uint32_t)-1,
	};
	if (mm->nr_auxv) {
		map.auxv = (__u64 *)(uintptr_t)rst_put(r, mm->auxv, mm->nr_auxv * 16);
		map.auxv_size = (uint32_t)(mm->nr_auxv * 16);
		if (!map.auxv)
			return -E2BIG;
	}
	res = RCALL(r, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, rst_put(r, &map, sizeof(map)), sizeof(map), 0);
	if (res < 0 && exe_fd >= 0 && p->exe_deleted) {
		/* The file made again may not be executable here (a noexec mount): without it. */
		pr_warn("the deleted executable '%s' made again cannot be the process's: /proc/PID/exe is "
			"not restored: %s", p->exe, errstr((int)res));
		map.exe_fd = (uint32_t)-1;
		res = RCALL(r, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, rst_put(r, &map, sizeof(map)), sizeof(map), 0);
	}
	if (exe_fd >= 0)
		RCALL(r, SYS_close, (uint64_t)exe_fd);
	if (res < 0) {
		pr_err("PR_SET_MM_MAP (brk, arguments, environment, auxv, exe) failed: %s", errstr((int)res));
		return (int)res;
	}
	return mm_settings(r);
}
