#pragma once
// Reductions: sum, mean, max, min, logsumexp, argmax, argmin: autograd/src/ops/reduce.cpp.
#include <cstddef>

#include "zerograd/variable.hpp"

namespace zg {

// Reductions
// Empty axes reduce over all axes; negative axes count from the end.
template <class T> Var<T> sum(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);
template <class T> Var<T> mean(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);
// The gradient goes to one element per reduced group: with ties, the first
// maximum (minimum) in row-major order within the group. NaN wins over numbers.
template <class T> Var<T> max(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);
template <class T> Var<T> min(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);
// log(sum(exp(x))), computed as m + log(sum(exp(x - m))) with m the group's
// maximum, so it neither overflows nor underflows.
template <class T> Var<T> logsumexp(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);
// Position of the first maximum (minimum) along axis, as a constant Variable of
// x's dtype (requires_grad is false).
template <class T> Var<T> argmax(const Var<T>& x, std::ptrdiff_t axis, bool keepdims = false);
template <class T> Var<T> argmin(const Var<T>& x, std::ptrdiff_t axis, bool keepdims = false);
// The same positions as integers.
template <class T> Tensor<std::size_t> argmax_indices(const Var<T>& x, std::ptrdiff_t axis);
template <class T> Tensor<std::size_t> argmin_indices(const Var<T>& x, std::ptrdiff_t axis);

}  // namespace zg
