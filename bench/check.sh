#!/usr/bin/env bash
# make bench-check (part of make test): bench/run.sh end to end on the nano
# models (every family), 1 step, 1 repeat, without PyTorch (CI has none) and
# without MPI, in about 10 seconds. Fails unless
#  - summarize prints every planned row once (models x precisions x methods,
#    inference, peak RSS), with a clvit figure in every fp32 row, and in every
#    bf16 row exactly when `clvit bench --help` offers --precision (else "-");
#  - the peak line reports an fp32 peak;
#  - the per-repeat column divides clvit's figure by PyTorch's repeat by repeat
#    (on two made-up repeats);
#  - clvit's flops_per_image equals bench/model_specs.py's, which the PyTorch
#    peer reports (the registry and the peer count the same network);
#  - bench/lockstep.py runs two benches step for step: clvit against clvit takes 2 (W + S) turns
#    each; a peer that steps without its turn, or fails, is reported and the other still finishes;
#    clvit bench refuses --turns that are not two open descriptors;
#  - run.sh refuses an unknown model, precision or method by name;
#  - bench/onednn_profile.py counts FLOPs and sums times right on made-up verbose lines and reads a
#    real run's (resnet_nano_cifar, whose convolutions are oneDNN primitives on any CPU).
# BENCH_CHECK_TORCH=1 also runs the PyTorch peer (needs python3-torch; about 45 s);
# BENCH_CLVIT=path checks another build (e.g. one with --precision).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_CLVIT:-build/clvit}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "bench-check: FAIL: $*" >&2; exit 1; }

MODELS="vit_nano_patch4_32 swin_nano_patch2_window4_32 resnet_nano_cifar"
export BENCH_MODELS=$MODELS BENCH_PRECISIONS="fp32 bf16" BENCH_METHODS="full rkr piggyback" BENCH_BATCH=4 \
    BENCH_INFER_BATCH=4 BENCH_STEPS=1 BENCH_WARMUP=0 BENCH_REPEATS=1 BENCH_MPI=0 BENCH_PEAK_ITERS=100000 \
    BENCH_TORCH=${BENCH_CHECK_TORCH:-0} BENCH_OUT=$tmp/results.jsonl
nice -n 10 bench/run.sh > "$tmp/table.txt" 2> "$tmp/log.txt" || { cat "$tmp/log.txt" >&2; fail "bench/run.sh failed"; }

if "$BIN" bench --help | grep -q -- '--precision'; then bf16_clvit=1; else bf16_clvit=0; fi
grep -q '^peak fp32: [0-9]' "$tmp/table.txt" || fail "no fp32 peak in the summary"
rows=0
for model in $MODELS; do
    for prec in fp32 bf16; do
        labels=()
        for m in "full" "rkr rank-4" "piggyback"; do
            labels+=("$model $prec train step ($m), images/s" "$model $prec $m step peak RSS, MB")
        done
        labels+=("$model $prec inference, images/s")
        for label in "${labels[@]}"; do
            n=$(grep -cF "| $label |" "$tmp/table.txt" || true)
            [ "$n" = 1 ] || fail "the row '$label' appears $n times (expected once)"
            clvit=$(grep -F "| $label |" "$tmp/table.txt" | awk -F'|' '{gsub(/ /, "", $3); print $3}')
            if [ "$prec" = fp32 ] || [ "$bf16_clvit" = 1 ]; then
                [[ $clvit =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "'$label': clvit's figure is '$clvit', not a number"
            else
                [ "$clvit" = "-" ] || fail "'$label': clvit has no --precision, yet its bf16 figure is '$clvit'"
            fi
            rows=$((rows + 1))
        done
    done
done

# the registry's FLOP counts against model_specs.py's (the peer's)
$PY - "$tmp/results.jsonl" <<'EOF' || fail "FLOP counts differ"
import json, sys
sys.path.insert(0, "bench")
from model_specs import forward_flops
seen = set()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["kind"] in ("clvit", "torch"):
        d = r["data"]
        if d["flops_per_image"] != forward_flops(d["model"]):
            sys.exit(f"{r['kind']} {d['model']}: flops_per_image {d['flops_per_image']}, "
                     f"bench/model_specs.py {forward_flops(d['model'])}")
        seen.add(d["model"])
if len(seen) != 3:
    sys.exit(f"measured models: {sorted(seen)}")
EOF

# the per-repeat column pairs clvit and PyTorch repeat by repeat (two made-up repeats: 30/20, 50/25)
$PY - "$tmp/paired.jsonl" <<'EOF'
import json, sys
rec = lambda kind, data: json.dumps({"kind": kind, "data": data})
d = lambda ips: {"model": "vit_nano_patch4_32", "method": "finetune", "precision": "fp32", "train_images_per_s": ips}
lines = [rec("plan", {"models": ["vit_nano_patch4_32"], "precisions": ["fp32"], "methods": ["full"], "repeats": 2}),
         rec("clvit", d(30.0)), rec("torch", d(20.0)), rec("clvit", d(50.0)), rec("torch", d(25.0))]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
EOF
row=$($PY bench/summarize.py "$tmp/paired.jsonl" | grep -F "| vit_nano_patch4_32 fp32 train step (full), images/s |") ||
    fail "summarize printed no train row for the paired check"
[[ $row == *"| 40.0 | 22.5 | 1.78x |"* && $row == *"| 1.50 2.00 |" ]] ||
    fail "the per-repeat ratios are not clvit / PyTorch repeat by repeat: $row"

# lockstep: clvit against itself (2 x (1 warmup + 2 timed) steps each), then against a peer that
# does not wait for its turn, then against one that fails at once
nano=("$BIN" bench --model vit_nano_patch4_32 --batch 2 --infer-batch 2 --steps 2 --warmup 1 --threads 1 --json)
$PY bench/lockstep.py --out "$tmp/a.json" "$tmp/b.json" -- "${nano[@]}" -- "${nano[@]}" 2> "$tmp/ls.txt" ||
    fail "lockstep of clvit against clvit failed: $(cat "$tmp/ls.txt")"
grep -q '^lockstep: 6 and 6 steps taken in turn' "$tmp/ls.txt" || fail "lockstep turns: $(cat "$tmp/ls.txt")"
for side in a b; do
    $PY -c 'import json, sys; assert json.load(open(sys.argv[1]))["steps"] == 2' "$tmp/$side.json" ||
        fail "lockstep: $side's output is not clvit bench's JSON: $(cat "$tmp/$side.json")"
done
rude='import os, sys
w = int(sys.argv[-1].split(",")[1])
for _ in range(3):
    os.write(w, b"r")  # and steps at once, without reading its go
'
if $PY bench/lockstep.py --out "$tmp/a.json" "$tmp/b.json" -- "${nano[@]}" -- $PY -c "$rude" 2> "$tmp/ls.txt"; then
    fail "lockstep accepted a peer that steps out of turn"
fi
grep -q 'B .*stepped out of turn' "$tmp/ls.txt" || fail "lockstep did not name the peer out of turn: $(cat "$tmp/ls.txt")"
$PY -c 'import json, sys; json.load(open(sys.argv[1]))' "$tmp/a.json" || fail "clvit did not finish beside a rude peer"
if $PY bench/lockstep.py --out "$tmp/a.json" "$tmp/b.json" -- "${nano[@]}" -- $PY -c 'import sys; sys.exit(3)' \
    2> "$tmp/ls.txt"; then
    fail "lockstep reported success with a peer that failed"
fi
grep -q 'B .*exited with status 3' "$tmp/ls.txt" || fail "lockstep did not report the peer's failure: $(cat "$tmp/ls.txt")"
$PY -c 'import json, sys; json.load(open(sys.argv[1]))' "$tmp/a.json" || fail "clvit did not finish alone"
$PY bench/lockstep.py --out "$tmp/a.json" "$tmp/b.json" -- "${nano[@]}" 2> "$tmp/ls.txt" && fail "lockstep ran one command"
grep -q '^usage: lockstep.py \[--timeout S\] --out' "$tmp/ls.txt" || fail "lockstep's usage: $(cat "$tmp/ls.txt")"
for bad in "7" "3,99" "0,x"; do
    if "${nano[@]}" --turns "$bad" > /dev/null 2> "$tmp/err.txt"; then fail "clvit bench accepted --turns $bad"; fi
    grep -q -- "--turns.*$bad" "$tmp/err.txt" || fail "clvit bench's error for --turns $bad: $(cat "$tmp/err.txt")"
done

for bad in "BENCH_MODELS=vit_nope" "BENCH_LOCKSTEP=2" "BENCH_PRECISIONS=fp16" "BENCH_METHODS=fullish" "BENCH_STEPS=0" "BENCH_BATCH=8x" "BENCH_SPINCOUNT=-1"; do
    if env "$bad" bench/run.sh > /dev/null 2> "$tmp/err.txt"; then fail "run.sh accepted $bad"; fi
    grep -F "${bad%%=*}" "$tmp/err.txt" | grep -qF "'${bad#*=}'" ||
        fail "run.sh's error for $bad does not name the setting and its value: $(cat "$tmp/err.txt")"
done
# bench/onednn_profile.py: FLOPs and sums on made-up lines of oneDNN's format, then a real run's
# verbose output (the format of the oneDNN clvit links)
prof=$tmp/profile.txt
$PY bench/onednn_profile.py --peak 100 tests/fixtures/bench/onednn_verbose.txt > "$prof" || fail "onednn_profile failed"
for want in '| 0.40 | 30.5% | 2 | 60.0 (60%) | matmul |' 'src bf16, wei bf16, dst f32 | A | 300x100:100x200:300x200 |' \
    '| 72.0 (72%) | matmul | gemm:jit |' '| 11.5 (12%) | convolution |' '| 14.4 (14%) | convolution |' \
    '| 0.50 | 38.1% | 1 |  | reorder |' 'in 7 calls;' '1 exec line not understood'; do
    grep -qF -- "$want" "$prof" || fail "onednn_profile's table lacks '$want': $(cat "$prof")"
done
if $PY bench/onednn_profile.py < /dev/null 2> "$tmp/err.txt"; then fail "onednn_profile accepted no exec lines"; fi
grep -q 'ONEDNN_VERBOSE=1' "$tmp/err.txt" || fail "onednn_profile's error without exec lines: $(cat "$tmp/err.txt")"
# (ResNet: its convolutions are oneDNN primitives in fp32 too, so this holds on any CPU)
ONEDNN_VERBOSE=1 "$BIN" bench --model resnet_nano_cifar --batch 2 --infer-batch 2 --steps 1 --warmup 0 --threads 1 \
    --json > "$tmp/verbose.txt" 2>&1 || fail "clvit bench under ONEDNN_VERBOSE=1 failed"
$PY bench/onednn_profile.py "$tmp/verbose.txt" > "$prof" || fail "onednn_profile failed on a real run"
grep -qE '^\| [0-9.]+ \| [0-9.]+% \| [0-9]+ \| [0-9.]+ \| convolution \|' "$prof" ||
    fail "onednn_profile found no convolution with its GFLOP/s in a real run: $(head -5 "$prof")"
grep -q 'not understood' "$prof" && fail "onednn_profile did not understand a real run's lines: $(tail -1 "$prof")"

echo "bench-check: $rows rows, FLOP counts equal, lockstep kept, bad settings refused, oneDNN profile read (clvit bf16: $([ $bf16_clvit = 1 ] && echo measured || echo missing before --precision))"
