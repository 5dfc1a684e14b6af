// Deep Learning from Scratch, chapter 7: SimpleConvNet (conv 30 filters 5x5 ->
// ReLU -> max pool 2x2 -> Affine 100 -> ReLU -> Affine 10, weight std 0.01)
// trained with Adam on Fashion-MNIST, as the book's train_convnet.py, and its
// first-layer filters before and after training (the book's figure 7-24).
#include <algorithm>
#include <iostream>
#include <memory>

#include "convnets.hpp"

namespace {

namespace fs = std::filesystem;
using namespace zg;

// One tile per filter of weight (FN, 1, KH, KW), each scaled to its own
// min / max so that its pattern shows whatever its magnitude.
std::vector<convnets::Tile> filter_tiles(const Tensor<float>& weight) {
  const std::size_t n = weight.shape(0), kh = weight.shape(2), kw = weight.shape(3);
  std::vector<convnets::Tile> tiles;
  for (std::size_t f = 0; f < n; ++f) {
    Tensor<float> p = Tensor<float>::from_shape({kh, kw});
    for (std::size_t r = 0; r < kh; ++r)
      for (std::size_t c = 0; c < kw; ++c) p(r, c) = weight(f, 0, r, c);
    const auto [lo, hi] = std::minmax_element(p.begin(), p.end());
    const float min = *lo, range = *hi - *lo;
    for (auto& v : p) v = range > 0 ? (v - min) / range : 0.5f;
    tiles.push_back({std::move(p), ""});
  }
  return tiles;
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "Deep Learning from Scratch, chapter 7: SimpleConvNet (conv 30 filters 5x5 -> ReLU -> max pool\n"
      "2x2 -> Affine 100 -> ReLU -> Affine 10, weight std 0.01) trained on Fashion-MNIST with Adam\n"
      "(lr 0.001, batch 100), as the book's train_convnet.py. Prints the test accuracy after each\n"
      "epoch and writes DIR/metrics.csv, DIR/loss.png, DIR/accuracy.png and DIR/filters.png (the 30\n"
      "first-layer filters before and after training, each scaled to its own min/max, as the\n"
      "book's figure 7-24). The default 1 epoch takes about 4 s on 2 cores (test accuracy about\n"
      "0.83); --epochs 5 reaches about 0.89 in about 15 s."};
  convnets::Options o;
  o.out = "out/ch7_simple_convnet";
  convnets::add_options(app, o);
  ZG_CLI_PARSE(app, argc, argv);

  try {
    zg::set_num_threads(o.threads);
    zg::manual_seed(o.seed);
    fs::create_directories(o.out);
    const convnets::Data d = convnets::load(o);
    auto net = nn::models::simple_conv_net();
    std::cout << net->summary() << "optimizer: Adam, lr 0.001, batch 100, threads " << zg::num_threads() << "\n";
    const auto conv1 = std::dynamic_pointer_cast<nn::Conv2d>((*net)[0]);
    const Tensor<float> before = conv1->weight.data();

    convnets::fit(*net, d, o, "SimpleConvNet, Adam");

    const std::string png = (fs::path(o.out) / "filters.png").string();
    examples::report_plot(convnets::plot_tiles(png, {{"conv1 filters before training", filter_tiles(before), 6},
                                                     {"after training", filter_tiles(conv1->weight.data()), 6}},
                                               900, 420),
                          png);
  } catch (const std::exception& e) {
    std::cerr << "ch7_simple_convnet: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
