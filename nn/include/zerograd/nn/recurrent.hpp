#pragma once
/// @file
/// Recurrent layers and cells with PyTorch 1.13's semantics, parameter names
/// and layouts: RNN, LSTM, GRU and RNNCell, LSTMCell, GRUCell. A layer runs
/// each of its layers and directions as one Function over every step
/// (functional::recurrent_layer: oneDNN's fused kernels in float32 where
/// zerograd has them); a cell is one step in autograd ops. Gradients of
/// every order work for both.
///
/// Weights keep PyTorch's (out, in) layout: weight_ih_l{k} is (G H, in),
/// weight_hh_l{k} (G H, H), with G = 1 (RNN), 4 (LSTM: gates i, f, g, o) or
/// 3 (GRU: gates r, z, n); a PyTorch state_dict loads through load_torch_npz
/// as it is. Every parameter starts uniform in [-1/sqrt(H), 1/sqrt(H)], drawn
/// from zg::generator().
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "zerograd/nn/module.hpp"

namespace zg::nn {

/// What a recurrent layer is built with (PyTorch's constructor arguments).
struct RecurrentOptions {
  RecurrentOptions() = default;  ///< sizes 0: set them before use
  /// The sizes; the rest keeps its defaults.
  RecurrentOptions(std::size_t input_size, std::size_t hidden_size, std::size_t num_layers = 1)
      : input_size(input_size), hidden_size(hidden_size), num_layers(num_layers) {}
  std::size_t input_size = 0;  ///< features of each step of the input
  std::size_t hidden_size = 0;  ///< H, features of the hidden state
  std::size_t num_layers = 1;  ///< stacked layers, each reading the one below
  bool bias = true;  ///< b_ih and b_hh; false leaves them out
  /// Input and output (B, T, F) instead of (T, B, F); the state is always
  /// (num_layers * directions, B, H).
  bool batch_first = false;
  /// Dropout on each layer's output but the last, in train mode only.
  double dropout = 0;
  bool bidirectional = false;  ///< a second direction running backwards in time; outputs concatenated
};
using LSTMOptions = RecurrentOptions;  ///< LSTM's options
using GRUOptions = RecurrentOptions;  ///< GRU's options
/// RNN's options: RecurrentOptions and the nonlinearity.
struct RNNOptions : RecurrentOptions {
  using RecurrentOptions::RecurrentOptions;  ///< RecurrentOptions' constructors
  std::string nonlinearity = "tanh";  ///< "tanh" or "relu"
};

/// A recurrent layer's hidden state: h (num_layers * directions, B, H), and
/// for an LSTM the cell state c of the same shape (empty otherwise). Without
/// a batch axis (unbatched input) both are (num_layers * directions, H).
template <class T>
struct BasicRecurrentState {
  ///@{
  /// The hidden state h and, for an LSTM, the cell state c.
  BasicVariable<T> h, c;
  ///@}
  bool defined() const { return h.defined(); }  ///< false for an empty state, which means zeros
  /// The same values cut from the graph: truncated backpropagation through
  /// time carries the state into the next chunk as `state = state.detach();`.
  BasicRecurrentState detach() const;
};
using RecurrentState = BasicRecurrentState<float>;  ///< the float state

/// What forward(input, state) returns: the last layer's hidden state at every
/// step, (T, B, directions * H) ((B, T, directions * H) with batch_first),
/// and the final state of every layer and direction.
template <class T>
struct BasicRecurrentOutput {
  BasicVariable<T> output;  ///< the top layer's h at every step
  BasicRecurrentState<T> state;  ///< the final state
};
using RecurrentOutput = BasicRecurrentOutput<float>;  ///< the float output

/// The common part of RNN, LSTM and GRU. Input is (T, B, input_size)
/// ((B, T, input_size) with batch_first), or unbatched (T, input_size). Each
/// layer and direction is one functional::recurrent_layer. Errors are zg::ShapeError
/// (input rank, feature size, state shape, T = 0) and zg::ValueError (sizes,
/// dropout, a cell state given to RNN or GRU), naming the layer and shapes.
template <class T>
class BasicRecurrent : public BasicModule<T> {
 public:
  using BasicModule<T>::operator();
  /// The output alone, from a zero initial state (for Sequential).
  BasicVariable<T> forward(const BasicVariable<T>& input) override;
  /// Output and final state from the given initial state; an empty state
  /// (`{}`) means zeros.
  BasicRecurrentOutput<T> forward(const BasicVariable<T>& input, const BasicRecurrentState<T>& state);
  /// forward(input, state).
  BasicRecurrentOutput<T> operator()(const BasicVariable<T>& input, const BasicRecurrentState<T>& state) {
    return forward(input, state);
  }
  std::string extra_repr() const override;
  const RecurrentOptions& options() const { return options_; }  ///< what the layer was built with
  std::size_t directions() const { return options_.bidirectional ? 2 : 1; }  ///< 2 when bidirectional, else 1

 protected:
  /// Which recurrence a subclass runs.
  enum class Kind { RNNTanh, RNNReLU, LSTM, GRU };
  BasicRecurrent(const RecurrentOptions& options, Kind kind);  ///< registers the parameters for kind

 private:
  std::size_t gates() const;
  // One layer in one direction over (T, B, in) time-major input.
  BasicVariable<T> run_direction(const BasicVariable<T>& input, std::size_t layer, bool reverse,
                                 BasicVariable<T>& h, BasicVariable<T>& c);
  RecurrentOptions options_;
  Kind kind_;
  // Per layer and direction (layer * directions + d): W_ih, W_hh, b_ih, b_hh.
  std::vector<std::array<BasicVariable<T>, 4>> weights_;
};

/// Elman RNN: h' = tanh or relu(x W_ih^T + b_ih + h W_hh^T + b_hh).
template <class T>
class BasicRNN : public BasicRecurrent<T> {
 public:
  explicit BasicRNN(const RNNOptions& options);  ///< from the options
  /// From the sizes alone: tanh, with biases, unidirectional.
  BasicRNN(std::size_t input_size, std::size_t hidden_size, std::size_t num_layers = 1)
      : BasicRNN(RNNOptions(input_size, hidden_size, num_layers)) {}
  std::string type_name() const override { return "RNN"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicRNN>(dtype, rnn_options_); }

 private:
  RNNOptions rnn_options_;
};
using RNN = BasicRNN<float>;  ///< the float RNN

/// LSTM, gates i, f, g, o stacked in that order:
/// c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c').
template <class T>
class BasicLSTM : public BasicRecurrent<T> {
 public:
  /// From the options.
  explicit BasicLSTM(const LSTMOptions& options) : BasicRecurrent<T>(options, BasicRecurrent<T>::Kind::LSTM) {}
  /// From the sizes alone: with biases, unidirectional.
  BasicLSTM(std::size_t input_size, std::size_t hidden_size, std::size_t num_layers = 1)
      : BasicLSTM(LSTMOptions(input_size, hidden_size, num_layers)) {}
  std::string type_name() const override { return "LSTM"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicLSTM>(dtype, this->options()); }
};
using LSTM = BasicLSTM<float>;  ///< the float LSTM

/// GRU, gates r, z, n: n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)),
/// h' = (1 - z) n + z h.
template <class T>
class BasicGRU : public BasicRecurrent<T> {
 public:
  /// From the options.
  explicit BasicGRU(const GRUOptions& options) : BasicRecurrent<T>(options, BasicRecurrent<T>::Kind::GRU) {}
  /// From the sizes alone: with biases, unidirectional.
  BasicGRU(std::size_t input_size, std::size_t hidden_size, std::size_t num_layers = 1)
      : BasicGRU(GRUOptions(input_size, hidden_size, num_layers)) {}
  std::string type_name() const override { return "GRU"; }
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicGRU>(dtype, this->options()); }
};
using GRU = BasicGRU<float>;  ///< the float GRU

// Cells: one step, input (B, input_size) or unbatched (input_size), state
// (B, H) or (H); parameters weight_ih (G H, in), weight_hh (G H, H), bias_ih,
// bias_hh (G H). forward(x) steps from a zero state.

/// One Elman RNN step: h' = tanh or relu(x W_ih^T + b_ih + h W_hh^T + b_hh).
/// Input (B, input_size) or unbatched (input_size), state (B, H) or (H).
template <class T>
class BasicRNNCell : public BasicModule<T> {
 public:
  /// nonlinearity "tanh" or "relu".
  BasicRNNCell(std::size_t input_size, std::size_t hidden_size, bool bias = true, std::string nonlinearity = "tanh");
  using BasicModule<T>::operator();
  BasicVariable<T> forward(const BasicVariable<T>& x) override { return forward(x, {}); }
  BasicVariable<T> forward(const BasicVariable<T>& x, const BasicVariable<T>& h);  ///< h' from x and h (empty h: zeros)
  /// forward(x, h).
  BasicVariable<T> operator()(const BasicVariable<T>& x, const BasicVariable<T>& h) { return forward(x, h); }
  std::string type_name() const override { return "RNNCell"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override {
    return nn::rebuild<BasicRNNCell>(dtype, in_, hidden_, bias_ih.defined(), nonlinearity_);
  }
  ///@{
  /// The parameters, weight_ih (G H, in), weight_hh (G H, H), bias_ih and bias_hh
  /// (G H); the biases are empty without bias.
  BasicVariable<T> weight_ih, weight_hh, bias_ih, bias_hh;
  ///@}

 private:
  std::size_t in_, hidden_;
  std::string nonlinearity_;
};
using RNNCell = BasicRNNCell<float>;  ///< the float RNNCell

/// One LSTM step: (h, c) -> (h', c'); state.c must be given with state.h.
template <class T>
class BasicLSTMCell : public BasicModule<T> {
 public:
  BasicLSTMCell(std::size_t input_size, std::size_t hidden_size, bool bias = true);  ///< G = 4 gates i, f, g, o
  using BasicModule<T>::operator();
  /// h' alone, from zero h and c.
  BasicVariable<T> forward(const BasicVariable<T>& x) override { return forward(x, {}).h; }
  /// (h', c') from x and (h, c) (an empty state: zeros).
  BasicRecurrentState<T> forward(const BasicVariable<T>& x, const BasicRecurrentState<T>& state);
  /// forward(x, state).
  BasicRecurrentState<T> operator()(const BasicVariable<T>& x, const BasicRecurrentState<T>& state) {
    return forward(x, state);
  }
  std::string type_name() const override { return "LSTMCell"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override {
    return nn::rebuild<BasicLSTMCell>(dtype, in_, hidden_, bias_ih.defined());
  }
  ///@{
  /// The parameters, weight_ih (G H, in), weight_hh (G H, H), bias_ih and bias_hh
  /// (G H); the biases are empty without bias.
  BasicVariable<T> weight_ih, weight_hh, bias_ih, bias_hh;
  ///@}

 private:
  std::size_t in_, hidden_;
};
using LSTMCell = BasicLSTMCell<float>;  ///< the float LSTMCell

/// One GRU step, gates r, z, n as in GRU: h -> h'.
template <class T>
class BasicGRUCell : public BasicModule<T> {
 public:
  BasicGRUCell(std::size_t input_size, std::size_t hidden_size, bool bias = true);  ///< G = 3 gates r, z, n
  using BasicModule<T>::operator();
  BasicVariable<T> forward(const BasicVariable<T>& x) override { return forward(x, {}); }
  BasicVariable<T> forward(const BasicVariable<T>& x, const BasicVariable<T>& h);  ///< h' from x and h (empty h: zeros)
  /// forward(x, h).
  BasicVariable<T> operator()(const BasicVariable<T>& x, const BasicVariable<T>& h) { return forward(x, h); }
  std::string type_name() const override { return "GRUCell"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override {
    return nn::rebuild<BasicGRUCell>(dtype, in_, hidden_, bias_ih.defined());
  }
  ///@{
  /// The parameters, weight_ih (G H, in), weight_hh (G H, H), bias_ih and bias_hh
  /// (G H); the biases are empty without bias.
  BasicVariable<T> weight_ih, weight_hh, bias_ih, bias_hh;
  ///@}

 private:
  std::size_t in_, hidden_;
};
using GRUCell = BasicGRUCell<float>;  ///< the float GRUCell

}  // namespace zg::nn
