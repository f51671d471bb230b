/* See pool_trace.h. Empty unless built with -DDT_POOL_TRACE. */
#ifdef DT_POOL_TRACE
#include "core/pool_trace.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { DT_TRACE_FNS = 256, DT_TRACE_PARTS = 64 };

typedef struct {
    const void *fn;
    int64_t loops, inline_loops, max_ns, work_ns, owner_ns, wall_ns;
} dt_trace_row;

static dt_trace_row dt_trace_rows[DT_TRACE_FNS];
static int64_t dt_trace_parts_ns[DT_TRACE_PARTS];
static int dt_trace_registered;
/* Set while this thread runs a part: loops run inline inside one are the part's time. */
static _Thread_local int dt_trace_in_part;
/* The owner's CPU time inside recorded loops so far: a loop run inline subtracts what the
 * loops inside it recorded. */
static int64_t dt_trace_owner_total;

int64_t dt_trace_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int64_t dt_trace_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

void dt_trace_enter_part(void) { dt_trace_in_part = 1; }

/* Adds: a fine loop's thread runs several ranges, all of them its part's time (a store kept
 * only the last range, and the loops' "wall over their longest part" read up to 2.8 ms of
 * resnet50's 2-thread GEMMs that were not there). */
void dt_trace_part(int part, int64_t ns)
{
    dt_trace_in_part = 0;
    if (part < DT_TRACE_PARTS) __atomic_add_fetch(&dt_trace_parts_ns[part], ns, __ATOMIC_ACQ_REL);
}

void dt_trace_loop_begin(int parts)
{
    for (int i = 0; i < parts && i < DT_TRACE_PARTS; i++) __atomic_store_n(&dt_trace_parts_ns[i], 0, __ATOMIC_RELAXED);
}

/* Writes the rows to path (exported: a bench takes rounds with it and dt_pool_trace_reset). */
__attribute__((visibility("default"))) void dt_pool_trace_dump(const char *path)
{
    FILE *f = path && *path ? fopen(path, "w") : NULL;
    if (!f) return;
    for (int i = 0; i < DT_TRACE_FNS && dt_trace_rows[i].fn; i++) {
        const dt_trace_row *r = &dt_trace_rows[i];
        Dl_info info;
        uintptr_t off = (uintptr_t)r->fn;
        if (dladdr(r->fn, &info) && info.dli_fbase) off -= (uintptr_t)info.dli_fbase;
        fprintf(f, "%#lx %lld %lld %lld %lld %lld %lld\n", (unsigned long)off, (long long)r->loops,
                (long long)r->inline_loops, (long long)r->max_ns, (long long)r->work_ns, (long long)r->owner_ns,
                (long long)r->wall_ns);
    }
    fclose(f);
}

static void dt_trace_dump(void) { dt_pool_trace_dump(getenv("DT_POOL_TRACE")); }

static dt_trace_row *dt_trace_row_of(const void *fn)
{
    if (!dt_trace_registered) {
        dt_trace_registered = 1;
        atexit(dt_trace_dump);
    }
    for (int i = 0; i < DT_TRACE_FNS; i++) {
        if (dt_trace_rows[i].fn == fn) return &dt_trace_rows[i];
        if (!dt_trace_rows[i].fn) {
            dt_trace_rows[i].fn = fn;
            return &dt_trace_rows[i];
        }
    }
    return NULL;
}

void dt_trace_loop(const void *fn, int parts, int64_t owner_ns, int64_t wall_ns)
{
    dt_trace_row *r = dt_trace_row_of(fn);
    if (!r) return;
    int64_t mx = 0, sum = 0;
    for (int i = 0; i < parts && i < DT_TRACE_PARTS; i++) {
        int64_t ns = __atomic_load_n(&dt_trace_parts_ns[i], __ATOMIC_ACQUIRE);
        sum += ns;
        if (ns > mx) mx = ns;
    }
    dt_trace_owner_total += owner_ns;
    r->loops++;
    r->max_ns += mx;
    r->work_ns += sum;
    r->owner_ns += owner_ns;
    r->wall_ns += wall_ns;
}

int64_t dt_trace_inline_begin(void) { return dt_trace_in_part ? -1 : dt_trace_owner_total; }

void dt_trace_inline(const void *fn, int64_t begin, int64_t ns)
{
    if (begin < 0) return;
    int64_t inner = dt_trace_owner_total - begin;
    ns -= inner;
    dt_trace_owner_total += ns;
    dt_trace_row *r = dt_trace_row_of(fn);
    if (!r) return;
    r->loops++;
    r->inline_loops++;
    r->max_ns += ns;
    r->work_ns += ns;
    r->owner_ns += ns;
    r->wall_ns += ns;
}

__attribute__((visibility("default"))) void dt_pool_trace_reset(void)
{
    for (int i = 0; i < DT_TRACE_FNS; i++) {
        const void *fn = dt_trace_rows[i].fn;
        dt_trace_rows[i] = (dt_trace_row){.fn = fn};
    }
}
#else
typedef int dt_pool_trace_empty; /* ISO C wants a translation unit to declare something */
#endif
