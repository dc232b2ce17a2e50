#!/usr/bin/env bash
# One run of the study (tools/run_study.sh), resumable and honest about its
# settings:   tools/study_job.sh THREADS DIR <clvit train arguments...>
# A run that completed with these very arguments is kept; one that stopped
# with them is resumed; one made with other arguments is trained again
# (so a changed config never leaves a stale row in the study's tables; a
# --config file's content counts as part of the arguments).
# Its log is DIR.log. pretrain runs go through the same script: when the
# first argument after DIR is "pretrain", `clvit pretrain` is called.
set -uo pipefail
BIN=${BIN:-build/clvit}
threads=$1 dir=$2
shift 2
cmd=train
if [ "${1:-}" = "pretrain" ]; then
    cmd=pretrain
    shift
fi
want="$cmd $*"
# a config file's content counts as much as the arguments that name it
prev=
for a in "$@"; do
    [ "$prev" = "--config" ] && [ -f "$a" ] && want="$want [$a: $(cksum <"$a" | cut -d' ' -f1)]"
    prev=$a
done
mkdir -p "$(dirname "$dir")"
if [ -f "$dir/run.json" ] && [ -f "$dir/study-args.txt" ] && [ "$(cat "$dir/study-args.txt")" = "$want" ]; then
    if grep -q '"status":[[:space:]]*"complete"' "$dir/run.json" &&
        { [ "$cmd" = train ] || [ -f "$dir/pretrained.safetensors" ]; }; then
        echo "  kept     $dir"
        exit 0
    fi
    echo "  resuming $dir"
    "$BIN" "$cmd" --out "$dir" --resume --threads "$threads" --quiet >>"$dir.log" 2>&1
else
    echo "  running  $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '%s' "$want" >"$dir/study-args.txt"
    "$BIN" "$cmd" "$@" --out "$dir" --overwrite --threads "$threads" --quiet >"$dir.log" 2>&1
fi
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "  FAILED   $dir (exit $rc; last lines of $dir.log:)"
    tail -n 5 "$dir.log" | sed 's/^/           /'
fi
exit "$rc"
