/* clvit info: what this build is and what it can do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "clvit/core.h"
#include "clvit/gemm.h"
#include "clvit/model.h"
#include "clvit/precision.h"
#include "clvit/strategy.h"
#include "clvit/version.h"


int clv_cmd_info(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: clvit info\n\nPrints the build, the GEMM backend, the CPU features used, the OpenMP "
                   "threads, and the known models and methods.\n");
            return 0;
        }
        fprintf(stderr, "clvit info: unknown option '%s'\n", argv[i]);
        return 2;
    }
    __builtin_cpu_init();
    printf("clvit %s\n", CLV_VERSION);
    printf("build: gcc %s, %s\n", __VERSION__,
#ifdef __AVX512F__
           "compiled for AVX-512"
#elif defined(__AVX2__)
           "compiled for AVX2"
#else
           "compiled for baseline x86-64"
#endif
    );
    printf("cpu: avx2 %s, fma %s, avx512f %s\n", __builtin_cpu_supports("avx2") ? "yes" : "no",
           __builtin_cpu_supports("fma") ? "yes" : "no", __builtin_cpu_supports("avx512f") ? "yes" : "no");
    printf("gemm: %s\n", clv_gemm_backend());
    char bf16[192];
    printf("precision: fp32 native; bf16 %s\n", clv_bf16_support(bf16, sizeof bf16));
    printf("threads: %d (OpenMP; set with --threads or OMP_NUM_THREADS)\n", clv_threads_get());
    const char *wait = getenv("OMP_WAIT_POLICY");
    const char *spin = getenv("GOMP_SPINCOUNT");
    printf("openmp wait policy: %s%s%s\n", wait ? wait : "OpenMP's default", spin ? ", spin count " : "",
           spin ? spin : "");
    printf("mpi: %s\n", CLV_MPI ? "built in" : "not built (make MPI=1)");
    printf("\nmodels:\n");
    for (int i = 0; i < clv_model_registry_count(); i++)
        printf("  %-26s %s\n", clv_model_registry_name(i), clv_model_registry_summary(i));
    printf("\nmethods:\n");
    for (int i = 0; i < clv_strategy_count(); i++)
        printf("  %-26s %s\n", clv_strategy_ops_at(i)->name, clv_strategy_ops_at(i)->summary);
    printf("\ndatasets: fashion-mnist, mnist (IDX, .gz read directly), cifar10, cifar100 (binary version),\n"
           "          imagefolder (train/ and val/, one folder per class), decathlon (Visual Decathlon, --domains)\n");
    return 0;
}
