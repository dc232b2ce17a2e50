#!/usr/bin/env bash
# Data-parallel training gives the single process's results: the same run
# with 2 MPI ranks (one thread each) and with 1 process, same global batch;
# the accuracy matrices must agree to float rounding (here: within one test
# image, 0.5 points, per entry). Needs build-mpi/clvit (make MPI=1
# BUILD=build-mpi) and Debian's openmpi-bin. Run from the repository root.
set -euo pipefail
BIN=${1:-build-mpi/clvit}
if ! command -v mpirun >/dev/null; then
    echo "mpi_check: SKIPPED (no mpirun; Debian: openmpi-bin)"
    exit 0
fi
if [ ! -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "mpi_check: SKIPPED (no Fashion-MNIST; Debian: dataset-fashion-mnist)"
    exit 0
fi
tmp=$(mktemp -d /tmp/clvit-mpi-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
args=(--data fashion-mnist --tasks 5 --method rkr --train-limit 512 --test-limit 200 --epochs 1 --batch 64
      --threads 1 --seed 5 --quiet)
"$BIN" train "${args[@]}" --out "$tmp/one" --overwrite
mpirun --allow-run-as-root --oversubscribe -np 2 "$BIN" train "${args[@]}" --out "$tmp/two" --overwrite 2>"$tmp/mpi.log" \
    || { cat "$tmp/mpi.log"; exit 1; }
matrix() { tr -d ' \t\n' < "$1/run.json" | sed 's/.*"accuracy_matrix":\[\(.*\)\],"average_accuracy".*/\1/'; }
a=$(matrix "$tmp/one")
b=$(matrix "$tmp/two")
echo "1 process: $a"
echo "2 ranks:   $b"
paste -d' ' <(echo "$a" | tr -c '0-9.\n' '\n' | grep -v '^$') <(echo "$b" | tr -c '0-9.\n' '\n' | grep -v '^$') |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { printf "largest difference: %.2f points\n", m;
           exit (m > 0.5) }'
echo "mpi_check: passed"
