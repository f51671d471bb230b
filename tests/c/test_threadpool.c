/* The thread pool: every item of a loop runs exactly once, in the ranges the split promises,
 * with a part index as tid that no two running parts share; whether the workers spin, sleep,
 * or are slow to wake (the owner then runs their parts), and across wake/rest windows; the
 * linger after a window and the prime before one. */
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

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Polls until `want` workers sleep or `ms` pass; returns the last count seen. */
static int sleepers_within(dt_pool *pool, int want, double ms)
{
    double t0 = now_ms();
    int n;
    while ((n = dt_pool_sleepers(pool)) != want && now_ms() - t0 < ms) nap_us(200);
    return n;
}

/* After an execute (dt_pool_rest) the workers linger awake, so a request shortly after finds
 * them running (a parked vCPU is slow to wake, and slow for a while after: the idle penalty
 * of issue 8); they sleep once the linger is over, and dt_pool_prime wakes them early. */
static void check_linger(int threads)
{
    dt_pool *pool;
    CHECK_EQ_INT(dt_pool_create(threads, &pool), DUCTILE_OK);
    int workers = threads - 1;
    /* Before any execute there is no linger: the workers go to sleep after their short spin. */
    CHECK_EQ_INT(sleepers_within(pool, workers, 5000), workers);
    dt_pool_wake(pool);
    CHECK_EQ_INT(sleepers_within(pool, 0, 5000), 0);
    int hits[64] = {0}, busy[64] = {0};
    job j = {.hits = hits, .busy = busy, .n = 64, .chunk = (64 + threads - 1) / threads};
    dt_parallel_for(pool, 64, 1, body, &j);
    dt_pool_rest(pool);
    /* 20 ms after rest, well inside the linger (tens of ms) and far past the short spin
     * (~0.1 ms) after which the workers used to sleep, none sleeps. */
    double t0 = now_ms();
    int slept = 0;
    while (now_ms() - t0 < 20) {
        int n = dt_pool_sleepers(pool);
        if (now_ms() - t0 < 20 && n) slept = n;
        nap_us(500);
    }
    CHECK_EQ_INT(slept, 0);
    /* Then they do sleep (the linger is bounded) ... */
    CHECK_EQ_INT(sleepers_within(pool, workers, 5000), workers);
    /* ... and a prime (a shape set before execute) wakes them without a wake/rest window. */
    dt_pool_prime(pool);
    CHECK_EQ_INT(sleepers_within(pool, 0, 5000), 0);
    CHECK_EQ_INT(sleepers_within(pool, workers, 5000), workers);
    dt_pool_free(pool);
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
    check_linger(2);
    check_linger(4);
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
    dt_pool_prime(NULL);
    CHECK_EQ_INT(dt_pool_sleepers(NULL), 0);
    int wrong = 0;
    for (int i = 0; i < 10; i++) wrong += hits[i] != 1;
    CHECK_EQ_INT(wrong, 0);
    TEST_MAIN_END();
}
