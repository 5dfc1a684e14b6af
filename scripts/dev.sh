#!/usr/bin/env bash
# zerograd's entry points:
#   bash scripts/dev.sh demo      install what is missing, build the demo's two programs, run them
#   bash scripts/dev.sh test      install what is missing, build, run every test
#   bash scripts/dev.sh package   build the Debian package libzerograd-dev, print its path
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/install-deps.sh

configure() {  # configure DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
}
build() {  # build DIR [cmake args...]: everything
  configure "$@"
  cmake --build "$1" -j "$jobs"
}

case "${1:-}" in
  demo)
    # Only the two programs the demo runs (and the libraries they link), not
    # the tests and benchmarks: those are for `test`.
    configure build
    cmake --build build -j "$jobs" --target apple_shopping train
    ./build/examples/apple_shopping --html --out out/apple
    echo
    echo "=== SimpleConvNet (the book's chapter 7) on Fashion-MNIST, one epoch with Adam ==="
    ./build/examples/train --model simple-cnn --optimizer adam --epochs 1 --out out/simple-cnn
    ;;
  test)
    # 1. Release build: every unit test, the compile-fail check, the examples'
    #    build, and an install consumed through find_package(zerograd).
    build build
    ./build/tests/zerograd_tests --count  # names the OpenBLAS kernel this run uses
    ctest --test-dir build -j "$jobs" --output-on-failure
    # 2. The same tests under AddressSanitizer + UndefinedBehaviorSanitizer
    #    (LeakSanitizer on), built with clang, which also builds the fuzzers.
    #    Line tables are all a sanitizer report needs (file:line per frame),
    #    and they build faster than full debug information.
    CXX=clang++ build build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
      -DZEROGRAD_SANITIZE=address,undefined -DZEROGRAD_FUZZ=ON \
      -DZEROGRAD_BUILD_EXAMPLES=OFF -DZEROGRAD_BUILD_BENCH=OFF
    # 3. A bounded libFuzzer run of the IDX reader and the .npz loader, from
    #    seed corpora of valid files and one bomb each (ZEROGRAD_FUZZ_SECONDS
    #    each, default 30). The memory caps fail a loader that inflates what
    #    it was not asked for or doubles its buffer on the 120 MiB bombs; the
    #    loaders allocate at most 1032 x the 128 kB max_len (deflate's ratio).
    corpus=build-asan/fuzz-corpus
    rm -rf "$corpus" && ./build-asan/tests/fuzz/make_seeds "$corpus/idx" "$corpus/npz"
    for target in idx npz; do
      echo "fuzzing $target for ${ZEROGRAD_FUZZ_SECONDS:-30} s"
      (cd build-asan && ./tests/fuzz/fuzz_$target -max_total_time="${ZEROGRAD_FUZZ_SECONDS:-30}" \
        -max_len=131072 -malloc_limit_mb=200 -rss_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="fuzz-$target-" "fuzz-corpus/$target" 2>&1 |
        grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|ERROR|SUMMARY")
    done
    ctest --test-dir build-asan -j "$jobs" --output-on-failure -E "compile_fail|install\."
    ;;
  package)
    # A package runs on machines other than the one that built it: the
    # x86-64-v2 baseline (up to SSE4.2 and POPCNT: every x86-64 CPU of the
    # last ~12 years) instead of -march=native (docs/install.md). Shared, so
    # that it needs no -dev packages of what it links inside; /usr so that
    # the libraries go to Debian's multiarch lib dir.
    configure build-package -DZEROGRAD_ARCH_FLAGS=-march=x86-64-v2 -DBUILD_SHARED_LIBS=ON \
      -DCMAKE_INSTALL_PREFIX=/usr -DZEROGRAD_BUILD_TESTS=OFF -DZEROGRAD_BUILD_EXAMPLES=OFF -DZEROGRAD_BUILD_BENCH=OFF
    cmake --build build-package -j "$jobs"
    rm -f build-package/libzerograd-dev_*.deb
    (cd build-package && cpack -G DEB >/dev/null)
    realpath build-package/libzerograd-dev_*.deb
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test|package" >&2
    exit 2
    ;;
esac
