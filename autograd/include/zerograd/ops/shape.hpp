#pragma once
// reshape, broadcast_to and sum_to, each the backward of another: autograd/src/ops/shape.cpp.
#include "zerograd/variable.hpp"

namespace zg {

// Shape
template <class T> Var<T> reshape(const Var<T>& x, const Shape& shape);
template <class T> Var<T> broadcast_to(const Var<T>& x, const Shape& shape);
// Sums x down to shape (the reverse of numpy broadcasting).
template <class T> Var<T> sum_to(const Var<T>& x, const Shape& shape);

}  // namespace zg
