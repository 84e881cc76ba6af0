/* SPDX-License-Identifier: MIT */
/*
 * lib/lazy: the lazy-pages server. A lazily restored process runs at once;
 * its anonymous and shared memory is registered with a userfaultfd in
 * MISSING mode, and this server fills it: page faults first (the faulting
 * page and a read-ahead window, from the page source: local images or a
 * page server), while a background fill copies the rest in large batches,
 * starting next to the last fault. It follows fork (the child is served
 * too), mremap (pages move), MADV_DONTNEED/REMOVE (that range becomes zero,
 * never the images') and munmap. When every page is in, it unregisters,
 * closes the process's parked reference to the uffd and lets it run alone.
 *
 * Never silent zeros: the uffd is also parked in the process's own fd table
 * (O_CLOEXEC), so if the server dies, faults wait instead of reading zeros,
 * and `ckpt lazy-pages --attach PID` takes over: the record kept in the run
 * directory says where the uffd is parked and how addresses map to the
 * images; pages already present are found with PAGEMAP_SCAN.
 */
#ifndef CKPT_LAZY_H
#define CKPT_LAZY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ckpt/image.h>
#include <ckpt/util.h>

struct ckpt_page_source;

/* A registered range: [start, end) now, whose pages are the images' at src. */
struct ckpt_lazy_range {
	uint64_t start, end;
	uint64_t src;
	bool lock;              /* mlock'ed (on fault meanwhile): mlock it once complete */
};

/* Where the pages come from: a checkpoint directory, or a page server. */
struct ckpt_lazy_source {
	const char *dir;
	const char *url;        /* tcp://ADDR:PORT */
	const char *token_file;
	/*
	 * With @url: the process's own checkpoint under the one the page
	 * server serves ("proc-PID" of a tree); NULL: that one.
	 */
	const char *proc;
	/*
	 * What restore judged (NULL: not checked): the server opens the
	 * checkpoint again, and refuses one with another content id, or that
	 * another user can write (docs/SECURITY.md).
	 */
	const char *id;
	const struct ckpt_provenance *prov;
	/*
	 * The same checkpoint already open (restore's own source, local or
	 * remote), or NULL: ckpt_lazy_server_add() takes it for the faults
	 * instead of opening it again, and owns it whatever it returns.
	 */
	struct ckpt_page_source *opened;
};

/* A lazily restored process, as ckpt_restore_run() leaves it. */
struct ckpt_lazy_target {
	pid_t pid;
	int uffd;                   /* MISSING-registered, EVENT_FORK/REMAP/REMOVE/UNMAP */
	int parked_fd;              /* the process's own reference to it (-1: none) */
	const struct ckpt_lazy_range *ranges;
	size_t nr_ranges;
	uint64_t resume_ns;         /* restore start to running (0: unknown) */
	uint64_t eager_pages;       /* pages written before it ran */
};

struct ckpt_lazy_stats {
	pid_t pid;
	uint64_t resume_ns;         /* restore start to running (0: unknown, taken over) */
	uint64_t eager_pages;       /* pages written by restore before it ran */
	uint64_t faults;            /* page faults served */
	uint64_t pages_fault;       /* pages copied because of a fault (with read-ahead) */
	uint64_t pages_fill;        /* pages copied by the background fill */
	uint64_t pages_zero;        /* zero pages (UFFDIO_ZEROPAGE) */
	uint64_t bytes;             /* page data copied */
	uint64_t lat_p50_ns, lat_p99_ns, lat_max_ns; /* fault: event read to the page in, its thread woken */
	uint64_t serve_ns;          /* serve start to every page in (or the end) */
	uint64_t total_ns;          /* restore start to every page in: resume + serve */
	const char *end;            /* "complete", "exited", "stopped" or "lost" */
};

struct ckpt_lazy_opts {
	const char *rundir;         /* records; NULL: $CKPT_RUNDIR or /run/ckpt */
	unsigned int readahead;     /* pages per fault; 0: 16 */
	unsigned int fill_batch;    /* pages per background copy; 0: 256 */
	bool no_fill;               /* faults only (tests, measurements) */
	void (*on_done)(const struct ckpt_lazy_stats *st, void *userdata);
	void *userdata;
};

struct ckpt_lazy_server;

/* Where records (and logs of detached servers) go: $CKPT_RUNDIR, or /run/ckpt. */
const char *ckpt_lazy_default_rundir(void);

int ckpt_lazy_server_new(const struct ckpt_lazy_opts *opts, struct ckpt_lazy_server **ret) __must_check;
/*
 * Serve the process @t. Its uffd is the server's from now on (closed on
 * error too). May be called while ckpt_lazy_server_run() runs.
 */
int ckpt_lazy_server_add(struct ckpt_lazy_server *s, const struct ckpt_lazy_target *t,
			 const struct ckpt_lazy_source *src) __must_check;
/*
 * Take over the lazy restore of @pid left by a server that died or was
 * stopped: the parked uffd and the ranges come from the record in the run
 * directory, pages already present are not served again. @src (may be
 * NULL) replaces the source of the record.
 */
int ckpt_lazy_server_attach(struct ckpt_lazy_server *s, pid_t pid,
			    const struct ckpt_lazy_source *src) __must_check;
/*
 * Serve until every process is complete or gone. With @listen_fd (a unix
 * SOCK_SEQPACKET listening socket, -1: none), also accept processes handed
 * over by `ckpt restore --lazy --lazy-socket` and keep serving until
 * stopped. ckpt_lazy_server_stop() from another thread or a signal handler:
 * @now false stops taking new processes and returns when the current ones
 * are complete; @now true returns at once, leaving the processes waiting
 * for a server to take over (their uffd stays parked in them).
 */
int ckpt_lazy_server_run(struct ckpt_lazy_server *s, int listen_fd) __must_check;
void ckpt_lazy_server_stop(struct ckpt_lazy_server *s, bool now);
void ckpt_lazy_server_free(struct ckpt_lazy_server *s);
CKPT_DEFINE_CLEANUP(struct ckpt_lazy_server, ckpt_lazy_server_free)

/*
 * Hand a lazily restored process over to the server listening at @socket
 * (the uffd by SCM_RIGHTS). Returns once the server has taken it.
 */
int ckpt_lazy_handover(const char *socket, const struct ckpt_lazy_target *t,
		       const struct ckpt_lazy_source *src) __must_check;

/* A UNIX SOCK_SEQPACKET socket listening at @path (a stale one is replaced). */
int ckpt_lazy_listen(const char *path) __must_check;

#endif
