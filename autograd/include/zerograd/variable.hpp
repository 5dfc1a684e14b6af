#pragma once
/// @file
/// The autograd core: grad mode, Variable, Node, Function, backward's options.
/// The engine's rules are the Note: blocks atop autograd/src/engine/engine.cpp.
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

#include "zerograd/error.hpp"
#include "zerograd/hook_handle.hpp"
#include "zerograd/mode_guard.hpp"
#include "zerograd/tensor.hpp"

namespace zg {

template <class T> class BasicVariable;
template <class T> class Function;
template <class T> struct Node;
/// @cond ENGINE_INTERNALS
template <class T> struct ApplyCore;  // engine.cpp: forward and graph recording
/// @endcond
template <class T> struct ForwardStep;  // zerograd/observer.hpp
template <class T> class TensorList;   // zerograd/function_io.hpp: what forward takes
template <class T> class Outputs;      // and returns
/// A list of Variables: Functions' inputs, outputs and gradients.
template <class T> using Variables = std::vector<BasicVariable<T>>;
using Axes = std::vector<std::ptrdiff_t>;  ///< axes of a reduction or permutation; negative ones count from the end
/// Named numbers, what Function::fields() returns (Note [Op fields]).
using OpFields = std::vector<std::pair<std::string, std::vector<double>>>;
/// One field's numbers from a number.
template <class N, class = std::enable_if_t<std::is_arithmetic_v<N>>>
std::vector<double> field_of(N n) { return {static_cast<double>(n)}; }
/// One field's numbers from a list of them (a Shape, Axes, ...).
template <class C, class = decltype(std::declval<const C&>().begin())>
std::vector<double> field_of(const C& c) { return std::vector<double>(c.begin(), c.end()); }

namespace detail {
template <class T> struct NodeHooks;  // hooks.cpp
template <class T> struct DeleteHooks { void operator()(NodeHooks<T>* h) const; };
}  // namespace detail

// Modes (thread-local): grad recording, keeping intermediates; anomaly
// checks are in zerograd/anomaly.hpp.
/// Whether ops record a graph in this thread (true unless turned off).
bool is_grad_enabled();
void set_grad_enabled(bool enabled);  ///< for this thread; NoGradGuard sets it for a scope
/// While alive, no op records a graph: no creator and no inputs are stored.
using NoGradGuard = detail::ModeGuard<is_grad_enabled, set_grad_enabled, false>;
/// While alive, ops record a graph even inside a NoGradGuard.
using EnableGradGuard = detail::ModeGuard<is_grad_enabled, set_grad_enabled, true>;

bool is_keep_intermediates_enabled();  ///< whether KeepIntermediatesGuard is in effect in this thread
void set_keep_intermediates(bool enabled);  ///< for this thread; KeepIntermediatesGuard sets it for a scope
/// While alive, every Function keeps its inputs, also those whose backward
/// needs only shapes, so every intermediate stays reachable from the graph
/// (Function::inputs(), observers, to_dot's values): for narrating or drawing
/// a graph; it costs memory on long graphs (Note [Saved inputs]).
using KeepIntermediatesGuard = detail::ModeGuard<is_keep_intermediates_enabled, set_keep_intermediates, true>;

/// A cheap handle to a graph node: copying a Variable shares the node.
/// Use it as Variable (float) or Variable64 (double); ops, layers and
/// optimizers take and return Variables, and backward() fills the .grad() of
/// every leaf that requires_grad. As torch.Tensor with autograd.
template <class T>
class BasicVariable {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "zerograd Variables hold float (Variable) or double (Variable64)");

 public:
  using value_type = T;  ///< float or double

  BasicVariable() = default;  ///< an empty handle: defined() is false
  BasicVariable(T scalar, std::string name = {});  ///< a 0-d leaf
  BasicVariable(Tensor<T> data, std::string name = {});  ///< a leaf holding data
  ///@{
  /// From nested lists of numbers of one type, up to four deep: {1, 2},
  /// {{1, 2}, {3, 4}}, a 3x1 column {{1.}, {2.}, {3.}}. Rows of different
  /// lengths throw ShapeError.
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
  ///@}

  bool defined() const { return node_ != nullptr; }  ///< false for an empty handle
  const Tensor<T>& data() const;  ///< the values
  Tensor<T>& data();  ///< in-place writes bypass the graph (optimizers use this)
  void set_data(Tensor<T> data);  ///< replaces the values (any shape), bypassing the graph

  /// The gradient, an empty Variable until a backward pass reaches this node.
  BasicVariable grad() const;
  void set_grad(BasicVariable grad) const;  ///< replaces the gradient
  void cleargrad() const;  ///< empties the gradient (the book's cleargrad)

  const std::string& name() const;  ///< "" when unnamed
  BasicVariable& set_name(std::string name);  ///< names it for printing, drawings and errors
  Shape shape() const;  ///< the shape, () for 0-d
  std::size_t ndim() const;  ///< the number of axes
  std::size_t size() const;  ///< the number of elements
  T item() const;  ///< the only element of a one-element Variable

  bool requires_grad() const;  ///< whether backward computes a gradient for it
  BasicVariable& requires_grad_(bool on = true);  ///< marks a leaf as needing a gradient
  /// The Function that made this Variable (null for leaves and under no_grad).
  std::shared_ptr<Function<T>> creator() const;
  int generation() const;  ///< 0 for leaves, else 1 + the creator's: backward's order

  BasicVariable detach() const;  ///< a new leaf with the same values, cut from the graph
  template <class U>
  BasicVariable<U> to() const;   ///< float <-> double, a leaf cut from the graph

  struct BackwardStep;
  struct BackwardOptions;
  void backward() const { backward(BackwardOptions{}); }  ///< backward with the default options: seeded with ones
  /// Computes the gradient of this Variable with respect to every leaf that
  /// requires_grad, into their .grad() (summed into what is there), running
  /// each Function of the graph once in reverse order.
  void backward(const BackwardOptions& options) const;

  /// fn sees the whole gradient flowing into this Variable in a backward or
  /// grad() and returns it, or a replacement of the same shape (an empty
  /// Variable keeps it unchanged). Note [Hooks] (hooks.cpp).
  HookHandle register_hook(std::function<BasicVariable(const BasicVariable&)> fn) const;
  /// For a leaf: fn(leaf) runs once per backward, after leaf.grad() is final.
  HookHandle register_post_accumulate_grad_hook(std::function<void(const BasicVariable&)> fn) const;

  /// Identity of the node, for maps and graph drawing.
  const Node<T>* id() const { return node_.get(); }
  const std::shared_ptr<Node<T>>& node() const { return node_; }  ///< the node itself, for the engine and viewers
  explicit BasicVariable(std::shared_ptr<Node<T>> node) : node_(std::move(node)) {}  ///< a handle to an existing node

 private:
  Node<T>& checked() const;
  std::shared_ptr<Node<T>> node_;
};
/// Prints "Variable(name, shape, values)"; values via xtensor's printer.
template <class T>
std::ostream& operator<<(std::ostream& out, const BasicVariable<T>& v);

using Variable = BasicVariable<float>;  ///< float32, what layers and optimizers train in
using Variable64 = BasicVariable<double>;  ///< float64, for gradient checks
template <class T>
using Var = BasicVariable<T>;  ///< short form used in op signatures

/// What a Variable refers to: its values, gradient and creator. Users reach
/// it through BasicVariable; the engine and viewers read it directly.
template <class T>
struct Node {
  Tensor<T> data;  ///< the values
  BasicVariable<T> grad;  ///< empty until backward reaches it
  std::shared_ptr<Function<T>> creator;  ///< null for a leaf
  std::unique_ptr<std::string> name;  ///< null when unnamed, as most intermediates are
  std::unique_ptr<detail::NodeHooks<T>, detail::DeleteHooks<T>> hooks;  ///< null unless one was registered
  int generation = 0;  ///< backward's order: 1 + the creator's inputs' highest
  std::uint32_t output_index = 0;  ///< position among creator's outputs
  bool requires_grad = false;  ///< backward computes its gradient

  Node() = default;  ///< an empty node
  explicit Node(Tensor<T>&& d) : data(std::move(d)) {}  ///< holding d
  /// Holding make()'s result, built in place (Note [Outputs in place]).
  template <class Make>
  Node(std::in_place_t, Make&& make) : data(make()) {}
  ~Node();  ///< tears the creator chain down iteratively (engine.cpp)
  const std::string& label() const {  ///< the name, "" when unnamed
    static const std::string unnamed;
    return name ? *name : unnamed;
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
};

/// An operation in the graph. Subclasses implement forward on raw arrays and
/// backward on Variables, so that backward itself can be recorded
/// (create_graph) and differentiated again.
template <class T>
class Function {
 public:
  using value_type = T;  ///< float or double
  virtual ~Function();  ///< tears long chains down iteratively (engine.cpp)
  virtual std::string name() const = 0;  ///< "Mul", "MatMul", ...: drawings, errors and the list of ops
  virtual Outputs<T> forward(const TensorList<T>& xs) = 0;  ///< the outputs computed from the input arrays
  /// gys[i] is the gradient of output i. Return one gradient per input, in
  /// input order; an empty Variable where an input needs none.
  virtual Variables<T> backward(const Variables<T>& gys) = 0;
  /// Whether backward reads its inputs (input(i)). One that needs only their
  /// shapes (Add, Sub, Neg, AddConst, MulConst) returns false: it keeps no
  /// reference to them, so an intermediate nobody else holds is freed at
  /// once, as in PyTorch (Note [Saved inputs]).
  virtual bool saves_inputs() const { return true; }
  /// Drops what backward needed; the engine calls it after backward unless
  /// the graph is retained. Override it to free extra saved arrays too.
  virtual void release() { edges_.clear(); }
  virtual std::string attributes() const { return {}; }  ///< for graph drawings, such as "axes=(1)"
  // Note [Op fields]: the settings forward runs with (axes, stride, the
  // constant of AddConst, ...) as numbers by name, for programs that
  // translate a recorded graph (the ONNX exporter, zerograd/onnx.hpp).
  // attributes() is for people; fields() for programs. An op whose forward
  // depends only on its inputs has none.
  /// The settings forward runs with, as numbers by name (Note [Op fields]).
  virtual OpFields fields() const { return {}; }
  /// The gradient rule in words for input i, as the graph player shows it
  /// ("upstream times the other input"); each op defines it beside backward.
  virtual std::string rule(std::size_t input) const {
    (void)input;
    return {};
  }

  /// The inputs that still exist: every input of a Function that saves them;
  /// otherwise an empty Variable for an intermediate that has been freed.
  Variables<T> inputs() const;
  const BasicVariable<T>& input(std::size_t i) const;  ///< for backward, if it saves its inputs
  Shape input_shape(std::size_t i) const;  ///< input i's shape, known also when the input was freed
  /// The Function that made input i (null for a leaf), whether or not the
  /// input itself still exists.
  const std::shared_ptr<Function<T>>& input_creator(std::size_t i) const;
  BasicVariable<T> output(std::size_t i) const;  ///< empty if that output died
  std::size_t num_inputs() const { return edges_.size(); }  ///< how many inputs it was applied to (0 after release())
  std::size_t num_outputs() const { return num_outputs_; }  ///< how many outputs forward returned
  /// Whether input i requires a gradient.
  bool needs_input_grad(std::size_t i) const { return i < edges_.size() && edges_[i].requires_grad; }
  int generation() const { return generation_; }  ///< 1 + its inputs' highest generation
  bool released() const { return released_; }  ///< whether release() ran

 private:
  template <class U> friend struct ApplyCore;
  template <class U> friend struct Engine;
  template <class U> friend class PendingTable;
  template <class U> friend class HeldGrads;
  // Where input i came from. `saved` holds the input itself when the
  // Function saves its inputs, and always for a leaf (its .grad is written);
  // otherwise only its creator, output index and shape are kept, and
  // creator->output(output_index) finds it while somebody else holds it.
  struct Edge {
    BasicVariable<T> saved;
    std::shared_ptr<Function<T>> creator;
    Shape shape;  // only when not saved
    std::uint32_t output_index = 0;
    bool requires_grad = false;
  };
  // Outputs after the first, and the shape of each output (a missing
  // output gradient becomes zeros of that shape): multi-output only.
  struct MoreOutputs {
    std::vector<std::weak_ptr<Node<T>>> nodes;
    std::vector<Shape> shapes;
  };
  const Edge& edge(std::size_t i) const;  // throws ValueError naming the Function when i is out of range

  std::vector<Edge> edges_;
  std::weak_ptr<Node<T>> output0_;
  std::unique_ptr<MoreOutputs> more_;
  int generation_ = 0;
  std::uint32_t num_outputs_ = 0;
  std::uint32_t pending_row_ = 0;  // Note [Pending table]
  const void* pending_in_ = nullptr;
  bool released_ = false;
};

/// Runs f forward on the inputs and, when recording, links it into the graph.
template <class T>
Variables<T> apply(std::shared_ptr<Function<T>> f, Variables<T> inputs);

/// What the step observer sees for each Function the engine runs.
template <class T>
struct BasicVariable<T>::BackwardStep {
  const Function<T>& function;  ///< the Function the engine runs
  const Variables<T>& inputs;  ///< its inputs (an entry is empty for a freed one)
  const Variables<T>& outputs;       ///< an entry is empty if that output died
  const Variables<T>& output_grads;  ///< upstream gradients, one per output
  const Variables<T>& input_grads;   ///< what backward sends to each input
};

/// What backward(options) takes.
template <class T>
struct BasicVariable<T>::BackwardOptions {
  BasicVariable<T> seed;      ///< default: ones shaped like the output
  bool retain_grad = false;   ///< also keep gradients of intermediate Variables
  bool retain_graph = false;  ///< keep the graph for another backward
  bool create_graph = false;  ///< record backward itself (higher-order grads)
  std::function<void(const BackwardStep&)> observer;  ///< called for each Function backward runs
};
template <class T>
using BackwardOptions = typename BasicVariable<T>::BackwardOptions;  ///< BasicVariable<T>::BackwardOptions
template <class T>
using BackwardStep = typename BasicVariable<T>::BackwardStep;  ///< BasicVariable<T>::BackwardStep

}  // namespace zg
