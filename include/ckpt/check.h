/* SPDX-License-Identifier: MIT */
/*
 * lib/check: probe, with real calls, every kernel feature ckpt relies on.
 */
#ifndef CKPT_CHECK_H
#define CKPT_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ckpt/range.h>
#include <ckpt/util.h>

struct ckpt_probe_result {
	const char *name;      /* "uffd-wp-async" */
	const char *needed_by; /* "track, dump --parent" */
	const char *since;     /* "Linux 6.7" */
	bool core;             /* ckpt's main job needs it */
	bool ok;
	/*
	 * Missing for want of a privilege, not of the kernel: what grants it
	 * ("CAP_SYS_ADMIN"); NULL otherwise.
	 */
	const char *privilege;
	char detail[256];      /* why it is missing, or what was seen */
};

/* A command, or a kind of use, and the features it needs (ckpt_check_commands). */
struct ckpt_check_command {
	const char *name;           /* "restore --lazy" */
	const char *const *needs;   /* feature names, NULL-terminated */
};
/* What each command needs, to say which ones work as the calling user. */
const struct ckpt_check_command *ckpt_check_commands(size_t *ret_nr);

/* Run every probe. @ret is an array the caller frees. */
int ckpt_check_run(struct ckpt_probe_result **ret, size_t *ret_nr) __must_check;
/* True when every core probe passed. */
bool ckpt_check_core_ok(const struct ckpt_probe_result *r, size_t nr);

/*
 * The negative control of PAGEMAP_SCAN: @got (as returned by the kernel, in
 * any order, possibly split or duplicated) must cover exactly the pages of
 * @want. Returns 0, or -EBADMSG with the first difference in @why.
 */
int ckpt_check_verify_written(const struct ckpt_range *got, size_t nr_got,
			      const struct ckpt_range *want, size_t nr_want,
			      uint64_t page_size, char *why, size_t whylen) __must_check;

#endif
