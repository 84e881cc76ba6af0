/* SPDX-License-Identifier: MIT */
/* ckpt restore: bring a checkpointed process back and (by default) wait for it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/log.h>
#include <ckpt/restore.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt restore -D DIR [--detach] [--pidfile FILE] [--restore-pid]\n"
	"                    [--leave-stopped] [--stdio inherit|null|FILE] [--json]\n"
	"\n"
	"Restore the checkpoint DIR (a full one, or the newest delta of a chain) and\n"
	"let the process run on from where it was. By default ckpt waits for it and\n"
	"exits with its status, as a shell would, forwarding SIGINT, SIGTERM, SIGHUP and\n"
	"SIGQUIT to it; --detach returns at once and prints its pid.\n"
	"\n"
	"Options:\n"
	"  -D, --images-dir DIR   the checkpoint to restore\n"
	"  -d, --detach           do not wait for the process: print its pid and exit\n"
	"      --pidfile FILE     write its pid to FILE (before it runs)\n"
	"      --restore-pid      the pid it had when dumped, or fail if it is taken\n"
	"      --leave-stopped    leave it stopped (SIGSTOP) once restored\n"
	"      --stdio MODE       fds 0-2 that were a tty or a pipe: inherit ckpt's own\n"
	"                         (default), null (/dev/null), or a FILE to append to\n"
	"      --json             one JSON object when it runs (and one when it ends)\n"
	"  -v, --verbose          more messages\n"
	"  -h, --help             this help\n";

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* Wait for @pid, forwarding termination signals; its status as a shell reports it. */
static int wait_child(pid_t pid)
{
	sigset_t set;
	int status;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	for (;;) {
		siginfo_t si;
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return EXIT_FAIL;
		if (sigwaitinfo(&set, &si) < 0)
			continue;
		if (si.si_signo != SIGCHLD)
			kill(pid, si.si_signo);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static int run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		CMD_COMMON_LONGOPTS,
		{ "images-dir", required_argument, NULL, 'D' },
		{ "detach", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "restore-pid", no_argument, NULL, 'P' },
		{ "leave-stopped", no_argument, NULL, 'S' },
		{ "stdio", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	struct ckpt_restore_opts o = { 0 };
	struct ckpt_restore_stats st;
	const char *pidfile = NULL;
	bool detach = false;
	sigset_t set;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "hD:dv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cmd_print_help(&cmd_restore);
		case 'J':
			ctx->json = true;
			break;
		case 'v':
			ctx->verbose++;
			ckpt_log_set_level(ctx->verbose > 1 ? CKPT_LOG_DEBUG : CKPT_LOG_INFO);
			break;
		case 'D':
			o.dir = optarg;
			break;
		case 'd':
			detach = true;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 'P':
			o.restore_pid = true;
			break;
		case 'S':
			o.leave_stopped = true;
			break;
		case 's':
			if (!strcmp(optarg, "inherit")) {
				o.stdio = CKPT_STDIO_INHERIT;
			} else if (!strcmp(optarg, "null")) {
				o.stdio = CKPT_STDIO_NULL;
			} else if (!*optarg) {
				return out_usage_error(ctx, "--stdio needs inherit, null or a file");
			} else {
				o.stdio = CKPT_STDIO_FILE;
				o.stdio_file = optarg;
			}
			break;
		default:
			if (optopt)
				return out_usage_error(ctx, "option '%s' needs a value", argv[optind - 1]);
			return out_usage_error(ctx, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return out_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	if (!o.dir)
		return out_usage_error(ctx, "which checkpoint? give -D DIR");

	/* Signals are forwarded once it runs: keep them until then. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, NULL);

	o.pidfile = pidfile;
	r = ckpt_restore_run(&o, &st);
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "cannot restore '%s'", o.dir);
	if (ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "pid", json_object_new_int(st.pid));
		json_object_object_add(j, "images_dir", json_object_new_string(o.dir));
		json_object_object_add(j, "chain_length", json_object_new_uint64(st.chain_length));
		json_object_object_add(j, "mappings", json_object_new_uint64(st.nr_vmas));
		json_object_object_add(j, "files", json_object_new_uint64(st.nr_fds));
		json_object_object_add(j, "pages_data", json_object_new_uint64(st.pages_data));
		json_object_object_add(j, "pages_zero", json_object_new_uint64(st.pages_zero));
		json_object_object_add(j, "bytes_written", json_object_new_uint64(st.bytes_written));
		json_object_object_add(j, "check_ms", out_json_double(ms(st.check_ns), 3));
		json_object_object_add(j, "pages_ms", out_json_double(ms(st.pages_ns), 3));
		json_object_object_add(j, "restore_ms", out_json_double(ms(st.total_ns), 3));
		out_json(j, true);
		json_object_put(j);
	} else if (detach) {
		printf("%d\n", st.pid);
		fflush(stdout);
	} else {
		ckpt_log(CKPT_LOG_INFO, "restore", "restored pid %d from '%s' in %.1f ms", st.pid, o.dir,
			 ms(st.total_ns));
	}
	if (detach)
		return EXIT_OK;
	r = wait_child(st.pid);
	if (ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "event", json_object_new_string("exit"));
		json_object_object_add(j, "pid", json_object_new_int(st.pid));
		json_object_object_add(j, "status", json_object_new_int(r));
		out_json(j, true);
		json_object_put(j);
	}
	return r;
}

const struct command cmd_restore = {
	.name = "restore",
	.fn = run,
	.summary = "restore a checkpoint and let the process run on",
	.usage = usage,
};
