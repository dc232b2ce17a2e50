/* libFuzzer harness: run.json (src/io/run_record.c, run_record_checks.c), as
 * --resume, eval and report read it. The input is the file; an accepted
 * record is printed (accuracy table, average accuracy, forgetting). */
#include "fuzz_util.h"

#include "clvit/run_record.h"

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input_file("run.json", data, size);
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        abort();
    clv_run_record r;
    clv_config cfg;
    clv_err err = {{0}};
    int rc = clv_run_record_read(&r, &cfg, fuzz_dir(), &err);
    fuzz_check_err(rc, &err);
    if (rc)
        return 0;
    clv_run_record_print(&r, &cfg, devnull);
    (void)clv_run_record_last_row(&r);
    clv_run_record_free(&r);
    return 0;
}
