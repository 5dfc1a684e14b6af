// scaled_dot_product_attention as one Function: the forward runs q k^T, the
// masked softmax and the product with v on raw arrays (the products as
// batched GEMMs), the backward recomputes the probabilities: in one kernel
// for a first-order backward (Note [Attention backward in one pass]), with
// Variable ops under create_graph, so that it differentiates again.
//
// Note [Attention recomputes its probabilities]: between forward and
// backward the Function keeps nothing the caller does not already hold: its
// inputs q, k, v (and the mask), plus, only when dropout drew, a copy of the
// generator's state (2.5 KB, to draw the same keep mask again), and, only
// when some query row has no key to attend to, one number per query row.
// Its backward recomputes softmax(q k^T scale + mask) from q and k, one more
// (L, S) product per matrix. Keeping the probabilities instead would hold
// (..., L, S) values, and as much again for a dropout mask. Measured (the
// case "attention: memory held between forward and backward" in
// tests/test_attention.cpp: bytes malloc has in use after the forward,
// beyond the output, on a fresh thread) for q, k, v of (16, 4, 64, 32) in
// float, where the probabilities are 1 MiB: 28.7 KB held by this op (5 KB
// with dropout 0.1), against 3.0 MiB for the same attention as matmul,
// softmax and matmul ops and 4.0 MiB with F::dropout between them. The
// recomputation costs little time: causal self-attention of (16, 64, 128)
// forward and backward took 1.58 ms as this op against 1.62 ms as those ops
// (best of 30, 2 threads).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <random>

#include <xtensor/xbuilder.hpp>

#include "kernels/attention.hpp"
#include "zerograd/apply.hpp"
#include "zerograd/gemm.hpp"
#include "zerograd/nn/functional.hpp"
#include "zerograd/op_registry.hpp"
#include "zerograd/ops.hpp"

namespace zg::nn::functional {
namespace {

constexpr double kMinusInf = -std::numeric_limits<double>::infinity();

// Inverted dropout's keep mask (1 / (1 - p) or 0 per element), drawn as
// functional::dropout draws it.
template <class T>
Tensor<T> keep_mask(Generator& gen, const Shape& shape, double p) {
  Tensor<T> mask = Tensor<T>::from_shape(shape);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  for (auto& m : mask) m = u(gen) >= p ? scale : T(0);
  return mask;
}

// 1 where query i may not see key j under is_causal (j > i), as (L, S).
template <class T>
Tensor<T> causal_block(std::size_t L, std::size_t S) {
  Tensor<T> block = Tensor<T>::from_shape({L, S});
  for (std::size_t i = 0; i < L; ++i)
    for (std::size_t j = 0; j < S; ++j) block(i, j) = j > i ? T(1) : T(0);
  return block;
}

Shape matrix_shape(Shape batch, std::size_t rows, std::size_t cols) {
  batch.insert(batch.end(), {rows, cols});
  return batch;
}

template <class T>
struct ScaledDotProductAttention final : Function<T> {
  ScaledDotProductAttention(bool masked, AttnMask kind, bool causal, double dropout_p, double scale, Generator* gen)
      : masked(masked), kind(kind), causal(causal), dropout_p(dropout_p), scale(scale), gen(gen) {}
  bool masked;    // input 3 is attn_mask
  AttnMask kind;  // of input 3
  bool causal;
  double dropout_p, scale;
  Generator* gen;                  // nullptr: no dropout
  std::optional<Generator> drawn;  // the generator's state before the dropout draw
  std::optional<Tensor<T>> dead;   // (..., L, 1): 1 for a query row no key may attend to; none if no such row
  std::string name() const override { return "ScaledDotProductAttention"; }
  OpFields fields() const override {
    return {{"scale", field_of(scale)}, {"masked", field_of(masked)}, {"additive", field_of(kind == AttnMask::Additive)},
            {"causal", field_of(causal)}, {"dropout", field_of(gen ? dropout_p : 0.0)}};
  }
  std::string attributes() const override {
    std::string a = "scale=" + number_str(scale);
    if (masked) a += kind == AttnMask::Additive ? ", additive mask" : ", boolean mask";
    if (causal) a += ", causal";
    if (gen) a += ", dropout=" + number_str(dropout_p);
    return a;
  }

  kernels::ScoreMask<T> score_mask(const Tensor<T>* mask) const {
    kernels::ScoreMask<T> m;
    if (mask) m.values = mask->data(), m.shape = zg::shape_of(*mask);
    m.additive = kind == AttnMask::Additive;
    m.causal = causal;
    return m;
  }
  Outputs<T> forward(const TensorList<T>& x) override {
    std::vector<unsigned char> empty;
    const kernels::ScoreMask<T> mask = score_mask(masked ? &x[3] : nullptr);
    Tensor<T> p = kernels::attention_probabilities(x[0], x[1], static_cast<T>(scale), mask, empty);
    const Shape ss = zg::shape_of(p);
    dead.reset();
    if (std::find(empty.begin(), empty.end(), 1) != empty.end()) {
      dead = Tensor<T>::from_shape(matrix_shape(Shape(ss.begin(), ss.end() - 2), ss[ss.size() - 2], 1));
      std::copy(empty.begin(), empty.end(), dead->begin());
    }
    if (gen) {
      drawn = *gen;
      p *= keep_mask<T>(*gen, ss, dropout_p);
    }
    const zg::detail::BatchedProduct pv = zg::detail::batched_product(ss, zg::shape_of(x[2]), false, false);
    auto y = Outputs<T>::uninitialized(matrix_shape(pv.batch, pv.M, pv.N));
    zg::detail::batched_gemm<T>(pv, p.data(), x[2].data(), y[0].data());
    return y;
  }
  // O = D(P) v with P = softmax(s), s = scale q k^T + mask (-inf where
  // masked): dv = D(P)^T gO, dP = D(gO v^T), ds = P (dP - sum(dP P)),
  // dq = scale ds k, dk = scale ds^T q, d(additive mask) = ds.
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& q = this->input(0);
    const Var<T>& k = this->input(1);
    const Var<T>& v = this->input(2);
    if (!is_grad_enabled() && gy[0].shape() == matrix_shape(scores_batch(), q.shape()[q.ndim() - 2], v.shape().back()))
      return kernel_backward(gy[0]);
    Var<T> s = zg::matmul(q, k, false, true) * static_cast<T>(scale);
    if (masked && kind == AttnMask::Additive) s = s + this->input(3);
    if (masked && kind == AttnMask::Boolean) s = zg::masked_fill(s, zg::equal(this->input(3), T(0)), kMinusInf);
    const std::size_t L = q.shape()[q.ndim() - 2], S = k.shape()[k.ndim() - 2];
    if (causal) s = zg::masked_fill(s, Var<T>(causal_block<T>(L, S)), kMinusInf);
    const Var<T> no_key = dead ? Var<T>(*dead) : Var<T>();
    if (no_key.defined()) s = zg::masked_fill(s, no_key, 0.0);  // a finite row, zeroed again below
    Var<T> P = zg::softmax(s, -1);
    if (no_key.defined()) P = zg::masked_fill(P, no_key, 0.0);
    Var<T> keep;
    if (drawn) {
      Generator again = *drawn;
      keep = Var<T>(keep_mask<T>(again, P.shape(), dropout_p));
    }
    const Var<T> DP = keep.defined() ? P * keep : P;
    Variables<T> g(this->num_inputs());
    if (this->needs_input_grad(2)) g[2] = zg::sum_to(zg::matmul(DP, gy[0], true, false), v.shape());
    Var<T> dP = zg::matmul(gy[0], v, false, true);
    if (keep.defined()) dP = dP * keep;
    const Var<T> ds = P * (dP - zg::sum(dP * P, {-1}, true));
    if (this->needs_input_grad(0)) g[0] = zg::sum_to(zg::matmul(ds, k) * static_cast<T>(scale), q.shape());
    if (this->needs_input_grad(1))
      g[1] = zg::sum_to(zg::matmul(ds, q, true, false) * static_cast<T>(scale), k.shape());
    if (masked && kind == AttnMask::Additive && this->needs_input_grad(3))
      g[3] = zg::sum_to(ds, this->input(3).shape());
    return g;
  }
  // The batch axes of the scores: q's and k's, broadcast.
  Shape scores_batch() const {
    const auto batch = [](const Shape& s) { return Shape(s.begin(), s.end() - 2); };
    return broadcast_shapes(batch(this->input(0).shape()), batch(this->input(1).shape()), "attention");
  }
  // The first-order backward above as one kernel (Note [Attention backward
  // in one pass]), where v does not widen the batch of the scores.
  Variables<T> kernel_backward(const Var<T>& gy) {
    const Tensor<T>&q = this->input(0).data(), &k = this->input(1).data(), &v = this->input(2).data();
    std::optional<Tensor<T>> keep;
    if (drawn) {
      Generator again = *drawn;
      const Shape ss = matrix_shape(scores_batch(), q.shape()[q.dimension() - 2], k.shape()[k.dimension() - 2]);
      keep = keep_mask<T>(again, ss, dropout_p);
    }
    const bool want[4] = {this->needs_input_grad(0), this->needs_input_grad(1), this->needs_input_grad(2),
                          masked && kind == AttnMask::Additive && this->needs_input_grad(3)};
    kernels::AttentionGrads<T> d = kernels::attention_backward(
        gy.data(), q, k, v, static_cast<T>(scale), score_mask(masked ? &this->input(3).data() : nullptr),
        keep ? keep->data() : nullptr, want);
    Variables<T> g(this->num_inputs());
    Tensor<T>* grads[4] = {&d.q, &d.k, &d.v, &d.mask};
    for (std::size_t i = 0; i < g.size(); ++i)
      if (want[i]) g[i] = zg::sum_to(Var<T>(std::move(*grads[i])), this->input(i).shape());
    return g;
  }
  std::string rule(std::size_t i) const override {
    switch (i) {
      case 0: return "scale \u00d7 dS . k, dS the softmax gradient of upstream . v^T";
      case 1: return "scale \u00d7 dS^T . q, dS the softmax gradient of upstream . v^T";
      case 2: return "P^T . upstream, P the (dropped-out) attention probabilities";
      default: return kind == AttnMask::Additive ? "dS, the gradient of the scores, summed to the mask's shape"
                                                 : "none for a boolean mask";
    }
  }
  void release() override {
    Function<T>::release();
    dead.reset();
    drawn.reset();
  }
};
ZG_REGISTER_OP(ScaledDotProductAttention);

// The shape rules, each a ShapeError naming the op and the shapes.
void check_attention(const Shape& qs, const Shape& ks, const Shape& vs, const Shape* ms) {
  const std::string shapes = "q " + shape_str(qs) + ", k " + shape_str(ks) + ", v " + shape_str(vs);
  const std::string op = "scaled_dot_product_attention: ";
  if (qs.size() < 2 || ks.size() < 2 || vs.size() < 2)
    throw ShapeError(op + "q, k and v must be (..., L, E), (..., S, E) and (..., S, Ev), got " + shapes);
  const std::size_t L = qs[qs.size() - 2], E = qs.back(), S = ks[ks.size() - 2];
  if (L == 0 || S == 0) throw ShapeError(op + "empty sequence: " + shapes);
  if (ks.back() != E) throw ShapeError(op + "q and k have different embedding sizes: " + shapes);
  if (vs[vs.size() - 2] != S) throw ShapeError(op + "k and v have different sequence lengths: " + shapes);
  const auto batch = [](const Shape& s) { return Shape(s.begin(), s.end() - 2); };
  Shape b;
  try {
    b = broadcast_shapes(broadcast_shapes(batch(qs), batch(ks), "attention"), batch(vs), "attention");
  } catch (const ShapeError&) {
    throw ShapeError(op + "batch dimensions do not broadcast: " + shapes);
  }
  if (ms) {
    const Shape scores = matrix_shape(broadcast_shapes(batch(qs), batch(ks), "attention"), L, S);
    bool fits = ms->size() <= scores.size();
    for (std::size_t d = 0; fits && d < ms->size(); ++d) {
      const std::size_t m = (*ms)[ms->size() - 1 - d];
      fits = m == 1 || m == scores[scores.size() - 1 - d];
    }
    if (!fits)
      throw ShapeError(op + "attn_mask " + shape_str(*ms) + " does not broadcast to the scores " +
                       shape_str(scores) + " of " + shapes);
  }
}

}  // namespace

template <class T>
Var<T> scaled_dot_product_attention(const Var<T>& q, const Var<T>& k, const Var<T>& v,
                                    const AttentionOptions<T>& options) {
  const Shape ms = options.attn_mask.defined() ? options.attn_mask.shape() : Shape{};
  check_attention(q.shape(), k.shape(), v.shape(), options.attn_mask.defined() ? &ms : nullptr);
  if (!(options.dropout_p >= 0 && options.dropout_p < 1))
    throw ValueError("scaled_dot_product_attention: dropout_p must be in [0, 1), got " +
                     number_str(options.dropout_p));
  const double scale = options.scale ? *options.scale : 1.0 / std::sqrt(double(q.shape().back()));
  if (!std::isfinite(scale))
    throw ValueError("scaled_dot_product_attention: scale must be finite, got " + number_str(scale));
  Generator* gen = options.training && options.dropout_p > 0
                       ? (options.generator ? options.generator : &zg::generator())
                       : nullptr;
  using Op = ScaledDotProductAttention<T>;
  if (options.attn_mask.defined())
    return apply1<Op>({q, k, v, options.attn_mask}, true, options.attn_mask_kind, options.is_causal, options.dropout_p,
                      scale, gen);
  return apply1<Op>({q, k, v}, false, options.attn_mask_kind, options.is_causal, options.dropout_p, scale, gen);
}

#define ZG_INSTANTIATE(T)                                                                        \
  template Var<T> scaled_dot_product_attention(const Var<T>&, const Var<T>&, const Var<T>&, \
                                               const AttentionOptions<T>&);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::functional
