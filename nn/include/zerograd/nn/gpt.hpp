#pragma once
// A decoder-only Transformer language model in the shape of GPT-2 and
// nanoGPT, on zerograd's own layers: token and position embeddings, a stack
// of pre-norm TransformerEncoderLayers under a causal mask, a final
// LayerNorm and a linear head to the vocabulary.
#include <cstddef>
#include <memory>
#include <string>

#include "zerograd/nn/attention.hpp"
#include "zerograd/nn/layers.hpp"

namespace zg::nn {

struct GPTOptions {
  GPTOptions() = default;
  GPTOptions(std::size_t vocab_size, std::size_t block_size) : vocab_size(vocab_size), block_size(block_size) {}
  std::size_t vocab_size = 0;
  std::size_t block_size = 0;  // the longest sequence: the rows of the position table
  std::size_t n_layer = 4, n_head = 4, n_embd = 128;
  double dropout = 0.1;  // after the embeddings and inside every layer, in train mode only
};

// forward(tokens) maps token ids (B, T) (whole numbers in [0, vocab_size),
// T <= block_size) to next-token logits (B, T, vocab_size); position t sees
// tokens 0..t only. Submodules: wte, wpe (Embedding), drop, blocks (a
// TransformerEncoder of norm_first GELU layers with dim_feedforward
// 4 n_embd, batch_first), ln_f (LayerNorm) and lm_head (Linear, no bias).
template <class T>
class BasicGPT : public BasicModule<T> {
 public:
  explicit BasicGPT(const GPTOptions& options);
  BasicVariable<T> forward(const BasicVariable<T>& tokens) override;
  std::string type_name() const override { return "GPT"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override;
  const GPTOptions& options() const { return options_; }

  std::shared_ptr<BasicEmbedding<T>> wte, wpe;
  std::shared_ptr<BasicDropout<T>> drop;
  std::shared_ptr<BasicTransformerEncoder<T>> blocks;
  std::shared_ptr<BasicLayerNorm<T>> ln_f;
  std::shared_ptr<BasicLinear<T>> lm_head;

 private:
  GPTOptions options_;
};
using GPT = BasicGPT<float>;

}  // namespace zg::nn
