/* libFuzzer harness: JPEG files (src/data/image_read.c); see fuzz_image.h. */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_image(data, size, "image.jpg"); }
