#pragma once
// Random input arrays for the kernel benchmarks (conv_bench,
// matmul_efficiency). Kept out of bench_common.hpp, which the LibTorch
// baseline includes without zerograd.
#include <random>

#include <zerograd/variable.hpp>

namespace zg::bench {

// Uniform values in [-1, 1) from a fixed seed.
inline zg::Tensor<float> random_array(const zg::Shape& shape, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  zg::Tensor<float> t = zg::Tensor<float>::from_shape(shape);
  for (auto& v : t) v = dist(gen);
  return t;
}

}  // namespace zg::bench
