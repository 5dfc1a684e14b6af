// SimpleConvNet's convolution (x (100, 1, 28, 28), 30 filters 5x5, stride 1,
// pad 0) forward and forward + backward, and max_pool2d(2) on its output,
// float, one OpenBLAS thread. Prints one JSON line each.
//
// A conv is 2 N FN (C KH KW) (OH OW) flops per GEMM-sized pass; forward is one
// pass, forward + backward three (dx, dW) or two when x needs no gradient (the
// first layer of a network). The GEMM-only baseline runs the forward's
// per-sample sgemm calls on a ready column matrix: the gap to it is im2col and
// the bias. Rounds interleave the variants; each figure is the median.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include <cblas.h>

#include <zerograd/nn/conv.hpp>
#include <zerograd/zerograd.hpp>

#include "bench_arrays.hpp"
#include "bench_common.hpp"

namespace {

using zg::bench::Clock;
using zg::bench::median;
using zg::bench::random_array;
using zg::bench::seconds;
namespace F = zg::nn::functional;


// Median milliseconds per call of each variant, about 50 ms per variant per round.
std::vector<double> time_ms(const std::vector<std::function<void()>>& variants, int rounds = 11) {
  std::vector<int> reps;
  for (const auto& v : variants) reps.push_back(std::max(1, static_cast<int>(0.05 / std::max(seconds(v, 2), 1e-7))));
  std::vector<std::vector<double>> times(variants.size());
  for (int r = 0; r < rounds; ++r)
    for (std::size_t i = 0; i < variants.size(); ++i) times[i].push_back(seconds(variants[i], reps[i]));
  std::vector<double> ms;
  for (const auto& t : times) ms.push_back(median(t) * 1e3);
  return ms;
}

}  // namespace

int main() {
  openblas_set_num_threads(1);
  const int N = 100, C = 1, H = 28, W = 28, FN = 30, K = 5, OH = H - K + 1, OW = W - K + 1;
  const int patch = C * K * K, plane = OH * OW;
  const double flops = 2.0 * N * FN * patch * plane;

  const zg::Tensor<float> X = random_array({N, C, H, W}, 1), Wt = random_array({FN, C, K, K}, 2);
  const zg::Tensor<float> B = random_array({FN}, 3), G = random_array({N, FN, OH, OW}, 4);
  zg::Variable x(X), w(Wt), b(B), x_leaf(X), w_leaf(Wt), b_leaf(B);
  x_leaf.requires_grad_();
  w_leaf.requires_grad_();
  b_leaf.requires_grad_();
  zg::Variable::BackwardOptions seeded;
  seeded.seed = zg::Variable(G);

  // The forward's GEMMs alone, on a column matrix prepared once.
  const zg::Tensor<float> col = random_array({patch, plane}, 5);
  zg::Tensor<float> out = zg::Tensor<float>::from_shape({N, FN, OH, OW});
  const auto gemm_only = [&] {
    for (int n = 0; n < N; ++n)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, FN, plane, patch, 1.f, Wt.data(), patch, col.data(),
                  plane, 0.f, out.data() + n * FN * plane, plane);
  };
  const auto forward = [&] { F::conv2d(x, w, b); };
  const auto forward_backward = [&] {
    x_leaf.cleargrad();
    w_leaf.cleargrad();
    b_leaf.cleargrad();
    F::conv2d(x_leaf, w_leaf, b_leaf).backward(seeded);
  };
  const auto forward_backward_weights = [&] {
    w_leaf.cleargrad();
    b_leaf.cleargrad();
    F::conv2d(x, w_leaf, b_leaf).backward(seeded);
  };

  const zg::Tensor<float> Y = F::conv2d(x, w, b).data();
  zg::Variable y(Y), y_leaf(Y);
  y_leaf.requires_grad_();
  const auto pool_forward = [&] { F::max_pool2d(y, 2); };
  zg::Variable::BackwardOptions pool_seeded;
  pool_seeded.seed = zg::Variable(random_array({N, FN, OH / 2, OW / 2}, 6));
  const auto pool_forward_backward = [&] {
    y_leaf.cleargrad();
    F::max_pool2d(y_leaf, 2).backward(pool_seeded);
  };

  const std::vector<std::function<void()>> variants = {
      gemm_only, forward, forward_backward, forward_backward_weights, pool_forward, pool_forward_backward};
  for (const auto& v : variants) v();  // warm-up
  const std::vector<double> ms = time_ms(variants);
  const auto gflops = [&](double passes, double t_ms) { return passes * flops / (t_ms * 1e-3) / 1e9; };

  std::printf(
      "{\"op\": \"conv2d_forward\", \"x\": \"(%d, %d, %d, %d)\", \"W\": \"(%d, %d, %d, %d)\", \"threads\": 1, "
      "\"ms\": %.3f, \"gflops\": %.2f, \"gemm_only_ms\": %.3f, \"gemm_only_gflops\": %.2f}\n",
      N, C, H, W, FN, C, K, K, ms[1], gflops(1, ms[1]), ms[0], gflops(1, ms[0]));
  std::printf(
      "{\"op\": \"conv2d_forward_backward\", \"x\": \"(%d, %d, %d, %d)\", \"W\": \"(%d, %d, %d, %d)\", "
      "\"threads\": 1, \"ms\": %.3f, \"gflops\": %.2f, \"weights_only_ms\": %.3f, \"weights_only_gflops\": %.2f}\n",
      N, C, H, W, FN, C, K, K, ms[2], gflops(3, ms[2]), ms[3], gflops(2, ms[3]));
  std::printf(
      "{\"op\": \"max_pool2d\", \"x\": \"(%d, %d, %d, %d)\", \"kernel\": 2, \"stride\": 2, \"threads\": 1, "
      "\"forward_ms\": %.3f, \"forward_backward_ms\": %.3f}\n",
      N, FN, OH, OW, ms[4], ms[5]);
}
