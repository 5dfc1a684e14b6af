// Recurrent layers and cells as compositions of autograd ops: matmul, split,
// sigmoid, tanh, relu, stack, concat. Their backwards come from those ops,
// so gradients of every order need nothing here.
#include "zerograd/nn/recurrent.hpp"

#include <cmath>

#include "zerograd/nn/functional.hpp"
#include "zerograd/nn/init.hpp"
#include "zerograd/ops.hpp"

namespace zg::nn {

namespace {

template <class T>
Var<T> zero_state(const Shape& shape) {
  return Var<T>(Tensor<T>(xt::zeros<T>(shape)));
}

// x W^T for x (N, in) and W (out, in): PyTorch's layout, read in place by BLAS.
template <class T>
Var<T> times_transposed(const Var<T>& x, const Var<T>& w) {
  return zg::matmul(x, w, false, true);
}

// The parameter uniform in [-1/sqrt(H), 1/sqrt(H)], as PyTorch initialises
// every recurrent parameter.
template <class T>
Var<T> uniform_parameter(const Shape& shape, std::size_t hidden) {
  Var<T> v(Tensor<T>::from_shape(shape));
  const double k = 1 / std::sqrt(double(hidden));
  init::uniform(v, -k, k);
  return v;
}

// One step of each cell. xw is x W_ih^T + b_ih for this step, (B, G H);
// b_hh may be empty (no bias, or already added into xw).
template <class T>
Var<T> rnn_step(const Var<T>& xw, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh, bool relu) {
  Var<T> a = xw + times_transposed(h, w_hh);
  if (b_hh.defined()) a = a + b_hh;
  return relu ? zg::relu(a) : zg::tanh(a);
}

template <class T>
void lstm_step(const Var<T>& xw, Var<T>& h, Var<T>& c, const Var<T>& w_hh, const Var<T>& b_hh) {
  Var<T> a = xw + times_transposed(h, w_hh);
  if (b_hh.defined()) a = a + b_hh;
  const auto g = zg::split(a, std::size_t{4}, 1);  // i, f, g, o
  c = zg::sigmoid(g[1]) * c + zg::sigmoid(g[0]) * zg::tanh(g[2]);
  h = zg::sigmoid(g[3]) * zg::tanh(c);
}

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

std::string sizes(std::size_t in, std::size_t hidden) {
  return "input_size=" + std::to_string(in) + ", hidden_size=" + std::to_string(hidden);
}

void check_sizes(const std::string& layer, std::size_t in, std::size_t hidden) {
  if (in == 0 || hidden == 0)
    throw ValueError(layer + ": input_size and hidden_size must be positive, got " + sizes(in, hidden));
}

void check_nonlinearity(const std::string& layer, const std::string& nonlinearity) {
  if (nonlinearity != "tanh" && nonlinearity != "relu")
    throw ValueError(layer + ": nonlinearity must be 'tanh' or 'relu', got " + zg::quoted(nonlinearity));
}

// A cell's input as (B, in) and its state as (B, H), from batched or
// unbatched (1-D) values; returns whether the input was unbatched.
template <class T>
bool cell_shapes(const std::string& layer, std::size_t in, std::size_t hidden, Var<T>& x,
                 std::vector<Var<T>*> states) {
  const Shape s = x.shape();
  if ((s.size() != 1 && s.size() != 2) || s.back() != in)
    throw ShapeError(layer + ": expected input (B, " + std::to_string(in) + ") or (" + std::to_string(in) +
                     "), got " + shape_str(s));
  const bool unbatched = s.size() == 1;
  const std::size_t batch = unbatched ? 1 : s[0];
  if (batch == 0) throw ShapeError(layer + ": input " + shape_str(s) + " has no samples");
  const Shape want = unbatched ? Shape{hidden} : Shape{batch, hidden};
  for (Var<T>* st : states) {
    if (!st->defined()) {
      *st = zero_state<T>({batch, hidden});
      continue;
    }
    if (st->shape() != want)
      throw ShapeError(layer + ": expected state " + shape_str(want) + " for input " + shape_str(s) + ", got " +
                       shape_str(st->shape()));
    if (unbatched) *st = zg::reshape(*st, {1, hidden});
  }
  if (unbatched) x = zg::reshape(x, {1, in});
  return unbatched;
}

}  // namespace

template <class T>
BasicRecurrentState<T> BasicRecurrentState<T>::detach() const {
  return {h.defined() ? h.detach() : h, c.defined() ? c.detach() : c};
}

template <class T>
BasicRecurrent<T>::BasicRecurrent(const RecurrentOptions& options, Kind kind) : options_(options), kind_(kind) {
  const std::string layer = kind == Kind::LSTM ? "LSTM" : kind == Kind::GRU ? "GRU" : "RNN";
  check_sizes(layer, options.input_size, options.hidden_size);
  if (options.num_layers == 0) throw ValueError(layer + ": num_layers must be at least 1");
  if (!(options.dropout >= 0 && options.dropout < 1))
    throw ValueError(layer + ": dropout must be in [0, 1), got " + zg::number_str(options.dropout));
  const std::size_t H = options.hidden_size, G = gates();
  // Registered in a PyTorch state_dict's order: per layer, per direction.
  for (std::size_t l = 0; l < options.num_layers; ++l)
    for (std::size_t d = 0; d < directions(); ++d) {
      const std::string suffix = "_l" + std::to_string(l) + (d ? "_reverse" : "");
      const std::size_t in = l == 0 ? options.input_size : H * directions();
      std::array<BasicVariable<T>, 4> w;
      w[0] = this->register_parameter("weight_ih" + suffix, uniform_parameter<T>({G * H, in}, H));
      w[1] = this->register_parameter("weight_hh" + suffix, uniform_parameter<T>({G * H, H}, H));
      if (options.bias) {
        w[2] = this->register_parameter("bias_ih" + suffix, uniform_parameter<T>({G * H}, H));
        w[3] = this->register_parameter("bias_hh" + suffix, uniform_parameter<T>({G * H}, H));
      }
      weights_.push_back(w);
    }
}

template <class T>
std::size_t BasicRecurrent<T>::gates() const {
  return kind_ == Kind::LSTM ? 4 : kind_ == Kind::GRU ? 3 : 1;
}

template <class T>
std::string BasicRecurrent<T>::extra_repr() const {
  std::string s = sizes(options_.input_size, options_.hidden_size);
  if (options_.num_layers != 1) s += ", num_layers=" + std::to_string(options_.num_layers);
  if (kind_ == Kind::RNNReLU) s += ", nonlinearity='relu'";
  if (!options_.bias) s += ", bias=false";
  if (options_.batch_first) s += ", batch_first=true";
  if (options_.dropout != 0) s += ", dropout=" + zg::number_str(options_.dropout);
  if (options_.bidirectional) s += ", bidirectional=true";
  return s;
}

template <class T>
BasicVariable<T> BasicRecurrent<T>::forward(const BasicVariable<T>& input) {
  return forward(input, {}).output;
}

// Note [LSTM speed]: the layers run as the composed ops above, whose
// backwards come from those ops (so gradients of every order, and float64
// gradient checks, need nothing more), with one GEMM for every step's input
// product. oneDNN's fused lstm_forward / lstm_backward primitives, which
// zerograd links for convolutions, are faster at train-lm's shapes
// (T 64, B 32, input 128, hidden 256; forward training + backward, median
// of 20, AVX-512 EPYC, 2 shared cores; bench/rnn_dnnl):
//
//   layers  threads  composed  oneDNN  oneDNN + reorders  | AVX2: composed  oneDNN + reorders
//   1       1        63.4 ms   31.2    31.0 (2.04x)       |       59.1      54.1 (1.09x)
//   1       2        49.9      20.8    20.6 (2.42x)       |       43.0      30.7 (1.40x)
//   2       1        159.1     73.4    75.7 (2.10x)       |       144.5     128.9 (1.12x)
//   2       2        93.7      40.5    41.2 (2.27x)       |       93.2      75.0 (1.24x)
//
// "+ reorders" converts zerograd's (4H, in) weights to the layouts each
// primitive wants and the weight gradients back, every step: they cost
// nothing measurable. Outputs and gradients agree to float rounding (output
// 1.8e-07, input gradient 1e-06, weight gradients 3e-05 of up to 51) once
// the zero initial state is passed as an array: left out (an empty
// descriptor, which oneDNN accepts for zeros), oneDNN 2.6's weight_hh
// gradient came out wrong while every other one was right. A fused
// LSTM would be a Function of its own over oneDNN, with these composed ops
// as its plain twin; it does not exist yet, so the composed ops run
// everywhere today.
template <class T>
BasicVariable<T> BasicRecurrent<T>::run_direction(const BasicVariable<T>& input, std::size_t layer, bool reverse,
                                                  BasicVariable<T>& h, BasicVariable<T>& c) {
  const auto& w = weights_[layer * directions() + (reverse ? 1 : 0)];
  const std::size_t steps = input.shape()[0], batch = input.shape()[1];
  // Every step's input product in one GEMM; for RNN and LSTM both biases
  // join it (GRU keeps b_hh inside r * (h W_hn^T + b_hn)).
  Var<T> xw = times_transposed(zg::reshape(input, {steps * batch, input.shape()[2]}), w[0]);
  Var<T> b_hh = w[3];
  if (w[2].defined()) {
    if (kind_ == Kind::GRU) {
      xw = xw + w[2];
    } else {
      xw = xw + (w[2] + w[3]);
      b_hh = Var<T>();
    }
  }
  const auto xs = zg::split(xw, std::vector<std::size_t>(steps, batch), 0);
  std::vector<Var<T>> hs(steps);
  for (std::size_t k = 0; k < steps; ++k) {
    const std::size_t t = reverse ? steps - 1 - k : k;
    switch (kind_) {
      case Kind::RNNTanh:
      case Kind::RNNReLU: h = rnn_step(xs[t], h, w[1], b_hh, kind_ == Kind::RNNReLU); break;
      case Kind::LSTM: lstm_step(xs[t], h, c, w[1], b_hh); break;
      case Kind::GRU: h = gru_step(xs[t], h, w[1], b_hh); break;
    }
    hs[t] = h;
  }
  return zg::stack(hs, 0);
}

template <class T>
BasicRecurrentOutput<T> BasicRecurrent<T>::forward(const BasicVariable<T>& input,
                                                   const BasicRecurrentState<T>& state) {
  const std::string layer = this->type_name() + "(" + extra_repr() + ")";
  const std::size_t in = options_.input_size, H = options_.hidden_size, L = options_.num_layers, D = directions();
  const Shape s = input.shape();
  const std::string layout = options_.batch_first ? "(B, T, " : "(T, B, ";
  if ((s.size() != 2 && s.size() != 3) || s.back() != in)
    throw ShapeError(layer + ": expected input " + layout + std::to_string(in) + ") or unbatched (T, " +
                     std::to_string(in) + "), got " + shape_str(s));
  const bool unbatched = s.size() == 2;
  const std::size_t steps = unbatched || !options_.batch_first ? s[0] : s[1];
  const std::size_t batch = unbatched ? 1 : options_.batch_first ? s[0] : s[1];
  if (steps == 0) throw ShapeError(layer + ": input " + shape_str(s) + " is an empty sequence (T = 0)");
  if (batch == 0) throw ShapeError(layer + ": input " + shape_str(s) + " has no samples (B = 0)");

  const Shape want = unbatched ? Shape{L * D, H} : Shape{L * D, batch, H};
  const bool lstm = kind_ == Kind::LSTM;
  if (state.c.defined() && !lstm)
    throw ValueError(layer + ": only an LSTM has a cell state c, got one of shape " + shape_str(state.c.shape()));
  if (lstm && state.h.defined() != state.c.defined())
    throw ValueError(layer + ": give both h and c of the initial state, or neither");
  std::vector<Var<T>> h0, c0;
  for (const Var<T>* v : {&state.h, &state.c}) {
    if (!v->defined()) continue;
    if (v->shape() != want)
      throw ShapeError(layer + ": expected initial state " + shape_str(want) + " for input " + shape_str(s) +
                       ", got " + shape_str(v->shape()));
    auto& out = v == &state.h ? h0 : c0;
    out = zg::split(zg::reshape(*v, {L * D, batch, H}), L * D, 0);
  }

  Var<T> x = unbatched ? zg::reshape(input, {steps, 1, in})
                       : options_.batch_first ? zg::transpose(input, {1, 0, 2}) : input;
  std::vector<Var<T>> hn, cn;
  for (std::size_t l = 0; l < L; ++l) {
    std::vector<Var<T>> outs;
    for (std::size_t d = 0; d < D; ++d) {
      const std::size_t k = l * D + d;
      Var<T> h = h0.empty() ? zero_state<T>({batch, H}) : zg::reshape(h0[k], {batch, H});
      Var<T> c;
      if (lstm) c = c0.empty() ? zero_state<T>({batch, H}) : zg::reshape(c0[k], {batch, H});
      outs.push_back(run_direction(x, l, d == 1, h, c));
      hn.push_back(h);
      if (lstm) cn.push_back(c);
    }
    x = D == 1 ? outs[0] : zg::concat(outs, 2);
    if (l + 1 < L && options_.dropout > 0) x = functional::dropout(x, options_.dropout, this->is_training());
  }

  BasicRecurrentOutput<T> out;
  out.state.h = zg::stack(hn, 0);
  if (lstm) out.state.c = zg::stack(cn, 0);
  if (unbatched) {
    out.output = zg::reshape(x, {steps, D * H});
    out.state.h = zg::reshape(out.state.h, want);
    if (lstm) out.state.c = zg::reshape(out.state.c, want);
  } else {
    out.output = options_.batch_first ? zg::transpose(x, {1, 0, 2}) : x;
  }
  return out;
}

template <class T>
BasicRNN<T>::BasicRNN(const RNNOptions& options)
    : BasicRecurrent<T>(options, (check_nonlinearity("RNN", options.nonlinearity), options.nonlinearity == "relu")
                                     ? BasicRecurrent<T>::Kind::RNNReLU
                                     : BasicRecurrent<T>::Kind::RNNTanh),
      rnn_options_(options) {}

template <class T>
BasicRNNCell<T>::BasicRNNCell(std::size_t in, std::size_t hidden, bool bias, std::string nonlinearity)
    : in_(in), hidden_(hidden), nonlinearity_(std::move(nonlinearity)) {
  check_sizes("RNNCell", in, hidden);
  check_nonlinearity("RNNCell", nonlinearity_);
  weight_ih = this->register_parameter("weight_ih", uniform_parameter<T>({hidden, in}, hidden));
  weight_hh = this->register_parameter("weight_hh", uniform_parameter<T>({hidden, hidden}, hidden));
  if (bias) {
    bias_ih = this->register_parameter("bias_ih", uniform_parameter<T>({hidden}, hidden));
    bias_hh = this->register_parameter("bias_hh", uniform_parameter<T>({hidden}, hidden));
  }
}

template <class T>
BasicVariable<T> BasicRNNCell<T>::forward(const BasicVariable<T>& input, const BasicVariable<T>& state) {
  Var<T> x = input, h = state;
  const bool unbatched = cell_shapes<T>("RNNCell(" + extra_repr() + ")", in_, hidden_, x, {&h});
  Var<T> xw = times_transposed(x, weight_ih);
  if (bias_ih.defined()) xw = xw + bias_ih;
  Var<T> y = rnn_step(xw, h, weight_hh, bias_hh, nonlinearity_ == "relu");
  return unbatched ? zg::reshape(y, {hidden_}) : y;
}

template <class T>
std::string BasicRNNCell<T>::extra_repr() const {
  return sizes(in_, hidden_) + (bias_ih.defined() ? "" : ", bias=false") +
         (nonlinearity_ == "relu" ? ", nonlinearity='relu'" : "");
}

template <class T>
BasicLSTMCell<T>::BasicLSTMCell(std::size_t in, std::size_t hidden, bool bias) : in_(in), hidden_(hidden) {
  check_sizes("LSTMCell", in, hidden);
  weight_ih = this->register_parameter("weight_ih", uniform_parameter<T>({4 * hidden, in}, hidden));
  weight_hh = this->register_parameter("weight_hh", uniform_parameter<T>({4 * hidden, hidden}, hidden));
  if (bias) {
    bias_ih = this->register_parameter("bias_ih", uniform_parameter<T>({4 * hidden}, hidden));
    bias_hh = this->register_parameter("bias_hh", uniform_parameter<T>({4 * hidden}, hidden));
  }
}

template <class T>
BasicRecurrentState<T> BasicLSTMCell<T>::forward(const BasicVariable<T>& input, const BasicRecurrentState<T>& state) {
  const std::string layer = "LSTMCell(" + extra_repr() + ")";
  if (state.h.defined() != state.c.defined())
    throw ValueError(layer + ": give both h and c of the state, or neither");
  Var<T> x = input, h = state.h, c = state.c;
  const bool unbatched = cell_shapes<T>(layer, in_, hidden_, x, {&h, &c});
  Var<T> xw = times_transposed(x, weight_ih);
  if (bias_ih.defined()) xw = xw + bias_ih;
  lstm_step(xw, h, c, weight_hh, bias_hh);
  if (unbatched) return {zg::reshape(h, {hidden_}), zg::reshape(c, {hidden_})};
  return {h, c};
}

template <class T>
std::string BasicLSTMCell<T>::extra_repr() const {
  return sizes(in_, hidden_) + (bias_ih.defined() ? "" : ", bias=false");
}

template <class T>
BasicGRUCell<T>::BasicGRUCell(std::size_t in, std::size_t hidden, bool bias) : in_(in), hidden_(hidden) {
  check_sizes("GRUCell", in, hidden);
  weight_ih = this->register_parameter("weight_ih", uniform_parameter<T>({3 * hidden, in}, hidden));
  weight_hh = this->register_parameter("weight_hh", uniform_parameter<T>({3 * hidden, hidden}, hidden));
  if (bias) {
    bias_ih = this->register_parameter("bias_ih", uniform_parameter<T>({3 * hidden}, hidden));
    bias_hh = this->register_parameter("bias_hh", uniform_parameter<T>({3 * hidden}, hidden));
  }
}

template <class T>
BasicVariable<T> BasicGRUCell<T>::forward(const BasicVariable<T>& input, const BasicVariable<T>& state) {
  Var<T> x = input, h = state;
  const bool unbatched = cell_shapes<T>("GRUCell(" + extra_repr() + ")", in_, hidden_, x, {&h});
  Var<T> xw = times_transposed(x, weight_ih);
  if (bias_ih.defined()) xw = xw + bias_ih;
  Var<T> y = gru_step(xw, h, weight_hh, bias_hh);
  return unbatched ? zg::reshape(y, {hidden_}) : y;
}

template <class T>
std::string BasicGRUCell<T>::extra_repr() const {
  return sizes(in_, hidden_) + (bias_ih.defined() ? "" : ", bias=false");
}

#define ZG_INSTANTIATE(T)                   \
  template struct BasicRecurrentState<T>;   \
  template struct BasicRecurrentOutput<T>;  \
  template class BasicRecurrent<T>;         \
  template class BasicRNN<T>;               \
  template class BasicLSTM<T>;              \
  template class BasicGRU<T>;               \
  template class BasicRNNCell<T>;           \
  template class BasicLSTMCell<T>;          \
  template class BasicGRUCell<T>;
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn
