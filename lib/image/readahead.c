/* SPDX-License-Identifier: MIT */
/*
 * Frames decoded ahead, on a thread of their own: a chain iterator that is
 * read from start to end (an eager restore) knows every frame it will need
 * and in which order, so the next ones are read and decompressed while its
 * caller writes the pages of the current one. A ring of RING slots: use u
 * goes into slot u % RING once the caller has moved past use u - RING.
 */
#define LOG_AREA "image"
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "image/image-internal.h"
#include "util/log.h"
#include "util/util.h"

#define RING 4

struct ahead_slot {
	void *buf;
	size_t cap;
	int64_t use;          /* decoded for this use, -1: none yet */
	int err;
	char why[256];
};

struct frame_ahead {
	struct ckpt_chain *c;
	const struct frame_use *uses;
	size_t nr;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t consumed;      /* the caller holds this use; those before are free */
	bool stop;
	struct ahead_slot slot[RING];
	ZSTD_DCtx *dctx;
	void *cbuf;
	size_t ccap;
};

static int grow(void **buf, size_t *cap, size_t need)
{
	void *p;

	if (*cap >= need)
		return 0;
	p = realloc(*buf, need);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = need;
	return 0;
}

/* Read and decode use @u into @s (outside the lock: the slot is the worker's until marked). */
static void decode_use(struct frame_ahead *fa, size_t u, struct ahead_slot *s)
{
	struct ckpt_image *img = ckpt_chain_image(fa->c, fa->uses[u].img);
	const struct ckpt_image_frame *f;
	int r;

	s->why[0] = '\0';
	if (fa->uses[u].frame >= img->idx->nr_frames) {
		s->err = why_set(s->why, sizeof(s->why), -EINVAL, "frame %" PRIu32 " does not exist",
				 fa->uses[u].frame);
		return;
	}
	f = &img->idx->frames[fa->uses[u].frame];
	if (grow(&fa->cbuf, &fa->ccap, f->csize) < 0 || grow(&s->buf, &s->cap, f->usize) < 0) {
		s->err = -ENOMEM;
		return;
	}
	r = pread_exact(img->pages_fd, fa->cbuf, f->csize, f->offset);
	if (r < 0) {
		s->err = why_set(s->why, sizeof(s->why), r, "cannot read '%s/%s': frame %" PRIu32
				 " at offset %" PRIu64 ": %s", img->path, PAGES_NAME, fa->uses[u].frame,
				 f->offset, r == -EBADMSG ? "truncated" : strerror(-r));
		return;
	}
	r = frame_decode(fa->dctx, fa->cbuf, f->csize, s->buf, f->usize, s->why, sizeof(s->why));
	if (r < 0)
		why_prefix(s->why, sizeof(s->why), "cannot read '%s/%s': frame %" PRIu32 " at offset %"
			   PRIu64 ": ", img->path, PAGES_NAME, fa->uses[u].frame, f->offset);
	s->err = r;
}

static void *worker(void *arg)
{
	struct frame_ahead *fa = arg;

	for (size_t u = 0; u < fa->nr; u++) {
		struct ahead_slot *s = &fa->slot[u % RING];

		pthread_mutex_lock(&fa->lock);
		while (!fa->stop && u >= fa->consumed + RING)
			pthread_cond_wait(&fa->cond, &fa->lock);
		if (fa->stop) {
			pthread_mutex_unlock(&fa->lock);
			break;
		}
		pthread_mutex_unlock(&fa->lock);
		decode_use(fa, u, s);
		pthread_mutex_lock(&fa->lock);
		s->use = (int64_t)u;
		pthread_cond_broadcast(&fa->cond);
		pthread_mutex_unlock(&fa->lock);
		if (s->err < 0)
			break; /* the caller stops at it */
	}
	return NULL;
}

int frame_ahead_start(struct ckpt_chain *c, const struct frame_use *uses, size_t nr,
		      struct frame_ahead **ret)
{
	struct frame_ahead *fa = calloc(1, sizeof(*fa));

	if (!fa)
		return -ENOMEM;
	fa->c = c;
	fa->uses = uses;
	fa->nr = nr;
	fa->dctx = ZSTD_createDCtx();
	for (int i = 0; i < RING; i++)
		fa->slot[i].use = -1;
	pthread_mutex_init(&fa->lock, NULL);
	pthread_cond_init(&fa->cond, NULL);
	if (!fa->dctx || pthread_create(&fa->thread, NULL, worker, fa) != 0) {
		ZSTD_freeDCtx(fa->dctx);
		pthread_mutex_destroy(&fa->lock);
		pthread_cond_destroy(&fa->cond);
		free(fa);
		return -ENOMEM;
	}
	*ret = fa;
	return 0;
}

int frame_ahead_get(struct frame_ahead *fa, size_t u, const void **ret, char *why, size_t whylen)
{
	struct ahead_slot *s = &fa->slot[u % RING];
	int r;

	pthread_mutex_lock(&fa->lock);
	fa->consumed = u;
	pthread_cond_broadcast(&fa->cond);
	while (s->use != (int64_t)u)
		pthread_cond_wait(&fa->cond, &fa->lock);
	pthread_mutex_unlock(&fa->lock);
	r = s->err;
	if (r < 0)
		return why_set(why, whylen, r, "%s", s->why[0] ? s->why : strerror(-r));
	*ret = s->buf;
	return 0;
}

void frame_ahead_stop(struct frame_ahead *fa)
{
	if (!fa)
		return;
	pthread_mutex_lock(&fa->lock);
	fa->stop = true;
	pthread_cond_broadcast(&fa->cond);
	pthread_mutex_unlock(&fa->lock);
	pthread_join(fa->thread, NULL);
	for (int i = 0; i < RING; i++)
		free(fa->slot[i].buf);
	free(fa->cbuf);
	ZSTD_freeDCtx(fa->dctx);
	pthread_mutex_destroy(&fa->lock);
	pthread_cond_destroy(&fa->cond);
	free(fa);
}
