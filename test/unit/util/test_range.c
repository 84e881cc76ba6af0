/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <stdlib.h>

#include <ckpt/range.h>

Test(range, normalize_merges_and_sorts)
{
	struct ckpt_range_set s;

	ckpt_range_set_init(&s);
	cr_assert_eq(ckpt_range_set_add(&s, 50, 60), 0);
	cr_assert_eq(ckpt_range_set_add(&s, 10, 20), 0);
	cr_assert_eq(ckpt_range_set_add(&s, 20, 30), 0); /* adjacent: merged */
	cr_assert_eq(ckpt_range_set_add(&s, 55, 70), 0); /* overlapping */
	cr_assert_eq(ckpt_range_set_add(&s, 15, 16), 0); /* inside */
	cr_assert_eq(ckpt_range_set_add(&s, 80, 80), 0); /* empty: ignored */
	ckpt_range_set_normalize(&s);
	cr_assert_eq(s.nr, 2);
	cr_expect_eq(s.v[0].start, 10);
	cr_expect_eq(s.v[0].end, 30);
	cr_expect_eq(s.v[1].start, 50);
	cr_expect_eq(s.v[1].end, 70);
	cr_expect_eq(ckpt_range_set_bytes(&s), 40);
	ckpt_range_set_done(&s);
}

Test(range, covers_overlaps_uncovered)
{
	struct ckpt_range_set s, out;

	ckpt_range_set_init(&s);
	ckpt_range_set_init(&out);
	cr_assert_eq(ckpt_range_set_add(&s, 100, 200), 0);
	cr_assert_eq(ckpt_range_set_add(&s, 300, 400), 0);
	ckpt_range_set_normalize(&s);
	cr_expect(ckpt_range_set_covers(&s, 100, 200));
	cr_expect(ckpt_range_set_covers(&s, 150, 160));
	cr_expect(!ckpt_range_set_covers(&s, 150, 250));
	cr_expect(!ckpt_range_set_covers(&s, 0, 10));
	cr_expect(ckpt_range_set_overlaps(&s, 199, 300));
	cr_expect(!ckpt_range_set_overlaps(&s, 200, 300));
	cr_expect(!ckpt_range_set_overlaps(&s, 400, 500));
	cr_assert_eq(ckpt_range_set_add_uncovered(&out, &s, 50, 450), 0);
	cr_assert_eq(out.nr, 3);
	cr_expect_eq(out.v[0].start, 50);
	cr_expect_eq(out.v[0].end, 100);
	cr_expect_eq(out.v[1].start, 200);
	cr_expect_eq(out.v[1].end, 300);
	cr_expect_eq(out.v[2].start, 400);
	cr_expect_eq(out.v[2].end, 450);
	out.nr = 0;
	cr_assert_eq(ckpt_range_set_add_uncovered(&out, &s, 120, 180), 0);
	cr_expect_eq(out.nr, 0);
	ckpt_range_set_done(&s);
	ckpt_range_set_done(&out);
}

/* Random sets against a bitmap model. */
Test(range, random_against_model)
{
	enum { N = 512 };
	srand(7);
	for (int round = 0; round < 200; round++) {
		bool model[N] = { 0 };
		struct ckpt_range_set s;

		ckpt_range_set_init(&s);
		for (int k = 0; k < 20; k++) {
			int a = rand() % N, b = a + rand() % 40;

			if (b > N)
				b = N;
			cr_assert_eq(ckpt_range_set_add(&s, (uint64_t)a, (uint64_t)b), 0);
			for (int i = a; i < b; i++)
				model[i] = true;
		}
		ckpt_range_set_normalize(&s);
		for (size_t i = 1; i < s.nr; i++)
			cr_assert_gt(s.v[i].start, s.v[i - 1].end);
		for (int i = 0; i < N; i++)
			cr_assert_eq(ckpt_range_set_covers(&s, (uint64_t)i, (uint64_t)i + 1), model[i], "at %d", i);
		ckpt_range_set_done(&s);
	}
}
