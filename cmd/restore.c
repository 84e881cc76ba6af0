/* SPDX-License-Identifier: MIT */
/* ckpt restore: bring a checkpointed process back and (by default) wait for it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/log.h>
#include <ckpt/pagesrc.h>
#include <ckpt/restore.h>

#include "cmd.h"

static const char usage[] =
	"Usage: ckpt restore (-D DIR | --from URL) [--lazy [--lazy-socket PATH]]\n"
	"                    [--detach] [--pidfile FILE] [--restore-pid] [--leave-stopped]\n"
	"                    [--stdio inherit|null|FILE] [--inherit-fd fd[N]:KEY]... [--json]\n"
	"\n"
	"Restore the checkpoint DIR (a full one, or the newest delta of a chain) and\n"
	"let the process run on from where it was. By default ckpt waits for it and\n"
	"exits with its status, as a shell would, forwarding SIGINT, SIGTERM, SIGHUP and\n"
	"SIGQUIT to it; --detach returns at once and prints its pid.\n"
	"\n"
	"With --lazy the process runs at once and its anonymous memory comes on demand:\n"
	"a server ckpt starts (or the one at --lazy-socket PATH) serves its page faults\n"
	"and copies the rest in the background; once every page is in, the process\n"
	"runs on its own. If the server dies first, its faults wait (they never read\n"
	"zeros) until a new one takes over: see ckpt lazy-pages. A process tree comes\n"
	"back whole, lazily and from a page server too: one server serves them all.\n"
	"\n"
	"Options:\n"
	"  -D, --images-dir DIR   the checkpoint to restore\n"
	"      --from URL         or restore from a page server, tcp://ADDR:PORT, with\n"
	"                         no images here (see ckpt-page-server(1))\n"
	"      --token-file FILE  the page server's shared secret\n"
	"      --lazy             start it at once, bring its memory in on demand\n"
	"      --lazy-socket PATH hand it over to the lazy-pages server listening at\n"
	"                         PATH (ckpt lazy-pages --socket PATH)\n"
	"      --lazy-log FILE    --lazy --detach: where the server started for it logs\n"
	"                         (default RUNDIR/lazy-PID.log)\n"
	"  -d, --detach           do not wait for the process: print its pid and exit\n"
	"      --pidfile FILE     write its pid to FILE (before it runs)\n"
	"      --restore-pid      fail if the pid it had is taken (without it: that\n"
	"                         pid when free, else a new one and a warning; more\n"
	"                         than one thread: always its pid and thread ids)\n"
	"      --leave-stopped    leave it stopped (SIGSTOP) once restored\n"
	"      --stdio MODE       fds 0-2 that were a tty, or a pipe whose other end was\n"
	"                         not in the process: inherit ckpt's own, null\n"
	"                         (/dev/null), or a FILE to append to. Default: a tty\n"
	"                         inherits (/dev/null for a process of another user),\n"
	"                         such a pipe is refused (see --inherit-fd)\n"
	"      --inherit-fd fd[N]:KEY\n"
	"                         give the process ckpt's fd N in place of the pipe, fifo\n"
	"                         or tty KEY (pipe:[INODE], or a path) that ckpt dump\n"
	"                         named; repeatable. A fifo without it is opened again by\n"
	"                         its path, waiting for the other side. With --detach,\n"
	"                         ckpt's own stdout and stderr are given to the process\n"
	"                         only this way when they are pipes (else /dev/null)\n"
	"      --json             NDJSON: a line when it runs, one when every page is in\n"
	"                         (--lazy) and one when it ends\n"
	"  -v, --verbose          more messages\n"
	"  -h, --help             this help\n";

/* "fd[N]:KEY" (CRIU's --inherit-fd): our fd N, the object KEY of the checkpoint. */
static int parse_inherit_fd(const char *arg, struct ckpt_restore_inherit_fd *ret)
{
	char *end;
	long fd;

	if (strncmp(arg, "fd[", 3))
		return -EINVAL;
	errno = 0;
	fd = strtol(arg + 3, &end, 10);
	if (errno || end == arg + 3 || fd < 0 || fd > INT_MAX || strncmp(end, "]:", 2) || !end[2])
		return -EINVAL;
	ret->fd = (int)fd;
	ret->key = end + 2;
	return 0;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* SIGINT or SIGTERM, blocked and pending: the user asked to stop. 0: neither. */
static int pending_stop_signal(void)
{
	sigset_t p;

	if (sigpending(&p) < 0)
		return 0;
	return sigismember(&p, SIGINT) ? SIGINT : sigismember(&p, SIGTERM) ? SIGTERM : 0;
}

/* Wait for @pid, forwarding termination signals; its status as a shell reports it. */
static int wait_child(pid_t pid)
{
	sigset_t set;
	int status;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	for (;;) {
		siginfo_t si;
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return EXIT_FAIL;
		if (sigwaitinfo(&set, &si) < 0)
			continue;
		if (si.si_signo != SIGCHLD)
			kill(pid, si.si_signo);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static void report_restored(struct cmd_ctx *ctx, const struct ckpt_restore_opts *o,
			    const struct ckpt_restore_stats *st, size_t lazy_ranges, bool detach)
{
	if (ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "event", json_object_new_string("running"));
		json_object_object_add(j, "pid", json_object_new_int(st->pid));
		json_object_object_add(j, "images_dir", o->dir ? json_object_new_string(o->dir) : NULL);
		json_object_object_add(j, "from", o->from ? json_object_new_string(o->from) : NULL);
		json_object_object_add(j, "lazy", json_object_new_boolean(o->lazy));
		json_object_object_add(j, "chain_length", json_object_new_uint64(st->chain_length));
		json_object_object_add(j, "mappings", json_object_new_uint64(st->nr_vmas));
		json_object_object_add(j, "files", json_object_new_uint64(st->nr_fds));
		json_object_object_add(j, "pages_data", json_object_new_uint64(st->pages_data));
		json_object_object_add(j, "pages_zero", json_object_new_uint64(st->pages_zero));
		json_object_object_add(j, "bytes_written", json_object_new_uint64(st->bytes_written));
		if (o->lazy)
			json_object_object_add(j, "lazy_ranges", json_object_new_uint64(lazy_ranges));
		json_object_object_add(j, "check_ms", out_json_double(ms(st->check_ns), 3));
		json_object_object_add(j, "pages_ms", out_json_double(ms(st->pages_ns), 3));
		json_object_object_add(j, "restore_ms", out_json_double(ms(st->total_ns), 3));
		out_json(j, true);
		json_object_put(j);
	} else if (detach) {
		printf("%d\n", st->pid);
		out_flush();
	} else {
		ckpt_log(CKPT_LOG_INFO, "restore", "restored pid %d from '%s' in %.1f ms%s", st->pid,
			 o->dir ? o->dir : o->from, ms(st->total_ns), o->lazy ? " (lazy)" : "");
	}
}

/* The processes of a lazy restore as the lazy-pages server takes them, with their page sources. */
struct lazy_set {
	struct ckpt_lazy_target *t;
	struct ckpt_lazy_source *src;
	char **dirs;
	size_t nr;
};

/* The sources handed over stay open in a forked server: ours are closed here. */
static void lazy_set_done(struct lazy_set *ls)
{
	for (size_t i = 0; i < ls->nr; i++) {
		free(ls->dirs[i]);
		ckpt_page_source_close(ls->src[i].opened);
	}
	free(ls->dirs);
	free(ls->t);
	free(ls->src);
	memset(ls, 0, sizeof(*ls));
}

/*
 * Each process's own checkpoint: DIR for the root, DIR/proc-PID for the
 * others (or the same under the page server), and the source restore read
 * it from, still open (taken from @lz).
 */
static int lazy_set_init(struct lazy_set *ls, struct ckpt_restore_lazy *lz,
			 const struct ckpt_restore_opts *o, const struct ckpt_restore_stats *st)
{
	ls->t = calloc(lz->nr, sizeof(*ls->t));
	ls->src = calloc(lz->nr, sizeof(*ls->src));
	ls->dirs = calloc(lz->nr, sizeof(*ls->dirs));
	if (!ls->t || !ls->src || !ls->dirs)
		return -ENOMEM;
	for (size_t i = 0; i < lz->nr; i++) {
		struct ckpt_restore_lazy_proc *p = &lz->procs[i];
		bool top = !strcmp(p->dir, ".");

		ls->nr++;
		ls->t[i] = (struct ckpt_lazy_target){
			.pid = p->pid, .uffd = p->uffd, .parked_fd = p->parked_fd, .ranges = p->ranges,
			.nr_ranges = p->nr_ranges, .resume_ns = st->total_ns, .eager_pages = p->eager_pages,
		};
		ls->src[i] = (struct ckpt_lazy_source){ .url = o->from, .token_file = o->token_file,
							.id = p->id[0] ? p->id : NULL, .prov = &p->prov,
							.opened = TAKE_PTR(p->src) };
		if (o->from) {
			ls->src[i].proc = top ? NULL : p->dir;
			continue;
		}
		if (top ? !(ls->dirs[i] = strdup(o->dir)) : asprintf(&ls->dirs[i], "%s/%s", o->dir, p->dir) < 0) {
			ls->dirs[i] = NULL;
			return -ENOMEM;
		}
		ls->src[i].dir = ls->dirs[i];
	}
	return 0;
}

/*
 * The lazy-pages server of this restore, one for every process of the
 * tree: a process of its own, so that its ptrace (to close the parked uffd
 * at the end) never mixes with our wait for the restored process, and so
 * that it outlives us if we are killed. Waiting: it shares our stdout and
 * stderr. Detached: it leaves our session and logs to a file. It says on a
 * pipe when it serves them all.
 */
static int serve_forked(struct cmd_ctx *ctx, const struct lazy_set *ls, bool detach, const char *log_file,
			pid_t *ret_pid)
{
	char path[PATH_MAX], ok = 0;
	int fd = -1, pfd[2];
	pid_t d;

	if (detach) {
		if (log_file) {
			snprintf(path, sizeof(path), "%s", log_file);
		} else {
			snprintf(path, sizeof(path), "%s/lazy-%d.log", ckpt_lazy_default_rundir(), ls->t[0].pid);
			(void)mkdir(ckpt_lazy_default_rundir(), 0700);
		}
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0) {
			int e = -errno;

			ckpt_log(CKPT_LOG_ERROR, "restore", "cannot open the log '%s': %s", path, strerror(-e));
			return e;
		}
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		int e = -errno;

		if (fd >= 0)
			close(fd);
		return e;
	}
	fflush(NULL);
	d = fork();
	if (d < 0) {
		int e = -errno;

		if (fd >= 0)
			close(fd);
		close(pfd[0]);
		close(pfd[1]);
		return e;
	}
	if (d == 0) {
		struct cmd_lazy_out out = { .ctx = ctx };
		struct ckpt_lazy_opts lo = { .on_done = cmd_lazy_on_done, .userdata = &out };
		struct ckpt_lazy_server *s = NULL;
		int r;

		close(pfd[0]);
		if (detach) {
			int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

			setsid();
			if (devnull >= 0)
				dup2(devnull, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			ckpt_log(CKPT_LOG_INFO, "lazy", "serving pid %d%s (server pid %d)", ls->t[0].pid,
				 ls->nr > 1 ? " and its tree" : "", getpid());
		}
		r = ckpt_lazy_server_new(&lo, &s);
		for (size_t i = 0; r == 0 && i < ls->nr; i++) {
			r = ckpt_lazy_server_add(s, &ls->t[i], &ls->src[i]);
			if (r < 0)
				_exit(out_finish(ctx, out_error(ctx, EXIT_FAIL, "cannot serve pid %d: %s",
								ls->t[i].pid, strerror(-r))));
		}
		if (r < 0)
			_exit(out_finish(ctx, out_error(ctx, EXIT_FAIL, "cannot serve pid %d: %s", ls->t[0].pid,
							strerror(-r))));
		(void)!write(pfd[1], "1", 1);
		close(pfd[1]);
		r = cmd_lazy_serve(ctx, s, -1);
		ckpt_lazy_server_free(s);
		_exit(out_finish(ctx, r != EXIT_OK ? r : out.lost ? EXIT_FAIL : EXIT_OK));
	}
	if (fd >= 0)
		close(fd);
	close(pfd[1]);
	while (read(pfd[0], &ok, 1) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	if (ok != '1') {
		while (waitpid(d, NULL, 0) < 0 && errno == EINTR)
			;
		return -EPIPE;
	}
	*ret_pid = d;
	return 0;
}

static int run(struct cmd_ctx *ctx, int argc, char **argv)
{
	enum { OPT_FROM = 256, OPT_TOKEN, OPT_LAZY, OPT_LAZY_SOCKET, OPT_LAZY_LOG, OPT_INHERIT_FD };
	static const struct option longopts[] = {
		CMD_COMMON_LONGOPTS,
		{ "images-dir", required_argument, NULL, 'D' },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "token-file", required_argument, NULL, OPT_TOKEN },
		{ "lazy", no_argument, NULL, OPT_LAZY },
		{ "lazy-socket", required_argument, NULL, OPT_LAZY_SOCKET },
		{ "lazy-log", required_argument, NULL, OPT_LAZY_LOG },
		{ "detach", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "restore-pid", no_argument, NULL, 'P' },
		{ "leave-stopped", no_argument, NULL, 'S' },
		{ "stdio", required_argument, NULL, 's' },
		{ "inherit-fd", required_argument, NULL, OPT_INHERIT_FD },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	struct ckpt_restore_opts o = { 0 };
	_cleanup_free_ struct ckpt_restore_inherit_fd *inherit = NULL;
	struct ckpt_restore_stats st;
	struct ckpt_restore_lazy lz = { 0 };
	_cleanup_free_ char *dir = NULL;
	const char *lazy_socket = NULL, *lazy_log = NULL;
	pid_t server = 0;
	size_t lazy_ranges = 0;
	bool detach = false;
	sigset_t set;
	int c, r, sig;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "hD:dv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cmd_print_help(&cmd_restore);
		case 'D':
			o.dir = optarg;
			break;
		case OPT_FROM:
			o.from = optarg;
			break;
		case OPT_TOKEN:
			o.token_file = optarg;
			break;
		case OPT_LAZY:
			o.lazy = true;
			break;
		case OPT_LAZY_SOCKET:
			lazy_socket = optarg;
			break;
		case OPT_LAZY_LOG:
			lazy_log = optarg;
			break;
		case 'd':
			detach = true;
			break;
		case 'p':
			o.pidfile = optarg;
			break;
		case 'P':
			o.restore_pid = true;
			break;
		case 'S':
			o.leave_stopped = true;
			break;
		case 's':
			if (!strcmp(optarg, "inherit")) {
				o.stdio = CKPT_STDIO_INHERIT;
			} else if (!strcmp(optarg, "null")) {
				o.stdio = CKPT_STDIO_NULL;
			} else if (!*optarg) {
				return out_usage_error(ctx, "--stdio needs inherit, null or a file");
			} else {
				o.stdio = CKPT_STDIO_FILE;
				o.stdio_file = optarg;
			}
			break;
		case OPT_INHERIT_FD: {
			struct ckpt_restore_inherit_fd *n, in;

			if (parse_inherit_fd(optarg, &in) < 0)
				return out_usage_error(ctx, "--inherit-fd needs fd[N]:KEY, e.g. "
						       "fd[0]:pipe:[12345], not '%s'", optarg);
			n = reallocarray(inherit, o.nr_inherit_fds + 1, sizeof(*n));
			if (!n)
				return out_error(ctx, EXIT_FAIL, "out of memory");
			inherit = n;
			inherit[o.nr_inherit_fds++] = in;
			break;
		}
		default:
			if ((r = cmd_common_option(ctx, c, argv)) != 0)
				return r;
			break;
		}
	}
	if (optind < argc)
		return out_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	o.inherit_fds = inherit;
	o.detach = detach;
	if (!o.dir && !o.from)
		return out_usage_error(ctx, "which checkpoint? give -D DIR or --from URL");
	if (o.dir && o.from)
		return out_usage_error(ctx, "-D and --from are exclusive");
	if (o.token_file && !o.from)
		return out_usage_error(ctx, "--token-file goes with --from");
	if (lazy_socket && !o.lazy)
		return out_usage_error(ctx, "--lazy-socket goes with --lazy");
	if (lazy_log && (!o.lazy || !detach || lazy_socket))
		return out_usage_error(ctx, "--lazy-log goes with --lazy --detach (and no --lazy-socket)");
	if (o.lazy && o.dir) {
		/* The server may run elsewhere (another cwd): an absolute path. */
		dir = realpath(o.dir, NULL);
		if (!dir)
			return out_error(ctx, EXIT_FAIL, "cannot restore '%s': %s", o.dir, strerror(errno));
		o.dir = dir;
	}
	if (lazy_socket && access(lazy_socket, W_OK) < 0)
		return out_error(ctx, EXIT_FAIL, "no lazy-pages server at '%s': %s", lazy_socket,
				 strerror(errno));

	/* Signals are forwarded once it runs: keep them until then. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, NULL);

	r = ckpt_restore_run(&o, &st, o.lazy ? &lz : NULL);
	if (r < 0 && (sig = pending_stop_signal()) != 0) {
		/* Waiting for a page server (--from) is cut short by them; nothing runs. */
		ctx->raise_signal = sig; /* main() dies of it after the output */
		return out_error(ctx, 128 + sig, "restore of '%s' interrupted by %s: nothing was restored",
				 o.dir ? o.dir : o.from, sig == SIGINT ? "SIGINT" : "SIGTERM");
	}
	if (r < 0)
		return out_error(ctx, EXIT_FAIL, "cannot restore '%s'", o.dir ? o.dir : o.from);
	if (o.lazy) {
		struct lazy_set ls = { 0 };

		for (size_t i = 0; i < lz.nr; i++)
			lazy_ranges += lz.procs[i].nr_ranges;
		r = lazy_set_init(&ls, &lz, &o, &st);
		if (r == 0 && lazy_socket) {
			/* One handover per process: the server takes each with its uffd. */
			for (size_t i = 0; r == 0 && i < ls.nr; i++)
				r = ckpt_lazy_handover(lazy_socket, &ls.t[i], &ls.src[i]);
		} else if (r == 0) {
			r = serve_forked(ctx, &ls, detach, lazy_log, &server);
		}
		lazy_set_done(&ls);
		if (r < 0) {
			/* Nobody can serve their memory: the restore failed. Children first. */
			for (size_t i = lz.nr; i-- > 0;)
				if (lz.procs[i].pid > 0)
					kill(lz.procs[i].pid, SIGKILL);
			ckpt_restore_lazy_done(&lz);
			waitpid(st.pid, NULL, 0);
			return out_error(ctx, EXIT_FAIL,
					 "cannot serve the memory of pid %d%s (killed): the restore of '%s' failed",
					 st.pid, st.processes > 1 ? " and its tree" : "", o.dir ? o.dir : o.from);
		}
		ckpt_restore_lazy_done(&lz);
	}
	report_restored(ctx, &o, &st, lazy_ranges, detach);
	if (detach)
		return EXIT_OK;
	ctx->code_is_status = true; /* lost output is reported, the status stays the process's */
	r = wait_child(st.pid);
	if (server > 0) {
		int status;

		/* Its children may still need pages: the server ends when they have them all. */
		while (waitpid(server, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			ckpt_log(CKPT_LOG_ERROR, "lazy", "the lazy-pages server of pid %d failed", st.pid);
	}
	if (ctx->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "event", json_object_new_string("exit"));
		json_object_object_add(j, "pid", json_object_new_int(st.pid));
		json_object_object_add(j, "status", json_object_new_int(r));
		out_json(j, true);
		json_object_put(j);
	}
	return r;
}

const struct command cmd_restore = {
	.name = "restore",
	.fn = run,
	.summary = "restore a checkpoint and let the process run on",
	.usage = usage,
};
