/* SPDX-License-Identifier: MIT */
/* Negative-errno helpers: every fallible function returns 0/count or -errno. */
#ifndef CKPT_LIB_ERR_H
#define CKPT_LIB_ERR_H

#include <errno.h>

/* -errno of the last failed libc call, never 0 (a broken libc gives -EIO). */
static inline int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* Turn a libc "-1 and errno" result into our convention. */
#define RET_NERRNO(expr)                            \
	({                                          \
		long _r_ = (long)(expr);            \
		_r_ < 0 ? neg_errno() : (int)_r_;   \
	})

#endif
