#pragma once
/// @file
/// Reductions: sum, mean, max, min, logsumexp, norm, argmax, argmin: autograd/src/ops/reduce.cpp.
#include <cstddef>

#include "zerograd/variable.hpp"

namespace zg {

// Reductions
/// The sum over axes. Empty axes reduce over all axes; negative axes count
/// from the end; keepdims keeps each reduced axis with size 1.
template <class T> Var<T> sum(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);
/// The mean over axes, likewise.
template <class T> Var<T> mean(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);
///@{
/// The maximum (minimum) over axes, as sum takes them. The gradient goes to
/// one element per reduced group: with ties, the first maximum (minimum) in
/// row-major order within the group. NaN wins over numbers.
template <class T> Var<T> max(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);
template <class T> Var<T> min(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);
///@}
/// log(sum(exp(x))), computed as m + log(sum(exp(x - m))) with m the group's
/// maximum, so it neither overflows nor underflows.
template <class T> Var<T> logsumexp(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);
/// The vector p-norm (sum |x|^p)^(1/p) over axes, as torch.linalg.vector_norm:
/// any p > 0, and p = infinity for max |x| (std::numeric_limits<double>::infinity()).
/// The gradient is sign(x) |x|^(p-1) / norm^(p-1); it is 0 where the norm is 0
/// and, for p < 1, where x is 0. For p = infinity it goes to the first largest
/// |x| of each group, as max's does. p <= 0 or NaN throws ValueError.
template <class T>
Var<T> norm(const Var<T>& x, double p = 2, const Axes& axes = {}, bool keepdims = false);
///@{
/// Position of the first maximum (minimum) along axis, as a constant Variable of
/// x's dtype (requires_grad is false).
template <class T> Var<T> argmax(const Var<T>& x, std::ptrdiff_t axis, bool keepdims = false);
template <class T> Var<T> argmin(const Var<T>& x, std::ptrdiff_t axis, bool keepdims = false);
///@}
///@{
/// The same positions as integers.
template <class T> Tensor<std::size_t> argmax_indices(const Var<T>& x, std::ptrdiff_t axis);
template <class T> Tensor<std::size_t> argmin_indices(const Var<T>& x, std::ptrdiff_t axis);
///@}

}  // namespace zg
