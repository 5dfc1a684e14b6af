#pragma once
// Hooks on Variables: storage and running them (Note [Hooks], hooks.cpp).
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "zerograd/variable.hpp"

namespace zg::detail {

template <class T>
struct NodeHooks {
  std::vector<std::pair<std::uint64_t, std::function<BasicVariable<T>(const BasicVariable<T>&)>>> pre;
  std::vector<std::pair<std::uint64_t, std::function<void(const BasicVariable<T>&)>>> post;
};

// Whether any Variable of any thread has a hook now.
bool hooks_exist();
// g after v's hooks (g unchanged when v has none).
template <class T>
BasicVariable<T> run_hooks(const BasicVariable<T>& v, BasicVariable<T> g);
// leaf's post-accumulate hooks, now that its .grad is final.
template <class T>
void run_post_accumulate_hooks(const BasicVariable<T>& leaf);

}  // namespace zg::detail
