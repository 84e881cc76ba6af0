/* SPDX-License-Identifier: MIT */
/* libFuzzer: the pages.idx parser, then lookups in whatever it accepted. */
#include <stddef.h>
#include <stdint.h>

#include "image/image-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ckpt_image_index *idx = NULL;
	char why[256];

	if (ckpt_image_parse_index(data, size, why, sizeof(why), &idx) < 0)
		return 0;
	/* Accepted: every entry must be found at its first and last page, and not before. */
	for (size_t i = 0; i < idx->nr_entries; i++) {
		const struct ckpt_image_entry *e = &idx->entries[i];

		if (index_lookup(idx, e->addr) != e ||
		    index_lookup(idx, e->addr + (e->nr_pages - 1) * CKPT_IMAGE_PAGE_SIZE) != e)
			__builtin_trap();
		if (e->addr && index_lookup(idx, e->addr - CKPT_IMAGE_PAGE_SIZE) == e)
			__builtin_trap();
	}
	ckpt_image_index_free(idx);
	return 0;
}
