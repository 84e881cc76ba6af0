/* SPDX-License-Identifier: MIT */
/* ckpt page-server: serve a checkpoint's metadata and pages over TCP. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <ckpt/log.h>
#include <ckpt/net.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt page-server -D DIR --listen [ADDR:]PORT [--token-file FILE] [--json]\n"
	"\n"
	"Serve the metadata and the pages of the checkpoint DIR (and its chain) over\n"
	"TCP, to a lazy restore on another machine and any other client of the\n"
	"page-server protocol, until SIGINT or SIGTERM. ADDR defaults to 127.0.0.1;\n"
	"any address that is not a loopback one requires --token-file, and clients\n"
	"must then prove they hold the same secret (and the server proves it to them).\n"
	"Page data is not encrypted: use a trusted network or a tunnel.\n"
	"\n"
	"Options:\n"
	"  -D, --images-dir DIR          the checkpoint to serve\n"
	"      --listen [ADDR:]PORT      where to listen; PORT 0 picks a free port\n"
	"      --token-file FILE         the shared secret (16 to 4096 bytes, mode 0600)\n"
	"      --max-clients N           clients past their handshake at a time (default 32)\n"
	"      --max-handshakes N        connections in their handshake at a time, 1 to 1024\n"
	"                                (default 8); one more drops the oldest, silent first\n"
	"      --max-handshakes-per-address N\n"
	"                                of them from one address, an IPv6 /64 (default 4)\n"
	"      --max-batch N             pages per read request, 1 to 1024 (default 1024)\n"
	"      --handshake-timeout TIME  for the whole handshake, HELLO and AUTH, from the\n"
	"                                connection (default 10s)\n"
	"      --idle-timeout TIME       between two requests, 0 for none (default 300s)\n"
	"      --io-timeout TIME         for the rest of a message, a reply sent (default 30s)\n"
	"      --json                    NDJSON: one line when listening, one per connection end\n"
	"  -v, --verbose                 more messages\n"
	"  -h, --help                    this help\n";

struct conn_out {
	struct cmd_ctx *ctx;
};

static void on_conn(const struct ckpt_page_server_conn_stats *st, void *userdata)
{
	struct conn_out *o = userdata;
	double secs = (double)st->duration_ns / 1e9;

	if (o->ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "event", json_object_new_string("connection"));
		json_object_object_add(j, "peer", json_object_new_string(st->peer));
		json_object_object_add(j, "end", json_object_new_string(st->end));
		json_object_object_add(j, "error",
				       st->error ? json_object_new_string(st->error) : NULL);
		json_object_object_add(j, "authenticated",
				       json_object_new_boolean(st->authenticated));
		json_object_object_add(j, "requests", json_object_new_uint64(st->requests));
		json_object_object_add(j, "request_errors",
				       json_object_new_uint64(st->request_errors));
		json_object_object_add(j, "docs", json_object_new_uint64(st->docs));
		json_object_object_add(j, "pages", json_object_new_uint64(st->pages));
		json_object_object_add(j, "data_pages", json_object_new_uint64(st->data_pages));
		json_object_object_add(j, "bytes_in", json_object_new_uint64(st->bytes_in));
		json_object_object_add(j, "bytes_out", json_object_new_uint64(st->bytes_out));
		json_object_object_add(j, "duration_s", out_json_double(secs, 6));
		out_json(j, true);
		json_object_put(j);
		return;
	}
	{
		char in[32], out[32];

		out_human_bytes(st->bytes_in, in, sizeof(in));
		out_human_bytes(st->bytes_out, out, sizeof(out));
		printf("%s: %s after %.3f s: %" PRIu64 " requests (%" PRIu64 " refused), %" PRIu64
		       " documents, %" PRIu64 " pages (%" PRIu64 " data), %s out, %s in%s%s\n",
		       st->peer, st->end, secs, st->requests, st->request_errors, st->docs,
		       st->pages, st->data_pages, out, in, st->error ? ": " : "",
		       st->error ? st->error : "");
		out_flush();
	}
}

static int parse_ms(struct cmd_ctx *ctx, const char *opt, const char *s, bool zero_is_none,
		    uint64_t *ret)
{
	uint64_t ns;

	if (parse_duration_ns(s, &ns) < 0)
		return out_usage_error(ctx, "invalid duration '%s' for %s", s, opt);
	if (ns == 0 && !zero_is_none)
		return out_usage_error(ctx, "%s must be more than 0", opt);
	*ret = ns == 0 ? CKPT_PAGE_SERVER_NO_TIMEOUT : (ns + 999999) / 1000000;
	return 0;
}

static int run(struct cmd_ctx *ctx, int argc, char **argv)
{
	enum {
		OPT_LISTEN = 256,
		OPT_TOKEN,
		OPT_MAX_CLIENTS,
		OPT_MAX_HANDSHAKES,
		OPT_MAX_HANDSHAKES_ADDR,
		OPT_MAX_BATCH,
		OPT_HANDSHAKE,
		OPT_IDLE,
		OPT_IO
	};
	static const struct option longopts[] = {
		CMD_COMMON_LONGOPTS,
		{"images-dir", required_argument, NULL, 'D'},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"token-file", required_argument, NULL, OPT_TOKEN},
		{"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
		{"max-handshakes", required_argument, NULL, OPT_MAX_HANDSHAKES},
		{"max-handshakes-per-address", required_argument, NULL, OPT_MAX_HANDSHAKES_ADDR},
		{"max-batch", required_argument, NULL, OPT_MAX_BATCH},
		{"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE},
		{"idle-timeout", required_argument, NULL, OPT_IDLE},
		{"io-timeout", required_argument, NULL, OPT_IO},
		{"verbose", no_argument, NULL, 'v'},
		{0},
	};
	_cleanup_(ckpt_page_server_freep) struct ckpt_page_server *srv = NULL;
	struct ckpt_page_server_opts o = {0};
	struct conn_out co = {.ctx = ctx};
	_cleanup_close_ int sfd = -1;
	sigset_t mask;
	uint64_t v;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "hvD:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cmd_print_help(&cmd_page_server);
		case 'J':
			ctx->json = true;
			break;
		case 'v':
			ctx->verbose++;
			ckpt_log_set_level(ctx->verbose >= 2 ? CKPT_LOG_DEBUG : CKPT_LOG_INFO);
			break;
		case 'D':
			o.dir = optarg;
			break;
		case OPT_LISTEN:
			o.listen = optarg;
			break;
		case OPT_TOKEN:
			o.token_file = optarg;
			break;
		case OPT_MAX_CLIENTS:
			if (parse_uint(optarg, 65536, &v) < 0 || v == 0)
				return out_usage_error(
					ctx, "invalid --max-clients '%s': 1 to 65536", optarg);
			o.max_clients = (unsigned int)v;
			break;
		case OPT_MAX_HANDSHAKES:
			if (parse_uint(optarg, 1024, &v) < 0 || v == 0)
				return out_usage_error(
					ctx, "invalid --max-handshakes '%s': 1 to 1024", optarg);
			o.max_handshakes = (unsigned int)v;
			break;
		case OPT_MAX_HANDSHAKES_ADDR:
			if (parse_uint(optarg, 1024, &v) < 0 || v == 0)
				return out_usage_error(
					ctx, "invalid --max-handshakes-per-address '%s': 1 to 1024",
					optarg);
			o.max_handshakes_per_addr = (unsigned int)v;
			break;
		case OPT_MAX_BATCH:
			if (parse_uint(optarg, 1024, &v) < 0 || v == 0)
				return out_usage_error(ctx, "invalid --max-batch '%s': 1 to 1024",
						       optarg);
			o.max_batch = (unsigned int)v;
			break;
		case OPT_HANDSHAKE:
			if ((r = parse_ms(ctx, "--handshake-timeout", optarg, false,
					  &o.handshake_timeout_ms)))
				return r;
			break;
		case OPT_IDLE:
			if ((r = parse_ms(ctx, "--idle-timeout", optarg, true, &o.idle_timeout_ms)))
				return r;
			break;
		case OPT_IO:
			if ((r = parse_ms(ctx, "--io-timeout", optarg, false, &o.io_timeout_ms)))
				return r;
			break;
		default:
			return out_usage_error(ctx, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return out_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	if (!o.dir)
		return out_usage_error(ctx, "no checkpoint: -D DIR is required");
	if (!o.listen)
		return out_usage_error(ctx, "no address: --listen [ADDR:]PORT is required");
	if (o.max_handshakes && o.max_handshakes_per_addr > o.max_handshakes)
		return out_usage_error(
			ctx, "--max-handshakes-per-address %u is more than --max-handshakes %u",
			o.max_handshakes_per_addr, o.max_handshakes);
	o.on_conn = on_conn;
	o.userdata = &co;

	/* Block the stop signals before any thread exists: the client threads inherit it. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return out_error(ctx, EXIT_FAIL, "cannot block signals: %s", strerror(errno));
	sigdelset(&mask, SIGPIPE);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		return out_error(ctx, EXIT_FAIL, "cannot create a signalfd: %s", strerror(errno));

	r = ckpt_page_server_new(&o, &srv);
	if (r == -EPERM || r == -EINVAL) {
		/* Already logged: a non-loopback address without a token, a bad address or token
		 * file. */
		if (!ctx->json)
			fprintf(stderr, "see 'ckpt page-server --help'\n");
		return EXIT_USAGE;
	}
	if (r < 0)
		return EXIT_FAIL;
	if (ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "event", json_object_new_string("listening"));
		json_object_object_add(j, "address",
				       json_object_new_string(ckpt_page_server_address(srv)));
		json_object_object_add(j, "dir", json_object_new_string(o.dir));
		json_object_object_add(
			j, "auth", json_object_new_boolean(ckpt_page_server_authenticates(srv)));
		out_json(j, true);
		json_object_put(j);
	} else {
		printf("listening on %s, serving '%s'%s\n", ckpt_page_server_address(srv), o.dir,
		       ckpt_page_server_authenticates(srv) ? ", token required" : "");
		out_flush();
	}
	r = ckpt_page_server_run(srv, sfd);
	if (ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "event", json_object_new_string("stopped"));
		json_object_object_add(j, "connections",
				       json_object_new_uint64(ckpt_page_server_connections(srv)));
		out_json(j, true);
		json_object_put(j);
	}
	/* The stop signal stays pending and blocked: the exit code is ours. */
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}

const struct command cmd_page_server = {
	.name = "page-server",
	.fn = run,
	.summary = "serve a checkpoint's pages and metadata over TCP",
	.usage = usage,
};
