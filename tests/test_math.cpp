// Elementwise math (exp, log, sqrt, sin, cos, tanh, abs, clip), maximum and
// minimum, comparison masks and where.
#include <cmath>
#include <limits>
#include <type_traits>

#include "testing.hpp"

using namespace zg;
using zg::testing::check_values;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

namespace {


// d sum(f(x)) / dx by backward.
template <class T, class F>
BasicVariable<T> grad_of(F f, BasicVariable<T> x) {
  x.requires_grad_();
  zg::sum(f(x)).backward();
  return x.grad();
}

}  // namespace

TEST_CASE_TEMPLATE("math: values in float and double", T, float, double) {
  using Var = BasicVariable<T>;
  const double e = std::exp(1.0), pi = std::acos(-1.0);
  check_values(zg::exp(Var({T(0), T(1), T(-2)})), {3}, {1, e, std::exp(-2.0)});
  check_values(zg::log(Var({T(1), T(e), T(0.5)})), {3}, {0, 1, std::log(0.5)});
  check_values(zg::sqrt(Var({T(4), T(0.25), T(2)})), {3}, {2, 0.5, std::sqrt(2.0)});
  check_values(zg::sin(Var({T(0), T(pi / 2), T(1)})), {3}, {0, 1, std::sin(1.0)});
  check_values(zg::cos(Var({T(0), T(pi), T(1)})), {3}, {1, -1, std::cos(1.0)});
  check_values(zg::tanh(Var({T(0), T(0.5), T(-2)})), {3}, {0, std::tanh(0.5), std::tanh(-2.0)});
  check_values(zg::abs(Var({T(-2), T(0), T(3)})), {3}, {2, 0, 3});
  check_values(zg::clip(Var({T(-2), T(0.5), T(3)}), -1, 1), {3}, {-1, 0.5, 1});
  Var a({{T(1), T(4)}, {T(2), T(5)}});
  check_values(zg::maximum(a, Var(T(3))), {2, 2}, {3, 4, 3, 5});
  check_values(zg::minimum(a, Var(T(3))), {2, 2}, {1, 3, 2, 3});
  check_values(zg::maximum(a, Var({T(2), T(6)})), {2, 2}, {2, 6, 2, 6});
}

TEST_CASE_TEMPLATE("math: closed-form gradients in float and double", T, float, double) {
  using Var = BasicVariable<T>;
  check_values(grad_of([](const Var& x) { return zg::exp(x); }, Var({T(0), T(1)})), {2},
               {1, std::exp(1.0)}, 1e-5);
  check_values(grad_of([](const Var& x) { return zg::tanh(x); }, Var({T(0), T(0.5)})), {2},
               {1, 1 - std::pow(std::tanh(0.5), 2)}, 1e-5);
  check_values(grad_of([](const Var& x) { return zg::sqrt(x); }, Var({T(4), T(0.25)})), {2},
               {0.25, 1}, 1e-5);
  check_values(grad_of([](const Var& x) { return zg::log(x); }, Var({T(2), T(0.5)})), {2},
               {0.5, 2}, 1e-5);
  check_values(grad_of([](const Var& x) { return zg::cos(x); }, Var({T(0), T(1)})), {2},
               {0, -std::sin(1.0)}, 1e-5);
}

TEST_CASE("abs and clip: gradients at the kinks") {
  // |x|' is sign(x), 0 at 0.
  const Variable64 x({-2.0, 0.0, 3.0});
  check_values(grad_of([](const Variable64& v) { return zg::abs(v); }, x), {3}, {-1, 0, 1});
  // 1 strictly inside (lo, hi); 0 outside and on the bounds.
  check_values(grad_of([](const Variable64& v) { return zg::clip(v, -1, 1); },
                       Variable64({-2.0, -1.0, 0.5, 1.0, 3.0})),
               {5}, {0, 0, 1, 0, 0});
  CHECK(message_of<ValueError>([] { zg::clip(Variable64({1.0}), 2, 1); }).find("Clip:") == 0);
}

TEST_CASE("maximum and minimum: ties send the gradient to the first argument") {
  Variable64 a({1.0, 2.0, 3.0}), b({1.0, 0.0, 5.0});
  a.requires_grad_();
  b.requires_grad_();
  zg::sum(zg::maximum(a, b)).backward();
  check_values(a.grad(), {3}, {1, 1, 0});
  check_values(b.grad(), {3}, {0, 0, 1});
  a.cleargrad();
  b.cleargrad();
  zg::sum(zg::minimum(a, b)).backward();
  check_values(a.grad(), {3}, {1, 0, 1});
  check_values(b.grad(), {3}, {0, 1, 0});

  SUBCASE("with broadcasting, the scalar is summed") {
    Variable64 m({{1.0, 2.0}, {3.0, 1.0}}), s(1.0);
    m.requires_grad_();
    s.requires_grad_();
    zg::sum(zg::minimum(m, s)).backward();
    check_values(m.grad(), {2, 2}, {1, 0, 0, 1});
    check_values(s.grad(), {}, {2});
    m.cleargrad();
    s.cleargrad();
    zg::sum(zg::maximum(s, m)).backward();  // s first: it wins both ties
    check_values(m.grad(), {2, 2}, {0, 1, 1, 0});
    check_values(s.grad(), {}, {2});
  }
}

TEST_CASE("maximum, minimum, where, clip and max: an infinite gradient stays out of what they drop") {
  // Their backward selects gy (as PyTorch does): gy * mask would put
  // inf * 0 = NaN where the op dropped an input.
  const double inf = std::numeric_limits<double>::infinity();
  const auto exactly = [](const Variable64& g, std::vector<double> want) {
    REQUIRE(g.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(g.data().data()[i] == want[i]);
  };
  const Variable64 w({inf, 1.0, inf});  // the upstream gradient of sum(f * w)
  Variable64 a({1.0, 2.0, 3.0}), b({2.0, 0.0, 5.0});
  a.requires_grad_();
  b.requires_grad_();
  zg::sum(zg::maximum(a, b) * w).backward();  // takes b, a, b
  exactly(a.grad(), {0, 1, 0});
  exactly(b.grad(), {inf, 0, inf});
  a.cleargrad();
  b.cleargrad();
  zg::sum(zg::minimum(a, b) * w).backward();  // takes a, b, a
  exactly(a.grad(), {inf, 0, inf});
  exactly(b.grad(), {0, 1, 0});
  a.cleargrad();
  b.cleargrad();
  zg::sum(zg::where(Variable64({0.0, 1.0, 0.0}), a, b) * w).backward();
  exactly(a.grad(), {0, 1, 0});
  exactly(b.grad(), {inf, 0, inf});
  a.cleargrad();
  zg::sum(zg::clip(a, 1.5, 2.5) * w).backward();  // only 2.0 is inside
  exactly(a.grad(), {0, 1, 0});
  a.cleargrad();
  (zg::max(a) * Variable64(inf)).backward();
  exactly(a.grad(), {0, 0, inf});
}

TEST_CASE("higher-order derivatives through sin and tanh") {
  // d^n sin(x): cos, -sin, -cos, sin.
  Variable64 x(1.0, "x");
  x.requires_grad_();
  Variable64 g = zg::sin(x);
  const std::vector<double> want = {std::cos(1.0), -std::sin(1.0), -std::cos(1.0), std::sin(1.0)};
  Variable64::BackwardOptions o;
  o.create_graph = true;
  for (double w : want) {
    x.cleargrad();
    g.backward(o);
    g = x.grad();
    CHECK(g.item() == doctest::Approx(w));
  }
  x.cleargrad();  // a create_graph gradient holds a graph that holds x: a cycle
  // tanh'' = -2 y (1 - y^2)
  Variable64 t(0.5);
  t.requires_grad_();
  zg::tanh(t).backward(o);
  Variable64 g1 = t.grad();
  t.cleargrad();
  g1.backward();
  const double y = std::tanh(0.5);
  CHECK(t.grad().item() == doctest::Approx(-2 * y * (1 - y * y)));
}

TEST_CASE("comparisons: 0/1 masks, constants, with broadcasting and scalars") {
  Variable a({1.f, 2.f, 3.f}), b({3.f, 2.f, 1.f});
  a.requires_grad_();
  static_assert(std::is_same_v<decltype(a > b), Variable>);
  static_assert(std::is_same_v<decltype(zg::greater(Variable64(1.0), 0.0)), Variable64>);
  check_values(zg::greater(a, b), {3}, {0, 0, 1});
  check_values(zg::less(a, b), {3}, {1, 0, 0});
  check_values(zg::greater_equal(a, b), {3}, {0, 1, 1});
  check_values(zg::less_equal(a, b), {3}, {1, 1, 0});
  check_values(zg::equal(a, b), {3}, {0, 1, 0});
  check_values(zg::not_equal(a, b), {3}, {1, 0, 1});
  check_values(zg::equal(a, 2), {3}, {0, 1, 0});
  check_values(zg::not_equal(a, 2), {3}, {1, 0, 1});
  check_values(a > b, {3}, {0, 0, 1});
  check_values(a < b, {3}, {1, 0, 0});
  check_values(a >= b, {3}, {0, 1, 1});
  check_values(a <= b, {3}, {1, 1, 0});
  check_values(a > 2, {3}, {0, 0, 1});
  check_values(a < 2.0, {3}, {1, 0, 0});
  check_values(a >= 2, {3}, {0, 1, 1});
  check_values(a <= 2, {3}, {1, 1, 0});
  check_values(2 < a, {3}, {0, 0, 1});
  check_values(2 > a, {3}, {1, 0, 0});
  check_values(2 <= a, {3}, {0, 1, 1});
  check_values(2 >= a, {3}, {1, 1, 0});
  check_values(Variable(zg::testing::column({1.f, 3.f})) > b, {2, 3}, {0, 0, 0, 0, 1, 1});

  Variable m = a > b;
  CHECK_FALSE(m.requires_grad());
  CHECK(m.creator() == nullptr);
  CHECK(message_of<ShapeError>([&] { (void)(a > Variable({1.f, 2.f})); }) ==
        "Greater: shapes (3) and (2) cannot be broadcast together");
  CHECK(message_of<ShapeError>([&] { zg::not_equal(a, Variable({1.f, 2.f})); })
            .find("NotEqual: shapes (3) and (2)") == 0);
}

TEST_CASE("where: values, broadcasting, no gradient to the mask") {
  Variable64 x({-2.0, 0.5, 3.0});
  Variable64 y = zg::where(zg::greater(x, 0.0), x, Variable64(0.0));
  check_values(y, {3}, {0, 0.5, 3});
  check_values(zg::where(Variable64(zg::testing::column({1.0, 0.0})), Variable64({1.0, 2.0, 3.0}),
                         Variable64(-1.0)),
               {2, 3}, {1, 2, 3, -1, -1, -1});

  Variable64 cond({1.0, 0.0, 2.0}), a({1.0, 2.0, 3.0}), b(10.0);
  cond.requires_grad_();
  a.requires_grad_();
  b.requires_grad_();
  zg::sum(zg::where(cond, a, b)).backward();
  CHECK_FALSE(cond.grad().defined());
  check_values(a.grad(), {3}, {1, 0, 1});
  check_values(b.grad(), {}, {1});
}

TEST_CASE("bad input: shapes that do not broadcast") {
  Variable a({1.f, 2.f, 3.f}), b({1.f, 2.f});
  CHECK(message_of<ShapeError>([&] { zg::maximum(a, b); }) ==
        "Maximum: shapes (3) and (2) cannot be broadcast together");
  CHECK(message_of<ShapeError>([&] { zg::minimum(a, b); }).find("Minimum: shapes (3) and (2)") ==
        0);
  CHECK(message_of<ShapeError>([&] { zg::where(a > 1, a, b); }) ==
        "Where: shapes (3) (cond), (3) and (2) cannot be broadcast together");
  CHECK(message_of<ShapeError>([&] { zg::where(b > 1, a, a); }) ==
        "Where: shapes (2) (cond), (3) and (3) cannot be broadcast together");
}

// Gradcheck (float64)

namespace {

template <class F>
void check_unary(F f, const Variable64& x, bool second_order = true) {
  CHECK_GRADCHECK([&](const V& v) { return f(v[0]); }, V{x});
  if (second_order) CHECK_GRADGRADCHECK([&](const V& v) { return f(v[0]); }, V{x});
}

// Pairs of shapes for maximum / minimum; uniform values make ties impossible in practice.
const std::vector<std::pair<Shape, Shape>> kBroadcastPairs = {
    {{3, 1}, {1, 4}}, {{2, 3}, {3}}, {{}, {2, 3}}, {{2, 3}, {}}, {{2, 3}, {2, 3}}};

template <class F>
void check_binary(F f) {
  unsigned seed = 100;
  for (const auto& pair : kBroadcastPairs) {
    const Shape& sa = pair.first;
    const Shape& sb = pair.second;
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    V xs = {uniform(sa, 0.1, 2.0, seed++, true), uniform(sb, 0.1, 2.0, seed++, true)};
    CHECK_GRADCHECK(f, xs);
    // Piecewise linear, so f'' = 0: its create_graph backward is checked through a square.
    CHECK_GRADGRADCHECK([&](const V& v) { return zg::square(f(v)) * v[0]; }, xs);
  }
}

}  // namespace

ZG_GRADCHECK_CASE("Exp") {
  check_unary([](const Variable64& x) { return zg::exp(x); }, uniform({2, 3}, 0.1, 1.5, 1, true));
}
ZG_GRADCHECK_CASE("Log") {
  check_unary([](const Variable64& x) { return zg::log(x); }, uniform({2, 3}, 0.3, 3.0, 2));
}
ZG_GRADCHECK_CASE("Sqrt") {
  check_unary([](const Variable64& x) { return zg::sqrt(x); }, uniform({2, 3}, 0.3, 3.0, 3));
}
ZG_GRADCHECK_CASE("Sin") {
  check_unary([](const Variable64& x) { return zg::sin(x); }, uniform({2, 3}, 0.1, 3.0, 4, true));
}
ZG_GRADCHECK_CASE("Cos") {
  check_unary([](const Variable64& x) { return zg::cos(x); }, uniform({2, 3}, 0.1, 3.0, 5, true));
}
ZG_GRADCHECK_CASE("Tanh") {
  check_unary([](const Variable64& x) { return zg::tanh(x); }, uniform({2, 3}, 0.1, 2.0, 6, true));
}
ZG_GRADCHECK_CASE("Abs") {
  // Away from the kink at 0; |x|'' is 0 almost everywhere, so no second-order check.
  check_unary([](const Variable64& x) { return zg::abs(x); }, uniform({2, 3}, 0.2, 2.0, 7, true),
              false);
  // ... but its create_graph backward is, through a square.
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::abs(v[0])) * v[0]; }, V{uniform({2, 3}, 0.2, 2.0, 7, true)});
}
ZG_GRADCHECK_CASE("Clip") {
  // Values away from 0 and from the bounds, on both sides of each bound.
  Variable64 x({{-2.0, -0.6, 0.3}, {0.7, 1.4, -0.2}});
  check_unary([](const Variable64& v) { return zg::clip(v, -1, 1); }, x, false);
  check_unary([](const Variable64& v) { return zg::clip(v, 0, 0.5); }, x, false);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::clip(v[0], -1, 1)) * v[0]; }, V{x});
}

ZG_GRADCHECK_CASE("Maximum") { check_binary([](const V& x) { return zg::maximum(x[0], x[1]); }); }
ZG_GRADCHECK_CASE("Minimum") { check_binary([](const V& x) { return zg::minimum(x[0], x[1]); }); }

ZG_GRADCHECK_CASE("Where") {
  struct Case {
    Shape cond, a, b;
  };
  unsigned seed = 200;
  for (const Case& c : std::vector<Case>{{{3, 4}, {3, 1}, {1, 4}},
                                         {{3}, {2, 3}, {3}},
                                         {{2, 3}, {}, {2, 3}},
                                         {{3, 1}, {1, 4}, {}},
                                         {{}, {2, 3}, {2, 3}}}) {
    CAPTURE(shape_str(c.cond));
    CAPTURE(shape_str(c.a));
    CAPTURE(shape_str(c.b));
    const Variable64 cond = uniform(c.cond, 0.5, 1.0, seed++, true) > 0.0;
    V xs = {uniform(c.a, 0.5, 2.0, seed++, true), uniform(c.b, 0.5, 2.0, seed++, true)};
    CHECK_GRADCHECK([&](const V& v) { return zg::where(cond, v[0], v[1]); }, xs);
    CHECK_GRADGRADCHECK([&](const V& v) { return zg::square(zg::where(cond, v[0], v[1])) * v[1]; }, xs);
  }
}
