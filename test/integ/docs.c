/* SPDX-License-Identifier: MIT */
/*
 * Documentation in step with the code: every command of `ckpt --help` has a
 * man page, is in ckpt(1) and the README; every long option of
 * `ckpt CMD --help` is in its man page and the other way round.
 */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"

static char *slurp(const char *rel)
{
	char path[4096];
	FILE *f = fopen(src_path(rel, path, sizeof(path)), "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Collect "--word" occurrences of @text into a newline-separated set. */
static void options_of(const char *text, const char *pattern, char *out, size_t len)
{
	regex_t re;
	regmatch_t m[2];
	const char *s = text;

	out[0] = '\0';
	cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED), 0);
	while (regexec(&re, s, 2, m, 0) == 0) {
		char opt[64];
		int n = (int)(m[1].rm_eo - m[1].rm_so);
		char key[70];

		snprintf(opt, sizeof(opt), "%.*s", n, s + m[1].rm_so);
		snprintf(key, sizeof(key), "\n%s\n", opt);
		if (!strstr(out, key) && strlen(out) + strlen(opt) + 3 < len)
			snprintf(out + strlen(out), len - strlen(out), "%s%s\n", out[0] ? "" : "\n", opt);
		s += m[0].rm_eo;
	}
	regfree(&re);
}

/*
 * Keep only the OPTIONS section of a man page (other sections may name
 * other commands' options) with roff's "\-" turned into "-".
 */
static void options_section(char *page)
{
	char *start = strstr(page, "\n.SH OPTIONS"), *end, *o = page;

	cr_assert_not_null(start, "no OPTIONS section");
	end = strstr(start + 1, "\n.SH ");
	if (end)
		*end = '\0';
	for (char *s = start; *s; s++) {
		if (s[0] == '\\' && s[1] == '-')
			s++;
		*o++ = *s;
	}
	*o = '\0';
}

static void commands(char names[][32], size_t *n)
{
	struct run_result r;
	const char *s;

	*n = 0;
	cr_assert_eq(run_ckpt(&r, "--help", NULL), 0);
	s = strstr(r.out, "Commands:\n");
	cr_assert_not_null(s);
	s += strlen("Commands:\n");
	while (strncmp(s, "  ", 2) == 0 && *n < 32) {
		sscanf(s, " %31s", names[*n]);
		(*n)++;
		s = strchr(s, '\n') + 1;
	}
	run_result_done(&r);
	cr_assert_gt(*n, 0);
}

Test(docs, every_command_has_a_man_page_and_is_listed)
{
	char names[32][32], rel[128];
	size_t n;
	char *main_man = slurp("man/ckpt.1"), *readme = slurp("README.md");

	cr_assert_not_null(main_man);
	cr_assert_not_null(readme);
	commands(names, &n);
	for (size_t i = 0; i < n; i++) {
		char *page, key[64];

		snprintf(rel, sizeof(rel), "man/ckpt-%s.1", names[i]);
		page = slurp(rel);
		cr_expect_not_null(page, "no %s", rel);
		free(page);
		snprintf(key, sizeof(key), "ckpt-%s", names[i]);
		cr_expect(strstr(main_man, key), "ckpt.1 does not mention %s", key);
		snprintf(key, sizeof(key), "`ckpt %s", names[i]);
		cr_expect(strstr(readme, key), "README does not mention %s", key);
	}
	free(main_man);
	free(readme);
}

Test(docs, options_match_help)
{
	char names[32][32], rel[128];
	size_t n;

	commands(names, &n);
	for (size_t i = 0; i < n; i++) {
		struct run_result r;
		char help_opts[4096], man_opts[4096], *page;

		snprintf(rel, sizeof(rel), "man/ckpt-%s.1", names[i]);
		page = slurp(rel);
		if (!page)
			continue; /* reported by the test above */
		cr_assert_eq(run_ckpt(&r, names[i], "--help", NULL), 0);
		options_of(r.out, "--([a-z][a-z0-9-]*)", help_opts, sizeof(help_opts));
		options_section(page);
		options_of(page, "--([a-z][a-z0-9-]*)", man_opts, sizeof(man_opts));
		cr_expect_gt(strlen(help_opts), 1, "%s --help lists no options", names[i]);
		for (char *o = strtok(help_opts, "\n"); o; o = strtok(NULL, "\n")) {
			char key[70];

			snprintf(key, sizeof(key), "\n%s\n", o);
			cr_expect(strstr(man_opts, key), "%s: --%s in --help, not in %s", names[i], o, rel);
		}
		options_of(r.out, "--([a-z][a-z0-9-]*)", help_opts, sizeof(help_opts));
		for (char *o = strtok(man_opts, "\n"); o; o = strtok(NULL, "\n")) {
			char key[70];

			snprintf(key, sizeof(key), "\n%s\n", o);
			cr_expect(strstr(help_opts, key), "%s: --%s in %s, not in --help", names[i], o, rel);
		}
		/* The SYNOPSIS line is the first line of --help. */
		free(page);
		run_result_done(&r);
	}
}
