/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>

#include "../../../cmd/cmd.h"

Test(cli_parse, durations)
{
	static const struct {
		const char *in;
		uint64_t ns;
	} ok[] = {
		{ "1", 1000000000ULL },    { "1s", 1000000000ULL }, { "1.5s", 1500000000ULL },
		{ "500ms", 500000000ULL }, { "250us", 250000ULL },  { "100ns", 100ULL },
		{ "2m", 120000000000ULL }, { "1h", 3600000000000ULL }, { "0", 0 },
		{ "0.001", 1000000ULL },
	};
	static const char *const bad[] = { "", "s", "-1s", "1x", "1 s", " 1", "ms", "nan", "inf", "1e30h" };
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(parse_duration_ns(ok[i].in, &v), 0, "'%s'", ok[i].in);
		cr_expect_eq(v, ok[i].ns, "'%s' gave %llu", ok[i].in, (unsigned long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_lt(parse_duration_ns(bad[i], &v), 0, "'%s' accepted", bad[i]);
}

Test(cli_parse, pids)
{
	pid_t p;

	cr_assert_eq(parse_pid("1", &p), 0);
	cr_expect_eq(p, 1);
	cr_assert_eq(parse_pid("4194304", &p), 0);
	cr_expect_eq(p, 4194304);
	cr_expect_lt(parse_pid("0", &p), 0);
	cr_expect_lt(parse_pid("-5", &p), 0);
	cr_expect_lt(parse_pid("12abc", &p), 0);
	cr_expect_lt(parse_pid("", &p), 0);
	cr_expect_lt(parse_pid("99999999999", &p), 0);
	cr_expect_lt(parse_pid(" 12", &p), 0);
}

Test(cli_parse, integers)
{
	uint64_t u;
	int64_t s;

	cr_assert_eq(parse_uint("42", 100, &u), 0);
	cr_expect_eq(u, 42);
	cr_expect_eq(parse_uint("101", 100, &u), -ERANGE);
	cr_expect_eq(parse_uint("+1", 100, &u), -EINVAL);
	cr_assert_eq(parse_int("-5", -7, 22, &s), 0);
	cr_expect_eq(s, -5);
	cr_expect_eq(parse_int("-8", -7, 22, &s), -ERANGE);
	cr_expect_eq(parse_int("3x", -7, 22, &s), -EINVAL);
}

/* --ghost-limit SIZE: bytes, or a binary unit as CRIU takes them. */
Test(cli_parse, sizes)
{
	static const struct {
		const char *s;
		int r;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 0 },           { "5000", 0, 5000 },
		{ "4K", 0, 4096 },       { "4k", 0, 4096 },
		{ "1M", 0, 1ULL << 20 }, { "2MiB", 0, 2ULL << 20 },
		{ "3G", 0, 3ULL << 30 }, { "1T", 0, 1ULL << 40 },
		{ "16777216T", -ERANGE, 0 }, { "18446744073709551616", -ERANGE, 0 },
		{ "", -EINVAL, 0 },      { "M", -EINVAL, 0 },
		{ "1X", -EINVAL, 0 },    { "1MB", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },    { " 1", -EINVAL, 0 },
		{ "1 M", -EINVAL, 0 },   { "1.5M", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int r = parse_size(cases[i].s, &v);

		cr_expect_eq(r, cases[i].r, "'%s': %d", cases[i].s, r);
		cr_expect_eq(v, r == 0 ? cases[i].v : 12345, "'%s': %llu", cases[i].s, (unsigned long long)v);
	}
}

Test(cli_parse, timeouts)
{
	unsigned int ms;

	cr_assert_eq(parse_timeout_ms("10", &ms), 0);
	cr_expect_eq(ms, 10000);
	cr_assert_eq(parse_timeout_ms("0.5", &ms), 0);
	cr_expect_eq(ms, 500);
	cr_assert_eq(parse_timeout_ms("250ms", &ms), 0);
	cr_expect_eq(ms, 250);
	cr_assert_eq(parse_timeout_ms("1500us", &ms), 0);
	cr_expect_eq(ms, 2, "rounded up");
	cr_expect_eq(parse_timeout_ms("0", &ms), -ERANGE);
	cr_expect_eq(parse_timeout_ms("100us", &ms), -ERANGE);
	cr_expect_eq(parse_timeout_ms("5000000", &ms), -ERANGE);
	cr_expect_lt(parse_timeout_ms("-1", &ms), 0);
	cr_expect_lt(parse_timeout_ms("ten", &ms), 0);
}
