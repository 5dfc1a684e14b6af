// Note [Buffer cache] in buffer_cache.hpp.
#include "engine/buffer_cache.hpp"
#include "engine/per_thread.hpp"

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

constexpr std::size_t kSlots = 16;          // per size class
constexpr std::size_t kSmallBytes = 1024;   // below: the small class, so scalars never evict matrices
constexpr std::size_t kMaxBytes = 1 << 20;  // above: not cached; so at most 16 MB + 16 KB per class pair

template <class T>
struct Cache {
  struct Class {
    std::array<CachedBuffer<T>, kSlots> slots;
    std::size_t next = 0;  // the slot the next buffer replaces
  } small, large;
  // The class for arrays of n elements; null when n is not cached (or
  // during thread exit, when a Node may die after this thread's cache).
  static Class* of(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (n == 0 || bytes > kMaxBytes || !buffer_cache_enabled()) return nullptr;
    Cache* c = per_thread<Cache>();
    if (!c) return nullptr;
    return bytes < kSmallBytes ? &c->small : &c->large;
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
CachedBuffer<T>* take_cached(std::size_t n) noexcept {
  typename Cache<T>::Class* c = Cache<T>::of(n);
  if (!c) return nullptr;
  for (std::size_t age = 1; age <= kSlots; ++age) {  // the newest first: likely still in cache
    CachedBuffer<T>& s = c->slots[(c->next + kSlots - age) % kSlots];
    if (s.buffer.size() == n) return &s;
  }
  return nullptr;
}

template <class T>
void recycle(Tensor<T>& t) noexcept {
  typename Cache<T>::Class* c = Cache<T>::of(t.size());
  if (!c) return;
  // An emptied slot, the newest first (usually the one an op of this size
  // just took), then from the oldest on; with none, the oldest buffer is
  // freed. The slot filled becomes the newest.
  std::size_t at = c->next;
  for (std::size_t k = 0; k < kSlots; ++k) {
    const std::size_t i = (c->next + kSlots - 1 + k) % kSlots;
    if (c->slots[i].buffer.size() == 0) {
      at = i;
      break;
    }
  }
  CachedBuffer<T>& slot = c->slots[at];
  slot.buffer = std::move(t.storage());
  if (!same_shape(slot.layout, t.shape())) slot.layout = std::move(t);  // t has no elements left
  c->next = (at + 1) % kSlots;
}

#define ZG_INSTANTIATE(T)                                                 \
  template CachedBuffer<T>* take_cached<T>(std::size_t) noexcept;         \
  template void recycle<T>(Tensor<T>&) noexcept;
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::detail
