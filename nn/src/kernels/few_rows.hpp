#pragma once
// A weight gradient's GEMM with few patch rows: Note [Few patch rows] in few_rows.cpp.
#include <cstddef>

namespace zg::nn::kernels {

constexpr std::size_t kFewPatchRows = 15;

// gw (FN x K) += gy (FN x M) col (K x M)^T, for K <= kFewPatchRows.
template <class T>
void few_rows_grad(const T* gy, const T* col, std::size_t FN, std::size_t K, std::size_t M, T* gw);

}  // namespace zg::nn::kernels
