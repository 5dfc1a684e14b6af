// The chapter examples' models (examples/chapters.hpp): chapter 2's gates,
// chapter 4's numerical gradients against backprop, chapter 5's net learning.
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "../examples/chapters.hpp"
#include "testing.hpp"

namespace {

using namespace zg::chapters;

std::vector<float> values(const zg::Variable& v) { return {v.data().begin(), v.data().end()}; }

// n images (N, 1, 28, 28) in [0, 1] of 10 classes: each class a random
// prototype, each image its prototype plus noise. Easy, but only a learning
// net gets its loss far below log(10).
zg::nn::data::TensorDataset synthetic_images(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> pixel(0.f, 1.f);
  std::normal_distribution<float> noise(0.f, 0.2f);
  zg::Tensor<float> prototypes = zg::Tensor<float>::from_shape({10, 784});
  for (auto& p : prototypes) p = pixel(gen);
  zg::nn::data::TensorDataset d;
  d.images = zg::Tensor<float>::from_shape({n, 1, 28, 28});
  d.labels = zg::Tensor<float>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % 10;
    d.labels(i) = float(c);
    for (std::size_t k = 0; k < 784; ++k)
      d.images.data()[i * 784 + k] = std::clamp(prototypes(c, k) + noise(gen), 0.f, 1.f);
  }
  return d;
}

double full_loss(zg::nn::Module& model, const zg::nn::data::TensorDataset& d) {
  zg::NoGradGuard no_grad;
  const zg::Variable x(zg::nn::data::flatten_images(d.images)), t(d.labels);
  return zg::nn::functional::softmax_cross_entropy(model(x), t).item();
}

}  // namespace

TEST_CASE("chapter 2: perceptron gates give the book's truth tables") {
  const zg::Variable x = truth_table_inputs();  // (0,0), (1,0), (0,1), (1,1)
  CHECK(values(AND(x)) == std::vector<float>{0, 0, 0, 1});
  CHECK(values(NAND(x)) == std::vector<float>{1, 1, 1, 0});
  CHECK(values(OR(x)) == std::vector<float>{0, 1, 1, 1});
  CHECK(values(XOR(x)) == std::vector<float>{0, 1, 1, 0});
}

TEST_CASE("chapter 4: numerical gradients of the two-layer net agree with backprop in double") {
  for (Hidden act : {Hidden::Sigmoid, Hidden::ReLU}) {
    CAPTURE(int(act));
    zg::manual_seed(7);
    TwoLayerNet<double> net(12, 6, 4, 0.5, act);
    const zg::Variable64 x = zg::testing::uniform({5, 12}, 0.1, 1.0, 3, true);
    const zg::Variable64 t(zg::Tensor<double>{0, 3, 1, 2, 3});
    const auto numeric = numerical_gradients(net, x, t);
    const auto backprop = backprop_gradients(net, x, t);
    REQUIRE(numeric.size() == 4);
    for (std::size_t i = 0; i < numeric.size(); ++i) {
      CAPTURE(i);
      REQUIRE(numeric[i].shape() == backprop[i].shape());
      CHECK(mean_abs_diff(numeric[i], backprop[i]) < 1e-8);
      double largest = 0;  // the check means nothing if every gradient is zero
      for (double g : backprop[i]) largest = std::max(largest, std::abs(g));
      CHECK(largest > 1e-3);
    }
  }
}

TEST_CASE("chapter 4: a wrong backward would be caught by the numerical gradient") {
  zg::manual_seed(7);
  TwoLayerNet<double> net(12, 6, 4, 0.5, Hidden::Sigmoid);
  const zg::Variable64 x = zg::testing::uniform({5, 12}, 0.1, 1.0, 3, true);
  const zg::Variable64 t(zg::Tensor<double>{0, 3, 1, 2, 3});
  const auto backprop = backprop_gradients(net, x, t);
  // The gradient of twice the loss is not the gradient of the loss.
  const std::function<double()> doubled = [&] { return 2 * net.loss(x, t).item(); };
  CHECK(mean_abs_diff(zg::numerical_gradient(doubled, net.W1), backprop[0]) > 1e-4);
}

TEST_CASE("chapter 5: the two-layer net's loss falls well below its start on a small data set") {
  const auto data = synthetic_images(1000, 11);
  zg::manual_seed(0);
  auto net = make_two_layer_net();
  zg::optim::SGD opt(net->parameters(), 0.1f);
  zg::Generator gen(0);
  zg::nn::data::DataLoader loader(data, {100, true, false, true}, gen);
  const double start = full_loss(*net, data);
  CHECK(start == doctest::Approx(std::log(10.0)).epsilon(0.01));  // std 0.01 weights: near-uniform outputs
  for (int epoch = 0; epoch < 10; ++epoch) {
    loader.reset();
    zg::nn::data::DataLoader::Batch b;
    while (loader.next(b)) {
      opt.zero_grad();
      zg::nn::functional::softmax_cross_entropy((*net)(b.x), b.t).backward();
      opt.step();
    }
  }
  const double end = full_loss(*net, data);
  CHECK(end < 0.25 * start);
  zg::NoGradGuard no_grad;
  const zg::Variable x(zg::nn::data::flatten_images(data.images)), t(data.labels);
  CHECK(zg::nn::functional::accuracy((*net)(x), t) > 0.9);
}
