// Elementwise math (exp, log, sqrt, sin, cos, tanh, abs, clip), maximum and
// minimum, comparison masks and where. Gradients that depend on which side of
// a comparison x fell are products with constant 0/1 masks, so they stay
// differentiable in gy for higher-order gradients.
#include <cmath>

#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "engine/buffer_cache.hpp"
#include "ops/common.hpp"

namespace zg {
namespace {

using detail::constant;


// gy where mask is set, summed back to x's shape, or an empty Variable if x needs no gradient.
template <class T>
Var<T> masked_grad(const Var<T>& gy, const Var<T>& mask, const Var<T>& x, bool needed) {
  return needed ? zg::sum_to(detail::select_grad(mask, gy), x.shape()) : Var<T>();
}

template <class T>
struct Exp final : Function<T> {
  std::string name() const override { return "Exp"; }
  Outputs<T> forward(const TensorList<T>& x) override { return xt::exp(x[0]); }
  // d exp(x) = exp(x) dx = y dx
  Variables<T> backward(const Variables<T>& gy) override {
    return {gy[0] * detail::output_or(*this, 0, [&] { return zg::exp(this->input(0)); })};
  }
  std::string rule(std::size_t) const override { return "upstream \u00d7 exp(x), the output itself"; }
};
ZG_REGISTER_OP(Exp);

template <class T>
struct Log final : Function<T> {
  std::string name() const override { return "Log"; }
  Outputs<T> forward(const TensorList<T>& x) override { return xt::log(x[0]); }
  // d log(x) = dx / x
  Variables<T> backward(const Variables<T>& gy) override { return {gy[0] / this->input(0)}; }
  std::string rule(std::size_t) const override { return "upstream / x"; }
};
ZG_REGISTER_OP(Log);

template <class T>
struct Sqrt final : Function<T> {
  std::string name() const override { return "Sqrt"; }
  Outputs<T> forward(const TensorList<T>& x) override { return xt::sqrt(x[0]); }
  // d sqrt(x) = dx / (2 y)
  Variables<T> backward(const Variables<T>& gy) override {
    return {gy[0] / (detail::output_or(*this, 0, [&] { return zg::sqrt(this->input(0)); }) * T(2))};
  }
  std::string rule(std::size_t) const override { return "upstream / (2 sqrt(x))"; }
};
ZG_REGISTER_OP(Sqrt);

template <class T>
struct Sin final : Function<T> {
  std::string name() const override { return "Sin"; }
  Outputs<T> forward(const TensorList<T>& x) override { return xt::sin(x[0]); }
  // d sin(x) = cos(x) dx
  Variables<T> backward(const Variables<T>& gy) override {
    return {gy[0] * zg::cos(this->input(0))};
  }
  std::string rule(std::size_t) const override { return "upstream \u00d7 cos(x)"; }
};
ZG_REGISTER_OP(Sin);

template <class T>
struct Cos final : Function<T> {
  std::string name() const override { return "Cos"; }
  Outputs<T> forward(const TensorList<T>& x) override { return xt::cos(x[0]); }
  // d cos(x) = -sin(x) dx
  Variables<T> backward(const Variables<T>& gy) override {
    return {-(gy[0] * zg::sin(this->input(0)))};
  }
  std::string rule(std::size_t) const override { return "-upstream \u00d7 sin(x)"; }
};
ZG_REGISTER_OP(Cos);

template <class T>
struct Tanh final : Function<T> {
  std::string name() const override { return "Tanh"; }
  Outputs<T> forward(const TensorList<T>& x) override { return xt::tanh(x[0]); }
  // d tanh(x) = (1 - y^2) dx
  Variables<T> backward(const Variables<T>& gy) override {
    return {gy[0] * (T(1) - zg::square(detail::output_or(*this, 0, [&] { return zg::tanh(this->input(0)); })))};
  }
  std::string rule(std::size_t) const override { return "upstream \u00d7 (1 - y^2)"; }
};
ZG_REGISTER_OP(Tanh);

template <class T>
struct Abs final : Function<T> {
  std::string name() const override { return "Abs"; }
  Outputs<T> forward(const TensorList<T>& x) override { return xt::abs(x[0]); }
  // d |x| = sign(x) dx, with sign(0) = 0
  Variables<T> backward(const Variables<T>& gy) override {
    return {gy[0] * constant<T>(xt::sign(this->input(0).data()))};
  }
  std::string rule(std::size_t) const override { return "upstream \u00d7 sign(x)"; }
};
ZG_REGISTER_OP(Abs);

template <class T>
struct Clip final : Function<T> {
  Clip(T lo, T hi) : lo(lo), hi(hi) {}
  T lo, hi;
  std::string name() const override { return "Clip"; }
  std::string attributes() const override {
    return "lo=" + std::to_string(lo) + ", hi=" + std::to_string(hi);
  }
  OpFields fields() const override { return {{"lo", field_of(lo)}, {"hi", field_of(hi)}}; }
  Outputs<T> forward(const TensorList<T>& x) override { return xt::clip(x[0], lo, hi); }
  // d clip(x) = dx strictly inside (lo, hi), 0 elsewhere
  Variables<T> backward(const Variables<T>& gy) override {
    const Tensor<T>& x = this->input(0).data();
    return {detail::select_grad(constant<T>(xt::greater(x, lo) && xt::less(x, hi)), gy[0])};
  }
  std::string rule(std::size_t) const override { return "upstream where x was inside the range, 0 where it was clipped"; }
};
ZG_REGISTER_OP(Clip);

template <class T>
struct Maximum final : Function<T> {
  std::string name() const override { return "Maximum"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    broadcast_shapes(zg::shape_of(x[0]), zg::shape_of(x[1]), "Maximum");
    return xt::maximum(x[0], x[1]);
  }
  // d max(a, b) = da where a >= b (ties go to a), db elsewhere
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& a = this->input(0);
    const Var<T>& b = this->input(1);
    const Var<T> to_a = constant<T>(xt::greater_equal(a.data(), b.data()));
    const Var<T> to_b = constant<T>(xt::less(a.data(), b.data()));
    return {masked_grad(gy[0], to_a, a, this->needs_input_grad(0)),
            masked_grad(gy[0], to_b, b, this->needs_input_grad(1))};
  }
  std::string rule(std::size_t) const override { return "upstream where this input was the larger, 0 elsewhere"; }
};
ZG_REGISTER_OP(Maximum);

template <class T>
struct Minimum final : Function<T> {
  std::string name() const override { return "Minimum"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    broadcast_shapes(zg::shape_of(x[0]), zg::shape_of(x[1]), "Minimum");
    return xt::minimum(x[0], x[1]);
  }
  // d min(a, b) = da where a <= b (ties go to a), db elsewhere
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& a = this->input(0);
    const Var<T>& b = this->input(1);
    const Var<T> to_a = constant<T>(xt::less_equal(a.data(), b.data()));
    const Var<T> to_b = constant<T>(xt::greater(a.data(), b.data()));
    return {masked_grad(gy[0], to_a, a, this->needs_input_grad(0)),
            masked_grad(gy[0], to_b, b, this->needs_input_grad(1))};
  }
  std::string rule(std::size_t) const override { return "upstream where this input was the smaller, 0 elsewhere"; }
};
ZG_REGISTER_OP(Minimum);

template <class T>
struct Where final : Function<T> {
  std::string name() const override { return "Where"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape c = zg::shape_of(x[0]), a = zg::shape_of(x[1]), b = zg::shape_of(x[2]);
    try {
      broadcast_shapes(broadcast_shapes(c, a, "Where"), b, "Where");
    } catch (const ShapeError&) {
      throw ShapeError("Where: shapes " + shape_str(c) + " (cond), " + shape_str(a) + " and " +
                       shape_str(b) + " cannot be broadcast together");
    }
    return xt::where(xt::not_equal(x[0], T(0)), x[1], x[2]);
  }
  // d where(c, a, b) = da where c != 0, db elsewhere; c is a constant mask
  Variables<T> backward(const Variables<T>& gy) override {
    const Tensor<T>& cond = this->input(0).data();
    const Var<T> to_a = constant<T>(xt::not_equal(cond, T(0)));
    const Var<T> to_b = constant<T>(xt::equal(cond, T(0)));
    return {Var<T>(), masked_grad(gy[0], to_a, this->input(1), this->needs_input_grad(1)),
            masked_grad(gy[0], to_b, this->input(2), this->needs_input_grad(2))};
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "none for the condition"
                  : "upstream where the condition chose this input, 0 elsewhere";
  }
};
ZG_REGISTER_OP(Where);

// Comparisons record nothing: their results are constants.
template <class T, class Cmp>
Var<T> compare(const Var<T>& a, const Var<T>& b, const char* op, Cmp cmp) {
  broadcast_shapes(a.shape(), b.shape(), op);
  return constant<T>(cmp(a.data(), b.data()));
}

}  // namespace

template <class T> Var<T> exp(const Var<T>& x) { return apply1<Exp<T>>({x}); }
template <class T> Var<T> log(const Var<T>& x) { return apply1<Log<T>>({x}); }
template <class T> Var<T> sqrt(const Var<T>& x) { return apply1<Sqrt<T>>({x}); }
template <class T> Var<T> sin(const Var<T>& x) { return apply1<Sin<T>>({x}); }
template <class T> Var<T> cos(const Var<T>& x) { return apply1<Cos<T>>({x}); }
template <class T> Var<T> tanh(const Var<T>& x) { return apply1<Tanh<T>>({x}); }
template <class T> Var<T> abs(const Var<T>& x) { return apply1<Abs<T>>({x}); }
template <class T>
Var<T> clip(const Var<T>& x, Scalar<T> lo, Scalar<T> hi) {
  if (!(lo <= hi))
    throw ValueError("Clip: lo (" + std::to_string(lo) + ") must not exceed hi (" +
                     std::to_string(hi) + ")");
  return apply1<Clip<T>>({x}, lo, hi);
}
template <class T>
Var<T> maximum(const Var<T>& a, const Var<T>& b) {
  return apply1<Maximum<T>>({a, b});
}
template <class T>
Var<T> minimum(const Var<T>& a, const Var<T>& b) {
  return apply1<Minimum<T>>({a, b});
}
template <class T>
Var<T> where(const Var<T>& cond, const Var<T>& a, const Var<T>& b) {
  return apply1<Where<T>>({cond, a, b});
}

#define ZG_COMPARISON(NAME, OP, XT)                                                    \
  template <class T>                                                                   \
  Var<T> NAME(const Var<T>& a, const Var<T>& b) {                                      \
    return compare(a, b, OP, [](const auto& p, const auto& q) { return xt::XT(p, q); }); \
  }                                                                                    \
  template <class T>                                                                   \
  Var<T> NAME(const Var<T>& a, Scalar<T> b) {                                          \
    return NAME(a, Var<T>(b));                                                         \
  }
ZG_COMPARISON(greater, "Greater", greater)
ZG_COMPARISON(less, "Less", less)
ZG_COMPARISON(greater_equal, "GreaterEqual", greater_equal)
ZG_COMPARISON(less_equal, "LessEqual", less_equal)
ZG_COMPARISON(equal, "Equal", equal)
ZG_COMPARISON(not_equal, "NotEqual", not_equal)
#undef ZG_COMPARISON

#define ZG_INSTANTIATE(T)                                                   \
  template Var<T> exp(const Var<T>&);                                       \
  template Var<T> log(const Var<T>&);                                       \
  template Var<T> sqrt(const Var<T>&);                                      \
  template Var<T> sin(const Var<T>&);                                       \
  template Var<T> cos(const Var<T>&);                                       \
  template Var<T> tanh(const Var<T>&);                                      \
  template Var<T> abs(const Var<T>&);                                       \
  template Var<T> clip(const Var<T>&, T, T);                                \
  template Var<T> maximum(const Var<T>&, const Var<T>&);                    \
  template Var<T> minimum(const Var<T>&, const Var<T>&);                    \
  template Var<T> where(const Var<T>&, const Var<T>&, const Var<T>&);       \
  template Var<T> greater(const Var<T>&, const Var<T>&);                    \
  template Var<T> less(const Var<T>&, const Var<T>&);                       \
  template Var<T> greater_equal(const Var<T>&, const Var<T>&);              \
  template Var<T> less_equal(const Var<T>&, const Var<T>&);                 \
  template Var<T> equal(const Var<T>&, const Var<T>&);                      \
  template Var<T> not_equal(const Var<T>&, const Var<T>&);                  \
  template Var<T> greater(const Var<T>&, T);                                \
  template Var<T> less(const Var<T>&, T);                                   \
  template Var<T> greater_equal(const Var<T>&, T);                          \
  template Var<T> less_equal(const Var<T>&, T);                             \
  template Var<T> equal(const Var<T>&, T);                                  \
  template Var<T> not_equal(const Var<T>&, T);
ZG_FOR_FLOAT_AND_DOUBLE(ZG_INSTANTIATE)
#undef ZG_INSTANTIATE

}  // namespace zg
