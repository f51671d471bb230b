/* The files a network's mappings come from, and whether one changed since (see file.h). */
#include "core/file.h"
#include "core/alloc.h"
#include "core/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct dt_watched {
    struct dt_watched *next;
    char *name;
    const char *what;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} dt_watched;

struct dt_file_watch {
    int dirfd;          /* O_PATH: names are looked up from the folder even if it is renamed */
    dt_watched *files;
};

ductile_status dt_file_watch_add(dt_file_watch **wp, const char *dir, const char *name, const char *what,
                                 const struct stat *st)
{
    if (!*wp) {
        dt_file_watch *w = dt_malloc(sizeof *w);
        if (!w) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory watching '%s'", name);
        w->files = NULL;
        w->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (w->dirfd < 0) {
            int err = errno;
            dt_free(w);
            return dt_fail(DUCTILE_ERR_IO, "cannot open the folder '%s': %s", dir, strerror(err));
        }
        *wp = w;
    }
    dt_watched *f = dt_malloc(sizeof *f);
    char *copy = dt_strdup(name);
    if (!f || !copy) {
        dt_free(f);
        dt_free(copy);
        return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory watching '%s'", name);
    }
    *f = (dt_watched){.next = (*wp)->files, .name = copy, .what = what, .dev = st->st_dev, .ino = st->st_ino,
                      .size = st->st_size, .mtime = st->st_mtim};
    (*wp)->files = f;
    return DUCTILE_OK;
}

ductile_status dt_file_watch_check(const dt_file_watch *w)
{
    if (!w) return DUCTILE_OK;
    for (const dt_watched *f = w->files; f; f = f->next) {
        struct stat st;
        /* Another inode under the name (or none): ours lives on in the mapping, unchanged. */
        if (fstatat(w->dirfd, f->name, &st, 0) != 0 || st.st_dev != f->dev || st.st_ino != f->ino) continue;
        if (st.st_size != f->size)
            return dt_fail(DUCTILE_ERR_IO, "%s '%s' changed since parsing (%lld bytes then, %lld now); parse the model again",
                           f->what, f->name, (long long)f->size, (long long)st.st_size);
        if (st.st_mtim.tv_sec != f->mtime.tv_sec || st.st_mtim.tv_nsec != f->mtime.tv_nsec)
            return dt_fail(DUCTILE_ERR_IO, "%s '%s' changed since parsing (written to after it was read); parse the model again",
                           f->what, f->name);
    }
    return DUCTILE_OK;
}

void dt_file_watch_free(dt_file_watch *w)
{
    if (!w) return;
    for (dt_watched *f = w->files, *next; f; f = next) {
        next = f->next;
        dt_free(f->name);
        dt_free(f);
    }
    close(w->dirfd);
    dt_free(w);
}
