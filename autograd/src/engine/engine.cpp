// The autograd engine: its rules, recording a graph (apply), backward, and
// teardown. Speed machinery has rooms of its own, each called here in one
// line: output_nodes.cpp, pending_table.hpp, held_grads.hpp (hooks and
// grad()), buffer_cache.cpp, zerograd/apply.hpp.
//
// Note [Ownership]: Variable -> creator is strong; Function -> its inputs is
// strong when it saves them (and for leaves), else Function -> the inputs'
// creators (Note [Saved inputs]); Function -> outputs is weak. So no cycle
// can form. Under NoGradGuard (or when no input requires grad) no creator
// and no inputs are stored.
//
// Note [Saved inputs]: a Function keeps its inputs only when its backward
// reads them (Mul, MatMul, ReLU, ...: saves_inputs() is true). One whose
// backward needs only their shapes (Add, Sub, Neg, x + c, x * c) keeps each
// input's creator, output index and shape instead, so an intermediate nobody
// else holds is freed at once, as in PyTorch; Function::inputs() then shows
// it as empty. KeepIntermediatesGuard makes every Function keep its inputs,
// for narrating or drawing a graph. How the freed node's memory goes too is
// Note [Output nodes].
//
// Note [Order]: backward takes Functions from a max-heap keyed on
// (generation, insertion order) and runs each exactly once, when every output
// gradient is final: a Function's generation exceeds that of every Function
// it depends on. There is no recursion anywhere, including teardown.
//
// Note [Accumulation]: a gradient is accumulated into a new array (a + b
// makes a new node), never in place into a buffer another node holds.
//
// Note [Release]: unless retain_graph, a Function's inputs and saved arrays
// are dropped right after its backward; unless retain_grad, gradients of
// intermediate Variables live only in the pending table until the Function
// that consumes them has run. Peak memory stays near the forward's.
//
// Note [Validation]: every gradient a Function returns is checked against its
// input's shape (dtype is fixed by the type system); a mismatch throws
// ShapeError naming the Function and both shapes.
//
// Note [create_graph cycles]: with create_graph a leaf's .grad is a graph
// that may hold the leaf itself (d(x*x) = 2x refers to x): a cycle, as in
// PyTorch. Call cleargrad() on such leaves when done with the gradient.
#include <xtensor/xbuilder.hpp>

#include "zerograd/anomaly.hpp"
#include "zerograd/apply.hpp"
#include "zerograd/function_io.hpp"
#include "zerograd/observer.hpp"
#include "zerograd/ops.hpp"

#include "engine/anomaly_check.hpp"
#include "engine/buffer_cache.hpp"
#include "engine/held_grads.hpp"
#include "engine/inline_list.hpp"
#include "engine/output_nodes.hpp"
#include "engine/pending_table.hpp"
#include "engine/run_engine.hpp"
#include "engine/teardown.hpp"

namespace zg {
template <class T> struct Engine;

// Grad mode and the intermediates switch, per thread.
namespace {
thread_local bool grad_enabled = true;
thread_local bool keep_intermediates = false;
thread_local int backward_depth = 0;  // ops inside a backward are checked as that backward
}  // namespace

bool is_grad_enabled() { return grad_enabled; }
void set_grad_enabled(bool enabled) { grad_enabled = enabled; }
bool is_keep_intermediates_enabled() { return keep_intermediates; }
void set_keep_intermediates(bool enabled) { keep_intermediates = enabled; }

// Recording: runs f on inputs[0, n); when recording, links f to its inputs
// and outputs. all_outputs, if given, receives every output; the first is
// returned. owner holds f, or is null for an unrecorded f on the caller's
// stack (Note [Unrecorded ops]); the last output's node takes it over.
template <class T>
struct ApplyCore {
  static BasicVariable<T> run(Function<T>& f, std::shared_ptr<Function<T>>* owner, const detail::InputRef<T>* in,
                              std::size_t n, Variables<T>* all_outputs) {
    InlineList<const Tensor<T>*> arrays(n);
    bool any_requires_grad = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (!in[i]->defined()) throw Error(f.name() + ": input " + std::to_string(i) + " is an empty Variable");
      arrays.data()[i] = &in[i]->node()->data;
      any_requires_grad = any_requires_grad || in[i]->node()->requires_grad;
    }
    const bool record = any_requires_grad && is_grad_enabled();
    if (record && !owner) throw Error(f.name() + ": internal error: a recorded Function without an owner");
    detail::OutputKindGuard kind(record);
    Outputs<T> ys = f.forward(TensorList<T>(arrays.data(), n));
    const std::size_t m = ys.size();
    if (m == 0) throw Error(f.name() + ": forward returned no outputs");
    if (is_anomaly_enabled() && backward_depth == 0)
      for (std::size_t k = 0; k < m; ++k) detail::check_finite(f, ys[k], "forward", "output " + std::to_string(k));
    Variables<T> local_outputs;  // a multi-output Function called through apply_one
    if (m > 1 && !all_outputs) all_outputs = &local_outputs;
    BasicVariable<T> first(std::move(ys.first_));
    if (all_outputs) {
      all_outputs->reserve(m);
      all_outputs->push_back(first);
      for (Tensor<T>& y : ys.rest_) all_outputs->emplace_back(detail::output_node<T>(std::move(y)));
    }
    if (record) link(f, *owner, in, n, m == 1 ? nullptr : all_outputs, first);
    if (auto* observer = detail::forward_observer<T>()) {
      Variables<T> seen_inputs;
      for (std::size_t i = 0; i < n; ++i) seen_inputs.push_back(*in[i]);
      (*observer)(ForwardStep<T>{f, seen_inputs, all_outputs ? *all_outputs : Variables<T>{first}});
    }
    return first;
  }

  static void link(Function<T>& f, std::shared_ptr<Function<T>>& owner, const detail::InputRef<T>* in, std::size_t n,
                   const Variables<T>* outputs, const BasicVariable<T>& first) {
    int generation = 0;
    for (std::size_t i = 0; i < n; ++i) generation = std::max(generation, in[i]->node()->generation);
    f.generation_ = generation;
    const std::size_t m = outputs ? outputs->size() : 1;
    f.num_outputs_ = static_cast<std::uint32_t>(m);
    if (m > 1) f.more_ = std::make_unique<typename Function<T>::MoreOutputs>();
    for (std::size_t k = 0; k < m; ++k) {
      const std::shared_ptr<Node<T>>& node = k == 0 ? first.node() : (*outputs)[k].node();
      node->creator = k + 1 < m ? owner : std::move(owner);
      node->generation = generation + 1;
      node->output_index = static_cast<std::uint32_t>(k);
      node->requires_grad = true;
      if (k == 0) f.output0_ = node;
      else f.more_->nodes.push_back(node);
      if (m > 1) f.more_->shapes.push_back((*outputs)[k].shape());
    }
    const bool saves = keep_intermediates || f.saves_inputs();
    f.edges_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      typename Function<T>::Edge& e = f.edges_[i];
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
BasicVariable<T> detail::apply_one(std::shared_ptr<Function<T>> f, const InputRef<T>* inputs, std::size_t n) {
  if (!f) throw Error("apply: null Function");
  return ApplyCore<T>::run(*f, &f, inputs, n, nullptr);
}
template <class T>
BasicVariable<T> detail::apply_unrecorded(Function<T>& f, const InputRef<T>* inputs, std::size_t n) {
  return ApplyCore<T>::run(f, nullptr, inputs, n, nullptr);
}

// Backward from one root: the seed is ones shaped like it unless given.
template <class T>
void BasicVariable<T>::backward(const BackwardOptions& options) const {
  detail::check_requires_grad(*this, "backward:");
  detail::run_engine<T>({*this}, {detail::seed_for(*this, options.seed, "backward")}, options);
}

// One run of the engine, recording only for create_graph; with inputs, a
// grad() run into results (grad.cpp).
template <class T>
void detail::run_engine(const Variables<T>& roots, const Variables<T>& seeds, BackwardOptions<T> options,
                        const Variables<T>* inputs, Variables<T>* results) {
  if (options.create_graph) options.retain_graph = true;
  std::optional<NoGradGuard> no_grad;
  std::optional<EnableGradGuard> with_grad;
  if (options.create_graph) with_grad.emplace();
  else no_grad.emplace();
  Engine<T> engine(options);
  if (inputs) engine.held.capture(*inputs, *results);
  engine.run(roots, seeds);
}

// The engine: sends each gradient to its Variable (a leaf accumulates it
// into .grad, a computed one's creator gets it in the pending table), then
// runs the pending Functions in Note [Order]. The loop has three concerns,
// each in a step of its own: the pending table (which Function runs next and
// what it was sent), held gradients (hooks, and grad(), which stops at its
// inputs: held_grads.hpp), and what the caller watches (the observer and
// retain_grad).
template <class T>
struct Engine {
  using Edge = typename Function<T>::Edge;
  const BackwardOptions<T>& options;
  PendingTable<T> pending;
  HeldGrads<T> held{[this](const BasicVariable<T>& leaf, BasicVariable<T> g) { write_grad(leaf, std::move(g)); }};
  const bool hooks = detail::hooks_exist();
  // Only retain_grad, the observer and hooks look at a Function's outputs.
  const bool wants_outputs = options.retain_grad || options.observer || hooks;

  explicit Engine(const BackwardOptions<T>& o) : options(o) {}

  void run(const Variables<T>& roots, const Variables<T>& seeds) {
    if (hooks || held.capturing()) held.plan(roots);
    for (std::size_t i = 0; i < roots.size(); ++i) send(roots[i], seeds[i]);
    while (!pending.empty()) {
      auto row = pending.pop();
      Function<T>& f = *row.function;
      Variables<T>& gys = pending.scratch();  // upstream gradients, one per output
      Variables<T> outs(options.observer ? f.num_outputs_ : 0);
      for (std::uint32_t k = 0; k < f.num_outputs_; ++k) gys.push_back(final_grad(f, row, k, outs));
      if (!held.runs_backward(f)) {  // grad(): f only made one of the inputs
        gys.clear();
        continue;
      }
      Variables<T> gxs = run_backward(f, gys);
      if (options.observer) options.observer(BackwardStep<T>{f, f.inputs(), outs, gys, gxs});
      std::vector<Edge> edges = options.retain_graph ? f.edges_ : release(f);
      gys.clear();  // upstream gradients and outputs go as soon as possible
      outs.clear();
      row = {};
      for (std::size_t i = 0; i < edges.size(); ++i) {
        if (!edges[i].requires_grad) continue;
        if (gxs[i].defined()) send(std::move(edges[i]), std::move(gxs[i]));
        else held.skip(edges[i]);
      }
    }
    held.flush();
  }

  // Output k's gradient as f's backward will see it: zeros if nothing was
  // sent (multi-output only), then the hooks; the held gradients and the
  // caller (retain_grad, the observer's outs) see it too.
  BasicVariable<T> final_grad(Function<T>& f, typename PendingTable<T>::Row& row, std::uint32_t k, Variables<T>& outs) {
    BasicVariable<T>& out = row.out(k);
    BasicVariable<T>& g = row.grad(k);
    if (wants_outputs && !out.defined()) out = f.output(k);
    if (!g.defined()) g = BasicVariable<T>(Tensor<T>(xt::zeros<T>(f.more_->shapes[k])));
    if (hooks) g = detail::run_hooks(out, std::move(g));
    held.output_grad(f, k, g);
    if (options.retain_grad && out.defined()) write_grad(out, g);
    if (options.observer) outs[k] = std::move(out);
    return std::move(g);
  }

  // f's edges move out to carry its gradients, and f keeps nothing (Note [Release]).
  static std::vector<Edge> release(Function<T>& f) {
    std::vector<Edge> edges = std::move(f.edges_);
    f.edges_.clear();
    f.release();
    f.released_ = true;
    return edges;
  }

  // A leaf's .grad must not share a buffer another node may still hold: it
  // takes g's array when nobody else holds g, and copies it otherwise.
  void write_grad(const BasicVariable<T>& v, BasicVariable<T> g) {
    Node<T>& n = *v.node();
    if (n.grad.defined()) n.grad = n.grad + g;
    else if (options.create_graph || (g.node().use_count() == 1 && !g.node()->creator)) n.grad = std::move(g);
    else n.grad = BasicVariable<T>(g.data());
  }

  void send(const BasicVariable<T>& x, BasicVariable<T> gx) {
    const Node<T>& node = *x.node();
    if (node.creator) return deliver(node.creator, node.output_index, x, std::move(gx));
    if (held.take(node, gx)) return;
    if (node.requires_grad && !held.capturing()) write_grad(x, std::move(gx));
  }
  // Along an edge of a Function that ran: the engine's own copy, so its
  // creator may move into the pending table.
  void send(Edge&& e, BasicVariable<T> gx) {
    if (e.saved.defined()) return send(e.saved, std::move(gx));
    deliver(std::move(e.creator), e.output_index, BasicVariable<T>(), std::move(gx));
  }
  // x: output k of creator, or empty when nobody holds it any more.
  template <class Creator>
  void deliver(Creator&& creator, std::uint32_t k, const BasicVariable<T>& x, BasicVariable<T> gx) {
    if (!held.wants(*creator)) return;
    auto& row = pending.row_of(std::forward<Creator>(creator));
    if (wants_outputs && !row.out(k).defined() && x.defined()) row.out(k) = x;
    BasicVariable<T>& g = row.grad(k);
    g = g.defined() ? g + gx : std::move(gx);
  }

  static Variables<T> run_backward(Function<T>& f, const Variables<T>& gys) {
    struct Depth {
      Depth() { ++backward_depth; }
      ~Depth() { --backward_depth; }
    } depth;
    Variables<T> gxs = f.backward(gys);
    validate(f, gxs);
    if (is_anomaly_enabled())
      for (std::size_t i = 0; i < gxs.size(); ++i)
        if (gxs[i].defined()) detail::check_finite(f, gxs[i].data(), "backward", "the gradient for input " + std::to_string(i));
    return gxs;
  }

  static void validate(const Function<T>& f, const Variables<T>& gxs) {
    if (gxs.size() != f.edges_.size())
      throw Error(f.name() + ": backward returned " + std::to_string(gxs.size()) + " gradients for " +
                  std::to_string(f.edges_.size()) + " inputs");
    for (std::size_t i = 0; i < gxs.size(); ++i) {
      if (!gxs[i].defined()) continue;
      const Edge& e = f.edges_[i];
      const auto& got = gxs[i].data().shape();
      const bool same = e.saved.defined() ? got == e.saved.data().shape()
                                          : std::equal(got.begin(), got.end(), e.shape.begin(), e.shape.end());
      if (!same)
        throw ShapeError(f.name() + ": backward returned a gradient of shape " + shape_str(gxs[i].shape()) +
                         " for input " + std::to_string(i) + " of shape " + shape_str(f.input_shape(i)));
    }
  }
};

// Destroying a long chain never recurses: Note [Teardown].
template <class T>
Node<T>::~Node() {
  detail::recycle(data);
  if (!creator && !grad.defined()) return;
  Teardown<T>::run([this](Teardown<T>& t) {
    if (creator) t.functions.push_back(std::move(creator));
    if (grad.defined()) t.nodes.push_back(grad.node());
    grad = BasicVariable<T>();
  });
}

// A Function that saves no inputs holds its inputs' creators directly, so a
// chain of them is Function -> Function -> ...: the same worklist.
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

#define ZG_INSTANTIATE(T)                                                                                        \
  template struct Node<T>;                                                                                       \
  template void BasicVariable<T>::backward(const BackwardOptions&) const;                                        \
  template Function<T>::~Function();                                                                             \
  template Variables<T> apply<T>(std::shared_ptr<Function<T>>, Variables<T>);                                    \
  template BasicVariable<T> detail::apply_one<T>(std::shared_ptr<Function<T>>, const detail::InputRef<T>*, std::size_t); \
  template BasicVariable<T> detail::apply_unrecorded<T>(Function<T>&, const detail::InputRef<T>*, std::size_t);  \
  template void detail::run_engine(const Variables<T>&, const Variables<T>&, BackwardOptions<T>,                  \
                                   const Variables<T>*, Variables<T>*);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg
