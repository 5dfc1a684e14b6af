#include "zerograd/nn/layers.hpp"

#include <sstream>
#include <typeinfo>

#include "zerograd/nn/conv.hpp"
#include "zerograd/nn/functional.hpp"

namespace zg::nn {

namespace F = functional;

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
template <class T> BasicVariable<T> init_weight(const Shape& shape, Init init) {
  BasicVariable<T> w(Tensor<T>(Tensor<T>::from_shape(shape)));
  init::normal(w, init::init_std(init.scheme, shape, init.std));
  return w;
}
}  // namespace

template <class T>
BasicLinear<T>::BasicLinear(std::size_t in, std::size_t out, Init init, bool with_bias) : in_(in), out_(out) {
  if (in == 0 || out == 0)
    throw ValueError("Linear: sizes must be positive, got in=" + std::to_string(in) + ", out=" + std::to_string(out));
  weight = this->register_parameter("weight", init_weight<T>({in, out}, init));
  if (with_bias) bias = this->register_parameter("bias", BasicVariable<T>(Tensor<T>(xt::zeros<T>({out}))));
}

template <class T>
BasicVariable<T> BasicLinear<T>::forward(const BasicVariable<T>& x) {
  if (x.ndim() < 1)
    throw ShapeError("Linear: input must be (..., " + std::to_string(in_) + ") or (N, ...), got " + shape_str(x.shape()));
  if (x.shape().back() == in_) return F::linear(x, weight, bias);
  const std::size_t features = x.ndim() < 2 || x.shape()[0] == 0 ? x.shape().back() : x.size() / x.shape()[0];
  if (x.ndim() < 2 || x.shape()[0] == 0 || features != in_)
    throw ShapeError("Linear(in=" + std::to_string(in_) + ", out=" + std::to_string(out_) + "): input " +
                     shape_str(x.shape()) + " has " + std::to_string(features) + " features per sample");
  return F::linear(x, weight, bias);
}

template <class T>
std::string BasicLinear<T>::extra_repr() const {
  return "in=" + std::to_string(in_) + ", out=" + std::to_string(out_) + (bias.defined() ? "" : ", bias=false");
}

template <class T>
AnyModule BasicLinear<T>::rebuild(Dtype dtype) const {
  return nn::rebuild<BasicLinear>(dtype, in_, out_, Init::he(), bias.defined());
}

template <class T> BasicVariable<T> BasicReLU<T>::forward(const BasicVariable<T>& x) { return zg::relu(x); }
template <class T> BasicVariable<T> BasicLeakyReLU<T>::forward(const BasicVariable<T>& x) {
  return zg::leaky_relu(x, static_cast<T>(slope_));
}
template <class T> std::string BasicLeakyReLU<T>::extra_repr() const { return "slope=" + zg::number_str(slope_); }
template <class T> BasicVariable<T> BasicSigmoid<T>::forward(const BasicVariable<T>& x) { return zg::sigmoid(x); }
template <class T> BasicVariable<T> BasicTanh<T>::forward(const BasicVariable<T>& x) { return zg::tanh(x); }
template <class T> BasicVariable<T> BasicSoftmax<T>::forward(const BasicVariable<T>& x) {
  return zg::softmax(x, axis_);
}

template <class T>
BasicVariable<T> BasicFlatten<T>::forward(const BasicVariable<T>& x) {
  if (x.ndim() < 1) throw ShapeError("Flatten: input must have a batch axis, got a 0-d value");
  return zg::reshape(x, {x.shape()[0], x.shape()[0] ? x.size() / x.shape()[0] : 0});
}

template <class T>
BasicDropout<T>::BasicDropout(double p) : p_(p) {
  if (!(p >= 0 && p < 1)) throw ValueError("Dropout: p must be in [0, 1), got " + std::to_string(p));
}
template <class T> BasicVariable<T> BasicDropout<T>::forward(const BasicVariable<T>& x) {
  return F::dropout(x, p_, this->is_training());
}
template <class T> std::string BasicDropout<T>::extra_repr() const { return "p=" + zg::number_str(p_); }

template <class T>
BasicBatchNorm<T>::BasicBatchNorm(std::size_t features, std::size_t rank, double momentum, double eps)
    : features_(features), rank_(rank), momentum_(momentum), eps_(eps) {
  if (features == 0) throw ValueError("BatchNorm: the feature/channel count must be positive");
  gamma = this->register_parameter("gamma", BasicVariable<T>(Tensor<T>(xt::ones<T>({features}))));
  beta = this->register_parameter("beta", BasicVariable<T>(Tensor<T>(xt::zeros<T>({features}))));
  running_mean = this->register_buffer("running_mean", BasicVariable<T>(Tensor<T>(xt::zeros<T>({features}))));
  running_var = this->register_buffer("running_var", BasicVariable<T>(Tensor<T>(xt::ones<T>({features}))));
}

template <class T>
BasicVariable<T> BasicBatchNorm<T>::forward(const BasicVariable<T>& x) {
  if (x.ndim() != rank_ || x.shape()[1] != features_)
    throw ShapeError(this->type_name() + "(" + std::to_string(features_) + "): expected input (N, " +
                     std::to_string(features_) + (rank_ == 2 ? ")" : ", H, W)") + ", got " + shape_str(x.shape()));
  return F::batch_norm(x, gamma, beta, running_mean, running_var, this->is_training(), momentum_, eps_);
}

template <class T>
std::string BasicBatchNorm<T>::extra_repr() const {
  return std::to_string(features_) + ", momentum=" + zg::number_str(momentum_) + ", eps=" + zg::number_str(eps_);
}

template <class T>
AnyModule BasicBatchNorm<T>::rebuild(Dtype dtype) const {
  if (rank_ == 2) return nn::rebuild<BasicBatchNorm1d>(dtype, features_, momentum_, eps_);
  return nn::rebuild<BasicBatchNorm2d>(dtype, features_, momentum_, eps_);
}

template <class T>
BasicSequential<T>::BasicSequential(std::initializer_list<Ptr> modules) {
  for (const auto& m : modules) add(m);
}

template <class T>
BasicSequential<T>& BasicSequential<T>::add(Ptr m) {
  return add(std::to_string(layers_.size()), std::move(m));
}

template <class T>
BasicSequential<T>& BasicSequential<T>::add(const std::string& name, Ptr m) {
  layers_.push_back(this->register_module(name, std::move(m)));
  return *this;
}

namespace {
// Exactly this class: a subclass may override forward.
template <class Exact, class Module>
bool is(const Module& m) {
  return typeid(m) == typeid(Exact);
}
}  // namespace

template <class T>
BasicVariable<T> BasicSequential<T>::forward(const BasicVariable<T>& x) {
  BasicVariable<T> y = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    BasicModule<T>& layer = *layers_[i];
    if (fuse_ && i + 1 < layers_.size() && is<BasicConv2d<T>>(layer) && is<BasicReLU<T>>(*layers_[i + 1])) {
      auto& conv = static_cast<BasicConv2d<T>&>(layer);
      if (i + 2 < layers_.size() && is<BasicMaxPool2d<T>>(*layers_[i + 2])) {
        const auto& pool = static_cast<const BasicMaxPool2d<T>&>(*layers_[i + 2]);
        if (pool.kernel() == 2 && pool.stride() == 2 && pool.pad() == 0) {
          y = conv.forward_relu_pool(y);  // Note [Conv2d with ReLU and pooling]
          i += 2;
          continue;
        }
      }
      y = conv.forward_relu(y);  // Note [Conv2d with ReLU]
      ++i;
    } else {
      y = layer.forward(y);
    }
  }
  return y;
}

template <class T>
AnyModule BasicSequential<T>::rebuild(Dtype dtype) const {
  auto convert = [this](auto seq) -> AnyModule {
    using U = typename decltype(seq)::element_type::scalar_type;
    for (const auto& [name, m] : this->children()) seq->add(name, m->template to<U>());
    seq->fuse_conv_relu(fuse_);
    return seq;
  };
  if (dtype == Dtype::float64) return convert(std::make_shared<BasicSequential<double>>());
  return convert(std::make_shared<BasicSequential<float>>());
}

template <class T>
BasicMLP<T>::BasicMLP(std::size_t in, const std::vector<std::size_t>& hidden, std::size_t out, const MLPOptions& o)
    : in_(in), hidden_(hidden), out_(out), options_(o) {
  auto activation = [&o]() -> std::shared_ptr<BasicModule<T>> {
    if (o.activation == "relu") return std::make_shared<BasicReLU<T>>();
    if (o.activation == "sigmoid") return std::make_shared<BasicSigmoid<T>>();
    if (o.activation == "tanh") return std::make_shared<BasicTanh<T>>();
    throw ValueError("MLP: activation '" + o.activation + "' is not relu, sigmoid or tanh");
  };
  std::size_t prev = in;
  for (std::size_t i = 0; i < hidden.size(); ++i) {
    const std::string k = std::to_string(i);
    this->add("fc" + k, std::make_shared<BasicLinear<T>>(prev, hidden[i], o.init));
    if (o.batch_norm) this->add("bn" + k, std::make_shared<BasicBatchNorm1d<T>>(hidden[i]));
    this->add("act" + k, activation());
    if (o.dropout > 0) this->add("drop" + k, std::make_shared<BasicDropout<T>>(o.dropout));
    prev = hidden[i];
  }
  this->add("fc" + std::to_string(hidden.size()), std::make_shared<BasicLinear<T>>(prev, out, o.init));
}

#define ZG_INSTANTIATE(T)                  \
  template class BasicLinear<T>;           \
  template class BasicReLU<T>;             \
  template class BasicLeakyReLU<T>;        \
  template class BasicSigmoid<T>;          \
  template class BasicTanh<T>;             \
  template class BasicSoftmax<T>;          \
  template class BasicFlatten<T>;          \
  template class BasicDropout<T>;          \
  template class BasicBatchNorm<T>;        \
  template class BasicBatchNorm1d<T>;      \
  template class BasicBatchNorm2d<T>;      \
  template class BasicSequential<T>;       \
  template class BasicMLP<T>;
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn
