/* SPDX-License-Identifier: MIT */
/*
 * The shared secret and the mutual challenge-response: HMAC-SHA256 of both
 * HELLO messages (which carry a random nonce each) under the token, with a
 * label per direction. The secret itself never crosses the wire.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "net/net-internal.h"
#include "util/err.h"

static const char label_client[] = "ckpt page-server v1 client";
static const char label_server[] = "ckpt page-server v1 server";

void net_key_free(struct net_key *k)
{
	if (!k)
		return;
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

int net_key_load(const char *path, struct net_key **ret, char *why, size_t whylen)
{
	_cleanup_(net_key_freep) struct net_key *k = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return net_why(why, whylen, neg_errno(), "cannot open token file '%s': %s", path,
			       strerror(errno));
	if (fstat(fd, &st) < 0)
		return net_why(why, whylen, neg_errno(), "cannot stat token file '%s': %s", path,
			       strerror(errno));
	if (!S_ISREG(st.st_mode))
		return net_why(why, whylen, -EINVAL, "token file '%s' is not a regular file", path);
	if (st.st_mode & 077)
		return net_why(why, whylen, -EPERM,
			       "token file '%s' is accessible by group or others (mode %04o): "
			       "chmod 600 it",
			       path, (unsigned)(st.st_mode & 07777));
	k = calloc(1, sizeof(*k));
	if (!k)
		return net_why(why, whylen, -ENOMEM, "cannot read token file '%s': %s", path,
			       strerror(ENOMEM));
	k->owner = st.st_uid;
	k->owner_gid = st.st_gid;
	snprintf(k->path, sizeof(k->path), "%s", path);
	n = read(fd, k->key, sizeof(k->key));
	if (n < 0)
		return net_why(why, whylen, neg_errno(), "cannot read token file '%s': %s", path,
			       strerror(errno));
	if ((size_t)n == sizeof(k->key)) {
		char extra;

		if (read(fd, &extra, 1) == 1)
			return net_why(why, whylen, -EINVAL,
				       "token file '%s' is larger than %d bytes", path,
				       NET_TOKEN_MAX);
	}
	while (n > 0 && (k->key[n - 1] == '\n' || k->key[n - 1] == '\r'))
		n--;
	if (n < NET_TOKEN_MIN)
		return net_why(
			why, whylen, -EINVAL,
			"token file '%s' holds %zd bytes: a secret of at least %d bytes expected "
			"(head -c 32 /dev/urandom | base64 > FILE)",
			path, n, NET_TOKEN_MIN);
	k->len = (size_t)n;
	*ret = TAKE_PTR(k);
	return 0;
}

int net_random(void *buf, size_t len)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

int net_auth_mac(const struct net_key *k, bool server, const uint8_t hello_c[PROTO_HELLO_SIZE],
		 const uint8_t hello_s[PROTO_HELLO_SIZE], uint8_t out[PROTO_MAC_LEN])
{
	const char *label = server ? label_server : label_client;
	size_t ll = strlen(label);
	uint8_t msg[sizeof(label_client) + 2 * PROTO_HELLO_SIZE];
	unsigned int outlen = 0;

	memcpy(msg, label, ll);
	memcpy(msg + ll, hello_c, PROTO_HELLO_SIZE);
	memcpy(msg + ll + PROTO_HELLO_SIZE, hello_s, PROTO_HELLO_SIZE);
	if (!HMAC(EVP_sha256(), k->key, (int)k->len, msg, ll + 2 * PROTO_HELLO_SIZE, out,
		  &outlen) ||
	    outlen != PROTO_MAC_LEN)
		return -EIO;
	return 0;
}

bool net_mac_equal(const uint8_t a[PROTO_MAC_LEN], const uint8_t b[PROTO_MAC_LEN])
{
	return CRYPTO_memcmp(a, b, PROTO_MAC_LEN) == 0;
}
