#pragma once
// The book's layers as Modules. Each forwards to zg::nn::functional.
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "zerograd/nn/init.hpp"
#include "zerograd/nn/module.hpp"

namespace zg::nn {

// How a layer initialises its weight; biases start at zero.
struct Init {
  init::Scheme scheme = init::Scheme::He;
  double std = 0.01;  // for Scheme::Normal
  static Init normal(double std = 0.01) { return {init::Scheme::Normal, std}; }
  static Init xavier() { return {init::Scheme::Xavier, 0}; }
  static Init he() { return {init::Scheme::He, 0}; }
  std::string str() const;
  static Init parse(const std::string& name);  // "he", "xavier", "std" or "std:0.05"
};

// Every layer is a template on its dtype, BasicX<T>; X is the float layer
// training uses (BasicX<double> for gradient checks). rebuild() makes the
// same layer in the other dtype, for Module::to<U>().

// y = x W + b, W (in, out) (the book's Affine). Default init: He normal, b = 0.
// Input (..., in) maps to (..., out) over its last axis, as PyTorch's Linear;
// input of rank > 2 whose last axis is not `in` but whose sample size is,
// (N, C, H, W) with C H W = in, is flattened to (N, in) (the book's Affine).
template <class T>
class BasicLinear : public BasicModule<T> {
 public:
  BasicLinear(std::size_t in, std::size_t out, Init init = Init::he(), bool bias = true);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  BasicVariable<T> weight, bias;  // bias is empty without bias
 private:
  std::size_t in_, out_;
};
using Linear = BasicLinear<float>;

template <class T>
class BasicReLU : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "ReLU"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicReLU>(dtype); }
};
using ReLU = BasicReLU<float>;

template <class T>
class BasicLeakyReLU : public BasicModule<T> {
 public:
  explicit BasicLeakyReLU(double slope = 0.01) : slope_(slope) {}
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "LeakyReLU"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicLeakyReLU>(dtype, slope_); }
 private:
  double slope_;
};
using LeakyReLU = BasicLeakyReLU<float>;

template <class T>
class BasicSigmoid : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Sigmoid"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicSigmoid>(dtype); }
};
using Sigmoid = BasicSigmoid<float>;

template <class T>
class BasicTanh : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Tanh"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicTanh>(dtype); }
};
using Tanh = BasicTanh<float>;

template <class T>
class BasicSoftmax : public BasicModule<T> {
 public:
  explicit BasicSoftmax(std::ptrdiff_t axis = -1) : axis_(axis) {}
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Softmax"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicSoftmax>(dtype, axis_); }
 private:
  std::ptrdiff_t axis_;
};
using Softmax = BasicSoftmax<float>;

// (N, ...) -> (N, prod(...)).
template <class T>
class BasicFlatten : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Flatten"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicFlatten>(dtype); }
};
using Flatten = BasicFlatten<float>;

// Inverted dropout driven by the module's train/eval mode and zg::generator().
template <class T>
class BasicDropout : public BasicModule<T> {
 public:
  explicit BasicDropout(double p = 0.5);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicDropout>(dtype, p_); }
 private:
  double p_;
};
using Dropout = BasicDropout<float>;

// BatchNorm1d over (N, F) and BatchNorm2d over (N, C, H, W), PyTorch
// semantics: gamma = 1, beta = 0, running mean 0 and variance 1 (buffers),
// momentum 0.1, eps 1e-5, unbiased running variance.
template <class T>
class BasicBatchNorm : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  BasicVariable<T> gamma, beta, running_mean, running_var;
 protected:
  BasicBatchNorm(std::size_t features, std::size_t input_rank, double momentum, double eps);
 private:
  std::size_t features_, rank_;
  double momentum_, eps_;
};
template <class T>
class BasicBatchNorm1d : public BasicBatchNorm<T> {
 public:
  explicit BasicBatchNorm1d(std::size_t features, double momentum = 0.1, double eps = 1e-5)
      : BasicBatchNorm<T>(features, 2, momentum, eps) {}
  std::string type_name() const override { return "BatchNorm1d"; }
};
template <class T>
class BasicBatchNorm2d : public BasicBatchNorm<T> {
 public:
  explicit BasicBatchNorm2d(std::size_t channels, double momentum = 0.1, double eps = 1e-5)
      : BasicBatchNorm<T>(channels, 4, momentum, eps) {}
  std::string type_name() const override { return "BatchNorm2d"; }
};
using BatchNorm = BasicBatchNorm<float>;
using BatchNorm1d = BasicBatchNorm1d<float>;
using BatchNorm2d = BasicBatchNorm2d<float>;

// Layers added for PyTorch users (layers2.cpp), PyTorch semantics.

// Returns its input.
template <class T>
class BasicIdentity : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicIdentity>(dtype); }
};
using Identity = BasicIdentity<float>;

// GELU exact (approximate "none", erf) or with the tanh approximation
// ("tanh"), as PyTorch's GELU(approximate=...); F::gelu says how. Any other
// string throws ValueError. GELU(true) is the older spelling of GELU("tanh").
template <class T>
class BasicGELU : public BasicModule<T> {
 public:
  explicit BasicGELU(std::string approximate = "none");
  explicit BasicGELU(const char* approximate) : BasicGELU(std::string(approximate)) {}
  explicit BasicGELU(bool tanh_approximation) : BasicGELU(std::string(tanh_approximation ? "tanh" : "none")) {}
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override { return "approximate='" + approximate_ + "'"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicGELU>(dtype, approximate_); }
 private:
  std::string approximate_;
};
using GELU = BasicGELU<float>;

template <class T>
class BasicSiLU : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "SiLU"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicSiLU>(dtype); }
};
using SiLU = BasicSiLU<float>;

template <class T>
class BasicSoftplus : public BasicModule<T> {
 public:
  explicit BasicSoftplus(double beta = 1, double threshold = 20);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Softplus"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicSoftplus>(dtype, beta_, threshold_); }
 private:
  double beta_, threshold_;
};
using Softplus = BasicSoftplus<float>;

// Normalises over the trailing axes normalized_shape; weight (ones) and bias
// (zeros) of that shape when elementwise_affine.
template <class T>
class BasicLayerNorm : public BasicModule<T> {
 public:
  explicit BasicLayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override {
    return nn::rebuild<BasicLayerNorm>(dtype, shape_, eps_, weight.defined());
  }
  BasicVariable<T> weight, bias;  // empty without elementwise_affine
 private:
  Shape shape_;
  double eps_;
};
using LayerNorm = BasicLayerNorm<float>;

// A table of num_embeddings rows of size embedding_dim, drawn from N(0, 1);
// forward takes indices (any shape) and returns their rows. padding_idx
// (negative counts from the end, as in PyTorch) starts as zeros and gets no
// gradient.
template <class T>
class BasicEmbedding : public BasicModule<T> {
 public:
  BasicEmbedding(std::size_t num_embeddings, std::size_t embedding_dim,
                 std::optional<std::ptrdiff_t> padding_idx = {});
  BasicVariable<T> forward(const BasicVariable<T>& indices) override;
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  BasicVariable<T> weight;
 private:
  std::size_t num_, dim_;
  std::optional<std::size_t> padding_;
};
using Embedding = BasicEmbedding<float>;

// The transposed convolution with PyTorch's weight layout (in, out, k, k)
// and a bias (out); output size (H - 1) stride - 2 pad + k + output_padding.
// Weight init: He normal over in * k * k (PyTorch uses a uniform init).
template <class T>
class BasicConvTranspose2d : public BasicModule<T> {
 public:
  BasicConvTranspose2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, int stride = 1,
                       int pad = 0, int output_padding = 0, bool bias = true);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "ConvTranspose2d"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override {
    return nn::rebuild<BasicConvTranspose2d>(dtype, in_, out_, kernel_, stride_, pad_, output_padding_,
                                             bias.defined());
  }
  BasicVariable<T> weight, bias;
 private:
  std::size_t in_, out_, kernel_;
  int stride_, pad_, output_padding_;
};
using ConvTranspose2d = BasicConvTranspose2d<float>;

// (N, C, H, W) -> (N, C, OH, OW) by functional::adaptive_avg_pool2d;
// AdaptiveAvgPool2d({1, 1}) is global average pooling.
template <class T>
class BasicAdaptiveAvgPool2d : public BasicModule<T> {
 public:
  explicit BasicAdaptiveAvgPool2d(Shape output_size);
  explicit BasicAdaptiveAvgPool2d(std::size_t output_size);  // square: (output_size, output_size)
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicAdaptiveAvgPool2d>(dtype, size_); }
 private:
  Shape size_;
};
using AdaptiveAvgPool2d = BasicAdaptiveAvgPool2d<float>;

// Runs its children in order; they are named "0", "1", ... unless added
// with a name. A Conv2d child followed by a ReLU child runs as one Function,
// "Conv2dReLU" (functional::conv2d_relu), and followed by a ReLU and a 2x2
// MaxPool2d (stride 2, no padding) as "Conv2dReLUMaxPool"
// (functional::conv2d_relu_pool): the same values and gradients with less
// memory traffic, and one node for them in graph drawings. Only these exact
// classes are fused. fuse_conv_relu(false) runs every child on its own.
template <class T>
class BasicSequential : public BasicModule<T> {
 public:
  using Ptr = std::shared_ptr<BasicModule<T>>;
  BasicSequential() = default;
  BasicSequential(std::initializer_list<Ptr> modules);
  BasicSequential& add(Ptr m);
  BasicSequential& add(const std::string& name, Ptr m);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Sequential"; }
  AnyModule rebuild(Dtype dtype) const override;  // each child converted by its own to()
  std::size_t size() const { return layers_.size(); }
  Ptr operator[](std::size_t i) const { return layers_.at(i); }
  BasicSequential& fuse_conv_relu(bool on) {
    fuse_ = on;
    return *this;
  }
  bool fuses_conv_relu() const { return fuse_; }
 private:
  std::vector<Ptr> layers_;
  bool fuse_ = true;
};
using Sequential = BasicSequential<float>;

// The book's MultiLayerNet(Extend): Linear -> [BatchNorm1d] -> activation ->
// [Dropout] for each hidden size, then a final Linear.
struct MLPOptions {
  std::string activation = "relu";  // relu, sigmoid or tanh
  Init init = Init::he();
  bool batch_norm = false;
  double dropout = 0.0;  // 0: no Dropout layers
};
template <class T>
class BasicMLP : public BasicSequential<T> {
 public:
  BasicMLP(std::size_t in, const std::vector<std::size_t>& hidden, std::size_t out, const MLPOptions& options = {});
  std::string type_name() const override { return "MLP"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicMLP>(dtype, in_, hidden_, out_, options_); }
 private:
  std::size_t in_;
  std::vector<std::size_t> hidden_;
  std::size_t out_;
  MLPOptions options_;
};
using MLP = BasicMLP<float>;

}  // namespace zg::nn
