#!/usr/bin/env bash
# make bench: clvit against the same ViT in Debian's PyTorch, on the same
# threads and batch, in one run (figures from different runs or machines are
# not comparable). Each measurement is repeated REPEATS times, clvit and
# PyTorch interleaved, and the median is reported; each measurement is itself
# the median of STEPS timed steps after WARMUP.
#   BENCH_MODEL (vit_tiny_patch4_32) BENCH_BATCH (128) BENCH_INFER_BATCH (256)
#   BENCH_THREADS (2) BENCH_STEPS (5) BENCH_WARMUP (2) BENCH_REPEATS (3)
#   BENCH_METHODS ("full rkr piggyback")
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${BENCH_MODEL:-vit_tiny_patch4_32}
BATCH=${BENCH_BATCH:-128}
IBATCH=${BENCH_INFER_BATCH:-256}
THREADS=${BENCH_THREADS:-2}
STEPS=${BENCH_STEPS:-5}
WARMUP=${BENCH_WARMUP:-2}
REPEATS=${BENCH_REPEATS:-3}
METHODS=${BENCH_METHODS:-full rkr piggyback}
PY=/usr/bin/python3
OUT=${BENCH_OUT:-build/bench/results.jsonl}
make -s build/clvit build/bench/peak_flops build/bench/gemm_sweep
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores" >&2
echo "peak FLOP/s ($THREADS threads) ..." >&2
OMP_NUM_THREADS=$THREADS build/bench/peak_flops "$THREADS" | sed 's/^/{"kind": "peak", "data": /; s/$/}/' >> "$OUT"
echo "GEMM sweep ..." >&2
OMP_NUM_THREADS=$THREADS build/bench/gemm_sweep "$BATCH" | sed 's/^/{"kind": "gemm", "data": /; s/$/}/' >> "$OUT"
if ! $PY -c 'import torch' 2>/dev/null; then
    echo "PyTorch is missing: tools/install-deps.sh --bench installs Debian's python3-torch" >&2
    HAVE_TORCH=0
else
    HAVE_TORCH=1
fi
for r in $(seq 1 "$REPEATS"); do
    for m in $METHODS; do
        echo "repeat $r/$REPEATS: $m ..." >&2
        args=(--model "$MODEL" --batch "$BATCH" --infer-batch "$IBATCH" --threads "$THREADS" --steps "$STEPS"
              --warmup "$WARMUP" --method "$m")
        [ "$m" = rkr ] && args+=(--rank 4)
        echo "{\"kind\": \"clvit\", \"data\": $(OMP_NUM_THREADS=$THREADS build/clvit bench "${args[@]}" --json)}" >> "$OUT"
        if [ "$HAVE_TORCH" = 1 ]; then
            echo "{\"kind\": \"torch-passive\", \"data\": $(OMP_WAIT_POLICY=passive $PY bench/torch_vit.py "${args[@]}")}" >> "$OUT"
            if [ "$m" = full ]; then
                echo "{\"kind\": \"torch-default\", \"data\": $($PY bench/torch_vit.py "${args[@]}")}" >> "$OUT"
            fi
        fi
    done
done
# data-parallel: THREADS ranks of one thread each on the same global batch (make MPI=1), beside the
# one process of THREADS threads above
if command -v mpirun >/dev/null && command -v mpicc >/dev/null; then
    make -s MPI=1 BUILD=build-mpi build-mpi/clvit
    for r in $(seq 1 "$REPEATS"); do
        echo "repeat $r/$REPEATS: full, $THREADS MPI ranks x 1 thread ..." >&2
        echo "{\"kind\": \"clvit-mpi\", \"data\": $(OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe \
            -np "$THREADS" build-mpi/clvit bench --model "$MODEL" --batch "$BATCH" --infer-batch "$IBATCH" \
            --threads 1 --steps "$STEPS" --warmup "$WARMUP" --method full --json)}" >> "$OUT"
    done
else
    echo "no mpirun/mpicc: the data-parallel figure is skipped (Debian: libopenmpi-dev openmpi-bin)" >&2
fi
$PY bench/summarize.py "$OUT"
