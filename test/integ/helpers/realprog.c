/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "realprog.h"
#include "testutil.h"

static const char python_script[] = "import sys, time, hashlib\n"
				    "d = {}\n"
				    "h = hashlib.sha256()\n"
				    "i = 0\n"
				    "while True:\n"
				    "    i += 1\n"
				    "    d[i] = str(i) * (i % 7 + 1)\n"
				    "    h.update(d[i].encode())\n"
				    "    print(i, len(d), h.hexdigest()[:16], flush=True)\n"
				    "    time.sleep(0.02)\n";

static const char perl_script[] =
	"$| = 1; my %h; my $s = 0;"
	"for (my $i = 1;; $i++) { $h{$i} = 'x' x ($i % 50); $s = ($s * 31 + length($h{$i}) + $i) % 1000000007;"
	"print \"$i $s \" . scalar(keys %h) . \"\\n\"; select(undef, undef, undef, 0.02); }";

bool real_prog_argv(const char *name, const char *fifo, struct real_prog *rp)
{
	memset(rp, 0, sizeof(*rp));
	if (!strcmp(name, "python3")) {
		rp->argv[0] = "/usr/bin/python3";
		rp->argv[1] = "-c";
		rp->argv[2] = python_script;
	} else if (!strcmp(name, "perl")) {
		rp->argv[0] = "/usr/bin/perl";
		rp->argv[1] = "-e";
		rp->argv[2] = perl_script;
	} else {
		/* read -t on a fifo nobody writes to: a timed wait that bash does with its own timers. */
		cr_assert_eq(mkfifo(fifo, 0600), 0);
		snprintf(rp->script, sizeof(rp->script),
			 "exec 3<>%s; i=0; s=0; while :; do i=$((i+1)); s=$(( (s*31+i) %% 1000000007 ));"
			 " echo $i $s; read -t 0.02 -u 3; done",
			 fifo);
		rp->argv[0] = "/bin/bash";
		rp->argv[1] = "-c";
		rp->argv[2] = rp->script;
	}
	return access(rp->argv[0], X_OK) == 0;
}

size_t count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int c;

	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

void wait_lines(const char *path, size_t n)
{
	double t0 = mono_s();

	while (count_lines(path) < n) {
		cr_assert_lt(mono_s() - t0, 30.0, "%s: fewer than %zu lines after 30 s", path, n);
		usleep(10000);
	}
}

void expect_same_output(const char *name, const char *out, const char *ref, size_t min)
{
	FILE *a = fopen(out, "r"), *b = fopen(ref, "r");
	char la[256], lb[256];
	size_t n = 0;

	cr_assert(a && b, "%s: no output", name);
	while (fgets(la, sizeof(la), a)) {
		n++;
		cr_assert_not_null(fgets(lb, sizeof(lb), b), "%s: the reference is shorter", name);
		cr_assert_str_eq(la, lb, "%s: line %zu differs from an uninterrupted run", name, n);
	}
	fclose(a);
	fclose(b);
	cr_expect_geq(n, min, "%s: %zu lines", name, n);
}
