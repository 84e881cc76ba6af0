/* SPDX-License-Identifier: MIT */
/*
 * Real programs for the restore tests (python3, perl, bash): each prints
 * numbered lines that depend on all it did before, so an output that a
 * restored process continues reads exactly as one uninterrupted run's.
 */
#ifndef CKPT_TEST_REALPROG_H
#define CKPT_TEST_REALPROG_H

#include <stdbool.h>
#include <stddef.h>

struct real_prog {
	const char *argv[4];
	char script[512];
};

/*
 * The command line of @name ("python3", "perl" or "bash"; bash waits on
 * @fifo, which it creates). False when the interpreter is not installed.
 */
bool real_prog_argv(const char *name, const char *fifo, struct real_prog *rp);
/* The lines in @path (0 if it cannot be read). */
size_t count_lines(const char *path);
/* Wait (asserting, 30 s at most) until @path holds @n lines. */
void wait_lines(const char *path, size_t n);
/* @out reads line for line as @ref (the reference run), at least @min lines of it. */
void expect_same_output(const char *name, const char *out, const char *ref, size_t min);

#endif
