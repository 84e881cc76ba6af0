/* SPDX-License-Identifier: MIT */
/* The collection of a process description, split by object (collect_*.c). */
#ifndef CKPT_COLLECT_INTERNAL_H
#define CKPT_COLLECT_INTERNAL_H

#include <stdint.h>
#include <sys/stat.h>

#include <ckpt/dump.h>
#include <ckpt/inject.h>
#include <ckpt/proc.h>
#include <ckpt/state.h>

struct collect {
	struct ckpt_inject *inj;
	struct ckpt_dump_collect_opts opts;
	struct ckpt_state *s;
	pid_t pid;
	struct ckpt_proc *proc;         /* /proc/PID: the leader, maybe a zombie */
	const struct ckpt_proc *task;   /* /proc/PID/task/TID of a live thread (lib/inject's) */
	struct ckpt_proc *mm_proc;      /* /proc/TID of that thread: map_files */
	uint64_t scratch;               /* a page of the target for the results of queries */
	bool timerslack_warned;         /* said once that timer slacks cannot be read */
	bool tcp_locked;                /* a TCP connection was blocked (collect_tcp.c) */
};

/*
 * Run a query (a system call that changes nothing) in thread @thread and
 * return its result; a -errno result of the call is returned as our error.
 * Failures are logged as "cannot <what> of pid P (thread T): why".
 */
int collect_query(struct collect *c, size_t thread, long nr, const uint64_t args[6],
		  int64_t *ret, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define COLLECT_ARGS(...) ((const uint64_t[6]){ __VA_ARGS__ })
/* Copy @len bytes from the scratch page (what the last query wrote). */
int collect_read_scratch(struct collect *c, void *buf, size_t len);
/* All queued siginfos of @tid, private or (PTRACE_PEEKSIGINFO_SHARED) shared. */
int collect_peek_siginfo(struct collect *c, pid_t tid, bool shared,
			 struct ckpt_state_siginfo **ret, size_t *ret_nr);
void collect_identity(const struct stat *st, struct ckpt_state_identity *ret);
/* Split "PATH (deleted)": a new copy of PATH, and whether it was deleted. */
int collect_path(const char *link, char **ret, bool *ret_deleted);

/* The VmFlags of @v (CKPT_VMF_*) as a checkpoint records them (CKPT_STATE_VMF_*). */
uint32_t collect_vma_flags(const struct ckpt_vma *v);

int collect_threads(struct collect *c);
int collect_process(struct collect *c);
int collect_files(struct collect *c);
int collect_mm(struct collect *c);
/* After collect_mm: the contents of ghost files and unmapped memfds, memfd seals. */
int collect_file_contents(struct collect *c);

#endif
