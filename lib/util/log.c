/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt/log.h>

#include "util/err.h"

/*
 * The log sink is the one piece of global state in libckpt (STYLE.md 1):
 * the program installs it once at start-up.
 */
static ckpt_log_sink_fn log_sink;
static void *log_userdata;
static enum ckpt_log_level log_level = CKPT_LOG_WARN;
static char debug_areas[256];
static bool debug_all;

static void default_sink(enum ckpt_log_level level, const char *area,
			 const char *msg, void *userdata)
{
	static const char *const prefix[] = {
		[CKPT_LOG_ERROR] = "error: ",
		[CKPT_LOG_WARN] = "warning: ",
		[CKPT_LOG_INFO] = "",
		[CKPT_LOG_DEBUG] = "debug: ",
	};
	(void)userdata;
	fprintf(stderr, "ckpt: %s%s: %s\n", prefix[level], area, msg);
}

void ckpt_log_set_sink(ckpt_log_sink_fn sink, void *userdata)
{
	log_sink = sink;
	log_userdata = userdata;
}

void ckpt_log_set_level(enum ckpt_log_level level)
{
	if (level > CKPT_LOG_DEBUG)
		level = CKPT_LOG_DEBUG;
	log_level = level;
}

enum ckpt_log_level ckpt_log_get_level(void)
{
	return log_level;
}

int ckpt_log_set_debug_areas(const char *spec)
{
	if (!spec || !*spec)
		return -EINVAL;
	if (strlen(spec) + 3 > sizeof(debug_areas))
		return -ENAMETOOLONG;
	/* Stored as ",a,b," so that a lookup is one strstr of ",area,". */
	snprintf(debug_areas, sizeof(debug_areas), ",%s,", spec);
	debug_all = strstr(debug_areas, ",all,") != NULL;
	return 0;
}

static bool area_enabled(const char *area)
{
	char key[64];

	if (debug_all)
		return true;
	if (!debug_areas[0] || !area)
		return false;
	snprintf(key, sizeof(key), ",%s,", area);
	return strstr(debug_areas, key) != NULL;
}

bool ckpt_log_enabled(enum ckpt_log_level level, const char *area)
{
	if (level <= log_level)
		return true;
	return level == CKPT_LOG_DEBUG && area_enabled(area);
}

void ckpt_logv(enum ckpt_log_level level, const char *area, const char *fmt,
	       va_list ap)
{
	char msg[4096];
	int saved = errno;

	if (!ckpt_log_enabled(level, area))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	(log_sink ? log_sink : default_sink)(level, area ? area : "ckpt", msg,
					     log_userdata);
	errno = saved;
}

void ckpt_log(enum ckpt_log_level level, const char *area, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ckpt_logv(level, area, fmt, ap);
	va_end(ap);
}
