// Activations: sigmoid, relu, leaky_relu, softmax, log_softmax.
#include <cfenv>
#include <cmath>
#include <limits>

#include "testing.hpp"

using namespace zg;
using zg::testing::check_values;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

namespace {


template <class T>
bool all_finite(const BasicVariable<T>& v) {
  for (T x : v.data())
    if (!std::isfinite(x)) return false;
  return true;
}

}  // namespace

TEST_CASE_TEMPLATE("sigmoid: values, no overflow at large |x|", T, float, double) {
  using Var = BasicVariable<T>;
  Var x({T(-1000), T(-1), T(0), T(2), T(1000)});
  x.requires_grad_();
  std::feclearexcept(FE_ALL_EXCEPT);
  Var y = zg::sigmoid(x);
  CHECK_FALSE(std::fetestexcept(FE_OVERFLOW | FE_INVALID | FE_DIVBYZERO));
  REQUIRE(all_finite(y));
  CHECK(y.data()(0) == T(0));
  CHECK(y.data()(4) == T(1));
  check_values(y, {5}, {0, 1 / (1 + std::exp(1.0)), 0.5, 1 / (1 + std::exp(-2.0)), 1});
  // d sigmoid = y (1 - y)
  zg::sum(y).backward();
  REQUIRE(all_finite(x.grad()));
  check_values(x.grad(), {5}, {0, 0.19661193324148185, 0.25, 0.10499358540350652, 0});
}

TEST_CASE_TEMPLATE("softmax: the book's reference values and stability", T, float, double) {
  using Var = BasicVariable<T>;
  check_values(zg::softmax(Var({T(0.3), T(2.9), T(4.0)})), {3},
               {0.01821127, 0.24519181, 0.73659691});
  check_values(zg::log_softmax(Var({T(0.3), T(2.9), T(4.0)})), {3},
               {std::log(0.01821127), std::log(0.24519181), std::log(0.73659691)}, 1e-5);

  const Var big({T(1000), T(1001), T(1002)});
  const Var small({T(0), T(1), T(2)});
  REQUIRE(all_finite(zg::softmax(big)));
  REQUIRE(all_finite(zg::log_softmax(big)));
  const double lse = std::log(1 + std::exp(1.0) + std::exp(2.0));
  check_values(zg::softmax(big), {3}, {std::exp(-lse), std::exp(1 - lse), std::exp(2 - lse)});
  check_values(zg::log_softmax(big), {3}, {-lse, 1 - lse, 2 - lse}, 1e-5);
  check_values(zg::softmax(small), {3}, {std::exp(-lse), std::exp(1 - lse), std::exp(2 - lse)});
}

TEST_CASE("softmax and log_softmax: any axis") {
  Variable64 x({{0.3, 2.9, 4.0}, {1.0, 2.0, 3.0}});
  // Along axis 0 each column is a 2-class softmax.
  const double c0 = 1 / (1 + std::exp(0.7)), c1 = 1 / (1 + std::exp(-0.9)),
               c2 = 1 / (1 + std::exp(-1.0));
  check_values(zg::softmax(x, 0), {2, 3}, {c0, c1, c2, 1 - c0, 1 - c1, 1 - c2});
  check_values(zg::softmax(x, -2), {2, 3}, {c0, c1, c2, 1 - c0, 1 - c1, 1 - c2});
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  const std::vector<double> rows = {0.01821127, 0.24519181, 0.73659691,
                                    std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z};
  check_values(zg::softmax(x, 1), {2, 3}, rows);
  check_values(zg::softmax(x), {2, 3}, rows);

  Variable64 x3 = uniform({2, 3, 4}, 0.1, 3.0, 9, true);
  for (std::ptrdiff_t axis : {0, 1, 2, -1}) {
    CAPTURE(axis);
    Variable64 y = zg::softmax(x3, axis);
    const Shape reduced = axis == 0 ? Shape{3, 4} : axis == 1 ? Shape{2, 4} : Shape{2, 3};
    check_values(zg::sum(y, {axis}), reduced, std::vector<double>(reduced[0] * reduced[1], 1.0));
    // log_softmax is log(softmax), computed without the log of a tiny number.
    Variable64 ly = zg::log_softmax(x3, axis);
    std::vector<double> want;
    for (double v : y.data()) want.push_back(std::log(v));
    check_values(ly, {2, 3, 4}, want, 1e-9);
  }
}

TEST_CASE("softmax along the last axis (the row kernel) equals the general axis loop") {
  // 1900 rows of 37: two chunks at 2 threads, SIMD bodies and ragged ends;
  // -infinity (masked) entries in some rows, every entry in one.
  Variable64 x64 = uniform({1900, 37}, 0.0, 8.0, 77, true);
  for (std::size_t r = 0; r < 1900; r += 7) x64.data()(r, r % 37) = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < 37; ++j) x64.data()(5, j) = -std::numeric_limits<double>::infinity();
  const Variable x32(Tensor<float>(xt::cast<float>(x64.data())));
  const int threads = zg::num_threads();
  for (bool log : {false, true}) {
    CAPTURE(log);
    const auto f = [log](const auto& v, std::ptrdiff_t axis) { return log ? zg::log_softmax(v, axis) : zg::softmax(v, axis); };
    // the general loop runs along axis 0 of the transpose
    const Tensor<double> rows64 = f(x64, -1).data();
    const Tensor<double> general64 = zg::transpose(f(zg::transpose(x64, {1, 0}), 0), {1, 0}).data();
    zg::set_num_threads(1);
    const Tensor<float> one = f(x32, -1).data();
    zg::set_num_threads(2);
    const Tensor<float> two = f(x32, -1).data();
    zg::set_num_threads(threads);
    CHECK(xt::all(xt::equal(one, two) || (xt::isnan(one) && xt::isnan(two))));
    for (std::size_t r = 0; r < 1900; ++r)
      for (std::size_t j = 0; j < 37; ++j) {
        const double want = general64(r, j), got = rows64(r, j);
        if (r == 5) {  // all masked: NaN, as PyTorch
          CHECK(std::isnan(got));
          continue;
        }
        if (std::isinf(want)) {  // log_softmax of a masked entry
          CHECK(got == want);
          continue;
        }
        CHECK(std::abs(got - want) <= 1e-12 * (1 + std::abs(want)));
        CHECK(std::abs(double(one(r, j)) - want) <= 2e-6 * (1 + std::abs(want)));
      }
  }
}

TEST_CASE("relu and leaky_relu: values, and the gradient at exactly 0") {
  Variable64 x({-1.0, 0.0, 2.0});
  x.requires_grad_();
  check_values(zg::relu(x), {3}, {0, 0, 2});
  check_values(zg::leaky_relu(x), {3}, {-0.01, 0, 2});
  check_values(zg::leaky_relu(x, 0.2), {3}, {-0.2, 0, 2});
  zg::sum(zg::relu(x)).backward();
  check_values(x.grad(), {3}, {0, 0, 1});
  x.cleargrad();
  zg::sum(zg::leaky_relu(x, 0.2)).backward();
  check_values(x.grad(), {3}, {0.2, 0.2, 1});
  // Float with integer / double literals for the slope.
  check_values(zg::leaky_relu(Variable({-2.f, 3.f}), 0.5), {2}, {-1, 3});
}

TEST_CASE("bad input: softmax axis out of range") {
  Variable x({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  CHECK(message_of<ShapeError>([&] { zg::softmax(x, 2); }) ==
        "Softmax: axis 2 is out of range for an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::softmax(x, -3); }) ==
        "Softmax: axis -3 is out of range for an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::log_softmax(x, 5); }) ==
        "LogSoftmax: axis 5 is out of range for an input of shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::softmax(Variable(1.f)); }) ==
        "Softmax: axis -1 is out of range for an input of shape ()");
}

// Gradcheck (float64)

namespace {
const std::vector<std::pair<Shape, std::ptrdiff_t>> kAxisCases = {
    {{2, 3}, 0},    {{2, 3}, 1},    {{2, 3}, -1},    {{2, 3, 4}, 0},
    {{2, 3, 4}, 1}, {{2, 3, 4}, 2}, {{2, 3, 4}, -1}, {{4}, 0}};

template <class F>
void check_axes(F f) {
  unsigned seed = 300;
  for (const auto& axis_case : kAxisCases) {
    const Shape& shape = axis_case.first;
    const std::ptrdiff_t axis = axis_case.second;
    CAPTURE(shape_str(shape));
    CAPTURE(axis);
    V x = {uniform(shape, 0.1, 2.0, seed++, true)};
    CHECK_GRADCHECK([&, axis = axis](const V& v) { return f(v[0], axis); }, x);
    CHECK_GRADGRADCHECK([&, axis = axis](const V& v) { return f(v[0], axis); }, x);
  }
}
}  // namespace

ZG_GRADCHECK_CASE("Sigmoid") {
  V x = {uniform({2, 3}, 0.1, 3.0, 31, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::sigmoid(v[0]); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::sigmoid(v[0]); }, x);
}
ZG_GRADCHECK_CASE("ReLU") {
  V x = {uniform({2, 3}, 0.2, 2.0, 32, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::relu(v[0]); }, x);
  // relu'' is 0 away from the kink: its create_graph backward (the mask
  // times gy as a Variable) is checked through a square.
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::relu(v[0])) * v[0]; }, x);
}
ZG_GRADCHECK_CASE("ReLUGrad") {
  // ReLU's backward as a function of x and the upstream gradient gy, itself
  // differentiated (ReLUGrad's backward) and differentiated again.
  V in = {uniform({2, 3}, 0.2, 2.0, 34, true), uniform({2, 3}, 0.5, 1.5, 35, true)};
  const auto relu_grad = [](const V& v) {
    EnableGradGuard record;  // gradcheck also evaluates f under NoGradGuard, on copies of the inputs
    const Variable64 x = v[0].requires_grad() ? v[0] : Variable64(v[0].data()).requires_grad_();
    GradOptions o;
    o.create_graph = true;
    return zg::grad(zg::relu(x), {x}, {v[1]}, o)[0];
  };
  const Variable64 gx = relu_grad(in);
  for (std::size_t i = 0; i < 6; ++i)
    CHECK(gx.data().flat(i) == (in[0].data().flat(i) > 0 ? in[1].data().flat(i) : 0.0));
  CHECK_GRADCHECK([&](const V& v) { return zg::square(relu_grad(v)); }, in);
  CHECK_GRADGRADCHECK([&](const V& v) { return zg::square(relu_grad(v)) * v[1]; }, in);
}
ZG_GRADCHECK_CASE("LeakyReLU") {
  V x = {uniform({2, 3}, 0.2, 2.0, 33, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::leaky_relu(v[0]); }, x);
  CHECK_GRADCHECK([](const V& v) { return zg::leaky_relu(v[0], 0.3); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::leaky_relu(v[0], 0.3)) * v[0]; }, x);
}
ZG_GRADCHECK_CASE("Softmax") {
  check_axes([](const Variable64& x, std::ptrdiff_t a) { return zg::softmax(x, a); });
}
ZG_GRADCHECK_CASE("LogSoftmax") {
  check_axes([](const Variable64& x, std::ptrdiff_t a) { return zg::log_softmax(x, a); });
}
