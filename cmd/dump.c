/* SPDX-License-Identifier: MIT */
/* ckpt dump: checkpoint a process, full or incremental. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <ckpt/dump.h>
#include <ckpt/image.h>
#include <ckpt/log.h>
#include <ckpt/state.h>
#include <ckpt/track.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt dump -t PID -D DIR [--parent DIR] [--leave-running | --leave-stopped]\n"
	"                 [--compress-level N] [--auto-full] [--allow-unrestorable] [--json]\n"
	"\n"
	"Checkpoint process PID into the new directory DIR. The process is frozen while\n"
	"its state and the pages to save are copied out; compression and writing come\n"
	"after. As in CRIU, the process is killed once the checkpoint is safely on disk,\n"
	"unless --leave-running or --leave-stopped; those keep its writes tracked, so\n"
	"that a later dump with --parent saves only what changed. A failed dump never\n"
	"kills the process and leaves nothing at DIR.\n"
	"\n"
	"Options:\n"
	"  -t, --tree PID             the process to checkpoint\n"
	"  -D, --images-dir DIR       the checkpoint to create (must not exist)\n"
	"      --parent DIR           an earlier checkpoint of the same process: save only\n"
	"                             the pages written since (a delta)\n"
	"      --leave-running        let the process run on (tracked)\n"
	"      --leave-stopped        leave the process stopped with SIGSTOP (tracked)\n"
	"      --compress-level N     zstd level (-7..22, default 1) or \"none\"\n"
	"      --auto-full            if a delta is impossible, take a full dump\n"
	"      --allow-unrestorable   dump even what restore cannot recreate (listed)\n"
	"      --json                 one JSON object\n"
	"  -v, --verbose              more messages\n"
	"  -h, --help                 this help\n"
	"\n"
	"SIGINT, SIGTERM, SIGHUP or SIGQUIT before the commit abandon the dump (the\n"
	"process as it was, nothing at DIR; ckpt dies of the signal); after it, the\n"
	"dump completes. Exit status: 0 committed; 1 failed (the process was not\n"
	"killed, nothing at DIR); 2 usage; 4 committed, but output was lost (a closed\n"
	"pipe, a full disk); 128+N abandoned on signal N.\n";

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static json_object *stats_json(const struct ckpt_dump_opts *o, const struct ckpt_dump_stats *st)
{
	json_object *j = json_object_new_object(), *u = json_object_new_array();
	static const char *const after[] = { "killed", "running", "stopped" };

	json_object_object_add(j, "pid", json_object_new_int(o->pid));
	json_object_object_add(j, "images_dir", json_object_new_string(o->dir));
	json_object_object_add(j, "kind", json_object_new_string(st->delta ? "delta" : "full"));
	json_object_object_add(j, "parent", st->delta ? json_object_new_string(o->parent) : NULL);
	if (st->fallback[0])
		json_object_object_add(j, "fallback", json_object_new_string(st->fallback));
	json_object_object_add(j, "process", json_object_new_string(after[o->after]));
	json_object_object_add(j, "generation", json_object_new_uint64(st->generation));
	json_object_object_add(j, "threads", json_object_new_uint64(st->nr_threads));
	json_object_object_add(j, "mappings", json_object_new_uint64(st->nr_vmas));
	json_object_object_add(j, "files", json_object_new_uint64(st->nr_fds));
	json_object_object_add(j, "pages_scanned", json_object_new_uint64(st->pages_scanned));
	json_object_object_add(j, "pages_data", json_object_new_uint64(st->pages_data));
	json_object_object_add(j, "pages_zero", json_object_new_uint64(st->pages_zero));
	json_object_object_add(j, "pages_hole", json_object_new_uint64(st->pages_hole));
	json_object_object_add(j, "bytes_before_compression", json_object_new_uint64(st->bytes_raw));
	json_object_object_add(j, "bytes_after_compression", json_object_new_uint64(st->bytes_written));
	json_object_object_add(j, "freeze_ms", out_json_double(ms(st->freeze_ns), 3));
	json_object_object_add(j, "prefreeze_ms", out_json_double(ms(st->prefreeze_ns), 3));
	json_object_object_add(j, "precopy_ms", out_json_double(ms(st->precopy_ns), 3));
	json_object_object_add(j, "pages_precopied", json_object_new_uint64(st->pages_precopied));
	json_object_object_add(j, "collect_ms", out_json_double(ms(st->collect_ns), 3));
	json_object_object_add(j, "track_ms", out_json_double(ms(st->track_ns), 3));
	json_object_object_add(j, "copy_ms", out_json_double(ms(st->copy_ns), 3));
	json_object_object_add(j, "write_ms", out_json_double(ms(st->write_ns), 3));
	json_object_object_add(j, "total_ms", out_json_double(ms(st->total_ns), 3));
	for (size_t i = 0; st->unrestorable && i < st->unrestorable->nr; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "what", json_object_new_string(st->unrestorable->v[i].what));
		json_object_object_add(e, "reason", json_object_new_string(st->unrestorable->v[i].reason));
		json_object_array_add(u, e);
	}
	json_object_object_add(j, "unrestorable", u);
	return j;
}

static void print_text(const struct ckpt_dump_opts *o, const struct ckpt_dump_stats *st)
{
	static const char *const after[] = {
		"the process was killed",
		"the process runs on, tracked",
		"the process is left stopped, tracked",
	};
	double raw = (double)st->bytes_raw / (1 << 20), out = (double)st->bytes_written / (1 << 20);

	printf("dumped pid %d to '%s': %s", o->pid, o->dir, st->delta ? "delta of " : "full");
	if (st->delta)
		printf("'%s'", o->parent);
	printf("\n");
	if (st->fallback[0])
		printf("  full, not a delta: %s\n", st->fallback);
	printf("  %zu thread%s, %zu mappings, %zu files\n", st->nr_threads, st->nr_threads > 1 ? "s" : "",
	       st->nr_vmas, st->nr_fds);
	printf("  pages: %" PRIu64 " scanned, %" PRIu64 " data, %" PRIu64 " zero, %" PRIu64 " hole\n",
	       st->pages_scanned, st->pages_data, st->pages_zero, st->pages_hole);
	printf("  %.1f MiB of data -> %.1f MiB written", raw, out);
	if (st->bytes_written)
		printf(" (%.2fx)", (double)st->bytes_raw / (double)st->bytes_written);
	printf("\n");
	printf("  freeze %.2f ms (collect %.2f, track %.2f, copy %.2f); write %.2f ms; total %.2f ms\n",
	       ms(st->freeze_ns), ms(st->collect_ns), ms(st->track_ns), ms(st->copy_ns), ms(st->write_ns),
	       ms(st->total_ns));
	if (st->prefreeze_ns)
		printf("  before it: freeze %.2f ms (harvest), then %" PRIu64 " pages copied in %.2f ms "
		       "while it ran\n", ms(st->prefreeze_ns), st->pages_precopied, ms(st->precopy_ns));
	for (size_t i = 0; st->unrestorable && i < st->unrestorable->nr; i++)
		printf("  not restorable: %s: %s\n", st->unrestorable->v[i].what, st->unrestorable->v[i].reason);
	printf("  %s\n", after[o->after]);
}

/*
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT (cmd_term_signals) stay blocked for
 * the whole dump and are polled: before the commit, one of them aborts it
 * (the process as it was, no checkpoint) and ckpt then dies of it; after
 * the commit the dump completes and reports, kill included, and exits 0.
 */
static sigset_t term;

static int pending_term_signal(void)
{
	static const int order[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	sigset_t p;

	if (sigpending(&p) < 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		if (sigismember(&term, order[i]) && sigismember(&p, order[i]))
			return order[i];
	return 0;
}

static const char *sig_name(int sig)
{
	static char buf[32];
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev)
		snprintf(buf, sizeof(buf), "SIG%s", abbrev);
	else
		snprintf(buf, sizeof(buf), "signal %d", sig);
	return buf;
}

static bool interrupted(void *userdata)
{
	(void)userdata;
	return pending_term_signal() != 0;
}

static int run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		CMD_COMMON_LONGOPTS,
		{ "tree", required_argument, NULL, 't' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "parent", required_argument, NULL, 'P' },
		{ "leave-running", no_argument, NULL, 'R' },
		{ "leave-stopped", no_argument, NULL, 'S' },
		{ "compress-level", required_argument, NULL, 'L' },
		{ "auto-full", no_argument, NULL, 'A' },
		{ "allow-unrestorable", no_argument, NULL, 'U' },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	struct ckpt_dump_opts o = { 0 };
	struct ckpt_dump_stats st;
	bool running = false, stopped = false;
	int c, r, sig;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "ht:D:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cmd_print_help(&cmd_dump);
		case 't':
			if (parse_pid(optarg, &o.pid) < 0)
				return out_usage_error(ctx, "invalid pid '%s'", optarg);
			break;
		case 'D':
			o.dir = optarg;
			break;
		case 'P':
			o.parent = optarg;
			break;
		case 'R':
			running = true;
			break;
		case 'S':
			stopped = true;
			break;
		case 'L':
			if (ckpt_image_parse_level(optarg, &o.level) < 0)
				return out_usage_error(ctx, "invalid compression level '%s'", optarg);
			break;
		case 'A':
			o.auto_full = true;
			break;
		case 'U':
			o.allow_unrestorable = true;
			break;
		default:
			if ((r = cmd_common_option(ctx, c, argv)) != 0)
				return r;
			break;
		}
	}
	if (optind < argc)
		return out_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	if (!o.pid)
		return out_usage_error(ctx, "which process? give -t PID");
	if (!o.dir)
		return out_usage_error(ctx, "where to? give -D DIR");
	if (running && stopped)
		return out_usage_error(ctx, "--leave-running and --leave-stopped exclude each other");
	o.after = running ? CKPT_DUMP_LEAVE_RUNNING : stopped ? CKPT_DUMP_LEAVE_STOPPED : CKPT_DUMP_KILL;
	o.interrupted = interrupted;

	cmd_term_signals(&term);
	sigprocmask(SIG_BLOCK, &term, NULL);
	/* Before the freeze: drop the tracking records of processes that are gone. */
	if ((r = ckpt_track_sweep(NULL, NULL)) < 0)
		ckpt_log(CKPT_LOG_INFO, "track", "cannot look for stale tracking records: %s", strerror(-r));
	r = ckpt_dump_run(&o, &st);
	sig = pending_term_signal();
	if (r == -EINTR && sig) {
		ctx->raise_signal = sig; /* main() dies of it after the output */
		r = out_error(ctx, 128 + sig, "dump of pid %d interrupted by %s before the checkpoint was "
			      "committed: nothing was written to '%s', the process %s", o.pid,
			      sig_name(sig), o.dir, o.after == CKPT_DUMP_KILL ? "was not killed" : "runs on");
		ckpt_dump_stats_done(&st);
		return r;
	}
	if (r < 0) {
		r = out_error(ctx, EXIT_FAIL, "cannot dump pid %d to '%s'%s", o.pid, o.dir,
			      o.after == CKPT_DUMP_KILL ? "; the process was not killed" : "");
		ckpt_dump_stats_done(&st);
		return r;
	}
	if (ctx->json) {
		json_object *j = stats_json(&o, &st);

		out_json(j, false);
		json_object_put(j);
	} else {
		print_text(&o, &st);
		if (sig)
			printf("  %s came after the commit: the dump was completed\n", sig_name(sig));
	}
	ckpt_dump_stats_done(&st);
	/* Left pending and blocked: ckpt exits 0, the dump is done. */
	return EXIT_OK;
}

const struct command cmd_dump = {
	.name = "dump",
	.fn = run,
	.summary = "checkpoint a process (full, or a delta of an earlier checkpoint)",
	.usage = usage,
};
