#pragma once
// The autograd core: Variable handles, graph nodes, Function and the backward
// engine's public options. Rules the engine keeps are written as Note: blocks
// in autograd/src/engine.cpp.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/memory/xsimd_aligned_allocator.hpp>
#include <xtensor/xarray.hpp>

#include "zerograd/error.hpp"

namespace zg {

// Note [Fixed alignment]: xt::xarray<T>'s default allocator follows the
// compiler's arch flags (xsimd's alignment is 16, 32 or 64 bytes), so its
// type, and every signature using it, would change with -march. Tensor's
// allocator is fixed at 64 bytes (enough for any SIMD width): the library
// is built with its own arch flags inside, and a program built with none,
// or others, links to it and shares arrays with it.
template <class T>
using Tensor = xt::xarray<T, xt::layout_type::row_major, xsimd::aligned_allocator<T, 64>>;

template <class T> class BasicVariable;
template <class T> class Function;
template <class T> struct ApplyCore;  // engine.cpp: forward and graph recording

// Removes the hook it was returned for (a second remove() does nothing).
// Dropping the handle keeps the hook, as PyTorch's RemovableHandle does.
class HookHandle {
 public:
  HookHandle() = default;
  explicit HookHandle(std::function<void()> remove) : remove_(std::move(remove)) {}
  void remove() {
    auto r = std::move(remove_);
    remove_ = nullptr;
    if (r) r();
  }

 private:
  std::function<void()> remove_;
};

namespace detail {

// Sets a thread-local mode to Value for one scope, then puts back what it was.
template <bool (*Get)(), void (*Set)(bool), bool Value>
class ModeGuard {
 public:
  ModeGuard() : previous_(Get()) { Set(Value); }
  ~ModeGuard() { Set(previous_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  bool previous_;
};

// An array of the shape and values of a nested list (Variable's list
// constructors); a ragged list throws ShapeError.
template <class T>
Tensor<T> from_values(const Shape& shape, const std::vector<T>& values);  // engine.cpp
template <class T, class U>
void flatten_lists(const U& v, std::size_t, Shape&, std::vector<T>& values) {
  values.push_back(static_cast<T>(v));
}
template <class T, class L>
void flatten_lists(std::initializer_list<L> l, std::size_t depth, Shape& shape, std::vector<T>& values) {
  if (shape.size() == depth) shape.push_back(l.size());
  else if (shape[depth] != l.size())
    throw ShapeError("Variable: a nested list with rows of " + std::to_string(shape[depth]) + " and of " +
                     std::to_string(l.size()) + " values at depth " + std::to_string(depth));
  for (const L& x : l) flatten_lists<T>(x, depth + 1, shape, values);
}
template <class T, class L>
Tensor<T> from_lists(std::initializer_list<L> l) {
  Shape shape;
  std::vector<T> values;
  flatten_lists<T>(l, 0, shape, values);
  return from_values<T>(shape, values);
}

}  // namespace detail

// Grad mode (thread-local)

bool is_grad_enabled();
void set_grad_enabled(bool enabled);

// While alive, no op records a graph: no creator and no inputs are stored.
using NoGradGuard = detail::ModeGuard<is_grad_enabled, set_grad_enabled, false>;

// While alive, ops record a graph even inside a NoGradGuard.
using EnableGradGuard = detail::ModeGuard<is_grad_enabled, set_grad_enabled, true>;

// Keeping intermediates (thread-local)

bool is_keep_intermediates_enabled();
void set_keep_intermediates(bool enabled);

// While alive, every Function recorded keeps its inputs themselves, also
// those whose backward needs only shapes (Add, Sub, Neg, x + c, x * c), so
// every intermediate stays reachable from the graph: Function::input(i),
// inputs(), the step observers and to_dot's values see it. For narrating or
// drawing a graph; it costs memory on long graphs (Note [Saved inputs]).
using KeepIntermediatesGuard = detail::ModeGuard<is_keep_intermediates_enabled, set_keep_intermediates, true>;

// Anomaly mode (thread-local)

bool is_anomaly_enabled();
void set_anomaly_enabled(bool enabled);

// While alive, a NaN or Inf produced by any forward or backward throws a
// ValueError naming the Function, the pass and the first bad element.
using AnomalyModeGuard = detail::ModeGuard<is_anomaly_enabled, set_anomaly_enabled, true>;

// Graph node

template <class T>
struct Node;

// A cheap handle to a graph node: copying a Variable shares the node.
template <class T>
class BasicVariable {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "zerograd Variables hold float (Variable) or double (Variable64)");

 public:
  using value_type = T;

  BasicVariable() = default;  // an empty handle: defined() is false
  BasicVariable(T scalar, std::string name = {});
  BasicVariable(Tensor<T> data, std::string name = {});
  // From nested lists of numbers of one type, up to four deep: {1, 2},
  // {{1, 2}, {3, 4}}, a 3x1 column {{1.}, {2.}, {3.}}.
  template <class U, class = std::enable_if_t<std::is_arithmetic_v<U>>>
  BasicVariable(std::initializer_list<U> values, std::string name = {})
      : BasicVariable(detail::from_lists<T>(values), std::move(name)) {}
  template <class U, class = std::enable_if_t<std::is_arithmetic_v<U>>>
  BasicVariable(std::initializer_list<std::initializer_list<U>> values, std::string name = {})
      : BasicVariable(detail::from_lists<T>(values), std::move(name)) {}
  template <class U, class = std::enable_if_t<std::is_arithmetic_v<U>>>
  BasicVariable(std::initializer_list<std::initializer_list<std::initializer_list<U>>> values, std::string name = {})
      : BasicVariable(detail::from_lists<T>(values), std::move(name)) {}
  template <class U, class = std::enable_if_t<std::is_arithmetic_v<U>>>
  BasicVariable(std::initializer_list<std::initializer_list<std::initializer_list<std::initializer_list<U>>>> values,
                std::string name = {})
      : BasicVariable(detail::from_lists<T>(values), std::move(name)) {}

  bool defined() const { return node_ != nullptr; }

  const Tensor<T>& data() const;
  Tensor<T>& data();  // in-place writes bypass the graph (optimizers use this)
  void set_data(Tensor<T> data);

  // The gradient, an empty Variable until a backward pass reaches this node.
  BasicVariable grad() const;
  void set_grad(BasicVariable grad) const;
  void cleargrad() const;

  const std::string& name() const;
  BasicVariable& set_name(std::string name);

  Shape shape() const;
  std::size_t ndim() const;
  std::size_t size() const;
  T item() const;  // the only element of a one-element Variable

  bool requires_grad() const;
  // Marks a leaf as needing a gradient (PyTorch's requires_grad_()).
  BasicVariable& requires_grad_(bool on = true);

  // The Function that made this Variable (null for leaves and under no_grad).
  std::shared_ptr<Function<T>> creator() const;
  int generation() const;

  // A new leaf holding the same values, cut from the graph.
  BasicVariable detach() const;
  // Explicit conversion between float and double (a leaf, cut from the graph).
  template <class U>
  BasicVariable<U> to() const;

  struct BackwardStep;
  struct BackwardOptions;
  void backward() const;
  void backward(const BackwardOptions& options) const;

  // Note [Hooks] (engine.cpp). fn sees the whole gradient flowing into this
  // Variable in a backward or grad() and returns it, or a replacement of
  // the same shape (an empty Variable keeps it unchanged).
  HookHandle register_hook(std::function<BasicVariable(const BasicVariable&)> fn) const;
  // For a leaf: fn(leaf) runs once per backward, after leaf.grad() is final.
  HookHandle register_post_accumulate_grad_hook(std::function<void(const BasicVariable&)> fn) const;

  // Identity of the node, for maps and graph drawing.
  const Node<T>* id() const { return node_.get(); }
  const std::shared_ptr<Node<T>>& node() const { return node_; }
  explicit BasicVariable(std::shared_ptr<Node<T>> node) : node_(std::move(node)) {}

 private:
  Node<T>& checked() const;
  std::shared_ptr<Node<T>> node_;
};

using Variable = BasicVariable<float>;
using Variable64 = BasicVariable<double>;
template <class T>
using Var = BasicVariable<T>;  // short form used in op signatures
using Axes = std::vector<std::ptrdiff_t>;

namespace detail {
template <class T>
struct NodeHooks;  // engine.cpp
template <class T>
struct DeleteHooks {  // defined where NodeHooks is complete
  void operator()(NodeHooks<T>* h) const;
};
}  // namespace detail

template <class T>
struct Node {
  Tensor<T> data;
  BasicVariable<T> grad;
  std::shared_ptr<Function<T>> creator;
  std::unique_ptr<std::string> name;  // null when unnamed, as most intermediates are
  std::unique_ptr<detail::NodeHooks<T>, detail::DeleteHooks<T>> hooks;  // null unless a hook was registered
  int generation = 0;
  std::uint32_t output_index = 0;  // position among creator's outputs
  bool requires_grad = false;

  Node() = default;
  explicit Node(Tensor<T>&& d) : data(std::move(d)) {}  // one move: xarray moves are not free
  explicit Node(const Tensor<T>& d) : data(d) {}
  // data is what make() returns, built in place (Note [Outputs in place]).
  template <class Make>
  Node(std::in_place_t, Make& make) : data(make()) {}
  ~Node();  // tears the creator chain down iteratively (engine.cpp)
  const std::string& label() const {
    static const std::string unnamed;
    return name ? *name : unnamed;
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
};

namespace detail {
// A Node allocated as Note [Saved inputs] (engine.cpp) requires: apart from
// its count block when recorded, since its creator's weak reference keeps
// that block alive; in one block with it (make_shared) otherwise.
template <class T, class... Args>
std::shared_ptr<Node<T>> make_node(bool recorded, Args&&... args) {
  if (!recorded) return std::make_shared<Node<T>>(std::forward<Args>(args)...);
  return std::shared_ptr<Node<T>>(new Node<T>(std::forward<Args>(args)...));
}
}  // namespace detail

// Prints "Variable(name, shape, values)" ; values via xtensor's printer.
template <class T>
std::ostream& operator<<(std::ostream& out, const BasicVariable<T>& v);
// Prints an array the way xtensor does.
template <class T>
std::string to_string(const Tensor<T>& t);

// Function

namespace detail {
// How the engine will hold a Function's first output (Note [Outputs in place]).
enum class OutputNode : std::uint8_t {
  none,        // forward was not called by the engine
  unrecorded,  // a Node sharing its allocation with its count (make_shared)
  recorded,    // a Node allocated apart from its count (Note [Saved inputs])
};
}  // namespace detail

// Read-only list of a Function's input arrays (a view: it refers to the
// caller's arrays for the duration of forward).
template <class T>
class TensorList {
 public:
  TensorList(const Tensor<T>* const* items, std::size_t n, detail::OutputNode node = detail::OutputNode::none)
      : items_(items), size_(n), output_node_(node) {}
  explicit TensorList(const std::vector<const Tensor<T>*>& items) : items_(items.data()), size_(items.size()) {}
  const Tensor<T>& operator[](std::size_t i) const { return *items_[i]; }
  std::size_t size() const { return size_; }
  detail::OutputNode output_node() const { return output_node_; }

 private:
  const Tensor<T>* const* items_;
  std::size_t size_;
  detail::OutputNode output_node_ = detail::OutputNode::none;
};

namespace detail {
// Throws the ValueError for Outputs[i] with only n outputs (engine.cpp).
[[noreturn]] void outputs_index_error(std::size_t i, std::size_t n);
}  // namespace detail

// What forward returns: one array, or several for multi-output Functions.
// The first is held inline: a single-output op allocates no list.
//
// Note [Outputs in place]: an xarray move swaps three small vectors (shape,
// strides, backstrides), some 20 ns, a sixth of a small matmul's engine
// overhead. Outputs(xs, make) therefore builds the first output straight
// inside the Node that the engine will hold it in, allocated the way the
// engine asked through xs (Note [Saved inputs]); called outside the
// engine, it holds the array like Outputs(Tensor&&).
template <class T>
class Outputs {
 public:
  Outputs() = default;
  Outputs(Tensor<T>&& y) : first_(std::move(y)), size_(1) {}
  Outputs(const Tensor<T>& y) : first_(y), size_(1) {}
  template <class E>
  Outputs(const xt::xexpression<E>& e) : first_(std::in_place, e), size_(1) {}
  template <class Make, class = std::enable_if_t<std::is_invocable_r_v<Tensor<T>, Make&>>>
  Outputs(const TensorList<T>& xs, Make&& make) : size_(1) {
    if (xs.output_node() == detail::OutputNode::none) first_.emplace(make());
    else node_ = detail::make_node<T>(xs.output_node() == detail::OutputNode::recorded, std::in_place, make);
  }
  Outputs(std::vector<Tensor<T>>&& ys) : size_(ys.size()) {
    if (ys.empty()) return;
    first_.emplace(std::move(ys.front()));
    rest_.reserve(ys.size() - 1);
    for (std::size_t i = 1; i < ys.size(); ++i) rest_.push_back(std::move(ys[i]));
  }
  // Move-only: a copy would share an output built in place.
  Outputs(Outputs&&) noexcept = default;
  Outputs& operator=(Outputs&&) noexcept = default;
  Outputs(const Outputs&) = delete;
  Outputs& operator=(const Outputs&) = delete;
  std::size_t size() const { return size_; }
  Tensor<T>& operator[](std::size_t i) {
    if (i >= size_) detail::outputs_index_error(i, size_);
    return i == 0 ? first() : rest_[i - 1];
  }
  const Tensor<T>& operator[](std::size_t i) const {
    if (i >= size_) detail::outputs_index_error(i, size_);
    return i == 0 ? first() : rest_[i - 1];
  }

 private:
  template <class U>
  friend struct ApplyCore;
  Tensor<T>& first() { return node_ ? node_->data : *first_; }
  const Tensor<T>& first() const { return node_ ? node_->data : *first_; }
  std::optional<Tensor<T>> first_;  // the first output, unless it is in node_
  std::shared_ptr<Node<T>> node_;   // the first output's Node, built in place
  std::vector<Tensor<T>> rest_;
  std::size_t size_ = 0;
};

template <class T>
using Variables = std::vector<BasicVariable<T>>;

// An operation in the graph. Subclasses implement forward on raw arrays and
// backward on Variables, so that backward itself can be recorded
// (create_graph) and differentiated again.
template <class T>
class Function {
 public:
  using value_type = T;
  virtual ~Function();  // tears long chains down iteratively (engine.cpp)
  virtual std::string name() const = 0;
  virtual Outputs<T> forward(const TensorList<T>& xs) = 0;
  // gys[i] is the gradient of output i. Return one gradient per input, in
  // input order; an empty Variable where an input needs none.
  virtual Variables<T> backward(const Variables<T>& gys) = 0;
  // Whether backward reads its inputs (input(i)). A Function whose backward
  // needs only their shapes (Add, Sub, Neg, AddConst, MulConst) returns
  // false: it keeps no reference to its inputs, so an intermediate nobody
  // else holds is freed at once, as in PyTorch (Note [Saved inputs]).
  virtual bool saves_inputs() const { return true; }
  // Drops what backward needed. The engine calls it after backward unless the
  // graph is retained; override it to free extra saved arrays too.
  virtual void release() { edges_.clear(); }
  // Attributes shown in graph drawings, e.g. "axes=(1)".
  virtual std::string attributes() const { return {}; }

  // The inputs that still exist: every input of a Function that saves them;
  // otherwise an empty Variable for an intermediate that has been freed.
  Variables<T> inputs() const;
  // Input i, for backward; only for Functions that save their inputs.
  const BasicVariable<T>& input(std::size_t i) const;
  Shape input_shape(std::size_t i) const;
  // The Function that made input i (null for a leaf), whether or not the
  // input itself still exists.
  const std::shared_ptr<Function<T>>& input_creator(std::size_t i) const;
  BasicVariable<T> output(std::size_t i) const;  // empty if that output died
  std::size_t num_inputs() const { return edges_.size(); }
  std::size_t num_outputs() const { return num_outputs_; }
  bool needs_input_grad(std::size_t i) const { return i < edges_.size() && edges_[i].requires_grad; }
  int generation() const { return generation_; }
  bool released() const { return released_; }

 private:
  template <class U>
  friend struct Engine;
  template <class U>
  friend struct ApplyCore;
  // Outputs after the first, and the shapes of all outputs (a missing
  // output gradient becomes zeros of that shape): multi-output only.
  struct MoreOutputs {
    std::vector<std::weak_ptr<Node<T>>> nodes;
    std::vector<Shape> shapes;
  };
  // Where input i came from. `saved` holds the input itself when the
  // Function saves its inputs, and always for a leaf (its .grad is written);
  // otherwise the graph keeps only its creator, its output index and its
  // shape; creator->output(output_index) finds the input while somebody else
  // still holds it.
  struct Edge {
    BasicVariable<T> saved;
    std::shared_ptr<Function<T>> creator;
    Shape shape;  // only when not saved
    std::uint32_t output_index = 0;
    bool requires_grad = false;
  };
  std::vector<Edge> edges_;
  const Edge& edge(std::size_t i) const;  // throws ValueError naming the Function when i is out of range
  std::weak_ptr<Node<T>> output0_;
  std::unique_ptr<MoreOutputs> more_;
  int generation_ = 0;
  std::uint32_t num_outputs_ = 0;
  // 1 + this Function's row in the table of the engine that has it pending
  // (engine_ says which); 0 when no backward has it pending.
  std::uint32_t engine_row_ = 0;
  const void* engine_ = nullptr;
  bool released_ = false;
};

namespace detail {
// An input of apply1: refers to the caller's Variable instead of copying
// the handle. A copy is an atomic increment and decrement, 12 ns per
// input, a tenth of a small matmul's whole overhead; the caller's Variable
// (a temporary too) lives until the end of the full expression that calls
// apply1, which outlasts the call.
template <class T>
class InputRef {
 public:
  InputRef() = default;  // refers to nothing: only for filling arrays
  InputRef(const BasicVariable<T>& v) : v_(&v) {}
  const BasicVariable<T>& operator*() const { return *v_; }
  const BasicVariable<T>* operator->() const { return v_; }

 private:
  const BasicVariable<T>* v_ = nullptr;
};
}  // namespace detail

// Runs f forward on the inputs and, when recording, links it into the graph.
template <class T>
Variables<T> apply(std::shared_ptr<Function<T>> f, Variables<T> inputs);
// The same for inputs[0, n), returning only the first output (no lists).
template <class T>
BasicVariable<T> apply_one(std::shared_ptr<Function<T>> f, const detail::InputRef<T>* inputs, std::size_t n);

namespace detail {
// Whether a Function applied to inputs[0, n) is recorded in the graph.
template <class T>
bool records(const InputRef<T>* inputs, std::size_t n) {
  if (!is_grad_enabled()) return false;
  for (std::size_t i = 0; i < n; ++i)
    if (inputs[i]->defined() && inputs[i]->node()->requires_grad) return true;
  return false;
}
// apply_one for a Function that records == false: nothing keeps f after its
// forward, so it may live on the caller's stack.
template <class T>
BasicVariable<T> apply_unrecorded(Function<T>& f, const InputRef<T>* inputs, std::size_t n);
}  // namespace detail

// Note [Unrecorded ops]: when nothing is recorded (NoGradGuard, backward
// without create_graph, inputs that need no grad) the Function is built on
// the stack, not the heap: two allocations fewer per op.
template <class Op, class... Args>
BasicVariable<typename Op::value_type> apply1(std::initializer_list<detail::InputRef<typename Op::value_type>> inputs,
                                              Args&&... args) {
  using T = typename Op::value_type;
  if (!detail::records(inputs.begin(), inputs.size())) {
    Op op(std::forward<Args>(args)...);
    return detail::apply_unrecorded<T>(op, inputs.begin(), inputs.size());
  }
  return apply_one<T>(std::make_shared<Op>(std::forward<Args>(args)...), inputs.begin(), inputs.size());
}

// Backward

// What the step observer sees for each Function the engine runs.
template <class T>
struct BasicVariable<T>::BackwardStep {
  const Function<T>& function;
  const Variables<T>& inputs;
  const Variables<T>& outputs;  // an entry is empty if that output died
  const Variables<T>& output_grads;  // upstream gradients, one per output
  const Variables<T>& input_grads;   // what backward sends to each input
};

template <class T>
struct BasicVariable<T>::BackwardOptions {
  BasicVariable<T> seed;      // default: ones shaped like the output
  bool retain_grad = false;   // also keep gradients of intermediate Variables
  bool retain_graph = false;  // keep the graph for another backward
  bool create_graph = false;  // record backward itself (higher-order grads)
  std::function<void(const BackwardStep&)> observer;
};

template <class T>
using BackwardOptions = typename BasicVariable<T>::BackwardOptions;

struct GradOptions {
  std::optional<bool> retain_graph;  // default: create_graph
  bool create_graph = false;
  bool allow_unused = false;  // an input the outputs do not depend on gets an empty Variable
};

// The gradients of outputs (seeded with grad_outputs, default ones) with
// respect to inputs, leaves or not, as PyTorch's torch.autograd.grad: no
// .grad is read or written, and only the part of the graph between them runs.
template <class T>
Variables<T> grad(const Variables<T>& outputs, const Variables<T>& inputs, const Variables<T>& grad_outputs = {},
                  const GradOptions& options = {});
template <class T>
Variables<T> grad(const BasicVariable<T>& output, const Variables<T>& inputs, const Variables<T>& grad_outputs = {},
                  const GradOptions& options = {}) {
  return grad<T>(Variables<T>{output}, inputs, grad_outputs, options);
}
template <class T>
using BackwardStep = typename BasicVariable<T>::BackwardStep;

// Forward observer (thread-local)

template <class T>
struct ForwardStep {
  const Function<T>& function;
  const Variables<T>& inputs;
  const Variables<T>& outputs;
};

// While alive, fn is called after every forward of a Function in this thread
// (float or double, as T says).
template <class T>
class ForwardObserverGuard {
 public:
  explicit ForwardObserverGuard(std::function<void(const ForwardStep<T>&)> fn);
  ~ForwardObserverGuard();
  ForwardObserverGuard(const ForwardObserverGuard&) = delete;
  ForwardObserverGuard& operator=(const ForwardObserverGuard&) = delete;

 private:
  std::function<void(const ForwardStep<T>&)> fn_;
  std::function<void(const ForwardStep<T>&)>* previous_;
};

// Mixing float and double in one op is a compile-time error naming both.
template <class A, class B>
struct MixedDTypes {
  static_assert(std::is_same_v<A, B>,
                "zerograd: an op received a float Variable and a double Variable (Variable "
                "and Variable64); convert one explicitly with .to<float>() or .to<double>()");
};

}  // namespace zg
