/* Errors as values: a failing internal call sets the thread's message and returns a status. */
#ifndef DT_STATUS_H
#define DT_STATUS_H

#include "ductile.h"

/* Sets the calling thread's last-error message (printf format) and returns status. */
ductile_status dt_fail(ductile_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the current message: "<prefix>: <old message>". Returns status. */
ductile_status dt_fail_prefix(ductile_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The calling thread's message. */
const char *dt_last_error(void);

#define DT_TRY(expr)                          \
    do {                                      \
        ductile_status dt_s_ = (expr);        \
        if (dt_s_ != DUCTILE_OK) return dt_s_; \
    } while (0)

#endif
