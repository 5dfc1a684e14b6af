// functional::recurrent_layer, the Functions RNNLayer, LSTMLayer and
// GRULayer (nn/src/ops/recurrent.cpp): in float32 on oneDNN where the build
// has it, equal to the same steps as autograd ops (the float64 Function
// runs those) for outputs and every gradient; gradient checks of every
// order in float64; a fixed thread count repeats bit for bit.
#include <doctest/doctest.h>

#include <cstring>
#include <zerograd/zerograd.hpp>

#include "testing.hpp"

namespace {

namespace nn = zg::nn;
namespace F = zg::nn::functional;
using F::RecurrentMode;
using zg::Shape;
using zg::Variable;
using zg::Variable64;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;

std::size_t gates(RecurrentMode m) { return m == RecurrentMode::LSTM ? 4 : m == RecurrentMode::GRU ? 3 : 1; }
const char* op_name(RecurrentMode m) {
  return m == RecurrentMode::LSTM ? "LSTMLayer" : m == RecurrentMode::GRU ? "GRULayer" : "RNNLayer";
}

// One layer's inputs in float64: x, h0, c0 (LSTM), w_ih, w_hh, b_ih, b_hh.
struct Layer {
  RecurrentMode mode;
  bool state, bias, reverse;
  V in;
  Layer(RecurrentMode mode, std::size_t T, std::size_t B, std::size_t I, std::size_t H, bool state, bool bias,
        bool reverse, unsigned seed)
      : mode(mode), state(state), bias(bias), reverse(reverse) {
    const std::size_t G = gates(mode);
    in = {uniform({T, B, I}, -1, 1, seed), uniform({B, H}, -0.8, 0.8, seed + 1), uniform({B, H}, -0.8, 0.8, seed + 2),
          uniform({G * H, I}, -0.6, 0.6, seed + 3), uniform({G * H, H}, -0.6, 0.6, seed + 4),
          uniform({G * H}, -0.5, 0.5, seed + 5), uniform({G * H}, -0.5, 0.5, seed + 6)};
  }
  // The inputs the Function takes, in its order.
  template <class T>
  std::vector<zg::BasicVariable<T>> used(const std::vector<zg::BasicVariable<T>>& v) const {
    std::vector<zg::BasicVariable<T>> u{v[0]};
    if (state) u.push_back(v[1]);
    if (state && mode == RecurrentMode::LSTM) u.push_back(v[2]);
    u.insert(u.end(), {v[3], v[4]});
    if (bias) u.insert(u.end(), {v[5], v[6]});
    return u;
  }
  template <class T>
  std::vector<zg::BasicVariable<T>> run(const std::vector<zg::BasicVariable<T>>& u) const {
    std::size_t k = 1;
    zg::BasicVariable<T> h0, c0, b_ih, b_hh;
    if (state) h0 = u[k++];
    if (state && mode == RecurrentMode::LSTM) c0 = u[k++];
    const zg::BasicVariable<T> w_ih = u[k], w_hh = u[k + 1];
    if (bias) b_ih = u[k + 2], b_hh = u[k + 3];
    F::RecurrentLayerOptions o;
    o.mode = mode;
    o.reverse = reverse;
    return F::recurrent_layer(u[0], h0, c0, w_ih, w_hh, b_ih, b_hh, o);
  }
  // sum of each output times fixed weights: a loss that reaches every output.
  template <class T>
  zg::BasicVariable<T> loss(const std::vector<zg::BasicVariable<T>>& ys) const {
    zg::BasicVariable<T> l;
    for (std::size_t i = 0; i < ys.size(); ++i) {
      const Variable64 w = uniform(ys[i].shape(), -1, 1, 90 + unsigned(i));
      const zg::BasicVariable<T> term = zg::sum(ys[i] * zg::BasicVariable<T>(zg::Tensor<T>(w.data())));
      l = l.defined() ? l + term : term;
    }
    return l;
  }
};

std::vector<Variable> to_float(const V& v) {
  std::vector<Variable> f;
  for (const Variable64& x : v) f.push_back(Variable(zg::Tensor<float>(x.data())).requires_grad_());
  return f;
}

// |a - b| within float32 rounding of b's scale.
void check_near(const zg::Tensor<float>& a, const zg::Tensor<double>& b, const std::string& what) {
  CAPTURE(what);
  REQUIRE(a.shape() == b.shape());
  double scale = 1, worst = 0;
  for (std::size_t i = 0; i < b.size(); ++i) scale = std::max(scale, std::abs(b.data()[i]));
  for (std::size_t i = 0; i < b.size(); ++i) worst = std::max(worst, std::abs(double(a.data()[i]) - b.data()[i]));
  CHECK(worst <= 2e-5 * scale);
}

// The float32 Function (oneDNN where built) against the float64 one (the
// steps in autograd ops): outputs, and the gradients of every input.
void check_layer(const Layer& c) {
  V in64;
  for (const Variable64& v : c.in) in64.push_back(Variable64(v.data()).requires_grad_());
  const V u64 = c.used(in64);
  const V y64 = c.run(u64);
  c.loss(y64).backward();
  const std::vector<Variable> u32 = c.used(to_float(c.in));
  const std::vector<Variable> y32 = c.run(u32);
  REQUIRE(y32.size() == (c.mode == RecurrentMode::LSTM ? 3u : 2u));
  c.loss(y32).backward();
  for (std::size_t i = 0; i < y32.size(); ++i) check_near(y32[i].data(), y64[i].data(), "output " + std::to_string(i));
  for (std::size_t i = 0; i < u32.size(); ++i) {
    REQUIRE(u32[i].grad().defined());
    check_near(u32[i].grad().data(), u64[i].grad().data(), "gradient of input " + std::to_string(i));
  }
}

const RecurrentMode kModes[] = {RecurrentMode::RNNTanh, RecurrentMode::RNNReLU, RecurrentMode::LSTM,
                                RecurrentMode::GRU};

}  // namespace

TEST_CASE("recurrent_layer: float32 equals the steps in autograd ops, outputs and every gradient") {
  unsigned seed = 10;
  for (RecurrentMode mode : kModes)
    for (std::size_t T : {1, 5})
      for (std::size_t B : {1, 3})
        for (bool state : {false, true})
          for (bool reverse : {false, true}) {
            const std::string op = op_name(mode) + std::string(mode == RecurrentMode::RNNReLU ? " relu" : "");
            CAPTURE(op);
            CAPTURE(T);
            CAPTURE(B);
            CAPTURE(state);
            CAPTURE(reverse);
            check_layer(Layer(mode, T, B, 3, 4, state, /*bias=*/T == 5 || B == 1, reverse, seed += 10));
          }
}

TEST_CASE("recurrent_layer: RNN, LSTM, GRU of 2 bidirectional layers in float32 equal float64, with every gradient") {
  nn::RNNOptions o(3, 5, 2);
  o.bidirectional = true;
  o.batch_first = true;
  nn::RNNOptions relu = o;
  relu.nonlinearity = "relu";
  zg::manual_seed(21);
  std::vector<std::shared_ptr<nn::Module>> layers = {std::make_shared<nn::RNN>(relu), std::make_shared<nn::LSTM>(o),
                                                     std::make_shared<nn::GRU>(o)};
  for (auto& m : layers) {
    CAPTURE(m->type_name());
    auto m64 = m->to<double>();
    const Variable64 x64 = uniform({3, 4, 3}, -1, 1, 22).requires_grad_();
    const Variable x = Variable(zg::Tensor<float>(x64.data())).requires_grad_();
    const Variable y = (*m)(x);
    const Variable64 y64 = (*m64)(x64);
    check_near(y.data(), y64.data(), "output");
    const Variable64 w = uniform(y64.shape(), -1, 1, 23);
    zg::sum(y * Variable(zg::Tensor<float>(w.data()))).backward();
    zg::sum(y64 * w).backward();
    check_near(x.grad().data(), x64.grad().data(), "input gradient");
    const auto p = m->named_parameters();
    const auto p64 = m64->named_parameters();
    REQUIRE(p.size() == p64.size());
    for (std::size_t i = 0; i < p.size(); ++i) check_near(p[i].second.grad().data(), p64[i].second.grad().data(), p[i].first);
  }
}

TEST_CASE("recurrent_layer: a fixed thread count repeats bit for bit") {
  for (RecurrentMode mode : kModes) {
    const std::string op = op_name(mode);
    CAPTURE(op);
    const Layer c(mode, 6, 3, 4, 8, true, true, false, 31);
    std::vector<std::vector<float>> runs[2];
    for (auto& r : runs) {
      const std::vector<Variable> u = c.used(to_float(c.in));
      const std::vector<Variable> y = c.run(u);
      c.loss(y).backward();
      for (const Variable& v : y) r.emplace_back(v.data().begin(), v.data().end());
      for (const Variable& v : u) r.emplace_back(v.grad().data().begin(), v.grad().data().end());
    }
    REQUIRE(runs[0].size() == runs[1].size());
    for (std::size_t i = 0; i < runs[0].size(); ++i) {
      CAPTURE(i);
      CHECK(std::memcmp(runs[0][i].data(), runs[1][i].data(), runs[0][i].size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("recurrent_layer: fields, and errors name the op and the shapes") {
  const Layer c(RecurrentMode::LSTM, 2, 3, 4, 5, true, false, true, 41);
  const std::vector<Variable> y = c.run(c.used(to_float(c.in)));
  const auto f = y[0].creator();
  REQUIRE(f);
  CHECK(f->name() == "LSTMLayer");
  CHECK(f->num_outputs() == 3);
  const zg::OpFields want{{"hidden_size", {5}}, {"reverse", {1}}, {"initial_h", {1}}, {"initial_c", {1}}, {"bias", {0}}};
  CHECK(f->fields() == want);
  const Layer relu(RecurrentMode::RNNReLU, 2, 3, 4, 5, false, true, false, 42);
  const std::vector<Variable> none = relu.run(relu.used(to_float(relu.in)));
  CHECK(none[0].creator()->fields() ==
        zg::OpFields{{"hidden_size", {5}}, {"reverse", {0}}, {"initial_h", {0}}, {"bias", {1}}, {"relu", {1}}});

  const Variable x = Variable(zg::Tensor<float>::from_shape({2, 3, 4})), w_ih(zg::Tensor<float>::from_shape({12, 4})),
                 w_hh(zg::Tensor<float>::from_shape({12, 4})), h0(zg::Tensor<float>::from_shape({2, 4}));
  F::RecurrentLayerOptions gru;
  gru.mode = RecurrentMode::GRU;
  CHECK(message_of<zg::ShapeError>([&] { F::recurrent_layer(x, h0, {}, w_ih, w_hh, {}, {}, gru); }) ==
        "GRULayer: expected initial state (3, 4) for x (2, 3, 4), got (2, 4)");
  CHECK(message_of<zg::ShapeError>([&] { F::recurrent_layer(x, {}, {}, w_hh, w_ih, {}, {}, F::RecurrentLayerOptions()); }) ==
        "LSTMLayer: expected w_hh (4 H, H), got (12, 4)");
  CHECK(message_of<zg::ShapeError>([&] { F::recurrent_layer(w_ih, {}, {}, w_ih, w_hh, {}, {}, gru); }) ==
        "GRULayer: expected x (T, B, I) with no zero size, got (12, 4)");
  CHECK(message_of<zg::ValueError>([&] { F::recurrent_layer(x, {}, h0, w_ih, w_hh, {}, {}, gru); }) ==
        "GRULayer: only an LSTM has a cell state c0, got one of shape (2, 4)");
}

// Each Function in float64, with and without initial state, bias, reverse:
// first and second order (its create_graph backward is the steps again).
#define ZG_RECURRENT_GRADCHECK(MODE)                                                          \
  for (const Layer& c : {Layer(MODE, 3, 2, 2, 3, true, true, true, 51),                        \
                         Layer(MODE, 2, 1, 3, 2, false, false, false, 61)}) {                  \
    const V u = c.used(c.in);                                                                   \
    CHECK_GRADCHECK([&](const V& v) { return c.run(v); }, u);                                   \
    CHECK_GRADGRADCHECK([&](const V& v) { return c.loss(c.run(v)); }, u);                       \
  }

ZG_GRADCHECK_CASE("RNNLayer") {
  ZG_RECURRENT_GRADCHECK(RecurrentMode::RNNTanh)
  const Layer relu(RecurrentMode::RNNReLU, 3, 2, 2, 3, true, true, false, 71);
  CHECK_GRADCHECK([&](const V& v) { return relu.run(v); }, relu.used(relu.in));
}
ZG_GRADCHECK_CASE("LSTMLayer") { ZG_RECURRENT_GRADCHECK(RecurrentMode::LSTM) }
ZG_GRADCHECK_CASE("GRULayer") { ZG_RECURRENT_GRADCHECK(RecurrentMode::GRU) }
