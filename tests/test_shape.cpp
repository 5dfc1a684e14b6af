// reshape, broadcast_to and sum_to (ops/shape.cpp): values, gradcheck and
// second order; flatten, expand_dims and squeeze are reshapes (test_tensor.cpp
// checks their values).
#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

TEST_CASE("broadcast_to, sum_to and reshape") {
  Variable a({1.f, 2.f, 3.f});
  CHECK(zg::broadcast_to(a, {2, 3}).data() == Tensor<float>({{1, 2, 3}, {1, 2, 3}}));
  Variable m({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  CHECK(zg::sum_to(m, {3}).data() == Tensor<float>({5, 7, 9}));
  CHECK(zg::sum_to(m, {2, 1}).data() == zg::testing::column({6.f, 15.f}));
  CHECK(zg::sum_to(m, {}).item() == 21);
  CHECK(zg::reshape(m, {3, 2}).data() == Tensor<float>({{1, 2}, {3, 4}, {5, 6}}));
  CHECK(message_of<ShapeError>([&] { zg::reshape(m, {4}); }) ==
        "Reshape: cannot reshape (2, 3) (6 elements) to (4)");
  CHECK(message_of<ShapeError>([&] { zg::broadcast_to(m, {3, 3}); }).find("BroadcastTo") == 0);
  CHECK(message_of<ShapeError>([&] { zg::sum_to(m, {2}); }).find("SumTo") == 0);
}

ZG_GRADCHECK_CASE("BroadcastTo") {
  V x = {uniform({3, 1}, 0.5, 2.0, 21, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::broadcast_to(v[0], {2, 3, 4}); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::broadcast_to(v[0], {2, 3, 4})); }, x);
}

ZG_GRADCHECK_CASE("SumTo") {
  V y = {uniform({2, 3, 4}, 0.5, 2.0, 22, true)};
  for (const Shape& s : std::vector<Shape>{{3, 4}, {3, 1}, {1, 4}, {4}, {}, {2, 1, 4}}) {
    CAPTURE(shape_str(s));
    CHECK_GRADCHECK([&](const V& v) { return zg::sum_to(v[0], s); }, y);
    CHECK_GRADGRADCHECK([&](const V& v) { return zg::sum_to(v[0] * v[0], s); }, y);
  }
}

ZG_GRADCHECK_CASE("Reshape") {  // reshape, and flatten, expand_dims and squeeze built on it
  {
    V y = {uniform({2, 3, 4}, 0.5, 2.0, 22, true)};
    CHECK_GRADCHECK([](const V& v) { return zg::reshape(v[0], {4, 6}); }, y);
    CHECK_GRADCHECK([](const V& v) { return zg::reshape(v[0], {24}); }, y);
    CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::reshape(v[0], {4, 6})); }, y);
  }
  {
    V x = {uniform({2, 1, 3, 2}, 0.5, 2.0, 33, true)};
    CHECK_GRADCHECK([](const V& v) { return zg::flatten(v[0]); }, x);
    CHECK_GRADCHECK([](const V& v) { return zg::expand_dims(v[0], -1); }, x);
    CHECK_GRADCHECK([](const V& v) { return zg::squeeze(v[0]); }, x);
    CHECK_GRADCHECK([](const V& v) { return zg::squeeze(v[0], 1); }, x);
  }
}
