// User-defined Functions (zg::call) and anomaly mode.
#include <cmath>
#include <limits>

#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

namespace {

// y = x^3, written once for float and double.
struct Cube {
  std::string name() const { return "Cube"; }
  template <class T>
  Outputs<T> forward(const TensorList<T>& x) const {
    return Tensor<T>(x[0] * x[0] * x[0]);
  }
  // d x^3 = 3 x^2 dx, with Variable ops so it differentiates again
  template <class T>
  Variables<T> backward(const Function<T>& self, const Variables<T>& gy) const {
    const auto& x = self.input(0);
    return {gy[0] * x * x * T(3)};
  }
};

// y = x^3 again, as an expression: evaluated in the graph node (Note [Outputs in place]).
struct CubeInPlace {
  static inline const void* built = nullptr;  // the array object the last forward wrote
  std::string name() const { return "CubeInPlace"; }
  template <class T>
  Outputs<T> forward(const TensorList<T>& x) const {
    Outputs<T> y = x[0] * x[0] * x[0];
    built = &y[0];
    return y;
  }
  template <class T>
  Variables<T> backward(const Function<T>& self, const Variables<T>& gy) const {
    const auto& x = self.input(0);
    return {gy[0] * x * x * T(3)};
  }
};

// (a + b, a * b): two inputs, two outputs.
struct SumAndProduct {
  std::string name() const { return "SumAndProduct"; }
  template <class T>
  Outputs<T> forward(const TensorList<T>& x) const {
    std::vector<Tensor<T>> ys;
    ys.emplace_back(x[0] + x[1]);
    ys.emplace_back(x[0] * x[1]);
    return ys;
  }
  template <class T>
  Variables<T> backward(const Function<T>& self, const Variables<T>& gy) const {
    return {gy[0] + gy[1] * self.input(1), gy[0] + gy[1] * self.input(0)};
  }
};

// A backward that produces NaN, for anomaly mode.
struct NaNBackward {
  std::string name() const { return "NaNBackward"; }
  template <class T>
  Outputs<T> forward(const TensorList<T>& x) const { return Tensor<T>(x[0]); }
  template <class T>
  Variables<T> backward(const Function<T>&, const Variables<T>& gy) const {
    return {gy[0] * std::numeric_limits<T>::quiet_NaN()};
  }
};

}  // namespace

TEST_CASE_TEMPLATE("a custom op works in float and double and joins graphs", T, float, double) {
  BasicVariable<T> x({T(1), T(2)});
  x.requires_grad_();
  auto y = zg::sum(zg::call(Cube{}, x) * T(2));
  CHECK(y.item() == doctest::Approx(18));
  y.backward();
  CHECK(x.grad().data() == Tensor<T>({6, 24}));
}

TEST_CASE("a custom op passes gradcheck and second-order gradcheck") {
  V x = {uniform({2, 3}, 0.5, 2.0, 5, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::call(Cube{}, v[0]); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::call(Cube{}, v[0]); }, x);
  V ab = {uniform({3}, 0.5, 2.0, 6, true), uniform({3}, 0.5, 2.0, 7, true)};
  CHECK_GRADCHECK(Function64([](const V& v) { return zg::call_multi(SumAndProduct{}, v[0], v[1]); }), ab);
}

TEST_CASE("a custom op may build its output in place") {
  V x = {uniform({2, 3}, 0.5, 2.0, 8, true)};
  const Variable64 y = zg::call(CubeInPlace{}, x[0]);
  CHECK(&y.data() == CubeInPlace::built);  // not moved out of forward
  CHECK(y.data() == zg::call(Cube{}, x[0]).data());
  CHECK_GRADCHECK([](const V& v) { return zg::call(CubeInPlace{}, v[0]); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::call(CubeInPlace{}, v[0]); }, x);
  NoGradGuard no_grad;
  CHECK(zg::call(CubeInPlace{}, x[0]).data() == zg::call(Cube{}, x[0]).data());
}

TEST_CASE("create_graph through a custom op: d2/dx2 x^3 = 6x") {
  Variable64 x(2.0);
  x.requires_grad_();
  Variable64::BackwardOptions o;
  o.create_graph = true;
  zg::call(Cube{}, x).backward(o);
  auto g = x.grad();
  CHECK(g.item() == 12);
  x.cleargrad();
  g.backward();
  CHECK(x.grad().item() == 12);
}

TEST_CASE("zg::call refuses multi-output ops, pointing at call_multi") {
  Variable64 a(1.0), b(2.0);
  CHECK(message_of<Error>([&] { zg::call(SumAndProduct{}, a, b); }).find("call_multi") != std::string::npos);
}

TEST_CASE("anomaly mode names the Function and the pass") {
  Variable64 x({1.0, 0.0});
  x.requires_grad_();
  SUBCASE("forward") {
    CHECK_NOTHROW(1.0 / x);  // off by default
    AnomalyModeGuard anomaly;
    CHECK(message_of<ValueError>([&] { 1.0 / x; }) ==
          "RDivConst: forward produced Inf in output 0 (2) at index (1) (anomaly mode)");
  }
  SUBCASE("backward") {
    auto y = zg::sum(zg::call(NaNBackward{}, x));
    AnomalyModeGuard anomaly;
    CHECK(message_of<ValueError>([&] { y.backward(); }).find("NaNBackward: backward produced NaN") == 0);
  }
  CHECK_FALSE(is_anomaly_enabled());
}
