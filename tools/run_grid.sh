#!/usr/bin/env bash
# `make grid`: every method on every backbone family on the built-in default
# (Split Fashion-MNIST, 5 tasks), then one method x backbone table. Each
# family has its config (configs/fashion_mnist_<family>.ini; the ViT one is
# the demo's); runs go to $OUT/<family>/<method> and, like `make run`, an
# interrupted grid continues where it stopped when run again.
#   FAMILIES="vit resnet" tools/run_grid.sh     only these columns
#   METHODS="rkr piggyback" tools/run_grid.sh   only these rows
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/grid}
FAMILIES=${FAMILIES:-vit resnet swin}
start=$(date +%s)
dirs=()
for f in $FAMILIES; do
    case $f in
    vit) config=configs/fashion_mnist_demo.ini ;;
    *) config=configs/fashion_mnist_$f.ini ;;
    esac
    if [ ! -f "$config" ]; then
        echo "== $f: no $config, skipped" >&2
        continue
    fi
    echo "==== $f ($config)"
    OUT="$OUT/$f" CONFIG="$config" NO_REPORT=1 tools/run_demo.sh
    for d in "$OUT/$f"/*/; do
        [ -f "$d/run.json" ] && dirs+=("${d%/}")
    done
done
echo
build/clvit report --plot "$OUT/plots" "${dirs[@]}"
echo
echo "grid: $(( $(date +%s) - start )) s; pictures in $OUT/plots"
