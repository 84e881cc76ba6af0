/* SPDX-License-Identifier: MIT */
/* Addresses and URLs of the page server, loopback or not; the token file; the HMAC. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/net-internal.h"

static char why[512];

Test(net_addr, parse_and_loopback)
{
	static const struct {
		const char *in;
		const char *text;
		bool loopback;
	} ok[] = {
		{"127.0.0.1:7777", "127.0.0.1:7777", true},
		{"127.1.2.3:1", "127.1.2.3:1", true},
		{"7777", "127.0.0.1:7777", true}, /* the default host */
		{"0.0.0.0:80", "0.0.0.0:80", false},
		{"10.1.2.3:65535", "10.1.2.3:65535", false},
		{"[::1]:9", "[::1]:9", true},
		{"[::]:9", "[::]:9", false},
		{"[::ffff:127.0.0.1]:9", "[::ffff:127.0.0.1]:9", true},
		{"[fe80::1]:9", "[fe80::1]:9", false},
		{"localhost:5", NULL, true},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct net_addr a;

		cr_assert_eq(net_addr_parse(ok[i].in, "127.0.0.1", false, &a, why, sizeof(why)), 0,
			     "%s: %s", ok[i].in, why);
		if (ok[i].text)
			cr_expect_str_eq(a.text, ok[i].text);
		cr_expect_eq(net_addr_is_loopback(&a), ok[i].loopback, "%s", ok[i].in);
	}
}

Test(net_addr, malformed)
{
	static const char *const bad[] = {
		"",
		"127.0.0.1",
		"127.0.0.1:",
		":80",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:-1",
		"127.0.0.1:80x",
		"::1:80",
		"[::1]80",
		"[::1]",
		"[]:80",
		"[not-v6]:80",
		"no.such.host.invalid:80",
	};
	struct net_addr a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		cr_expect_lt(net_addr_parse(bad[i], NULL, false, &a, why, sizeof(why)), 0,
			     "'%s' accepted", bad[i]);
		cr_expect(why[0], "'%s': no message", bad[i]);
	}
	cr_expect_eq(net_addr_parse("127.0.0.1:0", NULL, true, &a, why, sizeof(why)), 0,
		     "port 0 when allowed");
	cr_expect_lt(net_addr_parse("80", NULL, false, &a, why, sizeof(why)), 0, "no default host");
}

Test(net_addr, urls)
{
	struct net_addr a;

	cr_assert_eq(net_url_parse("tcp://127.0.0.1:4000", &a, why, sizeof(why)), 0, "%s", why);
	cr_expect_str_eq(a.text, "127.0.0.1:4000");
	cr_assert_eq(net_url_parse("tcp://[::1]:4000", &a, why, sizeof(why)), 0, "%s", why);
	cr_expect(net_addr_is_loopback(&a));
	cr_expect_eq(net_url_parse("udp://127.0.0.1:4000", &a, why, sizeof(why)), -EINVAL);
	cr_expect_eq(net_url_parse("127.0.0.1:4000", &a, why, sizeof(why)), -EINVAL);
	cr_expect_eq(net_url_parse("tcp://4000", &a, why, sizeof(why)), -EINVAL,
		     "no default host in URLs");
	cr_expect_eq(net_url_parse(NULL, &a, why, sizeof(why)), -EINVAL);
}

static char *token_file(const char *content, size_t len, mode_t mode)
{
	char *path = strdup("/tmp/ckpt-token-test-XXXXXX");
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, content, len), (ssize_t)len);
	fchmod(fd, mode);
	close(fd);
	return path;
}

Test(net_token, load)
{
	struct net_key *k = NULL;
	char *p;
	static char big[NET_TOKEN_MAX + 1];

	p = token_file("0123456789abcdef0123\n", 21, 0600);
	cr_assert_eq(net_key_load(p, &k, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq(k->len, 20, "the trailing newline is not part of the secret");
	cr_expect_eq(memcmp(k->key, "0123456789abcdef0123", 20), 0);
	net_key_free(k);
	k = NULL;
	chmod(p, 0644);
	cr_expect_eq(net_key_load(p, &k, why, sizeof(why)), -EPERM);
	cr_expect(strstr(why, "chmod 600"), "%s", why);
	chmod(p, 0660);
	cr_expect_eq(net_key_load(p, &k, why, sizeof(why)), -EPERM);
	unlink(p);
	free(p);

	p = token_file("short\n", 6, 0600);
	cr_expect_eq(net_key_load(p, &k, why, sizeof(why)), -EINVAL);
	cr_expect(strstr(why, "at least 16"), "%s", why);
	unlink(p);
	free(p);

	memset(big, 'k', sizeof(big));
	p = token_file(big, sizeof(big), 0600);
	cr_expect_eq(net_key_load(p, &k, why, sizeof(why)), -EINVAL);
	cr_expect(strstr(why, "larger than"), "%s", why);
	unlink(p);
	free(p);

	p = token_file(big, NET_TOKEN_MAX, 0400);
	cr_expect_eq(net_key_load(p, &k, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq(k ? k->len : 0, NET_TOKEN_MAX);
	net_key_free(k);
	unlink(p);
	free(p);

	cr_expect_eq(net_key_load("/nonexistent/token", &k, why, sizeof(why)), -ENOENT);
	cr_expect_eq(net_key_load("/tmp", &k, why, sizeof(why)), -EINVAL);
}

Test(net_token, mac_binds_key_direction_and_both_hellos)
{
	struct net_key k1 = {.len = 16}, k2 = {.len = 16};
	uint8_t hc[PROTO_HELLO_SIZE] = {1}, hs[PROTO_HELLO_SIZE] = {2};
	uint8_t m[PROTO_MAC_LEN], m2[PROTO_MAC_LEN];

	memcpy(k1.key, "0123456789abcdef", 16);
	memcpy(k2.key, "0123456789abcdeX", 16);
	cr_assert_eq(net_auth_mac(&k1, false, hc, hs, m), 0);
	cr_assert_eq(net_auth_mac(&k1, false, hc, hs, m2), 0);
	cr_expect(net_mac_equal(m, m2), "deterministic");
	cr_assert_eq(net_auth_mac(&k1, true, hc, hs, m2), 0);
	cr_expect_not(net_mac_equal(m, m2), "client and server MACs differ (no reflection)");
	cr_assert_eq(net_auth_mac(&k2, false, hc, hs, m2), 0);
	cr_expect_not(net_mac_equal(m, m2), "another key");
	hs[40] ^= 1;
	cr_assert_eq(net_auth_mac(&k1, false, hc, hs, m2), 0);
	cr_expect_not(net_mac_equal(m, m2), "another server nonce");
	hs[40] ^= 1;
	hc[12] ^= 1;
	cr_assert_eq(net_auth_mac(&k1, false, hc, hs, m2), 0);
	cr_expect_not(net_mac_equal(m, m2), "another client hello (capabilities)");
	cr_expect_eq(net_random(m, sizeof(m)), 0);
	cr_expect_eq(net_random(m2, sizeof(m2)), 0);
	cr_expect_not(net_mac_equal(m, m2), "random nonces");
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* The MACs as ckpt-page-server(1) defines them, computed by another implementation. */
Test(net_token, mac_known_answer)
{
	struct net_key k = {.len = 16};
	uint8_t hc[PROTO_HELLO_SIZE], hs[PROTO_HELLO_SIZE], m[PROTO_MAC_LEN];
	char s[2 * PROTO_MAC_LEN + 1];

	memcpy(k.key, "0123456789abcdef", 16);
	memset(hc, 1, sizeof(hc));
	memset(hs, 2, sizeof(hs));
	cr_assert_eq(net_auth_mac(&k, false, hc, hs, m), 0);
	hex(m, sizeof(m), s);
	cr_expect_str_eq(s, "665e8d08b7ea6a4d054b594e7c30423a37cdfcccf009fdb9a100299d8fc0e73b");
	cr_assert_eq(net_auth_mac(&k, true, hc, hs, m), 0);
	hex(m, sizeof(m), s);
	cr_expect_str_eq(s, "37c9714354c401d40187c9abfc24df94c03c42ee00eddab0d6aa76a08d906ecd");
}
