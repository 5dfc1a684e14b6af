#pragma once
// zerograd's parallel loops (defined in autograd/src/kernels/parallel.cpp): public so
// that nn's and optim's kernels, and a user's own, split work on the same
// pool zg::set_num_threads sizes. In zg::detail: for kernel writers, not a
// stable API.
//
// Note [Threads]: one setting, zg::set_num_threads(n), sizes a pool of n - 1
// workers plus the calling thread. OpenBLAS is kept at one thread of its own:
// a large GEMM is split into row (or column) blocks that the pool runs as
// single-threaded GEMMs, and per-sample loops (im2col + GEMM) run samples in
// parallel. So no more than n threads ever compute at once, and BLAS's
// spinning workers never compete with ours for the cores.
//
// Chunk boundaries depend only on the size, the grain and the thread setting,
// never on timing: a kernel that keeps one partial result per chunk and adds
// them in chunk order gives the same bits on every run with the same setting.
#include <cstddef>
#include <functional>
#include <vector>

namespace zg::detail {

// Elementwise kernels split arrays of at least twice this many elements
// (below it the hand-off costs more than the second core saves).
constexpr std::size_t kElementGrain = 1u << 15;

// How many chunks parallel_for(n, grain, ...) uses: at most one per thread,
// each at least `grain` items (1 when called from inside a chunk).
std::size_t chunk_count(std::size_t n, std::size_t grain);

// The items [begin, end) of chunk k of `chunks` over n items.
inline std::size_t chunk_begin(std::size_t n, std::size_t chunks, std::size_t k) {
  return n / chunks * k + (k < n % chunks ? k : n % chunks);
}

// Runs fn(k) for k in [0, chunks) across the pool, the caller taking part.
// Rethrows the first exception a chunk threw, after every chunk finished.
void parallel_chunks(std::size_t chunks, const std::function<void(std::size_t)>& fn);

// Note [One thread team]: oneDNN's convolutions run on libgomp's OpenMP
// threads, which spin after each convolution; zerograd's own pool, running
// the ReLU, pooling and bias loops in between, then fought them for the two
// cores. Once oneDNN has run a convolution, the parallel loops run on
// libgomp's team too, so one set of threads does all the work. DeepConvNet
// at 2 threads, 4 alternating runs: 16.3-24.3 ms per iteration (median
// 20.1) on one team, against 21.3-33.3 on the pool and 20.0-26.5 (median
// 24.2) on the pool with OMP_WAIT_POLICY=PASSIVE. Before a convolution, and without oneDNN, the pool runs them: its
// hand-off is cheaper than libgomp's (TwoLayerNet at 2 threads: 0.160-0.163
// ms per iteration against 0.163-0.172). Chunks and their boundaries are the
// same on both, so results do not change.
//
// A team runner starts `threads` threads, the caller among them, each
// calling body(arg) once, and returns when all have returned.
using TeamRunner = void (*)(unsigned threads, void (*body)(void*), void* arg);
// From now on parallel_chunks runs on runner's threads instead of the pool
// (nullptr: on the pool again). nn's oneDNN convolutions install libgomp's.
// A process forked from one with a runner runs its loops on a pool of its
// own and ignores later installs (libgomp's threads do not survive fork).
void run_loops_on(TeamRunner runner);
// The runner installed, or nullptr when the pool runs the loops.
TeamRunner loops_runner();

// Runs fn(begin, end) over [0, n) in chunk_count(n, grain) contiguous chunks.
template <class F>
void parallel_for(std::size_t n, std::size_t grain, F&& fn) {
  const std::size_t chunks = chunk_count(n, grain);
  if (chunks <= 1) {
    if (n) fn(std::size_t(0), n);
    return;
  }
  parallel_chunks(chunks, [&](std::size_t k) { fn(chunk_begin(n, chunks, k), chunk_begin(n, chunks, k + 1)); });
}

// A sum over [0, n) of len-element results, deterministic: fn(begin, end,
// dst) adds the items [begin, end) into dst. Each of chunk_count(n, grain)
// chunks adds into a zeroed partial of its own (chunk 0 straight into out,
// which keeps its starting values); the partials are then added into out in
// chunk order.
template <class T, class F>
void parallel_sum(std::size_t n, std::size_t grain, T* out, std::size_t len, F&& fn) {
  const std::size_t chunks = chunk_count(n, grain);
  if (chunks <= 1) {  // no partials and no std::function for a small sum
    if (n) fn(std::size_t(0), n, out);
    return;
  }
  std::vector<T> partial((chunks - 1) * len, T(0));
  parallel_chunks(chunks, [&](std::size_t c) {
    fn(chunk_begin(n, chunks, c), chunk_begin(n, chunks, c + 1), c == 0 ? out : partial.data() + (c - 1) * len);
  });
  for (std::size_t c = 1; c < chunks; ++c)
    for (std::size_t i = 0; i < len; ++i) out[i] += partial[(c - 1) * len + i];
}

// True inside a parallel chunk (nested loops run serially there).
bool in_parallel_region();

}  // namespace zg::detail
