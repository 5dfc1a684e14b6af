// Variable, Function and Outputs: the accessors (the algorithm is engine.cpp).
#include <sstream>

#include <xtensor/xio.hpp>

#include "zerograd/ops.hpp"

namespace zg {

template <class T>
Tensor<T> detail::from_values(const Shape& shape, const std::vector<T>& values) {
  Tensor<T> t = Tensor<T>::from_shape(shape);
  std::copy(values.begin(), values.end(), t.begin());
  return t;
}

template <class T>
BasicVariable<T>::BasicVariable(T scalar, std::string name)
    : BasicVariable(Tensor<T>(scalar), std::move(name)) {}

template <class T>
BasicVariable<T>::BasicVariable(Tensor<T> data, std::string name)
    : node_(std::make_shared<Node<T>>(std::move(data))) {
  if (!name.empty()) node_->name = std::make_unique<std::string>(std::move(name));
}


template <class T>
Node<T>& BasicVariable<T>::checked() const {
  if (!node_) throw Error("Variable: use of an empty Variable (default-constructed or a missing grad)");
  return *node_;
}

template <class T> const Tensor<T>& BasicVariable<T>::data() const { return checked().data; }
template <class T> Tensor<T>& BasicVariable<T>::data() { return checked().data; }

template <class T>
void BasicVariable<T>::set_data(Tensor<T> data) {
  Node<T>& n = checked();
  if (n.creator && data.shape() != n.data.shape())
    throw ShapeError("Variable::set_data: new data " + shape_str(data.shape()) +
                     " would not match the graph's shape " + shape_str(n.data.shape()));
  n.data = std::move(data);
}

template <class T> BasicVariable<T> BasicVariable<T>::grad() const { return checked().grad; }

template <class T>
void BasicVariable<T>::set_grad(BasicVariable grad) const {
  Node<T>& n = checked();
  if (grad.defined() && grad.shape() != shape())
    throw ShapeError("Variable::set_grad: grad " + shape_str(grad.shape()) +
                     " does not match data " + shape_str(shape()));
  n.grad = std::move(grad);
}

template <class T> void BasicVariable<T>::cleargrad() const { checked().grad = BasicVariable(); }
template <class T> const std::string& BasicVariable<T>::name() const { return checked().label(); }

template <class T>
BasicVariable<T>& BasicVariable<T>::set_name(std::string name) {
  Node<T>& n = checked();
  if (name.empty()) n.name.reset();
  else n.name = std::make_unique<std::string>(std::move(name));
  return *this;
}

template <class T>
Shape BasicVariable<T>::shape() const {
  const auto& s = checked().data.shape();
  return Shape(s.begin(), s.end());
}
template <class T> std::size_t BasicVariable<T>::ndim() const { return checked().data.dimension(); }
template <class T> std::size_t BasicVariable<T>::size() const { return checked().data.size(); }

template <class T>
T BasicVariable<T>::item() const {
  const Tensor<T>& d = checked().data;
  if (d.size() != 1)
    throw ValueError("Variable::item: needs exactly one element, the shape is " + shape_str(d.shape()));
  return d.data()[0];
}

template <class T> bool BasicVariable<T>::requires_grad() const { return checked().requires_grad; }

template <class T>
BasicVariable<T>& BasicVariable<T>::requires_grad_(bool on) {
  Node<T>& n = checked();
  if (n.creator && !on)
    throw ValueError("Variable::requires_grad_: '" + n.label() +
                     "' is not a leaf; use detach() to cut it from the graph");
  n.requires_grad = on;
  return *this;
}

template <class T>
std::shared_ptr<Function<T>> BasicVariable<T>::creator() const { return checked().creator; }
template <class T> int BasicVariable<T>::generation() const { return checked().generation; }

template <class T>
BasicVariable<T> BasicVariable<T>::detach() const {
  return BasicVariable(checked().data, checked().label());
}

template <class T>
template <class U>
BasicVariable<U> BasicVariable<T>::to() const {
  Tensor<U> converted = xt::cast<U>(checked().data);
  return BasicVariable<U>(std::move(converted), checked().label());
}

// Function

template <class T>
const typename Function<T>::Edge& Function<T>::edge(std::size_t i) const {
  if (i >= edges_.size())
    throw ValueError(name() + ": input " + std::to_string(i) + " requested, it has " +
                     std::to_string(edges_.size()));
  return edges_[i];
}

template <class T>
const BasicVariable<T>& Function<T>::input(std::size_t i) const {
  if (released_)
    throw Error(name() + ": its inputs were freed after backward; pass retain_graph = true "
                         "to the first backward to run it again");
  if (!edge(i).saved.defined())
    throw Error(name() + ": does not save its inputs (saves_inputs() is false), so backward cannot read input " +
                std::to_string(i) + "; use input_shape()");
  return edges_[i].saved;
}

template <class T>
Variables<T> Function<T>::inputs() const {
  Variables<T> out;
  out.reserve(edges_.size());
  for (const Edge& e : edges_)
    out.push_back(e.saved.defined() ? e.saved : e.creator->output(e.output_index));
  return out;
}

template <class T>
Shape Function<T>::input_shape(std::size_t i) const {
  const Edge& e = edge(i);
  return e.saved.defined() ? e.saved.shape() : e.shape;
}

template <class T>
const std::shared_ptr<Function<T>>& Function<T>::input_creator(std::size_t i) const {
  const Edge& e = edge(i);
  return e.saved.defined() ? e.saved.node()->creator : e.creator;
}

template <class T>
BasicVariable<T> Function<T>::output(std::size_t i) const {
  if (i >= num_outputs_) return BasicVariable<T>();
  return BasicVariable<T>(i == 0 ? output0_.lock() : more_->nodes[i - 1].lock());
}


template <class T>
Outputs<T>::Outputs(std::vector<Tensor<T>>&& ys) : size_(ys.size()) {
  if (ys.empty()) return;
  first_ = detail::output_node<T>(std::move(ys.front()));
  rest_.reserve(ys.size() - 1);
  for (std::size_t i = 1; i < ys.size(); ++i) rest_.push_back(std::move(ys[i]));
}

template <class T>
Tensor<T>& Outputs<T>::operator[](std::size_t i) {
  if (i >= size_) throw ValueError("Outputs: no output " + std::to_string(i) + " among " + std::to_string(size_));
  return i == 0 ? first_->data : rest_[i - 1];
}

template <class T>
std::string to_string(const Tensor<T>& t) {
  std::ostringstream out;
  out << t;
  return out.str();
}

template <class T>
std::ostream& operator<<(std::ostream& out, const BasicVariable<T>& v) {
  if (!v.defined()) return out << "Variable(empty)";
  out << (std::is_same_v<T, float> ? "Variable(" : "Variable64(");
  if (!v.name().empty()) out << v.name() << ", ";
  return out << "shape=" << shape_str(v.shape()) << ", " << to_string(v.data()) << ")";
}

#define ZG_INSTANTIATE(T)                                                    \
  template Tensor<T> detail::from_values(const Shape&, const std::vector<T>&); \
  template std::string to_string(const Tensor<T>&);                          \
  template std::ostream& operator<<(std::ostream&, const BasicVariable<T>&); \
  template class BasicVariable<T>;                                           \
  template class Outputs<T>;                                                 \
  template Variables<T> Function<T>::inputs() const;                         \
  template const BasicVariable<T>& Function<T>::input(std::size_t) const;    \
  template Shape Function<T>::input_shape(std::size_t) const;                \
  template const std::shared_ptr<Function<T>>& Function<T>::input_creator(std::size_t) const; \
  template BasicVariable<T> Function<T>::output(std::size_t) const;
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE
template BasicVariable<double> BasicVariable<float>::to<double>() const;
template BasicVariable<float> BasicVariable<float>::to<float>() const;
template BasicVariable<float> BasicVariable<double>::to<float>() const;
template BasicVariable<double> BasicVariable<double>::to<double>() const;

}  // namespace zg
