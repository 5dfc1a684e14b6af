#pragma once

namespace zg::detail {

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

}  // namespace zg::detail
