// mean, max, min, logsumexp, norm, argmax / argmin (sum is in test_arithmetic.cpp).
#include <cmath>
#include <limits>

#include "testing.hpp"

using namespace zg;
using zg::testing::column;
using zg::testing::iota;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

namespace {
// Every axes argument the gradchecks run on a 3-D input.
const std::vector<Axes> kAxes = {{}, {0}, {1}, {2}, {-1}, {0, 2}, {1, 2}, {-3, -2}, {0, 1, 2}};

// The gradient of sum(f(x)) with respect to x.
template <class F>
Tensor<double> grad_of(F f, const Tensor<double>& data) {
  Variable64 x(data);
  x.requires_grad_();
  zg::sum(f(x)).backward();
  return x.grad().data();
}
}  // namespace

// Mean

TEST_CASE("mean: values") {
  Variable a({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  CHECK(zg::mean(a).item() == doctest::Approx(3.5));
  CHECK(zg::mean(a).ndim() == 0);
  CHECK(zg::mean(a, {0}).data() == Tensor<float>({2.5, 3.5, 4.5}));
  CHECK(zg::mean(a, {1}, true).data() == column({2.f, 5.f}));
  CHECK(zg::mean(a, {-1}).data() == Tensor<float>({2, 5}));
  CHECK(zg::mean(a, {0, 1}, true).shape() == Shape{1, 1});
  CHECK(grad_of([](const Variable64& x) { return zg::mean(x, {1}); }, iota({2, 4})) ==
        Tensor<double>({{0.25, 0.25, 0.25, 0.25}, {0.25, 0.25, 0.25, 0.25}}));
}

// mean is sum times a constant.
TEST_CASE("sum: axes and keepdims") {
  Variable a({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  CHECK(zg::sum(a).item() == 21);
  CHECK(zg::sum(a).ndim() == 0);
  CHECK(zg::sum(a, {0}).data() == Tensor<float>({5, 7, 9}));
  CHECK(zg::sum(a, {1}, true).data() == zg::testing::column({6.f, 15.f}));
  CHECK(zg::sum(a, {-1}).data() == Tensor<float>({6, 15}));
  CHECK(zg::sum(a, {0, 1}, true).shape() == Shape{1, 1});
  CHECK(message_of<ShapeError>([&] { zg::sum(a, {2}); }).find("Sum: axis 2 is out of range") != std::string::npos);
}

ZG_GRADCHECK_CASE("Sum") {  // sum over axes, and mean built on it
  {
    V x = {uniform({2, 3, 4}, 0.5, 2.0, 11, true)};
    for (bool keep : {false, true}) {
      CAPTURE(keep);
      for (const Axes& axes : std::vector<Axes>{{}, {0}, {1}, {2}, {-1}, {0, 2}, {1, 2}}) {
        CHECK_GRADCHECK([&](const V& v) { return zg::sum(v[0], axes, keep); }, x);
        CHECK_GRADGRADCHECK([&](const V& v) { return zg::sum(v[0] * v[0], axes, keep); }, x);
      }
  }
  CHECK_GRADCHECK([](const V& v) { return zg::sum(v[0]); }, V{uniform({}, 0.5, 2.0, 12)});
  }
  {
    V x = {uniform({2, 3, 4}, 0.5, 2.0, 71, true)};
    for (bool keep : {false, true})
      for (const Axes& axes : kAxes) {
        CAPTURE(keep);
        CAPTURE(axes);
        CHECK_GRADCHECK([&](const V& v) { return zg::mean(v[0], axes, keep); }, x);
      }
    CHECK_GRADGRADCHECK([](const V& v) { return zg::mean(zg::square(v[0]), {1}); }, x);
  }
}

// Max and min

TEST_CASE("max and min: values") {
  Variable a({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  CHECK(zg::max(a).item() == 6);
  CHECK(zg::max(a).ndim() == 0);
  CHECK(zg::min(a).item() == 1);
  CHECK(zg::max(a, {0}).data() == Tensor<float>({4, 5, 6}));
  CHECK(zg::max(a, {1}).data() == Tensor<float>({3, 6}));
  CHECK(zg::min(a, {0}).data() == Tensor<float>({1, 2, 3}));
  CHECK(zg::min(a, {-1}, true).data() == column({1.f, 4.f}));
  CHECK(zg::max(a, {0, 1}, true).shape() == Shape{1, 1});
  CHECK(zg::max(a, {0, 1}, true).item() == 6);

  Variable64 x(iota({2, 3, 4}));  // x[i, j, k] = 12 i + 4 j + k
  CHECK(zg::max(x, {0, 2}).data() == Tensor<double>({15, 19, 23}));
  CHECK(zg::min(x, {0, 2}).data() == Tensor<double>({0, 4, 8}));
  CHECK(zg::max(x, {1}, true).shape() == Shape{2, 1, 4});
  CHECK(zg::max(x, {1}, true).data()(1, 0, 2) == 22);
  CHECK(zg::min(x, {-3}).data() == Tensor<double>({{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}}));

  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(std::isnan(zg::max(Variable64({1.0, nan, 3.0})).item()));
  CHECK(std::isnan(zg::min(Variable64({1.0, 0.0, nan})).item()));
}

TEST_CASE("max and min: with ties the gradient goes to the first extreme in row-major order") {
  Tensor<double> t = {{1, 3, 3}, {2, 2, 0}};
  CHECK(grad_of([](const Variable64& x) { return zg::max(x, {1}); }, t) == Tensor<double>({{0, 1, 0}, {1, 0, 0}}));
  CHECK(grad_of([](const Variable64& x) { return zg::max(x); }, t) == Tensor<double>({{0, 1, 0}, {0, 0, 0}}));
  CHECK(grad_of([](const Variable64& x) { return zg::min(x, {1}); }, t) == Tensor<double>({{1, 0, 0}, {0, 0, 1}}));
  CHECK(grad_of([](const Variable64& x) { return zg::max(x, {0}); }, Tensor<double>({{5, 1}, {5, 2}})) ==
        Tensor<double>({{1, 0}, {0, 1}}));
  CHECK(grad_of([](const Variable64& x) { return zg::min(x, {0}, true); }, Tensor<double>({{1, 0}, {1, 0}})) ==
        Tensor<double>({{1, 1}, {0, 0}}));
  // Groups spread over non-trailing axes: the first of each group is [0, j, 0].
  Tensor<double> ones = xt::ones<double>({2, 2, 2});
  CHECK(grad_of([](const Variable64& x) { return zg::max(x, {0, 2}); }, ones) ==
        Tensor<double>({{{1, 0}, {1, 0}}, {{0, 0}, {0, 0}}}));
  // The upstream gradient is carried, not just the mask.
  Variable64 x(t);
  x.requires_grad_();
  zg::sum(zg::max(x, {1}) * Variable64({10.0, 100.0})).backward();
  CHECK(x.grad().data() == Tensor<double>({{0, 10, 0}, {100, 0, 0}}));
}

ZG_GRADCHECK_CASE("Max") {
  V x = {uniform({2, 3, 4}, 0.5, 2.0, 72, true)};
  for (bool keep : {false, true})
    for (const Axes& axes : kAxes) {
      CAPTURE(keep);
      CAPTURE(axes);
      CHECK_GRADCHECK([&](const V& v) { return zg::max(v[0], axes, keep); }, x);
    }
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::max(v[0], {1})); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::max(v[0], {0, 2}, true)); }, x);
}

ZG_GRADCHECK_CASE("Min") {
  V x = {uniform({2, 3, 4}, 0.5, 2.0, 73, true)};
  for (bool keep : {false, true})
    for (const Axes& axes : kAxes) {
      CAPTURE(keep);
      CAPTURE(axes);
      CHECK_GRADCHECK([&](const V& v) { return zg::min(v[0], axes, keep); }, x);
    }
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::min(v[0], {-1})); }, x);
}

// Logsumexp

TEST_CASE("logsumexp: values, stable for large and small inputs") {
  CHECK(zg::logsumexp(Variable64({1.0, 2.0, 3.0})).item() == doctest::Approx(3.40760596444438).epsilon(1e-14));
  CHECK(zg::logsumexp(Variable64({1000.0, 1000.0})).item() == doctest::Approx(1000.6931471805599).epsilon(1e-14));
  CHECK(zg::logsumexp(Variable64({-1000.0, -1000.0})).item() == doctest::Approx(-999.3068528194401).epsilon(1e-14));
  CHECK(zg::logsumexp(Variable({1000.f, 1000.f})).item() == doctest::Approx(1000.6931f).epsilon(1e-6));
  CHECK(zg::logsumexp(Variable({-200.f, -200.f})).item() == doctest::Approx(-199.30685f).epsilon(1e-6));

  Variable64 m({{1.0, 2.0, 3.0}, {0.0, 0.0, 0.0}});
  Tensor<double> rows = zg::logsumexp(m, {1}).data();
  CHECK(rows(0) == doctest::Approx(3.40760596444438));
  CHECK(rows(1) == doctest::Approx(1.0986122886681098));
  CHECK(zg::logsumexp(m, {-1}, true).shape() == Shape{2, 1});
  CHECK(zg::logsumexp(m, {0}).data()(2) == doctest::Approx(3 + std::log1p(std::exp(-3.0))));

  const double inf = std::numeric_limits<double>::infinity();
  CHECK(zg::logsumexp(Variable64({-inf, -inf})).item() == -inf);
  CHECK(zg::logsumexp(Variable64({inf, 1.0})).item() == inf);
  CHECK(zg::logsumexp(Variable64(Tensor<double>::from_shape({0}))).item() == -inf);

  // d logsumexp = softmax
  Tensor<double> g = grad_of([](const Variable64& x) { return zg::logsumexp(x); }, Tensor<double>({1.0, 2.0, 3.0}));
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(g(0) == doctest::Approx(std::exp(1.0) / z));
  CHECK(g(2) == doctest::Approx(std::exp(3.0) / z));
}

ZG_GRADCHECK_CASE("LogSumExp") {
  V x = {uniform({2, 3, 4}, 0.5, 2.0, 74, true)};
  for (bool keep : {false, true})
    for (const Axes& axes : kAxes) {
      CAPTURE(keep);
      CAPTURE(axes);
      CHECK_GRADCHECK([&](const V& v) { return zg::logsumexp(v[0], axes, keep); }, x);
      CHECK_GRADGRADCHECK([&](const V& v) { return zg::logsumexp(v[0], axes, keep); }, x);
    }
  CHECK_GRADGRADCHECK([](const V& v) { return zg::logsumexp(zg::square(v[0]), {1}); }, x);
}

// Norm

namespace {
const double kInf = std::numeric_limits<double>::infinity();
}  // namespace

TEST_CASE("norm: values as torch.linalg.vector_norm, axes and keepdims") {
  Variable64 x({{3.0, -4.0, 0.0}, {1.0, 2.0, -2.0}});
  CHECK(zg::norm(x).item() == doctest::Approx(5.830951894845301).epsilon(1e-14));  // sqrt(34)
  CHECK(zg::norm(x).ndim() == 0);
  zg::testing::check_values(zg::norm(x, 2, {1}), {2}, {5, 3}, 1e-14);
  zg::testing::check_values(zg::norm(x, 2, {0}), {3}, {3.1622776601683795, 4.47213595499958, 2}, 1e-14);
  zg::testing::check_values(zg::norm(x, 2, {-1}, true), {2, 1}, {5, 3}, 1e-14);
  zg::testing::check_values(zg::norm(x, 2, {0, 1}, true), {1, 1}, {5.830951894845301}, 1e-14);
  CHECK(zg::norm(x, 1).item() == doctest::Approx(12).epsilon(1e-14));
  zg::testing::check_values(zg::norm(x, 1, {0}), {3}, {4, 6, 2}, 1e-14);
  zg::testing::check_values(zg::norm(x, 3, {1}), {2}, {4.497941445275415, 2.571281590658235}, 1e-14);
  CHECK(zg::norm(x, 3).item() == doctest::Approx(4.762203155904598).epsilon(1e-14));
  zg::testing::check_values(zg::norm(x, 0.5, {1}), {2}, {13.928203230275509, 14.656854249492378}, 1e-14);
  zg::testing::check_values(zg::norm(x, 0.5, {0}), {3}, {7.464101615137754, 11.65685424949238, 2}, 1e-14);
  CHECK(zg::norm(x, kInf).item() == 4);
  zg::testing::check_values(zg::norm(x, kInf, {-2}), {3}, {3, 4, 2}, 1e-15);
  zg::testing::check_values(zg::norm(x, kInf, {1}, true), {2, 1}, {4, 2}, 1e-15);

  // groups over non-trailing axes: y[i, j, k] = 12 i + 4 j + k - 11.5
  Variable64 y(Tensor<double>(iota({2, 3, 4}) - 11.5));
  zg::testing::check_values(zg::norm(y, 3, {0, 2}), {3}, {16.14963783626185, 12.402982286497261, 16.14963783626185},
                            1e-14);
  zg::testing::check_values(zg::norm(y, 3, {-3, -1}, true), {1, 3, 1},
                            {16.14963783626185, 12.402982286497261, 16.14963783626185}, 1e-14);

  // scaled by the largest |x|: neither overflow nor underflow in float
  CHECK(zg::norm(Variable({3e30f, 4e30f})).item() == doctest::Approx(5e30f).epsilon(1e-6));
  CHECK(zg::norm(Variable({3e-30f, 4e-30f})).item() == doctest::Approx(5e-30f).epsilon(1e-6));
  CHECK(zg::norm(Variable({1e10f, 1e10f}), 4).item() == doctest::Approx(1.189207e10f).epsilon(1e-6));
  CHECK(zg::norm(Variable64({-kInf, 1.0})).item() == kInf);
  CHECK(std::isnan(zg::norm(Variable64({1.0, std::nan("")}), 3).item()));
  CHECK(zg::norm(Variable64(Tensor<double>::from_shape({0}))).item() == 0);
  Variable64 v({3.0, 4.0});
  v.requires_grad_();
  REQUIRE(zg::norm(v, 2).creator());
  CHECK(zg::norm(v, 2).creator()->attributes() == "p=2, axes=()");
  CHECK(zg::norm(v, kInf, {-1}, true).creator()->attributes() == "p=inf, axes=(-1), keepdims");
}

TEST_CASE("norm: the gradient at 0 is 0, never NaN, for every p") {
  for (double p : {0.5, 1.0, 1.5, 2.0, 3.0, kInf}) {
    CAPTURE(p);
    CHECK(grad_of([&](const Variable64& x) { return zg::norm(x, p); }, Tensor<double>({0.0, 0.0, 0.0})) ==
          Tensor<double>({0, 0, 0}));
    // a zero group next to a nonzero one: the zero group gets 0, the other its gradient
    Tensor<double> g = grad_of([&](const Variable64& x) { return zg::norm(x, p, {1}); },
                               Tensor<double>({{0.0, 0.0}, {0.0, -2.0}}));
    CHECK(g == Tensor<double>({{0, 0}, {0, -1}}));
    // the second derivative at 0 is finite too
    Variable64 x(Tensor<double>({0.0, 0.0}));
    x.requires_grad_();
    GradOptions create;
    create.create_graph = true;
    Variable64 gx = zg::grad(zg::norm(x, p), {x}, {}, create)[0];
    CHECK(gx.data() == Tensor<double>({0, 0}));
    if (p == kInf) {  // sign(x) times a mask: constant in x, nothing to differentiate
      CHECK_FALSE(gx.requires_grad());
      continue;
    }
    zg::sum(zg::square(gx) + gx).backward();
    REQUIRE(x.grad().defined());
    CHECK(x.grad().data() == Tensor<double>({0, 0}));
  }
  // p = 2: x / |x|; p = 1: sign(x), 0 at 0
  const Tensor<double> g2 = grad_of([](const Variable64& x) { return zg::norm(x); }, Tensor<double>({3.0, -4.0}));
  CHECK(g2(0) == doctest::Approx(0.6).epsilon(1e-15));
  CHECK(g2(1) == doctest::Approx(-0.8).epsilon(1e-15));
  CHECK(grad_of([](const Variable64& x) { return zg::norm(x, 1); }, Tensor<double>({0.0, -2.0, 5.0})) ==
        Tensor<double>({0, -1, 1}));
  // p < 1 with a zero element in a nonzero group: 0 there, as PyTorch
  Tensor<double> g = grad_of([](const Variable64& x) { return zg::norm(x, 0.5); }, Tensor<double>({0.0, 4.0}));
  CHECK(g(0) == 0);
  CHECK(g(1) == doctest::Approx(1));
  // p = inf: sign(x) to the first largest |x|, as max with ties
  CHECK(grad_of([](const Variable64& x) { return zg::norm(x, kInf); }, Tensor<double>({1.0, -3.0, 3.0})) ==
        Tensor<double>({0, -1, 0}));
  CHECK(grad_of([](const Variable64& x) { return zg::norm(x, kInf, {0}); }, Tensor<double>({{2.0, -1.0}, {-2.0, 4.0}})) ==
        Tensor<double>({{1, 0}, {0, 1}}));
}

ZG_GRADCHECK_CASE("Norm") {  // off 0 and off ties of |x|
  V x = {uniform({2, 3, 4}, 0.5, 2.0, 75, true)};
  for (double p : {0.5, 1.0, 1.5, 2.0, 3.0, kInf})
    for (bool keep : {false, true})
      for (const Axes& axes : kAxes) {
        CAPTURE(p);
        CAPTURE(keep);
        CAPTURE(axes);
        CHECK_GRADCHECK([&](const V& v) { return zg::norm(v[0], p, axes, keep); }, x);
      }
  for (double p : {0.5, 1.5, 2.0, 3.0}) {
    CAPTURE(p);
    CHECK_GRADGRADCHECK([&](const V& v) { return zg::norm(v[0], p, {1}); }, x);
    CHECK_GRADGRADCHECK([&](const V& v) { return zg::norm(v[0], p, {0, 2}, true); }, x);
  }
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::norm(v[0], 1.0, {-1})); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::norm(v[0], kInf, {1})); }, x);
}

TEST_CASE("norm: bad p and bad axes name norm and the value") {
  Variable a({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  CHECK(message_of<ValueError>([&] { zg::norm(a, 0); }) == "norm: p must be > 0 or infinity, got 0");
  CHECK(message_of<ValueError>([&] { zg::norm(a, -1.5); }) == "norm: p must be > 0 or infinity, got -1.5");
  CHECK(message_of<ValueError>([&] { zg::norm(a, -kInf); }) == "norm: p must be > 0 or infinity, got -inf");
  CHECK(message_of<ValueError>([&] { zg::norm(a, std::nan("")); }) == "norm: p must be > 0 or infinity, got nan");
  CHECK(message_of<ShapeError>([&] { zg::norm(a, 2, {2}); }) == "norm: axis 2 is out of range for an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::norm(a, 1, {-3}); }) == "norm: axis -3 is out of range for an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::norm(a, 2, {1, -1}); }) == "norm: axes (1, -1) repeat an axis of an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::norm(Variable(Tensor<float>::from_shape({2, 0})), kInf, {1}); }) ==
        "norm: cannot reduce an empty axis of (2, 0)");
}

// Argmax and argmin

TEST_CASE("argmax and argmin: first extreme, constant, same dtype") {
  Variable64 t({{1.0, 3.0, 3.0}, {2.0, 2.0, 0.0}});
  t.requires_grad_();
  CHECK(zg::argmax(t, 1).data() == Tensor<double>({1, 0}));
  CHECK(zg::argmax(t, 0).data() == Tensor<double>({1, 0, 0}));
  CHECK(zg::argmin(t, -1).data() == Tensor<double>({0, 2}));
  CHECK(zg::argmin(t, 0).data() == Tensor<double>({0, 1, 1}));
  CHECK(zg::argmax(t, -1, true).data() == column<double>({1, 0}));
  CHECK_FALSE(zg::argmax(t, 1).requires_grad());
  CHECK(zg::argmax(t, 1).creator() == nullptr);
  CHECK(zg::argmax_indices(t, 1) == Tensor<std::size_t>({1, 0}));
  CHECK(zg::argmin_indices(t, 0) == Tensor<std::size_t>({0, 1, 1}));

  Variable f({4.f, 9.f, 2.f, 9.f});
  CHECK(zg::argmax(f, 0).item() == 1.f);
  CHECK(zg::argmin(f, 0).ndim() == 0);
  CHECK(zg::argmin(f, 0).item() == 2.f);
}

// Bad input

TEST_CASE("reductions: bad axes and empty groups") {
  Variable a({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  CHECK(message_of<ShapeError>([&] { zg::max(a, {2}); }) == "Max: axis 2 is out of range for an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::min(a, {-3}); }) == "Min: axis -3 is out of range for an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::mean(a, {5}); }) == "Mean: axis 5 is out of range for an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::logsumexp(a, {0, -2}); }) == "LogSumExp: axes (0, -2) repeat an axis of an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::argmax(a, 2); }) == "argmax: axis 2 is out of range for an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::argmin(Variable(1.f), 0); }) == "argmin: axis 0 is out of range for an input of shape ()");
  Variable e(Tensor<float>::from_shape({2, 0}));
  CHECK(message_of<ShapeError>([&] { zg::max(e, {1}); }) == "Max: cannot reduce an empty axis of (2, 0)");
  CHECK(message_of<ShapeError>([&] { zg::argmin(e, 1); }) == "argmin: cannot reduce an empty axis of (2, 0)");
  CHECK(zg::max(e, {0}).shape() == Shape{0});
}

// Float and double

TEST_CASE_TEMPLATE("reductions compute in float and double", T, float, double) {
  BasicVariable<T> x(iota<T>({2, 3}));
  x.requires_grad_();
  CHECK(zg::max(x, {0}).data() == Tensor<T>({3, 4, 5}));
  CHECK(zg::min(x, {1}).data() == Tensor<T>({0, 3}));
  CHECK(zg::mean(x).item() == doctest::Approx(2.5));
  CHECK(zg::argmax(x, 1).data() == Tensor<T>({2, 2}));
  auto y = zg::logsumexp(x, {1});
  CHECK(y.data()(1) == doctest::Approx(5 + std::log(1 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-6));
  zg::sum(zg::max(x, {1}) + y).backward();
  CHECK(x.grad().data()(0, 2) == doctest::Approx(1 + 1 / (1 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-6));
  CHECK(x.grad().data()(1, 0) == doctest::Approx(std::exp(-2.0) / (1 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-6));
}

TEST_CASE("sum over any axes matches a direct loop (raw reduction kernel)") {
  Tensor<double> x = zg::testing::uniform({3, 4, 5, 2}, -1.0, 1.0, 77).data();
  const std::vector<Axes> cases = {{0}, {1}, {2}, {3}, {0, 2, 3}, {1, 3}, {0, 1}, {2, 3}, {0, 1, 2, 3}, {0, 3}};
  for (const Axes& axes : cases) {
    CAPTURE(axes.size());
    Tensor<double> got = zg::sum(Variable64(x), axes).data();
    std::vector<bool> red(4, false);
    for (auto a : axes) red[static_cast<std::size_t>(a)] = true;
    Shape out_shape;
    for (std::size_t d = 0; d < 4; ++d)
      if (!red[d]) out_shape.push_back(x.shape()[d]);
    Tensor<double> want = xt::zeros<double>(out_shape);
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 4; ++j)
        for (std::size_t k = 0; k < 5; ++k)
          for (std::size_t l = 0; l < 2; ++l) {
            const std::size_t idx[4] = {i, j, k, l};
            std::size_t off = 0;
            for (std::size_t d = 0; d < 4; ++d)
              if (!red[d]) off = off * x.shape()[d] + idx[d];
            want.data()[off] += x(i, j, k, l);
          }
    REQUIRE(got.shape() == want.shape());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got.data()[i] == doctest::Approx(want.data()[i]).epsilon(1e-12));
  }
}

TEST_CASE("reductions label their axes as error messages write them") {
  Variable64 x(Tensor<double>(xt::ones<double>({2, 3, 4})));
  x.requires_grad_();
  CHECK(zg::sum(x, {0, -1}, true).creator()->attributes() == "axes=(0, -1), keepdims");
  CHECK(zg::logsumexp(x, {1}).creator()->attributes() == "axes=(1)");
  CHECK(zg::max(x).creator()->attributes() == "axes=()");
}
