#pragma once
// zerograd's own SIMD kernels, compiled once per instruction set and chosen
// once per process (Note [Kernels per instruction set] in
// autograd/src/kernels/simd.cpp). In zg::detail: for kernel writers, not a
// stable API.
//
// A kernel file puts its kernels in namespace ZG_SIMD_VARIANT: `baseline`
// when compiled into its layer, `avx2` in the second compile. The baseline
// compile also defines the entry points (ZG_SIMD_ENTRIES), each of which
// calls its variant with ZG_SIMD_CALL.

namespace zg::detail {

// True where this process runs the AVX2 + FMA variants: the CPU has both
// and ZEROGRAD_MAX_ISA allows them. Decided on the first call; throws
// zg::Error on a ZEROGRAD_MAX_ISA it does not know.
bool simd_avx2();

}  // namespace zg::detail

#ifndef ZG_SIMD_VARIANT
#define ZG_SIMD_VARIANT baseline
#define ZG_SIMD_ENTRIES 1
#endif

#if defined(__x86_64__)
#define ZG_SIMD_CALL(kernel, ...) \
  return ::zg::detail::simd_avx2() ? avx2::kernel(__VA_ARGS__) : baseline::kernel(__VA_ARGS__)
#else
#define ZG_SIMD_CALL(kernel, ...) return baseline::kernel(__VA_ARGS__)
#endif
