/* Opening the files a caller names (see file.h). */
#include "core/file.h"
#include "core/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "a directory", "a FIFO", ...: what a path is when it is not a regular file. */
static const char *dt_file_kind(mode_t mode)
{
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

ductile_status dt_file_open_read(const char *path, const char *what, int *fd, size_t *size)
{
    *fd = -1;
    *size = 0;
    /* O_NONBLOCK only matters for the open of a FIFO or device; reads of a regular file
     * ignore it. */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f < 0) return dt_fail(DUCTILE_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0) {
        int err = errno;
        close(f);
        return dt_fail(DUCTILE_ERR_IO, "cannot open '%s': %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        const char *kind = dt_file_kind(st.st_mode);
        if (kind[0] == 'n') return dt_fail(DUCTILE_ERR_IO, "'%s' is not a regular file, so not %s", path, what);
        return dt_fail(DUCTILE_ERR_IO, "'%s' is %s, not %s", path, kind, what);
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > SIZE_MAX) {
        close(f);
        return dt_fail(DUCTILE_ERR_IO, "'%s' is too large (%jd bytes)", path, (intmax_t)st.st_size);
    }
    *fd = f;
    *size = (size_t)st.st_size;
    return DUCTILE_OK;
}

ductile_status dt_file_read_all(int fd, const char *path, void *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, (char *)buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return dt_fail(DUCTILE_ERR_IO, "cannot read '%s' at byte %zu: %s", path, got, strerror(errno));
        if (n == 0)
            return dt_fail(DUCTILE_ERR_IO, "cannot read '%s': it ended at byte %zu of %zu (it changed while being read)",
                           path, got, size);
        got += (size_t)n;
    }
    return DUCTILE_OK;
}

ductile_status dt_file_create(const char *path, const char *what, int *fd)
{
    *fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0666);
    if (*fd >= 0) {
        /* Writes to a FIFO that has a reader should wait for it, not fail with EAGAIN. */
        int flags = fcntl(*fd, F_GETFL);
        if (flags >= 0) fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK);
        return DUCTILE_OK;
    }
    int err = errno;
    if (err == EISDIR) return dt_fail(DUCTILE_ERR_IO, "cannot save %s to '%s': it is a directory; give a file path", what, path);
    if (err == ENXIO) return dt_fail(DUCTILE_ERR_IO, "cannot save %s to '%s': it is a FIFO with no reader", what, path);
    if (err == ENOENT) {
        const char *slash = strrchr(path, '/');
        if (slash && slash != path)
            return dt_fail(DUCTILE_ERR_IO, "cannot save %s to '%s': the folder '%.*s' does not exist", what, path,
                           (int)(slash - path), path);
    }
    return dt_fail(DUCTILE_ERR_IO, "cannot save %s to '%s': %s", what, path, strerror(err));
}

ductile_status dt_file_write_all(int fd, const char *path, const void *buf, size_t size)
{
    size_t put = 0;
    while (put < size) {
        ssize_t n = write(fd, (const char *)buf + put, size - put);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return dt_fail(DUCTILE_ERR_IO, "cannot write '%s' at byte %zu: %s", path, put,
                           n < 0 ? strerror(errno) : "nothing written");
        put += (size_t)n;
    }
    return DUCTILE_OK;
}
