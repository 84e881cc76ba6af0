/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the frame decoder of pages.zst. Byte 0 picks the expected
 * size (1 to 4 pages), the rest is the frame. Then the encoder: the input
 * as page data must come back unchanged from a stored and a level-1 frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/image-internal.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ZSTD_DCtx *dctx;
static ZSTD_CCtx *cctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t usize, bound;
	unsigned char *out, *frame;
	char why[256];
	long n;

	if (size < 1)
		return 0;
	if (!dctx) {
		dctx = ZSTD_createDCtx();
		cctx = ZSTD_createCCtx();
		if (!dctx || !cctx || frame_cctx_setup(cctx, 1) < 0)
			__builtin_trap();
	}
	usize = (size_t)(1 + data[0] % 4) * CKPT_IMAGE_PAGE_SIZE;
	out = malloc(usize);
	if (!out)
		return 0;
	(void)frame_decode(dctx, data + 1, size - 1, out, usize, why, sizeof(why));

	/* Round trips of the input, zero-padded to whole pages. */
	memset(out, 0, usize);
	memcpy(out, data + 1, MIN(size - 1, usize));
	bound = frame_bound(usize);
	frame = malloc(bound);
	if (frame) {
		static const int levels[] = { CKPT_IMAGE_LEVEL_NONE, 1 };
		unsigned char *back = malloc(usize);

		for (int i = 0; i < 2 && back; i++) {
			if (levels[i] == CKPT_IMAGE_LEVEL_NONE)
				n = frame_encode(NULL, levels[i], out, usize, frame, bound);
			else
				n = frame_encode(cctx, levels[i], out, usize, frame, bound);
			if (n <= 0 || (size_t)n > bound ||
			    frame_decode(dctx, frame, (size_t)n, back, usize, why, sizeof(why)) < 0 ||
			    memcmp(back, out, usize))
				__builtin_trap();
		}
		free(back);
		free(frame);
	}
	free(out);
	return 0;
}
