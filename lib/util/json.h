/* SPDX-License-Identifier: MIT */
/* json-c helpers shared by the modules that read and write JSON. */
#ifndef CKPT_LIB_JSON_H
#define CKPT_LIB_JSON_H

#include <json-c/json.h>

static inline void json_putp(json_object **o)
{
	if (*o)
		json_object_put(*o);
}

#define _cleanup_json_ __attribute__((cleanup(json_putp)))

#endif
