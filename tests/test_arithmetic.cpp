// Arithmetic (ops/arithmetic.cpp) and the apple-shopping golden values of
// the book's chapter 5.
#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

TEST_CASE_TEMPLATE("apple shopping golden values", T, float, double) {
  SUBCASE("2 apples at 100, tax 1.1") {
    BasicVariable<T> apple(T(100), "apple"), num(T(2), "apple_num"), tax(T(1.1), "tax");
    apple.requires_grad_(); num.requires_grad_(); tax.requires_grad_();
    auto price = apple * num * tax;
    CHECK(price.item() == doctest::Approx(220).epsilon(1e-6));
    price.backward();
    CHECK(apple.grad().item() == doctest::Approx(2.2).epsilon(1e-6));
    CHECK(num.grad().item() == doctest::Approx(110).epsilon(1e-6));
    CHECK(tax.grad().item() == doctest::Approx(200).epsilon(1e-6));
  }
  SUBCASE("apples and oranges") {
    BasicVariable<T> apple(T(100)), apple_num(T(2)), orange(T(150)), orange_num(T(3)), tax(T(1.1));
    for (auto* v : {&apple, &apple_num, &orange, &orange_num, &tax}) v->requires_grad_();
    auto price = (apple * apple_num + orange * orange_num) * tax;
    CHECK(price.item() == doctest::Approx(715).epsilon(1e-6));
    price.backward();
    CHECK(apple_num.grad().item() == doctest::Approx(110).epsilon(1e-6));
    CHECK(apple.grad().item() == doctest::Approx(2.2).epsilon(1e-6));
    CHECK(orange.grad().item() == doctest::Approx(3.3).epsilon(1e-6));
    CHECK(orange_num.grad().item() == doctest::Approx(165).epsilon(1e-6));
    CHECK(tax.grad().item() == doctest::Approx(650).epsilon(1e-6));
  }
}

TEST_CASE("binary ops: values and broadcasting") {
  Variable a({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  Variable b({10.f, 20.f, 30.f});
  CHECK((a + b).data() == Tensor<float>({{11, 22, 33}, {14, 25, 36}}));
  CHECK((a - b).data() == Tensor<float>({{-9, -18, -27}, {-6, -15, -24}}));
  CHECK((a * b).data() == Tensor<float>({{10, 40, 90}, {40, 100, 180}}));
  CHECK((b / a).data() == Tensor<float>({{10, 10, 10}, {2.5, 4, 5}}));
  CHECK((-a).data() == Tensor<float>({{-1, -2, -3}, {-4, -5, -6}}));
  CHECK((2 * a + 1).data() == Tensor<float>({{3, 5, 7}, {9, 11, 13}}));
  CHECK((1 - a).data() == Tensor<float>({{0, -1, -2}, {-3, -4, -5}}));
  CHECK((6.0 / a).data() == Tensor<float>({{6, 3, 2}, {1.5, 1.2, 1}}));
  CHECK((a / 2).data() == Tensor<float>({{0.5, 1, 1.5}, {2, 2.5, 3}}));
  CHECK(zg::pow(a, 2.f).data() == zg::square(a).data());
}

namespace {
// Broadcasting pairs every binary op is checked on.
const std::vector<std::pair<Shape, Shape>> kBroadcastPairs = {
    {{3, 1}, {1, 4}}, {{2, 3}, {3}}, {{}, {2, 3}}, {{2, 3}, {}}, {{2, 3}, {2, 3}}, {{4, 1, 3}, {2, 1}}};

template <class F>
void check_binary(F f, bool second_order) {
  unsigned seed = 1;
  for (const auto& pair : kBroadcastPairs) {
    const Shape& sa = pair.first;
    const Shape& sb = pair.second;
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    V xs = {uniform(sa, 0.5, 2.0, seed++, true), uniform(sb, 0.5, 2.0, seed++, true)};
    CHECK_GRADCHECK(f, xs);
    if (second_order) CHECK_GRADGRADCHECK(f, xs);
  }
}
}  // namespace

ZG_GRADCHECK_CASE("Add") {
  check_binary([](const V& x) { return x[0] + x[1]; }, false);
  // The op is linear (piecewise): its own second derivative is 0, so the
  // create_graph path of its backward is checked through a square.
  check_binary([](const V& x) { return zg::square(x[0] + x[1]); }, true);
}
ZG_GRADCHECK_CASE("Sub") {
  check_binary([](const V& x) { return x[0] - x[1]; }, false);
  // The op is linear (piecewise): its own second derivative is 0, so the
  // create_graph path of its backward is checked through a square.
  check_binary([](const V& x) { return zg::square(x[0] - x[1]); }, true);
}
ZG_GRADCHECK_CASE("Mul") { check_binary([](const V& x) { return x[0] * x[1]; }, true); }
ZG_GRADCHECK_CASE("Div") { check_binary([](const V& x) { return x[0] / x[1]; }, true); }

ZG_GRADCHECK_CASE("Neg") {
  V x = {uniform({2, 3}, 0.5, 2.0, 7, true)};
  CHECK_GRADCHECK([](const V& v) { return -v[0]; }, x);
  // The op is linear (piecewise): its own second derivative is 0, so the
  // create_graph path of its backward is checked through a square.
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(-v[0]) * v[0]; }, x);
}
ZG_GRADCHECK_CASE("Square") {
  V x = {uniform({2, 3}, 0.5, 2.0, 7, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::square(v[0]); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(v[0]); }, x);
}
ZG_GRADCHECK_CASE("Pow") {
  V x = {uniform({2, 3}, 0.5, 2.0, 7, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::pow(v[0], 3.0); }, x);
  CHECK_GRADCHECK([](const V& v) { return zg::pow(v[0], -1.5); }, V{uniform({2, 3}, 0.5, 2.0, 8)});
  CHECK_GRADGRADCHECK([](const V& v) { return zg::pow(v[0], 3.0); }, x);
}
ZG_GRADCHECK_CASE("AddConst") {
  V x = {uniform({2, 3}, 0.5, 2.0, 7, true)};
  CHECK_GRADCHECK([](const V& v) { return v[0] + 2.0; }, x);
  CHECK_GRADCHECK([](const V& v) { return 2.0 - v[0]; }, x);
  // The op is linear (piecewise): its own second derivative is 0, so the
  // create_graph path of its backward is checked through a square.
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(v[0] + 2.0) * v[0]; }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(2.0 - v[0]) * v[0]; }, x);
}
ZG_GRADCHECK_CASE("MulConst") {
  V x = {uniform({2, 3}, 0.5, 2.0, 7, true)};
  CHECK_GRADCHECK([](const V& v) { return 3.0 * v[0]; }, x);
  // The op is linear (piecewise): its own second derivative is 0, so the
  // create_graph path of its backward is checked through a square.
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(3.0 * v[0]) * v[0]; }, x);
}
ZG_GRADCHECK_CASE("RDivConst") {
  V x = {uniform({2, 3}, 0.5, 2.0, 7, true)};
  CHECK_GRADCHECK([](const V& v) { return 2.0 / v[0]; }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return 2.0 / v[0]; }, x);
}

TEST_CASE("bad input: shapes that do not broadcast") {
  Variable a({1.f, 2.f, 3.f}), b({1.f, 2.f});
  CHECK(message_of<ShapeError>([&] { a + b; }) == "Add: shapes (3) and (2) cannot be broadcast together");
  CHECK(message_of<ShapeError>([&] { a - b; }).find("Sub: shapes (3) and (2)") == 0);
  CHECK(message_of<ShapeError>([&] { a * b; }).find("Mul: shapes (3) and (2)") == 0);
  CHECK(message_of<ShapeError>([&] { a / b; }).find("Div: shapes (3) and (2)") == 0);
}
