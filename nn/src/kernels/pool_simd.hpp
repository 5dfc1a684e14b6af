#pragma once
// 2x2 max pooling after ReLU, one window or (with AVX2) eight at once:
// shared by the oneDNN path's blocked layout (Note [Pooling in the
// reorders] in blocked_reorders.cpp) and im2col's plain one (Note [Conv2d with
// ReLU and pooling] in ops/conv_fused.cpp).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "zerograd/simd_dispatch.hpp"

// In the variant's namespace: an AVX2 compile's copy of these inline
// functions must not stand in for a baseline compile's (Note [Kernels per
// instruction set]).
namespace zg::nn::simd {
inline namespace ZG_SIMD_VARIANT {

// One window's values v[0, 4) (row-major, after ReLU): its maximum by
// max_pool2d's rule (the first maximum wins, a NaN wins once), and where at
// is not null its position byte *at: the maximum's position, or 4 where the
// maximum is not > 0 (ReLU passes no gradient there). Selects, not
// branches: which value wins is data-dependent.
// Calls fn(o) for o = 0, 8, 16, ... and last n - 8, so that eight items
// from each o cover [0, n), the last eight overlapping the ones before
// (they compute the same values again); n must be at least 8.
template <class F>
void by_eights(std::size_t n, F&& fn) {
  for (std::size_t o = 0;; o = std::min(o + 8, n - 8)) {
    fn(o);
    if (o + 8 == n) break;
  }
}

template <class T>
T window_max(const T v[4], std::uint8_t* at) {
  T best = v[0];
  std::uint8_t k = 0;
  for (std::uint8_t j = 1; j < 4; ++j) {
    const bool take = v[j] > best || (v[j] != v[j] && best == best);
    best = take ? v[j] : best;
    k = take ? j : k;
  }
  if (at) *at = best > T(0) ? k : 4;
  return best;
}

#if defined(__AVX2__)

// max(x, 0) as a select, so NaN stays NaN (zg::relu's rule).
inline __m256 relu(__m256 x) {
  const __m256 zero = _mm256_setzero_ps();
  return _mm256_blendv_ps(x, zero, _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
}

// Eight windows' maxima, v[j] holding their values at position j, by the
// same rule, and in k each one's position 0-3 (as floats).
inline __m256 window_max_at(const __m256 v[4], __m256& k) {
  __m256 best = v[0];
  k = _mm256_setzero_ps();
  for (int j = 1; j < 4; ++j) {
    const __m256 take = _mm256_or_ps(
        _mm256_cmp_ps(v[j], best, _CMP_GT_OQ),
        _mm256_andnot_ps(_mm256_cmp_ps(best, best, _CMP_UNORD_Q), _mm256_cmp_ps(v[j], v[j], _CMP_UNORD_Q)));
    best = _mm256_blendv_ps(best, v[j], take);
    k = _mm256_blendv_ps(k, _mm256_set1_ps(float(j)), take);
  }
  return best;
}

// The same for eight windows after ReLU; the position bytes go to at[0, 8).
inline __m256 window_max(const __m256 v[4], std::uint8_t* at) {
  __m256 k;
  const __m256 best = window_max_at(v, k);
  if (at) {
    k = _mm256_blendv_ps(_mm256_set1_ps(4.0f), k, _mm256_cmp_ps(best, _mm256_setzero_ps(), _CMP_GT_OQ));
    const __m256i k32 = _mm256_cvttps_epi32(k);
    const __m128i k16 = _mm_packus_epi32(_mm256_castsi256_si128(k32), _mm256_extracti128_si256(k32, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(at), _mm_packus_epi16(k16, k16));
  }
  return best;
}

// The eight position bytes at[0, 8) as 32-bit lanes.
inline __m256i bytes(const std::uint8_t* at) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(at)));
}

// g where k is j, 0 elsewhere: the share of position j.
inline __m256 share(__m256 g, __m256i k, int j) {
  return _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(j))));
}

// p[0, 16) split into its even and odd elements: the left and right
// columns of eight windows in one row.
inline void deinterleave(const float* p, __m256& even, __m256& odd) {
  const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

// The inverse: p[0, 16) = even[0], odd[0], even[1], odd[1], ...
inline void interleave(__m256 even, __m256 odd, float* p) {
  const __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
  _mm256_storeu_ps(p, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

#endif  // __AVX2__

}  // namespace ZG_SIMD_VARIANT
}  // namespace zg::nn::simd
