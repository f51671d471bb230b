/* A fixed pool of worker threads running parallel-for loops. One pool per context: a pool is
 * used by one thread at a time (its owner), which also works as worker 0. */
#ifndef DT_THREADPOOL_H
#define DT_THREADPOOL_H

#include "ductile.h"
#include <stdint.h>

typedef struct dt_pool dt_pool;

/* Body of a parallel loop: runs items [begin, end) as worker `tid` (0 <= tid < threads). */
typedef void (*dt_range_fn)(void *arg, int64_t begin, int64_t end, int tid);

ductile_status dt_pool_create(int threads, dt_pool **out);
void dt_pool_free(dt_pool *pool);
int dt_pool_threads(const dt_pool *pool);
/* Splits [0, n) into at most `threads` contiguous ranges of at least `grain` items and runs
 * fn on each; returns when all are done. The split depends only on n, grain and the thread
 * count, so results are deterministic. pool may be NULL (runs inline). */
void dt_parallel_for(dt_pool *pool, int64_t n, int64_t grain, dt_range_fn fn, void *arg);

#endif
