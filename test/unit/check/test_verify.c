/* SPDX-License-Identifier: MIT */
/*
 * The negative control of `ckpt check`: fed fake scan results, the verifier
 * must accept exactly the written set and reject anything else.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include <ckpt/check.h>

#define PS 4096ULL
#define B 0x7f0000000000ULL
#define PG(n) (B + (n) * PS)

static const struct ckpt_range want[] = {
	{ PG(2), PG(3) }, { PG(7), PG(8) }, { PG(11), PG(12) },
};

static int verify(const struct ckpt_range *got, size_t n, char *why)
{
	return ckpt_check_verify_written(got, n, want, 3, PS, why, 160);
}

Test(check_verify, exact_match_passes)
{
	const struct ckpt_range got[] = { { PG(11), PG(12) }, { PG(2), PG(3) }, { PG(7), PG(8) } };
	char why[160];

	cr_assert_eq(verify(got, 3, why), 0, "%s", why);
}

Test(check_verify, duplicates_and_splits_pass)
{
	/* walk_end restarts can report a region twice: still the same set. */
	const struct ckpt_range got[] = {
		{ PG(2), PG(3) }, { PG(2), PG(3) }, { PG(7), PG(8) }, { PG(11), PG(12) },
	};
	char why[160];

	cr_assert_eq(verify(got, 4, why), 0, "%s", why);
}

Test(check_verify, extra_page_fails)
{
	const struct ckpt_range got[] = { { PG(2), PG(3) }, { PG(7), PG(8) }, { PG(11), PG(12) },
					  { PG(13), PG(14) } };
	char why[160];

	cr_assert_eq(verify(got, 4, why), -EBADMSG);
	cr_assert(strstr(why, "never written"), "why: %s", why);
}

Test(check_verify, missing_page_fails)
{
	const struct ckpt_range got[] = { { PG(2), PG(3) }, { PG(11), PG(12) } };
	char why[160];

	cr_assert_eq(verify(got, 2, why), -EBADMSG);
	cr_assert(strlen(why) > 0);
}

Test(check_verify, widened_range_fails)
{
	const struct ckpt_range got[] = { { PG(2), PG(4) }, { PG(7), PG(8) }, { PG(11), PG(12) } };
	char why[160];

	cr_assert_eq(verify(got, 3, why), -EBADMSG);
	cr_assert(strstr(why, "reported"), "why: %s", why);
}

Test(check_verify, everything_reported_fails)
{
	/* A scan that says "all written" (e.g. unregistered VMA) must fail. */
	const struct ckpt_range got[] = { { PG(0), PG(16) } };
	char why[160];

	cr_assert_eq(verify(got, 1, why), -EBADMSG);
}

Test(check_verify, nothing_reported_fails)
{
	char why[160];

	cr_assert_eq(verify(NULL, 0, why), -EBADMSG);
	cr_assert(strstr(why, "not reported"), "why: %s", why);
}

Test(check_verify, empty_expected_and_empty_result_passes)
{
	char why[160];

	cr_assert_eq(ckpt_check_verify_written(NULL, 0, NULL, 0, PS, why, sizeof(why)), 0);
}

Test(check_verify, unaligned_range_fails)
{
	const struct ckpt_range got[] = { { PG(2) + 1, PG(3) }, { PG(7), PG(8) }, { PG(11), PG(12) } };
	char why[160];

	cr_assert_eq(verify(got, 3, why), -EBADMSG);
	cr_assert(strstr(why, "aligned"), "why: %s", why);
}
