// Every differentiable op must have a gradcheck case, and that case must
// actually run the op.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "testing.hpp"

namespace {

// autograd's ops and nn's, each listed by the layer that defines it.
std::vector<std::string> all_ops() {
  std::vector<std::string> ops = zg::differentiable_ops();
  const auto& nn_ops = zg::nn::differentiable_ops();
  ops.insert(ops.end(), nn_ops.begin(), nn_ops.end());
  return ops;
}

}  // namespace

TEST_CASE("every differentiable op has a gradcheck case that runs it") {
  const auto& cases = zg::testing::gradcheck_cases();
  for (const std::string& op : all_ops()) {
    CAPTURE(op);
    auto it = cases.find(op);
    CHECK_MESSAGE(it != cases.end(), "no ZG_GRADCHECK_CASE(\"" << op << "\")");
    if (it == cases.end()) continue;
    std::set<std::string> ran;
    {
      zg::ForwardObserverGuard<double> watch(
          [&](const zg::ForwardStep<double>& s) { ran.insert(s.function.name()); });
      for (const auto& run_case : it->second) run_case();
    }
    CHECK_MESSAGE(ran.count(op) == 1, "the gradcheck case for " << op << " never ran it");
  }
}

TEST_CASE("every gradcheck case names an op the library lists") {
  const std::vector<std::string> ops = all_ops();
  for (const auto& entry : zg::testing::gradcheck_cases()) {
    const std::string& op = entry.first;
    CAPTURE(op);
    CHECK(std::find(ops.begin(), ops.end(), op) != ops.end());
  }
}
