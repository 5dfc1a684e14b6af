// Every differentiable op has exactly one gradcheck case (each case, its own
// TEST_CASE in testing.hpp's ZG_GRADCHECK_CASE, checks that it runs the op).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "testing.hpp"

namespace {

// autograd's ops and nn's, each registered beside its definition.
std::vector<std::string> all_ops() { return zg::differentiable_ops(); }

}  // namespace

TEST_CASE("every differentiable op has exactly one gradcheck case") {
  // Each case is its own TEST_CASE, which checks that it runs its op.
  const auto& cases = zg::testing::gradcheck_cases();
  for (const std::string& op : all_ops()) {
    CAPTURE(op);
    auto it = cases.find(op);
    CHECK_MESSAGE(it != cases.end(), "no ZG_GRADCHECK_CASE(\"" << op << "\")");
    if (it != cases.end()) CHECK_MESSAGE(it->second.size() == 1, op << " has " << it->second.size() << " cases");
  }
}

TEST_CASE("every gradcheck case names an op the library registers") {
  const std::vector<std::string> ops = all_ops();
  for (const auto& entry : zg::testing::gradcheck_cases()) {
    const std::string& op = entry.first;
    CAPTURE(op);
    CHECK(std::find(ops.begin(), ops.end(), op) != ops.end());
  }
}
