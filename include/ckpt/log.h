/* SPDX-License-Identifier: MIT */
/*
 * Logging of libckpt. The library never prints by itself: it hands every
 * message to a sink the program installs. Levels go from error to debug;
 * debug messages are shown per area (CKPT_DEBUG=inject,track or "all").
 */
#ifndef CKPT_LOG_H
#define CKPT_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include <ckpt/util.h>

enum ckpt_log_level {
	CKPT_LOG_ERROR = 0,
	CKPT_LOG_WARN,
	CKPT_LOG_INFO,
	CKPT_LOG_DEBUG,
};

/* @area is the module that logged ("track"), @msg has no trailing newline. */
typedef void (*ckpt_log_sink_fn)(enum ckpt_log_level level, const char *area,
				 const char *msg, void *userdata);

/*
 * Install @sink (NULL: the default sink, which writes to stderr). A sink
 * may be called while a process is frozen: it must not block for long nor
 * let the program die of its output (SIGPIPE, SIGXFSZ). The default sink
 * never dies of SIGPIPE, whatever the program's disposition of it; what it
 * could not write is counted (ckpt_log_lost) for the program to report.
 */
void ckpt_log_set_sink(ckpt_log_sink_fn sink, void *userdata);
/* Messages the default sink could not write; @ret_errno (may be NULL): why, the first time. */
unsigned long ckpt_log_lost(int *ret_errno);
/* Messages above @level are dropped, except debug of enabled areas. */
void ckpt_log_set_level(enum ckpt_log_level level);
enum ckpt_log_level ckpt_log_get_level(void);
/*
 * Enable debug messages for a comma-separated list of areas, "all" for
 * every area. Returns -EINVAL for an empty spec.
 */
int ckpt_log_set_debug_areas(const char *spec) __must_check;
bool ckpt_log_enabled(enum ckpt_log_level level, const char *area);

void ckpt_log(enum ckpt_log_level level, const char *area, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ckpt_logv(enum ckpt_log_level level, const char *area, const char *fmt,
	       va_list ap) __attribute__((format(printf, 3, 0)));

#endif
