// Convolution forward and forward + backward, max_pool2d(2) on its output,
// and the block conv - relu - pool forward + backward as three ops and as
// one (conv2d_relu_pool, Note [Conv2d with ReLU and pooling]), float, at 1
// and 2 threads (zg::set_num_threads: zerograd's pool,
// OpenBLAS at one thread). Shapes: SimpleConvNet's conv (x (100, 1, 28, 28),
// 30 filters 5x5, pad 0) and DeepConvNet's six 3x3 convs at batch 100
// (16-16-32-32-64-64 filters, pad 1 except the fourth's 2).
// Prints one JSON line per op, shape and thread count.
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

struct ConvShape {
  int N, C, H, W, FN, K, P;
};

void run(const ConvShape& s, int threads) {
  zg::set_num_threads(threads);
  const int N = s.N, C = s.C, H = s.H, W = s.W, FN = s.FN, K = s.K, P = s.P;
  const int OH = H + 2 * P - K + 1, OW = W + 2 * P - K + 1;
  const int patch = C * K * K, plane = OH * OW;
  const double flops = 2.0 * N * FN * patch * plane;
  const auto u = [](int v) { return static_cast<std::size_t>(v); };

  const zg::Tensor<float> X = random_array({u(N), u(C), u(H), u(W)}, 1), Wt = random_array({u(FN), u(C), u(K), u(K)}, 2);
  const zg::Tensor<float> B = random_array({u(FN)}, 3), G = random_array({u(N), u(FN), u(OH), u(OW)}, 4);
  zg::Variable x(X), w(Wt), b(B), x_leaf(X), w_leaf(Wt), b_leaf(B);
  x_leaf.requires_grad_();
  w_leaf.requires_grad_();
  b_leaf.requires_grad_();
  zg::Variable::BackwardOptions seeded;
  seeded.seed = zg::Variable(G);

  // The forward's GEMMs alone, one thread, on a column matrix prepared once.
  const zg::Tensor<float> col = random_array({u(patch), u(plane)}, 5);
  zg::Tensor<float> out = zg::Tensor<float>::from_shape({u(N), u(FN), u(OH), u(OW)});
  const auto gemm_only = [&] {
    for (int n = 0; n < N; ++n)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, FN, plane, patch, 1.f, Wt.data(), patch, col.data(),
                  plane, 0.f, out.data() + n * FN * plane, plane);
  };
  const auto forward = [&] { F::conv2d(x, w, b, 1, P); };
  const auto forward_backward = [&] {
    x_leaf.cleargrad();
    w_leaf.cleargrad();
    b_leaf.cleargrad();
    F::conv2d(x_leaf, w_leaf, b_leaf, 1, P).backward(seeded);
  };
  const auto forward_backward_weights = [&] {
    w_leaf.cleargrad();
    b_leaf.cleargrad();
    F::conv2d(x, w_leaf, b_leaf, 1, P).backward(seeded);
  };

  const zg::Tensor<float> Y = F::conv2d(x, w, b, 1, P).data();
  zg::Variable y(Y), y_leaf(Y);
  y_leaf.requires_grad_();
  const auto pool_forward = [&] { F::max_pool2d(y, 2); };
  zg::Variable::BackwardOptions pool_seeded;
  pool_seeded.seed = zg::Variable(random_array({u(N), u(FN), u(OH / 2), u(OW / 2)}, 6));
  const auto pool_forward_backward = [&] {
    y_leaf.cleargrad();
    F::max_pool2d(y_leaf, 2).backward(pool_seeded);
  };

  const auto block_separate = [&] {
    for (zg::Variable* v : {&x_leaf, &w_leaf, &b_leaf}) v->cleargrad();
    F::max_pool2d(zg::relu(F::conv2d(x_leaf, w_leaf, b_leaf, 1, P)), 2).backward(pool_seeded);
  };
  const auto block_fused = [&] {
    for (zg::Variable* v : {&x_leaf, &w_leaf, &b_leaf}) v->cleargrad();
    F::conv2d_relu_pool(x_leaf, w_leaf, b_leaf, 1, P).backward(pool_seeded);
  };

  const std::vector<std::function<void()>> variants = {gemm_only,    forward,         forward_backward,
                                                       forward_backward_weights,      pool_forward,
                                                       pool_forward_backward,         block_separate,
                                                       block_fused};
  for (const auto& v : variants) v();  // warm-up
  const std::vector<double> ms = time_ms(variants);
  const auto gflops = [&](double passes, double t_ms) { return passes * flops / (t_ms * 1e-3) / 1e9; };

  std::printf(
      "{\"op\": \"conv2d_forward\", \"x\": \"(%d, %d, %d, %d)\", \"W\": \"(%d, %d, %d, %d)\", \"pad\": %d, "
      "\"threads\": %d, \"ms\": %.3f, \"gflops\": %.2f, \"gemm_only_1_thread_ms\": %.3f, "
      "\"gemm_only_1_thread_gflops\": %.2f}\n",
      N, C, H, W, FN, C, K, K, P, threads, ms[1], gflops(1, ms[1]), ms[0], gflops(1, ms[0]));
  std::printf(
      "{\"op\": \"conv2d_forward_backward\", \"x\": \"(%d, %d, %d, %d)\", \"W\": \"(%d, %d, %d, %d)\", "
      "\"pad\": %d, \"threads\": %d, \"ms\": %.3f, \"gflops\": %.2f, \"weights_only_ms\": %.3f, "
      "\"weights_only_gflops\": %.2f}\n",
      N, C, H, W, FN, C, K, K, P, threads, ms[2], gflops(3, ms[2]), ms[3], gflops(2, ms[3]));
  std::printf(
      "{\"op\": \"max_pool2d\", \"x\": \"(%d, %d, %d, %d)\", \"kernel\": 2, \"stride\": 2, \"threads\": %d, "
      "\"forward_ms\": %.3f, \"forward_backward_ms\": %.3f}\n",
      N, FN, OH, OW, threads, ms[4], ms[5]);
  std::printf(
      "{\"op\": \"conv_relu_pool_forward_backward\", \"x\": \"(%d, %d, %d, %d)\", \"W\": \"(%d, %d, %d, %d)\", "
      "\"pad\": %d, \"threads\": %d, \"separate_ms\": %.3f, \"fused_ms\": %.3f, \"fused_over_separate\": %.3f}\n",
      N, C, H, W, FN, C, K, K, P, threads, ms[6], ms[7], ms[7] / ms[6]);
  std::fflush(stdout);
}

}  // namespace

int main() {
  const std::vector<ConvShape> shapes = {{100, 1, 28, 28, 30, 5, 0},  {100, 1, 28, 28, 16, 3, 1},  {100, 16, 28, 28, 16, 3, 1},
                                         {100, 16, 14, 14, 32, 3, 1}, {100, 32, 14, 14, 32, 3, 2}, {100, 32, 8, 8, 64, 3, 1},
                                         {100, 64, 8, 8, 64, 3, 1}};
  for (int threads : {1, 2})
    for (const ConvShape& s : shapes) run(s, threads);
}
