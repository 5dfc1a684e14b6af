#pragma once
// The small models of the book's chapters 2, 4 and 5, shared by the chapter
// examples and tests/test_chapters.cpp: perceptron gates, the two-layer net
// on raw parameters (for numerical gradients, float or double) and the same
// net as nn layers (for training by backprop).
#include <cmath>
#include <cstddef>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <zerograd/zerograd.hpp>

namespace zg::chapters {

// Chapter 2: perceptrons

// y = 1 if w1 x1 + w2 x2 + b > 0 else 0, for each row of x (N, 2).
struct Perceptron {
  float w1, w2, b;
  Variable operator()(const Variable& x) const {
    const Variable w(Tensor<float>{w1, w2});
    return zg::greater(zg::matmul(x, w) + b, 0.f);
  }
};

// The book's weights and biases.
inline const Perceptron AND{0.5f, 0.5f, -0.7f};
inline const Perceptron NAND{-0.5f, -0.5f, 0.7f};
inline const Perceptron OR{0.5f, 0.5f, -0.2f};

// XOR is not linearly separable: one more layer does it, AND(NAND(x), OR(x)).
inline Variable XOR(const Variable& x) { return AND(zg::stack<float>({NAND(x), OR(x)}, 1)); }

// The four inputs (0,0), (1,0), (0,1), (1,1), in the book's table order.
inline Variable truth_table_inputs() { return Variable({{0.f, 0.f}, {1.f, 0.f}, {0.f, 1.f}, {1.f, 1.f}}); }

// Chapter 4: the two-layer net on raw parameters

enum class Hidden { Sigmoid, ReLU };  // chapter 4 uses sigmoid, chapter 5 ReLU

// affine -> hidden activation -> affine, softmax cross-entropy on top.
// Parameters are plain Variables so that zg::numerical_gradient can perturb
// them one element at a time; T = double matches the book's numpy float64.
template <class T>
struct TwoLayerNet {
  Var<T> W1, b1, W2, b2;
  Hidden hidden;

  TwoLayerNet(std::size_t in, std::size_t hid, std::size_t out, double weight_std, Hidden h = Hidden::Sigmoid)
      : W1(normal({in, hid}, weight_std, "W1")), b1(zeros({hid}, "b1")),
        W2(normal({hid, out}, weight_std, "W2")), b2(zeros({out}, "b2")), hidden(h) {}

  Var<T> predict(const Var<T>& x) const {
    const Var<T> a1 = zg::linear(x, W1, b1);
    const Var<T> z1 = hidden == Hidden::Sigmoid ? zg::sigmoid(a1) : zg::relu(a1);
    return zg::linear(z1, W2, b2);
  }
  // x (N, in), t (N) class labels.
  Var<T> loss(const Var<T>& x, const Var<T>& t) const {
    return nn::functional::softmax_cross_entropy(predict(x), t);
  }
  std::vector<Var<T>*> params() { return {&W1, &b1, &W2, &b2}; }

 private:
  static Var<T> normal(const Shape& shape, double std, const char* name) {
    std::normal_distribution<double> dist(0.0, std);
    Tensor<T> w = Tensor<T>::from_shape(shape);
    for (auto& v : w) v = static_cast<T>(dist(generator()));
    return Var<T>(std::move(w), name).requires_grad_();
  }
  static Var<T> zeros(const Shape& shape, const char* name) {
    Tensor<T> b = Tensor<T>::from_shape(shape);
    b.fill(T(0));
    return Var<T>(std::move(b), name).requires_grad_();
  }
};

// d loss / d p for each parameter by central differences (h = 1e-4): two
// forward passes per element, so this is slow by nature.
template <class T>
std::vector<Tensor<T>> numerical_gradients(TwoLayerNet<T>& net, const Var<T>& x, const Var<T>& t) {
  const std::function<T()> loss = [&] { return net.loss(x, t).item(); };
  std::vector<Tensor<T>> grads;
  for (Var<T>* p : net.params()) grads.push_back(zg::numerical_gradient(loss, *p));
  return grads;
}

// The same gradients by one backward pass.
template <class T>
std::vector<Tensor<T>> backprop_gradients(TwoLayerNet<T>& net, const Var<T>& x, const Var<T>& t) {
  for (Var<T>* p : net.params()) p->cleargrad();
  net.loss(x, t).backward();
  std::vector<Tensor<T>> grads;
  for (Var<T>* p : net.params()) grads.push_back(p->grad().data());
  return grads;
}

template <class T>
double mean_abs_diff(const Tensor<T>& a, const Tensor<T>& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += std::abs(double(a.data()[i]) - double(b.data()[i]));
  return a.size() ? sum / double(a.size()) : 0.0;
}

// Chapter 5: the two-layer net as layers

// 784 - 50 (ReLU) - 10 with weight std 0.01, trained by backprop.
inline std::shared_ptr<nn::Sequential> make_two_layer_net(std::size_t in = 784, std::size_t hidden = 50,
                                                          std::size_t out = 10, double weight_std = 0.01) {
  auto net = std::make_shared<nn::Sequential>();
  net->add("affine1", std::make_shared<nn::Linear>(in, hidden, nn::Init::normal(weight_std)));
  net->add("relu1", std::make_shared<nn::ReLU>());
  net->add("affine2", std::make_shared<nn::Linear>(hidden, out, nn::Init::normal(weight_std)));
  return net;
}

}  // namespace zg::chapters
