// Per-op overhead of the graph: x a 0-d float Variable with requires_grad,
// then a chain of --ops scalar ops alternating y = y * 1.0001f and
// y = y + 0.5f. Forward (recording the chain) and backward are timed
// separately; each figure is the median over --repeats after --warmup
// untimed chains. One JSON line per thread setting: ns per op each way, their
// sum, the teardown of what is left after backward, and peak RSS.
#include <cmath>
#include <cstdio>
#include <vector>

#include "cli.hpp"

#include <zerograd/zerograd.hpp>

#include "bench_common.hpp"

namespace {

zg::Variable chain(const zg::Variable& x, int ops) {
  zg::Variable y = x;
  for (int i = 0; i < ops; ++i) y = (i % 2 == 0) ? y * 1.0001f : y + 0.5f;
  return y;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace zg::bench;
  int threads = 0, ops = 10000, repeats = 51, warmup = 5;
  cli::App app{"op_overhead: forward and backward of a chain of scalar ops (y * 1.0001, y + 0.5 alternating);\n"
               "ns per op each way, one JSON line per thread setting"};
  app.add_option("--threads", threads, "OpenBLAS / zerograd threads; 0 runs 1 and 2, one JSON line each")
      ->check(cli::Range(0, 256))->capture_default_str();
  app.add_option("--ops,--iterations", ops, "Ops in the chain")->check(cli::Range(2, 100000000))->capture_default_str();
  app.add_option("--repeats", repeats, "Timed chains (the median is reported)")->check(cli::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed chains first")->check(cli::Range(0, 100000))->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  const auto settings = thread_settings(threads);
  for (const int t : settings) {
    if (t != settings.front()) reset_peak_rss();
    zg::set_num_threads(t);
    zg::Variable x(1.0f, "x");
    x.requires_grad_();
    std::vector<double> fwd, bwd, down;
    double grad = 0;
    for (int r = -warmup; r < repeats; ++r) {
      x.cleargrad();
      auto t0 = Clock::now();
      zg::Variable y = chain(x, ops);
      const double f = since(t0);
      t0 = Clock::now();
      y.backward();
      const double b = since(t0);
      t0 = Clock::now();
      y = zg::Variable();
      const double d = since(t0);
      grad = x.grad().item();
      if (r < 0) continue;
      fwd.push_back(f);
      bwd.push_back(b);
      down.push_back(d);
    }
    const double fwd_ns = median(fwd) * 1e9 / ops, bwd_ns = median(bwd) * 1e9 / ops;
    const double expected = std::pow(1.0001, (ops + 1) / 2);
    std::printf(
        "{\"bench\": \"op_overhead\", \"threads\": %d, \"ops\": %d, \"repeats\": %d, \"warmup\": %d, "
        "\"forward_ns_per_op\": %.1f, \"backward_ns_per_op\": %.1f, \"total_ns_per_op\": %.1f, "
        "\"teardown_ns_per_op\": %.1f, \"forward_ms\": %.4f, \"backward_ms\": %.4f, \"x_grad\": %.6g, "
        "\"x_grad_expected\": %.6g, \"peak_rss_mb\": %.1f}\n",
        t, ops, repeats, warmup, fwd_ns, bwd_ns, fwd_ns + bwd_ns, median(down) * 1e9 / ops, median(fwd) * 1e3,
        median(bwd) * 1e3, grad, expected, peak_rss_mb());
    std::fflush(stdout);
  }
}
