/* SPDX-License-Identifier: MIT */
/* ckpt dump: checkpoint a process, full or incremental. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <ckpt/dump.h>
#include <ckpt/image.h>
#include <ckpt/inject.h>
#include <ckpt/log.h>
#include <ckpt/state.h>
#include <ckpt/track.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt dump -t PID -D DIR [--parent DIR] [--leave-running | --leave-stopped]\n"
	"                 [--compress-level N] [--auto-full] [--allow-unrestorable]\n"
	"                 [--ghost-limit SIZE] [--ext-unix-sk] [--tcp-established]\n"
	"                 [--timeout SECONDS] [--json]\n"
	"\n"
	"Checkpoint process PID and all its descendants (its process tree) into the new\n"
	"directory DIR. They are frozen together while their state and the pages to\n"
	"save are copied out; compression and writing come after. As in CRIU, they are\n"
	"killed once the checkpoint is safely on disk, unless --leave-running or\n"
	"--leave-stopped; those keep their writes tracked, so that a later dump with\n"
	"--parent saves only what changed. A failed dump never kills a process and\n"
	"leaves nothing at DIR. A tree that holds what restore cannot recreate is not\n"
	"dumped (exit status 4).\n"
	"\n"
	"Options:\n"
	"  -t, --tree PID             the root of the process tree to checkpoint\n"
	"  -D, --images-dir DIR       the checkpoint to create (must not exist)\n"
	"      --parent DIR           an earlier checkpoint of the same process: save only\n"
	"                             the pages written since (a delta)\n"
	"      --leave-running        let the process run on (tracked)\n"
	"      --leave-stopped        leave the process stopped with SIGSTOP (tracked)\n"
	"      --compress-level N     zstd level (-7..22, default 1) or \"none\"\n"
	"      --auto-full            if a delta is impossible, take a full dump\n"
	"      --allow-unrestorable   dump even what restore cannot recreate (listed)\n"
	"      --ghost-limit SIZE     save the contents of deleted files still open or\n"
	"                             mapped up to SIZE bytes each (K, M, G; default\n"
	"                             1M); a larger one is refused\n"
	"      --ext-unix-sk          accept unix sockets connected to a peer outside\n"
	"                             the process: restore connects them again to the\n"
	"                             peer's address (without it they are refused)\n"
	"      --tcp-established      save established TCP connections (TCP_REPAIR);\n"
	"                             each is blocked with nft(8) until restore, so\n"
	"                             that its peer sees a delay, not a reset\n"
	"      --timeout SECONDS      how long to wait for every thread to stop (default\n"
	"                             10); a thread in uninterruptible sleep (D) fails\n"
	"                             the dump then, and the process runs on as it was\n"
	"      --json                 one JSON object\n"
	"  -v, --verbose              more messages\n"
	"  -h, --help                 this help\n"
	"\n"
	"SIGINT, SIGTERM, SIGHUP or SIGQUIT before the commit abandon the dump (the\n"
	"process as it was, nothing at DIR; ckpt dies of the signal); after it, the\n"
	"dump completes. Exit status: 0 committed; 1 failed (the process was not\n"
	"killed, nothing at DIR); 2 usage; 4 refused, the process as it was; 5\n"
	"committed, but output was lost (a closed pipe, a full disk); 128+N abandoned\n"
	"on signal N.\n";

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static const char *access_name(int accmode)
{
	return accmode == O_RDONLY ? "read" : accmode == O_WRONLY ? "write" : "read-write";
}

/* What restore does with a pipe or fifo (ckpt-restore(1), "Pipes and fifos"). */
static const char *pipe_restore(const struct ckpt_dump_pipe *p)
{
	if (p->fifo)
		return "reopen";
	if (p->peer_inside)
		return "recreate";
	return p->fd <= 2 ? "inherit_fd" : "inherit_fd_or_null";
}

static json_object *pipes_json(const struct ckpt_dump_stats *st)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < st->nr_pipes; i++) {
		const struct ckpt_dump_pipe *p = &st->pipes[i];
		json_object *e = json_object_new_object();
		char key[64];

		snprintf(key, sizeof(key), "pipe:[%" PRIu64 "]", p->ino);
		json_object_object_add(e, "pid", json_object_new_int(p->pid));
		json_object_object_add(e, "fd", json_object_new_int(p->fd));
		json_object_object_add(e, "kind", json_object_new_string(p->fifo ? "fifo" : "pipe"));
		json_object_object_add(e, "key", json_object_new_string(p->fifo && p->path ? p->path : key));
		json_object_object_add(e, "ino", json_object_new_uint64(p->ino));
		json_object_object_add(e, "access", json_object_new_string(access_name(p->accmode)));
		if (p->fifo)
			json_object_object_add(e, "path", p->path ? json_object_new_string(p->path) : NULL);
		json_object_object_add(e, "peer_inside", json_object_new_boolean(p->peer_inside));
		json_object_object_add(e, "queued_bytes", json_object_new_uint64(p->queued));
		json_object_object_add(e, "saved", json_object_new_boolean(p->saved));
		json_object_object_add(e, "restore", json_object_new_string(pipe_restore(p)));
		json_object_array_add(a, e);
	}
	return a;
}

static json_object *unrestorable_json(const struct ckpt_dump_stats *st)
{
	json_object *u = json_object_new_array();

	for (size_t i = 0; st->unrestorable && i < st->unrestorable->nr; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "what", json_object_new_string(st->unrestorable->v[i].what));
		json_object_object_add(e, "reason", json_object_new_string(st->unrestorable->v[i].reason));
		json_object_array_add(u, e);
	}
	return u;
}

static json_object *processes_json(const struct ckpt_dump_stats *st)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < st->nr_processes; i++) {
		const struct ckpt_dump_process *p = &st->processes[i];
		json_object *e = json_object_new_object();

		json_object_object_add(e, "pid", json_object_new_int(p->pid));
		json_object_object_add(e, "ppid", json_object_new_int(p->ppid));
		json_object_object_add(e, "comm", json_object_new_string(p->comm));
		json_object_object_add(e, "zombie", json_object_new_boolean(p->zombie));
		json_object_object_add(e, "threads", json_object_new_uint64(p->threads));
		json_object_object_add(e, "kind", json_object_new_string(p->zombie ? "zombie" : p->delta ? "delta" : "full"));
		json_object_array_add(a, e);
	}
	return a;
}

/* One line per pipe or fifo: what it is and what restore will need. */
static void print_pipe(const struct ckpt_dump_pipe *p, bool tree)
{
	const char *end = p->accmode == O_RDONLY ? "read end" : p->accmode == O_WRONLY ? "write end"
											: "read-write";
	char who[32] = "";

	if (tree)
		snprintf(who, sizeof(who), " of pid %d", p->pid);
	if (p->fifo)
		printf("  fd %d%s is fifo '%s' (%s): restore opens it again by that path, waiting for "
		       "the other side", p->fd, who, p->path ? p->path : "?", end);
	else if (p->peer_inside)
		printf("  fd %d%s is pipe:[%" PRIu64 "] (%s) with both ends in the checkpoint: restore "
		       "makes it again", p->fd, who, p->ino, end);
	else if (p->fd <= 2)
		printf("  fd %d%s is pipe:[%" PRIu64 "] (%s): restore needs --inherit-fd "
		       "fd[N]:pipe:[%" PRIu64 "] (N: an fd of ckpt restore), or --stdio "
		       "inherit|null|FILE; else it refuses", p->fd, who, p->ino, end, p->ino);
	else
		printf("  fd %d%s is pipe:[%" PRIu64 "] (%s): restore needs --inherit-fd "
		       "fd[N]:pipe:[%" PRIu64 "], or it gets /dev/null", p->fd, who, p->ino, end, p->ino);
	if (p->queued)
		printf("; the %" PRIu64 " byte%s in it %s", p->queued, p->queued > 1 ? "s" : "",
		       p->saved ? "are saved" : "are not saved");
	printf("\n");
}

static json_object *stats_json(const struct ckpt_dump_opts *o, const struct ckpt_dump_stats *st)
{
	json_object *j = json_object_new_object();
	static const char *const after[] = { "killed", "running", "stopped" };

	json_object_object_add(j, "pid", json_object_new_int(o->pid));
	json_object_object_add(j, "images_dir", json_object_new_string(o->dir));
	json_object_object_add(j, "kind", json_object_new_string(st->delta ? "delta" : "full"));
	json_object_object_add(j, "parent", st->delta ? json_object_new_string(o->parent) : NULL);
	if (st->fallback[0])
		json_object_object_add(j, "fallback", json_object_new_string(st->fallback));
	json_object_object_add(j, "process", json_object_new_string(st->died_pid == o->pid ? "died" : after[o->after]));
	if (st->died_pid) {
		json_object_object_add(j, "died_pid", json_object_new_int(st->died_pid));
		json_object_object_add(j, "died_how", json_object_new_string(st->died_how));
	}
	json_object_object_add(j, "generation", json_object_new_uint64(st->generation));
	json_object_object_add(j, "threads", json_object_new_uint64(st->nr_threads));
	json_object_object_add(j, "mappings", json_object_new_uint64(st->nr_vmas));
	json_object_object_add(j, "files", json_object_new_uint64(st->nr_fds));
	json_object_object_add(j, "pages_scanned", json_object_new_uint64(st->pages_scanned));
	json_object_object_add(j, "pages_data", json_object_new_uint64(st->pages_data));
	json_object_object_add(j, "pages_zero", json_object_new_uint64(st->pages_zero));
	json_object_object_add(j, "pages_hole", json_object_new_uint64(st->pages_hole));
	json_object_object_add(j, "pages_inherited", json_object_new_uint64(st->pages_inherited));
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
	json_object_object_add(j, "unrestorable", unrestorable_json(st));
	json_object_object_add(j, "processes", processes_json(st));
	json_object_object_add(j, "pipes", pipes_json(st));
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
	if (st->nr_processes > 1)
		printf("  %zu processes, ", st->nr_processes);
	else
		printf("  ");
	printf("%zu thread%s, %zu mappings, %zu files\n", st->nr_threads, st->nr_threads > 1 ? "s" : "",
	       st->nr_vmas, st->nr_fds);
	printf("  pages: %" PRIu64 " scanned, %" PRIu64 " data, %" PRIu64 " zero, %" PRIu64 " hole",
	       st->pages_scanned, st->pages_data, st->pages_zero, st->pages_hole);
	if (st->pages_inherited)
		printf(", %" PRIu64 " a parent's (saved once)", st->pages_inherited);
	printf("\n");
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
	for (size_t i = 0; i < st->nr_pipes; i++)
		print_pipe(&st->pipes[i], st->nr_processes > 1);
	for (size_t i = 1; i < st->nr_processes; i++)
		printf("  with pid %d (%s), child of %d%s\n", st->processes[i].pid, st->processes[i].comm,
		       st->processes[i].ppid, st->processes[i].zombie ? ", a zombie" : "");
	if (st->died_pid)
		printf("  pid %d died before ckpt's kill%s%s, not by ckpt: every page had been read while it "
		       "was frozen, the checkpoint is whole\n", st->died_pid, *st->died_how ? ": " : "",
		       st->died_how);
	if (st->died_pid != o->pid)
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
		{ "timeout", required_argument, NULL, 'T' },
		{ "ghost-limit", required_argument, NULL, 'G' },
		{ "ext-unix-sk", no_argument, NULL, 'X' },
		{ "tcp-established", no_argument, NULL, 'E' },
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
		case 'X':
			o.ext_unix_sk = true;
			break;
		case 'E':
			o.tcp_established = true;
			break;
		case 'G':
			if (parse_size(optarg, &o.ghost_limit) < 0 || !o.ghost_limit)
				return out_usage_error(ctx, "invalid size '%s' (bytes, at least 1; K, M, G)",
						       optarg);
			break;
		case 'T':
			if (parse_timeout_ms(optarg, &o.timeout_ms) < 0)
				return out_usage_error(ctx, "invalid timeout '%s' (seconds, at least 0.001)",
						       optarg);
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
		if (st.refused && ctx->json) {
			/* Why, in the error object: the same lists as a dump that goes through. */
			ctx->error_extra = json_object_new_object();
			json_object_object_add(ctx->error_extra, "pid", json_object_new_int(o.pid));
			json_object_object_add(ctx->error_extra, "process", json_object_new_string("running"));
			json_object_object_add(ctx->error_extra, "unrestorable", unrestorable_json(&st));
		}
		if (r == -ETIMEDOUT) {
			r = out_error(ctx, EXIT_FAIL, "cannot dump pid %d to '%s': a thread did not stop "
				      "within %g s (--timeout); the process was not killed and runs on",
				      o.pid, o.dir, (double)(o.timeout_ms ?: CKPT_INJECT_TIMEOUT_MS) / 1e3);
			ckpt_dump_stats_done(&st);
			return r;
		}
		/* A process that died, or was not there to kill (gone, a zombie): no word of a kill. */
		r = out_error(ctx, st.refused ? EXIT_REFUSED : EXIT_FAIL, "cannot dump pid %d to '%s'%s", o.pid,
			      o.dir, st.refused ? "; the process was not killed and runs on as it was"
				     : st.died_pid || r == -ESRCH ? ""
				     : o.after == CKPT_DUMP_KILL ? "; the process was not killed" : "");
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
