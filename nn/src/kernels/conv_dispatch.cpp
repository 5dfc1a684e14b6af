#include "kernels/conv_dispatch.hpp"

#include <memory>
#include <type_traits>

#include "zerograd/parallel.hpp"

#include "kernels/pool.hpp"

namespace zg::nn::kernels {
namespace {

// on[i] = y[i] > 0 for one sample's outputs, while they are in cache. A
// function of its own, with its pointers as arguments: byte stores may
// alias anything, and through a lambda's captures the pointers were
// reloaded for each element and the loop stayed scalar (4x slower).
template <class T>
void mark_positive(const T* y, std::size_t n, std::uint8_t* on) {
  for (std::size_t i = 0; i < n; ++i) on[i] = y[i] > T(0);
}

}  // namespace

onednn::ConvDims dims_of(const Geometry& g, std::size_t FN) {
  return {g.N, g.C, g.H, g.W, FN, g.KH, g.KW, g.OH, g.OW, g.S, g.P};
}

template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, const Geometry& g, std::size_t FN, Activation act, T* y,
                    std::uint8_t* output_positive) {
  if constexpr (std::is_same_v<T, float>)  // Note [oneDNN convolutions]
    if (onednn::conv2d(dims_of(g, FN), x, w, b, y, act == Activation::ReLU, output_positive)) return;
  const std::size_t M = FN * g.out_plane();
  SampleFn<T> mark;
  if (output_positive)
    mark = [&](std::size_t n, const T* yn) { mark_positive(yn, M, output_positive + n * M); };
  conv2d_gemm(x, w, b, g, FN, act, y, mark);
}

template <class T>
void conv_transpose2d_forward(const T* x, const T* w, const Geometry& g, std::size_t FN, T* y) {
  if constexpr (std::is_same_v<T, float>)
    if (onednn::backward_data(dims_of(g, FN), x, w, y)) return;
  conv_transpose2d_gemm(x, w, g, FN, y);
}

template <class T>
void conv2d_grad_weight_forward(const T* x, const T* gy, const Geometry& g, std::size_t FN, T* gw) {
  if constexpr (std::is_same_v<T, float>)
    if (onednn::backward_weights(dims_of(g, FN), x, gy, gw)) return;
  conv2d_grad_weight_gemm(x, gy, g, FN, gw);
}

template <class T>
std::size_t conv2d_relu_max_pool_forward(const T* x, const T* w, const T* b, const Geometry& g, std::size_t FN,
                                         T* pooled, std::uint8_t* at) {
  const Geometry p = pool_geometry("MaxPool2d", {g.N, FN, g.OH, g.OW}, 2, 2, 0);
  const std::size_t M = g.out_plane(), PM = p.out_plane();
  const auto pool_sample = [&](std::size_t n, const T* yn) {
    relu_max_pool_2x2(yn, p, FN, pooled + n * FN * PM, at ? at + n * FN * PM : nullptr);
  };
  if constexpr (std::is_same_v<T, float>) {
    const onednn::ConvDims d = dims_of(g, FN);
    if (const std::size_t block = onednn::conv2d_relu_pool(d, x, w, b, pooled, at)) return block;
    // oneDNN with an output layout we do not pool in: the whole output, then the pooling.
    std::unique_ptr<T[]> y(onednn::taken(d) ? new T[g.N * FN * M] : nullptr);
    if (y && onednn::conv2d(d, x, w, b, y.get(), true)) {
      detail::parallel_for(g.N, 1, [&](std::size_t n0, std::size_t n1) {
        for (std::size_t n = n0; n < n1; ++n) pool_sample(n, y.get() + n * FN * M);
      });
      return 0;
    }
  }
  conv2d_gemm<T>(x, w, b, g, FN, Activation::ReLU, nullptr, pool_sample);
  return 0;
}

#define ZG_INSTANTIATE(T)                                                                                       \
  template void conv2d_forward(const T*, const T*, const T*, const Geometry&, std::size_t, Activation, T*,     \
                               std::uint8_t*);                                                                 \
  template void conv_transpose2d_forward(const T*, const T*, const Geometry&, std::size_t, T*);                \
  template void conv2d_grad_weight_forward(const T*, const T*, const Geometry&, std::size_t, T*);              \
  template std::size_t conv2d_relu_max_pool_forward(const T*, const T*, const T*, const Geometry&, std::size_t, \
                                                    T*, std::uint8_t*);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::kernels
