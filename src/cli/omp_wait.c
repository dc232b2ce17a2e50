/* OpenMP threads wait passively unless the user says otherwise (see omp_wait.h). */
#define _GNU_SOURCE /* sched_setaffinity, cpu_set_t */
#include "cli/omp_wait.h"

#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

/* When OMP_PROC_BIND or OMP_PLACES asks for binding, libgomp binds this first thread to the first
 * place before main runs, and a process started by execv inherits that one place: all its threads
 * then share it (seen: both threads on CPU 0, the ViT step 3 times slower). The places are what
 * libgomp made of the CPUs the process was started with (a taskset's too), so the restart gets
 * back their union. Without binding there are no places and nothing to undo. */
static void unbind_for_restart(void)
{
    const int places = omp_get_num_places();
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int p = 0; p < places; p++) {
        const int n = omp_get_place_num_procs(p);
        if (n <= 0)
            continue;
        int ids[n];
        omp_get_place_proc_ids(p, ids);
        for (int i = 0; i < n; i++)
            if (ids[i] >= 0 && ids[i] < CPU_SETSIZE)
                CPU_SET(ids[i], &set);
    }
    if (CPU_COUNT(&set) > 0)
        sched_setaffinity(0, sizeof set, &set); /* on failure the restart keeps one place: slower, not wrong */
}

void clv_cli_passive_wait(char **argv)
{
    if (getenv("OMP_WAIT_POLICY"))
        return; /* the user's choice (also: this is the re-executed process) */
    if (setenv("OMP_WAIT_POLICY", "passive", 1))
        return;
    /* libgomp read its environment in a constructor, before main: only a
     * fresh start of the same program sees the setting. On failure the
     * process goes on with OpenMP's default: slower on a busy machine, not wrong. */
    unbind_for_restart();
    execv("/proc/self/exe", argv);
}
