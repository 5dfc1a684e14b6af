#pragma once
// Which kernel runs a convolution: oneDNN for float where it is taken (Note
// [oneDNN convolutions] in conv_dnnl.cpp), im2col + GEMM otherwise (Note
// [The column matrix] in im2col.hpp). The ops call these in one line each.
#include <cstddef>
#include <cstdint>

#include "kernels/conv_dnnl.hpp"
#include "kernels/geometry.hpp"
#include "kernels/im2col.hpp"

namespace zg::nn::kernels {

onednn::ConvDims dims_of(const Geometry& g, std::size_t FN);

// y (N, FN, OH, OW) = x conv w + b (b may be null), with ReLU max(that, 0)
// (NaN stays NaN) and, where output_positive is not null, one byte per
// output: 1 where y > 0.
template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, const Geometry& g, std::size_t FN, Activation act, T* y,
                    std::uint8_t* output_positive = nullptr);
// y (N, C, H, W) = the adjoint of conv2d applied to x (N, FN, OH, OW).
template <class T>
void conv_transpose2d_forward(const T* x, const T* w, const Geometry& g, std::size_t FN, T* y);
// gw (FN, C, KH, KW), zero on entry = conv2d's weight gradient for gy.
template <class T>
void conv2d_grad_weight_forward(const T* x, const T* gy, const Geometry& g, std::size_t FN, T* gw);
// pooled = max_pool2d(relu(x conv w + b), 2) and, where window_argmax is not
// null, per pooled output its maximum's position byte (0-3, or 4 where that
// is not > 0). Returns oneDNN's channel block when the bytes are in its
// blocked order (Note [Pooling in the reorders] in blocked_reorders.cpp), 0 when
// they are in (N, FN, OH / 2, OW / 2) order.
template <class T>
std::size_t conv2d_relu_max_pool_forward(const T* x, const T* w, const T* b, const Geometry& g, std::size_t FN,
                                         T* pooled, std::uint8_t* window_argmax);

}  // namespace zg::nn::kernels
