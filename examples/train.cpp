// Trains one of the book's networks on Fashion-MNIST (or any IDX data set, or
// arrays saved with numpy):
// a progress bar per epoch, metrics as CSV, curves as PNG, checkpoints.
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "cli.hpp"

#include "train_distributed.hpp"
#include "training.hpp"
#ifdef ZEROGRAD_WITH_ONNX
#include "zerograd/onnx.hpp"
#endif

namespace fs = std::filesystem;
using namespace zg;

namespace {

// The data order as (n, 2) floats, index / 2^16 and index % 2^16: both
// exact in a float for any data set up to 2^40 samples.
Tensor<float> encode_order(const std::vector<std::size_t>& order) {
  Tensor<float> t = Tensor<float>::from_shape({order.size(), 2});
  for (std::size_t i = 0; i < order.size(); ++i) {
    t(i, 0) = static_cast<float>(order[i] >> 16);
    t(i, 1) = static_cast<float>(order[i] & 0xffff);
  }
  return t;
}

// The inverse, refusing anything that is not n whole indices below n (a
// damaged or foreign checkpoint), before converting a float to an integer.
std::vector<std::size_t> decode_order(const Tensor<float>& t, std::size_t n) {
  if (t.dimension() != 2 || t.shape()[0] != n || t.shape()[1] != 2)
    throw ValueError("train.order: expected shape (" + std::to_string(n) + ", 2) for " + std::to_string(n) +
                     " training samples, got " + shape_str(Shape(t.shape().begin(), t.shape().end())));
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float hi = t(i, 0), lo = t(i, 1);
    if (!(hi >= 0 && hi < 16777216.f && lo >= 0 && lo < 65536.f) || hi != std::floor(hi) || lo != std::floor(lo))
      throw ValueError("train.order: entry " + std::to_string(i) + " is not an index (" + std::to_string(hi) + ", " +
                       std::to_string(lo) + ")");
    order[i] = (static_cast<std::size_t>(hi) << 16) | static_cast<std::size_t>(lo);
  }
  return order;  // DataLoader::restore checks it is a permutation of 0..n-1
}

// Bytes of a module's parameters and buffers.
std::uint64_t model_bytes(const nn::Module& m) {
  std::uint64_t bytes = 0;
  for (const auto& [name, a] : m.state()) bytes += a.size() * sizeof(float);
  return bytes;
}

struct Config {
  std::string model = "two-layer";
  std::vector<std::size_t> hidden = {100, 100};
  std::string optimizer;  // empty: what the book trains the model with
  double lr = -1;  // < 0: the default for the optimizer and model
  double weight_decay = 0;
  int epochs = 1;
  std::size_t batch = 100;
  std::uint64_t seed = 1;
  int threads = 0;
  std::string data = nn::data::default_data_dir();
  std::string out = "out/train";
  std::string save, resume;
  std::string export_onnx;
  std::size_t limit = 0;
  bool allow_nonfinite = false;
  std::size_t stop_after = 0;
  bool distributed = false;
};

// --export-onnx: the trained model as an ONNX model at path and, beside it
// (path + ".samples.json"), the first ten test images with zerograd's outputs
// for them, which examples/onnx_predict.js compares ONNX Runtime's with.
void export_onnx(nn::Module& model, const nn::data::TensorDataset& test, bool flatten, const std::string& path) {
#ifdef ZEROGRAD_WITH_ONNX
  const nn::data::TensorDataset first = test.head(10);
  nn::data::DataLoader loader(first, {10, false, false, flatten});
  nn::data::DataLoader::Batch b;
  loader.next(b);
  onnx::export_model(model, b.x, path);
  Variable y;
  {
    nn::EvalModeGuard eval_mode;
    NoGradGuard no_grad;
    y = model(b.x);
  }
  std::ostringstream json;
  json << std::setprecision(9) << "{\"input_shape\": [";
  for (std::size_t d = 0; d < b.x.ndim(); ++d) json << (d ? ", " : "") << b.x.shape()[d];
  const auto numbers = [&json](const Tensor<float>& t) {
    for (std::size_t i = 0; i < t.size(); ++i) json << (i ? ", " : "") << t.data()[i];
  };
  json << "],\n \"labels\": [";
  numbers(b.t.data());
  json << "],\n \"zerograd_output\": [";
  numbers(y.data());
  json << "],\n \"input\": [";
  numbers(b.x.data());
  json << "]}\n";
  write_text_file(path + ".samples.json", json.str());
  std::cout << "onnx: " << path << " (opset " << onnx::kOpset << ", input \"input\" " << shape_str(b.x.shape())
            << " with any batch size); ten test images and zerograd's outputs: " << path << ".samples.json\n";
#else
  (void)model, (void)test, (void)flatten, (void)path;
  throw ValueError("--export-onnx: this train was built without ONNX (install libonnx-dev and rebuild)");
#endif
}

using examples::install_stop_handlers;  // Ctrl-C and SIGTERM stop after the current step
using examples::stop_signal;

// What every rank agrees to stop on (--distributed), the largest signal
// any rank saw by the end of the step.
std::atomic<int> agreed_stop{0};

std::string rank_prefix(const examples::DataParallel* parallel) {
  return parallel ? "rank " + std::to_string(parallel->rank()) + ": " : std::string();
}

// --data: a directory of IDX files, or an .npz in the layout of Keras's
// mnist.npz (x_train, y_train, x_test, y_test), e.g. written by
// np.savez("data.npz", x_train=..., ...). The networks take 28x28 images:
// x is (N, 28, 28), (N, 1, 28, 28) or (N, 784), bytes (scaled to [0, 1])
// or floats.
nn::data::TensorDataset load_split(const std::string& data, bool train) {
  if (fs::path(data).extension() != ".npz") return nn::data::load_idx_dataset(data, train);
  const std::string x = train ? "x_train" : "x_test";
  nn::data::TensorDataset d = nn::data::load_npz_dataset(data, x, train ? "y_train" : "y_test");
  const std::size_t n = d.size();
  if (d.images.size() != n * 784)
    throw ValueError("--data: '" + data + "' holds " + x + " of shape " + shape_str(d.images.shape()) +
                     "; the networks take 28x28 images: (N, 28, 28), (N, 1, 28, 28) or (N, 784)");
  d.images.reshape({n, 1, 28, 28});
  d.classes = std::max<std::size_t>(d.classes, 10);
  return d;
}

bool is_cnn(const std::string& model) { return model == "simple-cnn" || model == "deep-cnn"; }

std::shared_ptr<nn::Module> make_model(const Config& c) {
  if (c.model == "two-layer") return nn::models::two_layer_net();
  if (c.model == "mlp") return std::make_shared<nn::MLP>(784, c.hidden, 10);
  if (c.model == "simple-cnn") return nn::models::simple_conv_net();
  if (c.model == "deep-cnn") return nn::models::deep_conv_net();
  throw ValueError("--model: unknown model '" + c.model + "'");
}

// The book trains TwoLayerNet with SGD (lr 0.1) and SimpleConvNet and
// DeepConvNet with Adam (lr 0.001).
std::string default_optimizer(const std::string& model) { return is_cnn(model) ? "adam" : "sgd"; }

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
  cli::App app{"Train one of the book's networks on Fashion-MNIST (or any IDX data set such as MNIST,\n"
               "or numpy arrays in an .npz: --data).\n"
               "Shows a progress bar per epoch, evaluates on the whole test set in eval mode, writes\n"
               "metrics.csv and loss/accuracy PNGs to --out, and can save and resume checkpoints (.npz)."};
  app.add_option("--model", c.model, "two-layer (784-50-10, the book's TwoLayerNet), mlp (--hidden),\n"
                                     "simple-cnn (SimpleConvNet) or deep-cnn (DeepConvNet)")
      ->check(cli::IsMember({"two-layer", "mlp", "simple-cnn", "deep-cnn"}))->capture_default_str();
  app.add_option("--hidden", c.hidden, "Hidden layer sizes for --model mlp")->delimiter(',')->capture_default_str();
  app.add_option("--optimizer", c.optimizer, "sgd, momentum, nesterov, adagrad, rmsprop, adam or adamw\n"
                                             "(default: what the book uses: sgd for two-layer and mlp, adam for the CNNs)")
      ->check(cli::IsMember({"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}));
  app.add_option("--lr", c.lr, "Learning rate (default: 0.1 for SGD on MLPs, 0.01 for SGD on CNNs,\n"
                               "0.001 for Adam/AdamW, 0.01 otherwise)")->check(cli::PositiveNumber);
  app.add_flag("--allow-nonfinite", c.allow_nonfinite,
               "Train on when the loss is NaN or infinite (by default the run stops with an error;\n"
               "a checkpoint is never written from non-finite parameters either way)");
  app.add_option("--weight-decay", c.weight_decay, "The book's weight decay lambda (weights only)")
      ->check(cli::NonNegativeNumber)->capture_default_str();
  app.add_option("--epochs", c.epochs, "Epochs to train")->check(cli::Range(1, 1000))->capture_default_str();
  app.add_option("--batch-size", c.batch, "Mini-batch size (with --distributed: the global batch, split evenly)")->check(cli::Range(1, 60000))->capture_default_str();
  app.add_option("--seed", c.seed, "Seed of the one random generator (init, shuffling, dropout)")->capture_default_str();
  app.add_option("--threads", c.threads, "Threads for BLAS and zerograd's kernels (0: one per core)")
      ->check(cli::Range(0, 256))->capture_default_str();
  app.add_option("--data", c.data, "Directory with train-/t10k- images and labels in IDX format (.gz or not),\n"
                                   "or an .npz with x_train, y_train, x_test, y_test as Keras's mnist.npz holds\n"
                                   "them (np.savez): x (N, 28, 28), (N, 1, 28, 28) or (N, 784), bytes or floats;\n"
                                   "y (N) class indices")
      ->capture_default_str();
  app.add_option("--out", c.out, "Directory for metrics.csv, loss.png and accuracy.png")->capture_default_str();
  app.add_option("--save", c.save, "Write a checkpoint (.npz: model, optimizer, epoch, random generator, data order)\n"
                                   "after each epoch and when stopped by Ctrl-C or SIGTERM");
  app.add_option("--resume", c.resume, "Continue from a checkpoint written by --save exactly where it stopped, for\n"
                                       "--epochs more epochs (with --lr: a new learning rate); metrics.csv is appended to")
      ->check(cli::ExistingFile);
  app.add_option("--export-onnx", c.export_onnx, "After training, write the model as ONNX (opset 17, any batch size)\n"
                                                 "to this path, for ONNX Runtime (examples/onnx_predict.js)");
  app.add_option("--limit", c.limit, "Use only the first N training images (quick runs)");
  app.add_flag("--distributed", c.distributed,
               "Data-parallel over the processes mpirun started (mpirun -np N train --distributed ...):\n"
               "each trains on its share of every --batch-size batch, gradients are averaged; rank 0\n"
               "writes the checkpoint, metrics, plots and progress. Threads default to cores / processes");
  app.add_option("--stop-after", c.stop_after, "Raise SIGINT after this many steps (to test stopping and resuming)")
      ->group("");  // hidden from --help
  ZG_CLI_PARSE(app, argc, argv);

  if (c.optimizer.empty()) c.optimizer = default_optimizer(c.model);
  install_stop_handlers();
  std::unique_ptr<examples::DataParallel> parallel;
  try {
    if (c.distributed) parallel = std::make_unique<examples::DataParallel>();
  } catch (const std::exception& e) {
    std::cerr << "train: " << e.what() << "\n";
    return 1;
  }
  if (!parallel) {
    const char* n = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (n && std::atoi(n) > 1)
      std::cerr << "train: warning: mpirun started " << n << " processes but --distributed is not set: each trains "
                << "alone, on all the data, writing the same files\n";
  }
  const bool main_rank = !parallel || parallel->is_main();
  if (parallel && c.batch % std::size_t(parallel->size()) != 0) {
    if (main_rank)
      std::cerr << "train: --batch-size " << c.batch << " is the global batch and must divide evenly among the "
                << parallel->size() << " processes\n";
    return 2;
  }
  // Only rank 0 talks; the others' errors still reach stderr.
  if (!main_rank) std::cout.setstate(std::ios::failbit);
  try {
    if (parallel && c.threads == 0)
      c.threads = std::max(1, int(std::thread::hardware_concurrency()) / std::max(1, parallel->local_size()));
    zg::set_num_threads(c.threads);
    zg::manual_seed(c.seed);
    fs::create_directories(c.out);
    std::cout << "loading " << c.data << " ..." << std::flush;
    nn::data::TensorDataset train = load_split(c.data, true);
    nn::data::TensorDataset test = load_split(c.data, false);
    if (c.limit > 0) train = train.head(c.limit);
    std::cout << " " << train.size() << " training and " << test.size() << " test images\n";

    auto model = make_model(c);
    auto optimizer = make_optimizer(c, model->parameters());
    std::cout << model->summary() << "optimizer: " << optimizer->name() << ", lr " << optimizer->lr()
              << ", batch " << c.batch << ", threads " << zg::num_threads();
    if (parallel) std::cout << " x " << parallel->size() << " processes (batch " << c.batch / parallel->size() << " each)";
    std::cout << "\n";

    // A checkpoint holds the model, the optimizer, and where the run stood:
    // completed epochs, steps into the next one, the generator and the data
    // order, so that resuming continues the same run bit for bit.
    int start_epoch = 0;
    std::size_t start_step = 0;
    Tensor<float> saved_generator, saved_order;
    if (!c.resume.empty()) {
      nn::LoadOptions options;
      // Adam's two moments per parameter, and the data order (2 floats a sample).
      options.max_extra_bytes = 2 * model_bytes(*model) + 8 * std::uint64_t(train.size()) + (1u << 20);
      options.extra_names = [](const std::string& name) {
        return name.rfind("optimizer.", 0) == 0 || name.rfind("train.", 0) == 0;
      };
      nn::load_checkpoint(c.resume, *model, [&](const nn::NamedArrays& rest) {
        nn::NamedArrays opt;
        for (const auto& [name, a] : rest) {
          if (name == "train.epoch") start_epoch = static_cast<int>(optim::decode_count(a, name));
          else if (name == "train.step") start_step = static_cast<std::size_t>(optim::decode_count(a, name));
          else if (name == "train.generator") saved_generator = a;
          else if (name == "train.order") saved_order = a;
          else if (name.rfind("train.", 0) == 0) throw ValueError("unknown checkpoint entry '" + name + "'");
          else opt.emplace_back(name, a);
        }
        optimizer->load_state_dict(opt);
      }, options);
      if (c.lr > 0) optimizer->set_lr(static_cast<float>(c.lr));  // an explicit --lr wins over the saved one
      std::cout << "resumed from " << c.resume << " after epoch " << start_epoch;
      if (start_step) std::cout << " and " << start_step << " steps of epoch " << start_epoch + 1;
      std::cout << ", lr " << optimizer->lr() << "\n";
      if (saved_generator.size() <= 1)
        std::cout << "note: " << c.resume << " holds no generator state (an older checkpoint): shuffling and dropout "
                  << "restart from --seed, so this is not the run it continues\n";
    }

    const bool flatten = !is_cnn(c.model);
    nn::data::DataLoader::Options loader_options{c.batch, true, false, flatten};
    // Epoch e is shuffled from --seed + e, with or without --distributed, so
    // one process and any number of processes read the same global batches
    // (Note [Sharded epochs]) and take the same steps to float rounding, and
    // a checkpoint's order and step mean the same to all.
    loader_options.shuffle_seed = c.seed;
    if (parallel) {
      loader_options = parallel->loader_options(train, c.batch, c.seed, loader_options);
      parallel->wrap(model);
      std::cout << "gradients: averaged over " << parallel->size() << " processes through " << parallel->reduction()
                << "\n";
    }
    nn::data::DataLoader loader(train, loader_options);
    loader.set_epoch(std::uint64_t(start_epoch) + (start_step > 0 ? 1 : 0));
    const double per_epoch = double(loader.batches_per_epoch());
    if (saved_generator.size() > 1) nn::decode_generator(saved_generator, zg::generator(), "train.generator");
    if (start_step > 0) loader.restore(decode_order(saved_order, train.size()), std::min(start_step * c.batch, train.size()));
    const double start = start_epoch + double(start_step) / per_epoch;
    examples::MetricsCsv csv(main_rank ? (fs::path(c.out) / "metrics.csv").string() : std::string(),
                             {"epoch", "train_loss", "test_loss", "test_accuracy", "seconds"});
    if (!c.resume.empty() && main_rank) csv.keep_rows_until(start);
    examples::Series train_loss{"train loss (per batch, smoothed)", {}}, test_loss{"test loss", {}, true},
        test_acc{"test accuracy", {}, true};
    if (main_rank) {
      const auto before = examples::evaluate(*model, test, flatten);
      std::cout << "before training: test loss " << std::fixed << std::setprecision(4) << before.loss
                << ", test accuracy " << before.accuracy << "\n";
      test_loss.points.emplace_back(start, before.loss);
      test_acc.points.emplace_back(start, before.accuracy);
    }
    auto save = [&](int epochs_done, std::size_t steps_done) {
      if (c.save.empty() || !main_rank) return;
      nn::NamedArrays state = model->state();
      auto extra = optimizer->state_dict();
      state.insert(state.end(), extra.begin(), extra.end());
      std::string which;
      if (!examples::all_finite(state, which))
        throw ValueError("not saving " + c.save + ": '" + which + "' holds a NaN or infinity (the last checkpoint is kept)");
      extra.emplace_back("train.epoch", optim::encode_count(epochs_done));
      extra.emplace_back("train.step", optim::encode_count(static_cast<std::int64_t>(steps_done)));
      extra.emplace_back("train.generator", nn::encode_generator(zg::generator()));
      extra.emplace_back("train.order", encode_order(loader.order()));
      nn::save_checkpoint(c.save, *model, extra);
    };
    const int last_epoch = start_epoch + c.epochs;
    double smoothed = -1, reached = start;
    bool stopped = false;
    std::size_t steps_run = 0;
    for (int epoch = start_epoch + 1; epoch <= last_epoch && !stopped; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      std::ostringstream label;
      label << "epoch " << epoch << "/" << last_epoch;
      std::vector<double> losses;
      examples::EpochOptions options;
      options.reset = !(epoch == start_epoch + 1 && start_step > 0);
      options.stop_on_nonfinite = !c.allow_nonfinite;
      options.stop = parallel ? &agreed_stop : &stop_signal;
      options.progress = main_rank;
      const std::size_t first_step = options.reset ? 0 : start_step;
      auto result = examples::train_epoch(*model, loader, [&] {
        if (parallel) parallel->sync_gradients();
        optimizer->step();
        optimizer->zero_grad();
        if (++steps_run == c.stop_after) std::raise(SIGINT);
        // A signal reaches the ranks at different moments: all stop after
        // the same step, the first one any rank saw it before.
        if (parallel) agreed_stop.store(parallel->max(stop_signal.load()));
      }, label.str(), options, &losses);
      if (parallel) {  // the global batch's losses: the mean of the ranks'
        parallel->mean(losses);
        result.mean_loss = 0;
        for (double l : losses) result.mean_loss += l / double(std::max<std::size_t>(losses.size(), 1));
      }
      for (std::size_t i = 0; i < losses.size(); ++i) {
        smoothed = smoothed < 0 ? losses[i] : 0.98 * smoothed + 0.02 * losses[i];
        train_loss.points.emplace_back(epoch - 1 + double(first_step + i + 1) / per_epoch, smoothed);
      }
      stopped = result.stopped;
      const std::size_t steps_done = first_step + result.steps;
      reached = stopped ? epoch - 1 + double(steps_done) / per_epoch : epoch;
      if (stopped && result.steps == 0) break;
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!main_rank) continue;
      const auto eval = examples::evaluate(*model, test, flatten);
      std::cout << "epoch " << (stopped ? label.str() + " (stopped at step " + std::to_string(steps_done) + ")"
                                        : std::to_string(epoch))
                << ": train loss " << std::fixed << std::setprecision(4) << result.mean_loss << ", test loss "
                << eval.loss << ", test accuracy " << eval.accuracy << " (" << examples::format_seconds(seconds)
                << " training)\n";
      csv.add({reached, result.mean_loss, eval.loss, eval.accuracy, seconds});
      test_loss.points.emplace_back(reached, eval.loss);
      test_acc.points.emplace_back(reached, eval.accuracy);
      if (stopped) save(epoch - 1, steps_done);
      else save(epoch, 0);
    }
    if (stopped && parallel) stop_signal.store(agreed_stop.load());
    if (!main_rank) return stopped ? 128 + stop_signal.load() : 0;
    std::cout << "metrics: " << csv.path() << "\n";
    const std::string title = c.model + ", " + optimizer->name();
    const double xmax = std::max(reached, start + 1e-3);
    examples::report_plot(examples::plot_lines((fs::path(c.out) / "loss.png").string(), {train_loss, test_loss},
                                               {title + ": loss", "epoch", "cross-entropy", false, false, start, xmax}),
                          (fs::path(c.out) / "loss.png").string());
    examples::report_plot(examples::plot_lines((fs::path(c.out) / "accuracy.png").string(), {test_acc},
                                               {title + ": test accuracy", "epoch", "accuracy", false, true, start, xmax,
                                                "bottom right"}),
                          (fs::path(c.out) / "accuracy.png").string());
    if (!c.save.empty()) std::cout << "checkpoint: " << c.save << "\n";
    if (!c.export_onnx.empty() && !stopped) export_onnx(*model, test, flatten, c.export_onnx);
    if (stopped) {
      const int sig = stop_signal.load();
      std::cerr << "train: stopped by " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << " at epoch " << std::fixed
                << std::setprecision(2) << reached << "; ";
      if (c.save.empty()) std::cerr << "no --save was given, so there is nothing to resume from\n";
      else std::cerr << "continue with the same options and --resume " << c.save << "\n";
      return 128 + sig;
    }
  } catch (const examples::NonFiniteLoss& e) {
    std::cerr << "train: " << rank_prefix(parallel.get()) << e.what() << ".\n"
              << (c.save.empty() ? std::string() : "The checkpoint " + c.save + " keeps the last good epoch. ")
              << "Try a smaller --lr, or --allow-nonfinite to train on anyway.\n";
    if (parallel) parallel->abort(1);  // the other ranks would wait for this one
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "train: " << rank_prefix(parallel.get()) << e.what() << std::endl;
    if (parallel) parallel->abort(1);
    return 1;
  }
  return 0;
}
