#!/usr/bin/env bash
# Crash consistency: SIGKILL at random moments of a short 5-task training
# run (mid-step, mid-evaluation, mid-write of a checkpoint, a task file, the
# base or run.json), KILLS times (env CRASH_KILLS, default 20), the method
# in turn rkr, finetune (its base changes with every task), piggyback and
# maskrkr (packed masks). Each run is resumed with --resume (or started
# again with --overwrite when it died before its first run.json) and must
# end with the very files of an uninterrupted one: every task file, the
# base and results.csv byte for byte (they hold no time; their metadata is
# their content's), run.json equal once its wall-clock seconds and the
# command lines that made and resumed it (`commands`) are removed
# (with jq; without it, the accuracy matrix only), and no *.tmp.<pid> file
# left behind. Checkpoints every 3 steps put many state writes in the way
# of the kills, and a shim (tests/shim/slow_fsync.c; not preloaded when the
# binary has AddressSanitizer, which must come first) makes the fsync of a
# file 20 ms longer, so that kills land between a file's temporary copy
# and its rename more often.
# make test runs 4 kills (one per method), make crash-check 20. What it
# found is kept as Criterion tests (tests/test_crash_resume.c).
# Run from the repository root: tests/crash_check.sh [build/clvit]
set -uo pipefail
BIN=${1:-build/clvit}
KILLS=${CRASH_KILLS:-20}
if [ ! -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "crash_check: SKIPPED (no Fashion-MNIST; Debian: dataset-fashion-mnist)"
    exit 0
fi
tmp=$(mktemp -d /tmp/clvit-crash-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
shim="" slowed=no
if ! ldd "$BIN" 2>/dev/null | grep -q libasan && ${CC:-cc} -shared -fPIC -O2 -o "$tmp/slow_fsync.so" \
    tests/shim/slow_fsync.c -ldl 2>"$tmp/shim.err"; then
    shim="$tmp/slow_fsync.so" slowed=yes
fi
export LD_PRELOAD="${shim}${LD_PRELOAD:+:$LD_PRELOAD}"
methods=(rkr finetune piggyback maskrkr)
common=(--data fashion-mnist --tasks 5 --train-limit 128 --test-limit 100 --epochs 2 --batch 32
        --checkpoint-every 3 --threads 2 --seed 7 --quiet)
if command -v jq >/dev/null; then
    record() { jq -S 'del(.seconds) | del(.tasks[].seconds) | del(.commands)' "$1/run.json"; }
else
    record() { tr -d ' \t\n' < "$1/run.json" | sed 's/.*"accuracy_matrix":\[\(.*\)\],"average_accuracy".*/\1/'; }
fi
# every file the run keeps, but run.json (compared above) and the lock
same_files() {
    local a=$1 b=$2 f
    local la lb
    la=$(cd "$a" && ls | grep -v '^run.json$' | sort) lb=$(cd "$b" && ls | grep -v '^run.json$' | sort)
    [ "$la" = "$lb" ] || { echo "files: uninterrupted / resumed:"; diff <(echo "$la") <(echo "$lb"); return 1; }
    for f in "$a"/*.safetensors "$a"/results.csv; do
        cmp -s "$f" "$b/$(basename "$f")" || { echo "differs: $(basename "$f")"; return 1; }
    done
}
# the uninterrupted run of a method, made when first needed: its files, record and duration (ms)
declare -A span=() want=()
reference() {
    local m=$1 start
    [ -n "${span[$m]:-}" ] && return 0
    start=$(date +%s.%N)
    "$BIN" train "${common[@]}" --method "$m" --out "$tmp/ref-$m" --overwrite 2>"$tmp/ref-$m.err" ||
        { echo "crash_check: the uninterrupted $m run failed"; cat "$tmp/ref-$m.err"; exit 1; }
    span[$m]=$(echo "$start $(date +%s.%N)" | awk '{ printf "%d", ($2 - $1) * 1000 }')
    want[$m]=$(record "$tmp/ref-$m")
}
killed=0 mid_write=0 with_state=0 early=0
declare -A at_task=()
finished=0
for i in $(seq 1 "$KILLS"); do
    run="$tmp/r$i"
    m=${methods[$(((i - 1) % ${#methods[@]}))]}
    reference "$m"
    args=("${common[@]}" --method "$m")
    # a run that ends before its kill is tried again with a shorter span, so that every iteration kills
    reach=${span[$m]}
    for attempt in 1 2 3 4 5 6; do
        delay=$(awk -v s="$i$attempt" -v span="$reach" 'BEGIN { srand(s * 104729 + 11); printf "%.3f", (0.01 + 0.98 * rand()) * span / 1000 }')
        "$BIN" train "${args[@]}" --out "$run" --overwrite 2>"$tmp/err$i" &
        pid=$!
        sleep "$delay"
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        rc=$?
        [ "$rc" -eq 0 ] || break
        finished=$((finished + 1))
        reach=$((reach * 6 / 10))
    done
    if [ "$rc" -eq 137 ]; then
        killed=$((killed + 1))
        # where the kill landed, from what it left
        ls "$run" 2>/dev/null | grep -q '\.tmp\.[0-9]*$' && mid_write=$((mid_write + 1))
        [ -e "$run/state.safetensors" ] && with_state=$((with_state + 1))
        done_tasks=$(ls "$run" 2>/dev/null | grep -c '^task-.*\.safetensors$')
        at_task[$done_tasks]=$((${at_task[$done_tasks]:-0} + 1))
        if [ -e "$run/run.json" ]; then
            "$BIN" train "${args[@]}" --out "$run" --resume 2>"$tmp/res$i" ||
                { echo "crash_check: kill $i (after ${delay}s): --resume failed"; cat "$tmp/res$i"; exit 1; }
        else
            early=$((early + 1))
            "$BIN" train "${args[@]}" --out "$run" --overwrite 2>"$tmp/res$i" ||
                { echo "crash_check: kill $i (after ${delay}s): the fresh start failed"; cat "$tmp/res$i"; exit 1; }
        fi
    elif [ "$rc" -ne 0 ]; then
        echo "crash_check: run $i ended with exit $rc before the kill:"; cat "$tmp/err$i"; exit 1
    fi
    got=$(record "$run")
    if [ "$got" != "${want[$m]}" ]; then
        echo "crash_check: kill $i ($m, after ${delay}s): run.json differs from the uninterrupted run's:"
        diff <(echo "${want[$m]}") <(echo "$got") | head -20
        exit 1
    fi
    same_files "$tmp/ref-$m" "$run" || { echo "crash_check: kill $i ($m, after ${delay}s): the files differ"; exit 1; }
    if ls -a "$run" | grep -q '\.tmp\.'; then
        echo "crash_check: kill $i: temporary files left: $(ls -a "$run" | grep '\.tmp\.')"; exit 1
    fi
    rm -rf "$run"
done
where=""
for t in $(echo "${!at_task[@]}" | tr ' ' '\n' | sort -n); do where="$where ${at_task[$t]}x$t"; done
[ "$killed" -eq "$KILLS" ] || { echo "crash_check: only $killed of $KILLS runs were killed (the others ended first)"; exit 1; }
echo "crash_check: passed ($KILLS runs killed ($finished more ended before their kill and were run again):" \
     "$with_state with a checkpoint, $mid_write mid-write," \
     "$early before run.json; learned task files at the kill (count x files):$where; methods ${methods[*]};" \
     "writes slowed: $slowed; all resumed to the" \
     "uninterrupted run's files, bit for bit; ${SECONDS} s)"
