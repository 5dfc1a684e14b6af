#pragma once
/// @file
/// The array type under every Variable, zg::Tensor, and building one from
/// nested lists.
#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include <xsimd/memory/xsimd_aligned_allocator.hpp>
#include <xtensor/xarray.hpp>

#include "zerograd/error.hpp"

namespace zg {

// Note [Fixed alignment]: xt::xarray<T>'s default allocator follows the
// compiler's arch flags, so its type, and every signature using it, would
// change with -march. Tensor's allocator is fixed at 64 bytes (enough for any
// SIMD width): a program built with other flags links to the library and
// shares arrays with it.
/// The array under every Variable: an xtensor xarray of T, row-major, whose
/// allocator aligns to 64 bytes (Note [Fixed alignment]).
template <class T>
using Tensor = xt::xarray<T, xt::layout_type::row_major, xsimd::aligned_allocator<T, 64>>;

template <class T>
std::string to_string(const Tensor<T>& t);  ///< an array as xtensor prints it

/// An array's shape as a Shape, to compare or keep.
template <class T>
Shape shape_of(const Tensor<T>& t) {
  return Shape(t.shape().begin(), t.shape().end());
}

namespace detail {
template <class T>
Tensor<T> from_values(const Shape& shape, const std::vector<T>& values);  // variable.cpp
template <class T, class U>
void flatten_lists(const U& v, std::size_t, Shape&, std::vector<T>& values) {
  values.push_back(static_cast<T>(v));
}
template <class T, class L>
void flatten_lists(std::initializer_list<L> l, std::size_t depth, Shape& shape, std::vector<T>& values) {
  if (shape.size() == depth) shape.push_back(l.size());
  else if (shape[depth] != l.size())
    throw ShapeError("Variable: a nested list with rows of " + std::to_string(shape[depth]) + " and of " +
                     std::to_string(l.size()) + " values at depth " + std::to_string(depth));
  for (const L& x : l) flatten_lists<T>(x, depth + 1, shape, values);
}
template <class T, class L>
Tensor<T> from_lists(std::initializer_list<L> lists) {
  Shape shape;
  std::vector<T> values;
  flatten_lists<T>(lists, 0, shape, values);
  return from_values<T>(shape, values);
}
}  // namespace detail

}  // namespace zg
