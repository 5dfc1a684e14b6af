// An LSTM's forward (training) + backward at train-lm's shapes: oneDNN's
// fused lstm_forward / lstm_backward primitives against zerograd's nn::LSTM,
// the composed ops it runs today (Note [LSTM speed] in nn/src/recurrent.cpp).
// Both sides get the same weights, input and output gradient; one JSON line
// per (layers, threads) with the median times and how far apart the outputs
// and gradients are. oneDNN is timed twice: its primitives alone, with the
// weights already in the layouts each one prefers, and with the reorders a
// step would need from and to zerograd's layout (PyTorch's (4H, in) weights,
// two biases) around them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli.hpp"
#include <dnnl.hpp>
#include <zerograd/zerograd.hpp>

#include "bench_common.hpp"

// libgomp, oneDNN's thread runtime (as in nn/src/kernels/conv_dnnl.cpp).
extern "C" void omp_set_num_threads(int);

namespace {

namespace nn = zg::nn;
using dnnl::memory;
using tag = memory::format_tag;
using Clock = zg::bench::Clock;

struct Sizes {
  std::size_t steps = 64, batch = 32, input = 128, hidden = 256;
};

memory::desc desc(const memory::dims& d, tag t) { return memory::desc(d, memory::data_type::f32, t); }
memory::dim dim(std::size_t n) { return memory::dim(n); }
float* ptr(const memory& m) { return static_cast<float*>(m.get_data_handle()); }

// A reorder from `from` into a new memory of layout `want`, or none (and
// `from` itself) when the layouts are the same.
struct Converted {
  memory mem;
  dnnl::reorder copy;
  void init(const memory& from, const memory::desc& want, const dnnl::engine& e) {
    if (from.get_desc() == want) {
      mem = from;
      return;
    }
    mem = memory(want, e);
    copy = dnnl::reorder(from, mem);
  }
  void run(dnnl::stream& s, memory& from) {
    if (copy) copy.execute(s, from, mem);
  }
};

// One unidirectional LSTM layer on oneDNN. The user memories alias
// zerograd's own arrays (weight_ih (4H, in) is oneDNN's ldgoi), so both
// sides compute with the same numbers.
struct DnnlLayer {
  std::size_t in = 0, hidden = 0;
  dnnl::lstm_forward fwd;
  dnnl::lstm_backward bwd;
  memory user_wl, user_wi, user_dwl, user_dwi;  // ldgoi, zerograd's layout
  Converted fwd_wl, fwd_wi, bwd_wl, bwd_wi;     // the layouts each primitive prefers
  memory diff_wl, diff_wi, diff_wl_back, diff_wi_back;
  memory h0, c0, diff_h0, diff_c0;  // a zero initial state, and its gradient
  memory bias, diff_bias, src, dst, diff_src, diff_dst, workspace;
  dnnl::reorder dwl_out, dwi_out;
  const float *b_ih = nullptr, *b_hh = nullptr;

  void init(const dnnl::engine& e, const Sizes& z, std::size_t in_size, nn::NamedVariables& params,
            std::vector<zg::Tensor<float>>& grads, std::size_t layer, const memory* below) {
    in = in_size, hidden = z.hidden;
    const memory::dim T = dim(z.steps), N = dim(z.batch), I = dim(in), H = dim(hidden);
    const std::string l = "_l" + std::to_string(layer);
    auto param = [&](const std::string& name) -> zg::Variable& {
      for (auto& [n, v] : params)
        if (n == name) return v;
      throw zg::ValueError("rnn_dnnl: no parameter " + name);
    };
    const memory::desc src_md = desc({T, N, I}, tag::tnc), dst_md = desc({T, N, H}, tag::tnc);
    const memory::desc wl_any = desc({1, 1, I, 4, H}, tag::any), wi_any = desc({1, 1, H, 4, H}, tag::any);
    const memory::desc bias_md = desc({1, 1, 4, H}, tag::ldgo), none;
    // The zero initial state is an array (Note [LSTM speed]).
    const memory::desc state_md = desc({1, 1, N, H}, tag::ldnc);
    dnnl::lstm_forward::desc fd(dnnl::prop_kind::forward_training, dnnl::rnn_direction::unidirectional_left2right,
                                src_md, state_md, state_md, wl_any, wi_any, bias_md, dst_md, none, none);
    dnnl::lstm_forward::primitive_desc fpd(fd, e);
    dnnl::lstm_backward::desc bd(dnnl::prop_kind::backward, dnnl::rnn_direction::unidirectional_left2right, src_md,
                                 state_md, state_md, wl_any, wi_any, bias_md, dst_md, none, none, src_md, state_md,
                                 state_md, wl_any, wi_any, bias_md, dst_md, none, none);
    dnnl::lstm_backward::primitive_desc bpd(bd, e, fpd);
    fwd = dnnl::lstm_forward(fpd);
    bwd = dnnl::lstm_backward(bpd);

    user_wl = memory(desc({1, 1, I, 4, H}, tag::ldgoi), e, param("weight_ih" + l).data().data());
    user_wi = memory(desc({1, 1, H, 4, H}, tag::ldgoi), e, param("weight_hh" + l).data().data());
    b_ih = param("bias_ih" + l).data().data();
    b_hh = param("bias_hh" + l).data().data();
    fwd_wl.init(user_wl, fpd.weights_layer_desc(), e);
    fwd_wi.init(user_wi, fpd.weights_iter_desc(), e);
    bwd_wl.init(user_wl, bpd.weights_layer_desc(), e);
    bwd_wi.init(user_wi, bpd.weights_iter_desc(), e);
    bias = memory(bias_md, e);
    for (memory* m : {&h0, &c0, &diff_h0, &diff_c0}) {
      *m = memory(state_md, e);
      std::memset(m->get_data_handle(), 0, state_md.get_size());
    }
    diff_bias = memory(bpd.diff_bias_desc(), e);
    src = below ? *below : memory(src_md, e);
    dst = memory(dst_md, e);
    diff_src = memory(src_md, e);
    diff_dst = memory(dst_md, e);  // replaced by the next layer's diff_src where there is one
    workspace = memory(fpd.workspace_desc(), e);
    diff_wl = memory(bpd.diff_weights_layer_desc(), e);
    diff_wi = memory(bpd.diff_weights_iter_desc(), e);
    grads.emplace_back(zg::Tensor<float>::from_shape({4 * hidden, in}));
    user_dwl = memory(desc({1, 1, I, 4, H}, tag::ldgoi), e, grads.back().data());
    grads.emplace_back(zg::Tensor<float>::from_shape({4 * hidden, hidden}));
    user_dwi = memory(desc({1, 1, H, 4, H}, tag::ldgoi), e, grads.back().data());
    dwl_out = dnnl::reorder(diff_wl, user_dwl);
    dwi_out = dnnl::reorder(diff_wi, user_dwi);
  }

  // zerograd's arrays into the primitives' layouts; the two biases summed.
  void weights_in(dnnl::stream& s) {
    fwd_wl.run(s, user_wl), fwd_wi.run(s, user_wi), bwd_wl.run(s, user_wl), bwd_wi.run(s, user_wi);
    float* b = ptr(bias);
    for (std::size_t i = 0; i < 4 * hidden; ++i) b[i] = b_ih[i] + b_hh[i];
  }
  void forward(dnnl::stream& s) {
    fwd.execute(s, {{DNNL_ARG_SRC_LAYER, src},
                    {DNNL_ARG_SRC_ITER, h0},
                    {DNNL_ARG_SRC_ITER_C, c0},
                    {DNNL_ARG_WEIGHTS_LAYER, fwd_wl.mem},
                    {DNNL_ARG_WEIGHTS_ITER, fwd_wi.mem},
                    {DNNL_ARG_BIAS, bias},
                    {DNNL_ARG_DST_LAYER, dst},
                    {DNNL_ARG_WORKSPACE, workspace}});
  }
  void backward(dnnl::stream& s) {
    for (memory* m : {&diff_wl, &diff_wi, &diff_bias}) std::memset(m->get_data_handle(), 0, m->get_desc().get_size());
    bwd.execute(s, {{DNNL_ARG_SRC_LAYER, src},
                    {DNNL_ARG_SRC_ITER, h0},
                    {DNNL_ARG_SRC_ITER_C, c0},
                    {DNNL_ARG_DIFF_SRC_ITER, diff_h0},
                    {DNNL_ARG_DIFF_SRC_ITER_C, diff_c0},
                    {DNNL_ARG_WEIGHTS_LAYER, bwd_wl.mem},
                    {DNNL_ARG_WEIGHTS_ITER, bwd_wi.mem},
                    {DNNL_ARG_BIAS, bias},
                    {DNNL_ARG_DST_LAYER, dst},
                    {DNNL_ARG_WORKSPACE, workspace},
                    {DNNL_ARG_DIFF_DST_LAYER, diff_dst},
                    {DNNL_ARG_DIFF_SRC_LAYER, diff_src},
                    {DNNL_ARG_DIFF_WEIGHTS_LAYER, diff_wl},
                    {DNNL_ARG_DIFF_WEIGHTS_ITER, diff_wi},
                    {DNNL_ARG_DIFF_BIAS, diff_bias}});
  }
  // The weight gradients in zerograd's layout (the bias gradient is the same
  // for both biases and already (4H) in gate order).
  void gradients_out(dnnl::stream& s) {
    dwl_out.execute(s, diff_wl, user_dwl);
    dwi_out.execute(s, diff_wi, user_dwi);
  }
};

double max_abs_diff(const float* a, const float* b, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}
double max_abs(const float* a, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(a[i])));
  return m;
}

// False, after printing the line, when the two sides disagree beyond float
// rounding.
bool run(const Sizes& z, std::size_t layers, int threads, int warmup, int repeats) {
  zg::set_num_threads(threads);
  omp_set_num_threads(threads);
  zg::manual_seed(1);
  nn::LSTM lstm(nn::RecurrentOptions(z.input, z.hidden, layers));
  auto params = lstm.named_parameters();
  const zg::Tensor<float> x = zg::randn<float>({z.steps, z.batch, z.input}).data();
  const zg::Tensor<float> gy = zg::randn<float>({z.steps, z.batch, z.hidden}).data();

  zg::Variable out, x_var;
  auto composed = [&] {
    lstm.zero_grad();
    x_var = zg::Variable(x);
    x_var.requires_grad_();
    out = lstm(x_var, {}).output;
    zg::BackwardOptions<float> o;
    o.seed = zg::Variable(gy);
    out.backward(o);
  };

  dnnl::engine e(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(e);
  std::vector<DnnlLayer> stack(layers);
  std::vector<zg::Tensor<float>> grads;
  grads.reserve(2 * layers);
  for (std::size_t l = 0; l < layers; ++l)
    stack[l].init(e, z, l ? z.hidden : z.input, params, grads, l, l ? &stack[l - 1].dst : nullptr);
  // Layer l's output gradient is what layer l + 1's backward writes.
  for (std::size_t l = 0; l + 1 < layers; ++l) stack[l].diff_dst = stack[l + 1].diff_src;
  std::memcpy(ptr(stack[0].src), x.data(), x.size() * sizeof(float));
  std::memcpy(ptr(stack.back().diff_dst), gy.data(), gy.size() * sizeof(float));
  auto fused = [&](bool reorders) {
    if (reorders)
      for (auto& L : stack) L.weights_in(s);
    for (auto& L : stack) L.forward(s);
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) it->backward(s);
    if (reorders)
      for (auto& L : stack) L.gradients_out(s);
    s.wait();
  };
  for (auto& L : stack) L.weights_in(s);

  // The two agree: outputs, the input's gradient and every weight's.
  composed();
  fused(true);
  const std::size_t ny = gy.size(), nx = x.size();
  const double d_out = max_abs_diff(ptr(stack.back().dst), out.data().data(), ny);
  const double d_gx = max_abs_diff(ptr(stack[0].diff_src), x_var.grad().data().data(), nx);
  double d_gw = 0, d_gb = 0, gw_scale = 0;
  for (std::size_t l = 0; l < layers; ++l) {
    const std::string n = "_l" + std::to_string(l);
    for (auto& [name, v] : params) {
      const float* g = v.grad().data().data();
      if (name == "weight_ih" + n) d_gw = std::max(d_gw, max_abs_diff(grads[2 * l].data(), g, v.data().size()));
      if (name == "weight_hh" + n) d_gw = std::max(d_gw, max_abs_diff(grads[2 * l + 1].data(), g, v.data().size()));
      if (name == "weight_ih" + n) gw_scale = std::max(gw_scale, max_abs(g, v.data().size()));
      if (name == "bias_ih" + n || name == "bias_hh" + n)
        d_gb = std::max(d_gb, max_abs_diff(ptr(stack[l].diff_bias), g, v.data().size()));
    }
  }

  std::vector<double> t_composed, t_fused, t_fused_reorders;
  for (int r = 0; r < warmup + repeats; ++r) {
    // Interleaved, so the machine's drift falls on all three alike.
    auto t0 = Clock::now();
    composed();
    const double a = zg::bench::since(t0);
    t0 = Clock::now();
    fused(false);
    const double b = zg::bench::since(t0);
    t0 = Clock::now();
    fused(true);
    const double c = zg::bench::since(t0);
    if (r < warmup) continue;
    t_composed.push_back(a * 1e3), t_fused.push_back(b * 1e3), t_fused_reorders.push_back(c * 1e3);
  }
  const double mc = zg::bench::median(t_composed), mf = zg::bench::median(t_fused),
               mr = zg::bench::median(t_fused_reorders);
  const char* isa = std::getenv("ONEDNN_MAX_CPU_ISA");
  const bool agree = d_out < 1e-5 && d_gx < 1e-5 && d_gw < 1e-5 * (1 + gw_scale) && d_gb < 1e-5 * (1 + gw_scale);
  std::printf(
      "{\"bench\": \"rnn_dnnl\", \"cell\": \"lstm\", \"layers\": %zu, \"threads\": %d, \"steps\": %zu, \"batch\": %zu, "
      "\"input\": %zu, \"hidden\": %zu, \"onednn_isa\": \"%s\", \"repeats\": %d, \"composed_ms\": %.2f, "
      "\"onednn_ms\": %.2f, \"onednn_with_reorders_ms\": %.2f, \"composed_over_onednn\": %.2f, "
      "\"composed_over_onednn_with_reorders\": %.2f, \"max_abs_diff_output\": %.2g, \"max_abs_diff_grad_input\": %.2g, "
      "\"max_abs_diff_grad_weights\": %.2g, \"max_abs_grad_weight_ih\": %.3g, \"max_abs_diff_grad_bias\": %.2g, "
      "\"agree\": %s}\n",
      layers, threads, z.steps, z.batch, z.input, z.hidden, isa ? isa : "default", repeats, mc, mf, mr, mc / mf,
      mc / mr, d_out, d_gx, d_gw, gw_scale, d_gb, agree ? "true" : "false");
  std::fflush(stdout);
  return agree;
}

}  // namespace

int main(int argc, char** argv) {
  cli::App app{"LSTM forward + backward: oneDNN's fused primitives against zerograd's nn::LSTM"};
  Sizes z;
  int threads = 0, layers = 0, warmup = 3, repeats = 20;
  app.add_option("--threads", threads, "zerograd and oneDNN threads; 0 runs 1 and 2, one JSON line each");
  app.add_option("--layers", layers, "LSTM layers; 0 runs 1 and 2");
  app.add_option("--steps", z.steps, "T (default 64)");
  app.add_option("--batch", z.batch, "B (default 32)");
  app.add_option("--input", z.input, "input size (default 128)");
  app.add_option("--hidden", z.hidden, "hidden size (default 256)");
  app.add_option("--warmup", warmup, "untimed repetitions first (default 3)");
  app.add_option("--repeats", repeats, "timed repetitions; the median is reported (default 20)");
  ZG_CLI_PARSE(app, argc, argv);
  bool agree = true;
  try {
    for (int l : layers > 0 ? std::vector<int>{layers} : std::vector<int>{1, 2})
      for (int t : zg::bench::thread_settings(threads)) agree = run(z, std::size_t(l), t, warmup, repeats) && agree;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rnn_dnnl: %s\n", e.what());
    return 1;
  }
  return agree ? 0 : 1;
}
