/* SPDX-License-Identifier: MIT */
/* ckpt compact: keep the newest checkpoints of a directory, fold and remove the rest. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <ckpt/image.h>
#include <ckpt/log.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt compact DIR [--keep N] [--compress-level N] [--json]\n"
	"\n"
	"Keep the newest N checkpoints of the directory DIR (what ckpt track -D writes,\n"
	"or a chain of full and delta dumps made there) and give the space of the\n"
	"others back: each kept delta whose parent goes is folded into a full\n"
	"checkpoint of the same content, then the others are removed, newest first.\n"
	"Every checkpoint in DIR restores at every moment, even if compact is killed.\n"
	"Checkpoints are ordered by name (numbers by value); DIR/latest is always kept.\n"
	"Checkpoints outside DIR that depend on the removed ones are not looked for.\n"
	"\n"
	"Options:\n"
	"      --keep N              checkpoints to keep (default 1: only the newest, full)\n"
	"      --compress-level N    zstd level of the frames that are recompressed\n"
	"                            (-7..22, default 1) or \"none\"\n"
	"      --json                one JSON object\n"
	"  -v, --verbose             more messages\n"
	"  -h, --help                this help\n";

static json_object *points_json(const struct ckpt_series *s)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < ckpt_series_nr_points(s); i++) {
		const struct ckpt_series_point *p = ckpt_series_point(s, i);
		json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(p->name));
		json_object_object_add(o, "kind", json_object_new_string(
							  p->inv->kind == CKPT_IMAGE_FULL ? "full" : "delta"));
		json_object_object_add(o, "chain_length", json_object_new_uint64(p->depth + 1));
		json_object_object_add(o, "bytes", json_object_new_uint64(p->bytes));
		json_object_object_add(o, "created", json_object_new_string(p->inv->created_utc));
		json_object_array_add(arr, o);
	}
	return arr;
}

static void print_text(const char *dir, size_t before, const struct ckpt_series_retain_stats *st,
		       const struct ckpt_series *s)
{
	double mib = 1024.0 * 1024.0;
	ssize_t latest = ckpt_series_latest(s);

	printf("compacted '%s': kept %zu of %zu checkpoints (%zu folded, %zu removed), "
	       "%.1f MiB -> %.1f MiB\n", dir, st->kept, before, st->folded, st->removed,
	       (double)st->bytes_before / mib, (double)st->bytes_after / mib);
	for (size_t i = 0; i < ckpt_series_nr_points(s); i++) {
		const struct ckpt_series_point *p = ckpt_series_point(s, i);

		printf("  %-12s %-5s chain %-4zu %10.1f MiB  %s%s\n", p->name,
		       p->inv->kind == CKPT_IMAGE_FULL ? "full" : "delta", p->depth + 1,
		       (double)p->bytes / mib, p->inv->created_utc,
		       (ssize_t)i == latest ? "  (latest)" : "");
	}
}

static int run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		CMD_COMMON_LONGOPTS,
		{ "keep", required_argument, NULL, 'k' },
		{ "compress-level", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	_cleanup_series_ struct ckpt_series *s = NULL;
	struct ckpt_image_fold_opts fo = { 0 };
	struct ckpt_series_retain_stats st;
	uint64_t keep = 1;
	const char *dir;
	char inv[4200];
	struct stat sb;
	size_t before;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cmd_print_help(&cmd_compact);
		case 'k':
			if (parse_uint(optarg, UINT32_MAX, &keep) < 0 || !keep)
				return out_usage_error(ctx, "invalid --keep '%s' (at least 1)", optarg);
			break;
		case 'L':
			if (ckpt_image_parse_level(optarg, &fo.level) < 0)
				return out_usage_error(ctx, "invalid compression level '%s'", optarg);
			break;
		default:
			if ((r = cmd_common_option(ctx, c, argv)) != 0)
				return r;
			break;
		}
	}
	if (optind >= argc)
		return out_usage_error(ctx, "which directory? give DIR");
	if (optind + 1 < argc)
		return out_usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
	dir = argv[optind];
	snprintf(inv, sizeof(inv), "%s/inventory.json", dir);
	if (stat(inv, &sb) == 0)
		return out_error(ctx, EXIT_FAIL, "'%s' is a checkpoint: give the directory that holds "
				 "the checkpoints to compact", dir);

	r = ckpt_series_open(dir, 0, &s);
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "cannot compact '%s'", dir);
	before = ckpt_series_nr_points(s);
	if (!before)
		return out_error(ctx, EXIT_FAIL, "'%s' holds no checkpoint", dir);
	r = ckpt_series_retain(s, (size_t)keep, &fo, &st);
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "cannot compact '%s': every checkpoint in it still "
				 "restores; %zu folded, %zu removed before the error", dir, st.folded,
				 st.removed);
	if (ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "dir", json_object_new_string(dir));
		json_object_object_add(j, "checkpoints_before", json_object_new_uint64(before));
		json_object_object_add(j, "kept", json_object_new_uint64(st.kept));
		json_object_object_add(j, "folded", json_object_new_uint64(st.folded));
		json_object_object_add(j, "removed", json_object_new_uint64(st.removed));
		json_object_object_add(j, "bytes_before", json_object_new_uint64(st.bytes_before));
		json_object_object_add(j, "bytes_after", json_object_new_uint64(st.bytes_after));
		json_object_object_add(j, "fold_ms", out_json_double((double)st.fold_ns / 1e6, 3));
		json_object_object_add(j, "remove_ms", out_json_double((double)st.remove_ns / 1e6, 3));
		json_object_object_add(j, "checkpoints", points_json(s));
		out_json(j, false);
		json_object_put(j);
	} else {
		print_text(dir, before, &st, s);
	}
	return EXIT_OK;
}

const struct command cmd_compact = {
	.name = "compact",
	.fn = run,
	.summary = "keep the newest checkpoints of a directory, fold and remove the rest",
	.usage = usage,
};
