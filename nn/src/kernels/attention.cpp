// Note [Attention backward in one pass]: scaled_dot_product_attention's
// backward as composed ops (scale, mask, masked_fill, softmax, then
// P^T gy, gy v^T, the softmax gradient as a multiply, a row sum, a subtract
// and a multiply, two more products and two scalings) makes about fifteen
// passes over the (B, H, L, S) scores and allocates an array for each. Here
// the first-order backward is the five batched GEMMs it needs (the scores
// again, P^T gy, gy v^T, dS k, dS^T q) and two row passes: the masked
// softmax, and dS = P (dP - sum(dP P)) written over dP in place. The mask is
// read in place through row offsets, never broadcast to the scores' shape.
// Measured with bench/lm_step at 1 thread on OpenBLAS's own kernels, this
// kernel (with the forward's softmax reporting its empty rows, and the mask
// read in place) against the composed backward, 3 pairs alternating:
// the attention workload's forward + backward 6.7 -> 4.8 ms (medians),
// gpt_char's training step 38.0 -> 31.6 ms.
#include "kernels/attention.hpp"

#include <algorithm>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "zerograd/gemm.hpp"
#include "zerograd/parallel.hpp"
#include "zerograd/row_softmax.hpp"

namespace zg::nn::kernels {
namespace {

Shape matrix_shape(Shape batch, std::size_t rows, std::size_t cols) {
  batch.insert(batch.end(), {rows, cols});
  return batch;
}

// Per row of the scores (every axis but the last of `scores`), the offset of
// its row in a mask of shape m broadcast to them (numpy's right alignment).
std::vector<std::size_t> mask_rows(const Shape& m, const Shape& scores) {
  const std::size_t axes = scores.size() - 1;
  std::size_t rows = 1;
  for (std::size_t d = 0; d < axes; ++d) rows *= scores[d];
  // The mask's stride along each row axis of the scores, 0 where it broadcasts.
  std::vector<std::size_t> stride(axes, 0);
  std::size_t step = m.empty() ? 1 : m.back();
  for (std::size_t d = axes; d-- > 0;) {
    const std::size_t from_end = scores.size() - d;  // 2 for the L axis
    if (from_end > m.size()) break;
    const std::size_t extent = m[m.size() - from_end];
    if (extent != 1) stride[d] = step;
    step *= extent;
  }
  std::vector<std::size_t> offset(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    std::size_t i = r, o = 0;
    for (std::size_t d = axes; d-- > 0;) {
      o += (i % scores[d]) * stride[d];
      i /= scores[d];
    }
    offset[r] = o;
  }
  return offset;
}

// Row r of n scores, raw products in: scaled and masked in place.
template <class T>
void mask_row(T* row, std::size_t n, std::size_t query, T scale, const T* m, std::size_t m_step,
              const ScoreMask<T>& mask) {
  constexpr T minus_inf = -std::numeric_limits<T>::infinity();
  if (!m)
    for (std::size_t j = 0; j < n; ++j) row[j] *= scale;
  else if (mask.additive)
    for (std::size_t j = 0; j < n; ++j) row[j] = row[j] * scale + m[j * m_step];
  else
    for (std::size_t j = 0; j < n; ++j) row[j] = m[j * m_step] == T(0) ? minus_inf : row[j] * scale;
  if (mask.causal && query + 1 < n) std::fill(row + query + 1, row + n, minus_inf);
}

// dS = P (dP keep - sum(dP keep P)) times factor, over dP in place, for one
// row of n; keep may be null (1).
template <class T>
void softmax_grad_row(const T* P, T* dP, const T* keep, std::size_t n, T factor) {
  using B = xsimd::batch<T>;
  constexpr std::size_t L = B::size;
  const std::size_t body = n / L * L;
  alignas(64) T p_tail[L] = {}, g_tail[L] = {}, k_tail[L] = {};
  std::copy(P + body, P + n, p_tail);
  std::copy(dP + body, dP + n, g_tail);
  if (keep) std::copy(keep + body, keep + n, k_tail);
  B acc(T(0));
  for (std::size_t j = 0; j < body; j += L) {
    B g = B::load_unaligned(dP + j);
    if (keep) {
      g *= B::load_unaligned(keep + j);
      g.store_unaligned(dP + j);
    }
    acc += g * B::load_unaligned(P + j);
  }
  B gt = B::load_aligned(g_tail);
  if (keep) gt *= B::load_aligned(k_tail);
  acc += gt * B::load_aligned(p_tail);
  const B dot(xsimd::hadd(acc)), f(factor);
  for (std::size_t j = 0; j < body; j += L)
    (B::load_unaligned(P + j) * (B::load_unaligned(dP + j) - dot) * f).store_unaligned(dP + j);
  (B::load_aligned(p_tail) * (gt - dot) * f).store_aligned(g_tail);
  std::copy(g_tail, g_tail + (n - body), dP + body);
}

template <class T>
Tensor<T> product(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb) {
  const zg::detail::BatchedProduct p = zg::detail::batched_product(shape_of(a), shape_of(b), ta, tb);
  Tensor<T> c = Tensor<T>::from_shape(matrix_shape(p.batch, p.M, p.N));
  zg::detail::batched_gemm<T>(p, a.data(), b.data(), c.data());
  return c;
}

template <class T>
void scale_by(Tensor<T>& x, T s) {
  T* d = x.data();
  for (std::size_t i = 0, n = x.size(); i < n; ++i) d[i] *= s;
}

}  // namespace

template <class T>
Tensor<T> attention_probabilities(const Tensor<T>& q, const Tensor<T>& k, T scale, const ScoreMask<T>& mask,
                                  std::vector<unsigned char>& empty) {
  Tensor<T> p = product(q, k, false, true);
  const Shape ss = shape_of(p);
  const std::size_t L = ss[ss.size() - 2], S = ss.back(), rows = p.size() / S;
  std::vector<std::size_t> offset;
  if (mask.values) offset = mask_rows(mask.shape, ss);
  const std::size_t m_step = mask.values && !mask.shape.empty() && mask.shape.back() != 1 ? 1 : 0;
  zg::detail::parallel_for(rows, std::max<std::size_t>(1, zg::detail::kElementGrain / S),
                           [&](std::size_t r0, std::size_t r1) {
                             for (std::size_t r = r0; r < r1; ++r)
                               mask_row(p.data() + r * S, S, r % L, scale,
                                        mask.values ? mask.values + offset[r] : nullptr, m_step, mask);
                           });
  empty.assign(rows, 0);
  zg::detail::softmax_rows(p.data(), rows, S, false, empty.data());
  return p;
}

template <class T>
AttentionGrads<T> attention_backward(const Tensor<T>& gy, const Tensor<T>& q, const Tensor<T>& k, const Tensor<T>& v,
                                     T scale, const ScoreMask<T>& mask, const T* keep, const bool (&want)[4]) {
  std::vector<unsigned char> empty;
  const Tensor<T> P = attention_probabilities(q, k, scale, mask, empty);
  const std::size_t S = P.shape().back(), rows = P.size() / S;
  AttentionGrads<T> g;
  if (want[2]) {
    if (keep) {
      Tensor<T> DP = Tensor<T>::from_shape(shape_of(P));
      for (std::size_t i = 0; i < P.size(); ++i) DP.data()[i] = P.data()[i] * keep[i];
      g.v = product(DP, gy, true, false);
    } else {
      g.v = product(P, gy, true, false);
    }
  }
  if (!want[0] && !want[1] && !want[3]) return g;
  Tensor<T> dS = product(gy, v, false, true);  // dP, then dS in place
  const T factor = want[3] ? T(1) : scale;     // the mask's gradient is dS unscaled
  zg::detail::parallel_for(rows, std::max<std::size_t>(1, zg::detail::kElementGrain / S),
                           [&](std::size_t r0, std::size_t r1) {
                             for (std::size_t r = r0; r < r1; ++r)
                               softmax_grad_row(P.data() + r * S, dS.data() + r * S, keep ? keep + r * S : nullptr,
                                                S, factor);
                           });
  if (want[0]) g.q = product(dS, k, false, false);
  if (want[1]) g.k = product(dS, q, true, false);
  if (want[3]) {
    if (want[0]) scale_by(g.q, scale);
    if (want[1]) scale_by(g.k, scale);
    g.mask = std::move(dS);
  }
  return g;
}

#define ZG_INSTANTIATE(T)                                                                                        \
  template Tensor<T> attention_probabilities(const Tensor<T>&, const Tensor<T>&, T, const ScoreMask<T>&,         \
                                             std::vector<unsigned char>&);                                       \
  template AttentionGrads<T> attention_backward(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,            \
                                                const Tensor<T>&, T, const ScoreMask<T>&, const T*, const bool (&)[4]);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::kernels
