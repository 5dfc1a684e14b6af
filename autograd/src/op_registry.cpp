// The names ZG_REGISTER_OP records as each op's file is initialised.
#include "zerograd/op_registry.hpp"

#include <set>

namespace zg::detail {

bool register_op(const char* name) {
  static std::set<std::string> names;
  names.insert(name);
  return true;
}

}  // namespace zg::detail
