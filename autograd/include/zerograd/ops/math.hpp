#pragma once
/// @file
/// Elementwise math and comparisons: autograd/src/ops/math.cpp.
#include <type_traits>

#include "zerograd/ops/arithmetic.hpp"
#include "zerograd/variable.hpp"

namespace zg {

/// The type of a scalar argument, T itself; see Scalar.
template <class T>
struct ScalarOf { using type = T; /**< T */ };
/// A scalar argument whose type comes from the Variable, so clip(x, 0, 1) and
/// leaky_relu(x, 0.2) work for float x without casts. Not deduced: T comes
/// from the Variable.
template <class T>
using Scalar = typename ScalarOf<T>::type;

// Elementwise math
template <class T> Var<T> exp(const Var<T>& x);  ///< e^x elementwise
template <class T> Var<T> log(const Var<T>& x);  ///< the natural logarithm, elementwise
template <class T> Var<T> sqrt(const Var<T>& x);  ///< the square root, elementwise
template <class T> Var<T> sin(const Var<T>& x);  ///< sine, elementwise
template <class T> Var<T> cos(const Var<T>& x);  ///< cosine, elementwise
template <class T> Var<T> tanh(const Var<T>& x);  ///< hyperbolic tangent, elementwise
/// |x| elementwise; the gradient is sign(x), 0 at x = 0.
template <class T> Var<T> abs(const Var<T>& x);
/// Values limited to [lo, hi]; the gradient is 1 strictly inside, 0 elsewhere.
/// Throws ValueError if lo > hi.
template <class T> Var<T> clip(const Var<T>& x, Scalar<T> lo, Scalar<T> hi);
///@{
/// The larger (maximum) or smaller (minimum) of a and b, elementwise, with
/// numpy broadcasting. On ties (a == b) the whole gradient goes to the first
/// argument a, none to b.
template <class T> Var<T> maximum(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> minimum(const Var<T>& a, const Var<T>& b);
///@}

// Comparisons
///@{
/// a > b, a < b, a >= b, a <= b, a == b, a != b as 0/1 masks of the same
/// dtype, with numpy broadcasting; b may be a number. They are constants:
/// requires_grad is false and no graph is recorded.
template <class T> Var<T> greater(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> less(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> greater_equal(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> less_equal(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> equal(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> not_equal(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> greater(const Var<T>& a, Scalar<T> b);
template <class T> Var<T> less(const Var<T>& a, Scalar<T> b);
template <class T> Var<T> greater_equal(const Var<T>& a, Scalar<T> b);
template <class T> Var<T> less_equal(const Var<T>& a, Scalar<T> b);
template <class T> Var<T> equal(const Var<T>& a, Scalar<T> b);
template <class T> Var<T> not_equal(const Var<T>& a, Scalar<T> b);
///@}

/// a where cond != 0, else b; cond, a and b broadcast together. cond gets no
/// gradient (it is a mask, e.g. from a comparison).
template <class T> Var<T> where(const Var<T>& cond, const Var<T>& a, const Var<T>& b);

// Comparison operators: masks, as the functions above
///@{
/// The comparisons as operators, a number allowed on either side: masks, as
/// greater, less, greater_equal and less_equal.
template <class T> Var<T> operator>(const Var<T>& a, const Var<T>& b) { return zg::greater(a, b); }
template <class T> Var<T> operator<(const Var<T>& a, const Var<T>& b) { return zg::less(a, b); }
template <class T>
Var<T> operator>=(const Var<T>& a, const Var<T>& b) { return zg::greater_equal(a, b); }
template <class T>
Var<T> operator<=(const Var<T>& a, const Var<T>& b) { return zg::less_equal(a, b); }

template <class T, class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
Var<T> operator>(const Var<T>& a, S b) { return zg::greater(a, static_cast<T>(b)); }
template <class T, class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
Var<T> operator<(const Var<T>& a, S b) { return zg::less(a, static_cast<T>(b)); }
template <class T, class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
Var<T> operator>=(const Var<T>& a, S b) { return zg::greater_equal(a, static_cast<T>(b)); }
template <class T, class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
Var<T> operator<=(const Var<T>& a, S b) { return zg::less_equal(a, static_cast<T>(b)); }
template <class T, class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
Var<T> operator>(S a, const Var<T>& b) { return zg::less(b, static_cast<T>(a)); }
template <class T, class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
Var<T> operator<(S a, const Var<T>& b) { return zg::greater(b, static_cast<T>(a)); }
template <class T, class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
Var<T> operator>=(S a, const Var<T>& b) { return zg::less_equal(b, static_cast<T>(a)); }
template <class T, class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
Var<T> operator<=(S a, const Var<T>& b) { return zg::greater_equal(b, static_cast<T>(a)); }
///@}

}  // namespace zg
