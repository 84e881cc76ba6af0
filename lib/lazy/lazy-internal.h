/* SPDX-License-Identifier: MIT */
#ifndef CKPT_LAZY_INTERNAL_H
#define CKPT_LAZY_INTERNAL_H

#include <pthread.h>

#include <ckpt/lazy.h>
#include <ckpt/pagesrc.h>

/* A registered range, in the process's current addresses. */
struct lz_vma {
	uint64_t start, end;
	uint64_t src;          /* images address of start */
	uint8_t *done;         /* a bit per page: delivered, or removed (zero from now on) */
	uint64_t left;
};

struct lz_proc {
	pid_t pid;
	int uffd;
	int pidfd;
	int parked_fd;
	uint64_t uffd_ino;
	struct lz_vma *v;
	size_t nr, cap;
	uint64_t (*lock)[2];   /* images-address ranges to mlock once every page is in */
	size_t nr_lock;
	uint64_t left;
	uint64_t gen;          /* bumped by every change of the table */
	uint64_t last_fault;   /* where the fill starts */
	uint64_t ra_next;      /* the page after the last fault's read-ahead */
	unsigned int ra;       /* the read-ahead of the next sequential fault */
	char *dir, *url, *token_file;
	char *proc;            /* remote: the process's checkpoint under the served one, or NULL */
	char *id;              /* the content id restore read, or NULL */
	bool has_prov;
	struct ckpt_provenance prov; /* as restore judged it (has_prov) */
	struct ckpt_page_source *fault_src, *fill_src; /* fill_src: opened by the fill thread */
	bool fill_tried;       /* the fill thread opened fill_src, or failed to */
	struct ckpt_lazy_stats st;
	uint64_t *lat;
	size_t nr_lat, cap_lat;
	uint64_t *pending;     /* faults to serve again (EAGAIN) */
	size_t nr_pending, cap_pending;
	uint64_t t_start;
	pid_t parent;          /* a forked child: its parent (its own pid is found later) */
	unsigned int busy;     /* the fill thread uses it without the lock */
	bool warned;
	bool gone;             /* it exited (or exec'd) */
	bool failed;           /* its pages cannot be read: left for another server */
};

struct ckpt_lazy_server {
	struct ckpt_lazy_opts o;
	char *rundir;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct lz_proc **procs;
	size_t nr, cap;
	bool quit;
	pthread_t fill_thread;
	bool fill_started;
	int wake_fd;           /* eventfd: wakes the event thread */
	bool stop_soon, stop_now;
	int err;               /* first fatal error */
};

/* proc.c: the range table of a process */
struct lz_vma *lz_find(struct lz_proc *p, uint64_t addr);
int lz_add_range(struct lz_proc *p, uint64_t start, uint64_t end, uint64_t src);
void lz_mark(struct lz_proc *p, struct lz_vma *v, uint64_t idx, uint64_t n);
bool lz_is_done(const struct lz_vma *v, uint64_t idx);
/* The first page at or after @idx, before @end, that is not done (@end if none). */
uint64_t lz_next_undone(const struct lz_vma *v, uint64_t idx, uint64_t end);
int lz_remap(struct lz_proc *p, uint64_t from, uint64_t to, uint64_t len);
int lz_remove(struct lz_proc *p, uint64_t start, uint64_t end, bool unmap);
int lz_copy_table(struct lz_proc *dst, const struct lz_proc *src);
void lz_free_table(struct lz_proc *p);
int lz_add_lock(struct lz_proc *p, uint64_t src_start, uint64_t src_end);

/* handover.c: accept one process handed over at the listening socket @lfd */
void lz_accept_handover(struct ckpt_lazy_server *s, int lfd);

/* record.c: what a new server needs to take over */
int lz_record_save(struct ckpt_lazy_server *s, struct lz_proc *p);
void lz_record_remove(struct ckpt_lazy_server *s, pid_t pid);
int lz_record_load(struct ckpt_lazy_server *s, pid_t pid, struct lz_proc *p);

#endif
