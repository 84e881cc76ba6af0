/* SPDX-License-Identifier: MIT */
/*
 * Internal logging macros. Each file defines LOG_AREA ("track") before
 * including this header; messages carry that area as their prefix.
 */
#ifndef CKPT_LIB_LOG_H
#define CKPT_LIB_LOG_H

#include <string.h>

#include <ckpt/log.h>

#ifndef LOG_AREA
#error "define LOG_AREA before including util/log.h"
#endif

#define pr_err(fmt, ...) ckpt_log(CKPT_LOG_ERROR, LOG_AREA, fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...) ckpt_log(CKPT_LOG_WARN, LOG_AREA, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...) ckpt_log(CKPT_LOG_INFO, LOG_AREA, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...)                                              \
	do {                                                            \
		if (ckpt_log_enabled(CKPT_LOG_DEBUG, LOG_AREA))         \
			ckpt_log(CKPT_LOG_DEBUG, LOG_AREA, fmt,         \
				 ##__VA_ARGS__);                        \
	} while (0)

/* strerror() of a negative errno value. */
#define errstr(r) strerror((r) < 0 ? -(r) : (r))

#endif
