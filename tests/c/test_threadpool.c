/* The thread pool: every item of a loop runs exactly once, in the ranges the split promises,
 * with a part index as tid that no two running parts share; whether the workers spin, sleep,
 * or are slow to wake (the owner then runs their parts), and across wake/rest windows. */
#include "testutil.h"
#include "core/threadpool.h"

#include <stdlib.h>
#include <time.h>

typedef struct {
    int *hits;          /* per item: how many times it ran */
    int *busy;          /* per tid: parts running with it now */
    int bad_tid, overlap, slow;
    int64_t n, chunk;
    int bad_range;
} job;

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

static void body(void *arg, int64_t b, int64_t e, int tid)
{
    job *j = arg;
    if (tid < 0 || tid >= 64) { __atomic_add_fetch(&j->bad_tid, 1, __ATOMIC_RELAXED); return; }
    if (__atomic_add_fetch(&j->busy[tid], 1, __ATOMIC_ACQ_REL) != 1)
        __atomic_add_fetch(&j->overlap, 1, __ATOMIC_RELAXED);
    /* The range is part `tid` of the promised split. */
    if (b != tid * j->chunk || e != (b + j->chunk < j->n ? b + j->chunk : j->n))
        __atomic_add_fetch(&j->bad_range, 1, __ATOMIC_RELAXED);
    for (int64_t i = b; i < e; i++) __atomic_add_fetch(&j->hits[i], 1, __ATOMIC_RELAXED);
    if (j->slow && tid == 1) nap_us(200);
    __atomic_sub_fetch(&j->busy[tid], 1, __ATOMIC_ACQ_REL);
}

static void run_loops(dt_pool *pool, int threads, unsigned seed, int rounds, int slow)
{
    srand(seed);
    int busy[64] = {0};
    for (int r = 0; r < rounds; r++) {
        int64_t n = 1 + rand() % 997, grain = 1 + rand() % 50;
        int *hits = calloc((size_t)n, sizeof *hits);
        int64_t parts = (n + grain - 1) / grain;
        if (parts > threads) parts = threads;
        job j = {.hits = hits, .busy = busy, .n = n, .chunk = parts > 1 ? (n + parts - 1) / parts : n,
                 .slow = slow};
        if (r % 7 == 0) dt_pool_rest(pool);
        if (r % 7 == 3) dt_pool_wake(pool);
        if (r % 11 == 0) nap_us(2000); /* long enough for the workers to go to sleep */
        dt_parallel_for(pool, n, grain, body, &j);
        int wrong = 0;
        for (int64_t i = 0; i < n; i++) wrong += hits[i] != 1;
        CHECK_EQ_INT(wrong, 0);
        CHECK_EQ_INT(j.bad_tid, 0);
        CHECK_EQ_INT(j.overlap, 0);
        CHECK_EQ_INT(j.bad_range, 0);
        free(hits);
    }
    dt_pool_rest(pool);
}

int main(void)
{
    for (int threads = 1; threads <= 5; threads++) {
        dt_pool *pool;
        CHECK_EQ_INT(dt_pool_create(threads, &pool), DUCTILE_OK);
        CHECK_EQ_INT(dt_pool_threads(pool), threads);
        run_loops(pool, threads, 1234u + (unsigned)threads, 400, 0);
        run_loops(pool, threads, 99u + (unsigned)threads, 60, 1);
        dt_pool_free(pool);
    }
    /* A pool freed while its workers sleep, and one freed while they spin awake. */
    dt_pool *pool;
    CHECK_EQ_INT(dt_pool_create(3, &pool), DUCTILE_OK);
    nap_us(5000);
    dt_pool_free(pool);
    CHECK_EQ_INT(dt_pool_create(3, &pool), DUCTILE_OK);
    dt_pool_wake(pool);
    dt_pool_free(pool);
    /* NULL pool: inline. */
    int hits[10] = {0}, busy[64] = {0};
    job j = {.hits = hits, .busy = busy, .n = 10, .chunk = 10};
    dt_parallel_for(NULL, 10, 1, body, &j);
    dt_pool_wake(NULL);
    dt_pool_rest(NULL);
    int wrong = 0;
    for (int i = 0; i < 10; i++) wrong += hits[i] != 1;
    CHECK_EQ_INT(wrong, 0);
    TEST_MAIN_END();
}
