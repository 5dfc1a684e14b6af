#pragma once
// scaled_dot_product_attention's probabilities and first-order backward on
// raw arrays (Note [Attention backward in one pass] in attention.cpp).
#include <vector>

#include "zerograd/tensor.hpp"

namespace zg::nn::kernels {

// What masks the scores s = scale q k^T, (batch..., L, S).
template <class T>
struct ScoreMask {
  const T* values = nullptr;  // the attn_mask, broadcasting to the scores; null: none
  Shape shape;                // its shape
  bool additive = false;      // added to the scores; else 0 marks a key that may not be attended to
  bool causal = false;        // key j > query i may not be attended to
};

// P = softmax(scale q k^T + mask) over the last axis for q (..., L, E) and
// k (..., S, E), batch axes broadcast: (batch..., L, S). A row with no key
// to attend to is zeros, and empty[row] (one flag per row of P) is 1.
template <class T>
Tensor<T> attention_probabilities(const Tensor<T>& q, const Tensor<T>& k, T scale, const ScoreMask<T>& mask,
                                  std::vector<unsigned char>& empty);

// The first-order gradients of O = D(P) v (D: times keep, the dropout's
// mask, when keep is not null), each over the broadcast batch of the
// scores (the caller sums them to its inputs' shapes); `mask` is dS, the
// gradient of the scores, and only computed when asked for. gy's batch
// must be the scores' batch.
template <class T>
struct AttentionGrads {
  Tensor<T> q, k, v, mask;  // empty where not asked for
};

template <class T>
AttentionGrads<T> attention_backward(const Tensor<T>& gy, const Tensor<T>& q, const Tensor<T>& k, const Tensor<T>& v,
                                     T scale, const ScoreMask<T>& mask, const T* keep, const bool (&want)[4]);

}  // namespace zg::nn::kernels
