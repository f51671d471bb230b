/* Opening the files a caller names (models, engines): without blocking, and saying what a
 * path is when it is not a regular file. */
#ifndef DT_FILE_H
#define DT_FILE_H

#include "ductile.h"

#include <stddef.h>

/* Opens path for reading. On success *fd is open (close it) and *size is the file's size.
 *   1. The open never blocks: a FIFO with no writer would hang a plain open(2).
 *   2. Anything but a regular file is refused with DUCTILE_ERR_IO, naming what it is:
 *      "'/tmp' is a directory, not <what>" (what: "an engine file", "an ONNX model").
 *   3. A file that cannot open gives "cannot open '<path>': <reason>". */
ductile_status dt_file_open_read(const char *path, const char *what, int *fd, size_t *size);

/* Reads exactly size bytes from fd into buf; DUCTILE_ERR_IO naming path when the file
 * ends early (it changed since it was opened) or a read fails. */
ductile_status dt_file_read_all(int fd, const char *path, void *buf, size_t size);

/* Creates or truncates path for writing what ("the engine"); never blocks (a FIFO with no
 * reader is refused). A directory, a missing folder or a FIFO with no reader are named. */
ductile_status dt_file_create(const char *path, const char *what, int *fd);

/* Writes size bytes to fd; DUCTILE_ERR_IO naming path on failure. */
ductile_status dt_file_write_all(int fd, const char *path, const void *buf, size_t size);

#endif
