/* The body of the PNG and JPEG harnesses (fuzz_png.c, fuzz_jpeg.c): one
 * image file decoded by clv_image_read (which sniffs the format), then
 * presented at a ViT's 3x32x32 input, padded and resized, as predict and
 * the loader do. Two harnesses so that each has its own seed corpus. */
#include "fuzz_util.h"

#include "clvit/data.h"

static int fuzz_image(const uint8_t *data, size_t size, const char *name)
{
    const char *path = fuzz_input_file(name, data, size);
    clv_err err = {{0}};
    uint8_t *px = NULL;
    int h = 0, w = 0, c = 0;
    int rc = clv_image_read(path, &px, &h, &w, &c, &err);
    fuzz_check_err(rc, &err);
    if (rc)
        return 0;
    if (h < 1 || w < 1 || (c != 1 && c != 3))
        abort();
    float out[3 * 32 * 32];
    for (int fit = 0; fit < 2; fit++) {
        clv_present p = {.out_c = 3, .out_h = 32, .out_w = 32, .fit_resize = fit,
                         .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f}};
        rc = clv_present_image(&p, px, h, w, c, out, &err);
        fuzz_check_err(rc, &err);
    }
    clv_free(px);
    return 0;
}
