/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "testutil.h"

static pid_t tracked[256];
static size_t nr_tracked;

void prog_track_pid(pid_t pid)
{
	if (pid > 0 && nr_tracked < sizeof(tracked) / sizeof(tracked[0]))
		tracked[nr_tracked++] = pid;
}

void prog_kill_all(void)
{
	for (size_t i = 0; i < nr_tracked; i++) {
		kill(tracked[i], SIGKILL);
		waitpid(tracked[i], NULL, WNOHANG);
	}
	nr_tracked = 0;
}

const char *ckpt_bin(void)
{
	const char *b = getenv("CKPT_BIN");

	return b ? b : "build/ckpt";
}

const char *prog_path(const char *name, char *buf, size_t len)
{
	const char *d = getenv("CKPT_PROGS");

	snprintf(buf, len, "%s/%s", d ? d : "build/test/progs", name);
	return buf;
}

const char *src_path(const char *rel, char *buf, size_t len)
{
	const char *d = getenv("CKPT_SRCDIR");

	snprintf(buf, len, "%s/%s", d ? d : ".", rel);
	return buf;
}

double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int append(char **buf, size_t *len, const char *data, size_t n)
{
	char *nb = realloc(*buf, *len + n + 1);

	if (!nb)
		return -ENOMEM;
	memcpy(nb + *len, data, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
	return 0;
}

int run_argv(const char *const *argv, struct run_result *res)
{
	int o[2], e[2], status;
	size_t olen = 0, elen = 0;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->out = calloc(1, 1);
	res->err = calloc(1, 1);
	if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(o[1], 1);
		dup2(e[1], 2);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	struct pollfd pfd[2] = { { o[0], POLLIN, 0 }, { e[0], POLLIN, 0 } };
	int open_fds = 2;

	while (open_fds) {
		char buf[65536];

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				open_fds--;
				continue;
			}
			if (i == 0)
				append(&res->out, &olen, buf, (size_t)n);
			else
				append(&res->err, &elen, buf, (size_t)n);
		}
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	res->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return 0;
}

int run_ckpt(struct run_result *res, ...)
{
	const char *argv[64];
	int n = 0;
	va_list ap;

	argv[n++] = ckpt_bin();
	va_start(ap, res);
	while (n < 63 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	return run_argv(argv, res);
}

void run_result_done(struct run_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

int prog_read_line(struct prog *p, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;
	double deadline = mono_s() + timeout_ms / 1000.0;

	while (n + 1 < len) {
		struct pollfd pfd = { p->out_fd, POLLIN, 0 };
		int left = (int)((deadline - mono_s()) * 1000);
		char c;
		ssize_t r;

		if (left < 0)
			left = 0;
		if (poll(&pfd, 1, left) <= 0)
			return -ETIMEDOUT;
		r = read(p->out_fd, &c, 1);
		if (r <= 0)
			return r == 0 ? -EPIPE : -errno;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return (int)n;
}

int prog_start(struct prog *p, bool pipe_stdin, int ready_timeout_ms, const char *name, ...)
{
	char path[4096], line[256];
	const char *argv[64];
	int o[2], in[2] = { -1, -1 }, n = 0, r;
	va_list ap;

	memset(p, 0, sizeof(*p));
	p->in_fd = -1;
	argv[n++] = prog_path(name, path, sizeof(path));
	va_start(ap, name);
	while (n < 63 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	if (pipe2(o, O_CLOEXEC) < 0)
		return -errno;
	if (pipe_stdin && pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	p->pid = fork();
	if (p->pid < 0)
		return -errno;
	if (p->pid == 0) {
		if (pipe_stdin)
			dup2(in[0], 0);
		dup2(o[1], 1);
		/* Own process group: a test's kill never hits the runner. */
		setpgid(0, 0);
		/* Nothing of the runner's (Criterion's /dev/shm arenas) leaks into it. */
		syscall(SYS_close_range, 3, ~0U, 0);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(o[1]);
	p->out_fd = o[0];
	prog_track_pid(p->pid);
	if (pipe_stdin) {
		close(in[0]);
		p->in_fd = in[1];
	}
	if (ready_timeout_ms <= 0)
		return 0;
	for (;;) {
		r = prog_read_line(p, line, sizeof(line), ready_timeout_ms);
		if (r < 0) {
			prog_kill(p);
			return r;
		}
		if (strcmp(line, "ready") == 0)
			return 0;
	}
}

int prog_spawn(struct prog *p, bool pipe_stdin, const char *out_path, const char *const *argv)
{
	int o[2] = { -1, -1 }, in[2] = { -1, -1 };

	memset(p, 0, sizeof(*p));
	p->in_fd = p->out_fd = -1;
	if (!out_path && pipe2(o, O_CLOEXEC) < 0)
		return -errno;
	if (pipe_stdin && pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	p->pid = fork();
	if (p->pid < 0)
		return -errno;
	if (p->pid == 0) {
		int out = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : o[1];

		if (pipe_stdin)
			dup2(in[0], 0);
		else
			dup2(open("/dev/null", O_RDONLY), 0);
		dup2(out, 1);
		setpgid(0, 0);
		syscall(SYS_close_range, 3, ~0U, 0);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	prog_track_pid(p->pid);
	if (!out_path) {
		close(o[1]);
		p->out_fd = o[0];
	}
	if (pipe_stdin) {
		close(in[0]);
		p->in_fd = in[1];
	}
	return 0;
}

int prog_wait(struct prog *p, int timeout_ms)
{
	double deadline = mono_s() + timeout_ms / 1000.0;
	int status;

	while (p->pid > 0) {
		pid_t r = waitpid(p->pid, &status, WNOHANG | __WALL);

		if (r == p->pid) {
			p->pid = 0;
			return status;
		}
		if (r < 0 && errno == ECHILD) {
			p->pid = 0; /* reaped by a tracer's waitpid (us) */
			return -ECHILD;
		}
		if (r < 0 && errno != EINTR)
			return -errno;
		if (mono_s() > deadline)
			return -ETIMEDOUT;
		usleep(2000);
	}
	return -ECHILD;
}

int prog_kill(struct prog *p)
{
	int status = -ECHILD;

	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, &status, __WALL) < 0 && errno == EINTR)
			;
		p->pid = 0;
	}
	if (p->out_fd > 0)
		close(p->out_fd);
	if (p->in_fd >= 0)
		close(p->in_fd);
	p->out_fd = p->in_fd = -1;
	return status;
}

char proc_state(pid_t pid)
{
	char path[64], buf[4096];
	FILE *f;
	char st = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "State:\t%c", &st) == 1)
			break;
	fclose(f);
	return st;
}

#include <ckpt/log.h>

static char captured[16384];

static void capture_sink(enum ckpt_log_level level, const char *area, const char *msg, void *ud)
{
	size_t o = strlen(captured);

	(void)level;
	(void)ud;
	snprintf(captured + o, sizeof(captured) - o, "%s: %s\n", area, msg);
}

void log_capture_start(void)
{
	captured[0] = '\0';
	ckpt_log_set_sink(capture_sink, NULL);
}

const char *log_captured(void)
{
	return captured;
}

int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int netns_pair_create(struct netns_pair *np, const char *prefix, char *err, size_t errlen)
{
	int id = getpid(), x = id % 250 + 1;
	char errpath[64];
	FILE *f;

	memset(np, 0, sizeof(*np));
	/* Namespaces left by a crashed run: their pid is gone. */
	sh("for n in $(ip netns list 2>/dev/null | awk '/^%s-[ab]-/{print $1}'); do "
	    "p=${n##*-}; [ -d /proc/$p ] || ip netns del $n; done",
	    prefix);
	snprintf(np->a, sizeof(np->a), "%s-a-%d", prefix, id);
	snprintf(np->b, sizeof(np->b), "%s-b-%d", prefix, id);
	snprintf(np->addr_a, sizeof(np->addr_a), "10.231.%d.1", x);
	snprintf(np->addr_b, sizeof(np->addr_b), "10.231.%d.2", x);
	snprintf(errpath, sizeof(errpath), "/tmp/ckpt-netns-%d.err", id);
	if (sh("ip netns add %s 2>%s", np->a, errpath) != 0) {
		size_t n = 0;

		f = fopen(errpath, "r");
		if (f) {
			n = fread(err, 1, errlen - 1, f);
			fclose(f);
		}
		err[n] = '\0';
		unlink(errpath);
		return -EPERM;
	}
	unlink(errpath);
	np->made = true;
	if (sh("ip netns add %s", np->b) != 0 ||
	    sh("ip link add %.6sa%d type veth peer name %.6sb%d", prefix, id, prefix, id) != 0 ||
	    sh("ip link set %.6sa%d netns %s && ip link set %.6sb%d netns %s", prefix, id, np->a, prefix, id,
		np->b) != 0 ||
	    sh("ip -n %s addr add %s/24 dev %.6sa%d && ip -n %s link set %.6sa%d up && ip -n %s link set lo up",
		np->a, np->addr_a, prefix, id, np->a, prefix, id, np->a) != 0 ||
	    sh("ip -n %s addr add %s/24 dev %.6sb%d && ip -n %s link set %.6sb%d up && ip -n %s link set lo up",
		np->b, np->addr_b, prefix, id, np->b, prefix, id, np->b) != 0) {
		snprintf(err, errlen, "cannot set up the veth pair between %s and %s", np->a, np->b);
		netns_pair_destroy(np);
		return -EIO;
	}
	return 0;
}

void netns_pair_destroy(struct netns_pair *np)
{
	if (!np->made)
		return;
	sh("ip netns del %s 2>/dev/null", np->a);
	sh("ip netns del %s 2>/dev/null", np->b);
	np->made = false;
}

int page_server_argv(const char **argv, const char *netns, const char *dir, const char *listen)
{
	int n = 0;

	if (netns) {
		argv[n++] = "ip";
		argv[n++] = "netns";
		argv[n++] = "exec";
		argv[n++] = netns;
	}
	argv[n++] = ckpt_bin();
	argv[n++] = "page-server";
	argv[n++] = "-D";
	argv[n++] = dir;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--json";
	return n;
}

void suite_dir_make(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "/tmp/ckpt-%s-XXXXXX", name);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	setenv("CKPT_RUNDIR", dir, 1);
}

void suite_dir_remove(const char *dir, const char *first)
{
	char cmd[512];

	prog_kill_all();
	snprintf(cmd, sizeof(cmd), "%s%s rm -rf %s", first ? first : "", first ? ";" : "", dir);
	if (system(cmd) != 0)
		cr_log_warn("cannot remove %s", dir);
}

static pid_t load[16];
static int nload;

void load_start(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	for (long i = 0; i < 2 * cpus && nload < (int)(sizeof(load) / sizeof(load[0])); i++) {
		pid_t p = fork();

		cr_assert_geq(p, 0);
		if (p == 0) {
			alarm(900);
			for (volatile unsigned long x = 0;; x++)
				;
		}
		load[nload++] = p;
	}
}

void load_stop(void)
{
	for (int i = 0; i < nload; i++) {
		kill(load[i], SIGKILL);
		waitpid(load[i], NULL, 0);
	}
	nload = 0;
}

void prog_expect_checks_ok(struct prog *p, const char *what, int items)
{
	char line[512];
	int n = 0;

	cr_assert_eq(write(p->in_fd, "check\n", 6), 6);
	for (;;) {
		cr_assert_geq(prog_read_line(p, line, sizeof(line), 30000), 0, "%s: no answer after %d lines", what, n);
		if (strcmp(line, "done") == 0)
			break;
		n++;
		cr_log_info("%s: %s", what, line);
		cr_expect_not_null(strstr(line, " ok"), "%s: %s", what, line);
	}
	cr_expect_eq(n, items, "%s: %d items, not %d", what, n, items);
}

void prog_send_line(struct prog *p, const char *line)
{
	cr_assert_eq(write(p->in_fd, line, strlen(line)), (ssize_t)strlen(line));
}

bool proc_uffd_registered(pid_t pid)
{
	char path[64], line[512];
	FILE *f;
	bool uw = false;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmFlags:", 8) && strstr(line, " uw"))
			uw = true;
	if (f)
		fclose(f);
	return uw;
}
