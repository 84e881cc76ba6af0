/* SPDX-License-Identifier: MIT */
/*
 * Internals of lib/image, shared by its files (and the fuzz targets).
 *
 * Error messages: internal functions do not log. They return -errno and put
 * a complete message ("cannot read 'DIR/pages.idx': ...") in a caller's
 * buffer (@why, @whylen; NULL allowed); the public function logs it once.
 */
#ifndef CKPT_IMAGE_INTERNAL_H
#define CKPT_IMAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <zstd.h>

#include <ckpt/image.h>

#include "util/ids.h"

#define INVENTORY_NAME "inventory.json"
#define INDEX_NAME "pages.idx"
#define PAGES_NAME "pages.zst"

#define INVENTORY_MAX (1u << 20)  /* bytes of inventory.json we accept */
#define DOC_MAX (1u << 30)        /* bytes of any other metadata file */
#define WHY_LEN 2048
#define CHAIN_MAX 4096            /* checkpoints in one chain */
#define TREE_DEPTH_MAX CKPT_IMAGE_INHERIT_DEPTH_MAX
#define CHAIN_IMAGES_MAX (4 * CHAIN_MAX) /* checkpoints one chain opens, its parents' included */
#define PAGE_SHIFT 12

/*
 * pages.idx, all little-endian:
 *   header  64 bytes   magic "CKPTIDX\0", u32 version, u32 page size,
 *                      u64 entries, u64 frames, u64 size of pages.zst,
 *                      u64 data pages, 16 reserved zero bytes
 *   entries 32 bytes each, sorted by address:
 *                      u64 addr, u64 pages, u32 kind, u32 frame,
 *                      u32 first page in frame, u32 reserved zero
 *   frames  32 bytes each, in file order:
 *                      u64 offset, u64 compressed size,
 *                      u64 uncompressed size, u32 pages, u32 reserved zero
 */
#define IDX_MAGIC "CKPTIDX\0"
#define IDX_MAGIC_LEN 8
#define IDX_VERSION 2 /* 2: frames may hold pages no entry lists */
#define IDX_VERSION_INHERIT 3 /* 3: CKPT_PAGE_INHERIT entries (written only when there are some) */
#define IDX_HEADER_SIZE 64
#define IDX_ENTRY_SIZE 32
#define IDX_FRAME_SIZE 32

/* ---- messages ---- */

/* printf into @why (when not NULL) and return @r. */
int why_set(char *why, size_t whylen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Prefix the message already in @why with a printf'ed context. */
void why_prefix(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- names, checksums, paths ---- */

#define XXH64_STR_LEN 22 /* "xxh64:" + 16 hex digits */
void xxh64_format(uint64_t h, char buf[XXH64_STR_LEN + 1]);
int xxh64_parse(const char *s, uint64_t *ret) __must_check;
/* A metadata file name: [A-Za-z0-9._-]+, not starting with '.', at most 255 bytes. */
bool file_name_valid(const char *name);
bool file_name_reserved(const char *name);
/* "a/b/" -> "a" and "b"; "b" -> "." and "b". -EINVAL for "", ".", "..", "/". */
int path_split(const char *path, char **ret_dir, char **ret_base) __must_check;
/* @rel relative to the directory @dir, with "." and ".." folded lexically (for messages). */
char *path_join(const char *dir, const char *rel);
/* The last component of @path (no trailing slashes), in @buf. */
const char *path_base(const char *path, char *buf, size_t len);

/* Read a regular file of at most @max bytes, NUL-terminated. -EFBIG beyond. */
int read_file_max(int dirfd, const char *name, size_t max, void **ret,
		  size_t *ret_len) __must_check;
/* Parse JSON strictly: one value, only whitespace after it. */
int json_parse_buf(const char *buf, size_t len, char *why, size_t whylen,
		   struct json_object **ret) __must_check;
/* Serialise @obj the way every checkpoint file is written (pretty, trailing newline). */
int json_to_buf(struct json_object *obj, char **ret, size_t *ret_len) __must_check;

/* ---- ids ---- */

bool id_is_zero(const struct ckpt_image_id *id);
/* 128 random bits, never all zero. */
int id_random(struct ckpt_image_id *ret) __must_check;

/* ---- inventory ---- */

int identity_validate(const struct ckpt_image_identity *id, char *why, size_t whylen) __must_check;
int identity_copy(struct ckpt_image_identity *dst,
		  const struct ckpt_image_identity *src) __must_check;
void format_utc(int64_t ns, char buf[40]);
/* inventory.json text for @inv (files need not be sorted). */
int inventory_serialize(const struct ckpt_image_inventory *inv, char **ret,
			size_t *ret_len) __must_check;
const struct ckpt_image_file *inventory_find(const struct ckpt_image_inventory *inv,
					     const char *name);

/* ---- index ---- */

/*
 * Sort @e by address, refuse overlaps (-EINVAL, @why names the address)
 * and merge neighbours: adjacent ranges of the same kind, and DATA ranges
 * that continue each other inside one frame.
 */
int entries_normalize(struct ckpt_image_entry *e, size_t *nr, char *why,
		      size_t whylen) __must_check;
/* True when @b continues @a and both can be one entry. */
bool entries_mergeable(const struct ckpt_image_entry *a, const struct ckpt_image_entry *b);
int index_serialize(const struct ckpt_image_entry *e, size_t nr, const struct ckpt_image_frame *f,
		    size_t nf, uint64_t pages_size, void **ret, size_t *ret_len) __must_check;
/*
 * Lay @a (newer) over @b (older); both sorted and without overlaps: the
 * result holds @a whole and the parts of @b that @a does not cover, sorted,
 * neighbours merged. DATA pieces of @b keep pointing at their pages.
 */
int entries_overlay(const struct ckpt_image_entry *a, size_t na, const struct ckpt_image_entry *b,
		    size_t nb, struct ckpt_image_entry **ret, size_t *ret_nr) __must_check;
/* Cut sorted entries @e to the sorted, disjoint @ranges, in place. */
int entries_clip(struct ckpt_image_entry **e, size_t *nr, const struct ckpt_range *ranges,
		 size_t nranges) __must_check;
/* The entry that holds @addr, or NULL. */
const struct ckpt_image_entry *index_lookup(const struct ckpt_image_index *idx, uint64_t addr);
/*
 * ckpt_image_parse_index() of a malloc'ed @*buf the index may take: then
 * *@buf is NULL and its entries are used where they lie.
 */
int index_parse_take(void **buf, size_t len, char *why, size_t whylen,
		     struct ckpt_image_index **ret) __must_check;

static inline uint64_t entry_end(const struct ckpt_image_entry *e)
{
	return e->addr + (e->nr_pages << PAGE_SHIFT);
}

/* ---- frames ---- */

/* Largest frame encode() can produce for @usize bytes. */
size_t frame_bound(size_t usize);
/* Settings of a compression context for frames: level, checksum, content size. */
int frame_cctx_setup(ZSTD_CCtx *cctx, int level) __must_check;
/*
 * One zstd frame of @src into @dst (at least frame_bound() bytes). Level
 * CKPT_IMAGE_LEVEL_NONE writes raw blocks. Returns the size or -errno.
 */
long frame_encode(ZSTD_CCtx *cctx, int level, const void *src, size_t usize, void *dst,
		  size_t cap);
/*
 * Decode one frame: it must be exactly one zstd frame of @csize bytes, with
 * a content size of @usize and a content checksum, which zstd verifies.
 * -EBADMSG otherwise, with the cause in @why.
 */
int frame_decode(ZSTD_DCtx *dctx, const void *src, size_t csize, void *dst, size_t usize,
		 char *why, size_t whylen) __must_check;

struct frame_slot {
	int64_t frame; /* -1: empty */
	uint64_t stamp;
	void *buf;
	size_t cap;
};

struct frame_cache {
	unsigned int nr;
	struct frame_slot *slots;
	uint64_t clock;
	void *cbuf;    /* compressed bytes */
	size_t ccap;
	ZSTD_DCtx *dctx;
	struct ckpt_image_cache_stats stats;
};

int frame_cache_init(struct frame_cache *c, unsigned int nr) __must_check;
void frame_cache_done(struct frame_cache *c);
/*
 * The decompressed frame @frame of @idx, read from @fd: from the cache or
 * decoded into its least recently used slot. Valid until the next call.
 */
int frame_cache_get(struct frame_cache *c, int fd, const struct ckpt_image_index *idx,
		    uint32_t frame, const void **ret, char *why, size_t whylen) __must_check;
/* pread(2) exactly @len bytes at @off; -EBADMSG when the file is shorter. */
int pread_exact(int fd, void *buf, size_t len, uint64_t off) __must_check;

/* ---- the compression pipeline of a writer ---- */

struct pipeline;

/*
 * Frames of up to @frame_pages pages compressed by @threads workers and
 * appended in order to @fd; @path names the file in messages.
 */
int pipeline_new(int fd, const char *path, int level, unsigned int frame_pages,
		 unsigned int threads, int nice, struct pipeline **ret) __must_check;
/*
 * Copy one page into the frame being filled; its frame number and index in
 * that frame go to @ret_frame and @ret_frame_page. A full frame is queued for
 * compression. Blocks while every buffer is busy (back-pressure).
 */
int pipeline_put(struct pipeline *p, const void *page, uint32_t *ret_frame,
		 uint32_t *ret_frame_page, char *why, size_t whylen) __must_check;
/*
 * Append a frame that is already compressed: @csize bytes read from @fd at
 * @off, holding @nr_pages pages. It goes to the file in its turn, after the
 * frames put before it. Its number goes to @ret_frame.
 */
int pipeline_put_raw(struct pipeline *p, int fd, uint64_t off, size_t csize, uint32_t nr_pages,
		     uint32_t *ret_frame, char *why, size_t whylen) __must_check;
/* Queue the partial frame, wait for every frame to be written, stop the workers. */
int pipeline_finish(struct pipeline *p, char *why, size_t whylen) __must_check;
/* Frames and bytes written so far (safe while the workers run). */
void pipeline_progress(struct pipeline *p, uint64_t *ret_frames, uint64_t *ret_bytes);
/* After a successful finish: the frame table, the size and xxh64 of the file. */
const struct ckpt_image_frame *pipeline_frames(const struct pipeline *p, size_t *ret_nr);
uint64_t pipeline_bytes(const struct pipeline *p);
uint64_t pipeline_xxh64(const struct pipeline *p);
/* Stop the workers, drop the queue; no error reporting. */
void pipeline_free(struct pipeline *p);

/* ---- reading ---- */

struct ckpt_image {
	char *path;          /* as given, or joined from the child's path */
	int dirfd;
	int pages_fd;
	uint64_t inventory_xxh64;
	struct ckpt_image_inventory inv;
	struct ckpt_image_index *idx;
	struct frame_cache cache;
};

/* trust.c: ckpt's file-system credentials, while it writes a user's checkpoint as that user. */
/*
 * Root writing from chain @c (at @path): its file-system credentials become
 * those of the user who can write @c, if any (@fs restores them); -EPERM
 * when nobody vouches for @c (logged).
 */
int image_fs_as_provenance(const struct ckpt_chain *c, const char *path, struct thread_ids *fs)
	__must_check;

/* Open @rel relative to @atfd; @path names it in messages. */
int image_open_at(int atfd, const char *rel, const char *path,
		  const struct ckpt_image_open_opts *opts, struct ckpt_image **ret, char *why,
		  size_t whylen) __must_check;
/* The decompressed frame of DATA entry @e, pointing at its first page. */
int image_entry_data(struct ckpt_image *img, const struct ckpt_image_entry *e,
		     const unsigned char **ret, char *why, size_t whylen) __must_check;
/* ---- writer internals, for fold ---- */

/* A DATA entry for pages already stored (a raw frame). */
int writer_add_entry(struct ckpt_image_writer *w, const struct ckpt_image_entry *e) __must_check;
/* Copy frame @f of the pages.zst open at @fd as it is; its new number in @ret_frame. */
int writer_add_raw_frame(struct ckpt_image_writer *w, int fd, const struct ckpt_image_frame *f,
			 uint32_t *ret_frame) __must_check;
/* Keep this creation time instead of the time of the commit. */
void writer_set_created(struct ckpt_image_writer *w, int64_t ns, const char *utc);

/* ---- chains, for fold ---- */

/* A resolved range: which checkpoint of a chain holds it, where. */
struct seg {
	uint64_t addr, end;
	enum ckpt_page_kind kind;
	uint32_t img;
	uint32_t frame;
	uint32_t frame_page;
};

/*
 * Lay the segs of an older checkpoint (@b) under the resolved ranges of the
 * newer ones (@a): @a whole, and what of @b @a leaves uncovered. Both sorted
 * and without overlaps; so is the result.
 */
int chain_overlay(const struct seg *a, size_t na, const struct seg *b, size_t nb,
		  struct seg **ret, size_t *ret_nr) __must_check;
/*
 * Every range of @c resolved (HOLE included), in address order; INHERIT
 * resolved in the parent process's chain. A seg's img indexes
 * chain_image_at().
 */
int chain_resolve(struct ckpt_chain *c, struct seg **ret, size_t *ret_nr) __must_check;
/* The same cut to [@lo, @hi): only the entries there are looked at (a binary search an image). */
int chain_resolve_in(struct ckpt_chain *c, uint64_t lo, uint64_t hi, struct seg **ret,
		     size_t *ret_nr) __must_check;
/* Every image a seg can name: the chain's own, then its parent processes' (INHERIT). */
size_t chain_nr_images(const struct ckpt_chain *c);
struct ckpt_image *chain_image_at(const struct ckpt_chain *c, size_t i);

/* Rename @name under @dirfd to a fresh temporary name ".NAME.tmp-XXXXXX" (in @ret_tmp). */
int rename_to_temp(int dirfd, const char *name, char *ret_tmp, size_t len) __must_check;
/* A fresh temporary name for @name (not created). */
int temp_name(const char *name, char *buf, size_t len) __must_check;

/* Read the inventory of the checkpoint @rel under @atfd, and its xxh64. */
int inventory_read_at(int atfd, const char *rel, const char *path,
		      struct ckpt_image_inventory *ret, uint64_t *ret_xxh64, char *why,
		      size_t whylen) __must_check;

#endif
