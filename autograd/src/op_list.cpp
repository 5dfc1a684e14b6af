// Every differentiable Function the library defines, by name. The test suite
// fails for any name here without a gradcheck case that runs it.
#include "zerograd/ops.hpp"

namespace zg {

const std::vector<std::string>& differentiable_ops() {
  static const std::vector<std::string> names = {
      // arithmetic
      "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Square", "AddConst", "MulConst", "RDivConst",
      // shape
      "Reshape", "BroadcastTo", "SumTo",
      // reductions
      "Sum",
  };
  return names;
}

}  // namespace zg
