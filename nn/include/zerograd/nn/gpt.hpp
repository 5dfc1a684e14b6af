#pragma once
/// @file
/// A decoder-only Transformer language model in the shape of GPT-2 and
/// nanoGPT, on zerograd's own layers: token and position embeddings, a stack
/// of pre-norm TransformerEncoderLayers under a causal mask, a final
/// LayerNorm and a linear head to the vocabulary.
#include <cstddef>
#include <memory>
#include <string>

#include "zerograd/nn/attention.hpp"
#include "zerograd/nn/layers.hpp"

namespace zg::nn {

/// What a GPT is built with; the defaults are a small CPU configuration.
struct GPTOptions {
  GPTOptions() = default;  ///< sizes 0: set them before use
  /// The sizes; the rest keeps its defaults.
  GPTOptions(std::size_t vocab_size, std::size_t block_size) : vocab_size(vocab_size), block_size(block_size) {}
  std::size_t vocab_size = 0;  ///< token ids are in [0, vocab_size)
  std::size_t block_size = 0;  ///< the longest sequence: the rows of the position table
  ///@{
  /// Transformer layers, attention heads per layer and features per position
  /// (n_head must divide n_embd).
  std::size_t n_layer = 4, n_head = 4, n_embd = 128;
  ///@}
  double dropout = 0.1;  ///< after the embeddings and inside every layer, in train mode only
};

/// A GPT language model, as nanoGPT's. forward(tokens) maps token ids (B, T) (whole numbers in [0, vocab_size),
/// T <= block_size) to next-token logits (B, T, vocab_size); position t sees
/// tokens 0..t only. Submodules: wte, wpe (Embedding), drop, blocks (a
/// TransformerEncoder of norm_first GELU layers with dim_feedforward
/// 4 n_embd, batch_first), ln_f (LayerNorm) and lm_head (Linear, no bias).
template <class T>
class BasicGPT : public BasicModule<T> {
 public:
  explicit BasicGPT(const GPTOptions& options);  ///< from the options
  BasicVariable<T> forward(const BasicVariable<T>& tokens) override;
  std::string type_name() const override { return "GPT"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  const GPTOptions& options() const { return options_; }  ///< what it was built with

  ///@{
  /// Token embeddings (vocab_size, n_embd) and position embeddings
  /// (block_size, n_embd).
  std::shared_ptr<BasicEmbedding<T>> wte, wpe;
  ///@}
  std::shared_ptr<BasicDropout<T>> drop;  ///< dropout on the summed embeddings
  std::shared_ptr<BasicTransformerEncoder<T>> blocks;  ///< the n_layer Transformer layers under a causal mask
  std::shared_ptr<BasicLayerNorm<T>> ln_f;  ///< the final LayerNorm
  std::shared_ptr<BasicLinear<T>> lm_head;  ///< n_embd -> vocab_size logits, no bias

 private:
  GPTOptions options_;
};
using GPT = BasicGPT<float>;  ///< the float GPT

}  // namespace zg::nn
