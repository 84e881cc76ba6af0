/* SPDX-License-Identifier: MIT */
/*
 * The whole memory of a process, mapping by mapping, for a byte-exact
 * comparison of a process with the one restored from its checkpoint.
 */
#ifndef CKPT_TEST_MEMSNAP_H
#define CKPT_TEST_MEMSNAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct memsnap_map {
	uint64_t start, end;
	char perms[8];
	char name[256];
	unsigned char *data; /* NULL where it cannot be read ([vvar], [vsyscall]) */
};

struct memsnap {
	struct memsnap_map *v;
	size_t nr;
	uint64_t bytes;
};

/* Read /proc/PID/maps and every readable mapping through /proc/PID/mem; -errno. */
int memsnap_take(pid_t pid, struct memsnap *s);
void memsnap_free(struct memsnap *s);
/* Zero [@addr, @addr + @len) in @s: bytes the kernel rewrites (rseq CPU fields). */
void memsnap_blank(struct memsnap *s, uint64_t addr, uint64_t len);
/*
 * Differing bytes between @a (the original) and @b (restored), counting a
 * mapping present in one only, or of other bounds or permissions, as all
 * its bytes. A description of the first differences goes to @report.
 */
uint64_t memsnap_diff(const struct memsnap *a, const struct memsnap *b, char *report, size_t len);

#endif
