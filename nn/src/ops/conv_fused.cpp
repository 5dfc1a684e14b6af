// conv2d_relu and conv2d_relu_pool: a convolution fused with what follows
// it in the book's networks, each a Function of its own over the
// convolution's kernels, with the values and gradients of the ops apart.
//
// Note [Conv2d with ReLU]: conv2d_relu, and Sequential for a Conv2d followed
// by a ReLU, run relu(conv2d(x, W, b)) as one Function, "Conv2dReLU". On
// oneDNN the ReLU is applied as the output is copied out of the kernel's
// blocked layout and its backward as gy is copied in (Note [ReLU in the
// reorders] in kernels/blocked_reorders.cpp); on im2col + GEMM as the bias is
// added. So the pre-activation array is never written, read back and kept
// for ReLU's backward, and neither ReLU nor ReLUGrad makes its own pass over
// memory. The backward's switch (output > 0, the same as pre-activation >
// 0) is kept as one byte per output, made only when the op is recorded.
// The output itself cannot serve: the next op's backward may free it before
// this one runs. DeepConvNet at batch 100, one thread, pinned to one core,
// 8 alternating runs: 3% faster (median paired ratio 0.97), and one array
// per layer less in memory.
//
// Note [Conv2d with ReLU and pooling]: max_pool2d(relu(conv2d(..)), 2),
// the book's conv - relu - pool block, as one op "Conv2dReLUMaxPool". The
// full-size output is never written out or kept: on oneDNN it is pooled in
// the kernel's blocked layout (Note [Pooling in the reorders] in
// kernels/blocked_reorders.cpp), on im2col sample by sample while in cache. The
// backward needs one byte per pooled output: the window position (0-3) of
// its maximum, which is where the separate pooling sends gy, or 4 where that
// maximum is not > 0, which is exactly where the separate ReLU's switch
// would stop it. Values and gradients are those of the three ops, ties,
// NaN and odd sizes (a last row or column in no window) included. Batch
// 100, one thread pinned to one core, 6 alternating runs against the ops
// apart: DeepConvNet median paired ratio 0.92, SimpleConvNet 0.82 (6 of
// 6 faster each); bench/conv_bench's conv_relu_pool lines give each layer.
#include <algorithm>
#include <memory>

#include <xtensor/xbuilder.hpp>

#include "zerograd/op_registry.hpp"
#include "zerograd/ops.hpp"
#include "zerograd/parallel.hpp"

#include "kernels/conv_dispatch.hpp"
#include "kernels/pool.hpp"
#include "ops/conv.hpp"
#include "ops/pool.hpp"

namespace zg::nn::functional {
namespace {

using namespace kernels;

// gy where the constant 0/1 array on is 1, 0 elsewhere, differentiable in
// gy: a where(), a select as ReLUGrad (a product would turn an infinite gy
// into NaN).
template <class T>
Var<T> selected(Tensor<T> on, const Var<T>& gy) {
  return zg::where(Var<T>(std::move(on)), gy, Var<T>(Tensor<T>(xt::zeros<T>({std::size_t(1)}))));
}

// gy where the output was positive, 0 elsewhere: ReLU's backward. Under
// create_graph selected() by a constant 0/1 array, differentiable again.
template <class T>
Var<T> relu_backward(const Var<T>& gy, const std::uint8_t* on) {
  if (is_grad_enabled()) {
    Tensor<T> m = Tensor<T>::from_shape(gy.shape());
    for (std::size_t i = 0; i < m.size(); ++i) m.data()[i] = on[i] ? T(1) : T(0);
    return selected(std::move(m), gy);
  }
  Tensor<T> g = Tensor<T>::from_shape(gy.shape());
  const T* in = gy.data().data();
  T* out = g.data();
  // Both loads unconditional, so the select compiles to a vector blend.
  detail::parallel_for(g.size(), detail::kElementGrain, [in, on, out](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      const T v = in[i];
      out[i] = on[i] ? v : T(0);
    }
  });
  return Var<T>(std::move(g));
}

// The pooled gy spread back over the windows of full (N, FN, OH, OW), to
// each maximum whose byte is not 4, 0 elsewhere: the pooling's and ReLU's
// backward. Under create_graph a MaxPool2dGrad of gy selected by a constant
// 0/1 array.
template <class T>
Var<T> unpooled(const Var<T>& gy, const std::uint8_t* at, std::size_t block, const Shape& full) {
  const std::size_t planes = full[0] * full[1];
  std::unique_ptr<std::uint8_t[]> plain;
  if (block) {
    plain = unblocked(at, full[0], full[1], (full[2] / 2) * (full[3] / 2), block);
    at = plain.get();
  }
  if (is_grad_enabled()) {
    Tensor<T> on = Tensor<T>::from_shape(gy.shape());
    auto arg = argmax_of_bytes(at, full, on.data());
    return max_pool2d_grad(selected(std::move(on), gy), std::move(arg), 2, 2, 0);
  }
  Tensor<T> gx = Tensor<T>::from_shape(full);
  unpool_2x2(gy.data().data(), at, planes, full[2], full[3], gx.data());
  return Var<T>(std::move(gx));
}

template <class T>
struct Conv2dReLU final : Function<T> {
  explicit Conv2dReLU(const ConvOptions& o) : o(o) {}
  ConvOptions o;
  std::unique_ptr<std::uint8_t[]> output_positive;  // 1 where the output is > 0; made only when recorded
  std::string name() const override { return "Conv2dReLU"; }
  std::string attributes() const override { return conv_attributes(o); }
  OpFields fields() const override { return conv_fields(o); }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = conv2d_geometry(x, o);
    const std::size_t FN = x[1].shape()[0];
    Tensor<T> y = Tensor<T>::from_shape({g.N, FN, g.OH, g.OW});
    if (o.recorded) output_positive.reset(new std::uint8_t[y.size()]);
    conv2d_forward(x[0].data(), x[1].data(), o.has_bias ? x[2].data() : nullptr, g, FN, Activation::ReLU, y.data(),
                   output_positive.get());
    return y;
  }
  // y = relu(conv2d(x, W) + b): conv2d's backward of gy where y > 0
  Variables<T> backward(const Variables<T>& gy) override {
    Variables<T> g(this->num_inputs());
    // The switch applied as oneDNN copies gy in.
    if (onednn_backward(*this, gy[0], o, Upstream::switched(output_positive.get()), g)) return g;
    return conv2d_backward(*this, relu_backward(gy[0], output_positive.get()), o);
  }
  std::string rule(std::size_t i) const override {
    static const char* const words[] = {
        "upstream where the output is > 0 (0 elsewhere), convolved back with the kernels",
        "input patches (im2col) times upstream where the output is > 0",
        "upstream where the output is > 0, summed over batch and positions"};
    return words[std::min<std::size_t>(i, 2)];
  }
  void release() override {
    Function<T>::release();
    output_positive.reset();
  }
};
ZG_REGISTER_OP(Conv2dReLU);

template <class T>
struct Conv2dReLUMaxPool final : Function<T> {
  explicit Conv2dReLUMaxPool(const ConvOptions& o) : o(o) {}
  ConvOptions o;
  // Per pooled output, the window position (0-3, row-major) of its maximum,
  // or 4 where that is not > 0; made only when recorded. In oneDNN's blocked
  // order by `block` channels if that is not 0.
  std::unique_ptr<std::uint8_t[]> window_argmax;
  std::size_t block = 0;
  Shape unpooled_shape;  // the convolution's output (N, FN, OH, OW)
  std::string name() const override { return "Conv2dReLUMaxPool"; }
  OpFields fields() const override { return conv_fields(o); }  // then a 2x2 max pool of stride 2
  std::string attributes() const override {
    return conv_attributes(o) + ", max pool 2x2" +
           (block ? " (pooled in oneDNN's " + std::to_string(block) + "-channel blocks)" : "");
  }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = conv2d_geometry(x, o);
    const std::size_t FN = x[1].shape()[0];
    unpooled_shape = {g.N, FN, g.OH, g.OW};
    const Geometry p = pool_geometry("MaxPool2d", unpooled_shape, 2, 2, 0);
    Tensor<T> y = Tensor<T>::from_shape({g.N, FN, p.OH, p.OW});
    if (o.recorded) window_argmax.reset(new std::uint8_t[y.size()]);
    block = conv2d_relu_max_pool_forward(x[0].data(), x[1].data(), o.has_bias ? x[2].data() : nullptr, g, FN,
                                         y.data(), window_argmax.get());
    return y;
  }
  // y = max_pool2d(relu(conv2d(x, W) + b), 2): conv2d's backward of gy sent
  // to each window's maximum where that is > 0
  Variables<T> backward(const Variables<T>& gy) override {
    Variables<T> g(this->num_inputs());
    // The spread applied as oneDNN copies gy in.
    if (onednn_backward(*this, gy[0], o, Upstream::pooled(window_argmax.get(), block), g)) return g;
    return conv2d_backward(*this, unpooled(gy[0], window_argmax.get(), block, unpooled_shape), o);
  }
  std::string rule(std::size_t i) const override {
    static const char* const words[] = {
        "upstream to each window's maximum where it is > 0 (0 elsewhere), convolved back with the kernels",
        "input patches (im2col) times upstream at each window's maximum where it is > 0",
        "upstream at each window's maximum where it is > 0, summed over batch and positions"};
    return words[std::min<std::size_t>(i, 2)];
  }
  void release() override {
    Function<T>::release();
    window_argmax.reset();
  }
};
ZG_REGISTER_OP(Conv2dReLUMaxPool);

}  // namespace

template <class T>
Var<T> conv2d_relu(const Var<T>& x, const Var<T>& W, const Var<T>& b, int stride, int pad) {
  return apply_conv<Conv2dReLU<T>>(x, W, b, stride, pad);
}

template <class T>
Var<T> conv2d_relu_pool(const Var<T>& x, const Var<T>& W, const Var<T>& b, int stride, int pad) {
  return apply_conv<Conv2dReLUMaxPool<T>>(x, W, b, stride, pad);
}

template Var<float> conv2d_relu(const Var<float>&, const Var<float>&, const Var<float>&, int, int);
template Var<double> conv2d_relu(const Var<double>&, const Var<double>&, const Var<double>&, int, int);
template Var<float> conv2d_relu_pool(const Var<float>&, const Var<float>&, const Var<float>&, int, int);
template Var<double> conv2d_relu_pool(const Var<double>&, const Var<double>&, const Var<double>&, int, int);

}  // namespace zg::nn::functional
