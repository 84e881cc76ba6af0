/* SPDX-License-Identifier: MIT */
/*
 * lib/image: the on-disk checkpoint format (see ckpt-images(5)).
 *
 * A checkpoint is a directory: inventory.json (format, version, identity of
 * the process, checksums of every other file), pages.idx (the page index),
 * pages.zst (independent zstd frames of page data) and JSON documents that
 * the dump code fills. A delta names its parent by a relative path; a chain
 * is a checkpoint and all its ancestors.
 *
 * Errors. Every function returns -errno: -ENOENT for a missing checkpoint,
 * parent or file, -EBADMSG for corrupt contents (bad JSON, wrong types,
 * checksum mismatch, truncation), -EPROTONOSUPPORT for a format version this
 * code does not know, -EXDEV for a parent that belongs to another process,
 * -ESTALE for a parent replaced after its child was written, -ELOOP for a
 * chain that loops, -EEXIST when the name of a new checkpoint is taken.
 * The functions that touch files log their error once (area "image", through
 * the sink of ckpt/log.h), naming the file and the cause; the pure buffer
 * parsers (ckpt_image_parse_*) never log and describe the fault in @why.
 *
 * Threads. A writer is driven by one thread; it compresses on worker threads
 * of its own. A struct ckpt_image or struct ckpt_chain (and its iterators)
 * must be used by one thread at a time: reads update its frame cache.
 * Distinct objects are independent.
 */
#ifndef CKPT_IMAGE_H
#define CKPT_IMAGE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/range.h>
#include <ckpt/util.h>

struct json_object;

#define CKPT_IMAGE_FORMAT "ckpt-image"
#define CKPT_IMAGE_FORMAT_VERSION 2
#define CKPT_IMAGE_PAGE_SIZE 4096u
/* Addresses are user-space virtual addresses: below 2^57 (5-level paging). */
#define CKPT_IMAGE_ADDR_LIMIT (1ULL << 57)
/* Compression levels: zstd's (negative ones too), or stored uncompressed. */
#define CKPT_IMAGE_LEVEL_NONE INT_MIN
#define CKPT_IMAGE_LEVEL_DEFAULT 1
#define CKPT_IMAGE_FRAME_PAGES_DEFAULT 256 /* 1 MiB of pages per zstd frame */
#define CKPT_IMAGE_FRAME_PAGES_MAX 16384   /* 64 MiB */
#define CKPT_IMAGE_THREADS_DEFAULT 2
#define CKPT_IMAGE_CACHE_FRAMES_DEFAULT 8
#define CKPT_IMAGE_BOOT_ID_LEN 36
#define CKPT_IMAGE_ID_LEN 16 /* bytes of a checkpoint id */

/* ---- inventory.json ---- */

enum ckpt_image_kind {
	CKPT_IMAGE_FULL = 0,  /* every page of interest is here */
	CKPT_IMAGE_DELTA = 1, /* pages not listed are in the parent */
};

/* Who was checkpointed: a delta only applies to the same process. */
struct ckpt_image_identity {
	pid_t pid;
	uint64_t start_time; /* clock ticks after boot, field 22 of /proc/PID/stat */
	char boot_id[CKPT_IMAGE_BOOT_ID_LEN + 1]; /* /proc/sys/kernel/random/boot_id */
	const char *exe;     /* path of the executable; owned by an inventory */
};

struct ckpt_image_file {
	char *name;
	uint64_t xxh64; /* of the whole file, seed 0 */
};

/*
 * The identifier of a checkpoint's content: 128 random bits drawn when it is
 * written. A delta records its parent's id, so it can only be applied to the
 * very checkpoint it was taken on top of. A fold (ckpt_image_fold) replaces a
 * delta by a full checkpoint of the same content and keeps its id, so the
 * deltas on top of it stay valid.
 */
struct ckpt_image_id {
	uint8_t b[CKPT_IMAGE_ID_LEN];
};
#define CKPT_IMAGE_ID_STR_LEN (2 * CKPT_IMAGE_ID_LEN) /* lowercase hex digits */

/* 32 lowercase hex digits and a NUL in @buf; returns @buf. */
const char *ckpt_image_id_format(const struct ckpt_image_id *id, char buf[CKPT_IMAGE_ID_STR_LEN + 1]);
int ckpt_image_id_parse(const char *s, struct ckpt_image_id *ret) __must_check;
bool ckpt_image_id_equal(const struct ckpt_image_id *a, const struct ckpt_image_id *b);

struct ckpt_image_inventory {
	int format_version;
	char *ckpt_version;       /* of the ckpt that wrote it */
	int64_t created_ns;       /* CLOCK_REALTIME, ns since the epoch */
	char created_utc[40];     /* the same instant, RFC 3339 UTC */
	enum ckpt_image_kind kind;
	char *parent;             /* path relative to this checkpoint; NULL if full */
	struct ckpt_image_id id;        /* of this checkpoint's content */
	struct ckpt_image_id parent_id; /* delta: the id of its parent; zero if full */
	struct ckpt_image_identity identity;
	size_t nr_files;
	struct ckpt_image_file *files; /* every other file, sorted by name */
};

/*
 * Parse the text of an inventory.json into @ret (released with
 * ckpt_image_inventory_done()). -EPROTONOSUPPORT for another format
 * version, -EBADMSG for anything else wrong; @why (may be NULL) says what.
 */
int ckpt_image_parse_inventory(const char *text, size_t len, char *why, size_t whylen,
			       struct ckpt_image_inventory *ret) __must_check;
void ckpt_image_inventory_done(struct ckpt_image_inventory *inv);
/* Compare pid, start_time and boot_id (not exe: it reads "(deleted)" after an upgrade). */
bool ckpt_image_identity_equal(const struct ckpt_image_identity *a,
			       const struct ckpt_image_identity *b);

/* ---- pages.idx ---- */

enum ckpt_page_kind {
	CKPT_PAGE_NONE = 0, /* no entry (one image); neither data nor zero (chain) */
	CKPT_PAGE_DATA = 1, /* bytes in pages.zst */
	CKPT_PAGE_ZERO = 2, /* all zero, nothing stored */
	CKPT_PAGE_HOLE = 3, /* not saved here nor in any ancestor: the mapping's backing */
	/*
	 * The same bytes as the page at this address of process @frame, the
	 * parent in the tree, in the same checkpoint of the tree (its
	 * proc-PID/ beside this one, or the tree's root): memory still shared
	 * copy-on-write since fork, saved once, by the parent. Index version
	 * 3. A chain resolves it; readers of a chain never see it.
	 */
	CKPT_PAGE_INHERIT = 4,
};

/* Processes in a line holding one another's pages (INHERIT) that a reader follows; deeper is refused. */
#define CKPT_IMAGE_INHERIT_DEPTH_MAX 64

struct ckpt_image_entry {
	uint64_t addr;       /* page-aligned */
	uint64_t nr_pages;   /* >= 1 */
	enum ckpt_page_kind kind; /* DATA, ZERO, HOLE or INHERIT */
	uint32_t frame;      /* DATA: the frame of pages.zst that holds the pages; INHERIT: the pid */
	uint32_t frame_page; /* DATA: index of the first page inside that frame */
};

struct ckpt_image_frame {
	uint64_t offset;     /* of the zstd frame in pages.zst */
	uint64_t csize;      /* its compressed size */
	uint64_t usize;      /* nr_pages * 4096 */
	uint32_t nr_pages;
};

struct ckpt_image_index {
	uint32_t version;
	uint64_t pages_size;        /* bytes of pages.zst */
	uint64_t nr_data_pages;
	size_t nr_entries;
	struct ckpt_image_entry *entries; /* sorted by address, not overlapping */
	size_t nr_frames;
	struct ckpt_image_frame *frames;  /* in file order */
	pid_t inherit_pid;                /* of the INHERIT entries (all of one pid); 0: none */
	void *raw; /* the bytes of pages.idx the entries lie in, or NULL: freed with the index */
};

/*
 * Parse a whole pages.idx. -EPROTONOSUPPORT for another index version,
 * -EBADMSG for anything inconsistent; @why (may be NULL) says what.
 */
int ckpt_image_parse_index(const void *buf, size_t len, char *why, size_t whylen,
			   struct ckpt_image_index **ret) __must_check;
void ckpt_image_index_free(struct ckpt_image_index *idx);
CKPT_DEFINE_CLEANUP(struct ckpt_image_index, ckpt_image_index_free)
const char *ckpt_page_kind_name(enum ckpt_page_kind kind);

/* ---- writing a checkpoint ---- */

struct ckpt_image_writer;

enum {
	/* Commit over an existing checkpoint of the same name (never over anything else). */
	CKPT_IMAGE_REPLACE = 1u << 0,
};

struct ckpt_image_writer_opts {
	struct ckpt_image_identity identity; /* required */
	const char *parent;       /* relative to the new checkpoint; NULL: full */
	/*
	 * The id of the new checkpoint; NULL: a new random one (always, except
	 * for a checkpoint that replaces another of exactly the same content).
	 */
	const struct ckpt_image_id *id;
	int level;                /* zstd level, CKPT_IMAGE_LEVEL_NONE; 0: default (1) */
	unsigned int frame_pages; /* pages per frame; 0: 256 */
	unsigned int threads;     /* compression threads; 0: 2 */
	int nice;                 /* niceness of the compression threads; 0: unchanged */
	unsigned int flags;       /* CKPT_IMAGE_REPLACE */
};

struct ckpt_image_writer_stats {
	uint64_t data_pages, zero_pages, hole_pages; /* after commit: what the index lists */
	uint64_t inherit_pages; /* listed as the parent process's (CKPT_PAGE_INHERIT) */
	uint64_t dead_pages;  /* stored in pages.zst but hidden by a later layer or cut out */
	uint64_t frames;
	uint64_t pages_bytes; /* size of pages.zst so far */
};

/*
 * Start a checkpoint to be committed at @path: everything goes to a
 * temporary sibling directory ".NAME.tmp-XXXXXX" until commit. -EEXIST when
 * @path exists (unless CKPT_IMAGE_REPLACE and it is a checkpoint). With a
 * parent, the parent's inventory is read now: it must be a checkpoint of
 * the same process (-EXDEV otherwise).
 */
int ckpt_image_writer_new(const char *path, const struct ckpt_image_writer_opts *opts,
			  struct ckpt_image_writer **ret) __must_check;
/*
 * A checkpoint inside the checkpoint @top is writing, at @name (a plain
 * file name): the checkpoint of another process of a tree. It is committed
 * (ckpt_image_writer_commit) into @top's temporary directory, so it
 * appears with @top, atomically, when @top commits; commit it before @top.
 * Its parent, if any, is relative to it: "../../PARENT/NAME".
 */
int ckpt_image_writer_new_sub(struct ckpt_image_writer *top, const char *name,
			      const struct ckpt_image_writer_opts *opts,
			      struct ckpt_image_writer **ret) __must_check;
/*
 * Pages, in any order, never twice the same address. add_data() stores
 * @nr_pages pages from @pages; a page of zero bytes becomes a ZERO entry.
 * nr_pages 0 does nothing. -EINVAL for an address that is not page-aligned
 * or beyond CKPT_IMAGE_ADDR_LIMIT. add_data() blocks while the compression
 * queue is full. Overlapping ranges are reported by commit (-EINVAL).
 */
int ckpt_image_writer_add_data(struct ckpt_image_writer *w, uint64_t addr, uint64_t nr_pages,
			       const void *pages) __must_check;
int ckpt_image_writer_add_zero(struct ckpt_image_writer *w, uint64_t addr,
			       uint64_t nr_pages) __must_check;
int ckpt_image_writer_add_hole(struct ckpt_image_writer *w, uint64_t addr,
			       uint64_t nr_pages) __must_check;
/*
 * Pages that are byte for byte those of process @pid (the parent in the
 * tree, written into the same tree checkpoint) at the same addresses
 * (CKPT_PAGE_INHERIT). The caller has checked that they are.
 */
int ckpt_image_writer_add_inherit(struct ckpt_image_writer *w, uint64_t addr, uint64_t nr_pages,
				  pid_t pid) __must_check;
/*
 * Start a new layer of pages: the pages added from now on take precedence
 * over those of earlier layers at the same addresses (so each address may be
 * added once per layer). The bytes of hidden pages stay in pages.zst, listed
 * by no entry. For a checkpoint made of a copy taken while the process ran,
 * corrected by the pages written since (ckpt_dump_continuous).
 */
int ckpt_image_writer_new_layer(struct ckpt_image_writer *w) __must_check;
/*
 * At commit, drop every page outside @ranges (sorted, disjoint, page-aligned;
 * copied): what the index lists is cut to them. A second call replaces the
 * first.
 */
int ckpt_image_writer_restrict(struct ckpt_image_writer *w, const struct ckpt_range *ranges,
			       size_t nr) __must_check;
/* The id the checkpoint will have. */
const struct ckpt_image_id *ckpt_image_writer_id(const struct ckpt_image_writer *w);
/*
 * A metadata file: @name is a plain file name ([A-Za-z0-9._-], not starting
 * with '.', not one of inventory.json, pages.idx, pages.zst). put_json()
 * writes @obj as pretty-printed JSON. -EEXIST if @name was already put.
 */
int ckpt_image_writer_put_json(struct ckpt_image_writer *w, const char *name,
			       struct json_object *obj) __must_check;
int ckpt_image_writer_put_file(struct ckpt_image_writer *w, const char *name, const void *buf,
			       size_t len) __must_check;
/*
 * A blob: raw bytes the process's files held (a deleted file, a memfd),
 * stored as a checkpoint file named @name (as for put_file), listed in the
 * inventory with its checksum and copied by a fold like every other file.
 * Read back with ckpt_image_read_blob(), which checks its size.
 */
int ckpt_image_writer_put_blob(struct ckpt_image_writer *w, const char *name, const void *buf,
			       size_t len) __must_check;
/*
 * Finish the pages, write pages.idx and inventory.json, fsync everything and
 * rename the temporary directory to its final name, then fsync the parent
 * directory. On failure nothing is left at the final name and the temporary
 * directory is removed. The writer must still be freed.
 */
int ckpt_image_writer_commit(struct ckpt_image_writer *w) __must_check;
void ckpt_image_writer_get_stats(const struct ckpt_image_writer *w,
				 struct ckpt_image_writer_stats *ret);
/* Free the writer; an uncommitted checkpoint is aborted: its temporary directory removed. */
void ckpt_image_writer_free(struct ckpt_image_writer *w);
CKPT_DEFINE_CLEANUP(struct ckpt_image_writer, ckpt_image_writer_free)
#define _cleanup_image_writer_ _cleanup_(ckpt_image_writer_freep)

/* "none", or an integer in zstd's range of levels. -EINVAL otherwise. */
int ckpt_image_parse_level(const char *s, int *ret) __must_check;
/* True for the name of a temporary directory (".NAME.tmp-XXXXXX"): never a checkpoint. */
bool ckpt_image_is_temp_name(const char *name);

/* ---- reading one checkpoint ---- */

struct ckpt_image;

struct ckpt_image_open_opts {
	unsigned int cache_frames; /* decompressed frames kept (LRU); 0: 8 */
};

/*
 * Open the checkpoint at @path (@opts may be NULL): validate inventory.json,
 * the checksum of pages.idx and its contents, and the size of pages.zst.
 * Frames are validated by zstd's content checksum when decompressed;
 * ckpt_image_verify() checks everything.
 */
int ckpt_image_open(const char *path, const struct ckpt_image_open_opts *opts,
		    struct ckpt_image **ret) __must_check;
void ckpt_image_close(struct ckpt_image *img);
CKPT_DEFINE_CLEANUP(struct ckpt_image, ckpt_image_close)
#define _cleanup_image_ _cleanup_(ckpt_image_closep)

const char *ckpt_image_path(const struct ckpt_image *img);
const struct ckpt_image_inventory *ckpt_image_inventory(const struct ckpt_image *img);
/* The entries of pages.idx, for listing (ckpt show). */
const struct ckpt_image_index *ckpt_image_index(const struct ckpt_image *img);
/* xxh64 of this checkpoint's inventory.json. */
uint64_t ckpt_image_inventory_xxh64(const struct ckpt_image *img);

/* True when the inventory lists @name. */
bool ckpt_image_has_file(const struct ckpt_image *img, const char *name);
/* Read a listed file, checksum verified. -ENOENT when not listed or missing. */
int ckpt_image_read_file(struct ckpt_image *img, const char *name, void **ret,
			 size_t *ret_len) __must_check;
/*
 * Read the blob @name, which must be exactly @size bytes: -ENOENT when the
 * inventory does not list it, -EBADMSG when the file has another size
 * (checked before anything is read or allocated) or another checksum.
 */
int ckpt_image_read_blob(struct ckpt_image *img, const char *name, uint64_t size,
			 void **ret) __must_check;
/* Read and parse a listed JSON document, checksum verified; the caller puts @ret. */
int ckpt_image_get_json(struct ckpt_image *img, const char *name,
			struct json_object **ret) __must_check;

/*
 * What this checkpoint holds for the page at @addr: CKPT_PAGE_DATA (4096
 * bytes copied to @buf), CKPT_PAGE_ZERO, CKPT_PAGE_HOLE, or CKPT_PAGE_NONE
 * (no entry). @buf is only written for DATA.
 */
int ckpt_image_read_page(struct ckpt_image *img, uint64_t addr, void *buf) __must_check;
/* Check the checksum of every file and decompress every frame. */
int ckpt_image_verify(struct ckpt_image *img) __must_check;

/*
 * Provenance: who can have written what restore reads. Root can write
 * anything; what matters is whether another user can (docs/SECURITY.md).
 */
enum ckpt_provenance_kind {
	CKPT_PROV_ROOT,  /* only root */
	CKPT_PROV_USER,  /* root and one user: @uid */
	CKPT_PROV_NONE,  /* nobody can say: writable by a group or everyone, two users, a peer
			    nobody vouches for */
};
struct ckpt_provenance {
	enum ckpt_provenance_kind kind;
	uid_t uid;      /* CKPT_PROV_USER */
	gid_t gid;      /* USER: the group of a file that user owns (one of the user's groups) */
	char why[320];  /* what makes it so: "'DIR/process.json' is owned by uid 1000" */
};
void ckpt_provenance_root(struct ckpt_provenance *p);
/* Fold @p into @into: -EPERM when the result is CKPT_PROV_NONE (@into->why says why). */
int ckpt_provenance_merge(struct ckpt_provenance *into, const struct ckpt_provenance *p);
/*
 * The owners and modes of the checkpoint's directory and of every file it
 * lists: -EPERM when that is no provenance (@ret->why says why).
 */
int ckpt_image_provenance(const struct ckpt_image *img, struct ckpt_provenance *ret);

struct ckpt_image_cache_stats {
	uint64_t hits;
	uint64_t decoded; /* frames decompressed */
};
void ckpt_image_get_cache_stats(const struct ckpt_image *img, struct ckpt_image_cache_stats *ret);

/* ---- reading a chain: a checkpoint and its ancestors ---- */

struct ckpt_chain;
struct ckpt_chain_iter;

/*
 * Open the checkpoint at @path and its ancestors, following each parent
 * path. Every ancestor must belong to the same process (pid, start_time,
 * boot_id: -EXDEV otherwise), carry the id its child names (-ESTALE: it is
 * not the checkpoint the child was written on), and appear once (-ELOOP).
 * A missing parent is -ENOENT. A chain that a fold or a removal changes
 * while it is being opened is opened again.
 */
int ckpt_chain_open(const char *path, const struct ckpt_image_open_opts *opts,
		    struct ckpt_chain **ret) __must_check;
void ckpt_chain_close(struct ckpt_chain *c);
CKPT_DEFINE_CLEANUP(struct ckpt_chain, ckpt_chain_close)
#define _cleanup_chain_ _cleanup_(ckpt_chain_closep)

/* Number of checkpoints; 0 is the newest, the last is the full one. */
size_t ckpt_chain_length(const struct ckpt_chain *c);
struct ckpt_image *ckpt_chain_image(const struct ckpt_chain *c, size_t i);

/*
 * Every address range for which some checkpoint of the chain holds DATA or
 * ZERO pages, added to @ret (normalized): a superset of what the chain
 * resolves to something.
 */
int ckpt_chain_ranges(const struct ckpt_chain *c, struct ckpt_range_set *ret) __must_check;

/*
 * The newest version of the page at @addr: CKPT_PAGE_DATA (4096 bytes
 * copied to @buf), CKPT_PAGE_ZERO, or CKPT_PAGE_NONE (a HOLE, or in no
 * checkpoint: the mapping's backing applies). @buf is only written for DATA.
 */
int ckpt_chain_read_page(struct ckpt_chain *c, uint64_t addr, void *buf) __must_check;
/*
 * ckpt_image_verify() of every checkpoint the chain reads: its own, and
 * those of parent processes whose pages it holds (INHERIT).
 */
int ckpt_chain_verify(struct ckpt_chain *c) __must_check;
/* The provenance of every checkpoint of the chain, merged (ckpt_image_provenance). */
int ckpt_chain_provenance(const struct ckpt_chain *c, struct ckpt_provenance *ret);

struct ckpt_chain_range {
	uint64_t addr;
	uint64_t nr_pages;
	enum ckpt_page_kind kind; /* CKPT_PAGE_DATA or CKPT_PAGE_ZERO */
	const void *data;         /* DATA: nr_pages * 4096 bytes, valid until the next call */
	/*
	 * Which checkpoint holds it: 0 the newest of the chain ... ; from
	 * ckpt_chain_length() on, one of the parent process's (INHERIT).
	 */
	size_t image;
};

/*
 * Every resolved range of the chain (DATA or ZERO), in address order,
 * neighbours of one kind merged, without their data (data NULL): the plan
 * of a restore from a page source. Pages another process's chain holds for
 * this one (CKPT_PAGE_INHERIT) are resolved in it.
 */
int ckpt_chain_list(struct ckpt_chain *c, struct ckpt_chain_range **ret, size_t *ret_nr) __must_check;
/*
 * The same, cut to [@lo, @hi): only the entries of each checkpoint that
 * meet it are read (a binary search each), so its cost follows what lies
 * there, not the size of the checkpoint.
 */
int ckpt_chain_list_in(struct ckpt_chain *c, uint64_t lo, uint64_t hi, struct ckpt_chain_range **ret,
		       size_t *ret_nr) __must_check;

/*
 * Every resolved range of the chain, in address order: what an eager
 * restore writes. HOLE and absent pages are not reported. A DATA range lies
 * within one frame; each frame is decompressed once as long as every
 * checkpoint's frames hold its pages in address order (what a writer fed in
 * address order produces) and the cache holds at least one frame.
 */
int ckpt_chain_iter_new(struct ckpt_chain *c, struct ckpt_chain_iter **ret) __must_check;
/* 1 and @ret filled, 0 at the end, or -errno. */
int ckpt_chain_iter_next(struct ckpt_chain_iter *it, struct ckpt_chain_range *ret) __must_check;
void ckpt_chain_iter_free(struct ckpt_chain_iter *it);
CKPT_DEFINE_CLEANUP(struct ckpt_chain_iter, ckpt_chain_iter_free)
#define _cleanup_chain_iter_ _cleanup_(ckpt_chain_iter_freep)

/* ---- folding and removing checkpoints ---- */

struct ckpt_image_fold_opts {
	int level;            /* zstd level of the frames that are recompressed; 0: default */
	unsigned int threads; /* compression threads; 0: 2 */
	int nice;             /* niceness of the compression threads; 0: unchanged */
};

struct ckpt_image_fold_stats {
	size_t chain_length;      /* of the checkpoint before the fold; 1: it was full, nothing done */
	uint64_t data_pages, zero_pages;
	uint64_t frames_copied;   /* compressed frames copied as they were */
	uint64_t frames_repacked; /* frames with less than half of their pages live: recompressed */
	uint64_t pages_bytes;     /* pages.zst of the full checkpoint */
	uint64_t ns;
};

/*
 * Fold the chain of the delta at @path into it: write a full checkpoint with
 * the content the chain resolves to, the same metadata documents, the same
 * id and creation time, and swap it with the delta in one rename
 * (RENAME_EXCHANGE). Deltas on top of @path stay valid (they name it by
 * id); its ancestors are left as they are, complete and restorable, for
 * the caller to remove (ckpt_image_remove) once nothing depends on them.
 * A crash at any point leaves either the delta or the full checkpoint at
 * @path, never anything else, and at most a temporary directory.
 * Compressed frames are copied without recompression when at least half of
 * their pages are still live. A full checkpoint is left alone (chain_length 1).
 */
int ckpt_image_fold(const char *path, const struct ckpt_image_fold_opts *opts,
		    struct ckpt_image_fold_stats *ret_stats) __must_check;
/*
 * Remove the checkpoint at @path: rename it to a temporary name (at that
 * moment it stops being a checkpoint, atomically), make that durable, then
 * delete it. Whether other checkpoints depend on it is the caller's concern.
 */
int ckpt_image_remove(const char *path) __must_check;

/* ---- a series: numbered checkpoints in one directory, and "latest" ---- */

/*
 * A directory of checkpoints named by number (0000, 0001, ...), usually each
 * a delta of the one before, and a symbolic link "latest" to the newest
 * complete one (what ckpt track -D writes). A series is opened with an
 * exclusive lock (flock of the directory): one command at a time changes it.
 * Opening removes what crashed writers left (temporary directories); other
 * entries that are not checkpoints are ignored.
 */
struct ckpt_series;

struct ckpt_series_point {
	const char *name;   /* its directory in the series */
	uint64_t seq;       /* the number its name is; UINT64_MAX for another name */
	const struct ckpt_image_inventory *inv;
	ssize_t parent;     /* index of its parent in the series; -1: full, or parent elsewhere */
	bool parent_elsewhere; /* a delta whose parent is not in the series (or is missing) */
	size_t depth;       /* ancestors in the series */
	uint64_t bytes;     /* size of its files */
};

enum {
	CKPT_SERIES_CREATE = 1u << 0, /* create the directory if it does not exist */
};

int ckpt_series_open(const char *dir, unsigned int flags, struct ckpt_series **ret) __must_check;
void ckpt_series_close(struct ckpt_series *s);
CKPT_DEFINE_CLEANUP(struct ckpt_series, ckpt_series_close)
#define _cleanup_series_ _cleanup_(ckpt_series_closep)

const char *ckpt_series_path(const struct ckpt_series *s);
/* Read the directory again. */
int ckpt_series_rescan(struct ckpt_series *s) __must_check;
/* Add the checkpoint @name, just committed in the directory, to the points. */
int ckpt_series_add(struct ckpt_series *s, const char *name) __must_check;
/* The points, in the order of their names (numbers by value): oldest first. */
size_t ckpt_series_nr_points(const struct ckpt_series *s);
const struct ckpt_series_point *ckpt_series_point(const struct ckpt_series *s, size_t i);
/* The index of the point "latest" names, or -1. */
ssize_t ckpt_series_latest(const struct ckpt_series *s);
/* One more than the largest number in use (0 for an empty series). */
uint64_t ckpt_series_next_seq(const struct ckpt_series *s);
/* The name of number @seq: at least 4 digits, zero-padded. */
void ckpt_series_name(uint64_t seq, char buf[32]);
/* Point "latest" at the point @name: a new link renamed over the old one, fsync'ed. */
int ckpt_series_set_latest(struct ckpt_series *s, const char *name) __must_check;

struct ckpt_series_retain_stats {
	size_t kept, folded, removed;
	uint64_t bytes_before, bytes_after; /* of the points */
	uint64_t fold_ns, remove_ns;
};

/*
 * Keep the newest @keep points (and the one "latest" names) and give the
 * rest back: every kept delta whose parent goes is folded
 * (ckpt_image_fold), then the points that go are removed, children before
 * parents. At every moment each point in the directory restores. A point
 * whose fold fails keeps its ancestors (the error is returned). Checkpoints
 * outside the directory that depend on removed points are not looked for.
 */
int ckpt_series_retain(struct ckpt_series *s, size_t keep, const struct ckpt_image_fold_opts *fo,
		       struct ckpt_series_retain_stats *ret_stats) __must_check;

/*
 * Test hook (test builds and crash tests only): when the environment variable
 * CKPT_TEST_CRASH names @point, the process kills itself (SIGKILL) there.
 * Points: commit-before-rename, commit-after-rename, remove-after-rename,
 * latest-before-rename, retain-after-fold, retain-after-remove.
 */
void ckpt_image_crash_point(const char *point);

#endif
