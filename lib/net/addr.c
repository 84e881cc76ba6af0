/* SPDX-License-Identifier: MIT */
/* Addresses of the page server: "ADDR:PORT", "[IPV6]:PORT", "tcp://..."; loopback or not. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net-internal.h"

void net_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		snprintf(buf, buflen, "%s:%u", host, ntohs(s->sin_port));
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		snprintf(buf, buflen, "[%s]:%u", host, ntohs(s->sin6_port));
	} else {
		snprintf(buf, buflen, "(family %d)", sa->sa_family);
	}
}

int net_addr_parse(const char *s, const char *default_host, bool allow_port0, struct net_addr *ret,
		   char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char host[256], port[8];
	const char *colon, *p;
	unsigned long pn;
	char *end;
	int r;

	if (!s || !*s)
		return net_why(why, whylen, -EINVAL, "empty address");
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':' || close == s + 1 ||
		    (size_t)(close - s - 1) >= sizeof(host))
			return net_why(why, whylen, -EINVAL,
				       "invalid address '%s': [IPV6]:PORT expected", s);
		snprintf(host, sizeof(host), "%.*s", (int)(close - s - 1), s + 1);
		p = close + 2;
		hints.ai_family = AF_INET6;
		hints.ai_flags |= AI_NUMERICHOST;
	} else if ((colon = strrchr(s, ':'))) {
		if (strchr(s, ':') != colon)
			return net_why(why, whylen, -EINVAL,
				       "invalid address '%s': write an IPv6 address as [ADDR]:PORT",
				       s);
		if (colon == s || (size_t)(colon - s) >= sizeof(host))
			return net_why(why, whylen, -EINVAL,
				       "invalid address '%s': ADDR:PORT expected", s);
		snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
		p = colon + 1;
	} else if (default_host) {
		snprintf(host, sizeof(host), "%s", default_host);
		p = s;
	} else {
		return net_why(why, whylen, -EINVAL, "invalid address '%s': ADDR:PORT expected", s);
	}
	errno = 0;
	pn = strtoul(p, &end, 10);
	if (*p < '0' || *p > '9' || *end || errno || pn > 65535 || (pn == 0 && !allow_port0))
		return net_why(why, whylen, -EINVAL,
			       "invalid port '%s' in '%s': %s to 65535 expected", p, s,
			       allow_port0 ? "0 (any free port)" : "1");
	snprintf(port, sizeof(port), "%lu", pn);
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		return net_why(why, whylen, r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL,
			       "cannot resolve '%s': %s", host, gai_strerror(r));
	if (res->ai_addrlen > sizeof(ret->ss)) {
		freeaddrinfo(res);
		return net_why(why, whylen, -EINVAL, "cannot resolve '%s': address too long", host);
	}
	memset(ret, 0, sizeof(*ret));
	memcpy(&ret->ss, res->ai_addr, res->ai_addrlen);
	ret->len = res->ai_addrlen;
	freeaddrinfo(res);
	net_sockaddr_format((struct sockaddr *)&ret->ss, ret->len, ret->text, sizeof(ret->text));
	return 0;
}

int net_url_parse(const char *url, struct net_addr *ret, char *why, size_t whylen)
{
	static const char scheme[] = "tcp://";

	if (!url || strncmp(url, scheme, strlen(scheme)) != 0)
		return net_why(why, whylen, -EINVAL,
			       "invalid page server URL '%s': tcp://ADDR:PORT expected",
			       url ? url : "");
	return net_addr_parse(url + strlen(scheme), NULL, false, ret, why, whylen);
}

bool net_addr_is_loopback(const struct net_addr *a)
{
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&a->ss;

		return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->ss;
		const uint8_t *b = s->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_LOOPBACK(&s->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&s->sin6_addr) && b[12] == 127;
	}
	return false;
}
