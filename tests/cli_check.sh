#!/usr/bin/env bash
# The command line as a user meets it: switches (--augment alone, --no-augment),
# errors naming the flag typed, "did you mean" for typos, --version from
# include/clvit/version.h, bench's finetune (and its older name full).
# Run from the repository root.
set -uo pipefail
BIN=${1:-build/clvit}
fail=0
expect() { # expect WHAT OUTPUT PATTERN
    case "$2" in *"$3"*) ;; *) echo "cli_check: $1: expected '$3' in: $2"; fail=1 ;; esac
}
version=$(sed -n 's/^#define CLV_VERSION "\(.*\)"/\1/p' include/clvit/version.h)
expect "--version" "$("$BIN" --version)" "clvit $version"
expect "typo of a setting" "$("$BIN" train --epoch 3 --out /nonexistent 2>&1)" "(did you mean --epochs?)"
expect "typo of train's own option" "$("$BIN" train --overwite --out /nonexistent 2>&1)" "(did you mean --overwrite?)"
expect "typo in report" "$("$BIN" report --jsn 2>&1)" "(did you mean --json?)"
out=$("$BIN" train --bogus-thing --out /nonexistent 2>&1)
case "$out" in *"did you mean"*) echo "cli_check: a far word got a suggestion: $out"; fail=1 ;; esac
expect "bad value names the flag" "$("$BIN" train --epochs x --out /nonexistent 2>&1)" "--epochs: 'x' is not"
expect "bad value of a switch" "$("$BIN" train --augment=maybe --out /nonexistent 2>&1)" "--augment: 'maybe' is not a boolean"
expect "--no- of a non-switch" "$("$BIN" train --no-epochs --out /nonexistent 2>&1)" "--no-epochs: only a switch"
expect "bench says finetune" "$("$BIN" bench --help)" "--method finetune|linear|rkr|piggyback"
if [ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    tmp=$(mktemp -d /tmp/clvit-cli-XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    small=(--tasks 1 --train-limit 32 --test-limit 16 --threads 1 --epochs 1 --quiet)
    "$BIN" train "${small[@]}" --no-augment --out "$tmp/r" > /dev/null 2>&1 || { echo "cli_check: the run failed"; exit 1; }
    # --augment alone is true (it once swallowed the next argument: "'--out' is not a boolean")
    expect "--augment alone" "$("$BIN" train "${small[@]}" --augment --out "$tmp/r" --compare-settings)" \
        "data.augment ('false' vs 'true')"
    expect "--no-augment" "$("$BIN" train "${small[@]}" --no-augment --out "$tmp/r" --compare-settings)" "the same settings"
    expect "--augment false" "$("$BIN" train "${small[@]}" --augment false --out "$tmp/r" --compare-settings)" \
        "the same settings"
    expect "bench --method full" "$("$BIN" bench --method full --model vit_nano_patch4_32 --batch 2 --infer-batch 2 \
        --steps 1 --warmup 0 --threads 1 --json)" '"method":"finetune"'
fi
[ $fail = 0 ] && echo "cli_check: passed"
exit $fail
