/* Threads that are not OpenMP's, and OpenMP's places (see clvit/core.h). */
#define _GNU_SOURCE /* sched_setaffinity, cpu_set_t */
#include "clvit/core.h"

#include <sched.h>
#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The union of OpenMP's places into set; the number of CPUs in it (0: no binding, so no places) */
static int places_union(cpu_set_t *set)
{
    CPU_ZERO(set);
#ifdef _OPENMP
    const int places = omp_get_num_places();
    for (int p = 0; p < places; p++) {
        const int n = omp_get_place_num_procs(p);
        if (n <= 0)
            continue;
        int ids[n];
        omp_get_place_proc_ids(p, ids);
        for (int i = 0; i < n; i++)
            if (ids[i] >= 0 && ids[i] < CPU_SETSIZE)
                CPU_SET(ids[i], set);
    }
#endif
    return CPU_COUNT(set);
}

int clv_thread_spread_over_places(void)
{
    cpu_set_t set;
    if (places_union(&set) == 0)
        return 0;
    return sched_setaffinity(0, sizeof set, &set) ? -1 : 1;
}

const char *clv_thread_cpus(char *buf, size_t n)
{
    cpu_set_t set;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    if (sched_getaffinity(0, sizeof set, &set)) {
        snprintf(buf, n, "unknown");
        return buf;
    }
    size_t used = 0;
    for (int c = 0; c < CPU_SETSIZE && used < n; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        int last = c;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set))
            last++;
        int w = last > c ? snprintf(buf + used, n - used, "%s%d-%d", used ? "," : "", c, last)
                         : snprintf(buf + used, n - used, "%s%d", used ? "," : "", c);
        if (w < 0)
            break;
        used += (size_t)w;
        c = last;
    }
    return buf;
}
