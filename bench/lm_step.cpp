// One training step of a character language model, the sequence workloads
// bench/compare.py runs against PyTorch: forward, cross-entropy over every
// position, backward, gradient clipping and the optimizer, on random tokens
// (seeded). The models are train-lm's (examples/language_model.cpp):
//   lstm_lm   vocab 96, embedding 128, LSTM hidden 256 x 2 layers, sequence 64,
//             batch 32, Adam lr 1e-3, clip 0.25 (958,560 parameters)
//   gru_lm    the same with GRU (728,160)
//   gpt_char  nanoGPT's CPU configuration: vocab 65, 4 layers, 4 heads,
//             n_embd 128, block 64, batch 12, GELU MLP 4x, pre-norm, no
//             dropout, AdamW lr 1e-3 (weight decay 0.01), clip 1 (818,176)
//   attention one nn::MultiheadAttention block, causal self-attention of
//             (16, 64, 128) batch first, 4 heads, no attention weights
//             returned: forward and backward of sum(y * r) into x and the
//             parameters, no optimizer (66,048 parameters)
// Each window starts from a zero state (no carried state), as the PyTorch
// side does. One JSON line per thread setting: the median ms per step over
// `repeats` runs of `iterations` steps after `warmup`, and peak RSS.
#include <cstdio>
#include <memory>
#include <random>
#include <string>

#include "cli.hpp"
#include <xtensor/xview.hpp>

#include <zerograd/zerograd.hpp>

#include "../examples/language_model.hpp"
#include "bench_common.hpp"

using namespace zg;

namespace {

struct Workload {
  examples::LanguageModelConfig model;
  std::size_t batch, seq;
  bool adamw;
  float clip;
};

Workload workload(const std::string& name) {
  examples::LanguageModelConfig c;
  if (name == "gpt_char") {
    c.kind = "gpt";
    c.vocab = 65;
    c.embed = 128;
    c.layers = 4;
    c.heads = 4;
    c.block = 64;
    return {c, 12, 64, true, 1.0f};
  }
  c.kind = name == "gru_lm" ? "gru" : "lstm";
  c.vocab = 96;
  c.embed = 128;
  c.hidden = 256;
  c.layers = 2;
  return {c, 32, 64, false, 0.25f};
}

// Random tokens (B, T + 1): inputs are the first T, targets the last T.
Tensor<float> random_tokens(std::size_t B, std::size_t T, std::size_t vocab, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<std::size_t> pick(0, vocab - 1);
  Tensor<float> t = Tensor<float>::from_shape({B, T + 1});
  for (auto& v : t) v = static_cast<float>(pick(gen));
  return t;
}

// The attention workload: one block's forward and backward, timed like the
// language models.
int attention_bench(int threads, int iterations, int repeats, int warmup, std::uint64_t seed) {
  const std::size_t B = 16, T = 64, C = 128, heads = 4;
  const auto settings = bench::thread_settings(threads);
  for (const int t : settings) {
    if (t != settings.front()) bench::reset_peak_rss();
    set_num_threads(t);
    manual_seed(seed);
    nn::MultiheadAttentionOptions o(C, heads);
    o.batch_first = true;
    nn::MultiheadAttention mha(o);
    Variable x = randn({B, T, C});
    x.requires_grad_();
    const Variable r = randn({B, T, C});
    nn::MultiheadAttentionArgs args;
    args.need_weights = false;
    args.attn_mask = nn::generate_square_subsequent_mask(T);
    args.attn_mask_kind = nn::functional::AttnMask::Additive;
    std::size_t params = 0;
    for (const auto& p : mha.parameters()) params += p.size();
    const auto step = [&] {
      sum(mha(x, x, x, args).output * r).backward();
      mha.zero_grad();
      x.cleargrad();
    };
    const std::vector<double> ms = bench::timed_runs(step, warmup, repeats, iterations);
    std::printf("{\"bench\": \"attention\", \"threads\": %d, \"parameters\": %zu, \"batch\": %zu, \"seq\": %zu, "
                "\"iterations\": %d, \"repeats\": %d, \"warmup\": %d, \"ms_per_step\": %.3f, "
                "\"peak_rss_mb\": %.1f}\n",
                t, params, B, T, iterations, repeats, warmup, bench::median(ms), bench::peak_rss_mb());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string name = "lstm_lm";
  int threads = 0, iterations = 20, repeats = 3, warmup = 5;
  std::uint64_t seed = 1;
  cli::App app{"lm_step: one training step of a character language model (lstm_lm, gru_lm, gpt_char), or one\n"
               "attention block's forward and backward (attention): see the source's header; one JSON line per\n"
               "thread setting"};
  app.add_option("--workload", name, "lstm_lm, gru_lm, gpt_char or attention")
      ->check(cli::IsMember({"lstm_lm", "gru_lm", "gpt_char", "attention"}))->capture_default_str();
  app.add_option("--threads", threads, "OpenBLAS / zerograd threads; 0 runs 1 and 2, one JSON line each")
      ->check(cli::Range(0, 256))->capture_default_str();
  app.add_option("--iterations", iterations, "Timed steps per repetition")->check(cli::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--repeats", repeats, "Timed repetitions (the median is reported)")->check(cli::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps first")->check(cli::Range(0, 100000))->capture_default_str();
  app.add_option("--seed", seed, "Seed of the weights and the tokens")->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);
  if (name == "attention") return attention_bench(threads, iterations, repeats, warmup, seed);

  const Workload w = workload(name);
  const std::size_t B = w.batch, T = w.seq, V = w.model.vocab;
  const Tensor<float> tokens = random_tokens(B, T, V, seed);
  const Variable x(Tensor<float>(xt::view(tokens, xt::all(), xt::range(0, T))));
  const Variable y(Tensor<float>(xt::reshape_view(xt::view(tokens, xt::all(), xt::range(1, T + 1)), {B * T})));
  const auto settings = bench::thread_settings(threads);
  for (const int t : settings) {
    if (t != settings.front()) bench::reset_peak_rss();
    set_num_threads(t);
    manual_seed(seed);
    auto model = examples::make_language_model(w.model);
    std::unique_ptr<optim::Optimizer> opt;
    if (w.adamw) opt = std::make_unique<optim::AdamW>(model->parameters(), 1e-3f, 0.9f, 0.999f, 0.01f);
    else opt = std::make_unique<optim::Adam>(model->parameters(), 1e-3f);
    opt->set_max_grad_norm(w.clip);
    std::size_t params = 0;
    for (const auto& p : model->parameters()) params += p.size();
    Variable loss;
    const auto step = [&] {
      const Variable logits = (*model)(x, {}).logits;
      loss = nn::functional::cross_entropy(reshape(logits, {B * T, V}), y);
      loss.backward();
      opt->step();
      opt->zero_grad();
    };
    const std::vector<double> ms = bench::timed_runs(step, warmup, repeats, iterations);
    std::printf("{\"bench\": \"%s\", \"threads\": %d, \"parameters\": %zu, \"batch\": %zu, \"seq\": %zu, "
                "\"iterations\": %d, \"repeats\": %d, \"warmup\": %d, \"ms_per_step\": %.3f, "
                "\"final_loss\": %.4f, \"peak_rss_mb\": %.1f}\n",
                name.c_str(), t, params, B, T, iterations, repeats, warmup, bench::median(ms),
                static_cast<double>(loss.item()), bench::peak_rss_mb());
    std::fflush(stdout);
  }
  return 0;
}
