// The claims the lesson examples make (custom_function, higher_order,
// softmax_with_loss, relu_switch, zero_init), checked with the library directly.
#include <cmath>
#include <memory>
#include <vector>

#include <zerograd/nn.hpp>
#include <zerograd/optim.hpp>

#include "testing.hpp"

using namespace zg;
namespace F = zg::nn::functional;
using zg::testing::uniform;
using V = std::vector<Variable64>;

namespace {

double max_abs_diff(const Tensor<double>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a.data()[i] - b.data()[i]));
  return m;
}

double max_abs(const Tensor<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

// softmax + cross-entropy (batch mean) from exp, sum(keepdims), div, log, mul, neg only.
Variable64 primitive_softmax_cross_entropy(const Variable64& x, const Variable64& t) {
  Variable64 e = zg::exp(x);
  Variable64 y = e / zg::sum(e, {1}, true);
  return -zg::sum(t * zg::log(y)) * (1.0 / static_cast<double>(x.shape()[0]));
}

struct Softplus {
  std::string name() const { return "Softplus"; }
  template <class T>
  Outputs<T> forward(const TensorList<T>& x) const {
    return Tensor<T>(xt::maximum(x[0], T(0)) + xt::log1p(xt::exp(-xt::abs(x[0]))));
  }
  // d softplus(x) = sigmoid(x) dx
  template <class T>
  Variables<T> backward(const Function<T>& self, const Variables<T>& gy) const {
    return {gy[0] * zg::sigmoid(self.input(0))};
  }
};

// The upstream gradient gy is forgotten.
struct SoftplusForgotGy : Softplus {
  template <class T>
  Variables<T> backward(const Function<T>& self, const Variables<T>&) const {
    return {zg::sigmoid(self.input(0))};
  }
};

struct TwoLayerNet {
  std::shared_ptr<nn::Linear> fc1 = std::make_shared<nn::Linear>(2, 6);
  std::shared_ptr<nn::Linear> fc2 = std::make_shared<nn::Linear>(6, 3);
  nn::Sequential model{fc1, std::make_shared<nn::Sigmoid>(), fc2};
};

std::vector<double> train(TwoLayerNet& net, int steps) {
  const auto data = nn::data::spiral(30);
  const Variable x(data.images), t(data.labels);
  optim::SGD opt(net.model.parameters(), 1.0f);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    Variable loss = F::softmax_cross_entropy(net.model(x), t);
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}

// max over i, j of |w(i, j) - w(i, 0)|: 0 when every column equals the first.
float column_spread(const Tensor<float>& w) {
  float spread = 0;
  for (std::size_t i = 0; i < w.shape(0); ++i)
    for (std::size_t j = 1; j < w.shape(1); ++j) spread = std::max(spread, std::abs(w(i, j) - w(i, 0)));
  return spread;
}

float row_spread(const Tensor<float>& w) { return column_spread(Tensor<float>(xt::transpose(w))); }

}  // namespace

TEST_CASE("softmax + cross-entropy from primitive ops sends (y - t) / N to the logits") {
  const std::size_t N = 4, C = 5;
  Tensor<double> logits = uniform({N, C}, -3.0, 3.0, 81).data();
  Tensor<double> one_hot = xt::zeros<double>({N, C});
  const std::size_t labels[N] = {3, 0, 4, 1};
  for (std::size_t i = 0; i < N; ++i) one_hot(i, labels[i]) = 1;
  const Variable64 t(one_hot);

  Variable64 x(logits);
  x.requires_grad_();
  Variable64 loss = primitive_softmax_cross_entropy(x, t);
  loss.backward();

  Variable64 x_fused(logits);
  x_fused.requires_grad_();
  Variable64 fused = F::softmax_cross_entropy(x_fused, t);
  fused.backward();

  Tensor<double> formula = Tensor<double>::from_shape({N, C});
  for (std::size_t i = 0; i < N; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < C; ++j) s += std::exp(logits(i, j));
    for (std::size_t j = 0; j < C; ++j) formula(i, j) = (std::exp(logits(i, j)) / s - one_hot(i, j)) / double(N);
  }
  CHECK(std::abs(loss.item() - fused.item()) < 1e-12);
  CHECK(max_abs(formula) > 0.05);  // not trivially zero
  CHECK(max_abs_diff(x.grad().data(), formula) < 1e-12);
  CHECK(max_abs_diff(x.grad().data(), x_fused.grad().data()) < 1e-12);
}

TEST_CASE("sum_squared_error sends y - t to the output") {
  Variable64 y = uniform({3, 4}, -2.0, 2.0, 82);
  const Variable64 t = uniform({3, 4}, -2.0, 2.0, 83);
  y.requires_grad_();
  F::sum_squared_error(y, t).backward();
  const Tensor<double> diff = y.data() - t.data();
  CHECK(max_abs(diff) > 0.1);
  CHECK(max_abs_diff(y.grad().data(), diff) < 1e-14);
}

TEST_CASE_TEMPLATE("ReLU passes the gradient where its input is positive and blocks it elsewhere", T, float, double) {
  BasicVariable<T> a({{T(0), T(-2.75), T(1.5), T(-1.25)}, {T(-2.25), T(2.5), T(0.75), T(0.5)}});
  a.requires_grad_();
  const BasicVariable<T> up({{T(2), T(-0.5), T(-1.5), T(1)}, {T(-1.5), T(2.25), T(0.5), T(3)}});
  typename BasicVariable<T>::BackwardOptions o;
  o.seed = up;
  zg::relu(a).backward(o);
  const Tensor<T>& g = a.grad().data();
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    if (a.data().data()[i] > 0) CHECK(g.data()[i] == up.data().data()[i]);
    else CHECK(g.data()[i] == T(0));  // also at a = 0 exactly
  }
}

TEST_CASE("ReLU between two affine layers: dL/da = mask * dL/dh, dead units get no weight gradient") {
  const Variable x({{1.f, -2.f, 0.5f}, {-1.f, 0.5f, 2.f}});
  Variable W1({{1.f, -1.f, 0.5f, 0.f}, {0.5f, 1.f, -0.5f, 1.f}, {-1.f, 0.5f, 1.f, -0.5f}});
  Variable b1({0.5f, 0.f, -0.5f, 1.f}), W2({{1.f, -1.f}, {0.5f, 1.f}, {-1.f, 0.5f}, {2.f, 1.f}});
  W1.requires_grad_();
  W2.requires_grad_();
  Variable a = zg::linear(x, W1, b1);
  Variable h = zg::relu(a);
  Variable::BackwardOptions o;
  o.seed = Variable({{1.f, -1.f}, {0.5f, 2.f}});
  o.retain_grad = true;
  zg::linear(h, W2).backward(o);
  const Tensor<float>& da = a.grad().data();
  const Tensor<float>& dh = h.grad().data();
  CHECK(a.data()(0, 0) == 0.f);  // the kink itself is in the batch
  for (std::size_t i = 0; i < a.size(); ++i)
    CHECK(da.data()[i] == (a.data().data()[i] > 0 ? dh.data()[i] : 0.f));
  CHECK(dh(0, 0) == 2.f);  // blocked although the upstream gradient is not zero
  const Tensor<float>& dW1 = W1.grad().data();
  for (std::size_t k = 0; k < 3; ++k) CHECK(dW1(k, 0) == 0.f);  // unit 0 is off for both samples
  CHECK(std::abs(dW1(2, 3)) > 1.f);
}

// Note: from all-zero weights a balanced data set gives W2 a zero gradient
// too (every hidden output is 0.5), so the weights hardly move for hundreds of
// steps and "identical" would be trivially true: the equal start here is 0.3.
TEST_CASE("all-equal init: hidden units stay identical under SGD, random init breaks the symmetry") {
  SUBCASE("all weights 0.3") {
    TwoLayerNet net;
    nn::init::constant(net.fc1->weight, 0.3);
    nn::init::constant(net.fc2->weight, 0.3);
    train(net, 100);
    const Tensor<float>& W1 = net.fc1->weight.data();
    CHECK(std::abs(W1(0, 0) - 0.3f) + std::abs(W1(1, 0) - 0.3f) > 0.1f);  // the weights did move
    CHECK(column_spread(W1) <= 1e-7f);
    CHECK(column_spread(net.fc1->weight.grad().data()) <= 1e-7f);
    CHECK(row_spread(net.fc2->weight.data()) <= 1e-7f);  // and so do their outgoing weights
  }
  SUBCASE("all-zero weights stay identical too") {
    TwoLayerNet net;
    nn::init::zeros(net.fc1->weight);
    nn::init::zeros(net.fc2->weight);
    train(net, 100);
    CHECK(column_spread(net.fc1->weight.data()) <= 1e-7f);
    CHECK(row_spread(net.fc2->weight.data()) <= 1e-7f);
  }
  SUBCASE("He normal") {
    zg::manual_seed(7);
    TwoLayerNet net;
    const auto losses = train(net, 200);
    CHECK(column_spread(net.fc1->weight.data()) > 0.1f);
    CHECK(losses.back() < 0.8 * losses.front());
  }
}

TEST_CASE("Newton's method with a create_graph second derivative reaches 1 in <= 10 steps") {
  Variable64 x(2.0);
  x.requires_grad_();
  Variable64::BackwardOptions o;
  o.create_graph = true;
  int steps = 0;
  for (; steps < 10 && std::abs(x.item() - 1) >= 1e-6; ++steps) {
    x.cleargrad();
    (zg::pow(x, 4.0) - 2.0 * zg::square(x)).backward(o);
    Variable64 df = x.grad();
    x.cleargrad();
    df.backward();
    x.set_data(Tensor<double>(x.item() - df.item() / x.grad().item()));
  }
  x.cleargrad();
  CHECK(std::abs(x.item() - 1) < 1e-6);
  CHECK(steps <= 10);
  CHECK(steps >= 3);  // from 2 it takes a few steps (the book: 1.4545, 1.1510, 1.0253, ...)
}

TEST_CASE("the first four derivatives of tanh by repeated create_graph backward match the closed forms") {
  for (double at : {0.5, -1.2, 2.0}) {
    CAPTURE(at);
    const double y = std::tanh(at), s = 1 - y * y;
    const double closed[4] = {s, -2 * y * s, -2 * s * (1 - 3 * y * y), 8 * y * s * (2 - 3 * y * y)};
    Variable64 x(at);
    x.requires_grad_();
    Variable64 g = zg::tanh(x);
    Variable64::BackwardOptions o;
    o.create_graph = true;
    for (int n = 1; n <= 4; ++n) {
      CAPTURE(n);
      x.cleargrad();
      g.backward(o);
      g = x.grad();
      CHECK(std::abs(g.item() - closed[n - 1]) < 1e-9);
    }
    x.cleargrad();
  }
}

TEST_CASE("double backprop: z = (dy/dx)^3 + y with y = x^2 has dz/dx = 24x^2 + 2x") {
  Variable64 x(2.0);
  x.requires_grad_();
  Variable64 y = zg::square(x);
  Variable64::BackwardOptions o;
  o.create_graph = true;
  y.backward(o);
  Variable64 gx = x.grad();
  x.cleargrad();
  (zg::pow(gx, 3.0) + y).backward();
  CHECK(x.grad().item() == doctest::Approx(100).epsilon(1e-12));
}

TEST_CASE("a custom softplus passes gradcheck and gradgradcheck, one that forgets gy fails") {
  const V x = {Variable64({{-3.0, -0.5, 0.2}, {1.0, 2.5, 4.0}})};
  CHECK_GRADCHECK([](const V& v) { return zg::call(Softplus{}, v[0]); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::call(Softplus{}, v[0]); }, x);

  const auto bad = zg::gradcheck([](const V& v) { return zg::call(SoftplusForgotGy{}, v[0]); }, x);
  INFO(zg::testing::str(bad));
  CHECK_FALSE(bad.passed);
  CHECK(bad.reason == "analytic and numeric gradients differ");
  CHECK(bad.worst_position.size() == 2);
  CHECK(std::abs(bad.analytic - bad.numeric) > 0.01);

  SUBCASE("the same op works in float") {
    Variable xf({-2.f, 0.f, 2.f});
    xf.requires_grad_();
    zg::sum(zg::call(Softplus{}, xf)).backward();
    CHECK(xf.grad().data()(1) == 0.5f);
    CHECK(xf.grad().data()(2) == doctest::Approx(1 / (1 + std::exp(-2.0))).epsilon(1e-6));
  }
}
