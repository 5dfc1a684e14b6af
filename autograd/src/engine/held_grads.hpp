#pragma once
// Gradients the engine holds back until they are final: leaves with hooks
// (Note [Hooks], hooks.cpp) and the inputs of grad(). Only when one exists
// does the engine walk the graph first (plan); otherwise it uses none of
// this and every leaf's gradient goes straight into its .grad.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "zerograd/ops.hpp"

#include "engine/hooks.hpp"

namespace zg {

template <class T>
class HeldGrads {
 public:
  using Edge = typename Function<T>::Edge;
  // write(leaf, g) accumulates a final gradient into leaf's .grad.
  explicit HeldGrads(std::function<void(const BasicVariable<T>&, BasicVariable<T>)> write)
      : write_(std::move(write)) {}

  bool capturing() const { return results_ != nullptr; }

  // grad(): the gradient of inputs[j] goes to results[j], and no .grad is written.
  void capture(const Variables<T>& inputs, Variables<T>& results) {
    results_ = &results;
    for (std::size_t j = 0; j < inputs.size(); ++j) {
      const Node<T>& n = *inputs[j].node();
      if (!n.creator) slot(inputs[j]).targets.push_back(j);
      else output_targets_[n.creator.get()].emplace_back(n.output_index, j);
    }
  }

  // Counts the edges that lead to each held leaf from the Functions the
  // roots depend on; for grad(), also finds the Functions between the roots
  // and some input: only those run (a Function's inputs are made by
  // Functions of lower generation, so one pass in generation order does).
  void plan(const Variables<T>& roots) {
    std::vector<Function<T>*> stack, reached;
    std::unordered_set<const Function<T>*> seen;
    auto reach = [&](const BasicVariable<T>* leaf, Function<T>* creator) {
      if (creator) {
        if (seen.insert(creator).second) stack.push_back(creator);
        return;
      }
      if (!capturing() && leaf->node()->hooks) slot(*leaf);
      if (Slot* s = find(*leaf->node())) ++s->remaining;
    };
    for (const BasicVariable<T>& r : roots) reach(&r, r.node()->creator.get());
    while (!stack.empty()) {
      Function<T>* f = stack.back();
      stack.pop_back();
      reached.push_back(f);
      for (const Edge& e : f->edges_)
        if (e.requires_grad) reach(&e.saved, e.saved.defined() ? e.saved.node()->creator.get() : e.creator.get());
    }
    if (!capturing()) return;
    std::sort(reached.begin(), reached.end(), [](auto* a, auto* b) { return a->generation_ < b->generation_; });
    for (Function<T>* f : reached)
      if (std::any_of(f->edges_.begin(), f->edges_.end(), [&](const Edge& e) { return leads_to_input(e); }))
        needed_.insert(f);
  }

  // Whether a gradient for an output of f is wanted (grad(): f runs or made an input).
  bool wants(const Function<T>& f) const {
    return !capturing() || f.released_ || needed_.count(&f) || output_targets_.count(&f);
  }
  bool runs_backward(const Function<T>& f) const { return !capturing() || needed_.count(&f); }
  // The final gradient g of output k of f: grad()'s result if that output is an input.
  void output_grad(const Function<T>& f, std::uint32_t k, const BasicVariable<T>& g) {
    if (!capturing()) return;
    if (auto it = output_targets_.find(&f); it != output_targets_.end())
      for (const auto& [index, j] : it->second)
        if (index == k) (*results_)[j] = g;
  }

  // Takes gx for a leaf; false if that leaf's gradient is not held.
  bool take(const Node<T>& leaf, BasicVariable<T>& gx) {
    Slot* s = find(leaf);
    if (!s) return false;
    s->sum = s->sum.defined() ? s->sum + gx : std::move(gx);
    if (--s->remaining <= 0) finish(*s);
    return true;
  }
  // An edge that will send nothing (its Function returned no gradient for it).
  void skip(const Edge& e) {
    if (!e.saved.defined() || e.saved.node()->creator) return;
    if (Slot* s = find(*e.saved.node()))
      if (--s->remaining == 0 && s->sum.defined()) finish(*s);
  }
  // After the last Function: what the held leaves got is final.
  void flush() {
    for (Slot& s : slots_)
      if (!s.done && s.sum.defined()) finish(s);
  }

 private:
  struct Slot {
    BasicVariable<T> leaf, sum;
    long remaining = 0;                // edges of Functions still to run that lead to it
    std::vector<std::size_t> targets;  // its positions among grad()'s inputs
    bool done = false;
  };
  Slot* find(const Node<T>& leaf) {
    if (slots_.empty()) return nullptr;
    auto it = index_.find(&leaf);
    return it == index_.end() ? nullptr : &slots_[it->second];
  }
  Slot& slot(const BasicVariable<T>& leaf) {
    auto [it, fresh] = index_.try_emplace(leaf.id(), slots_.size());
    if (fresh) slots_.push_back(Slot{leaf, {}, 0, {}, false});
    return slots_[it->second];
  }
  bool leads_to_input(const Edge& e) const {
    if (!e.requires_grad) return false;
    const Node<T>* node = e.saved.defined() ? e.saved.id() : nullptr;
    const Function<T>* c = node ? node->creator.get() : e.creator.get();
    if (!c) return index_.count(node) > 0;
    if (needed_.count(c)) return true;
    const std::uint32_t k = node ? node->output_index : e.output_index;
    auto it = output_targets_.find(c);
    return it != output_targets_.end() &&
           std::any_of(it->second.begin(), it->second.end(), [k](const auto& t) { return t.first == k; });
  }
  void finish(Slot& s) {
    s.done = true;
    BasicVariable<T> g = detail::run_hooks(s.leaf, std::move(s.sum));
    if (capturing()) {
      for (std::size_t j : s.targets) (*results_)[j] = g;
      return;
    }
    write_(s.leaf, std::move(g));
    detail::run_post_accumulate_hooks(s.leaf);
  }

  std::function<void(const BasicVariable<T>&, BasicVariable<T>)> write_;
  std::vector<Slot> slots_;  // in the order leaves were first met: flush is deterministic
  std::unordered_map<const Node<T>*, std::size_t> index_;
  Variables<T>* results_ = nullptr;
  std::unordered_map<const Function<T>*, std::vector<std::pair<std::uint32_t, std::size_t>>> output_targets_;
  std::unordered_set<const Function<T>*> needed_;
};

}  // namespace zg
