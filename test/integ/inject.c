/* SPDX-License-Identifier: MIT */
/*
 * lib/inject against real processes (test/progs/target): remote syscalls,
 * memory, fds, and above all that the target is left exactly as it was.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/inject.h>
#include <ckpt/log.h>

#include "compat/uffd.h"
#include "helpers/testutil.h"

static void expect_line(struct prog *p, const char *prefix, char *buf, size_t len)
{
	int r = prog_read_line(p, buf, len, 5000);

	cr_assert_geq(r, 0, "no output from the target (%s)", strerror(-r));
	cr_assert(strncmp(buf, prefix, strlen(prefix)) == 0, "target said '%s', expected '%s...'", buf,
		  prefix);
}

static void inject_n(struct ckpt_inject *inj, size_t thread, int n, pid_t want_pid)
{
	for (int i = 0; i < n; i++) {
		int64_t res = -1;

		cr_assert_eq(ckpt_inject_syscall(inj, thread, SYS_getpid, (const uint64_t[6]){ 0 }, &res), 0);
		cr_assert_eq(res, want_pid, "remote getpid gave %lld", (long long)res);
	}
}

/* "NAME -> TARGET" lines of /proc/PID/fd, sorted by fd number. */
static void fd_listing(pid_t pid, char *out, size_t len)
{
	char path[64];
	struct dirent **names;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	n = scandir(path, &names, NULL, versionsort);
	cr_assert_geq(n, 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		char link[512], target[256] = "";
		ssize_t l;

		if (names[i]->d_name[0] != '.') {
			snprintf(link, sizeof(link), "%s/%s", path, names[i]->d_name);
			l = readlink(link, target, sizeof(target) - 1);
			if (l > 0)
				target[l] = '\0';
			snprintf(out + strlen(out), len - strlen(out), "%s -> %s\n", names[i]->d_name, target);
		}
		free(names[i]);
	}
	free(names);
}

static bool has_mapping_at(pid_t pid, uint64_t addr)
{
	char path[64], line[512];
	FILE *f;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long s, e;

		if (sscanf(line, "%llx-%llx", &s, &e) == 2 && addr >= s && addr < e)
			found = true;
	}
	if (f)
		fclose(f);
	return found;
}

static pid_t tracer_of(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	int t = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "TracerPid:\t%d", &t) == 1)
			break;
	if (f)
		fclose(f);
	return t;
}

Test(inject, getpid_getppid_mmap_roundtrip)
{
	struct prog p;
	struct ckpt_inject *inj;
	int64_t res;
	uint64_t addr;
	char buf[64] = "", back[64] = "";

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_inject_nr_threads(inj), 1);
	cr_assert_eq(ckpt_inject_call(inj, &res, SYS_getpid), 0);
	cr_expect_eq(res, p.pid);
	cr_assert_eq(ckpt_inject_call(inj, &res, SYS_getppid), 0);
	cr_expect_eq(res, getpid());

	cr_assert_eq(ckpt_inject_call(inj, &res, SYS_mmap, 0, 8192, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0), 0);
	cr_assert_gt(res, 0);
	addr = (uint64_t)res;
	cr_expect(has_mapping_at(p.pid, addr));
	snprintf(buf, sizeof(buf), "written by the test into pid %d", p.pid);
	cr_assert_eq(ckpt_inject_write(inj, addr + 4000, buf, sizeof(buf)), 0); /* across pages */
	cr_assert_eq(ckpt_inject_read(inj, addr + 4000, back, sizeof(back)), 0);
	cr_expect_str_eq(back, buf);
	cr_assert_eq(ckpt_inject_call(inj, &res, SYS_munmap, addr, 8192), 0);
	cr_expect_eq(res, 0);
	cr_expect(!has_mapping_at(p.pid, addr));
	/* A read of unmapped memory is an error, not garbage. */
	cr_expect_eq(ckpt_inject_read(inj, addr, back, 8), -EFAULT);
	cr_assert_eq(ckpt_inject_release(inj), 0);

	prog_send_line(&p, "still alive\n");
	expect_line(&p, "got still alive", buf, sizeof(buf));
	prog_kill(&p);
}

/*
 * A loop of calls in one stop (a process that dies with ckpt): 3000 calls
 * crossing two batches, each result where it belongs, and the loop ends at
 * the first failure, the calls after it not run. Without EXITKILL it is
 * refused (such a process makes its calls through the stub).
 */
Test(inject, a_loop_of_calls_runs_them_in_order_and_stops_at_a_failure)
{
	enum { N = 3000 };
	struct ckpt_inject_call *calls = calloc(N, sizeof(*calls));
	int64_t *res = calloc(N, sizeof(*res));
	struct ckpt_inject *inj;
	struct prog p;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_expect_eq(ckpt_inject_syscall_loop(inj, 0, calls, 1, res), -EOPNOTSUPP);
	cr_assert_eq(ckpt_inject_release(inj), 0);

	cr_assert_eq(ckpt_inject_seize(p.pid, CKPT_INJECT_EXITKILL, &inj), 0);
	/* getpid, a dup of fd 0 as fd 500, its close; over and over. */
	for (int i = 0; i < N; i++) {
		calls[i].nr = i % 3 == 0 ? SYS_getpid : i % 3 == 1 ? SYS_fcntl : SYS_close;
		calls[i].args[0] = i % 3 == 2 ? 500 : 0;
		calls[i].args[1] = F_DUPFD;
		calls[i].args[2] = 500;
	}
	cr_assert_eq(ckpt_inject_syscall_loop(inj, 0, calls, N, res), 0);
	for (int i = 0; i < N; i++) {
		int64_t want = i % 3 == 0 ? p.pid : i % 3 == 1 ? 500 : 0;

		if (res[i] != want) {
			cr_expect_fail("call %d returned %lld, not %lld", i, (long long)res[i], (long long)want);
			break;
		}
	}
	/* The 1500th closes fd 9999, which is not open: the loop ends there. */
	calls[1499].nr = SYS_close;
	calls[1499].args[0] = 9999;
	cr_assert_eq(ckpt_inject_syscall_loop(inj, 0, calls, N, res), 0);
	cr_expect_eq(res[1499], -EBADF);
	cr_expect_eq(res[1498], 500);
	for (int i = 1500; i < N; i++)
		if (res[i] != CKPT_INJECT_NOT_RUN) {
			cr_expect_fail("call %d after the failure ran: %lld", i, (long long)res[i]);
			break;
		}
	ckpt_inject_kill(inj);
	(void)ckpt_inject_release(inj);
	free(calls);
	free(res);
	prog_kill(&p);
}

Test(inject, scratch_is_unmapped_at_release)
{
	struct prog p;
	struct ckpt_inject *inj;
	uint64_t addr;
	char buf[64];

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_inject_scratch(inj, 3 * 4096, &addr), 0);
	cr_expect(has_mapping_at(p.pid, addr));
	cr_expect(ckpt_inject_is_scratch(inj, addr + 4096, addr + 8192));
	cr_expect(!ckpt_inject_is_scratch(inj, addr + 3 * 4096, addr + 4 * 4096));
	cr_assert_eq(ckpt_inject_release(inj), 0);
	cr_expect(!has_mapping_at(p.pid, addr));
	prog_send_line(&p, "x\n");
	expect_line(&p, "got x", buf, sizeof(buf));
	prog_kill(&p);
}

Test(inject, read_only_memory_written_through_proc_mem)
{
	struct prog p;
	struct ckpt_inject *inj;
	int64_t res;
	char buf[16] = "ro page", back[16] = "";

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_inject_call(inj, &res, SYS_mmap, 0, 4096, PROT_READ,
				      MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0), 0);
	cr_assert_eq(ckpt_inject_write(inj, (uint64_t)res, buf, sizeof(buf)), 0);
	cr_assert_eq(ckpt_inject_call(inj, &res, SYS_mprotect, (uint64_t)res, 4096, PROT_NONE), 0);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	prog_kill(&p);
	(void)back;
}

Test(inject, userfaultfd_taken_and_closed_leaves_fds_as_they_were)
{
	struct prog p;
	struct ckpt_inject *inj;
	char before[8192], after[8192], link[256], path[64];
	int64_t ufd;
	int local = -1;
	ssize_t l;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	fd_listing(p.pid, before, sizeof(before));
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_inject_call(inj, &ufd, SYS_userfaultfd,
				      O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY), 0);
	cr_assert_geq(ufd, 0, "remote userfaultfd: %s", strerror((int)-ufd));
	cr_assert_eq(ckpt_inject_take_fd(inj, (int)ufd, &local), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", local);
	l = readlink(path, link, sizeof(link) - 1);
	cr_assert_gt(l, 0);
	link[l] = '\0';
	cr_expect_str_eq(link, "anon_inode:[userfaultfd]");
	/* The fd we hold works: UFFDIO_API on it succeeds. */
	{
		struct uffdio_api api = { .api = UFFD_API };

		cr_expect_eq(ioctl(local, UFFDIO_API, &api), 0, "%s", strerror(errno));
	}
	cr_assert_eq(ckpt_inject_close_fd(inj, (int)ufd), 0);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	close(local);
	fd_listing(p.pid, after, sizeof(after));
	cr_expect_str_eq(after, before);
	prog_kill(&p);
}

Test(inject, put_fd_installs_the_same_file)
{
	struct prog p;
	struct ckpt_inject *inj;
	int pfd[2], got = -1;
	char path[64], link[64], mine[64], fdinfo[256], before[8192], after[8192];
	ssize_t l;
	FILE *f;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(pipe(pfd), 0);
	fd_listing(p.pid, before, sizeof(before));
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_inject_put_fd(inj, pfd[1], 100, O_CLOEXEC, &got), 0);
	cr_expect_eq(got, 100);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	snprintf(path, sizeof(path), "/proc/%d/fd/100", p.pid);
	l = readlink(path, link, sizeof(link) - 1);
	cr_assert_gt(l, 0);
	link[l] = '\0';
	snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd[1]);
	l = readlink(path, mine, sizeof(mine) - 1);
	mine[l] = '\0';
	cr_expect_str_eq(link, mine);
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/100", p.pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(fdinfo, sizeof(fdinfo), f)); /* pos */
	cr_assert_not_null(fgets(fdinfo, sizeof(fdinfo), f)); /* flags */
	fclose(f);
	cr_expect(strtoul(fdinfo + 6, NULL, 8) & O_CLOEXEC, "fd 100 not O_CLOEXEC: %s", fdinfo);
	/* Nothing else was left behind: the listing gained fd 100 only. */
	{
		char want[8192];

		fd_listing(p.pid, after, sizeof(after));
		snprintf(want, sizeof(want), "%s", before);
		cr_expect(strstr(after, "100 -> pipe:["), "%s", after);
		/* Remove the line of fd 100 and compare. */
		{
			char *line = strstr(after, "100 -> ");
			char *e = strchr(line, '\n');

			memmove(line, e + 1, strlen(e + 1) + 1);
		}
		cr_expect_str_eq(after, want);
	}
	prog_kill(&p);
	close(pfd[0]);
	close(pfd[1]);
}

/* 10 freezes of 100 syscalls each: 1000 remote syscalls. */
static void inject_1000(pid_t pid)
{
	for (int round = 0; round < 10; round++) {
		struct ckpt_inject *inj;

		cr_assert_eq(ckpt_inject_seize(pid, 0, &inj), 0);
		inject_n(inj, 0, 100, pid);
		cr_assert_eq(ckpt_inject_release(inj), 0);
	}
}

Test(inject, blocked_read_still_receives_data)
{
	struct prog p;
	char buf[64];

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	usleep(20000); /* surely inside read(2) */
	inject_1000(p.pid);
	prog_send_line(&p, "after injection\n");
	expect_line(&p, "got after injection", buf, sizeof(buf));
	prog_kill(&p);
}

Test(inject, nanosleep_keeps_its_deadline)
{
	struct prog p;
	char buf[128];
	int ret, err;
	unsigned long long elapsed;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "sleep", "2000", NULL), 0);
	usleep(100000);
	inject_1000(p.pid);
	expect_line(&p, "slept", buf, sizeof(buf));
	cr_assert_eq(sscanf(buf, "slept %d %d %llu", &ret, &err, &elapsed), 3);
	cr_expect_eq(ret, 0, "nanosleep returned %d errno %d", ret, err);
	cr_expect_geq(elapsed, 2000000000ULL, "woke early: %llu ns", elapsed);
	cr_expect_lt(elapsed, 2050000000ULL, "woke late: %llu ns", elapsed);
	prog_kill(&p);
}

Test(inject, futex_wait_still_waits)
{
	struct prog p;
	char buf[128];

	cr_assert_eq(prog_start(&p, true, 5000, "target", "futex", NULL), 0);
	for (int round = 0; round < 10; round++) {
		struct ckpt_inject *inj;

		cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
		cr_assert_eq(ckpt_inject_nr_threads(inj), 2);
		/* Inject into the waiting thread itself. */
		inject_n(inj, 1, 100, p.pid);
		cr_assert_eq(ckpt_inject_release(inj), 0);
	}
	/* Not woken by any of that: nothing printed yet. */
	cr_expect_eq(prog_read_line(&p, buf, sizeof(buf), 200), -ETIMEDOUT, "target said '%s'", buf);
	prog_send_line(&p, "wake\n");
	expect_line(&p, "woken", buf, sizeof(buf));
	cr_expect_str_eq(buf, "woken spurious=0 eintr=0");
	prog_kill(&p);
}

Test(inject, busy_checksum_stays_right)
{
	struct prog p;
	char buf[128];
	unsigned long before, after;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "busy", NULL), 0);
	for (int round = 0; round < 10; round++) {
		struct ckpt_inject *inj;

		cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
		inject_n(inj, 1, 100, p.pid); /* the computing thread */
		cr_assert_eq(ckpt_inject_release(inj), 0);
	}
	prog_send_line(&p, "c\n");
	expect_line(&p, "ok", buf, sizeof(buf));
	sscanf(buf, "ok %lu", &before);
	usleep(300000);
	prog_send_line(&p, "c\n");
	expect_line(&p, "ok", buf, sizeof(buf));
	sscanf(buf, "ok %lu", &after);
	cr_expect_gt(after, before, "the busy thread stopped computing");
	prog_kill(&p);
}

Test(inject, sse_registers_survive)
{
	struct prog p;
	char buf[128];

	cr_assert_eq(prog_start(&p, true, 5000, "target", "sse", NULL), 0);
	for (int round = 0; round < 50; round++) {
		struct ckpt_inject *inj;

		cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
		cr_expect_geq(ckpt_inject_thread(inj, 0)->xstate_len, 576);
		inject_n(inj, 0, 20, p.pid);
		cr_assert_eq(ckpt_inject_release(inj), 0);
		usleep(2000);
	}
	prog_send_line(&p, "c\n");
	expect_line(&p, "sse ok", buf, sizeof(buf));
	prog_kill(&p);
}

static bool same_regs(const struct user_regs_struct *a, const struct user_regs_struct *b)
{
	return a->rip == b->rip && a->rsp == b->rsp && a->rbp == b->rbp && a->rbx == b->rbx &&
	       a->r12 == b->r12 && a->r13 == b->r13 && a->r14 == b->r14 && a->r15 == b->r15 &&
	       a->rdi == b->rdi && a->rsi == b->rsi && a->rdx == b->rdx && a->r10 == b->r10 &&
	       a->orig_rax == b->orig_rax && a->rax == b->rax && a->fs_base == b->fs_base &&
	       a->gs_base == b->gs_base && a->eflags == b->eflags && a->cs == b->cs && a->ss == b->ss;
}

Test(inject, eight_threads_keep_running_with_their_registers)
{
	struct prog p;
	struct ckpt_inject *inj;
	struct ckpt_thread_state saved[16];
	size_t n;
	char buf[512];
	unsigned long c1[4], c2[4];

	cr_assert_eq(prog_start(&p, true, 5000, "target", "threads", "8", NULL), 0);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	n = ckpt_inject_nr_threads(inj);
	cr_assert_eq(n, 9); /* main + 4 counting + 4 waiting */
	cr_expect_eq(ckpt_inject_thread(inj, 0)->tid, p.pid);
	for (size_t i = 0; i < n; i++)
		saved[i] = *ckpt_inject_thread(inj, i);
	inject_n(inj, 0, 100, p.pid);
	cr_assert_eq(ckpt_inject_release(inj), 0);

	/* Seize again: the threads blocked in a wait are exactly where they were. */
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_assert_eq(ckpt_inject_nr_threads(inj), n);
	{
		size_t blocked_same = 0;

		for (size_t i = 0; i < n; i++) {
			const struct ckpt_thread_state *now = ckpt_inject_thread(inj, i);

			for (size_t j = 0; j < n; j++) {
				if (saved[j].tid != now->tid || !saved[j].in_syscall)
					continue;
				cr_expect(same_regs(&saved[j].regs, &now->regs),
					  "thread %d: registers changed (rip %llx -> %llx)", now->tid,
					  saved[j].regs.rip, now->regs.rip);
				cr_expect_eq(saved[j].sigmask, now->sigmask);
				blocked_same++;
			}
		}
		cr_expect_eq(blocked_same, 5, "main + 4 waiters are in a syscall");
	}
	cr_assert_eq(ckpt_inject_release(inj), 0);

	prog_send_line(&p, "c\n");
	expect_line(&p, "counts", buf, sizeof(buf));
	sscanf(buf, "counts %lu %lu %lu %lu", &c1[0], &c1[1], &c1[2], &c1[3]);
	usleep(200000);
	prog_send_line(&p, "c\n");
	expect_line(&p, "counts", buf, sizeof(buf));
	sscanf(buf, "counts %lu %lu %lu %lu", &c2[0], &c2[1], &c2[2], &c2[3]);
	for (int i = 0; i < 4; i++)
		cr_expect_gt(c2[i], c1[i], "counting thread %d stopped", i);
	prog_send_line(&p, "wake\n");
	expect_line(&p, "woken 4", buf, sizeof(buf));
	prog_kill(&p);
}

Test(inject, signal_during_injection_is_delivered_once_after_release)
{
	struct prog p;
	struct ckpt_inject *inj;
	char buf[128];
	void *addr = NULL;
	int count = -1;

	cr_assert_eq(prog_start(&p, true, 0, "target", "signals", NULL), 0);
	expect_line(&p, "ready", buf, sizeof(buf));
	cr_assert_eq(sscanf(buf, "ready %p", &addr), 1);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	inject_n(inj, 0, 10, p.pid);
	cr_assert_eq(kill(p.pid, SIGUSR1), 0);
	inject_n(inj, 0, 100, p.pid);
	cr_assert_eq(ckpt_inject_read(inj, (uint64_t)(uintptr_t)addr, &count, sizeof(count)), 0);
	cr_expect_eq(count, 0, "the handler ran during the injection");
	cr_assert_eq(ckpt_inject_release(inj), 0);
	usleep(50000);
	prog_send_line(&p, "c\n");
	expect_line(&p, "usr1", buf, sizeof(buf));
	cr_expect_str_eq(buf, "usr1 1");
	prog_kill(&p);
}

Test(inject, target_exiting_while_seized_gives_a_clean_error)
{
	log_capture_start(); /* "exited while being seized" is expected here */
	srand((unsigned)time(NULL));
	for (int i = 0; i < 50; i++) {
		struct prog p;
		struct ckpt_inject *inj = NULL;
		char us[16];
		int r;

		snprintf(us, sizeof(us), "%d", rand() % 3000);
		cr_assert_eq(prog_start(&p, false, 5000, "target", "exit-after", us, NULL), 0);
		usleep((useconds_t)(rand() % 3000));
		r = ckpt_inject_seize(p.pid, 0, &inj);
		cr_assert(r == 0 || r == -ESRCH, "seize: %s", strerror(-r));
		if (r == 0) {
			int64_t res;

			r = ckpt_inject_call(inj, &res, SYS_getpid);
			cr_assert(r == 0 || r == -ESRCH);
			cr_assert_eq(ckpt_inject_release(inj), 0);
		}
		/* It exits by itself (exit 0) and nothing keeps it traced. */
		r = prog_wait(&p, 5000);
		cr_assert(r == -ECHILD || (r >= 0 && WIFEXITED(r) && WEXITSTATUS(r) == 0),
			  "target ended with status %d", r);
		prog_kill(&p);
	}
}

Test(inject, stopped_target_stays_stopped)
{
	struct prog p;
	struct ckpt_inject *inj;
	char buf[64];

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(kill(p.pid, SIGSTOP), 0);
	for (int i = 0; i < 100 && proc_state(p.pid) != 'T'; i++)
		usleep(5000);
	cr_assert_eq(proc_state(p.pid), 'T');
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_expect(ckpt_inject_job_stopped(inj));
	inject_n(inj, 0, 100, p.pid);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	usleep(100000);
	cr_expect_eq(proc_state(p.pid), 'T', "state '%c' after release", proc_state(p.pid));
	cr_expect_eq(tracer_of(p.pid), 0);
	prog_send_line(&p, "queued\n");
	cr_expect_eq(prog_read_line(&p, buf, sizeof(buf), 200), -ETIMEDOUT, "a stopped target answered");
	kill(p.pid, SIGCONT);
	expect_line(&p, "got queued", buf, sizeof(buf));
	prog_kill(&p);
}

Test(inject, sigstop_during_injection_leaves_it_stopped)
{
	struct prog p;
	struct ckpt_inject *inj;
	char buf[64];

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	inject_n(inj, 0, 10, p.pid);
	cr_assert_eq(kill(p.pid, SIGSTOP), 0);
	inject_n(inj, 0, 100, p.pid);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	for (int i = 0; i < 100 && proc_state(p.pid) != 'T'; i++)
		usleep(5000);
	cr_expect_eq(proc_state(p.pid), 'T');
	kill(p.pid, SIGCONT);
	prog_send_line(&p, "resumed\n");
	expect_line(&p, "got resumed", buf, sizeof(buf));
	prog_kill(&p);
}

Test(inject, refuses_self_kernel_thread_and_missing_pid)
{
	struct ckpt_inject *inj = NULL;

	log_capture_start();
	cr_expect_eq(ckpt_inject_seize(getpid(), 0, &inj), -EINVAL);
	cr_expect(strstr(log_captured(), "ckpt itself"), "%s", log_captured());
	cr_expect_eq(ckpt_inject_seize(2, 0, &inj), -EINVAL); /* kthreadd */
	cr_expect(strstr(log_captured(), "kernel thread"), "%s", log_captured());
	cr_expect_eq(ckpt_inject_seize(4194000, 0, &inj), -ESRCH);
	cr_expect(strstr(log_captured(), "no such process"), "%s", log_captured());
	cr_expect_null(inj);
	ckpt_log_set_sink(NULL, NULL);
}

Test(inject, already_traced_names_the_tracer)
{
	struct prog p;
	struct ckpt_inject *inj = NULL;
	char want[64];
	pid_t tracer;
	int sync[2];

	cr_assert_eq(prog_start(&p, true, 5000, "target", "read", NULL), 0);
	cr_assert_eq(pipe(sync), 0);
	tracer = fork();
	if (tracer == 0) {
		char c = 'x';

		if (ptrace(PTRACE_SEIZE, p.pid, 0, 0) < 0)
			_exit(1);
		if (write(sync[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	{
		char c;

		cr_assert_eq(read(sync[0], &c, 1), 1);
	}
	log_capture_start();
	cr_expect_eq(ckpt_inject_seize(p.pid, 0, &inj), -EBUSY);
	snprintf(want, sizeof(want), "already traced by pid %d", tracer);
	cr_expect(strstr(log_captured(), want), "%s", log_captured());
	ckpt_log_set_sink(NULL, NULL);
	kill(tracer, SIGKILL);
	waitpid(tracer, NULL, 0);
	prog_kill(&p);
}

Test(inject, zombie_leader_is_skipped)
{
	struct prog p;
	struct ckpt_inject *inj;
	int64_t res;
	char buf[64];

	cr_assert_eq(prog_start(&p, true, 5000, "target", "zombie-leader", NULL), 0);
	usleep(50000);
	cr_assert_eq(ckpt_inject_seize(p.pid, 0, &inj), 0);
	cr_expect_eq(ckpt_inject_nr_zombies(inj), 1);
	cr_assert_eq(ckpt_inject_nr_threads(inj), 1);
	cr_expect_neq(ckpt_inject_thread(inj, 0)->tid, p.pid);
	cr_assert_eq(ckpt_inject_call(inj, &res, SYS_getpid), 0);
	cr_expect_eq(res, p.pid);
	cr_assert_eq(ckpt_inject_release(inj), 0);
	prog_send_line(&p, "hi\n");
	expect_line(&p, "got hi", buf, sizeof(buf));
	prog_kill(&p);
}

/*
 * A driver process loops seize / 100 syscalls / release; SIGTERM hits it at
 * a random moment. The termination waits for the release: the target runs
 * on, untraced, computing right.
 */
Test(inject, sigterm_of_ckpt_during_injection_leaves_target_running, .timeout = 120)
{
	struct prog p;
	char buf[128];
	unsigned long last = 0, now;

	cr_assert_eq(prog_start(&p, true, 5000, "target", "busy", NULL), 0);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int i = 0; i < 50; i++) {
		int status;
		pid_t driver = fork();

		if (driver == 0) {
			signal(SIGTERM, SIG_DFL);
			for (;;) {
				struct ckpt_inject *inj;
				int64_t res;

				if (ckpt_inject_seize(p.pid, 0, &inj) < 0)
					_exit(3);
				for (int k = 0; k < 100; k++)
					if (ckpt_inject_call(inj, &res, SYS_getpid) < 0 || res != p.pid)
						_exit(4);
				if (ckpt_inject_release(inj) < 0)
					_exit(5);
			}
		}
		usleep((useconds_t)(1000 + rand() % 20000));
		kill(driver, SIGTERM);
		cr_assert_eq(waitpid(driver, &status, 0), driver);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
			  "driver ended with status %#x", status);
		cr_assert_eq(tracer_of(p.pid), 0, "round %d: target still traced", i);
		cr_assert_neq(proc_state(p.pid), 't');
		prog_send_line(&p, "c\n");
		expect_line(&p, "ok", buf, sizeof(buf));
		sscanf(buf, "ok %lu", &now);
		cr_assert_geq(now, last);
		last = now;
	}
	usleep(200000);
	prog_send_line(&p, "c\n");
	expect_line(&p, "ok", buf, sizeof(buf));
	sscanf(buf, "ok %lu", &now);
	cr_expect_gt(now, last, "target stopped computing");
	prog_kill(&p);
}
