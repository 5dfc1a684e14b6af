// PyTorch's losses with a reduction (nn/src/losses.cpp): values and
// gradients against PyTorch 1.13 (tests/golden/make_issue18_golden.py),
// gradchecks in float64, errors.
#include <cmath>

#include <zerograd/nn.hpp>

#include "golden/issue18_golden.hpp"
#include "golden18.hpp"
#include "testing.hpp"

using namespace zg;
namespace F = zg::nn::functional;
using F::Reduction;
using golden18::check_against;
using golden18::ramp;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

namespace {

const Reduction kReductions[] = {Reduction::None, Reduction::Mean, Reduction::Sum};

Variable64 logits() { return ramp({4, 5}, [](double i) { return 2 * std::sin(1.3 * i); }); }
const Variable64 kLabels({1., 0., 4., 1.});
const Variable64 kClassWeight({0.5, 1.0, 2.0, 1.5, 0.8});

Variable64 regression_y() { return ramp({3, 4}, [](double i) { return 1.5 * std::sin(0.8 * i); }); }
Variable64 regression_t() { return ramp({3, 4}, [](double i) { return 0.9 * std::cos(0.5 * i); }); }

// PyTorch's values and input gradients for each of kReductions: nll_loss and
// cross_entropy with class weights, and cross_entropy without them.
const std::vector<double>* const nll[] = {&golden18::nll_none, &golden18::nll_mean, &golden18::nll_sum};
const std::vector<double>* const nll_g[] = {&golden18::nll_none_grad0, &golden18::nll_mean_grad0,
                                            &golden18::nll_sum_grad0};
const std::vector<double>* const ce[] = {&golden18::ce_none, &golden18::ce_mean, &golden18::ce_sum};
const std::vector<double>* const ce_g[] = {&golden18::ce_none_grad0, &golden18::ce_mean_grad0, &golden18::ce_sum_grad0};
const std::vector<double>* const cn[] = {&golden18::ce_noweight_none, &golden18::ce_noweight_mean,
                                         &golden18::ce_noweight_sum};
const std::vector<double>* const cn_g[] = {&golden18::ce_noweight_none_grad0, &golden18::ce_noweight_mean_grad0,
                                           &golden18::ce_noweight_sum_grad0};

}  // namespace

TEST_CASE("nll_loss and cross_entropy: weights, ignore_index, label_smoothing equal PyTorch's") {
  for (int r = 0; r < 3; ++r) {
    const Reduction red = kReductions[r];
    CAPTURE(F::reduction_name(red));
    check_against(
        [&](const V& v) { return F::nll_loss(zg::log_softmax(v[0], 1), kLabels, kClassWeight, 0, red); },
        {logits()}, *nll[r], {*nll_g[r]});
    check_against(
        [&](const V& v) { return F::cross_entropy(v[0], kLabels, kClassWeight, {red, 0, 0.1}); }, {logits()},
        *ce[r], {*ce_g[r]});
    // no weights, label 4 ignored: the mean divides by the 3 rows left
    check_against([&](const V& v) { return F::cross_entropy(v[0], kLabels, Variable64(), {red, 4, 0.2}); },
                  {logits()}, *cn[r], {*cn_g[r]});
  }
  Tensor<double> probs = Tensor<double>::from_shape({4, 5});
  std::copy(golden18::ce_probs_target.begin(), golden18::ce_probs_target.end(), probs.begin());
  check_against([&](const V& v) { return F::cross_entropy(v[0], Variable64(probs), kClassWeight, {Reduction::Mean, -100, 0.2}); },
                {logits()}, golden18::ce_probs, {golden18::ce_probs_grad0});
}

TEST_CASE("nll_loss and cross_entropy: options carry the weight, so no placeholder Variable is needed") {
  const std::vector<double> weight = {0.5, 1.0, 2.0, 1.5, 0.8};  // kClassWeight
  for (int r = 0; r < 3; ++r) {
    const Reduction red = kReductions[r];
    CAPTURE(F::reduction_name(red));
    F::NLLLossOptions n;
    n.weight = weight;
    n.ignore_index = 0;
    n.reduction = red;
    check_against([&](const V& v) { return F::nll_loss(zg::log_softmax(v[0], 1), kLabels, n); }, {logits()},
                  *nll[r], {*nll_g[r]});
    F::CrossEntropyOptions o;
    o.weight = weight;
    o.ignore_index = 0;
    o.label_smoothing = 0.1;
    o.reduction = red;
    check_against([&](const V& v) { return F::cross_entropy(v[0], kLabels, o); }, {logits()}, *ce[r], {*ce_g[r]});
    check_against([&](const V& v) { return F::cross_entropy(v[0], kLabels, {red, 4, 0.2}); }, {logits()}, *cn[r],
                  {*cn_g[r]});
  }
  Tensor<double> probs = Tensor<double>::from_shape({4, 5});
  std::copy(golden18::ce_probs_target.begin(), golden18::ce_probs_target.end(), probs.begin());
  check_against([&](const V& v) { return F::cross_entropy(v[0], Variable64(probs), {Reduction::Mean, -100, 0.2, weight}); },
                {logits()}, golden18::ce_probs, {golden18::ce_probs_grad0});

  // the same numbers serve a float model
  F::CrossEntropyOptions o;
  o.weight = weight;
  const Variable xf = logits().to<float>(), tf = kLabels.to<float>();
  CHECK(F::cross_entropy(xf, tf, o).item() == doctest::Approx(F::cross_entropy(xf, tf, kClassWeight.to<float>()).item()));
  F::NLLLossOptions n;
  n.weight = weight;
  CHECK(F::nll_loss(xf, tf, n).item() == doctest::Approx(F::nll_loss(xf, tf, kClassWeight.to<float>()).item()));
  // without a weight the options form equals the older one
  CHECK(F::nll_loss(xf, tf, F::NLLLossOptions{Reduction::Sum, 1}).item() ==
        F::nll_loss(xf, tf, Variable(), 1, Reduction::Sum).item());
  CHECK(std::isnan(F::nll_loss(xf, Variable({7.f, 7.f, 7.f, 7.f}), F::NLLLossOptions{Reduction::Mean, 7}).item()));
}

TEST_CASE("nll_loss and cross_entropy: a weight given both ways, or of the wrong size, is an error") {
  const Variable64 x = logits();
  F::CrossEntropyOptions o;
  o.weight = {1, 2, 3, 4, 5};
  CHECK(message_of<ValueError>([&] { F::cross_entropy(x, kLabels, kClassWeight, o); }) ==
        "cross_entropy: weight is given twice, as the weight argument (5) and as options.weight (5); give one");
  o.weight = {1, 2};
  CHECK(message_of<ShapeError>([&] { F::cross_entropy(x, kLabels, o); }) == "cross_entropy: weight must be (5), got (2)");
  F::NLLLossOptions n;
  n.weight = {1, 2, 3};
  CHECK(message_of<ShapeError>([&] { F::nll_loss(x, kLabels, n); }) == "nll_loss: weight must be (5), got (3)");
}

TEST_CASE("nll_loss and cross_entropy: gradcheck and gradgradcheck in float64") {
  V x = {uniform({4, 5}, -2.0, 2.0, 191)};
  for (Reduction red : kReductions) {
    CAPTURE(F::reduction_name(red));
    auto f = [&](const V& v) { return zg::sum(F::cross_entropy(v[0], kLabels, kClassWeight, {red, 0, 0.3})); };
    CHECK_GRADCHECK(f, x);
    CHECK_GRADGRADCHECK(f, x);
  }
  auto nll = [&](const V& v) { return F::nll_loss(zg::log_softmax(v[0], 1), kLabels, kClassWeight); };
  CHECK_GRADCHECK(nll, x);
  CHECK_GRADGRADCHECK(nll, x);
}

TEST_CASE("nll_loss and cross_entropy: every ignored row gives NaN under mean, as in PyTorch") {
  Variable64 x = logits();
  CHECK(std::isnan(F::nll_loss(zg::log_softmax(x, 1), Variable64({7., 7., 7., 7.}), Variable64(), 7).item()));
  CHECK(F::nll_loss(x, Variable64({7., 7., 7., 7.}), Variable64(), 7, Reduction::Sum).item() == 0.0);
}

TEST_CASE("nll_loss and cross_entropy: bad input names the op and the values") {
  Variable x({{1.f, 2.f, 3.f}, {1.f, 2.f, 3.f}});
  CHECK(message_of<ValueError>([&] { F::nll_loss(x, Variable({0.f, 3.f})); }) ==
        "nll_loss: label 3 at index 1 is not a class in [0, 3) nor ignore_index -100");
  CHECK(message_of<ValueError>([&] { F::cross_entropy(x, Variable({0.f, 1.f}), Variable(), {Reduction::Mean, -100, -0.1}); }) ==
        "cross_entropy: label_smoothing must be in [0, 1], got -0.1");
  CHECK(message_of<ShapeError>([&] { F::cross_entropy(x, Variable({0.f, 1.f, 2.f})); }) ==
        "cross_entropy: target must be labels (2) for input (2, 3), got (3)");
  CHECK(message_of<ShapeError>([&] { F::nll_loss(x, Variable({0.f, 1.f}), Variable({1.f, 1.f})); }) ==
        "nll_loss: weight must be (3), got (2)");
  CHECK(message_of<ShapeError>([&] { F::cross_entropy(Variable({1.f, 2.f}), Variable({0.f})); }) ==
        "cross_entropy: input must be (N, C) with N > 0, got (2)");
  CHECK(message_of<ValueError>([&] { F::nll_loss(x, Variable({0.f, 1.f}), Variable(), -100, Reduction::BatchMean); }) ==
        "nll_loss: reduction batchmean is only for kl_div (use none, mean or sum)");
}

TEST_CASE("l1_loss, smooth_l1_loss, huber_loss: every reduction equals PyTorch's") {
  const std::vector<double>* l1[] = {&golden18::l1_none, &golden18::l1_mean, &golden18::l1_sum};
  const std::vector<double>* l1_g[] = {&golden18::l1_none_grad0, &golden18::l1_mean_grad0, &golden18::l1_sum_grad0};
  const std::vector<double>* sl[] = {&golden18::smooth_l1_none, &golden18::smooth_l1_mean, &golden18::smooth_l1_sum};
  const std::vector<double>* sl_g[] = {&golden18::smooth_l1_none_grad0, &golden18::smooth_l1_mean_grad0,
                                       &golden18::smooth_l1_sum_grad0};
  const std::vector<double>* hu[] = {&golden18::huber_none, &golden18::huber_mean, &golden18::huber_sum};
  const std::vector<double>* hu_g[] = {&golden18::huber_none_grad0, &golden18::huber_mean_grad0,
                                       &golden18::huber_sum_grad0};
  const Variable64 t = regression_t();
  for (int r = 0; r < 3; ++r) {
    const Reduction red = kReductions[r];
    CAPTURE(F::reduction_name(red));
    check_against([&](const V& v) { return F::l1_loss(v[0], t, red); }, {regression_y()}, *l1[r], {*l1_g[r]});
    check_against([&](const V& v) { return F::smooth_l1_loss(v[0], t, 0.5, red); }, {regression_y()}, *sl[r],
                  {*sl_g[r]});
    check_against([&](const V& v) { return F::huber_loss(v[0], t, 0.7, red); }, {regression_y()}, *hu[r],
                  {*hu_g[r]});
  }
}

TEST_CASE("l1_loss, smooth_l1_loss, huber_loss: gradchecks away from the kinks, errors") {
  // |y - t| is in [0.1, 0.4] or [0.8, 1.1]: away from 0 and from beta = delta = 0.6
  Variable64 t = uniform({3, 4}, -1.0, 1.0, 192);
  Tensor<double> d = uniform({3, 4}, 0.1, 0.4, 193, true).data();
  for (std::size_t i = 0; i < d.size(); i += 2) d.data()[i] += std::copysign(0.7, d.data()[i]);
  V y = {Variable64(Tensor<double>(t.data() + d))};
  auto l1 = [&](const V& v) { return F::l1_loss(v[0], t, Reduction::Sum); };
  auto sl = [&](const V& v) { return F::smooth_l1_loss(v[0], t, 0.6); };
  auto hu = [&](const V& v) { return F::huber_loss(v[0], t, 0.6); };
  for (const auto& f : {std::function<Variable64(const V&)>(l1), std::function<Variable64(const V&)>(sl),
                        std::function<Variable64(const V&)>(hu)})
    CHECK_GRADCHECK(f, y);
  CHECK_GRADGRADCHECK(sl, y);
  CHECK_GRADGRADCHECK(hu, y);
  CHECK(F::smooth_l1_loss(y[0], t, 0.0).item() == doctest::Approx(F::l1_loss(y[0], t).item()));
  Variable a({1.f, 2.f}), b({1.f, 2.f, 3.f});
  CHECK(message_of<ShapeError>([&] { F::l1_loss(a, b); }) == "l1_loss: input (2) and target (3) differ");
  CHECK(message_of<ValueError>([&] { F::smooth_l1_loss(a, a, -1.0); }) ==
        "smooth_l1_loss: beta must be finite and >= 0, got -1");
  CHECK(message_of<ValueError>([&] { F::huber_loss(a, a, 0.0); }) == "huber_loss: delta must be finite and > 0, got 0");
  CHECK(message_of<ValueError>([&] { F::huber_loss(a, a, 1.0, Reduction::BatchMean); }) ==
        "huber_loss: reduction batchmean is only for kl_div (use none, mean or sum)");
}

TEST_CASE("binary_cross_entropy: weights, reductions and the clamp at -100 equal PyTorch's") {
  const Variable64 p = ramp({3, 4}, [](double i) { return 1 / (1 + std::exp(-2 * std::sin(1.7 * i))); });
  const Variable64 t = ramp({3, 4}, [](double i) { return 0.5 + 0.5 * std::cos(0.6 * i); });
  const Variable64 w = ramp({4}, [](double i) { return 0.5 + 0.25 * i; });
  const std::vector<double>* bce[] = {&golden18::bce_none, &golden18::bce_mean, &golden18::bce_sum};
  const std::vector<double>* bce_g[] = {&golden18::bce_none_grad0, &golden18::bce_mean_grad0,
                                        &golden18::bce_sum_grad0};
  for (int r = 0; r < 3; ++r) {
    CAPTURE(r);
    check_against([&](const V& v) { return F::binary_cross_entropy(v[0], t, w, kReductions[r]); }, {p}, *bce[r],
                  {*bce_g[r]});
  }
  Variable64 edges = F::binary_cross_entropy(Variable64({0., 1., 0., 1.}), Variable64({1., 0., 0., 1.}),
                                             Variable64(), Reduction::None);
  golden18::check_close(edges, golden18::bce_edges);  // 100, 100, 0, 0
  Variable edges32 = F::binary_cross_entropy(Variable({0.f, 1e-40f}), Variable({1.f, 1.f}), Variable(), Reduction::None);
  CHECK(edges32.data()(0) == 100.f);
  CHECK(edges32.data()(1) == doctest::Approx(-std::log(1e-40)).epsilon(1e-4));  // log = -92: not clamped

  V pin = {uniform({3, 4}, 0.1, 0.9, 194)};
  CHECK_GRADCHECK([&](const V& v) { return F::binary_cross_entropy(v[0], t, w); }, pin);
  CHECK_GRADGRADCHECK([&](const V& v) { return F::binary_cross_entropy(v[0], t, w); }, pin);
  CHECK(message_of<ValueError>([] { F::binary_cross_entropy(Variable({0.5f, 1.5f}), Variable({0.f, 1.f})); }) ==
        "binary_cross_entropy: input must hold probabilities in [0, 1], got 1.5 at index 1");
  CHECK(message_of<ShapeError>([] {
          F::binary_cross_entropy(Variable({0.5f, 0.5f}), Variable({0.f, 1.f}), Variable({1.f, 1.f, 1.f}));
        }).find("binary_cross_entropy") == 0);
}

TEST_CASE("kl_div: every reduction, batchmean and log_target equal PyTorch's") {
  Tensor<double> xs = Tensor<double>::from_shape({3, 4}), ts = Tensor<double>::from_shape({3, 4});
  std::copy(golden18::kl_input.begin(), golden18::kl_input.end(), xs.begin());
  std::copy(golden18::kl_target.begin(), golden18::kl_target.end(), ts.begin());
  const Variable64 x(xs), t(ts);
  REQUIRE(ts(1, 2) == 0.0);
  const Reduction reds[] = {Reduction::None, Reduction::Mean, Reduction::Sum, Reduction::BatchMean};
  const std::vector<double>* kl[] = {&golden18::kl_none, &golden18::kl_mean, &golden18::kl_sum, &golden18::kl_batchmean};
  const std::vector<double>* kl_g[] = {&golden18::kl_none_grad0, &golden18::kl_mean_grad0, &golden18::kl_sum_grad0,
                                       &golden18::kl_batchmean_grad0};
  for (int r = 0; r < 4; ++r) {
    CAPTURE(r);
    check_against([&](const V& v) { return F::kl_div(v[0], t, reds[r]); }, {x}, *kl[r], {*kl_g[r]});
  }
  const Variable64 logt = zg::log_softmax(ramp({3, 4}, [](double i) { return std::cos(1.1 * i); }), 1);
  check_against([](const V& v) { return F::kl_div(v[0], v[1], Reduction::BatchMean, true); }, {x, logt},
                golden18::kl_log_target, {golden18::kl_log_target_grad0, golden18::kl_log_target_grad1});

  V in = {uniform({3, 4}, -2.0, -0.5, 195), uniform({3, 4}, 0.1, 0.9, 196)};
  auto f = [](const V& v) { return F::kl_div(v[0], v[1], Reduction::BatchMean); };
  CHECK_GRADCHECK(f, in);
  CHECK_GRADGRADCHECK(f, in);
  CHECK(message_of<ValueError>([] { F::kl_div(Variable({-1.f, -1.f}), Variable({0.5f, -0.5f})); }) ==
        "kl_div: target must hold probabilities >= 0 (or pass log_target), got -0.5 at index 1");
  CHECK(message_of<ShapeError>([] { F::kl_div(Variable({-1.f}), Variable({0.5f, 0.5f})); }) ==
        "kl_div: input (1) and target (2) differ");
}
