#!/usr/bin/env bash
# make bench: clvit beside the same networks in Debian's PyTorch (fp32, and
# bf16 under torch.autocast), on the same threads and batches, in one run
# (figures from different runs or machines are not comparable). For every
# model x method x precision, clvit and PyTorch run one after the other, and
# the whole set is repeated REPEATS times; bench/summarize.py reports medians
# over the repeats, each repeat being the median of STEPS timed steps after
# WARMUP. Also: the machine's measured peaks (bench/peak_flops.c: fp32 FMA,
# bf16 dot products, AMX), oneDNN's sgemm on the ViT step's shapes, and the
# first model's fp32 full step on THREADS MPI ranks (make MPI=1).
#
# Time: the default run (3 models x 3 methods x 2 precisions, clvit and
# PyTorch, 3 repeats, plus the MPI build and figure) is planned for about 35
# minutes on an idle 2-core machine. One repeat, from issue 15's idle step
# times (each measurement also runs its inference steps and starts a
# process): about 3 min for vit_tiny_patch4_32 (4 timed steps after 1
# warmup), 4 min for swin_tiny_patch4_window7_224 (about 3 s a train step
# at batch 16: 3 timed steps after 1) and 3 min for resnet18_cifar (3 after
# 1); then 2-3 min to build build-mpi and 1 min of MPI runs. Under load it
# takes several times longer.
#
#   BENCH_MODELS      ("vit_tiny_patch4_32 swin_tiny_patch4_window7_224 resnet18_cifar")
#   BENCH_PRECISIONS  ("fp32 bf16")        BENCH_METHODS ("full rkr piggyback")
#   BENCH_REPEATS (3)  BENCH_THREADS (2)
#   BENCH_SPINCOUNT (10000)  OpenMP's idle threads, clvit's and PyTorch's alike: passive after a
#                     spin of this many rounds (GOMP_SPINCOUNT; about 0.1 ms). On an idle machine
#                     it saves a futex wake per parallel region (vit_tiny bf16 inference 531 -> 781
#                     img/s, PyTorch's 447 -> 481); 0: passive at once, for a loaded machine
#   BENCH_BATCH, BENCH_INFER_BATCH, BENCH_STEPS, BENCH_WARMUP
#                     override every model's own (see model_defaults below)
#   BENCH_TORCH (1)   0: clvit only (the PyTorch columns stay empty)
#   BENCH_LOCKSTEP (0) 1: clvit and PyTorch step for step, one step at a time (bench/lockstep.py). Not
#                     the default: it takes PyTorch's step from about 92 to 77 img/s and clvit's from
#                     110 to 105 (vit_tiny bf16, 2026-12-02): a step that follows the other's heavy
#                     step costs PyTorch more (see lockstep.py), so the ratios would flatter clvit
#   BENCH_MPI (1)     0: no data-parallel figure (it builds build-mpi, about 2 minutes)
#   BENCH_GEMM (1)    0: no GEMM sweep     BENCH_PEAK_ITERS: bench/peak_flops's loop length
#   BENCH_OUT (build/bench/results.jsonl)  the JSON lines bench/summarize.py reads
#   BENCH_CLVIT (build/clvit)  another build of clvit to measure (built by make when it is the default)
# clvit bench gets --precision only when its --help offers it; otherwise its
# bf16 figures are recorded as missing (never as fp32 ones).
set -euo pipefail
# the rest is one block, which bash reads whole before running it: editing this file during a run is safe
{
cd "$(dirname "$0")/.."
MODELS=${BENCH_MODELS:-vit_tiny_patch4_32 swin_tiny_patch4_window7_224 resnet18_cifar}
PRECISIONS=${BENCH_PRECISIONS:-fp32 bf16}
METHODS=${BENCH_METHODS:-full rkr piggyback}
THREADS=${BENCH_THREADS:-2}
REPEATS=${BENCH_REPEATS:-3}
SPIN=${BENCH_SPINCOUNT:-10000}
PY=/usr/bin/python3
OUT=${BENCH_OUT:-build/bench/results.jsonl}
BIN=${BENCH_CLVIT:-build/clvit}

# batch, inference batch, timed steps, warmup steps of one model
model_defaults() {
    case "$1" in
        swin_tiny*) echo 16 32 3 1 ;;
        swin*) echo 64 128 3 1 ;;
        vit_tiny_patch4_32) echo 128 256 4 1 ;;
        *) echo 128 256 3 1 ;;
    esac
}

for p in $PRECISIONS; do
    case "$p" in fp32 | bf16) ;; *) echo "bench/run.sh: BENCH_PRECISIONS: '$p' is not fp32 or bf16" >&2; exit 2 ;; esac
done
for m in $METHODS; do
    case "$m" in full | rkr | piggyback | linear) ;;
        *) echo "bench/run.sh: BENCH_METHODS: '$m' is not full, rkr, piggyback or linear" >&2; exit 2 ;; esac
done
[[ ${BENCH_LOCKSTEP:-0} =~ ^[01]$ ]] || { echo "bench/run.sh: BENCH_LOCKSTEP must be 0 or 1, not '$BENCH_LOCKSTEP'" >&2; exit 2; }
[[ $SPIN =~ ^[0-9]+$ ]] || { echo "bench/run.sh: BENCH_SPINCOUNT must be an integer of at least 0, not '$SPIN'" >&2; exit 2; }
for v in THREADS REPEATS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench/run.sh: BENCH_$v must be a positive integer, not '${!v}'" >&2; exit 2; }
done
for v in BENCH_BATCH BENCH_INFER_BATCH BENCH_STEPS BENCH_WARMUP; do
    val=${!v:-}
    [ -n "$val" ] || continue
    min=1
    [ "$v" = BENCH_WARMUP ] && min=0
    if ! [[ $val =~ ^[0-9]+$ ]] || [ "$val" -lt "$min" ]; then
        echo "bench/run.sh: $v must be an integer of at least $min, not '$val'" >&2
        exit 2
    fi
done

make -s build/clvit build/bench/peak_flops build/bench/gemm_sweep
[ -x "$BIN" ] || { echo "bench/run.sh: BENCH_CLVIT: '$BIN' is not an executable" >&2; exit 2; }
for model in $MODELS; do # a misspelt model fails here, not half an hour in
    $PY -c 'import sys; sys.path.insert(0, "bench"); from model_specs import SPECS; sys.exit(sys.argv[1] not in SPECS)' \
        "$model" || { echo "bench/run.sh: BENCH_MODELS: unknown model '$model' (bench/model_specs.py)" >&2; exit 2; }
done
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
started=$(date +%s)
record() { echo "{\"kind\": \"$1\", $2}" >> "$OUT"; }
note() {
    echo "note: $1" >&2
    record note "\"data\": {\"text\": \"$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')\"}"
}
json_list() { printf '%s\n' $1 | $PY -c 'import json, sys; print(json.dumps(sys.stdin.read().split()))'; }

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //; s/"//g')
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|amx_bf16)$' | tr '\n' ' ')
echo "machine: $cpu, $(nproc) cores (${flags% })" >&2
record machine "\"data\": {\"cpu\": \"$cpu\", \"cores\": $(nproc), \"flags\": \"${flags% }\", \"threads\": $THREADS, \"spincount\": $SPIN}"
plan="\"models\": $(json_list "$MODELS"), \"precisions\": $(json_list "$PRECISIONS"), \"methods\": $(json_list "$METHODS")"
for model in $MODELS; do
    read -r b ib s w <<< "$(model_defaults "$model")"
    plan+=", \"$model\": {\"batch\": ${BENCH_BATCH:-$b}, \"infer_batch\": ${BENCH_INFER_BATCH:-$ib},"
    plan+=" \"steps\": ${BENCH_STEPS:-$s}, \"warmup\": ${BENCH_WARMUP:-$w}}"
done
record plan "\"data\": {$plan, \"repeats\": $REPEATS, \"lockstep\": ${BENCH_LOCKSTEP:-0}}"

echo "peak FLOP/s ($THREADS threads) ..." >&2
record peak "\"data\": $(OMP_NUM_THREADS=$THREADS build/bench/peak_flops "$THREADS" ${BENCH_PEAK_ITERS:-})"
if [ "${BENCH_GEMM:-1}" = 1 ]; then
    echo "GEMM sweep ..." >&2
    OMP_NUM_THREADS=$THREADS build/bench/gemm_sweep "${BENCH_BATCH:-128}" | while read -r line; do
        record gemm "\"data\": $line"
    done
fi

if $BIN bench --help | grep -q -- '--precision'; then
    CLVIT_PRECISION=1
else
    CLVIT_PRECISION=0
    note "clvit bench has no --precision (before the bf16 work): its bf16 figures are missing, its fp32 ones are its only precision"
fi

HAVE_TORCH=0
if [ "${BENCH_TORCH:-1}" = 1 ]; then
    if ! $PY -c 'import torch' 2>/dev/null; then
        note "PyTorch is missing: tools/install-deps.sh --bench installs Debian's python3-torch; the PyTorch columns stay empty"
    else
        HAVE_TORCH=1
        # Debian's PyTorch takes its fp32 GEMM from the system's libblas.so.3: the reference BLAS (no OpenBLAS
        # installed) runs at a few GFLOP/s and a full-size step takes minutes; look before waiting hours
        probe=$(OMP_NUM_THREADS=$THREADS $PY -c '
import json, time, torch
torch.set_num_threads('"$THREADS"')
a = torch.randn(512, 512)
torch.mm(a, a)
t = time.perf_counter()
for _ in range(10):
    torch.mm(a, a)
g = 10 * 2 * 512 ** 3 / (time.perf_counter() - t) / 1e9
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.split()[-1]})
ref = any("/blas/libblas" in p for p in libs)  # the reference BLAS (OpenBLAS: openblas-pthread/libblas)
print(json.dumps({"gflops": round(g, 1), "blas": libs, "reference_blas": ref or g < 2}))')
        record torch-blas "\"data\": $probe"
        echo "PyTorch fp32 GEMM: $probe" >&2
        if $PY -c 'import json, sys; sys.exit(not json.loads(sys.argv[1])["reference_blas"])' "$probe"; then
            note "PyTorch's fp32 GEMM is the reference BLAS or runs under 2 GFLOP/s ($probe): tools/install-deps.sh --bench installs libopenblas0-pthread; PyTorch's fp32 figures are skipped (BENCH_TORCH_SLOW=1 measures them anyway: hours for full-size models)"
            [ "${BENCH_TORCH_SLOW:-0}" = 1 ] || SKIP_TORCH_FP32=1
        fi
    fi
fi

# one measurement: $1 kind, $2 precision, the command after; a failure is reported and recorded, the run goes on
measure() {
    local kind=$1 prec=$2 out
    shift 2
    if out=$("$@"); then
        record "$kind" "\"precision\": \"$prec\", \"data\": $out"
    else
        note "failed ($kind, $prec): $*"
    fi
}

# BENCH_LOCKSTEP=1: clvit and PyTorch on the same model, method and precision step for step
# (bench/lockstep.py). $1 precision; the commands are the arrays clvit_cmd and torch_cmd
lockstep() {
    local prec=$1 rc=0
    $PY bench/lockstep.py --out "$tmp/clvit.json" "$tmp/torch.json" -- "${clvit_cmd[@]}" -- "${torch_cmd[@]}" \
        2> "$tmp/lockstep.log" || rc=$?
    grep -v '^lockstep: [0-9]* and [0-9]* steps' "$tmp/lockstep.log" >&2 || true
    for side in clvit torch; do
        if [ -s "$tmp/$side.json" ] && $PY -c 'import json, sys; json.load(open(sys.argv[1]))' "$tmp/$side.json" 2>/dev/null; then
            record "$side" "\"precision\": \"$prec\", \"data\": $(cat "$tmp/$side.json")"
        else
            note "failed ($side, $prec, in lockstep with rc $rc): ${clvit_cmd[*]} / ${torch_cmd[*]}"
        fi
    done
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for r in $(seq 1 "$REPEATS"); do
    for model in $MODELS; do
        read -r b ib s w <<< "$(model_defaults "$model")"
        common=(--model "$model" --batch "${BENCH_BATCH:-$b}" --infer-batch "${BENCH_INFER_BATCH:-$ib}"
                --threads "$THREADS" --steps "${BENCH_STEPS:-$s}" --warmup "${BENCH_WARMUP:-$w}")
        for m in $METHODS; do
            args=("${common[@]}" --method "$m")
            [ "$m" = rkr ] && args+=(--rank 4)
            for p in $PRECISIONS; do
                echo "repeat $r/$REPEATS: $model $m $p ..." >&2
                env=(env OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=passive GOMP_SPINCOUNT="$SPIN")
                clvit_cmd=()
                if [ "$CLVIT_PRECISION" = 1 ]; then
                    clvit_cmd=("${env[@]}" $BIN bench "${args[@]}" --precision "$p" --json)
                elif [ "$p" = fp32 ]; then
                    clvit_cmd=("${env[@]}" $BIN bench "${args[@]}" --json)
                fi
                torch_cmd=()
                if [ "$HAVE_TORCH" = 1 ] && ! [ "$p" = fp32 -a "${SKIP_TORCH_FP32:-0}" = 1 ]; then
                    torch_cmd=("${env[@]}" $PY bench/torch_peer.py "${args[@]}" --precision "$p")
                fi
                if [ "${BENCH_LOCKSTEP:-0}" = 1 ] && [ ${#clvit_cmd[@]} -gt 0 ] && [ ${#torch_cmd[@]} -gt 0 ]; then
                    lockstep "$p"
                else
                    [ ${#clvit_cmd[@]} = 0 ] || measure clvit "$p" "${clvit_cmd[@]}"
                    [ ${#torch_cmd[@]} = 0 ] || measure torch "$p" "${torch_cmd[@]}"
                fi
            done
        done
    done
done

# data-parallel: THREADS ranks of one thread each on the same global batch (make MPI=1), beside the
# one process of THREADS threads above; the first model, fp32, the whole network
if [ "${BENCH_MPI:-1}" != 1 ]; then
    :
elif command -v mpirun >/dev/null && command -v mpicc >/dev/null; then
    make -s -j"$THREADS" MPI=1 BUILD=build-mpi build-mpi/clvit
    model=${MODELS%% *}
    read -r b ib s w <<< "$(model_defaults "$model")"
    for r in $(seq 1 "$REPEATS"); do
        echo "repeat $r/$REPEATS: $model full fp32, $THREADS MPI ranks x 1 thread ..." >&2
        measure clvit-mpi fp32 env OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -np "$THREADS" \
            build-mpi/clvit bench --model "$model" --batch "${BENCH_BATCH:-$b}" --infer-batch "${BENCH_INFER_BATCH:-$ib}" \
            --threads 1 --steps "${BENCH_STEPS:-$s}" --warmup "${BENCH_WARMUP:-$w}" --method full --json
    done
else
    note "no mpirun/mpicc: the data-parallel figure is skipped (Debian: libopenmpi-dev openmpi-bin)"
fi
record elapsed "\"data\": {\"seconds\": $(($(date +%s) - started))}"
$PY bench/summarize.py "$OUT"
exit
}
