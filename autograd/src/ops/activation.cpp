// Activations: sigmoid, relu, leaky_relu, softmax and log_softmax.
// Softmax-style kernels are raw loops: broadcasting an (N, 1) column through
// xtensor was ~40x slower (measured with xtensor 0.24.3 and xsimd 8.1).
#include <algorithm>
#include <cmath>
#include <limits>

#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "engine/buffer_cache.hpp"
#include "ops/common.hpp"
#include "zerograd/parallel.hpp"
#include "zerograd/row_softmax.hpp"

namespace zg {
namespace {

using detail::constant;


template <class T>
struct Sigmoid final : Function<T> {
  std::string name() const override { return "Sigmoid"; }
  // exp(-|x|) lies in (0, 1], so neither branch can overflow.
  Outputs<T> forward(const TensorList<T>& x) override {
    const Tensor<T> e = xt::exp(-xt::abs(x[0]));
    return xt::where(xt::greater_equal(x[0], T(0)), T(1) / (T(1) + e), e / (T(1) + e));
  }
  // d sigmoid(x) = y (1 - y) dx
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T> y = detail::output_or(*this, 0, [&] { return zg::sigmoid(this->input(0)); });
    return {gy[0] * y * (T(1) - y)};
  }
  std::string rule(std::size_t) const override { return "upstream \u00d7 y (1 - y)"; }
};
ZG_REGISTER_OP(Sigmoid);

// ReLU's backward: gy where x > 0, 0 elsewhere, in one pass without a
// mask array. Linear in gy, so differentiable again; x gets no gradient.
template <class T>
struct ReLUGrad final : Function<T> {
  std::string name() const override { return "ReLUGrad"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    auto gx = Outputs<T>::uninitialized(x[1].shape());
    const T* in = x[1].data();
    const T* g = x[0].data();
    T* out = gx[0].data();
    // Both loads unconditional, so the select compiles to a vector blend
    // (a branch here mispredicts on every other element).
    detail::parallel_for(gx[0].size(), detail::kElementGrain, [in, g, out](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        const T v = in[i], gi = g[i];
        out[i] = v > T(0) ? gi : T(0);
      }
    });
    return gx;
  }
  // d relu_grad(gy, x) = relu_grad(dgy, x); the mask is constant in x
  Variables<T> backward(const Variables<T>& ggx) override {
    return {apply1<ReLUGrad<T>>({ggx[0], this->input(1)}), Var<T>()};
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "the same switch on its upstream gradient"
                  : "none: x only sets the switch";
  }
};
ZG_REGISTER_OP(ReLUGrad);

template <class T>
struct ReLU final : Function<T> {
  std::string name() const override { return "ReLU"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    auto y = Outputs<T>::uninitialized(x[0].shape());
    const T* in = x[0].data();
    T* out = y[0].data();
    // A select, so a NaN input passes through as NaN.
    detail::parallel_for(y[0].size(), detail::kElementGrain, [in, out](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        const T v = in[i];
        out[i] = v < T(0) ? T(0) : v;
      }
    });
    return y;
  }
  // d relu(x) = dx where x > 0, 0 elsewhere (0 at x = 0 too)
  Variables<T> backward(const Variables<T>& gy) override { return {apply1<ReLUGrad<T>>({gy[0], this->input(0)})}; }
  std::string rule(std::size_t) const override { return "a switch: upstream where x > 0, 0 elsewhere"; }
};
ZG_REGISTER_OP(ReLU);

template <class T>
struct LeakyReLU final : Function<T> {
  explicit LeakyReLU(T slope) : slope(slope) {}
  T slope;
  std::string name() const override { return "LeakyReLU"; }
  std::string attributes() const override { return "slope=" + zg::number_str(slope); }
  OpFields fields() const override { return {{"slope", field_of(slope)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    return xt::where(xt::greater(x[0], T(0)), x[0], slope * x[0]);
  }
  // d leaky_relu(x) = dx where x > 0, slope dx elsewhere
  Variables<T> backward(const Variables<T>& gy) override {
    const Tensor<T>& x = this->input(0).data();
    return {gy[0] * constant<T>(xt::where(xt::greater(x, T(0)), T(1), slope))};
  }
  std::string rule(std::size_t) const override { return "upstream where x > 0, slope \u00d7 upstream elsewhere"; }
};
ZG_REGISTER_OP(LeakyReLU);

// Softmax kernels

// x seen as (outer, n, inner) around the axis: element (o, k, i) is at
// (o * n + k) * inner + i, and its reduced position (o, i) is o * inner + i.
// The last axis is the case inner == 1 (rows).
struct AxisView {
  std::size_t outer = 1, n = 1, inner = 1;

  template <class F>
  void for_each(F f) const {
    for (std::size_t o = 0; o < outer; ++o)
      for (std::size_t k = 0; k < n; ++k)
        for (std::size_t i = 0; i < inner; ++i) f((o * n + k) * inner + i, o * inner + i);
  }
};

AxisView view_around(std::ptrdiff_t axis, const Shape& shape, const char* op) {
  const auto ndim = static_cast<std::ptrdiff_t>(shape.size());
  if (axis < -ndim || axis >= ndim)
    throw ShapeError(std::string(op) + ": axis " + std::to_string(axis) +
                     " is out of range for an input of shape " + shape_str(shape));
  const std::size_t a = static_cast<std::size_t>(axis < 0 ? axis + ndim : axis);
  AxisView v;
  for (std::size_t d = 0; d < shape.size(); ++d)
    (d < a ? v.outer : d == a ? v.n : v.inner) *= shape[d];
  return v;
}

// x minus its max along the axis, so that every exp of it is at most 1.
template <class T>
Tensor<T> minus_max(const Tensor<T>& x, const AxisView& v) {
  std::vector<T> m(v.outer * v.inner, -std::numeric_limits<T>::infinity());
  const T* px = x.data();
  v.for_each([&](std::size_t j, std::size_t r) { m[r] = std::max(m[r], px[j]); });
  Tensor<T> z = Tensor<T>::from_shape(x.shape());
  T* pz = z.data();
  v.for_each([&](std::size_t j, std::size_t r) { pz[j] = px[j] - m[r]; });
  return z;
}

template <class T>
std::vector<T> sum_along(const Tensor<T>& e, const AxisView& v) {
  std::vector<T> s(v.outer * v.inner, T(0));
  const T* pe = e.data();
  v.for_each([&](std::size_t j, std::size_t r) { s[r] += pe[j]; });
  return s;
}

template <class T>
struct Softmax final : Function<T> {
  explicit Softmax(std::ptrdiff_t axis) : axis(axis) {}
  std::ptrdiff_t axis;
  std::string name() const override { return "Softmax"; }
  std::string attributes() const override { return "axis=" + std::to_string(axis); }
  OpFields fields() const override { return {{"axis", field_of(axis)}}; }
  // exp(x - max) / sum(exp(x - max))
  Outputs<T> forward(const TensorList<T>& x) override {
    const AxisView v = view_around(axis, zg::shape_of(x[0]), "Softmax");
    if (v.inner == 1) {  // along the last axis: rows (Note [Softmax rows in SIMD])
      Tensor<T> y = x[0];
      detail::softmax_rows(y.data(), v.outer, v.n);
      return y;
    }
    Tensor<T> y = minus_max(x[0], v);
    y = xt::exp(y);
    std::vector<T> s = sum_along(y, v);
    for (T& si : s) si = T(1) / si;
    T* py = y.data();
    v.for_each([&](std::size_t j, std::size_t r) { py[j] *= s[r]; });
    return y;
  }
  // d softmax: dx = y (dy - sum(dy y, axis))
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T> y = detail::output_or(*this, 0, [&] { return zg::softmax(this->input(0), axis); });
    return {y * (gy[0] - zg::sum(gy[0] * y, {axis}, true))};
  }
  std::string rule(std::size_t) const override { return "y \u00d7 (upstream - sum(upstream \u00d7 y)) along the axis"; }
};
ZG_REGISTER_OP(Softmax);

template <class T>
struct LogSoftmax final : Function<T> {
  explicit LogSoftmax(std::ptrdiff_t axis) : axis(axis) {}
  std::ptrdiff_t axis;
  std::string name() const override { return "LogSoftmax"; }
  std::string attributes() const override { return "axis=" + std::to_string(axis); }
  OpFields fields() const override { return {{"axis", field_of(axis)}}; }
  // (x - max) - log(sum(exp(x - max)))
  Outputs<T> forward(const TensorList<T>& x) override {
    const AxisView v = view_around(axis, zg::shape_of(x[0]), "LogSoftmax");
    if (v.inner == 1) {
      Tensor<T> z = x[0];
      detail::softmax_rows(z.data(), v.outer, v.n, true);
      return z;
    }
    Tensor<T> z = minus_max(x[0], v);
    const Tensor<T> e = xt::exp(z);
    std::vector<T> s = sum_along(e, v);
    for (T& si : s) si = std::log(si);
    T* pz = z.data();
    v.for_each([&](std::size_t j, std::size_t r) { pz[j] -= s[r]; });
    return z;
  }
  // d log_softmax: dx = dy - softmax(x) sum(dy, axis), softmax(x) = exp(y)
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T> y = detail::output_or(*this, 0, [&] { return zg::log_softmax(this->input(0), axis); });
    return {gy[0] - zg::exp(y) * zg::sum(gy[0], {axis}, true)};
  }
  std::string rule(std::size_t) const override { return "upstream - softmax(x) \u00d7 sum(upstream) along the axis"; }
};
ZG_REGISTER_OP(LogSoftmax);

}  // namespace

template <class T> Var<T> sigmoid(const Var<T>& x) { return apply1<Sigmoid<T>>({x}); }
template <class T> Var<T> relu(const Var<T>& x) { return apply1<ReLU<T>>({x}); }
template <class T>
Var<T> leaky_relu(const Var<T>& x, Scalar<T> slope) {
  return apply1<LeakyReLU<T>>({x}, slope);
}
template <class T>
Var<T> softmax(const Var<T>& x, std::ptrdiff_t axis) {
  return apply1<Softmax<T>>({x}, axis);
}
template <class T>
Var<T> log_softmax(const Var<T>& x, std::ptrdiff_t axis) {
  return apply1<LogSoftmax<T>>({x}, axis);
}

#define ZG_INSTANTIATE(T)                                        \
  template Var<T> sigmoid(const Var<T>&);                        \
  template Var<T> relu(const Var<T>&);                           \
  template Var<T> leaky_relu(const Var<T>&, T);                  \
  template Var<T> softmax(const Var<T>&, std::ptrdiff_t);        \
  template Var<T> log_softmax(const Var<T>&, std::ptrdiff_t);
ZG_FOR_FLOAT_AND_DOUBLE(ZG_INSTANTIATE)
#undef ZG_INSTANTIATE

}  // namespace zg
