#!/usr/bin/env bash
# Crash consistency: SIGKILL a short 5-task training run KILLS times (env
# CRASH_KILLS, default 20), the method in turn rkr, finetune (its base
# changes with every task), piggyback and maskrkr (packed masks). Each run
# is resumed with --resume (or started again with --overwrite when it died
# before its first run.json) and must end with the very files of an
# uninterrupted one: every task file, the base and results.csv byte for
# byte (they hold no time; their metadata is their content's), run.json
# equal once its wall-clock seconds and the command lines that made and
# resumed it (`commands`) are removed (with jq; without it, the accuracy
# matrix only), and no *.tmp.<pid> or state file left behind.
#
# Odd kills come at a random moment (mid-step, mid-evaluation, mid-write):
# checkpoints every 3 steps put many state writes in the way, and a shim
# (tests/shim/slow_fsync.c; not preloaded when the binary has
# AddressSanitizer, which must come first) makes writes slower, so that
# kills land in them more often. Even kills come at a point the shim
# chooses, which random moments rarely hit, in turn: before the removal of
# a learned task's checkpoint (run.json already records the task), right
# after a file's rename (the next file not yet written), before a
# temporary copy's fsync; the N-th such call of the run, N drawn from the
# uninterrupted run's count. Random choices come from CRASH_SEED (printed;
# the moments still depend on the machine's speed).
# make test runs 4 kills (one per method), make crash-check 20. What it
# found is kept as Criterion tests (tests/test_crash_resume.c).
# Run from the repository root: tests/crash_check.sh [build/clvit]
set -uo pipefail
BIN=${1:-build/clvit}
KILLS=${CRASH_KILLS:-20}
SEED=${CRASH_SEED:-$(( $(date +%s) % 100000 ))}
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
# the uninterrupted run of a method, made when first needed: its files, record, duration (ms)
# and, with the shim, how often it calls each crash point
declare -A span=() want=() calls=()
reference() {
    local m=$1 start kind n
    [ -n "${span[$m]:-}" ] && return 0
    start=$(date +%s.%N)
    CLV_CRASH_COUNT="$tmp/calls-$m" "$BIN" train "${common[@]}" --method "$m" --out "$tmp/ref-$m" --overwrite \
        2>"$tmp/ref-$m.err" || { echo "crash_check: the uninterrupted $m run failed"; cat "$tmp/ref-$m.err"; exit 1; }
    span[$m]=$(echo "$start $(date +%s.%N)" | awk '{ printf "%d", ($2 - $1) * 1000 }')
    want[$m]=$(record "$tmp/ref-$m")
    if [ -r "$tmp/calls-$m" ]; then
        while read -r kind n; do calls[$m.$kind]=$n; done <"$tmp/calls-$m"
    fi
}
# a number in [0, 1) from the seed and a numeric key (an integer hash: mawk's
# first rand() after srand of nearby seeds gives nearby numbers)
draw() {
    local h=$(((SEED * 1000003 + $1 * 7919 + 11) & 0xffffffff))
    h=$(((((h >> 16) ^ h) * 0x45d9f3b) & 0xffffffff))
    h=$(((((h >> 16) ^ h) * 0x45d9f3b) & 0xffffffff))
    awk -v h=$(((h >> 16) ^ h)) 'BEGIN { printf "%.6f", h / 4294967296 }'
}
kinds=(unlink rename fsync)
killed=0 mid_write=0 with_state=0 early=0
declare -A at_task=() chosen=()
finished=0
for i in $(seq 1 "$KILLS"); do
    run="$tmp/r$i"
    m=${methods[$(((i - 1) % ${#methods[@]}))]}
    reference "$m"
    args=("${common[@]}" --method "$m")
    kind=${kinds[$(((i / 2 - 1) % ${#kinds[@]}))]}
    if [ -n "$shim" ] && [ $((i % 2)) -eq 0 ] && [ "${calls[$m.$kind]:-0}" -gt 0 ]; then
        # the process kills itself at the n-th call of kind
        n=$(awk -v r="$(draw "$i")" -v c="${calls[$m.$kind]}" 'BEGIN { printf "%d", 1 + int(r * c) }')
        delay="$kind:$n"
        CLV_CRASH_AT="$delay" "$BIN" train "${args[@]}" --out "$run" --overwrite 2>"$tmp/err$i" &
        wait $! 2>/dev/null # (no "Killed" from the shell)
        rc=$?
        [ "$rc" -eq 137 ] && chosen[$kind]=$((${chosen[$kind]:-0} + 1))
    else
        # a run that ends before its kill is tried again with a shorter span, so that every iteration kills
        reach=${span[$m]}
        for attempt in 1 2 3 4 5 6; do
            delay=$(awk -v r="$(draw "$i$attempt")" -v span="$reach" 'BEGIN { printf "%.3fs", (0.01 + 0.98 * r) * span / 1000 }')
            "$BIN" train "${args[@]}" --out "$run" --overwrite 2>"$tmp/err$i" &
            pid=$!
            sleep "${delay%s}"
            kill -9 "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            rc=$?
            [ "$rc" -eq 0 ] || break
            finished=$((finished + 1))
            reach=$((reach * 6 / 10))
        done
    fi
    if [ "$rc" -eq 137 ]; then
        killed=$((killed + 1))
        # where the kill landed, from what it left
        ls "$run" 2>/dev/null | grep -q '\.tmp\.[0-9]*$' && mid_write=$((mid_write + 1))
        [ -e "$run/state.safetensors" ] && with_state=$((with_state + 1))
        done_tasks=$(ls "$run" 2>/dev/null | grep -c '^task-.*\.safetensors$')
        at_task[$done_tasks]=$((${at_task[$done_tasks]:-0} + 1))
        if [ -e "$run/run.json" ]; then
            "$BIN" train "${args[@]}" --out "$run" --resume 2>"$tmp/res$i" ||
                { echo "crash_check: kill $i (at ${delay}, CRASH_SEED=$SEED): --resume failed"; cat "$tmp/res$i"; exit 1; }
        else
            early=$((early + 1))
            "$BIN" train "${args[@]}" --out "$run" --overwrite 2>"$tmp/res$i" ||
                { echo "crash_check: kill $i (at ${delay}, CRASH_SEED=$SEED): the fresh start failed"; cat "$tmp/res$i"; exit 1; }
        fi
    elif [ "$rc" -ne 0 ]; then
        echo "crash_check: run $i ended with exit $rc before the kill:"; cat "$tmp/err$i"; exit 1
    fi
    got=$(record "$run")
    if [ "$got" != "${want[$m]}" ]; then
        echo "crash_check: kill $i ($m, at ${delay}, CRASH_SEED=$SEED): run.json differs from the uninterrupted run's:"
        diff <(echo "${want[$m]}") <(echo "$got") | head -20
        exit 1
    fi
    same_files "$tmp/ref-$m" "$run" || { echo "crash_check: kill $i ($m, at ${delay}, CRASH_SEED=$SEED): the files differ"; exit 1; }
    if ls -a "$run" | grep -q '\.tmp\.'; then
        echo "crash_check: kill $i: temporary files left: $(ls -a "$run" | grep '\.tmp\.')"; exit 1
    fi
    if [ -e "$run/state.safetensors" ]; then
        echo "crash_check: kill $i ($m, at ${delay}, CRASH_SEED=$SEED): state.safetensors left"; exit 1
    fi
    rm -rf "$run"
done
where=""
for t in $(echo "${!at_task[@]}" | tr ' ' '\n' | sort -n); do where="$where ${at_task[$t]}x$t"; done
[ "$killed" -eq "$KILLS" ] || { echo "crash_check: only $killed of $KILLS runs were killed (the others ended first)"; exit 1; }
echo "crash_check: passed ($KILLS runs killed ($finished more ended before their kill and were run again):" \
     "${chosen[unlink]:-0} before a learned task's checkpoint was removed, ${chosen[rename]:-0} right after a" \
     "rename, ${chosen[fsync]:-0} before an fsync, the others at random moments; $with_state with a checkpoint," \
     "$mid_write mid-write, $early before run.json; learned task files at the kill (count x files):$where;" \
     "methods ${methods[*]}; writes slowed: $slowed; CRASH_SEED=$SEED; all resumed to the" \
     "uninterrupted run's files, bit for bit; ${SECONDS} s)"
