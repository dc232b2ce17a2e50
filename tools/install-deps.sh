#!/usr/bin/env bash
# Installs everything clvit needs to build, test and benchmark, from Debian.
# Run as root (or through sudo) on Debian 12 or later.
#   tools/install-deps.sh          build, tests and the demo
#   tools/install-deps.sh --bench  also Debian's PyTorch (the benchmark's peer) and the fixture tools' needs
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential pkg-config \
    libdnnl-dev \
    libcjson-dev libinih-dev \
    libpng-dev libjpeg-dev zlib1g-dev libcairo2-dev \
    libcriterion-dev \
    libopenmpi-dev openmpi-bin \
    dataset-fashion-mnist
if [ "${1:-}" = "--bench" ]; then
    # OpenBLAS: without it Debian's PyTorch falls back to the reference BLAS (single-threaded,
    # several times slower) and the comparison would flatter clvit
    $SUDO apt-get install -y -qq --no-install-recommends python3-torch python3-numpy libopenblas0-pthread
fi
