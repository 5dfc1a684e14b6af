#pragma once
/// @file
/// One setting for every thread zerograd uses: OpenBLAS's and our own loops;
/// and which BLAS kernels run them.
#include <string>

namespace zg {

/// Threads for BLAS and zerograd's parallel kernels; n <= 0 means one per
/// core. Default: one per core. Safe to call while other threads compute:
/// a loop already running finishes on the old workers, one starting at that
/// moment may run on the calling thread alone; results are the same.
/// Each change keeps a few hundred bytes of the old pool for good.
void set_num_threads(int n);
int num_threads();  ///< the current setting, the number of threads a loop may use

/// The BLAS library and the kernel set it runs on this CPU, for logs and
/// benchmarks, such as "OpenBLAS 0.3.21 ... core Haswell (OPENBLAS_CORETYPE=Haswell)".
/// Results can differ in the last bits between kernels (docs/details.md, Determinism).
std::string blas_info();

}  // namespace zg
