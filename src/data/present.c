/* Presentation: any uint8 HWC image at the model's channels and size,
 * scaled to [0, 1] and normalized. Smaller images are zero-padded centered
 * (or resized with fit_resize), larger ones resized (bilinear, shorter side
 * to the target, half-pixel centers as PIL and torch do) and center-cropped. */
#include <math.h>

#include "clvit/data.h"

static int resample(const clv_present *pr, const uint8_t *hwc, int h, int w, int c, double sy_scale, double sx_scale,
                    double y0s, double x0s, const float *scale, const float *shift, float *out);

/* Pixel value (0..255) of channel oc of output channel set at source (y, x). */
static float pixel(const uint8_t *hwc, int w, int c, int out_c, int y, int x, int oc)
{
    const uint8_t *p = hwc + ((size_t)y * w + x) * c;
    if (c == out_c)
        return p[oc];
    if (c == 1)
        return p[0];
    if (out_c == 1) /* color to gray: ITU-R 601 luma, as PIL's convert("L") */
        return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    return p[oc < c ? oc : 0];
}

int clv_present_image(const clv_present *pr, const uint8_t *hwc, int h, int w, int c, float *out, clv_err *err)
{
    const int oc_n = pr->out_c, oh = pr->out_h, ow = pr->out_w;
    if (h < 1 || w < 1 || (c != 1 && c != 3) || (oc_n != 1 && oc_n != 3) || oh < 1 || ow < 1)
        return clv_errf(err, "cannot present a %dx%dx%d image as %dx%dx%d", h, w, c, oc_n, oh, ow);
    float scale[3], shift[3];
    for (int k = 0; k < oc_n; k++) {
        if (!(pr->std[k] > 0))
            return clv_errf(err, "normalization std of channel %d is %g", k, pr->std[k]);
        scale[k] = 1.0f / (255.0f * pr->std[k]);
        shift[k] = -pr->mean[k] / pr->std[k];
    }
    const size_t plane = (size_t)oh * ow;
    if (h <= oh && w <= ow && !(pr->fit_resize && (h < oh || w < ow))) {
        const int top = (oh - h) / 2, left = (ow - w) / 2;
        for (int k = 0; k < oc_n; k++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    int sy = y - top, sx = x - left;
                    float v = sy >= 0 && sy < h && sx >= 0 && sx < w ? pixel(hwc, w, c, oc_n, sy, sx, k) : 0.0f;
                    out[k * plane + (size_t)y * ow + x] = v * scale[k] + shift[k];
                }
        return 0;
    }
    /* resize so that the image covers the target, then center-crop */
    double f = fmax((double)oh / h, (double)ow / w);
    int rh = (int)lround(h * f), rw = (int)lround(w * f);
    if (rh < oh)
        rh = oh;
    if (rw < ow)
        rw = ow;
    const int top = (rh - oh) / 2, left = (rw - ow) / 2;
    return resample(pr, hwc, h, w, c, (double)h / rh, (double)w / rw, top * (double)h / rh, left * (double)w / rw,
                    scale, shift, out);
}

int clv_present_crop(const clv_present *pr, const uint8_t *hwc, int h, int w, int c, const clv_crop_box *box,
                     float *out, clv_err *err)
{
    const int oc_n = pr->out_c, oh = pr->out_h, ow = pr->out_w;
    if (h < 1 || w < 1 || (c != 1 && c != 3) || (oc_n != 1 && oc_n != 3) || oh < 1 || ow < 1)
        return clv_errf(err, "cannot present a %dx%dx%d image as %dx%dx%d", h, w, c, oc_n, oh, ow);
    if (!(box->h > 0 && box->w > 0 && box->y >= 0 && box->x >= 0 && box->y + box->h <= h + 1e-9 &&
          box->x + box->w <= w + 1e-9))
        return clv_errf(err, "crop box %gx%g at (%g, %g) outside a %dx%d image", box->h, box->w, box->y, box->x, h, w);
    float scale[3], shift[3];
    for (int k = 0; k < oc_n; k++) {
        if (!(pr->std[k] > 0))
            return clv_errf(err, "normalization std of channel %d is %g", k, pr->std[k]);
        scale[k] = 1.0f / (255.0f * pr->std[k]);
        shift[k] = -pr->mean[k] / pr->std[k];
    }
    return resample(pr, hwc, h, w, c, box->h / oh, box->w / ow, box->y, box->x, scale, shift, out);
}

/* Bilinear sampling with half-pixel centers: output (y, x) reads the source
 * at (y0 + (y + 0.5) sy_scale - 0.5, x0 + (x + 0.5) sx_scale - 0.5). */
static int resample(const clv_present *pr, const uint8_t *hwc, int h, int w, int c, double sy_scale, double sx_scale,
                    double y0s, double x0s, const float *scale, const float *shift, float *out)
{
    const int oc_n = pr->out_c, oh = pr->out_h, ow = pr->out_w;
    const size_t plane = (size_t)oh * ow;
    for (int y = 0; y < oh; y++) {
        double sy = y0s + (y + 0.5) * sy_scale - 0.5;
        if (sy < 0)
            sy = 0;
        if (sy > h - 1)
            sy = h - 1;
        int y0 = (int)sy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
        float fy = (float)(sy - y0);
        for (int x = 0; x < ow; x++) {
            double sx = x0s + (x + 0.5) * sx_scale - 0.5;
            if (sx < 0)
                sx = 0;
            if (sx > w - 1)
                sx = w - 1;
            int x0 = (int)sx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            float fx = (float)(sx - x0);
            for (int k = 0; k < oc_n; k++) {
                float a = pixel(hwc, w, c, oc_n, y0, x0, k), b = pixel(hwc, w, c, oc_n, y0, x1, k);
                float cc = pixel(hwc, w, c, oc_n, y1, x0, k), d = pixel(hwc, w, c, oc_n, y1, x1, k);
                float v = (a * (1 - fx) + b * fx) * (1 - fy) + (cc * (1 - fx) + d * fx) * fy;
                out[k * plane + (size_t)y * ow + x] = v * scale[k] + shift[k];
            }
        }
    }
    return 0;
}
