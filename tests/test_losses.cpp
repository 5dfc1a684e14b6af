// Losses: golden values from the book, gradchecks, bad input.
#include <cmath>

#include <zerograd/nn.hpp>

#include "testing.hpp"

using namespace zg;
namespace F = zg::nn::functional;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

TEST_CASE_TEMPLATE("softmax_cross_entropy: the book's reference value", T, float, double) {
  BasicVariable<T> x({{T(0.3), T(2.9), T(4.0)}, {T(1), T(2), T(3)}});
  // The reference 1.3566595913821025 is the book's formula, -log(y + 1e-7): its
  // delta shifts the value by 6e-7. The exact (PyTorch) value is below.
  const double book = 1.3566595913821025;
  const double expected = 1.356660214628416;
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-12;
  SUBCASE("labels") {
    auto loss = F::softmax_cross_entropy(x, BasicVariable<T>({T(2), T(0)}));
    CHECK(loss.ndim() == 0);
    CHECK(std::abs(loss.item() - expected) < tol);
    CHECK(std::abs(loss.item() - book) < 1e-6);
  }
  SUBCASE("one-hot rows") {
    auto loss = F::softmax_cross_entropy(x, BasicVariable<T>({{T(0), T(0), T(1)}, {T(1), T(0), T(0)}}));
    CHECK(std::abs(loss.item() - expected) < tol);
  }
}

TEST_CASE("softmax_cross_entropy: backward is (softmax(x) - t) / N") {
  Variable64 x({{0.3, 2.9, 4.0}, {1.0, 2.0, 3.0}});
  x.requires_grad_();
  F::softmax_cross_entropy(x, Variable64({2.0, 0.0})).backward();
  const double s[3] = {0.01821127, 0.24519181, 0.73659691};
  CHECK(x.grad().data()(0, 0) == doctest::Approx(s[0] / 2).epsilon(1e-6));
  CHECK(x.grad().data()(0, 2) == doctest::Approx((s[2] - 1) / 2).epsilon(1e-6));
  const double e[3] = {std::exp(1.0), std::exp(2.0), std::exp(3.0)};
  CHECK(x.grad().data()(1, 0) == doctest::Approx((e[0] / (e[0] + e[1] + e[2]) - 1) / 2).epsilon(1e-9));
}

TEST_CASE("softmax_cross_entropy: stable for huge logits") {
  Variable x({{1000.f, 0.f, -1000.f}});
  auto loss = F::softmax_cross_entropy(x, Variable({1.f}));
  CHECK(std::isfinite(loss.item()));
  CHECK(loss.item() == doctest::Approx(1000.0));
}

ZG_GRADCHECK_CASE("SoftmaxCrossEntropy") {
  V x = {uniform({4, 5}, -2.0, 2.0, 31)};
  Variable64 labels({0.0, 4.0, 2.0, 2.0});
  CHECK_GRADCHECK([&](const V& v) { return F::softmax_cross_entropy(v[0], labels); }, x);
  Tensor<double> p = uniform({4, 5}, 0.1, 1.0, 32).data();
  for (std::size_t i = 0; i < 4; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < 5; ++j) s += p(i, j);
    for (std::size_t j = 0; j < 5; ++j) p(i, j) /= s;
  }
  Variable64 probs(p);
  CHECK_GRADCHECK([&](const V& v) { return F::softmax_cross_entropy(v[0], probs); }, x);
  CHECK_GRADGRADCHECK([&](const V& v) { return F::softmax_cross_entropy(v[0], labels); }, x);
}

TEST_CASE("softmax_cross_entropy: bad input") {
  Variable x({{1.f, 2.f, 3.f}, {1.f, 2.f, 3.f}});
  CHECK(message_of<ValueError>([&] { F::softmax_cross_entropy(x, Variable({0.f, 3.f})); }) ==
        "SoftmaxCrossEntropy: label 3.000000 at index 1 is not a class in [0, 3)");
  CHECK(message_of<ValueError>([&] { F::softmax_cross_entropy(x, Variable({0.f, -1.f})); }).find("label -1") !=
        std::string::npos);
  CHECK(message_of<ShapeError>([&] { F::softmax_cross_entropy(x, Variable({0.f, 1.f, 2.f})); })
            .find("SoftmaxCrossEntropy: target must be labels (2) or rows (2, 3), got (3)") == 0);
  CHECK(message_of<ShapeError>([&] { F::softmax_cross_entropy(Variable({1.f, 2.f}), Variable({0.f})); })
            .find("SoftmaxCrossEntropy: logits must be (N, C)") == 0);
}

TEST_CASE("mse_loss, sum_squared_error, binary cross-entropy: values and gradchecks") {
  Variable y({{1.f, 2.f}, {3.f, 4.f}}), t({{1.f, 0.f}, {0.f, 4.f}});
  CHECK(F::mse_loss(y, t).item() == doctest::Approx((4.0 + 9.0) / 4));
  CHECK(F::sum_squared_error(y, t).item() == doctest::Approx(0.5 * 13));
  // Book example (chapter 4): y = [0.1, 0.05, 0.6, 0, 0.05, 0.1, 0, 0.1, 0, 0], t = class 2
  Variable yb({0.1f, 0.05f, 0.6f, 0.f, 0.05f, 0.1f, 0.f, 0.1f, 0.f, 0.f});
  Variable tb({0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f});
  CHECK(F::sum_squared_error(yb, tb).item() == doctest::Approx(0.0975));

  Variable64 logits({-30.0, -1.0, 0.5, 40.0}), targets({0.0, 1.0, 1.0, 0.0});
  double expected = 0;
  for (int i = 0; i < 4; ++i) {
    const double x = logits.data()(i), tt = targets.data()(i);
    expected += std::max(x, 0.0) - x * tt + std::log1p(std::exp(-std::abs(x)));
  }
  CHECK(F::binary_cross_entropy_with_logits(logits, targets).item() == doctest::Approx(expected / 4));
  CHECK(std::isfinite(F::binary_cross_entropy_with_logits(Variable({-1e4f, 1e4f}), Variable({1.f, 0.f})).item()));

  V yt = {uniform({3, 4}, -2.0, 2.0, 41), uniform({3, 4}, -2.0, 2.0, 42)};
  CHECK_GRADCHECK([](const V& v) { return F::mse_loss(v[0], v[1]); }, yt);
  CHECK_GRADCHECK([](const V& v) { return F::sum_squared_error(v[0], v[1]); }, yt);
  V lt = {uniform({3, 4}, 0.2, 2.0, 43, true), uniform({3, 4}, 0.0, 1.0, 44)};
  CHECK_GRADCHECK([](const V& v) { return F::binary_cross_entropy_with_logits(v[0], v[1]); }, lt);

  CHECK(message_of<ShapeError>([&] { F::mse_loss(y, Variable({1.f, 2.f})); }).find("mse_loss: prediction (2, 2)") == 0);
}

TEST_CASE("accuracy: labels and one-hot") {
  Variable scores({{0.1f, 0.9f}, {0.8f, 0.2f}, {0.3f, 0.7f}});
  CHECK(F::accuracy(scores, Variable({1.f, 0.f, 0.f})) == doctest::Approx(2.0 / 3));
  CHECK(F::accuracy(scores, Variable({{0.f, 1.f}, {1.f, 0.f}, {0.f, 1.f}})) == doctest::Approx(1.0));
}
