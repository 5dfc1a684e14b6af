#include "language_model.hpp"

#include <algorithm>

namespace zg::examples {

namespace {

// Embedding, a stack of LSTM or GRU layers (batch first), dropout on the
// last layer's output, and a Linear head applied to every step.
class RecurrentLanguageModel : public LanguageModel {
 public:
  explicit RecurrentLanguageModel(const LanguageModelConfig& c) : config_(c) {
    embedding_ = register_module("embedding", std::make_shared<nn::Embedding>(c.vocab, c.embed));
    nn::RecurrentOptions o(c.embed, c.hidden, c.layers);
    o.batch_first = true;
    o.dropout = c.layers > 1 ? c.dropout : 0;  // between layers; the last layer's output gets dropout_ below
    if (c.kind == "lstm") rnn_ = register_module("rnn", std::make_shared<nn::LSTM>(o));
    else rnn_ = register_module("rnn", std::make_shared<nn::GRU>(o));
    dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
    // Xavier: the logits start small, so the first loss is near log V.
    head_ = register_module("head", std::make_shared<nn::Linear>(c.hidden, c.vocab, nn::Init::xavier()));
  }
  using LanguageModel::forward;
  LanguageModelOutput forward(const Variable& tokens, const nn::RecurrentState& state) override {
    const std::size_t b = tokens.shape()[0], t = tokens.shape()[1];
    nn::RecurrentOutput out = (*rnn_)((*embedding_)(tokens), state);
    // Linear flattens all but the first axis, so the steps become rows first.
    Variable h = reshape(out.output, {b * t, config_.hidden});
    Variable logits = (*head_)((*dropout_)(h));
    return {reshape(logits, {b, t, config_.vocab}), out.state};
  }
  std::string type_name() const override { return config_.kind == "lstm" ? "LSTMLanguageModel" : "GRULanguageModel"; }

 private:
  LanguageModelConfig config_;
  std::shared_ptr<nn::Embedding> embedding_;
  std::shared_ptr<nn::BasicRecurrent<float>> rnn_;
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<nn::Linear> head_;
};

// nn::GPT: no state between windows; each window attends within itself.
class TransformerLanguageModel : public LanguageModel {
 public:
  explicit TransformerLanguageModel(const LanguageModelConfig& c) : config_(c) {
    nn::GPTOptions o(c.vocab, c.block);
    o.n_layer = c.layers;
    o.n_head = c.heads;
    o.n_embd = c.embed;
    o.dropout = c.dropout;
    gpt_ = register_module("gpt", std::make_shared<nn::GPT>(o));
  }
  using LanguageModel::forward;
  LanguageModelOutput forward(const Variable& tokens, const nn::RecurrentState&) override {
    return {(*gpt_)(tokens), {}};
  }
  std::size_t context_length() const override { return config_.block; }
  std::string type_name() const override { return "GPTLanguageModel"; }

 private:
  LanguageModelConfig config_;
  std::shared_ptr<nn::GPT> gpt_;
};

}  // namespace

const std::vector<std::string>& language_model_kinds() {
  static const std::vector<std::string> kinds = {"lstm", "gru", "gpt"};
  return kinds;
}

std::shared_ptr<LanguageModel> make_language_model(const LanguageModelConfig& config) {
  const auto& kinds = language_model_kinds();
  if (std::find(kinds.begin(), kinds.end(), config.kind) == kinds.end())
    throw ValueError("unknown language model '" + config.kind + "'");
  if (config.kind == "gpt") return std::make_shared<TransformerLanguageModel>(config);
  return std::make_shared<RecurrentLanguageModel>(config);
}

}  // namespace zg::examples
