/* SPDX-License-Identifier: MIT */
/*
 * pages.zst: independent zstd frames, each with its content size and
 * content checksum. Level "none" writes the same kind of frame with raw
 * (stored) blocks, so that one decoder reads every file. Also the cache of
 * decompressed frames of a reader.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd_errors.h>

#include "image/image-internal.h"
#include "util/err.h"
#include "util/util.h"
#include "util/xxhash.h"

#define ZSTD_MAGIC 0xFD2FB528u
#define RAW_BLOCK_MAX (128u << 10)

static size_t raw_frame_size(size_t usize)
{
	size_t blocks = (usize + RAW_BLOCK_MAX - 1) / RAW_BLOCK_MAX;

	/* magic, descriptor, 4-byte content size, block headers, data, checksum */
	return 4 + 1 + 4 + 3 * (blocks ? blocks : 1) + usize + 4;
}

size_t frame_bound(size_t usize)
{
	return MAX(ZSTD_compressBound(usize), raw_frame_size(usize));
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/*
 * A zstd frame of raw blocks (RFC 8878 section 3.1.1): single segment,
 * 4-byte content size, content checksum = low 32 bits of XXH64(content).
 */
static long raw_encode(const void *src, size_t usize, void *dst, size_t cap)
{
	const unsigned char *in = src;
	unsigned char *p = dst;
	size_t left = usize;

	if (usize > UINT32_MAX || cap < raw_frame_size(usize))
		return -EINVAL;
	put_le(p, ZSTD_MAGIC, 4);
	/* FCS_Field_Size 2 (4 bytes), Single_Segment, Content_Checksum. */
	p[4] = 2u << 6 | 1u << 5 | 1u << 2;
	put_le(p + 5, usize, 4);
	p += 9;
	do {
		size_t n = MIN(left, (size_t)RAW_BLOCK_MAX);
		uint32_t last = n == left;

		/* Block_Size << 3 | Block_Type raw (0) << 1 | Last_Block */
		put_le(p, (uint32_t)n << 3 | last, 3);
		memcpy(p + 3, in, n);
		p += 3 + n;
		in += n;
		left -= n;
	} while (left);
	put_le(p, (uint32_t)xxh64(src, usize, 0), 4);
	p += 4;
	return (long)(p - (unsigned char *)dst);
}

int frame_cctx_setup(ZSTD_CCtx *cctx, int level)
{
	size_t r;

	if (level == CKPT_IMAGE_LEVEL_NONE)
		return 0;
	r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
	return ZSTD_isError(r) ? -EINVAL : 0;
}

long frame_encode(ZSTD_CCtx *cctx, int level, const void *src, size_t usize, void *dst, size_t cap)
{
	size_t n;

	if (level == CKPT_IMAGE_LEVEL_NONE)
		return raw_encode(src, usize, dst, cap);
	n = ZSTD_compress2(cctx, dst, cap, src, usize);
	if (ZSTD_isError(n))
		return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
	return (long)n;
}

int frame_decode(ZSTD_DCtx *dctx, const void *src, size_t csize, void *dst, size_t usize,
		 char *why, size_t whylen)
{
	const unsigned char *p = src;
	unsigned long long content;
	size_t n;

	/* Only the stable API of libzstd: read the frame header descriptor by hand. */
	if (csize < 6 || (p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24) != ZSTD_MAGIC)
		return why_set(why, whylen, -EBADMSG, "not a zstd frame");
	if (!(p[4] & 1u << 2))
		return why_set(why, whylen, -EBADMSG, "frame without a content checksum");
	if (p[4] & 3u)
		return why_set(why, whylen, -EBADMSG, "frame needs a dictionary");
	content = ZSTD_getFrameContentSize(src, csize);
	if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN)
		return why_set(why, whylen, -EBADMSG, "frame without a valid content size");
	if (content != usize)
		return why_set(why, whylen, -EBADMSG, "frame content size %llu, expected %zu",
			       content, usize);
	n = ZSTD_findFrameCompressedSize(src, csize);
	if (ZSTD_isError(n))
		return why_set(why, whylen, -EBADMSG, "corrupt frame (%s)", ZSTD_getErrorName(n));
	if (n != csize)
		return why_set(why, whylen, -EBADMSG, "frame is %zu bytes, the index says %zu", n,
			       csize);
	ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
	n = ZSTD_decompressDCtx(dctx, dst, usize, src, csize);
	if (ZSTD_isError(n)) {
		if (ZSTD_getErrorCode(n) == ZSTD_error_checksum_wrong)
			return why_set(why, whylen, -EBADMSG, "content checksum mismatch");
		return why_set(why, whylen, -EBADMSG, "corrupt frame (%s)", ZSTD_getErrorName(n));
	}
	if (n != usize)
		return why_set(why, whylen, -EBADMSG, "frame holds %zu bytes, expected %zu", n, usize);
	return 0;
}

int pread_exact(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return neg_errno();
		}
		if (n == 0)
			return -EBADMSG;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- cache of decompressed frames ---- */

int frame_cache_init(struct frame_cache *c, unsigned int nr)
{
	memset(c, 0, sizeof(*c));
	c->nr = nr ? nr : CKPT_IMAGE_CACHE_FRAMES_DEFAULT;
	c->slots = calloc(c->nr, sizeof(*c->slots));
	c->dctx = ZSTD_createDCtx();
	if (!c->slots || !c->dctx) {
		frame_cache_done(c);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < c->nr; i++)
		c->slots[i].frame = -1;
	return 0;
}

void frame_cache_done(struct frame_cache *c)
{
	if (c->slots)
		for (unsigned int i = 0; i < c->nr; i++)
			free(c->slots[i].buf);
	free(c->slots);
	free(c->cbuf);
	ZSTD_freeDCtx(c->dctx);
	memset(c, 0, sizeof(*c));
}

static int reserve(void **buf, size_t *cap, size_t need)
{
	void *nb;

	if (*cap >= need)
		return 0;
	nb = realloc(*buf, need);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap = need;
	return 0;
}

int frame_cache_get(struct frame_cache *c, int fd, const struct ckpt_image_index *idx,
		    uint32_t frame, const void **ret, char *why, size_t whylen)
{
	const struct ckpt_image_frame *f;
	struct frame_slot *victim = NULL;
	int r;

	for (unsigned int i = 0; i < c->nr; i++) {
		struct frame_slot *s = &c->slots[i];

		if (s->frame == (int64_t)frame) {
			s->stamp = ++c->clock;
			c->stats.hits++;
			*ret = s->buf;
			return 0;
		}
		if (!victim || s->stamp < victim->stamp)
			victim = s;
	}
	if (frame >= idx->nr_frames)
		return why_set(why, whylen, -EINVAL, "frame %" PRIu32 " does not exist", frame);
	f = &idx->frames[frame];
	if (reserve(&c->cbuf, &c->ccap, f->csize) < 0 ||
	    reserve(&victim->buf, &victim->cap, f->usize) < 0)
		return -ENOMEM;
	victim->frame = -1;
	victim->stamp = 0;
	r = pread_exact(fd, c->cbuf, f->csize, f->offset);
	if (r == -EBADMSG)
		return why_set(why, whylen, r, "frame %" PRIu32 " at offset %" PRIu64 ": truncated",
			       frame, f->offset);
	if (r < 0)
		return why_set(why, whylen, r, "frame %" PRIu32 " at offset %" PRIu64 ": %s", frame,
			       f->offset, strerror(-r));
	r = frame_decode(c->dctx, c->cbuf, f->csize, victim->buf, f->usize, why, whylen);
	if (r < 0) {
		why_prefix(why, whylen, "frame %" PRIu32 " at offset %" PRIu64 ": ", frame,
			   f->offset);
		return r;
	}
	victim->frame = frame;
	victim->stamp = ++c->clock;
	c->stats.decoded++;
	*ret = victim->buf;
	return 0;
}
