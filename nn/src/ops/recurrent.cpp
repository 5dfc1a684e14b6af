// A recurrent layer in one direction as one Function over every step:
// "RNNLayer", "LSTMLayer", "GRULayer". The math is the steps below in
// autograd ops, shared with the cells; float32 forward and first-order
// backward run on oneDNN's fused kernels where the library has them (Note
// [oneDNN recurrent layers] in kernels/rnn_dnnl.cpp). Float64, and a
// backward under create_graph, run the steps themselves, so gradients of
// every order come from theirs.
#include "ops/recurrent.hpp"

#include <array>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "kernels/rnn_dnnl.hpp"
#include "zerograd/apply.hpp"
#include "zerograd/grad.hpp"
#include "zerograd/nn/functional.hpp"
#include "zerograd/op_registry.hpp"
#include "zerograd/ops.hpp"

namespace zg::nn::functional {

template <class T>
Var<T> times_transposed(const Var<T>& x, const Var<T>& w) {
  return zg::matmul(x, w, false, true);
}

// h' = tanh or relu(x W_ih^T + b_ih + h W_hh^T + b_hh)
template <class T>
Var<T> rnn_step(const Var<T>& xw, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh, bool relu) {
  Var<T> a = xw + times_transposed(h, w_hh);
  if (b_hh.defined()) a = a + b_hh;
  return relu ? zg::relu(a) : zg::tanh(a);
}

// c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c')
template <class T>
void lstm_step(const Var<T>& xw, Var<T>& h, Var<T>& c, const Var<T>& w_hh, const Var<T>& b_hh) {
  Var<T> a = xw + times_transposed(h, w_hh);
  if (b_hh.defined()) a = a + b_hh;
  const auto g = zg::split(a, std::size_t{4}, 1);  // i, f, g, o
  c = zg::sigmoid(g[1]) * c + zg::sigmoid(g[0]) * zg::tanh(g[2]);
  h = zg::sigmoid(g[3]) * zg::tanh(c);
}

// r, z = sigmoid(...), n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)), h' = (1 - z) n + z h
template <class T>
Var<T> gru_step(const Var<T>& xw, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh) {
  Var<T> hw = times_transposed(h, w_hh);
  if (b_hh.defined()) hw = hw + b_hh;
  const auto x = zg::split(xw, std::size_t{3}, 1);  // r, z, n
  const auto y = zg::split(hw, std::size_t{3}, 1);
  const Var<T> r = zg::sigmoid(x[0] + y[0]);
  const Var<T> z = zg::sigmoid(x[1] + y[1]);
  const Var<T> n = zg::tanh(x[2] + r * y[2]);
  return n + z * (h - n);  // (1 - z) n + z h
}

namespace {

// A layer's inputs by role; h0, c0 and the biases may be empty.
template <class T>
struct LayerInputs {
  Var<T> x, h0, c0, w_ih, w_hh, b_ih, b_hh;
};

// The layer as the steps above: {y, h_T} and for LSTM c_T. Every step's
// input product is one GEMM; for RNN and LSTM both biases join it (GRU
// keeps b_hh inside r * (h W_hn^T + b_hn)).
template <class T>
Variables<T> steps(const LayerInputs<T>& in, RecurrentMode mode, bool reverse) {
  const std::size_t T_ = in.x.shape()[0], B = in.x.shape()[1], H = in.w_hh.shape()[1];
  Var<T> xw = times_transposed(zg::reshape(in.x, {T_ * B, in.x.shape()[2]}), in.w_ih);
  Var<T> b_hh = in.b_hh;
  if (in.b_ih.defined()) {
    if (mode == RecurrentMode::GRU) {
      xw = xw + in.b_ih;
    } else {
      xw = xw + (in.b_ih + in.b_hh);
      b_hh = Var<T>();
    }
  }
  const auto zeros = [&] { return Var<T>(Tensor<T>(xt::zeros<T>(Shape{B, H}))); };
  Var<T> h = in.h0.defined() ? in.h0 : zeros();
  Var<T> c = mode != RecurrentMode::LSTM ? Var<T>() : in.c0.defined() ? in.c0 : zeros();
  const auto xs = zg::split(xw, std::vector<std::size_t>(T_, B), 0);
  std::vector<Var<T>> hs(T_);
  for (std::size_t k = 0; k < T_; ++k) {
    const std::size_t t = reverse ? T_ - 1 - k : k;
    switch (mode) {
      case RecurrentMode::RNNTanh:
      case RecurrentMode::RNNReLU: h = rnn_step(xs[t], h, in.w_hh, b_hh, mode == RecurrentMode::RNNReLU); break;
      case RecurrentMode::LSTM: lstm_step(xs[t], h, c, in.w_hh, b_hh); break;
      case RecurrentMode::GRU: h = gru_step(xs[t], h, in.w_hh, b_hh); break;
    }
    hs[t] = h;
  }
  Variables<T> out{zg::stack(hs, 0), h};
  if (c.defined()) out.push_back(c);
  return out;
}

onednn::Recurrence recurrence(RecurrentMode m) {
  switch (m) {
    case RecurrentMode::RNNTanh: return onednn::Recurrence::RNNTanh;
    case RecurrentMode::RNNReLU: return onednn::Recurrence::RNNReLU;
    case RecurrentMode::LSTM: return onednn::Recurrence::LSTM;
    default: return onednn::Recurrence::GRU;
  }
}

// Inputs: x (T, B, I), [h0 (B, H)], [c0 (B, H), LSTM only], w_ih (G H, I),
// w_hh (G H, H), [b_ih (G H), b_hh (G H)] in PyTorch's layout and gate
// order; the bracketed ones only where given (no initial state: zeros
// inside, no input). Outputs: y (T, B, H), h after each step in the input's
// order of time; h_T (B, H); c_T (B, H), LSTM only. fields(): hidden_size,
// reverse (1: from the last step to the first), initial_h, initial_c (1
// where h0, c0 are inputs), bias (1 where b_ih, b_hh are), and for RNNLayer
// relu (1: relu, 0: tanh).
template <class T>
struct RecurrentLayer final : Function<T> {
  RecurrentLayer(RecurrentMode mode, bool reverse, bool has_h0, bool has_c0, bool has_bias)
      : mode(mode), reverse(reverse), has_h0(has_h0), has_c0(has_c0), has_bias(has_bias) {}
  RecurrentMode mode;
  bool reverse, has_h0, has_c0, has_bias;
  std::shared_ptr<onednn::RnnWorkspace> workspace;  // from a training forward on oneDNN
  std::size_t hidden = 0;
  std::string name() const override {
    return mode == RecurrentMode::LSTM ? "LSTMLayer" : mode == RecurrentMode::GRU ? "GRULayer" : "RNNLayer";
  }
  std::string attributes() const override {
    return "hidden_size=" + std::to_string(hidden) + (mode == RecurrentMode::RNNReLU ? ", relu" : "") +
           (reverse ? ", reverse" : "");
  }
  OpFields fields() const override {
    OpFields f{{"hidden_size", field_of(hidden)}, {"reverse", field_of(int(reverse))},
               {"initial_h", field_of(int(has_h0))}};
    if (mode == RecurrentMode::LSTM) f.push_back({"initial_c", field_of(int(has_c0))});
    f.push_back({"bias", field_of(int(has_bias))});
    if (mode == RecurrentMode::RNNTanh || mode == RecurrentMode::RNNReLU)
      f.push_back({"relu", field_of(int(mode == RecurrentMode::RNNReLU))});
    return f;
  }
  // Input i's role: x, h0, c0, w_ih, w_hh, b_ih, b_hh, skipping those not given.
  std::vector<int> roles() const {
    std::vector<int> r{0};
    if (has_h0) r.push_back(1);
    if (has_c0) r.push_back(2);
    r.insert(r.end(), {3, 4});
    if (has_bias) r.insert(r.end(), {5, 6});
    return r;
  }
  template <class V, class Get>
  std::array<V, 7> by_role(std::size_t n, Get&& get) const {
    std::array<V, 7> a{};
    const std::vector<int> r = roles();
    for (std::size_t i = 0; i < n; ++i) a[std::size_t(r[i])] = get(i);
    return a;
  }
  onednn::RnnDims dims(const Shape& x) const {
    return {recurrence(mode), x[0], x[1], x[2], hidden, reverse};
  }

  Outputs<T> forward(const TensorList<T>& xs) override {
    const Shape s = zg::shape_of(xs[0]);
    hidden = xs[has_h0 + has_c0 + 2].shape()[1];
    const bool lstm = mode == RecurrentMode::LSTM;
    if constexpr (std::is_same_v<T, float>) {
      const auto p = by_role<const float*>(xs.size(), [&](std::size_t i) { return xs[i].data(); });
      std::vector<Tensor<T>> ys{Tensor<T>::from_shape({s[0], s[1], hidden}), Tensor<T>::from_shape({s[1], hidden})};
      if (lstm) ys.push_back(Tensor<T>::from_shape({s[1], hidden}));
      if (onednn::rnn_forward(dims(s), {p[0], p[1], p[2], p[3], p[4], p[5], p[6]}, ys[0].data(), ys[1].data(),
                              lstm ? ys[2].data() : nullptr, is_grad_enabled() ? &workspace : nullptr))
        return Outputs<T>(std::move(ys));
    }
    NoGradGuard no_grad;
    const auto v = by_role<Var<T>>(xs.size(), [&](std::size_t i) { return Var<T>(Tensor<T>(xs[i])); });
    std::vector<Tensor<T>> ys;
    for (const Var<T>& y : steps<T>({v[0], v[1], v[2], v[3], v[4], v[5], v[6]}, mode, reverse)) ys.push_back(y.data());
    return Outputs<T>(std::move(ys));
  }

  // The steps' own gradients: first order in float on oneDNN, else the steps
  // run again in autograd ops (recorded under create_graph, so they
  // differentiate again) and zg::grad takes theirs.
  Variables<T> backward(const Variables<T>& gy) override {
    const std::size_t n = this->num_inputs();
    Variables<T> g(n);
    if constexpr (std::is_same_v<T, float>) {
      if (!is_grad_enabled() && workspace) {
        const auto in = by_role<const float*>(n, [&](std::size_t i) { return this->input(i).data().data(); });
        const auto out = by_role<float*>(n, [&](std::size_t i) -> float* {
          if (!this->needs_input_grad(i)) return nullptr;
          g[i] = Var<T>(Tensor<T>::from_shape(this->input(i).shape()));
          return g[i].data().data();
        });
        const bool lstm = mode == RecurrentMode::LSTM;
        if (onednn::rnn_backward(dims(this->input(0).shape()), {in[0], in[1], in[2], in[3], in[4], in[5], in[6]},
                                 *workspace, gy[0].data().data(), gy[1].data().data(),
                                 lstm ? gy[2].data().data() : nullptr,
                                 {out[0], out[1], out[2], out[3], out[4], out[5], out[6]}))
          return g;
      }
    }
    const bool create_graph = is_grad_enabled();
    EnableGradGuard record;
    Variables<T> leaves, wanted;
    std::vector<std::size_t> at;
    for (std::size_t i = 0; i < n; ++i) {
      // First order: fresh leaves, so the recomputed graph stands alone.
      Var<T> v = create_graph ? this->input(i) : this->input(i).detach();
      if (!create_graph && this->needs_input_grad(i)) v.requires_grad_();
      leaves.push_back(v);
      if (this->needs_input_grad(i)) wanted.push_back(v), at.push_back(i);
    }
    const auto v = by_role<Var<T>>(n, [&](std::size_t i) { return leaves[i]; });
    const Variables<T> ys = steps<T>({v[0], v[1], v[2], v[3], v[4], v[5], v[6]}, mode, reverse);
    GradOptions o;
    o.create_graph = create_graph;
    o.allow_unused = true;
    const Variables<T> gs = zg::grad(ys, wanted, gy, o);
    for (std::size_t k = 0; k < at.size(); ++k) g[at[k]] = gs[k];
    return g;
  }
  std::string rule(std::size_t i) const override {
    static const char* const what[] = {"x", "h0", "c0", "W_ih", "W_hh", "b_ih", "b_hh"};
    return std::string("upstream backpropagated through every step to ") + what[roles().at(i)];
  }
  void release() override {
    Function<T>::release();
    workspace.reset();
  }
};
ZG_REGISTER_OP(RNNLayer);
ZG_REGISTER_OP(LSTMLayer);
ZG_REGISTER_OP(GRULayer);

}  // namespace

template <class T>
Variables<T> recurrent_layer(const Var<T>& x, const Var<T>& h0, const Var<T>& c0, const Var<T>& w_ih,
                             const Var<T>& w_hh, const Var<T>& b_ih, const Var<T>& b_hh,
                             const RecurrentLayerOptions& options) {
  const RecurrentMode mode = options.mode;
  const char* op = mode == RecurrentMode::LSTM ? "LSTMLayer" : mode == RecurrentMode::GRU ? "GRULayer" : "RNNLayer";
  const std::size_t G = mode == RecurrentMode::LSTM ? 4 : mode == RecurrentMode::GRU ? 3 : 1;
  const Shape s = x.shape(), wh = w_hh.shape();
  auto bad = [&](const std::string& what) { throw ShapeError(std::string(op) + ": " + what); };
  if (s.size() != 3 || s[0] == 0 || s[1] == 0 || s[2] == 0)
    bad("expected x (T, B, I) with no zero size, got " + shape_str(s));
  if (wh.size() != 2 || wh[1] == 0 || wh[0] != G * wh[1])
    bad("expected w_hh (" + std::to_string(G) + " H, H), got " + shape_str(wh));
  const std::size_t H = wh[1];
  if (w_ih.shape() != Shape{G * H, s[2]})
    bad("expected w_ih " + shape_str(Shape{G * H, s[2]}) + " for x " + shape_str(s) + ", got " +
        shape_str(w_ih.shape()));
  if (b_ih.defined() != b_hh.defined()) throw ValueError(std::string(op) + ": give both biases or neither");
  for (const Var<T>* b : {&b_ih, &b_hh})
    if (b->defined() && b->shape() != Shape{G * H}) bad("expected biases (" + std::to_string(G * H) + "), got " + shape_str(b->shape()));
  if (c0.defined() && mode != RecurrentMode::LSTM)
    throw ValueError(std::string(op) + ": only an LSTM has a cell state c0, got one of shape " + shape_str(c0.shape()));
  for (const Var<T>* st : {&h0, &c0})
    if (st->defined() && st->shape() != Shape{s[1], H})
      bad("expected initial state " + shape_str(Shape{s[1], H}) + " for x " + shape_str(s) + ", got " +
          shape_str(st->shape()));
  Variables<T> in{x};
  if (h0.defined()) in.push_back(h0);
  if (c0.defined()) in.push_back(c0);
  in.insert(in.end(), {w_ih, w_hh});
  if (b_ih.defined()) in.insert(in.end(), {b_ih, b_hh});
  return zg::apply<T>(std::make_shared<RecurrentLayer<T>>(mode, options.reverse, h0.defined(), c0.defined(), b_ih.defined()),
               in);
}

#define ZG_INSTANTIATE(T)                                                                                           \
  template Var<T> times_transposed(const Var<T>&, const Var<T>&);                                                  \
  template Var<T> rnn_step(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, bool);                      \
  template void lstm_step(const Var<T>&, Var<T>&, Var<T>&, const Var<T>&, const Var<T>&);                          \
  template Var<T> gru_step(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&);                            \
  template Variables<T> recurrent_layer(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, \
                                        const Var<T>&, const Var<T>&, const RecurrentLayerOptions&);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::functional
