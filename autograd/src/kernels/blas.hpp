#pragma once
// The parts of zerograd's GEMM (blas.cpp) only autograd and its tests use;
// zg::detail::gemm itself is declared in the public zerograd/gemm.hpp.
#include <cstddef>

#include "zerograd/gemm.hpp"

namespace zg::detail {

// Note [Small products] in blas.cpp: a small float product runs on a
// kernel libxsmm generates for its shape. small_product_fits is the shape
// rule; small_product runs it there and returns false when it cannot (the
// rule says no, or libxsmm is missing or has no kernel): gemm then uses
// OpenBLAS.
// Whether libxsmm is built in and targets AVX2 or wider on this CPU, where
// every product that fits is expected to get a kernel (for the tests).
bool small_kernels_expected();
// The instruction set libxsmm's kernels run on: the shape rule differs.
enum class SmallIsa { avx2, avx512 };
SmallIsa small_isa();
bool small_product_fits(bool trans_a, bool trans_b, std::size_t N, std::size_t K, float alpha, float beta,
                        SmallIsa isa);
bool small_product(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha,
                   const float* A, std::size_t lda, const float* B, std::size_t ldb, float beta, float* C,
                   std::size_t ldc);

}  // namespace zg::detail
