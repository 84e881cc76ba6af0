/* SPDX-License-Identifier: MIT */
/*
 * The compression pipeline of a writer. The producer (the thread that calls
 * ckpt_image_writer_add_data()) copies pages into the frame it fills; full
 * frames go to a ring of slots, worker threads compress them, and the thread
 * that completes the oldest outstanding frame appends every frame that is
 * ready, in order, to pages.zst. The ring is bounded: the producer waits for
 * a free slot (back-pressure), so memory stays at about
 * slots * (frame + compressed bound).
 *
 * Slot life: FREE -> FILLING (producer) -> QUEUED -> BUSY (a worker) ->
 * DONE -> written, FREE. Frame number s lives in slot s % nr_slots. A frame
 * that comes compressed already (a fold copies frames as they are) takes the
 * same path; its worker has nothing to do.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>

#include "image/image-internal.h"
#include "util/err.h"
#include "util/util.h"
#include "util/xxhash.h"

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_QUEUED, SLOT_BUSY, SLOT_DONE };

struct slot {
	enum slot_state state;
	uint64_t seq;
	uint32_t nr_pages;
	bool precompressed; /* pipeline_put_raw(): out already holds the frame */
	unsigned char *raw;
	unsigned char *out;
	size_t out_cap;
	size_t out_len;
};

struct worker {
	struct pipeline *p;
	ZSTD_CCtx *cctx;
	pthread_t tid;
	bool started;
};

struct pipeline {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast on every change of state */
	int fd;
	char *path;
	int level;
	unsigned int frame_pages;
	int nice;
	size_t out_cap;

	unsigned int nr_slots;
	struct slot *slots;
	unsigned int nr_workers;
	struct worker *workers;

	struct slot *cur;    /* being filled by the producer (no lock needed) */
	uint64_t next_seq;   /* next frame number the producer starts */
	uint64_t next_take;  /* next frame a worker compresses */
	uint64_t next_write; /* next frame appended to the file */
	bool writing;        /* a thread is appending */
	bool stop;           /* no more frames will come */
	int err;
	char errmsg[WHY_LEN];

	/* Under the lock; the hash only by the appending thread. */
	struct ckpt_image_frame *frames;
	size_t nr_frames, cap_frames;
	uint64_t bytes;
	struct xxh64_state hash;
};

/* With the lock held. The first error wins. */
static void fail(struct pipeline *p, int r, const char *msg)
{
	if (!p->err) {
		p->err = r;
		snprintf(p->errmsg, sizeof(p->errmsg), "%s", msg);
	}
	pthread_cond_broadcast(&p->cond);
}

static int fail_copy(struct pipeline *p, char *why, size_t whylen)
{
	return why_set(why, whylen, p->err, "%s", p->errmsg);
}

/* Append every frame that is ready, in order. With the lock held. */
static void drain(struct pipeline *p)
{
	if (p->writing)
		return;
	p->writing = true;
	for (;;) {
		struct slot *s = &p->slots[p->next_write % p->nr_slots];
		char msg[WHY_LEN];
		int r;

		if (p->err || s->state != SLOT_DONE || s->seq != p->next_write)
			break;
		pthread_mutex_unlock(&p->lock);
		r = write_all(p->fd, s->out, s->out_len);
		if (r == 0)
			xxh64_update(&p->hash, s->out, s->out_len);
		pthread_mutex_lock(&p->lock);
		if (r == 0)
			r = GROW(p->frames, p->cap_frames, p->nr_frames + 1);
		if (r < 0) {
			snprintf(msg, sizeof(msg), "cannot write '%s': %s", p->path, strerror(-r));
			fail(p, r, msg);
			break;
		}
		p->frames[p->nr_frames++] = (struct ckpt_image_frame){
			.offset = p->bytes,
			.csize = s->out_len,
			.usize = (uint64_t)s->nr_pages * CKPT_IMAGE_PAGE_SIZE,
			.nr_pages = s->nr_pages,
		};
		p->bytes += s->out_len;
		s->state = SLOT_FREE;
		p->next_write++;
		pthread_cond_broadcast(&p->cond);
	}
	p->writing = false;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pipeline *p = w->p;

	/* Background work (continuous checkpoints): let the process keep its CPU. */
	if (p->nice)
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(), p->nice);

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct slot *s = &p->slots[p->next_take % p->nr_slots];
		long n;

		if (p->err)
			break;
		if (s->state == SLOT_QUEUED && s->seq == p->next_take) {
			s->state = SLOT_BUSY;
			p->next_take++;
			pthread_mutex_unlock(&p->lock);
			if (s->precompressed)
				n = (long)s->out_len;
			else
				n = frame_encode(w->cctx, p->level, s->raw,
						 (size_t)s->nr_pages * CKPT_IMAGE_PAGE_SIZE, s->out,
						 s->out_cap);
			pthread_mutex_lock(&p->lock);
			if (n < 0) {
				char msg[WHY_LEN];

				snprintf(msg, sizeof(msg), "cannot compress frame %llu of '%s': %s",
					 (unsigned long long)s->seq, p->path, strerror((int)-n));
				fail(p, (int)n, msg);
				break;
			}
			s->out_len = (size_t)n;
			s->state = SLOT_DONE;
			drain(p);
			pthread_cond_broadcast(&p->cond);
			continue;
		}
		if (p->stop && p->next_take == p->next_seq)
			break;
		pthread_cond_wait(&p->cond, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void stop_workers(struct pipeline *p, int err)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	if (err && !p->err)
		fail(p, err, "cancelled");
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned int i = 0; i < p->nr_workers; i++) {
		if (p->workers[i].started)
			pthread_join(p->workers[i].tid, NULL);
		p->workers[i].started = false;
	}
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	if (p->workers) {
		stop_workers(p, -ECANCELED);
		for (unsigned int i = 0; i < p->nr_workers; i++)
			ZSTD_freeCCtx(p->workers[i].cctx);
	}
	if (p->slots)
		for (unsigned int i = 0; i < p->nr_slots; i++) {
			free(p->slots[i].raw);
			free(p->slots[i].out);
		}
	free(p->slots);
	free(p->workers);
	free(p->frames);
	free(p->path);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static int start_workers(struct pipeline *p)
{
	sigset_t all, old;
	int r = 0;

	/* Workers take no signals: the program's handlers run in its own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned int i = 0; i < p->nr_workers; i++) {
		r = -pthread_create(&p->workers[i].tid, NULL, worker_main, &p->workers[i]);
		if (r < 0)
			break;
		p->workers[i].started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

int pipeline_new(int fd, const char *path, int level, unsigned int frame_pages,
		 unsigned int threads, int nice, struct pipeline **ret)
{
	struct pipeline *p;
	size_t raw_size = (size_t)frame_pages * CKPT_IMAGE_PAGE_SIZE;
	int r;

	if (!frame_pages || frame_pages > CKPT_IMAGE_FRAME_PAGES_MAX || !threads)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->fd = fd;
	p->level = level;
	p->frame_pages = frame_pages;
	p->nice = nice;
	p->out_cap = frame_bound(raw_size);
	p->nr_workers = threads;
	p->nr_slots = 2 * threads + 2;
	xxh64_init(&p->hash, 0);
	p->path = strdup(path);
	p->slots = calloc(p->nr_slots, sizeof(*p->slots));
	p->workers = calloc(p->nr_workers, sizeof(*p->workers));
	if (!p->path || !p->slots || !p->workers) {
		pipeline_free(p);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < p->nr_slots; i++) {
		p->slots[i].raw = malloc(raw_size);
		p->slots[i].out = malloc(p->out_cap);
		p->slots[i].out_cap = p->out_cap;
		if (!p->slots[i].raw || !p->slots[i].out) {
			pipeline_free(p);
			return -ENOMEM;
		}
	}
	for (unsigned int i = 0; i < p->nr_workers; i++) {
		p->workers[i].p = p;
		p->workers[i].cctx = ZSTD_createCCtx();
		if (!p->workers[i].cctx) {
			pipeline_free(p);
			return -ENOMEM;
		}
		r = frame_cctx_setup(p->workers[i].cctx, level);
		if (r < 0) {
			pipeline_free(p);
			return r;
		}
	}
	r = start_workers(p);
	if (r < 0) {
		pipeline_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

static void submit(struct pipeline *p)
{
	pthread_mutex_lock(&p->lock);
	p->cur->state = SLOT_QUEUED;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	p->cur = NULL;
}

/* Wait for the slot of the next frame and make it the producer's. */
static int take_slot(struct pipeline *p, struct slot **ret, char *why, size_t whylen)
{
	struct slot *s;

	pthread_mutex_lock(&p->lock);
	if (p->next_seq >= UINT32_MAX) {
		pthread_mutex_unlock(&p->lock);
		return why_set(why, whylen, -EFBIG, "cannot write '%s': too many frames", p->path);
	}
	s = &p->slots[p->next_seq % p->nr_slots];
	while (s->state != SLOT_FREE && !p->err)
		pthread_cond_wait(&p->cond, &p->lock);
	if (p->err) {
		int r = fail_copy(p, why, whylen);

		pthread_mutex_unlock(&p->lock);
		return r;
	}
	s->state = SLOT_FILLING;
	s->seq = p->next_seq++;
	s->nr_pages = 0;
	s->precompressed = false;
	pthread_mutex_unlock(&p->lock);
	*ret = s;
	return 0;
}

int pipeline_put(struct pipeline *p, const void *page, uint32_t *ret_frame,
		 uint32_t *ret_frame_page, char *why, size_t whylen)
{
	struct slot *s = p->cur;
	int r;

	if (!s) {
		r = take_slot(p, &s, why, whylen);
		if (r < 0)
			return r;
		p->cur = s;
	}
	memcpy(s->raw + (size_t)s->nr_pages * CKPT_IMAGE_PAGE_SIZE, page, CKPT_IMAGE_PAGE_SIZE);
	*ret_frame = (uint32_t)s->seq;
	*ret_frame_page = s->nr_pages++;
	if (s->nr_pages == p->frame_pages)
		submit(p);
	return 0;
}

int pipeline_put_raw(struct pipeline *p, int fd, uint64_t off, size_t csize, uint32_t nr_pages,
		     uint32_t *ret_frame, char *why, size_t whylen)
{
	struct slot *s;
	int r;

	if (!nr_pages || nr_pages > CKPT_IMAGE_FRAME_PAGES_MAX || !csize ||
	    csize > frame_bound((size_t)nr_pages * CKPT_IMAGE_PAGE_SIZE))
		return why_set(why, whylen, -EINVAL, "cannot copy a frame of %zu bytes, %u pages into '%s'",
			       csize, nr_pages, p->path);
	if (p->cur)
		submit(p); /* the partial frame goes first: frames stay in order */
	r = take_slot(p, &s, why, whylen);
	if (r < 0)
		return r;
	if (s->out_cap < csize) {
		unsigned char *nb = realloc(s->out, csize);

		if (!nb)
			r = why_set(why, whylen, -ENOMEM, "cannot copy a frame into '%s': %s",
				    p->path, strerror(ENOMEM));
		else {
			s->out = nb;
			s->out_cap = csize;
		}
	}
	if (r == 0) {
		r = pread_exact(fd, s->out, csize, off);
		if (r == -EBADMSG)
			why_set(why, whylen, r, "cannot copy a frame into '%s': its source is truncated",
				p->path);
		else if (r < 0)
			why_set(why, whylen, r, "cannot copy a frame into '%s': %s", p->path,
				strerror(-r));
	}
	s->precompressed = true;
	s->nr_pages = nr_pages;
	s->out_len = csize;
	p->cur = s;
	if (r < 0) {
		/* Leave the slot queued as an empty frame; the error ends the writer. */
		pthread_mutex_lock(&p->lock);
		fail(p, r, why && why[0] ? why : "cannot copy a frame");
		pthread_mutex_unlock(&p->lock);
		submit(p);
		return r;
	}
	*ret_frame = (uint32_t)s->seq;
	submit(p);
	return 0;
}

int pipeline_finish(struct pipeline *p, char *why, size_t whylen)
{
	int r = 0;

	if (p->cur)
		submit(p);
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	while (!p->err && p->next_write < p->next_seq)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
	stop_workers(p, 0);
	if (p->err)
		return fail_copy(p, why, whylen);
	if (fsync(p->fd) < 0) {
		r = neg_errno();
		return why_set(why, whylen, r, "cannot write '%s': %s", p->path, strerror(-r));
	}
	return 0;
}

void pipeline_progress(struct pipeline *p, uint64_t *ret_frames, uint64_t *ret_bytes)
{
	pthread_mutex_lock(&p->lock);
	*ret_frames = p->next_write;
	*ret_bytes = p->bytes;
	pthread_mutex_unlock(&p->lock);
}

const struct ckpt_image_frame *pipeline_frames(const struct pipeline *p, size_t *ret_nr)
{
	*ret_nr = p->nr_frames;
	return p->frames;
}

uint64_t pipeline_bytes(const struct pipeline *p)
{
	return p->bytes;
}

uint64_t pipeline_xxh64(const struct pipeline *p)
{
	return xxh64_digest(&p->hash);
}
