#pragma once
// The pooling loops: max and average pooling and their scatters, and the 2x2
// max pooling after ReLU that Conv2dReLUMaxPool runs sample by sample (Note
// [Pooling eight windows at a time] in pool.cpp).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "kernels/geometry.hpp"

namespace zg::nn::kernels {

// Pooling runs planes (n, c) in parallel, at least this many per thread.
constexpr std::size_t kPlaneGrain = 64;

// Where each output of a max pooling took its value from: per output, the
// index within its (n, c) plane of the input (32 bits: half the memory
// traffic of size_t, the pooling's bottleneck).
struct ArgMax {
  ArgMax(Shape x_shape, std::size_t out_plane)
      : x_shape(std::move(x_shape)), plane(this->x_shape[2] * this->x_shape[3]), out_plane(out_plane),
        size(this->x_shape[0] * this->x_shape[1] * out_plane), at(new std::uint32_t[size]) {}
  Shape x_shape;
  std::size_t plane, out_plane, size;
  std::unique_ptr<std::uint32_t[]> at;
  std::size_t planes() const { return out_plane ? size / out_plane : 0; }
  // Calls fn(input index, output index) for every output of planes [p0, p1),
  // as flat indices.
  template <class F>
  void each(std::size_t p0, std::size_t p1, F&& fn) const {
    for (std::size_t p = p0, yi = p0 * out_plane; p < p1; ++p)
      for (std::size_t i = 0; i < out_plane; ++i, ++yi) fn(p * plane + at[yi], yi);
  }
};

// y = each window's maximum of x (padding is -inf; the first maximum in
// row-major order wins, a NaN wins once), and its position into arg.
template <class T>
void max_pool2d(const T* x, const Geometry& g, T* y, ArgMax& arg);
// The same for 2x2 windows, stride 2, no padding, on planes [p0, p1) of x
// (Note [Pooling eight windows at a time] in pool_2x2.cpp).
template <class T>
void max_pool_2x2(const T* x, const Geometry& g, std::size_t p0, std::size_t p1, T* y, std::uint32_t* arg);
// y = x at the saved positions; gx = gy added onto them (zero elsewhere).
template <class T>
void gather(const T* x, const ArgMax& arg, T* y);
template <class T>
void scatter(const T* gy, const ArgMax& arg, T* gx);

// y (zero on entry) += the sum of each window (padding counts as zeros);
// gx (zero on entry) += gy * scale spread over each window.
template <class T>
void window_sums(const T* x, const Geometry& g, T* y);
template <class T>
void spread(const T* gy, const Geometry& g, T scale, T* gx);

// Conv2dReLUMaxPool's pooling. One sample's planes y (planes, p.H, p.W),
// after ReLU, pooled 2x2 into out by max_pool2d's rule, and each maximum's
// position byte into at (if not null): 0-3 (row-major), or 4 where the
// maximum is not > 0, where ReLU passes no gradient.
template <class T>
void relu_max_pool_2x2(const T* y, const Geometry& p, std::size_t planes, T* out, std::uint8_t* at);
// Its backward: the pooled gy (planes, OH / 2, OW / 2) spread into full
// (planes, OH, OW) to each window's position byte, 0 elsewhere.
template <class T>
void unpool_2x2(const T* gy, const std::uint8_t* at, std::size_t planes, std::size_t OH, std::size_t OW, T* full);
// The position bytes of (N, FN / block, PM, block) in (N, FN, PM) order.
std::unique_ptr<std::uint8_t[]> unblocked(const std::uint8_t* at, std::size_t N, std::size_t FN, std::size_t PM,
                                          std::size_t block);
// The position bytes as an ArgMax over the (N, FN, OH, OW) input of the
// pooling, and on[i] = 1 where byte i is not 4 (0 there).
template <class T>
std::shared_ptr<ArgMax> argmax_of_bytes(const std::uint8_t* at, const Shape& full, T* on);

}  // namespace zg::nn::kernels
