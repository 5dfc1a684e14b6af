#pragma once
// Helpers shared by the op families (private to the library).
#include <algorithm>
#include <sstream>
#include <string>

#include <xtensor/xarray.hpp>

#include "zerograd/ops.hpp"

namespace zg::detail {

// A number as people write it in labels: 0.5, 1.0001, 1e-07; -0 prints as 0.
inline std::string num_str(double v) {
  std::ostringstream out;
  out.precision(6);
  out << (v == 0 ? 0.0 : v);
  return out.str();
}

// Output k of f, for f's backward. When nobody holds it any more (its
// consumers save no inputs: Note [Saved inputs] in engine.cpp) it is
// recomputed by again(), from f's saved inputs, so that a create_graph
// backward still differentiates through it.
template <class T, class F>
Var<T> output_or(const Function<T>& f, std::size_t k, F&& again) {
  Var<T> y = f.output(k);
  return y.defined() ? y : again();
}

// A constant (no graph, no gradient) holding the values of e as T.
template <class T, class E>
Var<T> constant(const xt::xexpression<E>& e) {
  return Var<T>(Tensor<T>(xt::cast<T>(e.derived_cast())));
}

template <class T>
Shape shape_of(const Tensor<T>& t) {
  return Shape(t.shape().begin(), t.shape().end());
}

// Sorted, unique, non-negative axes; empty means every axis.
// Sorted, non-negative axes of an input of this shape (empty axes: all of
// them); a bad or repeated axis throws ShapeError naming op and the shape.
std::vector<std::size_t> normalize_axes(const Axes& axes, const Shape& shape, const char* op);

// The shape a reduction over axes keeps with keepdims = true.
Shape keepdims_shape(const Shape& in, const std::vector<std::size_t>& axes);

template <class T>
Tensor<T> sum_to_array(const Tensor<T>& x, const Shape& shape);

// Sums x over the given (sorted, unique) axes; the result drops them. A raw
// kernel over contiguous runs (xtensor's reducers were several times slower
// for (N, C, H, W) -> (C), the bias gradient of a convolution).
template <class T>
Tensor<T> reduce_sum(const Tensor<T>& x, const std::vector<std::size_t>& axes);

// y.shape[i] = x.shape[perm[i]], copied by a raw loop (ops_tensor.cpp).
template <class T>
Tensor<T> permute_array(const Tensor<T>& x, const std::vector<std::size_t>& perm);
std::vector<std::size_t> inverse_permutation(const std::vector<std::size_t>& perm);

}  // namespace zg::detail

// Instantiates a function template for float and double: pass a macro that
// expands to one explicit instantiation for type T.
#define ZG_FOR_FLOAT_AND_DOUBLE(M) M(float) M(double)
