// Layers added for PyTorch users (nn/src/layers2.cpp): values and gradients
// against PyTorch 1.13 (tests/golden/make_issue18_golden.py), gradchecks in
// float64, the Modules and their errors.
#include <cmath>
#include <functional>

#include <zerograd/nn.hpp>

#include "golden/issue18_golden.hpp"
#include "golden18.hpp"
#include "testing.hpp"

using namespace zg;
namespace F = zg::nn::functional;
using zg::testing::message_of;
using zg::testing::uniform;
using golden18::check_against;
using golden18::ramp;
using V = std::vector<Variable64>;

TEST_CASE("GELU, SiLU, Softplus: values and gradients equal PyTorch's") {
  const Variable64 x = ramp({8}, [](double i) { return 3 * std::sin(1.1 * i + 0.2); });
  check_against([](const V& v) { return F::gelu(v[0]); }, {x}, golden18::gelu, {golden18::gelu_grad0});
  check_against([](const V& v) { return F::gelu(v[0], true); }, {x}, golden18::gelu_tanh,
                {golden18::gelu_tanh_grad0});
  check_against([](const V& v) { return F::gelu(v[0], "none"); }, {x}, golden18::gelu, {golden18::gelu_grad0});
  check_against([](const V& v) { return F::gelu(v[0], "tanh"); }, {x}, golden18::gelu_tanh,
                {golden18::gelu_tanh_grad0});
  check_against([](const V& v) { return F::gelu(v[0], std::string("tanh")); }, {x}, golden18::gelu_tanh,
                {golden18::gelu_tanh_grad0});
  check_against([](const V& v) { return F::silu(v[0]); }, {x}, golden18::silu, {golden18::silu_grad0});
  // beta 2, threshold 3: two of the eight are on the linear side (beta x > 3)
  check_against([](const V& v) { return F::softplus(v[0], 2, 3); }, {x}, golden18::softplus,
                {golden18::softplus_grad0});
}

ZG_GRADCHECK_CASE("Erf") {
  V x = {uniform({3, 4}, 0.1, 2.0, 181, true)};
  CHECK_GRADCHECK([](const V& v) { return F::erf(v[0]); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return F::erf(v[0]); }, x);
}

ZG_GRADCHECK_CASE("GELU") {
  // both signs, the flat tail near -4 and the steep middle
  V x = {uniform({3, 5}, 0.05, 4.0, 182, true)};
  for (bool approx : {false, true}) {
    CAPTURE(approx);
    CHECK_GRADCHECK([&](const V& v) { return F::gelu(v[0], approx); }, x);
    CHECK_GRADGRADCHECK([&](const V& v) { return F::gelu(v[0], approx); }, x);
  }
}

TEST_CASE("SiLU: gradcheck and gradgradcheck in float64") {
  V x = {uniform({3, 4}, 0.1, 2.0, 182, true)};
  CHECK_GRADCHECK([](const V& v) { return F::silu(v[0]); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return F::silu(v[0]); }, x);
}

ZG_GRADCHECK_CASE("Softplus") {
  // beta 1.5, threshold 2: the last three are on the linear side (x > 4/3), none near the switch
  V x = {Variable64({-2.5, -1.0, -0.3, 0.4, 0.9, 1.6, 2.2, 3.1})};
  CHECK_GRADCHECK([](const V& v) { return F::softplus(v[0], 1.5, 2.0); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return F::softplus(v[0], 1.5, 2.0); }, x);
  CHECK_GRADCHECK([](const V& v) { return F::softplus(v[0]); }, x);
  CHECK_GRADGRADCHECK([](const V& v) { return F::softplus(v[0]); }, x);
}

TEST_CASE("Softplus is stable and exact at large inputs, and checks its arguments") {
  Variable x({-200.f, 0.f, 15.f, 200.f});
  Variable y = nn::Softplus()(x);
  CHECK(y.data()(0) == doctest::Approx(0.0));
  CHECK(y.data()(1) == doctest::Approx(std::log(2.0)));
  CHECK(y.data()(2) == doctest::Approx(std::log1p(std::exp(15.0))));
  CHECK(y.data()(3) == 200.f);
  CHECK(message_of<ValueError>([] { nn::Softplus(0); }) ==
        "Softplus: beta must be finite and > 0 and threshold a number, got beta=0, threshold=20");
  CHECK(nn::GELU(true).extra_repr() == "approximate='tanh'");
  Variable z({1.f, -2.f});
  CHECK(nn::Identity()(z).data() == z.data());
  CHECK(nn::SiLU()(z).data()(0) == doctest::Approx(1 / (1 + std::exp(-1.0))));
}

TEST_CASE("GELU: approximate is named as in PyTorch, 'none' or 'tanh'") {
  const Variable x({-1.5f, 0.f, 0.7f, 2.f});
  CHECK(nn::GELU().extra_repr() == "approximate='none'");
  CHECK(nn::GELU("none").extra_repr() == "approximate='none'");
  CHECK(nn::GELU("tanh").extra_repr() == "approximate='tanh'");
  CHECK(nn::GELU(std::string("tanh")).extra_repr() == "approximate='tanh'");
  CHECK(nn::GELU(false).extra_repr() == "approximate='none'");
  // the tanh approximation differs from erf in the fourth digit at 0.7
  CHECK(nn::GELU("tanh")(x).data() == nn::GELU(true)(x).data());
  CHECK(nn::GELU("none")(x).data() == nn::GELU(false)(x).data());
  CHECK(nn::GELU("tanh")(x).data()(2) != nn::GELU("none")(x).data()(2));
  CHECK(F::gelu(x, "tanh").data() == F::gelu(x, true).data());
  CHECK(F::gelu(x).data() == F::gelu(x, "none").data());
  // the setting survives a copy to double
  auto d = nn::GELU("tanh").to<double>();
  CHECK(d->extra_repr() == "approximate='tanh'");
  CHECK(message_of<ValueError>([&] { F::gelu(x, "Tanh"); }) ==
        "gelu: approximate must be 'none' or 'tanh', got 'Tanh'");
  CHECK(message_of<ValueError>([&] { F::gelu(x, ""); }) == "gelu: approximate must be 'none' or 'tanh', got ''");
  CHECK(message_of<ValueError>([] { nn::GELU("erf"); }) == "GELU: approximate must be 'none' or 'tanh', got 'erf'");
}

TEST_CASE("LayerNorm: values and gradients equal PyTorch's") {
  const Variable64 x = ramp({2, 3, 4}, [](double i) { return std::sin(0.9 * i) + 0.1 * i; });
  const Variable64 w = ramp({3, 4}, [](double i) { return 1 + 0.1 * i; });
  const Variable64 b = ramp({3, 4}, [](double i) { return 0.05 * i; });
  check_against([](const V& v) { return F::layer_norm(v[0], {3, 4}, v[1], v[2]); }, {x, w, b},
                golden18::layer_norm,
                {golden18::layer_norm_grad0, golden18::layer_norm_grad1, golden18::layer_norm_grad2});
}

ZG_GRADCHECK_CASE("LayerNorm") {
  V in = {uniform({2, 3, 4}, -1.0, 1.0, 183), uniform({4}, 0.5, 1.5, 184), uniform({4}, -0.5, 0.5, 185)};
  auto f = [](const V& v) { return F::layer_norm(v[0], {4}, v[1], v[2]); };
  CHECK_GRADCHECK(f, in);
  CHECK_GRADGRADCHECK(f, in);
  // over the two trailing axes, with weight only, bias only, neither
  V two = {uniform({2, 3, 4}, -1.0, 1.0, 186), uniform({3, 4}, 0.5, 1.5, 187), uniform({3, 4}, -0.5, 0.5, 188)};
  CHECK_GRADCHECK([](const V& v) { return F::layer_norm(v[0], {3, 4}, v[1], v[2]); }, two);
  CHECK_GRADGRADCHECK([](const V& v) { return F::layer_norm(v[0], {3, 4}, v[1], v[2]); }, two);
  CHECK_GRADCHECK([](const V& v) { return F::layer_norm(v[0], {3, 4}, v[1]); }, V{two[0], two[1]});
  CHECK_GRADGRADCHECK([](const V& v) { return F::layer_norm(v[0], {3, 4}, Variable64(), v[1]); }, V{two[0], two[2]});
  CHECK_GRADCHECK([](const V& v) { return F::layer_norm(v[0], {2, 3, 4}); }, V{two[0]});
  CHECK_GRADGRADCHECK([](const V& v) { return F::layer_norm(v[0], {2, 3, 4}); }, V{two[0]});
}

TEST_CASE("LayerNorm: the Module, bad shapes") {

  nn::LayerNorm ln({4});
  CHECK(ln.named_parameters().size() == 2);
  Variable x({{1.f, 2.f, 3.f, 4.f}, {-1.f, 0.f, 1.f, 6.f}});
  Variable y = ln(x);
  for (std::size_t r = 0; r < 2; ++r) {  // each row: mean 0, biased variance 1 (up to eps)
    double m = 0, v = 0;
    for (std::size_t j = 0; j < 4; ++j) m += y.data()(r, j) / 4;
    for (std::size_t j = 0; j < 4; ++j) v += (y.data()(r, j) - m) * (y.data()(r, j) - m) / 4;
    CHECK(m == doctest::Approx(0).epsilon(1e-6));
    CHECK(v == doctest::Approx(1).epsilon(1e-4));
  }
  CHECK(nn::LayerNorm({4}, 1e-5, false).named_parameters().empty());
  CHECK(ln.extra_repr() == "(4), eps=1e-05");
  CHECK(message_of<ShapeError>([&] { ln(Variable({1.f, 2.f, 3.f})); }) ==
        "layer_norm: normalized_shape (4) is not the trailing shape of input (3)");
  CHECK(message_of<ShapeError>([&] { F::layer_norm(x, {4}, Variable({1.f, 2.f})); }) ==
        "layer_norm: weight and bias must have shape (4), got (2)");
  CHECK(message_of<ValueError>([] { nn::LayerNorm({0}); }) ==
        "LayerNorm: normalized_shape must be non-empty with no zero size, got (0)");
}

TEST_CASE("Embedding: values and gradients equal PyTorch's, the padding row gets none") {
  const Variable64 w = ramp({5, 3}, [](double i) { return std::sin(i); });
  const Variable64 idx({{0., 2.}, {4., 2.}, {1., 4.}});
  check_against([&](const V& v) { return F::embedding(idx, v[0], 2); }, {w}, golden18::embedding,
                {golden18::embedding_grad0});
}

ZG_GRADCHECK_CASE("Embedding") {
  V w = {uniform({5, 3}, -1.0, 1.0, 186)};
  Variable64 idx({{0., 3.}, {3., 4.}, {1., 0.}});
  CHECK_GRADCHECK([&](const V& v) { return F::embedding(idx, v[0]); }, w);
  CHECK_GRADGRADCHECK([&](const V& v) { return zg::square(F::embedding(idx, v[0], 3)); }, w);
}

TEST_CASE("Embedding: Module, padding_idx, out-of-range indices") {
  manual_seed(7);
  nn::Embedding emb(4, 2, -1);  // padding_idx -1 is row 3
  CHECK(emb.extra_repr() == "4, 2, padding_idx=3");
  CHECK(emb.weight.data()(3, 0) == 0.f);
  CHECK(emb.weight.data()(3, 1) == 0.f);
  emb.weight.requires_grad_();
  Variable y = emb(Variable({3.f, 1.f, 3.f}));
  CHECK(y.shape() == Shape{3, 2});
  CHECK(y.data()(1, 0) == emb.weight.data()(1, 0));
  zg::sum(y * 2.f).backward();
  CHECK(emb.weight.grad().data()(1, 0) == 2.f);
  CHECK(emb.weight.grad().data()(3, 0) == 0.f);
  CHECK(emb.weight.grad().data()(0, 1) == 0.f);
  emb.weight.cleargrad();
  zg::sum(emb(Variable({3.f, 3.f}))).backward();  // only the padding row
  CHECK(emb.weight.grad().shape() == Shape{4, 2});
  CHECK(zg::sum(zg::abs(emb.weight.grad())).item() == 0.f);
  CHECK(message_of<ValueError>([&] { emb(Variable({1.f, 4.f})); }) ==
        "Embedding: index 4 at position 1 is not a row of the weight, which has 4");
  CHECK(message_of<ValueError>([&] { emb(Variable({-1.f})); }).find("Embedding: index -1 at position 0") == 0);
  CHECK(message_of<ValueError>([&] { emb(Variable({0.5f})); }).find("Embedding: index 0.5") == 0);
  CHECK(message_of<ValueError>([] { nn::Embedding(4, 2, 4); }) == "Embedding: padding_idx 4 is outside [-4, 4)");
  CHECK(message_of<ValueError>([&] { F::embedding(Variable({0.f}), emb.weight, 4); }) ==
        "Embedding: padding_idx 4 is not a row of the weight (4, 2)");
  CHECK(message_of<ShapeError>([] { F::embedding(Variable({0.f}), Variable({1.f, 2.f})); }) ==
        "Embedding: weight must be (num_embeddings, dim), got (2)");
}

TEST_CASE("AdaptiveAvgPool2d: values and gradients equal PyTorch's (uneven windows and global)") {
  const Variable64 x = ramp({2, 2, 5, 7}, [](double i) { return std::sin(0.37 * i); });
  check_against([](const V& v) { return F::adaptive_avg_pool2d(v[0], {3, 4}); }, {x}, golden18::adaptive_pool,
                {golden18::adaptive_pool_grad0});
  check_against([](const V& v) { return F::adaptive_avg_pool2d(v[0], {1, 1}); }, {x},
                golden18::adaptive_pool_global, {golden18::adaptive_pool_global_grad0});
}

TEST_CASE("AdaptiveAvgPool2d: gradchecks, the Module, bad shapes") {
  V x = {uniform({1, 2, 5, 4}, -1.0, 1.0, 187)};
  for (Shape out : {Shape{3, 2}, Shape{5, 4}, Shape{1, 1}, Shape{7, 6}}) {
    CAPTURE(shape_str(out));
    CHECK_GRADCHECK([&](const V& v) { return F::adaptive_avg_pool2d(v[0], out); }, x);
    CHECK_GRADGRADCHECK([&](const V& v) { return zg::square(F::adaptive_avg_pool2d(v[0], out)); }, x);
  }
  // A single size is a square output, as in PyTorch.
  CHECK(F::adaptive_avg_pool2d(x[0], 3).data() == F::adaptive_avg_pool2d(x[0], {3, 3}).data());
  CHECK(nn::BasicAdaptiveAvgPool2d<double>(2)(x[0]).shape() == Shape{1, 2, 2, 2});
  nn::AdaptiveAvgPool2d global({1, 1});
  Variable y = global(Variable(Tensor<float>(xt::ones<float>({2, 3, 4, 4}))));
  CHECK(y.shape() == Shape{2, 3, 1, 1});
  CHECK(y.data()(1, 2, 0, 0) == 1.f);
  CHECK(message_of<ShapeError>([&] { global(Variable({1.f})); })
            .find("adaptive_avg_pool2d: input must be (N, C, H, W) and output_size (OH, OW) positive, got input (1)") == 0);
  CHECK(message_of<ValueError>([] { nn::AdaptiveAvgPool2d({0, 2}); }) ==
        "AdaptiveAvgPool2d: output_size must be (OH, OW), both positive, got (0, 2)");
}

TEST_CASE("ConvTranspose2d layer: PyTorch's weight layout, bias and output_padding") {
  nn::ConvTranspose2d layer(2, 3, 3, 2, 1, 1);
  CHECK(layer.weight.shape() == Shape{2, 3, 3, 3});
  CHECK(layer.bias.shape() == Shape{3});
  const Variable64 x = ramp({1, 2, 3, 3}, [](double i) { return std::cos(i); });
  const Variable64 w = ramp({2, 3, 3, 3}, [](double i) { return 0.3 * std::sin(i); });
  const Variable64 b({0.1, -0.2, 0.3});
  // The layer's float computation against PyTorch's float64 values.
  layer.weight.data() = w.to<float>().data();
  layer.bias.data() = b.to<float>().data();
  Variable y = layer(x.to<float>());
  REQUIRE(y.shape() == Shape{1, 3, 6, 6});
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(y.data().data()[i] == doctest::Approx(golden18::conv_transpose[i]).epsilon(1e-5));
  // The same computation in float64, and its gradients: PyTorch's functional
  // form, and the adjoint form given the output size with the bias added.
  const std::vector<std::vector<double>> grads = {golden18::conv_transpose_grad0, golden18::conv_transpose_grad1,
                                                  golden18::conv_transpose_grad2};
  check_against([](const V& v) { return F::conv_transpose2d(v[0], v[1], v[2], 2, 1, 1); }, {x, w, b},
                golden18::conv_transpose, grads);
  check_against(
      [](const V& v) {
        return F::conv_transpose2d(v[0], v[1], 2, 1, {6, 6}) + zg::reshape(v[2], {1, 3, 1, 1});
      },
      {x, w, b}, golden18::conv_transpose, grads);
  CHECK(F::conv_transpose2d(x, w, Variable64(), 2, 1).shape() == Shape{1, 3, 5, 5});
  CHECK(message_of<ValueError>([&] { F::conv_transpose2d(x, w, b, 2, 1, 2); }) ==
        "conv_transpose2d: needs stride >= 1, padding >= 0 and 0 <= output_padding < stride, got stride=2, "
        "padding=1, output_padding=2");
  CHECK(message_of<ShapeError>([&] { F::conv_transpose2d(x, w, Variable64({1.0, 2.0})); }) ==
        "conv_transpose2d: bias (2) does not match W (2, 3, 3, 3): expected (3)");
  CHECK(message_of<ShapeError>([&] { F::conv_transpose2d(w, x, b); }) ==
        "conv_transpose2d: expected x (N, in, H, W) and W (in, out, k, k), got x (2, 3, 3, 3), W (1, 2, 3, 3)");
  CHECK(message_of<ShapeError>([&] { F::conv_transpose2d(x, w, b, 1, 3); }) ==
        "conv_transpose2d: x (1, 2, 3, 3) with W (2, 3, 3, 3) and stride=1, padding=3, output_padding=0 has no "
        "output size");
  CHECK(layer.extra_repr() == "in=2, out=3, kernel=3, stride=2, pad=1, output_padding=1");
  CHECK(message_of<ShapeError>([&] { layer(Variable(Tensor<float>(xt::zeros<float>({1, 3, 2, 2})))); }) ==
        "ConvTranspose2d(in=2, out=3, kernel=3, stride=2, pad=1, output_padding=1): expected input (N, 2, H, W), "
        "got (1, 3, 2, 2)");
  CHECK(message_of<ValueError>([] { nn::ConvTranspose2d(2, 3, 3, 2, 0, 2); })
            .find("ConvTranspose2d: output_padding must be in [0, stride)") == 0);
  CHECK(nn::ConvTranspose2d(2, 3, 3, 1, 0, 0, false).named_parameters().size() == 1);
}

TEST_CASE("the float Modules give PyTorch's values to float precision") {
  auto check = [](const Variable& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      CAPTURE(i);
      CHECK(got.data().data()[i] == doctest::Approx(want[i]).epsilon(2e-5).scale(1));
    }
  };
  const Variable x = ramp({8}, [](double i) { return 3 * std::sin(1.1 * i + 0.2); }).to<float>();
  check(nn::GELU()(x), golden18::gelu);
  check(nn::GELU(true)(x), golden18::gelu_tanh);
  check(nn::SiLU()(x), golden18::silu);
  check(nn::Softplus(2, 3)(x), golden18::softplus);

  nn::LayerNorm ln({3, 4});
  ln.weight.data() = ramp({3, 4}, [](double i) { return 1 + 0.1 * i; }).to<float>().data();
  ln.bias.data() = ramp({3, 4}, [](double i) { return 0.05 * i; }).to<float>().data();
  check(ln(ramp({2, 3, 4}, [](double i) { return std::sin(0.9 * i) + 0.1 * i; }).to<float>()), golden18::layer_norm);

  nn::Embedding emb(5, 3, 2);
  emb.weight.data() = ramp({5, 3}, [](double i) { return std::sin(i); }).to<float>().data();
  check(emb(Variable({{0.f, 2.f}, {4.f, 2.f}, {1.f, 4.f}})), golden18::embedding);

  const Variable img = ramp({2, 2, 5, 7}, [](double i) { return std::sin(0.37 * i); }).to<float>();
  check(nn::AdaptiveAvgPool2d({3, 4})(img), golden18::adaptive_pool);
  check(nn::AdaptiveAvgPool2d({1, 1})(img), golden18::adaptive_pool_global);
}

namespace {

// The gradients of sum(y * r) for y = f(inputs), r fixed, by a plain
// backward (the kernels) and under create_graph (autograd ops).
template <class T, class Fn>
std::pair<std::vector<Tensor<T>>, std::vector<Tensor<T>>> both_backwards(Fn f, std::vector<BasicVariable<T>> in,
                                                                            const Tensor<T>& r) {
  std::pair<std::vector<Tensor<T>>, std::vector<Tensor<T>>> out;
  for (bool create_graph : {false, true}) {
    for (auto& v : in) v = BasicVariable<T>(Tensor<T>(v.data())).requires_grad_();
    GradOptions o;
    o.create_graph = create_graph;
    const auto g = zg::grad(zg::sum(f(in) * BasicVariable<T>(r)), in, {}, o);
    for (const auto& gi : g) (create_graph ? out.second : out.first).push_back(gi.data());
  }
  return out;
}

template <class A, class B>
double max_rel_diff(const Tensor<A>& a, const Tensor<B>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(double(a.data()[i]) - double(b.data()[i])) / (1 + std::abs(double(b.data()[i]))));
  return worst;
}

}  // namespace

TEST_CASE("GELU and LayerNorm: kernels equal the ops they replace, at every thread count") {
  // 70,000 elements: two chunks at 2 threads, a ragged SIMD tail; rows of 125.
  const Shape shape{4, 140, 125};
  const Variable64 x64 = uniform(shape, -5.0, 5.0, 191);
  const Variable64 r64 = uniform(shape, -1.0, 1.0, 192);
  const Variable64 w64 = uniform({125}, 0.5, 1.5, 193), b64 = uniform({125}, -0.5, 0.5, 194);
  const auto as_float = [](const Variable64& v) { return Variable(Tensor<float>(xt::cast<float>(v.data()))); };
  const int threads = zg::num_threads();
  for (bool approx : {false, true}) {
    CAPTURE(approx);
    const auto gelu64 = [&](const V& v) { return F::gelu(v[0], approx); };
    const auto gelu32 = [&](const std::vector<Variable>& v) { return F::gelu(v[0], approx); };
    // the kernel's first-order backward against the same derivative in autograd ops
    const auto g64 = both_backwards<double>(gelu64, {x64}, r64.data());
    CHECK(max_rel_diff(g64.first[0], g64.second[0]) < 1e-14);
    const auto g32 = both_backwards<float>(gelu32, {as_float(x64)}, as_float(r64).data());
    CHECK(max_rel_diff(g32.first[0], g64.first[0]) < 1e-6);
    CHECK(max_rel_diff(g32.second[0], g64.first[0]) < 1e-6);
    // float32 forward against float64; the same bits at 1 and 2 threads
    zg::set_num_threads(1);
    const Tensor<float> one = F::gelu(as_float(x64), approx).data();
    zg::set_num_threads(2);
    const Tensor<float> two = F::gelu(as_float(x64), approx).data();
    CHECK(one == two);
    CHECK(max_rel_diff(one, F::gelu(x64, approx).data()) < 1e-6);
  }
  const auto ln64 = [](const V& v) { return F::layer_norm(v[0], {125}, v[1], v[2]); };
  const auto ln32 = [](const std::vector<Variable>& v) { return F::layer_norm(v[0], {125}, v[1], v[2]); };
  const auto g64 = both_backwards<double>(ln64, {x64, w64, b64}, r64.data());
  for (std::size_t i = 0; i < 3; ++i) CHECK(max_rel_diff(g64.first[i], g64.second[i]) < 1e-12);
  std::vector<std::vector<Tensor<float>>> per_threads;
  for (int t : {1, 2}) {
    zg::set_num_threads(t);
    const auto g32 = both_backwards<float>(ln32, {as_float(x64), as_float(w64), as_float(b64)},
                                           as_float(r64).data());
    for (std::size_t i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK(max_rel_diff(g32.first[i], g64.first[i]) < 2e-5);  // gw, gb: sums of 560 rows
      CHECK(max_rel_diff(g32.second[i], g64.first[i]) < 2e-5);
    }
    std::vector<Tensor<float>> got = g32.first;
    got.push_back(F::layer_norm(as_float(x64), {125}, as_float(w64), as_float(b64)).data());
    per_threads.push_back(got);
  }
  zg::set_num_threads(threads);
  for (std::size_t i = 0; i < per_threads[0].size(); ++i) CHECK(per_threads[0][i] == per_threads[1][i]);
  CHECK(max_rel_diff(per_threads[0].back(), F::layer_norm(x64, {125}, w64, b64).data()) < 1e-5);
}
