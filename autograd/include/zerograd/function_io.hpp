#pragma once
/// @file
/// What a Function's forward takes (TensorList) and returns (Outputs).
#include <array>
#include <cstddef>
#include <memory>
#include <vector>

#include <xtensor/xnoalias.hpp>

#include "zerograd/variable.hpp"

namespace zg {

namespace detail {
// Nodes for a forward's outputs, made as the running apply asks (Note [Output nodes]).
template <class T> std::shared_ptr<Node<T>> output_node(Tensor<T>&& data);
template <class T> std::shared_ptr<Node<T>> output_node(const std::size_t* dims, std::size_t ndim);  // uninitialized
}  // namespace detail

/// Read-only list of a Function's input arrays (a view of the caller's arrays
/// for the duration of forward).
template <class T>
class TensorList {
 public:
  TensorList(const Tensor<T>* const* items, std::size_t n) : items_(items), size_(n) {}  ///< n arrays at items
  /// The arrays in items.
  explicit TensorList(const std::vector<const Tensor<T>*>& items) : items_(items.data()), size_(items.size()) {}
  const Tensor<T>& operator[](std::size_t i) const { return *items_[i]; }  ///< input i
  std::size_t size() const { return size_; }  ///< how many inputs

 private:
  const Tensor<T>* const* items_;
  std::size_t size_;
};

/// What forward returns: an array or an xtensor expression (evaluated
/// straight into the graph node that will hold it), or several arrays.
template <class T>
class Outputs {
 public:
  Outputs() = default;  ///< none
  /// One output, y moved into its node.
  Outputs(Tensor<T>&& y) : first_(detail::output_node<T>(std::move(y))), size_(1) {}
  Outputs(const Tensor<T>& y) : Outputs(Tensor<T>(y)) {}  ///< one output, a copy of y
  /// One output, e evaluated into its node.
  template <class E>
  Outputs(const xt::xexpression<E>& e) : first_(node_shaped_like(e.derived_cast().shape())), size_(1) {
    xt::noalias(first_->data) = e.derived_cast();
  }
  Outputs(std::vector<Tensor<T>>&& ys);  ///< several outputs, in order
  /// One output of this shape, not initialized: forward fills y[0].
  template <class S>
  static Outputs uninitialized(const S& shape) {
    Outputs y;
    y.first_ = node_shaped_like(shape);
    y.size_ = 1;
    return y;
  }
  Outputs(Outputs&&) noexcept = default;  ///< movable
  Outputs& operator=(Outputs&&) noexcept = default;  ///< movable
  std::size_t size() const { return size_; }  ///< how many outputs
  Tensor<T>& operator[](std::size_t i);  ///< output i
  const Tensor<T>& operator[](std::size_t i) const { return const_cast<Outputs&>(*this)[i]; }  ///< output i

 private:
  template <class U> friend struct ApplyCore;
  template <class S>
  static std::shared_ptr<Node<T>> node_shaped_like(const S& shape) {
    std::size_t dims[8];
    const std::size_t n = static_cast<std::size_t>(shape.end() - shape.begin());
    if (n > 8) return detail::output_node<T>(Shape(shape.begin(), shape.end()).data(), n);
    for (std::size_t d = 0; d < n; ++d) dims[d] = static_cast<std::size_t>(shape.begin()[d]);
    return detail::output_node<T>(dims, n);
  }
  std::shared_ptr<Node<T>> first_;  // the first output, already in its node
  std::vector<Tensor<T>> rest_;
  std::size_t size_ = 0;
};

}  // namespace zg
