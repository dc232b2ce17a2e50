/* The log level's names (CLVIT_LOG) and the helpers for threads that are not OpenMP's. */
#define _GNU_SOURCE /* sched_setaffinity, cpu_set_t */
#include <criterion/criterion.h>
#include <omp.h>
#include <sched.h>
#include <string.h>

#include "clvit/core.h"

Test(log, level_names_parse_and_others_are_refused)
{
    static const struct {
        const char *name;
        clv_log_level level;
    } good[] = {{"error", CLV_LOG_ERROR}, {"warning", CLV_LOG_WARN}, {"warn", CLV_LOG_WARN},
                {"info", CLV_LOG_INFO},   {"debug", CLV_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        clv_log_level got = (clv_log_level)-1;
        cr_expect_eq(clv_log_level_parse(good[i].name, &got), 0, "%s", good[i].name);
        cr_expect_eq(got, good[i].level, "%s", good[i].name);
    }
    static const char *bad[] = {"", "DEBUG", "debug ", "verbose", "2", "infos"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clv_log_level got = CLV_LOG_INFO;
        cr_expect_eq(clv_log_level_parse(bad[i], &got), -1, "'%s' accepted", bad[i]);
        cr_expect_eq(got, CLV_LOG_INFO, "'%s' changed the level", bad[i]);
    }
    clv_log_level got = CLV_LOG_INFO;
    cr_expect_eq(clv_log_level_parse(NULL, &got), -1);
}

/* Criterion runs each test in a process of its own: the affinity set here does not leak */
static int set_cpus(const int *ids, int n)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < n; i++)
        CPU_SET(ids[i], &set);
    return sched_setaffinity(0, sizeof set, &set);
}

Test(threads, cpus_lists_the_calling_threads_cpus_as_ranges)
{
    char buf[64];
    cr_assert_eq(set_cpus((int[]){0}, 1), 0);
    cr_expect_str_eq(clv_thread_cpus(buf, sizeof buf), "0");
    cpu_set_t all;
    cr_assert_eq(sched_getaffinity(0, sizeof all, &all), 0);
    if (CPU_ISSET(1, &all)) {
        cr_assert_eq(set_cpus((int[]){1}, 1), 0);
        cr_expect_str_eq(clv_thread_cpus(buf, sizeof buf), "1");
        cr_assert_eq(set_cpus((int[]){0, 1}, 2), 0);
        cr_expect_str_eq(clv_thread_cpus(buf, sizeof buf), "0-1");
        /* cut to the buffer, still a string */
        char small[2] = {'x', 'x'};
        cr_expect_str_eq(clv_thread_cpus(small, sizeof small), "0");
    }
    if (CPU_ISSET(2, &all)) {
        cr_assert_eq(set_cpus((int[]){0, 2}, 2), 0);
        cr_expect_str_eq(clv_thread_cpus(buf, sizeof buf), "0,2");
    }
}

Test(threads, spreading_without_a_binding_changes_nothing)
{
    if (omp_get_num_places() > 0)
        cr_skip_test("OMP_PROC_BIND or OMP_PLACES is set: tests/omp_wait_check.sh covers the binding");
    cr_assert_eq(set_cpus((int[]){0}, 1), 0);
    char buf[64];
    cr_expect_eq(clv_thread_spread_over_places(), 0);
    cr_expect_str_eq(clv_thread_cpus(buf, sizeof buf), "0", "without places the thread keeps its CPUs");
}
