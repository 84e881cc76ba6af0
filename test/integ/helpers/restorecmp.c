/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memsnap.h"
#include "restorecmp.h"
#include "testutil.h"

void wait_stopped(pid_t pid)
{
	for (int i = 0; i < 500 && proc_state(pid) != 'T'; i++)
		usleep(2000);
	cr_assert_eq(proc_state(pid), 'T', "pid %d is not stopped (state '%c')", pid, proc_state(pid));
}

/* cpu_id_start, cpu_id; node_id, mm_cid: the kernel's, per CPU. */
static void blank_rseq(struct memsnap *s, uint64_t rseq_at)
{
	if (rseq_at) {
		memsnap_blank(s, rseq_at, 8);
		memsnap_blank(s, rseq_at + 20, 8);
	}
}

/* The lazy-pages server that logs to @log ("server pid N", at -v) has ended. */
static void wait_server_gone(const char *log)
{
	char line[512];
	pid_t server = 0;

	for (int k = 0; k < 1500 && server <= 0; k++) {
		FILE *f = fopen(log, "re");

		while (f && fgets(line, sizeof(line), f)) {
			char *p = strstr(line, "(server pid ");

			if (p)
				server = atoi(p + strlen("(server pid "));
		}
		if (f)
			fclose(f);
		if (server <= 0)
			usleep(20000);
	}
	cr_assert_gt(server, 0, "no server pid in '%s'", log);
	for (int k = 0; k < 1500 && kill(server, 0) == 0; k++)
		usleep(20000);
	cr_assert(kill(server, 0) < 0, "the lazy-pages server %d did not end in 30 s", server);
}

void restore_compare(pid_t target, const char *dir, bool lazy, uint64_t rseq_at, const char *what)
{
	struct memsnap a, b;
	struct run_result r;
	char report[4096], log[PATH_MAX];
	uint64_t bad;
	pid_t pid;
	int e;

	wait_stopped(target);
	cr_assert_eq(e = memsnap_take(target, &a), 0, "cannot read the target: %s", strerror(-e));
	snprintf(log, sizeof(log), "%s.lazy.log", dir);
	if (lazy)
		cr_assert_eq(run_ckpt(&r, "restore", "-v", "-D", dir, "--lazy", "--detach", "--lazy-log", log,
				      "--leave-stopped", "--stdio", "null", NULL), 0);
	else
		cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--detach", "--leave-stopped", "--stdio", "null",
				      NULL), 0);
	cr_assert_eq(r.status, 0, "%s: restore failed (%d): %s", what, r.status, r.err);
	pid = atoi(r.out);
	run_result_done(&r);
	cr_assert_gt(pid, 0);
	prog_track_pid(pid);
	wait_stopped(pid);
	/*
	 * Lazy: the pages come in by the background fill while it is stopped
	 * (until then a read of one still missing fails, EIO, never reads
	 * zeros); the server ends once every page is in, after a last call
	 * into the process. Compare after that.
	 */
	if (lazy)
		wait_server_gone(log);
	for (int k = 0; (e = memsnap_take(pid, &b)) == -EIO && lazy && k < 500; k++)
		usleep(20000);
	if (e < 0) {
		kill(pid, SIGKILL);
		cr_assert_fail("%s: cannot read the restored process: %s", what, strerror(-e));
	}
	blank_rseq(&a, rseq_at);
	blank_rseq(&b, rseq_at);
	bad = memsnap_diff(&a, &b, report, sizeof(report));
	kill(pid, SIGKILL);
	cr_assert_eq(bad, 0, "%s: %llu of %llu bytes differ after restore%s:\n%s", what, (unsigned long long)bad,
		     (unsigned long long)a.bytes, lazy ? " --lazy" : "", report);
	memsnap_free(&a);
	memsnap_free(&b);
}
