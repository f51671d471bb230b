/* A fixed pool of worker threads running parallel-for loops. One pool per context: a pool is
 * used by one thread at a time (its owner), which also works as worker 0.
 *
 * Waking a sleeping thread costs tens of microseconds, and far more on a VM whose idle vCPU
 * the hypervisor has descheduled: more than a small layer takes. So (1) between dt_pool_wake
 * and dt_pool_rest (one execute) workers never sleep: they spin between loops; (2) dt_pool_wake
 * wakes every sleeper at once, at the start of an execute, so the wake-ups overlap with the
 * owner's first work; (3) a loop's parts are claimed, not assigned: the owner runs every part
 * that no worker has taken by the time it finishes its own, so a worker slow to wake delays
 * nothing. A part's range still depends only on n, grain and the thread count, and `tid` is the
 * part's index, so results do not depend on which thread ran what. */
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
/* Keeps the workers spinning (awake) until dt_pool_rest: calls around a burst of loops such as
 * one execute. After dt_pool_rest they keep spinning (yielding) for a bounded linger (tens of
 * milliseconds, threadpool.c) before they sleep, so the next request within it finds them
 * running. All three accept NULL. */
void dt_pool_wake(dt_pool *pool);
void dt_pool_rest(dt_pool *pool);
/* Wakes sleeping workers for one linger, as a hint that loops are coming (a shape being set
 * before an execute): their wake-up overlaps the caller's work. No effect inside a window. */
void dt_pool_prime(dt_pool *pool);
/* Workers asleep (or about to sleep) now: for tests. */
int dt_pool_sleepers(dt_pool *pool);
/* Splits [0, n) into at most `threads` contiguous ranges of at least `grain` items and runs
 * fn on each; returns when all are done. The split depends only on n, grain and the thread
 * count, so results are deterministic; fn's tid is the part's index (< threads), unique among
 * the parts running at once (per-part scratch). pool may be NULL (runs inline). */
void dt_parallel_for(dt_pool *pool, int64_t n, int64_t grain, dt_range_fn fn, void *arg);
/* As dt_parallel_for, but into up to per_thread x threads ranges (at most DT_POOL_FINE_MAX),
 * each thread given a block of consecutive ones (as a coarse split would give it its part) that
 * it takes one at a time, in order; a thread done with its block takes the last ranges left of
 * the others'. A thread slowed by another process on its core then runs fewer ranges instead
 * of holding up the loop, and on free cores each runs its own block (warm caches). The
 * ranges depend only on n, grain, per_thread and the thread count (range i of p is
 * [i*n/p, (i+1)*n/p)), so results are deterministic when fn's results depend only on its
 * range. fn's tid is the index of the thread that runs it (< threads), unique among the ranges
 * running at once; one thread runs several ranges in turn, so scratch must be per tid, never
 * per range, and a body must not assume which ranges share a tid. pool may be NULL (inline, one
 * range); per_thread < 1 counts as 1. */
void dt_parallel_for_fine(dt_pool *pool, int64_t n, int64_t grain, int per_thread, dt_range_fn fn,
                          void *arg);
enum { DT_POOL_FINE_MAX = 4095 };

#endif
