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

// y = x W + b, W (in, out) (the book's Affine). Default init: He normal, b = 0.
// Input of rank > 2 is flattened to (N, in).
class Linear : public Module {
 public:
  Linear(std::size_t in, std::size_t out, Init init = Init::he(), bool bias = true);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  Variable weight, bias;  // bias is empty without bias
 private:
  std::size_t in_, out_;
};

class ReLU : public Module {
 public:
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "ReLU"; }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double slope = 0.01) : slope_(slope) {}
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "LeakyReLU"; }
  std::string extra_repr() const override;
 private:
  double slope_;
};

class Sigmoid : public Module {
 public:
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Sigmoid"; }
};

class Tanh : public Module {
 public:
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Tanh"; }
};

class Softmax : public Module {
 public:
  explicit Softmax(std::ptrdiff_t axis = -1) : axis_(axis) {}
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Softmax"; }
 private:
  std::ptrdiff_t axis_;
};

// (N, ...) -> (N, prod(...)).
class Flatten : public Module {
 public:
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Flatten"; }
};

// Inverted dropout driven by the module's train/eval mode and zg::generator().
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
 private:
  double p_;
};

// BatchNorm1d over (N, F) and BatchNorm2d over (N, C, H, W), PyTorch
// semantics: gamma = 1, beta = 0, running mean 0 and variance 1 (buffers),
// momentum 0.1, eps 1e-5, unbiased running variance.
class BatchNorm : public Module {
 public:
  Variable forward(const Variable& x) override;
  std::string extra_repr() const override;
  Variable gamma, beta, running_mean, running_var;
 protected:
  BatchNorm(std::size_t features, std::size_t input_rank, double momentum, double eps);
 private:
  std::size_t features_, rank_;
  double momentum_, eps_;
};
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(std::size_t features, double momentum = 0.1, double eps = 1e-5)
      : BatchNorm(features, 2, momentum, eps) {}
  std::string type_name() const override { return "BatchNorm1d"; }
};
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(std::size_t channels, double momentum = 0.1, double eps = 1e-5)
      : BatchNorm(channels, 4, momentum, eps) {}
  std::string type_name() const override { return "BatchNorm2d"; }
};

// Layers added for PyTorch users (layers2.cpp), PyTorch semantics.

// Returns its input.
class Identity : public Module {
 public:
  Variable forward(const Variable& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

// GELU exact (erf) or with the tanh approximation ("tanh").
class GELU : public Module {
 public:
  explicit GELU(bool tanh_approximation = false) : tanh_(tanh_approximation) {}
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override { return tanh_ ? "approximate=tanh" : ""; }
 private:
  bool tanh_;
};

class SiLU : public Module {
 public:
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "SiLU"; }
};

class Softplus : public Module {
 public:
  explicit Softplus(double beta = 1, double threshold = 20);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Softplus"; }
  std::string extra_repr() const override;
 private:
  double beta_, threshold_;
};

// Normalises over the trailing axes normalized_shape; weight (ones) and bias
// (zeros) of that shape when elementwise_affine.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  Variable weight, bias;  // empty without elementwise_affine
 private:
  Shape shape_;
  double eps_;
};

// A table of num_embeddings rows of size embedding_dim, drawn from N(0, 1);
// forward takes indices (any shape) and returns their rows. padding_idx
// (negative counts from the end, as in PyTorch) starts as zeros and gets no
// gradient.
class Embedding : public Module {
 public:
  Embedding(std::size_t num_embeddings, std::size_t embedding_dim, std::optional<std::ptrdiff_t> padding_idx = {});
  Variable forward(const Variable& indices) override;
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;
  Variable weight;
 private:
  std::size_t num_, dim_;
  std::optional<std::size_t> padding_;
};

// The transposed convolution with PyTorch's weight layout (in, out, k, k)
// and a bias (out); output size (H - 1) stride - 2 pad + k + output_padding.
// Weight init: He normal over in * k * k (PyTorch uses a uniform init).
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, int stride = 1,
                  int pad = 0, int output_padding = 0, bool bias = true);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "ConvTranspose2d"; }
  std::string extra_repr() const override;
  Variable weight, bias;
 private:
  std::size_t in_, out_, kernel_;
  int stride_, pad_, output_padding_;
};

// (N, C, H, W) -> (N, C, OH, OW) by functional::adaptive_avg_pool2d;
// AdaptiveAvgPool2d({1, 1}) is global average pooling.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Shape output_size);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
 private:
  Shape size_;
};

// Runs its children in order; they are named "0", "1", ... unless added
// with a name.
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  Sequential& add(std::shared_ptr<Module> m);
  Sequential& add(const std::string& name, std::shared_ptr<Module> m);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Sequential"; }
  std::size_t size() const { return layers_.size(); }
  std::shared_ptr<Module> operator[](std::size_t i) const { return layers_.at(i); }
 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

// The book's MultiLayerNet(Extend): Linear -> [BatchNorm1d] -> activation ->
// [Dropout] for each hidden size, then a final Linear.
struct MLPOptions {
  std::string activation = "relu";  // relu, sigmoid or tanh
  Init init = Init::he();
  bool batch_norm = false;
  double dropout = 0.0;  // 0: no Dropout layers
};
class MLP : public Sequential {
 public:
  MLP(std::size_t in, const std::vector<std::size_t>& hidden, std::size_t out, const MLPOptions& options = {});
  std::string type_name() const override { return "MLP"; }
};

}  // namespace zg::nn
