#pragma once
// zerograd's softmax over the rows of a raw row-major array (defined in
// autograd/src/kernels/softmax.cpp): what softmax and log_softmax run along
// the last axis, public so that nn's attention normalizes its scores the
// same way. In zg::detail: for kernel writers, not a stable API.
#include <cstddef>

namespace zg::detail {

// Each of `rows` rows of n values, in place: exp(x - max) / sum, or with
// log, (x - max) - log(sum). Rows are split over zerograd's threads; every
// row gets the same arithmetic whatever the split. A row whose maximum is
// -infinity (all masked) becomes NaN, as in PyTorch; or, where `empty` (one
// flag per row) is given, zeros, with its flag set to 1 (0 for every other
// row).
template <class T>
void softmax_rows(T* x, std::size_t rows, std::size_t n, bool log = false, unsigned char* empty = nullptr);

}  // namespace zg::detail
