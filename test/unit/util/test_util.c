/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include <ckpt/log.h>

#include "util/util.h"

Test(util, mem_is_zero)
{
	static unsigned char buf[8192 + 16];

	memset(buf, 0, sizeof(buf));
	cr_assert(mem_is_zero(buf, sizeof(buf)));
	cr_assert(mem_is_zero(buf + 3, 4096));
	for (size_t pos = 0; pos < 200; pos += 7) {
		buf[pos + 3] = 1;
		cr_assert(!mem_is_zero(buf + 3, 4096), "byte %zu missed", pos);
		buf[pos + 3] = 0;
	}
	buf[3 + 4095] = 0x80; /* the very last byte */
	cr_assert(!mem_is_zero(buf + 3, 4096));
	cr_assert(mem_is_zero(buf + 3, 4095));
	cr_assert(mem_is_zero(buf, 0));
}

Test(util, grow_array)
{
	int *a = NULL;
	size_t cap = 0;

	cr_assert_eq(GROW(a, cap, 1), 0);
	cr_assert_geq(cap, 1);
	cr_assert_eq(GROW(a, cap, 1000), 0);
	cr_assert_geq(cap, 1000);
	a[999] = 5;
	cr_assert_eq(grow_array((void **)&a, &cap, SIZE_MAX / 2, 16), -ENOMEM);
	cr_assert_eq(a[999], 5);
	free(a);
}

static int seen_level = -1;
static char seen_area[32], seen_msg[128];

static void test_sink(enum ckpt_log_level level, const char *area, const char *msg, void *ud)
{
	seen_level = (int)level;
	snprintf(seen_area, sizeof(seen_area), "%s", area);
	snprintf(seen_msg, sizeof(seen_msg), "%s", msg);
	(*(int *)ud)++;
}

Test(util, log_levels_and_debug_areas)
{
	int calls = 0;

	ckpt_log_set_sink(test_sink, &calls);
	ckpt_log_set_level(CKPT_LOG_WARN);
	ckpt_log(CKPT_LOG_INFO, "track", "hidden");
	cr_expect_eq(calls, 0);
	ckpt_log(CKPT_LOG_ERROR, "track", "cannot %s", "register");
	cr_expect_eq(calls, 1);
	cr_expect_eq(seen_level, CKPT_LOG_ERROR);
	cr_expect_str_eq(seen_area, "track");
	cr_expect_str_eq(seen_msg, "cannot register");
	cr_assert_eq(ckpt_log_set_debug_areas("inject,track"), 0);
	cr_expect(ckpt_log_enabled(CKPT_LOG_DEBUG, "track"));
	cr_expect(ckpt_log_enabled(CKPT_LOG_DEBUG, "inject"));
	cr_expect(!ckpt_log_enabled(CKPT_LOG_DEBUG, "trac"));
	cr_expect(!ckpt_log_enabled(CKPT_LOG_DEBUG, "image"));
	cr_assert_eq(ckpt_log_set_debug_areas("all"), 0);
	cr_expect(ckpt_log_enabled(CKPT_LOG_DEBUG, "image"));
	cr_expect_eq(ckpt_log_set_debug_areas(""), -EINVAL);
	ckpt_log_set_sink(NULL, NULL);
}
