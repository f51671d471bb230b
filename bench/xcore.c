/* The round trip of one cache line between two threads pinned to two CPUs of this process
 * (the first two of its affinity mask): bench/bench.py measures it around each 2-thread row.
 * A VM's two vCPUs that share an L3 (one core complex) trade a line in 50-90 ns; placed on two
 * complexes by the hypervisor, in 300+, and then every 2-thread run that passes data between
 * its threads slows (bench/results/cpu-zen4-2026-12-05-s27.md). Prints {"round_trip_ns": x},
 * null where the process has fewer than two CPUs. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

enum { TRIPS = 100000 };

static _Atomic int flag __attribute__((aligned(64)));

static int pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static int cpus[2];

static void *other(void *arg)
{
    (void)arg;
    pin(cpus[1]);
    for (int i = 0; i < TRIPS; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 1) {
        }
        atomic_store_explicit(&flag, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

int main(void)
{
    cpu_set_t mask;
    int n = 0;
    if (sched_getaffinity(0, sizeof mask, &mask) == 0)
        for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
            if (CPU_ISSET(c, &mask)) cpus[n++] = c;
    if (n < 2) {
        printf("{\"round_trip_ns\": null}\n");
        return 0;
    }
    pthread_t t;
    pin(cpus[0]);
    if (pthread_create(&t, NULL, other, NULL)) {
        printf("{\"round_trip_ns\": null}\n");
        return 0;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < TRIPS; i++) {
        atomic_store_explicit(&flag, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 2) {
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, NULL);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / TRIPS;
    printf("{\"round_trip_ns\": %.1f}\n", ns);
    return 0;
}
