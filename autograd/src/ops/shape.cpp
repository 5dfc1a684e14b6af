// Shape ops: reshape, broadcast_to and sum_to (each other's backward).
#include <numeric>

#include <xtensor/xbroadcast.hpp>
#include <xtensor/xreducer.hpp>
#include <xtensor/xmath.hpp>

#include "engine/buffer_cache.hpp"
#include "ops/common.hpp"
#include "zerograd/parallel.hpp"

namespace zg {
namespace detail {

std::string axes_str(const Axes& axes) {
  std::string s = "(";
  for (std::size_t i = 0; i < axes.size(); ++i) s += (i ? ", " : "") + std::to_string(axes[i]);
  return s + ")";
}

std::vector<std::size_t> normalize_axes(const Axes& axes, const Shape& shape, const char* op) {
  const std::size_t ndim = shape.size();
  std::vector<std::size_t> out;
  if (axes.empty()) {
    out.resize(ndim);
    std::iota(out.begin(), out.end(), std::size_t{0});
    return out;
  }
  for (std::ptrdiff_t a : axes) {
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(ndim);
    if (a < -n || a >= n)
      throw ShapeError(std::string(op) + ": axis " + std::to_string(a) + " is out of range for an input of shape " +
                       shape_str(shape));
    out.push_back(static_cast<std::size_t>(a < 0 ? a + n : a));
  }
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    throw ShapeError(std::string(op) + ": axes " + axes_str(axes) + " repeat an axis of an input of shape " +
                     shape_str(shape));
  return out;
}

Shape keepdims_shape(const Shape& in, const std::vector<std::size_t>& axes) {
  Shape out = in;
  for (std::size_t a : axes) out[a] = 1;
  return out;
}

namespace {

// The sum of a contiguous row, in 16 lanes that the compiler keeps in SIMD
// registers (independent partial sums: no reassociation needed), then added
// pairwise. The bias gradient of a convolution sums rows of OH x OW: with 4
// scalar lanes that was 2.8% of DeepConvNet's time at one thread.
template <class T>
T row_sum(const T* row, std::size_t n) {
  constexpr std::size_t L = 16;
  T acc[L] = {};
  std::size_t i = 0;
  for (; i + L <= n; i += L)
    for (std::size_t j = 0; j < L; ++j) acc[j] += row[i + j];
  for (std::size_t j = 0; i < n; ++i, ++j) acc[j] += row[i];
  for (std::size_t w = L / 2; w > 0; w /= 2)
    for (std::size_t j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}

}  // namespace

template <class T>
Tensor<T> reduce_sum(const Tensor<T>& x, const std::vector<std::size_t>& axes) {
  const auto& xs = x.shape();
  if (xs.size() == 0) return x;  // 0-d: nothing to reduce
  // Collapse neighbouring axes that are both reduced or both kept into
  // blocks. Small inline vectors: a sum is often a sub-microsecond op.
  using Small = xt::svector<std::size_t, 8>;
  Small size, out_shape;
  xt::svector<bool, 8> reduced;
  for (std::size_t d = 0; d < xs.size(); ++d) {
    const bool r = std::binary_search(axes.begin(), axes.end(), d);
    if (!r) out_shape.push_back(xs[d]);
    if (!size.empty() && reduced.back() == r) size.back() *= xs[d];
    else size.push_back(xs[d]), reduced.push_back(r);
  }
  Tensor<T> out = empty_tensor<T>(out_shape);
  if (x.size() == 0) {
    std::fill(out.begin(), out.end(), T(0));
    return out;
  }
  // Column sums of a small (rows, cols) block, the bias gradient of a Linear
  // layer: no index bookkeeping per row.
  if (size.size() == 2 && reduced[0] && !reduced[1] && x.size() < kColumnSumsMax) {
    column_sums(x.data(), size[0], size[1], out.data());
    return out;
  }
  std::fill(out.begin(), out.end(), T(0));
  // Walk the blocks; the innermost block is contiguous.
  const std::size_t nb = size.size();
  const std::size_t inner = size.back();
  const bool inner_reduced = reduced.back();
  std::size_t outer = 1;
  for (std::size_t b = 0; b + 1 < nb; ++b) outer *= size[b];
  // Adds the rows [k0, k1) of the outer blocks into o.
  const auto run = [&](std::size_t k0, std::size_t k1, T* o) {
    Small idx(nb, 0);
    for (std::size_t b = nb - 1, rest = k0; b-- > 0;) idx[b] = rest % size[b], rest /= size[b];
    const T* in = x.data();
    for (std::size_t k = k0; k < k1; ++k) {
      // Output offset of this outer position: kept blocks, row-major.
      std::size_t off = 0;
      for (std::size_t b = 0; b + 1 < nb; ++b)
        if (!reduced[b]) off = off * size[b] + idx[b];
      const T* row = in + k * inner;
      if (inner_reduced) {
        o[off] += row_sum(row, inner);
      } else {
        T* dst = o + off * inner;
        for (std::size_t i = 0; i < inner; ++i) dst[i] += row[i];
      }
      for (std::size_t b = nb - 1; b-- > 0;) {  // advance the outer multi-index
        if (++idx[b] < size[b]) break;
        idx[b] = 0;
      }
    }
  };
  // Large inputs are summed in chunks of rows (about 64k elements or more
  // each); one whose output is not much smaller than it (few rows reduced)
  // stays whole, a grain of all rows, as partials would cost as much as the sum.
  const std::size_t grain =
      out.size() <= x.size() / 16 ? std::max<std::size_t>(1, (1u << 16) / inner) : std::max<std::size_t>(outer, 1);
  parallel_sum(outer, grain, out.data(), out.size(), run);
  return out;
}
template Tensor<float> reduce_sum(const Tensor<float>&, const std::vector<std::size_t>&);
template Tensor<double> reduce_sum(const Tensor<double>&, const std::vector<std::size_t>&);

template <class T>
Tensor<T> sum_to_array(const Tensor<T>& x, const Shape& shape) {
  const Shape xs = zg::shape_of(x);
  const std::size_t lead = xs.size() - shape.size();
  std::vector<std::size_t> axes;
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && xs[i] != 1)) axes.push_back(i);
  if (axes.empty()) return x;
  Tensor<T> summed = reduce_sum(x, axes);
  summed.reshape(shape);
  return summed;
}
template Tensor<float> sum_to_array(const Tensor<float>&, const Shape&);
template Tensor<double> sum_to_array(const Tensor<double>&, const Shape&);

}  // namespace detail

namespace {

std::size_t element_count(const Shape& s) {
  return std::accumulate(s.begin(), s.end(), std::size_t{1}, std::multiplies<>());
}

template <class T>
struct Reshape final : Function<T> {
  explicit Reshape(Shape shape) : shape(std::move(shape)) {}
  Shape shape;
  std::string name() const override { return "Reshape"; }
  std::string attributes() const override { return "shape=" + shape_str(shape); }
  OpFields fields() const override { return {{"shape", field_of(shape)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    if (element_count(shape) != x[0].size())
      throw ShapeError("Reshape: cannot reshape " + shape_str(x[0].shape()) + " (" +
                       std::to_string(x[0].size()) + " elements) to " + shape_str(shape));
    Tensor<T> y = x[0];
    y.reshape(shape);
    return y;
  }
  bool saves_inputs() const override { return false; }  // backward needs only the shape
  // reshape back
  Variables<T> backward(const Variables<T>& gy) override {
    return {zg::reshape(gy[0], this->input_shape(0))};
  }
  std::string rule(std::size_t) const override { return "the upstream gradient reshaped back to the input's shape"; }
};
ZG_REGISTER_OP(Reshape);

template <class T>
struct BroadcastTo final : Function<T> {
  explicit BroadcastTo(Shape shape) : shape(std::move(shape)) {}
  Shape shape;
  std::string name() const override { return "BroadcastTo"; }
  std::string attributes() const override { return "shape=" + shape_str(shape); }
  OpFields fields() const override { return {{"shape", field_of(shape)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape xs = zg::shape_of(x[0]);
    if (xs.size() > shape.size() || broadcast_shapes(xs, shape, "BroadcastTo") != shape)
      throw ShapeError("BroadcastTo: cannot broadcast " + shape_str(xs) + " to " + shape_str(shape));
    return xt::broadcast(x[0], shape);
  }
  bool saves_inputs() const override { return false; }  // backward needs only the shape
  // the reverse of broadcasting is summing
  Variables<T> backward(const Variables<T>& gy) override {
    return {zg::sum_to(gy[0], this->input_shape(0))};
  }
  std::string rule(std::size_t) const override { return "the upstream gradient summed over the broadcast axes (sum_to)"; }
};
ZG_REGISTER_OP(BroadcastTo);

template <class T>
struct SumTo final : Function<T> {
  explicit SumTo(Shape shape) : shape(std::move(shape)) {}
  Shape shape;
  std::string name() const override { return "SumTo"; }
  std::string attributes() const override { return "shape=" + shape_str(shape); }
  OpFields fields() const override { return {{"shape", field_of(shape)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape xs = zg::shape_of(x[0]);
    if (shape.size() > xs.size() || broadcast_shapes(xs, shape, "SumTo") != xs)
      throw ShapeError("SumTo: cannot sum " + shape_str(xs) + " down to " + shape_str(shape));
    return detail::sum_to_array(x[0], shape);
  }
  bool saves_inputs() const override { return false; }  // backward needs only the shape
  // the reverse of summing is broadcasting
  Variables<T> backward(const Variables<T>& gy) override {
    return {zg::broadcast_to(gy[0], this->input_shape(0))};
  }
  std::string rule(std::size_t) const override { return "the upstream gradient broadcast back to the input's shape"; }
};
ZG_REGISTER_OP(SumTo);

}  // namespace

template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return apply1<Reshape<T>>({x}, shape);
}
template <class T>
Var<T> broadcast_to(const Var<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return apply1<BroadcastTo<T>>({x}, shape);
}
template <class T>
Var<T> sum_to(const Var<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return apply1<SumTo<T>>({x}, shape);
}

#define ZG_INSTANTIATE(T)                                     \
  template Var<T> reshape(const Var<T>&, const Shape&);       \
  template Var<T> broadcast_to(const Var<T>&, const Shape&);  \
  template Var<T> sum_to(const Var<T>&, const Shape&);
ZG_FOR_FLOAT_AND_DOUBLE(ZG_INSTANTIATE)
#undef ZG_INSTANTIATE

}  // namespace zg
