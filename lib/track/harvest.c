/* SPDX-License-Identifier: MIT */
/*
 * A harvest, with the process frozen:
 *  1. the parked fd is still our uffd (else tracking is lost);
 *  2. re-read the mappings and compare with the registered set: a mapping,
 *     or a part of one, not covered is new (mmap, brk, stack growth, mremap,
 *     a thread stack): register it, and all its pages count as written once;
 *  3. persist generation + 1 (before scanning: a crash after the re-arm must
 *     not let an old parent look valid); the new set is saved later by
 *     ckpt_track_sync(), outside the freeze;
 *  4. PAGEMAP_SCAN each run of consecutive registered mappings with
 *     category_mask = return_mask = PAGE_IS_WRITTEN and
 *     PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, looping on walk_end with
 *     one reused output vector, all zero before every call. A scan that
 *     fails has re-armed and reported what it walked before the failure:
 *     those ranges are kept. EPERM means a mapping in the run is not
 *     registered (replaced behind our back): scan that run mapping by
 *     mapping, register what fails, and report those whole;
 *  5. add the mappings that cannot be registered, whole; sort and merge.
 */
#define LOG_AREA "track"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ckpt/inject.h>
#include <ckpt/proc.h>

#include "compat/uffd.h"
#include "track/track-internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

struct harvest {
	struct ckpt_tracker *t;
	size_t *map_idx;                  /* of each new registered entry, in maps */
	size_t cap_map_idx;
	struct ckpt_inject *inj;
	const struct ckpt_vma_list *maps;
	struct ckpt_range_set *out;
	struct ckpt_track_stats *st;
	struct ckpt_range_set registered; /* of the previous harvest, normalized */
	int pm;
};

/* -ESTALE after exec: our uffd's mm is gone (ioctls answer ESRCH). */
static int check_alive(struct harvest *h)
{
	struct ckpt_tracker *t = h->t;
	char why[256];
	int r;

	if (t->parked_fd < 0) {
		/* Held, not parked: the uffd is ours alone; is its mm still the process's? */
		for (size_t i = 0; i < t->nr_vmas; i++) {
			int e = track_register(t, t->vmas[i].start, t->vmas[i].end);

			if (e == -ESRCH) {
				pr_debug("pid %d executed a new program: its tracking ended", t->pid);
				return -ESTALE;
			}
			if (e == 0)
				return 0;
		}
		return 0;
	}
	r = track_verify_parked(t, h->inj, why, sizeof(why));
	if (r == 0)
		return 0;
	for (size_t i = 0; i < t->nr_vmas; i++) {
		int e = track_register(t, t->vmas[i].start, t->vmas[i].end);

		if (e == -ESRCH) {
			pr_err("pid %d executed a new program: its tracking ended", t->pid);
			return -ESTALE;
		}
		if (e == 0) {
			/* Our copy still tracks the live mm: put it back. */
			int fd = -1;

			e = ckpt_inject_put_fd(h->inj, t->uffd, t->parked_fd, O_CLOEXEC, &fd);
			if (e == 0) {
				pr_warn("pid %d closed fd %d, where its tracking userfaultfd was parked; "
					"ckpt held a copy, so tracking goes on: parked again", t->pid,
					t->parked_fd);
				return 0;
			}
			break;
		}
	}
	pr_err("%s", why);
	return -ESTALE;
}

static const struct track_vma *prev_vma(const struct ckpt_tracker *t, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < t->nr_vmas; i++)
		if (t->vmas[i].start == start && t->vmas[i].end == end)
			return &t->vmas[i];
	return NULL;
}

static bool was_always_dirty(const struct ckpt_tracker *t, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < t->nr_dirty; i++)
		if (t->dirty[i].start == start && t->dirty[i].end == end)
			return true;
	return false;
}

/*
 * Compare the mappings with what was registered; register what is new and
 * build the new registered list in @vmas/@dirty.
 */
static int update_registration(struct harvest *h, struct track_vma **ret_vmas, size_t *ret_nr,
			       struct track_dirty_vma **ret_dirty, size_t *ret_nr_dirty)
{
	struct ckpt_tracker *t = h->t;
	struct track_vma *vmas = NULL;
	struct track_dirty_vma *dirty = NULL;
	size_t nr = 0, cap = 0, nr_dirty = 0, cap_dirty = 0;
	struct ckpt_range_set now;
	int r = 0;

	ckpt_range_set_init(&now);
	for (size_t i = 0; i < h->maps->nr; i++) {
		const struct ckpt_vma *v = &h->maps->v[i];
		const struct track_vma *pv;
		char label[512];

		if (!track_vma_eligible(h->inj, v))
			continue;
		if ((r = ckpt_range_set_add(&now, v->start, v->end)) < 0)
			goto out;
		if (ckpt_range_set_covers(&h->registered, v->start, v->end)) {
			/* Split, merged or re-protected since: changed. */
			pv = prev_vma(t, v->start, v->end);
			if (!pv || pv->prot != v->prot)
				h->st->maps_changed++;
			if (GROW(vmas, cap, nr + 1) < 0 || GROW(h->map_idx, h->cap_map_idx, nr + 1) < 0)
				goto nomem;
			h->map_idx[nr] = i;
			vmas[nr++] = (struct track_vma){ v->start, v->end, v->prot };
			continue;
		}
		/*
		 * New, or grown: register; the uncovered part counts as written.
		 * Only what is tracked counts as added (and, gone, as removed):
		 * not a mapping that can never be written (met again at every
		 * harvest), nor one always written after its first time.
		 */
		r = track_register(t, v->start, v->end);
		if (r == 0) {
			h->st->maps_added++;
			size_t before = h->out->nr;
			uint64_t bytes = 0;

			if ((r = ckpt_range_set_add_uncovered(h->out, &h->registered, v->start, v->end)) < 0)
				goto out;
			for (size_t k = before; k < h->out->nr; k++)
				bytes += h->out->v[k].end - h->out->v[k].start;
			h->st->new_pages += bytes / page_size();
			if (GROW(vmas, cap, nr + 1) < 0 || GROW(h->map_idx, h->cap_map_idx, nr + 1) < 0)
				goto nomem;
			h->map_idx[nr] = i;
			vmas[nr++] = (struct track_vma){ v->start, v->end, v->prot };
			continue;
		}
		if (r == -ESRCH) {
			pr_err("pid %d executed a new program: its tracking ended", t->pid);
			r = -ESTALE;
			goto out;
		}
		if (r == -EPERM && v->shared && !(v->prot & PROT_WRITE)) {
			r = 0;
			continue; /* never writable through this mapping */
		}
		track_vma_label(v, label, sizeof(label));
		if (!was_always_dirty(t, v->start, v->end)) {
			h->st->maps_added++;
			pr_warn("cannot register mapping %s of pid %d for write-protect (%s): "
				"it is treated as always written", label, t->pid, errstr(r));
		}
		if (GROW(dirty, cap_dirty, nr_dirty + 1) < 0)
			goto nomem;
		dirty[nr_dirty].start = v->start;
		dirty[nr_dirty].end = v->end;
		dirty[nr_dirty].name = strdup(label);
		if (!dirty[nr_dirty].name)
			goto nomem;
		nr_dirty++;
		r = 0;
	}
	/* What was registered and is not mapped any more. */
	ckpt_range_set_normalize(&now);
	for (size_t i = 0; i < t->nr_vmas; i++)
		if (!ckpt_range_set_covers(&now, t->vmas[i].start, t->vmas[i].end))
			h->st->maps_removed++;
	*ret_vmas = vmas;
	*ret_nr = nr;
	*ret_dirty = dirty;
	*ret_nr_dirty = nr_dirty;
	vmas = NULL;
	dirty = NULL;
	nr_dirty = 0;
	goto out;
nomem:
	r = -ENOMEM;
out:
	ckpt_range_set_done(&now);
	for (size_t i = 0; i < nr_dirty; i++)
		free(dirty[i].name);
	free(dirty);
	free(vmas);
	return r;
}

/*
 * Take what a scan that failed part-way already did: the kernel re-armed the
 * ranges it walked before the failure and copied them into the vector
 * before returning the error (see KERNEL-NOTES, "PAGEMAP_SCAN that fails
 * part-way"). The vector is all zero before every call, so what it holds
 * now is exactly what was reported.
 */
static int keep_reported(struct harvest *h)
{
	struct ckpt_tracker *t = h->t;
	size_t i;
	int r = 0;

	for (i = 0; i < t->vec_len && t->vec[i].end; i++)
		if (r == 0)
			r = ckpt_range_set_add(h->out, t->vec[i].start, t->vec[i].end);
	memset(t->vec, 0, i * sizeof(*t->vec));
	h->st->kept_on_error += i;
	return r;
}

/* @at made no progress: the rest of the mapping that holds it counts as written. */
static int skip_stuck(struct harvest *h, uint64_t *at, uint64_t end)
{
	uint64_t stop = end;
	int r;

	for (size_t i = 0; i < h->maps->nr; i++) {
		const struct ckpt_vma *v = &h->maps->v[i];

		if (*at >= v->start && *at < v->end) {
			stop = MIN(v->end, end);
			break;
		}
	}
	pr_debug("scan of pid %d stuck at %#" PRIx64 ": %#" PRIx64 "-%#" PRIx64 " counts as written",
		 h->t->pid, *at, *at, stop);
	r = ckpt_range_set_add(h->out, *at, stop);
	*at = stop;
	return r;
}

/*
 * One PAGEMAP_SCAN pass over [start, end); -EPERM is returned as is. On any
 * error, the ranges the kernel reported before it are in @h->out already.
 */
static int scan(struct harvest *h, uint64_t start, uint64_t end)
{
	struct ckpt_tracker *t = h->t;
	uint64_t at = start, t0 = now_ns();
	int r = 0;

	while (at < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = at,
			.end = end,
			.vec = (uintptr_t)t->vec,
			.vec_len = t->vec_len,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long n = ioctl(h->pm, PAGEMAP_SCAN, &arg);
		int k;

		if (n < 0) {
			r = neg_errno();
			if ((k = keep_reported(h)) < 0)
				r = k;
			break;
		}
		for (long i = 0; i < n && r == 0; i++)
			r = ckpt_range_set_add(h->out, t->vec[i].start, t->vec[i].end);
		memset(t->vec, 0, (size_t)n * sizeof(*t->vec));
		if (r < 0)
			break;
		if (arg.walk_end <= at) {
			/* No progress: a huge page the scan will not split. */
			r = skip_stuck(h, &at, end);
			if (r < 0)
				break;
			continue;
		}
		at = arg.walk_end;
	}
	h->st->scan_ns += now_ns() - t0;
	return r;
}

/*
 * A run failed with EPERM: go mapping by mapping. A mapping that fails is
 * not registered (replaced behind our back): register it and report it
 * whole; if that fails too, it is reported whole all the same and left out
 * of the registered list (emptied here, dropped after the scan), so that
 * the next harvest takes it as new: a mapping that can never be written
 * (shared, read-only: glibc's gconv cache) is then left alone, any other
 * is always written, with one warning, not one per harvest.
 */
static int scan_each(struct harvest *h, size_t first, size_t last, struct track_vma *vmas)
{
	for (size_t i = first; i <= last; i++) {
		int r = scan(h, vmas[i].start, vmas[i].end);
		bool forget;

		if (r != -EPERM) {
			if (r < 0)
				return r;
			continue;
		}
		pr_debug("mapping %#" PRIx64 "-%#" PRIx64 " was replaced: registered again", vmas[i].start,
			 vmas[i].end);
		r = track_register(h->t, vmas[i].start, vmas[i].end);
		if (r == -ESRCH)
			return r;
		if (r < 0)
			pr_debug("cannot register the replaced mapping %#" PRIx64 "-%#" PRIx64
				 " of pid %d (%s): it counts as written whole", vmas[i].start, vmas[i].end,
				 h->t->pid, errstr(r));
		forget = r < 0;
		r = ckpt_range_set_add(h->out, vmas[i].start, vmas[i].end);
		if (r < 0)
			return r;
		h->st->new_pages += (vmas[i].end - vmas[i].start) / page_size();
		if (forget) {
			vmas[i].end = vmas[i].start;
			h->t->record_dirty = true;
		}
	}
	return 0;
}

/* The mappings scan_each emptied: not registered any more. */
static void drop_forgotten(struct ckpt_tracker *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nr_vmas; i++)
		if (t->vmas[i].end > t->vmas[i].start)
			t->vmas[n++] = t->vmas[i];
	t->nr_vmas = n;
}

static int scan_all(struct harvest *h, struct track_vma *vmas, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		size_t first = i;
		int r;

		/* A run: no unregistered mapping in between (holes are fine). */
		while (i + 1 < nr && h->map_idx[i + 1] == h->map_idx[i] + 1)
			i++;
		r = scan(h, vmas[first].start, vmas[i].end);
		if (r == -EPERM)
			r = scan_each(h, first, i, vmas);
		if (r < 0)
			return r;
	}
	return 0;
}

static void free_lists(struct track_vma *vmas, struct track_dirty_vma *dirty, size_t nr_dirty)
{
	for (size_t i = 0; i < nr_dirty; i++)
		free(dirty[i].name);
	free(dirty);
	free(vmas);
}

int ckpt_track_harvest(struct ckpt_tracker *t, struct ckpt_inject *inj,
		       struct ckpt_range_set *ret_dirty, struct ckpt_track_stats *ret_stats)
{
	_cleanup_vma_list_ struct ckpt_vma_list *maps = NULL;
	struct ckpt_track_stats st = { 0 };
	struct ckpt_range_set out;
	struct harvest h = { .t = t, .inj = inj, .out = &out, .st = &st, .pm = -1 };
	struct track_vma *vmas = NULL, *old_vmas;
	struct track_dirty_vma *dirty = NULL, *old_dirty;
	size_t nr = 0, nr_dirty = 0, old_nr, old_nr_dirty;
	uint64_t t0 = now_ns(), t_alive = 0, t_maps = 0, t_reg = 0, t_save = 0;
	int r;

	ckpt_range_set_init(&out);
	ckpt_range_set_init(&h.registered);
	if (t->uffd < 0)
		return -EBADF;
	r = check_alive(&h);
	if (r < 0)
		goto out;
	t_alive = now_ns();
	r = ckpt_proc_read_maps(ckpt_inject_task_proc(inj), 0, &maps);
	if (r < 0) {
		pr_err("cannot read the mappings of pid %d: %s", t->pid, errstr(r));
		goto out;
	}
	h.maps = maps;
	t_maps = now_ns();
	for (size_t i = 0; i < t->nr_vmas; i++)
		if ((r = ckpt_range_set_add(&h.registered, t->vmas[i].start, t->vmas[i].end)) < 0)
			goto out;
	ckpt_range_set_normalize(&h.registered);

	r = update_registration(&h, &vmas, &nr, &dirty, &nr_dirty);
	if (r < 0)
		goto out;
	t_reg = now_ns();
	/* Install the new lists and persist generation + 1 before scanning. */
	old_vmas = t->vmas, old_nr = t->nr_vmas;
	old_dirty = t->dirty, old_nr_dirty = t->nr_dirty;
	t->vmas = vmas, t->nr_vmas = t->cap_vmas = nr;
	t->dirty = dirty, t->nr_dirty = t->cap_dirty = nr_dirty;
	free_lists(old_vmas, old_dirty, old_nr_dirty);
	(void)old_nr;
	vmas = NULL;
	dirty = NULL;
	t->generation++;
	t->record_dirty = true;
	r = track_gen_save(t);
	if (r < 0)
		goto out;
	t_save = now_ns();

	/* The vector is all zero before a scan: what a failing one reported shows. */
	memset(t->vec, 0, t->vec_len * sizeof(*t->vec));
	h.pm = ckpt_proc_open_pagemap(ckpt_inject_task_proc(inj));
	if (h.pm < 0) {
		r = h.pm;
		pr_err("cannot open the pagemap of pid %d: %s", t->pid, errstr(r));
		goto out;
	}
	r = scan_all(&h, t->vmas, t->nr_vmas);
	if (r < 0) {
		pr_err("cannot scan the memory of pid %d: %s", t->pid, errstr(r));
		goto out;
	}
	drop_forgotten(t);
	for (size_t i = 0; i < t->nr_dirty; i++) {
		r = ckpt_range_set_add(&out, t->dirty[i].start, t->dirty[i].end);
		if (r < 0)
			goto out;
	}
	st.maps_always_dirty = t->nr_dirty;
	ckpt_range_set_normalize(&out);
	st.pages = ckpt_range_set_bytes(&out) / page_size();
	st.nr_ranges = out.nr;
	st.generation = t->generation;
	st.harvest_ns = now_ns() - t0;
	pr_debug("harvest of pid %d: verify %.3f ms, maps %.3f ms (%zu), registration %.3f ms, "
		 "record %.3f ms, scan %.3f ms, total %.3f ms", t->pid, (t_alive - t0) / 1e6,
		 (t_maps - t_alive) / 1e6, maps->nr, (t_reg - t_maps) / 1e6, (t_save - t_reg) / 1e6,
		 st.scan_ns / 1e6, st.harvest_ns / 1e6);
	*ret_dirty = out;
	ckpt_range_set_init(&out);
	if (ret_stats)
		*ret_stats = st;
out:
	if (h.pm >= 0)
		close(h.pm);
	free_lists(vmas, dirty, nr_dirty);
	free(h.map_idx);
	ckpt_range_set_done(&h.registered);
	ckpt_range_set_done(&out);
	return r;
}
