// Note [Few patch rows]: a weight gradient with one input channel and a
// 3x3 kernel (the first layer of DeepConvNet) is per sample gW (FN x 9) +=
// gy (FN x M) col (9 x M)^T with M in the hundreds: a GEMM whose output is
// 144 numbers, where OpenBLAS spends its time packing and libxsmm is not
// used (Note [Small products]: its copy of a 9-wide B^T lost). Here each gy
// row meets up to 8 patch rows at a time in SIMD registers. DeepConvNet's
// first layer, batch 100, one thread: 0.45 ms against 0.80 (im2col
// included). From 16 patch rows on, libxsmm's kernels win (SimpleConvNet's
// 5x5: 1.08 ms against 2.44 with this), so they keep those.
#include "kernels/few_rows.hpp"

#include <xsimd/xsimd.hpp>

#include "zerograd/simd_dispatch.hpp"

namespace zg::nn::kernels {
namespace ZG_SIMD_VARIANT {  // Note [Kernels per instruction set]
namespace {

template <class T, std::size_t KB>
void few_rows_block(const T* g, const T* col, std::size_t M, T* gw) {
  using B = xsimd::batch<T>;
  constexpr std::size_t L = B::size;
  B acc[KB];
  for (auto& a : acc) a = B(T(0));
  std::size_t m = 0;
  for (; m + L <= M; m += L) {
    const B gv = B::load_unaligned(g + m);
    for (std::size_t k = 0; k < KB; ++k) acc[k] = xsimd::fma(gv, B::load_unaligned(col + k * M + m), acc[k]);
  }
  for (std::size_t k = 0; k < KB; ++k) {
    T sum = xsimd::hadd(acc[k]);
    for (std::size_t i = m; i < M; ++i) sum += g[i] * col[k * M + i];
    gw[k] += sum;
  }
}

}  // namespace

template <class T>
void few_rows_grad(const T* gy, const T* col, std::size_t FN, std::size_t K, std::size_t M, T* gw) {
  for (std::size_t f = 0; f < FN; ++f) {
    const T* g = gy + f * M;
    T* out = gw + f * K;
    std::size_t k = 0;
    for (; k + 8 <= K; k += 8) few_rows_block<T, 8>(g, col + k * M, M, out + k);
    for (; k + 4 <= K; k += 4) few_rows_block<T, 4>(g, col + k * M, M, out + k);
    for (; k < K; ++k) few_rows_block<T, 1>(g, col + k * M, M, out + k);
  }
}

template void few_rows_grad(const float*, const float*, std::size_t, std::size_t, std::size_t, float*);
template void few_rows_grad(const double*, const double*, std::size_t, std::size_t, std::size_t, double*);

}  // namespace ZG_SIMD_VARIANT

#if ZG_SIMD_ENTRIES
namespace avx2 {
template <class T>
void few_rows_grad(const T* gy, const T* col, std::size_t FN, std::size_t K, std::size_t M, T* gw);
}

template <class T>
void few_rows_grad(const T* gy, const T* col, std::size_t FN, std::size_t K, std::size_t M, T* gw) {
  ZG_SIMD_CALL(few_rows_grad, gy, col, FN, K, M, gw);
}

template void few_rows_grad(const float*, const float*, std::size_t, std::size_t, std::size_t, float*);
template void few_rows_grad(const double*, const double*, std::size_t, std::size_t, std::size_t, double*);
#endif

}  // namespace zg::nn::kernels
