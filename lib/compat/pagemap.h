/* SPDX-License-Identifier: MIT */
/*
 * PAGEMAP_SCAN (Linux 6.7) uapi, missing from the Linux 6.1 headers.
 * System headers win; values pinned by test/unit/compat.
 */
#ifndef CKPT_COMPAT_PAGEMAP_H
#define CKPT_COMPAT_PAGEMAP_H

#include <linux/fs.h>
#include <linux/types.h>
#include <sys/ioctl.h>

#ifndef PROCFS_IOCTL_MAGIC
#define PROCFS_IOCTL_MAGIC 'f'
#endif

#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)

struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)

struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR(PROCFS_IOCTL_MAGIC, 16, struct pm_scan_arg)
#endif

#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD (1 << 8) /* Linux 6.14 */
#endif

/* Bits of the classic /proc/PID/pagemap entries. */
#define PM_ENTRY_PFN_MASK ((1ULL << 55) - 1)
#define PM_ENTRY_SOFT_DIRTY (1ULL << 55)
#define PM_ENTRY_EXCLUSIVE (1ULL << 56)
#define PM_ENTRY_UFFD_WP (1ULL << 57)
#define PM_ENTRY_FILE (1ULL << 61)
#define PM_ENTRY_SWAP (1ULL << 62)
#define PM_ENTRY_PRESENT (1ULL << 63)

#endif
