// A very long graph: x a 0-d float Variable with requires_grad, then --ops
// (1,000,000) scalar ops alternating y = y * 1.0001f and y = y + 0.5f.
// Forward, backward and teardown (dropping the last handle) are timed
// separately, medians over --repeats (total_s: median of the per-chain sums).
// Run --threads N once per process for comparable memory figures: with both
// settings in one process the second starts after malloc_trim, not fresh. Memory is measured on the first chain
// only (later chains reuse memory the allocator kept): RSS before, after
// forward and its peak (VmHWM reset at the start), as MB above the start and
// as bytes per op. One JSON line per thread setting. It must not crash: the
// engine's backward and teardown are iterative.
#include <cmath>
#include <cstdio>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string>
#include <vector>

#include "cli.hpp"

#include <zerograd/zerograd.hpp>

#include "bench_common.hpp"

int main(int argc, char** argv) {
  using namespace zg::bench;
  int threads = 0, ops = 1000000, repeats = 3;
  cli::App app{"deep_chain: forward, backward and teardown of a chain of 1,000,000 scalar ops;\n"
               "seconds each and peak memory per op, one JSON line per thread setting"};
  app.add_option("--threads", threads, "OpenBLAS / zerograd threads; 0 runs 1 and 2, one JSON line each")
      ->check(cli::Range(0, 256))->capture_default_str();
  app.add_option("--ops,--iterations", ops, "Ops in the chain")->check(cli::Range(2, 1000000000))->capture_default_str();
  app.add_option("--repeats", repeats, "Chains (times are medians; memory is the first chain's)")
      ->check(cli::Range(1, 1000))->capture_default_str();
  ZG_CLI_PARSE(app, argc, argv);

  for (const int t : thread_settings(threads)) {
    zg::set_num_threads(t);
    zg::Variable x(1.0f, "x");
    x.requires_grad_();
    std::vector<double> fwd, bwd, down;
    double start_mb = 0, after_forward_mb = 0, peak_mb = 0, grad = 0;
    bool peak_reset = false;
    for (int r = 0; r < repeats; ++r) {
      x.cleargrad();
      if (r == 0) {
#ifdef __GLIBC__
        malloc_trim(0);  // hand back what an earlier setting freed, so this one starts near fresh
#endif
        start_mb = rss_mb();
        peak_reset = reset_peak_rss();
      }
      auto t0 = Clock::now();
      zg::Variable y = x;
      for (int i = 0; i < ops; ++i) y = (i % 2 == 0) ? y * 1.0001f : y + 0.5f;
      fwd.push_back(since(t0));
      if (r == 0) after_forward_mb = rss_mb();
      t0 = Clock::now();
      y.backward();
      bwd.push_back(since(t0));
      t0 = Clock::now();
      y = zg::Variable();
      down.push_back(since(t0));
      if (r == 0) peak_mb = peak_rss_mb();
      grad = x.grad().item();
    }
    const double f = median(fwd), b = median(bwd), d = median(down);
    const double mb = 1024.0 * 1024.0;
    std::string reps;
    std::vector<double> totals;
    for (std::size_t i = 0; i < fwd.size(); ++i) {
      totals.push_back(fwd[i] + bwd[i] + down[i]);
      char buf[80];
      std::snprintf(buf, sizeof buf, "%s[%.4f, %.4f, %.4f]", i ? ", " : "", fwd[i], bwd[i], down[i]);
      reps += buf;
    }
    std::printf(
        "{\"bench\": \"deep_chain\", \"threads\": %d, \"ops\": %d, \"repeats\": %d, \"forward_s\": %.4f, "
        "\"backward_s\": %.4f, \"teardown_s\": %.4f, \"total_s\": %.4f, \"fwd_bwd_teardown_s_reps\": [%s], \"start_rss_mb\": %.1f, "
        "\"graph_rss_mb\": %.1f, \"peak_rss_delta_mb\": %.1f, \"graph_bytes_per_op\": %.1f, "
        "\"peak_bytes_per_op\": %.1f, \"peak_rss_mb\": %.1f, \"peak_reset\": %s, \"x_grad\": %.6g, "
        "\"x_grad_expected\": %.6g}\n",
        t, ops, repeats, f, b, d, median(totals), reps.c_str(), start_mb, after_forward_mb - start_mb, peak_mb - start_mb,
        (after_forward_mb - start_mb) * mb / ops, (peak_mb - start_mb) * mb / ops, peak_mb,
        peak_reset ? "true" : "false", grad, std::pow(1.0001, (ops + 1) / 2));
    std::fflush(stdout);
  }
}
