// The ONNX export test's first half: exports small models with random
// weights to OUT_DIR and writes zerograd's own outputs beside them, for
// check.py (ONNX's checker) and run_ort.js (ONNX Runtime) to compare.
// Also checks that an unexportable Function is an error naming it, with
// nothing written. usage: export_models OUT_DIR
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include "language_model.hpp"
#include "zerograd/custom.hpp"
#include "zerograd/nn.hpp"
#include "zerograd/onnx.hpp"
#include "zerograd/ops.hpp"

namespace {

using namespace zg;
namespace F = zg::nn::functional;

// Elementwise math, reductions and the shape ops in one module.
struct OpsNet : nn::Module {
  Variable w;
  OpsNet() { w = register_parameter("w", Variable(Tensor<float>(xt::linspace<float>(0.5f, 1.5f, 6)))); }
  std::string type_name() const override { return "OpsNet"; }
  Variable forward(const Variable& x) override {  // x (N, 4, 6)
    Variable a = transpose(x, Axes{0, 2, 1}) * reshape(w, {6, 1});  // (N, 6, 4)
    std::vector<Variable> parts = split(a, std::vector<std::size_t>{1, 3}, 2);
    Variable b = concat(std::vector<Variable>{parts[1], parts[0] * 2.0f}, 2);
    Variable c = get_item(b, {Index(), Index(Slice{1, 5}), Index(Slice{{}, {}, -1})});  // (N, 4, 4)
    Variable d = exp(tanh(c)) + sqrt(abs(c) + 1.0f) - log(sigmoid(c) + 1.0f) + sin(c) * cos(c);
    Variable e = maximum(clip(d, -1.0f, 3.0f), leaky_relu(c, 0.2f)) / (square(c) + 2.0f) + pow(abs(c) + 1.0f, 1.5f);
    Variable f = softmax(e, 1) + log_softmax(e, -1) + minimum(e, 1.0f - e) - sum(e, {1}, true) * 0.1f;
    Variable g = mean(f, {2}) + max(f, {2}) - logsumexp(f, {2}) + norm(f, 2, {2}) + min(f, {2}) + get_item(f, {Index(), 0});
    const Variable mask(Tensor<float>(xt::eye<float>(4)));  // a constant (4, 4), broadcast over the batch
    Variable h = masked_fill(f, mask, -2.0) + tril(f) - triu(f, 1) + where(mask, f, square(f));
    h = h + broadcast_to(get_item(h, {Index(), Index(Index::Array{2})}), h.shape());  // (N, 1, 4) -> (N, 4, 4)
    h = tanh(matmul(h, h, false, true) * 0.01f) + tanh(sum_to(h, {1, 4, 4}) * 0.01f) + 2.0f / (abs(h) + 1.0f);
    return concat(std::vector<Variable>{g, reshape(h, {h.shape()[0], 16}), norm(h, 1, {2})}, 1);  // (N, 24)
  }
};

// Softplus on both sides of its threshold: PyTorch's defaults (linear where
// 15 x > 20) and beta 2, threshold 1, where the linear branch differs from
// softplus by up to 0.16.
struct SoftplusNet : nn::Module {
  std::string type_name() const override { return "SoftplusNet"; }
  Variable forward(const Variable& x) override {
    return concat(std::vector<Variable>{F::softplus(x * 15.0f), F::softplus(x, 2, 1)}, 1);
  }
};

// Conv, ConvTranspose2d and AdaptiveAvgPool2d.
std::shared_ptr<nn::Sequential> upsampling_net() {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 4, 3, 2, 1))
      .add(std::make_shared<nn::ReLU>())
      .add(std::make_shared<nn::ConvTranspose2d>(4, 2, 3, 2, 1, 1))
      .add(std::make_shared<nn::AvgPool2d>(2, 1))
      .add(std::make_shared<nn::AdaptiveAvgPool2d>(3))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(18, 5));
  return net;
}

// Embedding, LayerNorm, GELU, Linear over the last axis of (N, T, C).
std::shared_ptr<nn::Sequential> embedding_net() {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Embedding>(20, 16))
      .add(std::make_shared<nn::LayerNorm>(Shape{16}))
      .add(std::make_shared<nn::GELU>())
      .add(std::make_shared<nn::Linear>(16, 8))
      .add(std::make_shared<nn::Tanh>());
  return net;
}

Tensor<float> random_input(const Shape& shape, bool tokens, std::size_t vocab, Generator& gen) {
  Tensor<float> t = Tensor<float>::from_shape(shape);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<std::size_t> token(0, vocab - 1);
  for (float& v : t) v = tokens ? static_cast<float>(token(gen)) : normal(gen);
  return t;
}

void write_raw(const std::string& path, const Tensor<float>& t) {
  std::ofstream out(path, std::ios::binary);
  const Tensor<float> c = t;
  out.write(reinterpret_cast<const char*>(c.data()), static_cast<std::streamsize>(c.size() * sizeof(float)));
  if (!out) throw IOError("cannot write " + path);
}

std::string dims(const Shape& s) {
  std::string out;
  for (std::size_t d : s) out += (out.empty() ? "" : ",") + std::to_string(d);
  return out;
}

// Exports model on an example of shape example, then runs it on each shape
// of runs: batches of 1 and 7 (another batch of 3 when the batch is fixed),
// each at two sequence lengths when there is a sequence axis.
void export_one(const std::string& dir, const std::string& name, nn::Module& model, const Shape& example,
                const std::vector<Shape>& runs, bool tokens, std::size_t vocab, std::ofstream& manifest,
                const onnx::ExportOptions& options = {}) {
  Generator gen(42);
  model.eval();
  onnx::export_model(model, Variable(random_input(example, tokens, vocab, gen)), dir + "/" + name + ".onnx", options);
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const Variable x(random_input(runs[r], tokens, vocab, gen));
    NoGradGuard no_grad;
    const Variable y = model(x);
    const std::string stem = dir + "/" + name + ".r" + std::to_string(r);
    write_raw(stem + ".in", x.data());
    write_raw(stem + ".out", y.data());
    manifest << name << ' ' << r << ' ' << dims(x.shape()) << ' ' << dims(y.shape()) << '\n';
  }
}

// The example on a batch of 3, the runs on batches of 1 and 7.
void export_one(const std::string& dir, const std::string& name, nn::Module& model, const Shape& sample, bool tokens,
                std::size_t vocab, std::ofstream& manifest) {
  const auto batch = [&](std::size_t n) {
    Shape s = sample;
    s.insert(s.begin(), n);
    return s;
  };
  export_one(dir, name, model, batch(3), {batch(1), batch(7)}, tokens, vocab, manifest);
}

// Token ids (batch, steps) with the sequence axis dynamic: an example of
// (3, 6), runs on batches of 1 and 7 at lengths 8 and 5 (dynamic_batch), or
// on a batch of 3 at those lengths.
void export_sequence(const std::string& dir, const std::string& name, nn::Module& model, const Shape& features,
                     bool tokens, std::size_t vocab, std::ofstream& manifest, bool dynamic_batch = true) {
  const auto shape = [&](std::size_t b, std::size_t t) {
    Shape s{b, t};
    s.insert(s.end(), features.begin(), features.end());
    return s;
  };
  std::vector<Shape> runs;
  for (std::size_t t : {8, 5})
    for (std::size_t b : dynamic_batch ? std::vector<std::size_t>{1, 7} : std::vector<std::size_t>{3}) runs.push_back(shape(b, t));
  onnx::ExportOptions options;
  options.dynamic_batch = dynamic_batch;
  options.sequence_axis = 1;
  export_one(dir, name, model, shape(3, 6), runs, tokens, vocab, manifest, options);
}

// One pre-norm Transformer layer under a boolean causal mask on (N, T, 8).
struct CausalTransformer : nn::Module {
  std::shared_ptr<nn::TransformerEncoderLayer> layer;
  CausalTransformer() {
    nn::TransformerLayerOptions o(8, 2);
    o.dim_feedforward = 16;
    o.batch_first = true;
    layer = register_module("layer", std::make_shared<nn::TransformerEncoderLayer>(o));
  }
  std::string type_name() const override { return "CausalTransformer"; }
  Variable forward(const Variable& x) override {
    const std::size_t steps = x.shape()[1];
    Tensor<float> masked = Tensor<float>::from_shape({steps, steps});
    for (std::size_t i = 0; i < steps; ++i)
      for (std::size_t j = 0; j < steps; ++j) masked(i, j) = j > i ? 1.0f : 0.0f;
    nn::EncoderMasks m;
    m.src_mask = Variable(std::move(masked));
    m.src_mask_kind = F::AttnMask::Boolean;
    return layer->forward(x, m);
  }
};

// train-lm's language model of that kind, small: token ids (N, T) of 12
// characters to logits (N, T, 12).
std::shared_ptr<examples::LanguageModel> language_model(const std::string& kind, std::size_t layers) {
  examples::LanguageModelConfig c;
  c.kind = kind;
  c.vocab = 12;
  c.embed = 8;
  c.hidden = 10;
  c.layers = layers;
  c.dropout = 0.2;
  return examples::make_language_model(c);
}

// A 2-layer bidirectional LSTM (batch first) on (N, T, 5) from an initial
// state made from the first step, so ONNX's LSTM gets initial_h and
// initial_c; its final h and c, summed over the layers and directions, are
// added to every step's output (N, T, 12).
struct BidirectionalLSTM : nn::Module {
  std::shared_ptr<nn::Linear> to_state;
  std::shared_ptr<nn::LSTM> lstm;
  BidirectionalLSTM() {
    nn::RecurrentOptions o(5, 6, 2);
    o.bidirectional = true;
    o.batch_first = true;
    to_state = register_module("to_state", std::make_shared<nn::Linear>(5, 48));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(o));
  }
  std::string type_name() const override { return "BidirectionalLSTM"; }
  Variable forward(const Variable& x) override {
    const Variable s = transpose(reshape((*to_state)(get_item(x, {Index(), 0})), {x.shape()[0], 8, 6}), Axes{1, 0, 2});
    const std::vector<Variable> hc = split(s, std::vector<std::size_t>{4, 4}, 0);  // (4, N, 6) each
    const nn::RecurrentOutput out = lstm->forward(x, {tanh(hc[0]), hc[1]});
    const Variable last = transpose(concat(std::vector<Variable>{out.state.h, out.state.c}, 2), Axes{1, 0, 2});
    return out.output + sum(last, {1}, true);
  }
};

// An RNN with tanh (batch first) on (N, T, 5) from a zero state; its final h
// is added to every step's output (N, T, 6).
struct TanhRNN : nn::Module {
  std::shared_ptr<nn::RNN> rnn;
  TanhRNN() {
    nn::RNNOptions o(5, 6);
    o.batch_first = true;
    rnn = register_module("rnn", std::make_shared<nn::RNN>(o));
  }
  std::string type_name() const override { return "TanhRNN"; }
  Variable forward(const Variable& x) override {
    const nn::RecurrentOutput out = rnn->forward(x, {});
    return out.output + transpose(out.state.h, Axes{1, 0, 2});
  }
};

// Running statistics away from (0, 1), so that eval-mode BatchNorm is tested.
void randomize_buffers(nn::Module& model) {
  Generator gen(7);
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  for (auto& [name, v] : model.named_buffers())
    for (float& x : v.data()) x = name.find("var") != std::string::npos ? u(gen) : u(gen) - 1.0f;
}

struct Twice {  // a Function the exporter does not know
  std::string name() const { return "Twice"; }
  template <class T> Outputs<T> forward(const TensorList<T>& x) const { return x[0] * T(2); }
  template <class T> Variables<T> backward(const Function<T>&, const Variables<T>& gy) const { return {gy[0] * T(2)}; }
};

// A value computed outside the graph from the input: a constant of the
// batch's size that is no fill, positions or causal mask.
struct OutsideValue : nn::Module {
  std::string type_name() const override { return "OutsideValue"; }
  Variable forward(const Variable& x) override {
    Tensor<float> t = Tensor<float>::from_shape(x.shape());
    for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = 1.0f + 0.5f * float(i);
    return x + Variable(std::move(t));
  }
};

// A loop over the steps: other Functions for another sequence length.
struct StepLoop : nn::Module {
  std::string type_name() const override { return "StepLoop"; }
  Variable forward(const Variable& x) override {
    Variable y = get_item(x, {Index(), 0});
    for (std::size_t t = 1; t < x.shape()[1]; ++t) y = y + get_item(x, {Index(), Index(std::ptrdiff_t(t))});
    return y;
  }
};

// Export must refuse what would run on the example's sizes only, saying
// why, and write nothing.
int check_refused(const std::string& dir, nn::Module& model, const onnx::ExportOptions& options, const std::string& want) {
  const std::string path = dir + "/refused.onnx";
  try {
    onnx::export_model(model, Variable(Tensor<float>(xt::ones<float>({3, 5}))), path, options);
  } catch (const ValueError& e) {
    const std::string m = e.what();
    std::cout << model.type_name() << " refused: " << m.substr(0, 160) << "...\n";
    if (m.find(want) == std::string::npos) return std::cerr << "FAIL: the error should say " << want << ": " << m << '\n', 1;
    if (std::ifstream(path)) return std::cerr << "FAIL: a file was left at " << path << '\n', 1;
    return 0;
  }
  std::cerr << "FAIL: exporting " << model.type_name() << " did not throw\n";
  return 1;
}

int check_refusals(const std::string& dir) {
  OutsideValue outside;
  StepLoop loop;
  onnx::ExportOptions sequence;
  sequence.sequence_axis = 1;
  return check_refused(dir, outside, {}, "a constant of shape (3, 5) that follows the batch size or the sequence "
                                         "length ((4, 5) for a batch of 4)") ||
         check_refused(dir, loop, sequence, "the forward runs other Functions for a batch of 4 and a sequence of 4");
}

int check_unsupported(const std::string& dir) {
  const std::string path = dir + "/unsupported.onnx";
  std::remove(path.c_str());
  KeepIntermediatesGuard keep;
  Variable x(Tensor<float>(xt::ones<float>({2, 3})));
  x.requires_grad_();
  const Variable y = relu(call(Twice{}, x) + 1.0f);
  try {
    onnx::export_graph({y}, {x}, path);
  } catch (const ValueError& e) {
    const std::string m = e.what();
    std::cout << "unsupported Function: " << m.substr(0, 160) << "...\n";
    const bool named = m.find("Twice") != std::string::npos && m.find("node 1 of 3") != std::string::npos &&
                       m.find("(2, 3)") != std::string::npos && m.find("Conv2d") != std::string::npos;
    if (!named) return std::cerr << "FAIL: the error should name Twice, its place, shape and the exportable list\n", 1;
    if (std::ifstream(path)) return std::cerr << "FAIL: a file was left at " << path << '\n', 1;
    if (std::ifstream(path + ".tmp")) return std::cerr << "FAIL: a temp file was left at " << path << ".tmp\n", 1;
    return 0;
  }
  std::cerr << "FAIL: exporting a graph with the Function Twice did not throw\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return std::cerr << "usage: export_models OUT_DIR\n", 2;
  const std::string dir = argv[1];
  try {
    if (check_unsupported(dir) || check_refusals(dir)) return 1;
    std::ofstream manifest(dir + "/manifest.txt");
    manual_seed(1);
    export_one(dir, "two_layer_net", *nn::models::two_layer_net(784, 50, 10, 0.1), {784}, false, 0, manifest);
    nn::MLPOptions bn;
    bn.batch_norm = true;
    bn.dropout = 0.3;
    auto mlp = std::make_shared<nn::MLP>(20, std::vector<std::size_t>{16, 12}, 5, bn);
    randomize_buffers(*mlp);
    export_one(dir, "mlp_batchnorm_dropout", *mlp, {20}, false, 0, manifest);
    export_one(dir, "simple_conv_net", *nn::models::simple_conv_net(1, 28, 10, 0.1), {1, 28, 28}, false, 0, manifest);
    export_one(dir, "deep_conv_net", *nn::models::deep_conv_net(1, 28, 10), {1, 28, 28}, false, 0, manifest);
    export_one(dir, "embedding_layernorm_gelu", *embedding_net(), {5}, true, 20, manifest);
    export_one(dir, "upsampling", *upsampling_net(), {3, 8, 8}, false, 0, manifest);
    OpsNet ops;
    export_one(dir, "elementwise_reductions_shapes", ops, {4, 6}, false, 0, manifest);
    SoftplusNet softplus;
    export_one(dir, "softplus", softplus, {10}, false, 0, manifest);
    nn::GPTOptions g(11, 8);
    g.n_layer = 2;
    g.n_head = 2;
    g.n_embd = 16;
    g.dropout = 0.1;
    nn::GPT gpt(g);
    export_sequence(dir, "gpt", gpt, {}, true, 11, manifest);
    CausalTransformer causal;
    export_sequence(dir, "causal_transformer", causal, {8}, false, 0, manifest);
    // Each recurrent layer and direction is one ONNX LSTM, GRU or RNN node (check.py counts them).
    export_sequence(dir, "lstm_lm", *language_model("lstm", 2), {}, true, 12, manifest);
    export_sequence(dir, "gru_lm", *language_model("gru", 1), {}, true, 12, manifest);
    BidirectionalLSTM bilstm;
    export_sequence(dir, "bidirectional_lstm", bilstm, {5}, false, 0, manifest);
    TanhRNN rnn;
    export_sequence(dir, "rnn_tanh", rnn, {5}, false, 0, manifest);
  } catch (const std::exception& e) {
    std::cerr << "FAIL: " << e.what() << '\n';
    return 1;
  }
  std::cout << "exported to " << dir << '\n';
  return 0;
}
