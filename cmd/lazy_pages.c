/* SPDX-License-Identifier: MIT */
/* ckpt lazy-pages: the lazy-pages server as a program of its own. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ckpt/lazy.h>
#include <ckpt/log.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt lazy-pages --socket PATH [--json]\n"
	"       ckpt lazy-pages --attach PID [-D DIR | --from URL [--token-file FILE]] [--json]\n"
	"\n"
	"Serve the memory of lazily restored processes: their page faults first, and\n"
	"the rest in the background until every page is in; then each process runs on\n"
	"its own. With --socket, `ckpt restore --lazy --lazy-socket PATH` hands\n"
	"processes over to this server, which serves any number of them until SIGINT or\n"
	"SIGTERM: the first one stops taking new processes and ends once the current\n"
	"ones are complete, a second one ends at once (SIGHUP always stops it gently).\n"
	"With --attach, it takes over the lazy restore of PID from a server that died\n"
	"or was stopped: the faults of that process wait, they never read zeros, until\n"
	"a server takes over.\n"
	"\n"
	"Options:\n"
	"      --socket PATH      listen for handovers at the UNIX socket PATH\n"
	"      --attach PID       take over the lazy restore of PID (repeatable)\n"
	"  -D, --images-dir DIR   for --attach: read the pages from DIR instead of the\n"
	"                         source recorded by the restore\n"
	"      --from URL         for --attach: read them from a page server,\n"
	"                         tcp://ADDR:PORT (see ckpt-page-server(1))\n"
	"      --token-file FILE  the page server's shared secret\n"
	"      --readahead N      the most pages served per fault, 1 to 1024 (default 16):\n"
	"                         1 for a fault on its own, doubled per sequential fault\n"
	"      --no-fill          serve faults only, no background fill (the process\n"
	"                         is served until it exits)\n"
	"      --json             NDJSON: one \"lazy\" line per process when it is done\n"
	"  -v, --verbose          more messages\n"
	"  -h, --help             this help\n";

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

void cmd_lazy_report(struct cmd_ctx *ctx, const struct ckpt_lazy_stats *st)
{
	uint64_t pages = st->pages_fault + st->pages_fill;

	if (ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "event", json_object_new_string("lazy"));
		json_object_object_add(j, "pid", json_object_new_int(st->pid));
		json_object_object_add(j, "end", json_object_new_string(st->end));
		json_object_object_add(j, "resume_ms",
				       st->resume_ns ? out_json_double(ms(st->resume_ns), 3) : NULL);
		json_object_object_add(j, "eager_pages", json_object_new_uint64(st->eager_pages));
		json_object_object_add(j, "faults", json_object_new_uint64(st->faults));
		json_object_object_add(j, "pages_fault", json_object_new_uint64(st->pages_fault));
		json_object_object_add(j, "pages_fill", json_object_new_uint64(st->pages_fill));
		json_object_object_add(j, "pages_zero", json_object_new_uint64(st->pages_zero));
		json_object_object_add(j, "bytes", json_object_new_uint64(st->bytes));
		json_object_object_add(j, "fault_p50_us", out_json_double(us(st->lat_p50_ns), 1));
		json_object_object_add(j, "fault_p99_us", out_json_double(us(st->lat_p99_ns), 1));
		json_object_object_add(j, "fault_max_us", out_json_double(us(st->lat_max_ns), 1));
		json_object_object_add(j, "serve_ms", out_json_double(ms(st->serve_ns), 3));
		json_object_object_add(j, "total_ms",
				       st->resume_ns ? out_json_double(ms(st->total_ns), 3) : NULL);
		out_json(j, true);
		json_object_put(j);
		return;
	}
	{
		char bytes[32], resumed[64] = "";

		out_human_bytes(st->bytes, bytes, sizeof(bytes));
		if (st->resume_ns)
			snprintf(resumed, sizeof(resumed), "ran after %.1f ms, ", ms(st->resume_ns));
		/* The result of the command: shown whatever the log level. */
		fprintf(stderr,
			"ckpt: lazy: pid %d %s after %.1f ms: %s%" PRIu64 " faults (p50 %.0f us, p99 %.0f us, "
			"max %.0f us), %" PRIu64 " pages (%" PRIu64 " by fault, %" PRIu64 " by fill, %" PRIu64
			" zero) and %" PRIu64 " before it ran, %s\n",
			st->pid, st->end, ms(st->resume_ns ? st->total_ns : st->serve_ns), resumed, st->faults,
			us(st->lat_p50_ns), us(st->lat_p99_ns), us(st->lat_max_ns), pages, st->pages_fault,
			st->pages_fill, st->pages_zero, st->eager_pages, bytes);
		fflush(stderr);
	}
}

void cmd_lazy_on_done(const struct ckpt_lazy_stats *st, void *userdata)
{
	struct cmd_lazy_out *o = userdata;

	if (!strcmp(st->end, "lost") || !strcmp(st->end, "stopped"))
		o->lost++;
	cmd_lazy_report(o->ctx, st);
}

static struct ckpt_lazy_server *the_server;

static void on_signal(int sig)
{
	static volatile sig_atomic_t count;

	if (the_server)
		ckpt_lazy_server_stop(the_server, sig != SIGHUP && ++count > 1);
}

int cmd_lazy_serve(struct cmd_ctx *ctx, struct ckpt_lazy_server *s, int listen_fd)
{
	struct sigaction sa = { .sa_handler = on_signal }, old_int, old_term, old_hup;
	sigset_t set;
	int r;

	/*
	 * SIGHUP (the terminal went away) stops it gently too, as the first
	 * SIGINT does: the processes it serves still get all their pages.
	 */
	the_server = s;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	r = ckpt_lazy_server_run(s, listen_fd);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	the_server = NULL;
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "the lazy-pages server failed: %s", strerror(-r));
	return EXIT_OK;
}

static int run(struct cmd_ctx *ctx, int argc, char **argv)
{
	enum { OPT_SOCKET = 256, OPT_ATTACH, OPT_FROM, OPT_TOKEN, OPT_READAHEAD, OPT_NO_FILL };
	static const struct option longopts[] = {
		CMD_COMMON_LONGOPTS,
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "attach", required_argument, NULL, OPT_ATTACH },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "token-file", required_argument, NULL, OPT_TOKEN },
		{ "readahead", required_argument, NULL, OPT_READAHEAD },
		{ "no-fill", no_argument, NULL, OPT_NO_FILL },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	_cleanup_(ckpt_lazy_server_freep) struct ckpt_lazy_server *s = NULL;
	struct cmd_lazy_out out = { .ctx = ctx };
	struct ckpt_lazy_opts lo = { .on_done = cmd_lazy_on_done, .userdata = &out };
	struct ckpt_lazy_source src = { 0 };
	_cleanup_free_ char *dir = NULL;
	const char *socket_path = NULL;
	pid_t attach[64];
	size_t nr_attach = 0;
	_cleanup_close_ int lfd = -1;
	sigset_t stop, pending;
	uint64_t v;
	pid_t pid;
	int c, r, sig;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "hD:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cmd_print_help(&cmd_lazy_pages);
		case OPT_SOCKET:
			socket_path = optarg;
			break;
		case OPT_ATTACH:
			if (parse_pid(optarg, &pid) < 0)
				return out_usage_error(ctx, "invalid pid '%s' for --attach", optarg);
			if (nr_attach == ARRAY_SIZE(attach))
				return out_usage_error(ctx, "at most %zu --attach", ARRAY_SIZE(attach));
			attach[nr_attach++] = pid;
			break;
		case 'D':
			src.dir = optarg;
			break;
		case OPT_FROM:
			src.url = optarg;
			break;
		case OPT_TOKEN:
			src.token_file = optarg;
			break;
		case OPT_READAHEAD:
			if (parse_uint(optarg, 1024, &v) < 0 || !v)
				return out_usage_error(ctx, "invalid --readahead '%s': 1 to 1024 pages", optarg);
			lo.readahead = (unsigned int)v;
			break;
		case OPT_NO_FILL:
			lo.no_fill = true;
			break;
		default:
			if ((r = cmd_common_option(ctx, c, argv)) != 0)
				return r;
			break;
		}
	}
	if (optind < argc)
		return out_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	if (!socket_path && !nr_attach)
		return out_usage_error(ctx, "nothing to serve: give --socket PATH or --attach PID");
	if (src.dir && src.url)
		return out_usage_error(ctx, "-D and --from are exclusive");
	if ((src.dir || src.url) && !nr_attach)
		return out_usage_error(ctx, "-D and --from go with --attach (a handover says where its pages are)");
	if (src.token_file && !src.url)
		return out_usage_error(ctx, "--token-file goes with --from");
	if (src.dir) {
		dir = realpath(src.dir, NULL);
		if (!dir)
			return out_error(ctx, EXIT_FAIL, "cannot use '%s': %s", src.dir, strerror(errno));
		src.dir = dir;
	}

	r = ckpt_lazy_server_new(&lo, &s);
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "cannot start the server: %s", strerror(-r));
	/*
	 * Taking over: SIGINT and SIGTERM held (a seize is never cut short), but
	 * waiting for a page server (--from) ends at once when one comes; one
	 * that comes later stops the server as it would while it serves.
	 */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	for (size_t i = 0; i < nr_attach; i++) {
		r = ckpt_lazy_server_attach(s, attach[i], &src);
		if (r < 0 && sigpending(&pending) == 0 &&
		    (sig = sigismember(&pending, SIGINT) ? SIGINT : sigismember(&pending, SIGTERM) ? SIGTERM : 0)) {
			ctx->raise_signal = sig; /* main() dies of it after the output */
			return out_error(ctx, 128 + sig,
					 "take-over of the lazy restore of pid %d interrupted by %s: the process "
					 "waits for a server, as before",
					 attach[i], sig == SIGINT ? "SIGINT" : "SIGTERM");
		}
		if (r < 0)
			return out_error(ctx, EXIT_FAIL, "cannot take over the lazy restore of pid %d", attach[i]);
	}
	if (socket_path) {
		lfd = ckpt_lazy_listen(socket_path);
		if (lfd < 0)
			return out_error(ctx, EXIT_FAIL, "cannot serve at '%s'", socket_path);
		if (ctx->json) {
			json_object *j = json_object_new_object();

			json_object_object_add(j, "event", json_object_new_string("listening"));
			json_object_object_add(j, "socket", json_object_new_string(socket_path));
			json_object_object_add(j, "pid", json_object_new_int(getpid()));
			out_json(j, true);
			json_object_put(j);
		} else {
			ckpt_log(CKPT_LOG_INFO, "lazy", "listening at '%s'", socket_path);
		}
	}
	r = cmd_lazy_serve(ctx, s, lfd);
	if (socket_path)
		(void)unlink(socket_path);
	if (r != EXIT_OK)
		return r;
	if (out.lost)
		return out_error(ctx, EXIT_FAIL,
				 "%u process(es) left with pages missing: 'ckpt lazy-pages --attach PID' takes over",
				 out.lost);
	return EXIT_OK;
}

const struct command cmd_lazy_pages = {
	.name = "lazy-pages",
	.fn = run,
	.summary = "serve the memory of lazily restored processes",
	.usage = usage,
};
