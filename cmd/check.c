/* SPDX-License-Identifier: MIT */
/* ckpt check: probe the kernel features ckpt needs. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <ckpt/check.h>
#include <ckpt/log.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt check [--json] [-v]\n"
	"\n"
	"Probe, with real calls, every kernel feature ckpt uses and print one line\n"
	"each: feature, ok or missing, what needs it. Exits 0 when everything the\n"
	"core (track, dump, restore) needs is present, 1 otherwise.\n"
	"\n"
	"Options:\n"
	"      --json      one JSON document\n"
	"  -v, --verbose   also print what each probe saw\n"
	"  -h, --help      this help\n";

static void print_text(const struct ckpt_probe_result *r, size_t nr, const struct utsname *u,
		       bool verbose)
{
	printf("kernel %s %s\n", u->release, u->machine);
	printf("%-26s %-8s %-5s %s\n", "FEATURE", "STATUS", "CORE", "NEEDED BY");
	for (size_t i = 0; i < nr; i++) {
		printf("%-26s %-8s %-5s %s\n", r[i].name, r[i].ok ? "ok" : "missing",
		       r[i].core ? "yes" : "no", r[i].needed_by);
		if (!r[i].ok)
			printf("    %s (needs %s)\n", r[i].detail, r[i].since);
		else if (verbose)
			printf("    %s\n", r[i].detail);
	}
}

static void print_json(const struct ckpt_probe_result *r, size_t nr, const struct utsname *u,
		       bool core_ok)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();

	json_object_object_add(o, "kernel", json_object_new_string(u->release));
	json_object_object_add(o, "machine", json_object_new_string(u->machine));
	for (size_t i = 0; i < nr; i++) {
		json_object *f = json_object_new_object();

		json_object_object_add(f, "name", json_object_new_string(r[i].name));
		json_object_object_add(f, "status", json_object_new_string(r[i].ok ? "ok" : "missing"));
		json_object_object_add(f, "core", json_object_new_boolean(r[i].core));
		json_object_object_add(f, "needed_by", json_object_new_string(r[i].needed_by));
		json_object_object_add(f, "since", json_object_new_string(r[i].since));
		json_object_object_add(f, "detail", json_object_new_string(r[i].detail));
		json_object_array_add(arr, f);
	}
	json_object_object_add(o, "features", arr);
	json_object_object_add(o, "core_ok", json_object_new_boolean(core_ok));
	out_json(o, false);
	json_object_put(o);
}

static int run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		CMD_COMMON_LONGOPTS,
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	_cleanup_free_ struct ckpt_probe_result *res = NULL;
	struct utsname u;
	size_t nr;
	bool core_ok;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cmd_print_help(&cmd_check);
		case 'J':
			ctx->json = true;
			break;
		case 'v':
			ctx->verbose++;
			break;
		default:
			return out_usage_error(ctx, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return out_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	uname(&u);
	r = ckpt_check_run(&res, &nr);
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "cannot run the probes: %s", strerror(-r));
	core_ok = ckpt_check_core_ok(res, nr);
	if (ctx->json)
		print_json(res, nr, &u, core_ok);
	else
		print_text(res, nr, &u, ctx->verbose > 0);
	if (!core_ok) {
		if (!ctx->json)
			fprintf(stderr, "ckpt: a feature the core needs is missing\n");
		/* The table already says what: JSON output stays one document. */
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

const struct command cmd_check = {
	.name = "check",
	.fn = run,
	.summary = "probe the kernel features ckpt needs",
	.usage = usage,
};
