/* SPDX-License-Identifier: MIT */
/*
 * ckpt track: a dirty-rate monitor built on lib/track. Arms the target's
 * tree (ckpt/track_tree.h), harvests every interval and prints what each
 * process wrote, then disarms.
 * With -D DIR: continuous checkpoints (ckpt/continuous.h), one per interval.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/continuous.h>
#include <ckpt/image.h>
#include <ckpt/inject.h>
#include <ckpt/log.h>
#include <ckpt/nl.h>
#include <ckpt/proc.h>
#include <ckpt/track.h>
#include <ckpt/track_tree.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt track -t PID [--interval DUR] [--count N | --duration DUR]\n"
	"                  [--timeout SECONDS] [--json]\n"
	"       ckpt track -t PID -D DIR [--keep N] [--interval DUR] [--count N | --duration DUR]\n"
	"                  [--compress-level N] [--max-buffer SIZE] [--allow-unrestorable]\n"
	"                  [--timeout SECONDS] [--json]\n"
	"       ckpt track --stop -t PID [--timeout SECONDS]\n"
	"\n"
	"Track the pages PID and its descendants write with userfaultfd write-protection\n"
	"and print, every interval: pages written, MiB written, dirty rate, ranges,\n"
	"mappings added and removed, scan time, freeze time and RSS, for the tree and,\n"
	"when it has several processes, for each (indented; --json: \"processes\").\n"
	"Every interval freezes the whole tree at once. A process born during the run is\n"
	"tracked from the freeze that finds it (born), one that exits is reported once\n"
	"(ended), one that executes a new program is tracked again (exec). Ends after\n"
	"--count intervals, --duration, SIGINT/SIGTERM/SIGHUP/SIGQUIT, its output closed\n"
	"(SIGPIPE), or when PID exits (status 0) or executes a new program (status 1);\n"
	"then every process is left untracked. Signals are read between freezes.\n"
	"\n"
	"With -D DIR, take a checkpoint every interval instead: DIR/0000 full, then\n"
	"DIR/0001, DIR/0002 ... each a delta with the pages written since the one\n"
	"before; DIR/latest names the newest complete one. Each restores with\n"
	"'ckpt restore -D DIR/NNNN'. The process is frozen only while its state and\n"
	"written pages are copied; a slow disk stretches the interval. At the end the\n"
	"process stays tracked, so that a delta dump with DIR/latest as its parent,\n"
	"or another 'ckpt track -D DIR', continues the chain (--stop disarms). A\n"
	"process with children as the run starts is checkpointed with its whole tree\n"
	"(a tree dump per interval).\n"
	"\n"
	"Options:\n"
	"  -t, --tree PID            the root of the tree to track (PID and its descendants)\n"
	"  -D, --images-dir DIR      take continuous checkpoints into DIR\n"
	"      --keep N              keep the newest N checkpoints (older ones are folded\n"
	"                            into the oldest kept one and removed; default: all)\n"
	"      --interval DUR        time between harvests (default 1s; 500ms, 2s, 1m ...)\n"
	"      --count N             stop after N intervals (checkpoints with -D)\n"
	"      --duration DUR        stop after DUR\n"
	"      --compress-level N    zstd level (-7..22, default 1) or \"none\" (with -D)\n"
	"      --max-buffer SIZE     the most memory ckpt holds pages in (with -D; default\n"
	"                            256M, at least 32M): beyond it, pages are compressed\n"
	"                            as they are copied and freezes last longer\n"
	"      --allow-unrestorable  checkpoint even what restore cannot recreate (with -D;\n"
	"                            without it such a process ends the run, status 4)\n"
	"      --stop                disarm tracking left armed by another command, in\n"
	"                            every process of the tree\n"
	"      --timeout SECONDS     how long a freeze waits for every thread to stop\n"
	"                            (default 10); a thread in uninterruptible sleep (D)\n"
	"                            then ends the run (status 1): the process runs on,\n"
	"                            still tracked if it was (--stop disarms it later)\n"
	"      --json                one JSON object per line (NDJSON)\n"
	"  -v, --verbose             more messages\n"
	"  -h, --help                this help\n"
	"\n"
	"Exit status: 0 ended as asked, on a signal or when the process exited (with -D:\n"
	"after its first checkpoint); 1 exec, tracking lost, or an error (with -D: the\n"
	"process ended before its first checkpoint); 2 usage; 4 -D: the process holds what restore\n"
	"cannot recreate; 5 as 0, but output was lost (a closed pipe, a full disk).\n";

struct track_args {
	pid_t pid;
	uint64_t interval_ns;
	uint64_t count;
	uint64_t duration_ns;
	bool stop;
	const char *dir;
	uint64_t keep;
	bool keep_set;
	int level;
	bool level_set;
	bool allow_unrestorable;
	uint64_t max_buffer;       /* 0: the default */
	unsigned int timeout_ms;   /* of every seize; 0: the default */
};

static int parse_args(struct cmd_ctx *ctx, int argc, char **argv, struct track_args *a)
{
	static const struct option longopts[] = {
		CMD_COMMON_LONGOPTS,
		{ "tree", required_argument, NULL, 't' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "stop", no_argument, NULL, 'S' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "keep", required_argument, NULL, 'k' },
		{ "compress-level", required_argument, NULL, 'L' },
		{ "allow-unrestorable", no_argument, NULL, 'U' },
		{ "max-buffer", required_argument, NULL, 'M' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	int c, r;

	*a = (struct track_args){ .interval_ns = 1000000000ULL };
	opterr = 0;
	while ((c = getopt_long(argc, argv, "ht:vD:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cmd_print_help(&cmd_track) - 1; /* -1: done, exit 0 */
		case 't':
			if (parse_pid(optarg, &a->pid) < 0)
				return out_usage_error(ctx, "invalid pid '%s'", optarg);
			break;
		case 'i':
			if (parse_duration_ns(optarg, &a->interval_ns) < 0 || a->interval_ns < 1000000)
				return out_usage_error(ctx, "invalid interval '%s' (at least 1ms)", optarg);
			break;
		case 'c':
			if (parse_uint(optarg, UINT32_MAX, &a->count) < 0 || !a->count)
				return out_usage_error(ctx, "invalid count '%s'", optarg);
			break;
		case 'd':
			if (parse_duration_ns(optarg, &a->duration_ns) < 0 || !a->duration_ns)
				return out_usage_error(ctx, "invalid duration '%s'", optarg);
			break;
		case 'S':
			a->stop = true;
			break;
		case 'D':
			a->dir = optarg;
			break;
		case 'k':
			if (parse_uint(optarg, UINT32_MAX, &a->keep) < 0 || !a->keep)
				return out_usage_error(ctx, "invalid --keep '%s' (at least 1)", optarg);
			a->keep_set = true;
			break;
		case 'L':
			if (ckpt_image_parse_level(optarg, &a->level) < 0)
				return out_usage_error(ctx, "invalid compression level '%s'", optarg);
			a->level_set = true;
			break;
		case 'U':
			a->allow_unrestorable = true;
			break;
		case 'M':
			if (parse_size(optarg, &a->max_buffer) < 0 ||
			    a->max_buffer < CKPT_CONTINUOUS_MAX_BUFFER_MIN)
				return out_usage_error(ctx, "invalid --max-buffer '%s' (a size of at least 32M)",
						       optarg);
			break;
		case 'T':
			if (parse_timeout_ms(optarg, &a->timeout_ms) < 0)
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
	if (!a->pid)
		return out_usage_error(ctx, "which process? give -t PID");
	if (a->count && a->duration_ns)
		return out_usage_error(ctx, "--count and --duration exclude each other");
	if (a->stop && (a->count || a->duration_ns))
		return out_usage_error(ctx, "--stop takes no --count or --duration");
	if (a->stop && a->dir)
		return out_usage_error(ctx, "--stop takes no -D");
	if (!a->dir && (a->keep_set || a->level_set || a->allow_unrestorable || a->max_buffer))
		return out_usage_error(ctx, "--keep, --compress-level, --max-buffer and "
					    "--allow-unrestorable need -D DIR");
	if (a->dir && !*a->dir)
		return out_usage_error(ctx, "-D needs a directory");
	return 0;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double mib_of(uint64_t pages)
{
	return (double)pages * 4096 / (1 << 20);
}

struct sample {
	double time_s, interval_s;
	const struct ckpt_track_tree_sample *t;
};

/* Born, exec or ended in this interval, for the text and JSON of one process. */
static const char *proc_tag(const struct ckpt_track_tree_proc *p)
{
	return p->ended ? "ended" : p->execed ? "exec" : p->born ? "born" : "";
}

/* What one harvest counted (of a process, or the tree's totals), into @o. */
static void stats_json(json_object *o, const struct ckpt_track_stats *st, double interval_s)
{
	double mib = mib_of(st->pages);

	json_object_object_add(o, "pages", json_object_new_uint64(st->pages));
	json_object_object_add(o, "bytes", json_object_new_uint64(st->pages * 4096));
	json_object_object_add(o, "mib", out_json_double(mib, 3));
	json_object_object_add(o, "rate_mib_s", out_json_double(interval_s > 0 ? mib / interval_s : 0, 3));
	json_object_object_add(o, "ranges", json_object_new_uint64(st->nr_ranges));
	json_object_object_add(o, "maps_added", json_object_new_uint64(st->maps_added));
	json_object_object_add(o, "maps_removed", json_object_new_uint64(st->maps_removed));
	json_object_object_add(o, "maps_changed", json_object_new_uint64(st->maps_changed));
	json_object_object_add(o, "new_pages", json_object_new_uint64(st->new_pages));
	json_object_object_add(o, "always_dirty_maps", json_object_new_uint64(st->maps_always_dirty));
	json_object_object_add(o, "scan_ms", out_json_double(ms(st->scan_ns), 3));
	json_object_object_add(o, "harvest_ms", out_json_double(ms(st->harvest_ns), 3));
}

static json_object *proc_json(const struct ckpt_track_tree_proc *p, double interval_s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "pid", json_object_new_int(p->pid));
	json_object_object_add(o, "ppid", json_object_new_int(p->ppid));
	json_object_object_add(o, "comm", json_object_new_string(p->comm));
	stats_json(o, &p->st, interval_s);
	json_object_object_add(o, "rss_kib", json_object_new_uint64(p->rss_kib));
	json_object_object_add(o, "generation", json_object_new_uint64(p->st.generation));
	json_object_object_add(o, "born", json_object_new_boolean(p->born));
	json_object_object_add(o, "execed", json_object_new_boolean(p->execed));
	json_object_object_add(o, "ended", json_object_new_boolean(p->ended));
	return o;
}

/* One row of the table: @first in the TIME column, then the columns of @st. */
static void print_row(const char *first, const struct ckpt_track_stats *st, double interval_s,
		      const char *freeze, uint64_t rss_kib)
{
	double mib = mib_of(st->pages);

	printf("%8s %10" PRIu64 " %9.2f %8.2f %7zu %6zu %6zu %8.2f %9s %9.1f", first, st->pages, mib,
	       interval_s > 0 ? mib / interval_s : 0, st->nr_ranges, st->maps_added, st->maps_removed,
	       ms(st->scan_ns), freeze, (double)rss_kib / 1024);
}

/*
 * One interval. The totals are the tree's, in the columns and keys a
 * single process always had; --json adds "processes" (one object each),
 * the text one indented line per process when the tree has more than one
 * (the pid where the time is, the comm and born/exec/ended at the end).
 */
static void print_sample(struct cmd_ctx *ctx, const struct sample *s, uint64_t n)
{
	bool tree = s->t->nr_procs > 1;
	char first[32], freeze[32];

	if (ctx->json) {
		json_object *o = json_object_new_object(), *procs = json_object_new_array();

		json_object_object_add(o, "time_s", out_json_double(s->time_s, 3));
		json_object_object_add(o, "interval_s", out_json_double(s->interval_s, 3));
		stats_json(o, &s->t->total, s->interval_s);
		json_object_object_add(o, "freeze_ms", out_json_double(ms(s->t->freeze_ns), 3));
		json_object_object_add(o, "rss_kib", json_object_new_uint64(s->t->rss_kib));
		json_object_object_add(o, "generation", json_object_new_uint64(s->t->total.generation));
		for (size_t i = 0; i < s->t->nr_procs; i++)
			json_object_array_add(procs, proc_json(&s->t->procs[i], s->interval_s));
		json_object_object_add(o, "processes", procs);
		out_json(o, true);
		json_object_put(o);
		return;
	}
	if (n % 20 == 0 || (tree && n == 0))
		printf("%8s %10s %9s %8s %7s %6s %6s %8s %9s %9s%s\n", "TIME", "WRITTEN", "MiB", "MiB/s",
		       "RANGES", "+MAPS", "-MAPS", "SCAN ms", "FREEZE ms", "RSS MiB", tree ? "  PROCESS" : "");
	snprintf(first, sizeof(first), "%.2f", s->time_s);
	snprintf(freeze, sizeof(freeze), "%.2f", ms(s->t->freeze_ns));
	print_row(first, &s->t->total, s->interval_s, freeze, s->t->rss_kib);
	if (tree)
		printf("  total of %zu\n", s->t->nr_procs);
	else
		putchar('\n');
	for (size_t i = 0; tree && i < s->t->nr_procs; i++) {
		const struct ckpt_track_tree_proc *p = &s->t->procs[i];

		snprintf(first, sizeof(first), "%d", p->pid);
		print_row(first, &p->st, s->interval_s, "-", p->rss_kib);
		printf("  %s%s%s\n", p->comm, *proc_tag(p) ? " " : "", proc_tag(p));
	}
	out_flush();
}

/* An event line: stderr, or with --json an object (with "pid" when @pid > 0). */
static void print_event(struct cmd_ctx *ctx, const char *event, pid_t pid, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void print_event(struct cmd_ctx *ctx, const char *event, pid_t pid, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctx->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "event", json_object_new_string(event));
		if (pid > 0)
			json_object_object_add(o, "pid", json_object_new_int(pid));
		json_object_object_add(o, "message", json_object_new_string(msg));
		out_json(o, true);
		json_object_put(o);
	} else {
		fprintf(stderr, "ckpt: %s\n", msg);
	}
}

/* --stop: disarm every process of the tree that ckpt tracks. */
static int stop_tracking(struct cmd_ctx *ctx, pid_t pid, unsigned int timeout_ms)
{
	struct ckpt_track_tree_opts o = { .pid = pid, .timeout_ms = timeout_ms };
	_cleanup_free_ struct ckpt_track_tree_stopped *v = NULL;
	size_t nr = 0;
	int code = EXIT_OK, r;

	r = ckpt_track_tree_stop(&o, &v, &nr);
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "cannot stop the tracking of pid %d and its descendants: %s",
				 pid, r == -ESRCH ? "no such process" : strerror(-r));
	if (!nr)
		return out_error(ctx, EXIT_FAIL, "pid %d is not tracked by ckpt, nor any process below it", pid);
	for (size_t i = 0; i < nr; i++) {
		if (v[i].result == -ESTALE)
			print_event(ctx, "stopped", v[i].pid, "pid %d: its tracking was already lost; nothing to disarm",
				    v[i].pid);
		else if (v[i].result < 0)
			code = out_error(ctx, EXIT_FAIL, "cannot disarm the tracking of pid %d: %s", v[i].pid,
					 strerror(-v[i].result));
		else
			print_event(ctx, "stopped", v[i].pid, "pid %d: tracking stopped, the process runs untracked",
				    v[i].pid);
	}
	return code;
}

/* Why the loop ended. */
enum end { END_COUNT, END_DURATION, END_SIGNAL, END_EXIT, END_EXEC, END_LOST, END_TIMEOUT, END_ERROR };

/*
 * What ends tracking from outside, read through a signalfd between
 * freezes: SIGINT, SIGTERM, SIGHUP, SIGQUIT (unless ignored when ckpt
 * started), and SIGPIPE. ckpt ignores
 * SIGPIPE (ckpt.c) but blocked here it is queued all the same when a write
 * to a pipe whose reader is gone fails (the main thread writes the
 * output): 'ckpt track | head' then ends as if stopped, cleanly, after the
 * freeze in progress, instead of tracking on with nobody reading.
 */
static void stop_signals(sigset_t *mask)
{
	cmd_term_signals(mask); /* not those ckpt was started with ignored (nohup) */
	sigaddset(mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, mask, NULL);
}

/* ---- -D: continuous checkpoints ---- */

static void on_event(const char *event, const char *message, void *userdata)
{
	print_event(userdata, event, 0, "%s", message);
}

static void on_checkpoint(const struct ckpt_continuous_stats *st, void *userdata)
{
	struct cmd_ctx *ctx = userdata;
	double mib = 1024.0 * 1024.0;

	if (ctx->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "sequence", json_object_new_uint64(st->seq));
		json_object_object_add(o, "name", json_object_new_string(st->name));
		json_object_object_add(o, "kind", json_object_new_string(st->delta ? "delta" : "full"));
		json_object_object_add(o, "time_s", out_json_double(st->time_s, 3));
		json_object_object_add(o, "interval_s", out_json_double((double)st->interval_ns / 1e9, 3));
		json_object_object_add(o, "stretched_ms", out_json_double(ms(st->stretch_ns), 3));
		json_object_object_add(o, "pages_written", json_object_new_uint64(st->pages_written));
		json_object_object_add(o, "pages_data", json_object_new_uint64(st->pages_data));
		json_object_object_add(o, "pages_zero", json_object_new_uint64(st->pages_zero));
		json_object_object_add(o, "pages_hole", json_object_new_uint64(st->pages_hole));
		json_object_object_add(o, "bytes_before_compression", json_object_new_uint64(st->bytes_raw));
		json_object_object_add(o, "bytes_after_compression",
				       json_object_new_uint64(st->bytes_compressed));
		json_object_object_add(o, "bytes_on_disk", json_object_new_uint64(st->bytes_disk));
		json_object_object_add(o, "freeze_ms", out_json_double(ms(st->freeze_ns), 3));
		json_object_object_add(o, "prefreeze_ms", out_json_double(ms(st->prefreeze_ns), 3));
		json_object_object_add(o, "precopy_ms", out_json_double(ms(st->precopy_ns), 3));
		json_object_object_add(o, "write_ms", out_json_double(ms(st->write_ns), 3));
		json_object_object_add(o, "retain_ms", out_json_double(ms(st->retain_ns), 3));
		json_object_object_add(o, "chain_length", json_object_new_uint64(st->chain_length));
		json_object_object_add(o, "points", json_object_new_uint64(st->points));
		json_object_object_add(o, "folded", json_object_new_uint64(st->folded));
		json_object_object_add(o, "removed", json_object_new_uint64(st->removed));
		json_object_object_add(o, "generation", json_object_new_uint64(st->generation));
		out_json(o, true);
		json_object_put(o);
		return;
	}
	if (st->seq % 20 == 0 || !st->delta)
		printf("%6s %5s %8s %9s %9s %9s %9s %9s %9s %5s %6s\n", "CKPT", "KIND", "TIME", "WRITTEN",
		       "RAW MiB", "ZST MiB", "FREEZE ms", "WRITE ms", "STRETCH", "CHAIN", "POINTS");
	printf("%6s %5s %8.2f %9" PRIu64 " %9.2f %9.2f %9.2f %9.2f %9.2f %5zu %6zu\n", st->name,
	       st->delta ? "delta" : "full", st->time_s, st->pages_written, (double)st->bytes_raw / mib,
	       (double)st->bytes_compressed / mib, ms(st->freeze_ns), ms(st->write_ns),
	       ms(st->stretch_ns), st->chain_length, st->points);
	out_flush();
}

static int run_continuous(struct cmd_ctx *ctx, const struct track_args *a)
{
	static const char *const reason[] = {
		[CKPT_CONTINUOUS_COUNT] = "count", [CKPT_CONTINUOUS_DURATION] = "duration",
		[CKPT_CONTINUOUS_STOPPED] = "signal", [CKPT_CONTINUOUS_EXITED] = "exit",
		[CKPT_CONTINUOUS_EXECED] = "exec", [CKPT_CONTINUOUS_LOST] = "lost",
		[CKPT_CONTINUOUS_FAILED] = "error", [CKPT_CONTINUOUS_UNRESTORABLE] = "unrestorable",
	};
	struct ckpt_continuous_opts o = {
		.pid = a->pid,
		.dir = a->dir,
		.interval_ns = a->interval_ns,
		.keep = (size_t)a->keep,
		.max_buffer = a->max_buffer,
		.count = a->count,
		.duration_ns = a->duration_ns,
		.level = a->level,
		.allow_unrestorable = a->allow_unrestorable,
		.timeout_ms = a->timeout_ms,
		.on_checkpoint = on_checkpoint,
		.on_event = on_event,
		.userdata = ctx,
	};
	struct ckpt_continuous_result res;
	_cleanup_close_ int sfd = -1;
	sigset_t mask;
	int r;

	/* Termination signals arrive through a signalfd: what is captured is written first. */
	stop_signals(&mask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	o.stop_fd = sfd;

	r = ckpt_dump_continuous(&o, &res);
	if (ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "event", json_object_new_string("end"));
		json_object_object_add(j, "reason", json_object_new_string(reason[res.end]));
		json_object_object_add(j, "checkpoints", json_object_new_uint64(res.checkpoints));
		json_object_object_add(j, "last", res.last[0] ? json_object_new_string(res.last) : NULL);
		json_object_object_add(j, "stretched", json_object_new_uint64(res.stretched));
		out_json(j, true);
		json_object_put(j);
	}
	switch (res.end) {
	case CKPT_CONTINUOUS_EXITED:
		/* Gone (or never there) before the first checkpoint: the run made nothing. */
		if (!res.checkpoints)
			return out_error(ctx, EXIT_FAIL, "pid %d ended before its first checkpoint: nothing was "
					 "written to '%s'", a->pid, a->dir);
		if (!ctx->json)
			fprintf(stderr, "ckpt: pid %d exited; %" PRIu64 " checkpoints, the last is '%s/%s'\n",
				a->pid, res.checkpoints, a->dir, res.last[0] ? res.last : "(none)");
		return EXIT_OK;
	case CKPT_CONTINUOUS_EXECED:
		return out_error(ctx, EXIT_FAIL, "pid %d executed a new program: checkpoints end at '%s/%s'",
				 a->pid, a->dir, res.last[0] ? res.last : "(none)");
	case CKPT_CONTINUOUS_UNRESTORABLE:
		return out_error(ctx, EXIT_REFUSED, "continuous checkpoints of pid %d stopped: restore "
				 "could not recreate it (the process runs on)%s%s%s", a->pid,
				 res.last[0] ? "; the last complete checkpoint is '" : "",
				 res.last[0] ? a->dir : "", res.last[0] ? "/latest'" : "");
	case CKPT_CONTINUOUS_LOST:
	case CKPT_CONTINUOUS_FAILED:
		return out_error(ctx, EXIT_FAIL, "continuous checkpoints of pid %d failed%s%s%s", a->pid,
				 res.last[0] ? "; the last complete one is '" : "",
				 res.last[0] ? a->dir : "", res.last[0] ? "/latest'" : "");
	default:
		if (r < 0)
			return out_error(ctx, EXIT_FAIL, "continuous checkpoints of pid %d failed", a->pid);
		if (!ctx->json)
			fprintf(stderr, "ckpt: pid %d: %" PRIu64 " checkpoints in '%s' (%" PRIu64
				" stretched); it stays tracked\n", a->pid, res.checkpoints, a->dir,
				res.stretched);
		return EXIT_OK;
	}
}

static void on_tree_event(const char *event, pid_t pid, const char *message, void *userdata)
{
	print_event(userdata, event, pid, "%s", message);
}

/* The end of a monitor run: every process disarmed (or left armed after a timeout); the exit code. */
static int finish(struct cmd_ctx *ctx, const struct track_args *a, struct ckpt_track_tree *tt, enum end why,
		  uint64_t n, bool tree)
{
	const char *who = tree ? " and its descendants" : "";
	int r;

	switch (why) {
	case END_EXIT:
		print_event(ctx, "exit", a->pid, "pid %d exited; tracking ended", a->pid);
		break;
	case END_EXEC:
		print_event(ctx, "exec", a->pid, "pid %d executed a new program; tracking ended", a->pid);
		break;
	case END_TIMEOUT:
		/*
		 * Disarming in a freeze would wait as long for the same thread:
		 * closing ckpt's userfaultfds ends the tracking without one.
		 */
		ckpt_track_tree_free(tt);
		return out_error(ctx, EXIT_FAIL, "tracking of pid %d%s failed: a thread did not stop "
				 "(--timeout); the processes run on, untracked", a->pid, who);
	default:
		break;
	}
	r = ckpt_track_tree_disarm(tt);
	switch (why) {
	case END_EXIT:
		return EXIT_OK;
	case END_EXEC:
		return EXIT_FAIL;
	case END_LOST:
		return out_error(ctx, EXIT_FAIL, "tracking of pid %d was lost", a->pid);
	case END_ERROR:
		return out_error(ctx, EXIT_FAIL, "tracking of pid %d%s failed", a->pid, who);
	default:
		if (r == -ETIMEDOUT)
			return out_error(ctx, EXIT_FAIL, "cannot freeze pid %d%s to disarm it: a thread did not "
					 "stop (--timeout); its tracking ended with ckpt's userfaultfds", a->pid, who);
		if (r < 0)
			return out_error(ctx, EXIT_FAIL, "cannot disarm the tracking of pid %d%s: %s", a->pid, who,
					 strerror(-r));
		print_event(ctx, "end", a->pid, "pid %d%s: %" PRIu64 " intervals; tracking stopped, %s", a->pid,
			    who, n, tree ? "every process runs untracked" : "the process runs untracked");
		return EXIT_OK;
	}
}

/* Exec events of the proc connector: the root's ends the run, another's re-arms that process. */
static bool read_execs(struct ckpt_proc_events *ev, struct ckpt_track_tree *tt, pid_t root)
{
	struct ckpt_proc_event e[32];
	bool root_exec = false;
	int k;

	while ((k = ckpt_proc_events_read(ev, e, 32)) > 0) {
		for (int i = 0; i < k; i++) {
			/* Only one after its arming: an exec just before it (bash running a program) is not. */
			if (e[i].kind == CKPT_PROC_EV_EXEC &&
			    ckpt_track_tree_note_exec(tt, e[i].tgid, e[i].timestamp_ns) && e[i].tgid == root)
				root_exec = true;
		}
		if (k < 32)
			break;
	}
	return root_exec;
}

static int run(struct cmd_ctx *ctx, int argc, char **argv)
{
	_cleanup_(ckpt_proc_events_closep) struct ckpt_proc_events *ev = NULL;
	_cleanup_close_ int sfd = -1, tfd = -1, pidfd = -1;
	struct ckpt_track_tree *tt = NULL;
	struct ckpt_track_tree_opts to = { .on_event = on_tree_event, .userdata = ctx };
	struct track_args a;
	struct timespec start;
	sigset_t mask;
	enum end why = END_ERROR;
	bool tree;
	int r;
	uint64_t n = 0, last_ns;

	r = parse_args(ctx, argc, argv, &a);
	if (r)
		return r < 0 ? EXIT_OK : r;
	/* Drop the tracking records of processes that are gone (-v lists them). */
	if ((r = ckpt_track_sweep(NULL, NULL)) < 0)
		ckpt_log(CKPT_LOG_INFO, "track", "cannot look for stale tracking records: %s", strerror(-r));
	if (a.stop)
		return stop_tracking(ctx, a.pid, a.timeout_ms);
	if (a.dir)
		return run_continuous(ctx, &a);

	/* Termination signals arrive through a signalfd, between harvests. */
	stop_signals(&mask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	pidfd = (int)syscall(SYS_pidfd_open, a.pid, 0);
	if (pidfd < 0)
		return out_error(ctx, EXIT_FAIL, "pid %d: %s", a.pid,
				 errno == ESRCH ? "no such process" : strerror(errno));
	r = ckpt_proc_events_open(&ev);
	if (r < 0)
		ckpt_log(CKPT_LOG_INFO, "track", "no proc connector (%s): exec is noticed at the next harvest",
			 strerror(-r));

	to.pid = a.pid;
	to.timeout_ms = a.timeout_ms;
	r = ckpt_track_tree_open(&to, &tt);
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "cannot track pid %d", a.pid);
	tree = ckpt_track_tree_nr_procs(tt) > 1;
	if (tree)
		print_event(ctx, "armed", a.pid, "tracking pid %d and its %zu descendant%s, every %.3g s", a.pid,
			    ckpt_track_tree_nr_procs(tt) - 1, ckpt_track_tree_nr_procs(tt) > 2 ? "s" : "",
			    (double)a.interval_ns / 1e9);
	else
		print_event(ctx, "armed", a.pid, "tracking pid %d (userfaultfd held by ckpt), every %.3g s",
			    a.pid, (double)a.interval_ns / 1e9);

	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	{
		struct itimerspec its = {
			.it_interval = { (time_t)(a.interval_ns / 1000000000ULL), (long)(a.interval_ns % 1000000000ULL) },
			.it_value = { (time_t)(a.interval_ns / 1000000000ULL), (long)(a.interval_ns % 1000000000ULL) },
		};
		timerfd_settime(tfd, 0, &its, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	last_ns = (uint64_t)start.tv_sec * 1000000000ULL + (uint64_t)start.tv_nsec;

	for (;;) {
		struct pollfd pfd[4] = {
			{ tfd, POLLIN, 0 }, { pidfd, POLLIN, 0 }, { sfd, POLLIN, 0 },
			{ ev ? ckpt_proc_events_fd(ev) : -1, POLLIN, 0 },
		};

		if (poll(pfd, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[2].revents & POLLIN) {
			why = END_SIGNAL;
			break;
		}
		if (pfd[1].revents & POLLIN) {
			why = END_EXIT;
			break;
		}
		if (ev && (pfd[3].revents & POLLIN) && read_execs(ev, tt, a.pid)) {
			why = END_EXEC;
			break;
		}
		if (pfd[0].revents & POLLIN) {
			struct ckpt_track_tree_sample ts;
			struct sample s = { .t = &ts };
			struct timespec now;
			uint64_t ticks, now_ns;

			if (read(tfd, &ticks, sizeof(ticks)) < 0)
				continue;
			/* Execs queued before this freeze: those processes are armed again in it. */
			if (ev && read_execs(ev, tt, a.pid)) {
				why = END_EXEC;
				break;
			}
			r = ckpt_track_tree_harvest(tt, &ts);
			if (r < 0) {
				why = r == -ESRCH ? END_EXIT : r == -ESTALE ? END_LOST
				    : r == -ETIMEDOUT ? END_TIMEOUT : END_ERROR;
				break;
			}
			tree |= ts.nr_procs > 1;
			clock_gettime(CLOCK_MONOTONIC, &now);
			now_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
			s.time_s = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
			s.interval_s = (double)(now_ns - last_ns) / 1e9;
			last_ns = now_ns;
			print_sample(ctx, &s, n);
			n++;
			if (a.count && n >= a.count) {
				why = END_COUNT;
				break;
			}
			if (a.duration_ns && s.time_s * 1e9 >= (double)a.duration_ns) {
				why = END_DURATION;
				break;
			}
		}
	}
	return finish(ctx, &a, tt, why, n, tree);
}

const struct command cmd_track = {
	.name = "track",
	.fn = run,
	.summary = "monitor the pages a process writes; -D: continuous checkpoints",
	.usage = usage,
};
