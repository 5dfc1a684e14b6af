#pragma once
// Raw GEMM on row-major arrays, defined in blas.cpp. <cblas.h> stays in that
// one unit: it cannot share a translation unit with xtensor-blas's bundled
// CBLAS header (both define the CBLAS enums).
#include <cstddef>

namespace zg::detail {

// C = alpha op(A) op(B) + beta C, all row-major, where op(A) is M x K and
// op(B) is K x N. A transposed operand is read in place: BLAS gets the flag.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
          const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

// Note [Small products] in blas.cpp: a small float product runs on a
// kernel libxsmm generates for its shape. small_product_fits is the shape
// rule; small_product runs it there and returns false when it cannot (the
// rule says no, or libxsmm is missing or has no kernel): gemm then uses
// OpenBLAS.
bool small_product_fits(bool trans_a, std::size_t N, std::size_t K, float alpha, float beta);
bool small_product(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha,
                   const float* A, std::size_t lda, const float* B, std::size_t ldb, float beta, float* C,
                   std::size_t ldc);

}  // namespace zg::detail
