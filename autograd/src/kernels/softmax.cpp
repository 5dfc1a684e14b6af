// Note [Softmax rows in SIMD]: softmax along the last axis is the step of
// attention (scores (B, H, T, T), its backward recomputing them) and of
// every language model's loss (log_softmax over the vocabulary). The
// general axis loop calls a lambda per element and leaves exp to libm one
// value at a time; here a row takes three passes in SIMD lanes (the
// maximum, exp and its sum, the scaling) with xsimd's exp, rows split over
// threads. The ragged end of a row goes through the same batch code through
// a buffer padded with -infinity, so a value's result does not depend on
// where it lies. Measured figures are in docs/speed.md (sequence models).
// Attention asks for its fully masked rows (maximum -infinity) as zeros
// and a flag, from the maximum this pass finds anyway.
#include <algorithm>
#include <cmath>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "zerograd/parallel.hpp"
#include "zerograd/row_softmax.hpp"
#include "zerograd/simd_dispatch.hpp"

namespace zg::detail {
namespace ZG_SIMD_VARIANT {  // Note [Kernels per instruction set]
namespace {

template <class T>
bool softmax_row(T* x, std::size_t n, bool log, bool zero_empty) {
  using B = xsimd::batch<T>;
  constexpr std::size_t L = B::size;
  constexpr T minus_inf = -std::numeric_limits<T>::infinity();
  const std::size_t body = n / L * L;
  alignas(64) T tail[L];
  std::fill(tail, tail + L, minus_inf);
  std::copy(x + body, x + n, tail);
  // the maximum
  B mb(minus_inf);
  for (std::size_t j = 0; j < body; j += L) mb = xsimd::max(mb, B::load_unaligned(x + j));
  mb = xsimd::max(mb, B::load_aligned(tail));
  alignas(64) T lanes[L];
  mb.store_aligned(lanes);
  const T m = *std::max_element(lanes, lanes + L);
  if (zero_empty && m == minus_inf) {
    std::fill(x, x + n, T(0));
    return true;
  }
  // exp(x - max), kept for softmax, and its sum
  const B mv(m);
  B sb(T(0));
  for (std::size_t j = 0; j < body; j += L) {
    const B e = xsimd::exp(B::load_unaligned(x + j) - mv);
    if (!log) e.store_unaligned(x + j);
    sb += e;
  }
  const B et = xsimd::exp(B::load_aligned(tail) - mv);  // the padding adds exp(-inf) = 0
  if (!log) et.store_aligned(tail);
  sb += et;
  const T s = xsimd::hadd(sb);
  // the scaling
  if (log) {
    const B shift(m + std::log(s));
    for (std::size_t j = 0; j < body; j += L) (B::load_unaligned(x + j) - shift).store_unaligned(x + j);
    (B::load_aligned(tail) - shift).store_aligned(tail);
  } else {
    const B r(T(1) / s);
    for (std::size_t j = 0; j < body; j += L) (B::load_unaligned(x + j) * r).store_unaligned(x + j);
    (B::load_aligned(tail) * r).store_aligned(tail);
  }
  std::copy(tail, tail + (n - body), x + body);
  return false;
}

}  // namespace

template <class T>
void softmax_rows(T* x, std::size_t rows, std::size_t n, bool log, unsigned char* empty) {
  if (n == 0) return;
  const std::size_t grain = std::max<std::size_t>(1, kElementGrain / n);
  parallel_for(rows, grain, [=](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      const bool none = softmax_row(x + r * n, n, log, empty != nullptr);
      if (empty) empty[r] = none;
    }
  });
}

template void softmax_rows(float*, std::size_t, std::size_t, bool, unsigned char*);
template void softmax_rows(double*, std::size_t, std::size_t, bool, unsigned char*);

}  // namespace ZG_SIMD_VARIANT

#if ZG_SIMD_ENTRIES
namespace avx2 {
template <class T>
void softmax_rows(T* x, std::size_t rows, std::size_t n, bool log, unsigned char* empty);
}

template <class T>
void softmax_rows(T* x, std::size_t rows, std::size_t n, bool log, unsigned char* empty) {
  ZG_SIMD_CALL(softmax_rows, x, rows, n, log, empty);
}

template void softmax_rows(float*, std::size_t, std::size_t, bool, unsigned char*);
template void softmax_rows(double*, std::size_t, std::size_t, bool, unsigned char*);
#endif

}  // namespace zg::detail
