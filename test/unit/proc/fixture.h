/* SPDX-License-Identifier: MIT */
/* Locate a captured /proc tree in test/fixtures/proc/NAME and its one pid. */
#ifndef CKPT_TEST_FIXTURE_H
#define CKPT_TEST_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef CKPT_FIXTURES
#define CKPT_FIXTURES "test/fixtures"
#endif

static inline pid_t fixture_pid(const char *name, char *root, size_t len)
{
	DIR *d;
	struct dirent *de;
	pid_t pid = 0;

	snprintf(root, len, "%s/proc/%s", CKPT_FIXTURES, name);
	d = opendir(root);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
			pid = (pid_t)atoi(de->d_name);
	closedir(d);
	return pid;
}

#endif
