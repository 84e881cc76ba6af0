/* SPDX-License-Identifier: MIT */
/* `ckpt check` and the command line, run as the built binary. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "helpers/testutil.h"

static const char *const required[] = {
	"userfaultfd", "userfaultfd-kernel-faults", "dev-userfaultfd", "uffd-wp-async",
	"uffd-wp-unpopulated", "uffd-event-fork", "uffd-event-remap", "uffd-event-remove",
	"uffd-event-unmap", "uffd-missing-shmem", "uffd-register-wp-anon",
	"uffd-register-wp-file", "pagemap-scan", "pagemap-scan-control", "pidfd",
	"process-vm-readv", "ptrace-seize", "ptrace-xstate", "ptrace-rseq-config",
	"prctl-set-mm-map", "cap-checkpoint-restore", "clone3-set-tid", "netlink-sock-diag",
	"so-peek-off", "tcp-repair", "nftables", "netlink-proc-connector",
};

/* "Linux 6.7" (possibly followed by more words) -> 6007 */
static int version_code(const char *s)
{
	int a = 0, b = 0;

	if (sscanf(s, "Linux %d.%d", &a, &b) < 1)
		return 0;
	return a * 1000 + b;
}

static int running_kernel(void)
{
	struct utsname u;
	int a = 0, b = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &a, &b);
	return a * 1000 + b;
}

static json_object *feature(json_object *features, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(features); i++) {
		json_object *f = json_object_array_get_idx(features, i), *n;

		if (json_object_object_get_ex(f, "name", &n) &&
		    strcmp(json_object_get_string(n), name) == 0)
			return f;
	}
	return NULL;
}

static const char *field(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

Test(check, json_lists_every_feature)
{
	struct run_result r;
	json_object *doc, *features, *core_ok;
	bool all_core = true;
	char skipped[1024] = "";

	cr_assert_eq(run_ckpt(&r, "check", "--json", NULL), 0);
	doc = json_tokener_parse(r.out);
	cr_assert_not_null(doc, "not JSON: %s", r.out);
	cr_assert(json_object_object_get_ex(doc, "features", &features));
	cr_assert(json_object_object_get_ex(doc, "core_ok", &core_ok));
	cr_assert_str_eq(field(doc, "machine"), "x86_64");

	for (size_t i = 0; i < json_object_array_length(features); i++) {
		json_object *f = json_object_array_get_idx(features, i), *core;

		cr_assert(json_object_object_get_ex(f, "core", &core));
		if (json_object_get_boolean(core) && strcmp(field(f, "status"), "ok"))
			all_core = false;
		cr_expect(strlen(field(f, "needed_by")) > 0);
		cr_expect(strncmp(field(f, "since"), "Linux ", 6) == 0);
	}
	/* The verdict, the exit code and the table agree. */
	cr_expect_eq(json_object_get_boolean(core_ok), all_core);
	cr_expect_eq(r.status, all_core ? 0 : 1, "exit %d, core_ok %d", r.status, all_core);

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		json_object *f = feature(features, required[i]);

		cr_assert_not_null(f, "feature '%s' not listed", required[i]);
		if (strcmp(field(f, "status"), "ok") == 0)
			continue;
		/* Missing on a kernel that should have it: the probe or the config is wrong. */
		if (running_kernel() >= version_code(field(f, "since")))
			cr_expect_fail("'%s' missing on a kernel >= %s: %s", required[i],
				       field(f, "since"), field(f, "detail"));
		else
			snprintf(skipped + strlen(skipped), sizeof(skipped) - strlen(skipped), " %s",
				 required[i]);
	}
	json_object_put(doc);
	run_result_done(&r);
	if (skipped[0])
		cr_skip_test("kernel too old for:%s", skipped);
}

Test(check, text_table_matches_json)
{
	struct run_result t, j;
	json_object *doc, *features;

	cr_assert_eq(run_ckpt(&t, "check", NULL), 0);
	cr_assert_eq(run_ckpt(&j, "check", "--json", NULL), 0);
	doc = json_tokener_parse(j.out);
	cr_assert(json_object_object_get_ex(doc, "features", &features));
	cr_assert(strstr(t.out, "FEATURE") && strstr(t.out, "STATUS"));
	for (size_t i = 0; i < json_object_array_length(features); i++) {
		json_object *f = json_object_array_get_idx(features, i);
		char line[128];

		snprintf(line, sizeof(line), "\n%-26s %-8s", field(f, "name"), field(f, "status"));
		cr_expect(strstr(t.out, line), "no line for '%s'", field(f, "name"));
	}
	cr_expect_eq(t.status, j.status);
	json_object_put(doc);
	run_result_done(&t);
	run_result_done(&j);
}

Test(cli, unknown_command_and_option)
{
	struct run_result r;

	cr_assert_eq(run_ckpt(&r, "frobnicate", NULL), 0);
	cr_expect_eq(r.status, 2);
	cr_expect(strstr(r.err, "unknown command 'frobnicate'"), "stderr: %s", r.err);
	cr_expect(strstr(r.err, "see 'ckpt --help'"), "stderr: %s", r.err);
	cr_expect_str_eq(r.out, "");
	run_result_done(&r);

	cr_assert_eq(run_ckpt(&r, "check", "--bogus", NULL), 0);
	cr_expect_eq(r.status, 2);
	cr_expect(strstr(r.err, "unknown option '--bogus'"), "stderr: %s", r.err);
	cr_expect(strstr(r.err, "see 'ckpt check --help'"), "stderr: %s", r.err);
	/* One line plus the hint, not the whole usage. */
	cr_expect(!strstr(r.err, "Usage:"));
	run_result_done(&r);

	cr_assert_eq(run_ckpt(&r, "--bogus", NULL), 0);
	cr_expect_eq(r.status, 2);
	run_result_done(&r);

	cr_assert_eq(run_ckpt(&r, NULL), 0);
	cr_expect_eq(r.status, 2);
	cr_expect(strstr(r.err, "Usage: ckpt"));
	run_result_done(&r);
}

Test(cli, json_errors_are_json)
{
	struct run_result r;
	json_object *doc, *code;

	cr_assert_eq(run_ckpt(&r, "--json", "frobnicate", NULL), 0);
	cr_expect_eq(r.status, 2);
	doc = json_tokener_parse(r.out);
	cr_assert_not_null(doc, "not JSON: '%s'", r.out);
	cr_expect(strstr(field(doc, "error"), "frobnicate"));
	cr_assert(json_object_object_get_ex(doc, "exit_code", &code));
	cr_expect_eq(json_object_get_int(code), 2);
	json_object_put(doc);
	run_result_done(&r);
}

Test(cli, version_and_help)
{
	struct run_result r, h1, h2;

	cr_assert_eq(run_ckpt(&r, "--version", NULL), 0);
	cr_expect_eq(r.status, 0);
	cr_expect(strncmp(r.out, "ckpt ", 5) == 0, "%s", r.out);
	run_result_done(&r);

	cr_assert_eq(run_ckpt(&r, "--help", NULL), 0);
	cr_expect_eq(r.status, 0);
	cr_expect(strstr(r.out, "check"));
	run_result_done(&r);

	cr_assert_eq(run_ckpt(&h1, "help", "check", NULL), 0);
	cr_assert_eq(run_ckpt(&h2, "check", "--help", NULL), 0);
	cr_expect_eq(h1.status, 0);
	cr_expect_eq(h2.status, 0);
	cr_expect_str_eq(h1.out, h2.out);
	cr_expect(strstr(h2.out, "Usage: ckpt check"));
	run_result_done(&h1);
	run_result_done(&h2);
}
