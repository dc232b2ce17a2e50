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
    # precision: recorded, a resume in another one refused (even with --force), eval/predict/bench take it
    /usr/bin/python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["config"]["train"]["precision"] == "fp32"' \
        "$tmp/r/run.json" || { echo "cli_check: run.json does not record train.precision"; fail=1; }
    for force in "" --force; do
        out=$("$BIN" train "${small[@]}" --no-augment --out "$tmp/r" --resume $force --precision bf16 2>&1)
        [ $? = 1 ] || { echo "cli_check: a resume in bf16 of an fp32 run must fail"; fail=1; }
        expect "resume refuses another precision $force" "$out" "cannot resume $tmp/r in bf16: it was trained with train.precision fp32"
    done
    expect "eval --precision bf16" "$("$BIN" eval --run "$tmp/r" --precision bf16 --json 2>/dev/null)" '"task": 1'
    expect "eval --precision bad" "$("$BIN" eval --run "$tmp/r" --precision fp16 2>&1)" "precision 'fp16' is not one of fp32|bf16"
    expect "predict --precision bf16" "$("$BIN" predict --run "$tmp/r" --task 1 --precision bf16 tests/fixtures/predict/rgb32.png)" \
        "rgb32.png: task 1 label"
    # --augment alone is true (it once swallowed the next argument: "'--out' is not a boolean")
    expect "--augment alone" "$("$BIN" train "${small[@]}" --augment --out "$tmp/r" --compare-settings)" \
        "data.augment ('false' vs 'true')"
    expect "--no-augment" "$("$BIN" train "${small[@]}" --no-augment --out "$tmp/r" --compare-settings)" "the same settings"
    expect "--augment false" "$("$BIN" train "${small[@]}" --augment false --out "$tmp/r" --compare-settings)" \
        "the same settings"
    # predict: class names from run.json, --topk, a line per unreadable file, the batch goes on
    F=tests/fixtures/predict
    out=$("$BIN" predict --run "$tmp/r" --task 1 --topk 3 "$F/gray28.png" /nonexistent.png README.md "$F/rgb32.png" 2>&1)
    rc=$?
    [ $rc = 1 ] || { echo "cli_check: predict with unreadable files should exit 1, got $rc"; fail=1; }
    expect "predict: an unreadable file" "$out" "/nonexistent.png: error: /nonexistent.png: cannot open"
    expect "predict: not an image" "$out" "README.md: error: README.md: not a PNG or JPEG file"
    expect "predict: the others still classified" "$out" "rgb32.png: task 1 label"
    expect "predict: 2 of 4" "$out" "2 of 4 images could not be read"
    names="T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot"
    echo "$out" | grep "gray28.png" | grep -Eq "label [0-9] \(($names)\) probability [0-9.]+; then [0-9] \(($names)\) [0-9.]+, [0-9]" ||
        { echo "cli_check: predict --topk 3 should name 3 classes: $out"; fail=1; }
    json=$("$BIN" predict --run "$tmp/r" --task 1 --topk 2 --json "$F/gray28.png" /nonexistent.png 2>/dev/null)
    echo "$json" | /usr/bin/python3 -c '
import json, sys
a = json.load(sys.stdin)
assert len(a) == 2 and len(a[0]["top"]) == 2 and a[0]["name"] == a[0]["top"][0]["name"], a
assert a[0]["top"][0]["probability"] >= a[0]["top"][1]["probability"], a
assert set(a[1]) == {"image", "error"}, a[1]
' || { echo "cli_check: predict --json: $json"; fail=1; }
    # the model from the weights file's metadata
    "$BIN" pretrain "${small[@]}" --out "$tmp/p" > /dev/null 2>&1 || { echo "cli_check: pretrain failed"; exit 1; }
    expect "predict without --model" "$("$BIN" predict --weights "$tmp/p/pretrained.safetensors" "$F/gray28.png")" \
        "gray28.png: task 1 label"
    expect "predict: a file without a known model" "$("$BIN" predict --weights "$F/expected.safetensors" "$F/gray28.png" 2>&1)" \
        "give --model NAME"
    # prediction without a task id, and the task-agnostic evaluation recorded in run.json
    "$BIN" train "${small[@]}" --tasks 2 --method rkr --no-augment --out "$tmp/a" > /dev/null 2>&1 ||
        { echo "cli_check: the two-task run failed"; exit 1; }
    expect "predict --task auto" "$("$BIN" predict --run "$tmp/a" --task auto --task-select entropy "$F/rgb32.png")" \
        "(chosen by entropy: maxprob "
    json=$("$BIN" predict --run "$tmp/a" --task auto --json "$F/rgb32.png" "$F/gray28.png")
    echo "$json" | /usr/bin/python3 -c '
import json, sys
a = json.load(sys.stdin)
for o in a:
    s = o["task_scores"]
    assert o["select"] == "maxprob" and [e["task"] for e in s] == [1, 2], o
    assert o["maxprob"] == max(e["maxprob"] for e in s) and s[o["task"] - 1]["maxprob"] == o["maxprob"], o
    assert abs(o["probability"] - o["maxprob"]) < 1e-9, o
' || { echo "cli_check: predict --task auto --json: $json"; fail=1; }
    expect "--task-select needs --task auto" "$("$BIN" predict --run "$tmp/a" --task 1 --task-select entropy "$F/rgb32.png" 2>&1)" \
        "give --task auto too"
    expect "--task-select bad value" "$("$BIN" eval --run "$tmp/a" --task-agnostic --task-select max 2>&1)" \
        "--task-select: 'max' is not maxprob or entropy"
    expect "eval --task-agnostic" "$("$BIN" eval --run "$tmp/a" --task-agnostic)" "written to $tmp/a/run.json"
    /usr/bin/python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["task_agnostic"]
assert [e["task"] for e in t["tasks"]] == [1, 2] and all(sum(e["routed_to"]) == e["images"] for e in t["tasks"]), t
' "$tmp/a/run.json" || { echo "cli_check: run.json has no task_agnostic"; fail=1; }
    expect "inspect names the layout" "$("$BIN" inspect "$tmp/a/base.safetensors")" "layout: timm ViT"
    expect "bench --method full" "$("$BIN" bench --method full --model vit_nano_patch4_32 --batch 2 --infer-batch 2 \
        --steps 1 --warmup 0 --threads 1 --json)" '"method":"finetune"'
    expect "bench --precision bf16" "$("$BIN" bench --precision bf16 --model vit_nano_patch4_32 --batch 2 --infer-batch 2 \
        --steps 1 --warmup 0 --threads 1 --json)" '"precision":"bf16"'
    expect "bench --precision bad" "$("$BIN" bench --precision fp16 2>&1)" "--precision: precision 'fp16' is not one of"
    expect "info names bf16's support" "$("$BIN" info)" "precision: fp32 native; bf16 "
    # lwf and ewc time task 2 of 2 with no task 1 head made (lwf once crashed there)
    for m in ewc lwf; do
        expect "bench --method $m" "$("$BIN" bench --method $m --model vit_nano_patch4_32 --batch 2 --infer-batch 2 \
            --steps 1 --warmup 0 --threads 1 --json 2>&1)" "\"method\":\"$m\""
    done
fi
[ $fail = 0 ] && echo "cli_check: passed"
exit $fail
