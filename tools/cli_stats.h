/* cli_stats — latency statistics of the timed runs, as trtexec reports them. */
#ifndef CLI_STATS_H
#define CLI_STATS_H

#include <stddef.h>
#include <stdio.h>

typedef struct cli_latency {
    double min, max, mean, median; /* ms */
} cli_latency;

/* Sorts ms[0..n) in place and fills *out. n must be >= 1. */
void cli_stats_compute(double *ms, size_t n, cli_latency *out);

/* Nearest-rank percentile of sorted[0..n): the smallest value with at least p% of the runs at
 * or below it (p = 0 gives the minimum). n >= 1, 0 <= p <= 100. */
double cli_stats_percentile(const double *sorted, size_t n, double p);

/* "Latency: min = X ms, max = X ms, mean = X ms, median = X ms, percentile(90%) = X ms, ..."
 * then "Throughput: X qps". Sorts ms. */
void cli_stats_print(FILE *f, double *ms, size_t n, const double *percentiles,
                     int num_percentiles, double total_ms);

#endif
