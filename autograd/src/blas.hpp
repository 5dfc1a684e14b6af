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

// Note [Small products] in blas.cpp: how gemm runs a small float product
// on OpenBLAS's AVX-512 cores. small_route applies the shape rules only
// (gemm checks the core first); small_product runs a route on any core.
// transpose_c overwrites C: small_route picks it only for beta = 0.
enum class SmallRoute { direct, copy_b, transpose_c };
SmallRoute small_route(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float beta);
void small_product(SmallRoute route, bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                   float alpha, const float* A, std::size_t lda, const float* B, std::size_t ldb, float beta,
                   float* C, std::size_t ldc);

}  // namespace zg::detail
