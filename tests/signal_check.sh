#!/usr/bin/env bash
# Real signals at random moments: SIGINT and SIGTERM (alternately) sent to a
# short 5-task training run, STOPS times. Every stop must end cleanly (exit
# 130 with "checkpoint written", or 0 if the run had finished), never with a
# crash or a heap-corruption abort, and the resumed run must reach the very
# accuracy matrix of an uninterrupted one. Then two signals in a row must
# end the run at once (128 + signal). Before signals were taken by a thread
# of their own, about 1 stop in 5 corrupted the heap (a handler running on a
# thread inside oneDNN's generated code). Run from the repository root.
set -uo pipefail
BIN=${1:-build/clvit}
STOPS=${STOPS:-20}
if [ ! -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "signal_check: SKIPPED (no Fashion-MNIST; Debian: dataset-fashion-mnist)"
    exit 0
fi
tmp=$(mktemp -d /tmp/clvit-sig-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
args=(--data fashion-mnist --tasks 5 --method rkr --train-limit 512 --test-limit 200 --epochs 1 --batch 32
      --threads 2 --seed 5 --quiet)
matrix() { tr -d ' \t\n' < "$1/run.json" | sed 's/.*"accuracy_matrix":\[\(.*\)\],"average_accuracy".*/\1/'; }
start=$(date +%s.%N)
"$BIN" train "${args[@]}" --out "$tmp/ref" --overwrite || { echo "signal_check: the reference run failed"; exit 1; }
span=$(echo "$start $(date +%s.%N)" | awk '{ printf "%d", ($2 - $1) * 1000 }')
want=$(matrix "$tmp/ref")
stopped=0
for i in $(seq 1 "$STOPS"); do
    sig=INT; [ $((i % 2)) -eq 0 ] && sig=TERM
    delay=$(awk -v s="$i" -v span="$span" 'BEGIN { srand(s * 7919 + 17); printf "%.3f", (0.02 + 0.9 * rand()) * span / 1000 }')
    "$BIN" train "${args[@]}" --out "$tmp/r$i" --overwrite 2>"$tmp/err$i" &
    pid=$!
    sleep "$delay"
    kill -s "$sig" "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    if grep -qiE "corrupt|malloc|double free|segmentation|core dumped|unaligned" "$tmp/err$i" ||
        { [ "$rc" -ne 130 ] && [ "$rc" -ne 0 ]; }; then
        echo "signal_check: stop $i (SIG$sig after ${delay}s) ended with exit $rc:"
        cat "$tmp/err$i"
        exit 1
    fi
    if [ "$rc" -eq 130 ]; then
        stopped=$((stopped + 1))
        grep -q "checkpoint written" "$tmp/err$i" || { echo "signal_check: stop $i: no checkpoint"; cat "$tmp/err$i"; exit 1; }
        "$BIN" train "${args[@]}" --out "$tmp/r$i" --resume 2>"$tmp/res$i" ||
            { echo "signal_check: resume $i failed"; cat "$tmp/res$i"; exit 1; }
    fi
    got=$(matrix "$tmp/r$i")
    [ "$got" = "$want" ] || { echo "signal_check: stop $i (SIG$sig after ${delay}s): resumed to $got, want $want"; exit 1; }
    rm -rf "$tmp/r$i"
done
# a second signal leaves at once
"$BIN" train "${args[@]}" --out "$tmp/twice" --overwrite 2>/dev/null &
pid=$!
sleep "$(awk -v span="$span" 'BEGIN { printf "%.3f", 0.3 * span / 1000 }')"
kill -s INT "$pid"; kill -s INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] || { echo "signal_check: two signals: exit $rc, want 130"; exit 1; }
echo "signal_check: passed ($STOPS signals, $stopped stopped a running task, every run resumed to the same matrix)"
