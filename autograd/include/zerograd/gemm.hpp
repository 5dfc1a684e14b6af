#pragma once
// zerograd's GEMM on raw row-major arrays (defined in autograd/src/kernels/blas.cpp):
// public so that nn's convolutions, and a user's own kernels, run products
// the way matmul does: small float ones on libxsmm's kernels (Note [Small
// products]), the rest on OpenBLAS, large ones split over zerograd's pool
// (Note [Threads] in parallel.hpp). In zg::detail: for kernel writers, not a
// stable API. <cblas.h> is not included: it cannot share a translation unit
// with xtensor-blas's bundled CBLAS header (both define the CBLAS enums).
#include <cstddef>
#include <vector>

namespace zg::detail {

// C = alpha op(A) op(B) + beta C, all row-major, where op(A) is M x K and
// op(B) is K x N. A transposed operand is read in place: BLAS gets the flag.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
          const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

// A stack of products with numpy's batch broadcasting (batched_gemm.cpp):
// C[i] = op(A[a(i)]) op(B[b(i)]) for each position i of the batch shape,
// where C is row-major (batch..., M, N) and A, B are row-major stacks of
// matrices (transposed in place under their flag). a_stride and b_stride
// give, per batch axis, the elements between consecutive matrices of that
// operand, 0 where it broadcasts along that axis.
struct BatchedProduct {
  bool trans_a = false, trans_b = false;
  std::size_t M = 0, N = 0, K = 0;
  std::vector<std::size_t> batch, a_stride, b_stride;
  std::size_t count() const;  // matrices in the batch
};

// The product of op(a) (..., M, K) and op(b) (..., K, N) for arrays of these
// shapes (2 or more dimensions), batch axes broadcast. Throws ShapeError
// ("MatMul: ...") naming both shapes when they do not fit.
BatchedProduct batched_product(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b, bool trans_a,
                               bool trans_b);

template <class T>
void batched_gemm(const BatchedProduct& p, const T* A, const T* B, T* C);

}  // namespace zg::detail
