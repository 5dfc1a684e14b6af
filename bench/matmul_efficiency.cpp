// zg::matmul and zg::linear (forward, forward + backward) against raw
// cblas_sgemm on MLP and conv-like shapes, float, at 1 and 2 threads (raw:
// OpenBLAS's own threads; zerograd: its pool, OpenBLAS at one thread).
// Prints one JSON line per shape and thread count: GFLOPS of each variant and
// zg / raw ratios.
//
// Forward is one GEMM (2 M K N flops); forward + backward is three (the raw
// baseline runs the same three with transpose flags). Rounds interleave the
// variants so a noisy neighbour slows them alike; each figure is the median.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <cblas.h>
#if defined(ZG_BENCH_DNNL)
#include <dnnl.h>
#endif
#if defined(ZG_BENCH_LIBXSMM)
#include <libxsmm.h>
#endif

#include <zerograd/zerograd.hpp>

#include "bench_arrays.hpp"
#include "bench_common.hpp"

namespace {

using zg::bench::Clock;
using zg::bench::median;
using zg::bench::random_array;
using zg::bench::seconds;


struct Shape3 {
  int M, K, N;
};

void run(const Shape3& s, int threads) {
  zg::set_num_threads(threads);
  const int M = s.M, K = s.K, N = s.N;
  const auto Mu = static_cast<std::size_t>(M), Ku = static_cast<std::size_t>(K), Nu = static_cast<std::size_t>(N);
  zg::Tensor<float> A = random_array({Mu, Ku}, 1), B = random_array({Ku, Nu}, 2), G = random_array({Mu, Nu}, 3);
  zg::Tensor<float> bias = random_array({1, Nu}, 4);
  bias.reshape({Nu});
  zg::Tensor<float> C = zg::Tensor<float>::from_shape({Mu, Nu});
  zg::Tensor<float> dA = zg::Tensor<float>::from_shape({Mu, Ku}), dB = zg::Tensor<float>::from_shape({Ku, Nu});

  zg::Variable a(A), b(B), bias_var(bias), a_leaf(A), b_leaf(B), bias_leaf(bias);
  a_leaf.requires_grad_();
  b_leaf.requires_grad_();
  bias_leaf.requires_grad_();
  zg::Variable::BackwardOptions seeded;
  seeded.seed = zg::Variable(G);

  // zerograd's pool keeps OpenBLAS at one thread; the raw rows get OpenBLAS's own.
  const auto raw_threads = [threads] { openblas_set_num_threads(threads); };
  const auto zg_threads = [] { openblas_set_num_threads(1); };
  const auto raw_fwd = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.f, A.data(), K, B.data(), N,
                0.f, C.data(), N);
  };
  const auto raw_fwd_bwd = [&] {
    raw_fwd();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, N, 1.f, G.data(), N, B.data(), N,
                0.f, dA.data(), K);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, M, 1.f, A.data(), K, G.data(), N,
                0.f, dB.data(), N);
  };
  const auto zg_matmul = [&] { zg::matmul(a, b); };
  const auto zg_linear = [&] { zg::linear(a, b, bias_var); };
  const auto zg_matmul_bwd = [&] {
    a_leaf.cleargrad();
    b_leaf.cleargrad();
    zg::matmul(a_leaf, b_leaf).backward(seeded);
  };
  const auto zg_linear_bwd = [&] {
    a_leaf.cleargrad();
    b_leaf.cleargrad();
    bias_leaf.cleargrad();
    zg::linear(a_leaf, b_leaf, bias_leaf).backward(seeded);
  };

  const std::vector<std::function<void()>> variants = {raw_fwd, zg_matmul, zg_linear,
                                                       raw_fwd_bwd, zg_matmul_bwd, zg_linear_bwd};
  const double flops = 2.0 * M * K * N;
  // About 20 ms per variant per round, estimated once OpenBLAS is warm: its
  // first calls (buffer set-up) made a cold estimate 50x too long, so the
  // small shape ran 47 calls per sample at 1 thread instead of ~17,000.
  seconds(raw_fwd, 10);
  const int reps = std::max(1, static_cast<int>(0.02 / std::max(seconds(raw_fwd, 20), 1e-7)));
  zg_threads();
  const auto timed = [&](std::size_t i) {
    const bool raw = i == 0 || i == 3;
    raw ? raw_threads() : zg_threads();
    const double t = seconds(variants[i], reps);
    zg_threads();
    // OpenBLAS's own workers spin for about 2^28 cycles (0.1 s) after a
    // threaded call; the zerograd variant timed right after would share the
    // two cores with them. Let them go to sleep first.
    if (raw && threads > 1) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    return t;
  };
  for (std::size_t i = 0; i < variants.size(); ++i) timed(i);  // warm-up
  std::vector<std::vector<double>> times(variants.size());
  for (int round = 0; round < 15; ++round)
    for (std::size_t i = 0; i < variants.size(); ++i) times[i].push_back(timed(i));

  std::vector<double> gflops;
  for (std::size_t i = 0; i < variants.size(); ++i)
    gflops.push_back((i < 3 ? 1 : 3) * flops / median(times[i]) / 1e9);
  std::printf(
      "{\"shape\": \"%dx%d @ %dx%d\", \"threads\": %d, \"reps\": %d, "
      "\"raw_sgemm_fwd_gflops\": %.2f, \"matmul_fwd_gflops\": %.2f, \"linear_fwd_gflops\": %.2f, "
      "\"raw_sgemm_fwd_bwd_gflops\": %.2f, \"matmul_fwd_bwd_gflops\": %.2f, \"linear_fwd_bwd_gflops\": %.2f, "
      "\"matmul_fwd_ratio\": %.3f, \"linear_fwd_ratio\": %.3f, "
      "\"matmul_fwd_bwd_ratio\": %.3f, \"linear_fwd_bwd_ratio\": %.3f}\n",
      M, K, K, N, threads, reps, gflops[0], gflops[1], gflops[2], gflops[3], gflops[4], gflops[5],
      gflops[1] / gflops[0], gflops[2] / gflops[0], gflops[4] / gflops[3], gflops[5] / gflops[3]);
  std::fflush(stdout);
}

}  // namespace

// The instruction set oneDNN's kernels run with (ONEDNN_MAX_CPU_ISA caps it).
std::string onednn_isa() {
#if defined(ZG_BENCH_DNNL)
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
#else
  return "not built";
#endif
}

// The code path libxsmm generates its kernels for (LIBXSMM_TARGET caps it).
std::string libxsmm_arch() {
#if defined(ZG_BENCH_LIBXSMM)
  libxsmm_init();
  return libxsmm_get_target_arch();
#else
  return "not built";
#endif
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--blas-info") {  // bench/compare prints the kernel it ran on
    std::printf("%s\n", zg::blas_info().c_str());
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "--isa-report") {  // and the instruction set of each library
    std::printf("{\"zerograd\": \"%s\", \"onednn\": \"%s\", \"libxsmm\": \"%s\", \"openblas\": \"%s\"}\n",
                zg::simd_isa().c_str(), onednn_isa().c_str(), libxsmm_arch().c_str(), openblas_get_corename());
    return 0;
  }
  for (int threads : {1, 2})
    for (const Shape3& s : {Shape3{100, 784, 50}, Shape3{100, 50, 10}, Shape3{100, 4320, 100}}) run(s, threads);
}
