// The registry behind ZG_REGISTER_OP. Registration runs during static
// initialisation, in any order, so the set lives in a function-local static.
#include <mutex>
#include <set>

#include "zerograd/op_registry.hpp"

namespace zg {
namespace {
struct Registry {
  std::mutex mutex;
  std::set<std::string> names;
};
Registry& registry() {
  static Registry r;
  return r;
}
}  // namespace

bool detail::register_op(const char* name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.names.insert(name);
  return true;
}

std::vector<std::string> differentiable_ops() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return {r.names.begin(), r.names.end()};
}

}  // namespace zg
