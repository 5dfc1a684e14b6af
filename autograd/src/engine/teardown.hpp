#pragma once
// Note [Teardown]: destroying the last handle to a long chain would recurse
// node -> creator -> input -> creator ... and overflow the stack. Instead the
// first Node or Function destructor in a thread drains a worklist (engine.cpp
// pushes onto it); nested ones only push. At thread exit a Variable may die
// after this thread's worklist; the outermost destructor then drains one on
// its own stack.
#include <memory>
#include <vector>

#include "zerograd/variable.hpp"

#include "engine/per_thread.hpp"

namespace zg {

template <class T>
struct Teardown {
  std::vector<std::shared_ptr<Function<T>>> functions;
  std::vector<std::shared_ptr<Node<T>>> nodes;
  bool draining = false;

  // fill pushes onto the worklist, which is then drained unless a caller
  // further up the stack is draining it already.
  template <class Fill>
  static void run(Fill&& fill) {
    thread_local Teardown* stand_in = nullptr;
    Teardown* t = detail::per_thread<Teardown>();
    if (!t && stand_in) return fill(*stand_in);
    Teardown local;
    if (!t) stand_in = t = &local;
    fill(*t);
    t->drain();
    if (t == &local) stand_in = nullptr;
  }
  void drain() {
    if (draining) return;
    draining = true;
    while (!functions.empty() || !nodes.empty()) {
      if (!functions.empty()) {
        auto f = std::move(functions.back());
        functions.pop_back();
      } else {
        auto n = std::move(nodes.back());
        nodes.pop_back();
      }
    }
    draining = false;
  }
};

}  // namespace zg
