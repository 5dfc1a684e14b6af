// Deep Learning from Scratch, chapter 6: why weights must not start all equal.
// A two-layer net (Linear -> Sigmoid -> Linear) on the spiral data: started
// from all-zero weights, every hidden unit gets the same gradient at every
// step and stays a copy of the others; a small random start breaks the
// symmetry and learns.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include <training.hpp>
#include <zerograd/zerograd.hpp>

namespace {

namespace F = zg::nn::functional;
namespace nn = zg::nn;
using zg::Tensor;
using zg::Variable;

struct TwoLayerNet {
  std::shared_ptr<nn::Linear> fc1, fc2;
  nn::Sequential model;
  TwoLayerNet(std::size_t in, std::size_t hidden, std::size_t out)
      : fc1(std::make_shared<nn::Linear>(in, hidden)), fc2(std::make_shared<nn::Linear>(hidden, out)),
        model{fc1, std::make_shared<nn::Sigmoid>(), fc2} {}
};

// Full-batch SGD; returns the loss before each step.
std::vector<double> train(TwoLayerNet& net, const Variable& x, const Variable& t, int steps, float lr) {
  zg::optim::SGD opt(net.model.parameters(), lr);
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    opt.zero_grad();
    Variable loss = F::softmax_cross_entropy(net.model(x), t);
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}

// The largest difference between hidden unit j's column and unit 0's, over all j.
float column_spread(const Tensor<float>& w) {
  float spread = 0;
  for (std::size_t i = 0; i < w.shape(0); ++i)
    for (std::size_t j = 1; j < w.shape(1); ++j) spread = std::max(spread, std::abs(w(i, j) - w(i, 0)));
  return spread;
}

// One row per hidden unit: its incoming weights (a column of W1) and their gradient.
void show_hidden_units(const char* title, const nn::Linear& fc1) {
  const Tensor<float>& w = fc1.weight.data();
  const Tensor<float>& g = fc1.weight.grad().data();
  std::cout << "\n" << title << ": W1 column of each hidden unit and its last gradient\n"
            << "    unit   weight from x0   weight from x1      grad x0      grad x1\n"
            << std::setprecision(6);
  for (std::size_t j = 0; j < w.shape(1); ++j)
    std::cout << "    " << std::setw(4) << j << std::setw(17) << w(0, j) << std::setw(17) << w(1, j) << std::setw(13)
              << g(0, j) << std::setw(13) << g(1, j) << "\n";
  std::cout << "    largest difference between units: weights " << column_spread(w) << ", gradients "
            << column_spread(g) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "Zero versus random initialisation (Deep Learning from Scratch, chapter 6): a two-layer net\n"
      "(Linear -> Sigmoid -> Linear) trained with SGD on the spiral data. With all-zero (or all-\n"
      "equal, --equal) weights every hidden unit keeps identical weights and gradients; He-normal\n"
      "random weights break the symmetry and learn. Prints both losses and the hidden units of\n"
      "both, and writes the losses as CSV and a plot."};
  std::string out_dir = "out/zero_init";
  int steps = 2000;
  float lr = 1.0f;
  std::size_t hidden = 8;
  std::uint64_t seed = 0;
  double equal = 0.0;
  app.add_option("--out", out_dir, "Directory for losses.csv and losses.png")->capture_default_str();
  app.add_option("--steps", steps, "SGD steps (full batch)")->capture_default_str()->check(cli::PositiveNumber);
  app.add_option("--lr", lr, "Learning rate")->capture_default_str();
  app.add_option("--hidden", hidden, "Hidden units")->capture_default_str()->check(cli::Range(1, 64));
  app.add_option("--seed", seed, "Seed for the random init")->capture_default_str();
  app.add_option("--equal", equal, "The value every weight of the symmetric net starts at")->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  try {
    std::filesystem::create_directories(out_dir);
    const auto data = nn::data::spiral(100);  // 300 points, 3 classes
    const Variable x(data.images), t(data.labels);

    zg::manual_seed(seed);
    TwoLayerNet symmetric(2, hidden, 3), random(2, hidden, 3);  // Linear's default: He normal, bias 0
    nn::init::constant(symmetric.fc1->weight, equal);
    nn::init::constant(symmetric.fc2->weight, equal);

    std::cout << "Spiral data: 300 points, 3 classes. Net 2 -> " << hidden << " (sigmoid) -> 3, SGD lr " << lr
              << ", " << steps << " full-batch steps.\n\n    step" << std::setw(19) << "loss (all " + zg::number_str(equal) + ")"
              << std::setw(17) << "loss (He init)" << "\n";
    const auto equal_losses = train(symmetric, x, t, steps, lr);
    const auto random_losses = train(random, x, t, steps, lr);
    std::ostringstream csv;
    csv << "step,equal,he\n";
    zg::examples::Series equal_series{"every weight " + zg::number_str(equal), {}}, random_series{"He-normal weights", {}};
    for (int s = 0; s < steps; ++s) {
      csv << s << ',' << equal_losses[s] << ',' << random_losses[s] << '\n';
      equal_series.points.emplace_back(s, equal_losses[s]);
      random_series.points.emplace_back(s, random_losses[s]);
      if (s % (steps / 10 > 0 ? steps / 10 : 1) == 0 || s == steps - 1)
        std::cout << std::setprecision(5) << "    " << std::setw(4) << s << std::setw(19) << equal_losses[s]
                  << std::setw(17) << random_losses[s] << "\n";
    }
    std::cout << "    accuracy after training: all " << equal << " "
              << F::accuracy(symmetric.model(x), t) * 100 << "%, He init " << F::accuracy(random.model(x), t) * 100 << "%\n";

    show_hidden_units(("Start with every weight " + zg::number_str(equal)).c_str(), *symmetric.fc1);
    std::cout << "    Same input, same weights, same gradient: each step changes every unit by the same\n"
                 "    amount, so they stay copies, and the net has in effect one hidden unit.\n";
    if (equal == 0)
      std::cout << "    From all zeros with balanced classes every gradient is zero up to rounding (a saddle\n"
                   "    point): the loss sits at ln 3 = 1.0986 until rounding errors grow, then settles\n"
                   "    where one hidden unit can get.\n";
    show_hidden_units("He-normal start", *random.fc1);

    const auto dir = std::filesystem::path(out_dir);
    zg::write_text_file((dir / "losses.csv").string(), csv.str());
    std::cout << "\nLosses written to " << (dir / "losses.csv").string() << "\n";
    zg::examples::PlotOptions plot{"Two-layer net on the spiral data: equal vs random init", "SGD step",
                                   "softmax cross-entropy loss"};
    const auto png = (dir / "losses.png").string();
    zg::examples::report_plot(zg::examples::plot_lines(png, {equal_series, random_series}, plot), png);
  } catch (const std::exception& e) {
    std::cerr << "zero_init: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
