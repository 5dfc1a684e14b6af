// The Nodes that hold a forward's outputs.
//
// Note [Output nodes]: Functions hold weak references to their outputs and,
// when they save no inputs, to their inputs. A weak reference keeps the
// memory of a make_shared block (object and count together) until the last
// weak reference goes, so a node whose last handle was dropped would still
// occupy its 300 bytes. The outputs of a recorded Function are therefore
// allocated apart from their count block: a freed intermediate leaves only
// the small count block (deep_chain in bench/ measures bytes per op). Nobody
// holds a weak reference to a leaf or to an unrecorded output, so those take
// one allocation (make_shared).
//
// Note [Outputs in place]: an xarray move swaps three small vectors (shape,
// strides, backstrides), some 20 ns, a sixth of a small matmul's engine
// overhead. So Outputs evaluates an expression, or makes an uninitialized
// array, straight inside the Node the engine will hold it in; its array
// comes from the buffer cache (Note [Buffer cache]).
#include "engine/output_nodes.hpp"

#include "engine/buffer_cache.hpp"

namespace zg::detail {
namespace {
thread_local bool recorded_outputs = false;

template <class T, class... Args>
std::shared_ptr<Node<T>> new_node(Args&&... args) {
  if (!recorded_outputs) return std::make_shared<Node<T>>(std::forward<Args>(args)...);
  return std::shared_ptr<Node<T>>(new Node<T>(std::forward<Args>(args)...));
}
}  // namespace

OutputKindGuard::OutputKindGuard(bool recorded) : previous_(recorded_outputs) { recorded_outputs = recorded; }
OutputKindGuard::~OutputKindGuard() { recorded_outputs = previous_; }

template <class T>
std::shared_ptr<Node<T>> output_node(Tensor<T>&& data) {
  return new_node<T>(std::move(data));
}

template <class T>
std::shared_ptr<Node<T>> output_node(const std::size_t* dims, std::size_t ndim) {
  struct Dims {  // the shape as empty_tensor reads it
    const std::size_t* b;
    const std::size_t* e;
    const std::size_t* begin() const { return b; }
    const std::size_t* end() const { return e; }
    std::size_t size() const { return static_cast<std::size_t>(e - b); }
  };
  return new_node<T>(std::in_place, [&] { return empty_tensor<T>(Dims{dims, dims + ndim}); });
}

#define ZG_INSTANTIATE(T)                                                       \
  template std::shared_ptr<Node<T>> output_node<T>(Tensor<T>&&);                \
  template std::shared_ptr<Node<T>> output_node<T>(const std::size_t*, std::size_t);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::detail
