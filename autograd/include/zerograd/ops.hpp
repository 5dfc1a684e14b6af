#pragma once
// Differentiable operations on Variables. Each is a Function defined in
// autograd/src/ops_<family>.cpp and instantiated there for float and double.
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "zerograd/apply.hpp"
#include "zerograd/variable.hpp"

namespace zg {

// Mixing float and double in one op is a compile-time error naming both.
template <class A, class B>
struct MixedDTypes {
  static_assert(std::is_same_v<A, B>,
                "zerograd: an op received a float Variable and a double Variable (Variable "
                "and Variable64); convert one explicitly with .to<float>() or .to<double>()");
};

// Arithmetic (ops_arithmetic.cpp), numpy broadcasting
template <class T> Var<T> add(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> neg(const Var<T>& x);
template <class T> Var<T> pow(const Var<T>& x, T exponent);
template <class T> Var<T> square(const Var<T>& x);
// With a constant on one side (the constant gets no gradient).
template <class T> Var<T> add(const Var<T>& a, T b);
template <class T> Var<T> mul(const Var<T>& a, T b);
template <class T> Var<T> rsub(T a, const Var<T>& b);  // a - b
template <class T> Var<T> rdiv(T a, const Var<T>& b);  // a / b

// Shape (ops_shape.cpp)
template <class T> Var<T> reshape(const Var<T>& x, const Shape& shape);
template <class T> Var<T> broadcast_to(const Var<T>& x, const Shape& shape);
// Sums x down to shape (the reverse of numpy broadcasting).
template <class T> Var<T> sum_to(const Var<T>& x, const Shape& shape);

// Reductions (ops_reduce.cpp)
// Empty axes reduce over all axes; negative axes count from the end.
template <class T> Var<T> sum(const Var<T>& x, const Axes& axes = {}, bool keepdims = false);

// Operators
template <class T> Var<T> operator+(const Var<T>& a, const Var<T>& b) { return zg::add(a, b); }
template <class T> Var<T> operator-(const Var<T>& a, const Var<T>& b) { return zg::sub(a, b); }
template <class T> Var<T> operator*(const Var<T>& a, const Var<T>& b) { return zg::mul(a, b); }
template <class T> Var<T> operator/(const Var<T>& a, const Var<T>& b) { return zg::div(a, b); }
template <class T> Var<T> operator-(const Var<T>& x) { return zg::neg(x); }

template <class S>
using if_scalar = std::enable_if_t<std::is_arithmetic_v<S>, int>;

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

// Names of every differentiable Function autograd defines (autograd/src/op_list.cpp;
// nn's are zg::nn::differentiable_ops()).
std::vector<std::string> differentiable_ops();

// The shape numpy broadcasting gives a and b; throws ShapeError naming op.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace zg

// The other op families.
#include "zerograd/ops_math.hpp"
#include "zerograd/ops_tensor.hpp"
#include "zerograd/ops_linalg.hpp"
