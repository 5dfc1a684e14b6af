// The networks of the chapter 7 and 8 examples (examples/ch7_simple_convnet,
// examples/ch8_deep_convnet): SimpleConvNet learns a small synthetic image
// set; DeepConvNet builds, and backward reaches each of its parameters.
#include <algorithm>
#include <cmath>
#include <random>

#include "testing.hpp"

namespace {

namespace F = zg::nn::functional;

// n noisy (1, 28, 28) images of three patterns, class i % 3: horizontal bars,
// vertical bars (both with a random phase) and a few Gaussian blobs.
zg::nn::data::TensorDataset bars_and_blobs(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> phase(0, 5), pos(4, 23);
  std::normal_distribution<float> noise(0.f, 0.15f);
  zg::nn::data::TensorDataset d;
  d.classes = 3;
  d.images = zg::Tensor<float>::from_shape({n, 1, 28, 28});
  d.labels = zg::Tensor<float>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) {
    const int cls = int(i % 3), p = phase(gen);
    int by[3], bx[3];
    for (int b = 0; b < 3; ++b) by[b] = pos(gen), bx[b] = pos(gen);
    d.labels(i) = float(cls);
    for (int r = 0; r < 28; ++r)
      for (int c = 0; c < 28; ++c) {
        float v = 0;
        if (cls == 0) v = (r + p) % 6 < 2;
        if (cls == 1) v = (c + p) % 6 < 2;
        for (int b = 0; cls == 2 && b < 3; ++b)
          v += std::exp(-float((r - by[b]) * (r - by[b]) + (c - bx[b]) * (c - bx[b])) / 8.f);
        d.images.data()[i * 784 + std::size_t(r * 28 + c)] = std::clamp(v + noise(gen), 0.f, 1.f);
      }
  }
  return d;
}

struct Fit {
  double loss, accuracy;
};
Fit loss_and_accuracy(zg::nn::Module& model, const zg::nn::data::TensorDataset& d) {
  zg::NoGradGuard no_grad;
  zg::nn::EvalModeGuard eval_mode;
  const zg::Variable y = model(zg::Variable(d.images)), t(d.labels);
  return {F::softmax_cross_entropy(y, t).item(), F::accuracy(y, t)};
}

}  // namespace

TEST_CASE("chapter 7: SimpleConvNet learns horizontal bars, vertical bars and blobs") {
  zg::manual_seed(3);
  const auto train = bars_and_blobs(150, 1), test = bars_and_blobs(60, 2);
  auto net = zg::nn::models::simple_conv_net(1, 28, 3);
  zg::optim::Adam adam(net->parameters(), 0.001f);
  zg::nn::data::DataLoader loader(train, {50, true, false, false});
  const Fit start = loss_and_accuracy(*net, test);
  CHECK(start.loss == doctest::Approx(std::log(3.0)).epsilon(0.01));  // weights std 0.01: near-uniform output
  zg::nn::data::DataLoader::Batch b;
  for (int step = 0; step < 30; ++step) {
    if (!loader.next(b)) loader.reset(), loader.next(b);
    F::softmax_cross_entropy((*net)(b.x), b.t).backward();
    adam.step();
    adam.zero_grad();
  }
  const Fit end = loss_and_accuracy(*net, test);
  CAPTURE(start.loss);
  CAPTURE(end.loss);
  CHECK(end.loss < 0.5 * start.loss);
  CHECK(end.accuracy > 0.8);  // chance is 1/3
}

TEST_CASE("chapter 8: DeepConvNet maps (2, 1, 28, 28) to (2, 10) and backward reaches every parameter") {
  zg::manual_seed(5);
  auto net = zg::nn::models::deep_conv_net();
  CHECK(net->named_parameters().size() == 16);  // 6 convs and 2 affines, each weight and bias
  const auto x = bars_and_blobs(2, 4);
  const zg::Variable y = (*net)(zg::Variable(x.images));
  CHECK(y.shape() == zg::Shape{2, 10});
  F::softmax_cross_entropy(y, zg::Variable(zg::Tensor<float>{3.f, 7.f})).backward();
  for (const auto& named : net->named_parameters()) {
    const std::string& name = named.first;
    const zg::Variable& p = named.second;
    CAPTURE(name);
    REQUIRE(p.grad().defined());
    CHECK(p.grad().shape() == p.shape());
    const auto& g = p.grad().data();
    CHECK(std::all_of(g.begin(), g.end(), [](float v) { return std::isfinite(v); }));
  }
  const auto params = net->named_parameters();
  const auto conv1 =
      std::find_if(params.begin(), params.end(), [](const auto& p) { return p.first == "conv1.weight"; });
  REQUIRE(conv1 != params.end());
  const auto& g = conv1->second.grad().data();  // the farthest from the loss: not trivially zero
  CHECK(std::any_of(g.begin(), g.end(), [](float v) { return v != 0; }));
}
