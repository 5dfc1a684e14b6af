// cblas_sgemm / cblas_dgemm behind zg::detail::gemm (see blas.hpp for why
// this is its own unit).
#include "kernels/blas.hpp"
#include "zerograd/parallel.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include <cblas.h>
#ifdef ZEROGRAD_HAVE_LIBXSMM
#include <libxsmm.h>
#endif

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

// Note [Small products]: OpenBLAS copies ("packs") both operands into
// blocks before its kernels run. On the shapes of MLP layers and of
// convolutions as GEMM (small K and N, any M) the packing is 20-40% of the
// time, and which kernels run depends on OPENBLAS_CORETYPE (the Haswell
// ones, forced on some AVX-512 machines, are 1.3-1.6x slower here than
// SkylakeX's). libxsmm (Debian's libxsmm-dev) generates a kernel for each
// shape at run time, for the CPU it runs on, that reads the operands in
// place. Measured here on an AVX-512 Xeon, float, one thread, against
// OpenBLAS's Haswell and SkylakeX kernels: 100x50 @ 50x10 takes 0.73 us
// against 1.71 and 1.16; 100x784 @ 784x50 45 us against 81 and 62. Over 63
// MLP-like shapes libxsmm won all with K <= 1024, N <= 1024 and K N <= 65536
// under the Haswell kernels (1.1-2.7x), and all but three under SkylakeX's
// (0.84-0.96x, where op(A) = A^T with K = 576, and 256^3); it lost with
// large K or N (64x576 @ 576x5000: 0.3-0.5x). On the 18 per-sample GEMMs of
// DeepConvNet's convolutions (forward, dW, dcol; op(B) up to 144x784) it
// ran at 1.6-3.2x the Haswell kernels and 1.0-1.9x SkylakeX's, except for
// the first layer's dW, 16x9 = (16x784)(9x784)^T (0.68x SkylakeX: copying
// out a 9-wide B^T). So a float product goes to libxsmm when K <= 1024,
// N <= 1024, K N <= 131072, K <= 256 if A is transposed, and N >= 16 or
// K <= 256 if B is; alpha = 1 and beta in {0, 1} (what its kernels take).
// Its kernels read op(B) = B only: a transposed B is first copied out (at
// most 512 KB). Everything else, double, and any shape libxsmm cannot
// generate (it returns no kernel, e.g. on a CPU it does not know) runs on
// OpenBLAS. Measured again with prefetch off (as called here) on 30 MLP
// shapes the rule admits: 1.4-2.5x the Haswell kernels, 1.0-1.6x SkylakeX's,
// 1.5-2.9x Zen's.
// All of that was AVX-512. libxsmm's AVX2 kernels (LIBXSMM_TARGET=hsw on
// the same machine, against OpenBLAS's Zen kernels, one thread, M = 100,
// K in {10, 50, 100, 144, 256, 784}, N in {10, 16, 30, 50, 64, 100, 144,
// 784}, op(A) and op(B) each plain or transposed: 130 shapes) are fast only
// where N is a multiple of 16, two 8-float registers: there 0.95-1.4x
// (N = 16, 64, 144, 784), elsewhere 0.3-0.9x for K >= 50 (N = 10, 30, 50;
// 100x784 @ 784x50 131 us against 87, 100x50 @ 50x10 3.9 against 2.2), and
// about 1.0x at N = 100. With K <= 16 they won at every N (0.94-2.8x).
// So on a CPU where libxsmm targets AVX2 (below AVX-512), a product goes to
// it only when, besides the rule above, N is a multiple of 16 or K <= 16;
// small_product_fits takes the ISA libxsmm runs on, and the tests check
// both rules and run the products once more with LIBXSMM_TARGET=hsw.
// Measured with build/bench/matmul_efficiency and the sweep of this Note
// (each shape timed alternately, median of 7).
constexpr std::size_t kSmallOperand = 1 << 17;  // floats in op(B) (512 KB)

}  // namespace

bool small_product_fits(bool trans_a, bool trans_b, std::size_t N, std::size_t K, float alpha, float beta,
                        SmallIsa isa) {
  return alpha == 1.f && (beta == 0.f || beta == 1.f) && K <= 1024 && N <= 1024 && K * N <= kSmallOperand &&
         (!trans_a || K <= 256) && (!trans_b || N >= 16 || K <= 256) &&
         (isa == SmallIsa::avx512 || N % 16 == 0 || K <= 16);
}

#ifdef ZEROGRAD_HAVE_LIBXSMM
bool small_kernels_expected() { return libxsmm_get_target_archid() >= LIBXSMM_X86_AVX2; }

SmallIsa small_isa() {
  // libxsmm's target is fixed once it has looked at the CPU (or at LIBXSMM_TARGET).
  static const SmallIsa isa =
      libxsmm_get_target_archid() >= LIBXSMM_X86_AVX512 ? SmallIsa::avx512 : SmallIsa::avx2;
  return isa;
}

bool small_product(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha,
                   const float* A, std::size_t lda, const float* B, std::size_t ldb, float beta, float* C,
                   std::size_t ldc) {
  if (!small_product_fits(trans_a, trans_b, N, K, alpha, beta, small_isa()) || M > static_cast<std::size_t>(INT_MAX))
    return false;
  // Row-major C = op(A) B is column-major C^T = B^T op(A)^T: B's array is
  // libxsmm's first operand as it is, A's its second (transposed if A is).
  const int flags = trans_a ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const libxsmm_blasint m = blas_int(N), n = blas_int(M), k = blas_int(K);
  const libxsmm_blasint ld_first = trans_b ? m : blas_int(ldb), ld_second = blas_int(lda), ld_c = blas_int(ldc);
  // No prefetch: a null prefetch would mean libxsmm's automatic choice, a
  // kernel that takes three more (prefetch) pointers than the call passes.
  const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
  const libxsmm_smmfunction kernel =
      libxsmm_smmdispatch(m, n, k, &ld_first, &ld_second, &ld_c, &alpha, &beta, &flags, &prefetch);
  if (!kernel) return false;
  const float* first = B;
  if (trans_b) {  // op(B) = B^T copied out as a K x N array
    thread_local std::vector<float> scratch;
    scratch.resize(K * N);
    cblas_somatcopy(CblasRowMajor, CblasTrans, blas_int(N), blas_int(K), 1.f, B, ld(ldb), scratch.data(), ld(N));
    first = scratch.data();
  }
  kernel(first, A, C);
  return true;
}
#else
bool small_kernels_expected() { return false; }

SmallIsa small_isa() { return SmallIsa::avx2; }

bool small_product(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                   const float*, std::size_t, float, float*, std::size_t) {
  return false;  // built without libxsmm: OpenBLAS runs every product
}
#endif

namespace {

template <class T>
void gemm_block(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
                std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    if (small_product(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
  gemm_one_thread<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace

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
// exactly one thread. A block may round differently from the whole product
// (docs/details.md, Determinism); the same thread count always cuts the same blocks.
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
    gemm_block<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  parallel_chunks(chunks, [&](std::size_t k) {
    const std::size_t lo = chunk_begin(extent, chunks, k), hi = chunk_begin(extent, chunks, k + 1);
    if (by_rows)  // rows lo..hi of op(A) and of C
      gemm_block<T>(trans_a, trans_b, hi - lo, N, K, alpha, trans_a ? A + lo : A + lo * lda, lda, B, ldb, beta,
                    C + lo * ldc, ldc);
    else  // columns lo..hi of op(B) and of C
      gemm_block<T>(trans_a, trans_b, M, hi - lo, K, alpha, A, lda, trans_b ? B + lo * ldb : B + lo, ldb, beta,
                    C + lo, ldc);
  });
}

#define ZG_INSTANTIATE(T)                                                                      \
  template void gemm<T>(bool, bool, std::size_t, std::size_t, std::size_t, T, const T*,        \
                        std::size_t, const T*, std::size_t, T, T*, std::size_t);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::detail
