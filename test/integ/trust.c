/* SPDX-License-Identifier: MIT */
/*
 * The trust model (docs/SECURITY.md): a restore by root never yields more
 * privilege than whoever can write the checkpoint has. The checkpoints here
 * are of a process of nobody's, owned by nobody (as `ckpt dump` run by
 * nobody, or a copy handed over, leaves them), then edited as nobody could
 * (the checksums recomputed): root credentials and capabilities, a file of
 * root's opened read-write or mapped shared, a working directory nobody
 * cannot enter. Each must be refused, or fail, before anything of root's is
 * touched. A checkpoint that a group or everyone can write, or two users,
 * is nobody's to vouch for: refused. A page server run by nobody on
 * loopback speaks for nobody.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/testutil.h"
#include "util/xxhash.h"

#define NOBODY 65534


static char tmp[64];
static char pub[96]; /* searchable by everyone: nobody's checkpoints and page server */

static void setup(void)
{
	suite_dir_make(tmp, sizeof(tmp), "trust");
	snprintf(pub, sizeof(pub), "%s/pub", tmp);
	cr_assert_eq(mkdir(pub, 0755), 0);
	cr_assert_eq(chmod(tmp, 0755), 0);
}

static void teardown(void)
{
	suite_dir_remove(tmp, NULL);
}

TestSuite(trust, .init = setup, .fini = teardown, .timeout = 120);

/* ---- checkpoints, as their owner could edit them ---- */

static json_object *doc_read(const char *dir, const char *name)
{
	char path[256];
	json_object *o;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	o = json_object_from_file(path);
	cr_assert_not_null(o, "cannot parse '%s'", path);
	return o;
}

/* Write document @name of @dir, and its checksum into the inventory. */
static void doc_write(const char *dir, const char *name, json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	char path[256], sum[40];
	json_object *inv = doc_read(dir, "inventory.json"), *files;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	fclose(f);
	snprintf(sum, sizeof(sum), "xxh64:%016llx", (unsigned long long)xxh64(text, strlen(text), 0));
	cr_assert(json_object_object_get_ex(inv, "files", &files));
	json_object_object_add(files, name, json_object_new_string(sum));
	snprintf(path, sizeof(path), "%s/inventory.json", dir);
	cr_assert_eq(json_object_to_file_ext(path, inv, JSON_C_TO_STRING_PRETTY), 0);
	json_object_put(inv);
	json_object_put(o);
}

static void identity_of(const char *path, json_object *id)
{
	struct stat st;
	char hex[32];

	cr_assert_eq(stat(path, &st), 0);
	json_object_object_add(id, "dev_major", json_object_new_int((int)major(st.st_dev)));
	json_object_object_add(id, "dev_minor", json_object_new_int((int)minor(st.st_dev)));
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)st.st_ino);
	json_object_object_add(id, "ino", json_object_new_string(hex));
	json_object_object_add(id, "mode", json_object_new_int((int)st.st_mode));
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)st.st_size);
	json_object_object_add(id, "size", json_object_new_string(hex));
	json_object_object_add(id, "mtime_sec", json_object_new_int64(st.st_mtim.tv_sec));
	json_object_object_add(id, "mtime_nsec", json_object_new_int64(st.st_mtim.tv_nsec));
	json_object_object_add(id, "rdev_major", json_object_new_int(0));
	json_object_object_add(id, "rdev_minor", json_object_new_int(0));
}

/* A file of root's, mode 0600, that nobody may neither read nor write. */
static void make_secret(char *path, size_t len, size_t size)
{
	char *buf = malloc(size);
	int fd;

	snprintf(path, len, "%s/secret", pub);
	memset(buf, 'S', size);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, size), (ssize_t)size);
	close(fd);
	free(buf);
}

static void expect_secret_intact(const char *path, size_t size)
{
	char *buf = malloc(size + 1);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0);
	n = read(fd, buf, size + 1);
	close(fd);
	cr_expect_eq(n, (ssize_t)size, "'%s' is %zd bytes now, not %zu", path, n, size);
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] != 'S') {
			cr_expect_fail("'%s' was written at byte %zd", path, i);
			break;
		}
	free(buf);
}

/* ---- a process of nobody's ---- */

/* test/progs/target counter started as nobody (stderr /dev/null), once it ticks. */
static void start_nobody_counter(struct prog *p)
{
	char target[256], line[256];
	const char *argv[] = { "/bin/sh", "-c", STDERR_NULL, "setpriv", "--reuid", "nobody", "--regid",
			       "nogroup", "--clear-groups", "--", prog_path("target", target, sizeof(target)),
			       "counter", NULL };

	if (access("/usr/bin/setpriv", X_OK) < 0)
		cr_skip_test("setpriv(1) is not installed");
	cr_assert_eq(prog_spawn(p, false, NULL, argv), 0);
	do
		cr_assert_geq(prog_read_line(p, line, sizeof(line), 5000), 0, "target counter did not start");
	while (strncmp(line, "tick", 4));
}

/* @pid runs or sleeps (D included: a fault on a cold page cache). One reading:
 * CI once failed with 'state S', the condition's reading and the message's
 * being two different ones. */
static void expect_alive(pid_t pid)
{
	char st = proc_state(pid);

	cr_expect(st == 'R' || st == 'S' || st == 'D', "pid %d is in state '%c', not running or sleeping", pid,
		  st ? st : '?');
}

/* target counter as nobody, dumped (killed) by root into pub/NAME, chowned to nobody. */
static pid_t nobody_checkpoint(const char *name, char *dir, size_t len)
{
	char ps[16];
	struct run_result r;
	struct prog p;
	pid_t pid;

	snprintf(dir, len, "%s/%s", pub, name);
	start_nobody_counter(&p);
	pid = p.pid;
	snprintf(ps, sizeof(ps), "%d", pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_wait(&p, 2000);
	prog_kill(&p);
	cr_assert_eq(sh("chown -R nobody:nogroup '%s'", dir), 0);
	return pid;
}

/* ckpt restore -D @dir --detach: the new process's pid, or 0 with @err filled. */
static pid_t restore_detached(const char *dir, char *err, size_t errlen)
{
	struct run_result r;
	pid_t pid = 0;

	cr_assert_eq(run_ckpt(&r, "restore", "-D", dir, "--detach", "--stdio", "null", NULL), 0);
	if (r.status == 0) {
		pid = atoi(r.out);
		prog_track_pid(pid);
	}
	snprintf(err, errlen, "exit %d: %s", r.status, r.err);
	run_result_done(&r);
	return pid;
}

static void status_field(pid_t pid, const char *key, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "pid %d is gone", pid);
	buf[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':') {
			snprintf(buf, len, "%s", line + strlen(key) + 1);
			buf[strcspn(buf, "\n")] = '\0';
		}
	fclose(f);
}

/* Refused with a message containing @want, and no process of the checkpoint's pid left. */
static void expect_refused(const char *dir, pid_t orig, const char *want)
{
	char err[4096];
	pid_t pid = restore_detached(dir, err, sizeof(err));

	cr_expect_eq(pid, 0, "restored as pid %d", pid);
	if (pid > 0)
		kill(pid, SIGKILL);
	cr_expect(strstr(err, want), "expected '%s' in: %s", want, err);
	cr_expect(kill(orig, 0) < 0 && errno == ESRCH, "pid %d exists after the refused restore", orig);
}

Test(trust, a_users_checkpoint_comes_back_with_that_users_privileges)
{
	char dir[160], err[4096], v[256];
	pid_t pid;

	nobody_checkpoint("plain", dir, sizeof(dir));
	pid = restore_detached(dir, err, sizeof(err));
	cr_assert_gt(pid, 0, "%s", err);
	status_field(pid, "Uid", v, sizeof(v));
	cr_expect_str_eq(v, "\t65534\t65534\t65534\t65534");
	status_field(pid, "Gid", v, sizeof(v));
	cr_expect_str_eq(v, "\t65534\t65534\t65534\t65534");
	status_field(pid, "CapEff", v, sizeof(v));
	cr_expect_str_eq(v, "\t0000000000000000");
	status_field(pid, "CapPrm", v, sizeof(v));
	cr_expect_str_eq(v, "\t0000000000000000");
	status_field(pid, "Groups", v, sizeof(v));
	cr_expect(strspn(v, "\t ") == strlen(v), "groups '%s'", v);
	usleep(100000);
	expect_alive(pid);
	kill(pid, SIGKILL);
}

/* The checkpoint in @dir now says its process ran as root (uid 0 four times). */
static void forge_root_uid(const char *dir)
{
	json_object *p = doc_read(dir, "process.json"), *c, *ids = json_object_new_array();

	cr_assert(json_object_object_get_ex(p, "creds", &c));
	for (int i = 0; i < 4; i++)
		json_object_array_add(ids, json_object_new_int(0));
	json_object_object_add(c, "uid", ids);
	doc_write(dir, "process.json", p);
}

Test(trust, root_credentials_written_into_a_users_checkpoint_are_refused)
{
	char dir[160];
	pid_t orig = nobody_checkpoint("uid0", dir, sizeof(dir));

	forge_root_uid(dir);
	expect_refused(dir, orig, "its real uid is 0");
}

Test(trust, capabilities_written_into_a_users_checkpoint_are_refused)
{
	char dir[160];
	pid_t orig = nobody_checkpoint("caps", dir, sizeof(dir));
	json_object *p = doc_read(dir, "process.json"), *c;

	cr_assert(json_object_object_get_ex(p, "creds", &c));
	json_object_object_add(c, "cap_prm", json_object_new_string("0x1fffeffffff"));
	json_object_object_add(c, "cap_eff", json_object_new_string("0x1fffeffffff"));
	doc_write(dir, "process.json", p);
	expect_refused(dir, orig, "it has capabilities");
}

Test(trust, a_root_file_opened_read_write_by_a_users_checkpoint_is_not_opened)
{
	char dir[160], secret[160];
	pid_t orig = nobody_checkpoint("fd", dir, sizeof(dir));
	json_object *f = doc_read(dir, "files.json"), *fds, *fd0, *id;

	make_secret(secret, sizeof(secret), 4096);
	cr_assert(json_object_object_get_ex(f, "fds", &fds));
	fd0 = json_object_array_get_idx(fds, 0);
	json_object_object_add(fd0, "kind", json_object_new_string("regular"));
	json_object_object_add(fd0, "path", json_object_new_string(secret));
	json_object_object_add(fd0, "flags", json_object_new_int(O_RDWR | O_LARGEFILE));
	cr_assert(json_object_object_get_ex(fd0, "identity", &id));
	identity_of(secret, id);
	doc_write(dir, "files.json", f);
	expect_refused(dir, orig, "Permission denied");
	expect_secret_intact(secret, 4096);
}

/* The heap made a shared mapping of root's file: its pages would be written into the file. */
Test(trust, a_root_file_mapped_shared_by_a_users_checkpoint_is_not_written)
{
	char dir[160], secret[160];
	pid_t orig = nobody_checkpoint("map", dir, sizeof(dir));
	json_object *m = doc_read(dir, "mm.json"), *vmas, *heap = NULL, *id, *flags;

	make_secret(secret, sizeof(secret), 1 << 20);
	cr_assert(json_object_object_get_ex(m, "vmas", &vmas));
	for (size_t i = 0; i < json_object_array_length(vmas); i++) {
		json_object *v = json_object_array_get_idx(vmas, i), *k;

		if (json_object_object_get_ex(v, "kind", &k) && !strcmp(json_object_get_string(k), "heap"))
			heap = v;
	}
	cr_assert_not_null(heap, "target counter has no heap");
	json_object_object_add(heap, "kind", json_object_new_string("file"));
	json_object_object_add(heap, "path", json_object_new_string(secret));
	json_object_object_add(heap, "shared", json_object_new_boolean(1));
	json_object_object_add(heap, "offset", json_object_new_string("0x0"));
	json_object_object_add(heap, "deleted", json_object_new_boolean(0));
	id = json_object_new_object();
	identity_of(secret, id);
	json_object_object_add(heap, "identity", id);
	flags = json_object_new_array();
	json_object_array_add(flags, json_object_new_string("maywrite"));
	json_object_object_add(heap, "vmflags", flags);
	doc_write(dir, "mm.json", m);
	expect_refused(dir, orig, "Permission denied");
	expect_secret_intact(secret, 1 << 20);
}

Test(trust, a_directory_the_user_cannot_enter_is_not_entered)
{
	char dir[160], priv[160];
	pid_t orig = nobody_checkpoint("cwd", dir, sizeof(dir));
	json_object *p = doc_read(dir, "process.json");

	snprintf(priv, sizeof(priv), "%s/private", tmp);
	cr_assert_eq(mkdir(priv, 0700), 0);
	json_object_object_add(p, "cwd", json_object_new_string(priv));
	doc_write(dir, "process.json", p);
	expect_refused(dir, orig, "Permission denied");
}

Test(trust, a_chroot_in_a_users_checkpoint_is_refused)
{
	char dir[160];
	pid_t orig = nobody_checkpoint("root", dir, sizeof(dir));
	json_object *p = doc_read(dir, "process.json");

	json_object_object_add(p, "root", json_object_new_string(tmp));
	doc_write(dir, "process.json", p);
	expect_refused(dir, orig, "its root directory is");
}

Test(trust, a_checkpoint_its_group_or_everyone_can_write_is_refused)
{
	char dir[160];
	pid_t orig = nobody_checkpoint("gw", dir, sizeof(dir));

	cr_assert_eq(sh("chown -R root:root '%s' && chmod g+w '%s/process.json'", dir, dir), 0);
	expect_refused(dir, orig, "can be written by every member of its group");
	cr_assert_eq(sh("chmod g-w '%s/process.json' && chmod 0777 '%s'", dir, dir), 0);
	expect_refused(dir, orig, "can be written by everyone");
	/* Root's own and nobody else's again: restored with its credentials. */
	cr_assert_eq(sh("chmod 0700 '%s'", dir), 0);
	{
		char err[4096], v[256];
		pid_t pid = restore_detached(dir, err, sizeof(err));

		cr_assert_gt(pid, 0, "%s", err);
		status_field(pid, "Uid", v, sizeof(v));
		cr_expect_str_eq(v, "\t65534\t65534\t65534\t65534");
		kill(pid, SIGKILL);
	}
}

Test(trust, a_checkpoint_two_users_can_write_is_refused)
{
	char dir[160];
	pid_t orig = nobody_checkpoint("two", dir, sizeof(dir));

	cr_assert_eq(sh("chown daemon '%s/mm.json'", dir), 0);
	expect_refused(dir, orig, "two users can change it");
}

/* A page server nobody runs on loopback, without a token. */
static pid_t nobody_page_server(const char *dir, char *url, size_t len)
{
	char line[1024];
	json_object *j, *v;
	struct prog s = { .in_fd = -1 };
	int o[2];

	cr_assert_eq(pipe2(o, O_CLOEXEC), 0);
	s.pid = fork();
	cr_assert_geq(s.pid, 0);
	if (s.pid == 0) {
		dup2(o[1], 1);
		if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(126);
		execl(ckpt_bin(), ckpt_bin(), "page-server", "-D", dir, "--listen", "127.0.0.1:0", "--json",
		      (char *)NULL);
		_exit(127);
	}
	close(o[1]);
	s.out_fd = o[0];
	prog_track_pid(s.pid);
	cr_assert_geq(prog_read_line(&s, line, sizeof(line), 10000), 0, "the page server did not start");
	j = json_tokener_parse(line);
	cr_assert(j && json_object_object_get_ex(j, "address", &v), "%s", line);
	snprintf(url, len, "tcp://%s", json_object_get_string(v));
	json_object_put(j);
	return s.pid;
}

Test(trust, a_page_server_run_by_a_user_speaks_for_that_user)
{
	char dir[160], url[128], v[256];
	pid_t orig = nobody_checkpoint("served", dir, sizeof(dir)), srv, pid;
	struct run_result r;

	srv = nobody_page_server(dir, url, sizeof(url));
	cr_assert_eq(run_ckpt(&r, "restore", "--from", url, "--detach", "--stdio", "null", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	pid = atoi(r.out);
	run_result_done(&r);
	prog_track_pid(pid);
	status_field(pid, "Uid", v, sizeof(v));
	cr_expect_str_eq(v, "\t65534\t65534\t65534\t65534");
	status_field(pid, "CapEff", v, sizeof(v));
	cr_expect_str_eq(v, "\t0000000000000000");
	kill(pid, SIGKILL);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	while (kill(orig, 0) == 0)
		usleep(10000); /* a zombie of ours until reaped: gone once kill says ESRCH */

	/* The same checkpoint given root's credentials, served by nobody: refused. */
	forge_root_uid(dir);
	cr_assert_eq(sh("chown -R nobody:nogroup '%s'", dir), 0);
	srv = nobody_page_server(dir, url, sizeof(url));
	cr_assert_eq(run_ckpt(&r, "restore", "--from", url, "--detach", "--stdio", "null", NULL), 0);
	cr_expect_neq(r.status, 0, "restored from nobody's server with root's credentials: %s", r.out);
	cr_expect(strstr(r.err, "its real uid is 0"), "%s", r.err);
	if (r.status == 0)
		kill(atoi(r.out), SIGKILL);
	run_result_done(&r);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
}

Test(trust, a_user_cannot_restore_another_users_checkpoint)
{
	char dir[160];
	const char *argv[] = { "setpriv", "--reuid", "daemon", "--regid", "daemon", "--clear-groups", "--",
			       ckpt_bin(), "restore", "-D", dir, "--detach", "--stdio", "null", NULL };
	struct run_result r;

	nobody_checkpoint("other", dir, sizeof(dir));
	/* Readable by all: the kernel does not stop daemon, ckpt must. */
	cr_assert_eq(sh("chmod -R go+rX '%s'", dir), 0);
	cr_assert_eq(run_argv(argv, &r), 0);
	cr_expect_neq(r.status, 0, "daemon restored nobody's checkpoint: %s", r.out);
	cr_expect(strstr(r.err, "not you (uid 1) or root"), "%s", r.err);
	run_result_done(&r);
}

/*
 * Root's compact of a user's chain folds it as that user: the full
 * checkpoint it makes of the user's deltas is the user's (a root-owned one
 * would be trusted with whatever the user wrote into them).
 */
Test(trust, a_users_chain_folded_by_root_stays_the_users)
{
	char series[160], d0[200], d1[200], line[256], ps[16], err[4096], v[256];
	struct run_result r;
	struct stat st;
	struct prog p;
	pid_t pid;

	snprintf(series, sizeof(series), "%s/series", pub);
	cr_assert_eq(mkdir(series, 0755), 0);
	snprintf(d0, sizeof(d0), "%s/1", series);
	snprintf(d1, sizeof(d1), "%s/2", series);
	start_nobody_counter(&p);
	snprintf(ps, sizeof(ps), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", d0, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", d1, "--parent", d0, NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_wait(&p, 2000);
	prog_kill(&p);
	cr_assert_eq(sh("chown -R nobody:nogroup '%s'", series), 0);

	cr_assert_eq(run_ckpt(&r, "compact", series, "--keep", "1", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(stat(d1, &st), 0, "the newest checkpoint is gone");
	cr_expect_eq(st.st_uid, NOBODY, "the folded checkpoint is owned by uid %u", st.st_uid);
	snprintf(line, sizeof(line), "%s/process.json", d1);
	cr_assert_eq(stat(line, &st), 0);
	cr_expect_eq(st.st_uid, NOBODY, "its process.json is owned by uid %u", st.st_uid);
	pid = restore_detached(d1, err, sizeof(err));
	cr_assert_gt(pid, 0, "%s", err);
	status_field(pid, "Uid", v, sizeof(v));
	cr_expect_str_eq(v, "\t65534\t65534\t65534\t65534");
	kill(pid, SIGKILL);
}

/* ---- restoring without root ---- */

static void restore_as_nobody(const char *bin, const char *dir, struct run_result *r)
{
	const char *argv[] = { "setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--",
			       bin, "restore", "-D", dir, "--detach", "--stdio", "null", NULL };

	cr_assert_eq(run_argv(argv, r), 0);
}

Test(trust, a_user_without_cap_checkpoint_restore_is_told_what_is_missing)
{
	char dir[160];
	struct run_result r;
	pid_t orig = nobody_checkpoint("nocap", dir, sizeof(dir));

	restore_as_nobody(ckpt_bin(), dir, &r);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "needs CAP_CHECKPOINT_RESTORE"), "%s", r.err);
	run_result_done(&r);
	cr_expect(kill(orig, 0) < 0 && errno == ESRCH, "pid %d exists after the refused restore", orig);
}

Test(trust, a_user_restores_their_own_process_with_cap_checkpoint_restore)
{
	char dir[160], bin[200], v[256];
	struct run_result r;
	pid_t orig, pid;

	if (access("/usr/sbin/setcap", X_OK) < 0)
		cr_skip_test("setcap(8) is not installed");
	orig = nobody_checkpoint("cap", dir, sizeof(dir));
	snprintf(bin, sizeof(bin), "%s/ckpt-cap", pub);
	cr_assert_eq(sh("cp '%s' '%s' && chmod 755 '%s' && setcap cap_checkpoint_restore+ep '%s'", ckpt_bin(),
			bin, bin, bin), 0);
	restore_as_nobody(bin, dir, &r);
	cr_assert_eq(r.status, 0, "%s", r.err);
	pid = atoi(r.out);
	run_result_done(&r);
	prog_track_pid(pid);
	cr_expect_eq(pid, orig, "the process came back as pid %d, not %d", pid, orig);
	status_field(pid, "Uid", v, sizeof(v));
	cr_expect_str_eq(v, "\t65534\t65534\t65534\t65534");
	status_field(pid, "CapPrm", v, sizeof(v));
	cr_expect_str_eq(v, "\t0000000000000000", "the capability of ckpt stayed in the process");
	usleep(100000);
	expect_alive(pid);
	kill(pid, SIGKILL);
}

/* The uid /proc/net/tcp gives the listening socket on 127.0.0.1:@port, or -1. */
static long tcp_listener_uid(unsigned int port)
{
	char line[512];
	FILE *f = fopen("/proc/net/tcp", "r");
	long uid = -1;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned int lport, st;
		long u;

		if (sscanf(line, " %*d: %*8s:%4X %*8s:%*4X %2X %*8s:%*8s %*2s:%*8s %*8s %ld", &lport, &st, &u) == 3 &&
		    lport == port && st == 0x0A)
			uid = u;
	}
	fclose(f);
	return uid;
}

/*
 * A socket carries its maker's credentials for as long as it lives (its
 * owner in /proc/net/tcp, SO_PEERCRED, netlink's capability checks): in a
 * user's checkpoint restored by root, ckpt makes them as that user.
 */
Test(trust, sockets_of_a_users_checkpoint_are_the_users)
{
	const char *argv[] = { "/bin/sh", "-c", STDERR_NULL, "setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--",
			       "/usr/bin/python3", "-c",
			       "import socket,sys,time\n"
			       "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n"
			       "print(s.getsockname()[1], flush=True)\n"
			       "time.sleep(1000)\n", NULL };
	char dir[160], line[64], ps[16], err[4096];
	struct run_result r;
	struct prog p;
	unsigned int port;
	pid_t pid;

	if (access("/usr/bin/python3", X_OK) < 0)
		cr_skip_test("python3 is not installed");
	snprintf(dir, sizeof(dir), "%s/sock", pub);
	cr_assert_eq(prog_spawn(&p, false, NULL, argv), 0);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0, "python3 did not start");
	port = (unsigned int)atoi(line);
	cr_assert_eq(tcp_listener_uid(port), NOBODY);
	snprintf(ps, sizeof(ps), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_wait(&p, 2000);
	prog_kill(&p);
	cr_assert_eq(sh("chown -R nobody:nogroup '%s'", dir), 0);
	pid = restore_detached(dir, err, sizeof(err));
	cr_assert_gt(pid, 0, "%s", err);
	cr_expect_eq(tcp_listener_uid(port), NOBODY, "the restored listener on port %u belongs to uid %ld",
		     port, tcp_listener_uid(port));
	kill(pid, SIGKILL);
}

/* ---- trusted restores of another user's process: what root makes on its behalf ---- */

/* python3 as nobody running @code (which prints one line when ready), dumped by root into pub/@name. */
static pid_t nobody_python(const char *name, const char *code, char *dir, size_t len, char *line, size_t llen)
{
	const char *argv[] = { "/bin/sh", "-c", STDERR_NULL, "setpriv", "--reuid", "nobody", "--regid", "nogroup",
			       "--clear-groups", "--", "/usr/bin/python3", "-c", code, NULL };
	struct run_result r;
	struct prog p;
	char ps[16];
	pid_t pid;

	if (access("/usr/bin/python3", X_OK) < 0)
		cr_skip_test("python3 is not installed");
	snprintf(dir, len, "%s/%s", pub, name);
	cr_assert_eq(prog_spawn(&p, false, NULL, argv), 0);
	cr_assert_geq(prog_read_line(&p, line, llen, 10000), 0, "python3 did not start");
	pid = p.pid;
	snprintf(ps, sizeof(ps), "%d", pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", dir, NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_wait(&p, 2000);
	prog_kill(&p);
	return pid;
}

/*
 * A user's fifo replaced by a symlink to one of root's: restore opens the
 * path without following it, and refuses (it would hand root's fifo to the
 * user's process).
 */
Test(trust, a_fifo_swapped_for_a_symlink_is_not_followed)
{
	char dir[160], line[256], fifo[200], rootfifo[200], priv[160], err[4096];
	pid_t orig;

	cr_assert_eq(sh("mkdir -p '%s/nd' && chown nobody '%s/nd'", pub, pub), 0);
	snprintf(fifo, sizeof(fifo), "%s/nd/fifo", pub);
	{
		char code[512];

		snprintf(code, sizeof(code), "import os,time\nos.mkfifo('%s')\nfd=os.open('%s', os.O_RDWR)\n"
			 "print('ready', flush=True)\ntime.sleep(1000)\n", fifo, fifo);
		orig = nobody_python("fifo", code, dir, sizeof(dir), line, sizeof(line));
	}
	snprintf(priv, sizeof(priv), "%s/private", tmp);
	cr_assert_eq(sh("mkdir -p '%s' && chmod 0700 '%s'", priv, priv), 0);
	snprintf(rootfifo, sizeof(rootfifo), "%s/rootfifo", priv);
	cr_assert_eq(mkfifo(rootfifo, 0600), 0);
	cr_assert_eq(sh("rm -f '%s' && ln -s '%s' '%s'", fifo, rootfifo, fifo), 0);
	cr_expect_eq(restore_detached(dir, err, sizeof(err)), 0, "restored with root's fifo: %s", err);
	cr_expect(strstr(err, "which is gone"), "%s", err);
	cr_expect(kill(orig, 0) < 0 && errno == ESRCH, "pid %d exists after the refused restore", orig);
}

/* A user's deleted setuid program comes back as a file of root's: never setuid. */
Test(trust, a_users_deleted_setuid_file_does_not_come_back_setuid_root)
{
	char dir[160], line[256], code[512], path[256], err[4096];
	struct stat st;
	pid_t pid;
	int fd;

	cr_assert_eq(sh("mkdir -p '%s/nd2' && chown nobody '%s/nd2'", pub, pub), 0);
	snprintf(code, sizeof(code),
		 "import os,shutil,time\np='%s/nd2/evil'\nshutil.copy('/bin/true', p)\nos.chmod(p, 0o4755)\n"
		 "fd=os.open(p, os.O_RDONLY)\nos.unlink(p)\nprint(fd, flush=True)\ntime.sleep(1000)\n", pub);
	nobody_python("suid", code, dir, sizeof(dir), line, sizeof(line));
	fd = atoi(line);
	cr_assert_gt(fd, 2, "%s", line);
	pid = restore_detached(dir, err, sizeof(err));
	cr_assert_gt(pid, 0, "%s", err);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	cr_expect_eq(st.st_mode & (S_ISUID | S_ISGID), 0, "the deleted file came back mode %04o, owner %u",
		     st.st_mode & 07777, st.st_uid);
	kill(pid, SIGKILL);
}

/* A user's delta whose parent is a checkpoint only root can write: refused. */
Test(trust, a_users_checkpoint_cannot_take_a_parent_of_roots)
{
	char ps[16], full[200], delta[200];
	struct run_result r;
	struct prog p;
	pid_t orig;

	snprintf(full, sizeof(full), "%s/rootfull", pub);
	snprintf(delta, sizeof(delta), "%s/userdelta", pub);
	start_nobody_counter(&p);
	orig = p.pid;
	snprintf(ps, sizeof(ps), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", full, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", delta, "--parent", full, NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_wait(&p, 2000);
	prog_kill(&p);
	/* The delta is the user's (as if it made it), its parent only root's. */
	cr_assert_eq(sh("chown -R nobody:nogroup '%s'", delta), 0);
	expect_refused(delta, orig, "is root's only, yet the parent of a checkpoint uid 65534 can write");
}

/*
 * The lazy-pages server opens the checkpoint again after restore judged
 * it: a path that meanwhile names another checkpoint is refused (a
 * confined process would get another's pages). Restore waits on a fifo of
 * the process while another checkpoint is renamed into its place.
 */
Test(trust, a_checkpoint_swapped_after_restore_judged_it_is_refused_by_the_lazy_server)
{
	const char *code = "import os,sys,time\np=sys.argv[1]\nos.mkfifo(p)\n"
			   "fd=os.open(p, os.O_RDONLY|os.O_NONBLOCK)\nprint('ready', flush=True)\ntime.sleep(1000)\n";
	char fifo[200], d1[200], d2[200], old[200], line[64], ps[16], errp[220], buf[8192] = "";
	const char *py[] = { "/usr/bin/python3", "-c", code, fifo, NULL };
	struct run_result r;
	struct prog p, rp;
	int w, fd, status;

	if (access("/usr/bin/python3", X_OK) < 0)
		cr_skip_test("python3 is not installed");
	snprintf(fifo, sizeof(fifo), "%s/lazyfifo", tmp);
	snprintf(d1, sizeof(d1), "%s/lz1", tmp);
	snprintf(d2, sizeof(d2), "%s/lz2", tmp);
	snprintf(errp, sizeof(errp), "%s/lz.err", tmp);
	cr_assert_eq(prog_spawn(&p, false, NULL, py), 0);
	cr_assert_geq(prog_read_line(&p, line, sizeof(line), 10000), 0, "python3 did not start");
	snprintf(ps, sizeof(ps), "%d", p.pid);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", d1, "--leave-running", NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	cr_assert_eq(run_ckpt(&r, "dump", "-t", ps, "-D", d2, NULL), 0);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_result_done(&r);
	prog_wait(&p, 2000);
	prog_kill(&p);
	snprintf(old, sizeof(old), "%s/lz1.old", tmp);
	{
		const char *argv[] = { "/bin/sh", "-c", "exec 2>\"$0\"; exec \"$@\"", errp, ckpt_bin(), "restore",
				       "-D", d1, "--lazy", "--stdio", "null", NULL };

		cr_assert_eq(prog_spawn(&rp, false, NULL, argv), 0);
	}
	usleep(700000); /* restore judged d1 and waits for a writer on the fifo */
	cr_assert_eq(rename(d1, old), 0);
	cr_assert_eq(rename(d2, d1), 0);
	w = open(fifo, O_WRONLY | O_NONBLOCK);
	cr_assert_geq(w, 0, "nobody waits on the fifo: %s", strerror(errno));
	status = prog_wait(&rp, 20000);
	close(w);
	prog_kill(&rp);
	fd = open(errp, O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	cr_expect(strstr(buf, "is not the checkpoint restore read"), "status %#x: %s", status, buf);
}
