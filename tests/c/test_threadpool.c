/* The thread pool: every item of a loop runs exactly once, in the ranges the split promises,
 * with a part index as tid that no two running parts share; whether the workers spin, sleep,
 * or are slow to wake (the owner then runs their parts), and across wake/rest windows; the
 * linger after a window and the prime before one. The fine split likewise (every range once,
 * as promised, a thread's index as tid), a slow thread's ranges taken by the others, and its
 * inline fallback without a pool. */
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

/* A fine loop (dt_parallel_for_fine): each range is one of the promised split (range i of p
 * is [i*n/p, (i+1)*n/p)), recorded by its start; tid is a thread's index, never shared by two
 * ranges running at once. */
typedef struct {
    int *hits, *busy, *starts;  /* per item; per tid; per item: ranges that began there */
    int64_t n, ranges;
    int bad_tid, overlap, bad_range, slow, threads;
    int stolen; /* ranges of thread 1's block that another thread ran */
} fine_job;

static void fine_body(void *arg, int64_t b, int64_t e, int tid)
{
    fine_job *j = arg;
    if (tid < 0 || tid >= j->threads) { __atomic_add_fetch(&j->bad_tid, 1, __ATOMIC_RELAXED); return; }
    if (__atomic_add_fetch(&j->busy[tid], 1, __ATOMIC_ACQ_REL) != 1)
        __atomic_add_fetch(&j->overlap, 1, __ATOMIC_RELAXED);
    /* Which range starts at b: the first i with i*n/p >= b; then [b, e) must be exactly it. */
    int64_t i = b * j->ranges / j->n;
    while (i * j->n / j->ranges < b) i++;
    if (i * j->n / j->ranges != b || (i + 1) * j->n / j->ranges != e)
        __atomic_add_fetch(&j->bad_range, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&j->starts[b], 1, __ATOMIC_RELAXED);
    /* thread t's block: ranges [t*p/T, (t+1)*p/T) */
    if (j->threads > 1 && tid != 1 && i >= j->ranges / j->threads && i < 2 * j->ranges / j->threads)
        __atomic_add_fetch(&j->stolen, 1, __ATOMIC_RELAXED);
    for (int64_t k = b; k < e; k++) __atomic_add_fetch(&j->hits[k], 1, __ATOMIC_RELAXED);
    if (j->slow && tid == 1) nap_us(100);
    __atomic_sub_fetch(&j->busy[tid], 1, __ATOMIC_ACQ_REL);
}

/* Rounds of fine loops (mixed with coarse ones, which share the pool's claim words): every
 * item once, every range of the split once and as promised, tids per thread. */
static void run_fine_loops(dt_pool *pool, int threads, unsigned seed, int rounds, int slow)
{
    srand(seed);
    int busy[64] = {0}, cbusy[64] = {0}, stolen = 0;
    for (int r = 0; r < rounds; r++) {
        int64_t n = 1 + rand() % 1500, grain = 1 + rand() % 40;
        int per = rand() % 6; /* 0 counts as 1 */
        int *hits = calloc((size_t)n, sizeof *hits), *starts = calloc((size_t)n, sizeof *starts);
        int64_t ranges = (n + grain - 1) / grain, most = (int64_t)threads * (per < 1 ? 1 : per);
        if (ranges > most) ranges = most;
        /* One thread, or one range: the whole loop inline. */
        if (ranges <= 1 || threads == 1) ranges = 1;
        fine_job j = {.hits = hits, .busy = busy, .starts = starts, .n = n, .ranges = ranges,
                      .slow = slow, .threads = threads};
        if (r % 7 == 0) dt_pool_rest(pool);
        if (r % 7 == 3) dt_pool_wake(pool);
        if (r % 13 == 0) nap_us(2000); /* the workers go to sleep */
        dt_parallel_for_fine(pool, n, grain, per, fine_body, &j);
        int wrong = 0, nstarts = 0;
        for (int64_t i = 0; i < n; i++) wrong += hits[i] != 1, nstarts += starts[i];
        CHECK_EQ_INT(wrong, 0);
        CHECK_EQ_INT(j.bad_tid, 0);
        CHECK_EQ_INT(j.overlap, 0);
        CHECK_EQ_INT(j.bad_range, 0);
        /* Every non-empty range ran once (with n >= ranges, as here, none is empty). */
        CHECK_EQ_INT(nstarts, (int)ranges);
        stolen += j.stolen;
        free(hits);
        free(starts);
        /* A coarse loop right after: the claim words of both kinds must not mix. */
        int chits[100] = {0};
        job c = {.hits = chits, .busy = cbusy, .n = 100, .chunk = (100 + threads - 1) / threads};
        dt_parallel_for(pool, 100, 1, body, &c);
        wrong = 0;
        for (int i = 0; i < 100; i++) wrong += chits[i] != 1;
        CHECK_EQ_INT(wrong, 0);
        CHECK_EQ_INT(c.bad_range, 0);
    }
    dt_pool_rest(pool);
    /* With worker 1 slow (a nap in each of its ranges), the others take ranges of its block
     * instead of waiting for it to run them all. */
    if (slow && threads > 1) CHECK(stolen > 0);
}

/* Inside a part, a nested loop gets no pool (a pool has one owner): the fine loop then runs
 * inline, one range as tid 0, on whichever thread runs the outer part. */
typedef struct { dt_pool *pool; int bad; } nest_job;

static void nested_inner(void *arg, int64_t b, int64_t e, int tid)
{
    int *calls = arg;
    if (b != 0 || e != 37 || tid != 0) calls[1]++;
    calls[0]++;
}

static void nested_outer(void *arg, int64_t b, int64_t e, int tid)
{
    nest_job *j = arg;
    (void)tid;
    for (int64_t i = b; i < e; i++) {
        int calls[2] = {0, 0};
        dt_parallel_for_fine(NULL, 37, 1, 4, nested_inner, calls);
        if (calls[0] != 1 || calls[1] != 0) __atomic_add_fetch(&j->bad, 1, __ATOMIC_RELAXED);
    }
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
        run_fine_loops(pool, threads, 555u + (unsigned)threads, 300, 0);
        run_fine_loops(pool, threads, 77u + (unsigned)threads, 40, 1);
        nest_job nj = {pool, 0};
        dt_pool_wake(pool);
        dt_parallel_for_fine(pool, 16, 1, 2, nested_outer, &nj);
        dt_pool_rest(pool);
        CHECK_EQ_INT(nj.bad, 0);
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
    /* ... and a fine loop without a pool: one range, inline, as tid 0. */
    int fhits[10] = {0}, fstarts[10] = {0}, fbusy[64] = {0};
    fine_job fj = {.hits = fhits, .busy = fbusy, .starts = fstarts, .n = 10, .ranges = 1, .threads = 1};
    dt_parallel_for_fine(NULL, 10, 1, 4, fine_body, &fj);
    dt_parallel_for_fine(NULL, 0, 1, 4, fine_body, &fj); /* empty: nothing runs */
    CHECK_EQ_INT(fstarts[0], 1);
    CHECK_EQ_INT(fj.bad_range, 0);
    dt_pool_wake(NULL);
    dt_pool_rest(NULL);
    dt_pool_prime(NULL);
    CHECK_EQ_INT(dt_pool_sleepers(NULL), 0);
    int wrong = 0;
    for (int i = 0; i < 10; i++) wrong += hits[i] != 1 || fhits[i] != 1;
    CHECK_EQ_INT(wrong, 0);
    TEST_MAIN_END();
}
