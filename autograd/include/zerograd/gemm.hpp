#pragma once
// zerograd's GEMM on raw row-major arrays (defined in autograd/src/kernels/blas.cpp):
// public so that nn's convolutions, and a user's own kernels, run products
// the way matmul does: small float ones on libxsmm's kernels (Note [Small
// products]), the rest on OpenBLAS, large ones split over zerograd's pool
// (Note [Threads] in parallel.hpp). In zg::detail: for kernel writers, not a
// stable API. <cblas.h> is not included: it cannot share a translation unit
// with xtensor-blas's bundled CBLAS header (both define the CBLAS enums).
#include <cstddef>

namespace zg::detail {

// C = alpha op(A) op(B) + beta C, all row-major, where op(A) is M x K and
// op(B) is K x N. A transposed operand is read in place: BLAS gets the flag.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
          const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

}  // namespace zg::detail
