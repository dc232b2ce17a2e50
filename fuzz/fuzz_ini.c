/* libFuzzer harness: INI config files (--config; src/core/config.c over
 * inih). The input is the file; an accepted config goes through
 * fuzz_use_config. */
#include "fuzz_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_input_file("config.ini", data, size);
    clv_config c;
    clv_config_defaults(&c);
    clv_err err = {{0}};
    int rc = clv_config_load_ini(&c, path, &err);
    fuzz_check_err(rc, &err);
    if (!rc)
        fuzz_use_config(&c);
    return 0;
}
