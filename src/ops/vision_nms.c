/* NonMaxSuppression (opsets 10, 11): the number of selected boxes depends on the data, so
 * infer runs the suppression (eager mode) and the kernel runs it again into the output; both
 * use dt_nms_run, so the count infer announces is the count the kernel writes. */
#include "ops/vision.h"
#include "core/alloc.h"
#include "core/sort.h"
#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *dt_nms_names[5] = {"boxes", "scores", "max_output_boxes_per_class",
                                      "iou_threshold", "score_threshold"};

ductile_status dt_vision_check_nms(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 5, 1, 1, DT_INPUT_NAMES("boxes", "scores")));
    int64_t c = dt_attr_int(L, "center_point_box", 0);
    if (c != 0 && c != 1)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'center_point_box' = %lld is not supported (supported: 0, 1)",
                       (long long)c);
    return DUCTILE_OK;
}

/* A scalar-like input (shape [] or [1]) that may be omitted or empty: *given false. */
static ductile_status dt_nms_scalar(const dt_nms_attrs *a, const dt_view *in, int i, double *v,
                                    bool *given)
{
    *given = false;
    if (i >= a->n_in || in[i].rank < 0 || dt_view_count(&in[i]) == 0) return DUCTILE_OK;
    if (!in[i].data)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "the output shape depends on the data of input %d ('%s')", i, a->names[i]);
    if (in[i].dtype == DUCTILE_INT64) *v = (double)((const int64_t *)in[i].data)[0];
    else if (in[i].dtype == DUCTILE_INT32) *v = ((const int32_t *)in[i].data)[0];
    else if (in[i].dtype == DUCTILE_FLOAT32) *v = ((const float *)in[i].data)[0];
    else if (in[i].dtype == DUCTILE_FLOAT64) *v = ((const double *)in[i].data)[0];
    else
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d (%s) has dtype %s", i, dt_nms_names[i],
                       ductile_dtype_name((ductile_dtype)in[i].dtype));
    *given = true;
    return DUCTILE_OK;
}

void dt_nms_attrs_read(const ductile_layer *L, dt_nms_attrs *a)
{
    a->center = dt_attr_int(L, "center_point_box", 0) == 1;
    a->n_in = L->n_in;
    for (int i = 0; i < 5; i++) a->names[i] = i < L->n_in && L->in[i] ? L->in[i]->name : dt_nms_names[i];
}

ductile_status dt_nms_params_get(const ductile_layer *L, const dt_view *in, dt_nms_params *p)
{
    dt_nms_attrs a;
    dt_nms_attrs_read(L, &a);
    return dt_nms_params_of(&a, in, p);
}

ductile_status dt_nms_params_of(const dt_nms_attrs *a, const dt_view *in, dt_nms_params *p)
{
    memset(p, 0, sizeof *p);
    DT_TRY(dt_want_float32(in, 0, "boxes"));
    DT_TRY(dt_want_float32(in, 1, "scores"));
    const dt_view *b = &in[0], *s = &in[1];
    if (b->rank != 3 || b->dims[2] != 4)
        return dt_vision_bad_shape(0, "boxes", b, "[num_batches, spatial_dimension, 4]");
    if (s->rank != 3 || s->dims[0] != b->dims[0] || s->dims[2] != b->dims[1])
        return dt_vision_bad_shape(1, "scores", s,
                                   "[num_batches, num_classes, spatial_dimension] matching boxes");
    p->batches = b->dims[0];
    p->classes = s->dims[1];
    p->boxes = b->dims[1];
    p->center = a->center;
    double v;
    bool given;
    DT_TRY(dt_nms_scalar(a, in, 2, &v, &given));
    p->max_out = given && v > 0 ? (v > 9e15 ? (int64_t)9e15 : (int64_t)v) : 0;
    DT_TRY(dt_nms_scalar(a, in, 3, &v, &given));
    p->iou = given ? (float)v : 0.0f;
    DT_TRY(dt_nms_scalar(a, in, 4, &v, &given));
    p->score = given ? (float)v : 0.0f;
    p->has_score = given;
    for (int i = 0; i < 2; i++)
        if (!in[i].data && dt_view_count(&in[i]) > 0)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "the output shape depends on the data of input %d ('%s')", i, a->names[i]);
    return DUCTILE_OK;
}

/* The reference's suppress_by_iou: true when the boxes overlap by more than the threshold. */
static bool dt_nms_suppress(const float *a, const float *b, bool center, float thr)
{
    float ax0, ax1, ay0, ay1, bx0, bx1, by0, by1;
    if (!center) {
        ax0 = fminf(a[1], a[3]); ax1 = fmaxf(a[1], a[3]);
        ay0 = fminf(a[0], a[2]); ay1 = fmaxf(a[0], a[2]);
        bx0 = fminf(b[1], b[3]); bx1 = fmaxf(b[1], b[3]);
        by0 = fminf(b[0], b[2]); by1 = fmaxf(b[0], b[2]);
    } else {
        ax0 = a[0] - a[2] / 2; ax1 = a[0] + a[2] / 2;
        ay0 = a[1] - a[3] / 2; ay1 = a[1] + a[3] / 2;
        bx0 = b[0] - b[2] / 2; bx1 = b[0] + b[2] / 2;
        by0 = b[1] - b[3] / 2; by1 = b[1] + b[3] / 2;
    }
    float ix0 = fmaxf(ax0, bx0), ix1 = fminf(ax1, bx1);
    if (!(ix1 > ix0)) return false;
    float iy0 = fmaxf(ay0, by0), iy1 = fminf(ay1, by1);
    if (!(iy1 > iy0)) return false;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    if (!(inter > 0)) return false;
    float a1 = (ax1 - ax0) * (ay1 - ay0), a2 = (bx1 - bx0) * (by1 - by0);
    float uni = a1 + a2 - inter;
    if (!(a1 > 0) || !(a2 > 0) || !(uni > 0)) return false;
    return inter / uni > thr;
}

typedef struct {
    float score;
    int64_t idx;
} dt_nms_cand;

/* Highest score first; equal scores: lower index first (the reference's BoxInfo order). */
static int dt_nms_cmp(const void *pa, const void *pb)
{
    const dt_nms_cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

bool dt_nms_work_bytes(int64_t boxes, size_t *bytes)
{
    return boxes >= 0 &&
           !__builtin_mul_overflow((size_t)boxes, 2 * sizeof(dt_nms_cand) + sizeof(int64_t), bytes);
}

int64_t dt_nms_run(const dt_nms_params *p, const float *boxes, const float *scores,
                   int64_t *sel, int64_t cap)
{
    if (p->max_out <= 0 || p->boxes == 0) return 0;
    size_t bytes;
    void *work = dt_nms_work_bytes(p->boxes, &bytes) ? dt_malloc(bytes) : NULL;
    if (!work) return -1;
    int64_t n = dt_nms_run_in(p, boxes, scores, sel, cap, work);
    dt_free(work);
    return n;
}

/* work: the candidates of one class, the indices kept, dt_sort's buffer. */
int64_t dt_nms_run_in(const dt_nms_params *p, const float *boxes, const float *scores,
                      int64_t *sel, int64_t cap, void *work)
{
    if (p->max_out <= 0 || p->boxes == 0) return 0;
    dt_nms_cand *cand = work;
    int64_t *kept = (int64_t *)(cand + p->boxes);
    void *tmp = kept + p->boxes;
    int64_t total = 0;
    for (int64_t bt = 0; bt < p->batches; bt++)
        for (int64_t c = 0; c < p->classes; c++) {
            const float *sc = scores + (bt * p->classes + c) * p->boxes;
            const float *bx = boxes + bt * p->boxes * 4;
            int64_t n = 0;
            for (int64_t i = 0; i < p->boxes; i++)
                if (!p->has_score || sc[i] > p->score) cand[n++] = (dt_nms_cand){sc[i], i};
            dt_sort(cand, (size_t)n, sizeof *cand, dt_nms_cmp, tmp);
            int64_t nk = 0;
            for (int64_t i = 0; i < n && nk < p->max_out; i++) {
                bool keep = true;
                for (int64_t k = 0; k < nk && keep; k++)
                    if (dt_nms_suppress(bx + cand[i].idx * 4, bx + kept[k] * 4, p->center, p->iou))
                        keep = false;
                if (!keep) continue;
                kept[nk++] = cand[i].idx;
                if (sel && total < cap) {
                    sel[total * 3] = bt;
                    sel[total * 3 + 1] = c;
                    sel[total * 3 + 2] = cand[i].idx;
                }
                total++;
            }
        }
    return total;
}

ductile_status dt_vision_infer_nms(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    dt_nms_params p;
    DT_TRY(dt_nms_params_get(L, in, &p));
    int64_t n = dt_nms_run(&p, in[0].data, in[1].data, NULL, 0);
    if (n < 0) return dt_fail(DUCTILE_ERR_OUT_OF_MEMORY, "out of memory for %lld boxes",
                              (long long)p.boxes);
    out[0].dtype = DUCTILE_INT64;
    out[0].rank = 2;
    out[0].dims[0] = n;
    out[0].dims[1] = 3;
    out[0].data = NULL;
    return DUCTILE_OK;
}
