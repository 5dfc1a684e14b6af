// matmul and linear on GEMM. Backward is matmul again with transpose flags,
// so BLAS reads transposed operands in place and create_graph still works.
// Operands of more than two dimensions are stacks of matrices whose batch
// axes broadcast as in numpy (kernels/batched_gemm.cpp runs them).
#include <algorithm>
#include <array>
#include <numeric>

#include "kernels/blas.hpp"
#include "zerograd/gemm.hpp"
#include "engine/buffer_cache.hpp"
#include "ops/common.hpp"

namespace zg {
namespace {

std::string op_shape(const Shape& s, bool trans) { return shape_str(s) + (trans ? "^T" : ""); }

template <class T>
struct MatMul final : Function<T> {
  MatMul(bool trans_a, bool trans_b) : trans_a(trans_a), trans_b(trans_b) {}
  bool trans_a, trans_b;
  std::string name() const override { return "MatMul"; }
  std::string attributes() const override {
    return std::string(trans_a ? "trans_a" : "") + (trans_a && trans_b ? ", " : "") +
           (trans_b ? "trans_b" : "");
  }
  OpFields fields() const override { return {{"trans_a", field_of(trans_a)}, {"trans_b", field_of(trans_b)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    // The arrays' own shapes, not copies: this op is often a 1-microsecond GEMM.
    const auto& sa = x[0].shape();
    const auto& sb = x[1].shape();
    if (sa.size() != 2 || sb.size() != 2) return forward_batched(x);
    const auto shapes = [&] {
      return op_shape(zg::shape_of(x[0]), trans_a) + " @ " + op_shape(zg::shape_of(x[1]), trans_b);
    };
    const std::size_t M = sa[trans_a ? 1 : 0], K = sa[trans_a ? 0 : 1];
    const std::size_t N = sb[trans_b ? 0 : 1];
    if (sb[trans_b ? 1 : 0] != K) throw ShapeError("MatMul: inner dimensions differ: " + shapes());
    auto y = Outputs<T>::uninitialized(std::array<std::size_t, 2>{M, N});
    detail::gemm<T>(trans_a, trans_b, M, N, K, T(1), x[0].data(), sa[1], x[1].data(), sb[1],
                    T(0), y[0].data(), N);
    return y;
  }
  Outputs<T> forward_batched(const TensorList<T>& x) {
    const detail::BatchedProduct p = detail::batched_product(zg::shape_of(x[0]), zg::shape_of(x[1]), trans_a, trans_b);
    Shape out = p.batch;
    out.insert(out.end(), {p.M, p.N});
    auto y = Outputs<T>::uninitialized(out);
    detail::batched_gemm<T>(p, x[0].data(), x[1].data(), y[0].data());
    return y;
  }
  // Y = op(A) op(B): d op(A) = gY op(B)^T, d op(B) = op(A)^T gY; a flag on A
  // or B transposes its gradient back, which is again just flags. Batch axes
  // an operand was broadcast along are summed away again (sum_to).
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& A = this->input(0);
    const Var<T>& B = this->input(1);
    const bool batched = A.ndim() > 2 || B.ndim() > 2;
    Var<T> gA, gB;
    if (this->needs_input_grad(0))
      gA = trans_a ? zg::matmul(B, gy[0], trans_b, true) : zg::matmul(gy[0], B, false, !trans_b);
    if (this->needs_input_grad(1)) {
      if (batched && B.ndim() == 2 && !trans_a) {  // one matrix for every batch position: one GEMM over all rows
        const Var<T> A2 = zg::reshape(A, {A.size() / A.shape().back(), A.shape().back()});
        const Var<T> g2 = zg::reshape(gy[0], {A2.shape()[0], gy[0].shape().back()});
        gB = trans_b ? zg::matmul(g2, A2, true, false) : zg::matmul(A2, g2, true, false);
      } else {
        gB = trans_b ? zg::matmul(gy[0], A, true, trans_a) : zg::matmul(A, gy[0], !trans_a, false);
      }
    }
    if (batched && gA.defined()) gA = zg::sum_to(gA, A.shape());
    if (batched && gB.defined()) gB = zg::sum_to(gB, B.shape());
    return {gA, gB};
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "upstream . W^T (the other input, transposed)"
                  : "x^T . upstream (the other input, transposed)";
  }
};
ZG_REGISTER_OP(MatMul);

template <class T>
struct Linear final : Function<T> {
  explicit Linear(bool has_bias) : has_bias(has_bias) {}
  bool has_bias;
  std::string name() const override { return "Linear"; }
  std::string attributes() const override { return has_bias ? "" : "no bias"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    check_shapes(x);
    const auto& sx = x[0].shape();
    const std::size_t in = sx.back(), out = x[1].shape()[1];
    // Leading axes fold into the rows of one GEMM: x is read in place as (N, in).
    const std::size_t N = std::accumulate(sx.begin(), sx.end() - 1, std::size_t{1}, std::multiplies<>());
    auto y = sx.size() == 2 ? Outputs<T>::uninitialized(std::array<std::size_t, 2>{N, out}) : [&] {
      Shape ys(sx.begin(), sx.end() - 1);
      ys.push_back(out);
      return Outputs<T>::uninitialized(ys);
    }();
    detail::gemm<T>(false, false, N, out, in, T(1), x[0].data(), in, x[1].data(), out, T(0), y[0].data(), out);
    // The bias is added after the product, not preloaded with beta = 1:
    // OpenBLAS's small-matrix kernels are faster with beta = 0.
    if (has_bias) detail::add_row(y[0].data(), x[2].data(), N, out);
    return y;
  }
  // dx = gy W^T, dW = x^T gy, db = sum of gy over the batch (the rows of x
  // are all of its leading axes)
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    const Var<T>& W = this->input(1);
    Variables<T> g(this->num_inputs());
    if (x.ndim() == 2) {
      if (this->needs_input_grad(0)) g[0] = zg::matmul(gy[0], W, false, true);
      if (this->needs_input_grad(1)) g[1] = zg::matmul(x, gy[0], true, false);
      if (has_bias && this->needs_input_grad(2)) g[2] = zg::sum(gy[0], {0});
      return g;
    }
    const Shape xs = x.shape();
    const std::size_t n = std::accumulate(xs.begin(), xs.end() - 1, std::size_t{1}, std::multiplies<>());
    const std::size_t in = W.shape()[0], out = W.shape()[1];
    if (this->needs_input_grad(0))
      g[0] = xs.size() == 1 ? zg::matmul(W, gy[0]) : zg::matmul(gy[0], W, false, true);
    if (this->needs_input_grad(1))
      g[1] = zg::matmul(zg::reshape(x, {n, in}), zg::reshape(gy[0], {n, out}), true, false);
    if (has_bias && this->needs_input_grad(2)) {
      Axes lead(xs.size() - 1);
      std::iota(lead.begin(), lead.end(), std::ptrdiff_t{0});
      g[2] = lead.empty() ? gy[0] : zg::sum(gy[0], lead);
    }
    return g;
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "upstream . W^T"
         : i == 1 ? "x^T . upstream"
                  : "the upstream gradient summed over the batch";
  }

  // Reads the arrays' own shapes: Shape copies are made only for a message
  // (this op is often a 1-microsecond GEMM).
  void check_shapes(const TensorList<T>& x) const {
    const auto& sx = x[0].shape();
    const auto& sw = x[1].shape();
    const auto str = [&](std::size_t i) { return shape_str(zg::shape_of(x[i])); };
    const auto shapes = [&] { return "x " + str(0) + ", W " + str(1); };
    if (sx.size() == 0) throw ShapeError("Linear: x must be (..., in), got " + shapes());
    if (sw.size() != 2) throw ShapeError("Linear: W must be 2-D (in, out), got " + shapes());
    if (sx.back() != sw[0]) throw ShapeError("Linear: inner dimensions differ: x " + str(0) + " @ W " + str(1));
    if (has_bias && (x[2].dimension() != 1 || x[2].shape()[0] != sw[1]))
      throw ShapeError("Linear: bias " + str(2) + " does not match W " + str(1) + ": expected (" +
                       std::to_string(sw[1]) + ")");
  }
};
ZG_REGISTER_OP(Linear);

}  // namespace

template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b, bool trans_a, bool trans_b) {
  return apply1<MatMul<T>>({a, b}, trans_a, trans_b);
}

template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
  if (a.defined() && b.defined() && a.ndim() >= 2 && b.ndim() >= 2) return zg::matmul(a, b, false, false);
  const Shape sa = a.shape(), sb = b.shape();
  if (sa.empty() || sb.empty())
    throw ShapeError("MatMul: operands need 1 or more dimensions, got " + shape_str(sa) + " @ " + shape_str(sb));
  if (sa.back() != sb[sb.size() == 1 ? 0 : sb.size() - 2])
    throw ShapeError("MatMul: inner dimensions differ: " + shape_str(sa) + " @ " + shape_str(sb));
  // A vector becomes a row (left) or a column (right); its axis is dropped again.
  const Var<T> a2 = sa.size() == 1 ? zg::reshape(a, {1, sa[0]}) : a;
  const Var<T> b2 = sb.size() == 1 ? zg::reshape(b, {sb[0], 1}) : b;
  const Var<T> y = zg::matmul(a2, b2, false, false);
  Shape out = y.shape();
  if (sb.size() == 1) out.pop_back();
  if (sa.size() == 1) out.erase(out.end() - (sb.size() == 1 ? 1 : 2));
  return zg::reshape(y, out);
}

template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& W, const Var<T>& b) {
  if (!b.defined()) return apply1<Linear<T>>({x, W}, false);
  return apply1<Linear<T>>({x, W, b}, true);
}

#define ZG_INSTANTIATE(T)                                            \
  template Var<T> matmul(const Var<T>&, const Var<T>&);              \
  template Var<T> matmul(const Var<T>&, const Var<T>&, bool, bool);  \
  template Var<T> linear(const Var<T>&, const Var<T>&, const Var<T>&);
ZG_FOR_FLOAT_AND_DOUBLE(ZG_INSTANTIATE)
#undef ZG_INSTANTIATE

}  // namespace zg
