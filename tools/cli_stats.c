/* cli_stats — latency statistics (see cli_stats.h). */
#include "cli_stats.h"

#include <math.h>
#include <stdlib.h>

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void cli_stats_compute(double *ms, size_t n, cli_latency *out)
{
    qsort(ms, n, sizeof *ms, compare_double);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += ms[i];
    out->min = ms[0];
    out->max = ms[n - 1];
    out->mean = sum / (double)n;
    out->median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
}

double cli_stats_percentile(const double *sorted, size_t n, double p)
{
    double rank = ceil(p / 100.0 * (double)n);
    size_t index = rank < 1.0 ? 0 : (size_t)rank - 1;
    return sorted[index < n ? index : n - 1];
}

void cli_stats_print(FILE *f, double *ms, size_t n, const double *percentiles,
                     int num_percentiles, double total_ms)
{
    cli_latency l;
    cli_stats_compute(ms, n, &l);
    fprintf(f, "Latency: min = %.5g ms, max = %.5g ms, mean = %.5g ms, median = %.5g ms",
            l.min, l.max, l.mean, l.median);
    for (int i = 0; i < num_percentiles; i++)
        fprintf(f, ", percentile(%g%%) = %.5g ms", percentiles[i],
                cli_stats_percentile(ms, n, percentiles[i]));
    fputc('\n', f);
    fprintf(f, "Throughput: %.5g qps\n", total_ms > 0.0 ? (double)n * 1e3 / total_ms : 0.0);
}
