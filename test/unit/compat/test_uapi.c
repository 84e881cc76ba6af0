/* SPDX-License-Identifier: MIT */
/*
 * Pin the uapi definitions ckpt carries (lib/compat) against the kernel ABI:
 * values from include/uapi/linux/{userfaultfd,fs,ptrace,prctl,sched}.h of
 * Linux 6.18. A wrong value here would make ioctls silently mean something
 * else, so every number is written out, not recomputed.
 */
#include <criterion/criterion.h>
#include <linux/prctl.h>
#include <linux/sched/types.h>
#include <stddef.h>

#include "compat/pagemap.h"
#include "compat/syscalls.h"
#include "compat/uffd.h"

Test(compat, uffd_features)
{
	cr_expect_eq(UFFD_API, 0xAA);
	cr_expect_eq(UFFD_USER_MODE_ONLY, 1);
	cr_expect_eq(UFFD_FEATURE_PAGEFAULT_FLAG_WP, 1 << 0);
	cr_expect_eq(UFFD_FEATURE_EVENT_FORK, 1 << 1);
	cr_expect_eq(UFFD_FEATURE_EVENT_REMAP, 1 << 2);
	cr_expect_eq(UFFD_FEATURE_EVENT_REMOVE, 1 << 3);
	cr_expect_eq(UFFD_FEATURE_MISSING_SHMEM, 1 << 5);
	cr_expect_eq(UFFD_FEATURE_EVENT_UNMAP, 1 << 6);
	cr_expect_eq(UFFD_FEATURE_THREAD_ID, 1 << 8);
	cr_expect_eq(UFFD_FEATURE_WP_HUGETLBFS_SHMEM, 1 << 12);
	cr_expect_eq(UFFD_FEATURE_WP_UNPOPULATED, 1 << 13);
	cr_expect_eq(UFFD_FEATURE_POISON, 1 << 14);
	cr_expect_eq(UFFD_FEATURE_WP_ASYNC, 1 << 15);
	cr_expect_eq(UFFD_FEATURE_MOVE, 1 << 16);
	cr_expect_eq(UFFDIO_REGISTER_MODE_MISSING, 1);
	cr_expect_eq(UFFDIO_REGISTER_MODE_WP, 2);
	cr_expect_eq(UFFDIO_COPY_MODE_DONTWAKE, 1);
	cr_expect_eq(UFFDIO_COPY_MODE_WP, 2);
	cr_expect_eq(UFFDIO_WRITEPROTECT_MODE_WP, 1);
	cr_expect_eq(UFFDIO_CONTINUE_MODE_WP, 2);
	cr_expect_eq(UFFD_EVENT_PAGEFAULT, 0x12);
	cr_expect_eq(UFFD_EVENT_FORK, 0x13);
	cr_expect_eq(UFFD_EVENT_REMAP, 0x14);
	cr_expect_eq(UFFD_EVENT_REMOVE, 0x15);
	cr_expect_eq(UFFD_EVENT_UNMAP, 0x16);
}

Test(compat, uffd_ioctls)
{
	cr_expect_eq(UFFDIO_API, 0xC018AA3F);
	cr_expect_eq(UFFDIO_REGISTER, 0xC020AA00);
	cr_expect_eq(UFFDIO_UNREGISTER, 0x8010AA01);
	cr_expect_eq(UFFDIO_WAKE, 0x8010AA02);
	cr_expect_eq(UFFDIO_COPY, 0xC028AA03);
	cr_expect_eq(UFFDIO_ZEROPAGE, 0xC020AA04);
	cr_expect_eq(UFFDIO_MOVE, 0xC028AA05);
	cr_expect_eq(UFFDIO_WRITEPROTECT, 0xC018AA06);
	cr_expect_eq(UFFDIO_CONTINUE, 0xC020AA07);
	cr_expect_eq(UFFDIO_POISON, 0xC020AA08);
	cr_expect_eq(USERFAULTFD_IOC_NEW, 0xAA00);
}

Test(compat, uffd_structs)
{
	cr_expect_eq(sizeof(struct uffd_msg), 32);
	cr_expect_eq(sizeof(struct uffdio_api), 24);
	cr_expect_eq(sizeof(struct uffdio_register), 32);
	cr_expect_eq(sizeof(struct uffdio_copy), 40);
	cr_expect_eq(sizeof(struct uffdio_zeropage), 32);
	cr_expect_eq(sizeof(struct uffdio_writeprotect), 24);
	cr_expect_eq(sizeof(struct uffdio_move), 40);
	cr_expect_eq(offsetof(struct uffdio_move, mode), 24);
	cr_expect_eq(offsetof(struct uffdio_move, move), 32);
	cr_expect_eq(sizeof(struct uffdio_poison), 32);
	cr_expect_eq(offsetof(struct uffdio_poison, updated), 24);
	cr_expect_eq(offsetof(struct uffdio_copy, copy), 32);
	cr_expect_eq(offsetof(struct uffdio_register, ioctls), 24);
}

Test(compat, pagemap_scan)
{
	cr_expect_eq(PAGEMAP_SCAN, 0xC0606610);
	cr_expect_eq(sizeof(struct pm_scan_arg), 96);
	cr_expect_eq(offsetof(struct pm_scan_arg, size), 0);
	cr_expect_eq(offsetof(struct pm_scan_arg, flags), 8);
	cr_expect_eq(offsetof(struct pm_scan_arg, start), 16);
	cr_expect_eq(offsetof(struct pm_scan_arg, end), 24);
	cr_expect_eq(offsetof(struct pm_scan_arg, walk_end), 32);
	cr_expect_eq(offsetof(struct pm_scan_arg, vec), 40);
	cr_expect_eq(offsetof(struct pm_scan_arg, vec_len), 48);
	cr_expect_eq(offsetof(struct pm_scan_arg, max_pages), 56);
	cr_expect_eq(offsetof(struct pm_scan_arg, category_inverted), 64);
	cr_expect_eq(offsetof(struct pm_scan_arg, category_mask), 72);
	cr_expect_eq(offsetof(struct pm_scan_arg, category_anyof_mask), 80);
	cr_expect_eq(offsetof(struct pm_scan_arg, return_mask), 88);
	cr_expect_eq(sizeof(struct page_region), 24);
	cr_expect_eq(offsetof(struct page_region, end), 8);
	cr_expect_eq(offsetof(struct page_region, categories), 16);
	cr_expect_eq(PM_SCAN_WP_MATCHING, 1);
	cr_expect_eq(PM_SCAN_CHECK_WPASYNC, 2);
	cr_expect_eq(PAGE_IS_WPALLOWED, 1 << 0);
	cr_expect_eq(PAGE_IS_WRITTEN, 1 << 1);
	cr_expect_eq(PAGE_IS_FILE, 1 << 2);
	cr_expect_eq(PAGE_IS_PRESENT, 1 << 3);
	cr_expect_eq(PAGE_IS_SWAPPED, 1 << 4);
	cr_expect_eq(PAGE_IS_PFNZERO, 1 << 5);
	cr_expect_eq(PAGE_IS_HUGE, 1 << 6);
	cr_expect_eq(PAGE_IS_SOFT_DIRTY, 1 << 7);
	cr_expect_eq(PAGE_IS_GUARD, 1 << 8);
	cr_expect_eq(PM_ENTRY_SOFT_DIRTY, 1ULL << 55);
	cr_expect_eq(PM_ENTRY_UFFD_WP, 1ULL << 57);
	cr_expect_eq(PM_ENTRY_PRESENT, 1ULL << 63);
}

Test(compat, ptrace_and_prctl)
{
	cr_expect_eq(PTRACE_GET_RSEQ_CONFIGURATION, 0x420f);
	cr_expect_eq(sizeof(struct ckpt_rseq_configuration), 24);
	cr_expect_eq(offsetof(struct ckpt_rseq_configuration, rseq_abi_size), 8);
	cr_expect_eq(offsetof(struct ckpt_rseq_configuration, signature), 12);
	cr_expect_eq(offsetof(struct ckpt_rseq_configuration, flags), 16);
	cr_expect_eq(PR_SET_MM, 35);
	cr_expect_eq(PR_SET_MM_MAP, 14);
	cr_expect_eq(PR_SET_MM_MAP_SIZE, 15);
	cr_expect_eq(sizeof(struct prctl_mm_map), 104);
	cr_expect_eq(offsetof(struct prctl_mm_map, auxv), 88);
	cr_expect_eq(offsetof(struct prctl_mm_map, exe_fd), 100);
	cr_expect_eq(sizeof(struct clone_args), CLONE_ARGS_SIZE_VER2);
	cr_expect_eq(offsetof(struct clone_args, set_tid), 64);
	cr_expect_eq(offsetof(struct clone_args, set_tid_size), 72);
}

Test(compat, sched_attr)
{
	cr_expect_eq(SCHED_EXT, 7);
	cr_expect_eq(SCHED_DEADLINE, 6);
	cr_expect_eq(SCHED_RESET_ON_FORK, 0x40000000);
	cr_expect_eq(SCHED_FLAG_RESET_ON_FORK, 0x01);
	cr_expect_eq(SCHED_FLAG_RECLAIM, 0x02);
	cr_expect_eq(SCHED_FLAG_DL_OVERRUN, 0x04);
	cr_expect_eq(sizeof(struct ckpt_sched_attr), 56);
	cr_expect_eq(sizeof(struct ckpt_sched_attr), sizeof(struct sched_attr));
	cr_expect_eq(offsetof(struct ckpt_sched_attr, sched_flags), offsetof(struct sched_attr, sched_flags));
	cr_expect_eq(offsetof(struct ckpt_sched_attr, sched_nice), offsetof(struct sched_attr, sched_nice));
	cr_expect_eq(offsetof(struct ckpt_sched_attr, sched_priority),
		     offsetof(struct sched_attr, sched_priority));
	cr_expect_eq(offsetof(struct ckpt_sched_attr, sched_runtime),
		     offsetof(struct sched_attr, sched_runtime));
	cr_expect_eq(offsetof(struct ckpt_sched_attr, sched_period), offsetof(struct sched_attr, sched_period));
	cr_expect_eq(offsetof(struct ckpt_sched_attr, sched_util_max),
		     offsetof(struct sched_attr, sched_util_max));
}

Test(compat, mm_prctls)
{
	cr_expect_eq(PR_SET_MDWE, 65);
	cr_expect_eq(PR_GET_MDWE, 66);
	cr_expect_eq(PR_MDWE_REFUSE_EXEC_GAIN, 1);
	cr_expect_eq(PR_MDWE_NO_INHERIT, 2);
	cr_expect_eq(PR_SET_MEMORY_MERGE, 67);
	cr_expect_eq(PR_GET_MEMORY_MERGE, 68);
	cr_expect_eq(PR_THP_DISABLE_EXCEPT_ADVISED, 2);
	cr_expect_eq(MADV_GUARD_INSTALL, 102);
	cr_expect_eq(MADV_GUARD_REMOVE, 103);
	cr_expect_eq(PAGE_IS_GUARD, 1 << 8);
}
