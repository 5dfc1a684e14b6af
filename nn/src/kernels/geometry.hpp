#pragma once
// The sizes of one convolution or pooling, checked: shared by the ops and
// their kernels.
#include <algorithm>
#include <cstddef>
#include <string>

#include "zerograd/error.hpp"
#include "zerograd/tensor.hpp"

namespace zg::nn::kernels {

using Index = std::ptrdiff_t;

std::string hw(std::size_t h, std::size_t w);

// Sizes of one convolution or pooling: input (N, C, H, W), kernel KH x KW,
// output OH x OW, stride S and padding P on both axes.
struct Geometry {
  std::size_t N, C, H, W, KH, KW, OH, OW, S, P;
  std::size_t plane() const { return H * W; }
  std::size_t out_plane() const { return OH * OW; }
  std::size_t patch() const { return C * KH * KW; }
};

void require_4d(const std::string& op, const Shape& x, const char* what, const char* layout);
void check_stride_pad(const std::string& op, int stride, int pad);
// PyTorch's limit: with pad <= kernel / 2 no window lies wholly in padding.
void check_pool_params(const std::string& op, int kernel, int stride, int pad);
// x's convolution (or pooling) with a KH x KW kernel; throws ShapeError naming
// op where the kernel does not fit the padded input.
Geometry geometry(const std::string& op, const Shape& x, std::size_t KH, std::size_t KW, int stride, int pad);
Geometry pool_geometry(const std::string& op, const Shape& x, int kernel, int stride, int pad);

std::string conv_attributes(int stride, int pad);
std::string pool_attributes(int kernel, int stride, int pad);

// The outputs o in [lo, hi) whose input o*S - P + k lies inside [0, size).
struct Span {
  std::size_t lo, hi;
};
inline Span inside(std::size_t k, const Geometry& g, std::size_t size, std::size_t out) {
  const Index S = Index(g.S);
  const auto ceil_div = [S](Index a) { return a <= 0 ? 0 : static_cast<std::size_t>((a + S - 1) / S); };
  const Index P = Index(g.P), K = Index(k);
  const std::size_t lo = std::min(ceil_div(P - K), out);
  return {lo, std::max(lo, std::min(ceil_div(Index(size) + P - K), out))};
}

}  // namespace zg::nn::kernels
