#pragma once
/// @file
/// The book's layers as Modules. Each forwards to zg::nn::functional.
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "zerograd/nn/init.hpp"
#include "zerograd/nn/module.hpp"

namespace zg::nn {

/// How a layer initialises its weight; biases start at zero.
struct Init {
  init::Scheme scheme = init::Scheme::He;  ///< He (the default), Xavier or Normal
  double std = 0.01;  ///< for Scheme::Normal
  static Init normal(double std = 0.01) { return {init::Scheme::Normal, std}; }  ///< N(0, std^2)
  static Init xavier() { return {init::Scheme::Xavier, 0}; }  ///< Xavier's normal init
  static Init he() { return {init::Scheme::He, 0}; }  ///< He's normal init
  std::string str() const;  ///< the name parse() reads back: "he", "xavier", "std:0.01"
  static Init parse(const std::string& name);  ///< "he", "xavier", "std" or "std:0.05"
};

// Every layer is a template on its dtype, BasicX<T>; X is the float layer
// training uses (BasicX<double> for gradient checks). rebuild() makes the
// same layer in the other dtype, for Module::to<U>().

/// A fully connected layer, y = x W + b, W (in, out) (the book's Affine). Default init: He normal, b = 0.
/// Input (..., in) maps to (..., out) over its last axis, as PyTorch's Linear;
/// input of rank > 2 whose last axis is not `in` but whose sample size is,
/// (N, C, H, W) with C H W = in, is flattened to (N, in) (the book's Affine).
template <class T>
class BasicLinear : public BasicModule<T> {
 public:
  /// A weight (in, out) and, unless bias is false, a bias (out).
  BasicLinear(std::size_t in, std::size_t out, Init init = Init::he(), bool bias = true);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  ///@{
  /// The parameters, weight (in, out) and bias (out); bias is empty without bias.
  BasicVariable<T> weight, bias;
  ///@}
 private:
  std::size_t in_, out_;
};
using Linear = BasicLinear<float>;  ///< the float Linear

/// max(x, 0) elementwise (zg::relu).
template <class T>
class BasicReLU : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "ReLU"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicReLU>(dtype); }
};
using ReLU = BasicReLU<float>;  ///< the float ReLU

/// x for x > 0, slope * x otherwise (zg::leaky_relu).
template <class T>
class BasicLeakyReLU : public BasicModule<T> {
 public:
  explicit BasicLeakyReLU(double slope = 0.01) : slope_(slope) {}  ///< PyTorch's default slope 0.01
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "LeakyReLU"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicLeakyReLU>(dtype, slope_); }
 private:
  double slope_;
};
using LeakyReLU = BasicLeakyReLU<float>;  ///< the float LeakyReLU

/// 1 / (1 + exp(-x)) elementwise (zg::sigmoid).
template <class T>
class BasicSigmoid : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Sigmoid"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicSigmoid>(dtype); }
};
using Sigmoid = BasicSigmoid<float>;  ///< the float Sigmoid

/// tanh(x) elementwise (zg::tanh).
template <class T>
class BasicTanh : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Tanh"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicTanh>(dtype); }
};
using Tanh = BasicTanh<float>;  ///< the float Tanh

/// Softmax along one axis (zg::softmax).
template <class T>
class BasicSoftmax : public BasicModule<T> {
 public:
  explicit BasicSoftmax(std::ptrdiff_t axis = -1) : axis_(axis) {}  ///< axis counts from the end when negative
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Softmax"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicSoftmax>(dtype, axis_); }
 private:
  std::ptrdiff_t axis_;
};
using Softmax = BasicSoftmax<float>;  ///< the float Softmax

/// (N, ...) -> (N, prod(...)).
template <class T>
class BasicFlatten : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Flatten"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicFlatten>(dtype); }
};
using Flatten = BasicFlatten<float>;  ///< the float Flatten

/// Inverted dropout driven by the module's train/eval mode and zg::generator().
template <class T>
class BasicDropout : public BasicModule<T> {
 public:
  explicit BasicDropout(double p = 0.5);  ///< p: the probability of zeroing an element, in [0, 1)
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicDropout>(dtype, p_); }
 private:
  double p_;
};
using Dropout = BasicDropout<float>;  ///< the float Dropout

/// BatchNorm1d over (N, F) and BatchNorm2d over (N, C, H, W), PyTorch
/// semantics: gamma = 1, beta = 0, running mean 0 and variance 1 (buffers),
/// momentum 0.1, eps 1e-5, unbiased running variance.
template <class T>
class BasicBatchNorm : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  ///@{
  /// The parameters gamma and beta, and the buffers running_mean and
  /// running_var, each (features).
  BasicVariable<T> gamma, beta, running_mean, running_var;
  ///@}
 protected:
  /// input_rank: 2 for BatchNorm1d, 4 for BatchNorm2d.
  BasicBatchNorm(std::size_t features, std::size_t input_rank, double momentum, double eps);
 private:
  std::size_t features_, rank_;
  double momentum_, eps_;
};
/// BatchNorm over (N, F): statistics per feature over the batch.
template <class T>
class BasicBatchNorm1d : public BasicBatchNorm<T> {
 public:
  /// F features.
  explicit BasicBatchNorm1d(std::size_t features, double momentum = 0.1, double eps = 1e-5)
      : BasicBatchNorm<T>(features, 2, momentum, eps) {}
  std::string type_name() const override { return "BatchNorm1d"; }
};
/// BatchNorm over (N, C, H, W): statistics per channel over N, H and W.
template <class T>
class BasicBatchNorm2d : public BasicBatchNorm<T> {
 public:
  /// C channels.
  explicit BasicBatchNorm2d(std::size_t channels, double momentum = 0.1, double eps = 1e-5)
      : BasicBatchNorm<T>(channels, 4, momentum, eps) {}
  std::string type_name() const override { return "BatchNorm2d"; }
};
using BatchNorm = BasicBatchNorm<float>;  ///< the float base of both
using BatchNorm1d = BasicBatchNorm1d<float>;  ///< the float BatchNorm1d
using BatchNorm2d = BasicBatchNorm2d<float>;  ///< the float BatchNorm2d

// Layers added for PyTorch users (layers2.cpp), PyTorch semantics.

/// Returns its input.
template <class T>
class BasicIdentity : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicIdentity>(dtype); }
};
using Identity = BasicIdentity<float>;  ///< the float Identity

/// GELU exact (approximate "none", erf) or with the tanh approximation
/// ("tanh"), as PyTorch's GELU(approximate=...); F::gelu says how. Any other
/// string throws ValueError. GELU(true) is the older spelling of GELU("tanh").
template <class T>
class BasicGELU : public BasicModule<T> {
 public:
  explicit BasicGELU(std::string approximate = "none");  ///< "none" or "tanh"
  /// The same, from a string literal.
  explicit BasicGELU(const char* approximate) : BasicGELU(std::string(approximate)) {}
  /// The older spelling: true is "tanh".
  explicit BasicGELU(bool tanh_approximation) : BasicGELU(std::string(tanh_approximation ? "tanh" : "none")) {}
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override { return "approximate='" + approximate_ + "'"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicGELU>(dtype, approximate_); }
 private:
  std::string approximate_;
};
using GELU = BasicGELU<float>;  ///< the float GELU

/// x sigmoid(x) elementwise, as PyTorch's SiLU (F::silu).
template <class T>
class BasicSiLU : public BasicModule<T> {
 public:
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "SiLU"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicSiLU>(dtype); }
};
using SiLU = BasicSiLU<float>;  ///< the float SiLU

/// log(1 + exp(beta x)) / beta elementwise, as PyTorch's Softplus (F::softplus);
/// x where beta x > threshold.
template <class T>
class BasicSoftplus : public BasicModule<T> {
 public:
  explicit BasicSoftplus(double beta = 1, double threshold = 20);  ///< PyTorch's defaults
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Softplus"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicSoftplus>(dtype, beta_, threshold_); }
 private:
  double beta_, threshold_;
};
using Softplus = BasicSoftplus<float>;  ///< the float Softplus

/// Normalises over the trailing axes normalized_shape; weight (ones) and bias
/// (zeros) of that shape when elementwise_affine.
template <class T>
class BasicLayerNorm : public BasicModule<T> {
 public:
  /// normalized_shape: the trailing axes normalised over.
  explicit BasicLayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override {
    return nn::rebuild<BasicLayerNorm>(dtype, shape_, eps_, weight.defined());
  }
  ///@{
  /// The parameters weight and bias, of normalized_shape; empty without
  /// elementwise_affine.
  BasicVariable<T> weight, bias;
  ///@}
 private:
  Shape shape_;
  double eps_;
};
using LayerNorm = BasicLayerNorm<float>;  ///< the float LayerNorm

/// A table of num_embeddings rows of size embedding_dim, drawn from N(0, 1);
/// forward takes indices (any shape) and returns their rows. padding_idx
/// (negative counts from the end, as in PyTorch) starts as zeros and gets no
/// gradient.
template <class T>
class BasicEmbedding : public BasicModule<T> {
 public:
  /// A table (num_embeddings, embedding_dim); padding_idx as above.
  BasicEmbedding(std::size_t num_embeddings, std::size_t embedding_dim,
                 std::optional<std::ptrdiff_t> padding_idx = {});
  BasicVariable<T> forward(const BasicVariable<T>& indices) override;
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  BasicVariable<T> weight;  ///< the table (num_embeddings, embedding_dim)
 private:
  std::size_t num_, dim_;
  std::optional<std::size_t> padding_;
};
using Embedding = BasicEmbedding<float>;  ///< the float Embedding

/// The transposed convolution with PyTorch's weight layout (in, out, k, k)
/// and a bias (out); output size (H - 1) stride - 2 pad + k + output_padding.
/// Weight init: He normal over in * k * k (PyTorch uses a uniform init).
template <class T>
class BasicConvTranspose2d : public BasicModule<T> {
 public:
  /// A kernel x kernel transposed convolution; bias false leaves it out.
  BasicConvTranspose2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, int stride = 1,
                       int pad = 0, int output_padding = 0, bool bias = true);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "ConvTranspose2d"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override {
    return nn::rebuild<BasicConvTranspose2d>(dtype, in_, out_, kernel_, stride_, pad_, output_padding_,
                                             bias.defined());
  }
  ///@{
  /// The parameters, weight (in, out, k, k) and bias (out); bias is empty without
  /// bias.
  BasicVariable<T> weight, bias;
  ///@}
 private:
  std::size_t in_, out_, kernel_;
  int stride_, pad_, output_padding_;
};
using ConvTranspose2d = BasicConvTranspose2d<float>;  ///< the float ConvTranspose2d

/// (N, C, H, W) -> (N, C, OH, OW) by functional::adaptive_avg_pool2d;
/// AdaptiveAvgPool2d({1, 1}) is global average pooling.
template <class T>
class BasicAdaptiveAvgPool2d : public BasicModule<T> {
 public:
  explicit BasicAdaptiveAvgPool2d(Shape output_size);  ///< (OH, OW)
  explicit BasicAdaptiveAvgPool2d(std::size_t output_size);  ///< square: (output_size, output_size)
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicAdaptiveAvgPool2d>(dtype, size_); }
 private:
  Shape size_;
};
using AdaptiveAvgPool2d = BasicAdaptiveAvgPool2d<float>;  ///< the float AdaptiveAvgPool2d

/// Runs its children in order; they are named "0", "1", ... unless added
/// with a name. A Conv2d child followed by a ReLU child runs as one Function,
/// "Conv2dReLU" (functional::conv2d_relu), and followed by a ReLU and a 2x2
/// MaxPool2d (stride 2, no padding) as "Conv2dReLUMaxPool"
/// (functional::conv2d_relu_pool): the same values and gradients with less
/// memory traffic, and one node for them in graph drawings. Only these exact
/// classes are fused. fuse_conv_relu(false) runs every child on its own.
template <class T>
class BasicSequential : public BasicModule<T> {
 public:
  using Ptr = std::shared_ptr<BasicModule<T>>;  ///< a held module
  BasicSequential() = default;
  BasicSequential(std::initializer_list<Ptr> modules);  ///< the children in order, named "0", "1", ...
  BasicSequential& add(Ptr m);  ///< appends m, named by its position
  BasicSequential& add(const std::string& name, Ptr m);  ///< appends m under name
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "Sequential"; }
  AnyModule rebuild(Dtype dtype) const override;  ///< each child converted by its own to()
  std::size_t size() const { return layers_.size(); }  ///< how many children
  Ptr operator[](std::size_t i) const { return layers_.at(i); }  ///< child i; std::out_of_range past the end
  /// Whether Conv2d + ReLU (+ MaxPool2d) children run fused (the default) or
  /// one by one.
  BasicSequential& fuse_conv_relu(bool on) {
    fuse_ = on;
    return *this;
  }
  bool fuses_conv_relu() const { return fuse_; }  ///< fuse_conv_relu's setting
 private:
  std::vector<Ptr> layers_;
  bool fuse_ = true;
};
using Sequential = BasicSequential<float>;  ///< the float Sequential

/// What BasicMLP builds between its Linear layers.
struct MLPOptions {
  std::string activation = "relu";  ///< relu, sigmoid or tanh
  Init init = Init::he();  ///< the Linear layers' init
  bool batch_norm = false;  ///< a BatchNorm1d after each hidden Linear
  double dropout = 0.0;  ///< 0: no Dropout layers
};
/// The book's MultiLayerNet(Extend): Linear -> [BatchNorm1d] -> activation ->
/// [Dropout] for each hidden size, then a final Linear.
template <class T>
class BasicMLP : public BasicSequential<T> {
 public:
  /// in -> hidden[0] -> ... -> out.
  BasicMLP(std::size_t in, const std::vector<std::size_t>& hidden, std::size_t out, const MLPOptions& options = {});
  std::string type_name() const override { return "MLP"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicMLP>(dtype, in_, hidden_, out_, options_); }
 private:
  std::size_t in_;
  std::vector<std::size_t> hidden_;
  std::size_t out_;
  MLPOptions options_;
};
using MLP = BasicMLP<float>;  ///< the float MLP

}  // namespace zg::nn
