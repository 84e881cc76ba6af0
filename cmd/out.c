/* SPDX-License-Identifier: MIT */
/* Output of the ckpt program: log sink, errors in text and JSON. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <ckpt/log.h>

#include "cmd.h"

/* Messages may come from several threads (the lazy-pages server): one at a time. */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The first write to stdout or stderr that failed (EPIPE: the reader is
 * gone; ENOSPC, EFBIG, EIO: a full disk, a file size limit, a hung-up
 * terminal). SIGPIPE and SIGXFSZ are ignored (ckpt.c), so a failed write
 * only returns an error: ckpt goes on with what it was doing (a process
 * may be frozen) and says so once at the end, in out_finish().
 */
static struct {
	const char *stream;
	int err;
} lost;

/* Under sink_lock. */
static void note_lost(const char *stream, int err)
{
	if (!lost.stream) {
		lost.stream = stream;
		lost.err = err; /* 0: not known (a write of stdio's buffer failed earlier) */
	}
}

static void sink(enum ckpt_log_level level, const char *area, const char *msg, void *userdata)
{
	struct cmd_ctx *ctx = userdata;

	pthread_mutex_lock(&sink_lock);
	if (ctx->json && level == CKPT_LOG_ERROR) {
		char buf[4200];

		snprintf(buf, sizeof(buf), "%s: %s", area, msg);
		json_object_array_add(ctx->errors, json_object_new_string(buf));
		pthread_mutex_unlock(&sink_lock);
		return;
	}
	switch (level) {
	case CKPT_LOG_ERROR:
		fprintf(stderr, "ckpt: %s: %s\n", area, msg);
		break;
	case CKPT_LOG_WARN:
		fprintf(stderr, "ckpt: warning: %s: %s\n", area, msg);
		break;
	case CKPT_LOG_INFO:
		fprintf(stderr, "ckpt: %s: %s\n", area, msg);
		break;
	case CKPT_LOG_DEBUG:
		fprintf(stderr, "ckpt: debug: %s: %s\n", area, msg);
		break;
	}
	if (ferror(stderr))
		note_lost("stderr", errno);
	pthread_mutex_unlock(&sink_lock);
}

void out_init(struct cmd_ctx *ctx)
{
	if (!ctx->errors)
		ctx->errors = json_object_new_array();
	ckpt_log_set_sink(sink, ctx);
}

static int verror(struct cmd_ctx *ctx, int code, const char *fmt, va_list ap)
{
	char buf[4096];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (ctx->json)
		json_object_array_add(ctx->errors, json_object_new_string(buf));
	else
		fprintf(stderr, "ckpt: %s\n", buf);
	return code;
}

int out_error(struct cmd_ctx *ctx, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(ctx, code, fmt, ap);
	va_end(ap);
	return code;
}

int out_usage_error(struct cmd_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(ctx, EXIT_USAGE, fmt, ap);
	va_end(ap);
	if (!ctx->json) {
		if (ctx->name)
			fprintf(stderr, "see 'ckpt %s --help'\n", ctx->name);
		else
			fprintf(stderr, "see 'ckpt --help'\n");
	}
	return EXIT_USAGE;
}

int out_finish(struct cmd_ctx *ctx, int code)
{
	if (ctx->json && code != EXIT_OK) {
		json_object *o = json_object_new_object();
		size_t n = json_object_array_length(ctx->errors);
		json_object *last = n ? json_object_array_get_idx(ctx->errors, n - 1) : NULL;

		json_object_object_add(o, "error",
				       json_object_new_string(last ? json_object_get_string(last)
								   : "failed"));
		json_object_object_add(o, "errors", json_object_get(ctx->errors));
		json_object_object_add(o, "exit_code", json_object_new_int(code));
		if (ctx->error_extra) {
			json_object_object_foreach(ctx->error_extra, key, val)
				json_object_object_add(o, key, json_object_get(val));
		}
		out_json(o, true);
		json_object_put(o);
	}
	json_object_put(ctx->error_extra);
	ctx->error_extra = NULL;
	if (out_lost()) {
		fprintf(stderr, "ckpt: warning: output was lost: cannot write to %s: %s\n", lost.stream,
			lost.err ? strerror(lost.err) : "write error");
		if (code == EXIT_OK && !ctx->code_is_status)
			code = EXIT_OUTPUT;
	}
	return code;
}

void out_flush(void)
{
	int r;

	errno = 0;
	r = fflush(stdout);
	if (r != 0) {
		int e = errno;

		pthread_mutex_lock(&sink_lock);
		note_lost("stdout", e);
		pthread_mutex_unlock(&sink_lock);
	}
}

bool out_lost(void)
{
	bool any;
	int e;

	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		e = errno;
		pthread_mutex_lock(&sink_lock);
		note_lost("stdout", e);
		pthread_mutex_unlock(&sink_lock);
	}
	pthread_mutex_lock(&sink_lock);
	if (ferror(stderr))
		note_lost("stderr", 0);
	any = lost.stream != NULL;
	pthread_mutex_unlock(&sink_lock);
	return any;
}

void out_json(json_object *obj, bool line)
{
	int flags = line ? JSON_C_TO_STRING_PLAIN : JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED;

	fputs(json_object_to_json_string_ext(obj, flags | JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
	fputc('\n', stdout);
	if (line)
		out_flush();
}

int cmd_common_option(struct cmd_ctx *ctx, int c, char **argv)
{
	switch (c) {
	case 'J':
		ctx->json = true;
		return 0;
	case 'v':
		ctx->verbose++;
		ckpt_log_set_level(ctx->verbose > 1 ? CKPT_LOG_DEBUG : CKPT_LOG_INFO);
		return 0;
	}
	if (optopt)
		return out_usage_error(ctx, "option '%s' needs a value", argv[optind - 1]);
	return out_usage_error(ctx, "unknown option '%s'", argv[optind - 1]);
}

int cmd_print_help(const struct command *c)
{
	fputs(c->usage, stdout);
	return EXIT_OK;
}

json_object *out_json_double(double v, int decimals)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	return json_object_new_double_s(v, buf);
}

void out_human_bytes(uint64_t b, char *buf, size_t len)
{
	if (b >= (1ULL << 30))
		snprintf(buf, len, "%.1f GiB", (double)b / (1ULL << 30));
	else if (b >= (1ULL << 20))
		snprintf(buf, len, "%.1f MiB", (double)b / (1ULL << 20));
	else if (b >= 1024)
		snprintf(buf, len, "%.1f KiB", (double)b / 1024);
	else
		snprintf(buf, len, "%" PRIu64 " B", b);
}

void cmd_term_signals(sigset_t *set)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

	sigemptyset(set);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		struct sigaction old;

		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue; /* nohup, or a background job of a shell without job control */
		sigaddset(set, sigs[i]);
	}
}
