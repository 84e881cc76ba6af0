/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the remote page source against a malicious page server. The
 * input is everything the "server" says, cut into messages by their
 * headers: a feeder thread answers each message the client sends with the
 * next one (the rest of the input when a header lies). The client says
 * hello, asks for a document, pages (one batch, then a pipelined one) and
 * the ranges, and must fail cleanly on anything but a correct answer.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include <ckpt/log.h>

#include "net/net-internal.h"

#define BASE 0x7f0000000000ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
	int fd;
	const uint8_t *data;
	size_t size;
};

static bool send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool recv_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);

		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* One input message per client message. */
static void *feeder(void *arg)
{
	struct feed *f = arg;
	uint8_t hdr[PROTO_HDR_SIZE], payload[PROTO_REQUEST_MAX];
	size_t off = 0;

	while (off < f->size) {
		size_t len;

		if (!recv_all(f->fd, hdr, sizeof(hdr)) || get_le32(hdr) > sizeof(payload) ||
		    !recv_all(f->fd, payload, get_le32(hdr)))
			break;
		len = f->size - off;
		if (len >= PROTO_HDR_SIZE && get_le32(f->data + off) <= len - PROTO_HDR_SIZE)
			len = PROTO_HDR_SIZE + get_le32(f->data + off);
		if (!send_all(f->fd, f->data + off, len))
			break;
		off += len;
	}
	shutdown(f->fd, SHUT_WR);
	return NULL;
}

/* Messages only with CKPT_FUZZ_VERBOSE set (to see how far an input gets). */
static void quiet(enum ckpt_log_level level, const char *area, const char *msg, void *ud)
{
	(void)level, (void)ud;
	if (getenv("CKPT_FUZZ_VERBOSE"))
		fprintf(stderr, "%s: %s\n", area, msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[2048 * 4096], kinds[2048];
	struct ckpt_page_source *src = NULL;
	struct ckpt_page_source_range *rg = NULL;
	struct json_object *doc = NULL;
	char why[WHY_LEN];
	struct feed feed;
	pthread_t t;
	int sv[2];
	size_t nr = 0;

	ckpt_log_set_sink(quiet, NULL);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	feed = (struct feed){ .fd = sv[1], .data = data, .size = size };
	if (pthread_create(&t, NULL, feeder, &feed) != 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	if (pagesrc_remote_open_fd(sv[0], "fuzz", NULL, 1000, &src, why, sizeof(why)) == 0) {
		int k;

		if (ckpt_page_source_get_json(src, "mm.json", &doc) == 0)
			json_object_put(doc);
		k = ckpt_page_source_read_pages(src, BASE, 3, kinds, buf);
		if (getenv("CKPT_FUZZ_VERBOSE"))
			fprintf(stderr, "read 3: %d\n", k);
		if (k > 3)
			__builtin_trap();
		k = ckpt_page_source_list_ranges(src, &rg, &nr);
		if (k == 0) {
			for (size_t i = 1; i < nr; i++)
				if (rg[i].addr < rg[i - 1].addr + rg[i - 1].nr_pages * 4096)
					__builtin_trap();
			free(rg);
		}
		k = ckpt_page_source_read_pages(src, BASE, 2048, kinds, buf);
		if (getenv("CKPT_FUZZ_VERBOSE"))
			fprintf(stderr, "read 2048: %d\n", k);
		if (k > 2048)
			__builtin_trap();
		for (int i = 0; k >= 0 && i < 2048; i++)
			if (kinds[i] > CKPT_PAGE_ZERO)
				__builtin_trap();
		ckpt_page_source_close(src);
	}
	/* The client's end is closed now (or never opened): the feeder sees it and ends. */
	pthread_join(t, NULL);
	close(sv[1]);
	return 0;
}
