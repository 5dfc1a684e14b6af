#!/usr/bin/env bash
# ctest simd.variants (Note [Kernels per instruction set]): the AVX2 compile
# of zerograd's kernels defines no weak code symbol (inline or template code
# of which the linker keeps one copy, such as std::vector's) that another
# compile could define as well: the linker might keep the AVX2 copy for all,
# and a CPU without AVX2 would die in it. A symbol only an AVX2 compile
# defines names avx2 (xsimd's kernels for its avx2 type, our variants).
#   bash tests/simd_variants.sh NM OBJECT...
set -euo pipefail
nm=$1
shift
objects=()
for list in "$@"; do  # ctest passes each target's objects as one ;-separated argument
  IFS=';' read -ra some <<<"$list"
  objects+=("${some[@]}")
done
weak=$("$nm" -C --defined-only "${objects[@]}" | awk '$2 == "W" { $1 = ""; $2 = ""; print substr($0, 3) }')
shared=$(grep -v avx2 <<<"$weak" || true)
if [ -n "$shared" ]; then
  echo "shared inline code in the AVX2 kernels, which the linker may keep for the baseline ones:"
  head -n 20 <<<"$shared"
  echo "($(wc -l <<<"$shared") in all)"
  exit 1
fi
echo "simd.variants: $(grep -c . <<<"$weak" || true) weak symbols in ${#objects[@]} AVX2 objects, each naming avx2"
