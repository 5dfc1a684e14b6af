// cblas_sgemm / cblas_dgemm behind zg::detail::gemm (see blas.hpp for why
// this is its own unit).
#include "blas.hpp"

#include <algorithm>
#include <climits>
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

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
          const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, flag(trans_a), flag(trans_b), blas_int(M), blas_int(N), blas_int(K),
                alpha, A, ld(lda), B, ld(ldb), beta, C, ld(ldc));
  else
    cblas_dgemm(CblasRowMajor, flag(trans_a), flag(trans_b), blas_int(M), blas_int(N), blas_int(K),
                alpha, A, ld(lda), B, ld(ldb), beta, C, ld(ldc));
}

#define ZG_INSTANTIATE(T)                                                                      \
  template void gemm<T>(bool, bool, std::size_t, std::size_t, std::size_t, T, const T*,        \
                        std::size_t, const T*, std::size_t, T, T*, std::size_t);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::detail

// ---- thread setting --------------------------------------------------------------

#include <thread>

#include "zerograd/threads.hpp"

namespace zg {
namespace {
int cores() { return std::max(1u, std::thread::hardware_concurrency()); }
int& thread_count() {
  static int n = [] {
    openblas_set_num_threads(cores());
    return cores();
  }();
  return n;
}
}  // namespace

void set_num_threads(int n) {
  thread_count() = n <= 0 ? cores() : n;
  openblas_set_num_threads(thread_count());
}

int num_threads() { return thread_count(); }

}  // namespace zg
