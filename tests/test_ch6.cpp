// What chapter 6's experiments rely on, on synthetic data: the book's weight
// decay on a whole model, Dropout's train/eval modes in an MLP, and an MLP
// with BatchNorm that trains.
#include <cmath>

#include <zerograd/zerograd.hpp>

#include "testing.hpp"

using namespace zg;
namespace F = zg::nn::functional;

namespace {

// n samples of `in` features from N(0, 1) and labels in [0, classes).
struct Problem {
  Variable x, t;
};
Problem synthetic(std::size_t n, std::size_t in, std::size_t classes, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  Tensor<float> x = Tensor<float>::from_shape({n, in}), t = Tensor<float>::from_shape({n});
  for (auto& v : x) v = normal(gen);
  for (std::size_t i = 0; i < n; ++i) t(i) = float(gen() % classes);
  return {Variable(x), Variable(t)};
}

nn::MLP make_net(bool batch_norm, double dropout = 0) {
  nn::MLPOptions o;
  o.init = nn::Init::normal(0.3);
  o.batch_norm = batch_norm;
  o.dropout = dropout;
  return nn::MLP(4, {5, 5}, 3, o);
}

}  // namespace

TEST_CASE("weight decay: one SGD step equals a step on loss + 0.5 lambda sum(W^2), weights only") {
  const float lr = 0.5f, lambda = 0.1f;
  const auto p = synthetic(8, 4, 3, 1);
  zg::manual_seed(5);
  auto decayed = make_net(true);  // BatchNorm's gamma and beta must not decay
  zg::manual_seed(5);
  auto explicit_l2 = make_net(true);
  zg::manual_seed(5);
  auto plain = make_net(true);
  // Biases and beta start at 0, where decay would change nothing: move them off it.
  for (auto* net : {&decayed, &explicit_l2, &plain})
    for (auto& [name, p] : net->named_parameters())
      if (name.find(".weight") == std::string::npos) p.data() += 0.3f;

  optim::SGD opt(decayed.parameters(), lr);
  opt.set_weight_decay(lambda);
  F::softmax_cross_entropy(decayed(p.x), p.t).backward();
  opt.step();

  // The book's formulation: the penalty is part of the loss.
  Variable loss = F::softmax_cross_entropy(explicit_l2(p.x), p.t);
  for (const auto& [name, w] : explicit_l2.named_parameters())
    if (name.size() > 7 && name.substr(name.size() - 7) == ".weight") loss = loss + zg::sum(zg::square(w)) * (0.5f * lambda);
  loss.backward();
  optim::SGD(explicit_l2.parameters(), lr).step();

  F::softmax_cross_entropy(plain(p.x), p.t).backward();
  optim::SGD(plain.parameters(), lr).step();

  const auto a = decayed.named_parameters(), b = explicit_l2.named_parameters(), c = plain.named_parameters();
  REQUIRE(a.size() == 3 * 2 + 2 * 2);  // fc0, fc1, fc2 weight and bias; bn0, bn1 gamma and beta
  std::size_t weights = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    const bool is_weight = a[i].first.find(".weight") != std::string::npos;
    weights += is_weight;
    CHECK(xt::allclose(a[i].second.data(), b[i].second.data(), 1e-5, 1e-6));
    // By hand: the decayed weight moved by exactly -lr lambda W more than the plain one.
    zg::Tensor<float> offset = a[i].second.data() - c[i].second.data();
    if (is_weight) {
      zg::Tensor<float> before = (a[i].second.data() + lr * a[i].second.grad().data()) / (1 - lr * lambda);
      zg::Tensor<float> expected = -lr * lambda * before;
      CHECK(xt::allclose(offset, expected, 1e-4, 1e-6));
      CHECK(xt::amax(xt::abs(offset))() > 1e-3f);  // the decay did something
    } else {
      CHECK(xt::amax(xt::abs(offset))() == 0.f);
    }
  }
  CHECK(weights == 3);
}

TEST_CASE("Dropout in an MLP: random in train mode, deterministic and mask-free in eval") {
  const auto p = synthetic(16, 4, 3, 2);
  zg::manual_seed(9);
  auto net = make_net(false, 0.5);
  zg::manual_seed(9);
  auto reference = make_net(false);  // same weights: Dropout draws nothing at construction
  NoGradGuard no_grad;
  const Tensor<float> train1 = net(p.x).data(), train2 = net(p.x).data();
  CHECK_FALSE(train1 == train2);  // a new mask per forward
  net.eval();
  const Tensor<float> eval1 = net(p.x).data(), eval2 = net(p.x).data();
  CHECK(eval1 == eval2);
  CHECK_FALSE(eval1 == train1);
  CHECK(xt::allclose(eval1, reference(p.x).data()));  // eval mode is the identity
  net.train();
  CHECK_FALSE(net(p.x).data() == eval1);
}

TEST_CASE("an MLP with BatchNorm trains on a small synthetic problem") {
  // Labels a fixed function of the inputs: the sign pattern of x0 and x1.
  auto p = synthetic(64, 4, 3, 3);
  for (std::size_t i = 0; i < 64; ++i)
    p.t.data()(i) = float((p.x.data()(i, 0) > 0) + (p.x.data()(i, 1) > 0));
  zg::manual_seed(4);
  auto net = make_net(true);
  optim::SGD opt(net.parameters(), 0.1f);
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    Variable loss = F::softmax_cross_entropy(net(p.x), p.t);
    loss.backward();
    opt.step();
    last = loss.item();
    if (step == 0) first = last;
  }
  CHECK(first > 0.9);
  CHECK(last < 0.3 * first);
  const auto& bn = dynamic_cast<const nn::BatchNorm1d&>(*net[1]);
  CHECK_FALSE(xt::allclose(bn.running_mean.data(), Tensor<float>(xt::zeros<float>({5}))));  // statistics tracked
  net.eval();
  NoGradGuard no_grad;
  CHECK(F::accuracy(net(p.x), p.t) > 0.8);  // running statistics serve in eval mode too
}
