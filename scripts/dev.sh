#!/usr/bin/env bash
# zerograd's two entry points:
#   bash scripts/dev.sh demo   install what is missing, build, run the demo
#   bash scripts/dev.sh test   install what is missing, build, run every test
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/install-deps.sh

build() {  # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

case "${1:-}" in
  demo)
    build build
    ./build/examples/apple_shopping --out out/apple
    echo
    echo "=== SimpleConvNet (the book's chapter 7) on Fashion-MNIST, one epoch with Adam ==="
    ./build/examples/train --model simple-cnn --optimizer adam --epochs 1 --out out/simple-cnn
    ;;
  test)
    build build
    ctest --test-dir build -j "$jobs" --output-on-failure
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test" >&2
    exit 2
    ;;
esac
