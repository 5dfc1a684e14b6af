#pragma once
// What Conv2d shares with its fused ops (conv_fused.cpp): options, the shape
// check, and the convolution's backward, which they run on their upstream
// gradient once their own part of the chain rule is applied.
#include <cstddef>
#include <cstdint>
#include <string>

#include "zerograd/apply.hpp"
#include "zerograd/nn/conv.hpp"

#include "kernels/geometry.hpp"

namespace zg::nn::functional {

struct ConvOptions {
  int stride = 1, pad = 0;
  bool has_bias = false;
  // In the graph (detail::records), so backward will run: only then do the
  // fused ops keep the bytes their backward reads.
  bool recorded = false;
};

// Op F on (x, W), or (x, W, b) when b is defined.
template <class F, class T>
Var<T> apply_conv(const Var<T>& x, const Var<T>& W, const Var<T>& b, int stride, int pad) {
  ConvOptions o;
  o.stride = stride;
  o.pad = pad;
  o.has_bias = b.defined();
  const detail::InputRef<T> in[] = {x, W, b};
  o.recorded = detail::records(in, o.has_bias ? 3 : 2);
  return o.has_bias ? apply1<F>({x, W, b}, o) : apply1<F>({x, W}, o);
}

std::string conv_attributes(const ConvOptions& o);
OpFields conv_fields(const ConvOptions& o);  // Note [Op fields]

// Checks x (N, C, H, W), W (FN, C, KH, KW) and b (FN) as Conv2d's inputs.
template <class T>
kernels::Geometry conv2d_geometry(const TensorList<T>& x, const ConvOptions& o);

// What gy is to a convolution's backward: the output's gradient; that of
// the output before ReLU, 0 where output_positive is 0; or that of the 2x2
// max pooled output, to spread back to the windows' maxima window_argmax
// gives, in oneDNN's blocks of `block` channels.
struct Upstream {
  const std::uint8_t* output_positive = nullptr;
  const std::uint8_t* window_argmax = nullptr;
  std::size_t block = 0;
  static Upstream switched(const std::uint8_t* output_positive) { return {output_positive, nullptr, 0}; }
  static Upstream pooled(const std::uint8_t* window_argmax, std::size_t block) { return {nullptr, window_argmax, block}; }
};

// Outside create_graph, f's gradients are plain arrays, which oneDNN makes
// in one pass over gy (Note [One pass over gy]). False, with g untouched,
// where it cannot.
template <class T>
bool onednn_backward(const Function<T>& f, const Var<T>& gy, const ConvOptions& o, const Upstream& up,
                     Variables<T>& g);

// f's gradients for y = conv2d(x, W) + b and upstream gy.
template <class T>
Variables<T> conv2d_backward(const Function<T>& f, const Var<T>& gy, const ConvOptions& o);

}  // namespace zg::nn::functional
