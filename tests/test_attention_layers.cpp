// MultiheadAttention and the Transformer layers: outputs, weights and the
// gradients of inputs and parameters against PyTorch 1.13
// (tests/golden/attention_golden.hpp), gradcheck, queries with no key,
// shape errors, and a PyTorch-named state dict loaded through load_torch_npz.
#include <cmath>
#include <limits>

#include <xtensor/xview.hpp>

#include "golden/attention_golden.hpp"
#include "golden18.hpp"
#include "testing.hpp"

using namespace zg;
using golden18::check_close;
using golden18::ramp;
using golden_attention::ParamGrad;
using zg::testing::message_of;
using zg::testing::uniform;

namespace {

// The closed forms of make_attention_golden.py.
Variable64 seq_a(const Shape& s) { return ramp(s, [](double i) { return std::sin(0.7 * i + 0.3); }); }
Variable64 seq_b(const Shape& s) { return ramp(s, [](double i) { return std::cos(0.45 * i - 0.2); }); }
Variable64 seq_c(const Shape& s) {
  return ramp(s, [](double i) { return std::sin(1.3 * i) + 0.1 * std::cos(0.2 * i); });
}
int name_code(const std::string& name) {
  int h = 0;
  for (std::size_t j = 0; j < name.size(); ++j) h += int(j + 1) * int(static_cast<unsigned char>(name[j]));
  return h % 101;
}
Tensor<double> torch_param(const std::string& name, const Shape& shape) {
  const double code = name_code(name);
  return ramp(shape, [code](double i) { return 0.5 * std::sin(0.37 * i + 0.1 * code) + 0.1; }).data();
}
// zerograd's Linear holds (in, out), PyTorch's (out, in).
bool is_linear_weight(const std::string& name) {
  const auto ends = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends("out_proj.weight") || ((name.find("linear1") != std::string::npos ||
                                      name.find("linear2") != std::string::npos) && ends(".weight"));
}
Tensor<double> ours(const std::string& name, const Tensor<double>& theirs) {
  return is_linear_weight(name) ? Tensor<double>(xt::transpose(theirs)) : theirs;
}

// Sets every parameter of m by its PyTorch name, as set_params() does.
void set_params(nn::Module64& m, const std::vector<ParamGrad>& table) {
  auto named = m.named_parameters();
  REQUIRE(named.size() == table.size());
  for (const auto& row : table) {
    auto it = std::find_if(named.begin(), named.end(), [&](const auto& p) { return p.first == row.name; });
    REQUIRE_MESSAGE(it != named.end(), row.name);
    it->second.data() = ours(row.name, torch_param(row.name, Shape(row.shape.begin(), row.shape.end())));
  }
  m.eval();
}

void check_param_grads(nn::Module64& m, const std::vector<ParamGrad>& table) {
  auto named = m.named_parameters();
  for (const auto& row : table) {
    CAPTURE(row.name);
    auto it = std::find_if(named.begin(), named.end(), [&](const auto& p) { return p.first == row.name; });
    REQUIRE(it != named.end());
    Tensor<double> want = Tensor<double>::from_shape(Shape(row.shape.begin(), row.shape.end()));
    std::copy(row.grad->begin(), row.grad->end(), want.begin());
    want = ours(row.name, want);
    check_close(it->second.grad(), std::vector<double>(want.begin(), want.end()));
  }
}

Variable64 leaf(const Variable64& x) { return Variable64(x.data()).requires_grad_(); }

// sum(y cos(i)) + sum(w sin(i)), the script's loss.
void backward_of(const Variable64& y, const Variable64& w = {}) {
  Variable64 loss = sum(y * ramp(y.shape(), [](double i) { return std::cos(i); }));
  if (w.defined()) loss = loss + sum(w * ramp(w.shape(), [](double i) { return std::sin(i); }));
  loss.backward();
}

Variable64 mask_of(const Shape& shape, const std::vector<double>& values) {
  Tensor<double> t = Tensor<double>::from_shape(shape);
  std::copy(values.begin(), values.end(), t.begin());
  return Variable64(t);
}
// make_attention_golden.py's key padding mask (True: ignored).
Variable64 padding() { return mask_of({2, 3}, {0, 0, 1, 1, 0, 0}); }

bool all_finite(const Variable64& x) {
  for (double d : x.data())
    if (!std::isfinite(d)) return false;
  return true;
}

nn::TransformerLayerOptions small_layer() {
  nn::TransformerLayerOptions o(4, 2);
  o.dim_feedforward = 6;
  o.dropout = 0;
  return o;
}

}  // namespace

TEST_CASE("MultiheadAttention: self-attention with a key padding mask equals PyTorch, weights averaged or per head") {
  using namespace golden_attention;
  for (bool average : {true, false}) {
    CAPTURE(average);
    const auto& table = average ? mha_self_params : mha_self_heads_params;
    nn::BasicMultiheadAttention<double> mha(4, 2);
    set_params(mha, table);
    Variable64 x = leaf(seq_a({3, 2, 4}));
    nn::BasicMultiheadAttentionArgs<double> args;
    args.key_padding_mask = padding();
    args.average_attn_weights = average;
    auto [out, weights] = mha(x, x, x, args);
    check_close(out, average ? mha_self : mha_self_heads);
    CHECK(weights.shape() == (average ? Shape{2, 3, 3} : Shape{2, 2, 3, 3}));
    check_close(weights, average ? mha_self_weights : mha_self_heads_weights);
    backward_of(out, weights);
    check_close(x.grad(), average ? mha_self_grad0 : mha_self_heads_grad0);
    check_param_grads(mha, table);
  }
}

TEST_CASE("MultiheadAttention: cross-attention, batch first, a boolean attn_mask, with and without weights") {
  using namespace golden_attention;
  nn::MultiheadAttentionOptions o(4, 2);
  o.batch_first = true;
  nn::BasicMultiheadAttention<double> mha(o);
  set_params(mha, mha_cross_params);
  std::vector<double> hidden;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j) hidden.push_back((i + 2 * j) % 3 == 0 ? 1 : 0);
  nn::BasicMultiheadAttentionArgs<double> args;
  args.attn_mask = mask_of({3, 5}, hidden);
  const Variable64 q = leaf(seq_a({2, 3, 4})), k = leaf(seq_b({2, 5, 4})), v = leaf(seq_c({2, 5, 4}));
  auto [out, weights] = mha(q, k, v, args);
  check_close(out, mha_cross);
  check_close(weights, mha_cross_weights);
  backward_of(out, weights);
  check_close(q.grad(), mha_cross_grad0);
  check_close(k.grad(), mha_cross_grad1);
  check_close(v.grad(), mha_cross_grad2);
  check_param_grads(mha, mha_cross_params);

  // The fused path (no weights) gives the same output; the same mask as
  // (B * heads, L, S) and as an additive mask too.
  args.need_weights = false;
  auto fused = mha(q, k, v, args);
  CHECK_FALSE(fused.weights.defined());
  check_close(fused.output, mha_cross);
  std::vector<double> per_head, additive;
  for (int n = 0; n < 4; ++n) per_head.insert(per_head.end(), hidden.begin(), hidden.end());
  for (double h : hidden) additive.push_back(h != 0 ? -std::numeric_limits<double>::infinity() : 0.0);
  args.attn_mask = mask_of({4, 3, 5}, per_head);
  check_close(mha(q, k, v, args).output, mha_cross);
  args.attn_mask = mask_of({3, 5}, additive);
  args.attn_mask_kind = nn::functional::AttnMask::Additive;
  check_close(mha(q, k, v, args).output, mha_cross);
  args.need_weights = true;
  check_close(mha(q, k, v, args).weights, mha_cross_weights);

  // Unbatched (L, E) input is the first batch of the batched one.
  const auto first = [](const Variable64& x) { return Variable64(Tensor<double>(xt::view(x.data(), 0))); };
  auto one = mha(first(q), first(k), first(v), args);
  CHECK(one.output.shape() == Shape{3, 4});
  CHECK(one.weights.shape() == Shape{3, 5});
  check_close(one.output, std::vector<double>(mha_cross.begin(), mha_cross.begin() + 12));
}

TEST_CASE("MultiheadAttention: a query with every key masked gives zeros, not NaN, and finite gradients") {
  nn::BasicMultiheadAttention<double> mha(4, 2);
  mha.eval();
  for (bool need_weights : {true, false}) {
    CAPTURE(need_weights);
    mha.zero_grad();
    Variable64 x = leaf(uniform({3, 2, 4}, -1, 1, 3));
    nn::BasicMultiheadAttentionArgs<double> args;
    args.key_padding_mask = mask_of({2, 3}, {0, 1, 0, 1, 1, 1});  // batch 1 sees no key
    args.need_weights = need_weights;
    auto [out, weights] = mha(x, x, x, args);
    REQUIRE(all_finite(out));
    // With no key the attention is zero, so the output is out_proj's bias (0).
    for (std::size_t l = 0; l < 3; ++l)
      for (std::size_t e = 0; e < 4; ++e) CHECK(out.data()(l, 1, e) == 0.0);
    if (need_weights) {
      REQUIRE(all_finite(weights));
      for (std::size_t l = 0; l < 3; ++l)
        for (std::size_t s = 0; s < 3; ++s) CHECK(weights.data()(1, l, s) == 0.0);
    }
    backward_of(out, weights);
    CHECK(all_finite(x.grad()));
    for (const auto& p : mha.parameters()) CHECK(all_finite(p.grad()));
  }
}

TEST_CASE("TransformerEncoderLayer: post-norm relu with padding and pre-norm gelu batch first equal PyTorch") {
  using namespace golden_attention;
  SUBCASE("post-norm, relu, src_key_padding_mask") {
    nn::BasicTransformerEncoderLayer<double> layer(small_layer());
    set_params(layer, enc_post_relu_params);
    Variable64 x = leaf(seq_a({3, 2, 4}));
    nn::BasicEncoderMasks<double> masks;
    masks.src_key_padding_mask = padding();
    Variable64 y = layer(x, masks);
    check_close(y, enc_post_relu);
    backward_of(y);
    check_close(x.grad(), enc_post_relu_grad0);
    check_param_grads(layer, enc_post_relu_params);
  }
  SUBCASE("pre-norm, gelu, batch first") {
    auto o = small_layer();
    o.activation = "gelu";
    o.batch_first = true;
    o.norm_first = true;
    nn::BasicTransformerEncoderLayer<double> layer(o);
    set_params(layer, enc_pre_gelu_params);
    Variable64 x = leaf(seq_a({2, 3, 4}));
    Variable64 y = layer(x);
    check_close(y, enc_pre_gelu);
    backward_of(y);
    check_close(x.grad(), enc_pre_gelu_grad0);
    check_param_grads(layer, enc_pre_gelu_params);
  }
}

TEST_CASE("TransformerDecoderLayer: a causal tgt_mask over memory of another length equals PyTorch") {
  using namespace golden_attention;
  nn::BasicTransformerDecoderLayer<double> layer(small_layer());
  set_params(layer, dec_causal_params);
  Variable64 tgt = leaf(seq_a({3, 2, 4})), memory = leaf(seq_b({5, 2, 4}));
  nn::BasicDecoderMasks<double> masks;
  masks.tgt_mask = nn::generate_square_subsequent_mask<double>(3);
  Variable64 y = layer(tgt, memory, masks);
  check_close(y, dec_causal);
  backward_of(y);
  check_close(tgt.grad(), dec_causal_grad0);
  check_close(memory.grad(), dec_causal_grad1);
  check_param_grads(layer, dec_causal_params);
  CHECK(message_of<ValueError>([&] { layer(tgt); }).find("needs the memory") != std::string::npos);
}

TEST_CASE("TransformerEncoder: two layers and a final norm with a causal mask equal PyTorch") {
  using namespace golden_attention;
  nn::BasicTransformerEncoder<double> encoder(nn::BasicTransformerEncoderLayer<double>(small_layer()), 2,
                                              std::make_shared<nn::BasicLayerNorm<double>>(Shape{4}));
  set_params(encoder, encoder2_params);
  Variable64 x = leaf(seq_a({3, 2, 4}));
  nn::BasicEncoderMasks<double> masks;
  masks.src_mask = nn::generate_square_subsequent_mask<double>(3);
  Variable64 y = encoder(x, masks);
  check_close(y, encoder2);
  backward_of(y);
  check_close(x.grad(), encoder2_grad0);
  check_param_grads(encoder, encoder2_params);
  // The copies are independent modules, and to<float>() keeps the structure.
  CHECK(encoder.layers[0].get() != encoder.layers[1].get());
  CHECK(encoder.to<float>()->named_parameters().size() == encoder2_params.size());
}

TEST_CASE("TransformerEncoder: a PyTorch-named state dict loads through load_torch_npz") {
  using namespace golden_attention;
  nn::NamedArrays arrays;
  for (const auto& row : encoder2_params) {
    Tensor<double> t = torch_param(row.name, Shape(row.shape.begin(), row.shape.end()));
    arrays.emplace_back(row.name, Tensor<float>(xt::cast<float>(t)));
  }
  const auto dir = zg::testing::empty_dir("attention_layers");
  const std::string path = (dir / "encoder.npz").string();
  nn::save_npz(path, arrays);
  nn::TransformerEncoder encoder(nn::TransformerEncoderLayer(small_layer()), 2,
                                 std::make_shared<nn::LayerNorm>(Shape{4}));
  nn::load_torch_npz(path, encoder);
  encoder.eval();
  nn::BasicEncoderMasks<float> masks;
  masks.src_mask = nn::generate_square_subsequent_mask(3);
  Variable y = encoder(seq_a({3, 2, 4}).to<float>(), masks);
  check_close(y.to<double>(), encoder2, 2e-5);
}

TEST_CASE("MultiheadAttention and TransformerEncoderLayer pass gradcheck in double") {
  nn::BasicMultiheadAttention<double> mha(4, 2);
  auto report = nn::gradcheck(mha, uniform({3, 2, 4}, -1, 1, 21));
  INFO(zg::testing::str(report));
  CHECK(report.passed);
  nn::BasicTransformerEncoderLayer<double> layer(small_layer());
  report = nn::gradcheck(layer, uniform({3, 2, 4}, -1, 1, 22));
  INFO(zg::testing::str(report));
  CHECK(report.passed);
}

TEST_CASE("MultiheadAttention and the Transformer layers name the layer and the shapes in their errors") {
  CHECK(message_of<ValueError>([] { nn::MultiheadAttention(6, 4); }) ==
        "MultiheadAttention(embed_dim=6, num_heads=4): embed_dim must be a positive multiple of num_heads");
  nn::MultiheadAttention mha(4, 2);
  const Variable q = uniform({3, 2, 4}, -1, 1, 1).to<float>(), k = uniform({5, 2, 4}, -1, 1, 2).to<float>();
  CHECK(message_of<ShapeError>([&] { mha(q, uniform({5, 2, 3}, -1, 1, 2).to<float>(), k); }) ==
        "MultiheadAttention(embed_dim=4, num_heads=2): query, key and value need 4 features, got query (3, 2, 4), "
        "key (5, 2, 3), value (5, 2, 4)");
  CHECK(message_of<ShapeError>([&] { mha(q, uniform({5, 3, 4}, -1, 1, 2).to<float>(), k); })
            .find("different batch sizes") != std::string::npos);
  CHECK(message_of<ShapeError>([&] { mha(q, uniform({0, 2, 4}, -1, 1, 2).to<float>(),
                                         uniform({0, 2, 4}, -1, 1, 2).to<float>()); })
            .find("empty sequence") != std::string::npos);
  CHECK(message_of<ShapeError>([&] { mha(q, uniform({4, 2, 4}, -1, 1, 2).to<float>(), k); })
            .find("key and value must have the same length") != std::string::npos);
  nn::MultiheadAttentionArgs args;
  args.key_padding_mask = uniform({2, 4}, 0, 1, 3).to<float>();
  CHECK(message_of<ShapeError>([&] { mha(q, k, k, args); }) ==
        "MultiheadAttention(embed_dim=4, num_heads=2): key_padding_mask must be (2, 5), got (2, 4) for query "
        "(3, 2, 4), key (5, 2, 4), value (5, 2, 4)");
  args = {};
  args.attn_mask = uniform({3, 3}, 0, 1, 3).to<float>();
  CHECK(message_of<ShapeError>([&] { mha(q, k, k, args); }) ==
        "MultiheadAttention(embed_dim=4, num_heads=2): attn_mask must be (3, 5) or (4, 3, 5), got (3, 3) for query "
        "(3, 2, 4), key (5, 2, 4), value (5, 2, 4)");
  auto o = small_layer();
  o.activation = "tanh";
  CHECK(message_of<ValueError>([&] { nn::TransformerEncoderLayer{o}; }) ==
        "TransformerEncoderLayer: activation must be \"relu\" or \"gelu\", got \"tanh\"");
  nn::TransformerEncoderLayer layer(small_layer());
  CHECK(message_of<ShapeError>([&] { layer(uniform({3, 2, 5}, -1, 1, 2).to<float>()); })
            .find("need 4 features") != std::string::npos);
}

TEST_CASE("generate_square_subsequent_mask: -infinity above the diagonal, 0 elsewhere") {
  const Variable m = nn::generate_square_subsequent_mask(3);
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> want = {0, -inf, -inf, 0, 0, -inf, 0, 0, 0};
  REQUIRE(m.shape() == Shape{3, 3});
  for (std::size_t i = 0; i < 9; ++i) CHECK(double(m.data().data()[i]) == want[i]);
}
