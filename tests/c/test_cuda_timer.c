/* The CUDA backend's device timer (dt_backend.timer_mark / timer_seconds, what the builder's
 * tactic timing reads): on a device, marks around device copies of a known size give
 * positive times, ordered as the work (three copies take longer than one, and the intervals
 * of three marks add up), and a recorded run of four copies replays in about four copies'
 * time; marks out of range or never queued are refused. Without a device (or a CPU-only
 * build): the table still has both hooks or neither, and the test skips with "no CUDA device
 * found". */
#include "cuda_probe.h"
#include "testutil.h"

#include "backend/backend.h"

#include <math.h>
#include <stdio.h>

/* 256 MiB: a device copy of it takes about 0.1 ms on any GPU this backend builds for, far
 * above the timer's resolution (about 0.5 us). */
#define COPY_BYTES ((size_t)256 << 20)

static void check_device(const dt_backend *be)
{
    void *st = NULL, *a = NULL, *b = NULL;
    CHECK_EQ_INT(be->state_create(&st), DUCTILE_OK);
    a = be->alloc(COPY_BYTES);
    b = be->alloc(COPY_BYTES);
    CHECK(a && b);
    if (!st || !a || !b) goto out;
    double s01 = -1, s12 = -1, s02 = -1, rec = -1;
    /* Marks before anything is queued: refused, not crashed on. */
    CHECK_EQ_INT(be->timer_seconds(st, 0, 1, &s01), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(be->timer_mark(st, NULL, DT_TIMER_MARKS), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(be->timer_mark(st, NULL, -1), DUCTILE_ERR_INVALID_ARGUMENT);
    /* A first copy outside the marks: the device's first touch of the buffers. */
    CHECK_EQ_INT(be->copy(b, a, COPY_BYTES, NULL), DUCTILE_OK);
    CHECK_EQ_INT(be->timer_mark(st, NULL, 0), DUCTILE_OK);
    CHECK_EQ_INT(be->copy(b, a, COPY_BYTES, NULL), DUCTILE_OK);
    CHECK_EQ_INT(be->timer_mark(st, NULL, 1), DUCTILE_OK);
    for (int k = 0; k < 3; k++) CHECK_EQ_INT(be->copy(a, b, COPY_BYTES, NULL), DUCTILE_OK);
    CHECK_EQ_INT(be->timer_mark(st, NULL, 2), DUCTILE_OK);
    CHECK_EQ_INT(be->timer_seconds(st, 0, 1, &s01), DUCTILE_OK);
    CHECK_EQ_INT(be->timer_seconds(st, 1, 2, &s12), DUCTILE_OK);
    CHECK_EQ_INT(be->timer_seconds(st, 0, 2, &s02), DUCTILE_OK);
    fprintf(stderr, "one copy %.1f us, three %.1f us, both %.1f us\n", 1e6 * s01, 1e6 * s12, 1e6 * s02);
    CHECK(s01 > 10e-6 && s01 < 0.1);
    CHECK(s12 > 2 * s01 && s12 < 4 * s01);
    CHECK(fabs(s02 - (s01 + s12)) < 5e-6);
    /* Four copies recorded, replayed between marks (how the builder times a tactic). */
    void *cap = NULL, *graph = NULL;
    CHECK_EQ_INT(be->capture_begin(st, NULL, &cap), DUCTILE_OK);
    for (int k = 0; k < 4 && cap; k++) CHECK_EQ_INT(be->copy(b, a, COPY_BYTES, cap), DUCTILE_OK);
    CHECK_EQ_INT(be->capture_end(st, &graph), DUCTILE_OK);
    if (graph) {
        CHECK_EQ_INT(be->graph_launch(graph, NULL), DUCTILE_OK);
        CHECK_EQ_INT(be->timer_mark(st, NULL, 3), DUCTILE_OK);
        CHECK_EQ_INT(be->graph_launch(graph, NULL), DUCTILE_OK);
        CHECK_EQ_INT(be->timer_mark(st, NULL, 4), DUCTILE_OK);
        CHECK_EQ_INT(be->timer_seconds(st, 3, 4, &rec), DUCTILE_OK);
        fprintf(stderr, "four copies replayed %.1f us\n", 1e6 * rec);
        CHECK(rec > 3 * s01 && rec < 5 * s01);
        be->graph_free(graph);
    }
out:
    if (be->sync) be->sync(NULL);
    if (a) be->release(a);
    if (b) be->release(b);
    if (st) be->state_free(st);
}

int main(void)
{
    const dt_backend *be = dt_backend_find("cuda");
    if (be) CHECK(!be->timer_mark == !be->timer_seconds);
    if (!be || !test_cuda_device_found()) {
        fprintf(stderr, "skipped: no CUDA device found\n");
        TEST_MAIN_END();
    }
    CHECK(be->timer_mark != NULL && be->capture_begin != NULL);
    if (be->timer_mark && be->capture_begin) check_device(be);
    TEST_MAIN_END();
}
