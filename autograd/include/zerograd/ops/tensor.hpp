#pragma once
/// @file
/// Axes, indexing, joining and splitting: autograd/src/ops/tensor.cpp.
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <type_traits>
#include <variant>
#include <vector>

#include "zerograd/variable.hpp"

namespace zg {

// Axes
/// Reverses the axes (a matrix transpose for 2-D; 0-d and 1-d are returned as is).
template <class T> Var<T> transpose(const Var<T>& x);
/// y.shape[i] = x.shape[axes[i]]; axes is a permutation of x's axes, negatives allowed.
template <class T> Var<T> transpose(const Var<T>& x, const Axes& axes);
template <class T> Var<T> permute(const Var<T>& x, const Axes& axes);  ///< same as transpose
/// Swaps two axes (negatives count from the end), as torch.transpose(x, dim0, dim1).
template <class T> Var<T> transpose(const Var<T>& x, std::ptrdiff_t dim0, std::ptrdiff_t dim1);
/// Keeps the axes before start_axis and flattens the rest into one:
/// (N, C, H, W) -> (N, C*H*W) by default. A 0-d x becomes (1).
template <class T> Var<T> flatten(const Var<T>& x, std::ptrdiff_t start_axis = 1);
/// Inserts a size-1 axis at position axis of the result (-1 appends one).
template <class T> Var<T> expand_dims(const Var<T>& x, std::ptrdiff_t axis);
///@{
/// Removes every size-1 axis, or only the given one (which must have size 1).
template <class T> Var<T> squeeze(const Var<T>& x);
template <class T> Var<T> squeeze(const Var<T>& x, std::ptrdiff_t axis);
///@}

// Indexing
/// A Python slice, start:stop:step, with its semantics: open ends are std::nullopt, negative bounds count from
/// the end, out-of-range bounds are clipped, step may be negative but not 0.
/// @code
///   Slice{}           x[:]        Slice{1, 3}       x[1:3]
///   Slice{-2, {}}     x[-2:]      Slice{{}, {}, -1} x[::-1]
/// @endcode
struct Slice {
  ///@{
  /// The bounds; std::nullopt is an open end.
  std::optional<std::ptrdiff_t> start, stop;
  ///@}
  std::ptrdiff_t step = 1;  ///< not 0
};

/// One axis of a get_item index, as in numpy:
/// - an integer (5, -1) takes one position and removes the axis;
/// - a Slice keeps the axis;
/// - an index array ({0, 0, 2}, or a std::vector<std::ptrdiff_t>) replaces the
///   axis, in place, by one entry per index; repeats are allowed.
///
/// So get_item(x, {1}) is x[1] and get_item(x, {{1}}) is x[[1]], like numpy.
/// A default Index is the whole axis.
class Index {
 public:
  using Array = std::vector<std::ptrdiff_t>;  ///< an index array
  Index() : value_(Slice{}) {}  ///< the whole axis
  template <class I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  Index(I position) : value_(static_cast<std::ptrdiff_t>(position)) {}  ///< one position (negative counts from the end)
  Index(Slice slice) : value_(slice) {}  ///< a slice
  Index(Array positions) : value_(std::move(positions)) {}  ///< an index array
  Index(std::initializer_list<std::ptrdiff_t> positions) : value_(Array(positions)) {}  ///< an index array, braced

  bool is_integer() const { return std::holds_alternative<std::ptrdiff_t>(value_); }  ///< whether it is one position
  bool is_slice() const { return std::holds_alternative<Slice>(value_); }  ///< whether it is a Slice
  bool is_array() const { return std::holds_alternative<Array>(value_); }  ///< whether it is an index array
  std::ptrdiff_t integer() const { return std::get<std::ptrdiff_t>(value_); }  ///< the position, if is_integer()
  const Slice& slice() const { return std::get<Slice>(value_); }  ///< the Slice, if is_slice()
  const Array& array() const { return std::get<Array>(value_); }  ///< the index array, if is_array()

 private:
  std::variant<std::ptrdiff_t, Slice, Array> value_;
};

/// x[indices...]: one Index per leading axis; axes without one are taken whole.
/// At most one index array per call (numpy would pair several arrays up; that
/// is not supported). Unlike numpy, an index array's axis always stays in
/// place, also when a slice separates it from an integer index.
/// Out-of-range integers and array entries throw ShapeError naming the axis.
template <class T> Var<T> get_item(const Var<T>& x, const std::vector<Index>& indices);
/// The backward of get_item: zeros of `shape` with gy added at the indexed
/// positions (repeated indices accumulate).
template <class T>
Var<T> get_item_grad(const Var<T>& gy, const std::vector<Index>& indices, const Shape& shape);

// Masks
/// The lower (tril) or upper (triu) triangle of each matrix in the last two
/// axes, zeros elsewhere, as torch.tril / torch.triu: element (i, j) is kept
/// when j - i <= diagonal (tril) or j - i >= diagonal (triu); diagonal 0 is
/// the main diagonal, positive ones lie above it. x needs 2 or more
/// dimensions (ShapeError otherwise). Functions "Tril" and "Triu"; the
/// gradient is the same triangle of the upstream gradient.
template <class T> Var<T> tril(const Var<T>& x, std::ptrdiff_t diagonal = 0);
template <class T> Var<T> triu(const Var<T>& x, std::ptrdiff_t diagonal = 0);  ///< the upper triangle, as tril above
/// value where mask is nonzero (true), x elsewhere, as Tensor.masked_fill.
/// mask is a 0/1 Variable (a comparison's result, say) that broadcasts to x's
/// shape, which the result keeps; ShapeError naming both shapes otherwise.
/// value may be -infinity (attention scores). Function "MaskedFill": x's
/// gradient is the upstream gradient with the filled positions zeroed; the
/// mask gets none.
template <class T> Var<T> masked_fill(const Var<T>& x, const Var<T>& mask, double value);

// Joining and splitting
/// Joins along an existing axis; every other axis must match.
template <class T> Var<T> concat(const std::vector<Var<T>>& xs, std::ptrdiff_t axis = 0);
/// Joins same-shaped inputs along a new axis (axis may be -1 for a new last axis).
template <class T> Var<T> stack(const std::vector<Var<T>>& xs, std::ptrdiff_t axis = 0);
/// Pieces of the given lengths along axis; they must sum to that axis's length.
template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis = 0);

namespace detail {
// `sections` equal lengths for axis of shape; ShapeError if they do not divide it.
std::vector<std::size_t> equal_sections(const Shape& shape, std::ptrdiff_t sections, std::ptrdiff_t axis);
}  // namespace detail

/// `sections` equal pieces along axis (split(x, 3) is three pieces; a braced
/// list, split(x, {3}), is a list of sizes).
template <class T, class I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
std::vector<Var<T>> split(const Var<T>& x, I sections, std::ptrdiff_t axis = 0) {
  return zg::split(x, detail::equal_sections(x.shape(), static_cast<std::ptrdiff_t>(sections), axis), axis);
}

}  // namespace zg
