// nn::RNN, nn::LSTM and nn::GRU alone at train-lm's shapes: forward
// (training) and backward of sum(y * r), one JSON line per (layer, layers,
// threads) with the median ms and the first call's (which makes oneDNN's
// primitives). Each layer and direction is one Function; run once as it is
// and once with ZEROGRAD_RNN=composed (the same steps as autograd ops) to
// compare the two (Note [oneDNN recurrent layers] in nn/src/kernels/rnn_dnnl.cpp).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <zerograd/zerograd.hpp>

#include "bench_common.hpp"

namespace {

namespace nn = zg::nn;
using Clock = zg::bench::Clock;

struct Sizes {
  std::size_t steps = 64, batch = 32, input = 128, hidden = 256;
};

std::shared_ptr<nn::Module> make(const std::string& kind, const nn::RNNOptions& o) {
  if (kind == "lstm") return std::make_shared<nn::LSTM>(o);
  if (kind == "gru") return std::make_shared<nn::GRU>(o);
  return std::make_shared<nn::RNN>(o);
}

void run(const std::string& kind, const Sizes& z, std::size_t layers, int threads, int warmup, int repeats) {
  zg::set_num_threads(threads);
  zg::manual_seed(1);
  auto m = make(kind, nn::RNNOptions(z.input, z.hidden, layers));
  const zg::Variable x = zg::randn<float>({z.steps, z.batch, z.input});
  const zg::Variable r = zg::randn<float>({z.steps, z.batch, z.hidden});
  auto step = [&] {
    m->zero_grad();
    zg::sum((*m)(x) * r).backward();
  };
  auto t0 = Clock::now();
  step();
  const double first = zg::bench::since(t0) * 1e3;
  std::vector<double> ms;
  for (int i = 0; i < warmup + repeats; ++i) {
    t0 = Clock::now();
    step();
    if (i >= warmup) ms.push_back(zg::bench::since(t0) * 1e3);
  }
  const char* path = std::getenv("ZEROGRAD_RNN");
  const char* isa = std::getenv("ONEDNN_MAX_CPU_ISA");
  std::printf(
      "{\"bench\": \"recurrent_layers\", \"layer\": \"%s\", \"layers\": %zu, \"threads\": %d, \"steps\": %zu, "
      "\"batch\": %zu, \"input\": %zu, \"hidden\": %zu, \"zerograd_rnn\": \"%s\", \"onednn_isa\": \"%s\", "
      "\"repeats\": %d, \"ms\": %.2f, \"first_call_ms\": %.2f}\n",
      kind.c_str(), layers, threads, z.steps, z.batch, z.input, z.hidden, path ? path : "default",
      isa ? isa : "default", repeats, zg::bench::median(ms), first);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nn::RNN, LSTM, GRU forward + backward at train-lm's shapes"};
  Sizes z;
  int threads = 0, layers = 0, warmup = 3, repeats = 20;
  std::string kinds = "rnn,lstm,gru";
  app.add_option("--layer", kinds, "comma-separated: rnn, lstm, gru (default all)");
  app.add_option("--threads", threads, "threads; 0 runs 1 and 2, one JSON line each");
  app.add_option("--layers", layers, "stacked layers; 0 runs 1 and 2");
  app.add_option("--steps", z.steps, "T (default 64)");
  app.add_option("--batch", z.batch, "B (default 32)");
  app.add_option("--input", z.input, "input size (default 128)");
  app.add_option("--hidden", z.hidden, "hidden size (default 256)");
  app.add_option("--warmup", warmup, "untimed repetitions after the first call (default 3)");
  app.add_option("--repeats", repeats, "timed repetitions; the median is reported (default 20)");
  CLI11_PARSE(app, argc, argv);
  try {
    for (std::size_t at = 0; at <= kinds.size();) {
      const std::size_t end = std::min(kinds.find(',', at), kinds.size());
      const std::string kind = kinds.substr(at, end - at);
      at = end + 1;
      if (kind != "rnn" && kind != "lstm" && kind != "gru") throw zg::ValueError("unknown --layer " + kind);
      for (int l : layers > 0 ? std::vector<int>{layers} : std::vector<int>{1, 2})
        for (int t : zg::bench::thread_settings(threads)) run(kind, z, std::size_t(l), t, warmup, repeats);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recurrent_layers: %s\n", e.what());
    return 1;
  }
  return 0;
}
