/* SPDX-License-Identifier: MIT */
/*
 * files.json, the kind-specific objects of signalfd, timerfd, inotify and
 * epoll fds (docs/STATE.md). Each is optional (checkpoints made before have
 * none: the judge then refuses the fd) and given only for its kind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state/state_fdkinds.h"
#include "util/util.h"

#define JR_MAX_WATCHES (1u << 20)     /* fs.inotify.max_user_watches is far below */
#define JR_MAX_TARGETS (1u << 22)

static void timerfd_to_json(struct jw *w, json_object *o, const struct ckpt_state_timerfd *t)
{
	jw_int(w, o, "clockid", t->clockid);
	jw_u64(w, o, "ticks", t->ticks);
	jw_int(w, o, "settime_flags", t->settime_flags);
	jw_int(w, o, "value_sec", t->value_sec);
	jw_int(w, o, "value_nsec", t->value_nsec);
	jw_int(w, o, "interval_sec", t->interval_sec);
	jw_int(w, o, "interval_nsec", t->interval_nsec);
}

void fdkind_to_json(struct jw *w, json_object *o, const struct ckpt_state_fd *f)
{
	const struct ckpt_state_fdkind *k = &f->k;
	json_object *x, *arr;

	if (!k->known)
		return;
	switch (f->kind) {
	case CKPT_STATE_FD_SIGNALFD:
		jw_u64(w, jw_obj(w, o, "signalfd"), "sigmask", k->sigmask);
		break;
	case CKPT_STATE_FD_TIMERFD:
		timerfd_to_json(w, jw_obj(w, o, "timerfd"), &k->timer);
		break;
	case CKPT_STATE_FD_INOTIFY:
		arr = jw_arr(w, jw_obj(w, o, "inotify"), "watches");
		for (size_t i = 0; i < k->nr_watches; i++) {
			const struct ckpt_state_inotify_watch *iw = &k->watches[i];

			x = jw_arr_obj(w, arr);
			jw_int(w, x, "wd", iw->wd);
			jw_u64(w, x, "ino", iw->ino);
			jw_int(w, x, "dev_major", iw->dev_major);
			jw_int(w, x, "dev_minor", iw->dev_minor);
			jw_int(w, x, "mask", iw->mask);
			jw_int(w, x, "ignored_mask", iw->ignored_mask);
			jw_int(w, x, "handle_type", iw->handle_type);
			jw_blob(w, x, "handle", iw->handle, iw->handle_bytes);
			if (iw->path)
				jw_str(w, x, "path", iw->path);
		}
		break;
	case CKPT_STATE_FD_EPOLL:
		arr = jw_arr(w, jw_obj(w, o, "epoll"), "targets");
		for (size_t i = 0; i < k->nr_targets; i++) {
			const struct ckpt_state_epoll_target *t = &k->targets[i];

			x = jw_arr_obj(w, arr);
			jw_int(w, x, "tfd", t->tfd);
			jw_int(w, x, "events", t->events);
			jw_u64(w, x, "data", t->data);
			jw_u64(w, x, "pos", t->pos);
			jw_u64(w, x, "ino", t->ino);
			jw_int(w, x, "sdev", t->sdev);
		}
		break;
	default:
		break;
	}
}

/* ---- reading ---- */

static int timerfd_from_json(struct jr *r, json_object *o, struct ckpt_state_timerfd *t)
{
	int k;

	if ((k = jr_int(r, o, "clockid", 0, 63, &t->clockid)) < 0 ||
	    (k = jr_u64(r, o, "ticks", &t->ticks)) < 0 ||
	    (k = jr_int(r, o, "settime_flags", 0, 3, &t->settime_flags)) < 0 ||
	    (k = jr_i64(r, o, "value_sec", 0, INT64_MAX, &t->value_sec)) < 0 ||
	    (k = jr_i64(r, o, "value_nsec", 0, 999999999, &t->value_nsec)) < 0 ||
	    (k = jr_i64(r, o, "interval_sec", 0, INT64_MAX, &t->interval_sec)) < 0 ||
	    (k = jr_i64(r, o, "interval_nsec", 0, 999999999, &t->interval_nsec)) < 0)
		return k;
	return 0;
}

static int watch_from_json(struct jr *r, json_object *o, struct ckpt_state_inotify_watch *iw)
{
	_cleanup_free_ void *h = NULL;
	json_object *x;
	size_t len = 0;
	int maj, min, k;

	if (!json_object_is_type(o, json_type_object))
		return jr_fail(r, NULL, "not an object");
	if ((k = jr_int(r, o, "wd", 1, INT32_MAX, &iw->wd)) < 0 ||
	    (k = jr_u64(r, o, "ino", &iw->ino)) < 0 ||
	    (k = jr_int(r, o, "dev_major", 0, 4095, &maj)) < 0 ||
	    (k = jr_int(r, o, "dev_minor", 0, 1048575, &min)) < 0 ||
	    (k = jr_u32(r, o, "mask", UINT32_MAX, &iw->mask)) < 0 ||
	    (k = jr_u32(r, o, "ignored_mask", UINT32_MAX, &iw->ignored_mask)) < 0 ||
	    (k = jr_int(r, o, "handle_type", INT32_MIN, INT32_MAX, &iw->handle_type)) < 0 ||
	    (k = jr_blob(r, o, "handle", CKPT_STATE_FHANDLE_MAX, &h, &len)) < 0)
		return k;
	iw->dev_major = (unsigned int)maj;
	iw->dev_minor = (unsigned int)min;
	iw->handle_bytes = (uint32_t)len;
	if (len)
		memcpy(iw->handle, h, len);
	if (json_object_object_get_ex(o, "path", &x) &&
	    (k = jr_str(r, o, "path", JR_MAX_STR, &iw->path)) < 0)
		return k;
	return 0;
}

static int target_from_json(struct jr *r, json_object *o, struct ckpt_state_epoll_target *t)
{
	int k;

	if (!json_object_is_type(o, json_type_object))
		return jr_fail(r, NULL, "not an object");
	if ((k = jr_int(r, o, "tfd", 0, INT32_MAX, &t->tfd)) < 0 ||
	    (k = jr_u32(r, o, "events", UINT32_MAX, &t->events)) < 0 ||
	    (k = jr_u64(r, o, "data", &t->data)) < 0 || (k = jr_u64(r, o, "pos", &t->pos)) < 0 ||
	    (k = jr_u64(r, o, "ino", &t->ino)) < 0 ||
	    (k = jr_u32(r, o, "sdev", UINT32_MAX, &t->sdev)) < 0)
		return k;
	return 0;
}

/* The array @key of @o: @nr elements of @size, each read by @one. */
static int array_from_json(struct jr *r, json_object *o, const char *key, size_t max, size_t size,
			   void **ret, size_t *ret_nr,
			   int (*one)(struct jr *, json_object *, void *))
{
	json_object *arr;
	size_t nr, mark;
	char *v;
	int k = jr_arr(r, o, key, max, &arr, &nr);

	if (k < 0)
		return k;
	v = nr ? calloc(nr, size) : NULL;
	if (nr && !v)
		return -ENOMEM;
	*ret = v;
	for (size_t i = 0; i < nr; i++) {
		mark = jr_enter(r, key);
		jr_enter_idx(r, i);
		*ret_nr = i + 1;
		k = one(r, json_object_array_get_idx(arr, i), v + i * size);
		if (k < 0)
			return k;
		jr_leave(r, mark);
	}
	return 0;
}

static int one_watch(struct jr *r, json_object *o, void *p)
{
	return watch_from_json(r, o, p);
}

static int one_target(struct jr *r, json_object *o, void *p)
{
	return target_from_json(r, o, p);
}

int fdkind_from_json(struct jr *r, json_object *o, struct ckpt_state_fd *f)
{
	static const struct {
		const char *key;
		enum ckpt_state_fd_kind kind;
	} parts[] = {
		{ "signalfd", CKPT_STATE_FD_SIGNALFD },
		{ "timerfd", CKPT_STATE_FD_TIMERFD },
		{ "inotify", CKPT_STATE_FD_INOTIFY },
		{ "epoll", CKPT_STATE_FD_EPOLL },
	};
	struct ckpt_state_fdkind *kd = &f->k;

	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		json_object *x;
		size_t mark;
		void *v = NULL;
		int k = jr_opt(r, o, parts[i].key, json_type_object, &x);

		if (k <= 0) {
			if (k < 0)
				return k;
			continue;
		}
		if (f->kind != parts[i].kind)
			return jr_fail(r, parts[i].key, "not expected for an fd of kind %s",
				       ckpt_state_fd_kind_name(f->kind));
		mark = jr_enter(r, parts[i].key);
		switch (f->kind) {
		case CKPT_STATE_FD_SIGNALFD:
			k = jr_u64(r, x, "sigmask", &kd->sigmask);
			break;
		case CKPT_STATE_FD_TIMERFD:
			k = timerfd_from_json(r, x, &kd->timer);
			break;
		case CKPT_STATE_FD_INOTIFY:
			k = array_from_json(r, x, "watches", JR_MAX_WATCHES, sizeof(*kd->watches), &v,
					    &kd->nr_watches, one_watch);
			kd->watches = v;
			for (size_t j = 1; k == 0 && j < kd->nr_watches; j++)
				if (kd->watches[j].wd <= kd->watches[j - 1].wd)
					k = jr_fail(r, "watches", "wd %d after %d: they must ascend",
						    kd->watches[j].wd, kd->watches[j - 1].wd);
			break;
		default:
			k = array_from_json(r, x, "targets", JR_MAX_TARGETS, sizeof(*kd->targets), &v,
					    &kd->nr_targets, one_target);
			kd->targets = v;
			break;
		}
		if (k < 0)
			return k;
		jr_leave(r, mark);
		kd->known = true;
	}
	return 0;
}
