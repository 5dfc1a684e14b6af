// The ONNX export test's first half: exports small models with random
// weights to OUT_DIR and writes zerograd's own outputs beside them, for
// check.py (ONNX's checker) and run_ort.js (ONNX Runtime) to compare.
// Also checks that an unexportable Function is an error naming it, with
// nothing written. usage: export_models OUT_DIR
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

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

// Exports model on a batch of 3, then runs it on batches of 1 and 7 (on
// another batch of 3 when the batch is fixed).
void export_one(const std::string& dir, const std::string& name, nn::Module& model, Shape sample, bool tokens,
                std::size_t vocab, std::ofstream& manifest, bool dynamic_batch = true) {
  Generator gen(42);
  model.eval();
  Shape example = sample;
  example.insert(example.begin(), 3);
  onnx::ExportOptions options;
  options.dynamic_batch = dynamic_batch;
  onnx::export_model(model, Variable(random_input(example, tokens, vocab, gen)), dir + "/" + name + ".onnx", options);
  for (std::size_t batch : dynamic_batch ? std::vector<std::size_t>{1, 7} : std::vector<std::size_t>{3}) {
    Shape s = sample;
    s.insert(s.begin(), batch);
    const Variable x(random_input(s, tokens, vocab, gen));
    NoGradGuard no_grad;
    const Variable y = model(x);
    const std::string stem = dir + "/" + name + ".b" + std::to_string(batch);
    write_raw(stem + ".in", x.data());
    write_raw(stem + ".out", y.data());
    manifest << name << ' ' << batch << ' ' << dims(x.shape()) << ' ' << dims(y.shape()) << '\n';
  }
}

// A character language model's layers on token ids (N, 6).
template <class Recurrent>
std::shared_ptr<nn::Sequential> recurrent_lm(std::size_t layers) {
  nn::RecurrentOptions o(8, 10, layers);
  o.batch_first = true;
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Embedding>(12, 8)).add(std::make_shared<Recurrent>(o)).add(std::make_shared<nn::Linear>(10, 12));
  return net;
}

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

// An LSTM starts from a zero state of the batch's size: a file for any
// batch size would be wrong, so export refuses and says why.
int check_batch_constant(const std::string& dir) {
  const std::string path = dir + "/lstm.onnx";
  nn::LSTMOptions lo(4, 6);
  lo.batch_first = true;
  nn::LSTM lstm(lo);
  try {
    onnx::export_model(lstm, Variable(Tensor<float>(xt::ones<float>({3, 5, 4}))), path);
  } catch (const ValueError& e) {
    const std::string m = e.what();
    std::cout << "batch-sized constant: " << m.substr(0, 160) << "...\n";
    if (m.find("a constant of shape (3, 6) that follows the batch size ((4, 6) for a batch of 4)") == std::string::npos)
      return std::cerr << "FAIL: the error should name the constant and both shapes: " << m << '\n', 1;
    if (std::ifstream(path)) return std::cerr << "FAIL: a file was left at " << path << '\n', 1;
    return 0;
  }
  std::cerr << "FAIL: exporting an LSTM with a dynamic batch did not throw\n";
  return 1;
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
    if (check_unsupported(dir) || check_batch_constant(dir)) return 1;
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
    nn::GPTOptions g(11, 8);
    g.n_layer = 2;
    g.n_head = 2;
    g.n_embd = 16;
    g.dropout = 0.1;
    nn::GPT gpt(g);
    export_one(dir, "gpt", gpt, {8}, true, 11, manifest);
    // Unrolled over 6 steps at the example's batch size (Note [Constants that follow the batch]).
    export_one(dir, "lstm_lm_fixed_batch", *recurrent_lm<nn::LSTM>(2), {6}, true, 12, manifest, false);
    export_one(dir, "gru_lm_fixed_batch", *recurrent_lm<nn::GRU>(1), {6}, true, 12, manifest, false);
  } catch (const std::exception& e) {
    std::cerr << "FAIL: " << e.what() << '\n';
    return 1;
  }
  std::cout << "exported to " << dir << '\n';
  return 0;
}
