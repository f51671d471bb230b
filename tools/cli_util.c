/* cli_util — shared helpers (see cli_util.h). */
#include "cli_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

int cli_report(ductile_status status)
{
    fprintf(stderr, "error: %s: %s\n", ductile_status_name(status), ductile_last_error());
    return CLI_EXIT_FAILURE;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_FAILURE;
}

double cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
