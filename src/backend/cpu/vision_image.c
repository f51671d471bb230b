/* ImageDecoder: the codec (ops/image.h) decodes into the scratch as packed RGB, then the
 * pixel format is made from it. The output's shape came from infer's probe of the same bytes,
 * so a run that finds another size says the input changed under it. The libraries allocate
 * their own state while decoding; ImageDecoder engines are eager, which allocate anyway. */
#include "backend/cpu/vision_kernels.h"
#include "core/status.h"
#include "ops/image.h"

#include <string.h>

typedef struct dt_image_params {
    const ductile_layer *L;
    int format; /* DT_IMAGE_* */
} dt_image_params;

static ductile_status dt_image_prepare(const ductile_layer *L, void **out)
{
    dt_image_params p = {L, dt_image_pixel_format(L)};
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_image_scratch(const void *params, const dt_view *in, const dt_view *out, int threads,
                                       size_t *bytes)
{
    if (!dt_image_work_bytes(out[0].dims[0], out[0].dims[1], bytes)) *bytes = 0;
    return DUCTILE_OK;
}

static ductile_status dt_image_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    const dt_image_params *p = params;
    const char *name = p->L->in[0] ? p->L->in[0]->name : "";
    const dt_image_codec *c;
    int64_t h, w;
    ductile_status s = dt_image_probe(in[0].data, (size_t)in[0].dims[0], &c, &h, &w);
    if (s) return dt_fail_prefix(s, "input 0 ('%s')", name);
    size_t bytes;
    if (h != out[0].dims[0] || w != out[0].dims[1] || !dt_image_work_bytes(h, w, &bytes) || ex->scratch_bytes < bytes)
        return dt_fail(DUCTILE_ERR_STATE, "input 0 ('%s') changed between shape inference and the run", name);
    uint8_t *rgb = ex->scratch, *o = out[0].data;
    s = c->decode(in[0].data, (size_t)in[0].dims[0], h, w, rgb);
    if (s) return dt_fail_prefix(s, "input 0 ('%s')", name);
    int64_t n = h * w;
    if (p->format == DT_IMAGE_GRAY) {
        dt_image_rgb_to_gray(rgb, o, n);
    } else if (p->format == DT_IMAGE_BGR) {
        for (int64_t i = 0; i < n; i++, rgb += 3, o += 3) o[0] = rgb[2], o[1] = rgb[1], o[2] = rgb[0];
    } else {
        memcpy(o, rgb, (size_t)n * 3);
    }
    return DUCTILE_OK;
}

const dt_kernel dt_cpu_image_decoder_kernel = {
    .prepare = dt_image_prepare, .scratch = dt_image_scratch, .run = dt_image_run,
};
