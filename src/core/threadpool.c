#include "core/threadpool.h"
#include "core/alloc.h"
#include "core/status.h"

#include <pthread.h>
#include <stdlib.h>

/* Waits first spin this many rounds (a few tens of microseconds) on the word that ends them,
 * then sleep on the condition variable: back-to-back parallel loops (a network's layers)
 * then skip the futex sleep and wake-up, which cost more than a small layer. Every change of
 * generation and pending is still made under the mutex, so a sleeper is always woken. */
enum { DT_POOL_SPIN = 4000 };

static inline void dt_pool_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

struct dt_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    uint64_t generation;
    int pending;
    int stop;
    /* the current job */
    dt_range_fn fn;
    void *arg;
    int64_t n, chunk;
    int parts;
};

typedef struct { dt_pool *pool; int tid; } dt_worker_arg;

static void dt_run_part(dt_pool *p, int part)
{
    int64_t b = (int64_t)part * p->chunk;
    int64_t e = b + p->chunk;
    if (e > p->n) e = p->n;
    if (b < e) p->fn(p->arg, b, e, part);
}

static void *dt_worker(void *varg)
{
    dt_worker_arg *wa = varg;
    dt_pool *p = wa->pool;
    int tid = wa->tid;
    dt_free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (!p->stop && p->generation == seen) {
            pthread_mutex_unlock(&p->mu);
            for (int i = 0; i < DT_POOL_SPIN && !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE) &&
                            __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) == seen; i++)
                dt_pool_relax();
            pthread_mutex_lock(&p->mu);
        }
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        int parts = p->parts;
        pthread_mutex_unlock(&p->mu);
        if (tid < parts) dt_run_part(p, tid);
        pthread_mutex_lock(&p->mu);
        if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_RELEASE) == 0) pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ductile_status dt_pool_create(int threads, dt_pool **out)
{
    *out = NULL;
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    dt_pool *p = dt_calloc(1, sizeof *p);
    if (!p) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a pool of %d threads", threads);
    p->threads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (threads > 1) {
        p->tids = dt_calloc((size_t)threads, sizeof *p->tids);
        if (!p->tids) { dt_pool_free(p); return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a thread pool"); }
        for (int i = 1; i < threads; i++) {
            dt_worker_arg *wa = dt_malloc(sizeof *wa);
            if (!wa) { p->threads = i; dt_pool_free(p); return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory creating a thread pool"); }
            wa->pool = p;
            wa->tid = i;
            if (pthread_create(&p->tids[i], NULL, dt_worker, wa) != 0) {
                dt_free(wa);
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
        pthread_mutex_lock(&p->mu);
        __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
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

void dt_parallel_for(dt_pool *p, int64_t n, int64_t grain, dt_range_fn fn, void *arg)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int threads = p ? p->threads : 1;
    int64_t parts = (n + grain - 1) / grain;
    if (parts > threads) parts = threads;
    if (parts <= 1 || !p || !p->tids) {
        fn(arg, 0, n, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = (n + parts - 1) / parts;
    p->parts = (int)parts;
    __atomic_store_n(&p->pending, p->threads - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&p->generation, p->generation + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    dt_run_part(p, 0);
    for (int i = 0; i < DT_POOL_SPIN && __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0; i++)
        dt_pool_relax();
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
