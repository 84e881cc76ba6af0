/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "fixture.h"

Test(proc_stat, zoo)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	struct ckpt_proc_stat st;
	char root[512];
	pid_t pid = fixture_pid("zoo", root, sizeof(root));

	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_read_stat(p, &st), 0);
	cr_expect_eq(st.pid, pid);
	cr_expect_str_eq(st.comm, "proc_zoo");
	cr_expect_eq(st.state, 'S');
	cr_expect_eq(st.ppid, 1);
	cr_expect_eq(st.num_threads, 2);
	cr_expect_eq(st.start_time, 59865);
	cr_expect_eq(st.start_code, 94159316553728ULL);
	cr_expect_eq(st.end_code, 94159316555161ULL);
	cr_expect_eq(st.start_stack, 140727545598560ULL);
	cr_expect_eq(st.start_data, 94159316565456ULL);
	cr_expect_eq(st.end_data, 94159316566184ULL);
	cr_expect_eq(st.start_brk, 94160137822208ULL);
	cr_expect_eq(st.arg_start, 140727545604686ULL);
	cr_expect_eq(st.arg_end, 140727545604728ULL);
	cr_expect_eq(st.env_start, 140727545604728ULL);
	cr_expect_eq(st.env_end, 140727545606108ULL);
	cr_expect_eq(st.exit_signal, 17);
	cr_expect_eq(st.flags & CKPT_PF_KTHREAD, 0);
}

Test(proc_stat, comm_with_parens_and_spaces)
{
	static const char line[] =
		"77 (a) b (c)) R 1 77 77 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 123 0 0 "
		"18446744073709551615 1 2 3 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 4 5 6 7 8 9 10 0\n";
	struct ckpt_proc_stat st;

	cr_assert_eq(ckpt_proc_parse_stat(line, &st), 0);
	cr_expect_str_eq(st.comm, "a) b (c)");
	cr_expect_eq(st.state, 'R');
	cr_expect_eq(st.start_time, 123);
	cr_expect_eq(st.start_data, 4);
	cr_expect_eq(st.env_end, 10);
}

Test(proc_stat, malformed)
{
	static const char *const bad[] = {
		"", "12", "12 (x", "12 x) R 1", "12 (x) R 1 2 3\n", "abc (x) R\n",
		"12 (x)R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n",
	};
	struct ckpt_proc_stat st;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(ckpt_proc_parse_stat(bad[i], &st), -EBADMSG, "accepted '%s'", bad[i]);
}

Test(proc_stat, zombie_and_kthread)
{
	_cleanup_proc_ struct ckpt_proc *z = NULL, *k = NULL;
	struct ckpt_proc_stat st;
	struct ckpt_proc_status ss;
	char root[512];
	pid_t pid = fixture_pid("zombie", root, sizeof(root));

	cr_assert_eq(ckpt_proc_open(root, pid, &z), 0);
	cr_assert_eq(ckpt_proc_read_stat(z, &st), 0);
	cr_expect_eq(st.state, 'Z');
	cr_expect_eq(st.start_code, 0);

	pid = fixture_pid("kthread", root, sizeof(root));
	cr_assert_eq(ckpt_proc_open(root, pid, &k), 0);
	cr_assert_eq(ckpt_proc_read_stat(k, &st), 0);
	cr_expect_neq(st.flags & CKPT_PF_KTHREAD, 0);
	cr_assert_eq(ckpt_proc_read_status(k, &ss), 0);
	cr_expect_eq(ss.kthread, 1);
	ckpt_proc_status_done(&ss);
}

Test(proc_status, zoo)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	struct ckpt_proc_status st;
	char root[512];
	pid_t pid = fixture_pid("zoo", root, sizeof(root));

	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_read_status(p, &st), 0);
	cr_expect_str_eq(st.name, "proc_zoo");
	cr_expect(st.has_umask);
	cr_expect_eq(st.umask, 022);
	cr_expect_eq(st.state, 'S');
	cr_expect_eq(st.tgid, pid);
	cr_expect_eq(st.pid, pid);
	cr_expect_eq(st.ppid, 1);
	cr_expect_eq(st.tracer_pid, 0);
	cr_expect_eq(st.threads, 2);
	cr_expect_eq(st.ngroups, 0);
	cr_expect_eq(st.nspid_nr, 1);
	cr_expect_eq(st.nspid_inner, pid);
	cr_expect_eq(st.sig_cgt, 0x100000000ULL); /* glibc's SIGCANCEL handler */
	cr_expect_eq(st.cap_eff, 0x1fffeffffffULL);
	cr_expect_eq(st.kthread, 0);
	cr_expect_eq(st.vm_rss_kb, 1376);
	ckpt_proc_status_done(&st);
}

Test(proc_status, groups_ids_and_tracer)
{
	static const char text[] =
		"Name:\tx y\nUmask:\t0077\nState:\tt (tracing stop)\nTgid:\t10\nPid:\t11\nPPid:\t1\n"
		"TracerPid:\t4242\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\t6\t7\t8\n"
		"Groups:\t4 24 27 1000 \nNSpid:\t11\t3\nThreads:\t9\nSigPnd:\t0000000000000200\n"
		"SigBlk:\tfffffffe7ffbfeff\n";
	struct ckpt_proc_status st;

	cr_assert_eq(ckpt_proc_parse_status(text, &st), 0);
	cr_expect_str_eq(st.name, "x y");
	cr_expect_eq(st.umask, 077);
	cr_expect_eq(st.state, 't');
	cr_expect_eq(st.tracer_pid, 4242);
	cr_expect_eq(st.uid[0], 1000);
	cr_expect_eq(st.uid[3], 1003);
	cr_expect_eq(st.gid[2], 7);
	cr_assert_eq(st.ngroups, 4);
	cr_expect_eq(st.groups[0], 4);
	cr_expect_eq(st.groups[3], 1000);
	cr_expect_eq(st.nspid_nr, 2);
	cr_expect_eq(st.nspid_inner, 3);
	cr_expect_eq(st.sig_pnd, 0x200);
	cr_expect_eq(st.sig_blk, 0xfffffffe7ffbfeffULL);
	cr_expect_eq(st.kthread, -1);
	ckpt_proc_status_done(&st);
}

Test(proc_status, malformed)
{
	struct ckpt_proc_status st;

	cr_expect_eq(ckpt_proc_parse_status("Name:\tx\n", &st), -EBADMSG); /* no Pid */
	cr_expect_eq(ckpt_proc_parse_status("Pid\t5\n", &st), -EBADMSG);
	cr_expect_eq(ckpt_proc_parse_status("Pid:\t5\nUid:\t1 2\n", &st), -EBADMSG);
	cr_expect_eq(ckpt_proc_parse_status("Pid:\t5\nSigBlk:\tzz\n", &st), -EBADMSG);
}

/* A page two processes map counts half in each one's Pss: what a dump reserves for a child. */
Test(proc_pss, shared_pages_count_half_in_each)
{
	size_t len = 16 << 20;
	char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	_cleanup_proc_ struct ckpt_proc *self = NULL;
	struct ckpt_proc_pss alone, shared;
	int go[2];
	pid_t kid;
	char c;

	cr_assert_neq(buf, MAP_FAILED);
	memset(buf, 0x5a, len);
	cr_assert_eq(ckpt_proc_open(NULL, getpid(), &self), 0);
	cr_assert_eq(ckpt_proc_read_pss(self, &alone), 0);
	cr_expect_geq(alone.anon_kb, 16 * 1024);
	cr_assert_eq(pipe(go), 0);
	kid = fork();
	cr_assert_geq(kid, 0);
	if (kid == 0) {
		close(go[1]);
		_exit(read(go[0], &c, 1) < 0); /* holds the pages until the parent is done */
	}
	close(go[0]);
	cr_assert_eq(ckpt_proc_read_pss(self, &shared), 0);
	cr_expect_leq(shared.anon_kb + 7 * 1024, alone.anon_kb, "Pss_Anon %llu KiB alone, %llu shared with a child",
		      (unsigned long long)alone.anon_kb, (unsigned long long)shared.anon_kb);
	close(go[1]);
	waitpid(kid, NULL, 0);
	munmap(buf, len);
}
