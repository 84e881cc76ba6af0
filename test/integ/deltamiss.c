/* SPDX-License-Identifier: MIT */
/*
 * Deltas that must not miss a write, found by an adversarial review: each target
 * (test/progs/deltamiss) sets up its memory, is dumped in full and left
 * running, does one step ("go"), and is dumped as a delta, left stopped;
 * its whole memory must equal the process restored from the delta, eager
 * and lazy.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/restorecmp.h"
#include "helpers/testutil.h"

static char tmp[64];
static unsigned long long rseq_at;

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "deltamiss");
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(deltamiss, .init = setup, .fini = teardown, .timeout = 120);

static void ckpt_ok(const char *what, struct run_result *r)
{
	cr_assert_eq(r->status, 0, "%s failed (%d): %s", what, r->status, r->err);
}

static void wait_line(struct prog *p, const char *want)
{
	char line[128];

	for (;;) {
		cr_assert_geq(prog_read_line(p, line, sizeof(line), 10000), 0, "deltamiss never said %s", want);
		if (!strcmp(line, want))
			return;
		sscanf(line, "rseq %llx", &rseq_at);
	}
}

/* Full dump (left running), one step of the target, delta (left stopped), compare. */
static void full_step_delta(const char *mode)
{
	char d0[160], d1[160], pid[16], what[128];
	struct run_result r;
	struct prog p;

	char file[160];

	rseq_at = 0;
	snprintf(file, sizeof(file), "%s/file", tmp);
	cr_assert_eq(prog_start(&p, true, 0, "deltamiss", mode, file, NULL), 0);
	wait_line(&p, "ready");
	snprintf(pid, sizeof(pid), "%d", p.pid);
	snprintf(d0, sizeof(d0), "%s/c0", tmp);
	snprintf(d1, sizeof(d1), "%s/c1", tmp);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", d0, "--leave-running", NULL), 0);
	ckpt_ok("dump", &r);
	run_result_done(&r);
	cr_assert_eq(write(p.in_fd, "go\n", 3), 3);
	wait_line(&p, "done");
	cr_assert_eq(run_ckpt(&r, "dump", "-t", pid, "-D", d1, "--parent", d0, "--leave-stopped", NULL), 0);
	ckpt_ok("dump --parent", &r);
	run_result_done(&r);
	snprintf(what, sizeof(what), "deltamiss %s: the delta", mode);
	restore_compare(p.pid, d1, false, rseq_at, what);
	restore_compare(p.pid, d1, true, rseq_at, what);
	cr_assert_eq(prog_kill(&p) & 0x7f, SIGKILL, "the target died on its own");
}

/* write(2) to a memfd that is mapped: no fault, no uffd-wp bit cleared. */
Test(deltamiss, memfd_written_by_pwrite)
{
	full_step_delta("memfd_pwrite");
}

/*
 * One memfd mapped twice, written through one mapping only: the other's
 * PTEs keep their uffd-wp bits, and restore must not lay its older pages
 * over the new ones (both mappings are one object again).
 */
Test(deltamiss, memfd_mapped_twice)
{
	full_step_delta("memfd_twice");
}

/* Shared anonymous memory written by a forked child that has exited by the delta. */
Test(deltamiss, shared_anon_written_by_child)
{
	full_step_delta("shanon_child");
}

/*
 * A private mapping of a deleted file (a memfd here): its pages never
 * copied on write show the file, written through a shared mapping of it
 * (or write(2)) without a fault of this mapping.
 */
Test(deltamiss, memfd_private_mapping_sees_file_writes)
{
	full_step_delta("memfd_private");
}

/*
 * MADV_DONTNEED of the pages of a private file mapping that were copied on
 * write before the last checkpoint and not written since: the mapping
 * shows the file again, and the kernel leaves uffd-wp markers (a
 * file-backed mapping keeps the bit), so no harvest reports them.
 */
Test(deltamiss, private_file_pages_dropped)
{
	full_step_delta("privfile_dontneed");
}

/* MADV_REMOVE of shared memory: zeros, and markers again. */
Test(deltamiss, shmem_hole_punched)
{
	full_step_delta("shmem_remove");
}

/* Controls that pass on this kernel: page tables dropped under an armed range. */
Test(deltamiss, dontneed_whole_page_table)
{
	full_step_delta("dontneed2m");
}

Test(deltamiss, mremap_regrow_in_place)
{
	full_step_delta("regrow");
}

Test(deltamiss, thp_rewritten_collapsed_dropped)
{
	full_step_delta("thprewrite");
}
