#pragma once
// Helpers shared by the op families (private to the library).
#include <algorithm>
#include <sstream>
#include <string>

#include <xtensor/xarray.hpp>

#include "zerograd/op_registry.hpp"
#include "zerograd/ops.hpp"

namespace zg::detail {

// A number as people write it in labels: 0.5, 1.0001, 1e-07; -0 prints as 0.
// Output k of f, for f's backward. When nobody holds it any more (its
// consumers save no inputs: Note [Saved inputs]) it is
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

// gy where mask is nonzero, 0 elsewhere. A select, not gy * mask: an
// infinite gy at a position the mask drops gives 0 there, not NaN, as in
// PyTorch.
template <class T>
Var<T> select_grad(const Var<T>& mask, const Var<T>& gy) {
  return zg::where(mask, gy, Var<T>(T(0)));
}

// Axes as written in messages and graph labels: "(0, -1)", like shape_str.
std::string axes_str(const Axes& axes);

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

// A (rows, cols) array of fewer elements than this is summed over its rows
// by one column_sums call; reduce_sum splits larger ones over threads.
constexpr std::size_t kColumnSumsMax = std::size_t{1} << 16;

// Note [Narrow rows]: adding a row vector b of `cols` values to each row
// of a (rows, cols) array, and its reverse, summing the rows, are per-row
// loops. With few columns (a 10-class output layer) such a loop fills under
// two vector registers and costs its overhead on every row. The array is
// then walked flat in blocks of `period` values, a whole number of rows
// and of 8-value vectors, against b repeated to that length.
inline std::size_t narrow_row_period(std::size_t cols) {
  std::size_t g = 8;
  for (std::size_t a = cols % 8; a != 0;) g %= a, std::swap(g, a);  // gcd(cols, 8)
  return cols * (8 / g);
}
constexpr std::size_t kNarrowCols = 64;  // wider rows run the plain row loop

// Whether a (rows, cols) array is walked flat (Note [Narrow rows]) rather
// than row by row: some columns, under kNarrowCols, and two rows or more.
inline bool walk_flat(std::size_t rows, std::size_t cols) {
  return cols != 0 && cols < kNarrowCols && rows >= 2;
}

// y[at, at + P) += pattern[0, P) for each whole period of y[0, n); returns
// where they end. With P a compile-time constant the pattern stays in
// registers and the loop body unrolls: a (100, 10) bias add (P = 40) took
// 33 ns instead of 67 with the period known only at run time.
template <class T, std::size_t P>
std::size_t add_periods(T* y, std::size_t n, const T* pattern) {
  T reg[P];
  std::copy(pattern, pattern + P, reg);
  std::size_t at = 0;
  for (; at + P <= n; at += P)
    for (std::size_t i = 0; i < P; ++i) y[at + i] += reg[i];
  return at;
}

// y[r][j] += b[j] for a (rows, cols) row-major y.
template <class T>
void add_row(T* y, const T* b, std::size_t rows, std::size_t cols) {
  if (!walk_flat(rows, cols)) {
    for (std::size_t r = 0; r < rows; ++r, y += cols)
      for (std::size_t j = 0; j < cols; ++j) y[j] += b[j];
    return;
  }
  const std::size_t p = narrow_row_period(cols), n = rows * cols;
  T pattern[8 * kNarrowCols];
  for (std::size_t i = 0; i < p; i += cols) std::copy(b, b + cols, pattern + i);
  constexpr std::size_t L = 32 / sizeof(T);  // values in one AVX register; p is a multiple of 8, so of L
  std::size_t at = 0;
  switch (p / L) {  // periods of up to 8 registers
    case 1: at = add_periods<T, 1 * L>(y, n, pattern); break;
    case 2: at = add_periods<T, 2 * L>(y, n, pattern); break;
    case 3: at = add_periods<T, 3 * L>(y, n, pattern); break;
    case 4: at = add_periods<T, 4 * L>(y, n, pattern); break;
    case 5: at = add_periods<T, 5 * L>(y, n, pattern); break;
    case 6: at = add_periods<T, 6 * L>(y, n, pattern); break;
    case 7: at = add_periods<T, 7 * L>(y, n, pattern); break;
    case 8: at = add_periods<T, 8 * L>(y, n, pattern); break;
    default:
      for (; at + p <= n; at += p)
        for (std::size_t i = 0; i < p; ++i) y[at + i] += pattern[i];
  }
  for (std::size_t i = 0; at + i < n; ++i) y[at + i] += pattern[i];  // the last rows, fewer than a period
}

// out[j] = sum over r of x[r][j] for a (rows, cols) row-major x. The order
// of the additions depends only on the shape: the result is deterministic.
template <class T>
void column_sums(const T* x, std::size_t rows, std::size_t cols, T* out) {
  std::fill(out, out + cols, T(0));
  if (!walk_flat(rows, cols)) {
    for (std::size_t r = 0; r < rows; ++r, x += cols)
      for (std::size_t j = 0; j < cols; ++j) out[j] += x[j];
    return;
  }
  const std::size_t p = narrow_row_period(cols), n = rows * cols;
  T acc[8 * kNarrowCols];
  std::fill(acc, acc + p, T(0));  // not the whole array: 2 KB of memset per call
  std::size_t at = 0;
  for (; at + p <= n; at += p)
    for (std::size_t i = 0; i < p; ++i) acc[i] += x[at + i];
  for (std::size_t i = 0; at + i < n; ++i) acc[i] += x[at + i];
  for (std::size_t i = 0; i < p; i += cols)
    for (std::size_t j = 0; j < cols; ++j) out[j] += acc[i + j];
}

// y.shape[i] = x.shape[perm[i]], copied by a raw loop (ops/tensor.cpp).
template <class T>
Tensor<T> permute_array(const Tensor<T>& x, const std::vector<std::size_t>& perm);
std::vector<std::size_t> inverse_permutation(const std::vector<std::size_t>& perm);

}  // namespace zg::detail

// Instantiates a function template for float and double: pass a macro that
// expands to one explicit instantiation for type T.
#define ZG_FOR_FLOAT_AND_DOUBLE(M) M(float) M(double)
