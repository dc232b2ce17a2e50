/* clv_gemm on the matrix shapes of a vit_tiny_patch4_32 training step at
 * batch 128 (8320 tokens): the forward and both backward products of the
 * patch embedding, qkv, proj, fc1 and fc2. One JSON line per shape and a
 * total; best of 5 runs each. */
#include <stdio.h>
#include <stdlib.h>

#include "clvit/core.h"
#include "clvit/gemm.h"

typedef struct {
    const char *name;
    int ta, tb;
    long M, N, K;
} shape;

int main(int argc, char **argv)
{
    long B = argc > 1 ? atol(argv[1]) : 128, T = B * 65, P = B * 64, D = 192;
    const shape shapes[] = {
        {"patch fwd", 0, 1, P, D, 48},   {"patch dW", 1, 0, D, 48, P},
        {"qkv fwd", 0, 1, T, 3 * D, D},  {"qkv dx", 0, 0, T, D, 3 * D},    {"qkv dW", 1, 0, 3 * D, D, T},
        {"proj fwd", 0, 1, T, D, D},     {"proj dx", 0, 0, T, D, D},        {"proj dW", 1, 0, D, D, T},
        {"fc1 fwd", 0, 1, T, 4 * D, D},  {"fc1 dx", 0, 0, T, D, 4 * D},     {"fc1 dW", 1, 0, 4 * D, D, T},
        {"fc2 fwd", 0, 1, T, D, 4 * D},  {"fc2 dx", 0, 0, T, 4 * D, D},     {"fc2 dW", 1, 0, D, 4 * D, T},
    };
    double total_flops = 0, total_time = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *g = &shapes[s];
        float *A = clv_alloc_array((size_t)(g->M * g->K), 4), *Bm = clv_alloc_array((size_t)(g->K * g->N), 4);
        float *C = clv_alloc_array((size_t)(g->M * g->N), 4);
        if (!A || !Bm || !C)
            return 1;
        for (long i = 0; i < g->M * g->K; i++)
            A[i] = (float)(i % 17) * 0.01f;
        for (long i = 0; i < g->K * g->N; i++)
            Bm[i] = (float)(i % 13) * 0.01f;
        double best = 1e30;
        for (int r = 0; r < 6; r++) {
            double t = clv_now();
            clv_gemm(g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, g->ta ? g->M : g->K, Bm, g->tb ? g->K : g->N, 1.0f, C,
                     g->N);
            t = clv_now() - t;
            if (r && t < best) /* the first run pays for oneDNN's JIT */
                best = t;
        }
        double flops = 2.0 * g->M * g->N * g->K;
        /* the 12 blocks repeat every block shape */
        int reps = g->name[0] == 'p' && g->name[1] == 'a' ? 1 : 12;
        total_flops += reps * flops;
        total_time += reps * best;
        printf("{\"shape\": \"%s\", \"M\": %ld, \"N\": %ld, \"K\": %ld, \"gflops\": %.1f}\n", g->name, g->M, g->N, g->K,
               flops / best / 1e9);
        clv_free(A);
        clv_free(Bm);
        clv_free(C);
    }
    printf("{\"shape\": \"all (weighted by the step)\", \"gflops\": %.1f, \"gemm\": \"%s\", \"threads\": %d}\n",
           total_flops / total_time / 1e9, clv_gemm_backend(), clv_threads_get());
    return 0;
}
