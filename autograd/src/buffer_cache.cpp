// Note [Buffer cache] in buffer_cache.hpp.
#include "buffer_cache.hpp"

#include <array>
#include <cstdlib>
#include <string>

namespace zg::detail {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr std::size_t kSlots = 16;
constexpr std::size_t kMinBytes = 1024;     // smaller arrays are not worth a slot
constexpr std::size_t kMaxBytes = 1 << 20;  // so at most 16 MB held

template <class T>
struct Cache {
  std::array<Storage<T>, kSlots> slots;  // empty, or a cached buffer
  std::size_t next = 0;                  // the slot the next buffer replaces
  static bool& closed() {                // set once this thread's cache is destroyed
    thread_local bool c = false;         // trivially destructible: readable until the thread ends
    return c;
  }
  ~Cache() { closed() = true; }
  static Cache* here() {
    if (closed()) return nullptr;  // a Node destroyed during thread exit
    thread_local Cache c;
    return &c;
  }
};

}  // namespace

bool buffer_cache_enabled() {
  static const bool on = [] {
    const char* env = std::getenv("ZEROGRAD_MALLOC_TUNING");
    return !kSanitized && !(env && std::string(env) == "0");
  }();
  return on;
}

template <class T>
bool take_cached(std::size_t n, Storage<T>& out) noexcept {
  if (n * sizeof(T) < kMinBytes || n * sizeof(T) > kMaxBytes || !buffer_cache_enabled()) return false;
  Cache<T>* c = Cache<T>::here();
  if (!c) return false;
  for (std::size_t age = 1; age <= kSlots; ++age) {  // the newest first: likely still in cache
    Storage<T>& s = c->slots[(c->next + kSlots - age) % kSlots];
    if (s.size() == n) {
      out = std::move(s);
      return true;
    }
  }
  return false;
}

template <class T>
void recycle(Tensor<T>& t) noexcept {
  const std::size_t bytes = t.size() * sizeof(T);
  if (bytes < kMinBytes || bytes > kMaxBytes || !buffer_cache_enabled()) return;
  Cache<T>* c = Cache<T>::here();
  if (!c) return;
  c->slots[c->next] = std::move(t.storage());  // frees the oldest buffer held there
  c->next = (c->next + 1) % kSlots;
}

#define ZG_INSTANTIATE(T)                                                 \
  template bool take_cached<T>(std::size_t, Storage<T>&) noexcept;        \
  template void recycle<T>(Tensor<T>&) noexcept;
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::detail
