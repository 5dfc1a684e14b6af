// tril, triu, masked_fill and transpose(x, dim0, dim1): values against
// PyTorch (tests/golden/seq_ops_golden.hpp), gradcheck, second order and
// shape errors.
#include <cmath>
#include <limits>

#include "golden/seq_ops_golden.hpp"
#include "golden18.hpp"
#include "testing.hpp"

using namespace zg;
using golden18::check_against;
using golden18::ramp;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

namespace {

Variable64 seq_c(const Shape& s) {
  return ramp(s, [](double i) { return std::sin(1.3 * i) + 0.1 * std::cos(0.2 * i); });
}

}  // namespace

TEST_CASE("tril and triu: values and gradients equal PyTorch's") {
  const Variable64 x = seq_c({2, 3, 4});
  using namespace golden_seq;
  check_against([](const V& v) { return zg::tril(v[0], -1); }, {x}, tril_m1, {tril_m1_grad0});
  check_against([](const V& v) { return zg::tril(v[0]); }, {x}, tril_0, {tril_0_grad0});
  check_against([](const V& v) { return zg::tril(v[0], 2); }, {x}, tril_2, {tril_2_grad0});
  check_against([](const V& v) { return zg::triu(v[0], -1); }, {x}, triu_m1, {triu_m1_grad0});
  check_against([](const V& v) { return zg::triu(v[0]); }, {x}, triu_0, {triu_0_grad0});
  check_against([](const V& v) { return zg::triu(v[0], 2); }, {x}, triu_2, {triu_2_grad0});
}

TEST_CASE("tril and triu: split a matrix, keep diagonals far outside, refuse vectors") {
  const Variable64 x = uniform({3, 2, 5}, 0.5, 2.0, 7, true);
  for (std::ptrdiff_t d : {-3, -1, 0, 1, 4}) {
    CAPTURE(d);
    // The strict lower part and the upper part from the diagonal add up to x.
    CHECK(xt::allclose((zg::tril(x, d - 1) + zg::triu(x, d)).data(), x.data(), 0, 0));
  }
  CHECK(zg::tril(x, 4).data() == x.data());
  CHECK(zg::triu(x, -2).data() == x.data());
  CHECK(xt::all(xt::equal(zg::tril(x, -2).data(), 0.0)));
  CHECK(zg::tril(Variable64(Tensor<double>::from_shape({0, 3, 3}))).shape() == Shape{0, 3, 3});
  CHECK(message_of<ShapeError>([] { zg::tril(Variable64(Tensor<double>::from_shape({4}))); }) ==
        "Tril: input must have 2 or more dimensions, got (4)");
  CHECK(message_of<ShapeError>([] { zg::triu(Variable64(2.0)); }) ==
        "Triu: input must have 2 or more dimensions, got ()");
}

ZG_GRADCHECK_CASE("Tril") {
  for (const Shape& s : std::vector<Shape>{{3, 4}, {2, 3, 3}, {2, 1, 2, 3}})
    for (std::ptrdiff_t d : {-1, 0, 2}) {
      CAPTURE(shape_str(s)); CAPTURE(d);
      V x = {uniform(s, 0.5, 2.0, 11, true)};
      CHECK_GRADCHECK([d](const V& v) { return zg::tril(v[0], d); }, x);
      CHECK_GRADGRADCHECK([d](const V& v) { return zg::sum(zg::square(zg::tril(v[0], d))); }, x);
    }
}

ZG_GRADCHECK_CASE("Triu") {
  for (const Shape& s : std::vector<Shape>{{3, 4}, {2, 3, 3}, {2, 1, 2, 3}})
    for (std::ptrdiff_t d : {-1, 0, 2}) {
      CAPTURE(shape_str(s)); CAPTURE(d);
      V x = {uniform(s, 0.5, 2.0, 12, true)};
      CHECK_GRADCHECK([d](const V& v) { return zg::triu(v[0], d); }, x);
      CHECK_GRADGRADCHECK([d](const V& v) { return zg::sum(zg::square(zg::triu(v[0], d))); }, x);
    }
}

TEST_CASE("masked_fill: values and gradient equal PyTorch's, the mask broadcast") {
  const Variable64 x = seq_c({2, 3, 4});
  const Variable64 mask = ramp({3, 1}, [](double i) { return double(int(i) % 3 == 1); });
  check_against([&](const V& v) { return zg::masked_fill(v[0], mask, -2.5); }, {x}, golden_seq::masked_fill,
                {golden_seq::masked_fill_grad0});
}

TEST_CASE("masked_fill: -infinity, any nonzero mask value, no gradient to the mask, bad shapes") {
  const Variable64 x = uniform({2, 3}, 0.5, 2.0, 13);
  Variable64 mask(Tensor<double>{{0.0, -3.0, 0.5}});
  mask.requires_grad_();
  const double inf = std::numeric_limits<double>::infinity();
  Variable64 y = zg::masked_fill(x, mask, -inf);
  CHECK(y.data()(1, 0) == x.data()(1, 0));
  CHECK(y.data()(0, 1) == -inf);
  CHECK(y.data()(1, 2) == -inf);
  Variable64 xs = Variable64(x.data()).requires_grad_();
  zg::sum(zg::masked_fill(xs, mask, 7.0)).backward();
  CHECK(xs.grad().data() == Tensor<double>{{1.0, 0.0, 0.0}, {1.0, 0.0, 0.0}});
  CHECK_FALSE(mask.grad().defined());
  CHECK(message_of<ShapeError>([&] { zg::masked_fill(x, Variable64(Tensor<double>::from_shape({2})), 0.0); }) ==
        "MaskedFill: mask (2) does not broadcast to the input's shape (2, 3)");
  CHECK(message_of<ShapeError>([&] { zg::masked_fill(x, Variable64(Tensor<double>::from_shape({4, 2, 3})), 0.0); }) ==
        "MaskedFill: mask (4, 2, 3) does not broadcast to the input's shape (2, 3)");
}

ZG_GRADCHECK_CASE("MaskedFill") {
  const V x = {uniform({2, 3, 4}, 0.5, 2.0, 14, true)};
  const Variable64 row = ramp({4}, [](double i) { return double(int(i) % 2); });
  const Variable64 full = ramp({2, 3, 4}, [](double i) { return double(int(i) % 3 == 0); });
  const Variable64 lead = ramp({2, 1, 1}, [](double i) { return i; });
  for (const Variable64& m : {row, full, lead}) {
    CAPTURE(shape_str(m.shape()));
    CHECK_GRADCHECK([&](const V& v) { return zg::masked_fill(v[0], m, -1.5); }, x);
    CHECK_GRADGRADCHECK([&](const V& v) { return zg::sum(zg::square(zg::masked_fill(v[0], m, 0.25))); }, x);
  }
}

TEST_CASE("transpose(x, dim0, dim1): swaps two axes, negatives allowed, differentiable") {
  const Variable64 x = uniform({2, 3, 4}, 0.5, 2.0, 15, true);
  CHECK(zg::transpose(x, 1, 2).data() == zg::transpose(x, Axes{0, 2, 1}).data());
  CHECK(zg::transpose(x, -1, 0).shape() == Shape{4, 3, 2});
  CHECK(zg::transpose(x, -2, -1).data() == zg::permute(x, {0, 2, 1}).data());
  CHECK(zg::transpose(x, 1, 1).data() == x.data());
  CHECK_GRADCHECK([](const V& v) { return zg::transpose(v[0], 0, -1); }, V{x});
  CHECK(message_of<ShapeError>([&] { zg::transpose(x, 0, 3); }) == "Transpose: axis 3 is out of range for (2, 3, 4)");
  CHECK(message_of<ShapeError>([&] { zg::transpose(x, -4, 1); }) == "Transpose: axis -4 is out of range for (2, 3, 4)");
}
