// Note [Kernels per instruction set]: zerograd's own SIMD kernels (xsimd
// batches and AVX2 intrinsics: softmax rows, GELU, LayerNorm, the few-rows
// weight gradient, 2x2 pooling) are compiled twice on x86-64: into their
// layer with the library's flags less AVX (the baseline variant, SSE4.2 on
// the package's x86-64-v2), and once more with AVX2 + FMA (CMakeLists.txt,
// zerograd_simd_kernels). Each compile puts them in a namespace of its own
// (simd_dispatch.hpp), and the entry points call the AVX2 variant where the
// CPU has AVX2 and FMA, unless ZEROGRAD_MAX_ISA caps it: sse4.2 (or
// baseline) runs the baseline variant, avx2, avx512 and native the best the
// CPU has (AVX-512 has no variant of its own: GCC 12 warns inside xsimd
// 8.1's AVX-512 intrinsics, and the kernels were measured on AVX2). The
// choice is made once per process, as oneDNN and OpenBLAS make theirs, and
// zg::simd_isa() says what it was. An AVX2 compile must define no shared
// inline code that the linker could pick for the baseline one (a weak
// symbol without "avx2" in its name): ctest simd.variants checks that.
// Measured figures are in docs/speed.md (instruction sets).
#include <cctype>
#include <cstdlib>
#include <string>

#include "zerograd/error.hpp"
#include "zerograd/simd_dispatch.hpp"
#include "zerograd/threads.hpp"

namespace zg {
namespace {

// The instruction set the baseline variant is compiled for: the library's
// flags less AVX.
const char* baseline_isa() {
#if defined(__SSE4_2__)
  return "sse4.2";
#elif defined(__x86_64__)
  return "sse2";
#elif defined(__ARM_NEON)
  return "neon";
#else
  return "generic";
#endif
}

// ZEROGRAD_MAX_ISA: whether it allows AVX2 (unset or empty: yes).
bool cap_allows_avx2() {
  const char* set = std::getenv("ZEROGRAD_MAX_ISA");
  if (!set || !*set) return true;
  std::string v(set);
  for (char& c : v) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (v == "avx2" || v == "avx512" || v == "native") return true;
  if (v == "sse4.2" || v == "baseline") return false;
  throw Error("ZEROGRAD_MAX_ISA=" + quoted(set) + ": expected sse4.2, baseline, avx2, avx512 or native");
}

bool cpu_has_avx2() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

}  // namespace

namespace detail {

bool simd_avx2() {
  static const bool avx2 = cap_allows_avx2() && cpu_has_avx2();
  return avx2;
}

}  // namespace detail

std::string simd_isa() { return detail::simd_avx2() ? "avx2" : baseline_isa(); }

}  // namespace zg
