/* SPDX-License-Identifier: MIT */
/* ckpt check: probe the kernel features ckpt needs. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <ckpt/check.h>
#include <ckpt/lazy.h>
#include <ckpt/log.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt check [--json] [-v]\n"
	"\n"
	"Probe, with real calls, every kernel feature ckpt uses and print one line\n"
	"each: feature, ok or missing, what needs it (a kernel version, or the\n"
	"privilege this user lacks), then which commands work as this user. Exits 0\n"
	"when everything the core (track, dump, restore) needs is present, 1\n"
	"otherwise.\n"
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
			printf("    %s (needs %s)\n", r[i].detail, r[i].privilege ? r[i].privilege : r[i].since);
		else if (verbose)
			printf("    %s\n", r[i].detail);
	}
}

static const struct ckpt_probe_result *find(const struct ckpt_probe_result *r, size_t nr, const char *name)
{
	for (size_t i = 0; i < nr; i++)
		if (!strcmp(r[i].name, name))
			return &r[i];
	return NULL;
}

/* What is missing for command @c, comma-separated in @buf ("" when it works). */
static void missing_for(const struct ckpt_probe_result *r, size_t nr, const struct ckpt_check_command *c,
			char *buf, size_t len)
{
	buf[0] = '\0';
	for (const char *const *n = c->needs; *n; n++) {
		const struct ckpt_probe_result *f = find(r, nr, *n);

		if (f && !f->ok)
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? ", " : "", f->name);
	}
}

/* The privileges @c lacks, distinct ("CAP_SYS_ADMIN; CAP_NET_ADMIN"), or "" if none is missing for want of one. */
static void privileges_for(const struct ckpt_probe_result *r, size_t nr, const struct ckpt_check_command *c,
			   char *buf, size_t len)
{
	buf[0] = '\0';
	for (const char *const *n = c->needs; *n; n++) {
		const struct ckpt_probe_result *f = find(r, nr, *n);
		bool seen = false;

		if (!f || f->ok || !f->privilege)
			continue;
		for (const char *const *m = c->needs; m < n && !seen; m++) {
			const struct ckpt_probe_result *g = find(r, nr, *m);

			seen = g && !g->ok && g->privilege && !strcmp(g->privilege, f->privilege);
		}
		if (!seen)
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? "; " : "", f->privilege);
	}
}

/* Which commands work as the calling user, and for those that do not, what they lack. */
static void print_user_text(const struct ckpt_probe_result *r, size_t nr)
{
	size_t nc;
	const struct ckpt_check_command *c = ckpt_check_commands(&nc);

	printf("\nas uid %u%s (run directory '%s'):\n", (unsigned int)geteuid(), geteuid() ? "" : ", root",
	       ckpt_lazy_default_rundir());
	printf("%-42s %-5s %s\n", "COMMAND", "WORKS", "MISSING");
	for (size_t i = 0; i < nc; i++) {
		char miss[512], priv[256];

		missing_for(r, nr, &c[i], miss, sizeof(miss));
		privileges_for(r, nr, &c[i], priv, sizeof(priv));
		printf("%-42s %-5s %s", c[i].name, miss[0] ? "no" : "yes", miss);
		if (priv[0])
			printf(" (needs %s)", priv);
		printf("\n");
	}
}

static json_object *user_json(const struct ckpt_probe_result *r, size_t nr)
{
	json_object *u = json_object_new_object(), *arr = json_object_new_array();
	size_t nc;
	const struct ckpt_check_command *c = ckpt_check_commands(&nc);

	json_object_object_add(u, "uid", json_object_new_int64(geteuid()));
	json_object_object_add(u, "rundir", json_object_new_string(ckpt_lazy_default_rundir()));
	for (size_t i = 0; i < nc; i++) {
		json_object *o = json_object_new_object(), *miss = json_object_new_array();
		char priv[256];

		for (const char *const *n = c[i].needs; *n; n++) {
			const struct ckpt_probe_result *f = find(r, nr, *n);

			if (f && !f->ok)
				json_object_array_add(miss, json_object_new_string(f->name));
		}
		privileges_for(r, nr, &c[i], priv, sizeof(priv));
		json_object_object_add(o, "command", json_object_new_string(c[i].name));
		json_object_object_add(o, "works", json_object_new_boolean(json_object_array_length(miss) == 0));
		json_object_object_add(o, "missing", miss);
		json_object_object_add(o, "privileges", json_object_new_string(priv));
		json_object_array_add(arr, o);
	}
	json_object_object_add(u, "commands", arr);
	return u;
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
		if (r[i].privilege)
			json_object_object_add(f, "privilege", json_object_new_string(r[i].privilege));
		json_object_array_add(arr, f);
	}
	json_object_object_add(o, "features", arr);
	json_object_object_add(o, "core_ok", json_object_new_boolean(core_ok));
	json_object_object_add(o, "user", user_json(r, nr));
	out_json(o, false);
	json_object_put(o);
}

/* Every core feature that is missing is missing for want of a privilege. */
static bool core_denied(const struct ckpt_probe_result *r, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		if (r[i].core && !r[i].ok && !r[i].privilege)
			return false;
	return true;
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
	else {
		print_text(res, nr, &u, ctx->verbose > 0);
		print_user_text(res, nr);
	}
	if (!core_ok) {
		if (!ctx->json)
			fprintf(stderr, "ckpt: %s\n", core_denied(res, nr)
				? "a feature the core needs is missing for want of a privilege: see what works as "
				  "this user above"
				: "a feature the core needs is missing");
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
