/* Private to the vision op family (src/ops/vision*.c) and its kernels
 * (src/backend/<name>/vision*.c): attribute parsing that shape inference and the kernels
 * share, so a kernel cannot disagree with infer about modes, sizes or groups. */
#ifndef DT_OPS_VISION_H
#define DT_OPS_VISION_H

#include "ops/op.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- shared checks (vision.c) ---- */

/* DUCTILE_ERR_SHAPE: "input <i> (<what>) has shape [..]; expected <expected>". */
ductile_status dt_vision_bad_shape(int i, const char *what, const dt_view *v,
                                   const char *expected);

/* ---- GridSample, AffineGrid (vision_grid.c) ---- */

enum { DT_GS_NEAREST, DT_GS_LINEAR, DT_GS_CUBIC };
enum { DT_GS_ZEROS, DT_GS_BORDER, DT_GS_REFLECTION };

typedef struct dt_gridsample_params {
    int mode, padding;
    bool align_corners;
    int spatial;            /* spatial dims of X (1..3) */
} dt_gridsample_params;

ductile_status dt_gridsample_params_get(const ductile_layer *L, dt_gridsample_params *p);

/* ---- NonMaxSuppression (vision_nms.c) ---- */

typedef struct dt_nms_params {
    int64_t batches, classes, boxes;
    int64_t max_out;        /* per batch and class */
    float iou, score;
    bool has_score, center;
} dt_nms_params;

/* Reads attributes and the scalar inputs 2..4 (their data must be known). */
ductile_status dt_nms_params_get(const ductile_layer *L, const dt_view *in, dt_nms_params *p);
/* Runs the suppression; writes up to cap triples into sel (NULL: count only); returns the
 * number of selected boxes. */
int64_t dt_nms_run(const dt_nms_params *p, const float *boxes, const float *scores,
                   int64_t *sel, int64_t cap);
/* The same in steps for compiled kernels: the attribute and the input names read once,
 * the parameters of these inputs, and the run on caller memory of dt_nms_work_bytes
 * (returns -1 only when that overflows). */
typedef struct dt_nms_attrs {
    bool center;
    int n_in;
    const char *names[5];   /* the inputs' tensors, for messages */
} dt_nms_attrs;

void dt_nms_attrs_read(const ductile_layer *L, dt_nms_attrs *a);
ductile_status dt_nms_params_of(const dt_nms_attrs *a, const dt_view *in, dt_nms_params *p);
bool dt_nms_work_bytes(int64_t boxes, size_t *bytes);
int64_t dt_nms_run_in(const dt_nms_params *p, const float *boxes, const float *scores,
                      int64_t *sel, int64_t cap, void *work);

/* ---- RoiAlign (vision_roi.c) ---- */

typedef struct dt_roialign_params {
    bool max;               /* mode 'max' (else 'avg') */
    bool half_pixel;        /* coordinate_transformation_mode (else 'output_half_pixel') */
    int64_t out_h, out_w, sampling_ratio;   /* sampling_ratio 0: adaptive */
    float spatial_scale;
} dt_roialign_params;

ductile_status dt_roialign_params_get(const ductile_layer *L, dt_roialign_params *p);
ductile_status dt_vision_check_roialign(const ductile_layer *L);
ductile_status dt_vision_infer_roialign(const ductile_layer *L, const dt_view *in, dt_view *out);

/* ---- DeformConv (vision_deform.c) ---- */

struct dt_conv_geom;
struct dt_conv_attrs;
/* Conv's geometry of X and W (ops/linalg.h) plus the offset, B and mask shapes, checked. */
ductile_status dt_deformconv_geometry(const ductile_layer *L, const dt_view *in, struct dt_conv_geom *g,
                                      int64_t *offset_group);
/* The same from attributes read once (dt_conv_attrs_read, offset_group) and which of the
 * optional inputs B and mask are given. */
ductile_status dt_deformconv_geometry_of(const struct dt_conv_attrs *a, int64_t offset_group, bool has_b,
                                         bool has_mask, const dt_view *in, struct dt_conv_geom *g);
ductile_status dt_vision_check_deformconv(const ductile_layer *L);
ductile_status dt_vision_infer_deformconv(const ductile_layer *L, const dt_view *in, dt_view *out);

/* ---- Upsample (vision_misc.c) ---- */

/* The per-axis scales (attribute for opset 7, input 1 for opset 9), each in [1, 65536]. */
ductile_status dt_vision_upsample_scales(const ductile_layer *L, const dt_view *in, float *sc);
/* The same from the attributes read once (compiled kernels). */
typedef struct dt_upsample_attrs {
    bool from_input;        /* opset 9: input 1 */
    int n;                  /* the attribute's count (-1: absent or more than a tensor's dims) */
    float sc[DT_MAX_DIMS];
    const char *name;       /* input 1's tensor, for messages */
    int n_in;
} dt_upsample_attrs;

void dt_vision_upsample_attrs_read(const ductile_layer *L, dt_upsample_attrs *a);
ductile_status dt_vision_upsample_scales_of(const dt_upsample_attrs *a, const dt_view *in, float *sc);

/* ---- check and infer of each op ---- */

ductile_status dt_vision_check_gridsample(const ductile_layer *L);
ductile_status dt_vision_infer_gridsample(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_vision_check_affinegrid(const ductile_layer *L);
ductile_status dt_vision_infer_affinegrid(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_vision_check_nms(const ductile_layer *L);
ductile_status dt_vision_infer_nms(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_vision_check_lrn(const ductile_layer *L);
ductile_status dt_vision_infer_same(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_vision_check_groupnorm(const ductile_layer *L);
ductile_status dt_vision_infer_groupnorm(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_vision_check_mvn(const ductile_layer *L);
ductile_status dt_vision_check_maxunpool(const ductile_layer *L);
ductile_status dt_vision_infer_maxunpool(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_vision_check_upsample(const ductile_layer *L);
ductile_status dt_vision_infer_upsample(const ductile_layer *L, const dt_view *in, dt_view *out);
ductile_status dt_vision_check_lppool(const ductile_layer *L);
ductile_status dt_vision_check_global_lppool(const ductile_layer *L);
ductile_status dt_vision_infer_lppool(const ductile_layer *L, const dt_view *in, dt_view *out);

#endif
