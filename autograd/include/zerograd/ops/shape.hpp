#pragma once
/// @file
/// reshape, broadcast_to and sum_to, each the backward of another: autograd/src/ops/shape.cpp.
#include "zerograd/variable.hpp"

namespace zg {

// Shape
/// The same values in shape (row-major); the sizes must match (ShapeError).
template <class T> Var<T> reshape(const Var<T>& x, const Shape& shape);
/// x repeated to shape by numpy's broadcasting rules (ShapeError otherwise).
template <class T> Var<T> broadcast_to(const Var<T>& x, const Shape& shape);
/// Sums x down to shape (the reverse of numpy broadcasting).
template <class T> Var<T> sum_to(const Var<T>& x, const Shape& shape);

}  // namespace zg
