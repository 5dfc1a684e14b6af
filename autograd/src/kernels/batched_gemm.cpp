// The batched product behind N-D matmul and attention (declared in
// zerograd/gemm.hpp): how many GEMM calls run a stack of products.
#include <algorithm>
#include <numeric>

#include "zerograd/error.hpp"
#include "zerograd/gemm.hpp"
#include "zerograd/parallel.hpp"

namespace zg::detail {

std::size_t BatchedProduct::count() const {
  return std::accumulate(batch.begin(), batch.end(), std::size_t{1}, std::multiplies<>());
}

namespace {

std::string op_shape(const Shape& s, bool trans) { return shape_str(s) + (trans ? "^T" : ""); }

// Whether an operand holds one whole matrix per batch position, stored one
// after another (no broadcast axis), so its stack is one tall matrix.
bool dense_stack(const Shape& batch, const Shape& stride, std::size_t matrix) {
  std::size_t want = matrix;
  for (std::size_t d = batch.size(); d-- > 0;) {
    if (batch[d] != 1 && stride[d] != want) return false;
    want *= batch[d];
  }
  return true;
}

bool broadcast_whole(const Shape& stride) {
  for (std::size_t s : stride)
    if (s != 0) return false;
  return true;
}

}  // namespace

// The product of op(a) (..., M, K) and op(b) (..., K, N), batch axes
// broadcast; ShapeError naming both operands otherwise.
BatchedProduct batched_product(const Shape& sa, const Shape& sb, bool ta, bool tb) {
  const auto shapes = [&] { return op_shape(sa, ta) + " @ " + op_shape(sb, tb); };
  if (sa.size() < 2 || sb.size() < 2)
    throw ShapeError("MatMul: the form with transpose flags needs operands of 2 or more dimensions "
                     "(matmul(a, b) takes vectors), got " + shapes());
  const std::size_t ra = sa.size() - 2, rb = sb.size() - 2, r = std::max(ra, rb);
  BatchedProduct p;
  p.trans_a = ta;
  p.trans_b = tb;
  p.M = sa[ra + (ta ? 1 : 0)];
  p.K = sa[ra + (ta ? 0 : 1)];
  p.N = sb[rb + (tb ? 0 : 1)];
  if (sb[rb + (tb ? 1 : 0)] != p.K) throw ShapeError("MatMul: inner dimensions differ: " + shapes());
  p.batch.assign(r, 1);
  p.a_stride.assign(r, 0);
  p.b_stride.assign(r, 0);
  // Batch axis d is axis d + ra - r of a's batch (absent below 0), numpy's right alignment.
  std::size_t a_step = p.M * p.K, b_step = p.K * p.N;
  for (std::size_t d = r; d-- > 0;) {
    const std::size_t da = d + ra >= r ? sa[d + ra - r] : 1, db = d + rb >= r ? sb[d + rb - r] : 1;
    if (da != db && da != 1 && db != 1)
      throw ShapeError("MatMul: batch dimensions do not broadcast: " + shapes());
    p.batch[d] = std::max(da, db);
    if (da != 1) p.a_stride[d] = a_step;
    if (db != 1) p.b_stride[d] = b_step;
    a_step *= da;
    b_step *= db;
  }
  return p;
}

// Note [Batched products]: a stack whose right operand is one matrix shared
// by every batch position ((B, T, C) @ (C, D), the Linear of a sequence
// model) is one GEMM of (B T, C) @ (C, D): A's matrices lie one after
// another, and so do C's. Every other stack runs one GEMM per matrix; when
// each of those is too small for gemm to split (under its 2 MFLOP) but the
// stack is not, the matrices themselves are spread over the threads.
// Measured in float at 2 threads (the skipped timing case in
// tests/test_attention.cpp, best of 200): attention's q k^T, (16, 4, 64, 32)
// @ (16, 4, 64, 32)^T, took 0.080 ms as 64 GEMMs one after another and
// 0.041 ms spread; (16, 64, 128) @ (128, 128) took 0.086 ms as 16 GEMMs and
// 0.068 ms as one.
template <class T>
void batched_gemm(const BatchedProduct& p, const T* A, const T* B, T* C) {
  const std::size_t n = p.count(), a_size = p.M * p.K, c_size = p.M * p.N;
  const std::size_t lda = p.trans_a ? p.M : p.K, ldb = p.trans_b ? p.K : p.N;
  if (n == 0 || c_size == 0) return;
  if (!p.trans_a && broadcast_whole(p.b_stride) && dense_stack(p.batch, p.a_stride, a_size)) {
    gemm<T>(false, p.trans_b, n * p.M, p.N, p.K, T(1), A, lda, B, ldb, T(0), C, p.N);
    return;
  }
  // The offsets of matrix i of A and B: an odometer over the batch axes.
  const auto offsets = [&](std::size_t i, std::size_t& a, std::size_t& b) {
    a = b = 0;
    for (std::size_t d = p.batch.size(); d-- > 0;) {
      const std::size_t at = i % p.batch[d];
      i /= p.batch[d];
      a += at * p.a_stride[d];
      b += at * p.b_stride[d];
    }
  };
  const auto run = [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) {
      std::size_t a, b;
      offsets(i, a, b);
      gemm<T>(p.trans_a, p.trans_b, p.M, p.N, p.K, T(1), A + a, lda, B + b, ldb, T(0), C + i * c_size, p.N);
    }
  };
  const double flops = 2.0 * double(p.M) * double(p.N) * double(p.K);
  const std::size_t chunks = flops < 2e6 && flops * double(n) >= 2e6 ? chunk_count(n, 1) : 1;
  if (chunks <= 1) return run(0, n);
  parallel_chunks(chunks, [&](std::size_t k) { run(chunk_begin(n, chunks, k), chunk_begin(n, chunks, k + 1)); });
}

template void batched_gemm<float>(const BatchedProduct&, const float*, const float*, float*);
template void batched_gemm<double>(const BatchedProduct&, const double*, const double*, double*);

}  // namespace zg::detail
