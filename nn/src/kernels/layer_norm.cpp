// Note [LayerNorm in one pass]: layer_norm composed of autograd ops (mean,
// subtract, square, mean, add eps, pow -1/2, multiply, weight, bias) makes
// about ten passes over the activations forward, each a broadcast against a
// (rows, 1) column, and about twenty backward; in the GPT of bench/lm_step
// (gpt_char) those broadcasts were a fifth of a training step. Here each
// row is read twice forward (its mean, then its variance about the mean:
// two passes, as accurate as PyTorch's Welford update) and written once;
// backward makes one pass per row for gx and one over columns for gw and
// gb. Columns, not rows, split gw and gb between threads, so each sum
// adds its rows in one order whatever the thread count. Measured figures
// are in docs/speed.md (sequence models).
#include "kernels/layer_norm.hpp"

#include <algorithm>
#include <cmath>

#include <xsimd/xsimd.hpp>

#include "zerograd/parallel.hpp"
#include "zerograd/simd_dispatch.hpp"

namespace zg::nn::kernels {
namespace ZG_SIMD_VARIANT {  // Note [Kernels per instruction set]
namespace {

template <class T>
using Batch = xsimd::batch<T>;

// Rows per chunk: at least kElementGrain elements.
std::size_t row_grain(std::size_t D) {
  return std::max<std::size_t>(1, zg::detail::kElementGrain / std::max<std::size_t>(D, 1));
}

// sum of x[j], in SIMD lanes.
template <class T>
T sum_of(const T* x, std::size_t D) {
  constexpr std::size_t L = Batch<T>::size;
  Batch<T> acc(T(0));
  std::size_t j = 0;
  for (; j + L <= D; j += L) acc += Batch<T>::load_unaligned(x + j);
  T s = xsimd::hadd(acc);
  for (; j < D; ++j) s += x[j];
  return s;
}

// sum of (x[j] - m)^2, in SIMD lanes.
template <class T>
T squares_about(const T* x, T m, std::size_t D) {
  constexpr std::size_t L = Batch<T>::size;
  Batch<T> acc(T(0));
  const Batch<T> mb(m);
  std::size_t j = 0;
  for (; j + L <= D; j += L) {
    const Batch<T> d = Batch<T>::load_unaligned(x + j) - mb;
    acc = xsimd::fma(d, d, acc);
  }
  T s = xsimd::hadd(acc);
  for (; j < D; ++j) s += (x[j] - m) * (x[j] - m);
  return s;
}

// sums of g[j] and of g[j] (x[j] - m) with g = gy w (w null: 1), in SIMD lanes.
template <class T>
void gradient_sums(const T* gy, const T* w, const T* x, T m, std::size_t D, T& sg, T& sgx) {
  constexpr std::size_t L = Batch<T>::size;
  Batch<T> a(T(0)), b(T(0));
  const Batch<T> mb(m);
  std::size_t j = 0;
  for (; j + L <= D; j += L) {
    Batch<T> g = Batch<T>::load_unaligned(gy + j);
    if (w) g *= Batch<T>::load_unaligned(w + j);
    a += g;
    b = xsimd::fma(g, Batch<T>::load_unaligned(x + j) - mb, b);
  }
  sg = xsimd::hadd(a);
  sgx = xsimd::hadd(b);
  for (; j < D; ++j) {
    const T g = w ? gy[j] * w[j] : gy[j];
    sg += g;
    sgx += g * (x[j] - m);
  }
}

}  // namespace

template <class T>
void layer_norm(const T* x, const T* w, const T* b, std::size_t rows, std::size_t D, double eps, T* y, T* mean,
                T* rstd) {
  zg::detail::parallel_for(rows, row_grain(D), [=](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      const T* xr = x + r * D;
      T* yr = y + r * D;
      const T m = sum_of(xr, D) / T(D);
      const T rs = T(1) / std::sqrt(squares_about(xr, m, D) / T(D) + T(eps));
      mean[r] = m;
      rstd[r] = rs;
      if (w && b)
        for (std::size_t j = 0; j < D; ++j) yr[j] = (xr[j] - m) * rs * w[j] + b[j];
      else if (w)
        for (std::size_t j = 0; j < D; ++j) yr[j] = (xr[j] - m) * rs * w[j];
      else if (b)
        for (std::size_t j = 0; j < D; ++j) yr[j] = (xr[j] - m) * rs + b[j];
      else
        for (std::size_t j = 0; j < D; ++j) yr[j] = (xr[j] - m) * rs;
    }
  });
}

template <class T>
void layer_norm_backward(const T* gy, const T* x, const T* w, const T* mean, const T* rstd, std::size_t rows,
                         std::size_t D, T* gx, T* gw, T* gb) {
  if (gx)
    zg::detail::parallel_for(rows, row_grain(D), [=](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        const T* gr = gy + r * D;
        const T* xr = x + r * D;
        const T m = mean[r], rs = rstd[r];
        T sg, sgx;
        gradient_sums(gr, w, xr, m, D, sg, sgx);
        // gx = rs (g - mean(g) - xhat mean(g xhat)), xhat = (x - m) rs
        const T mg = sg / T(D), k = rs * rs * sgx / T(D);
        T* out = gx + r * D;
        if (w)
          for (std::size_t j = 0; j < D; ++j) out[j] = rs * (gr[j] * w[j] - mg - (xr[j] - m) * k);
        else
          for (std::size_t j = 0; j < D; ++j) out[j] = rs * (gr[j] - mg - (xr[j] - m) * k);
      }
    });
  if (!gw && !gb) return;
  // Each column adds its rows in order, whatever the chunks.
  const std::size_t grain = std::max<std::size_t>(8, zg::detail::kElementGrain / std::max<std::size_t>(rows, 1));
  zg::detail::parallel_for(D, grain, [=](std::size_t c0, std::size_t c1) {
    if (gw) std::fill(gw + c0, gw + c1, T(0));
    if (gb) std::fill(gb + c0, gb + c1, T(0));
    for (std::size_t r = 0; r < rows; ++r) {
      const T* gr = gy + r * D;
      const T* xr = x + r * D;
      const T m = mean[r], rs = rstd[r];
      if (gw)
        for (std::size_t j = c0; j < c1; ++j) gw[j] += gr[j] * ((xr[j] - m) * rs);
      if (gb)
        for (std::size_t j = c0; j < c1; ++j) gb[j] += gr[j];
    }
  });
}

template void layer_norm(const float*, const float*, const float*, std::size_t, std::size_t, double, float*, float*,
                         float*);
template void layer_norm(const double*, const double*, const double*, std::size_t, std::size_t, double, double*,
                         double*, double*);
template void layer_norm_backward(const float*, const float*, const float*, const float*, const float*, std::size_t,
                                  std::size_t, float*, float*, float*);
template void layer_norm_backward(const double*, const double*, const double*, const double*, const double*,
                                  std::size_t, std::size_t, double*, double*, double*);

}  // namespace ZG_SIMD_VARIANT

#if ZG_SIMD_ENTRIES
namespace avx2 {
template <class T>
void layer_norm(const T* x, const T* w, const T* b, std::size_t rows, std::size_t D, double eps, T* y, T* mean,
                T* rstd);
template <class T>
void layer_norm_backward(const T* gy, const T* x, const T* w, const T* mean, const T* rstd, std::size_t rows,
                         std::size_t D, T* gx, T* gw, T* gb);
}  // namespace avx2

template <class T>
void layer_norm(const T* x, const T* w, const T* b, std::size_t rows, std::size_t D, double eps, T* y, T* mean,
                T* rstd) {
  ZG_SIMD_CALL(layer_norm, x, w, b, rows, D, eps, y, mean, rstd);
}

template <class T>
void layer_norm_backward(const T* gy, const T* x, const T* w, const T* mean, const T* rstd, std::size_t rows,
                         std::size_t D, T* gx, T* gw, T* gb) {
  ZG_SIMD_CALL(layer_norm_backward, gy, x, w, mean, rstd, rows, D, gx, gw, gb);
}

template void layer_norm(const float*, const float*, const float*, std::size_t, std::size_t, double, float*, float*,
                         float*);
template void layer_norm(const double*, const double*, const double*, std::size_t, std::size_t, double, double*,
                         double*, double*);
template void layer_norm_backward(const float*, const float*, const float*, const float*, const float*, std::size_t,
                                  std::size_t, float*, float*, float*);
template void layer_norm_backward(const double*, const double*, const double*, const double*, const double*,
                                  std::size_t, std::size_t, double*, double*, double*);
#endif

}  // namespace zg::nn::kernels
