/* The CUDA backend's plan cache (backend.c, dt_cuda_plan_slot) without a GPU: plans hold only
 * host memory until a kernel fills their descriptors, so the lookup logic runs anywhere the
 * backend is built. Each layer keeps its own DT_CUDA_WAYS plans: many layers never evict each
 * other (the old direct-mapped table re-planned colliding layers on every run, ~1 ms each),
 * a layer's shapes hit until it has seen more than DT_CUDA_WAYS of them, and the table grows. */
#include "testutil.h"

#ifdef DT_WITH_CUDA
#include "backend/cuda/cuda.h"
#include "core/alloc.h"

enum { LAYERS = 3000 };

int main(void)
{
    static ductile_layer layers[LAYERS];
    dt_cuda_state *st = dt_calloc(1, sizeof *st);
    CHECK(st != NULL);
    if (!st) TEST_MAIN_END();
    int64_t key[DT_CUDA_KEY] = {0};
    bool hit = true;
    /* First pass: every (layer, shape) is new; its slot comes back empty with the key set. */
    int fresh = 0;
    for (int i = 0; i < LAYERS; i++) {
        key[0] = i % 7;
        dt_cuda_plan *p = dt_cuda_plan_slot(st, &layers[i], key, &hit);
        CHECK(p != NULL);
        if (!p) break;
        fresh += !hit && p->kind == 0 && p->key[0] == i % 7;
        p->kind = 1; /* as if planned (no descriptors: nothing for release to destroy) */
        p->algo = i;
    }
    CHECK_EQ_INT(fresh, LAYERS);
    CHECK(st->plans_cap >= 2 * LAYERS);
    /* Second pass: every one hits, with what was stored for that layer. */
    int hits = 0;
    for (int i = 0; i < LAYERS; i++) {
        key[0] = i % 7;
        dt_cuda_plan *p = dt_cuda_plan_slot(st, &layers[i], key, &hit);
        hits += hit && p && p->algo == i;
    }
    CHECK_EQ_INT(hits, LAYERS);
    /* One layer at DT_CUDA_WAYS shapes: all kept; one more replaces the oldest. */
    ductile_layer *L = &layers[5];
    for (int s = 1; s < DT_CUDA_WAYS; s++) {
        key[0] = 100 + s;
        dt_cuda_plan *p = dt_cuda_plan_slot(st, L, key, &hit);
        CHECK(p != NULL && !hit);
        if (p) p->algo = 100 + s;
    }
    key[0] = 5 % 7;
    dt_cuda_plan *p = dt_cuda_plan_slot(st, L, key, &hit);
    CHECK(hit && p && p->algo == 5);
    for (int s = 1; s < DT_CUDA_WAYS; s++) {
        key[0] = 100 + s;
        p = dt_cuda_plan_slot(st, L, key, &hit);
        CHECK(hit && p && p->algo == 100 + s);
    }
    key[0] = 999;
    p = dt_cuda_plan_slot(st, L, key, &hit);
    CHECK(p != NULL && !hit && p->algo == 0);
    key[0] = 5 % 7; /* the first one in was the one replaced */
    p = dt_cuda_plan_slot(st, L, key, &hit);
    CHECK(p != NULL && !hit);
    /* The tactic is part of the key (conv.c: key[7] the cuDNN algorithm). */
    int64_t k2[DT_CUDA_KEY] = {1, 2, 3};
    p = dt_cuda_plan_slot(st, &layers[9], k2, &hit);
    CHECK(p != NULL && !hit);
    k2[7] = 4;
    p = dt_cuda_plan_slot(st, &layers[9], k2, &hit);
    CHECK(p != NULL && !hit);
    k2[7] = 0;
    p = dt_cuda_plan_slot(st, &layers[9], k2, &hit);
    CHECK(p != NULL && hit);
    for (size_t i = 0; i < st->plans_cap; i++)
        for (int w = 0; w < DT_CUDA_WAYS; w++) dt_cuda_plan_release(&st->plans[i].way[w]);
    dt_free(st->plans);
    dt_free(st);
    TEST_MAIN_END();
}
#else
int main(void)
{
    fprintf(stderr, "skipped: built without the CUDA backend (CUDA=0)\n");
    TEST_MAIN_END();
}
#endif
