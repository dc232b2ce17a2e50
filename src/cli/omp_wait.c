/* OpenMP threads wait passively unless the user says otherwise (see omp_wait.h). */
#include "cli/omp_wait.h"

#include <stdlib.h>
#include <unistd.h>

void clv_cli_passive_wait(char **argv)
{
    if (getenv("OMP_WAIT_POLICY"))
        return; /* the user's choice (also: this is the re-executed process) */
    if (setenv("OMP_WAIT_POLICY", "passive", 1))
        return;
    /* libgomp read its environment in a constructor, before main: only a
     * fresh start of the same program sees the setting. On failure the
     * process goes on with OpenMP's default: slower on a busy machine, not wrong. */
    execv("/proc/self/exe", argv);
}
