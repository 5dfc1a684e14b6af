#pragma once
// One setting for every thread zerograd uses: OpenBLAS's and our own loops.

namespace zg {

// Threads for BLAS and zerograd's parallel kernels; n <= 0 means one per
// core. Default: one per core.
void set_num_threads(int n);
int num_threads();

}  // namespace zg
