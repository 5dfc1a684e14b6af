// Tensor shape ops: transpose, flatten / expand_dims / squeeze (reshapes),
// the masks tril / triu / masked_fill, get_item and its scatter-add
// backward, concat / stack / split. Copies are raw loops over contiguous
// memory: xtensor's strided views copy slowly.
#include <algorithm>
#include <limits>
#include <numeric>

#include <xtensor/xoperation.hpp>

#include "ops/common.hpp"

namespace zg {
namespace detail {

std::vector<std::size_t> inverse_permutation(const std::vector<std::size_t>& perm) {
  std::vector<std::size_t> inv(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = i;
  return inv;
}

template <class T>
Tensor<T> permute_array(const Tensor<T>& x, const std::vector<std::size_t>& perm) {
  const std::size_t n = perm.size();
  const Shape xs = zg::shape_of(x);
  Shape x_stride(n, 1), ys(n), src_stride(n);
  for (std::size_t d = n; d-- > 1;) x_stride[d - 1] = x_stride[d] * xs[d];
  for (std::size_t i = 0; i < n; ++i) {
    ys[i] = xs[perm[i]];
    src_stride[i] = x_stride[perm[i]];
  }
  Tensor<T> y = Tensor<T>::from_shape(ys);
  if (n == 0 || y.size() == 0) {
    std::copy(x.data(), x.data() + x.size(), y.data());
    return y;
  }
  // An odometer over the outer output axes; the last one is the inner loop.
  const std::size_t inner = ys[n - 1], step = src_stride[n - 1];
  Shape idx(n - 1, 0);
  std::size_t src = 0;
  T* out = y.data();
  for (std::size_t done = 0; done < y.size(); done += inner) {
    const T* in = x.data() + src;
    for (std::size_t j = 0; j < inner; ++j) *out++ = in[j * step];
    for (std::size_t d = n - 1; d-- > 0;) {
      src += src_stride[d];
      if (++idx[d] < ys[d]) break;
      src -= src_stride[d] * ys[d];
      idx[d] = 0;
    }
  }
  return y;
}
template Tensor<float> permute_array(const Tensor<float>&, const std::vector<std::size_t>&);
template Tensor<double> permute_array(const Tensor<double>&, const std::vector<std::size_t>&);

std::vector<std::size_t> equal_sections(const Shape& shape, std::ptrdiff_t sections, std::ptrdiff_t axis) {
  const auto n = static_cast<std::ptrdiff_t>(shape.size());
  if (axis < -n || axis >= n)
    throw ShapeError("Split: axis " + std::to_string(axis) + " is out of range for " + shape_str(shape));
  const std::size_t len = shape[static_cast<std::size_t>(axis < 0 ? axis + n : axis)];
  if (sections <= 0 || len % static_cast<std::size_t>(sections) != 0)
    throw ShapeError("Split: " + std::to_string(sections) + " equal sections do not divide axis " +
                     std::to_string(axis) + " of " + shape_str(shape));
  return std::vector<std::size_t>(static_cast<std::size_t>(sections), len / static_cast<std::size_t>(sections));
}

}  // namespace detail

namespace {

std::size_t product(Shape::const_iterator first, Shape::const_iterator last) {
  return std::accumulate(first, last, std::size_t{1}, std::multiplies<>());
}

// axis in [-n, n) for n = ndim (or ndim + 1 where a new axis is made).
std::size_t axis_index(std::ptrdiff_t axis, std::size_t n, const Shape& shape, const std::string& op) {
  const auto sn = static_cast<std::ptrdiff_t>(n);
  if (axis < -sn || axis >= sn)
    throw ShapeError(op + ": axis " + std::to_string(axis) + " is out of range for " + shape_str(shape));
  return static_cast<std::size_t>(axis < 0 ? axis + sn : axis);
}

std::string list_str(const std::vector<std::ptrdiff_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + ")";
}

// Transpose

template <class T>
struct Transpose final : Function<T> {
  explicit Transpose(std::vector<std::size_t> perm) : perm(std::move(perm)) {}
  std::vector<std::size_t> perm;
  std::string name() const override { return "Transpose"; }
  std::string attributes() const override { return "axes=" + shape_str(perm); }
  OpFields fields() const override { return {{"perm", field_of(perm)}}; }
  Outputs<T> forward(const TensorList<T>& x) override { return detail::permute_array(x[0], perm); }
  bool saves_inputs() const override { return false; }  // backward needs only the permutation
  // the gradient moves back through the inverse permutation
  Variables<T> backward(const Variables<T>& gy) override {
    const auto inv = detail::inverse_permutation(perm);
    return {zg::transpose(gy[0], Axes(inv.begin(), inv.end()))};
  }
  std::string rule(std::size_t) const override { return "the upstream gradient transposed back"; }
};
ZG_REGISTER_OP(Transpose);

// Masks

// y = x inside the band lo <= j - i <= hi of each matrix in the last two axes, 0 outside.
template <class T>
Tensor<T> keep_band(const Tensor<T>& x, std::ptrdiff_t lo, std::ptrdiff_t hi, const char* op) {
  const std::size_t n = x.dimension();
  if (n < 2) throw ShapeError(std::string(op) + ": input must have 2 or more dimensions, got " + shape_str(x.shape()));
  const auto rows = static_cast<std::ptrdiff_t>(x.shape()[n - 2]), cols = static_cast<std::ptrdiff_t>(x.shape()[n - 1]);
  Tensor<T> y = Tensor<T>::from_shape(x.shape());
  if (y.size() == 0) return y;
  const T* in = x.data();
  T* out = y.data();
  for (std::size_t at = 0; at < x.size(); at += static_cast<std::size_t>(rows * cols))
    for (std::ptrdiff_t i = 0; i < rows; ++i) {
      const T* row = in + at + static_cast<std::size_t>(i * cols);
      T* dst = out + at + static_cast<std::size_t>(i * cols);
      for (std::ptrdiff_t j = 0; j < cols; ++j) dst[j] = j - i >= lo && j - i <= hi ? row[j] : T(0);
    }
  return y;
}
constexpr std::ptrdiff_t kNoBound = std::numeric_limits<std::ptrdiff_t>::max() / 2;

template <class T>
struct Tril final : Function<T> {
  explicit Tril(std::ptrdiff_t diagonal) : diagonal(diagonal) {}
  std::ptrdiff_t diagonal;
  std::string name() const override { return "Tril"; }
  std::string attributes() const override { return "diagonal=" + std::to_string(diagonal); }
  OpFields fields() const override { return {{"diagonal", field_of(diagonal)}}; }
  Outputs<T> forward(const TensorList<T>& x) override { return keep_band(x[0], -kNoBound, diagonal, "Tril"); }
  bool saves_inputs() const override { return false; }  // backward needs only the diagonal
  // linear: the gradient keeps the same triangle
  Variables<T> backward(const Variables<T>& gy) override { return {zg::tril(gy[0], diagonal)}; }
  std::string rule(std::size_t) const override { return "the upstream gradient's lower triangle"; }
};
ZG_REGISTER_OP(Tril);

template <class T>
struct Triu final : Function<T> {
  explicit Triu(std::ptrdiff_t diagonal) : diagonal(diagonal) {}
  std::ptrdiff_t diagonal;
  std::string name() const override { return "Triu"; }
  std::string attributes() const override { return "diagonal=" + std::to_string(diagonal); }
  OpFields fields() const override { return {{"diagonal", field_of(diagonal)}}; }
  Outputs<T> forward(const TensorList<T>& x) override { return keep_band(x[0], diagonal, kNoBound, "Triu"); }
  bool saves_inputs() const override { return false; }  // backward needs only the diagonal
  // linear: the gradient keeps the same triangle
  Variables<T> backward(const Variables<T>& gy) override { return {zg::triu(gy[0], diagonal)}; }
  std::string rule(std::size_t) const override { return "the upstream gradient's upper triangle"; }
};
ZG_REGISTER_OP(Triu);

template <class T>
struct MaskedFill final : Function<T> {
  explicit MaskedFill(double value) : value(value) {}
  double value;
  std::string name() const override { return "MaskedFill"; }
  std::string attributes() const override { return "value=" + number_str(value); }
  OpFields fields() const override { return {{"value", field_of(value)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape xs = zg::shape_of(x[0]), ms = zg::shape_of(x[1]);
    bool fits = ms.size() <= xs.size();
    for (std::size_t d = 0; fits && d < ms.size(); ++d) {
      const std::size_t m = ms[ms.size() - 1 - d];
      fits = m == 1 || m == xs[xs.size() - 1 - d];
    }
    if (!fits)
      throw ShapeError("MaskedFill: mask " + shape_str(ms) + " does not broadcast to the input's shape " + shape_str(xs));
    return xt::where(xt::not_equal(x[1], T(0)), static_cast<T>(value), x[0]);
  }
  // d masked_fill = gy where the mask is 0, 0 where it filled
  Variables<T> backward(const Variables<T>& gy) override {
    if (!this->needs_input_grad(0)) return {Var<T>(), Var<T>()};
    return {zg::masked_fill(gy[0], this->input(1), 0.0), Var<T>()};
  }
  std::string rule(std::size_t i) const override {
    return i == 0 ? "upstream where the mask is 0, 0 where it filled" : "none for the mask";
  }
};
ZG_REGISTER_OP(MaskedFill);

// Get_item

// Note [Gather]: get_item reads, for each output element in row-major order,
// one input element. The trailing axes taken whole form contiguous blocks of
// `block` elements, so an index is resolved into the flat input offset of each
// block; GetItem copies blocks out, GetItemGrad adds them back in.
struct Gather {
  Shape out_shape;
  std::vector<std::size_t> offsets;
  std::size_t block = 1;
};

std::vector<std::size_t> positions(const Index& index, std::size_t axis, const Shape& shape) {
  const auto n = static_cast<std::ptrdiff_t>(shape[axis]);
  auto checked = [&](std::ptrdiff_t i, const char* what) {
    if (i < -n || i >= n)
      throw ShapeError("GetItem: " + std::string(what) + std::to_string(i) + " is out of range for axis " +
                       std::to_string(axis) + " of size " + std::to_string(n) + " (input shape " +
                       shape_str(shape) + ")");
    return static_cast<std::size_t>(i < 0 ? i + n : i);
  };
  if (index.is_integer()) return {checked(index.integer(), "index ")};
  std::vector<std::size_t> out;
  if (index.is_array()) {
    for (std::ptrdiff_t i : index.array()) out.push_back(checked(i, "index array entry "));
    return out;
  }
  // Python's slice.indices(n): clip the bounds, then count steps.
  const Slice& s = index.slice();
  if (s.step == 0)
    throw ShapeError("GetItem: slice step is 0 for axis " + std::to_string(axis) + " (input shape " +
                     shape_str(shape) + ")");
  const std::ptrdiff_t lo = s.step > 0 ? 0 : -1, hi = s.step > 0 ? n : n - 1;
  auto clip = [&](std::optional<std::ptrdiff_t> b, std::ptrdiff_t open) {
    if (!b) return open;
    const std::ptrdiff_t v = *b < 0 ? *b + n : *b;
    return std::clamp(v, lo, hi);
  };
  const std::ptrdiff_t start = clip(s.start, s.step > 0 ? 0 : n - 1);
  const std::ptrdiff_t stop = clip(s.stop, s.step > 0 ? n : -1);
  const std::ptrdiff_t count = s.step > 0 ? (stop > start ? (stop - start - 1) / s.step + 1 : 0)
                                          : (start > stop ? (stop - start + 1) / s.step + 1 : 0);
  for (std::ptrdiff_t k = 0; k < count; ++k) out.push_back(static_cast<std::size_t>(start + k * s.step));
  return out;
}

Gather gather(const std::vector<Index>& indices, const Shape& shape) {
  if (indices.size() > shape.size())
    throw ShapeError("GetItem: " + std::to_string(indices.size()) + " indices for input of shape " +
                     shape_str(shape));
  if (std::count_if(indices.begin(), indices.end(), [](const Index& i) { return i.is_array(); }) > 1)
    throw ShapeError("GetItem: at most one index array per call is supported (input shape " +
                     shape_str(shape) + ")");
  const std::size_t n = shape.size();
  std::vector<std::vector<std::size_t>> pos(n);
  Gather g;
  for (std::size_t d = 0; d < n; ++d) {
    pos[d] = positions(d < indices.size() ? indices[d] : Index(), d, shape);
    if (d >= indices.size() || !indices[d].is_integer()) g.out_shape.push_back(pos[d].size());
  }
  std::size_t whole_from = n;  // axes [whole_from, n) are taken whole, in order
  auto is_whole = [&](std::size_t d) {  // positions 0, 1, ..., shape[d] - 1
    if (pos[d].size() != shape[d]) return false;
    for (std::size_t i = 0; i < pos[d].size(); ++i)
      if (pos[d][i] != i) return false;
    return true;
  };
  while (whole_from > 0 && is_whole(whole_from - 1)) --whole_from;
  g.block = product(shape.begin() + static_cast<std::ptrdiff_t>(whole_from), shape.end());
  g.offsets = {0};
  for (std::size_t d = 0; d < whole_from; ++d) {
    const std::size_t stride = product(shape.begin() + static_cast<std::ptrdiff_t>(d) + 1, shape.end());
    std::vector<std::size_t> next;
    next.reserve(g.offsets.size() * pos[d].size());
    for (std::size_t o : g.offsets)
      for (std::size_t p : pos[d]) next.push_back(o + p * stride);
    g.offsets.swap(next);
  }
  return g;
}

std::string indices_str(const std::vector<Index>& indices) {
  auto bound = [](const std::optional<std::ptrdiff_t>& b) { return b ? std::to_string(*b) : std::string(); };
  std::string s = "[";
  for (std::size_t i = 0; i < indices.size(); ++i) {
    const Index& ix = indices[i];
    s += i ? ", " : "";
    if (ix.is_integer()) s += std::to_string(ix.integer());
    else if (ix.is_array()) s += list_str(ix.array());
    else
      s += bound(ix.slice().start) + ":" + bound(ix.slice().stop) +
           (ix.slice().step != 1 ? ":" + std::to_string(ix.slice().step) : "");
  }
  return s + "]";
}

template <class T>
struct GetItem final : Function<T> {
  explicit GetItem(std::vector<Index> indices) : indices(std::move(indices)) {}
  std::vector<Index> indices;
  std::string name() const override { return "GetItem"; }
  std::string attributes() const override { return "index=" + indices_str(indices); }
  // Per axis "index<k>": {0, position}, {1, start, stop, step} (NaN for an open end) or {2, positions...}.
  OpFields fields() const override {
    OpFields f;
    const double open = std::numeric_limits<double>::quiet_NaN();
    for (std::size_t k = 0; k < indices.size(); ++k) {
      const Index& i = indices[k];
      std::vector<double> v;
      if (i.is_integer()) v = {0, double(i.integer())};
      if (i.is_slice()) v = {1, i.slice().start ? double(*i.slice().start) : open,
                             i.slice().stop ? double(*i.slice().stop) : open, double(i.slice().step)};
      if (i.is_array()) {
        v = {2};
        for (std::ptrdiff_t a : i.array()) v.push_back(double(a));
      }
      f.emplace_back("index" + std::to_string(k), std::move(v));
    }
    return f;
  }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Gather g = gather(indices, zg::shape_of(x[0]));
    Tensor<T> y = Tensor<T>::from_shape(g.out_shape);
    T* out = y.data();
    for (std::size_t o : g.offsets) out = std::copy_n(x[0].data() + o, g.block, out);
    return y;
  }
  bool saves_inputs() const override { return false; }  // backward needs only x's shape
  // d x[i] = dy scatter-added into zeros shaped like x
  Variables<T> backward(const Variables<T>& gy) override {
    return {zg::get_item_grad(gy[0], indices, this->input_shape(0))};
  }
  std::string rule(std::size_t) const override { return "upstream scattered into zeros at the positions that were read"; }
};
ZG_REGISTER_OP(GetItem);

template <class T>
struct GetItemGrad final : Function<T> {
  GetItemGrad(std::vector<Index> indices, Shape shape) : indices(std::move(indices)), shape(std::move(shape)) {}
  std::vector<Index> indices;
  Shape shape;
  std::string name() const override { return "GetItemGrad"; }
  std::string attributes() const override { return "index=" + indices_str(indices) + ", shape=" + shape_str(shape); }
  Outputs<T> forward(const TensorList<T>& gy) override {
    const Gather g = gather(indices, shape);
    if (zg::shape_of(gy[0]) != g.out_shape)
      throw ShapeError("GetItemGrad: gradient of shape " + shape_str(gy[0].shape()) + " for an index " +
                       indices_str(indices) + " of " + shape_str(shape) + " that gives " + shape_str(g.out_shape));
    Tensor<T> gx = Tensor<T>::from_shape(shape);
    std::fill(gx.begin(), gx.end(), T(0));
    const T* in = gy[0].data();
    for (std::size_t o : g.offsets) {
      T* dst = gx.data() + o;
      for (std::size_t j = 0; j < g.block; ++j) dst[j] += *in++;
    }
    return gx;
  }
  bool saves_inputs() const override { return false; }
  // a scatter-add is linear; its adjoint is the gather: d gx = get_item(d gy)
  Variables<T> backward(const Variables<T>& ggx) override { return {zg::get_item(ggx[0], indices)}; }
  std::string rule(std::size_t) const override { return "the upstream gradient read at the same positions"; }
};
ZG_REGISTER_OP(GetItemGrad);

// Concat and split

// Note [Blocks]: along axis a, an array is `outer` = prod(shape[:a]) blocks,
// one per position of the leading axes; concat interleaves the inputs' blocks
// and split deals them out again.
template <class T>
struct Concat final : Function<T> {
  explicit Concat(std::ptrdiff_t axis) : axis(axis) {}
  std::ptrdiff_t axis;
  std::string name() const override { return "Concat"; }
  std::string attributes() const override { return "axis=" + std::to_string(axis); }
  OpFields fields() const override { return {{"axis", field_of(axis)}}; }
  Outputs<T> forward(const TensorList<T>& xs) override {
    const Shape first = zg::shape_of(xs[0]);
    const std::size_t a = axis_index(axis, first.size(), first, "Concat");
    Shape out = first;
    out[a] = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      Shape s = zg::shape_of(xs[i]);
      if (s.size() != first.size() || !std::equal(s.begin(), s.begin() + a, first.begin()) ||
          !std::equal(s.begin() + a + 1, s.end(), first.begin() + a + 1, first.end()))
        throw ShapeError("Concat: along axis " + std::to_string(axis) + ", input " + std::to_string(i) +
                         " has shape " + shape_str(s) + " but input 0 has shape " + shape_str(first));
      out[a] += s[a];
    }
    const std::size_t outer = product(first.begin(), first.begin() + a);
    const std::size_t inner = product(first.begin() + a + 1, first.end());
    Tensor<T> y = Tensor<T>::from_shape(out);
    T* dst = y.data();
    for (std::size_t o = 0; o < outer; ++o)
      for (std::size_t i = 0; i < xs.size(); ++i) {
        const std::size_t n = xs[i].shape()[a] * inner;
        dst = std::copy_n(xs[i].data() + o * n, n, dst);
      }
    return y;
  }
  bool saves_inputs() const override { return false; }  // backward needs only the shapes
  // each input's gradient is its own slice of dy
  Variables<T> backward(const Variables<T>& gy) override {
    const std::size_t a = axis_index(axis, gy[0].ndim(), gy[0].shape(), "Concat");
    std::vector<std::size_t> sizes;
    for (std::size_t i = 0; i < this->num_inputs(); ++i) sizes.push_back(this->input_shape(i)[a]);
    return zg::split(gy[0], sizes, axis);
  }
  std::string rule(std::size_t) const override { return "this input's slice of the upstream gradient"; }
};
ZG_REGISTER_OP(Concat);

template <class T>
struct Split final : Function<T> {
  Split(std::vector<std::size_t> sizes, std::ptrdiff_t axis) : sizes(std::move(sizes)), axis(axis) {}
  std::vector<std::size_t> sizes;
  std::ptrdiff_t axis;
  std::string name() const override { return "Split"; }
  std::string attributes() const override { return "sizes=" + shape_str(sizes) + ", axis=" + std::to_string(axis); }
  OpFields fields() const override { return {{"sizes", field_of(sizes)}, {"axis", field_of(axis)}}; }
  Outputs<T> forward(const TensorList<T>& x) override {
    const Shape in = zg::shape_of(x[0]);
    const std::size_t a = axis_index(axis, in.size(), in, "Split");
    if (sizes.empty() || std::accumulate(sizes.begin(), sizes.end(), std::size_t{0}) != in[a])
      throw ShapeError("Split: sizes " + shape_str(sizes) + " do not sum to the length " +
                       std::to_string(in[a]) + " of axis " + std::to_string(axis) + " of " + shape_str(in));
    const std::size_t outer = product(in.begin(), in.begin() + a);
    const std::size_t inner = product(in.begin() + a + 1, in.end());
    std::vector<Tensor<T>> ys;
    std::vector<T*> dst;
    ys.reserve(sizes.size());
    for (std::size_t n : sizes) {
      Shape s = in;
      s[a] = n;
      ys.push_back(Tensor<T>::from_shape(s));
      dst.push_back(ys.back().data());
    }
    const T* src = x[0].data();
    for (std::size_t o = 0; o < outer; ++o)
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        const std::size_t n = sizes[i] * inner;
        dst[i] = std::copy_n(src, n, dst[i]);
        src += n;
      }
    return Outputs<T>(std::move(ys));
  }
  bool saves_inputs() const override { return false; }
  // the pieces' gradients joined again (the engine passes zeros for unused pieces)
  Variables<T> backward(const Variables<T>& gys) override { return {zg::concat(gys, axis)}; }
  std::string rule(std::size_t) const override { return "the pieces' upstream gradients concatenated"; }
};
ZG_REGISTER_OP(Split);

}  // namespace

// Free functions

template <class T>
Var<T> transpose(const Var<T>& x, const Axes& axes) {
  const Shape s = x.shape();
  const auto n = static_cast<std::ptrdiff_t>(s.size());
  std::vector<std::size_t> perm;
  std::vector<bool> seen(s.size(), false);
  for (std::ptrdiff_t a : axes) {
    const std::ptrdiff_t d = a < 0 ? a + n : a;
    if (d < 0 || d >= n || seen[static_cast<std::size_t>(d)]) break;
    seen[static_cast<std::size_t>(d)] = true;
    perm.push_back(static_cast<std::size_t>(d));
  }
  if (axes.size() != s.size() || perm.size() != s.size())
    throw ShapeError("Transpose: axes " + list_str(axes) + " are not a permutation of the axes of " +
                     shape_str(s));
  if (std::is_sorted(perm.begin(), perm.end())) return x;
  return apply1<Transpose<T>>({x}, perm);
}

template <class T>
Var<T> transpose(const Var<T>& x) {
  Axes reversed(x.ndim());
  std::iota(reversed.rbegin(), reversed.rend(), std::ptrdiff_t{0});
  return zg::transpose(x, reversed);
}

template <class T>
Var<T> permute(const Var<T>& x, const Axes& axes) {
  return zg::transpose(x, axes);
}

template <class T>
Var<T> transpose(const Var<T>& x, std::ptrdiff_t dim0, std::ptrdiff_t dim1) {
  const Shape s = x.shape();
  const std::size_t a = axis_index(dim0, s.size(), s, "Transpose"), b = axis_index(dim1, s.size(), s, "Transpose");
  Axes perm(s.size());
  std::iota(perm.begin(), perm.end(), std::ptrdiff_t{0});
  std::swap(perm[a], perm[b]);
  return zg::transpose(x, perm);
}

template <class T>
Var<T> tril(const Var<T>& x, std::ptrdiff_t diagonal) {
  return apply1<Tril<T>>({x}, diagonal);
}

template <class T>
Var<T> triu(const Var<T>& x, std::ptrdiff_t diagonal) {
  return apply1<Triu<T>>({x}, diagonal);
}

template <class T>
Var<T> masked_fill(const Var<T>& x, const Var<T>& mask, double value) {
  return apply1<MaskedFill<T>>({x, mask}, value);
}

template <class T>
Var<T> flatten(const Var<T>& x, std::ptrdiff_t start_axis) {
  const Shape s = x.shape();
  if (s.empty() && start_axis == 0) return zg::reshape(x, {1});
  const std::size_t a = axis_index(start_axis, s.size(), s, "flatten");
  Shape out(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(a));
  out.push_back(product(s.begin() + static_cast<std::ptrdiff_t>(a), s.end()));
  return zg::reshape(x, out);
}

template <class T>
Var<T> expand_dims(const Var<T>& x, std::ptrdiff_t axis) {
  Shape s = x.shape();
  const std::size_t a = axis_index(axis, s.size() + 1, s, "expand_dims");
  s.insert(s.begin() + static_cast<std::ptrdiff_t>(a), 1);
  return zg::reshape(x, s);
}

template <class T>
Var<T> squeeze(const Var<T>& x) {
  Shape s = x.shape();
  s.erase(std::remove(s.begin(), s.end(), std::size_t{1}), s.end());
  return zg::reshape(x, s);
}

template <class T>
Var<T> squeeze(const Var<T>& x, std::ptrdiff_t axis) {
  Shape s = x.shape();
  const std::size_t a = axis_index(axis, s.size(), s, "squeeze");
  if (s[a] != 1)
    throw ShapeError("squeeze: axis " + std::to_string(axis) + " of " + shape_str(s) + " has size " +
                     std::to_string(s[a]) + ", not 1");
  s.erase(s.begin() + static_cast<std::ptrdiff_t>(a));
  return zg::reshape(x, s);
}

template <class T>
Var<T> get_item(const Var<T>& x, const std::vector<Index>& indices) {
  return apply1<GetItem<T>>({x}, indices);
}

template <class T>
Var<T> get_item_grad(const Var<T>& gy, const std::vector<Index>& indices, const Shape& shape) {
  return apply1<GetItemGrad<T>>({gy}, indices, shape);
}

template <class T>
Var<T> concat(const std::vector<Var<T>>& xs, std::ptrdiff_t axis) {
  if (xs.empty()) throw ShapeError("Concat: needs at least one input");
  return apply<T>(std::make_shared<Concat<T>>(axis), xs)[0];
}

template <class T>
Var<T> stack(const std::vector<Var<T>>& xs, std::ptrdiff_t axis) {
  if (xs.empty()) throw ShapeError("stack: needs at least one input");
  std::vector<Var<T>> expanded;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (xs[i].shape() != xs[0].shape())
      throw ShapeError("stack: input " + std::to_string(i) + " has shape " + shape_str(xs[i].shape()) +
                       " but input 0 has shape " + shape_str(xs[0].shape()));
    expanded.push_back(zg::expand_dims(xs[i], axis));
  }
  return zg::concat(expanded, axis);
}

template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis) {
  return apply<T>(std::make_shared<Split<T>>(sizes, axis), {x});
}

#define ZG_INSTANTIATE(T)                                                                   \
  template Var<T> transpose(const Var<T>&);                                                 \
  template Var<T> transpose(const Var<T>&, const Axes&);                                    \
  template Var<T> permute(const Var<T>&, const Axes&);                                      \
  template Var<T> transpose(const Var<T>&, std::ptrdiff_t, std::ptrdiff_t);                 \
  template Var<T> tril(const Var<T>&, std::ptrdiff_t);                                      \
  template Var<T> triu(const Var<T>&, std::ptrdiff_t);                                      \
  template Var<T> masked_fill(const Var<T>&, const Var<T>&, double);                        \
  template Var<T> flatten(const Var<T>&, std::ptrdiff_t);                                   \
  template Var<T> expand_dims(const Var<T>&, std::ptrdiff_t);                               \
  template Var<T> squeeze(const Var<T>&);                                                   \
  template Var<T> squeeze(const Var<T>&, std::ptrdiff_t);                                   \
  template Var<T> get_item(const Var<T>&, const std::vector<Index>&);                       \
  template Var<T> get_item_grad(const Var<T>&, const std::vector<Index>&, const Shape&);    \
  template Var<T> concat(const std::vector<Var<T>>&, std::ptrdiff_t);                       \
  template Var<T> stack(const std::vector<Var<T>>&, std::ptrdiff_t);                        \
  template std::vector<Var<T>> split(const Var<T>&, const std::vector<std::size_t>&, std::ptrdiff_t);
ZG_FOR_FLOAT_AND_DOUBLE(ZG_INSTANTIATE)
#undef ZG_INSTANTIATE

}  // namespace zg
