// max_pool2d and avg_pool2d. Each is linear in x (max pooling at its fixed
// arg-max positions), so its backward is a scatter whose backward gathers
// again: gradients of any order work. The loops are kernels (kernels/pool.cpp).
#include "ops/pool.hpp"

#include <limits>

#include <xtensor/xbuilder.hpp>

#include "zerograd/apply.hpp"
#include "zerograd/nn/conv.hpp"
#include "zerograd/op_registry.hpp"

namespace zg::nn::functional {

using namespace kernels;

namespace {

template <class T>
struct MaxPool2d final : Function<T> {
  MaxPool2d(int kernel, int stride, int pad) : kernel(kernel), stride(stride), pad(pad) {}
  int kernel, stride, pad;
  std::shared_ptr<const ArgMax> argmax;  // where each output took its value from
  std::string name() const override { return "MaxPool2d"; }
  OpFields fields() const override { return {{"kernel", field_of(kernel)}, {"stride", field_of(stride)}, {"pad", field_of(pad)}}; }
  std::string attributes() const override { return pool_attributes(kernel, stride, pad); }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = pool_geometry("MaxPool2d", zg::shape_of(x[0]), kernel, stride, pad);
    if (g.plane() > std::numeric_limits<std::uint32_t>::max())
      throw ShapeError("MaxPool2d: input planes of " + hw(g.H, g.W) + " have more than 2^32 elements");
    Tensor<T> y = Tensor<T>::from_shape({g.N, g.C, g.OH, g.OW});
    auto at = std::make_shared<ArgMax>(zg::shape_of(x[0]), g.out_plane());
    kernels::max_pool2d(x[0].data(), g, y.data(), *at);
    argmax = std::move(at);
    return y;
  }
  // dx = gy scattered to the arg-max of each window
  Variables<T> backward(const Variables<T>& gy) override {
    return {max_pool2d_grad(gy[0], argmax, kernel, stride, pad)};
  }
  std::string rule(std::size_t) const override {
    return "upstream to the position that was the maximum of each window";
  }
  void release() override {
    Function<T>::release();
    argmax.reset();
  }
};
ZG_REGISTER_OP(MaxPool2d);

// max_pool2d linearised at its input: x read at a saved arg-max instead of
// at the maxima. MaxPool2dGrad's backward; to a graph, a MaxPool2d.
template <class T>
struct MaxPool2dAt final : Function<T> {
  MaxPool2dAt(int kernel, int stride, int pad, std::shared_ptr<const ArgMax> argmax)
      : kernel(kernel), stride(stride), pad(pad), argmax(std::move(argmax)) {}
  int kernel, stride, pad;
  std::shared_ptr<const ArgMax> argmax;
  std::string name() const override { return "MaxPool2d"; }
  std::string attributes() const override { return pool_attributes(kernel, stride, pad) + ", at saved arg-max"; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = pool_geometry("MaxPool2d", zg::shape_of(x[0]), kernel, stride, pad);
    if (zg::shape_of(x[0]) != argmax->x_shape)
      throw ShapeError("MaxPool2d: input " + shape_str(x[0].shape()) + " is not the " + shape_str(argmax->x_shape) +
                       " the arg-max was saved for");
    Tensor<T> y = Tensor<T>::from_shape({g.N, g.C, g.OH, g.OW});
    gather(x[0].data(), *argmax, y.data());
    return y;
  }
  // dx = gy scattered to the same positions
  Variables<T> backward(const Variables<T>& gy) override {
    return {max_pool2d_grad(gy[0], argmax, kernel, stride, pad)};
  }
  std::string rule(std::size_t) const override {
    return "upstream to the position that was the maximum of each window";
  }
  void release() override {
    Function<T>::release();
    argmax.reset();
  }
};

template <class T>
struct MaxPool2dGrad final : Function<T> {
  MaxPool2dGrad(int kernel, int stride, int pad, std::shared_ptr<const ArgMax> argmax)
      : kernel(kernel), stride(stride), pad(pad), argmax(std::move(argmax)) {}
  int kernel, stride, pad;
  std::shared_ptr<const ArgMax> argmax;
  std::string name() const override { return "MaxPool2dGrad"; }
  std::string attributes() const override { return pool_attributes(kernel, stride, pad); }
  Outputs<T> forward(const TensorList<T>& x) override {
    if (x[0].size() != argmax->size)
      throw ShapeError("MaxPool2dGrad: gradient " + shape_str(x[0].shape()) + " does not match the pooling of " +
                       shape_str(argmax->x_shape));
    Tensor<T> gx = Tensor<T>::from_shape(argmax->x_shape);
    scatter(x[0].data(), *argmax, gx.data());
    return gx;
  }
  // The scatter's adjoint is the gather at the same positions.
  Variables<T> backward(const Variables<T>& ggx) override {
    return {apply1<MaxPool2dAt<T>>({ggx[0]}, kernel, stride, pad, argmax)};
  }
  std::string rule(std::size_t) const override {
    return "upstream read at the position that was the maximum of each window (a gather)";
  }
  void release() override {
    Function<T>::release();
    argmax.reset();
  }
};
ZG_REGISTER_OP(MaxPool2dGrad);

template <class T>
struct AvgPool2dGrad;

template <class T>
struct AvgPool2d final : Function<T> {
  AvgPool2d(int kernel, int stride, int pad) : kernel(kernel), stride(stride), pad(pad) {}
  int kernel, stride, pad;
  std::string name() const override { return "AvgPool2d"; }
  OpFields fields() const override { return {{"kernel", field_of(kernel)}, {"stride", field_of(stride)}, {"pad", field_of(pad)}}; }
  std::string attributes() const override { return pool_attributes(kernel, stride, pad); }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = pool_geometry("AvgPool2d", zg::shape_of(x[0]), kernel, stride, pad);
    Tensor<T> y = xt::zeros<T>({g.N, g.C, g.OH, g.OW});
    window_sums(x[0].data(), g, y.data());
    y *= T(1) / T(g.KH * g.KW);  // padding counts as zeros
    return y;
  }
  bool saves_inputs() const override { return false; }  // backward needs only x's shape
  // dx = gy / K^2 spread over each window
  Variables<T> backward(const Variables<T>& gy) override {
    return {apply1<AvgPool2dGrad<T>>({gy[0]}, kernel, stride, pad, this->input_shape(0))};
  }
  std::string rule(std::size_t) const override { return "upstream spread evenly over each window"; }
};
ZG_REGISTER_OP(AvgPool2d);

template <class T>
struct AvgPool2dGrad final : Function<T> {
  AvgPool2dGrad(int kernel, int stride, int pad, Shape x_shape)
      : kernel(kernel), stride(stride), pad(pad), x_shape(std::move(x_shape)) {}
  int kernel, stride, pad;
  Shape x_shape;
  std::string name() const override { return "AvgPool2dGrad"; }
  std::string attributes() const override { return pool_attributes(kernel, stride, pad); }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Geometry g = pool_geometry("AvgPool2dGrad", x_shape, kernel, stride, pad);
    const Shape sg = zg::shape_of(x[0]);
    if (sg != Shape{g.N, g.C, g.OH, g.OW})
      throw ShapeError("AvgPool2dGrad: gradient " + shape_str(sg) + " does not match the pooling of " +
                       shape_str(x_shape) + " to " + shape_str(Shape{g.N, g.C, g.OH, g.OW}));
    Tensor<T> gx = xt::zeros<T>(x_shape);
    spread(x[0].data(), g, T(1) / T(g.KH * g.KW), gx.data());
    return gx;
  }
  bool saves_inputs() const override { return false; }
  // The spread's adjoint is the average again.
  Variables<T> backward(const Variables<T>& ggx) override { return {avg_pool2d(ggx[0], kernel, stride, pad)}; }
  std::string rule(std::size_t) const override { return "upstream averaged over each window (an average pooling)"; }
};
ZG_REGISTER_OP(AvgPool2dGrad);

}  // namespace

template <class T>
Var<T> max_pool2d_grad(const Var<T>& gy, std::shared_ptr<const ArgMax> argmax, int kernel, int stride, int pad) {
  return apply1<MaxPool2dGrad<T>>({gy}, kernel, stride, pad, std::move(argmax));
}

template <class T>
Var<T> max_pool2d(const Var<T>& x, int kernel, int stride, int pad) {
  return apply1<MaxPool2d<T>>({x}, kernel, stride, pad);
}
template <class T>
Var<T> max_pool2d(const Var<T>& x, int kernel) {
  return max_pool2d(x, kernel, kernel, 0);
}

template <class T>
Var<T> avg_pool2d(const Var<T>& x, int kernel, int stride, int pad) {
  return apply1<AvgPool2d<T>>({x}, kernel, stride, pad);
}
template <class T>
Var<T> avg_pool2d(const Var<T>& x, int kernel) {
  return avg_pool2d(x, kernel, kernel, 0);
}

#define ZG_INSTANTIATE(T)                                                                      \
  template Var<T> max_pool2d_grad(const Var<T>&, std::shared_ptr<const ArgMax>, int, int, int); \
  template Var<T> max_pool2d(const Var<T>&, int, int, int);                                    \
  template Var<T> max_pool2d(const Var<T>&, int);                                              \
  template Var<T> avg_pool2d(const Var<T>&, int, int, int);                                    \
  template Var<T> avg_pool2d(const Var<T>&, int);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::functional
