/* Opening untrusted files without blocking, without leaving a folder, and telling what they
 * are (see file.h). Linux: O_PATH, readlinkat on an O_PATH descriptor, openat2 when present. */
#include "core/file.h"
#include "core/alloc.h"
#include "core/status.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

/* The kernel's own limit on symlinks followed in one lookup. */
enum { DT_MAX_SYMLINKS = 40 };
/* A longer path after symlink expansion is refused (ENAMETOOLONG), as the kernel would. */
enum { DT_MAX_PATH = 4 * PATH_MAX };

const char *dt_file_kind(mode_t mode)
{
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a regular file";
}

/* "what 'path'" or "'path'". */
#define DT_NAMED_FMT "%s%s'%s'"
#define DT_NAMED(what, path) (what) ? (what) : "", (what) ? " " : "", (path)

static ductile_status dt_not_regular(const char *path, const char *what, mode_t mode)
{
    return dt_fail(DUCTILE_ERR_IO, DT_NAMED_FMT " is %s, not a regular file", DT_NAMED(what, path),
                   dt_file_kind(mode));
}

/* After a failed open: when something is there but is not a regular file (a socket gives
 * ENXIO, a FIFO without a reader gives ENXIO when opened to write), say what it is. */
static ductile_status dt_open_failed(int dirfd, const char *name, int at_flags, const char *path,
                                     const char *what, const char *verb, int err)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, at_flags) == 0 && !S_ISREG(st.st_mode)) return dt_not_regular(path, what, st.st_mode);
    return dt_fail(DUCTILE_ERR_IO, "cannot %s " DT_NAMED_FMT ": %s", verb, DT_NAMED(what, path), strerror(err));
}

/* fstat and refuse a non-regular file; closes fd on failure. */
static ductile_status dt_check_regular(int fd, const char *path, const char *what, struct stat *st)
{
    if (fstat(fd, st) != 0) {
        int err = errno;
        close(fd);
        return dt_fail(DUCTILE_ERR_IO, "cannot open " DT_NAMED_FMT ": %s", DT_NAMED(what, path), strerror(err));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return dt_not_regular(path, what, st->st_mode);
    }
    return DUCTILE_OK;
}

/* O_NONBLOCK: opening a FIFO to read returns at once instead of waiting for a writer; it has
 * no effect on reading a regular file. O_NOCTTY: a terminal never becomes ours. */
#define DT_READ_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

ductile_status dt_file_open_read(const char *path, const char *what, int *fd, struct stat *st)
{
    *fd = -1;
    int f = open(path, DT_READ_FLAGS);
    if (f < 0) return dt_open_failed(AT_FDCWD, path, 0, path, what, "open", errno);
    DT_TRY(dt_check_regular(f, path, what, st));
    *fd = f;
    return DUCTILE_OK;
}

/* ---- Confined open: the component walk ------------------------------------------------- */

typedef struct dt_walk {
    const char *rel, *what, *folder;
    int *fds;           /* fds[0]: the folder; fds[depth]: the directory we are in (O_PATH) */
    int depth, cap;
    char *rest;         /* the path still to resolve (symlink targets spliced in front) */
    char walked[PATH_MAX];  /* the directories entered, from the folder: "sub/deeper" */
    /* The links followed, newest last; rest[0..end) holds what is left of each one's target
     * (a newer target is spliced in front, inside or before an older one), so the link that
     * wrote a '..' is the newest whose end lies past it. */
    struct {
        char *name, *target;
        size_t end;
    } links[DT_MAX_SYMLINKS + 1];
    int n_links;
} dt_walk;

static ductile_status dt_walk_fail_errno(dt_walk *w, int err)
{
    return dt_fail(DUCTILE_ERR_IO, "cannot open " DT_NAMED_FMT ": %s", DT_NAMED(w->what, w->rel), strerror(err));
}

/* The component at rest[pos] leaves the folder: blames the link whose target holds it. */
static ductile_status dt_walk_leaves(dt_walk *w, size_t pos)
{
    for (int i = w->n_links - 1; i >= 0; i--)
        if (pos < w->links[i].end)
            return dt_fail(DUCTILE_ERR_IO, DT_NAMED_FMT ": symlink '%s' -> '%s' leaves %s", DT_NAMED(w->what, w->rel),
                           w->links[i].name, w->links[i].target, w->folder);
    return dt_fail(DUCTILE_ERR_IO, DT_NAMED_FMT ": '..' leaves %s", DT_NAMED(w->what, w->rel), w->folder);
}

static ductile_status dt_walk_push(dt_walk *w, int fd, const char *comp)
{
    size_t wl = strlen(w->walked);
    if (wl + 1 + strlen(comp) >= sizeof w->walked) {
        close(fd);
        return dt_walk_fail_errno(w, ENAMETOOLONG);
    }
    snprintf(w->walked + wl, sizeof w->walked - wl, "%s%s", wl ? "/" : "", comp);
    if (w->depth + 1 == w->cap) {
        int nc = w->cap * 2;
        int *n = dt_realloc(w->fds, (size_t)nc * sizeof *n);
        if (!n) {
            close(fd);
            return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory opening '%s'", w->rel);
        }
        w->fds = n;
        w->cap = nc;
    }
    w->fds[++w->depth] = fd;
    return DUCTILE_OK;
}

/* Remembers a link for messages, named as a path from the folder; its text will be
 * rest[0..end). */
static ductile_status dt_walk_note_link(dt_walk *w, const char *comp, const char *target, size_t end)
{
    if (w->n_links == DT_MAX_SYMLINKS) return dt_walk_fail_errno(w, ELOOP);
    size_t n = strlen(w->walked) + 1 + strlen(comp) + 1;
    char *name = dt_malloc(n), *t = dt_strdup(target);
    if (!name || !t) {
        dt_free(name);
        dt_free(t);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory opening '%s'", w->rel);
    }
    snprintf(name, n, "%s%s%s", w->walked, w->walked[0] ? "/" : "", comp);
    w->links[w->n_links].name = name;
    w->links[w->n_links].target = t;
    w->links[w->n_links].end = end;
    w->n_links++;
    return DUCTILE_OK;
}

/* Replaces the component just read (rest[0..after)) by the link's target. */
static ductile_status dt_walk_splice(dt_walk *w, const char *comp, const char *target, size_t after)
{
    size_t tl = strlen(target), rl = strlen(w->rest + after);
    /* Older targets' text after the component moves by tl - after; what was before it is
     * replaced. */
    for (int i = 0; i < w->n_links; i++) w->links[i].end = w->links[i].end > after ? w->links[i].end - after + tl : 0;
    DT_TRY(dt_walk_note_link(w, comp, target, tl));
    if (tl + rl >= DT_MAX_PATH) return dt_walk_fail_errno(w, ENAMETOOLONG);
    char *n = dt_malloc(tl + 1 + rl + 1);
    if (!n) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory opening '%s'", w->rel);
    /* rest[after..] is empty or starts with '/': the target takes the component's place
     * exactly ("l" -> "t" makes "l/x" "t/x" and a last "l" a last "t", not "t/"). */
    memcpy(n, target, tl);
    memcpy(n + tl, w->rest + after, rl + 1);
    dt_free(w->rest);
    w->rest = n;
    return DUCTILE_OK;
}

/* Reads the symlink `name` in the current directory (or the link fd itself when name is "");
 * an absolute target leaves the folder at once. */
static ductile_status dt_walk_follow(dt_walk *w, int fd, const char *name, const char *comp, size_t after)
{
    char target[PATH_MAX];
    ssize_t n = readlinkat(fd, name, target, sizeof target - 1);
    if (n < 0) return dt_walk_fail_errno(w, errno);
    if ((size_t)n >= sizeof target - 1) return dt_walk_fail_errno(w, ENAMETOOLONG);
    target[n] = 0;
    if (target[0] == '/') {
        DT_TRY(dt_walk_note_link(w, comp, target, 1));
        return dt_walk_leaves(w, 0);
    }
    return dt_walk_splice(w, comp, target, after);
}

static ductile_status dt_walk_run(dt_walk *w, int *out)
{
    for (;;) {
        /* The next component rest[start..end) and whether another one follows. */
        size_t start = 0;
        while (w->rest[start] == '/') start++;
        size_t end = start;
        while (w->rest[end] && w->rest[end] != '/') end++;
        size_t next = end;
        while (w->rest[next] == '/') next++;
        /* "name/" is not last: like the kernel, it must then be a directory. */
        bool last = w->rest[end] == 0;
        size_t len = end - start;
        if (len >= NAME_MAX + 1) return dt_walk_fail_errno(w, ENAMETOOLONG);
        char comp[NAME_MAX + 1];
        memcpy(comp, w->rest + start, len);
        comp[len] = 0;
        int dir = w->fds[w->depth];

        if (len == 0 || strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
            if (strcmp(comp, "..") == 0) {
                if (w->depth == 0) return dt_walk_leaves(w, start);
                close(w->fds[w->depth--]);
                char *slash = strrchr(w->walked, '/');
                *(slash ? slash : w->walked) = 0;
            }
            if (last) {
                struct stat st;
                if (fstat(w->fds[w->depth], &st) != 0) return dt_walk_fail_errno(w, errno);
                return dt_not_regular(w->rel, w->what, st.st_mode);
            }
        } else if (last) {
            int fd = openat(dir, comp, DT_READ_FLAGS | O_NOFOLLOW);
            if (fd >= 0) {
                *out = fd;
                return DUCTILE_OK;
            }
            /* O_NOFOLLOW on a symlink fails with ELOOP: follow it ourselves. */
            if (errno != ELOOP) return dt_open_failed(dir, comp, AT_SYMLINK_NOFOLLOW, w->rel, w->what, "open", errno);
            DT_TRY(dt_walk_follow(w, dir, comp, comp, end));
            continue;
        } else {
            int fd = openat(dir, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) return dt_walk_fail_errno(w, errno);
            struct stat st;
            if (fstat(fd, &st) != 0) {
                int err = errno;
                close(fd);
                return dt_walk_fail_errno(w, err);
            }
            if (S_ISLNK(st.st_mode)) {
                ductile_status s = dt_walk_follow(w, fd, "", comp, end);
                close(fd);
                if (s) return s;
                continue;
            }
            if (!S_ISDIR(st.st_mode)) {
                close(fd);
                return dt_walk_fail_errno(w, ENOTDIR);
            }
            DT_TRY(dt_walk_push(w, fd, comp));
        }
        /* Drop the component from rest. */
        memmove(w->rest, w->rest + next, strlen(w->rest + next) + 1);
        for (int i = 0; i < w->n_links; i++) w->links[i].end = w->links[i].end > next ? w->links[i].end - next : 0;
    }
}

static ductile_status dt_file_walk(int dirfd, const char *rel, const char *what, const char *folder, int *out)
{
    dt_walk w = {.rel = rel, .what = what, .folder = folder, .cap = 16};
    w.fds = dt_malloc((size_t)w.cap * sizeof *w.fds);
    w.rest = dt_strdup(rel);
    if (!w.fds || !w.rest) {
        dt_free(w.fds);
        dt_free(w.rest);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory opening '%s'", rel);
    }
    w.fds[0] = dirfd;
    /* An absolute path is a symlink-free escape; the caller's own check usually comes first. */
    ductile_status s = rel[0] == '/' ? dt_fail(DUCTILE_ERR_IO, DT_NAMED_FMT ": an absolute path leaves %s",
                                               DT_NAMED(what, rel), folder)
                                     : dt_walk_run(&w, out);
    for (int i = 1; i <= w.depth; i++) close(w.fds[i]);
    for (int i = 0; i < w.n_links; i++) {
        dt_free(w.links[i].name);
        dt_free(w.links[i].target);
    }
    dt_free(w.fds);
    dt_free(w.rest);
    return s;
}

static bool dt_openat2_disabled(void)
{
    const char *v = getenv("DUCTILE_FILE_NO_OPENAT2");
    return v && v[0] && strcmp(v, "0") != 0;
}

ductile_status dt_file_open_beneath(const char *dir, const char *rel, const char *what, const char *folder,
                                    int *fd, struct stat *st)
{
    *fd = -1;
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return dt_fail(DUCTILE_ERR_IO, "cannot open %s '%s': %s", folder, dir, strerror(errno));
    int f = -1;
#ifdef SYS_openat2
    /* The fast path. Its failures carry no detail (EXDEV for any escape), so every failure is
     * answered again by the walk, which names the symlink at fault. */
    if (!dt_openat2_disabled()) {
        struct open_how how = {.flags = DT_READ_FLAGS, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        f = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof how);
    }
#endif
    ductile_status s = f >= 0 ? DUCTILE_OK : dt_file_walk(dfd, rel, what, folder, &f);
    close(dfd);
    if (s) return s;
    DT_TRY(dt_check_regular(f, rel, what, st));
    *fd = f;
    return DUCTILE_OK;
}

/* ---- Reading and writing whole files --------------------------------------------------- */

ductile_status dt_file_read_all(int fd, void *buf, size_t n, const char *path, const char *what)
{
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got < (size_t)1 << 30 ? n - got : (size_t)1 << 30;
        ssize_t r = pread(fd, (char *)buf + got, chunk, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return dt_fail(DUCTILE_ERR_IO, "cannot read " DT_NAMED_FMT ": %s", DT_NAMED(what, path), strerror(errno));
        if (r == 0)
            return dt_fail(DUCTILE_ERR_IO, "cannot read " DT_NAMED_FMT ": it ended after %zu of %zu bytes (it shrank while being read)",
                           DT_NAMED(what, path), got, n);
        got += (size_t)r;
    }
    return DUCTILE_OK;
}

ductile_status dt_file_create(const char *path, const char *what, int *fd)
{
    *fd = -1;
    /* No O_TRUNC yet: a FIFO or device is refused before anything happens to it. O_NONBLOCK:
     * opening a FIFO to write fails at once (ENXIO) instead of waiting for a reader. */
    int f = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0666);
    if (f < 0) return dt_open_failed(AT_FDCWD, path, 0, path, what, "create", errno);
    struct stat st;
    if (fstat(f, &st) != 0) {
        int err = errno;
        close(f);
        return dt_fail(DUCTILE_ERR_IO, "cannot create " DT_NAMED_FMT ": %s", DT_NAMED(what, path), strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return dt_not_regular(path, what, st.st_mode);
    }
    if (ftruncate(f, 0) != 0) {
        int err = errno;
        close(f);
        return dt_fail(DUCTILE_ERR_IO, "cannot write " DT_NAMED_FMT ": %s", DT_NAMED(what, path), strerror(err));
    }
    /* Back to blocking writes for the regular file (O_NONBLOCK is meaningless there, but a
     * short write must never be mistaken for EAGAIN). */
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0) (void)fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    *fd = f;
    return DUCTILE_OK;
}

ductile_status dt_file_write_close(int fd, const void *buf, size_t n, const char *path, const char *what)
{
    size_t put = 0;
    while (put < n) {
        size_t chunk = n - put < (size_t)1 << 30 ? n - put : (size_t)1 << 30;
        ssize_t r = write(fd, (const char *)buf + put, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int err = r < 0 ? errno : EIO;
            close(fd);
            return dt_fail(DUCTILE_ERR_IO, "cannot write " DT_NAMED_FMT ": %s", DT_NAMED(what, path), strerror(err));
        }
        put += (size_t)r;
    }
    if (close(fd) != 0)
        return dt_fail(DUCTILE_ERR_IO, "cannot write " DT_NAMED_FMT ": %s", DT_NAMED(what, path), strerror(errno));
    return DUCTILE_OK;
}
