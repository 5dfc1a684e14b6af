#include "zerograd/nn/gpt.hpp"

namespace zg::nn {

namespace {

TransformerLayerOptions block_options(const GPTOptions& o) {
  TransformerLayerOptions b(o.n_embd, o.n_head);
  b.dim_feedforward = 4 * o.n_embd;
  b.dropout = o.dropout;
  b.activation = "gelu";
  b.batch_first = true;
  b.norm_first = true;
  return b;
}

}  // namespace

template <class T>
BasicGPT<T>::BasicGPT(const GPTOptions& o) : options_(o) {
  if (o.vocab_size == 0 || o.block_size == 0 || o.n_layer == 0)
    throw ValueError("GPT: vocab_size, block_size and n_layer must be positive, got " + extra_repr());
  wte = this->register_module("wte", std::make_shared<BasicEmbedding<T>>(o.vocab_size, o.n_embd));
  wpe = this->register_module("wpe", std::make_shared<BasicEmbedding<T>>(o.block_size, o.n_embd));
  drop = this->register_module("drop", std::make_shared<BasicDropout<T>>(o.dropout));
  blocks = this->register_module(
      "blocks", std::make_shared<BasicTransformerEncoder<T>>(BasicTransformerEncoderLayer<T>(block_options(o)),
                                                             o.n_layer));
  ln_f = this->register_module("ln_f", std::make_shared<BasicLayerNorm<T>>(Shape{o.n_embd}));
  lm_head = this->register_module(
      "lm_head", std::make_shared<BasicLinear<T>>(o.n_embd, o.vocab_size, Init::normal(0.02), /*bias*/ false));
}

template <class T>
BasicVariable<T> BasicGPT<T>::forward(const BasicVariable<T>& tokens) {
  if (tokens.ndim() != 2 || tokens.shape()[1] == 0)
    throw ShapeError("GPT: expected token ids (B, T) with T >= 1, got " + shape_str(tokens.shape()));
  const std::size_t steps = tokens.shape()[1];
  if (steps > options_.block_size)
    throw ShapeError("GPT: a sequence of " + std::to_string(steps) + " tokens is longer than block_size " +
                     std::to_string(options_.block_size) + " (the position table's rows)");
  Tensor<T> positions = Tensor<T>::from_shape({steps});
  for (std::size_t t = 0; t < steps; ++t) positions(t) = T(t);
  BasicVariable<T> x = drop->forward(wte->forward(tokens) + wpe->forward(BasicVariable<T>(std::move(positions))));
  BasicEncoderMasks<T> causal;
  causal.src_mask = generate_square_subsequent_mask<T>(steps);
  x = blocks->forward(x, causal);
  return lm_head->forward(ln_f->forward(x));
}

template <class T>
std::string BasicGPT<T>::extra_repr() const {
  const GPTOptions& o = options_;
  return "vocab_size=" + std::to_string(o.vocab_size) + ", block_size=" + std::to_string(o.block_size) +
         ", n_layer=" + std::to_string(o.n_layer) + ", n_head=" + std::to_string(o.n_head) +
         ", n_embd=" + std::to_string(o.n_embd) + ", dropout=" + zg::number_str(o.dropout);
}

template <class T>
AnyModule BasicGPT<T>::rebuild(Dtype dtype) const {
  return nn::rebuild<BasicGPT>(dtype, options_);
}

template class BasicGPT<float>;
template class BasicGPT<double>;

}  // namespace zg::nn
