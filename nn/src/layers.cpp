#include "zerograd/nn/layers.hpp"

#include <sstream>

#include "zerograd/nn/functional.hpp"

namespace zg::nn {

namespace F = functional;

namespace {
// 0.5, 1e-05: the shortest form that reads back, for summaries.
std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}
}  // namespace

std::string LeakyReLU::extra_repr() const { return "slope=" + number(slope_); }
std::string Dropout::extra_repr() const { return "p=" + number(p_); }

std::string Init::str() const {
  switch (scheme) {
    case init::Scheme::He: return "he";
    case init::Scheme::Xavier: return "xavier";
    case init::Scheme::Normal: break;
  }
  return "std:" + std::to_string(std);
}

Init Init::parse(const std::string& name) {
  if (name == "he") return he();
  if (name == "xavier") return xavier();
  if (name == "std") return normal();
  if (name.rfind("std:", 0) == 0) {
    try {
      return normal(std::stod(name.substr(4)));
    } catch (const std::exception&) {
    }
  }
  throw ValueError("Init::parse: '" + name + "' is not an init (he, xavier, std or std:<value>)");
}

namespace {
Variable init_weight(const Shape& shape, Init init) {
  Variable w(Tensor<float>(Tensor<float>::from_shape(shape)));
  init::normal(w, init::init_std(init.scheme, shape, init.std));
  return w;
}
}  // namespace

Linear::Linear(std::size_t in, std::size_t out, Init init, bool with_bias) : in_(in), out_(out) {
  if (in == 0 || out == 0)
    throw ValueError("Linear: sizes must be positive, got in=" + std::to_string(in) + ", out=" + std::to_string(out));
  weight = register_parameter("weight", init_weight({in, out}, init));
  if (with_bias) bias = register_parameter("bias", Variable(Tensor<float>(xt::zeros<float>({out}))));
}

Variable Linear::forward(const Variable& x) {
  if (x.ndim() < 2)
    throw ShapeError("Linear: input must be (N, " + std::to_string(in_) + ") or (N, ...), got " + shape_str(x.shape()));
  const std::size_t features = x.size() / x.shape()[0];
  if (x.shape()[0] == 0 || features != in_)
    throw ShapeError("Linear(in=" + std::to_string(in_) + ", out=" + std::to_string(out_) + "): input " +
                     shape_str(x.shape()) + " has " + std::to_string(features) + " features per sample");
  return F::linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return "in=" + std::to_string(in_) + ", out=" + std::to_string(out_) + (bias.defined() ? "" : ", bias=false");
}

Variable ReLU::forward(const Variable& x) { return zg::relu(x); }
Variable LeakyReLU::forward(const Variable& x) { return zg::leaky_relu(x, static_cast<float>(slope_)); }
Variable Sigmoid::forward(const Variable& x) { return zg::sigmoid(x); }
Variable Tanh::forward(const Variable& x) { return zg::tanh(x); }
Variable Softmax::forward(const Variable& x) { return zg::softmax(x, axis_); }

Variable Flatten::forward(const Variable& x) {
  if (x.ndim() < 1) throw ShapeError("Flatten: input must have a batch axis, got a 0-d value");
  return zg::reshape(x, {x.shape()[0], x.shape()[0] ? x.size() / x.shape()[0] : 0});
}

Dropout::Dropout(double p) : p_(p) {
  if (!(p >= 0 && p < 1)) throw ValueError("Dropout: p must be in [0, 1), got " + std::to_string(p));
}
Variable Dropout::forward(const Variable& x) { return F::dropout(x, p_, is_training()); }

BatchNorm::BatchNorm(std::size_t features, std::size_t rank, double momentum, double eps)
    : features_(features), rank_(rank), momentum_(momentum), eps_(eps) {
  if (features == 0) throw ValueError("BatchNorm: the feature/channel count must be positive");
  gamma = register_parameter("gamma", Variable(Tensor<float>(xt::ones<float>({features}))));
  beta = register_parameter("beta", Variable(Tensor<float>(xt::zeros<float>({features}))));
  running_mean = register_buffer("running_mean", Variable(Tensor<float>(xt::zeros<float>({features}))));
  running_var = register_buffer("running_var", Variable(Tensor<float>(xt::ones<float>({features}))));
}

Variable BatchNorm::forward(const Variable& x) {
  if (x.ndim() != rank_ || x.shape()[1] != features_)
    throw ShapeError(type_name() + "(" + std::to_string(features_) + "): expected input " +
                     (rank_ == 2 ? "(N, " : "(N, ") + std::to_string(features_) + (rank_ == 2 ? ")" : ", H, W)") +
                     ", got " + shape_str(x.shape()));
  return F::batch_norm(x, gamma, beta, running_mean, running_var, is_training(), momentum_, eps_);
}

std::string BatchNorm::extra_repr() const {
  return std::to_string(features_) + ", momentum=" + number(momentum_) + ", eps=" + number(eps_);
}

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) add(m);
}

Sequential& Sequential::add(std::shared_ptr<Module> m) { return add(std::to_string(layers_.size()), std::move(m)); }

Sequential& Sequential::add(const std::string& name, std::shared_ptr<Module> m) {
  layers_.push_back(register_module(name, std::move(m)));
  return *this;
}

Variable Sequential::forward(const Variable& x) {
  Variable y = x;
  for (auto& layer : layers_) y = layer->forward(y);
  return y;
}

MLP::MLP(std::size_t in, const std::vector<std::size_t>& hidden, std::size_t out, const MLPOptions& o) {
  auto activation = [&o]() -> std::shared_ptr<Module> {
    if (o.activation == "relu") return std::make_shared<ReLU>();
    if (o.activation == "sigmoid") return std::make_shared<Sigmoid>();
    if (o.activation == "tanh") return std::make_shared<Tanh>();
    throw ValueError("MLP: activation '" + o.activation + "' is not relu, sigmoid or tanh");
  };
  std::size_t prev = in;
  for (std::size_t i = 0; i < hidden.size(); ++i) {
    const std::string k = std::to_string(i);
    add("fc" + k, std::make_shared<Linear>(prev, hidden[i], o.init));
    if (o.batch_norm) add("bn" + k, std::make_shared<BatchNorm1d>(hidden[i]));
    add("act" + k, activation());
    if (o.dropout > 0) add("drop" + k, std::make_shared<Dropout>(o.dropout));
    prev = hidden[i];
  }
  add("fc" + std::to_string(hidden.size()), std::make_shared<Linear>(prev, out, o.init));
}

}  // namespace zg::nn
