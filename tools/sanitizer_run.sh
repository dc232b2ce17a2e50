#!/usr/bin/env bash
# Runs a command (the test suite of a SANITIZE build), showing its output,
# and fails if it fails or if its output holds any sanitizer report: the
# Criterion suite's workers can print a LeakSanitizer report after their test
# has passed, and Criterion does not look at how a worker exited.
#   tools/sanitizer_run.sh LOG COMMAND...
set -uo pipefail
log=$1
shift
"$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if grep -qE '(Address|Leak|UndefinedBehavior|Thread)Sanitizer|runtime error:' "$log"; then
    echo "sanitizer_run: sanitizer reports in $log:"
    grep -E '(Address|Leak|UndefinedBehavior|Thread)Sanitizer|runtime error:' "$log" | sort | uniq -c | head -20
    exit 1
fi
exit "$rc"
