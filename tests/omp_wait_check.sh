#!/usr/bin/env bash
# clvit's OpenMP threads wait passively unless OMP_WAIT_POLICY says otherwise
# (src/cli/omp_wait.c). libgomp reads its environment before main, so a
# setenv alone would change nothing: OMP_DISPLAY_ENV=verbose shows what the
# runtime of the process that does the work really took (the last report),
# and OMP_DISPLAY_AFFINITY where its threads run.
# Run from the repository root.
set -uo pipefail
BIN=${1:-build/clvit}
fail=0
spin() { env -u OMP_WAIT_POLICY "$@" OMP_DISPLAY_ENV=verbose "$BIN" info 2>&1 >/dev/null |
         sed -n "s/.*GOMP_SPINCOUNT = '\([0-9]*\)'.*/\1/p" | tail -1; }
got=$(spin)
[ "$got" = 0 ] || { echo "omp_wait_check: unset OMP_WAIT_POLICY gave spin count '$got', expected 0 (passive)"; fail=1; }
got=$(spin OMP_WAIT_POLICY=active)
[ -n "$got" ] && [ "$got" != 0 ] || { echo "omp_wait_check: OMP_WAIT_POLICY=active was not kept (spin count '$got')"; fail=1; }
# the arguments reach the restarted process unchanged
out=$(env -u OMP_WAIT_POLICY "$BIN" report --per-run --csv /nonexistent/run-x 2>&1)
case "$out" in *"/nonexistent/run-x"*) ;; *) echo "omp_wait_check: arguments lost on restart: $out"; fail=1 ;; esac
# with a binding asked for (OMP_PROC_BIND), the restarted process keeps the CPUs the first one was
# given: two threads on two places, not both on the place libgomp had bound the first process's
# thread to (needs two CPUs)
if [ "$(nproc)" -ge 2 ]; then
    places=$(env -u OMP_WAIT_POLICY OMP_NUM_THREADS=2 OMP_PROC_BIND=spread OMP_DISPLAY_AFFINITY=true "$BIN" bench \
                 --model vit_nano_patch4_32 --steps 1 --warmup 0 --batch 2 --infer-batch 2 2>&1 |
             sed -n 's/^level 1 thread .* affinity \(.*\)$/\1/p' | sort -u | tr '\n' ' ')
    [ "$(echo $places | wc -w)" -ge 2 ] ||
        { echo "omp_wait_check: with OMP_PROC_BIND=spread the restarted threads share the places '$places'"; fail=1; }
    # the data loader's thread is created by the main thread, which the binding ties to one place; it
    # must not stay there (it would share that CPU with OpenMP's first thread), waiting policy or not
    tmp=$(mktemp -d /tmp/clvit-omp-XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    for wait in "" active; do
        cpus=$(env -u OMP_WAIT_POLICY ${wait:+OMP_WAIT_POLICY=$wait} OMP_NUM_THREADS=2 OMP_PROC_BIND=true \
                   CLVIT_LOG=debug "$BIN" train --data cifar10 --data-root tests/fixtures/data/cifar10 --tasks 1 \
                   --train-limit 16 --test-limit 8 --epochs 1 --quiet --out "$tmp/r" --overwrite 2>&1 |
               sed -n 's/.*loader: its thread runs on CPUs \(.*\)$/\1/p' | sort -u)
        case "$cpus" in
            *[-,]*) ;;
            *) echo "omp_wait_check: with OMP_PROC_BIND=true${wait:+ and OMP_WAIT_POLICY=$wait} the loader's" \
                    "thread runs on CPUs '$cpus', not on the places' union"; fail=1 ;;
        esac
    done
fi
expect_log() { out=$(CLVIT_LOG="$1" "$BIN" info 2>&1); [ $? = "$2" ] && case "$out" in *"$3"*) true ;; *) false ;; esac ||
                   { echo "omp_wait_check: CLVIT_LOG=$1 gave: $out"; fail=1; }; }
expect_log loud 2 "CLVIT_LOG: 'loud' is not one of error, warning, info, debug"
expect_log warning 0 "openmp wait policy"
env -u OMP_WAIT_POLICY "$BIN" info | grep -q "openmp wait policy: passive" ||
    { echo "omp_wait_check: clvit info does not say the wait policy"; fail=1; }
[ $fail = 0 ] && echo "omp_wait_check: passed"
exit $fail
