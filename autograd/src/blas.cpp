// cblas_sgemm / cblas_dgemm behind zg::detail::gemm (see blas.hpp for why
// this is its own unit).
#include "blas.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include <cblas.h>

#include "zerograd/error.hpp"
#include "zerograd/threads.hpp"

namespace zg::detail {
namespace {

[[noreturn]] __attribute__((noinline, cold)) void too_large(std::size_t n) {
  throw ValueError("gemm: dimension " + std::to_string(n) + " exceeds the BLAS integer range");
}

// Inline, with the throw out of line: each product converts nine sizes,
// and a small product takes about a microsecond.
inline blasint blas_int(std::size_t n) {
  if (n > static_cast<std::size_t>(INT_MAX)) too_large(n);
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

// Note [Small products]: on AVX-512 cores (SkylakeX, Cooperlake,
// SapphireRapids) OpenBLAS 0.3 runs a product of up to 10^6 multiply-adds
// on "small matrix" kernels, which skip packing the operands, when its
// permission rule allows. In row-major terms: always for op(A) B, for
// A op(B) with op(B) = B^T only when C has at most 1200 elements and
// K >= 32, never for A^T B^T. The kernels vectorize along C's rows. Two
// rewrites measured faster here (float; double was not measured):
// 1. A B^T outside the rule, as dx = gY W^T of a layer with few outputs:
//    copy B^T into a buffer and run A B. 100x50 = (100x10)(50x10)^T takes
//    0.93 us instead of 1.21; faster on all 101 such shapes measured
//    (M 16 to 200, N 10 to 300, K 4 to 100), by 14% to 60%.
// 2. A^T B with C 8 to 12 columns wide, as the weight gradient x^T gY of
//    a 10-class output layer: the kernel fills few of its 16 lanes. C^T =
//    B^T A, again A^T B but with long rows, then transposed: 50x10 =
//    (100x50)^T (100x10) takes 0.77 us instead of 1.26. It won for 8 to 12
//    columns and lost for 13 to 15.
// OpenBLAS's Haswell (AVX2) kernels have no small-matrix path; there the
// second rewrite lost, so both are limited to the AVX-512 cores.
bool small_kernel_core() {
  static const bool yes = [] {
    std::string core = openblas_get_corename();
    for (char& c : core) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return core == "skylakex" || core == "cooperlake" || core == "sapphirerapids";
  }();
  return yes;
}

constexpr std::size_t kSmallScratch = 1 << 16;  // floats in a rewrite's buffer (256 KB)

}  // namespace

SmallRoute small_route(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float beta) {
  if (M * N * K == 0 || double(M) * double(N) * double(K) > 1e6) return SmallRoute::direct;
  if (!trans_a && trans_b && (M * N > 1200 || K < 32) && K * N <= kSmallScratch) return SmallRoute::copy_b;
  if (trans_a && !trans_b && beta == 0.f && N >= 8 && N <= 12 && M >= 16 && M * N <= 1200)
    return SmallRoute::transpose_c;
  return SmallRoute::direct;
}

void small_product(SmallRoute route, bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                   float alpha, const float* A, std::size_t lda, const float* B, std::size_t ldb, float beta,
                   float* C, std::size_t ldc) {
  thread_local std::vector<float> scratch;
  switch (route) {
    case SmallRoute::copy_b:  // op(B) copied out as a K x N array, then op(A) times that
      scratch.resize(K * N);
      cblas_somatcopy(CblasRowMajor, flag(trans_b), blas_int(trans_b ? N : K), blas_int(trans_b ? K : N), 1.f, B,
                      ld(ldb), scratch.data(), ld(N));
      gemm_one_thread<float>(trans_a, false, M, N, K, alpha, A, lda, scratch.data(), N, beta, C, ldc);
      return;
    case SmallRoute::transpose_c:  // C^T = op(B)^T op(A)^T (N x M), then transposed into C
      scratch.resize(N * M);
      gemm_one_thread<float>(!trans_b, !trans_a, N, M, K, alpha, B, ldb, A, lda, 0.f, scratch.data(), M);
      cblas_somatcopy(CblasRowMajor, CblasTrans, blas_int(N), blas_int(M), 1.f, scratch.data(), ld(M), C,
                      ld(ldc));
      return;
    case SmallRoute::direct:
      break;
  }
  gemm_one_thread<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void set_blas_threads(int n) { openblas_set_num_threads(n); }

}  // namespace zg::detail

namespace zg {

std::string blas_info() {
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  std::string info = openblas_get_config();
  info += ", core ";
  info += openblas_get_corename();
  info += forced && *forced ? std::string(" (OPENBLAS_CORETYPE=") + forced + ")" : std::string(" (OPENBLAS_CORETYPE unset)");
  return info;
}

}  // namespace zg

namespace zg::detail {

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
  if (M == 0 || N == 0) return;  // no output: some BLAS calls reject empty arrays
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const bool by_rows = M >= N || N < 2 * kMinBlock;
  const std::size_t extent = by_rows ? M : N;
  const std::size_t chunks = flops < kSplitFlops ? 1 : chunk_count(extent, kMinBlock);
  if (chunks <= 1) {
    if constexpr (std::is_same_v<T, float>)
      if (small_kernel_core()) {
        const SmallRoute route = small_route(trans_a, trans_b, M, N, K, beta);
        if (route != SmallRoute::direct) {
          small_product(route, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
          return;
        }
      }
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
