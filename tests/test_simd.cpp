// Which instruction set zerograd's own SIMD kernels run with (Note [Kernels
// per instruction set]). The choice is made once per process, so ctest runs
// this case again under each ZEROGRAD_MAX_ISA (tests/CMakeLists.txt, isa.*).
#include <cstdlib>
#include <string>

#include <zerograd/zerograd.hpp>

#include "testing.hpp"

TEST_CASE("simd_isa: the CPU's best unless ZEROGRAD_MAX_ISA caps it, and a bad cap is an error") {
  const char* set = std::getenv("ZEROGRAD_MAX_ISA");
  const std::string cap = set ? set : "";
  const bool cpu_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (cap.empty() || cap == "native" || cap == "avx512" || cap == "avx2") {
    CHECK((zg::simd_isa() == "avx2") == cpu_avx2);
  } else if (cap == "sse4.2" || cap == "baseline") {
    CHECK(zg::simd_isa() != "avx2");
    CHECK(!zg::simd_isa().empty());
  } else {
    CHECK_THROWS_WITH_AS(zg::simd_isa(), doctest::Contains(("ZEROGRAD_MAX_ISA='" + cap.substr(0, 20)).c_str()), zg::Error);
    CHECK_THROWS_WITH_AS(zg::simd_isa(), doctest::Contains("expected sse4.2, baseline, avx2, avx512 or native"),
                         zg::Error);
  }
}
