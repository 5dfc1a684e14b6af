// nn::GPT: shapes, causality, gradients in float64, errors, and that it learns.
#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;

namespace {

template <class T>
BasicVariable<T> tokens(const Shape& shape, const std::vector<int>& ids) {
  Tensor<T> t = Tensor<T>::from_shape(shape);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = T(ids[i]);
  return BasicVariable<T>(std::move(t));
}

nn::GPTOptions tiny() {
  nn::GPTOptions o(/*vocab*/ 5, /*block*/ 4);
  o.n_layer = 2;
  o.n_head = 2;
  o.n_embd = 4;
  o.dropout = 0;
  return o;
}

}  // namespace

TEST_CASE("GPT: logits (B, T, vocab), PyTorch-style names, each position sees only the tokens before it") {
  manual_seed(3);
  nn::GPT gpt(tiny());
  gpt.eval();
  const Variable a = gpt(tokens<float>({2, 4}, {0, 1, 2, 3, 4, 3, 2, 1}));
  CHECK(a.shape() == Shape{2, 4, 5});
  // Changing the last two tokens leaves the first two positions' logits alone.
  const Variable b = gpt(tokens<float>({2, 4}, {0, 1, 4, 4, 4, 3, 0, 0}));
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t t = 0; t < 4; ++t) {
      float diff = 0;
      for (std::size_t v = 0; v < 5; ++v) diff = std::max(diff, std::abs(a.data()(n, t, v) - b.data()(n, t, v)));
      CAPTURE(n);
      CAPTURE(t);
      if (t < 2) CHECK(diff == 0.f);
      else CHECK(diff > 0.f);
    }
  // A shorter sequence gives the same logits at the positions it has.
  const Variable c = gpt(tokens<float>({2, 2}, {0, 1, 4, 3}));
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t v = 0; v < 5; ++v) CHECK(c.data()(1, i, v) == doctest::Approx(a.data()(1, i, v)).epsilon(1e-6));
  std::set<std::string> names;
  for (const auto& [name, p] : gpt.named_parameters()) names.insert(name);
  CHECK(names.count("wte.weight") == 1);
  CHECK(names.count("wpe.weight") == 1);
  CHECK(names.count("blocks.layers.1.self_attn.in_proj_weight") == 1);
  CHECK(names.count("ln_f.weight") == 1);
  CHECK(names.count("lm_head.weight") == 1);
  CHECK(names.count("lm_head.bias") == 0);
}

TEST_CASE("GPT: nn::gradcheck in float64") {
  manual_seed(4);
  nn::BasicGPT<double> gpt(tiny());
  nn::ModuleGradcheckOptions o;
  o.check_input = false;  // token ids
  const auto report = nn::gradcheck(gpt, tokens<double>({2, 3}, {0, 4, 2, 1, 1, 3}), o);
  INFO(report);
  CHECK(report.passed);
  CHECK(report.elements_checked == gpt.parameter_count());
}

TEST_CASE("GPT: a tiny model learns a repeating sequence") {
  manual_seed(5);
  nn::GPTOptions o(3, 6);
  o.n_layer = 1;
  o.n_head = 2;
  o.n_embd = 16;
  o.dropout = 0;
  nn::GPT gpt(o);
  optim::Adam adam(gpt.parameters(), 0.02f);
  const Variable x = tokens<float>({2, 6}, {0, 1, 2, 0, 1, 2, 1, 2, 0, 1, 2, 0});
  const Variable y = tokens<float>({12}, {1, 2, 0, 1, 2, 0, 2, 0, 1, 2, 0, 1});
  float first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    Variable loss = nn::functional::cross_entropy(zg::reshape(gpt(x), {12, 3}), y);
    if (step == 0) first = loss.item();
    last = loss.item();
    loss.backward();
    adam.step();
    adam.zero_grad();
  }
  CAPTURE(first);
  CHECK(last < 0.05f);
}

TEST_CASE("GPT: errors name the model and the sizes") {
  nn::GPT gpt(tiny());
  CHECK(message_of<ShapeError>([&] { gpt(tokens<float>({1, 5}, {0, 1, 2, 3, 4})); }) ==
        "GPT: a sequence of 5 tokens is longer than block_size 4 (the position table's rows)");
  CHECK(message_of<ShapeError>([&] { gpt(tokens<float>({3}, {0, 1, 2})); }) ==
        "GPT: expected token ids (B, T) with T >= 1, got (3)");
  CHECK(message_of<ValueError>([&] { gpt(tokens<float>({1, 2}, {0, 5})); }).find("Embedding: index 5") == 0);
  nn::GPTOptions bad = tiny();
  bad.vocab_size = 0;
  CHECK(message_of<ValueError>([&] { nn::GPT{bad}; }).find("GPT: vocab_size, block_size and n_layer must be positive") == 0);
  bad = tiny();
  bad.n_head = 3;
  CHECK_THROWS_AS(nn::GPT{bad}, ValueError);
}
