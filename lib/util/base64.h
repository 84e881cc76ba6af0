/* SPDX-License-Identifier: MIT */
/* Base64 (RFC 4648, standard alphabet, '=' padding, no line breaks). */
#ifndef CKPT_LIB_BASE64_H
#define CKPT_LIB_BASE64_H

#include <stddef.h>

#include <ckpt/util.h>

/* Length of the encoding of @len bytes, without the NUL. */
size_t base64_encoded_len(size_t len);
/* Encode into a new NUL-terminated string; NULL when out of memory. */
char *base64_encode(const void *buf, size_t len);
/*
 * Decode exactly @len characters of @s (canonical form only: padding
 * required, no whitespace, unused bits zero) into a new buffer of
 * *@ret_len bytes (NUL-terminated for convenience, not counted).
 * -EBADMSG for anything else.
 */
int base64_decode(const char *s, size_t len, void **ret, size_t *ret_len) __must_check;

#endif
