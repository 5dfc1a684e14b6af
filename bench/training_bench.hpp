#pragma once
// The training loop mlp_epoch and simple_cnn time: a shuffled DataLoader over
// the Fashion-MNIST training set, forward, softmax cross-entropy, backward,
// optimizer step and zero_grad, batch 100. One JSON line per thread setting.
//
// Each thread setting builds a fresh model (same seed), runs `warmup`
// iterations untimed, then `repeats` timed runs of `iterations` iterations;
// ms_per_iter is the median over the runs. The loader starts a new epoch
// (reshuffled) whenever it runs out. Peak RSS is the process's VmHWM: for
// the first setting it includes loading the data set; before each later one
// it is reset to the current RSS (data set included), so a line never
// carries an earlier setting's peak.
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"

#include <zerograd/zerograd.hpp>

#include "bench_common.hpp"

namespace zg::bench {

struct TrainingBench {
  std::string name;
  bool flatten = false;
  std::function<std::shared_ptr<nn::Module>()> model;
  std::function<std::unique_ptr<optim::Optimizer>(const std::vector<Variable>&)> optimizer;
  std::string optimizer_desc;
  int iterations = 600, repeats = 3, warmup = 20;
};

inline int run_training_bench(TrainingBench b, const std::string& description, int argc, char** argv) {
  int threads = 0;
  std::string data_dir = nn::data::default_data_dir();
  std::size_t batch = 100;
  std::uint64_t seed = 1;
  cli::App app{description};
  app.add_option("--threads", threads, "OpenBLAS / zerograd threads; 0 runs 1 and 2, one JSON line each")
      ->check(cli::Range(0, 256))->capture_default_str();
  app.add_option("--iterations", b.iterations, "Timed iterations per repetition")
      ->check(cli::Range(1, 1000000))->capture_default_str();
  app.add_option("--repeats", b.repeats, "Timed repetitions (the median is reported)")
      ->check(cli::Range(1, 1000))->capture_default_str();
  app.add_option("--warmup", b.warmup, "Untimed iterations first")->check(cli::Range(0, 1000000))->capture_default_str();
  app.add_option("--batch", batch, "Batch size")->check(cli::Range(1, 60000))->capture_default_str();
  app.add_option("--data", data_dir, "Directory with train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]")
      ->capture_default_str();
  app.add_option("--seed", seed, "Seed for weights and shuffling")->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  const nn::data::TensorDataset train = nn::data::load_idx_dataset(data_dir, true);
  const double data_rss = rss_mb();
  const auto settings = thread_settings(threads);

  for (const int t : settings) {
    if (t != settings.front()) reset_peak_rss();
    set_num_threads(t);
    manual_seed(seed);
    auto model = b.model();
    auto opt = b.optimizer(model->parameters());
    nn::data::DataLoader::Options lo;
    lo.batch_size = batch;
    lo.shuffle = true;
    lo.flatten = b.flatten;
    nn::data::DataLoader loader(train, lo);
    nn::data::DataLoader::Batch xb;
    Variable loss;
    const auto step = [&] {
      if (!loader.next(xb)) {
        loader.reset();
        loader.next(xb);
      }
      loss = nn::functional::softmax_cross_entropy((*model)(xb.x), xb.t);
      loss.backward();
      opt->step();
      opt->zero_grad();
    };
    const std::vector<double> ms = timed_runs(step, b.warmup, b.repeats, b.iterations);
    const double ms_iter = median(ms);
    const double epoch_iters = static_cast<double>(loader.batches_per_epoch());
    std::string reps;
    for (std::size_t i = 0; i < ms.size(); ++i) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%s%.4f", i ? ", " : "", ms[i]);
      reps += buf;
    }
    std::printf(
        "{\"bench\": \"%s\", \"threads\": %d, \"batch\": %zu, \"optimizer\": \"%s\", \"iterations\": %d, "
        "\"repeats\": %d, \"warmup\": %d, \"ms_per_iter\": %.4f, \"ms_per_iter_reps\": [%s], "
        "\"epoch_iterations\": %.0f, \"s_per_epoch\": %.4f, \"final_loss\": %.4f, \"data_rss_mb\": %.1f, "
        "\"peak_rss_mb\": %.1f}\n",
        b.name.c_str(), t, batch, b.optimizer_desc.c_str(), b.iterations, b.repeats, b.warmup, ms_iter,
        reps.c_str(), epoch_iters, ms_iter * epoch_iters / 1e3, static_cast<double>(loss.item()), data_rss,
        peak_rss_mb());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace zg::bench
