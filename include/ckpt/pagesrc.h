/* SPDX-License-Identifier: MIT */
/*
 * lib/net: page sources. Where the lazy-pages server (and a restore that
 * has no local images) takes the state documents and the page contents of
 * a checkpoint: the checkpoint directory and its chain on this machine, or
 * a page server (ckpt-page-server(1)) on another one. Both kinds answer the
 * same calls the same way: a remote source is a local source on the server
 * behind the protocol.
 *
 * Pages. The content of a page is the newest version in the chain (see
 * RESOLUTION in ckpt-images(5)): CKPT_PAGE_DATA (4096 bytes), CKPT_PAGE_ZERO
 * (all zero, no bytes moved) or CKPT_PAGE_NONE (nothing saved, or a HOLE:
 * the mapping's backing applies: zero for anonymous memory, the file for a
 * file mapping). Reads are limited to the address space of the checkpoint:
 * the mappings of its mm.json (and any range that holds pages); a page
 * outside it is -EFAULT, never NONE.
 *
 * Errors. Every function returns -errno and logs its error once (area
 * "net"), naming the source (directory or URL) and the fault:
 *   -EINVAL   an unaligned address, 0 or too many pages, a bad name or URL
 *   -EFAULT   a page outside the address space of the checkpoint
 *   -ENOENT   no such checkpoint or document
 *   -EBADMSG  corrupt images (or a document that is not JSON)
 *   -EFBIG    a document larger than CKPT_PAGE_SOURCE_DOC_MAX
 *   remote only:
 *   -EACCES   authentication failed or refused (token missing, wrong, or
 *             only one side has one); -EPERM: a non-loopback address
 *             without a token file
 *   -ECONNREFUSED, -EHOSTUNREACH, ...: connect(2) failed
 *   -ETIMEDOUT the server did not answer within the timeout
 *   -ECONNRESET the server closed the connection (in the middle of a
 *             reply: the message says how much arrived)
 *   -EPROTO   the server broke the protocol; -EPROTONOSUPPORT: no common
 *             protocol version; -EBUSY: the server has too many clients
 *             (or dropped this connection in its handshake for a newer one)
 *   -EINTR    opening only: SIGINT or SIGTERM, which the calling thread
 *             blocks, arrived while it waited to connect or for the
 *             handshake; the signal is left pending for the caller
 * After a transport or protocol error (-ETIMEDOUT, -ECONNRESET, -EPROTO,
 * ...) a remote source is broken: every later call returns the same error
 * at once. Open a new one to retry. Request errors (-EINVAL, -EFAULT,
 * -ENOENT, -EFBIG, -EBADMSG) leave it usable.
 *
 * Threads. Every call may come from any thread: calls on one source are
 * serialized by a lock inside it. A remote source keeps one TCP connection;
 * a batch larger than the server's batch limit is split into requests that
 * are all sent before the first reply is read (pipelined). A fault must not
 * wait behind a long background read: open two sources, one for faults and
 * one for the background fill; the server serves connections in parallel.
 */
#ifndef CKPT_PAGESRC_H
#define CKPT_PAGESRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ckpt/image.h>
#include <ckpt/util.h>

struct json_object;
struct ckpt_page_source;

#define CKPT_PAGE_SOURCE_PAGE_SIZE 4096u
/* Pages of one ckpt_page_source_read_pages() call (16 MiB). */
#define CKPT_PAGE_SOURCE_BATCH_MAX 4096u
/* Bytes of one document. */
#define CKPT_PAGE_SOURCE_DOC_MAX (16u << 20)
/*
 * The name of the inventory summary, a JSON object made by the source:
 * "format" ("ckpt-image"), "format_version", "ckpt_version", "id" (the
 * content id of the newest checkpoint, as its inventory.json has it),
 * "created_unix_ns", "created_utc", "kind" and "process" (pid, start_time,
 * boot_id, exe) of the newest checkpoint, as in its inventory.json;
 * "chain": one object per checkpoint, newest first (kind, created_utc,
 * data_pages, pages_bytes); "pages": {"data", "zero", "ranges"} of the
 * resolved chain.
 */
#define CKPT_PAGE_SOURCE_SUMMARY "inventory.json"

struct ckpt_page_source_opts {
	unsigned int cache_frames; /* local: decompressed frames kept; 0: 8 */
	unsigned int timeout_ms;   /* remote: connect, handshake, each reply; 0: 30000 */
	/*
	 * local: open reads the chain's indexes, but resolves them into ranges
	 * (and makes the summary) only when a call needs the whole list: a
	 * lazy restore asks for the few ranges it writes before the process
	 * runs (ckpt_page_source_list_ranges_in) and leaves the rest to its
	 * server. Errors of the resolution (no memory) come from that call.
	 */
	bool defer_resolve;
};

/*
 * Open the checkpoint directory @dir and its chain (ckpt_chain_open()).
 * @opts may be NULL.
 */
int ckpt_page_source_open_local(const char *dir, const struct ckpt_page_source_opts *opts,
				struct ckpt_page_source **ret) __must_check;
/*
 * Connect to the page server at @url, "tcp://ADDR:PORT" (ADDR an IPv4
 * address, [IPv6] or a host name), say hello and authenticate. @token_file
 * holds the shared secret; it is required unless ADDR is a loopback address
 * (-EPERM), and when given the server must prove it holds the same secret.
 */
int ckpt_page_source_open_remote(const char *url, const char *token_file,
				 const struct ckpt_page_source_opts *opts,
				 struct ckpt_page_source **ret) __must_check;
/*
 * The same for the checkpoint of one process of a tree (ckpt-images(5))
 * that the page server serves: @proc is its directory, "proc-PID" (NULL:
 * the top one, as ckpt_page_source_open_remote()). -EPROTONOSUPPORT: the
 * page server is older than trees (protocol version 1); -ENOENT: it has no
 * such process; -EINVAL: @proc is not a proc-PID name.
 */
int ckpt_page_source_open_remote_proc(const char *url, const char *proc, const char *token_file,
				      const struct ckpt_page_source_opts *opts,
				      struct ckpt_page_source **ret) __must_check;
/*
 * A file of the newest checkpoint by its name in the inventory, as bytes
 * (checksum verified): a blob of saved contents, which must be exactly
 * @size bytes (-EBADMSG otherwise). The caller frees @ret.
 */
int ckpt_page_source_get_blob(struct ckpt_page_source *src, const char *name, uint64_t size,
			      void **ret) __must_check;
/* Close the connection or the images; NULL is fine. */
void ckpt_page_source_close(struct ckpt_page_source *src);
CKPT_DEFINE_CLEANUP(struct ckpt_page_source, ckpt_page_source_close)
#define _cleanup_page_source_ _cleanup_(ckpt_page_source_closep)

/*
 * Who can have written what @src serves (docs/SECURITY.md): a local
 * source, from the owners and modes of its chain; a remote one, from the
 * token file's owner or the uid of a local page server, merged with what
 * the server says of its own checkpoint. -EPERM: no provenance
 * (@ret->why says why); other errors: the source failed (logged).
 */
int ckpt_page_source_provenance(struct ckpt_page_source *src, struct ckpt_provenance *ret)
	__must_check;

/*
 * A local source's newest checkpoint, open since the source was (its
 * files are read through the directory opened then, never its path
 * again); NULL for a page server.
 */
struct ckpt_image *ckpt_page_source_image(struct ckpt_page_source *src);
/* The same for its whole chain; NULL for a page server. */
struct ckpt_chain *ckpt_page_source_chain(struct ckpt_page_source *src);

/* The directory or URL it was opened with. */
const char *ckpt_page_source_name(const struct ckpt_page_source *src);
bool ckpt_page_source_is_remote(const struct ckpt_page_source *src);

/*
 * A metadata document of the newest checkpoint by its file name
 * ("process.json", "threads.json", "mm.json", "files.json", "track.json",
 * ...; checksum verified), or CKPT_PAGE_SOURCE_SUMMARY. The caller puts
 * @ret. -ENOENT when the checkpoint has no such document.
 */
int ckpt_page_source_get_json(struct ckpt_page_source *src, const char *name,
			      struct json_object **ret) __must_check;

/*
 * The page at @addr (page-aligned): returns CKPT_PAGE_DATA (4096 bytes
 * copied to @buf), CKPT_PAGE_ZERO or CKPT_PAGE_NONE; @buf is written only
 * for DATA.
 */
int ckpt_page_source_read_page(struct ckpt_page_source *src, uint64_t addr, void *buf) __must_check;
/*
 * @nr_pages (1 to CKPT_PAGE_SOURCE_BATCH_MAX) contiguous pages from @addr:
 * @ret_kinds[i] gets the kind of page i (an enum ckpt_page_kind value:
 * DATA, ZERO or NONE) and, for DATA, its bytes are at @buf + i * 4096;
 * the slots of other pages are not written. Every page must lie in the
 * address space of the checkpoint (-EFAULT otherwise). On any error the
 * contents of @ret_kinds and @buf are undefined. Returns the number of DATA
 * pages.
 */
int ckpt_page_source_read_pages(struct ckpt_page_source *src, uint64_t addr, size_t nr_pages,
				uint8_t *ret_kinds, void *buf) __must_check;

struct ckpt_page_source_range {
	uint64_t addr;
	uint64_t nr_pages;
	enum ckpt_page_kind kind; /* CKPT_PAGE_DATA or CKPT_PAGE_ZERO */
};

/*
 * Every resolved range of the chain that has content (DATA or ZERO; pages
 * absent or HOLE are not listed), ascending, disjoint, neighbours of the
 * same kind merged, without their data: the plan of a background fill.
 * The caller frees @ret.
 */
int ckpt_page_source_list_ranges(struct ckpt_page_source *src, struct ckpt_page_source_range **ret,
				 size_t *ret_nr) __must_check;
/*
 * The same, cut to [@lo, @hi) (page-aligned, @lo < @hi). A local source
 * opened with defer_resolve looks only at the entries there, so what a
 * restore needs before the process runs does not grow with the checkpoint;
 * a remote one fetches the whole list once and cuts it.
 */
int ckpt_page_source_list_ranges_in(struct ckpt_page_source *src, uint64_t lo, uint64_t hi,
				    struct ckpt_page_source_range **ret, size_t *ret_nr) __must_check;

/*
 * Remote: one PING/PONG round trip, which also keeps an idle connection
 * from the server's idle timeout (300 s by default); local: nothing.
 */
int ckpt_page_source_ping(struct ckpt_page_source *src) __must_check;

struct ckpt_page_source_stats {
	uint64_t calls;	 /* get_json, read_page(s), list_ranges, ping */
	uint64_t errors; /* calls that failed */
	uint64_t pages;	 /* pages read, by kind: */
	uint64_t data_pages, zero_pages, none_pages;
	uint64_t requests;    /* remote: protocol requests sent (the handshake excluded) */
	uint64_t round_trips; /* remote: waits for the server; pipelined requests count once */
	uint64_t bytes_in;    /* remote: bytes received (handshake included); local: bytes copied */
	uint64_t bytes_out;   /* remote: bytes sent (handshake included) */
	uint64_t busy_ns;     /* time spent inside calls */
};
void ckpt_page_source_get_stats(struct ckpt_page_source *src, struct ckpt_page_source_stats *ret);

#endif
