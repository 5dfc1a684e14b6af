// transpose, flatten / expand_dims / squeeze, get_item, concat / stack / split.
#include <limits>

#include <xtensor/xmanipulation.hpp>

#include "testing.hpp"

using namespace zg;
using zg::testing::iota;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

namespace {
const std::vector<Axes> kPermutations3 = {{0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
}  // namespace

// Transpose

TEST_CASE("transpose: values") {
  Variable a({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  CHECK(zg::transpose(a).data() == Tensor<float>({{1, 4}, {2, 5}, {3, 6}}));
  CHECK(zg::transpose(zg::transpose(a)).data() == a.data());

  Variable64 x(iota({2, 3, 4}));
  SUBCASE("every permutation of a 3-D input matches xt::transpose") {
    for (const Axes& p : kPermutations3) {
      CAPTURE(p);
      Tensor<double> expected = xt::transpose(x.data(), std::vector<std::size_t>(p.begin(), p.end()));
      CHECK(zg::transpose(x, p).data() == expected);
      CHECK(zg::permute(x, p).data() == expected);
    }
    CHECK(zg::transpose(x).shape() == Shape{4, 3, 2});
    CHECK(zg::transpose(x).data()(3, 1, 0) == x.data()(0, 1, 3));
  }
  SUBCASE("negative axes, identity and low rank") {
    CHECK(zg::transpose(x, {-1, 0, 1}).data() == zg::transpose(x, {2, 0, 1}).data());
    CHECK(zg::transpose(x, {0, 1, 2}).id() == x.id());
    Variable64 v({1.0, 2.0, 3.0});
    CHECK(zg::transpose(v).data() == v.data());
    CHECK(zg::transpose(Variable64(2.0)).item() == 2.0);
  }
  SUBCASE("empty input") {
    Variable64 e(Tensor<double>::from_shape({0, 3}));
    CHECK(zg::transpose(e).shape() == Shape{3, 0});
  }
}

TEST_CASE("transpose: gradient by value is the transposed seed") {
  Variable64 x(iota({2, 3}));
  x.requires_grad_();
  Variable64 w(iota({3, 2}));
  zg::sum(zg::transpose(x) * w).backward();
  CHECK(x.grad().data() == Tensor<double>({{0, 2, 4}, {1, 3, 5}}));
}

ZG_GRADCHECK_CASE("Transpose") {
  V x = {uniform({2, 3, 4}, 0.5, 2.0, 31, true)};
  for (const Axes& p : kPermutations3) {
    CAPTURE(p);
    CHECK_GRADCHECK([&](const V& v) { return zg::transpose(v[0], p); }, x);
  }
  CHECK_GRADCHECK([](const V& v) { return zg::transpose(v[0], {-1, -3, -2}); }, x);
  CHECK_GRADCHECK([](const V& v) { return zg::transpose(v[0]); }, V{uniform({3, 5}, 0.5, 2.0, 32, true)});
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::transpose(v[0], {2, 0, 1})); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::transpose(zg::square(v[0]), {1, 2, 0}); }, x);
}

TEST_CASE("transpose: bad permutations") {
  Variable x(Tensor<float>::from_shape({2, 3, 4}));
  CHECK(message_of<ShapeError>([&] { zg::transpose(x, {0, 0, 1}); }) ==
        "Transpose: axes (0, 0, 1) are not a permutation of the axes of (2, 3, 4)");
  CHECK(message_of<ShapeError>([&] { zg::transpose(x, {0, 1}); }) ==
        "Transpose: axes (0, 1) are not a permutation of the axes of (2, 3, 4)");
  CHECK(message_of<ShapeError>([&] { zg::transpose(x, {0, 1, 3}); }) ==
        "Transpose: axes (0, 1, 3) are not a permutation of the axes of (2, 3, 4)");
  CHECK(message_of<ShapeError>([&] { zg::transpose(x, {0, 1, 2, 3}); }).find("Transpose: axes (0, 1, 2, 3)") == 0);
}

// Flatten, expand_dims, squeeze

TEST_CASE("flatten, expand_dims and squeeze") {
  Variable64 x(iota({2, 3, 4}));
  CHECK(zg::flatten(x).shape() == Shape{2, 12});
  CHECK(zg::flatten(x, 0).shape() == Shape{24});
  CHECK(zg::flatten(x, 2).shape() == Shape{2, 3, 4});
  CHECK(zg::flatten(x, -2).shape() == Shape{2, 12});
  CHECK(zg::flatten(x).data()(1, 11) == 23);
  CHECK(zg::flatten(Variable64(5.0), 0).shape() == Shape{1});

  CHECK(zg::expand_dims(x, 0).shape() == Shape{1, 2, 3, 4});
  CHECK(zg::expand_dims(x, 1).shape() == Shape{2, 1, 3, 4});
  CHECK(zg::expand_dims(x, 3).shape() == Shape{2, 3, 4, 1});
  CHECK(zg::expand_dims(x, -1).shape() == Shape{2, 3, 4, 1});
  CHECK(zg::expand_dims(x, -4).shape() == Shape{1, 2, 3, 4});
  CHECK(zg::expand_dims(Variable64(5.0), 0).shape() == Shape{1});

  Variable64 y(iota({1, 3, 1, 2}));
  CHECK(zg::squeeze(y).shape() == Shape{3, 2});
  CHECK(zg::squeeze(y, 0).shape() == Shape{3, 1, 2});
  CHECK(zg::squeeze(y, -2).shape() == Shape{1, 3, 2});
  CHECK(zg::squeeze(y).data() == Tensor<double>({{0, 1}, {2, 3}, {4, 5}}));
  CHECK(zg::squeeze(Variable64(Tensor<double>::from_shape({1, 1}))).ndim() == 0);
}

TEST_CASE("flatten, expand_dims and squeeze: bad axes") {
  Variable64 y(iota({2, 1, 3}));
  CHECK(message_of<ShapeError>([&] { zg::squeeze(y, 0); }) == "squeeze: axis 0 of (2, 1, 3) has size 2, not 1");
  CHECK(message_of<ShapeError>([&] { zg::squeeze(y, 3); }) == "squeeze: axis 3 is out of range for (2, 1, 3)");
  CHECK(message_of<ShapeError>([&] { zg::expand_dims(y, 4); }) == "expand_dims: axis 4 is out of range for (2, 1, 3)");
  CHECK(message_of<ShapeError>([&] { zg::expand_dims(y, -5); }) == "expand_dims: axis -5 is out of range for (2, 1, 3)");
  CHECK(message_of<ShapeError>([&] { zg::flatten(y, 3); }) == "flatten: axis 3 is out of range for (2, 1, 3)");
}

// flatten, expand_dims and squeeze are reshapes.
// Get_item

TEST_CASE("get_item: values") {
  // [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
  Variable64 a(iota({3, 4}));
  auto at = [&](const std::vector<Index>& ix) { return zg::get_item(a, ix).data(); };
  SUBCASE("integers") {
    CHECK(at({1}) == Tensor<double>({4, 5, 6, 7}));
    CHECK(at({-1}) == Tensor<double>({8, 9, 10, 11}));
    CHECK(at({1, 2}).dimension() == 0);
    CHECK(at({1, 2})() == 6);
    CHECK(at({-3, -1})() == 3);
    CHECK(at({Slice{}, 1}) == Tensor<double>({1, 5, 9}));
  }
  SUBCASE("slices") {
    CHECK(at({-1, Slice{1, 3}}) == Tensor<double>({9, 10}));
    CHECK(at({Slice{}, Slice{{}, {}, -1}}) == Tensor<double>({{3, 2, 1, 0}, {7, 6, 5, 4}, {11, 10, 9, 8}}));
    CHECK(at({Slice{{}, {}, 2}, Slice{1, {}, 2}}) == Tensor<double>({{1, 3}, {9, 11}}));
    CHECK(at({Slice{}, Slice{3, 0, -2}}) == Tensor<double>({{3, 1}, {7, 5}, {11, 9}}));
    CHECK(at({Slice{-2, {}}}) == Tensor<double>({{4, 5, 6, 7}, {8, 9, 10, 11}}));
    CHECK(at({Slice{{}, -1}, Slice{-3, -1}}) == Tensor<double>({{1, 2}, {5, 6}}));
    CHECK(at({Slice{-10, 10}}) == a.data());
    CHECK(at({Slice{{}, {}, -1}, -1}) == Tensor<double>({11, 7, 3}));
    CHECK(at({Slice{2, 1}}).shape() == std::vector<std::size_t>{0, 4});
    CHECK(at({Slice{10, {}, -1}, 0}) == Tensor<double>({8, 4, 0}));
    CHECK(at({}) == a.data());
    const std::ptrdiff_t huge = std::numeric_limits<std::ptrdiff_t>::max();
    CHECK(at({Slice{{}, {}, huge}}) == Tensor<double>({{0, 1, 2, 3}}));
    CHECK(at({Slice{{}, {}, -huge - 1}, 0}).shape() == std::vector<std::size_t>{1});
    CHECK(at({Slice{{}, {}, -huge - 1}, 0})(0) == 8);
    CHECK(at({Slice{-huge - 1, huge}, 0}) == Tensor<double>({0, 4, 8}));
  }
  SUBCASE("index arrays, with repeats and negatives") {
    CHECK(at({{2, 0, 2}}) == Tensor<double>({{8, 9, 10, 11}, {0, 1, 2, 3}, {8, 9, 10, 11}}));
    CHECK(at({Slice{}, {-1, 0}}) == Tensor<double>({{3, 0}, {7, 4}, {11, 8}}));
    CHECK(at({1, {3, 3}}) == Tensor<double>({7, 7}));
    CHECK(at({Slice{1, {}}, Index::Array{0, 2}}) == Tensor<double>({{4, 6}, {8, 10}}));
    CHECK(at({{1}}) == Tensor<double>({{4, 5, 6, 7}}));
    CHECK(at({Index::Array{}}).shape() == std::vector<std::size_t>{0, 4});
  }
  SUBCASE("3-D: the array's axis stays in place") {
    Variable64 x(iota({2, 3, 4}));
    Tensor<double> y = zg::get_item(x, {Slice{}, {2, 0}, Slice{1, 3}}).data();
    REQUIRE(y.shape() == std::vector<std::size_t>{2, 2, 2});
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t k = 0; k < 2; ++k) {
        CHECK(y(i, 0, k) == x.data()(i, 2, k + 1));
        CHECK(y(i, 1, k) == x.data()(i, 0, k + 1));
      }
    CHECK(zg::get_item(x, {1, Slice{}, -1}).data() == Tensor<double>({15, 19, 23}));
  }
}

TEST_CASE("get_item: repeated indices accumulate in the gradient") {
  Variable64 x({1.0, 2.0, 3.0, 4.0});
  x.requires_grad_();
  auto y = zg::sum(zg::get_item(x, {{0, 0, 1}}));
  CHECK(y.item() == 4.0);
  y.backward();
  CHECK(x.grad().data() == Tensor<double>({2, 1, 0, 0}));

  Variable64 m(iota({3, 2}));
  m.requires_grad_();
  Variable64 w({{1.0, 10.0}, {100.0, 1000.0}, {1e4, 1e5}});
  zg::sum(zg::get_item(m, {{0, 2, 0}}) * w).backward();
  CHECK(m.grad().data() == Tensor<double>({{1e4 + 1, 1e5 + 10}, {0, 0}, {100, 1000}}));

  Variable64 g({1.0, 2.0, 3.0});
  CHECK(zg::get_item_grad(g, {{2, 0, 2}}, {4}).data() == Tensor<double>({2, 0, 4, 0}));
}

namespace {
const std::vector<std::vector<Index>> kIndexCases = {
    {1},
    {-1, 2},
    {Slice{1, {}}},
    {Slice{}, Slice{-3, -1}},
    {Slice{{}, {}, -1}, Slice{}, Slice{1, {}, 2}},
    {Slice{}, Slice{3, 0, -2}, 4},
    {{0, 0, 1}},
    {Slice{}, {2, -1, 2, 0}},
    {1, Slice{}, {4, 0, 4}},
    {Slice{}, Slice{}, Slice{}},
};
}  // namespace

ZG_GRADCHECK_CASE("GetItem") {
  V x = {uniform({2, 4, 5}, 0.5, 2.0, 41, true)};
  for (std::size_t c = 0; c < kIndexCases.size(); ++c) {
    CAPTURE(c);
    const auto& ix = kIndexCases[c];
    CHECK_GRADCHECK([&](const V& v) { return zg::get_item(v[0], ix); }, x);
  }
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::get_item(v[0], {{0, 0, 1}})); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::get_item(zg::square(v[0]), {Slice{}, {3, 3}, Slice{{}, {}, -2}}); }, x);
}

ZG_GRADCHECK_CASE("GetItemGrad") {
  V g = {uniform({3, 4, 5}, 0.5, 2.0, 42, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::get_item_grad(v[0], {Slice{}, {1, 1, 0, 3}}, {2, 4, 5}); },
                  V{uniform({2, 4, 5}, 0.5, 2.0, 43, true)});
  CHECK_GRADCHECK([](const V& v) { return zg::get_item_grad(v[0], {{0, 0, 1}}, {2, 4, 5}); }, g);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::get_item_grad(v[0], {{0, 0, 1}}, {2, 4, 5})); }, g);
}

TEST_CASE("get_item: bad indices") {
  Variable64 a(iota({3, 4}));
  CHECK(message_of<ShapeError>([&] { zg::get_item(a, {3}); }) ==
        "GetItem: index 3 is out of range for axis 0 of size 3 (input shape (3, 4))");
  CHECK(message_of<ShapeError>([&] { zg::get_item(a, {0, -5}); }) ==
        "GetItem: index -5 is out of range for axis 1 of size 4 (input shape (3, 4))");
  CHECK(message_of<ShapeError>([&] { zg::get_item(a, {Slice{}, {0, 4}}); }) ==
        "GetItem: index array entry 4 is out of range for axis 1 of size 4 (input shape (3, 4))");
  CHECK(message_of<ShapeError>([&] { zg::get_item(a, {0, 0, 0}); }) == "GetItem: 3 indices for input of shape (3, 4)");
  CHECK(message_of<ShapeError>([&] { zg::get_item(a, {{0}, {1}}); }).find("GetItem: at most one index array") == 0);
  CHECK(message_of<ShapeError>([&] { zg::get_item(a, {Slice{{}, {}, 0}}); }) ==
        "GetItem: slice step is 0 for axis 0 (input shape (3, 4))");
  CHECK(message_of<ShapeError>([&] { zg::get_item_grad(Variable64({1.0, 2.0}), {{0, 1, 1}}, {3}); })
            .find("GetItemGrad: gradient of shape (2)") == 0);
}

// Concat, stack, split

TEST_CASE("concat and stack: values") {
  Variable a({{1.f, 2.f}, {3.f, 4.f}});
  Variable b({{5.f, 6.f}});
  Variable c(zg::testing::column({7.f, 8.f}));
  CHECK(zg::concat<float>({a, b}, 0).data() == Tensor<float>({{1, 2}, {3, 4}, {5, 6}}));
  CHECK(zg::concat<float>({a, c, a}, 1).data() == Tensor<float>({{1, 2, 7, 1, 2}, {3, 4, 8, 3, 4}}));
  CHECK(zg::concat<float>({c, a}, -1).data() == Tensor<float>({{7, 1, 2}, {8, 3, 4}}));
  CHECK(zg::concat<float>({a}, 0).data() == a.data());

  Variable d({{10.f, 20.f}, {30.f, 40.f}});
  CHECK(zg::stack<float>({a, d}).data() == Tensor<float>({{{1, 2}, {3, 4}}, {{10, 20}, {30, 40}}}));
  CHECK(zg::stack<float>({a, d}, 1).data() == Tensor<float>({{{1, 2}, {10, 20}}, {{3, 4}, {30, 40}}}));
  CHECK(zg::stack<float>({a, d}, -1).data() == Tensor<float>({{{1, 10}, {2, 20}}, {{3, 30}, {4, 40}}}));
  CHECK(zg::stack<float>({Variable(1.f), Variable(2.f)}).data() == Tensor<float>({1, 2}));
}

TEST_CASE("split: values and the gradient of unused pieces") {
  Variable64 x(iota({2, 6}));
  auto p = zg::split(x, {1, 2, 3}, 1);
  REQUIRE(p.size() == 3);
  CHECK(p[0].data() == zg::testing::column<double>({0, 6}));
  CHECK(p[1].data() == Tensor<double>({{1, 2}, {7, 8}}));
  CHECK(p[2].data() == Tensor<double>({{3, 4, 5}, {9, 10, 11}}));
  auto q = zg::split(x, 3, -1);
  REQUIRE(q.size() == 3);
  CHECK(q[2].data() == Tensor<double>({{4, 5}, {10, 11}}));
  auto r = zg::split(x, 2);
  CHECK(r[1].data() == Tensor<double>({{6, 7, 8, 9, 10, 11}}));
  CHECK(zg::split(x, {6}, 1)[0].data() == x.data());
  CHECK(zg::split(x, {0, 6}, 1)[0].shape() == Shape{2, 0});

  Variable64 v({1.0, 2.0, 3.0, 4.0, 5.0});
  v.requires_grad_();
  auto pieces = zg::split(v, {2, 3});
  zg::sum(pieces[1] * 2.0).backward();
  CHECK(v.grad().data() == Tensor<double>({0, 0, 2, 2, 2}));
}

ZG_GRADCHECK_CASE("Concat") {
  V rows = {uniform({2, 3}, 0.5, 2.0, 51, true), uniform({1, 3}, 0.5, 2.0, 52, true),
            uniform({4, 3}, 0.5, 2.0, 53, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::concat(v, 0); }, rows);
  V cols = {uniform({2, 1}, 0.5, 2.0, 54, true), uniform({2, 3}, 0.5, 2.0, 55, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::concat(v, 1); }, cols);
  V cubes = {uniform({2, 3, 2}, 0.5, 2.0, 56, true), uniform({2, 3, 1}, 0.5, 2.0, 57, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::concat(v, -1); }, cubes);
  CHECK_GRADCHECK([](const V& v) { return zg::stack(v, 1); }, V{rows[0], rows[0] * 2.0});
  CHECK_GRADGRADCHECK([](const V& v) { return zg::square(zg::concat(v, 1)); }, cols);
}

ZG_GRADCHECK_CASE("Split") {
  V x = {uniform({4, 6}, 0.5, 2.0, 61, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::split(v[0], {1, 3}, 0); }, x);
  CHECK_GRADCHECK([](const V& v) { return zg::split(v[0], {2, 1, 3}, 1); }, x);
  CHECK_GRADCHECK([](const V& v) { return zg::split(v[0], 3, -1); }, x);
  // Pieces nobody uses get zero gradients from the engine.
  CHECK_GRADCHECK([](const V& v) { return zg::split(v[0], {2, 1, 3}, 1)[1]; }, x);
  CHECK_GRADGRADCHECK(
      [](const V& v) {
        auto p = zg::split(v[0], {1, 3}, 0);
        return zg::concat<double>({zg::square(p[1]), p[0]}, 0);
      },
      x);
}

TEST_CASE("concat, stack and split: bad shapes") {
  Variable a(Tensor<float>::from_shape({2, 3})), b(Tensor<float>::from_shape({2, 4}));
  CHECK(message_of<ShapeError>([&] { zg::concat<float>({a, b}, 0); }) ==
        "Concat: along axis 0, input 1 has shape (2, 4) but input 0 has shape (2, 3)");
  CHECK(zg::concat<float>({a, b}, 1).shape() == Shape{2, 7});
  Variable c(Tensor<float>::from_shape({2, 3, 1}));
  CHECK(message_of<ShapeError>([&] { zg::concat<float>({a, c}, 1); }) ==
        "Concat: along axis 1, input 1 has shape (2, 3, 1) but input 0 has shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::concat<float>({a, a}, 2); }) == "Concat: axis 2 is out of range for (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::concat<float>({}, 0); }) == "Concat: needs at least one input");
  CHECK(message_of<ShapeError>([&] { zg::stack<float>({a, b}); }) ==
        "stack: input 1 has shape (2, 4) but input 0 has shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::stack<float>({a, a}, 3); }) == "expand_dims: axis 3 is out of range for (2, 3)");

  Variable x(Tensor<float>::from_shape({3, 5}));
  CHECK(message_of<ShapeError>([&] { zg::split(x, {2, 2}, 1); }) ==
        "Split: sizes (2, 2) do not sum to the length 5 of axis 1 of (3, 5)");
  CHECK(message_of<ShapeError>([&] { zg::split(x, {2, 4}, -1); }) ==
        "Split: sizes (2, 4) do not sum to the length 5 of axis -1 of (3, 5)");
  CHECK(message_of<ShapeError>([&] { zg::split(x, 2, 1); }) == "Split: 2 equal sections do not divide axis 1 of (3, 5)");
  CHECK(message_of<ShapeError>([&] { zg::split(x, 0, 1); }) == "Split: 0 equal sections do not divide axis 1 of (3, 5)");
  CHECK(message_of<ShapeError>([&] { zg::split(x, {3}, 2); }) == "Split: axis 2 is out of range for (3, 5)");
}

// Float and double

TEST_CASE_TEMPLATE("tensor ops compute in float and double", T, float, double) {
  BasicVariable<T> x(iota<T>({2, 3}));
  x.requires_grad_();
  auto t = zg::transpose(x);
  auto g = zg::get_item(t, {{2, 2}, Slice{{}, {}, -1}});
  CHECK(g.data() == Tensor<T>({{5, 2}, {5, 2}}));
  auto parts = zg::split(x, {1, 2}, 1);
  auto joined = zg::concat<T>({parts[1], g}, 0);
  CHECK(joined.data() == Tensor<T>({{1, 2}, {4, 5}, {5, 2}, {5, 2}}));
  zg::sum(joined).backward();
  CHECK(x.grad().data() == Tensor<T>({{0, 1, 3}, {0, 1, 3}}));
}
