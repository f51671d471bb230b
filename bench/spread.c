/* Where a whole run's time goes beyond its layers: one engine, one shape, unprofiled and
 * profiled executes alternating, in one process.
 *   make all && gcc -std=c11 -D_GNU_SOURCE -O2 -Iinclude bench/spread.c build/libductile.a \
 *       $(make -s link-flags) -o build/spread
 *   build/spread ENGINE THREADS SHAPES RUNS [IDLE_MS] [TOP]
 *     SHAPES  name:1x3x224x224[,name:dims...]; inputs not named take the profile's opt shape
 *     IDLE_MS sleep before each execute (0: back to back)
 *     TOP     how many layers to list by (median - minimum) (default 12)
 * Prints, over the RUNS unprofiled executes: wall median / minimum, the caller thread's CPU
 * time median (on 1 thread the run's own work; load from other processes is left out), minor
 * page faults and context switches per execute; over the RUNS profiled ones: the sum of each
 * layer's minimum (the "sum of minima"), the sum of each layer's median, the median of each
 * run's layer sum, and the gaps between layers (each report's clock less the layer's time and
 * the previous report's clock: the executor's own work between layers and the profiler's).
 * The ratio wall median / sum of minima is the spread this tool is for (issue 8). */
#include "ductile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <xmmintrin.h>

enum { MAX_LAYERS = 4096 };

typedef struct prof {
    int runs, run, n;             /* capacity of runs, this run, layers reported per run */
    double *ms;                   /* [layer][run] */
    double *gap;                  /* [layer][run]: time between the previous report and this layer's start */
    double last;                  /* clock at the previous report (ms) */
    char *name[MAX_LAYERS];
    char *tactic[MAX_LAYERS];
} prof;

static double now_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void on_layer(void *user, const ductile_layer_timing *t)
{
    prof *p = user;
    double now = now_ms(CLOCK_MONOTONIC);
    int i = t->index;
    if (i < MAX_LAYERS) {
        if (i >= p->n) p->n = i + 1;
        p->ms[(size_t)i * p->runs + p->run] = t->ms;
        p->gap[(size_t)i * p->runs + p->run] = i ? now - t->ms - p->last : 0;
        if (!p->tactic[i]) {
            p->tactic[i] = strdup(t->tactic ? t->tactic : "");
            p->name[i] = strdup(t->layer);
        }
    }
    p->last = now;
}

/* Seconds the machine's CPUs were busy (all but idle and iowait) since boot. */
static double busy_s(void)
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8) return 0;
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of this process (all its threads). */
static double own_s(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + 1e-6 * (r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double minimum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < m) m = v[i];
    return m;
}

#define CHECK(call)                                                                              \
    do {                                                                                         \
        ductile_status s_ = (call);                                                              \
        if (s_ != DUCTILE_OK) {                                                                  \
            fprintf(stderr, "%s: %s: %s\n", #call, ductile_status_name(s_), ductile_last_error()); \
            return 1;                                                                            \
        }                                                                                        \
    } while (0)

static int parse_dims(const char *s, ductile_dims *d)
{
    d->nb_dims = 0;
    while (*s && d->nb_dims < DUCTILE_MAX_DIMS) {
        char *end;
        d->d[d->nb_dims++] = strtoll(s, &end, 10);
        if (end == s) return -1;
        s = *end == 'x' ? end + 1 : end;
        if (*end != 'x') break;
    }
    return 0;
}

static size_t dtype_size(ductile_dtype t)
{
    switch (t) {
    case DUCTILE_INT64: case DUCTILE_FLOAT64: case DUCTILE_UINT64: return 8;
    case DUCTILE_INT8: case DUCTILE_UINT8: case DUCTILE_BOOL: return 1;
    case DUCTILE_FLOAT16: case DUCTILE_BFLOAT16: case DUCTILE_INT16: case DUCTILE_UINT16: return 2;
    default: return 4;
    }
}

/* SPREAD_MAPS=1: the anonymous mappings of 1 MiB or more (the engine's bytes, the activation
 * arena, the kernels' scratch, the caller's buffers): start mod 2 MiB, size, resident and
 * huge-page bytes, so per-process medians can be set beside where the big blocks landed. */
static void print_map(unsigned long long lo, unsigned long long hi, unsigned long long rss, unsigned long long huge)
{
    if (hi - lo >= (1u << 20))
        printf("map %012llx mod2M %7llu size %9.2f MB rss %9.2f MB huge %9.2f MB\n", lo, lo & ((1u << 21) - 1),
               (hi - lo) / 1048576.0, rss / 1024.0, huge / 1024.0);
}

/* Adjacent anonymous mappings are merged (a madvise splits one block into several). */
static void print_maps(void)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return;
    char line[512];
    unsigned long long lo = 0, hi = 0, rss = 0, huge = 0;
    int anon = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long a, b, kb;
        char path[256] = "";
        if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %255s", &a, &b, path) >= 2 && strchr(line, '-') < strchr(line, ' ')) {
            int an = !path[0];
            if (!(an && anon && a == hi)) {
                if (anon) print_map(lo, hi, rss, huge);
                lo = a;
                rss = huge = 0;
            }
            hi = b;
            anon = an;
        } else if (sscanf(line, "Rss: %llu kB", &kb) == 1) {
            rss += kb;
        } else if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1) {
            huge += kb;
        }
    }
    if (anon) print_map(lo, hi, rss, huge);
    fclose(f);
}

/* SPREAD_ALLOC (an allocator set through the public ductile_set_allocator, to test where the
 * big blocks land without changing the library): "log" does what the default allocator did
 * before session 13 (malloc / posix_memalign, huge-page advice over the whole 2 MiB pages
 * inside blocks >= 4 MiB) and records
 * blocks of 1 MiB or more, printed as "blk" lines in SPREAD_SERVE mode; "mmap" gives each such
 * block its own mapping starting at a 2 MiB boundary plus SPREAD_STAGGER bytes times the
 * block's number (default 0), advised MADV_HUGEPAGE whole (SPREAD_NOHUGE=1: MADV_NOHUGEPAGE;
 * SPREAD_POPULATE=1: MAP_POPULATE). */
enum { MAX_BLOCKS = 256 };
static struct blk {
    void *p, *base;
    size_t size, len;
} blocks[MAX_BLOCKS];
static int n_blocks, alloc_mmap;

static void *spread_alloc(void *user, size_t size, size_t alignment)
{
    (void)user;
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (alloc_mmap && size >= ((size_t)1 << 20) && n_blocks < MAX_BLOCKS) {
        size_t stagger = getenv("SPREAD_STAGGER") ? (size_t)atol(getenv("SPREAD_STAGGER")) * (size_t)n_blocks % huge : 0;
        size_t len = size + stagger + huge;
        int flags = MAP_PRIVATE | MAP_ANONYMOUS | (getenv("SPREAD_POPULATE") ? MAP_POPULATE : 0);
        unsigned char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (base == MAP_FAILED) return NULL;
        unsigned char *a = (unsigned char *)(((uintptr_t)base + huge - 1) & ~(uintptr_t)(huge - 1));
        madvise(a, len - (size_t)(a - base), getenv("SPREAD_NOHUGE") ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
        p = a + stagger;
        blocks[n_blocks++] = (struct blk){p, base, size, len};
        return p;
    }
    if (alignment <= 16) p = malloc(size);
    else if (posix_memalign(&p, alignment, size)) p = NULL;
    if (p && size >= ((size_t)4 << 20)) {
        uintptr_t a = ((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1), b = ((uintptr_t)p + size) & ~(uintptr_t)(huge - 1);
        if (b > a) madvise((void *)a, b - a, MADV_HUGEPAGE);
    }
    if (p && size >= ((size_t)1 << 20) && n_blocks < MAX_BLOCKS) blocks[n_blocks++] = (struct blk){p, NULL, size, 0};
    return p;
}

static void spread_free(void *user, void *ptr)
{
    (void)user;
    for (int i = 0; i < n_blocks; i++)
        if (blocks[i].p == ptr) {
            if (blocks[i].base) munmap(blocks[i].base, blocks[i].len);
            else free(ptr);
            blocks[i] = blocks[--n_blocks];
            return;
        }
    free(ptr);
}

/* Huge-page KiB of the mappings that start inside [p, p + size). */
static unsigned long long huge_kb(const void *p, size_t size)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return 0;
    char line[512];
    unsigned long long sum = 0, a = 0, b = 0, x, y, kb;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%llx-%llx ", &x, &y) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            a = x;
            b = y;
            continue;
        }
        if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1 && b > (uintptr_t)p && a < (uintptr_t)p + size) sum += kb;
    }
    fclose(f);
    return sum;
}

static void print_blocks(void)
{
    for (int i = 0; i < n_blocks; i++)
        printf("blk %d size %.2f MB mod4K %lu mod2M %lu huge %.1f MB\n", i, blocks[i].size / 1048576.0,
               (unsigned long)((uintptr_t)blocks[i].p & 4095), (unsigned long)((uintptr_t)blocks[i].p & ((2u << 20) - 1)),
               huge_kb(blocks[i].p, blocks[i].size) / 1024.0);
}

/* Sleeps ms, then with SPREAD_PRESPIN=US spins US microseconds (the vCPU running again at
 * speed before the timed run: separates its wake-up from cold caches in the idle penalty). */
static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    const char *spin = getenv("SPREAD_PRESPIN");
    if (spin) {
        double end = now_ms(CLOCK_MONOTONIC) + atof(spin) * 1e-3;
        while (now_ms(CLOCK_MONOTONIC) < end) {
        }
    }
}

/* Writes SPREAD_THRASH_MB (default 512) MiB, more than the last-level cache holds, so the next
 * execute finds nothing of its own in any cache (as after other tenants' work). */
static void thrash(void)
{
    static unsigned char *buf;
    static size_t len;
    if (!buf) {
        len = (size_t)(getenv("SPREAD_THRASH_MB") ? atol(getenv("SPREAD_THRASH_MB")) : 512) << 20;
        buf = malloc(len ? len : 1);
        if (!buf) return;
        memset(buf, 1, len);
    }
    for (size_t i = 0; i < len; i += 64) buf[i]++;
}

/* SPREAD_SERVE=1 (for bench/procvar.py, which alternates several such processes so that
 * load from outside hits them alike): prints the mappings and "ready", then answers lines
 * from stdin: "r N" N executes, one line "t WALL CPU ..." (ms, the calling thread's CPU
 * time); "p N" N profiled executes, one line "L MED MIN ..." per layer in plan order; "q"
 * exits. N is at most RUNS. */
static int serve(ductile_context *c, prof *p, double *wall, double *cpu, double *tmp, int runs)
{
    print_maps();
    print_blocks();
    printf("ready\n");
    fflush(stdout);
    char line[64], op;
    int n;
    while (fgets(line, sizeof line, stdin) && sscanf(line, " %c %d", &op, &n) == 2 && (op == 'r' || op == 'p' || op == 'c')) {
        if (n < 1 || n > runs) n = runs;
        if (op == 'p') CHECK(ductile_context_set_profiler(c, on_layer, p));
        for (int r = 0; r < n; r++) {
            if (op == 'c') thrash();
            p->run = r;
            double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
            p->last = t0;
            CHECK(ductile_context_execute(c));
            cpu[r] = now_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
            wall[r] = now_ms(CLOCK_MONOTONIC) - t0;
        }
        if (op == 'p') {
            CHECK(ductile_context_set_profiler(c, NULL, NULL));
            printf("L");
            for (int i = 0; i < p->n; i++) {
                memcpy(tmp, &p->ms[(size_t)i * p->runs], sizeof *tmp * n);
                printf(" %.4f %.4f", median(tmp, n), minimum(tmp, n));
            }
        } else {
            printf("t");
            for (int r = 0; r < n; r++) printf(" %.4f %.4f", wall[r], cpu[r]);
        }
        printf("\n");
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s ENGINE THREADS SHAPES RUNS [IDLE_MS] [TOP]\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[2]), runs = atoi(argv[4]), idle = argc > 5 ? atoi(argv[5]) : 0, top = argc > 6 ? atoi(argv[6]) : 12;
    if (runs < 1) runs = 1;
    ductile_engine *e = NULL;
    ductile_context *c = NULL;
    const char *alloc = getenv("SPREAD_ALLOC");
    if (alloc) {
        alloc_mmap = !strcmp(alloc, "mmap");
        ductile_allocator al = {spread_alloc, spread_free, NULL};
        CHECK(ductile_set_allocator(&al));
    }
    CHECK(ductile_engine_load_file(argv[1], &e));
    CHECK(ductile_context_create(e, &c));
    CHECK(ductile_context_set_threads(c, threads));
    int nio = ductile_engine_num_io_tensors(e);
    for (int i = 0; i < nio; i++) {
        const char *name = ductile_engine_io_tensor_name(e, i);
        if (ductile_engine_is_input(e, name) != 1) continue;
        ductile_dims d;
        CHECK(ductile_engine_get_profile_shape(e, 0, name, DUCTILE_PROFILE_OPT, &d));
        size_t len = strlen(name);
        for (const char *s = argv[3]; s && *s;) {
            const char *colon = strchr(s, ':'), *comma = strchr(s, ',');
            if (colon && (size_t)(colon - s) == len && !strncmp(s, name, len)) parse_dims(colon + 1, &d);
            s = comma ? comma + 1 : NULL;
        }
        CHECK(ductile_context_set_input_shape(c, name, &d));
    }
    /* Inputs and outputs: buffers of the caller's, allocated once (a service reuses its own). */
    for (int i = 0; i < nio; i++) {
        const char *name = ductile_engine_io_tensor_name(e, i);
        ductile_dims d;
        CHECK(ductile_context_get_tensor_shape(c, name, &d));
        size_t n = 1, es = dtype_size(ductile_engine_tensor_dtype(e, name));
        for (int k = 0; k < d.nb_dims; k++) n *= (size_t)d.d[k];
        unsigned char *buf = calloc(n ? n : 1, es);
        if (ductile_engine_is_input(e, name) == 1) {
            int is_int = ductile_engine_tensor_dtype(e, name) == DUCTILE_INT64;
            for (size_t k = 0; k < n; k++) {
                if (is_int) ((int64_t *)buf)[k] = strstr(name, "mask") ? 1 : (int64_t)(k * 7919 % 1000);
                else if (es == 4) ((float *)buf)[k] = (float)((k * 2654435761u) % 2001) / 1000.0f - 1.0f;
            }
        }
        CHECK(ductile_context_set_tensor_address(c, name, buf));
    }
    prof p = {.runs = runs};
    p.ms = calloc((size_t)MAX_LAYERS * runs, sizeof *p.ms);
    p.gap = calloc((size_t)MAX_LAYERS * runs, sizeof *p.gap);
    double *wall = calloc((size_t)runs, sizeof *wall), *cpu = calloc((size_t)runs, sizeof *cpu);
    double *pwall = calloc((size_t)runs, sizeof *pwall), *lsum = calloc((size_t)runs, sizeof *lsum);
    double *tmp = calloc((size_t)runs, sizeof *tmp);
    /* SPREAD_FTZ=1: flush denormals to zero (FTZ and DAZ) on this thread, for an A/B of the
     * cost of denormals on 1 thread (the pool's workers keep their own MXCSR). */
    if (getenv("SPREAD_FTZ")) _mm_setcsr(_mm_getcsr() | 0x8040);
    for (int i = 0; i < 5; i++) CHECK(ductile_context_execute(c));
    if (getenv("SPREAD_SERVE")) return serve(c, &p, wall, cpu, tmp, runs);
    /* Runs go in blocks of at least 300 ms; with SPREAD_QUIET=F a block counts only when the
     * other processes used at most F cores meanwhile (/proc/stat's busy time less this
     * process's), until RUNS counted or SPREAD_MAX_S (default 300) seconds pass. */
    double quiet = getenv("SPREAD_QUIET") ? atof(getenv("SPREAD_QUIET")) : -1;
    double max_s = getenv("SPREAD_MAX_S") ? atof(getenv("SPREAD_MAX_S")) : 300;
    struct rusage r0, r1;
    long faults = 0, vcs = 0, ivcs = 0;
    int kept = 0, blocks = 0, blocks_kept = 0;
    double start = now_ms(CLOCK_MONOTONIC);
    while (kept < runs && now_ms(CLOCK_MONOTONIC) - start < max_s * 1e3) {
        double b0 = now_ms(CLOCK_MONOTONIC), busy0 = busy_s(), own0 = own_s();
        int r = kept;
        long f = 0, v = 0, iv = 0;
        while (r < runs && (r == kept || now_ms(CLOCK_MONOTONIC) - b0 < 300)) {
            if (idle) sleep_ms(idle);
            getrusage(RUSAGE_SELF, &r0);
            double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
            CHECK(ductile_context_execute(c));
            cpu[r] = now_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
            wall[r] = now_ms(CLOCK_MONOTONIC) - t0;
            getrusage(RUSAGE_SELF, &r1);
            f += r1.ru_minflt - r0.ru_minflt;
            v += r1.ru_nvcsw - r0.ru_nvcsw;
            iv += r1.ru_nivcsw - r0.ru_nivcsw;
            if (idle) sleep_ms(idle);
            CHECK(ductile_context_set_profiler(c, on_layer, &p));
            p.run = r;
            t0 = now_ms(CLOCK_MONOTONIC);
            p.last = t0;
            CHECK(ductile_context_execute(c));
            pwall[r] = now_ms(CLOCK_MONOTONIC) - t0;
            CHECK(ductile_context_set_profiler(c, NULL, NULL));
            lsum[r] = 0;
            for (int i = 0; i < p.n; i++) lsum[r] += p.ms[(size_t)i * p.runs + r];
            r++;
        }
        double el = (now_ms(CLOCK_MONOTONIC) - b0) * 1e-3, others = (busy_s() - busy0 - (own_s() - own0)) / el;
        blocks++;
        if (getenv("SPREAD_VERBOSE")) fprintf(stderr, "block %d: %.2f cores others (busy %.3f own %.3f el %.3f)\n", blocks, others, busy_s() - busy0, own_s() - own0, el);
        if (quiet >= 0 && others > quiet) continue;
        blocks_kept++;
        kept = r;
        faults += f;
        vcs += v;
        ivcs += iv;
    }
    if (kept < 1) {
        fprintf(stderr, "no quiet block in %.0f s\n", max_s);
        return 1;
    }
    fprintf(stderr, "blocks %d, kept %d (%d runs)\n", blocks, blocks_kept, kept);
    runs = kept;
    double sum_min = 0, sum_med = 0, gap_med = 0;
    double *excess = calloc((size_t)p.n + 1, sizeof *excess), *lmin = calloc((size_t)p.n + 1, sizeof *lmin),
           *lmed = calloc((size_t)p.n + 1, sizeof *lmed);
    for (int i = 0; i < p.n; i++) {
        lmin[i] = minimum(&p.ms[(size_t)i * p.runs], runs);
        memcpy(tmp, &p.ms[(size_t)i * p.runs], sizeof *tmp * runs);
        lmed[i] = median(tmp, runs);
        memcpy(tmp, &p.gap[(size_t)i * p.runs], sizeof *tmp * runs);
        gap_med += median(tmp, runs);
        sum_min += lmin[i];
        sum_med += lmed[i];
        excess[i] = lmed[i] - lmin[i];
    }
    double wmed = median(wall, runs), wmin = minimum(wall, runs);
    uint64_t mem = 0;
    ductile_context_get_memory_size(c, &mem);
    fprintf(stderr, "context memory %.2f MB\n", mem / 1048576.0);
    printf("{\"layers\": %d, \"runs\": %d, \"threads\": %d, \"idle_ms\": %d, \"wall_med\": %.3f, \"wall_min\": %.3f, "
           "\"cpu_med\": %.3f, \"prof_wall_med\": %.3f, \"layer_sum_med\": %.3f, \"sum_min\": %.3f, \"sum_med\": %.3f, "
           "\"gaps_med\": %.3f, \"spread\": %.3f, \"faults_per_run\": %.1f, \"vcsw_per_run\": %.1f, \"ivcsw_per_run\": %.1f}\n",
           p.n, runs, threads, idle, wmed, wmin, median(cpu, runs), median(pwall, runs), median(lsum, runs), sum_min, sum_med,
           gap_med, wmed / sum_min, (double)faults / runs, (double)vcs / runs, (double)ivcs / runs);
    for (int k = 0; k < top && k < p.n; k++) {
        int best = -1;
        for (int i = 0; i < p.n; i++)
            if (excess[i] >= 0 && (best < 0 || excess[i] > excess[best])) best = i;
        if (best < 0) break;
        printf("  %4d %-40s %-34s min %.3f med %.3f (+%.3f)\n", best, p.name[best], p.tactic[best], lmin[best], lmed[best],
               excess[best]);
        excess[best] = -1;
    }
    if (getenv("SPREAD_MAPS")) print_maps();
    if (getenv("SPREAD_ALL"))
        for (int i = 0; i < p.n; i++) printf("L %d %s %s %.4f %.4f\n", i, p.name[i], p.tactic[i], lmin[i], lmed[i]);
    ductile_context_free(c);
    ductile_engine_free(e);
    return 0;
}
