/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by libckpt and its users: cleanup attributes,
 * ownership transfer, array sizes. Header-only.
 */
#ifndef CKPT_UTIL_H
#define CKPT_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define __must_check __attribute__((warn_unused_result))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Hand ownership over: return the value and leave NULL / -1 behind. */
#define TAKE_PTR(p)                          \
	({                                   \
		__typeof__(p) _ptr_ = (p);   \
		(p) = NULL;                  \
		_ptr_;                       \
	})
#define TAKE_FD(fd)                  \
	({                           \
		int _fd_ = (fd);     \
		(fd) = -1;           \
		_fd_;                \
	})

static inline void ckpt_freep(void *p)
{
	free(*(void **)p);
}

static inline void ckpt_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void ckpt_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static inline void ckpt_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define _cleanup_free_ _cleanup_(ckpt_freep)
#define _cleanup_close_ _cleanup_(ckpt_closep)
#define _cleanup_fclose_ _cleanup_(ckpt_fclosep)
#define _cleanup_closedir_ _cleanup_(ckpt_closedirp)

/* Define a cleanup helper for a type whose destructor takes a pointer. */
#define CKPT_DEFINE_CLEANUP(type, func)              \
	static inline void func##p(type **p)         \
	{                                            \
		if (*p)                              \
			func(*p);                    \
	}

#endif
