#pragma once
// Multi-head attention and the Transformer layers, with PyTorch's names,
// options and parameter layouts (state_dicts map 1:1 through
// load_torch_npz): nn/src/attention.cpp.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "zerograd/nn/functional.hpp"
#include "zerograd/nn/layers.hpp"

namespace zg::nn {

// What MultiheadAttention is built with (PyTorch's constructor arguments).
// key and value have embed_dim features too (PyTorch's kdim / vdim are not
// supported).
struct MultiheadAttentionOptions {
  MultiheadAttentionOptions() = default;
  MultiheadAttentionOptions(std::size_t embed_dim, std::size_t num_heads) : embed_dim(embed_dim), num_heads(num_heads) {}
  std::size_t embed_dim = 0;
  std::size_t num_heads = 1;  // must divide embed_dim
  double dropout = 0;         // on the attention probabilities, in training only
  bool bias = true;           // in_proj_bias and out_proj.bias
  bool batch_first = false;   // (B, L, E) rather than (L, B, E)
};

// The keyword arguments of MultiheadAttention's forward, set by name.
// The masks follow MultiheadAttention's convention, the opposite of
// scaled_dot_product_attention's: a nonzero entry of key_padding_mask or of
// a Boolean attn_mask marks a key that may NOT be attended to.
template <class T>
struct BasicMultiheadAttentionArgs {
  BasicVariable<T> key_padding_mask = {};  // (B, S), or (S) for unbatched input; empty: none
  bool need_weights = true;                // also return the attention probabilities
  BasicVariable<T> attn_mask = {};         // (L, S) or (B * num_heads, L, S); empty: none
  functional::AttnMask attn_mask_kind = functional::AttnMask::Boolean;  // Additive: added to the scores
  bool average_attn_weights = true;        // weights (B, L, S) averaged over heads, else (B, H, L, S)
};
using MultiheadAttentionArgs = BasicMultiheadAttentionArgs<float>;

// What MultiheadAttention's forward returns: the output in the query's
// layout and, with need_weights, the probabilities (empty otherwise).
template <class T>
struct BasicAttentionOutput {
  BasicVariable<T> output, weights;
};
using AttentionOutput = BasicAttentionOutput<float>;

// PyTorch's nn.MultiheadAttention: in_proj_weight (3E, E) (PyTorch's layout:
// the q, k and v projections stacked, applied as x W^T), in_proj_bias (3E)
// and the Linear out_proj (out_proj.weight, out_proj.bias). Query (L, B, E),
// key and value (S, B, E), or batch first, or unbatched (L, E) and (S, E).
// Scores are divided by sqrt(E / num_heads). A query whose keys are all
// masked gives output zeros and weights zeros (and sends no gradient) where
// PyTorch 1.13 gives NaN, as scaled_dot_product_attention does.
// Bad shapes throw ShapeError naming the layer and the shapes.
template <class T>
class BasicMultiheadAttention : public BasicModule<T> {
 public:
  explicit BasicMultiheadAttention(const MultiheadAttentionOptions& options);
  BasicMultiheadAttention(std::size_t embed_dim, std::size_t num_heads)
      : BasicMultiheadAttention(MultiheadAttentionOptions(embed_dim, num_heads)) {}
  // Self-attention of x without masks: the output alone.
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  BasicAttentionOutput<T> forward(const BasicVariable<T>& query, const BasicVariable<T>& key,
                                  const BasicVariable<T>& value, const BasicMultiheadAttentionArgs<T>& args = {});
  using BasicModule<T>::operator();
  BasicAttentionOutput<T> operator()(const BasicVariable<T>& query, const BasicVariable<T>& key,
                                     const BasicVariable<T>& value, const BasicMultiheadAttentionArgs<T>& args = {}) {
    return forward(query, key, value, args);
  }
  std::string type_name() const override { return "MultiheadAttention"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  const MultiheadAttentionOptions& options() const { return options_; }

  BasicVariable<T> in_proj_weight, in_proj_bias;  // in_proj_bias is empty without bias
  std::shared_ptr<BasicLinear<T>> out_proj;

 private:
  MultiheadAttentionOptions options_;
};
using MultiheadAttention = BasicMultiheadAttention<float>;

// What the Transformer layers are built with (PyTorch's arguments).
struct TransformerLayerOptions {
  TransformerLayerOptions() = default;
  TransformerLayerOptions(std::size_t d_model, std::size_t nhead) : d_model(d_model), nhead(nhead) {}
  std::size_t d_model = 0;
  std::size_t nhead = 1;
  std::size_t dim_feedforward = 2048;
  double dropout = 0.1;              // after attention, inside and after the feed-forward; training only
  std::string activation = "relu";  // or "gelu"
  double layer_norm_eps = 1e-5;
  bool batch_first = false;
  bool norm_first = false;  // x + f(norm(x)) rather than norm(x + f(x))
};
using TransformerEncoderLayerOptions = TransformerLayerOptions;
using TransformerDecoderLayerOptions = TransformerLayerOptions;

// The masks of an encoder's forward (src_mask, src_key_padding_mask), in
// MultiheadAttention's convention. src_mask defaults to Additive, the kind
// generate_square_subsequent_mask makes.
template <class T>
struct BasicEncoderMasks {
  BasicVariable<T> src_mask = {};
  functional::AttnMask src_mask_kind = functional::AttnMask::Additive;
  BasicVariable<T> src_key_padding_mask = {};
};
using EncoderMasks = BasicEncoderMasks<float>;

// The masks of a decoder's forward, as BasicEncoderMasks.
template <class T>
struct BasicDecoderMasks {
  BasicVariable<T> tgt_mask = {};
  functional::AttnMask tgt_mask_kind = functional::AttnMask::Additive;
  BasicVariable<T> memory_mask = {};
  functional::AttnMask memory_mask_kind = functional::AttnMask::Additive;
  BasicVariable<T> tgt_key_padding_mask = {};
  BasicVariable<T> memory_key_padding_mask = {};
};
using DecoderMasks = BasicDecoderMasks<float>;

// PyTorch's nn.TransformerEncoderLayer: submodules self_attn, linear1,
// dropout, linear2, norm1, norm2, dropout1, dropout2.
template <class T>
class BasicTransformerEncoderLayer : public BasicModule<T> {
 public:
  explicit BasicTransformerEncoderLayer(const TransformerLayerOptions& options);
  BasicVariable<T> forward(const BasicVariable<T>& src) override { return forward(src, {}); }
  BasicVariable<T> forward(const BasicVariable<T>& src, const BasicEncoderMasks<T>& masks);
  using BasicModule<T>::operator();
  BasicVariable<T> operator()(const BasicVariable<T>& src, const BasicEncoderMasks<T>& masks) {
    return forward(src, masks);
  }
  std::string type_name() const override { return "TransformerEncoderLayer"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  const TransformerLayerOptions& options() const { return options_; }

  std::shared_ptr<BasicMultiheadAttention<T>> self_attn;
  std::shared_ptr<BasicLinear<T>> linear1, linear2;
  std::shared_ptr<BasicDropout<T>> dropout, dropout1, dropout2;
  std::shared_ptr<BasicLayerNorm<T>> norm1, norm2;

 private:
  BasicVariable<T> feed_forward(const BasicVariable<T>& x);
  TransformerLayerOptions options_;
};
using TransformerEncoderLayer = BasicTransformerEncoderLayer<float>;

// PyTorch's nn.TransformerDecoderLayer: submodules self_attn,
// multihead_attn, linear1, dropout, linear2, norm1..3, dropout1..3.
// forward(x) alone is a ValueError: a decoder needs the memory.
template <class T>
class BasicTransformerDecoderLayer : public BasicModule<T> {
 public:
  explicit BasicTransformerDecoderLayer(const TransformerLayerOptions& options);
  BasicVariable<T> forward(const BasicVariable<T>& tgt) override;
  BasicVariable<T> forward(const BasicVariable<T>& tgt, const BasicVariable<T>& memory,
                           const BasicDecoderMasks<T>& masks = {});
  using BasicModule<T>::operator();
  BasicVariable<T> operator()(const BasicVariable<T>& tgt, const BasicVariable<T>& memory,
                              const BasicDecoderMasks<T>& masks = {}) {
    return forward(tgt, memory, masks);
  }
  std::string type_name() const override { return "TransformerDecoderLayer"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  const TransformerLayerOptions& options() const { return options_; }

  std::shared_ptr<BasicMultiheadAttention<T>> self_attn, multihead_attn;
  std::shared_ptr<BasicLinear<T>> linear1, linear2;
  std::shared_ptr<BasicDropout<T>> dropout, dropout1, dropout2, dropout3;
  std::shared_ptr<BasicLayerNorm<T>> norm1, norm2, norm3;

 private:
  TransformerLayerOptions options_;
};
using TransformerDecoderLayer = BasicTransformerDecoderLayer<float>;

// PyTorch's nn.TransformerEncoder: num_layers copies of encoder_layer (its
// values too) under layers.0, layers.1, ..., then the optional final norm.
template <class T>
class BasicTransformerEncoder : public BasicModule<T> {
 public:
  BasicTransformerEncoder(const BasicTransformerEncoderLayer<T>& encoder_layer, std::size_t num_layers,
                          std::shared_ptr<BasicLayerNorm<T>> norm = nullptr);
  BasicVariable<T> forward(const BasicVariable<T>& src) override { return forward(src, {}); }
  BasicVariable<T> forward(const BasicVariable<T>& src, const BasicEncoderMasks<T>& masks);
  using BasicModule<T>::operator();
  BasicVariable<T> operator()(const BasicVariable<T>& src, const BasicEncoderMasks<T>& masks) {
    return forward(src, masks);
  }
  std::string type_name() const override { return "TransformerEncoder"; }
  AnyModule rebuild(Dtype dtype) const override;

  std::vector<std::shared_ptr<BasicTransformerEncoderLayer<T>>> layers;
  std::shared_ptr<BasicLayerNorm<T>> norm;  // null without a final norm
};
using TransformerEncoder = BasicTransformerEncoder<float>;

// PyTorch's nn.TransformerDecoder, as BasicTransformerEncoder.
template <class T>
class BasicTransformerDecoder : public BasicModule<T> {
 public:
  BasicTransformerDecoder(const BasicTransformerDecoderLayer<T>& decoder_layer, std::size_t num_layers,
                          std::shared_ptr<BasicLayerNorm<T>> norm = nullptr);
  BasicVariable<T> forward(const BasicVariable<T>& tgt) override;  // ValueError: needs the memory
  BasicVariable<T> forward(const BasicVariable<T>& tgt, const BasicVariable<T>& memory,
                           const BasicDecoderMasks<T>& masks = {});
  using BasicModule<T>::operator();
  BasicVariable<T> operator()(const BasicVariable<T>& tgt, const BasicVariable<T>& memory,
                              const BasicDecoderMasks<T>& masks = {}) {
    return forward(tgt, memory, masks);
  }
  std::string type_name() const override { return "TransformerDecoder"; }
  AnyModule rebuild(Dtype dtype) const override;

  std::vector<std::shared_ptr<BasicTransformerDecoderLayer<T>>> layers;
  std::shared_ptr<BasicLayerNorm<T>> norm;
};
using TransformerDecoder = BasicTransformerDecoder<float>;

// The causal mask of nn.Transformer.generate_square_subsequent_mask: (size,
// size), -infinity above the diagonal and 0 elsewhere, an Additive mask.
template <class T = float> BasicVariable<T> generate_square_subsequent_mask(std::size_t size);

}  // namespace zg::nn
