#!/usr/bin/env bash
# make run (tools/run_demo.sh) keeps a finished run only while its settings
# are those asked for: a changed EXTRA (or config) trains it again, saying
# what changed; the same settings again keep it; every run gets its
# task-agnostic figures (eval --task-agnostic). Tiny runs on Fashion-MNIST.
# Run from the repository root.
set -uo pipefail
if [ ! -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "run_demo_check: SKIPPED (no Fashion-MNIST; Debian: dataset-fashion-mnist)"
    exit 0
fi
tmp=$(mktemp -d /tmp/clvit-demo-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
small="--tasks 2 --train-limit 64 --test-limit 32 --threads 1 --quiet"
demo() { OUT="$tmp" METHODS=linear NO_REPORT=1 EXTRA="$small $1" tools/run_demo.sh > "$tmp/log" 2>&1; }
fail=0
check() { grep -q "$1" "$tmp/log" || { echo "run_demo_check: $2 (expected '$1'):"; cat "$tmp/log"; fail=1; }; }
demo "--epochs 1" || { echo "run_demo_check: the first run failed"; cat "$tmp/log"; exit 1; }
grep -q '"task_agnostic"' "$tmp/linear/run.json" || { echo "run_demo_check: no task_agnostic in run.json"; fail=1; }
demo "--epochs 1"; check "already complete" "the same settings again should keep the run"
demo "--epochs 2"; check "train.epochs ('1' vs '2'); training it again" "a changed EXTRA should train the run again"
grep -Eq '"epochs":[[:space:]]*"?2"?,' "$tmp/linear/run.json" || { echo "run_demo_check: run.json does not hold epochs 2"; fail=1; }
demo "--epochs 2"; check "already complete" "the retrained run should then be kept"
[ $fail = 0 ] && echo "run_demo_check: passed"
exit $fail
