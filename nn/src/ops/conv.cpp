// conv2d, conv_transpose2d and conv2d_grad_weight: each backward is another
// op of the three (zerograd/nn/conv.hpp). The loops are kernels (Note [The
// column matrix], Note [oneDNN convolutions]).
#include "ops/conv.hpp"

#include <algorithm>
#include <type_traits>

#include <xtensor/xbuilder.hpp>

#include "zerograd/op_registry.hpp"
#include "zerograd/ops.hpp"

#include "kernels/conv_dispatch.hpp"

namespace zg::nn::functional {

using namespace kernels;

std::string conv_attributes(const ConvOptions& o) {
  return kernels::conv_attributes(o.stride, o.pad) + (o.has_bias ? "" : ", no bias");
}

OpFields conv_fields(const ConvOptions& o) { return {{"stride", field_of(o.stride)}, {"pad", field_of(o.pad)}}; }

template <class T>
Geometry conv2d_geometry(const TensorList<T>& x, const ConvOptions& o) {
  const Shape sx = zg::shape_of(x[0]), sw = zg::shape_of(x[1]);
  require_4d("Conv2d", sx, "input", "(N, C, H, W)");
  require_4d("Conv2d", sw, "weight", "(FN, C, KH, KW)");
  if (sx[1] != sw[1])
    throw ShapeError("Conv2d: input has " + std::to_string(sx[1]) + " channels, weight " + shape_str(sw) +
                     " expects " + std::to_string(sw[1]));
  if (o.has_bias && (x[2].dimension() != 1 || x[2].shape()[0] != sw[0]))
    throw ShapeError("Conv2d: bias " + shape_str(zg::shape_of(x[2])) + " does not match weight " + shape_str(sw) +
                     ": expected (" + std::to_string(sw[0]) + ")");
  return geometry("Conv2d", sx, sw[2], sw[3], o.stride, o.pad);
}

template <class T>
bool onednn_backward(const Function<T>& f, const Var<T>& gy, const ConvOptions& o, const Upstream& up,
                     Variables<T>& g) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    if (is_grad_enabled() || !f.needs_input_grad(1) || (up.window_argmax && !up.block)) return false;
    const Tensor<T>& x = f.input(0).data();
    const Tensor<T>& W = f.input(1).data();
    const onednn::ConvDims dims =
        dims_of(geometry("Conv2d", zg::shape_of(x), W.shape()[2], W.shape()[3], o.stride, o.pad), W.shape()[0]);
    if (!onednn::taken(dims)) return false;  // before allocating: every im2col layer comes here
    const bool want_x = f.needs_input_grad(0), want_b = o.has_bias && f.needs_input_grad(2);
    Tensor<T> gx = want_x ? Tensor<T>::from_shape(x.shape()) : Tensor<T>();
    Tensor<T> gW = Tensor<T>::from_shape(W.shape());
    Tensor<T> gb = want_b ? Tensor<T>::from_shape({W.shape()[0]}) : Tensor<T>();
    float* const gxp = want_x ? gx.data() : nullptr;
    float* const gbp = want_b ? gb.data() : nullptr;
    const float* gyp = gy.data().data();
    const bool done = up.window_argmax ? onednn::backward_pooled(dims, x.data(), gyp, up.window_argmax, up.block,
                                                                 W.data(), gxp, gW.data(), gbp)
                                       : onednn::backward(dims, x.data(), gyp, W.data(), gxp, gW.data(), gbp,
                                                          up.output_positive);
    if (!done) return false;
    if (want_x) g[0] = Var<T>(std::move(gx));
    g[1] = Var<T>(std::move(gW));
    if (want_b) g[2] = Var<T>(std::move(gb));
    return true;
  }
}

// dx = conv_transpose2d(gy, W), dW = conv2d_grad_weight(x, gy), db = sum of gy over (n, oh, ow)
template <class T>
Variables<T> conv2d_backward(const Function<T>& f, const Var<T>& gy, const ConvOptions& o) {
  const Var<T>& x = f.input(0);
  const Var<T>& W = f.input(1);
  Variables<T> g(f.num_inputs());
  if (onednn_backward(f, gy, o, Upstream{}, g)) return g;
  if (f.needs_input_grad(0)) g[0] = conv_transpose2d(gy, W, o.stride, o.pad, {x.shape()[2], x.shape()[3]});
  if (f.needs_input_grad(1)) g[1] = conv2d_grad_weight(x, gy, {W.shape()[2], W.shape()[3]}, o.stride, o.pad);
  if (o.has_bias && f.needs_input_grad(2)) g[2] = zg::sum(gy, {0, 2, 3});
  return g;
}

namespace {

template <class T>
struct Conv2d final : Function<T> {
  explicit Conv2d(const ConvOptions& o) : o(o) {}
  ConvOptions o;
  std::string name() const override { return "Conv2d"; }
  std::string attributes() const override { return conv_attributes(o); }
  OpFields fields() const override { return conv_fields(o); }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = conv2d_geometry(x, o);
    const std::size_t FN = x[1].shape()[0];
    Tensor<T> y = Tensor<T>::from_shape({g.N, FN, g.OH, g.OW});
    conv2d_forward(x[0].data(), x[1].data(), o.has_bias ? x[2].data() : nullptr, g, FN, Activation::None, y.data());
    return y;
  }
  // y = x * W + b: dx = conv_transpose2d(gy, W), dW = conv2d_grad_weight(x, gy), db = sum of gy
  Variables<T> backward(const Variables<T>& gy) override { return conv2d_backward(*this, gy[0], o); }
  std::string rule(std::size_t i) const override {
    static const char* const words[] = {
        "the upstream gradient convolved back with the kernels (a transposed convolution)",
        "input patches (im2col) times the upstream gradient", "the upstream gradient summed over batch and positions"};
    return words[std::min<std::size_t>(i, 2)];
  }
};
ZG_REGISTER_OP(Conv2d);

// Checks x (N, FN, OH, OW) and W (FN, C, KH, KW): the convolution whose
// adjoint this is, onto output_size or the smallest size that fits.
Geometry conv_transpose2d_geometry(const Shape& sx, const Shape& sw, int stride, int pad, const Shape& output_size) {
  const std::string op = "ConvTranspose2d";
  require_4d(op, sx, "input", "(N, FN, OH, OW)");
  require_4d(op, sw, "weight", "(FN, C, KH, KW)");
  check_stride_pad(op, stride, pad);
  if (sx[1] != sw[0])
    throw ShapeError(op + ": input has " + std::to_string(sx[1]) + " channels, weight " + shape_str(sw) +
                     " expects " + std::to_string(sw[0]));
  if (!output_size.empty() && output_size.size() != 2)
    throw ShapeError(op + ": output_size must be (H, W) or empty, got " + shape_str(output_size));
  Shape out = output_size;
  if (out.empty())
    for (std::size_t axis : {2, 3}) {
      const Index size = (Index(sx[axis]) - 1) * stride + Index(sw[axis]) - 2 * Index(pad);
      if (sx[axis] == 0 || size < 1)
        throw ShapeError(op + ": input " + shape_str(sx) + " with weight " + shape_str(sw) + ", " +
                         kernels::conv_attributes(stride, pad) + " has no output size");
      out.push_back(static_cast<std::size_t>(size));
    }
  const Geometry g = geometry(op, {sx[0], sw[1], out[0], out[1]}, sw[2], sw[3], stride, pad);
  if (g.OH != sx[2] || g.OW != sx[3])
    throw ShapeError(op + ": output size " + hw(out[0], out[1]) + " convolves to " + hw(g.OH, g.OW) +
                     ", not to the input's " + hw(sx[2], sx[3]) + " (kernel " + hw(sw[2], sw[3]) + ", " +
                     kernels::conv_attributes(stride, pad) + ")");
  return g;
}

template <class T>
struct ConvTranspose2d final : Function<T> {
  ConvTranspose2d(int stride, int pad, Shape output_size)
      : stride(stride), pad(pad), output_size(std::move(output_size)) {}
  int stride, pad;
  Shape output_size;  // (H, W); empty: the smallest that fits
  std::string name() const override { return "ConvTranspose2d"; }
  std::string attributes() const override { return kernels::conv_attributes(stride, pad); }
  OpFields fields() const override { return {{"stride", field_of(stride)}, {"pad", field_of(pad)}, {"output_size", field_of(output_size)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = conv_transpose2d_geometry(zg::shape_of(x[0]), zg::shape_of(x[1]), stride, pad, output_size);
    Tensor<T> y = Tensor<T>::from_shape({g.N, g.C, g.H, g.W});
    conv_transpose2d_forward(x[0].data(), x[1].data(), g, x[1].shape()[0], y.data());
    return y;
  }
  // Bilinear in (x, W): dx = conv2d(gy, W), dW = conv2d_grad_weight(gy, x)
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    const Var<T>& W = this->input(1);
    Var<T> gx, gW;
    if (this->needs_input_grad(0)) gx = conv2d(gy[0], W, Var<T>(), stride, pad);
    if (this->needs_input_grad(1)) gW = conv2d_grad_weight(gy[0], x, {W.shape()[2], W.shape()[3]}, stride, pad);
    return {gx, gW};
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "the upstream gradient convolved with the kernels (conv2d)"
                  : "upstream patches (im2col) times the input: conv2d's weight gradient with the roles swapped";
  }
};
ZG_REGISTER_OP(ConvTranspose2d);

// Checks x (N, C, H, W) and gy (N, FN, OH, OW): gy must be the size of x's
// convolution with a kernel_size kernel.
Geometry grad_weight_geometry(const Shape& sx, const Shape& sg, const Shape& kernel_size, int stride, int pad) {
  const Geometry g = geometry("Conv2dGradW", sx, kernel_size[0], kernel_size[1], stride, pad);
  require_4d("Conv2dGradW", sg, "gradient", "(N, FN, OH, OW)");
  if (sg[0] != g.N || sg[2] != g.OH || sg[3] != g.OW)
    throw ShapeError("Conv2dGradW: gradient " + shape_str(sg) + " does not match input " + shape_str(sx) +
                     " convolved to " + hw(g.OH, g.OW) + " (kernel " + hw(g.KH, g.KW) + ", " +
                     kernels::conv_attributes(stride, pad) + ")");
  return g;
}

template <class T>
struct Conv2dGradW final : Function<T> {
  Conv2dGradW(Shape kernel_size, int stride, int pad)
      : kernel_size(std::move(kernel_size)), stride(stride), pad(pad) {}
  Shape kernel_size;  // (KH, KW)
  int stride, pad;
  std::string name() const override { return "Conv2dGradW"; }
  std::string attributes() const override {
    return "kernel=" + hw(kernel_size[0], kernel_size[1]) + ", " + kernels::conv_attributes(stride, pad);
  }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = grad_weight_geometry(zg::shape_of(x[0]), zg::shape_of(x[1]), kernel_size, stride, pad);
    Tensor<T> gW = xt::zeros<T>({x[1].shape()[1], g.C, g.KH, g.KW});
    conv2d_grad_weight_forward(x[0].data(), x[1].data(), g, x[1].shape()[1], gW.data());
    return gW;
  }
  // Bilinear in (x, gy): dx = conv_transpose2d(gy, G), d gy = conv2d(x, G) for upstream G
  Variables<T> backward(const Variables<T>& gG) override {
    const Var<T>& x = this->input(0);
    const Var<T>& gy = this->input(1);
    Var<T> gx, ggy;
    if (this->needs_input_grad(0)) gx = conv_transpose2d(gy, gG[0], stride, pad, {x.shape()[2], x.shape()[3]});
    if (this->needs_input_grad(1)) ggy = conv2d(x, gG[0], Var<T>(), stride, pad);
    return {gx, ggy};
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "the second input convolved back with the upstream gradient as kernels (a transposed convolution)"
                  : "the first input convolved with the upstream gradient as kernels (conv2d)";
  }
};
ZG_REGISTER_OP(Conv2dGradW);

}  // namespace

template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& W, const Var<T>& b, int stride, int pad) {
  return apply_conv<Conv2d<T>>(x, W, b, stride, pad);
}

template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& W, int stride, int pad, const Shape& output_size) {
  return apply1<ConvTranspose2d<T>>({x, W}, stride, pad, output_size);
}

template <class T>
Var<T> conv2d_grad_weight(const Var<T>& x, const Var<T>& gy, const Shape& kernel_size, int stride, int pad) {
  if (kernel_size.size() != 2)
    throw ShapeError("Conv2dGradW: kernel_size must be (KH, KW), got " + shape_str(kernel_size));
  return apply1<Conv2dGradW<T>>({x, gy}, kernel_size, stride, pad);
}

#define ZG_INSTANTIATE(T)                                                                                   \
  template Geometry conv2d_geometry(const TensorList<T>&, const ConvOptions&);                             \
  template bool onednn_backward(const Function<T>&, const Var<T>&, const ConvOptions&, const Upstream&,    \
                                Variables<T>&);                                                            \
  template Variables<T> conv2d_backward(const Function<T>&, const Var<T>&, const ConvOptions&);            \
  template Var<T> conv2d(const Var<T>&, const Var<T>&, const Var<T>&, int, int);                           \
  template Var<T> conv_transpose2d(const Var<T>&, const Var<T>&, int, int, const Shape&);                  \
  template Var<T> conv2d_grad_weight(const Var<T>&, const Var<T>&, const Shape&, int, int);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::functional
