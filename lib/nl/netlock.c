/* SPDX-License-Identifier: MIT */
/*
 * TCP connections blocked while they are checkpointed: nftables rules that
 * drop every packet of the connection both ways (its 4-tuple), in a table
 * "inet ckpt_KEY" of its own, at the raw priority of the input and output
 * hooks, so that neither end sees the other while the socket is in repair
 * or gone: the peer retransmits, and never meets a socket that would
 * answer with a reset. Made with nft(8) (package nftables), fed on its
 * standard input; the table is removed as a whole.
 */
#define LOG_AREA "nl"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/nl.h>

#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

/*
 * Run "nft -f -" with @script on its standard input; its error output,
 * if any, into @err. 0, -ENOENT when nft is not installed, -EIO when it
 * failed.
 */
static int run_nft(const char *script, char *err, size_t errlen)
{
	int in[2], out[2], status;
	size_t got = 0, len = strlen(script);
	pid_t pid;

	err[0] = '\0';
	if (pipe2(in, O_CLOEXEC) < 0)
		return neg_errno();
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return neg_errno();
	}
	pid = fork();
	if (pid == 0) {
		sigset_t all;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0)
			_exit(126);
		execlp("nft", "nft", "-f", "-", (char *)NULL);
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(in[0]);
	close(out[1]);
	if (pid < 0) {
		close(in[1]);
		close(out[0]);
		return -EAGAIN;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = write(in[1], script + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(in[1]);
	for (;;) {
		ssize_t n = read(out[0], err + got, got + 1 < errlen ? errlen - 1 - got : 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	err[got] = '\0';
	while (got && (err[got - 1] == '\n' || err[got - 1] == ' '))
		err[--got] = '\0';
	close(out[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -ENOENT;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* "ip saddr A ip daddr B tcp sport P tcp dport Q" for packets from @from to @to. */
static int match(char *buf, size_t len, const struct sockaddr *from, const struct sockaddr *to)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

	if (from->sa_family == AF_INET && to->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)from, *y = (const void *)to;

		inet_ntop(AF_INET, &x->sin_addr, a, sizeof(a));
		inet_ntop(AF_INET, &y->sin_addr, b, sizeof(b));
		snprintf(buf, len, "ip saddr %s ip daddr %s tcp sport %u tcp dport %u", a, b,
			 ntohs(x->sin_port), ntohs(y->sin_port));
		return 0;
	}
	if (from->sa_family == AF_INET6 && to->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)from, *y = (const void *)to;

		if (IN6_IS_ADDR_V4MAPPED(&x->sin6_addr) && IN6_IS_ADDR_V4MAPPED(&y->sin6_addr)) {
			inet_ntop(AF_INET, &x->sin6_addr.s6_addr[12], a, sizeof(a));
			inet_ntop(AF_INET, &y->sin6_addr.s6_addr[12], b, sizeof(b));
			snprintf(buf, len, "ip saddr %s ip daddr %s tcp sport %u tcp dport %u", a, b,
				 ntohs(x->sin6_port), ntohs(y->sin6_port));
			return 0;
		}
		inet_ntop(AF_INET6, &x->sin6_addr, a, sizeof(a));
		inet_ntop(AF_INET6, &y->sin6_addr, b, sizeof(b));
		snprintf(buf, len, "ip6 saddr %s ip6 daddr %s tcp sport %u tcp dport %u", a, b,
			 ntohs(x->sin6_port), ntohs(y->sin6_port));
		return 0;
	}
	return -EAFNOSUPPORT;
}

int ckpt_net_lock_tcp(unsigned int key, const struct sockaddr *local, const struct sockaddr *peer,
		      char *err, size_t errlen)
{
	char in[200], out[200], script[1024];
	int r;

	if ((r = match(in, sizeof(in), peer, local)) < 0 || (r = match(out, sizeof(out), local, peer)) < 0)
		return r;
	snprintf(script, sizeof(script),
		 "add table inet ckpt_%u\n"
		 "add chain inet ckpt_%u in { type filter hook input priority -300; policy accept; }\n"
		 "add chain inet ckpt_%u out { type filter hook output priority -300; policy accept; }\n"
		 "add rule inet ckpt_%u in %s drop\n"
		 "add rule inet ckpt_%u out %s drop\n",
		 key, key, key, key, in, key, out);
	r = run_nft(script, err, errlen);
	pr_debug("lock of %s and %s (table inet ckpt_%u): %s", in, out, key, r ? err : "done");
	return r;
}

int ckpt_net_unlock(unsigned int key, char *err, size_t errlen)
{
	char script[64];
	int r;

	snprintf(script, sizeof(script), "delete table inet ckpt_%u\n", key);
	r = run_nft(script, err, errlen);
	if (r == -EIO && strstr(err, "No such file or directory"))
		return 0; /* nothing locked */
	return r;
}
