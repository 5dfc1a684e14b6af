#pragma once
// Layer normalization over the rows of a (rows, D) array and its backward
// (Note [LayerNorm in one pass] in layer_norm.cpp).
#include <cstddef>

namespace zg::nn::kernels {

// Per row r: mean[r], rstd[r] = 1 / sqrt(biased variance + eps), and
// y = (x - mean) rstd w + b; w and b (D) may be null (1 and 0).
template <class T>
void layer_norm(const T* x, const T* w, const T* b, std::size_t rows, std::size_t D, double eps, T* y, T* mean,
                T* rstd);

// From the upstream gy and what layer_norm computed: gx = rstd (g - mean(g)
// - xhat mean(g xhat)) per row with g = gy w and xhat = (x - mean) rstd;
// gw = the sum over rows of gy xhat, gb = the sum over rows of gy. Any of
// gx, gw, gb may be null (not wanted); w may be null (1).
template <class T>
void layer_norm_backward(const T* gy, const T* x, const T* w, const T* mean, const T* rstd, std::size_t rows,
                         std::size_t D, T* gx, T* gw, T* gb);

}  // namespace zg::nn::kernels
