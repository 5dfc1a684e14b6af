#pragma once
/// @file
/// Arithmetic with numpy broadcasting, the operators, and the float/double guard: autograd/src/ops/arithmetic.cpp.
#include <cstddef>
#include <type_traits>

#include "zerograd/apply.hpp"
#include "zerograd/variable.hpp"

namespace zg {

/// Mixing float and double in one op is a compile-time error naming both.
template <class A, class B>
struct MixedDTypes {
  static_assert(std::is_same_v<A, B>,
                "zerograd: an op received a float Variable and a double Variable (Variable "
                "and Variable64); convert one explicitly with .to<float>() or .to<double>()");
};

// Arithmetic, numpy broadcasting
/// a + b, elementwise with numpy broadcasting (ShapeError naming both shapes when they do not
/// broadcast).
template <class T> Var<T> add(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b);  ///< a - b, likewise
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b);  ///< a * b, likewise
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b);  ///< a / b, likewise
template <class T> Var<T> neg(const Var<T>& x);  ///< -x
template <class T> Var<T> pow(const Var<T>& x, T exponent);  ///< x^exponent elementwise, a constant exponent
template <class T> Var<T> square(const Var<T>& x);  ///< x^2 elementwise
// With a constant on one side (the constant gets no gradient).
template <class T> Var<T> add(const Var<T>& a, T b);  ///< a + b for a constant b
template <class T> Var<T> mul(const Var<T>& a, T b);  ///< a * b for a constant b
template <class T> Var<T> rsub(T a, const Var<T>& b);  ///< a - b
template <class T> Var<T> rdiv(T a, const Var<T>& b);  ///< a / b

// Operators
template <class T> Var<T> operator+(const Var<T>& a, const Var<T>& b) { return zg::add(a, b); }  ///< add(a, b)
template <class T> Var<T> operator-(const Var<T>& a, const Var<T>& b) { return zg::sub(a, b); }  ///< sub(a, b)
template <class T> Var<T> operator*(const Var<T>& a, const Var<T>& b) { return zg::mul(a, b); }  ///< mul(a, b)
template <class T> Var<T> operator/(const Var<T>& a, const Var<T>& b) { return zg::div(a, b); }  ///< div(a, b)
template <class T> Var<T> operator-(const Var<T>& x) { return zg::neg(x); }  ///< neg(x)

/// Enables the arithmetic operators with a plain number S (int, float,
/// double, ...) on one side.
template <class S>
using if_scalar = std::enable_if_t<std::is_arithmetic_v<S>, int>;

///@{
/// The operators with a number on either side, converted to the Variable's
/// dtype: add, rsub, mul, rdiv with a constant.
template <class T, class S, if_scalar<S> = 0>
Var<T> operator+(const Var<T>& a, S b) { return zg::add(a, static_cast<T>(b)); }
template <class T, class S, if_scalar<S> = 0>
Var<T> operator+(S a, const Var<T>& b) { return zg::add(b, static_cast<T>(a)); }
template <class T, class S, if_scalar<S> = 0>
Var<T> operator-(const Var<T>& a, S b) { return zg::add(a, static_cast<T>(-b)); }
template <class T, class S, if_scalar<S> = 0>
Var<T> operator-(S a, const Var<T>& b) { return zg::rsub(static_cast<T>(a), b); }
template <class T, class S, if_scalar<S> = 0>
Var<T> operator*(const Var<T>& a, S b) { return zg::mul(a, static_cast<T>(b)); }
template <class T, class S, if_scalar<S> = 0>
Var<T> operator*(S a, const Var<T>& b) { return zg::mul(b, static_cast<T>(a)); }
template <class T, class S, if_scalar<S> = 0>
Var<T> operator/(const Var<T>& a, S b) { return zg::mul(a, static_cast<T>(1) / static_cast<T>(b)); }
template <class T, class S, if_scalar<S> = 0>
Var<T> operator/(S a, const Var<T>& b) { return zg::rdiv(static_cast<T>(a), b); }
///@}

// float with double is refused at compile time, naming both types.
#define ZG_REFUSE_MIXED(OP)                                                    \
  template <class A, class B, std::enable_if_t<!std::is_same_v<A, B>, int> = 0> \
  Var<A> OP(const Var<A>& a, const Var<B>&) {                                  \
    MixedDTypes<A, B> refused;                                                 \
    (void)refused;                                                             \
    return a;                                                                  \
  }
ZG_REFUSE_MIXED(operator+)
ZG_REFUSE_MIXED(operator-)
ZG_REFUSE_MIXED(operator*)
ZG_REFUSE_MIXED(operator/)
ZG_REFUSE_MIXED(add)
ZG_REFUSE_MIXED(sub)
ZG_REFUSE_MIXED(mul)
ZG_REFUSE_MIXED(div)
#undef ZG_REFUSE_MIXED

/// The shape numpy broadcasting gives a and b; throws ShapeError naming op.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace zg
