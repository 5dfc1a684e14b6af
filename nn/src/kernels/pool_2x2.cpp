// Note [Pooling eight windows at a time]: float 2x2 max pooling with AVX2
// takes eight windows at a time, by selects. The compiler vectorizes the
// generic loop in steps of 8 and 4 windows, but the rest of a row runs a
// scalar rule that mispredicts: 2.4 ns a window on 28x28 planes, 6.1 on
// 14x14, 13 on 6x6, against 0.7 on 24x24 and 16x16 (no rest) and 1.3 on
// 8x8. Here rows of eight windows or more load their two input rows and
// split them into even and odd columns, the row's last eight overlapping
// the ones before (0.6-0.8 ns a window); narrower planes gather each
// window's four values from its top-left corner (2.1-3.6 ns). Rows of a
// multiple of four windows have no rest and keep the generic loop, which is
// as fast or faster there (overlapping or gathering does extra work).
// relu_max_pool_2x2 and unpool_2x2 take eight windows at a time the same way.
#include "kernels/pool.hpp"

#include <algorithm>
#include <memory>
#include <type_traits>

#include "zerograd/parallel.hpp"
#include "zerograd/simd_dispatch.hpp"

#include "kernels/pool_simd.hpp"

namespace zg::nn::kernels {
namespace ZG_SIMD_VARIANT {  // Note [Kernels per instruction set]
namespace {

// 2x2 windows, stride 2, no padding: each window's four values read
// directly, in row-major order with the same rule as the general path
// (strictly greater wins, so the first maximum; a NaN wins once).
template <class T>
void pool_2x2(const T* x, const Geometry& g, std::size_t p0, std::size_t p1, T* y, std::uint32_t* arg) {
  y += p0 * g.out_plane();
  arg += p0 * g.out_plane();
  for (std::size_t p = p0; p < p1; ++p) {
    const T* xp = x + p * g.plane();
    for (std::size_t oh = 0; oh < g.OH; ++oh) {
      const T* r0 = xp + 2 * oh * g.W;
      const T* r1 = r0 + g.W;
      const std::uint32_t base = static_cast<std::uint32_t>(2 * oh * g.W);
      for (std::size_t ow = 0; ow < g.OW; ++ow) {
        const std::size_t j = 2 * ow;
        T best = r0[j];
        std::uint32_t at = base + static_cast<std::uint32_t>(j);
        const T cand[3] = {r0[j + 1], r1[j], r1[j + 1]};
        const std::uint32_t where[3] = {at + 1, at + static_cast<std::uint32_t>(g.W),
                                        at + static_cast<std::uint32_t>(g.W) + 1};
        for (int k = 0; k < 3; ++k) {
          const bool take = cand[k] > best || (cand[k] != cand[k] && best == best);
          best = take ? cand[k] : best;
          at = take ? where[k] : at;
        }
        *y++ = best;
        *arg++ = at;
      }
    }
  }
}

#if defined(__AVX2__)
namespace pool8 {

// corner + (k & 1) + (k >> 1) W: where position k (0-3) of each window lies.
inline __m256i position(__m256i corner, __m256 k, __m256i width) {
  const __m256i kk = _mm256_cvttps_epi32(k);
  return _mm256_add_epi32(corner, _mm256_add_epi32(_mm256_and_si256(kk, _mm256_set1_epi32(1)),
                                                   _mm256_mullo_epi32(_mm256_srli_epi32(kk, 1), width)));
}

inline void store(float* y, std::uint32_t* at, const __m256 v[4], __m256i corner, __m256i width) {
  __m256 k;
  _mm256_storeu_ps(y, simd::window_max_at(v, k));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(at), position(corner, k, width));
}

// Planes whose rows have at least eight windows.
inline void by_rows(const float* xp, const Geometry& g, float* y, std::uint32_t* at) {
  const __m256i width = _mm256_set1_epi32(std::int32_t(g.W));
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  for (std::size_t oh = 0; oh < g.OH; ++oh, y += g.OW, at += g.OW) {
    const float* r0 = xp + 2 * oh * g.W;
    simd::by_eights(g.OW, [&](std::size_t o) {
      __m256 v[4];
      simd::deinterleave(r0 + 2 * o, v[0], v[1]);
      simd::deinterleave(r0 + g.W + 2 * o, v[2], v[3]);
      store(y + o, at + o, v, _mm256_add_epi32(_mm256_set1_epi32(std::int32_t(2 * oh * g.W + 2 * o)), even), width);
    });
  }
}

// Planes of narrower rows, with at least eight windows in all.
inline void gathered(const float* xp, const Geometry& g, const std::int32_t* corners, float* y, std::uint32_t* at) {
  const __m256i width = _mm256_set1_epi32(std::int32_t(g.W)), one = _mm256_set1_epi32(1);
  simd::by_eights(g.out_plane(), [&](std::size_t w) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corners + w));
    const __m256i below = _mm256_add_epi32(c, width);
    const __m256 v[4] = {_mm256_i32gather_ps(xp, c, 4), _mm256_i32gather_ps(xp, _mm256_add_epi32(c, one), 4),
                         _mm256_i32gather_ps(xp, below, 4), _mm256_i32gather_ps(xp, _mm256_add_epi32(below, one), 4)};
    store(y + w, at + w, v, c, width);
  });
}

}  // namespace pool8

void pool_2x2(const float* x, const Geometry& g, std::size_t p0, std::size_t p1, float* y, std::uint32_t* arg) {
  const std::size_t n = g.out_plane();
  if (n < 8 || g.OW % 4 == 0 || g.plane() >= (std::size_t{1} << 31)) return pool_2x2<float>(x, g, p0, p1, y, arg);
  // Not a std::vector, whose code the AVX2 compile would share with others
  // (Note [Kernels per instruction set]).
  std::unique_ptr<std::int32_t[]> corners(new std::int32_t[g.OW < 8 ? n : 0]);
  if (g.OW < 8)
    for (std::size_t oh = 0, i = 0; oh < g.OH; ++oh)
      for (std::size_t ow = 0; ow < g.OW; ++ow) corners[i++] = std::int32_t(2 * oh * g.W + 2 * ow);
  for (std::size_t p = p0; p < p1; ++p) {
    if (g.OW >= 8) pool8::by_rows(x + p * g.plane(), g, y + p * n, arg + p * n);
    else pool8::gathered(x + p * g.plane(), g, corners.get(), y + p * n, arg + p * n);
  }
}
#endif

// One plane's pooled gy (PH, PW) spread into out (rows of OW) as its
// position bytes at say.
template <class T>
void unpool_plane(const T* gy, const std::uint8_t* at, std::size_t OW, std::size_t PH, std::size_t PW, T* out) {
  for (std::size_t ph = 0; ph < PH; ++ph, gy += PW, at += PW) {
    T* o0 = out + 2 * ph * OW;
    T* o1 = o0 + OW;
#if defined(__AVX2__)
    if constexpr (std::is_same_v<T, float>)
      if (PW >= 8) {
        simd::by_eights(PW, [&](std::size_t w) {
          const __m256 g = _mm256_loadu_ps(gy + w);
          const __m256i k = simd::bytes(at + w);
          simd::interleave(simd::share(g, k, 0), simd::share(g, k, 1), o0 + 2 * w);
          simd::interleave(simd::share(g, k, 2), simd::share(g, k, 3), o1 + 2 * w);
        });
        continue;
      }
#endif
    for (std::size_t pw = 0; pw < PW; ++pw) {
      const T v[2] = {T(0), gy[pw]};  // indexed, not branched on
      const unsigned k = at[pw];
      o0[2 * pw] = v[k == 0];
      o0[2 * pw + 1] = v[k == 1];
      o1[2 * pw] = v[k == 2];
      o1[2 * pw + 1] = v[k == 3];
    }
  }
}

}  // namespace

template <class T>
void max_pool_2x2(const T* x, const Geometry& g, std::size_t p0, std::size_t p1, T* y, std::uint32_t* arg) {
  pool_2x2(x, g, p0, p1, y, arg);
}

template <class T>
void relu_max_pool_2x2(const T* y, const Geometry& p, std::size_t planes, T* out, std::uint8_t* at) {
  for (std::size_t c = 0; c < planes; ++c, y += p.plane())
    for (std::size_t oh = 0; oh < p.OH; ++oh) {
      const T* r0 = y + 2 * oh * p.W;
      const T* r1 = r0 + p.W;
#if defined(__AVX2__)
      if constexpr (std::is_same_v<T, float>)
        if (p.OW >= 8) {
          simd::by_eights(p.OW, [&](std::size_t o) {
            __m256 v[4];
            simd::deinterleave(r0 + 2 * o, v[0], v[1]);
            simd::deinterleave(r1 + 2 * o, v[2], v[3]);
            _mm256_storeu_ps(out + o, simd::window_max(v, at ? at + o : nullptr));
          });
          out += p.OW;
          if (at) at += p.OW;
          continue;
        }
#endif
      for (std::size_t ow = 0; ow < p.OW; ++ow) {
        const std::size_t j = 2 * ow;
        const T v[4] = {r0[j], r0[j + 1], r1[j], r1[j + 1]};
        *out++ = simd::window_max(v, at);
        if (at) ++at;
      }
    }
}

template <class T>
void unpool_2x2(const T* gy, const std::uint8_t* at, std::size_t planes, std::size_t OH, std::size_t OW, T* full) {
  const std::size_t PH = OH / 2, PW = OW / 2, PM = PH * PW, M = OH * OW;
  detail::parallel_for(planes, kPlaneGrain, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t p = p0; p < p1; ++p) {
      T* out = full + p * M;
      if (OH % 2 || OW % 2) std::fill_n(out, M, T(0));  // a last row or column no window covers
      unpool_plane(gy + p * PM, at + p * PM, OW, PH, PW, out);
    }
  });
}

#define ZG_INSTANTIATE(T)                                                                                  \
  template void max_pool_2x2(const T*, const Geometry&, std::size_t, std::size_t, T*, std::uint32_t*);    \
  template void relu_max_pool_2x2(const T*, const Geometry&, std::size_t, T*, std::uint8_t*);             \
  template void unpool_2x2(const T*, const std::uint8_t*, std::size_t, std::size_t, std::size_t, T*);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)

}  // namespace ZG_SIMD_VARIANT

#if ZG_SIMD_ENTRIES
namespace avx2 {
template <class T>
void max_pool_2x2(const T* x, const Geometry& g, std::size_t p0, std::size_t p1, T* y, std::uint32_t* arg);
template <class T>
void relu_max_pool_2x2(const T* y, const Geometry& p, std::size_t planes, T* out, std::uint8_t* at);
template <class T>
void unpool_2x2(const T* gy, const std::uint8_t* at, std::size_t planes, std::size_t OH, std::size_t OW, T* full);
}  // namespace avx2

template <class T>
void max_pool_2x2(const T* x, const Geometry& g, std::size_t p0, std::size_t p1, T* y, std::uint32_t* arg) {
  ZG_SIMD_CALL(max_pool_2x2, x, g, p0, p1, y, arg);
}

template <class T>
void relu_max_pool_2x2(const T* y, const Geometry& p, std::size_t planes, T* out, std::uint8_t* at) {
  ZG_SIMD_CALL(relu_max_pool_2x2, y, p, planes, out, at);
}

template <class T>
void unpool_2x2(const T* gy, const std::uint8_t* at, std::size_t planes, std::size_t OH, std::size_t OW, T* full) {
  ZG_SIMD_CALL(unpool_2x2, gy, at, planes, OH, OW, full);
}

ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#endif
#undef ZG_INSTANTIATE

}  // namespace zg::nn::kernels
