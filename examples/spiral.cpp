// The spiral data set (three arms of noisy points, not linearly separable)
// classified by a small MLP, as in volume 3 of the book (DeZero's step 48):
// the training curve and the decision regions the net learned.
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"

#include "training.hpp"

namespace {

namespace fs = std::filesystem;
namespace ex = zg::examples;
namespace data = zg::nn::data;

// A gnuplot single-quoted string: only ' needs escaping, as ''.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// The class the model picks at each point of a size x size grid over
// [-lim, lim]^2, as "x y class" rows in blocks for gnuplot's image plot.
std::string decision_grid(zg::nn::Module& model, std::size_t size, float lim) {
  zg::Tensor<float> pts = zg::Tensor<float>::from_shape({size * size, 2});
  for (std::size_t i = 0; i < size; ++i)
    for (std::size_t j = 0; j < size; ++j) {
      pts(i * size + j, 0) = -lim + 2 * lim * float(j) / float(size - 1);
      pts(i * size + j, 1) = -lim + 2 * lim * float(i) / float(size - 1);
    }
  model.eval();
  zg::NoGradGuard no_grad;
  const auto cls = zg::argmax_indices(model(zg::Variable(pts)), 1);
  std::ostringstream out;
  for (std::size_t i = 0; i < size; ++i) {
    for (std::size_t j = 0; j < size; ++j)
      out << pts(i * size + j, 0) << " " << pts(i * size + j, 1) << " " << cls(i * size + j) << "\n";
    out << "\n";
  }
  return out.str();
}

std::string regions_script(const fs::path& dir, const fs::path& png, const std::string& title, float lim) {
  const char* light[] = {"#fbd3d3", "#cfe8cf", "#cfdcf7"};
  const char* dark[] = {"#c62828", "#2e7d32", "#1e50b4"};
  std::ostringstream s;
  s << "set terminal pngcairo size 820,760 font 'sans,11'\nset output " << quoted(png.string()) << "\n"
    << "set title " << quoted(title) << "\nset xlabel 'x1'\nset ylabel 'x2'\nset size ratio -1\n"
    << "set xrange [" << -lim << ":" << lim << "]\nset yrange [" << -lim << ":" << lim << "]\n"
    << "set palette defined (0 '" << light[0] << "', 1 '" << light[1] << "', 2 '" << light[2] << "')\n"
    << "set cbrange [0:2]\nunset colorbox\nset key top left opaque box\n"
    << "plot " << quoted((dir / "regions.dat").string()) << " using 1:2:3 with image notitle";
  const std::string pts = quoted((dir / "points.dat").string());
  for (int c = 0; c < 3; ++c)
    s << ", \\\n  " << pts << " using 1:($3 == " << c << " ? $2 : 1/0) with points pt 7 ps 0.9 lc rgb '" << dark[c]
      << "' title 'class " << c << "'";
  s << "\n";
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{
      "The spiral data set (3 noisy arms, seeded) classified by a small MLP (2 - hidden - 3), as in\n"
      "volume 3 of Deep Learning from Scratch (DeZero, step 48: 2-10-3 sigmoid, SGD lr 1, batch 30,\n"
      "300 epochs). Shows a progress bar and prints the final training accuracy (about 0.96 by\n"
      "default); writes DIR/metrics.csv (loss and accuracy per epoch), DIR/training.png and\n"
      "DIR/regions.png (the class the net picks everywhere in the plane, with the points on top).\n"
      "Takes under a second."};
  std::string out_dir = "out/spiral", activation = "sigmoid", optimizer = "sgd";
  std::size_t per_class = 100, hidden = 10, epochs = 300, batch = 30, grid = 300;
  float lr = 1.0f;
  std::uint64_t seed = 0;
  app.add_option("--out", out_dir, "Directory for the CSV, the plot data and the PNGs")->capture_default_str();
  app.add_option("--seed", seed, "Seed for the data set, the initial weights and the shuffling")
      ->capture_default_str();
  app.add_option("--points", per_class, "Points per class")->check(cli::Range(1, 100000))->capture_default_str();
  app.add_option("--hidden", hidden, "Hidden units")->check(cli::Range(1, 10000))->capture_default_str();
  app.add_option("--activation", activation, "Hidden activation")
      ->check(cli::IsMember({"sigmoid", "relu", "tanh"}))->capture_default_str();
  app.add_option("--optimizer", optimizer, "sgd or adam")->check(cli::IsMember({"sgd", "adam"}))
      ->capture_default_str();
  app.add_option("--lr", lr, "Learning rate (try 0.01 with adam)")->capture_default_str();
  app.add_option("--epochs", epochs, "Passes over the data")->check(cli::Range(1, 1000000))->capture_default_str();
  app.add_option("--batch", batch, "Points per batch")->check(cli::Range(1, 1000000))->capture_default_str();
  app.add_option("--grid", grid, "Grid points per side of the decision-region image")
      ->check(cli::Range(2, 2000))->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  try {
    const fs::path dir = fs::absolute(out_dir);
    fs::create_directories(dir);
    const data::TensorDataset train = data::spiral(per_class, 3, seed);
    zg::manual_seed(seed);
    zg::nn::MLPOptions mlp;
    mlp.activation = activation;
    mlp.init = activation == "relu" ? zg::nn::Init::he() : zg::nn::Init::xavier();
    zg::nn::MLP model(2, {hidden}, 3, mlp);
    std::unique_ptr<zg::optim::Optimizer> opt;
    if (optimizer == "adam") opt = std::make_unique<zg::optim::Adam>(model.parameters(), lr);
    else opt = std::make_unique<zg::optim::SGD>(model.parameters(), lr);
    data::DataLoader loader(train, {batch, true, false, false});
    std::cout << "spiral: " << train.size() << " points, 3 classes; MLP 2-" << hidden << "-3 (" << activation
              << "), " << optimizer << " lr " << lr << ", batch " << batch << ", " << epochs << " epochs\n";

    ex::MetricsCsv csv((dir / "metrics.csv").string(), {"epoch", "train_loss", "accuracy"});
    ex::Series loss_curve{"training loss (mean over the epoch)", {}}, acc_curve{"accuracy on all points", {}};
    ex::ProgressBar bar("training", epochs);
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
      model.train();
      loader.reset();
      data::DataLoader::Batch b;
      double sum = 0;
      std::size_t n = 0;
      while (loader.next(b)) {
        const zg::Variable loss = zg::nn::functional::softmax_cross_entropy(model(b.x), b.t);
        opt->zero_grad();
        loss.backward();
        opt->step();
        sum += loss.item();
        ++n;
      }
      const double acc = ex::evaluate(model, train, false).accuracy;
      csv.add({double(epoch), sum / double(n), acc});
      loss_curve.points.emplace_back(double(epoch), sum / double(n));
      acc_curve.points.emplace_back(double(epoch), acc);
      bar.update(epoch, sum / double(n));
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double final_acc = acc_curve.points.back().second;
    std::ostringstream summary;
    summary << "final loss " << std::fixed << std::setprecision(4) << loss_curve.points.back().second;
    bar.finish(summary.str());
    std::cout << "final training accuracy " << std::fixed << std::setprecision(4) << final_acc << " ("
              << ex::format_seconds(seconds) << ")\nmetrics: " << csv.path() << "\n";

    std::ostringstream net;
    net << "2-" << hidden << "-3 " << activation << " MLP, " << optimizer << " lr " << lr;
    const std::string training_png = (dir / "training.png").string();
    const ex::PlotOptions look{"Spiral: training of a " + net.str(), "epoch", "loss / accuracy", false, false};
    ex::report_plot(ex::plot_lines(training_png, {loss_curve, acc_curve}, look), training_png);

    const float lim = 1.2f;
    zg::write_text_file((dir / "regions.dat").string(), decision_grid(model, grid, lim));
    std::ostringstream pts;
    for (std::size_t i = 0; i < train.size(); ++i)
      pts << train.images(i, 0) << " " << train.images(i, 1) << " " << train.labels(i) << "\n";
    zg::write_text_file((dir / "points.dat").string(), pts.str());
    std::ostringstream title;
    title << "Spiral: decision regions of a " << net.str() << " (training accuracy " << std::fixed
          << std::setprecision(3) << final_acc << ")";
    const fs::path gp = dir / "regions.gp", png = dir / "regions.png";
    zg::write_text_file(gp.string(), regions_script(dir, png, title.str(), lim));
    ex::report_plot(ex::run_gnuplot(gp.string()), png.string());
  } catch (const std::exception& e) {
    std::cerr << "spiral: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
