/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

char *base64_encode(const void *buf, size_t len)
{
	const unsigned char *in = buf;
	char *out, *o;
	size_t i;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
		return NULL;
	out = malloc(base64_encoded_len(len) + 1);
	if (!out)
		return NULL;
	o = out;
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
		*o++ = alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *s, size_t len, void **ret, size_t *ret_len)
{
	unsigned char *out, *o;
	size_t pad = 0;

	if (len % 4)
		return -EBADMSG;
	if (len && s[len - 1] == '=')
		pad = len >= 2 && s[len - 2] == '=' ? 2 : 1;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	o = out;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int d[4];
		uint32_t v;

		for (int k = 0; k < 4; k++) {
			d[k] = digit(s[i + k]);
			/* '=' only as the padding of the last group */
			if (d[k] < 0 && !(last && s[i + k] == '=' && k >= 4 - (int)pad)) {
				free(out);
				return -EBADMSG;
			}
			if (d[k] < 0)
				d[k] = 0;
		}
		v = (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 | (uint32_t)d[3];
		/* Canonical: the bits the padding hides are zero. */
		if (last && ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff)))) {
			free(out);
			return -EBADMSG;
		}
		*o++ = (unsigned char)(v >> 16);
		if (!last || pad < 2)
			*o++ = (unsigned char)(v >> 8);
		if (!last || pad < 1)
			*o++ = (unsigned char)v;
	}
	*o = '\0';
	*ret_len = (size_t)(o - out);
	*ret = out;
	return 0;
}
