// Factories (autograd/src/factory.cpp): shapes, values (arange and linspace
// against PyTorch 1.13), requires_grad, the generator, errors.
#include <zerograd/zerograd.hpp>

#include "golden/issue18_golden.hpp"
#include "golden18.hpp"
#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;

TEST_CASE("tensor: values in a shape, the column spelling, requires_grad") {
  auto col = zg::tensor({1., 2., 3.}, {3, 1});
  static_assert(std::is_same_v<decltype(col), Variable64>);
  CHECK(col.shape() == Shape{3, 1});
  CHECK(col.data()(2, 0) == 3.0);
  CHECK(!col.requires_grad());
  auto m = zg::tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}, {true, "m"});
  static_assert(std::is_same_v<decltype(m), Variable>);
  CHECK(m.data()(1, 0) == 4.f);
  CHECK(m.requires_grad());
  CHECK(m.name() == "m");
  zg::sum(m * m).backward();
  CHECK(m.grad().data()(1, 2) == 12.f);
  CHECK(zg::tensor(std::vector<double>{7.}, {}).ndim() == 0);
  CHECK(message_of<ShapeError>([] { zg::tensor({1., 2., 3., 4.}, {3, 1}); }) ==
        "tensor: 4 values do not fill shape (3, 1) (3 elements)");
}

TEST_CASE("zeros, ones, full: shape, value, dtype") {
  auto z = zg::zeros({2, 3});
  static_assert(std::is_same_v<decltype(z), Variable>);
  CHECK(z.shape() == Shape{2, 3});
  CHECK(zg::sum(z).item() == 0.f);
  auto o = zg::ones<double>({4}, {true});
  CHECK(zg::sum(o).item() == 4.0);
  CHECK(o.requires_grad());
  auto f = zg::full<double>({2, 2}, 2.5);
  CHECK(zg::full({1}, 2.5).data()(0) == 2.5f);
  CHECK(f.data()(1, 1) == 2.5);
  CHECK(zg::zeros({0, 3}).size() == 0);
}

TEST_CASE("arange and linspace: PyTorch's values and counts") {
  golden18::check_close(zg::arange<double>(0.5, 3.2, 0.3), golden18::arange_fractional, 1e-15);
  golden18::check_close(zg::arange<double>(2.0, -1.0, -0.7), golden18::arange_down, 1e-15);
  golden18::check_close(zg::linspace<double>(-1, 2, 7), golden18::linspace_7, 1e-15);
  golden18::check_close(zg::linspace<double>(0.1, 0.7, 6), golden18::linspace_6, 1e-15);
  CHECK(zg::arange(5, 5).size() == 0);
  auto r = zg::arange(0, 4);  // integers give float values, as torch's default dtype
  static_assert(std::is_same_v<decltype(r), Variable>);
  CHECK(r.data() == Tensor<float>({0.f, 1.f, 2.f, 3.f}));
  CHECK(zg::linspace<double>(3, 9, 1).data() == Tensor<double>({3.0}));
  CHECK(zg::linspace(3, 9, 0).size() == 0);
  CHECK(message_of<ValueError>([] { zg::arange(0, 1, 0); }) == "arange: step 0 cannot go from 0 to 1");
  CHECK(message_of<ValueError>([] { zg::arange<double>(0, 1, -0.5); }) == "arange: step -0.5 cannot go from 0 to 1");
  CHECK(message_of<ValueError>([] { zg::linspace<double>(0, INFINITY, 3); }) ==
        "linspace: start and end must be finite, got 0 and inf");
}

TEST_CASE("randn and rand: the library's generator, or a given one") {
  manual_seed(11);
  auto a = zg::randn<double>({1000});
  manual_seed(11);
  auto b = zg::randn<double>({1000});
  CHECK(a.data() == b.data());
  double mean = 0, var = 0;
  for (double v : a.data()) mean += v / 1000;
  for (double v : a.data()) var += (v - mean) * (v - mean) / 1000;
  CHECK(std::abs(mean) < 0.15);  // 4.7 standard errors
  CHECK(std::abs(var - 1) < 0.2);
  Generator g1(5), g2(5);
  auto u = zg::rand({500}, {true}, g1);
  CHECK(u.requires_grad());
  CHECK(u.data() == zg::rand({500}, {}, g2).data());
  float lo = 1, hi = 0;
  for (float v : u.data()) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo >= 0.f);
  CHECK(hi < 1.f);
  CHECK(hi > 0.9f);
  CHECK(lo < 0.1f);
}
