#!/usr/bin/env bash
# Installs what zerograd needs from Debian's packages, only what is missing:
# `install-deps.sh demo` what the demo needs, `install-deps.sh` everything.
# Idempotent and quiet when everything is there. Runs apt-get as root, or
# through sudo.
set -euo pipefail

# What the demo builds and runs: the library, apple_shopping and train.
packages=(
  g++ cmake make ccache                      # toolchain (ccache: fast rebuilds)
  libxtensor-dev libxtensor-blas-dev libxsimd-dev libopenblas-dev  # tensors and BLAS
  libcli11-dev                               # command-line parsing in examples
  libzip-dev zlib1g-dev                      # .npz checkpoints, gzip-compressed IDX data
  graphviz                                   # graph pictures (dot)
  gnuplot-nox                                # training plots (PNG)
  dataset-fashion-mnist                      # the built-in data set
)
# Small float GEMMs run on libxsmm's generated kernels (Debian ships it for
# amd64 only; elsewhere OpenBLAS runs them).
[ "$(dpkg --print-architecture)" = amd64 ] && packages+=(libxsmm-dev)
# float convolutions run on oneDNN's kernels (the library PyTorch's CPU
# convolutions use); without it im2col + GEMM runs them.
[ "$(dpkg --print-architecture)" = amd64 ] && packages+=(libdnnl-dev)

# Everything else: the tests, the other layers, the reference and the package.
if [ "${1:-all}" != demo ]; then
packages+=(
  pkgconf dpkg-dev                           # zerograd.pc's tests; dpkg-shlibdeps for the .deb's Depends
  clang libclang-rt-14-dev                   # sanitizer build and libFuzzer in the test command
  doctest-dev                                # tests
  doxygen                                    # the API reference and its test (dev.sh docs)
  fortunes                                   # English text (quotes) that train-lm learns characters from
  python3-numpy                              # checks that numpy reads our .npz files
  chromium                                   # the graph player's browser test
  libopenmpi-dev openmpi-bin                 # zerograd::distributed and its mpirun tests
  iproute2                                   # the two-host test's network namespaces (ip netns)
  libonnx-dev libprotobuf-dev                # zerograd::onnx writes models through ONNX's own generated classes
  python3-onnx                               # the ONNX export test runs ONNX's checker and shape inference
)
# The browser test runs puppeteer-core from npm on Node. These machines come
# with Node 20 and its npm (NodeSource's nodejs, which ships npm itself and
# conflicts with Debian's npm package): install Debian's only when missing.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "zerograd: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
