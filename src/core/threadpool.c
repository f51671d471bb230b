#include "core/threadpool.h"
#include "core/alloc.h"
#include "core/status.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#ifdef DT_POOL_TRACE
#include "core/pool_trace.h"
#endif

/* Outside a wake/rest window, a waiting worker spins this many rounds (about 100
 * microseconds) before it sleeps, so loops issued back to back outside an execute (the
 * builder's timing runs) still skip the sleep. */
enum { DT_POOL_SPIN = 4000, DT_POOL_MAX = 64 };

/* After an execute (dt_pool_rest), and after dt_pool_prime, workers stay awake this long
 * before they sleep, so a request that arrives within it finds them running. Measured on the
 * 2-vCPU VM (bench/results/cpu-idle-2026-12-02-s8.md), mobilenet_v2 b2 on 2 threads: with
 * workers that slept through a 50 ms gap, 14.1-14.7 ms against 8.8-9.1 back to back (a
 * parked vCPU is slow to run again: 25-150 us on a quiet machine, 1-5 ms on a busy one; in
 * some runs every loop then ran ~1.7x slower); with workers that spun through it, 9.1-9.4.
 * Python's back-to-back loop also let them sleep between executes (its ~0.1 ms between
 * calls is longer than DT_POOL_SPIN): bert 1x16 on 2 threads 1.41 -> 0.94 ms. onnxruntime's
 * workers spin ~45 ms after each run. The spin yields (sched_yield), so other runnable
 * threads take the core first; the cost is up to this much CPU time of each worker per
 * execute. */
#define DT_POOL_LINGER_NS 60000000ll

static int64_t dt_pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static inline void dt_pool_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Every field shared between threads is read and written with __atomic builtins. The
 * sleeping handshakes (sleepers vs generation/awake, done_waiter vs remaining) are Dekker
 * pairs: each side stores its word, then loads the other's, both sequentially consistent, so
 * at least one side sees the other and no wake-up is lost. */
typedef struct { struct dt_pool *pool; int tid; } dt_worker_arg;

struct dt_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    uint64_t generation;   /* the current loop's number; written by the owner only */
    int stop;              /* dt_pool_free: workers exit */
    int awake;             /* between dt_pool_wake and dt_pool_rest: workers do not sleep */
    int64_t linger_until;  /* CLOCK_MONOTONIC ns: outside a window, workers do not sleep before */
    int sleepers;          /* workers in (or entering) pthread_cond_wait on work_cv */
    int done_waiter;       /* the owner sleeps on done_cv */
    int64_t remaining;     /* parts of the current loop not yet finished */
    /* claim[p] = generation << 1 while part p of that loop is free, | 1 once taken. */
    uint64_t claim[DT_POOL_MAX];
    /* the current loop; stable while any of its parts is unfinished */
    dt_range_fn fn;
    void *arg;
    int64_t n, chunk;
    /* Each worker's start argument, owned by the pool: a worker that freed its own would
     * call the allocator whenever it happens to start, inside a caller's execute too. */
    dt_worker_arg args[DT_POOL_MAX];
};

/* Whether an idle worker must stay awake: inside a wake/rest window or its linger. */
static bool dt_pool_keep_awake(dt_pool *p)
{
    return __atomic_load_n(&p->awake, __ATOMIC_SEQ_CST) ||
           dt_pool_now_ns() < __atomic_load_n(&p->linger_until, __ATOMIC_SEQ_CST);
}

/* Takes part `part` of loop g if it is still free and runs it. */
static void dt_pool_try_part(dt_pool *p, uint64_t g, int part)
{
    uint64_t want = g << 1;
    if (__atomic_load_n(&p->claim[part], __ATOMIC_RELAXED) != want ||
        !__atomic_compare_exchange_n(&p->claim[part], &want, want | 1u, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return;
    int64_t b = (int64_t)part * p->chunk, e = b + p->chunk;
    if (e > p->n) e = p->n;
#ifdef DT_POOL_TRACE
    dt_trace_enter_part();
    int64_t t0 = dt_trace_cpu_ns();
#endif
    if (b < e) p->fn(p->arg, b, e, part);
#ifdef DT_POOL_TRACE
    dt_trace_part(part, dt_trace_cpu_ns() - t0);
#endif
    if (__atomic_sub_fetch(&p->remaining, 1, __ATOMIC_SEQ_CST) == 0 &&
        __atomic_load_n(&p->done_waiter, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done_cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static void *dt_worker(void *varg)
{
    const dt_worker_arg *wa = varg;
    dt_pool *p = wa->pool;
    int tid = wa->tid;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE)) == seen &&
               !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
            if (spins < DT_POOL_SPIN) {
                dt_pool_relax();
                spins++;
                continue;
            }
            if (dt_pool_keep_awake(p)) {
                /* Awake but idle for a while (a serial stretch of the network, or the linger
                 * between executes): stay runnable so this vCPU is not parked, but let other
                 * runnable work have the core. The yield matters on a shared machine: with
                 * another process busy on the second of 2 cores, a worker that spins without it
                 * spends its fair share spinning and is then preempted inside the parts it
                 * takes, each costing the owner a scheduler slice; resnet50 on 2 threads took
                 * 150 ms instead of 80 to 97 (1 thread: 80 to 90; onnxruntime, whose workers
                 * spin, 140), session 7. */
                sched_yield();
                spins = DT_POOL_SPIN - 64;
                continue;
            }
            pthread_mutex_lock(&p->mu);
            __atomic_add_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(&p->generation, __ATOMIC_SEQ_CST) == seen &&
                   !__atomic_load_n(&p->stop, __ATOMIC_SEQ_CST) && !dt_pool_keep_awake(p))
                pthread_cond_wait(&p->work_cv, &p->mu);
            __atomic_sub_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) break;
        seen = g;
        /* Its own part first (the same data as last time: warm caches), then any left. */
        for (int k = 0; k < p->threads; k++) dt_pool_try_part(p, g, (tid + k) % p->threads);
    }
    return NULL;
}

static void dt_pool_wake_sleepers(dt_pool *p)
{
    if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
}

ductile_status dt_pool_create(int threads, dt_pool **out)
{
    *out = NULL;
    if (threads < 1) threads = 1;
    if (threads > DT_POOL_MAX) threads = DT_POOL_MAX;
    dt_pool *p = dt_calloc(1, sizeof *p);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a pool of %d threads", threads);
    p->threads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    for (int i = 0; i < DT_POOL_MAX; i++) p->claim[i] = 1; /* loop 0 is never run */
    if (threads > 1) {
        p->tids = dt_calloc((size_t)threads, sizeof *p->tids);
        if (!p->tids) { dt_pool_free(p); return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a thread pool"); }
        for (int i = 1; i < threads; i++) {
            p->args[i] = (dt_worker_arg){p, i};
            if (pthread_create(&p->tids[i], NULL, dt_worker, &p->args[i]) != 0) {
                p->threads = i;
                dt_pool_free(p);
                return dt_fail(DUCTILE_ERR_INTERNAL, "could not start worker thread %d of %d", i, threads);
            }
        }
    }
    *out = p;
    return DUCTILE_OK;
}

void dt_pool_free(dt_pool *p)
{
    if (!p) return;
    if (p->tids) {
        __atomic_store_n(&p->stop, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->threads; i++) pthread_join(p->tids[i], NULL);
        dt_free(p->tids);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    dt_free(p);
}

int dt_pool_threads(const dt_pool *p) { return p ? p->threads : 1; }

void dt_pool_wake(dt_pool *p)
{
    if (!p || !p->tids) return;
    __atomic_store_n(&p->awake, 1, __ATOMIC_SEQ_CST);
    dt_pool_wake_sleepers(p);
}

void dt_pool_rest(dt_pool *p)
{
    if (!p || !p->tids) return;
    __atomic_store_n(&p->linger_until, dt_pool_now_ns() + DT_POOL_LINGER_NS, __ATOMIC_SEQ_CST);
    __atomic_store_n(&p->awake, 0, __ATOMIC_SEQ_CST);
}

void dt_pool_prime(dt_pool *p)
{
    if (!p || !p->tids || __atomic_load_n(&p->awake, __ATOMIC_RELAXED)) return;
    __atomic_store_n(&p->linger_until, dt_pool_now_ns() + DT_POOL_LINGER_NS, __ATOMIC_SEQ_CST);
    dt_pool_wake_sleepers(p);
}

int dt_pool_sleepers(dt_pool *p)
{
    return p ? __atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) : 0;
}

void dt_parallel_for(dt_pool *p, int64_t n, int64_t grain, dt_range_fn fn, void *arg)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int threads = p ? p->threads : 1;
    int64_t parts = (n + grain - 1) / grain;
    if (parts > threads) parts = threads;
    if (parts <= 1 || !p || !p->tids) {
#ifdef DT_POOL_TRACE
        int64_t b0 = dt_trace_inline_begin(), t0 = dt_trace_cpu_ns();
        fn(arg, 0, n, 0);
        dt_trace_inline((const void *)fn, b0, dt_trace_cpu_ns() - t0);
#else
        fn(arg, 0, n, 0);
#endif
        return;
    }
#ifdef DT_POOL_TRACE
    int64_t trace_t0 = dt_trace_cpu_ns(), trace_w0 = dt_trace_wall_ns();
#endif
    /* No part of the previous loop is running (it ended with remaining == 0), so the fields
     * are the owner's until the generation is published. */
    uint64_t g = p->generation + 1;
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = (n + parts - 1) / parts;
    __atomic_store_n(&p->remaining, parts, __ATOMIC_RELAXED);
    for (int i = 0; i < threads; i++)
        __atomic_store_n(&p->claim[i], i < parts ? g << 1 : (g << 1) | 1u, __ATOMIC_RELAXED);
    __atomic_store_n(&p->generation, g, __ATOMIC_SEQ_CST);
    dt_pool_wake_sleepers(p);
    for (int i = 0; i < parts; i++) dt_pool_try_part(p, g, i);
    for (int i = 0; i < DT_POOL_SPIN && __atomic_load_n(&p->remaining, __ATOMIC_ACQUIRE) > 0; i++)
        dt_pool_relax();
    if (__atomic_load_n(&p->remaining, __ATOMIC_ACQUIRE) > 0) {
        pthread_mutex_lock(&p->mu);
        __atomic_store_n(&p->done_waiter, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&p->remaining, __ATOMIC_SEQ_CST) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
        __atomic_store_n(&p->done_waiter, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&p->mu);
    }
#ifdef DT_POOL_TRACE
    dt_trace_loop((const void *)fn, (int)parts, dt_trace_cpu_ns() - trace_t0, dt_trace_wall_ns() - trace_w0);
#endif
}
