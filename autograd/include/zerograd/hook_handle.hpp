#pragma once
/// @file
/// HookHandle, what registering a hook returns.
#include <functional>
#include <utility>

namespace zg {

/// Removes the hook it was returned for (a second remove() does nothing).
/// Dropping the handle keeps the hook, as PyTorch's RemovableHandle does.
class HookHandle {
 public:
  HookHandle() = default;
  /// remove: what remove() runs, once.
  explicit HookHandle(std::function<void()> remove) : remove_(std::move(remove)) {}
  void remove() {  ///< removes the hook
    auto r = std::move(remove_);
    remove_ = nullptr;
    if (r) r();
  }

 private:
  std::function<void()> remove_;
};

}  // namespace zg
