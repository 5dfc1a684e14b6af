#pragma once
// Convolution as im2col + GEMM, one GEMM per sample.
//
// Note [The column matrix]: for one sample, col (C*KH*KW, OH*OW) holds in
// row (c, kh, kw) and column (oh, ow) the input pixel x[c][oh*S - P + kh][ow*S
// - P + kw] (zero in the padding). This is the transpose of the book's layout
// (rows (n, oh, ow), columns (c, kh, kw)), chosen because then
//   y_n  (FN, OH*OW)     = W (FN, C*KH*KW) @ col_n         (conv2d)
//   col_n                = W^T @ gy_n, then col2im         (conv_transpose2d)
//   gW   (FN, C*KH*KW)  += gy_n @ col_n^T                  (conv2d_grad_weight)
// are each one GEMM per sample that reads and writes the (N, C, H, W) arrays
// in place: no transposed copy of the output, and a col buffer of one sample
// (it stays in cache) instead of one for the whole batch.
#include <cstddef>
#include <functional>
#include <memory>

#include "kernels/geometry.hpp"

namespace zg::nn::kernels {

// x: one sample (C, H, W); col: (C*KH*KW, OH*OW), fully written.
template <class T>
void im2col(const T* x, const Geometry& g, T* col);
// The adjoint of im2col: adds every column entry back onto the pixel it was
// read from, so pixels shared by overlapping windows accumulate.
template <class T>
void col2im_add(const T* col, const Geometry& g, T* x);

// A column matrix's buffer, left uninitialized: im2col and the GEMMs write
// every element (zeroing it first cost a pass over memory per call, and
// would hide an element they missed).
template <class T>
std::unique_ptr<T[]> column_buffer(std::size_t n) {
  return std::unique_ptr<T[]>(new T[n]);
}

enum class Activation { None, ReLU };

// Called with n and sample n's outputs (FN, OH*OW) while they are in cache.
template <class T>
using SampleFn = std::function<void(std::size_t, const T*)>;

// y (N, FN, OH, OW) = x conv w + b (b may be null), with ReLU max(that, 0)
// (NaN stays NaN); then sample(n, yn), if given, for each sample. The
// outputs go to y, or where y is null to a buffer of the thread's.
template <class T>
void conv2d_gemm(const T* x, const T* w, const T* b, const Geometry& g, std::size_t FN, Activation act, T* y,
                 const SampleFn<T>& sample);
// y (N, C, H, W) = the adjoint of conv2d for x (N, FN, OH, OW): W^T @ x_n, then col2im.
template <class T>
void conv_transpose2d_gemm(const T* x, const T* w, const Geometry& g, std::size_t FN, T* y);
// gw (FN, C, KH, KW), zero on entry, += gy_n @ col_n^T over the samples.
template <class T>
void conv2d_grad_weight_gemm(const T* x, const T* gy, const Geometry& g, std::size_t FN, T* gw);

}  // namespace zg::nn::kernels
