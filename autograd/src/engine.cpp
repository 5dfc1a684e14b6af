// The autograd engine: graph recording (apply), backward, teardown.
//
// Note [Ownership]: Variable -> creator is strong; Function -> its inputs is
// strong when it saves them (and for leaves), else Function -> the inputs'
// creators (Note [Saved inputs]); Function -> outputs is weak. So no cycle
// can form. Under NoGradGuard (or when no input requires grad) no creator
// and no inputs are stored.
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
#include <atomic>
#include <cmath>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xio.hpp>

#include "zerograd/ops.hpp"

#include "buffer_cache.hpp"
#include "per_thread.hpp"

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
std::atomic<long> live_hooks{0};  // registered and not removed, in every thread (Note [Hooks])
template <class T>
thread_local std::function<void(const ForwardStep<T>&)>* forward_observer = nullptr;
}  // namespace

thread_local bool anomaly_enabled = false;
// Ops run inside a Function's backward are checked as that Function's
// backward, not as forwards of their own.
thread_local int backward_depth = 0;

thread_local bool keep_intermediates = false;
bool is_keep_intermediates_enabled() { return keep_intermediates; }
void set_keep_intermediates(bool enabled) { keep_intermediates = enabled; }

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

// Node teardown

// Destroying the last handle to a long chain would recurse node -> creator ->
// input -> creator ... and overflow the stack. Instead the first Node or
// Function destructor in a thread drains a worklist; nested destructors only
// push onto it.
//
// At thread exit a thread_local Variable may die after this thread's
// worklist has been destroyed; the outermost destructor then drains a
// worklist on its own stack (stand_in), which nested ones push onto.
namespace {
template <class T>
struct Teardown {
  std::vector<std::shared_ptr<Function<T>>> functions;
  std::vector<std::shared_ptr<Node<T>>> nodes;
  bool draining = false;

  static Teardown*& stand_in() {
    thread_local Teardown* t = nullptr;
    return t;
  }
  // Lets fill push onto the worklist, then drains it unless a caller
  // further up the stack is draining it already.
  template <class Fill>
  static void run(Fill&& fill) {
    if (Teardown* t = detail::per_thread<Teardown>()) {
      fill(*t);
      t->drain();
      return;
    }
    if (Teardown* outer = stand_in()) {
      fill(*outer);
      return;
    }
    Teardown local;
    stand_in() = &local;
    fill(local);
    local.drain();
    stand_in() = nullptr;
  }
  void drain() {
    if (draining) return;
    draining = true;
    while (!functions.empty() || !nodes.empty()) {
      if (!functions.empty()) {
        auto f = std::move(functions.back());
        functions.pop_back();
        f.reset();
      } else {
        auto n = std::move(nodes.back());
        nodes.pop_back();
        n.reset();
      }
    }
    draining = false;
  }
};
}  // namespace

template <class T>
Node<T>::~Node() {
  if (hooks) live_hooks -= static_cast<long>(hooks->pre.size() + hooks->post.size());
  detail::recycle(data);
  if (!creator && !grad.defined()) return;
  Teardown<T>::run([this](Teardown<T>& t) {
    if (creator) t.functions.push_back(std::move(creator));
    if (grad.defined()) t.nodes.push_back(grad.node());
    grad = BasicVariable<T>();
  });
}

// A Function that saves no inputs holds its inputs' creators directly, so
// a chain of them is Function -> Function -> ...: torn down by the same
// worklist.
template <class T>
Function<T>::~Function() {
  if (edges_.empty()) return;
  Teardown<T>::run([this](Teardown<T>& t) {
    for (Edge& e : edges_) {
      if (e.creator) t.functions.push_back(std::move(e.creator));
      if (e.saved.defined()) t.nodes.push_back(e.saved.node());
    }
    edges_.clear();
  });
}

// Hooks

// Note [Hooks]: a Variable's hooks (register_hook) run in the order they
// were registered, each on the previous one's result, once per backward or
// grad(), on the whole gradient flowing into that Variable: for a computed
// Variable before its creator's backward receives it, for a leaf before it
// is accumulated into .grad (or returned by grad()). A leaf's post-
// accumulate hooks run after that, once its .grad is final: when every
// Function of this backward that could still send it a gradient has run.
// The engine counts those Functions in a walk of the graph before it
// starts, only when a hook exists anywhere (live_hooks), so backward costs
// nothing more without hooks. Under create_graph the gradient a hook sees
// is part of the graph, and what it returns is differentiated through.
template <class T>
struct detail::NodeHooks {
  std::vector<std::pair<std::uint64_t, std::function<BasicVariable<T>(const BasicVariable<T>&)>>> pre;
  std::vector<std::pair<std::uint64_t, std::function<void(const BasicVariable<T>&)>>> post;
};

template <class T>
void detail::DeleteHooks<T>::operator()(NodeHooks<T>* h) const {
  delete h;
}
template struct detail::DeleteHooks<float>;
template struct detail::DeleteHooks<double>;

namespace {
std::atomic<std::uint64_t> next_hook_id{1};

template <class T, class List, class Fn>
HookHandle add_hook(const std::shared_ptr<Node<T>>& node, List detail::NodeHooks<T>::*list, Fn fn) {
  if (!fn) throw ValueError("register_hook: empty function");
  if (!node->hooks) node->hooks.reset(new detail::NodeHooks<T>());
  const std::uint64_t id = next_hook_id++;
  ((*node->hooks).*list).emplace_back(id, std::move(fn));
  ++live_hooks;
  return HookHandle([weak = std::weak_ptr<Node<T>>(node), list, id] {
    const std::shared_ptr<Node<T>> n = weak.lock();
    if (!n || !n->hooks) return;
    auto& hooks = (*n->hooks).*list;
    for (auto it = hooks.begin(); it != hooks.end(); ++it)
      if (it->first == id) {
        hooks.erase(it);
        --live_hooks;
        return;
      }
  });
}

// g after the pre hooks of v (v's own gradient, once per backward).
template <class T>
BasicVariable<T> run_pre_hooks(const BasicVariable<T>& v, BasicVariable<T> g) {
  if (!v.defined() || !v.node()->hooks) return g;
  const auto hooks = v.node()->hooks->pre;  // a hook may register or remove hooks
  for (const auto& [id, fn] : hooks) {
    BasicVariable<T> replaced = fn(g);
    if (!replaced.defined()) continue;
    if (replaced.shape() != g.shape())
      throw ShapeError("hook on '" + v.name() + "': returned a gradient of shape " + shape_str(replaced.shape()) +
                       " for a gradient of shape " + shape_str(g.shape()));
    g = std::move(replaced);
  }
  return g;
}
}  // namespace

template <class T>
HookHandle BasicVariable<T>::register_hook(std::function<BasicVariable(const BasicVariable&)> fn) const {
  checked();
  if (!node_->requires_grad)
    throw ValueError("register_hook: '" + node_->label() + "' does not require grad, so no gradient reaches it");
  return add_hook<T>(node_, &detail::NodeHooks<T>::pre, std::move(fn));
}

template <class T>
HookHandle BasicVariable<T>::register_post_accumulate_grad_hook(std::function<void(const BasicVariable&)> fn) const {
  checked();
  if (node_->creator || !node_->requires_grad)
    throw ValueError("register_post_accumulate_grad_hook: '" + node_->label() +
                     "' is not a leaf that requires grad (only those accumulate a .grad)");
  return add_hook<T>(node_, &detail::NodeHooks<T>::post, std::move(fn));
}

// Variable

// Note [Saved inputs]: Functions hold weak references to their outputs and,
// when they save no inputs, to their inputs. A weak reference keeps the
// memory of a make_shared block (object and count together) until the last
// weak reference goes, so a node whose last handle was dropped would still
// occupy its 300 bytes. Nodes are therefore allocated apart from their
// count block: a freed intermediate leaves only the small count block.
// Under KeepIntermediatesGuard every Function saves its inputs, for
// narrating and drawing graphs with every value on them.
// Nobody holds a weak reference to a leaf or to an unrecorded output, so
// those take one allocation (make_shared). detail::make_node (variable.hpp)
// is the one place that allocates Nodes this way.

template <class T>
BasicVariable<T>::BasicVariable(T scalar, std::string name)
    : BasicVariable(Tensor<T>(scalar), std::move(name)) {}

template <class T>
BasicVariable<T>::BasicVariable(Tensor<T> data, std::string name)
    : node_(detail::make_node<T>(false, std::move(data))) {
  if (!name.empty()) node_->name = std::make_unique<std::string>(std::move(name));
}

template <class T>
Tensor<T> detail::from_values(const Shape& shape, const std::vector<T>& values) {
  Tensor<T> t = Tensor<T>::from_shape(shape);
  std::copy(values.begin(), values.end(), t.begin());
  return t;
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

void detail::outputs_index_error(std::size_t i, std::size_t n) {
  throw ValueError("Outputs: no output " + std::to_string(i) + " among " + std::to_string(n));
}

// Apply: forward and graph recording

namespace {
// n items on the stack when there are at most four (an op's usual inputs),
// on the heap otherwise. Not copyable: data() may point into it.
template <class X>
class InlineList {
 public:
  explicit InlineList(std::size_t n) {
    if (n > kInline) {
      more_.resize(n);
      data_ = more_.data();
    }
  }
  InlineList(const InlineList&) = delete;
  InlineList& operator=(const InlineList&) = delete;
  X* data() { return data_; }

 private:
  static constexpr std::size_t kInline = 4;
  X inline_[kInline];
  std::vector<X> more_;
  X* data_ = inline_;
};
}  // namespace

// Runs f on inputs[0, n) and makes the output nodes; when recording, links
// f to its inputs (Note [Saved inputs]). all_outputs, if given, receives
// every output; the first is returned. owner is the shared_ptr holding f,
// or null for an unrecorded Function on the caller's stack
// (Note [Unrecorded ops]); the last output's node takes it over (the
// caller's copy dies with the call: a copy would cost two atomic updates).
template <class T>
struct ApplyCore {
  static BasicVariable<T> run(Function<T>& fn, std::shared_ptr<Function<T>>* owner,
                              const detail::InputRef<T>* in, std::size_t n, Variables<T>* all_outputs) {
    Function<T>* const f = &fn;
    InlineList<const Tensor<T>*> array_list(n);
    const Tensor<T>** arrays = array_list.data();
    bool any_requires_grad = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (!in[i]->defined())
        throw Error(f->name() + ": input " + std::to_string(i) + " is an empty Variable");
      const Node<T>& node = *in[i]->node();
      arrays[i] = &node.data;
      any_requires_grad = any_requires_grad || node.requires_grad;
    }
    const bool record = any_requires_grad && is_grad_enabled();
    const auto output_node = record ? detail::OutputNode::recorded : detail::OutputNode::unrecorded;
    Outputs<T> ys = f->forward(TensorList<T>(arrays, n, output_node));
    if (anomaly_enabled && backward_depth == 0)
      for (std::size_t k = 0; k < ys.size(); ++k)
        check_finite(*f, ys[k], "forward", "output " + std::to_string(k));
    if (record && !owner) throw Error(f->name() + ": internal error: a recorded Function without an owner");
    const std::size_t m = ys.size();
    if (m == 0) throw Error(f->name() + ": forward returned no outputs");

    Variables<T> local_outputs;  // a multi-output Function called through apply_one
    if (m > 1 && !all_outputs) all_outputs = &local_outputs;
    BasicVariable<T> first(ys.node_ ? std::move(ys.node_) : detail::make_node<T>(record, std::move(ys[0])));
    if (all_outputs) {
      all_outputs->reserve(m);
      all_outputs->push_back(first);
      for (std::size_t k = 1; k < m; ++k) all_outputs->emplace_back(detail::make_node<T>(record, std::move(ys[k])));
    }
    if (record) {
      int generation = 0;
      for (std::size_t i = 0; i < n; ++i) generation = std::max(generation, in[i]->node()->generation);
      f->generation_ = generation;
      f->num_outputs_ = static_cast<std::uint32_t>(m);
      if (m > 1) f->more_ = std::make_unique<typename Function<T>::MoreOutputs>();
      for (std::size_t k = 0; k < m; ++k) {
        const std::shared_ptr<Node<T>>& node = k == 0 ? first.node() : (*all_outputs)[k].node();
        if (k + 1 < m) node->creator = *owner;
        else node->creator = std::move(*owner);
        node->generation = generation + 1;
        node->output_index = static_cast<std::uint32_t>(k);
        node->requires_grad = true;
        if (k == 0) f->output0_ = node;
        else f->more_->nodes.push_back(node);
        if (m > 1) f->more_->shapes.push_back((*all_outputs)[k].shape());
      }
      const bool saves = keep_intermediates || f->saves_inputs();
      f->edges_.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        typename Function<T>::Edge& e = f->edges_[i];
        const std::shared_ptr<Node<T>>& node = in[i]->node();
        e.requires_grad = node->requires_grad;
        if (saves || !node->creator) {
          e.saved = *in[i];  // a leaf is always kept: backward writes its .grad
          continue;
        }
        e.creator = node->creator;
        e.output_index = node->output_index;
        e.shape.assign(node->data.shape().begin(), node->data.shape().end());
      }
    }
    if (forward_observer<T>) {
      Variables<T> seen_inputs;
      seen_inputs.reserve(n);
      for (std::size_t i = 0; i < n; ++i) seen_inputs.push_back(*in[i]);
      const Variables<T> seen_outputs = all_outputs ? *all_outputs : Variables<T>{first};
      (*forward_observer<T>)(ForwardStep<T>{*f, seen_inputs, seen_outputs});
    }
    return first;
  }
};

template <class T>
Variables<T> apply(std::shared_ptr<Function<T>> f, Variables<T> inputs) {
  if (!f) throw Error("apply: null Function");
  InlineList<detail::InputRef<T>> refs(inputs.size());
  std::copy(inputs.begin(), inputs.end(), refs.data());
  Variables<T> outputs;
  ApplyCore<T>::run(*f, &f, refs.data(), inputs.size(), &outputs);
  return outputs;
}

template <class T>
BasicVariable<T> apply_one(std::shared_ptr<Function<T>> f, const detail::InputRef<T>* inputs, std::size_t n) {
  if (!f) throw Error("apply: null Function");
  return ApplyCore<T>::run(*f, &f, inputs, n, nullptr);
}

template <class T>
BasicVariable<T> detail::apply_unrecorded(Function<T>& f, const detail::InputRef<T>* inputs, std::size_t n) {
  return ApplyCore<T>::run(f, nullptr, inputs, n, nullptr);
}

// Backward

// Note [Pending table]: a Function waiting for its backward has a row in the
// engine's table: the upstream gradient of each output, and (for
// retain_grad or a step observer only) a strong reference to the output.
// The row number is kept in the Function itself (engine_row_, with
// engine_ naming the engine), so finding it costs no hashing and no
// allocation; rows are reused as Functions run, so the table stays as small
// as the number of Functions pending at once. A Function already pending in
// another engine (a backward run from inside a backward) is found through a
// hash map instead.
template <class T>
struct Engine {
  struct Pending {
    std::shared_ptr<Function<T>> function;
    BasicVariable<T> out0, grad0;  // output 0 and its accumulated gradient
    Variables<T> outs, grads;      // outputs 1.. of multi-output Functions (index k - 1)
    std::uint64_t order = 0;
    BasicVariable<T>& out(std::size_t k) { return k == 0 ? out0 : outs[k - 1]; }
    BasicVariable<T>& grad(std::size_t k) { return k == 0 ? grad0 : grads[k - 1]; }
  };
  using Options = BackwardOptions<T>;
  using Edge = typename Function<T>::Edge;

  using Key = std::pair<std::pair<int, std::uint64_t>, std::uint32_t>;  // (generation, order), row
  // The engine's containers. A backward() on a small graph would spend a
  // good part of its time allocating them, so a thread keeps the emptied
  // containers of its finished engines for the next one (Store).
  struct Buffers {
    std::vector<Pending> table;
    std::vector<std::uint32_t> free_rows;
    std::vector<Key> heap;    // a max-heap (std::push_heap / pop_heap)
    Variables<T> gys_buffer;  // upstream gradients of the Function being run
  };
  // Per thread; a stack, since a backward may run inside another's backward.
  struct Store {
    std::vector<Buffers> spare;
    static Store& here() {
      thread_local Store s;
      return s;
    }
  };

  const Options& options;
  Buffers buffers;
  std::vector<Pending>& table = buffers.table;
  std::vector<std::uint32_t>& free_rows = buffers.free_rows;
  std::vector<Key>& heap = buffers.heap;
  Variables<T>& gys_buffer = buffers.gys_buffer;
  std::unordered_map<const Function<T>*, std::uint32_t> foreign;  // pending in another engine
  std::uint64_t inserted = 0;

  // Only retain_grad, the step observer, hooks and grad() look at a
  // Function's outputs; otherwise the engine neither looks them up nor
  // keeps them alive.
  const bool hooks = live_hooks.load() > 0;
  bool capturing = false;  // grad(): only the inputs' gradients are wanted, no .grad is written
  bool wants_outputs = options.retain_grad || static_cast<bool>(options.observer) || hooks;

  // A leaf whose gradient is held back until it is final (Note [Hooks]):
  // it has hooks, or it is one of grad()'s inputs.
  struct LeafSlot {
    BasicVariable<T> leaf, sum;
    long remaining = 0;  // edges of Functions still to run that lead to it
    std::vector<std::size_t> targets;  // its positions among grad()'s inputs
    bool done = false;
  };
  std::vector<LeafSlot> leaves;
  std::unordered_map<const Node<T>*, std::size_t> leaf_index;
  // grad(): computed inputs, by their creator and output index, and the
  // Functions between the outputs and some input (only those run).
  Variables<T>* captured = nullptr;
  std::unordered_map<const Function<T>*, std::vector<std::pair<std::uint32_t, std::size_t>>> output_targets;
  std::unordered_set<const Function<T>*> needed;

  explicit Engine(const Options& o) : options(o) {
    Store& store = Store::here();
    if (!store.spare.empty()) {
      buffers = std::move(store.spare.back());
      store.spare.pop_back();
    }
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // After an exception rows may still be pending: release their Functions.
  ~Engine() {
    for (Pending& p : table)
      if (p.function && p.function->engine_ == this) {
        p.function->engine_ = nullptr;
        p.function->engine_row_ = 0;
      }
    // Keep the containers (not what they hold) unless a wide graph made them
    // big: a thread should not sit on that memory.
    constexpr std::size_t kKeepRows = 256;
    table.clear();
    free_rows.clear();
    heap.clear();
    gys_buffer.clear();
    Store& store = Store::here();
    if (table.capacity() <= kKeepRows && store.spare.size() < 4) store.spare.push_back(std::move(buffers));
  }

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

  LeafSlot* slot_of(const Node<T>& leaf) {
    if (leaves.empty()) return nullptr;
    auto it = leaf_index.find(&leaf);
    return it == leaf_index.end() ? nullptr : &leaves[it->second];
  }
  LeafSlot& make_slot(const BasicVariable<T>& leaf) {
    auto [it, fresh] = leaf_index.try_emplace(leaf.id(), leaves.size());
    if (fresh) leaves.push_back(LeafSlot{leaf, {}, 0, {}, false});
    return leaves[it->second];
  }

  // grad(): results go to out[j] for inputs[j].
  void capture(const Variables<T>& inputs, Variables<T>& out) {
    capturing = true;
    wants_outputs = true;
    captured = &out;
    for (std::size_t j = 0; j < inputs.size(); ++j) {
      const Node<T>& n = *inputs[j].node();
      if (!n.creator) make_slot(inputs[j]).targets.push_back(j);
      else output_targets[n.creator.get()].emplace_back(n.output_index, j);
    }
  }

  // Counts, for each held-back leaf, the edges that lead to it from the
  // Functions the roots depend on; for grad(), also finds which of those
  // Functions lie between the roots and an input.
  void plan(const Variables<T>& roots) {
    std::vector<Function<T>*> stack, reached;
    std::unordered_set<const Function<T>*> seen;
    auto reach = [&](const Node<T>* leaf, Function<T>* creator) {
      if (creator) {
        if (seen.insert(creator).second) stack.push_back(creator);
      } else if (LeafSlot* slot = slot_of(*leaf)) {
        ++slot->remaining;
      }
    };
    for (const BasicVariable<T>& r : roots) {
      if (!r.node()->creator && r.node()->hooks && !capturing) make_slot(r);
      reach(r.id(), r.node()->creator.get());
    }
    while (!stack.empty()) {
      Function<T>* f = stack.back();
      stack.pop_back();
      reached.push_back(f);
      for (const Edge& e : f->edges_) {
        if (!e.requires_grad) continue;
        const Node<T>* node = e.saved.defined() ? e.saved.id() : nullptr;
        Function<T>* c = node ? node->creator.get() : e.creator.get();
        if (!c && node->hooks && !capturing) make_slot(e.saved);
        reach(node, c);
      }
    }
    if (!capturing) return;
    // A Function's inputs are made by Functions of lower generation.
    std::sort(reached.begin(), reached.end(),
              [](const Function<T>* a, const Function<T>* b) { return a->generation_ < b->generation_; });
    for (Function<T>* f : reached)
      for (const Edge& e : f->edges_) {
        if (!e.requires_grad) continue;
        const Node<T>* node = e.saved.defined() ? e.saved.id() : nullptr;
        const Function<T>* c = node ? node->creator.get() : e.creator.get();
        const std::uint32_t k = node ? node->output_index : e.output_index;
        bool leads = c ? needed.count(c) > 0 : slot_of(*node) != nullptr;
        if (c && !leads)
          if (auto it = output_targets.find(c); it != output_targets.end())
            for (const auto& [index, j] : it->second) leads = leads || index == k;
        if (leads) {
          needed.insert(f);
          break;
        }
      }
  }

  // The leaf's whole gradient: through its hooks into .grad (or grad()'s result).
  void finish(LeafSlot& slot) {
    slot.done = true;
    BasicVariable<T> g = run_pre_hooks(slot.leaf, std::move(slot.sum));
    if (capturing) {
      for (std::size_t j : slot.targets) (*captured)[j] = g;
      return;
    }
    accumulate_into_node(slot.leaf, std::move(g));
    if (slot.leaf.node()->hooks) {
      const auto post = slot.leaf.node()->hooks->post;  // a hook may remove hooks
      for (const auto& [id, fn] : post) fn(slot.leaf);
    }
  }
  // An edge to a held-back leaf that will send nothing.
  void skip(const Edge& e) {
    if (!e.saved.defined() || e.saved.node()->creator) return;
    if (LeafSlot* slot = slot_of(*e.saved.node()))
      if (--slot->remaining == 0 && slot->sum.defined()) finish(*slot);
  }

  std::uint32_t new_row() {
    if (!free_rows.empty()) {
      const std::uint32_t r = free_rows.back();
      free_rows.pop_back();
      return r;
    }
    table.emplace_back();
    return static_cast<std::uint32_t>(table.size() - 1);
  }

  // The row of creator, made (and queued) on first use. A new row takes
  // creator over when it is an rvalue (an edge of a Function that ran):
  // a copy would cost an atomic increment here and a decrement there.
  template <class Creator>
  Pending& row_of(Creator&& creator) {
    Function<T>& f = *creator;
    if (f.engine_ == this) return table[f.engine_row_ - 1];
    // Checked before f is marked as pending here: a throw must not leave f
    // pointing at this engine's table after the engine is gone.
    if (f.released_)
      throw Error("backward: " + f.name() +
                  " was already run and freed by an earlier backward; pass retain_graph = "
                  "true to that backward to differentiate through it again");
    std::uint32_t r;
    if (f.engine_ == nullptr) {
      r = new_row();
      f.engine_ = this;
      f.engine_row_ = r + 1;
    } else {
      auto [it, fresh] = foreign.try_emplace(&f, 0);
      if (!fresh) return table[it->second];
      r = it->second = new_row();
    }
    Pending& p = table[r];
    p.function = std::forward<Creator>(creator);
    if (f.num_outputs_ > 1) {
      p.outs.resize(f.num_outputs_ - 1);
      p.grads.resize(f.num_outputs_ - 1);
    }
    p.order = inserted++;
    heap.push_back({{f.generation_, p.order}, r});
    std::push_heap(heap.begin(), heap.end());
    return p;
  }

  // Sends gx to a Variable: a leaf accumulates it, a computed one's creator
  // gets it as the upstream gradient of that output.
  void send(const BasicVariable<T>& x, BasicVariable<T> gx) {
    const Node<T>& node = *x.node();
    if (!node.creator) {
      if (LeafSlot* slot = slot_of(node)) {
        accumulate(slot->sum, std::move(gx));
        if (--slot->remaining <= 0) finish(*slot);
      } else if (node.requires_grad && !capturing) {
        accumulate_into_node(x, std::move(gx));
      }
      return;
    }
    deliver(node.creator, node.output_index, x, std::move(gx));
  }

  // Sends gx along an input edge of a Function that ran; the edge is the
  // engine's own copy, so its creator may move to the pending table.
  void send(Edge&& e, BasicVariable<T> gx) {
    if (e.saved.defined()) return send(e.saved, std::move(gx));
    deliver(std::move(e.creator), e.output_index, BasicVariable<T>(), std::move(gx));  // run() looks the output up
  }

  // x: output k of creator, or empty when nobody holds that output any more.
  template <class Creator>
  void deliver(Creator&& creator, std::uint32_t k, const BasicVariable<T>& x, BasicVariable<T> gx) {
    if (capturing && !creator->released_ && !needed.count(&*creator) && !output_targets.count(&*creator)) return;
    Pending& p = row_of(std::forward<Creator>(creator));
    BasicVariable<T>& out = p.out(k);
    if (wants_outputs && !out.defined() && x.defined()) out = x;
    accumulate(p.grad(k), std::move(gx));
  }

  void run(const Variables<T>& roots, const Variables<T>& seeds) {
    if (hooks || capturing) plan(roots);
    for (std::size_t i = 0; i < roots.size(); ++i) send(roots[i], seeds[i]);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end());
      const std::uint32_t r = heap.back().second;
      heap.pop_back();
      Pending p = std::move(table[r]);
      table[r] = Pending();
      free_rows.push_back(r);
      Function<T>& f = *p.function;
      if (f.engine_ == this) {
        f.engine_ = nullptr;
        f.engine_row_ = 0;
      } else {
        foreign.erase(&f);
      }
      // Upstream gradients, one per output; a missing one is zeros.
      // gys reuses the engine's buffer: no allocation per Function.
      Variables<T>& gys = gys_buffer;
      gys.resize(f.num_outputs_);
      Variables<T> outs;  // only the step observer sees them
      if (options.observer) outs.resize(f.num_outputs_);
      for (std::size_t k = 0; k < gys.size(); ++k) {
        BasicVariable<T>& out = p.out(k);
        BasicVariable<T>& g = p.grad(k);
        if (wants_outputs && !out.defined()) out = f.output(k);
        if (!g.defined()) {
          Tensor<T> zeros = xt::zeros<T>(f.more_->shapes[k]);  // only multi-output Functions miss one
          g = BasicVariable<T>(std::move(zeros));
        }
        if (hooks || capturing) g = run_pre_hooks(out, std::move(g));
        if (capturing)
          if (auto it = output_targets.find(&f); it != output_targets.end())
            for (const auto& [index, j] : it->second)
              if (index == k) (*captured)[j] = g;
        if (options.retain_grad && out.defined()) accumulate_into_node(out, g);
        gys[k] = std::move(g);
        if (options.observer) outs[k] = std::move(out);
      }
      if (capturing && !needed.count(&f)) {  // it only made one of grad()'s inputs
        gys.clear();
        continue;
      }
      ++backward_depth;
      Variables<T> gxs;
      try {
        gxs = f.backward(gys);
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
        options.observer(BackwardStep<T>{f, f.inputs(), outs, gys, gxs});
      std::vector<Edge> edges;
      if (options.retain_graph) edges = f.edges_;
      else edges = std::move(f.edges_);
      if (!options.retain_graph) {
        f.edges_.clear();
        f.release();
        f.released_ = true;
      }
      // Drop upstream grads and outputs as soon as possible.
      gys.clear();
      outs.clear();
      p = Pending();
      for (std::size_t i = 0; i < edges.size(); ++i) {
        if (!edges[i].requires_grad) continue;
        if (gxs[i].defined()) send(std::move(edges[i]), std::move(gxs[i]));
        else if (!leaves.empty()) skip(edges[i]);
      }
    }
    // Leaves some Function that never ran (no gradient reached it) would
    // have sent to: what they got is final now.
    for (LeafSlot& slot : leaves)
      if (!slot.done && slot.sum.defined()) finish(slot);
  }

  static void validate(const Function<T>& f, const Variables<T>& gxs) {
    if (gxs.size() != f.edges_.size())
      throw Error(f.name() + ": backward returned " + std::to_string(gxs.size()) +
                  " gradients for " + std::to_string(f.edges_.size()) + " inputs");
    for (std::size_t i = 0; i < gxs.size(); ++i) {
      if (!gxs[i].defined()) continue;
      const Edge& e = f.edges_[i];
      const auto& got = gxs[i].data().shape();
      const bool same = e.saved.defined() ? got == e.saved.data().shape()
                                          : std::equal(got.begin(), got.end(), e.shape.begin(), e.shape.end());
      if (!same)
        throw ShapeError(f.name() + ": backward returned a gradient of shape " +
                         shape_str(gxs[i].shape()) + " for input " + std::to_string(i) +
                         " of shape " + shape_str(f.input_shape(i)));
    }
  }
};

template <class T>
void BasicVariable<T>::backward() const {
  backward(BackwardOptions{});
}

// The seed gradient of root: ones, or seed after checking its shape.
template <class T>
BasicVariable<T> seed_for(const BasicVariable<T>& root, const BasicVariable<T>& seed, const char* op) {
  if (!seed.defined()) {
    Tensor<T> ones = xt::ones<T>(root.data().shape());
    return BasicVariable<T>(std::move(ones));
  }
  if (seed.shape() != root.shape())
    throw ShapeError(std::string(op) + ": seed gradient has shape " + shape_str(seed.shape()) +
                     " but the output has shape " + shape_str(root.shape()));
  return seed;
}

template <class T>
void check_requires_grad(const BasicVariable<T>& v, const std::string& what) {
  if (!v.defined()) throw Error(what + " is an empty Variable");
  if (!v.requires_grad())
    throw Error(what + " '" + v.name() + "' " + shape_str(v.shape()) +
                " does not require grad (no input had requires_grad, or it was computed "
                "under NoGradGuard)");
}

// Runs the engine with the grad mode backward needs (recording only for
// create_graph); capture, if given, makes it a grad() run.
template <class T>
void run_engine(const Variables<T>& roots, const Variables<T>& seeds, BackwardOptions<T> options,
                const Variables<T>* inputs = nullptr, Variables<T>* results = nullptr) {
  if (options.create_graph) options.retain_graph = true;
  std::optional<NoGradGuard> no_grad;
  std::optional<EnableGradGuard> with_grad;
  if (options.create_graph) with_grad.emplace();
  else no_grad.emplace();
  Engine<T> engine(options);
  if (inputs) engine.capture(*inputs, *results);
  engine.run(roots, seeds);
}

template <class T>
void BasicVariable<T>::backward(const BackwardOptions& options) const {
  check_requires_grad(*this, "backward:");
  run_engine<T>({*this}, {seed_for(*this, options.seed, "backward")}, options);
}

template <class T>
Variables<T> grad(const Variables<T>& outputs, const Variables<T>& inputs, const Variables<T>& grad_outputs,
                  const GradOptions& options) {
  if (outputs.empty()) throw ValueError("grad: no outputs given");
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw ValueError("grad: " + std::to_string(grad_outputs.size()) + " grad_outputs for " +
                     std::to_string(outputs.size()) + " outputs");
  Variables<T> seeds;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    check_requires_grad(outputs[i], "grad: output " + std::to_string(i));
    seeds.push_back(seed_for(outputs[i], grad_outputs.empty() ? BasicVariable<T>() : grad_outputs[i], "grad"));
  }
  for (std::size_t j = 0; j < inputs.size(); ++j) check_requires_grad(inputs[j], "grad: input " + std::to_string(j));
  BackwardOptions<T> bo;
  bo.create_graph = options.create_graph;
  bo.retain_graph = options.retain_graph.value_or(options.create_graph);
  Variables<T> results(inputs.size());
  run_engine<T>(outputs, seeds, bo, &inputs, &results);
  if (!options.allow_unused)
    for (std::size_t j = 0; j < inputs.size(); ++j)
      if (!results[j].defined())
        throw Error("grad: input " + std::to_string(j) + " '" + inputs[j].name() + "' " +
                    shape_str(inputs[j].shape()) +
                    " is not used to compute the outputs (allow_unused = true gives an empty Variable for it)");
  return results;
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
  template Tensor<T> detail::from_values(const Shape&, const std::vector<T>&);    \
  template std::ostream& operator<<(std::ostream&, const BasicVariable<T>&);      \
  template struct Node<T>;                                                        \
  template class BasicVariable<T>;                                                \
  template class Function<T>;                                                     \
  template class ForwardObserverGuard<T>;                                         \
  template Variables<T> grad<T>(const Variables<T>&, const Variables<T>&, const Variables<T>&, const GradOptions&); \
  template Variables<T> apply<T>(std::shared_ptr<Function<T>>, Variables<T>);              \
  template BasicVariable<T> apply_one<T>(std::shared_ptr<Function<T>>, const detail::InputRef<T>*, std::size_t); \
  template BasicVariable<T> detail::apply_unrecorded<T>(Function<T>&, const detail::InputRef<T>*, std::size_t);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE
template BasicVariable<double> BasicVariable<float>::to<double>() const;
template BasicVariable<float> BasicVariable<float>::to<float>() const;
template BasicVariable<float> BasicVariable<double>::to<float>() const;
template BasicVariable<double> BasicVariable<double>::to<double>() const;

}  // namespace zg
