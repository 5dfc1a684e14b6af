// The data pipeline end to end: a Dataset of one's own, a sampler, random
// transforms and a prefetching DataLoader, training a small CNN.
// docs/data.md shows the middle of this file.
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "cli.hpp"

#include <zerograd/zerograd.hpp>

#include "training.hpp"

namespace nn = zg::nn;
namespace data = zg::nn::data;
namespace ex = zg::examples;

// 1x12x12 images of a bright bar, vertical (class 0) or horizontal (class 1),
// at a position drawn from the sample's index: any class with size() and get().
class Bars : public data::Dataset {
 public:
  // Samples first, first + 1, ...: a test set starts where the training set ends.
  explicit Bars(std::size_t n, std::size_t first = 0) : n_(n), first_(first) {}
  std::size_t size() const override { return n_; }
  data::Example get(std::size_t i) const override {
    if (i >= n_) throw zg::ValueError("Bars::get: index " + std::to_string(i) + " is out of range for " + std::to_string(n_));
    const std::size_t j = first_ + i;
    zg::Tensor<float> x = xt::zeros<float>({1, 12, 12});
    const std::size_t at = 2 + j * 7 % 8;
    for (std::size_t k = 0; k < 12; ++k) (j % 2 ? x(0, at, k) : x(0, k, at)) = 1.0f;
    return {x, zg::Tensor<float>(float(j % 2))};
  }

 private:
  std::size_t n_, first_;
};

// The share of data the model classifies right, in order and without a graph.
double accuracy(nn::Module& model, const data::Dataset& set) {
  zg::NoGradGuard no_grad;
  data::DataLoader::Options o;
  o.batch_size = 128;
  o.shuffle = false;
  data::DataLoader loader(set, o);
  data::DataLoader::Batch b;
  std::size_t right = 0;
  while (loader.next(b)) {
    const zg::Tensor<std::size_t> guess = zg::argmax_indices(model(b.x), 1);
    for (std::size_t i = 0; i < guess.size(); ++i) right += guess(i) == std::size_t(b.t.data()(i));
  }
  return double(right) / double(set.size());
}

int main(int argc, char** argv) {
  int epochs = 3;
  std::size_t prefetch = 2;
  std::string out = "out/data_pipeline";
  cli::App app{"Trains a small CNN on a Dataset of its own through samplers, transforms and prefetching."};
  app.add_option("--epochs", epochs, "Epochs to train")->check(cli::Range(1, 100))->capture_default_str();
  app.add_option("--prefetch", prefetch, "Batches the loader's thread assembles ahead (0: none)")->capture_default_str();
  app.add_option("--out", out, "Directory for metrics.csv and training.png")->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);
  zg::manual_seed(1);

  Bars train(512);
  data::DataLoader::Options options;
  options.batch_size = 32;
  options.sampler = std::make_shared<data::RandomSampler>(/*seed*/ std::uint64_t{7});
  options.transform = std::make_shared<data::Compose>(std::vector<std::shared_ptr<const data::Transform>>{
      std::make_shared<data::RandomCrop>(/*size*/ 12, /*padding*/ 2),
      std::make_shared<data::RandomHorizontalFlip>(/*p*/ 0.5),
      std::make_shared<data::Normalize>(std::vector<float>{0.1f}, std::vector<float>{0.3f})});
  options.prefetch = prefetch;  // the same batches as without: Note [Deterministic batches]
  data::DataLoader loader(train, options);

  nn::Sequential model{std::make_shared<nn::Conv2d>(1, 4, 3, 1, 1), std::make_shared<nn::ReLU>(),
                       std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(4 * 12 * 12, 2)};
  zg::optim::Adam adam(model.parameters(), 0.01f);
  const Bars test(256, train.size());
  std::filesystem::create_directories(out);
  ex::MetricsCsv csv(out + "/metrics.csv", {"epoch", "train_loss", "test_accuracy"});
  ex::Series loss_curve{"training loss (mean over the epoch)", {}}, acc_curve{"test accuracy", {}};
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const ex::EpochResult r = ex::train_epoch(
        model, loader, [&] { adam.step(); adam.zero_grad(); }, "epoch " + std::to_string(epoch));
    const double acc = accuracy(model, test);
    csv.add({double(epoch), r.mean_loss, acc});
    loss_curve.points.emplace_back(epoch, r.mean_loss);
    acc_curve.points.emplace_back(epoch, acc);
    std::cout << "epoch " << epoch << ": mean loss " << std::fixed << std::setprecision(4) << r.mean_loss
              << ", test accuracy " << acc << "\n";
  }
  std::cout << "metrics: " << csv.path() << "\n";
  const std::string png = out + "/training.png";
  ex::report_plot(ex::plot_lines(png, {loss_curve, acc_curve}, {"Bars: a Dataset of its own", "epoch", "loss / accuracy"}),
                  png);
  return 0;
}
