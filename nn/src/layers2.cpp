// Layers added for PyTorch users: erf, GELU, SiLU, Softplus, LayerNorm,
// Embedding, adaptive average pooling and the ConvTranspose2d layer. SiLU
// and the pooling are compositions of autograd ops, so every order of
// gradient comes from those ops' backwards; Softplus is a Function (its
// switch to the linear branch is part of the op, so an exported graph has
// it); F::gelu and F::layer_norm are Functions of their own
// (ops/gelu_layer_norm.cpp).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "zerograd/nn/conv.hpp"
#include "zerograd/nn/functional.hpp"
#include "zerograd/op_registry.hpp"
#include "zerograd/nn/layers.hpp"
#include "ops/gelu_layer_norm.hpp"

namespace zg::nn::functional {
namespace {

void check_softplus(const char* op, double beta, double threshold) {
  if (!(beta > 0) || !std::isfinite(beta) || std::isnan(threshold))
    throw ValueError(std::string(op) + ": beta must be finite and > 0 and threshold a number, got beta=" + zg::number_str(beta) +
                     ", threshold=" + zg::number_str(threshold));
}

template <class T>
struct Erf final : Function<T> {
  std::string name() const override { return "Erf"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    Tensor<T> y = Tensor<T>::from_shape(x[0].shape());
    std::transform(x[0].begin(), x[0].end(), y.begin(), [](T v) { return std::erf(v); });
    return y;
  }
  // d erf(x) = 2 / sqrt(pi) exp(-x^2) dx
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    return {gy[0] * zg::exp(-zg::square(x)) * static_cast<T>(2 / std::sqrt(std::acos(-1.0)))};
  }
  std::string rule(std::size_t) const override { return "upstream \u00d7 2 / sqrt(pi) exp(-x^2)"; }
};
ZG_REGISTER_OP(Erf);

// PyTorch's softplus: log(1 + exp(beta x)) / beta, and x itself where
// beta x > threshold.
template <class T>
struct Softplus final : Function<T> {
  Softplus(double beta, double threshold) : beta(beta), threshold(threshold) {}
  double beta, threshold;
  std::string name() const override { return "Softplus"; }
  std::string attributes() const override { return "beta=" + number_str(beta) + ", threshold=" + number_str(threshold); }
  OpFields fields() const override { return {{"beta", field_of(beta)}, {"threshold", field_of(threshold)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    Tensor<T> y = Tensor<T>::from_shape(x[0].shape());
    const T b = static_cast<T>(beta), t = static_cast<T>(threshold);
    // log(1 + exp(bx)) = max(bx, 0) + log1p(exp(-|bx|)): no exp overflows
    std::transform(x[0].begin(), x[0].end(), y.begin(), [b, t](T v) {
      const T bx = v * b;
      return bx > t ? v : (std::max(bx, T(0)) + std::log1p(std::exp(-std::abs(bx)))) / b;
    });
    return y;
  }
  // d softplus(x) = sigmoid(beta x) dx, and dx on the linear side
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T> bx = this->input(0) * static_cast<T>(beta);
    return {zg::where(zg::greater(bx.detach(), static_cast<T>(threshold)), gy[0], gy[0] * zg::sigmoid(bx))};
  }
  std::string rule(std::size_t) const override { return "upstream \u00d7 sigmoid(beta x), upstream where beta x > threshold"; }
};
ZG_REGISTER_OP(Softplus);

// The index at position i as a row number in [0, rows), or a ValueError.
template <class T>
std::size_t row_index(const Tensor<T>& indices, std::size_t i, std::size_t rows, const char* op) {
  const T v = indices.data()[i];
  if (!(v >= 0 && v < T(rows)) || v != std::floor(v))
    throw ValueError(std::string(op) + ": index " + zg::number_str(double(v)) + " at position " + std::to_string(i) +
                     " is not a row of the weight, which has " + std::to_string(rows));
  return static_cast<std::size_t>(v);
}

template <class T>
struct Embedding final : Function<T> {
  explicit Embedding(std::optional<std::size_t> padding_idx) : padding_idx(padding_idx) {}
  std::optional<std::size_t> padding_idx;
  std::string name() const override { return "Embedding"; }
  Outputs<T> forward(const TensorList<T>& in) override {
    const Tensor<T>& idx = in[0];
    const Tensor<T>& w = in[1];
    if (w.dimension() != 2)
      throw ShapeError("Embedding: weight must be (num_embeddings, dim), got " + shape_str(w.shape()));
    const std::size_t rows = w.shape()[0], dim = w.shape()[1];
    if (padding_idx && *padding_idx >= rows)
      throw ValueError("Embedding: padding_idx " + std::to_string(*padding_idx) + " is not a row of the weight " +
                       shape_str(w.shape()));
    Shape shape(idx.shape().begin(), idx.shape().end());
    shape.push_back(dim);
    Tensor<T> y = Tensor<T>::from_shape(shape);
    for (std::size_t i = 0; i < idx.size(); ++i) {
      const std::size_t r = row_index(idx, i, rows, "Embedding");
      std::copy_n(w.data() + r * dim, dim, y.data() + i * dim);
    }
    return y;
  }
  // d weight[r] = sum of gy over the positions holding r, except r = padding_idx
  Variables<T> backward(const Variables<T>& gy) override {
    const Tensor<T>& idx = this->input(0).data();
    const Shape ws = this->input(1).shape();
    Var<T> g = zg::reshape(gy[0], {idx.size(), ws[1]});
    Index::Array rows, kept;  // the rows, and where they are, of the non-padding positions
    for (std::size_t i = 0; i < idx.size(); ++i) {
      const auto r = static_cast<std::ptrdiff_t>(idx.data()[i]);
      if (padding_idx && std::size_t(r) == *padding_idx) continue;
      rows.push_back(r);
      kept.push_back(std::ptrdiff_t(i));
    }
    if (rows.empty()) return {Var<T>(), Var<T>(Tensor<T>(xt::zeros<T>(ws)))};  // only padding: constant 0
    if (kept.size() < idx.size()) g = zg::get_item(g, {Index(std::move(kept))});
    return {Var<T>(), zg::get_item_grad(g, {Index(std::move(rows))}, ws)};
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "none: the indices are constants"
                  : "each upstream row added into the weight row it was read from (none to padding_idx)";
  }
};
ZG_REGISTER_OP(Embedding);

// (out, in) averaging matrix of adaptive pooling along one axis: row i is
// 1 / (end - start) on [floor(i in / out), ceil((i + 1) in / out)).
template <class T>
Var<T> pooling_matrix(std::size_t in, std::size_t out) {
  Tensor<T> m = Tensor<T>::from_shape({out, in});
  m.fill(T(0));
  for (std::size_t i = 0; i < out; ++i) {
    const std::size_t start = i * in / out, end = ((i + 1) * in + out - 1) / out;
    for (std::size_t j = start; j < end; ++j) m(i, j) = T(1) / T(end - start);
  }
  return Var<T>(std::move(m));
}

}  // namespace

template <class T>
Var<T> erf(const Var<T>& x) {
  return apply1<Erf<T>>({x});
}

template <class T>
Var<T> silu(const Var<T>& x) {
  return x * zg::sigmoid(x);
}

template <class T>
Var<T> softplus(const Var<T>& x, double beta, double threshold) {
  check_softplus("softplus", beta, threshold);
  return apply1<Softplus<T>>({x}, beta, threshold);
}

template <class T>
Var<T> embedding(const Var<T>& indices, const Var<T>& weight, std::optional<std::size_t> padding_idx) {
  return apply1<Embedding<T>>({indices, weight}, padding_idx);
}

template <class T>
Var<T> adaptive_avg_pool2d(const Var<T>& x, const Shape& output_size) {
  const Shape s = x.shape();
  if (s.size() != 4 || output_size.size() != 2 || output_size[0] == 0 || output_size[1] == 0)
    throw ShapeError("adaptive_avg_pool2d: input must be (N, C, H, W) and output_size (OH, OW) positive, got input " +
                     shape_str(s) + ", output_size " + shape_str(output_size));
  const std::size_t N = s[0], C = s[1], H = s[2], W = s[3], OH = output_size[0], OW = output_size[1];
  if (H == 0 || W == 0) throw ShapeError("adaptive_avg_pool2d: input " + shape_str(s) + " has an empty plane");
  // The window mean is separable: average along W, then along H, by two GEMMs
  // (one for global pooling: on (64, 64, 32, 32), forward + backward took 11 ms
  // at one thread against 21 ms for zg::mean over (H, W)).
  if (OH == 1 && OW == 1)
    return zg::reshape(zg::matmul(zg::reshape(x, {N * C, H * W}), pooling_matrix<T>(H * W, 1), false, true),
                       {N, C, 1, 1});
  Var<T> rows = zg::matmul(zg::reshape(x, {N * C * H, W}), pooling_matrix<T>(W, OW), false, true);
  Var<T> cols = zg::transpose(zg::reshape(rows, {N * C, H, OW}), {0, 2, 1});
  Var<T> y = zg::matmul(zg::reshape(cols, {N * C * OW, H}), pooling_matrix<T>(H, OH), false, true);
  return zg::reshape(zg::transpose(zg::reshape(y, {N * C, OW, OH}), {0, 2, 1}), {N, C, OH, OW});
}

template <class T>
Var<T> adaptive_avg_pool2d(const Var<T>& x, std::size_t output_size) {
  return adaptive_avg_pool2d(x, Shape{output_size, output_size});
}

template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& W, const Var<T>& b, int stride, int padding,
                        int output_padding) {
  const auto settings = [&] {
    return "stride=" + std::to_string(stride) + ", padding=" + std::to_string(padding) +
           ", output_padding=" + std::to_string(output_padding);
  };
  if (x.ndim() != 4 || W.ndim() != 4 || x.shape()[1] != W.shape()[0] || W.shape()[2] != W.shape()[3])
    throw ShapeError("conv_transpose2d: expected x (N, in, H, W) and W (in, out, k, k), got x " +
                     shape_str(x.shape()) + ", W " + shape_str(W.shape()));
  if (stride < 1 || padding < 0 || output_padding < 0 || output_padding >= stride)
    throw ValueError("conv_transpose2d: needs stride >= 1, padding >= 0 and 0 <= output_padding < stride, got " +
                     settings());
  Shape size;
  for (std::size_t axis : {2, 3}) {
    const std::ptrdiff_t h = (std::ptrdiff_t(x.shape()[axis]) - 1) * stride - 2 * padding +
                             std::ptrdiff_t(W.shape()[2]) + output_padding;
    if (x.shape()[axis] == 0 || h < 1)
      throw ShapeError("conv_transpose2d: x " + shape_str(x.shape()) + " with W " + shape_str(W.shape()) + " and " +
                       settings() + " has no output size");
    size.push_back(std::size_t(h));
  }
  const Var<T> y = conv_transpose2d(x, W, stride, padding, size);
  if (!b.defined()) return y;
  if (b.ndim() != 1 || b.shape()[0] != W.shape()[1])
    throw ShapeError("conv_transpose2d: bias " + shape_str(b.shape()) + " does not match W " + shape_str(W.shape()) +
                     ": expected (" + std::to_string(W.shape()[1]) + ")");
  return y + zg::reshape(b, {1, W.shape()[1], 1, 1});
}

#define ZG_INSTANTIATE(T)                                                                             \
  template Var<T> adaptive_avg_pool2d(const Var<T>&, std::size_t);                                    \
  template Var<T> conv_transpose2d(const Var<T>&, const Var<T>&, const Var<T>&, int, int, int);       \
  template Var<T> erf(const Var<T>&);                                                                 \
  template Var<T> silu(const Var<T>&);                                                                \
  template Var<T> softplus(const Var<T>&, double, double);                                            \
  template Var<T> embedding(const Var<T>&, const Var<T>&, std::optional<std::size_t>);                \
  template Var<T> adaptive_avg_pool2d(const Var<T>&, const Shape&);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::functional

namespace zg::nn {

namespace F = functional;

template <class T> BasicGELU<T>::BasicGELU(std::string approximate) : approximate_(std::move(approximate)) {
  F::check_gelu("GELU", approximate_);
}
template <class T> BasicVariable<T> BasicGELU<T>::forward(const BasicVariable<T>& x) {
  return F::gelu(x, approximate_);
}
template <class T> BasicVariable<T> BasicSiLU<T>::forward(const BasicVariable<T>& x) { return F::silu(x); }

template <class T>
BasicSoftplus<T>::BasicSoftplus(double beta, double threshold) : beta_(beta), threshold_(threshold) {
  F::check_softplus("Softplus", beta, threshold);
}
template <class T> BasicVariable<T> BasicSoftplus<T>::forward(const BasicVariable<T>& x) {
  return F::softplus(x, beta_, threshold_);
}
template <class T> std::string BasicSoftplus<T>::extra_repr() const {
  return "beta=" + zg::number_str(beta_) + ", threshold=" + zg::number_str(threshold_);
}

template <class T>
BasicLayerNorm<T>::BasicLayerNorm(Shape normalized_shape, double eps, bool affine)
    : shape_(std::move(normalized_shape)), eps_(eps) {
  const std::size_t n = std::accumulate(shape_.begin(), shape_.end(), std::size_t{1}, std::multiplies<>());
  if (shape_.empty() || n == 0)
    throw ValueError("LayerNorm: normalized_shape must be non-empty with no zero size, got " + shape_str(shape_));
  if (!(eps >= 0)) throw ValueError("LayerNorm: eps must be >= 0, got " + zg::number_str(eps));
  if (affine) {
    weight = this->register_parameter("weight", BasicVariable<T>(Tensor<T>(xt::ones<T>(shape_))));
    bias = this->register_parameter("bias", BasicVariable<T>(Tensor<T>(xt::zeros<T>(shape_))));
  }
}
template <class T> BasicVariable<T> BasicLayerNorm<T>::forward(const BasicVariable<T>& x) {
  return F::layer_norm(x, shape_, weight, bias, eps_);
}
template <class T> std::string BasicLayerNorm<T>::extra_repr() const {
  return shape_str(shape_) + ", eps=" + zg::number_str(eps_) + (weight.defined() ? "" : ", elementwise_affine=false");
}

template <class T>
BasicEmbedding<T>::BasicEmbedding(std::size_t num, std::size_t dim, std::optional<std::ptrdiff_t> padding_idx)
    : num_(num), dim_(dim) {
  if (num == 0 || dim == 0)
    throw ValueError("Embedding: num_embeddings and embedding_dim must be positive, got " + std::to_string(num) +
                     ", " + std::to_string(dim));
  if (padding_idx) {
    const std::ptrdiff_t p = *padding_idx < 0 ? *padding_idx + std::ptrdiff_t(num) : *padding_idx;
    if (p < 0 || p >= std::ptrdiff_t(num))
      throw ValueError("Embedding: padding_idx " + std::to_string(*padding_idx) + " is outside [-" +
                       std::to_string(num) + ", " + std::to_string(num) + ")");
    padding_ = std::size_t(p);
  }
  weight = this->register_parameter("weight", BasicVariable<T>(Tensor<T>::from_shape({num, dim})));
  init::normal(weight, 1.0);
  if (padding_) std::fill_n(weight.data().data() + *padding_ * dim, dim, T(0));
}
template <class T> BasicVariable<T> BasicEmbedding<T>::forward(const BasicVariable<T>& indices) {
  return F::embedding(indices, weight, padding_);
}
template <class T> std::string BasicEmbedding<T>::extra_repr() const {
  return std::to_string(num_) + ", " + std::to_string(dim_) +
         (padding_ ? ", padding_idx=" + std::to_string(*padding_) : "");
}
template <class T> AnyModule BasicEmbedding<T>::rebuild(Dtype dtype) const {
  std::optional<std::ptrdiff_t> padding;
  if (padding_) padding = std::ptrdiff_t(*padding_);
  return nn::rebuild<BasicEmbedding>(dtype, num_, dim_, padding);
}

template <class T>
BasicConvTranspose2d<T>::BasicConvTranspose2d(std::size_t in, std::size_t out, std::size_t kernel, int stride,
                                              int pad, int output_padding, bool with_bias)
    : in_(in), out_(out), kernel_(kernel), stride_(stride), pad_(pad), output_padding_(output_padding) {
  if (in == 0 || out == 0 || kernel == 0 || stride < 1 || pad < 0)
    throw ValueError("ConvTranspose2d: channels and kernel must be >= 1, stride >= 1 and pad >= 0, got " +
                     extra_repr());
  if (output_padding < 0 || output_padding >= stride)
    throw ValueError("ConvTranspose2d: output_padding must be in [0, stride), got " + extra_repr());
  weight = this->register_parameter("weight", BasicVariable<T>(Tensor<T>::from_shape({in, out, kernel, kernel})));
  init::normal(weight, std::sqrt(2.0 / double(in * kernel * kernel)));
  if (with_bias) bias = this->register_parameter("bias", BasicVariable<T>(Tensor<T>(xt::zeros<T>({out}))));
}

template <class T>
BasicVariable<T> BasicConvTranspose2d<T>::forward(const BasicVariable<T>& x) {
  if (x.ndim() != 4 || x.shape()[1] != in_)
    throw ShapeError("ConvTranspose2d(" + extra_repr() + "): expected input (N, " + std::to_string(in_) +
                     ", H, W), got " + shape_str(x.shape()));
  return F::conv_transpose2d(x, weight, bias, stride_, pad_, output_padding_);
}

template <class T> std::string BasicConvTranspose2d<T>::extra_repr() const {
  return "in=" + std::to_string(in_) + ", out=" + std::to_string(out_) + ", kernel=" + std::to_string(kernel_) +
         ", stride=" + std::to_string(stride_) + ", pad=" + std::to_string(pad_) +
         (output_padding_ ? ", output_padding=" + std::to_string(output_padding_) : "");
}

template <class T>
BasicAdaptiveAvgPool2d<T>::BasicAdaptiveAvgPool2d(Shape output_size) : size_(std::move(output_size)) {
  if (size_.size() != 2 || size_[0] == 0 || size_[1] == 0)
    throw ValueError("AdaptiveAvgPool2d: output_size must be (OH, OW), both positive, got " + shape_str(size_));
}
template <class T>
BasicAdaptiveAvgPool2d<T>::BasicAdaptiveAvgPool2d(std::size_t output_size)
    : BasicAdaptiveAvgPool2d(Shape{output_size, output_size}) {}
template <class T> BasicVariable<T> BasicAdaptiveAvgPool2d<T>::forward(const BasicVariable<T>& x) {
  return F::adaptive_avg_pool2d(x, size_);
}
template <class T> std::string BasicAdaptiveAvgPool2d<T>::extra_repr() const {
  return "output_size=" + shape_str(size_);
}

#define ZG_INSTANTIATE(T)                   \
  template class BasicGELU<T>;              \
  template class BasicSiLU<T>;              \
  template class BasicSoftplus<T>;          \
  template class BasicLayerNorm<T>;         \
  template class BasicEmbedding<T>;         \
  template class BasicConvTranspose2d<T>;   \
  template class BasicAdaptiveAvgPool2d<T>;
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn
