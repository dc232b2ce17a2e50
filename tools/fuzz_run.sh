#!/usr/bin/env bash
# Runs each libFuzzer harness for a while (make fuzz; see docs/fuzzing.md).
#   tools/fuzz_run.sh BUILD_DIR SECONDS NAME...
# For each NAME: BUILD_DIR/fuzz_NAME on its seeds fuzz/corpus/NAME (read only)
# plus the inputs it found before (BUILD_DIR/corpus/NAME, where new ones go),
# for SECONDS seconds. A crash, leak, sanitizer report, timeout or too large
# allocation leaves its input in BUILD_DIR/crashes/NAME/ and the log in
# BUILD_DIR/logs/NAME.log; the script goes on with the next harness and
# fails at the end if any found something.
set -uo pipefail
cd "$(dirname "$0")/.."
build=$1 seconds=$2
shift 2
# -rss_limit_mb: the whole process, ASan's shadow included. -malloc_limit_mb:
# a single allocation; the largest a reader may make by design is an image of
# 8192 x 8192 (clv_image_read's cap) decoded as 16-bit RGB, 384 MB, beside
# libjpeg's own 768 MB cap (image_read.c). -timeout: one input; the slowest
# legitimate ones are such large images under ASan.
FUZZ_FLAGS=${FUZZ_FLAGS:-"-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=60"}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
failed=()
for name in "$@"; do
    bin=$build/fuzz_$name
    mkdir -p "$build/corpus/$name" "$build/crashes/$name" "$build/logs"
    log=$build/logs/$name.log
    # tokens: fuzz/dict/NAME.dict, and JSON's for the readers of JSON (joined: libFuzzer takes one -dict)
    dict=() own=fuzz/dict/$name.dict json=
    case $name in run_json | decathlon | safetensors) json=fuzz/dict/json.dict ;; checkpoint) json=fuzz/dict/json.dict own=fuzz/dict/safetensors.dict ;; esac
    if [ -f "$own" ] || [ -n "$json" ]; then
        cat $json "$own" 2>/dev/null >"$build/$name.dict"
        dict=(-dict="$build/$name.dict")
    fi
    # shellcheck disable=SC2086
    "$bin" $FUZZ_FLAGS "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$name/" "$build/corpus/$name" "fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        failed+=("$name")
        echo "fuzz $name: FOUND A PROBLEM after ${runs:-?} runs ($cov): $(ls "$build/crashes/$name" | tail -1); log $log"
        grep -m3 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | sed 's/^/    /'
    else
        echo "fuzz $name: ${runs:-?} runs in ${seconds}s, $cov, nothing found"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: problems in ${failed[*]} (inputs in $build/crashes/; replay: $build/fuzz_NAME FILE)"
    exit 1
fi
