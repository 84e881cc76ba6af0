/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Messages the default sink could not write, and why (the first failure). */
static unsigned long lost_count;
static int lost_errno;

/*
 * Write @len bytes to fd 2 without ever dying of it, whatever the
 * program's dispositions: the library may be logging while it holds a
 * process frozen. SIGPIPE (a closed pipe) and SIGXFSZ (the file size
 * limit) are blocked in this thread for the write; one that the write
 * raised (and that was not pending before) is taken back.
 */
static int write_stderr(const char *buf, size_t len)
{
	static const int sigs[] = { SIGPIPE, SIGXFSZ };
	static const int errs[] = { EPIPE, EFBIG };
	sigset_t set, old, pending;
	bool was_pending[2];
	int err = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGXFSZ);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	if (sigpending(&pending) < 0)
		sigfillset(&pending); /* unknown: take nothing back */
	for (int i = 0; i < 2; i++)
		was_pending[i] = sigismember(&pending, sigs[i]);
	while (len) {
		ssize_t n = write(2, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	for (int i = 0; i < 2; i++) {
		if (err == errs[i] && !was_pending[i]) {
			struct timespec zero = { 0, 0 };
			sigset_t one;

			sigemptyset(&one);
			sigaddset(&one, sigs[i]);
			while (sigtimedwait(&one, NULL, &zero) < 0 && errno == EINTR)
				;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -err;
}

static void default_sink(enum ckpt_log_level level, const char *area,
			 const char *msg, void *userdata)
{
	static const char *const prefix[] = {
		[CKPT_LOG_ERROR] = "error: ",
		[CKPT_LOG_WARN] = "warning: ",
		[CKPT_LOG_INFO] = "",
		[CKPT_LOG_DEBUG] = "debug: ",
	};
	char line[4300];
	int n, r;

	(void)userdata;
	n = snprintf(line, sizeof(line), "ckpt: %s%s: %s\n", prefix[level], area, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	r = write_stderr(line, (size_t)n);
	if (r < 0) {
		/* A closed pipe, a full disk: remembered for ckpt_log_lost(), never fatal. */
		if (__atomic_fetch_add(&lost_count, 1, __ATOMIC_RELAXED) == 0)
			lost_errno = -r;
	}
}

unsigned long ckpt_log_lost(int *ret_errno)
{
	if (ret_errno)
		*ret_errno = lost_errno;
	return __atomic_load_n(&lost_count, __ATOMIC_RELAXED);
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
