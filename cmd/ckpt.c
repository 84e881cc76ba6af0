/* SPDX-License-Identifier: MIT */
/* ckpt: command dispatch. */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ckpt/log.h>

#include "cmd.h"

static const struct command *const commands[] = {
	&cmd_check,
	&cmd_track,
	&cmd_dump,
	&cmd_show,
	&cmd_restore,
	&cmd_lazy_pages,
	&cmd_page_server,
	&cmd_compact,
};

static const char main_usage_head[] =
	"Usage: ckpt [OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"Incremental checkpoint/restore of Linux processes.\n"
	"\n"
	"Commands:\n";

static const char main_usage_tail[] =
	"\n"
	"Options:\n"
	"  -v, --verbose   more messages (repeat for debug)\n"
	"      --json      machine-readable output (also accepted after COMMAND)\n"
	"      --version   print the version and exit\n"
	"  -h, --help      this help; 'ckpt COMMAND --help' for a command\n"
	"\n"
	"Environment: CKPT_DEBUG=area,area (or all) enables debug messages per module.\n"
	"Exit status: 0 ok, 1 failed, 2 usage, 4 refused to protect the process, 5 done\n"
	"but output lost, 128+N signal N.\n"
	"See ckpt(1).\n";

static void print_main_usage(FILE *f)
{
	fputs(main_usage_head, f);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
	fputs(main_usage_tail, f);
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

/*
 * ckpt may hold a process frozen (dump, track) or half built (restore):
 * nothing about its own output may kill or stop it then. A closed pipe
 * (SIGPIPE), a file size limit (SIGXFSZ) or a background write to a
 * terminal with tostop (SIGTTOU) become plain write errors, which
 * out_finish() reports once the work is done. Termination signals
 * (SIGINT, SIGTERM, SIGHUP, SIGQUIT) are each command's business: blocked
 * and handled where a process is at stake. A restored process gets every
 * signal disposition of its checkpoint back, so it inherits none of this.
 */
static void setup_signals(void)
{
	struct sigaction sa = { .sa_handler = SIG_IGN };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGXFSZ, &sa, NULL);
	sigaction(SIGTTOU, &sa, NULL);
}

/* Started with fd 0, 1 or 2 closed: keep them taken, or an image file could become stdout. */
static void keep_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		int n;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		n = open("/dev/null", O_RDWR);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

/*
 * Every checkpoint of a chain holds two files open while it is read (and a
 * tree one chain per process): take the hard limit of open files, so that a
 * chain the dump accepted also restores under the same soft limit. The
 * restored process gets its own limits from the checkpoint.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* An interrupted command dies of its signal once it has cleaned up and said so. */
static int finish(struct cmd_ctx *ctx, int code)
{
	if (ctx->raise_signal > 0) {
		int sig = ctx->raise_signal;
		sigset_t set;

		signal(sig, SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, sig);
		raise(sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		return 128 + sig;
	}
	return code;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'J' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cmd_ctx ctx = { 0 };
	const struct command *cmd;
	const char *dbg = getenv("CKPT_DEBUG");
	int c, code;

	keep_std_fds();
	raise_nofile();
	setup_signals();
	out_init(&ctx);
	if (dbg && *dbg && ckpt_log_set_debug_areas(dbg) < 0)
		fprintf(stderr, "ckpt: warning: CKPT_DEBUG='%s' ignored\n", dbg);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'v':
			ctx.verbose++;
			break;
		case 'J':
			ctx.json = true;
			break;
		case 'V':
			printf("ckpt %s\n", CKPT_VERSION);
			return EXIT_OK;
		case 'h':
			print_main_usage(stdout);
			return EXIT_OK;
		default:
			return out_finish(&ctx, out_usage_error(&ctx, "unknown option '%s'",
								argv[optind - 1]));
		}
	}
	if (optind >= argc) {
		print_main_usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		if (optind + 1 >= argc) {
			print_main_usage(stdout);
			return EXIT_OK;
		}
		cmd = find_command(argv[optind + 1]);
		if (!cmd)
			return out_finish(&ctx, out_usage_error(&ctx, "unknown command '%s'",
								argv[optind + 1]));
		return cmd_print_help(cmd);
	}
	cmd = find_command(argv[optind]);
	if (!cmd)
		return out_finish(&ctx, out_usage_error(&ctx, "unknown command '%s'", argv[optind]));
	ctx.name = cmd->name;
	ckpt_log_set_level(ctx.verbose >= 2 ? CKPT_LOG_DEBUG :
			   ctx.verbose == 1 ? CKPT_LOG_INFO : CKPT_LOG_WARN);
	/* The subcommand sees argv[0] = its own name. */
	optind++;
	argc -= optind - 1;
	argv += optind - 1;
	optind = 0; /* full reset of getopt for the subcommand */
	code = cmd->fn(&ctx, argc, argv);
	code = out_finish(&ctx, code);
	json_object_put(ctx.errors);
	return finish(&ctx, code);
}
