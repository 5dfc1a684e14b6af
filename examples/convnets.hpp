#pragma once
// What the chapter 7 and 8 examples share: their options, the training run
// (Adam lr 0.001, batch 100, as the book's train_convnet.py and
// train_deepnet.py) with metrics and plots, and grey-scale image grids drawn
// with gnuplot (filters, test images).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"

#include "training.hpp"

namespace zg::convnets {

namespace fs = std::filesystem;
namespace ex = zg::examples;

struct Options {
  int epochs = 1;
  std::size_t limit = 0;
  std::string out, data = nn::data::default_data_dir(), save;
  std::uint64_t seed = 1;
  int threads = 0;
};

inline void add_options(cli::App& app, Options& o) {
  app.add_option("--epochs", o.epochs, "Passes over the training images")->check(cli::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--limit", o.limit, "Train on the first N training images only (0: all 60000)")
      ->capture_default_str();
  app.add_option("--out", o.out, "Directory for metrics.csv and the PNGs")->capture_default_str();
  app.add_option("--data", o.data, "Directory with the Fashion-MNIST (or MNIST) IDX files")->capture_default_str();
  app.add_option("--seed", o.seed, "Seed for the initial weights, the shuffling and dropout")->capture_default_str();
  app.add_option("--threads", o.threads, "Threads for BLAS and zerograd's kernels (0: one per core)")
      ->check(cli::Range(0, 256))->capture_default_str();
  app.add_option("--save", o.save, "Write a checkpoint (.npz: model and optimizer) after training");
}

struct Data {
  nn::data::TensorDataset train, test;
};

inline Data load(const Options& o) {
  std::cout << "loading " << o.data << " ..." << std::flush;
  Data d{nn::data::load_idx_dataset(o.data, true), nn::data::load_idx_dataset(o.data, false)};
  if (o.limit > 0) d.train = d.train.head(o.limit);
  std::cout << " " << d.train.size() << " training and " << d.test.size() << " test images\n";
  return d;
}

// Trains model with Adam (lr 0.001, batch 100) for o.epochs, printing the
// test accuracy after each epoch; writes metrics.csv, loss.png and
// accuracy.png to o.out and the checkpoint to o.save. Returns the final
// evaluation on the test set.
inline ex::Evaluation fit(nn::Module& model, const Data& d, const Options& o, const std::string& title) {
  optim::Adam adam(model.parameters(), 0.001f);
  nn::data::DataLoader loader(d.train, {100, true, false, false});
  const fs::path dir(o.out);
  ex::MetricsCsv csv((dir / "metrics.csv").string(),
                     {"epoch", "train_loss", "test_loss", "test_accuracy", "seconds", "ms_per_iteration"});
  ex::Series batch_loss{"train loss (per batch, smoothed)", {}}, test_loss{"test loss", {}},
      test_acc{"test accuracy", {}};
  ex::Evaluation eval = ex::evaluate(model, d.test, false);
  std::cout << std::fixed << std::setprecision(4) << "before training: test loss " << eval.loss
            << ", test accuracy " << eval.accuracy << "\n";
  test_loss.points.emplace_back(0, eval.loss);
  test_acc.points.emplace_back(0, eval.accuracy);
  const double per_epoch = double(loader.batches_per_epoch());
  double smoothed = -1, total = 0;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<double> losses;
    const double loss = ex::train_epoch(model, loader, [&] {
      adam.step();
      adam.zero_grad();
    }, "epoch " + std::to_string(epoch) + "/" + std::to_string(o.epochs), {}, &losses).mean_loss;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total += seconds;
    for (std::size_t i = 0; i < losses.size(); ++i) {
      smoothed = smoothed < 0 ? losses[i] : 0.98 * smoothed + 0.02 * losses[i];
      batch_loss.points.emplace_back(epoch - 1 + double(i + 1) / per_epoch, smoothed);
    }
    eval = ex::evaluate(model, d.test, false);
    const double ms = 1000 * seconds / per_epoch;
    std::cout << "epoch " << epoch << ": train loss " << loss << ", test loss " << eval.loss << ", test accuracy "
              << eval.accuracy << " (" << ex::format_seconds(seconds) << " training, " << std::setprecision(1)
              << ms << " ms per iteration)\n" << std::setprecision(4);
    csv.add({double(epoch), loss, eval.loss, eval.accuracy, seconds, ms});
    test_loss.points.emplace_back(epoch, eval.loss);
    test_acc.points.emplace_back(epoch, eval.accuracy);
  }
  std::cout << "final test accuracy " << eval.accuracy << " after " << o.epochs << " epochs, "
            << ex::format_seconds(total) << " of training\nmetrics: " << csv.path() << "\n";
  const std::string loss_png = (dir / "loss.png").string(), acc_png = (dir / "accuracy.png").string();
  ex::report_plot(ex::plot_lines(loss_png, {batch_loss, test_loss},
                                 {title + ": loss", "epoch", "cross-entropy", false, false, 0, double(o.epochs)}),
                  loss_png);
  ex::report_plot(ex::plot_lines(acc_png, {test_acc},
                                 {title + ": test accuracy", "epoch", "accuracy", false, true, 0, double(o.epochs)}),
                  acc_png);
  if (!o.save.empty()) {
    nn::save_checkpoint(o.save, model, adam.state_dict());
    std::cout << "checkpoint: " << o.save << "\n";
  }
  return eval;
}

// A grey-scale picture (H, W) with values in [0, 1] (0 black, 1 white).
struct Tile {
  Tensor<float> pixels;
  std::string caption;
};
// Tiles in rows of `columns`, under a title.
struct Panel {
  std::string title;
  std::vector<Tile> tiles;
  std::size_t columns;
};

inline std::string gnuplot_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Draws the panels side by side into a PNG of width x height pixels, each
// tile as an image with its caption below it. The data and script go beside
// the PNG. False when gnuplot is missing or fails.
inline bool plot_tiles(const std::string& png, const std::vector<Panel>& panels, int width, int height) {
  const std::string base = png.substr(0, png.size() - 4);
  std::ostringstream data, gp;
  gp << "set terminal pngcairo size " << width << "," << height << " font 'sans,9'\nset output "
     << gnuplot_quote(png) << "\nset palette grey\nset cbrange [0:1]\nunset colorbox\nunset key\nunset border\n"
     << "unset tics\nset size ratio -1\nset multiplot layout 1," << panels.size() << "\n";
  std::size_t block = 0;
  for (const Panel& p : panels) {
    const std::size_t h = p.tiles.at(0).pixels.shape(0), w = p.tiles.at(0).pixels.shape(1);
    const std::size_t rows = (p.tiles.size() + p.columns - 1) / p.columns, gap = std::max<std::size_t>(1, w / 5);
    const bool captions = !p.tiles[0].caption.empty();
    const double cell_w = double(w + gap), cell_h = double(h + gap) + (captions ? 0.35 * double(h) : 0.0);
    gp << "set title " << gnuplot_quote(p.title) << "\nset xrange [-1:" << double(p.columns) * cell_w - gap
       << "]\nset yrange [" << -double(rows) * cell_h << ":1]\n";
    for (std::size_t k = 0; k < p.tiles.size(); ++k) {
      const double x0 = double(k % p.columns) * cell_w, y0 = -double(k / p.columns) * cell_h;
      for (std::size_t r = 0; r < h; ++r) {
        for (std::size_t c = 0; c < w; ++c)
          data << x0 + double(c) << " " << y0 - double(r) << " " << p.tiles[k].pixels(r, c) << "\n";
        data << "\n";
      }
      data << "\n";
      if (captions)
        gp << "set label " << k + 1 << " " << gnuplot_quote(p.tiles[k].caption) << " at " << x0 + double(w) / 2
           << "," << y0 - double(h) - 0.1 * double(h) << " center\n";
    }
    gp << "plot for [k=" << block << ":" << block + p.tiles.size() - 1 << "] " << gnuplot_quote(base + ".dat")
       << " index k with image\nunset label\n";
    block += p.tiles.size();
  }
  gp << "unset multiplot\n";
  write_text_file(base + ".dat", data.str());
  write_text_file(base + ".gp", gp.str());
  return ex::run_gnuplot(base + ".gp");
}

}  // namespace zg::convnets
