// Recurrent layers and cells. A layer runs each of its layers and directions
// as one Function over every step (functional::recurrent_layer,
// ops/recurrent.cpp); a cell is one step of the same math in autograd ops.
#include "zerograd/nn/recurrent.hpp"

#include <cmath>

#include "zerograd/nn/functional.hpp"
#include "zerograd/nn/init.hpp"
#include "zerograd/ops.hpp"

#include "ops/recurrent.hpp"

namespace zg::nn {

using functional::gru_step;
using functional::lstm_step;
using functional::rnn_step;
using functional::times_transposed;

namespace {

template <class T>
Var<T> zero_state(const Shape& shape) {
  return Var<T>(Tensor<T>(xt::zeros<T>(shape)));
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

template <class T>
BasicVariable<T> BasicRecurrent<T>::run_direction(const BasicVariable<T>& input, std::size_t layer, bool reverse,
                                                  BasicVariable<T>& h, BasicVariable<T>& c) {
  const auto& w = weights_[layer * directions() + (reverse ? 1 : 0)];
  functional::RecurrentLayerOptions o;
  o.mode = kind_ == Kind::LSTM ? functional::RecurrentMode::LSTM
           : kind_ == Kind::GRU ? functional::RecurrentMode::GRU
           : kind_ == Kind::RNNReLU ? functional::RecurrentMode::RNNReLU
                                   : functional::RecurrentMode::RNNTanh;
  o.reverse = reverse;
  const Variables<T> out = functional::recurrent_layer(input, h, c, w[0], w[1], w[2], w[3], o);
  h = out[1];
  if (out.size() > 2) c = out[2];
  return out[0];
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
      Var<T> h = h0.empty() ? Var<T>() : zg::reshape(h0[k], {batch, H});
      Var<T> c = c0.empty() ? Var<T>() : zg::reshape(c0[k], {batch, H});
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
