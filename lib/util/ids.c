/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/ids.h"

int thread_ids_become(struct thread_ids *s, uid_t uid, gid_t gid, const gid_t *groups, size_t nr,
		      bool effective)
{
	int e = 0;

	s->active = false;
	s->effective = effective;
	s->nr = getgroups((int)(sizeof(s->groups) / sizeof(s->groups[0])), s->groups);
	if (s->nr < 0)
		return -errno;
	s->egid = getegid();
	s->fsuid = (uid_t)syscall(SYS_setfsuid, -1);
	s->fsgid = (gid_t)syscall(SYS_setfsgid, -1);
	s->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	s->active = true;
	if (syscall(SYS_setgroups, nr, groups) < 0)
		e = -errno;
	else if (effective && (syscall(SYS_setresgid, -1, gid, -1) < 0 || syscall(SYS_setresuid, -1, uid, -1) < 0))
		e = -errno;
	else if (!effective) {
		syscall(SYS_setfsgid, gid);
		syscall(SYS_setfsuid, uid);
	}
	if (e == 0 && (uid_t)syscall(SYS_setfsuid, -1) != uid)
		e = -EPERM;
	if (e < 0)
		thread_ids_restore(s);
	return e;
}

void thread_ids_restore(struct thread_ids *s)
{
	if (!s->active)
		return;
	if (s->effective) {
		(void)syscall(SYS_setresuid, -1, 0, -1);
		(void)syscall(SYS_setresgid, -1, s->egid, -1);
		/* A change of effective uid made the process not dumpable. */
		if (s->dumpable >= 0)
			(void)prctl(PR_SET_DUMPABLE, s->dumpable, 0, 0, 0);
	} else {
		syscall(SYS_setfsuid, s->fsuid);
		syscall(SYS_setfsgid, s->fsgid);
	}
	(void)syscall(SYS_setgroups, (size_t)s->nr, s->groups);
	s->active = false;
}
