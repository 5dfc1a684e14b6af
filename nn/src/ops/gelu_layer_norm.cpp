// GELU and layer normalization as one Function each: the Transformer's two
// elementwise-heavy steps. Forward and first-order backward are kernels
// (Note [GELU in one pass], Note [LayerNorm in one pass]); under
// create_graph, backward is the same derivative in autograd ops, so it
// differentiates again (as relu_backward in ops/conv_fused.cpp).
#include <cmath>

#include "ops/gelu_layer_norm.hpp"

#include "kernels/gelu.hpp"
#include "kernels/layer_norm.hpp"
#include "zerograd/apply.hpp"
#include "zerograd/nn/functional.hpp"
#include "zerograd/op_registry.hpp"
#include "zerograd/ops.hpp"

namespace zg::nn::functional {
namespace {

// gelu'(x) in autograd ops: Phi(x) + x phi(x), or for the tanh form with
// t = tanh(c (x + a x^3)): 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
template <class T>
Var<T> gelu_slope(const Var<T>& x, bool tanh_approximation) {
  const double pi = std::acos(-1.0);
  if (tanh_approximation) {
    const T c = static_cast<T>(std::sqrt(2 / pi)), a = T(0.044715);
    const Var<T> t = zg::tanh((x + x * x * x * a) * c);
    return (t + T(1)) * T(0.5) + x * (T(1) - t * t) * (x * x * (3 * a) + T(1)) * (c / 2);
  }
  const Var<T> cdf = (erf(x * static_cast<T>(1 / std::sqrt(2.0))) + T(1)) * T(0.5);
  return cdf + x * zg::exp(zg::square(x) * T(-0.5)) * static_cast<T>(1 / std::sqrt(2 * pi));
}

template <class T>
struct GELU final : Function<T> {
  explicit GELU(bool tanh_approximation) : tanh_approximation(tanh_approximation) {}
  bool tanh_approximation;
  std::string name() const override { return "GELU"; }
  std::string attributes() const override { return tanh_approximation ? "approximate='tanh'" : "approximate='none'"; }
  OpFields fields() const override { return {{"tanh", field_of(tanh_approximation ? 1 : 0)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    auto y = Outputs<T>::uninitialized(x[0].shape());
    kernels::gelu(x[0].data(), y[0].data(), y[0].size(), tanh_approximation);
    return y;
  }
  // d gelu(x) = gelu'(x) dx
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    if (is_grad_enabled()) return {gy[0] * gelu_slope(x, tanh_approximation)};
    Tensor<T> gx = Tensor<T>::from_shape(x.shape());
    kernels::gelu_backward(gy[0].data().data(), x.data().data(), gx.data(), gx.size(), tanh_approximation);
    return {Var<T>(std::move(gx))};
  }
  std::string rule(std::size_t) const override {
    return tanh_approximation ? "upstream \u00d7 gelu'(x) of the tanh form" : "upstream \u00d7 (Phi(x) + x phi(x))";
  }
};
ZG_REGISTER_OP(GELU);

template <class T>
struct LayerNorm final : Function<T> {
  LayerNorm(Shape normalized, bool has_weight, bool has_bias, double eps)
      : normalized(std::move(normalized)), has_weight(has_weight), has_bias(has_bias), eps(eps) {}
  Shape normalized;  // the trailing shape normalized over
  bool has_weight, has_bias;
  double eps;
  Tensor<T> mean, rstd;  // per row, from forward: 1 / sqrt(variance + eps)
  std::string name() const override { return "LayerNorm"; }
  std::string attributes() const override {
    return "normalized_shape=" + shape_str(normalized) + ", eps=" + number_str(eps);
  }
  OpFields fields() const override {
    return {{"normalized_shape", field_of(normalized)}, {"eps", field_of(eps)}, {"weight", field_of(has_weight ? 1 : 0)},
            {"bias", field_of(has_bias ? 1 : 0)}};
  }
  std::size_t D() const {
    std::size_t d = 1;
    for (std::size_t n : normalized) d *= n;
    return d;
  }
  Outputs<T> forward(const TensorList<T>& x) override {
    const std::size_t d = D(), rows = d ? x[0].size() / d : 0;
    auto y = Outputs<T>::uninitialized(x[0].shape());
    mean = Tensor<T>::from_shape({rows});
    rstd = Tensor<T>::from_shape({rows});
    const T* w = has_weight ? x[1].data() : nullptr;
    const T* b = has_bias ? x[1 + has_weight].data() : nullptr;
    kernels::layer_norm(x[0].data(), w, b, rows, d, eps, y[0].data(), mean.data(), rstd.data());
    return y;
  }
  // y = xhat w + b with xhat = (x - mean) rstd over the trailing axes:
  // dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = gy w,
  // dw = gy xhat and db = gy, each summed over the leading axes.
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    const std::size_t bi = 1 + has_weight;  // the bias's input
    Variables<T> g(this->num_inputs());
    if (!is_grad_enabled()) {
      const std::size_t d = D(), rows = d ? x.size() / d : 0;
      const bool want_x = this->needs_input_grad(0), want_w = has_weight && this->needs_input_grad(1),
                 want_b = has_bias && this->needs_input_grad(bi);
      Tensor<T> gx = Tensor<T>::from_shape(want_x ? x.shape() : Shape{0});
      Tensor<T> gw = Tensor<T>::from_shape(want_w ? normalized : Shape{0});
      Tensor<T> gb = Tensor<T>::from_shape(want_b ? normalized : Shape{0});
      kernels::layer_norm_backward(gy[0].data().data(), x.data().data(),
                                   has_weight ? this->input(1).data().data() : nullptr, mean.data(), rstd.data(), rows,
                                   d, want_x ? gx.data() : nullptr, want_w ? gw.data() : nullptr,
                                   want_b ? gb.data() : nullptr);
      if (want_x) g[0] = Var<T>(std::move(gx));
      if (want_w) g[1] = Var<T>(std::move(gw));
      if (want_b) g[bi] = Var<T>(std::move(gb));
      return g;
    }
    Axes axes;
    for (std::size_t a = x.ndim() - normalized.size(); a < x.ndim(); ++a) axes.push_back(std::ptrdiff_t(a));
    const Var<T> xc = x - zg::mean(x, axes, true);
    const Var<T> r = zg::pow(zg::mean(zg::square(xc), axes, true) + static_cast<T>(eps), T(-0.5));
    const Var<T> xhat = xc * r;
    const Var<T> gn = has_weight ? gy[0] * this->input(1) : gy[0];
    if (this->needs_input_grad(0))
      g[0] = r * (gn - zg::mean(gn, axes, true) - xhat * zg::mean(gn * xhat, axes, true));
    if (has_weight && this->needs_input_grad(1)) g[1] = zg::sum_to(gy[0] * xhat, normalized);
    if (has_bias && this->needs_input_grad(bi)) g[bi] = zg::sum_to(gy[0], normalized);
    return g;
  }
  std::string rule(std::size_t i) const override {
    if (i == 0) return "rstd \u00d7 (g - mean(g) - xhat mean(g xhat)), g = upstream \u00d7 weight";
    if (i == 1 && has_weight) return "upstream \u00d7 xhat, summed over the leading axes";
    return "upstream, summed over the leading axes";
  }
  void release() override {
    Function<T>::release();
    mean = Tensor<T>();
    rstd = Tensor<T>();
  }
};
ZG_REGISTER_OP(LayerNorm);

}  // namespace

void check_gelu(const char* op, const std::string& approximate) {
  if (approximate != "none" && approximate != "tanh")
    throw ValueError(std::string(op) + ": approximate must be 'none' or 'tanh', got " + zg::quoted(approximate));
}

template <class T>
Var<T> gelu(const Var<T>& x, const std::string& approximate) {
  check_gelu("gelu", approximate);
  return apply1<GELU<T>>({x}, approximate == "tanh");
}

template <class T>
Var<T> gelu(const Var<T>& x, bool tanh_approximation) {
  return apply1<GELU<T>>({x}, tanh_approximation);
}

template <class T>
Var<T> layer_norm(const Var<T>& x, const Shape& normalized_shape, const Var<T>& weight, const Var<T>& bias,
                  double eps) {
  const Shape s = x.shape();
  const std::size_t k = normalized_shape.size();
  if (k == 0 || k > s.size() || !std::equal(normalized_shape.begin(), normalized_shape.end(), s.end() - k))
    throw ShapeError("layer_norm: normalized_shape " + shape_str(normalized_shape) +
                     " is not the trailing shape of input " + shape_str(s));
  for (const Var<T>* p : {&weight, &bias})
    if (p->defined() && p->shape() != normalized_shape)
      throw ShapeError("layer_norm: weight and bias must have shape " + shape_str(normalized_shape) + ", got " +
                       shape_str(p->shape()));
  if (!(eps >= 0)) throw ValueError("layer_norm: eps must be >= 0, got " + zg::number_str(eps));
  const bool w = weight.defined(), b = bias.defined();
  if (w && b) return apply1<LayerNorm<T>>({x, weight, bias}, normalized_shape, w, b, eps);
  if (w) return apply1<LayerNorm<T>>({x, weight}, normalized_shape, w, b, eps);
  if (b) return apply1<LayerNorm<T>>({x, bias}, normalized_shape, w, b, eps);
  return apply1<LayerNorm<T>>({x}, normalized_shape, w, b, eps);
}

#define ZG_INSTANTIATE(T)                                                                     \
  template Var<T> gelu(const Var<T>&, bool);                                                  \
  template Var<T> gelu(const Var<T>&, const std::string&);                                    \
  template Var<T> layer_norm(const Var<T>&, const Shape&, const Var<T>&, const Var<T>&, double);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::functional
