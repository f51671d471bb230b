/* Files named by a user or by a model: ONNX models, external data, engines.
 *
 * Every open is non-blocking and followed by fstat before a byte is read or written, so a
 * FIFO, a device, a socket or a directory gives a message ("'x' is a FIFO, not a regular
 * file") instead of a hang or a misleading read. Messages name the path; `what` (may be NULL)
 * says what the file is for ("external data file") and goes before the quoted path:
 *     cannot open external data file 'w.bin': No such file or directory
 *     'model.engine' is a FIFO, not a regular file
 * Every function returns DUCTILE_ERR_IO (or OUT_OF_MEMORY) with that message on failure. */
#ifndef DT_FILE_H
#define DT_FILE_H

#include "ductile.h"

#include <stddef.h>
#include <sys/stat.h>

/* What a file of this mode is, in words: "a directory", "a FIFO", "a socket", "a character
 * device", "a block device", "a symbolic link", "a regular file". */
const char *dt_file_kind(mode_t mode);

/* Opens path read-only (non-blocking, close-on-exec) and fstat's it into *st. Refuses
 * anything but a regular file. On success the caller owns *fd. */
ductile_status dt_file_open_read(const char *path, const char *what, int *fd, struct stat *st);

/* As dt_file_open_read, for rel inside the folder dir, confined to it: rel and every symlink
 * on the way are resolved component by component, each component opened with O_NOFOLLOW, so
 * nothing outside dir is opened whatever the kernel. Symlinks that stay inside dir are
 * followed (as openat2's RESOLVE_BENEATH does); a symlink whose target is absolute or climbs
 * above dir is refused:
 *     external data file 'w.bin': symlink 'w.bin' -> '../x.bin' leaves the model's folder
 * where `folder` names dir in words ("the model's folder"). openat2 (Linux 5.6+) is tried
 * first as a fast path; any failure is answered by the walk, so messages and results do not
 * depend on the kernel. DUCTILE_FILE_NO_OPENAT2=1 in the environment skips openat2 (tests use
 * it to run the walk on kernels that have openat2). Hardlinks cannot be told from files and
 * are read. */
ductile_status dt_file_open_beneath(const char *dir, const char *rel, const char *what,
                                    const char *folder, int *fd, struct stat *st);

/* Reads exactly n bytes from the start of fd. A file that ends early (it shrank after fstat)
 * is an error naming both sizes. */
ductile_status dt_file_read_all(int fd, void *buf, size_t n, const char *path, const char *what);

/* Creates path, or truncates it when it is a regular file, for writing. A FIFO, device,
 * socket or directory is refused before anything is written. On success the caller owns *fd. */
ductile_status dt_file_create(const char *path, const char *what, int *fd);

/* Writes n bytes to fd, then closes it (always); an error of write or close is reported. */
ductile_status dt_file_write_close(int fd, const void *buf, size_t n, const char *path,
                                   const char *what);

/* The files whose mappings a network reads (the model file, external data), with the size
 * and modification time they had when mapped, so the builder can refuse to read a mapping
 * whose file has since been truncated (a read past the new end is SIGBUS) or rewritten. */
typedef struct dt_file_watch dt_file_watch;

/* Records the file name (relative to dir; dir is opened once per watch) and *st, which must
 * come from fstat on the descriptor that was mapped. *w starts NULL. */
ductile_status dt_file_watch_add(dt_file_watch **w, const char *dir, const char *name,
                                 const char *what, const struct stat *st);
/* DUCTILE_OK when every recorded file still has its size and modification time, or when its
 * name no longer leads to the same inode (renamed over or deleted: the mapping keeps the old
 * one alive, and it is intact). Otherwise DUCTILE_ERR_IO:
 *     external data file 'w.bin' changed since parsing (12 bytes then, 4 now): ... */
ductile_status dt_file_watch_check(const dt_file_watch *w);
void dt_file_watch_free(dt_file_watch *w);

#endif
