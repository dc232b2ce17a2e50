/* OpenMP threads wait passively unless the user says otherwise (see omp_wait.h). */
#include "cli/omp_wait.h"

#include <stdlib.h>
#include <unistd.h>

#include "clvit/core.h"

/* When OMP_PROC_BIND or OMP_PLACES asks for binding, libgomp binds this first thread to the first
 * place before main runs, and a process started by execv inherits that one place: all its threads
 * then share it (seen: both threads on CPU 0, the ViT step 3 times slower). So the restart gets
 * back the places' union first. */
void clv_cli_passive_wait(char **argv)
{
    if (getenv("OMP_WAIT_POLICY"))
        return; /* the user's choice (also: this is the re-executed process) */
    if (setenv("OMP_WAIT_POLICY", "passive", 1))
        return;
    /* libgomp read its environment in a constructor, before main: only a
     * fresh start of the same program sees the setting. On failure the
     * process goes on with OpenMP's default: slower on a busy machine, not wrong. */
    clv_thread_spread_over_places(); /* on failure the restart keeps one place: slower, not wrong */
    execv("/proc/self/exe", argv);
}
