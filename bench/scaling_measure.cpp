// The measured inputs of bench/scaling_model.py, one JSON line per run:
//   --model NAME   (1 process) one training step of SimpleConvNet,
//                  DeepConvNet, the LSTM language model or nanoGPT's CPU
//                  configuration, split into forward, backward and the
//                  optimizer's step, with the time into backward at which
//                  each parameter's gradient became final (its
//                  post-accumulate-grad hook, where DistributedDataParallel
//                  hands it over) and, for each --bucket-kb, DDP's buckets:
//                  their bytes and the time the last of their parameters
//                  became final. Medians over --steps timed steps.
//   --sync         (2 or more processes) what DistributedDataParallel's
//                  finish_gradient_sync() costs for one parameter of each
//                  --sizes-kb, through the shared-memory window and through
//                  one all-reduce bucket, and a line ms = a + b x bytes
//                  fitted through each. Under mpirun's
//                  --mca btl tcp,self the all-reduce goes over TCP.
// bench/scaling runs both and the model.
#include <iostream>
#include <random>
#include <set>
#include <sstream>

#include "cli.hpp"

#include <zerograd/distributed.hpp>
#include <zerograd/zerograd.hpp>

#include "bench_common.hpp"
#include "language_model.hpp"

using namespace zg;
namespace dist = zg::distributed;

namespace {

struct Workload {
  std::shared_ptr<nn::Module> model;
  std::string description;
  std::function<Variable()> loss;  // forward of the next batch, to the loss
  float clip = 0;                  // Adam's max gradient norm (0: none)
};

constexpr std::size_t kBptt = 64;

// train-lm's LSTM (its defaults), or nanoGPT's CPU configuration
// (docs/sequences.md), on 65 characters.
examples::LanguageModelConfig language_config(const std::string& name) {
  examples::LanguageModelConfig c;
  c.vocab = 65;
  if (name == "gpt") {
    c.kind = "gpt";
    c.layers = 4;
    c.heads = 4;
    c.embed = 128;
    c.block = kBptt;
    c.dropout = 0.1;
  }
  return c;
}

bool is_image_model(const std::string& name) { return name == "simple-cnn" || name == "deep-cnn"; }

std::shared_ptr<nn::Module> build_model(const std::string& name) {
  if (name == "simple-cnn") return nn::models::simple_conv_net();
  if (name == "deep-cnn") return nn::models::deep_conv_net();
  return examples::make_language_model(language_config(name));
}

// The convolutional nets as train builds them, on Fashion-MNIST (batch
// samples each step).
Workload image_workload(const std::string& name, std::size_t batch, const std::string& data_dir) {
  auto train = std::make_shared<nn::data::TensorDataset>(nn::data::load_idx_dataset(data_dir, true));
  auto loader = std::make_shared<nn::data::DataLoader>(*train, nn::data::DataLoader::Options{batch, true, false, false});
  Workload w;
  w.model = build_model(name);
  w.description = (name == "simple-cnn" ? "SimpleConvNet" : "DeepConvNet") + std::string(", Adam lr 0.001, batch ") +
                  std::to_string(batch) + ", Fashion-MNIST";
  auto b = std::make_shared<nn::data::DataLoader::Batch>();
  auto model = w.model;
  w.loss = [train, loader, b, model] {
    if (!loader->next(*b)) {
      loader->reset();
      loader->next(*b);
    }
    return nn::functional::softmax_cross_entropy((*model)(b->x), b->t);
  };
  return w;
}

// The language models as train-lm builds them (Adam, clip 1.0), on random
// tokens of a 65-character alphabet: the time of a step does not depend on
// the text.
Workload language_workload(const std::string& name, std::size_t batch) {
  const examples::LanguageModelConfig c = language_config(name);
  const std::size_t bptt = kBptt;
  auto model = examples::make_language_model(c);
  std::vector<std::size_t> tokens(batch * bptt * 64 + 1);
  std::mt19937 rng(1);
  for (auto& t : tokens) t = rng() % c.vocab;
  auto windows = std::make_shared<nn::data::SequenceBatches>(tokens, batch, bptt);
  auto b = std::make_shared<nn::data::SequenceBatches::Batch>();
  Workload w;
  w.model = model;
  w.description = (name == "gpt" ? "GPT 4 layers, 4 heads, n_embd 128, dropout 0.1"
                                 : "LSTM 2 x 256, embedding 128") +
                  std::string(", vocab 65, Adam clip 1.0, batch ") + std::to_string(batch) + " x " +
                  std::to_string(bptt) + " tokens";
  w.clip = 1.0f;
  w.loss = [model, windows, b, vocab = c.vocab] {
    if (!windows->next(*b)) {
      windows->reset();
      windows->next(*b);
    }
    const std::size_t n = b->x.size();
    return nn::functional::cross_entropy(reshape((*model)(b->x, {}).logits, {n, vocab}), reshape(b->y, {n}));
  };
  return w;
}

std::string json_list(const std::vector<double>& v) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
  s << "]";
  return s.str();
}

int profile(const std::string& name, std::size_t batch, const std::vector<std::size_t>& bucket_kb, int steps,
            int warmup, const std::string& data_dir) {
  auto& g = dist::ProcessGroup::world();
  if (g.size() != 1) throw ValueError("--model runs in 1 process (mpirun -np 1), not " + std::to_string(g.size()));
  zg::manual_seed(1);
  Workload w = is_image_model(name) ? image_workload(name, batch, data_dir) : language_workload(name, batch);
  const auto params = w.model->parameters();
  optim::Adam adam(params, 0.001f);
  if (w.clip > 0) adam.set_max_grad_norm(w.clip);
  // When each parameter's gradient became final, in seconds into backward.
  std::vector<double> ready(params.size(), 0.0);
  bench::Clock::time_point backward_start;
  std::vector<HookHandle> hooks;
  for (std::size_t i = 0; i < params.size(); ++i)
    hooks.push_back(params[i].register_post_accumulate_grad_hook(
        [&, i](const Variable&) { ready[i] = bench::since(backward_start); }));
  // DDP's buckets for each size, on a copy of the model that never trains.
  std::vector<std::vector<std::vector<std::size_t>>> layouts;
  for (std::size_t kb : bucket_kb) {
    zg::manual_seed(1);
    auto m = build_model(name);
    dist::DistributedDataParallel ddp(m, {kb << 10, dist::GradientReduction::all_reduce}, g);
    std::vector<std::vector<std::size_t>> buckets;
    for (std::size_t b = 0; b < ddp.bucket_count(); ++b) buckets.push_back(ddp.bucket(b));
    layouts.push_back(buckets);
  }
  std::vector<double> forward, backward, optimizer, step;
  std::vector<std::vector<double>> ready_runs(params.size());
  std::vector<std::vector<std::vector<double>>> bucket_runs(layouts.size());
  for (std::size_t l = 0; l < layouts.size(); ++l) bucket_runs[l].resize(layouts[l].size());
  for (int s = 0; s < warmup + steps; ++s) {
    const auto t0 = bench::Clock::now();
    Variable loss = w.loss();
    const double f = bench::since(t0);
    backward_start = bench::Clock::now();
    loss.backward();
    const double bw = bench::since(backward_start);
    const auto t2 = bench::Clock::now();
    adam.step();
    adam.zero_grad();
    const double o = bench::since(t2);
    if (s < warmup) continue;
    forward.push_back(f * 1e3);
    backward.push_back(bw * 1e3);
    optimizer.push_back(o * 1e3);
    step.push_back((f + bw + o) * 1e3);
    for (std::size_t i = 0; i < params.size(); ++i) ready_runs[i].push_back(ready[i] * 1e3);
    for (std::size_t l = 0; l < layouts.size(); ++l)
      for (std::size_t b = 0; b < layouts[l].size(); ++b) {
        double last = 0;
        for (std::size_t i : layouts[l][b]) last = std::max(last, ready[i]);
        bucket_runs[l][b].push_back(last * 1e3);
      }
  }
  std::size_t floats = 0;
  for (const auto& p : params) floats += p.size();
  std::ostringstream j;
  j << "{\"bench\":\"scaling_measure\",\"model\":\"" << name << "\",\"description\":\"" << w.description
    << "\",\"batch\":" << batch << ",\"threads\":1,\"steps\":" << steps << ",\"parameters\":" << floats
    << ",\"gradient_bytes\":" << floats * sizeof(float) << ",\"ms_forward\":" << bench::median(forward)
    << ",\"ms_backward\":" << bench::median(backward) << ",\"ms_optimizer\":" << bench::median(optimizer)
    << ",\"ms_step\":" << bench::median(step) << ",\"layouts\":[";
  for (std::size_t l = 0; l < layouts.size(); ++l) {
    j << (l ? "," : "") << "{\"bucket_kb\":" << bucket_kb[l] << ",\"buckets\":[";
    for (std::size_t b = 0; b < layouts[l].size(); ++b) {
      std::size_t bytes = 0;
      for (std::size_t i : layouts[l][b]) bytes += params[i].size() * sizeof(float);
      j << (b ? "," : "") << "{\"bytes\":" << bytes << ",\"ms_ready\":" << bench::median(bucket_runs[l][b])
        << ",\"parameters\":" << layouts[l][b].size() << "}";
    }
    j << "]}";
  }
  j << "]}";
  std::cout << j.str() << std::endl;
  for (auto& h : hooks) h.remove();
  return 0;
}

// A module of one parameter of n floats: DDP then syncs exactly n floats.
std::shared_ptr<nn::Module> one_parameter(std::size_t n) { return std::make_shared<nn::Embedding>(n, 1); }

// Median ms of finish_gradient_sync() over repeats, the ranks starting together.
double sync_ms(dist::ProcessGroup& g, std::size_t n, dist::GradientReduction reduction, int repeats) {
  auto m = one_parameter(n);
  dist::DistributedDataParallel ddp(m, {std::max<std::size_t>(n * sizeof(float), 1), reduction}, g);
  std::vector<double> t;
  for (int r = 0; r < repeats + 3; ++r) {
    m->parameters()[0].set_grad(zg::ones<float>({n, 1}));
    g.barrier();
    const auto t0 = bench::Clock::now();
    ddp.finish_gradient_sync();
    const double ms = bench::since(t0) * 1e3;
    if (r >= 3) t.push_back(ms);
  }
  // The slowest rank's median: the step waits for it.
  std::vector<double> all(std::size_t(g.size()), 0.0);
  all[std::size_t(g.rank())] = bench::median(t);
  g.all_reduce_sum(all.data(), all.size());
  return *std::max_element(all.begin(), all.end());
}

// y = a + b x by least squares on relative errors (weights 1 / y^2): the
// small sizes, where the fixed cost is most of the time, set a, the large
// ones b.
std::pair<double, double> fit_line(const std::vector<double>& x, const std::vector<double>& y) {
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double w = 1 / (y[i] * y[i]);
    sw += w;
    sx += w * x[i];
    sy += w * y[i];
    sxx += w * x[i] * x[i];
    sxy += w * x[i] * y[i];
  }
  const double b = (sw * sxy - sx * sy) / (sw * sxx - sx * sx);
  return {(sy - b * sx) / sw, b};
}

int sync_costs(const std::vector<std::size_t>& sizes_kb, int repeats, bool window) {
  auto& g = dist::ProcessGroup::world();
  if (g.size() < 2) throw ValueError("--sync needs 2 or more processes (mpirun -np 2)");
  if (std::set<std::size_t>(sizes_kb.begin(), sizes_kb.end()).size() < 2)
    throw ValueError("--sync needs 2 or more different --sizes-kb to fit a line");
  std::vector<double> bytes, window_ms, all_reduce_ms;
  for (std::size_t kb : sizes_kb) {
    const std::size_t n = (kb << 10) / sizeof(float);
    bytes.push_back(double(n * sizeof(float)));
    if (window) window_ms.push_back(sync_ms(g, n, dist::GradientReduction::shared_memory, repeats));
    all_reduce_ms.push_back(sync_ms(g, n, dist::GradientReduction::all_reduce, repeats));
  }
  if (!g.is_main()) return 0;
  std::ostringstream j;
  j << "{\"bench\":\"scaling_measure\",\"sync\":true,\"processes\":" << g.size() << ",\"repeats\":" << repeats
    << ",\"bytes\":" << json_list(bytes);
  const auto line = [&](const char* name, const std::vector<double>& ms) {
    const auto [a, b] = fit_line(bytes, ms);
    j << ",\"" << name << "\":{\"ms\":" << json_list(ms) << ",\"ms_fixed\":" << a << ",\"ms_per_mb\":" << b * 1e6
      << "}";
  };
  if (window) line("window", window_ms);
  line("all_reduce", all_reduce_ms);
  j << ",\"openmpi\":[";
  const auto settings = dist::openmpi_settings();
  for (std::size_t i = 0; i < settings.size(); ++i) j << (i ? "," : "") << '"' << settings[i] << '"';
  j << "]}";
  std::cout << j.str() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, data_dir = nn::data::default_data_dir();
  std::size_t batch = 0;
  std::vector<std::size_t> bucket_kb{25 << 10, 1024}, sizes_kb{4, 16, 64, 256, 1024, 4096, 16384};
  int steps = 15, warmup = 3, repeats = 30;
  bool sync = false, no_window = false;
  cli::App app{"scaling_measure: the inputs of bench/scaling_model.py (run by bench/scaling)"};
  app.add_option("--model", model, "Profile one step in 1 process: simple-cnn, deep-cnn, lstm, gpt")
      ->check(cli::IsMember({"simple-cnn", "deep-cnn", "lstm", "gpt"}));
  app.add_option("--batch", batch, "Per-process batch (default: 100 images, 32 or 12 rows of 64 tokens)");
  app.add_option("--bucket-kb", bucket_kb, "DDP bucket sizes whose buckets to report")
      ->delimiter(',')->capture_default_str();
  app.add_option("--steps", steps, "Timed steps")->check(cli::Range(1, 100000))->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps first")->check(cli::Range(0, 100000))->capture_default_str();
  app.add_option("--data", data_dir, "Fashion-MNIST directory (the convolutional nets)")->capture_default_str();
  app.add_flag("--sync", sync, "Measure DDP's gradient sync in 2 or more processes instead");
  app.add_option("--sizes-kb", sizes_kb, "Gradient sizes for --sync")->delimiter(',')
      ->check(cli::Range(std::size_t{1}, std::size_t{1} << 22))->capture_default_str();
  app.add_option("--repeats", repeats, "Syncs per size for --sync")->check(cli::Range(1, 100000))->capture_default_str();
  app.add_flag("--no-window", no_window, "--sync: the all-reduce bucket only");
  ZG_CLI_PARSE(app, argc, argv);
  try {
    zg::set_num_threads(1);
    if (sync == !model.empty()) throw ValueError("give either --model NAME or --sync");
    if (sync) return sync_costs(sizes_kb, repeats, !no_window);
    if (batch == 0) batch = model == "lstm" ? 32 : model == "gpt" ? 12 : 100;
    return profile(model, batch, bucket_kb, steps, warmup, data_dir);
  } catch (const std::exception& e) {
    std::cerr << "scaling_measure: " << e.what() << std::endl;
    if (dist::launched_by_mpirun()) dist::ProcessGroup::world().abort(1);
    return 1;
  }
}
