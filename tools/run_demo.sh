#!/usr/bin/env bash
# The main job (`make run`): every method on the built-in default, Split
# Fashion-MNIST (5 tasks of 2 classes) with vit_nano_patch4_32, then one
# comparison table. Each method's run goes to $OUT/<method>; an interrupted
# job continues where it stopped when run again (finished runs are kept,
# unfinished ones resumed; a run made with other settings, because the config
# or EXTRA changed, is trained again, saying what changed).
#   METHODS="finetune rkr" tools/run_demo.sh     only these methods
#   EXTRA="--epochs 2" tools/run_demo.sh         settings added to every run
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/clvit
# idle OpenMP threads sleep instead of spinning (clvit does this too): on a
# busy machine spinning threads made 2 threads 3 times slower than 1
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
OUT=${OUT:-runs/default}
CONFIG=${CONFIG:-configs/fashion_mnist_demo.ini}
if [ -z "${METHODS:-}" ]; then
    # every method this build knows, in the order `clvit info` lists them
    METHODS=$($BIN info | awk '/^methods:/{m=1; next} m && NF==0{m=0} m{print $1}' | tr '\n' ' ')
fi
mkdir -p "$OUT"
start=$(date +%s)
dirs=()
n_methods=$(echo $METHODS | wc -w)
done_runs=0 trained=0 spent=0
for m in $METHODS; do
    dir="$OUT/$m"
    dirs+=("$dir")
    # shellcheck disable=SC2086
    args=(--config "$CONFIG" --method "$m" ${EXTRA:-} --out "$dir")
    same=0
    if [ -f "$dir/run.json" ]; then
        # a run made with other settings (the config or EXTRA changed) is trained again
        rc=0
        diff=$($BIN train "${args[@]}" --compare-settings) || rc=$?
        case $rc in
        0) same=1 ;;
        3) echo "== $m: $diff; training it again" ;;
        *) echo "== $m: cannot compare with the run in $dir; remove it, or set OUT" >&2; exit 1 ;;
        esac
    fi
    if [ $same = 1 ] && grep -q '"status":[[:space:]]*"complete"' "$dir/run.json"; then
        echo "== $m: already complete in $dir"
        done_runs=$((done_runs + 1))
        continue
    fi
    # the job's time left: the mean of the runs trained so far times the runs still to go
    left=""
    if [ "$trained" -gt 0 ]; then
        left=", about $(( (spent / trained * (n_methods - done_runs) + 59) / 60 )) min left for the job"
    fi
    echo "== $m (run $((done_runs + 1))/$n_methods$left)"
    t0=$(date +%s)
    if [ $same = 1 ]; then
        $BIN train --out "$dir" --resume
    else
        $BIN train "${args[@]}" --overwrite
    fi
    spent=$((spent + $(date +%s) - t0))
    trained=$((trained + 1))
    done_runs=$((done_runs + 1))
done
# prediction without a task id, once per run: the report's "no task id" column
# (eval --task-agnostic writes run.json's task_agnostic; a retrained run loses it)
for dir in "${dirs[@]}"; do
    grep -q '"task_agnostic"' "$dir/run.json" || $BIN eval --run "$dir" --task-agnostic > /dev/null
done
[ -n "${NO_REPORT:-}" ] && exit 0 # tools/run_grid.sh reports once for all backbones
echo
$BIN report --plot "$OUT/plots" "${dirs[@]}"
echo
echo "all runs: $(( $(date +%s) - start )) s; pictures in $OUT/plots"
