/* SPDX-License-Identifier: MIT */
/* Internal helpers: files, arrays, time. */
#ifndef CKPT_LIB_UTIL_H
#define CKPT_LIB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <ckpt/util.h>

#define PAGE_SIZE_4K 4096UL

#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define ALIGN_UP(x, a) ALIGN_DOWN((x) + (a) - 1, (a))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * Read a whole file relative to @dirfd (AT_FDCWD for a plain path) into a
 * NUL-terminated buffer. Works for /proc files that report size 0.
 */
int read_file_at(int dirfd, const char *path, char **ret, size_t *ret_len) __must_check;
/* readlink(2) of any length, NUL-terminated. */
int readlink_at(int dirfd, const char *path, char **ret) __must_check;
/* write(2) all of @buf, retrying on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len) __must_check;
/* read(2) exactly @len bytes; -EIO ("short") when EOF comes first. */
int read_all(int fd, void *buf, size_t len) __must_check;

/* Make room for @need elements of @elem bytes in *@p (capacity in *@cap). */
int grow_array(void **p, size_t *cap, size_t need, size_t elem) __must_check;
#define GROW(arr, cap, need) grow_array((void **)&(arr), &(cap), (need), sizeof(*(arr)))

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t page_size(void)
{
	return PAGE_SIZE_4K;
}

/* True if all @len bytes at @p are zero (fast path for page-sized blocks). */
bool mem_is_zero(const void *p, size_t len);
/* A wait status said: "exited with status 3", "killed by SIGKILL"; "" for -1 (unknown). */
void describe_wait_status(int status, char *buf, size_t len);

#endif
