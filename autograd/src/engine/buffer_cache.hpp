#pragma once
// Note [Buffer cache]: an array's buffer comes from posix_memalign (xsimd's
// 32-byte aligned allocator), which glibc 2.36 serves on its slow path: it
// allocates a larger block, splits off the misaligned head and the unused
// tail and frees both. That is some 800 instructions per array, plus the
// free; a 100x50 @ 50x10 matmul forward + backward makes three arrays
// around 3.8 us of GEMM. So when a Node dies, its array goes to a small
// per-thread cache, and an op that needs an output array of the same
// number of elements takes it from there (matmul, linear, ReLU, sums and
// elementwise ops do). A training step allocates the same sizes every
// time, so most of its arrays come back from the cache, in the shape they
// had (CachedBuffer keeps it).
//
// Two classes of 16 buffers each, per thread and element type, oldest out
// first: under 1 KB (so scalars never push out matrices) and 1 KB to 1 MB.
// At most 16 MB + 16 KB are held per thread and element type (float and
// double each have their own). The cache is off under AddressSanitizer
// (a recycled buffer would hide a use after free) and with
// ZEROGRAD_MALLOC_TUNING=0 in the environment (Note [malloc]).
#include <cstddef>
#include <initializer_list>

#include <xtensor/xnoalias.hpp>
#include <xtensor/xstrides.hpp>

#include "zerograd/variable.hpp"

namespace zg::detail {

// False under AddressSanitizer and with ZEROGRAD_MALLOC_TUNING=0.
bool buffer_cache_enabled();

template <class T>
using Storage = typename Tensor<T>::storage_type;

// A cached buffer, and an array with the shape it last had but no elements
// of its own: copying that array's shape, strides and backstrides costs
// half of building them anew (svector construction and moves, 15 ns).
template <class T>
struct CachedBuffer {
  Storage<T> buffer;  // empty when the slot is free
  Tensor<T> layout = Tensor<T>::from_shape({0});
};

// A slot holding a buffer of exactly n elements, if there is one; the
// caller moves the buffer out.
template <class T>
CachedBuffer<T>* take_cached(std::size_t n) noexcept;

// Offers t's buffer to the cache, which may move it out of t (and then
// also t's shape and strides, as the slot's layout).
template <class T>
void recycle(Tensor<T>& t) noexcept;

// A loop, not std::equal: that became a memcmp call, 0.5% of a small linear.
template <class T, class S>
bool same_shape(const Tensor<T>& a, const S& shape) {
  if (a.dimension() != static_cast<std::size_t>(shape.end() - shape.begin())) return false;
  auto d = shape.begin();
  for (std::size_t i = 0; i < a.dimension(); ++i, ++d)
    if (a.shape()[i] != static_cast<std::size_t>(*d)) return false;
  return true;
}
// The slot's buffer as an array of its layout's shape.
template <class T>
Tensor<T> adopt_layout(CachedBuffer<T>& slot) {
  Tensor<T> out(slot.layout);  // copies no elements: the layout has none
  out.storage() = std::move(slot.buffer);
  return out;
}
// The slot's buffer as an array of another shape of the same size.
template <class T, class S>
Tensor<T> adopt_reshaped(CachedBuffer<T>& slot, const S& shape) {
  typename Tensor<T>::inner_shape_type dims(shape.begin(), shape.end());
  typename Tensor<T>::inner_strides_type strides(dims.size());
  xt::compute_strides(dims, xt::layout_type::row_major, strides);
  return Tensor<T>(std::move(slot.buffer), std::move(dims), std::move(strides));
}

// An uninitialized array of this shape, on a cached buffer when there is
// one. Every path returns a temporary, so the array is built where the
// caller wants it (Note [Outputs in place] in output_nodes.cpp), never moved.
template <class T, class S>
Tensor<T> empty_tensor(const S& shape) {
  std::size_t n = 1;
  for (auto d : shape) n *= static_cast<std::size_t>(d);
  CachedBuffer<T>* slot = take_cached<T>(n);
  if (!slot) return Tensor<T>::from_shape(shape);
  return same_shape(slot->layout, shape) ? adopt_layout(*slot) : adopt_reshaped(*slot, shape);
}
template <class T>
Tensor<T> empty_tensor(std::initializer_list<std::size_t> shape) {
  return empty_tensor<T, std::initializer_list<std::size_t>>(shape);
}



}  // namespace zg::detail
