// Every differentiable op must have a gradcheck case, and that case must
// actually run the op.
#include <set>

#include "testing.hpp"

TEST_CASE("every differentiable op has a gradcheck case that runs it") {
  const auto& cases = zg::testing::gradcheck_cases();
  for (const std::string& op : zg::differentiable_ops()) {
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
  const auto& ops = zg::differentiable_ops();
  for (const auto& entry : zg::testing::gradcheck_cases()) {
    const std::string& op = entry.first;
    CAPTURE(op);
    CHECK(std::find(ops.begin(), ops.end(), op) != ops.end());
  }
}
