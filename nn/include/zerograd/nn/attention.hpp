#pragma once
/// @file
/// Multi-head attention and the Transformer layers, with PyTorch's names,
/// options and parameter layouts (state_dicts map 1:1 through
/// load_torch_npz): nn/src/attention.cpp.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "zerograd/nn/functional.hpp"
#include "zerograd/nn/layers.hpp"

namespace zg::nn {

/// What MultiheadAttention is built with (PyTorch's constructor arguments).
/// key and value have embed_dim features too (PyTorch's kdim / vdim are not
/// supported).
struct MultiheadAttentionOptions {
  MultiheadAttentionOptions() = default;  ///< embed_dim 0: set it before use
  /// The sizes; the rest keeps its defaults.
  MultiheadAttentionOptions(std::size_t embed_dim, std::size_t num_heads) : embed_dim(embed_dim), num_heads(num_heads) {}
  std::size_t embed_dim = 0;  ///< E, features of query, key and value
  std::size_t num_heads = 1;  ///< must divide embed_dim
  double dropout = 0;         ///< on the attention probabilities, in training only
  bool bias = true;           ///< in_proj_bias and out_proj.bias
  bool batch_first = false;   ///< (B, L, E) rather than (L, B, E)
};

/// The keyword arguments of MultiheadAttention's forward, set by name.
/// The masks follow MultiheadAttention's convention, the opposite of
/// scaled_dot_product_attention's: a nonzero entry of key_padding_mask or of
/// a Boolean attn_mask marks a key that may NOT be attended to.
template <class T>
struct BasicMultiheadAttentionArgs {
  BasicVariable<T> key_padding_mask = {};  ///< (B, S), or (S) for unbatched input; empty: none
  bool need_weights = true;                ///< also return the attention probabilities
  BasicVariable<T> attn_mask = {};         ///< (L, S) or (B * num_heads, L, S); empty: none
  functional::AttnMask attn_mask_kind = functional::AttnMask::Boolean;  ///< Additive: added to the scores
  bool average_attn_weights = true;        ///< weights (B, L, S) averaged over heads, else (B, H, L, S)
};
using MultiheadAttentionArgs = BasicMultiheadAttentionArgs<float>;  ///< the float arguments

/// What MultiheadAttention's forward returns: the output in the query's
/// layout and, with need_weights, the probabilities (empty otherwise).
template <class T>
struct BasicAttentionOutput {
  ///@{
  /// The output, and the attention probabilities (empty without need_weights).
  BasicVariable<T> output, weights;
  ///@}
};
using AttentionOutput = BasicAttentionOutput<float>;  ///< the float output

/// PyTorch's nn.MultiheadAttention: in_proj_weight (3E, E) (PyTorch's layout:
/// the q, k and v projections stacked, applied as x W^T), in_proj_bias (3E)
/// and the Linear out_proj (out_proj.weight, out_proj.bias). Query (L, B, E),
/// key and value (S, B, E), or batch first, or unbatched (L, E) and (S, E).
/// Scores are divided by sqrt(E / num_heads). A query whose keys are all
/// masked gives output zeros and weights zeros (and sends no gradient) where
/// PyTorch 1.13 gives NaN, as scaled_dot_product_attention does.
/// Bad shapes throw ShapeError naming the layer and the shapes.
template <class T>
class BasicMultiheadAttention : public BasicModule<T> {
 public:
  explicit BasicMultiheadAttention(const MultiheadAttentionOptions& options);  ///< from the options
  /// From the sizes alone, with the other options' defaults.
  BasicMultiheadAttention(std::size_t embed_dim, std::size_t num_heads)
      : BasicMultiheadAttention(MultiheadAttentionOptions(embed_dim, num_heads)) {}
  /// Self-attention of x without masks: the output alone.
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  /// Attention of query over key and value, with the masks and options in args.
  BasicAttentionOutput<T> forward(const BasicVariable<T>& query, const BasicVariable<T>& key,
                                  const BasicVariable<T>& value, const BasicMultiheadAttentionArgs<T>& args = {});
  using BasicModule<T>::operator();
  /// forward(query, key, value, args).
  BasicAttentionOutput<T> operator()(const BasicVariable<T>& query, const BasicVariable<T>& key,
                                     const BasicVariable<T>& value, const BasicMultiheadAttentionArgs<T>& args = {}) {
    return forward(query, key, value, args);
  }
  std::string type_name() const override { return "MultiheadAttention"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  const MultiheadAttentionOptions& options() const { return options_; }  ///< what the layer was built with

  ///@{
  /// The input projection, in_proj_weight (3E, E) and in_proj_bias (3E);
  /// in_proj_bias is empty without bias.
  BasicVariable<T> in_proj_weight, in_proj_bias;
  ///@}
  std::shared_ptr<BasicLinear<T>> out_proj;  ///< the output projection, a Linear E -> E

 private:
  MultiheadAttentionOptions options_;
};
using MultiheadAttention = BasicMultiheadAttention<float>;  ///< the float MultiheadAttention

/// What the Transformer layers are built with (PyTorch's arguments).
struct TransformerLayerOptions {
  TransformerLayerOptions() = default;  ///< d_model 0: set it before use
  /// The sizes; the rest keeps its defaults.
  TransformerLayerOptions(std::size_t d_model, std::size_t nhead) : d_model(d_model), nhead(nhead) {}
  std::size_t d_model = 0;  ///< features of every position
  std::size_t nhead = 1;  ///< attention heads; must divide d_model
  std::size_t dim_feedforward = 2048;  ///< the feed-forward network's hidden size
  double dropout = 0.1;              ///< after attention, inside and after the feed-forward; training only
  std::string activation = "relu";  ///< or "gelu"
  double layer_norm_eps = 1e-5;  ///< the LayerNorms' eps
  bool batch_first = false;  ///< (B, L, E) rather than (L, B, E)
  bool norm_first = false;  ///< x + f(norm(x)) rather than norm(x + f(x))
};
using TransformerEncoderLayerOptions = TransformerLayerOptions;  ///< TransformerEncoderLayer's options
using TransformerDecoderLayerOptions = TransformerLayerOptions;  ///< TransformerDecoderLayer's options

/// The masks of an encoder's forward (src_mask, src_key_padding_mask), in
/// MultiheadAttention's convention. src_mask defaults to Additive, the kind
/// generate_square_subsequent_mask makes.
template <class T>
struct BasicEncoderMasks {
  BasicVariable<T> src_mask = {};  ///< (L, L) or (B * nhead, L, L); empty: none
  functional::AttnMask src_mask_kind = functional::AttnMask::Additive;  ///< how src_mask applies
  BasicVariable<T> src_key_padding_mask = {};  ///< (B, L), nonzero for padding; empty: none
};
using EncoderMasks = BasicEncoderMasks<float>;  ///< the float masks

/// The masks of a decoder's forward, as BasicEncoderMasks.
template <class T>
struct BasicDecoderMasks {
  BasicVariable<T> tgt_mask = {};  ///< on the decoder's self-attention, (L, L); empty: none
  functional::AttnMask tgt_mask_kind = functional::AttnMask::Additive;  ///< how tgt_mask applies
  BasicVariable<T> memory_mask = {};  ///< on the attention over the memory, (L, S); empty: none
  functional::AttnMask memory_mask_kind = functional::AttnMask::Additive;  ///< how memory_mask applies
  BasicVariable<T> tgt_key_padding_mask = {};  ///< (B, L), nonzero for padding; empty: none
  BasicVariable<T> memory_key_padding_mask = {};  ///< (B, S), nonzero for padding; empty: none
};
using DecoderMasks = BasicDecoderMasks<float>;  ///< the float masks

/// PyTorch's nn.TransformerEncoderLayer: submodules self_attn, linear1,
/// dropout, linear2, norm1, norm2, dropout1, dropout2.
template <class T>
class BasicTransformerEncoderLayer : public BasicModule<T> {
 public:
  explicit BasicTransformerEncoderLayer(const TransformerLayerOptions& options);  ///< from the options
  BasicVariable<T> forward(const BasicVariable<T>& src) override { return forward(src, {}); }  ///< without masks
  /// Self-attention then feed-forward, each with its residual and norm.
  BasicVariable<T> forward(const BasicVariable<T>& src, const BasicEncoderMasks<T>& masks);
  using BasicModule<T>::operator();
  /// forward(src, masks).
  BasicVariable<T> operator()(const BasicVariable<T>& src, const BasicEncoderMasks<T>& masks) {
    return forward(src, masks);
  }
  std::string type_name() const override { return "TransformerEncoderLayer"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  const TransformerLayerOptions& options() const { return options_; }  ///< what the layer was built with

  std::shared_ptr<BasicMultiheadAttention<T>> self_attn;  ///< self-attention
  ///@{
  /// The feed-forward network: linear1 d_model -> dim_feedforward, linear2 back.
  std::shared_ptr<BasicLinear<T>> linear1, linear2;
  ///@}
  ///@{
  /// Dropout inside the feed-forward network (dropout) and after each block.
  std::shared_ptr<BasicDropout<T>> dropout, dropout1, dropout2;
  ///@}
  ///@{
  /// The LayerNorm of each block.
  std::shared_ptr<BasicLayerNorm<T>> norm1, norm2;
  ///@}

 private:
  BasicVariable<T> feed_forward(const BasicVariable<T>& x);
  TransformerLayerOptions options_;
};
using TransformerEncoderLayer = BasicTransformerEncoderLayer<float>;  ///< the float TransformerEncoderLayer

/// PyTorch's nn.TransformerDecoderLayer: submodules self_attn,
/// multihead_attn, linear1, dropout, linear2, norm1..3, dropout1..3.
/// forward(x) alone is a ValueError: a decoder needs the memory.
template <class T>
class BasicTransformerDecoderLayer : public BasicModule<T> {
 public:
  explicit BasicTransformerDecoderLayer(const TransformerLayerOptions& options);  ///< from the options
  BasicVariable<T> forward(const BasicVariable<T>& tgt) override;  ///< ValueError: a decoder needs the memory
  /// Self-attention over tgt, attention over memory, then feed-forward.
  BasicVariable<T> forward(const BasicVariable<T>& tgt, const BasicVariable<T>& memory,
                           const BasicDecoderMasks<T>& masks = {});
  using BasicModule<T>::operator();
  /// forward(tgt, memory, masks).
  BasicVariable<T> operator()(const BasicVariable<T>& tgt, const BasicVariable<T>& memory,
                              const BasicDecoderMasks<T>& masks = {}) {
    return forward(tgt, memory, masks);
  }
  std::string type_name() const override { return "TransformerDecoderLayer"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  const TransformerLayerOptions& options() const { return options_; }  ///< what the layer was built with

  ///@{
  /// Self-attention over tgt, and attention over the memory.
  std::shared_ptr<BasicMultiheadAttention<T>> self_attn, multihead_attn;
  ///@}
  ///@{
  /// The feed-forward network: linear1 d_model -> dim_feedforward, linear2 back.
  std::shared_ptr<BasicLinear<T>> linear1, linear2;
  ///@}
  ///@{
  /// Dropout inside the feed-forward network (dropout) and after each block.
  std::shared_ptr<BasicDropout<T>> dropout, dropout1, dropout2, dropout3;
  ///@}
  ///@{
  /// The LayerNorm of each block.
  std::shared_ptr<BasicLayerNorm<T>> norm1, norm2, norm3;
  ///@}

 private:
  TransformerLayerOptions options_;
};
using TransformerDecoderLayer = BasicTransformerDecoderLayer<float>;  ///< the float TransformerDecoderLayer

/// PyTorch's nn.TransformerEncoder: num_layers copies of encoder_layer (its
/// values too) under layers.0, layers.1, ..., then the optional final norm.
template <class T>
class BasicTransformerEncoder : public BasicModule<T> {
 public:
  /// num_layers copies of encoder_layer, then norm if given.
  BasicTransformerEncoder(const BasicTransformerEncoderLayer<T>& encoder_layer, std::size_t num_layers,
                          std::shared_ptr<BasicLayerNorm<T>> norm = nullptr);
  BasicVariable<T> forward(const BasicVariable<T>& src) override { return forward(src, {}); }  ///< without masks
  /// Every layer in turn with the same masks, then the final norm.
  BasicVariable<T> forward(const BasicVariable<T>& src, const BasicEncoderMasks<T>& masks);
  using BasicModule<T>::operator();
  /// forward(src, masks).
  BasicVariable<T> operator()(const BasicVariable<T>& src, const BasicEncoderMasks<T>& masks) {
    return forward(src, masks);
  }
  std::string type_name() const override { return "TransformerEncoder"; }
  AnyModule rebuild(Dtype dtype) const override;

  std::vector<std::shared_ptr<BasicTransformerEncoderLayer<T>>> layers;  ///< the copies, in order
  std::shared_ptr<BasicLayerNorm<T>> norm;  ///< null without a final norm
};
using TransformerEncoder = BasicTransformerEncoder<float>;  ///< the float TransformerEncoder

/// PyTorch's nn.TransformerDecoder, as BasicTransformerEncoder.
template <class T>
class BasicTransformerDecoder : public BasicModule<T> {
 public:
  /// num_layers copies of decoder_layer, then norm if given.
  BasicTransformerDecoder(const BasicTransformerDecoderLayer<T>& decoder_layer, std::size_t num_layers,
                          std::shared_ptr<BasicLayerNorm<T>> norm = nullptr);
  BasicVariable<T> forward(const BasicVariable<T>& tgt) override;  ///< ValueError: needs the memory
  /// Every layer in turn over tgt with the same memory, then the final norm.
  BasicVariable<T> forward(const BasicVariable<T>& tgt, const BasicVariable<T>& memory,
                           const BasicDecoderMasks<T>& masks = {});
  using BasicModule<T>::operator();
  /// forward(tgt, memory, masks).
  BasicVariable<T> operator()(const BasicVariable<T>& tgt, const BasicVariable<T>& memory,
                              const BasicDecoderMasks<T>& masks = {}) {
    return forward(tgt, memory, masks);
  }
  std::string type_name() const override { return "TransformerDecoder"; }
  AnyModule rebuild(Dtype dtype) const override;

  std::vector<std::shared_ptr<BasicTransformerDecoderLayer<T>>> layers;  ///< the copies, in order
  std::shared_ptr<BasicLayerNorm<T>> norm;  ///< null without a final norm
};
using TransformerDecoder = BasicTransformerDecoder<float>;  ///< the float TransformerDecoder

/// The causal mask of nn.Transformer.generate_square_subsequent_mask: (size,
/// size), -infinity above the diagonal and 0 elsewhere, an Additive mask.
template <class T = float> BasicVariable<T> generate_square_subsequent_mask(std::size_t size);

}  // namespace zg::nn
