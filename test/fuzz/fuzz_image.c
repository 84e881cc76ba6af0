/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: a whole checkpoint through the public reader. Input: u32
 * little-endian length of pages.idx, pages.idx, then pages.zst. The harness
 * writes a valid inventory.json with the right checksums (the inventory
 * parser has its own target), then opens the checkpoint, reads pages one
 * by one, iterates the chain and verifies.
 */
#include <endian.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/log.h>

#include "image/image-internal.h"
#include "util/util.h"
#include "util/fs.h"
#include "util/xxhash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], ck[96];

static void quiet(enum ckpt_log_level level, const char *area, const char *msg, void *ud)
{
	(void)level, (void)area, (void)msg, (void)ud;
}

static void put(const char *name, const void *buf, size_t len)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", ck, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (len && write(fd, buf, len) != (ssize_t)len))
		__builtin_trap();
	close(fd);
}

static void cleanup(void)
{
	(void)rm_rf_at(AT_FDCWD, dir);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/dev/shm/ckpt-fuzz-%d", (int)getpid());
	if (access("/dev/shm", W_OK) != 0)
		snprintf(dir, sizeof(dir), "/tmp/ckpt-fuzz-%d", (int)getpid());
	snprintf(ck, sizeof(ck), "%s/ck", dir);
	(void)rm_rf_at(AT_FDCWD, dir);
	if (mkdir(dir, 0700) < 0 || mkdir(ck, 0700) < 0)
		__builtin_trap();
	if (!getenv("FUZZ_VERBOSE"))
		ckpt_log_set_sink(quiet, NULL);
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ckpt_image_file files[2] = {
		{ .name = (char *)INDEX_NAME },
		{ .name = (char *)PAGES_NAME },
	};
	struct ckpt_image_inventory inv = {
		.format_version = CKPT_IMAGE_FORMAT_VERSION,
		.ckpt_version = (char *)"fuzz",
		.created_utc = "1970-01-01T00:00:00.000000000Z",
		.id = { { 1 } },
		.identity = { .pid = 1, .start_time = 1,
			      .boot_id = "0b7c3c1e-5a55-4c1a-9e1e-2f3a4b5c6d7e", .exe = "/fuzz" },
		.nr_files = 2,
		.files = files,
	};
	struct ckpt_image_open_opts opts = { .cache_frames = 2 };
	struct ckpt_chain *c;
	char *text;
	size_t len, ilen;
	uint32_t l32;

	if (!dir[0])
		setup();
	if (size < 4)
		return 0;
	memcpy(&l32, data, 4);
	ilen = MIN((size_t)le32toh(l32), size - 4);
	files[0].xxh64 = xxh64(data + 4, ilen, 0);
	files[1].xxh64 = xxh64(data + 4 + ilen, size - 4 - ilen, 0);
	put(INDEX_NAME, data + 4, ilen);
	put(PAGES_NAME, data + 4 + ilen, size - 4 - ilen);
	if (inventory_serialize(&inv, &text, &len) < 0)
		__builtin_trap();
	put(INVENTORY_NAME, text, len);
	free(text);

	if (ckpt_chain_open(ck, &opts, &c) == 0) {
		struct ckpt_image *img = ckpt_chain_image(c, 0);
		const struct ckpt_image_index *idx = ckpt_image_index(img);
		struct ckpt_chain_iter *it;
		struct ckpt_chain_range rg;
		static unsigned char page[CKPT_IMAGE_PAGE_SIZE];

		for (size_t i = 0; i < idx->nr_entries && i < 64; i++) {
			const struct ckpt_image_entry *e = &idx->entries[i];

			(void)ckpt_chain_read_page(c, e->addr, page);
			(void)ckpt_chain_read_page(c, e->addr + (e->nr_pages - 1) * CKPT_IMAGE_PAGE_SIZE,
						   page);
		}
		if (ckpt_chain_iter_new(c, &it) == 0) {
			while (ckpt_chain_iter_next(it, &rg) == 1)
				if (rg.kind == CKPT_PAGE_DATA)
					page[0] ^= ((const unsigned char *)rg.data)[rg.nr_pages *
										CKPT_IMAGE_PAGE_SIZE - 1];
			ckpt_chain_iter_free(it);
		}
		(void)ckpt_image_verify(img);
		ckpt_chain_close(c);
	}
	return 0;
}
