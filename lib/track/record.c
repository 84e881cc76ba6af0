/* SPDX-License-Identifier: MIT */
/*
 * The tracking record: RUNDIR/track-PID.json, rewritten atomically (temp
 * file + rename), next to RUNDIR/track-PID.lock, held with flock() by the
 * command that uses the tracking, and RUNDIR/track-PID.gen, the generation,
 * rewritten in place by every harvest before it scans. The JSON record (the
 * registered mappings) may lag behind after a crash: a stale list only makes
 * the next harvest report more pages, never fewer.
 */
#define LOG_AREA "track"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/proc.h>

#include "track/track-internal.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#define RECORD_VERSION 1

static void record_path(const struct ckpt_tracker *t, const char *ext, char *buf, size_t len)
{
	snprintf(buf, len, "%s/track-%d.%s", t->rundir, t->pid, ext);
}

int track_identity(pid_t pid, uint64_t *ret_start_time, char ret_boot_id[40])
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_free_ char *boot = NULL;
	struct ckpt_proc_stat st;
	int r;

	r = ckpt_proc_open(NULL, pid, &p);
	if (r < 0)
		return r;
	r = ckpt_proc_read_stat(p, &st);
	if (r < 0)
		return r;
	r = ckpt_proc_read_sysctl(NULL, "kernel/random/boot_id", &boot);
	if (r < 0)
		return r;
	*ret_start_time = st.start_time;
	snprintf(ret_boot_id, 40, "%s", boot);
	return 0;
}

/*
 * Lock RUNDIR/track-PID.lock. A lock file may be removed (with the record,
 * by its holder: track_record_remove, ckpt_track_sweep), so once locked,
 * check that the file locked is still the one at the path: if not, another
 * command removed it between our open and our flock, and a third may lock
 * a new one; start again.
 */
static int lock_path(const char *path, bool create, int busy_tries, int *ret_fd)
{
	for (int tries = 0; tries < 200; tries++) {
		struct stat a, b;
		int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (create ? O_CREAT : 0), 0600);

		if (fd < 0)
			return neg_errno();
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int r = errno == EWOULDBLOCK ? -EBUSY : neg_errno();

			close(fd);
			if (r != -EBUSY || busy_tries-- <= 0)
				return r;
			usleep(1000);
			continue;
		}
		if (fstat(fd, &a) == 0 && !S_ISREG(a.st_mode)) {
			close(fd); /* a FIFO or device put in its place: never ours */
			return -EBADMSG;
		}
		if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			*ret_fd = fd;
			return 0;
		}
		close(fd); /* removed meanwhile: the lock of a file nobody will see */
		if (!create)
			return -ENOENT;
	}
	return -EAGAIN;
}

/*
 * Who holds the lock of @t (from /proc/locks), said with what to do: a
 * running `ckpt track` (its checkpoints, with -D), another command (wait
 * for it). Falls back to naming the lock file.
 */
static void say_busy(const struct ckpt_tracker *t, const char *path)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	_cleanup_free_ char **argv = NULL;
	const char *dir = NULL;
	bool track = false;
	struct stat sb;
	pid_t holder;

	if (stat(path, &sb) < 0 || ckpt_proc_flock_holder(NULL, sb.st_dev, sb.st_ino, &holder) < 0 ||
	    ckpt_proc_open(NULL, holder, &p) < 0 || ckpt_proc_read_argv(p, &argv) < 0) {
		pr_err("pid %d is in use by another ckpt command (lock '%s')", t->pid, path);
		return;
	}
	for (size_t i = 1; argv[i]; i++) {
		if (!strcmp(argv[i], "track"))
			track = true;
		else if ((!strcmp(argv[i], "-D") || !strcmp(argv[i], "--images-dir")) && argv[i + 1])
			dir = argv[i + 1];
		else if (!strncmp(argv[i], "--images-dir=", 13))
			dir = argv[i] + 13;
	}
	if (track && dir)
		pr_err("pid %d is tracked by ckpt track (pid %d), in use until it ends, with checkpoints in "
		       "'%s': use its checkpoints ('%s/latest'), or stop it (SIGINT to pid %d) first", t->pid,
		       holder, dir, dir, holder);
	else if (track)
		pr_err("pid %d is tracked by ckpt track (pid %d), in use until it ends: stop it (SIGINT to "
		       "pid %d) first, or run it with -D DIR for checkpoints", t->pid, holder, holder);
	else
		pr_err("pid %d is in use by another ckpt command (pid %d, '%s'): wait for it to end", t->pid,
		       holder, argv[0]);
}

int track_record_lock(struct ckpt_tracker *t)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, r;

	if (mkdir(t->rundir, 0700) < 0 && errno != EEXIST) {
		r = neg_errno();
		pr_err("cannot create the run directory '%s': %s%s", t->rundir, errstr(r),
		       r == -EACCES && geteuid() ? " (it is root's: as another user, set CKPT_RUNDIR to a "
						  "directory of your own)" : "");
		return r;
	}
	/* Records of another user's could name any fd of the process as ckpt's. */
	if (stat(t->rundir, &st) == 0 && st.st_uid != geteuid()) {
		pr_err("the run directory '%s' belongs to uid %u, not to this user (uid %u): refusing to "
		       "keep tracking records there (set CKPT_RUNDIR)", t->rundir, (unsigned int)st.st_uid,
		       (unsigned int)geteuid());
		return -EPERM;
	}
	record_path(t, "lock", path, sizeof(path));
	/* A sweep (ckpt_track_sweep) holds a lock for microseconds: try a few times. */
	r = lock_path(path, true, 20, &fd);
	if (r == -EBUSY) {
		say_busy(t, path);
		return r;
	}
	if (r < 0) {
		pr_err("cannot lock '%s': %s", path, errstr(r));
		return r;
	}
	t->lock_fd = fd;
	return 0;
}

static json_object *ranges_json(const struct ckpt_tracker *t, bool dirty)
{
	json_object *a = json_object_new_array();
	size_t n = dirty ? t->nr_dirty : t->nr_vmas;

	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_new_array();

		json_object_array_add(e, json_object_new_uint64(dirty ? t->dirty[i].start : t->vmas[i].start));
		json_object_array_add(e, json_object_new_uint64(dirty ? t->dirty[i].end : t->vmas[i].end));
		if (dirty)
			json_object_array_add(e, json_object_new_string(t->dirty[i].name));
		else
			json_object_array_add(e, json_object_new_int(t->vmas[i].prot));
		json_object_array_add(a, e);
	}
	return a;
}

int track_gen_save(struct ckpt_tracker *t)
{
	char buf[24];

	if (t->gen_fd < 0) {
		char path[PATH_MAX];

		record_path(t, "gen", path, sizeof(path));
		t->gen_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
		if (t->gen_fd < 0) {
			int r = neg_errno();

			pr_err("cannot open '%s': %s", path, errstr(r));
			return r;
		}
	}
	snprintf(buf, sizeof(buf), "%020" PRIu64 "\n", t->generation);
	if (pwrite(t->gen_fd, buf, 21, 0) != 21) {
		int r = errno ? neg_errno() : -EIO;

		pr_err("cannot write the generation of the tracking of pid %d: %s", t->pid, errstr(r));
		return r;
	}
	return 0;
}

static uint64_t gen_load(const struct ckpt_tracker *t)
{
	_cleanup_free_ char *text = NULL;
	char path[PATH_MAX];

	record_path(t, "gen", path, sizeof(path));
	if (read_file_at(AT_FDCWD, path, &text, NULL) < 0)
		return 0;
	return strtoull(text, NULL, 10);
}

int track_record_save(struct ckpt_tracker *t)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	const char *text;
	int fd, r;

	json_object_object_add(o, "version", json_object_new_int(RECORD_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(t->pid));
	json_object_object_add(o, "start_time", json_object_new_uint64(t->start_time));
	json_object_object_add(o, "boot_id", json_object_new_string(t->boot_id));
	json_object_object_add(o, "parked_fd", json_object_new_int(t->parked_fd));
	json_object_object_add(o, "uffd_ino", json_object_new_uint64(t->uffd_ino));
	json_object_object_add(o, "features", json_object_new_uint64(t->features));
	json_object_object_add(o, "generation", json_object_new_uint64(t->generation));
	json_object_object_add(o, "armed_ns", json_object_new_int64(t->armed_realtime_ns));
	json_object_object_add(o, "vmas", ranges_json(t, false));
	json_object_object_add(o, "always_dirty", ranges_json(t, true));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

	record_path(t, "json", path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = neg_errno();
		goto fail;
	}
	/*
	 * No fsync: the record lives on tmpfs and is lost at reboot together
	 * with the tracking it describes; rename alone survives a crash of
	 * ckpt, and this runs while the target is frozen.
	 */
	r = write_all(fd, text, strlen(text));
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = neg_errno();
	if (r == 0)
		r = track_gen_save(t);
	if (r == 0) {
		t->record_dirty = false;
		return 0;
	}
	unlink(tmp);
fail:
	pr_err("cannot write the tracking record '%s': %s", path, errstr(r));
	return r;
}

static int get_u64(json_object *o, const char *key, uint64_t *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -EBADMSG;
	*ret = json_object_get_uint64(v);
	return 0;
}

static int load_ranges(struct ckpt_tracker *t, json_object *a, bool dirty)
{
	if (!json_object_is_type(a, json_type_array))
		return -EBADMSG;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);
		json_object *s, *en, *x;
		int r;

		if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) != 3)
			return -EBADMSG;
		s = json_object_array_get_idx(e, 0);
		en = json_object_array_get_idx(e, 1);
		x = json_object_array_get_idx(e, 2);
		if (!json_object_is_type(s, json_type_int) || !json_object_is_type(en, json_type_int))
			return -EBADMSG;
		if (json_object_get_uint64(en) <= json_object_get_uint64(s))
			return -EBADMSG;
		if (dirty) {
			if (!json_object_is_type(x, json_type_string))
				return -EBADMSG;
			r = track_add_dirty(t, json_object_get_uint64(s), json_object_get_uint64(en),
					    json_object_get_string(x));
		} else {
			if (!json_object_is_type(x, json_type_int))
				return -EBADMSG;
			r = track_add_vma(t, json_object_get_uint64(s), json_object_get_uint64(en),
					  json_object_get_int(x));
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Load RUNDIR/track-PID.json into @t (pid and rundir set). -ENOENT: none. */
/* The version, the pid (@pid) and the identity of its process: 0 or -EBADMSG. */
static int record_header(json_object *o, pid_t pid, uint64_t *ret_start, char boot_id[40])
{
	json_object *v;
	uint64_t x;

	if (!o || !json_object_is_type(o, json_type_object) || get_u64(o, "version", &x) < 0 ||
	    x != RECORD_VERSION || get_u64(o, "pid", &x) < 0 || x != (uint64_t)pid ||
	    get_u64(o, "start_time", ret_start) < 0 || !json_object_object_get_ex(o, "boot_id", &v) ||
	    !json_object_is_type(v, json_type_string))
		return -EBADMSG;
	snprintf(boot_id, 40, "%s", json_object_get_string(v));
	return 0;
}

int track_record_load(struct ckpt_tracker *t)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_object *o = NULL;
	char path[PATH_MAX];
	json_object *vmas, *dirty;
	uint64_t x;
	int r;

	record_path(t, "json", path, sizeof(path));
	r = read_file_at(AT_FDCWD, path, &text, NULL);
	if (r < 0)
		return r;
	o = json_tokener_parse(text);
	if (record_header(o, t->pid, &t->start_time, t->boot_id) < 0)
		goto bad;
	if (get_u64(o, "uffd_ino", &t->uffd_ino) < 0 ||
	    get_u64(o, "features", &t->features) < 0 || get_u64(o, "generation", &t->generation) < 0)
		goto bad;
	{
		json_object *v;
		int64_t fd;

		/* -1: held by the command that armed it, not parked. */
		if (!json_object_object_get_ex(o, "parked_fd", &v) || !json_object_is_type(v, json_type_int) ||
		    (fd = json_object_get_int64(v)) < -1 || fd > INT_MAX)
			goto bad;
		t->parked_fd = (int)fd;
	}
	if (get_u64(o, "armed_ns", &x) < 0)
		goto bad;
	t->armed_realtime_ns = (int64_t)x;
	if (!json_object_object_get_ex(o, "vmas", &vmas) ||
	    !json_object_object_get_ex(o, "always_dirty", &dirty))
		goto bad;
	r = load_ranges(t, vmas, false);
	if (r == 0)
		r = load_ranges(t, dirty, true);
	if (r < 0)
		goto bad;
	/* Harvests after the last full save only moved the generation. */
	x = gen_load(t);
	if (x > t->generation)
		t->generation = x;
	return 0;
bad:
	pr_err("the tracking record '%s' is corrupt", path);
	return -EBADMSG;
}

static void remove_files(const char *rundir, pid_t pid, bool with_lock)
{
	static const char *const ext[] = { "json", "json.tmp", "gen" };
	char path[PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(ext); i++) {
		snprintf(path, sizeof(path), "%s/track-%d.%s", rundir, pid, ext[i]);
		unlink(path);
	}
	if (with_lock) {
		snprintf(path, sizeof(path), "%s/track-%d.lock", rundir, pid);
		unlink(path);
	}
}

void track_record_remove(const struct ckpt_tracker *t)
{
	/*
	 * The lock file goes too, but only by the command that holds it: a
	 * command that opened it before and locks it after sees that it is
	 * not the file at the path any more and starts again (lock_path).
	 */
	remove_files(t->rundir, t->pid, t->lock_fd >= 0);
}

/* ---- removal of the records of processes that are gone ---- */

/* What a record says of its process: 0, or -EBADMSG when it cannot be read. */
static int record_identity(const char *rundir, pid_t pid, uint64_t *ret_start, char boot_id[40])
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_object *o = NULL;
	char path[PATH_MAX];
	int r;

	snprintf(path, sizeof(path), "%s/track-%d.json", rundir, pid);
	r = read_file_at(AT_FDCWD, path, &text, NULL);
	if (r < 0)
		return r;
	o = json_tokener_parse(text);
	return record_header(o, pid, ret_start, boot_id);
}

/* Has @pid exited, its parent not having reaped it yet (a zombie)? */
static bool exited(pid_t pid)
{
	_cleanup_proc_ struct ckpt_proc *p = NULL;
	struct ckpt_proc_stat st;

	return ckpt_proc_open(NULL, pid, &p) == 0 && ckpt_proc_read_stat(p, &st) == 0 &&
	       (st.state == 'Z' || st.state == 'X');
}

/*
 * Why the record of @pid is of no use any more, or NULL to keep it. Only
 * what is known for sure removes a record: the pid is free, it is another
 * process (start time or boot id differ), or the process has exited (a
 * zombie: its files, the parked userfaultfd with them, are closed, and it
 * never runs again). A record that cannot be read is removed only when
 * the pid is free or a zombie.
 */
static const char *record_gone(const char *rundir, pid_t pid, bool *ret_had_record)
{
	uint64_t rec_start = 0, now_start;
	char rec_boot[40] = "", now_boot[40];
	int r = record_identity(rundir, pid, &rec_start, rec_boot);
	int n = track_identity(pid, &now_start, now_boot);

	*ret_had_record = r != -ENOENT;
	if (n == -ESRCH || n == -ENOENT)
		return "the process is gone";
	if (n == 0 && exited(pid))
		return "the process has exited (a zombie its parent has not reaped)";
	if (r == -ENOENT)
		return "no record, only its lock"; /* a leftover of a disarm or a lost tracking */
	if (r < 0 || n < 0)
		return NULL;
	if (strcmp(rec_boot, now_boot))
		return "it was recorded before the last boot";
	if (rec_start != now_start)
		return "the pid is another process now";
	return NULL;
}

int ckpt_track_sweep(const struct ckpt_track_opts *opts, size_t *ret_removed)
{
	const char *rundir = track_rundir(opts);
	_cleanup_free_ pid_t *pids = NULL;
	size_t nr = 0, cap = 0, removed = 0;
	struct dirent *de;
	DIR *dir;

	dir = opendir(rundir);
	if (!dir) {
		if (ret_removed)
			*ret_removed = 0;
		return errno == ENOENT ? 0 : neg_errno();
	}
	while ((de = readdir(dir))) {
		int pid, len = 0;

		/* track-PID.{lock,json,json.tmp,gen}: each pid once */
		if (sscanf(de->d_name, "track-%d.%n", &pid, &len) != 1 || len == 0 || pid <= 0)
			continue;
		if (nr && pids[nr - 1] == pid)
			continue;
		if (GROW(pids, cap, nr + 1) < 0) {
			closedir(dir);
			return -ENOMEM;
		}
		pids[nr++] = pid;
	}
	closedir(dir);
	for (size_t i = 0; i < nr; i++) {
		char path[PATH_MAX];
		const char *why;
		bool had_record, dup = false;
		int fd;

		for (size_t k = 0; k < i && !dup; k++)
			dup = pids[k] == pids[i];
		if (dup)
			continue;
		snprintf(path, sizeof(path), "%s/track-%d.lock", rundir, pids[i]);
		/* Locked: a command uses it now, so it is alive; never touch it. */
		if (lock_path(path, true, 0, &fd) < 0)
			continue;
		why = record_gone(rundir, pids[i], &had_record);
		if (why) {
			remove_files(rundir, pids[i], true);
			if (had_record) {
				pr_info("removed the tracking record of pid %d in '%s': %s", pids[i], rundir, why);
				removed++;
			} else {
				pr_debug("removed the leftover lock of pid %d in '%s'", pids[i], rundir);
			}
		}
		close(fd);
	}
	if (ret_removed)
		*ret_removed = removed;
	return 0;
}
