#pragma once
// Recurrent layers on oneDNN's fused RNN, LSTM and GRU primitives, when the
// library was built with oneDNN: Note [oneDNN recurrent layers] in rnn_dnnl.cpp.
#include <cstddef>
#include <memory>

namespace zg::nn::onednn {

enum class Recurrence { RNNTanh, RNNReLU, LSTM, GRU };

// One layer in one direction: x (T, B, I), states (B, H), weights in
// PyTorch's layout and gate order (G H, I) and (G H, H), biases (G H).
struct RnnDims {
  Recurrence cell;
  std::size_t T, B, I, H;
  bool reverse;
};

// What a layer reads; h0, c0 (LSTM only) and the biases may be null: zeros.
struct RnnInputs {
  const float *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh;
};

// The gradients a backward writes; null where one is not wanted.
struct RnnGrads {
  float *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh;
};

// What a training forward keeps for its backward: oneDNN's workspace.
struct RnnWorkspace;

// Whether oneDNN runs this layer: built in, and a recurrence it was
// measured to run faster than the composed ops.
bool rnn_taken(const RnnDims& d);

// y (T, B, H), h_T and, for an LSTM, c_T (B, H). With workspace not null a
// training forward, which sets *workspace for the backward. False, having
// written nothing, where rnn_taken is false.
bool rnn_forward(const RnnDims& d, const RnnInputs& in, float* y, float* h_T, float* c_T,
                 std::shared_ptr<RnnWorkspace>* workspace);

// The gradients for output gradients gy (T, B, H), gh_T and gc_T (B, H;
// gc_T for an LSTM only), from the workspace of the training forward on
// the same inputs. False, having written nothing, where rnn_taken is false.
bool rnn_backward(const RnnDims& d, const RnnInputs& in, const RnnWorkspace& workspace, const float* gy,
                  const float* gh_T, const float* gc_T, const RnnGrads& g);

}  // namespace zg::nn::onednn
