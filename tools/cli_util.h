/* cli_util — what every part of the CLI shares: exit codes, error reporting, the clock. */
#ifndef CLI_UTIL_H
#define CLI_UTIL_H

#include "ductile.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

/* Prints "error: <status name>: <ductile_last_error()>" on stderr; returns CLI_EXIT_FAILURE. */
int cli_report(ductile_status status);

/* Prints "error: <formatted message>" on stderr; returns CLI_EXIT_FAILURE. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds on CLOCK_MONOTONIC. */
double cli_now_ms(void);

#endif
