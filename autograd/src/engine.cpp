// The autograd engine: graph recording (apply), backward, teardown.
//
// Note [Ownership]: Variable -> creator is strong, Function -> inputs strong,
// Function -> outputs weak, so no cycle can form. Under NoGradGuard (or when
// no input requires grad) no creator and no inputs are stored.
//
// Note [Order]: backward takes Functions from a max-heap keyed on
// (generation, insertion order) and runs each exactly once, when every output
// gradient is final: a Function's generation exceeds that of every Function
// it depends on. There is no recursion anywhere, including teardown.
//
// Note [create_graph cycles]: with create_graph a leaf's .grad is a graph
// that may hold the leaf itself (d(x*x) = 2x refers to x): a cycle, as in
// PyTorch. Call cleargrad() on such leaves when done with the gradient.
//
// Note [Accumulation]: a gradient is accumulated into a new array
// (a + b makes a new node), never in place into a buffer another node holds.
//
// Note [Release]: unless retain_graph, a Function's inputs and saved arrays
// are dropped right after its backward; unless retain_grad, gradients of
// intermediate Variables live only in the engine's pending table until the
// Function that consumes them has run. Peak memory stays near the forward's.
//
// Note [Validation]: every gradient a Function returns is checked against its
// input's shape (dtype is fixed by the type system); a mismatch throws
// ShapeError naming the Function and both shapes.
#include <algorithm>
#include <cmath>
#include <optional>
#include <queue>
#include <sstream>
#include <unordered_map>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xio.hpp>

#include "zerograd/ops.hpp"

namespace zg {

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << '(';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ')';
  return out.str();
}

namespace {
thread_local bool grad_enabled = true;
template <class T>
thread_local std::function<void(const ForwardStep<T>&)>* forward_observer = nullptr;
}  // namespace

thread_local bool anomaly_enabled = false;
// Ops run inside a Function's backward are checked as that Function's
// backward, not as forwards of their own.
thread_local int backward_depth = 0;

bool is_anomaly_enabled() { return anomaly_enabled; }
void set_anomaly_enabled(bool enabled) { anomaly_enabled = enabled; }

// Throws naming f, the pass and the first non-finite element of t.
template <class T>
void check_finite(const Function<T>& f, const Tensor<T>& t, const char* pass, const std::string& what) {
  for (std::size_t j = 0; j < t.size(); ++j) {
    const T v = t.data()[j];
    if (std::isfinite(v)) continue;
    Shape idx(t.dimension());
    std::size_t flat = j;
    for (std::size_t d = t.dimension(); d-- > 0;) {
      idx[d] = flat % t.shape()[d];
      flat /= t.shape()[d];
    }
    throw ValueError(f.name() + ": " + pass + " produced " + (std::isnan(v) ? "NaN" : "Inf") + " in " +
                     what + " " + shape_str(t.shape()) + " at index " + shape_str(idx) +
                     " (anomaly mode)");
  }
}

bool is_grad_enabled() { return grad_enabled; }
void set_grad_enabled(bool enabled) { grad_enabled = enabled; }

template <class T>
ForwardObserverGuard<T>::ForwardObserverGuard(std::function<void(const ForwardStep<T>&)> fn)
    : fn_(std::move(fn)), previous_(forward_observer<T>) {
  forward_observer<T> = &fn_;
}
template <class T>
ForwardObserverGuard<T>::~ForwardObserverGuard() {
  forward_observer<T> = previous_;
}

// ---- Node teardown ------------------------------------------------------------

// Destroying the last handle to a long chain would recurse node -> creator ->
// input -> creator ... and overflow the stack. Instead the first destructor in
// a thread drains a worklist; nested destructors only push onto it.
template <class T>
Node<T>::~Node() {
  if (!creator && !grad.defined()) return;
  thread_local std::vector<std::shared_ptr<Function<T>>> pending;
  thread_local std::vector<std::shared_ptr<Node<T>>> pending_grads;
  thread_local bool draining = false;
  if (creator) pending.push_back(std::move(creator));
  if (grad.defined()) pending_grads.push_back(grad.node());
  grad = BasicVariable<T>();
  if (draining) return;
  draining = true;
  while (!pending.empty() || !pending_grads.empty()) {
    if (!pending.empty()) {
      auto f = std::move(pending.back());
      pending.pop_back();
      f.reset();
    } else {
      auto g = std::move(pending_grads.back());
      pending_grads.pop_back();
      g.reset();
    }
  }
  draining = false;
}

// ---- Variable -------------------------------------------------------------------

template <class T>
BasicVariable<T>::BasicVariable(T scalar, std::string name)
    : BasicVariable(Tensor<T>(scalar), std::move(name)) {}

template <class T>
BasicVariable<T>::BasicVariable(Tensor<T> data, std::string name)
    : node_(std::make_shared<Node<T>>(std::move(data))) {
  node_->name = std::move(name);
}

#define ZG_NESTED_CTOR(N)                                                                   \
  template <class T>                                                                        \
  BasicVariable<T>::BasicVariable(xt::nested_initializer_list_t<T, N> values, std::string name) \
      : BasicVariable(Tensor<T>(values), std::move(name)) {}
ZG_NESTED_CTOR(1)
ZG_NESTED_CTOR(2)
ZG_NESTED_CTOR(3)
ZG_NESTED_CTOR(4)
#undef ZG_NESTED_CTOR

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
template <class T> const std::string& BasicVariable<T>::name() const { return checked().name; }

template <class T>
BasicVariable<T>& BasicVariable<T>::set_name(std::string name) {
  checked().name = std::move(name);
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
    throw ValueError("Variable::requires_grad_: '" + n.name +
                     "' is not a leaf; use detach() to cut it from the graph");
  n.requires_grad = on;
  return *this;
}

template <class T>
std::shared_ptr<Function<T>> BasicVariable<T>::creator() const { return checked().creator; }
template <class T> int BasicVariable<T>::generation() const { return checked().generation; }

template <class T>
BasicVariable<T> BasicVariable<T>::detach() const {
  return BasicVariable(checked().data, checked().name);
}

template <class T>
template <class U>
BasicVariable<U> BasicVariable<T>::to() const {
  Tensor<U> converted = xt::cast<U>(checked().data);
  return BasicVariable<U>(std::move(converted), checked().name);
}

// ---- Function -----------------------------------------------------------------------

template <class T>
const BasicVariable<T>& Function<T>::input(std::size_t i) const {
  if (released_)
    throw Error(name() + ": its inputs were freed after backward; pass retain_graph = true "
                         "to the first backward to run it again");
  if (i >= inputs_.size())
    throw ValueError(name() + ": input " + std::to_string(i) + " requested, it has " +
                     std::to_string(inputs_.size()));
  return inputs_[i];
}

template <class T>
BasicVariable<T> Function<T>::output(std::size_t i) const {
  if (i >= outputs_.size()) return BasicVariable<T>();
  return BasicVariable<T>(outputs_[i].lock());
}

template <class T>
bool Function<T>::needs_input_grad(std::size_t i) const {
  return i < inputs_.size() && inputs_[i].requires_grad();
}

// ---- apply: forward and graph recording -------------------------------------------------

template <class T>
Variables<T> apply(std::shared_ptr<Function<T>> f, Variables<T> inputs) {
  std::vector<const Tensor<T>*> arrays;
  arrays.reserve(inputs.size());
  bool any_requires_grad = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined())
      throw Error(f->name() + ": input " + std::to_string(i) + " is an empty Variable");
    arrays.push_back(&inputs[i].data());
    any_requires_grad = any_requires_grad || inputs[i].requires_grad();
  }
  Outputs<T> ys = f->forward(TensorList<T>(std::move(arrays)));
  if (anomaly_enabled && backward_depth == 0)
    for (std::size_t k = 0; k < ys.items.size(); ++k)
      check_finite(*f, ys.items[k], "forward", "output " + std::to_string(k));
  const bool record = any_requires_grad && is_grad_enabled();

  Variables<T> outputs;
  outputs.reserve(ys.items.size());
  for (auto& y : ys.items) outputs.emplace_back(std::make_shared<Node<T>>(std::move(y)));
  if (record) {
    int generation = 0;
    for (const auto& x : inputs) generation = std::max(generation, x.generation());
    f->generation_ = generation;
    f->outputs_.reserve(outputs.size());
    f->output_shapes_.reserve(outputs.size());
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      Node<T>& n = *outputs[i].node();
      n.creator = f;
      n.generation = generation + 1;
      n.output_index = static_cast<std::uint32_t>(i);
      n.requires_grad = true;
      f->outputs_.push_back(outputs[i].node());
      f->output_shapes_.push_back(outputs[i].shape());
    }
    f->inputs_ = std::move(inputs);
  }
  if (forward_observer<T>) {
    const Variables<T>& seen_inputs = record ? f->inputs_ : inputs;
    (*forward_observer<T>)(ForwardStep<T>{*f, seen_inputs, outputs});
  }
  return outputs;
}

// ---- backward -----------------------------------------------------------------------------

template <class T>
struct Engine {
  struct Pending {
    std::shared_ptr<Function<T>> function;
    Variables<T> outputs;  // strong: outputs stay alive until their Function ran
    Variables<T> grads;    // accumulated upstream gradient per output
    std::uint64_t order = 0;
  };
  using Options = BackwardOptions<T>;

  const Options& options;
  std::unordered_map<const Function<T>*, Pending> pending;
  using Key = std::pair<std::pair<int, std::uint64_t>, const Function<T>*>;
  std::priority_queue<Key> heap;
  std::uint64_t inserted = 0;

  static void accumulate(BasicVariable<T>& slot, BasicVariable<T> g) {
    slot = slot.defined() ? slot + g : std::move(g);
  }

  // A leaf's .grad must not share a buffer another node may still hold: it
  // takes g's array when nobody else holds g, and copies it otherwise.
  void accumulate_into_node(const BasicVariable<T>& v, BasicVariable<T> g) {
    BasicVariable<T> current = v.grad();
    if (current.defined()) v.node()->grad = current + g;
    else if (options.create_graph || (g.node().use_count() == 1 && !g.node()->creator)) v.node()->grad = std::move(g);
    else v.node()->grad = BasicVariable<T>(g.data());
  }

  void send(const BasicVariable<T>& x, BasicVariable<T> gx) {
    const auto& creator = x.node()->creator;
    if (!creator) {
      if (x.requires_grad()) accumulate_into_node(x, std::move(gx));
      return;
    }
    auto [it, fresh] = pending.try_emplace(creator.get());
    Pending& p = it->second;
    if (fresh) {
      if (creator->released_)
        throw Error("backward: " + creator->name() +
                    " was already run and freed by an earlier backward; pass retain_graph = "
                    "true to that backward to differentiate through it again");
      p.function = creator;
      p.outputs.resize(creator->output_shapes_.size());
      p.grads.resize(creator->output_shapes_.size());
      p.order = inserted++;
      heap.push({{creator->generation_, p.order}, creator.get()});
    }
    const std::uint32_t k = x.node()->output_index;
    if (!p.outputs[k].defined()) p.outputs[k] = x;
    accumulate(p.grads[k], std::move(gx));
  }

  void run(const BasicVariable<T>& root, const BasicVariable<T>& seed) {
    send(root, seed);
    while (!heap.empty()) {
      const Function<T>* key = heap.top().second;
      heap.pop();
      Pending p = std::move(pending.at(key));
      pending.erase(key);
      Function<T>& f = *p.function;
      for (std::size_t k = 0; k < p.grads.size(); ++k) {
        if (!p.outputs[k].defined()) p.outputs[k] = f.output(k);
        if (!p.grads[k].defined()) {
          Tensor<T> zeros = xt::zeros<T>(f.output_shapes_[k]);
          p.grads[k] = BasicVariable<T>(std::move(zeros));
        }
        if (options.retain_grad && p.outputs[k].defined()) accumulate_into_node(p.outputs[k], p.grads[k]);
      }
      ++backward_depth;
      Variables<T> gxs;
      try {
        gxs = f.backward(p.grads);
      } catch (...) {
        --backward_depth;
        throw;
      }
      --backward_depth;
      validate(f, gxs);
      if (anomaly_enabled)
        for (std::size_t i = 0; i < gxs.size(); ++i)
          if (gxs[i].defined()) check_finite(f, gxs[i].data(), "backward", "the gradient for input " + std::to_string(i));
      if (options.observer)
        options.observer(BackwardStep<T>{f, f.inputs_, p.outputs, p.grads, gxs});
      Variables<T> inputs = f.inputs_;
      if (!options.retain_graph) {
        f.release();
        f.inputs_.clear();
        f.released_ = true;
      }
      p = Pending();  // drop upstream grads and outputs as soon as possible
      for (std::size_t i = 0; i < inputs.size(); ++i)
        if (gxs[i].defined() && inputs[i].requires_grad()) send(inputs[i], std::move(gxs[i]));
    }
  }

  static void validate(const Function<T>& f, const Variables<T>& gxs) {
    if (gxs.size() != f.inputs_.size())
      throw Error(f.name() + ": backward returned " + std::to_string(gxs.size()) +
                  " gradients for " + std::to_string(f.inputs_.size()) + " inputs");
    for (std::size_t i = 0; i < gxs.size(); ++i) {
      if (!gxs[i].defined()) continue;
      if (gxs[i].shape() != f.inputs_[i].shape())
        throw ShapeError(f.name() + ": backward returned a gradient of shape " +
                         shape_str(gxs[i].shape()) + " for input " + std::to_string(i) +
                         " of shape " + shape_str(f.inputs_[i].shape()));
    }
  }
};

template <class T>
void BasicVariable<T>::backward() const {
  backward(BackwardOptions{});
}

template <class T>
void BasicVariable<T>::backward(const BackwardOptions& options) const {
  Node<T>& n = checked();
  if (!n.requires_grad)
    throw Error("backward: '" + n.name + "' " + shape_str(n.data.shape()) +
                " does not require grad (no input had requires_grad, or it was computed "
                "under NoGradGuard)");
  BasicVariable seed = options.seed;
  if (!seed.defined()) {
    Tensor<T> ones = xt::ones<T>(n.data.shape());
    seed = BasicVariable(std::move(ones));
  } else if (seed.shape() != shape()) {
    throw ShapeError("backward: seed gradient has shape " + shape_str(seed.shape()) +
                     " but the output has shape " + shape_str(shape()));
  }
  BackwardOptions effective = options;
  if (options.create_graph) effective.retain_graph = true;
  std::optional<NoGradGuard> no_grad;
  std::optional<EnableGradGuard> with_grad;
  if (options.create_graph) with_grad.emplace();
  else no_grad.emplace();
  Engine<T> engine{effective, {}, {}, 0};
  engine.run(*this, seed);
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

#define ZG_INSTANTIATE(T)                                                         \
  template std::string to_string(const Tensor<T>&);                               \
  template std::ostream& operator<<(std::ostream&, const BasicVariable<T>&);      \
  template struct Node<T>;                                                        \
  template class BasicVariable<T>;                                                \
  template class Function<T>;                                                     \
  template class ForwardObserverGuard<T>;                                         \
  template Variables<T> apply<T>(std::shared_ptr<Function<T>>, Variables<T>);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE
template BasicVariable<double> BasicVariable<float>::to<double>() const;
template BasicVariable<float> BasicVariable<float>::to<float>() const;
template BasicVariable<float> BasicVariable<double>::to<float>() const;
template BasicVariable<double> BasicVariable<double>::to<double>() const;

}  // namespace zg
