// Note [GELU in one pass]: GELU composed of autograd ops (x / sqrt 2, erf,
// + 1, x times, 0.5 times) makes five passes over the activations forward
// and about a dozen backward, and erf per element through libm's scalar
// erff: in the GPT of bench/lm_step (gpt_char) that erf alone was 11% of a
// training step. Here forward and backward are each one pass with xsimd's
// vectorized erf, exp and tanh, split over threads like the elementwise
// ops. The last partial batch of each chunk goes through the same batch
// code (through a small buffer), so every element gets the same arithmetic
// wherever it lies. Measured figures are in docs/speed.md (sequence models).
#include "kernels/gelu.hpp"

#include <algorithm>
#include <cmath>

#include <xsimd/xsimd.hpp>

#include "zerograd/parallel.hpp"
#include "zerograd/simd_dispatch.hpp"

namespace zg::nn::kernels {
namespace ZG_SIMD_VARIANT {  // Note [Kernels per instruction set]
namespace {

template <class T>
struct Constants {
  static constexpr T half = T(0.5), one = T(1);
  static constexpr T inv_sqrt2 = T(0.70710678118654752440);     // 1 / sqrt 2
  static constexpr T inv_sqrt_2pi = T(0.39894228040143267794);  // 1 / sqrt(2 pi)
  static constexpr T c = T(0.79788456080286535588);             // sqrt(2 / pi)
  static constexpr T a = T(0.044715), three_a = T(3 * 0.044715);
};

template <class B>
B gelu_of(const B& x, bool tanh_approximation) {
  using T = typename B::value_type;
  using K = Constants<T>;
  if (tanh_approximation) return B(K::half) * x * (B(K::one) + xsimd::tanh(B(K::c) * (x + B(K::a) * x * x * x)));
  return B(K::half) * x * (B(K::one) + xsimd::erf(x * B(K::inv_sqrt2)));
}

template <class B>
B gelu_slope(const B& x, bool tanh_approximation) {
  using T = typename B::value_type;
  using K = Constants<T>;
  if (tanh_approximation) {
    const B t = xsimd::tanh(B(K::c) * (x + B(K::a) * x * x * x));
    return B(K::half) * (B(K::one) + t) +
           B(K::half) * x * (B(K::one) - t * t) * B(K::c) * (B(K::one) + B(K::three_a) * x * x);
  }
  const B cdf = B(K::half) * (B(K::one) + xsimd::erf(x * B(K::inv_sqrt2)));
  return cdf + x * B(K::inv_sqrt_2pi) * xsimd::exp(B(-K::half) * x * x);
}

// fn(batch index) over [0, n) split over threads; the ragged end through a
// buffer of one batch.
template <class T, class F>
void by_batches(std::size_t n, const T* const* in, std::size_t inputs, T* out, F&& fn) {
  using B = xsimd::batch<T>;
  constexpr std::size_t L = B::size;
  zg::detail::parallel_for(n, zg::detail::kElementGrain, [&](std::size_t b, std::size_t e) {
    std::size_t i = b;
    for (; i + L <= e; i += L) {
      B v[2];
      for (std::size_t k = 0; k < inputs; ++k) v[k] = B::load_unaligned(in[k] + i);
      fn(v).store_unaligned(out + i);
    }
    if (i == e) return;
    alignas(64) T buf[2][L] = {};
    B v[2];
    for (std::size_t k = 0; k < inputs; ++k) {
      std::copy(in[k] + i, in[k] + e, buf[k]);
      v[k] = B::load_aligned(buf[k]);
    }
    fn(v).store_aligned(buf[0]);
    std::copy(buf[0], buf[0] + (e - i), out + i);
  });
}

}  // namespace

template <class T>
void gelu(const T* x, T* y, std::size_t n, bool tanh_approximation) {
  const T* in[] = {x};
  by_batches<T>(n, in, 1, y, [&](const xsimd::batch<T>* v) { return gelu_of(v[0], tanh_approximation); });
}

template <class T>
void gelu_backward(const T* gy, const T* x, T* gx, std::size_t n, bool tanh_approximation) {
  const T* in[] = {gy, x};
  by_batches<T>(n, in, 2, gx, [&](const xsimd::batch<T>* v) { return v[0] * gelu_slope(v[1], tanh_approximation); });
}

template void gelu(const float*, float*, std::size_t, bool);
template void gelu(const double*, double*, std::size_t, bool);
template void gelu_backward(const float*, const float*, float*, std::size_t, bool);
template void gelu_backward(const double*, const double*, double*, std::size_t, bool);

}  // namespace ZG_SIMD_VARIANT

#if ZG_SIMD_ENTRIES
namespace avx2 {
template <class T>
void gelu(const T* x, T* y, std::size_t n, bool tanh_approximation);
template <class T>
void gelu_backward(const T* gy, const T* x, T* gx, std::size_t n, bool tanh_approximation);
}  // namespace avx2

template <class T>
void gelu(const T* x, T* y, std::size_t n, bool tanh_approximation) {
  ZG_SIMD_CALL(gelu, x, y, n, tanh_approximation);
}

template <class T>
void gelu_backward(const T* gy, const T* x, T* gx, std::size_t n, bool tanh_approximation) {
  ZG_SIMD_CALL(gelu_backward, gy, x, gx, n, tanh_approximation);
}

template void gelu(const float*, float*, std::size_t, bool);
template void gelu(const double*, double*, std::size_t, bool);
template void gelu_backward(const float*, const float*, float*, std::size_t, bool);
template void gelu_backward(const double*, const double*, double*, std::size_t, bool);
#endif

}  // namespace zg::nn::kernels
