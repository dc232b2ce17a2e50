#!/usr/bin/env bash
# Writes the fuzzers' seed corpora in fuzz/corpus/<harness>/ from the tests'
# fixtures (small files only), in the input format each harness reads (see the
# comment at the top of fuzz/fuzz_<harness>.c). The corpora are committed, so
# this is needed only when the fixtures change. Seeds made otherwise (the
# files of a short real run: run-*; regression inputs: crash-*) are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
F=tests/fixtures
C=fuzz/corpus
mkdir -p "$C"/{safetensors,checkpoint,run_json,ini,set,idx,cifar,png,jpeg,decathlon,imagefolder}

cp $F/safetensors/*.safetensors $F/predict/expected.safetensors $F/vit_nano_logits.safetensors "$C/safetensors/"
# task and state files: those of a short real run (run-*, see docs/fuzzing.md) and the tests' valid file
cp fuzz/corpus/safetensors/run-*.safetensors $F/safetensors/good.safetensors "$C/checkpoint/" 2>/dev/null || true
cp $F/config/*.ini "$C/ini/"
for f in $F/data/img/*.png $F/predict/*.png $F/data/imagefolder/train/ant/0.png; do
    cp "$f" "$C/png/$(echo "${f#$F/}" | tr / _)"
done
for f in $F/data/img/*.jpg $F/data/imagefolder/train/bee/2.jpg $F/data/imagefolder_corrupt/train/ant/0.jpg; do
    cp "$f" "$C/jpeg/$(echo "${f#$F/}" | tr / _)"
done
cp $F/data/cifar10/test_batch.bin "$C/cifar/cifar10_test_batch.bin"
cp $F/data/cifar10_bad/data_batch_1.bin "$C/cifar/cifar10_bad_batch.bin"
cp $F/data/cifar100/test.bin "$C/cifar/cifar100_test.bin"

# IDX: the images file, the separator, the labels file (fuzz/fuzz_idx.c)
idx_pair() { { cat "$F/data/idx/$2"; printf '\nIDX-LABELS\n'; cat "$F/data/idx/$3"; } >"$C/idx/$1"; }
idx_pair t10k t10k-images-idx3-ubyte t10k-labels-idx1-ubyte
idx_pair train_gz train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
idx_pair truncated_gz truncated-idx3-ubyte.gz train-labels-idx1-ubyte.gz
idx_pair bad_magic bad_magic-idx3-ubyte t10k-labels-idx1-ubyte
idx_pair short_labels t10k-images-idx3-ubyte short-labels-idx1-ubyte

# Decathlon: a domain's train annotations, the separator, its val annotations
for a in $F/data/decathlon/annotations/*_train.json; do
    d=$(basename "$a" _train.json)
    v=$F/data/decathlon/annotations/${d}_val.json
    { cat "$a"; if [ -f "$v" ]; then printf '\nDECATHLON-VAL\n'; cat "$v"; fi; } >"$C/decathlon/$d"
done

# image folders: the fixtures' trees as entries (fuzz/fuzz_imagefolder.c)
for t in imagefolder imagefolder_missing imagefolder_corrupt; do
    (cd $F/data/$t && find . -mindepth 1 | sort | while read -r p; do
        p=${p#./}
        if [ -d "$p" ]; then echo "d $p"
        elif [[ $p == *.png ]]; then echo "p $p"
        else echo "t $p"; fi
    done) >"$C/imagefolder/$t"
done
printf 'd train/ant\np train/ant/0.png\nl train/ant/1.png\nL train/cat\nd val/ant\np val/ant/0.png\nd val/cat\np val/cat/0.png\n' >"$C/imagefolder/links"

# --set: one argument a line; settings from the tests' good config and a few flags
{
    awk -F' *= *' '/^\[/{gsub(/[][]/,""); s=$0; next} NF==2 && $1 !~ /^[;#]/ {print "--set"; print s"."$1"="$2}' $F/config/good.ini
} >"$C/set/good_ini_as_set"
printf -- '--epochs\n3\n--lr=0.001\n--method\nrkr\n--rank\n2\nrest\n' >"$C/set/flags"
printf -- '--set\ntrain.batch=0\n' >"$C/set/bad_value"
printf -- '--set\nno.such=1\n--seed\n' >"$C/set/unknown"
echo "seeds: $(find "$C" -type f | wc -l) files, $(du -sh "$C" | cut -f1)"
