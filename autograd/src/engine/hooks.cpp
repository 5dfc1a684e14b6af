// Note [Hooks]: a Variable's hooks (register_hook) run in the order they
// were registered, each on the previous one's result, once per backward or
// grad(), on the whole gradient flowing into that Variable: for a computed
// Variable before its creator's backward receives it, for a leaf before it
// is accumulated into .grad (or returned by grad()). A leaf's post-
// accumulate hooks run after that, once its .grad is final: when every
// Function of this backward that could still send it a gradient has run
// (held_grads.hpp counts them before backward starts, only when a hook
// exists, so backward costs nothing more without hooks). Under create_graph
// the gradient a hook sees is part of the graph, and what it returns is
// differentiated through; a hook runs in every pass through its Variable.
#include "engine/hooks.hpp"

#include <atomic>

namespace zg {
namespace {
std::atomic<long> live_hooks{0};  // registered and not removed
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
}  // namespace

template <class T>
void detail::DeleteHooks<T>::operator()(NodeHooks<T>* h) const {
  live_hooks -= static_cast<long>(h->pre.size() + h->post.size());
  delete h;
}

bool detail::hooks_exist() { return live_hooks.load(std::memory_order_relaxed) > 0; }

template <class T>
HookHandle BasicVariable<T>::register_hook(std::function<BasicVariable(const BasicVariable&)> fn) const {
  if (!checked().requires_grad)
    throw ValueError("register_hook: '" + node_->label() + "' does not require grad, so no gradient reaches it");
  return add_hook<T>(node_, &detail::NodeHooks<T>::pre, std::move(fn));
}

template <class T>
HookHandle BasicVariable<T>::register_post_accumulate_grad_hook(std::function<void(const BasicVariable&)> fn) const {
  if (checked().creator || !node_->requires_grad)
    throw ValueError("register_post_accumulate_grad_hook: '" + node_->label() +
                     "' is not a leaf that requires grad (only those accumulate a .grad)");
  return add_hook<T>(node_, &detail::NodeHooks<T>::post, std::move(fn));
}

template <class T>
BasicVariable<T> detail::run_hooks(const BasicVariable<T>& v, BasicVariable<T> g) {
  if (!v.defined() || !v.node()->hooks) return g;
  const auto hooks = v.node()->hooks->pre;  // a copy: a hook may register or remove hooks
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

template <class T>
void detail::run_post_accumulate_hooks(const BasicVariable<T>& leaf) {
  if (!leaf.node()->hooks) return;
  const auto hooks = leaf.node()->hooks->post;
  for (const auto& [id, fn] : hooks) fn(leaf);
}

#define ZG_INSTANTIATE(T)                                                                          \
  template struct detail::DeleteHooks<T>;                                                          \
  template HookHandle BasicVariable<T>::register_hook(std::function<BasicVariable(const BasicVariable&)>) const; \
  template HookHandle BasicVariable<T>::register_post_accumulate_grad_hook(                        \
      std::function<void(const BasicVariable&)>) const;                                            \
  template BasicVariable<T> detail::run_hooks(const BasicVariable<T>&, BasicVariable<T>);          \
  template void detail::run_post_accumulate_hooks(const BasicVariable<T>&);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg
