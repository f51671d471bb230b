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

/* A fine loop's ranges not yet taken from one thread's block (dt_pool.fine): generation << 24
 * | lo << 12 | hi, ranges [lo, hi) (< DT_POOL_FINE_MAX). Its thread takes lo, others steal hi
 * - 1; both by compare-and-swap of the whole word, which fails for any other loop's word. The
 * generation is kept to 40 bits: it wraps after 2^40 loops, so a stale word cannot match. */
enum { DT_POOL_FINE_BITS = 12 };
#define DT_POOL_GEN40(g) ((uint64_t)(g) & (((uint64_t)1 << 40) - 1))
#define DT_POOL_FINE_WORD(g, lo, hi) \
    ((DT_POOL_GEN40(g) << (2 * DT_POOL_FINE_BITS)) | ((uint64_t)(lo) << DT_POOL_FINE_BITS) | (uint64_t)(hi))

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
    /* A fine loop (dt_parallel_for_fine): each thread's block of ranges, one word a cache
     * line (DT_POOL_FINE_WORD), and the loop's range count. */
    struct { uint64_t w; char pad[56]; } fine[DT_POOL_MAX];
    int64_t ranges;
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

/* A part (or range) of the current loop is done: the last one wakes a sleeping owner. */
static void dt_pool_part_done(dt_pool *p)
{
    if (__atomic_sub_fetch(&p->remaining, 1, __ATOMIC_SEQ_CST) == 0 &&
        __atomic_load_n(&p->done_waiter, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done_cv);
        pthread_mutex_unlock(&p->mu);
    }
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
    dt_pool_part_done(p);
}

/* Takes one range of fine loop g from thread `from`'s block: the first (its own thread) or
 * the last (a thief); -1 when none is left. */
static int64_t dt_pool_take(dt_pool *p, uint64_t g, int from, bool own)
{
    const uint64_t mask = ((uint64_t)1 << DT_POOL_FINE_BITS) - 1;
    uint64_t *word = &p->fine[from].w;
    uint64_t w = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    for (;;) {
        uint64_t lo = (w >> DT_POOL_FINE_BITS) & mask, hi = w & mask;
        if (w >> (2 * DT_POOL_FINE_BITS) != DT_POOL_GEN40(g) || lo >= hi) return -1;
        uint64_t want = own ? DT_POOL_FINE_WORD(g, lo + 1, hi) : DT_POOL_FINE_WORD(g, lo, hi - 1);
        if (__atomic_compare_exchange_n(word, &w, want, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return (int64_t)(own ? lo : hi - 1);
        /* w now holds the word seen: retry with it */
    }
}

/* Runs range i of the current fine loop as `tid` (it has taken it: the loop's fields stay
 * stable until it is done). */
static void dt_pool_run_range(dt_pool *p, int64_t i, int tid)
{
    int64_t b = (int64_t)((__int128)p->n * i / p->ranges);
    int64_t e = (int64_t)((__int128)p->n * (i + 1) / p->ranges);
#ifdef DT_POOL_TRACE
    dt_trace_enter_part();
    int64_t t0 = dt_trace_cpu_ns();
#endif
    if (b < e) p->fn(p->arg, b, e, tid);
#ifdef DT_POOL_TRACE
    dt_trace_part(tid, dt_trace_cpu_ns() - t0);
#endif
    dt_pool_part_done(p);
}

/* Runs ranges of fine loop g as `tid` until none is left: its own block first, in order (the
 * data its ranges of the last loop of the same split left in its caches: on a quiet machine
 * the fine split then runs as the coarse one), then the other blocks' last ranges. */
static void dt_pool_run_fine(dt_pool *p, uint64_t g, int tid)
{
    for (int k = 0; k < p->threads; k++) {
        int from = (tid + k) % p->threads;
        for (int64_t i; (i = dt_pool_take(p, g, from, k == 0)) >= 0;) dt_pool_run_range(p, i, tid);
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
        dt_pool_run_fine(p, g, tid);
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

/* The owner, its own share of a loop done, waits for the parts the workers took. Inside a
 * wake/rest window it never sleeps: the workers are awake and a part in flight ends within
 * the loop's time, while a futex sleep costs a wake-up (tens of microseconds, more on a VM
 * whose vCPU the hypervisor parks) after every loop whose last part a worker ran. It yields
 * after a short spin so that a worker preempted onto this core (a busy machine) gets it.
 * Outside a window (the builder's timing runs) it sleeps after the spin as before. */
static void dt_pool_join(dt_pool *p)
{
    for (int i = 0; i < DT_POOL_SPIN && __atomic_load_n(&p->remaining, __ATOMIC_ACQUIRE) > 0; i++)
        dt_pool_relax();
    while (__atomic_load_n(&p->remaining, __ATOMIC_ACQUIRE) > 0 &&
           __atomic_load_n(&p->awake, __ATOMIC_RELAXED)) {
        sched_yield();
        for (int i = 0; i < 64 && __atomic_load_n(&p->remaining, __ATOMIC_ACQUIRE) > 0; i++)
            dt_pool_relax();
    }
    if (__atomic_load_n(&p->remaining, __ATOMIC_ACQUIRE) > 0) {
        pthread_mutex_lock(&p->mu);
        __atomic_store_n(&p->done_waiter, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&p->remaining, __ATOMIC_SEQ_CST) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
        __atomic_store_n(&p->done_waiter, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&p->mu);
    }
}

/* The whole loop on the calling thread (one part; recorded as inline where traced). */
static void dt_pool_run_inline(dt_range_fn fn, void *arg, int64_t n)
{
#ifdef DT_POOL_TRACE
    int64_t b0 = dt_trace_inline_begin(), t0 = dt_trace_cpu_ns();
    fn(arg, 0, n, 0);
    dt_trace_inline((const void *)fn, b0, dt_trace_cpu_ns() - t0);
#else
    fn(arg, 0, n, 0);
#endif
}

void dt_parallel_for(dt_pool *p, int64_t n, int64_t grain, dt_range_fn fn, void *arg)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int threads = p ? p->threads : 1;
    int64_t parts = (n + grain - 1) / grain;
    if (parts > threads) parts = threads;
    if (parts <= 1 || !p || !p->tids) {
        dt_pool_run_inline(fn, arg, n);
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
#ifdef DT_POOL_TRACE
    dt_trace_loop_begin((int)parts);
#endif
    __atomic_store_n(&p->remaining, parts, __ATOMIC_RELAXED);
    for (int i = 0; i < threads; i++)
        __atomic_store_n(&p->claim[i], i < parts ? g << 1 : (g << 1) | 1u, __ATOMIC_RELAXED);
    __atomic_store_n(&p->generation, g, __ATOMIC_SEQ_CST);
    dt_pool_wake_sleepers(p);
    for (int i = 0; i < parts; i++) dt_pool_try_part(p, g, i);
    dt_pool_join(p);
#ifdef DT_POOL_TRACE
    dt_trace_loop((const void *)fn, (int)parts, dt_trace_cpu_ns() - trace_t0, dt_trace_wall_ns() - trace_w0);
#endif
}

void dt_parallel_for_fine(dt_pool *p, int64_t n, int64_t grain, int per_thread, dt_range_fn fn,
                          void *arg)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (per_thread < 1) per_thread = 1;
    int threads = p ? p->threads : 1;
    int64_t ranges = (n + grain - 1) / grain, most = (int64_t)threads * per_thread;
    if (most > DT_POOL_FINE_MAX) most = DT_POOL_FINE_MAX;
    if (ranges > most) ranges = most;
    if (ranges <= 1 || threads <= 1 || !p->tids) {
        /* One thread: the ranges would run in order on it, which is the whole loop at once. */
        dt_pool_run_inline(fn, arg, n);
        return;
    }
#ifdef DT_POOL_TRACE
    int64_t trace_t0 = dt_trace_cpu_ns(), trace_w0 = dt_trace_wall_ns();
#endif
    uint64_t g = p->generation + 1;
    p->fn = fn;
    p->arg = arg;
    p->n = n;
#ifdef DT_POOL_TRACE
    dt_trace_loop_begin(threads);
#endif
    __atomic_store_n(&p->remaining, ranges, __ATOMIC_RELAXED);
    for (int i = 0; i < threads; i++) __atomic_store_n(&p->claim[i], (g << 1) | 1u, __ATOMIC_RELAXED);
    p->ranges = ranges;
    /* Thread t's block: ranges [t*R/T, (t+1)*R/T), as a coarse split would give it. */
    for (int t = 0; t < threads; t++)
        __atomic_store_n(&p->fine[t].w, DT_POOL_FINE_WORD(g, ranges * t / threads, ranges * (t + 1) / threads),
                         __ATOMIC_RELAXED);
    __atomic_store_n(&p->generation, g, __ATOMIC_SEQ_CST);
    dt_pool_wake_sleepers(p);
    dt_pool_run_fine(p, g, 0);
    dt_pool_join(p);
#ifdef DT_POOL_TRACE
    dt_trace_loop((const void *)fn, threads, dt_trace_cpu_ns() - trace_t0, dt_trace_wall_ns() - trace_w0);
#endif
}
