// matmul and linear on GEMM. Backward is matmul again with transpose flags,
// so BLAS reads transposed operands in place and create_graph still works.
#include <algorithm>
#include <array>

#include "kernels/blas.hpp"
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
  Outputs<T> forward(const TensorList<T>& x) override {
    // The arrays' own shapes, not copies: this op is often a 1-microsecond GEMM.
    const auto& sa = x[0].shape();
    const auto& sb = x[1].shape();
    const auto shapes = [&] {
      return op_shape(zg::shape_of(x[0]), trans_a) + " @ " + op_shape(zg::shape_of(x[1]), trans_b);
    };
    if (sa.size() != 2 || sb.size() != 2)
      throw ShapeError("MatMul: transpose flags need 2-D operands, got " + shapes());
    const std::size_t M = sa[trans_a ? 1 : 0], K = sa[trans_a ? 0 : 1];
    const std::size_t N = sb[trans_b ? 0 : 1];
    if (sb[trans_b ? 1 : 0] != K) throw ShapeError("MatMul: inner dimensions differ: " + shapes());
    auto y = Outputs<T>::uninitialized(std::array<std::size_t, 2>{M, N});
    detail::gemm<T>(trans_a, trans_b, M, N, K, T(1), x[0].data(), sa[1], x[1].data(), sb[1],
                    T(0), y[0].data(), N);
    return y;
  }
  // Y = op(A) op(B): d op(A) = gY op(B)^T, d op(B) = op(A)^T gY; a flag on A
  // or B transposes its gradient back, which is again just flags.
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& A = this->input(0);
    const Var<T>& B = this->input(1);
    Var<T> gA, gB;
    if (this->needs_input_grad(0))
      gA = trans_a ? zg::matmul(B, gy[0], trans_b, true) : zg::matmul(gy[0], B, false, !trans_b);
    if (this->needs_input_grad(1))
      gB = trans_b ? zg::matmul(gy[0], A, true, trans_a) : zg::matmul(A, gy[0], !trans_a, false);
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
    const std::size_t N = x[0].shape()[0], in = x[0].shape()[1], out = x[1].shape()[1];
    auto y = Outputs<T>::uninitialized(std::array<std::size_t, 2>{N, out});
    detail::gemm<T>(false, false, N, out, in, T(1), x[0].data(), in, x[1].data(), out, T(0), y[0].data(), out);
    // The bias is added after the product, not preloaded with beta = 1:
    // OpenBLAS's small-matrix kernels are faster with beta = 0.
    if (has_bias) detail::add_row(y[0].data(), x[2].data(), N, out);
    return y;
  }
  // dx = gy W^T, dW = x^T gy, db = sum of gy over the batch
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    const Var<T>& W = this->input(1);
    Variables<T> g(this->num_inputs());
    if (this->needs_input_grad(0)) g[0] = zg::matmul(gy[0], W, false, true);
    if (this->needs_input_grad(1)) g[1] = zg::matmul(x, gy[0], true, false);
    if (has_bias && this->needs_input_grad(2)) g[2] = zg::sum(gy[0], {0});
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
    if (sx.size() != 2) throw ShapeError("Linear: x must be 2-D (N, in), got " + shapes());
    if (sw.size() != 2) throw ShapeError("Linear: W must be 2-D (in, out), got " + shapes());
    if (sx[1] != sw[0]) throw ShapeError("Linear: inner dimensions differ: x " + str(0) + " @ W " + str(1));
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
  if (a.defined() && b.defined() && a.ndim() == 2 && b.ndim() == 2) return zg::matmul(a, b, false, false);
  const Shape sa = a.shape(), sb = b.shape();
  const auto rank_ok = [](const Shape& s) { return s.size() == 1 || s.size() == 2; };
  if (!rank_ok(sa) || !rank_ok(sb))
    throw ShapeError("MatMul: expects 1-D or 2-D operands, got " + shape_str(sa) + " @ " + shape_str(sb));
  if (sa.back() != sb[0])
    throw ShapeError("MatMul: inner dimensions differ: " + shape_str(sa) + " @ " + shape_str(sb));
  // A vector becomes a row (left) or a column (right); its axis is dropped again.
  const Var<T> a2 = sa.size() == 1 ? zg::reshape(a, {1, sa[0]}) : a;
  const Var<T> b2 = sb.size() == 1 ? zg::reshape(b, {sb[0], 1}) : b;
  Shape out;
  if (sa.size() == 2) out.push_back(sa[0]);
  if (sb.size() == 2) out.push_back(sb[1]);
  return zg::reshape(zg::matmul(a2, b2, false, false), out);
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
