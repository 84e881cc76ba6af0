/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <ckpt/proc.h>

#include "fixture.h"

static const struct ckpt_vma *find_name(const struct ckpt_vma_list *l, const char *name)
{
	for (size_t i = 0; i < l->nr; i++)
		if (l->v[i].name && strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static const struct ckpt_vma *find_kind(const struct ckpt_vma_list *l, enum ckpt_vma_kind k)
{
	for (size_t i = 0; i < l->nr; i++)
		if (l->v[i].kind == k)
			return &l->v[i];
	return NULL;
}

Test(proc_maps, zoo_capture)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *l = NULL;
	const struct ckpt_vma *v;
	char root[512];
	pid_t pid = fixture_pid("zoo", root, sizeof(root));

	cr_assert_gt(pid, 0, "no zoo fixture");
	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_read_maps(p, 0, &l), 0);
	cr_expect_eq(l->nr, 31);

	v = find_name(l, "/tmp/ckpt-zoo/file with spaces\nand newline");
	cr_assert_not_null(v, "escaped newline not decoded");
	cr_expect_eq(v->kind, CKPT_VMA_FILE);
	cr_expect(!v->deleted);
	cr_expect(!v->shared);
	cr_expect_eq(v->prot, PROT_READ | PROT_WRITE);
	cr_expect_eq(v->end - v->start, 8192);
	cr_expect_eq(v->dev_major, 0xfe);
	cr_expect_eq(v->dev_minor, 0);
	cr_expect_eq(v->inode, 10952793);

	v = find_name(l, "/tmp/ckpt-zoo/deleted file");
	cr_assert_not_null(v, "' (deleted)' not stripped");
	cr_expect(v->deleted);
	cr_expect(v->shared);

	v = find_name(l, "/memfd:zoo-memfd");
	cr_assert_not_null(v);
	cr_expect(v->deleted);
	cr_expect_eq(v->prot, PROT_READ);

	v = find_name(l, "/dev/zero");
	cr_assert_not_null(v);
	cr_expect(ckpt_vma_is_shmem_anon(v));
	cr_expect_eq(v->end - v->start, 4 * 4096);

	cr_assert_not_null(find_kind(l, CKPT_VMA_HEAP));
	cr_assert_not_null(find_kind(l, CKPT_VMA_STACK));
	cr_assert_not_null(find_kind(l, CKPT_VMA_VDSO));
	cr_assert_not_null(find_kind(l, CKPT_VMA_VVAR));
	cr_assert_not_null(find_kind(l, CKPT_VMA_VVAR_VCLOCK));
	v = find_kind(l, CKPT_VMA_VSYSCALL);
	cr_assert_not_null(v);
	cr_expect_eq(v->start, 0xffffffffff600000ULL);
	cr_expect_eq(v->prot, PROT_EXEC);
	cr_expect_null(v->name);

	v = find_kind(l, CKPT_VMA_ANON);
	cr_assert_not_null(v);
	cr_expect_null(v->name);
	cr_expect_eq(v->prot, PROT_NONE); /* the thread stack guard comes first */

	/* Sorted and non-overlapping. */
	for (size_t i = 1; i < l->nr; i++)
		cr_expect_geq(l->v[i].start, l->v[i - 1].end);
}

Test(proc_maps, zoo_smaps_vmflags)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *l = NULL;
	const struct ckpt_vma *v;
	char root[512];
	pid_t pid = fixture_pid("zoo", root, sizeof(root));

	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_read_maps(p, CKPT_MAPS_VMFLAGS, &l), 0);
	cr_expect_eq(l->nr, 31);
	for (size_t i = 0; i < l->nr; i++)
		cr_expect(l->v[i].has_vmflags, "vma %zu without VmFlags", i);
	v = find_kind(l, CKPT_VMA_STACK);
	cr_assert_not_null(v);
	cr_expect(v->vmflags & CKPT_VMF_GROWSDOWN);
	cr_expect_gt(v->rss_kb, 0);
	v = find_kind(l, CKPT_VMA_VSYSCALL);
	cr_expect(!(v->vmflags & CKPT_VMF_GROWSDOWN));
	v = find_name(l, "/dev/zero");
	cr_expect(v->vmflags & CKPT_VMF_MAYSHARE);
}

Test(proc_maps, zombie_has_empty_maps)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_vma_list_ struct ckpt_vma_list *l = NULL;
	char root[512];
	pid_t pid = fixture_pid("zombie", root, sizeof(root));

	cr_assert_gt(pid, 0);
	cr_assert_eq(ckpt_proc_open(root, pid, &p), 0);
	cr_assert_eq(ckpt_proc_read_maps(p, 0, &l), 0);
	cr_expect_eq(l->nr, 0);
}

/*
 * Lines laid out as the kernel does (show_vma_header_prefix + seq_pad): the
 * header padded to 72 columns, then one space, then the name.
 */
static void add_line(char *buf, size_t len, const char *hdr, const char *name)
{
	size_t o = strlen(buf);

	if (!name) {
		snprintf(buf + o, len - o, "%s \n", hdr);
		return;
	}
	char prefix[256];

	snprintf(prefix, sizeof(prefix), "%s ", hdr);
	snprintf(buf + o, len - o, "%-72s %s\n", prefix, name);
}

/* Cases this machine cannot produce (5-level addresses, named anonymous
 * memory) and names that start with blanks. */
static void odd_maps(char *buf, size_t len, bool overlap)
{
	buf[0] = '\0';
	add_line(buf, len, "55d5c4a00000-55d5c4a01000 r--p 00000000 08:01 42", "/bin/x");
	add_line(buf, len, "7f0000000000-7f0000001000 rw-p 00000000 00:00 0", "[anon:my heap]");
	add_line(buf, len, "7f0000001000-7f0000002000 rw-s 00000000 00:01 7", "[anon_shmem:ring]");
	add_line(buf, len, "7f0000002000-7f0000003000 r-xp 00000000 00:00 0", "[uprobes]");
	add_line(buf, len, "7f0000003000-7f0000004000 rw-p 00001000 103:02 123456789",
		 "  leading blanks (deleted)");
	add_line(buf, len, "7f0000004000-7f0000005000 r--p 00000000 08:01 43", "/a (deleted) (deleted)");
	add_line(buf, len, "7f0000005000-7f0000006000 rw-p 00000000 00:00 0", NULL);
	add_line(buf, len, "fffffffde000-ffffffffe000 rw-p 00000000 00:00 0", "[stack]");
	if (overlap)
		add_line(buf, len, "fffffffde000-fffffffff000 rw-p 00000000 00:00 0", "[stack]");
	add_line(buf, len, "ff7ffffffde000-ff7ffffffdf000 rw-p 00000000 fe:00 99", "/la57 file");
	/* A header longer than the pad width: the name follows after one space. */
	add_line(buf, len, "ff7ffffffdf000-ff7ffffffe0000 rw-p 7fffffffffff0000 fff:fffff 18446744073709551615",
		 "/long header");
}

Test(proc_maps, odd_names_and_la57)
{
	_cleanup_vma_list_ struct ckpt_vma_list *l = NULL;
	char buf[4096];

	odd_maps(buf, sizeof(buf), true);
	cr_assert_eq(ckpt_proc_parse_maps(buf, strlen(buf), &l), -EBADMSG,
		     "overlapping lines must be refused");
	odd_maps(buf, sizeof(buf), false);
	cr_assert_eq(ckpt_proc_parse_maps(buf, strlen(buf), &l), 0);
	cr_assert_eq(l->nr, 10);
	cr_expect_eq(l->v[1].kind, CKPT_VMA_ANON_NAMED);
	cr_expect_str_eq(l->v[1].name, "my heap");
	cr_expect_eq(l->v[2].kind, CKPT_VMA_ANON_NAMED);
	cr_expect_str_eq(l->v[2].name, "ring");
	cr_expect(l->v[2].shared);
	cr_expect_eq(l->v[3].kind, CKPT_VMA_SPECIAL);
	cr_expect_str_eq(l->v[3].name, "uprobes");
	cr_expect_eq(l->v[4].kind, CKPT_VMA_FILE);
	cr_expect_str_eq(l->v[4].name, "  leading blanks");
	cr_expect(l->v[4].deleted);
	cr_expect_eq(l->v[4].dev_major, 0x103);
	cr_expect_eq(l->v[4].dev_minor, 2);
	cr_expect_eq(l->v[4].offset, 0x1000);
	cr_expect_str_eq(l->v[5].name, "/a (deleted)");
	cr_expect(l->v[5].deleted);
	cr_expect_eq(l->v[6].kind, CKPT_VMA_ANON);
	cr_expect_null(l->v[6].name);
	cr_expect_eq(l->v[7].kind, CKPT_VMA_STACK);
	cr_expect_eq(l->v[8].start, 0xff7ffffffde000ULL);
	cr_expect_eq(l->v[8].end, 0xff7ffffffdf000ULL);
	cr_expect_str_eq(l->v[8].name, "/la57 file");
	cr_expect_str_eq(l->v[9].name, "/long header");
	cr_expect_eq(l->v[9].inode, 18446744073709551615ULL);
	cr_expect_eq(l->v[9].dev_major, 0xfff);
	cr_expect_eq(l->v[9].offset, 0x7fffffffffff0000ULL);
}

Test(proc_maps, malformed_lines_are_refused)
{
	static const char *const bad[] = {
		"zz-1000 r--p 0 0:0 0\n",
		"1000-2000 rwzp 00000000 00:00 0\n",
		"2000-1000 r--p 00000000 00:00 0\n",
		"1000-2000 r--p 00000000 00:00\n",
		"1000-2000 r--p 00000000 0000 0\n",
		"1000-2000 r--p 00000000 00:00 0 x\n",
		"1000-2000 r--p 00000000 00:00 12345678901234567890123\n",
		"10000000000000000-10000000000001000 r--p 0 00:00 0\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ckpt_vma_list *l = NULL;

		cr_expect_eq(ckpt_proc_parse_maps(bad[i], strlen(bad[i]), &l), -EBADMSG, "accepted: %s",
			     bad[i]);
		ckpt_vma_list_free(l);
	}
}

Test(proc_maps, find_the_mapping_that_holds_an_address)
{
	const char text[] = "1000-3000 rw-p 00000000 00:00 0\n"
			    "5000-6000 r--p 00000000 00:00 0\n"
			    "6000-8000 rw-p 00000000 00:00 0\n";
	_cleanup_vma_list_ struct ckpt_vma_list *l = NULL;

	cr_assert_eq(ckpt_proc_parse_maps(text, sizeof(text) - 1, &l), 0);
	cr_expect_null(ckpt_vma_list_find(l, 0xfff));
	cr_expect_eq(ckpt_vma_list_find(l, 0x1000), &l->v[0]);
	cr_expect_eq(ckpt_vma_list_find(l, 0x2fff), &l->v[0]);
	cr_expect_null(ckpt_vma_list_find(l, 0x3000));
	cr_expect_null(ckpt_vma_list_find(l, 0x4fff));
	cr_expect_eq(ckpt_vma_list_find(l, 0x5000), &l->v[1]);
	cr_expect_eq(ckpt_vma_list_find(l, 0x6000), &l->v[2]);
	cr_expect_eq(ckpt_vma_list_find(l, 0x7fff), &l->v[2]);
	cr_expect_null(ckpt_vma_list_find(l, 0x8000));
}
