/* SPDX-License-Identifier: MIT */
/* Parsing of command-line values. Pure functions, unit tested. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

/* "1.5s", "500ms", "2m", "1h", "250us", "100ns"; a bare number is seconds. */
int parse_duration_ns(const char *s, uint64_t *ret)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {
		{ "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
		{ "m", 60e9 }, { "h", 3600e9 }, { "", 1e9 },
	};
	char *end;
	double v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix))
			continue;
		v *= units[i].mult;
		if (v >= 1.8e19)
			return -ERANGE;
		*ret = (uint64_t)(v + 0.5);
		return 0;
	}
	return -EINVAL;
}

int parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *u;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	if (*end) {
		u = strchr(units, end[0] >= 'a' ? end[0] - 'a' + 'A' : end[0]);
		if (!u || !*u || (end[1] && strcmp(end + 1, "iB")))
			return -EINVAL;
		for (int i = 0; i <= u - units; i++) {
			if (v > UINT64_MAX / 1024)
				return -ERANGE;
			v *= 1024;
		}
	}
	*ret = v;
	return 0;
}

int parse_int(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	long long v;
	char *end;

	if (!s || !*s || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_pid(const char *s, pid_t *ret)
{
	uint64_t v;
	int r = parse_uint(s, INT_MAX, &v);

	if (r < 0)
		return r;
	if (v == 0)
		return -ERANGE;
	*ret = (pid_t)v;
	return 0;
}

int parse_timeout_ms(const char *s, unsigned int *ret)
{
	uint64_t ns;
	int r = parse_duration_ns(s, &ns);

	if (r < 0)
		return r;
	if (ns < 1000000 || ns > (uint64_t)UINT_MAX * 1000000)
		return -ERANGE;
	*ret = (unsigned int)((ns + 999999) / 1000000);
	return 0;
}
