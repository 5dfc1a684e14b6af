#include "kernels/rnn_dnnl.hpp"

// Note [oneDNN recurrent layers]: float32 RNN, LSTM and GRU layers run on
// oneDNN's fused vanilla_rnn, lstm and lbr_gru primitives (lbr_gru is
// PyTorch's GRU: the reset gate multiplies h W_hn^T + b_hn; its gates u, r, o
// are PyTorch's z, r, n, so the first two swap on the way in and out), one
// primitive per layer and direction over every step, with the weights
// reordered from PyTorch's (G H, in) layout at each call and the gradients
// back. Two things oneDNN 2.6 needs that its documentation does not say:
// the initial state is always passed as an array (zeros when the user gave
// none: left out, the weight_hh gradient came out wrong), and the backward
// reads the forward's outputs dst_layer, dst_iter and dst_iter_c as well as
// the workspace (given other values, the gradients came out wrong), so a
// training forward keeps copies of its outputs beside the workspace.
// ZEROGRAD_RNN=composed in the environment switches oneDNN off. Measured
// with bench/recurrent_layers (one layer at train-lm's shapes, T 64, B 32,
// input 128, hidden 256, forward + backward, AVX-512 EPYC, 1 thread):
// LSTM 29.2 ms against 79.1 for the steps as autograd ops, GRU 21.6 against
// 55.4, RNN 13.7 against 15.4 (so it stays on oneDNN too); with
// bench/compare, train-lm's LSTM step 70.8 ms at 1 thread (51.6 at 2)
// against 205 (117) composed with oneDNN held to AVX2. Making a layer's
// primitives costs about one call (first call 105 ms for an LSTM layer),
// so they are kept per thread and shape.

#ifdef ZEROGRAD_HAVE_DNNL

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <dnnl.hpp>

#include "zerograd/threads.hpp"

#include "kernels/onednn_runtime.hpp"

namespace zg::nn::onednn {

struct RnnWorkspace {
  struct Free {
    void operator()(char* p) const { ::operator delete(p, std::align_val_t(64)); }
  };
  RnnWorkspace(std::size_t bytes, std::size_t outputs, std::size_t state, bool lstm)
      : data(static_cast<char*>(::operator new(bytes, std::align_val_t(64)))), y(outputs), h_T(state),
        c_T(lstm ? state : 0) {}
  std::unique_ptr<char, Free> data;
  std::vector<float> y, h_T, c_T;  // the outputs, which the backward reads too
};

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using Args = std::unordered_map<int, memory>;

bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("ZEROGRAD_RNN");
    return !(v && std::strcmp(v, "composed") == 0);
  }();
  return on;
}

std::size_t gates(Recurrence c) { return c == Recurrence::LSTM ? 4 : c == Recurrence::GRU ? 3 : 1; }
// oneDNN's GRU with the linear product before the reset gate (PyTorch's
// GRU) has a fourth bias, b_hn, inside r * (h W_hn^T + b_hn).
std::size_t bias_gates(Recurrence c) { return c == Recurrence::GRU ? 4 : gates(c); }

memory::desc desc(const memory::dims& d, tag t) { return memory::desc(d, memory::data_type::f32, t); }
memory::dim dim(std::size_t n) { return memory::dim(n); }
std::size_t rounded(std::size_t n) { return (n + 63) / 64 * 64; }

// The next `bytes` of the arena.
float* take(char*& free, std::size_t bytes) {
  float* p = reinterpret_cast<float*>(free);
  free += rounded(bytes);
  return p;
}

struct Entry {
  dnnl::primitive fwd, bwd;  // bwd only for a training forward
  memory::desc wl, wi, bwd_wl, bwd_wi, diff_wl, diff_wi, workspace;
};

template <class Fwd, class Bwd>
void fill(Entry& e, const typename Fwd::primitive_desc& f, const typename Bwd::primitive_desc* b) {
  e.fwd = Fwd(f);
  e.wl = f.weights_layer_desc(), e.wi = f.weights_iter_desc();
  if (!b) return;
  e.bwd = Bwd(*b);
  e.workspace = f.workspace_desc();
  e.bwd_wl = b->weights_layer_desc(), e.bwd_wi = b->weights_iter_desc();
  e.diff_wl = b->diff_weights_layer_desc(), e.diff_wi = b->diff_weights_iter_desc();
}

Entry make_entry(const RnnDims& d, bool training) {
  using dnnl::prop_kind;
  const auto dir = d.reverse ? dnnl::rnn_direction::unidirectional_right2left
                             : dnnl::rnn_direction::unidirectional_left2right;
  const auto prop = training ? prop_kind::forward_training : prop_kind::forward_inference;
  const memory::dim T = dim(d.T), N = dim(d.B), I = dim(d.I), H = dim(d.H), G = dim(gates(d.cell));
  const memory::desc src = desc({T, N, I}, tag::tnc), dst = desc({T, N, H}, tag::tnc);
  // The initial state is always an array, zeros when not given (Note
  // [oneDNN recurrent layers]); so is the final one.
  const memory::desc state = desc({1, 1, N, H}, tag::ldnc);
  const memory::desc wl = desc({1, 1, I, G, H}, tag::any), wi = desc({1, 1, H, G, H}, tag::any);
  const memory::desc bias = desc({1, 1, dim(bias_gates(d.cell)), H}, tag::ldgo);
  Entry e;
  const dnnl::engine& eng = engine();
  if (d.cell == Recurrence::LSTM) {
    const dnnl::lstm_forward::primitive_desc f(
        dnnl::lstm_forward::desc(prop, dir, src, state, state, wl, wi, bias, dst, state, state), eng);
    if (!training) return fill<dnnl::lstm_forward, dnnl::lstm_backward>(e, f, nullptr), e;
    const dnnl::lstm_backward::primitive_desc b(
        dnnl::lstm_backward::desc(prop_kind::backward, dir, src, state, state, wl, wi, bias, dst, state, state, src,
                                  state, state, wl, wi, bias, dst, state, state),
        eng, f);
    fill<dnnl::lstm_forward, dnnl::lstm_backward>(e, f, &b);
  } else if (d.cell == Recurrence::GRU) {
    const dnnl::lbr_gru_forward::primitive_desc f(
        dnnl::lbr_gru_forward::desc(prop, dir, src, state, wl, wi, bias, dst, state), eng);
    if (!training) return fill<dnnl::lbr_gru_forward, dnnl::lbr_gru_backward>(e, f, nullptr), e;
    const dnnl::lbr_gru_backward::primitive_desc b(
        dnnl::lbr_gru_backward::desc(prop_kind::backward, dir, src, state, wl, wi, bias, dst, state, src, state, wl,
                                     wi, bias, dst, state),
        eng, f);
    fill<dnnl::lbr_gru_forward, dnnl::lbr_gru_backward>(e, f, &b);
  } else {
    const auto act = d.cell == Recurrence::RNNReLU ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_tanh;
    const dnnl::vanilla_rnn_forward::primitive_desc f(
        dnnl::vanilla_rnn_forward::desc(prop, act, dir, src, state, wl, wi, bias, dst, state), eng);
    if (!training) return fill<dnnl::vanilla_rnn_forward, dnnl::vanilla_rnn_backward>(e, f, nullptr), e;
    const dnnl::vanilla_rnn_backward::primitive_desc b(
        dnnl::vanilla_rnn_backward::desc(prop_kind::backward, act, dir, src, state, wl, wi, bias, dst, state, src,
                                         state, wl, wi, bias, dst, state),
        eng, f);
    fill<dnnl::vanilla_rnn_forward, dnnl::vanilla_rnn_backward>(e, f, &b);
  }
  return e;
}

using Key = std::tuple<int, int, std::size_t, std::size_t, std::size_t, std::size_t, bool, bool>;

// The thread's primitives for this layer, made on first use and kept (at
// most 32 shapes).
Entry& entry(const RnnDims& d, bool training) {
  thread_local std::map<Key, Entry> cache;
  const Key key{int(d.cell), zg::num_threads(), d.T, d.B, d.I, d.H, d.reverse, training};
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= 32) cache.clear();
  use_onednn_threads();  // oneDNN fixes a primitive's thread count when it makes it
  return cache.emplace(key, make_entry(d, training)).first->second;
}

const char* op_name(Recurrence c) {
  return c == Recurrence::LSTM ? "LSTMLayer" : c == Recurrence::GRU ? "GRULayer" : "RNNLayer";
}

// PyTorch's GRU gates r, z, n are oneDNN's u (= z), r, o: the first two
// blocks of `block` values swap places (to and from oneDNN alike).
void swap_first_gates(const float* from, float* to, std::size_t block) {
  std::copy_n(from, block, to + block);
  std::copy_n(from + block, block, to);
  std::copy_n(from + 2 * block, block, to + 2 * block);
}

// Working memory: each array a call may put in the arena, in bytes.
std::size_t arena_bytes(const RnnDims& d, const Entry& e, bool backward) {
  const std::size_t f = sizeof(float), G = gates(d.cell), state = rounded(d.B * d.H * f);
  std::size_t n = 2 * rounded(G * d.H * d.I * f) + 2 * rounded(G * d.H * d.H * f);  // GRU's copies, the reorders
  n += rounded(std::max(e.wl.get_size(), e.bwd_wl.get_size())) + rounded(std::max(e.wi.get_size(), e.bwd_wi.get_size())) + rounded(bias_gates(d.cell) * d.H * f) + 6 * state;
  if (backward)
    n += rounded(e.diff_wl.get_size()) + rounded(e.diff_wi.get_size()) + rounded(bias_gates(d.cell) * d.H * f) +
         2 * rounded(d.T * d.B * std::max(d.I, d.H) * f);
  return n;
}

// Weights w (G H, n) in PyTorch's layout as a memory of layout `want`.
memory weights_in(dnnl::stream& s, const RnnDims& d, const float* w, std::size_t n, const memory::desc& want,
                  char*& free) {
  const std::size_t G = gates(d.cell);
  const memory::desc plain = desc({1, 1, dim(n), dim(G), dim(d.H)}, tag::ldgoi);
  if (d.cell == Recurrence::GRU) {
    float* p = take(free, G * d.H * n * sizeof(float));
    swap_first_gates(w, p, d.H * n);
    w = p;
  }
  memory user(plain, engine(), const_cast<float*>(w));
  if (want == plain) return user;
  memory m(want, engine(), take(free, want.get_size()));
  dnnl::reorder(user, m).execute(s, user, m);
  return m;
}

// oneDNN's one bias (gate, H) from b_ih and b_hh, either null for zeros:
// their sum, and for GRU b_in and b_hn apart.
memory bias_in(const RnnDims& d, const RnnInputs& in, char*& free) {
  const std::size_t H = d.H, G = gates(d.cell), Gb = bias_gates(d.cell);
  float* b = take(free, Gb * H * sizeof(float));
  std::fill_n(b, Gb * H, 0.f);
  for (std::size_t g = 0; g < G; ++g) {
    // oneDNN's gate g reads PyTorch's gate `from`.
    const std::size_t from = d.cell == Recurrence::GRU && g < 2 ? 1 - g : g;
    for (const float* src : {in.b_ih, in.b_hh}) {
      if (!src) continue;
      const bool apart = d.cell == Recurrence::GRU && g == 2 && src == in.b_hh;
      float* to = b + (apart ? 3 : g) * H;
      for (std::size_t i = 0; i < H; ++i) to[i] += src[from * H + i];
    }
  }
  return memory(desc({1, 1, dim(Gb), dim(H)}, tag::ldgo), engine(), b);
}

memory state_or_zeros(const RnnDims& d, const float* p, char*& free) {
  float* s = const_cast<float*>(p);
  if (!s) {
    s = take(free, d.B * d.H * sizeof(float));
    std::fill_n(s, d.B * d.H, 0.f);
  }
  return memory(desc({1, 1, dim(d.B), dim(d.H)}, tag::ldnc), engine(), s);
}

memory scratch(const memory::desc& m, char*& free) { return memory(m, engine(), take(free, m.get_size())); }
memory zeroed(const memory::desc& m, char*& free) {
  memory z = scratch(m, free);
  std::memset(z.get_data_handle(), 0, m.get_size());
  return z;
}

// The gradient of weights (G H, n) from oneDNN's layout into `to`, PyTorch's.
void weights_out(dnnl::stream& s, const RnnDims& d, memory& diff, std::size_t n, float* to, char*& free) {
  const std::size_t G = gates(d.cell);
  const memory::desc plain = desc({1, 1, dim(n), dim(G), dim(d.H)}, tag::ldgoi);
  float* p = d.cell == Recurrence::GRU ? take(free, G * d.H * n * sizeof(float)) : to;
  memory user(plain, engine(), p);
  dnnl::reorder(diff, user).execute(s, diff, user);
  s.wait();
  if (d.cell == Recurrence::GRU) swap_first_gates(p, to, d.H * n);
}

}  // namespace

bool rnn_taken(const RnnDims& d) { return enabled() && d.T && d.B && d.I && d.H; }

bool rnn_forward(const RnnDims& d, const RnnInputs& in, float* y, float* h_T, float* c_T,
                 std::shared_ptr<RnnWorkspace>* workspace) {
  if (!rnn_taken(d)) return false;
  const bool training = workspace != nullptr, lstm = d.cell == Recurrence::LSTM;
  const Entry& e = entry(d, training);
  if (training) *workspace = std::make_shared<RnnWorkspace>(e.workspace.get_size(), d.T * d.B * d.H, d.B * d.H, lstm);
  on_onednn(op_name(d.cell), arena_bytes(d, e, false), [&](dnnl::stream& s, char* free) {
    const memory::desc src = desc({dim(d.T), dim(d.B), dim(d.I)}, tag::tnc);
    const memory::desc dst = desc({dim(d.T), dim(d.B), dim(d.H)}, tag::tnc);
    const memory::desc state = desc({1, 1, dim(d.B), dim(d.H)}, tag::ldnc);
    Args args{{DNNL_ARG_SRC_LAYER, memory(src, engine(), const_cast<float*>(in.x))},
              {DNNL_ARG_SRC_ITER, state_or_zeros(d, in.h0, free)},
              {DNNL_ARG_WEIGHTS_LAYER, weights_in(s, d, in.w_ih, d.I, e.wl, free)},
              {DNNL_ARG_WEIGHTS_ITER, weights_in(s, d, in.w_hh, d.H, e.wi, free)},
              {DNNL_ARG_BIAS, bias_in(d, in, free)},
              {DNNL_ARG_DST_LAYER, memory(dst, engine(), y)},
              {DNNL_ARG_DST_ITER, memory(state, engine(), h_T)}};
    if (lstm) {
      args.emplace(DNNL_ARG_SRC_ITER_C, state_or_zeros(d, in.c0, free));
      args.emplace(DNNL_ARG_DST_ITER_C, memory(state, engine(), c_T));
    }
    if (training) args.emplace(DNNL_ARG_WORKSPACE, memory(e.workspace, engine(), (*workspace)->data.get()));
    e.fwd.execute(s, args);
    if (training) {
      s.wait();
      std::copy_n(y, d.T * d.B * d.H, (*workspace)->y.data());
      std::copy_n(h_T, d.B * d.H, (*workspace)->h_T.data());
      if (lstm) std::copy_n(c_T, d.B * d.H, (*workspace)->c_T.data());
    }
  });
  return true;
}

bool rnn_backward(const RnnDims& d, const RnnInputs& in, const RnnWorkspace& workspace, const float* gy,
                  const float* gh_T, const float* gc_T, const RnnGrads& g) {
  if (!rnn_taken(d)) return false;
  const bool lstm = d.cell == Recurrence::LSTM;
  const Entry& e = entry(d, true);
  on_onednn(op_name(d.cell), arena_bytes(d, e, true), [&](dnnl::stream& s, char* free) {
    const memory::desc src = desc({dim(d.T), dim(d.B), dim(d.I)}, tag::tnc);
    const memory::desc dst = desc({dim(d.T), dim(d.B), dim(d.H)}, tag::tnc);
    const memory::desc state = desc({1, 1, dim(d.B), dim(d.H)}, tag::ldnc);
    const memory::desc bias = desc({1, 1, dim(bias_gates(d.cell)), dim(d.H)}, tag::ldgo);
    auto out = [&](const memory::desc& m, float* p) { return p ? memory(m, engine(), p) : scratch(m, free); };
    memory diff_wl = zeroed(e.diff_wl, free), diff_wi = zeroed(e.diff_wi, free), diff_bias = zeroed(bias, free);
    // oneDNN's backward reads the forward's outputs too (Note [oneDNN
    // recurrent layers]): the copies the workspace keeps.
    Args args{{DNNL_ARG_SRC_LAYER, memory(src, engine(), const_cast<float*>(in.x))},
              {DNNL_ARG_SRC_ITER, state_or_zeros(d, in.h0, free)},
              {DNNL_ARG_WEIGHTS_LAYER, weights_in(s, d, in.w_ih, d.I, e.bwd_wl, free)},
              {DNNL_ARG_WEIGHTS_ITER, weights_in(s, d, in.w_hh, d.H, e.bwd_wi, free)},
              {DNNL_ARG_BIAS, bias_in(d, in, free)},
              {DNNL_ARG_DST_LAYER, memory(dst, engine(), const_cast<float*>(workspace.y.data()))},
              {DNNL_ARG_DST_ITER, memory(state, engine(), const_cast<float*>(workspace.h_T.data()))},
              {DNNL_ARG_WORKSPACE, memory(e.workspace, engine(), workspace.data.get())},
              {DNNL_ARG_DIFF_DST_LAYER, memory(dst, engine(), const_cast<float*>(gy))},
              {DNNL_ARG_DIFF_DST_ITER, memory(state, engine(), const_cast<float*>(gh_T))},
              {DNNL_ARG_DIFF_SRC_LAYER, out(src, g.x)},
              {DNNL_ARG_DIFF_SRC_ITER, out(state, g.h0)},
              {DNNL_ARG_DIFF_WEIGHTS_LAYER, diff_wl},
              {DNNL_ARG_DIFF_WEIGHTS_ITER, diff_wi},
              {DNNL_ARG_DIFF_BIAS, diff_bias}};
    if (lstm) {
      args.emplace(DNNL_ARG_SRC_ITER_C, state_or_zeros(d, in.c0, free));
      args.emplace(DNNL_ARG_DST_ITER_C, memory(state, engine(), const_cast<float*>(workspace.c_T.data())));
      args.emplace(DNNL_ARG_DIFF_DST_ITER_C, memory(state, engine(), const_cast<float*>(gc_T)));
      args.emplace(DNNL_ARG_DIFF_SRC_ITER_C, out(state, g.c0));
    }
    e.bwd.execute(s, args);
    s.wait();
    if (g.w_ih) weights_out(s, d, diff_wl, d.I, g.w_ih, free);
    if (g.w_hh) weights_out(s, d, diff_wi, d.H, g.w_hh, free);
    // Both biases get the summed bias's gradient; GRU's b_in and b_hn their own.
    const float* db = static_cast<const float*>(diff_bias.get_data_handle());
    const std::size_t H = d.H;
    for (std::size_t gate = 0; gate < gates(d.cell); ++gate) {
      const std::size_t to = d.cell == Recurrence::GRU && gate < 2 ? 1 - gate : gate;
      if (g.b_ih) std::copy_n(db + gate * H, H, g.b_ih + to * H);
      if (g.b_hh) std::copy_n(db + (d.cell == Recurrence::GRU && gate == 2 ? 3 : gate) * H, H, g.b_hh + to * H);
    }
  });
  return true;
}

}  // namespace zg::nn::onednn

#else

namespace zg::nn::onednn {
struct RnnWorkspace {};
bool rnn_taken(const RnnDims&) { return false; }
bool rnn_forward(const RnnDims&, const RnnInputs&, float*, float*, float*, std::shared_ptr<RnnWorkspace>*) {
  return false;
}
bool rnn_backward(const RnnDims&, const RnnInputs&, const RnnWorkspace&, const float*, const float*, const float*,
                  const RnnGrads&) {
  return false;
}
}  // namespace zg::nn::onednn

#endif
