/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the inventory.json parser. What it accepts must survive a
 * round trip through the writer's serialiser unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/image-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct ckpt_image_inventory *a, const struct ckpt_image_inventory *b)
{
	if (a->format_version != b->format_version || strcmp(a->ckpt_version, b->ckpt_version) ||
	    a->created_ns != b->created_ns || strcmp(a->created_utc, b->created_utc) ||
	    a->kind != b->kind || !a->parent != !b->parent ||
	    !ckpt_image_id_equal(&a->id, &b->id) ||
	    (a->parent && (strcmp(a->parent, b->parent) ||
			   !ckpt_image_id_equal(&a->parent_id, &b->parent_id))) ||
	    !ckpt_image_identity_equal(&a->identity, &b->identity) ||
	    strcmp(a->identity.exe, b->identity.exe) || a->nr_files != b->nr_files)
		__builtin_trap();
	for (size_t i = 0; i < a->nr_files; i++)
		if (strcmp(a->files[i].name, b->files[i].name) || a->files[i].xxh64 != b->files[i].xxh64)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ckpt_image_inventory inv, again;
	char why[256], *text;
	size_t len;

	if (ckpt_image_parse_inventory((const char *)data, size, why, sizeof(why), &inv) < 0)
		return 0;
	if (inventory_serialize(&inv, &text, &len) < 0)
		__builtin_trap();
	if (ckpt_image_parse_inventory(text, len, why, sizeof(why), &again) < 0)
		__builtin_trap();
	same(&inv, &again);
	ckpt_image_inventory_done(&again);
	ckpt_image_inventory_done(&inv);
	free(text);
	return 0;
}
