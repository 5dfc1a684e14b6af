// Reductions over axes, with keepdims: sum, mean, max, min, logsumexp, norm, argmax.
#include <cmath>
#include <limits>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xreducer.hpp>
#include <xtensor/xmath.hpp>

#include "ops/common.hpp"

namespace zg {
namespace {

std::string axes_attribute(const Axes& axes, bool keepdims) {
  return "axes=" + detail::axes_str(axes) + (keepdims ? ", keepdims" : "");
}

Shape reduced_shape(const Shape& in, const std::vector<std::size_t>& axes, bool keepdims) {
  if (keepdims) return detail::keepdims_shape(in, axes);
  Shape out;
  for (std::size_t d = 0; d < in.size(); ++d)
    if (!std::binary_search(axes.begin(), axes.end(), d)) out.push_back(in[d]);
  return out;
}

// Note [Rows]: Max, Min, LogSumExp and argmax see x as rows: the kept axes
// first and the reduced axes last, each in their original order, so every
// reduced group is one contiguous row, "first in row-major order within the
// group" is first in the row, and rows come in the output's order. When the
// reduced axes are already the last ones (the usual case) nothing is copied.
struct RowLayout {
  RowLayout(Shape in, const std::vector<std::size_t>& axes) : shape(std::move(in)) {
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (!std::binary_search(axes.begin(), axes.end(), d)) {
        perm.push_back(d);
        count *= shape[d];
      }
    for (std::size_t a : axes) {
      perm.push_back(a);
      length *= shape[a];
    }
    identity = std::is_sorted(perm.begin(), perm.end());
  }
  Shape shape;
  std::vector<std::size_t> perm;  // kept axes, then reduced axes
  std::size_t count = 1, length = 1;
  bool identity = true;

  // 0/1 shaped like x with a 1 at position pos[g] of each row g.
  template <class T>
  Tensor<T> mask(const std::vector<std::size_t>& pos) const {
    Shape rows_shape;
    for (std::size_t p : perm) rows_shape.push_back(shape[p]);
    Tensor<T> m = xt::zeros<T>(rows_shape);
    for (std::size_t g = 0; g < count; ++g) m.data()[g * length + pos[g]] = T(1);
    return identity ? m : detail::permute_array(m, detail::inverse_permutation(perm));
  }
};

template <class T>
class Rows : public RowLayout {
 public:
  Rows(const Tensor<T>& x, const std::vector<std::size_t>& axes) : RowLayout(zg::shape_of(x), axes) {
    if (!identity) copy_ = detail::permute_array(x, perm);
    data_ = identity ? x.data() : copy_.data();
  }
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  const T* row(std::size_t g) const { return data_ + g * length; }

 private:
  Tensor<T> copy_;
  const T* data_ = nullptr;
};

// The first maximum (Min: minimum) of row[0..n); a NaN wins, as in numpy.
template <bool Min, class T>
std::size_t first_extreme(const T* row, std::size_t n) {
  std::size_t best = 0;
  T v = row[0];
  for (std::size_t i = 1; i < n && !std::isnan(v); ++i)
    if ((Min ? row[i] < v : row[i] > v) || std::isnan(row[i])) v = row[best = i];
  return best;
}

template <bool Min, class T>
std::vector<std::size_t> extreme_positions(const Rows<T>& rows, const Shape& in, const char* op) {
  if (rows.length == 0 && rows.count > 0)
    throw ShapeError(std::string(op) + ": cannot reduce an empty axis of " + shape_str(in));
  std::vector<std::size_t> pos(rows.count);
  for (std::size_t g = 0; g < rows.count; ++g) pos[g] = first_extreme<Min>(rows.row(g), rows.length);
  return pos;
}

template <class T, bool Min>
struct Extreme final : Function<T> {
  Extreme(Axes axes, bool keepdims) : axes(std::move(axes)), keepdims(keepdims) {}
  Axes axes;
  bool keepdims;
  std::vector<std::size_t> pos;  // where each group's gradient goes (Note [Rows])
  static constexpr const char* kName = Min ? "Min" : "Max";
  std::string name() const override { return kName; }
  std::string attributes() const override { return axes_attribute(axes, keepdims); }
  OpFields fields() const override { return {{"axes", field_of(axes)}, {"keepdims", field_of(keepdims)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape in = zg::shape_of(x[0]);
    const auto ax = detail::normalize_axes(axes, in, kName);
    Rows<T> rows(x[0], ax);
    pos = extreme_positions<Min>(rows, in, kName);
    Tensor<T> y = Tensor<T>::from_shape(reduced_shape(in, ax, keepdims));
    for (std::size_t g = 0; g < rows.count; ++g) y.data()[g] = rows.row(g)[pos[g]];
    return y;
  }
  // d max(x) = dy at each group's (first) maximum, 0 elsewhere
  Variables<T> backward(const Variables<T>& gy) override {
    const Shape in = this->input(0).shape();
    const auto ax = detail::normalize_axes(axes, in, kName);
    Var<T> mask(RowLayout(in, ax).mask<T>(pos));
    return {detail::select_grad(mask, zg::broadcast_to(zg::reshape(gy[0], detail::keepdims_shape(in, ax)), in))};
  }
  std::string rule(std::size_t) const override {
    return Min ? "upstream to the element that was the minimum of each group, 0 elsewhere" : "upstream to the element that was the maximum of each group, 0 elsewhere";
  }
  void release() override {
    Function<T>::release();
    pos = {};
  }
};
ZG_REGISTER_OP(Max);
ZG_REGISTER_OP(Min);

template <class T>
struct LogSumExp final : Function<T> {
  LogSumExp(Axes axes, bool keepdims) : axes(std::move(axes)), keepdims(keepdims) {}
  Axes axes;
  bool keepdims;
  std::string name() const override { return "LogSumExp"; }
  std::string attributes() const override { return axes_attribute(axes, keepdims); }
  OpFields fields() const override { return {{"axes", field_of(axes)}, {"keepdims", field_of(keepdims)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape in = zg::shape_of(x[0]);
    const auto ax = detail::normalize_axes(axes, in, "LogSumExp");
    Rows<T> rows(x[0], ax);
    Tensor<T> y = Tensor<T>::from_shape(reduced_shape(in, ax, keepdims));
    for (std::size_t g = 0; g < rows.count; ++g) {
      const T* r = rows.row(g);
      const T m = rows.length ? r[first_extreme<false>(r, rows.length)] : -std::numeric_limits<T>::infinity();
      T s = 0;
      if (std::isfinite(m))
        for (std::size_t i = 0; i < rows.length; ++i) s += std::exp(r[i] - m);
      y.data()[g] = std::isfinite(m) ? m + std::log(s) : m;
    }
    return y;
  }
  // d logsumexp(x) = dy * exp(x - y), broadcast over the reduced axes
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    const Shape in = x.shape();
    const auto kd = detail::keepdims_shape(in, detail::normalize_axes(axes, in, "LogSumExp"));
    Var<T> y = this->output(0);
    if (!y.defined()) y = zg::logsumexp(x, axes, keepdims);
    return {zg::reshape(gy[0], kd) * zg::exp(x - zg::reshape(y, kd))};
  }
  std::string rule(std::size_t) const override { return "upstream \u00d7 softmax(x)"; }
};
ZG_REGISTER_OP(LogSumExp);

// Forward scales each group by its largest |x| m, so |x|^p neither overflows
// nor underflows: norm = m (sum (|x| / m)^p)^(1/p).
template <class T>
struct Norm final : Function<T> {
  Norm(double p, Axes axes, bool keepdims) : p(p), axes(std::move(axes)), keepdims(keepdims) {}
  double p;
  Axes axes;
  bool keepdims;
  std::vector<std::size_t> pos;  // p = inf: where each group's gradient goes (Note [Rows])
  std::string name() const override { return "Norm"; }
  std::string attributes() const override { return "p=" + zg::number_str(p) + ", " + axes_attribute(axes, keepdims); }
  OpFields fields() const override { return {{"p", field_of(p)}, {"axes", field_of(axes)}, {"keepdims", field_of(keepdims)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape in = zg::shape_of(x[0]);
    const auto ax = detail::normalize_axes(axes, in, "norm");
    const Tensor<T> a = xt::abs(x[0]);
    Rows<T> rows(a, ax);
    Tensor<T> y = Tensor<T>::from_shape(reduced_shape(in, ax, keepdims));
    if (std::isinf(p)) pos = extreme_positions<false>(rows, in, "norm");
    for (std::size_t g = 0; g < rows.count; ++g) {
      const T* r = rows.row(g);
      const T m = rows.length ? r[first_extreme<false>(r, rows.length)] : T(0);
      double s = 0;
      if (!std::isinf(p) && m > 0 && std::isfinite(m))
        for (std::size_t i = 0; i < rows.length; ++i) s += std::pow(double(r[i]) / double(m), p);
      y.data()[g] = s > 0 ? static_cast<T>(double(m) * std::pow(s, 1 / p)) : m;
    }
    return y;
  }
  // d |x|_p = sign(x) |x|^(p-1) / y^(p-1) dy, 0 where y = 0; p = inf: sign(x) dy at the first max |x|
  Variables<T> backward(const Variables<T>& gy) override {
    const Var<T>& x = this->input(0);
    const Shape in = x.shape();
    const auto ax = detail::normalize_axes(axes, in, "norm");
    const Shape kd = detail::keepdims_shape(in, ax);
    const Var<T> g = zg::broadcast_to(zg::reshape(gy[0], kd), in);
    const Var<T> sign = detail::constant<T>(xt::sign(x.data()));
    if (std::isinf(p)) return {detail::select_grad(Var<T>(RowLayout(in, ax).mask<T>(pos)), g) * sign};
    Var<T> y = this->output(0);
    if (!y.defined()) y = zg::norm(x, p, axes, keepdims);
    // where() twice, so that neither 1 / 0 nor 0^(p-1) reaches a gradient, not even a second one
    const Var<T> yk = zg::broadcast_to(zg::reshape(y, kd), in);
    const Var<T> zero(T(0)), one(T(1)), y_zero = zg::equal(yk, T(0)), x_zero = zg::equal(x, T(0));
    const Var<T> scale = zg::where(y_zero, zero, g / zg::pow(zg::where(y_zero, one, yk), T(p - 1)));
    return {sign * zg::pow(zg::where(x_zero, one, zg::abs(x)), T(p - 1)) * scale};
  }
  std::string rule(std::size_t) const override {
    return std::isinf(p) ? "upstream × sign(x) to the element with the largest |x| of each group, 0 elsewhere"
                         : "upstream × sign(x) |x|^(p-1) / norm^(p-1), 0 where the norm is 0";
  }
  void release() override {
    Function<T>::release();
    pos = {};
  }
};
ZG_REGISTER_OP(Norm);

template <bool Min, class T>
Tensor<std::size_t> arg_extreme(const Var<T>& x, std::ptrdiff_t axis, bool keepdims) {
  const char* op = Min ? "argmin" : "argmax";
  const Shape in = x.shape();
  const auto ax = detail::normalize_axes({axis}, in, op);
  Rows<T> rows(x.data(), ax);
  const auto pos = extreme_positions<Min>(rows, in, op);
  Tensor<std::size_t> out = Tensor<std::size_t>::from_shape(reduced_shape(in, ax, keepdims));
  std::copy(pos.begin(), pos.end(), out.begin());
  return out;
}

template <class T>
struct Sum final : Function<T> {
  Sum(Axes axes, bool keepdims) : axes(std::move(axes)), keepdims(keepdims) {}
  Axes axes;
  bool keepdims;
  std::string name() const override { return "Sum"; }
  std::string attributes() const override { return axes_attribute(axes, keepdims); }
  OpFields fields() const override { return {{"axes", field_of(axes)}, {"keepdims", field_of(keepdims)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const auto ax = detail::normalize_axes(axes, zg::shape_of(x[0]), "Sum");
    Tensor<T> y = detail::reduce_sum(x[0], ax);
    if (keepdims) y.reshape(detail::keepdims_shape(zg::shape_of(x[0]), ax));
    return y;
  }
  bool saves_inputs() const override { return false; }  // backward needs only the shape
  // d sum(x) = broadcast of dy back over the summed axes
  Variables<T> backward(const Variables<T>& gy) override {
    const Shape in = this->input_shape(0);
    const auto ax = detail::normalize_axes(axes, in, "Sum");
    return {zg::broadcast_to(zg::reshape(gy[0], detail::keepdims_shape(in, ax)), in)};
  }
  std::string rule(std::size_t) const override { return "the upstream gradient copied back to every element that was summed"; }
};
ZG_REGISTER_OP(Sum);

}  // namespace

template <class T>
Var<T> sum(const Var<T>& x, const Axes& axes, bool keepdims) {
  return apply1<Sum<T>>({x}, axes, keepdims);
}

template <class T>
Var<T> mean(const Var<T>& x, const Axes& axes, bool keepdims) {
  const Shape in = x.shape();
  std::size_t count = 1;
  for (std::size_t a : detail::normalize_axes(axes, in, "Mean")) count *= in[a];
  return zg::sum(x, axes, keepdims) * (T(1) / static_cast<T>(count));
}

template <class T>
Var<T> max(const Var<T>& x, const Axes& axes, bool keepdims) {
  return apply1<Extreme<T, false>>({x}, axes, keepdims);
}
template <class T>
Var<T> min(const Var<T>& x, const Axes& axes, bool keepdims) {
  return apply1<Extreme<T, true>>({x}, axes, keepdims);
}
template <class T>
Var<T> logsumexp(const Var<T>& x, const Axes& axes, bool keepdims) {
  return apply1<LogSumExp<T>>({x}, axes, keepdims);
}
template <class T>
Var<T> norm(const Var<T>& x, double p, const Axes& axes, bool keepdims) {
  if (!(p > 0))
    throw ValueError("norm: p must be > 0 or infinity, got " + zg::number_str(p));
  detail::normalize_axes(axes, x.shape(), "norm");
  return apply1<Norm<T>>({x}, p, axes, keepdims);
}
template <class T>
Var<T> argmax(const Var<T>& x, std::ptrdiff_t axis, bool keepdims) {
  return Var<T>(Tensor<T>(xt::cast<T>(arg_extreme<false>(x, axis, keepdims))));
}
template <class T>
Var<T> argmin(const Var<T>& x, std::ptrdiff_t axis, bool keepdims) {
  return Var<T>(Tensor<T>(xt::cast<T>(arg_extreme<true>(x, axis, keepdims))));
}
template <class T>
Tensor<std::size_t> argmax_indices(const Var<T>& x, std::ptrdiff_t axis) {
  return arg_extreme<false>(x, axis, false);
}
template <class T>
Tensor<std::size_t> argmin_indices(const Var<T>& x, std::ptrdiff_t axis) {
  return arg_extreme<true>(x, axis, false);
}

#define ZG_INSTANTIATE(T)                                                         \
  template Var<T> sum(const Var<T>&, const Axes&, bool);                          \
  template Var<T> mean(const Var<T>&, const Axes&, bool);                         \
  template Var<T> max(const Var<T>&, const Axes&, bool);                          \
  template Var<T> min(const Var<T>&, const Axes&, bool);                          \
  template Var<T> logsumexp(const Var<T>&, const Axes&, bool);                    \
  template Var<T> norm(const Var<T>&, double, const Axes&, bool);                 \
  template Var<T> argmax(const Var<T>&, std::ptrdiff_t, bool);                    \
  template Var<T> argmin(const Var<T>&, std::ptrdiff_t, bool);                    \
  template Tensor<std::size_t> argmax_indices(const Var<T>&, std::ptrdiff_t); \
  template Tensor<std::size_t> argmin_indices(const Var<T>&, std::ptrdiff_t);
ZG_FOR_FLOAT_AND_DOUBLE(ZG_INSTANTIATE)
#undef ZG_INSTANTIATE

}  // namespace zg
