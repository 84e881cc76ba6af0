/* SPDX-License-Identifier: MIT */
/*
 * The kind-specific state of signalfd, timerfd, inotify and epoll fds:
 * files.json round trip, what the judge says with and without it, and
 * objects given for the wrong kind or out of order refused.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ckpt/state.h>

#define WHY 512

static struct ckpt_state *kinds_state(void)
{
	struct ckpt_state *s;
	struct ckpt_state_fd *f;

	cr_assert_eq(ckpt_state_new(&s), 0);
	s->process.pid = 42;
	s->nr_threads = 1;
	s->threads = calloc(1, sizeof(*s->threads));
	s->threads[0].tid = 42;
	s->nr_fds = 4;
	s->fds = calloc(4, sizeof(*s->fds));
	for (int i = 0; i < 4; i++) {
		s->fds[i].fd = 3 + i;
		s->fds[i].path = strdup("anon_inode:x");
		s->fds[i].k.known = true;
	}
	f = &s->fds[0];
	f->kind = CKPT_STATE_FD_SIGNALFD;
	f->k.sigmask = 0x8000000000000200ULL;
	f = &s->fds[1];
	f->kind = CKPT_STATE_FD_TIMERFD;
	f->k.timer = (struct ckpt_state_timerfd){ .clockid = CLOCK_BOOTTIME, .ticks = 0xfffffffffffffff0ULL,
						  .settime_flags = 1, .value_sec = 5, .value_nsec = 999999999,
						  .interval_sec = 1, .interval_nsec = 7 };
	f = &s->fds[2];
	f->kind = CKPT_STATE_FD_INOTIFY;
	f->k.nr_watches = 2;
	f->k.watches = calloc(2, sizeof(*f->k.watches));
	f->k.watches[0] = (struct ckpt_state_inotify_watch){ .wd = 1, .ino = 0x3c51a, .dev_major = 254,
							     .dev_minor = 1, .mask = 0x80000200,
							     .handle_type = 1, .handle_bytes = 8 };
	memcpy(f->k.watches[0].handle, "\x13\0\0\0\xff\0\0\x01", 8);
	f->k.watches[0].path = strdup("/tmp/w \xc3");
	f->k.watches[1] = (struct ckpt_state_inotify_watch){ .wd = 3, .ino = 7, .mask = 0x100,
							     .handle_type = -2, .handle_bytes = 128 };
	memset(f->k.watches[1].handle, 0xab, 128);
	f = &s->fds[3];
	f->kind = CKPT_STATE_FD_EPOLL;
	f->k.nr_targets = 2;
	f->k.targets = calloc(2, sizeof(*f->k.targets));
	f->k.targets[0] = (struct ckpt_state_epoll_target){ .tfd = 4, .events = 0x80000019,
							    .data = 0xdeadbeef00000005ULL, .pos = 9,
							    .ino = 0x1a, .sdev = 0xfe00001 };
	f->k.targets[1] = (struct ckpt_state_epoll_target){ .tfd = 4, .events = 1, .data = 0 };
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ckpt_state_fd_judge(&s->fds[i]), 0);
	return s;
}

static struct ckpt_state *round_trip(const struct ckpt_state *s, json_object **ret_doc)
{
	json_object *docs[CKPT_STATE_NR_DOCS] = { 0 };
	struct ckpt_state *back = NULL;
	char why[WHY];

	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		cr_assert_eq(ckpt_state_doc_to_json(s, (enum ckpt_state_doc)d, &docs[d]), 0);
	cr_assert_eq(ckpt_state_from_docs(docs, why, sizeof(why), &back), 0, "%s", why);
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		if (d == CKPT_STATE_DOC_FILES && ret_doc)
			*ret_doc = docs[d];
		else
			json_object_put(docs[d]);
	return back;
}

Test(state_fdkinds, round_trip)
{
	_cleanup_state_ struct ckpt_state *s = kinds_state(), *b = round_trip(s, NULL);

	cr_assert_eq(b->nr_fds, 4);
	for (int i = 0; i < 4; i++) {
		cr_expect(b->fds[i].k.known, "fd %d", i);
		cr_expect(b->fds[i].restorable, "fd %d: %s", i, b->fds[i].reason);
	}
	cr_expect_eq(b->fds[0].k.sigmask, 0x8000000000000200ULL);
	cr_expect_eq(memcmp(&b->fds[1].k.timer, &s->fds[1].k.timer, sizeof(s->fds[1].k.timer)), 0);
	cr_assert_eq(b->fds[2].k.nr_watches, 2);
	for (int i = 0; i < 2; i++) {
		struct ckpt_state_inotify_watch x = s->fds[2].k.watches[i], y = b->fds[2].k.watches[i];

		cr_expect_str_eq(y.path ? y.path : "(none)", x.path ? x.path : "(none)");
		x.path = y.path = NULL;
		cr_expect_eq(memcmp(&x, &y, sizeof(x)), 0, "watch %d", i);
	}
	cr_assert_eq(b->fds[3].k.nr_targets, 2);
	cr_expect_eq(memcmp(b->fds[3].k.targets, s->fds[3].k.targets, 2 * sizeof(*s->fds[3].k.targets)), 0);
}

Test(state_fdkinds, judge)
{
	_cleanup_state_ struct ckpt_state *s = kinds_state();
	struct ckpt_state_fd *f;

	for (int i = 0; i < 4; i++) {
		f = &s->fds[i];
		cr_expect(f->restorable, "%s: %s", ckpt_state_fd_kind_name(f->kind), f->reason);
		f->k.known = false; /* an older checkpoint */
		cr_assert_eq(ckpt_state_fd_judge(f), 0);
		cr_expect(!f->restorable && f->reason && strstr(f->reason, "not in the checkpoint"),
			  "%s", f->reason ? f->reason : "(none)");
		f->k.known = true;
	}
	f = &s->fds[1];
	f->k.timer.clockid = CLOCK_PROCESS_CPUTIME_ID;
	cr_assert_eq(ckpt_state_fd_judge(f), 0);
	cr_expect(!f->restorable && strstr(f->reason, "clock"), "%s", f->reason);
	f = &s->fds[2];
	f->k.watches[1].handle_bytes = 0;
	cr_assert_eq(ckpt_state_fd_judge(f), 0);
	cr_expect(!f->restorable && strstr(f->reason, "file handle"), "%s", f->reason);
}

static int parse_files(json_object *files, char *why, size_t len)
{
	_cleanup_state_ struct ckpt_state *s = kinds_state(), *b = NULL;
	json_object *docs[CKPT_STATE_NR_DOCS] = { 0 };
	int r;

	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		if (d != CKPT_STATE_DOC_FILES)
			cr_assert_eq(ckpt_state_doc_to_json(s, (enum ckpt_state_doc)d, &docs[d]), 0);
	docs[CKPT_STATE_DOC_FILES] = files;
	r = ckpt_state_from_docs(docs, why, len, &b);
	for (int d = 0; d < CKPT_STATE_NR_DOCS; d++)
		if (d != CKPT_STATE_DOC_FILES)
			json_object_put(docs[d]);
	return r;
}

static json_object *fd_obj(json_object *files, int i)
{
	return json_object_array_get_idx(json_object_object_get(files, "fds"), i);
}

Test(state_fdkinds, hostile)
{
	_cleanup_state_ struct ckpt_state *s = kinds_state(), *b = NULL;
	json_object *files = NULL, *x;
	char why[WHY];

	b = round_trip(s, &files);
	/* a kind's object on another kind */
	json_object_object_add(fd_obj(files, 0), "epoll", json_object_get(json_object_object_get(fd_obj(files, 3), "epoll")));
	cr_expect_lt(parse_files(files, why, sizeof(why)), 0);
	cr_expect(strstr(why, "fds[0].epoll: not expected for an fd of kind signalfd"), "%s", why);
	json_object_object_del(fd_obj(files, 0), "epoll");
	cr_expect_eq(parse_files(files, why, sizeof(why)), 0, "%s", why);
	/* watches out of order */
	x = json_object_object_get(json_object_object_get(fd_obj(files, 2), "inotify"), "watches");
	json_object_object_add(json_object_array_get_idx(x, 1), "wd", json_object_new_int(1));
	cr_expect_lt(parse_files(files, why, sizeof(why)), 0);
	cr_expect(strstr(why, "must ascend"), "%s", why);
	json_object_object_add(json_object_array_get_idx(x, 1), "wd", json_object_new_int(3));
	/* a handle longer than MAX_HANDLE_SZ, a nanosecond count out of range */
	json_object_object_add(json_object_array_get_idx(x, 1), "handle",
			       json_object_new_string("qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
						      "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
						      "qqqqqqqqqqqqqqqqqqqqqqqq"));
	cr_expect_lt(parse_files(files, why, sizeof(why)), 0);
	cr_expect(strstr(why, "watches[1].handle"), "%s", why);
	json_object_object_add(json_object_array_get_idx(x, 1), "handle", json_object_new_string(""));
	cr_expect_eq(parse_files(files, why, sizeof(why)), 0, "%s", why);
	json_object_object_add(json_object_object_get(fd_obj(files, 1), "timerfd"), "value_nsec",
			       json_object_new_int(1000000000));
	cr_expect_lt(parse_files(files, why, sizeof(why)), 0);
	cr_expect(strstr(why, "fds[1].timerfd.value_nsec"), "%s", why);
	json_object_put(files);
}
