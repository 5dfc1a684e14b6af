// Reductions over axes, with keepdims.
#include <xtensor/xreducer.hpp>
#include <xtensor/xmath.hpp>

#include "ops_common.hpp"

namespace zg {
namespace {

template <class T>
struct Sum final : Function<T> {
  Sum(Axes axes, bool keepdims) : axes(std::move(axes)), keepdims(keepdims) {}
  Axes axes;
  bool keepdims;
  std::string name() const override { return "Sum"; }
  std::string attributes() const override {
    std::string s = "axes=(";
    for (std::size_t i = 0; i < axes.size(); ++i) s += (i ? "," : "") + std::to_string(axes[i]);
    return s + (keepdims ? "), keepdims" : ")");
  }
  Outputs<T> forward(const TensorList<T>& x) override {
    const auto ax = detail::normalize_axes(axes, x[0].dimension(), "Sum");
    Tensor<T> y = xt::sum(x[0], ax, xt::evaluation_strategy::immediate);
    if (keepdims) y.reshape(detail::keepdims_shape(detail::shape_of(x[0]), ax));
    return y;
  }
  // d sum(x) = broadcast of dy back over the summed axes
  Variables<T> backward(const Variables<T>& gy) override {
    const Shape in = this->input(0).shape();
    const auto ax = detail::normalize_axes(axes, in.size(), "Sum");
    return {zg::broadcast_to(zg::reshape(gy[0], detail::keepdims_shape(in, ax)), in)};
  }
};

}  // namespace

template <class T>
Var<T> sum(const Var<T>& x, const Axes& axes, bool keepdims) {
  return apply1<Sum<T>>({x}, axes, keepdims);
}

template Var<float> sum(const Var<float>&, const Axes&, bool);
template Var<double> sum(const Var<double>&, const Axes&, bool);

}  // namespace zg
