// Chapter 6 of Deep Learning from Scratch, "training techniques", on
// Fashion-MNIST: one subcommand per experiment of the book. Each writes CSV
// files and PNG plots (gnuplot) to --out and prints what the plots show.
//   optimizers   SGD, Momentum, AdaGrad, Adam: training loss (optimizer_compare_mnist)
//   init         std 0.01 / Xavier / He: loss curves and activation histograms
//   batchnorm    with vs without BatchNorm, for several init stds (batch_norm_test)
//   overfit      300 samples: none vs weight decay vs Dropout (overfit_weight_decay/dropout)
//   hyperparams  random search of lr and weight decay on a validation split
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include <zerograd/zerograd.hpp>

#include "training.hpp"

namespace {

namespace fs = std::filesystem;
namespace ex = zg::examples;
namespace nn = zg::nn;
namespace F = zg::nn::functional;
using nn::data::TensorDataset;
using zg::optim::Optimizer;
using Points = std::vector<std::pair<double, double>>;

struct Common {
  std::string out, data = nn::data::default_data_dir();
  std::uint64_t seed = 1;
};

std::string path(const Common& c, const std::string& file) { return (fs::path(c.out) / file).string(); }

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string sci(double v) {
  std::ostringstream s;
  s << std::scientific << std::setprecision(2) << v;
  return s.str();
}

// The book's MultiLayerNet(Extend) on 784 pixels: `hidden` layers of 100 units.
std::shared_ptr<nn::MLP> make_mlp(std::size_t hidden, const nn::MLPOptions& options = {}) {
  return std::make_shared<nn::MLP>(784, std::vector<std::size_t>(hidden, 100), 10, options);
}

// Samples in a random order (the book's shuffle_dataset).
TensorDataset shuffled(const TensorDataset& d, zg::Generator& gen) {
  std::vector<std::size_t> order(d.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), gen);
  TensorDataset s = d;
  const std::size_t per = d.images.size() / std::max<std::size_t>(d.size(), 1);
  for (std::size_t i = 0; i < order.size(); ++i) {
    std::copy_n(d.images.data() + order[i] * per, per, s.images.data() + i * per);
    s.labels(i) = d.labels(order[i]);
  }
  return s;
}

// Training

double train_step(nn::Module& model, Optimizer& opt, const nn::data::DataLoader::Batch& b) {
  opt.zero_grad();
  zg::Variable loss = F::softmax_cross_entropy(model(b.x), b.t);
  loss.backward();
  opt.step();
  return loss.item();
}

// The loss of each of `iterations` minibatches, drawn epoch after epoch.
std::vector<double> train_iterations(nn::Module& model, Optimizer& opt, const TensorDataset& train, std::size_t batch,
                                     std::size_t iterations, const std::string& label) {
  nn::data::DataLoader loader(train, {batch, true, false, true});
  nn::data::DataLoader::Batch b;
  ex::ProgressBar bar(label, iterations);
  std::vector<double> losses;
  model.train();
  while (losses.size() < iterations) {
    if (!loader.next(b)) {
      loader.reset();
      continue;
    }
    losses.push_back(train_step(model, opt, b));
    bar.update(losses.size(), losses.back());
  }
  bar.finish();
  return losses;
}

// Accuracy on `train` and `test` before training and after each epoch.
struct Accuracy {
  std::vector<double> train, test;
};
Accuracy train_epochs(nn::Module& model, Optimizer& opt, const TensorDataset& train, const TensorDataset& test,
                      std::size_t batch, std::size_t epochs, const std::string& label) {
  nn::data::DataLoader loader(train, {batch, true, false, true});
  nn::data::DataLoader::Batch b;
  ex::ProgressBar bar(label, epochs);
  Accuracy acc;
  for (std::size_t e = 0;; ++e) {
    const auto on_train = ex::evaluate(model, train, true);
    acc.train.push_back(on_train.accuracy);
    acc.test.push_back(ex::evaluate(model, test, true).accuracy);
    bar.update(e, on_train.loss);
    if (e == epochs) break;
    model.train();
    loader.reset();
    while (loader.next(b)) train_step(model, opt, b);
  }
  bar.finish("train acc " + fixed(acc.train.back(), 3) + ", test acc " + fixed(acc.test.back(), 3));
  return acc;
}

// Centered moving average over `window` points (shorter at the ends).
std::vector<double> smooth(const std::vector<double>& y, std::size_t window) {
  std::vector<double> out(y.size());
  const std::size_t half = window / 2;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const std::size_t lo = i >= half ? i - half : 0, hi = std::min(y.size(), i + half + 1);
    out[i] = std::accumulate(y.begin() + lo, y.begin() + hi, 0.0) / double(hi - lo);
  }
  return out;
}

Points indexed(const std::vector<double>& y) {
  Points p;
  for (std::size_t i = 0; i < y.size(); ++i) p.emplace_back(double(i), y[i]);
  return p;
}

// Plots

// A curve and how gnuplot draws it ("lines lw 2 lc 1 dt 2", "boxes fs solid 0.6").
struct Curve {
  std::string name;
  Points points;
  std::string style = "lines lw 2";
};
struct Panel {
  std::string title, xlabel, ylabel;
  std::vector<Curve> curves;
  std::string settings;  // gnuplot commands for this panel, e.g. "set yrange [0:1]"
};

const std::vector<std::string> kColors = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Panels side by side (`cols` per row) in one PNG; the data and script are
// written beside it.
bool plot_panels(const std::string& png, const std::string& title, const std::vector<Panel>& panels,
                 std::size_t cols, int width, int height) {
  const std::string base = png.substr(0, png.size() - 4);
  std::ostringstream data, gp;
  data << std::setprecision(8);
  const std::size_t rows = (panels.size() + cols - 1) / cols;
  gp << "set terminal pngcairo size " << width << "," << height << " font 'Helvetica,11'\n"
     << "set output " << quoted(png) << "\nset grid\nset key bottom right\n"
     << "set multiplot layout " << rows << "," << cols << " title " << quoted(title) << " font 'Helvetica,14'\n";
  std::size_t index = 0;
  for (const auto& p : panels) {
    gp << "reset session\nset grid\nset key bottom right\n"
       << "set title " << quoted(p.title) << "\nset xlabel " << quoted(p.xlabel) << "\nset ylabel "
       << quoted(p.ylabel) << "\n" << p.settings << "\nplot ";
    for (std::size_t i = 0; i < p.curves.size(); ++i) {
      data << "# " << p.curves[i].name << "\n";
      for (const auto& [x, y] : p.curves[i].points) data << x << " " << y << "\n";
      data << "\n\n";
      gp << (i ? ", " : "") << quoted(base + ".dat") << " index " << index++ << " with " << p.curves[i].style
         << (p.curves[i].name.empty() ? " notitle" : " title " + quoted(p.curves[i].name));
    }
    gp << "\n";
  }
  gp << "unset multiplot\n";
  zg::write_text_file(base + ".dat", data.str());
  zg::write_text_file(base + ".gp", gp.str());
  return ex::run_gnuplot(base + ".gp");
}

// 1. optimizers

struct OptimizerEntry {
  std::string name;
  std::function<std::unique_ptr<Optimizer>(std::vector<zg::Variable>)> make;
};

// The book's defaults: lr 0.01, Adam 0.001.
const std::vector<OptimizerEntry> kOptimizers = {
    {"SGD", [](auto p) { return std::make_unique<zg::optim::SGD>(p, 0.01f); }},
    {"Momentum", [](auto p) { return std::make_unique<zg::optim::Momentum>(p, 0.01f); }},
    {"AdaGrad", [](auto p) { return std::make_unique<zg::optim::AdaGrad>(p, 0.01f); }},
    {"Adam", [](auto p) { return std::make_unique<zg::optim::Adam>(p, 0.001f); }}};

constexpr std::size_t kSmooth = 25;

// Writes iteration, loss, smoothed loss; returns the smoothed loss.
std::vector<double> write_losses(const std::string& csv, const std::vector<double>& losses) {
  const auto smoothed = smooth(losses, kSmooth);
  std::ostringstream all;
  all << "iteration,loss,loss_smoothed\n" << std::setprecision(8);
  for (std::size_t i = 0; i < losses.size(); ++i) all << i << ',' << losses[i] << ',' << smoothed[i] << '\n';
  zg::write_text_file(csv, all.str());
  return smoothed;
}

void run_optimizers(const Common& c, std::size_t iterations) {
  const TensorDataset train = nn::data::load_idx_dataset(c.data, true), test = nn::data::load_idx_dataset(c.data, false);
  std::vector<ex::Series> series;
  std::ostringstream summary;
  for (const auto& e : kOptimizers) {
    zg::manual_seed(c.seed);  // the same initial weights and batches for every optimizer
    auto model = make_mlp(4);
    auto opt = e.make(model->parameters());
    const auto losses = train_iterations(*model, *opt, train, 128, iterations, e.name);
    const auto smoothed = write_losses(path(c, e.name + ".csv"), losses);
    series.push_back({e.name, indexed(smoothed)});
    summary << "  " << std::left << std::setw(9) << e.name << " loss " << fixed(losses.front(), 3) << " -> "
            << fixed(smoothed.back(), 3) << "   test acc " << fixed(ex::evaluate(*model, test, true).accuracy, 4)
            << "\n";
  }
  std::cout << "\nTraining loss (first minibatch -> moving average of the last " << kSmooth
            << ") and test accuracy after " << iterations << " iterations of batch 128 (784-100x4-10 ReLU MLP):\n"
            << summary.str() << "CSV: " << path(c, "<optimizer>.csv") << "\n";
  const std::string png = path(c, "optimizers.png");
  ex::report_plot(ex::plot_lines(png, series,
                                 {"Fashion-MNIST, 5-layer ReLU MLP, batch 128: training loss by optimizer",
                                  "iteration", "loss (moving average of 25)"}),
                  png);
}

// 2. init

const std::vector<std::pair<std::string, nn::Init>> kInits = {
    {"std 0.01", nn::Init::normal(0.01)}, {"Xavier", nn::Init::xavier()}, {"He", nn::Init::he()}};

void init_loss_curves(const Common& c, std::size_t iterations) {
  const TensorDataset train = nn::data::load_idx_dataset(c.data, true);
  std::vector<ex::Series> series;
  std::ostringstream summary;
  for (const auto& [name, init] : kInits) {
    zg::manual_seed(c.seed);
    nn::MLPOptions o;
    o.init = init;
    auto model = make_mlp(4, o);
    zg::optim::SGD opt(model->parameters(), 0.01f);
    const auto losses = train_iterations(*model, opt, train, 128, iterations, name);
    std::string file = name;
    std::replace(file.begin(), file.end(), ' ', '_');
    const auto smoothed = write_losses(path(c, "loss_" + file + ".csv"), losses);
    series.push_back({name, indexed(smoothed)});
    summary << "  " << std::left << std::setw(9) << name << " loss " << fixed(losses.front(), 3) << " -> "
            << fixed(smoothed.back(), 3) << "\n";
  }
  std::cout << "\nTraining loss by weight init (SGD lr 0.01, batch 128, " << iterations
            << " iterations; first minibatch -> moving average of the last " << kSmooth << "):\n" << summary.str();
  const std::string png = path(c, "init_loss.png");
  ex::report_plot(ex::plot_lines(png, series,
                                 {"Fashion-MNIST, 5-layer ReLU MLP, SGD lr 0.01: training loss by weight init",
                                  "iteration", "loss (moving average of 25)"}),
                  png);
}

struct HistogramSetting {
  std::string file, label;
  bool sigmoid;  // else ReLU
  nn::Init init;
};
constexpr std::size_t kLayers = 5, kBins = 30;

// Per layer: counts in kBins bins over [0, 1] (both ends inclusive, as numpy;
// ReLU's exact zeros are left out) and the std of all outputs. `share` is the
// fraction of outputs < 0.05 or > 0.95 (sigmoid) or exactly 0 (ReLU).
struct Histograms {
  std::vector<std::vector<double>> counts;
  std::vector<double> stds;
  double share = 0;
};

// 1000 N(0, 1) inputs through 5 layers of 100 units without bias, as in the
// book's weight_init_activation_histogram.
Histograms activation_histograms(const HistogramSetting& s, std::uint64_t seed) {
  zg::NoGradGuard no_grad;
  zg::manual_seed(seed);
  zg::Tensor<float> input = zg::Tensor<float>::from_shape({1000, 100});
  std::normal_distribution<float> normal(0.f, 1.f);
  for (auto& v : input) v = normal(zg::generator());
  zg::Variable x(input);
  Histograms h{std::vector<std::vector<double>>(kLayers, std::vector<double>(kBins, 0)), {}, 0};
  for (std::size_t l = 0; l < kLayers; ++l) {
    nn::Linear fc(100, 100, s.init, false);
    x = s.sigmoid ? zg::sigmoid(fc(x)) : zg::relu(fc(x));
    double sum = 0, sum2 = 0;
    for (float v : x.data()) {
      sum += v, sum2 += double(v) * v;
      h.share += s.sigmoid ? (v < 0.05f || v > 0.95f) : v == 0.f;
      if (v >= 0.f && v <= 1.f && (s.sigmoid || v > 0.f)) h.counts[l][std::min(kBins - 1, std::size_t(v * kBins))] += 1;
    }
    const double n = double(x.size());
    h.stds.push_back(std::sqrt(std::max(0.0, sum2 / n - sum * sum / (n * n))));
  }
  h.share /= double(x.size() * kLayers);
  return h;
}

// hist_<setting>.csv and .png: 5 histograms side by side on one count scale.
// Returns whether the PNG was made.
bool write_histograms(const Common& c, const HistogramSetting& s, const Histograms& h) {
  std::ostringstream csv;
  csv << "bin_low,bin_high,layer1,layer2,layer3,layer4,layer5\n";
  for (std::size_t b = 0; b < kBins; ++b) {
    csv << double(b) / kBins << ',' << double(b + 1) / kBins;
    for (std::size_t l = 0; l < kLayers; ++l) csv << ',' << h.counts[l][b];
    csv << '\n';
  }
  zg::write_text_file(path(c, "hist_" + s.file + ".csv"), csv.str());
  double peak = 0;
  for (const auto& layer : h.counts) peak = std::max(peak, *std::max_element(layer.begin(), layer.end()));
  std::vector<Panel> panels;
  for (std::size_t l = 0; l < kLayers; ++l) {
    Points p;
    for (std::size_t b = 0; b < kBins; ++b) p.emplace_back((double(b) + 0.5) / kBins, h.counts[l][b]);
    panels.push_back({"layer " + std::to_string(l + 1) + " (std " + sci(h.stds[l]) + ")", "activation value",
                      l == 0 ? "count" : "", {{"", p, "boxes fs solid 0.6 lc rgb '#1f77b4'"}},
                      "set xrange [0:1]\nset yrange [0:" + std::to_string(int(peak * 1.08) + 1) + "]\nset boxwidth " +
                          std::to_string(1.0 / kBins) + "\nset format y '%.0f'"});
  }
  const std::string png = path(c, "hist_" + s.file + ".png");
  const std::string what = s.sigmoid ? "100000 values per layer in 30 bins over [0, 1]"
                                     : "nonzero values in (0, 1], 30 bins (zeros and values > 1 left out)";
  return plot_panels(png, "Activations, " + s.label + " init, 5 layers of 100 units: " + what, panels, 5, 1750, 420);
}

void init_histograms(const Common& c) {
  const std::vector<HistogramSetting> settings = {
      {"sigmoid_std_1", "sigmoid, std 1", true, nn::Init::normal(1)},
      {"sigmoid_std_0.01", "sigmoid, std 0.01", true, nn::Init::normal(0.01)},
      {"sigmoid_xavier", "sigmoid, Xavier", true, nn::Init::xavier()},
      {"relu_std_0.01", "ReLU, std 0.01", false, nn::Init::normal(0.01)},
      {"relu_xavier", "ReLU, Xavier", false, nn::Init::xavier()},
      {"relu_he", "ReLU, He", false, nn::Init::he()}};
  std::cout << "\nActivations of 5 layers x 100 units for 1000 N(0, 1) inputs: std of each layer's outputs, and\n"
            << "the share of outputs < 0.05 or > 0.95 (sigmoid) or exactly 0 (ReLU):\n"
            << "  setting              layer 1   layer 2   layer 3   layer 4   layer 5   share\n";
  bool made = true;
  for (const auto& s : settings) {
    const Histograms h = activation_histograms(s, c.seed);
    std::cout << "  " << std::left << std::setw(18) << s.label << std::right;
    for (double sd : h.stds) std::cout << std::setw(10) << sci(sd);
    std::cout << std::setw(8) << fixed(h.share, 3) << "\n";
    made = write_histograms(c, s, h) && made;
  }
  std::cout << "CSV: " << path(c, "hist_<setting>.csv") << "\n";
  ex::report_plot(made, path(c, "hist_<setting>.png"));
}

// 3. batchnorm

void run_batchnorm(const Common& c, std::size_t epochs, std::size_t samples, const std::vector<double>& stds) {
  const TensorDataset train = nn::data::load_idx_dataset(c.data, true).head(samples);
  const TensorDataset test = nn::data::load_idx_dataset(c.data, false).head(2000);
  ex::MetricsCsv csv(path(c, "batchnorm.csv"), {"std", "batch_norm", "epoch", "train_acc", "test_acc"});
  std::vector<Panel> panels;
  std::ostringstream summary;
  for (double std : stds) {
    Panel panel{"init std " + zg::number_str(std), "epoch", "training accuracy", {},
                "set yrange [0:1]\nset key top left"};
    summary << "  std " << std::left << std::setw(7) << zg::number_str(std) << std::right;
    for (bool bn : {true, false}) {
      zg::manual_seed(c.seed);
      nn::MLPOptions o;
      o.init = nn::Init::normal(std);
      o.batch_norm = bn;
      auto model = make_mlp(5, o);
      zg::optim::SGD opt(model->parameters(), 0.01f);
      const auto acc = train_epochs(*model, opt, train, test, 100, epochs,
                                    (bn ? "BN    std " : "no BN std ") + zg::number_str(std));
      for (std::size_t e = 0; e < acc.train.size(); ++e) csv.add({std, double(bn), double(e), acc.train[e], acc.test[e]});
      panel.curves.push_back({bn ? "Batch Norm" : "without BN", indexed(acc.train),
                              bn ? "lines lw 2 lc rgb '#1f77b4'" : "lines lw 2 dt 2 lc rgb '#ff7f0e'"});
      summary << (bn ? "   with BN " : "   without ") << fixed(acc.train.back(), 3) << " (test "
              << fixed(acc.test.back(), 3) << ")";
    }
    summary << "\n";
    panels.push_back(panel);
  }
  std::cout << "\nTraining accuracy after " << epochs << " epochs on " << samples
            << " samples (6-layer ReLU MLP, SGD lr 0.01, batch 100; test acc on 2000 test samples):\n"
            << summary.str() << "CSV: " << csv.path() << "\n";
  const std::string png = path(c, "batchnorm.png");
  const std::size_t cols = std::min<std::size_t>(3, panels.size());
  ex::report_plot(plot_panels(png,
                              "Batch Normalization: training accuracy on " + std::to_string(samples) +
                                  " Fashion-MNIST samples by weight init std",
                              panels, cols, 500 * int(cols), 380 * int((panels.size() + cols - 1) / cols) + 40),
                  png);
}

// 4. overfit

void run_overfit(const Common& c, std::size_t epochs, std::size_t samples, float lambda, double dropout) {
  const TensorDataset train = nn::data::load_idx_dataset(c.data, true).head(samples);
  const TensorDataset test = nn::data::load_idx_dataset(c.data, false).head(2000);
  struct Setting {
    std::string name, file;
    float lambda;
    double dropout;
  };
  const std::vector<Setting> settings = {{"no regularization", "none", 0, 0},
                                         {"weight decay lambda " + zg::number_str(lambda), "weight_decay", lambda, 0},
                                         {"Dropout ratio " + zg::number_str(dropout), "dropout", 0, dropout}};
  std::vector<Panel> panels;
  std::ostringstream summary;
  for (const auto& s : settings) {
    zg::manual_seed(c.seed);
    nn::MLPOptions o;
    o.dropout = s.dropout;
    auto model = make_mlp(6, o);
    zg::optim::SGD opt(model->parameters(), 0.01f);
    opt.set_weight_decay(s.lambda);
    const auto acc = train_epochs(*model, opt, train, test, 100, epochs, s.file);
    ex::MetricsCsv csv(path(c, "overfit_" + s.file + ".csv"), {"epoch", "train_acc", "test_acc"});
    for (std::size_t e = 0; e < acc.train.size(); ++e) csv.add({double(e), acc.train[e], acc.test[e]});
    const double gap = acc.train.back() - acc.test.back();
    summary << "  " << std::left << std::setw(28) << s.name << std::right << " train " << fixed(acc.train.back(), 3)
            << "  test " << fixed(acc.test.back(), 3) << "  gap " << fixed(gap, 3) << "\n";
    panels.push_back({s.name + " (final gap " + fixed(gap, 2) + ")", "epoch", "accuracy",
                      {{"train", indexed(acc.train), "lines lw 2 lc rgb '#1f77b4'"},
                       {"test", indexed(acc.test), "lines lw 2 dt 2 lc rgb '#ff7f0e'"}},
                      "set yrange [0:1]"});
  }
  std::cout << "\nAccuracy after " << epochs << " epochs on " << samples
            << " training samples (7-layer ReLU MLP, SGD lr 0.01, batch 100; test: 2000 samples):\n"
            << summary.str() << "CSV: " << path(c, "overfit_<setting>.csv") << "\n";
  const std::string png = path(c, "overfit.png");
  ex::report_plot(plot_panels(png, "Overfitting on " + std::to_string(samples) + " Fashion-MNIST samples: train vs test accuracy",
                              panels, 3, 1500, 460),
                  png);
}

// 5. hyperparams

void run_hyperparams(const Common& c, std::size_t trials, std::size_t epochs, std::size_t samples, std::size_t show) {
  zg::manual_seed(c.seed);
  const TensorDataset all = shuffled(nn::data::load_idx_dataset(c.data, true).head(samples), zg::generator());
  const std::size_t n_val = all.size() / 5;  // 20% validation
  const TensorDataset val = all.head(n_val), train = all.slice(n_val, all.size());
  std::mt19937_64 search(c.seed);
  std::uniform_real_distribution<double> lr_exp(-6, -2), wd_exp(-8, -4);
  struct Trial {
    double lr, decay;
    Accuracy acc;
  };
  std::vector<Trial> results;
  ex::MetricsCsv curves(path(c, "hyperparams_curves.csv"), {"trial", "epoch", "train_acc", "val_acc"});
  for (std::size_t t = 0; t < trials; ++t) {
    const double lr = std::pow(10, lr_exp(search)), decay = std::pow(10, wd_exp(search));
    auto model = make_mlp(6);
    zg::optim::SGD opt(model->parameters(), float(lr));
    opt.set_weight_decay(float(decay));
    const auto label = "trial " + std::to_string(t + 1) + "/" + std::to_string(trials);
    results.push_back({lr, decay, train_epochs(*model, opt, train, val, 100, epochs, label)});
    for (std::size_t e = 0; e <= epochs; ++e)
      curves.add({double(t + 1), double(e), results.back().acc.train[e], results.back().acc.test[e]});
  }
  std::vector<std::size_t> order(results.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](auto a, auto b) { return results[a].acc.test.back() > results[b].acc.test.back(); });

  ex::MetricsCsv best(path(c, "hyperparams.csv"), {"rank", "trial", "val_acc", "train_acc", "lr", "weight_decay"});
  std::cout << "\nRandom search, " << trials << " trials of " << epochs << " epochs (" << train.size() << " train / "
            << val.size() << " validation samples, 7-layer ReLU MLP, SGD), best first:\n"
            << "  rank trial  val acc  train acc        lr  weight decay\n";
  std::vector<Panel> panels(1);
  panels[0] = {"", "epoch", "accuracy", {}, "set yrange [0:1]\nset key top left"};
  for (std::size_t r = 0; r < order.size(); ++r) {
    const Trial& t = results[order[r]];
    best.add({double(r + 1), double(order[r] + 1), t.acc.test.back(), t.acc.train.back(), t.lr, t.decay});
    if (r < std::max<std::size_t>(show, 10))
      std::cout << std::setw(6) << r + 1 << std::setw(6) << order[r] + 1 << std::setw(9) << fixed(t.acc.test.back(), 3)
                << std::setw(11) << fixed(t.acc.train.back(), 3) << std::setw(10) << sci(t.lr) << std::setw(14)
                << sci(t.decay) << "\n";
    if (r < show) {
      const std::string color = " lc rgb '" + kColors[r % kColors.size()] + "'";
      panels[0].curves.push_back({"#" + std::to_string(r + 1) + " val " + fixed(t.acc.test.back(), 2) + ", lr " +
                                      sci(t.lr) + ", decay " + sci(t.decay),
                                  indexed(t.acc.test), "lines lw 2" + color});
      panels[0].curves.push_back({"", indexed(t.acc.train), "lines lw 1 dt 2" + color});
    }
  }
  std::cout << "CSV: " << best.path() << " (all trials), " << curves.path() << "\n";
  const std::string png = path(c, "hyperparams.png");
  ex::report_plot(plot_panels(png,
                              "Random search: the best " + std::to_string(show) +
                                  " of " + std::to_string(trials) + " runs (solid: validation, dashed: training)",
                              panels, 1, 1000, 600),
                  png);
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{"Deep Learning from Scratch, chapter 6 (training techniques) on Fashion-MNIST. Each subcommand\n"
               "runs one experiment of the book, prints a summary and writes CSV files and PNG plots to --out."};
  app.require_subcommand(1);
  std::vector<std::pair<cli::App*, Common>> subs;
  auto add = [&](const std::string& name, const std::string& help) {
    cli::App* sub = app.add_subcommand(name, help);
    subs.push_back({sub, Common{"out/ch6/" + name}});
    return sub;
  };
  // Options every subcommand has; `subs` is complete before these pointers are taken.
  auto common = [&](std::size_t i) {
    auto& [sub, c] = subs[i];
    sub->add_option("--out", c.out, "Directory for CSV files and PNG plots")->capture_default_str();
    sub->add_option("--data", c.data, "Directory with the Fashion-MNIST (or MNIST) IDX files")->capture_default_str();
    sub->add_option("--seed", c.seed, "Random seed (weights, batches, search)")->capture_default_str();
  };

  std::size_t opt_iterations = 2000, init_iterations = 2000;
  std::size_t bn_epochs = 20, bn_samples = 1000;
  std::vector<double> bn_stds = {1, 0.3, 0.1, 0.03, 0.01, 0.001};
  std::size_t of_epochs = 300, of_samples = 300;
  float of_lambda = 0.1f;
  double of_dropout = 0.2;
  std::size_t hp_trials = 40, hp_epochs = 50, hp_samples = 500, hp_show = 5;

  auto* optimizers = add("optimizers", "SGD, Momentum, AdaGrad, Adam: training loss of a 5-layer ReLU MLP");
  optimizers->add_option("--iterations", opt_iterations, "Minibatches of 128 per optimizer")
      ->check(cli::Range(1, 1000000))->capture_default_str();
  auto* init = add("init", "Weight init std 0.01 / Xavier / He: loss curves and activation histograms");
  init->add_option("--iterations", init_iterations, "Minibatches of 128 per init for the loss curves")
      ->check(cli::Range(1, 1000000))->capture_default_str();
  auto* batchnorm = add("batchnorm", "With vs without BatchNorm for several init stds");
  batchnorm->add_option("--epochs", bn_epochs, "Epochs per run")->check(cli::Range(1, 100000))->capture_default_str();
  batchnorm->add_option("--samples", bn_samples, "Training samples")->check(cli::Range(1, 60000))->capture_default_str();
  batchnorm->add_option("--stds", bn_stds, "Weight init stds, one panel each")->capture_default_str();
  auto* overfit = add("overfit", "Few samples, deep net: no regularization vs weight decay vs Dropout");
  overfit->add_option("--epochs", of_epochs, "Epochs per setting")->check(cli::Range(1, 100000))->capture_default_str();
  overfit->add_option("--samples", of_samples, "Training samples")->check(cli::Range(1, 60000))->capture_default_str();
  overfit->add_option("--lambda", of_lambda, "Weight decay lambda")->check(cli::PositiveNumber)->capture_default_str();
  overfit->add_option("--dropout", of_dropout, "Dropout ratio")->check(cli::Range(0.01, 0.99))->capture_default_str();
  auto* hyperparams = add("hyperparams", "Random search of lr and weight decay on a validation split");
  hyperparams->add_option("--trials", hp_trials, "Random (lr, decay) pairs")->check(cli::Range(1, 10000))->capture_default_str();
  hyperparams->add_option("--epochs", hp_epochs, "Epochs per trial")->check(cli::Range(1, 100000))->capture_default_str();
  hyperparams->add_option("--samples", hp_samples, "Samples, 20% of them for validation")
      ->check(cli::Range(10, 60000))->capture_default_str();
  hyperparams->add_option("--show", hp_show, "Best runs to plot")->check(cli::Range(1, 20))->capture_default_str();
  for (std::size_t i = 0; i < subs.size(); ++i) common(i);
  ZG_CLI_PARSE(app, argc, argv);

  try {
    for (const auto& [sub, c] : subs) {
      if (!sub->parsed()) continue;
      fs::create_directories(c.out);
      if (sub == optimizers) run_optimizers(c, opt_iterations);
      if (sub == init) {
        init_loss_curves(c, init_iterations);
        init_histograms(c);
      }
      if (sub == batchnorm) run_batchnorm(c, bn_epochs, bn_samples, bn_stds);
      if (sub == overfit) run_overfit(c, of_epochs, of_samples, of_lambda, of_dropout);
      if (sub == hyperparams) run_hyperparams(c, hp_trials, hp_epochs, hp_samples, hp_show);
    }
  } catch (const std::exception& e) {
    std::cerr << "ch6_techniques: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
