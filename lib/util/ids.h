/* SPDX-License-Identifier: MIT */
/*
 * The calling thread takes another user's ids for a while: raw system
 * calls, this thread only (glibc's set*id would change every thread), and
 * the threads it starts meanwhile inherit them.
 */
#ifndef CKPT_UTIL_IDS_H
#define CKPT_UTIL_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct thread_ids {
	bool active;
	bool effective;   /* effective ids (and so no capability), else file-system ids only */
	uid_t fsuid;
	gid_t fsgid, egid;
	int dumpable;
	int nr;
	gid_t groups[256];
};

/*
 * Become @uid, @gid with @groups (@nr of them): its effective ids when
 * @effective (from an effective uid 0, which the real and saved uid 0 give
 * back), else its file-system ids. @s keeps what to go back to; on failure
 * nothing changed.
 */
int thread_ids_become(struct thread_ids *s, uid_t uid, gid_t gid, const gid_t *groups, size_t nr,
		      bool effective);
/* Back to what the thread had (nothing if @s is not active). */
void thread_ids_restore(struct thread_ids *s);

#endif
