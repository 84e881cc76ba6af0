/* SPDX-License-Identifier: MIT */
/* Helpers for the integration tests: run commands, start test programs. */
#ifndef CKPT_TESTUTIL_H
#define CKPT_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct run_result {
	int status;    /* exit code, or 128 + signal */
	char *out;     /* stdout, NUL-terminated */
	char *err;     /* stderr */
};

/* Run @argv (NULL-terminated) to completion; stdin is /dev/null. */
int run_argv(const char *const *argv, struct run_result *res);
/* Run the ckpt binary under test with the given arguments (NULL-terminated). */
int run_ckpt(struct run_result *res, ...) __attribute__((sentinel));
void run_result_done(struct run_result *res);

/* $CKPT_BIN, $CKPT_PROGS/NAME, $CKPT_SRCDIR/REL */
const char *ckpt_bin(void);
const char *prog_path(const char *name, char *buf, size_t len);
const char *src_path(const char *rel, char *buf, size_t len);

struct prog {
	pid_t pid;
	int out_fd;    /* the program's stdout (read end) */
	int in_fd;     /* the program's stdin (write end), -1 if not piped */
};

/*
 * Start test program NAME with arguments (NULL-terminated), stdout on a pipe,
 * and wait until it prints a line "ready" (or @ready_timeout_ms passes).
 */
int prog_start(struct prog *p, bool pipe_stdin, int ready_timeout_ms, const char *name, ...)
	__attribute__((sentinel));
/*
 * Start @argv (any program; argv[0] a path) with stdin piped if @pipe_stdin
 * and stdout on a pipe, or into the file @out_path when not NULL.
 */
int prog_spawn(struct prog *p, bool pipe_stdin, const char *out_path, const char *const *argv);
/* Write @line (newline included) to the program's stdin, whole (asserting). */
void prog_send_line(struct prog *p, const char *line);
/* Read one line from the program's stdout within @timeout_ms; -ETIMEDOUT. */
int prog_read_line(struct prog *p, char *buf, size_t len, int timeout_ms);
/* SIGKILL (if alive) and reap; returns the wait status or -errno. */
int prog_kill(struct prog *p);
/* Wait for exit within @timeout_ms; returns the wait status or -ETIMEDOUT. */
int prog_wait(struct prog *p, int timeout_ms);
/*
 * A program that checks itself: send "check", read every line up to "done";
 * each must end in "ok" (Criterion expectations, logged), and there must be
 * @items of them.
 */
void prog_expect_checks_ok(struct prog *p, const char *what, int items);

/*
 * Every process prog_start/prog_spawn started, and any pid given to
 * prog_track_pid (a restored process), is killed by prog_kill_all: call it
 * from a suite's .fini so that a failed test leaves nothing running.
 */
void prog_track_pid(pid_t pid);
void prog_kill_all(void);
/*
 * A suite's scratch directory: /tmp/ckpt-NAME-XXXXXX made in @dir (a
 * Criterion assertion) and made $CKPT_RUNDIR, so that tests never touch
 * /run/ckpt. suite_dir_remove() kills what the tests started
 * (prog_kill_all), runs the shell command @first if not NULL (an umount),
 * and removes the directory.
 */
void suite_dir_make(char *dir, size_t len, const char *name);
void suite_dir_remove(const char *dir, const char *first);
/* Two busy loops on every CPU, until load_stop() (or 15 minutes). */
void load_start(void);
void load_stop(void);
/* Run a shell command made with printf: its exit status, -1 if it did not exit. */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Seconds since an arbitrary start, monotonic. */
double mono_s(void);
/* Read /proc/PID/status "State:" letter; 0 if gone. */
char proc_state(pid_t pid);
/* Has a mapping of @pid a userfaultfd registration (smaps VmFlags "uw")? */
bool proc_uffd_registered(pid_t pid);



/*
 * Two network namespaces joined by a veth pair: "PREFIX-a-PID" with
 * addr_a, "PREFIX-b-PID" with addr_b (10.231.X.1 and .2). Namespaces left
 * by a crashed run are removed first. -errno with @err set if they cannot be
 * made (no permission, no ip(8)): the caller skips.
 */
struct netns_pair {
	char a[32], b[32];
	char addr_a[20], addr_b[20];
	bool made;
};
int netns_pair_create(struct netns_pair *np, const char *prefix, char *err, size_t errlen);
void netns_pair_destroy(struct netns_pair *np);

/*
 * The start of an argv that runs the rest with stderr on /dev/null:
 * { "/bin/sh", "-c", STDERR_NULL, "prog", "arg", ..., NULL }. For a process
 * of another user: the test's own stderr may be a file of root's, which a
 * restore confined to that user may not open again (docs/SECURITY.md).
 */
#define STDERR_NULL "exec 2>/dev/null; exec \"$0\" \"$@\""

/* Capture libckpt's log messages (all levels) into a buffer. */
void log_capture_start(void);
const char *log_captured(void);
/*
 * The start of a `ckpt page-server -D @dir --listen @listen --json` command
 * line in @argv (run in network namespace @netns if not NULL); returns the
 * number of arguments, for the caller to add its own and the NULL.
 */
int page_server_argv(const char **argv, const char *netns, const char *dir, const char *listen);

#endif
