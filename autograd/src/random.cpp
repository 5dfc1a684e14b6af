#include "zerograd/random.hpp"

namespace zg {

Generator& generator() {
  static Generator gen(5489u);
  return gen;
}

void manual_seed(std::uint64_t seed) { generator().seed(seed); }

}  // namespace zg
