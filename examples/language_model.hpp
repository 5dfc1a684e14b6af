#pragma once
// Language models for train-lm: tokens (B, T) in, next-token logits
// (B, T, V) out, with a state carried from one window to the next.
// make_language_model builds one by name; a model without a recurrent
// state (a transformer) returns an empty state and ignores the one given.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <zerograd/zerograd.hpp>

namespace zg::examples {

struct LanguageModelOutput {
  Variable logits;             // (B, T, V)
  nn::RecurrentState state;    // what the next window of the same rows starts from
};

class LanguageModel : public nn::Module {
 public:
  using nn::Module::operator();
  // tokens (B, T) of indices below vocab_size; an empty state means the
  // start of the rows.
  virtual LanguageModelOutput forward(const Variable& tokens, const nn::RecurrentState& state) = 0;
  LanguageModelOutput operator()(const Variable& tokens, const nn::RecurrentState& state) {
    return forward(tokens, state);
  }
  // The logits alone, from the start of the rows.
  Variable forward(const Variable& tokens) override { return forward(tokens, {}).logits; }
  // How many tokens a model without a recurrent state sees at most (its
  // block size); 0 for a recurrent model, which carries its state instead.
  virtual std::size_t context_length() const { return 0; }
};

struct LanguageModelConfig {
  std::string kind = "lstm";  // one of language_model_kinds()
  std::size_t vocab = 0, embed = 128, hidden = 256, layers = 2;
  std::size_t heads = 4, block = 64;  // gpt only: attention heads, the longest context
  double dropout = 0;
};

// The names make_language_model knows, in the order --help lists them.
const std::vector<std::string>& language_model_kinds();
// Throws zg::ValueError for a kind not in language_model_kinds().
std::shared_ptr<LanguageModel> make_language_model(const LanguageModelConfig& config);

}  // namespace zg::examples
