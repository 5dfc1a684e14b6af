#pragma once
/// @file
/// Linear algebra on BLAS: matmul and the fused linear: autograd/src/ops/linalg.cpp.
#include "zerograd/variable.hpp"

namespace zg {

/// numpy matmul: (M, K) @ (K, N) -> (M, N); operands of more than two
/// dimensions are stacks of matrices in their last two axes, and the batch
/// axes before them broadcast ((B, T, C) @ (C, D) -> (B, T, D),
/// (B, H, T, d) @ (B, H, d, T) -> (B, H, T, T), (B, 1, M, K) @ (H, K, N) ->
/// (B, H, M, N)). A 1-D left operand is a row and a 1-D right one a column,
/// whose axis is dropped again: (K) @ (..., K, N) -> (..., N),
/// (..., M, K) @ (K) -> (..., M), (K) @ (K) -> (). All of it is the one
/// Function "MatMul" (vectors are reshaped around it). A 0-d operand,
/// differing inner dimensions or batch axes that do not broadcast throw
/// ShapeError naming both shapes.
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b);
/// op(a) @ op(b) for a and b of 2 or more dimensions, where op swaps the
/// last two axes when its flag is set (q @ k^T is matmul(q, k, false, true)).
/// BLAS reads a transposed operand in place: no transposed copy is made.
/// Batch axes broadcast as above.
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b, bool trans_a, bool trans_b);

/// y = x W + b with x (..., in), W (in, out), b (out) -> (..., out), as one
/// GEMM over all of x's leading axes with the bias fused (x is read in
/// place). An empty b (the default) means no bias: the Function then has two
/// inputs. The last axis of x must be `in`: flattening (N, C, H, W) is the
/// layer's job (nn::functional::linear).
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& W, const Var<T>& b = Var<T>());

}  // namespace zg
