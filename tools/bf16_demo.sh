#!/usr/bin/env bash
# bf16 against fp32 on the demo (configs/fashion_mnist_demo.ini, Split
# Fashion-MNIST with vit_nano_patch4_32), every method, a few seeds: the mean
# final accuracy of each, and the difference (issue 15: within 0.5 points).
# Too slow for make test; `make bf16-demo` runs it.
#   METHODS="rkr" SEEDS="0 1 2" EXTRA="--train-limit 3000 --test-limit 1000" tools/bf16_demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/clvit
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
OUT=${OUT:-runs/bf16-demo}
METHODS=${METHODS:-finetune linear independent rkr piggyback maskrkr}
SEEDS=${SEEDS:-0 1}
EXTRA=${EXTRA:---train-limit 3000 --test-limit 1000}
mkdir -p "$OUT"
printf '%-12s %-5s %s\n' method seed "fp32 bf16 (mean final accuracy, %)"
for m in $METHODS; do
    for s in $SEEDS; do
        for p in fp32 bf16; do
            # shellcheck disable=SC2086
            "$BIN" train --config configs/fashion_mnist_demo.ini --method "$m" --seed "$s" --precision "$p" \
                $EXTRA --quiet --overwrite --out "$OUT/$m-$s-$p" > /dev/null
        done
        /usr/bin/python3 - "$OUT/$m-$s-fp32/run.json" "$OUT/$m-$s-bf16/run.json" "$m" "$s" <<'PY'
import json, sys
def final(path):
    a = json.load(open(path))["accuracy_matrix"][-1]
    return sum(a) / len(a)
f, b = final(sys.argv[1]), final(sys.argv[2])
print(f"{sys.argv[3]:<12} {sys.argv[4]:<5} {f:6.2f} {b:6.2f}  bf16 - fp32 {b - f:+.2f}")
PY
    done
done
echo
echo "over the seeds (paired bf16 - fp32; the diagonal: each task just after it was learned):"
/usr/bin/python3 tools/bf16_demo_summary.py "$OUT" $METHODS
