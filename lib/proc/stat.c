/* SPDX-License-Identifier: MIT */
/* /proc/PID/stat and /proc/PID/status. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc/proc-internal.h"
#include "util/err.h"
#include "util/util.h"

/*
 * stat: "PID (COMM) STATE F4 F5 ...". COMM may hold spaces and parentheses,
 * so it ends at the LAST ')'. The remaining fields are numbers.
 */
int ckpt_proc_parse_stat(const char *text, struct ckpt_proc_stat *ret)
{
	struct ckpt_proc_stat st = { 0 };
	const char *open_paren = strchr(text, '('), *close_paren = strrchr(text, ')');
	/* fields 4..52 of proc(5); index i holds field i + 4 */
	int64_t f[49] = { 0 };
	const char *s;
	size_t comm_len;
	int nf = 0;
	char *end;
	long pid;

	if (!open_paren || !close_paren || close_paren < open_paren)
		return -EBADMSG;
	errno = 0;
	pid = strtol(text, &end, 10);
	if (errno || end == text || pid <= 0 || end + 1 != open_paren)
		return -EBADMSG;
	comm_len = (size_t)(close_paren - open_paren - 1);
	if (comm_len >= sizeof(st.comm))
		return -EBADMSG;
	memcpy(st.comm, open_paren + 1, comm_len);
	s = close_paren + 1;
	if (s[0] != ' ' || !s[1] || s[2] != ' ')
		return -EBADMSG;
	st.state = s[1];
	s += 3;
	while (*s && *s != '\n' && nf < (int)ARRAY_SIZE(f)) {
		errno = 0;
		/* Some fields are unsigned 64-bit (rsslim, addresses). */
		if (*s == '-')
			f[nf] = strtoll(s, &end, 10);
		else
			f[nf] = (int64_t)strtoull(s, &end, 10);
		if (errno || end == s)
			return -EBADMSG;
		nf++;
		s = end;
		if (*s == ' ')
			s++;
	}
	/* Linux >= 3.5 prints 52 fields; older layouts are not supported. */
	if (nf < 49)
		return -EBADMSG;
#define F(n) f[(n)-4]
	st.pid = (pid_t)pid;
	st.ppid = (pid_t)F(4);
	st.pgrp = (pid_t)F(5);
	st.session = (pid_t)F(6);
	st.tty_nr = (int)F(7);
	st.tpgid = (pid_t)F(8);
	st.flags = (unsigned int)F(9);
	st.utime = (uint64_t)F(14);
	st.stime = (uint64_t)F(15);
	st.priority = (long)F(18);
	st.nice = (long)F(19);
	st.num_threads = (long)F(20);
	st.start_time = (uint64_t)F(22);
	st.vsize = (uint64_t)F(23);
	st.rss = F(24);
	st.start_code = (uint64_t)F(26);
	st.end_code = (uint64_t)F(27);
	st.start_stack = (uint64_t)F(28);
	st.exit_signal = (int)F(38);
	st.processor = (int)F(39);
	st.rt_priority = (unsigned int)F(40);
	st.policy = (unsigned int)F(41);
	st.start_data = (uint64_t)F(45);
	st.end_data = (uint64_t)F(46);
	st.start_brk = (uint64_t)F(47);
	st.arg_start = (uint64_t)F(48);
	st.arg_end = (uint64_t)F(49);
	st.env_start = (uint64_t)F(50);
	st.env_end = (uint64_t)F(51);
	st.exit_code = (int)F(52);
#undef F
	*ret = st;
	return 0;
}

int ckpt_proc_read_stat(const struct ckpt_proc *p, struct ckpt_proc_stat *ret)
{
	_cleanup_free_ char *buf = NULL;
	int r;

	r = read_file_at(p->dirfd, "stat", &buf, NULL);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	return ckpt_proc_parse_stat(buf, ret);
}

void ckpt_proc_status_done(struct ckpt_proc_status *s)
{
	if (!s)
		return;
	free(s->groups);
	s->groups = NULL;
	s->ngroups = 0;
}

static int parse_u64(const char *v, int base, uint64_t *ret)
{
	char *end;

	errno = 0;
	*ret = strtoull(v, &end, base);
	if (errno || end == v)
		return -EBADMSG;
	return 0;
}

static int parse_ids(const char *v, unsigned int out[4])
{
	char *end;

	for (int i = 0; i < 4; i++) {
		errno = 0;
		out[i] = (unsigned int)strtoul(v, &end, 10);
		if (errno || end == v)
			return -EBADMSG;
		v = end;
	}
	return 0;
}

static int parse_groups(const char *v, struct ckpt_proc_status *st)
{
	size_t cap = 0;

	for (;;) {
		char *end;
		unsigned long g;

		while (*v == ' ' || *v == '\t')
			v++;
		if (!*v)
			return 0;
		errno = 0;
		g = strtoul(v, &end, 10);
		if (errno || end == v)
			return -EBADMSG;
		if (GROW(st->groups, cap, st->ngroups + 1) < 0)
			return -ENOMEM;
		st->groups[st->ngroups++] = (gid_t)g;
		v = end;
	}
}

static int parse_status_line(struct ckpt_proc_status *st, const char *key, const char *v)
{
	static const struct {
		const char *key;
		size_t off;
	} sigcaps[] = {
		{ "SigPnd", offsetof(struct ckpt_proc_status, sig_pnd) },
		{ "ShdPnd", offsetof(struct ckpt_proc_status, shd_pnd) },
		{ "SigBlk", offsetof(struct ckpt_proc_status, sig_blk) },
		{ "SigIgn", offsetof(struct ckpt_proc_status, sig_ign) },
		{ "SigCgt", offsetof(struct ckpt_proc_status, sig_cgt) },
		{ "CapInh", offsetof(struct ckpt_proc_status, cap_inh) },
		{ "CapPrm", offsetof(struct ckpt_proc_status, cap_prm) },
		{ "CapEff", offsetof(struct ckpt_proc_status, cap_eff) },
		{ "CapBnd", offsetof(struct ckpt_proc_status, cap_bnd) },
		{ "CapAmb", offsetof(struct ckpt_proc_status, cap_amb) },
	};
	static const struct {
		const char *key;
		size_t off;
	} kbs[] = {
		{ "VmRSS", offsetof(struct ckpt_proc_status, vm_rss_kb) },
		{ "RssAnon", offsetof(struct ckpt_proc_status, rss_anon_kb) },
		{ "RssFile", offsetof(struct ckpt_proc_status, rss_file_kb) },
		{ "RssShmem", offsetof(struct ckpt_proc_status, rss_shmem_kb) },
		{ "VmSwap", offsetof(struct ckpt_proc_status, vm_swap_kb) },
	};
	uint64_t n;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(sigcaps); i++)
		if (!strcmp(key, sigcaps[i].key))
			return parse_u64(v, 16, (uint64_t *)((char *)st + sigcaps[i].off));
	for (size_t i = 0; i < ARRAY_SIZE(kbs); i++)
		if (!strcmp(key, kbs[i].key))
			return parse_u64(v, 10, (uint64_t *)((char *)st + kbs[i].off));
	if (!strcmp(key, "Name")) {
		size_t nl = strnlen(v, sizeof(st->name) - 1);

		memcpy(st->name, v, nl);
		st->name[nl] = 0;
	} else if (!strcmp(key, "Umask")) {
		if ((r = parse_u64(v, 8, &n)) < 0)
			return r;
		st->umask = (unsigned int)n;
		st->has_umask = true;
	} else if (!strcmp(key, "State")) {
		st->state = v[0];
	} else if (!strcmp(key, "Tgid") || !strcmp(key, "Pid") || !strcmp(key, "PPid") ||
		   !strcmp(key, "TracerPid") || !strcmp(key, "Threads") ||
		   !strcmp(key, "NoNewPrivs") || !strcmp(key, "Seccomp") ||
		   !strcmp(key, "Kthread")) {
		if ((r = parse_u64(v, 10, &n)) < 0)
			return r;
		if (!strcmp(key, "Tgid"))
			st->tgid = (pid_t)n;
		else if (!strcmp(key, "Pid"))
			st->pid = (pid_t)n;
		else if (!strcmp(key, "PPid"))
			st->ppid = (pid_t)n;
		else if (!strcmp(key, "TracerPid"))
			st->tracer_pid = (pid_t)n;
		else if (!strcmp(key, "Threads"))
			st->threads = (unsigned int)n;
		else if (!strcmp(key, "NoNewPrivs"))
			st->no_new_privs = (int)n;
		else if (!strcmp(key, "Seccomp"))
			st->seccomp = (int)n;
		else
			st->kthread = (int)n;
	} else if (!strcmp(key, "Uid")) {
		return parse_ids(v, st->uid);
	} else if (!strcmp(key, "Gid")) {
		return parse_ids(v, st->gid);
	} else if (!strcmp(key, "Groups")) {
		return parse_groups(v, st);
	} else if (!strcmp(key, "NSpid")) {
		const char *s = v;

		st->nspid_nr = 0;
		for (;;) {
			char *end;
			long x;

			while (*s == ' ' || *s == '\t')
				s++;
			if (!*s)
				break;
			x = strtol(s, &end, 10);
			if (end == s)
				return -EBADMSG;
			st->nspid_inner = (pid_t)x;
			st->nspid_nr++;
			s = end;
		}
	}
	return 0;
}

int ckpt_proc_parse_status(const char *text, struct ckpt_proc_status *ret)
{
	struct ckpt_proc_status st = { .kthread = -1 };
	const char *s = text;
	bool have_pid = false;

	while (*s) {
		const char *eol = strchr(s, '\n');
		const char *colon;
		char key[32], val[4096];
		size_t kl, vl;
		int r;

		if (!eol)
			eol = s + strlen(s);
		colon = memchr(s, ':', (size_t)(eol - s));
		if (!colon)
			goto bad;
		kl = (size_t)(colon - s);
		if (kl == 0 || kl >= sizeof(key))
			goto bad;
		memcpy(key, s, kl);
		key[kl] = '\0';
		colon++;
		while (colon < eol && (*colon == '\t' || *colon == ' '))
			colon++;
		vl = (size_t)(eol - colon);
		if (vl >= sizeof(val)) {
			/* Only Groups can get this long; handled directly. */
			if (strcmp(key, "Groups"))
				goto next;
			_cleanup_free_ char *big = strndup(colon, vl);

			if (!big) {
				ckpt_proc_status_done(&st);
				return -ENOMEM;
			}
			r = parse_groups(big, &st);
		} else {
			memcpy(val, colon, vl);
			val[vl] = '\0';
			r = parse_status_line(&st, key, val);
		}
		if (r < 0) {
			ckpt_proc_status_done(&st);
			return r;
		}
		if (!strcmp(key, "Pid"))
			have_pid = true;
	next:
		s = *eol ? eol + 1 : eol;
	}
	if (!have_pid)
		goto bad;
	*ret = st;
	return 0;
bad:
	ckpt_proc_status_done(&st);
	return -EBADMSG;
}

int ckpt_proc_read_status(const struct ckpt_proc *p, struct ckpt_proc_status *ret)
{
	_cleanup_free_ char *buf = NULL;
	int r;

	r = read_file_at(p->dirfd, "status", &buf, NULL);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	return ckpt_proc_parse_status(buf, ret);
}

int ckpt_proc_read_pss(const struct ckpt_proc *p, struct ckpt_proc_pss *ret)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{ "Pss_Anon:", offsetof(struct ckpt_proc_pss, anon_kb) },
		{ "Pss_Shmem:", offsetof(struct ckpt_proc_pss, shmem_kb) },
		{ "SwapPss:", offsetof(struct ckpt_proc_pss, swap_kb) },
		{ "Anonymous:", offsetof(struct ckpt_proc_pss, anon_rss_kb) },
	};
	_cleanup_free_ char *buf = NULL;
	struct ckpt_proc_pss pss = { 0 };
	unsigned int found = 0;
	int r;

	r = read_file_at(p->dirfd, "smaps_rollup", &buf, NULL);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			size_t n = strlen(keys[k].key);
			unsigned long long v;

			if (strncmp(line, keys[k].key, n) == 0 && sscanf(line + n, "%llu", &v) == 1) {
				*(uint64_t *)((char *)&pss + keys[k].off) = v;
				found |= 1u << k;
			}
		}
	if ((found & 9) != 9)
		return -EBADMSG;
	*ret = pss;
	return 0;
}
