/* SPDX-License-Identifier: MIT */
/* The ckpt program: shared pieces of the subcommands. */
#ifndef CKPT_CMD_H
#define CKPT_CMD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include <ckpt/util.h>

/* Exit codes, documented in man/ckpt.1. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,     /* the operation failed */
	EXIT_USAGE = 2,    /* bad command line */
	EXIT_MISSING = 3,  /* a kernel feature or capability ckpt needs is missing */
	/*
	 * dump, track -D: refused to protect the process, which runs on as it
	 * was: restore could not recreate what it holds, or a kill would
	 * orphan its children.
	 */
	EXIT_REFUSED = 4,
	EXIT_OUTPUT = 5,   /* the work was done, but output to stdout/stderr was lost */
};

struct cmd_ctx {
	const char *name;  /* the subcommand */
	bool json;
	int verbose;
	/* JSON mode: error messages collected for the final error object. */
	json_object *errors;
	/* JSON mode: more members of the final error object (owned), or NULL. */
	json_object *error_extra;
	/*
	 * The exit code is another process's status (restore, waiting): an
	 * output failure is reported but does not replace it.
	 */
	bool code_is_status;
	/* Die of this signal once the output is finished (an interrupted command). */
	int raise_signal;
};

struct command {
	const char *name;
	int (*fn)(struct cmd_ctx *ctx, int argc, char **argv);
	const char *summary;
	const char *usage; /* full --help text */
};

extern const struct command cmd_check;
extern const struct command cmd_track;
extern const struct command cmd_dump;
extern const struct command cmd_show;
extern const struct command cmd_restore;
extern const struct command cmd_page_server;
extern const struct command cmd_lazy_pages;
extern const struct command cmd_compact;

/* ---- out.c: rendering and errors ---- */
void out_init(struct cmd_ctx *ctx);
/* A failure of the command: logged (text) or collected (JSON); returns @code. */
int out_error(struct cmd_ctx *ctx, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A command-line mistake: one line and a pointer to --help; returns EXIT_USAGE. */
int out_usage_error(struct cmd_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Called once when the command ends: in JSON mode prints the error object.
 * Output that could not be written (a closed pipe, a full disk) is never
 * fatal while ckpt works; it is reported here, once, and turns a
 * successful exit into EXIT_OUTPUT.
 */
int out_finish(struct cmd_ctx *ctx, int code);
/* Whether writing to stdout or stderr failed so far (flushes stdout). */
bool out_lost(void);
/* fflush(stdout), remembering a failure for out_finish(). */
void out_flush(void);
/* Print one JSON document (pretty) or one NDJSON line (@line). */
void out_json(json_object *obj, bool line);
/* A double printed with @decimals digits after the point. */
json_object *out_json_double(double v, int decimals);
/* "512 B", "3.2 KiB", "1.0 GiB" */
void out_human_bytes(uint64_t bytes, char *buf, size_t len);

/*
 * The termination signals a command honours: SIGINT, SIGTERM, SIGHUP and
 * SIGQUIT, less those ckpt was started with ignored (nohup ignores SIGHUP;
 * a shell without job control, SIGINT and SIGQUIT of background jobs).
 * Blocked, an ignored signal is queued all the same: leave it out.
 */
void cmd_term_signals(sigset_t *set);

/* ---- lazy_pages.c ---- */
struct ckpt_lazy_stats;
/* The statistics of one lazily restored process: a log line, or an NDJSON "lazy" event. */
void cmd_lazy_report(struct cmd_ctx *ctx, const struct ckpt_lazy_stats *st);
/* on_done of a lazy-pages server: reports, counts processes left with pages missing. */
struct cmd_lazy_out {
	struct cmd_ctx *ctx;
	unsigned int lost;
};
void cmd_lazy_on_done(const struct ckpt_lazy_stats *st, void *userdata);
struct ckpt_lazy_server;
/* Run @s until done; SIGINT/SIGTERM stop it (the first gently, the second at once). */
int cmd_lazy_serve(struct cmd_ctx *ctx, struct ckpt_lazy_server *s, int listen_fd);

/* ---- parse.c ---- */
int parse_duration_ns(const char *s, uint64_t *ret) __must_check;
int parse_pid(const char *s, pid_t *ret) __must_check;
int parse_uint(const char *s, uint64_t max, uint64_t *ret) __must_check;
int parse_int(const char *s, int64_t min, int64_t max, int64_t *ret) __must_check;
/* A size in bytes: digits and an optional binary unit K, M, G, T (or KiB...). */
int parse_size(const char *s, uint64_t *ret) __must_check;
/*
 * --timeout SECONDS (CRIU's): a number of seconds, fractions allowed, or a
 * duration with a unit ("500ms"); 1 ms at least. In milliseconds, rounded up.
 */
int parse_timeout_ms(const char *s, unsigned int *ret) __must_check;

/* Standard option handling for subcommands: --help and --json. */
#define CMD_COMMON_LONGOPTS { "help", no_argument, NULL, 'h' }, { "json", no_argument, NULL, 'J' }

int cmd_print_help(const struct command *c);
/*
 * From the default case of a subcommand's getopt loop: --json and -v
 * (0: handled, go on), or the usage error for anything else (return it).
 */
int cmd_common_option(struct cmd_ctx *ctx, int c, char **argv);

#endif
