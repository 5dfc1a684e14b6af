// LibTorch (PyTorch's C++ API) baseline for op_overhead and deep_chain: the
// same chain (x a 0-d float tensor with requires_grad, then ops alternating
// y = y * 1.0001f and y = y + 0.5f), timed and measured as op_overhead.cpp and
// deep_chain.cpp do, printing the same JSON fields. The targets for
// these two are against LibTorch, not Python. Built only with
// -DZEROGRAD_BENCH_LIBTORCH=ON (needs Debian's libtorch-dev, which
// python3-torch pulls in); bench/compare does that when it can.
//
//   libtorch_chain --bench op_overhead [--threads N] [--ops 10000] [--repeats 51] [--warmup 5]
//   libtorch_chain --bench deep_chain  [--threads N] [--ops 1000000] [--repeats 3]
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "bench_common.hpp"

namespace {

using namespace zg::bench;

torch::Tensor chain(const torch::Tensor& x, int ops) {
  torch::Tensor y = x;
  for (int i = 0; i < ops; ++i) y = (i % 2 == 0) ? y * 1.0001f : y + 0.5f;
  return y;
}

torch::Tensor make_x() {
  return torch::scalar_tensor(1.0f, torch::TensorOptions().dtype(torch::kFloat32).requires_grad(true));
}

void op_overhead(int t, int ops, int repeats, int warmup) {
  torch::Tensor x = make_x();
  std::vector<double> fwd, bwd, down;
  double grad = 0;
  for (int r = -warmup; r < repeats; ++r) {
    x.mutable_grad() = torch::Tensor();
    auto t0 = Clock::now();
    torch::Tensor y = chain(x, ops);
    const double f = since(t0);
    t0 = Clock::now();
    y.backward();
    const double b = since(t0);
    t0 = Clock::now();
    y = torch::Tensor();
    const double d = since(t0);
    grad = x.grad().item<float>();
    if (r < 0) continue;
    fwd.push_back(f);
    bwd.push_back(b);
    down.push_back(d);
  }
  const double fwd_ns = median(fwd) * 1e9 / ops, bwd_ns = median(bwd) * 1e9 / ops;
  std::printf(
      "{\"bench\": \"op_overhead\", \"impl\": \"libtorch\", \"threads\": %d, \"ops\": %d, \"repeats\": %d, "
      "\"warmup\": %d, \"forward_ns_per_op\": %.1f, \"backward_ns_per_op\": %.1f, \"total_ns_per_op\": %.1f, "
      "\"teardown_ns_per_op\": %.1f, \"forward_ms\": %.4f, \"backward_ms\": %.4f, \"x_grad\": %.6g, "
      "\"x_grad_expected\": %.6g, \"peak_rss_mb\": %.1f}\n",
      t, ops, repeats, warmup, fwd_ns, bwd_ns, fwd_ns + bwd_ns, median(down) * 1e9 / ops, median(fwd) * 1e3,
      median(bwd) * 1e3, grad, std::pow(1.0001, (ops + 1) / 2), peak_rss_mb());
}

void deep_chain(int t, int ops, int repeats) {
  torch::Tensor x = make_x();
  std::vector<double> fwd, bwd, down, totals;
  double start_mb = 0, after_forward_mb = 0, peak_mb = 0, grad = 0;
  bool peak_reset = false;
  std::string reps;
  for (int r = 0; r < repeats; ++r) {
    x.mutable_grad() = torch::Tensor();
    if (r == 0) {
      start_mb = rss_mb();
      peak_reset = reset_peak_rss();
    }
    auto t0 = Clock::now();
    torch::Tensor y = chain(x, ops);
    fwd.push_back(since(t0));
    if (r == 0) after_forward_mb = rss_mb();
    t0 = Clock::now();
    y.backward();
    bwd.push_back(since(t0));
    t0 = Clock::now();
    y = torch::Tensor();
    down.push_back(since(t0));
    if (r == 0) peak_mb = peak_rss_mb();
    grad = x.grad().item<float>();
    totals.push_back(fwd.back() + bwd.back() + down.back());
    char buf[80];
    std::snprintf(buf, sizeof buf, "%s[%.4f, %.4f, %.4f]", r ? ", " : "", fwd.back(), bwd.back(), down.back());
    reps += buf;
  }
  const double mb = 1024.0 * 1024.0;
  std::printf(
      "{\"bench\": \"deep_chain\", \"impl\": \"libtorch\", \"threads\": %d, \"ops\": %d, \"repeats\": %d, "
      "\"forward_s\": %.4f, \"backward_s\": %.4f, \"teardown_s\": %.4f, \"total_s\": %.4f, "
      "\"fwd_bwd_teardown_s_reps\": [%s], \"start_rss_mb\": %.1f, \"graph_rss_mb\": %.1f, "
      "\"peak_rss_delta_mb\": %.1f, \"graph_bytes_per_op\": %.1f, \"peak_bytes_per_op\": %.1f, "
      "\"peak_rss_mb\": %.1f, \"peak_reset\": %s, \"x_grad\": %.6g, \"x_grad_expected\": %.6g}\n",
      t, ops, repeats, median(fwd), median(bwd), median(down), median(totals), reps.c_str(), start_mb,
      after_forward_mb - start_mb, peak_mb - start_mb, (after_forward_mb - start_mb) * mb / ops,
      (peak_mb - start_mb) * mb / ops, peak_mb, peak_reset ? "true" : "false", grad,
      std::pow(1.0001, (ops + 1) / 2));
}

}  // namespace

int main(int argc, char** argv) {
  std::string bench = "op_overhead";
  int threads = 0, ops = -1, repeats = -1, warmup = 5;
  CLI::App app{"LibTorch baseline for op_overhead and deep_chain (same chain, same JSON fields)"};
  app.add_option("--bench", bench, "op_overhead or deep_chain")
      ->check(CLI::IsMember({"op_overhead", "deep_chain"}))->capture_default_str();
  app.add_option("--threads", threads, "torch::set_num_threads; 0 runs 1 and 2")->check(CLI::Range(0, 256));
  app.add_option("--ops,--iterations", ops, "Ops in the chain (default 10000 / 1000000)")->check(CLI::Range(2, 1000000000));
  app.add_option("--repeats", repeats, "Timed chains (default 51 / 3)")->check(CLI::Range(1, 100000));
  app.add_option("--warmup", warmup, "Untimed chains first (op_overhead)")->check(CLI::Range(0, 100000))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const bool deep = bench == "deep_chain";
  if (ops < 0) ops = deep ? 1000000 : 10000;
  if (repeats < 0) repeats = deep ? 3 : 51;
  const auto settings = thread_settings(threads);
  for (const int t : settings) {
    if (t != settings.front() && !deep) reset_peak_rss();
    torch::set_num_threads(t);
    if (deep)
      deep_chain(t, ops, repeats);
    else
      op_overhead(t, ops, repeats, warmup);
    std::fflush(stdout);
  }
}
