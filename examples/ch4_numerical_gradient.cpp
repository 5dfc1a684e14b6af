// Deep Learning from Scratch, chapter 4: the two-layer net learns from
// numerical gradients alone (central differences, h = 1e-4, two forward passes
// per parameter element), then the gradient check of chapter 5: numerical
// gradients against backprop, as the mean absolute difference per parameter.
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"

#include "chapters.hpp"
#include "training.hpp"

namespace {

namespace fs = std::filesystem;
using zg::Variable64;
using zg::chapters::Hidden;
using zg::chapters::TwoLayerNet;
namespace ex = zg::examples;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// batch rows of (x, t) drawn at random, as the book's np.random.choice.
template <class T>
std::pair<zg::Var<T>, zg::Var<T>> sample(const zg::Var<T>& x, const zg::Var<T>& t, std::size_t batch) {
  if (batch >= t.size()) return {x, t};
  std::uniform_int_distribution<std::ptrdiff_t> pick(0, std::ptrdiff_t(t.size()) - 1);
  zg::Index::Array rows(batch);
  for (auto& r : rows) r = pick(zg::generator());
  zg::NoGradGuard no_grad;
  return {zg::get_item(x, {rows}), zg::get_item(t, {rows})};
}

const char* const kNames[] = {"W1", "b1", "W2", "b2"};

// Numerical gradients against backprop on the same net in T; the mean
// absolute difference per parameter.
template <class T>
std::vector<double> gradient_check(const Variable64& x, const Variable64& t, std::size_t hidden, Hidden act,
                                   std::uint64_t seed) {
  zg::manual_seed(seed);  // the same initial weights for float and double
  TwoLayerNet<T> net(x.shape()[1], hidden, 10, 0.01, act);
  const zg::Var<T> xt = x.to<T>(), tt = t.to<T>();
  const auto numeric = zg::chapters::numerical_gradients(net, xt, tt);
  const auto backprop = zg::chapters::backprop_gradients(net, xt, tt);
  std::vector<double> diffs;
  for (std::size_t i = 0; i < numeric.size(); ++i)
    diffs.push_back(zg::chapters::mean_abs_diff(numeric[i], backprop[i]));
  return diffs;
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "Deep Learning from Scratch, chapter 4: the two-layer net (784 - hidden - 10, weight std 0.01,\n"
      "sigmoid hidden layer as in chapter 4) trained by NUMERICAL gradients: zg::numerical_gradient\n"
      "perturbs every parameter element by h = 1e-4 in turn, two forward passes each. That is slow by\n"
      "nature (784 x 10 + 10 x 10 + 20 = 7960 elements: ~16000 forward passes per iteration), so the\n"
      "defaults are tiny: 100 Fashion-MNIST training images, hidden 10, 12 iterations, about 15-20 s on\n"
      "2 cores (the gradient check adds 2-3 s). Computed in double, like the book's numpy float64.\n"
      "Prints the loss per iteration, then the gradient check of the book's gradient_check.py:\n"
      "numerical vs backprop gradients of the full 784-50-10 net on 3 images, as the mean absolute\n"
      "difference per parameter (W1, b1, W2, b2), in double and in float.\n"
      "Writes DIR/loss.csv and DIR/loss.png."};
  std::string out_dir = "out/ch4_numerical_gradient", data_dir = zg::nn::data::default_data_dir();
  std::string activation = "sigmoid";
  std::size_t train_size = 100, hidden = 10, iters = 12, batch = 100, check_images = 3, check_hidden = 50;
  double lr = 2.0;
  std::uint64_t seed = 0;
  app.add_option("--out", out_dir, "Directory for loss.csv and loss.png")->capture_default_str();
  app.add_option("--data", data_dir, "Directory with the Fashion-MNIST (or MNIST) IDX files")
      ->capture_default_str();
  app.add_option("--seed", seed, "Seed for the initial weights and the batch draws")->capture_default_str();
  app.add_option("--train-size", train_size, "Training images used (the first N)")
      ->check(cli::Range(1, 60000))->capture_default_str();
  app.add_option("--hidden", hidden, "Hidden units of the net trained numerically")
      ->check(cli::Range(1, 1000))->capture_default_str();
  app.add_option("--iters", iters, "Training iterations (each costs 2 forward passes per parameter element)")
      ->check(cli::Range(0, 100000))->capture_default_str();
  app.add_option("--batch", batch, "Images per iteration, drawn at random (>= --train-size: all of them)")
      ->check(cli::Range(1, 60000))->capture_default_str();
  app.add_option("--lr", lr, "SGD learning rate (the book's 0.1 barely moves the loss in a dozen iterations)")
      ->capture_default_str();
  app.add_option("--activation", activation, "Hidden activation (sigmoid: chapter 4; relu: chapter 5)")
      ->check(cli::IsMember({"sigmoid", "relu"}))->capture_default_str();
  app.add_option("--check-images", check_images, "Images for the gradient check (0 skips it)")
      ->check(cli::Range(0, 1000))->capture_default_str();
  app.add_option("--check-hidden", check_hidden, "Hidden units of the net in the gradient check")
      ->check(cli::Range(1, 1000))->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  try {
    const fs::path dir = fs::absolute(out_dir);
    fs::create_directories(dir);
    const Hidden act = activation == "relu" ? Hidden::ReLU : Hidden::Sigmoid;
    const auto train = zg::nn::data::load_idx_dataset(data_dir, true).head(train_size);
    const Variable64 x = zg::Variable(zg::nn::data::flatten_images(train.images)).to<double>();
    const Variable64 t = zg::Variable(train.labels).to<double>();

    zg::manual_seed(seed);
    TwoLayerNet<double> net(x.shape()[1], hidden, 10, 0.01, act);
    std::size_t elements = 0;
    for (auto* p : net.params()) elements += p->size();
    std::cout << "Training 784-" << hidden << "-10 (" << activation << ") by numerical gradients on "
              << x.shape()[0] << " images: " << elements << " parameter elements, " << 2 * elements
              << " forward passes per iteration\n\n  iter   loss      seconds\n";

    ex::MetricsCsv csv((dir / "loss.csv").string(), {"iteration", "loss", "seconds"});
    const auto start = std::chrono::steady_clock::now();
    auto report = [&](std::size_t i) {
      const double loss = net.loss(x, t).item(), s = seconds_since(start);
      csv.add({double(i), loss, s});
      std::cout << "  " << std::setw(4) << i << "   " << std::fixed << std::setprecision(6) << loss << "  "
                << std::setprecision(1) << s << "\n";
    };
    report(0);
    for (std::size_t i = 1; i <= iters; ++i) {
      const auto [xb, tb] = sample(x, t, batch);
      const auto grads = zg::chapters::numerical_gradients(net, xb, tb);
      const auto params = net.params();
      for (std::size_t k = 0; k < params.size(); ++k) params[k]->data() -= lr * grads[k];
      report(i);
    }
    std::cout << "\nloss per iteration: " << csv.path() << "\n";
    std::vector<std::pair<double, double>> points;
    for (const auto& row : csv.rows()) points.emplace_back(row[0], row[1]);
    const std::string png = (dir / "loss.png").string();
    const ex::Series series{"training loss on the " + std::to_string(x.shape()[0]) + " images", points};
    const ex::PlotOptions look{"Chapter 4: a 784-" + std::to_string(hidden) +
                                   "-10 net learning from numerical gradients (lr " + zg::number_str(lr) + ")",
                               "iteration", "cross-entropy loss", false, true};
    ex::report_plot(ex::plot_lines(png, {series}, look), png);

    if (check_images == 0) return 0;
    const Variable64 xc = zg::Variable(zg::nn::data::flatten_images(train.head(check_images).images)).to<double>();
    const Variable64 tc = zg::Variable(train.head(check_images).labels).to<double>();
    std::cout << "\nGradient check (gradient_check.py): 784-" << check_hidden << "-10 (" << activation << ") on "
              << xc.shape()[0] << " images, mean |numerical - backprop| per parameter\n\n"
              << "  param   double (float64)   float (float32)\n";
    const auto d64 = gradient_check<double>(xc, tc, check_hidden, act, seed);
    const auto d32 = gradient_check<float>(xc, tc, check_hidden, act, seed);
    for (std::size_t i = 0; i < d64.size(); ++i)
      std::cout << "  " << std::left << std::setw(8) << kNames[i] << std::right << std::scientific
                << std::setprecision(2) << std::setw(10) << d64[i] << std::setw(18) << d32[i] << "\n";
    std::cout << "\nIn double the differences are 1e-10 or less: backprop computes the same gradients. In\n"
                 "float the loss (about 2.3) carries rounding errors of 1e-7 to 1e-6; divided by 2h = 2e-4\n"
                 "they become noise larger than most of these gradients: numerical gradients need double.\n";
  } catch (const std::exception& e) {
    std::cerr << "ch4_numerical_gradient: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
