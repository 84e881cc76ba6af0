/* SPDX-License-Identifier: MIT */
/*
 * Writing a checkpoint: a temporary sibling directory ".NAME.tmp-XXXXXX.PID"
 * (PID: the writing ckpt's) receives every file; commit makes it durable
 * and renames it into place.
 */
#define LOG_AREA "image"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image/image-internal.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xxhash.h"

#ifndef CKPT_VERSION
#define CKPT_VERSION "unknown"
#endif

#define MAX_THREADS 64
/* A temporary directory nobody holds is a leftover once this old (seconds). */
#define LEFTOVER_AGE_S 10

enum writer_state { W_OPEN, W_COMMITTED, W_FAILED };

struct ckpt_image_writer {
	char *path;       /* final path, as given: messages */
	char *name;       /* final name in parent_fd */
	char tmp_name[300];
	int parent_fd;    /* the directory that receives the checkpoint */
	int tmp_fd;
	int pages_fd;
	char *pages_path; /* "PATH/pages.zst" for messages */
	unsigned int flags;
	enum writer_state state;
	int err;          /* of a failed writer */
	struct ckpt_image_inventory inv; /* identity, parent, files so far */
	size_t cap_files;
	struct ckpt_image_entry *entries;
	size_t nr_entries, cap_entries;
	size_t *layers;   /* index of the first entry of each layer after the first */
	size_t nr_layers, cap_layers;
	struct ckpt_range *keep; /* ckpt_image_writer_restrict() */
	size_t nr_keep;
	bool restricted;
	bool keep_created; /* writer_set_created() */
	struct pipeline *pipe;
	struct ckpt_image_writer_stats stats;
};

int ckpt_image_parse_level(const char *s, int *ret)
{
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	if (!strcmp(s, "none")) {
		*ret = CKPT_IMAGE_LEVEL_NONE;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < ZSTD_minCLevel() || v > ZSTD_maxCLevel())
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static void remove_tmp(struct ckpt_image_writer *w)
{
	int r;

	if (w->tmp_fd >= 0) {
		close(w->tmp_fd);
		w->tmp_fd = -1;
	}
	if (!w->tmp_name[0])
		return;
	r = rm_rf_at(w->parent_fd, w->tmp_name);
	if (r < 0 && r != -ENOENT)
		pr_warn("cannot remove temporary directory '%s' next to '%s': %s", w->tmp_name,
			w->path, errstr(r));
	w->tmp_name[0] = '\0';
}

/* Drop everything written so far: pipeline, files, temporary directory. */
static void abort_writer(struct ckpt_image_writer *w)
{
	pipeline_free(w->pipe);
	w->pipe = NULL;
	if (w->pages_fd >= 0) {
		close(w->pages_fd);
		w->pages_fd = -1;
	}
	remove_tmp(w);
}

/* An I/O failure ends the writer: log @why once, remove the temporary directory. */
static int fail_writer(struct ckpt_image_writer *w, int r, const char *why)
{
	pr_err("%s", why);
	abort_writer(w);
	w->state = W_FAILED;
	w->err = r;
	return r;
}

static int check_open(const struct ckpt_image_writer *w)
{
	if (w->state == W_FAILED)
		return w->err;
	if (w->state != W_OPEN) {
		pr_err("checkpoint '%s' is already committed", w->path);
		return -EINVAL;
	}
	return 0;
}

void ckpt_image_writer_free(struct ckpt_image_writer *w)
{
	if (!w)
		return;
	if (w->state == W_OPEN)
		abort_writer(w);
	if (w->tmp_fd >= 0)
		close(w->tmp_fd);
	if (w->parent_fd >= 0)
		close(w->parent_fd);
	ckpt_image_inventory_done(&w->inv);
	free(w->entries);
	free(w->layers);
	free(w->keep);
	free(w->pages_path);
	free(w->name);
	free(w->path);
	free(w);
}

/* ---- creation ---- */

static int check_opts(const char *path, const struct ckpt_image_writer_opts *o, char *why,
		      size_t whylen)
{
	char base[256];
	int r;

	r = identity_validate(&o->identity, why, whylen);
	if (r < 0) {
		why_prefix(why, whylen, "cannot create checkpoint '%s': ", path);
		return r;
	}
	if (o->level != CKPT_IMAGE_LEVEL_NONE &&
	    (o->level < ZSTD_minCLevel() || o->level > ZSTD_maxCLevel()))
		return why_set(why, whylen, -EINVAL,
			       "cannot create checkpoint '%s': compression level %d is out of range",
			       path, o->level);
	if (o->id && id_is_zero(o->id))
		return why_set(why, whylen, -EINVAL, "cannot create checkpoint '%s': the id is zero",
			       path);
	if (o->nice < -20 || o->nice > 19)
		return why_set(why, whylen, -EINVAL, "cannot create checkpoint '%s': niceness %d",
			       path, o->nice);
	if (o->frame_pages > CKPT_IMAGE_FRAME_PAGES_MAX || o->threads > MAX_THREADS)
		return why_set(why, whylen, -EINVAL,
			       "cannot create checkpoint '%s': frame of %u pages or %u threads",
			       path, o->frame_pages, o->threads);
	if (o->flags & ~CKPT_IMAGE_REPLACE)
		return why_set(why, whylen, -EINVAL, "cannot create checkpoint '%s': unknown flags",
			       path);
	if (o->parent && (!*o->parent || o->parent[0] == '/' ||
			  ckpt_image_is_temp_name(path_base(o->parent, base, sizeof(base)))))
		return why_set(why, whylen, -EINVAL,
			       "cannot create checkpoint '%s': parent '%s' is not a relative path to a checkpoint",
			       path, o->parent);
	return 0;
}

/* Whether @name under @dirfd is a checkpoint (of any format version). */
static bool is_checkpoint(int dirfd, const char *name)
{
	struct ckpt_image_inventory inv;
	uint64_t h;
	int r;

	r = inventory_read_at(dirfd, name, name, &inv, &h, NULL, 0);
	if (r == 0)
		ckpt_image_inventory_done(&inv);
	return r == 0 || r == -EPROTONOSUPPORT;
}

/* The pid of the ckpt that made temporary directory @name (".NAME.tmp-XXXXXX.PID"), or 0. */
static pid_t temp_owner(const char *name)
{
	const char *tmp = strstr(name, ".tmp-"), *dot = strrchr(name, '.');
	char *end;
	long v;

	if (!tmp || !dot || dot <= tmp || dot[1] < '1' || dot[1] > '9')
		return 0;
	errno = 0;
	v = strtol(dot + 1, &end, 10);
	return errno || *end || v <= 0 || v > INT32_MAX ? 0 : (pid_t)v;
}

/*
 * Remove the temporary directories of writers that died (SIGKILL, power
 * loss) next to the one being made: each holds a copy of process memory.
 * A live writer holds a lock on its own (flock: never taken for a dead
 * one, whatever pid it had); between its mkdir and its lock, its pid in
 * the name is alive. So a directory nobody holds goes at once when the
 * ckpt that made it is gone, never while its pid lives (a reused pid only
 * delays it). Directories of older ckpt versions (no pid in the name) go
 * once they are old.
 */
static void sweep_leftovers(int parent_fd, const char *ours)
{
	_cleanup_closedir_ DIR *d = NULL;
	int fd = openat(parent_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	time_t now = time(NULL);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		_cleanup_close_ int t = -1;
		struct stat st;
		int r;

		pid_t owner;

		if (!ckpt_image_is_temp_name(e->d_name) || !strcmp(e->d_name, ours))
			continue;
		if (fstatat(parent_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
		    st.st_uid != geteuid())
			continue;
		owner = temp_owner(e->d_name);
		if (owner == getpid() || (owner > 0 && (kill(owner, 0) == 0 || errno != ESRCH)))
			continue; /* its ckpt lives: at work, or between its mkdir and its lock */
		if (!owner && now - st.st_mtime < LEFTOVER_AGE_S)
			continue;
		t = openat(parent_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (t < 0 || (flock(t, LOCK_EX | LOCK_NB) < 0 && (errno == EWOULDBLOCK || !owner)))
			continue; /* a writer at work (without locks here: its pid is gone) */
		r = rm_rf_at(parent_fd, e->d_name);
		if (r < 0 && r != -ENOENT)
			pr_warn("cannot remove '%s', left by a ckpt that ended before it finished: %s",
				e->d_name, strerror(-r));
		else
			pr_info("removed '%s', left by a ckpt that ended before it finished", e->d_name);
	}
}

static int make_tmp_dir(struct ckpt_image_writer *w, char *why, size_t whylen)
{
	int r;

	for (int attempt = 0; attempt < 100; attempt++) {
		r = temp_name(w->name, w->tmp_name, sizeof(w->tmp_name));
		if (r == 0) {
			/* The writer's pid: its leftover goes as soon as it is gone (sweep_leftovers). */
			size_t len = strlen(w->tmp_name);

			if ((size_t)snprintf(w->tmp_name + len, sizeof(w->tmp_name) - len, ".%d",
					     (int)getpid()) >= sizeof(w->tmp_name) - len)
				r = -ENAMETOOLONG;
		}
		if (r < 0) {
			w->tmp_name[0] = '\0';
			if (r == -ENAMETOOLONG)
				return why_set(why, whylen, r, "cannot create checkpoint '%s': name too long",
					       w->path);
			return why_set(why, whylen, r, "cannot create checkpoint '%s': getrandom: %s",
				       w->path, strerror(-r));
		}
		if (mkdirat(w->parent_fd, w->tmp_name, 0700) == 0)
			break;
		if (errno != EEXIST) {
			r = neg_errno();
			w->tmp_name[0] = '\0';
			return why_set(why, whylen, r, "cannot create a temporary directory for '%s': %s",
				       w->path, strerror(-r));
		}
		w->tmp_name[0] = '\0';
	}
	if (!w->tmp_name[0])
		return why_set(why, whylen, -EEXIST,
			       "cannot create a temporary directory for '%s': every name is taken",
			       w->path);
	w->tmp_fd = openat(w->parent_fd, w->tmp_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->tmp_fd < 0) {
		r = neg_errno();
		return why_set(why, whylen, r, "cannot open temporary directory for '%s': %s",
			       w->path, strerror(-r));
	}
	/* Held until the writer ends: a temporary directory nobody holds is a leftover. */
	if (flock(w->tmp_fd, LOCK_EX | LOCK_NB) < 0)
		pr_debug("cannot lock '%s': %s", w->tmp_name, strerror(errno));
	sweep_leftovers(w->parent_fd, w->tmp_name);
	return 0;
}

/*
 * The parent, seen from the temporary directory: a sibling of the final
 * directory, so a relative path resolves to the same place from both.
 */
static int read_parent(struct ckpt_image_writer *w, const char *parent, char *why, size_t whylen)
{
	struct ckpt_image_inventory pinv;
	_cleanup_free_ char *ppath = path_join(w->path, parent);
	uint64_t h;
	int r;

	if (!ppath)
		return -ENOMEM;
	r = inventory_read_at(w->tmp_fd, parent, ppath, &pinv, &h, why, whylen);
	if (r < 0) {
		why_prefix(why, whylen, "cannot use parent '%s' of '%s': ", parent, w->path);
		return r;
	}
	if (!ckpt_image_identity_equal(&pinv.identity, &w->inv.identity)) {
		r = why_set(why, whylen, -EXDEV,
			    "cannot use parent '%s' of '%s': it is a checkpoint of another process "
			    "(pid %d, start time %" PRIu64 ")",
			    ppath, w->path, (int)pinv.identity.pid, pinv.identity.start_time);
		ckpt_image_inventory_done(&pinv);
		return r;
	}
	if (ckpt_image_id_equal(&pinv.id, &w->inv.id)) {
		ckpt_image_inventory_done(&pinv);
		return why_set(why, whylen, -EINVAL,
			       "cannot use parent '%s' of '%s': it has the id the new checkpoint is given",
			       ppath, w->path);
	}
	w->inv.parent_id = pinv.id;
	ckpt_image_inventory_done(&pinv);
	(void)h;
	w->inv.parent = strdup(parent);
	if (!w->inv.parent)
		return -ENOMEM;
	w->inv.kind = CKPT_IMAGE_DELTA;
	return 0;
}

/* @dirfd: the directory that receives it (a sub-checkpoint's), or -1: the one of its path. */
static int writer_setup(struct ckpt_image_writer *w, const struct ckpt_image_writer_opts *o, int dirfd,
			char *why, size_t whylen)
{
	_cleanup_free_ char *dir = NULL;
	struct stat st;
	int r;

	r = path_split(w->path, &dir, &w->name);
	if (r == -EINVAL || (r == 0 && ckpt_image_is_temp_name(w->name)))
		return why_set(why, whylen, -EINVAL, "cannot create checkpoint '%s': bad name",
			       w->path);
	if (r < 0)
		return r;
	if (dirfd >= 0)
		w->parent_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	else
		w->parent_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->parent_fd < 0) {
		r = neg_errno();
		return why_set(why, whylen, r, "cannot create checkpoint '%s': %s", w->path,
			       strerror(-r));
	}
	/* Fail early; commit checks again, atomically. */
	if (fstatat(w->parent_fd, w->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!(o->flags & CKPT_IMAGE_REPLACE))
			return why_set(why, whylen, -EEXIST, "cannot create checkpoint '%s': %s",
				       w->path, strerror(EEXIST));
		if (!is_checkpoint(w->parent_fd, w->name))
			return why_set(why, whylen, -EEXIST,
				       "cannot replace '%s': it exists and is not a checkpoint",
				       w->path);
	}
	r = identity_copy(&w->inv.identity, &o->identity);
	if (r < 0)
		return r;
	if (o->id)
		w->inv.id = *o->id;
	else if ((r = id_random(&w->inv.id)) < 0)
		return why_set(why, whylen, r, "cannot create checkpoint '%s': getrandom: %s",
			       w->path, strerror(-r));
	r = make_tmp_dir(w, why, whylen);
	if (r < 0)
		return r;
	if (o->parent) {
		r = read_parent(w, o->parent, why, whylen);
		if (r < 0)
			return r;
	}
	if (asprintf(&w->pages_path, "%s/%s", w->path, PAGES_NAME) < 0) {
		w->pages_path = NULL;
		return -ENOMEM;
	}
	w->pages_fd = openat(w->tmp_fd, PAGES_NAME, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->pages_fd < 0) {
		r = neg_errno();
		return why_set(why, whylen, r, "cannot create '%s': %s", w->pages_path,
			       strerror(-r));
	}
	r = pipeline_new(w->pages_fd, w->pages_path,
			 o->level ? o->level : CKPT_IMAGE_LEVEL_DEFAULT,
			 o->frame_pages ? o->frame_pages : CKPT_IMAGE_FRAME_PAGES_DEFAULT,
			 o->threads ? o->threads : CKPT_IMAGE_THREADS_DEFAULT, o->nice, &w->pipe);
	if (r < 0)
		return why_set(why, whylen, r, "cannot start compression for '%s': %s", w->path,
			       strerror(-r));
	return 0;
}

static int writer_new(const char *path, const struct ckpt_image_writer_opts *opts, int dirfd,
		      struct ckpt_image_writer **ret)
{
	struct ckpt_image_writer *w;
	char why[WHY_LEN] = "";
	int r;

	if (!path || !opts) {
		pr_err("cannot create a checkpoint: no path or options");
		return -EINVAL;
	}
	r = check_opts(path, opts, why, sizeof(why));
	if (r < 0) {
		pr_err("%s", why);
		return r;
	}
	w = calloc(1, sizeof(*w));
	if (!w || !(w->path = strdup(path))) {
		free(w);
		pr_err("cannot create checkpoint '%s': %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	w->parent_fd = w->tmp_fd = w->pages_fd = -1;
	w->flags = opts->flags;
	w->state = W_OPEN;
	w->inv.kind = CKPT_IMAGE_FULL;
	r = writer_setup(w, opts, dirfd, why, sizeof(why));
	if (r < 0) {
		if (!why[0])
			snprintf(why, sizeof(why), "cannot create checkpoint '%s': %s", path,
				 strerror(-r));
		pr_err("%s", why);
		ckpt_image_writer_free(w);
		return r;
	}
	pr_debug("writing '%s' in '%s'", path, w->tmp_name);
	*ret = w;
	return 0;
}

int ckpt_image_writer_new(const char *path, const struct ckpt_image_writer_opts *opts,
			  struct ckpt_image_writer **ret)
{
	return writer_new(path, opts, -1, ret);
}

int ckpt_image_writer_new_sub(struct ckpt_image_writer *top, const char *name,
			      const struct ckpt_image_writer_opts *opts, struct ckpt_image_writer **ret)
{
	_cleanup_free_ char *path = NULL;
	int r = check_open(top);

	if (r < 0)
		return r;
	if (!file_name_valid(name) || file_name_reserved(name) || ckpt_image_is_temp_name(name)) {
		pr_err("cannot create checkpoint '%s/%s': bad name", top->path, name);
		return -EINVAL;
	}
	if (asprintf(&path, "%s/%s", top->path, name) < 0)
		return -ENOMEM;
	return writer_new(path, opts, top->tmp_fd, ret);
}

/* ---- pages ---- */

static int check_range(const struct ckpt_image_writer *w, uint64_t addr, uint64_t nr_pages)
{
	if (addr & (CKPT_IMAGE_PAGE_SIZE - 1)) {
		pr_err("cannot add pages to '%s': address 0x%" PRIx64 " is not page-aligned",
		       w->path, addr);
		return -EINVAL;
	}
	if (addr >= CKPT_IMAGE_ADDR_LIMIT ||
	    nr_pages > (CKPT_IMAGE_ADDR_LIMIT - addr) / CKPT_IMAGE_PAGE_SIZE) {
		pr_err("cannot add pages to '%s': %" PRIu64 " pages at 0x%" PRIx64
		       " go beyond the user address space", w->path, nr_pages, addr);
		return -EINVAL;
	}
	return 0;
}

static size_t layer_start(const struct ckpt_image_writer *w)
{
	return w->nr_layers ? w->layers[w->nr_layers - 1] : 0;
}

static int add_entry(struct ckpt_image_writer *w, const struct ckpt_image_entry *e)
{
	if (w->nr_entries > layer_start(w) &&
	    entries_mergeable(&w->entries[w->nr_entries - 1], e)) {
		w->entries[w->nr_entries - 1].nr_pages += e->nr_pages;
		return 0;
	}
	if (GROW(w->entries, w->cap_entries, w->nr_entries + 1) < 0)
		return -ENOMEM;
	w->entries[w->nr_entries++] = *e;
	return 0;
}

int ckpt_image_writer_add_data(struct ckpt_image_writer *w, uint64_t addr, uint64_t nr_pages,
			       const void *pages)
{
	const unsigned char *src = pages;
	char why[WHY_LEN];
	int r;

	r = check_open(w);
	if (r < 0)
		return r;
	r = check_range(w, addr, nr_pages);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < nr_pages; i++, src += CKPT_IMAGE_PAGE_SIZE) {
		struct ckpt_image_entry e = {
			.addr = addr + i * CKPT_IMAGE_PAGE_SIZE,
			.nr_pages = 1,
		};

		if (mem_is_zero(src, CKPT_IMAGE_PAGE_SIZE)) {
			e.kind = CKPT_PAGE_ZERO;
			w->stats.zero_pages++;
		} else {
			e.kind = CKPT_PAGE_DATA;
			r = pipeline_put(w->pipe, src, &e.frame, &e.frame_page, why, sizeof(why));
			if (r < 0)
				return fail_writer(w, r, why);
			w->stats.data_pages++;
		}
		r = add_entry(w, &e);
		if (r < 0)
			return fail_writer(w, r, "cannot add pages: out of memory");
	}
	return 0;
}

static void count_entry(struct ckpt_image_writer_stats *st, const struct ckpt_image_entry *e)
{
	switch (e->kind) {
	case CKPT_PAGE_DATA:
		st->data_pages += e->nr_pages;
		break;
	case CKPT_PAGE_ZERO:
		st->zero_pages += e->nr_pages;
		break;
	case CKPT_PAGE_INHERIT:
		st->inherit_pages += e->nr_pages;
		break;
	default:
		st->hole_pages += e->nr_pages;
		break;
	}
}

static int add_empty(struct ckpt_image_writer *w, uint64_t addr, uint64_t nr_pages,
		     enum ckpt_page_kind kind, uint32_t frame)
{
	struct ckpt_image_entry e = { .addr = addr, .nr_pages = nr_pages, .kind = kind, .frame = frame };
	int r;

	r = check_open(w);
	if (r < 0)
		return r;
	r = check_range(w, addr, nr_pages);
	if (r < 0 || !nr_pages)
		return r;
	r = add_entry(w, &e);
	if (r < 0)
		return fail_writer(w, r, "cannot add pages: out of memory");
	count_entry(&w->stats, &e);
	return 0;
}

int ckpt_image_writer_add_zero(struct ckpt_image_writer *w, uint64_t addr, uint64_t nr_pages)
{
	return add_empty(w, addr, nr_pages, CKPT_PAGE_ZERO, 0);
}

int ckpt_image_writer_add_hole(struct ckpt_image_writer *w, uint64_t addr, uint64_t nr_pages)
{
	return add_empty(w, addr, nr_pages, CKPT_PAGE_HOLE, 0);
}

int ckpt_image_writer_add_inherit(struct ckpt_image_writer *w, uint64_t addr, uint64_t nr_pages,
				  pid_t pid)
{
	if (pid <= 0) {
		pr_err("cannot add pages of pid %d to '%s': no such process", (int)pid, w->path);
		return -EINVAL;
	}
	return add_empty(w, addr, nr_pages, CKPT_PAGE_INHERIT, (uint32_t)pid);
}

int ckpt_image_writer_new_layer(struct ckpt_image_writer *w)
{
	int r = check_open(w);

	if (r < 0)
		return r;
	if (w->nr_entries == layer_start(w))
		return 0; /* the current layer is empty: it is the new one */
	if (GROW(w->layers, w->cap_layers, w->nr_layers + 1) < 0)
		return fail_writer(w, -ENOMEM, "cannot start a layer: out of memory");
	w->layers[w->nr_layers++] = w->nr_entries;
	return 0;
}

int ckpt_image_writer_restrict(struct ckpt_image_writer *w, const struct ckpt_range *ranges,
			       size_t nr)
{
	struct ckpt_range *copy = NULL;
	int r = check_open(w);

	if (r < 0)
		return r;
	for (size_t i = 0; i < nr; i++)
		if ((ranges[i].start | ranges[i].end) & (CKPT_IMAGE_PAGE_SIZE - 1) ||
		    ranges[i].start >= ranges[i].end || (i && ranges[i].start < ranges[i - 1].end)) {
			pr_err("cannot restrict '%s' to ranges: range %zu (0x%" PRIx64 "-0x%" PRIx64
			       ") is not page-aligned, empty or out of order", w->path, i,
			       ranges[i].start, ranges[i].end);
			return -EINVAL;
		}
	if (nr) {
		copy = malloc(nr * sizeof(*copy));
		if (!copy)
			return fail_writer(w, -ENOMEM, "cannot restrict the pages: out of memory");
		memcpy(copy, ranges, nr * sizeof(*copy));
	}
	free(w->keep);
	w->keep = copy;
	w->nr_keep = nr;
	w->restricted = true;
	return 0;
}

const struct ckpt_image_id *ckpt_image_writer_id(const struct ckpt_image_writer *w)
{
	return &w->inv.id;
}

int writer_add_entry(struct ckpt_image_writer *w, const struct ckpt_image_entry *e)
{
	int r = check_open(w);

	if (r < 0)
		return r;
	r = check_range(w, e->addr, e->nr_pages);
	if (r < 0)
		return r;
	r = add_entry(w, e);
	if (r < 0)
		return fail_writer(w, r, "cannot add pages: out of memory");
	count_entry(&w->stats, e);
	return 0;
}

int writer_add_raw_frame(struct ckpt_image_writer *w, int fd, const struct ckpt_image_frame *f,
			 uint32_t *ret_frame)
{
	char why[WHY_LEN] = "";
	int r = check_open(w);

	if (r < 0)
		return r;
	r = pipeline_put_raw(w->pipe, fd, f->offset, (size_t)f->csize, f->nr_pages, ret_frame, why,
			     sizeof(why));
	if (r < 0)
		return fail_writer(w, r, why);
	return 0;
}

void writer_set_created(struct ckpt_image_writer *w, int64_t ns, const char *utc)
{
	w->keep_created = true;
	w->inv.created_ns = ns;
	snprintf(w->inv.created_utc, sizeof(w->inv.created_utc), "%s", utc);
}

/* ---- metadata files ---- */

static int add_file(struct ckpt_image_writer *w, const char *name, uint64_t h)
{
	char *copy;

	if (GROW(w->inv.files, w->cap_files, w->inv.nr_files + 1) < 0)
		return -ENOMEM;
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	w->inv.files[w->inv.nr_files++] = (struct ckpt_image_file){ .name = copy, .xxh64 = h };
	return 0;
}

/* Write @name into the temporary directory; an I/O error fails the writer. */
static int write_member(struct ckpt_image_writer *w, const char *name, const void *buf,
			size_t len, bool listed)
{
	char why[WHY_LEN];
	int r;

	r = write_file_sync_at(w->tmp_fd, name, buf, len, 0600);
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot write '%s/%s': %s", w->path, name, strerror(-r));
		return fail_writer(w, r, why);
	}
	if (listed) {
		r = add_file(w, name, xxh64(buf, len, 0));
		if (r < 0)
			return fail_writer(w, r, "cannot record a file: out of memory");
	}
	return 0;
}

int ckpt_image_writer_put_file(struct ckpt_image_writer *w, const char *name, const void *buf,
			       size_t len)
{
	int r;

	r = check_open(w);
	if (r < 0)
		return r;
	if (!name || !file_name_valid(name) || file_name_reserved(name)) {
		pr_err("cannot add a file named '%s' to '%s': not a valid name", name ? name : "",
		       w->path);
		return -EINVAL;
	}
	if (inventory_find(&w->inv, name)) {
		pr_err("cannot add '%s' to '%s': %s", name, w->path, strerror(EEXIST));
		return -EEXIST;
	}
	return write_member(w, name, buf, len, true);
}

int ckpt_image_writer_put_blob(struct ckpt_image_writer *w, const char *name, const void *buf,
			       size_t len)
{
	return ckpt_image_writer_put_file(w, name, buf, len);
}

int ckpt_image_writer_put_json(struct ckpt_image_writer *w, const char *name,
			       struct json_object *obj)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	r = check_open(w);
	if (r < 0)
		return r;
	r = json_to_buf(obj, &buf, &len);
	if (r < 0) {
		pr_err("cannot serialise '%s' of '%s': %s", name, w->path, strerror(-r));
		return r;
	}
	return ckpt_image_writer_put_file(w, name, buf, len);
}

/* ---- commit ---- */

/* Normalize each layer, lay the newer ones over the older, cut to the kept ranges. */
static int resolve_entries(struct ckpt_image_writer *w, char *why, size_t whylen)
{
	struct ckpt_image_entry *acc = NULL;
	size_t nacc = 0;
	int r;

	if (!w->entries && GROW(w->entries, w->cap_entries, 1) < 0)
		return -ENOMEM; /* an empty checkpoint: no pointer arithmetic on NULL below */
	for (size_t l = 0; l <= w->nr_layers; l++) {
		size_t from = l ? w->layers[l - 1] : 0;
		size_t to = l < w->nr_layers ? w->layers[l] : w->nr_entries, n = to - from;
		struct ckpt_image_entry *next;

		r = entries_normalize(w->entries + from, &n, why, whylen);
		if (r < 0) {
			free(acc);
			return r;
		}
		if (l == 0) {
			acc = malloc((n ? n : 1) * sizeof(*acc));
			if (!acc)
				return -ENOMEM;
			if (n)
				memcpy(acc, w->entries, n * sizeof(*acc));
			nacc = n;
			continue;
		}
		r = entries_overlay(w->entries + from, n, acc, nacc, &next, &nacc);
		free(acc);
		if (r < 0)
			return r;
		acc = next;
	}
	if (w->restricted) {
		r = entries_clip(&acc, &nacc, w->keep, w->nr_keep);
		if (r < 0) {
			free(acc);
			return r;
		}
	}
	free(w->entries);
	w->entries = acc;
	w->nr_entries = w->cap_entries = nacc;
	w->nr_layers = 0;
	return 0;
}

static int write_index(struct ckpt_image_writer *w, char *why, size_t whylen)
{
	_cleanup_free_ void *buf = NULL;
	const struct ckpt_image_frame *frames;
	uint64_t stored = 0;
	size_t nf, len;
	int r;

	r = resolve_entries(w, why, whylen);
	if (r < 0) {
		why_prefix(why, whylen, "cannot commit '%s': ", w->path);
		return r;
	}
	frames = pipeline_frames(w->pipe, &nf);
	w->stats.data_pages = w->stats.zero_pages = w->stats.hole_pages = w->stats.inherit_pages = 0;
	for (size_t i = 0; i < w->nr_entries; i++)
		count_entry(&w->stats, &w->entries[i]);
	for (size_t i = 0; i < nf; i++)
		stored += frames[i].nr_pages;
	w->stats.dead_pages = stored > w->stats.data_pages ? stored - w->stats.data_pages : 0;
	r = index_serialize(w->entries, w->nr_entries, frames, nf, pipeline_bytes(w->pipe), &buf,
			    &len);
	if (r < 0)
		return r;
	r = write_file_sync_at(w->tmp_fd, INDEX_NAME, buf, len, 0600);
	if (r < 0)
		return why_set(why, whylen, r, "cannot write '%s/%s': %s", w->path, INDEX_NAME,
			       strerror(-r));
	r = add_file(w, INDEX_NAME, xxh64(buf, len, 0));
	if (r == 0)
		r = add_file(w, PAGES_NAME, pipeline_xxh64(w->pipe));
	return r;
}

static int write_inventory(struct ckpt_image_writer *w, char *why, size_t whylen)
{
	_cleanup_free_ char *buf = NULL;
	struct timespec ts;
	size_t len;
	int r;

	w->inv.format_version = CKPT_IMAGE_FORMAT_VERSION;
	free(w->inv.ckpt_version);
	w->inv.ckpt_version = strdup(CKPT_VERSION);
	if (!w->inv.ckpt_version)
		return -ENOMEM;
	if (!w->keep_created) {
		clock_gettime(CLOCK_REALTIME, &ts);
		w->inv.created_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		format_utc(w->inv.created_ns, w->inv.created_utc);
	}
	r = inventory_serialize(&w->inv, &buf, &len);
	if (r < 0)
		return r;
	r = write_file_sync_at(w->tmp_fd, INVENTORY_NAME, buf, len, 0600);
	if (r < 0)
		return why_set(why, whylen, r, "cannot write '%s/%s': %s", w->path, INVENTORY_NAME,
			       strerror(-r));
	return 0;
}

/*
 * Replace the checkpoint at the final name: swap it with the temporary
 * directory, which then holds the old checkpoint and is removed.
 */
static int publish_replace(struct ckpt_image_writer *w, char *why, size_t whylen)
{
	int r;

	if (!is_checkpoint(w->parent_fd, w->name))
		return why_set(why, whylen, -EEXIST,
			       "cannot replace '%s': it exists and is not a checkpoint", w->path);
	r = RET_NERRNO(renameat2(w->parent_fd, w->tmp_name, w->parent_fd, w->name,
				 RENAME_EXCHANGE));
	if (r == -EINVAL || r == -ENOSYS)
		/*
		 * Moving the old one aside first would leave a moment with
		 * neither at the final name: a crash then loses a checkpoint
		 * that later ones depend on. Refuse instead.
		 */
		return why_set(why, whylen, -EOPNOTSUPP,
			       "cannot replace '%s': the file system cannot exchange two directories "
			       "atomically (renameat2 RENAME_EXCHANGE), so a fold would not be crash-safe",
			       w->path);
	if (r < 0)
		return why_set(why, whylen, r, "cannot replace '%s': %s", w->path, strerror(-r));
	/* w->tmp_name now names the old checkpoint: commit removes it. */
	return 1;
}

/* Rename the temporary directory to the final name. 1: an old checkpoint awaits removal. */
static int publish(struct ckpt_image_writer *w, char *why, size_t whylen)
{
	struct stat st;
	int r;

	r = RET_NERRNO(renameat2(w->parent_fd, w->tmp_name, w->parent_fd, w->name,
				 RENAME_NOREPLACE));
	if (r == -EINVAL || r == -ENOSYS) {
		/* A file system without RENAME_NOREPLACE: check, then rename. */
		if (fstatat(w->parent_fd, w->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			r = -EEXIST;
		else
			r = RET_NERRNO(renameat(w->parent_fd, w->tmp_name, w->parent_fd, w->name));
	}
	if (r == 0)
		return 0;
	if (r == -EEXIST && (w->flags & CKPT_IMAGE_REPLACE))
		return publish_replace(w, why, whylen);
	if (r == -EEXIST)
		return why_set(why, whylen, r, "cannot commit checkpoint '%s': %s", w->path,
			       strerror(-r));
	return why_set(why, whylen, r, "cannot rename '%s' to '%s': %s", w->tmp_name, w->path,
		       strerror(-r));
}

int ckpt_image_writer_commit(struct ckpt_image_writer *w)
{
	char why[WHY_LEN] = "";
	int r, replaced = 0;

	r = check_open(w);
	if (r < 0)
		return r;
	r = pipeline_finish(w->pipe, why, sizeof(why));
	if (r < 0)
		return fail_writer(w, r, why);
	if (close(w->pages_fd) < 0 && errno != EINTR) {
		r = neg_errno();
		w->pages_fd = -1;
		snprintf(why, sizeof(why), "cannot write '%s': %s", w->pages_path, strerror(-r));
		return fail_writer(w, r, why);
	}
	w->pages_fd = -1;
	pipeline_progress(w->pipe, &w->stats.frames, &w->stats.pages_bytes);
	r = write_index(w, why, sizeof(why));
	if (r == 0)
		r = write_inventory(w, why, sizeof(why));
	if (r == 0 && fsync(w->tmp_fd) < 0) {
		r = neg_errno();
		snprintf(why, sizeof(why), "cannot write '%s': %s", w->path, strerror(-r));
	}
	if (r == 0) {
		ckpt_image_crash_point("commit-before-rename");
		r = replaced = publish(w, why, sizeof(why));
	}
	if (r < 0) {
		if (!why[0])
			snprintf(why, sizeof(why), "cannot commit '%s': %s", w->path, strerror(-r));
		return fail_writer(w, r, why);
	}
	/* From here on the checkpoint is in place. */
	ckpt_image_crash_point("commit-after-rename");
	w->state = W_COMMITTED;
	pipeline_free(w->pipe);
	w->pipe = NULL;
	close(w->tmp_fd);
	w->tmp_fd = -1;
	r = RET_NERRNO(fsync(w->parent_fd));
	if (replaced)
		remove_tmp(w); /* the old checkpoint, now under the temporary name */
	w->tmp_name[0] = '\0';
	if (r < 0) {
		pr_err("cannot make checkpoint '%s' durable: fsync of its directory: %s", w->path,
		       strerror(-r));
		return r;
	}
	pr_debug("committed '%s': %" PRIu64 " data, %" PRIu64 " zero, %" PRIu64
		 " hole pages, %" PRIu64 " frames, %" PRIu64 " bytes", w->path,
		 w->stats.data_pages, w->stats.zero_pages, w->stats.hole_pages, w->stats.frames,
		 w->stats.pages_bytes);
	return 0;
}

void ckpt_image_writer_get_stats(const struct ckpt_image_writer *w,
				 struct ckpt_image_writer_stats *ret)
{
	struct ckpt_image_writer_stats st = w->stats;

	if (w->pipe && w->state == W_OPEN)
		pipeline_progress(w->pipe, &st.frames, &st.pages_bytes);
	*ret = st;
}
