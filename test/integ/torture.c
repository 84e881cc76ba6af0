/* SPDX-License-Identifier: MIT */
/*
 * The differential torture test of tracking and deltas: a target that
 * changes its memory in every way an allocator does (test/progs/memtort) is
 * checkpointed again and again, each time left stopped, and its whole
 * memory is compared byte for byte with the process restored from that
 * checkpoint; chains of `dump --parent` and of `track -D`, eager and lazy,
 * under CPU contention, with the target on ckpt's CPU and on another.
 *
 * CKPT_TORTURE_SEED replays a run (the seed is in every failure message);
 * CKPT_TORTURE_ROUNDS sets the checkpoints of each chain (scripts/torture
 * runs the long version).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers/restorecmp.h"
#include "helpers/testutil.h"

static char tmp[64];
static unsigned long long seed;
static unsigned long long rng;

static unsigned long long env_ull(const char *name, unsigned long long def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "torture");
	seed = env_ull("CKPT_TORTURE_SEED", (unsigned long long)time(NULL) ^ (unsigned long long)getpid() << 16);
	rng = seed * 2654435761ULL + 1;
	cr_log_info("seed %llu (CKPT_TORTURE_SEED replays it)", seed);
}

static void teardown(void)
{
	load_stop();
	suite_dir_remove(tmp, NULL);
}

TestSuite(torture, .init = setup, .fini = teardown, .timeout = 600);

static void pin(pid_t pid, int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(pid, sizeof(s), &s);
}

static void unpin(pid_t pid)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	for (long i = 0; i < sysconf(_SC_NPROCESSORS_ONLN); i++)
		CPU_SET(i, &s);
	sched_setaffinity(pid, sizeof(s), &s);
}

static void ckpt_ok(const char *what, struct run_result *r)
{
	cr_assert_eq(r->status, 0, "seed %llu: %s failed (%d): %s", seed, what, r->status, r->err);
}

/*
 * The target is stopped at the checkpoint @dir: restore it (stopped), and
 * compare every byte of both.
 */
static unsigned long long rseq_at; /* the target's rseq area, 0 if none */

/* The target is stopped at checkpoint @dir: restore it, stopped, and compare every byte. */
static void compare(pid_t target, const char *dir, bool lazy, const char *what)
{
	char full[160];

	snprintf(full, sizeof(full), "seed %llu: %s", seed, what);
	restore_compare(target, dir, lazy, rseq_at, full);
}

/* Read the target's lines up to "ready", noting "rseq ADDR SIZE". */
static void wait_ready(struct prog *p)
{
	char line[128];

	rseq_at = 0;
	for (;;) {
		cr_assert_geq(prog_read_line(p, line, sizeof(line), 10000), 0, "memtort never said ready");
		if (!strcmp(line, "ready"))
			return;
		sscanf(line, "rseq %llx", &rseq_at);
	}
}

static void start_target(struct prog *p, const char *tag)
{
	char s[32], file[128];

	snprintf(s, sizeof(s), "%llu", seed);
	snprintf(file, sizeof(file), "%s/%s.file", tmp, tag);
	cr_assert_eq(prog_start(p, false, 0, "memtort", s, file, "200", NULL), 0);
	wait_ready(p);
}

static void pick_cpus(pid_t target)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	/* The target on ckpt's CPU, or on another; or both free. */
	switch (rnd(3)) {
	case 0: pin(target, 0); pin(0, 0); break;
	case 1: pin(target, (int)(cpus - 1)); pin(0, 0); break;
	default: unpin(target); unpin(0); break;
	}
}

/*
 * A chain of `dump --parent`: the first full, every later one a delta of
 * the one before, each left stopped, compared, then let go on. With
 * @all_full, every dump is full: each copies the memory while the target
 * runs and changes it, then what it wrote meanwhile in the freeze.
 */
static void dump_chain(bool under_load, bool lazy_too, bool all_full)
{
	unsigned rounds = (unsigned)env_ull("CKPT_TORTURE_ROUNDS", 6);
	char dir[160], parent[160] = "", what[96], pid[16];
	struct run_result r;
	struct prog p;

	start_target(&p, "dump");
	snprintf(pid, sizeof(pid), "%d", p.pid);
	if (under_load)
		load_start();
	for (unsigned i = 0; i < rounds; i++) {
		bool lazy = lazy_too && i % 3 == 2;

		pick_cpus(p.pid);
		usleep(20000 + rnd(300000));
		snprintf(dir, sizeof(dir), "%s/c%u", tmp, i);
		if (parent[0] && !all_full)
			cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, "--parent", parent, "--leave-stopped",
					      NULL), 0);
		else
			cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", dir, "--leave-stopped", NULL), 0);
		ckpt_ok("dump", &r);
		run_result_done(&r);
		snprintf(what, sizeof(what), "checkpoint %u of the dump chain%s", i, all_full ? " (each full)" : "");
		compare(p.pid, dir, lazy, what);
		cr_assert_eq(kill(p.pid, SIGCONT), 0);
		snprintf(parent, sizeof(parent), "%s", dir);
	}
	unpin(0);
	cr_assert_eq(prog_kill(&p) & 0x7f, SIGKILL, "the target died on its own");
}

/*
 * A chain of `track -D` (deltas taken while the target runs), continued by
 * one `dump --parent DIR/latest --leave-stopped`: the restore of that one
 * resolves through every delta of the chain, so a page any of them missed
 * (and nothing rewrote since) shows.
 */
static void track_chain(bool under_load, bool lazy, const char *keep)
{
	unsigned rounds = (unsigned)env_ull("CKPT_TORTURE_ROUNDS", 6);
	char dir[160], latest[200], final[160], pid[16], count[16], what[96];
	struct run_result r;
	struct prog p;

	start_target(&p, "track");
	snprintf(pid, sizeof(pid), "%d", p.pid);
	snprintf(dir, sizeof(dir), "%s/series", tmp);
	snprintf(latest, sizeof(latest), "%s/latest", dir);
	snprintf(count, sizeof(count), "%u", rounds);
	if (under_load)
		load_start();
	pick_cpus(p.pid);
	if (keep)
		cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, "--interval", "100ms", "--count", count,
				      "--keep", keep, NULL), 0);
	else
		cr_assert_eq(run_ckpt(&r, "track", "-t", pid, "-D", dir, "--interval", "100ms", "--count", count,
				      NULL), 0);
	ckpt_ok("track -D", &r);
	run_result_done(&r);
	usleep(20000 + rnd(200000));
	snprintf(final, sizeof(final), "%s/final", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", final, "--parent", latest, "--leave-stopped", NULL), 0);
	ckpt_ok("dump --parent DIR/latest", &r);
	run_result_done(&r);
	snprintf(what, sizeof(what), "the dump after %u checkpoints of track -D%s%s", rounds, keep ? " --keep " : "",
		 keep ? keep : "");
	compare(p.pid, final, lazy, what);
	unpin(0);
	cr_assert_eq(prog_kill(&p) & 0x7f, SIGKILL, "the target died on its own");
}

/*
 * Two mappings A < B with a gap, both armed; A is written whole, B replaced
 * in place and written: the scan of the run A..B fails at B (not
 * registered) after it re-armed A. A's pages must still be in the delta.
 */
Test(torture, a_replaced_mapping_loses_no_write_before_it)
{
	char d0[160], d1[160], line[128], pid[16];
	struct run_result r;
	struct prog p;

	cr_assert_eq(prog_start(&p, true, 0, "memtort", "replace", NULL), 0);
	wait_ready(&p);
	snprintf(pid, sizeof(pid), "%d", p.pid);
	snprintf(d0, sizeof(d0), "%s/r0", tmp);
	snprintf(d1, sizeof(d1), "%s/r1", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", d0, "--leave-running", NULL), 0);
	ckpt_ok("dump", &r);
	run_result_done(&r);
	cr_assert_eq(write(p.in_fd, "go\n", 3), 3);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 5000), 0);
	cr_assert(!strncmp(line, "done", 4), "%s", line);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", d1, "--parent", d0, "--leave-stopped", NULL), 0);
	ckpt_ok("dump --parent", &r);
	run_result_done(&r);
	compare(p.pid, d1, false, "the delta after a mapping was replaced");
	compare(p.pid, d1, true, "the delta after a mapping was replaced");
}

Test(torture, dump_chain)
{
	dump_chain(false, true, false);
}

Test(torture, dump_chain_under_load)
{
	dump_chain(true, true, false);
}

/*
 * The same for a process of a tree that shares little with its parent
 * (memtort, started by a shell that waits for it): copied while it runs
 * into its own checkpoint inside the tree's, corrected in the freeze;
 * compared through its proc-PID checkpoint restored alone.
 */
Test(torture, a_tree_child_copied_while_it_runs)
{
	unsigned rounds = (unsigned)env_ull("CKPT_TORTURE_ROUNDS", 6);
	char cmd[512], prog[256], file[160], dir[160], sub[200], what[96], sh_pid[16], line[128];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct run_result r;
	struct prog p;
	pid_t kid = 0;
	FILE *f;

	snprintf(file, sizeof(file), "%s/tree.file", tmp);
	snprintf(cmd, sizeof(cmd), "%s %llu %s 200; wait", prog_path("memtort", prog, sizeof(prog)), seed, file);
	cr_assert_eq(prog_spawn(&p, false, NULL, argv), 0);
	wait_ready(&p);
	snprintf(line, sizeof(line), "/proc/%d/task/%d/children", p.pid, p.pid);
	f = fopen(line, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &kid), 1, "the shell has no child");
	fclose(f);
	snprintf(sh_pid, sizeof(sh_pid), "%d", p.pid);
	load_start();
	for (unsigned i = 0; i < rounds; i++) {
		pick_cpus(kid);
		usleep(20000 + rnd(300000));
		snprintf(dir, sizeof(dir), "%s/t%u", tmp, i);
		cr_assert_eq(run_ckpt(&r, "dump", "-t", sh_pid, "-D", dir, "--leave-stopped", "--json", NULL), 0);
		ckpt_ok("dump of the tree", &r);
		{
			const char *at = strstr(r.out, "\"pages_precopied\": ");
			unsigned long n = 0;

			/* The shell has a few hundred pages, memtort thousands. */
			cr_expect(at && sscanf(at + 19, "%lu", &n) == 1 && n > 1000,
				  "the child was not copied while it ran (%lu pages were): %s", n, r.out);
		}
		run_result_done(&r);
		snprintf(sub, sizeof(sub), "%s/proc-%d", dir, kid);
		snprintf(what, sizeof(what), "the child of checkpoint %u of a tree", i);
		compare(kid, sub, i % 3 == 2, what);
		cr_assert_eq(kill(kid, SIGCONT), 0);
		cr_assert_eq(kill(p.pid, SIGCONT), 0);
	}
	unpin(0);
	kill(kid, SIGKILL);
	prog_kill(&p);
}

/* Full dumps of a process that runs on: copied while it runs, corrected in the freeze. */
Test(torture, full_dumps_copied_while_the_target_runs)
{
	dump_chain(true, true, true);
}

Test(torture, track_chain)
{
	track_chain(false, false, NULL);
}

Test(torture, track_chain_under_load_lazy)
{
	track_chain(true, true, NULL);
}

/* Older checkpoints folded into the oldest kept one as the series goes. */
Test(torture, track_chain_folded)
{
	track_chain(true, false, "2");
}
