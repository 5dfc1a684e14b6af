// cblas_sgemm / cblas_dgemm behind zg::detail::gemm (see blas.hpp for why
// this is its own unit).
#include "blas.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <type_traits>

#include <cblas.h>

#include "zerograd/error.hpp"

namespace zg::detail {
namespace {

blasint blas_int(std::size_t n) {
  if (n > static_cast<std::size_t>(INT_MAX))
    throw ValueError("gemm: dimension " + std::to_string(n) + " exceeds the BLAS integer range");
  return static_cast<blasint>(n);
}

CBLAS_TRANSPOSE flag(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

// BLAS requires a leading dimension of at least 1, even for empty operands.
blasint ld(std::size_t n) { return blas_int(std::max<std::size_t>(n, 1)); }

template <class T>
void gemm_one_thread(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
                     const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, flag(trans_a), flag(trans_b), blas_int(M), blas_int(N), blas_int(K),
                alpha, A, ld(lda), B, ld(ldb), beta, C, ld(ldc));
  else
    cblas_dgemm(CblasRowMajor, flag(trans_a), flag(trans_b), blas_int(M), blas_int(N), blas_int(K),
                alpha, A, ld(lda), B, ld(ldb), beta, C, ld(ldc));
}

}  // namespace

void set_blas_threads(int n) { openblas_set_num_threads(n); }

// Below about 2 MFLOP a GEMM takes some 20 microseconds on one core and
// splitting it costs more than it saves.
constexpr double kSplitFlops = 2e6;
// Blocks narrower than this run at a fraction of the kernel's speed.
constexpr std::size_t kMinBlock = 16;

// Note [Threads] in parallel.hpp: OpenBLAS runs single-threaded and a large
// product is cut into blocks of rows of C (or of columns when C has few
// rows), one single-threaded GEMM per block. Each block of C is written by
// exactly one thread, with the same arithmetic as the whole product.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
          const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  if (K == 0) {  // C = beta C, written here rather than trusting each BLAS's empty-product path
    for (std::size_t i = 0; i < M; ++i)
      for (std::size_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const bool by_rows = M >= N || N < 2 * kMinBlock;
  const std::size_t extent = by_rows ? M : N;
  const std::size_t chunks = flops < kSplitFlops ? 1 : chunk_count(extent, kMinBlock);
  if (chunks <= 1) {
    gemm_one_thread<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  parallel_chunks(chunks, [&](std::size_t k) {
    const std::size_t lo = chunk_begin(extent, chunks, k), hi = chunk_begin(extent, chunks, k + 1);
    if (by_rows)  // rows lo..hi of op(A) and of C
      gemm_one_thread<T>(trans_a, trans_b, hi - lo, N, K, alpha, trans_a ? A + lo : A + lo * lda, lda, B, ldb,
                         beta, C + lo * ldc, ldc);
    else  // columns lo..hi of op(B) and of C
      gemm_one_thread<T>(trans_a, trans_b, M, hi - lo, K, alpha, A, lda, trans_b ? B + lo * ldb : B + lo, ldb,
                         beta, C + lo, ldc);
  });
}

#define ZG_INSTANTIATE(T)                                                                      \
  template void gemm<T>(bool, bool, std::size_t, std::size_t, std::size_t, T, const T*,        \
                        std::size_t, const T*, std::size_t, T, T*, std::size_t);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::detail
