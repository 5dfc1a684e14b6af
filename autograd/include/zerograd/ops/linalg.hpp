#pragma once
// Linear algebra on BLAS: matmul and the fused linear: autograd/src/ops/linalg.cpp.
#include "zerograd/variable.hpp"

namespace zg {

// numpy matmul for 1-D and 2-D operands: (M, K) @ (K, N) -> (M, N),
// (K) @ (K, N) -> (N), (M, K) @ (K) -> (M), (K) @ (K) -> (). Vectors are
// reshaped to a row / column around the one 2-D Function "MatMul".
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b);
// op(a) @ op(b) for 2-D a and b, where op transposes when its flag is set.
// BLAS reads a transposed operand in place: no transposed copy is made.
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b, bool trans_a, bool trans_b);

// y = x W + b with x (N, in), W (in, out), b (out), as one GEMM with the bias
// fused. An empty b (the default) means no bias: the Function then has two
// inputs. x must be 2-D: flattening 4-D input is the layer's job.
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& W, const Var<T>& b = Var<T>());

}  // namespace zg
