/* What a run after idleness lost, by what reading memory back before it recovers: one engine,
 * one context, runs after each kind of pause interleaved, median ms per kind.
 *
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/idle_touch.c build/libductile.a \
 *       -lm -pthread -ljpeg -lpng -ltiff -lwebpdemux -lwebp -lopenjp2 -o build/idle_touch
 *   build/idle_touch ENGINE THREADS NAME:DIMS... (every input; data zero)
 *
 * b2b: no pause. sleep50: 50 ms of sleep (issue 8's "idle"). +engine: then every line of the
 * engine's bytes (weights included) read, untimed. +code: every line of this program's code
 * (the library is linked in). +code,eng: the code, then the engine. What the reads do not give
 * back is the rest of the working set (activations, scratch) or state no read restores (branch
 * predictors, TLBs). */
#include "ductile.h"
#include "runtime/engine_impl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void nap_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static volatile unsigned sink;

static void touch(const char *p, size_t n)
{
    unsigned s = 0;
    for (size_t i = 0; i < n; i += 64) s += (unsigned char)p[i];
    sink += s;
}

/* This program's executable mapping (the code), from /proc/self/maps. */
static void find_code(const char **code, size_t *bytes)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    *code = NULL, *bytes = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    if (n <= 0 || !f) {
        if (f) fclose(f);
        return;
    }
    exe[n] = 0;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char perm[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) == 3 && perm[2] == 'x' && strstr(line, exe)) {
            *code = (const char *)a;
            *bytes = b - a;
        }
    }
    fclose(f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ENGINE THREADS NAME:DIMS...\n", argv[0]);
        return 2;
    }
    ductile_engine *e = NULL;
    ductile_context *c = NULL;
    if (ductile_engine_load_file(argv[1], &e) || ductile_context_create(e, &c) ||
        ductile_context_set_threads(c, atoi(argv[2])) || ductile_context_set_profile(c, 0)) {
        fprintf(stderr, "%s\n", ductile_last_error());
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        char name[256];
        ductile_dims d = {0};
        const char *colon = strchr(argv[i], ':');
        if (!colon || colon - argv[i] >= (long)sizeof name) return 2;
        memcpy(name, argv[i], (size_t)(colon - argv[i]));
        name[colon - argv[i]] = 0;
        char *s = (char *)colon + 1;
        while (*s && d.nb_dims < 8) {
            d.d[d.nb_dims++] = strtoll(s, &s, 10);
            if (*s == 'x') s++;
        }
        if (ductile_context_set_input_shape(c, name, &d)) {
            fprintf(stderr, "%s\n", ductile_last_error());
            return 1;
        }
    }
    /* every I/O tensor in a zeroed 64 MB buffer (the shapes this tool is for fit) */
    for (int i = 0; i < ductile_engine_num_io_tensors(e); i++) {
        const char *name = ductile_engine_io_tensor_name(e, i);
        void *buf = calloc(1, 64 << 20);
        if (!buf || ductile_context_set_tensor_address(c, name, buf)) {
            fprintf(stderr, "tensor '%s': %s\n", name, buf ? ductile_last_error() : "out of memory (64 MB)");
            return 1;
        }
    }
    const char *code;
    size_t code_bytes;
    find_code(&code, &code_bytes);
    printf("engine %.1f MB, code %.1f MB\n", (double)e->size / 1048576.0, (double)code_bytes / 1048576.0);
    for (int i = 0; i < 30; i++)
        if (ductile_context_execute(c)) {
            fprintf(stderr, "%s\n", ductile_last_error());
            return 1;
        }
    enum { K = 5, R = 40 };
    static const char *names[K] = {"b2b", "sleep50", "sleep50+engine", "sleep50+code", "sleep50+code,eng"};
    static double t[K][R];
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++) {
            if (k) nap_ms(50);
            if ((k == 3 || k == 4) && code) touch(code, code_bytes);
            if (k == 2 || k == 4) touch(e->bytes, e->size);
            double t0 = now_ms();
            if (ductile_context_execute(c)) {
                fprintf(stderr, "%s\n", ductile_last_error());
                return 1;
            }
            t[k][r] = now_ms() - t0;
        }
    for (int k = 0; k < K; k++) {
        qsort(t[k], R, sizeof(double), cmp_double);
        printf("%-18s %8.3f ms  %5.2fx b2b\n", names[k], t[k][R / 2], t[k][R / 2] / t[0][R / 2]);
    }
    return 0;
}
