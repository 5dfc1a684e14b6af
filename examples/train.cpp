// Trains one of the book's networks on Fashion-MNIST (or any IDX data set):
// a progress bar per epoch, metrics as CSV, curves as PNG, checkpoints.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>

#include "training.hpp"

namespace fs = std::filesystem;
using namespace zg;

namespace {

struct Config {
  std::string model = "two-layer";
  std::vector<std::size_t> hidden = {100, 100};
  std::string optimizer = "sgd";
  double lr = -1;  // < 0: the default for the optimizer and model
  double weight_decay = 0;
  int epochs = 1;
  std::size_t batch = 100;
  std::uint64_t seed = 1;
  int threads = 0;
  std::string data = nn::data::default_data_dir();
  std::string out = "out/train";
  std::string save, resume;
  std::size_t limit = 0;
};

bool is_cnn(const std::string& model) { return model == "simple-cnn" || model == "deep-cnn"; }

std::shared_ptr<nn::Module> make_model(const Config& c) {
  if (c.model == "two-layer") return nn::models::two_layer_net();
  if (c.model == "mlp") return std::make_shared<nn::MLP>(784, c.hidden, 10);
  if (c.model == "simple-cnn") return nn::models::simple_conv_net();
  if (c.model == "deep-cnn") return nn::models::deep_conv_net();
  throw CLI::ValidationError("--model", "unknown model '" + c.model + "'");
}

double default_lr(const Config& c) {
  if (c.optimizer == "sgd") return c.model == "two-layer" || c.model == "mlp" ? 0.1 : 0.01;
  if (c.optimizer == "adam" || c.optimizer == "adamw") return 0.001;
  return 0.01;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const Config& c, const std::vector<Variable>& params) {
  const float lr = static_cast<float>(c.lr > 0 ? c.lr : default_lr(c));
  std::unique_ptr<optim::Optimizer> o;
  if (c.optimizer == "sgd") o = std::make_unique<optim::SGD>(params, lr);
  else if (c.optimizer == "momentum") o = std::make_unique<optim::Momentum>(params, lr);
  else if (c.optimizer == "nesterov") o = std::make_unique<optim::Nesterov>(params, lr);
  else if (c.optimizer == "adagrad") o = std::make_unique<optim::AdaGrad>(params, lr);
  else if (c.optimizer == "rmsprop") o = std::make_unique<optim::RMSprop>(params, lr);
  else if (c.optimizer == "adam") o = std::make_unique<optim::Adam>(params, lr);
  else if (c.optimizer == "adamw") o = std::make_unique<optim::AdamW>(params, lr);
  if (c.weight_decay > 0 && c.optimizer != "adamw") o->set_weight_decay(static_cast<float>(c.weight_decay));
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app{"Train one of the book's networks on Fashion-MNIST (or any IDX data set such as MNIST).\n"
               "Shows a progress bar per epoch, evaluates on the whole test set in eval mode, writes\n"
               "metrics.csv and loss/accuracy PNGs to --out, and can save and resume checkpoints (.npz)."};
  app.add_option("--model", c.model, "two-layer (784-50-10, the book's TwoLayerNet), mlp (--hidden),\n"
                                     "simple-cnn (SimpleConvNet) or deep-cnn (DeepConvNet)")
      ->check(CLI::IsMember({"two-layer", "mlp", "simple-cnn", "deep-cnn"}))->capture_default_str();
  app.add_option("--hidden", c.hidden, "Hidden layer sizes for --model mlp")->delimiter(',')->capture_default_str();
  app.add_option("--optimizer", c.optimizer, "sgd, momentum, nesterov, adagrad, rmsprop, adam or adamw")
      ->check(CLI::IsMember({"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}))
      ->capture_default_str();
  app.add_option("--lr", c.lr, "Learning rate (default: 0.1 for SGD on MLPs, 0.01 for SGD on CNNs,\n"
                               "0.001 for Adam/AdamW, 0.01 otherwise)")->check(CLI::PositiveNumber);
  app.add_option("--weight-decay", c.weight_decay, "The book's weight decay lambda (weights only)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--epochs", c.epochs, "Epochs to train")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--batch-size", c.batch, "Mini-batch size")->check(CLI::Range(1, 60000))->capture_default_str();
  app.add_option("--seed", c.seed, "Seed of the one random generator (init, shuffling, dropout)")->capture_default_str();
  app.add_option("--threads", c.threads, "Threads for BLAS and zerograd's kernels (0: one per core)")
      ->check(CLI::Range(0, 256))->capture_default_str();
  app.add_option("--data", c.data, "Directory with train-/t10k- images and labels in IDX format (.gz or not)")
      ->capture_default_str();
  app.add_option("--out", c.out, "Directory for metrics.csv, loss.png and accuracy.png")->capture_default_str();
  app.add_option("--save", c.save, "Write a checkpoint (.npz: model, optimizer, epoch) after each epoch");
  app.add_option("--resume", c.resume, "Continue from a checkpoint written by --save (with --lr: a new learning rate)")
      ->check(CLI::ExistingFile);
  app.add_option("--limit", c.limit, "Use only the first N training images (quick runs)");
  CLI11_PARSE(app, argc, argv);

  try {
    zg::set_num_threads(c.threads);
    zg::manual_seed(c.seed);
    fs::create_directories(c.out);
    std::cout << "loading " << c.data << " ..." << std::flush;
    nn::data::Dataset train = nn::data::load_idx_dataset(c.data, true);
    nn::data::Dataset test = nn::data::load_idx_dataset(c.data, false);
    if (c.limit > 0) train = train.head(c.limit);
    std::cout << " " << train.size() << " training and " << test.size() << " test images\n";

    auto model = make_model(c);
    auto optimizer = make_optimizer(c, model->parameters());
    std::cout << model->summary() << "optimizer: " << optimizer->name() << ", lr " << optimizer->lr()
              << ", batch " << c.batch << ", threads " << zg::num_threads() << "\n";

    int start_epoch = 0;
    if (!c.resume.empty()) {
      nn::load_checkpoint(c.resume, *model, [&](const nn::NamedArrays& rest) {
        nn::NamedArrays opt;
        for (const auto& [name, a] : rest) {
          if (name == "train.epoch") start_epoch = static_cast<int>(optim::decode_count(a, name));
          else opt.emplace_back(name, a);
        }
        optimizer->load_state_dict(opt);
      });
      if (c.lr > 0) optimizer->set_lr(static_cast<float>(c.lr));  // an explicit --lr wins over the saved one
      std::cout << "resumed from " << c.resume << " after epoch " << start_epoch << ", lr " << optimizer->lr()
                << "\n";
    }

    const bool flatten = !is_cnn(c.model);
    nn::data::DataLoader loader(train, {c.batch, true, false, flatten});
    examples::MetricsCsv csv((fs::path(c.out) / "metrics.csv").string(),
                             {"epoch", "train_loss", "test_loss", "test_accuracy", "seconds"});
    examples::Series train_loss{"train loss (per batch, smoothed)", {}}, test_loss{"test loss", {}},
        test_acc{"test accuracy", {}};
    const double per_epoch = double(loader.batches_per_epoch());
    {
      const auto before = examples::evaluate(*model, test, flatten);
      std::cout << "before training: test loss " << std::fixed << std::setprecision(4) << before.loss
                << ", test accuracy " << before.accuracy << "\n";
      test_loss.points.emplace_back(start_epoch, before.loss);
      test_acc.points.emplace_back(start_epoch, before.accuracy);
    }
    double smoothed = -1;
    for (int epoch = start_epoch + 1; epoch <= start_epoch + c.epochs; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      std::ostringstream label;
      label << "epoch " << epoch << "/" << start_epoch + c.epochs;
      std::vector<double> losses;
      const double loss = examples::train_epoch(*model, loader, [&] {
        optimizer->step();
        optimizer->zero_grad();
      }, label.str(), &losses);
      for (std::size_t i = 0; i < losses.size(); ++i) {
        smoothed = smoothed < 0 ? losses[i] : 0.98 * smoothed + 0.02 * losses[i];
        train_loss.points.emplace_back(epoch - 1 + double(i + 1) / per_epoch, smoothed);
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const auto eval = examples::evaluate(*model, test, flatten);
      std::cout << "epoch " << epoch << ": train loss " << std::fixed << std::setprecision(4) << loss
                << ", test loss " << eval.loss << ", test accuracy " << eval.accuracy << " ("
                << examples::format_seconds(seconds) << " training)\n";
      csv.add({double(epoch), loss, eval.loss, eval.accuracy, seconds});
      test_loss.points.emplace_back(epoch, eval.loss);
      test_acc.points.emplace_back(epoch, eval.accuracy);
      if (!c.save.empty()) {
        auto extra = optimizer->state_dict();
        extra.emplace_back("train.epoch", optim::encode_count(epoch));
        nn::save_checkpoint(c.save, *model, extra);
      }
    }
    std::cout << "metrics: " << csv.path() << "\n";
    const std::string title = c.model + ", " + optimizer->name();
    examples::report_plot(examples::plot_lines((fs::path(c.out) / "loss.png").string(), {train_loss, test_loss},
                                               {title + ": loss", "epoch", "cross-entropy", false, false, double(start_epoch), double(start_epoch + c.epochs)}),
                          (fs::path(c.out) / "loss.png").string());
    examples::report_plot(examples::plot_lines((fs::path(c.out) / "accuracy.png").string(), {test_acc},
                                               {title + ": test accuracy", "epoch", "accuracy", false, true, double(start_epoch), double(start_epoch + c.epochs)}),
                          (fs::path(c.out) / "accuracy.png").string());
    if (!c.save.empty()) std::cout << "checkpoint: " << c.save << "\n";
  } catch (const std::exception& e) {
    std::cerr << "train: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
