#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { DT_MSG_CAP = 2048 };
static _Thread_local char dt_msg[DT_MSG_CAP];

ductile_status dt_fail(ductile_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dt_msg, sizeof dt_msg, fmt, ap);
    va_end(ap);
    return status;
}

ductile_status dt_fail_prefix(ductile_status status, const char *fmt, ...)
{
    char prefix[DT_MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    if (k < 0) return status;
    size_t p = strlen(prefix);
    memcpy(prefix + p, ": ", 3);
    p += 2;
    size_t old = strnlen(dt_msg, DT_MSG_CAP - 1);
    if (p + old >= DT_MSG_CAP) old = DT_MSG_CAP - 1 - p; /* keep the start of both */
    memmove(dt_msg + p, dt_msg, old);
    memcpy(dt_msg, prefix, p);
    dt_msg[p + old] = 0;
    return status;
}

const char *dt_last_error(void) { return dt_msg; }

const char *ductile_last_error(void) { return dt_msg; }

const char *ductile_status_name(ductile_status s)
{
    switch (s) {
    case DUCTILE_OK: return "DUCTILE_OK";
    case DUCTILE_ERR_INVALID_ARGUMENT: return "DUCTILE_ERR_INVALID_ARGUMENT";
    case DUCTILE_ERR_PARSE: return "DUCTILE_ERR_PARSE";
    case DUCTILE_ERR_UNSUPPORTED: return "DUCTILE_ERR_UNSUPPORTED";
    case DUCTILE_ERR_SHAPE: return "DUCTILE_ERR_SHAPE";
    case DUCTILE_ERR_PROFILE: return "DUCTILE_ERR_PROFILE";
    case DUCTILE_ERR_OUT_OF_MEMORY: return "DUCTILE_ERR_OUT_OF_MEMORY";
    case DUCTILE_ERR_IO: return "DUCTILE_ERR_IO";
    case DUCTILE_ERR_FORMAT: return "DUCTILE_ERR_FORMAT";
    case DUCTILE_ERR_STATE: return "DUCTILE_ERR_STATE";
    case DUCTILE_ERR_INTERNAL: return "DUCTILE_ERR_INTERNAL";
    }
    return "DUCTILE_UNKNOWN_STATUS";
}

const char *ductile_version(void) { return "0.1.0"; }
