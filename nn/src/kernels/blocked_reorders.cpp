// Note [ReLU in the reorders]: a Conv2d followed by ReLU (Note [Conv2d
// with ReLU] in ops/conv_fused.cpp) applies the ReLU, and keeps its switch,
// as the output is copied out of oneDNN's blocked layout, and its backward
// switches gy off as gy is copied into it: the two reorders are ours, and
// no pass over memory is added. oneDNN's own ReLU post-op was as fast but
// turns NaN into 0 (vmaxps), which would hide a diverged model; here NaN
// stays NaN, as in zg::relu. The blocked layouts are (N, C/B, H, W, B)
// with B = 16 (AVX-512 kernels) or 8 (AVX2); for others oneDNN reorders
// and a separate pass does the ReLU.
//
// Note [Pooling in the reorders]: a Conv2d, ReLU and 2x2 max pooling
// (Note [Conv2d with ReLU and pooling] in ops/conv_fused.cpp) pool the output while
// it is still in oneDNN's blocked layout, where the B channels of one
// position are adjacent: each window is four vector loads and three
// selects, and only the pooled quarter is copied out to (N, C, PH, PW).
// Each pooled output keeps one byte, the window position (0-3, row-major)
// of its maximum, or 4 where the maximum is not > 0 and ReLU passes no
// gradient; the bytes stay in the blocked order (N, C/B, PH*PW, B). The
// backward spreads gy back over the windows straight into the blocked
// layout its primitives read. So neither the full-size output nor its
// gradient is ever written in (N, C, H, W), read back, or kept.
//
// Both are compiled per instruction set, Note [Kernels per instruction set]:
// the baseline variant runs the scalar loops, on the same blocked layouts.
#include "kernels/blocked_reorders.hpp"

#include <algorithm>
#include <cstring>
#include <memory>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "zerograd/parallel.hpp"
#include "zerograd/simd_dispatch.hpp"

#include "kernels/pool_simd.hpp"

namespace zg::nn::onednn {
namespace ZG_SIMD_VARIANT {
namespace {

#if defined(__AVX2__)
// Byte k of kSpread[m] is bit k of m: 8 switches from a movemask.
constexpr std::array<std::uint64_t, 256> kSpread = [] {
  std::array<std::uint64_t, 256> t{};
  for (std::size_t m = 0; m < 256; ++m)
    for (std::size_t k = 0; k < 8; ++k) t[m] |= std::uint64_t((m >> k) & 1) << (8 * k);
  return t;
}();

// An 8x8 block: r[k] holds row k, and afterwards column k.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

// Calls fn(nb, plane) for each (n, channel block) nb of N samples of C
// channels in blocks of B, in parallel: plane is the index in (N, C) of the
// block's first channel.
template <class F>
void each_block(std::size_t N, std::size_t C, std::size_t B, F&& fn) {
  const std::size_t blocks = C / B;
  zg::detail::parallel_for(N * blocks, 1, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t nb = b0; nb < b1; ++nb) fn(nb, nb / blocks * C + nb % blocks * B);
  });
}

// A (HW, B) tile into (B, HW) rows and back.
void tile_to_rows(const float* tile, std::size_t HW, std::size_t B, float* rows) {
  std::size_t i = 0;
#if defined(__AVX2__)
  for (; i + 8 <= HW; i += 8)
    for (std::size_t h = 0; h < B; h += 8) {
      __m256 r[8];
      for (std::size_t k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(tile + (i + k) * B + h);
      transpose8(r);
      for (std::size_t c = 0; c < 8; ++c) _mm256_storeu_ps(rows + (h + c) * HW + i, r[c]);
    }
#endif
  for (; i < HW; ++i)
    for (std::size_t c = 0; c < B; ++c) rows[c * HW + i] = tile[i * B + c];
}
void rows_to_tile(const float* rows, std::size_t HW, std::size_t B, float* tile) {
  std::size_t i = 0;
#if defined(__AVX2__)
  for (; i + 8 <= HW; i += 8)
    for (std::size_t h = 0; h < B; h += 8) {
      __m256 r[8];
      for (std::size_t c = 0; c < 8; ++c) r[c] = _mm256_loadu_ps(rows + (h + c) * HW + i);
      transpose8(r);
      for (std::size_t k = 0; k < 8; ++k) _mm256_storeu_ps(tile + (i + k) * B + h, r[k]);
    }
#endif
  for (; i < HW; ++i)
    for (std::size_t c = 0; c < B; ++c) tile[i * B + c] = rows[c * HW + i];
}

// The thread's tile of one pooled (n, channel block).
// Not a std::vector, whose code the AVX2 compile would share with others
// (Note [Kernels per instruction set]).
float* pooled_tile(std::size_t floats) {
  struct Tile {
    std::unique_ptr<float[]> data;
    std::size_t size = 0;
  };
  thread_local Tile tile;
  if (tile.size < floats) tile = {std::unique_ptr<float[]>(new float[floats]), floats};
  return tile.data.get();
}

// One window's B channels (blocked, from its top-left position w0): the max
// of relu(x) into out[0, B) and its position byte into at (if not null).
// The same rule as max_pool2d after relu: ReLU a select (NaN stays NaN),
// then the first maximum in row-major order wins, and a NaN wins once.
void relu_pool_window(const float* w0, const std::array<std::size_t, 4>& off, std::size_t B, float* out,
                      std::uint8_t* at) {
  std::size_t c = 0;
#if defined(__AVX2__)
  for (; c + 8 <= B; c += 8) {
    __m256 v[4];
    for (std::size_t j = 0; j < 4; ++j) v[j] = simd::relu(_mm256_loadu_ps(w0 + off[j] + c));
    _mm256_storeu_ps(out + c, simd::window_max(v, at ? at + c : nullptr));
  }
#endif
  for (; c < B; ++c) {
    float v[4];
    for (std::size_t j = 0; j < 4; ++j) {
      const float x = w0[off[j] + c];
      v[j] = x < 0.0f ? 0.0f : x;
    }
    out[c] = simd::window_max(v, at ? at + c : nullptr);
  }
}

}  // namespace

void relu_from_blocked(const float* blocked, const Planes& p, float* y, std::uint8_t* positive) {
  each_block(p.N, p.C, p.B, [&](std::size_t nb, std::size_t plane) {
    const float* in = blocked + nb * p.HW * p.B;
    float* out = y + plane * p.HW;
    std::uint8_t* on = positive ? positive + plane * p.HW : nullptr;
    std::size_t i = 0;
#if defined(__AVX2__)
    const __m256 zero = _mm256_setzero_ps();
    for (; i + 8 <= p.HW; i += 8)
      for (std::size_t h = 0; h < p.B; h += 8) {
        __m256 r[8];
        for (std::size_t k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(in + (i + k) * p.B + h);
        transpose8(r);
        for (std::size_t c = 0; c < 8; ++c) {
          const std::size_t at = (h + c) * p.HW + i;
          const __m256 v = _mm256_blendv_ps(r[c], zero, _mm256_cmp_ps(r[c], zero, _CMP_LT_OQ));
          _mm256_storeu_ps(out + at, v);
          if (!on) continue;
          const std::uint64_t bytes = kSpread[std::size_t(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ)))];
          std::memcpy(on + at, &bytes, 8);
        }
      }
#endif
    for (; i < p.HW; ++i)
      for (std::size_t c = 0; c < p.B; ++c) {
        const float v = in[i * p.B + c], r = v < 0.0f ? 0.0f : v;
        out[c * p.HW + i] = r;
        if (on) on[c * p.HW + i] = r > 0.0f;
      }
  });
}

void switched_to_blocked(const float* gy, const std::uint8_t* positive, const Planes& p, float* blocked) {
  each_block(p.N, p.C, p.B, [&](std::size_t nb, std::size_t plane) {
    const float* in = gy + plane * p.HW;
    const std::uint8_t* on = positive + plane * p.HW;
    float* out = blocked + nb * p.HW * p.B;
    std::size_t i = 0;
#if defined(__AVX2__)
    const __m256i zero = _mm256_setzero_si256();
    for (; i + 8 <= p.HW; i += 8)
      for (std::size_t h = 0; h < p.B; h += 8) {
        __m256 r[8];
        for (std::size_t c = 0; c < 8; ++c) {
          const std::size_t at = (h + c) * p.HW + i;
          const __m256i m = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(on + at)));
          r[c] = _mm256_and_ps(_mm256_loadu_ps(in + at), _mm256_castsi256_ps(_mm256_cmpgt_epi32(m, zero)));
        }
        transpose8(r);
        for (std::size_t k = 0; k < 8; ++k) _mm256_storeu_ps(out + (i + k) * p.B + h, r[k]);
      }
#endif
    for (; i < p.HW; ++i)
      for (std::size_t c = 0; c < p.B; ++c) {
        const float v = in[c * p.HW + i];
        out[i * p.B + c] = on[c * p.HW + i] ? v : 0.0f;
      }
  });
}

void relu_pool_from_blocked(const float* blocked, const Window& p, float* pooled, std::uint8_t* at) {
  const std::size_t PHW = p.pooled();
  const auto off = p.offsets();
  each_block(p.N, p.C, p.B, [&](std::size_t nb, std::size_t plane) {
    float* tile = pooled_tile(PHW * p.B);
    const float* in = blocked + nb * p.OH * p.OW * p.B;
    for (std::size_t i = 0; i < PHW; ++i)
      relu_pool_window(in + p.corner(i), off, p.B, tile + i * p.B, at ? at + (nb * PHW + i) * p.B : nullptr);
    tile_to_rows(tile, PHW, p.B, pooled + plane * PHW);
  });
}

void unpooled_to_blocked(const float* gy, const std::uint8_t* at, const Window& p, float* blocked) {
  const std::size_t PHW = p.pooled(), size = p.OH * p.OW * p.B;
  const auto off = p.offsets();
  each_block(p.N, p.C, p.B, [&](std::size_t nb, std::size_t plane) {
    float* tile = pooled_tile(PHW * p.B);
    float* out = blocked + nb * size;
    if (p.OH % 2 || p.OW % 2) std::fill_n(out, size, 0.0f);
    rows_to_tile(gy + plane * PHW, PHW, p.B, tile);
    const std::uint8_t* a = at + nb * PHW * p.B;
    for (std::size_t i = 0; i < PHW; ++i) {
      float* w0 = out + p.corner(i);
      const float* g = tile + i * p.B;
      const std::uint8_t* k = a + i * p.B;
      std::size_t c = 0;
#if defined(__AVX2__)
      for (; c + 8 <= p.B; c += 8) {
        const __m256 v = _mm256_loadu_ps(g + c);
        const __m256i kc = simd::bytes(k + c);
        for (int j = 0; j < 4; ++j) _mm256_storeu_ps(w0 + off[std::size_t(j)] + c, simd::share(v, kc, j));
      }
#endif
      for (; c < p.B; ++c)
        for (std::size_t j = 0; j < 4; ++j) w0[off[j] + c] = k[c] == j ? g[c] : 0.0f;
    }
  });
}

}  // namespace ZG_SIMD_VARIANT

#if ZG_SIMD_ENTRIES
namespace avx2 {
void relu_from_blocked(const float* blocked, const Planes& p, float* y, std::uint8_t* positive);
void switched_to_blocked(const float* gy, const std::uint8_t* positive, const Planes& p, float* blocked);
void relu_pool_from_blocked(const float* blocked, const Window& p, float* pooled, std::uint8_t* at);
void unpooled_to_blocked(const float* gy, const std::uint8_t* at, const Window& p, float* blocked);
}  // namespace avx2

void relu_from_blocked(const float* blocked, const Planes& p, float* y, std::uint8_t* positive) {
  ZG_SIMD_CALL(relu_from_blocked, blocked, p, y, positive);
}
void switched_to_blocked(const float* gy, const std::uint8_t* positive, const Planes& p, float* blocked) {
  ZG_SIMD_CALL(switched_to_blocked, gy, positive, p, blocked);
}
void relu_pool_from_blocked(const float* blocked, const Window& p, float* pooled, std::uint8_t* at) {
  ZG_SIMD_CALL(relu_pool_from_blocked, blocked, p, pooled, at);
}
void unpooled_to_blocked(const float* gy, const std::uint8_t* at, const Window& p, float* blocked) {
  ZG_SIMD_CALL(unpooled_to_blocked, gy, at, p, blocked);
}
#endif

}  // namespace zg::nn::onednn
