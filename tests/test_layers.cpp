// Modules and layers: Linear, activations, Dropout, BatchNorm, Sequential, MLP.
#include <cmath>

#include <zerograd/nn.hpp>

#include "testing.hpp"

using namespace zg;
namespace F = zg::nn::functional;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

TEST_CASE("Linear: shapes, flattening of 4-d input, parameters by name") {
  zg::manual_seed(1);
  nn::Linear fc(12, 5);
  CHECK(fc.weight.shape() == Shape{12, 5});
  CHECK(fc.bias.shape() == Shape{5});
  Variable x(Tensor<float>(xt::ones<float>({2, 3, 2, 2})));
  x.requires_grad_();
  auto y = fc(x);
  CHECK(y.shape() == Shape{2, 5});
  zg::sum(y).backward();
  CHECK(x.grad().shape() == Shape{2, 3, 2, 2});
  CHECK(fc.bias.grad().data() == Tensor<float>({2, 2, 2, 2, 2}));  // db sums over the batch
  auto named = fc.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "weight");
  CHECK(named[1].first == "bias");
  CHECK(message_of<ShapeError>([&] { fc(Variable(Tensor<float>(xt::ones<float>({2, 7})))); }) ==
        "Linear(in=12, out=5): input (2, 7) has 7 features per sample");
}

TEST_CASE("init: std of Xavier and He, zero biases") {
  zg::manual_seed(7);
  nn::Linear he(400, 300, nn::Init::he()), xavier(400, 300, nn::Init::xavier()), small(400, 300, nn::Init::normal(0.01));
  auto std_of = [](const Variable& w) {
    const auto& d = w.data();
    double s = 0, s2 = 0;
    for (float v : d) s += v, s2 += double(v) * v;
    const double n = double(d.size());
    return std::sqrt(s2 / n - (s / n) * (s / n));
  };
  CHECK(std_of(he.weight) == doctest::Approx(std::sqrt(2.0 / 400)).epsilon(0.02));
  CHECK(std_of(xavier.weight) == doctest::Approx(std::sqrt(1.0 / 400)).epsilon(0.02));
  CHECK(std_of(small.weight) == doctest::Approx(0.01).epsilon(0.02));
  CHECK(xt::all(xt::equal(he.bias.data(), 0.f)));
  CHECK(nn::init::fan_in({30, 1, 5, 5}) == 25);
  CHECK(nn::Init::parse("std:0.05").std == doctest::Approx(0.05));
  CHECK(message_of<ValueError>([] { nn::Init::parse("bogus"); }).find("Init::parse: 'bogus'") == 0);
}

TEST_CASE("the same seed gives the same weights") {
  zg::manual_seed(3);
  nn::Linear a(5, 4);
  zg::manual_seed(3);
  nn::Linear b(5, 4);
  CHECK(a.weight.data() == b.weight.data());
}

TEST_CASE("Dropout: inverted scaling in train, identity in eval, fixed-mask gradcheck") {
  zg::manual_seed(11);
  nn::Dropout drop(0.3);
  Variable x(Tensor<float>(xt::ones<float>({200, 100})));
  auto y = drop(x);
  std::size_t kept = 0;
  double total = 0;
  for (float v : y.data()) {
    kept += v != 0;
    total += v;
    if (v != 0) CHECK(v == doctest::Approx(1 / 0.7));
  }
  CHECK(double(kept) / 20000 == doctest::Approx(0.7).epsilon(0.03));
  CHECK(total / 20000 == doctest::Approx(1.0).epsilon(0.03));  // expectation preserved
  drop.eval();
  CHECK(drop(x).data() == x.data());
  CHECK(message_of<ValueError>([] { nn::Dropout(1.0); }) == "Dropout: p must be in [0, 1), got 1.000000");

  V in = {uniform({4, 6}, 0.5, 2.0, 5, true)};
  CHECK_GRADCHECK(
      [](const V& v) {
        Generator gen(42);  // the same mask on every call
        return F::dropout(v[0], 0.5, true, gen);
      },
      in);
}

TEST_CASE("batch_norm: train-mode gradcheck for (N, F) and (N, C, H, W)") {
  Variable64 rm2(Tensor<double>(xt::zeros<double>({3}))), rv2(Tensor<double>(xt::ones<double>({3})));
  V in2 = {uniform({5, 3}, -2.0, 2.0, 51), uniform({3}, 0.5, 1.5, 52), uniform({3}, -0.5, 0.5, 53)};
  CHECK_GRADCHECK([&](const V& v) { return F::batch_norm(v[0], v[1], v[2], rm2, rv2, true); }, in2);
  CHECK_GRADGRADCHECK([&](const V& v) { return F::batch_norm(v[0], v[1], v[2], rm2, rv2, true); }, in2);
  V in4 = {uniform({2, 3, 2, 2}, -2.0, 2.0, 54), uniform({3}, 0.5, 1.5, 55), uniform({3}, -0.5, 0.5, 56)};
  CHECK_GRADCHECK([&](const V& v) { return F::batch_norm(v[0], v[1], v[2], rm2, rv2, true); }, in4);
}

TEST_CASE("BatchNorm1d: output normalised, running statistics by hand, eval uses them") {
  nn::BatchNorm1d bn(2);
  const double batches[3][4][2] = {{{1, 10}, {2, 20}, {3, 30}, {6, 60}},
                                   {{0, 1}, {0, 2}, {4, 3}, {4, 4}},
                                   {{5, -5}, {7, -7}, {9, -9}, {11, -11}}};
  double rm[2] = {0, 0}, rv[2] = {1, 1};
  for (const auto& b : batches) {
    Tensor<float> x = Tensor<float>::from_shape({4, 2});
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 2; ++j) x(i, j) = static_cast<float>(b[i][j]);
    auto y = bn(Variable(x));
    for (int j = 0; j < 2; ++j) {
      double mean = 0, var = 0;
      for (int i = 0; i < 4; ++i) mean += b[i][j] / 4;
      for (int i = 0; i < 4; ++i) var += (b[i][j] - mean) * (b[i][j] - mean) / 4;
      rm[j] = 0.9 * rm[j] + 0.1 * mean;
      rv[j] = 0.9 * rv[j] + 0.1 * var * 4 / 3;
      double ym = 0;
      for (int i = 0; i < 4; ++i) ym += y.data()(i, j) / 4;
      CHECK(ym == doctest::Approx(0).epsilon(1e-5).scale(1));
      CHECK(y.data()(0, j) == doctest::Approx((b[0][j] - mean) / std::sqrt(var + 1e-5)).epsilon(1e-4));
    }
  }
  for (int j = 0; j < 2; ++j) {
    CHECK(bn.running_mean.data()(j) == doctest::Approx(rm[j]).epsilon(1e-5));
    CHECK(bn.running_var.data()(j) == doctest::Approx(rv[j]).epsilon(1e-5));
  }
  bn.eval();
  auto y = bn(Variable({{1.f, 2.f}}));
  CHECK(y.data()(0, 0) == doctest::Approx((1 - rm[0]) / std::sqrt(rv[0] + 1e-5)).epsilon(1e-5));
  CHECK(message_of<ShapeError>([&] { bn(Variable({{1.f, 2.f, 3.f}})); }) ==
        "BatchNorm1d(2): expected input (N, 2), got (1, 3)");
  nn::BatchNorm2d bn2(3);
  CHECK(bn2(Variable(Tensor<float>(xt::ones<float>({2, 3, 4, 4})))).shape() == Shape{2, 3, 4, 4});
  CHECK(message_of<ShapeError>([&] { bn2(Variable(Tensor<float>(xt::ones<float>({2, 4, 4, 4})))); })
            .find("BatchNorm2d(3): expected input (N, 3, H, W)") == 0);
}

TEST_CASE("Sequential and MLP: names, train/eval propagation, zero_grad, summary") {
  zg::manual_seed(5);
  nn::MLPOptions o;
  o.batch_norm = true;
  o.dropout = 0.2;
  nn::MLP mlp(4, {8, 6}, 3, o);
  std::vector<std::string> names;
  for (auto& [name, p] : mlp.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"fc0.weight", "fc0.bias", "bn0.gamma", "bn0.beta", "fc1.weight",
                                          "fc1.bias", "bn1.gamma", "bn1.beta", "fc2.weight", "fc2.bias"});
  CHECK(mlp.named_buffers().size() == 4);
  CHECK(mlp.parameter_count() == 4 * 8 + 8 + 16 + 8 * 6 + 6 + 12 + 6 * 3 + 3);
  auto y = mlp(Variable(Tensor<float>(xt::ones<float>({5, 4}))));
  CHECK(y.shape() == Shape{5, 3});
  zg::sum(y).backward();
  CHECK(mlp.parameters()[0].grad().defined());
  mlp.zero_grad();
  CHECK_FALSE(mlp.parameters()[0].grad().defined());
  mlp.eval();
  for (auto& [name, child] : mlp.children()) CHECK_FALSE(child->is_training());
  const std::string s = mlp.summary();
  CHECK(s.find("fc0: Linear(in=4, out=8)") != std::string::npos);
  CHECK(s.find("weight (4, 8) 32") != std::string::npos);
  CHECK(s.find("parameters: ") != std::string::npos);
  CHECK(message_of<ValueError>([] { nn::MLP(2, {3}, 1, nn::MLPOptions{"swish"}); }).find("MLP: activation 'swish'") == 0);
}
