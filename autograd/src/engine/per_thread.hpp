#pragma once
// This thread's X, made on first use, or null once the thread has destroyed
// it: at thread exit a thread_local that outlives it (a Variable, say) may
// still ask for it from a destructor. The flag is trivially destructible,
// so it stays readable until the thread ends.
namespace zg::detail {

template <class X>
X* per_thread() {
  thread_local bool gone = false;
  struct Holder {
    X x;
    ~Holder() { gone = true; }
  };
  if (gone) return nullptr;
  thread_local Holder holder;
  return &holder.x;
}

}  // namespace zg::detail
