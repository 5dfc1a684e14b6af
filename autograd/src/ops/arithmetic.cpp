// Arithmetic with numpy broadcasting: add, sub, mul, div, neg, pow, square.
// Each backward reduces its gradients to the input's shape with sum_to.
#include <cmath>

#include <xtensor/xmath.hpp>

#include "engine/buffer_cache.hpp"
#include "ops/common.hpp"

namespace zg {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const std::size_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                       " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

template <class T>
Var<T> reduce_like(const Var<T>& g, const Shape& shape) {
  return g.shape() == shape ? g : zg::sum_to(g, shape);
}
template <class T>
Var<T> reduce_like(const Var<T>& g, const Var<T>& x) {
  return reduce_like(g, x.shape());
}

template <class T>
struct Add final : Function<T> {
  std::string name() const override { return "Add"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    broadcast_shapes(zg::shape_of(x[0]), zg::shape_of(x[1]), "Add");
    return x[0] + x[1];
  }
  // d(a + b) = da + db: only the inputs' shapes are needed.
  bool saves_inputs() const override { return false; }
  Variables<T> backward(const Variables<T>& gy) override {
    return {reduce_like(gy[0], this->input_shape(0)), reduce_like(gy[0], this->input_shape(1))};
  }
  std::string rule(std::size_t) const override { return "add passes the upstream gradient on unchanged"; }
};
ZG_REGISTER_OP(Add);

template <class T>
struct Sub final : Function<T> {
  std::string name() const override { return "Sub"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    broadcast_shapes(zg::shape_of(x[0]), zg::shape_of(x[1]), "Sub");
    return x[0] - x[1];
  }
  // d(a - b) = da - db: only the inputs' shapes are needed.
  bool saves_inputs() const override { return false; }
  Variables<T> backward(const Variables<T>& gy) override {
    return {reduce_like(gy[0], this->input_shape(0)), reduce_like(-gy[0], this->input_shape(1))};
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "passes the upstream gradient on unchanged"
                  : "the upstream gradient, negated";
  }
};
ZG_REGISTER_OP(Sub);

template <class T>
struct Mul final : Function<T> {
  std::string name() const override { return "Mul"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    broadcast_shapes(zg::shape_of(x[0]), zg::shape_of(x[1]), "Mul");
    return x[0] * x[1];
  }
  // d(a b) = b da + a db
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& a = this->input(0);
    const Var<T>& b = this->input(1);
    Var<T> ga = this->needs_input_grad(0) ? reduce_like(gy[0] * b, a) : Var<T>();
    Var<T> gb = this->needs_input_grad(1) ? reduce_like(gy[0] * a, b) : Var<T>();
    return {ga, gb};
  }
  std::string rule(std::size_t) const override { return "multiply sends the upstream gradient times the other input"; }
};
ZG_REGISTER_OP(Mul);

template <class T>
struct Div final : Function<T> {
  std::string name() const override { return "Div"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    broadcast_shapes(zg::shape_of(x[0]), zg::shape_of(x[1]), "Div");
    return x[0] / x[1];
  }
  // d(a / b) = da / b - a db / b^2
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& a = this->input(0);
    const Var<T>& b = this->input(1);
    Var<T> ga = this->needs_input_grad(0) ? reduce_like(gy[0] / b, a) : Var<T>();
    Var<T> gb = this->needs_input_grad(1) ? reduce_like(-gy[0] * a / (b * b), b) : Var<T>();
    return {ga, gb};
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "upstream / the divisor"
                  : "-upstream \u00d7 the dividend / divisor^2";
  }
};
ZG_REGISTER_OP(Div);

template <class T>
struct Neg final : Function<T> {
  std::string name() const override { return "Neg"; }
  Outputs<T> forward(const TensorList<T>& x) override { return -x[0]; }
  // d(-x) = -dx
  bool saves_inputs() const override { return false; }
  Variables<T> backward(const Variables<T>& gy) override { return {-gy[0]}; }
  std::string rule(std::size_t) const override { return "the upstream gradient, negated"; }
};
ZG_REGISTER_OP(Neg);

// x + c and x * c with a constant c: no graph node for the constant.
template <class T>
struct AddConst final : Function<T> {
  explicit AddConst(T c) : c(c) {}
  T c;
  std::string name() const override { return "AddConst"; }
  std::string attributes() const override { return "c=" + zg::number_str(c); }
  OpFields fields() const override { return {{"c", field_of(c)}}; }
  Outputs<T> forward(const TensorList<T>& x) override { return x[0] + c; }
  // d(x + c) = dx
  bool saves_inputs() const override { return false; }
  Variables<T> backward(const Variables<T>& gy) override { return {gy[0]}; }
  std::string rule(std::size_t) const override { return "passes the upstream gradient on unchanged (the constant needs none)"; }
};
ZG_REGISTER_OP(AddConst);

template <class T>
struct MulConst final : Function<T> {
  explicit MulConst(T c) : c(c) {}
  T c;
  std::string name() const override { return "MulConst"; }
  std::string attributes() const override { return "c=" + zg::number_str(c); }
  OpFields fields() const override { return {{"c", field_of(c)}}; }
  Outputs<T> forward(const TensorList<T>& x) override { return x[0] * c; }
  // d(c x) = c dx
  bool saves_inputs() const override { return false; }
  Variables<T> backward(const Variables<T>& gy) override { return {gy[0] * c}; }
  std::string rule(std::size_t) const override { return "upstream \u00d7 the constant"; }
};
ZG_REGISTER_OP(MulConst);

template <class T>
struct RDivConst final : Function<T> {
  explicit RDivConst(T c) : c(c) {}
  T c;
  std::string name() const override { return "RDivConst"; }
  std::string attributes() const override { return "c=" + zg::number_str(c); }
  OpFields fields() const override { return {{"c", field_of(c)}}; }
  Outputs<T> forward(const TensorList<T>& x) override { return c / x[0]; }
  // d(c / x) = -c dx / x^2
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    return {gy[0] * (-c) / (x * x)};
  }
  std::string rule(std::size_t) const override { return "-upstream \u00d7 c / x^2"; }
};
ZG_REGISTER_OP(RDivConst);

template <class T>
struct Pow final : Function<T> {
  explicit Pow(T p) : p(p) {}
  T p;
  std::string name() const override { return "Pow"; }
  std::string attributes() const override { return "p=" + zg::number_str(p); }
  OpFields fields() const override { return {{"p", field_of(p)}}; }
  Outputs<T> forward(const TensorList<T>& x) override { return xt::pow(x[0], p); }
  // d x^p = p x^(p-1) dx
  Variables<T> backward(const Variables<T>& gy) override {
    return {gy[0] * p * zg::pow(this->input(0), p - 1)};
  }
  std::string rule(std::size_t) const override { return "upstream \u00d7 c x^(c - 1)"; }
};
ZG_REGISTER_OP(Pow);

template <class T>
struct Square final : Function<T> {
  std::string name() const override { return "Square"; }
  Outputs<T> forward(const TensorList<T>& x) override { return x[0] * x[0]; }
  // d x^2 = 2 x dx
  Variables<T> backward(const Variables<T>& gy) override { return {gy[0] * this->input(0) * T(2)}; }
  std::string rule(std::size_t) const override { return "upstream \u00d7 2x"; }
};
ZG_REGISTER_OP(Square);

}  // namespace

template <class T> Var<T> add(const Var<T>& a, const Var<T>& b) { return apply1<Add<T>>({a, b}); }
template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b) { return apply1<Sub<T>>({a, b}); }
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b) { return apply1<Mul<T>>({a, b}); }
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b) { return apply1<Div<T>>({a, b}); }
template <class T> Var<T> neg(const Var<T>& x) { return apply1<Neg<T>>({x}); }
template <class T> Var<T> pow(const Var<T>& x, T p) { return apply1<Pow<T>>({x}, p); }
template <class T> Var<T> square(const Var<T>& x) { return apply1<Square<T>>({x}); }
template <class T> Var<T> add(const Var<T>& a, T c) { return apply1<AddConst<T>>({a}, c); }
template <class T> Var<T> mul(const Var<T>& a, T c) { return apply1<MulConst<T>>({a}, c); }
template <class T> Var<T> rsub(T c, const Var<T>& b) { return add(neg(b), c); }
template <class T> Var<T> rdiv(T c, const Var<T>& b) { return apply1<RDivConst<T>>({b}, c); }

#define ZG_INSTANTIATE(T)                                  \
  template Var<T> add(const Var<T>&, const Var<T>&);       \
  template Var<T> sub(const Var<T>&, const Var<T>&);       \
  template Var<T> mul(const Var<T>&, const Var<T>&);       \
  template Var<T> div(const Var<T>&, const Var<T>&);       \
  template Var<T> neg(const Var<T>&);                      \
  template Var<T> pow(const Var<T>&, T);                   \
  template Var<T> square(const Var<T>&);                   \
  template Var<T> add(const Var<T>&, T);                   \
  template Var<T> mul(const Var<T>&, T);                   \
  template Var<T> rsub(T, const Var<T>&);                  \
  template Var<T> rdiv(T, const Var<T>&);
ZG_FOR_FLOAT_AND_DOUBLE(ZG_INSTANTIATE)
#undef ZG_INSTANTIATE

}  // namespace zg
